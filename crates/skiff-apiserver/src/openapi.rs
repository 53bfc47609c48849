//! The schemas of the served kinds: the catalog (for strict field validation and strategic
//! merge patch) and the OpenAPI documents kubectl reads at `/openapi/v3` (create, apply,
//! edit, explain) and `/openapi/v2`. Documents are rendered on first request (≈100 ms, ≈20 MiB:
//! a server nobody asks for them does not pay), once per set of served kinds, and served with
//! content hashes so clients cache them.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use skiff_openapi::{Catalog, Documents, Kind};
use skiff_patch::{Child, FieldStrategy, ListStrategy, Strategies};
use tokio::sync::OnceCell;

use crate::registry::{Registry, Resource};
use crate::{ApiError, AppState};

/// Schemas and documents for one set of served kinds.
pub(crate) struct Schemas {
    pub catalog: Catalog,
    kinds: Vec<Kind>,
    documents: OnceCell<Arc<Documents>>,
}

impl Schemas {
    pub(crate) fn new(registry: &Registry) -> Schemas {
        let mut catalog = Catalog::builtin();
        for resource in registry.resources() {
            if let Some(schema) = resource.custom.as_ref().and_then(|c| c.schema.clone()) {
                catalog.add_custom(&kind_of(resource), schema);
            }
        }
        Schemas {
            catalog,
            kinds: registry.resources().iter().map(kind_of).collect(),
            documents: OnceCell::new(),
        }
    }

    /// The rendered documents (built on first use, on a blocking thread).
    pub(crate) async fn documents(self: &Arc<Self>) -> Arc<Documents> {
        let this = self.clone();
        self.documents
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    Arc::new(Documents::build(&this.catalog, &this.kinds))
                })
                .await
                .expect("rendering OpenAPI documents does not panic")
            })
            .await
            .clone()
    }

    /// The schema definition of a built-in kind; `None` for kinds without one (custom
    /// resources take merge patches only).
    pub(crate) fn definition(&self, resource: &Resource) -> Option<&str> {
        let definition =
            self.catalog
                .definition_for(resource.group, resource.version, resource.kind)?;
        (!self.catalog.is_custom(definition)).then_some(definition)
    }

    /// `unknown field "spec.x"` for each field of `object` its kind's schema does not have.
    pub(crate) fn unknown_fields(&self, resource: &Resource, object: &Value) -> Vec<String> {
        match self
            .catalog
            .definition_for(resource.group, resource.version, resource.kind)
        {
            Some(definition) => self.catalog.validate_unknown_fields(definition, object),
            None => Vec::new(),
        }
    }
}

fn kind_of(resource: &Resource) -> Kind {
    Kind {
        group: resource.group.to_owned(),
        version: resource.version.to_owned(),
        kind: resource.kind.to_owned(),
        plural: resource.plural.to_owned(),
        namespaced: resource.namespaced,
        verbs: resource.verbs.clone(),
        subresources: resource
            .subresources
            .iter()
            .map(|s| s.name.clone())
            .collect(),
    }
}

/// Strategic merge patch reads merge keys and field types from the catalog's schemas.
pub(crate) struct SchemaStrategies<'c>(pub &'c Catalog);

impl Strategies for SchemaStrategies<'_> {
    fn field(&self, definition: &str, field: &str) -> Option<FieldStrategy> {
        let property = self.0.schema(definition)?.get("properties")?.get(field)?;
        let meta = self.0.patch_meta(definition, field).unwrap_or_default();
        let strategy = meta.strategy.unwrap_or_default();
        let list = match (strategy.split(',').any(|s| s == "merge"), meta.merge_key) {
            (true, Some(key)) => ListStrategy::Merge { key },
            (true, None) => ListStrategy::MergePrimitives,
            (false, _) => ListStrategy::Replace,
        };
        Some(FieldStrategy {
            child: Child::from_property_schema(property),
            list,
            retain_keys: strategy.split(',').any(|s| s == "retainKeys"),
            replace: strategy == "replace",
        })
    }
}

/// `GET /openapi/v3`: which group-version documents exist, with their hashes.
pub(crate) async fn v3_index(State(state): State<AppState>) -> Response {
    let documents = state.schemas().documents().await;
    json_reply(documents.v3_index().to_vec(), "no-cache, private")
}

#[derive(serde::Deserialize)]
pub(crate) struct HashQuery {
    hash: Option<String>,
}

/// `GET /openapi/v3/<api/v1|apis/<group>/<version>>[?hash=...]`. A matching hash may be
/// cached forever; a stale one is redirected to the current document, as kube-apiserver does.
pub(crate) async fn v3_group_version(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<HashQuery>,
) -> Response {
    let documents = state.schemas().documents().await;
    let Some((body, hash)) = documents.v3_group_version(&key) else {
        return ApiError::not_found_path().into_response();
    };
    match query.hash.as_deref() {
        Some(asked) if asked == hash => json_reply(body.to_vec(), "public, immutable"),
        Some(_) => (
            StatusCode::MOVED_PERMANENTLY,
            [(LOCATION, format!("/openapi/v3/{key}?hash={hash}"))],
        )
            .into_response(),
        None => json_reply(body.to_vec(), "no-cache, private"),
    }
}

/// kubectl 1.27 and older read `/openapi/v2` in gnostic's protobuf encoding, asking for it
/// with `@`; Go's MIME parser cannot read an `@` back, so the reply names it with a dot, as
/// kube-apiserver does.
const V2_PROTOBUF_ACCEPTED: &[&str] = &[
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
];
const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `GET /openapi/v2`, in protobuf or JSON as the client's Accept header prefers.
pub(crate) async fn v2(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let mut wants_protobuf = false;
    let mut wants_json = false;
    for media in accept.split(',') {
        let essence = media.split(';').next().unwrap_or_default().trim();
        if V2_PROTOBUF_ACCEPTED.contains(&essence) {
            wants_protobuf = !wants_json;
        } else if matches!(essence, "application/json" | "*/*" | "application/*" | "") {
            wants_json = !wants_protobuf;
        }
    }
    let documents = state.schemas().documents().await;
    if wants_protobuf {
        return (
            [
                (CONTENT_TYPE, V2_PROTOBUF_CONTENT_TYPE),
                (CACHE_CONTROL, "no-cache, private"),
            ],
            documents.v2_protobuf().to_vec(),
        )
            .into_response();
    }
    if !wants_json {
        return ApiError::from_status_code(
            StatusCode::NOT_ACCEPTABLE,
            "only application/json and application/com.github.proto-openapi.spec.v2.v1.0+protobuf are served for /openapi/v2".to_owned(),
        )
        .into_response();
    }
    json_reply(documents.v2().to_vec(), "no-cache, private")
}

fn json_reply(body: Vec<u8>, cache_control: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, cache_control),
        ],
        body,
    )
        .into_response()
}

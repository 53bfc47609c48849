//! The REST routes for resources: one parser turns a URL into the resource, namespace and
//! name it names ([`Target`]); one handler per HTTP method checks the verb and calls the
//! object operations.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::{Extension, Json};
use serde_json::Value;

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};

use serde_json::json;
use skiff_patch::PatchType;

use crate::cache::{CachedObject, Start};
use crate::fieldmanager::{self, FieldManager};
use crate::fields::FieldSelector;
use crate::objects::ListOptions;
use crate::openapi::SchemaStrategies;
use crate::output::{Output, json_reply, with_warnings};
use crate::registry::{Registry, Resource};
use crate::selector::{LabelSelector, Selectors};
use crate::subresource::{self, View};
use crate::{
    ApiError, AppState, Identity, crds, eviction, objects, reviews, serviceaccount, watch,
};

/// What a resource URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target<'u> {
    group: &'u str,
    version: &'u str,
    namespace: Option<&'u str>,
    plural: &'u str,
    name: Option<&'u str>,
    subresource: Option<&'u str>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` below the group-version:
/// `<plural>[/<name>[/<subresource>]]` or `namespaces/<ns>/<plural>[/<name>[/<subresource>]]`
/// (`namespaces/<name>/<subresource>` is a namespace's own subresource).
fn parse_target(path: &str) -> Option<Target<'_>> {
    let (group, version, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("", "v1", rest)
    } else {
        let mut parts = path.strip_prefix("/apis/")?.splitn(3, '/');
        (parts.next()?, parts.next()?, parts.next()?)
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    let namespace_subresource = |s: &str| group.is_empty() && matches!(s, "status" | "finalize");
    let (namespace, plural, name, subresource) = match segments[..] {
        [plural] => (None, plural, None, None),
        [plural, name] => (None, plural, Some(name), None),
        ["namespaces", name, sub] if namespace_subresource(sub) => {
            (None, "namespaces", Some(name), Some(sub))
        }
        [plural, name, sub] if plural != "namespaces" => (None, plural, Some(name), Some(sub)),
        ["namespaces", ns, plural] => (Some(ns), plural, None, None),
        ["namespaces", ns, plural, name] => (Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => (Some(ns), plural, Some(name), Some(sub)),
        _ => return None,
    };
    Some(Target {
        group,
        version,
        namespace,
        plural,
        name,
        subresource,
    })
}

/// The registry entry a URL names, checked for scope and for `verb`.
fn resolve<'r>(
    registry: &'r Registry,
    target: &Target<'_>,
    verb: &str,
) -> Result<&'r Resource, ApiError> {
    let resource = registry
        .find(target.group, target.version, target.plural)
        .ok_or_else(ApiError::not_found_path)?;
    // A collection of a namespaced resource may be listed across namespaces; anything else
    // must be addressed in its own scope.
    let all_namespaces =
        target.namespace.is_none() && target.name.is_none() && matches!(verb, "list" | "watch");
    if resource.namespaced != target.namespace.is_some() && !all_namespaces {
        return Err(ApiError::not_found_path());
    }
    let verbs = match target.subresource {
        None => &resource.verbs,
        Some(name) => {
            &resource
                .subresources
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(ApiError::not_found_path)?
                .verbs
        }
    };
    if verbs.iter().any(|v| v == verb) {
        Ok(resource)
    } else {
        Err(ApiError::method_not_allowed(verb, resource))
    }
}

fn target(uri: &Uri) -> Result<Target<'_>, ApiError> {
    parse_target(uri.path()).ok_or_else(ApiError::not_found_path)
}

/// The query of a list or watch request.
#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
    #[serde(rename = "fieldSelector")]
    field_selector: Option<String>,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
    #[serde(rename = "resourceVersionMatch")]
    resource_version_match: Option<String>,
    watch: Option<String>,
    #[serde(rename = "allowWatchBookmarks")]
    allow_watch_bookmarks: Option<String>,
    #[serde(rename = "timeoutSeconds")]
    timeout_seconds: Option<String>,
    #[serde(rename = "sendInitialEvents")]
    send_initial_events: Option<String>,
    #[serde(rename = "includeObject")]
    include_object: Option<String>,
}

fn flag(value: &Option<String>) -> bool {
    matches!(value.as_deref(), Some("true" | "1"))
}

/// How a list or watch chooses the revision it is served at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// `resourceVersion` unset: the latest, consistent with the store.
    Latest,
    /// `resourceVersion=0`: whatever the cache has.
    Any,
    /// `resourceVersion=N` (`NotOlderThan`, the default for lists without `limit`).
    NotOlderThan(i64),
    /// `resourceVersionMatch=Exact`, or `resourceVersion=N` with `limit` (legacy semantics).
    Exact(i64),
}

fn freshness(query: &ListQuery, limit: usize) -> Result<Freshness, ApiError> {
    let rv = query.resource_version.as_deref().filter(|v| !v.is_empty());
    let matching = query
        .resource_version_match
        .as_deref()
        .filter(|v| !v.is_empty());
    let parsed = match rv {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid resource version {text:?}: must be a number"
                    ))
                })?,
        ),
    };
    if query
        .continue_token
        .as_deref()
        .is_some_and(|c| !c.is_empty())
        && parsed.is_some_and(|n| n != 0)
    {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    match (parsed, matching) {
        (None, None) => Ok(Freshness::Latest),
        (None, Some(_)) => Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (Some(0), None | Some("NotOlderThan")) => Ok(Freshness::Any),
        (Some(0), Some("Exact")) => Err(ApiError::bad_request(
            "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
        )),
        (Some(n), Some("Exact")) => Ok(Freshness::Exact(n)),
        (Some(n), Some("NotOlderThan")) => Ok(Freshness::NotOlderThan(n)),
        (Some(n), None) if limit > 0 => Ok(Freshness::Exact(n)),
        (Some(n), None) => Ok(Freshness::NotOlderThan(n)),
        (Some(_), Some(other)) => Err(ApiError::bad_request(format!(
            "unsupported resourceVersionMatch value {other:?}: must be Exact or NotOlderThan"
        ))),
    }
}

fn selectors(query: &ListQuery, resource: &Resource) -> Result<Selectors, ApiError> {
    let labels = LabelSelector::parse(query.label_selector.as_deref().unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        query.field_selector.as_deref().unwrap_or_default(),
        resource,
    )
    .map_err(ApiError::bad_request)?;
    Ok(Selectors { labels, fields })
}

fn limit(query: &ListQuery) -> Result<usize, ApiError> {
    match query.limit.as_deref() {
        None | Some("") => Ok(0),
        Some(text) => Ok(text
            .parse::<i64>()
            .map_err(|_| {
                ApiError::bad_request(format!("invalid limit {text:?}: must be an integer"))
            })?
            .max(0) as usize),
    }
}

/// A list, from the watch cache where it can serve it and the store otherwise.
async fn list(
    state: &AppState,
    resource: &Resource,
    namespace: Option<&str>,
    query: &ListQuery,
) -> Result<objects::List, ApiError> {
    let limit = limit(query)?;
    let freshness = freshness(query, limit)?;
    let selectors = selectors(query, resource)?;
    let continue_token = query.continue_token.clone().filter(|t| !t.is_empty());
    if continue_token.is_none() {
        let cached = match freshness {
            // Served whole from the cache, like kube-apiserver (which ignores `limit` here).
            Freshness::Any => {
                objects::list_cached(&state.cache, resource, namespace, &selectors, Some(0), 0)
                    .await?
            }
            Freshness::Latest => {
                objects::list_cached(&state.cache, resource, namespace, &selectors, None, limit)
                    .await?
            }
            Freshness::NotOlderThan(n) => {
                objects::list_cached(
                    &state.cache,
                    resource,
                    namespace,
                    &selectors,
                    Some(n),
                    limit,
                )
                .await?
            }
            Freshness::Exact(_) => None,
        };
        if let Some(list) = cached {
            return Ok(list);
        }
    }
    let exact = match freshness {
        Freshness::Exact(n) => Some(n),
        _ => None,
    };
    let options = ListOptions {
        limit,
        continue_token,
        selectors,
        exact,
    };
    objects::list(&state.store, resource, namespace, &options).await
}

/// The query parameters of a write.
#[derive(Debug, Default)]
struct WriteParams {
    /// `dryRun=All` (the only value Kubernetes accepts).
    dry_run: bool,
    validation: FieldValidation,
    field_manager: Option<String>,
    force: bool,
}

/// What to do with fields the kind's schema does not have (`fieldValidation`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Ignore,
    /// kube-apiserver's default: accept, with a warning per unknown field.
    #[default]
    Warn,
    Strict,
}

impl WriteParams {
    fn parse(query: &Option<String>) -> Result<WriteParams, ApiError> {
        let mut params = WriteParams::default();
        let query = query.as_deref().unwrap_or_default();
        for (key, value) in url_pairs(query) {
            match key.as_str() {
                "dryRun" if value == "All" => params.dry_run = true,
                "dryRun" => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dry run value {value:?}: the only valid value is \"All\""
                    )));
                }
                "fieldValidation" => {
                    params.validation = match value.as_str() {
                        "Ignore" => FieldValidation::Ignore,
                        "Warn" | "" => FieldValidation::Warn,
                        "Strict" => FieldValidation::Strict,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"
                            )));
                        }
                    }
                }
                "fieldManager" => {
                    if value.chars().count() > 128 {
                        return Err(ApiError::bad_request(
                            "fieldManager must not be longer than 128 characters",
                        ));
                    }
                    params.field_manager = Some(value);
                }
                "force" => params.force = value == "true",
                _ => {}
            }
        }
        Ok(params)
    }

    /// Applies field validation to `object`: an error under Strict, warnings under Warn.
    fn check_fields(
        &self,
        state: &AppState,
        resource: &Resource,
        object: &Value,
    ) -> Result<Vec<String>, ApiError> {
        if self.validation == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let unknown = state.schemas().unknown_fields(resource, object);
        if unknown.is_empty() || self.validation == FieldValidation::Warn {
            return Ok(unknown);
        }
        Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = resource.kind,
            version = resource.version,
        )))
    }
}

/// Decoded `key=value` pairs of a query string.
fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key), percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request body (JSON unless the Content-Type says otherwise), with every failure a Status.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::from_status_code(rejection.status(), rejection.body_text())
    })?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    decode_body(content_type, &body)
}

/// Decodes a request body of the media type `content_type` names: JSON, YAML or Kubernetes
/// protobuf. Anything else is a 415, anything malformed a 400; never a panic (fuzzed).
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "application/json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}"))),
        "application/yaml" => fieldmanager::parse_config(body),
        _ if skiff_proto::is_protobuf(essence) => skiff_proto::decode(body).map_err(|e| {
            ApiError::bad_request(format!("invalid protobuf in the request body: {e}"))
        }),
        _ => Err(ApiError::from_status_code(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {essence})"
            ),
        )),
    }
}

/// `GET`: one object, a list, or a watch.
pub(crate) async fn get(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let target = target(&uri)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let output = Output::negotiate(&headers, query.include_object.as_deref())?;
    match target.name {
        Some(name) => {
            let registry = state.registry();
            let resource = resolve(&registry, &target, "get")?;
            let view = view(&target)?;
            let object = objects::get(&state.store, resource, target.namespace, name).await?;
            match view {
                Some(view) => Ok(Json(view.read(resource, &object)).into_response()),
                None => Ok(output.object(resource, object)),
            }
        }
        None if flag(&query.watch) => {
            let registry = state.registry();
            let resource = resolve(&registry, &target, "watch")?;
            let options = query_watch(&query, resource, output)?;
            watch::serve(&state, resource, target.namespace, &options).await
        }
        None => {
            let registry = state.registry();
            let resource = resolve(&registry, &target, "list")?;
            let list = list(&state, resource, target.namespace, &query).await?;
            Ok(output.list(resource, list))
        }
    }
}

/// The parameters of a watch request.
fn query_watch(
    query: &ListQuery,
    resource: &Resource,
    output: Output,
) -> Result<watch::Options, ApiError> {
    let freshness = freshness(query, 0)?;
    let send_initial_events = flag(&query.send_initial_events);
    let start = match freshness {
        Freshness::Latest | Freshness::Any => Start::Snapshot,
        Freshness::NotOlderThan(n) | Freshness::Exact(n) if send_initial_events => {
            Start::SnapshotAfter(n)
        }
        Freshness::NotOlderThan(n) | Freshness::Exact(n) => Start::After(n),
    };
    let timeout = match query.timeout_seconds.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Duration::from_secs(text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid timeoutSeconds {text:?}: must be a number of seconds"
            ))
        })?)),
    };
    Ok(watch::Options {
        start,
        selectors: selectors(query, resource)?,
        bookmarks: flag(&query.allow_watch_bookmarks),
        initial_events_end: send_initial_events,
        timeout,
        output,
    })
}

/// `POST` to a collection: create.
pub(crate) async fn post(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = target(&uri)?;
    let registry = state.registry();
    if target.subresource == Some("binding")
        || (target.group.is_empty() && target.plural == "bindings")
    {
        return bind(&state, &registry, &target, &headers, body).await;
    }
    if target.subresource == Some("eviction") {
        resolve(&registry, &target, "create")?;
        let (Some(namespace), Some(name)) = (target.namespace, target.name) else {
            return Err(ApiError::not_found_path());
        };
        let eviction = json_body(&headers, body)?;
        let named = eviction["metadata"]["name"].as_str().unwrap_or_default();
        if named != name {
            return Err(ApiError::bad_request(format!(
                "name in URL does not match name in Eviction object: {name:?} vs {named:?}"
            )));
        }
        let mut options = objects::DeleteOptions {
            dry_run: WriteParams::parse(&query)?.dry_run,
            ..objects::DeleteOptions::default()
        };
        read_delete_options(&eviction["deleteOptions"], &mut options);
        let reply = eviction::evict(&state, &registry, namespace, name, &options).await?;
        return Ok((StatusCode::CREATED, Json(reply)).into_response());
    }
    if target.subresource == Some("token") {
        resolve(&registry, &target, "create")?;
        let (Some(namespace), Some(name)) = (target.namespace, target.name) else {
            return Err(ApiError::not_found_path());
        };
        let request = json_body(&headers, body)?;
        let reply =
            serviceaccount::request_token(&state, &registry, namespace, name, &request).await?;
        return Ok((StatusCode::CREATED, Json(reply)).into_response());
    }
    if target.name.is_some() {
        return Err(ApiError::not_found_path());
    }
    let resource = resolve(&registry, &target, "create")?;
    let params = WriteParams::parse(&query)?;
    let object = json_body(&headers, body)?;
    objects::check_type(resource, &object)?;
    let mut object = object;
    check_kind_rules(&registry, resource, &mut object)?;
    let Extension(who) = identity.ok_or_else(ApiError::unauthorized)?;
    if (resource.group, resource.kind) == ("authentication.k8s.io", "TokenReview") {
        let reply = serviceaccount::review(&state, resource, &object).await;
        return Ok((StatusCode::CREATED, Json(reply)).into_response());
    }
    if let Some(reply) = reviews::answer(resource, &who, &object) {
        return Ok((StatusCode::CREATED, Json(reply?)).into_response());
    }
    let warnings = params.check_fields(&state, resource, &object)?;
    let schemas = state.schemas();
    FieldManager::new(
        &schemas,
        resource,
        None,
        params.field_manager.as_deref(),
        user_agent(&headers),
    )
    .track(None, &mut object);
    let created = objects::create(
        &state.store,
        &state.cache,
        resource,
        target.namespace,
        object,
        params.dry_run,
    )
    .await?;
    Ok(with_warnings(StatusCode::CREATED, created, &warnings))
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// What some kinds require of every written object: CustomResourceDefinitions are checked and
/// defaulted, custom resources validated by their schema.
fn check_kind_rules(
    registry: &Registry,
    resource: &Resource,
    object: &mut Value,
) -> Result<(), ApiError> {
    if crds::is_definition(resource) {
        crds::prepare(resource, registry, object)?;
    }
    if resource.custom.is_some() {
        crds::validate(resource, object)?;
    }
    Ok(())
}

/// The subresource view a URL names (`status`, `scale`); other subresources are not served
/// by the API server itself.
fn view(target: &Target<'_>) -> Result<Option<View>, ApiError> {
    match target.subresource {
        None => Ok(None),
        Some(name) => View::named(name)
            .map(Some)
            .ok_or_else(ApiError::not_found_path),
    }
}

/// `PUT` to an object (update) or to its `status` or `scale`.
pub(crate) async fn put(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = target(&uri)?;
    let name = target.name.ok_or_else(ApiError::not_found_path)?;
    let registry = state.registry();
    let resource = resolve(&registry, &target, "update")?;
    let view = view(&target)?;
    let params = WriteParams::parse(&query)?;
    let body = json_body(&headers, body)?;
    let schemas = state.schemas();
    let manager = FieldManager::new(
        &schemas,
        resource,
        view,
        params.field_manager.as_deref(),
        user_agent(&headers),
    );
    let Some(view) = view else {
        let mut body = objects::prepare_replacement(resource, target.namespace, name, body)?;
        check_kind_rules(&registry, resource, &mut body)?;
        let warnings = params.check_fields(&state, resource, &body)?;
        let expected = objects::precondition(resource, name, &body)?;
        let updated = objects::update_with(
            &state.store,
            resource,
            target.namespace,
            name,
            expected,
            params.dry_run,
            |old| {
                let mut new = objects::replaced(resource, old, &body);
                manager.track(Some(old), &mut new);
                Ok(new)
            },
        )
        .await?;
        return Ok(with_warnings(StatusCode::OK, updated, &warnings));
    };
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let expected = objects::precondition(resource, name, &body)?;
    let updated = objects::update_with(
        &state.store,
        resource,
        target.namespace,
        name,
        expected,
        params.dry_run,
        |old| {
            let mut new = view.merge(resource, old, &body)?;
            manager.track(Some(old), &mut new);
            Ok(new)
        },
    )
    .await?;
    Ok(Json(view.read(resource, &updated)).into_response())
}

/// `POST pods/<name>/binding` (or the legacy `bindings` collection): assigns a pod to a node,
/// once, as the scheduler does. Replies with a Success Status.
async fn bind(
    state: &AppState,
    registry: &Registry,
    target: &Target<'_>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let binding = json_body(headers, body)?;
    let namespace = target.namespace.ok_or_else(ApiError::not_found_path)?;
    let pods = registry
        .find("", "v1", "pods")
        .ok_or_else(ApiError::not_found_path)?;
    if target.subresource.is_some() {
        resolve(registry, target, "create")?;
    }
    let pod = match target.name {
        Some(name) => name.to_owned(),
        None => binding["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    let node = binding["target"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if node.is_empty()
        || binding["target"]["kind"]
            .as_str()
            .is_some_and(|k| k != "Node")
    {
        return Err(ApiError::invalid(
            pods,
            &pod,
            "target.name",
            "Required value: a binding names the node",
        ));
    }
    if pod.is_empty() {
        return Err(ApiError::invalid(
            pods,
            &pod,
            "metadata.name",
            "Required value",
        ));
    }
    objects::update_with(&state.store, pods, Some(namespace), &pod, None, false, |old| {
        if old["metadata"]["deletionTimestamp"].is_string() {
            return Err(ApiError::conflict(pods, &pod));
        }
        if let Some(current) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            let mut error = ApiError::conflict(pods, &pod);
            error.message = format!(
                "Operation cannot be fulfilled on pods/binding \"{pod}\": pod {pod} is already assigned to node \"{current}\""
            );
            return Err(error);
        }
        let mut bound = old.clone();
        bound["spec"]["nodeName"] = json!(node);
        if let Some(annotations) = binding["metadata"]["annotations"].as_object() {
            for (key, value) in annotations {
                bound["metadata"]["annotations"][key] = value.clone();
            }
        }
        let mut conditions: Vec<Value> = bound["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "PodScheduled");
        conditions.push(json!({
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": null,
            "lastTransitionTime": objects::now_rfc3339(),
        }));
        bound["status"]["conditions"] = json!(conditions);
        Ok(bound)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "code": 201,
        })),
    )
        .into_response())
}

/// The media types `PATCH` accepts, as kube-apiserver lists them.
const PATCH_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json";

/// `PATCH` an object, or its `status` or `scale`: JSON patch, merge patch or strategic merge
/// patch, applied to the current object and written back with a compare-and-swap (re-applied
/// on a concurrent write, unless the patch itself names a `resourceVersion`).
pub(crate) async fn patch(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = target(&uri)?;
    let name = target.name.ok_or_else(ApiError::not_found_path)?;
    let registry = state.registry();
    let resource = resolve(&registry, &target, "patch")?;
    let view = view(&target)?;
    let params = WriteParams::parse(&query)?;
    let body = body.map_err(|rejection| {
        ApiError::from_status_code(rejection.status(), rejection.body_text())
    })?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.split(';').next().unwrap_or_default().trim() == "application/apply-patch+yaml" {
        return server_side_apply(
            &state, &registry, resource, &target, view, &params, &headers, &body,
        )
        .await;
    }
    let patch_type = PatchType::from_content_type(content_type).ok_or_else(|| {
        ApiError::from_status_code(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {PATCH_TYPES}"
            ),
        )
    })?;
    let schemas = state.schemas();
    let definition = match view {
        Some(View::Scale) => schemas.catalog.definition_for("autoscaling", "v1", "Scale"),
        _ => schemas.definition(resource),
    };
    let strategies = SchemaStrategies(&schemas.catalog);
    let keep_status = view.is_none() && subresource::has_status(resource);
    let manager = FieldManager::new(
        &schemas,
        resource,
        view,
        params.field_manager.as_deref(),
        user_agent(&headers),
    );
    let warnings = std::sync::Mutex::new(Vec::new());
    let updated = objects::update_with(
        &state.store,
        resource,
        target.namespace,
        name,
        None,
        params.dry_run,
        |old| {
            let original = match view {
                Some(view) => view.read(resource, old),
                None => old.clone(),
            };
            let patched = skiff_patch::apply(&original, &body, patch_type, definition, &strategies)
                .map_err(|e| patch_error(e, resource, name))?;
            // A resourceVersion in the patch is a precondition.
            let rv = &patched["metadata"]["resourceVersion"];
            if !rv.is_null() && *rv != old["metadata"]["resourceVersion"] {
                return Err(ApiError::conflict(resource, name));
            }
            let mut new = match view {
                Some(view) => view.merge(resource, old, &patched)?,
                None => patched,
            };
            if view.is_none() {
                objects::keep_namespace_finalizers(resource, old, &mut new);
            }
            if keep_status {
                new["status"] = old["status"].clone();
                if new["status"].is_null()
                    && let Some(fields) = new.as_object_mut()
                {
                    fields.remove("status");
                }
            }
            if view.is_none() {
                check_kind_rules(&registry, resource, &mut new)?;
                *warnings.lock().expect("not poisoned") =
                    params.check_fields(&state, resource, &new)?;
            }
            manager.track(Some(old), &mut new);
            Ok(new)
        },
    )
    .await?;
    let warnings = warnings.into_inner().expect("not poisoned");
    match view {
        Some(view) => Ok(Json(view.read(resource, &updated)).into_response()),
        None => Ok(with_warnings(StatusCode::OK, updated, &warnings)),
    }
}

/// Server-side apply: the body is the manager's whole intent (YAML). The object is created
/// if absent; otherwise merged with the fields other managers own, conflicts refused with a
/// 409 unless `force=true`.
#[allow(clippy::too_many_arguments)]
async fn server_side_apply(
    state: &AppState,
    registry: &Registry,
    resource: &Resource,
    target: &Target<'_>,
    view: Option<View>,
    params: &WriteParams,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let name = target.name.ok_or_else(ApiError::not_found_path)?;
    let Some(manager_name) = params.field_manager.as_deref().filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    };
    let mut config = fieldmanager::parse_config(body)?;
    objects::check_type(resource, &config)?;
    match config["metadata"]["name"].as_str() {
        Some(sent) if sent != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({sent}) does not match the name on the URL ({name})"
            )));
        }
        _ => config["metadata"]["name"] = json!(name),
    }
    if let Some(ns) = target.namespace {
        config["metadata"]["namespace"] = json!(ns);
    }
    let schemas = state.schemas();
    let manager = FieldManager::new(
        &schemas,
        resource,
        view,
        Some(manager_name),
        user_agent(headers),
    );
    let warnings = params.check_fields(state, resource, &config)?;
    let existing = match objects::get(&state.store, resource, target.namespace, name).await {
        Ok(object) => Some(object),
        Err(e) if e.code == StatusCode::NOT_FOUND => None,
        Err(e) => return Err(e),
    };
    let Some(_) = existing else {
        if view.is_some() {
            return Err(ApiError::not_found(resource, name));
        }
        let mut object = manager.apply(resource, None, &config, params.force)?;
        check_kind_rules(registry, resource, &mut object)?;
        let created = objects::create(
            &state.store,
            &state.cache,
            resource,
            target.namespace,
            object,
            params.dry_run,
        )
        .await?;
        return Ok(with_warnings(StatusCode::CREATED, created, &warnings));
    };
    let precondition = objects::precondition(resource, name, &config)?;
    let updated = objects::update_with(
        &state.store,
        resource,
        target.namespace,
        name,
        precondition,
        params.dry_run,
        |old| {
            let live = match view {
                Some(view) => view.read(resource, old),
                None => old.clone(),
            };
            let applied = manager.apply(resource, Some(&live), &config, params.force)?;
            let mut new = match view {
                Some(view) => view.merge(resource, old, &applied)?,
                None => objects::replaced(resource, old, &applied),
            };
            if view.is_some() {
                new["metadata"]["managedFields"] = applied["metadata"]["managedFields"].clone();
            } else {
                check_kind_rules(registry, resource, &mut new)?;
            }
            Ok(new)
        },
    )
    .await?;
    match view {
        Some(view) => Ok(Json(view.read(resource, &updated)).into_response()),
        None => Ok(with_warnings(StatusCode::OK, updated, &warnings)),
    }
}

/// A patch that cannot be applied, as kube-apiserver reports it.
fn patch_error(error: skiff_patch::PatchError, resource: &Resource, name: &str) -> ApiError {
    use skiff_patch::PatchError;
    match error {
        PatchError::Malformed(why) => ApiError::bad_request(format!("error decoding patch: {why}")),
        PatchError::StrategicMergeUnsupported => {
            ApiError::from_status_code(StatusCode::UNSUPPORTED_MEDIA_TYPE, error.to_string())
        }
        PatchError::TooManyOperations { .. } => {
            ApiError::from_status_code(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
        }
        other => ApiError::from_status_code(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} \"{name}\" is invalid: {other}", resource.kind),
        ),
    }
}

/// `DELETE` an object, or (`deletecollection`) every object of a collection that the
/// selectors pick. Options come from a `DeleteOptions` body and the query.
pub(crate) async fn delete(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(raw): RawQuery,
    query: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = target(&uri)?;
    let options = delete_options(&raw, &headers, body)?;
    let registry = state.registry();
    let Some(name) = target.name else {
        let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let resource = resolve(&registry, &target, "deletecollection")?;
        let deleted =
            delete_collection(&state, resource, target.namespace, &query, &options).await?;
        return Ok(json_reply(StatusCode::OK, deleted.to_json(resource)));
    };
    let resource = resolve(&registry, &target, "delete")?;
    Ok(
        Json(objects::delete(&state.store, resource, target.namespace, name, &options).await?)
            .into_response(),
    )
}

/// `DeleteOptions` from the body (JSON or protobuf; may be empty) and the query, which
/// kubectl and client-go both use.
fn delete_options(
    raw: &Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<objects::DeleteOptions, ApiError> {
    let params = WriteParams::parse(raw)?;
    let mut options = objects::DeleteOptions {
        dry_run: params.dry_run,
        ..objects::DeleteOptions::default()
    };
    let bytes = body.as_ref().map(|b| !b.is_empty()).unwrap_or(false);
    if bytes {
        read_delete_options(&json_body(headers, body)?, &mut options);
    }
    for (key, value) in url_pairs(raw.as_deref().unwrap_or_default()) {
        match key.as_str() {
            "gracePeriodSeconds" => {
                options.grace_period = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {value:?}"))
                })?)
            }
            "propagationPolicy" => options.propagation = Some(value),
            _ => {}
        }
    }
    if let Some(policy) = &options.propagation
        && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy must be one of Orphan, Background or Foreground, not {policy:?}"
        )));
    }
    Ok(options)
}

/// Reads a `DeleteOptions` body (of a DELETE, or an Eviction's `deleteOptions`) into `options`.
fn read_delete_options(body: &Value, options: &mut objects::DeleteOptions) {
    if body["dryRun"]
        .as_array()
        .is_some_and(|v| v.iter().any(|d| d == "All"))
    {
        options.dry_run = true;
    }
    options.grace_period = body["gracePeriodSeconds"].as_i64();
    options.uid = body["preconditions"]["uid"].as_str().map(str::to_owned);
    options.resource_version = body["preconditions"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    options.propagation = body["propagationPolicy"].as_str().map(str::to_owned);
    if body["orphanDependents"] == json!(true) && options.propagation.is_none() {
        options.propagation = Some("Orphan".to_owned());
    }
}

/// Deletes what a list with the same query returns; returns the deleted objects as a list.
/// Only the names of the listed objects are read, and each deleted object is kept encoded, so
/// deleting thousands holds no decoded copy of them all.
async fn delete_collection(
    state: &AppState,
    resource: &Resource,
    namespace: Option<&str>,
    query: &ListQuery,
    options: &objects::DeleteOptions,
) -> Result<objects::List, ApiError> {
    let listed = list(state, resource, namespace, query).await?;
    let revision = listed.revision;
    let names = listed.names();
    drop(listed);
    let mut deleted = Vec::new();
    for (namespace, name) in names {
        match objects::delete(&state.store, resource, namespace.as_deref(), &name, options).await {
            Ok(object) => deleted.push(Arc::new(CachedObject::new(
                &object,
                resource.group,
                resource.plural,
            ))),
            // Deleted by someone else meanwhile: nothing left to do.
            Err(e) if e.code == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(objects::List {
        revision,
        continue_token: None,
        items: objects::Items::Encoded(deleted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_targets() {
        let t = |group, version, namespace, plural, name| Target {
            group,
            version,
            namespace,
            plural,
            name,
            subresource: None,
        };
        assert_eq!(
            parse_target("/api/v1/pods"),
            Some(t("", "v1", None, "pods", None))
        );
        assert_eq!(
            parse_target("/api/v1/namespaces/default"),
            Some(t("", "v1", None, "namespaces", Some("default")))
        );
        assert_eq!(
            parse_target("/api/v1/namespaces/ns/pods"),
            Some(t("", "v1", Some("ns"), "pods", None))
        );
        assert_eq!(
            parse_target("/api/v1/namespaces/ns/pods/p"),
            Some(t("", "v1", Some("ns"), "pods", Some("p")))
        );
        assert_eq!(
            parse_target("/apis/apps/v1/namespaces/ns/deployments/web"),
            Some(t("apps", "v1", Some("ns"), "deployments", Some("web")))
        );
        assert_eq!(
            parse_target("/apis/rbac.authorization.k8s.io/v1/clusterroles"),
            Some(t(
                "rbac.authorization.k8s.io",
                "v1",
                None,
                "clusterroles",
                None
            ))
        );
        let sub = |namespace, plural, name, subresource| Target {
            group: "",
            version: "v1",
            namespace,
            plural,
            name: Some(name),
            subresource: Some(subresource),
        };
        assert_eq!(
            parse_target("/api/v1/namespaces/ns/pods/p/status"),
            Some(sub(Some("ns"), "pods", "p", "status"))
        );
        assert_eq!(
            parse_target("/api/v1/namespaces/ns/status"),
            Some(sub(None, "namespaces", "ns", "status"))
        );
        assert_eq!(
            parse_target("/api/v1/nodes/n1/status"),
            Some(sub(None, "nodes", "n1", "status"))
        );
        assert_eq!(parse_target("/api/v1/namespaces/ns/pods/p/status/x"), None);
        assert_eq!(parse_target("/api/v1/pods/"), None);
        assert_eq!(parse_target("/apis/apps"), None);
    }
}

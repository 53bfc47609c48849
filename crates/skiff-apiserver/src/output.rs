//! How a reply is encoded: plain JSON, or a `meta.k8s.io/v1` Table when the client's Accept
//! header asks for one (`kubectl get`), with warnings as `Warning: 299` headers.

use axum::Json;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skiff_table::IncludeObject;

use crate::ApiError;
use crate::objects::List;
use crate::registry::Resource;

/// The encoding a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Json,
    Table(IncludeObject),
}

const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

impl Output {
    /// Reads the Accept header (`application/json;as=Table;v=v1;g=meta.k8s.io,...`) and the
    /// `includeObject` parameter.
    pub(crate) fn negotiate(
        headers: &HeaderMap,
        include_object: Option<&str>,
    ) -> Result<Output, ApiError> {
        let accept = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let wants_table = accept.split(',').any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params.contains(&"g=meta.k8s.io")
                && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
        });
        if !wants_table {
            return Ok(Output::Json);
        }
        let include = match include_object.filter(|v| !v.is_empty()) {
            None => IncludeObject::Metadata,
            Some(value) => IncludeObject::from_query(value).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "includeObject must be one of None, Metadata or Object, not {value:?}"
                ))
            })?,
        };
        Ok(Output::Table(include))
    }

    /// A single object in this output.
    pub(crate) fn object(self, resource: &Resource, object: Value) -> Response {
        match self {
            Output::Json => Json(object).into_response(),
            Output::Table(include) => {
                let meta = json!({ "resourceVersion": object["metadata"]["resourceVersion"] });
                table_reply(table(resource, include, &[object], meta))
            }
        }
    }

    /// A list (`<Kind>List`) in this output.
    pub(crate) fn list(self, resource: &Resource, list: List) -> Response {
        match self {
            Output::Json => json_reply(StatusCode::OK, list.to_json(resource)),
            Output::Table(include) => {
                let meta = list.metadata();
                table_reply(table(resource, include, &list.into_values(), meta))
            }
        }
    }
}

/// JSON already encoded, as a reply.
pub(crate) fn json_reply(code: StatusCode, json: Vec<u8>) -> Response {
    (code, [(CONTENT_TYPE, "application/json")], json).into_response()
}

/// Objects of `resource` as a Table; `list_meta` becomes its metadata.
pub(crate) fn table(
    resource: &Resource,
    include: IncludeObject,
    objects: &[Value],
    list_meta: Value,
) -> Value {
    match &resource.custom {
        Some(custom) => skiff_table::custom_table(
            &custom.printer_columns,
            objects,
            time::OffsetDateTime::now_utc(),
            include,
            list_meta,
        ),
        None => skiff_table::table(
            resource.kind,
            objects,
            time::OffsetDateTime::now_utc(),
            include,
            list_meta,
        ),
    }
}

fn table_reply(table: Value) -> Response {
    ([(CONTENT_TYPE, TABLE_CONTENT_TYPE)], Json(table)).into_response()
}

/// A JSON reply with `Warning: 299 - "..."` headers, as kubectl prints them.
pub(crate) fn with_warnings(code: StatusCode, body: Value, warnings: &[String]) -> Response {
    let mut response = (code, Json(body)).into_response();
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response
                .headers_mut()
                .append(HeaderName::from_static("warning"), value);
        }
    }
    response
}

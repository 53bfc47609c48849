//! The REST routes for resources: one parser turns a URL into the resource, namespace and
//! name it names ([`Target`]); one handler per HTTP method checks the verb and calls the
//! object operations.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

use crate::objects::ListOptions;
use crate::registry::Resource;
use crate::selector::LabelSelector;
use crate::{ApiError, AppState, objects};

/// What a resource URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target<'u> {
    group: &'u str,
    version: &'u str,
    namespace: Option<&'u str>,
    plural: &'u str,
    name: Option<&'u str>,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` below the group-version:
/// `<plural>[/<name>]` or `namespaces/<ns>/<plural>[/<name>]`. Subresources are not served yet.
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
    let (namespace, plural, name) = match segments[..] {
        [plural] => (None, plural, None),
        [plural, name] => (None, plural, Some(name)),
        ["namespaces", ns, plural] => (Some(ns), plural, None),
        ["namespaces", ns, plural, name] => (Some(ns), plural, Some(name)),
        _ => return None,
    };
    Some(Target {
        group,
        version,
        namespace,
        plural,
        name,
    })
}

/// The registry entry a URL names, checked for scope and for `verb`.
fn resolve<'s>(
    state: &'s AppState,
    target: &Target<'_>,
    verb: &str,
) -> Result<&'s Resource, ApiError> {
    let resource = state
        .registry
        .resources()
        .iter()
        .find(|r| {
            r.group == target.group && r.version == target.version && r.plural == target.plural
        })
        .ok_or_else(ApiError::not_found_path)?;
    // A collection of a namespaced resource may be listed across namespaces; anything else
    // must be addressed in its own scope.
    let all_namespaces = target.namespace.is_none() && target.name.is_none() && verb == "list";
    if resource.namespaced != target.namespace.is_some() && !all_namespaces {
        return Err(ApiError::not_found_path());
    }
    if resource.verbs.iter().any(|v| v == verb) {
        Ok(resource)
    } else {
        Err(ApiError::method_not_allowed(verb, resource))
    }
}

fn target(uri: &Uri) -> Result<Target<'_>, ApiError> {
    parse_target(uri.path()).ok_or_else(ApiError::not_found_path)
}

/// The query of a list request (other parameters are not acted on yet).
#[derive(serde::Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<String>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
}

fn list_options(query: Result<Query<ListQuery>, QueryRejection>) -> Result<ListOptions, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| {
                ApiError::bad_request(format!("invalid limit {text:?}: must be an integer"))
            })?
            .max(0) as usize,
    };
    let labels = LabelSelector::parse(query.label_selector.as_deref().unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    Ok(ListOptions {
        limit,
        continue_token: query.continue_token.filter(|t| !t.is_empty()),
        labels,
    })
}

/// `dryRun=All` (the only value Kubernetes accepts) or nothing.
fn dry_run(query: &Option<String>) -> Result<bool, ApiError> {
    let mut dry = false;
    for pair in query.as_deref().unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("dryRun=") {
            if value != "All" {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value {value:?}: the only valid value is \"All\""
                )));
            }
            dry = true;
        }
    }
    Ok(dry)
}

/// A JSON request body, with every failure a Status.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::from_status_code(rejection.status(), rejection.body_text())
    })?;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence != "application/json" {
        return Err(ApiError::from_status_code(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json (got {essence})"
            ),
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))
}

/// `GET`: one object, or a list.
pub(crate) async fn get(
    State(state): State<AppState>,
    uri: Uri,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&uri)?;
    match target.name {
        Some(name) => {
            let resource = resolve(&state, &target, "get")?;
            Ok(Json(
                objects::get(&state.store, resource, target.namespace, name).await?,
            ))
        }
        None => {
            let resource = resolve(&state, &target, "list")?;
            let options = list_options(query)?;
            Ok(Json(
                objects::list(&state.store, resource, target.namespace, &options).await?,
            ))
        }
    }
}

/// `POST` to a collection: create.
pub(crate) async fn post(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let target = target(&uri)?;
    if target.name.is_some() {
        return Err(ApiError::not_found_path());
    }
    let resource = resolve(&state, &target, "create")?;
    let dry = dry_run(&query)?;
    let object = json_body(&headers, body)?;
    let created = objects::create(&state.store, resource, target.namespace, object, dry).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `PUT` to an object: update.
pub(crate) async fn put(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let target = target(&uri)?;
    let name = target.name.ok_or_else(ApiError::not_found_path)?;
    let resource = resolve(&state, &target, "update")?;
    let dry = dry_run(&query)?;
    let object = json_body(&headers, body)?;
    Ok(Json(
        objects::update(&state.store, resource, target.namespace, name, object, dry).await?,
    ))
}

/// `DELETE` an object.
pub(crate) async fn delete(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let target = target(&uri)?;
    let name = target.name.ok_or_else(ApiError::not_found_path)?;
    let resource = resolve(&state, &target, "delete")?;
    let dry = dry_run(&query)?;
    Ok(Json(
        objects::delete(&state.store, resource, target.namespace, name, dry).await?,
    ))
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
        assert_eq!(parse_target("/api/v1/namespaces/ns/pods/p/status"), None);
        assert_eq!(parse_target("/api/v1/pods/"), None);
        assert_eq!(parse_target("/apis/apps"), None);
    }
}

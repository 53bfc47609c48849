//! The REST routes for resources: resolve the URL to a registry entry and a namespace, check
//! the verb, and call the object operations.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::objects::ListOptions;
use crate::registry::Resource;
use crate::selector::LabelSelector;
use crate::{ApiError, AppState, objects};

/// Which resource and scope a URL names.
fn resolve<'a>(
    state: &'a AppState,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<&'a Resource, ApiError> {
    state
        .registry
        .resources()
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
        .ok_or_else(ApiError::not_found_path)
}

fn require_verb(resource: &Resource, verb: &str) -> Result<(), ApiError> {
    if resource.verbs.iter().any(|v| v == verb) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(verb, resource))
    }
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

/// A collection: cluster-scoped, or a namespaced resource across all namespaces.
async fn collection(
    state: &AppState,
    group: &str,
    version: &str,
    plural: &str,
    options: ListOptions,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    require_verb(resource, "list")?;
    Ok(Json(
        objects::list(&state.store, resource, None, &options).await?,
    ))
}

async fn namespaced_collection(
    state: &AppState,
    group: &str,
    version: &str,
    namespace: &str,
    plural: &str,
    options: ListOptions,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    if !resource.namespaced {
        return Err(ApiError::not_found_path());
    }
    require_verb(resource, "list")?;
    Ok(Json(
        objects::list(&state.store, resource, Some(namespace), &options).await?,
    ))
}

async fn item(
    state: &AppState,
    group: &str,
    version: &str,
    namespace: Option<&str>,
    plural: &str,
    name: &str,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    if resource.namespaced != namespace.is_some() {
        return Err(ApiError::not_found_path());
    }
    require_verb(resource, "get")?;
    Ok(Json(
        objects::get(&state.store, resource, namespace, name).await?,
    ))
}

pub(crate) async fn core_collection(
    State(state): State<AppState>,
    Path(plural): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    collection(&state, "", "v1", &plural, list_options(query)?).await
}

pub(crate) async fn core_item(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    item(&state, "", "v1", None, &plural, &name).await
}

pub(crate) async fn core_namespaced_collection(
    State(state): State<AppState>,
    Path((namespace, plural)): Path<(String, String)>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    namespaced_collection(&state, "", "v1", &namespace, &plural, list_options(query)?).await
}

pub(crate) async fn core_namespaced_item(
    State(state): State<AppState>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    item(&state, "", "v1", Some(&namespace), &plural, &name).await
}

pub(crate) async fn group_collection(
    State(state): State<AppState>,
    Path((group, version, plural)): Path<(String, String, String)>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    collection(&state, &group, &version, &plural, list_options(query)?).await
}

pub(crate) async fn group_item(
    State(state): State<AppState>,
    Path((group, version, plural, name)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    item(&state, &group, &version, None, &plural, &name).await
}

pub(crate) async fn group_namespaced_collection(
    State(state): State<AppState>,
    Path((group, version, namespace, plural)): Path<(String, String, String, String)>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    namespaced_collection(
        &state,
        &group,
        &version,
        &namespace,
        &plural,
        list_options(query)?,
    )
    .await
}

pub(crate) async fn group_namespaced_item(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    item(&state, &group, &version, Some(&namespace), &plural, &name).await
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

async fn create_in(
    state: &AppState,
    (group, version, namespace, plural): (&str, &str, Option<&str>, &str),
    headers: &HeaderMap,
    query: &Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let resource = resolve(state, group, version, plural)?;
    if resource.namespaced != namespace.is_some() {
        return Err(ApiError::not_found_path());
    }
    require_verb(resource, "create")?;
    let dry = dry_run(query)?;
    let object = json_body(headers, body)?;
    let created = objects::create(&state.store, resource, namespace, object, dry).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn delete_in(
    state: &AppState,
    (group, version, namespace, plural, name): (&str, &str, Option<&str>, &str, &str),
    query: &Option<String>,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    if resource.namespaced != namespace.is_some() {
        return Err(ApiError::not_found_path());
    }
    require_verb(resource, "delete")?;
    let dry = dry_run(query)?;
    Ok(Json(
        objects::delete(&state.store, resource, namespace, name, dry).await?,
    ))
}

pub(crate) async fn core_create(
    State(state): State<AppState>,
    Path(plural): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_in(&state, ("", "v1", None, &plural), &headers, &query, body).await
}

pub(crate) async fn core_namespaced_create(
    State(state): State<AppState>,
    Path((namespace, plural)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_in(
        &state,
        ("", "v1", Some(&namespace), &plural),
        &headers,
        &query,
        body,
    )
    .await
}

pub(crate) async fn group_create(
    State(state): State<AppState>,
    Path((group, version, plural)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_in(
        &state,
        (&group, &version, None, &plural),
        &headers,
        &query,
        body,
    )
    .await
}

pub(crate) async fn group_namespaced_create(
    State(state): State<AppState>,
    Path((group, version, namespace, plural)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_in(
        &state,
        (&group, &version, Some(&namespace), &plural),
        &headers,
        &query,
        body,
    )
    .await
}

pub(crate) async fn core_delete(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    delete_in(&state, ("", "v1", None, &plural, &name), &query).await
}

pub(crate) async fn core_namespaced_delete(
    State(state): State<AppState>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    delete_in(&state, ("", "v1", Some(&namespace), &plural, &name), &query).await
}

pub(crate) async fn group_delete(
    State(state): State<AppState>,
    Path((group, version, plural, name)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    delete_in(&state, (&group, &version, None, &plural, &name), &query).await
}

pub(crate) async fn group_namespaced_delete(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    delete_in(
        &state,
        (&group, &version, Some(&namespace), &plural, &name),
        &query,
    )
    .await
}

async fn update_in(
    state: &AppState,
    (group, version, namespace, plural, name): (&str, &str, Option<&str>, &str, &str),
    headers: &HeaderMap,
    query: &Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    if resource.namespaced != namespace.is_some() {
        return Err(ApiError::not_found_path());
    }
    require_verb(resource, "update")?;
    let dry = dry_run(query)?;
    let object = json_body(headers, body)?;
    Ok(Json(
        objects::update(&state.store, resource, namespace, name, object, dry).await?,
    ))
}

pub(crate) async fn core_update(
    State(state): State<AppState>,
    Path((plural, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    update_in(
        &state,
        ("", "v1", None, &plural, &name),
        &headers,
        &query,
        body,
    )
    .await
}

pub(crate) async fn core_namespaced_update(
    State(state): State<AppState>,
    Path((namespace, plural, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    update_in(
        &state,
        ("", "v1", Some(&namespace), &plural, &name),
        &headers,
        &query,
        body,
    )
    .await
}

pub(crate) async fn group_update(
    State(state): State<AppState>,
    Path((group, version, plural, name)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    update_in(
        &state,
        (&group, &version, None, &plural, &name),
        &headers,
        &query,
        body,
    )
    .await
}

pub(crate) async fn group_namespaced_update(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    update_in(
        &state,
        (&group, &version, Some(&namespace), &plural, &name),
        &headers,
        &query,
        body,
    )
    .await
}

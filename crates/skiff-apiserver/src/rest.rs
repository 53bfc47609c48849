//! The REST routes for resources: resolve the URL to a registry entry and a namespace, check
//! the verb, and call the object operations.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;

use crate::registry::Resource;
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

/// A collection: cluster-scoped, or a namespaced resource across all namespaces.
async fn collection(
    state: &AppState,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    require_verb(resource, "list")?;
    Ok(Json(objects::list(&state.store, resource, None).await?))
}

async fn namespaced_collection(
    state: &AppState,
    group: &str,
    version: &str,
    namespace: &str,
    plural: &str,
) -> Result<Json<Value>, ApiError> {
    let resource = resolve(state, group, version, plural)?;
    if !resource.namespaced {
        return Err(ApiError::not_found_path());
    }
    require_verb(resource, "list")?;
    Ok(Json(
        objects::list(&state.store, resource, Some(namespace)).await?,
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
) -> Result<Json<Value>, ApiError> {
    collection(&state, "", "v1", &plural).await
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
) -> Result<Json<Value>, ApiError> {
    namespaced_collection(&state, "", "v1", &namespace, &plural).await
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
) -> Result<Json<Value>, ApiError> {
    collection(&state, &group, &version, &plural).await
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
) -> Result<Json<Value>, ApiError> {
    namespaced_collection(&state, &group, &version, &namespace, &plural).await
}

pub(crate) async fn group_namespaced_item(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    item(&state, &group, &version, Some(&namespace), &plural, &name).await
}

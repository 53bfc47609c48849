//! Discovery: what groups, versions and resources exist. Aggregated discovery
//! (`apidiscovery.k8s.io` v2, and v2beta1 for kubectl up to 1.29) answers `/api` and `/apis`
//! in one document each when the client asks for it in `Accept`; otherwise the legacy
//! documents (APIVersions, APIGroupList, APIGroup, APIResourceList) are served. Everything is
//! derived from the [`Registry`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE, HOST, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::registry::{Registry, Resource};
use crate::{ApiError, AppState};

/// Which representation the client accepts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Representation {
    Aggregated(&'static str),
    Legacy,
}

/// Reads `Accept` in the client's order of preference.
pub(crate) fn negotiate(headers: &HeaderMap) -> Representation {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Representation::Legacy;
    };
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        match (essence, param("as"), param("g"), param("v")) {
            (
                "application/json",
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io"),
                Some("v2"),
            ) => {
                return Representation::Aggregated("v2");
            }
            (
                "application/json",
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io"),
                Some("v2beta1"),
            ) => {
                return Representation::Aggregated("v2beta1");
            }
            ("application/json" | "*/*" | "application/*", None, _, _) => {
                return Representation::Legacy;
            }
            _ => {}
        }
    }
    Representation::Legacy
}

fn aggregated(version: &'static str, items: Vec<Value>) -> Response {
    let content_type =
        format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(VARY, HeaderValue::from_static("Accept"));
    response
}

fn legacy(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Accept"));
    response
}

fn discovery_resource(r: &Resource) -> Value {
    json!({
        "resource": r.plural,
        "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
        "shortNames": r.short_names,
        "categories": r.categories,
        "subresources": r.subresources.iter().map(|s| json!({
            "subresource": s.name,
            "responseKind": { "group": s.group, "version": s.version, "kind": s.kind },
            "verbs": s.verbs,
        })).collect::<Vec<_>>(),
    })
}

fn discovery_group(registry: &Registry, group: &str, versions: &[&str]) -> Value {
    let mut metadata = json!({ "creationTimestamp": null });
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({
        "metadata": metadata,
        "versions": versions.iter().map(|version| json!({
            "version": version,
            "resources": registry.in_group_version(group, version).map(discovery_resource).collect::<Vec<_>>(),
            "freshness": "Current",
        })).collect::<Vec<_>>(),
    })
}

fn group_version(group: &str, version: &str) -> Value {
    json!({ "groupVersion": format!("{group}/{version}"), "version": version })
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    json!({
        "name": group,
        "versions": versions.iter().map(|v| group_version(group, v)).collect::<Vec<_>>(),
        "preferredVersion": group_version(group, versions[0]),
    })
}

fn resource_list(registry: &Registry, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in registry.in_group_version(group, version) {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for s in &r.subresources {
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                entry["group"] = json!(s.group);
                entry["version"] = json!(s.version);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// `GET /api`
pub(crate) async fn core_versions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match negotiate(&headers) {
        Representation::Aggregated(version) => aggregated(
            version,
            vec![discovery_group(&state.registry(), "", &["v1"])],
        ),
        Representation::Legacy => {
            let address = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            legacy(json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": address }],
            }))
        }
    }
}

/// `GET /apis`
pub(crate) async fn groups(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let groups = state.registry().groups();
    match negotiate(&headers) {
        Representation::Aggregated(version) => aggregated(
            version,
            groups
                .iter()
                .map(|(g, versions)| discovery_group(&state.registry(), g, versions))
                .collect(),
        ),
        Representation::Legacy => legacy(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups.iter().map(|(g, versions)| api_group(g, versions)).collect::<Vec<_>>(),
        })),
    }
}

/// `GET /apis/{group}`
pub(crate) async fn group(
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<Response, ApiError> {
    let groups = state.registry().groups();
    let (name, versions) = groups
        .iter()
        .find(|(g, _)| *g == group)
        .ok_or_else(ApiError::not_found_path)?;
    let mut body = api_group(name, versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(legacy(body))
}

/// `GET /api/v1`
pub(crate) async fn core_resources(State(state): State<AppState>) -> Response {
    legacy(resource_list(&state.registry(), "", "v1"))
}

/// `GET /apis/{group}/{version}`
pub(crate) async fn group_resources(
    State(state): State<AppState>,
    Path((group, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let registry = state.registry();
    if registry.in_group_version(&group, &version).next().is_none() {
        return Err(ApiError::not_found_path());
    }
    Ok(legacy(resource_list(&registry, &group, &version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_is_read_in_the_clients_order() {
        let kubectl_133 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(&accept(kubectl_133)),
            Representation::Aggregated("v2")
        );
        let kubectl_127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(&accept(kubectl_127)),
            Representation::Aggregated("v2beta1")
        );
        assert_eq!(
            negotiate(&accept("application/json, */*")),
            Representation::Legacy
        );
        assert_eq!(negotiate(&HeaderMap::new()), Representation::Legacy);
        assert_eq!(
            negotiate(&accept(
                "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"
            )),
            Representation::Legacy
        );
    }
}

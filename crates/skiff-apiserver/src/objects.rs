//! Objects in the store: where each kind's objects live (keys), how they are stored (JSON
//! without `resourceVersion`, which is the store's `mod_revision` and is filled in on read),
//! the read verbs (get, list), and the objects every cluster starts with.

use serde_json::{Value, json};
use skiff_store::{Error as StoreError, KeyRange, KeyValue, ReadAt, Store};

use crate::ApiError;
use crate::registry::Resource;

/// `/registry/<group>/<resource>/[<namespace>/]<name>`; the core group is spelled `core`.
pub(crate) fn key(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    format!("{}{name}", prefix(resource, namespace))
}

/// The key prefix of a resource, or of one namespace of it (with a trailing `/`).
pub(crate) fn prefix(resource: &Resource, namespace: Option<&str>) -> String {
    let group = if resource.group.is_empty() {
        "core"
    } else {
        resource.group
    };
    match namespace {
        Some(ns) => format!("/registry/{group}/{}/{ns}/", resource.plural),
        None => format!("/registry/{group}/{}/", resource.plural),
    }
}

/// The stored object with its `resourceVersion`.
fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        tracing::error!(key = %kv.key, error = %e, "stored object is not JSON");
        ApiError::internal(format!("stored object {} is unreadable", kv.key))
    })?;
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(kv.mod_revision.to_string()),
        );
    }
    Ok(object)
}

fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Compacted { .. } => {
            ApiError::gone("The resourceVersion for the provided list is too old.".to_owned())
        }
        other => {
            tracing::error!(error = %other, "store failed");
            ApiError::internal(format!("storage error: {other}"))
        }
    }
}

/// `GET` one object.
pub(crate) async fn get(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let (_, kv) = store
        .get(&key(resource, namespace, name), ReadAt::Latest)
        .await
        .map_err(store_error)?;
    match kv {
        Some(kv) => decode(&kv),
        None => Err(ApiError::not_found(resource, name)),
    }
}

/// `GET` a collection: every object of the resource (in one namespace, or all), as the
/// `<Kind>List` kube-apiserver returns.
pub(crate) async fn list(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
) -> Result<Value, ApiError> {
    let range = KeyRange::prefix(&prefix(resource, namespace)).map_err(store_error)?;
    let page = store
        .range(&range, ReadAt::Latest, 0)
        .await
        .map_err(store_error)?;
    let items = page.kvs.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "kind": format!("{}List", resource.kind),
        "apiVersion": resource.group_version(),
        "metadata": { "resourceVersion": page.revision.to_string() },
        "items": items,
    }))
}

/// The namespaces every cluster has, as kube-apiserver creates them.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what a new cluster starts with; what already exists is left alone.
pub(crate) async fn bootstrap(store: &Store, namespaces: &Resource) -> Result<(), StoreError> {
    for name in SYSTEM_NAMESPACES {
        let object = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": new_uid(),
                "creationTimestamp": now_rfc3339(),
                "labels": { "kubernetes.io/metadata.name": name },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        match store
            .create(&key(namespaces, None, name), object.to_string())
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// A random (version 4) UUID, as Kubernetes gives every object.
pub(crate) fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now, in the RFC 3339 form with whole seconds that Kubernetes timestamps use.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn keys_follow_the_registry_layout() {
        let registry = Registry::builtin();
        let find = |plural: &str| {
            registry
                .resources()
                .iter()
                .find(|r| r.plural == plural)
                .unwrap()
                .clone()
        };
        assert_eq!(
            key(&find("configmaps"), Some("default"), "cm1"),
            "/registry/core/configmaps/default/cm1"
        );
        assert_eq!(
            key(&find("namespaces"), None, "kube-system"),
            "/registry/core/namespaces/kube-system"
        );
        assert_eq!(
            prefix(&find("deployments"), Some("ns")),
            "/registry/apps/deployments/ns/"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_in_whole_seconds() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), 20);
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T');
    }
}

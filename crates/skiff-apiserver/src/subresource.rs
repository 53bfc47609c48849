//! The `status` and `scale` subresources as views of their object: a view is read out of the
//! stored object, and a changed view is merged back into it. `status` writes change only
//! `.status`; main-resource writes of kinds with a status subresource keep the stored
//! `.status` (kube-apiserver's status strategy). `scale` is an `autoscaling/v1 Scale` over
//! `.spec.replicas`.

use serde_json::{Value, json};

use crate::ApiError;
use crate::registry::Resource;
use crate::selector;

/// A subresource skiff serves as a view of its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Status,
    Scale,
    /// `namespaces/<name>/finalize`: the namespace controller's write of `spec.finalizers`.
    Finalize,
}

impl View {
    pub(crate) fn named(name: &str) -> Option<View> {
        match name {
            "status" => Some(View::Status),
            "scale" => Some(View::Scale),
            "finalize" => Some(View::Finalize),
            _ => None,
        }
    }

    /// The subresource's object, read from the stored one.
    pub(crate) fn read(self, resource: &Resource, object: &Value) -> Value {
        match self {
            View::Status | View::Finalize => object.clone(),
            View::Scale => {
                let paths = ScaleAt::of(resource);
                let metadata = &object["metadata"];
                let mut scale_meta = json!({});
                for field in [
                    "name",
                    "namespace",
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                ] {
                    if !metadata[field].is_null() {
                        scale_meta[field] = metadata[field].clone();
                    }
                }
                let selector = match &paths.selector {
                    Some(path) => at(object, path).as_str().unwrap_or_default().to_owned(),
                    None => selector::text_of(&object["spec"]["selector"]),
                };
                let default_replicas = if resource.custom.is_some() { 0 } else { 1 };
                json!({
                    "kind": "Scale",
                    "apiVersion": "autoscaling/v1",
                    "metadata": scale_meta,
                    "spec": {
                        "replicas": at(object, &paths.spec).as_i64().unwrap_or(default_replicas),
                    },
                    "status": {
                        "replicas": at(object, &paths.status).as_i64().unwrap_or(0),
                        "selector": selector,
                    },
                })
            }
        }
    }

    /// The stored object with a changed view merged in (the view's `resourceVersion` is the
    /// caller's precondition to check).
    pub(crate) fn merge(
        self,
        resource: &Resource,
        current: &Value,
        view: &Value,
    ) -> Result<Value, ApiError> {
        let mut merged = current.clone();
        match self {
            View::Status => merged["status"] = view["status"].clone(),
            View::Finalize => {
                merged["spec"]["finalizers"] = match &view["spec"]["finalizers"] {
                    Value::Null => json!([]),
                    finalizers => finalizers.clone(),
                }
            }
            View::Scale => {
                let replicas = match &view["spec"]["replicas"] {
                    Value::Null => 0,
                    value => value
                        .as_i64()
                        .filter(|n| (0..=i64::from(i32::MAX)).contains(n))
                        .ok_or_else(|| {
                            let name = current["metadata"]["name"].as_str().unwrap_or_default();
                            ApiError::invalid(
                                resource,
                                name,
                                "spec.replicas",
                                &format!(
                                    "Invalid value: {value}: must be greater than or equal to 0"
                                ),
                            )
                        })?,
                };
                set(&mut merged, &ScaleAt::of(resource).spec, json!(replicas));
            }
        }
        Ok(merged)
    }
}

/// Where a kind keeps what its Scale shows, as path segments.
struct ScaleAt {
    spec: Vec<String>,
    status: Vec<String>,
    /// A path to a selector string, or `None` to render `.spec.selector`.
    selector: Option<Vec<String>>,
}

impl ScaleAt {
    fn of(resource: &Resource) -> ScaleAt {
        let split = |path: &str| -> Vec<String> {
            path.split('.')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match resource.custom.as_ref().and_then(|c| c.scale.as_ref()) {
            Some(paths) => ScaleAt {
                spec: split(&paths.spec_replicas),
                status: split(&paths.status_replicas),
                selector: paths.label_selector.as_deref().map(split),
            },
            None => ScaleAt {
                spec: split("spec.replicas"),
                status: split("status.replicas"),
                selector: None,
            },
        }
    }
}

fn at<'v>(object: &'v Value, path: &[String]) -> &'v Value {
    path.iter().fold(object, |v, key| &v[key.as_str()])
}

fn set(object: &mut Value, path: &[String], value: Value) {
    let mut at = object;
    for key in path {
        if !at.is_object() {
            *at = json!({});
        }
        at = &mut at[key.as_str()];
    }
    *at = value;
}

/// Whether writes to the main resource leave `.status` alone.
pub(crate) fn has_status(resource: &Resource) -> bool {
    resource.subresources.iter().any(|s| s.name == "status")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_and_writes_spec_replicas() {
        let deployment = json!({
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7", "uid": "u"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 1}
        });
        let registry = crate::registry::Registry::builtin();
        let resource = registry
            .resources()
            .iter()
            .find(|r| r.plural == "deployments")
            .unwrap();
        let scale = View::Scale.read(resource, &deployment);
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
        let mut changed = scale.clone();
        changed["spec"]["replicas"] = json!(5);
        let merged = View::Scale.merge(resource, &deployment, &changed).unwrap();
        assert_eq!(merged["spec"]["replicas"], 5);
        changed["spec"]["replicas"] = json!(-1);
        assert!(View::Scale.merge(resource, &deployment, &changed).is_err());
    }
}

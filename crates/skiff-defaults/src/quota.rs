//! ResourceQuota arithmetic (`pkg/quota/v1` and its evaluators): what an object uses of a
//! namespace's quotas, whether a quota applies to it, and whether one more object fits.
//!
//! The API server charges a new object to every quota that [`applies`] with [`charge`] (and
//! writes the returned `status.used` with compare-and-swap); the resourcequota controller sums
//! [`usage`] over the objects that exist with [`used`]. Counted resources: `pods`, `services`,
//! `services.loadbalancers`, `services.nodeports`, `configmaps`, `secrets`,
//! `replicationcontrollers`, `resourcequotas`, `persistentvolumeclaims`, `requests.storage`
//! (and the `<class>.storageclass.storage.k8s.io/` variants), the compute resources of pods
//! (`requests.cpu`/`cpu`, `requests.memory`/`memory`, `limits.cpu`, `limits.memory`, the same
//! for `ephemeral-storage`) and `count/<resource>[.<group>]` for any resource. Pods that have
//! finished (`Succeeded`, `Failed`) use nothing but `count/pods`. Scopes (`Terminating`,
//! `NotTerminating`, `BestEffort`, `NotBestEffort`, and `scopeSelector` expressions over
//! those and `PriorityClass`) restrict a quota to the pods they match; other kinds never match
//! a scoped quota.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::limitrange::{pod_totals, resource_list};
use crate::quantity::Written;

/// Resource amounts by resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage(BTreeMap<String, Written>);

impl Usage {
    /// Adds `other` to this usage.
    pub fn add(&mut self, other: &Usage) {
        for (k, v) in &other.0 {
            let sum = self.0.get(k).map_or(*v, |mine| mine.plus(*v));
            self.0.insert(k.clone(), sum);
        }
    }

    /// The resource names used.
    pub fn resources(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The canonical quantity of one resource (`"0"` when unused).
    pub fn get(&self, resource: &str) -> String {
        self.0
            .get(resource)
            .map_or_else(|| "0".to_owned(), |q| q.canonical())
    }

    fn count(&mut self, resource: impl Into<String>, n: i64) {
        self.0.insert(resource.into(), Written::count(n));
    }
}

/// The quota resource counting objects of `plural` in `group` (`count/pods`,
/// `count/deployments.apps`).
pub fn object_count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// The core collections counted under their own name as well as `count/<plural>`.
const LEGACY_COUNTED: &[&str] = &[
    "pods",
    "services",
    "configmaps",
    "secrets",
    "replicationcontrollers",
    "resourcequotas",
    "persistentvolumeclaims",
];

/// The collections (group, plural) a quota's `hard` resources count objects of.
pub fn tracked(quota: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |group: &str, plural: &str| {
        let entry = (group.to_owned(), plural.to_owned());
        if !out.contains(&entry) {
            out.push(entry);
        }
    };
    for resource in hard(quota).keys() {
        if let Some(counted) = resource.strip_prefix("count/") {
            let (plural, group) = counted.split_once('.').unwrap_or((counted, ""));
            add(group, plural);
        } else if LEGACY_COUNTED.contains(&resource.as_str()) {
            add("", resource);
        } else if resource.starts_with("services.") {
            add("", "services");
        } else if resource.ends_with("requests.storage")
            || resource.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
        {
            add("", "persistentvolumeclaims");
        } else if is_pod_compute(resource) {
            add("", "pods");
        }
    }
    out
}

fn is_pod_compute(resource: &str) -> bool {
    matches!(
        resource,
        "cpu"
            | "memory"
            | "ephemeral-storage"
            | "requests.cpu"
            | "requests.memory"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
    )
}

/// What one object of `plural` in `group` uses.
pub fn usage(group: &str, plural: &str, object: &Value) -> Usage {
    let mut usage = Usage::default();
    usage.count(object_count_name(group, plural), 1);
    if !group.is_empty() {
        return usage;
    }
    match plural {
        "pods" => {
            if is_terminal(object) {
                return usage;
            }
            usage.count("pods", 1);
            let (requests, limits) = pod_totals(object);
            for (name, amount) in requests {
                if matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                    usage.0.insert(name.clone(), amount);
                }
                usage.0.insert(format!("requests.{name}"), amount);
            }
            for (name, amount) in limits {
                usage.0.insert(format!("limits.{name}"), amount);
            }
        }
        "services" => {
            usage.count("services", 1);
            let spec = &object["spec"];
            let ports = spec["ports"].as_array().map_or(0, Vec::len);
            match spec["type"].as_str() {
                Some("LoadBalancer") => {
                    usage.count("services.loadbalancers", 1);
                    let node_ports = if spec["allocateLoadBalancerNodePorts"] == false {
                        spec["ports"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|p| p["nodePort"].as_i64().is_some_and(|n| n != 0))
                            .count()
                    } else {
                        ports
                    };
                    usage.count("services.nodeports", node_ports as i64);
                }
                Some("NodePort") => usage.count("services.nodeports", ports as i64),
                _ => {}
            }
        }
        "persistentvolumeclaims" => {
            usage.count("persistentvolumeclaims", 1);
            let class = object["spec"]["storageClassName"].as_str().unwrap_or("");
            if !class.is_empty() {
                usage.count(
                    format!("{class}.storageclass.storage.k8s.io/persistentvolumeclaims"),
                    1,
                );
            }
            let requests = resource_list(&object["spec"]["resources"]["requests"]);
            if let Some(storage) = requests.get("storage") {
                usage.0.insert("requests.storage".into(), *storage);
                if !class.is_empty() {
                    usage.0.insert(
                        format!("{class}.storageclass.storage.k8s.io/requests.storage"),
                        *storage,
                    );
                }
            }
        }
        other if LEGACY_COUNTED.contains(&other) => usage.count(other, 1),
        _ => {}
    }
    usage
}

/// A pod that has finished runs nothing (`QuotaV1Pod`).
fn is_terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

fn hard(quota: &Value) -> Map<String, Value> {
    quota["spec"]["hard"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Whether `quota` constrains objects of `plural` in `group` like `object`: one of its `hard`
/// resources is one the object's kind uses, and the object (a pod) matches all its scopes.
pub fn applies(quota: &Value, group: &str, plural: &str, object: &Value) -> bool {
    let kind_tracked = tracked(quota)
        .iter()
        .any(|(g, p)| g == group && p == plural);
    kind_tracked && matches_scopes(quota, group, plural, object)
}

/// The scopes of a quota as `(scopeName, operator, values)`, from `spec.scopes` (operator
/// `Exists`) and `spec.scopeSelector.matchExpressions`.
fn scopes(quota: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s.to_owned(), "Exists".to_owned(), Vec::new()))
        .collect();
    for expression in quota["spec"]["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let values = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        out.push((
            expression["scopeName"].as_str().unwrap_or_default().into(),
            expression["operator"].as_str().unwrap_or_default().into(),
            values,
        ));
    }
    out
}

fn matches_scopes(quota: &Value, group: &str, plural: &str, object: &Value) -> bool {
    let scopes = scopes(quota);
    if scopes.is_empty() {
        return true;
    }
    if !(group.is_empty() && plural == "pods") {
        return false;
    }
    scopes.iter().all(|(scope, operator, values)| {
        let terminating = object["spec"]["activeDeadlineSeconds"].is_i64();
        let best_effort = is_best_effort(object);
        match scope.as_str() {
            "Terminating" => terminating,
            "NotTerminating" => !terminating,
            "BestEffort" => best_effort,
            "NotBestEffort" => !best_effort,
            "PriorityClass" => {
                let class = object["spec"]["priorityClassName"]
                    .as_str()
                    .filter(|c| !c.is_empty());
                match operator.as_str() {
                    "Exists" => class.is_some(),
                    "DoesNotExist" => class.is_none(),
                    "In" => class.is_some_and(|c| values.iter().any(|v| v == c)),
                    "NotIn" => class.is_none_or(|c| values.iter().all(|v| v != c)),
                    _ => false,
                }
            }
            _ => false,
        }
    })
}

/// No container (or init container) asks for or is limited in cpu or memory.
fn is_best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|list| {
        pod["spec"][list].as_array().into_iter().flatten().all(|c| {
            ["requests", "limits"].iter().all(|field| {
                let list = resource_list(&c["resources"][field]);
                !list.contains_key("cpu") && !list.contains_key("memory")
            })
        })
    })
}

/// `status.used` of `quota` when it counts `objects` (each as `(group, plural, object)`, only
/// those in its namespace): every `hard` resource, `"0"` when nothing uses it.
pub fn used<'a>(
    quota: &Value,
    objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>,
) -> Map<String, Value> {
    let mut total = Usage::default();
    for (group, plural, object) in objects {
        if matches_scopes(quota, group, plural, object) {
            total.add(&usage(group, plural, object));
        }
    }
    hard(quota)
        .keys()
        .map(|k| (k.clone(), Value::String(total.get(k))))
        .collect()
}

/// Charges a new object to `quota` (which [`applies`] to it): the quota's `status.used` with
/// the object's usage added, or kube-apiserver's refusal (after `<plural> "<name>" is
/// forbidden: `): `failed quota: <name>: must specify ...` for a pod whose containers leave
/// out a constrained compute resource, `status unknown for quota: ...` before the controller
/// has counted, `exceeded quota: <name>, requested: ..., used: ..., limited: ...`.
pub fn charge(
    quota: &Value,
    group: &str,
    plural: &str,
    object: &Value,
) -> Result<Map<String, Value>, String> {
    let name = quota["metadata"]["name"].as_str().unwrap_or_default();
    let hard = resource_list(&quota["spec"]["hard"]);
    if group.is_empty() && plural == "pods" {
        let missing = missing_compute(&hard, object);
        if !missing.is_empty() {
            return Err(format!(
                "failed quota: {name}: must specify {}",
                missing.join(",")
            ));
        }
    }
    let requested = usage(group, plural, object);
    let status_hard = resource_list(&quota["status"]["hard"]);
    let used = resource_list(&quota["status"]["used"]);
    let unknown: Vec<&str> = hard
        .keys()
        .filter(|k| !status_hard.contains_key(*k) || !used.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "status unknown for quota: {name}, resources: {}",
            unknown.join(",")
        ));
    }
    let mut new_used = Map::new();
    let mut exceeded = Vec::new();
    for (resource, limit) in &hard {
        let current = used.get(resource).copied().unwrap_or(Written::count(0));
        let wanted = match requested.0.get(resource) {
            Some(amount) => current.plus(*amount),
            None => current,
        };
        if requested.0.contains_key(resource) && wanted.value > limit.value {
            exceeded.push(resource.as_str());
        }
        new_used.insert(resource.clone(), Value::String(wanted.canonical()));
    }
    if !exceeded.is_empty() {
        let list = |of: &dyn Fn(&str) -> String| {
            exceeded
                .iter()
                .map(|r| format!("{r}={}", of(r)))
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(format!(
            "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
            list(&|r| requested.get(r)),
            list(&|r| used
                .get(r)
                .map_or_else(|| "0".to_owned(), |q| q.canonical())),
            list(&|r| hard
                .get(r)
                .map_or_else(|| "0".to_owned(), |q| q.canonical())),
        ));
    }
    Ok(new_used)
}

/// The compute resources `hard` constrains that some container of the pod does not name
/// (upstream's `enforcePodContainerConstraints`), sorted.
fn missing_compute(hard: &BTreeMap<String, Written>, pod: &Value) -> Vec<String> {
    let required: Vec<&str> = hard
        .keys()
        .map(String::as_str)
        .filter(|r| {
            matches!(
                *r,
                "cpu"
                    | "memory"
                    | "requests.cpu"
                    | "requests.memory"
                    | "limits.cpu"
                    | "limits.memory"
            )
        })
        .collect();
    let mut missing: Vec<String> = Vec::new();
    for list in ["containers", "initContainers"] {
        for container in pod["spec"][list].as_array().into_iter().flatten() {
            let requests = resource_list(&container["resources"]["requests"]);
            let limits = resource_list(&container["resources"]["limits"]);
            for resource in &required {
                let named = match *resource {
                    "cpu" | "requests.cpu" => requests.contains_key("cpu"),
                    "memory" | "requests.memory" => requests.contains_key("memory"),
                    "limits.cpu" => limits.contains_key("cpu"),
                    _ => limits.contains_key("memory"),
                };
                if !named && !missing.iter().any(|m| m == resource) {
                    missing.push((*resource).to_owned());
                }
            }
        }
    }
    missing.sort();
    missing
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn quota(hard: Value, used: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": {"hard": hard},
               "status": {"hard": hard, "used": used}})
    }

    fn pod(resources: Value) -> Value {
        json!({"spec": {"containers": [{"name": "c", "resources": resources}]},
               "status": {"phase": "Pending"}})
    }

    #[test]
    fn usage_of_each_kind() {
        type Case<'a> = (&'a str, &'a str, Value, Vec<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                "",
                "pods",
                pod(json!({"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1"}})),
                vec![
                    ("count/pods", "1"),
                    ("cpu", "250m"),
                    ("limits.cpu", "1"),
                    ("memory", "64Mi"),
                    ("pods", "1"),
                    ("requests.cpu", "250m"),
                    ("requests.memory", "64Mi"),
                ],
            ),
            (
                "",
                "pods",
                json!({"spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Succeeded"}}),
                vec![("count/pods", "1")],
            ),
            (
                "",
                "services",
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
                vec![
                    ("count/services", "1"),
                    ("services", "1"),
                    ("services.nodeports", "2"),
                ],
            ),
            (
                "",
                "persistentvolumeclaims",
                json!({"spec": {"storageClassName": "gold",
                                "resources": {"requests": {"storage": "1Gi"}}}}),
                vec![
                    ("count/persistentvolumeclaims", "1"),
                    (
                        "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
                        "1",
                    ),
                    ("gold.storageclass.storage.k8s.io/requests.storage", "1Gi"),
                    ("persistentvolumeclaims", "1"),
                    ("requests.storage", "1Gi"),
                ],
            ),
            (
                "",
                "configmaps",
                json!({}),
                vec![("configmaps", "1"), ("count/configmaps", "1")],
            ),
            (
                "apps",
                "deployments",
                json!({}),
                vec![("count/deployments.apps", "1")],
            ),
        ];
        for (group, plural, object, expected) in cases {
            let got = usage(group, plural, &object);
            let got: Vec<(&str, String)> = got.resources().map(|r| (r, got.get(r))).collect();
            let expected: Vec<(&str, String)> = expected
                .into_iter()
                .map(|(r, q)| (r, q.to_owned()))
                .collect();
            assert_eq!(got, expected, "{plural}");
        }
    }

    #[test]
    fn charges_or_refuses_like_the_admission_plugin() {
        let cases: Vec<(Value, Value, Result<Value, &str>)> = vec![
            (
                quota(json!({"pods": "2"}), json!({"pods": "1"})),
                pod(json!({})),
                Ok(json!({"pods": "2"})),
            ),
            (
                quota(json!({"pods": "2"}), json!({"pods": "2"})),
                pod(json!({})),
                Err("exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"),
            ),
            (
                quota(
                    json!({"pods": "5", "requests.cpu": "1"}),
                    json!({"pods": "0", "requests.cpu": "0"}),
                ),
                pod(json!({})),
                Err("failed quota: q: must specify requests.cpu"),
            ),
            (
                quota(
                    json!({"pods": "5", "requests.cpu": "1", "limits.memory": "1Gi"}),
                    json!({"pods": "1", "requests.cpu": "800m", "limits.memory": "0"}),
                ),
                pod(json!({"requests": {"cpu": "300m"}, "limits": {"memory": "512Mi"}})),
                Err(
                    "exceeded quota: q, requested: requests.cpu=300m, used: requests.cpu=800m, limited: requests.cpu=1",
                ),
            ),
            (
                quota(
                    json!({"pods": "5", "requests.cpu": "1"}),
                    json!({"pods": "1", "requests.cpu": "500m"}),
                ),
                pod(json!({"requests": {"cpu": "500m"}})),
                Ok(json!({"pods": "2", "requests.cpu": "1"})),
            ),
            (
                json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2"}}}),
                pod(json!({})),
                Err("status unknown for quota: q, resources: pods"),
            ),
        ];
        for (q, object, expected) in cases {
            let got = charge(&q, "", "pods", &object).map(Value::Object);
            assert_eq!(got, expected.map_err(str::to_owned), "{q}");
        }
    }

    #[test]
    fn quotas_apply_by_resource_and_scope() {
        let scoped = |scopes: Value| json!({"spec": {"hard": {"pods": "1"}, "scopes": scopes}});
        let best_effort = pod(json!({}));
        let burstable = pod(json!({"requests": {"cpu": "1"}}));
        let cases = [
            (
                json!({"spec": {"hard": {"pods": "1"}}}),
                "pods",
                &best_effort,
                true,
            ),
            (
                json!({"spec": {"hard": {"configmaps": "1"}}}),
                "pods",
                &best_effort,
                false,
            ),
            (
                json!({"spec": {"hard": {"requests.cpu": "1"}}}),
                "pods",
                &burstable,
                true,
            ),
            (scoped(json!(["BestEffort"])), "pods", &best_effort, true),
            (scoped(json!(["BestEffort"])), "pods", &burstable, false),
            (scoped(json!(["NotBestEffort"])), "pods", &burstable, true),
            (scoped(json!(["Terminating"])), "pods", &burstable, false),
            (scoped(json!(["NotTerminating"])), "pods", &burstable, true),
            (
                json!({"spec": {"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                    {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}),
                "pods",
                &burstable,
                false,
            ),
        ];
        for (q, plural, object, expected) in cases {
            assert_eq!(applies(&q, "", plural, object), expected, "{q}");
        }
    }

    #[test]
    fn used_sums_matching_objects() {
        let q = json!({"spec": {"hard": {"pods": "10", "requests.cpu": "4", "secrets": "3"}}});
        let (a, b) = (
            pod(json!({"requests": {"cpu": "1"}})),
            pod(json!({"requests": {"cpu": "500m"}})),
        );
        let done = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]},
                          "status": {"phase": "Failed"}});
        let objects = [("", "pods", &a), ("", "pods", &b), ("", "pods", &done)];
        assert_eq!(
            Value::Object(used(&q, objects)),
            json!({"pods": "2", "requests.cpu": "1500m", "secrets": "0"})
        );
    }
}

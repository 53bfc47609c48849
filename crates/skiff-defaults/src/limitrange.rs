//! The LimitRanger admission plugin (`plugin/pkg/admission/limitranger`): what the LimitRanges
//! of a namespace do to a new Pod or PersistentVolumeClaim.
//!
//! First every `Container` item's `default` and `defaultRequest` fill the limits and requests
//! each container (and init container) leaves out, recorded in the pod's
//! `kubernetes.io/limit-ranger` annotation; then every item's `min`, `max` and
//! `maxLimitRequestRatio` are checked per Container, per Pod (summed over the containers, an
//! init container counting when it asks for more) and per PersistentVolumeClaim (its storage
//! request). A refusal is the message kube-apiserver puts after `<plural> "<name>" is
//! forbidden: `. Upstream applies this on create only (containers cannot change on update).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::quantity::{Quantity, Written};

/// The annotation saying which defaults a pod got.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Applies the namespace's `limit_ranges` to a new object of `kind` (`Pod` or
/// `PersistentVolumeClaim`; other kinds pass unchanged): defaults first, then the checks.
/// `Err` carries kube-apiserver's message (several refusals are joined as `[a, b]`).
pub fn admit(kind: &str, object: &mut Value, limit_ranges: &[Value]) -> Result<(), String> {
    let items: Vec<&Map<String, Value>> = limit_ranges
        .iter()
        .filter_map(|lr| lr["spec"]["limits"].as_array())
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let mut errors = Vec::new();
    match kind {
        "Pod" => {
            default_pod(object, &items);
            for item in &items {
                check_pod(object, item, &mut errors);
            }
        }
        "PersistentVolumeClaim" => {
            for item in &items {
                check_claim(object, item, &mut errors);
            }
        }
        _ => {}
    }
    aggregate(errors)
}

/// `utilerrors.NewAggregate(...).Error()`: one message alone, several (deduplicated) in brackets.
fn aggregate(mut errors: Vec<String>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

type ResourceList = BTreeMap<String, Written>;

/// A `ResourceList` field of a JSON object (unparsable quantities are left out).
pub(crate) fn resource_list(value: &Value) -> ResourceList {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Written::from_json(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A `ResourceList` field of a LimitRange item.
fn field_list(item: &Map<String, Value>, field: &str) -> ResourceList {
    item.get(field).map(resource_list).unwrap_or_default()
}

/// The merged `default` and `defaultRequest` of every `Container` item.
fn container_defaults(items: &[&Map<String, Value>]) -> (Map<String, Value>, Map<String, Value>) {
    let (mut limits, mut requests) = (Map::new(), Map::new());
    for item in items
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("Container"))
    {
        for (target, field) in [(&mut limits, "default"), (&mut requests, "defaultRequest")] {
            if let Some(values) = item.get(field).and_then(Value::as_object) {
                for (k, v) in values {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
    }
    (limits, requests)
}

fn default_pod(pod: &mut Value, items: &[&Map<String, Value>]) {
    let (limits, requests) = container_defaults(items);
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (list, prefix) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for container in containers.iter_mut().filter(|c| c.is_object()) {
            let name = container["name"].as_str().unwrap_or_default().to_owned();
            if !container["resources"].is_object() {
                container["resources"] = json!({});
            }
            let mut set = |field: &str, defaults: &Map<String, Value>| -> Vec<String> {
                let mut added = Vec::new();
                if !container["resources"][field].is_object() {
                    container["resources"][field] = json!({});
                }
                if let Some(present) = container["resources"][field].as_object_mut() {
                    for (k, v) in defaults {
                        if !present.contains_key(k) {
                            present.insert(k.clone(), v.clone());
                            added.push(k.clone());
                        }
                    }
                }
                if container["resources"][field]
                    .as_object()
                    .is_some_and(Map::is_empty)
                    && let Some(resources) = container["resources"].as_object_mut()
                {
                    resources.remove(field);
                }
                added.sort();
                added
            };
            let set_limits = set("limits", &limits);
            let set_requests = set("requests", &requests);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {prefix} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {prefix} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    if !pod["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = json!({});
    }
    pod["metadata"]["annotations"][ANNOTATION] =
        json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
}

fn check_pod(pod: &Value, item: &Map<String, Value>, errors: &mut Vec<String>) {
    let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
    let (min, max, ratio) = (
        field_list(item, "min"),
        field_list(item, "max"),
        field_list(item, "maxLimitRequestRatio"),
    );
    let mut check = |requests: &ResourceList, limits: &ResourceList| {
        for (resource, enforced) in &min {
            if let Err(e) = min_constraint(kind, resource, *enforced, requests, limits) {
                errors.push(e);
            }
        }
        for (resource, enforced) in &max {
            if let Err(e) = max_constraint(kind, resource, *enforced, requests, limits) {
                errors.push(e);
            }
        }
        for (resource, enforced) in &ratio {
            if let Err(e) = ratio_constraint(kind, resource, *enforced, requests, limits) {
                errors.push(e);
            }
        }
    };
    match kind {
        "Container" => {
            for list in ["containers", "initContainers"] {
                for container in pod["spec"][list].as_array().into_iter().flatten() {
                    let resources = &container["resources"];
                    check(
                        &resource_list(&resources["requests"]),
                        &resource_list(&resources["limits"]),
                    );
                }
            }
        }
        "Pod" => {
            let (requests, limits) = pod_totals(pod);
            check(&requests, &limits);
        }
        _ => {}
    }
}

/// The pod's summed requests and limits: the containers' sums, raised to any init container's
/// own value that is larger (only resources some container names).
pub(crate) fn pod_totals(pod: &Value) -> (ResourceList, ResourceList) {
    let mut totals = (ResourceList::new(), ResourceList::new());
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for (field, total) in [("requests", &mut totals.0), ("limits", &mut totals.1)] {
            for (k, v) in resource_list(&container["resources"][field]) {
                let sum = total.get(&k).map_or(v, |t| t.plus(v));
                total.insert(k, sum);
            }
        }
    }
    for container in pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for (field, total) in [("requests", &mut totals.0), ("limits", &mut totals.1)] {
            for (k, v) in resource_list(&container["resources"][field]) {
                if total.get(&k).is_none_or(|t| t.value < v.value) {
                    total.insert(k, v);
                }
            }
        }
    }
    totals
}

fn min_constraint(
    kind: &str,
    resource: &str,
    enforced: Written,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Result<(), String> {
    let enforced_text = enforced.canonical();
    let Some(request) = requests.get(resource) else {
        return Err(format!(
            "minimum {resource} usage per {kind} is {enforced_text}.  No request is specified"
        ));
    };
    if request.value < enforced.value {
        return Err(format!(
            "minimum {resource} usage per {kind} is {enforced_text}, but request is {}",
            request.canonical()
        ));
    }
    if let Some(limit) = limits.get(resource)
        && limit.value < enforced.value
    {
        return Err(format!(
            "minimum {resource} usage per {kind} is {enforced_text}, but limit is {}",
            limit.canonical()
        ));
    }
    Ok(())
}

fn max_constraint(
    kind: &str,
    resource: &str,
    enforced: Written,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Result<(), String> {
    let enforced_text = enforced.canonical();
    let Some(limit) = limits.get(resource) else {
        return Err(format!(
            "maximum {resource} usage per {kind} is {enforced_text}.  No limit is specified"
        ));
    };
    if limit.value > enforced.value {
        return Err(format!(
            "maximum {resource} usage per {kind} is {enforced_text}, but limit is {}",
            limit.canonical()
        ));
    }
    if let Some(request) = requests.get(resource)
        && request.value > enforced.value
    {
        return Err(format!(
            "maximum {resource} usage per {kind} is {enforced_text}, but request is {}",
            request.canonical()
        ));
    }
    Ok(())
}

fn ratio_constraint(
    kind: &str,
    resource: &str,
    enforced: Written,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Result<(), String> {
    let enforced_text = enforced.canonical();
    let request = requests.get(resource).map(|q| q.value);
    let limit = limits.get(resource).map(|q| q.value);
    let Some(request) = request.filter(|q| *q != Quantity::ZERO) else {
        return Err(format!(
            "{resource} max limit to request ratio per {kind} is {enforced_text}, but no request is specified or request is 0"
        ));
    };
    let Some(limit) = limit.filter(|q| *q != Quantity::ZERO) else {
        return Err(format!(
            "{resource} max limit to request ratio per {kind} is {enforced_text}, but no limit is specified or limit is 0"
        ));
    };
    // limit / request > enforced, without floating point for the decision.
    if limit.nanos().saturating_mul(1_000_000_000)
        > enforced.value.nanos().saturating_mul(request.nanos())
    {
        let observed = limit.nanos() as f64 / request.nanos() as f64;
        return Err(format!(
            "{resource} max limit to request ratio per {kind} is {enforced_text}, but provided ratio is {observed:.6}"
        ));
    }
    Ok(())
}

fn check_claim(claim: &Value, item: &Map<String, Value>, errors: &mut Vec<String>) {
    if item.get("type").and_then(Value::as_str) != Some("PersistentVolumeClaim") {
        return;
    }
    let kind = "PersistentVolumeClaim";
    let requests = resource_list(&claim["spec"]["resources"]["requests"]);
    for (resource, enforced) in field_list(item, "min") {
        if let Err(e) = min_constraint(kind, &resource, enforced, &requests, &ResourceList::new()) {
            errors.push(e);
        }
    }
    for (resource, enforced) in field_list(item, "max") {
        // The claim's limits are not user input here: the max holds against its request.
        let enforced_text = enforced.canonical();
        match requests.get(&resource) {
            None => errors.push(format!(
                "maximum {resource} usage per {kind} is {enforced_text}.  No request is specified"
            )),
            Some(request) if request.value > enforced.value => errors.push(format!(
                "maximum {resource} usage per {kind} is {enforced_text}, but request is {}",
                request.canonical()
            )),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Value {
        json!({"spec": {"limits": limits}})
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn defaults_fill_what_containers_leave_out() {
        let ranges = [range(json!([{
            "type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
        }]))];
        let mut p = pod(json!([
            {"name": "a", "resources": {}},
            {"name": "b", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}},
        ]));
        admit("Pod", &mut p, &ranges).unwrap();
        assert_eq!(
            p["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m", "memory": "128Mi"},
                   "requests": {"cpu": "100m", "memory": "64Mi"}})
        );
        assert_eq!(
            p["spec"]["containers"][1]["resources"],
            json!({"limits": {"cpu": "1", "memory": "128Mi"},
                   "requests": {"cpu": "1", "memory": "64Mi"}})
        );
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; memory request for container b; memory limit for container b"
        );
    }

    #[test]
    fn checks_give_kube_apiservers_messages() {
        let container = |resources: Value| pod(json!([{"name": "c", "resources": resources}]));
        let cases: Vec<(Value, Value, Result<(), &str>)> = vec![
            (
                json!([{"type": "Container", "max": {"cpu": "500m"}}]),
                container(json!({"limits": {"cpu": "1"}})),
                Err("maximum cpu usage per Container is 500m, but limit is 1"),
            ),
            (
                json!([{"type": "Container", "max": {"cpu": "500m"}}]),
                container(json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "200m"}})),
                Ok(()),
            ),
            (
                json!([{"type": "Container", "max": {"memory": "1Gi"}}]),
                container(json!({"requests": {"memory": "100Mi"}})),
                Err("maximum memory usage per Container is 1Gi.  No limit is specified"),
            ),
            (
                json!([{"type": "Container", "min": {"memory": "100Mi"}}]),
                container(json!({"requests": {"memory": "50Mi"}})),
                Err("minimum memory usage per Container is 100Mi, but request is 50Mi"),
            ),
            (
                json!([{"type": "Container", "min": {"cpu": "100m"}}]),
                container(json!({})),
                Err("minimum cpu usage per Container is 100m.  No request is specified"),
            ),
            (
                json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
                container(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "250m"}})),
                Err(
                    "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000",
                ),
            ),
            (
                json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]),
                container(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "500m"}})),
                Ok(()),
            ),
            (
                json!([{"type": "Pod", "max": {"cpu": "1"}}]),
                pod(json!([
                    {"name": "a", "resources": {"limits": {"cpu": "600m"}}},
                    {"name": "b", "resources": {"limits": {"cpu": "600m"}}},
                ])),
                Err("maximum cpu usage per Pod is 1, but limit is 1200m"),
            ),
            (
                json!([{"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}}]),
                container(json!({"limits": {"cpu": "2", "memory": "2Gi"}})),
                Err(
                    "[maximum cpu usage per Container is 1, but limit is 2, maximum memory usage per Container is 1Gi, but limit is 2Gi]",
                ),
            ),
        ];
        for (limits, mut object, expected) in cases {
            let got = admit("Pod", &mut object, &[range(limits.clone())]);
            assert_eq!(got, expected.map_err(str::to_owned), "{limits}");
        }
    }

    #[test]
    fn claims_are_held_to_storage_bounds() {
        let ranges = [range(json!([{
            "type": "PersistentVolumeClaim",
            "min": {"storage": "1Gi"},
            "max": {"storage": "2Gi"},
        }]))];
        let claim =
            |storage: &str| json!({"spec": {"resources": {"requests": {"storage": storage}}}});
        let cases = [
            ("1Gi", Ok(())),
            ("2Gi", Ok(())),
            (
                "3Gi",
                Err("maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 3Gi"),
            ),
            (
                "500Mi",
                Err("minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"),
            ),
        ];
        for (storage, expected) in cases {
            let got = admit("PersistentVolumeClaim", &mut claim(storage), &ranges);
            assert_eq!(got, expected.map_err(str::to_owned), "{storage}");
        }
    }
}

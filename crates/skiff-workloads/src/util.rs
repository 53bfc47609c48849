//! Small helpers shared by the controllers: label selectors, owner references, pod
//! readiness and availability, object keys, `IntOrString` scaling and the pod-template hash.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use serde_json::Value;

/// The label the Deployment controller adds to its ReplicaSets' selectors, templates and pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// `namespace/name` of an object, the work-queue key.
pub fn key_of<K: Resource>(object: &K) -> String {
    key(
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default(),
    )
}

/// `namespace/name`.
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Splits a `namespace/name` key.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Whether a selector matches a label set. An empty selector matches nothing here: the
/// controllers never manage "all pods of a namespace".
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if selector_is_empty(selector) {
        return false;
    }
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_match
        && selector.match_expressions.iter().flatten().all(|expr| {
            let values = expr.values.as_deref().unwrap_or_default();
            let value = labels.get(&expr.key);
            match expr.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// Whether a selector has neither labels nor expressions.
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// The labels of an object (empty if none).
pub fn labels_of<K: Resource>(object: &K) -> BTreeMap<String, String> {
    object.meta().labels.clone().unwrap_or_default()
}

/// The controller owner reference of an object, if any.
pub fn controller_of<K: Resource>(object: &K) -> Option<&OwnerReference> {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller owner reference (`controller` and `blockOwnerDeletion` set) to `owner`.
pub fn controller_ref<K>(owner: &K) -> OwnerReference
where
    K: Resource<DynamicType = ()>,
{
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether an object is marked for deletion.
pub fn is_deleting<K: Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

/// Now, at the one-second precision the API stores times with.
pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Whether a pod counts towards a controller's replicas: not finished and not being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's `Ready` condition's transition time if the condition is `True`.
pub fn pod_ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_since(pod).is_some()
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match pod_ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.as_second() + i64::from(min_ready_seconds) < now.as_second(),
    }
}

/// When a controller should look at a pod's owner again because the pod, now ready, becomes
/// available after `min_ready_seconds` without any event saying so: just past that time, or
/// `None` when there is nothing to wait for (pod gone or not ready, no `minReadySeconds`).
pub fn availability_recheck(pod: &Pod, gone: bool, min_ready_seconds: i32) -> Option<Duration> {
    (!gone && min_ready_seconds > 0 && is_pod_ready(pod))
        .then(|| Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0) + 1))
}

/// An `IntOrString` (a count or a percentage of `total`) as a count, rounding a percentage
/// up or down.
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool, default: &str) -> i32 {
    let text = match value {
        Some(IntOrString::Int(n)) => return *n,
        Some(IntOrString::String(s)) => s.as_str(),
        None => default,
    };
    let Some(percent) = text.strip_suffix('%') else {
        return text.trim().parse().unwrap_or(0);
    };
    let percent = percent.trim().parse::<i64>().unwrap_or(0);
    let product = percent * i64::from(total);
    let value = if round_up {
        (product + 99).div_euclid(100)
    } else {
        product.div_euclid(100)
    };
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A stable hash of a pod template (and the deployment's collision count), encoded like
/// upstream's: decimal digits mapped onto consonants and digits that never spell words.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    const FNV_OFFSET: u32 = 0x811c_9dc5;
    const FNV_PRIME: u32 = 0x0100_0193;
    let bytes = serde_json::to_vec(&canonical(
        &serde_json::to_value(template).unwrap_or_default(),
    ))
    .unwrap_or_default();
    let mut hash = FNV_OFFSET;
    let mut feed = |b: u8| {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    };
    bytes.iter().copied().for_each(&mut feed);
    if let Some(count) = collision_count {
        count.to_le_bytes().into_iter().for_each(&mut feed);
    }
    safe_encode(hash)
}

/// A 32-bit hash as upstream encodes it in names and labels: its decimal digits mapped onto
/// consonants and digits that never spell words.
pub fn safe_encode(hash: u32) -> String {
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| char::from(SAFE[usize::from(b) % SAFE.len()]))
        .collect()
}

/// A JSON value with nulls, empty objects and empty arrays removed and object keys
/// sorted, so that two encodings of the same template compare (and hash) equal.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, Value)> = map
                .iter()
                .map(|(k, v)| (k, canonical(v)))
                .filter(|(_, v)| !is_empty_value(v))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Whether two pod templates are equal once the `pod-template-hash` label is ignored.
pub fn templates_equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    fn normal(template: &PodTemplateSpec) -> Value {
        let mut template = template.clone();
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
        }
        canonical(&serde_json::to_value(&template).unwrap_or_default())
    }
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert!(selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "a")])
        ));
        assert!(!selector_matches(
            &selector,
            &labels(&[("app", "web"), ("tier", "c")])
        ));
        assert!(!selector_matches(&selector, &labels(&[("app", "web")])));
        assert!(!selector_matches(
            &LabelSelector::default(),
            &labels(&[("app", "web")])
        ));
    }

    #[test]
    fn percentages_round_as_upstream_does() {
        let quarter = IntOrString::String("25%".into());
        assert_eq!(scaled_value(Some(&quarter), 3, true, "25%"), 1);
        assert_eq!(scaled_value(Some(&quarter), 3, false, "25%"), 0);
        assert_eq!(scaled_value(Some(&quarter), 10, true, "25%"), 3);
        assert_eq!(scaled_value(Some(&quarter), 10, false, "25%"), 2);
        assert_eq!(
            scaled_value(Some(&IntOrString::Int(2)), 10, false, "25%"),
            2
        );
        assert_eq!(scaled_value(None, 4, false, "25%"), 1);
    }

    #[test]
    fn template_hashes_are_stable_and_safe() {
        let template = PodTemplateSpec::default();
        let a = pod_template_hash(&template, None);
        assert_eq!(a, pod_template_hash(&template, None));
        assert_ne!(a, pod_template_hash(&template, Some(1)));
        assert!(
            a.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
    }
}

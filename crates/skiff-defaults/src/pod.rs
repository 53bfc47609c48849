//! Pod and PodSpec defaulting (`SetDefaults_PodSpec`, `SetDefaults_Pod`, containers, probes,
//! volumes), the Pod's create-time status (`phase`, `qosClass`) and the create-time
//! tolerations of the DefaultTolerationSeconds admission plugin.

use serde_json::{Map, Value, json};

use crate::image::default_pull_policy;
use crate::json::{
    Obj, child, child_or_empty, default_int, default_ptr, default_str, each, is_unset, is_zero,
    str_of,
};
use crate::quantity::Quantity;

/// Defaults for every PodSpec, wherever it appears (Pods and pod templates).
pub(crate) fn pod_spec(spec: &mut Obj) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    // Conversion keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    if str_of(spec, "serviceAccountName").is_empty()
        && !str_of(spec, "serviceAccount").is_empty()
        && !matches!(spec.get("serviceAccountName"), Some(v) if !v.is_string() && !v.is_null())
    {
        let name = spec["serviceAccount"].clone();
        spec.insert("serviceAccountName".into(), name);
    }
    if !str_of(spec, "serviceAccountName").is_empty()
        && matches!(
            spec.get("serviceAccount"),
            None | Some(Value::Null | Value::String(_))
        )
    {
        let name = spec["serviceAccountName"].clone();
        spec.insert("serviceAccount".into(), name);
    }
    each(spec, "volumes", volume);
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        each(spec, key, container);
    }
}

/// A pod template (`PodTemplateSpec`): only its spec has defaults.
pub(crate) fn template(template: &mut Obj) {
    if let Some(spec) = child_or_empty(template, "spec") {
        pod_spec(spec);
    }
}

/// Defaults that apply to Pods only, not to pod templates (`SetDefaults_Pod`), then the PodSpec
/// defaults.
pub(crate) fn pod(pod: &mut Obj) {
    if let Some(spec) = child_or_empty(pod, "spec") {
        for key in ["containers", "initContainers"] {
            each(spec, key, requests_from_limits);
        }
        default_ptr(spec, "enableServiceLinks", json!(true));
        if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
            for key in ["containers", "initContainers"] {
                each(spec, key, |c| {
                    each(c, "ports", host_port_from_container_port)
                });
            }
        }
        pod_spec(spec);
    }
    default_ptr(pod, "status", json!({}));
    if let Some(status) = child(pod, "status") {
        pod_status_ips(status);
    }
}

/// A container's missing resource requests default to its limits (Pods only).
fn requests_from_limits(c: &mut Obj) {
    let Some(limits) = c
        .get("resources")
        .and_then(|r| r.get("limits"))
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let Some(resources) = child(c, "resources") else {
        return;
    };
    let Some(requests) = child_or_empty(resources, "requests") else {
        return;
    };
    for (name, quantity) in limits {
        requests.entry(name).or_insert(quantity);
    }
}

fn host_port_from_container_port(port: &mut Obj) {
    if (is_unset(port, "hostPort") || is_zero(port.get("hostPort")))
        && let Some(p) = port.get("containerPort").filter(|v| v.is_number()).cloned()
    {
        port.insert("hostPort".into(), p);
    }
}

/// Conversion fills the plural IP lists from the singular fields and back.
fn pod_status_ips(status: &mut Obj) {
    for (single, plural) in [("podIP", "podIPs"), ("hostIP", "hostIPs")] {
        let ip = str_of(status, single).to_owned();
        if !ip.is_empty() && is_unset(status, plural) {
            status.insert(plural.into(), json!([{ "ip": ip }]));
        }
        if is_unset(status, single)
            && let Some(first) = status
                .get(plural)
                .and_then(|l| l.get(0))
                .and_then(|e| e.get("ip"))
                .filter(|ip| ip.is_string())
                .cloned()
        {
            status.insert(single.into(), first);
        }
    }
}

fn container(c: &mut Obj) {
    if matches!(c.get("imagePullPolicy"), None | Some(Value::Null))
        || c.get("imagePullPolicy").and_then(Value::as_str) == Some("")
    {
        match c.get("image") {
            None | Some(Value::Null | Value::String(_)) => {
                let policy = default_pull_policy(str_of(c, "image"));
                c.insert("imagePullPolicy".into(), json!(policy));
            }
            Some(_) => {}
        }
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    default_ptr(c, "resources", json!({}));
    each(c, "ports", |p| default_str(p, "protocol", "TCP"));
    each(c, "env", |e| {
        if let Some(field_ref) = child(e, "valueFrom").and_then(|v| child(v, "fieldRef")) {
            default_str(field_ref, "apiVersion", "v1");
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = child(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(get) = child(lifecycle, key).and_then(|h| child(h, "httpGet")) {
                http_get(get);
            }
        }
    }
}

fn probe(p: &mut Obj) {
    default_int(p, "timeoutSeconds", 1);
    default_int(p, "periodSeconds", 10);
    default_int(p, "successThreshold", 1);
    default_int(p, "failureThreshold", 3);
    if let Some(get) = child(p, "httpGet") {
        http_get(get);
    }
    if let Some(grpc) = child(p, "grpc") {
        default_ptr(grpc, "service", json!(""));
    }
}

fn http_get(get: &mut Obj) {
    default_str(get, "path", "/");
    default_str(get, "scheme", "HTTP");
}

fn field_ref_items(source: &mut Obj) {
    each(source, "items", |item| {
        if let Some(field_ref) = child(item, "fieldRef") {
            default_str(field_ref, "apiVersion", "v1");
        }
    });
}

fn volume(v: &mut Obj) {
    // A volume without any source is an emptyDir.
    if v.iter().all(|(k, val)| k == "name" || val.is_null()) {
        v.insert("emptyDir".into(), json!({}));
    }
    if let Some(host_path) = child(v, "hostPath") {
        default_ptr(host_path, "type", json!(""));
    }
    for key in ["secret", "configMap"] {
        if let Some(source) = child(v, key) {
            default_ptr(source, "defaultMode", json!(420));
        }
    }
    if let Some(source) = child(v, "downwardAPI") {
        default_ptr(source, "defaultMode", json!(420));
        field_ref_items(source);
    }
    if let Some(projected) = child(v, "projected") {
        default_ptr(projected, "defaultMode", json!(420));
        each(projected, "sources", |s| {
            if let Some(downward) = child(s, "downwardAPI") {
                field_ref_items(downward);
            }
            if let Some(token) = child(s, "serviceAccountToken") {
                default_ptr(token, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(spec) = child(v, "ephemeral")
        .and_then(|e| child(e, "volumeClaimTemplate"))
        .and_then(|t| child(t, "spec"))
    {
        crate::core::pvc_spec(spec);
    }
    legacy_volume_sources(v);
}

/// Defaults of the in-tree volume plugins, shared by Pod volumes and PersistentVolumes.
pub(crate) fn legacy_volume_sources(v: &mut Obj) {
    if let Some(iscsi) = child(v, "iscsi") {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = child(v, "rbd") {
        default_str(rbd, "pool", "rbd");
        default_str(rbd, "user", "admin");
        default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(azure) = child(v, "azureDisk") {
        default_ptr(azure, "cachingMode", json!("ReadWrite"));
        default_ptr(azure, "fsType", json!("ext4"));
        default_ptr(azure, "readOnly", json!(false));
        default_ptr(azure, "kind", json!("Shared"));
    }
    if let Some(scale_io) = child(v, "scaleIO") {
        default_str(scale_io, "storageMode", "ThinProvisioned");
        default_str(scale_io, "fsType", "xfs");
    }
}

/// Replaces a Pod's status with the one a new Pod gets (`podStrategy.PrepareForCreate`).
pub(crate) fn prepare_status(pod: &mut Obj) {
    let spec = pod.get("spec").and_then(Value::as_object);
    let mut status = Map::new();
    status.insert("phase".into(), json!("Pending"));
    status.insert("qosClass".into(), json!(qos_class(spec)));
    let gated = spec
        .and_then(|s| s.get("schedulingGates"))
        .and_then(Value::as_array)
        .is_some_and(|gates| !gates.is_empty());
    if gated {
        status.insert(
            "conditions".into(),
            json!([{
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastProbeTime": null,
                "lastTransitionTime": null,
            }]),
        );
    }
    pod.insert("status".into(), Value::Object(status));
}

/// The taints the DefaultTolerationSeconds admission plugin tolerates for a while.
const DEFAULT_TOLERATED_TAINTS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

/// kube-apiserver's default `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds`.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The DefaultTolerationSeconds admission plugin, on create: a pod that does not already
/// tolerate the `not-ready` or `unreachable` `NoExecute` taint (by key, or by an empty key
/// with `Exists`; with the `NoExecute` effect or none) gets a toleration of it for 300 s, so
/// its pods outlive a short node outage before taint eviction deletes them.
pub(crate) fn default_toleration_seconds(pod: &mut Obj) {
    let Some(spec) = child_or_empty(pod, "spec") else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert(Value::Null);
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in DEFAULT_TOLERATED_TAINTS {
        let tolerated = list.iter().any(|t| {
            let field = |name: &str| t.get(name).and_then(Value::as_str).unwrap_or_default();
            (field("key") == key || field("key").is_empty())
                && (field("effect") == "NoExecute" || field("effect").is_empty())
        });
        if !tolerated {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}

/// The QoS class of a pod (`qos.GetPodQOS`): only `cpu` and `memory` count; a container's
/// requests default to its limits, as `SetDefaults_Pod` does before the class is computed.
fn qos_class(spec: Option<&Obj>) -> &'static str {
    let mut requests: Vec<(String, Quantity)> = Vec::new();
    let mut limits: Vec<(String, Quantity)> = Vec::new();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .into_iter()
        .filter_map(|key| spec?.get(key)?.as_array())
        .flatten();
    for c in containers {
        let resources = c.get("resources");
        let list = |key: &str| -> Vec<(String, Quantity)> {
            resources
                .and_then(|r| r.get(key))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(name, _)| *name == "cpu" || *name == "memory")
                .filter_map(|(name, q)| Some((name.clone(), Quantity::from_json(q)?)))
                .filter(|(_, q)| *q > Quantity::ZERO)
                .collect()
        };
        let container_limits = list("limits");
        let mut container_requests = list("requests");
        let explicit_requests: Vec<String> = resources
            .and_then(|r| r.get("requests"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (name, q) in &container_limits {
            if !explicit_requests.contains(name) {
                container_requests.push((name.clone(), *q));
            }
        }
        for (name, q) in container_requests {
            add(&mut requests, name, q);
        }
        let has = |n: &str| container_limits.iter().any(|(name, _)| name == n);
        if !(has("cpu") && has("memory")) {
            guaranteed = false;
        }
        for (name, q) in container_limits {
            add(&mut limits, name, q);
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        guaranteed = requests
            .iter()
            .all(|(name, req)| limits.iter().any(|(n, lim)| n == name && lim == req));
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn add(list: &mut Vec<(String, Quantity)>, name: String, q: Quantity) {
    match list.iter_mut().find(|(n, _)| *n == name) {
        Some((_, sum)) => *sum = sum.saturating_add(q),
        None => list.push((name, q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerations_after(spec: Value) -> Value {
        let mut pod = json!({ "spec": spec });
        default_toleration_seconds(pod.as_object_mut().unwrap());
        pod["spec"]["tolerations"].clone()
    }

    #[test]
    fn pods_get_both_default_tolerations() {
        assert_eq!(
            tolerations_after(json!({"containers": []})),
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
    }

    #[test]
    fn existing_tolerations_are_kept_and_not_duplicated() {
        let own = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                         "effect": "NoExecute", "tolerationSeconds": 5});
        let other = json!({"key": "dedicated", "operator": "Equal", "value": "x",
                           "effect": "NoSchedule"});
        let result = tolerations_after(json!({"tolerations": [own.clone(), other.clone()]}));
        assert_eq!(
            result,
            json!([own, other, {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                "effect": "NoExecute", "tolerationSeconds": 300}])
        );
        // A toleration of every NoExecute taint, or of every taint, covers both.
        for all in [
            json!({"operator": "Exists", "effect": "NoExecute"}),
            json!({"operator": "Exists"}),
        ] {
            assert_eq!(
                tolerations_after(json!({"tolerations": [all.clone()]})),
                json!([all])
            );
        }
        // A NoSchedule toleration of the key does not count.
        let no_schedule = json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                 "effect": "NoSchedule"});
        let result = tolerations_after(json!({"tolerations": [no_schedule]}));
        assert_eq!(result.as_array().unwrap().len(), 3);
    }

    #[test]
    fn malformed_specs_are_left_alone() {
        let mut pod = json!({"spec": {"tolerations": "nonsense"}});
        default_toleration_seconds(pod.as_object_mut().unwrap());
        assert_eq!(pod["spec"]["tolerations"], "nonsense");
        let mut no_spec = json!({"spec": 3});
        default_toleration_seconds(no_spec.as_object_mut().unwrap());
        assert_eq!(no_spec["spec"], 3);
    }
}

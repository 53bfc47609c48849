//! Defaults of the smaller groups: networking, RBAC, autoscaling, policy, scheduling, storage
//! and discovery.

use serde_json::{Value, json};

use crate::json::{
    Obj, child, child_or_empty, default_ptr, default_str, each, fill_zeros, is_empty, is_unset,
    str_of,
};

pub(crate) fn network_policy(np: &mut Obj) {
    let Some(spec) = child_or_empty(np, "spec") else {
        return;
    };
    for direction in ["ingress", "egress"] {
        each(spec, direction, |rule| {
            each(rule, "ports", |p| default_ptr(p, "protocol", json!("TCP")));
        });
    }
    if is_empty(spec, "policyTypes")
        && matches!(
            spec.get("policyTypes"),
            None | Some(Value::Null | Value::Array(_))
        )
    {
        let mut types = vec![json!("Ingress")];
        if !is_empty(spec, "egress") {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

pub(crate) fn ingress_class(ic: &mut Obj) {
    if let Some(params) = child_or_empty(ic, "spec").and_then(|s| child(s, "parameters")) {
        default_ptr(params, "scope", json!("Cluster"));
    }
}

pub(crate) fn ingress(ing: &mut Obj) {
    default_ptr(ing, "spec", json!({}));
    if let Some(status) = child_or_empty(ing, "status") {
        default_ptr(status, "loadBalancer", json!({}));
    }
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(crate) fn role_binding(rb: &mut Obj) {
    if let Some(role_ref) = child_or_empty(rb, "roleRef") {
        default_str(role_ref, "apiGroup", RBAC_GROUP);
    }
    each(rb, "subjects", |s| {
        if matches!(str_of(s, "kind"), "User" | "Group") {
            default_str(s, "apiGroup", RBAC_GROUP);
        }
    });
}

pub(crate) fn hpa_v1(hpa: &mut Obj) {
    if let Some(spec) = child_or_empty(hpa, "spec") {
        default_ptr(spec, "minReplicas", json!(1));
    }
    if let Some(status) = child_or_empty(hpa, "status") {
        fill_zeros(
            status,
            &[("currentReplicas", json!(0)), ("desiredReplicas", json!(0))],
        );
    }
}

pub(crate) fn hpa_v2(hpa: &mut Obj) {
    if let Some(spec) = child_or_empty(hpa, "spec") {
        default_ptr(spec, "minReplicas", json!(1));
        if is_empty(spec, "metrics")
            && matches!(
                spec.get("metrics"),
                None | Some(Value::Null | Value::Array(_))
            )
        {
            spec.insert(
                "metrics".into(),
                json!([{
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": { "type": "Utilization", "averageUtilization": 80 },
                    },
                }]),
            );
        }
        if let Some(behavior) = child(spec, "behavior") {
            scaling_rules(
                behavior,
                "scaleUp",
                Some(0),
                json!([
                    { "type": "Pods", "value": 4, "periodSeconds": 15 },
                    { "type": "Percent", "value": 100, "periodSeconds": 15 },
                ]),
            );
            scaling_rules(
                behavior,
                "scaleDown",
                None,
                json!([{ "type": "Percent", "value": 100, "periodSeconds": 15 }]),
            );
        }
    }
    if let Some(status) = child_or_empty(hpa, "status") {
        // `currentMetrics` lacks `omitempty`, so an empty list is written as null.
        if !status.contains_key("currentMetrics") {
            status.insert("currentMetrics".into(), Value::Null);
        }
        fill_zeros(status, &[("desiredReplicas", json!(0))]);
    }
}

/// Fills a behavior's scaling rules field by field from the upstream defaults.
fn scaling_rules(behavior: &mut Obj, key: &str, stabilization: Option<i64>, policies: Value) {
    let Some(rules) = child_or_empty(behavior, key) else {
        return;
    };
    default_ptr(rules, "selectPolicy", json!("Max"));
    if let Some(seconds) = stabilization {
        default_ptr(rules, "stabilizationWindowSeconds", json!(seconds));
    }
    default_ptr(rules, "policies", policies);
}

pub(crate) fn pod_disruption_budget(pdb: &mut Obj) {
    default_ptr(pdb, "spec", json!({}));
    if let Some(status) = child_or_empty(pdb, "status") {
        fill_zeros(
            status,
            &[
                ("disruptionsAllowed", json!(0)),
                ("currentHealthy", json!(0)),
                ("desiredHealthy", json!(0)),
                ("expectedPods", json!(0)),
            ],
        );
    }
}

pub(crate) fn priority_class(pc: &mut Obj) {
    default_ptr(pc, "preemptionPolicy", json!("PreemptLowerPriority"));
}

pub(crate) fn storage_class(sc: &mut Obj) {
    default_ptr(sc, "reclaimPolicy", json!("Delete"));
    default_ptr(sc, "volumeBindingMode", json!("Immediate"));
}

pub(crate) fn csi_driver(driver: &mut Obj) {
    let Some(spec) = child_or_empty(driver, "spec") else {
        return;
    };
    default_ptr(spec, "attachRequired", json!(true));
    default_ptr(spec, "podInfoOnMount", json!(false));
    default_ptr(spec, "storageCapacity", json!(false));
    default_ptr(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    if is_empty(spec, "volumeLifecycleModes")
        && matches!(
            spec.get("volumeLifecycleModes"),
            None | Some(Value::Null | Value::Array(_))
        )
    {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    default_ptr(spec, "requiresRepublish", json!(false));
}

pub(crate) fn endpoint_slice(slice: &mut Obj) {
    each(slice, "ports", |p| {
        default_ptr(p, "name", json!(""));
        default_ptr(p, "protocol", json!("TCP"));
    });
    each(slice, "endpoints", |e| {
        if is_unset(e, "conditions") {
            e.insert("conditions".into(), json!({}));
        }
    });
}

//! Service defaulting (`SetDefaults_Service` plus the REST storage's `clusterIPs` and IP family
//! inference) and the questions the server asks before allocating IPs and node ports.
//!
//! The IP family rules assume a single-stack IPv4 cluster, skiff's only mode.

use serde_json::{Value, json};

use crate::json::{
    Obj, child_or_empty, default_ptr, default_str, each, is_empty, is_unset, is_zero, str_of,
};

pub(crate) fn service(svc: &mut Obj) {
    if let Some(spec) = child_or_empty(svc, "spec") {
        spec_defaults(spec);
    }
    let load_balancer = svc
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("LoadBalancer");
    if let Some(lb) = child_or_empty(svc, "status").and_then(|s| child_or_empty(s, "loadBalancer"))
        && load_balancer
    {
        each(lb, "ingress", |ing| {
            if !str_of(ing, "ip").is_empty() {
                default_ptr(ing, "ipMode", json!("VIP"));
            }
        });
    }
}

fn spec_defaults(spec: &mut Obj) {
    default_str(spec, "sessionAffinity", "None");
    match str_of(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({ "clientIP": { "timeoutSeconds": 10800 } }),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    each(spec, "ports", |p| {
        default_str(p, "protocol", "TCP");
        let unset_target = is_unset(p, "targetPort")
            || is_zero(p.get("targetPort"))
            || p.get("targetPort").and_then(Value::as_str) == Some("");
        if unset_target && let Some(port) = p.get("port").filter(|v| v.is_number()).cloned() {
            p.insert("targetPort".into(), port);
        }
    });
    let ty = str_of(spec, "type").to_owned();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !is_empty(spec, "externalIPs"));
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_ptr(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if ty != "ExternalName" {
        ip_families(spec);
    }
}

/// `clusterIPs` from `clusterIP` (old clients set only the singular field), then the IP family
/// policy and families, as the REST storage infers them.
fn ip_families(spec: &mut Obj) {
    let cluster_ip = str_of(spec, "clusterIP").to_owned();
    if !cluster_ip.is_empty() && is_empty(spec, "clusterIPs") {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    let headless_selectorless = cluster_ip == "None" && is_empty(spec, "selector");
    if is_unset(spec, "ipFamilyPolicy") {
        let policy = if headless_selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    }
    if !matches!(
        spec.get("ipFamilies"),
        None | Some(Value::Null | Value::Array(_))
    ) {
        return;
    }
    if is_empty(spec, "ipFamilies") {
        let mut families: Vec<Value> = Vec::new();
        if let Some(ips) = spec.get("clusterIPs").and_then(Value::as_array) {
            for ip in ips.iter().map(|ip| ip.as_str().unwrap_or("")) {
                if ip == "None" {
                    break;
                }
                families.push(json!(if ip.contains(':') { "IPv6" } else { "IPv4" }));
            }
        }
        if families.is_empty() {
            families.push(json!("IPv4"));
        }
        spec.insert("ipFamilies".into(), Value::Array(families));
    }
    // Headless, selectorless services may carry both families even on a single-stack cluster.
    let single_stack = spec.get("ipFamilyPolicy").and_then(Value::as_str) == Some("SingleStack");
    if headless_selectorless
        && !single_stack
        && let Some(families) = spec.get_mut("ipFamilies").and_then(Value::as_array_mut)
        && families.len() == 1
    {
        let other = if families[0] == "IPv6" {
            "IPv4"
        } else {
            "IPv6"
        };
        families.push(json!(other));
    }
}

fn service_type(svc: &Value) -> &str {
    match svc.get("spec").and_then(|s| s.get("type")) {
        None | Some(Value::Null) => "ClusterIP",
        Some(t) => t
            .as_str()
            .map_or("", |t| if t.is_empty() { "ClusterIP" } else { t }),
    }
}

pub(crate) fn needs_cluster_ip(svc: &Value) -> bool {
    if !svc.is_object() || service_type(svc) == "ExternalName" {
        return false;
    }
    match svc.get("spec").and_then(|s| s.get("clusterIP")) {
        None | Some(Value::Null) => true,
        Some(ip) => ip.as_str() == Some(""),
    }
}

pub(crate) fn needs_node_ports(svc: &Value) -> Vec<usize> {
    let ty = service_type(svc);
    let spec = svc.get("spec");
    let allocate = ty == "NodePort"
        || (ty == "LoadBalancer"
            && spec.and_then(|s| s.get("allocateLoadBalancerNodePorts")) != Some(&json!(false)));
    if !allocate {
        return Vec::new();
    }
    let Some(ports) = spec.and_then(|s| s.get("ports")).and_then(Value::as_array) else {
        return Vec::new();
    };
    ports
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.as_object()
                .is_some_and(|p| is_unset(p, "nodePort") || is_zero(p.get("nodePort")))
        })
        .map(|(i, _)| i)
        .collect()
}

pub(crate) fn needs_health_check_node_port(svc: &Value) -> bool {
    let Some(spec) = svc.get("spec").and_then(Value::as_object) else {
        return false;
    };
    service_type(svc) == "LoadBalancer"
        && str_of(spec, "externalTrafficPolicy") == "Local"
        && (is_unset(spec, "healthCheckNodePort") || is_zero(spec.get("healthCheckNodePort")))
}

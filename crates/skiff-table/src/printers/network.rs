//! Networking kinds: Service, Ingress, IngressClass, Endpoints, EndpointSlice,
//! NetworkPolicy, ServiceCIDR and IPAddress.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cell::{Cell, Ctx, list_with_more};
use crate::json::{annotation, arr_at, int_at, is_set, obj_at, opt_int, opt_str, str_at};

pub(crate) const SERVICE: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| json!(service_type(cx.obj))),
    Cell::StrOr("spec.clusterIPs.0", "<none>"),
    Cell::Custom(service_external_ip),
    Cell::Custom(service_ports),
    Cell::Age,
    Cell::Labels("spec.selector"),
];

/// `spec.type`; kube's defaulting makes an unset type ClusterIP.
fn service_type(o: &Value) -> &str {
    opt_str(o, "spec.type").unwrap_or("ClusterIP")
}

/// Sorted, de-duplicated load-balancer ingress points: IPs, else hostnames. The server
/// renders wide, so nothing is clipped.
fn load_balancer_ingress(o: &Value) -> Vec<String> {
    let set: BTreeSet<&str> = arr_at(o, "status.loadBalancer.ingress")
        .iter()
        .filter_map(|i| match (str_at(i, "ip"), str_at(i, "hostname")) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().map(str::to_owned).collect()
}

fn service_external_ip(cx: &Ctx) -> Value {
    let o = cx.obj;
    let external: Vec<String> = arr_at(o, "spec.externalIPs")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let text = match service_type(o) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(o);
            all.extend(external);
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(o, "spec.externalName").to_owned(),
        _ => "<unknown>".to_owned(),
    };
    json!(text)
}

fn service_ports(cx: &Ctx) -> Value {
    let pieces: Vec<String> = arr_at(cx.obj, "spec.ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "port");
            // kube's defaulting makes an unset protocol TCP.
            let protocol = opt_str(p, "protocol").unwrap_or("TCP");
            match int_at(p, "nodePort") {
                np if np > 0 => format!("{port}:{np}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if pieces.is_empty() {
        json!("<none>")
    } else {
        json!(pieces.join(","))
    }
}

pub(crate) const INGRESS: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| json!(opt_str(cx.obj, "spec.ingressClassName").unwrap_or("<none>"))),
    Cell::Custom(ingress_hosts),
    Cell::Custom(|cx| json!(load_balancer_ingress(cx.obj).join(","))),
    Cell::Custom(|cx| {
        json!(if arr_at(cx.obj, "spec.tls").is_empty() {
            "80"
        } else {
            "80, 443"
        })
    }),
    Cell::Age,
];

/// The first three rule hosts, `+ N more...` when there are more rules; `*` without hosts.
fn ingress_hosts(cx: &Ctx) -> Value {
    let rules = arr_at(cx.obj, "spec.rules");
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == max {
            more = true;
        }
        let host = str_at(rule, "host");
        if !more && !host.is_empty() {
            list.push(host.to_owned());
        }
    }
    if list.is_empty() {
        return json!("*");
    }
    let ret = list.join(",");
    if more {
        json!(format!("{ret} + {} more...", rules.len() - max))
    } else {
        json!(ret)
    }
}

pub(crate) const INGRESS_CLASS: &[Cell] = &[
    Cell::Custom(|cx| {
        let name = str_at(cx.obj, "metadata.name");
        if annotation(cx.obj, "ingressclass.kubernetes.io/is-default-class") == Some("true") {
            json!(format!("{name} (default)"))
        } else {
            json!(name)
        }
    }),
    Cell::Str("spec.controller"),
    Cell::Custom(|cx| {
        let Some(p) = obj_at(cx.obj, "spec.parameters") else {
            return json!("<none>");
        };
        let p = Value::Object(p.clone());
        let mut text = str_at(&p, "kind").to_owned();
        if let Some(group) = opt_str(&p, "apiGroup") {
            text = format!("{text}.{group}");
        }
        json!(format!("{text}/{}", str_at(&p, "name")))
    }),
    Cell::Age,
];

pub(crate) const ENDPOINTS: &[Cell] = &[Cell::Name, Cell::Custom(endpoints), Cell::Age];

/// `host:port` joining that brackets IPv6 addresses, like Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn endpoints(cx: &Ctx) -> Value {
    let subsets = arr_at(cx.obj, "subsets");
    if subsets.is_empty() {
        return json!("<none>");
    }
    let max: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, "addresses");
        let ports = arr_at(ss, "ports");
        if ports.is_empty() {
            count += addresses.len();
            list.extend(
                addresses
                    .iter()
                    .take(max.saturating_sub(list.len()))
                    .map(|a| str_at(a, "ip").to_owned()),
            );
            continue;
        }
        for port in ports {
            count += addresses.len();
            let port = int_at(port, "port");
            list.extend(
                addresses
                    .iter()
                    .take(max.saturating_sub(list.len()))
                    .map(|a| join_host_port(str_at(a, "ip"), port)),
            );
        }
    }
    json!(list_with_more(&list, count, max))
}

pub(crate) const ENDPOINT_SLICE: &[Cell] = &[
    Cell::Name,
    Cell::Str("addressType"),
    Cell::Custom(|cx| {
        let ports = arr_at(cx.obj, "ports");
        let list: Vec<String> = ports
            .iter()
            .take(3)
            .map(|p| match (opt_int(p, "port"), opt_str(p, "name")) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_owned(),
                (None, None) => "*".to_owned(),
            })
            .collect();
        json!(unset_if_empty(list_with_more(&list, ports.len(), 3)))
    }),
    Cell::Custom(|cx| {
        let all: Vec<&str> = arr_at(cx.obj, "endpoints")
            .iter()
            .flat_map(|e| arr_at(e, "addresses").iter().filter_map(Value::as_str))
            .collect();
        let list: Vec<String> = all.iter().take(3).map(|s| (*s).to_owned()).collect();
        json!(unset_if_empty(list_with_more(&list, all.len(), 3)))
    }),
    Cell::Age,
];

fn unset_if_empty(s: String) -> String {
    if s.is_empty() {
        "<unset>".to_owned()
    } else {
        s
    }
}

pub(crate) const NETWORK_POLICY: &[Cell] =
    &[Cell::Name, Cell::Selector("spec.podSelector"), Cell::Age];

pub(crate) const SERVICE_CIDR: &[Cell] = &[
    Cell::Name,
    Cell::JoinStrs {
        list: "spec.cidrs",
        sep: ",",
        empty: "",
    },
    Cell::Age,
];

/// IPAddress: kube's printer emits an age cell beyond its two column definitions; skiff
/// does the same, and kubectl ignores cells without a column.
pub(crate) const IP_ADDRESS: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        let o = cx.obj;
        if !is_set(o, "spec.parentRef") {
            return json!("<none>");
        }
        let resource = str_at(o, "spec.parentRef.resource");
        let group = str_at(o, "spec.parentRef.group");
        let mut text = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        }
        .to_lowercase();
        let ns = str_at(o, "spec.parentRef.namespace");
        if !ns.is_empty() {
            text = format!("{text}/{ns}");
        }
        json!(format!("{text}/{}", str_at(o, "spec.parentRef.name")))
    }),
    Cell::Age,
];

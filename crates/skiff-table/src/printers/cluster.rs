//! Cluster and API-machinery kinds: Node, Namespace, Event, Secret, ServiceAccount,
//! ConfigMap, ComponentStatus, ResourceQuota, RBAC bindings, certificates, leases, priority
//! and runtime classes, admission configuration, flow control, storage versions and
//! `metav1.Status`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cell::{Cell, Ctx, list_with_more};
use crate::duration::{human_duration, parse_time};
use crate::json::{
    arr_at, at, condition, int_at, is_set, obj_at, opt_int, scalar_text, str_at, str_or,
};
use crate::labels::selector_string;

pub(crate) const NODE: &[Cell] = &[
    Cell::Name,
    Cell::Custom(node_status),
    Cell::Custom(node_roles),
    Cell::Age,
    Cell::Str("status.nodeInfo.kubeletVersion"),
    Cell::Custom(|cx| json!(node_address(cx.obj, "InternalIP"))),
    Cell::Custom(|cx| json!(node_address(cx.obj, "ExternalIP"))),
    Cell::StrOr("status.nodeInfo.osImage", "<unknown>"),
    Cell::Custom(|cx| {
        let kernel = str_at(cx.obj, "status.nodeInfo.kernelVersion");
        let arch = str_at(cx.obj, "status.nodeInfo.architecture");
        json!(match (kernel, arch) {
            ("", _) => "<unknown>".to_owned(),
            (k, "") => k.to_owned(),
            (k, a) => format!("{k} ({a})"),
        })
    }),
    Cell::StrOr("status.nodeInfo.containerRuntimeVersion", "<unknown>"),
];

fn node_status(cx: &Ctx) -> Value {
    // kube keys conditions by type in a map, so the last Ready condition counts.
    let ready = arr_at(cx.obj, "status.conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "type") == "Ready");
    let mut status = match ready {
        Some(c) if str_at(c, "status") == "True" => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if at(cx.obj, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    json!(status)
}

fn node_roles(cx: &Ctx) -> Value {
    let mut roles = BTreeSet::new();
    for (k, v) in obj_at(cx.obj, "metadata.labels").into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_owned());
            }
        } else if k == "kubernetes.io/role" {
            match v.as_str() {
                Some(role) if !role.is_empty() => {
                    roles.insert(role.to_owned());
                }
                _ => {}
            }
        }
    }
    if roles.is_empty() {
        json!("<none>")
    } else {
        json!(roles.into_iter().collect::<Vec<_>>().join(","))
    }
}

fn node_address<'a>(node: &'a Value, ty: &str) -> &'a str {
    arr_at(node, "status.addresses")
        .iter()
        .find(|a| str_at(a, "type") == ty)
        .map_or("<none>", |a| str_at(a, "address"))
}

pub(crate) const EVENT: &[Cell] = &[
    Cell::Custom(event_last_seen),
    Cell::Str("type"),
    Cell::Str("reason"),
    Cell::Custom(|cx| {
        let kind = str_at(cx.obj, "involvedObject.kind").to_lowercase();
        json!(match str_at(cx.obj, "involvedObject.name") {
            "" => kind,
            name => format!("{kind}/{name}"),
        })
    }),
    Cell::Str("involvedObject.fieldPath"),
    Cell::Custom(|cx| {
        let o = cx.obj;
        let component = str_or(o, "source.component", str_at(o, "reportingController"));
        let host = str_or(o, "source.host", str_at(o, "reportingInstance"));
        json!(if host.is_empty() {
            component.to_owned()
        } else {
            format!("{component}, {host}")
        })
    }),
    Cell::Custom(|cx| json!(str_at(cx.obj, "message").trim())),
    Cell::Custom(|cx| json!(event_first_seen(cx))),
    Cell::Custom(|cx| {
        let count = if is_set(cx.obj, "series") {
            int_at(cx.obj, "series.count")
        } else {
            match int_at(cx.obj, "count") {
                0 => 1,
                n => n,
            }
        };
        json!(count)
    }),
    Cell::Name,
];

/// Age of `firstTimestamp`, else of `eventTime`.
fn event_first_seen(cx: &Ctx) -> String {
    if parse_time(at(cx.obj, "firstTimestamp")).is_some() {
        cx.age("firstTimestamp")
    } else {
        cx.age("eventTime")
    }
}

fn event_last_seen(cx: &Ctx) -> Value {
    if is_set(cx.obj, "series") {
        return json!(cx.age("series.lastObservedTime"));
    }
    if parse_time(at(cx.obj, "lastTimestamp")).is_some() {
        json!(cx.age("lastTimestamp"))
    } else {
        json!(event_first_seen(cx))
    }
}

pub(crate) const NAMESPACE: &[Cell] = &[Cell::Name, Cell::Str("status.phase"), Cell::Age];

pub(crate) const SECRET: &[Cell] = &[Cell::Name, Cell::Str("type"), Cell::Len("data"), Cell::Age];

pub(crate) const SERVICE_ACCOUNT: &[Cell] = &[Cell::Name, Cell::Age];

pub(crate) const CONFIG_MAP: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        json!(crate::json::len_at(cx.obj, "data") + crate::json::len_at(cx.obj, "binaryData"))
    }),
    Cell::Age,
];

pub(crate) const COMPONENT_STATUS: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        json!(match condition(cx.obj, "conditions", "Healthy") {
            Some(c) if str_at(c, "status") == "True" => "Healthy",
            Some(_) => "Unhealthy",
            None => "Unknown",
        })
    }),
    Cell::Custom(|cx| {
        json!(condition(cx.obj, "conditions", "Healthy").map_or("", |c| str_at(c, "message")))
    }),
    Cell::Custom(|cx| {
        json!(condition(cx.obj, "conditions", "Healthy").map_or("", |c| str_at(c, "error")))
    }),
];

pub(crate) const RESOURCE_QUOTA: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| json!(quota_usage(cx.obj, false))),
    Cell::Custom(|cx| json!(quota_usage(cx.obj, true))),
    Cell::Age,
];

/// `<resource>: <used>/<hard>` for each hard limit, sorted by name; `limits` selects the
/// `limits.*` resources or the others.
fn quota_usage(o: &Value, limits: bool) -> String {
    let quantity = |path: &str, key: &str| {
        obj_at(o, path)
            .and_then(|m| m.get(key))
            .and_then(scalar_text)
            .unwrap_or_else(|| "0".to_owned())
    };
    let mut names: Vec<&String> = obj_at(o, "status.hard")
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter(|name| {
            let is_limit = name
                .split_once('.')
                .is_some_and(|(first, _)| first == "limits");
            is_limit == limits
        })
        .map(|name| {
            format!(
                "{name}: {}/{}",
                quantity("status.used", name),
                quantity("status.hard", name)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) const ROLE_BINDINGS: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        json!(format!(
            "{}/{}",
            str_at(cx.obj, "roleRef.kind"),
            str_at(cx.obj, "roleRef.name")
        ))
    }),
    Cell::Age,
    Cell::Custom(|cx| json!(subjects(cx.obj, "User"))),
    Cell::Custom(|cx| json!(subjects(cx.obj, "Group"))),
    Cell::Custom(|cx| json!(subjects(cx.obj, "ServiceAccount"))),
];

/// Subjects of one kind joined with `, `; service accounts as `<namespace>/<name>`.
fn subjects(o: &Value, kind: &str) -> String {
    arr_at(o, "subjects")
        .iter()
        .filter(|s| str_at(s, "kind") == kind)
        .map(|s| {
            if kind == "ServiceAccount" {
                format!("{}/{}", str_at(s, "namespace"), str_at(s, "name"))
            } else {
                str_at(s, "name").to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) const CERTIFICATE_SIGNING_REQUEST: &[Cell] = &[
    Cell::Name,
    Cell::Age,
    Cell::StrOr("spec.signerName", "<none>"),
    Cell::Str("spec.username"),
    Cell::Custom(|cx| match opt_int(cx.obj, "spec.expirationSeconds") {
        Some(s) => json!(human_duration(time::Duration::seconds(s))),
        None => json!("<none>"),
    }),
    Cell::Custom(csr_condition),
];

fn csr_condition(cx: &Ctx) -> Value {
    let has = |ty: &str| condition(cx.obj, "status.conditions", ty).is_some();
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_owned();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(cx.obj, "status.certificate").is_empty() {
        status.push_str(",Issued");
    }
    json!(status)
}

pub(crate) const CLUSTER_TRUST_BUNDLE: &[Cell] =
    &[Cell::Name, Cell::StrOr("spec.signerName", "<none>")];

pub(crate) const POD_CERTIFICATE_REQUEST: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.podName"),
    Cell::Str("spec.serviceAccountName"),
    Cell::Str("spec.nodeName"),
    Cell::Str("spec.signerName"),
    Cell::Custom(|cx| {
        let state = arr_at(cx.obj, "status.conditions")
            .iter()
            .filter_map(|c| match str_at(c, "type") {
                t @ ("Issued" | "Denied" | "Failed") => Some(t),
                _ => None,
            })
            .next_back()
            .unwrap_or("Pending");
        json!(state)
    }),
    // Added by kube only in wide mode, which the server always renders.
    Cell::Labels("spec.unverifiedUserAnnotations"),
];

pub(crate) const LEASE: &[Cell] = &[Cell::Name, Cell::Str("spec.holderIdentity"), Cell::Age];

pub(crate) const LEASE_CANDIDATE: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.leaseName"),
    Cell::Str("spec.binaryVersion"),
    Cell::Str("spec.emulationVersion"),
    Cell::Age,
];

pub(crate) const PRIORITY_CLASS: &[Cell] = &[
    Cell::Name,
    Cell::Int("value"),
    Cell::Bool("globalDefault", false),
    Cell::Age,
    // Added by kube only in wide mode, which the server always renders.
    Cell::Str("preemptionPolicy"),
];

pub(crate) const RUNTIME_CLASS: &[Cell] = &[Cell::Name, Cell::Str("handler"), Cell::Age];

pub(crate) const STATUS: &[Cell] = &[
    Cell::Str("status"),
    Cell::Str("reason"),
    Cell::Str("message"),
];

pub(crate) const WEBHOOK_CONFIGURATION: &[Cell] = &[Cell::Name, Cell::Len("webhooks"), Cell::Age];

pub(crate) const VALIDATING_ADMISSION_POLICY: &[Cell] = &[
    Cell::Name,
    Cell::Len("spec.validations"),
    Cell::Custom(param_kind),
    Cell::Age,
];

pub(crate) const MUTATING_ADMISSION_POLICY: &[Cell] = &[
    Cell::Name,
    Cell::Len("spec.mutations"),
    Cell::Custom(param_kind),
    Cell::Age,
];

fn param_kind(cx: &Ctx) -> Value {
    if !is_set(cx.obj, "spec.paramKind") {
        return json!("<unset>");
    }
    json!(format!(
        "{}/{}",
        str_at(cx.obj, "spec.paramKind.apiVersion"),
        str_at(cx.obj, "spec.paramKind.kind")
    ))
}

pub(crate) const ADMISSION_POLICY_BINDING: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.policyName"),
    Cell::Custom(|cx| {
        let o = cx.obj;
        if !is_set(o, "spec.paramRef") {
            return json!("<unset>");
        }
        let name = str_at(o, "spec.paramRef.name");
        if !name.is_empty() {
            return json!(match str_at(o, "spec.paramRef.namespace") {
                "" => format!("*/{name}"),
                ns => format!("{ns}/{name}"),
            });
        }
        if is_set(o, "spec.paramRef.selector") {
            // kube prints the Go struct form of the selector; skiff prints selector syntax.
            return json!(selector_string(at(o, "spec.paramRef.selector")).unwrap_or_default());
        }
        json!("<unset>")
    }),
    Cell::Age,
];

pub(crate) const FLOW_SCHEMA: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.priorityLevelConfiguration.name"),
    Cell::Int("spec.matchingPrecedence"),
    Cell::Custom(|cx| {
        json!(if is_set(cx.obj, "spec.distinguisherMethod") {
            str_at(cx.obj, "spec.distinguisherMethod.type")
        } else {
            "<none>"
        })
    }),
    Cell::Age,
    Cell::Custom(|cx| {
        json!(
            condition(cx.obj, "status.conditions", "Dangling").map_or("?", |c| str_at(c, "status"))
        )
    }),
];

pub(crate) const PRIORITY_LEVEL_CONFIGURATION: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.type"),
    Cell::Custom(|cx| {
        if is_set(cx.obj, "spec.limited") {
            json!(int_at(cx.obj, "spec.limited.nominalConcurrencyShares"))
        } else {
            json!("<none>")
        }
    }),
    Cell::Custom(|cx| queuing(cx, "queues")),
    Cell::Custom(|cx| queuing(cx, "handSize")),
    Cell::Custom(|cx| queuing(cx, "queueLengthLimit")),
    Cell::Age,
];

fn queuing(cx: &Ctx, field: &str) -> Value {
    let path = "spec.limited.limitResponse.queuing";
    if is_set(cx.obj, "spec.limited") && is_set(cx.obj, path) {
        json!(int_at(cx.obj, &format!("{path}.{field}")))
    } else {
        json!("<none>")
    }
}

pub(crate) const STORAGE_VERSION: &[Cell] = &[
    Cell::Name,
    Cell::StrOr("status.commonEncodingVersion", "<unset>"),
    Cell::Custom(|cx| {
        let all = arr_at(cx.obj, "status.storageVersions");
        let list: Vec<String> = all
            .iter()
            .take(3)
            .map(|sv| {
                format!(
                    "{}={}",
                    str_at(sv, "apiServerID"),
                    str_at(sv, "encodingVersion")
                )
            })
            .collect();
        let text = list_with_more(&list, all.len(), 3);
        json!(if text.is_empty() {
            "<unset>".into()
        } else {
            text
        })
    }),
    Cell::Age,
];

pub(crate) const STORAGE_VERSION_MIGRATION: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        let resource = str_at(cx.obj, "spec.resource.resource");
        json!(match str_at(cx.obj, "spec.resource.group") {
            "" => resource.to_owned(),
            group => format!("{resource}.{group}"),
        })
    }),
    Cell::Custom(|cx| {
        let status = arr_at(cx.obj, "status.conditions")
            .iter()
            .filter(|c| str_at(c, "status") == "True")
            .filter_map(|c| match str_at(c, "type") {
                t @ ("Running" | "Failed" | "Succeeded") => Some(t),
                _ => None,
            })
            .next_back()
            .unwrap_or("Unknown");
        json!(status)
    }),
];

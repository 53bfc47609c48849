//! Dynamic resource allocation, workload scheduling and eviction kinds: DeviceClass,
//! ResourceClaim(Template), ResourceSlice, ResourcePoolStatusRequest, DeviceTaintRule,
//! Workload, PodGroup, EvictionRequest and Eviction. These are alpha/beta APIs; where the
//! TSV rule names fields loosely (Eviction's responders and requesters) the field names used
//! are documented on the functions.

use serde_json::{Value, json};

use crate::cell::{Cell, Ctx};
use crate::duration::{parse_time, since, until};
use crate::json::{arr_at, at, condition, int_at, is_set, opt_bool, str_at};

pub(crate) const NAME_AGE: &[Cell] = &[Cell::Name, Cell::Age];

pub(crate) const RESOURCE_CLAIM: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        let o = cx.obj;
        let deleted = is_set(o, "metadata.deletionTimestamp");
        let mut states = Vec::new();
        if deleted {
            states.push("deleted");
        }
        if is_set(o, "status.allocation") {
            states.push("allocated");
            if !arr_at(o, "status.reservedFor").is_empty() {
                states.push("reserved");
            }
        } else if !deleted {
            states.push("pending");
        }
        json!(states.join(","))
    }),
    Cell::Age,
];

pub(crate) const RESOURCE_SLICE: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.nodeName"),
    Cell::Str("spec.driver"),
    Cell::Str("spec.pool.name"),
    Cell::Age,
];

pub(crate) const RESOURCE_POOL_STATUS_REQUEST: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.driver"),
    Cell::Custom(|cx| pool_sum(cx, "totalDevices")),
    Cell::Custom(|cx| pool_sum(cx, "availableDevices")),
    Cell::Custom(|cx| pool_sum(cx, "allocatedDevices")),
    Cell::Custom(|cx| pool_sum(cx, "unavailableDevices")),
    Cell::Custom(|cx| {
        if pools_unavailable(cx.obj) {
            return json!("-");
        }
        let errors = arr_at(cx.obj, "status.pools")
            .iter()
            .filter(|p| !str_at(p, "validationError").is_empty())
            .count();
        json!(errors.to_string())
    }),
    Cell::Int("status.poolCount"),
    Cell::Custom(pool_request_status),
    Cell::Custom(
        |cx| match condition(cx.obj, "status.conditions", "Complete") {
            Some(c) if str_at(c, "status") == "True" => {
                json!(since(at(c, "lastTransitionTime"), cx.now))
            }
            _ => json!("<none>"),
        },
    ),
];

/// No status yet, or a failed request: the device counts print as `-`.
fn pools_unavailable(o: &Value) -> bool {
    !is_set(o, "status")
        || condition(o, "status.conditions", "Failed")
            .is_some_and(|c| str_at(c, "status") == "True")
}

fn pool_sum(cx: &Ctx, field: &str) -> Value {
    if pools_unavailable(cx.obj) {
        return json!("-");
    }
    let sum: i64 = arr_at(cx.obj, "status.pools")
        .iter()
        .map(|p| int_at(p, field))
        .sum();
    json!(sum.to_string())
}

fn pool_request_status(cx: &Ctx) -> Value {
    let o = cx.obj;
    let mut status = "Pending".to_owned();
    for c in arr_at(o, "status.conditions") {
        if str_at(c, "status") != "True" {
            continue;
        }
        match str_at(c, "type") {
            "Complete" => {
                let listed = arr_at(o, "status.pools").len();
                let count = int_at(o, "status.poolCount");
                status = if i64::try_from(listed).unwrap_or(i64::MAX) < count {
                    format!("Complete ({listed}/{count} pools)")
                } else {
                    "Complete".to_owned()
                };
            }
            "Failed" => status = "Failed".to_owned(),
            _ => {}
        }
    }
    json!(status)
}

pub(crate) const DEVICE_TAINT_RULE: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.taint.key"),
    Cell::Str("spec.taint.value"),
    Cell::Str("spec.taint.effect"),
    Cell::AgeOr("spec.taint.timeAdded", ""),
    Cell::Age,
];

pub(crate) const POD_GROUP: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        json!(if is_set(cx.obj, "spec.schedulingPolicy.gang") {
            "Gang"
        } else {
            "Basic"
        })
    }),
    Cell::Custom(|cx| {
        let path = "spec.podGroupTemplateRef.workload.workloadName";
        json!(if is_set(cx.obj, "spec.podGroupTemplateRef") {
            str_at(cx.obj, path)
        } else {
            "<none>"
        })
    }),
    Cell::Custom(|cx| {
        let o = cx.obj;
        let mut status = match condition(o, "status.conditions", "InitiallyScheduled") {
            Some(c) if str_at(c, "status") == "True" => "Scheduled",
            Some(_) => "Unschedulable",
            None => "Pending",
        }
        .to_owned();
        if let Some(c) = condition(o, "status.conditions", "DisruptionTarget")
            && str_at(c, "status") == "True"
            && !str_at(c, "reason").is_empty()
        {
            status = str_at(c, "reason").to_owned();
        }
        json!(status)
    }),
    Cell::Age,
];

/// `Pending`, `Progressing` once observed, `<Type> (<Reason>)` for a True Failed condition,
/// overridden by a True TargetEvicted condition.
fn eviction_status(cx: &Ctx) -> Value {
    let o = cx.obj;
    let mut status = if int_at(o, "status.observedGeneration") > 0 {
        "Progressing".to_owned()
    } else {
        "Pending".to_owned()
    };
    for ty in ["Failed", "TargetEvicted"] {
        if let Some(c) = condition(o, "status.conditions", ty)
            && str_at(c, "status") == "True"
        {
            status = format!("{ty} ({})", str_at(c, "reason"));
        }
    }
    json!(status)
}

fn eviction_target(cx: &Ctx) -> Value {
    if is_set(cx.obj, "spec.target.pod") {
        json!(str_at(cx.obj, "spec.target.pod.name"))
    } else {
        json!("<unset>")
    }
}

fn eviction_target_type(cx: &Ctx) -> Value {
    json!(if is_set(cx.obj, "spec.target.pod") {
        "Pod"
    } else {
        "<unset>"
    })
}

pub(crate) const EVICTION_REQUEST: &[Cell] = &[
    Cell::Name,
    Cell::Custom(eviction_target),
    Cell::Custom(eviction_target_type),
    Cell::Custom(eviction_status),
    Cell::Str("spec.requesterName"),
    Cell::Str("spec.intent"),
    Cell::Age,
];

pub(crate) const EVICTION: &[Cell] = &[
    Cell::Name,
    Cell::Custom(eviction_target),
    Cell::Custom(eviction_target_type),
    Cell::Custom(eviction_status),
    Cell::Custom(active_responder),
    Cell::Custom(responder_status),
    Cell::Custom(responder_expected_finish),
    Cell::Custom(requesters),
    Cell::Age,
    Cell::Custom(|cx| match responder(cx.obj) {
        Some((_, r)) if parse_time(at(r, "heartbeatTime")).is_some() => {
            json!(format!("{} ago", since(at(r, "heartbeatTime"), cx.now)))
        }
        _ => json!("<unset>"),
    }),
    Cell::Custom(|cx| {
        let message = responder(cx.obj).map_or("", |(_, r)| str_at(r, "message").trim());
        json!(if message.is_empty() {
            "<unset>"
        } else {
            message
        })
    }),
];

/// The responder the Eviction columns describe, read from `status.targetResponders`
/// (entries with `name`, `state`, `startTime`, `completionTime`, `heartbeatTime`,
/// `expectedCompletionTime`, `message`): the last Active one, else the last processed one.
fn responder(o: &Value) -> Option<(usize, &Value)> {
    let responders = arr_at(o, "status.targetResponders");
    let last = |pred: &dyn Fn(&str) -> bool| {
        responders
            .iter()
            .enumerate()
            .rev()
            .find(|(_, r)| pred(str_at(r, "state")))
    };
    last(&|s| s == "Active").or_else(|| last(&|s| !s.is_empty()))
}

fn active_responder(cx: &Ctx) -> Value {
    let total = arr_at(cx.obj, "status.targetResponders").len();
    match responder(cx.obj) {
        Some((i, r)) => {
            let name = match str_at(r, "name") {
                "" => "<unset>",
                n => n,
            };
            json!(format!("{name} ({}/{total})", i + 1))
        }
        None => json!(format!("<unset> (0/{total})")),
    }
}

fn responder_status(cx: &Ctx) -> Value {
    let Some((_, r)) = responder(cx.obj) else {
        return json!("<unset>");
    };
    let state = str_at(r, "state");
    let text = match state {
        "Active" if parse_time(at(r, "startTime")).is_some() => {
            format!("Started ({} ago)", since(at(r, "startTime"), cx.now))
        }
        "Completed" if parse_time(at(r, "completionTime")).is_some() => {
            format!("{state} ({} ago)", since(at(r, "completionTime"), cx.now))
        }
        s => s.to_owned(),
    };
    json!(text)
}

fn responder_expected_finish(cx: &Ctx) -> Value {
    let Some((_, r)) = responder(cx.obj) else {
        return json!("<unknown>");
    };
    match str_at(r, "state") {
        "Active" => match parse_time(at(r, "expectedCompletionTime")) {
            Some(t) if t >= cx.now => {
                json!(format!(
                    "in {}",
                    until(at(r, "expectedCompletionTime"), cx.now)
                ))
            }
            Some(_) => json!(format!(
                "{} ago",
                since(at(r, "expectedCompletionTime"), cx.now)
            )),
            None => json!("<unknown>"),
        },
        "Canceled" | "Interrupted" | "Completed" => json!("-"),
        _ => json!("<unknown>"),
    }
}

/// Requesters from `spec.requesters` (entries with `name` and an optional `withdrawn`
/// boolean or `withdrawnTime`): the first sorted active name plus `+ N more...`.
fn requesters(cx: &Ctx) -> Value {
    let all = arr_at(cx.obj, "spec.requesters");
    if all.is_empty() {
        return json!("<none>");
    }
    let mut active: Vec<&str> = all
        .iter()
        .filter(|r| opt_bool(r, "withdrawn") != Some(true) && !is_set(r, "withdrawnTime"))
        .map(|r| str_at(r, "name"))
        .collect();
    if active.is_empty() {
        return json!("<withdrawn>");
    }
    active.sort_unstable();
    let first = active[0];
    json!(if active.len() > 1 {
        format!("{first} + {} more...", active.len() - 1)
    } else {
        first.to_owned()
    })
}

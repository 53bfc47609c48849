//! Pods: the READY, STATUS and RESTARTS rules of kube-apiserver's `printPod`, and the wide
//! columns. STATUS is the subtle one: init containers, sidecars (restartable init
//! containers), the last-to-first scan of container states and the Terminating override.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cell::{Cell, Ctx};
use crate::duration::{human_duration, parse_time};
use crate::json::{arr_at, at, condition_true, int_at, is_set, str_at, str_or};

pub(crate) const POD: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        let s = summarize(cx.obj, cx.now);
        json!(format!("{}/{}", s.ready, s.total))
    }),
    Cell::Custom(|cx| json!(summarize(cx.obj, cx.now).reason)),
    Cell::Custom(|cx| json!(summarize(cx.obj, cx.now).restarts)),
    Cell::Age,
    Cell::Custom(|cx| json!(str_or(cx.obj, "status.podIPs.0.ip", "<none>"))),
    Cell::StrOr("spec.nodeName", "<none>"),
    Cell::StrOr("status.nominatedNodeName", "<none>"),
    Cell::Custom(readiness_gates),
];

/// What the pod's READY, STATUS and RESTARTS cells say.
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: String,
}

/// Whether the named init container is a sidecar (`restartPolicy: Always`).
fn is_sidecar(pod: &Value, name: &str) -> bool {
    arr_at(pod, "spec.initContainers")
        .iter()
        .find(|c| str_at(c, "name") == name)
        .is_some_and(|c| str_at(c, "restartPolicy") == "Always")
}

/// Keeps the newest `lastState.terminated.finishedAt`.
fn note_last_termination(status: &Value, newest: &mut Option<OffsetDateTime>) {
    if let Some(t) = parse_time(at(status, "lastState.terminated.finishedAt"))
        && newest.is_none_or(|n| n < t)
    {
        *newest = Some(t);
    }
}

fn restart_count(status: &Value) -> i64 {
    int_at(status, "restartCount")
}

/// The text of a terminated state without a reason: `Signal:N` or `ExitCode:N`.
fn exit_text(terminated: &Value) -> String {
    match int_at(terminated, "signal") {
        0 => format!("ExitCode:{}", int_at(terminated, "exitCode")),
        sig => format!("Signal:{sig}"),
    }
}

fn summarize(pod: &Value, now: OffsetDateTime) -> Summary {
    let init_specs = arr_at(pod, "spec.initContainers");
    let mut total = arr_at(pod, "spec.containers").len();
    total += init_specs
        .iter()
        .filter(|c| str_at(c, "restartPolicy") == "Always")
        .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<OffsetDateTime> = None;
    let mut last_sidecar_restart: Option<OffsetDateTime> = None;

    let phase = str_at(pod, "status.phase");
    let mut reason = str_or(pod, "status.reason", phase).to_owned();
    if arr_at(pod, "status.conditions")
        .iter()
        .any(|c| str_at(c, "type") == "PodScheduled" && str_at(c, "reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_owned();
    }

    let mut initializing = false;
    for (i, cs) in arr_at(pod, "status.initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += restart_count(cs);
        note_last_termination(cs, &mut last_restart);
        let sidecar = is_sidecar(pod, str_at(cs, "name"));
        if sidecar {
            sidecar_restarts += restart_count(cs);
            note_last_termination(cs, &mut last_sidecar_restart);
        }
        let terminated = at(cs, "state.terminated").filter(|t| !t.is_null());
        let waiting_reason = str_at(cs, "state.waiting.reason");
        if terminated.is_some_and(|t| int_at(t, "exitCode") == 0) {
            continue;
        }
        if sidecar && at(cs, "started").and_then(Value::as_bool) == Some(true) {
            if at(cs, "ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_at(t, "reason") {
                "" => format!("Init:{}", exit_text(t)),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "status.conditions", "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr_at(pod, "status.containerStatuses").iter().rev() {
            restarts += restart_count(cs);
            note_last_termination(cs, &mut last_restart);
            let waiting_reason = str_at(cs, "state.waiting.reason");
            let terminated = at(cs, "state.terminated").filter(|t| !t.is_null());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if let Some(t) = terminated {
                reason = match str_at(t, "reason") {
                    "" => exit_text(t),
                    r => r.to_owned(),
                };
            } else if at(cs, "ready").and_then(Value::as_bool) == Some(true)
                && is_set(cs, "state.running")
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "status.conditions", "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    if is_set(pod, "metadata.deletionTimestamp") {
        if str_at(pod, "status.reason") == "NodeLost" {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }

    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    Summary {
        ready,
        total,
        reason,
        restarts,
    }
}

/// `<true gates>/<gates>`, `<none>` without readiness gates.
fn readiness_gates(cx: &Ctx) -> Value {
    let gates = arr_at(cx.obj, "spec.readinessGates");
    if gates.is_empty() {
        return json!("<none>");
    }
    let conditions = arr_at(cx.obj, "status.conditions");
    let true_count = gates
        .iter()
        .filter(|g| {
            let ty = str_at(g, "conditionType");
            conditions
                .iter()
                .find(|c| str_at(c, "type") == ty)
                .is_some_and(|c| str_at(c, "status") == "True")
        })
        .count();
    json!(format!("{true_count}/{}", gates.len()))
}

/// The row condition kube attaches to finished pods (`Completed`, reason Succeeded/Failed).
pub(crate) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, "status.phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

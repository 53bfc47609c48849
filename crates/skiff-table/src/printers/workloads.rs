//! Workload controllers and their helpers: PodTemplate, PodDisruptionBudget,
//! ReplicationController, ReplicaSet, DaemonSet, Job, CronJob, StatefulSet, Deployment,
//! HorizontalPodAutoscaler, ControllerRevision and Scale.

use serde_json::{Value, json};

use crate::cell::{CONTAINERS, Cell, Ctx, IMAGES};
use crate::duration::{human_duration, parse_time};
use crate::json::{arr_at, at, condition, int_at, is_set, opt_int, str_at};
use crate::labels::selector_string;

pub(crate) const POD_TEMPLATE: &[Cell] = &[
    Cell::Name,
    Cell::Join {
        list: "template.spec.containers",
        field: "name",
        sep: ",",
    },
    Cell::Join {
        list: "template.spec.containers",
        field: "image",
        sep: ",",
    },
    Cell::Labels("template.metadata.labels"),
];

pub(crate) const POD_DISRUPTION_BUDGET: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| int_or_string(cx.obj, "spec.minAvailable")),
    Cell::Custom(|cx| int_or_string(cx.obj, "spec.maxUnavailable")),
    Cell::Int("status.disruptionsAllowed"),
    Cell::Age,
];

/// An IntOrString as text (`2`, `50%`), `N/A` when unset.
fn int_or_string(o: &Value, path: &str) -> Value {
    match at(o, path) {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

pub(crate) const REPLICATION_CONTROLLER: &[Cell] = &[
    Cell::Name,
    Cell::Int("spec.replicas"),
    Cell::Int("status.replicas"),
    Cell::Int("status.readyReplicas"),
    Cell::Age,
    CONTAINERS,
    IMAGES,
    Cell::Labels("spec.selector"),
];

pub(crate) const REPLICA_SET: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| json!(desired_replicas(cx.obj))),
    Cell::Int("status.replicas"),
    Cell::Int("status.readyReplicas"),
    Cell::Age,
    CONTAINERS,
    IMAGES,
    Cell::Selector("spec.selector"),
];

/// `spec.replicas` of an apps/v1 object; kube's defaulting fills in 1 when it is unset.
fn desired_replicas(o: &Value) -> i64 {
    opt_int(o, "spec.replicas").unwrap_or(1)
}

pub(crate) const DAEMON_SET: &[Cell] = &[
    Cell::Name,
    Cell::Int("status.desiredNumberScheduled"),
    Cell::Int("status.currentNumberScheduled"),
    Cell::Int("status.numberReady"),
    Cell::Int("status.updatedNumberScheduled"),
    Cell::Int("status.numberAvailable"),
    Cell::Labels("spec.template.spec.nodeSelector"),
    Cell::Age,
    CONTAINERS,
    IMAGES,
    Cell::Selector("spec.selector"),
];

pub(crate) const JOB: &[Cell] = &[
    Cell::Name,
    Cell::Custom(job_status),
    Cell::Custom(job_completions),
    Cell::Custom(job_duration),
    Cell::Age,
    CONTAINERS,
    IMAGES,
    Cell::Selector("spec.selector"),
];

/// Whether the first condition of that type is True (kube's `hasJobCondition`).
fn has_job_condition(o: &Value, ty: &str) -> bool {
    condition(o, "status.conditions", ty).is_some_and(|c| str_at(c, "status") == "True")
}

fn job_status(cx: &Ctx) -> Value {
    let o = cx.obj;
    let status = if has_job_condition(o, "Complete") {
        "Complete"
    } else if has_job_condition(o, "Failed") {
        "Failed"
    } else if is_set(o, "metadata.deletionTimestamp") {
        "Terminating"
    } else if has_job_condition(o, "Suspended") {
        "Suspended"
    } else if has_job_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_job_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    json!(status)
}

fn job_completions(cx: &Ctx) -> Value {
    let o = cx.obj;
    let succeeded = int_at(o, "status.succeeded");
    let text = match opt_int(o, "spec.completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(o, "spec.parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    json!(text)
}

fn job_duration(cx: &Ctx) -> Value {
    let o = cx.obj;
    let text = match (
        parse_time(at(o, "status.startTime")),
        parse_time(at(o, "status.completionTime")),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(cx.now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    json!(text)
}

pub(crate) const CRON_JOB: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.schedule"),
    Cell::StrOr("spec.timeZone", "<none>"),
    Cell::Custom(|cx| {
        json!(match at(cx.obj, "spec.suspend").and_then(Value::as_bool) {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        })
    }),
    Cell::Len("status.active"),
    Cell::AgeOr("status.lastScheduleTime", "<none>"),
    Cell::Age,
    Cell::Join {
        list: "spec.jobTemplate.spec.template.spec.containers",
        field: "name",
        sep: ",",
    },
    Cell::Join {
        list: "spec.jobTemplate.spec.template.spec.containers",
        field: "image",
        sep: ",",
    },
    Cell::Selector("spec.jobTemplate.spec.selector"),
];

pub(crate) const STATEFUL_SET: &[Cell] = &[
    Cell::Name,
    Cell::Custom(ready_of_desired),
    Cell::Age,
    CONTAINERS,
    IMAGES,
];

/// `<status.readyReplicas>/<spec.replicas>`.
fn ready_of_desired(cx: &Ctx) -> Value {
    json!(format!(
        "{}/{}",
        int_at(cx.obj, "status.readyReplicas"),
        desired_replicas(cx.obj)
    ))
}

pub(crate) const DEPLOYMENT: &[Cell] = &[
    Cell::Name,
    Cell::Custom(ready_of_desired),
    Cell::Int("status.updatedReplicas"),
    Cell::Int("status.availableReplicas"),
    Cell::Age,
    CONTAINERS,
    IMAGES,
    Cell::Custom(|cx| {
        json!(selector_string(at(cx.obj, "spec.selector")).unwrap_or_else(|| "<invalid>".into()))
    }),
];

pub(crate) const HORIZONTAL_POD_AUTOSCALER: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| {
        json!(format!(
            "{}/{}",
            str_at(cx.obj, "spec.scaleTargetRef.kind"),
            str_at(cx.obj, "spec.scaleTargetRef.name")
        ))
    }),
    Cell::Custom(hpa_targets),
    Cell::Custom(|cx| match opt_int(cx.obj, "spec.minReplicas") {
        Some(n) => json!(n.to_string()),
        None => json!("<unset>"),
    }),
    Cell::Int("spec.maxReplicas"),
    Cell::Int("status.currentReplicas"),
    Cell::Age,
];

/// A `resource.Quantity` as text; Go prints a nil quantity as `<nil>`.
fn quantity(v: &Value, path: &str) -> String {
    match at(v, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".to_owned(),
    }
}

/// One HPA metric as `<current>/<target>`.
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_owned();
    // The status entry's source of the same type, as Go indexes statuses by position.
    let source = |field: &str| status.and_then(|s| at(s, field)).filter(|v| !v.is_null());
    match str_at(spec, "type") {
        ty @ ("External" | "Object") => {
            let field = if ty == "External" {
                "external"
            } else {
                "object"
            };
            let target = format!("{field}.target");
            if is_set(spec, &format!("{target}.averageValue")) {
                let current = source(field)
                    .filter(|s| is_set(s, "current.averageValue"))
                    .map_or_else(unknown, |s| quantity(s, "current.averageValue"));
                format!(
                    "{current}/{} (avg)",
                    quantity(spec, &format!("{target}.averageValue"))
                )
            } else {
                let current = source(field).map_or_else(unknown, |s| quantity(s, "current.value"));
                format!("{current}/{}", quantity(spec, &format!("{target}.value")))
            }
        }
        "Pods" => {
            let current =
                source("pods").map_or_else(unknown, |s| quantity(s, "current.averageValue"));
            format!("{current}/{}", quantity(spec, "pods.target.averageValue"))
        }
        ty @ ("Resource" | "ContainerResource") => {
            let field = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let name = str_at(spec, &format!("{field}.name"));
            let target = format!("{field}.target");
            if is_set(spec, &format!("{target}.averageValue")) {
                let current =
                    source(field).map_or_else(unknown, |s| quantity(s, "current.averageValue"));
                format!(
                    "{name}: {current}/{}",
                    quantity(spec, &format!("{target}.averageValue"))
                )
            } else {
                let current = source(field)
                    .and_then(|s| opt_int(s, "current.averageUtilization"))
                    .map_or_else(unknown, |u| format!("{u}%"));
                let target = opt_int(spec, &format!("{target}.averageUtilization"))
                    .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
                format!("{name}: {current}/{target}")
            }
        }
        _ => "<unknown type>".to_owned(),
    }
}

fn hpa_targets(cx: &Ctx) -> Value {
    let specs = arr_at(cx.obj, "spec.metrics");
    if specs.is_empty() {
        return json!("<none>");
    }
    let statuses = arr_at(cx.obj, "status.currentMetrics");
    let max = 2;
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .take(max)
        .map(|(i, spec)| hpa_metric(spec, statuses.get(i)))
        .collect();
    let ret = list.join(", ");
    if specs.len() > max {
        json!(format!("{ret} + {} more...", specs.len() - max))
    } else {
        json!(ret)
    }
}

pub(crate) const CONTROLLER_REVISION: &[Cell] = &[
    Cell::Name,
    Cell::Custom(controller_of),
    Cell::Int("revision"),
    Cell::Age,
];

/// The controller owner reference as `<kind.group lowercased>/<name>`, `<none>` without one.
fn controller_of(cx: &Ctx) -> Value {
    let Some(owner) = arr_at(cx.obj, "metadata.ownerReferences")
        .iter()
        .find(|r| at(r, "controller").and_then(Value::as_bool) == Some(true))
    else {
        return json!("<none>");
    };
    let api_version = str_at(owner, "apiVersion");
    let group = api_version
        .rsplit_once('/')
        .map_or("", |(group, _version)| group);
    let kind = str_at(owner, "kind");
    let name = str_at(owner, "name");
    let group_kind = match (kind, group) {
        ("", "") => return json!(name),
        (k, "") => k.to_owned(),
        (k, g) => format!("{k}.{g}"),
    };
    json!(format!("{}/{name}", group_kind.to_lowercase()))
}

pub(crate) const SCALE: &[Cell] = &[
    Cell::Name,
    Cell::Int("spec.replicas"),
    Cell::Int("status.replicas"),
    Cell::Age,
];

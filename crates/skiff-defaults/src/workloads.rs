//! Defaults of the workload kinds: `apps/v1` Deployments, ReplicaSets, StatefulSets and
//! DaemonSets, and `batch/v1` Jobs and CronJobs.

use serde_json::{Value, json};

use crate::core;
use crate::json::{
    Obj, child, child_or_empty, default_ptr, default_str, each, fill_zeros, is_empty, str_of,
};
use crate::pod;

fn spec_template(spec: &mut Obj) {
    if let Some(template) = child_or_empty(spec, "template") {
        pod::template(template);
    }
}

pub(crate) fn deployment(d: &mut Obj) {
    if let Some(spec) = child_or_empty(d, "spec") {
        default_ptr(spec, "replicas", json!(1));
        if let Some(strategy) = child_or_empty(spec, "strategy") {
            default_str(strategy, "type", "RollingUpdate");
            if str_of(strategy, "type") == "RollingUpdate"
                && let Some(rolling) = child_or_empty(strategy, "rollingUpdate")
            {
                default_ptr(rolling, "maxUnavailable", json!("25%"));
                default_ptr(rolling, "maxSurge", json!("25%"));
            }
        }
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        default_ptr(spec, "progressDeadlineSeconds", json!(600));
        spec_template(spec);
    }
    default_ptr(d, "status", json!({}));
}

pub(crate) fn replica_set(rs: &mut Obj) {
    if let Some(spec) = child_or_empty(rs, "spec") {
        default_ptr(spec, "replicas", json!(1));
        spec_template(spec);
    }
    if let Some(status) = child_or_empty(rs, "status") {
        fill_zeros(status, &[("replicas", json!(0))]);
    }
}

pub(crate) fn stateful_set(ss: &mut Obj) {
    if let Some(spec) = child_or_empty(ss, "spec") {
        default_str(spec, "podManagementPolicy", "OrderedReady");
        if let Some(strategy) = child_or_empty(spec, "updateStrategy") {
            let type_unset = matches!(strategy.get("type"), None | Some(Value::Null))
                || strategy.get("type").and_then(Value::as_str) == Some("");
            if type_unset {
                strategy.insert("type".into(), json!("RollingUpdate"));
                default_ptr(strategy, "rollingUpdate", json!({}));
            }
            if str_of(strategy, "type") == "RollingUpdate"
                && let Some(rolling) = child(strategy, "rollingUpdate")
            {
                default_ptr(rolling, "partition", json!(0));
            }
        }
        if let Some(policy) = child_or_empty(spec, "persistentVolumeClaimRetentionPolicy") {
            default_str(policy, "whenDeleted", "Retain");
            default_str(policy, "whenScaled", "Retain");
        }
        default_ptr(spec, "replicas", json!(1));
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        each(spec, "volumeClaimTemplates", core::pvc);
        spec_template(spec);
    }
    if let Some(status) = child_or_empty(ss, "status") {
        fill_zeros(
            status,
            &[("replicas", json!(0)), ("availableReplicas", json!(0))],
        );
    }
}

pub(crate) fn daemon_set(ds: &mut Obj) {
    if let Some(spec) = child_or_empty(ds, "spec") {
        if let Some(strategy) = child_or_empty(spec, "updateStrategy") {
            default_str(strategy, "type", "RollingUpdate");
            if str_of(strategy, "type") == "RollingUpdate"
                && let Some(rolling) = child_or_empty(strategy, "rollingUpdate")
            {
                default_ptr(rolling, "maxUnavailable", json!(1));
                default_ptr(rolling, "maxSurge", json!(0));
            }
        }
        default_ptr(spec, "revisionHistoryLimit", json!(10));
        spec_template(spec);
    }
    if let Some(status) = child_or_empty(ds, "status") {
        fill_zeros(
            status,
            &[
                ("currentNumberScheduled", json!(0)),
                ("numberMisscheduled", json!(0)),
                ("desiredNumberScheduled", json!(0)),
                ("numberReady", json!(0)),
            ],
        );
    }
}

/// Defaults of a Job's spec that a CronJob's `jobTemplate` shares: the pod template and the
/// pod failure policy's condition patterns.
fn job_template_spec(spec: &mut Obj) {
    if let Some(policy) = child(spec, "podFailurePolicy") {
        each(policy, "rules", |rule| {
            each(rule, "onPodConditions", |pattern| {
                default_str(pattern, "status", "True");
            });
        });
    }
    spec_template(spec);
}

pub(crate) fn job(job: &mut Obj) {
    let template_labels = job
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels
        && let Some(meta) = child_or_empty(job, "metadata")
        && is_empty(meta, "labels")
    {
        meta.insert("labels".into(), labels);
    }
    if let Some(spec) = child_or_empty(job, "spec") {
        if is_unset_ptr(spec, "completions") && is_unset_ptr(spec, "parallelism") {
            spec.insert("completions".into(), json!(1));
            spec.insert("parallelism".into(), json!(1));
        }
        default_ptr(spec, "parallelism", json!(1));
        let per_index = !is_unset_ptr(spec, "backoffLimitPerIndex");
        default_ptr(
            spec,
            "backoffLimit",
            json!(if per_index { i64::from(i32::MAX) } else { 6 }),
        );
        default_ptr(spec, "completionMode", json!("NonIndexed"));
        default_ptr(spec, "suspend", json!(false));
        let replacement = if is_unset_ptr(spec, "podFailurePolicy") {
            "TerminatingOrFailed"
        } else {
            "Failed"
        };
        default_ptr(spec, "podReplacementPolicy", json!(replacement));
        default_ptr(spec, "manualSelector", json!(false));
        job_template_spec(spec);
    }
    default_ptr(job, "status", json!({}));
}

pub(crate) fn cron_job(cj: &mut Obj) {
    if let Some(spec) = child_or_empty(cj, "spec") {
        default_str(spec, "concurrencyPolicy", "Allow");
        default_ptr(spec, "suspend", json!(false));
        default_ptr(spec, "successfulJobsHistoryLimit", json!(3));
        default_ptr(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(job_spec) =
            child_or_empty(spec, "jobTemplate").and_then(|t| child_or_empty(t, "spec"))
        {
            job_template_spec(job_spec);
        }
    }
    default_ptr(cj, "status", json!({}));
}

fn is_unset_ptr(m: &Obj, key: &str) -> bool {
    crate::json::is_unset(m, key)
}

/// `jobStrategy.PrepareForCreate`'s generated selector: unless `manualSelector` is true, the pod
/// template gets the job-name and controller-uid labels (legacy and prefixed) and the selector
/// matches the prefixed controller-uid. Needs `metadata.uid`; without it nothing happens.
pub(crate) fn generate_job_selector(job: &mut Obj) {
    let meta = job.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let uid = meta.and_then(|m| m.get("uid")).and_then(Value::as_str);
    let (Some(name), Some(uid)) = (name.map(str::to_owned), uid.map(str::to_owned)) else {
        return;
    };
    if uid.is_empty() {
        return;
    }
    let Some(spec) = child_or_empty(job, "spec") else {
        return;
    };
    if spec.get("manualSelector") == Some(&Value::Bool(true)) {
        return;
    }
    let labels = child_or_empty(spec, "template")
        .and_then(|t| child_or_empty(t, "metadata"))
        .and_then(|m| child_or_empty(m, "labels"));
    let Some(labels) = labels else {
        return;
    };
    for key in ["job-name", "batch.kubernetes.io/job-name"] {
        labels.entry(key).or_insert_with(|| json!(name));
    }
    for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        labels.entry(key).or_insert_with(|| json!(uid));
    }
    let match_labels =
        child_or_empty(spec, "selector").and_then(|s| child_or_empty(s, "matchLabels"));
    if let Some(match_labels) = match_labels {
        match_labels
            .entry("batch.kubernetes.io/controller-uid")
            .or_insert_with(|| json!(uid));
    }
}

//! The Job controller (batch/v1), after upstream's `pkg/controller/job`: runs pods until
//! `completions` succeed (or, without `completions`, until one succeeds and the rest finish),
//! at most `parallelism` at a time, in `NonIndexed` or `Indexed` completion mode.
//!
//! - Counting: every pod carries the `batch.kubernetes.io/job-tracking` finalizer. A finished
//!   pod's UID is first written to `status.uncountedTerminatedPods`, then its finalizer is
//!   removed, then it moves into `succeeded`/`failed` — so a crash or a lost watch event never
//!   loses or double-counts a pod.
//! - Failure: more than `backoffLimit` failed pods, or `activeDeadlineSeconds` passed, add
//!   `FailureTarget` (reason `BackoffLimitExceeded`/`DeadlineExceeded`), delete the active
//!   pods, and add `Failed` once none is left running (as 1.31+ does). Failed pods are
//!   replaced after an exponential backoff ([`BACKOFF_BASE`] doubling, at most
//!   [`BACKOFF_MAX`]; upstream's is 10 s to 6 min).
//! - Success: `SuccessCriteriaMet`, then `Complete` and `completionTime` once no pod runs.
//! - `suspend` deletes the active pods and sets `Suspended`; resuming resets `startTime`.
//! - Indexed pods get the completion index as annotation and label, the hostname
//!   `<job>-<index>`, and `JOB_COMPLETION_INDEX` from the downward API;
//!   `status.completedIndexes` lists the succeeded indexes.
//!
//! - `podFailurePolicy` ([`crate::failure_policy`]): a `FailJob` rule fails the Job at once
//!   (reason `PodFailurePolicy`), an `Ignore` rule keeps a failure off the count.
//!
//! - `successPolicy` (Indexed Jobs): the first rule met adds `SuccessCriteriaMet` (reason
//!   `SuccessPolicy`), the remaining pods are deleted, then `Complete`.
//!
//! Not implemented: `backoffLimitPerIndex` (and `FailIndex`), waiting for
//! terminating pods before replacing them under `podReplacementPolicy: Failed`, `managedBy`,
//! and adopting orphaned pods.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::future::join_all;
use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobStatus, SuccessPolicy, UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::events::{NORMAL, Recorder, WARNING};
use crate::expectations::Expectations;
use crate::failure_policy::{self, Verdict};
use crate::indexes;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::replicaset::is_not_found;
use crate::util::{
    canonical, controller_of, controller_ref, is_deleting, is_pod_ready, key, key_of, now,
    split_key,
};

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation (and label) holding an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable an Indexed Job's containers read their index from.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The first delay before a failed pod is replaced.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest delay before a failed pod is replaced.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Upstream's cap on pods created or deleted in one sync.
const BURST: usize = 500;

/// Consecutive pod failures of a Job since its last success, for the replacement backoff.
#[derive(Clone, Copy)]
struct Backoff {
    failures: u32,
    last_failure: Instant,
}

impl Backoff {
    /// How long to wait still before creating pods.
    fn remaining(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let delay = BACKOFF_BASE
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(BACKOFF_MAX);
        delay.saturating_sub(self.last_failure.elapsed())
    }
}

/// The Job controller.
pub struct JobController {
    client: Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    queue: Arc<Queue>,
    expectations: Expectations,
    backoffs: Mutex<HashMap<String, Backoff>>,
    recorder: Recorder,
}

/// A pod's finished state as the Job counts it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Succeeded,
    Failed,
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// Whether a pod runs (or will): not finished, not being deleted.
fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), Some("Succeeded" | "Failed")) && !is_deleting(pod)
}

/// The completion index of an Indexed Job's pod (annotation, else label).
fn completion_index(pod: &Pod) -> Option<i32> {
    let meta = &pod.metadata;
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .or_else(|| meta.labels.as_ref().and_then(|l| l.get(COMPLETION_INDEX)))
        .and_then(|i| i.parse().ok())
        .filter(|i| *i >= 0)
}

fn condition_true(job: &Job, type_: &str) -> Option<JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

/// Whether the Job has its terminal condition (`Complete` or `Failed`).
pub fn is_finished(job: &Job) -> bool {
    condition_true(job, "Complete").is_some() || condition_true(job, "Failed").is_some()
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// Sets (or adds) a condition, keeping the transition time when the status is unchanged.
fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    let now = now();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status == status {
            return false;
        }
        existing.status = status.to_owned();
        existing.reason = Some(reason.to_owned());
        existing.message = Some(message.to_owned());
        existing.last_probe_time = Some(now.clone());
        existing.last_transition_time = Some(now);
        return true;
    }
    conditions.push(JobCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now),
    });
    true
}

/// The index of the first `successPolicy` rule the succeeded indexes satisfy: all of its
/// `succeededIndexes`, or `succeededCount` of them (of all indexes without a list).
fn matched_success_rule(
    policy: &SuccessPolicy,
    completed: &BTreeSet<i32>,
    completions: i32,
) -> Option<usize> {
    policy.rules.iter().position(|rule| {
        let wanted = rule
            .succeeded_indexes
            .as_deref()
            .map(|text| indexes::parse(text, completions));
        let matched = match &wanted {
            Some(wanted) => wanted.intersection(completed).count(),
            None => completed.len(),
        };
        match (rule.succeeded_count, &wanted) {
            (Some(count), _) => i32::try_from(matched).unwrap_or(i32::MAX) >= count,
            (None, Some(wanted)) => !wanted.is_empty() && matched == wanted.len(),
            (None, None) => false,
        }
    })
}

/// What a sync wants to happen to the Job's pods.
struct Plan {
    create: Vec<Option<i32>>,
    delete: Vec<Arc<Pod>>,
}

/// The pods to create and delete so that the active pods match what is wanted: for
/// `NonIndexed`, a count; for `Indexed`, one pod per pending index, lowest first.
fn plan(job: &Job, active: &[Arc<Pod>], succeeded: i32, completed: &BTreeSet<i32>) -> Plan {
    let spec = job.spec.clone().unwrap_or_default();
    let parallelism = usize::try_from(spec.parallelism.unwrap_or(1)).unwrap_or(0);
    let mut delete = Vec::new();
    let mut create = Vec::new();
    let mut ranked: Vec<Arc<Pod>> = active.to_vec();
    // Surplus pods go in upstream's spirit: not yet ready before ready, newest first.
    ranked.sort_by_key(|p| {
        (
            is_pod_ready(p),
            std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        )
    });
    if is_indexed(job) {
        let completions = spec.completions.unwrap_or(0);
        let mut running: BTreeSet<i32> = BTreeSet::new();
        let mut valid = Vec::new();
        // Oldest and ready pods are kept when an index has several.
        for pod in ranked.iter().rev() {
            match completion_index(pod) {
                Some(i) if i < completions && !completed.contains(&i) && running.insert(i) => {
                    valid.push(Arc::clone(pod));
                }
                _ => delete.push(Arc::clone(pod)),
            }
        }
        if valid.len() > parallelism {
            valid.sort_by_key(|p| std::cmp::Reverse(completion_index(p)));
            let surplus = valid.len() - parallelism;
            delete.extend(valid.drain(..surplus));
        }
        let room = parallelism.saturating_sub(valid.len());
        create = (0..completions)
            .filter(|i| !completed.contains(i) && !running.contains(i))
            .take(room)
            .map(Some)
            .collect();
    } else {
        let want = match spec.completions {
            None if succeeded > 0 => active.len().min(parallelism),
            None => parallelism,
            Some(completions) => usize::try_from(completions - succeeded)
                .unwrap_or(0)
                .min(parallelism),
        };
        if active.len() > want {
            delete = ranked.into_iter().take(active.len() - want).collect();
        } else {
            create = vec![None; want - active.len()];
        }
    }
    delete.truncate(BURST);
    create.truncate(BURST);
    Plan { create, delete }
}

/// A new pod for `job`: the template, the tracking finalizer, a controller reference, and
/// for an Indexed Job its index, hostname and `JOB_COMPLETION_INDEX`.
fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let mut finalizers = meta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.to_owned());
    let generate_name = match index {
        Some(index) => {
            annotations.insert(COMPLETION_INDEX.to_owned(), index.to_string());
            labels.insert(COMPLETION_INDEX.to_owned(), index.to_string());
            if spec.hostname.is_none() {
                spec.hostname = Some(format!("{name}-{index}"));
            }
            let env = EnvVar {
                name: COMPLETION_INDEX_ENV.to_owned(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                    }),
                    ..EnvVarSource::default()
                }),
            };
            let containers = spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten());
            for container in containers {
                let vars = container.env.get_or_insert_with(Vec::new);
                if !vars.iter().any(|v| v.name == COMPLETION_INDEX_ENV) {
                    vars.push(env.clone());
                }
            }
            format!("{name}-{index}-")
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The status as the controller writes it: zero counts omitted as upstream's `omitempty`
/// does, `ready`/`terminating` always present.
fn status_json(status: &JobStatus) -> Value {
    let positive = |n: Option<i32>| n.filter(|n| *n > 0);
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    json!({
        "active": positive(status.active),
        "ready": status.ready.unwrap_or(0),
        "terminating": status.terminating.unwrap_or(0),
        "succeeded": positive(status.succeeded),
        "failed": positive(status.failed),
        "startTime": status.start_time,
        "completionTime": status.completion_time,
        "conditions": status.conditions.as_ref().filter(|c| !c.is_empty()),
        "uncountedTerminatedPods": {
            "succeeded": uncounted.succeeded.unwrap_or_default(),
            "failed": uncounted.failed.unwrap_or_default(),
        },
        "completedIndexes": status.completed_indexes.as_ref().filter(|c| !c.is_empty()),
    })
}

fn current_status_json(job: &Job) -> Value {
    status_json(&job.status.clone().unwrap_or_default())
}

impl JobController {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        jobs: &Informer<Job>,
        pods: &Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let controller = Arc::new(JobController {
            recorder: Recorder::new(client.clone(), "job-controller"),
            client,
            jobs: jobs.store(),
            pods: pods.store(),
            queue: Queue::new(shutdown),
            expectations: Expectations::default(),
            backoffs: Mutex::default(),
        });
        let c = Arc::clone(&controller);
        jobs.on_change(move |change| match change {
            Change::Applied(job) => c.queue.add(key_of(job)),
            Change::Deleted(job) => {
                c.expectations.forget(&key_of(job));
                c.backoffs_lock().remove(&key_of(job));
                c.queue.add(key_of(job));
            }
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        pods.on_change(move |change| match change {
            Change::Applied(pod) => c.pod_changed(pod, false),
            Change::Deleted(pod) => c.pod_changed(pod, true),
            Change::Resynced => c.enqueue_all(),
        });
        controller
    }

    fn backoffs_lock(&self) -> MutexGuard<'_, HashMap<String, Backoff>> {
        self.backoffs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue_all(&self) {
        for job in self.jobs.state() {
            self.queue.add(key_of(job.as_ref()));
        }
    }

    fn pod_changed(&self, pod: &Pod, deleted: bool) {
        self.expectations
            .observe(&key_of(pod), deleted || is_deleting(pod));
        if let Some(owner) =
            controller_of(pod).filter(|r| r.kind == "Job" && r.api_version == "batch/v1")
        {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            self.queue.add(key(namespace, &owner.name));
        }
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, "job", move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    fn pods_api(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Removes the tracking finalizer from a pod (gone already is fine).
    async fn release(&self, pod: &Pod) -> Result<()> {
        if !has_finalizer(pod) {
            return Ok(());
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let kept: Vec<&String> = pod
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = json!({"metadata": {
            "resourceVersion": pod.metadata.resource_version,
            "finalizers": kept,
        }});
        match self
            .pods_api(namespace)
            .patch(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(error).context("removing the job-tracking finalizer"),
        }
    }

    async fn release_all(&self, pods: &[Arc<Pod>]) -> Result<()> {
        let results = join_all(pods.iter().map(|p| self.release(p))).await;
        results.into_iter().collect()
    }

    /// Writes `status` if it differs from the Job's, with the Job's resourceVersion as a
    /// precondition (a stale cache must not overwrite counts). Returns the written Job.
    async fn write_status(&self, job: &Job, status: &JobStatus) -> Result<Option<Job>> {
        let body = status_json(status);
        // Compared without nulls and empty lists, which the merge patch must still carry
        // (to clear a field) but which mean the same as an absent field.
        if canonical(&body) == canonical(&current_status_json(job)) {
            return Ok(None);
        }
        let api: Api<Job> = Api::namespaced(
            self.client.clone(),
            job.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let patch = json!({
            "metadata": {"resourceVersion": job.metadata.resource_version},
            "status": body,
        });
        let written = api
            .patch_status(
                job.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
            .context("updating job status")?;
        Ok(Some(written))
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let job = self.jobs.get(&ObjectRef::new(name).within(namespace));
        let uid = job.as_ref().and_then(|j| j.metadata.uid.clone());
        // Pods of a Job that is gone (or was replaced by one of the same name) must not
        // keep the finalizer.
        let orphans: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && has_finalizer(p)
                    && controller_of(p.as_ref()).is_some_and(|r| {
                        r.kind == "Job" && r.name == name && Some(&r.uid) != uid.as_ref()
                    })
            })
            .collect();
        self.release_all(&orphans).await?;
        let Some(job) = job else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && controller_of(p.as_ref()).is_some_and(|r| r.uid == uid)
            })
            .collect();
        if is_deleting(job.as_ref()) {
            let tracked: Vec<Arc<Pod>> = pods.into_iter().filter(|p| has_finalizer(p)).collect();
            self.release_all(&tracked).await?;
            return Ok(None);
        }
        let mut job = (*job).clone();
        self.track_finished_pods(key, &mut job, &pods).await?;
        self.reconcile(key, &job, &pods).await
    }

    /// Counts finished pods through `uncountedTerminatedPods` and releases their finalizers.
    async fn track_finished_pods(&self, key: &str, job: &mut Job, pods: &[Arc<Pod>]) -> Result<()> {
        let mut status = job.status.clone().unwrap_or_default();
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let mut uncounted_succeeded: BTreeSet<String> = uncounted
            .succeeded
            .take()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut uncounted_failed: BTreeSet<String> = uncounted
            .failed
            .take()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        let mut completed = indexes::parse(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions,
        );
        let finished = is_finished(job);
        // Pods deleted because the Job is suspended or has met its success or failure
        // criteria are not failures.
        let winding_down = finished
            || job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
            || condition_true(job, "FailureTarget").is_some()
            || condition_true(job, "SuccessCriteriaMet").is_some();
        let spec = job.spec.clone().unwrap_or_default();
        // With `podReplacementPolicy: Failed` (the default under a pod failure policy) a pod
        // being deleted is a failure only once it reaches the Failed phase.
        let only_failed_count = spec.pod_replacement_policy.as_deref() == Some("Failed");
        let mut fail_job = None;
        let mut to_release = Vec::new();
        let (mut new_successes, mut new_failures) = (0u32, 0u32);
        for pod in pods.iter().filter(|p| has_finalizer(p)) {
            let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            let outcome = match phase(pod) {
                Some("Succeeded") => Some(Outcome::Succeeded),
                Some("Failed") => Some(Outcome::Failed),
                _ if is_deleting(pod.as_ref()) && !winding_down && !only_failed_count => {
                    Some(Outcome::Failed)
                }
                _ if is_deleting(pod.as_ref()) || finished => None,
                _ => continue,
            };
            to_release.push(Arc::clone(pod));
            if finished
                || uncounted_succeeded.contains(&pod_uid)
                || uncounted_failed.contains(&pod_uid)
            {
                continue;
            }
            match outcome {
                Some(Outcome::Succeeded) => {
                    if is_indexed(job)
                        && let Some(i) = completion_index(pod).filter(|i| *i < completions)
                    {
                        completed.insert(i);
                    }
                    uncounted_succeeded.insert(pod_uid);
                    new_successes += 1;
                }
                Some(Outcome::Failed) => {
                    let verdict = match &spec.pod_failure_policy {
                        Some(policy) if phase(pod) == Some("Failed") => {
                            failure_policy::judge(policy, pod)
                        }
                        _ => Verdict::Count,
                    };
                    if let Verdict::FailJob(message) = &verdict {
                        fail_job.get_or_insert_with(|| message.clone());
                    }
                    if verdict != Verdict::Ignore {
                        uncounted_failed.insert(pod_uid);
                        new_failures += 1;
                    }
                }
                None => {}
            }
        }
        if new_failures > 0 || new_successes > 0 {
            let mut backoffs = self.backoffs_lock();
            let record = backoffs.entry(key.to_owned()).or_insert(Backoff {
                failures: 0,
                last_failure: Instant::now(),
            });
            if new_successes > 0 {
                record.failures = 0;
            }
            if new_failures > 0 {
                record.failures += new_failures;
                record.last_failure = Instant::now();
            }
        }
        let completed_text = indexes::format(&completed);
        status.completed_indexes = is_indexed(job).then_some(completed_text);
        status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(uncounted_succeeded.iter().cloned().collect()),
            failed: Some(uncounted_failed.iter().cloned().collect()),
        });
        // A FailJob rule matched: the Job fails, recorded with the pods that made it.
        let mut fail_job_event = None;
        if let Some(message) = fail_job
            && condition_true(job, "FailureTarget").is_none()
        {
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            set_condition(
                conditions,
                "FailureTarget",
                "True",
                "PodFailurePolicy",
                &message,
            );
            fail_job_event = Some(message);
        }
        // 1: record the finished pods as uncounted.
        if let Some(written) = self.write_status(job, &status).await? {
            *job = written;
        }
        if let Some(message) = fail_job_event {
            self.recorder
                .record(job, WARNING, "PodFailurePolicy", &message)
                .await;
        }
        // 2: release them.
        self.release_all(&to_release).await?;
        // 3: count them.
        let mut status = job.status.clone().unwrap_or_default();
        let moved_succeeded = uncounted_succeeded.len();
        let moved_failed = uncounted_failed.len();
        if moved_succeeded + moved_failed == 0 {
            return Ok(());
        }
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        status.succeeded = Some(if is_indexed(job) {
            count(completed.len())
        } else {
            status.succeeded.unwrap_or(0) + count(moved_succeeded)
        });
        status.failed = Some(status.failed.unwrap_or(0) + count(moved_failed));
        status.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
        if let Some(written) = self.write_status(job, &status).await? {
            *job = written;
        }
        Ok(())
    }

    /// Decides the Job's conditions and pods from its counted status.
    async fn reconcile(&self, key: &str, job: &Job, pods: &[Arc<Pod>]) -> Result<Option<Duration>> {
        let spec = job.spec.clone().unwrap_or_default();
        let mut status = job.status.clone().unwrap_or_default();
        let active: Vec<Arc<Pod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
        let terminating = pods
            .iter()
            .filter(|p| {
                is_deleting(p.as_ref()) && !matches!(phase(p), Some("Succeeded" | "Failed"))
            })
            .count();
        let completions = spec.completions;
        let completed = indexes::parse(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions.unwrap_or(0),
        );
        let succeeded = status.succeeded.unwrap_or(0);
        let failed = status.failed.unwrap_or(0);
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        status.active = Some(count(active.len()));
        status.ready = Some(count(active.iter().filter(|p| is_pod_ready(p)).count()));
        status.terminating = Some(count(terminating));
        if is_finished(job) {
            self.write_status(job, &status).await?;
            return Ok(None);
        }
        let mut conditions = status.conditions.clone().unwrap_or_default();
        let suspended = spec.suspend == Some(true);
        let now_time = now();
        let resuming = !suspended && condition_true(job, "Suspended").is_some();
        if (status.start_time.is_none() && !suspended) || resuming {
            // The active deadline counts from the start, or from the resumption.
            status.start_time = Some(now_time.clone());
        }
        let mut requeue = None;
        let deadline_left = spec
            .active_deadline_seconds
            .zip(status.start_time.as_ref())
            .map(|(seconds, start)| seconds - (now_time.0.as_second() - start.0.as_second()));
        let failure = if let Some(target) = condition_true(job, "FailureTarget") {
            Some((
                target.reason.unwrap_or_default(),
                target.message.unwrap_or_default(),
            ))
        } else if failed > spec.backoff_limit.unwrap_or(6) {
            Some((
                "BackoffLimitExceeded".to_owned(),
                "Job has reached the specified backoff limit".to_owned(),
            ))
        } else if !suspended && deadline_left.is_some_and(|left| left <= 0) {
            Some((
                "DeadlineExceeded".to_owned(),
                "Job was active longer than specified deadline".to_owned(),
            ))
        } else {
            None
        };
        let success_rule = spec
            .success_policy
            .as_ref()
            .filter(|_| is_indexed(job))
            .and_then(|policy| matched_success_rule(policy, &completed, completions.unwrap_or(0)));
        let success = if let Some(met) = condition_true(job, "SuccessCriteriaMet") {
            Some((
                met.reason.unwrap_or_default(),
                met.message.unwrap_or_default(),
            ))
        } else if let Some(index) = success_rule {
            Some((
                "SuccessPolicy".to_owned(),
                format!("Matched rules at index {index}"),
            ))
        } else {
            let reached = match completions {
                None => succeeded > 0 && active.is_empty(),
                Some(c) if is_indexed(job) => count(completed.len()) >= c,
                Some(c) => succeeded >= c,
            };
            reached.then(|| {
                (
                    "CompletionsReached".to_owned(),
                    "Reached expected number of succeeded pods".to_owned(),
                )
            })
        };
        let uncounted_empty = status.uncounted_terminated_pods.as_ref().is_none_or(|u| {
            u.succeeded.as_ref().is_none_or(Vec::is_empty)
                && u.failed.as_ref().is_none_or(Vec::is_empty)
        });
        let mut manage_error = None;
        let mut events: Vec<(&str, String, String)> = Vec::new();
        if let Some((reason, message)) = failure {
            if set_condition(&mut conditions, "FailureTarget", "True", &reason, &message) {
                events.push((WARNING, reason.clone(), message.clone()));
            }
            manage_error = self.delete_pods(key, job, &active).await.err();
            if active.is_empty() && terminating == 0 && uncounted_empty {
                set_condition(&mut conditions, "Failed", "True", &reason, &message);
            }
        } else if let Some((reason, message)) = success {
            set_condition(
                &mut conditions,
                "SuccessCriteriaMet",
                "True",
                &reason,
                &message,
            );
            manage_error = self.delete_pods(key, job, &active).await.err();
            if active.is_empty() && terminating == 0 && uncounted_empty {
                set_condition(&mut conditions, "Complete", "True", &reason, &message);
                status.completion_time = Some(now_time.clone());
                events.push((NORMAL, "Completed".into(), "Job completed".into()));
            }
        } else if suspended {
            if set_condition(
                &mut conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
            ) {
                events.push((NORMAL, "Suspended".into(), "Job suspended".into()));
            }
            manage_error = self.delete_pods(key, job, &active).await.err();
        } else {
            if resuming {
                set_condition(
                    &mut conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                );
                events.push((NORMAL, "Resumed".into(), "Job resumed".into()));
            }
            if let Some(left) = deadline_left {
                requeue = Some(Duration::from_secs(u64::try_from(left).unwrap_or(0) + 1));
            }
            if self.expectations.satisfied(key, &self.pods) {
                let plan = plan(job, &active, succeeded, &completed);
                let backoff = self
                    .backoffs_lock()
                    .get(key)
                    .map_or(Duration::ZERO, Backoff::remaining);
                let result = if !plan.create.is_empty() && !backoff.is_zero() {
                    requeue = Some(requeue.map_or(backoff, |r: Duration| r.min(backoff)));
                    self.delete_pods(key, job, &plan.delete).await
                } else {
                    match self.delete_pods(key, job, &plan.delete).await {
                        Ok(()) => self.create_pods(key, job, &plan.create).await,
                        Err(error) => Err(error),
                    }
                };
                manage_error = result.err();
            } else {
                requeue = Some(requeue.map_or(Duration::from_secs(1), |r: Duration| {
                    r.min(Duration::from_secs(1))
                }));
            }
        }
        status.conditions = Some(conditions);
        self.write_status(job, &status).await?;
        for (type_, reason, message) in events {
            self.recorder.record(job, type_, &reason, &message).await;
        }
        if let Some(error) = manage_error {
            return Err(error);
        }
        Ok(requeue)
    }

    async fn create_pods(&self, key: &str, job: &Job, indexes: &[Option<i32>]) -> Result<()> {
        let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
        let api = self.pods_api(namespace);
        let mut remaining: &[Option<i32>] = indexes;
        let mut batch = 1;
        while !remaining.is_empty() {
            let (now, later) = remaining.split_at(batch.min(remaining.len()));
            let params = PostParams::default();
            let results = join_all(now.iter().map(|index| {
                let pod = pod_for(job, *index);
                let api = api.clone();
                let params = params.clone();
                async move { api.create(&params, &pod).await }
            }))
            .await;
            let mut failure = None;
            for result in results {
                match result {
                    Ok(created) => {
                        self.expectations.expect_add(key, key_of(&created));
                        let name = created.metadata.name.unwrap_or_default();
                        self.recorder
                            .record(
                                job,
                                NORMAL,
                                "SuccessfulCreate",
                                &format!("Created pod: {name}"),
                            )
                            .await;
                    }
                    Err(error) => failure = Some(error),
                }
            }
            if let Some(error) = failure {
                self.recorder
                    .record(
                        job,
                        WARNING,
                        "FailedCreate",
                        &format!("Error creating: {error}"),
                    )
                    .await;
                return Err(error).context("creating pods");
            }
            remaining = later;
            batch *= 2;
        }
        Ok(())
    }

    async fn delete_pods(&self, key: &str, job: &Job, pods: &[Arc<Pod>]) -> Result<()> {
        if pods.is_empty() {
            return Ok(());
        }
        let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
        let api = self.pods_api(namespace);
        for pod in pods {
            self.expectations.expect_delete(key, key_of(pod.as_ref()));
        }
        let results = join_all(pods.iter().map(|pod| {
            let api = api.clone();
            async move {
                let name = pod.metadata.name.clone().unwrap_or_default();
                (api.delete(&name, &DeleteParams::default()).await, pod, name)
            }
        }))
        .await;
        let mut failure = None;
        for (result, pod, name) in results {
            match result {
                Ok(_) => {
                    self.recorder
                        .record(
                            job,
                            NORMAL,
                            "SuccessfulDelete",
                            &format!("Deleted pod: {name}"),
                        )
                        .await;
                }
                Err(error) => {
                    self.expectations.observe(&key_of(pod.as_ref()), true);
                    if !is_not_found(&error) {
                        failure = Some(error);
                    }
                }
            }
        }
        match failure {
            Some(error) => Err(error).context("deleting pods"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    fn job(completions: Option<i32>, parallelism: i32, indexed: bool) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("uid-1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                completions,
                parallelism: Some(parallelism),
                completion_mode: Some(if indexed { "Indexed" } else { "NonIndexed" }.into()),
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "main".into(),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    fn indexed_pod(index: i32) -> Arc<Pod> {
        Arc::new(pod_for(&job(Some(5), 2, true), Some(index)))
    }

    #[test]
    fn non_indexed_plans_respect_completions_and_parallelism() {
        let j = job(Some(5), 2, false);
        assert_eq!(plan(&j, &[], 0, &BTreeSet::new()).create.len(), 2);
        assert_eq!(plan(&j, &[], 4, &BTreeSet::new()).create.len(), 1);
        assert_eq!(plan(&j, &[], 5, &BTreeSet::new()).create.len(), 0);
        let pods: Vec<Arc<Pod>> = (0..3).map(|_| Arc::new(pod_for(&j, None))).collect();
        assert_eq!(plan(&j, &pods, 0, &BTreeSet::new()).delete.len(), 1);
        // Work-queue style: nothing new once one has succeeded.
        let queue = job(None, 3, false);
        assert_eq!(plan(&queue, &[], 0, &BTreeSet::new()).create.len(), 3);
        assert_eq!(
            plan(&queue, &pods[..1], 1, &BTreeSet::new()).create.len(),
            0
        );
    }

    #[test]
    fn indexed_plans_fill_the_lowest_pending_indexes() {
        let j = job(Some(5), 2, true);
        let completed: BTreeSet<i32> = [0, 2].into_iter().collect();
        let running = vec![indexed_pod(1)];
        let p = plan(&j, &running, 2, &completed);
        assert_eq!(p.create, vec![Some(3)]);
        assert!(p.delete.is_empty());
        // A duplicate index and a completed index are deleted.
        let running = vec![indexed_pod(1), indexed_pod(1), indexed_pod(0)];
        let p = plan(&j, &running, 2, &completed);
        assert_eq!(p.delete.len(), 2);
        assert_eq!(p.create, vec![Some(3)]);
    }

    #[test]
    fn indexed_pods_carry_index_hostname_and_env() {
        let pod = indexed_pod(3);
        let meta = &pod.metadata;
        assert_eq!(meta.generate_name.as_deref(), Some("pi-3-"));
        assert_eq!(meta.annotations.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(meta.labels.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(
            meta.finalizers.as_deref(),
            Some(&[TRACKING_FINALIZER.to_owned()][..])
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-3"));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert_eq!(env[0].name, COMPLETION_INDEX_ENV);
        assert_eq!(completion_index(&pod), Some(3));
    }

    #[test]
    fn success_policies_match_listed_indexes_or_counts() {
        let policy: SuccessPolicy = serde_json::from_value(serde_json::json!({"rules": [
            {"succeededIndexes": "0,2-3"},
            {"succeededIndexes": "4-9", "succeededCount": 2},
            {"succeededCount": 5},
        ]}))
        .unwrap();
        let set = |items: &[i32]| items.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(matched_success_rule(&policy, &set(&[0, 2]), 10), None);
        assert_eq!(matched_success_rule(&policy, &set(&[0, 2, 3]), 10), Some(0));
        assert_eq!(matched_success_rule(&policy, &set(&[1, 5, 9]), 10), Some(1));
        assert_eq!(
            matched_success_rule(&policy, &set(&[0, 1, 2, 5, 7]), 10),
            Some(1)
        );
        assert_eq!(
            matched_success_rule(&policy, &set(&[0, 1, 2, 3]), 10),
            Some(0)
        );
        assert_eq!(
            matched_success_rule(&policy, &set(&[1, 5, 6, 7, 8]), 10),
            Some(1)
        );
        let count_only: SuccessPolicy =
            serde_json::from_value(serde_json::json!({"rules": [{"succeededCount": 3}]})).unwrap();
        assert_eq!(matched_success_rule(&count_only, &set(&[1, 5]), 10), None);
        assert_eq!(
            matched_success_rule(&count_only, &set(&[1, 5, 8]), 10),
            Some(0)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let fresh = |failures| Backoff {
            failures,
            last_failure: Instant::now(),
        };
        assert_eq!(fresh(0).remaining(), Duration::ZERO);
        assert!(fresh(1).remaining() <= BACKOFF_BASE);
        assert!(fresh(3).remaining() > BACKOFF_BASE * 3);
        assert!(fresh(30).remaining() <= BACKOFF_MAX);
    }
}

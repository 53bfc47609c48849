//! The CronJob controller (batch/v1), after upstream's `pkg/controller/cronjob` (v2): starts a
//! Job named `<cronjob>-<minutes since epoch>` at each schedule time (annotated with
//! `batch.kubernetes.io/cronjob-scheduled-timestamp`), honours `suspend`,
//! `startingDeadlineSeconds`, `concurrencyPolicy` (Allow, Forbid, Replace) and
//! `spec.timeZone`, keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, and
//! deletes finished Jobs beyond the history limits. Each CronJob is queued again for its
//! next schedule time; there is no polling. The schedule arithmetic lives in
//! [`crate::schedule`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, Zoned};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::events::{NORMAL, Recorder, WARNING};
use crate::informer::{Change, Informer};
use crate::job::is_finished;
use crate::queue::Queue;
use crate::replicaset::is_not_found;
use crate::schedule::{Schedule, TOO_MANY_MISSED, job_name};
use crate::util::{controller_of, controller_ref, is_deleting, key, key_of, split_key};

/// The annotation holding the schedule time a Job was started for (RFC 3339, in the
/// CronJob's time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Slack added to the wake-up at the next schedule time, so the time is surely due then.
const WAKE_SLACK: Duration = Duration::from_millis(100);

/// The CronJob controller's clock: the system's, or (for tests) one that runs `speed` times
/// faster than real time from the moment it was made.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Option<(Timestamp, Instant)>,
    speed: u32,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock {
            origin: None,
            speed: 1,
        }
    }

    /// A clock starting now and running `speed` times faster than real time.
    pub fn accelerated(speed: u32) -> Clock {
        Clock {
            origin: Some((Timestamp::now(), Instant::now())),
            speed: speed.max(1),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let Some((start, at)) = self.origin else {
            return Timestamp::now();
        };
        let elapsed = at.elapsed().saturating_mul(self.speed);
        k8s_openapi::jiff::SignedDuration::try_from(elapsed)
            .ok()
            .and_then(|e| start.checked_add(e).ok())
            .unwrap_or(start)
    }

    /// The real time that `span` of this clock takes.
    fn real(&self, span: Duration) -> Duration {
        span / self.speed
    }
}

/// The CronJob controller.
pub struct CronJobController {
    clock: Clock,
    client: Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    queue: Arc<Queue>,
    recorder: Recorder,
}

/// A Go `time.RFC3339` rendering of `time` in `zone` (`Z` for a zero offset).
pub fn rfc3339(time: Timestamp, zone: &TimeZone) -> String {
    let zoned = Zoned::new(time, zone.clone());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

fn job_condition(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The Job to start for `scheduled`: the template's metadata and spec, the schedule-time
/// annotation and a controller reference to the CronJob.
fn job_for(cronjob: &CronJob, scheduled: Timestamp, zone: &TimeZone) -> Job {
    let name = cronjob.metadata.name.as_deref().unwrap_or_default();
    let template = cronjob
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.to_owned(), rfc3339(scheduled, zone));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(name, scheduled)),
            namespace: cronjob.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cronjob)]),
            ..ObjectMeta::default()
        },
        spec: Some(template.spec.unwrap_or_default()),
        status: None,
    }
}

/// The finished Jobs beyond a history limit, oldest first (by start time, then name).
fn beyond_limit(mut finished: Vec<Arc<Job>>, limit: i32) -> Vec<Arc<Job>> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if finished.len() <= limit {
        return Vec::new();
    }
    finished.sort_by_key(|j| {
        (
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0),
            j.metadata.name.clone(),
        )
    });
    let surplus = finished.len() - limit;
    finished.truncate(surplus);
    finished
}

impl CronJobController {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        cronjobs: &Informer<CronJob>,
        jobs: &Informer<Job>,
        clock: Clock,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let controller = Arc::new(CronJobController {
            clock,
            recorder: Recorder::new(client.clone(), "cronjob-controller"),
            client,
            cronjobs: cronjobs.store(),
            jobs: jobs.store(),
            queue: Queue::new(shutdown),
        });
        let c = Arc::clone(&controller);
        cronjobs.on_change(move |change| match change {
            Change::Applied(cronjob) | Change::Deleted(cronjob) => c.queue.add(key_of(cronjob)),
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        jobs.on_change(move |change| match change {
            Change::Applied(job) | Change::Deleted(job) => {
                if let Some(owner) = controller_of(job).filter(|r| r.kind == "CronJob") {
                    let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
                    c.queue.add(key(namespace, &owner.name));
                }
            }
            Change::Resynced => c.enqueue_all(),
        });
        controller
    }

    fn enqueue_all(&self) {
        for cronjob in self.cronjobs.state() {
            self.queue.add(key_of(cronjob.as_ref()));
        }
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, "cronjob", move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(cronjob) = self.cronjobs.get(&ObjectRef::new(name).within(namespace)) else {
            return Ok(None);
        };
        let uid = cronjob.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<Job>> = self
            .jobs
            .state()
            .into_iter()
            .filter(|j| {
                j.metadata.namespace.as_deref() == Some(namespace)
                    && controller_of(j.as_ref()).is_some_and(|r| r.uid == uid)
            })
            .collect();
        let mut status = cronjob.status.clone().unwrap_or_default();
        self.reconcile_active(&cronjob, &owned, &mut status).await?;
        let result = self.schedule(&cronjob, &owned, &mut status).await;
        self.write_status(&cronjob, &status).await?;
        self.clean_up_history(&cronjob, &owned).await;
        result
    }

    /// Brings `status.active` in line with the Jobs: finished ones leave it (completed ones
    /// set `lastSuccessfulTime`), deleted ones leave it, and running ones it lacks are
    /// reported as `UnexpectedJob` unless the API's fresher copy lists them.
    async fn reconcile_active(
        &self,
        cronjob: &CronJob,
        owned: &[Arc<Job>],
        status: &mut CronJobStatus,
    ) -> Result<()> {
        let mut active = status.active.take().unwrap_or_default();
        let mut fresh_active: Option<Vec<ObjectReference>> = None;
        for job in owned {
            let listed = active.iter().any(|r| r.uid == job.metadata.uid);
            let name = job.metadata.name.as_deref().unwrap_or_default();
            match job_condition(job) {
                None if !listed && !is_deleting(job.as_ref()) => {
                    // Our cache may lag behind our own status write: ask the API. A Job
                    // the controller did not start (`kubectl create job --from`) is
                    // reported and not adopted, as upstream does.
                    if fresh_active.is_none() {
                        fresh_active = Some(self.fresh_active(cronjob).await?);
                    }
                    let fresh = fresh_active.as_deref().unwrap_or_default();
                    if let Some(reference) = fresh.iter().find(|r| r.uid == job.metadata.uid) {
                        active.push(reference.clone());
                    } else {
                        self.recorder
                            .record(
                                cronjob,
                                WARNING,
                                "UnexpectedJob",
                                &format!(
                                    "Saw a job that the controller did not create or forgot: {name}"
                                ),
                            )
                            .await;
                    }
                }
                Some(condition) => {
                    if listed {
                        active.retain(|r| r.uid != job.metadata.uid);
                        self.recorder
                            .record(
                                cronjob,
                                NORMAL,
                                "SawCompletedJob",
                                &format!("Saw completed job: {name}, condition: {condition}"),
                            )
                            .await;
                    }
                    // A finished Job counts for lastSuccessfulTime whether listed or not.
                    if condition == "Complete" {
                        let completed = job.status.as_ref().and_then(|s| s.completion_time.clone());
                        if completed.as_ref().map(|t| t.0)
                            > status.last_successful_time.as_ref().map(|t| t.0)
                        {
                            status.last_successful_time = completed;
                        }
                    }
                }
                None => {}
            }
        }
        // Listed Jobs the cache does not have: confirm with the API before dropping them
        // (the cache may not have seen a Job this controller just created).
        let namespace = cronjob.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let mut kept = Vec::new();
        for reference in active {
            if owned.iter().any(|j| j.metadata.uid == reference.uid) {
                kept.push(reference);
                continue;
            }
            let name = reference.name.clone().unwrap_or_default();
            match api.get_opt(&name).await.context("reading an active job")? {
                Some(job) if job.metadata.uid == reference.uid && !is_finished(&job) => {
                    kept.push(reference)
                }
                _ => {
                    self.recorder
                        .record(
                            cronjob,
                            NORMAL,
                            "MissingJob",
                            &format!("Active job went missing: {name}"),
                        )
                        .await;
                }
            }
        }
        status.active = Some(kept);
        Ok(())
    }

    /// `status.active` of the CronJob as the API has it now.
    async fn fresh_active(&self, cronjob: &CronJob) -> Result<Vec<ObjectReference>> {
        let api: Api<CronJob> = Api::namespaced(
            self.client.clone(),
            cronjob.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let fresh = api
            .get_opt(cronjob.metadata.name.as_deref().unwrap_or_default())
            .await
            .context("reading the cronjob")?;
        Ok(fresh
            .and_then(|c| c.status)
            .and_then(|s| s.active)
            .unwrap_or_default())
    }

    /// Starts the Job that is due, if any, and returns when to look again.
    async fn schedule(
        &self,
        cronjob: &CronJob,
        owned: &[Arc<Job>],
        status: &mut CronJobStatus,
    ) -> Result<Option<Duration>> {
        if is_deleting(cronjob) {
            return Ok(None);
        }
        let spec = cronjob.spec.clone().unwrap_or_default();
        let zone = match spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(name) => match TimeZone::get(name) {
                Ok(zone) => zone,
                Err(error) => {
                    self.recorder
                        .record(
                            cronjob,
                            WARNING,
                            "UnknownTimeZone",
                            &format!("invalid timeZone: {name:?}: {error}"),
                        )
                        .await;
                    return Ok(None);
                }
            },
        };
        let schedule = match Schedule::parse(&spec.schedule) {
            Ok(schedule) => schedule,
            Err(error) => {
                self.recorder
                    .record(
                        cronjob,
                        WARNING,
                        "UnparseableSchedule",
                        &format!("unparseable schedule: {:?} : {error}", spec.schedule),
                    )
                    .await;
                return Ok(None);
            }
        };
        if spec.suspend == Some(true) {
            return Ok(None);
        }
        let now = self.clock.now();
        let wake = |after: Timestamp| {
            schedule.next(after, &zone).map(|next| {
                let left = next.duration_since(self.clock.now());
                self.clock
                    .real(Duration::try_from(left).unwrap_or(Duration::ZERO))
                    + WAKE_SLACK
            })
        };
        let earliest = status
            .last_schedule_time
            .as_ref()
            .or(cronjob.metadata.creation_timestamp.as_ref())
            .map_or(now, |t| t.0);
        let Some(due) =
            schedule.most_recent_due(earliest, now, spec.starting_deadline_seconds, &zone)
        else {
            return Ok(wake(now));
        };
        if due.missed > TOO_MANY_MISSED {
            self.recorder
                .record(
                    cronjob,
                    WARNING,
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                )
                .await;
        }
        if let Some(deadline) = spec.starting_deadline_seconds
            && due.time.as_second() + deadline < now.as_second()
        {
            self.recorder
                .record(
                    cronjob,
                    WARNING,
                    "MissSchedule",
                    &format!(
                        "Missed scheduled time to start a job: {}",
                        rfc3339(due.time, &zone)
                    ),
                )
                .await;
            return Ok(wake(now));
        }
        let cronjob_name = cronjob.metadata.name.as_deref().unwrap_or_default();
        let name = job_name(cronjob_name, due.time);
        let active = status.active.clone().unwrap_or_default();
        if active
            .iter()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
            || owned
                .iter()
                .any(|j| j.metadata.name.as_deref() == Some(name.as_str()))
        {
            return Ok(wake(now));
        }
        let namespace = cronjob.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if !active.is_empty() => {
                self.recorder
                    .record(
                        cronjob,
                        NORMAL,
                        "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid",
                    )
                    .await;
                return Ok(wake(now));
            }
            Some("Replace") => {
                for reference in &active {
                    let old = reference.name.clone().unwrap_or_default();
                    let params = DeleteParams {
                        propagation_policy: Some(PropagationPolicy::Background),
                        ..DeleteParams::default()
                    };
                    match api.delete(&old, &params).await {
                        Ok(_) => {}
                        Err(error) if is_not_found(&error) => {}
                        Err(error) => return Err(error).context("replacing an active job"),
                    }
                    self.recorder
                        .record(
                            cronjob,
                            NORMAL,
                            "SuccessfulDelete",
                            &format!("Deleted job {old}"),
                        )
                        .await;
                }
                status.active = Some(Vec::new());
            }
            _ => {}
        }
        let job = job_for(cronjob, due.time, &zone);
        match api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.recorder
                    .record(
                        cronjob,
                        NORMAL,
                        "SuccessfulCreate",
                        &format!("Created job {name}"),
                    )
                    .await;
                status
                    .active
                    .get_or_insert_with(Vec::new)
                    .push(reference(&created));
                status.last_schedule_time = Some(Time(due.time));
            }
            Err(kube::Error::Api(response)) if response.code == 409 => {
                // Started already (by an earlier sync whose status write was lost).
                status.last_schedule_time = Some(Time(due.time));
            }
            Err(error) => {
                self.recorder
                    .record(
                        cronjob,
                        WARNING,
                        "FailedCreate",
                        &format!("Error creating job: {error}"),
                    )
                    .await;
                return Err(error).context("creating the job");
            }
        }
        Ok(wake(now))
    }

    async fn write_status(&self, cronjob: &CronJob, status: &CronJobStatus) -> Result<()> {
        let current = cronjob.status.clone().unwrap_or_default();
        let active = status.active.as_ref().filter(|a| !a.is_empty());
        if current.active.as_ref().filter(|a| !a.is_empty()) == active
            && current.last_schedule_time == status.last_schedule_time
            && current.last_successful_time == status.last_successful_time
        {
            return Ok(());
        }
        let api: Api<CronJob> = Api::namespaced(
            self.client.clone(),
            cronjob.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let patch = json!({
            "metadata": {"resourceVersion": cronjob.metadata.resource_version},
            "status": {
                "active": active,
                "lastScheduleTime": status.last_schedule_time,
                "lastSuccessfulTime": status.last_successful_time,
            },
        });
        api.patch_status(
            cronjob.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .context("updating cronjob status")?;
        Ok(())
    }

    /// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` and
    /// `failedJobsHistoryLimit` (best effort: the next sync tries again).
    async fn clean_up_history(&self, cronjob: &CronJob, owned: &[Arc<Job>]) {
        let spec = cronjob.spec.clone().unwrap_or_default();
        let live = owned.iter().filter(|j| !is_deleting(j.as_ref()));
        let (succeeded, failed): (Vec<Arc<Job>>, Vec<Arc<Job>>) = live
            .filter(|j| job_condition(j).is_some())
            .cloned()
            .partition(|j| job_condition(j) == Some("Complete"));
        let mut doomed = beyond_limit(succeeded, spec.successful_jobs_history_limit.unwrap_or(3));
        doomed.extend(beyond_limit(
            failed,
            spec.failed_jobs_history_limit.unwrap_or(1),
        ));
        let namespace = cronjob.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        for job in doomed {
            let name = job.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &params).await {
                Ok(_) => {
                    self.recorder
                        .record(
                            cronjob,
                            NORMAL,
                            "SuccessfulDelete",
                            &format!("Deleted job {name}"),
                        )
                        .await;
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => tracing::info!(%name, %error, "deleting an old job"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_timestamps_are_rfc3339_in_the_zone() {
        let time: Timestamp = "2026-01-01T10:01:00Z".parse().unwrap();
        assert_eq!(rfc3339(time, &TimeZone::UTC), "2026-01-01T10:01:00Z");
        let paris = TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(rfc3339(time, &paris), "2026-01-01T11:01:00+01:00");
    }

    fn finished(name: &str, start: i64) -> Arc<Job> {
        let mut job = Job::default();
        job.metadata.name = Some(name.into());
        job.status = Some(k8s_openapi::api::batch::v1::JobStatus {
            start_time: Some(Time(Timestamp::from_second(start).unwrap())),
            ..Default::default()
        });
        Arc::new(job)
    }

    #[test]
    fn the_oldest_jobs_beyond_the_limit_go() {
        let jobs = vec![finished("c", 30), finished("a", 10), finished("b", 20)];
        let names: Vec<_> = beyond_limit(jobs.clone(), 1)
            .iter()
            .map(|j| j.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(beyond_limit(jobs.clone(), 3).is_empty());
        assert_eq!(beyond_limit(jobs, 0).len(), 3);
    }
}

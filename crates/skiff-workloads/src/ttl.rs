//! The TTL-after-finished controller, after upstream's `pkg/controller/ttlafterfinished`:
//! a finished Job (`Complete` or `Failed`) with `spec.ttlSecondsAfterFinished` is deleted
//! that many seconds after it finished, with foreground propagation so the garbage collector
//! removes its pods first. It wakes at each Job's expiry rather than polling.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::job::is_finished;
use crate::queue::Queue;
use crate::replicaset::is_not_found;
use crate::util::{is_deleting, key_of, split_key};

/// The TTL-after-finished controller.
pub struct TtlController {
    client: Client,
    jobs: Store<Job>,
    queue: Arc<Queue>,
}

/// When a finished Job finished: `completionTime`, else its `Complete`/`Failed` condition's
/// transition time.
fn finish_time(job: &Job) -> Option<Timestamp> {
    let status = job.status.as_ref()?;
    status.completion_time.as_ref().map(|t| t.0).or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
    })
}

/// How long until `job` expires at `now` (zero if it has), or `None` if it never does.
pub fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    if !is_finished(job) || is_deleting(job) {
        return None;
    }
    let finished = finish_time(job)?;
    let left = finished.as_second() + i64::from(ttl) - now.as_second();
    Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}

impl TtlController {
    /// Builds the controller over the Job informer, registering its handler.
    pub(crate) fn new(
        client: Client,
        jobs: &Informer<Job>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let controller = Arc::new(TtlController {
            client,
            jobs: jobs.store(),
            queue: Queue::new(shutdown),
        });
        let c = Arc::clone(&controller);
        jobs.on_change(move |change| match change {
            Change::Applied(job)
                if job
                    .spec
                    .as_ref()
                    .and_then(|s| s.ttl_seconds_after_finished)
                    .is_some() =>
            {
                c.queue.add(key_of(job));
            }
            Change::Resynced => {
                for job in c.jobs.state() {
                    c.queue.add(key_of(job.as_ref()));
                }
            }
            _ => {}
        });
        controller
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, "ttl", move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(job) = self.jobs.get(&ObjectRef::new(name).within(namespace)) else {
            return Ok(None);
        };
        match time_left(&job, Timestamp::now()) {
            None => return Ok(None),
            Some(left) if !left.is_zero() => return Ok(Some(left + Duration::from_millis(100))),
            Some(_) => {}
        }
        // The cache may be stale: decide again on a fresh read, as upstream does.
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let Some(fresh) = api.get_opt(name).await.context("reading the job")? else {
            return Ok(None);
        };
        match time_left(&fresh, Timestamp::now()) {
            None => return Ok(None),
            Some(left) if !left.is_zero() => return Ok(Some(left + Duration::from_millis(100))),
            Some(_) => {}
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: fresh.metadata.uid.clone(),
                resource_version: fresh.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        tracing::info!(%key, "deleting a finished job whose TTL expired");
        match api.delete(name, &params).await {
            Ok(_) => Ok(None),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error).context("deleting the expired job"),
        }
    }
}

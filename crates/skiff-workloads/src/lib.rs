//! Workload controllers for skiff: Deployment, ReplicaSet, ReplicationController, DaemonSet,
//! StatefulSet, Job (with the TTL-after-finished controller) and CronJob, as pure API clients
//! (kube-rs watches and writes; no store access).
//!
//! Each controller follows upstream's (`pkg/controller/deployment`, `pkg/controller/replicaset`)
//! semantics closely enough that `kubectl rollout status|history|undo|restart|pause|resume`
//! work unchanged. The pieces:
//! - [`informer`]: a watch into a local store with change handlers, and [`Informers`], the
//!   factory that gives every controller of the process the same informer per kind;
//! - [`queue`]: a deduplicating work queue with per-key backoff;
//! - [`expectations`]: pod creations and deletions not yet seen by the cache;
//! - [`replicaset`]: ReplicaSet and ReplicationController (one generic controller);
//! - [`deployment`] and [`rollout`]: the Deployment controller and its pure arithmetic;
//! - [`daemonset`], [`statefulset`] (run together by [`apps`]), their ControllerRevisions
//!   ([`history`]) and ownership of dependents ([`claim`]);
//! - [`job`] (with [`indexes`] and [`failure_policy`]) and [`ttl`]: the Job and
//!   TTL-after-finished controllers;
//! - [`cronjob`] and [`schedule`]: the CronJob controller and its pure schedule arithmetic;
//! - [`events`]: a small core/v1 Event recorder.
//!
//! Start at [`run`], which runs all the controllers over shared informers.

pub mod apps;
pub mod claim;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod events;
pub mod expectations;
pub mod failure_policy;
pub mod history;
pub mod indexes;
pub mod informer;
pub mod job;
pub mod queue;
pub mod replicaset;
pub mod rollout;
pub mod schedule;
pub mod statefulset;
pub mod ttl;
pub mod util;

use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Resource;
use kube::runtime::reflector::Store;
use tokio_util::sync::CancellationToken;

pub use cronjob::Clock;
pub use informer::Informers;

use crate::cronjob::CronJobController;
use crate::deployment::DeploymentController;
use crate::job::JobController;
use crate::replicaset::ReplicaController;
use crate::ttl::TtlController;

/// Workers per controller.
pub(crate) const WORKERS: usize = 4;

/// Runs the Deployment, ReplicaSet, ReplicationController, DaemonSet, StatefulSet, Job,
/// TTL-after-finished and CronJob controllers until `shutdown`, sharing one watch per kind.
pub async fn run(informers: Informers, shutdown: CancellationToken) -> Result<()> {
    run_with_clock(informers, shutdown, Clock::system()).await
}

/// [`run`] with the CronJob controller on `clock` (tests run it faster than real time).
pub async fn run_with_clock(
    informers: Informers,
    shutdown: CancellationToken,
    clock: Clock,
) -> Result<()> {
    let client = informers.client().clone();
    let deployments = informers.all::<Deployment>();
    let replicasets = informers.all::<ReplicaSet>();
    let rcs = informers.all::<ReplicationController>();
    let pods = informers.all::<Pod>();
    let jobs = informers.all::<Job>();
    let cronjobs = informers.all::<CronJob>();

    let deployment = DeploymentController::new(
        client.clone(),
        &deployments,
        &replicasets,
        &pods,
        shutdown.clone(),
    );
    let replicaset = ReplicaController::new(client.clone(), &replicasets, &pods, shutdown.clone());
    let apps = apps::AppsControllers::new(&informers, &pods, shutdown.clone());
    let rc = ReplicaController::new(client.clone(), &rcs, &pods, shutdown.clone());
    let job = JobController::new(client.clone(), &jobs, &pods, shutdown.clone());
    let ttl = TtlController::new(client.clone(), &jobs, shutdown.clone());
    let cronjob = CronJobController::new(client, &cronjobs, &jobs, clock, shutdown.clone());

    let stores = (
        deployments.store(),
        replicasets.store(),
        rcs.store(),
        pods.store(),
        jobs.store(),
        cronjobs.store(),
    );
    wait_ready(&stores.0, &shutdown).await;
    wait_ready(&stores.1, &shutdown).await;
    wait_ready(&stores.2, &shutdown).await;
    wait_ready(&stores.3, &shutdown).await;
    wait_ready(&stores.4, &shutdown).await;
    wait_ready(&stores.5, &shutdown).await;
    tracing::info!("workload controllers started");
    tokio::join!(
        deployment.run(WORKERS),
        replicaset.run(WORKERS),
        rc.run(WORKERS),
        job.run(WORKERS),
        ttl.run(1),
        cronjob.run(WORKERS),
        apps.run(),
    );
    Ok(())
}

/// Waits until a store has its first full list (or shutdown), saying so every 10 s while it
/// has not: a controller that never starts is otherwise silent.
///
/// Looks again every 100 ms rather than waiting on one `wait_until_ready`: kube-runtime's
/// readiness signal keeps a single waker, so of several controllers waiting on one shared
/// store only the last would ever be woken (the others hung for good).
pub async fn wait_ready<K>(store: &Store<K>, shutdown: &CancellationToken)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(100);
    let started = std::time::Instant::now();
    let mut warned = 0;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            ready = tokio::time::timeout(LOOK_AGAIN, store.wait_until_ready()) => {
                if ready.is_ok() {
                    return;
                }
            }
        }
        let waited = started.elapsed().as_secs();
        if waited / 10 > warned {
            warned = waited / 10;
            tracing::warn!(kind = %K::kind(&()), waited_s = waited, "still waiting for the first list");
        }
    }
}

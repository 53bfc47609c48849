//! The core of skiff's controller manager, as a pure API client (kube-rs over the same API
//! every other client uses; nothing here reaches the store or the API server's internals):
//!
//! - [`namespace`]: namespace lifecycle. A namespace marked for deletion is emptied (every
//!   namespaced resource discovery reports), its `status.conditions` say how that goes, and
//!   once nothing is left the `kubernetes` finalizer is removed through the `finalize`
//!   subresource so the API server deletes it.
//! - [`serviceaccounts`]: the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap in
//!   every active namespace, recreated when deleted.
//! - [`gc`]: the garbage collector: a graph of owners and dependents (`ownerReferences`) built
//!   from watches of every deletable resource, with background, foreground
//!   (`foregroundDeletion`, `blockOwnerDeletion`) and orphan (`orphan`) propagation.
//! - [`nodelifecycle`]: nodes whose kubelet went silent become `Unknown` and tainted
//!   `unreachable`, their pods not Ready; with [`tainteviction`], pods that do not tolerate a
//!   node's `NoExecute` taints (or stop tolerating them after `tolerationSeconds`) are deleted.
//! - [`endpoints`] and [`endpointslice`]: the Endpoints and EndpointSlices of every Service
//!   with a selector, from its pods' addresses, readiness and ports.
//! - [`disruption`]: PodDisruptionBudget status (healthy pods, allowed disruptions).
//! - [`resourcequota`]: ResourceQuota status (`hard`, and `used` recounted from the objects,
//!   which gives back what the API server charged for objects since deleted).
//! - [`podautoscaler`]: HorizontalPodAutoscalers (`autoscaling/v2`): the target's replicas
//!   through its `scale` subresource, kept within the HPA's bounds and driven by its metrics.
//!
//! Start at [`run`], which runs them all over one `Informers` factory (shared with the
//! workload controllers) until `shutdown`; each also runs alone, given a factory. Events go
//! through skiff-workloads' recorder, like its informers and queue.

pub mod discovery;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod gc;
pub mod namespace;
pub mod nodelifecycle;
pub mod podautoscaler;
pub mod resourcequota;
pub mod serviceaccounts;
pub mod tainteviction;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use skiff_workloads::Informers;
use skiff_workloads::queue::Queue;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the controllers need to know about the cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// The cluster CA certificate (PEM), published as `ca.crt` of the `kube-root-ca.crt`
    /// ConfigMap in every namespace.
    pub root_ca_pem: String,
    /// How old the discovered list of resources may get before the namespace controller and
    /// the garbage collector ask again (custom resources come and go).
    pub discovery_interval: Duration,
    /// How often the garbage collector re-examines every object whose owners it has not seen
    /// (a safety net; changes are acted on as they are watched).
    pub gc_resync_interval: Duration,
    /// Concurrent garbage collector workers.
    pub gc_workers: usize,
    /// How long a node may go without a Lease renewal or status heartbeat before it is
    /// marked `Unknown` and tainted `unreachable` (kube-controller-manager's
    /// `--node-monitor-grace-period`, 40 s).
    pub node_monitor_grace_period: Duration,
    /// The same for a node that never posted a Ready condition (`--node-startup-grace-period`).
    pub node_startup_grace_period: Duration,
    /// How often nodes are examined (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// How often every PodDisruptionBudget is recomputed even without a change (a safety net
    /// for scale changes of controllers the disruption controller does not watch).
    pub disruption_resync_interval: Duration,
    /// How often every ResourceQuota is recounted even without a watched change (it catches
    /// `count/...` resources that are not watched; kube's `--resource-quota-sync-period`).
    pub quota_resync_interval: Duration,
    /// How often every HorizontalPodAutoscaler is looked at again
    /// (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub hpa_sync_period: Duration,
}

impl Config {
    /// The defaults, with the given cluster CA.
    pub fn new(root_ca_pem: impl Into<String>) -> Config {
        Config {
            root_ca_pem: root_ca_pem.into(),
            discovery_interval: Duration::from_secs(30),
            gc_resync_interval: Duration::from_secs(300),
            gc_workers: 4,
            node_monitor_grace_period: Duration::from_secs(40),
            node_startup_grace_period: Duration::from_secs(60),
            node_monitor_period: Duration::from_secs(5),
            disruption_resync_interval: Duration::from_secs(30),
            quota_resync_interval: Duration::from_secs(30),
            hpa_sync_period: Duration::from_secs(15),
        }
    }

    /// Sets the node monitor grace period, and a monitor period that notices silence well
    /// within it.
    pub fn with_node_monitor_grace_period(mut self, grace: Duration) -> Config {
        self.node_monitor_grace_period = grace;
        self.node_monitor_period = nodelifecycle::monitor_period_for(grace);
        self
    }
}

/// Runs the namespace, service account, node lifecycle (with taint eviction), endpoints (with
/// endpoint slices), disruption, resourcequota and horizontal pod autoscaler controllers and
/// the garbage collector over the shared `informers` until `shutdown` is cancelled (or one of
/// them fails, which stops the others).
pub async fn run(
    informers: Informers,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stop = shutdown.child_token();
    let mut tasks = JoinSet::new();
    let (i, c, s) = (&informers, &config, &stop);
    spawn(
        &mut tasks,
        "namespace controller",
        namespace::run(i.clone(), c.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "service account controller",
        serviceaccounts::run(i.clone(), c.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "node lifecycle controller",
        nodelifecycle::run(i.clone(), c.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "endpoints controller",
        endpoints::run(i.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "disruption controller",
        disruption::run(i.clone(), c.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "resourcequota controller",
        resourcequota::run(i.clone(), c.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "horizontal pod autoscaler controller",
        podautoscaler::run(i.clone(), c.clone(), s.clone()),
    );
    spawn(
        &mut tasks,
        "garbage collector",
        gc::run(informers, config, stop.clone()),
    );
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = match joined {
            Ok((name, result)) => result.with_context(|| format!("the {name} failed")),
            Err(error) => Err(anyhow::Error::new(error).context("a controller panicked")),
        };
        if let Err(error) = result {
            // One down means all down: whoever runs the manager restarts it as a whole.
            stop.cancel();
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

type Named = (&'static str, anyhow::Result<()>);

fn spawn(
    tasks: &mut JoinSet<Named>,
    name: &'static str,
    controller: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    tasks.spawn(async move { (name, controller.await) });
}

/// A controller driven by a work queue of keys.
pub(crate) trait Reconcile: Send + Sync + 'static {
    /// For logs.
    const NAME: &'static str;
    /// The controller's queue.
    fn queue(&self) -> &Arc<Queue>;
    /// Brings one key in line; `Ok(Some(after))` asks to look again after a while.
    fn sync(&self, key: &str) -> impl Future<Output = anyhow::Result<Option<Duration>>> + Send;
}

/// Processes the controller's keys with `workers` concurrent workers until its queue shuts
/// down; failures are retried with the queue's backoff.
pub(crate) async fn work<C: Reconcile>(controller: Arc<C>, workers: usize) {
    let queue = Arc::clone(controller.queue());
    queue
        .run_workers(workers, C::NAME, move |key| {
            let controller = Arc::clone(&controller);
            async move { controller.sync(&key).await }
        })
        .await;
}

pub(crate) use skiff_workloads::wait_ready;

/// Calls `resync` at once and then every `period` until `shutdown`: a controller's safety net
/// of looking at everything again, for changes its watches do not show.
pub(crate) async fn every(period: Duration, shutdown: &CancellationToken, resync: impl Fn()) {
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => resync(),
        }
    }
}

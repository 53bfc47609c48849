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
//!
//! Start at [`run`], which runs all three until `shutdown`; each also runs alone.

pub mod discovery;
pub mod gc;
pub mod namespace;
pub mod serviceaccounts;

use std::time::Duration;

use anyhow::Context;
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
}

impl Config {
    /// The defaults, with the given cluster CA.
    pub fn new(root_ca_pem: impl Into<String>) -> Config {
        Config {
            root_ca_pem: root_ca_pem.into(),
            discovery_interval: Duration::from_secs(30),
            gc_resync_interval: Duration::from_secs(300),
            gc_workers: 4,
        }
    }
}

/// Runs the namespace controller, the service account controller and the garbage collector
/// until `shutdown` is cancelled (or one of them fails, which stops the others).
pub async fn run(
    client: kube::Client,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    let (c, cfg, s) = (client.clone(), config.clone(), stop.clone());
    tasks.spawn(async move { ("namespace controller", namespace::run(c, cfg, s).await) });
    let (c, cfg, s) = (client.clone(), config.clone(), stop.clone());
    tasks.spawn(async move {
        (
            "service account controller",
            serviceaccounts::run(c, cfg, s).await,
        )
    });
    let s = stop.clone();
    tasks.spawn(async move { ("garbage collector", gc::run(client, config, s).await) });
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

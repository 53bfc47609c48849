//! The resourcequota controller (upstream's `pkg/controller/resourcequota`): every
//! ResourceQuota's `status.hard` (a copy of `spec.hard`) and `status.used`, recomputed from the
//! objects of its namespace.
//!
//! The API server charges each new object to the quotas that apply when it admits it (with
//! compare-and-swap, so the last unit goes to one create); this controller is what gives
//! usage back: a recount after objects are deleted or pods finish, a first count for a new
//! quota (until then the API server admits nothing the quota constrains), and a recount when
//! `spec.hard` changes. What an object uses is skiff-defaults' `quota` arithmetic, the same the
//! API server charges with. Pods, Services, ConfigMaps, Secrets and PersistentVolumeClaims are
//! watched and trigger a recount of their namespace's quotas at once; everything else counted
//! (`count/<resource>.<group>`, ReplicationControllers, ...) is caught by the periodic full
//! resync (`Config::quota_resync_interval`), as upstream's is by its `--resource-quota-sync-period`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ResourceQuota, ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{DynamicObject, ListParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::Value;
use skiff_workloads::informer::{Change, Informers};
use skiff_workloads::queue::Queue;
use skiff_workloads::util::{key_of, split_key};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::discovery::SharedCatalog;

/// Workers of the resourcequota controller (upstream's `--concurrent-resource-quota-syncs`).
const WORKERS: usize = 2;

/// Runs the resourcequota controller until `shutdown`.
pub async fn run(informers: Informers, config: Config, shutdown: CancellationToken) -> Result<()> {
    let client = informers.client().clone();
    let quotas = informers.all::<ResourceQuota>();
    let controller = Arc::new(QuotaController {
        catalog: SharedCatalog::new(client.clone(), config.discovery_interval),
        client: client.clone(),
        quotas: quotas.store(),
        queue: Queue::new(shutdown.clone()),
    });
    let c = Arc::clone(&controller);
    quotas.on_change(move |change| match change {
        Change::Applied(quota) if needs_count(quota) => c.queue.add(key_of(quota)),
        Change::Applied(_) | Change::Deleted(_) => {}
        Change::Resynced => c.enqueue_all(),
    });
    let pods = informers.all::<Pod>();
    pods.on_change(recount_on_change(Arc::clone(&controller)));
    let services = informers.all::<Service>();
    services.on_change(recount_on_change(Arc::clone(&controller)));
    let config_maps = informers.all::<ConfigMap>();
    config_maps.on_change(recount_on_change(Arc::clone(&controller)));
    let secrets = informers.all::<Secret>();
    secrets.on_change(recount_on_change(Arc::clone(&controller)));
    let claims = informers.all::<PersistentVolumeClaim>();
    claims.on_change(recount_on_change(Arc::clone(&controller)));
    crate::wait_ready(&controller.quotas, &shutdown).await;
    tracing::info!("resourcequota controller started");
    let resync = crate::every(config.quota_resync_interval, &shutdown, || {
        controller.enqueue_all()
    });
    tokio::join!(crate::work(Arc::clone(&controller), WORKERS), resync);
    Ok(())
}

/// A quota whose status does not cover its `spec.hard` yet (new, or its hard limits changed).
/// Status writes alone (the API server's charges, this controller's own) need no recount.
fn needs_count(quota: &ResourceQuota) -> bool {
    let hard = quota.spec.as_ref().and_then(|s| s.hard.as_ref());
    let status = quota.status.as_ref();
    let status_hard = status.and_then(|s| s.hard.as_ref());
    let used = status.and_then(|s| s.used.as_ref());
    hard != status_hard
        || hard.is_some_and(|hard| hard.keys().any(|k| used.is_none_or(|u| !u.contains_key(k))))
}

/// A change handler that recounts the quotas of the changed object's namespace.
fn recount_on_change<K>(
    controller: Arc<QuotaController>,
) -> impl Fn(Change<'_, K>) + Send + Sync + 'static
where
    K: Resource,
{
    move |change| match change {
        Change::Applied(object) | Change::Deleted(object) => {
            if let Some(namespace) = object.meta().namespace.as_deref() {
                controller.enqueue_namespace(namespace);
            }
        }
        Change::Resynced => {}
    }
}

/// The resourcequota controller.
struct QuotaController {
    client: Client,
    catalog: SharedCatalog,
    quotas: Store<ResourceQuota>,
    queue: Arc<Queue>,
}

impl crate::Reconcile for QuotaController {
    const NAME: &'static str = "resourcequota";

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        self.sync(key).await.map(|()| None)
    }
}

impl QuotaController {
    fn enqueue_all(&self) {
        for quota in self.quotas.state() {
            self.queue.add(key_of(quota.as_ref()));
        }
    }

    fn enqueue_namespace(&self, namespace: &str) {
        for quota in self.quotas.state() {
            if quota.namespace().as_deref() == Some(namespace) {
                self.queue.add(key_of(quota.as_ref()));
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<()> {
        let (namespace, name) = split_key(key);
        let Some(quota) = self.quotas.get(&ObjectRef::new(name).within(namespace)) else {
            return Ok(());
        };
        if quota.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let quota_json = serde_json::to_value(quota.as_ref()).context("encoding a quota")?;
        let mut objects: Vec<(String, String, Value)> = Vec::new();
        let tracked = skiff_defaults::quota::tracked(&quota_json);
        if !tracked.is_empty() {
            let served = self
                .catalog
                .get()
                .await
                .context("discovering the served resources")?
                .preferred();
            for (group, plural) in tracked {
                // A resource the server does not serve has no objects to count.
                let Some(found) = served
                    .iter()
                    .find(|s| s.resource.group == group && s.resource.plural == plural)
                else {
                    continue;
                };
                let api = Api::<DynamicObject>::namespaced_with(
                    self.client.clone(),
                    namespace,
                    &found.resource,
                );
                let list = api
                    .list(&ListParams::default())
                    .await
                    .with_context(|| format!("listing {plural} in {namespace}"))?;
                for item in list.items {
                    let object = serde_json::to_value(&item).context("encoding an object")?;
                    objects.push((group.clone(), plural.clone(), object));
                }
            }
        }
        let used = skiff_defaults::quota::used(
            &quota_json,
            objects
                .iter()
                .map(|(group, plural, object)| (group.as_str(), plural.as_str(), object)),
        );
        let used: BTreeMap<String, Quantity> = used
            .into_iter()
            .filter_map(|(k, v)| Some((k, Quantity(v.as_str()?.to_owned()))))
            .collect();
        let status = ResourceQuotaStatus {
            hard: quota.spec.as_ref().and_then(|s| s.hard.clone()),
            used: Some(used),
        };
        if quota.status.as_ref() != Some(&status) {
            let mut updated = (*quota).clone();
            updated.status = Some(status);
            // A replace with the version read: a charge the API server made in between makes
            // this a conflict, and the recount starts over instead of losing that charge.
            Api::<ResourceQuota>::namespaced(self.client.clone(), namespace)
                .replace_status(name, &PostParams::default(), &updated)
                .await
                .with_context(|| format!("updating the status of quota {key}"))?;
        }
        Ok(())
    }
}

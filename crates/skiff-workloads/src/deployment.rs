//! The Deployment controller: rolls a Deployment's pod template out through ReplicaSets
//! named `<deployment>-<pod-template-hash>`, following upstream's controller.
//!
//! A sync claims the ReplicaSets the Deployment selects (adopting orphans, releasing
//! non-matching ones), then: deleting → status only; paused or a replica-count change →
//! proportional scaling (no new ReplicaSet); otherwise the strategy (`RollingUpdate` within
//! max surge / max unavailable, or `Recreate`: old ReplicaSets to zero and their pods gone
//! before the new one scales up). The new ReplicaSet gets revision max+1 (a reused old one
//! keeps its former revisions in `revision-history`), the Deployment mirrors it; once the
//! rollout is complete, old ReplicaSets at zero beyond `revisionHistoryLimit` are deleted.
//! Status carries the counts and the `Available`/`Progressing` conditions `kubectl rollout
//! status` reads, including `ProgressDeadlineExceeded` after `progressDeadlineSeconds`
//! without progress.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::events::{self, Recorder};
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::replicaset::is_not_found;
use crate::rollout::{self, reason};
use crate::util::{
    POD_TEMPLATE_HASH_LABEL, controller_of, controller_ref, is_deleting, key, key_of, labels_of,
    pod_template_hash, selector_is_empty, selector_matches, split_key,
    templates_equal_ignoring_hash,
};

/// The Deployment controller.
pub struct DeploymentController {
    client: Client,
    recorder: Recorder,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    queue: Arc<Queue>,
}

impl DeploymentController {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        deployments: &Informer<Deployment>,
        replicasets: &Informer<ReplicaSet>,
        pods: &Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let controller = Arc::new(DeploymentController {
            recorder: Recorder::new(client.clone(), "deployment-controller"),
            client,
            deployments: deployments.store(),
            replicasets: replicasets.store(),
            pods: pods.store(),
            queue: Queue::new(shutdown),
        });
        let c = Arc::clone(&controller);
        deployments.on_change(move |change| match change {
            Change::Applied(d) | Change::Deleted(d) => c.queue.add(key_of(d)),
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        replicasets.on_change(move |change| match change {
            Change::Applied(rs) => c.replica_set_changed(rs, false),
            Change::Deleted(rs) => c.replica_set_changed(rs, true),
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        pods.on_change(move |change| {
            // Recreate waits for the old pods to be gone.
            if let Change::Deleted(pod) = change {
                c.pod_deleted(pod);
            }
        });
        controller
    }

    fn enqueue_all(&self) {
        for d in self.deployments.state() {
            self.queue.add(key_of(d.as_ref()));
        }
    }

    fn replica_set_changed(&self, rs: &ReplicaSet, deleted: bool) {
        let namespace = rs.metadata.namespace.as_deref().unwrap_or_default();
        if let Some(owner) = controller_of(rs) {
            if owner.kind == "Deployment" {
                self.queue.add(key(namespace, &owner.name));
            }
            return;
        }
        if deleted || is_deleting(rs) {
            return;
        }
        let labels = labels_of(rs);
        for d in self.deployments.state() {
            if d.metadata.namespace.as_deref() == Some(namespace)
                && d.spec
                    .as_ref()
                    .is_some_and(|s| selector_matches(&s.selector, &labels))
            {
                self.queue.add(key_of(d.as_ref()));
            }
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(owner) = controller_of(pod).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let Some(rs) = self
            .replicasets
            .get(&ObjectRef::new(&owner.name).within(namespace))
        else {
            return;
        };
        if let Some(d) = controller_of(rs.as_ref()).filter(|r| r.kind == "Deployment") {
            let d_key = key(namespace, &d.name);
            let recreate = self
                .deployments
                .get(&ObjectRef::new(&d.name).within(namespace))
                .is_some_and(|d| !rollout::is_rolling_update(&d));
            if recreate {
                self.queue.add(d_key);
            }
        }
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, "deployment", move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(d) = self
            .deployments
            .get(&ObjectRef::new(name).within(namespace))
        else {
            return Ok(None);
        };
        let mut sync = Sync {
            deployments: Api::namespaced(self.client.clone(), namespace),
            replicasets: Api::namespaced(self.client.clone(), namespace),
            d: (*d).clone(),
            requeue: None,
            recorder: self.recorder.clone(),
        };
        let selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        if selector_is_empty(&selector) {
            tracing::warn!(%key, "deployment has an empty selector; not syncing");
            return Ok(None);
        }
        let rs_list = self.claim_replica_sets(&sync, &selector).await?;
        sync.run(rs_list, &self.pods).await?;
        Ok(sync.requeue)
    }

    /// The ReplicaSets this Deployment controls (adopting matching orphans, releasing its
    /// own that no longer match).
    async fn claim_replica_sets(
        &self,
        sync: &Sync,
        selector: &LabelSelector,
    ) -> Result<Vec<ReplicaSet>> {
        let namespace = sync.d.metadata.namespace.clone();
        let candidates = self
            .replicasets
            .state()
            .into_iter()
            .filter(|rs| rs.metadata.namespace == namespace)
            .collect();
        let claimed = claim(&self.client, &sync.d, selector, candidates, |_| true)
            .await
            .context("claiming replica sets")?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }
}

async fn patch_rs(
    api: &Api<ReplicaSet>,
    name: &str,
    patch: serde_json::Value,
) -> Result<Option<ReplicaSet>> {
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(rs) => Ok(Some(rs)),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// One sync of one Deployment: the Deployment as last written, and clients.
struct Sync {
    deployments: Api<Deployment>,
    replicasets: Api<ReplicaSet>,
    d: Deployment,
    requeue: Option<Duration>,
    recorder: Recorder,
}

fn rs_name(rs: &ReplicaSet) -> &str {
    rs.metadata.name.as_deref().unwrap_or_default()
}

fn with_new(olds: &[ReplicaSet], new: Option<&ReplicaSet>) -> Vec<ReplicaSet> {
    olds.iter().cloned().chain(new.cloned()).collect()
}

impl Sync {
    async fn run(&mut self, rs_list: Vec<ReplicaSet>, pods: &Store<Pod>) -> Result<()> {
        if is_deleting(&self.d) {
            let (new, olds) = self.new_and_old(&rs_list, false).await?;
            return self
                .sync_status(&with_new(&olds, new.as_ref()), new.as_ref())
                .await;
        }
        self.check_paused_conditions().await?;
        if rollout::is_paused(&self.d) || self.is_scaling_event(&rs_list).await? {
            return self.sync_scale(&rs_list).await;
        }
        if rollout::is_rolling_update(&self.d) {
            self.rollout_rolling(&rs_list).await
        } else {
            self.rollout_recreate(&rs_list, pods).await
        }
    }

    fn desired(&self) -> i32 {
        rollout::desired(&self.d)
    }

    /// Writes `.status` (the Deployment's current one, with `resourceVersion` as the
    /// precondition) and keeps the result.
    async fn write_status(&mut self) -> Result<()> {
        let name = self.d.metadata.name.clone().unwrap_or_default();
        self.d = self
            .deployments
            .replace_status(&name, &PostParams::default(), &self.d)
            .await
            .context("updating deployment status")?;
        Ok(())
    }

    /// Mirrors a revision onto the Deployment's annotation.
    async fn set_deployment_revision(&mut self, revision: &str) -> Result<()> {
        if self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(rollout::REVISION))
            .is_some_and(|r| r == revision)
        {
            return Ok(());
        }
        let name = self.d.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {
            "resourceVersion": self.d.metadata.resource_version,
            "annotations": {rollout::REVISION: revision},
        }});
        self.d = self
            .deployments
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .context("annotating the deployment's revision")?;
        Ok(())
    }

    async fn check_paused_conditions(&mut self) -> Result<()> {
        if rollout::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let status = self.d.status.clone().unwrap_or_default();
        let current = rollout::get_condition(&status, reason::PROGRESSING)
            .and_then(|c| c.reason.clone())
            .unwrap_or_default();
        if current == reason::TIMED_OUT {
            return Ok(());
        }
        let paused = rollout::is_paused(&self.d);
        let condition = if paused && current != reason::PAUSED {
            rollout::new_condition(
                reason::PROGRESSING,
                "Unknown",
                reason::PAUSED,
                "Deployment is paused".into(),
            )
        } else if !paused && current == reason::PAUSED {
            rollout::new_condition(
                reason::PROGRESSING,
                "Unknown",
                reason::RESUMED,
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        rollout::set_condition(
            self.d.status.get_or_insert_with(Default::default),
            condition,
        );
        self.write_status().await
    }

    /// The new ReplicaSet (created if asked and missing) and all the old ones, with the
    /// revision annotations brought up to date.
    async fn new_and_old(
        &mut self,
        rs_list: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let new_index = rollout::find_new(&self.d, rs_list);
        let olds: Vec<ReplicaSet> = rs_list
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_index)
            .map(|(_, rs)| rs.clone())
            .collect();
        let new_revision = rollout::max_revision(&olds) + 1;
        if let Some(index) = new_index {
            let existing = self
                .update_existing_new(&rs_list[index], new_revision)
                .await?;
            return Ok((Some(existing), olds));
        }
        if !create {
            return Ok((None, olds));
        }
        let created = self.create_new(&olds, new_revision).await?;
        Ok((Some(created), olds))
    }

    async fn update_existing_new(
        &mut self,
        existing: &ReplicaSet,
        new_revision: i64,
    ) -> Result<ReplicaSet> {
        let mut copy = existing.clone();
        let annotations_changed =
            rollout::set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let rs_min_ready = copy.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if annotations_changed || min_ready.unwrap_or(0) != rs_min_ready.unwrap_or(0) {
            let patch = json!({
                "metadata": {
                    "resourceVersion": copy.metadata.resource_version,
                    "annotations": copy.metadata.annotations,
                },
                "spec": {"minReadySeconds": min_ready.unwrap_or(0)},
            });
            return patch_rs(&self.replicasets, rs_name(&copy), patch)
                .await?
                .ok_or_else(|| anyhow!("replica set {} disappeared", rs_name(&copy)));
        }
        let revision = copy
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(rollout::REVISION))
            .cloned()
            .unwrap_or_default();
        self.set_deployment_revision(&revision).await?;
        let status = self.d.status.clone().unwrap_or_default();
        if rollout::progress_deadline(&self.d).is_some()
            && rollout::get_condition(&status, reason::PROGRESSING).is_none()
        {
            let message = format!("Found new replica set \"{}\"", rs_name(&copy));
            let condition =
                rollout::new_condition(reason::PROGRESSING, "True", reason::FOUND_NEW_RS, message);
            rollout::set_condition(
                self.d.status.get_or_insert_with(Default::default),
                condition,
            );
            self.write_status().await?;
        }
        Ok(copy)
    }

    async fn create_new(&mut self, olds: &[ReplicaSet], new_revision: i64) -> Result<ReplicaSet> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        let template_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        let labels = template_meta.labels.get_or_insert_with(Default::default);
        labels.insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
        let labels = labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.to_owned(), hash.clone());
        let name = format!(
            "{}-{hash}",
            self.d.metadata.name.as_deref().unwrap_or_default()
        );
        let mut new = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.metadata.namespace.clone(),
                owner_references: Some(vec![controller_ref(&self.d)]),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let replicas = rollout::new_rs_new_replicas(&self.d, &with_new(olds, Some(&new)), 0);
        if let Some(spec) = new.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        rollout::set_new_rs_annotations(&self.d, &mut new, new_revision, false);
        let (created, already_existed) =
            match self.replicasets.create(&PostParams::default(), &new).await {
                Ok(created) => (created, false),
                Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => {
                    let existing = self.replicasets.get(&name).await?;
                    let ours = controller_of(&existing)
                        .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                    let same = existing
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .is_some_and(|t| templates_equal_ignoring_hash(t, &spec.template));
                    if !(ours && same) {
                        // A hash collision: try the next hash.
                        let status = self.d.status.get_or_insert_with(Default::default);
                        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                        self.write_status().await?;
                        return Err(anyhow!("replica set {name} exists with another template"));
                    }
                    (existing, true)
                }
                Err(error) => {
                    if rollout::progress_deadline(&self.d).is_some() {
                        let condition = rollout::new_condition(
                            reason::PROGRESSING,
                            "False",
                            reason::FAILED_RS_CREATE,
                            format!("Failed to create new replica set \"{name}\": {error}"),
                        );
                        rollout::set_condition(
                            self.d.status.get_or_insert_with(Default::default),
                            condition,
                        );
                        let _ = self.write_status().await;
                    }
                    return Err(error).context("creating the new replica set");
                }
            };
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        if !already_existed && rollout::progress_deadline(&self.d).is_some() {
            let condition = rollout::new_condition(
                reason::PROGRESSING,
                "True",
                reason::NEW_RS_CREATED,
                format!("Created new replica set \"{name}\""),
            );
            rollout::set_condition(
                self.d.status.get_or_insert_with(Default::default),
                condition,
            );
            self.write_status().await?;
        }
        Ok(created)
    }

    /// Whether a ReplicaSet's `desired-replicas` differs from `spec.replicas`.
    async fn is_scaling_event(&mut self, rs_list: &[ReplicaSet]) -> Result<bool> {
        let (new, olds) = self.new_and_old(rs_list, false).await?;
        let desired = self.desired();
        Ok(rollout::active(&with_new(&olds, new.as_ref()))
            .iter()
            .any(|rs| rollout::desired_annotation(rs).is_some_and(|d| d != desired)))
    }

    /// Scales a ReplicaSet if its size differs.
    async fn scale_and_record(&self, rs: &ReplicaSet, replicas: i32) -> Result<(bool, ReplicaSet)> {
        if rollout::rs_replicas(rs) == replicas {
            return Ok((false, rs.clone()));
        }
        self.scale(rs, replicas).await
    }

    /// Sets a ReplicaSet's size and replica annotations (if either differs).
    async fn scale(&self, rs: &ReplicaSet, replicas: i32) -> Result<(bool, ReplicaSet)> {
        let desired = self.desired();
        let max = desired + rollout::max_surge(&self.d);
        let size_changes = rollout::rs_replicas(rs) != replicas;
        if !size_changes && !rollout::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": {
                    rollout::DESIRED_REPLICAS: desired.to_string(),
                    rollout::MAX_REPLICAS: max.to_string(),
                },
            },
            "spec": {"replicas": replicas},
        });
        let updated = patch_rs(&self.replicasets, rs_name(rs), patch)
            .await?
            .ok_or_else(|| anyhow!("replica set {} disappeared", rs_name(rs)))?;
        if size_changes {
            let from = rollout::rs_replicas(rs);
            let direction = if replicas > from { "up" } else { "down" };
            let message = format!(
                "Scaled {direction} replica set {} from {from} to {replicas}",
                rs_name(rs)
            );
            self.recorder
                .record(&self.d, events::NORMAL, "ScalingReplicaSet", &message)
                .await;
        }
        Ok((size_changes, updated))
    }

    /// Scaling without rolling (paused, or `spec.replicas` changed): the one active
    /// ReplicaSet takes the new size, or the change is spread proportionally.
    async fn sync_scale(&mut self, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new, mut olds) = self.new_and_old(rs_list, false).await?;
        self.scale_proportionally(new.as_ref(), &mut olds).await?;
        if rollout::is_paused(&self.d) {
            self.cleanup(&olds).await?;
        }
        self.sync_status(&with_new(&olds, new.as_ref()), new.as_ref())
            .await
    }

    async fn scale_proportionally(
        &mut self,
        new: Option<&ReplicaSet>,
        olds: &mut [ReplicaSet],
    ) -> Result<()> {
        let desired = self.desired();
        if let Some(target) = rollout::find_active_or_latest(new, olds) {
            if rollout::rs_replicas(target) != desired {
                let target = target.clone();
                self.scale_and_record(&target, desired).await?;
            }
            return Ok(());
        }
        if rollout::is_saturated(&self.d, new) {
            for old in rollout::active(olds) {
                self.scale_and_record(&old, 0).await?;
            }
            return Ok(());
        }
        if !rollout::is_rolling_update(&self.d) {
            return Ok(());
        }
        let mut all = rollout::active(&with_new(olds, new));
        let allowed = if desired > 0 {
            desired + rollout::max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - rollout::total_replicas(&all);
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if to_add > 0 {
            // Larger first; among equals, newer first.
            all.sort_by(|a, b| {
                (
                    std::cmp::Reverse(rollout::rs_replicas(a)),
                    std::cmp::Reverse(created(a)),
                )
                    .cmp(&(
                        std::cmp::Reverse(rollout::rs_replicas(b)),
                        std::cmp::Reverse(created(b)),
                    ))
            });
        } else if to_add < 0 {
            // Larger first; among equals, older first.
            all.sort_by(|a, b| {
                (std::cmp::Reverse(rollout::rs_replicas(a)), created(a))
                    .cmp(&(std::cmp::Reverse(rollout::rs_replicas(b)), created(b)))
            });
        }
        let mut added = 0;
        let mut sizes: HashMap<String, i32> = HashMap::new();
        for rs in &all {
            let proportion = if to_add != 0 {
                rollout::replica_set_proportion(&self.d, rs, to_add, added)
            } else {
                0
            };
            sizes.insert(
                rs_name(rs).to_owned(),
                rollout::rs_replicas(rs) + proportion,
            );
            added += proportion;
        }
        for (i, rs) in all.iter().enumerate() {
            let mut size = sizes[rs_name(rs)];
            if i == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale(rs, size).await?;
        }
        Ok(())
    }

    async fn rollout_rolling(&mut self, rs_list: &[ReplicaSet]) -> Result<()> {
        let (new, olds) = self.new_and_old(rs_list, true).await?;
        let new = new.context("no new replica set")?;
        let all = with_new(&olds, Some(&new));
        // Scale up, if we can.
        let desired = self.desired();
        let new_replicas = rollout::rs_replicas(&new);
        if new_replicas != desired {
            let target = if new_replicas > desired {
                desired
            } else {
                rollout::new_rs_new_replicas(&self.d, &all, new_replicas)
            };
            let (scaled, _) = self.scale_and_record(&new, target).await?;
            if scaled {
                return self.sync_rollout_status(&all, Some(&new)).await;
            }
        }
        // Scale down, if we can.
        if self
            .reconcile_olds(&all, &rollout::active(&olds), &new)
            .await?
        {
            return self.sync_rollout_status(&all, Some(&new)).await;
        }
        let status = rollout::normalized(self.d.status.as_ref());
        if rollout::deployment_complete(&self.d, &status) {
            self.cleanup(&olds).await?;
        }
        self.sync_rollout_status(&all, Some(&new)).await
    }

    /// Scales old ReplicaSets down as far as max unavailable allows: unhealthy replicas
    /// first, then available ones, oldest ReplicaSets first.
    async fn reconcile_olds(
        &self,
        all: &[ReplicaSet],
        olds: &[ReplicaSet],
        new: &ReplicaSet,
    ) -> Result<bool> {
        if rollout::total_replicas(olds) == 0 {
            return Ok(false);
        }
        let min_available = self.desired() - rollout::max_unavailable(&self.d);
        let new_unavailable = rollout::rs_replicas(new) - rollout::rs_available(new);
        let max_scaled_down = rollout::total_replicas(all) - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy replicas first: they would otherwise block the rollout.
        let mut olds = olds.to_vec();
        rollout::sort_by_creation(&mut olds);
        let mut cleaned = 0;
        for rs in &mut olds {
            if cleaned >= max_scaled_down {
                break;
            }
            let replicas = rollout::rs_replicas(rs);
            let unhealthy = replicas - rollout::rs_available(rs);
            if replicas == 0 || unhealthy <= 0 {
                continue;
            }
            let count = (max_scaled_down - cleaned).min(unhealthy);
            let (_, updated) = self.scale_and_record(rs, replicas - count).await?;
            *rs = updated;
            cleaned += count;
        }
        // Then available ones, keeping min available.
        let all = with_new(&olds, Some(new));
        let available = rollout::total_available(&all);
        let mut scaled_down = 0;
        if available > min_available {
            let to_scale_down = available - min_available;
            for rs in &olds {
                if scaled_down >= to_scale_down {
                    break;
                }
                let replicas = rollout::rs_replicas(rs);
                if replicas == 0 {
                    continue;
                }
                let count = replicas.min(to_scale_down - scaled_down);
                self.scale_and_record(rs, replicas - count).await?;
                scaled_down += count;
            }
        }
        Ok(cleaned + scaled_down > 0)
    }

    async fn rollout_recreate(&mut self, rs_list: &[ReplicaSet], pods: &Store<Pod>) -> Result<()> {
        let (mut new, mut olds) = self.new_and_old(rs_list, false).await?;
        let mut all = with_new(&olds, new.as_ref());
        let mut scaled_down = false;
        for old in rollout::active(&olds) {
            scaled_down |= self.scale_and_record(&old, 0).await?.0;
        }
        if scaled_down {
            return self.sync_rollout_status(&all, new.as_ref()).await;
        }
        if old_pods_running(new.as_ref(), &olds, rs_list, pods) {
            return self.sync_rollout_status(&all, new.as_ref()).await;
        }
        if new.is_none() {
            (new, olds) = self.new_and_old(rs_list, true).await?;
            all = with_new(&olds, new.as_ref());
        }
        if let Some(rs) = &new {
            self.scale_and_record(rs, self.desired()).await?;
        }
        let status = rollout::normalized(self.d.status.as_ref());
        if rollout::deployment_complete(&self.d, &status) {
            self.cleanup(&olds).await?;
        }
        self.sync_rollout_status(&all, new.as_ref()).await
    }

    /// Deletes the oldest old ReplicaSets at zero beyond `revisionHistoryLimit`.
    async fn cleanup(&self, olds: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = olds.iter().filter(|rs| !is_deleting(*rs)).collect();
        let excess = i32::try_from(cleanable.len()).unwrap_or(i32::MAX) - limit;
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by_key(|rs| {
            (
                rollout::revision(rs.metadata.annotations.as_ref()),
                rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        for rs in cleanable
            .into_iter()
            .take(usize::try_from(excess).unwrap_or(0))
        {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0
                || rollout::rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0)
            {
                continue;
            }
            tracing::info!(replicaset = rs_name(rs), "deleting old replica set");
            match self
                .replicasets
                .delete(rs_name(rs), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(error).context("deleting an old replica set"),
            }
        }
        Ok(())
    }

    /// Writes the computed status if it differs (no progress estimation).
    async fn sync_status(&mut self, all: &[ReplicaSet], new: Option<&ReplicaSet>) -> Result<()> {
        let status = rollout::calculate_status(all, new, &self.d);
        if rollout::normalized(Some(&status)) == rollout::normalized(self.d.status.as_ref()) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.write_status().await
    }

    /// Writes the computed status with the `Progressing` condition brought up to date, or
    /// schedules a check of the progress deadline.
    async fn sync_rollout_status(
        &mut self,
        all: &[ReplicaSet],
        new: Option<&ReplicaSet>,
    ) -> Result<()> {
        let mut status = rollout::calculate_status(all, new, &self.d);
        let deadline = rollout::progress_deadline(&self.d);
        if deadline.is_none() {
            rollout::remove_condition(&mut status, reason::PROGRESSING);
        }
        let current_status = self.d.status.clone().unwrap_or_default();
        let current = rollout::get_condition(&current_status, reason::PROGRESSING);
        let complete_before = status.replicas == status.updated_replicas
            && current.is_some_and(|c| c.reason.as_deref() == Some(reason::NEW_RS_AVAILABLE));
        let subject = match new {
            Some(rs) => format!("ReplicaSet \"{}\"", rs_name(rs)),
            None => format!(
                "Deployment \"{}\"",
                self.d.metadata.name.as_deref().unwrap_or_default()
            ),
        };
        if deadline.is_some() && !complete_before {
            if rollout::deployment_complete(&self.d, &status) {
                let condition = rollout::new_condition(
                    reason::PROGRESSING,
                    "True",
                    reason::NEW_RS_AVAILABLE,
                    format!("{subject} has successfully progressed."),
                );
                rollout::set_condition(&mut status, condition);
            } else if rollout::deployment_progressing(&self.d, &status) {
                let mut condition = rollout::new_condition(
                    reason::PROGRESSING,
                    "True",
                    reason::RS_UPDATED,
                    format!("{subject} is progressing."),
                );
                if let Some(current) = current {
                    if current.status == "True" {
                        condition.last_transition_time = current.last_transition_time.clone();
                    }
                    rollout::remove_condition(&mut status, reason::PROGRESSING);
                }
                rollout::set_condition(&mut status, condition);
            } else if rollout::deployment_timed_out(&self.d, &status, Timestamp::now()) {
                let condition = rollout::new_condition(
                    reason::PROGRESSING,
                    "False",
                    reason::TIMED_OUT,
                    format!("{subject} has timed out progressing."),
                );
                rollout::set_condition(&mut status, condition);
            }
        }
        // A ReplicaSet failing to create or delete pods is surfaced on the Deployment.
        let failure = all.iter().chain(new).find_map(|rs| {
            rs.status
                .as_ref()?
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == reason::REPLICA_FAILURE)
                .cloned()
        });
        match failure {
            Some(c) => rollout::set_condition(
                &mut status,
                k8s_openapi::api::apps::v1::DeploymentCondition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_transition_time: c.last_transition_time.clone(),
                    last_update_time: c.last_transition_time,
                },
            ),
            None => rollout::remove_condition(&mut status, reason::REPLICA_FAILURE),
        }
        if rollout::normalized(Some(&status)) == rollout::normalized(self.d.status.as_ref()) {
            self.requeue_if_stuck(&status);
            return Ok(());
        }
        self.d.status = Some(status);
        self.write_status().await
    }

    /// Schedules a sync when the progress deadline would pass without progress.
    fn requeue_if_stuck(&mut self, status: &k8s_openapi::api::apps::v1::DeploymentStatus) {
        let Some(deadline) = rollout::progress_deadline(&self.d) else {
            return;
        };
        let current_status = self.d.status.clone().unwrap_or_default();
        let Some(current) = rollout::get_condition(&current_status, reason::PROGRESSING) else {
            return;
        };
        if rollout::deployment_complete(&self.d, status)
            || current.reason.as_deref() == Some(reason::TIMED_OUT)
        {
            return;
        }
        let last = current
            .last_update_time
            .as_ref()
            .map_or(0, |t| t.0.as_second());
        let remaining = last + i64::from(deadline) - Timestamp::now().as_second();
        let after = u64::try_from(remaining.max(0)).unwrap_or(0) + 1;
        self.requeue = Some(Duration::from_secs(after));
    }
}

/// Whether any old pods are still there: old ReplicaSets report replicas, or pods of the
/// Deployment's ReplicaSets other than the new one have not finished.
fn old_pods_running(
    new: Option<&ReplicaSet>,
    olds: &[ReplicaSet],
    rs_list: &[ReplicaSet],
    pods: &Store<Pod>,
) -> bool {
    if olds
        .iter()
        .any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
    {
        return true;
    }
    let new_uid = new.and_then(|rs| rs.metadata.uid.clone());
    let old_uids: Vec<String> = rs_list
        .iter()
        .filter_map(|rs| rs.metadata.uid.clone())
        .filter(|uid| Some(uid) != new_uid.as_ref())
        .collect();
    pods.state().iter().any(|pod| {
        controller_of(pod.as_ref()).is_some_and(|r| old_uids.contains(&r.uid))
            && !matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
    })
}

//! The DaemonSet controller: one pod per eligible node, following upstream's
//! `pkg/controller/daemon`.
//!
//! A node is eligible when the pod template (with the tolerations upstream adds to every daemon
//! pod) names no other node, its node selector and required node affinity match the node, and
//! it tolerates the node's `NoSchedule`/`NoExecute` taints; a pod already there may stay while
//! only `NoSchedule` taints are untolerated. Pods are created with `generateName: <ds>-`, a
//! required node affinity `matchFields metadata.name In [<node>]` and the current revision's
//! `controller-revision-hash` label, and left to the scheduler. Failed pods are deleted (with
//! per-node backoff) and recreated; surplus pods on a node are deleted oldest-last; unscheduled
//! pods aimed at a node that no longer exists are deleted (scheduled ones are pod GC's, as
//! upstream).
//!
//! Updates follow `updateStrategy`: `RollingUpdate` within `maxUnavailable` (delete old pods,
//! the sync creates new ones) or `maxSurge` (create new pods beside old ones, delete the old
//! ones once the new are available), or `OnDelete`. The template history lives in
//! ControllerRevisions named `<ds>-<hash>` (see [`crate::history`]), trimmed to
//! `revisionHistoryLimit`. Status carries the counts `kubectl rollout status ds` reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde_json::json;
use skiff_scheduler::filter::tolerates;
use skiff_scheduler::selector::node_selector_matches;
use tokio_util::sync::CancellationToken;

use crate::claim::{claim, wake_owners};
use crate::expectations::Expectations;
use crate::history::{self, REVISION_HASH_LABEL};
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::replicaset::is_not_found;
use crate::util::{
    availability_recheck, controller_of, controller_ref, is_deleting, is_pod_available,
    is_pod_ready, key_of, labels_of, pod_template_hash, scaled_value, selector_is_empty, split_key,
};

/// Upstream's cap on pods created or deleted in one sync.
const BURST_REPLICAS: usize = 250;

/// The annotation older API servers kept the template generation in, and the pod label
/// mirroring it (still honoured when present).
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The default `revisionHistoryLimit`.
const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The DaemonSet controller.
pub struct DaemonSetController {
    client: Client,
    daemonsets: Store<DaemonSet>,
    revisions: Store<ControllerRevision>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    queue: Arc<Queue>,
    expectations: Expectations,
    failed_pods: Backoff,
    /// What each node looked like the last time daemon sets were woken for it (labels, taints,
    /// unschedulable), so status heartbeats do not wake every daemon set.
    node_shapes: Mutex<HashMap<String, String>>,
}

impl DaemonSetController {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        daemonsets: &Informer<DaemonSet>,
        revisions: &Informer<ControllerRevision>,
        pods: &Informer<Pod>,
        nodes: &Informer<Node>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let controller = Arc::new(DaemonSetController {
            client,
            daemonsets: daemonsets.store(),
            revisions: revisions.store(),
            pods: pods.store(),
            nodes: nodes.store(),
            queue: Queue::new(shutdown),
            expectations: Expectations::default(),
            failed_pods: Backoff::default(),
            node_shapes: Mutex::default(),
        });
        let c = Arc::clone(&controller);
        daemonsets.on_change(move |change| match change {
            Change::Applied(ds) => c.queue.add(key_of(ds)),
            Change::Deleted(ds) => {
                c.expectations.forget(&key_of(ds));
                c.queue.add(key_of(ds));
            }
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        revisions.on_change(move |change| match change {
            Change::Applied(r) | Change::Deleted(r) => {
                c.dependent_changed(r);
            }
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        pods.on_change(move |change| match change {
            Change::Applied(pod) => c.pod_changed(pod, false),
            Change::Deleted(pod) => c.pod_changed(pod, true),
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        nodes.on_change(move |change| match change {
            Change::Applied(node) => c.node_changed(node, false),
            Change::Deleted(node) => c.node_changed(node, true),
            Change::Resynced => c.enqueue_all(),
        });
        controller
    }

    fn enqueue_all(&self) {
        for ds in self.daemonsets.state() {
            self.queue.add(key_of(ds.as_ref()));
        }
    }

    /// Wakes the DaemonSet of a pod or revision, or those that could adopt it.
    fn dependent_changed<K: Resource>(&self, object: &K) -> Option<Arc<DaemonSet>> {
        wake_owners(
            &self.daemonsets,
            object,
            |owner| owner.spec.as_ref().map(|s| &s.selector),
            |key| self.queue.add(key),
        )
    }

    fn pod_changed(&self, pod: &Pod, deleted: bool) {
        self.expectations
            .observe(&key_of(pod), deleted || is_deleting(pod));
        let Some(ds) = self.dependent_changed(pod) else {
            return;
        };
        if let Some(delay) = availability_recheck(pod, deleted, min_ready_seconds(&ds)) {
            self.queue.add_after(key_of(ds.as_ref()), delay);
        }
    }

    fn node_changed(&self, node: &Node, deleted: bool) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut shapes = self
            .node_shapes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = if deleted {
            shapes.remove(&name).is_some()
        } else {
            let spec = node.spec.clone().unwrap_or_default();
            let shape = json!([node.metadata.labels, spec.taints, spec.unschedulable]).to_string();
            shapes.insert(name, shape.clone()).as_ref() != Some(&shape)
        };
        drop(shapes);
        if changed {
            self.enqueue_all();
        }
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, "DaemonSet", move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(ds) = self.daemonsets.get(&ObjectRef::new(name).within(namespace)) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let selector = ds
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        if selector_is_empty(&selector) {
            tracing::warn!(%key, "daemon set selects all pods; a non-empty selector is required");
            return Ok(None);
        }
        // Its revisions may be going too: status cannot be computed reliably (as upstream).
        if is_deleting(ds.as_ref()) {
            return Ok(None);
        }
        let nodes = self.nodes.state();
        let (current, olds) = self.construct_history(&ds, &selector).await?;
        let hash = history::hash_of(&current).unwrap_or_default().to_owned();
        if !self.expectations.satisfied(key, &self.pods) {
            let pods = self.claim_pods(&ds, &selector).await?;
            self.update_status(&ds, &nodes, &pods, &hash, false).await?;
            return Ok(Some(Duration::from_secs(1)));
        }
        let pods = self.claim_pods(&ds, &selector).await?;
        let mut requeue = self.manage(key, &ds, &nodes, &pods, &hash).await;
        if requeue.is_ok() && is_rolling_update(&ds) && self.expectations.satisfied(key, &self.pods)
        {
            let pods = self.claim_pods(&ds, &selector).await?;
            requeue = self
                .rolling_update(key, &ds, &nodes, &pods, &hash)
                .await
                .map(|()| None::<Duration>)
                .and(requeue);
        }
        if requeue.is_ok() {
            self.cleanup_history(&ds, &olds, &pods).await?;
        }
        let pods = self.claim_pods(&ds, &selector).await?;
        let status = self.update_status(&ds, &nodes, &pods, &hash, true).await;
        let requeue = requeue?;
        let status = status?;
        let min_ready = min_ready_seconds(&ds);
        if min_ready > 0 && status.ready != status.available {
            let after = Duration::from_secs(u64::try_from(min_ready).unwrap_or(0));
            return Ok(Some(requeue.map_or(after, |r| r.min(after))));
        }
        Ok(requeue)
    }

    /// The pods this daemon set controls (adopting and releasing as needed), of any phase.
    async fn claim_pods(&self, ds: &DaemonSet, selector: &LabelSelector) -> Result<Vec<Arc<Pod>>> {
        let namespace = ds.metadata.namespace.as_deref();
        let candidates = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == namespace)
            .collect();
        claim(&self.client, ds, selector, candidates, |_| true)
            .await
            .context("claiming pods")
    }

    /// The current revision (created or renumbered as needed) and the old ones.
    async fn construct_history(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
    ) -> Result<(ControllerRevision, Vec<Arc<ControllerRevision>>)> {
        let namespace = ds.metadata.namespace.clone().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &namespace);
        let candidates = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| r.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .collect();
        let owned = claim(&self.client, ds, selector, candidates, |_| true)
            .await
            .context("claiming controller revisions")?;
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let mut currents = Vec::new();
        let mut olds = Vec::new();
        for mut revision in owned {
            if history::hash_of(&revision).is_none() {
                // The name stands in for a missing hash: no collision can make it ambiguous.
                let name = revision.metadata.name.clone().unwrap_or_default();
                let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: name}}});
                revision = Arc::new(
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .context("labelling a controller revision")?,
                );
            }
            if history::records(&revision, &template) {
                currents.push(revision);
            } else {
                olds.push(revision);
            }
        }
        let next = history::max_revision(&olds) + 1;
        let current = if currents.is_empty() {
            self.snapshot(ds, &api, next).await?
        } else {
            let current = self.dedup_currents(ds, &api, currents).await?;
            if current.revision < next {
                history::renumber(&api, &current, next).await?
            } else {
                current
            }
        };
        Ok((current, olds))
    }

    /// Keeps the newest of several revisions recording the current template, moving pods
    /// labelled with the others onto it.
    async fn dedup_currents(
        &self,
        ds: &DaemonSet,
        api: &Api<ControllerRevision>,
        mut currents: Vec<Arc<ControllerRevision>>,
    ) -> Result<ControllerRevision> {
        currents.sort_by(|a, b| history::by_revision(a, b));
        let keep = currents.pop().context("no current revision")?;
        if currents.is_empty() {
            return Ok((*keep).clone());
        }
        let keep_hash = history::hash_of(&keep).unwrap_or_default().to_owned();
        let dropped: Vec<String> = currents
            .iter()
            .filter_map(|r| history::hash_of(r).map(str::to_owned))
            .collect();
        let namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        for pod in self.pods.state() {
            let owned = controller_of(pod.as_ref())
                .is_some_and(|r| Some(&r.uid) == ds.metadata.uid.as_ref());
            let hash = labels_of(pod.as_ref()).get(REVISION_HASH_LABEL).cloned();
            if owned && hash.is_some_and(|h| dropped.contains(&h)) {
                let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: keep_hash}}});
                pods.patch(
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await
                .context("relabelling a pod")?;
            }
        }
        for duplicate in currents {
            history::delete(api, &duplicate).await?;
        }
        Ok((*keep).clone())
    }

    /// Records the current template as revision `number`, named `<ds>-<hash>`.
    async fn snapshot(
        &self,
        ds: &DaemonSet,
        api: &Api<ControllerRevision>,
        number: i64,
    ) -> Result<ControllerRevision> {
        let template = ds
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = pod_template_hash(&template, collision_count);
        let ds_name = ds.metadata.name.clone().unwrap_or_default();
        let name = history::revision_name(&ds_name, &hash);
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(REVISION_HASH_LABEL.to_owned(), hash);
        let revision = history::new_revision(
            name.clone(),
            ds.metadata.namespace.clone(),
            labels,
            ds.metadata.annotations.clone(),
            controller_ref(ds),
            history::template_patch(&template),
            number,
        );
        match api.create(&PostParams::default(), &revision).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => {
                let existing = api.get(&name).await?;
                if history::records(&existing, &template) {
                    return Ok(existing);
                }
                // A hash collision: the next sync hashes with a bumped collision count.
                let daemonsets: Api<DaemonSet> = Api::namespaced(
                    self.client.clone(),
                    ds.metadata.namespace.as_deref().unwrap_or_default(),
                );
                let fresh = daemonsets.get(&ds_name).await?;
                let fresh_count = fresh.status.as_ref().and_then(|s| s.collision_count);
                if fresh_count == collision_count {
                    let patch =
                        json!({"status": {"collisionCount": collision_count.unwrap_or(0) + 1}});
                    daemonsets
                        .patch_status(&ds_name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                }
                Err(anyhow!(
                    "controller revision {name} exists with another template"
                ))
            }
            Err(error) => Err(error).context("creating a controller revision"),
        }
    }

    /// Deletes the oldest old revisions beyond `revisionHistoryLimit` that no pod still uses.
    async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        olds: &[Arc<ControllerRevision>],
        pods: &[Arc<Pod>],
    ) -> Result<()> {
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(DEFAULT_HISTORY_LIMIT);
        let live: Vec<String> = pods
            .iter()
            .filter_map(|p| labels_of(p.as_ref()).get(REVISION_HASH_LABEL).cloned())
            .collect();
        let doomed = revisions_to_delete(olds, &live, limit);
        if doomed.is_empty() {
            return Ok(());
        }
        let api: Api<ControllerRevision> = Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or_default(),
        );
        for revision in doomed {
            history::delete(&api, revision).await?;
        }
        Ok(())
    }

    /// Creates the pods eligible nodes miss and deletes the ones that should go; returns when
    /// to look again for failed pods held back by their backoff.
    async fn manage(
        &self,
        key: &str,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        pods: &[Arc<Pod>],
        hash: &str,
    ) -> Result<Option<Duration>> {
        let by_node = pods_by_node(pods);
        let surge = allows_surge(ds);
        let generation = template_generation(ds);
        let now = Timestamp::now();
        let mut create = Vec::new();
        let mut delete = Vec::new();
        let mut requeue: Option<Duration> = None;
        for node in nodes {
            let node_name = node.metadata.name.clone().unwrap_or_default();
            let placement = placement(node, ds);
            let on_node = by_node
                .get(&node_name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let actions = node_actions(
                placement,
                on_node,
                surge,
                &|pod| is_pod_updated(pod, hash, generation.as_deref()),
                min_ready_seconds(ds),
                now,
            );
            if actions.create {
                create.push(node_name.clone());
            }
            delete.extend(actions.delete);
            for failed in actions.failed {
                let backoff_key = format!(
                    "{}/{}/{node_name}",
                    ds.metadata.uid.as_deref().unwrap_or_default(),
                    ds.status
                        .as_ref()
                        .and_then(|s| s.observed_generation)
                        .unwrap_or(0),
                );
                match self.failed_pods.hold(&backoff_key) {
                    Some(delay) => {
                        requeue = Some(requeue.map_or(delay, |r| r.min(delay)));
                    }
                    None => {
                        tracing::info!(daemonset = %key, pod = %failed, node = %node_name, "deleting failed daemon pod");
                        delete.push(failed);
                    }
                }
            }
        }
        delete.extend(unscheduled_without_node(nodes, &by_node));
        self.sync_nodes(key, ds, &delete, &create, hash).await?;
        Ok(requeue)
    }

    /// Old pods to delete and nodes to surge onto, within the update strategy's limits.
    async fn rolling_update(
        &self,
        key: &str,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        pods: &[Arc<Pod>],
        hash: &str,
    ) -> Result<()> {
        let mut by_node = pods_by_node(pods);
        let eligible: HashMap<String, bool> = nodes
            .iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    placement(n, ds).should_run,
                )
            })
            .collect();
        let mut desired = 0;
        for (node, should_run) in &eligible {
            if *should_run {
                desired += 1;
                by_node.entry(node.clone()).or_default();
            }
        }
        let (max_surge, max_unavailable) = update_limits(ds, desired);
        let generation = template_generation(ds);
        let plan = rolling_plan(
            &by_node,
            &|node| eligible.get(node).copied().unwrap_or(false),
            desired,
            max_surge,
            max_unavailable,
            &|pod| is_pod_updated(pod, hash, generation.as_deref()),
            min_ready_seconds(ds),
            Timestamp::now(),
        );
        self.sync_nodes(key, ds, &plan.delete, &plan.create, hash)
            .await
    }

    /// Deletes `delete` and creates a pod on each node of `create` (slow start: batches of 1,
    /// 2, 4, ... stopping at the first failure), at most [`BURST_REPLICAS`] of each.
    async fn sync_nodes(
        &self,
        key: &str,
        ds: &DaemonSet,
        delete: &[String],
        create: &[String],
        hash: &str,
    ) -> Result<()> {
        let namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut failure = None;
        let create = &create[..create.len().min(BURST_REPLICAS)];
        let mut position = 0;
        let mut batch = 1;
        while position < create.len() {
            let nodes = &create[position..(position + batch).min(create.len())];
            let params = PostParams::default();
            let pods: Vec<Pod> = nodes
                .iter()
                .map(|node| daemon_pod(ds, hash, node))
                .collect();
            let results = join_all(pods.iter().map(|pod| api.create(&params, pod))).await;
            for result in results {
                match result {
                    Ok(created) => self.expectations.expect_add(key, key_of(&created)),
                    Err(error) if is_namespace_terminating(&error) => {}
                    Err(error) => failure = Some(anyhow!(error).context("creating a daemon pod")),
                }
            }
            if failure.is_some() {
                break;
            }
            position += nodes.len();
            batch *= 2;
        }
        let delete = &delete[..delete.len().min(BURST_REPLICAS)];
        for name in delete {
            self.expectations
                .expect_delete(key, crate::util::key(namespace, name));
        }
        let results = join_all(delete.iter().map(|name| {
            let api = api.clone();
            async move { (api.delete(name, &DeleteParams::default()).await, name) }
        }))
        .await;
        for (result, name) in results {
            if let Err(error) = result {
                self.expectations
                    .observe(&crate::util::key(namespace, name), true);
                if !is_not_found(&error) {
                    failure = Some(anyhow!(error).context("deleting a daemon pod"));
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Writes the counts (and `observedGeneration` when this sync acted on the spec) if they
    /// changed.
    async fn update_status(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        pods: &[Arc<Pod>],
        hash: &str,
        observe_generation: bool,
    ) -> Result<Counts> {
        let counts = count_status(ds, nodes, pods, hash, Timestamp::now());
        let status = ds.status.clone().unwrap_or_default();
        let current = Counts {
            desired: status.desired_number_scheduled,
            current: status.current_number_scheduled,
            misscheduled: status.number_misscheduled,
            ready: status.number_ready,
            updated: status.updated_number_scheduled.unwrap_or(0),
            available: status.number_available.unwrap_or(0),
            unavailable: status.number_unavailable.unwrap_or(0),
        };
        let generation = ds.metadata.generation.unwrap_or(0);
        if current == counts && status.observed_generation.unwrap_or(0) >= generation {
            return Ok(counts);
        }
        let mut body = json!({
            "desiredNumberScheduled": counts.desired,
            "currentNumberScheduled": counts.current,
            "numberMisscheduled": counts.misscheduled,
            "numberReady": counts.ready,
            "updatedNumberScheduled": counts.updated,
            "numberAvailable": counts.available,
            "numberUnavailable": counts.unavailable,
        });
        if observe_generation {
            body["observedGeneration"] = json!(generation);
        }
        let api: Api<DaemonSet> = Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.patch_status(
            ds.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": body })),
        )
        .await
        .context("updating daemon set status")?;
        Ok(counts)
    }
}

/// Whether a create failed because the namespace is being deleted (nothing more can be
/// created there; upstream ignores these too). Recognised by the API server's message.
fn is_namespace_terminating(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.message.contains("is being terminated"))
}

/// Per-node backoff for deleting failed pods (upstream's `flowcontrol.Backoff`, 1 s doubling
/// to 15 min, forgotten after twice the maximum).
#[derive(Default)]
struct Backoff {
    entries: Mutex<HashMap<String, (Instant, Duration)>>,
}

impl Backoff {
    const INITIAL: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(15 * 60);

    /// `Some(delay)` while `key` is backing off; otherwise records an attempt and allows it.
    fn hold(&self, key: &str) -> Option<Duration> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        entries.retain(|_, (since, _)| now.duration_since(*since) <= 2 * Self::MAX);
        match entries.get(key).copied() {
            Some((since, delay)) if now.duration_since(since) < delay => {
                Some(delay - now.duration_since(since))
            }
            Some((_, delay)) => {
                entries.insert(key.to_owned(), (now, (delay * 2).min(Self::MAX)));
                None
            }
            None => {
                entries.insert(key.to_owned(), (now, Self::INITIAL));
                None
            }
        }
    }
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn template_generation(ds: &DaemonSet) -> Option<String> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .filter(|g| g.parse::<i64>().is_ok())
        .cloned()
}

/// `(maxSurge, maxUnavailable)` for `desired` scheduled pods; with neither, one may be
/// unavailable (as upstream).
pub fn update_limits(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let rolling = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .filter(|_| is_rolling_update(ds))
        .and_then(|s| s.rolling_update.as_ref());
    let Some(rolling) = rolling else {
        return (0, if desired > 0 { 1 } else { 0 });
    };
    let surge = rolling
        .max_surge
        .as_ref()
        .map_or(0, |v| scaled_value(Some(v), desired, true, "0"));
    let unavailable = rolling
        .max_unavailable
        .as_ref()
        .map_or(0, |v| scaled_value(Some(v), desired, true, "1"));
    if desired > 0 && surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

fn allows_surge(ds: &DaemonSet) -> bool {
    update_limits(ds, 1).0 > 0
}

/// Whether a pod is at the current revision (by hash, or by the legacy template generation).
pub fn is_pod_updated(pod: &Pod, hash: &str, generation: Option<&str>) -> bool {
    let labels = labels_of(pod);
    let hash_matches =
        !hash.is_empty() && labels.get(REVISION_HASH_LABEL).map(String::as_str) == Some(hash);
    let generation_matches = generation
        .is_some_and(|g| labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str) == Some(g));
    hash_matches || generation_matches
}

/// Adds a toleration, replacing an equal one (same key, operator, value and effect).
fn add_or_update_toleration(tolerations: &mut Vec<Toleration>, toleration: Toleration) {
    let same = |t: &Toleration| {
        t.key == toleration.key
            && t.operator.as_deref().unwrap_or("Equal")
                == toleration.operator.as_deref().unwrap_or("Equal")
            && t.value.as_deref().unwrap_or_default()
                == toleration.value.as_deref().unwrap_or_default()
            && t.effect == toleration.effect
    };
    match tolerations.iter_mut().find(|t| same(t)) {
        Some(existing) => *existing = toleration,
        None => tolerations.push(toleration),
    }
}

/// The tolerations upstream gives every daemon pod, so node problems do not evict it and
/// condition taints do not keep it off a node.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        ..Toleration::default()
    };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        add_or_update_toleration(tolerations, exists(key, "NoExecute"));
    }
    for key in [
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ] {
        add_or_update_toleration(tolerations, exists(key, "NoSchedule"));
    }
    if spec.host_network == Some(true) {
        add_or_update_toleration(
            tolerations,
            exists("node.kubernetes.io/network-unavailable", "NoSchedule"),
        );
    }
}

/// Whether a daemon pod should be created on `node` and whether one already there may stay
/// (upstream's `NodeShouldRunDaemonPod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// A pod should run there.
    pub should_run: bool,
    /// A pod already there may keep running.
    pub should_continue: bool,
}

/// Where `ds` wants its pods, for one node.
pub fn placement(node: &Node, ds: &DaemonSet) -> Placement {
    const NOWHERE: Placement = Placement {
        should_run: false,
        should_continue: false,
    };
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return NOWHERE;
    }
    add_daemon_tolerations(&mut spec);
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_fits = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let affinity_fits = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|required| node_selector_matches(required, node_name, &labels));
    if !selector_fits || !affinity_fits {
        return NOWHERE;
    }
    let tolerations = spec.tolerations.unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effects: &[&str]| {
        taints.iter().any(|taint: &Taint| {
            effects.contains(&taint.effect.as_str())
                && !tolerations.iter().any(|t| tolerates(t, taint))
        })
    };
    Placement {
        should_run: !untolerated(&["NoSchedule", "NoExecute"]),
        should_continue: !untolerated(&["NoExecute"]),
    }
}

/// The node a daemon pod is for: its `nodeName`, or the node its required affinity names.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|term| {
        term.match_fields.iter().flatten().find_map(|field| {
            let values = field.values.as_deref().unwrap_or_default();
            (field.key == "metadata.name" && field.operator == "In" && values.len() == 1)
                .then(|| values[0].as_str())
        })
    })
}

/// Claimed pods by target node, leaving out finished pods already being deleted.
fn pods_by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in pods {
        if is_terminal(pod) && is_deleting(pod.as_ref()) {
            continue;
        }
        if let Some(node) = target_node(pod) {
            by_node
                .entry(node.to_owned())
                .or_default()
                .push(Arc::clone(pod));
        }
    }
    by_node
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Scheduled pods first, then older first, then by name.
fn by_age(a: &Arc<Pod>, b: &Arc<Pod>) -> std::cmp::Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (!scheduled(a), created(a), &a.metadata.name).cmp(&(
        !scheduled(b),
        created(b),
        &b.metadata.name,
    ))
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// What one node needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NodeActions {
    /// Create a pod there.
    pub create: bool,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Failed pods to delete unless their node is backing off.
    pub failed: Vec<String>,
}

/// Upstream's `podsShouldBeOnNode`: what to create and delete on one node given its pods.
pub fn node_actions(
    placement: Placement,
    pods: &[Arc<Pod>],
    surge: bool,
    updated: &dyn Fn(&Pod) -> bool,
    min_ready_seconds: i32,
    now: Timestamp,
) -> NodeActions {
    let mut actions = NodeActions::default();
    if placement.should_run && pods.is_empty() {
        actions.create = true;
        return actions;
    }
    if !placement.should_continue {
        actions.delete = pods
            .iter()
            .filter(|p| !is_deleting(p.as_ref()))
            .map(|p| name_of(p))
            .collect();
        return actions;
    }
    let mut running: Vec<Arc<Pod>> = Vec::new();
    for pod in pods.iter().filter(|p| !is_deleting(p.as_ref())) {
        match phase(pod) {
            "Failed" => actions.failed.push(name_of(pod)),
            "Succeeded" => actions.delete.push(name_of(pod)),
            _ => running.push(Arc::clone(pod)),
        }
    }
    running.sort_by(by_age);
    if !surge {
        // One pod per node: the oldest stays.
        actions
            .delete
            .extend(running.iter().skip(1).map(|p| name_of(p)));
        return actions;
    }
    if running.len() <= 1 {
        actions.create = running.is_empty() && placement.should_run;
        return actions;
    }
    // Surging: the oldest new pod and the oldest old pod may both stay until the new one is
    // available (or the old one is no longer ready).
    let mut oldest_new = None;
    let mut oldest_old = None;
    for pod in &running {
        let slot = if updated(pod) {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            actions.delete.push(name_of(pod));
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!is_pod_ready(old) || is_pod_available(new, min_ready_seconds, now))
    {
        actions.delete.push(name_of(old));
    }
    actions
}

/// Unscheduled pods aimed at nodes that no longer exist (the scheduler would never place them
/// and pod GC only removes scheduled ones).
fn unscheduled_without_node(
    nodes: &[Arc<Node>],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
) -> Vec<String> {
    by_node
        .iter()
        .filter(|(node, _)| {
            !nodes
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(node.as_str()))
        })
        .flat_map(|(_, pods)| pods)
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
        })
        .map(|p| name_of(p))
        .collect()
}

/// A node's new and old pod (not being deleted), or `None` when it has more than one of either
/// (the sync prunes those first).
type NewAndOld = (Option<Arc<Pod>>, Option<Arc<Pod>>);

fn new_and_old(pods: &[Arc<Pod>], updated: &dyn Fn(&Pod) -> bool) -> Option<NewAndOld> {
    let mut new = None;
    let mut old = None;
    for pod in pods.iter().filter(|p| !is_deleting(p.as_ref())) {
        let slot = if updated(pod) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(Arc::clone(pod));
    }
    Some((new, old))
}

/// What a rolling update does this round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RollingPlan {
    /// Old pods to delete.
    pub delete: Vec<String>,
    /// Nodes to create a new pod on beside the old one (surge).
    pub create: Vec<String>,
}

/// Upstream's `rollingUpdate`: without surge, delete old pods while unavailability stays
/// within `max_unavailable` (the sync then creates their replacements); with surge, create new
/// pods beside old ones (at most `max_surge` beside available old pods) and delete old pods
/// whose replacement is available. `by_node` has an entry (maybe empty) for every node that
/// should run a pod.
#[allow(clippy::too_many_arguments)]
pub fn rolling_plan(
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    should_run: &dyn Fn(&str) -> bool,
    desired: i32,
    max_surge: i32,
    max_unavailable: i32,
    updated: &dyn Fn(&Pod) -> bool,
    min_ready_seconds: i32,
    now: Timestamp,
) -> RollingPlan {
    let available = |pod: &Pod| is_pod_available(pod, min_ready_seconds, now);
    let split = |pods: &[Arc<Pod>]| new_and_old(pods, updated);
    let mut plan = RollingPlan::default();
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replacements = Vec::new();
        let mut candidates = Vec::new();
        for pods in by_node.values() {
            let Some((new, old)) = split(pods) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !available(&new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(&old) {
                        replacements.push(name_of(&old));
                        unavailable += 1;
                    } else if unavailable < max_unavailable {
                        candidates.push(name_of(&old));
                    }
                }
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
        plan.delete = replacements;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    let mut surging = 0;
    let mut available_count = 0;
    let mut allowed_nodes = Vec::new();
    let mut candidate_nodes = Vec::new();
    let mut leaving = Vec::new();
    for (node, pods) in by_node {
        let Some((new, old)) = split(pods) else {
            surging += 1;
            continue;
        };
        if let Some(pod) = old.as_ref().or(new.as_ref())
            && available(pod)
        {
            available_count += 1;
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(&old) {
                    if should_run(node) {
                        allowed_nodes.push(node.clone());
                    } else {
                        plan.delete.push(name_of(&old));
                    }
                } else if !should_run(node) {
                    leaving.push(name_of(&old));
                } else if surging < max_surge {
                    candidate_nodes.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(&new) {
                    plan.delete.push(name_of(&old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    // Pods on nodes they no longer fit go only while enough others are available.
    let deletable = usize::try_from((available_count - desired).max(0)).unwrap_or(0);
    plan.delete.extend(leaving.into_iter().take(deletable));
    let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
    plan.create = allowed_nodes;
    plan.create.extend(candidate_nodes.into_iter().take(room));
    plan
}

/// The status counts.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    /// Nodes that should run a pod.
    pub desired: i32,
    /// Of those, nodes running one.
    pub current: i32,
    /// Nodes running one that should not.
    pub misscheduled: i32,
    /// Nodes whose (oldest) pod is ready.
    pub ready: i32,
    /// Nodes whose (oldest) pod is at the current revision.
    pub updated: i32,
    /// Nodes whose (oldest) pod is available.
    pub available: i32,
    /// `desired - available`.
    pub unavailable: i32,
}

/// Upstream's `updateDaemonSetStatus` counts.
pub fn count_status(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    hash: &str,
    now: Timestamp,
) -> Counts {
    let mut by_node = pods_by_node(pods);
    let generation = template_generation(ds);
    let mut counts = Counts::default();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let on_node = by_node.get_mut(&name).filter(|p| !p.is_empty());
        if !placement(node, ds).should_run {
            if on_node.is_some() {
                counts.misscheduled += 1;
            }
            continue;
        }
        counts.desired += 1;
        let Some(on_node) = on_node else {
            continue;
        };
        counts.current += 1;
        on_node.sort_by(by_age);
        let pod = &on_node[0];
        if is_pod_ready(pod) {
            counts.ready += 1;
            if is_pod_available(pod, min_ready_seconds(ds), now) {
                counts.available += 1;
            }
        }
        if is_pod_updated(pod, hash, generation.as_deref()) {
            counts.updated += 1;
        }
    }
    counts.unavailable = counts.desired - counts.available;
    counts
}

/// The oldest old revisions beyond `limit` whose hash no pod carries.
fn revisions_to_delete<'a>(
    olds: &'a [Arc<ControllerRevision>],
    live_hashes: &[String],
    limit: i32,
) -> Vec<&'a ControllerRevision> {
    let excess = i32::try_from(olds.len()).unwrap_or(i32::MAX) - limit.max(0);
    let Ok(mut excess) = usize::try_from(excess) else {
        return Vec::new();
    };
    let mut sorted: Vec<&ControllerRevision> = olds.iter().map(Arc::as_ref).collect();
    sorted.sort_by(|a, b| history::by_revision(a, b));
    let mut doomed = Vec::new();
    for revision in sorted {
        if excess == 0 {
            break;
        }
        if history::hash_of(revision).is_some_and(|h| live_hashes.iter().any(|l| l == h)) {
            continue;
        }
        doomed.push(revision);
        excess -= 1;
    }
    doomed
}

/// A new daemon pod for `node`: the template with the revision's hash label, the daemon
/// tolerations and a required node affinity naming the node.
pub fn daemon_pod(ds: &DaemonSet, hash: &str, node: &str) -> Pod {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    if let Some(generation) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), generation);
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    }
    let mut spec = template.spec.unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![node.to_owned()]),
        }]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(NodeSelector::default)
        .node_selector_terms = vec![term];
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                ds.metadata.name.as_deref().unwrap_or_default()
            )),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ds(spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": spec,
                },
            },
        }))
        .unwrap()
    }

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(key, effect)| Taint {
                            key: (*key).into(),
                            effect: (*effect).into(),
                            ..Taint::default()
                        })
                        .collect(),
                ),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, age: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(REVISION_HASH_LABEL.to_owned(), hash.to_owned())].into()),
                creation_timestamp: Some(Time(Timestamp::from_second(1000 - age).unwrap())),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    fn at(should_run: bool, should_continue: bool) -> Placement {
        Placement {
            should_run,
            should_continue,
        }
    }

    #[test]
    fn placement_follows_selectors_affinity_and_taints() {
        let plain = ds(json!({"containers": [{"name": "c", "image": "i"}]}));
        let selected = ds(json!({
            "containers": [{"name": "c", "image": "i"}],
            "nodeSelector": {"disk": "ssd"},
        }));
        let pinned = ds(json!({
            "containers": [{"name": "c", "image": "i"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["n2"]},
                ]}],
            }}},
        }));
        let tolerant = ds(json!({
            "containers": [{"name": "c", "image": "i"}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
        }));
        let cases = [
            (&plain, node("n1", &[], &[]), at(true, true)),
            (
                &plain,
                node("n1", &[], &[("k", "NoSchedule")]),
                at(false, true),
            ),
            (
                &plain,
                node("n1", &[], &[("k", "NoExecute")]),
                at(false, false),
            ),
            (
                &plain,
                node("n1", &[], &[("k", "PreferNoSchedule")]),
                at(true, true),
            ),
            // Upstream's default daemon tolerations.
            (
                &plain,
                node(
                    "n1",
                    &[],
                    &[("node.kubernetes.io/unschedulable", "NoSchedule")],
                ),
                at(true, true),
            ),
            (
                &plain,
                node("n1", &[], &[("node.kubernetes.io/not-ready", "NoExecute")]),
                at(true, true),
            ),
            (
                &plain,
                node(
                    "n1",
                    &[],
                    &[("node.kubernetes.io/network-unavailable", "NoSchedule")],
                ),
                at(false, true),
            ),
            (
                &selected,
                node("n1", &[("disk", "ssd")], &[]),
                at(true, true),
            ),
            (
                &selected,
                node("n1", &[("disk", "hdd")], &[]),
                at(false, false),
            ),
            (&pinned, node("n2", &[], &[]), at(true, true)),
            (&pinned, node("n1", &[], &[]), at(false, false)),
            (
                &tolerant,
                node("n1", &[], &[("k", "NoExecute")]),
                at(true, true),
            ),
        ];
        for (i, (ds, node, expected)) in cases.into_iter().enumerate() {
            assert_eq!(placement(&node, ds), expected, "case {i}");
        }
    }

    #[test]
    fn host_network_pods_tolerate_an_unavailable_network() {
        let mut spec = PodSpec {
            host_network: Some(true),
            tolerations: Some(vec![Toleration {
                key: Some("node.kubernetes.io/unschedulable".into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }]),
            ..PodSpec::default()
        };
        add_daemon_tolerations(&mut spec);
        let tolerations = spec.tolerations.unwrap();
        assert_eq!(tolerations.len(), 7);
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/network-unavailable"))
        );
    }

    #[test]
    fn daemon_pods_name_their_node_and_revision() {
        let pod = daemon_pod(&ds(json!({"containers": []})), "abc", "n7");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()[REVISION_HASH_LABEL],
            "abc"
        );
        assert_eq!(target_node(&pod), Some("n7"));
        assert_eq!(pod.metadata.owner_references.unwrap()[0].kind, "DaemonSet");
    }

    #[test]
    fn node_actions_create_replace_and_prune() {
        let now = Timestamp::from_second(2000).unwrap();
        let updated =
            |p: &Pod| labels_of(p).get(REVISION_HASH_LABEL).map(String::as_str) == Some("new");
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // (placement, pods, surge, expected create, delete, failed)
        type Case = (
            Placement,
            Vec<Arc<Pod>>,
            bool,
            bool,
            Vec<String>,
            Vec<String>,
        );
        let cases: Vec<Case> = vec![
            (at(true, true), vec![], false, true, vec![], vec![]),
            (at(false, false), vec![], false, false, vec![], vec![]),
            (
                at(false, false),
                vec![pod("a", "n", "old", "Running", true, 5)],
                false,
                false,
                names(&["a"]),
                vec![],
            ),
            // A NoSchedule taint keeps the pod that is there.
            (
                at(false, true),
                vec![pod("a", "n", "old", "Running", true, 5)],
                false,
                false,
                vec![],
                vec![],
            ),
            // Two pods without surge: the younger goes.
            (
                at(true, true),
                vec![
                    pod("young", "n", "new", "Running", true, 1),
                    pod("old", "n", "old", "Running", true, 9),
                ],
                false,
                false,
                names(&["young"]),
                vec![],
            ),
            (
                at(true, true),
                vec![pod("f", "n", "new", "Failed", false, 1)],
                false,
                false,
                vec![],
                names(&["f"]),
            ),
            (
                at(true, true),
                vec![pod("s", "n", "new", "Succeeded", false, 1)],
                true,
                true,
                names(&["s"]),
                vec![],
            ),
            // Surge: the old pod goes once the new one is available.
            (
                at(true, true),
                vec![
                    pod("new", "n", "new", "Running", true, 1),
                    pod("old", "n", "old", "Running", true, 9),
                ],
                true,
                false,
                names(&["old"]),
                vec![],
            ),
            (
                at(true, true),
                vec![
                    pod("new", "n", "new", "Pending", false, 1),
                    pod("old", "n", "old", "Running", true, 9),
                ],
                true,
                false,
                vec![],
                vec![],
            ),
        ];
        for (i, (placement, pods, surge, create, delete, failed)) in cases.into_iter().enumerate() {
            let actions = node_actions(placement, &pods, surge, &updated, 0, now);
            assert_eq!(
                actions,
                NodeActions {
                    create,
                    delete,
                    failed
                },
                "case {i}"
            );
        }
    }

    #[test]
    fn rolling_updates_stay_within_their_limits() {
        let now = Timestamp::from_second(2000).unwrap();
        let updated =
            |p: &Pod| labels_of(p).get(REVISION_HASH_LABEL).map(String::as_str) == Some("new");
        let everywhere = |_: &str| true;
        let nodes = |pods: Vec<(&str, Vec<Arc<Pod>>)>| -> BTreeMap<String, Vec<Arc<Pod>>> {
            pods.into_iter().map(|(n, p)| (n.to_owned(), p)).collect()
        };
        // Three old available pods, max unavailable 1: one goes.
        let all_old = nodes(vec![
            ("a", vec![pod("pa", "a", "old", "Running", true, 9)]),
            ("b", vec![pod("pb", "b", "old", "Running", true, 9)]),
            ("c", vec![pod("pc", "c", "old", "Running", true, 9)]),
        ]);
        let plan = rolling_plan(&all_old, &everywhere, 3, 0, 1, &updated, 0, now);
        assert_eq!(plan.delete.len(), 1);
        assert!(plan.create.is_empty());
        // A new pod not yet available uses up the allowance.
        let one_new = nodes(vec![
            ("a", vec![pod("pa", "a", "new", "Pending", false, 1)]),
            ("b", vec![pod("pb", "b", "old", "Running", true, 9)]),
            ("c", vec![pod("pc", "c", "old", "Running", true, 9)]),
        ]);
        let plan = rolling_plan(&one_new, &everywhere, 3, 0, 1, &updated, 0, now);
        assert_eq!(plan, RollingPlan::default());
        // Unavailable old pods are always replaced.
        let broken = nodes(vec![
            ("a", vec![pod("pa", "a", "old", "Running", false, 9)]),
            ("b", vec![pod("pb", "b", "old", "Running", false, 9)]),
        ]);
        let plan = rolling_plan(&broken, &everywhere, 2, 0, 1, &updated, 0, now);
        assert_eq!(plan.delete, ["pa", "pb"]);
        // Surge 1: one node gets a new pod beside its old one.
        let plan = rolling_plan(&all_old, &everywhere, 3, 1, 0, &updated, 0, now);
        assert_eq!(plan.create, ["a"]);
        assert!(plan.delete.is_empty());
        // Surge: an available new pod retires the old one and frees the surge slot.
        let surged = nodes(vec![
            (
                "a",
                vec![
                    pod("na", "a", "new", "Running", true, 1),
                    pod("pa", "a", "old", "Running", true, 9),
                ],
            ),
            ("b", vec![pod("pb", "b", "old", "Running", true, 9)]),
        ]);
        let plan = rolling_plan(&surged, &everywhere, 2, 1, 0, &updated, 0, now);
        assert_eq!(plan.delete, ["pa"]);
        assert_eq!(plan.create, ["b"]);
    }

    #[test]
    fn limits_default_to_one_unavailable() {
        let mut set = ds(json!({"containers": []}));
        assert_eq!(update_limits(&set, 3), (0, 1));
        set.spec.as_mut().unwrap().update_strategy = Some(
            serde_json::from_value(json!({
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0},
            }))
            .unwrap(),
        );
        assert_eq!(update_limits(&set, 3), (0, 2));
        set.spec.as_mut().unwrap().update_strategy = Some(
            serde_json::from_value(json!({
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "10%"},
            }))
            .unwrap(),
        );
        assert_eq!(update_limits(&set, 3), (1, 0));
    }

    #[test]
    fn status_counts_per_node() {
        let set = ds(json!({"containers": [], "nodeSelector": {"run": "yes"}}));
        let nodes: Vec<Arc<Node>> = vec![
            Arc::new(node("a", &[("run", "yes")], &[])),
            Arc::new(node("b", &[("run", "yes")], &[])),
            Arc::new(node("c", &[("run", "yes")], &[])),
            Arc::new(node("d", &[], &[])),
        ];
        let pods = vec![
            pod("pa", "a", "new", "Running", true, 5),
            pod("pb", "b", "old", "Running", false, 5),
            pod("pd", "d", "new", "Running", true, 5),
        ];
        let counts = count_status(
            &set,
            &nodes,
            &pods,
            "new",
            Timestamp::from_second(2000).unwrap(),
        );
        assert_eq!(
            counts,
            Counts {
                desired: 3,
                current: 2,
                misscheduled: 1,
                ready: 1,
                updated: 1,
                available: 1,
                unavailable: 2,
            }
        );
    }

    #[test]
    fn history_cleanup_spares_live_revisions() {
        let revision = |name: &str, number: i64| {
            Arc::new(ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    labels: Some([(REVISION_HASH_LABEL.to_owned(), name.to_owned())].into()),
                    ..ObjectMeta::default()
                },
                data: None,
                revision: number,
            })
        };
        let olds = vec![revision("r3", 3), revision("r1", 1), revision("r2", 2)];
        let names = |v: Vec<&ControllerRevision>| -> Vec<String> {
            v.iter().map(|r| r.metadata.name.clone().unwrap()).collect()
        };
        assert_eq!(names(revisions_to_delete(&olds, &[], 1)), ["r1", "r2"]);
        assert_eq!(
            names(revisions_to_delete(&olds, &["r1".into()], 1)),
            ["r2", "r3"]
        );
        assert!(revisions_to_delete(&olds, &[], 10).is_empty());
    }
}

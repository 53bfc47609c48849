//! The StatefulSet controller: pods with stable identities `<set>-<ordinal>`, following
//! upstream's `pkg/controller/statefulset`.
//!
//! Each pod gets the labels `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`
//! and `controller-revision-hash` (the name of its revision), `hostname` = its name and
//! `subdomain` = `serviceName`, and one volume per `volumeClaimTemplates` entry pointing at the
//! claim `<template>-<set>-<ordinal>`, which is created before the pod and never by the pod's
//! deletion. `persistentVolumeClaimRetentionPolicy` is carried out through the claims' owner
//! references (the garbage collector deletes them): `whenDeleted: Delete` makes the set an
//! owner, `whenScaled: Delete` makes a scaled-down pod the owner.
//!
//! A sync (see [`plan`]) walks the ordinals in range: failed pods are deleted (and recreated
//! by the next sync), missing pods created; with `podManagementPolicy: OrderedReady` it stops
//! at the first pod it creates or that is not Running, Ready and available, and pods beyond
//! `replicas` go one at a time from the highest ordinal once all others are healthy;
//! `Parallel` does all of it at once. Then `RollingUpdate` deletes the highest-ordinal pod
//! (at or above `partition`) not at the update revision once the ones above it are healthy
//! (up to `maxUnavailable` at a time when set); `OnDelete` leaves that to the user. The
//! template history lives in ControllerRevisions named `<set>-<hash>` ([`crate::history`]);
//! status carries `currentRevision`/`updateRevision` and the counts `kubectl rollout status
//! sts` reads.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::claim::{claim, wake_owners};
use crate::expectations::Expectations;
use crate::history::{self, DATA_HASH_LABEL, REVISION_HASH_LABEL};
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::replicaset::is_not_found;
use crate::util::{
    availability_recheck, controller_ref, is_deleting, is_pod_available, is_pod_ready, key_of,
    labels_of, scaled_value, selector_is_empty, split_key,
};

/// The label naming a StatefulSet pod.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying a StatefulSet pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The default `revisionHistoryLimit`.
const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// How many hash collisions creating a revision tolerates before giving up for this sync.
const MAX_COLLISIONS: i32 = 16;

/// The StatefulSet controller.
pub struct StatefulSetController {
    client: Client,
    sets: Store<StatefulSet>,
    revisions: Store<ControllerRevision>,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    queue: Arc<Queue>,
    expectations: Expectations,
}

impl StatefulSetController {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        sets: &Informer<StatefulSet>,
        revisions: &Informer<ControllerRevision>,
        pods: &Informer<Pod>,
        claims: &Informer<PersistentVolumeClaim>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let controller = Arc::new(StatefulSetController {
            client,
            sets: sets.store(),
            revisions: revisions.store(),
            pods: pods.store(),
            claims: claims.store(),
            queue: Queue::new(shutdown),
            expectations: Expectations::default(),
        });
        let c = Arc::clone(&controller);
        sets.on_change(move |change| match change {
            Change::Applied(set) => c.queue.add(key_of(set)),
            Change::Deleted(set) => {
                c.expectations.forget(&key_of(set));
                c.queue.add(key_of(set));
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
        claims.on_change(move |change| {
            // A claim that was in the way (being deleted, stale owner) may be gone now.
            if let Change::Deleted(claim) = change {
                for set in c.sets.state() {
                    if set.metadata.namespace == claim.metadata.namespace {
                        c.queue.add(key_of(set.as_ref()));
                    }
                }
            }
        });
        controller
    }

    fn enqueue_all(&self) {
        for set in self.sets.state() {
            self.queue.add(key_of(set.as_ref()));
        }
    }

    /// Wakes the StatefulSet of a pod or revision, or those that could adopt it.
    fn dependent_changed<K: Resource>(&self, object: &K) -> Option<Arc<StatefulSet>> {
        wake_owners(
            &self.sets,
            object,
            |owner| owner.spec.as_ref().map(|s| &s.selector),
            |key| self.queue.add(key),
        )
    }

    fn pod_changed(&self, pod: &Pod, deleted: bool) {
        self.expectations
            .observe(&key_of(pod), deleted || is_deleting(pod));
        let Some(set) = self.dependent_changed(pod) else {
            return;
        };
        if let Some(delay) = availability_recheck(pod, deleted, min_ready_seconds(&set)) {
            self.queue.add_after(key_of(set.as_ref()), delay);
        }
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, "StatefulSet", move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(set) = self.sets.get(&ObjectRef::new(name).within(namespace)) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let selector = set
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        if selector_is_empty(&selector) {
            tracing::warn!(%key, "stateful set selects all pods; a non-empty selector is required");
            return Ok(None);
        }
        if !self.expectations.satisfied(key, &self.pods) {
            // Our own creations and deletions are not all in the cache yet.
            return Ok(Some(Duration::from_secs(1)));
        }
        let candidates = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect();
        let pods = claim(&self.client, set.as_ref(), &selector, candidates, |pod| {
            parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default())
                .is_some_and(|(parent, _)| parent == name)
        })
        .await
        .context("claiming pods")?;
        let candidates = self
            .revisions
            .state()
            .into_iter()
            .filter(|r| r.metadata.namespace.as_deref() == Some(namespace))
            .collect();
        let mut revisions = claim(&self.client, set.as_ref(), &selector, candidates, |_| true)
            .await
            .context("claiming controller revisions")?;
        revisions.sort_by(|a, b| history::by_revision(a, b));
        let sync = SetSync {
            controller: self,
            key,
            set: &set,
            pods_api: Api::namespaced(self.client.clone(), namespace),
            claims_api: Api::namespaced(self.client.clone(), namespace),
            revisions_api: Api::namespaced(self.client.clone(), namespace),
        };
        let (current, update, collision_count) = sync.revisions(&revisions).await?;
        let (status, result) = sync.update(&pods, &current, &update, collision_count).await;
        sync.write_status(status.clone()).await?;
        result?;
        sync.truncate_history(&pods, &revisions, &current, &update)
            .await?;
        let min_ready = min_ready_seconds(&set);
        if min_ready > 0 && status.available_replicas.unwrap_or(0) != replicas(&set) {
            return Ok(Some(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        Ok(None)
    }
}

/// One sync of one set.
struct SetSync<'a> {
    controller: &'a StatefulSetController,
    key: &'a str,
    set: &'a StatefulSet,
    pods_api: Api<Pod>,
    claims_api: Api<PersistentVolumeClaim>,
    revisions_api: Api<ControllerRevision>,
}

impl SetSync<'_> {
    fn set_name(&self) -> &str {
        self.set.metadata.name.as_deref().unwrap_or_default()
    }

    /// The current and update revisions (the update one created, or an older equal one
    /// renumbered to be the newest, as needed) and the collision count used.
    async fn revisions(
        &self,
        revisions: &[Arc<ControllerRevision>],
    ) -> Result<(ControllerRevision, ControllerRevision, i32)> {
        let template = self
            .set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let data = history::template_patch(&template);
        let next = revisions.last().map_or(1, |r| r.revision + 1);
        let mut collision_count = self
            .set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let update = match choose_update_revision(revisions, &data) {
            UpdateRevision::Latest(i) => (*revisions[i]).clone(),
            UpdateRevision::Reuse(i) => {
                history::renumber(&self.revisions_api, &revisions[i], next).await?
            }
            UpdateRevision::Create => {
                self.create_revision(&template, data, next, &mut collision_count)
                    .await?
            }
        };
        let current_name = self
            .set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone());
        let current = revisions
            .iter()
            .find(|r| r.metadata.name.is_some() && r.metadata.name == current_name)
            .map_or_else(|| update.clone(), |r| (**r).clone());
        Ok((current, update, collision_count))
    }

    /// Creates the revision for `data`, renaming it on hash collisions.
    async fn create_revision(
        &self,
        template: &PodTemplateSpec,
        data: Value,
        number: i64,
        collision_count: &mut i32,
    ) -> Result<ControllerRevision> {
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        for _ in 0..MAX_COLLISIONS {
            let hash = history::data_hash(&data, Some(*collision_count));
            labels.insert(DATA_HASH_LABEL.to_owned(), hash.clone());
            let name = history::revision_name(self.set_name(), &hash);
            let revision = history::new_revision(
                name.clone(),
                self.set.metadata.namespace.clone(),
                labels.clone(),
                self.set.metadata.annotations.clone(),
                controller_ref(self.set),
                data.clone(),
                number,
            );
            match self
                .revisions_api
                .create(&PostParams::default(), &revision)
                .await
            {
                Ok(created) => return Ok(created),
                Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => {
                    let existing = self.revisions_api.get(&name).await?;
                    if history::data_of(&existing).is_some_and(|d| history::same_data(d, &data)) {
                        return Ok(existing);
                    }
                    *collision_count += 1;
                }
                Err(error) => return Err(error).context("creating a controller revision"),
            }
        }
        Err(anyhow!(
            "too many controller revision name collisions for {}",
            self.set_name()
        ))
    }

    /// Carries out this round's [`plan`], returning the status to write and how it went.
    async fn update(
        &self,
        pods: &[Arc<Pod>],
        current: &ControllerRevision,
        update: &ControllerRevision,
        collision_count: i32,
    ) -> (StatefulSetStatus, Result<()>) {
        let current_name = current.metadata.name.clone().unwrap_or_default();
        let update_name = update.metadata.name.clone().unwrap_or_default();
        let spec_template = self
            .set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let current_template =
            history::template_of(current).unwrap_or_else(|| spec_template.clone());
        let update_template = history::template_of(update).unwrap_or(spec_template);
        let strategy = Strategy::of(self.set);
        let now = Timestamp::now();
        let min_ready = min_ready_seconds(self.set);
        let by_ordinal: BTreeMap<i32, Arc<Pod>> = pods
            .iter()
            .filter_map(|p| {
                let (_, ordinal) = parent_and_ordinal(p.metadata.name.as_deref()?)?;
                Some((ordinal, Arc::clone(p)))
            })
            .collect();
        let members: Vec<Member> = by_ordinal
            .iter()
            .map(|(ordinal, pod)| Member {
                ordinal: *ordinal,
                revision: pod_revision(pod).to_owned(),
                phase: phase(pod).to_owned(),
                running_ready: is_running_and_ready(pod),
                available: is_pod_available(pod, min_ready, now),
                terminating: is_deleting(pod.as_ref()),
                consistent: identity_matches(self.set, pod)
                    && storage_matches(self.set, pod)
                    && self.claims_follow_policy(pod, &strategy),
                claims_missing: self.claims_missing(*ordinal),
            })
            .collect();
        let counts = count_replicas(&members, &current_name, &update_name);
        let mut status = StatefulSetStatus {
            observed_generation: self.set.metadata.generation,
            replicas: counts.replicas,
            ready_replicas: Some(counts.ready),
            available_replicas: Some(counts.available),
            current_replicas: Some(counts.current),
            updated_replicas: Some(counts.updated),
            current_revision: Some(current_name.clone()),
            update_revision: Some(update_name.clone()),
            collision_count: Some(collision_count),
            conditions: self.set.status.as_ref().and_then(|s| s.conditions.clone()),
        };
        if is_deleting(self.set) {
            return (status, Ok(()));
        }
        let steps = plan(&strategy, &members, &update_name);
        let mut result = Ok(());
        for step in steps {
            let outcome = match step {
                Step::Recreate(ordinal) | Step::Condemn(ordinal) | Step::Update(ordinal) => {
                    let Some(pod) = by_ordinal.get(&ordinal) else {
                        continue;
                    };
                    if matches!(step, Step::Recreate(_)) {
                        tracing::info!(statefulset = %self.key, pod = %name_of(pod), "recreating failed pod");
                    }
                    match self.delete_pod(pod).await {
                        Ok(()) => {
                            adjust(
                                &mut status,
                                pod_revision(pod),
                                &current_name,
                                &update_name,
                                -1,
                            );
                            if matches!(step, Step::Recreate(_)) {
                                status.replicas -= 1;
                            }
                            Ok(true)
                        }
                        Err(error) => Err(error),
                    }
                }
                Step::Create(ordinal) => {
                    let (template, revision) = if ordinal < strategy.current_below {
                        (&current_template, &current_name)
                    } else {
                        (&update_template, &update_name)
                    };
                    match self.create_pod(template, revision, ordinal).await {
                        Ok(true) => {
                            status.replicas += 1;
                            adjust(&mut status, revision, &current_name, &update_name, 1);
                            Ok(true)
                        }
                        other => other,
                    }
                }
                Step::CreateClaims(ordinal) => self.create_claims(ordinal).await.map(|()| true),
                Step::Repair(ordinal) | Step::RepairCondemned(ordinal) => {
                    let Some(pod) = by_ordinal.get(&ordinal) else {
                        continue;
                    };
                    self.repair(pod, &strategy).await.map(|()| true)
                }
            };
            match outcome {
                Ok(true) => {}
                // A claim still owned by a previous pod of this ordinal: wait for the GC.
                Ok(false) => break,
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        complete_rolling_update(&strategy, &mut status);
        (status, result)
    }

    async fn delete_pod(&self, pod: &Pod) -> Result<()> {
        let name = name_of(pod);
        let pod_key = key_of(pod);
        self.controller
            .expectations
            .expect_delete(self.key, pod_key.clone());
        match self.pods_api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(error) => {
                self.controller.expectations.observe(&pod_key, true);
                if is_not_found(&error) {
                    Ok(())
                } else {
                    Err(error).with_context(|| format!("deleting pod {name}"))
                }
            }
        }
    }

    /// Creates a pod's claims, then the pod, then sets the claims' owners per the retention
    /// policy. `Ok(false)` when a claim still belongs to a previous pod of the ordinal.
    async fn create_pod(
        &self,
        template: &PodTemplateSpec,
        revision: &str,
        ordinal: i32,
    ) -> Result<bool> {
        let pod = new_pod(self.set, template, ordinal, revision);
        let name = name_of(&pod);
        let stale = claims_for(self.set, ordinal).iter().any(|(_, wanted)| {
            self.cached_claim(wanted)
                .is_some_and(|existing| has_stale_ref(&existing, "v1", "Pod", &name, ""))
        });
        if stale {
            tracing::debug!(statefulset = %self.key, pod = %name, "waiting for a stale claim to go");
            return Ok(false);
        }
        self.create_claims(ordinal).await?;
        let created = match self.pods_api.create(&PostParams::default(), &pod).await {
            Ok(created) => created,
            Err(error) => return Err(error).with_context(|| format!("creating pod {name}")),
        };
        self.controller
            .expectations
            .expect_add(self.key, key_of(&created));
        self.update_claim_owners(&created, &Strategy::of(self.set))
            .await?;
        Ok(true)
    }

    fn cached_claim(&self, claim: &PersistentVolumeClaim) -> Option<Arc<PersistentVolumeClaim>> {
        self.controller.claims.get(
            &ObjectRef::new(claim.metadata.name.as_deref().unwrap_or_default())
                .within(claim.metadata.namespace.as_deref().unwrap_or_default()),
        )
    }

    fn claims_missing(&self, ordinal: i32) -> bool {
        claims_for(self.set, ordinal)
            .iter()
            .any(|(_, claim)| self.cached_claim(claim).is_none())
    }

    /// Creates the claims of an ordinal that do not exist; fails while one is being deleted.
    async fn create_claims(&self, ordinal: i32) -> Result<()> {
        for (_, claim) in claims_for(self.set, ordinal) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            match self.cached_claim(&claim) {
                Some(existing) if is_deleting(existing.as_ref()) => {
                    return Err(anyhow!("pvc {name} is being deleted"));
                }
                Some(_) => {}
                None => match self.claims_api.create(&PostParams::default(), &claim).await {
                    Ok(_) => {
                        tracing::info!(statefulset = %self.key, claim = %name, "created claim");
                    }
                    Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => {}
                    Err(error) => {
                        return Err(error).with_context(|| format!("creating claim {name}"));
                    }
                },
            }
        }
        Ok(())
    }

    /// Whether a pod's existing claims carry the owners the retention policy asks for.
    fn claims_follow_policy(&self, pod: &Pod, strategy: &Strategy) -> bool {
        let Some((_, ordinal)) = parent_and_ordinal(&name_of(pod)) else {
            return true;
        };
        claims_for(self.set, ordinal).iter().all(|(_, wanted)| {
            self.cached_claim(wanted).is_none_or(|existing| {
                claim_owners(&existing, self.set, pod, strategy.scaled_down(ordinal)).is_none()
            })
        })
    }

    /// Sets the owners of a pod's claims per the retention policy.
    async fn update_claim_owners(&self, pod: &Pod, strategy: &Strategy) -> Result<()> {
        let Some((_, ordinal)) = parent_and_ordinal(&name_of(pod)) else {
            return Ok(());
        };
        for (_, wanted) in claims_for(self.set, ordinal) {
            let Some(existing) = self.cached_claim(&wanted) else {
                continue;
            };
            let Some(owners) =
                claim_owners(&existing, self.set, pod, strategy.scaled_down(ordinal))
            else {
                continue;
            };
            let name = existing.metadata.name.clone().unwrap_or_default();
            let patch = json!({"metadata": {
                "resourceVersion": existing.metadata.resource_version,
                "ownerReferences": owners,
            }});
            match self
                .claims_api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("updating owners of claim {name}"));
                }
            }
        }
        Ok(())
    }

    /// Restores a pod's identity labels, creates its missing claims and fixes their owners.
    /// (Volumes of a running pod cannot change; a pod missing its claim volumes keeps them
    /// missing until it is recreated.)
    async fn repair(&self, pod: &Pod, strategy: &Strategy) -> Result<()> {
        if !identity_matches(self.set, pod) {
            let name = name_of(pod);
            let ordinal = parent_and_ordinal(&name).map_or(0, |(_, o)| o);
            let patch = json!({"metadata": {"labels": {
                POD_NAME_LABEL: name,
                POD_INDEX_LABEL: ordinal.to_string(),
            }}});
            self.pods_api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .with_context(|| format!("restoring the identity of pod {name}"))?;
        }
        if !storage_matches(self.set, pod)
            && let Some((_, ordinal)) = parent_and_ordinal(&name_of(pod))
        {
            self.create_claims(ordinal).await?;
        }
        self.update_claim_owners(pod, strategy).await
    }

    /// Writes the status if it differs from the set's.
    async fn write_status(&self, status: StatefulSetStatus) -> Result<()> {
        let old = self.set.status.clone().unwrap_or_default();
        let same = old.observed_generation == status.observed_generation
            && old.replicas == status.replicas
            && old.ready_replicas.unwrap_or(0) == status.ready_replicas.unwrap_or(0)
            && old.available_replicas.unwrap_or(0) == status.available_replicas.unwrap_or(0)
            && old.current_replicas.unwrap_or(0) == status.current_replicas.unwrap_or(0)
            && old.updated_replicas.unwrap_or(0) == status.updated_replicas.unwrap_or(0)
            && old.current_revision == status.current_revision
            && old.update_revision == status.update_revision
            && old.collision_count.unwrap_or(0) == status.collision_count.unwrap_or(0);
        if same {
            return Ok(());
        }
        let body = json!({
            "observedGeneration": status.observed_generation,
            "replicas": status.replicas,
            "readyReplicas": status.ready_replicas,
            "availableReplicas": status.available_replicas,
            "currentReplicas": status.current_replicas,
            "updatedReplicas": status.updated_replicas,
            "currentRevision": status.current_revision,
            "updateRevision": status.update_revision,
            "collisionCount": status.collision_count,
        });
        let api: Api<StatefulSet> = Api::namespaced(
            self.controller.client.clone(),
            self.set.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.patch_status(
            self.set_name(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": body })),
        )
        .await
        .context("updating stateful set status")?;
        Ok(())
    }

    /// Deletes the oldest revisions beyond `revisionHistoryLimit` that neither the status nor
    /// any pod uses.
    async fn truncate_history(
        &self,
        pods: &[Arc<Pod>],
        revisions: &[Arc<ControllerRevision>],
        current: &ControllerRevision,
        update: &ControllerRevision,
    ) -> Result<()> {
        let mut live: HashSet<String> = pods.iter().map(|p| pod_revision(p).to_owned()).collect();
        live.extend(current.metadata.name.clone());
        live.extend(update.metadata.name.clone());
        let limit = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(DEFAULT_HISTORY_LIMIT);
        for revision in revisions_to_truncate(revisions, &live, limit) {
            history::delete(&self.revisions_api, revision).await?;
        }
        Ok(())
    }
}

fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_pod_ready(pod)
}

/// The revision a pod belongs to (its `controller-revision-hash` label).
pub fn pod_revision(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .map_or("", String::as_str)
}

/// The parent name and ordinal in a pod name `<parent>-<ordinal>`.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// The claims of an ordinal, keyed by their template's name: `<template>-<set>-<ordinal>`,
/// labelled with the template's labels and the set's selector labels.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<(String, PersistentVolumeClaim)> {
    let Some(spec) = set.spec.as_ref() else {
        return Vec::new();
    };
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let template_name = template.metadata.name.clone().unwrap_or_default();
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(format!("{template_name}-{set_name}-{ordinal}")),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            };
            (template_name, claim)
        })
        .collect()
}

/// A new pod for an ordinal from `template` (the template of `revision`).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str) -> Pod {
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.to_owned(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_owned(), ordinal.to_string());
    labels.insert(REVISION_HASH_LABEL.to_owned(), revision.to_owned());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let claims = claims_for(set, ordinal);
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(template_name, claim)| Volume {
            name: template_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(
        spec.volumes
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| !claims.iter().any(|(n, _)| *n == v.name)),
    );
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref(set)]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether a pod carries its identity: name, namespace and the name and index labels.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = name_of(pod);
    let Some((parent, ordinal)) = parent_and_ordinal(&name) else {
        return false;
    };
    let labels = labels_of(pod);
    Some(parent) == set.metadata.name.as_deref()
        && pod.metadata.namespace == set.metadata.namespace
        && labels.get(POD_NAME_LABEL) == Some(&name)
        && labels.get(POD_INDEX_LABEL) == Some(&ordinal.to_string())
}

/// Whether a pod has a volume for each claim template, pointing at its claim.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some((_, ordinal)) = parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default())
    else {
        return false;
    };
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    claims_for(set, ordinal)
        .iter()
        .all(|(template_name, claim)| {
            volumes.iter().any(|v| {
                v.name == *template_name
                    && v.persistent_volume_claim.as_ref().map(|c| &c.claim_name)
                        == claim.metadata.name.as_ref()
            })
        })
}

/// Whether `claim` has an owner reference to `kind`/`name` with a UID other than `uid`.
fn has_stale_ref(
    claim: &PersistentVolumeClaim,
    api_version: &str,
    kind: &str,
    name: &str,
    uid: &str,
) -> bool {
    claim
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.api_version == api_version && r.kind == kind && r.name == name)
        .is_some_and(|r| r.uid != uid)
}

/// The owner references `claim` should have under the set's retention policy, or `None` if
/// it has them already (upstream's `isClaimOwnerUpToDate` and
/// `updateClaimOwnerRefForSetAndPod`): the set owns it when `whenDeleted` is `Delete` (and the
/// pod is in range), a scaled-down pod owns it when `whenScaled` is `Delete`. Claims with
/// stale owners (an earlier set or pod of the same name) are left alone.
pub fn claim_owners(
    claim: &PersistentVolumeClaim,
    set: &StatefulSet,
    pod: &Pod,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let set_uid = set.metadata.uid.as_deref().unwrap_or_default();
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let pod_uid = pod.metadata.uid.as_deref().unwrap_or_default();
    if has_stale_ref(claim, "apps/v1", "StatefulSet", set_name, set_uid)
        || has_stale_ref(claim, "v1", "Pod", pod_name, pod_uid)
    {
        return None;
    }
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.clone())
        .unwrap_or_default();
    let delete_when_deleted = policy.when_deleted.as_deref() == Some("Delete");
    let delete_when_scaled = policy.when_scaled.as_deref() == Some("Delete");
    let refs = claim.metadata.owner_references.clone().unwrap_or_default();
    let is_set = |r: &OwnerReference| {
        r.api_version == "apps/v1" && r.kind == "StatefulSet" && r.name == set_name
    };
    let is_pod =
        |r: &OwnerReference| r.api_version == "v1" && r.kind == "Pod" && r.name == pod_name;
    let other_controller = refs
        .iter()
        .any(|r| !is_set(r) && !is_pod(r) && r.controller == Some(true));
    let mut wanted: Vec<OwnerReference> = refs
        .iter()
        .filter(|r| !is_set(r) && !is_pod(r))
        .cloned()
        .collect();
    if !(other_controller && (delete_when_deleted || delete_when_scaled)) {
        if delete_when_scaled && scaled_down {
            wanted.push(pod_ref(pod));
        }
        if delete_when_deleted && !(delete_when_scaled && scaled_down) {
            wanted.push(controller_ref(set));
        }
    }
    let key = |r: &OwnerReference| (r.uid.clone(), r.controller == Some(true));
    let mut have: Vec<_> = refs.iter().map(key).collect();
    let mut want: Vec<_> = wanted.iter().map(key).collect();
    have.sort();
    want.sort();
    (have != want).then_some(wanted)
}

fn pod_ref(pod: &Pod) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Pod".to_owned(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Which revision a sync rolls towards.
#[derive(Debug, PartialEq, Eq)]
pub enum UpdateRevision {
    /// The newest revision already records the template.
    Latest(usize),
    /// An older revision does (a rollback): it is renumbered to be the newest.
    Reuse(usize),
    /// None does: a new one is created.
    Create,
}

/// Upstream's choice of update revision among `revisions` (sorted oldest first).
pub fn choose_update_revision(
    revisions: &[Arc<ControllerRevision>],
    data: &Value,
) -> UpdateRevision {
    let equal = revisions
        .iter()
        .rposition(|r| history::data_of(r).is_some_and(|d| history::same_data(d, data)));
    match equal {
        Some(i) if i + 1 == revisions.len() => UpdateRevision::Latest(i),
        Some(i) => UpdateRevision::Reuse(i),
        None => UpdateRevision::Create,
    }
}

/// The oldest revisions (of `revisions`, sorted oldest first) beyond `limit` that are not
/// live.
pub fn revisions_to_truncate<'a>(
    revisions: &'a [Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<&'a ControllerRevision> {
    let history: Vec<&ControllerRevision> = revisions
        .iter()
        .map(Arc::as_ref)
        .filter(|r| !r.metadata.name.as_ref().is_some_and(|n| live.contains(n)))
        .collect();
    let excess = history
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    history.into_iter().take(excess).collect()
}

/// The update strategy, reduced to what [`plan`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strategy {
    /// The first ordinal (`spec.ordinals.start`).
    pub start: i32,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `podManagementPolicy: Parallel`.
    pub parallel: bool,
    /// `updateStrategy.type: OnDelete`.
    pub on_delete: bool,
    /// `rollingUpdate.partition`: pods below it keep the current revision.
    pub partition: i32,
    /// `rollingUpdate.maxUnavailable`, as a count, when set.
    pub max_unavailable: Option<i32>,
    /// New pods with an ordinal below this get the current revision, the others the update
    /// revision.
    pub current_below: i32,
}

impl Strategy {
    /// The strategy of a set.
    pub fn of(set: &StatefulSet) -> Strategy {
        let spec = set.spec.clone().unwrap_or_default();
        let start = spec.ordinals.and_then(|o| o.start).unwrap_or(0);
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let strategy = spec.update_strategy.unwrap_or_default();
        let on_delete = strategy.type_.as_deref() == Some("OnDelete");
        let rolling = strategy.rolling_update.filter(|_| !on_delete);
        let partition = rolling
            .as_ref()
            .and_then(|r| r.partition)
            .unwrap_or(0)
            .max(0);
        let max_unavailable = rolling
            .as_ref()
            .and_then(|r| r.max_unavailable.as_ref())
            .map(|v| scaled_value(Some(v), replicas, true, "1").max(1));
        let current_replicas = set
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0);
        let current_below = match (&rolling, on_delete) {
            (_, true) => i32::MIN,
            (Some(_), false) => start.saturating_add(partition),
            (None, false) => start.saturating_add(current_replicas),
        };
        Strategy {
            start,
            replicas,
            parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
            on_delete,
            partition,
            max_unavailable,
            current_below,
        }
    }

    /// Whether an ordinal is beyond the set's range.
    pub fn scaled_down(&self, ordinal: i32) -> bool {
        ordinal < self.start || ordinal >= self.start.saturating_add(self.replicas)
    }
}

/// A pod of the set, as [`plan`] sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// Its ordinal.
    pub ordinal: i32,
    /// The revision it belongs to.
    pub revision: String,
    /// Its phase.
    pub phase: String,
    /// Running with `Ready` true.
    pub running_ready: bool,
    /// Ready for `minReadySeconds`.
    pub available: bool,
    /// Being deleted.
    pub terminating: bool,
    /// Identity, volumes and claim owners as they should be.
    pub consistent: bool,
    /// Some of its claims do not exist.
    pub claims_missing: bool,
}

/// One action of a sync, on an ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete a failed (or succeeded) pod; the next sync creates it again.
    Recreate(i32),
    /// Create the pod, after its claims.
    Create(i32),
    /// Create the missing claims of a pending pod.
    CreateClaims(i32),
    /// Restore a pod's identity and claims.
    Repair(i32),
    /// Fix the claim owners of a pod about to be scaled away.
    RepairCondemned(i32),
    /// Delete a pod beyond the replica range.
    Condemn(i32),
    /// Delete a pod not at the update revision.
    Update(i32),
}

fn is_finished(member: &Member) -> bool {
    matches!(member.phase.as_str(), "Failed" | "Succeeded")
}

/// This round's steps, in order, as upstream's `updateStatefulSet` would take them: stop at
/// the first step `OrderedReady` must wait after.
pub fn plan(strategy: &Strategy, members: &[Member], update: &str) -> Vec<Step> {
    let monotonic = !strategy.parallel;
    let count = usize::try_from(strategy.replicas).unwrap_or(0);
    let mut slots: Vec<Option<&Member>> = vec![None; count];
    let mut condemned: Vec<&Member> = Vec::new();
    for member in members {
        match usize::try_from(member.ordinal - strategy.start) {
            Ok(index) if index < count => slots[index] = Some(member),
            _ => condemned.push(member),
        }
    }
    condemned.sort_by_key(|m| Reverse(m.ordinal));
    let healthy = |m: &Member| m.running_ready && !m.terminating;
    let first_unhealthy = slots
        .iter()
        .enumerate()
        .find(|(_, slot)| !slot.is_some_and(healthy))
        .map(|(i, _)| strategy.start + i32::try_from(i).unwrap_or(0))
        .or_else(|| {
            condemned
                .iter()
                .rev()
                .find(|m| !healthy(m))
                .map(|m| m.ordinal)
        });
    let mut steps = Vec::new();
    // What each slot holds after the first pass: the pods just created or deleted are not
    // healthy, and not for the rolling update to touch.
    let mut states: Vec<Option<&Member>> = Vec::with_capacity(count);
    for (index, slot) in slots.iter().enumerate() {
        let ordinal = strategy.start + i32::try_from(index).unwrap_or(0);
        match slot {
            Some(member) if is_finished(member) && !member.terminating => {
                steps.push(Step::Recreate(ordinal));
                states.push(None);
                if monotonic {
                    return steps;
                }
            }
            None => {
                steps.push(Step::Create(ordinal));
                states.push(None);
                if monotonic {
                    return steps;
                }
            }
            Some(member) => {
                states.push(Some(member));
                if member.phase == "Pending" && member.claims_missing {
                    steps.push(Step::CreateClaims(ordinal));
                }
                if monotonic && (member.terminating || !member.running_ready || !member.available) {
                    return steps;
                }
                if !member.consistent {
                    steps.push(Step::Repair(ordinal));
                }
            }
        }
    }
    for member in &condemned {
        if !member.consistent && !member.terminating {
            steps.push(Step::RepairCondemned(member.ordinal));
        }
    }
    for member in &condemned {
        if member.terminating {
            if monotonic {
                return steps;
            }
            continue;
        }
        let unhealthy = !member.running_ready || !member.available;
        if monotonic && unhealthy && first_unhealthy != Some(member.ordinal) {
            return steps;
        }
        steps.push(Step::Condemn(member.ordinal));
        if monotonic {
            return steps;
        }
    }
    if strategy.on_delete {
        return steps;
    }
    let from = usize::try_from(strategy.partition).unwrap_or(0).min(count);
    let outdated =
        |slot: &Option<&Member>| slot.is_some_and(|m| !m.terminating && m.revision != update);
    if let Some(max_unavailable) = strategy.max_unavailable {
        let unavailable = states
            .iter()
            .filter(|s| !s.is_some_and(|m| m.available && !m.terminating))
            .count();
        let mut room = usize::try_from(max_unavailable)
            .unwrap_or(0)
            .saturating_sub(unavailable);
        for (index, slot) in states.iter().enumerate().skip(from).rev() {
            if room == 0 {
                break;
            }
            if outdated(slot) {
                steps.push(Step::Update(
                    strategy.start + i32::try_from(index).unwrap_or(0),
                ));
                room -= 1;
            }
        }
        return steps;
    }
    for (index, slot) in states.iter().enumerate().skip(from).rev() {
        if outdated(slot) {
            steps.push(Step::Update(
                strategy.start + i32::try_from(index).unwrap_or(0),
            ));
            return steps;
        }
        if !slot.is_some_and(|m| healthy(m) && !is_finished(m)) {
            return steps;
        }
    }
    steps
}

/// The replica counts of a set's pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// Pods.
    pub replicas: i32,
    /// Running and ready.
    pub ready: i32,
    /// Running and available.
    pub available: i32,
    /// At the current revision (not terminating).
    pub current: i32,
    /// At the update revision (not terminating).
    pub updated: i32,
}

/// Upstream's `computeReplicaStatus`.
pub fn count_replicas(members: &[Member], current: &str, update: &str) -> ReplicaCounts {
    let mut counts = ReplicaCounts::default();
    for member in members {
        counts.replicas += 1;
        if member.running_ready {
            counts.ready += 1;
            if member.available {
                counts.available += 1;
            }
        }
        if !member.terminating {
            if member.revision == current {
                counts.current += 1;
            }
            if member.revision == update {
                counts.updated += 1;
            }
        }
    }
    counts
}

/// Moves the current/updated counts for a pod of `revision` created (+1) or deleted (-1).
fn adjust(status: &mut StatefulSetStatus, revision: &str, current: &str, update: &str, by: i32) {
    if revision == current {
        status.current_replicas = Some(status.current_replicas.unwrap_or(0) + by);
    }
    if revision == update {
        status.updated_replicas = Some(status.updated_replicas.unwrap_or(0) + by);
    }
}

/// Once every pod is updated and ready, the update revision becomes the current one.
fn complete_rolling_update(strategy: &Strategy, status: &mut StatefulSetStatus) {
    let updated = status.updated_replicas.unwrap_or(0);
    if !strategy.on_delete
        && updated == status.replicas
        && status.ready_replicas.unwrap_or(0) == status.replicas
    {
        status.current_replicas = Some(updated);
        status.current_revision = status.update_revision.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

    fn set(extra: Value) -> StatefulSet {
        let mut spec = json!({
            "replicas": 3,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "main", "image": "nginx"}],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"]},
            }],
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn member(ordinal: i32, revision: &str, healthy: bool) -> Member {
        Member {
            ordinal,
            revision: revision.into(),
            phase: if healthy { "Running" } else { "Pending" }.into(),
            running_ready: healthy,
            available: healthy,
            terminating: false,
            consistent: true,
            claims_missing: false,
        }
    }

    fn strategy(replicas: i32) -> Strategy {
        Strategy {
            start: 0,
            replicas,
            parallel: false,
            on_delete: false,
            partition: 0,
            max_unavailable: None,
            current_below: 0,
        }
    }

    #[test]
    fn pod_names_parse_into_parent_and_ordinal() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web-"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None);
    }

    #[test]
    fn new_pods_carry_identity_storage_and_revision() {
        let set = set(json!({}));
        let template = set.spec.as_ref().unwrap().template.clone();
        let pod = new_pod(&set, &template, 2, "web-abc");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[REVISION_HASH_LABEL], "web-abc");
        let spec = pod.spec.clone().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].name, "data");
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "data-web-2"
        );
        assert_eq!(volumes[1].name, "scratch");
        assert!(identity_matches(&set, &pod));
        assert!(storage_matches(&set, &pod));
        let claims = claims_for(&set, 2);
        assert_eq!(claims[0].1.metadata.labels.as_ref().unwrap()["app"], "web");
    }

    #[test]
    fn ordered_ready_creates_in_order_and_waits() {
        let s = strategy(3);
        assert_eq!(plan(&s, &[], "r1"), [Step::Create(0)]);
        assert_eq!(plan(&s, &[member(0, "r1", false)], "r1"), []);
        assert_eq!(plan(&s, &[member(0, "r1", true)], "r1"), [Step::Create(1)]);
        let parallel = Strategy {
            parallel: true,
            ..strategy(3)
        };
        assert_eq!(
            plan(&parallel, &[member(0, "r1", false)], "r1"),
            [Step::Create(1), Step::Create(2)]
        );
    }

    #[test]
    fn scale_down_goes_from_the_highest_ordinal_one_at_a_time() {
        let s = strategy(1);
        let all = [
            member(0, "r1", true),
            member(1, "r1", true),
            member(2, "r1", true),
        ];
        assert_eq!(plan(&s, &all, "r1"), [Step::Condemn(2)]);
        let mut terminating = all.clone();
        terminating[2].terminating = true;
        assert_eq!(plan(&s, &terminating, "r1"), []);
        // An unhealthy pod in range blocks scale down.
        let mut sick = all.clone();
        sick[0].running_ready = false;
        assert_eq!(plan(&s, &sick, "r1"), []);
        let parallel = Strategy {
            parallel: true,
            ..strategy(1)
        };
        assert_eq!(
            plan(&parallel, &all, "r1"),
            [Step::Condemn(2), Step::Condemn(1)]
        );
    }

    #[test]
    fn rolling_updates_respect_the_partition() {
        let old = [
            member(0, "r1", true),
            member(1, "r1", true),
            member(2, "r1", true),
        ];
        assert_eq!(plan(&strategy(3), &old, "r2"), [Step::Update(2)]);
        // The updated pod must be healthy before the next one goes.
        let mut rolling = old.clone();
        rolling[2] = member(2, "r2", false);
        assert_eq!(plan(&strategy(3), &rolling, "r2"), []);
        rolling[2] = member(2, "r2", true);
        assert_eq!(plan(&strategy(3), &rolling, "r2"), [Step::Update(1)]);
        let partitioned = Strategy {
            partition: 2,
            ..strategy(3)
        };
        assert_eq!(plan(&partitioned, &rolling, "r2"), []);
        let on_delete = Strategy {
            on_delete: true,
            ..strategy(3)
        };
        assert_eq!(plan(&on_delete, &old, "r2"), []);
        let wide = Strategy {
            max_unavailable: Some(2),
            ..strategy(3)
        };
        assert_eq!(plan(&wide, &old, "r2"), [Step::Update(2), Step::Update(1)]);
    }

    #[test]
    fn failed_pods_are_recreated() {
        let mut pods = [member(0, "r1", true), member(1, "r1", false)];
        pods[1].phase = "Failed".into();
        assert_eq!(plan(&strategy(2), &pods, "r1"), [Step::Recreate(1)]);
    }

    #[test]
    fn new_pods_below_the_partition_keep_the_current_revision() {
        let mut set = set(json!({"updateStrategy": {
            "type": "RollingUpdate", "rollingUpdate": {"partition": 2},
        }}));
        assert_eq!(Strategy::of(&set).current_below, 2);
        set.spec.as_mut().unwrap().update_strategy =
            Some(serde_json::from_value(json!({"type": "OnDelete"})).unwrap());
        assert_eq!(Strategy::of(&set).current_below, i32::MIN);
    }

    #[test]
    fn status_counts_revisions_and_readiness() {
        let mut members = vec![
            member(0, "r2", true),
            member(1, "r1", true),
            member(2, "r1", false),
        ];
        members[2].terminating = true;
        assert_eq!(
            count_replicas(&members, "r1", "r2"),
            ReplicaCounts {
                replicas: 3,
                ready: 2,
                available: 2,
                current: 1,
                updated: 1,
            }
        );
    }

    fn revision(name: &str, number: i64, image: &str) -> Arc<ControllerRevision> {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"containers": [{"name": "main", "image": image}]},
        }))
        .unwrap();
        Arc::new(ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(history::template_patch(&template))),
            revision: number,
        })
    }

    #[test]
    fn the_update_revision_is_reused_on_rollback() {
        let revisions = vec![revision("a", 1, "v1"), revision("b", 2, "v2")];
        let data = |image: &str| data_for(image);
        assert_eq!(
            choose_update_revision(&revisions, &data("v2")),
            UpdateRevision::Latest(1)
        );
        assert_eq!(
            choose_update_revision(&revisions, &data("v1")),
            UpdateRevision::Reuse(0)
        );
        assert_eq!(
            choose_update_revision(&revisions, &data("v3")),
            UpdateRevision::Create
        );
        let live: HashSet<String> = ["b".to_owned()].into();
        let names: Vec<_> = revisions_to_truncate(&revisions, &live, 0)
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a"]);
        assert!(revisions_to_truncate(&revisions, &live, 1).is_empty());
    }

    fn data_for(image: &str) -> Value {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "spec": {"containers": [{"name": "main", "image": image}]},
        }))
        .unwrap();
        history::template_patch(&template)
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web-1".into()),
                uid: Some("pod-uid".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let claim = |refs: Vec<OwnerReference>| PersistentVolumeClaim {
            metadata: ObjectMeta {
                owner_references: Some(refs),
                ..ObjectMeta::default()
            },
            ..PersistentVolumeClaim::default()
        };
        let policy = |deleted: &str, scaled: &str| {
            set(json!({"persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": deleted, "whenScaled": scaled,
            }}))
        };
        let uids = |refs: Option<Vec<OwnerReference>>| -> Option<Vec<String>> {
            refs.map(|r| r.into_iter().map(|r| r.uid).collect())
        };
        let retain = policy("Retain", "Retain");
        assert_eq!(claim_owners(&claim(vec![]), &retain, &pod, false), None);
        let on_delete = policy("Delete", "Retain");
        assert_eq!(
            uids(claim_owners(&claim(vec![]), &on_delete, &pod, false)),
            Some(vec!["set-uid".into()])
        );
        assert_eq!(
            claim_owners(
                &claim(vec![controller_ref(&on_delete)]),
                &on_delete,
                &pod,
                false
            ),
            None
        );
        let on_scale = policy("Retain", "Delete");
        assert_eq!(claim_owners(&claim(vec![]), &on_scale, &pod, false), None);
        assert_eq!(
            uids(claim_owners(&claim(vec![]), &on_scale, &pod, true)),
            Some(vec!["pod-uid".into()])
        );
        let both = policy("Delete", "Delete");
        assert_eq!(
            uids(claim_owners(
                &claim(vec![controller_ref(&both)]),
                &both,
                &pod,
                true
            )),
            Some(vec!["pod-uid".into()])
        );
        // Back to Retain: our references go.
        assert_eq!(
            uids(claim_owners(
                &claim(vec![controller_ref(&both)]),
                &retain,
                &pod,
                false
            )),
            Some(vec![])
        );
        // A reference to an earlier pod of the same name: left to the garbage collector.
        let mut stale = pod_ref(&pod);
        stale.uid = "old-uid".into();
        assert_eq!(
            claim_owners(&claim(vec![stale]), &on_scale, &pod, true),
            None
        );
    }
}

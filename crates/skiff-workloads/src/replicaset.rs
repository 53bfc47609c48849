//! The ReplicaSet and ReplicationController controllers (one implementation over
//! [`ReplicaKind`]): keep `spec.replicas` active pods matching the selector, adopting orphans
//! and releasing pods that stopped matching, and report counts in `.status`.
//!
//! Following upstream's replica set controller: pods are created from the template with
//! `generateName: <name>-` and a controller owner reference, in slow-start batches (1, 2, 4,
//! ...) that stop at the first failure; surplus pods are deleted in the order upstream ranks
//! them (unscheduled, pending, not ready, cheaper to delete, crowded nodes, ready for less
//! time, restarted more, newer first); finished pods and pods being deleted are not counted;
//! [`Expectations`] hold back further creates and deletes until the cache has caught up.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::join_all;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::events::{self, Recorder};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::util::{
    availability_recheck, controller_of, controller_ref, is_deleting, is_pod_active,
    is_pod_available, is_pod_ready, key, key_of, labels_of, pod_ready_since, selector_is_empty,
    selector_matches, split_key,
};

/// Upstream's cap on pods created or deleted in one sync.
const BURST_REPLICAS: usize = 500;

/// A kind that keeps a number of pod replicas: ReplicaSet or ReplicationController.
pub trait ReplicaKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// `spec.replicas` (default 1).
    fn desired(&self) -> i32;
    /// The selector, as a label selector.
    fn selector(&self) -> Option<LabelSelector>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The current `.status`, in the shape both kinds share.
    fn replica_status(&self) -> ReplicaStatus;
}

/// The status fields ReplicaSet and ReplicationController have in common.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    /// Active pods claimed.
    pub replicas: i32,
    /// Of those, pods with all the template's labels.
    pub fully_labeled_replicas: i32,
    /// Of those, ready pods.
    pub ready_replicas: i32,
    /// Of those, pods ready for at least `minReadySeconds`.
    pub available_replicas: i32,
    /// The generation this status reflects.
    pub observed_generation: i64,
    /// Conditions (only `ReplicaFailure` is written).
    pub conditions: Option<Vec<ReplicaCondition>>,
}

/// A ReplicaSet or ReplicationController condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaCondition {
    /// The condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A machine-readable reason.
    pub reason: Option<String>,
    /// A human-readable message.
    pub message: Option<String>,
    /// When the status last changed.
    pub last_transition_time: Option<Time>,
}

impl ReplicaKind for ReplicaSet {
    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn replica_status(&self) -> ReplicaStatus {
        let Some(status) = &self.status else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: status.replicas,
            fully_labeled_replicas: status.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: status.ready_replicas.unwrap_or(0),
            available_replicas: status.available_replicas.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            conditions: status.conditions.as_ref().map(|conditions| {
                conditions
                    .iter()
                    .map(|c| ReplicaCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
        }
    }
}

impl ReplicaKind for ReplicationController {
    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        let spec = self.spec.as_ref()?;
        let labels = spec.selector.clone().or_else(|| {
            spec.template
                .as_ref()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.clone())
        })?;
        Some(LabelSelector {
            match_labels: Some(labels),
            match_expressions: None,
        })
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn replica_status(&self) -> ReplicaStatus {
        let Some(status) = &self.status else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: status.replicas,
            fully_labeled_replicas: status.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: status.ready_replicas.unwrap_or(0),
            available_replicas: status.available_replicas.unwrap_or(0),
            observed_generation: status.observed_generation.unwrap_or(0),
            conditions: status.conditions.as_ref().map(|conditions| {
                conditions
                    .iter()
                    .map(|c| ReplicaCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            }),
        }
    }
}

/// The controller for one [`ReplicaKind`].
pub struct ReplicaController<K: ReplicaKind> {
    client: Client,
    recorder: Recorder,
    objects: Store<K>,
    pods: Store<Pod>,
    queue: Arc<Queue>,
    expectations: Expectations,
}

fn owned_by<K: ReplicaKind>(pod: &Pod) -> Option<&str> {
    controller_of(pod)
        .filter(|r| r.kind == K::kind(&()) && r.api_version == K::api_version(&()))
        .map(|r| r.name.as_str())
}

impl<K: ReplicaKind> ReplicaController<K> {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        objects: &Informer<K>,
        pods: &Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let component = if K::kind(&()) == "ReplicaSet" {
            "replicaset-controller"
        } else {
            "replication-controller"
        };
        let controller = Arc::new(ReplicaController {
            recorder: Recorder::new(client.clone(), component),
            client,
            objects: objects.store(),
            pods: pods.store(),
            queue: Queue::new(shutdown),
            expectations: Expectations::default(),
        });
        let c = Arc::clone(&controller);
        objects.on_change(move |change| match change {
            Change::Applied(object) => c.queue.add(key_of(object)),
            Change::Deleted(object) => {
                c.expectations.forget(&key_of(object));
                c.queue.add(key_of(object));
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

    fn enqueue_all(&self) {
        for object in self.objects.state() {
            self.queue.add(key_of(object.as_ref()));
        }
    }

    fn pod_changed(&self, pod: &Pod, deleted: bool) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let gone = deleted || is_deleting(pod);
        self.expectations.observe(&key_of(pod), gone);
        if let Some(owner) = owned_by::<K>(pod) {
            let owner_key = key(namespace, owner);
            self.queue.add(owner_key.clone());
            let min_ready = self
                .objects
                .get(&ObjectRef::new(owner).within(namespace))
                .map_or(0, |o| o.min_ready_seconds());
            if let Some(delay) = availability_recheck(pod, gone, min_ready) {
                self.queue.add_after(owner_key, delay);
            }
        } else if controller_of(pod).is_none() && !gone {
            let labels = labels_of(pod);
            for object in self.objects.state() {
                if object.meta().namespace.as_deref() == Some(namespace)
                    && object
                        .selector()
                        .is_some_and(|s| selector_matches(&s, &labels))
                {
                    self.queue.add(key_of(object.as_ref()));
                }
            }
        }
    }

    /// Processes keys with `workers` concurrent workers until the queue shuts down.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let queue = Arc::clone(&self.queue);
        queue
            .run_workers(workers, K::kind(&()), move |key| {
                let controller = Arc::clone(&self);
                async move { controller.sync(&key).await }
            })
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(key);
        let Some(object) = self.objects.get(&ObjectRef::new(name).within(namespace)) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let Some(selector) = object.selector().filter(|s| !selector_is_empty(s)) else {
            tracing::warn!(kind = %K::kind(&()), %key, "no selector; not managing pods");
            return Ok(None);
        };
        let needs_sync = self.expectations.satisfied(key, &self.pods);
        let pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace) && is_pod_active(p))
            .collect();
        let claimed = claim(&self.client, object.as_ref(), &selector, pods, |_| true)
            .await
            .context("claiming pods")?;
        let mut manage_error = None;
        if needs_sync && !is_deleting(object.as_ref()) {
            manage_error = self.manage_replicas(key, &object, &claimed).await.err();
        }
        let status = calculate_status(object.as_ref(), &claimed, manage_error.as_ref());
        self.update_status(object.as_ref(), &status).await?;
        if let Some(error) = manage_error {
            return Err(error);
        }
        let min_ready = object.min_ready_seconds();
        if !needs_sync {
            return Ok(Some(Duration::from_secs(1)));
        }
        if min_ready > 0
            && status.ready_replicas == object.desired()
            && status.available_replicas != object.desired()
        {
            return Ok(Some(Duration::from_secs(
                u64::try_from(min_ready).unwrap_or(0),
            )));
        }
        Ok(None)
    }

    async fn manage_replicas(&self, key: &str, object: &K, pods: &[Arc<Pod>]) -> Result<()> {
        let desired = usize::try_from(object.desired()).unwrap_or(0);
        let namespace = object.meta().namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        if pods.len() < desired {
            let template = object
                .template()
                .context("the object has no pod template")?;
            let pod = pod_from_template(object, template);
            let mut remaining = (desired - pods.len()).min(BURST_REPLICAS);
            let mut batch = 1;
            while remaining > 0 {
                let size = batch.min(remaining);
                let params = PostParams::default();
                let results = join_all((0..size).map(|_| api.create(&params, &pod))).await;
                let mut failure = None;
                for result in results {
                    match result {
                        Ok(created) => {
                            self.expectations.expect_add(key, key_of(&created));
                            let name = created.metadata.name.as_deref().unwrap_or_default();
                            let message = format!("Created pod: {name}");
                            self.recorder
                                .record(object, events::NORMAL, "SuccessfulCreate", &message)
                                .await;
                        }
                        Err(error) => failure = Some(error),
                    }
                }
                if let Some(error) = failure {
                    let message = format!("Error creating: {error}");
                    self.recorder
                        .record(object, events::WARNING, "FailedCreate", &message)
                        .await;
                    return Err(error).context("creating pods");
                }
                remaining -= size;
                batch = size * 2;
            }
        } else if pods.len() > desired {
            let surplus = (pods.len() - desired).min(BURST_REPLICAS);
            let related = self.related_pods(object);
            let doomed = pods_to_delete(pods, &related, surplus);
            for pod in &doomed {
                self.expectations.expect_delete(key, key_of(pod.as_ref()));
            }
            let results = join_all(doomed.iter().map(|pod| {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api = api.clone();
                async move { (api.delete(&name, &Default::default()).await, pod) }
            }))
            .await;
            let mut failure = None;
            for (result, pod) in results {
                match result {
                    Ok(_) => {
                        let name = pod.metadata.name.as_deref().unwrap_or_default();
                        let message = format!("Deleted pod: {name}");
                        self.recorder
                            .record(object, events::NORMAL, "SuccessfulDelete", &message)
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
            if let Some(error) = failure {
                return Err(error).context("deleting pods");
            }
        }
        Ok(())
    }

    /// Active pods of this object's siblings (objects with the same controller, e.g. the
    /// other ReplicaSets of a Deployment), for ranking pods by how crowded their node is.
    fn related_pods(&self, object: &K) -> Vec<Arc<Pod>> {
        let Some(owner) = controller_of(object).map(|r| r.uid.clone()) else {
            return Vec::new();
        };
        let namespace = object.meta().namespace.as_deref();
        let siblings: Vec<String> = self
            .objects
            .state()
            .iter()
            .filter(|o| {
                o.meta().namespace.as_deref() == namespace
                    && controller_of(o.as_ref()).is_some_and(|r| r.uid == owner)
            })
            .filter_map(|o| o.meta().uid.clone())
            .collect();
        self.pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == namespace
                    && is_pod_active(p)
                    && controller_of(p.as_ref()).is_some_and(|r| siblings.contains(&r.uid))
            })
            .collect()
    }

    async fn update_status(&self, object: &K, status: &ReplicaStatus) -> Result<()> {
        if object.replica_status() == *status {
            return Ok(());
        }
        let namespace = object.meta().namespace.as_deref().unwrap_or_default();
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let mut body = serde_json::to_value(status)?;
        if status.conditions.is_none() {
            body["conditions"] = serde_json::Value::Null;
        }
        api.patch_status(
            object.meta().name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": body })),
        )
        .await
        .context("updating status")?;
        Ok(())
    }
}

/// Whether a client error is a 404.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// A new pod for `object`: the template's metadata and spec, `generateName: <name>-`, and a
/// controller reference.
fn pod_from_template<K: ReplicaKind>(object: &K, template: &PodTemplateSpec) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!(
                "{}-",
                object.meta().name.as_deref().unwrap_or_default()
            )),
            namespace: object.meta().namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref(object)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The status the pods give: counts, and a `ReplicaFailure` condition while creating or
/// deleting pods fails.
fn calculate_status<K: ReplicaKind>(
    object: &K,
    pods: &[Arc<Pod>],
    manage_error: Option<&anyhow::Error>,
) -> ReplicaStatus {
    let template_labels: BTreeMap<String, String> = object
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let now = Timestamp::now();
    let mut status = ReplicaStatus {
        replicas: i32::try_from(pods.len()).unwrap_or(i32::MAX),
        observed_generation: object.meta().generation.unwrap_or(0),
        ..ReplicaStatus::default()
    };
    for pod in pods {
        let labels = labels_of(pod.as_ref());
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            status.fully_labeled_replicas += 1;
        }
        if is_pod_ready(pod) {
            status.ready_replicas += 1;
            if is_pod_available(pod, object.min_ready_seconds(), now) {
                status.available_replicas += 1;
            }
        }
    }
    let mut conditions = object.replica_status().conditions.unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(error) if !has_failure => {
            let reason = if pods.len() < usize::try_from(object.desired()).unwrap_or(0) {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            conditions.push(ReplicaCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(format!("{error:#}")),
                last_transition_time: Some(crate::util::now()),
            });
        }
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    status
}

/// The `count` pods to delete first, in upstream's order.
fn pods_to_delete(pods: &[Arc<Pod>], related: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in pods.iter().chain(related) {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<_> = pods
        .iter()
        .map(|pod| {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
            let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                Some("Pending") | None => 0,
                Some("Unknown") => 1,
                Some("Running") => 2,
                Some(_) => 3,
            };
            let cost: i64 = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let rank = node.map_or(0, |n| per_node.get(n).copied().unwrap_or(0));
            let ready_since = pod_ready_since(pod).flatten();
            let restarts = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map_or(0, |cs| {
                    cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
                });
            let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let sort_key = (
                node.is_some(),
                phase,
                is_pod_ready(pod),
                cost,
                Reverse(rank),
                ready_since.is_some(),
                Reverse(ready_since),
                Reverse(restarts),
                created.is_some(),
                Reverse(created),
            );
            (sort_key, pod)
        })
        .collect();
    ranked.sort_by_key(|(key, _)| *key);
    ranked
        .into_iter()
        .take(count)
        .map(|(_, pod)| Arc::clone(pod))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
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

    #[test]
    fn unscheduled_and_unready_pods_are_deleted_first() {
        let pods = vec![
            pod("ready", Some("n1"), "Running", true),
            pod("unready", Some("n1"), "Running", false),
            pod("pending", Some("n2"), "Pending", false),
            pod("unscheduled", None, "Pending", false),
        ];
        let names: Vec<_> = pods_to_delete(&pods, &[], 3)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["unscheduled", "pending", "unready"]);
    }
}

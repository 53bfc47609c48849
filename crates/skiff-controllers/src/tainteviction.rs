//! Taint eviction (upstream's `pkg/controller/tainteviction`, the "NoExecute taint manager"):
//! a pod bound to a node with `NoExecute` taints it does not tolerate is deleted at once; a
//! pod that tolerates them all is deleted once the smallest `tolerationSeconds` of the
//! tolerations it uses has passed since the taints were first seen (tolerations without
//! `tolerationSeconds` tolerate forever). A pending deletion is cancelled when the taints go
//! or the pod stops being affected.
//!
//! Timers are queue entries: a pod waiting for eviction is queued again at its deadline and
//! re-examined then, so a cancelled timer simply finds nothing to do. Before deleting, the pod
//! gets the `DisruptionTarget` condition (`DeletionByTaintManager`), and a
//! `TaintManagerEviction` event is recorded, as upstream does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use skiff_workloads::informer::{Change, Informer};
use skiff_workloads::queue::Queue;
use skiff_workloads::util::{key_of, now, split_key};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use skiff_workloads::events::{self, Recorder};

/// The taint eviction controller.
pub struct TaintEviction {
    client: Client,
    nodes: Store<Node>,
    pods: Store<Pod>,
    queue: Arc<Queue>,
    recorder: Recorder,
    /// Each node's `NoExecute` taints as last seen, to queue its pods only when they change.
    node_taints: Mutex<HashMap<String, Vec<Taint>>>,
    /// Pods whose eviction is pending: when their tolerated taints were first seen.
    pending: Mutex<HashMap<String, Instant>>,
}

impl TaintEviction {
    /// Builds the controller over the given informers, registering its handlers.
    pub(crate) fn new(
        client: Client,
        nodes: &Informer<Node>,
        pods: &Informer<Pod>,
        shutdown: CancellationToken,
    ) -> Arc<TaintEviction> {
        let controller = Arc::new(TaintEviction {
            recorder: Recorder::new(client.clone(), "taint-eviction-controller"),
            client,
            nodes: nodes.store(),
            pods: pods.store(),
            queue: Queue::new(shutdown),
            node_taints: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        });
        let c = Arc::clone(&controller);
        nodes.on_change(move |change| match change {
            Change::Applied(node) => c.node_changed(&node.name_any(), no_execute_taints(node)),
            Change::Deleted(node) => c.node_changed(&node.name_any(), Vec::new()),
            Change::Resynced => {
                for node in c.nodes.state() {
                    c.node_changed(&node.name_any(), no_execute_taints(&node));
                }
            }
        });
        let c = Arc::clone(&controller);
        pods.on_change(move |change| match change {
            Change::Applied(pod) if node_of(pod).is_some() => c.queue.add(key_of(pod)),
            Change::Applied(_) => {}
            Change::Deleted(pod) => {
                lock(&c.pending).remove(&key_of(pod));
            }
            // Relisted: the node handler may have run before the pods were listed.
            Change::Resynced => {
                for pod in c.pods.state() {
                    if node_of(&pod).is_some() {
                        c.queue.add(key_of(pod.as_ref()));
                    }
                }
            }
        });
        controller
    }

    fn node_changed(&self, name: &str, taints: Vec<Taint>) {
        {
            let mut known = lock(&self.node_taints);
            if known.get(name).map_or(taints.is_empty(), |t| *t == taints) {
                return;
            }
            if taints.is_empty() {
                known.remove(name);
            } else {
                known.insert(name.to_owned(), taints);
            }
        }
        for pod in self.pods.state() {
            if node_of(&pod) == Some(name) {
                self.queue.add(key_of(pod.as_ref()));
            }
        }
    }

    /// Deletes the pod now, schedules its deletion, or cancels a scheduled one.
    async fn sync(&self, pod_key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(pod_key);
        let pod = self.pods.get(&ObjectRef::new(name).within(namespace));
        let taints = pod
            .as_ref()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .and_then(|p| node_of(p))
            .and_then(|node| self.nodes.get(&ObjectRef::new(node)))
            .map(|node| no_execute_taints(&node))
            .unwrap_or_default();
        let Some(pod) = pod.filter(|_| !taints.is_empty()) else {
            self.cancel(pod_key).await;
            return Ok(None);
        };
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let wait = match eviction_delay(&taints, &tolerations) {
            Eviction::Never => {
                self.cancel(pod_key).await;
                return Ok(None);
            }
            Eviction::Now => Duration::ZERO,
            Eviction::After(delay) => delay,
        };
        let since = *lock(&self.pending)
            .entry(pod_key.to_owned())
            .or_insert_with(Instant::now);
        let elapsed = since.elapsed();
        if elapsed < wait {
            return Ok(Some(wait - elapsed));
        }
        self.evict(&pod).await?;
        lock(&self.pending).remove(pod_key);
        Ok(None)
    }

    async fn cancel(&self, pod_key: &str) {
        if lock(&self.pending).remove(pod_key).is_none() {
            return;
        }
        let (namespace, name) = split_key(pod_key);
        if let Some(pod) = self.pods.get(&ObjectRef::new(name).within(namespace)) {
            let message = format!("Cancelling deletion of Pod {pod_key}");
            self.recorder
                .record(
                    pod.as_ref(),
                    events::NORMAL,
                    "TaintManagerEviction",
                    &message,
                )
                .await;
        }
    }

    /// Marks the pod as a disruption target and deletes it (gracefully).
    async fn evict(&self, pod: &Pod) -> Result<()> {
        let pod_key = key_of(pod);
        let name = pod.name_any();
        let api: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        tracing::info!(pod = %pod_key, "deleting a pod for a NoExecute taint");
        let condition = json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": now(),
        }]}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(error) => {
                tracing::info!(pod = %pod_key, %error, "adding the DisruptionTarget condition");
            }
        }
        let message = format!("Marking for deletion Pod {pod_key}");
        self.recorder
            .record(pod, events::NORMAL, "TaintManagerEviction", &message)
            .await;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(error).with_context(|| format!("deleting pod {pod_key}")),
        }
    }
}

impl crate::Reconcile for TaintEviction {
    const NAME: &'static str = "taint eviction";

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        TaintEviction::sync(self, key).await
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The node a pod is bound to.
fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// A node's `NoExecute` taints.
fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect()
}

/// What the taints mean for a pod with these tolerations.
#[derive(Debug, PartialEq, Eq)]
enum Eviction {
    /// A taint is not tolerated.
    Now,
    /// All are tolerated, the shortest for this long.
    After(Duration),
    /// All are tolerated forever.
    Never,
}

fn eviction_delay(taints: &[Taint], tolerations: &[Toleration]) -> Eviction {
    let mut shortest: Option<i64> = None;
    for taint in taints {
        let mut tolerated = false;
        for toleration in tolerations.iter().filter(|t| tolerates(t, taint)) {
            tolerated = true;
            if let Some(seconds) = toleration.toleration_seconds {
                shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
            }
        }
        if !tolerated {
            return Eviction::Now;
        }
    }
    match shortest {
        None => Eviction::Never,
        Some(seconds) => Eviction::After(Duration::from_secs(u64::try_from(seconds).unwrap_or(0))),
    }
}

/// Whether a toleration tolerates a taint (`Toleration.ToleratesTaint`): the effect matches
/// (an empty effect matches all), the key matches (an empty key with `Exists` matches all),
/// and for `Equal` (the default operator) the value matches.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            ..Taint::default()
        }
    }

    fn toleration(key: &str, operator: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.into()),
            operator: Some(operator.into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn eviction_follows_tolerations() {
        let unreachable = [taint("node.kubernetes.io/unreachable")];
        assert_eq!(eviction_delay(&unreachable, &[]), Eviction::Now);
        assert_eq!(
            eviction_delay(&unreachable, &[toleration("other", "Exists", None)]),
            Eviction::Now
        );
        assert_eq!(
            eviction_delay(
                &unreachable,
                &[toleration(
                    "node.kubernetes.io/unreachable",
                    "Exists",
                    Some(5)
                )]
            ),
            Eviction::After(Duration::from_secs(5))
        );
        // The shortest of the used tolerations wins; negative means now.
        assert_eq!(
            eviction_delay(
                &unreachable,
                &[
                    toleration("node.kubernetes.io/unreachable", "Exists", Some(300)),
                    toleration("", "Exists", Some(-1)),
                ]
            ),
            Eviction::After(Duration::ZERO)
        );
        assert_eq!(
            eviction_delay(&unreachable, &[toleration("", "Exists", None)]),
            Eviction::Never
        );
        // Every taint must be tolerated.
        let two = [taint("node.kubernetes.io/unreachable"), taint("x")];
        assert_eq!(
            eviction_delay(
                &two,
                &[toleration(
                    "node.kubernetes.io/unreachable",
                    "Exists",
                    Some(5)
                )]
            ),
            Eviction::Now
        );
    }

    #[test]
    fn equal_tolerations_compare_values_and_effects() {
        let mut t = taint("k");
        t.value = Some("v".into());
        let mut equal = toleration("k", "Equal", None);
        assert!(!tolerates(&equal, &t));
        equal.value = Some("v".into());
        assert!(tolerates(&equal, &t));
        equal.effect = Some("NoSchedule".into());
        assert!(!tolerates(&equal, &t));
        equal.effect = None;
        assert!(tolerates(&equal, &t));
    }
}

//! The disruption controller (upstream's `pkg/controller/disruption`): the status of every
//! PodDisruptionBudget, which the eviction subresource reads to allow or refuse evictions.
//!
//! For a budget over the pods its selector picks in its namespace (in `policy/v1` an empty
//! selector picks them all): `currentHealthy` counts Ready pods not being deleted and not
//! recently evicted (`disruptedPods`); `expectedPods` and `desiredHealthy` follow from
//! `minAvailable` or `maxUnavailable` — an integer `minAvailable` against the pods present, a
//! percentage or any `maxUnavailable` against the scale of the pods' controllers
//! (ReplicationController, ReplicaSet, Deployment through its ReplicaSets, StatefulSet: their
//! `spec.replicas`); `disruptionsAllowed = currentHealthy - desiredHealthy` (at least 0, and 0
//! when no pods are expected). The `DisruptionAllowed` condition says `SufficientPods` or
//! `InsufficientPods`, or `SyncFailed` when the controllers cannot be found (then no
//! disruption is allowed). Entries of `disruptedPods` are dropped once their pod is gone,
//! being deleted, or they are older than two minutes (the eviction never happened).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use skiff_workloads::informer::{Change, Informers};
use skiff_workloads::queue::Queue;
use skiff_workloads::util::{
    controller_of, is_pod_ready, key_of, now, scaled_value, selector_is_empty, selector_matches,
    split_key,
};
use tokio_util::sync::CancellationToken;

use crate::Config;

/// How long an entry of `disruptedPods` waits for its pod's deletion (upstream's
/// `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// The condition type.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";

/// Workers of the disruption controller.
const WORKERS: usize = 2;

/// Runs the disruption controller until `shutdown`.
pub async fn run(informers: Informers, config: Config, shutdown: CancellationToken) -> Result<()> {
    let client = informers.client().clone();
    let budgets = informers.all::<PodDisruptionBudget>();
    let pods = informers.all::<Pod>();
    let controller = Arc::new(DisruptionController {
        client,
        budgets: budgets.store(),
        pods: pods.store(),
        queue: Queue::new(shutdown.clone()),
    });
    let c = Arc::clone(&controller);
    budgets.on_change(move |change| match change {
        Change::Applied(pdb) | Change::Deleted(pdb) => c.queue.add(key_of(pdb)),
        Change::Resynced => c.enqueue_all(),
    });
    let c = Arc::clone(&controller);
    pods.on_change(move |change| match change {
        Change::Applied(pod) | Change::Deleted(pod) => c.pod_changed(pod),
        Change::Resynced => c.enqueue_all(),
    });
    crate::wait_ready(&controller.budgets, &shutdown).await;
    crate::wait_ready(&controller.pods, &shutdown).await;
    tracing::info!("disruption controller started");
    let resync = crate::every(config.disruption_resync_interval, &shutdown, || {
        controller.enqueue_all()
    });
    tokio::join!(crate::work(Arc::clone(&controller), WORKERS), resync);
    Ok(())
}

/// The disruption controller.
struct DisruptionController {
    client: Client,
    budgets: Store<PodDisruptionBudget>,
    pods: Store<Pod>,
    queue: Arc<Queue>,
}

impl DisruptionController {
    fn enqueue_all(&self) {
        for pdb in self.budgets.state() {
            self.queue.add(key_of(pdb.as_ref()));
        }
    }

    fn pod_changed(&self, pod: &Pod) {
        let namespace = pod.namespace();
        let labels = pod.labels();
        for pdb in self.budgets.state() {
            if pdb.namespace() == namespace && selects(&pdb, labels) {
                self.queue.add(key_of(pdb.as_ref()));
            }
        }
    }

    async fn sync(&self, pdb_key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(pdb_key);
        let Some(pdb) = self.budgets.get(&ObjectRef::new(name).within(namespace)) else {
            return Ok(None);
        };
        if pdb.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let mut pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(namespace) && selects(&pdb, p.labels()))
            .collect();
        pods.sort_by_key(|p| p.name_any());
        let now = Timestamp::now();
        let (disrupted, recheck) = disrupted_pods(&pdb, &pods, now);
        let status = match self.expected(&pdb, &pods).await {
            Ok((expected, desired)) => {
                let healthy = pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter(|p| !disrupted.contains_key(&p.name_any()))
                    .filter(|p| is_pod_ready(p))
                    .count();
                computed_status(
                    &pdb,
                    i32::try_from(healthy).unwrap_or(i32::MAX),
                    desired,
                    expected,
                    disrupted,
                )
            }
            Err(error) => {
                tracing::info!(pdb = %pdb_key, "disruption budget sync failed: {error:#}");
                failed_status(&pdb, &error.to_string(), disrupted)
            }
        };
        if pdb.status.as_ref() != Some(&status) {
            // A replace, not a merge patch: entries dropped from `disruptedPods` must go.
            let mut updated = (*pdb).clone();
            updated.status = Some(status);
            Api::<PodDisruptionBudget>::namespaced(self.client.clone(), namespace)
                .replace_status(name, &PostParams::default(), &updated)
                .await
                .with_context(|| format!("updating the status of {pdb_key}"))?;
        }
        Ok(recheck)
    }

    /// `(expectedPods, desiredHealthy)` of a budget.
    async fn expected(&self, pdb: &PodDisruptionBudget, pods: &[Arc<Pod>]) -> Result<(i32, i32)> {
        let spec = pdb.spec.clone().unwrap_or_default();
        if let Some(max_unavailable) = &spec.max_unavailable {
            let expected = self.expected_scale(pods).await?;
            let unavailable = scaled_value(Some(max_unavailable), expected, true, "0");
            return Ok((expected, (expected - unavailable).max(0)));
        }
        match &spec.min_available {
            Some(IntOrString::Int(min)) => {
                Ok((i32::try_from(pods.len()).unwrap_or(i32::MAX), *min))
            }
            Some(percent @ IntOrString::String(_)) => {
                let expected = self.expected_scale(pods).await?;
                Ok((expected, scaled_value(Some(percent), expected, true, "0")))
            }
            None => Ok((0, 0)),
        }
    }

    /// The summed scale of the pods' controllers, each counted once (`getExpectedScale`).
    async fn expected_scale(&self, pods: &[Arc<Pod>]) -> Result<i32> {
        // The pod's owner → the controller whose scale counts (a ReplicaSet's Deployment).
        let mut counted_as: HashMap<String, String> = HashMap::new();
        let mut scales: HashMap<String, i32> = HashMap::new();
        for pod in pods {
            let Some(owner) = controller_of(pod.as_ref()) else {
                return Err(anyhow!(
                    "found no controller ref for pod {:?}",
                    pod.name_any()
                ));
            };
            if counted_as.contains_key(&owner.uid) {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let (uid, scale) = self
                .controller_scale(&namespace, &owner.kind, &owner.name, &owner.uid)
                .await?
                .ok_or_else(|| anyhow!("found no controllers for pod {:?}", pod.name_any()))?;
            counted_as.insert(owner.uid.clone(), uid.clone());
            scales.insert(uid, scale);
        }
        Ok(scales.values().fold(0i32, |sum, s| sum.saturating_add(*s)))
    }

    /// `(uid, replicas)` of the controller whose scale counts for a pod owned by
    /// `kind/name`: the Deployment for a ReplicaSet a Deployment controls.
    async fn controller_scale(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        uid: &str,
    ) -> Result<Option<(String, i32)>> {
        let client = self.client.clone();
        let found = match kind {
            "ReplicaSet" => {
                let Some(rs) = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
                    .get_opt(name)
                    .await?
                else {
                    return Ok(None);
                };
                if rs.uid().as_deref() != Some(uid) {
                    return Ok(None);
                }
                match controller_of(&rs).filter(|r| r.kind == "Deployment") {
                    Some(owner) => {
                        let Some(d) = Api::<Deployment>::namespaced(client, namespace)
                            .get_opt(&owner.name)
                            .await?
                        else {
                            return Ok(None);
                        };
                        if d.uid().as_deref() != Some(owner.uid.as_str()) {
                            return Ok(None);
                        }
                        Some((
                            owner.uid.clone(),
                            d.spec.and_then(|s| s.replicas).unwrap_or(1),
                        ))
                    }
                    None => Some((
                        uid.to_owned(),
                        rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )),
                }
            }
            "ReplicationController" => Api::<ReplicationController>::namespaced(client, namespace)
                .get_opt(name)
                .await?
                .filter(|rc| rc.uid().as_deref() == Some(uid))
                .map(|rc| {
                    (
                        uid.to_owned(),
                        rc.spec.and_then(|s| s.replicas).unwrap_or(1),
                    )
                }),
            "StatefulSet" => Api::<StatefulSet>::namespaced(client, namespace)
                .get_opt(name)
                .await?
                .filter(|ss| ss.uid().as_deref() == Some(uid))
                .map(|ss| {
                    (
                        uid.to_owned(),
                        ss.spec.and_then(|s| s.replicas).unwrap_or(1),
                    )
                }),
            _ => None,
        };
        Ok(found)
    }
}

impl crate::Reconcile for DisruptionController {
    const NAME: &'static str = "disruption";

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        DisruptionController::sync(self, key).await
    }
}

/// Whether a budget selects pods with these labels (an empty selector selects all).
fn selects(pdb: &PodDisruptionBudget, labels: &BTreeMap<String, String>) -> bool {
    let selector: LabelSelector = pdb
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    selector_is_empty(&selector) || selector_matches(&selector, labels)
}

/// The budget's `disruptedPods` still in force (pod present, not being deleted, younger than
/// [`DELETION_TIMEOUT`]), and when to look again for the next entry to expire.
fn disrupted_pods(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Duration>) {
    let recorded = pdb
        .status
        .as_ref()
        .and_then(|s| s.disrupted_pods.clone())
        .unwrap_or_default();
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Duration> = None;
    let timeout = i64::try_from(DELETION_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
    for pod in pods {
        let name = pod.name_any();
        let Some(since) = recorded.get(&name) else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let expires = since.0.as_second().saturating_add(timeout);
        if expires <= now.as_second() {
            continue;
        }
        let left = Duration::from_secs(u64::try_from(expires - now.as_second()).unwrap_or(0));
        recheck = Some(recheck.map_or(left, |r| r.min(left)));
        kept.insert(name, since.clone());
    }
    (kept, recheck)
}

/// The status for the counts, with the `DisruptionAllowed` condition.
fn computed_status(
    pdb: &PodDisruptionBudget,
    current_healthy: i32,
    desired_healthy: i32,
    expected_pods: i32,
    disrupted: BTreeMap<String, Time>,
) -> PodDisruptionBudgetStatus {
    let allowed = if expected_pods <= 0 {
        0
    } else {
        (current_healthy - desired_healthy).max(0)
    };
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    PodDisruptionBudgetStatus {
        current_healthy,
        desired_healthy,
        expected_pods,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: Some(vec![condition(pdb, status, reason, "")]),
    }
}

/// The status when the budget cannot be computed (`failSafe`): nothing may be disrupted.
fn failed_status(
    pdb: &PodDisruptionBudget,
    message: &str,
    disrupted: BTreeMap<String, Time>,
) -> PodDisruptionBudgetStatus {
    let previous = pdb.status.clone().unwrap_or_default();
    PodDisruptionBudgetStatus {
        disruptions_allowed: 0,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: Some(vec![condition(pdb, "False", "SyncFailed", message)]),
        ..previous
    }
}

/// The `DisruptionAllowed` condition, keeping its transition time while its status holds.
fn condition(pdb: &PodDisruptionBudget, status: &str, reason: &str, message: &str) -> Condition {
    let previous = pdb
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == DISRUPTION_ALLOWED));
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map_or_else(now, |c| c.last_transition_time.clone());
    Condition {
        type_: DISRUPTION_ALLOWED.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: pdb.metadata.generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_disruptions_and_reasons() {
        let mut pdb = PodDisruptionBudget::default();
        pdb.metadata.generation = Some(3);
        let status = computed_status(&pdb, 4, 2, 4, BTreeMap::new());
        assert_eq!(status.disruptions_allowed, 2);
        assert_eq!(status.observed_generation, Some(3));
        let condition = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "SufficientPods")
        );
        let short = computed_status(&pdb, 1, 2, 4, BTreeMap::new());
        assert_eq!(short.disruptions_allowed, 0);
        assert_eq!(short.conditions.unwrap()[0].reason, "InsufficientPods");
        assert_eq!(
            computed_status(&pdb, 3, 0, 0, BTreeMap::new()).disruptions_allowed,
            0
        );
    }

    #[test]
    fn disrupted_pods_expire_and_follow_deletion() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let pod = |name: &str, deleting: bool| {
            let mut pod = Pod::default();
            pod.metadata.name = Some(name.into());
            if deleting {
                pod.metadata.deletion_timestamp = Some(Time(now));
            }
            Arc::new(pod)
        };
        let at = |seconds_ago: i64| Time(Timestamp::from_second(1_000_000 - seconds_ago).unwrap());
        let pdb = PodDisruptionBudget {
            status: Some(PodDisruptionBudgetStatus {
                disrupted_pods: Some(BTreeMap::from([
                    ("fresh".to_owned(), at(20)),
                    ("old".to_owned(), at(300)),
                    ("deleting".to_owned(), at(10)),
                    ("gone".to_owned(), at(10)),
                ])),
                ..PodDisruptionBudgetStatus::default()
            }),
            ..PodDisruptionBudget::default()
        };
        let pods = [
            pod("fresh", false),
            pod("old", false),
            pod("deleting", true),
        ];
        let (kept, recheck) = disrupted_pods(&pdb, &pods, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["fresh"]);
        assert_eq!(recheck, Some(Duration::from_secs(100)));
    }
}

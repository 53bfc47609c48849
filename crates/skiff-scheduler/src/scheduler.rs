//! The scheduling loop: one task owns the [`Snapshot`], fed by watches on nodes and pods,
//! and a queue of pending pods. For each pod it runs the filters and scores over all nodes
//! ([`select_node`]), *assumes* the pod onto the chosen node in the snapshot at once (so the
//! next pod sees its requests) and binds it through `pods/binding` in a background task, so
//! many bindings are in flight while the loop goes on. A failed binding is forgotten and the
//! pod retried after a short delay. Pods that fit nowhere get a `FailedScheduling` event and a
//! `PodScheduled=False` condition (once per distinct message) and wait until the cluster
//! changes: a node is added or its labels, taints, cordon or allocatable change, a pod goes
//! away, or (for pods with required pod affinity) a pod is bound; every `retry_interval` they
//! are retried anyway.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use futures::{StreamExt, TryStreamExt as _};
use k8s_openapi::api::core::v1::{
    Binding, Event as CoreEvent, EventSource, Node, ObjectReference, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::filter::{Prepared, fit_error, run_filters};
use crate::score::{Weights, score_nodes};
use crate::snapshot::{NodeInfo, PodInfo, Snapshot};

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Pods whose `spec.schedulerName` is this are scheduled (`default-scheduler`).
    pub scheduler_name: String,
    pub weights: Weights,
    /// How many bindings may be in flight at once.
    pub max_in_flight: usize,
    /// How often pods that fit nowhere are retried without a cluster change.
    pub retry_interval: Duration,
    /// How long a pod whose binding failed waits before the next attempt.
    pub bind_retry_delay: Duration,
    /// Whether to record a `Scheduled` event for every bound pod (one more write per pod).
    pub scheduled_events: bool,
    /// `reportingInstance` of the events.
    pub instance: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            scheduler_name: "default-scheduler".to_owned(),
            weights: Weights::default(),
            max_in_flight: 128,
            retry_interval: Duration::from_secs(30),
            bind_retry_delay: Duration::from_secs(1),
            scheduled_events: true,
            instance: "skiff-scheduler".to_owned(),
        }
    }
}

/// Picks the node for a pod: the best-scoring node that passes every filter (ties broken by
/// `tie_break`, rotating among the best), or kube-scheduler's "0/N nodes are available: ..."
/// message.
pub fn select_node(
    pod: &PodInfo,
    snapshot: &Snapshot,
    weights: &Weights,
    tie_break: usize,
) -> Result<String, String> {
    let prepared = Prepared::new(pod, snapshot);
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut node_count = 0;
    for node in snapshot.nodes() {
        node_count += 1;
        match run_filters(pod, &prepared, node) {
            Ok(()) => feasible.push(node),
            Err(failed) => {
                for reason in failed {
                    *reasons.entry(reason).or_default() += 1;
                }
            }
        }
    }
    match feasible.len() {
        0 => return Err(fit_error(node_count, &reasons)),
        1 => return Ok(feasible[0].name.clone()),
        _ => {}
    }
    let scores = score_nodes(pod, snapshot, &feasible, weights);
    let best = scores.iter().copied().max().unwrap_or(0);
    let tied: Vec<usize> = (0..scores.len()).filter(|i| scores[*i] == best).collect();
    Ok(feasible[tied[tie_break % tied.len()]].name.clone())
}

/// A pod bound (or being bound) by this scheduler and not yet seen bound on the watch.
#[derive(Debug)]
struct Assumed {
    pod: Pod,
    in_flight: bool,
}

/// What a binding task reports back.
struct BindOutcome {
    key: String,
    result: Result<(), kube::Error>,
}

/// Watch-restart bookkeeping: keys listed since the last `Init`.
#[derive(Default)]
struct Relist {
    seen: Option<HashSet<String>>,
    synced: bool,
}

/// The scheduler: the snapshot and queues one task owns. Use [`run`], or
/// [`Scheduler::new`] then [`Scheduler::run`].
pub struct Scheduler {
    client: kube::Client,
    config: Config,
    snapshot: Snapshot,
    /// Unbound pods this scheduler is responsible for, by key (latest version seen).
    pending: HashMap<String, Pod>,
    /// Keys to attempt, in order (each at most once).
    active: VecDeque<String>,
    queued: HashSet<String>,
    /// Pods that fit nowhere at their last attempt.
    unschedulable: HashSet<String>,
    /// The last FailedScheduling message reported per pod.
    reported: HashMap<String, String>,
    /// Pods waiting out a binding failure, with when to retry.
    delayed: Vec<(Instant, String)>,
    assumed: HashMap<String, Assumed>,
    in_flight: usize,
    binds: JoinSet<BindOutcome>,
    reports: JoinSet<()>,
    attempts: usize,
    pods_relist: Relist,
    nodes_relist: Relist,
}

/// Runs a scheduler until `shutdown` is cancelled.
pub async fn run(client: kube::Client, config: Config, shutdown: CancellationToken) -> Result<()> {
    Scheduler::new(client, config).run(shutdown).await
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

impl Scheduler {
    pub fn new(client: kube::Client, config: Config) -> Scheduler {
        Scheduler {
            client,
            config,
            snapshot: Snapshot::new(),
            pending: HashMap::new(),
            active: VecDeque::new(),
            queued: HashSet::new(),
            unschedulable: HashSet::new(),
            reported: HashMap::new(),
            delayed: Vec::new(),
            assumed: HashMap::new(),
            in_flight: 0,
            binds: JoinSet::new(),
            reports: JoinSet::new(),
            attempts: 0,
            pods_relist: Relist::default(),
            nodes_relist: Relist::default(),
        }
    }

    /// Watches, schedules and binds until `shutdown`; then waits for bindings in flight.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        // Managed fields are a third of a pod and never looked at here (nor by upstream's
        // scheduler, which trims them from its informers too).
        let mut pods = watcher::watcher(
            Api::<Pod>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|pod| pod.metadata.managed_fields = None)
        .boxed();
        let mut nodes = watcher::watcher(
            Api::<Node>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(|node| node.metadata.managed_fields = None)
        .boxed();
        let mut retry = tokio::time::interval(self.config.retry_interval);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let ready = self.pods_relist.synced
                && self.nodes_relist.synced
                && !self.active.is_empty()
                && self.in_flight < self.config.max_in_flight;
            let next_delayed = self.delayed.iter().map(|(at, _)| *at).min();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                event = pods.try_next() => match event {
                    Ok(Some(event)) => self.on_pod_event(event),
                    Ok(None) => anyhow::bail!("the pod watch ended"),
                    Err(error) => tracing::warn!(%error, "watching pods"),
                },
                event = nodes.try_next() => match event {
                    Ok(Some(event)) => self.on_node_event(event),
                    Ok(None) => anyhow::bail!("the node watch ended"),
                    Err(error) => tracing::warn!(%error, "watching nodes"),
                },
                Some(outcome) = self.binds.join_next(), if !self.binds.is_empty() => {
                    match outcome {
                        Ok(outcome) => self.on_bound(outcome),
                        Err(error) => tracing::error!(%error, "a binding task failed"),
                    }
                }
                Some(_) = self.reports.join_next(), if !self.reports.is_empty() => {}
                () = sleep_until(next_delayed), if next_delayed.is_some() => self.release_delayed(),
                _ = retry.tick() => self.requeue_unschedulable(),
                () = std::future::ready(()), if ready => self.schedule_next(),
            }
        }
        while self.binds.join_next().await.is_some() {}
        while self.reports.join_next().await.is_some() {}
        Ok(())
    }

    fn enqueue(&mut self, key: String) {
        if self.queued.insert(key.clone()) {
            self.active.push_back(key);
        }
    }

    fn requeue_unschedulable(&mut self) {
        let keys: Vec<String> = self.unschedulable.drain().collect();
        for key in keys {
            self.enqueue(key);
        }
    }

    fn release_delayed(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.delayed.drain(..).partition(|(at, _)| *at <= now);
        self.delayed = later;
        for (_, key) in due {
            if self.pending.contains_key(&key) {
                self.enqueue(key);
            }
        }
    }

    fn on_pod_event(&mut self, event: Event<Pod>) {
        match event {
            Event::Init => self.pods_relist.seen = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if let Some(seen) = &mut self.pods_relist.seen {
                    seen.insert(key_of(&pod));
                }
                self.on_pod(pod);
            }
            Event::InitDone => {
                let seen = self.pods_relist.seen.take().unwrap_or_default();
                let known: Vec<String> = self
                    .pending
                    .keys()
                    .chain(
                        self.assumed
                            .iter()
                            .filter(|(_, a)| !a.in_flight)
                            .map(|(k, _)| k),
                    )
                    .cloned()
                    .chain(self.snapshot_pod_keys())
                    .filter(|k| !seen.contains(k))
                    .collect();
                for key in known {
                    self.on_pod_gone(&key);
                }
                self.pods_relist.synced = true;
            }
            Event::Apply(pod) => self.on_pod(pod),
            Event::Delete(pod) => self.on_pod_gone(&key_of(&pod)),
        }
    }

    fn snapshot_pod_keys(&self) -> Vec<String> {
        self.snapshot
            .placed_pods()
            .filter(|(_, p)| !self.assumed.get(&p.key).is_some_and(|a| a.in_flight))
            .map(|(_, p)| p.key.clone())
            .collect()
    }

    fn on_pod(&mut self, pod: Pod) {
        let key = key_of(&pod);
        if is_terminal(&pod) {
            self.on_pod_gone(&key);
            return;
        }
        if node_name(&pod).is_some() {
            self.forget_pending(&key);
            self.assumed.remove(&key);
            let info = PodInfo::new(pod).placed();
            let new = self.snapshot.placement(&key) != info.node_name.as_deref();
            self.snapshot.place_pod(Arc::new(info));
            if new {
                self.requeue_affinity_waiters();
            }
            return;
        }
        if let Some(assumed) = self.assumed.get(&key) {
            if assumed.pod.metadata.uid == pod.metadata.uid {
                // An older, unbound view of a pod this scheduler has bound.
                return;
            }
            self.assumed.remove(&key);
            self.snapshot.remove_pod(&key);
        }
        let responsible = pod.metadata.deletion_timestamp.is_none()
            && pod
                .spec
                .as_ref()
                .and_then(|s| s.scheduler_name.as_deref())
                .unwrap_or("default-scheduler")
                == self.config.scheduler_name;
        if !responsible {
            self.forget_pending(&key);
            return;
        }
        let changed = self
            .pending
            .get(&key)
            .is_none_or(|old| old.spec != pod.spec || old.metadata.labels != pod.metadata.labels);
        self.pending.insert(key.clone(), pod);
        if changed {
            self.unschedulable.remove(&key);
            self.enqueue(key);
        }
    }

    /// Requeues unschedulable pods with required pod affinity (a newly bound pod may be what
    /// they wait for).
    fn requeue_affinity_waiters(&mut self) {
        let waiting: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|key| {
                self.pending.get(*key).is_some_and(|pod| {
                    pod.spec
                        .as_ref()
                        .and_then(|s| s.affinity.as_ref())
                        .and_then(|a| a.pod_affinity.as_ref())
                        .is_some_and(|a| {
                            a.required_during_scheduling_ignored_during_execution
                                .is_some()
                        })
                })
            })
            .cloned()
            .collect();
        for key in waiting {
            self.unschedulable.remove(&key);
            self.enqueue(key);
        }
    }

    fn forget_pending(&mut self, key: &str) {
        if self.pending.remove(key).is_some() {
            self.unschedulable.remove(key);
            self.reported.remove(key);
        }
    }

    fn on_pod_gone(&mut self, key: &str) {
        self.forget_pending(key);
        self.assumed.remove(key);
        if self.snapshot.remove_pod(key).is_some() {
            self.requeue_unschedulable();
        }
    }

    fn on_node_event(&mut self, event: Event<Node>) {
        match event {
            Event::Init => self.nodes_relist.seen = Some(HashSet::new()),
            Event::InitApply(node) => {
                if let Some(seen) = &mut self.nodes_relist.seen {
                    seen.insert(node.metadata.name.clone().unwrap_or_default());
                }
                self.snapshot.upsert_node(node);
            }
            Event::InitDone => {
                let seen = self.nodes_relist.seen.take().unwrap_or_default();
                let gone: Vec<String> = self
                    .snapshot
                    .nodes()
                    .map(|n| n.name.clone())
                    .filter(|n| !seen.contains(n))
                    .collect();
                for name in gone {
                    self.snapshot.remove_node(&name);
                }
                self.nodes_relist.synced = true;
                self.requeue_unschedulable();
            }
            Event::Apply(node) => {
                if self.snapshot.upsert_node(node) {
                    self.requeue_unschedulable();
                }
            }
            Event::Delete(node) => {
                self.snapshot
                    .remove_node(node.metadata.name.as_deref().unwrap_or_default());
            }
        }
    }

    /// Attempts the next queued pod.
    fn schedule_next(&mut self) {
        let Some(key) = self.active.pop_front() else {
            return;
        };
        self.queued.remove(&key);
        let Some(pod) = self.pending.get(&key).cloned() else {
            return;
        };
        let info = PodInfo::new(pod);
        self.attempts = self.attempts.wrapping_add(1);
        match select_node(&info, &self.snapshot, &self.config.weights, self.attempts) {
            Ok(node) => self.assume_and_bind(key, info, node),
            Err(message) => self.unschedulable_pod(key, &info, message),
        }
    }

    fn assume_and_bind(&mut self, key: String, mut info: PodInfo, node: String) {
        tracing::debug!(pod = %key, %node, "binding");
        let pod = self
            .pending
            .remove(&key)
            .unwrap_or_else(|| (*info.pod).clone());
        self.unschedulable.remove(&key);
        self.reported.remove(&key);
        info.node_name = Some(node.clone());
        self.snapshot.place_pod(Arc::new(info.placed()));
        self.assumed.insert(
            key.clone(),
            Assumed {
                pod: pod.clone(),
                in_flight: true,
            },
        );
        self.in_flight += 1;
        let client = self.client.clone();
        let scheduled_events = self.config.scheduled_events;
        let instance = self.config.instance.clone();
        let component = self.config.scheduler_name.clone();
        self.binds.spawn(async move {
            let result = bind(&client, &pod, &node).await;
            if result.is_ok() && scheduled_events {
                let message = format!("Successfully assigned {key} to {node}");
                let event = event(&pod, "Normal", "Scheduled", &message, &component, &instance);
                record(&client, &pod, event).await;
            }
            BindOutcome { key, result }
        });
    }

    fn on_bound(&mut self, outcome: BindOutcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let key = outcome.key;
        match outcome.result {
            Ok(()) => {
                if let Some(assumed) = self.assumed.get_mut(&key) {
                    assumed.in_flight = false;
                }
            }
            Err(error) => {
                let Some(assumed) = self.assumed.remove(&key) else {
                    return;
                };
                self.snapshot.remove_pod(&key);
                let gone = matches!(&error, kube::Error::Api(status) if status.code == 404);
                tracing::info!(pod = %key, %error, "binding failed");
                if !gone {
                    self.pending.insert(key.clone(), assumed.pod);
                    self.delayed
                        .push((Instant::now() + self.config.bind_retry_delay, key));
                }
            }
        }
    }

    fn unschedulable_pod(&mut self, key: String, info: &PodInfo, message: String) {
        tracing::debug!(pod = %key, %message, "unschedulable");
        self.unschedulable.insert(key.clone());
        if self.reported.get(&key) == Some(&message) {
            return;
        }
        self.reported.insert(key, message.clone());
        let client = self.client.clone();
        let pod = (*info.pod).clone();
        let instance = self.config.instance.clone();
        let component = self.config.scheduler_name.clone();
        self.reports.spawn(async move {
            let event = event(
                &pod,
                "Warning",
                "FailedScheduling",
                &message,
                &component,
                &instance,
            );
            record(&client, &pod, event).await;
            let already = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                        && c.message.as_deref() == Some(message.as_str())
                });
            if !already {
                let patch = json!({"status": {"conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": null,
                    "lastTransitionTime": Timestamp::now().to_string(),
                }]}});
                let api: Api<Pod> = Api::namespaced(
                    client,
                    pod.metadata.namespace.as_deref().unwrap_or("default"),
                );
                let name = pod.metadata.name.as_deref().unwrap_or_default();
                if let Err(error) = api
                    .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    tracing::info!(pod = name, %error, "setting PodScheduled=False");
                }
            }
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Binds a pod to a node through `pods/binding`.
async fn bind(client: &kube::Client, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    };
    api.create_subresource::<_, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map(|_| ())
}

/// Distinguishes events created in the same nanosecond.
static EVENT_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A core/v1 Event about a pod, named as client-go names them (`<pod>.<hex nanoseconds>`).
pub fn event(
    pod: &Pod,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
    instance: &str,
) -> CoreEvent {
    let now = Timestamp::now();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let unique =
        now.as_nanosecond() + i128::from(EVENT_SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1000);
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{unique:x}")),
            namespace: pod.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some(name),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(type_.to_owned()),
        action: Some(
            if reason == "Scheduled" {
                "Binding"
            } else {
                "Scheduling"
            }
            .to_owned(),
        ),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..CoreEvent::default()
    }
}

async fn record(client: &kube::Client, pod: &Pod, event: CoreEvent) {
    let api: Api<CoreEvent> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        tracing::info!(%error, reason = ?event.reason, "recording an event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{container, node, pod};

    #[test]
    fn select_node_picks_the_least_allocated_fitting_node() {
        let mut snapshot = Snapshot::new();
        snapshot.upsert_node(node(
            "small",
            &[("cpu", "1"), ("memory", "1Gi"), ("pods", "10")],
        ));
        snapshot.upsert_node(node(
            "big",
            &[("cpu", "8"), ("memory", "16Gi"), ("pods", "10")],
        ));
        snapshot.upsert_node(node(
            "full",
            &[("cpu", "8"), ("memory", "16Gi"), ("pods", "0")],
        ));
        let weights = Weights::default();
        let p = PodInfo::new(pod(
            "p",
            vec![container(&[("cpu", "500m"), ("memory", "256Mi")])],
        ));
        for tie in 0..3 {
            assert_eq!(
                select_node(&p, &snapshot, &weights, tie),
                Ok("big".to_owned())
            );
        }
        let huge = PodInfo::new(pod("h", vec![container(&[("cpu", "16")])]));
        assert_eq!(
            select_node(&huge, &snapshot, &weights, 0),
            Err(
                "0/3 nodes are available: 1 Too many pods, 3 Insufficient cpu. preemption: 0/3 \
                 nodes are available: 3 Preemption is not helpful for scheduling."
                    .to_owned()
            )
        );
        assert_eq!(
            select_node(&p, &Snapshot::new(), &weights, 0),
            Err("no nodes available to schedule pods".to_owned())
        );
    }

    #[test]
    fn ties_rotate() {
        let mut snapshot = Snapshot::new();
        for name in ["a", "b", "c"] {
            snapshot.upsert_node(node(
                name,
                &[("cpu", "1"), ("memory", "1Gi"), ("pods", "10")],
            ));
        }
        let p = PodInfo::new(pod("p", vec![]));
        let picks: HashSet<String> = (0..3)
            .map(|tie| select_node(&p, &snapshot, &Weights::default(), tie).unwrap())
            .collect();
        assert_eq!(picks.len(), 3);
    }

    #[test]
    fn events_look_like_client_go_events() {
        let mut p = pod("web-1", vec![]);
        p.metadata.uid = Some("u1".to_owned());
        let e = event(
            &p,
            "Warning",
            "FailedScheduling",
            "0/1 nodes",
            "default-scheduler",
            "i",
        );
        assert!(e.metadata.name.as_deref().unwrap().starts_with("web-1."));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Pod"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("u1"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(
            e.source.unwrap().component.as_deref(),
            Some("default-scheduler")
        );
    }
}

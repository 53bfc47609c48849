//! The node lifecycle controller (upstream's `pkg/controller/nodelifecycle`): it watches Nodes
//! and their Leases in `kube-node-lease` and decides whether each node's kubelet is alive.
//!
//! A node is alive while its Lease's `renewTime` or its Ready condition's `lastHeartbeatTime`
//! keeps changing. Like upstream, the controller times those changes with its own clock (the
//! "probe timestamp"), so clock skew between nodes and the control plane does not matter. A
//! node silent for longer than the grace period (`Config::node_monitor_grace_period`; 60 s
//! `node_startup_grace_period` for a node that never posted a Ready condition) gets its
//! Ready, MemoryPressure, DiskPressure and PIDPressure conditions set to `Unknown`
//! (`NodeStatusUnknown`, "Kubelet stopped posting node status.").
//!
//! From the Ready condition follow the node's lifecycle taints: `node.kubernetes.io/unreachable`
//! (Ready=Unknown) or `node.kubernetes.io/not-ready` (Ready=False), each with the `NoSchedule`
//! and the `NoExecute` effect, removed once the node is Ready again. When a node stops being
//! Ready the controller records a `NodeNotReady` event and sets its pods' Ready condition to
//! False (upstream's `MarkPodsNotReady`). What happens to the pods then is
//! [`crate::tainteviction`]'s business; both run from [`run`] over the same watches.
//!
//! It never deletes Nodes (there is no cloud provider to ask whether a machine is gone).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use skiff_workloads::informer::Informers;
use skiff_workloads::util::{is_pod_ready, now};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::tainteviction::TaintEviction;
use skiff_workloads::events::{self, Recorder};

/// The taint of a node whose Ready condition is `Unknown`.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node whose Ready condition is `False`.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Where kubelets keep their Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The conditions a silent node's kubelet can no longer vouch for.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Runs the node lifecycle controller and the taint eviction controller until `shutdown`.
pub async fn run(informers: Informers, config: Config, shutdown: CancellationToken) -> Result<()> {
    let client = informers.client().clone();
    let nodes = informers.all::<Node>();
    let leases = informers.namespaced::<Lease>(LEASE_NAMESPACE);
    let pods = informers.all::<Pod>();
    let eviction = TaintEviction::new(client.clone(), &nodes, &pods, shutdown.clone());
    let mut monitor = Monitor {
        client: client.clone(),
        config,
        nodes: nodes.store(),
        leases: leases.store(),
        pods: pods.store(),
        recorder: Recorder::new(client, "node-controller"),
        health: HashMap::new(),
    };
    crate::wait_ready(&monitor.nodes, &shutdown).await;
    crate::wait_ready(&monitor.leases, &shutdown).await;
    crate::wait_ready(&monitor.pods, &shutdown).await;
    tracing::info!(
        grace_period = ?monitor.config.node_monitor_grace_period,
        "node lifecycle controller started"
    );
    tokio::join!(monitor.run(&shutdown), crate::work(eviction, 2));
    Ok(())
}

/// What the controller last saw of a node's heartbeats.
struct Health {
    /// When (by this controller's clock) a heartbeat last changed.
    probed: Instant,
    heartbeat: Option<Time>,
    renewed: Option<MicroTime>,
    /// The Ready status after the last pass (`True`, `False` or `Unknown`).
    ready: String,
}

struct Monitor {
    client: Client,
    config: Config,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    recorder: Recorder,
    health: HashMap<String, Health>,
}

impl Monitor {
    /// Examines every node each `node_monitor_period` until `shutdown`.
    async fn run(&mut self, shutdown: &CancellationToken) {
        let mut tick = tokio::time::interval(self.config.node_monitor_period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let nodes = self.nodes.state();
            let live: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
            self.health.retain(|name, _| live.contains(name));
            for node in nodes {
                if let Err(error) = self.monitor(&node).await {
                    tracing::info!(node = %node.name_any(), "node health pass failed: {error:#}");
                }
            }
        }
    }

    /// One node: notice heartbeats, mark it Unknown when silent too long, keep its taints
    /// and its pods' readiness in line with its Ready condition.
    async fn monitor(&mut self, node: &Node) -> Result<()> {
        let name = node.name_any();
        let now_instant = Instant::now();
        let heartbeat = ready_condition(node).and_then(|c| c.last_heartbeat_time.clone());
        let renewed = self
            .leases
            .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE))
            .and_then(|lease| lease.spec.as_ref()?.renew_time.clone());
        let health = self.health.entry(name.clone()).or_insert_with(|| Health {
            probed: now_instant,
            heartbeat: heartbeat.clone(),
            renewed: renewed.clone(),
            ready: ready_status(node).to_owned(),
        });
        if heartbeat != health.heartbeat {
            health.heartbeat = heartbeat;
            health.probed = now_instant;
        }
        if renewed.as_ref().map(|t| t.0) > health.renewed.as_ref().map(|t| t.0) {
            health.renewed = renewed;
            health.probed = now_instant;
        }
        let grace = if ready_condition(node).is_some() {
            self.config.node_monitor_grace_period
        } else {
            self.config.node_startup_grace_period
        };
        let silent = now_instant.duration_since(health.probed) > grace;
        let previous_ready = std::mem::take(&mut health.ready);

        let mut node = node.clone();
        if silent && let Some(conditions) = unknown_conditions(&node) {
            tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
            let patch = json!({
                "metadata": { "resourceVersion": node.metadata.resource_version },
                "status": { "conditions": conditions },
            });
            node = Api::<Node>::all(self.client.clone())
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .with_context(|| format!("marking node {name} Unknown"))?;
        }
        let ready = ready_status(&node).to_owned();
        if let Some(health) = self.health.get_mut(&name) {
            health.ready = ready.clone();
        }
        if previous_ready == "True" && ready != "True" {
            let message = format!("Node {name} status is now: NodeNotReady");
            self.recorder
                .record(&node, events::NORMAL, "NodeNotReady", &message)
                .await;
        }
        if ready != "True" {
            self.mark_pods_not_ready(&name).await?;
        }
        self.reconcile_taints(&node, &ready).await
    }

    /// Sets the Ready condition of the node's pods to False (`MarkPodsNotReady`).
    async fn mark_pods_not_ready(&self, node_name: &str) -> Result<()> {
        for pod in self.pods.state() {
            let on_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name);
            if !on_node || !is_pod_ready(&pod) {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let patch = json!({"status": {"conditions": [{
                "type": "Ready",
                "status": "False",
                "lastProbeTime": null,
                "lastTransitionTime": now(),
            }]}});
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
            match api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(error) => {
                    return Err(error).with_context(|| {
                        format!("marking pod {namespace}/{} not ready", pod.name_any())
                    });
                }
            }
            self.recorder
                .record(
                    pod.as_ref(),
                    events::WARNING,
                    "NodeNotReady",
                    "Node is not ready",
                )
                .await;
        }
        Ok(())
    }

    /// Adds the lifecycle taints the Ready status calls for and removes the others.
    async fn reconcile_taints(&self, node: &Node, ready: &str) -> Result<()> {
        let current = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let wanted = lifecycle_taints(ready, &current);
        if wanted == current {
            return Ok(());
        }
        let name = node.name_any();
        tracing::info!(node = %name, ready, "updating the node's lifecycle taints");
        let taints = if wanted.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(&wanted).context("encoding taints")?
        };
        let patch = json!({
            "metadata": { "resourceVersion": node.metadata.resource_version },
            "spec": { "taints": taints },
        });
        Api::<Node>::all(self.client.clone())
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .with_context(|| format!("updating the taints of node {name}"))?;
        Ok(())
    }
}

/// The node's Ready condition.
fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The node's Ready status; a node without the condition counts as `Unknown`.
fn ready_status(node: &Node) -> &str {
    ready_condition(node).map_or("Unknown", |c| c.status.as_str())
}

/// The node's conditions with the kubelet's set to `Unknown`, or `None` if they already are.
fn unknown_conditions(node: &Node) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = now();
    let mut changed = false;
    for kind in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            Some(condition) if condition.status == "Unknown" => {}
            Some(condition) => {
                condition.status = "Unknown".to_owned();
                condition.reason = Some("NodeStatusUnknown".to_owned());
                condition.message = Some("Kubelet stopped posting node status.".to_owned());
                condition.last_transition_time = Some(now.clone());
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: kind.to_owned(),
                    status: "Unknown".to_owned(),
                    reason: Some("NodeStatusNeverUpdated".to_owned()),
                    message: Some("Kubelet never posted node status.".to_owned()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// `current` with the lifecycle taints replaced by those a Ready status of `ready` calls for
/// (kept as they are, `timeAdded` included, when already present).
fn lifecycle_taints(ready: &str, current: &[Taint]) -> Vec<Taint> {
    let key = match ready {
        "True" => None,
        "False" => Some(TAINT_NOT_READY),
        _ => Some(TAINT_UNREACHABLE),
    };
    let managed = |t: &Taint| {
        (t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY)
            && (t.effect == "NoSchedule" || t.effect == "NoExecute")
    };
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || Some(t.key.as_str()) == key)
        .cloned()
        .collect();
    if let Some(key) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !taints.iter().any(|t| t.key == key && t.effect == effect) {
                taints.push(Taint {
                    key: key.to_owned(),
                    effect: effect.to_owned(),
                    time_added: (effect == "NoExecute").then(now),
                    value: None,
                });
            }
        }
    }
    taints
}

/// Upstream's monitor period for a grace period: often enough to notice a silent node well
/// within the grace period (5 s for the default 40 s, never below half a second).
pub fn monitor_period_for(grace: Duration) -> Duration {
    (grace / 8).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.to_owned(),
            effect: effect.to_owned(),
            ..Taint::default()
        }
    }

    #[test]
    fn lifecycle_taints_follow_the_ready_status() {
        let other = taint("dedicated", "NoSchedule");
        let unreachable = lifecycle_taints("Unknown", std::slice::from_ref(&other));
        let keys: Vec<(&str, &str)> = unreachable
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated", "NoSchedule"),
                (TAINT_UNREACHABLE, "NoSchedule"),
                (TAINT_UNREACHABLE, "NoExecute")
            ]
        );
        assert!(unreachable[2].time_added.is_some());
        assert!(unreachable[1].time_added.is_none());
        // Already tainted: unchanged, timeAdded kept.
        assert_eq!(lifecycle_taints("Unknown", &unreachable), unreachable);
        // Ready=False swaps unreachable for not-ready.
        let not_ready = lifecycle_taints("False", &unreachable);
        assert!(not_ready.iter().all(|t| t.key != TAINT_UNREACHABLE));
        assert_eq!(
            not_ready
                .iter()
                .filter(|t| t.key == TAINT_NOT_READY)
                .count(),
            2
        );
        // Ready again: only the foreign taint stays.
        assert_eq!(lifecycle_taints("True", &not_ready), vec![other]);
    }

    #[test]
    fn silent_nodes_get_unknown_conditions_once() {
        let mut node = Node {
            status: Some(k8s_openapi::api::core::v1::NodeStatus {
                conditions: Some(vec![
                    NodeCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..NodeCondition::default()
                    },
                    NodeCondition {
                        type_: "NetworkUnavailable".into(),
                        status: "False".into(),
                        ..NodeCondition::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Node::default()
        };
        let conditions = unknown_conditions(&node).unwrap();
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        let network = conditions
            .iter()
            .find(|c| c.type_ == "NetworkUnavailable")
            .unwrap();
        assert_eq!(network.status, "False");
        let pressure = conditions
            .iter()
            .find(|c| c.type_ == "PIDPressure")
            .unwrap();
        assert_eq!(pressure.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        node.status.as_mut().unwrap().conditions = Some(conditions);
        assert!(unknown_conditions(&node).is_none());
    }

    #[test]
    fn monitor_period_scales_with_the_grace_period() {
        assert_eq!(
            monitor_period_for(Duration::from_secs(40)),
            Duration::from_secs(5)
        );
        assert_eq!(
            monitor_period_for(Duration::from_secs(5)),
            Duration::from_millis(625)
        );
        assert_eq!(
            monitor_period_for(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }
}

//! skiff's node agent. For now it runs simulated nodes, like kwok: [`Simulation::start`]
//! registers N nodes with realistic capacity, keeps their Leases and status fresh, and moves
//! the pods bound to them through their life without containers — Running and Ready with a
//! fake pod IP after a short delay, `Succeeded` after a run time when their restartPolicy is
//! Never or OnFailure (so Jobs complete), stopped and deleted when they are deleted
//! gracefully. [`Simulation::stop_node`] makes one node's kubelet vanish: its heartbeats stop,
//! so the node lifecycle controller marks it NotReady and evicts its pods.
//!
//! It is a pure API client (kube-rs): one pod watch for all nodes, one timer queue, bounded
//! concurrent writes, so 100 nodes and 10,000 pods fit in one process.
//!
//! Modules: `node` (Node object, registration, Lease and status heartbeats), `pods` (the pod
//! lifecycle), `watch` (the stream of bound pods), `pod_status` (the statuses written,
//! pure), `ipam` (node and pod addresses, pure).

mod ipam;
mod node;
mod pod_status;
mod pods;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use node::{KUBELET_VERSION, LEASE_NAMESPACE, RUNTIME_VERSION};

use node::{NodeAgent, NodeIdentity};
use pods::{Command, Counters, PodManager};

/// How many simulated nodes, what they are called and how their pods behave.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// How many nodes to simulate.
    pub nodes: usize,
    /// Node names are `name_prefix` followed by the node's index.
    pub name_prefix: String,
    /// The index of the first node (so several agents can simulate disjoint node sets; the
    /// index also picks the node's addresses).
    pub first_index: usize,
    /// From a pod being seen bound to a node until it is Running and Ready.
    pub start_delay: Duration,
    /// How long the containers of a pod with restartPolicy Never or OnFailure run before they
    /// exit 0 and the pod is `Succeeded`.
    pub run_time: Duration,
    /// From a pod being marked for deletion until its containers are stopped and it is
    /// deleted with `gracePeriodSeconds=0`.
    pub stop_delay: Duration,
    /// How often each node renews its Lease in `kube-node-lease`.
    pub lease_interval: Duration,
    /// The Lease's `leaseDurationSeconds`.
    pub lease_duration_seconds: i32,
    /// How often each node writes its status (conditions with a fresh `lastHeartbeatTime`).
    pub status_interval: Duration,
    /// Node `i` gets the InternalIP `node_ip_base + i + 1`.
    pub node_ip_base: Ipv4Addr,
    /// Node `i` gets the pod CIDR `pod_cidr_base + 256·i` /24, and its pods addresses in it.
    pub pod_cidr_base: Ipv4Addr,
    /// Capacity (and allocatable) of every node.
    pub capacity: BTreeMap<String, Quantity>,
    /// Labels added to every node (beside the `kubernetes.io/*` ones).
    pub labels: BTreeMap<String, String>,
    /// Taints of every node (none by default: simulated nodes take any pod).
    pub taints: Vec<Taint>,
    /// At most this many pod writes in flight at once.
    pub max_in_flight: usize,
}

impl Default for SimulationConfig {
    fn default() -> SimulationConfig {
        let capacity = [
            ("cpu", "8"),
            ("memory", "32Gi"),
            ("pods", "110"),
            ("ephemeral-storage", "100Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v.to_owned())))
        .collect();
        SimulationConfig {
            nodes: 1,
            name_prefix: "sim-".to_owned(),
            first_index: 0,
            start_delay: Duration::from_secs(1),
            run_time: Duration::from_secs(5),
            stop_delay: Duration::from_millis(500),
            lease_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            status_interval: Duration::from_secs(40),
            node_ip_base: Ipv4Addr::new(10, 200, 0, 0),
            pod_cidr_base: Ipv4Addr::new(10, 244, 0, 0),
            capacity,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            max_in_flight: 32,
        }
    }
}

/// What the simulation has done to pods so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimulationStats {
    /// Pods made Running.
    pub pods_started: u64,
    /// Pods made Succeeded.
    pub pods_completed: u64,
    /// Pods deleted after their graceful deletion.
    pub pods_deleted: u64,
    /// Pod writes that failed (and were retried).
    pub write_errors: u64,
}

struct NodeEntry {
    identity: NodeIdentity,
    /// Cancels the node's heartbeats; `None` while the node is stopped.
    heartbeat: Option<CancellationToken>,
}

/// Running simulated nodes. Dropping it stops them all (like [`Simulation::shutdown`], without
/// waiting).
pub struct Simulation {
    client: kube::Client,
    config: Arc<SimulationConfig>,
    nodes: Mutex<HashMap<String, NodeEntry>>,
    names: Vec<String>,
    commands: mpsc::UnboundedSender<Command>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Concurrent registrations at start.
const REGISTER_CONCURRENCY: usize = 16;

impl Simulation {
    /// Registers the nodes (each Node with its status and Lease written before this returns),
    /// then keeps them beating and their pods moving in background tasks.
    pub async fn start(client: kube::Client, config: SimulationConfig) -> Result<Simulation> {
        let config = Arc::new(config);
        let identities: Vec<NodeIdentity> = (0..config.nodes)
            .map(|i| NodeIdentity::new(&config, config.first_index + i))
            .collect();
        let agents: Vec<NodeAgent> = futures::stream::iter(identities.clone())
            .map(|identity| {
                let mut agent = NodeAgent::new(identity, client.clone(), config.clone());
                async move {
                    agent
                        .register()
                        .await
                        .with_context(|| format!("registering node {}", agent.identity.name))?;
                    anyhow::Ok(agent)
                }
            })
            .buffered(REGISTER_CONCURRENCY)
            .try_collect()
            .await?;

        let shutdown = CancellationToken::new();
        let counters = Arc::new(Counters::default());
        let (commands, receiver) = mpsc::unbounded_channel();
        let manager = PodManager::new(
            client.clone(),
            config.clone(),
            counters.clone(),
            &identities,
        );
        let mut tasks = vec![tokio::spawn(manager.run(receiver, shutdown.clone()))];
        let mut nodes = HashMap::new();
        let count = agents.len().max(1) as u32;
        for (i, agent) in agents.into_iter().enumerate() {
            // Spread the nodes' beats over the interval; the first beat is one interval away
            // (registration just wrote both).
            let offset = config.lease_interval + config.lease_interval * i as u32 / count;
            let stop = shutdown.child_token();
            let identity = agent.identity.clone();
            tasks.push(tokio::spawn(agent.heartbeat(offset, stop.clone())));
            nodes.insert(
                identity.name.clone(),
                NodeEntry {
                    identity,
                    heartbeat: Some(stop),
                },
            );
        }
        tracing::info!(nodes = nodes.len(), "simulated nodes registered");
        Ok(Simulation {
            client,
            config,
            names: identities.into_iter().map(|n| n.name).collect(),
            nodes: Mutex::new(nodes),
            commands,
            counters,
            shutdown,
            tasks: Mutex::new(tasks),
        })
    }

    /// The simulated nodes' names, in index order.
    pub fn node_names(&self) -> &[String] {
        &self.names
    }

    /// Stops one node as if its kubelet died: no more Lease renewals or status updates, and
    /// its pods are left as they are. Returns false for an unknown or already stopped node.
    pub fn stop_node(&self, name: &str) -> bool {
        let mut nodes = self.nodes.lock().expect("node table poisoned");
        let Some(stop) = nodes.get_mut(name).and_then(|n| n.heartbeat.take()) else {
            return false;
        };
        stop.cancel();
        let _ = self.commands.send(Command::Stop(name.to_owned()));
        true
    }

    /// Brings a stopped node back: it registers again (status and Lease written before this
    /// returns), beats, and syncs its pods. Returns false for an unknown or running node.
    pub async fn resume_node(&self, name: &str) -> Result<bool> {
        let identity = {
            let nodes = self.nodes.lock().expect("node table poisoned");
            match nodes.get(name) {
                Some(entry) if entry.heartbeat.is_none() => entry.identity.clone(),
                _ => return Ok(false),
            }
        };
        let mut agent = NodeAgent::new(identity, self.client.clone(), self.config.clone());
        agent
            .register()
            .await
            .with_context(|| format!("registering node {name}"))?;
        let stop = self.shutdown.child_token();
        {
            let mut nodes = self.nodes.lock().expect("node table poisoned");
            let Some(entry) = nodes.get_mut(name) else {
                return Ok(false);
            };
            if entry.heartbeat.is_some() {
                return Ok(false);
            }
            entry.heartbeat = Some(stop.clone());
        }
        let task = tokio::spawn(agent.heartbeat(self.config.lease_interval, stop));
        self.tasks.lock().expect("task list poisoned").push(task);
        let _ = self.commands.send(Command::Resume(name.to_owned()));
        Ok(true)
    }

    /// What the simulation has done to pods so far.
    pub fn stats(&self) -> SimulationStats {
        let c = &self.counters;
        SimulationStats {
            pods_started: c.started.load(Ordering::Relaxed),
            pods_completed: c.completed.load(Ordering::Relaxed),
            pods_deleted: c.deleted.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Stops every node's heartbeats and the pod work, and waits for the tasks to end. The
    /// Node objects stay (they go NotReady, as when kubelets stop).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("task list poisoned"));
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Simulation {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs `config.nodes` simulated nodes until `shutdown` is cancelled (the entry point of
/// `skiff agent --simulate N`).
pub async fn simulate(
    client: kube::Client,
    config: SimulationConfig,
    shutdown: CancellationToken,
) -> Result<()> {
    let simulation = tokio::select! {
        started = Simulation::start(client, config) => started?,
        () = shutdown.cancelled() => return Ok(()),
    };
    shutdown.cancelled().await;
    let stats = simulation.stats();
    tracing::info!(?stats, "stopping simulated nodes");
    simulation.shutdown().await;
    Ok(())
}

//! The pods of all simulated nodes, driven by one watch of bound pods
//! (`fieldSelector=spec.nodeName!=`, filtered by the simulated node names) and one timer
//! queue: a pod is started (Running, Ready, a pod IP) `start_delay` after it is first seen,
//! completes (`Succeeded`) `run_time` after its start when its restartPolicy is Never or
//! OnFailure, and is stopped and deleted with `gracePeriodSeconds=0` `stop_delay` after it is
//! marked for deletion. Writes run as tasks, at most `max_in_flight` at once; the timers due at
//! the same moment are issued together.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, Preconditions};
use kube::runtime::watcher;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::SimulationConfig;
use crate::ipam::PodIpam;
use crate::node::{NodeIdentity, patch_params};
use crate::pod_status::{self, PodInfo};
use crate::watch;

/// Counters of what the simulation did to pods.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub deleted: AtomicU64,
    pub write_errors: AtomicU64,
}

/// Messages from the [`crate::Simulation`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    /// The node's kubelet is gone: its pods are left as they are.
    Stop(String),
    /// The node is back: its pods are synced again.
    Resume(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Complete,
    Delete,
}

enum Outcome {
    Done,
    /// The pod is gone (or replaced): nothing more to do for it.
    Gone,
    Failed(kube::Error),
}

struct NodeSlot {
    host_ip: String,
    ipam: PodIpam,
    active: bool,
}

struct Tracked {
    info: PodInfo,
    /// When the pod was first seen (start delay counts from here).
    seen: Instant,
    /// When the pod was first seen marked for deletion.
    deleting_since: Option<Instant>,
    /// When this simulation started the pod (the run time counts from here).
    started_at: Option<Instant>,
    completed: bool,
    deleted: bool,
    in_flight: bool,
    /// The valid timer for this pod (older heap entries are skipped).
    timer: Option<(u64, Action, Instant)>,
    ip: Option<Ipv4Addr>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// The pod side of the simulation; runs until `shutdown`.
pub(crate) struct PodManager {
    client: kube::Client,
    config: Arc<SimulationConfig>,
    counters: Arc<Counters>,
    nodes: HashMap<String, NodeSlot>,
    pods: HashMap<String, Tracked>,
    timers: BinaryHeap<Reverse<(Instant, u64, String)>>,
    sequence: u64,
    limit: Arc<Semaphore>,
    tasks: JoinSet<(String, Action, Outcome)>,
    /// Pods seen by each re-list in progress, by scope (namespace, or `None` for all).
    listing: HashMap<Option<String>, HashSet<String>>,
}

fn is_status(error: &kube::Error, codes: &[u16]) -> bool {
    matches!(error, kube::Error::Api(status) if codes.contains(&status.code))
}

impl PodManager {
    pub(crate) fn new(
        client: kube::Client,
        config: Arc<SimulationConfig>,
        counters: Arc<Counters>,
        nodes: &[NodeIdentity],
    ) -> PodManager {
        let nodes = nodes
            .iter()
            .map(|n| {
                let slot = NodeSlot {
                    host_ip: n.internal_ip.to_string(),
                    ipam: PodIpam::new(n.pod_network),
                    active: true,
                };
                (n.name.clone(), slot)
            })
            .collect();
        PodManager {
            client,
            limit: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            counters,
            nodes,
            pods: HashMap::new(),
            timers: BinaryHeap::new(),
            sequence: 0,
            tasks: JoinSet::new(),
            listing: HashMap::new(),
        }
    }

    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut events = watch::bound_pods(self.client.clone(), shutdown.clone());
        loop {
            let next_timer = self.timers.peek().map(|Reverse((due, _, _))| *due);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.command(command),
                Some(finished) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Ok((uid, action, outcome)) = finished {
                        self.finished(&uid, action, outcome);
                    }
                }
                () = tokio::time::sleep_until(next_timer.unwrap_or_else(Instant::now)),
                    if next_timer.is_some() => self.fire_timers(),
                event = events.recv() => match event {
                    Some((scope, event)) => self.event(scope, event),
                    None => break,
                },
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    fn command(&mut self, command: Command) {
        let (name, active) = match command {
            Command::Stop(name) => (name, false),
            Command::Resume(name) => (name, true),
        };
        let Some(slot) = self.nodes.get_mut(&name) else {
            return;
        };
        slot.active = active;
        let uids: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, t)| t.info.node == name)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in uids {
            self.reschedule(&uid);
        }
    }

    fn event(&mut self, scope: Option<String>, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => {
                self.listing.insert(scope, HashSet::new());
            }
            watcher::Event::InitApply(pod) => {
                if let Some(uid) = self.apply(&pod)
                    && let Some(listed) = self.listing.get_mut(&scope)
                {
                    listed.insert(uid);
                }
            }
            watcher::Event::InitDone => {
                // Pods deleted while the watch was down.
                if let Some(listed) = self.listing.remove(&scope) {
                    let gone: Vec<String> = self
                        .pods
                        .iter()
                        .filter(|(uid, t)| {
                            !listed.contains(*uid)
                                && scope.as_ref().is_none_or(|ns| *ns == t.info.namespace)
                        })
                        .map(|(uid, _)| uid.clone())
                        .collect();
                    for uid in gone {
                        self.remove(&uid);
                    }
                }
            }
            watcher::Event::Apply(pod) => {
                self.apply(&pod);
            }
            watcher::Event::Delete(pod) => {
                if let Some(uid) = &pod.metadata.uid {
                    self.remove(uid);
                }
            }
        }
    }

    /// Takes in a pod's new state; returns its uid when it is one of the simulation's.
    fn apply(&mut self, pod: &Pod) -> Option<String> {
        let info = PodInfo::from_pod(pod)?;
        let slot = self.nodes.get_mut(&info.node)?;
        let now = Instant::now();
        let uid = info.uid.clone();
        let tracked = self.pods.entry(uid.clone()).or_insert_with(|| Tracked {
            info: info.clone(),
            seen: now,
            deleting_since: None,
            started_at: None,
            completed: false,
            deleted: false,
            in_flight: false,
            timer: None,
            ip: None,
            failures: 0,
            retry_at: None,
        });
        if info.deleting && tracked.deleting_since.is_none() {
            tracked.deleting_since = Some(now);
        }
        if info.is_terminal() {
            if let Some(ip) = tracked.ip.take() {
                slot.ipam.release(ip);
            }
        } else if tracked.ip.is_none()
            && !info.host_network
            && let Some(ip) = info.pod_ip.as_deref().and_then(|ip| ip.parse().ok())
            && slot.ipam.claim(ip)
        {
            // Started before (another run of the simulation): keep its address taken.
            tracked.ip = Some(ip);
        }
        tracked.info = info;
        self.reschedule(&uid);
        Some(uid)
    }

    fn remove(&mut self, uid: &str) {
        if let Some(tracked) = self.pods.remove(uid)
            && let Some(ip) = tracked.ip
            && let Some(slot) = self.nodes.get_mut(&tracked.info.node)
        {
            slot.ipam.release(ip);
        }
    }

    /// What to do next for a pod, and when.
    fn next_action(&self, tracked: &Tracked) -> Option<(Action, Instant)> {
        let active = self.nodes.get(&tracked.info.node).is_some_and(|n| n.active);
        if !active || tracked.in_flight {
            return None;
        }
        let info = &tracked.info;
        let (action, due) = if info.deleting {
            if tracked.deleted {
                return None;
            }
            let since = tracked.deleting_since.unwrap_or(tracked.seen);
            (Action::Delete, since + self.config.stop_delay)
        } else if info.is_terminal() {
            return None;
        } else if info.phase == "Running" {
            if !info.runs_to_completion() || tracked.completed {
                return None;
            }
            let started = tracked.started_at.unwrap_or_else(|| {
                // Started before this simulation saw it: count from its startTime.
                let elapsed = info
                    .start_time
                    .and_then(|t| Timestamp::now().duration_since(t).try_into().ok())
                    .unwrap_or(Duration::ZERO);
                Instant::now()
                    .checked_sub(elapsed)
                    .unwrap_or_else(Instant::now)
            });
            (Action::Complete, started + self.config.run_time)
        } else {
            if tracked.started_at.is_some() {
                return None;
            }
            (Action::Start, tracked.seen + self.config.start_delay)
        };
        Some((action, due.max(tracked.retry_at.unwrap_or(due))))
    }

    fn reschedule(&mut self, uid: &str) {
        let Some(tracked) = self.pods.get(uid) else {
            return;
        };
        let next = self.next_action(tracked);
        let tracked = self.pods.get_mut(uid).expect("looked up above");
        match next {
            None => tracked.timer = None,
            Some((action, due)) => {
                if matches!(tracked.timer, Some((_, a, d)) if a == action && d == due) {
                    return;
                }
                self.sequence += 1;
                tracked.timer = Some((self.sequence, action, due));
                self.timers
                    .push(Reverse((due, self.sequence, uid.to_owned())));
            }
        }
    }

    /// Issues every action that is due (the batch of this moment).
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((due, sequence, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let sequence = *sequence;
            let Some(Reverse((_, _, uid))) = self.timers.pop() else {
                break;
            };
            let Some(tracked) = self.pods.get_mut(&uid) else {
                continue;
            };
            match tracked.timer {
                Some((valid, action, _)) if valid == sequence => {
                    tracked.timer = None;
                    self.launch(&uid, action);
                }
                _ => {}
            }
        }
    }

    fn launch(&mut self, uid: &str, action: Action) {
        let Some(tracked) = self.pods.get_mut(uid) else {
            return;
        };
        let Some(slot) = self.nodes.get_mut(&tracked.info.node) else {
            return;
        };
        let info = tracked.info.clone();
        let patch = match action {
            Action::Start => {
                let pod_ip = if info.host_network {
                    slot.host_ip.clone()
                } else if let Some(ip) = tracked.ip {
                    ip.to_string()
                } else if let Some(ip) = slot.ipam.allocate() {
                    tracked.ip = Some(ip);
                    ip.to_string()
                } else {
                    tracing::warn!(node = %info.node, pod = %info.name, "no free pod IP on the node");
                    tracked.retry_at = Some(Instant::now() + Duration::from_secs(1));
                    self.reschedule(uid);
                    return;
                };
                Some(pod_status::running(
                    &info,
                    &slot.host_ip,
                    &pod_ip,
                    Timestamp::now(),
                ))
            }
            Action::Complete => Some(pod_status::succeeded(&info, Timestamp::now())),
            Action::Delete => {
                (info.phase == "Running").then(|| pod_status::stopped(&info, Timestamp::now()))
            }
        };
        tracked.in_flight = true;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &info.namespace);
        let limit = self.limit.clone();
        let uid = uid.to_owned();
        self.tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut result = Ok(());
            if let Some(patch) = patch {
                result = api
                    .patch_status(&info.name, &patch_params(), &Patch::Merge(patch))
                    .await
                    .map(drop);
            }
            if action == Action::Delete && result.is_ok() {
                let delete = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(info.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                result = api.delete(&info.name, &delete).await.map(drop);
            }
            let outcome = match result {
                Ok(()) => Outcome::Done,
                Err(error) if is_status(&error, &[404, 409]) => Outcome::Gone,
                Err(error) => Outcome::Failed(error),
            };
            (uid, action, outcome)
        });
    }

    fn finished(&mut self, uid: &str, action: Action, outcome: Outcome) {
        let Some(tracked) = self.pods.get_mut(uid) else {
            return;
        };
        tracked.in_flight = false;
        match outcome {
            Outcome::Done | Outcome::Gone => {
                tracked.failures = 0;
                tracked.retry_at = None;
                let counter = match action {
                    Action::Start => {
                        tracked.started_at = Some(Instant::now());
                        &self.counters.started
                    }
                    Action::Complete => {
                        tracked.completed = true;
                        &self.counters.completed
                    }
                    Action::Delete => {
                        tracked.deleted = true;
                        &self.counters.deleted
                    }
                };
                if matches!(outcome, Outcome::Done) {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Failed(error) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracked.failures += 1;
                let backoff = Duration::from_millis(200 << tracked.failures.min(7));
                tracked.retry_at = Some(Instant::now() + backoff);
                tracing::warn!(pod = %tracked.info.name, namespace = %tracked.info.namespace,
                    ?action, %error, "simulated pod update failed; retrying");
            }
        }
        self.reschedule(uid);
    }
}

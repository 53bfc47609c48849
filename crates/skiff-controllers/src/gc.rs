//! The garbage collector (kube's garbage-collector-controller), watch-based.
//!
//! One watch per resource that discovery reports with `list`, `watch` and `delete` (events
//! excepted, as in kube) feeds a graph: every object's identity and `ownerReferences`, and for
//! every owner uid the uids of its dependents. Changes to the graph put work on a queue
//! (deduplicated; an item is never worked on twice at once; failures retry with backoff)
//! that a few workers drain:
//!
//! - *delete* (kube's attemptToDelete) of a dependent: its owners are looked up live (by
//!   `apiVersion`/`kind`/name, and the uid must match). No owner left (all absent): the
//!   dependent is deleted (background; its own `orphan`/`foregroundDeletion` finalizer picks
//!   the policy). Some owners absent or being deleted in the foreground, others present: the
//!   references to the former are removed. All remaining owners being deleted in the
//!   foreground: the dependent is deleted, in the foreground itself when it has dependents
//!   (after unsetting its `blockOwnerDeletion`, so the two cannot wait on each other).
//! - *delete* of an owner marked for deletion with the `foregroundDeletion` finalizer: while
//!   dependents with `blockOwnerDeletion: true` remain they are deleted; once none remain the
//!   finalizer is removed and the API server deletes the owner.
//! - *orphan* of an owner marked for deletion with the `orphan` finalizer: the references to
//!   it are removed from all its dependents, then the finalizer.
//!
//! Triggers: an object whose owner the graph has not seen (checked live), an owner deleted
//! (its dependents), an owner marked for foreground deletion (it and all its dependents), a
//! blocking dependent gone or unblocked (its foreground-deleting owner), an owner marked for
//! orphaning. Discovery is repeated to follow custom resources, and a periodic resync puts
//! every object whose owner is not in the graph back on the queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams, Preconditions};
use kube::discovery::verbs;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use skiff_workloads::Informers;
use tokio::sync::{Notify, mpsc};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::discovery::{Catalog, Served, SharedCatalog};
use crate::serviceaccounts::status_code;

/// The finalizer of an owner deleted with `propagationPolicy: Foreground`.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer of an owner deleted with `propagationPolicy: Orphan`.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// How long the collector waits for the first list of every resource before it starts
/// acting on a graph that may be incomplete.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the garbage collector until `shutdown` is cancelled.
pub async fn run(
    informers: Informers,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = informers.client().clone();
    let collector = Arc::new(Collector {
        catalog: SharedCatalog::new(client.clone(), config.discovery_interval),
        client,
        graph: Mutex::new(Graph::default()),
        queue: Arc::new(Queue::default()),
        absent: Mutex::new(HashSet::new()),
    });
    let mut tasks = JoinSet::new();
    let mut watches: HashMap<String, (Arc<ApiResource>, AbortHandle)> = HashMap::new();
    let (synced_tx, mut synced_rx) = mpsc::unbounded_channel::<String>();
    let mut waiting_for: Option<HashSet<String>> = None;
    let mut sync_deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
    let mut discover_at = tokio::time::Instant::now();
    let mut resync = tokio::time::interval(config.gc_resync_interval);
    resync.tick().await;
    loop {
        if tokio::time::Instant::now() >= discover_at {
            match collector.catalog.refresh().await {
                Ok(catalog) => {
                    let started = collector.follow(&catalog, &mut watches, &mut tasks, &synced_tx);
                    if waiting_for.is_none() {
                        waiting_for = Some(started);
                        sync_deadline = tokio::time::Instant::now() + SYNC_TIMEOUT;
                    }
                }
                Err(error) => tracing::warn!(%error, "garbage collector: discovery failed"),
            }
            discover_at = tokio::time::Instant::now() + config.discovery_interval;
        }
        // Reap watches stopped when their resource went away.
        while tasks.try_join_next().is_some() {}
        let synced = collector.graph().synced;
        if !synced
            && let Some(waiting) = &waiting_for
            && (waiting.is_empty() || tokio::time::Instant::now() >= sync_deadline)
        {
            if !waiting.is_empty() {
                tracing::warn!(
                    unsynced = ?waiting,
                    "garbage collector: starting before every resource was listed"
                );
            }
            collector.graph().synced = true;
            collector.resync();
            for _ in 0..config.gc_workers.max(1) {
                let collector = collector.clone();
                let stop = shutdown.clone();
                tasks.spawn(async move { collector.work(stop).await });
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(key) = synced_rx.recv() => {
                if let Some(waiting) = waiting_for.as_mut() {
                    waiting.remove(&key);
                }
            }
            _ = resync.tick(), if synced => collector.resync(),
            () = tokio::time::sleep_until(discover_at) => {}
            () = tokio::time::sleep_until(sync_deadline), if !synced && waiting_for.is_some() => {}
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Where an object is and who owns it.
#[derive(Debug, Clone)]
struct Node {
    resource: Arc<ApiResource>,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    /// Marked for deletion with the `foregroundDeletion` finalizer.
    foreground: bool,
    /// Marked for deletion with the `orphan` finalizer.
    orphan: bool,
}

impl Node {
    fn api(&self, client: &Client) -> Api<DynamicObject> {
        api_for(client, &self.resource, self.namespace.as_deref())
    }

    fn blocks(&self, owner: &str) -> bool {
        self.owners
            .iter()
            .any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
    }
}

fn api_for(client: &Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Every watched object by uid, and every owner uid's dependents.
#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
    /// Every resource has been listed once (or the wait for that timed out): an owner
    /// missing from `nodes` is worth a live look.
    synced: bool,
}

impl Graph {
    fn dependents_of(&self, owner: &str) -> Vec<String> {
        self.dependents
            .get(owner)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(dependents) = self.dependents.get_mut(owner) {
            dependents.remove(dependent);
            if dependents.is_empty() {
                self.dependents.remove(owner);
            }
        }
    }

    fn is_foreground(&self, uid: &str) -> bool {
        self.nodes.get(uid).is_some_and(|n| n.foreground)
    }
}

/// A unit of work, by the uid of the object it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// Check a dependent's owners (and delete it or drop references), or finish the
    /// foreground deletion of an owner.
    Delete(String),
    /// Release the dependents of an owner marked with the `orphan` finalizer.
    Orphan(String),
}

/// A deduplicating work queue in the manner of client-go's: an item queued twice is there
/// once, an item being worked on is queued again only after, failures come back later.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    order: VecDeque<Work>,
    queued: HashSet<Work>,
    active: HashSet<Work>,
    again: HashSet<Work>,
    failures: HashMap<Work, u32>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, work: Work) {
        let mut state = self.lock();
        if state.queued.contains(&work) {
            return;
        }
        if state.active.contains(&work) {
            state.again.insert(work);
            return;
        }
        state.queued.insert(work.clone());
        state.order.push_back(work);
        drop(state);
        self.ready.notify_one();
    }

    async fn next(&self) -> Work {
        loop {
            let ready = self.ready.notified();
            {
                let mut state = self.lock();
                if let Some(work) = state.order.pop_front() {
                    state.queued.remove(&work);
                    state.active.insert(work.clone());
                    // Others may be waiting for what is left.
                    if !state.order.is_empty() {
                        self.ready.notify_one();
                    }
                    return work;
                }
            }
            ready.await;
        }
    }

    /// Finishes `work`; a failed one comes back after a backoff (100 ms doubling to 30 s).
    fn done(self: &Arc<Self>, work: Work, failed: bool) {
        let mut state = self.lock();
        state.active.remove(&work);
        let delay = if failed {
            let failures = state.failures.entry(work.clone()).or_default();
            *failures += 1;
            Some(Duration::from_millis(100 << (*failures - 1).min(9)).min(Duration::from_secs(30)))
        } else {
            state.failures.remove(&work);
            None
        };
        let again = state.again.remove(&work);
        drop(state);
        if again {
            self.add(work);
        } else if let Some(delay) = delay {
            let queue = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                queue.add(work);
            });
        }
    }
}

/// What a live look at an owner found.
enum Owner {
    /// Gone, or replaced by another object of the same name.
    Absent,
    /// There; `foreground` when it is being deleted in the foreground.
    Present { foreground: bool },
    /// Its kind is not served (or its scope makes no sense): treated as present.
    Unknown,
}

struct Collector {
    client: Client,
    catalog: SharedCatalog,
    graph: Mutex<Graph>,
    queue: Arc<Queue>,
    /// Owners (`<namespace>/<uid>`) recently found absent (cleared when large and on every
    /// resync), to spare lookups when many dependents share a deleted owner.
    absent: Mutex<HashSet<String>>,
}

/// Resources the collector leaves alone (kube's ignored resources): events are many,
/// short-lived, and never owners.
fn ignored(resource: &ApiResource) -> bool {
    resource.plural == "events" && (resource.group.is_empty() || resource.group == "events.k8s.io")
}

fn resource_key(resource: &ApiResource) -> String {
    format!("{}/{}", resource.api_version, resource.plural)
}

impl Collector {
    fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts watches for resources discovery now reports and stops those it no longer
    /// does (their objects leave the graph as if deleted). Returns the keys started.
    fn follow(
        self: &Arc<Self>,
        catalog: &Catalog,
        watches: &mut HashMap<String, (Arc<ApiResource>, AbortHandle)>,
        tasks: &mut JoinSet<()>,
        synced: &mpsc::UnboundedSender<String>,
    ) -> HashSet<String> {
        let wanted: HashMap<String, Served> = catalog
            .preferred()
            .into_iter()
            .filter(|s| s.supports(&[verbs::LIST, verbs::WATCH, verbs::DELETE]))
            .filter(|s| !ignored(&s.resource))
            .map(|s| (resource_key(&s.resource), s))
            .collect();
        let gone: Vec<String> = watches
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some((resource, handle)) = watches.remove(&key) {
                handle.abort();
                self.forget_unseen(&resource, &HashSet::new());
            }
        }
        let mut started = HashSet::new();
        for (key, served) in wanted {
            if watches.contains_key(&key) {
                continue;
            }
            let resource = Arc::new(served.resource);
            let collector = self.clone();
            let synced = synced.clone();
            let watched = resource.clone();
            let watch_key = key.clone();
            let handle = tasks.spawn(async move {
                collector.watch(watched, watch_key, synced).await;
            });
            watches.insert(key.clone(), (resource, handle));
            started.insert(key);
        }
        started
    }

    /// Feeds one resource's objects into the graph.
    async fn watch(
        self: Arc<Self>,
        resource: Arc<ApiResource>,
        key: String,
        synced: mpsc::UnboundedSender<String>,
    ) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), resource.as_ref());
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listing: Option<HashSet<String>> = None;
        let mut first = true;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(object)) => self.observe(&resource, object),
                Ok(watcher::Event::Delete(object)) => {
                    if let Some(uid) = object.uid() {
                        self.remove(&uid);
                    }
                }
                Ok(watcher::Event::Init) => listing = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(object)) => {
                    if let (Some(seen), Some(uid)) = (listing.as_mut(), object.uid()) {
                        seen.insert(uid);
                    }
                    self.observe(&resource, object);
                }
                Ok(watcher::Event::InitDone) => {
                    // Objects deleted while the watch was down are missing from a relist.
                    if let Some(seen) = listing.take() {
                        self.forget_unseen(&resource, &seen);
                    }
                    if first {
                        first = false;
                        let _ = synced.send(key.clone());
                    }
                }
                Err(error) => tracing::debug!(resource = key, %error, "garbage collector watch"),
            }
        }
    }

    /// An object was added or changed.
    fn observe(&self, resource: &Arc<ApiResource>, object: DynamicObject) {
        let Some(uid) = object.uid() else { return };
        let marked = object.metadata.deletion_timestamp.is_some();
        let finalizers = object.finalizers();
        let node = Node {
            resource: resource.clone(),
            namespace: object.namespace(),
            name: object.name_any(),
            owners: object.owner_references().to_vec(),
            foreground: marked && finalizers.iter().any(|f| f == FOREGROUND_FINALIZER),
            orphan: marked && finalizers.iter().any(|f| f == ORPHAN_FINALIZER),
        };
        let mut graph = self.graph();
        let old = graph.nodes.insert(uid.clone(), node.clone());
        let old_owners = old.as_ref().map(|o| o.owners.clone()).unwrap_or_default();
        for previous in &old_owners {
            let kept = node.owners.iter().find(|r| r.uid == previous.uid);
            if kept.is_none() {
                graph.unlink(&previous.uid, &uid);
            }
            // A blocking reference gone (or no longer blocking) may let an owner finish.
            let still_blocks = kept.is_some_and(|r| r.block_owner_deletion == Some(true));
            if previous.block_owner_deletion == Some(true)
                && !still_blocks
                && graph.is_foreground(&previous.uid)
            {
                self.queue.add(Work::Delete(previous.uid.clone()));
            }
        }
        let mut check = false;
        for owner in &node.owners {
            if old_owners.iter().any(|r| r.uid == owner.uid) {
                continue;
            }
            graph
                .dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
            check |= !graph.nodes.contains_key(&owner.uid);
            // A new dependent of an owner being deleted in the foreground goes too.
            check |= graph.is_foreground(&owner.uid);
        }
        if check && graph.synced {
            self.queue.add(Work::Delete(uid.clone()));
        }
        if node.foreground && !old.as_ref().is_some_and(|o| o.foreground) {
            for dependent in graph.dependents_of(&uid) {
                self.queue.add(Work::Delete(dependent));
            }
            self.queue.add(Work::Delete(uid.clone()));
        }
        if node.orphan && !old.as_ref().is_some_and(|o| o.orphan) {
            self.queue.add(Work::Orphan(uid));
        }
    }

    /// An object was deleted: its dependents are looked at, and owners waiting for it.
    fn remove(&self, uid: &str) {
        let mut graph = self.graph();
        let Some(node) = graph.nodes.remove(uid) else {
            return;
        };
        for dependent in graph.dependents_of(uid) {
            self.queue.add(Work::Delete(dependent));
        }
        for owner in &node.owners {
            graph.unlink(&owner.uid, uid);
            if graph.is_foreground(&owner.uid) {
                self.queue.add(Work::Delete(owner.uid.clone()));
            }
        }
    }

    /// Removes the objects of `resource` that are not in `seen`.
    fn forget_unseen(&self, resource: &Arc<ApiResource>, seen: &HashSet<String>) {
        let stale: Vec<String> = self
            .graph()
            .nodes
            .iter()
            .filter(|(uid, node)| Arc::ptr_eq(&node.resource, resource) && !seen.contains(*uid))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in stale {
            self.remove(&uid);
        }
    }

    /// Queues every object whose owner the graph lacks, and every owner that waits to be
    /// finished.
    fn resync(&self) {
        let graph = self.graph();
        for (uid, node) in &graph.nodes {
            if node
                .owners
                .iter()
                .any(|r| !graph.nodes.contains_key(&r.uid))
            {
                self.queue.add(Work::Delete(uid.clone()));
            }
            if node.foreground {
                self.queue.add(Work::Delete(uid.clone()));
                for dependent in graph.dependents_of(uid) {
                    self.queue.add(Work::Delete(dependent));
                }
            }
            if node.orphan {
                self.queue.add(Work::Orphan(uid.clone()));
            }
        }
        drop(graph);
        self.absent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// One worker: takes work until shutdown.
    async fn work(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let work = tokio::select! {
                () = shutdown.cancelled() => return,
                work = self.queue.next() => work,
            };
            let result = match &work {
                Work::Delete(uid) => self.attempt_delete(uid).await,
                Work::Orphan(uid) => self.orphan_dependents(uid).await,
            };
            if let Err(error) = &result {
                tracing::debug!(?work, %error, "garbage collector: will retry");
            }
            self.queue.done(work, result.is_err());
        }
    }

    /// The object `uid` as it is now, if it is still that object.
    async fn latest(&self, uid: &str) -> Result<Option<(Node, DynamicObject)>, kube::Error> {
        let Some(node) = self.graph().nodes.get(uid).cloned() else {
            return Ok(None);
        };
        let object = node.api(&self.client).get_opt(&node.name).await?;
        Ok(object
            .filter(|o| o.uid().as_deref() == Some(uid))
            .map(|o| (node, o)))
    }

    async fn attempt_delete(&self, uid: &str) -> Result<(), kube::Error> {
        let Some((node, object)) = self.latest(uid).await? else {
            return Ok(());
        };
        let finalizers = object.finalizers().to_vec();
        if object.metadata.deletion_timestamp.is_some() {
            if finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
                return self.finish_foreground(uid, &node, object).await;
            }
            return Ok(());
        }
        let references = object.owner_references().to_vec();
        if references.is_empty() {
            return Ok(());
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for reference in &references {
            match self.owner(node.namespace.as_deref(), reference).await? {
                Owner::Absent => dangling.push(reference.uid.clone()),
                Owner::Present { foreground: true } => waiting.push(reference.uid.clone()),
                Owner::Present { foreground: false } | Owner::Unknown => {
                    solid.push(reference.uid.clone());
                }
            }
        }
        let api = node.api(&self.client);
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Owned by someone still there: only the references to the others go.
            let mut changed = object;
            let kept: Vec<OwnerReference> = references
                .into_iter()
                .filter(|r| !dangling.contains(&r.uid) && !waiting.contains(&r.uid))
                .collect();
            changed.metadata.owner_references = Some(kept);
            return tolerate_gone(
                api.replace(&node.name, &PostParams::default(), &changed)
                    .await
                    .map(drop),
            );
        }
        let has_dependents = self
            .graph()
            .dependents
            .get(uid)
            .is_some_and(|d| !d.is_empty());
        let policy = if !waiting.is_empty() && has_dependents {
            // Deleted in the foreground itself; its owner must not wait on it meanwhile, or
            // the two would wait on each other.
            let blocking = references
                .iter()
                .any(|r| waiting.contains(&r.uid) && r.block_owner_deletion == Some(true));
            if blocking {
                let mut changed = object;
                let unblocked: Vec<OwnerReference> = references
                    .into_iter()
                    .map(|mut r| {
                        if waiting.contains(&r.uid) {
                            r.block_owner_deletion = Some(false);
                        }
                        r
                    })
                    .collect();
                changed.metadata.owner_references = Some(unblocked);
                match api
                    .replace(&node.name, &PostParams::default(), &changed)
                    .await
                {
                    Ok(_) => {}
                    Err(error) if status_code(&error) == Some(404) => return Ok(()),
                    Err(error) => return Err(error),
                }
            }
            DeleteParams::foreground()
        } else if finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
            DeleteParams::orphan()
        } else if finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            DeleteParams::foreground()
        } else {
            DeleteParams::background()
        };
        tracing::debug!(
            resource = node.resource.plural,
            namespace = node.namespace,
            name = node.name,
            "garbage collector: deleting an object whose owners are gone"
        );
        let options = policy.preconditions(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        });
        match api.delete(&node.name, &options).await {
            Ok(_) => Ok(()),
            // Gone already, or another object of that name now (the precondition).
            Err(error) if matches!(status_code(&error), Some(404 | 409)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// An owner being deleted in the foreground: its blocking dependents are deleted; when
    /// none remain, its `foregroundDeletion` finalizer goes.
    async fn finish_foreground(
        &self,
        uid: &str,
        node: &Node,
        object: DynamicObject,
    ) -> Result<(), kube::Error> {
        let blocking: Vec<(String, bool)> = {
            let graph = self.graph();
            graph
                .dependents_of(uid)
                .into_iter()
                .filter_map(|d| {
                    let dependent = graph.nodes.get(&d)?;
                    dependent
                        .blocks(uid)
                        .then(|| (d.clone(), dependent.foreground))
                })
                .collect()
        };
        if blocking.is_empty() {
            return self
                .remove_finalizer(node, object, FOREGROUND_FINALIZER)
                .await;
        }
        for (dependent, deleting_its_own) in blocking {
            if !deleting_its_own {
                self.queue.add(Work::Delete(dependent));
            }
        }
        // The graph brings the owner back as its blocking dependents go.
        Ok(())
    }

    /// An owner marked with the `orphan` finalizer: references to it are removed from its
    /// dependents, then the finalizer.
    async fn orphan_dependents(&self, uid: &str) -> Result<(), kube::Error> {
        let Some((_, object)) = self.latest(uid).await? else {
            return Ok(());
        };
        let marked = object.metadata.deletion_timestamp.is_some()
            && object.finalizers().iter().any(|f| f == ORPHAN_FINALIZER);
        if !marked {
            return Ok(());
        }
        let dependents = self.graph().dependents_of(uid);
        for dependent in dependents {
            let Some((dependent_node, mut dependent_object)) = self.latest(&dependent).await?
            else {
                continue;
            };
            let references = dependent_object.owner_references().to_vec();
            if !references.iter().any(|r| r.uid == uid) {
                continue;
            }
            let kept: Vec<OwnerReference> =
                references.into_iter().filter(|r| r.uid != uid).collect();
            dependent_object.metadata.owner_references = Some(kept);
            tolerate_gone(
                dependent_node
                    .api(&self.client)
                    .replace(
                        &dependent_node.name,
                        &PostParams::default(),
                        &dependent_object,
                    )
                    .await
                    .map(drop),
            )?;
        }
        // Read again: the owner may have changed while its dependents were released.
        let Some((node, object)) = self.latest(uid).await? else {
            return Ok(());
        };
        self.remove_finalizer(&node, object, ORPHAN_FINALIZER).await
    }

    async fn remove_finalizer(
        &self,
        node: &Node,
        mut object: DynamicObject,
        finalizer: &str,
    ) -> Result<(), kube::Error> {
        let finalizers = object.finalizers_mut();
        let before = finalizers.len();
        finalizers.retain(|f| f != finalizer);
        if finalizers.len() == before {
            return Ok(());
        }
        tolerate_gone(
            node.api(&self.client)
                .replace(&node.name, &PostParams::default(), &object)
                .await
                .map(drop),
        )
    }

    /// Looks an owner up live: by kind and name in the dependent's namespace (or the
    /// cluster), and it must carry the referenced uid.
    async fn owner(
        &self,
        namespace: Option<&str>,
        reference: &OwnerReference,
    ) -> Result<Owner, kube::Error> {
        // By namespace too: an owner in another namespace is absent from this one only.
        let absent_key = format!("{}/{}", namespace.unwrap_or_default(), reference.uid);
        if self
            .absent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&absent_key)
        {
            return Ok(Owner::Absent);
        }
        let catalog = self.catalog.get().await?;
        let Some(served) = catalog.resolve(&reference.api_version, &reference.kind) else {
            tracing::debug!(
                api_version = reference.api_version,
                kind = reference.kind,
                "garbage collector: owner kind not served"
            );
            return Ok(Owner::Unknown);
        };
        let owner_namespace = match (served.namespaced(), namespace) {
            (true, Some(namespace)) => Some(namespace),
            (false, _) => None,
            // A namespaced owner of a cluster-scoped object cannot be found.
            (true, None) => return Ok(Owner::Unknown),
        };
        let api = api_for(&self.client, &served.resource, owner_namespace);
        let found = api.get_opt(&reference.name).await?;
        match found {
            Some(owner) if owner.uid().as_deref() == Some(reference.uid.as_str()) => {
                let foreground = owner.metadata.deletion_timestamp.is_some()
                    && owner.finalizers().iter().any(|f| f == FOREGROUND_FINALIZER);
                Ok(Owner::Present { foreground })
            }
            _ => {
                let mut absent = self.absent.lock().unwrap_or_else(|e| e.into_inner());
                if absent.len() > 10_000 {
                    absent.clear();
                }
                absent.insert(absent_key);
                Ok(Owner::Absent)
            }
        }
    }
}

/// A write to an object that is gone meanwhile has nothing left to do.
fn tolerate_gone(result: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(error) if status_code(&error) == Some(404) => Ok(()),
        other => other,
    }
}

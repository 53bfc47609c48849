//! The watch cache: every object of the cluster in memory, kept current by one store watch,
//! with a window of recent events. Lists and watches are served from here, so a thousand
//! watchers cost the store one watch; each event is decoded and encoded once, whoever
//! receives it.
//!
//! Invariants: `State::revision` is the newest store revision applied; `history` holds every
//! event after `State::oldest`, in revision order; an event is broadcast while the state lock
//! is held, so a watcher that takes a snapshot and subscribes under the lock misses nothing
//! and sees nothing twice. A watch from before the window is served by the store's own
//! history (or answered 410 Expired once that is compacted). Lock order: the state lock, then
//! the channels' own locks (the applier sends under the state lock); nothing may hold a
//! channel guard (a `watch::Ref`) while it takes the state lock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{Error as StoreError, EventKind, KeyRange, KeyValue, ReadAt, Store};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ApiError;
use crate::selector::Selectors;

/// Where every object key starts.
const ROOT: &str = "/registry/";
/// Events kept for watchers that resume from a recent revision.
const HISTORY: usize = 16 * 1024;
/// Events a live watcher may fall behind before it is cut off (it then resumes).
const LIVE_BUFFER: usize = 8 * 1024;
/// How long a request for a revision the cache has not seen yet waits for it.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// What happened to an object, in the words of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One applied change, shared by every watcher that receives it.
#[derive(Debug)]
pub(crate) struct CacheEvent {
    pub change: Change,
    pub key: String,
    pub revision: i64,
    /// The object after the change (for a deletion: as it was, at the deletion's revision).
    pub object: Arc<Value>,
    /// The object before the change, to tell when it enters or leaves a selection.
    pub prev: Option<Arc<Value>>,
    encoded: OnceLock<Bytes>,
}

impl CacheEvent {
    fn new(
        change: Change,
        key: String,
        revision: i64,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
    ) -> CacheEvent {
        CacheEvent {
            change,
            key,
            revision,
            object,
            prev,
            encoded: OnceLock::new(),
        }
    }

    /// The object as JSON, encoded once for all watchers.
    pub(crate) fn encoded_object(&self) -> &Bytes {
        self.encoded.get_or_init(|| {
            Bytes::from(serde_json::to_vec(&*self.object).expect("a JSON value always encodes"))
        })
    }
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// The newest revision applied.
    revision: i64,
    /// Every event after this revision is in `history`.
    oldest: i64,
    /// Set once the feed from the store has failed; the cache is then stale.
    broken: Option<String>,
}

struct Shared {
    state: RwLock<State>,
    events: broadcast::Sender<Arc<CacheEvent>>,
    revision: watch::Sender<i64>,
}

/// The watch cache; cheap to clone.
#[derive(Clone)]
pub(crate) struct WatchCache {
    shared: Arc<Shared>,
    store: Store,
    feeder: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
    shutdown: CancellationToken,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The current state as synthetic ADDED events, then changes (`resourceVersion` unset or
    /// `0`).
    Snapshot,
    /// Like `Snapshot`, once the cache has reached this revision (`sendInitialEvents=true`).
    SnapshotAfter(i64),
    /// Changes after this revision.
    After(i64),
}

/// An event a watcher receives: a cached change or a synthetic ADDED of the snapshot.
#[derive(Debug, Clone)]
pub(crate) enum Delivery {
    Event {
        change: Change,
        event: Arc<CacheEvent>,
    },
    Snapshot(Arc<Value>),
    /// The watcher has seen everything up to this revision (for bookmarks).
    Progress(i64),
    /// The requested history is gone (410 Expired) or the feed failed.
    Error(ApiError),
}

impl WatchCache {
    /// Loads every object and starts following the store.
    pub(crate) async fn start(store: Store) -> Result<WatchCache, StoreError> {
        let range = KeyRange::prefix(ROOT)?;
        let mut objects = BTreeMap::new();
        let mut page_range = range.clone();
        let mut at = ReadAt::Latest;
        let revision = loop {
            let page = store.range(&page_range, at, 1000).await?;
            at = ReadAt::Revision(page.revision);
            for kv in &page.kvs {
                if let Some(object) = decode(kv, kv.mod_revision) {
                    objects.insert(kv.key.clone(), Arc::new(object));
                }
            }
            match page.kvs.last() {
                Some(last) if page.more => page_range = range.after(&last.key),
                _ => break page.revision,
            }
        };
        let feed = store.watch(range, Some(revision + 1));
        let (events, _) = broadcast::channel(LIVE_BUFFER);
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                objects,
                history: VecDeque::new(),
                revision,
                oldest: revision,
                broken: None,
            }),
            events,
            revision: watch::channel(revision).0,
        });
        let shutdown = CancellationToken::new();
        let feeder = tokio::spawn(feed_from(shared.clone(), feed, shutdown.clone()));
        Ok(WatchCache {
            shared,
            store,
            feeder: Arc::new(std::sync::Mutex::new(Some(feeder))),
            shutdown,
        })
    }

    /// Stops following the store.
    pub(crate) async fn stop(&self) {
        self.shutdown.cancel();
        let handle = self.feeder.lock().expect("not poisoned").take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// The newest revision the cache has applied.
    pub(crate) fn revision(&self) -> i64 {
        *self.shared.revision.borrow()
    }

    /// Why the cache is not serving, if it is not.
    pub(crate) fn broken(&self) -> Option<String> {
        self.shared
            .state
            .read()
            .expect("not poisoned")
            .broken
            .clone()
    }

    /// Waits until the cache has applied `revision`; a revision it does not reach in time is
    /// "too large" (504, as kube-apiserver answers).
    pub(crate) async fn wait_for(&self, revision: i64) -> Result<(), ApiError> {
        let mut rx = self.shared.revision.subscribe();
        // Only whether it was reached: the `Ref` `wait_for` returns holds the revision
        // channel's read lock, and `apply` sends on that channel while it holds the state's
        // write lock, so keeping the `Ref` across `broken()` (the state's read lock) deadlocks.
        let reached = tokio::time::timeout(FRESHNESS_WAIT, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if let Some(why) = self.broken() {
            return Err(ApiError::unavailable(format!(
                "watch cache unavailable: {why}"
            )));
        }
        if reached {
            Ok(())
        } else {
            Err(ApiError::timeout(format!(
                "Too large resource version: {revision}, current: {}",
                self.revision()
            )))
        }
    }

    /// A consistent read: waits until the cache has every write the store has committed.
    pub(crate) async fn sync(&self) -> Result<(), ApiError> {
        let head = self.store.revision().await.map_err(|e| {
            tracing::error!(error = %e, "store failed");
            ApiError::internal(format!("storage error: {e}"))
        })?;
        self.wait_for(head).await
    }

    /// The object at `key`, as far as the cache has seen.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Value>> {
        let state = self.shared.state.read().expect("not poisoned");
        state.objects.get(key).cloned()
    }

    /// The objects under `prefix` that `selectors` select, with the revision they are as of.
    pub(crate) fn list(&self, prefix: &str, selectors: &Selectors) -> (i64, Vec<Arc<Value>>) {
        let state = self.shared.state.read().expect("not poisoned");
        let items = state
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, object)| selectors.matches(object))
            .map(|(_, object)| object.clone())
            .collect();
        (state.revision, items)
    }

    /// Events under `prefix` from `start` on, as selected by `selectors`. Ends when the watcher
    /// falls too far behind (the client resumes from its last revision) or the feed stops.
    pub(crate) async fn watch(
        &self,
        prefix: String,
        start: Start,
        selectors: Selectors,
    ) -> Result<futures::stream::BoxStream<'static, Delivery>, ApiError> {
        if let Start::After(revision) | Start::SnapshotAfter(revision) = start
            && revision > self.revision()
        {
            self.wait_for(revision).await?;
        }
        let (initial, live, from) = {
            let state = self.shared.state.read().expect("not poisoned");
            if let Some(why) = &state.broken {
                return Err(ApiError::unavailable(format!(
                    "watch cache unavailable: {why}"
                )));
            }
            let live = self.shared.events.subscribe();
            let initial: Vec<Delivery> = match start {
                Start::Snapshot | Start::SnapshotAfter(_) => state
                    .objects
                    .range(prefix.clone()..)
                    .take_while(|(key, _)| key.starts_with(&prefix))
                    .filter(|(_, object)| selectors.matches(object))
                    .map(|(_, object)| Delivery::Snapshot(object.clone()))
                    .collect(),
                Start::After(revision) if revision >= state.oldest => state
                    .history
                    .iter()
                    .filter(|e| e.revision > revision)
                    .filter_map(|e| select(e, &prefix, &selectors))
                    .collect(),
                Start::After(revision) => {
                    drop(live);
                    drop(state);
                    return Ok(self.watch_store(prefix, revision, selectors));
                }
            };
            (initial, live, state.revision)
        };
        let live = live_events(live, from, prefix, selectors);
        Ok(futures::stream::iter(initial)
            .chain(futures::stream::iter([Delivery::Progress(from)]))
            .chain(live)
            .boxed())
    }

    /// A watch from before the cache's window, read from the store's history.
    fn watch_store(
        &self,
        prefix: String,
        revision: i64,
        selectors: Selectors,
    ) -> futures::stream::BoxStream<'static, Delivery> {
        let range = match KeyRange::prefix(&prefix) {
            Ok(range) => range,
            Err(e) => {
                return futures::stream::iter([Delivery::Error(ApiError::bad_request(
                    e.to_string(),
                ))])
                .boxed();
            }
        };
        let requested = revision;
        self.store
            .watch(range, Some(revision + 1))
            .map(move |item| match item {
                Ok(event) => to_cache_event(&event)
                    .and_then(|cached| select(&Arc::new(cached), &prefix, &selectors))
                    .unwrap_or(Delivery::Progress(event.revision)),
                Err(StoreError::Compacted { compacted, .. }) => {
                    Delivery::Error(ApiError::expired(requested, compacted))
                }
                Err(other) => {
                    Delivery::Error(ApiError::internal(format!("storage error: {other}")))
                }
            })
            .boxed()
    }
}

/// The events after `from` under `prefix` that `selectors` select, and progress marks for the
/// rest, until the watcher lags or the feed closes.
fn live_events(
    rx: broadcast::Receiver<Arc<CacheEvent>>,
    from: i64,
    prefix: String,
    selectors: Selectors,
) -> futures::stream::BoxStream<'static, Delivery> {
    futures::stream::unfold(
        (rx, from, prefix, selectors),
        |(mut rx, from, prefix, selectors)| async move {
            loop {
                match rx.recv().await {
                    Ok(event) if event.revision <= from => continue,
                    Ok(event) => {
                        let delivery = select(&event, &prefix, &selectors)
                            .unwrap_or(Delivery::Progress(event.revision));
                        return Some((delivery, (rx, event.revision, prefix, selectors)));
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "watcher fell behind; closing its stream");
                        return None;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
    .boxed()
}

/// How `event` looks to a watcher of `prefix` with `selectors`: objects entering the selection
/// are ADDED, leaving it DELETED, as kube-apiserver reports them.
fn select(event: &Arc<CacheEvent>, prefix: &str, selectors: &Selectors) -> Option<Delivery> {
    if !event.key.starts_with(prefix) {
        return None;
    }
    let now = selectors.matches(&event.object);
    let before = event.prev.as_ref().is_some_and(|p| selectors.matches(p));
    let change = match event.change {
        Change::Added if now => Change::Added,
        Change::Deleted if now => Change::Deleted,
        Change::Modified if now && before => Change::Modified,
        Change::Modified if now => Change::Added,
        Change::Modified if before => Change::Deleted,
        _ => return None,
    };
    Some(Delivery::Event {
        change,
        event: event.clone(),
    })
}

/// Applies the store's events until the store closes or `shutdown`.
async fn feed_from(shared: Arc<Shared>, mut feed: skiff_store::Watch, shutdown: CancellationToken) {
    loop {
        let item = tokio::select! {
            item = feed.next() => item,
            () = shutdown.cancelled() => return,
        };
        match item {
            Some(Ok(event)) => apply(&shared, &event),
            Some(Err(err)) => {
                tracing::error!(error = %err, "watch cache lost its feed from the store");
                shared.state.write().expect("not poisoned").broken = Some(err.to_string());
                shared.revision.send_replace(i64::MAX);
                return;
            }
            None => {
                shared.state.write().expect("not poisoned").broken = Some("store closed".into());
                shared.revision.send_replace(i64::MAX);
                return;
            }
        }
    }
}

/// Applies one store event. The previous value is the object the cache already holds, shared
/// rather than decoded again; a value that is not JSON (logged) only advances the revision.
fn apply(shared: &Shared, event: &skiff_store::Event) {
    let mut state = shared.state.write().expect("not poisoned");
    let key = event.kv.key.clone();
    let held = state.objects.get(&key).cloned();
    let cached = match event.kind {
        EventKind::Put => decode(&event.kv, event.revision).map(|object| {
            let change = if held.is_some() {
                Change::Modified
            } else {
                Change::Added
            };
            CacheEvent::new(change, key.clone(), event.revision, Arc::new(object), held)
        }),
        EventKind::Delete => held
            .clone()
            .or_else(|| {
                let prev = event.prev.as_ref()?;
                decode(prev, prev.mod_revision).map(Arc::new)
            })
            .map(|last| {
                // A deleted object is reported as it was, at the deletion's revision.
                let mut object = (*last).clone();
                if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.insert(
                        "resourceVersion".to_owned(),
                        Value::String(event.revision.to_string()),
                    );
                }
                CacheEvent::new(
                    Change::Deleted,
                    key.clone(),
                    event.revision,
                    Arc::new(object),
                    Some(last),
                )
            }),
    };
    state.revision = state.revision.max(event.revision);
    if let Some(cached) = cached {
        let cached = Arc::new(cached);
        match cached.change {
            Change::Deleted => {
                state.objects.remove(&key);
            }
            Change::Added | Change::Modified => {
                state.objects.insert(key, cached.object.clone());
            }
        }
        state.history.push_back(cached.clone());
        if state.history.len() > HISTORY
            && let Some(dropped) = state.history.pop_front()
        {
            state.oldest = dropped.revision;
        }
        // Sent under the lock: see the module's invariants.
        let _ = shared.events.send(cached);
    }
    shared.revision.send_replace(state.revision);
}

fn to_cache_event(event: &skiff_store::Event) -> Option<CacheEvent> {
    let prev = event
        .prev
        .as_ref()
        .and_then(|kv| decode(kv, kv.mod_revision))
        .map(Arc::new);
    match event.kind {
        EventKind::Put => {
            let object = Arc::new(decode(&event.kv, event.revision)?);
            let change = if prev.is_some() {
                Change::Modified
            } else {
                Change::Added
            };
            Some(CacheEvent::new(
                change,
                event.kv.key.clone(),
                event.revision,
                object,
                prev,
            ))
        }
        EventKind::Delete => {
            // A deleted object is reported as it was, at the deletion's revision.
            let last = event.prev.as_ref()?;
            let object = Arc::new(decode(last, event.revision)?);
            Some(CacheEvent::new(
                Change::Deleted,
                event.kv.key.clone(),
                event.revision,
                object,
                prev,
            ))
        }
    }
}

/// A stored value with its `resourceVersion` filled in; `None` for the allocator's keys, which
/// hold no objects, and (logged) for anything else that is not JSON.
fn decode(kv: &KeyValue, revision: i64) -> Option<Value> {
    if kv.key.starts_with(crate::allocator::RANGES_PREFIX) {
        return None;
    }
    match serde_json::from_slice::<Value>(&kv.value) {
        Ok(mut object) => {
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.insert(
                    "resourceVersion".to_owned(),
                    Value::String(revision.to_string()),
                );
            }
            Some(object)
        }
        Err(e) => {
            tracing::error!(key = %kv.key, error = %e, "stored object is not JSON; not cached");
            None
        }
    }
}

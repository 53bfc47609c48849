//! The watch cache: every object of the cluster in memory, kept current by one store watch,
//! with a window of recent events. Lists and watches are served from here, so a thousand
//! watchers cost the store one watch; each event is decoded and encoded once, whoever
//! receives it.
//!
//! Objects are held compactly, as [`CachedObject`]s: the object's JSON (with its
//! `resourceVersion`), encoded once when the change is applied, and the few strings selectors
//! read ([`Attrs`]). A decoded `serde_json::Value` costs many times its JSON; JSON lists and
//! watch events are written from the bytes as they are, and other readers decode on demand.
//!
//! Invariants: `State::revision` is the newest store revision applied; `history` holds every
//! event after `State::oldest`, in revision order (it keeps at most `HISTORY` events and
//! `HISTORY_BYTES` of their objects' JSON; `oldest` moves up to each event dropped); an event
//! is broadcast while the state lock is held, so a watcher that takes a snapshot and
//! subscribes under the lock misses nothing and sees nothing twice. A watch from before the
//! window is served by the store's own history (or answered 410 Expired once that is
//! compacted). Lock order: the state lock, then the channels' own locks (the applier sends
//! under the state lock); nothing may hold a channel guard (a `watch::Ref`) while it takes
//! the state lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use skiff_store::{Error as StoreError, EventKind, KeyRange, KeyValue, ReadAt, Store};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ApiError;
use crate::selector::{Attrs, Selectors};

/// How long a collection found empty by a consistent read is taken as still empty (changes
/// this cache or server sees end it sooner; it only bounds what another server writes).
const FOUND_EMPTY_TTL: Duration = Duration::from_secs(10);
/// Where every object key starts.
const ROOT: &str = "/registry/";
/// Events kept for watchers that resume from a recent revision. Each kind's window starts
/// after its newest dropped event (see `State::dropped`), so a kind that was quiet while a
/// burst of pod changes went through stays resumable from the cache. A watch from before its
/// window is served from the store's history instead (a query rather than a copy), so the
/// window, the cache's largest cost after the objects themselves, is kept short.
const HISTORY: usize = 8 * 1024;
/// At most this much of those events' objects' JSON: the window is shorter when objects are
/// large, rather than the cache's memory larger.
const HISTORY_BYTES: usize = 16 * 1024 * 1024;
/// Events a live watcher may fall behind before it is cut off (it then resumes from the
/// history). The channel holds on to this many events too, so it stays within `HISTORY`.
const LIVE_BUFFER: usize = 4 * 1024;
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

/// One version of an object as the cache holds it: its JSON, compact and with
/// `resourceVersion` filled in, and what selectors read of it.
#[derive(Debug)]
pub(crate) struct CachedObject {
    json: Bytes,
    attrs: Attrs,
}

impl CachedObject {
    /// `object`, an object of `group`/`plural` (the core group is `""`).
    pub(crate) fn new(object: &Value, group: &str, plural: &str) -> CachedObject {
        CachedObject {
            json: encode(object),
            attrs: Attrs::of(object, group, plural),
        }
    }

    /// The object as JSON, encoded once for every reader.
    pub(crate) fn json(&self) -> &Bytes {
        &self.json
    }

    /// Its labels and selectable fields, without decoding it.
    pub(crate) fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// The object, decoded (for readers that need more than its JSON or attributes).
    pub(crate) fn to_value(&self) -> Value {
        // The bytes were encoded from a `Value` that the same parser had decoded from the
        // store, so they decode (within its nesting limit) again.
        serde_json::from_slice(&self.json).expect("the cache's own JSON decodes")
    }

    /// The same object with its `resourceVersion` set to `revision` (a deletion's).
    fn at_revision(&self, revision: i64) -> CachedObject {
        let mut object = self.to_value();
        set_resource_version(&mut object, revision);
        CachedObject {
            json: encode(&object),
            attrs: self.attrs.clone(),
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
    pub object: Arc<CachedObject>,
    /// The object before the change, to tell when it enters or leaves a selection.
    pub prev: Option<Arc<CachedObject>>,
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// The length of the JSON of the objects of the events in `history`.
    history_bytes: usize,
    /// The newest revision applied.
    revision: i64,
    /// Every event after this revision is in `history`.
    oldest: i64,
    /// The revision the cache started from: every event after it was recorded.
    started: i64,
    /// The newest revision dropped from `history`, by kind (`/registry/<group>/<plural>/`):
    /// every event of a kind after its entry (or after `started`) is still in `history`.
    /// Pod churn moves `oldest` along fast; this keeps watches of quiet kinds resumable, as
    /// kube-apiserver's cache per resource type does.
    dropped: HashMap<String, i64>,
    /// Set once the feed from the store has failed; the cache is then stale.
    broken: Option<String>,
}

impl State {
    /// Appends `event` to the history, dropping the oldest events while it holds more than
    /// `max_events` or more than `max_bytes` of JSON; `oldest` follows what is dropped.
    fn record(&mut self, event: Arc<CacheEvent>, max_events: usize, max_bytes: usize) {
        self.history_bytes += event.object.json.len();
        self.history.push_back(event);
        while self.history.len() > max_events || self.history_bytes > max_bytes {
            let Some(dropped) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= dropped.object.json.len();
            self.oldest = dropped.revision;
            let kind = kind_prefix(&dropped.key).unwrap_or(ROOT);
            match self.dropped.get_mut(kind) {
                Some(revision) => *revision = dropped.revision,
                None => {
                    self.dropped.insert(kind.to_owned(), dropped.revision);
                }
            }
        }
    }

    /// Every event under `prefix` after this revision is in `history`.
    fn oldest_under(&self, prefix: &str) -> i64 {
        match kind_prefix(prefix) {
            Some(kind) => self.dropped.get(kind).copied().unwrap_or(self.started),
            None => self.oldest,
        }
    }
}

struct Shared {
    state: RwLock<State>,
    events: broadcast::Sender<Arc<CacheEvent>>,
    revision: watch::Sender<i64>,
    /// Collections a consistent read recently found empty, and when (see
    /// [`WatchCache::list_or_sync`]). Never held with the state lock.
    found_empty: Mutex<HashMap<String, Instant>>,
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
    Snapshot(Arc<CachedObject>),
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
                history_bytes: 0,
                revision,
                oldest: revision,
                started: revision,
                dropped: HashMap::new(),
                broken: None,
            }),
            events,
            revision: watch::channel(revision).0,
            found_empty: Mutex::default(),
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

    /// The objects under `prefix`, for admission: what the cache holds, or, when it holds none,
    /// what a consistent read finds, so that one created a moment ago counts. A collection
    /// found empty that way is taken as empty without asking the store again for
    /// [`FOUND_EMPTY_TTL`], unless an object under it is cached or written through this server
    /// ([`WatchCache::forget_empty`]) meanwhile: upstream admission's live-lookup cache, which
    /// spares a create in a namespace with no quota a store round trip.
    pub(crate) async fn list_or_sync(
        &self,
        prefix: &str,
    ) -> Result<Vec<Arc<CachedObject>>, ApiError> {
        let everything = Selectors::default();
        let (_, cached) = self.list(prefix, &everything);
        if !cached.is_empty() {
            return Ok(cached);
        }
        let recently_empty = self
            .shared
            .found_empty
            .lock()
            .expect("not poisoned")
            .get(prefix)
            .is_some_and(|at| at.elapsed() < FOUND_EMPTY_TTL);
        if recently_empty {
            return Ok(Vec::new());
        }
        self.sync().await?;
        let (_, found) = self.list(prefix, &everything);
        if found.is_empty() {
            let mut empty = self.shared.found_empty.lock().expect("not poisoned");
            empty.retain(|_, at| at.elapsed() < FOUND_EMPTY_TTL);
            empty.insert(prefix.to_owned(), Instant::now());
        }
        Ok(found)
    }

    /// Forgets that the collection holding `key` was found empty: an object was just written
    /// there.
    pub(crate) fn forget_empty(&self, key: &str) {
        forget_empty(&self.shared, key);
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
    pub(crate) fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let state = self.shared.state.read().expect("not poisoned");
        state.objects.get(key).cloned()
    }

    /// The objects under `prefix` that `selectors` select, with the revision they are as of.
    pub(crate) fn list(
        &self,
        prefix: &str,
        selectors: &Selectors,
    ) -> (i64, Vec<Arc<CachedObject>>) {
        let state = self.shared.state.read().expect("not poisoned");
        let items = state
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, object)| selectors.matches(object.attrs()))
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
                    .filter(|(_, object)| selectors.matches(object.attrs()))
                    .map(|(_, object)| Delivery::Snapshot(object.clone()))
                    .collect(),
                Start::After(revision) if revision >= state.oldest_under(&prefix) => state
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
    let now = selectors.matches(event.object.attrs());
    let before = event
        .prev
        .as_ref()
        .is_some_and(|p| selectors.matches(p.attrs()));
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
/// Drops the empty mark of the collection `key` is in (its key up to the last `/`).
fn forget_empty(shared: &Shared, key: &str) {
    let Some(end) = key.rfind('/') else { return };
    let mut empty = shared.found_empty.lock().expect("not poisoned");
    if !empty.is_empty() {
        empty.remove(&key[..=end]);
    }
}

fn apply(shared: &Shared, event: &skiff_store::Event) {
    // Before the object is visible: an admission that then finds it missing still finds the
    // empty mark gone and reads again.
    if event.kind == EventKind::Put {
        forget_empty(shared, &event.kv.key);
    }
    // Decoded and encoded before the lock is taken: that needs nothing of the state.
    let put = match event.kind {
        EventKind::Put => decode(&event.kv, event.revision).map(Arc::new),
        EventKind::Delete => None,
    };
    let mut state = shared.state.write().expect("not poisoned");
    let key = event.kv.key.clone();
    let held = state.objects.get(&key).cloned();
    let cached = match event.kind {
        EventKind::Put => put.map(|object| {
            let change = if held.is_some() {
                Change::Modified
            } else {
                Change::Added
            };
            CacheEvent {
                change,
                key: key.clone(),
                revision: event.revision,
                object,
                prev: held,
            }
        }),
        EventKind::Delete => held
            .or_else(|| {
                let prev = event.prev.as_ref()?;
                decode(prev, prev.mod_revision).map(Arc::new)
            })
            .map(|last| CacheEvent {
                change: Change::Deleted,
                key: key.clone(),
                revision: event.revision,
                // A deleted object is reported as it was, at the deletion's revision.
                object: Arc::new(last.at_revision(event.revision)),
                prev: Some(last),
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
        state.record(cached.clone(), HISTORY, HISTORY_BYTES);
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
    let (change, object) = match event.kind {
        EventKind::Put => {
            let change = if prev.is_some() {
                Change::Modified
            } else {
                Change::Added
            };
            (change, decode(&event.kv, event.revision)?)
        }
        // A deleted object is reported as it was, at the deletion's revision.
        EventKind::Delete => (
            Change::Deleted,
            decode(event.prev.as_ref()?, event.revision)?,
        ),
    };
    Some(CacheEvent {
        change,
        key: event.kv.key.clone(),
        revision: event.revision,
        object: Arc::new(object),
        prev,
    })
}

/// A stored value with its `resourceVersion` filled in; `None` for the allocator's keys, which
/// hold no objects, and (logged) for anything else that is not JSON.
fn decode(kv: &KeyValue, revision: i64) -> Option<CachedObject> {
    if kv.key.starts_with(crate::allocator::RANGES_PREFIX) {
        return None;
    }
    match serde_json::from_slice::<Value>(&kv.value) {
        Ok(mut object) => {
            set_resource_version(&mut object, revision);
            let (group, plural) = kind_of(&kv.key);
            Some(CachedObject::new(&object, group, plural))
        }
        Err(e) => {
            tracing::error!(key = %kv.key, error = %e, "stored object is not JSON; not cached");
            None
        }
    }
}

fn set_resource_version(object: &mut Value, revision: i64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(revision.to_string()),
        );
    }
}

/// The group (`""` for the core group) and plural of the objects under `key`
/// (`/registry/<group>/<plural>/...`, see `objects::key`).
fn kind_of(key: &str) -> (&str, &str) {
    let mut parts = key.strip_prefix(ROOT).unwrap_or(key).split('/');
    let group = parts.next().unwrap_or_default();
    let plural = parts.next().unwrap_or_default();
    (if group == "core" { "" } else { group }, plural)
}

/// The kind part (`/registry/<group>/<plural>/`) of a key or of a collection's prefix, if it
/// names a kind.
fn kind_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(ROOT)?;
    let group_end = rest.find('/')?;
    let plural_end = group_end + 1 + rest[group_end + 1..].find('/')?;
    (plural_end > group_end + 1).then(|| &key[..ROOT.len() + plural_end + 1])
}

/// Compact JSON in an allocation of its own length (an encoder's buffer grows by doubling,
/// and the cache keeps these for long).
fn encode(object: &Value) -> Bytes {
    let json = serde_json::to_vec(object).expect("a JSON value always encodes");
    Bytes::from(json.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shared() -> Shared {
        Shared {
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_bytes: 0,
                revision: 1,
                oldest: 1,
                started: 1,
                dropped: HashMap::new(),
                broken: None,
            }),
            events: broadcast::channel(16).0,
            revision: watch::channel(1).0,
            found_empty: Mutex::default(),
        }
    }

    fn kv(key: &str, revision: i64, value: &Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            create_revision: revision,
            mod_revision: revision,
            value: Bytes::from(value.to_string()),
        }
    }

    fn put(key: &str, revision: i64, value: &Value, prev: Option<KeyValue>) -> skiff_store::Event {
        skiff_store::Event {
            kind: EventKind::Put,
            revision,
            kv: kv(key, revision, value),
            prev,
        }
    }

    fn pod(phase: &str) -> Value {
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": phase},
        })
    }

    const KEY: &str = "/registry/core/pods/ns/p";

    #[test]
    fn objects_are_held_as_json_with_their_revision_and_selectable_attributes() {
        let shared = shared();
        apply(&shared, &put(KEY, 2, &pod("Pending"), None));
        let held = shared.state.read().unwrap().objects[KEY].clone();
        let mut expected = pod("Pending");
        expected["metadata"]["resourceVersion"] = json!("2");
        assert_eq!(held.to_value(), expected);
        assert_eq!(
            serde_json::from_slice::<Value>(held.json()).unwrap(),
            expected
        );
        let attrs = held.attrs();
        assert_eq!((attrs.name(), attrs.namespace()), (Some("p"), Some("ns")));
        use crate::selector::Selectable;
        assert_eq!(attrs.label("app"), Some("web"));
        assert_eq!(attrs.field("spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(attrs.field("status.phase").as_deref(), Some("Pending"));
    }

    #[test]
    fn events_share_the_held_objects_and_deletions_carry_the_deletion_revision() {
        let shared = shared();
        apply(&shared, &put(KEY, 2, &pod("Pending"), None));
        let first = shared.state.read().unwrap().objects[KEY].clone();
        apply(
            &shared,
            &put(KEY, 3, &pod("Running"), Some(kv(KEY, 2, &pod("Pending")))),
        );
        apply(
            &shared,
            &skiff_store::Event {
                kind: EventKind::Delete,
                revision: 4,
                kv: KeyValue {
                    key: KEY.to_owned(),
                    create_revision: 0,
                    mod_revision: 4,
                    value: Bytes::new(),
                },
                prev: Some(kv(KEY, 3, &pod("Running"))),
            },
        );
        let state = shared.state.read().unwrap();
        assert!(state.objects.is_empty());
        let changes: Vec<_> = state
            .history
            .iter()
            .map(|e| (e.change, e.revision))
            .collect();
        assert_eq!(
            changes,
            [
                (Change::Added, 2),
                (Change::Modified, 3),
                (Change::Deleted, 4)
            ]
        );
        // The modification's previous object is the one the cache held, not a new copy.
        assert!(Arc::ptr_eq(state.history[1].prev.as_ref().unwrap(), &first));
        let deleted = &state.history[2];
        assert!(Arc::ptr_eq(
            deleted.prev.as_ref().unwrap(),
            &state.history[1].object
        ));
        let object = deleted.object.to_value();
        assert_eq!(object["metadata"]["resourceVersion"], "4");
        assert_eq!(object["status"]["phase"], "Running");
        assert_eq!(deleted.object.attrs(), state.history[1].object.attrs());
        assert_eq!(state.revision, 4);
    }

    #[test]
    fn the_history_is_bounded_by_events_and_by_bytes() {
        let shared = shared();
        let mut state = shared.state.write().unwrap();
        let event = |revision: i64| {
            let object = CachedObject::new(&pod("Running"), "", "pods");
            Arc::new(CacheEvent {
                change: Change::Modified,
                key: KEY.to_owned(),
                revision,
                object: Arc::new(object),
                prev: None,
            })
        };
        let size = event(0).object.json.len();
        for revision in 2..=5 {
            state.record(event(revision), 3, usize::MAX);
        }
        assert_eq!(state.history.len(), 3);
        assert_eq!(state.oldest, 2);
        assert_eq!(state.history_bytes, 3 * size);
        state.record(event(6), 3, 2 * size);
        let kept: Vec<i64> = state.history.iter().map(|e| e.revision).collect();
        assert_eq!(kept, [5, 6]);
        assert_eq!(state.oldest, 4);
        assert_eq!(state.history_bytes, 2 * size);
        // Every event after `oldest` is still in the history.
        assert_eq!(state.history.front().unwrap().revision, state.oldest + 1);
    }

    #[test]
    fn keys_name_their_group_and_plural() {
        assert_eq!(kind_of("/registry/core/pods/ns/p"), ("", "pods"));
        assert_eq!(
            kind_of("/registry/apps/deployments/ns/d"),
            ("apps", "deployments")
        );
        assert_eq!(kind_of("/registry/core/nodes/n1"), ("", "nodes"));
    }

    #[test]
    fn a_quiet_kind_stays_resumable_while_another_kind_churns_through_the_history() {
        let shared = shared();
        let mut state = shared.state.write().unwrap();
        let event = |key: &str, revision: i64| {
            Arc::new(CacheEvent {
                change: Change::Modified,
                key: key.to_owned(),
                revision,
                object: Arc::new(CachedObject::new(&pod("Running"), "", "pods")),
                prev: None,
            })
        };
        const DEPLOYMENT: &str = "/registry/apps/deployments/ns/d";
        state.record(event(DEPLOYMENT, 2), 4, usize::MAX);
        for revision in 3..=20 {
            state.record(event(KEY, revision), 4, usize::MAX);
        }
        assert_eq!(state.oldest, 16);
        // The deployment's only event was dropped at 2: from 2 on nothing of its kind is
        // missing, though the window as a whole starts at 16.
        assert_eq!(state.oldest_under("/registry/apps/deployments/"), 2);
        assert_eq!(state.oldest_under("/registry/apps/deployments/ns/"), 2);
        assert_eq!(state.oldest_under("/registry/core/pods/ns/"), 16);
        // A kind never seen is complete from where the cache started.
        assert_eq!(state.oldest_under("/registry/batch/jobs/"), 1);
        assert_eq!(state.oldest_under(ROOT), 16);
    }

    #[test]
    fn kind_prefixes_of_keys_and_collections() {
        assert_eq!(
            kind_prefix("/registry/core/pods/ns/p"),
            Some("/registry/core/pods/")
        );
        assert_eq!(
            kind_prefix("/registry/core/pods/"),
            Some("/registry/core/pods/")
        );
        assert_eq!(
            kind_prefix("/registry/core/nodes/n1"),
            Some("/registry/core/nodes/")
        );
        assert_eq!(kind_prefix("/registry/core/"), None);
        assert_eq!(kind_prefix("/registry/"), None);
        assert_eq!(kind_prefix("/elsewhere/core/pods/"), None);
    }
}

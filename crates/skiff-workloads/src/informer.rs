//! An informer: one watch of a kind kept in a local store (kube-runtime's reflector), with
//! handlers called after the store has applied each change, so a handler that queues work
//! never races the cache it will read.

use std::fmt::Debug;
use std::hash::Hash;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What an informer saw.
pub enum Change<'a, K> {
    /// An object was added or modified.
    Applied(&'a K),
    /// An object was deleted.
    Deleted(&'a K),
    /// The watch was (re)listed: anything may have changed.
    Resynced,
}

type Handler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

/// A watch of one kind into a store, with change handlers.
pub struct Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    api: Api<K>,
    store: Store<K>,
    writer: Writer<K>,
    handlers: Vec<Handler<K>>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// An informer over all objects `api` reaches.
    pub fn new(api: Api<K>) -> Informer<K> {
        let (store, writer) = reflector::store();
        Informer {
            api,
            store,
            writer,
            handlers: Vec::new(),
        }
    }

    /// The store this informer fills.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Adds a handler, called after each change is in the store.
    pub fn on_change(&mut self, handler: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        self.handlers.push(Box::new(handler));
    }

    /// Watches until `shutdown`, re-listing after errors with backoff.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let stream = watcher(self.api.clone(), watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = stream.next() => event,
            };
            match event {
                None => return,
                Some(Err(error)) => {
                    tracing::warn!(kind = %K::kind(&()), %error, "watch failed; retrying");
                }
                Some(Ok(event)) => {
                    self.writer.apply_watcher_event(&event);
                    let change = match &event {
                        watcher::Event::Apply(object) => Change::Applied(object),
                        watcher::Event::Delete(object) => Change::Deleted(object),
                        watcher::Event::InitDone => Change::Resynced,
                        watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                    };
                    for handler in &self.handlers {
                        handler(match &change {
                            Change::Applied(o) => Change::Applied(o),
                            Change::Deleted(o) => Change::Deleted(o),
                            Change::Resynced => Change::Resynced,
                        });
                    }
                }
            }
        }
    }
}

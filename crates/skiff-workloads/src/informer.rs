//! Informers: one watch of a kind kept in a local store (kube-runtime's reflector), with
//! handlers called after the store has applied each change, so a handler that queues work
//! never races the cache it will read.
//!
//! [`Informers`] is the process's shared factory (kube-controller-manager's
//! `SharedInformerFactory`): every controller that asks for a kind gets the same informer, so
//! each kind is watched, decoded and held once however many controllers look at it. Objects
//! are kept without `metadata.managedFields`, which no controller reads and which is about a
//! third of a pod (the API server derives managed fields from the stored object, not from
//! what an update sends).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What an informer saw.
pub enum Change<'a, K> {
    /// An object was added or modified.
    Applied(&'a K),
    /// An object was deleted.
    Deleted(&'a K),
    /// The watch was (re)listed, or the handler joined after the first list: anything may have
    /// changed.
    Resynced,
}

type Handler<K> = Arc<dyn Fn(Change<'_, K>) + Send + Sync>;

/// A watch of one kind into a store, with change handlers; cheap to clone (clones share the
/// watch, store and handlers).
pub struct Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    inner: Arc<Inner<K>>,
}

struct Inner<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    api: Api<K>,
    store: Store<K>,
    /// Taken by the one [`Informer::run`] that watches.
    writer: Mutex<Option<Writer<K>>>,
    handlers: RwLock<Vec<Handler<K>>>,
    /// Set once the first list is in the store.
    listed: AtomicBool,
}

impl<K> Clone for Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    fn clone(&self) -> Informer<K> {
        Informer {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    /// An informer over all objects `api` reaches; it watches once [`run`](Self::run).
    pub fn new(api: Api<K>) -> Informer<K> {
        let (store, writer) = reflector::store();
        Informer {
            inner: Arc::new(Inner {
                api,
                store,
                writer: Mutex::new(Some(writer)),
                handlers: RwLock::new(Vec::new()),
                listed: AtomicBool::new(false),
            }),
        }
    }

    /// The store this informer fills.
    pub fn store(&self) -> Store<K> {
        self.inner.store.clone()
    }

    /// Adds a handler, called after each change is in the store. A handler added after the
    /// first list is called with [`Change::Resynced`] at once, so it misses nothing.
    pub fn on_change(&self, handler: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        let handler: Handler<K> = Arc::new(handler);
        self.inner
            .handlers
            .write()
            .expect("not poisoned")
            .push(Arc::clone(&handler));
        if self.inner.listed.load(Ordering::Acquire) {
            handler(Change::Resynced);
        }
    }

    /// Watches until `shutdown`, re-listing after errors with backoff. Only the first call
    /// watches; later ones (other holders of a shared informer) return at once.
    pub async fn run(&self, shutdown: CancellationToken) {
        let Some(mut writer) = self.inner.writer.lock().expect("not poisoned").take() else {
            return;
        };
        let stream = watcher(self.inner.api.clone(), watcher::Config::default())
            .default_backoff()
            .modify(|object| object.meta_mut().managed_fields = None);
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
                    writer.apply_watcher_event(&event);
                    let change = match &event {
                        watcher::Event::Apply(object) => Change::Applied(object),
                        watcher::Event::Delete(object) => Change::Deleted(object),
                        watcher::Event::InitDone => {
                            self.inner.listed.store(true, Ordering::Release);
                            Change::Resynced
                        }
                        watcher::Event::Init | watcher::Event::InitApply(_) => continue,
                    };
                    // Called outside the lock, so a handler may add handlers.
                    let handlers = self.inner.handlers.read().expect("not poisoned").clone();
                    for handler in &handlers {
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

/// The informers started so far, by kind and namespace (`Informer<K>` behind `Any`).
type Started = HashMap<(TypeId, Option<String>), Box<dyn Any + Send + Sync>>;

/// The process's informers, one per kind (and namespace), each started on first request and
/// watching until the factory's shutdown; cheap to clone.
#[derive(Clone)]
pub struct Informers {
    client: Client,
    shutdown: CancellationToken,
    started: Arc<Mutex<Started>>,
}

impl Informers {
    /// A factory whose informers watch through `client` until `shutdown`.
    pub fn new(client: Client, shutdown: CancellationToken) -> Informers {
        Informers {
            client,
            shutdown,
            started: Arc::default(),
        }
    }

    /// The client the informers watch with, for the controllers' writes.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared informer over all objects of kind `K` (in every namespace).
    pub fn all<K>(&self) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.shared(None, || Api::all(self.client.clone()))
    }

    /// The shared informer over the objects of kind `K` in `namespace`.
    pub fn namespaced<K>(&self, namespace: &str) -> Informer<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        self.shared(Some(namespace.to_owned()), || {
            Api::namespaced(self.client.clone(), namespace)
        })
    }

    fn shared<K>(&self, namespace: Option<String>, api: impl FnOnce() -> Api<K>) -> Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut started = self.started.lock().expect("not poisoned");
        let entry = started
            .entry((TypeId::of::<K>(), namespace))
            .or_insert_with(|| {
                let informer = Informer::new(api());
                let (running, shutdown) = (informer.clone(), self.shutdown.clone());
                tokio::spawn(async move { running.run(shutdown).await });
                Box::new(informer)
            });
        entry
            .downcast_ref::<Informer<K>>()
            .expect("keyed by the kind's TypeId")
            .clone()
    }
}

//! A small event recorder: core/v1 Events about the objects a controller manages, named as
//! client-go names them (`<object>.<hex nanoseconds>`), which `kubectl describe` and
//! `kubectl get events` show, in the object's namespace (`default` for cluster-scoped objects
//! such as Nodes, as upstream does). Recording is best effort and never blocks the caller: events
//! queue for a writer task (full queue: dropped, as client-go's broadcaster drops them), a
//! failed write is logged, and each object gets at most a burst of [`BURST`] events, then one
//! per [`REFILL`] (client-go's spam filter), so scaling to thousands of pods does not write
//! thousands of events. It does not aggregate repeated events into counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, Resource};
use tokio::sync::mpsc;

/// `Normal` events report expected progress.
pub const NORMAL: &str = "Normal";
/// `Warning` events report something going wrong.
pub const WARNING: &str = "Warning";

/// Distinguishes events created in the same nanosecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Events an object may get at once before the spam filter holds them back.
pub const BURST: u32 = 25;
/// How often an object earns one more event once its burst is spent.
pub const REFILL: Duration = Duration::from_secs(300);
/// Events waiting for the writer before new ones are dropped (client-go's queue length).
const QUEUE: usize = 1000;

/// Records events on behalf of one component (e.g. `job-controller`). Clones share the queue,
/// the writer and the spam filter.
#[derive(Clone)]
pub struct Recorder {
    component: String,
    queue: mpsc::Sender<Event>,
    budgets: Arc<Mutex<HashMap<String, Budget>>>,
}

/// An object's token bucket.
struct Budget {
    tokens: u32,
    refilled: Instant,
}

impl Recorder {
    /// A recorder reporting as `component`; its writer task ends once every clone is dropped.
    /// Must be called within a tokio runtime.
    pub fn new(client: Client, component: &str) -> Recorder {
        let (queue, mut events) = mpsc::channel::<Event>(QUEUE);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let namespace = event.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                if let Err(error) = api.create(&PostParams::default(), &event).await {
                    tracing::info!(%error, reason = ?event.reason, "recording an event");
                }
            }
        });
        Recorder {
            component: component.to_owned(),
            queue,
            budgets: Arc::default(),
        }
    }

    /// Records an event of `type_` ([`NORMAL`] or [`WARNING`]) about `object`, unless the
    /// object has used up its events for now or the queue is full.
    pub async fn record<K>(&self, object: &K, type_: &str, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let who = object
            .meta()
            .uid
            .clone()
            .unwrap_or_else(|| object.meta().name.clone().unwrap_or_default());
        if !self.spend(&who, Instant::now()) {
            return;
        }
        let event = self.event(object, type_, reason, message);
        if self.queue.try_send(event).is_err() {
            tracing::debug!(%reason, "event queue full; event dropped");
        }
    }

    /// Takes one of the object's tokens, if it has one at `now`.
    fn spend(&self, who: &str, now: Instant) -> bool {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let budget = budgets.entry(who.to_owned()).or_insert(Budget {
            tokens: BURST,
            refilled: now,
        });
        let earned = now.duration_since(budget.refilled).as_secs() / REFILL.as_secs();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            budget.tokens = budget.tokens.saturating_add(earned).min(BURST);
            budget.refilled = now;
        }
        if budget.tokens == 0 {
            return false;
        }
        budget.tokens -= 1;
        // Objects whose bucket is full again need no memory.
        if budgets.len() > 4096 {
            budgets
                .retain(|_, b| b.tokens < BURST && now.duration_since(b.refilled) < REFILL * BURST);
        }
        true
    }

    fn event<K>(&self, object: &K, type_: &str, reason: &str, message: &str) -> Event
    where
        K: Resource<DynamicType = ()>,
    {
        let now = Timestamp::now();
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        let unique = now.as_nanosecond() + i128::from(SEQUENCE.fetch_add(1, Ordering::Relaxed));
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{unique:x}")),
                namespace: Some(
                    meta.namespace
                        .clone()
                        .unwrap_or_else(|| "default".to_owned()),
                ),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            type_: Some(type_.to_owned()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            ..Event::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_object_gets_a_burst_then_one_event_per_refill() {
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:1".parse().unwrap())).unwrap();
        let recorder = Recorder::new(client, "test");
        let now = Instant::now();
        for _ in 0..BURST {
            assert!(recorder.spend("a", now));
        }
        assert!(!recorder.spend("a", now), "burst spent");
        assert!(recorder.spend("b", now), "other objects have their own");
        assert!(!recorder.spend("a", now + REFILL / 2));
        assert!(
            recorder.spend("a", now + REFILL),
            "one more after the refill"
        );
        assert!(!recorder.spend("a", now + REFILL));
    }
}

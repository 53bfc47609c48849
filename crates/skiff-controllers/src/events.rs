//! A minimal event recorder: one core/v1 Event per call, named as client-go names them
//! (`<object>.<hex nanoseconds>`), in the object's namespace (`default` for cluster-scoped
//! objects such as Nodes, as upstream does). No aggregation or rate limiting: the controllers
//! here record an event per state change, not per sync. A failed write is logged, never an error.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, Resource};

/// `Normal` events.
pub const NORMAL: &str = "Normal";
/// `Warning` events.
pub const WARNING: &str = "Warning";

/// Distinguishes events created in the same nanosecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Records events as one component (`source.component` and `reportingComponent`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: &'static str,
}

impl Recorder {
    /// A recorder writing as `component` (e.g. `node-controller`).
    pub fn new(client: Client, component: &'static str) -> Recorder {
        Recorder { client, component }
    }

    /// Records an event about `object`.
    pub async fn record<K>(&self, object: &K, type_: &str, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = self.event(object, type_, reason, message);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(error) = api.create(&PostParams::default(), &event).await {
            tracing::info!(%error, reason, "recording an event");
        }
    }

    fn event<K>(&self, object: &K, type_: &str, reason: &str, message: &str) -> Event
    where
        K: Resource<DynamicType = ()>,
    {
        let now = Timestamp::now();
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        let unique =
            now.as_nanosecond() + i128::from(SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1000);
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{unique:x}")),
                namespace: Some(namespace),
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
                component: Some(self.component.to_owned()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some(self.component.to_owned()),
            reporting_instance: Some(self.component.to_owned()),
            ..Event::default()
        }
    }
}

//! A small event recorder: core/v1 Events about the objects a controller manages, named as
//! client-go names them (`<object>.<hex nanoseconds>`), which `kubectl describe` and
//! `kubectl get events` show, in the object's namespace (`default` for cluster-scoped objects
//! such as Nodes, as upstream does). Recording is best effort: a failed write is logged, never
//! an error for the caller. It does not aggregate repeated events into counts.

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, Resource};

/// `Normal` events report expected progress.
pub const NORMAL: &str = "Normal";
/// `Warning` events report something going wrong.
pub const WARNING: &str = "Warning";

/// Distinguishes events created in the same nanosecond.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Records events on behalf of one component (e.g. `job-controller`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
}

impl Recorder {
    /// A recorder reporting as `component`.
    pub fn new(client: Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_owned(),
        }
    }

    /// Records an event of `type_` ([`NORMAL`] or [`WARNING`]) about `object`.
    pub async fn record<K>(&self, object: &K, type_: &str, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = self.event(object, type_, reason, message);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(error) = api.create(&PostParams::default(), &event).await {
            tracing::info!(%error, %reason, "recording an event");
        }
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

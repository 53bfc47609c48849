//! The endpoints controller (upstream's `pkg/controller/endpoint`), and the driver it shares
//! with [`crate::endpointslice`]: one work queue of Services, fed by watches of Services, Pods
//! and Nodes; each sync computes the Service's [`Backend`]s (pod → address, readiness, ports
//! resolved from named `targetPort`s) once and writes both the Endpoints object and the
//! EndpointSlices from them.
//!
//! Only Services with a selector are managed; the others (the `kubernetes` Service among them)
//! are left to whoever writes their endpoints. The Endpoints object is named after the Service,
//! carries its labels and `endpoints.kubernetes.io/managed-by: endpoint-controller` (no owner
//! reference, as upstream), lists ready pods in `addresses` and the others in
//! `notReadyAddresses` (all in `addresses` with `publishNotReadyAddresses`), groups addresses
//! by their resolved ports as `RepackSubsets` does, and is deleted with its Service.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Node, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use skiff_workloads::informer::{Change, Informer, Informers};
use skiff_workloads::queue::Queue;
use skiff_workloads::util::{is_pod_ready, key_of, split_key};
use tokio_util::sync::CancellationToken;

/// The label marking Endpoints this controller writes.
pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
/// This controller's name in [`MANAGED_BY_LABEL`].
pub const CONTROLLER_NAME: &str = "endpoint-controller";
/// The label of objects derived from a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// The node label naming its zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Workers of the endpoints controller.
const WORKERS: usize = 4;

/// Runs the endpoints and endpoint slice controllers until `shutdown`.
pub async fn run(informers: Informers, shutdown: CancellationToken) -> Result<()> {
    let client = informers.client().clone();
    let services = informers.all::<Service>();
    let pods = informers.all::<Pod>();
    let nodes = informers.all::<Node>();
    let controller = EndpointsController::new(client, &services, &pods, &nodes, shutdown.clone());
    crate::wait_ready(&controller.services, &shutdown).await;
    crate::wait_ready(&controller.pods, &shutdown).await;
    crate::wait_ready(&controller.nodes, &shutdown).await;
    tracing::info!("endpoints controllers started");
    crate::work(controller, WORKERS).await;
    Ok(())
}

/// One port of a pod serving one Service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendPort {
    /// The Service port's name (`""` when unnamed).
    pub name: String,
    /// The pod's port number.
    pub port: i32,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The Service port's `appProtocol`.
    pub app_protocol: Option<String>,
}

/// A pod as an endpoint of a Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// The pod's IP.
    pub ip: String,
    /// The pod.
    pub target: ObjectReference,
    /// The node it runs on.
    pub node_name: Option<String>,
    /// The node's `topology.kubernetes.io/zone`.
    pub zone: Option<String>,
    /// The pod's hostname, when its subdomain is the Service's name.
    pub hostname: Option<String>,
    /// The pod is Ready (or the Service publishes addresses that are not).
    pub serving: bool,
    /// The pod is being deleted.
    pub terminating: bool,
    /// The Service's ports as this pod serves them (ports it cannot serve left out), sorted.
    pub ports: Vec<BackendPort>,
}

impl Backend {
    /// `pod` as an endpoint of `service`, or `None` if it has no IP yet or has finished
    /// (`ShouldPodBeInEndpoints` with terminating pods included).
    pub fn of(pod: &Pod, service: &Service, zone: Option<String>) -> Option<Backend> {
        let status = pod.status.as_ref()?;
        let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            return None;
        }
        let spec = pod.spec.as_ref()?;
        let service_name = service.name_any();
        let hostname = spec
            .hostname
            .clone()
            .filter(|h| !h.is_empty() && spec.subdomain.as_deref() == Some(service_name.as_str()));
        let mut ports: Vec<BackendPort> = service_ports(service)
            .iter()
            .filter_map(|port| {
                Some(BackendPort {
                    name: port.name.clone().unwrap_or_default(),
                    port: target_port(pod, port)?,
                    protocol: port.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    app_protocol: port.app_protocol.clone(),
                })
            })
            .collect();
        ports.sort();
        Some(Backend {
            ip,
            target: ObjectReference {
                kind: Some("Pod".to_owned()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            },
            node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
            zone,
            hostname,
            serving: publishes_not_ready(service) || is_pod_ready(pod),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            ports,
        })
    }
}

/// The Service's ports.
pub fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

/// Whether the Service lists pods that are not ready as ready.
pub fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// Whether the Service is headless (`clusterIP: None`).
pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The pod port a Service port sends to (`podutil.FindPort`): a number as it is, a name
/// looked up among the containers' ports of the same protocol.
fn target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(number)) => Some(*number),
        Some(IntOrString::String(name)) => {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The selector of a Service that has one.
fn selector_of(service: &Service) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The labels of the objects derived from a Service: its own, and the headless marker.
pub fn derived_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.labels().clone();
    labels.remove(HEADLESS_LABEL);
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.to_owned(), String::new());
    }
    labels
}

/// The subsets of a Service's Endpoints: pods not being deleted (unless the Service
/// publishes not-ready addresses), grouped by their resolved ports, ready ones in
/// `addresses`, the others in `notReadyAddresses`.
pub fn subsets(service: &Service, backends: &[Backend]) -> Vec<EndpointSubset> {
    let has_ports = !service_ports(service).is_empty();
    let mut groups: BTreeMap<Vec<BackendPort>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for backend in backends {
        if backend.terminating && !publishes_not_ready(service) {
            continue;
        }
        if has_ports && backend.ports.is_empty() {
            continue;
        }
        let address = EndpointAddress {
            ip: backend.ip.clone(),
            hostname: backend.hostname.clone(),
            node_name: backend.node_name.clone(),
            target_ref: Some(backend.target.clone()),
        };
        let group = groups.entry(backend.ports.clone()).or_default();
        if backend.serving {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|p| EndpointPort {
                            name: (!p.name.is_empty()).then_some(p.name),
                            port: p.port,
                            protocol: Some(p.protocol),
                            app_protocol: p.app_protocol,
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

/// The Endpoints and EndpointSlices controller.
pub struct EndpointsController {
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    queue: Arc<Queue>,
    /// The Services each pod was last seen to match, so a pod whose labels change or that
    /// goes away is taken out of the Services it left.
    pod_services: Mutex<HashMap<String, HashSet<String>>>,
}

impl EndpointsController {
    fn new(
        client: Client,
        services: &Informer<Service>,
        pods: &Informer<Pod>,
        nodes: &Informer<Node>,
        shutdown: CancellationToken,
    ) -> Arc<EndpointsController> {
        let controller = Arc::new(EndpointsController {
            client,
            services: services.store(),
            pods: pods.store(),
            nodes: nodes.store(),
            queue: Queue::new(shutdown),
            pod_services: Mutex::new(HashMap::new()),
        });
        let c = Arc::clone(&controller);
        services.on_change(move |change| match change {
            Change::Applied(service) | Change::Deleted(service) => c.queue.add(key_of(service)),
            Change::Resynced => c.enqueue_all(),
        });
        let c = Arc::clone(&controller);
        pods.on_change(move |change| match change {
            Change::Applied(pod) => c.pod_changed(pod, false),
            Change::Deleted(pod) => c.pod_changed(pod, true),
            Change::Resynced => c.enqueue_all(),
        });
        controller
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.pod_services
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enqueue_all(&self) {
        for service in self.services.state() {
            self.queue.add(key_of(service.as_ref()));
        }
    }

    fn pod_changed(&self, pod: &Pod, deleted: bool) {
        let pod_key = key_of(pod);
        let namespace = pod.namespace().unwrap_or_default();
        let matching: HashSet<String> = self
            .services
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|s| selector_of(s).is_some_and(|sel| selects(sel, pod)))
            .map(|s| key_of(s.as_ref()))
            .collect();
        let previous = if deleted {
            self.lock().remove(&pod_key)
        } else {
            self.lock().insert(pod_key, matching.clone())
        };
        for service in matching.iter().chain(previous.iter().flatten()) {
            self.queue.add(service.clone());
        }
    }

    /// The Service's backends: its selected pods with an address.
    fn backends(&self, service: &Service, selector: &BTreeMap<String, String>) -> Vec<Backend> {
        let namespace = service.namespace();
        let mut backends: Vec<Backend> = self
            .pods
            .state()
            .iter()
            .filter(|p| p.namespace() == namespace && selects(selector, p))
            .filter_map(|pod| {
                let zone = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .and_then(|n| self.nodes.get(&ObjectRef::new(n)))
                    .and_then(|node| node.labels().get(ZONE_LABEL).cloned());
                Backend::of(pod, service, zone)
            })
            .collect();
        backends.sort_by(|a, b| a.target.name.cmp(&b.target.name));
        backends
    }

    async fn sync(&self, service_key: &str) -> Result<Option<Duration>> {
        let (namespace, name) = split_key(service_key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), namespace);
        let Some(service) = self.services.get(&ObjectRef::new(name).within(namespace)) else {
            // Gone: its Endpoints go too (its slices go with it through their owner reference).
            let managed = api.get_opt(name).await?.is_some_and(|endpoints| {
                endpoints.labels().get(MANAGED_BY_LABEL).map(String::as_str)
                    == Some(CONTROLLER_NAME)
            });
            if managed {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(error) => {
                        return Err(error)
                            .with_context(|| format!("deleting endpoints {service_key}"));
                    }
                }
            }
            return Ok(None);
        };
        let Some(selector) = selector_of(&service) else {
            return Ok(None);
        };
        if service.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let backends = self.backends(&service, selector);
        self.write_endpoints(&api, &service, &backends).await?;
        crate::endpointslice::reconcile(&self.client, &service, &backends)
            .await
            .with_context(|| format!("endpoint slices of {service_key}"))?;
        Ok(None)
    }

    async fn write_endpoints(
        &self,
        api: &Api<Endpoints>,
        service: &Service,
        backends: &[Backend],
    ) -> Result<()> {
        let name = service.name_any();
        let mut labels = derived_labels(service);
        labels.insert(MANAGED_BY_LABEL.to_owned(), CONTROLLER_NAME.to_owned());
        let subsets = subsets(service, backends);
        let subsets = (!subsets.is_empty()).then_some(subsets);
        match api.get_opt(&name).await? {
            None => {
                let endpoints = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: service.namespace(),
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    },
                    subsets,
                };
                match api.create(&PostParams::default(), &endpoints).await {
                    Ok(_) => Ok(()),
                    // Written meanwhile (by another sync): the next sync compares.
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        self.queue.add(key_of(service));
                        Ok(())
                    }
                    Err(error) => Err(error).with_context(|| format!("creating endpoints {name}")),
                }
            }
            Some(mut current) => {
                let current_subsets = current.subsets.take().filter(|s| !s.is_empty());
                if current_subsets == subsets && current.metadata.labels.as_ref() == Some(&labels) {
                    return Ok(());
                }
                current.metadata.labels = Some(labels);
                current.subsets = subsets;
                api.replace(&name, &PostParams::default(), &current)
                    .await
                    .with_context(|| format!("updating endpoints {name}"))?;
                Ok(())
            }
        }
    }
}

impl crate::Reconcile for EndpointsController {
    const NAME: &'static str = "endpoints";

    fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>> {
        EndpointsController::sync(self, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(publish: bool) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"app": "web"},
                "publishNotReadyAddresses": publish,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "web"},
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                ],
            },
        }))
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, ports: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"podIP": ip, "phase": "Running",
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_protocol() {
        let svc = service(false);
        let ports = json!([{"name": "web", "containerPort": 8080},
                           {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]);
        let backend = Backend::of(&pod("a", "10.0.0.1", true, ports), &svc, None).unwrap();
        let found: Vec<(&str, i32, &str)> = backend
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.port, p.protocol.as_str()))
            .collect();
        assert_eq!(found, [("dns", 5353, "UDP"), ("http", 8080, "TCP")]);
        // A TCP port named dns does not serve the UDP Service port.
        let tcp_dns = json!([{"name": "dns", "containerPort": 53}]);
        let backend = Backend::of(&pod("b", "10.0.0.2", true, tcp_dns), &svc, None).unwrap();
        assert!(backend.ports.is_empty());
        // No IP yet: no endpoint.
        assert!(Backend::of(&pod("c", "", true, json!([])), &svc, None).is_none());
    }

    #[test]
    fn subsets_split_ready_from_not_ready_and_group_by_ports() {
        let svc = service(false);
        let web = |port: i32| json!([{"name": "web", "containerPort": port}]);
        let pods = [
            pod("a", "10.0.0.2", true, web(8080)),
            pod("b", "10.0.0.1", true, web(8080)),
            pod("c", "10.0.0.3", false, web(8080)),
            pod("d", "10.0.0.4", true, web(9090)),
            pod("e", "10.0.0.5", true, json!([])),
        ];
        let backends: Vec<Backend> = pods
            .iter()
            .filter_map(|p| Backend::of(p, &svc, None))
            .collect();
        let subsets = subsets(&svc, &backends);
        assert_eq!(subsets.len(), 2, "{subsets:?}");
        let ips = |list: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            list.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.3"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);
        assert_eq!(ips(&subsets[1].addresses), ["10.0.0.4"]);
        // Published: the unready pod is an address.
        let published = subsets_of(&service(true), &pods);
        assert_eq!(
            ips(&published[0].addresses),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
    }

    fn subsets_of(svc: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
        let backends: Vec<Backend> = pods
            .iter()
            .filter_map(|p| Backend::of(p, svc, None))
            .collect();
        subsets(svc, &backends)
    }
}

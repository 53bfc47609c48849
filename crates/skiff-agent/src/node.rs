//! One simulated node: its Node object (labels, pod CIDR, capacity, conditions, node info,
//! addresses), registration, and the two heartbeats a kubelet keeps — the Lease in
//! `kube-node-lease` (every `lease_interval`) and the node status (every `status_interval`).
//! A node whose heartbeat loop is stopped goes NotReady once the node lifecycle controller
//! notices the Lease has expired.

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::SimulationConfig;
use crate::ipam;

/// The field manager of every write of the simulation.
pub(crate) const FIELD_MANAGER: &str = "skiff-agent";

/// Parameters of every patch of the simulation (merge patches, named field manager).
pub(crate) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0-skiff";

/// The container runtime version simulated nodes report.
pub const RUNTIME_VERSION: &str = "skiff-sim://1";

/// Who a simulated node is: its name and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeIdentity {
    pub name: String,
    pub internal_ip: Ipv4Addr,
    /// The network address of its /24 pod CIDR.
    pub pod_network: Ipv4Addr,
}

impl NodeIdentity {
    pub(crate) fn new(config: &SimulationConfig, index: usize) -> NodeIdentity {
        NodeIdentity {
            name: format!("{}{index}", config.name_prefix),
            internal_ip: ipam::node_address(config.node_ip_base, index),
            pod_network: ipam::pod_network(config.pod_cidr_base, index),
        }
    }

    fn pod_cidr(&self) -> String {
        format!("{}/24", self.pod_network)
    }
}

/// The Node to create: metadata and spec (the status is written through its subresource).
pub(crate) fn node_object(identity: &NodeIdentity, config: &SimulationConfig) -> Node {
    let mut labels = config.labels.clone();
    for (key, value) in [
        ("kubernetes.io/hostname", identity.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
        ("node.kubernetes.io/instance-type", "simulated"),
        ("type", "skiff-sim"),
    ] {
        labels
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    Node {
        metadata: ObjectMeta {
            name: Some(identity.name.clone()),
            labels: Some(labels),
            annotations: Some(
                [(
                    "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                    "true".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(identity.pod_cidr()),
            pod_cidrs: Some(vec![identity.pod_cidr()]),
            provider_id: Some(format!("skiff-sim://{}", identity.name)),
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The kubelet's conditions: `(type, status, reason, message)`.
const CONDITIONS: &[(&str, &str, &str, &str)] = &[
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    (
        "DiskPressure",
        "False",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
    ),
    (
        "PIDPressure",
        "False",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
    ),
    (
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    ),
    (
        "NetworkUnavailable",
        "False",
        "RouteCreated",
        "simulated node network is up",
    ),
];

/// `{"status": ...}` for a merge patch of the node's status subresource: conditions with a
/// fresh `lastHeartbeatTime` (transition times kept from `previous` while a condition's status
/// holds), capacity, node info and addresses.
pub(crate) fn status_patch(
    identity: &NodeIdentity,
    config: &SimulationConfig,
    previous: Option<&NodeStatus>,
    now: Timestamp,
) -> Value {
    let conditions = CONDITIONS
        .iter()
        .map(|&(kind, status, reason, message)| {
            let since = previous
                .and_then(|p| p.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == status))
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            NodeCondition {
                type_: kind.to_owned(),
                status: status.to_owned(),
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
                last_heartbeat_time: Some(Time(now)),
                last_transition_time: Some(since),
            }
        })
        .collect();
    let machine_id = format!("{:032x}", fnv1a(identity.name.as_bytes()));
    let status = NodeStatus {
        capacity: Some(config.capacity.clone()),
        allocatable: Some(config.capacity.clone()),
        conditions: Some(conditions),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_owned(),
                address: identity.internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_owned(),
                address: identity.name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".to_owned(),
            boot_id: machine_id.clone(),
            container_runtime_version: RUNTIME_VERSION.to_owned(),
            kernel_version: "6.1.0-skiff-sim".to_owned(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.to_owned(),
            machine_id: machine_id.clone(),
            operating_system: "linux".to_owned(),
            os_image: "skiff simulated node".to_owned(),
            system_uuid: machine_id,
            swap: None,
        }),
        phase: None,
        ..NodeStatus::default()
    };
    json!({ "status": status })
}

/// A stable 128-bit-ish hash for machine ids (FNV-1a, twice with different offsets).
fn fnv1a(bytes: &[u8]) -> u128 {
    let hash = |offset: u64| {
        bytes.iter().fold(offset, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    (u128::from(hash(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(hash(0x8422_2325_cbf2_9ce4))
}

/// The node's Lease, held by the node, owned by the Node object.
pub(crate) fn lease_object(
    identity: &NodeIdentity,
    node_uid: Option<&str>,
    duration: i32,
    now: Timestamp,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(identity.name.clone()),
            namespace: Some(LEASE_NAMESPACE.to_owned()),
            owner_references: node_uid.map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".to_owned(),
                    kind: "Node".to_owned(),
                    name: identity.name.clone(),
                    uid: uid.to_owned(),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.name.clone()),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        }),
    }
}

/// A simulated node talking to the API server.
pub(crate) struct NodeAgent {
    pub identity: NodeIdentity,
    client: kube::Client,
    config: std::sync::Arc<SimulationConfig>,
    /// The status last written (for transition times).
    last_status: Option<NodeStatus>,
    uid: Option<String>,
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

impl NodeAgent {
    pub(crate) fn new(
        identity: NodeIdentity,
        client: kube::Client,
        config: std::sync::Arc<SimulationConfig>,
    ) -> NodeAgent {
        NodeAgent {
            identity,
            client,
            config,
            last_status: None,
            uid: None,
        }
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), LEASE_NAMESPACE)
    }

    /// Creates the Node (or adopts an existing one, adding the labels), writes its status and
    /// its Lease.
    pub(crate) async fn register(&mut self) -> Result<(), kube::Error> {
        let nodes = self.nodes();
        let object = node_object(&self.identity, &self.config);
        let node = match nodes.create(&PostParams::default(), &object).await {
            Ok(node) => node,
            Err(error) if is_status(&error, 409) => {
                let labels = json!({"metadata": {"labels": object.metadata.labels}});
                nodes
                    .patch(&self.identity.name, &patch_params(), &Patch::Merge(labels))
                    .await?
            }
            Err(error) => return Err(error),
        };
        self.uid = node.metadata.uid.clone();
        self.last_status = node.status;
        self.update_status().await?;
        self.renew_lease().await
    }

    /// Writes the node status with a fresh heartbeat; registers the node again if it was
    /// deleted.
    pub(crate) async fn update_status(&mut self) -> Result<(), kube::Error> {
        let patch = status_patch(
            &self.identity,
            &self.config,
            self.last_status.as_ref(),
            Timestamp::now(),
        );
        match self
            .nodes()
            .patch_status(&self.identity.name, &patch_params(), &Patch::Merge(patch))
            .await
        {
            Ok(node) => {
                self.last_status = node.status;
                Ok(())
            }
            Err(error) if is_status(&error, 404) => {
                tracing::info!(node = %self.identity.name, "node object gone, registering again");
                self.last_status = None;
                Box::pin(self.register()).await
            }
            Err(error) => Err(error),
        }
    }

    /// Renews the Lease (creating it when missing).
    pub(crate) async fn renew_lease(&self) -> Result<(), kube::Error> {
        let leases = self.leases();
        let lease = lease_object(
            &self.identity,
            self.uid.as_deref(),
            self.config.lease_duration_seconds,
            Timestamp::now(),
        );
        let patch = json!({"spec": lease.spec});
        match leases
            .patch(&self.identity.name, &patch_params(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_status(&error, 404) => {
                match leases.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(()),
                    // Created meanwhile: renewed on the next beat.
                    Err(error) if is_status(&error, 409) => Ok(()),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// Heartbeats until `stop`: the Lease every `lease_interval`, the status every
    /// `status_interval`, both first after `offset` (to spread many nodes' writes).
    pub(crate) async fn heartbeat(mut self, offset: Duration, stop: CancellationToken) {
        let start = Instant::now() + offset;
        let mut lease_tick = tokio::time::interval_at(start, self.config.lease_interval);
        lease_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut status_tick = tokio::time::interval_at(start, self.config.status_interval);
        status_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = lease_tick.tick() => {
                    if let Err(error) = self.renew_lease().await {
                        tracing::warn!(node = %self.identity.name, %error, "renewing the node lease");
                    }
                }
                _ = status_tick.tick() => {
                    if let Err(error) = self.update_status().await {
                        tracing::warn!(node = %self.identity.name, %error, "updating the node status");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_object_and_status() {
        let config = SimulationConfig::default();
        let identity = NodeIdentity::new(&config, 3);
        assert_eq!(identity.name, "sim-3");
        assert_eq!(identity.internal_ip, Ipv4Addr::new(10, 200, 0, 4));
        let node = node_object(&identity, &config);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "sim-3");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "simulated");
        let spec = node.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.244.3.0/24"));
        assert_eq!(spec.taints, None);

        let then: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let first = status_patch(&identity, &config, None, then);
        let status = &first["status"];
        assert_eq!(status["capacity"]["cpu"], "8");
        assert_eq!(status["capacity"]["memory"], "32Gi");
        assert_eq!(status["allocatable"]["pods"], "110");
        assert_eq!(status["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(
            status["nodeInfo"]["containerRuntimeVersion"],
            RUNTIME_VERSION
        );
        assert_eq!(status["nodeInfo"]["architecture"], "amd64");
        assert_eq!(status["nodeInfo"]["operatingSystem"], "linux");
        assert_eq!(status["addresses"][0]["address"], "10.200.0.4");
        assert_eq!(status["addresses"][1]["type"], "Hostname");
        let conditions = status["conditions"].as_array().unwrap();
        assert_eq!(conditions.len(), 5);
        let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["lastHeartbeatTime"], "2024-01-01T00:00:00Z");

        // A later beat keeps the transition time and moves the heartbeat.
        let previous: NodeStatus = serde_json::from_value(first["status"].clone()).unwrap();
        let later: Timestamp = "2024-01-01T00:00:40Z".parse().unwrap();
        let second = status_patch(&identity, &config, Some(&previous), later);
        let ready = second["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready["lastHeartbeatTime"], "2024-01-01T00:00:40Z");
        assert_eq!(ready["lastTransitionTime"], "2024-01-01T00:00:00Z");
    }

    #[test]
    fn lease_object_is_held_and_owned_by_the_node() {
        let config = SimulationConfig::default();
        let identity = NodeIdentity::new(&config, 0);
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let lease = lease_object(&identity, Some("uid-1"), 40, now);
        assert_eq!(lease.metadata.namespace.as_deref(), Some(LEASE_NAMESPACE));
        assert_eq!(lease.metadata.owner_references.unwrap()[0].uid, "uid-1");
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("sim-0"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
    }
}

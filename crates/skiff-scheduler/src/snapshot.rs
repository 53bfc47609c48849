//! The scheduler's picture of the cluster, in memory: nodes, the pods placed on each (bound,
//! or *assumed*: bound by this scheduler and not yet seen bound on the watch), and what those
//! pods request. Filters and scores read it; the loop in `scheduler` keeps it current from
//! watch events. Per-pod facts ([`PodInfo`]) are computed once, when a pod enters.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use k8s_openapi::api::core::v1::{Container, Node, Pod, PodAffinityTerm, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::quantity;
use crate::selector::{Labels, label_selector_matches};

/// CPU the scoring functions assume for a container that requests none (kube-scheduler's
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory the scoring functions assume for a container that requests none (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of resources: CPU in millicores, the rest in whole units (bytes, pods, devices).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Pods (a node's capacity; each pod requests one).
    pub pods: i64,
    /// Extended and other resources (`nvidia.com/gpu`, `hugepages-2Mi`) by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a resource list (`requests`, `allocatable`); unparsable quantities count as 0.
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut resources = Resources::default();
        for (name, amount) in list {
            resources.set(name, &amount.0);
        }
        resources
    }

    fn set(&mut self, name: &str, amount: &str) {
        match name {
            "cpu" => self.milli_cpu = quantity::milli_value(amount).unwrap_or(0),
            "memory" => self.memory = quantity::value(amount).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = quantity::value(amount).unwrap_or(0),
            "pods" => self.pods = quantity::value(amount).unwrap_or(0),
            other => {
                self.scalar
                    .insert(other.to_owned(), quantity::value(amount).unwrap_or(0));
            }
        }
    }

    /// Adds `other` to these amounts.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        self.pods = self.pods.saturating_add(other.pods);
        for (name, amount) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = entry.saturating_add(*amount);
        }
    }

    /// Takes `other` away from these amounts.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_sub(other.ephemeral_storage);
        self.pods = self.pods.saturating_sub(other.pods);
        for (name, amount) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = entry.saturating_sub(*amount);
        }
        self.scalar.retain(|_, amount| *amount != 0);
    }

    /// Raises each amount to `other`'s where that is larger.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.pods = self.pods.max(other.pods);
        for (name, amount) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = (*entry).max(*amount);
        }
    }
}

/// What a container asks for: its requests, or its limits where a request is missing (what
/// the API server's defaulting would have filled in). With `non_zero`, missing CPU and memory
/// count as the scoring defaults.
fn container_requests(container: &Container, non_zero: bool) -> Resources {
    let resources = container.resources.as_ref();
    let mut list = resources.and_then(|r| r.limits.clone()).unwrap_or_default();
    if let Some(requests) = resources.and_then(|r| r.requests.as_ref()) {
        list.extend(requests.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut requests = Resources::from_list(&list);
    if non_zero {
        if !list.contains_key("cpu") {
            requests.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.contains_key("memory") {
            requests.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    requests
}

/// A pod's effective request, as kube-scheduler computes it: the sum of its containers and
/// sidecars (restartable init containers), or the largest init container step if that is
/// more, plus the pod overhead; `pods` is 1.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Resources::default()
        };
    };
    let mut total = Resources::default();
    for container in &spec.containers {
        total.add(&container_requests(container, non_zero));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for container in spec.init_containers.iter().flatten() {
        let requests = container_requests(container, non_zero);
        let step = if container.restart_policy.as_deref() == Some("Always") {
            total.add(&requests);
            sidecars.add(&requests);
            sidecars.clone()
        } else {
            let mut step = requests;
            step.add(&sidecars);
            step
        };
        init_max.max_with(&step);
    }
    total.max_with(&init_max);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_list(overhead));
    }
    total.pods = 1;
    total
}

/// A host port a pod's container claims.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// `0.0.0.0` when the container names no host IP.
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two claims collide: same protocol and port, and the same address or a wildcard.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The host ports a pod's containers (incl. init containers) claim.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|port| {
            let host_port = port.host_port.filter(|p| *p > 0)?;
            Some(HostPort {
                ip: port
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".to_owned()),
                protocol: port.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                port: host_port,
            })
        })
        .collect()
}

/// The namespaces an affinity term applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    All,
    Listed(BTreeSet<String>),
}

/// A pod affinity term made concrete for the pod that carries it: default namespace filled in
/// and `matchLabelKeys`/`mismatchLabelKeys` turned into selector requirements. A term with no
/// label selector matches no pod.
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTerm {
    pub selector: Option<LabelSelector>,
    pub namespaces: Namespaces,
    pub topology_key: String,
}

impl AffinityTerm {
    /// Compiles `term` as carried by a pod in `namespace` with `labels`. A non-empty
    /// `namespaceSelector` is not evaluated (the scheduler does not watch namespaces): such a
    /// term applies to its listed namespaces only.
    pub fn new(term: &PodAffinityTerm, namespace: &str, labels: &Labels) -> AffinityTerm {
        let mut selector = term.label_selector.clone();
        if let Some(selector) = &mut selector {
            let expressions = selector.match_expressions.get_or_insert_with(Vec::new);
            for (keys, operator) in [
                (&term.match_label_keys, "In"),
                (&term.mismatch_label_keys, "NotIn"),
            ] {
                for key in keys.iter().flatten() {
                    if let Some(value) = labels.get(key) {
                        expressions.push(LabelSelectorRequirement {
                            key: key.clone(),
                            operator: operator.to_owned(),
                            values: Some(vec![value.clone()]),
                        });
                    }
                }
            }
        }
        let listed: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let namespaces = match &term.namespace_selector {
            Some(s)
                if s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && s.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
            {
                Namespaces::All
            }
            Some(_) => Namespaces::Listed(listed),
            None if listed.is_empty() => Namespaces::Listed(BTreeSet::from([namespace.to_owned()])),
            None => Namespaces::Listed(listed),
        };
        AffinityTerm {
            selector,
            namespaces,
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether a pod (its namespace and labels) matches this term.
    pub fn matches(&self, namespace: &str, labels: &Labels) -> bool {
        let in_namespace = match &self.namespaces {
            Namespaces::All => true,
            Namespaces::Listed(names) => names.contains(namespace),
        };
        in_namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| label_selector_matches(s, labels))
    }
}

/// Facts about one pod, computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    /// The node the pod is bound to (or assumed on).
    pub node_name: Option<String>,
    pub requests: Resources,
    /// Requests with the scoring defaults for containers that ask for no CPU or memory.
    pub non_zero_requests: Resources,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Whether the pod is being deleted (topology spreading ignores it).
    pub terminating: bool,
    pub pod: Arc<Pod>,
}

impl PodInfo {
    pub fn new(pod: Pod) -> PodInfo {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let compile = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &namespace, &labels))
                .collect()
        };
        let required_affinity = compile(affinity.and_then(|a| a.pod_affinity.as_ref()).and_then(
            |a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            },
        ));
        let required_anti_affinity = compile(
            affinity
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
        );
        PodInfo {
            key: format!("{namespace}/{name}"),
            node_name: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports: host_ports(&pod),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            required_affinity,
            required_anti_affinity,
            namespace,
            name,
            labels,
            pod: Arc::new(pod),
        }
    }

    /// The same, for keeping in the snapshot once placed: everything the filters and scores
    /// read of pods already on nodes is extracted above (with `key`, `namespace` and `name`
    /// for identity), so the pod itself is dropped for one empty pod all placed pods share
    /// (even an empty `Pod` is 2 KB of inline fields; ten thousand whole pods were most of
    /// the scheduler's memory).
    pub fn placed(mut self) -> PodInfo {
        static EMPTY: LazyLock<Arc<Pod>> = LazyLock::new(Arc::default);
        self.pod = Arc::clone(&EMPTY);
        self
    }
}

/// One node and what is placed on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` while pods name a node the watch has not delivered (or that was deleted).
    pub node: Option<Arc<Node>>,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Images present on the node: normalized name → size in bytes.
    pub images: HashMap<String, i64>,
    /// Pods on the node by `namespace/name`.
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    /// The sum of the pods' requests.
    pub requested: Resources,
    /// The sum of the pods' requests with scoring defaults.
    pub non_zero_requested: Resources,
    pub used_ports: Vec<HostPort>,
}

impl NodeInfo {
    /// A node with nothing on it (for tests and for new nodes).
    pub fn new(node: Node) -> NodeInfo {
        let mut info = NodeInfo::default();
        info.set_node(node);
        info
    }

    fn set_node(&mut self, node: Node) {
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(Resources::from_list)
            .unwrap_or_default();
        self.images = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|image| {
                let size = image.size_bytes.unwrap_or(0);
                image
                    .names
                    .iter()
                    .flatten()
                    .map(move |name| (normalize_image(name), size))
            })
            .collect();
        self.node = Some(Arc::new(node));
    }

    /// Places a pod on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if let Some(old) = self.pods.insert(pod.key.clone(), pod) {
            self.forget(&old);
        }
    }

    /// Takes a pod off this node.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let old = self.pods.remove(key)?;
        self.forget(&old);
        Some(old)
    }

    fn forget(&mut self, pod: &PodInfo) {
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(i);
            }
        }
    }
}

/// Docker-style image name normalization (`nginx` → `docker.io/library/nginx:latest`), so
/// names in pod specs and node status compare equal.
pub fn normalize_image(name: &str) -> String {
    let (repository, suffix) = match name.find('@') {
        Some(at) => (&name[..at], &name[at..]),
        None => {
            let last_slash = name.rfind('/').map_or(0, |i| i + 1);
            match name[last_slash..].rfind(':') {
                Some(colon) => name.split_at(last_slash + colon),
                None => (name, ":latest"),
            }
        }
    };
    let has_domain = repository.split_once('/').is_some_and(|(first, _)| {
        first.contains('.') || first.contains(':') || first == "localhost"
    });
    let repository = if has_domain {
        repository.to_owned()
    } else if repository.contains('/') {
        format!("docker.io/{repository}")
    } else {
        format!("docker.io/library/{repository}")
    };
    format!("{repository}{suffix}")
}

/// All nodes and placed pods.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: BTreeMap<String, NodeInfo>,
    /// Placed pods (bound or assumed) by key → node name.
    placed: HashMap<String, String>,
    /// Placed pods with required anti-affinity terms (checked against every incoming pod).
    with_anti_affinity: HashSet<String>,
    /// How many nodes hold each image (for image locality).
    image_nodes: HashMap<String, usize>,
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Adds or updates a node. Returns whether that may let a pod fit that did not before:
    /// the node is new, or its labels, taints, cordon or allocatable resources changed
    /// (status heartbeats alone do not count).
    pub fn upsert_node(&mut self, node: Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self.nodes.entry(name.clone()).or_insert_with(|| NodeInfo {
            name,
            ..NodeInfo::default()
        });
        let before = info.node.is_some().then(|| {
            (
                info.labels.clone(),
                info.taints.clone(),
                info.unschedulable,
                info.allocatable.clone(),
            )
        });
        for image in info.images.keys() {
            decrement(&mut self.image_nodes, image);
        }
        info.set_node(node);
        for image in info.images.keys() {
            *self.image_nodes.entry(image.clone()).or_default() += 1;
        }
        before.is_none_or(|(labels, taints, unschedulable, allocatable)| {
            labels != info.labels
                || taints != info.taints
                || unschedulable != info.unschedulable
                || allocatable != info.allocatable
        })
    }

    /// Removes a node; its pods stay accounted, under its name, until they go.
    pub fn remove_node(&mut self, name: &str) {
        let Some(info) = self.nodes.get_mut(name) else {
            return;
        };
        for image in info.images.keys() {
            decrement(&mut self.image_nodes, image);
        }
        if info.pods.is_empty() {
            self.nodes.remove(name);
        } else {
            let pods = std::mem::take(&mut info.pods);
            *info = NodeInfo {
                name: name.to_owned(),
                ..NodeInfo::default()
            };
            for pod in pods.into_values() {
                info.add_pod(pod);
            }
        }
    }

    /// Places a pod on the node it names (replacing an earlier placement of the same pod).
    pub fn place_pod(&mut self, pod: Arc<PodInfo>) {
        let Some(node_name) = pod.node_name.clone() else {
            return;
        };
        self.remove_pod(&pod.key);
        self.placed.insert(pod.key.clone(), node_name.clone());
        if !pod.required_anti_affinity.is_empty() {
            self.with_anti_affinity.insert(pod.key.clone());
        }
        self.nodes
            .entry(node_name.clone())
            .or_insert_with(|| NodeInfo {
                name: node_name,
                ..NodeInfo::default()
            })
            .add_pod(pod);
    }

    /// Removes a placed pod; returns it if it was placed.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let node_name = self.placed.remove(key)?;
        self.with_anti_affinity.remove(key);
        let info = self.nodes.get_mut(&node_name)?;
        let old = info.remove_pod(key);
        if info.node.is_none() && info.pods.is_empty() {
            self.nodes.remove(&node_name);
        }
        old
    }

    /// The node a pod is placed on.
    pub fn placement(&self, key: &str) -> Option<&str> {
        self.placed.get(key).map(String::as_str)
    }

    /// A placed pod.
    pub fn pod(&self, key: &str) -> Option<&Arc<PodInfo>> {
        let node = self.placed.get(key)?;
        self.nodes.get(node)?.pods.get(key)
    }

    /// Nodes the watch has delivered (candidates for scheduling), in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values().filter(|n| n.node.is_some())
    }

    /// How many nodes [`Snapshot::nodes`] yields.
    pub fn node_count(&self) -> usize {
        self.nodes().count()
    }

    /// A node by name (also one only known from its pods).
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// Every placed pod with the node info it is on.
    pub fn placed_pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.nodes
            .values()
            .flat_map(|node| node.pods.values().map(move |pod| (node, pod)))
    }

    /// Placed pods that carry required anti-affinity terms, with their node.
    pub fn anti_affinity_pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.with_anti_affinity.iter().filter_map(|key| {
            let node = self.nodes.get(self.placed.get(key)?)?;
            Some((node, node.pods.get(key)?))
        })
    }

    /// On how many nodes an image (normalized name) is present.
    pub fn nodes_with_image(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }
}

fn decrement(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerImage, ContainerPort, NodeSpec, NodeStatus, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    pub fn container(requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".to_owned(),
            image: Some("busybox".to_owned()),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(requests)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn pod(name: &str, containers: Vec<Container>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("default".to_owned()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                ..Default::default()
            }),
            status: None,
        }
    }

    pub fn node(name: &str, allocatable: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/hostname".to_owned(),
                    name.to_owned(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(quantities(allocatable)),
                ..Default::default()
            }),
        }
    }

    fn bound(mut pod: Pod, node: &str) -> Arc<PodInfo> {
        pod.spec.as_mut().unwrap().node_name = Some(node.to_owned());
        Arc::new(PodInfo::new(pod))
    }

    #[test]
    fn pod_requests_follow_kube_rules() {
        let mut p = pod(
            "p",
            vec![
                container(&[("cpu", "100m"), ("memory", "100Mi")]),
                container(&[("cpu", "200m")]),
            ],
        );
        let r = pod_requests(&p, false);
        assert_eq!((r.milli_cpu, r.memory, r.pods), (300, 100 * 1024 * 1024, 1));
        let r = pod_requests(&p, true);
        assert_eq!(
            (r.milli_cpu, r.memory),
            (300, 100 * 1024 * 1024 + DEFAULT_MEMORY_REQUEST)
        );
        // A big init container dominates; a sidecar adds to both.
        let spec = p.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![
            Container {
                restart_policy: Some("Always".to_owned()),
                ..container(&[("cpu", "50m")])
            },
            container(&[("cpu", "1"), ("nvidia.com/gpu", "1")]),
        ]);
        spec.overhead = Some(quantities(&[("cpu", "10m")]));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 1050 + 10);
        assert_eq!(r.scalar.get("nvidia.com/gpu"), Some(&1));
        // Limits stand in for missing requests.
        let limited = pod(
            "l",
            vec![Container {
                name: "c".to_owned(),
                resources: Some(ResourceRequirements {
                    limits: Some(quantities(&[("cpu", "2")])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        );
        assert_eq!(pod_requests(&limited, false).milli_cpu, 2000);
        assert_eq!(pod_requests(&pod("e", vec![]), false).milli_cpu, 0);
    }

    #[test]
    fn host_ports_and_conflicts() {
        let mut p = pod("p", vec![container(&[])]);
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![
            ContainerPort {
                container_port: 80,
                host_port: Some(8080),
                ..Default::default()
            },
            ContainerPort {
                container_port: 53,
                host_port: Some(53),
                host_ip: Some("10.0.0.1".to_owned()),
                protocol: Some("UDP".to_owned()),
                ..Default::default()
            },
            ContainerPort {
                container_port: 9090,
                ..Default::default()
            },
        ]);
        let ports = host_ports(&p);
        assert_eq!(ports.len(), 2);
        let port = |ip: &str, protocol: &str, port: i32| HostPort {
            ip: ip.to_owned(),
            protocol: protocol.to_owned(),
            port,
        };
        assert!(ports[0].conflicts(&port("10.1.1.1", "TCP", 8080)));
        assert!(!ports[0].conflicts(&port("0.0.0.0", "UDP", 8080)));
        assert!(ports[1].conflicts(&port("0.0.0.0", "UDP", 53)));
        assert!(!ports[1].conflicts(&port("10.0.0.2", "UDP", 53)));
    }

    #[test]
    fn snapshot_accounts_placed_pods() {
        let mut snapshot = Snapshot::new();
        snapshot.upsert_node(node(
            "n1",
            &[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")],
        ));
        assert_eq!(snapshot.node("n1").unwrap().allocatable.milli_cpu, 2000);
        let a = bound(pod("a", vec![container(&[("cpu", "500m")])]), "n1");
        snapshot.place_pod(a.clone());
        snapshot.place_pod(a.clone());
        assert_eq!(snapshot.node("n1").unwrap().requested.milli_cpu, 500);
        assert_eq!(snapshot.node("n1").unwrap().requested.pods, 1);
        // Moving to another (unknown) node.
        snapshot.place_pod(bound(pod("a", vec![container(&[("cpu", "500m")])]), "n2"));
        assert_eq!(snapshot.node("n1").unwrap().requested.milli_cpu, 0);
        assert_eq!(snapshot.node_count(), 1);
        assert_eq!(snapshot.placement("default/a"), Some("n2"));
        assert!(snapshot.remove_pod("default/a").is_some());
        assert!(snapshot.node("n2").is_none());
        // Node removal keeps pods accounted.
        snapshot.place_pod(a);
        snapshot.remove_node("n1");
        assert_eq!(snapshot.node_count(), 0);
        assert_eq!(snapshot.node("n1").unwrap().requested.milli_cpu, 500);
        snapshot.upsert_node(node("n1", &[("cpu", "2")]));
        assert_eq!(snapshot.node("n1").unwrap().requested.milli_cpu, 500);
    }

    #[test]
    fn images_are_normalized_and_counted() {
        for (name, expected) in [
            ("nginx", "docker.io/library/nginx:latest"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("bitnami/redis", "docker.io/bitnami/redis:latest"),
            ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
        ] {
            assert_eq!(normalize_image(name), expected, "{name}");
        }
        let mut snapshot = Snapshot::new();
        let mut n = node("n1", &[]);
        n.status.as_mut().unwrap().images = Some(vec![ContainerImage {
            names: Some(vec!["nginx:1.25".to_owned()]),
            size_bytes: Some(100),
        }]);
        snapshot.upsert_node(n.clone());
        snapshot.upsert_node(n);
        assert_eq!(snapshot.nodes_with_image("docker.io/library/nginx:1.25"), 1);
        snapshot.remove_node("n1");
        assert_eq!(snapshot.nodes_with_image("docker.io/library/nginx:1.25"), 0);
    }
}

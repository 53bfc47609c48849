//! skiff's defaulting: what kube-apiserver fills into built-in objects that clients leave out,
//! applied to objects held as [`serde_json::Value`], so that what skiff stores and returns looks
//! like what kube-apiserver returns.
//!
//! - [`apply`] runs the `SetDefaults_*` rules of `k8s.io/kubernetes/pkg/apis/<group>/<version>`
//!   (and the declarative `+default` tags of `k8s.io/api`) for one object. Upstream runs them
//!   whenever it decodes an object, from a request body or from storage, so the server may call
//!   [`apply`] on every write and every read.
//! - [`prepare_create`] adds what the registry strategies' `PrepareForCreate` does to a new
//!   object that clients can see: a fresh status (Pods get `phase: Pending` and their
//!   `qosClass`, see [`prepare_pod_status`]), the Namespace's `kubernetes` finalizer, a Job's
//!   generated selector. Call it once on create, after [`apply`] and after `metadata.uid` is set.
//! - [`limitrange`] and [`quota`]: the LimitRanger and ResourceQuota admission plugins' pure
//!   part (defaults and bounds from a namespace's LimitRanges; what objects use of a quota and
//!   whether one more fits), which the API server runs on create and the resourcequota
//!   controller reuses to count usage.
//! - [`needs_cluster_ip`], [`needs_node_ports`] and [`needs_health_check_node_port`] tell the
//!   server which Service addresses and ports it must allocate; allocation is not done here.
//!
//! Rules: defaulting only fills fields that are unset in Go's sense (missing or `null`, and for
//! non-pointer fields also `""`/`0`/empty), never replaces a value the client set, and leaves
//! values of the wrong JSON type alone. The upstream exceptions are kept: a Namespace's
//! `kubernetes.io/metadata.name` label always equals its name, a Service with
//! `sessionAffinity: None` loses its `sessionAffinityConfig`, and the deprecated
//! `serviceAccount` of a PodSpec mirrors `serviceAccountName`. Fields Go always writes because
//! their JSON tags lack `omitempty` (`status.replicas: 0` of a ReplicaSet, a container's
//! `resources: {}`) are filled too. Every function is idempotent and never panics.
//!
//! Feature gates are taken at their Kubernetes 1.33 defaults; IP family inference assumes a
//! single-stack IPv4 cluster. Invariants: no IO, no knowledge of HTTP or storage.

mod core;
mod image;
mod json;
pub mod limitrange;
mod misc;
mod pod;
mod quantity;
pub mod quota;
mod service;
mod workloads;

use serde_json::{Value, json};

use crate::json::{Obj, child_or_empty};

/// Applies kube-apiserver's defaults for `group`/`version`/`kind` (`""` is the core group) to
/// `object`. Kinds without defaults, unknown kinds and non-object values are left unchanged.
pub fn apply(group: &str, version: &str, kind: &str, object: &mut Value) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    if let Some(default) = defaulter(group, version, kind) {
        default(obj);
    }
}

type Defaulter = fn(&mut Obj);

fn defaulter(group: &str, version: &str, kind: &str) -> Option<Defaulter> {
    let f: Defaulter = match (group, version, kind) {
        ("", "v1", "Pod") => pod::pod,
        ("", "v1", "PodTemplate") => core::pod_template,
        ("", "v1", "ReplicationController") => core::replication_controller,
        ("", "v1", "Service") => service::service,
        ("", "v1", "Namespace") => core::namespace,
        ("", "v1", "Secret") => core::secret,
        ("", "v1", "PersistentVolumeClaim") => core::pvc,
        ("", "v1", "PersistentVolume") => core::pv,
        ("", "v1", "Endpoints") => core::endpoints,
        ("", "v1", "LimitRange") => core::limit_range,
        ("apps", "v1", "Deployment") => workloads::deployment,
        ("apps", "v1", "ReplicaSet") => workloads::replica_set,
        ("apps", "v1", "StatefulSet") => workloads::stateful_set,
        ("apps", "v1", "DaemonSet") => workloads::daemon_set,
        ("batch", "v1", "Job") => workloads::job,
        ("batch", "v1", "CronJob") => workloads::cron_job,
        ("networking.k8s.io", "v1", "NetworkPolicy") => misc::network_policy,
        ("networking.k8s.io", "v1", "IngressClass") => misc::ingress_class,
        ("networking.k8s.io", "v1", "Ingress") => misc::ingress,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => {
            misc::role_binding
        }
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => misc::hpa_v1,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => misc::hpa_v2,
        ("policy", "v1", "PodDisruptionBudget") => misc::pod_disruption_budget,
        ("scheduling.k8s.io", "v1", "PriorityClass") => misc::priority_class,
        ("storage.k8s.io", "v1", "StorageClass") => misc::storage_class,
        ("storage.k8s.io", "v1", "CSIDriver") => misc::csi_driver,
        ("discovery.k8s.io", "v1", "EndpointSlice") => misc::endpoint_slice,
        _ => return None,
    };
    Some(f)
}

/// Applies what kube-apiserver does to a new object before storing it, beyond defaulting, and
/// then [`apply`]: status is reset for kinds whose strategy clears it (Pods get
/// [`prepare_pod_status`] and the DefaultTolerationSeconds admission plugin's `not-ready` and
/// `unreachable` tolerations; Namespaces `phase: Active`), a Namespace gets the `kubernetes`
/// finalizer, and a Job without `manualSelector: true` gets its generated selector and pod
/// template labels (`metadata.name` and `metadata.uid` must be set by then).
///
/// Only for create: the finalizer and the status reset must not be repeated on updates.
pub fn prepare_create(group: &str, version: &str, kind: &str, object: &mut Value) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    match (group, version, kind) {
        ("", "v1", "Pod") => {
            pod::prepare_status(obj);
            pod::default_toleration_seconds(obj);
        }
        ("", "v1", "Namespace") => {
            obj.insert("status".into(), json!({ "phase": "Active" }));
            if let Some(spec) = child_or_empty(obj, "spec") {
                let finalizers = spec.entry("finalizers").or_insert(Value::Null);
                if finalizers.is_null() {
                    *finalizers = json!([]);
                }
                if let Some(list) = finalizers.as_array_mut()
                    && !list.iter().any(|f| f == "kubernetes")
                {
                    list.push(json!("kubernetes"));
                }
            }
        }
        ("batch", "v1", "Job") => {
            apply(group, version, kind, object);
            if let Some(obj) = object.as_object_mut() {
                workloads::generate_job_selector(obj);
                obj.insert("status".into(), json!({}));
            }
        }
        ("", "v1", "Service" | "ReplicationController" | "PersistentVolumeClaim")
        | ("", "v1", "PersistentVolume" | "ResourceQuota")
        | ("apps", "v1", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "v1", "CronJob")
        | ("networking.k8s.io", "v1", "Ingress")
        | ("autoscaling", "v1" | "v2", "HorizontalPodAutoscaler")
        | ("policy", "v1", "PodDisruptionBudget") => {
            obj.insert("status".into(), json!({}));
        }
        _ => {}
    }
    apply(group, version, kind, object);
}

/// Sets a new Pod's status as kube-apiserver does on create: `phase: Pending`, the `qosClass`
/// computed from the containers' cpu and memory requests and limits (`BestEffort`, `Burstable`
/// or `Guaranteed`), and a `PodScheduled=False` condition when scheduling gates are present.
/// Any status the client sent is replaced.
pub fn prepare_pod_status(object: &mut Value) {
    if let Some(obj) = object.as_object_mut() {
        pod::prepare_status(obj);
    }
}

/// Whether a Service needs a cluster IP allocated: it is not `ExternalName` and its
/// `spec.clusterIP` is empty (`"None"`, headless, needs none).
pub fn needs_cluster_ip(object: &Value) -> bool {
    service::needs_cluster_ip(object)
}

/// The indexes of `spec.ports` that need a node port allocated: every port without a
/// `nodePort` of a `NodePort` Service, or of a `LoadBalancer` Service unless
/// `allocateLoadBalancerNodePorts` is false.
pub fn needs_node_ports(object: &Value) -> Vec<usize> {
    service::needs_node_ports(object)
}

/// Whether a Service needs `spec.healthCheckNodePort` allocated: a `LoadBalancer` with
/// `externalTrafficPolicy: Local` and no health check port yet.
pub fn needs_health_check_node_port(object: &Value) -> bool {
    service::needs_health_check_node_port(object)
}

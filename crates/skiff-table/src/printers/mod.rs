//! The built-in printers: for each kind in `data/table-columns.tsv`, one [`Cell`] rule per
//! column, in column order. A test checks the two stay in step.

mod cluster;
mod network;
mod pod;
mod scheduling;
mod storage;
mod workloads;

use crate::cell::Cell;

pub(crate) use pod::row_conditions as pod_row_conditions;
pub(crate) use storage::{effective_default_storage_class, is_default_storage_class};

/// The cell rules of a built-in kind, `None` for kinds without a printer.
pub(crate) fn cells(kind: &str) -> Option<&'static [Cell]> {
    use cluster::*;
    use network::*;
    use scheduling::*;
    use storage::*;
    use workloads::*;
    Some(match kind {
        "Pod" => pod::POD,
        "PodTemplate" => POD_TEMPLATE,
        "PodDisruptionBudget" => POD_DISRUPTION_BUDGET,
        "ReplicationController" => REPLICATION_CONTROLLER,
        "ReplicaSet" => REPLICA_SET,
        "DaemonSet" => DAEMON_SET,
        "Job" => JOB,
        "CronJob" => CRON_JOB,
        "Service" => SERVICE,
        "Ingress" => INGRESS,
        "IngressClass" => INGRESS_CLASS,
        "StatefulSet" => STATEFUL_SET,
        "Endpoints" => ENDPOINTS,
        "Node" => NODE,
        "Event" => EVENT,
        "Namespace" => NAMESPACE,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "PersistentVolume" => PERSISTENT_VOLUME,
        "PersistentVolumeClaim" => PERSISTENT_VOLUME_CLAIM,
        "ComponentStatus" => COMPONENT_STATUS,
        "Deployment" => DEPLOYMENT,
        "HorizontalPodAutoscaler" => HORIZONTAL_POD_AUTOSCALER,
        "ConfigMap" => CONFIG_MAP,
        "NetworkPolicy" => NETWORK_POLICY,
        "RoleBinding" | "ClusterRoleBinding" => ROLE_BINDINGS,
        "CertificateSigningRequest" => CERTIFICATE_SIGNING_REQUEST,
        "ClusterTrustBundle" => CLUSTER_TRUST_BUNDLE,
        "PodCertificateRequest" => POD_CERTIFICATE_REQUEST,
        "Lease" => LEASE,
        "LeaseCandidate" => LEASE_CANDIDATE,
        "StorageClass" => STORAGE_CLASS,
        "VolumeAttributesClass" => VOLUME_ATTRIBUTES_CLASS,
        "Status" => STATUS,
        "ControllerRevision" => CONTROLLER_REVISION,
        "ResourceQuota" => RESOURCE_QUOTA,
        "PriorityClass" => PRIORITY_CLASS,
        "RuntimeClass" => RUNTIME_CLASS,
        "VolumeAttachment" => VOLUME_ATTACHMENT,
        "EndpointSlice" => ENDPOINT_SLICE,
        "CSINode" => CSI_NODE,
        "CSIDriver" => CSI_DRIVER,
        "CSIStorageCapacity" => CSI_STORAGE_CAPACITY,
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => WEBHOOK_CONFIGURATION,
        "ValidatingAdmissionPolicy" => VALIDATING_ADMISSION_POLICY,
        "MutatingAdmissionPolicy" => MUTATING_ADMISSION_POLICY,
        "ValidatingAdmissionPolicyBinding" | "MutatingAdmissionPolicyBinding" => {
            ADMISSION_POLICY_BINDING
        }
        "FlowSchema" => FLOW_SCHEMA,
        "PriorityLevelConfiguration" => PRIORITY_LEVEL_CONFIGURATION,
        "StorageVersion" => STORAGE_VERSION,
        "Scale" => SCALE,
        "DeviceClass" | "ResourceClaimTemplate" | "Workload" => NAME_AGE,
        "ResourceClaim" => RESOURCE_CLAIM,
        "ResourceSlice" => RESOURCE_SLICE,
        "ResourcePoolStatusRequest" => RESOURCE_POOL_STATUS_REQUEST,
        "DeviceTaintRule" => DEVICE_TAINT_RULE,
        "ServiceCIDR" => SERVICE_CIDR,
        "IPAddress" => IP_ADDRESS,
        "StorageVersionMigration" => STORAGE_VERSION_MIGRATION,
        "PodGroup" => POD_GROUP,
        "EvictionRequest" => EVICTION_REQUEST,
        "Eviction" => EVICTION,
        _ => return None,
    })
}

//! Tests of skiff-patch through its public API: strategic merge patch cases mirroring what
//! kubectl sends, JSON and merge patch, and a quick no-panic fuzz. `types()` is a hand-made type
//! graph standing in for the one the server builds from k8s-openapi's schemas.

mod no_panic;
mod standard;
mod strategic;

use serde_json::Value;
use skiff_patch::{Child, PatchError, PatchType, StrategyTable, apply};

pub const POD: &str = "io.k8s.api.core.v1.Pod";
pub const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
pub const SERVICE: &str = "io.k8s.api.core.v1.Service";
pub const PDB: &str = "io.k8s.api.policy.v1.PodDisruptionBudget";

/// The bundled strategies plus a small type graph: Pod, Deployment, Service,
/// PodDisruptionBudget and what they contain.
pub fn types() -> StrategyTable {
    const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    let edges = [
        (POD, "metadata", META),
        (POD, "spec", "io.k8s.api.core.v1.PodSpec"),
        (
            "io.k8s.api.core.v1.PodSpec",
            "containers",
            "io.k8s.api.core.v1.Container",
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "initContainers",
            "io.k8s.api.core.v1.Container",
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "volumes",
            "io.k8s.api.core.v1.Volume",
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "securityContext",
            "io.k8s.api.core.v1.PodSecurityContext",
        ),
        (
            "io.k8s.api.core.v1.Container",
            "env",
            "io.k8s.api.core.v1.EnvVar",
        ),
        (
            "io.k8s.api.core.v1.Container",
            "ports",
            "io.k8s.api.core.v1.ContainerPort",
        ),
        (
            "io.k8s.api.core.v1.Container",
            "volumeMounts",
            "io.k8s.api.core.v1.VolumeMount",
        ),
        (
            "io.k8s.api.core.v1.Volume",
            "configMap",
            "io.k8s.api.core.v1.ConfigMapVolumeSource",
        ),
        (
            "io.k8s.api.core.v1.Volume",
            "emptyDir",
            "io.k8s.api.core.v1.EmptyDirVolumeSource",
        ),
        (
            META,
            "ownerReferences",
            "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
        ),
        (DEPLOYMENT, "metadata", META),
        (DEPLOYMENT, "spec", "io.k8s.api.apps.v1.DeploymentSpec"),
        (
            "io.k8s.api.apps.v1.DeploymentSpec",
            "template",
            "io.k8s.api.core.v1.PodTemplateSpec",
        ),
        (
            "io.k8s.api.apps.v1.DeploymentSpec",
            "strategy",
            "io.k8s.api.apps.v1.DeploymentStrategy",
        ),
        ("io.k8s.api.core.v1.PodTemplateSpec", "metadata", META),
        (
            "io.k8s.api.core.v1.PodTemplateSpec",
            "spec",
            "io.k8s.api.core.v1.PodSpec",
        ),
        (SERVICE, "metadata", META),
        (SERVICE, "spec", "io.k8s.api.core.v1.ServiceSpec"),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "ports",
            "io.k8s.api.core.v1.ServicePort",
        ),
        (PDB, "metadata", META),
        (PDB, "spec", "io.k8s.api.policy.v1.PodDisruptionBudgetSpec"),
    ];
    let mut table = StrategyTable::builtin();
    for (definition, field, child) in edges {
        table.set_child(definition, field, Child::Type(child.to_owned()));
    }
    table
}

/// Applies a strategic merge patch to an object of definition `root`.
pub fn smp(root: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    apply(
        original,
        patch.to_string().as_bytes(),
        PatchType::StrategicMerge,
        Some(root),
        &types(),
    )
}

/// Whether any object key at any depth is a strategic merge directive.
pub fn has_directive(value: &Value) -> bool {
    match value {
        Value::Object(object) => object.iter().any(|(key, value)| {
            key == "$patch"
                || key == "$retainKeys"
                || key.starts_with("$setElementOrder/")
                || key.starts_with("$deleteFromPrimitiveList/")
                || has_directive(value)
        }),
        Value::Array(items) => items.iter().any(has_directive),
        _ => false,
    }
}

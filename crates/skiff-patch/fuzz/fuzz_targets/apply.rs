//! Fuzz target: any body, any patch type, against a pod and a deployment, must not panic; a
//! strategic merge result must be an object. The first input byte picks the patch type and the
//! object, the rest is the request body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use skiff_patch::{Child, PatchType, StrategyTable, apply};

fn table() -> StrategyTable {
    let mut table = StrategyTable::builtin();
    for (definition, field, child) in [
        (
            "io.k8s.api.core.v1.Pod",
            "metadata",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        ),
        (
            "io.k8s.api.core.v1.Pod",
            "spec",
            "io.k8s.api.core.v1.PodSpec",
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "containers",
            "io.k8s.api.core.v1.Container",
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "volumes",
            "io.k8s.api.core.v1.Volume",
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
            "io.k8s.api.apps.v1.Deployment",
            "spec",
            "io.k8s.api.apps.v1.DeploymentSpec",
        ),
        (
            "io.k8s.api.apps.v1.DeploymentSpec",
            "template",
            "io.k8s.api.core.v1.PodTemplateSpec",
        ),
        (
            "io.k8s.api.core.v1.PodTemplateSpec",
            "spec",
            "io.k8s.api.core.v1.PodSpec",
        ),
    ] {
        table.set_child(definition, field, Child::Type(child.to_owned()));
    }
    table
}

fn pod_spec() -> Value {
    json!({
        "containers": [
            {"name": "app", "image": "i", "args": ["a"], "env": [{"name": "A", "value": "1"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "j"}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let ty = match selector % 3 {
        0 => PatchType::Json,
        1 => PatchType::Merge,
        _ => PatchType::StrategicMerge,
    };
    let (root, original) = if selector & 0x80 == 0 {
        (
            "io.k8s.api.core.v1.Pod",
            json!({"metadata": {"name": "p", "labels": {"a": "b"}, "finalizers": ["x"]}, "spec": pod_spec()}),
        )
    } else {
        (
            "io.k8s.api.apps.v1.Deployment",
            json!({"spec": {"strategy": {"type": "RollingUpdate"}, "template": {"spec": pod_spec()}}}),
        )
    };
    if let Ok(patched) = apply(&original, body, ty, Some(root), &table()) {
        assert!(patched.is_object());
    }
});

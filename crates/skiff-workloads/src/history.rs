//! ControllerRevisions as the DaemonSet and StatefulSet controllers keep them (upstream's
//! `pkg/controller/history` and the daemon controller's history code): each revision holds
//! upstream's patch of the pod template — `{"spec":{"template":{"$patch":"replace",...}}}`,
//! which `kubectl rollout undo` applies as a strategic merge patch — a revision number, the
//! template's labels plus a hash label, the owner's annotations and a controller reference.
//!
//! Revisions are compared by their data in canonical form (keys sorted, nulls and empty
//! values dropped), not byte for byte, because the API server re-encodes what it stores.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::replicaset::is_not_found;
use crate::util::{canonical, safe_encode};

/// The label on pods and revisions naming the revision they belong to (upstream's
/// `controller-revision-hash`: the hash for DaemonSets, the revision name for StatefulSets).
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// The label upstream's history package puts on StatefulSet revisions: the hash of the data.
pub const DATA_HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The revision data for a pod template: the patch that restores it.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(map) = template.as_object_mut() {
        add_go_zero_values(map);
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// Adds the zero values Go's `encoding/json` writes for a pod template and k8s-openapi leaves
/// out (`metadata.creationTimestamp: null`, `resources: {}` on each container), so the data
/// is byte for byte what kubectl computes from the same template: `rollout undo` compares
/// the two to skip a rollback to the template already in place.
fn add_go_zero_values(template: &mut serde_json::Map<String, Value>) {
    let metadata = template.entry("metadata").or_insert_with(|| json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.entry("creationTimestamp").or_insert(Value::Null);
    }
    let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(container) = container.as_object_mut() {
                container.entry("resources").or_insert_with(|| json!({}));
            }
        }
    }
}

/// A revision's data, if any.
pub fn data_of(revision: &ControllerRevision) -> Option<&Value> {
    revision.data.as_ref().map(|d| &d.0)
}

/// Whether two revision data are the same once canonical.
pub fn same_data(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// Whether a revision records `template`.
pub fn records(revision: &ControllerRevision, template: &PodTemplateSpec) -> bool {
    data_of(revision).is_some_and(|data| same_data(data, &template_patch(template)))
}

/// The pod template a revision records.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = data_of(revision)?.pointer("/spec/template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// The hash of revision data (FNV-1 over its canonical JSON, then the collision count, as
/// upstream's `HashControllerRevision`), safe-encoded.
pub fn data_hash(data: &Value, collision_count: Option<i32>) -> String {
    const FNV_OFFSET: u32 = 0x811c_9dc5;
    const FNV_PRIME: u32 = 0x0100_0193;
    let mut bytes = serde_json::to_vec(&canonical(data)).unwrap_or_default();
    if let Some(count) = collision_count {
        bytes.extend(count.to_string().bytes());
    }
    let hash = bytes.iter().fold(FNV_OFFSET, |hash, b| {
        hash.wrapping_mul(FNV_PRIME) ^ u32::from(*b)
    });
    safe_encode(hash)
}

/// `<prefix>-<hash>`, the prefix cut so the name stays within 253 bytes.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut cut = prefix.len().min(223);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &prefix[..cut])
}

/// Orders revisions oldest first: by revision number, then creation time, then name.
pub fn by_revision(a: &ControllerRevision, b: &ControllerRevision) -> Ordering {
    let created = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (a.revision, created(a), &a.metadata.name).cmp(&(b.revision, created(b), &b.metadata.name))
}

/// The highest revision number (0 for none).
pub fn max_revision(revisions: &[Arc<ControllerRevision>]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// The hash label of a revision, if any.
pub fn hash_of(revision: &ControllerRevision) -> Option<&str> {
    revision
        .metadata
        .labels
        .as_ref()?
        .get(REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// A new revision (not yet created): `data`, `labels`, the owner's annotations and a
/// controller reference.
pub fn new_revision(
    name: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    data: Value,
    revision: i64,
) -> ControllerRevision {
    ControllerRevision {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name),
            namespace,
            labels: Some(labels),
            annotations: annotations.filter(|a| !a.is_empty()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Sets a revision's number, returning the revision as written.
pub async fn renumber(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision> {
    let name = revision.metadata.name.as_deref().unwrap_or_default();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"revision": number})),
    )
    .await
    .with_context(|| format!("renumbering controller revision {name}"))
}

/// Deletes a revision (gone already is fine).
pub async fn delete(api: &Api<ControllerRevision>, revision: &ControllerRevision) -> Result<()> {
    let name = revision.metadata.name.as_deref().unwrap_or_default();
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(error) if is_not_found(&error) => Ok(()),
        Err(error) => Err(error).with_context(|| format!("deleting controller revision {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        }))
        .unwrap()
    }

    fn revision(data: Value, number: i64, name: &str) -> ControllerRevision {
        ControllerRevision {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(RawExtension(data)),
            revision: number,
        }
    }

    #[test]
    fn the_patch_replaces_the_template_and_restores_it() {
        let patch = template_patch(&template("nginx:1"));
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            concat!(
                r#"{"spec":{"template":{"$patch":"replace","#,
                r#""metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"#,
                r#""spec":{"containers":[{"image":"nginx:1","name":"main","resources":{}}]}}}}"#,
            ),
            "what Go's encoding/json writes for the same template",
        );
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1"
        );
        let stored = revision(patch, 1, "web-1");
        assert!(records(&stored, &template("nginx:1")));
        assert!(!records(&stored, &template("nginx:2")));
        let restored = serde_json::to_value(template_of(&stored).unwrap()).unwrap();
        let original = serde_json::to_value(template("nginx:1")).unwrap();
        assert_eq!(canonical(&restored), canonical(&original));
    }

    #[test]
    fn data_compares_and_hashes_in_canonical_form() {
        let a = json!({"spec": {"template": {"b": 1, "a": {}, "c": null}}});
        let b = json!({"spec": {"template": {"b": 1}}});
        assert!(same_data(&a, &b));
        assert_eq!(data_hash(&a, None), data_hash(&b, None));
        assert_ne!(data_hash(&a, None), data_hash(&a, Some(1)));
        assert_ne!(
            data_hash(&a, None),
            data_hash(&json!({"spec": {"template": {"b": 2}}}), None)
        );
    }

    #[test]
    fn revisions_sort_by_number_then_name() {
        let mut revisions = [
            revision(json!({}), 3, "c"),
            revision(json!({}), 1, "b"),
            revision(json!({}), 1, "a"),
        ];
        revisions.sort_by(by_revision);
        let names: Vec<_> = revisions
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }
}

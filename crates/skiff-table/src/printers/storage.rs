//! Storage kinds: PersistentVolume, PersistentVolumeClaim, StorageClass,
//! VolumeAttributesClass, VolumeAttachment and the CSI objects.

use serde_json::{Value, json};

use crate::cell::{Cell, Ctx};
use crate::duration::parse_time;
use crate::json::{annotation, arr_at, at, is_set, obj_at, opt_str, scalar_text, str_at};

/// The beta annotation that overrides `storageClassName` on volumes and claims.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

pub(crate) const PERSISTENT_VOLUME: &[Cell] = &[
    Cell::Name,
    Cell::Custom(|cx| json!(storage_quantity(cx.obj, "spec.capacity"))),
    Cell::Custom(|cx| json!(access_modes(cx.obj, "spec.accessModes"))),
    Cell::Str("spec.persistentVolumeReclaimPolicy"),
    Cell::Custom(phase_or_terminating),
    Cell::Custom(|cx| {
        if !is_set(cx.obj, "spec.claimRef") {
            return json!("");
        }
        json!(format!(
            "{}/{}",
            str_at(cx.obj, "spec.claimRef.namespace"),
            str_at(cx.obj, "spec.claimRef.name")
        ))
    }),
    Cell::Custom(storage_class),
    Cell::Custom(|cx| json!(unset_or(cx.obj, "spec.volumeAttributesClassName"))),
    Cell::Str("status.reason"),
    Cell::Age,
    Cell::Custom(|cx| json!(unset_or(cx.obj, "spec.volumeMode"))),
];

pub(crate) const PERSISTENT_VOLUME_CLAIM: &[Cell] = &[
    Cell::Name,
    Cell::Custom(phase_or_terminating),
    Cell::Str("spec.volumeName"),
    Cell::Custom(|cx| {
        if str_at(cx.obj, "spec.volumeName").is_empty() {
            json!("")
        } else {
            json!(storage_quantity(cx.obj, "status.capacity"))
        }
    }),
    Cell::Custom(|cx| {
        if str_at(cx.obj, "spec.volumeName").is_empty() {
            json!("")
        } else {
            json!(access_modes(cx.obj, "status.accessModes"))
        }
    }),
    Cell::Custom(storage_class),
    Cell::Custom(|cx| json!(unset_or(cx.obj, "spec.volumeAttributesClassName"))),
    Cell::Age,
    Cell::Custom(|cx| json!(unset_or(cx.obj, "spec.volumeMode"))),
];

/// The string at a path, `<unset>` when nil.
fn unset_or<'a>(o: &'a Value, path: &str) -> &'a str {
    opt_str(o, path).unwrap_or("<unset>")
}

/// `status.phase`, or `Terminating` once deletion has started.
fn phase_or_terminating(cx: &Ctx) -> Value {
    if is_set(cx.obj, "metadata.deletionTimestamp") {
        json!("Terminating")
    } else {
        json!(str_at(cx.obj, "status.phase"))
    }
}

/// The `storage` entry of a resource list; a missing quantity prints as Go's zero `0`.
fn storage_quantity(o: &Value, list: &str) -> String {
    obj_at(o, list)
        .and_then(|m| m.get("storage"))
        .and_then(scalar_text)
        .unwrap_or_else(|| "0".to_owned())
}

/// Access modes abbreviated in kube's fixed order (RWO, ROX, RWX, RWOP).
fn access_modes(o: &Value, path: &str) -> String {
    let modes: Vec<&str> = arr_at(o, path).iter().filter_map(Value::as_str).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn storage_class(cx: &Ctx) -> Value {
    match annotation(cx.obj, BETA_STORAGE_CLASS) {
        Some(class) => json!(class),
        None => json!(str_at(cx.obj, "spec.storageClassName")),
    }
}

pub(crate) const STORAGE_CLASS: &[Cell] = &[
    Cell::Custom(|cx| {
        let name = str_at(cx.obj, "metadata.name");
        if is_default_storage_class(cx.obj) {
            json!(format!("{name} (default)"))
        } else {
            json!(name)
        }
    }),
    Cell::Str("provisioner"),
    Cell::Custom(|cx| json!(opt_str(cx.obj, "reclaimPolicy").unwrap_or("Delete"))),
    Cell::Custom(|cx| json!(opt_str(cx.obj, "volumeBindingMode").unwrap_or("Immediate"))),
    Cell::Bool("allowVolumeExpansion", false),
    Cell::Age,
];

/// Whether a StorageClass carries the (GA or beta) default-class annotation.
pub(crate) fn is_default_storage_class(o: &Value) -> bool {
    annotation(o, "storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation(o, "storageclass.beta.kubernetes.io/is-default-class") == Some("true")
}

/// Index of the effective default among a list of StorageClasses: the newest carrying the
/// default annotation, ties broken by name (the first name in order wins).
pub(crate) fn effective_default_storage_class(objects: &[Value]) -> Option<usize> {
    objects
        .iter()
        .enumerate()
        .filter(|(_, o)| is_default_storage_class(o))
        .max_by(|(_, a), (_, b)| {
            let created = |o: &Value| parse_time(at(o, "metadata.creationTimestamp"));
            created(a)
                .cmp(&created(b))
                .then_with(|| str_at(b, "metadata.name").cmp(str_at(a, "metadata.name")))
        })
        .map(|(i, _)| i)
}

pub(crate) const VOLUME_ATTRIBUTES_CLASS: &[Cell] =
    &[Cell::Name, Cell::Str("driverName"), Cell::Age];

pub(crate) const VOLUME_ATTACHMENT: &[Cell] = &[
    Cell::Name,
    Cell::Str("spec.attacher"),
    Cell::Str("spec.source.persistentVolumeName"),
    Cell::Str("spec.nodeName"),
    Cell::Bool("status.attached", false),
    Cell::Age,
];

pub(crate) const CSI_NODE: &[Cell] = &[Cell::Name, Cell::Len("spec.drivers"), Cell::Age];

pub(crate) const CSI_DRIVER: &[Cell] = &[
    Cell::Name,
    Cell::Bool("spec.attachRequired", true),
    Cell::Bool("spec.podInfoOnMount", false),
    Cell::Bool("spec.storageCapacity", false),
    Cell::Custom(|cx| {
        if !is_set(cx.obj, "spec.tokenRequests") {
            return json!("<unset>");
        }
        json!(crate::cell::join_field(
            cx.obj,
            "spec.tokenRequests",
            "audience",
            ","
        ))
    }),
    Cell::Bool("spec.requiresRepublish", false),
    Cell::JoinStrs {
        list: "spec.volumeLifecycleModes",
        sep: ",",
        empty: "<none>",
    },
    Cell::Age,
];

pub(crate) const CSI_STORAGE_CAPACITY: &[Cell] = &[
    Cell::Name,
    Cell::Str("storageClassName"),
    Cell::Custom(|cx| {
        json!(
            at(cx.obj, "capacity")
                .and_then(scalar_text)
                .unwrap_or_else(|| "<unset>".to_owned())
        )
    }),
];

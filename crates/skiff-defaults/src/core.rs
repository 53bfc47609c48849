//! Defaults of the core (`""`) group besides Pods and Services: Namespaces, Secrets, volumes and
//! claims, Endpoints, ReplicationControllers, PodTemplates and LimitRanges.

use serde_json::{Value, json};

use crate::json::{
    Obj, child, child_or_empty, default_ptr, default_str, each, fill_zeros, is_empty, str_of,
};
use crate::pod;

pub(crate) fn namespace(ns: &mut Obj) {
    // Upstream sets this label on every write, replacing whatever the client sent.
    if let Some(meta) = child(ns, "metadata") {
        let name = str_of(meta, "name").to_owned();
        if !name.is_empty()
            && let Some(labels) = child_or_empty(meta, "labels")
        {
            labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
        }
    }
    // NamespaceSpec is a struct, so Go always writes `spec`.
    default_ptr(ns, "spec", json!({}));
    if let Some(status) = child_or_empty(ns, "status") {
        default_str(status, "phase", "Active");
    }
}

pub(crate) fn secret(secret: &mut Obj) {
    default_str(secret, "type", "Opaque");
}

pub(crate) fn pvc_spec(spec: &mut Obj) {
    default_ptr(spec, "volumeMode", json!("Filesystem"));
}

/// A PersistentVolumeClaim, also as a StatefulSet's `volumeClaimTemplates` item.
pub(crate) fn pvc(pvc: &mut Obj) {
    if let Some(spec) = child_or_empty(pvc, "spec") {
        pvc_spec(spec);
    }
    if let Some(status) = child_or_empty(pvc, "status") {
        default_str(status, "phase", "Pending");
    }
}

pub(crate) fn pv(pv: &mut Obj) {
    if let Some(spec) = child_or_empty(pv, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_ptr(spec, "volumeMode", json!("Filesystem"));
        if let Some(host_path) = child(spec, "hostPath") {
            default_ptr(host_path, "type", json!(""));
        }
        pod::legacy_volume_sources(spec);
    }
    if let Some(status) = child_or_empty(pv, "status") {
        default_str(status, "phase", "Pending");
    }
}

pub(crate) fn endpoints(ep: &mut Obj) {
    each(ep, "subsets", |subset| {
        each(subset, "ports", |p| default_str(p, "protocol", "TCP"));
    });
}

pub(crate) fn pod_template(pt: &mut Obj) {
    if let Some(template) = child_or_empty(pt, "template") {
        pod::template(template);
    }
}

pub(crate) fn replication_controller(rc: &mut Obj) {
    let template_labels = rc
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = child(rc, "spec")
            && is_empty(spec, "selector")
        {
            spec.insert("selector".into(), labels.clone());
        }
        if let Some(meta) = child_or_empty(rc, "metadata")
            && is_empty(meta, "labels")
        {
            meta.insert("labels".into(), labels);
        }
    }
    if let Some(spec) = child_or_empty(rc, "spec") {
        default_ptr(spec, "replicas", json!(1));
        if let Some(template) = child(spec, "template") {
            pod::template(template);
        }
    }
    if let Some(status) = child_or_empty(rc, "status") {
        fill_zeros(status, &[("replicas", json!(0))]);
    }
}

pub(crate) fn limit_range(lr: &mut Obj) {
    let Some(spec) = child_or_empty(lr, "spec") else {
        return;
    };
    each(spec, "limits", |item| {
        if str_of(item, "type") != "Container" {
            return;
        }
        let mut default = map_of(item, "default");
        for (k, v) in map_of(item, "max") {
            default.entry(k).or_insert(v);
        }
        let mut default_request = map_of(item, "defaultRequest");
        for (k, v) in default.iter().chain(map_of(item, "min").iter()) {
            default_request
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (key, value) in [("default", default), ("defaultRequest", default_request)] {
            let settable = matches!(item.get(key), None | Some(Value::Null | Value::Object(_)));
            if settable && !value.is_empty() {
                item.insert(key.into(), Value::Object(value));
            }
        }
    });
}

fn map_of(m: &Obj, key: &str) -> Obj {
    m.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

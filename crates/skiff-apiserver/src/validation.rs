//! Per-kind validation of written objects, for the rules clients trip over: ConfigMap and
//! Secret keys and immutability, namespace names, pods' containers and the fields of a pod
//! that may not change, workload selectors that must match their template. Every failure is a
//! 422 whose causes name the fields.

use serde_json::Value;

use crate::registry::Resource;
use crate::{ApiError, Cause};

/// Checks `new` (replacing `old`, if any) against the rules of its kind.
pub(crate) fn validate(
    resource: &Resource,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    match (resource.group, resource.kind) {
        ("", "ConfigMap") => {
            data_keys(new, &["data", "binaryData"], &mut causes);
            immutable_data(old, new, &["data", "binaryData"], &mut causes);
        }
        ("", "Secret") => {
            data_keys(new, &["data", "stringData"], &mut causes);
            immutable_data(old, new, &["data", "stringData"], &mut causes);
            if let Some(old) = old
                && old["type"] != new["type"]
                && !old["type"].is_null()
            {
                causes.push(invalid("type", &new["type"], "field is immutable"));
            }
        }
        ("", "Namespace") => {
            let name = new["metadata"]["name"].as_str().unwrap_or_default();
            if !is_dns_label(name) {
                causes.push(invalid(
                    "metadata.name",
                    &new["metadata"]["name"],
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                ));
            }
        }
        ("", "Pod") => {
            containers(&new["spec"], "spec", &mut causes);
            if let Some(old) = old {
                pod_spec_unchanged(&old["spec"], &new["spec"], &mut causes);
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            selector_matches_template(new, &mut causes);
            containers(
                &new["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut causes,
            );
            if let Some(old) = old
                && old["spec"]["selector"] != new["spec"]["selector"]
            {
                causes.push(invalid(
                    "spec.selector",
                    &new["spec"]["selector"],
                    "field is immutable",
                ));
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    let mut error = ApiError::invalid(resource, name, &causes[0].field, &causes[0].message);
    error.message = format!(
        "{} \"{name}\" is invalid: {}",
        resource.kind,
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(details) = error.details.as_mut() {
        details.causes = causes;
    }
    Err(error)
}

fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".to_owned(),
        message: format!("Invalid value: {value}: {detail}"),
        field: field.to_owned(),
    }
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".to_owned(),
        message: "Required value".to_owned(),
        field: field.to_owned(),
    }
}

fn forbidden(field: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".to_owned(),
        message: format!("Forbidden: {detail}"),
        field: field.to_owned(),
    }
}

/// ConfigMap and Secret keys: non-empty, at most 253 of `[-._a-zA-Z0-9]`, and in one map only.
fn data_keys(object: &Value, maps: &[&str], causes: &mut Vec<Cause>) {
    let mut seen = std::collections::HashSet::new();
    for map in maps {
        for key in object[*map].as_object().into_iter().flat_map(|m| m.keys()) {
            let valid = !key.is_empty()
                && key.len() <= 253
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && key != "."
                && key != "..";
            if !valid {
                causes.push(invalid(
                    &format!("{map}[{key}]"),
                    &Value::String(key.clone()),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                ));
            }
            if !seen.insert(key.clone()) && *map != "stringData" {
                causes.push(invalid(
                    &format!("{map}[{key}]"),
                    &Value::String(key.clone()),
                    "duplicate of key present in another map",
                ));
            }
        }
    }
}

/// Once `immutable: true`, the data may not change and the flag may not be unset.
fn immutable_data(old: Option<&Value>, new: &Value, maps: &[&str], causes: &mut Vec<Cause>) {
    let Some(old) = old else {
        return;
    };
    if old["immutable"] != Value::Bool(true) {
        return;
    }
    if new["immutable"] != Value::Bool(true) {
        causes.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for map in maps {
        if old[*map] != new[*map] {
            causes.push(forbidden(map, "field is immutable when `immutable` is set"));
        }
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A pod spec needs containers, each with a unique name and an image.
fn containers(spec: &Value, at: &str, causes: &mut Vec<Cause>) {
    let list = spec["containers"].as_array();
    if list.is_none_or(|l| l.is_empty()) {
        causes.push(required(&format!("{at}.containers")));
        return;
    }
    let mut names = std::collections::HashSet::new();
    for (i, container) in list.into_iter().flatten().enumerate() {
        let name = container["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            causes.push(required(&format!("{at}.containers[{i}].name")));
        } else if !names.insert(name) {
            causes.push(Cause {
                reason: "FieldValueDuplicate".to_owned(),
                message: format!("Duplicate value: {:?}", name),
                field: format!("{at}.containers[{i}].name"),
            });
        }
        if container["image"].as_str().is_none_or(str::is_empty) {
            causes.push(required(&format!("{at}.containers[{i}].image")));
        }
    }
}

/// What may change in a running pod's spec: images, `activeDeadlineSeconds`, added
/// tolerations, and the node it is bound to once (by its binding).
fn pod_spec_unchanged(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let mut old = old.clone();
    let mut new = new.clone();
    for spec in [&mut old, &mut new] {
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            if let Some(items) = spec[list].as_array_mut() {
                for item in items {
                    if let Some(fields) = item.as_object_mut() {
                        fields.remove("image");
                        fields.remove("resources");
                    }
                }
            }
        }
        if let Some(fields) = spec.as_object_mut() {
            for mutable in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
            ] {
                fields.remove(mutable);
            }
        }
    }
    if old["nodeName"].as_str().is_none_or(str::is_empty) {
        if let Some(fields) = new.as_object_mut() {
            fields.remove("nodeName");
        }
        if let Some(fields) = old.as_object_mut() {
            fields.remove("nodeName");
        }
    }
    if old != new {
        causes.push(forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing tolerations) or `spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}

/// A workload's selector must select its own pod template.
fn selector_matches_template(object: &Value, causes: &mut Vec<Cause>) {
    let selector = &object["spec"]["selector"];
    if !selector.is_object() {
        causes.push(required("spec.selector"));
        return;
    }
    let empty = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.is_empty())
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(|e| e.is_empty());
    // The selector's text form goes through the one label-selector parser and matcher.
    let matches = crate::selector::LabelSelector::parse(&crate::selector::text_of(selector))
        .is_ok_and(|parsed| {
            parsed.matches(&crate::selector::labels_of(&object["spec"]["template"]))
        });
    if empty {
        causes.push(invalid(
            "spec.selector",
            selector,
            "empty selector is invalid for deployment",
        ));
    } else if !matches {
        causes.push(invalid(
            "spec.template.metadata.labels",
            &object["spec"]["template"]["metadata"]["labels"],
            "`selector` does not match template `labels`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn check(plural: &str, old: Option<Value>, new: Value) -> Result<(), Vec<String>> {
        let registry = Registry::builtin();
        let resource = registry
            .resources()
            .iter()
            .find(|r| r.plural == plural && (r.group.is_empty() || r.group == "apps"))
            .unwrap();
        validate(resource, old.as_ref(), &new).map_err(|e| {
            e.details
                .map(|d| d.causes.into_iter().map(|c| c.field).collect())
                .unwrap_or_default()
        })
    }

    /// Conformance: [sig-node] ConfigMap should fail to create ConfigMap with empty key; [sig-storage] ConfigMap should be immutable if `immutable` field is set.
    #[test]
    fn configmap_keys_and_immutability() {
        let cm = |data: Value| json!({"metadata": {"name": "c"}, "data": data});
        assert!(check("configmaps", None, cm(json!({"a.b_c-1": "x"}))).is_ok());
        assert_eq!(
            check("configmaps", None, cm(json!({"": "x"}))).unwrap_err(),
            ["data[]"]
        );
        assert!(check("configmaps", None, cm(json!({"a/b": "x"}))).is_err());
        let mut frozen = cm(json!({"a": "1"}));
        frozen["immutable"] = json!(true);
        let mut changed = frozen.clone();
        changed["data"]["a"] = json!("2");
        assert_eq!(
            check("configmaps", Some(frozen.clone()), changed).unwrap_err(),
            ["data"]
        );
        let mut thawed = frozen.clone();
        thawed["immutable"] = json!(false);
        assert!(check("configmaps", Some(frozen.clone()), thawed).is_err());
        let mut labelled = frozen.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(check("configmaps", Some(frozen), labelled).is_ok());
    }

    #[test]
    fn pods_need_containers_and_keep_their_spec() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        assert!(check("pods", None, pod.clone()).is_ok());
        assert_eq!(
            check("pods", None, json!({"metadata": {"name": "p"}, "spec": {}})).unwrap_err(),
            ["spec.containers"]
        );
        let mut new_image = pod.clone();
        new_image["spec"]["containers"][0]["image"] = json!("busybox:2");
        assert!(check("pods", Some(pod.clone()), new_image).is_ok());
        let mut bound = pod.clone();
        bound["spec"]["nodeName"] = json!("n1");
        assert!(
            check("pods", Some(pod.clone()), bound.clone()).is_ok(),
            "binding once"
        );
        let mut moved = bound.clone();
        moved["spec"]["nodeName"] = json!("n2");
        assert!(check("pods", Some(bound), moved).is_err());
        let mut command = pod.clone();
        command["spec"]["containers"][0]["command"] = json!(["sh"]);
        assert_eq!(check("pods", Some(pod), command).unwrap_err(), ["spec"]);
    }

    #[test]
    fn workload_selectors_must_match_their_template() {
        let deployment = |selector: Value| {
            json!({
                "metadata": {"name": "d"},
                "spec": {
                    "selector": selector,
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
                }
            })
        };
        assert!(
            check(
                "deployments",
                None,
                deployment(json!({"matchLabels": {"app": "web"}}))
            )
            .is_ok()
        );
        assert_eq!(
            check(
                "deployments",
                None,
                deployment(json!({"matchLabels": {"app": "db"}}))
            )
            .unwrap_err(),
            ["spec.template.metadata.labels"]
        );
        let old = deployment(json!({"matchLabels": {"app": "web"}}));
        let new = deployment(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
        );
        assert_eq!(
            check("deployments", Some(old), new).unwrap_err(),
            ["spec.selector"]
        );
    }

    #[test]
    fn namespace_names_are_dns_labels() {
        assert!(check("namespaces", None, json!({"metadata": {"name": "team-a"}})).is_ok());
        assert!(check("namespaces", None, json!({"metadata": {"name": "team.a"}})).is_err());
    }
}

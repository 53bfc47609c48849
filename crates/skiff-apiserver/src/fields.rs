//! Field selectors (`?fieldSelector=spec.nodeName=node-1,status.phase!=Failed`): parsing, the
//! fields each kind may be selected by (kube-apiserver's field label tables, as data), and
//! matching an object. Selecting by a field a kind does not support is a 400, as upstream.

use std::borrow::Cow;

use serde_json::Value;

use crate::registry::Resource;
use crate::selector::Selectable;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

/// Fields every kind can be selected by.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra selectable fields per (group, plural), from kube-apiserver's field label conversion
/// functions and `GetAttrs` of each registry.
const KIND_FIELDS: &[(&str, &str, &[&str])] = &[
    (
        "",
        "pods",
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    ),
    (
        "",
        "events",
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    ),
    ("", "secrets", &["type"]),
    ("", "namespaces", &["status.phase"]),
    ("", "nodes", &["spec.unschedulable"]),
    ("", "replicationcontrollers", &["status.replicas"]),
    ("", "persistentvolumes", &["name"]),
    ("", "services", &["spec.clusterIP", "spec.type"]),
    ("apps", "replicasets", &["status.replicas"]),
    ("batch", "jobs", &["status.successful"]),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        &["spec.signerName"],
    ),
    (
        "events.k8s.io",
        "events",
        &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
    ),
];

fn supported(resource: &Resource, field: &str) -> bool {
    COMMON_FIELDS.contains(&field)
        || KIND_FIELDS.iter().any(|(group, plural, fields)| {
            *group == resource.group && *plural == resource.plural && fields.contains(&field)
        })
}

impl FieldSelector {
    /// Parses a selector for `resource`, rejecting fields it cannot be selected by.
    pub fn parse(text: &str, resource: &Resource) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for raw in split_unescaped(text, ',') {
            if raw.trim().is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some(at) = find_unescaped(&raw, "!=") {
                (&raw[..at], &raw[at + 2..], false)
            } else if let Some(at) = find_unescaped(&raw, "==") {
                (&raw[..at], &raw[at + 2..], true)
            } else if let Some(at) = find_unescaped(&raw, "=") {
                (&raw[..at], &raw[at + 1..], true)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{raw}'"
                ));
            };
            let field = field.trim();
            if !supported(resource, field) {
                return Err(format!(
                    "field label not supported: {field}{}",
                    if resource.plural.is_empty() {
                        String::new()
                    } else {
                        format!(" (for {})", resource.plural)
                    }
                ));
            }
            terms.push(Term {
                field: field.to_owned(),
                value: unescape(value),
                equal,
            });
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `object` (a decoded object, or the watch cache's extract of one) has the
    /// selected fields.
    pub(crate) fn matches(&self, object: &(impl Selectable + ?Sized)) -> bool {
        self.terms.iter().all(|term| {
            let found = object.field(path_of(&term.field));
            let text = found.as_deref().unwrap_or(missing_as(&term.field));
            (text == term.value) == term.equal
        })
    }
}

/// Where in an object a selectable field is: Events' `source` selects `source.component`,
/// PersistentVolumes' legacy `name` is `metadata.name`.
fn path_of(field: &str) -> &str {
    match field {
        "source" => "source.component",
        "name" => "metadata.name",
        other => other,
    }
}

/// What a missing field compares as: kube-apiserver's `false` for the boolean fields, else
/// empty.
fn missing_as(field: &str) -> &'static str {
    match field {
        "spec.hostNetwork" | "spec.unschedulable" => "false",
        _ => "",
    }
}

/// The object paths the field selectors of `group`/`plural` read (the core group is `""`),
/// each once: what the watch cache keeps of an object for them.
pub(crate) fn selectable_paths(group: &str, plural: &str) -> Vec<&'static str> {
    let kind_fields = KIND_FIELDS
        .iter()
        .filter(|(g, p, _)| *g == group && *p == plural)
        .flat_map(|(_, _, fields)| fields.iter());
    let mut paths: Vec<&'static str> = Vec::new();
    for field in COMMON_FIELDS.iter().chain(kind_fields) {
        let path = path_of(field);
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// The value at a dotted `path` of `object` as the text kube-apiserver compares: strings as
/// they are, booleans and numbers in their text form, null as empty; `None` when absent.
pub(crate) fn text_at<'a>(object: &'a Value, path: &str) -> Option<Cow<'a, str>> {
    let mut at = object;
    for part in path.split('.') {
        at = at.get(part)?;
    }
    Some(match at {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    })
}

/// Splits on `separator` not preceded by a backslash.
fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        let current = parts.last_mut().expect("never empty");
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(String::new());
        } else {
            current.push(c);
        }
    }
    if escaped {
        parts.last_mut().expect("never empty").push('\\');
    }
    parts
}

/// Byte offset of the first `needle` not escaped by a backslash.
fn find_unescaped(text: &str, needle: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if text[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn resource(group: &str, plural: &str) -> Resource {
        Registry::builtin()
            .resources()
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap()
            .clone()
    }

    fn check(group: &str, plural: &str, selector: &str, object: Value, expected: bool) {
        let parsed = FieldSelector::parse(selector, &resource(group, plural)).unwrap();
        assert_eq!(parsed.matches(&object), expected, "{selector} on {object}");
    }

    #[test]
    fn selects_by_metadata_on_every_kind() {
        let cm = json!({"metadata": {"name": "a", "namespace": "ns"}});
        check("", "configmaps", "metadata.name=a", cm.clone(), true);
        check("", "configmaps", "metadata.name==a", cm.clone(), true);
        check("", "configmaps", "metadata.name!=a", cm.clone(), false);
        check(
            "",
            "configmaps",
            "metadata.name=a,metadata.namespace=other",
            cm.clone(),
            false,
        );
        check("", "configmaps", "", cm, true);
    }

    #[test]
    fn selects_by_the_fields_each_kind_supports() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        check("", "pods", "spec.nodeName=n1", pod.clone(), true);
        check("", "pods", "spec.nodeName=", pod.clone(), false);
        check("", "pods", "status.phase!=Failed", pod.clone(), true);
        check(
            "",
            "pods",
            "spec.nodeName=",
            json!({"metadata": {"name": "p"}}),
            true,
        );
        check("", "pods", "spec.hostNetwork=false", pod, true);
        let event = json!({"involvedObject": {"kind": "Pod", "name": "p", "uid": "u"}, "source": {"component": "kubelet"}});
        check(
            "",
            "events",
            "involvedObject.name=p,involvedObject.kind=Pod",
            event.clone(),
            true,
        );
        check("", "events", "source=kubelet", event, true);
        check(
            "",
            "secrets",
            "type=kubernetes.io/tls",
            json!({"type": "kubernetes.io/tls"}),
            true,
        );
    }

    #[test]
    fn unsupported_fields_and_garbage_are_refused() {
        let cm = resource("", "configmaps");
        let err = FieldSelector::parse("spec.nodeName=x", &cm).unwrap_err();
        assert!(
            err.contains("field label not supported: spec.nodeName"),
            "{err}"
        );
        assert!(FieldSelector::parse("metadata.name", &cm).is_err());
    }

    #[test]
    fn escaped_separators_are_part_of_values() {
        let cm = resource("", "configmaps");
        let parsed = FieldSelector::parse(r"metadata.name=a\,b", &cm).unwrap();
        assert!(parsed.matches(&json!({"metadata": {"name": "a,b"}})));
    }
}

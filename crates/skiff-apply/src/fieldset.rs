//! Sets of field paths, the unit of ownership in server-side apply, and their `FieldsV1`
//! encoding.
//!
//! A [`FieldSet`] is a tree whose edges are path elements spelled as in `FieldsV1`:
//! `f:<field>` (a field of a struct or a key of a map), `k:<json>` (an item of an associative
//! list, named by its key fields), `v:<json>` (an item of a set list) and `i:<index>`. A node is
//! a *member* of the set when the path leading to it is owned as such; in `FieldsV1` a member
//! with children carries `".": {}`, a member without children is `{}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// A set of field paths (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(crate) member: bool,
    pub(crate) children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// A set holding only the path leading to this node.
    pub(crate) fn leaf() -> FieldSet {
        FieldSet {
            member: true,
            children: BTreeMap::new(),
        }
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Number of paths in the set.
    pub fn len(&self) -> usize {
        usize::from(self.member) + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// Adds `child` under `element`, merging with what is there; empty sets are not stored.
    pub(crate) fn insert_child(&mut self, element: String, child: FieldSet) {
        if child.is_empty() {
            return;
        }
        match self.children.get_mut(&element) {
            Some(existing) => existing.union_with(&child),
            None => {
                self.children.insert(element, child);
            }
        }
    }

    /// Adds every path of `other`.
    pub fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (element, child) in &other.children {
            if child.is_empty() {
                continue;
            }
            match self.children.get_mut(element) {
                Some(existing) => existing.union_with(child),
                None => {
                    self.children.insert(element.clone(), child.clone());
                }
            }
        }
    }

    /// The paths of `self` that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            out.insert_child(element.clone(), rest);
        }
        out
    }

    /// The paths in both `self` and `other`.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                out.insert_child(element.clone(), child.intersection(theirs));
            }
        }
        out
    }

    /// The subtree below `element`, if any path goes through it.
    pub(crate) fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element).filter(|c| !c.is_empty())
    }

    /// Removes the subtree below `element`.
    pub(crate) fn remove_child(&mut self, element: &str) {
        self.children.remove(element);
    }

    /// Every path of the set, as lists of elements, in set order (parents before children).
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set, e.g.
    /// `{"f:spec":{"f:replicas":{}}}`.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            if !child.is_empty() {
                map.insert(element.clone(), child.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    /// Reads `FieldsV1` JSON. `k:` and `v:` elements are re-encoded canonically (keys sorted),
    /// so sets read from any writer compare equal to the ones computed here. `None` when the
    /// value is not a JSON object of objects.
    pub fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        Self::decode(value, 0).map(|mut set| {
            set.member = false;
            set
        })
    }

    fn decode(value: &Value, depth: usize) -> Option<FieldSet> {
        // serde_json refuses nesting deeper than 128 when parsing; values built in memory can be
        // deeper, and the recursion must stay bounded.
        if depth > 512 {
            return None;
        }
        let map = value.as_object()?;
        let mut set = FieldSet {
            member: map.is_empty(),
            children: BTreeMap::new(),
        };
        for (element, child) in map {
            if element == "." {
                set.member = true;
                continue;
            }
            let child = Self::decode(child, depth + 1)?;
            set.insert_child(canonical_element(element), child);
        }
        Some(set)
    }
}

/// Re-encodes the JSON of a `k:` or `v:` element canonically; other elements are kept.
fn canonical_element(element: &str) -> String {
    for prefix in ["k:", "v:"] {
        if let Some(json) = element.strip_prefix(prefix)
            && let Ok(value) = serde_json::from_str::<Value>(json)
        {
            return format!("{prefix}{}", canonical_json(&value));
        }
    }
    element.to_owned()
}

/// JSON with object keys sorted and no whitespace: the spelling of `k:` and `v:` elements.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A path in kube's notation: `.spec.replicas`,
/// `.spec.template.spec.containers[name="web"].image`, `.metadata.finalizers[="a"]`.
pub fn path_string(elements: &[String]) -> String {
    let mut out = String::new();
    for element in elements {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(json) = element.strip_prefix("k:") {
            match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(map)) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('[');
                    for (i, key) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let shown = map.get(key).map(value_string).unwrap_or_default();
                        let _ = write!(out, "{key}={shown}");
                    }
                    out.push(']');
                }
                _ => {
                    let _ = write!(out, "[{json}]");
                }
            }
        } else if let Some(json) = element.strip_prefix("v:") {
            let shown = serde_json::from_str::<Value>(json)
                .map(|v| value_string(&v))
                .unwrap_or_else(|_| json.to_owned());
            let _ = write!(out, "[={shown}]");
        } else if let Some(index) = element.strip_prefix("i:") {
            let _ = write!(out, "[{index}]");
        } else {
            out.push('.');
            out.push_str(element);
        }
    }
    out
}

/// A value as structured-merge-diff prints it inside a path: strings quoted, the rest as JSON.
fn value_string(value: &Value) -> String {
    match value {
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => canonical_json(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_v1_round_trips_and_canonicalises_keys() {
        let encoded = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {"k:{\"protocol\":\"TCP\", \"port\":80}": {".": {}, "f:port": {}}}}
        });
        let set = FieldSet::from_fields_v1(&encoded).expect("decodes");
        let again = set.to_fields_v1();
        assert_eq!(
            again,
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}}
            })
        );
        assert_eq!(set.len(), 4);
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_none());
        assert!(FieldSet::from_fields_v1(&json!([])).is_none());
        assert!(
            FieldSet::from_fields_v1(&json!({}))
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn set_algebra() {
        let a = FieldSet::from_fields_v1(&json!({"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}}))
            .expect("a");
        let b = FieldSet::from_fields_v1(&json!({"f:b": {"f:c": {}}, "f:e": {}})).expect("b");
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:a": {}, "f:b": {"f:d": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:b": {"f:c": {}}})
        );
        let mut u = a.clone();
        u.union_with(&b);
        assert_eq!(u.len(), 4);
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn paths_print_like_kube() {
        let cases: &[(&[&str], &str)] = &[
            (&["f:spec", "f:replicas"], ".spec.replicas"),
            (
                &["f:spec", "f:containers", "k:{\"name\":\"web\"}", "f:image"],
                ".spec.containers[name=\"web\"].image",
            ),
            (
                &["f:ports", "k:{\"port\":80,\"protocol\":\"TCP\"}"],
                ".ports[port=80,protocol=\"TCP\"]",
            ),
            (
                &["f:metadata", "f:finalizers", "v:\"x\""],
                ".metadata.finalizers[=\"x\"]",
            ),
            (&["f:args", "i:2"], ".args[2]"),
        ];
        for (elements, want) in cases {
            let elements: Vec<String> = elements.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(path_string(&elements), *want);
        }
    }
}

//! The walks over values that apply is built from: the field set of a value, the comparison of
//! two values (added, modified and removed paths), the merge of a configuration into a live
//! object, and the removal of paths from an object.
//!
//! Every walk is bounded by the depth of its input and never panics: values that do not fit
//! their shape (a string where a list was expected, list items that cannot be named) are treated
//! as atomic.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use crate::fieldset::{FieldSet, path_string};
use crate::schema::{Schema, Shape, item_element};

/// Nesting deeper than this is owned as a leaf (serde_json parses at most 128 levels).
const MAX_DEPTH: usize = 256;

/// The paths that differ between two values.
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Added or modified paths.
    pub(crate) fn changed(&self) -> FieldSet {
        let mut changed = self.added.clone();
        changed.union_with(&self.modified);
        changed
    }

    fn attach(&mut self, element: &str, child: Comparison) {
        self.added.insert_child(element.to_owned(), child.added);
        self.modified
            .insert_child(element.to_owned(), child.modified);
        self.removed.insert_child(element.to_owned(), child.removed);
    }
}

impl Schema<'_> {
    /// The field set of `value`. With `strict`, list items that cannot be named and duplicate
    /// items are errors (for apply configurations); otherwise they are skipped.
    pub(crate) fn field_set(
        &self,
        value: &Value,
        shape: &Shape,
        strict: bool,
        path: &mut Vec<String>,
    ) -> Result<FieldSet, String> {
        if path.len() > MAX_DEPTH || !shape.granular_for(value) {
            return Ok(FieldSet::leaf());
        }
        let mut set = FieldSet::default();
        match value {
            Value::Object(map) => {
                for (name, child) in map {
                    let child_shape = self.child(shape, name, child);
                    let element = format!("f:{name}");
                    path.push(element.clone());
                    let mut child_set = self.field_set(child, &child_shape, strict, path)?;
                    path.pop();
                    if child.is_null() || !self.is_declared(shape, name) {
                        child_set.member = true;
                    }
                    set.insert_child(element, child_set);
                }
            }
            Value::Array(items) => {
                let mut seen = HashSet::new();
                for item in items {
                    let Some(element) = item_element(shape, item) else {
                        if strict {
                            return Err(format!(
                                "{}: list item {} cannot be identified by {}",
                                shown(path),
                                short(item),
                                describe_keys(shape)
                            ));
                        }
                        continue;
                    };
                    if !seen.insert(element.clone()) {
                        if strict {
                            path.push(element);
                            let message = format!("{}: duplicate entries", shown(path));
                            path.pop();
                            return Err(message);
                        }
                        continue;
                    }
                    let item_shape = self.item(shape, item);
                    path.push(element.clone());
                    let mut item_set = self.field_set(item, &item_shape, strict, path)?;
                    path.pop();
                    item_set.member = true;
                    set.insert_child(element, item_set);
                }
            }
            _ => return Ok(FieldSet::leaf()),
        }
        Ok(set)
    }

    /// Lenient field set (unnameable items skipped).
    pub(crate) fn field_set_lenient(&self, value: &Value, shape: &Shape) -> FieldSet {
        self.field_set(value, shape, false, &mut Vec::new())
            .unwrap_or_default()
    }

    /// What changed from `lhs` to `rhs` (either may be absent).
    pub(crate) fn compare(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        shape: &Shape,
        depth: usize,
    ) -> Comparison {
        let mut out = Comparison::default();
        if lhs.is_none() && rhs.is_none() {
            return out;
        }
        // Both sides must be containers of the shape's kind, and not both empty maps (those are
        // compared as leaves, which keeps `{}` apart from an absent field).
        let fits = |v: Option<&Value>| v.is_none_or(|v| shape.fits(v));
        let all_empty = [lhs, rhs]
            .into_iter()
            .flatten()
            .all(|v| v.as_object().is_some_and(Map::is_empty));
        if depth > MAX_DEPTH || !fits(lhs) || !fits(rhs) || all_empty {
            match (lhs, rhs) {
                (None, Some(_)) => out.added.member = true,
                (Some(_), None) => out.removed.member = true,
                (Some(a), Some(b)) if a != b => out.modified.member = true,
                _ => {}
            }
            if lhs != rhs {
                if let Some(l) = lhs.filter(|l| shape.granular_for(l)) {
                    out.removed.union_with(&self.field_set_lenient(l, shape));
                }
                if let Some(r) = rhs.filter(|r| shape.granular_for(r)) {
                    out.added.union_with(&self.field_set_lenient(r, shape));
                }
            }
            return out;
        }
        match (lhs, rhs) {
            (None, Some(_)) if !shape.is_typed_struct() => out.added.member = true,
            (Some(_), None) => out.removed.member = true,
            _ => {}
        }
        let is_object = lhs.or(rhs).is_some_and(Value::is_object);
        if is_object {
            let empty = Map::new();
            let l = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let names = l.keys().chain(r.keys().filter(|k| !l.contains_key(*k)));
            for name in names {
                let (lv, rv) = (l.get(name), r.get(name));
                let Some(sample) = rv.or(lv) else { continue };
                let mut child_shape = self.child(shape, name, sample);
                if let (Some(a), Some(b)) = (lv, rv)
                    && kind(a) != kind(b)
                {
                    child_shape = Shape::Atomic;
                }
                let child = self.compare(lv, rv, &child_shape, depth + 1);
                out.attach(&format!("f:{name}"), child);
            }
        } else {
            let l = keyed(shape, lhs);
            let r = keyed(shape, rhs);
            let elements = l.keys().chain(r.keys().filter(|k| !l.contains_key(*k)));
            for element in elements {
                let (lv, rv) = (l.get(element).copied(), r.get(element).copied());
                let Some(sample) = rv.or(lv) else { continue };
                let item_shape = self.item(shape, sample);
                let mut child = self.compare(lv, rv, &item_shape, depth + 1);
                if lv.is_none() {
                    child.added.member = true;
                }
                if rv.is_none() {
                    child.removed.member = true;
                }
                out.attach(element, child);
            }
        }
        out
    }

    /// `rhs` merged into `lhs`: maps by key, associative lists by item key, sets as unions;
    /// everything else is replaced by `rhs`.
    pub(crate) fn merge(&self, lhs: &Value, rhs: &Value, shape: &Shape, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return rhs.clone();
        }
        match (lhs, rhs) {
            (Value::Object(l), Value::Object(r))
                if matches!(shape, Shape::Root(_) | Shape::Struct(_) | Shape::Map(_)) =>
            {
                let mut out = l.clone();
                for (name, rv) in r {
                    let merged = match l.get(name) {
                        Some(lv) if kind(lv) == kind(rv) => {
                            let child_shape = self.child(shape, name, rv);
                            self.merge(lv, rv, &child_shape, depth + 1)
                        }
                        _ => rv.clone(),
                    };
                    out.insert(name.clone(), merged);
                }
                Value::Object(out)
            }
            (Value::Array(l), Value::Array(r))
                if matches!(shape, Shape::Assoc { .. } | Shape::Set) =>
            {
                let mut out = l.clone();
                let mut positions = BTreeMap::new();
                for (i, item) in l.iter().enumerate() {
                    if let Some(element) = item_element(shape, item) {
                        positions.entry(element).or_insert(i);
                    }
                }
                for item in r {
                    let position = item_element(shape, item).and_then(|e| positions.get(&e));
                    match position.copied() {
                        Some(i) => {
                            if let Some(existing) = out.get(i) {
                                let item_shape = self.item(shape, item);
                                let merged = if kind(existing) == kind(item) {
                                    self.merge(existing, item, &item_shape, depth + 1)
                                } else {
                                    item.clone()
                                };
                                out[i] = merged;
                            }
                        }
                        None => {
                            if let Some(element) = item_element(shape, item) {
                                positions.insert(element, out.len());
                            }
                            out.push(item.clone());
                        }
                    }
                }
                Value::Array(out)
            }
            _ => rhs.clone(),
        }
    }

    /// Removes from `value` the paths of `remove` that nobody in `keep` owns, below or at them.
    /// Key fields of list items that stay are kept. Maps and lists emptied by the removal go
    /// too.
    pub(crate) fn prune(
        &self,
        value: &mut Value,
        remove: &FieldSet,
        keep: Option<&FieldSet>,
        shape: &Shape,
        depth: usize,
    ) {
        if depth > MAX_DEPTH || remove.children.is_empty() {
            return;
        }
        let empty = FieldSet::default();
        let keep = keep.unwrap_or(&empty);
        match value {
            Value::Object(map) => {
                for (element, sub_remove) in &remove.children {
                    let Some(name) = element.strip_prefix("f:") else {
                        continue;
                    };
                    let sub_keep = keep.child(element);
                    let Some(child) = map.get_mut(name) else {
                        continue;
                    };
                    if sub_remove.member && sub_keep.is_none() {
                        map.remove(name);
                        continue;
                    }
                    let child_shape = self.child(shape, name, child);
                    let was_empty = is_empty_container(child);
                    self.prune(child, sub_remove, sub_keep, &child_shape, depth + 1);
                    if !was_empty && is_empty_container(child) {
                        map.remove(name);
                    }
                }
            }
            Value::Array(items) => {
                let mut drop = vec![false; items.len()];
                for (i, item) in items.iter_mut().enumerate() {
                    let Some(element) = item_element(shape, item) else {
                        continue;
                    };
                    let Some(sub_remove) = remove.children.get(&element) else {
                        continue;
                    };
                    let sub_keep = keep.child(&element);
                    if sub_remove.member && sub_keep.is_none() {
                        drop[i] = true;
                        continue;
                    }
                    // The item stays: its key fields must too.
                    let mut sub_remove = sub_remove.clone();
                    if let Shape::Assoc { keys, .. } = shape {
                        for key in keys {
                            sub_remove.remove_child(&format!("f:{key}"));
                        }
                    }
                    let item_shape = self.item(shape, item);
                    self.prune(item, &sub_remove, sub_keep, &item_shape, depth + 1);
                }
                let mut index = 0;
                items.retain(|_| {
                    let keep_item = !drop.get(index).copied().unwrap_or(false);
                    index += 1;
                    keep_item
                });
            }
            _ => {}
        }
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The JSON kind of a value, to tell a replaced type from a merged one.
fn kind(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// The nameable items of a list, by element (the first of duplicates wins).
fn keyed<'v>(shape: &Shape, list: Option<&'v Value>) -> BTreeMap<String, &'v Value> {
    let mut out = BTreeMap::new();
    for item in list.and_then(Value::as_array).into_iter().flatten() {
        if let Some(element) = item_element(shape, item) {
            out.entry(element).or_insert(item);
        }
    }
    out
}

fn shown(path: &[String]) -> String {
    if path.is_empty() {
        "<root>".to_owned()
    } else {
        path_string(path)
    }
}

fn describe_keys(shape: &Shape) -> String {
    match shape {
        Shape::Assoc { keys, .. } => format!("its key fields {keys:?}"),
        _ => "value (set lists hold scalars)".to_owned(),
    }
}

/// A value for an error message, cut short.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

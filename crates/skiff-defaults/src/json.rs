//! Small helpers over `serde_json` maps that encode Go's notion of "unset".
//!
//! A Go field is unset when its JSON key is missing or `null`; for non-pointer fields the zero
//! value (`""`, `0`, an empty list or map) counts as unset too, because Go cannot tell it apart
//! from a missing key. A value of the wrong JSON type is never unset: it is left alone.

use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

/// The child object under `key`, if present and an object.
pub(crate) fn child<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key)?.as_object_mut()
}

/// The child object under `key`, inserting `{}` when it is missing or `null` (a Go struct or a
/// pointer being allocated); `None` when the value has another type.
pub(crate) fn child_or_empty<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Missing or `null`: an unset pointer.
pub(crate) fn is_unset(m: &Obj, key: &str) -> bool {
    matches!(m.get(key), None | Some(Value::Null))
}

/// Unset pointer field: missing or `null`.
pub(crate) fn default_ptr(m: &mut Obj, key: &str, value: Value) {
    if is_unset(m, key) {
        m.insert(key.to_owned(), value);
    }
}

/// Unset string field: missing, `null` or `""`.
pub(crate) fn default_str(m: &mut Obj, key: &str, value: &str) {
    if is_unset(m, key) || m.get(key).and_then(Value::as_str) == Some("") {
        m.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// Unset integer field: missing, `null` or `0`.
pub(crate) fn default_int(m: &mut Obj, key: &str, value: i64) {
    if is_unset(m, key) || is_zero(m.get(key)) {
        m.insert(key.to_owned(), Value::from(value));
    }
}

/// Whether a value is the number zero.
pub(crate) fn is_zero(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64) == Some(0.0)
}

/// Unset list or map field: missing, `null`, `[]` or `{}`.
pub(crate) fn is_empty(m: &Obj, key: &str) -> bool {
    match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// The string under `key`, or `""` when missing, `null` or not a string.
pub(crate) fn str_of<'a>(m: &'a Obj, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Calls `f` on every object in the list under `key`; other items are skipped.
pub(crate) fn each(m: &mut Obj, key: &str, mut f: impl FnMut(&mut Obj)) {
    if let Some(items) = m.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// Fills the keys of `zeros` that `m` lacks (or holds as `null`): Go writes these struct fields
/// even when they are zero because their JSON tags lack `omitempty`.
pub(crate) fn fill_zeros(m: &mut Obj, zeros: &[(&str, Value)]) {
    for (key, value) in zeros {
        default_ptr(m, key, value.clone());
    }
}

//! Forgiving reads from a `serde_json::Value`: dotted paths, with a default for whatever is
//! missing or of the wrong type. The printers must never panic on a malformed object, so
//! every accessor here returns a value instead of an error.

use serde_json::{Map, Value};

/// Follows a dotted path (`status.podIPs.0.ip`); numeric segments index arrays.
pub(crate) fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    path.split('.').try_fold(v, |cur, seg| match cur {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// True when the path leads to something other than `null`.
pub(crate) fn is_set(v: &Value, path: &str) -> bool {
    at(v, path).is_some_and(|x| !x.is_null())
}

/// The string at `path`, `""` when missing or not a string.
pub(crate) fn str_at<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The string at `path`, or `default` when missing, not a string or empty.
pub(crate) fn str_or<'a>(v: &'a Value, path: &str, default: &'a str) -> &'a str {
    match str_at(v, path) {
        "" => default,
        s => s,
    }
}

/// The string at `path` if present (even empty), `None` for missing/null/non-string.
pub(crate) fn opt_str<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// An integer read leniently: integers, floats (truncated) and numeric strings.
pub(crate) fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The integer at `path`, `None` when missing or not a number.
pub(crate) fn opt_int(v: &Value, path: &str) -> Option<i64> {
    at(v, path).and_then(as_int)
}

/// The integer at `path`, 0 when missing (Go's zero value).
pub(crate) fn int_at(v: &Value, path: &str) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path`, `None` when missing or not a boolean.
pub(crate) fn opt_bool(v: &Value, path: &str) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

/// The array at `path`, empty when missing or not an array.
pub(crate) fn arr_at<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, `None` when missing or not an object.
pub(crate) fn obj_at<'a>(v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// Number of entries of the array or object at `path` (0 otherwise).
pub(crate) fn len_at(v: &Value, path: &str) -> i64 {
    let n = match at(v, path) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A metadata annotation's value.
pub(crate) fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    obj_at(v, "metadata.annotations")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
}

/// The first entry of the `conditions` array at `path` whose `type` is `ty`.
pub(crate) fn condition<'a>(v: &'a Value, path: &str, ty: &str) -> Option<&'a Value> {
    arr_at(v, path).iter().find(|c| str_at(c, "type") == ty)
}

/// True when the first condition of type `ty` has status `True`.
pub(crate) fn condition_true(v: &Value, path: &str, ty: &str) -> bool {
    condition(v, path, ty).is_some_and(|c| str_at(c, "status") == "True")
}

/// A scalar rendered as text: strings as they are, numbers and booleans in JSON form,
/// `None` for null, arrays and objects.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

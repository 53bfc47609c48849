//! A decoded message as Kubernetes' JSON encoding writes it.
//!
//! Fields are written under their JSON names (the proto name unless `fields.tsv` says
//! otherwise). Messages and lists follow presence: a message on the wire is an object (Go
//! always encodes non-pointer structs), empty lists and maps are omitted. Scalars on the wire
//! are written unless zero, where `fields.tsv` decides. 64-bit integers are JSON numbers and
//! `bytes` base64 strings, as Go writes them. Types with their own JSON form in Go are mapped
//! here: `Time`/`MicroTime` (RFC 3339, `null` when zero), `Duration`, `IntOrString`,
//! `Quantity`, `RawExtension`/`FieldsV1`/apiextensions `JSON` (the embedded JSON, or an
//! embedded protobuf object), `Verbs`/`ExtraValue` (string arrays), and the apiextensions
//! `JSONSchemaPropsOr{Array,Bool,StringArray}` unions.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, MapKey, ReflectMessage as _, Value};
use serde_json::{Map, Number, Value as Json};

use crate::{DecodeError, MAGIC, MAX_EMBEDDING, fields, time};

const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.";
const APIEXTENSIONS_V1: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.";
const APIEXTENSIONS_V1BETA1: &str =
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.";

/// `message` as JSON; `depth` counts the `RawExtension`s holding protobuf objects around it.
pub(crate) fn message(message: &DynamicMessage, depth: usize) -> Result<Json, DecodeError> {
    let descriptor = message.descriptor();
    let name = descriptor.full_name();
    if let Some(local) = name.strip_prefix(META) {
        match local {
            "Time" => return timestamp(message, false),
            "MicroTime" => return timestamp(message, true),
            "Duration" => return Ok(time::go_duration(int(message, "duration")).into()),
            "FieldsV1" => return embedded(bytes(message, "Raw"), depth),
            "Verbs" => return strings(message, "items", depth),
            _ => {}
        }
    }
    let apiextensions = name
        .strip_prefix(APIEXTENSIONS_V1)
        .or_else(|| name.strip_prefix(APIEXTENSIONS_V1BETA1));
    match (name, apiextensions) {
        ("k8s.io.apimachinery.pkg.util.intstr.IntOrString", _) => {
            return Ok(if int(message, "type") == 1 {
                string(message, "strVal").into()
            } else {
                int(message, "intVal").into()
            });
        }
        ("k8s.io.apimachinery.pkg.api.resource.Quantity", _) => {
            let quantity = string(message, "string");
            return Ok(if quantity.is_empty() {
                "0".into()
            } else {
                quantity.into()
            });
        }
        ("k8s.io.apimachinery.pkg.runtime.RawExtension", _) | (_, Some("JSON")) => {
            return embedded(bytes(message, "raw"), depth);
        }
        (_, Some("JSONSchemaPropsOrArray")) => {
            return match field(message, "jSONSchemas", depth)? {
                Some(list) => Ok(list),
                None => Ok(field(message, "schema", depth)?.unwrap_or(Json::Null)),
            };
        }
        (_, Some("JSONSchemaPropsOrBool")) => {
            return match field(message, "schema", depth)? {
                Some(schema) => Ok(schema),
                None => Ok(Json::Bool(matches!(
                    message.get_field_by_name("allows").as_deref(),
                    Some(Value::Bool(true))
                ))),
            };
        }
        (_, Some("JSONSchemaPropsOrStringArray")) => {
            return match field(message, "property", depth)? {
                Some(list) => Ok(list),
                None => Ok(field(message, "schema", depth)?.unwrap_or(Json::Null)),
            };
        }
        _ if name.ends_with(".ExtraValue") => return strings(message, "items", depth),
        _ => {}
    }
    let mut object = Map::new();
    for (field, value) in message.fields() {
        let facts = fields::lookup(name, field.name());
        let json_name = facts.map_or(field.name(), |f| f.json);
        let keep_zero = facts.is_some_and(|f| f.keep_zero);
        if let Some(json) = field_value(value, keep_zero, depth)? {
            object.insert(json_name.to_owned(), json);
        }
    }
    Ok(Json::Object(object))
}

/// The JSON of the field named `name`, if it is written.
fn field(message: &DynamicMessage, name: &str, depth: usize) -> Result<Option<Json>, DecodeError> {
    let Some(descriptor) = message.descriptor().get_field_by_name(name) else {
        return Ok(None);
    };
    if !message.has_field(&descriptor) {
        return Ok(None);
    }
    field_value(&message.get_field(&descriptor), false, depth)
}

/// A field's value as JSON, or `None` when Go's JSON would leave the field out.
fn field_value(value: &Value, keep_zero: bool, depth: usize) -> Result<Option<Json>, DecodeError> {
    match value {
        Value::List(items) if items.is_empty() => Ok(None),
        Value::Map(entries) if entries.is_empty() => Ok(None),
        Value::Message(_) | Value::List(_) | Value::Map(_) => Ok(Some(json(value, depth)?)),
        scalar if !keep_zero && is_zero(scalar) => Ok(None),
        scalar => Ok(Some(json(scalar, depth)?)),
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::I32(n) | Value::EnumNumber(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::Message(_) | Value::List(_) | Value::Map(_) => false,
    }
}

fn json(value: &Value, depth: usize) -> Result<Json, DecodeError> {
    Ok(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) | Value::EnumNumber(n) => (*n).into(),
        Value::I64(n) => (*n).into(),
        Value::U32(n) => (*n).into(),
        Value::U64(n) => (*n).into(),
        Value::F32(n) => Number::from_f64(f64::from(*n)).map_or(Json::Null, Json::Number),
        Value::F64(n) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b).into(),
        Value::Message(m) => message(m, depth)?,
        Value::List(items) => Json::Array(
            items
                .iter()
                .map(|item| json(item, depth))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let key = match key {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                };
                object.insert(key, json(value, depth)?);
            }
            Json::Object(object)
        }
    })
}

/// A `Time` or `MicroTime`: `null` when empty on the wire (Go's zero time), otherwise RFC 3339
/// in UTC; `Time` drops the nanoseconds, `MicroTime` truncates them to microseconds.
fn timestamp(message: &DynamicMessage, micro: bool) -> Result<Json, DecodeError> {
    if message.fields().next().is_none() {
        return Ok(Json::Null);
    }
    let seconds = int(message, "seconds");
    let text = if micro {
        let nanos = int(message, "nanos");
        let nanos = nanos - nanos % 1_000;
        seconds
            .checked_add(nanos.div_euclid(1_000_000_000))
            .and_then(|s| {
                let micros = u32::try_from(nanos.rem_euclid(1_000_000_000) / 1_000).ok()?;
                time::rfc3339(s, Some(micros))
            })
    } else {
        time::rfc3339(seconds, None)
    };
    text.map(Json::String)
        .ok_or_else(|| DecodeError::Malformed(format!("time {seconds} is out of range")))
}

/// Raw bytes holding JSON (or, in a `RawExtension`, a protobuf object): the value itself,
/// `null` when empty.
fn embedded(raw: Vec<u8>, depth: usize) -> Result<Json, DecodeError> {
    if raw.is_empty() {
        return Ok(Json::Null);
    }
    if raw.starts_with(MAGIC) {
        if depth >= MAX_EMBEDDING {
            return Err(DecodeError::Malformed(
                "embedded objects nest too deeply".into(),
            ));
        }
        return crate::decode_at(&raw, depth + 1);
    }
    serde_json::from_slice(&raw).map_err(|e| DecodeError::Malformed(format!("embedded json: {e}")))
}

/// A wrapper of one repeated string field, written as the array itself.
fn strings(message: &DynamicMessage, name: &str, depth: usize) -> Result<Json, DecodeError> {
    Ok(field(message, name, depth)?.unwrap_or_else(|| Json::Array(Vec::new())))
}

fn int(message: &DynamicMessage, name: &str) -> i64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::I64(n)) => *n,
        Some(Value::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

fn string(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn bytes(message: &DynamicMessage, name: &str) -> Vec<u8> {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::Bytes(b)) => b.to_vec(),
        _ => Vec::new(),
    }
}

//! Strict field validation: the fields of an object its schema does not know.
//!
//! This mirrors what kube-apiserver reports for `fieldValidation=Strict` (and warns about for
//! `Warn`): `unknown field "spec.containers[0].imagePullPolcy"`. Only unknown fields are
//! reported; type mismatches are the decoder's business. Values typed as free-form accept
//! anything below them: `x-kubernetes-preserve-unknown-fields` (known properties are still
//! checked), objects without `properties` (`RawExtension`, `JSON`, `FieldsV1`), maps
//! (`additionalProperties`, whose values are checked against it) and schemas without a type
//! (`IntOrString`, `Quantity`). `x-kubernetes-embedded-resource` objects accept `apiVersion`,
//! `kind` and a `metadata` checked as `ObjectMeta`.

use serde_json::Value;

use crate::catalog::{Catalog, ref_name};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// How deep references are followed before giving up (guards against reference cycles that
/// consume no input, which a well-formed catalog never has).
const MAX_DEPTH: usize = 256;

impl Catalog {
    /// Paths of the fields of `object` that the schema of `definition` does not know,
    /// formatted like kube: `unknown field "spec.containers[0].imagePullPolcy"`. An unknown
    /// definition knows every field.
    pub fn validate_unknown_fields(&self, definition: &str, object: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(schema) = self.defs.get(definition) {
            let mut path = String::new();
            self.walk(schema, object, &mut path, &mut out, 0);
        }
        out
    }

    /// Follows `schema`'s reference, if any, to the definition it names.
    fn resolve<'a>(&'a self, schema: &'a Value) -> Option<&'a Value> {
        match ref_name(schema) {
            Some(name) => self.defs.get(name),
            None if schema.get("$ref").is_some_and(Value::is_string) => None,
            None => Some(schema),
        }
    }

    fn walk(
        &self,
        schema: &Value,
        value: &Value,
        path: &mut String,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let Some(target) = self.resolve(schema) else {
            return;
        };
        // Extensions set next to a reference (as on properties) apply as well.
        let flag = |key: &str| {
            [schema, target]
                .iter()
                .any(|s| s.get(key).and_then(Value::as_bool) == Some(true))
        };
        match value {
            Value::Object(fields) => {
                let preserve = flag("x-kubernetes-preserve-unknown-fields");
                let embedded = flag("x-kubernetes-embedded-resource");
                let props = target.get("properties").and_then(Value::as_object);
                let additional = target.get("additionalProperties");
                if props.is_none() && !additional.is_some_and(Value::is_object) && !embedded {
                    return; // free-form object
                }
                for (key, child) in fields {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    if let Some(prop) = props.and_then(|p| p.get(key)) {
                        self.walk(prop, child, path, out, depth + 1);
                    } else if embedded && (key == "apiVersion" || key == "kind") {
                        // accepted
                    } else if embedded && key == "metadata" {
                        if let Some(meta) = self.defs.get(OBJECT_META) {
                            self.walk(meta, child, path, out, depth + 1);
                        }
                    } else if let Some(add) = additional.filter(|a| a.is_object()) {
                        self.walk(add, child, path, out, depth + 1);
                    } else if !preserve && additional != Some(&Value::Bool(true)) {
                        out.push(format!("unknown field \"{path}\""));
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                let Some(item_schema) = target.get("items").filter(|i| i.is_object()) else {
                    return;
                };
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.walk(item_schema, child, path, out, depth + 1);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

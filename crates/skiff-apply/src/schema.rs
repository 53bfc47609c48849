//! What apply needs to know about the type of each value: whether a map is merged key by key
//! or owned as a whole, whether a list is associative (and by which keys), a set or atomic.
//!
//! The facts come from three places, in this order: the list and map types of the bundled
//! strategy table (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-map-type`, shared with skiff-patch), the caller's [`Strategies`] (patch
//! strategy and merge key, and the type graph), and a short list of definitions upstream marks
//! `+structType=atomic`. Unknown definitions (custom resources) get the defaults: maps are
//! granular, lists atomic.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;
use skiff_patch::{Child, ListStrategy, Strategies};

/// The definition of every object's `metadata`.
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Definitions whose values upstream owns as a whole (`+structType=atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.autoscaling.v2.CrossVersionObjectReference",
    "io.k8s.api.admissionregistration.v1.ParamKind",
];

/// The bundled table: `definition, field, patch_strategy, patch_merge_key, list_type,
/// list_map_keys, map_type`.
const FACTS_TSV: &str = skiff_patch::PATCH_STRATEGIES_TSV;

/// List and map type facts of one field.
#[derive(Debug, Default)]
struct Facts {
    list_type: String,
    list_map_keys: Vec<String>,
    map_type: String,
}

fn facts() -> &'static HashMap<(String, String), Facts> {
    static FACTS: OnceLock<HashMap<(String, String), Facts>> = OnceLock::new();
    FACTS.get_or_init(|| {
        let mut table = HashMap::new();
        for line in FACTS_TSV.lines() {
            if line.starts_with('#') || line.starts_with("definition\t") {
                continue;
            }
            let columns: Vec<&str> = line.split('\t').map(str::trim).collect();
            let column = |i: usize| columns.get(i).copied().unwrap_or_default();
            if column(0).is_empty() || column(1).is_empty() {
                continue;
            }
            let facts = Facts {
                list_type: column(4).to_owned(),
                list_map_keys: column(5)
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect(),
                map_type: column(6).to_owned(),
            };
            table.insert((column(0).to_owned(), column(1).to_owned()), facts);
        }
        table
    })
}

fn lookup_facts(definition: &str, field: &str) -> Option<&'static Facts> {
    facts().get(&(definition.to_owned(), field.to_owned()))
}

/// How a value is merged and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A scalar: owned as a leaf.
    Scalar,
    /// Replaced and owned as a whole: atomic lists and maps, lists without a strategy.
    Atomic,
    /// The top-level object, of this definition when known.
    Root(Option<String>),
    /// An object whose fields are merged one by one, of this definition when known.
    Struct(Option<String>),
    /// A map whose values are of this definition.
    Map(Option<String>),
    /// An associative list: items are objects named by their `keys`.
    Assoc {
        /// The key fields (`x-kubernetes-list-map-keys`, or the merge key).
        keys: Vec<String>,
        /// The definition of the items.
        item: Option<String>,
    },
    /// A list of distinct scalars merged as a set.
    Set,
}

impl Shape {
    /// Whether values of this shape are merged member by member (given a value of the right
    /// kind).
    pub(crate) fn granular_for(&self, value: &Value) -> bool {
        match self {
            Shape::Root(_) | Shape::Struct(_) | Shape::Map(_) => {
                value.as_object().is_some_and(|m| !m.is_empty())
            }
            Shape::Assoc { .. } | Shape::Set => value.is_array(),
            Shape::Scalar | Shape::Atomic => false,
        }
    }

    /// Whether `value` is a container of this shape's kind (an object for structs and maps, an
    /// array for associative and set lists).
    pub(crate) fn fits(&self, value: &Value) -> bool {
        match self {
            Shape::Root(_) | Shape::Struct(_) | Shape::Map(_) => value.is_object(),
            Shape::Assoc { .. } | Shape::Set => value.is_array(),
            Shape::Scalar | Shape::Atomic => false,
        }
    }

    /// Whether this shape is a struct of a known definition (such nodes are not owned as a
    /// whole when they appear, like a Go struct field that is always present).
    pub(crate) fn is_typed_struct(&self) -> bool {
        matches!(self, Shape::Struct(Some(_)) | Shape::Root(_))
    }
}

/// Resolves shapes through the caller's strategies.
pub(crate) struct Schema<'a> {
    pub(crate) strategies: &'a dyn Strategies,
}

impl Schema<'_> {
    /// The shape of the value of `name` inside a value of shape `parent`, given a sample value
    /// (the value's kind decides between list, map and scalar).
    pub(crate) fn child(&self, parent: &Shape, name: &str, sample: &Value) -> Shape {
        match parent {
            Shape::Root(definition) | Shape::Struct(definition) => {
                let is_root = matches!(parent, Shape::Root(_));
                match definition {
                    Some(definition) => self.typed_field(definition, name, sample, is_root),
                    None if is_root && name == "metadata" && sample.is_object() => {
                        Shape::Struct(Some(OBJECT_META.to_owned()))
                    }
                    None => untyped(sample),
                }
            }
            Shape::Map(definition) => match sample {
                Value::Object(_) => struct_of(definition.as_deref()),
                Value::Array(_) => Shape::Atomic,
                _ => Shape::Scalar,
            },
            Shape::Scalar | Shape::Atomic | Shape::Assoc { .. } | Shape::Set => Shape::Atomic,
        }
    }

    fn typed_field(&self, definition: &str, name: &str, sample: &Value, is_root: bool) -> Shape {
        let strategy = self.strategies.field(definition, name);
        let facts = lookup_facts(definition, name);
        let child = strategy.as_ref().and_then(|s| s.child.clone());
        match sample {
            Value::Array(_) => {
                let item = match &child {
                    Some(Child::Type(d)) => Some(d.clone()),
                    _ => None,
                };
                let list_type = facts.map(|f| f.list_type.as_str()).unwrap_or_default();
                let fact_keys = facts.map(|f| f.list_map_keys.clone()).unwrap_or_default();
                match list_type {
                    "map" if !fact_keys.is_empty() => {
                        return Shape::Assoc {
                            keys: fact_keys,
                            item,
                        };
                    }
                    "set" => return Shape::Set,
                    "atomic" => return Shape::Atomic,
                    _ => {}
                }
                match strategy.map(|s| s.list) {
                    Some(ListStrategy::Merge { key }) => Shape::Assoc {
                        keys: if fact_keys.is_empty() {
                            vec![key]
                        } else {
                            fact_keys
                        },
                        item,
                    },
                    Some(ListStrategy::MergePrimitives) => Shape::Set,
                    Some(ListStrategy::Replace) | None => Shape::Atomic,
                }
            }
            Value::Object(_) => {
                let atomic_map = facts.is_some_and(|f| f.map_type == "atomic")
                    || strategy.as_ref().is_some_and(|s| s.replace);
                if atomic_map {
                    return Shape::Atomic;
                }
                match child {
                    Some(Child::Type(d)) => struct_of(Some(&d)),
                    Some(Child::MapValues(d)) => Shape::Map(Some(d)),
                    None if is_root && name == "metadata" => {
                        Shape::Struct(Some(OBJECT_META.to_owned()))
                    }
                    None => Shape::Struct(None),
                }
            }
            _ => Shape::Scalar,
        }
    }

    /// The shape of the items of a list of shape `list`.
    pub(crate) fn item(&self, list: &Shape, sample: &Value) -> Shape {
        match list {
            Shape::Assoc { item, .. } if sample.is_object() => struct_of(item.as_deref()),
            Shape::Assoc { .. } => Shape::Atomic,
            _ => Shape::Scalar,
        }
    }

    /// Whether `name` is a declared field of `parent` (rather than a key of a map). Map keys
    /// whose values are objects or lists are owned as members themselves.
    pub(crate) fn is_declared(&self, parent: &Shape, name: &str) -> bool {
        match parent {
            Shape::Root(Some(d)) | Shape::Struct(Some(d)) => {
                self.strategies.field(d, name).is_some() || lookup_facts(d, name).is_some()
            }
            Shape::Root(None) | Shape::Struct(None) => true,
            _ => false,
        }
    }
}

fn struct_of(definition: Option<&str>) -> Shape {
    match definition {
        Some(d) if ATOMIC_STRUCTS.contains(&d) => Shape::Atomic,
        Some(d) => Shape::Struct(Some(d.to_owned())),
        None => Shape::Struct(None),
    }
}

/// Defaults for values with no known definition: maps granular, lists atomic.
fn untyped(sample: &Value) -> Shape {
    match sample {
        Value::Object(_) => Shape::Struct(None),
        Value::Array(_) => Shape::Atomic,
        _ => Shape::Scalar,
    }
}

/// The `k:`/`v:` element naming `item` in a list of shape `list`, or `None` when the item
/// cannot be named (not an object, no key field, an object in a set).
pub(crate) fn item_element(list: &Shape, item: &Value) -> Option<String> {
    match list {
        Shape::Assoc { keys, .. } => {
            let object = item.as_object()?;
            let mut key = serde_json::Map::new();
            for name in keys {
                match object.get(name) {
                    Some(value) if !value.is_null() => {
                        key.insert(name.clone(), value.clone());
                    }
                    // Upstream fills a missing key field from its schema default; `protocol`
                    // (ports) is the one key field of the built-in types with a default.
                    _ if name == "protocol" => {
                        key.insert(name.clone(), Value::String("TCP".to_owned()));
                    }
                    _ => {}
                }
            }
            let named = keys
                .iter()
                .any(|k| k != "protocol" && key.contains_key(k.as_str()));
            named.then(|| format!("k:{}", crate::fieldset::canonical_json(&Value::Object(key))))
        }
        Shape::Set => match item {
            Value::Object(_) | Value::Array(_) => None,
            scalar => Some(format!("v:{}", crate::fieldset::canonical_json(scalar))),
        },
        _ => None,
    }
}

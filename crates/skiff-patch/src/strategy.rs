//! Patch strategies: for each field of each OpenAPI definition, how a strategic merge patch
//! treats it (merge a list by key, union a list of scalars, replace, retain keys) and which
//! definition its value has. [`StrategyTable`] holds the bundled facts from
//! `data/patch-strategies.tsv` plus the type graph the caller adds; it reads no files.

use std::collections::HashMap;

use serde_json::Value;

/// What a strategic merge patch needs to know about the fields of a definition.
pub trait Strategies {
    /// The strategy of `field` in `definition` (an OpenAPI definition name such as
    /// `io.k8s.api.core.v1.PodSpec`), or `None` when nothing is known about it: maps then merge,
    /// lists are replaced and nothing below the field has a strategy.
    fn field(&self, definition: &str, field: &str) -> Option<FieldStrategy>;
}

/// How one field is patched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldStrategy {
    /// The definition of the field's value (of its items for a list, of its values for a map),
    /// so the patch can walk further down. `None`: unknown, nothing below has a strategy.
    pub child: Option<Child>,
    /// What happens to a list value.
    pub list: ListStrategy,
    /// `patchStrategy` contains `retainKeys` (e.g. volume sources, `DeploymentSpec.strategy`).
    /// A `$retainKeys` directive is honoured wherever it appears, as upstream does; this flag is
    /// informational.
    pub retain_keys: bool,
    /// `patchStrategy: replace`: an object value is replaced wholesale instead of merged (e.g.
    /// `PodDisruptionBudgetSpec.selector`).
    pub replace: bool,
}

/// What a strategic merge patch does to a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the original (atomic lists, and lists with no strategy).
    #[default]
    Replace,
    /// `patchStrategy: merge` with `patchMergeKey`: objects are matched by `key` and merged.
    Merge {
        /// The merge key, e.g. `name` for containers, `containerPort` for container ports.
        key: String,
    },
    /// `patchStrategy: merge` on a list of scalars (e.g. `finalizers`): the union of both lists.
    MergePrimitives,
}

/// The definition a field's value has, as read from a schema property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Child {
    /// The value (or each item of a list value) is of this definition: a `$ref`, or
    /// `items: {$ref}`.
    Type(String),
    /// The value is a map whose values are of this definition: `additionalProperties: {$ref}`.
    MapValues(String),
}

impl Child {
    /// Reads the definition a property schema refers to: `$ref`, `allOf`/`anyOf`/`oneOf` with a
    /// `$ref`, `items: {$ref}` or `additionalProperties: {$ref}`. The reference's last `/`
    /// segment is the definition name, so `#/definitions/...`, `#/components/schemas/...` and
    /// `#/$defs/...` all work.
    pub fn from_property_schema(property: &Value) -> Option<Child> {
        if let Some(name) = referenced_definition(property) {
            return Some(Child::Type(name));
        }
        if let Some(name) = property.get("items").and_then(referenced_definition) {
            return Some(Child::Type(name));
        }
        property
            .get("additionalProperties")
            .and_then(referenced_definition)
            .map(Child::MapValues)
    }
}

fn referenced_definition(schema: &Value) -> Option<String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return (!name.is_empty()).then(|| name.to_owned());
    }
    ["allOf", "anyOf", "oneOf"]
        .iter()
        .filter_map(|combinator| schema.get(combinator)?.as_array())
        .flatten()
        .find_map(|branch| {
            let reference = branch.get("$ref")?.as_str()?;
            let name = reference.rsplit('/').next().unwrap_or(reference);
            (!name.is_empty()).then(|| name.to_owned())
        })
}

/// A line of a strategy table that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("patch strategy table line {line}: {reason}")]
pub struct TableError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Field strategies keyed by definition and field name; implements [`Strategies`].
///
/// Built from the bundled table ([`StrategyTable::builtin`]) and completed with the type graph,
/// which the table lacks:
///
/// ```
/// # use skiff_patch::StrategyTable;
/// # let definitions: Vec<(String, serde_json::Value)> = Vec::new();
/// let mut table = StrategyTable::builtin();
/// for (name, schema) in &definitions {
///     table.add_schema(name, schema); // reads `properties.*.$ref` and friends
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StrategyTable {
    definitions: HashMap<String, HashMap<String, FieldStrategy>>,
}

/// The patch strategies, list types and map types of the built-in kinds' fields (definition,
/// field, patch_strategy, patch_merge_key, list_type, list_map_keys, map_type): facts from
/// the upstream OpenAPI definitions, shared by the crates that need them.
pub const PATCH_STRATEGIES_TSV: &str = include_str!("../data/patch-strategies.tsv");
const BUILTIN_TSV: &str = PATCH_STRATEGIES_TSV;

impl StrategyTable {
    /// The strategies of the built-in kinds, from the bundled `data/patch-strategies.tsv`
    /// (upstream Kubernetes OpenAPI definitions). It has no type graph: add it with
    /// [`StrategyTable::add_schema`] or [`StrategyTable::set_child`].
    pub fn builtin() -> StrategyTable {
        // The bundled table is checked by a unit test; an empty table only means every list is
        // replaced, never a panic.
        StrategyTable::from_tsv(BUILTIN_TSV).unwrap_or_default()
    }

    /// Reads a tab-separated table with the columns `definition`, `field`, `patch_strategy`
    /// (comma-separated: `merge`, `retainKeys`, `replace`), `patch_merge_key` and, ignored here,
    /// `list_type`, `list_map_keys`, `map_type`. A header line starting with `definition`, blank
    /// lines and lines starting with `#` are skipped.
    pub fn from_tsv(tsv: &str) -> Result<StrategyTable, TableError> {
        let mut table = StrategyTable::default();
        for (index, line) in tsv.lines().enumerate() {
            let line_no = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut columns = line.split('\t');
            let definition = columns.next().unwrap_or_default().trim();
            if index == 0 && definition == "definition" {
                continue;
            }
            let field = columns.next().unwrap_or_default().trim();
            if definition.is_empty() || field.is_empty() {
                return Err(TableError {
                    line: line_no,
                    reason: "definition and field must not be empty".to_owned(),
                });
            }
            let strategy_column = columns.next().unwrap_or_default().trim();
            let merge_key = columns.next().unwrap_or_default().trim();
            let mut strategy = FieldStrategy::default();
            for token in strategy_column.split(',').map(str::trim) {
                match token {
                    "" => {}
                    "merge" if merge_key.is_empty() => {
                        strategy.list = ListStrategy::MergePrimitives;
                    }
                    "merge" => {
                        strategy.list = ListStrategy::Merge {
                            key: merge_key.to_owned(),
                        };
                    }
                    "retainKeys" => strategy.retain_keys = true,
                    "replace" => strategy.replace = true,
                    other => {
                        return Err(TableError {
                            line: line_no,
                            reason: format!("unknown patch strategy {other:?}"),
                        });
                    }
                }
            }
            table.entry(definition, field).merge_facts(strategy);
        }
        Ok(table)
    }

    /// Records which definition the value of `field` in `definition` has.
    pub fn set_child(&mut self, definition: &str, field: &str, child: Child) {
        self.entry(definition, field).child = Some(child);
    }

    /// Records the type graph of one definition from its JSON schema: for each entry of
    /// `properties`, the definition its value refers to (see [`Child::from_property_schema`]).
    /// Schemas without `properties` add nothing.
    pub fn add_schema(&mut self, definition: &str, schema: &Value) {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (field, property) in properties {
            if let Some(child) = Child::from_property_schema(property) {
                self.set_child(definition, field, child);
            }
        }
    }

    /// The strategy recorded for `field` of `definition`.
    pub fn get(&self, definition: &str, field: &str) -> Option<&FieldStrategy> {
        self.definitions.get(definition)?.get(field)
    }

    /// Number of (definition, field) entries.
    pub fn len(&self) -> usize {
        self.definitions.values().map(HashMap::len).sum()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(&mut self, definition: &str, field: &str) -> &mut FieldStrategy {
        self.definitions
            .entry(definition.to_owned())
            .or_default()
            .entry(field.to_owned())
            .or_default()
    }
}

impl FieldStrategy {
    /// Takes the strategy facts of `other`, keeping the child already recorded.
    fn merge_facts(&mut self, other: FieldStrategy) {
        self.list = other.list;
        self.retain_keys = other.retain_keys;
        self.replace = other.replace;
        if other.child.is_some() {
            self.child = other.child;
        }
    }
}

impl Strategies for StrategyTable {
    fn field(&self, definition: &str, field: &str) -> Option<FieldStrategy> {
        self.get(definition, field).cloned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtin_table_parses_and_knows_pod_fields() {
        StrategyTable::from_tsv(BUILTIN_TSV).expect("bundled table parses");
        let table = StrategyTable::builtin();
        assert!(table.len() > 400, "{} entries", table.len());
        let containers = table
            .get("io.k8s.api.core.v1.PodSpec", "containers")
            .expect("containers");
        assert_eq!(
            containers.list,
            ListStrategy::Merge {
                key: "name".to_owned()
            }
        );
        let volumes = table
            .get("io.k8s.api.core.v1.PodSpec", "volumes")
            .expect("volumes");
        assert!(volumes.retain_keys);
        let finalizers = table
            .get(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "finalizers",
            )
            .expect("finalizers");
        assert_eq!(finalizers.list, ListStrategy::MergePrimitives);
        let selector = table
            .get("io.k8s.api.policy.v1.PodDisruptionBudgetSpec", "selector")
            .expect("selector");
        assert!(selector.replace);
        let args = table
            .get("io.k8s.api.core.v1.Container", "args")
            .expect("args");
        assert_eq!(args.list, ListStrategy::Replace);
    }

    #[test]
    fn table_errors_name_the_line() {
        let err = StrategyTable::from_tsv("definition\tfield\na\tb\tsideways\t\n")
            .expect_err("unknown strategy");
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("sideways"), "{err}");
        let err = StrategyTable::from_tsv("\tfield\n").expect_err("empty definition");
        assert_eq!(err.line, 1);
    }

    #[test]
    fn child_and_strategy_combine_in_either_order() {
        let mut table = StrategyTable::default();
        table.set_child("D", "items", Child::Type("Item".to_owned()));
        let other = StrategyTable::from_tsv("D\titems\tmerge\tname\n").expect("parses");
        for (definition, fields) in other.definitions {
            for (field, strategy) in fields {
                table.entry(&definition, &field).merge_facts(strategy);
            }
        }
        let got = table.field("D", "items").expect("entry");
        assert_eq!(got.child, Some(Child::Type("Item".to_owned())));
        assert_eq!(
            got.list,
            ListStrategy::Merge {
                key: "name".to_owned()
            }
        );
    }

    #[test]
    fn schema_properties_give_children() {
        let schema = json!({
            "type": "object",
            "properties": {
                "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                "spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}], "description": "x"},
                "containers": {"type": "array", "items": {"$ref": "#/$defs/io.k8s.api.core.v1.Container"}},
                "limits": {"type": "object", "additionalProperties": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}},
                "name": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}}
            }
        });
        let mut table = StrategyTable::default();
        table.add_schema("X", &schema);
        let child = |field: &str| table.get("X", field).and_then(|s| s.child.clone());
        assert_eq!(
            child("metadata"),
            Some(Child::Type(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".to_owned()
            ))
        );
        assert_eq!(
            child("spec"),
            Some(Child::Type("io.k8s.api.core.v1.PodSpec".to_owned()))
        );
        assert_eq!(
            child("containers"),
            Some(Child::Type("io.k8s.api.core.v1.Container".to_owned()))
        );
        assert_eq!(
            child("limits"),
            Some(Child::MapValues(
                "io.k8s.apimachinery.pkg.api.resource.Quantity".to_owned()
            ))
        );
        assert_eq!(child("name"), None);
        assert_eq!(child("args"), None);
        assert_eq!(table.len(), 4);
    }
}

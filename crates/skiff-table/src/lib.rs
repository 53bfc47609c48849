//! skiff's Table printers: what `kubectl get` shows. Renders Kubernetes objects (as
//! `serde_json::Value`) into `meta.k8s.io/v1` Table column definitions and row cells the way
//! kube-apiserver's printers do.
//!
//! Start at [`table`]: it takes a kind, the objects, the current time and the
//! `includeObject` choice and returns the whole Table. [`columns`] and [`row_cells`] are its
//! parts (one row per watch event, say); [`custom_table`] serves custom resources from their
//! CRD's `additionalPrinterColumns`. Kinds without a built-in printer get kube's default
//! table: Name and Created At.
//!
//! Column definitions come from `data/table-columns.tsv`, a copy of the shared fact sheet;
//! each column's cell rule is code in `printers`, mostly data (a path and a default) and a
//! few functions for the intricate ones (pod status, service external IPs, ...).
//!
//! Invariants: no IO, no clock (the caller passes `now`), no panics on malformed objects —
//! a missing or wrongly typed field reads as Go's zero value.

mod cell;
mod columns;
mod custom;
mod duration;
mod json;
mod labels;
mod printers;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use cell::Ctx;
pub use custom::{PrinterColumn, custom_columns, custom_row_cells};
pub use duration::human_duration;

/// One `meta.k8s.io/v1` TableColumnDefinition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Header text, e.g. `Ready`.
    pub name: String,
    /// OpenAPI type of the cells: `string`, `integer`, `number`, `boolean` or `date`.
    pub r#type: String,
    /// OpenAPI format; `name` marks the column holding the object's name.
    pub format: String,
    /// Human description.
    pub description: String,
    /// 0 for the standard view; higher priorities show only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The column definition as Table JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.r#type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` with the object's metadata (kube's default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter (`None`, `Metadata`, `Object`).
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "None" => Some(Self::None),
            "Metadata" => Some(Self::Metadata),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// Whether `kind` has a built-in printer (otherwise it gets the default table).
pub fn has_printer(kind: &str) -> bool {
    printers::cells(kind).is_some()
}

/// The column definitions for `kind`: its printer's, or Name and Created At.
pub fn columns(kind: &str) -> Vec<Column> {
    match printers::cells(kind) {
        Some(_) => columns::builtin(kind),
        None => columns::default_columns(),
    }
}

/// The cells of one object's row, one per column of [`columns`] and JSON-typed (strings,
/// integers, booleans). IPAddress alone has one cell more than columns, as in kube.
pub fn row_cells(kind: &str, object: &Value, now: OffsetDateTime) -> Vec<Value> {
    let cx = Ctx { obj: object, now };
    match printers::cells(kind) {
        Some(cells) => cells.iter().map(|c| c.eval(&cx)).collect(),
        None => default_cells(object),
    }
}

/// The default table's cells: the name and the creation time in RFC 3339 (UTC, seconds).
fn default_cells(object: &Value) -> Vec<Value> {
    let created = duration::parse_time(json::at(object, "metadata.creationTimestamp"))
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned());
    vec![json!(json::str_at(object, "metadata.name")), json!(created)]
}

/// A whole `meta.k8s.io/v1` Table for objects of one built-in (or unknown) kind.
/// `list_meta` becomes the Table's metadata (`resourceVersion`, `continue`, ...).
///
/// Like kube's list printers, FlowSchemas are ordered by matching precedence then name, and
/// only the effective default StorageClass is marked ` (default)`.
pub fn table(
    kind: &str,
    objects: &[Value],
    now: OffsetDateTime,
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let mut order: Vec<usize> = (0..objects.len()).collect();
    if kind == "FlowSchema" {
        order.sort_by(|&a, &b| {
            let key = |o: &Value| {
                (
                    json::int_at(o, "spec.matchingPrecedence"),
                    json::str_at(o, "metadata.name").to_owned(),
                )
            };
            key(&objects[a]).cmp(&key(&objects[b]))
        });
    }
    let default_class = (kind == "StorageClass")
        .then(|| printers::effective_default_storage_class(objects))
        .flatten();
    let rows = order
        .into_iter()
        .map(|i| {
            let object = &objects[i];
            let mut cells = row_cells(kind, object, now);
            if kind == "StorageClass"
                && printers::is_default_storage_class(object)
                && default_class != Some(i)
                && let Some(first) = cells.first_mut()
            {
                *first = json!(json::str_at(object, "metadata.name"));
            }
            let conditions = (kind == "Pod")
                .then(|| printers::pod_row_conditions(object))
                .flatten();
            row(cells, conditions, object, include)
        })
        .collect();
    assemble(&columns(kind), rows, list_meta)
}

/// A whole Table for custom resources printed with their CRD's printer columns.
pub fn custom_table(
    printer_columns: &[PrinterColumn],
    objects: &[Value],
    now: OffsetDateTime,
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let rows = objects
        .iter()
        .map(|o| row(custom_row_cells(printer_columns, o, now), None, o, include))
        .collect();
    assemble(&custom_columns(printer_columns), rows, list_meta)
}

fn row(
    cells: Vec<Value>,
    conditions: Option<Value>,
    object: &Value,
    include: IncludeObject,
) -> Value {
    let mut row = Map::new();
    row.insert("cells".to_owned(), Value::Array(cells));
    if let Some(conditions) = conditions {
        row.insert("conditions".to_owned(), conditions);
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let metadata = json::at(object, "metadata")
                .filter(|m| m.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            row.insert(
                "object".to_owned(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                }),
            );
        }
        IncludeObject::Object => {
            row.insert("object".to_owned(), object.clone());
        }
    }
    Value::Object(row)
}

fn assemble(columns: &[Column], rows: Vec<Value>, list_meta: Value) -> Value {
    let metadata = if list_meta.is_object() {
        list_meta
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns.iter().map(Column::to_json).collect::<Vec<_>>(),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests;

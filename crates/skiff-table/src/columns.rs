//! Column definitions, read once from `data/table-columns.tsv` (kind, column, type, format,
//! priority, cell rule), a copy of the shared fact sheet of kube-apiserver's printers.

use std::sync::LazyLock;

use crate::Column;

const TSV: &str = include_str!("../data/table-columns.tsv");

/// kube's description of `metadata.name`, used for every Name column.
pub(crate) const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// kube's description of `metadata.creationTimestamp`, used for Age and Created At columns.
pub(crate) const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One TSV row: the kind and its column.
struct Row {
    kind: &'static str,
    column: Column,
}

static ROWS: LazyLock<Vec<Row>> = LazyLock::new(|| {
    TSV.lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split('\t');
            let (kind, name, ty, format, priority, rule) = (
                f.next()?,
                f.next()?,
                f.next()?,
                f.next()?,
                f.next()?,
                f.next()?,
            );
            let description = if format == "name" && name == "Name" {
                NAME_DESCRIPTION.to_owned()
            } else if name == "Age" {
                CREATED_DESCRIPTION.to_owned()
            } else {
                rule.to_owned()
            };
            Some(Row {
                kind,
                column: Column {
                    name: name.to_owned(),
                    r#type: ty.to_owned(),
                    format: format.to_owned(),
                    description,
                    priority: priority.parse().unwrap_or(0),
                },
            })
        })
        .collect()
});

/// The built-in columns of `kind`, empty when the TSV has none.
pub(crate) fn builtin(kind: &str) -> Vec<Column> {
    ROWS.iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.column.clone())
        .collect()
}

/// Every kind the TSV describes, in file order.
#[cfg(test)]
pub(crate) fn kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for r in ROWS.iter() {
        if !kinds.contains(&r.kind) {
            kinds.push(r.kind);
        }
    }
    kinds
}

/// The default table's columns: Name and Created At, as kube's default table convertor.
pub(crate) fn default_columns() -> Vec<Column> {
    vec![
        Column {
            name: "Name".to_owned(),
            r#type: "string".to_owned(),
            format: "name".to_owned(),
            description: NAME_DESCRIPTION.to_owned(),
            priority: 0,
        },
        Column {
            name: "Created At".to_owned(),
            r#type: "date".to_owned(),
            format: String::new(),
            description: CREATED_DESCRIPTION.to_owned(),
            priority: 0,
        },
    ]
}

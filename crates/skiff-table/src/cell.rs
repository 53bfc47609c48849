//! The cell vocabulary: most Table cells are a path into the object with a default, a count,
//! a join or an age. Printers list one [`Cell`] per column; the few rules that need code are
//! [`Cell::Custom`] functions.

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::duration::since;
use crate::json::{arr_at, at, int_at, len_at, opt_bool, str_at, str_or};
use crate::labels::{format_label_selector, format_labels};

/// What a printer sees: the object and the caller's notion of now.
pub(crate) struct Ctx<'a> {
    pub obj: &'a Value,
    pub now: OffsetDateTime,
}

impl Ctx<'_> {
    /// `translateTimestampSince` of the timestamp at `path`.
    pub fn age(&self, path: &str) -> String {
        since(at(self.obj, path), self.now)
    }
}

/// One column's cell rule.
#[derive(Clone, Copy)]
pub(crate) enum Cell {
    /// `metadata.name`.
    Name,
    /// Age of `metadata.creationTimestamp`.
    Age,
    /// The string at a path, `""` when missing.
    Str(&'static str),
    /// The string at a path, or the given text when missing or empty.
    StrOr(&'static str, &'static str),
    /// The integer at a path, 0 when missing.
    Int(&'static str),
    /// Number of entries of the array or map at a path.
    Len(&'static str),
    /// The boolean at a path, or the given default when missing.
    Bool(&'static str, bool),
    /// `labels.FormatLabels` of the map at a path.
    Labels(&'static str),
    /// `metav1.FormatLabelSelector` of the selector at a path.
    Selector(&'static str),
    /// One field of each entry of the list at `list`, joined by `sep`.
    Join {
        list: &'static str,
        field: &'static str,
        sep: &'static str,
    },
    /// The string list at a path joined by `sep`, or `empty` when there is none.
    JoinStrs {
        list: &'static str,
        sep: &'static str,
        empty: &'static str,
    },
    /// Age of the timestamp at a path, or the given text when unset.
    AgeOr(&'static str, &'static str),
    /// A rule that needs code.
    Custom(fn(&Ctx) -> Value),
}

/// Comma-joined names of the pod template's containers at `spec.template.spec.containers`.
pub(crate) const CONTAINERS: Cell = Cell::Join {
    list: "spec.template.spec.containers",
    field: "name",
    sep: ",",
};
/// Comma-joined images of the pod template's containers.
pub(crate) const IMAGES: Cell = Cell::Join {
    list: "spec.template.spec.containers",
    field: "image",
    sep: ",",
};

impl Cell {
    pub(crate) fn eval(self, cx: &Ctx) -> Value {
        let o = cx.obj;
        match self {
            Cell::Name => json!(str_at(o, "metadata.name")),
            Cell::Age => json!(cx.age("metadata.creationTimestamp")),
            Cell::Str(p) => json!(str_at(o, p)),
            Cell::StrOr(p, d) => json!(str_or(o, p, d)),
            Cell::Int(p) => json!(int_at(o, p)),
            Cell::Len(p) => json!(len_at(o, p)),
            Cell::Bool(p, d) => json!(opt_bool(o, p).unwrap_or(d)),
            Cell::Labels(p) => json!(format_labels(at(o, p))),
            Cell::Selector(p) => json!(format_label_selector(at(o, p))),
            Cell::Join { list, field, sep } => json!(join_field(o, list, field, sep)),
            Cell::JoinStrs { list, sep, empty } => {
                let items: Vec<&str> = arr_at(o, list).iter().filter_map(Value::as_str).collect();
                if items.is_empty() {
                    json!(empty)
                } else {
                    json!(items.join(sep))
                }
            }
            Cell::AgeOr(p, d) => match at(o, p) {
                Some(v) if !v.is_null() => json!(since(Some(v), cx.now)),
                _ => json!(d),
            },
            Cell::Custom(f) => f(cx),
        }
    }
}

/// `field` of each object in the list at `list`, joined by `sep` (missing fields as `""`).
pub(crate) fn join_field(o: &Value, list: &str, field: &str, sep: &str) -> String {
    arr_at(o, list)
        .iter()
        .map(|c| str_at(c, field))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Kubernetes' `+ N more...` lists: the first `max` items joined by `,`, with the count of
/// the rest appended.
pub(crate) fn list_with_more(list: &[String], total: usize, max: usize) -> String {
    let ret = list.join(",");
    if total > max {
        format!("{ret} + {} more...", total - max)
    } else {
        ret
    }
}

//! Tables for custom resources: the Name column followed by a CRD's
//! `additionalPrinterColumns`, each cell read with a small JSONPath subset (`.spec.replicas`,
//! `.items[0].name`, `.metadata.labels['app.kubernetes.io/name']`,
//! `.status.conditions[?(@.type=="Ready")].status`), typed the way the apiextensions table
//! convertor types them.

use serde_json::{Value, json};

use crate::Column;
use crate::columns::NAME_DESCRIPTION;
use crate::duration::parse_time;
use crate::json::{at, str_at};

/// One of a CRD version's `additionalPrinterColumns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: `integer`, `number`, `string`, `boolean` or `date`.
    pub r#type: String,
    /// OpenAPI format (e.g. `name`), may be empty.
    pub format: String,
    /// Human description.
    pub description: String,
    /// 0 for standard view, higher for `-o wide`.
    pub priority: i32,
    /// The JSONPath of the value, e.g. `.spec.replicas`.
    pub json_path: String,
}

impl PrinterColumn {
    /// A column with empty format and description and priority 0.
    pub fn new(name: &str, r#type: &str, json_path: &str) -> Self {
        Self {
            name: name.to_owned(),
            r#type: r#type.to_owned(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: json_path.to_owned(),
        }
    }
}

/// The Table columns of a custom resource: Name, then the printer columns.
pub fn custom_columns(printer_columns: &[PrinterColumn]) -> Vec<Column> {
    let mut columns = vec![Column {
        name: "Name".to_owned(),
        r#type: "string".to_owned(),
        format: "name".to_owned(),
        description: NAME_DESCRIPTION.to_owned(),
        priority: 0,
    }];
    columns.extend(printer_columns.iter().map(|c| Column {
        name: c.name.clone(),
        r#type: c.r#type.clone(),
        format: c.format.clone(),
        description: c.description.clone(),
        priority: c.priority,
    }));
    columns
}

/// The cells of a custom resource: its name, then each printer column's value, `null` when
/// the path finds nothing or the value does not fit the column type.
pub fn custom_row_cells(
    printer_columns: &[PrinterColumn],
    object: &Value,
    now: time::OffsetDateTime,
) -> Vec<Value> {
    let mut cells = vec![json!(str_at(object, "metadata.name"))];
    cells.extend(
        printer_columns
            .iter()
            .map(|c| match find(object, &c.json_path) {
                Some(v) if !v.is_null() => typed_cell(&c.r#type, v, now),
                _ => Value::Null,
            }),
    );
    cells
}

/// Converts a found value to the column's type, like apiextensions' `cellForJSONValue`:
/// dates become their age (`5m`), as kube-apiserver renders them.
fn typed_cell(ty: &str, v: &Value, now: time::OffsetDateTime) -> Value {
    match (ty, v) {
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, |i| json!(i)),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(_)) => match parse_time(Some(v)) {
            Some(t) => json!(crate::human_duration(now - t)),
            None => json!("<invalid>"),
        },
        // String columns print whatever is there, as kubectl's JSONPath printer does.
        ("string", Value::String(s)) => json!(s),
        ("string", other) => json!(other.to_string()),
        _ => Value::Null,
    }
}

/// One step of a parsed path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[?(@.path == "value")]`: the first element whose `path` equals `value`.
    Filter(String, String),
}

/// Evaluates the JSONPath subset on `v`; `None` when the path is not understood or finds
/// nothing.
pub(crate) fn find<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    parse(path)?.iter().try_fold(v, |cur, step| match step {
        Step::Key(k) => cur.as_object()?.get(k),
        Step::Index(i) => cur.as_array()?.get(*i),
        Step::Filter(p, want) => cur.as_array()?.iter().find(|e| {
            at(e, p)
                .and_then(crate::json::scalar_text)
                .is_some_and(|s| &s == want)
        }),
    })
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut p = path.trim();
    if let Some(inner) = p.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        p = inner.trim();
    }
    let mut steps = Vec::new();
    let mut chars = p.char_indices().peekable();
    let bytes = p.as_bytes();
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    match c {
                        '.' | '[' => break,
                        '\\' => {
                            chars.next();
                            if let Some((_, escaped)) = chars.next() {
                                key.push(escaped);
                            }
                        }
                        _ => {
                            key.push(c);
                            chars.next();
                        }
                    }
                }
                if !key.is_empty() {
                    steps.push(Step::Key(key));
                }
            }
            '[' => {
                let close = find_close(bytes, i)?;
                let inner = p[i + 1..close].trim();
                steps.push(bracket(inner)?);
                while chars.peek().is_some_and(|&(j, _)| j <= close) {
                    chars.next();
                }
            }
            _ if i == 0 => {
                // A path without the leading dot: read the key up to the next separator.
                let end = p[i..].find(['.', '[']).map_or(p.len(), |e| i + e);
                steps.push(Step::Key(p[i..end].to_owned()));
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// The index of the `]` closing the bracket at `open`, skipping quoted text.
fn find_close(bytes: &[u8], open: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (j, &b) in bytes.iter().enumerate().skip(open + 1) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b']') => return Some(j),
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
}

fn bracket(inner: &str) -> Option<Step> {
    if let Ok(i) = inner.parse::<usize>() {
        return Some(Step::Index(i));
    }
    if let Some(key) = unquote(inner) {
        return Some(Step::Key(key.to_owned()));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?;
    let (lhs, rhs) = expr.split_once("==")?;
    let field = lhs.trim().strip_prefix("@.")?;
    let rhs = rhs.trim();
    let want = unquote(rhs).unwrap_or(rhs);
    Some(Step::Filter(field.to_owned(), want.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let o = json!({
            "spec": {"replicas": 3},
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "status": {"conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]},
            "items": [{"name": "a"}, {"name": "b"}]
        });
        assert_eq!(find(&o, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(find(&o, "{.spec.replicas}"), Some(&json!(3)));
        assert_eq!(find(&o, "spec.replicas"), Some(&json!(3)));
        assert_eq!(find(&o, ".items[1].name"), Some(&json!("b")));
        assert_eq!(
            find(&o, ".metadata.labels['app.kubernetes.io/name']"),
            Some(&json!("web"))
        );
        assert_eq!(
            find(&o, r".metadata.labels.app\.kubernetes\.io/name"),
            Some(&json!("web"))
        );
        assert_eq!(
            find(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(&json!("True"))
        );
        assert_eq!(find(&o, ".spec.missing"), None);
        assert_eq!(find(&o, ".items[9]"), None);
    }
}

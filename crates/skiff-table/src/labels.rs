//! Label maps and label selectors as text, following apimachinery's `labels.FormatLabels`,
//! `metav1.LabelSelectorAsSelector(..).String()` and `metav1.FormatLabelSelector`.

use serde_json::Value;

use crate::json::{arr_at, obj_at, str_at};

/// `labels.FormatLabels`: `k=v` pairs sorted by key and joined with `,`; `<none>` if empty.
pub(crate) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_owned();
    }
    pairs.sort();
    pairs.join(",")
}

/// A `metav1.LabelSelector` converted to selector syntax (`app=x,tier in (a,b),!legacy`).
/// A missing or empty selector gives `""`; an invalid one (unknown operator, `In` without
/// values, `Exists` with values) gives `None`.
pub(crate) fn selector_string(selector: Option<&Value>) -> Option<String> {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return Some(String::new());
    };
    // (key, rendered requirement); sorted by key like labels.internalSelector.
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = obj_at(sel, "matchLabels") {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for expr in arr_at(sel, "matchExpressions") {
        let key = str_at(expr, "key");
        let mut values: Vec<&str> = arr_at(expr, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let rendered = match str_at(expr, "operator") {
            op @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return None;
                }
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_owned(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_owned(), rendered));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        reqs.into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when empty, `<error>` when
/// invalid.
pub(crate) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        None => "<error>".to_owned(),
        Some(s) if s.is_empty() => "<none>".to_owned(),
        Some(s) => s,
    }
}

//! Label selectors as the `labelSelector` query parameter spells them:
//! `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, joined by commas.
//! Pure parsing and matching; no IO. Matching reads an object through [`Selectable`], which a
//! decoded object and the watch cache's [`Attrs`] (what selectors read, taken out once) both
//! implement, so both are matched by the same code.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

/// One requirement on one label.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_requirements(text)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Whether labels read by `label` (a key's value, `None` when absent) match.
    pub(crate) fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        let among = |values: &[String], v: &str| values.iter().any(|x| x == v);
        self.requirements.iter().all(|r| match r {
            Requirement::In(key, values) => label(key).is_some_and(|v| among(values, v)),
            Requirement::NotIn(key, values) => label(key).is_none_or(|v| !among(values, v)),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::DoesNotExist(key) => label(key).is_none(),
        })
    }
}

/// What label and field selectors read of an object.
pub(crate) trait Selectable {
    /// The value of label `key`; labels that are not strings are absent.
    fn label(&self, key: &str) -> Option<&str>;
    /// The value at a field selector's dotted `path` as text (see [`crate::fields::text_at`]);
    /// `None` when absent.
    fn field(&self, path: &str) -> Option<Cow<'_, str>>;
}

impl Selectable for Value {
    fn label(&self, key: &str) -> Option<&str> {
        self["metadata"]["labels"].get(key)?.as_str()
    }

    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        crate::fields::text_at(self, path)
    }
}

/// What selectors read of an object, taken out of it once: its string labels and, of the
/// fields its kind may be selected by, those it has. A few short strings, where the decoded
/// object would be a tree of maps; the watch cache keeps this beside each object's JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attrs {
    /// Sorted by key.
    labels: Box<[(Box<str>, Box<str>)]>,
    /// Path and text of each selectable field present (`metadata.name` among them).
    fields: Box<[(&'static str, Box<str>)]>,
}

impl Attrs {
    /// The attributes of `object`, an object of `group`/`plural` (the core group is `""`).
    pub(crate) fn of(object: &Value, group: &str, plural: &str) -> Attrs {
        let mut labels: Vec<(Box<str>, Box<str>)> = object["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str().into(), v.as_str()?.into())))
            .collect();
        labels.sort_unstable();
        let fields = crate::fields::selectable_paths(group, plural)
            .into_iter()
            .filter_map(|path| Some((path, crate::fields::text_at(object, path)?.into())))
            .collect();
        Attrs {
            labels: labels.into_boxed_slice(),
            fields,
        }
    }

    /// `metadata.name`, if set.
    pub(crate) fn name(&self) -> Option<&str> {
        self.field_str("metadata.name")
    }

    /// `metadata.namespace`, if set.
    pub(crate) fn namespace(&self) -> Option<&str> {
        self.field_str("metadata.namespace")
    }

    fn field_str(&self, path: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, value)| &**value)
    }
}

impl Selectable for Attrs {
    fn label(&self, key: &str) -> Option<&str> {
        let at = self.labels.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.labels[at].1)
    }

    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        self.field_str(path).map(Cow::Borrowed)
    }
}

/// The label and field selectors of a list or watch, together.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: crate::fields::FieldSelector,
}

impl Selectors {
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub(crate) fn matches(&self, object: &(impl Selectable + ?Sized)) -> bool {
        self.labels.matches_with(|key| object.label(key)) && self.fields.matches(object)
    }
}

/// An object's `metadata.labels` as a map (non-string values are ignored).
pub(crate) fn labels_of(object: &serde_json::Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A label selector (`{matchLabels, matchExpressions}`, or a plain map as ReplicationControllers
/// have) in the text form `kubectl` and the Scale status use.
pub(crate) fn text_of(selector: &serde_json::Value) -> String {
    let mut terms = Vec::new();
    let labels = selector
        .get("matchLabels")
        .or(if selector.get("matchExpressions").is_none() {
            Some(selector)
        } else {
            None
        })
        .and_then(serde_json::Value::as_object);
    if let Some(labels) = labels {
        let mut pairs: Vec<_> = labels.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in pairs {
            terms.push(format!("{key}={}", value.as_str().unwrap_or_default()));
        }
    }
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect();
        terms.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    terms.join(",")
}

/// Splits on commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    format!("unable to parse requirement: unbalanced ')' in {text:?}")
                })?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: unbalanced '(' in {text:?}"
        ));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(checked_key(key.trim())?));
    }
    for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = part.split_once(op) {
            let key = checked_key(key.trim())?;
            let value = checked_value(value.trim())?;
            return Ok(if negated {
                Requirement::NotIn(key, vec![value])
            } else {
                Requirement::In(key, vec![value])
            });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = checked_key(words[0])?;
        let rest = words[1].trim();
        for (op, negated) in [("notin", true), ("in", false)] {
            if let Some(set) = rest.strip_prefix(op) {
                let set = set.trim();
                let inner = set
                    .strip_prefix('(')
                    .and_then(|s| s.strip_suffix(')'))
                    .ok_or_else(|| format!("unable to parse requirement: {op} needs a parenthesised set in {part:?}"))?;
                let values = inner
                    .split(',')
                    .map(|v| checked_value(v.trim()))
                    .collect::<Result<Vec<_>, _>>()?;
                if values.is_empty() || inner.trim().is_empty() {
                    return Err(format!(
                        "unable to parse requirement: {op} needs at least one value in {part:?}"
                    ));
                }
                return Ok(if negated {
                    Requirement::NotIn(key, values)
                } else {
                    Requirement::In(key, values)
                });
            }
        }
        return Err(format!(
            "unable to parse requirement: unknown operator in {part:?}"
        ));
    }
    Ok(Requirement::Exists(checked_key(part)?))
}

/// `[prefix/]name`: name of at most 63 alphanumerics, '-', '_' or '.', starting and ending
/// alphanumeric; prefix a DNS subdomain.
fn checked_key(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let valid_name = !name.is_empty() && name.len() <= 63 && qualified_chars(name);
    let valid_prefix = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    });
    if valid_name && valid_prefix {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key {key:?}"
        ))
    }
}

fn checked_value(value: &str) -> Result<String, String> {
    if value.is_empty() || (value.len() <= 63 && qualified_chars(value)) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label value {value:?}"
        ))
    }
}

fn qualified_chars(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_render_as_label_selector_text() {
        assert_eq!(
            text_of(&json!({"matchLabels": {"b": "2", "a": "1"}})),
            "a=1,b=2"
        );
        assert_eq!(
            text_of(&json!({"matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]})),
            "tier in (web,api),!legacy"
        );
        assert_eq!(text_of(&json!({"app": "rc"})), "app=rc");
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_operator_matches_like_kubernetes() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("example.com/team", "a")]);
        let db = labels(&[("app", "db")]);
        let cases = [
            ("", true, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("tier!=back", true, true),
            ("app in (web, db)", true, true),
            ("app notin (web)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=web,tier=front", true, false),
            ("app in (web,db),!tier", false, true),
            ("example.com/team=a", true, false),
        ];
        for (selector, on_web, on_db) in cases {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&web), on_web, "{selector} on web");
            assert_eq!(parsed.matches(&db), on_db, "{selector} on db");
        }
    }

    #[test]
    fn the_extracted_attributes_select_as_the_object_does() {
        let registry = crate::registry::Registry::builtin();
        let pods = registry.find("", "v1", "pods").unwrap();
        let pod = json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "n": 1}},
            "spec": {"nodeName": "n1", "hostNetwork": true, "restartPolicy": null},
            "status": {"phase": "Running"},
        });
        let bare = json!({"metadata": {"name": "q"}});
        for (labels, fields) in [
            ("", ""),
            ("app=web", ""),
            ("app!=web", ""),
            ("n", ""),
            ("!n", ""),
            ("app in (db,web),!tier", "metadata.namespace=ns"),
            ("", "spec.nodeName=n1,status.phase!=Failed"),
            ("", "spec.nodeName="),
            ("", "spec.hostNetwork=true"),
            ("", "spec.hostNetwork=false"),
            ("", "spec.restartPolicy="),
            ("", "metadata.name=p"),
            ("", "metadata.namespace="),
        ] {
            let selectors = Selectors {
                labels: LabelSelector::parse(labels).unwrap(),
                fields: crate::fields::FieldSelector::parse(fields, pods).unwrap(),
            };
            for object in [&pod, &bare] {
                assert_eq!(
                    selectors.matches(&Attrs::of(object, "", "pods")),
                    selectors.matches(object),
                    "{labels:?} {fields:?} on {object}"
                );
            }
        }
        let attrs = Attrs::of(&pod, "", "pods");
        assert!(
            Selectors {
                labels: LabelSelector::parse("app=web").unwrap(),
                fields: crate::fields::FieldSelector::parse("spec.hostNetwork=true", pods).unwrap(),
            }
            .matches(&attrs)
        );
        assert!(
            !Selectors {
                labels: LabelSelector::parse("n").unwrap(),
                fields: Default::default(),
            }
            .matches(&attrs)
        );
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for bad in [
            "app in web",
            "app in ()",
            "app in (web",
            "app)",
            "-app=web",
            "app=web!",
            "app ~ web",
            "/app=x",
            &format!("app={}", "v".repeat(64)),
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}

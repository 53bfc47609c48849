//! Label matching as the scheduler needs it: `metav1.LabelSelector` (pod affinity, topology
//! spread) and `NodeSelectorTerm`s (node affinity, incl. `Gt`/`Lt` and `matchFields` on
//! `metadata.name`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels as k8s-openapi carries them.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` match a label selector. A selector with no requirements matches
/// everything; an absent selector (`None`) is for the caller to interpret (usually nothing).
pub fn label_selector_matches(selector: &LabelSelector, labels: &Labels) -> bool {
    if let Some(match_labels) = &selector.match_labels
        && match_labels
            .iter()
            .any(|(key, value)| labels.get(key) != Some(value))
    {
        return false;
    }
    selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| {
            let values = requirement.values.as_deref().unwrap_or_default();
            let actual = labels.get(&requirement.key);
            match requirement.operator.as_str() {
                "In" => actual.is_some_and(|v| values.contains(v)),
                "NotIn" => actual.is_none_or(|v| !values.contains(v)),
                "Exists" => actual.is_some(),
                "DoesNotExist" => actual.is_none(),
                _ => false,
            }
        })
}

/// Whether a node (its name and labels) matches one requirement of a node selector term.
fn requirement_matches(requirement: &NodeSelectorRequirement, actual: Option<&String>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    match requirement.operator.as_str() {
        "In" => actual.is_some_and(|v| values.contains(v)),
        "NotIn" => actual.is_none_or(|v| !values.contains(v)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        operator @ ("Gt" | "Lt") => {
            let (Some(actual), [bound]) = (actual, values) else {
                return false;
            };
            match (actual.parse::<i64>(), bound.parse::<i64>()) {
                (Ok(actual), Ok(bound)) if operator == "Gt" => actual > bound,
                (Ok(actual), Ok(bound)) => actual < bound,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a node matches a node selector term: all its expressions and fields. A term with
/// neither matches nothing, as in Kubernetes.
pub fn node_selector_term_matches(
    term: &NodeSelectorTerm,
    node_name: &str,
    labels: &Labels,
) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let name = node_name.to_owned();
    expressions
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)))
}

/// Whether a node matches a node selector: any of its terms.
pub fn node_selector_matches(selector: &NodeSelector, node_name: &str, labels: &Labels) -> bool {
    selector
        .node_selector_terms
        .iter()
        .any(|term| node_selector_term_matches(term, node_name, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn node_expression(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn label_selectors() {
        let app_web = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            (LabelSelector::default(), true),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("app", "web")])),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_labels: Some(labels(&[("app", "db")])),
                    ..Default::default()
                },
                false,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expression("app", "In", &["web", "api"])]),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expression("app", "NotIn", &["web"])]),
                    ..Default::default()
                },
                false,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expression("zone", "NotIn", &["a"])]),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expression("tier", "Exists", &[])]),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expression("tier", "DoesNotExist", &[])]),
                    ..Default::default()
                },
                false,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![expression("tier", "Bogus", &[])]),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (i, (selector, expected)) in cases.iter().enumerate() {
            assert_eq!(
                label_selector_matches(selector, &app_web),
                *expected,
                "case {i}"
            );
        }
    }

    #[test]
    fn node_selector_terms() {
        let node = labels(&[("zone", "a"), ("cores", "8")]);
        let cases = [
            (vec![], vec![], false),
            (
                vec![node_expression("zone", "In", &["a", "b"])],
                vec![],
                true,
            ),
            (
                vec![node_expression("zone", "NotIn", &["a"])],
                vec![],
                false,
            ),
            (
                vec![node_expression("gpu", "DoesNotExist", &[])],
                vec![],
                true,
            ),
            (vec![node_expression("zone", "Exists", &[])], vec![], true),
            (vec![node_expression("cores", "Gt", &["4"])], vec![], true),
            (vec![node_expression("cores", "Lt", &["4"])], vec![], false),
            (vec![node_expression("zone", "Gt", &["4"])], vec![], false),
            (
                vec![node_expression("cores", "Gt", &["4", "5"])],
                vec![],
                false,
            ),
            (
                vec![],
                vec![node_expression("metadata.name", "In", &["n1"])],
                true,
            ),
            (
                vec![],
                vec![node_expression("metadata.name", "In", &["n2"])],
                false,
            ),
            (
                vec![],
                vec![node_expression("metadata.uid", "In", &["n1"])],
                false,
            ),
            (
                vec![node_expression("zone", "In", &["a"])],
                vec![node_expression("metadata.name", "NotIn", &["n1"])],
                false,
            ),
        ];
        for (i, (expressions, fields, expected)) in cases.into_iter().enumerate() {
            let term = NodeSelectorTerm {
                match_expressions: Some(expressions),
                match_fields: Some(fields),
            };
            assert_eq!(
                node_selector_term_matches(&term, "n1", &node),
                expected,
                "case {i}"
            );
        }
    }
}

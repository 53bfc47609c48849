//! Filters: whether a pod may go on a node, in kube-scheduler's plugin order, each failing
//! with kube-scheduler's reason text. [`Prepared`] holds what the pod-wide filters (pod
//! affinity, topology spreading) compute once per pod from the whole snapshot, so checking a
//! node stays cheap. [`fit_error`] renders the "0/N nodes are available: ..." message.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::selector::{Labels, label_selector_matches, node_selector_matches};
use crate::snapshot::{AffinityTerm, NodeInfo, PodInfo, Snapshot};

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const REASON_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// The taint the `NodeUnschedulable` filter lets a pod tolerate.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Whether a toleration tolerates a taint (kube's `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if toleration
        .key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match toleration.operator.as_deref() {
        Some("Exists") => true,
        None | Some("") | Some("Equal") => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// `NodeUnschedulable`: cordoned nodes, unless the pod tolerates the unschedulable taint.
pub fn node_unschedulable(pod: &Pod, node: &NodeInfo) -> Result<(), String> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: UNSCHEDULABLE_TAINT.to_owned(),
        effect: "NoSchedule".to_owned(),
        ..Taint::default()
    };
    if tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
        Ok(())
    } else {
        Err(REASON_UNSCHEDULABLE.to_owned())
    }
}

/// `NodeName`: a pod that names a node fits only there.
pub fn node_name(pod: &Pod, node: &NodeInfo) -> Result<(), String> {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(name) if !name.is_empty() && name != node.name => Err(REASON_NODE_NAME.to_owned()),
        _ => Ok(()),
    }
}

/// `TaintToleration`: the first `NoSchedule`/`NoExecute` taint the pod does not tolerate.
pub fn taint_toleration(pod: &Pod, node: &NodeInfo) -> Result<(), String> {
    let tolerations = tolerations(pod);
    match node.taints.iter().find(|taint| {
        (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !tolerations.iter().any(|t| tolerates(t, taint))
    }) {
        Some(taint) => Err(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            taint.key,
            taint.value.as_deref().unwrap_or("")
        )),
        None => Ok(()),
    }
}

/// Whether a node satisfies the pod's `nodeSelector` and required node affinity.
pub fn matches_node_selector(pod: &Pod, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(selector) = &spec.node_selector
        && selector
            .iter()
            .any(|(key, value)| node.labels.get(key) != Some(value))
    {
        return false;
    }
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|required| node_selector_matches(required, &node.name, &node.labels))
}

/// `NodeAffinity`: `nodeSelector` and required node affinity.
pub fn node_affinity(pod: &Pod, node: &NodeInfo) -> Result<(), String> {
    if matches_node_selector(pod, node) {
        Ok(())
    } else {
        Err(REASON_NODE_AFFINITY.to_owned())
    }
}

/// `NodePorts`: the pod's host ports must be free on the node.
pub fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Result<(), String> {
    if pod
        .host_ports
        .iter()
        .any(|wanted| node.used_ports.iter().any(|used| used.conflicts(wanted)))
    {
        Err(REASON_NODE_PORTS.to_owned())
    } else {
        Ok(())
    }
}

/// `NodeResourcesFit`: requests against allocatable minus what placed pods request; every
/// shortage is a reason ("Too many pods", "Insufficient cpu", "Insufficient memory", ...).
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo) -> Result<(), Vec<String>> {
    let want = &pod.requests;
    let have = &node.allocatable;
    let used = &node.requested;
    let mut reasons = Vec::new();
    if used.pods + 1 > have.pods {
        reasons.push(REASON_TOO_MANY_PODS.to_owned());
    }
    for (name, want, have, used) in [
        ("cpu", want.milli_cpu, have.milli_cpu, used.milli_cpu),
        ("memory", want.memory, have.memory, used.memory),
        (
            "ephemeral-storage",
            want.ephemeral_storage,
            have.ephemeral_storage,
            used.ephemeral_storage,
        ),
    ] {
        if want > 0 && want > have.saturating_sub(used) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    for (name, want) in &want.scalar {
        let have = have.scalar.get(name).copied().unwrap_or(0);
        let used = used.scalar.get(name).copied().unwrap_or(0);
        if *want > 0 && *want > have.saturating_sub(used) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// A topology pair: a label key and value (a topology domain).
type Pair = (String, String);

/// One `DoNotSchedule` topology spread constraint, counted over the eligible nodes.
#[derive(Debug, Clone)]
struct SpreadFilter {
    topology_key: String,
    max_skew: i64,
    /// Matching pods per domain of eligible nodes (domains with none included).
    counts: HashMap<String, i64>,
    /// The smallest count (0 when there are fewer domains than `minDomains`).
    min: i64,
    /// 1 when the incoming pod matches its own selector.
    self_match: i64,
}

/// What the pod-wide filters compute once per pod.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Pairs holding pods that match all of the pod's required affinity terms.
    affinity_pairs: HashSet<Pair>,
    /// Whether the pod matches all of its own affinity terms.
    affinity_self_match: bool,
    /// Pairs holding pods that match one of the pod's required anti-affinity terms.
    anti_affinity_pairs: HashSet<Pair>,
    /// Pairs where placed pods' required anti-affinity excludes the pod.
    existing_anti_affinity_pairs: HashSet<Pair>,
    spread: Vec<SpreadFilter>,
}

/// Whether a pod matches all terms (no terms: false, it has nothing to match).
fn matches_all(terms: &[AffinityTerm], namespace: &str, labels: &Labels) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(namespace, labels))
}

impl Prepared {
    /// Computes the pod-wide state. Costs O(placed pods) only for pods with required pod
    /// (anti-)affinity or `DoNotSchedule` spread constraints, plus O(placed pods with
    /// anti-affinity) for every pod.
    pub fn new(pod: &PodInfo, snapshot: &Snapshot) -> Prepared {
        let mut prepared = Prepared {
            affinity_self_match: matches_all(&pod.required_affinity, &pod.namespace, &pod.labels),
            ..Prepared::default()
        };
        for (node, existing) in snapshot.anti_affinity_pods() {
            for term in &existing.required_anti_affinity {
                if term.matches(&pod.namespace, &pod.labels)
                    && let Some(value) = node.labels.get(&term.topology_key)
                {
                    prepared
                        .existing_anti_affinity_pairs
                        .insert((term.topology_key.clone(), value.clone()));
                }
            }
        }
        if !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty() {
            for (node, existing) in snapshot.placed_pods() {
                if node.node.is_none() || existing.key == pod.key {
                    continue;
                }
                if matches_all(
                    &pod.required_affinity,
                    &existing.namespace,
                    &existing.labels,
                ) {
                    for term in &pod.required_affinity {
                        if let Some(value) = node.labels.get(&term.topology_key) {
                            prepared
                                .affinity_pairs
                                .insert((term.topology_key.clone(), value.clone()));
                        }
                    }
                }
                for term in &pod.required_anti_affinity {
                    if term.matches(&existing.namespace, &existing.labels)
                        && let Some(value) = node.labels.get(&term.topology_key)
                    {
                        prepared
                            .anti_affinity_pairs
                            .insert((term.topology_key.clone(), value.clone()));
                    }
                }
            }
        }
        prepared.spread = spread_filters(pod, snapshot);
        prepared
    }
}

/// Kube's `matchLabelKeys`: the constraint's selector narrowed to the pod's values of keys.
pub(crate) fn spread_selector(
    constraint: &k8s_openapi::api::core::v1::TopologySpreadConstraint,
    labels: &Labels,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> {
    let mut selector = constraint.label_selector.clone()?;
    for key in constraint.match_label_keys.iter().flatten() {
        if let Some(value) = labels.get(key) {
            selector
                .match_expressions
                .get_or_insert_with(Vec::new)
                .push(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                        key: key.clone(),
                        operator: "In".to_owned(),
                        values: Some(vec![value.clone()]),
                    },
                );
        }
    }
    Some(selector)
}

/// Whether a node counts for a pod's spread constraints given their node policies.
pub(crate) fn spread_eligible(
    pod: &Pod,
    node: &NodeInfo,
    constraint: &k8s_openapi::api::core::v1::TopologySpreadConstraint,
) -> bool {
    let honor_affinity = constraint.node_affinity_policy.as_deref() != Some("Ignore");
    let honor_taints = constraint.node_taints_policy.as_deref() == Some("Honor");
    (!honor_affinity || matches_node_selector(pod, node))
        && (!honor_taints || taint_toleration(pod, node).is_ok())
}

fn spread_filters(pod: &PodInfo, snapshot: &Snapshot) -> Vec<SpreadFilter> {
    let constraints: Vec<_> = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == "DoNotSchedule")
        .collect();
    if constraints.is_empty() {
        return Vec::new();
    }
    let mut filters = Vec::new();
    for constraint in &constraints {
        let selector = spread_selector(constraint, &pod.labels);
        let matches = |labels: &Labels| {
            selector
                .as_ref()
                .is_some_and(|s| label_selector_matches(s, labels))
        };
        let mut counts: HashMap<String, i64> = HashMap::new();
        for node in snapshot.nodes() {
            if !constraints
                .iter()
                .all(|c| node.labels.contains_key(&c.topology_key))
                || !spread_eligible(&pod.pod, node, constraint)
            {
                continue;
            }
            let value = &node.labels[&constraint.topology_key];
            let count = node
                .pods
                .values()
                .filter(|p| {
                    p.namespace == pod.namespace
                        && !p.terminating
                        && p.key != pod.key
                        && matches(&p.labels)
                })
                .count() as i64;
            *counts.entry(value.clone()).or_default() += count;
        }
        let min_domains = constraint.min_domains.unwrap_or(1).max(1) as usize;
        let min = if counts.len() < min_domains {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        filters.push(SpreadFilter {
            topology_key: constraint.topology_key.clone(),
            max_skew: i64::from(constraint.max_skew.max(1)),
            counts,
            min,
            self_match: i64::from(matches(&pod.labels)),
        });
    }
    filters
}

/// `PodTopologySpread` (filter): `DoNotSchedule` constraints' skew after placing the pod.
pub fn topology_spread(prepared: &Prepared, node: &NodeInfo) -> Result<(), String> {
    for filter in &prepared.spread {
        let Some(value) = node.labels.get(&filter.topology_key) else {
            return Err(REASON_SPREAD_LABEL.to_owned());
        };
        let count = filter.counts.get(value).copied().unwrap_or(0);
        if count + filter.self_match - filter.min > filter.max_skew {
            return Err(REASON_SPREAD.to_owned());
        }
    }
    Ok(())
}

/// `InterPodAffinity` (filter): the pod's required affinity and anti-affinity, then placed
/// pods' required anti-affinity towards it.
pub fn inter_pod_affinity(
    pod: &PodInfo,
    prepared: &Prepared,
    node: &NodeInfo,
) -> Result<(), String> {
    let mut pods_exist = true;
    for term in &pod.required_affinity {
        let Some(value) = node.labels.get(&term.topology_key) else {
            return Err(REASON_AFFINITY.to_owned());
        };
        if !prepared
            .affinity_pairs
            .contains(&(term.topology_key.clone(), value.clone()))
        {
            pods_exist = false;
        }
    }
    // The first of a group that has affinity to itself may go anywhere with the topology.
    let first_of_group = prepared.affinity_pairs.is_empty() && prepared.affinity_self_match;
    if !pods_exist && !first_of_group {
        return Err(REASON_AFFINITY.to_owned());
    }
    for term in &pod.required_anti_affinity {
        if let Some(value) = node.labels.get(&term.topology_key)
            && prepared
                .anti_affinity_pairs
                .contains(&(term.topology_key.clone(), value.clone()))
        {
            return Err(REASON_ANTI_AFFINITY.to_owned());
        }
    }
    if !prepared.existing_anti_affinity_pairs.is_empty()
        && node.labels.iter().any(|(k, v)| {
            prepared
                .existing_anti_affinity_pairs
                .contains(&(k.clone(), v.clone()))
        })
    {
        return Err(REASON_EXISTING_ANTI_AFFINITY.to_owned());
    }
    Ok(())
}

/// All filters in kube-scheduler's order; the first that fails gives the node's reasons.
pub fn run_filters(pod: &PodInfo, prepared: &Prepared, node: &NodeInfo) -> Result<(), Vec<String>> {
    let one = |r: Result<(), String>| r.map_err(|reason| vec![reason]);
    one(node_unschedulable(&pod.pod, node))?;
    one(node_name(&pod.pod, node))?;
    one(taint_toleration(&pod.pod, node))?;
    one(node_affinity(&pod.pod, node))?;
    one(node_ports(pod, node))?;
    resources_fit(pod, node)?;
    one(topology_spread(prepared, node))?;
    one(inter_pod_affinity(pod, prepared, node))
}

/// kube-scheduler's `FitError` text: "0/N nodes are available: " then "count reason" for
/// each reason, sorted as strings, then what preemption (which skiff does not do) found.
/// With no nodes at all, kube-scheduler's "no nodes available to schedule pods".
pub fn fit_error(node_count: usize, reasons: &BTreeMap<String, usize>) -> String {
    if node_count == 0 {
        return "no nodes available to schedule pods".to_owned();
    }
    let mut message = format!("0/{node_count} nodes are available");
    let mut histogram: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    histogram.sort();
    if histogram.is_empty() {
        message.push('.');
    } else {
        message.push_str(&format!(": {}.", histogram.join(", ")));
    }
    message.push_str(&format!(
        " preemption: 0/{node_count} nodes are available: {node_count} Preemption is not helpful for scheduling."
    ));
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{container, node, pod};
    use k8s_openapi::api::core::v1::{
        Affinity, ContainerPort, NodeAffinity, NodeSelector, NodeSelectorRequirement,
        NodeSelectorTerm, PodAffinity, PodAffinityTerm, PodAntiAffinity, TopologySpreadConstraint,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::sync::Arc;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.to_owned(),
            value: (!value.is_empty()).then(|| value.to_owned()),
            effect: effect.to_owned(),
            time_added: None,
        }
    }

    fn toleration(key: &str, operator: &str, value: &str, effect: &str) -> Toleration {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Toleration {
            key: some(key),
            operator: some(operator),
            value: some(value),
            effect: some(effect),
            toleration_seconds: None,
        }
    }

    fn labelled(name: &str, labels: &[(&str, &str)]) -> NodeInfo {
        let mut n = node(name, &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]);
        let l = n.metadata.labels.get_or_insert_with(Default::default);
        for (k, v) in labels {
            l.insert((*k).to_owned(), (*v).to_owned());
        }
        NodeInfo::new(n)
    }

    fn with_labels(mut p: Pod, labels: &[(&str, &str)]) -> Pod {
        p.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        p
    }

    fn selector(key: &str, value: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            match_expressions: None,
        }
    }

    #[test]
    fn toleration_matching() {
        let t = taint("dedicated", "gpu", "NoSchedule");
        let cases = [
            (toleration("dedicated", "Equal", "gpu", "NoSchedule"), true),
            (toleration("dedicated", "", "gpu", ""), true),
            (toleration("dedicated", "Equal", "cpu", "NoSchedule"), false),
            (toleration("dedicated", "Exists", "", ""), true),
            (toleration("", "Exists", "", ""), true),
            (toleration("", "Exists", "", "NoExecute"), false),
            (toleration("other", "Exists", "", ""), false),
            (toleration("dedicated", "Bogus", "gpu", ""), false),
        ];
        for (i, (tol, expected)) in cases.iter().enumerate() {
            assert_eq!(tolerates(tol, &t), *expected, "case {i}");
        }
    }

    #[test]
    fn taints_and_unschedulable_nodes() {
        let mut tainted = labelled("n1", &[]);
        tainted.taints = vec![
            taint("soft", "", "PreferNoSchedule"),
            taint("node-role.kubernetes.io/control-plane", "", "NoSchedule"),
            taint("dedicated", "gpu", "NoExecute"),
        ];
        let plain = pod("p", vec![]);
        let mut tolerant = plain.clone();
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![toleration(
            "node-role.kubernetes.io/control-plane",
            "Exists",
            "",
            "",
        )]);
        let mut all = plain.clone();
        all.spec.as_mut().unwrap().tolerations = Some(vec![toleration("", "Exists", "", "")]);
        let cases = [
            (
                &plain,
                Err(
                    "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
                        .to_owned(),
                ),
            ),
            (
                &tolerant,
                Err("node(s) had untolerated taint {dedicated: gpu}".to_owned()),
            ),
            (&all, Ok(())),
        ];
        for (i, (p, expected)) in cases.into_iter().enumerate() {
            assert_eq!(taint_toleration(p, &tainted), expected, "case {i}");
        }
        let mut cordoned = labelled("n2", &[]);
        cordoned.unschedulable = true;
        assert_eq!(
            node_unschedulable(&plain, &cordoned),
            Err(REASON_UNSCHEDULABLE.to_owned())
        );
        assert_eq!(node_unschedulable(&all, &cordoned), Ok(()));
        assert_eq!(node_unschedulable(&plain, &tainted), Ok(()));
    }

    #[test]
    fn node_names() {
        let mut p = pod("p", vec![]);
        assert_eq!(node_name(&p, &labelled("n1", &[])), Ok(()));
        p.spec.as_mut().unwrap().node_name = Some("n2".to_owned());
        assert_eq!(node_name(&p, &labelled("n2", &[])), Ok(()));
        assert_eq!(
            node_name(&p, &labelled("n1", &[])),
            Err(REASON_NODE_NAME.to_owned())
        );
    }

    #[test]
    fn node_selector_and_affinity() {
        let ssd = labelled("n1", &[("disk", "ssd"), ("zone", "a")]);
        let hdd = labelled("n2", &[("disk", "hdd"), ("zone", "b")]);
        let mut by_selector = pod("p", vec![]);
        by_selector.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("disk".to_owned(), "ssd".to_owned())]));
        let mut by_affinity = pod("p", vec![]);
        by_affinity.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".to_owned(),
                            operator: "In".to_owned(),
                            values: Some(vec!["b".to_owned()]),
                        }]),
                        match_fields: None,
                    }],
                }),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        let reason = Err(REASON_NODE_AFFINITY.to_owned());
        let cases = [
            (&by_selector, &ssd, Ok(())),
            (&by_selector, &hdd, reason.clone()),
            (&by_affinity, &ssd, reason.clone()),
            (&by_affinity, &hdd, Ok(())),
        ];
        for (i, (p, n, expected)) in cases.into_iter().enumerate() {
            assert_eq!(node_affinity(p, n), expected, "case {i}");
        }
        assert_eq!(node_affinity(&pod("p", vec![]), &ssd), Ok(()));
    }

    #[test]
    fn host_ports() {
        let with_port = |port: i32| {
            let mut p = pod("p", vec![container(&[])]);
            p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
                container_port: 80,
                host_port: Some(port),
                ..Default::default()
            }]);
            let mut info = PodInfo::new(p);
            info.node_name = Some("n1".to_owned());
            info
        };
        let mut n = labelled("n1", &[]);
        assert_eq!(node_ports(&with_port(8080), &n), Ok(()));
        n.add_pod(Arc::new(with_port(8080)));
        assert_eq!(
            node_ports(&with_port(8080), &n),
            Err(REASON_NODE_PORTS.to_owned())
        );
        assert_eq!(node_ports(&with_port(8081), &n), Ok(()));
        n.remove_pod("default/p");
        assert_eq!(node_ports(&with_port(8080), &n), Ok(()));
    }

    #[test]
    fn resource_fit() {
        let mut n = NodeInfo::new(node(
            "n1",
            &[
                ("cpu", "1"),
                ("memory", "1Gi"),
                ("pods", "2"),
                ("example.com/dev", "1"),
            ],
        ));
        let info = |name: &str, requests: &[(&str, &str)]| {
            let mut i = PodInfo::new(pod(name, vec![container(requests)]));
            i.node_name = Some("n1".to_owned());
            i
        };
        let cases: Vec<(PodInfo, Result<(), Vec<String>>)> = vec![
            (info("a", &[("cpu", "1"), ("memory", "1Gi")]), Ok(())),
            (info("b", &[]), Ok(())),
            (
                info("c", &[("cpu", "1001m")]),
                Err(vec!["Insufficient cpu".to_owned()]),
            ),
            (
                info(
                    "d",
                    &[("cpu", "2"), ("memory", "2Gi"), ("example.com/dev", "2")],
                ),
                Err(vec![
                    "Insufficient cpu".to_owned(),
                    "Insufficient memory".to_owned(),
                    "Insufficient example.com/dev".to_owned(),
                ]),
            ),
            (
                info("e", &[("ephemeral-storage", "1")]),
                Err(vec!["Insufficient ephemeral-storage".to_owned()]),
            ),
        ];
        for (i, (p, expected)) in cases.iter().enumerate() {
            assert_eq!(&resources_fit(p, &n), expected, "case {i}");
        }
        n.add_pod(Arc::new(info("x", &[("cpu", "600m")])));
        assert_eq!(
            resources_fit(&info("y", &[("cpu", "500m")]), &n),
            Err(vec!["Insufficient cpu".to_owned()])
        );
        assert_eq!(resources_fit(&info("y", &[("cpu", "400m")]), &n), Ok(()));
        n.add_pod(Arc::new(info("z", &[])));
        assert_eq!(
            resources_fit(&info("y", &[]), &n),
            Err(vec![REASON_TOO_MANY_PODS.to_owned()])
        );
    }

    /// A snapshot of nodes `n1..` with the given zone labels, and placed pods `(node, labels)`.
    fn cluster(zones: &[&str], placed: Vec<(&str, Pod)>) -> Snapshot {
        let mut snapshot = Snapshot::new();
        for (i, zone) in zones.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let mut n = node(&name, &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]);
            if !zone.is_empty() {
                n.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert("zone".to_owned(), (*zone).to_owned());
            }
            snapshot.upsert_node(n);
        }
        for (node_name, mut p) in placed {
            p.spec.as_mut().unwrap().node_name = Some(node_name.to_owned());
            snapshot.place_pod(Arc::new(PodInfo::new(p)));
        }
        snapshot
    }

    fn evaluate(p: Pod, snapshot: &Snapshot) -> Vec<Result<(), String>> {
        let info = PodInfo::new(p);
        let prepared = Prepared::new(&info, snapshot);
        snapshot
            .nodes()
            .map(|n| {
                topology_spread(&prepared, n)?;
                inter_pod_affinity(&info, &prepared, n)
            })
            .collect()
    }

    fn affinity_term(key: &str, value: &str, topology_key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(selector(key, value)),
            topology_key: topology_key.to_owned(),
            ..Default::default()
        }
    }

    fn with_affinity(p: Pod, affinity: Vec<PodAffinityTerm>, anti: Vec<PodAffinityTerm>) -> Pod {
        let mut p = p;
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: (!affinity.is_empty()).then_some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(affinity),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            pod_anti_affinity: (!anti.is_empty()).then_some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(anti),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            node_affinity: None,
        });
        p
    }

    #[test]
    fn pod_affinity_and_anti_affinity() {
        let web = |name: &str| with_labels(pod(name, vec![]), &[("app", "web")]);
        let db = |name: &str| with_labels(pod(name, vec![]), &[("app", "db")]);
        let snapshot = cluster(&["a", "a", "b"], vec![("n1", web("w1")), ("n3", db("d1"))]);
        let ok = Ok(());
        let anti = Err(REASON_ANTI_AFFINITY.to_owned());
        let affinity = Err(REASON_AFFINITY.to_owned());
        let existing = Err(REASON_EXISTING_ANTI_AFFINITY.to_owned());
        let host = "kubernetes.io/hostname";
        let cases = vec![
            // Anti-affinity to web per host: not n1.
            (
                with_affinity(web("w2"), vec![], vec![affinity_term("app", "web", host)]),
                vec![anti.clone(), ok.clone(), ok.clone()],
            ),
            // Anti-affinity per zone: zone a is taken.
            (
                with_affinity(web("w2"), vec![], vec![affinity_term("app", "web", "zone")]),
                vec![anti.clone(), anti.clone(), ok.clone()],
            ),
            // Affinity to db per zone: zone b only.
            (
                with_affinity(
                    pod("p", vec![]),
                    vec![affinity_term("app", "db", "zone")],
                    vec![],
                ),
                vec![affinity.clone(), affinity.clone(), ok.clone()],
            ),
            // Affinity to pods that do not exist: nowhere...
            (
                with_affinity(
                    pod("p", vec![]),
                    vec![affinity_term("app", "cache", "zone")],
                    vec![],
                ),
                vec![affinity.clone(), affinity.clone(), affinity.clone()],
            ),
            // ...unless the pod matches itself (the first of a group).
            (
                with_affinity(
                    with_labels(pod("p", vec![]), &[("app", "cache")]),
                    vec![affinity_term("app", "cache", "zone")],
                    vec![],
                ),
                vec![ok.clone(), ok.clone(), ok.clone()],
            ),
            // Affinity to a topology key no node has.
            (
                with_affinity(
                    pod("p", vec![]),
                    vec![affinity_term("app", "db", "rack")],
                    vec![],
                ),
                vec![affinity.clone(), affinity.clone(), affinity.clone()],
            ),
            // Other namespaces do not count.
            (
                with_affinity(
                    web("w2"),
                    vec![],
                    vec![PodAffinityTerm {
                        namespaces: Some(vec!["other".to_owned()]),
                        ..affinity_term("app", "web", host)
                    }],
                ),
                vec![ok.clone(), ok.clone(), ok.clone()],
            ),
        ];
        for (i, (p, expected)) in cases.into_iter().enumerate() {
            assert_eq!(evaluate(p, &snapshot), expected, "case {i}");
        }
        // A placed pod's anti-affinity keeps matching pods out of its zone.
        let guarded = cluster(
            &["a", "a", "b"],
            vec![(
                "n3",
                with_affinity(db("d1"), vec![], vec![affinity_term("app", "web", "zone")]),
            )],
        );
        assert_eq!(
            evaluate(web("w1"), &guarded),
            vec![ok.clone(), ok.clone(), existing]
        );
        assert_eq!(
            evaluate(db("d2"), &guarded),
            vec![ok.clone(), ok.clone(), ok]
        );
    }

    fn spread(p: Pod, key: &str, max_skew: i32, when: &str) -> Pod {
        let mut p = with_labels(p, &[("app", "web")]);
        p.spec.as_mut().unwrap().topology_spread_constraints =
            Some(vec![TopologySpreadConstraint {
                label_selector: Some(selector("app", "web")),
                max_skew,
                topology_key: key.to_owned(),
                when_unsatisfiable: when.to_owned(),
                ..Default::default()
            }]);
        p
    }

    #[test]
    fn topology_spread_filter() {
        let web = |name: &str| with_labels(pod(name, vec![]), &[("app", "web")]);
        let snapshot = cluster(
            &["a", "a", "b", ""],
            vec![("n1", web("w1")), ("n2", web("w2")), ("n3", web("w3"))],
        );
        let ok = Ok(());
        let skew = Err(REASON_SPREAD.to_owned());
        let label = Err(REASON_SPREAD_LABEL.to_owned());
        // zone a: 2, zone b: 1 → with max skew 1, only zone b.
        assert_eq!(
            evaluate(
                spread(pod("p", vec![]), "zone", 1, "DoNotSchedule"),
                &snapshot
            ),
            vec![skew.clone(), skew.clone(), ok.clone(), label.clone()]
        );
        assert_eq!(
            evaluate(
                spread(pod("p", vec![]), "zone", 2, "DoNotSchedule"),
                &snapshot
            ),
            vec![ok.clone(), ok.clone(), ok.clone(), label]
        );
        // Per host: every labelled host has 1 except n4 with 0 → n4 only... all have 1 but n4.
        assert_eq!(
            evaluate(
                spread(
                    pod("p", vec![]),
                    "kubernetes.io/hostname",
                    1,
                    "DoNotSchedule"
                ),
                &snapshot
            ),
            vec![skew.clone(), skew.clone(), skew, ok.clone()]
        );
        // ScheduleAnyway constraints never filter.
        assert_eq!(
            evaluate(
                spread(pod("p", vec![]), "zone", 1, "ScheduleAnyway"),
                &snapshot
            ),
            vec![ok.clone(), ok.clone(), ok.clone(), ok]
        );
    }

    #[test]
    fn filters_run_in_order_and_fit_errors_read_like_kube() {
        let mut tainted = labelled("n1", &[]);
        tainted.taints = vec![taint("dedicated", "gpu", "NoSchedule")];
        tainted.unschedulable = true;
        let info = PodInfo::new(pod("p", vec![container(&[("cpu", "100")])]));
        let prepared = Prepared::default();
        assert_eq!(
            run_filters(&info, &prepared, &tainted),
            Err(vec![REASON_UNSCHEDULABLE.to_owned()])
        );
        tainted.unschedulable = false;
        assert_eq!(
            run_filters(&info, &prepared, &tainted),
            Err(vec![
                "node(s) had untolerated taint {dedicated: gpu}".to_owned()
            ])
        );
        assert_eq!(
            run_filters(&info, &prepared, &labelled("n2", &[])),
            Err(vec!["Insufficient cpu".to_owned()])
        );
        let reasons = BTreeMap::from([
            ("Insufficient cpu".to_owned(), 1),
            (
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
                    .to_owned(),
                2,
            ),
        ]);
        assert_eq!(
            fit_error(3, &reasons),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: \
             3 Preemption is not helpful for scheduling."
        );
        // Sorted as strings, count included (as kube does).
        let reasons = BTreeMap::from([("b".to_owned(), 10), ("a".to_owned(), 2)]);
        assert!(fit_error(12, &reasons).starts_with("0/12 nodes are available: 10 b, 2 a."));
        assert_eq!(
            fit_error(0, &BTreeMap::new()),
            "no nodes available to schedule pods"
        );
    }
}

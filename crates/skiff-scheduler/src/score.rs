//! Scores: how good each feasible node is for a pod, as kube-scheduler's default score
//! plugins compute them (0–100 per plugin after normalization), summed with [`Weights`].
//! Plugins: least allocated (`NodeResourcesFit`), balanced allocation, image locality,
//! preferred node affinity, `PreferNoSchedule` taints and topology spread (`ScheduleAnyway`).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::filter::{spread_eligible, spread_selector, tolerates};
use crate::selector::{Labels, label_selector_matches, node_selector_term_matches};
use crate::snapshot::{NodeInfo, PodInfo, Snapshot, normalize_image};

/// The highest score a plugin gives.
pub const MAX_NODE_SCORE: i64 = 100;

/// The hostname label: its domains are single nodes.
const HOSTNAME: &str = "kubernetes.io/hostname";

/// How much each score plugin counts (kube-scheduler's defaults; 0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub least_allocated: i64,
    pub balanced_allocation: i64,
    pub image_locality: i64,
    pub node_affinity: i64,
    pub taint_toleration: i64,
    pub topology_spread: i64,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            least_allocated: 1,
            balanced_allocation: 1,
            image_locality: 1,
            node_affinity: 2,
            taint_toleration: 3,
            topology_spread: 2,
        }
    }
}

/// `NodeResourcesFit` with the `LeastAllocated` strategy: the share of CPU and memory left
/// after placing the pod (scoring defaults for containers without requests), averaged.
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let free = |requested: i64, capacity: i64| {
        if capacity <= 0 || requested > capacity {
            0
        } else {
            (capacity - requested) * MAX_NODE_SCORE / capacity
        }
    };
    let cpu = free(
        node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let memory = free(
        node.non_zero_requested.memory + pod.non_zero_requests.memory,
        node.allocatable.memory,
    );
    (cpu + memory) / 2
}

/// `NodeResourcesBalancedAllocation`: nodes whose CPU and memory would be used in similar
/// proportions score higher. Pods that request neither score 0 everywhere.
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return 0;
    }
    let fraction = |requested: i64, capacity: i64| {
        if capacity <= 0 {
            1.0
        } else {
            (requested as f64 / capacity as f64).min(1.0)
        }
    };
    let cpu = fraction(
        node.requested.milli_cpu + pod.requests.milli_cpu,
        node.allocatable.milli_cpu,
    );
    let memory = fraction(
        node.requested.memory + pod.requests.memory,
        node.allocatable.memory,
    );
    let std = (cpu - memory).abs() / 2.0;
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

/// `ImageLocality`: the sizes of the pod's images already on the node, each scaled by the
/// share of nodes that have it, between 23 MB and 1000 MB per container.
pub fn image_locality(pod: &Pod, node: &NodeInfo, snapshot: &Snapshot, total_nodes: usize) -> i64 {
    const MB: i64 = 1024 * 1024;
    const MIN_THRESHOLD: i64 = 23 * MB;
    const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    let containers: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .collect();
    if containers.is_empty() || total_nodes == 0 {
        return 0;
    }
    let mut sum: i64 = 0;
    for container in &containers {
        let Some(image) = container.image.as_deref() else {
            continue;
        };
        let image = normalize_image(image);
        if let Some(size) = node.images.get(&image) {
            let spread = snapshot.nodes_with_image(&image) as f64 / total_nodes as f64;
            sum = sum.saturating_add((*size as f64 * spread) as i64);
        }
    }
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers.len() as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max_threshold);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

/// `NodeAffinity` (score, raw): the summed weights of the preferred terms the node matches.
pub fn node_affinity(pod: &Pod, node: &NodeInfo) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|term| term.weight != 0)
        .filter(|term| node_selector_term_matches(&term.preference, &node.name, &node.labels))
        .map(|term| i64::from(term.weight))
        .sum()
}

/// `TaintToleration` (score, raw): how many `PreferNoSchedule` taints the pod does not
/// tolerate (fewer is better; normalized in reverse).
pub fn taint_toleration(pod: &Pod, node: &NodeInfo) -> i64 {
    let tolerations: Vec<_> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        })
        .collect();
    node.taints
        .iter()
        .filter(|taint| taint.effect == "PreferNoSchedule")
        .filter(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
        .count() as i64
}

/// kube's `DefaultNormalizeScore`: scale so the best is `MAX_NODE_SCORE` (or, reversed, so
/// the highest raw score gets 0).
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max <= 0 {
        if reverse {
            scores.fill(MAX_NODE_SCORE);
        }
        return;
    }
    for score in scores.iter_mut() {
        let scaled = MAX_NODE_SCORE * *score / max;
        *score = if reverse {
            MAX_NODE_SCORE - scaled
        } else {
            scaled
        };
    }
}

/// One `ScheduleAnyway` constraint prepared for scoring.
struct SpreadConstraint<'a> {
    constraint: &'a TopologySpreadConstraint,
    selector: Option<LabelSelector>,
    /// Matching pods per domain (not used for the hostname key: its domain is the node).
    counts: HashMap<String, i64>,
    /// `ln(domains + 2)`: constraints over more domains weigh more.
    weight: f64,
}

/// `PodTopologySpread` (score): feasible nodes in crowded domains score lower. Returns one
/// normalized score per feasible node; all `MAX_NODE_SCORE` when there are no
/// `ScheduleAnyway` constraints (a constant adds nothing to the ranking).
pub fn topology_spread(pod: &PodInfo, snapshot: &Snapshot, feasible: &[&NodeInfo]) -> Vec<i64> {
    let constraints: Vec<&TopologySpreadConstraint> = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == "ScheduleAnyway")
        .collect();
    if constraints.is_empty() {
        return vec![MAX_NODE_SCORE; feasible.len()];
    }
    let has_keys = |labels: &Labels| {
        constraints
            .iter()
            .all(|c| labels.contains_key(&c.topology_key))
    };
    let ignored: Vec<bool> = feasible.iter().map(|n| !has_keys(&n.labels)).collect();
    let counted_nodes = ignored.iter().filter(|i| !**i).count();
    let matching = |node: &NodeInfo, selector: &Option<LabelSelector>| -> i64 {
        let Some(selector) = selector else {
            return 0;
        };
        node.pods
            .values()
            .filter(|p| {
                p.namespace == pod.namespace
                    && !p.terminating
                    && p.key != pod.key
                    && label_selector_matches(selector, &p.labels)
            })
            .count() as i64
    };
    let mut prepared: Vec<SpreadConstraint> = constraints
        .iter()
        .map(|constraint| {
            let mut counts = HashMap::new();
            if constraint.topology_key != HOSTNAME {
                for (node, ignored) in feasible.iter().zip(&ignored) {
                    if !ignored {
                        counts.insert(node.labels[&constraint.topology_key].clone(), 0);
                    }
                }
            }
            let domains = if constraint.topology_key == HOSTNAME {
                counted_nodes
            } else {
                counts.len()
            };
            SpreadConstraint {
                constraint,
                selector: spread_selector(constraint, &pod.labels),
                counts,
                weight: ((domains + 2) as f64).ln(),
            }
        })
        .collect();
    for node in snapshot.nodes() {
        if !has_keys(&node.labels) {
            continue;
        }
        for c in &mut prepared {
            if c.constraint.topology_key == HOSTNAME
                || !spread_eligible(&pod.pod, node, c.constraint)
            {
                continue;
            }
            if let Some(count) = c.counts.get_mut(&node.labels[&c.constraint.topology_key]) {
                *count += matching(node, &c.selector);
            }
        }
    }
    let raw: Vec<Option<i64>> = feasible
        .iter()
        .zip(&ignored)
        .map(|(node, ignored)| {
            if *ignored {
                return None;
            }
            let mut score = 0.0;
            for c in &prepared {
                let count = if c.constraint.topology_key == HOSTNAME {
                    matching(node, &c.selector)
                } else {
                    c.counts
                        .get(&node.labels[&c.constraint.topology_key])
                        .copied()
                        .unwrap_or(0)
                };
                score += count as f64 * c.weight + f64::from(c.constraint.max_skew - 1);
            }
            Some(score.round() as i64)
        })
        .collect();
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0);
    raw.into_iter()
        .map(|score| match score {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

/// The weighted total score of each feasible node (same order as `feasible`).
pub fn score_nodes(
    pod: &PodInfo,
    snapshot: &Snapshot,
    feasible: &[&NodeInfo],
    weights: &Weights,
) -> Vec<i64> {
    let mut totals = vec![0_i64; feasible.len()];
    let mut add = |weight: i64, scores: Vec<i64>| {
        if weight != 0 {
            for (total, score) in totals.iter_mut().zip(scores) {
                *total += weight * score;
            }
        }
    };
    let each = |f: &dyn Fn(&NodeInfo) -> i64| feasible.iter().map(|n| f(n)).collect::<Vec<_>>();
    if weights.least_allocated != 0 {
        add(weights.least_allocated, each(&|n| least_allocated(pod, n)));
    }
    if weights.balanced_allocation != 0 {
        add(
            weights.balanced_allocation,
            each(&|n| balanced_allocation(pod, n)),
        );
    }
    if weights.image_locality != 0 {
        let total_nodes = snapshot.node_count();
        add(
            weights.image_locality,
            each(&|n| image_locality(&pod.pod, n, snapshot, total_nodes)),
        );
    }
    if weights.node_affinity != 0 {
        let mut scores = each(&|n| node_affinity(&pod.pod, n));
        normalize(&mut scores, false);
        add(weights.node_affinity, scores);
    }
    if weights.taint_toleration != 0 {
        let mut scores = each(&|n| taint_toleration(&pod.pod, n));
        normalize(&mut scores, true);
        add(weights.taint_toleration, scores);
    }
    if weights.topology_spread != 0 {
        add(
            weights.topology_spread,
            topology_spread(pod, snapshot, feasible),
        );
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{container, node, pod};
    use k8s_openapi::api::core::v1::{
        Affinity, ContainerImage, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm,
        PreferredSchedulingTerm, Taint, Toleration,
    };
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn info(requests: &[(&str, &str)]) -> PodInfo {
        PodInfo::new(pod("p", vec![container(requests)]))
    }

    fn node_with(allocatable: &[(&str, &str)], placed: &[&[(&str, &str)]]) -> NodeInfo {
        let mut n = NodeInfo::new(node("n1", allocatable));
        for (i, requests) in placed.iter().enumerate() {
            let mut p = PodInfo::new(pod(&format!("x{i}"), vec![container(requests)]));
            p.key = format!("default/x{i}");
            n.add_pod(Arc::new(p));
        }
        n
    }

    #[test]
    fn least_allocated_scores() {
        let cases: Vec<(PodInfo, NodeInfo, i64)> = vec![
            // (4000-1000)/4000 = 75, (8Gi-2Gi)/8Gi = 75.
            (
                info(&[("cpu", "1"), ("memory", "2Gi")]),
                node_with(&[("cpu", "4"), ("memory", "8Gi")], &[]),
                75,
            ),
            // Existing requests count: cpu (4000-3000)/4000=25, memory (8-4)/8=50 → 37.
            (
                info(&[("cpu", "1"), ("memory", "2Gi")]),
                node_with(
                    &[("cpu", "4"), ("memory", "8Gi")],
                    &[&[("cpu", "2"), ("memory", "2Gi")]],
                ),
                37,
            ),
            // No requests: 100m and 200Mi assumed → cpu 97, memory (1024-200)/1024 = 80 → 88.
            (
                info(&[]),
                node_with(&[("cpu", "4"), ("memory", "1Gi")], &[]),
                88,
            ),
            // Over capacity and no capacity score 0.
            (
                info(&[("cpu", "8"), ("memory", "1Gi")]),
                node_with(&[("cpu", "4")], &[]),
                0,
            ),
        ];
        for (i, (p, n, expected)) in cases.iter().enumerate() {
            assert_eq!(least_allocated(p, n), *expected, "case {i}");
        }
    }

    #[test]
    fn balanced_allocation_scores() {
        let n = node_with(&[("cpu", "4"), ("memory", "8Gi")], &[]);
        let cases = [
            (info(&[("cpu", "2"), ("memory", "4Gi")]), 100),
            // cpu 1.0, memory 0.0 → std 0.5 → 50.
            (info(&[("cpu", "4")]), 50),
            // cpu 0.5, memory 0.25 → std 0.125 → 87.
            (info(&[("cpu", "2"), ("memory", "2Gi")]), 87),
            (info(&[]), 0),
        ];
        for (i, (p, expected)) in cases.iter().enumerate() {
            assert_eq!(balanced_allocation(p, &n), *expected, "case {i}");
        }
    }

    #[test]
    fn image_locality_scores() {
        let mut snapshot = Snapshot::new();
        let mut with_image = node("n1", &[]);
        with_image.status.as_mut().unwrap().images = Some(vec![ContainerImage {
            names: Some(vec!["docker.io/library/big:1".to_owned()]),
            size_bytes: Some(500 * 1024 * 1024),
        }]);
        snapshot.upsert_node(with_image.clone());
        snapshot.upsert_node(node("n2", &[]));
        let mut p = pod("p", vec![container(&[])]);
        p.spec.as_mut().unwrap().containers[0].image = Some("big:1".to_owned());
        let n1 = NodeInfo::new(with_image);
        let n2 = NodeInfo::new(node("n2", &[]));
        // 500 MiB × ½ of the nodes = 250 MiB → 100 × (250-23)/(1000-23) = 23.
        assert_eq!(image_locality(&p, &n1, &snapshot, 2), 23);
        assert_eq!(image_locality(&p, &n2, &snapshot, 2), 0);
        assert_eq!(
            image_locality(&pod("q", vec![container(&[])]), &n1, &snapshot, 2),
            0
        );
    }

    #[test]
    fn node_affinity_and_taint_scores_normalize() {
        let mut p = pod("p", vec![]);
        let preferred = |weight: i32, zone: &str| PreferredSchedulingTerm {
            weight,
            preference: NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: "zone".to_owned(),
                    operator: "In".to_owned(),
                    values: Some(vec![zone.to_owned()]),
                }]),
                match_fields: None,
            },
        };
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    preferred(10, "a"),
                    preferred(30, "b"),
                ]),
                required_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        let zone = |z: &str| {
            let mut n = NodeInfo::new(node("n", &[]));
            n.labels.insert("zone".to_owned(), z.to_owned());
            n
        };
        let mut scores: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|z| node_affinity(&p, &zone(z)))
            .collect();
        assert_eq!(scores, vec![10, 30, 0]);
        normalize(&mut scores, false);
        assert_eq!(scores, vec![33, 100, 0]);

        let soft = |n: usize| {
            let mut info = NodeInfo::new(node("n", &[]));
            info.taints = (0..n)
                .map(|i| Taint {
                    key: format!("t{i}"),
                    effect: "PreferNoSchedule".to_owned(),
                    ..Default::default()
                })
                .collect();
            info
        };
        let mut tolerant = pod("p", vec![]);
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("t0".to_owned()),
            operator: Some("Exists".to_owned()),
            ..Default::default()
        }]);
        let plain = pod("p", vec![]);
        assert_eq!(taint_toleration(&plain, &soft(2)), 2);
        assert_eq!(taint_toleration(&tolerant, &soft(2)), 1);
        let mut scores: Vec<i64> = [0, 1, 2]
            .iter()
            .map(|n| taint_toleration(&plain, &soft(*n)))
            .collect();
        normalize(&mut scores, true);
        assert_eq!(scores, vec![100, 50, 0]);
        let mut none = vec![0, 0];
        normalize(&mut none, true);
        assert_eq!(none, vec![100, 100]);
    }

    #[test]
    fn topology_spread_prefers_empty_domains() {
        let mut snapshot = Snapshot::new();
        for (name, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b"), ("n4", "")] {
            let mut n = node(name, &[("cpu", "4"), ("pods", "10")]);
            if !zone.is_empty() {
                n.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert("zone".to_owned(), zone.to_owned());
            }
            snapshot.upsert_node(n);
        }
        let web = |name: &str, node: &str| {
            let mut p = pod(name, vec![]);
            p.metadata.labels = Some(BTreeMap::from([("app".to_owned(), "web".to_owned())]));
            p.spec.as_mut().unwrap().node_name = Some(node.to_owned());
            Arc::new(PodInfo::new(p))
        };
        snapshot.place_pod(web("w1", "n1"));
        snapshot.place_pod(web("w2", "n1"));
        snapshot.place_pod(web("w3", "n3"));
        let spread = |key: &str| {
            let mut p = pod("p", vec![]);
            p.metadata.labels = Some(BTreeMap::from([("app".to_owned(), "web".to_owned())]));
            p.spec.as_mut().unwrap().topology_spread_constraints =
                Some(vec![TopologySpreadConstraint {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
                        match_expressions: None,
                    }),
                    max_skew: 1,
                    topology_key: key.to_owned(),
                    when_unsatisfiable: "ScheduleAnyway".to_owned(),
                    ..Default::default()
                }]);
            PodInfo::new(p)
        };
        let feasible: Vec<&NodeInfo> = snapshot.nodes().collect();
        // Zones: a has 2, b has 1; weight ln(4). raw a = 2.77 → 3, b = 1.39 → 1; n4 ignored.
        // normalized: a = 100 × (3+1-3)/3 = 33, b = 100 × (3+1-1)/3 = 100.
        assert_eq!(
            topology_spread(&spread("zone"), &snapshot, &feasible),
            vec![33, 33, 100, 0]
        );
        // Hosts: n1 2, n2 0, n3 1, n4 0; weight ln(6) = 1.79: raw 4, 0, 2, 0.
        assert_eq!(
            topology_spread(&spread(HOSTNAME), &snapshot, &feasible),
            vec![0, 100, 50, 100]
        );
        assert_eq!(
            topology_spread(&info(&[]), &snapshot, &feasible),
            vec![100; 4]
        );
    }

    #[test]
    fn totals_are_weighted_sums() {
        let mut snapshot = Snapshot::new();
        snapshot.upsert_node(node("n1", &[("cpu", "4"), ("memory", "8Gi")]));
        snapshot.upsert_node(node("n2", &[("cpu", "8"), ("memory", "16Gi")]));
        let p = info(&[("cpu", "2"), ("memory", "4Gi")]);
        let feasible: Vec<&NodeInfo> = snapshot.nodes().collect();
        let only_least = Weights {
            least_allocated: 1,
            balanced_allocation: 0,
            image_locality: 0,
            node_affinity: 0,
            taint_toleration: 0,
            topology_spread: 0,
        };
        assert_eq!(
            score_nodes(&p, &snapshot, &feasible, &only_least),
            vec![50, 75]
        );
        let totals = score_nodes(&p, &snapshot, &feasible, &Weights::default());
        // + balanced 100 each, image 0, affinity 0, taints 3×100, spread 2×100.
        assert_eq!(totals, vec![50 + 100 + 300 + 200, 75 + 100 + 300 + 200]);
    }
}

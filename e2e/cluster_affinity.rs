//! End to end: required pod anti-affinity in a `skiff server --simulate-nodes 3` cluster,
//! driven by kubectl. No conformance test covers inter-pod anti-affinity; this follows
//! kube-scheduler's `InterPodAffinity` filter and its `FailedScheduling` wording.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{eventually, kubectl, ok, write};

const SPREAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: spread
spec:
  replicas: 3
  selector:
    matchLabels: {app: spread}
  template:
    metadata:
      labels: {app: spread}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchLabels: {app: spread}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: nginx
        image: nginx
"#;

/// (pod name, node name, phase) of the Deployment's pods.
fn pods(kc: &Path, cache: &Path) -> Vec<(String, String, String)> {
    let path =
        r#"jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{"\n"}{end}"#;
    let listed = kubectl(
        "1.33",
        kc,
        cache,
        &["get", "pods", "-l", "app=spread", "-o", path],
    );
    listed
        .stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [name, phase] => Some((name.to_owned(), String::new(), phase.to_owned())),
                [name, node, phase] => Some((name.to_owned(), node.to_owned(), phase.to_owned())),
                _ => None,
            }
        })
        .collect()
}

/// A Deployment whose pods require not to share a node lands one pod on each of three
/// nodes; a fourth replica stays Pending, and kube-scheduler's words say why.
#[test]
fn required_pod_anti_affinity_spreads_pods_one_per_node() {
    let (dir, cache, server) = support::start_server_with(&["--simulate-nodes", "3"]);
    let kc = &server.kubeconfig;
    let file = write(dir.path(), "spread.yaml", SPREAD);
    ok(
        kubectl("1.33", kc, &cache, &["apply", "-f", &file]),
        "apply deployment",
    );
    eventually(
        Duration::from_secs(120),
        "three Running pods on three nodes",
        || {
            let pods = pods(kc, &cache);
            let mut nodes: Vec<&str> = pods.iter().map(|(_, node, _)| node.as_str()).collect();
            nodes.sort_unstable();
            nodes.dedup();
            pods.len() == 3
                && pods.iter().all(|(_, _, phase)| phase == "Running")
                && nodes.len() == 3
                && !nodes.contains(&"")
        },
    );

    let scale = ["scale", "deployment", "spread", "--replicas=4"];
    ok(kubectl("1.33", kc, &cache, &scale), "scale to 4");
    let mut pending = String::new();
    eventually(Duration::from_secs(60), "a fourth, Pending pod", || {
        let pods = pods(kc, &cache);
        match pods.iter().find(|(_, node, _)| node.is_empty()) {
            Some((name, _, phase)) if pods.len() == 4 && phase == "Pending" => {
                pending = name.clone();
                true
            }
            _ => false,
        }
    });
    let expected = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.";
    eventually(
        Duration::from_secs(60),
        "a FailedScheduling event naming the anti-affinity rule",
        || {
            let described = kubectl("1.33", kc, &cache, &["describe", "pod", &pending]).stdout;
            described.contains("FailedScheduling") && described.contains(expected)
        },
    );
    let condition = r#"jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}"#;
    let reason = kubectl(
        "1.33",
        kc,
        &cache,
        &["get", "pod", &pending, "-o", condition],
    );
    assert_eq!(reason.stdout, "Unschedulable");
    // Still one pod per node.
    let placed: Vec<String> = pods(kc, &cache)
        .into_iter()
        .filter(|(_, node, _)| !node.is_empty())
        .map(|(_, node, _)| node)
        .collect();
    assert_eq!(placed.len(), 3, "{placed:?}");
    server.stop();
}

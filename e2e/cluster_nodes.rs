//! End to end: node health and what follows from it, Services' endpoints and disruption
//! budgets, in a `skiff server --simulate-nodes N` cluster (plus a separate `skiff agent`
//! process as a node that can die), driven by kubectl.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{KUBECTL_MINORS, eventually, kubectl, ok, write};

/// A `skiff agent --simulate 1` process, killed (SIGKILL: the kubelet just vanishes) on drop.
struct AgentProcess(Child);

impl AgentProcess {
    fn start(kubeconfig: &Path) -> AgentProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .args([
                "agent",
                "--simulate",
                "1",
                "--name-prefix",
                "extra-",
                "--first-index",
                "10",
            ])
            // Renew every second: well inside the server's 5 s grace period.
            .args(["--node-lease-duration-seconds", "4", "--kubeconfig"])
            .arg(kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start skiff agent");
        AgentProcess(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `name status` of every node.
fn node_statuses(kc: &Path, cache: &Path) -> Vec<(String, String)> {
    kubectl("1.33", kc, cache, &["get", "nodes", "--no-headers"])
        .stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// `(name, node)` of the deployment's pods that are not being deleted and are Running.
fn running_pods(kc: &Path, cache: &Path, app: &str) -> Vec<(String, String)> {
    let template = "{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{\"\\n\"}{end}";
    kubectl(
        "1.33",
        kc,
        cache,
        &[
            "get",
            "pods",
            "-l",
            &format!("app={app}"),
            "-o",
            &format!("jsonpath={template}"),
        ],
    )
    .stdout
    .lines()
    .filter_map(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        (words.len() == 3 && words[2] == "Running")
            .then(|| (words[0].to_owned(), words[1].to_owned()))
    })
    .collect()
}

const TOLERATING_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fragile
spec:
  replicas: 2
  selector:
    matchLabels: {app: fragile}
  template:
    metadata:
      labels: {app: fragile}
    spec:
      tolerations:
      - key: node.kubernetes.io/unreachable
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 5
      containers:
      - name: app
        image: nginx
"#;

/// Conformance: [sig-node] NoExecuteTaintManager Multiple Pods [Serial] evicts pods with
/// minTolerationSeconds [Disruptive] — with the taint the node lifecycle controller puts on a
/// node whose kubelet died: a stopped simulated node's pods are recreated elsewhere.
#[test]
fn a_stopped_node_goes_not_ready_and_its_pods_are_recreated_elsewhere() {
    let (dir, cache, server) =
        support::start_server_with(&["--simulate-nodes", "2", "--node-monitor-grace-period", "5s"]);
    let kc = &server.kubeconfig;
    let mut agent = AgentProcess::start(kc);
    eventually(Duration::from_secs(60), "3 Ready nodes", || {
        let nodes = node_statuses(kc, &cache);
        nodes.len() == 3 && nodes.iter().all(|(_, s)| s == "Ready")
    });
    // Healthy nodes stay Ready past the grace period (their leases are renewed in time).
    std::thread::sleep(Duration::from_secs(7));
    assert!(node_statuses(kc, &cache).iter().all(|(_, s)| s == "Ready"));
    for minor in KUBECTL_MINORS {
        let taints = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["get", "node", "extra-10", "-o", "jsonpath={.spec.taints}"],
            ),
            "get node",
        );
        assert!(taints.trim().is_empty(), "{minor}: {taints}");
    }

    // All pods on extra-10: the simulated nodes are cordoned while they are placed.
    ok(
        kubectl("1.33", kc, &cache, &["cordon", "sim-0", "sim-1"]),
        "cordon",
    );
    let manifest = write(dir.path(), "fragile.yaml", TOLERATING_DEPLOYMENT);
    ok(
        kubectl("1.33", kc, &cache, &["apply", "-f", &manifest]),
        "apply",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["rollout", "status", "deployment/fragile", "--timeout=120s"],
        ),
        "rollout status",
    );
    let placed = running_pods(kc, &cache, "fragile");
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert!(
        placed.iter().all(|(_, node)| node == "extra-10"),
        "{placed:?}"
    );
    ok(
        kubectl("1.33", kc, &cache, &["uncordon", "sim-0", "sim-1"]),
        "uncordon",
    );

    agent.kill();
    let killed = Instant::now();
    eventually(Duration::from_secs(60), "extra-10 NotReady", || {
        node_statuses(kc, &cache)
            .iter()
            .any(|(name, status)| name == "extra-10" && status == "NotReady")
    });
    let taints = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "node",
                "extra-10",
                "-o",
                "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
            ],
        ),
        "taints",
    );
    assert!(
        taints.contains("node.kubernetes.io/unreachable:NoSchedule")
            && taints.contains("node.kubernetes.io/unreachable:NoExecute"),
        "{taints}"
    );
    let ready = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "node",
                "extra-10",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}",
            ],
        ),
        "ready condition",
    );
    assert_eq!(ready.trim(), "Unknown NodeStatusUnknown");
    // After the 5 s they tolerate it, the pods are deleted and the Deployment replaces them
    // on the nodes that are left.
    eventually(
        Duration::from_secs(120),
        "the pods recreated on the other nodes",
        || {
            let pods = running_pods(kc, &cache, "fragile");
            pods.len() == 2 && pods.iter().all(|(_, node)| node.starts_with("sim-"))
        },
    );
    assert!(
        killed.elapsed() >= Duration::from_secs(5),
        "evicted before tolerationSeconds"
    );
    let described = ok(
        kubectl("1.33", kc, &cache, &["describe", "node", "extra-10"]),
        "describe",
    );
    assert!(
        described.contains("node.kubernetes.io/unreachable:NoExecute"),
        "{described}"
    );
    for minor in KUBECTL_MINORS {
        let nodes = ok(kubectl(minor, kc, &cache, &["get", "nodes"]), "get nodes");
        assert!(
            nodes
                .lines()
                .any(|l| l.starts_with("extra-10") && l.contains("NotReady")),
            "{minor}: {nodes}"
        );
    }
    server.stop();
}

/// Conformance: [sig-network] EndpointSlice should create Endpoints and EndpointSlices for
/// Pods matching a Service; [sig-apps] DisruptionController should observe
/// PodDisruptionBudget status updated — through `kubectl expose`, `get endpoints`,
/// `get endpointslices`, `describe svc`, `scale` and `get pdb`.
#[test]
fn exposed_deployments_get_endpoints_slices_and_budget_status() {
    let (_dir, cache, server) = support::start_server_with(&["--simulate-nodes", "2"]);
    let kc = &server.kubeconfig;
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx",
                "--replicas=2",
                "--port=80",
            ],
        ),
        "create deployment",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "expose",
                "deployment",
                "web",
                "--port=8080",
                "--target-port=80",
            ],
        ),
        "expose",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["rollout", "status", "deployment/web", "--timeout=120s"],
        ),
        "rollout status",
    );
    let pod_ips = |kc: &Path| -> Vec<String> {
        let mut ips: Vec<String> = kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].status.podIP}",
            ],
        )
        .stdout
        .split_whitespace()
        .map(str::to_owned)
        .collect();
        ips.sort();
        ips
    };
    let endpoint_ips = |kc: &Path| -> Vec<String> {
        let mut ips: Vec<String> = kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "endpoints",
                "web",
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ],
        )
        .stdout
        .split_whitespace()
        .map(str::to_owned)
        .collect();
        ips.sort();
        ips
    };
    let check_replicas = |count: usize| {
        eventually(
            Duration::from_secs(120),
            &format!("{count} ready endpoints"),
            || {
                let ips = endpoint_ips(kc);
                ips.len() == count && ips == pod_ips(kc)
            },
        );
        let ips = endpoint_ips(kc);
        for minor in KUBECTL_MINORS {
            let endpoints = ok(
                kubectl(minor, kc, &cache, &["get", "endpoints", "web"]),
                "get endpoints",
            );
            assert!(
                endpoints.contains(&format!("{}:80", ips[0])),
                "{minor}: {endpoints}"
            );
            let slices = ok(
                kubectl(
                    minor,
                    kc,
                    &cache,
                    &[
                        "get",
                        "endpointslices",
                        "-l",
                        "kubernetes.io/service-name=web",
                    ],
                ),
                "get endpointslices",
            );
            assert!(
                slices.contains("IPv4") && slices.contains("80"),
                "{minor}: {slices}"
            );
            for ip in ips.iter().take(3) {
                assert!(slices.contains(ip.as_str()), "{minor}: {ip} in {slices}");
            }
        }
        let described = ok(
            kubectl("1.33", kc, &cache, &["describe", "svc", "web"]),
            "describe svc",
        );
        let line = described
            .lines()
            .find(|l| l.starts_with("Endpoints:"))
            .unwrap_or_default()
            .to_owned();
        assert!(line.contains(&format!("{}:80", ips[0])), "{described}");
    };
    check_replicas(2);
    let slice_labels = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "jsonpath={.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].kind}",
            ],
        ),
        "slice labels",
    );
    assert_eq!(
        slice_labels.trim(),
        "endpointslice-controller.k8s.io Service"
    );

    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["scale", "deployment", "web", "--replicas=3"],
        ),
        "scale up",
    );
    check_replicas(3);
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "create",
                "pdb",
                "web",
                "--selector=app=web",
                "--min-available=50%",
            ],
        ),
        "create pdb",
    );
    // 3 healthy, 50% of 3 rounded up is 2 desired: one disruption allowed.
    eventually(Duration::from_secs(60), "ALLOWED DISRUPTIONS 1", || {
        let out = kubectl("1.33", kc, &cache, &["get", "pdb", "web", "--no-headers"]).stdout;
        out.split_whitespace().collect::<Vec<_>>().get(1..4) == Some(&["50%", "N/A", "1"][..])
    });
    for minor in KUBECTL_MINORS {
        let pdb = ok(kubectl(minor, kc, &cache, &["get", "pdb"]), "get pdb");
        assert!(pdb.contains("ALLOWED DISRUPTIONS"), "{minor}: {pdb}");
    }
    let status = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "pdb",
                "web",
                "-o",
                "jsonpath={.status.currentHealthy} {.status.desiredHealthy} {.status.expectedPods} {.status.conditions[0].reason}",
            ],
        ),
        "pdb status",
    );
    assert_eq!(status.trim(), "3 2 3 SufficientPods");

    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["scale", "deployment", "web", "--replicas=1"],
        ),
        "scale down",
    );
    check_replicas(1);
    eventually(
        Duration::from_secs(60),
        "no disruption allowed with one pod",
        || {
            let out = kubectl("1.33", kc, &cache, &["get", "pdb", "web", "--no-headers"]).stdout;
            out.split_whitespace().nth(3) == Some("0")
        },
    );
    ok(
        kubectl("1.33", kc, &cache, &["delete", "service", "web"]),
        "delete service",
    );
    eventually(Duration::from_secs(60), "endpoints and slices gone", || {
        let endpoints = kubectl("1.33", kc, &cache, &["get", "endpoints", "web"]);
        let slices = kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "--no-headers",
            ],
        );
        !endpoints.ok && slices.ok && slices.stdout.trim().is_empty()
    });
    server.stop();
}

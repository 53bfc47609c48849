//! End to end: DaemonSets and StatefulSets on a simulated cluster (`skiff server
//! --simulate-nodes 3`), driven by real kubectl — placement on nodes, taints, rollouts,
//! `rollout status|history|undo`, ordered scaling and volume claim templates.

mod support;

use std::time::Duration;

use support::{KUBECTL_MINORS, Output, eventually, kubectl, ok, start_server_with, write};

/// The whitespace-separated columns of the one line kubectl printed.
fn columns(out: Output, what: &str) -> Vec<String> {
    let text = ok(out, what);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: {text}");
    lines[0].split_whitespace().map(str::to_owned).collect()
}

const DAEMON_SET: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: main
        image: nginx:1.25
";

/// Conformance: [sig-apps] Daemon set [Serial] should run and stop simple daemon; should
/// update pod when spec was updated and update strategy is RollingUpdate; should rollback
/// (`rollout undo` restores the old template through the ControllerRevisions).
#[test]
fn a_daemon_set_covers_the_nodes_leaves_a_tainted_one_and_rolls_back() {
    let (dir, cache, server) = start_server_with(&["--simulate-nodes", "3"]);
    let kc = &server.kubeconfig;
    let k = |args: &[&str]| kubectl("1.33", kc, &cache, args);
    eventually(Duration::from_secs(60), "3 Ready nodes", || {
        let nodes = k(&["get", "nodes", "--no-headers"]).stdout;
        nodes.lines().filter(|l| l.contains(" Ready ")).count() == 3
    });
    let file = write(dir.path(), "ds.yaml", DAEMON_SET);
    ok(k(&["apply", "-f", &file]), "apply");
    let status = ok(
        k(&["rollout", "status", "ds/agent", "--timeout=120s"]),
        "rollout status",
    );
    assert!(status.contains("successfully rolled out"), "{status}");
    for minor in KUBECTL_MINORS {
        let cells = columns(
            kubectl(minor, kc, &cache, &["get", "ds", "agent", "--no-headers"]),
            "get ds",
        );
        assert_eq!(
            cells[1..6],
            ["3", "3", "3", "3", "3"],
            "kubectl {minor}: {cells:?}"
        );
    }
    let pods = ok(
        k(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "wide",
            "--no-headers",
        ]),
        "get pods",
    );
    for node in ["sim-0", "sim-1", "sim-2"] {
        assert_eq!(
            pods.lines()
                .filter(|l| l.contains("Running") && l.contains(&format!(" {node} ")))
                .count(),
            1,
            "one pod on {node}: {pods}"
        );
    }

    // An untolerated NoExecute taint removes the node's pod and the node from the count.
    ok(k(&["taint", "node", "sim-2", "k=v:NoExecute"]), "taint");
    eventually(Duration::from_secs(90), "the pod on sim-2 gone", || {
        let pods = k(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "wide",
            "--no-headers",
        ])
        .stdout;
        pods.lines().count() == 2 && !pods.contains(" sim-2 ")
    });
    eventually(Duration::from_secs(60), "DESIRED 2", || {
        let out = k(&["get", "ds", "agent", "--no-headers"]).stdout;
        out.split_whitespace().nth(1) == Some("2")
    });

    let image = |k: &dyn Fn(&[&str]) -> Output| {
        ok(
            k(&[
                "get",
                "ds/agent",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ]),
            "image",
        )
    };
    ok(
        k(&["set", "image", "ds/agent", "main=nginx:1.26"]),
        "set image",
    );
    ok(
        k(&["rollout", "status", "ds/agent", "--timeout=120s"]),
        "rollout status after set image",
    );
    let pods = ok(
        k(&[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]),
        "pod images",
    );
    assert_eq!(pods, "nginx:1.26 nginx:1.26", "{pods}");
    let history = ok(k(&["rollout", "history", "ds/agent"]), "rollout history");
    assert!(history.contains("REVISION"), "{history}");
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('2')),
        "{history}"
    );
    ok(k(&["rollout", "undo", "ds/agent"]), "rollout undo");
    ok(
        k(&["rollout", "status", "ds/agent", "--timeout=120s"]),
        "rollout status after undo",
    );
    assert_eq!(image(&k), "nginx:1.25", "undo restored the old template");
    // The revisions hold the template exactly as kubectl encodes it: undoing to the revision in
    // place (revision 1, renumbered 3) is recognised as a no-op.
    let again = ok(
        k(&["rollout", "undo", "ds/agent", "--to-revision=3"]),
        "rollout undo to the current revision",
    );
    assert!(again.contains("skipped rollback"), "{again}");
    for minor in KUBECTL_MINORS {
        let revisions = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["get", "controllerrevisions", "--no-headers"],
            ),
            "get controllerrevisions",
        );
        // Undo reuses revision 1 as revision 3: two revisions, both the daemon set's.
        assert_eq!(revisions.lines().count(), 2, "kubectl {minor}: {revisions}");
        assert!(
            revisions
                .lines()
                .all(|l| l.contains("daemonset.apps/agent")),
            "kubectl {minor}: {revisions}"
        );
    }
    server.stop();
}

const STATEFUL_SET: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: web
  persistentVolumeClaimRetentionPolicy:
    whenScaled: Delete
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        volumeMounts:
        - name: data
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
";

/// Conformance: [sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic]
/// should perform rolling updates and roll backs of template modifications; should have a
/// working scale subresource; Scaling should happen in predictable order. Claims come from
/// `volumeClaimTemplates` and follow `persistentVolumeClaimRetentionPolicy`.
#[test]
fn a_stateful_set_runs_in_order_with_claims_scales_down_in_reverse_and_rolls() {
    let (dir, cache, server) = start_server_with(&["--simulate-nodes", "3"]);
    let kc = &server.kubeconfig;
    let k = |args: &[&str]| kubectl("1.33", kc, &cache, args);
    let file = write(dir.path(), "sts.yaml", STATEFUL_SET);
    ok(k(&["apply", "-f", &file]), "apply");
    let status = ok(
        k(&["rollout", "status", "sts/web", "--timeout=120s"]),
        "rollout status",
    );
    assert!(
        status.contains("roll out complete") || status.contains("rolling update complete"),
        "{status}"
    );
    let pods = ok(
        k(&["get", "pods", "-l", "app=web", "--no-headers"]),
        "get pods",
    );
    let mut running: Vec<&str> = pods
        .lines()
        .filter(|l| l.contains("Running"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    running.sort_unstable();
    assert_eq!(running, ["web-0", "web-1", "web-2"], "{pods}");
    let claims = ok(
        k(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]),
        "get pvc",
    );
    assert_eq!(claims, "data-web-0 data-web-1 data-web-2");
    let hostname = ok(
        k(&[
            "get",
            "pod",
            "web-1",
            "-o",
            "jsonpath={.spec.hostname}.{.spec.subdomain}",
        ]),
        "hostname",
    );
    assert_eq!(hostname, "web-1.web");
    for minor in KUBECTL_MINORS {
        let cells = columns(
            kubectl(minor, kc, &cache, &["get", "sts", "web", "--no-headers"]),
            "get sts",
        );
        assert_eq!(cells[1], "3/3", "kubectl {minor}: {cells:?}");
    }

    // Scaling down through the scale subresource: web-2 goes before web-1.
    ok(k(&["scale", "sts/web", "--replicas=1"]), "scale");
    let mut seen_order_violation = None;
    eventually(Duration::from_secs(90), "only web-0 left", || {
        let out = k(&["get", "pods", "-l", "app=web", "--no-headers"]).stdout;
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        if names.contains(&"web-2") && !names.contains(&"web-1") {
            seen_order_violation = Some(out.clone());
        }
        names == ["web-0"]
    });
    assert_eq!(seen_order_violation, None, "web-1 went before web-2");
    let replicas = ok(
        k(&[
            "get",
            "sts/web",
            "-o",
            "jsonpath={.status.replicas}/{.status.readyReplicas}",
        ]),
        "status",
    );
    assert_eq!(replicas, "1/1");
    // whenScaled: Delete — the scaled-down pods owned their claims; the GC removes them.
    eventually(Duration::from_secs(60), "only data-web-0 left", || {
        k(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]).stdout == "data-web-0"
    });

    ok(
        k(&["set", "image", "sts/web", "nginx=nginx:1.26"]),
        "set image",
    );
    ok(
        k(&["rollout", "status", "sts/web", "--timeout=120s"]),
        "rollout status after set image",
    );
    let image = ok(
        k(&[
            "get",
            "pod",
            "web-0",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ]),
        "pod image",
    );
    assert_eq!(image, "nginx:1.26");
    let history = ok(k(&["rollout", "history", "sts/web"]), "rollout history");
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    ok(k(&["rollout", "undo", "sts/web"]), "rollout undo");
    ok(
        k(&["rollout", "status", "sts/web", "--timeout=120s"]),
        "rollout status after undo",
    );
    eventually(Duration::from_secs(60), "web-0 back on nginx:1.25", || {
        k(&[
            "get",
            "pod",
            "web-0",
            "-o",
            "jsonpath={.spec.containers[0].image}",
        ])
        .stdout
            == "nginx:1.25"
    });
    let again = ok(
        k(&["rollout", "undo", "sts/web", "--to-revision=3"]),
        "rollout undo to the current revision",
    );
    assert!(again.contains("skipped rollback"), "{again}");
    server.stop();
}

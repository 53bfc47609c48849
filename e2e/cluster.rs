//! End to end: a whole (simulated) cluster in one `skiff server --simulate-nodes N` process,
//! driven by kubectl — nodes register and stay Ready, pods bound to them run, and graceful
//! deletion is finished by their node.

mod support;

use std::time::{Duration, Instant};

use support::{KUBECTL_MINORS, ServerProcess, kubectl, ok, wait_ready};

/// Polls `check` until it returns true or `within` passes.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("not within {within:?}: {what}");
}

#[test]
fn simulated_nodes_register_and_run_the_pods_bound_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = ServerProcess::start_with(&dir.path().join("data"), &["--simulate-nodes", "3"]);
    wait_ready(&server.kubeconfig, &cache);
    let kc = &server.kubeconfig;
    eventually(Duration::from_secs(20), "3 Ready nodes", || {
        let nodes = kubectl("1.33", kc, &cache, &["get", "nodes", "--no-headers"]).stdout;
        nodes.lines().filter(|l| l.contains(" Ready ")).count() == 3
    });
    for minor in KUBECTL_MINORS {
        let pod = format!("bound-{}", minor.replace('.', "-"));
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "run",
                    &pod,
                    "--image=nginx",
                    "--overrides={\"spec\":{\"nodeName\":\"sim-1\"}}",
                ],
            ),
            "kubectl run",
        );
        eventually(
            Duration::from_secs(20),
            "the pod Running with an IP",
            || {
                let status = kubectl(
                    minor,
                    kc,
                    &cache,
                    &[
                        "get",
                        "pod",
                        &pod,
                        "-o",
                        "jsonpath={.status.phase} {.status.podIP}",
                    ],
                )
                .stdout;
                status.starts_with("Running 10.244.1.")
            },
        );
        let wide = ok(
            kubectl(minor, kc, &cache, &["get", "pod", &pod, "-o", "wide"]),
            "get -o wide",
        );
        assert!(wide.contains("1/1") && wide.contains("sim-1"), "{wide}");
        // Deleting a bound pod waits for its node to stop it (graceful deletion).
        ok(
            kubectl(minor, kc, &cache, &["delete", "pod", &pod, "--timeout=30s"]),
            "delete",
        );
        let gone = kubectl(minor, kc, &cache, &["get", "pod", &pod]);
        assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
    }
    server.stop();
}

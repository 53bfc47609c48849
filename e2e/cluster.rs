//! End to end: a whole (simulated) cluster in one `skiff server --simulate-nodes N` process,
//! driven by kubectl — nodes register and stay Ready, pods bound to them run, and graceful
//! deletion is finished by their node.

mod support;

use std::time::Duration;

use support::{KUBECTL_MINORS, ServerProcess, eventually, kubectl, ok, wait_ready};

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

/// Conformance: [sig-auth] ServiceAccounts should guarantee kube-root-ca.crt exist in any
/// namespace; [sig-api-machinery] Namespaces [Serial] should ensure that all services are
/// removed when a namespace is deleted (with ConfigMaps and a Deployment too).
#[test]
fn namespaces_get_their_service_account_and_are_emptied_when_deleted() {
    let (_dir, cache, server) = support::start_server_with(&[]);
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let ns = format!("team-{}", minor.replace('.', "-"));
        ok(
            kubectl(minor, kc, &cache, &["create", "namespace", &ns]),
            "create ns",
        );
        eventually(
            Duration::from_secs(20),
            "default SA and kube-root-ca.crt",
            || {
                kubectl(
                    minor,
                    kc,
                    &cache,
                    &[
                        "-n",
                        &ns,
                        "get",
                        "serviceaccount/default",
                        "configmap/kube-root-ca.crt",
                    ],
                )
                .ok
            },
        );
        let ca = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "get",
                    "configmap",
                    "kube-root-ca.crt",
                    "-o",
                    "jsonpath={.data.ca\\.crt}",
                ],
            ),
            "get ca",
        );
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "create",
                    "configmap",
                    "settings",
                    "--from-literal=a=b",
                ],
            ),
            "cm",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["-n", &ns, "create", "deployment", "web", "--image=nginx"],
            ),
            "deployment",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "create",
                    "service",
                    "clusterip",
                    "web",
                    "--tcp=80",
                ],
            ),
            "service",
        );
        // kubectl waits until the namespace is gone: emptied, then finalized.
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["delete", "namespace", &ns, "--timeout=60s"],
            ),
            "delete ns",
        );
        let gone = kubectl(minor, kc, &cache, &["get", "namespace", &ns]);
        assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
        let left = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "configmaps,deployments,replicasets,pods,services",
                    "-A",
                    "--no-headers",
                ],
            ),
            "get -A",
        );
        assert!(!left.contains(&ns), "everything in {ns} is gone: {left}");
    }
    server.stop();
}

/// Deleting a Deployment deletes its ReplicaSets and their pods (garbage collection, background
/// propagation); with `--cascade=orphan` they stay, no longer owned.
#[test]
fn deleting_a_deployment_removes_its_replica_sets_and_pods_unless_orphaned() {
    let (_dir, cache, server) = support::start_server_with(&[]);
    let kc = &server.kubeconfig;
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "create",
                "deployment",
                "gc",
                "--image=nginx",
                "--replicas=2",
            ],
        ),
        "create",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "create",
                "deployment",
                "kept",
                "--image=nginx",
                "--replicas=1",
            ],
        ),
        "create",
    );
    eventually(Duration::from_secs(20), "3 pods", || {
        kubectl("1.33", kc, &cache, &["get", "pods", "--no-headers"])
            .stdout
            .lines()
            .count()
            == 3
    });
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["delete", "deployment", "gc", "--timeout=60s"],
        ),
        "delete",
    );
    eventually(
        Duration::from_secs(20),
        "gc's ReplicaSet and pods gone",
        || {
            let out = kubectl(
                "1.33",
                kc,
                &cache,
                &["get", "replicasets,pods", "-l", "app=gc", "--no-headers"],
            );
            out.ok && out.stdout.trim().is_empty()
        },
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "delete",
                "deployment",
                "kept",
                "--cascade=orphan",
                "--timeout=60s",
            ],
        ),
        "delete --cascade=orphan",
    );
    eventually(
        Duration::from_secs(20),
        "kept's ReplicaSet orphaned",
        || {
            let owners = kubectl(
                "1.33",
                kc,
                &cache,
                &[
                    "get",
                    "replicasets",
                    "-l",
                    "app=kept",
                    "-o",
                    "jsonpath={.items[*].metadata.ownerReferences}",
                ],
            );
            owners.ok
                && owners.stdout.trim().is_empty()
                && kubectl(
                    "1.33",
                    kc,
                    &cache,
                    &["get", "replicasets", "-l", "app=kept", "--no-headers"],
                )
                .stdout
                .lines()
                .count()
                    == 1
        },
    );
    server.stop();
}

/// `kubectl create deployment` on simulated nodes: pods scheduled and Running, `rollout
/// status` completes, `set image` rolls out, `rollout undo` restores the old template, scaling
/// up and down.
#[test]
fn deployments_roll_out_on_simulated_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = ServerProcess::start_with(&dir.path().join("data"), &["--simulate-nodes", "3"]);
    wait_ready(&server.kubeconfig, &cache);
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let ns = format!("roll-{}", minor.replace('.', "-"));
        ok(
            kubectl(minor, kc, &cache, &["create", "namespace", &ns]),
            "create ns",
        );
        let k = |args: &[&str]| {
            let mut all = vec!["-n", ns.as_str()];
            all.extend_from_slice(args);
            kubectl(minor, kc, &cache, &all)
        };
        ok(
            k(&[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.25",
                "--replicas=3",
            ]),
            "create deployment",
        );
        let status = ok(
            k(&["rollout", "status", "deployment/web", "--timeout=60s"]),
            "rollout status",
        );
        assert!(
            status.contains("successfully rolled out"),
            "kubectl {minor}: {status}"
        );
        let pods = ok(
            k(&["get", "pods", "-o", "wide", "--no-headers"]),
            "get pods",
        );
        assert_eq!(
            pods.lines()
                .filter(|l| l.contains("Running") && l.contains("sim-"))
                .count(),
            3,
            "{pods}"
        );

        ok(
            k(&["set", "image", "deployment/web", "nginx=nginx:1.26"]),
            "set image",
        );
        ok(
            k(&["rollout", "status", "deployment/web", "--timeout=60s"]),
            "rollout status after set image",
        );
        let image = ok(
            k(&[
                "get",
                "deployment/web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ]),
            "image",
        );
        assert_eq!(image, "nginx:1.26");
        ok(k(&["rollout", "undo", "deployment/web"]), "rollout undo");
        ok(
            k(&["rollout", "status", "deployment/web", "--timeout=60s"]),
            "rollout status after undo",
        );
        let image = ok(
            k(&[
                "get",
                "deployment/web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ]),
            "image",
        );
        assert_eq!(
            image, "nginx:1.25",
            "kubectl {minor}: undo restored the old template"
        );
        let history = ok(
            k(&["rollout", "history", "deployment/web"]),
            "rollout history",
        );
        assert!(history.contains("REVISION"), "{history}");

        ok(k(&["scale", "deployment/web", "--replicas=10"]), "scale up");
        ok(
            k(&["rollout", "status", "deployment/web", "--timeout=60s"]),
            "rollout status after scale up",
        );
        ok(
            k(&["scale", "deployment/web", "--replicas=0"]),
            "scale down",
        );
        eventually(Duration::from_secs(30), "no pods left", || {
            k(&["get", "pods", "--no-headers"]).stdout.trim().is_empty()
        });
    }
    server.stop();
}

/// A pod that fits nowhere stays Pending, with kube-scheduler's explanation.
#[test]
fn a_pod_that_fits_nowhere_stays_pending_with_a_clear_event() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = ServerProcess::start_with(&dir.path().join("data"), &["--simulate-nodes", "2"]);
    wait_ready(&server.kubeconfig, &cache);
    let kc = &server.kubeconfig;
    let file = support::write(
        dir.path(),
        "huge.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: huge\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources:\n      requests:\n        cpu: \"64\"\n",
    );
    ok(
        kubectl("1.33", kc, &cache, &["create", "-f", &file]),
        "create",
    );
    eventually(Duration::from_secs(20), "a FailedScheduling event", || {
        let events = kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=huge",
                "-o",
                "jsonpath={.items[*].message}",
            ],
        )
        .stdout;
        events.contains("0/2 nodes are available: 2 Insufficient cpu")
    });
    let phase = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["get", "pod", "huge", "-o", "jsonpath={.status.phase}"],
        ),
        "get",
    );
    assert_eq!(phase, "Pending");
    let described = ok(
        kubectl("1.33", kc, &cache, &["describe", "pod", "huge"]),
        "describe",
    );
    assert!(described.contains("FailedScheduling"), "{described}");
    server.stop();
}

/// `kubectl drain` evicts through `pods/<name>/eviction`, which honours the pod's
/// PodDisruptionBudget: refused with 429 while the budget allows no disruption, one pod per
/// allowed disruption (spent on the budget's status) otherwise; pods not running yet go at
/// once. The budget's status is written by hand here (the controllers are off) so the test is
/// about the API alone.
/// Conformance: [sig-apps] DisruptionController should block an eviction until the PDB is
/// updated to allow it; should observe that the PodDisruptionBudget status is not updated for
/// unmanaged pods (eviction of unmanaged pods).
#[test]
fn evictions_honour_pod_disruption_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = ServerProcess::start_with(
        &dir.path().join("data"),
        &["--disable-controllers", "--simulate-nodes", "1"],
    );
    wait_ready(&server.kubeconfig, &cache);
    let kc = &server.kubeconfig;
    let k = |args: &[&str]| kubectl("1.33", kc, &cache, args);
    for pod in ["db-1", "db-2"] {
        ok(
            k(&["run", pod, "--image=postgres", "--labels=app=db"]),
            "kubectl run",
        );
    }
    eventually(Duration::from_secs(30), "both pods Running", || {
        k(&["get", "pods", "-l", "app=db", "--no-headers"])
            .stdout
            .lines()
            .filter(|l| l.contains("Running"))
            .count()
            == 2
    });
    ok(
        k(&[
            "create",
            "pdb",
            "db",
            "--selector=app=db",
            "--min-available=2",
        ]),
        "create pdb",
    );
    let set_allowed = |allowed: u32| {
        let status = format!(
            r#"{{"status":{{"observedGeneration":1,"currentHealthy":2,"desiredHealthy":{},"expectedPods":2,"disruptionsAllowed":{allowed}}}}}"#,
            2 - allowed
        );
        ok(
            k(&[
                "patch",
                "pdb",
                "db",
                "--subresource=status",
                "--type=merge",
                "-p",
                &status,
            ]),
            "patch pdb status",
        );
    };
    set_allowed(0);
    let refused = k(&["drain", "sim-0", "--force", "--timeout=3s"]);
    assert!(!refused.ok, "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{}",
        refused.stderr
    );
    let cordoned = ok(
        k(&[
            "get",
            "node",
            "sim-0",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ]),
        "get node",
    );
    assert_eq!(cordoned, "true");
    assert_eq!(
        k(&["get", "pods", "-l", "app=db", "--no-headers"])
            .stdout
            .lines()
            .count(),
        2
    );

    // One allowed disruption: exactly one pod goes, and the budget records it.
    set_allowed(1);
    let partial = k(&["drain", "sim-0", "--force", "--timeout=4s"]);
    assert!(!partial.ok, "the second eviction must be refused");
    assert!(partial.stdout.contains("evicted"), "{}", partial.stdout);
    let budget = ok(
        k(&[
            "get",
            "pdb",
            "db",
            "-o",
            "jsonpath={.status.disruptionsAllowed} {.status.disruptedPods}",
        ]),
        "get pdb",
    );
    assert!(budget.starts_with("0 {\"db-"), "{budget}");
    eventually(Duration::from_secs(30), "one pod left", || {
        k(&["get", "pods", "-l", "app=db", "--no-headers"])
            .stdout
            .lines()
            .count()
            == 1
    });

    // A pod that is not running (the only node is cordoned) goes without its budget, for
    // every kubectl through the raw subresource.
    let eviction = support::write(
        dir.path(),
        "eviction.json",
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"pending"}}"#,
    );
    for minor in KUBECTL_MINORS {
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["run", "pending", "--image=postgres", "--labels=app=db"],
            ),
            "kubectl run",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "create",
                    "--raw",
                    "/api/v1/namespaces/default/pods/pending/eviction",
                    "-f",
                    &eviction,
                ],
            ),
            "evict a pending pod",
        );
        let gone = kubectl(minor, kc, &cache, &["get", "pod", "pending"]);
        assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
    }
    let mismatched = k(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/nobody/eviction",
        "-f",
        &eviction,
    ]);
    assert!(
        !mismatched.ok && mismatched.stderr.contains("BadRequest"),
        "{}",
        mismatched.stderr
    );
    let nobody = support::write(
        dir.path(),
        "nobody.json",
        r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"nobody"}}"#,
    );
    let missing = k(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/nobody/eviction",
        "-f",
        &nobody,
    ]);
    assert!(
        !missing.ok && missing.stderr.contains("NotFound"),
        "{}",
        missing.stderr
    );
    server.stop();
}

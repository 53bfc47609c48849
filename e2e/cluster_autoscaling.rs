//! End to end: the horizontal pod autoscaler controller in a `skiff server --simulate-nodes 2`
//! cluster, driven by kubectl (`kubectl autoscale`, `get hpa`, `describe hpa`, `scale`).
//! No conformance test covers the HPA; this follows the behaviour of upstream's
//! `pkg/controller/podautoscaler` without a metrics API: the bounds are enforced, the metrics
//! failure is reported.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{KUBECTL_MINORS, eventually, kubectl, ok};

/// A field of deployment `web`, by JSONPath.
fn deployment_field(kc: &Path, cache: &Path, path: &str) -> String {
    let output = format!("jsonpath={{{path}}}");
    kubectl(
        "1.33",
        kc,
        cache,
        &["get", "deployment", "web", "-o", &output],
    )
    .stdout
}

/// Waits until deployment `web` wants and has `replicas` ready replicas.
fn wait_ready_replicas(kc: &Path, cache: &Path, replicas: &str) {
    eventually(
        Duration::from_secs(120),
        &format!("deployment web at {replicas} ready replicas"),
        || {
            deployment_field(kc, cache, ".spec.replicas") == replicas
                && deployment_field(kc, cache, ".status.readyReplicas") == replicas
        },
    );
}

/// `kubectl autoscale` over a one-replica Deployment brings it to `--min`; the HPA's table
/// and description show the bounds, the conditions and the rescale; scaling the Deployment
/// past `--max` is undone.
#[test]
fn horizontal_pod_autoscaler_keeps_a_deployment_within_its_bounds() {
    let (_dir, cache, server) = support::start_server_with(&["--simulate-nodes", "2"]);
    let kc = &server.kubeconfig;
    let create = [
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=1",
    ];
    ok(kubectl("1.33", kc, &cache, &create), "create deployment");
    let autoscale = [
        "autoscale",
        "deployment",
        "web",
        "--min=3",
        "--max=5",
        "--cpu-percent=50",
    ];
    ok(kubectl("1.33", kc, &cache, &autoscale), "autoscale");
    wait_ready_replicas(kc, &cache, "3");

    for minor in KUBECTL_MINORS {
        // REPLICAS is the HPA's `status.currentReplicas`, written at its next sync.
        eventually(
            Duration::from_secs(60),
            &format!("kubectl {minor} get hpa to show 3 replicas"),
            || {
                let table = ok(kubectl(minor, kc, &cache, &["get", "hpa"]), "get hpa");
                let mut lines = table.lines();
                let header: Vec<&str> = lines
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect();
                assert_eq!(
                    header,
                    [
                        "NAME",
                        "REFERENCE",
                        "TARGETS",
                        "MINPODS",
                        "MAXPODS",
                        "REPLICAS",
                        "AGE"
                    ],
                    "{minor}: {table}"
                );
                let row: Vec<&str> = lines
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect();
                assert_eq!(row[..2], ["web", "Deployment/web"], "{minor}: {table}");
                assert!(table.contains("<unknown>/50%"), "{minor}: {table}");
                // TARGETS may hold a space (`cpu: <unknown>/50%`): count from the end.
                row.len() >= 6 && row[row.len() - 4..row.len() - 1] == ["3", "5", "3"]
            },
        );
    }

    // The metrics failure shows once the HPA has looked again with the target in bounds.
    eventually(
        Duration::from_secs(60),
        "describe hpa to show the conditions and events",
        || {
            let described = ok(
                kubectl("1.33", kc, &cache, &["describe", "hpa", "web"]),
                "describe hpa",
            );
            described.contains("Reference:")
                && described.contains("Deployment/web")
                && described.contains("Min replicas:")
                && has_row(&described, &["AbleToScale", "True", "SucceededGetScale"])
                && has_row(
                    &described,
                    &["ScalingActive", "False", "FailedGetResourceMetric"],
                )
                && has_row(&described, &["ScalingLimited", "True", "TooFewReplicas"])
                && described.contains(
                    "New size: 3; reason: Current number of replicas below Spec.MinReplicas",
                )
                && described.contains("FailedGetResourceMetric")
                && described.contains("FailedComputeMetricsReplicas")
        },
    );

    let scale = ["scale", "deployment", "web", "--replicas=8"];
    ok(kubectl("1.33", kc, &cache, &scale), "scale deployment");
    // At the next sync (every 15 s) the HPA brings it back to its maximum.
    wait_ready_replicas(kc, &cache, "5");
    let described = ok(
        kubectl("1.33", kc, &cache, &["describe", "hpa", "web"]),
        "describe hpa",
    );
    assert!(
        described
            .contains("New size: 5; reason: Current number of replicas above Spec.MaxReplicas"),
        "{described}"
    );
    server.stop();
}

/// Whether a line of `text` starts with the words `words`.
fn has_row(text: &str, words: &[&str]) -> bool {
    text.lines().any(|line| {
        let row: Vec<&str> = line.split_whitespace().collect();
        row.len() >= words.len() && row[..words.len()] == *words
    })
}

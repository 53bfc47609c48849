//! End to end: ResourceQuota (the API server's quota admission and the resourcequota
//! controller) and LimitRange (the API server's LimitRanger admission) in a
//! `skiff server --simulate-nodes 1` cluster, driven by kubectl.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{KUBECTL_MINORS, eventually, kubectl, ok, write};

/// `status.used.<resource>` of quota `q`.
fn used(kc: &Path, cache: &Path, resource: &str) -> String {
    let path = format!("jsonpath={{.status.used.{resource}}}");
    kubectl("1.33", kc, cache, &["get", "quota", "q", "-o", &path]).stdout
}

fn wait_used(kc: &Path, cache: &Path, resource: &str, expected: &str) {
    eventually(
        Duration::from_secs(90),
        &format!("status.used.{resource} = {expected}"),
        || used(kc, cache, resource) == expected,
    );
}

/// kubectl's stderr, after asserting it failed.
fn refused(out: support::Output, what: &str) -> String {
    assert!(!out.ok, "{what} should fail: {}", out.stdout);
    out.stderr
}

/// [sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a
/// pod, ... of a configMap, and ... ensure its status is promptly calculated [Conformance]:
/// `kubectl create quota`, usage counted and charged, creates past `hard` refused with kube's
/// message, a deleted pod's slot given back.
#[test]
fn resource_quota_captures_the_life_of_pods_and_config_maps() {
    let (_dir, cache, server) = support::start_server_with(&["--simulate-nodes", "1"]);
    let kc = &server.kubeconfig;
    let create = ["create", "quota", "q", "--hard=pods=2,configmaps=3"];
    ok(kubectl("1.33", kc, &cache, &create), "create quota");
    wait_used(kc, &cache, "pods", "0");
    // The default namespace holds kube-root-ca.crt.
    wait_used(kc, &cache, "configmaps", "1");

    for pod in ["p1", "p2"] {
        let run = ["run", pod, "--image=nginx", "--restart=Never"];
        ok(kubectl("1.33", kc, &cache, &run), "run a pod");
    }
    wait_used(kc, &cache, "pods", "2");
    let described = ok(
        kubectl("1.33", kc, &cache, &["describe", "quota", "q"]),
        "describe quota",
    );
    let rows: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["pods", "2", "2"]), "{described}");
    assert!(rows.contains(&vec!["configmaps", "1", "3"]), "{described}");
    for minor in KUBECTL_MINORS {
        let table = ok(kubectl(minor, kc, &cache, &["get", "quota"]), "get quota");
        assert!(table.contains("pods: 2/2"), "{minor}: {table}");
        assert!(table.contains("configmaps: 1/3"), "{minor}: {table}");
    }

    let third = ["run", "p3", "--image=nginx", "--restart=Never"];
    let stderr = refused(kubectl("1.33", kc, &cache, &third), "a third pod");
    assert!(
        stderr.contains("pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"),
        "{stderr}"
    );

    let delete = ["delete", "pod", "p1", "--wait=true", "--timeout=60s"];
    ok(kubectl("1.33", kc, &cache, &delete), "delete a pod");
    wait_used(kc, &cache, "pods", "1");
    ok(
        kubectl("1.33", kc, &cache, &third),
        "the third pod, once a slot is free",
    );
    wait_used(kc, &cache, "pods", "2");

    for name in ["a", "b"] {
        let create = ["create", "configmap", name, "--from-literal=k=v"];
        ok(kubectl("1.33", kc, &cache, &create), "create a configmap");
    }
    wait_used(kc, &cache, "configmaps", "3");
    let fourth = ["create", "configmap", "c", "--from-literal=k=v"];
    let stderr = refused(kubectl("1.33", kc, &cache, &fourth), "a fourth configmap");
    assert!(
        stderr.contains("configmaps \"c\" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=3, limited: configmaps=3"),
        "{stderr}"
    );
    ok(
        kubectl("1.33", kc, &cache, &["delete", "configmap", "a"]),
        "delete a configmap",
    );
    wait_used(kc, &cache, "configmaps", "2");
    ok(
        kubectl("1.33", kc, &cache, &fourth),
        "the configmap, once a slot is free",
    );
    server.stop();
}

const LIMIT_RANGE: &str = r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
spec:
  limits:
  - type: Container
    default: {cpu: 300m, memory: 200Mi}
    defaultRequest: {cpu: 100m, memory: 100Mi}
    max: {cpu: 500m}
"#;

const BIG_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: big
spec:
  containers:
  - name: app
    image: nginx
    resources:
      limits: {cpu: "1"}
"#;

/// [sig-scheduling] LimitRange should create a LimitRange with defaults and ensure pod has
/// those defaults applied [Conformance]: a pod without resources gets the defaults; one over
/// `max` is refused with kube-apiserver's message.
#[test]
fn limit_range_defaults_are_applied_and_its_max_enforced() {
    let (dir, cache, server) = support::start_server_with(&["--simulate-nodes", "1"]);
    let kc = &server.kubeconfig;
    let range = write(dir.path(), "limits.yaml", LIMIT_RANGE);
    ok(
        kubectl("1.33", kc, &cache, &["apply", "-f", &range]),
        "apply the limit range",
    );
    let run = ["run", "plain", "--image=nginx", "--restart=Never"];
    ok(
        kubectl("1.33", kc, &cache, &run),
        "run a pod without resources",
    );
    let resources = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "get",
                "pod",
                "plain",
                "-o",
                "jsonpath={.spec.containers[0].resources}",
            ],
        ),
        "get the pod's resources",
    );
    let resources: serde_json::Value = serde_json::from_str(&resources).unwrap();
    assert_eq!(
        resources,
        serde_json::json!({
            "limits": {"cpu": "300m", "memory": "200Mi"},
            "requests": {"cpu": "100m", "memory": "100Mi"},
        })
    );
    let qos = kubectl(
        "1.33",
        kc,
        &cache,
        &["get", "pod", "plain", "-o", "jsonpath={.status.qosClass}"],
    );
    assert_eq!(qos.stdout, "Burstable");
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "wait",
                "pod/plain",
                "--for=condition=Ready",
                "--timeout=90s",
            ],
        ),
        "the defaulted pod runs",
    );

    let big = write(dir.path(), "big.yaml", BIG_POD);
    let stderr = refused(
        kubectl("1.33", kc, &cache, &["create", "-f", &big]),
        "a pod over max",
    );
    assert!(
        stderr.contains(
            "pods \"big\" is forbidden: maximum cpu usage per Container is 500m, but limit is 1"
        ),
        "{stderr}"
    );
    for minor in KUBECTL_MINORS {
        let table = ok(
            kubectl(minor, kc, &cache, &["get", "limitrange"]),
            "get limitrange",
        );
        assert!(table.contains("limits"), "{minor}: {table}");
    }
    server.stop();
}

//! Strategic merge patch: a table of (original, patch, expected) cases, most shaped like the
//! patches `kubectl apply`, `kubectl edit` and `kubectl patch` send, then the refusals.

use serde_json::{Value, json};
use skiff_patch::{Child, PatchError, PatchType, StrategyTable, apply};

use crate::{DEPLOYMENT, PDB, POD, SERVICE, has_directive, smp};

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "tier": "frontend"},
            "finalizers": ["a.io/x", "b.io/y"],
            "ownerReferences": [{"uid": "u1", "kind": "ReplicaSet", "name": "rs1"}]
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1",
                    "args": ["--a", "--b"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}]
                },
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}],
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "nodeSelector": {"disk": "ssd"},
            "securityContext": {"runAsUser": 1000},
            "custom": {"x": 1, "list": [1, 2]}
        }
    })
}

/// `pod()` with `edit` applied to a copy.
fn pod_with(edit: impl FnOnce(&mut Value)) -> Value {
    let mut pod = pod();
    edit(&mut pod);
    pod
}

fn deployment() -> Value {
    json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}, {"name": "log", "image": "fluent:1"}]}
            }
        }
    })
}

struct Case {
    name: &'static str,
    root: &'static str,
    original: Value,
    patch: Value,
    expected: Value,
}

fn case(name: &'static str, original: Value, patch: Value, expected: Value) -> Case {
    Case {
        name,
        root: POD,
        original,
        patch,
        expected,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "kubectl apply changes an image",
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "app", "image": "nginx:2"}]
            }}),
            pod_with(|p| p["spec"]["containers"][0]["image"] = json!("nginx:2")),
        ),
        case(
            "kubectl apply removes a container with $patch: delete",
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"$patch": "delete", "name": "sidecar"}]
            }}),
            pod_with(|p| {
                p["spec"]["containers"]
                    .as_array_mut()
                    .expect("list")
                    .truncate(1)
            }),
        ),
        case(
            "kubectl apply adds an env var, nested $setElementOrder",
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}],
                    "env": [{"name": "D", "value": "4"}],
                    "name": "app"
                }]
            }}),
            pod_with(|p| {
                p["spec"]["containers"][0]["env"]
                    .as_array_mut()
                    .expect("list")
                    .push(json!({"name": "D", "value": "4"}))
            }),
        ),
        case(
            "env var removed and one inserted in the middle",
            pod(),
            json!({"spec": {"containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "D"}, {"name": "C"}],
                "env": [{"name": "D", "value": "4"}, {"$patch": "delete", "name": "B"}],
                "name": "app"
            }]}}),
            pod_with(|p| {
                p["spec"]["containers"][0]["env"] = json!([
                    {"name": "A", "value": "1"}, {"name": "D", "value": "4"}, {"name": "C", "value": "3"}
                ])
            }),
        ),
        case(
            "reorder containers with $setElementOrder alone",
            pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}),
            pod_with(|p| {
                p["spec"]["containers"]
                    .as_array_mut()
                    .expect("list")
                    .reverse()
            }),
        ),
        case(
            "a server-only container keeps its place",
            pod_with(|p| {
                p["spec"]["containers"]
                    .as_array_mut()
                    .expect("list")
                    .insert(1, json!({"name": "injected", "image": "istio:1"}))
            }),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "app", "image": "nginx:2"}]
            }}),
            pod_with(|p| {
                p["spec"]["containers"][0]["image"] = json!("nginx:2");
                p["spec"]["containers"]
                    .as_array_mut()
                    .expect("list")
                    .insert(1, json!({"name": "injected", "image": "istio:1"}));
            }),
        ),
        case(
            "a new item without $setElementOrder goes before server-only items, as upstream",
            pod(),
            json!({"spec": {"containers": [{"name": "new", "image": "busybox"}]}}),
            pod_with(|p| {
                p["spec"]["containers"]
                    .as_array_mut()
                    .expect("list")
                    .insert(0, json!({"name": "new", "image": "busybox"}))
            }),
        ),
        case(
            "null deletes a label, a new label is added",
            pod(),
            json!({"metadata": {"labels": {"tier": null, "env": "prod"}}}),
            pod_with(|p| p["metadata"]["labels"] = json!({"app": "web", "env": "prod"})),
        ),
        case(
            "null for an absent key changes nothing",
            pod(),
            json!({"metadata": {"annotations": null}}),
            pod(),
        ),
        case(
            "$retainKeys switches a volume from emptyDir to configMap",
            pod(),
            json!({"spec": {
                "$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "data"}]
            }}),
            pod_with(|p| {
                p["spec"]["volumes"] = json!([{"name": "data", "configMap": {"name": "cm"}}])
            }),
        ),
        case(
            "$deleteFromPrimitiveList and $setElementOrder on finalizers",
            pod(),
            json!({"metadata": {
                "$deleteFromPrimitiveList/finalizers": ["a.io/x"],
                "$setElementOrder/finalizers": ["b.io/y", "c.io/z"],
                "finalizers": ["c.io/z"]
            }}),
            pod_with(|p| p["metadata"]["finalizers"] = json!(["b.io/y", "c.io/z"])),
        ),
        case(
            "finalizers merge as a union without duplicates",
            pod(),
            json!({"metadata": {"finalizers": ["b.io/y", "c.io/z", "c.io/z"]}}),
            pod_with(|p| p["metadata"]["finalizers"] = json!(["a.io/x", "b.io/y", "c.io/z"])),
        ),
        case(
            "ownerReferences merge by uid",
            pod(),
            json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "controller": true},
                {"uid": "u2", "kind": "ReplicaSet", "name": "rs2"}
            ]}}),
            pod_with(|p| {
                p["metadata"]["ownerReferences"] = json!([
                    {"uid": "u1", "kind": "ReplicaSet", "name": "rs1", "controller": true},
                    {"uid": "u2", "kind": "ReplicaSet", "name": "rs2"}
                ])
            }),
        ),
        case(
            "container ports merge by the numeric containerPort",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "ports": [
                {"containerPort": 80, "name": "http"}, {"containerPort": 8080}
            ]}]}}),
            pod_with(|p| {
                p["spec"]["containers"][0]["ports"] = json!([
                    {"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 8080}
                ])
            }),
        ),
        case(
            "$patch: replace in a list replaces it with the other items",
            pod(),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "busybox"}]}}),
            pod_with(|p| p["spec"]["containers"] = json!([{"name": "only", "image": "busybox"}])),
        ),
        case(
            "$patch: replace on an object replaces it",
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "new": "x"}}}),
            pod_with(|p| p["metadata"]["labels"] = json!({"new": "x"})),
        ),
        case(
            "$patch: delete on an object removes it",
            pod(),
            json!({"spec": {"securityContext": {"$patch": "delete"}}}),
            pod_with(|p| {
                p["spec"]
                    .as_object_mut()
                    .expect("spec")
                    .remove("securityContext");
            }),
        ),
        case(
            "$patch: delete of an item that is not there changes nothing",
            pod(),
            json!({"spec": {"containers": [{"$patch": "delete", "name": "ghost"}]}}),
            pod(),
        ),
        case(
            "atomic lists are replaced: args and tolerations",
            pod(),
            json!({"spec": {
                "containers": [{"name": "app", "args": ["--c"]}],
                "tolerations": [{"key": "b", "operator": "Exists", "$patch": "delete"}]
            }}),
            pod_with(|p| {
                p["spec"]["containers"][0]["args"] = json!(["--c"]);
                p["spec"]["tolerations"] = json!([{"key": "b", "operator": "Exists"}]);
            }),
        ),
        case(
            "nodeSelector merges: SMP reads patchStrategy, not x-kubernetes-map-type",
            pod(),
            json!({"spec": {"nodeSelector": {"zone": "a"}}}),
            pod_with(|p| p["spec"]["nodeSelector"] = json!({"disk": "ssd", "zone": "a"})),
        ),
        case(
            "unknown fields: objects merge, lists are replaced",
            pod(),
            json!({"spec": {"custom": {"y": 2, "list": [3]}}}),
            pod_with(|p| p["spec"]["custom"] = json!({"x": 1, "y": 2, "list": [3]})),
        ),
        case(
            "directives inside new content are applied, never stored",
            pod(),
            json!({"spec": {"initContainers": [{
                "name": "init",
                "image": "busybox",
                "$setElementOrder/env": [{"name": "X"}],
                "env": [{"name": "X", "value": "1"}, {"$patch": "delete", "name": "Y"}],
                "securityContext": {"$patch": "replace", "privileged": false, "runAsUser": null}
            }]}}),
            pod_with(|p| {
                p["spec"]["initContainers"] = json!([{
                    "name": "init",
                    "image": "busybox",
                    "env": [{"name": "X", "value": "1"}],
                    "securityContext": {"privileged": false}
                }])
            }),
        ),
        case(
            "a value of another type replaces the original",
            pod(),
            json!({"spec": {"custom": ["now", "a", "list"], "securityContext": 7}}),
            pod_with(|p| {
                p["spec"]["custom"] = json!(["now", "a", "list"]);
                p["spec"]["securityContext"] = json!(7);
            }),
        ),
        case(
            "$patch: delete at the root empties the object, as upstream",
            pod(),
            json!({"$patch": "delete"}),
            json!({}),
        ),
        Case {
            name: "deployment: image in the pod template",
            root: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "log"}],
                "containers": [{"name": "app", "image": "nginx:2"}]
            }}}}),
            expected: {
                let mut d = deployment();
                d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
                d
            },
        },
        Case {
            name: "deployment: $retainKeys on strategy drops rollingUpdate",
            root: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            expected: {
                let mut d = deployment();
                d["spec"]["strategy"] = json!({"type": "Recreate"});
                d
            },
        },
        Case {
            name: "kubectl rollout restart annotates the template",
            root: DEPLOYMENT,
            original: deployment(),
            patch: json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
            }}}}}),
            expected: {
                let mut d = deployment();
                d["spec"]["template"]["metadata"]["annotations"] =
                    json!({"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"});
                d
            },
        },
        Case {
            name: "service ports merge by port",
            root: SERVICE,
            original: json!({"spec": {"ports": [
                {"port": 80, "name": "http", "targetPort": 8080},
                {"port": 443, "name": "https"}
            ]}}),
            patch: json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
            expected: json!({"spec": {"ports": [
                {"port": 80, "name": "http", "targetPort": 8080},
                {"port": 443, "name": "https", "targetPort": 8443}
            ]}}),
        },
        Case {
            name: "pdb selector has patchStrategy replace",
            root: PDB,
            original: json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}),
            patch: json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            expected: json!({"spec": {"selector": {"matchLabels": {"b": "2"}}, "minAvailable": 1}}),
        },
    ]
}

#[test]
fn strategic_merge_cases() {
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        match smp(case.root, &case.original, &case.patch) {
            Ok(got) if got == case.expected && !has_directive(&got) => {}
            Ok(got) => failures.push(format!(
                "{}:\n  got      {got}\n  expected {}",
                case.name, case.expected
            )),
            Err(err) => failures.push(format!("{}: error {err}", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// (name, patch, whether the error is `Malformed` (else `NotApplicable`)).
fn refusals() -> Vec<(&'static str, Value, bool)> {
    vec![
        (
            "item without its merge key",
            json!({"spec": {"containers": [{"image": "x"}]}}),
            true,
        ),
        (
            "unknown $patch on an object",
            json!({"spec": {"$patch": "explode"}}),
            true,
        ),
        (
            "$patch: merge in a list",
            json!({"spec": {"containers": [{"$patch": "merge", "name": "app"}]}}),
            true,
        ),
        (
            "$patch: delete item without merge key",
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
            true,
        ),
        (
            "field outside $retainKeys",
            json!({"spec": {"volumes": [{"$retainKeys": ["name"], "name": "data", "emptyDir": {}}]}}),
            true,
        ),
        (
            "$retainKeys not a list",
            json!({"spec": {"securityContext": {"$retainKeys": "runAsUser"}}}),
            true,
        ),
        (
            "$setElementOrder not a list",
            json!({"spec": {"$setElementOrder/containers": {"name": "app"}}}),
            true,
        ),
        (
            "patch list out of $setElementOrder order",
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}],
                "containers": [{"name": "app", "image": "x"}]
            }}),
            true,
        ),
        (
            "$deleteFromPrimitiveList not a list",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a.io/x"}}),
            true,
        ),
        (
            "list of lists in a merge list",
            json!({"metadata": {"finalizers": [["x"]]}}),
            false,
        ),
        (
            "mixed item types in a merge list",
            json!({"metadata": {"finalizers": [1]}}),
            false,
        ),
        (
            "objects in a primitive merge list",
            json!({"metadata": {"finalizers": [{"name": "x"}]}}),
            false,
        ),
    ]
}

#[test]
fn strategic_merge_refusals() {
    for (name, patch, malformed) in refusals() {
        match smp(POD, &pod(), &patch) {
            Err(PatchError::Malformed(message)) if malformed => {
                assert!(!message.is_empty(), "{name}")
            }
            Err(PatchError::NotApplicable(message)) if !malformed => {
                assert!(!message.is_empty(), "{name}")
            }
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
}

#[test]
fn original_item_without_merge_key_is_not_applicable() {
    let original = json!({"spec": {"containers": [{"image": "x"}]}});
    let patch = json!({"spec": {"containers": [{"name": "app", "image": "y"}]}});
    let err = smp(POD, &original, &patch).expect_err("refused");
    assert!(matches!(err, PatchError::NotApplicable(_)), "{err:?}");
    assert!(err.to_string().contains("containers"), "{err}");
}

#[test]
fn bodies_that_are_not_json_objects_are_malformed() {
    for body in [&b"{"[..], b"[]", b"null", b"\"x\"", b"", b"{\"a\":1}x"] {
        let err = apply(
            &pod(),
            body,
            PatchType::StrategicMerge,
            Some(POD),
            &StrategyTable::builtin(),
        )
        .expect_err("refused");
        assert!(matches!(err, PatchError::Malformed(_)), "{body:?}: {err:?}");
    }
}

#[test]
fn custom_resources_refuse_strategic_merge() {
    let err = apply(
        &json!({"spec": {}}),
        br#"{"spec": {"a": 1}}"#,
        PatchType::StrategicMerge,
        None,
        &StrategyTable::builtin(),
    )
    .expect_err("refused");
    assert_eq!(err, PatchError::StrategicMergeUnsupported);
    assert!(
        err.to_string()
            .starts_with("the body of the request was in an unknown format")
    );
}

#[test]
fn map_values_use_their_definition() {
    let mut table = StrategyTable::from_tsv("Thing\titems\tmerge\tname\n").expect("table");
    table.set_child("Root", "things", Child::MapValues("Thing".to_owned()));
    table.set_child("Thing", "items", Child::Type("Item".to_owned()));
    let original = json!({"things": {"t1": {"items": [{"name": "a", "v": 1}]}}});
    let patch = json!({"things": {"t1": {"items": [{"name": "b", "v": 2}]}, "t2": {"items": [{"name": "c"}]}}});
    let got = apply(
        &original,
        patch.to_string().as_bytes(),
        PatchType::StrategicMerge,
        Some("Root"),
        &table,
    )
    .expect("applies");
    assert_eq!(
        got,
        json!({"things": {
            "t1": {"items": [{"name": "b", "v": 2}, {"name": "a", "v": 1}]},
            "t2": {"items": [{"name": "c"}]}
        }})
    );
}

#[test]
fn without_a_type_graph_only_root_fields_have_strategies() {
    // The bundled table alone knows PodSpec.containers merges, but not that Pod.spec is a
    // PodSpec: below the root, lists are replaced.
    let got = apply(
        &pod(),
        br#"{"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}"#,
        PatchType::StrategicMerge,
        Some(POD),
        &StrategyTable::builtin(),
    )
    .expect("applies");
    assert_eq!(
        got["spec"]["containers"],
        json!([{"name": "app", "image": "nginx:2"}])
    );
    let got = apply(
        &pod()["spec"],
        br#"{"containers": [{"name": "app", "image": "nginx:2"}]}"#,
        PatchType::StrategicMerge,
        Some("io.k8s.api.core.v1.PodSpec"),
        &StrategyTable::builtin(),
    )
    .expect("applies");
    assert_eq!(got["containers"].as_array().map(Vec::len), Some(2));
}

#[test]
fn original_is_not_modified() {
    let original = pod();
    let before = original.clone();
    smp(POD, &original, &json!({"metadata": {"labels": null}})).expect("applies");
    assert_eq!(original, before);
}

#[test]
fn big_maps_and_lists_merge_in_linear_time() {
    // Quadratic key removal or item lookup would take minutes here.
    let n = 20_000;
    let labels: serde_json::Map<String, Value> =
        (0..n).map(|i| (format!("k{i}"), json!("v"))).collect();
    let nulls: serde_json::Map<String, Value> =
        (0..n).map(|i| (format!("k{i}"), Value::Null)).collect();
    let env: Vec<Value> = (0..n).map(|i| json!({"name": format!("E{i}")})).collect();
    let order: Vec<Value> = (0..n)
        .rev()
        .map(|i| json!({"name": format!("E{i}")}))
        .collect();
    let original = json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "env": env}]}
    });
    let patch = json!({
        "metadata": {"labels": nulls},
        "spec": {"containers": [{"name": "app", "$setElementOrder/env": order, "env": [{"name": "E0", "value": "x"}]}]}
    });
    let started = std::time::Instant::now();
    let got = smp(POD, &original, &patch).expect("applies");
    assert_eq!(got["metadata"]["labels"], json!({}));
    let env = got["spec"]["containers"][0]["env"].as_array().expect("env");
    assert_eq!(env.len(), n);
    assert_eq!(env[0]["name"], json!(format!("E{}", n - 1)));
    assert_eq!(env[n - 1], json!({"name": "E0", "value": "x"}));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

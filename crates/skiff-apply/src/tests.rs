//! Tests of apply and update tracking over a Deployment-like type graph (the bundled strategy
//! table plus the children a schema would give).

use serde_json::{Value, json};
use skiff_patch::{Child, StrategyTable};

use crate::*;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-01T00:01:00Z";
const T2: &str = "2024-01-01T00:02:00Z";

fn table() -> StrategyTable {
    let mut table = StrategyTable::builtin();
    let ty = |d: &str| Child::Type(d.to_owned());
    let edges = [
        (
            DEPLOYMENT,
            "metadata",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        ),
        (DEPLOYMENT, "spec", "io.k8s.api.apps.v1.DeploymentSpec"),
        (DEPLOYMENT, "status", "io.k8s.api.apps.v1.DeploymentStatus"),
        (
            "io.k8s.api.apps.v1.DeploymentSpec",
            "selector",
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        ),
        (
            "io.k8s.api.apps.v1.DeploymentSpec",
            "template",
            "io.k8s.api.core.v1.PodTemplateSpec",
        ),
        (
            "io.k8s.api.apps.v1.DeploymentSpec",
            "strategy",
            "io.k8s.api.apps.v1.DeploymentStrategy",
        ),
        (
            "io.k8s.api.core.v1.PodTemplateSpec",
            "metadata",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        ),
        (
            "io.k8s.api.core.v1.PodTemplateSpec",
            "spec",
            "io.k8s.api.core.v1.PodSpec",
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "containers",
            "io.k8s.api.core.v1.Container",
        ),
        (
            "io.k8s.api.core.v1.Container",
            "ports",
            "io.k8s.api.core.v1.ContainerPort",
        ),
        (
            "io.k8s.api.core.v1.Container",
            "env",
            "io.k8s.api.core.v1.EnvVar",
        ),
        (
            "io.k8s.api.core.v1.Container",
            "resources",
            "io.k8s.api.core.v1.ResourceRequirements",
        ),
        (
            "io.k8s.api.apps.v1.DeploymentStatus",
            "conditions",
            "io.k8s.api.apps.v1.DeploymentCondition",
        ),
    ];
    for (definition, field, child) in edges {
        table.set_child(definition, field, ty(child));
    }
    for field in ["replicas", "paused", "minReadySeconds"] {
        // Scalar fields a schema declares; the strategy table alone does not list them.
        table.set_child("io.k8s.api.apps.v1.DeploymentSpec", field, ty("scalar"));
    }
    table.set_child(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "labels",
        Child::MapValues("string".to_owned()),
    );
    table
}

fn request<'a>(manager: &'a str, now: &'a str, strategies: &'a StrategyTable) -> Request<'a> {
    Request {
        manager,
        subresource: None,
        now,
        root_definition: Some(DEPLOYMENT),
        strategies,
        ignore_status: true,
    }
}

fn deployment(spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    })
}

fn containers(list: Value) -> Value {
    deployment(json!({"template": {"spec": {"containers": list}}}))
}

fn managed_of(object: &Value) -> Vec<Value> {
    object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'v>(managed: &'v [Value], manager: &str) -> Option<&'v Value> {
    managed.iter().find(|e| e["manager"] == manager)
}

/// Applies in order, each step against the previous result; returns the last result.
fn apply_all(steps: &[(&str, Value, bool)], table: &StrategyTable) -> Result<Applied, ApplyError> {
    let mut live: Option<Value> = None;
    let mut last = None;
    for (manager, config, force) in steps {
        let managed = live.as_ref().map(managed_of).unwrap_or_default();
        let applied = apply(
            live.as_ref(),
            config,
            &managed,
            *force,
            &request(manager, T1, table),
        )?;
        live = Some(applied.object.clone());
        last = Some(applied);
    }
    last.ok_or_else(|| ApplyError::InvalidConfig("no steps".to_owned()))
}

#[test]
fn fields_v1_of_a_deployment_matches_kube() {
    let table = table();
    let cases = [
        (
            containers(json!([{"name": "web", "image": "nginx"}])),
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}}),
        ),
        (
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}, "uid": "x", "resourceVersion": "5"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "web", "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "args": ["a", "b"]
                        }]}
                    }
                },
                "status": {"replicas": 2}
            }),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}
                            }}
                        }}}
                    }
                }
            }),
        ),
        (
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}}}),
        ),
    ];
    for (config, want) in cases {
        let got = fields_of(&config, Some(DEPLOYMENT), &table, true).expect("fields");
        assert_eq!(got, want, "config {config}");
        let applied = apply(None, &config, &[], false, &request("A", T0, &table)).expect("apply");
        let managed = &applied.managed_fields;
        assert_eq!(managed.len(), 1);
        assert_eq!(managed[0]["fieldsV1"], want);
        assert_eq!(managed[0]["operation"], "Apply");
        assert_eq!(managed[0]["manager"], "A");
        assert_eq!(managed[0]["time"], T0);
        assert_eq!(managed[0]["fieldsType"], "FieldsV1");
    }
}

#[test]
fn apply_scenarios() {
    let table = table();
    let web = |image: &str| json!({"name": "web", "image": image});
    let sidecar = json!({"name": "sidecar", "image": "envoy"});
    struct Case {
        name: &'static str,
        steps: Vec<(&'static str, Value, bool)>,
        check: fn(&Applied),
    }
    let cases = vec![
        Case {
            name: "create",
            steps: vec![("A", containers(json!([web("v1")])), false)],
            check: |a| {
                assert_eq!(
                    a.object["spec"]["template"]["spec"]["containers"][0]["image"],
                    "v1"
                );
                assert_eq!(a.object["metadata"]["name"], "web");
            },
        },
        Case {
            name: "change",
            steps: vec![
                ("A", containers(json!([web("v1")])), false),
                ("A", containers(json!([web("v2")])), false),
            ],
            check: |a| {
                assert_eq!(
                    a.object["spec"]["template"]["spec"]["containers"][0]["image"],
                    "v2"
                );
                assert_eq!(a.managed_fields.len(), 1);
            },
        },
        Case {
            name: "item removed from the manifest is removed",
            steps: vec![
                ("A", containers(json!([web("v1"), sidecar.clone()])), false),
                ("A", containers(json!([web("v1")])), false),
            ],
            check: |a| {
                let list = &a.object["spec"]["template"]["spec"]["containers"];
                assert_eq!(list, &json!([{"name": "web", "image": "v1"}]));
            },
        },
        Case {
            name: "item another manager also applies stays",
            steps: vec![
                ("A", containers(json!([web("v1"), sidecar.clone()])), false),
                ("B", containers(json!([sidecar.clone()])), false),
                ("A", containers(json!([web("v1")])), false),
            ],
            check: |a| {
                let list = &a.object["spec"]["template"]["spec"]["containers"];
                assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
            },
        },
        Case {
            name: "force takes the field",
            steps: vec![
                (
                    "A",
                    deployment(json!({"replicas": 2, "paused": false})),
                    false,
                ),
                ("B", deployment(json!({"replicas": 3})), true),
            ],
            check: |a| {
                assert_eq!(a.object["spec"]["replicas"], 3);
                let a_entry = entry(&a.managed_fields, "A").expect("A keeps paused");
                assert_eq!(a_entry["fieldsV1"], json!({"f:spec": {"f:paused": {}}}));
                let b_entry = entry(&a.managed_fields, "B").expect("B");
                assert_eq!(b_entry["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
            },
        },
        Case {
            name: "force takes the only field: the entry goes",
            steps: vec![
                ("A", deployment(json!({"replicas": 2})), false),
                ("B", deployment(json!({"replicas": 3})), true),
            ],
            check: |a| {
                assert!(entry(&a.managed_fields, "A").is_none());
                assert_eq!(a.managed_fields.len(), 1);
            },
        },
        Case {
            name: "same value is shared, not a conflict",
            steps: vec![
                ("A", deployment(json!({"replicas": 2})), false),
                ("B", deployment(json!({"replicas": 2})), false),
                ("A", json!({"metadata": {"name": "web"}}), false),
            ],
            check: |a| {
                // B still owns replicas, so A dropping it keeps the value.
                assert_eq!(a.object["spec"]["replicas"], 2);
                assert!(entry(&a.managed_fields, "A").is_none());
            },
        },
        Case {
            name: "labels are granular",
            steps: vec![
                (
                    "A",
                    json!({"metadata": {"name": "web", "labels": {"a": "1"}}}),
                    false,
                ),
                (
                    "B",
                    json!({"metadata": {"name": "web", "labels": {"b": "2"}}}),
                    false,
                ),
                ("A", json!({"metadata": {"name": "web"}}), false),
            ],
            check: |a| {
                assert_eq!(a.object["metadata"]["labels"], json!({"b": "2"}));
                assert!(entry(&a.managed_fields, "A").is_none());
            },
        },
        Case {
            name: "dropping the last label removes the map",
            steps: vec![
                (
                    "A",
                    json!({"metadata": {"name": "web", "labels": {"a": "1"}}}),
                    false,
                ),
                (
                    "A",
                    json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}),
                    false,
                ),
            ],
            check: |a| {
                assert_eq!(a.object["metadata"].get("labels"), None, "{}", a.object);
            },
        },
        Case {
            name: "finalizers are a set",
            steps: vec![
                ("A", json!({"metadata": {"finalizers": ["a"]}}), false),
                ("B", json!({"metadata": {"finalizers": ["b", "a"]}}), false),
                ("A", json!({"metadata": {"finalizers": ["c"]}}), false),
            ],
            check: |a| {
                assert_eq!(a.object["metadata"]["finalizers"], json!(["a", "b", "c"]));
                let a_entry = entry(&a.managed_fields, "A").expect("A");
                assert_eq!(
                    a_entry["fieldsV1"],
                    json!({"f:metadata": {"f:finalizers": {"v:\"c\"": {}}}})
                );
            },
        },
        Case {
            name: "a set item only one manager applied goes with it",
            steps: vec![
                ("A", json!({"metadata": {"finalizers": ["a", "x"]}}), false),
                ("A", json!({"metadata": {"finalizers": ["a"]}}), false),
            ],
            check: |a| {
                assert_eq!(a.object["metadata"]["finalizers"], json!(["a"]));
            },
        },
        Case {
            name: "atomic list replaced",
            steps: vec![
                (
                    "A",
                    containers(json!([{"name": "web", "args": ["x", "y"]}])),
                    false,
                ),
                (
                    "A",
                    containers(json!([{"name": "web", "args": ["z"]}])),
                    false,
                ),
            ],
            check: |a| {
                assert_eq!(
                    a.object["spec"]["template"]["spec"]["containers"][0]["args"],
                    json!(["z"])
                );
            },
        },
        Case {
            name: "status is neither applied nor tracked",
            steps: vec![(
                "A",
                json!({"spec": {"replicas": 1}, "status": {"replicas": 9}}),
                false,
            )],
            check: |a| {
                assert_eq!(a.object.get("status"), None);
                assert_eq!(
                    a.managed_fields[0]["fieldsV1"],
                    json!({"f:spec": {"f:replicas": {}}})
                );
            },
        },
    ];
    for case in cases {
        let applied =
            apply_all(&case.steps, &table).unwrap_or_else(|e| panic!("case {:?}: {e}", case.name));
        (case.check)(&applied);
    }
}

#[test]
fn conflicts_name_the_manager_and_field() {
    let table = table();
    let steps = vec![
        ("A", deployment(json!({"replicas": 2})), false),
        ("B", deployment(json!({"replicas": 3})), false),
    ];
    let err = apply_all(&steps, &table).expect_err("conflict");
    let ApplyError::Conflicts(conflicts) = &err else {
        panic!("{err}");
    };
    assert_eq!(
        conflicts,
        &[Conflict {
            manager: "A".to_owned(),
            operation: Operation::Apply,
            api_version: "apps/v1".to_owned(),
            subresource: None,
            field: ".spec.replicas".to_owned(),
        }]
    );
    assert_eq!(err.to_string(), "apply failed with 1 conflict(s)");
    assert_eq!(
        conflict_message(conflicts),
        "Apply failed with 1 conflict: conflict with \"A\": .spec.replicas"
    );
    assert_eq!(
        conflict_causes(conflicts),
        vec![
            json!({"type": "FieldManagerConflict", "message": "conflict with \"A\"", "field": ".spec.replicas"})
        ]
    );

    // Nested fields of list items are named by the item key.
    let steps = vec![
        (
            "A",
            containers(json!([{"name": "web", "image": "v1"}])),
            false,
        ),
        (
            "B",
            containers(json!([{"name": "web", "image": "v2"}])),
            false,
        ),
    ];
    let Err(ApplyError::Conflicts(conflicts)) = apply_all(&steps, &table) else {
        panic!("expected a conflict");
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(
        conflicts[0].field,
        ".spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn update_managers_conflict_with_apply() {
    let table = table();
    let created = apply(
        None,
        &deployment(json!({"replicas": 2, "paused": false})),
        &[],
        false,
        &request("A", T0, &table),
    )
    .expect("create");
    // kubectl scale: an update of replicas.
    let mut scaled = created.object.clone();
    scaled["spec"]["replicas"] = json!(5);
    let managed = track_update(
        Some(&created.object),
        &scaled,
        &created.managed_fields,
        &request("kubectl-scale", T1, &table),
    );
    let scale = entry(&managed, "kubectl-scale").expect("update entry");
    assert_eq!(scale["operation"], "Update");
    assert_eq!(scale["apiVersion"], "apps/v1");
    assert_eq!(scale["time"], T1);
    assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let a_entry = entry(&managed, "A").expect("A keeps paused");
    assert_eq!(a_entry["fieldsV1"], json!({"f:spec": {"f:paused": {}}}));
    // Apply entries sort before Update entries.
    assert_eq!(managed[0]["manager"], "A");
    scaled["metadata"]["managedFields"] = Value::Array(managed.clone());

    let err = apply(
        Some(&scaled),
        &deployment(json!({"replicas": 3, "paused": false})),
        &managed,
        false,
        &request("A", T2, &table),
    )
    .expect_err("conflict");
    let ApplyError::Conflicts(conflicts) = err else {
        panic!("{err}");
    };
    assert_eq!(
        conflict_message(&conflicts),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );

    // Applying the value the updater set is no conflict: both own it.
    let shared = apply(
        Some(&scaled),
        &deployment(json!({"replicas": 5, "paused": false})),
        &managed,
        false,
        &request("A", T2, &table),
    )
    .expect("same value");
    assert!(entry(&shared.managed_fields, "kubectl-scale").is_some());
    assert_eq!(
        entry(&shared.managed_fields, "A").expect("A")["fieldsV1"],
        json!({"f:spec": {"f:paused": {}, "f:replicas": {}}})
    );
}

#[test]
fn track_update_cases() {
    let table = table();
    let base = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "v1"}]}}}
    });
    // Create: everything is the creator's.
    let managed = track_update(None, &base, &[], &request("kubectl-create", T0, &table));
    assert_eq!(managed.len(), 1);
    assert_eq!(
        managed[0]["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                ".": {},
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}
        })
    );
    // An edit of the image moves it; a second edit by the same manager merges.
    let mut edited = base.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2");
    let managed = track_update(
        Some(&base),
        &edited,
        &managed,
        &request("kubectl-edit", T1, &table),
    );
    let edit = entry(&managed, "kubectl-edit").expect("edit");
    assert_eq!(
        edit["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}})
    );
    let mut edited2 = edited.clone();
    edited2["spec"]["replicas"] = json!(4);
    edited2["metadata"]["resourceVersion"] = json!("7");
    let managed = track_update(
        Some(&edited),
        &edited2,
        &managed,
        &request("kubectl-edit", T2, &table),
    );
    let kubectl_edit: Vec<&Value> = managed
        .iter()
        .filter(|e| e["manager"] == "kubectl-edit")
        .collect();
    assert_eq!(kubectl_edit.len(), 1);
    assert_eq!(kubectl_edit[0]["time"], T2);
    assert_eq!(
        kubectl_edit[0]["fieldsV1"]["f:spec"]["f:replicas"],
        json!({})
    );
    // Removing a label removes it from its owner's set.
    let mut unlabelled = edited2.clone();
    if let Some(m) = unlabelled["metadata"].as_object_mut() {
        m.remove("labels");
    }
    let managed = track_update(
        Some(&edited2),
        &unlabelled,
        &managed,
        &request("x", T2, &table),
    );
    let create = entry(&managed, "kubectl-create").expect("create keeps containers");
    assert_eq!(create["fieldsV1"].get("f:metadata"), None);
    assert!(entry(&managed, "x").is_none());
    // A no-op write changes nothing.
    let same = track_update(
        Some(&unlabelled),
        &unlabelled,
        &managed,
        &request("y", T2, &table),
    );
    assert_eq!(same, managed);
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_before_first_apply() {
    let table = table();
    let live = deployment(json!({"replicas": 1}));
    let err = apply(
        Some(&live),
        &deployment(json!({"replicas": 2})),
        &[],
        false,
        &request("A", T1, &table),
    )
    .expect_err("conflict");
    let ApplyError::Conflicts(conflicts) = err else {
        panic!("{err}");
    };
    assert_eq!(conflicts[0].manager, BEFORE_FIRST_APPLY);
}

#[test]
fn noop_reapply_keeps_the_time() {
    let table = table();
    let config = deployment(json!({"replicas": 2}));
    let first = apply(None, &config, &[], false, &request("A", T0, &table)).expect("first");
    let again = apply(
        Some(&first.object),
        &config,
        &first.managed_fields,
        false,
        &request("A", T2, &table),
    )
    .expect("again");
    assert_eq!(again.managed_fields[0]["time"], T0);
    assert_eq!(again.object, first.object);
}

#[test]
fn invalid_configurations() {
    let table = table();
    let cases = [
        (json!([1, 2]), "not a json object"),
        (
            containers(json!([{"name": "a"}, {"name": "a"}])),
            "duplicate entries",
        ),
        (containers(json!([{"image": "x"}])), "cannot be identified"),
        (containers(json!(["x"])), "cannot be identified"),
    ];
    for (config, want) in cases {
        let err = apply(None, &config, &[], false, &request("A", T0, &table)).expect_err("invalid");
        assert!(err.to_string().contains(want), "{config}: {err}");
    }
    let err = apply(None, &json!({}), &[], false, &request("", T0, &table)).expect_err("manager");
    assert!(matches!(err, ApplyError::InvalidManager(_)));
    assert_eq!(default_manager("kubectl/v1.33.0 (linux/amd64)"), "kubectl");
    assert!(validate_manager(&"x".repeat(129)).is_err());
}

#[test]
fn custom_resources_merge_maps_and_replace_lists() {
    let table = table();
    let mut req = request("A", T0, &table);
    req.root_definition = None;
    req.ignore_status = false;
    let first = apply(
        None,
        &json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "finalizers": ["f"]},
                "spec": {"a": {"b": 1}, "list": [1, 2]}}),
        &[],
        false,
        &req,
    )
    .expect("create");
    assert_eq!(
        first.managed_fields[0]["fieldsV1"],
        json!({"f:metadata": {"f:finalizers": {"v:\"f\"": {}}}, "f:spec": {"f:a": {"f:b": {}}, "f:list": {}}})
    );
    req.manager = "B";
    let err = apply(
        Some(&first.object),
        &json!({"spec": {"list": [3]}}),
        &first.managed_fields,
        false,
        &req,
    )
    .expect_err("atomic list conflicts");
    assert!(matches!(err, ApplyError::Conflicts(ref c) if c[0].field == ".spec.list"));
}

#[test]
fn multiple_conflicts_message() {
    let conflicts = vec![
        Conflict {
            manager: "b".to_owned(),
            operation: Operation::Apply,
            api_version: "v1".to_owned(),
            subresource: None,
            field: ".x".to_owned(),
        },
        Conflict {
            manager: "a".to_owned(),
            operation: Operation::Update,
            api_version: "v1".to_owned(),
            subresource: Some("status".to_owned()),
            field: ".y".to_owned(),
        },
    ];
    assert_eq!(
        conflict_message(&conflicts),
        "Apply failed with 2 conflicts: conflicts with \"a\" with subresource \"status\" using v1:\n- .y\nconflicts with \"b\":\n- .x"
    );
}

#[test]
fn many_update_managers_are_capped() {
    let table = table();
    let mut object = deployment(json!({}));
    let mut managed = Vec::new();
    for i in 0..14 {
        let mut next = object.clone();
        next["spec"][format!("f{i}")] = json!(i);
        let now = format!("2024-01-01T00:00:{i:02}Z");
        managed = track_update(
            Some(&object),
            &next,
            &managed,
            &request(&format!("m{i}"), &now, &table),
        );
        object = next;
    }
    assert_eq!(managed.len(), MAX_UPDATE_MANAGERS);
    let bucket = entry(&managed, ANCIENT_CHANGES).expect("bucket");
    assert_eq!(
        bucket["fieldsV1"]["f:spec"].as_object().map(|m| m.len()),
        Some(5)
    );
}

/// A small deterministic generator for the no-panic sweep.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn value(&mut self, depth: usize) -> Value {
        let names = [
            "spec",
            "metadata",
            "template",
            "containers",
            "name",
            "image",
            "labels",
            "finalizers",
            "replicas",
            "status",
            "ports",
            "containerPort",
            "protocol",
            "selector",
            "args",
            "x",
        ];
        match self.next() % if depth > 4 { 5 } else { 8 } {
            0 => Value::Null,
            1 => json!(self.next().is_multiple_of(3)),
            2 => json!(self.next() % 4),
            3 => json!(names[(self.next() % 16) as usize]),
            4 => json!(-1.5),
            5 | 6 => {
                let mut map = serde_json::Map::new();
                for _ in 0..self.next() % 4 {
                    let key = names[(self.next() % 16) as usize];
                    map.insert(key.to_owned(), self.value(depth + 1));
                }
                Value::Object(map)
            }
            _ => Value::Array(
                (0..self.next() % 4)
                    .map(|_| self.value(depth + 1))
                    .collect(),
            ),
        }
    }
}

#[test]
fn random_inputs_never_panic() {
    let table = table();
    let mut rng = Lcg(7);
    let mut applied_rounds = 0;
    for round in 0..3000 {
        let live = rng.value(0);
        let config = rng.value(0);
        let managed = match rng.next() % 3 {
            0 => Vec::new(),
            1 => managed_of(&live),
            _ => vec![json!({"manager": "z", "operation": "Update", "fieldsV1": rng.value(0)})],
        };
        let req = Request {
            manager: if round % 2 == 0 { "A" } else { "B" },
            subresource: None,
            now: T0,
            root_definition: (round % 3 != 0).then_some(DEPLOYMENT),
            strategies: &table,
            ignore_status: round % 5 == 0,
        };
        let live_ref = (round % 4 != 0).then_some(&live);
        if let Ok(applied) = apply(live_ref, &config, &managed, round % 2 == 0, &req) {
            applied_rounds += 1;
            // Reapplying the same configuration right away never conflicts.
            let again = apply(
                Some(&applied.object),
                &config,
                &applied.managed_fields,
                false,
                &req,
            );
            match again {
                Ok(again) => assert_eq!(
                    again.object, applied.object,
                    "round {round}: reapply changed the object; config {config}"
                ),
                Err(e) => panic!("round {round}: live {live} config {config}: {e}"),
            }
        }
        let _ = track_update(live_ref, &config, &managed, &req);
        let _ = fields_of(&config, req.root_definition, &table, false);
    }
    assert!(applied_rounds > 500, "only {applied_rounds} rounds applied");
}

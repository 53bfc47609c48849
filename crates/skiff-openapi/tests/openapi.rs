//! End-to-end checks of the catalog, the rendered documents and strict field validation.

use std::time::Instant;

use serde_json::{Value, json};
use skiff_openapi::{Catalog, Documents, Kind};

fn build() -> (Catalog, Documents) {
    let catalog = Catalog::builtin();
    let docs = Documents::build(&catalog, catalog.builtin_kinds());
    (catalog, docs)
}

fn gv_doc(docs: &Documents, key: &str) -> Value {
    let (bytes, hash) = docs.v3_group_version(key).expect(key);
    assert_eq!(hash.len(), 128, "sha512 hex");
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// Every `$ref` in `v` names a schema present in `schemas`.
fn check_refs(
    v: &Value,
    prefix: &str,
    schemas: &serde_json::Map<String, Value>,
    doc: &str,
) -> usize {
    let mut n = 0;
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let name = r
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{doc}: foreign ref {r}"));
                assert!(schemas.contains_key(name), "{doc}: dangling ref {r}");
                n += 1;
            }
            for c in map.values() {
                n += check_refs(c, prefix, schemas, doc);
            }
        }
        Value::Array(items) => {
            for c in items {
                n += check_refs(c, prefix, schemas, doc);
            }
        }
        _ => {}
    }
    n
}

#[test]
fn index_lists_group_versions_with_hashes() {
    let (_, docs) = build();
    let index: Value = serde_json::from_slice(docs.v3_index()).unwrap();
    let paths = index["paths"].as_object().unwrap();
    for key in [
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/rbac.authorization.k8s.io/v1",
    ] {
        let url = paths[key]["serverRelativeURL"].as_str().unwrap();
        let (_, hash) = docs.v3_group_version(key).unwrap();
        assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
    }
    assert!(docs.v3_group_version("apis/nope/v1").is_none());
}

#[test]
fn core_v1_document_has_pod_operations_and_schemas() {
    let (_, docs) = build();
    let doc = gv_doc(&docs, "api/v1");
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();

    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(pod["type"], "object");
    assert_eq!(
        pod["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    assert!(pod["properties"]["spec"]["description"].is_string());
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "PodList"
    );

    let container = &schemas["io.k8s.api.core.v1.Container"];
    assert!(
        container["description"]
            .as_str()
            .unwrap()
            .contains("container")
    );
    assert!(container["properties"]["image"]["description"].is_string());

    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );

    let item = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    let patch = &item["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    assert_eq!(patch["x-kubernetes-action"], "patch");
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in ["fieldValidation", "fieldManager", "dryRun", "force"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let content = patch["requestBody"]["content"].as_object().unwrap();
    for t in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(content.contains_key(t), "{t}");
    }
    let path_params: Vec<&str> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(path_params, ["name", "namespace", "pretty"]);
    for (method, action) in [("get", "get"), ("put", "put"), ("delete", "delete")] {
        assert_eq!(item[method]["x-kubernetes-action"], action);
    }
    let coll = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(coll["get"]["x-kubernetes-action"], "list");
    assert_eq!(coll["post"]["x-kubernetes-action"], "post");
    assert_eq!(coll["delete"]["x-kubernetes-action"], "deletecollection");
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    assert_eq!(
        doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]["patch"]["x-kubernetes-group-version-kind"]
            ["kind"],
        "Pod"
    );
    // Cluster-scoped kinds have no namespace.
    assert!(doc["paths"]["/api/v1/namespaces/{name}"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
}

#[test]
fn apps_v1_document_has_scale() {
    let (_, docs) = build();
    let doc = gv_doc(&docs, "apis/apps/v1");
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    assert_eq!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]["operationId"],
        "patchAppsV1NamespacedDeployment"
    );
}

#[test]
fn every_ref_resolves_in_its_document() {
    let (_, docs) = build();
    let keys: Vec<String> = docs.v3_keys().map(str::to_owned).collect();
    assert!(keys.len() > 20, "{keys:?}");
    for key in &keys {
        let doc = gv_doc(&docs, key);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let n = check_refs(&doc, "#/components/schemas/", schemas, key);
        assert!(n > 0, "{key}");
    }
    let v2: Value = serde_json::from_slice(docs.v2()).unwrap();
    assert_eq!(v2["swagger"], "2.0");
    let defs = v2["definitions"].as_object().unwrap();
    check_refs(&v2, "#/definitions/", defs, "v2");
    assert!(
        v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]["consumes"]
            .as_array()
            .unwrap()
            .contains(&json!("application/strategic-merge-patch+json"))
    );
    assert_eq!(
        defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-patch-merge-key"],
        "name"
    );
}

#[test]
fn catalog_navigation() {
    let catalog = Catalog::builtin();
    assert_eq!(
        catalog
            .child("io.k8s.api.core.v1.PodSpec", "containers")
            .as_deref(),
        Some("io.k8s.api.core.v1.Container")
    );
    assert_eq!(
        catalog.child("io.k8s.api.core.v1.Pod", "spec").as_deref(),
        Some("io.k8s.api.core.v1.PodSpec")
    );
    assert_eq!(
        catalog
            .child("io.k8s.api.core.v1.ResourceRequirements", "limits")
            .as_deref(),
        Some("io.k8s.apimachinery.pkg.api.resource.Quantity")
    );
    assert_eq!(catalog.child("io.k8s.api.core.v1.Container", "image"), None);
    assert_eq!(catalog.child("io.k8s.api.core.v1.Container", "nope"), None);
    assert_eq!(
        catalog.definition_for("apps", "v1", "Deployment"),
        Some("io.k8s.api.apps.v1.Deployment")
    );
    assert_eq!(
        catalog.definition_for("", "v1", "ConfigMapList"),
        Some("io.k8s.api.core.v1.ConfigMapList")
    );
    assert_eq!(
        catalog.definition_for("policy", "v1", "Eviction"),
        Some("io.k8s.api.policy.v1.Eviction")
    );
    assert_eq!(
        catalog.definition_for("", "v1", "Status"),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    );
    let meta = catalog
        .patch_meta("io.k8s.api.core.v1.PodSpec", "volumes")
        .unwrap();
    assert_eq!(meta.strategy.as_deref(), Some("merge,retainKeys"));
    assert_eq!(meta.merge_key.as_deref(), Some("name"));
    let ports = catalog
        .patch_meta("io.k8s.api.core.v1.Container", "ports")
        .unwrap();
    assert_eq!(ports.list_map_keys, ["containerPort", "protocol"]);
}

#[test]
fn unknown_fields_are_reported_like_kube() {
    let catalog = Catalog::builtin();
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"example.com/anything": "goes"},
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
            "bogusMeta": 1,
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "ok", "image": "nginx"},
                        {
                            "name": "web",
                            "image": "nginx",
                            "imagePullPolcy": "Always",
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                                "requests": {"cpu": 0.25}
                            },
                            "ports": [{"containerPort": 80, "protocl": "TCP"}]
                        }
                    ]
                }
            }
        },
        "extra": true
    });
    let errors = catalog.validate_unknown_fields("io.k8s.api.apps.v1.Deployment", &deployment);
    assert_eq!(
        errors,
        [
            r#"unknown field "extra""#,
            r#"unknown field "metadata.bogusMeta""#,
            r#"unknown field "spec.template.spec.containers[1].imagePullPolcy""#,
            r#"unknown field "spec.template.spec.containers[1].ports[0].protocl""#,
        ]
    );

    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"any.key": "v", "other": "w"},
        "binaryData": {"b": "AAAA"},
    });
    assert!(
        catalog
            .validate_unknown_fields("io.k8s.api.core.v1.ConfigMap", &config_map)
            .is_empty()
    );

    // Free-form values: RawExtension inside a ControllerRevision, JSON in a CRD schema.
    let revision =
        json!({"metadata": {"name": "r"}, "revision": 1, "data": {"whatever": {"deep": [1, 2]}}});
    assert!(
        catalog
            .validate_unknown_fields("io.k8s.api.apps.v1.ControllerRevision", &revision)
            .is_empty()
    );
    let crd = json!({
        "spec": {
            "group": "example.com",
            "names": {"kind": "Foo", "plural": "foos"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "default": {"a": 1}, "x-kubernetes-preserve-unknown-fields": true}},
                }},
            }],
        },
    });
    assert!(
        catalog
            .validate_unknown_fields(
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
                &crd
            )
            .is_empty()
    );
    // Unknown definitions know everything.
    assert!(
        catalog
            .validate_unknown_fields("no.such.Thing", &json!({"x": 1}))
            .is_empty()
    );
}

#[test]
fn custom_resources_are_served_and_validated() {
    let mut catalog = Catalog::builtin();
    let kind = Kind {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
        namespaced: true,
        verbs: [
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        ]
        .iter()
        .map(|v| (*v).to_owned())
        .collect(),
        subresources: vec!["status".into()],
    };
    catalog.add_custom(
        &kind,
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "cronSpec": {"type": "string"},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "tags": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
                    },
                },
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            },
        }),
    );
    let name = catalog
        .definition_for("stable.example.com", "v1", "CronTab")
        .unwrap()
        .to_owned();
    assert_eq!(name, "com.example.stable.v1.CronTab");
    let obj = json!({
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "x", "labels": {"a": "b"}, "nope": 1},
        "spec": {
            "cronSpec": "* * * * */5",
            "cronSpek": "typo",
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bad": 1}, "spec": {"free": 1}},
            "extra": {"anything": 1, "known": {"a": "x", "b": "y"}},
            "tags": {"t1": {"v": "1", "w": "2"}},
        },
    });
    assert_eq!(
        catalog.validate_unknown_fields(&name, &obj),
        [
            r#"unknown field "metadata.nope""#,
            r#"unknown field "spec.cronSpek""#,
            r#"unknown field "spec.extra.known.b""#,
            r#"unknown field "spec.tags.t1.w""#,
            r#"unknown field "spec.template.metadata.bad""#,
        ]
    );

    let mut kinds = catalog.builtin_kinds().to_vec();
    kinds.push(kind);
    let docs = Documents::build(&catalog, &kinds);
    let doc = gv_doc(&docs, "apis/stable.example.com/v1");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    check_refs(&doc, "#/components/schemas/", schemas, "crd");
    assert_eq!(
        schemas["com.example.stable.v1.CronTab"]["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
    );
    let patch = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
        ["patch"];
    let content = patch["requestBody"]["content"].as_object().unwrap();
    assert!(!content.contains_key("application/strategic-merge-patch+json"));
    assert!(content.contains_key("application/merge-patch+json"));
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert!(doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status"]["put"].is_object());

    catalog.remove_custom("stable.example.com", "v1", "CronTab");
    assert!(
        catalog
            .definition_for("stable.example.com", "v1", "CronTab")
            .is_none()
    );
    assert!(
        catalog
            .definition_for("stable.example.com", "v1", "CronTabList")
            .is_none()
    );
}

#[test]
fn build_is_fast_and_deterministic() {
    let start = Instant::now();
    let catalog = Catalog::builtin();
    let catalog_time = start.elapsed();
    let mut build_time = std::time::Duration::MAX;
    let mut docs = None;
    for _ in 0..5 {
        let start = Instant::now();
        docs = Some(Documents::build(&catalog, catalog.builtin_kinds()));
        build_time = build_time.min(start.elapsed());
    }
    let docs = docs.unwrap();
    let again = Documents::build(&catalog, catalog.builtin_kinds());
    assert_eq!(docs.v3_index(), again.v3_index());
    assert_eq!(docs.v2(), again.v2());
    let total: usize = docs
        .v3_keys()
        .map(|k| docs.v3_group_version(k).unwrap().0.len())
        .sum();
    eprintln!(
        "catalog {catalog_time:?}, documents {build_time:?} (best of 5); api/v1 {} bytes, apps/v1 {} bytes, all v3 {total} bytes in {} documents, v2 {} bytes",
        docs.v3_group_version("api/v1").unwrap().0.len(),
        docs.v3_group_version("apis/apps/v1").unwrap().0.len(),
        docs.v3_keys().count(),
        docs.v2().len(),
    );
}

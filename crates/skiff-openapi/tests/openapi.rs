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

// ---- /openapi/v2 as protobuf ----

mod v2_protobuf {
    use prost::Message;
    use skiff_openapi::v2proto::{
        Document, NamedAny, Operation, Schema, non_body_parameter, parameter, parameters_item,
        response_value, schema_item,
    };

    use super::build;

    /// The `key: value` lines of a flat YAML mapping, or of the single mapping in a
    /// one-element sequence (`- group: apps\n  kind: ..`).
    fn yaml_map(text: &str) -> Vec<(String, String)> {
        text.lines()
            .map(|l| l.trim_start_matches("- ").trim())
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect()
    }

    fn extension<'a>(exts: &'a [NamedAny], name: &str) -> Option<&'a str> {
        exts.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_ref())
            .map(|v| v.yaml.as_str())
    }

    fn gvk(group: &str, version: &str, kind: &str) -> Vec<(String, String)> {
        vec![
            ("group".into(), group.into()),
            ("kind".into(), kind.into()),
            ("version".into(), version.into()),
        ]
    }

    fn definition<'a>(doc: &'a Document, name: &str) -> &'a Schema {
        doc.definitions
            .as_ref()
            .and_then(|d| d.additional_properties.iter().find(|n| n.name == name))
            .and_then(|n| n.value.as_ref())
            .unwrap_or_else(|| panic!("definition {name}"))
    }

    fn property<'a>(schema: &'a Schema, name: &str) -> &'a Schema {
        schema
            .properties
            .as_ref()
            .and_then(|p| p.additional_properties.iter().find(|n| n.name == name))
            .and_then(|n| n.value.as_ref())
            .unwrap_or_else(|| panic!("property {name}"))
    }

    /// The names of an operation's query parameters.
    fn query_params(op: &Operation) -> Vec<&str> {
        op.parameters
            .iter()
            .filter_map(|p| match &p.oneof {
                Some(parameters_item::Oneof::Parameter(p)) => match &p.oneof {
                    Some(parameter::Oneof::NonBodyParameter(n)) => match &n.oneof {
                        Some(non_body_parameter::Oneof::QueryParameterSubSchema(q)) => {
                            Some(q.name.as_str())
                        }
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// kubectl's `supportsQueryParam` (cli-runtime `query_param_verifier.go`): the first path
    /// whose `patch` carries the kind's `x-kubernetes-group-version-kind` decides.
    fn supports_query_param(doc: &Document, gvk: &[(String, String)], param: &str) -> bool {
        for path in &doc.paths.as_ref().expect("paths").path {
            let Some(patch) = path.value.as_ref().and_then(|p| p.patch.as_ref()) else {
                continue;
            };
            let ext = extension(&patch.vendor_extension, "x-kubernetes-group-version-kind");
            if ext.map(yaml_map).as_deref() != Some(gvk) {
                continue;
            }
            return query_params(patch).contains(&param);
        }
        panic!("no patch path for {gvk:?}");
    }

    #[test]
    fn decodes_with_what_kubectl_reads() {
        let (catalog, docs) = build();
        let bytes = docs.v2_protobuf();
        let doc = Document::decode(bytes).expect("decodes");
        assert_eq!(doc.swagger, "2.0");
        assert_eq!(doc.info.as_ref().unwrap().title, "Kubernetes");

        // The same document as the JSON one.
        assert_eq!(
            skiff_openapi::v2proto::from_json(docs.v2()).expect("JSON"),
            bytes
        );

        let deployment = definition(&doc, "io.k8s.api.apps.v1.Deployment");
        assert!(deployment.description.starts_with("Deployment enables"));
        assert_eq!(deployment.r#type.as_ref().unwrap().value, ["object"]);
        let spec = property(deployment, "spec");
        assert_eq!(spec.xref, "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
        assert_eq!(
            extension(
                &deployment.vendor_extension,
                "x-kubernetes-group-version-kind"
            ),
            Some("- group: apps\n  kind: Deployment\n  version: v1\n")
        );
        let pod = definition(&doc, "io.k8s.api.core.v1.Pod");
        let pod_gvk = extension(&pod.vendor_extension, "x-kubernetes-group-version-kind");
        assert_eq!(pod_gvk.map(yaml_map), Some(gvk("", "v1", "Pod")));
        let spec = definition(&doc, "io.k8s.api.apps.v1.DeploymentSpec");
        assert!(spec.required.contains(&"selector".to_owned()));
        let replicas = property(spec, "replicas");
        assert_eq!(
            (
                replicas.r#type.as_ref().unwrap().value.as_slice(),
                replicas.format.as_str()
            ),
            (&["integer".to_owned()][..], "int32")
        );

        let pod_spec = definition(&doc, "io.k8s.api.core.v1.PodSpec");
        let containers = property(pod_spec, "containers");
        assert_eq!(containers.r#type.as_ref().unwrap().value, ["array"]);
        let items = &containers.items.as_ref().unwrap().schema;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].xref, "#/definitions/io.k8s.api.core.v1.Container");
        let ext = |name| extension(&containers.vendor_extension, name);
        assert_eq!(ext("x-kubernetes-patch-merge-key"), Some("name\n"));
        assert_eq!(ext("x-kubernetes-patch-strategy"), Some("merge\n"));
        assert_eq!(ext("x-kubernetes-list-type"), Some("map\n"));
        assert_eq!(ext("x-kubernetes-list-map-keys"), Some("- name\n"));
        let labels = property(
            definition(&doc, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "labels",
        );
        let additional = labels.additional_properties.as_ref().unwrap();
        assert!(matches!(
            &additional.oneof,
            Some(skiff_openapi::v2proto::additional_properties_item::Oneof::Schema(s))
                if s.r#type.as_ref().unwrap().value == ["string"]
        ));

        // The patch operation kubectl looks for before create/apply.
        let paths = &doc.paths.as_ref().unwrap().path;
        let item = paths
            .iter()
            .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .and_then(|p| p.value.as_ref())
            .expect("deployment path");
        let patch = item.patch.as_ref().expect("patch");
        assert_eq!(patch.operation_id, "patchAppsV1NamespacedDeployment");
        assert!(query_params(patch).contains(&"fieldValidation"));
        assert_eq!(
            extension(&patch.vendor_extension, "x-kubernetes-group-version-kind").map(yaml_map),
            Some(gvk("apps", "v1", "Deployment"))
        );
        assert_eq!(
            extension(&patch.vendor_extension, "x-kubernetes-action"),
            Some("patch\n")
        );
        assert!(patch.parameters.iter().any(|p| matches!(
            &p.oneof,
            Some(parameters_item::Oneof::Parameter(p))
                if matches!(&p.oneof, Some(parameter::Oneof::BodyParameter(b)) if b.schema.is_some())
        )));
        let ok = patch
            .responses
            .as_ref()
            .and_then(|r| r.response_code.iter().find(|c| c.name == "200"))
            .and_then(|c| c.value.as_ref())
            .expect("200");
        let Some(response_value::Oneof::Response(ok)) = &ok.oneof else {
            panic!("200 is a response");
        };
        let Some(schema_item::Oneof::Schema(s)) = ok.schema.as_ref().and_then(|s| s.oneof.as_ref())
        else {
            panic!("200 has a schema");
        };
        assert_eq!(s.xref, "#/definitions/io.k8s.api.apps.v1.Deployment");
        assert_eq!(item.parameters.len(), 3, "name, namespace, pretty");

        // Every patchable kind passes kubectl's fieldValidation check.
        let mut checked = 0;
        for kind in catalog.builtin_kinds() {
            if kind.verbs.iter().any(|v| v == "patch") {
                let gvk = gvk(&kind.group, &kind.version, &kind.kind);
                assert!(
                    supports_query_param(&doc, &gvk, "fieldValidation"),
                    "{gvk:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked}");

        eprintln!(
            "v2: JSON {} bytes, protobuf {} bytes, {} definitions, {} paths",
            docs.v2().len(),
            bytes.len(),
            doc.definitions
                .as_ref()
                .unwrap()
                .additional_properties
                .len(),
            paths.len()
        );
    }

    /// What kube-openapi's `proto.NewOpenAPIData` (kubectl's client-side validation and
    /// `explain`) refuses: references outside `#/definitions/` or to missing definitions,
    /// several types, arrays without exactly one item schema.
    #[test]
    fn definitions_parse_like_kube_openapi() {
        fn check(s: &Schema, names: &std::collections::HashSet<&str>, at: &str) {
            if !s.xref.is_empty() {
                let name = s
                    .xref
                    .strip_prefix("#/definitions/")
                    .unwrap_or_else(|| panic!("{at}: reference {}", s.xref));
                assert!(names.contains(name), "{at}: dangling {}", s.xref);
                return;
            }
            let types = s.r#type.as_ref().map_or(&[][..], |t| t.value.as_slice());
            assert!(types.len() <= 1, "{at}: types {types:?}");
            if types == ["array"] {
                let items = s.items.as_ref().map_or(0, |i| i.schema.len());
                assert_eq!(items, 1, "{at}: array items");
            }
            for item in s.items.iter().flat_map(|i| &i.schema) {
                check(item, names, &format!("{at}[]"));
            }
            for p in s.properties.iter().flat_map(|p| &p.additional_properties) {
                check(
                    p.value.as_ref().unwrap(),
                    names,
                    &format!("{at}.{}", p.name),
                );
            }
            if let Some(skiff_openapi::v2proto::additional_properties_item::Oneof::Schema(a)) = s
                .additional_properties
                .as_ref()
                .and_then(|a| a.oneof.as_ref())
            {
                check(a, names, &format!("{at}{{}}"));
            }
        }
        let (_, docs) = build();
        let doc = Document::decode(docs.v2_protobuf()).expect("decodes");
        let defs = &doc.definitions.as_ref().unwrap().additional_properties;
        let names = defs.iter().map(|n| n.name.as_str()).collect();
        for def in defs {
            check(def.value.as_ref().unwrap(), &names, &def.name);
        }
    }
}

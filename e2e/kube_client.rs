//! End to end: a real `skiff server` driven by kube-rs, the Rust client controllers use — typed
//! CRUD and every patch type, server-side apply, the runtime watcher and reflector, a derived
//! custom resource with its status subresource, and discovery.

mod support;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Status;
use kube::discovery::{Discovery, Scope};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use support::ServerProcess;

/// Generous bound for anything the server should do promptly.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running server and a kube-rs client for its admin kubeconfig.
struct Cluster {
    client: Client,
    _dir: tempfile::TempDir,
    _server: ServerProcess,
}

async fn cluster() -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = tokio::task::spawn_blocking(move || ServerProcess::start(&data))
        .await
        .unwrap();
    let client = client_for(&server.kubeconfig).await;
    // Ready once the system namespaces answer.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        match namespaces.get("default").await {
            Ok(_) => break,
            Err(e) => assert!(started.elapsed() < PATIENCE, "not ready in 30 s: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Cluster {
        client,
        _dir: dir,
        _server: server,
    }
}

async fn client_for(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read the server's kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config from the kubeconfig");
    Client::try_from(config).expect("kube client")
}

async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// The Status of a failed call; panics if the call succeeded or failed otherwise.
fn api_error<T: Debug>(result: kube::Result<T>) -> Box<Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected a Kubernetes Status error, got {other:?}"),
    }
}

fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<_, _> = labels.iter().copied().collect();
    let data: BTreeMap<_, _> = data.iter().copied().collect();
    serde_json::from_value(json!({
        "metadata": { "name": name, "labels": labels },
        "data": data,
    }))
    .unwrap()
}

fn data_of(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

fn deployment_json(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "containers": [
                        { "name": "app", "image": "registry.example/app:1" },
                        { "name": "sidecar", "image": "registry.example/sidecar:1" },
                    ],
                },
            },
        },
    })
}

fn images(deployment: &Deployment) -> Vec<(String, String)> {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_creates_lists_patches_and_deletes() {
    let cluster = cluster().await;
    let client = cluster.client.clone();
    create_namespace(&client, "crud").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "crud");

    // Create and get.
    let created = cms
        .create(
            &PostParams::default(),
            &configmap("one", &[("tier", "front")], &[("a", "1")]),
        )
        .await
        .expect("create configmap");
    assert_eq!(created.name_any(), "one");
    assert_eq!(created.namespace().as_deref(), Some("crud"));
    assert!(created.uid().is_some(), "uid set on create");
    assert!(created.resource_version().is_some(), "resourceVersion set");
    assert!(created.metadata.creation_timestamp.is_some());
    let got = cms.get("one").await.expect("get configmap");
    assert_eq!(got.uid(), created.uid());
    assert_eq!(data_of(&got), BTreeMap::from([("a".into(), "1".into())]));

    // Creating it again is a 409 AlreadyExists.
    let already_exists = api_error(
        cms.create(&PostParams::default(), &configmap("one", &[], &[]))
            .await,
    );
    assert_eq!(
        (already_exists.code, already_exists.reason.as_str()),
        (409, "AlreadyExists")
    );

    // List with a label selector.
    cms.create(
        &PostParams::default(),
        &configmap("two", &[("tier", "back")], &[]),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &configmap("three", &[("tier", "front")], &[]),
    )
    .await
    .unwrap();
    let front = cms
        .list(&ListParams::default().labels("tier=front"))
        .await
        .expect("list by label");
    let mut names: Vec<String> = front.iter().map(ResourceExt::name_any).collect();
    names.sort();
    assert_eq!(names, ["one", "three"]);
    assert!(front.metadata.resource_version.is_some());
    let not_front = cms
        .list(&ListParams::default().labels("tier!=front,tier"))
        .await
        .unwrap();
    let names: Vec<String> = not_front.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["two"]);

    // JSON merge patch: add a key, remove another by null.
    let stale = cms.get("one").await.unwrap();
    let merged = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "b": "2", "a": null } })),
        )
        .await
        .expect("merge patch");
    assert_eq!(data_of(&merged), BTreeMap::from([("b".into(), "2".into())]));
    assert_ne!(merged.resource_version(), stale.resource_version());

    // JSON patch (RFC 6902), with a test operation.
    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/data/b", "value": "2" },
        { "op": "add", "path": "/data/c", "value": "3" },
        { "op": "replace", "path": "/data/b", "value": "22" },
    ]))
    .unwrap();
    let patched = cms
        .patch("one", &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .expect("json patch");
    assert_eq!(
        data_of(&patched),
        BTreeMap::from([("b".into(), "22".into()), ("c".into(), "3".into())])
    );
    // A failing test operation leaves the object alone and is refused (422 in kube-apiserver).
    let failing: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/data/b", "value": "nope" },
        { "op": "add", "path": "/data/d", "value": "4" },
    ]))
    .unwrap();
    let status = api_error(
        cms.patch("one", &PatchParams::default(), &Patch::Json::<()>(failing))
            .await,
    );
    assert_eq!(status.code, 422, "failed test op: {status:?}");
    assert_eq!(data_of(&cms.get("one").await.unwrap()).len(), 2);

    // Replace with a stale resourceVersion: 409 Conflict.
    let conflict = api_error(cms.replace("one", &PostParams::default(), &stale).await);
    assert_eq!(
        (conflict.code, conflict.reason.as_str()),
        (409, "Conflict"),
        "{conflict:?}"
    );
    // Replace with the current one succeeds.
    let mut current = cms.get("one").await.unwrap();
    current.data = Some(BTreeMap::from([("z".into(), "26".into())]));
    let replaced = cms
        .replace("one", &PostParams::default(), &current)
        .await
        .expect("replace with the current resourceVersion");
    assert_eq!(
        data_of(&replaced),
        BTreeMap::from([("z".into(), "26".into())])
    );

    // Strategic merge patch on a Deployment: a container is replaced by its merge key (name),
    // the other one stays; a JSON merge patch of the same list replaces the list.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "crud");
    let deployment: Deployment = serde_json::from_value(deployment_json("web", 1)).unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let strategic = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "spec": { "template": { "spec": { "containers": [
                    { "name": "app", "image": "registry.example/app:2" },
                ] } } }
            })),
        )
        .await
        .expect("strategic merge patch");
    assert_eq!(
        images(&strategic),
        pairs(&[
            ("app", "registry.example/app:2"),
            ("sidecar", "registry.example/sidecar:1"),
        ])
    );
    assert_eq!(
        strategic.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    // $patch: delete removes one element by its key.
    let strategic = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "spec": { "template": { "spec": { "containers": [
                    { "name": "sidecar", "$patch": "delete" },
                ] } } }
            })),
        )
        .await
        .expect("strategic merge patch with $patch: delete");
    assert_eq!(
        images(&strategic),
        pairs(&[("app", "registry.example/app:2")])
    );
    let merged = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": { "template": { "spec": { "containers": [
                    { "name": "other", "image": "registry.example/other:1" },
                ] } } }
            })),
        )
        .await
        .expect("merge patch of a list");
    assert_eq!(
        images(&merged),
        pairs(&[("other", "registry.example/other:1")])
    );

    // Delete, then get: 404 NotFound naming the object.
    cms.delete("one", &DeleteParams::default())
        .await
        .expect("delete configmap");
    let not_found = api_error(cms.get("one").await);
    assert_eq!(
        (not_found.code, not_found.reason.as_str()),
        (404, "NotFound"),
        "{not_found:?}"
    );
    assert_eq!(cms.get_opt("one").await.unwrap(), None);
    // Deleting again is a 404 too.
    let status = api_error(cms.delete("one", &DeleteParams::default()).await);
    assert_eq!(status.code, 404);

    // kube-apiserver names the object in these Statuses' details (kind is the resource).
    for status in [&already_exists, &conflict, &not_found] {
        let details = status
            .details
            .as_ref()
            .unwrap_or_else(|| panic!("{} Status has details: {status:?}", status.reason));
        assert_eq!(
            (
                details.name.as_str(),
                details.group.as_str(),
                details.kind.as_str()
            ),
            ("one", "", "configmaps"),
            "{status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_server_side_apply_with_conflicts_and_force() {
    let cluster = cluster().await;
    let client = cluster.client.clone();
    create_namespace(&client, "ssa").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "ssa");

    // mgr-a creates the Deployment by applying it.
    let applied = deployments
        .patch(
            "web",
            &PatchParams::apply("mgr-a"),
            &Patch::Apply(deployment_json("web", 1)),
        )
        .await
        .expect("apply creates the deployment");
    assert_eq!(applied.spec.as_ref().unwrap().replicas, Some(1));
    let managers = applied.managed_fields();
    assert_eq!(managers.len(), 1, "{managers:?}");
    assert_eq!(managers[0].manager.as_deref(), Some("mgr-a"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));
    assert_eq!(managers[0].fields_type.as_deref(), Some("FieldsV1"));
    let owned = &managers[0].fields_v1.as_ref().expect("fieldsV1").0;
    assert!(
        owned["f:spec"]["f:replicas"].is_object(),
        "mgr-a owns spec.replicas: {owned}"
    );

    // Re-applying the same configuration is a no-op for the manager set.
    let again = deployments
        .patch(
            "web",
            &PatchParams::apply("mgr-a"),
            &Patch::Apply(deployment_json("web", 1)),
        )
        .await
        .expect("re-apply");
    assert_eq!(again.managed_fields().len(), 1);

    // mgr-b applying a different replicas conflicts with mgr-a.
    let mgr_b_config = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": { "replicas": 3 },
    });
    let status = api_error(
        deployments
            .patch(
                "web",
                &PatchParams::apply("mgr-b"),
                &Patch::Apply(mgr_b_config.clone()),
            )
            .await,
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "Conflict"),
        "{status:?}"
    );
    let causes = &status.details.as_ref().expect("conflict details").causes;
    assert!(
        causes
            .iter()
            .any(|c| c.reason == "FieldManagerConflict" && c.field == ".spec.replicas"),
        "causes name the conflicting field: {causes:?}"
    );
    assert!(
        causes.iter().all(|c| c.message.contains("mgr-a")),
        "causes name the other manager: {causes:?}"
    );
    let unchanged = deployments.get("web").await.unwrap();
    assert_eq!(unchanged.spec.as_ref().unwrap().replicas, Some(1));

    // Forced, mgr-b takes replicas over.
    let forced = deployments
        .patch(
            "web",
            &PatchParams::apply("mgr-b").force(),
            &Patch::Apply(mgr_b_config),
        )
        .await
        .expect("forced apply");
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(3));
    let entry = |manager: &str| {
        forced
            .managed_fields()
            .iter()
            .find(|m| m.manager.as_deref() == Some(manager))
            .cloned()
            .unwrap_or_else(|| panic!("{manager} in managedFields: {:?}", forced.managed_fields()))
    };
    let a = entry("mgr-a").fields_v1.unwrap().0;
    let b = entry("mgr-b").fields_v1.unwrap().0;
    assert!(
        b["f:spec"]["f:replicas"].is_object(),
        "mgr-b owns replicas: {b}"
    );
    assert!(
        a["f:spec"].get("f:replicas").is_none(),
        "mgr-a lost replicas: {a}"
    );
    assert!(
        a["f:spec"]["f:template"].is_object(),
        "mgr-a keeps the template: {a}"
    );

    // A non-apply write by another manager shows up as an Update entry.
    let updated = deployments
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("mgr-c".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({ "metadata": { "labels": { "team": "c" } } })),
        )
        .await
        .expect("merge patch with a field manager");
    let c = updated
        .managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some("mgr-c"))
        .cloned()
        .expect("mgr-c in managedFields");
    assert_eq!(c.operation.as_deref(), Some("Update"));
}

/// The next watcher event, within the patience bound.
async fn next_event<S, K>(stream: &mut S) -> watcher::Event<K>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
{
    within("watcher event", stream.next())
        .await
        .expect("the watcher stream goes on")
        .expect("no watcher error")
}

fn event_summary(event: &watcher::Event<ConfigMap>) -> (String, String, String) {
    let (what, cm) = match event {
        watcher::Event::Init => return ("Init".into(), String::new(), String::new()),
        watcher::Event::InitDone => return ("InitDone".into(), String::new(), String::new()),
        watcher::Event::InitApply(cm) => ("InitApply", cm),
        watcher::Event::Apply(cm) => ("Apply", cm),
        watcher::Event::Delete(cm) => ("Delete", cm),
    };
    let value = data_of(cm).get("k").cloned().unwrap_or_default();
    (what.into(), cm.name_any(), value)
}

fn summary(what: &str, name: &str, value: &str) -> (String, String, String) {
    (what.into(), name.into(), value.into())
}

async fn watcher_sees_changes(cms: &Api<ConfigMap>, config: watcher::Config, tag: &str) {
    let first = format!("{tag}-first");
    let second = format!("{tag}-second");
    cms.create(
        &PostParams::default(),
        &configmap(&first, &[("watch", tag)], &[("k", "1")]),
    )
    .await
    .unwrap();
    // Streaming lists and `any` lists start at resourceVersion=0: whatever the watch cache has,
    // which may trail a write just acknowledged (in kube-apiserver too). A consistent list
    // (no resourceVersion) waits for the cache to catch up, so the initial state is known.
    cms.list(&ListParams::default()).await.unwrap();
    let config = config.labels(&format!("watch={tag}"));
    let mut stream = watcher(cms.clone(), config).boxed();

    // The initial state: Init, the one object, InitDone.
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("Init", "", "")
    );
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("InitApply", &first, "1")
    );
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("InitDone", "", "")
    );

    // Then changes, in order.
    cms.create(
        &PostParams::default(),
        &configmap(&second, &[("watch", tag)], &[("k", "2")]),
    )
    .await
    .unwrap();
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("Apply", &second, "2")
    );
    cms.patch(
        &first,
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "11" } })),
    )
    .await
    .unwrap();
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("Apply", &first, "11")
    );
    // A change that takes the object out of the selector is a delete for this watch.
    cms.patch(
        &second,
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "labels": { "watch": "elsewhere" } } })),
    )
    .await
    .unwrap();
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("Delete", &second, "2")
    );
    cms.delete(&first, &DeleteParams::default()).await.unwrap();
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("Delete", &first, "11")
    );
    // An object of another selector never shows up; the next matching one does.
    cms.create(
        &PostParams::default(),
        &configmap(&format!("{tag}-other"), &[("watch", "other")], &[]),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &configmap(&format!("{tag}-third"), &[("watch", tag)], &[("k", "3")]),
    )
    .await
    .unwrap();
    assert_eq!(
        event_summary(&next_event(&mut stream).await),
        summary("Apply", &format!("{tag}-third"), "3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watcher_and_reflector_follow_changes() {
    let cluster = cluster().await;
    let client = cluster.client.clone();
    create_namespace(&client, "watch").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "watch");

    // list-then-watch (the default), and a streaming list (sendInitialEvents, ended by a
    // bookmark annotated k8s.io/initial-events-end).
    watcher_sees_changes(&cms, watcher::Config::default(), "listwatch").await;
    watcher_sees_changes(
        &cms,
        watcher::Config::default().streaming_lists(),
        "streaming",
    )
    .await;
    // A list served from the watch cache (resourceVersion=0, "any") behaves the same.
    watcher_sees_changes(&cms, watcher::Config::default().any_semantic(), "any").await;

    // A reflector's store reaches the namespace's contents and follows it.
    create_namespace(&client, "reflect").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "reflect");
    for name in ["a", "b"] {
        cms.create(
            &PostParams::default(),
            &configmap(name, &[], &[("k", name)]),
        )
        .await
        .unwrap();
    }
    let (store, writer) = reflector::store::<ConfigMap>();
    let stream = reflector::reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().streaming_lists()),
    )
    .applied_objects();
    let task = tokio::spawn(stream.try_for_each(|_| async { Ok(()) }));
    within("reflector ready", store.wait_until_ready())
        .await
        .unwrap();

    let contents = || {
        let mut all: Vec<(String, String)> = store
            .state()
            .iter()
            .map(|cm| {
                (
                    cm.name_any(),
                    data_of(cm).get("k").cloned().unwrap_or_default(),
                )
            })
            .collect();
        all.sort();
        all
    };
    // kube-root-ca.crt is not published by skiff (no controller manager), so only ours.
    let ours = |all: Vec<(String, String)>| -> Vec<(String, String)> {
        all.into_iter()
            .filter(|(name, _)| name != "kube-root-ca.crt")
            .collect()
    };
    // The streaming list is served from the watch cache (resourceVersion=0), which may trail
    // the writes above for a moment; the store reaches them either way.
    let eventually = async |expected: Vec<(String, String)>| {
        let started = Instant::now();
        while ours(contents()) != expected {
            assert!(
                started.elapsed() < PATIENCE,
                "store reached {:?}, expected {expected:?}",
                contents()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    eventually(pairs(&[("a", "a"), ("b", "b")])).await;

    cms.create(&PostParams::default(), &configmap("c", &[], &[("k", "c")]))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "k": "a2" } })),
    )
    .await
    .unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    eventually(pairs(&[("a", "a2"), ("c", "c")])).await;
    let c = store
        .get(&ObjectRef::new("c").within("reflect"))
        .expect("c in the store by reference");
    assert_eq!(c.namespace().as_deref(), Some("reflect"));
    assert!(!task.is_finished(), "the reflector keeps running");
    task.abort();
}

/// A small custom kind, defined in Rust.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "e2e.skiff.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wdg",
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size")
)]
pub struct WidgetSpec {
    size: i32,
    color: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct WidgetStatus {
    ready: bool,
    observed_size: i32,
}

async fn install_widget_crd(client: &Client) -> Api<CustomResourceDefinition> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Widget::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("widgets.e2e.skiff.dev"));
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create the derived CRD");
    within(
        "CRD Established",
        await_condition(
            crds.clone(),
            "widgets.e2e.skiff.dev",
            conditions::is_crd_established(),
        ),
    )
    .await
    .expect("watch the CRD");
    crds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_custom_resource_round_trip() {
    let cluster = cluster().await;
    let client = cluster.client.clone();
    create_namespace(&client, "crs").await;
    let crds = install_widget_crd(&client).await;

    let widgets: Api<Widget> = Api::namespaced(client.clone(), "crs");
    let spec = WidgetSpec {
        size: 3,
        color: "blue".into(),
        note: None,
    };
    let created = widgets
        .create(&PostParams::default(), &Widget::new("w1", spec.clone()))
        .await
        .expect("create a Widget");
    assert_eq!(created.spec, spec);
    assert_eq!(created.status, None);
    assert_eq!(created.metadata.generation, Some(1));
    let got = widgets.get("w1").await.expect("get the Widget");
    assert_eq!(got.uid(), created.uid());
    widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "w2",
                WidgetSpec {
                    size: 5,
                    color: "red".into(),
                    note: Some("second".into()),
                },
            ),
        )
        .await
        .unwrap();
    let mut names: Vec<String> = widgets
        .list(&ListParams::default())
        .await
        .expect("list Widgets")
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    assert_eq!(names, ["w1", "w2"]);
    let all: Api<Widget> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );

    // The schema is enforced: a string where an integer belongs is a 422 Invalid.
    let invalid = api_error(
        widgets
            .patch(
                "w1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "size": "big" } })),
            )
            .await,
    );
    assert_eq!(
        (invalid.code, invalid.reason.as_str()),
        (422, "Invalid"),
        "{invalid:?}"
    );

    // Status through the status subresource: spec and generation untouched.
    let with_status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "ready": true, "observed_size": 3 } })),
        )
        .await
        .expect("patch the status subresource");
    assert_eq!(
        with_status.status,
        Some(WidgetStatus {
            ready: true,
            observed_size: 3,
        })
    );
    assert_eq!(with_status.spec, spec);
    assert_eq!(with_status.metadata.generation, Some(1));
    let status_read = widgets.get_status("w1").await.expect("get status");
    assert_eq!(status_read.status, with_status.status);

    // The main resource ignores status; a spec change bumps generation.
    let patched = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": { "size": 4 },
                "status": { "ready": false, "observed_size": 0 },
            })),
        )
        .await
        .expect("merge patch the Widget");
    assert_eq!(patched.spec.size, 4);
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(
        patched.status, with_status.status,
        "status kept: {patched:?}"
    );

    // Server-side apply works for custom resources too.
    let applied = widgets
        .patch(
            "w3",
            &PatchParams::apply("widget-tool"),
            &Patch::Apply(json!({
                "apiVersion": "e2e.skiff.dev/v1",
                "kind": "Widget",
                "metadata": { "name": "w3" },
                "spec": { "size": 1, "color": "green" },
            })),
        )
        .await
        .expect("apply a Widget");
    assert_eq!(applied.spec.color, "green");
    assert!(!applied.managed_fields().is_empty());

    // Deleting the CRD removes its objects and stops serving the kind.
    crds.delete("widgets.e2e.skiff.dev", &DeleteParams::default())
        .await
        .expect("delete the CRD");
    let started = Instant::now();
    loop {
        let gone = crds
            .get_opt("widgets.e2e.skiff.dev")
            .await
            .unwrap()
            .is_none();
        let served = widgets.list(&ListParams::default()).await;
        if gone && matches!(&served, Err(kube::Error::Api(s)) if s.code == 404) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "CRD still there ({}) or kind still served: {served:?}",
            !gone
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // kube-apiserver's Invalid Status names the object (group and kind) and lists the causes.
    let details = invalid
        .details
        .as_ref()
        .unwrap_or_else(|| panic!("Invalid Status has details: {invalid:?}"));
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("w1", "e2e.skiff.dev", "Widget"),
        "{invalid:?}"
    );
    assert!(
        details
            .causes
            .iter()
            .any(|c| c.reason == "FieldValueTypeInvalid" && c.field == "spec.size"),
        "{invalid:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_discovery_sees_builtin_and_custom_groups() {
    let cluster = cluster().await;
    let client = cluster.client.clone();
    install_widget_crd(&client).await;

    // kube-rs has two discovery paths: one request per group version, and aggregated.
    for aggregated in [false, true] {
        let discovery = Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await
        } else {
            discovery.run().await
        }
        .unwrap_or_else(|e| panic!("discovery (aggregated: {aggregated}): {e}"));

        // The core group.
        let core = discovery.get("").expect("the core group");
        let (configmaps, caps) = core.recommended_kind("ConfigMap").expect("ConfigMap");
        assert_eq!(
            (configmaps.version.as_str(), configmaps.plural.as_str()),
            ("v1", "configmaps")
        );
        assert_eq!(caps.scope, Scope::Namespaced);
        let (namespaces, caps) = core.recommended_kind("Namespace").expect("Namespace");
        assert_eq!(namespaces.plural, "namespaces");
        assert_eq!(caps.scope, Scope::Cluster);

        // apps/v1 Deployment with its subresources.
        assert!(discovery.has_group("apps"));
        let apps = discovery.get("apps").unwrap();
        assert_eq!(apps.preferred_version(), Some("v1"));
        let (deployments, caps) = apps.recommended_kind("Deployment").expect("Deployment");
        assert_eq!(deployments.api_version, "apps/v1");
        assert_eq!(deployments.plural, "deployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.supports_operation("watch"), "{:?}", caps.operations);
        assert!(caps.supports_operation("patch"), "{:?}", caps.operations);
        let mut subresources: Vec<&str> = caps
            .subresources
            .iter()
            .map(|(r, _)| r.plural.as_str())
            .collect();
        subresources.sort();
        assert_eq!(
            subresources,
            ["scale", "status"],
            "aggregated: {aggregated}"
        );

        // The CRD's group, resolved by group, version and kind too.
        assert!(
            discovery.has_group("e2e.skiff.dev"),
            "aggregated: {aggregated}"
        );
        let group = discovery.get("e2e.skiff.dev").unwrap();
        assert_eq!(group.versions().collect::<Vec<_>>(), ["v1"]);
        let (widgets, caps) = group.recommended_kind("Widget").expect("Widget");
        assert_eq!(widgets.plural, "widgets");
        assert_eq!(caps.scope, Scope::Namespaced);
        let gvk = kube::api::GroupVersionKind::gvk("e2e.skiff.dev", "v1", "Widget");
        let (resolved, _) = discovery.resolve_gvk(&gvk).expect("resolve Widget by gvk");
        assert_eq!(resolved.plural, "widgets");
        let status_sub: Vec<&str> = caps
            .subresources
            .iter()
            .map(|(r, _)| r.plural.as_str())
            .collect();
        assert_eq!(status_sub, ["status"], "aggregated: {aggregated}");
    }
}

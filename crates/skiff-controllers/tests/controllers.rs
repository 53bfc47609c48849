//! The controllers against a real in-process API server (`skiff_testkit::TestServer`): each
//! test starts a server, runs the controller it is about, changes objects through the API and
//! waits (at most 20 s) for the controller to converge.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use skiff_controllers::Config;
use skiff_testkit::TestServer;
use skiff_testkit::eventually;
use skiff_workloads::Informers;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

/// A server and the controllers running against it.
struct Cluster {
    server: TestServer,
    stop: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

impl Cluster {
    async fn start<F, Fut>(controllers: F) -> Cluster
    where
        F: FnOnce(Informers, Config, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = TestServer::start().await.unwrap();
        let stop = CancellationToken::new();
        let mut config = Config::new(CA);
        config.discovery_interval = Duration::from_secs(5);
        let informers = Informers::new(server.client(), stop.clone());
        let running = tokio::spawn(controllers(informers, config, stop.clone()));
        Cluster {
            server,
            stop,
            running,
        }
    }

    fn client(&self) -> Client {
        self.server.client()
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.running)
            .await
            .expect("the controllers stop when asked")
            .unwrap()
            .unwrap();
        self.server.stop().await;
    }
}

async fn create_namespace(client: &Client, name: &str) -> Namespace {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap()
}

fn config_map(name: &str, owners: Vec<OwnerReference>, finalizers: &[&str]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            owner_references: (!owners.is_empty()).then_some(owners),
            finalizers: (!finalizers.is_empty())
                .then(|| finalizers.iter().map(|f| (*f).to_owned()).collect()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
        ..ConfigMap::default()
    }
}

fn owned_by(owner: &ConfigMap, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "ConfigMap".to_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap(),
        block_owner_deletion: block.then_some(true),
        controller: None,
    }
}

async fn remove_finalizers(api: &Api<ConfigMap>, name: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_namespace_gets_the_default_service_account_and_root_ca() {
    let cluster = Cluster::start(skiff_controllers::serviceaccounts::run).await;
    let client = cluster.client();
    create_namespace(&client, "team-a").await;
    for namespace in ["default", "team-a"] {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        eventually("the default service account", || async {
            accounts.get_opt("default").await.unwrap()
        })
        .await;
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let root = eventually("kube-root-ca.crt", || async {
            maps.get_opt("kube-root-ca.crt").await.unwrap()
        })
        .await;
        assert_eq!(root.data.unwrap()["ca.crt"], CA);
        assert!(
            root.metadata.annotations.unwrap()["kubernetes.io/description"]
                .contains("verify the kube-apiserver")
        );
    }

    // Deleted or changed: put back.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    let old_account = accounts.get("default").await.unwrap().uid();
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    maps.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "ca.crt": "tampered", "extra": "x" } })),
    )
    .await
    .unwrap();
    eventually("the default service account again", || async {
        accounts
            .get_opt("default")
            .await
            .unwrap()
            .filter(|a| a.uid() != old_account)
    })
    .await;
    eventually("the root CA restored", || async {
        let data = maps.get("kube-root-ca.crt").await.unwrap().data?;
        (data == BTreeMap::from([("ca.crt".to_owned(), CA.to_owned())])).then_some(())
    })
    .await;
    maps.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    eventually("kube-root-ca.crt again", || async {
        maps.get_opt("kube-root-ca.crt").await.unwrap()
    })
    .await;
    cluster.stop().await;
}

/// Content of every kind goes; the conditions say what is left; the finalizer goes last.
#[tokio::test]
async fn deleting_a_namespace_deletes_its_content_then_finalizes_it() {
    let cluster = Cluster::start(skiff_controllers::run).await;
    let client = cluster.client();
    create_namespace(&client, "doomed").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "doomed");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "doomed");
    for name in ["one", "two"] {
        maps.create(&PostParams::default(), &config_map(name, vec![], &[]))
            .await
            .unwrap();
    }
    maps.create(
        &PostParams::default(),
        &config_map("held", vec![], &["example.com/hold"]),
    )
    .await
    .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": { "name": "token" },
        "stringData": { "password": "hunter2" },
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "nginx" }] },
            },
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();

    // Everything without a finalizer goes; the held ConfigMap stays, and the conditions say so.
    let conditions = eventually("conditions naming the finalizer", || async {
        let namespace = namespaces.get("doomed").await.unwrap();
        let conditions = namespace.status?.conditions?;
        let finalizers = conditions
            .iter()
            .find(|c| c.type_ == "NamespaceFinalizersRemaining")?;
        (finalizers.status == "True").then_some(conditions)
    })
    .await;
    let by_type = |kind: &str| conditions.iter().find(|c| c.type_ == kind).unwrap();
    assert_eq!(
        by_type("NamespaceFinalizersRemaining").message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
    );
    assert_eq!(by_type("NamespaceContentRemaining").status, "True");
    assert_eq!(
        by_type("NamespaceContentRemaining").reason.as_deref(),
        Some("SomeResourcesRemain")
    );
    assert_eq!(by_type("NamespaceDeletionDiscoveryFailure").status, "False");
    assert_eq!(by_type("NamespaceDeletionContentFailure").status, "False");
    eventually("content without finalizers gone", || async {
        let maps = maps.list(&ListParams::default()).await.unwrap().items;
        let secrets = secrets.list(&ListParams::default()).await.unwrap().items;
        let deployments = deployments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        (maps.len() == 1 && secrets.is_empty() && deployments.is_empty()).then_some(())
    })
    .await;
    let held = maps.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let namespace = namespaces.get("doomed").await.unwrap();
    assert_eq!(
        namespace.spec.unwrap().finalizers,
        Some(vec!["kubernetes".to_owned()])
    );

    remove_finalizers(&maps, "held").await;
    // With the finalize subresource the namespace goes; without it, the finalizer is gone.
    eventually("the namespace finalized", || async {
        match namespaces.get_opt("doomed").await.unwrap() {
            None => Some(()),
            Some(namespace) => {
                let finalizers = namespace.spec?.finalizers.unwrap_or_default();
                finalizers.is_empty().then_some(())
            }
        }
    })
    .await;
    assert!(
        maps.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    cluster.stop().await;
}

#[tokio::test]
async fn a_deleted_namespace_disappears_once_empty() {
    let cluster = Cluster::start(skiff_controllers::namespace::run).await;
    let client = cluster.client();
    create_namespace(&client, "short-lived").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "short-lived");
    maps.create(&PostParams::default(), &config_map("one", vec![], &[]))
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("short-lived", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the namespace gone", || async {
        namespaces
            .get_opt("short-lived")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test]
async fn dependents_of_a_deleted_owner_are_collected() {
    let cluster = Cluster::start(skiff_controllers::gc::run).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", vec![], &[]))
        .await
        .unwrap();
    let dependent = config_map("dependent", vec![owned_by(&owner, false)], &[]);
    maps.create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    // A second owner keeps an object alive after the first goes (only the reference goes).
    let other = maps
        .create(&PostParams::default(), &config_map("other", vec![], &[]))
        .await
        .unwrap();
    let shared = config_map(
        "shared",
        vec![owned_by(&owner, false), owned_by(&other, false)],
        &[],
    );
    maps.create(&PostParams::default(), &shared).await.unwrap();
    // An owner that never existed.
    let mut ghost = owned_by(&owner, false);
    ghost.name = "ghost".to_owned();
    ghost.uid = "00000000-0000-0000-0000-000000000000".to_owned();
    maps.create(
        &PostParams::default(),
        &config_map("haunted", vec![ghost], &[]),
    )
    .await
    .unwrap();

    // Nothing happens while the owner is there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(maps.get_opt("dependent").await.unwrap().is_some());

    maps.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the dependent collected", || async {
        maps.get_opt("dependent")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    eventually("the object with a missing owner collected", || async {
        maps.get_opt("haunted")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let shared = eventually("the shared dependent keeps one owner", || async {
        let shared = maps.get("shared").await.unwrap();
        (shared.owner_references().len() == 1).then_some(shared)
    })
    .await;
    assert_eq!(shared.owner_references()[0].name, "other");
    cluster.stop().await;
}

#[tokio::test]
async fn a_foreground_deletion_waits_for_blocking_dependents() {
    let cluster = Cluster::start(skiff_controllers::gc::run).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", vec![], &[]))
        .await
        .unwrap();
    // The blocking dependent holds a finalizer of its own, so its deletion can be watched.
    maps.create(
        &PostParams::default(),
        &config_map(
            "blocking",
            vec![owned_by(&owner, true)],
            &["example.com/hold"],
        ),
    )
    .await
    .unwrap();
    maps.create(
        &PostParams::default(),
        &config_map("plain", vec![owned_by(&owner, false)], &[]),
    )
    .await
    .unwrap();

    maps.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the blocking dependent marked for deletion", || async {
        let blocking = maps.get("blocking").await.unwrap();
        blocking.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    eventually("the other dependent gone", || async {
        maps.get_opt("plain").await.unwrap().is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = maps
        .get_opt("owner")
        .await
        .unwrap()
        .expect("the owner waits for its blocking dependent");
    assert!(
        waiting
            .finalizers()
            .contains(&"foregroundDeletion".to_owned())
    );

    remove_finalizers(&maps, "blocking").await;
    eventually("the owner gone after its dependents", || async {
        maps.get_opt("owner").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(maps.get_opt("blocking").await.unwrap().is_none());
    cluster.stop().await;
}

#[tokio::test]
async fn an_orphaning_deletion_keeps_dependents_without_the_reference() {
    let cluster = Cluster::start(skiff_controllers::gc::run).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", vec![], &[]))
        .await
        .unwrap();
    for name in ["first", "second"] {
        maps.create(
            &PostParams::default(),
            &config_map(name, vec![owned_by(&owner, true)], &[]),
        )
        .await
        .unwrap();
    }
    maps.delete("owner", &DeleteParams::orphan()).await.unwrap();
    eventually("the owner gone", || async {
        maps.get_opt("owner").await.unwrap().is_none().then_some(())
    })
    .await;
    // Past the point where a background collection would have struck.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for name in ["first", "second"] {
        let dependent = maps.get(name).await.unwrap();
        assert!(dependent.owner_references().is_empty(), "{name}");
        assert!(dependent.metadata.deletion_timestamp.is_none(), "{name}");
    }
    cluster.stop().await;
}

/// A chain (owner ← middle ← leaf, all blocking) deleted in the foreground goes leaf first.
#[tokio::test]
async fn a_foreground_deletion_goes_down_a_chain() {
    let cluster = Cluster::start(skiff_controllers::gc::run).await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let top = maps
        .create(&PostParams::default(), &config_map("top", vec![], &[]))
        .await
        .unwrap();
    let middle = maps
        .create(
            &PostParams::default(),
            &config_map("middle", vec![owned_by(&top, true)], &[]),
        )
        .await
        .unwrap();
    maps.create(
        &PostParams::default(),
        &config_map("leaf", vec![owned_by(&middle, true)], &["example.com/hold"]),
    )
    .await
    .unwrap();
    maps.delete("top", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the leaf marked for deletion", || async {
        let leaf = maps.get("leaf").await.unwrap();
        leaf.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(maps.get_opt("middle").await.unwrap().is_some());
    remove_finalizers(&maps, "leaf").await;
    eventually("the whole chain gone", || async {
        let left = maps.list(&ListParams::default()).await.unwrap().items;
        (!left
            .iter()
            .any(|m| ["top", "middle", "leaf"].contains(&m.name_any().as_str())))
        .then_some(())
    })
    .await;
    cluster.stop().await;
}

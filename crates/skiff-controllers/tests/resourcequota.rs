//! The resourcequota controller against a real in-process API server
//! (`skiff_testkit::TestServer`), together with the API server's quota admission: a new
//! quota is counted, creates are charged and refused past `hard`, and usage comes back when
//! pods finish or objects are deleted.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use skiff_controllers::Config;
use skiff_testkit::TestServer;
use skiff_testkit::eventually;
use skiff_workloads::Informers;
use tokio_util::sync::CancellationToken;

/// The quota's `status.used` once it equals `expected`.
async fn used_becomes(quotas: &Api<ResourceQuota>, expected: Value) {
    let what = format!("status.used to be {expected}");
    eventually(&what, || async {
        let quota = quotas.get("q").await.ok()?;
        let used = serde_json::to_value(quota.status?.used?).ok()?;
        (used == expected).then_some(())
    })
    .await;
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap()
}

fn forbidden_message(result: Result<impl std::fmt::Debug, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => status.message,
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn quota_usage_is_counted_charged_and_released() {
    let server = TestServer::start().await.unwrap();
    let client: Client = server.client();
    let stop = CancellationToken::new();
    let mut config = Config::new("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    config.quota_resync_interval = Duration::from_secs(1);
    let controller = tokio::spawn(skiff_controllers::resourcequota::run(
        Informers::new(client.clone(), stop.clone()),
        config,
        stop.clone(),
    ));

    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "2", "configmaps": "3", "count/deployments.apps": "1"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    used_becomes(
        &quotas,
        json!({"configmaps": "0", "count/deployments.apps": "0", "pods": "0"}),
    )
    .await;
    let counted = quotas.get("q").await.unwrap();
    assert_eq!(
        serde_json::to_value(counted.status.unwrap().hard).unwrap(),
        json!({"configmaps": "3", "count/deployments.apps": "1", "pods": "2"})
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(name))
            .await
            .unwrap();
    }
    used_becomes(
        &quotas,
        json!({"configmaps": "0", "count/deployments.apps": "0", "pods": "2"}),
    )
    .await;
    let refused = pods.create(&PostParams::default(), &pod("c")).await;
    assert_eq!(
        forbidden_message(refused),
        "pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );

    // A finished pod no longer counts; a deleted one neither.
    let mut finished = pods.get_status("a").await.unwrap();
    finished.status.get_or_insert_default().phase = Some("Succeeded".into());
    pods.replace_status("a", &PostParams::default(), &finished)
        .await
        .unwrap();
    used_becomes(
        &quotas,
        json!({"configmaps": "0", "count/deployments.apps": "0", "pods": "1"}),
    )
    .await;
    pods.delete("b", &DeleteParams::default()).await.unwrap();
    used_becomes(
        &quotas,
        json!({"configmaps": "0", "count/deployments.apps": "0", "pods": "0"}),
    )
    .await;
    pods.create(&PostParams::default(), &pod("c"))
        .await
        .unwrap();

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let config_map = serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap();
    config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();

    // Kinds that are not watched are recounted by the periodic resync.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    used_becomes(
        &quotas,
        json!({"configmaps": "1", "count/deployments.apps": "1", "pods": "1"}),
    )
    .await;
    let mut second = deployment.clone();
    second.metadata.name = Some("api".into());
    let refused = deployments.create(&PostParams::default(), &second).await;
    assert_eq!(
        forbidden_message(refused),
        "deployments.apps \"api\" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
    );
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    used_becomes(
        &quotas,
        json!({"configmaps": "1", "count/deployments.apps": "0", "pods": "1"}),
    )
    .await;

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops when asked")
        .unwrap()
        .unwrap();
    server.stop().await;
}

/// [sig-api-machinery] ResourceQuota should verify ResourceQuota with best effort scope
/// [Conformance]: a `BestEffort` quota counts and limits only pods without requests or limits,
/// a `NotBestEffort` one only the others.
#[tokio::test]
async fn scoped_quotas_count_only_the_pods_they_match() {
    let server = TestServer::start().await.unwrap();
    let client: Client = server.client();
    let stop = CancellationToken::new();
    let config = Config::new("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    let controller = tokio::spawn(skiff_controllers::resourcequota::run(
        Informers::new(client.clone(), stop.clone()),
        config,
        stop.clone(),
    ));
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    for (name, scope) in [("q", "BestEffort"), ("not-best-effort", "NotBestEffort")] {
        let quota = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"hard": {"pods": "1"}, "scopes": [scope]}
        }))
        .unwrap();
        quotas.create(&PostParams::default(), &quota).await.unwrap();
    }
    used_becomes(&quotas, json!({"pods": "0"})).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let burstable = |name: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                                     "resources": {"requests": {"cpu": "100m"}}}]}
        }))
        .unwrap()
    };
    eventually("the NotBestEffort quota counted", || async {
        let quota = quotas.get("not-best-effort").await.ok()?;
        quota.status?.used.filter(|u| u.contains_key("pods"))
    })
    .await;
    pods.create(&PostParams::default(), &pod("idle"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &burstable("busy"))
        .await
        .unwrap();
    used_becomes(&quotas, json!({"pods": "1"})).await;
    let refused = pods.create(&PostParams::default(), &pod("idle-2")).await;
    assert_eq!(
        forbidden_message(refused),
        "pods \"idle-2\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
    );
    let refused = pods
        .create(&PostParams::default(), &burstable("busy-2"))
        .await;
    assert_eq!(
        forbidden_message(refused),
        "pods \"busy-2\" is forbidden: exceeded quota: not-best-effort, requested: pods=1, used: pods=1, limited: pods=1"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops when asked")
        .unwrap()
        .unwrap();
    server.stop().await;
}

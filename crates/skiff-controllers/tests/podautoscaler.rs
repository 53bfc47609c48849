//! The horizontal pod autoscaler controller against a real in-process API server
//! (`skiff_testkit::TestServer`): the min and max bounds are applied through the target's
//! `scale` subresource without metrics, missing metrics leave the replicas alone with
//! upstream's conditions and events, and resource metrics served under `metrics.k8s.io`
//! drive a rate-limited scale-up.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use skiff_controllers::Config;
use skiff_testkit::TestServer;
use skiff_testkit::eventually;
use skiff_workloads::Informers;
use tokio_util::sync::CancellationToken;

/// A server with the HPA controller running (a 1 s sync period), and a client.
async fn start() -> (TestServer, Client, CancellationToken) {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    let stop = CancellationToken::new();
    let mut config = Config::new("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    config.hpa_sync_period = Duration::from_secs(1);
    tokio::spawn(skiff_controllers::podautoscaler::run(
        Informers::new(client.clone(), stop.clone()),
        config,
        stop.clone(),
    ));
    (server, client, stop)
}

async fn create_deployment(client: &Client, replicas: i32) {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "nginx", "image": "nginx",
                    "resources": {"requests": {"cpu": "100m"}}
                }]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

async fn create_hpa(client: &Client, min: i32, max: i32) {
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": min,
            "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}
            }}]
        }
    }))
    .unwrap();
    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &hpa)
        .await
        .unwrap();
}

/// `spec.replicas` of the Deployment's scale subresource, once it is `expected`.
async fn scale_becomes(client: &Client, expected: i32) {
    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    eventually(&format!("the scale to be {expected}"), || async {
        let scale = deployments.get_scale("web").await.ok()?;
        (scale.spec?.replicas == Some(expected)).then_some(())
    })
    .await;
}

/// The HPA's condition of `type_` as (status, reason, message), once `check` accepts it.
async fn condition_becomes(
    client: &Client,
    type_: &str,
    check: impl Fn(&(String, String, String)) -> bool,
) -> (String, String, String) {
    let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default");
    eventually(&format!("the {type_} condition"), || async {
        let hpa = hpas.get("web").await.ok()?;
        let condition = hpa
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == type_)?;
        let found = (
            condition.status,
            condition.reason.unwrap_or_default(),
            condition.message.unwrap_or_default(),
        );
        check(&found).then_some(found)
    })
    .await
}

/// The message of the HPA's event with `reason`, once there is one.
async fn event_message(client: &Client, reason: &str) -> String {
    let events = Api::<Event>::namespaced(client.clone(), "default");
    eventually(&format!("a {reason} event"), || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.involved_object.kind.as_deref() == Some("HorizontalPodAutoscaler")
            })
            .and_then(|e| e.message)
    })
    .await
}

#[tokio::test]
async fn min_replicas_scale_the_target_up_without_metrics() {
    let (_server, client, stop) = start().await;
    create_deployment(&client, 1).await;
    create_hpa(&client, 3, 5).await;
    scale_becomes(&client, 3).await;
    assert_eq!(
        event_message(&client, "SuccessfulRescale").await,
        "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
    );
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let status = hpa.status.unwrap();
    assert!(status.last_scale_time.is_some());
    let (status, reason, _) = condition_becomes(&client, "ScalingLimited", |_| true).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "TooFewReplicas")
    );
    // Within bounds, metrics are needed, and there is no metrics API: the replicas stay and
    // the HPA says why, as upstream does on a cluster without metrics-server.
    let (status, _, message) = condition_becomes(&client, "ScalingActive", |c| {
        c.1 == "FailedGetResourceMetric"
    })
    .await;
    assert_eq!(status, "False");
    assert!(
        message.starts_with(
            "the HPA was unable to compute the replica count: unable to get metrics for resource cpu: unable to fetch metrics from resource metrics API:"
        ),
        "{message}"
    );
    let (status, reason, _) = condition_becomes(&client, "AbleToScale", |_| true).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "SucceededGetScale")
    );
    let failed = event_message(&client, "FailedGetResourceMetric").await;
    assert!(
        failed.starts_with("unable to get metrics for resource cpu"),
        "{failed}"
    );
    let compute = event_message(&client, "FailedComputeMetricsReplicas").await;
    assert!(
        compute.starts_with("invalid metrics (1 invalid out of 1), first error is:"),
        "{compute}"
    );
    scale_becomes(&client, 3).await;
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    assert_eq!(hpa.status.unwrap().current_replicas, Some(3));
    stop.cancel();
}

#[tokio::test]
async fn max_replicas_scale_the_target_down() {
    let (_server, client, stop) = start().await;
    create_deployment(&client, 8).await;
    create_hpa(&client, 1, 5).await;
    scale_becomes(&client, 5).await;
    assert_eq!(
        event_message(&client, "SuccessfulRescale").await,
        "New size: 5; reason: Current number of replicas above Spec.MaxReplicas"
    );
    // (`AbleToScale` says `SucceededRescale` only until the next sync, a second later.)
    let (_, reason_limited, _) = condition_becomes(&client, "ScalingLimited", |_| true).await;
    assert_eq!(reason_limited, "TooManyReplicas");
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    assert_eq!(hpa.status.unwrap().desired_replicas, 5);
    stop.cancel();
}

#[tokio::test]
async fn a_zero_replica_target_disables_scaling() {
    let (_server, client, stop) = start().await;
    create_deployment(&client, 0).await;
    create_hpa(&client, 2, 5).await;
    let (status, _, message) = condition_becomes(&client, "ScalingActive", |_| true).await;
    assert_eq!(
        (status.as_str(), message.as_str()),
        (
            "False",
            "scaling is disabled since the replica count of the target is zero"
        )
    );
    scale_becomes(&client, 0).await;
    stop.cancel();
}

/// Pod metrics served by the API server under `metrics.k8s.io/v1beta1` (as a custom
/// resource, the way an aggregated metrics-server would appear to the controller): CPU usage
/// at four times the target scales two pods up, by at most four pods per 15 s.
#[tokio::test]
async fn resource_metrics_scale_up_within_the_rate_limit() {
    let (_server, client, stop) = start().await;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "pods.metrics.k8s.io"},
        "spec": {
            "group": "metrics.k8s.io",
            "scope": "Namespaced",
            "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    create_deployment(&client, 2).await;
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let started = Timestamp::now() - SignedDuration::from_secs(600);
    let ready_since = Timestamp::now() - SignedDuration::from_secs(540);
    for name in ["web-a", "web-b"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx",
                "resources": {"requests": {"cpu": "100m"}}}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let mut running = pods.get_status(name).await.unwrap();
        running.status = Some(
            serde_json::from_value(json!({
                "phase": "Running",
                "startTime": started.to_string(),
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ready_since.to_string()}]
            }))
            .unwrap(),
        );
        pods.replace_status(name, &PostParams::default(), &running)
            .await
            .unwrap();
    }
    let metrics_resource = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    let pod_metrics =
        Api::<DynamicObject>::namespaced_with(client.clone(), "default", &metrics_resource);
    // The CRD takes a moment to be served.
    for name in ["web-a", "web-b"] {
        let sample: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "metrics.k8s.io/v1beta1",
            "kind": "PodMetrics",
            "metadata": {"name": name, "labels": {"app": "web"}},
            "timestamp": Timestamp::now().to_string(),
            "window": "30s",
            "containers": [{"name": "nginx", "usage": {"cpu": "200m", "memory": "10Mi"}}]
        }))
        .unwrap();
        eventually("the PodMetrics resource to be served", || async {
            pod_metrics
                .create(&PostParams::default(), &sample)
                .await
                .ok()
        })
        .await;
    }
    create_hpa(&client, 1, 10).await;
    // 200% of the request against a 50% target asks for 8; the default policy allows
    // max(+100%, +4 pods) = 6 from 2.
    scale_becomes(&client, 6).await;
    assert_eq!(
        event_message(&client, "SuccessfulRescale").await,
        "New size: 6; reason: cpu resource utilization (percentage of request) above target"
    );
    let (status, reason, _) = condition_becomes(&client, "ScalingActive", |_| true).await;
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ValidMetricFound")
    );
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let current: Value = serde_json::to_value(hpa.status.unwrap().current_metrics).unwrap();
    assert_eq!(
        current,
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": 200, "averageValue": "200m"}}}])
    );
    stop.cancel();
}

//! The node lifecycle and taint eviction, endpoints and endpoint slice, and disruption
//! controllers against a real in-process API server (`skiff_testkit::TestServer`), with
//! simulated nodes (`skiff_agent::Simulation`) as the kubelets where node health matters and
//! pod statuses written by the test (as a kubelet would) where only readiness does.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Event, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use skiff_agent::{Simulation, SimulationConfig};
use skiff_controllers::Config;
use skiff_testkit::TestServer;
use skiff_testkit::eventually;
use skiff_workloads::Informers;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// A server and some controllers running against it.
struct Cluster {
    server: TestServer,
    stop: CancellationToken,
    running: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        Cluster {
            server: TestServer::start().await.unwrap(),
            stop: CancellationToken::new(),
            running: Vec::new(),
        }
    }

    fn config() -> Config {
        let mut config =
            Config::new("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
                .with_node_monitor_grace_period(Duration::from_secs(2));
        config.discovery_interval = Duration::from_secs(5);
        config
    }

    fn run<F, Fut>(&mut self, controller: F)
    where
        F: FnOnce(Informers, Config, CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let informers = Informers::new(self.client(), self.stop.clone());
        let task = controller(informers, Self::config(), self.stop.clone());
        self.running.push(tokio::spawn(task));
    }

    fn client(&self) -> Client {
        self.server.client()
    }

    async fn stop(self) {
        self.stop.cancel();
        for running in self.running {
            tokio::time::timeout(Duration::from_secs(10), running)
                .await
                .expect("the controllers stop when asked")
                .unwrap()
                .unwrap();
        }
        self.server.stop().await;
    }
}

fn simulation_config(nodes: usize) -> SimulationConfig {
    SimulationConfig {
        nodes,
        start_delay: Duration::from_millis(200),
        stop_delay: Duration::from_millis(100),
        lease_interval: Duration::from_millis(400),
        lease_duration_seconds: 2,
        status_interval: Duration::from_secs(1),
        ..SimulationConfig::default()
    }
}

fn pod(name: &str, labels: Value, spec: Value) -> Pod {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "nginx:1"}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap()
}

fn condition(pod: &Pod, kind: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

fn node_ready(node: &Node) -> Option<(String, Option<String>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn taints(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect))
        .collect()
}

/// Gone, or marked for deletion.
async fn is_deleted(pods: &Api<Pod>, name: &str) -> bool {
    pods.get_opt(name)
        .await
        .unwrap()
        .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
}

async fn event_reasons(client: &Client, namespace: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// [sig-node] NoExecuteTaintManager Multiple Pods [Serial] evicts pods with
/// minTolerationSeconds [Disruptive] (conformance), for the taints the node lifecycle
/// controller puts on a node whose kubelet went silent (and takes off when it is back).
#[tokio::test]
async fn a_silent_node_goes_unknown_is_tainted_and_its_pods_evicted_then_recovers() {
    let mut cluster = Cluster::start().await;
    cluster.run(skiff_controllers::nodelifecycle::run);
    let client = cluster.client();
    let simulation = Simulation::start(client.clone(), simulation_config(2))
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let toleration = |seconds: Option<i64>| {
        let mut t = json!({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"});
        if let Some(s) = seconds {
            t["tolerationSeconds"] = json!(s);
        }
        t
    };
    for (name, node, tolerations) in [
        ("short", "sim-0", json!([toleration(Some(3))])),
        ("forever", "sim-0", json!([toleration(None)])),
        ("defaulted", "sim-0", json!([])),
        ("elsewhere", "sim-1", json!([])),
    ] {
        let spec = json!({"nodeName": node, "tolerations": tolerations});
        pods.create(&PostParams::default(), &pod(name, json!({}), spec))
            .await
            .unwrap();
    }
    // DefaultTolerationSeconds: the pod without tolerations got both, for 300 s.
    let defaulted = pods.get("defaulted").await.unwrap();
    let added: Vec<(Option<String>, Option<i64>)> = defaulted
        .spec
        .unwrap()
        .tolerations
        .unwrap()
        .into_iter()
        .map(|t| (t.key, t.toleration_seconds))
        .collect();
    assert_eq!(
        added,
        [
            (Some("node.kubernetes.io/not-ready".to_owned()), Some(300)),
            (Some(UNREACHABLE.to_owned()), Some(300))
        ]
    );
    for name in ["short", "forever", "defaulted", "elsewhere"] {
        eventually("the pods to be ready", || async {
            let pod = pods.get(name).await.unwrap();
            (condition(&pod, "Ready").as_deref() == Some("True")).then_some(())
        })
        .await;
    }
    // Healthy nodes stay Ready and untainted past the grace period.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in ["sim-0", "sim-1"] {
        let node = nodes.get(name).await.unwrap();
        assert_eq!(node_ready(&node).unwrap().0, "True", "{name}");
        assert!(taints(&node).is_empty(), "{name}");
    }

    assert!(simulation.stop_node("sim-0"));
    let tainted = eventually("sim-0 Unknown and tainted unreachable", || async {
        let node = nodes.get("sim-0").await.unwrap();
        let ready = node_ready(&node)?;
        let expected = [
            (UNREACHABLE.to_owned(), "NoSchedule".to_owned()),
            (UNREACHABLE.to_owned(), "NoExecute".to_owned()),
        ];
        (ready == ("Unknown".to_owned(), Some("NodeStatusUnknown".to_owned()))
            && taints(&node) == expected)
            .then(Instant::now)
    })
    .await;
    let node = nodes.get("sim-0").await.unwrap();
    let conditions = node.status.unwrap().conditions.unwrap();
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = conditions.iter().find(|c| c.type_ == kind).unwrap();
        assert_eq!(c.status, "Unknown", "{kind}");
        assert_eq!(
            c.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
    }
    // MarkPodsNotReady.
    for name in ["forever", "defaulted"] {
        eventually("pods on the silent node not ready", || async {
            let pod = pods.get(name).await.unwrap();
            (condition(&pod, "Ready").as_deref() == Some("False")).then_some(())
        })
        .await;
    }
    eventually("the pod tolerating 3 s deleted", || async {
        is_deleted(&pods, "short").await.then_some(())
    })
    .await;
    assert!(
        tainted.elapsed() >= Duration::from_secs(2),
        "evicted after {:?}, before its tolerationSeconds",
        tainted.elapsed()
    );
    let short = pods.get_opt("short").await.unwrap();
    if let Some(short) = short {
        assert_eq!(
            condition(&short, "DisruptionTarget").as_deref(),
            Some("True")
        );
    }
    for name in ["forever", "defaulted", "elsewhere"] {
        assert!(!is_deleted(&pods, name).await, "{name} must stay");
    }
    assert_eq!(
        condition(&pods.get("elsewhere").await.unwrap(), "Ready").as_deref(),
        Some("True")
    );
    let reasons = event_reasons(&client, "default").await;
    for reason in ["NodeNotReady", "TaintManagerEviction"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }

    // The kubelet comes back: Ready again, taints gone.
    assert!(simulation.resume_node("sim-0").await.unwrap());
    eventually("sim-0 Ready and untainted", || async {
        let node = nodes.get("sim-0").await.unwrap();
        (node_ready(&node)?.0 == "True" && taints(&node).is_empty()).then_some(())
    })
    .await;
    assert!(!is_deleted(&pods, "defaulted").await);
    simulation.shutdown().await;
    cluster.stop().await;
}

/// [sig-node] NoExecuteTaintManager Single Pod [Serial] removing taint cancels eviction
/// [Disruptive] (conformance), and evicts pods from tainted nodes: a NoExecute taint put on a
/// healthy node by hand.
#[tokio::test]
async fn no_execute_taints_evict_untolerating_pods_at_once_and_removal_cancels() {
    let mut cluster = Cluster::start().await;
    cluster.run(skiff_controllers::nodelifecycle::run);
    let client = cluster.client();
    let simulation = Simulation::start(client.clone(), simulation_config(1))
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let tolerating = json!([{"key": "example.com/maintenance", "operator": "Equal",
                             "value": "now", "effect": "NoExecute", "tolerationSeconds": 3}]);
    for (name, tolerations) in [("plain", json!([])), ("patient", tolerating)] {
        let spec = json!({"nodeName": "sim-0", "tolerations": tolerations});
        pods.create(&PostParams::default(), &pod(name, json!({}), spec))
            .await
            .unwrap();
    }
    let taint = |on: bool| {
        let taints = if on {
            json!([{"key": "example.com/maintenance", "value": "now", "effect": "NoExecute"}])
        } else {
            Value::Null
        };
        Patch::Merge(json!({"spec": {"taints": taints}}))
    };
    nodes
        .patch("sim-0", &PatchParams::default(), &taint(true))
        .await
        .unwrap();
    let started = Instant::now();
    eventually("the untolerating pod deleted", || async {
        is_deleted(&pods, "plain").await.then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!is_deleted(&pods, "patient").await);
    nodes
        .patch("sim-0", &PatchParams::default(), &taint(false))
        .await
        .unwrap();
    // Past the 3 s it tolerated the taint for: the cancelled eviction does not happen.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!is_deleted(&pods, "patient").await);
    simulation.shutdown().await;
    cluster.stop().await;
}

/// Writes what a kubelet would: the pod's IP and its Ready condition.
async fn set_pod_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

fn web_pod(name: &str, app: &str, web_port: i32) -> Pod {
    pod(
        name,
        json!({"app": app}),
        json!({"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx:1",
            "ports": [{"name": "web", "containerPort": web_port}]}]}),
    )
}

/// `(ready, not ready)` addresses of an Endpoints object, with the ports of their subset.
fn endpoint_addresses(endpoints: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        let mut ports: Vec<String> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}={}", p.name.clone().unwrap_or_default(), p.port))
            .collect();
        ports.sort();
        let ports = ports.join(",");
        for a in subset.addresses.iter().flatten() {
            ready.push(format!("{} {ports}", a.ip));
        }
        for a in subset.not_ready_addresses.iter().flatten() {
            not_ready.push(format!("{} {ports}", a.ip));
        }
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

/// `ip ready/serving/terminating ports` per endpoint of a Service's slices.
async fn slice_endpoints(slices: &Api<EndpointSlice>, service: &str) -> Vec<String> {
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .unwrap();
    let mut found = Vec::new();
    for slice in list.items {
        let mut ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}={}",
                    p.name.clone().unwrap_or_default(),
                    p.port.unwrap_or(0)
                )
            })
            .collect();
        ports.sort();
        for e in slice.endpoints {
            let c = e.conditions.unwrap_or_default();
            found.push(format!(
                "{} {}/{}/{} {}",
                e.addresses[0],
                c.ready.unwrap_or(false),
                c.serving.unwrap_or(false),
                c.terminating.unwrap_or(false),
                ports.join(",")
            ));
        }
    }
    found.sort();
    found
}

/// [sig-network] EndpointSlice should create Endpoints and EndpointSlices for Pods matching a
/// Service, and should create and delete Endpoints and EndpointSlices for a Service with a
/// selector specified (conformance): addresses follow readiness, named target ports resolve
/// per pod, selector-less Services are left alone, deleting the Service removes them.
#[tokio::test]
async fn endpoints_and_slices_follow_pod_readiness_and_port_names() {
    let mut cluster = Cluster::start().await;
    cluster.run(skiff_controllers::run);
    let client = cluster.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");

    for (name, app, port) in [
        ("web-1", "web", 8080),
        ("web-2", "web", 8081),
        ("web-3", "web", 8080),
        ("db", "db", 5432),
    ] {
        pods.create(&PostParams::default(), &web_pod(name, app, port))
            .await
            .unwrap();
    }
    set_pod_status(&pods, "web-1", "10.244.0.11", true).await;
    set_pod_status(&pods, "web-2", "10.244.0.12", false).await;
    set_pod_status(&pods, "db", "10.244.0.13", true).await;
    // web-3 has no IP yet: not an endpoint.
    let service = |name: &str, selector: Value, publish: bool| -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {
                "selector": selector,
                "publishNotReadyAddresses": publish,
                "ports": [
                    {"name": "http", "port": 80, "targetPort": "web"},
                    {"name": "metrics", "port": 9090},
                ],
            },
        }))
        .unwrap()
    };
    services
        .create(
            &PostParams::default(),
            &service("web", json!({"app": "web"}), false),
        )
        .await
        .unwrap();
    services
        .create(
            &PostParams::default(),
            &service("web-all", json!({"app": "web"}), true),
        )
        .await
        .unwrap();
    services
        .create(
            &PostParams::default(),
            &service("manual", Value::Null, false),
        )
        .await
        .unwrap();

    let expected = (
        vec!["10.244.0.11 http=8080,metrics=9090".to_owned()],
        vec!["10.244.0.12 http=8081,metrics=9090".to_owned()],
    );
    let web = eventually("the web endpoints", || async {
        let e = endpoints.get_opt("web").await.unwrap()?;
        (endpoint_addresses(&e) == expected).then_some(e)
    })
    .await;
    assert_eq!(
        web.labels()["endpoints.kubernetes.io/managed-by"],
        "endpoint-controller"
    );
    assert_eq!(web.labels()["tier"], "front");
    let addresses = web
        .subsets
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|s| s.addresses.clone())
        .unwrap();
    let address = &addresses[0];
    assert_eq!(address.node_name.as_deref(), Some("node-a"));
    assert_eq!(
        address.target_ref.as_ref().unwrap().name.as_deref(),
        Some("web-1")
    );
    eventually("the slices of web", || async {
        let found = slice_endpoints(&slices, "web").await;
        (found
            == [
                "10.244.0.11 true/true/false http=8080,metrics=9090",
                "10.244.0.12 false/false/false http=8081,metrics=9090",
            ])
        .then_some(())
    })
    .await;
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2, "one slice per port set");
    for slice in &list.items {
        assert!(slice.name_any().starts_with("web-"));
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(
            slice.labels()["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io"
        );
        let owner = &slice.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Service", "web", Some(true))
        );
    }
    // publishNotReadyAddresses: the unready pod is an address too.
    eventually("web-all publishes the not ready pod", || async {
        let e = endpoints.get_opt("web-all").await.unwrap()?;
        let (ready, not_ready) = endpoint_addresses(&e);
        (ready.len() == 2 && not_ready.is_empty()).then_some(())
    })
    .await;

    // Readiness changes move addresses; a pod that stops matching leaves.
    set_pod_status(&pods, "web-2", "10.244.0.12", true).await;
    set_pod_status(&pods, "web-3", "10.244.0.14", true).await;
    pods.patch(
        "web-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "old"}}})),
    )
    .await
    .unwrap();
    eventually("the web endpoints after the changes", || async {
        let e = endpoints.get("web").await.unwrap();
        (endpoint_addresses(&e)
            == (
                vec![
                    "10.244.0.12 http=8081,metrics=9090".to_owned(),
                    "10.244.0.14 http=8080,metrics=9090".to_owned(),
                ],
                vec![],
            ))
            .then_some(())
    })
    .await;
    eventually("the slices after the changes", || async {
        let found = slice_endpoints(&slices, "web").await;
        (found
            == [
                "10.244.0.12 true/true/false http=8081,metrics=9090",
                "10.244.0.14 true/true/false http=8080,metrics=9090",
            ])
        .then_some(())
    })
    .await;
    // A terminating pod leaves the Endpoints but stays in the slices as terminating.
    pods.patch(
        "web-2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})),
    )
    .await
    .unwrap();
    pods.delete("web-2", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the terminating pod in the slices only", || async {
        let (ready, _) = endpoint_addresses(&endpoints.get("web").await.unwrap());
        let found = slice_endpoints(&slices, "web").await;
        (ready.len() == 1
            && found.contains(&"10.244.0.12 false/true/true http=8081,metrics=9090".to_owned()))
        .then_some(())
    })
    .await;
    assert!(
        endpoints.get_opt("manual").await.unwrap().is_none(),
        "selector-less services are left alone"
    );

    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("endpoints and slices gone with the service", || async {
        let gone = endpoints.get_opt("web").await.unwrap().is_none()
            && slice_endpoints(&slices, "web").await.is_empty()
            && slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .unwrap()
                .items
                .is_empty();
        gone.then_some(())
    })
    .await;
    cluster.stop().await;
}

fn pdb(name: &str, app: &str, key: &str, value: Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, key: value},
    }))
    .unwrap()
}

/// `(currentHealthy, desiredHealthy, expectedPods, disruptionsAllowed, reason)`.
fn budget(pdb: &PodDisruptionBudget) -> Option<(i32, i32, i32, i32, String)> {
    let status = pdb.status.as_ref()?;
    let condition = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed")?;
    (status.observed_generation == pdb.metadata.generation).then(|| {
        (
            status.current_healthy,
            status.desired_healthy,
            status.expected_pods,
            status.disruptions_allowed,
            condition.reason.clone(),
        )
    })
}

/// [sig-apps] DisruptionController should observe PodDisruptionBudget status updated, and
/// should create a PodDisruptionBudget (observedGeneration) (conformance): minAvailable and
/// maxUnavailable as counts and percentages resolved against the controllers' scale,
/// disruptedPods cleaned up.
#[tokio::test]
async fn pdb_status_with_min_available_and_max_unavailable_percentages() {
    let mut cluster = Cluster::start().await;
    cluster.run(skiff_controllers::disruption::run);
    let client = cluster.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    // Controllers whose scale counts; no workload controllers run, so they stay as written.
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
    }))
    .unwrap();
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
    }))
    .unwrap();
    let deployment = Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let api_rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "api-1", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "api", "uid": deployment.uid().unwrap(), "controller": true}]},
        "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
    }))
    .unwrap();
    let api_rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &api_rs)
        .await
        .unwrap();
    let owned_pod = |name: &str, app: &str, owner: &ReplicaSet| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner.name_any(),
                "uid": owner.uid().unwrap(), "controller": true}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "nginx:1"}]},
        }))
        .unwrap()
    };
    for i in 0..4 {
        let name = format!("web-{i}");
        pods.create(&PostParams::default(), &owned_pod(&name, "web", &rs))
            .await
            .unwrap();
        set_pod_status(&pods, &name, &format!("10.244.0.{}", 20 + i), i < 3).await;
    }
    for i in 0..4 {
        let name = format!("api-{i}");
        pods.create(&PostParams::default(), &owned_pod(&name, "api", &api_rs))
            .await
            .unwrap();
        set_pod_status(&pods, &name, &format!("10.244.0.{}", 30 + i), true).await;
    }
    for budget in [
        pdb("web-min-percent", "web", "minAvailable", json!("50%")),
        pdb("web-max-percent", "web", "maxUnavailable", json!("25%")),
        pdb("web-min", "web", "minAvailable", json!(2)),
        pdb("api-max-percent", "api", "maxUnavailable", json!("40%")),
    ] {
        budgets
            .create(&PostParams::default(), &budget)
            .await
            .unwrap();
    }
    let wait = |name: &'static str, expected: (i32, i32, i32, i32, &'static str)| {
        let budgets = budgets.clone();
        async move {
            eventually(name, || async {
                let found = budget(&budgets.get(name).await.unwrap())?;
                (found
                    == (
                        expected.0,
                        expected.1,
                        expected.2,
                        expected.3,
                        expected.4.to_owned(),
                    ))
                    .then_some(())
            })
            .await;
        }
    };
    // 3 of 4 web pods ready; the ReplicaSet wants 4.
    wait("web-min-percent", (3, 2, 4, 1, "SufficientPods")).await;
    wait("web-max-percent", (3, 3, 4, 0, "InsufficientPods")).await;
    wait("web-min", (3, 2, 4, 1, "SufficientPods")).await;
    // The Deployment's 5 replicas count, not the 4 pods: 40% of 5 is 2 unavailable.
    wait("api-max-percent", (4, 3, 5, 1, "SufficientPods")).await;
    let shown = budgets.get("web-max-percent").await.unwrap();
    let condition = &shown.status.unwrap().conditions.unwrap()[0];
    assert_eq!(condition.status, "False");

    set_pod_status(&pods, "web-3", "10.244.0.23", true).await;
    wait("web-max-percent", (4, 3, 4, 1, "SufficientPods")).await;

    // disruptedPods: an entry for a present pod holds it out of the healthy count; one for
    // a pod that is gone is dropped.
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap()
        .to_string();
    let patch = json!({"status": {"disruptedPods": {"web-0": now, "vanished": now}}});
    budgets
        .patch_status("web-min", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    eventually("disruptedPods cleaned up", || async {
        let status = budgets.get("web-min").await.unwrap().status?;
        let disrupted: BTreeMap<_, _> = status.disrupted_pods.clone().unwrap_or_default();
        (disrupted.keys().collect::<Vec<_>>() == ["web-0"] && status.current_healthy == 3)
            .then_some(())
    })
    .await;
    // A spec change is observed.
    budgets
        .patch(
            "web-min",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": 4}})),
        )
        .await
        .unwrap();
    wait("web-min", (3, 4, 4, 0, "InsufficientPods")).await;
    cluster.stop().await;
}

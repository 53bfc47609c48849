//! Simulated nodes against a real in-process API server (`skiff_testkit::TestServer`):
//! registration, Leases and status heartbeats, the pod lifecycle (Running and Ready, Succeeded,
//! graceful deletion finished by the agent), stopping a node, and a scale run that reports how
//! long 1,000 pods take to run.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use skiff_agent::{
    KUBELET_VERSION, LEASE_NAMESPACE, RUNTIME_VERSION, Simulation, SimulationConfig,
};
use skiff_testkit::TestServer;

/// Logs (`RUST_LOG=skiff_agent=debug`) shown for failing tests.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Fast timings for tests.
fn config(nodes: usize) -> SimulationConfig {
    init_logging();
    SimulationConfig {
        nodes,
        start_delay: Duration::from_millis(200),
        run_time: Duration::from_millis(700),
        stop_delay: Duration::from_millis(100),
        lease_interval: Duration::from_millis(500),
        status_interval: Duration::from_millis(1000),
        ..SimulationConfig::default()
    }
}

/// Polls `check` until it returns `Some`, failing after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, node: &str, restart_policy: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart_policy,
            "initContainers": [{"name": "setup", "image": "busybox:1"}],
            "containers": [{"name": "app", "image": "nginx:1"}]
        }
    }))
    .unwrap()
}

fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.as_str())
}

fn ready_heartbeat(node: &Node) -> Option<Time> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_heartbeat_time
        .clone()
}

fn renew_time(lease: &Lease) -> Option<MicroTime> {
    lease.spec.as_ref()?.renew_time.clone()
}

#[tokio::test]
async fn nodes_register_ready_with_capacity_and_keep_their_leases() {
    let server = TestServer::start().await.unwrap();
    let simulation = Simulation::start(server.client(), config(3)).await.unwrap();
    assert_eq!(simulation.node_names(), ["sim-0", "sim-1", "sim-2"]);

    let nodes: Api<Node> = Api::all(server.client());
    let list = nodes.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 3);
    for node in &list.items {
        let name = node.metadata.name.as_deref().unwrap();
        let labels = node.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        let status = node.status.as_ref().unwrap();
        let capacity = status.capacity.as_ref().unwrap();
        assert_eq!(capacity["cpu"].0, "8");
        assert_eq!(capacity["memory"].0, "32Gi");
        assert_eq!(capacity["pods"].0, "110");
        assert!(capacity.contains_key("ephemeral-storage"));
        assert_eq!(status.allocatable.as_ref().unwrap()["pods"].0, "110");
        let info = status.node_info.as_ref().unwrap();
        assert_eq!(info.kubelet_version, KUBELET_VERSION);
        assert_eq!(info.container_runtime_version, RUNTIME_VERSION);
        let conditions = status.conditions.as_ref().unwrap();
        for (kind, expected) in [
            ("Ready", "True"),
            ("MemoryPressure", "False"),
            ("DiskPressure", "False"),
            ("PIDPressure", "False"),
            ("NetworkUnavailable", "False"),
        ] {
            let c = conditions.iter().find(|c| c.type_ == kind).unwrap();
            assert_eq!(c.status, expected, "{name} {kind}");
            assert!(c.last_heartbeat_time.is_some());
        }
        let addresses = status.addresses.as_ref().unwrap();
        assert!(
            addresses
                .iter()
                .any(|a| a.type_ == "InternalIP" && a.address.starts_with("10.200."))
        );
        assert!(
            addresses
                .iter()
                .any(|a| a.type_ == "Hostname" && a.address == name)
        );
        assert!(node.spec.as_ref().unwrap().pod_cidr.is_some());
    }

    let leases: Api<Lease> = Api::namespaced(server.client(), LEASE_NAMESPACE);
    let first = leases.get("sim-1").await.unwrap();
    let spec = first.spec.as_ref().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("sim-1"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "sim-1")
    );
    let renewed = renew_time(&first).unwrap();
    eventually(
        "the lease to be renewed",
        Duration::from_secs(10),
        || async {
            let lease = leases.get("sim-1").await.unwrap();
            (renew_time(&lease).unwrap() > renewed).then_some(())
        },
    )
    .await;
    let beat = ready_heartbeat(&nodes.get("sim-2").await.unwrap()).unwrap();
    eventually(
        "the node status heartbeat",
        Duration::from_secs(10),
        || async {
            let node = nodes.get("sim-2").await.unwrap();
            (ready_heartbeat(&node).unwrap() > beat).then_some(())
        },
    )
    .await;

    simulation.shutdown().await;
    server.stop().await;
}

#[tokio::test]
async fn bound_pods_run_complete_and_are_deleted() {
    let server = TestServer::start().await.unwrap();
    let simulation = Simulation::start(server.client(), config(2)).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let post = PostParams::default();
    pods.create(&post, &pod("web", "sim-1", "Always"))
        .await
        .unwrap();
    pods.create(&post, &pod("job", "sim-0", "Never"))
        .await
        .unwrap();
    pods.create(&post, &pod("retry", "sim-0", "OnFailure"))
        .await
        .unwrap();
    pods.create(&post, &pod("stray", "not-simulated", "Always"))
        .await
        .unwrap();

    // Running and Ready, with addresses from the node.
    let web = eventually("web to run", Duration::from_secs(10), || async {
        let pod = pods.get("web").await.unwrap();
        (condition(&pod, "Ready") == Some("True")).then_some(pod)
    })
    .await;
    let status = web.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(status.pod_ip.as_deref().unwrap().starts_with("10.244.1."));
    assert_eq!(
        status.pod_ips.as_ref().unwrap()[0].ip,
        status.pod_ip.clone().unwrap()
    );
    assert_eq!(status.host_ip.as_deref(), Some("10.200.0.2"));
    assert!(status.start_time.is_some());
    for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(condition(&web, kind), Some("True"), "{kind}");
    }
    let app = &status.container_statuses.as_ref().unwrap()[0];
    assert_eq!(app.name, "app");
    assert_eq!(app.image, "nginx:1");
    assert!(app.ready);
    assert_eq!(app.started, Some(true));
    assert_eq!(app.restart_count, 0);
    let uid = web.metadata.uid.clone().unwrap();
    assert_eq!(
        app.container_id.as_deref(),
        Some(format!("skiff-sim://{uid}-app").as_str())
    );
    assert!(app.state.as_ref().unwrap().running.is_some());
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        init.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        0
    );

    // Never and OnFailure pods succeed after the run time; the web pod keeps running.
    for name in ["job", "retry"] {
        let done = eventually("the job to succeed", Duration::from_secs(10), || async {
            let pod = pods.get(name).await.unwrap();
            let phase = pod.status.as_ref()?.phase.clone()?;
            (phase == "Succeeded").then_some(pod)
        })
        .await;
        let app = &done
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0];
        let terminated = app.state.as_ref().unwrap().terminated.clone().unwrap();
        assert_eq!(terminated.exit_code, 0);
        assert_eq!(terminated.reason.as_deref(), Some("Completed"));
        assert_eq!(condition(&done, "Ready"), Some("False"));
    }
    // Both job pods ran on sim-0 at once: different addresses.
    let job_ip = pods
        .get("job")
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    let retry_ip = pods
        .get("retry")
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    assert_ne!(job_ip, retry_ip);
    let web = pods.get("web").await.unwrap();
    assert_eq!(
        web.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );

    // Pods on nodes the simulation does not own are left alone.
    let stray = pods.get("stray").await.unwrap();
    assert_eq!(
        stray.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    assert_eq!(stray.status.as_ref().unwrap().pod_ip, None);

    // A graceful delete of a running pod is finished by the agent.
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    let marked = pods.get("web").await.unwrap();
    assert!(
        marked.metadata.deletion_timestamp.is_some(),
        "the server deletes bound pods gracefully"
    );
    eventually("web to be deleted", Duration::from_secs(10), || async {
        pods.get_opt("web").await.unwrap().is_none().then_some(())
    })
    .await;
    let stats = simulation.stats();
    assert_eq!(stats.pods_started, 3);
    assert_eq!(stats.pods_completed, 2);
    assert_eq!(stats.pods_deleted, 1);

    simulation.shutdown().await;
    server.stop().await;
}

#[tokio::test]
async fn a_stopped_node_stops_beating_and_can_resume() {
    let server = TestServer::start().await.unwrap();
    let simulation = Simulation::start(server.client(), config(2)).await.unwrap();
    let nodes: Api<Node> = Api::all(server.client());
    let leases: Api<Lease> = Api::namespaced(server.client(), LEASE_NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");

    assert!(simulation.stop_node("sim-0"));
    assert!(!simulation.stop_node("sim-0"), "already stopped");
    assert!(!simulation.stop_node("nope"));
    // A beat in flight when stopping may still land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lease = renew_time(&leases.get("sim-0").await.unwrap()).unwrap();
    let beat = ready_heartbeat(&nodes.get("sim-0").await.unwrap()).unwrap();
    let other = renew_time(&leases.get("sim-1").await.unwrap()).unwrap();
    pods.create(&PostParams::default(), &pod("orphan", "sim-0", "Always"))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        renew_time(&leases.get("sim-0").await.unwrap()).unwrap(),
        lease
    );
    assert_eq!(
        ready_heartbeat(&nodes.get("sim-0").await.unwrap()).unwrap(),
        beat
    );
    assert!(renew_time(&leases.get("sim-1").await.unwrap()).unwrap() > other);
    let orphan = pods.get("orphan").await.unwrap();
    assert_eq!(
        orphan.status.unwrap().phase.as_deref(),
        Some("Pending"),
        "no kubelet to run it"
    );

    // Back again: beating, and its pod runs.
    assert!(simulation.resume_node("sim-0").await.unwrap());
    assert!(!simulation.resume_node("sim-0").await.unwrap());
    assert!(renew_time(&leases.get("sim-0").await.unwrap()).unwrap() > lease);
    eventually("the orphan to run", Duration::from_secs(10), || async {
        let pod = pods.get("orphan").await.unwrap();
        (condition(&pod, "Ready") == Some("True")).then_some(())
    })
    .await;

    simulation.shutdown().await;
    server.stop().await;
}

#[tokio::test]
async fn a_restarted_simulation_adopts_its_nodes_and_pods() {
    let server = TestServer::start().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let first = Simulation::start(server.client(), config(1)).await.unwrap();
    pods.create(&PostParams::default(), &pod("web", "sim-0", "Always"))
        .await
        .unwrap();
    let web_ip = eventually("web to run", Duration::from_secs(10), || async {
        let pod = pods.get("web").await.unwrap();
        (condition(&pod, "Ready") == Some("True")).then(|| pod.status?.pod_ip)?
    })
    .await;
    first.shutdown().await;

    // The nodes exist: registering adopts them; the running pod keeps its address.
    let second = Simulation::start(server.client(), config(1)).await.unwrap();
    pods.create(&PostParams::default(), &pod("job", "sim-0", "Never"))
        .await
        .unwrap();
    let job_ip = eventually("the job to succeed", Duration::from_secs(10), || async {
        let pod = pods.get("job").await.unwrap();
        let status = pod.status?;
        (status.phase.as_deref() == Some("Succeeded")).then_some(status.pod_ip)?
    })
    .await;
    assert_ne!(job_ip, web_ip, "the adopted pod's address stays taken");
    let web = pods.get("web").await.unwrap();
    assert_eq!(web.status.unwrap().phase.as_deref(), Some("Running"));
    assert_eq!(second.stats().pods_started, 1);

    second.shutdown().await;
    server.stop().await;
}

/// Creates `pods` pods spread over `nodes` simulated nodes and reports (never asserts) how
/// long they take to be Running; checks every pod got its own IP.
async fn scale(nodes: usize, pods_count: usize) {
    init_logging();
    let server = TestServer::start().await.unwrap();
    let started = Instant::now();
    let simulation = Simulation::start(
        server.client(),
        SimulationConfig {
            nodes,
            start_delay: Duration::from_millis(100),
            ..SimulationConfig::default()
        },
    )
    .await
    .unwrap();
    eprintln!("registered {nodes} nodes in {:?}", started.elapsed());

    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let begin = Instant::now();
    futures::stream::iter(0..pods_count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod = pod(&format!("p-{i}"), &format!("sim-{}", i % nodes), "Always");
                pods.create(&PostParams::default(), &pod).await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let created = begin.elapsed();
    let running = ListParams::default().fields("status.phase=Running");
    eventually("all pods to run", Duration::from_secs(600), || async {
        let list = pods.list_metadata(&running).await.unwrap();
        (list.items.len() == pods_count).then_some(())
    })
    .await;
    let all_running = begin.elapsed();
    eprintln!(
        "{pods_count} pods on {nodes} nodes: created in {created:?}, all Running after \
         {all_running:?} ({:.0} pods/s); stats {:?}",
        pods_count as f64 / all_running.as_secs_f64(),
        simulation.stats()
    );
    let list = pods.list(&running).await.unwrap();
    let mut addresses: Vec<_> = list
        .items
        .iter()
        .map(|p| p.status.as_ref().unwrap().pod_ip.clone().unwrap())
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), pods_count, "pod IPs are unique");

    simulation.shutdown().await;
    server.stop().await;
}

#[tokio::test]
async fn thousand_pods_across_twenty_nodes() {
    scale(20, 1000).await;
}

/// The target scale (100 nodes, 10,000 pods); about 40 s in a debug build, so on demand:
/// `cargo test -p skiff-agent --release -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "about 40 s; run on demand"]
async fn ten_thousand_pods_across_a_hundred_nodes() {
    scale(100, 10_000).await;
}

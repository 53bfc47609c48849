//! The scheduler against a real in-process API server (`skiff_testkit::TestServer`): pods get
//! bound to fitting nodes, unfittable pods get kube-style FailedScheduling events and wait
//! for the cluster to change, node selectors, taints and anti-affinity hold, and a small
//! throughput run reports pods per second.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{
    Affinity, Container, Event, Node, NodeSpec, Pod, PodAffinityTerm, PodAntiAffinity, PodSpec,
    ResourceRequirements, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_scheduler::Config;
use skiff_testkit::TestServer;
use skiff_testkit::eventually;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A node named `name` with `kubernetes.io/hostname`, extra labels, taints, allocatable CPU,
/// memory and pods, and a Ready condition.
struct NodeSpecification<'a> {
    name: &'a str,
    cpu: &'a str,
    memory: &'a str,
    pods: &'a str,
    labels: &'a [(&'a str, &'a str)],
    taints: Vec<Taint>,
}

impl<'a> NodeSpecification<'a> {
    fn new(name: &'a str, cpu: &'a str) -> Self {
        NodeSpecification {
            name,
            cpu,
            memory: "8Gi",
            pods: "110",
            labels: &[],
            taints: Vec::new(),
        }
    }
}

async fn create_node(client: &kube::Client, spec: NodeSpecification<'_>) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut labels = BTreeMap::from([("kubernetes.io/hostname".to_owned(), spec.name.to_owned())]);
    for (k, v) in spec.labels {
        labels.insert((*k).to_owned(), (*v).to_owned());
    }
    let node = Node {
        metadata: ObjectMeta {
            name: Some(spec.name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!spec.taints.is_empty()).then_some(spec.taints),
            ..Default::default()
        }),
        status: None,
    };
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let resources = json!({"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods});
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
    }});
    nodes
        .patch_status(spec.name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn taint(key: &str, value: &str) -> Taint {
    Taint {
        key: key.to_owned(),
        value: (!value.is_empty()).then(|| value.to_owned()),
        effect: "NoSchedule".to_owned(),
        time_added: None,
    }
}

fn pod(name: &str, cpu: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".to_owned(),
                image: Some("registry.k8s.io/pause:3.9".to_owned()),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_owned(), Quantity(cpu.to_owned())),
                        ("memory".to_owned(), Quantity("64Mi".to_owned())),
                    ])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn labelled(mut pod: Pod, labels: &[(&str, &str)]) -> Pod {
    pod.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    pod
}

async fn create_pod(client: &kube::Client, pod: Pod) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

fn start_scheduler(client: &kube::Client) -> (CancellationToken, JoinHandle<anyhow::Result<()>>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(skiff_scheduler::run(
        client.clone(),
        Config::default(),
        shutdown.clone(),
    ));
    (shutdown, task)
}

async fn stop_scheduler(scheduler: (CancellationToken, JoinHandle<anyhow::Result<()>>)) {
    scheduler.0.cancel();
    scheduler.1.await.unwrap().unwrap();
}

async fn node_of(client: &kube::Client, name: &str) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.get(name).await.unwrap().spec.unwrap().node_name
}

async fn bound_node(client: &kube::Client, name: &str) -> String {
    eventually(&format!("{name} to be bound"), || node_of(client, name)).await
}

async fn events_for(client: &kube::Client, pod: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

async fn failed_scheduling(client: &kube::Client, pod: &str) -> String {
    eventually(&format!("a FailedScheduling event for {pod}"), || async {
        events_for(client, pod, "FailedScheduling")
            .await
            .pop()
            .and_then(|e| e.message)
    })
    .await
}

#[tokio::test]
async fn pods_are_bound_to_fitting_nodes() {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    create_node(&client, NodeSpecification::new("small-1", "1")).await;
    create_node(&client, NodeSpecification::new("small-2", "1")).await;
    create_node(&client, NodeSpecification::new("big", "4")).await;
    let scheduler = start_scheduler(&client);
    create_pod(&client, pod("needs-three", "3")).await;
    for i in 0..4 {
        create_pod(&client, pod(&format!("p{i}"), "250m")).await;
    }
    assert_eq!(bound_node(&client, "needs-three").await, "big");
    for i in 0..4 {
        bound_node(&client, &format!("p{i}")).await;
    }
    let event = eventually("a Scheduled event", || async {
        events_for(&client, "needs-three", "Scheduled").await.pop()
    })
    .await;
    assert_eq!(
        event.message.as_deref(),
        Some("Successfully assigned default/needs-three to big")
    );
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let bound = pods.get("needs-three").await.unwrap();
    let condition = bound
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(condition.status, "True");
    stop_scheduler(scheduler).await;
    server.stop().await;
}

#[tokio::test]
async fn an_unfittable_pod_waits_until_a_node_fits() {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    create_node(&client, NodeSpecification::new("worker-1", "1")).await;
    create_node(&client, NodeSpecification::new("worker-2", "1")).await;
    create_node(
        &client,
        NodeSpecification {
            taints: vec![taint("node-role.kubernetes.io/control-plane", "")],
            ..NodeSpecification::new("control-plane", "16")
        },
    )
    .await;
    let scheduler = start_scheduler(&client);
    create_pod(&client, pod("huge", "4")).await;
    let message = failed_scheduling(&client, "huge").await;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 node(s) had untolerated taint \
         {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes \
         are available: 3 Preemption is not helpful for scheduling."
    );
    let event = events_for(&client, "huge", "FailedScheduling")
        .await
        .remove(0);
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.involved_object.kind.as_deref(), Some("Pod"));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let condition = eventually("PodScheduled=False", || async {
        pods.get("huge")
            .await
            .unwrap()
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    })
    .await;
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(condition.message.as_deref(), Some(message.as_str()));
    assert_eq!(node_of(&client, "huge").await, None);

    // More unschedulable attempts do not repeat the same event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events_for(&client, "huge", "FailedScheduling").await.len(),
        1
    );

    create_node(&client, NodeSpecification::new("worker-big", "8")).await;
    assert_eq!(bound_node(&client, "huge").await, "worker-big");
    stop_scheduler(scheduler).await;
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_pod_frees_room() {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    create_node(&client, NodeSpecification::new("only", "1")).await;
    let scheduler = start_scheduler(&client);
    create_pod(&client, pod("first", "800m")).await;
    assert_eq!(bound_node(&client, "first").await, "only");
    create_pod(&client, pod("second", "800m")).await;
    assert_eq!(
        failed_scheduling(&client, "second").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 \
         Preemption is not helpful for scheduling."
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("first", &Default::default()).await.unwrap();
    // A bound pod gets a grace period; delete it for good, as a kubelet would.
    let _ = pods
        .delete(
            "first",
            &kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(bound_node(&client, "second").await, "only");
    stop_scheduler(scheduler).await;
    server.stop().await;
}

#[tokio::test]
async fn node_selectors_and_taints_are_respected() {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    create_node(
        &client,
        NodeSpecification {
            labels: &[("accelerator", "gpu")],
            taints: vec![taint("dedicated", "gpu")],
            ..NodeSpecification::new("gpu", "4")
        },
    )
    .await;
    create_node(&client, NodeSpecification::new("plain-1", "4")).await;
    create_node(&client, NodeSpecification::new("plain-2", "4")).await;
    let scheduler = start_scheduler(&client);

    let gpu_selector = |mut pod: Pod, tolerate: bool| {
        let spec = pod.spec.as_mut().unwrap();
        spec.node_selector = Some(BTreeMap::from([(
            "accelerator".to_owned(),
            "gpu".to_owned(),
        )]));
        if tolerate {
            spec.tolerations = Some(vec![Toleration {
                key: Some("dedicated".to_owned()),
                operator: Some("Equal".to_owned()),
                value: Some("gpu".to_owned()),
                effect: Some("NoSchedule".to_owned()),
                ..Default::default()
            }]);
        }
        pod
    };
    create_pod(&client, gpu_selector(pod("trainer", "1"), true)).await;
    create_pod(&client, gpu_selector(pod("intolerant", "1"), false)).await;
    for i in 0..4 {
        create_pod(&client, pod(&format!("web-{i}"), "100m")).await;
    }
    assert_eq!(bound_node(&client, "trainer").await, "gpu");
    for i in 0..4 {
        assert_ne!(bound_node(&client, &format!("web-{i}")).await, "gpu");
    }
    assert_eq!(
        failed_scheduling(&client, "intolerant").await,
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) \
         didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 \
         Preemption is not helpful for scheduling."
    );
    stop_scheduler(scheduler).await;
    server.stop().await;
}

#[tokio::test]
async fn anti_affinity_spreads_pods_across_nodes() {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    for name in ["n1", "n2", "n3"] {
        create_node(&client, NodeSpecification::new(name, "4")).await;
    }
    let scheduler = start_scheduler(&client);
    let spread = |name: &str| {
        let mut pod = labelled(pod(name, "100m"), &[("app", "web")]);
        pod.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([("app".to_owned(), "web".to_owned())])),
                        match_expressions: None,
                    }),
                    topology_key: "kubernetes.io/hostname".to_owned(),
                    ..Default::default()
                }]),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Default::default()
        });
        pod
    };
    // Created together: the assumed cache must keep them apart before the watch confirms.
    for i in 0..3 {
        create_pod(&client, spread(&format!("web-{i}"))).await;
    }
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(bound_node(&client, &format!("web-{i}")).await);
    }
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2", "n3"]);
    create_pod(&client, spread("web-3")).await;
    assert_eq!(
        failed_scheduling(&client, "web-3").await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: \
         0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    // Pods of other schedulers are left alone.
    let mut other = pod("other", "100m");
    other.spec.as_mut().unwrap().scheduler_name = Some("other-scheduler".to_owned());
    create_pod(&client, other).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node_of(&client, "other").await, None);
    assert_eq!(node_of(&client, "web-3").await, None);
    stop_scheduler(scheduler).await;
    server.stop().await;
}

#[tokio::test]
async fn throughput_500_pods_on_20_nodes() {
    const NODES: usize = 20;
    const PODS: usize = 500;
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    for i in 0..NODES {
        let name = format!("node-{i:02}");
        create_node(
            &client,
            NodeSpecification {
                pods: "30",
                ..NodeSpecification::new(&name, "8")
            },
        )
        .await;
    }
    let started = Instant::now();
    stream::iter(0..PODS)
        .for_each_concurrent(32, |i| {
            let client = client.clone();
            async move {
                create_pod(
                    &client,
                    labelled(pod(&format!("load-{i:03}"), "100m"), &[("load", "1")]),
                )
                .await
            }
        })
        .await;
    let created = started.elapsed();
    let scheduling = Instant::now();
    let scheduler = start_scheduler(&client);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let placement = eventually("all pods to be bound", || async {
        let list = pods
            .list(&ListParams::default().labels("load=1"))
            .await
            .unwrap();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for pod in &list.items {
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *per_node.entry(node).or_default() += 1;
            }
        }
        (per_node.values().sum::<usize>() == PODS).then_some(per_node)
    })
    .await;
    let elapsed = scheduling.elapsed();
    eprintln!(
        "created {PODS} pods in {created:?}; scheduled and bound them on {NODES} nodes in \
         {elapsed:?}: {:.0} pods/s",
        PODS as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(placement.len(), NODES);
    assert!(
        placement.values().all(|count| *count <= 30),
        "no node over its pod capacity: {placement:?}"
    );
    stop_scheduler(scheduler).await;
    server.stop().await;
}

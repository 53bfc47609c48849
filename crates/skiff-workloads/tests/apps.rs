//! The DaemonSet and StatefulSet controllers against a real in-process API server. There is no
//! scheduler or node agent here: tests create the Node objects themselves and play kubelet by
//! patching pod status to Running and Ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;
use skiff_testkit::TestServer;
use skiff_testkit::eventually;
use skiff_workloads::Informers;
use tokio_util::sync::CancellationToken;

struct Env {
    server: TestServer,
    client: Client,
    namespace: String,
    shutdown: CancellationToken,
}

impl Env {
    async fn start(namespace: &str) -> Env {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = TestServer::start().await.unwrap();
        let client = server.client();
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
            )
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(skiff_workloads::run(
            Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
        ));
        Env {
            server,
            client,
            namespace: namespace.to_owned(),
            shutdown,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    async fn add_node(&self, name: &str, labels: serde_json::Value, taints: serde_json::Value) {
        let node = json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints},
        });
        self.nodes()
            .create(
                &PostParams::default(),
                &serde_json::from_value(node).unwrap(),
            )
            .await
            .unwrap();
    }

    /// Marks every pending pod Running and Ready, as a kubelet would, until cancelled.
    fn kubelet(&self) -> CancellationToken {
        self.kubelet_except("")
    }

    /// [`Env::kubelet`], leaving pods of the image `broken` pending (an image that never
    /// starts; empty for none).
    fn kubelet_except(&self, broken: &str) -> CancellationToken {
        let stop = CancellationToken::new();
        let pods: Api<Pod> = self.api();
        let token = stop.clone();
        let broken = broken.to_owned();
        tokio::spawn(async move {
            while !token.is_cancelled() {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for pod in list {
                        let image = pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers[0].image.clone());
                        if broken.is_empty() || image.as_deref() != Some(broken.as_str()) {
                            mark_ready(&pods, &pod).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        stop
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.stop().await;
    }
}

async fn mark_ready(pods: &Api<Pod>, pod: &Pod) {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Running" | "Failed")) || pod.metadata.deletion_timestamp.is_some() {
        return;
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", now).unwrap();
    let patch = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
    }});
    let _ = pods
        .patch_status(
            pod.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await;
}

/// Live (not terminating) pods matching `selector`.
async fn pods_of(env: &Env, selector: &str) -> Vec<Pod> {
    env.api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn label<'a>(pod: &'a Pod, key: &str) -> &'a str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

/// The node a daemon pod is meant for (its required `matchFields` affinity).
fn target_node(pod: &Pod) -> String {
    let affinity = pod.spec.as_ref().unwrap().affinity.as_ref().unwrap();
    let terms = &affinity
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    let field = &terms[0].match_fields.as_ref().unwrap()[0];
    assert_eq!(
        (field.key.as_str(), field.operator.as_str()),
        ("metadata.name", "In")
    );
    field.values.as_ref().unwrap()[0].clone()
}

/// Daemon pods by target node.
async fn daemon_pods(env: &Env) -> BTreeMap<String, Pod> {
    pods_of(env, "app=agent")
        .await
        .into_iter()
        .map(|p| (target_node(&p), p))
        .collect()
}

fn daemon_set(image: &str) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "nodeSelector": {"disk": "ssd"},
                    "containers": [{"name": "main", "image": image}],
                },
            },
        },
    }))
    .unwrap()
}

/// What `kubectl rollout status ds` checks.
async fn daemon_set_rolled_out(env: &Env, desired: i32) -> DaemonSet {
    eventually("the daemon set rolled out", || async {
        let ds = env.api::<DaemonSet>().get("agent").await.ok()?;
        let status = ds.status.clone()?;
        let done = ds.metadata.generation <= status.observed_generation
            && status.desired_number_scheduled == desired
            && status.updated_number_scheduled == Some(desired)
            && status.number_available == Some(desired);
        done.then_some(ds)
    })
    .await
}

fn keys(pods: &BTreeMap<String, Pod>) -> Vec<&str> {
    pods.keys().map(String::as_str).collect()
}

/// Conformance: [sig-apps] Daemon set [Serial] should run and stop simple daemon; should run
/// and stop complex daemon (node selectors); should update pod when spec was updated and
/// update strategy is RollingUpdate.
#[tokio::test]
async fn a_daemon_set_covers_its_nodes_follows_them_and_rolls_out() {
    let env = Env::start("daemons").await;
    env.add_node("a", json!({"disk": "ssd"}), json!([])).await;
    env.add_node("b", json!({"disk": "ssd"}), json!([])).await;
    env.add_node(
        "tainted",
        json!({"disk": "ssd"}),
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    .await;
    env.add_node("hdd", json!({"disk": "hdd"}), json!([])).await;
    let created = env
        .api::<DaemonSet>()
        .create(&PostParams::default(), &daemon_set("agent:1"))
        .await
        .unwrap();
    let kubelet = env.kubelet();

    let ds = daemon_set_rolled_out(&env, 2).await;
    let pods = daemon_pods(&env).await;
    assert_eq!(keys(&pods), ["a", "b"]);
    let status = ds.status.unwrap();
    assert_eq!(
        (
            status.current_number_scheduled,
            status.number_ready,
            status.number_misscheduled
        ),
        (2, 2, 0)
    );
    let pod = &pods["a"];
    assert!(pod.metadata.name.as_deref().unwrap().starts_with("agent-"));
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("DaemonSet", Some(true))
    );
    assert_eq!(Some(&owner.uid), created.metadata.uid.as_ref());
    let tolerations = pod.spec.as_ref().unwrap().tolerations.clone().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
        "node.kubernetes.io/disk-pressure",
    ] {
        assert!(
            tolerations.iter().any(|t| t.key.as_deref() == Some(key)),
            "{key}"
        );
    }
    let first_hash = label(pod, "controller-revision-hash").to_owned();
    let revisions = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let [revision] = revisions.as_slice() else {
        panic!("one revision: {revisions:?}")
    };
    assert_eq!(revision.revision, 1);
    assert_eq!(
        revision.metadata.name.as_deref(),
        Some(format!("agent-{first_hash}").as_str())
    );
    let data = &revision.data.as_ref().unwrap().0;
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "agent:1"
    );

    // A node added later gets a pod.
    env.add_node("late", json!({"disk": "ssd"}), json!([]))
        .await;
    daemon_set_rolled_out(&env, 3).await;
    assert_eq!(keys(&daemon_pods(&env).await), ["a", "b", "late"]);

    // A NoSchedule taint keeps the pod; an untolerated NoExecute taint evicts it.
    env.nodes()
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})),
        )
        .await
        .unwrap();
    let ds = daemon_set_rolled_out(&env, 2).await;
    assert_eq!(ds.status.unwrap().number_misscheduled, 1);
    assert_eq!(keys(&daemon_pods(&env).await), ["a", "b", "late"]);
    env.nodes()
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}})),
        )
        .await
        .unwrap();
    eventually("the pod on b evicted", || async {
        (keys(&daemon_pods(&env).await) == ["a", "late"]).then_some(())
    })
    .await;

    // A template change rolls out one node at a time, to a second revision.
    env.api::<DaemonSet>()
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "agent:2"}],
            }}}})),
        )
        .await
        .unwrap();
    daemon_set_rolled_out(&env, 2).await;
    let pods = daemon_pods(&env).await;
    assert_eq!(keys(&pods), ["a", "late"]);
    for pod in pods.values() {
        assert_eq!(
            pod.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some("agent:2")
        );
        assert_ne!(label(pod, "controller-revision-hash"), first_hash);
    }
    let mut revisions: Vec<i64> = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.revision)
        .collect();
    revisions.sort();
    assert_eq!(revisions, [1, 2]);
    kubelet.cancel();
    env.stop().await;
}

fn stateful_set(replicas: i32, image: &str, extra: serde_json::Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas,
        "serviceName": "web",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "main", "image": image}]},
        },
        "volumeClaimTemplates": [{
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }],
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": spec})).unwrap()
}

async fn pod_names(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = pods_of(env, "app=web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    names
}

/// What `kubectl rollout status sts` checks (with a partition).
async fn stateful_set_rolled_out(env: &Env, replicas: i32, partition: i32) -> StatefulSet {
    eventually("the stateful set rolled out", || async {
        let set = env.api::<StatefulSet>().get("web").await.ok()?;
        let status = set.status.clone()?;
        let done = status.observed_generation >= set.metadata.generation
            && status.ready_replicas == Some(replicas)
            && status.replicas == replicas
            && status.updated_replicas.unwrap_or(0) >= replicas - partition;
        done.then_some(set)
    })
    .await
}

/// Conformance: [sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic]
/// Scaling should happen in predictable order and halt if any stateful pod is unhealthy.
#[tokio::test]
async fn a_stateful_set_creates_in_order_waits_for_readiness_and_scales_down_in_reverse() {
    let env = Env::start("ordered").await;
    let created = env
        .api::<StatefulSet>()
        .create(&PostParams::default(), &stateful_set(3, "web:1", json!({})))
        .await
        .unwrap();
    eventually("web-0", || async {
        (pod_names(&env).await == ["web-0"]).then_some(())
    })
    .await;
    // Nothing more until web-0 is Running and Ready.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pod_names(&env).await, ["web-0"]);
    let pods: Api<Pod> = env.api();
    let web0 = pods.get("web-0").await.unwrap();
    assert_eq!(label(&web0, "statefulset.kubernetes.io/pod-name"), "web-0");
    assert_eq!(label(&web0, "apps.kubernetes.io/pod-index"), "0");
    assert!(label(&web0, "controller-revision-hash").starts_with("web-"));
    let spec = web0.spec.clone().unwrap();
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref()),
        (Some("web-0"), Some("web"))
    );
    let volume = &spec.volumes.unwrap()[0];
    assert_eq!(volume.name, "data");
    assert_eq!(
        volume.persistent_volume_claim.as_ref().unwrap().claim_name,
        "data-web-0"
    );
    let claim = env
        .api::<PersistentVolumeClaim>()
        .get("data-web-0")
        .await
        .unwrap();
    assert_eq!(claim.metadata.labels.unwrap()["app"], "web");
    mark_ready(&pods, &web0).await;
    eventually("web-1", || async {
        (pod_names(&env).await == ["web-0", "web-1"]).then_some(())
    })
    .await;

    let kubelet = env.kubelet();
    let set = stateful_set_rolled_out(&env, 3, 0).await;
    let status = set.status.unwrap();
    assert_eq!(status.current_revision, status.update_revision);
    assert_eq!(status.current_replicas, Some(3));
    let revision = status.update_revision.unwrap();
    let stored = env
        .api::<ControllerRevision>()
        .get(&revision)
        .await
        .unwrap();
    assert_eq!(stored.revision, 1);
    let owner = &stored.metadata.owner_references.unwrap()[0];
    assert_eq!(Some(&owner.uid), created.metadata.uid.as_ref());
    let mut claims: Vec<String> = env
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    claims.sort();
    assert_eq!(claims, ["data-web-0", "data-web-1", "data-web-2"]);

    // Scaling down deletes from the highest ordinal, one at a time.
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let stop_watch = CancellationToken::new();
    tokio::spawn({
        let deleted = Arc::clone(&deleted);
        let stop = stop_watch.clone();
        let events = watcher(env.api::<Pod>(), watcher::Config::default()).default_backoff();
        async move {
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    event = events.next() => event,
                };
                match event {
                    Some(Ok(watcher::Event::Delete(pod))) => {
                        deleted.lock().unwrap().push(pod.metadata.name.unwrap());
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    stateful_set_rolled_out(&env, 1, 0).await;
    eventually("web-2 and web-1 deleted", || async {
        (deleted.lock().unwrap().len() == 2).then_some(())
    })
    .await;
    assert_eq!(*deleted.lock().unwrap(), ["web-2", "web-1"]);
    assert_eq!(pod_names(&env).await, ["web-0"]);
    // Claims are retained by default.
    assert!(
        env.api::<PersistentVolumeClaim>()
            .get_opt("data-web-2")
            .await
            .unwrap()
            .is_some()
    );
    stop_watch.cancel();
    kubelet.cancel();
    env.stop().await;
}

/// Conformance: [sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic]
/// should perform canary updates and phased rolling updates of template modifications.
#[tokio::test]
async fn a_partitioned_rolling_update_only_updates_ordinals_from_the_partition() {
    let env = Env::start("partition").await;
    let kubelet = env.kubelet();
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &stateful_set(3, "web:1", json!({})))
        .await
        .unwrap();
    let set = stateful_set_rolled_out(&env, 3, 0).await;
    let first = set.status.unwrap().current_revision.unwrap();
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                "template": {"spec": {"containers": [{"name": "main", "image": "web:2"}]}},
            }})),
        )
        .await
        .unwrap();
    let set = stateful_set_rolled_out(&env, 3, 1).await;
    let status = set.status.unwrap();
    let second = status.update_revision.clone().unwrap();
    assert_ne!(first, second);
    assert_eq!(status.current_revision.as_deref(), Some(first.as_str()));
    assert_eq!(status.updated_replicas, Some(2));
    let pods: Api<Pod> = env.api();
    let revision_of = |pod: &Pod| label(pod, "controller-revision-hash").to_owned();
    let image_of = |pod: &Pod| {
        pod.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    let web0 = pods.get("web-0").await.unwrap();
    assert_eq!(
        (revision_of(&web0), image_of(&web0)),
        (first.clone(), "web:1".into())
    );
    for name in ["web-1", "web-2"] {
        let pod = pods.get(name).await.unwrap();
        assert_eq!(
            (revision_of(&pod), image_of(&pod)),
            (second.clone(), "web:2".into())
        );
    }
    // Partition 0 finishes the rollout; the update revision becomes current.
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
        )
        .await
        .unwrap();
    let set = eventually("the rollout complete", || async {
        let set = env.api::<StatefulSet>().get("web").await.ok()?;
        let status = set.status.clone()?;
        (status.current_revision == status.update_revision
            && status.current_replicas == Some(3)
            && status.ready_replicas == Some(3))
        .then_some(set)
    })
    .await;
    assert_eq!(set.status.unwrap().current_revision, Some(second.clone()));
    let web0 = pods.get("web-0").await.unwrap();
    assert_eq!(image_of(&web0), "web:2");
    kubelet.cancel();
    env.stop().await;
}

/// Conformance: [sig-apps] StatefulSet Basic StatefulSet functionality [StatefulSetBasic]
/// Should recreate evicted statefulset (a failed pod is replaced under the same name).
#[tokio::test]
async fn a_failed_stateful_pod_is_recreated() {
    let env = Env::start("failed").await;
    let kubelet = env.kubelet();
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &stateful_set(1, "web:1", json!({})))
        .await
        .unwrap();
    stateful_set_rolled_out(&env, 1, 0).await;
    let pods: Api<Pod> = env.api();
    let before = pods.get("web-0").await.unwrap();
    pods.patch_status(
        "web-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Failed"}})),
    )
    .await
    .unwrap();
    eventually("web-0 recreated", || async {
        let pod = pods.get_opt("web-0").await.ok()??;
        (pod.metadata.uid != before.metadata.uid).then_some(())
    })
    .await;
    stateful_set_rolled_out(&env, 1, 0).await;
    kubelet.cancel();
    env.stop().await;
}

/// Conformance: [sig-apps] Daemon set [Serial] should rollback without unnecessary restarts:
/// an update to an image that never starts is rolled back (with the patch `kubectl rollout
/// undo` applies, the old revision's data) and the pods never updated keep running.
#[tokio::test]
async fn a_daemon_set_rolls_back_without_restarting_untouched_pods() {
    let env = Env::start("rollback").await;
    for name in ["a", "b", "c"] {
        env.add_node(name, json!({"disk": "ssd"}), json!([])).await;
    }
    let kubelet = env.kubelet_except("agent:broken");
    env.api::<DaemonSet>()
        .create(&PostParams::default(), &daemon_set("agent:1"))
        .await
        .unwrap();
    daemon_set_rolled_out(&env, 3).await;
    let before: BTreeMap<String, Option<String>> = daemon_pods(&env)
        .await
        .into_iter()
        .map(|(node, pod)| (node, pod.metadata.uid))
        .collect();
    env.api::<DaemonSet>()
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "agent:broken"}],
            }}}})),
        )
        .await
        .unwrap();
    // One node gets the broken pod; max unavailable 1 holds the others back.
    let broken_node = eventually("one broken pod", || async {
        let pods = daemon_pods(&env).await;
        let broken: Vec<&String> = pods
            .iter()
            .filter(|(_, p)| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("agent:broken")
            })
            .map(|(node, _)| node)
            .collect();
        (pods.len() == 3 && broken.len() == 1).then(|| broken[0].clone())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let revisions = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let first = revisions.iter().find(|r| r.revision == 1).unwrap();
    env.api::<DaemonSet>()
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Strategic(first.data.as_ref().unwrap().0.clone()),
        )
        .await
        .unwrap();
    daemon_set_rolled_out(&env, 3).await;
    let after = daemon_pods(&env).await;
    for (node, pod) in &after {
        assert_eq!(
            pod.spec.as_ref().unwrap().containers[0].image.as_deref(),
            Some("agent:1")
        );
        if *node != broken_node {
            assert_eq!(
                pod.metadata.uid, before[node],
                "the pod on {node} was restarted"
            );
        }
    }
    // The rollback reused revision 1 as revision 3.
    let mut numbers: Vec<i64> = env
        .api::<ControllerRevision>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.revision)
        .collect();
    numbers.sort();
    assert_eq!(numbers, [2, 3]);
    kubelet.cancel();
    env.stop().await;
}

fn owners(claim: &PersistentVolumeClaim) -> Vec<(String, String, Option<bool>)> {
    claim
        .metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| (r.kind.clone(), r.name.clone(), r.controller))
        .collect()
}

/// `persistentVolumeClaimRetentionPolicy` through owner references: with `whenDeleted:
/// Delete` the set owns its claims, with `whenScaled: Delete` a scaled-down pod owns its claim
/// (the garbage collector then deletes it with the pod).
#[tokio::test]
async fn claim_retention_policy_sets_claim_owners() {
    let env = Env::start("retention").await;
    let kubelet = env.kubelet();
    let policy = json!({"persistentVolumeClaimRetentionPolicy": {
        "whenDeleted": "Delete", "whenScaled": "Delete",
    }});
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &stateful_set(2, "web:1", policy))
        .await
        .unwrap();
    stateful_set_rolled_out(&env, 2, 0).await;
    let claims: Api<PersistentVolumeClaim> = env.api();
    for name in ["data-web-0", "data-web-1"] {
        let owned = eventually("the set owning the claim", || async {
            let claim = claims.get(name).await.ok()?;
            (owners(&claim) == [("StatefulSet".into(), "web".into(), Some(true))]).then_some(())
        });
        owned.await;
    }
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    stateful_set_rolled_out(&env, 1, 0).await;
    let claim = claims.get("data-web-1").await.unwrap();
    assert_eq!(owners(&claim), [("Pod".into(), "web-1".into(), Some(true))]);
    let claim = claims.get("data-web-0").await.unwrap();
    assert_eq!(
        owners(&claim),
        [("StatefulSet".into(), "web".into(), Some(true))]
    );
    kubelet.cancel();
    env.stop().await;
}

/// RollingUpdate with `maxSurge`: the new pod starts beside the old one, which stays until the
/// new one is available.
#[tokio::test]
async fn a_surging_daemon_set_keeps_old_pods_until_new_ones_are_available() {
    let env = Env::start("surge").await;
    for name in ["a", "b"] {
        env.add_node(name, json!({"disk": "ssd"}), json!([])).await;
    }
    let mut ds = daemon_set("agent:1");
    ds.spec.as_mut().unwrap().update_strategy = Some(
        serde_json::from_value(json!({
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }))
        .unwrap(),
    );
    let kubelet = env.kubelet_except("agent:2");
    env.api::<DaemonSet>()
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    daemon_set_rolled_out(&env, 2).await;
    env.api::<DaemonSet>()
        .patch(
            "agent",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "agent:2"}],
            }}}})),
        )
        .await
        .unwrap();
    let images = |pods: &[Pod]| -> Vec<String> {
        let mut images: Vec<String> = pods
            .iter()
            .map(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap()
            })
            .collect();
        images.sort();
        images
    };
    eventually("one new pod beside the old ones", || async {
        let pods = pods_of(&env, "app=agent").await;
        (images(&pods) == ["agent:1", "agent:1", "agent:2"]).then_some(())
    })
    .await;
    // The new pod never becomes available here: the old ones stay, no second surge.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        images(&pods_of(&env, "app=agent").await),
        ["agent:1", "agent:1", "agent:2"]
    );
    kubelet.cancel();
    let kubelet = env.kubelet();
    daemon_set_rolled_out(&env, 2).await;
    eventually("only new pods", || async {
        let pods = pods_of(&env, "app=agent").await;
        (images(&pods) == ["agent:2", "agent:2"]).then_some(())
    })
    .await;
    kubelet.cancel();
    env.stop().await;
}

/// `updateStrategy: OnDelete`: a template change only reaches the pods the user deletes.
#[tokio::test]
async fn on_delete_updates_only_deleted_pods() {
    let env = Env::start("ondelete").await;
    let kubelet = env.kubelet();
    let strategy = json!({"updateStrategy": {"type": "OnDelete"}});
    env.api::<StatefulSet>()
        .create(&PostParams::default(), &stateful_set(2, "web:1", strategy))
        .await
        .unwrap();
    stateful_set_rolled_out(&env, 2, 0).await;
    env.api::<StatefulSet>()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "web:2"}],
            }}}})),
        )
        .await
        .unwrap();
    let set = eventually("the new generation observed", || async {
        let set = env.api::<StatefulSet>().get("web").await.ok()?;
        let status = set.status.clone()?;
        (status.observed_generation >= set.metadata.generation
            && status.update_revision != status.current_revision)
            .then_some(set)
    })
    .await;
    assert_eq!(set.status.unwrap().updated_replicas, Some(0));
    let pods: Api<Pod> = env.api();
    let image_of = |pod: &Pod| {
        pod.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    for name in ["web-0", "web-1"] {
        assert_eq!(image_of(&pods.get(name).await.unwrap()), "web:1");
    }
    pods.delete("web-1", &Default::default()).await.unwrap();
    eventually("web-1 recreated on the new template", || async {
        let pod = pods.get_opt("web-1").await.ok()??;
        (image_of(&pod) == "web:2").then_some(())
    })
    .await;
    assert_eq!(image_of(&pods.get("web-0").await.unwrap()), "web:1");
    kubelet.cancel();
    env.stop().await;
}

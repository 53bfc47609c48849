//! The workload controllers against a real in-process API server. Pods stay Pending here
//! (no scheduler or node agent), so tests play kubelet by patching pod status to Running and
//! Ready.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
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
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
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

    /// Marks every pending pod Running and Ready, as a kubelet would, until `stop`.
    fn kubelet(&self) -> CancellationToken {
        let stop = CancellationToken::new();
        let pods: Api<Pod> = self.api();
        let token = stop.clone();
        tokio::spawn(async move {
            while !token.is_cancelled() {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for pod in list {
                        mark_ready(&pods, &pod).await;
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
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    if running || pod.metadata.deletion_timestamp.is_some() {
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

fn deployment(name: &str, replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }))
    .unwrap()
}

async fn replica_sets(env: &Env) -> Vec<ReplicaSet> {
    env.api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

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

fn annotation(annotations: Option<&BTreeMap<String, String>>, key: &str) -> Option<String> {
    annotations.and_then(|a| a.get(key)).cloned()
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn condition_reason(d: &Deployment, type_: &str) -> Option<String> {
    d.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .and_then(|c| c.reason.clone())
}

/// What `kubectl rollout status` checks, plus the Progressing condition.
async fn rolled_out(env: &Env, name: &str) -> Deployment {
    let api = env.api::<Deployment>();
    eventually("the rollout to complete", || async {
        let d = api.get(name).await.ok()?;
        let status = d.status.clone()?;
        let replicas = d.spec.as_ref()?.replicas?;
        let done = d.metadata.generation <= status.observed_generation
            && status.updated_replicas.unwrap_or(0) == replicas
            && status.replicas.unwrap_or(0) == replicas
            && status.available_replicas.unwrap_or(0) == replicas
            && condition_reason(&d, "Progressing").as_deref() == Some("NewReplicaSetAvailable");
        done.then_some(d)
    })
    .await
}

async fn set_image(env: &Env, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}});
    env.api::<Deployment>()
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deployment_creates_a_replica_set_and_pods_and_completes() {
    let env = Env::start("create").await;
    let created = env
        .api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 3, "nginx:1", json!({})),
        )
        .await
        .unwrap();

    let rs = eventually("one replica set with 3 pods", || async {
        let rses = replica_sets(&env).await;
        let [rs] = rses.as_slice() else { return None };
        (pods_of(&env, "app=web").await.len() == 3).then(|| rs.clone())
    })
    .await;
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "Deployment");
    assert_eq!(Some(&owner.uid), created.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()["pod-template-hash"],
        hash
    );
    assert_eq!(
        annotation(
            rs.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision"
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        annotation(
            rs.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/desired-replicas"
        )
        .as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(
            rs.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/max-replicas"
        )
        .as_deref(),
        Some("4")
    );
    for pod in pods_of(&env, "app=web").await {
        let name = pod.metadata.name.as_deref().unwrap();
        assert!(name.starts_with(&format!("web-{hash}-")), "{name}");
        assert_eq!(name.len(), format!("web-{hash}-").len() + 5);
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["pod-template-hash"],
            hash
        );
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("ReplicaSet", Some(true))
        );
        assert_eq!(Some(&owner.uid), rs.metadata.uid.as_ref());
    }
    // The status follows the pods: wait for the controller to have written it.
    let d = eventually("the Available condition", || async {
        let d = env.api::<Deployment>().get("web").await.ok()?;
        condition_reason(&d, "Available").is_some().then_some(d)
    })
    .await;
    assert_eq!(
        condition_reason(&d, "Available").as_deref(),
        Some("MinimumReplicasUnavailable")
    );
    assert_eq!(d.status.as_ref().unwrap().unavailable_replicas, Some(3));

    let kubelet = env.kubelet();
    let d = rolled_out(&env, "web").await;
    let status = d.status.as_ref().unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.observed_generation, d.metadata.generation);
    assert_eq!(
        condition_reason(&d, "Available").as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        annotation(
            d.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision"
        )
        .as_deref(),
        Some("1")
    );
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn a_new_image_rolls_out_within_surge_and_unavailability() {
    let env = Env::start("rolling").await;
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 3, "nginx:1", strategy),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet();
    rolled_out(&env, "web").await;
    kubelet.cancel();

    set_image(&env, "web", "nginx:2").await;
    let (old, new) = eventually("a second replica set", || async {
        let mut rses = replica_sets(&env).await;
        if rses.len() != 2 {
            return None;
        }
        rses.sort_by_key(|rs| {
            annotation(
                rs.metadata.annotations.as_ref(),
                "deployment.kubernetes.io/revision",
            )
        });
        Some((rses[0].clone(), rses[1].clone()))
    })
    .await;
    assert_eq!(
        annotation(
            new.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision"
        )
        .as_deref(),
        Some("2")
    );
    // maxSurge 1 and maxUnavailable 0: one new pod, no old one gone yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rses = replica_sets(&env).await;
    let size = |name: &Option<String>| {
        rses.iter()
            .find(|rs| &rs.metadata.name == name)
            .map(spec_replicas)
    };
    assert_eq!(size(&new.metadata.name), Some(1));
    assert_eq!(size(&old.metadata.name), Some(3));

    // Pods become ready one at a time; the total never exceeds 4, availability never drops
    // below 3.
    let pods: Api<Pod> = env.api();
    eventually("the old replica set to be scaled down", || async {
        let rses = replica_sets(&env).await;
        let total: i32 = rses.iter().map(spec_replicas).sum();
        assert!(total <= 4, "{total} replicas exceed replicas + maxSurge");
        let all = pods_of(&env, "app=web").await;
        let ready = all
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        assert!(ready >= 3, "only {ready} ready pods");
        if let Some(pending) = all
            .iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running"))
        {
            mark_ready(&pods, pending).await;
        }
        let old = rses
            .iter()
            .find(|rs| rs.metadata.name == old.metadata.name)?;
        let new = rses
            .iter()
            .find(|rs| rs.metadata.name == new.metadata.name)?;
        (spec_replicas(old) == 0 && spec_replicas(new) == 3).then_some(())
    })
    .await;
    let kubelet = env.kubelet();
    let d = rolled_out(&env, "web").await;
    assert_eq!(
        annotation(
            d.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision"
        )
        .as_deref(),
        Some("2")
    );
    assert_eq!(pods_of(&env, "app=web").await.len(), 3);
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn recreate_scales_the_old_replica_set_to_zero_first() {
    let env = Env::start("recreate").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("db", 2, "pg:1", json!({"type": "Recreate"})),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet();
    rolled_out(&env, "db").await;
    kubelet.cancel();
    let old = replica_sets(&env).await.remove(0);

    set_image(&env, "db", "pg:2").await;
    let new = eventually("the new replica set", || async {
        replica_sets(&env)
            .await
            .into_iter()
            .find(|rs| rs.metadata.name != old.metadata.name)
    })
    .await;
    // By the time the new one exists, the old one is at zero with no pods left.
    let old_now = env
        .api::<ReplicaSet>()
        .get(old.metadata.name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(spec_replicas(&old_now), 0);
    let old_hash = &old.metadata.labels.as_ref().unwrap()["pod-template-hash"];
    assert!(
        pods_of(&env, &format!("pod-template-hash={old_hash}"))
            .await
            .is_empty()
    );
    assert_eq!(
        annotation(
            new.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision"
        )
        .as_deref(),
        Some("2")
    );

    let kubelet = env.kubelet();
    rolled_out(&env, "db").await;
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn scaling_to_ten_and_to_zero() {
    let env = Env::start("scale").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 2, "nginx:1", json!({})),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet();
    rolled_out(&env, "web").await;
    let api = env.api::<Deployment>();
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 10}})),
    )
    .await
    .unwrap();
    rolled_out(&env, "web").await;
    assert_eq!(pods_of(&env, "app=web").await.len(), 10);
    let rses = replica_sets(&env).await;
    assert_eq!(rses.len(), 1);
    assert_eq!(
        annotation(
            rses[0].metadata.annotations.as_ref(),
            "deployment.kubernetes.io/desired-replicas"
        )
        .as_deref(),
        Some("10")
    );

    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    eventually("all pods gone", || async {
        let d = api.get("web").await.ok()?;
        let status = d.status.clone()?;
        (pods_of(&env, "app=web").await.is_empty()
            && status.replicas.unwrap_or(0) == 0
            && d.metadata.generation <= status.observed_generation)
            .then_some(())
    })
    .await;
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn revision_history_limit_keeps_one_old_replica_set() {
    let env = Env::start("history").await;
    let mut d = deployment("web", 1, "nginx:1", json!({}));
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    env.api::<Deployment>()
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let kubelet = env.kubelet();
    rolled_out(&env, "web").await;
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        set_image(&env, "web", image).await;
        eventually("the image to roll out", || async {
            let d = env.api::<Deployment>().get("web").await.ok()?;
            let status = d.status.clone()?;
            (d.metadata.generation <= status.observed_generation
                && condition_reason(&d, "Progressing").as_deref() == Some("NewReplicaSetAvailable"))
            .then_some(())
        })
        .await;
    }
    let rses = eventually("old replica sets to be cleaned up", || async {
        let rses = replica_sets(&env).await;
        (rses.len() == 2).then_some(rses)
    })
    .await;
    let mut revisions: Vec<_> = rses
        .iter()
        .filter_map(|rs| {
            annotation(
                rs.metadata.annotations.as_ref(),
                "deployment.kubernetes.io/revision",
            )
        })
        .collect();
    revisions.sort();
    assert_eq!(revisions, ["3", "4"]);
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn a_paused_deployment_does_not_roll_until_resumed() {
    let env = Env::start("paused").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 2, "nginx:1", json!({})),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet();
    rolled_out(&env, "web").await;
    let api = env.api::<Deployment>();
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await
    .unwrap();
    set_image(&env, "web", "nginx:2").await;
    eventually("the paused condition", || async {
        let d = api.get("web").await.ok()?;
        let observed = d.status.as_ref()?.observed_generation;
        (condition_reason(&d, "Progressing").as_deref() == Some("DeploymentPaused")
            && d.metadata.generation == observed)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(replica_sets(&env).await.len(), 1);

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    eventually("a new replica set after resuming", || async {
        (replica_sets(&env).await.len() == 2).then_some(())
    })
    .await;
    rolled_out(&env, "web").await;
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn a_replica_set_replaces_a_deleted_pod_and_adopts_orphans() {
    let env = Env::start("rs").await;
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "cache"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "cache"}},
            "template": {
                "metadata": {"labels": {"app": "cache"}},
                "spec": {"containers": [{"name": "main", "image": "redis"}]},
            },
        },
    }))
    .unwrap();
    env.api::<ReplicaSet>()
        .create(&PostParams::default(), &rs)
        .await
        .unwrap();
    let pods = eventually("3 pods", || async {
        let pods = pods_of(&env, "app=cache").await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    for pod in &pods {
        assert!(pod.metadata.name.as_deref().unwrap().starts_with("cache-"));
    }
    let victim = pods[0].metadata.name.clone().unwrap();
    env.api::<Pod>()
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    eventually("a replacement pod", || async {
        let pods = pods_of(&env, "app=cache").await;
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())))
        .then_some(())
    })
    .await;
    // Status follows readiness.
    let kubelet = env.kubelet();
    eventually("3 ready replicas", || async {
        let rs = env.api::<ReplicaSet>().get("cache").await.ok()?;
        let status = rs.status?;
        (status.ready_replicas == Some(3)
            && status.available_replicas == Some(3)
            && status.fully_labeled_replicas == Some(3)
            && status.observed_generation == rs.metadata.generation)
            .then_some(())
    })
    .await;
    kubelet.cancel();
    // An orphan matching the selector is adopted, and the surplus deleted.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "cache"}},
        "spec": {"containers": [{"name": "main", "image": "redis"}]},
    }))
    .unwrap();
    env.api::<Pod>()
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    eventually("3 pods again", || async {
        (pods_of(&env, "app=cache").await.len() == 3).then_some(())
    })
    .await;
    // The unready orphan, once adopted, is the one deleted.
    assert!(
        pods_of(&env, "app=cache")
            .await
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some("orphan"))
    );
    env.stop().await;
}

#[tokio::test]
async fn a_replication_controller_keeps_its_replicas() {
    let env = Env::start("rc").await;
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"app": "legacy"},
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    }))
    .unwrap();
    let api = env.api::<ReplicationController>();
    api.create(&PostParams::default(), &rc).await.unwrap();
    eventually("2 pods", || async {
        (pods_of(&env, "app=legacy").await.len() == 2).then_some(())
    })
    .await;
    api.patch_scale(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    eventually("1 pod and status", || async {
        let rc = api.get("legacy").await.ok()?;
        (pods_of(&env, "app=legacy").await.len() == 1 && rc.status?.replicas == 1).then_some(())
    })
    .await;
    env.stop().await;
}

/// Runs kubectl against the test server (blocking, off the runtime).
async fn kubectl(env: &Env, args: &[&str]) -> String {
    let mut command = std::process::Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(env.server.kubeconfig())
        .arg("-n")
        .arg(&env.namespace)
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn kubectl_rollout_status_history_undo_and_restart() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        return;
    }
    let env = Env::start("kubectl").await;
    env.api::<Deployment>()
        .create(
            &PostParams::default(),
            &deployment("web", 2, "nginx:1", json!({})),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet();
    let out = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    set_image(&env, "web", "nginx:2").await;
    let out = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let out = kubectl(&env, &["rollout", "history", "deployment/web"]).await;
    assert!(out.contains('1') && out.contains('2'), "{out}");

    kubectl(&env, &["rollout", "undo", "deployment/web"]).await;
    kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    let d = rolled_out(&env, "web").await;
    assert_eq!(
        annotation(
            d.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision"
        )
        .as_deref(),
        Some("3")
    );
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("nginx:1"));
    let rses = replica_sets(&env).await;
    assert_eq!(rses.len(), 2, "the old replica set is reused");
    let reused = rses
        .iter()
        .find(|rs| {
            annotation(
                rs.metadata.annotations.as_ref(),
                "deployment.kubernetes.io/revision",
            )
            .as_deref()
                == Some("3")
        })
        .unwrap();
    assert_eq!(
        annotation(
            reused.metadata.annotations.as_ref(),
            "deployment.kubernetes.io/revision-history"
        )
        .as_deref(),
        Some("1")
    );

    kubectl(&env, &["rollout", "restart", "deployment/web"]).await;
    eventually("a third replica set", || async {
        (replica_sets(&env).await.len() == 3).then_some(())
    })
    .await;
    let out = kubectl(
        &env,
        &["rollout", "status", "deployment/web", "--timeout=20s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    kubelet.cancel();
    env.stop().await;
}

//! Admission on create through the router, without sockets: LimitRange defaults and bounds,
//! ResourceQuota charges and refusals (the controller's recount is tested in
//! skiff-controllers; here the quota's status is set as the controller would).

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use skiff_apiserver::{AppState, Identity, StaticTokens, router};
use skiff_store::{Config, Datastore, Store};
use tower::ServiceExt;

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        retention: None,
        ..Config::default()
    };
    let store = Store::open(&Datastore::Sqlite(dir.path().join("state.db")), config)
        .await
        .unwrap();
    let issuer = skiff_apiserver::TokenIssuer::new(skiff_pki::SigningKey::generate().unwrap());
    let state = AppState::start(store, StaticTokens::default(), issuer)
        .await
        .unwrap();
    skiff_apiserver::bootstrap(&state, 6443).await.unwrap();
    (router(state), dir)
}

async fn send(app: &axum::Router, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    request.extensions_mut().insert(Identity {
        user: "system:admin".into(),
        groups: vec!["system:masters".into()],
        ..Identity::default()
    });
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const NS: &str = "/api/v1/namespaces/default";

fn pod(name: &str, resources: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": resources}]}
    })
}

#[tokio::test]
async fn limit_ranges_default_and_bound_new_pods_and_claims() {
    let (app, _dir) = app().await;
    let range = json!({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
        "spec": {"limits": [
            {"type": "Container", "max": {"cpu": "500m"},
             "default": {"cpu": "200m", "memory": "64Mi"},
             "defaultRequest": {"cpu": "100m", "memory": "32Mi"}},
            {"type": "PersistentVolumeClaim", "max": {"storage": "1Gi"}},
        ]}
    });
    let (code, body) = send(&app, "POST", &format!("{NS}/limitranges"), range).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    let (code, created) = send(&app, "POST", &format!("{NS}/pods"), pod("plain", json!({}))).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "200m", "memory": "64Mi"},
               "requests": {"cpu": "100m", "memory": "32Mi"}})
    );
    assert_eq!(created["status"]["qosClass"], "Burstable");
    assert_eq!(
        created["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c"
    );

    let big = pod("big", json!({"limits": {"cpu": "1"}}));
    let (code, refused) = send(&app, "POST", &format!("{NS}/pods"), big).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["reason"], "Forbidden");
    assert_eq!(
        refused["message"],
        "pods \"big\" is forbidden: maximum cpu usage per Container is 500m, but limit is 1"
    );

    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}
    });
    let (code, refused) = send(&app, "POST", &format!("{NS}/persistentvolumeclaims"), claim).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        refused["message"],
        "persistentvolumeclaims \"data\" is forbidden: maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi"
    );
}

#[tokio::test]
async fn quotas_are_charged_on_create_and_refuse_what_exceeds_them() {
    let (app, _dir) = app().await;
    let quota = json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "2", "requests.cpu": "1"}}
    });
    let (code, created) = send(&app, "POST", &format!("{NS}/resourcequotas"), quota).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let cpu = |c: &str| json!({"requests": {"cpu": c}});

    // Until the controller has counted, the quota's usage is unknown and nothing is admitted.
    let (code, refused) = send(&app, "POST", &format!("{NS}/pods"), pod("a", cpu("100m"))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        refused["message"],
        "pods \"a\" is forbidden: status unknown for quota: q, resources: pods,requests.cpu"
    );

    let mut counted = created.clone();
    counted["status"] = json!({"hard": {"pods": "2", "requests.cpu": "1"},
                               "used": {"pods": "0", "requests.cpu": "0"}});
    let (code, body) = send(
        &app,
        "PUT",
        &format!("{NS}/resourcequotas/q/status"),
        counted,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let (code, refused) = send(&app, "POST", &format!("{NS}/pods"), pod("a", json!({}))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        refused["message"],
        "pods \"a\" is forbidden: failed quota: q: must specify requests.cpu"
    );

    // A dry run is checked but not charged.
    let (code, body) = send(
        &app,
        "POST",
        &format!("{NS}/pods?dryRun=All"),
        pod("a", cpu("100m")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    for (name, request) in [("a", "300m"), ("b", "500m")] {
        let (code, body) = send(&app, "POST", &format!("{NS}/pods"), pod(name, cpu(request))).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (_, quota) = send(&app, "GET", &format!("{NS}/resourcequotas/q"), Value::Null).await;
    assert_eq!(
        quota["status"]["used"],
        json!({"pods": "2", "requests.cpu": "800m"})
    );

    let (code, refused) = send(&app, "POST", &format!("{NS}/pods"), pod("c", cpu("100m"))).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(
        refused["message"],
        "pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    // Other kinds are not this quota's business.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}});
    let (code, body) = send(&app, "POST", &format!("{NS}/configmaps"), cm).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_cannot_both_take_the_last_unit() {
    let (app, _dir) = app().await;
    let quota = json!({
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
        "spec": {"hard": {"configmaps": "5"}}
    });
    let (_, mut created) = send(&app, "POST", &format!("{NS}/resourcequotas"), quota).await;
    created["status"] = json!({"hard": {"configmaps": "5"}, "used": {"configmaps": "0"}});
    let (code, body) = send(
        &app,
        "PUT",
        &format!("{NS}/resourcequotas/q/status"),
        created,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let creates = (0..12).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": format!("cm-{i}")}});
            send(&app, "POST", &format!("{NS}/configmaps"), cm).await.0
        })
    });
    let mut admitted = 0;
    for create in creates {
        if create.await.unwrap() == StatusCode::CREATED {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5);
    let (_, quota) = send(&app, "GET", &format!("{NS}/resourcequotas/q"), Value::Null).await;
    assert_eq!(quota["status"]["used"]["configmaps"], "5");
}

/// Every create here waits for the watch cache to catch up (no quota or LimitRange in the
/// namespace: upstream's live lookup) while the cache applies the creates' own events. A
/// waiter once held the revision channel's lock into the cache's state lock while the
/// applier held them the other way round, and the server stopped answering for good. The
/// server runs on a runtime of its own thread, so a deadlock fails this test instead of
/// hanging it.
#[test]
fn creates_waiting_for_the_cache_never_deadlock_with_its_feed() {
    let (finished, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (app, _dir) = app().await;
            let creates = (0..8).map(|client| {
                let app = app.clone();
                tokio::spawn(async move {
                    for i in 0..150 {
                        let map = json!({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": format!("m-{client}-{i}")}});
                        let (code, body) =
                            send(&app, "POST", &format!("{NS}/configmaps"), map).await;
                        assert_eq!(code, StatusCode::CREATED, "{body}");
                    }
                })
            });
            for joined in futures::future::join_all(creates).await {
                joined.unwrap();
            }
        });
        let _ = finished.send(());
    });
    done.recv_timeout(std::time::Duration::from_secs(120))
        .expect("1,200 creates finish within 120 s (a deadlock never does)");
}

/// A namespace found to have no quota or limit range is remembered as such for a while (to
/// spare every create a store round trip), but one created through the server counts for the
/// very next create.
#[tokio::test]
async fn a_quota_or_limit_range_created_after_creates_found_none_applies_at_once() {
    let (app, _dir) = app().await;
    for round in 0..20 {
        let ns = format!("round-{round}");
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let (code, body) = send(&app, "POST", "/api/v1/namespaces", namespace).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let base = format!("/api/v1/namespaces/{ns}");
        let (code, body) = send(
            &app,
            "POST",
            &format!("{base}/pods"),
            pod("first", json!({})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");

        let range = json!({
            "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults"},
            "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "250m"}}]}
        });
        let (code, body) = send(&app, "POST", &format!("{base}/limitranges"), range).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (code, defaulted) = send(
            &app,
            "POST",
            &format!("{base}/pods"),
            pod("second", json!({})),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{defaulted}");
        assert_eq!(
            defaulted["spec"]["containers"][0]["resources"]["requests"]["cpu"], "250m",
            "round {round}"
        );

        let quota = json!({
            "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
            "spec": {"hard": {"pods": "5"}}
        });
        let (code, body) = send(&app, "POST", &format!("{base}/resourcequotas"), quota).await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        let (code, refused) = send(
            &app,
            "POST",
            &format!("{base}/pods"),
            pod("third", json!({})),
        )
        .await;
        assert_eq!(code, StatusCode::FORBIDDEN, "round {round}: {refused}");
    }
}

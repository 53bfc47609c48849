//! The router without sockets: authentication gate, Status errors, probes, version.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use skiff_apiserver::{AppState, Identity, KUBERNETES_MINOR, StaticTokens, router};
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
    let tokens = StaticTokens::parse("s3cr3t,alice,uid-1,\"devs\"\n").unwrap();
    let state = AppState::start(store, tokens, issuer()).await.unwrap();
    skiff_apiserver::bootstrap(&state, 6443).await.unwrap();
    (router(state), dir)
}

fn admin() -> Identity {
    Identity {
        user: "system:admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Identity::default()
    }
}

async fn call(
    app: &axum::Router,
    path: &str,
    who: Option<Identity>,
) -> (StatusCode, serde_json::Value, String) {
    call_with(app, Request::get(path), who).await
}

async fn call_with(
    app: &axum::Router,
    request: axum::http::request::Builder,
    who: Option<Identity>,
) -> (StatusCode, serde_json::Value, String) {
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(who) = who {
        request.extensions_mut().insert(who);
    }
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json, text)
}

#[tokio::test]
async fn unauthenticated_requests_get_a_401_status() {
    let (app, _dir) = app().await;
    let (code, body, _) = call(&app, "/version", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["reason"], "Unauthorized");
    assert_eq!(body["code"], 401);
}

#[tokio::test]
async fn probes_answer_ok_to_anyone() {
    let (app, _dir) = app().await;
    for probe in ["/healthz", "/livez", "/readyz"] {
        let (code, _, text) = call(&app, probe, None).await;
        assert_eq!((code, text.as_str()), (StatusCode::OK, "ok"), "{probe}");
    }
}

#[tokio::test]
async fn version_reports_the_kubernetes_minor_built_with() {
    let (app, _dir) = app().await;
    let (code, body, _) = call(&app, "/version", Some(admin())).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["major"], "1");
    assert_eq!(body["minor"], KUBERNETES_MINOR.to_string());
    assert!(
        body["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with(&format!("v1.{KUBERNETES_MINOR}."))
    );
}

#[tokio::test]
async fn unknown_paths_are_a_404_status() {
    let (app, _dir) = app().await;
    let (code, body, _) = call(&app, "/apis/nope/v9", Some(admin())).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(
        body["message"],
        "the server could not find the requested resource"
    );
}

#[tokio::test]
async fn readyz_fails_when_the_store_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &Datastore::Sqlite(dir.path().join("s.db")),
        Config::default(),
    )
    .await
    .unwrap();
    let app = router(
        AppState::start(store.clone(), StaticTokens::default(), issuer())
            .await
            .unwrap(),
    );
    store.close().await;
    let (code, body, _) = call(&app, "/readyz", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["kind"], "Status");
}

#[tokio::test]
async fn a_known_bearer_token_authenticates_and_an_unknown_one_does_not() {
    let (app, _dir) = app().await;
    let known = Request::get("/version").header("Authorization", "Bearer s3cr3t");
    assert_eq!(call_with(&app, known, None).await.0, StatusCode::OK);
    let unknown = Request::get("/version").header("Authorization", "Bearer guess");
    assert_eq!(
        call_with(&app, unknown, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn metrics_count_requests_by_method_and_code_and_expose_the_store() {
    let (app, _dir) = app().await;
    call(&app, "/version", None).await;
    call(&app, "/version", Some(admin())).await;
    let (code, _, text) = call(&app, "/metrics", Some(admin())).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        text.contains("apiserver_request_total{code=\"401\",method=\"GET\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("apiserver_request_total{code=\"200\",method=\"GET\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("apiserver_request_duration_seconds_count{method=\"GET\"} 2"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("skiff_store_revision ")),
        "{text}"
    );
    // Metrics are for authenticated callers only.
    assert_eq!(
        call(&app, "/metrics", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn send(
    app: &axum::Router,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(Body::from(body))
        .unwrap();
    request.extensions_mut().insert(admin());
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn configmap(name: &str) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name }, "data": { "k": "v" }
    })
    .to_string()
    .into_bytes()
}

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn create_get_and_delete_round_trip_with_kubernetes_metadata() {
    let (app, _dir) = app().await;
    let (code, created) = send(&app, "POST", CM, "application/json", configmap("one")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(created["metadata"]["creationTimestamp"].is_string());
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    let (code, got, _) = call(&app, &format!("{CM}/one"), Some(admin())).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(got["data"]["k"], "v");

    let (code, again) = send(&app, "POST", CM, "application/json", configmap("one")).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(again["reason"], "AlreadyExists");
    assert_eq!(again["message"], "configmaps \"one\" already exists");

    let (code, _) = send(
        &app,
        "DELETE",
        &format!("{CM}/one"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let (code, gone, _) = call(&app, &format!("{CM}/one"), Some(admin())).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(gone["message"], "configmaps \"one\" not found");
}

#[tokio::test]
async fn bad_create_bodies_are_4xx_statuses_and_store_nothing() {
    let (app, _dir) = app().await;
    let cases: Vec<(String, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            CM.to_owned(),
            "application/json",
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            CM.to_owned(),
            "application/json",
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            CM.to_owned(),
            "application/vnd.kubernetes.protobuf",
            b"k8s\0".to_vec(),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            CM.to_owned(),
            "application/vnd.kubernetes.protobuf",
            b"{\"not\": \"protobuf\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            CM.to_owned(),
            "text/plain",
            configmap("x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
        ),
        (
            CM.to_owned(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
        (
            CM.to_owned(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        ),
        (
            CM.to_owned(),
            "application/json",
            configmap("Not_A_Name"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
        ),
        (
            "/api/v1/namespaces/missing/configmaps".to_owned(),
            "application/json",
            configmap("x"),
            StatusCode::NOT_FOUND,
            "NotFound",
        ),
        (
            CM.to_owned(),
            "application/json",
            vec![b' '; 3 * 1024 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
        ),
        (
            format!("{CM}?dryRun=Some"),
            "application/json",
            configmap("x"),
            StatusCode::BAD_REQUEST,
            "BadRequest",
        ),
    ];
    for (path, content_type, body, code, reason) in cases {
        let (got, status) = send(&app, "POST", &path, content_type, body).await;
        assert_eq!(got, code, "{path} {content_type}: {status}");
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["reason"], reason, "{status}");
    }
    let (_, list, _) = call(&app, CM, Some(admin())).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing stored");
}

#[tokio::test]
async fn dry_run_and_generate_name() {
    let (app, _dir) = app().await;
    let (code, dry) = send(
        &app,
        "POST",
        &format!("{CM}?dryRun=All"),
        "application/json",
        configmap("dry"),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(dry["metadata"]["name"], "dry");
    assert_eq!(
        call(&app, &format!("{CM}/dry"), Some(admin())).await.0,
        StatusCode::NOT_FOUND
    );

    let body =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"}}"#.to_vec();
    let (code, generated) = send(&app, "POST", CM, "application/json", body).await;
    assert_eq!(code, StatusCode::CREATED);
    let name = generated["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
}

#[tokio::test]
async fn namespaces_are_marked_terminating_and_system_ones_are_protected() {
    let (app, _dir) = app().await;
    let (code, status) = send(
        &app,
        "DELETE",
        "/api/v1/namespaces/default",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{status}");
    let ns = br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}"#.to_vec();
    assert_eq!(
        send(&app, "POST", "/api/v1/namespaces", "application/json", ns)
            .await
            .0,
        StatusCode::CREATED
    );
    let (code, deleted) = send(
        &app,
        "DELETE",
        "/api/v1/namespaces/team-a",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(deleted["status"]["phase"], "Terminating");
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    let (code, still, _) = call(&app, "/api/v1/namespaces/team-a", Some(admin())).await;
    assert_eq!(
        code,
        StatusCode::OK,
        "kept until the namespace controller finalizes it"
    );
    assert_eq!(still["status"]["phase"], "Terminating");
}

fn json_bytes(value: serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[tokio::test]
async fn updates_compare_and_swap_on_resource_version_and_keep_server_fields() {
    let (app, _dir) = app().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "nginx" }] }
            }
        }
    });
    let (code, created) = send(
        &app,
        "POST",
        path,
        "application/json",
        json_bytes(deployment),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);

    let mut changed = created.clone();
    changed["spec"]["replicas"] = serde_json::json!(3);
    changed["metadata"]["uid"] = serde_json::json!("forged");
    let item = format!("{path}/web");
    let (code, updated) = send(
        &app,
        "PUT",
        &item,
        "application/json",
        json_bytes(changed.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 2, "spec changed");
    assert_eq!(
        updated["metadata"]["uid"], created["metadata"]["uid"],
        "uid is the server's"
    );
    assert_ne!(
        updated["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    // The same body again carries the old resourceVersion: a conflict.
    let (code, stale) = send(&app, "PUT", &item, "application/json", json_bytes(changed)).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(stale["reason"], "Conflict");

    let mut labelled = updated.clone();
    labelled["metadata"]["labels"] = serde_json::json!({ "tier": "front" });
    let (code, relabelled) =
        send(&app, "PUT", &item, "application/json", json_bytes(labelled)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        relabelled["metadata"]["generation"], 2,
        "metadata-only change"
    );

    let mut renamed = relabelled.clone();
    renamed["metadata"]["name"] = serde_json::json!("other");
    assert_eq!(
        send(&app, "PUT", &item, "application/json", json_bytes(renamed))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn removing_the_last_finalizer_of_a_deleted_object_deletes_it() {
    let (app, _dir) = app().await;
    let cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "held", "finalizers": ["example.com/hold"] }
    });
    assert_eq!(
        send(&app, "POST", CM, "application/json", json_bytes(cm))
            .await
            .0,
        StatusCode::CREATED
    );
    let item = format!("{CM}/held");
    let (code, marked) = send(&app, "DELETE", &item, "application/json", vec![]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        call(&app, &item, Some(admin())).await.0,
        StatusCode::OK,
        "held by its finalizer"
    );

    let mut released = marked.clone();
    released["metadata"]["finalizers"] = serde_json::json!([]);
    assert_eq!(
        send(&app, "PUT", &item, "application/json", json_bytes(released))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, &item, Some(admin())).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_at_one_revision() {
    let (app, _dir) = app().await;
    for i in 0..5 {
        let (code, _) = send(
            &app,
            "POST",
            CM,
            "application/json",
            configmap(&format!("cm-{i}")),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
    }
    let (code, first, _) = call(&app, &format!("{CM}?limit=2"), Some(admin())).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut token = first["metadata"]["continue"].as_str().unwrap().to_owned();

    // A write between pages is not seen by the rest of this list.
    let (code, _) = send(&app, "POST", CM, "application/json", configmap("cm-late")).await;
    assert_eq!(code, StatusCode::CREATED);

    let mut names: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    loop {
        let encoded: String = token
            .bytes()
            .map(|b| match b {
                b'+' => "%2B".to_owned(),
                b'/' => "%2F".to_owned(),
                b'=' => "%3D".to_owned(),
                other => (other as char).to_string(),
            })
            .collect();
        let (code, page, _) = call(
            &app,
            &format!("{CM}?limit=2&continue={encoded}"),
            Some(admin()),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{page}");
        assert_eq!(page["metadata"]["resourceVersion"], rv.as_str());
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(names, ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    let (code, bad, _) = call(&app, &format!("{CM}?continue=not-a-token"), Some(admin())).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(bad["kind"], "Status");
    let (code, _, _) = call(&app, &format!("{CM}?limit=x"), Some(admin())).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let (app, _dir) = app().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "nginx" }] }
            }
        }
    });
    let (code, created) = send(
        &app,
        "POST",
        path,
        "application/json",
        json_bytes(deployment),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let item = format!("{path}/web");

    let mut with_status = created.clone();
    with_status["status"] = serde_json::json!({ "replicas": 5 });
    let (code, updated) = send(
        &app,
        "PUT",
        &item,
        "application/json",
        json_bytes(with_status.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        updated["status"]["replicas"].is_null(),
        "the main resource ignores status: {updated}"
    );

    let (code, status_put) = send(
        &app,
        "PUT",
        &format!("{item}/status"),
        "application/json",
        json_bytes(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "web" },
            "spec": { "replicas": 99 },
            "status": { "replicas": 5, "observedGeneration": 1 }
        })),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{status_put}");
    assert_eq!(status_put["status"]["replicas"], 5);
    assert_eq!(
        status_put["spec"]["replicas"], 1,
        "status writes leave spec alone"
    );
    assert_eq!(status_put["metadata"]["generation"], 1);

    let (code, patched) = send(
        &app,
        "PATCH",
        &format!("{item}/status"),
        "application/merge-patch+json",
        json_bytes(serde_json::json!({ "status": { "readyReplicas": 1 } })),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{patched}");
    assert_eq!(patched["status"]["replicas"], 5);
    assert_eq!(patched["status"]["readyReplicas"], 1);

    let (code, scaled) = send(
        &app,
        "PATCH",
        &format!("{item}/scale"),
        "application/merge-patch+json",
        json_bytes(serde_json::json!({ "spec": { "replicas": 3 } })),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{scaled}");
    assert_eq!(scaled["kind"], "Scale");
    assert_eq!(scaled["spec"]["replicas"], 3);
    assert_eq!(scaled["status"]["replicas"], 5);

    let (code, _) = send(
        &app,
        "GET",
        &format!("{item}/log"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = send(
        &app,
        "GET",
        "/api/v1/namespaces/default/configmaps/x/scale",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

/// Conformance: [sig-network] Services should provide secure master service.
#[tokio::test]
async fn a_new_cluster_has_the_kubernetes_service() {
    let (app, _dir) = app().await;
    let (code, service) = send(
        &app,
        "GET",
        "/api/v1/namespaces/default/services/kubernetes",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{service}");
    assert_eq!(
        service["spec"]["clusterIP"],
        skiff_apiserver::KUBERNETES_SERVICE_IP
    );
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 6443);
}

#[tokio::test]
async fn reviews_answer_who_the_caller_is_and_what_they_may_do() {
    let (app, _dir) = app().await;
    let (code, whoami) = send(
        &app,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "application/json",
        json_bytes(serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{whoami}");
    assert_eq!(whoami["status"]["userInfo"]["username"], "system:admin");
    let (code, review) = send(
        &app,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "application/json",
        json_bytes(serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}
        })),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{review}");
    assert_eq!(review["status"]["allowed"], true);
    let (code, _) = send(
        &app,
        "GET",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(
        code,
        StatusCode::METHOD_NOT_ALLOWED,
        "reviews are not stored or listed"
    );
}

#[tokio::test]
async fn delete_options_grace_preconditions_and_propagation() {
    let (app, _dir) = app().await;
    let pods = "/api/v1/namespaces/default/pods";
    let pod = |name: &str, node: Option<&str>| {
        let mut pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": name },
            "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
        });
        if let Some(node) = node {
            pod["spec"]["nodeName"] = serde_json::json!(node);
        }
        json_bytes(pod)
    };
    assert_eq!(
        send(&app, "POST", pods, "application/json", pod("unbound", None))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(
            &app,
            "POST",
            pods,
            "application/json",
            pod("bound", Some("n1"))
        )
        .await
        .0,
        StatusCode::CREATED
    );

    // An unbound pod has no kubelet to wait for: it goes at once.
    let (code, _) = send(
        &app,
        "DELETE",
        &format!("{pods}/unbound"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        call(&app, &format!("{pods}/unbound"), Some(admin()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A bound pod is marked with its grace period; its kubelet finishes with grace 0.
    let (code, marked) = send(
        &app,
        "DELETE",
        &format!("{pods}/bound"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, status) = send(
        &app,
        "PATCH",
        &format!("{pods}/bound/status"),
        "application/merge-patch+json",
        json_bytes(serde_json::json!({ "status": { "phase": "Running" } })),
    )
    .await;
    assert_eq!(
        code,
        StatusCode::OK,
        "a stopping pod's status may still change: {status}"
    );
    let grace_zero = json_bytes(
        serde_json::json!({ "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0 }),
    );
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("{pods}/bound"),
            "application/json",
            grace_zero
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, &format!("{pods}/bound"), Some(admin())).await.0,
        StatusCode::NOT_FOUND
    );

    // Preconditions.
    assert_eq!(
        send(&app, "POST", CM, "application/json", configmap("guarded"))
            .await
            .0,
        StatusCode::CREATED
    );
    let wrong_uid = json_bytes(serde_json::json!({ "preconditions": { "uid": "not-it" } }));
    let (code, status) = send(
        &app,
        "DELETE",
        &format!("{CM}/guarded"),
        "application/json",
        wrong_uid,
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("Precondition failed: UID"),
        "{status}"
    );

    // Foreground and Orphan leave the object to the garbage collector, with its finalizer.
    let foreground = json_bytes(serde_json::json!({ "propagationPolicy": "Foreground" }));
    let (code, marked) = send(
        &app,
        "DELETE",
        &format!("{CM}/guarded"),
        "application/json",
        foreground,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        marked["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let bad = json_bytes(serde_json::json!({ "propagationPolicy": "Sideways" }));
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("{CM}/guarded"),
            "application/json",
            bad
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
}

/// Conformance: [sig-network] Services should delete a collection of services (the same verb on ConfigMaps).
#[tokio::test]
async fn deletecollection_deletes_what_the_selector_picks() {
    let (app, _dir) = app().await;
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let cm = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": name, "labels": { "tier": tier } }
        });
        assert_eq!(
            send(&app, "POST", CM, "application/json", json_bytes(cm))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    let (code, deleted) = send(
        &app,
        "DELETE",
        &format!("{CM}?labelSelector=tier%3Dweb"),
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["items"].as_array().unwrap().len(), 2);
    let (_, left, _) = call(&app, CM, Some(admin())).await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c"]);
}

#[tokio::test]
async fn binding_assigns_a_pod_to_a_node_once() {
    let (app, _dir) = app().await;
    let pods = "/api/v1/namespaces/default/pods";
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "p" },
        "spec": { "containers": [{ "name": "c", "image": "busybox" }] }
    });
    assert_eq!(
        send(&app, "POST", pods, "application/json", json_bytes(pod))
            .await
            .0,
        StatusCode::CREATED
    );
    let binding = |node: &str| {
        json_bytes(serde_json::json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": { "name": "p" },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node }
        }))
    };
    let (code, status) = send(
        &app,
        "POST",
        &format!("{pods}/p/binding"),
        "application/json",
        binding("n1"),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{status}");
    assert_eq!(status["status"], "Success");
    let (_, bound, _) = call(&app, &format!("{pods}/p"), Some(admin())).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
    let (code, _) = send(
        &app,
        "POST",
        "/api/v1/namespaces/default/bindings",
        "application/json",
        binding("n2"),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "already assigned");

    // The rest of a pod's spec may not change once created.
    let mut changed = bound.clone();
    changed["spec"]["containers"][0]["command"] = serde_json::json!(["sh"]);
    let (code, status) = send(
        &app,
        "PUT",
        &format!("{pods}/p"),
        "application/json",
        json_bytes(changed),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec");
}

#[tokio::test]
async fn a_terminating_namespace_goes_once_its_finalize_subresource_clears_it() {
    let (app, _dir) = app().await;
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}});
    let (code, created) = send(
        &app,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        json_bytes(ns),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        created["spec"]["finalizers"],
        serde_json::json!(["kubernetes"])
    );
    let (code, marked) = send(
        &app,
        "DELETE",
        "/api/v1/namespaces/doomed",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(marked["status"]["phase"], "Terminating");

    // A plain update cannot drop the finalizer; the finalize subresource can.
    let mut cleared = marked.clone();
    cleared["spec"]["finalizers"] = serde_json::json!([]);
    let (code, kept) = send(
        &app,
        "PUT",
        "/api/v1/namespaces/doomed",
        "application/json",
        json_bytes(cleared.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{kept}");
    assert_eq!(
        kept["spec"]["finalizers"],
        serde_json::json!(["kubernetes"])
    );
    cleared["metadata"]["resourceVersion"] = kept["metadata"]["resourceVersion"].clone();
    let (code, finalized) = send(
        &app,
        "PUT",
        "/api/v1/namespaces/doomed/finalize",
        "application/json",
        json_bytes(cleared),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{finalized}");
    assert_eq!(
        call(&app, "/api/v1/namespaces/doomed", Some(admin()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

fn issuer() -> skiff_apiserver::TokenIssuer {
    skiff_apiserver::TokenIssuer::new(skiff_pki::SigningKey::generate().unwrap())
}

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
    (router(AppState::new(store, tokens)), dir)
}

fn admin() -> Identity {
    Identity {
        user: "system:admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
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
    let app = router(AppState::new(store.clone(), StaticTokens::default()));
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
    assert!(text.contains("skiff_store_revision 0"), "{text}");
    // Metrics are for authenticated callers only.
    assert_eq!(
        call(&app, "/metrics", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

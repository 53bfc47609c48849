//! Lists and watches through the router, served from the watch cache: resourceVersion
//! semantics, synthetic ADDED events, selectors entering and leaving, bookmarks, 410 Expired.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use serde_json::{Value, json};
use skiff_apiserver::{AppState, Identity, StaticTokens, router};
use skiff_store::{Config, Datastore, Store};
use tower::ServiceExt;

const CM: &str = "/api/v1/namespaces/default/configmaps";

async fn app() -> (axum::Router, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        retention: None,
        ..Config::default()
    };
    let store = Store::open(&Datastore::Sqlite(dir.path().join("state.db")), config)
        .await
        .unwrap();
    let state = AppState::start(store.clone(), StaticTokens::default(), issuer())
        .await
        .unwrap();
    skiff_apiserver::bootstrap(&state, 6443).await.unwrap();
    (router(state), store, dir)
}

fn request(method: &str, path: &str, body: Value) -> Request<Body> {
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/json")
        .body(body)
        .unwrap();
    request.extensions_mut().insert(Identity {
        user: "system:admin".into(),
        groups: vec!["system:masters".into()],
        ..Identity::default()
    });
    request
}

async fn send(app: &axum::Router, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(request(method, path, body))
        .await
        .unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 24).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels }, "data": { "k": "v" }
    })
}

/// An open watch: reads newline-delimited events.
struct Events {
    body: axum::body::BodyDataStream,
    buffer: Vec<u8>,
}

impl Events {
    async fn open(app: &axum::Router, path: &str) -> Events {
        let response = app
            .clone()
            .oneshot(request("GET", path, Value::Null))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Events {
            body: response.into_body().into_data_stream(),
            buffer: Vec::new(),
        }
    }

    /// The next event, or `None` if the stream ends or nothing comes within 5 s.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(at) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=at).collect();
                return Some(serde_json::from_slice(&line).expect("each line is JSON"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .ok()??;
            self.buffer.extend_from_slice(&chunk.unwrap());
        }
    }

    /// The next event, as (type, name).
    async fn next_named(&mut self) -> (String, String) {
        let event = self.next().await.expect("an event");
        (
            event["type"].as_str().unwrap().to_owned(),
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

fn named(kind: &str, name: &str) -> (String, String) {
    (kind.to_owned(), name.to_owned())
}

/// Conformance: [sig-api-machinery] Watchers should observe add, update, and delete watch notifications on configmaps.
#[tokio::test]
async fn watch_from_resource_version_zero_starts_with_synthetic_added_events() {
    let (app, _store, _dir) = app().await;
    for name in ["a", "b"] {
        assert_eq!(
            send(&app, "POST", CM, configmap(name, json!({}))).await.0,
            StatusCode::CREATED
        );
    }
    let mut events = Events::open(&app, &format!("{CM}?watch=true&resourceVersion=0")).await;
    assert_eq!(events.next_named().await, named("ADDED", "a"));
    assert_eq!(events.next_named().await, named("ADDED", "b"));

    send(&app, "POST", CM, configmap("c", json!({}))).await;
    assert_eq!(events.next_named().await, named("ADDED", "c"));
    let (_, current) = send(&app, "GET", &format!("{CM}/c"), Value::Null).await;
    let mut changed = current.clone();
    changed["data"]["k"] = json!("changed");
    assert_eq!(
        send(&app, "PUT", &format!("{CM}/c"), changed).await.0,
        StatusCode::OK
    );
    let modified = events.next().await.unwrap();
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["data"]["k"], "changed");
    assert_ne!(
        modified["object"]["metadata"]["resourceVersion"],
        current["metadata"]["resourceVersion"]
    );
    send(&app, "DELETE", &format!("{CM}/c"), Value::Null).await;
    let deleted = events.next().await.unwrap();
    assert_eq!(deleted["type"], "DELETED");
    assert_eq!(deleted["object"]["data"]["k"], "changed");
}

/// Conformance: [sig-api-machinery] Watchers should be able to start watching from a specific resource version.
#[tokio::test]
async fn watch_from_a_list_resource_version_sees_only_later_changes_in_order() {
    let (app, _store, _dir) = app().await;
    send(&app, "POST", CM, configmap("before", json!({}))).await;
    let (code, list) = send(&app, "GET", CM, Value::Null).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Changes made between the list and the watch are not lost.
    send(&app, "POST", CM, configmap("between", json!({}))).await;
    let mut events = Events::open(&app, &format!("{CM}?watch=true&resourceVersion={rv}")).await;
    send(&app, "POST", CM, configmap("after", json!({}))).await;
    assert_eq!(events.next_named().await, named("ADDED", "between"));
    assert_eq!(events.next_named().await, named("ADDED", "after"));

    // Other namespaces are not in a namespaced watch.
    send(
        &app,
        "POST",
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
    )
    .await;
    send(
        &app,
        "POST",
        "/api/v1/namespaces/other/configmaps",
        configmap("elsewhere", json!({})),
    )
    .await;
    send(&app, "POST", CM, configmap("last", json!({}))).await;
    assert_eq!(events.next_named().await, named("ADDED", "last"));
}

/// Conformance: [sig-api-machinery] Watchers should observe an object deletion if it stops meeting the requirements of the selector.
#[tokio::test]
async fn objects_entering_and_leaving_a_label_selection_are_added_and_deleted() {
    let (app, _store, _dir) = app().await;
    let mut events = Events::open(
        &app,
        &format!("{CM}?watch=true&labelSelector=tier%3Dfront&resourceVersion=0"),
    )
    .await;
    let (_, created) = send(&app, "POST", CM, configmap("x", json!({"tier": "back"}))).await;
    let mut front = created.clone();
    front["metadata"]["labels"]["tier"] = json!("front");
    let (_, front) = send(&app, "PUT", &format!("{CM}/x"), front).await;
    assert_eq!(events.next_named().await, named("ADDED", "x"));
    let mut back = front.clone();
    back["metadata"]["labels"]["tier"] = json!("back");
    send(&app, "PUT", &format!("{CM}/x"), back).await;
    assert_eq!(events.next_named().await, named("DELETED", "x"));
}

#[tokio::test]
async fn watch_by_field_selector_name_follows_one_object() {
    let (app, _store, _dir) = app().await;
    send(&app, "POST", CM, configmap("one", json!({}))).await;
    send(&app, "POST", CM, configmap("two", json!({}))).await;
    let mut events = Events::open(
        &app,
        &format!("{CM}?fieldSelector=metadata.name%3Dtwo&resourceVersion=0&watch=true"),
    )
    .await;
    assert_eq!(events.next_named().await, named("ADDED", "two"));
    send(&app, "DELETE", &format!("{CM}/one"), Value::Null).await;
    send(&app, "DELETE", &format!("{CM}/two"), Value::Null).await;
    assert_eq!(events.next_named().await, named("DELETED", "two"));
}

#[tokio::test]
async fn lists_filter_by_field_selectors_and_refuse_unsupported_fields() {
    let (app, _store, _dir) = app().await;
    send(&app, "POST", CM, configmap("one", json!({}))).await;
    send(&app, "POST", CM, configmap("two", json!({}))).await;
    let (code, list) = send(
        &app,
        "GET",
        &format!("{CM}?fieldSelector=metadata.name!%3Done"),
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["two"]);
    let (code, status) = send(
        &app,
        "GET",
        &format!("{CM}?fieldSelector=spec.nodeName%3Dn1"),
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("field label not supported"),
        "{status}"
    );
}

#[tokio::test]
async fn resource_version_semantics_on_lists() {
    let (app, _store, _dir) = app().await;
    let (_, first) = send(&app, "POST", CM, configmap("one", json!({}))).await;
    let rv1 = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, second) = send(&app, "POST", CM, configmap("two", json!({}))).await;
    let rv2 = second["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    let count = |list: &Value| list["items"].as_array().map(Vec::len).unwrap_or(0);
    let (code, exact) = send(
        &app,
        "GET",
        &format!("{CM}?resourceVersion={rv1}&resourceVersionMatch=Exact"),
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{exact}");
    assert_eq!(count(&exact), 1, "the list as it was at {rv1}");
    assert_eq!(exact["metadata"]["resourceVersion"], rv1.as_str());

    // Not older than the second write: waits for the cache to have it.
    let (_, newer) = send(
        &app,
        "GET",
        &format!("{CM}?resourceVersion={rv2}&resourceVersionMatch=NotOlderThan"),
        Value::Null,
    )
    .await;
    assert_eq!(count(&newer), 2);
    // No resourceVersion: consistent with the store, so both writes are in.
    let (_, latest) = send(&app, "GET", CM, Value::Null).await;
    assert_eq!(count(&latest), 2);
    let (code, any) = send(&app, "GET", &format!("{CM}?resourceVersion=0"), Value::Null).await;
    assert_eq!(code, StatusCode::OK);
    assert!(any["items"].is_array(), "whatever the cache holds: {any}");

    for bad in [
        "resourceVersionMatch=Exact",
        "resourceVersion=0&resourceVersionMatch=Exact",
        "resourceVersion=abc",
        "resourceVersion=1&resourceVersionMatch=Sometimes",
    ] {
        let (code, status) = send(&app, "GET", &format!("{CM}?{bad}"), Value::Null).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {status}");
        assert_eq!(status["kind"], "Status");
    }
}

#[tokio::test]
async fn bookmarks_mark_the_end_of_initial_events() {
    let (app, _store, _dir) = app().await;
    let (_, created) = send(&app, "POST", CM, configmap("one", json!({}))).await;
    let rv = created["metadata"]["resourceVersion"].as_str().unwrap();
    let mut events = Events::open(
        &app,
        &format!(
            "{CM}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion={rv}&allowWatchBookmarks=true"
        ),
    )
    .await;
    assert_eq!(events.next_named().await, named("ADDED", "one"));
    let bookmark = events.next().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
}

#[tokio::test]
async fn watches_end_at_their_timeout() {
    let (app, _store, _dir) = app().await;
    let mut events = Events::open(
        &app,
        &format!("{CM}?watch=true&resourceVersion=0&timeoutSeconds=1"),
    )
    .await;
    let started = std::time::Instant::now();
    assert!(events.next().await.is_none());
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// Conformance: [sig-api-machinery] Watchers should be able to restart watching from the last resource version observed by the previous watch.
#[tokio::test]
async fn watches_from_before_the_cache_are_served_by_the_store_until_compacted() {
    let (app, store, _dir) = app().await;
    let (_, first) = send(&app, "POST", CM, configmap("one", json!({}))).await;
    let rv1 = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    send(&app, "POST", CM, configmap("two", json!({}))).await;

    // A second server starting now has none of that history in its cache window.
    let later = router(
        AppState::start(store.clone(), StaticTokens::default(), issuer())
            .await
            .unwrap(),
    );
    let mut events = Events::open(&later, &format!("{CM}?watch=true&resourceVersion={rv1}")).await;
    assert_eq!(events.next_named().await, named("ADDED", "two"));

    store
        .compact(store.revision().await.unwrap())
        .await
        .unwrap();
    let mut events = Events::open(&later, &format!("{CM}?watch=true&resourceVersion={rv1}")).await;
    let error = events.next().await.unwrap();
    assert_eq!(error["type"], "ERROR", "{error}");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(
        events.next().await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn watches_across_all_namespaces_see_every_namespace() {
    let (app, _store, _dir) = app().await;
    let mut events = Events::open(&app, "/api/v1/configmaps?watch=true&resourceVersion=0").await;
    send(
        &app,
        "POST",
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
    )
    .await;
    send(&app, "POST", CM, configmap("here", json!({}))).await;
    send(
        &app,
        "POST",
        "/api/v1/namespaces/other/configmaps",
        configmap("there", json!({})),
    )
    .await;
    assert_eq!(events.next_named().await, named("ADDED", "here"));
    assert_eq!(events.next_named().await, named("ADDED", "there"));
}

fn issuer() -> skiff_apiserver::TokenIssuer {
    skiff_apiserver::TokenIssuer::new(skiff_pki::SigningKey::generate().unwrap())
}

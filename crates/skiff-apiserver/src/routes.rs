//! HTTP routes: health probes, `/version`, and the authentication gate in front of everything
//! else. Unknown paths answer a 404 `Status`, like kube-apiserver.

use axum::extract::{DefaultBodyLimit, Request, State};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use skiff_store::Store;

use crate::authn::StaticTokens;
use crate::cache::WatchCache;
use crate::crds;
use crate::metrics::Metrics;
use crate::openapi::Schemas;
use crate::registry::Registry;
use crate::serviceaccount::{self, TokenIssuer};
use crate::{ApiError, Identity, KUBERNETES_MINOR};
use crate::{discovery, openapi, rest};
use tokio_util::sync::CancellationToken;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Bearer tokens from `--token-auth-file` (empty if none).
    pub tokens: Arc<StaticTokens>,
    /// Issues and verifies service-account tokens.
    token_issuer: Arc<TokenIssuer>,
    pub metrics: Arc<Metrics>,
    /// The kinds served: the built-in ones and those CustomResourceDefinitions add.
    registry: Arc<RwLock<Arc<Registry>>>,
    /// Every object in memory, for lists and watches.
    pub(crate) cache: WatchCache,
    /// Schemas of the served kinds, and the OpenAPI documents.
    schemas: Arc<RwLock<Arc<Schemas>>>,
    /// Stops the CustomResourceDefinition controller.
    shutdown: CancellationToken,
}

impl AppState {
    /// Loads the watch cache from `store`, starts following it, and serves the custom
    /// resources the stored CustomResourceDefinitions define.
    pub async fn start(
        store: Store,
        tokens: StaticTokens,
        token_issuer: TokenIssuer,
    ) -> Result<AppState, skiff_store::Error> {
        let cache = WatchCache::start(store.clone()).await?;
        let registry = Arc::new(Registry::builtin());
        let schemas = Arc::new(Schemas::new(&registry));
        let state = AppState {
            store,
            tokens: Arc::new(tokens),
            token_issuer: Arc::new(token_issuer),
            metrics: Arc::default(),
            registry: Arc::new(RwLock::new(registry)),
            cache,
            schemas: Arc::new(RwLock::new(schemas)),
            shutdown: CancellationToken::new(),
        };
        crds::serve_stored(&state);
        tokio::spawn(crds::run(state.clone(), state.shutdown.clone()));
        Ok(state)
    }

    /// Stops the controllers and the watch cache (before the store is closed).
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.cache.stop().await;
    }

    /// Issues and verifies service-account tokens.
    pub(crate) fn token_issuer(&self) -> &TokenIssuer {
        &self.token_issuer
    }

    /// The kinds served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().expect("not poisoned").clone()
    }

    /// The schemas of the kinds served now.
    pub(crate) fn schemas(&self) -> Arc<Schemas> {
        self.schemas.read().expect("not poisoned").clone()
    }

    /// Starts serving `registry`, described by `schemas`.
    pub(crate) fn serve(&self, registry: Registry, schemas: Schemas) {
        *self.registry.write().expect("not poisoned") = Arc::new(registry);
        *self.schemas.write().expect("not poisoned") = Arc::new(schemas);
    }
}

/// Request bodies above 3 MiB are refused (413), as kube-apiserver does.
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Paths any client may read without credentials: only liveness and readiness, which reveal
/// nothing and are what load balancers and container health checks probe.
const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz"];

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthy))
        .route("/livez", get(healthy))
        .route("/readyz", get(ready))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/api", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resources))
        .route("/apis", get(discovery::groups))
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::group_resources))
        .route("/openapi/v2", get(openapi::v2))
        .route("/openapi/v3", get(openapi::v3_index))
        .route("/openapi/v3/{*key}", get(openapi::v3_group_version))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/openid/v1/jwks", get(jwks))
        // Everything below a group-version is a resource URL; rest.rs parses it.
        .route("/api/v1/{*path}", resource_methods())
        .route("/apis/{group}/{version}/{*path}", resource_methods())
        .fallback(not_found)
        // kube-apiserver's limit for a request body.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

fn resource_methods() -> axum::routing::MethodRouter<AppState> {
    get(rest::get)
        .post(rest::post)
        .put(rest::put)
        .patch(rest::patch)
        .delete(rest::delete)
}

/// Attaches the caller's identity (client certificate, set by the listener, or bearer token)
/// and refuses anonymous callers outside the probes.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.extensions().get::<Identity>().is_none()
        && let Some(authorization) = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
    {
        let identity = match state.tokens.authenticate(authorization) {
            Some(identity) => Some(identity.clone()),
            None => match crate::authn::bearer_token(authorization) {
                Some(token) => serviceaccount::authenticate(&state, token).await,
                None => None,
            },
        };
        if let Some(identity) = identity {
            request.extensions_mut().insert(identity);
        }
    }
    let public = PUBLIC_PATHS.contains(&request.uri().path());
    if public || request.extensions().get::<Identity>().is_some() {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

async fn openid_configuration(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.token_issuer().openid_configuration())
}

async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/jwk-set+json")],
        state.token_issuer().jwks().to_string(),
    )
}

/// Counts every request, including refused ones, by method and response code.
async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state
        .metrics
        .record(&method, response.status().as_u16(), started.elapsed());
    response
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&state.store),
    )
}

async fn healthy() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "ok")
}

/// Ready when the store answers.
async fn ready(State(state): State<AppState>) -> Response {
    if let Some(why) = state.cache.broken() {
        return ApiError::unavailable(format!("[-]watch-cache failed: {why}")).into_response();
    }
    match state.store.revision().await {
        Ok(_) => healthy().await.into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readyz: store unavailable");
            ApiError::unavailable(format!("[-]etcd failed: {err}")).into_response()
        }
    }
}

async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "major": "1",
        "minor": KUBERNETES_MINOR.to_string(),
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0+skiff.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    }))
}

/// Kubernetes names architectures the Go way.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found_path()
}

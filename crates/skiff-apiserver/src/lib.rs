//! skiff's Kubernetes API server: HTTPS with client-certificate authentication, errors as
//! `metav1.Status`, health, version and Prometheus metrics endpoints, over a
//! `skiff_store::Store`.
//!
//! Start at [`Server::bind`] and [`Server::run`]; [`router`] builds the HTTP routes and can be
//! driven without sockets in tests. The REST API for Kubernetes kinds (discovery, OpenAPI,
//! verbs, watch) is being built on top of this; see ARCHITECTURE.md.

mod allocator;
mod authn;
mod cache;
mod crds;
mod discovery;
mod eviction;
mod fieldmanager;
mod fields;
mod metrics;
mod objects;
mod openapi;
mod output;
mod quota;
mod registry;
mod rest;
mod reviews;
mod routes;
mod selector;
mod server;
mod serviceaccount;
mod status;
mod subresource;
mod tls;
mod validation;
mod watch;

pub use authn::{Identity, StaticTokens, TokenFileError};
pub use metrics::Metrics;
pub use objects::{KUBERNETES_SERVICE_IP, SYSTEM_NAMESPACES};
pub use registry::{Custom, Registry, Resource, ScalePaths, Subresource};
pub use rest::decode_body;
pub use routes::{AppState, router};
pub use selector::LabelSelector;
pub use server::{Server, ServerError};
pub use serviceaccount::{DEFAULT_ISSUER, TokenIssuer};
pub use status::{ApiError, Cause, Details};

// The Kubernetes minor version served follows the k8s-openapi feature this crate is built with.
k8s_openapi::k8s_if_1_33! { pub const KUBERNETES_MINOR: u32 = 33; }
k8s_openapi::k8s_if_1_34! { pub const KUBERNETES_MINOR: u32 = 34; }
k8s_openapi::k8s_if_1_35! { pub const KUBERNETES_MINOR: u32 = 35; }
k8s_openapi::k8s_if_1_36! { pub const KUBERNETES_MINOR: u32 = 36; }
k8s_openapi::k8s_if_1_37! { pub const KUBERNETES_MINOR: u32 = 37; }

/// Creates what every cluster starts with (the system namespaces and the `kubernetes`
/// Service, whose target port is `api_port`); idempotent.
pub async fn bootstrap(state: &AppState, api_port: u16) -> Result<(), skiff_store::Error> {
    let registry = state.registry();
    let core = |plural: &str| {
        registry
            .find("", "v1", plural)
            .expect("the registry serves the core kinds")
    };
    objects::bootstrap(&state.store, core("namespaces"), core("services"), api_port).await
}

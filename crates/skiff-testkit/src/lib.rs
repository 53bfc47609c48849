//! A real skiff API server for tests: the store on a temporary SQLite file, generated
//! certificates, HTTPS on a loopback port, and a kube-rs [`kube::Client`] authenticated as the
//! cluster admin. Tests of API clients (controllers, scheduler, simulated nodes) run against
//! it instead of a mock, so they exercise the same wire protocol as in production.
//!
//! Start at [`TestServer::start`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig as KubeKubeconfig};
use skiff_apiserver::{AppState, Server, StaticTokens, TokenIssuer};
use skiff_pki::{ClusterPki, Kubeconfig};
use skiff_store::{Config, Datastore, Store};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An API server running in this process until [`TestServer::stop`] (or drop).
pub struct TestServer {
    client: kube::Client,
    kubeconfig: PathBuf,
    store: Store,
    state: AppState,
    shutdown: CancellationToken,
    serving: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a fresh store and connects a client to it.
    pub async fn start() -> Result<TestServer> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().context("creating a temporary data dir")?;
        let config = Config {
            retention: None,
            ..Config::default()
        };
        let store = Store::open(&Datastore::Sqlite(dir.path().join("state.db")), config).await?;
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let pki = ClusterPki::load_or_create(
            &dir.path().join("tls"),
            &["localhost".to_owned()],
            &[loopback],
        )?;
        let state = AppState::start(
            store.clone(),
            StaticTokens::default(),
            TokenIssuer::new(pki.service_account_key),
        )
        .await?;
        let server = Server::bind(
            SocketAddr::new(loopback, 0),
            pki.ca.cert_pem(),
            &pki.serving,
        )
        .await?;
        let address = server.local_addr()?;
        skiff_apiserver::bootstrap(&state, address.port()).await?;
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        Kubeconfig {
            name: "test".to_owned(),
            server: format!("https://{address}"),
            ca_pem: pki.ca.cert_pem().to_owned(),
            client: pki.admin.clone(),
        }
        .write(&kubeconfig)?;
        let shutdown = CancellationToken::new();
        let serving =
            tokio::spawn(server.run(skiff_apiserver::router(state.clone()), shutdown.clone()));
        let client = client_from(&kubeconfig).await?;
        Ok(TestServer {
            client,
            kubeconfig,
            store,
            state,
            shutdown,
            serving: Some(serving),
            _dir: dir,
        })
    }

    /// A client authenticated as the cluster admin.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The admin kubeconfig (for kubectl, or another client).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Stops serving and closes the store.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(serving) = self.serving.take() {
            let _ = serving.await;
        }
        self.state.stop().await;
        self.store.close().await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A kube-rs client for the cluster a kubeconfig file describes.
pub async fn client_from(kubeconfig: &Path) -> Result<kube::Client> {
    let config = KubeKubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .context("building a client configuration")?;
    kube::Client::try_from(config).context("creating a client")
}

/// How long [`eventually`] waits: generous, since tests share two cores with other tests.
pub const EVENTUALLY: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `check` every 100 ms until it returns `Some`, panicking with `what` after
/// [`EVENTUALLY`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(EVENTUALLY, what, check).await
}

/// [`eventually`] with a limit of the caller's.
pub async fn eventually_within<T, F, Fut>(limit: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Namespace;
    use kube::Api;

    #[tokio::test]
    async fn a_client_reaches_the_in_process_server() {
        let server = TestServer::start().await.unwrap();
        let namespaces: Api<Namespace> = Api::all(server.client());
        let default = namespaces.get("default").await.unwrap();
        assert_eq!(default.metadata.name.as_deref(), Some("default"));
        server.stop().await;
    }
}

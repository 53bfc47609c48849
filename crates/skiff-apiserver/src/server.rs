//! The HTTPS listener: accepts TCP connections, completes TLS in a task per connection,
//! attaches the client-certificate identity to every request on it, and serves HTTP/1.1 and
//! HTTP/2 through hyper.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use skiff_pki::CertifiedKey;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::Identity;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TLS material: {0}")]
    Tls(String),
}

/// A bound HTTPS listener, ready to serve a router.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl Server {
    pub async fn bind(
        address: SocketAddr,
        ca_pem: &str,
        serving: &CertifiedKey,
    ) -> Result<Server, ServerError> {
        let config = crate::tls::server_config(ca_pem, serving)?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ServerError::Bind { address, source })?;
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(config),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router` until `shutdown` is cancelled, then stops accepting and closes the
    /// open connections.
    pub async fn run(self, router: axum::Router, shutdown: CancellationToken) {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = shutdown.cancelled() => break,
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let router = router.clone();
            connections.spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(err) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                };
                let identity: Option<Arc<Identity>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(Identity::from_verified_certificate)
                    .map(Arc::new);
                let service = router.map_request(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        if let Some(identity) = &identity {
                            request.extensions_mut().insert(Identity::clone(identity));
                        }
                        request
                    },
                );
                let served = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(
                        TokioIo::new(tls),
                        TowerToHyperService::new(service),
                    )
                    .await;
                if let Err(err) = served {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
        }
        connections.shutdown().await;
    }
}

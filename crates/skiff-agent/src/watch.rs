//! The stream of bound pods the simulation acts on: one watch of all namespaces'
//! pods with `fieldSelector=spec.nodeName!=`, forwarded into a channel. Each event carries its
//! scope (the namespace its watch covers, `None` for all), so that a re-list (`Init` …
//! `InitDone`) only forgets pods of the scope it listed.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Pods bound to some node.
const BOUND: &str = "spec.nodeName!=";

/// A pod event and the namespace its watch covers (`None`: all).
pub(crate) type ScopedEvent = (Option<String>, watcher::Event<Pod>);

/// Starts forwarding bound pods' events into the returned channel until `shutdown`.
pub(crate) fn bound_pods(
    client: kube::Client,
    shutdown: CancellationToken,
) -> mpsc::Receiver<ScopedEvent> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = run(client, sender) => {}
        }
    });
    receiver
}

async fn run(client: kube::Client, sender: mpsc::Sender<ScopedEvent>) {
    forward(Api::all(client), None, sender).await;
}

/// Forwards one watch's events until the receiver is gone.
async fn forward(api: Api<Pod>, scope: Option<String>, sender: mpsc::Sender<ScopedEvent>) {
    let events = watcher(api, watcher::Config::default().fields(BOUND)).default_backoff();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                if sender.send((scope.clone(), event)).await.is_err() {
                    return;
                }
            }
            Err(error) => tracing::warn!(namespace = ?scope, %error, "watching pods"),
        }
    }
}

//! The shared informer factory against a real in-process API server: one watch per kind
//! whoever asks, late handlers told to resync, and objects held without managed fields.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use skiff_testkit::{TestServer, eventually};
use skiff_workloads::Informers;
use skiff_workloads::informer::Change;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn every_controller_shares_one_informer_per_kind() {
    let server = TestServer::start().await.unwrap();
    let client = server.client();
    let shutdown = CancellationToken::new();
    let informers = Informers::new(client.clone(), shutdown.clone());

    let first = informers.all::<ConfigMap>();
    let seen_by_first = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen_by_first);
    first.on_change(move |change| {
        if let Change::Applied(cm) = change
            && cm.metadata.name.as_deref() == Some("shared")
        {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shared"}, "data": {"a": "1"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    eventually("the first handler sees the ConfigMap", || {
        let n = seen_by_first.load(Ordering::SeqCst);
        async move { (n > 0).then_some(()) }
    })
    .await;

    // A second request for the kind gets the same informer: its store already holds the
    // object, and a handler added now is told to look at everything at once.
    let second = informers.all::<ConfigMap>();
    let cached = second
        .store()
        .state()
        .into_iter()
        .find(|cm| cm.metadata.name.as_deref() == Some("shared"))
        .expect("the shared store already holds the object");
    assert!(
        cached.metadata.managed_fields.is_none(),
        "managed fields are not kept"
    );
    let resynced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&resynced);
    second.on_change(move |change| {
        if matches!(change, Change::Resynced) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(
        resynced.load(Ordering::SeqCst),
        1,
        "a late handler resyncs at once"
    );

    // Stored objects do carry managed fields: the informer drops them, the server keeps them.
    let live = config_maps.get("shared").await.unwrap();
    assert!(live.metadata.managed_fields.is_some());
    shutdown.cancel();
}

/// Several controllers wait for the same shared store's first list; every one of them must
/// go on (kube-runtime's readiness signal alone wakes only the last waiter).
#[tokio::test]
async fn every_controller_waiting_on_a_shared_store_starts() {
    let server = TestServer::start().await.unwrap();
    let shutdown = CancellationToken::new();
    let informers = Informers::new(server.client(), shutdown.clone());
    let store = informers.all::<ConfigMap>().store();
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (store, shutdown) = (store.clone(), shutdown.clone());
            tokio::spawn(async move { skiff_workloads::wait_ready(&store, &shutdown).await })
        })
        .collect();
    for waiter in waiters {
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("every waiter sees the first list")
            .unwrap();
    }
    shutdown.cancel();
}

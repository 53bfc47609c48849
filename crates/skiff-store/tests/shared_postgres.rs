//! Several servers on one Postgres: writes through one store instance reach the watchers of
//! another in revision order, without gaps, pushed by LISTEN/NOTIFY rather than a poll.

mod common;

use std::time::{Duration, Instant};

use common::Fixture;
use futures::StreamExt;
use skiff_store::{Config, KeyRange, Store};

fn config() -> Config {
    Config {
        // A poll this slow cannot deliver within the bound below: only the push can.
        poll_interval: Duration::from_secs(30),
        ..common::quiet_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_one_server_reach_watchers_of_another_in_order() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let a = Store::open(&fx.datastore, config()).await.unwrap();
    let b = Store::open(&fx.datastore, config()).await.unwrap();
    let mut watch_on_b = b.watch(KeyRange::prefix("/shared/").unwrap(), None);
    let mut watch_on_a = a.watch(KeyRange::prefix("/shared/").unwrap(), None);

    let mut latencies = Vec::new();
    let mut expected = Vec::new();
    for i in 0..200 {
        // Alternate the writing server; both share one revision sequence.
        let writer = if i % 2 == 0 { &a } else { &b };
        let started = Instant::now();
        let rev = writer.create(&format!("/shared/{i}"), "v").await.unwrap();
        expected.push(rev);
        let event = tokio::time::timeout(Duration::from_secs(5), watch_on_b.next())
            .await
            .expect("event reached the other server")
            .unwrap()
            .unwrap();
        assert_eq!(event.revision, rev, "in order, without gaps");
        latencies.push(started.elapsed());
    }
    assert_eq!(expected, (1..=200).collect::<Vec<i64>>());
    for &rev in &expected {
        let event = tokio::time::timeout(Duration::from_secs(5), watch_on_a.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.revision, rev);
    }

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let worst = *latencies.last().unwrap();
    eprintln!("write-to-remote-watch latency: median {median:?}, worst {worst:?}");
    assert!(
        worst < Duration::from_millis(100) || median < Duration::from_millis(20),
        "cross-server delivery is push-driven (median {median:?}, worst {worst:?})"
    );
    assert!(worst < Duration::from_secs(1), "worst {worst:?}");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_servers_share_one_gap_free_sequence() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let a = Store::open(&fx.datastore, config()).await.unwrap();
    let b = Store::open(&fx.datastore, config()).await.unwrap();
    let mut watch = b.watch(KeyRange::prefix("/").unwrap(), Some(1));
    let mut tasks = Vec::new();
    for w in 0..32 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                store.create(&format!("/c/{w}/{i}"), "v").await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for rev in 1..=640 {
        let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.revision, rev);
    }
    assert_eq!(a.revision().await.unwrap(), 640);
    a.close().await;
    b.close().await;
}

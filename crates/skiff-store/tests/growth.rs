//! Bounded growth: automatic compaction keeps the log (and on SQLite the file) from growing
//! with the number of writes.

mod common;

use std::time::Duration;

use common::Fixture;
use skiff_store::{Config, Datastore, Retention, Store};

on_both_backends!(hundred_thousand_updates_to_a_hundred_keys_stay_bounded);

const KEYS: usize = 100;
const UPDATES: usize = 100_000;
const KEEP: i64 = 2_000;
const STEP: i64 = 500;

fn disk_bytes(datastore: &Datastore) -> Option<u64> {
    let Datastore::Sqlite(path) = datastore else {
        return None;
    };
    let size = |suffix: &str| {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        std::fs::metadata(p).map_or(0, |m| m.len())
    };
    Some(size("") + size("-wal"))
}

/// Updates every key round-robin from one task per key until `UPDATES` writes are done.
async fn update_all(store: &Store, rounds: usize, revisions: &mut [i64]) {
    let tasks: Vec<_> = revisions
        .iter()
        .enumerate()
        .map(|(k, &rev)| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("/registry/configmaps/default/cm-{k}");
                let mut rev = rev;
                for round in 0..rounds {
                    let value = format!("{round:0>300}");
                    rev = store.update(&key, value, rev).await.unwrap();
                }
                rev
            })
        })
        .collect();
    for (slot, task) in revisions.iter_mut().zip(tasks) {
        *slot = task.await.unwrap();
    }
}

async fn hundred_thousand_updates_to_a_hundred_keys_stay_bounded(fx: Fixture) {
    let config = Config {
        retention: Some(Retention {
            min_age: Duration::ZERO,
            max_revisions: KEEP,
            interval: Duration::from_millis(50),
            step: STEP,
        }),
        ..common::quiet_config()
    };
    let store = Store::open(&fx.datastore, config).await.unwrap();
    let mut revisions = Vec::with_capacity(KEYS);
    for k in 0..KEYS {
        revisions.push(
            store
                .create(&format!("/registry/configmaps/default/cm-{k}"), "0")
                .await
                .unwrap(),
        );
    }
    let rounds = UPDATES / KEYS;
    update_all(&store, rounds / 5, &mut revisions).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early_size = disk_bytes(&fx.datastore);

    update_all(&store, rounds - rounds / 5, &mut revisions).await;
    // Give the compactor a few ticks to catch up with the last writes.
    let bound = KEYS as i64 + KEEP + STEP;
    let mut stats = store.stats().await.unwrap();
    for _ in 0..100 {
        if stats.log_rows <= bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = store.stats().await.unwrap();
    }
    assert_eq!(stats.revision, (KEYS + UPDATES) as i64);
    assert!(
        stats.log_rows <= bound,
        "{} log rows after {UPDATES} updates; bound {bound}",
        stats.log_rows
    );
    assert!(stats.compacted >= stats.revision - KEEP - STEP);

    if let (Some(early), Some(late)) = (early_size, disk_bytes(&fx.datastore)) {
        // The file may settle a little higher than after the first fifth, but must not keep
        // growing with the writes (unbounded, it would be about five times larger).
        assert!(
            late <= early * 2 + (4 << 20),
            "database grew from {early} to {late} bytes"
        );
    }
    store.close().await;
}

//! etcd semantics, run identically against SQLite and Postgres.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Fixture;
use futures::StreamExt;
use skiff_store::{Error, EventKind, KeyRange, ReadAt, Watch};

on_both_backends!(
    create_update_delete_follow_compare_and_swap,
    revisions_are_global_and_gap_free_under_concurrency,
    reads_at_past_revisions_see_history,
    paged_range_stays_consistent_at_one_revision,
    count_and_range_respect_prefixes,
    watch_replays_history_then_follows_live_writes,
    watch_filters_by_prefix_and_carries_previous_values,
    compaction_refuses_older_reads_and_watches,
    concurrent_increments_lose_no_update,
    many_watchers_each_see_every_event_in_order,
    reopen_keeps_data_and_revision,
    bad_keys_and_closed_store_are_errors,
);

async fn create_update_delete_follow_compare_and_swap(fx: Fixture) {
    let store = fx.open().await;
    let r1 = store
        .create("/registry/pods/default/a", "v1")
        .await
        .unwrap();
    assert_eq!(r1, 1);
    assert!(matches!(
        store.create("/registry/pods/default/a", "again").await,
        Err(Error::AlreadyExists { .. })
    ));

    let (rev, kv) = store
        .get("/registry/pods/default/a", ReadAt::Latest)
        .await
        .unwrap();
    let kv = kv.unwrap();
    assert_eq!((rev, kv.create_revision, kv.mod_revision), (1, 1, 1));
    assert_eq!(&kv.value[..], b"v1");

    match store.update("/registry/pods/default/a", "v2", 99).await {
        Err(Error::Conflict {
            expected: 99,
            current: Some(current),
            ..
        }) => assert_eq!((current.mod_revision, &current.value[..]), (1, &b"v1"[..])),
        other => panic!("stale update answered {other:?}"),
    }
    let r2 = store
        .update("/registry/pods/default/a", "v2", 1)
        .await
        .unwrap();
    assert_eq!(r2, 2);

    assert!(matches!(
        store.delete("/registry/pods/default/a", Some(1)).await,
        Err(Error::Conflict { .. })
    ));
    let (r3, prev) = store
        .delete("/registry/pods/default/a", Some(2))
        .await
        .unwrap();
    assert_eq!(r3, 3);
    assert_eq!(
        (prev.create_revision, prev.mod_revision, &prev.value[..]),
        (1, 2, &b"v2"[..])
    );
    assert_eq!(
        store
            .get("/registry/pods/default/a", ReadAt::Latest)
            .await
            .unwrap(),
        (3, None)
    );
    assert!(matches!(
        store.update("/registry/pods/default/a", "x", 2).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete("/registry/pods/default/a", None).await,
        Err(Error::NotFound { .. })
    ));

    // A new incarnation gets a new create_revision.
    let r4 = store
        .create("/registry/pods/default/a", "v3")
        .await
        .unwrap();
    let (_, kv) = store
        .get("/registry/pods/default/a", ReadAt::Latest)
        .await
        .unwrap();
    assert_eq!(kv.unwrap().create_revision, r4);
    // An unconditional delete works too.
    store
        .delete("/registry/pods/default/a", None)
        .await
        .unwrap();
    store.close().await;
}

async fn revisions_are_global_and_gap_free_under_concurrency(fx: Fixture) {
    let store = fx.open().await;
    let mut tasks = Vec::new();
    for writer in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..25 {
                let key = format!("/k/{writer}/{i}");
                let rev = store.create(&key, vec![7u8; 1024]).await.unwrap();
                revisions.push(rev);
                revisions.push(store.update(&key, "second", rev).await.unwrap());
            }
            revisions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let expected: Vec<i64> = (1..=64 * 50).collect();
    assert_eq!(
        all, expected,
        "every write took the next revision exactly once"
    );
    assert_eq!(store.revision().await.unwrap(), 64 * 50);
    store.close().await;
}

async fn reads_at_past_revisions_see_history(fx: Fixture) {
    let store = fx.open().await;
    let a1 = store.create("/r/a", "a1").await.unwrap();
    let b1 = store.create("/r/b", "b1").await.unwrap();
    let a2 = store.update("/r/a", "a2", a1).await.unwrap();
    let (bdel, _) = store.delete("/r/b", Some(b1)).await.unwrap();
    let c1 = store.create("/r/c", "c1").await.unwrap();

    let values_at = |rev| {
        let store = store.clone();
        async move {
            let page = store
                .range(&KeyRange::prefix("/r/").unwrap(), ReadAt::Revision(rev), 0)
                .await
                .unwrap();
            assert_eq!(page.revision, rev);
            page.kvs
                .into_iter()
                .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(values_at(b1).await, ["/r/a=a1", "/r/b=b1"]);
    assert_eq!(values_at(a2).await, ["/r/a=a2", "/r/b=b1"]);
    assert_eq!(values_at(bdel).await, ["/r/a=a2"]);
    assert_eq!(values_at(c1).await, ["/r/a=a2", "/r/c=c1"]);

    let (_, old) = store.get("/r/a", ReadAt::Revision(a1)).await.unwrap();
    assert_eq!(old.unwrap().mod_revision, a1);
    let (_, gone) = store.get("/r/b", ReadAt::Revision(bdel)).await.unwrap();
    assert_eq!(gone, None);
    assert!(matches!(
        store.get("/r/a", ReadAt::Revision(c1 + 1)).await,
        Err(Error::FutureRevision { .. })
    ));
    store.close().await;
}

async fn paged_range_stays_consistent_at_one_revision(fx: Fixture) {
    let store = fx.open().await;
    for i in 0..25 {
        store
            .create(&format!("/p/{i:02}"), format!("old{i}"))
            .await
            .unwrap();
    }
    let range = KeyRange::prefix("/p/").unwrap();
    let first = store.range(&range, ReadAt::Latest, 10).await.unwrap();
    assert_eq!(first.kvs.len(), 10);
    assert!(first.more);

    // Writes between pages must not show up in later pages read at the first page's revision.
    for i in 0..25 {
        let key = format!("/p/{i:02}");
        let (_, kv) = store.get(&key, ReadAt::Latest).await.unwrap();
        store
            .update(&key, "new", kv.unwrap().mod_revision)
            .await
            .unwrap();
    }
    store.create("/p/99", "late").await.unwrap();

    let mut seen: Vec<String> = first.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut page = first.clone();
    while page.more {
        let rest = range.after(&page.kvs.last().unwrap().key);
        page = store
            .range(&rest, ReadAt::Revision(first.revision), 10)
            .await
            .unwrap();
        assert_eq!(page.revision, first.revision);
        assert!(page.kvs.iter().all(|kv| kv.value.starts_with(b"old")));
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
    }
    let expected: Vec<String> = (0..25).map(|i| format!("/p/{i:02}")).collect();
    assert_eq!(seen, expected);
    store.close().await;
}

async fn count_and_range_respect_prefixes(fx: Fixture) {
    let store = fx.open().await;
    for key in [
        "/registry/pods/a/x",
        "/registry/pods/b/y",
        "/registry/podsx/z",
        "/registry/services/a/s",
    ] {
        store.create(key, "v").await.unwrap();
    }
    let (rev, n) = store
        .count(&KeyRange::prefix("/registry/pods/").unwrap())
        .await
        .unwrap();
    assert_eq!((rev, n), (4, 2));
    let (_, all) = store.count(&KeyRange::prefix("").unwrap()).await.unwrap();
    assert_eq!(all, 4);
    let page = store
        .range(
            &KeyRange::prefix("/registry/pods/a/").unwrap(),
            ReadAt::Latest,
            0,
        )
        .await
        .unwrap();
    assert_eq!(page.kvs.len(), 1);
    assert!(!page.more);
    store.close().await;
}

async fn next_events(watch: &mut Watch, n: usize) -> Vec<skiff_store::Event> {
    let mut events = Vec::new();
    while events.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("event within 10 s")
            .expect("watch still open")
            .expect("no watch error");
        events.push(event);
    }
    events
}

async fn watch_replays_history_then_follows_live_writes(fx: Fixture) {
    let store = fx.open().await;
    let r1 = store.create("/w/a", "1").await.unwrap();
    let r2 = store.update("/w/a", "2", r1).await.unwrap();
    let mut from_start = store.watch(KeyRange::prefix("/w/").unwrap(), Some(1));
    let mut from_now = store.watch(KeyRange::prefix("/w/").unwrap(), None);
    let r3 = store.create("/w/b", "3").await.unwrap();
    let (r4, _) = store.delete("/w/a", Some(r2)).await.unwrap();

    let events = next_events(&mut from_start, 4).await;
    let revisions: Vec<i64> = events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [r1, r2, r3, r4]);
    assert_eq!(events[3].kind, EventKind::Delete);
    assert_eq!(events[3].kv.mod_revision, r4);
    assert_eq!(&events[3].prev.as_ref().unwrap().value[..], b"2");

    let live = next_events(&mut from_now, 2).await;
    let revisions: Vec<i64> = live.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [r3, r4]);
    store.close().await;
}

async fn watch_filters_by_prefix_and_carries_previous_values(fx: Fixture) {
    let store = fx.open().await;
    let mut pods = store.watch(KeyRange::prefix("/registry/pods/").unwrap(), None);
    let p = store.create("/registry/pods/ns/p", "p1").await.unwrap();
    store.create("/registry/services/ns/s", "s1").await.unwrap();
    store.update("/registry/pods/ns/p", "p2", p).await.unwrap();
    let events = next_events(&mut pods, 2).await;
    assert!(events.iter().all(|e| e.key() == "/registry/pods/ns/p"));
    assert_eq!(events[0].prev, None);
    assert_eq!(events[0].kv.create_revision, p);
    let prev = events[1].prev.as_ref().unwrap();
    assert_eq!((prev.mod_revision, &prev.value[..]), (p, &b"p1"[..]));
    assert_eq!(&events[1].kv.value[..], b"p2");
    store.close().await;
}

async fn compaction_refuses_older_reads_and_watches(fx: Fixture) {
    let store = fx.open().await;
    let mut rev = store.create("/c/a", "0").await.unwrap();
    store.create("/c/gone", "x").await.unwrap();
    let (deleted_at, _) = store.delete("/c/gone", None).await.unwrap();
    for i in 1..10 {
        rev = store.update("/c/a", format!("{i}"), rev).await.unwrap();
    }
    let compact_at = rev;
    let after = store.update("/c/a", "after", rev).await.unwrap();
    let rows_before = store.stats().await.unwrap().log_rows;
    store.compact(compact_at).await.unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.compacted, compact_at);
    assert!(
        stats.log_rows < rows_before,
        "compaction removed rows ({rows_before} -> {})",
        stats.log_rows
    );

    assert!(matches!(
        store.get("/c/a", ReadAt::Revision(compact_at - 1)).await,
        Err(Error::Compacted { .. })
    ));
    // The state at the compaction revision itself is still readable.
    let (_, at_compact) = store
        .get("/c/a", ReadAt::Revision(compact_at))
        .await
        .unwrap();
    assert_eq!(&at_compact.unwrap().value[..], b"9");
    let (_, gone) = store
        .get("/c/gone", ReadAt::Revision(compact_at))
        .await
        .unwrap();
    assert!(gone.is_none() && deleted_at < compact_at);

    let mut old_watch = store.watch(KeyRange::prefix("/c/").unwrap(), Some(compact_at));
    let first = tokio::time::timeout(Duration::from_secs(10), old_watch.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(Err(Error::Compacted { .. }))));
    assert!(old_watch.next().await.is_none(), "a compacted watch ends");

    // Watching from just after the compaction still works, with the previous value intact.
    let mut watch = store.watch(KeyRange::prefix("/c/").unwrap(), Some(compact_at + 1));
    let events = next_events(&mut watch, 1).await;
    assert_eq!(events[0].revision, after);
    assert_eq!(&events[0].prev.as_ref().unwrap().value[..], b"9");
    assert!(matches!(
        store.compact(compact_at).await,
        Err(Error::Compacted { .. })
    ));
    store.close().await;
}

async fn concurrent_increments_lose_no_update(fx: Fixture) {
    let store = fx.open().await;
    store.create("/counter", "0").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let (_, kv) = store.get("/counter", ReadAt::Latest).await.unwrap();
                let mut current = kv.unwrap();
                loop {
                    let n: u64 = std::str::from_utf8(&current.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    match store
                        .update("/counter", (n + 1).to_string(), current.mod_revision)
                        .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict {
                            current: Some(winner),
                            ..
                        }) => current = *winner,
                        Err(other) => panic!("{other}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (_, kv) = store.get("/counter", ReadAt::Latest).await.unwrap();
    assert_eq!(&kv.unwrap().value[..], b"320");
    store.close().await;
}

async fn many_watchers_each_see_every_event_in_order(fx: Fixture) {
    let store = fx.open().await;
    let watchers: Vec<Watch> = (0..300)
        .map(|_| store.watch(KeyRange::prefix("/m/").unwrap(), None))
        .collect();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    store.create(&format!("/m/{w}/{i}"), "v").await.unwrap();
                    store.create(&format!("/other/{w}/{i}"), "v").await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    for mut watch in watchers {
        let events = next_events(&mut watch, 400).await;
        assert!(events.windows(2).all(|w| w[0].revision < w[1].revision));
        let keys: BTreeSet<&str> = events.iter().map(|e| e.key()).collect();
        assert_eq!(keys.len(), 400);
        assert!(keys.iter().all(|k| k.starts_with("/m/")));
    }
    store.close().await;
}

async fn reopen_keeps_data_and_revision(fx: Fixture) {
    let store = fx.open().await;
    let rev = store.create("/keep", "me").await.unwrap();
    store.close().await;
    let store = fx.open().await;
    assert_eq!(store.revision().await.unwrap(), rev);
    let (_, kv) = store.get("/keep", ReadAt::Latest).await.unwrap();
    assert_eq!(&kv.unwrap().value[..], b"me");
    assert_eq!(store.create("/next", "x").await.unwrap(), rev + 1);
    store.close().await;
}

async fn bad_keys_and_closed_store_are_errors(fx: Fixture) {
    let store = fx.open().await;
    assert!(matches!(
        store.create("", "x").await,
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        store.create("a\0b", "x").await,
        Err(Error::InvalidKey { .. })
    ));
    let clone = store.clone();
    store.close().await;
    assert!(matches!(
        clone.create("/late", "x").await,
        Err(Error::Closed)
    ));
}

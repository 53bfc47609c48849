//! Model check: random concurrent writes (so batches mix creates, compare-and-swaps and
//! deletes on the same keys), then the store's history and final state must equal a plain
//! map replaying the acknowledged writes in revision order.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Fixture;
use futures::StreamExt;
use skiff_store::{Error, EventKind, KeyRange, ReadAt, Store};

on_both_backends!(random_concurrent_writes_match_a_sequential_model);

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// What an acknowledged write asked for, so the replay can check the store was right to
/// accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precondition {
    Absent,
    ModRevision(i64),
    Present,
}

/// An acknowledged write: (revision, key, Some(value) for a put / None for a delete, what it
/// required).
type Applied = (i64, String, Option<String>, Precondition);

async fn writer(store: Store, seed: u64) -> Vec<Applied> {
    let mut rng = Lcg(seed);
    let mut applied = Vec::new();
    // The writer's belief about each key's mod_revision (often stale on purpose).
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..150 {
        let key = format!("/model/{}", rng.below(12));
        let value = format!("w{seed}-{i}");
        let expected = match rng.below(4) {
            0 => rng.below(40) as i64,
            _ => seen.get(&key).copied().unwrap_or(0),
        };
        match rng.below(3) {
            0 => match store.create(&key, value.clone()).await {
                Ok(rev) => {
                    seen.insert(key.clone(), rev);
                    applied.push((rev, key, Some(value), Precondition::Absent));
                }
                Err(Error::AlreadyExists { .. }) => {}
                Err(other) => panic!("create: {other}"),
            },
            1 => match store.update(&key, value.clone(), expected).await {
                Ok(rev) => {
                    seen.insert(key.clone(), rev);
                    applied.push((rev, key, Some(value), Precondition::ModRevision(expected)));
                }
                Err(Error::Conflict {
                    current: Some(current),
                    ..
                }) => {
                    assert_ne!(current.mod_revision, expected);
                    seen.insert(key, current.mod_revision);
                }
                Err(Error::NotFound { .. }) => {
                    seen.remove(&key);
                }
                Err(other) => panic!("update: {other}"),
            },
            _ => {
                let expected = (rng.below(2) == 0).then_some(expected);
                match store.delete(&key, expected).await {
                    Ok((rev, prev)) => {
                        if let Some(expected) = expected {
                            assert_eq!(prev.mod_revision, expected);
                        }
                        seen.remove(&key);
                        let required =
                            expected.map_or(Precondition::Present, Precondition::ModRevision);
                        applied.push((rev, key, None, required));
                    }
                    Err(Error::Conflict {
                        current: Some(current),
                        ..
                    }) => {
                        seen.insert(key, current.mod_revision);
                    }
                    Err(Error::NotFound { .. }) => {
                        seen.remove(&key);
                    }
                    Err(other) => panic!("delete: {other}"),
                }
            }
        }
    }
    applied
}

async fn random_concurrent_writes_match_a_sequential_model(fx: Fixture) {
    let store = fx.open().await;
    let mut history = store.watch(KeyRange::prefix("/model/").unwrap(), Some(1));
    let tasks: Vec<_> = (1..=8)
        .map(|seed| tokio::spawn(writer(store.clone(), seed)))
        .collect();
    let mut applied: Vec<Applied> = Vec::new();
    for task in tasks {
        applied.extend(task.await.unwrap());
    }
    applied.sort();
    let head = store.revision().await.unwrap();
    assert_eq!(
        applied.iter().map(|a| a.0).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "acknowledged writes are exactly the revisions 1..=head"
    );

    // Replay into the model, checking each watch event against the write that made it.
    let mut model: BTreeMap<String, (String, i64)> = BTreeMap::new();
    for (rev, key, value, required) in &applied {
        let event = tokio::time::timeout(Duration::from_secs(10), history.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((event.revision, event.key()), (*rev, key.as_str()));
        let prev = model.get(key).cloned();
        let allowed = match (required, &prev) {
            (Precondition::Absent, None) | (Precondition::Present, Some(_)) => true,
            (Precondition::ModRevision(e), Some((_, m))) => e == m,
            _ => false,
        };
        assert!(
            allowed,
            "write at {rev} to {key} required {required:?} but the key held {prev:?}"
        );
        assert_eq!(
            event
                .prev
                .as_ref()
                .map(|p| (String::from_utf8(p.value.to_vec()).unwrap(), p.mod_revision)),
            prev,
            "previous value of {key} at {rev}"
        );
        match value {
            Some(value) => {
                assert_eq!(event.kind, EventKind::Put);
                assert_eq!(&event.kv.value[..], value.as_bytes());
                model.insert(key.clone(), (value.clone(), *rev));
            }
            None => {
                assert_eq!(event.kind, EventKind::Delete);
                model.remove(key);
            }
        }
    }

    let page = store
        .range(&KeyRange::prefix("/model/").unwrap(), ReadAt::Latest, 0)
        .await
        .unwrap();
    let actual: BTreeMap<String, (String, i64)> = page
        .kvs
        .into_iter()
        .map(|kv| {
            (
                kv.key,
                (
                    String::from_utf8(kv.value.to_vec()).unwrap(),
                    kv.mod_revision,
                ),
            )
        })
        .collect();
    assert_eq!(actual, model);
    store.close().await;
}

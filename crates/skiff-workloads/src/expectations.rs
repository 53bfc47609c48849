//! Expectations: the pods a controller created or deleted and has not yet seen in its
//! cache. While any are outstanding the controller does not create or delete more, so a
//! cache that lags behind the controller's own writes never makes it over-create or
//! over-delete. Pods are tracked by key; the controller's pod store settles any the watch
//! has already delivered, and entries older than [`TTL`] are dropped as a last resort.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};

/// How long an expectation may stay unmet before it is forgotten (upstream's five minutes).
pub const TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    adds: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

/// Outstanding pod creations and deletions per controller key.
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the controller `key` created the pod `pod` (`namespace/name`).
    pub fn expect_add(&self, key: &str, pod: String) {
        let mut pending = self.lock();
        let entry = pending.entry(key.to_owned()).or_default();
        entry.since.get_or_insert_with(Instant::now);
        entry.adds.insert(pod);
    }

    /// Records that the controller `key` deleted the pod `pod`.
    pub fn expect_delete(&self, key: &str, pod: String) {
        let mut pending = self.lock();
        let entry = pending.entry(key.to_owned()).or_default();
        entry.since.get_or_insert_with(Instant::now);
        entry.deletes.insert(pod);
    }

    /// The watch delivered `pod` (added, changed or deleted; `gone` when deleted or
    /// terminating).
    pub fn observe(&self, pod: &str, gone: bool) {
        let mut pending = self.lock();
        for entry in pending.values_mut() {
            entry.adds.remove(pod);
            if gone {
                entry.deletes.remove(pod);
            }
        }
        pending.retain(|_, e| !e.adds.is_empty() || !e.deletes.is_empty());
    }

    /// Forgets everything about `key` (its object is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Whether `key` may create or delete pods: nothing outstanding once `pods` (the
    /// controller's cache) has been consulted, or the outstanding entries have expired.
    pub fn satisfied(&self, key: &str, pods: &Store<Pod>) -> bool {
        let mut pending = self.lock();
        let Some(entry) = pending.get_mut(key) else {
            return true;
        };
        entry.adds.retain(|pod| pods.get(&pod_ref(pod)).is_none());
        entry.deletes.retain(|pod| {
            pods.get(&pod_ref(pod))
                .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        });
        let expired = entry.since.is_some_and(|since| since.elapsed() > TTL);
        if expired || (entry.adds.is_empty() && entry.deletes.is_empty()) {
            pending.remove(key);
            return true;
        }
        false
    }
}

fn pod_ref(key: &str) -> ObjectRef<Pod> {
    let (namespace, name) = crate::util::split_key(key);
    ObjectRef::new(name).within(namespace)
}

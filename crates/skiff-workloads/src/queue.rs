//! A work queue of object keys with client-go's guarantees: a key is queued at most once,
//! never processed by two workers at once (a key added while processing is queued again when
//! done), and failures are retried with per-key exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
}

/// A deduplicating, delaying, rate-limited queue of keys.
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
    shutdown: CancellationToken,
}

impl Queue {
    /// An empty queue; delayed adds stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            shutdown,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a key unless it is already waiting.
    pub fn add(&self, key: String) {
        let mut state = self.lock();
        if !state.dirty.insert(key.clone()) {
            return;
        }
        if !state.processing.contains(&key) {
            state.queue.push_back(key);
            drop(state);
            self.notify.notify_one();
        }
    }

    /// Queues a key after a delay.
    pub fn add_after(self: &Arc<Self>, key: String, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::select! {
                () = queue.shutdown.cancelled() => {}
                () = tokio::time::sleep(delay) => queue.add(key),
            }
        });
    }

    /// Queues a key after its backoff (5 ms doubling per consecutive failure, at most 60 s).
    pub fn add_rate_limited(self: &Arc<Self>, key: String) {
        let failures = {
            let mut state = self.lock();
            let failures = state.failures.entry(key.clone()).or_default();
            *failures += 1;
            *failures
        };
        let delay = Duration::from_millis(5u64.saturating_mul(1 << failures.min(20)) / 2)
            .min(Duration::from_secs(60));
        self.add_after(key, delay);
    }

    /// Forgets a key's failures.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// The next key to process (`None` once shut down). Call [`Queue::done`] after.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(key) = state.queue.pop_front() {
                    state.dirty.remove(&key);
                    state.processing.insert(key.clone());
                    return Some(key);
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                () = &mut notified => {}
            }
        }
    }

    /// Marks a key processed, queueing it again if it was added meanwhile.
    pub fn done(&self, key: &str) {
        let mut state = self.lock();
        state.processing.remove(key);
        if state.dirty.contains(key) {
            state.queue.push_back(key.to_owned());
            drop(state);
            self.notify.notify_one();
        }
    }

    /// Runs `workers` concurrent workers that hand each key to `sync` until the queue shuts
    /// down: a success forgets the key's failures and queues it again after the delay `sync`
    /// asks for, if any; a failure queues it again with backoff.
    pub async fn run_workers<F, Fut>(
        self: &Arc<Self>,
        workers: usize,
        kind: impl Into<std::borrow::Cow<'static, str>>,
        sync: F,
    ) where
        F: Fn(String) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = anyhow::Result<Option<Duration>>> + Send + 'static,
    {
        let kind = kind.into();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            let queue = Arc::clone(self);
            let sync = sync.clone();
            let kind = kind.clone();
            tasks.spawn(async move {
                while let Some(key) = queue.next().await {
                    match sync(key.clone()).await {
                        Ok(requeue) => {
                            queue.forget(&key);
                            if let Some(after) = requeue {
                                queue.add_after(key.clone(), after);
                            }
                        }
                        Err(error) => {
                            tracing::debug!(%kind, %key, "sync failed: {error:#}");
                            queue.add_rate_limited(key.clone());
                        }
                    }
                    queue.done(&key);
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_requeued_after_processing() {
        let queue = Queue::new(CancellationToken::new());
        queue.add("a".into());
        queue.add("a".into());
        queue.add("b".into());
        assert_eq!(queue.next().await.as_deref(), Some("a"));
        queue.add("a".into());
        assert_eq!(queue.next().await.as_deref(), Some("b"));
        queue.done("b");
        queue.done("a");
        assert_eq!(queue.next().await.as_deref(), Some("a"));
    }
}

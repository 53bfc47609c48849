//! Automatic compaction: keeps a window of history that is both time- and count-bounded and
//! removes the rest in small steps, so the database stops growing with the number of writes
//! and no single step holds the write lock for long.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::watch::Hub;
use crate::writer::{Job, submit};
use crate::{Error, Result};

/// How much history automatic compaction keeps.
#[derive(Debug, Clone)]
pub struct Retention {
    /// History newer than this is kept (unless `max_revisions` says otherwise).
    pub min_age: Duration,
    /// At most this many revisions of history are kept behind the head, however young.
    pub max_revisions: i64,
    /// How often the compactor looks.
    pub interval: Duration,
    /// Revisions removed per transaction.
    pub step: i64,
}

impl Default for Retention {
    /// Like kube-apiserver's five-minute etcd compaction, with a cap so a write burst cannot
    /// grow the database without bound in between.
    fn default() -> Self {
        Retention {
            min_age: Duration::from_secs(300),
            max_revisions: 10_000,
            interval: Duration::from_secs(5),
            step: 1_000,
        }
    }
}

/// Compacts `(after, upto]` in steps of at most `step` revisions.
pub(crate) async fn compact_range(
    jobs: &mpsc::Sender<Job>,
    mut after: i64,
    upto: i64,
    step: i64,
) -> Result<()> {
    while after < upto {
        let window_end = upto.min(after + step.max(1));
        submit(jobs, |reply| Job::Compact {
            after,
            upto: window_end,
            reply,
        })
        .await?;
        after = window_end;
    }
    Ok(())
}

pub(crate) struct Compactor {
    pub backend: Arc<Backend>,
    pub hub: Arc<Hub>,
    pub jobs: mpsc::Sender<Job>,
    pub retention: Retention,
    pub shutdown: CancellationToken,
}

impl Compactor {
    pub(crate) async fn run(self) {
        // (when, head revision then): the newest sample older than `min_age` bounds what
        // time-based retention may remove.
        let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
        let mut ticker = tokio::time::interval(self.retention.interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            let now = Instant::now();
            // Never compact past what watchers have been offered.
            let head = self.hub.published();
            samples.push_back((now, head));
            while samples.len() > 1 && now.duration_since(samples[1].0) >= self.retention.min_age {
                samples.pop_front();
            }
            let by_age = samples
                .front()
                .filter(|(at, _)| now.duration_since(*at) >= self.retention.min_age)
                .map_or(0, |(_, rev)| *rev);
            let by_count = head - self.retention.max_revisions;
            let target = by_age.max(by_count).min(head);
            let compacted = match self.backend.heads().await {
                Ok((_, compacted)) => compacted,
                Err(err) => {
                    tracing::warn!(error = %err, "compactor cannot read revisions");
                    continue;
                }
            };
            if target <= compacted {
                continue;
            }
            let step = compact_range(&self.jobs, compacted, target, self.retention.step);
            tokio::select! {
                result = step => match result {
                    Ok(()) => tracing::debug!(from = compacted, to = target, "compacted"),
                    Err(Error::Closed) => return,
                    Err(err) => tracing::warn!(error = %err, target, "compaction failed"),
                },
                () = self.shutdown.cancelled() => return,
            }
        }
    }
}

//! Group commit: one task owns writing. Requests queue on a channel; whatever has queued while
//! the previous transaction committed goes into the next one, so many concurrent writers share
//! one transaction and one fsync, and a lone writer still commits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, Outcome, WriteOp};
use crate::{Error, Result};

/// Work for the writer task.
pub(crate) enum Job {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<Outcome>>,
    },
    /// Compaction goes through the writer too: on SQLite only one connection may write.
    Compact {
        after: i64,
        upto: i64,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Scheduler turns the writer waits for resubmitting writers before it commits.
const MAX_GATHER_YIELDS: usize = 8;

/// Counters of the writer's work, for stats and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Transactions committed with at least one write.
    pub commits: AtomicU64,
    /// Writes submitted (successful or not).
    pub writes: AtomicU64,
}

pub(crate) struct Writer {
    pub counters: Arc<Counters>,
    pub backend: Arc<Backend>,
    pub jobs: mpsc::Receiver<Job>,
    /// Announces each new head revision to the feeder that publishes events.
    pub committed: watch::Sender<i64>,
    pub max_batch: usize,
    pub shutdown: CancellationToken,
}

impl Writer {
    pub(crate) async fn run(mut self) {
        let mut batch: Vec<(WriteOp, oneshot::Sender<Result<Outcome>>)> =
            Vec::with_capacity(self.max_batch);
        loop {
            let job = tokio::select! {
                job = self.jobs.recv() => job,
                () = self.shutdown.cancelled() => {
                    // Finish what was accepted before the shutdown, then stop taking work.
                    self.jobs.close();
                    self.jobs.recv().await
                }
            };
            let Some(job) = job else { break };
            // Writers woken by the last commit are about to resubmit: give them a few turns
            // of the scheduler while the queue still grows, so the next transaction carries
            // them all instead of one now and the rest later. A lone writer costs a few
            // yields, not a timer.
            let mut queued = self.jobs.len();
            for _ in 0..MAX_GATHER_YIELDS {
                tokio::task::yield_now().await;
                let now = self.jobs.len();
                if now == queued || now + 1 >= self.max_batch {
                    break;
                }
                queued = now;
            }
            let mut next = Some(job);
            // Take everything already queued, up to the batch size; a compaction job ends
            // the batch so it runs in its own transaction.
            while let Some(job) = next.take() {
                match job {
                    Job::Write { op, reply } => {
                        batch.push((op, reply));
                        if batch.len() < self.max_batch {
                            next = self.jobs.try_recv().ok();
                        }
                    }
                    Job::Compact { after, upto, reply } => {
                        self.commit(&mut batch).await;
                        let _ = reply.send(self.backend.compact_step(after, upto).await);
                    }
                }
            }
            self.commit(&mut batch).await;
        }
    }

    fn announce(&self, head: i64) {
        self.committed.send_if_modified(|current| {
            let advanced = head > *current;
            *current = (*current).max(head);
            advanced
        });
    }

    async fn commit(&self, batch: &mut Vec<(WriteOp, oneshot::Sender<Result<Outcome>>)>) {
        if batch.is_empty() {
            return;
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let ops: Vec<&WriteOp> = batch.iter().map(|(op, _)| op).collect();
        match self.backend.apply(&ops).await {
            Ok((head, outcomes)) => {
                self.announce(head);
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) if batch.len() > 1 => {
                // Nothing of the batch was committed. Retry each op on its own so one bad
                // write cannot fail its neighbours.
                tracing::warn!(error = %err, ops = batch.len(), "batch failed, retrying ops one by one");
                for (op, reply) in batch.drain(..) {
                    let result = self.backend.apply(&[&op]).await;
                    let result = result.map(|(head, mut outcomes)| {
                        self.announce(head);
                        outcomes.pop().expect("one outcome per op")
                    });
                    if let Err(err) = &result {
                        tracing::warn!(key = op.key(), error = %err, "write failed");
                    }
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                let (op, reply) = batch.pop().expect("batch has one op");
                tracing::warn!(key = op.key(), error = %err, "write failed");
                let _ = reply.send(Err(err));
            }
        }
    }
}

/// Sends a job to the writer and waits for its answer.
pub(crate) async fn submit<T>(
    jobs: &mpsc::Sender<Job>,
    make: impl FnOnce(oneshot::Sender<Result<T>>) -> Job,
) -> Result<T> {
    let (reply, answer) = oneshot::channel();
    jobs.send(make(reply)).await.map_err(|_| Error::Closed)?;
    answer.await.map_err(|_| Error::Closed)?
}

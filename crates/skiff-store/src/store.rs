//! [`Store`]: the public face. Wires the backend, the group-commit writer, the watch feeder
//! and the compactor together and owns their tasks.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::backend::{Backend, OpenOptions, Outcome, WriteOp};
use crate::compactor::{Compactor, Retention, compact_range};
use crate::model::{ReadAt, validate_key};
use crate::watch::{Feeder, Hub, Watch, listen_for_commits};
use crate::writer::{self, Job, Writer, submit};
use crate::{Datastore, Error, KeyRange, KeyValue, RangePage, Result};

/// Tuning knobs; the defaults suit a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Automatic compaction, or `None` to compact only when asked.
    pub retention: Option<Retention>,
    /// How long a SQLite statement waits for a lock held by another connection.
    pub busy_timeout: Duration,
    /// How long opening (or taking a pooled connection) may take before failing.
    pub connect_timeout: Duration,
    /// Connections for reads (and, on Postgres, writes).
    pub max_connections: u32,
    /// How often to look for commits by other servers if a notification was lost.
    pub poll_interval: Duration,
    /// Published batches kept for watchers that fall behind before they read the log.
    pub watch_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_batch: 256,
            retention: Some(Retention::default()),
            busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            max_connections: 8,
            poll_interval: Duration::from_secs(1),
            watch_buffer: 4096,
        }
    }
}

/// Sizes that tests and benchmarks look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub revision: i64,
    pub compacted: i64,
    /// Rows in the log: live values, retained history and tombstones.
    pub log_rows: i64,
    /// Write transactions this store committed (each carries one or more writes).
    pub commits: u64,
    /// Writes this store submitted.
    pub writes: u64,
}

/// Counters that cost nothing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// The newest revision whose events have been published to watchers.
    pub revision: i64,
    pub commits: u64,
    pub writes: u64,
}

/// A revisioned key-value store with etcd's semantics. Cheap to clone; all clones share one
/// writer, one watch feed and one compactor.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<Backend>,
    hub: Arc<Hub>,
    jobs: mpsc::Sender<Job>,
    counters: Arc<writer::Counters>,
    /// The newest revision this store has committed itself (may be ahead of the hub).
    committed: watch::Receiver<i64>,
    datastore: Datastore,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Stops the tasks if the store is dropped without `close`.
    _stop_on_drop: DropGuard,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("datastore", &self.inner.datastore)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store. Fails with a message naming the file or URL if
    /// the database is unreachable, locked, corrupt or not a skiff store; it never wipes data.
    pub async fn open(datastore: &Datastore, config: Config) -> Result<Store> {
        let options = OpenOptions {
            busy_timeout: config.busy_timeout,
            connect_timeout: config.connect_timeout,
            max_connections: config.max_connections,
        };
        let backend = Arc::new(Backend::open(datastore, &options).await?);
        let (head, _) = backend.heads().await.map_err(|e| Error::Open {
            target: datastore.describe(),
            reason: e.to_string(),
        })?;
        let listener = listen_for_commits(&backend)
            .await
            .map_err(|e| Error::Open {
                target: datastore.describe(),
                reason: format!("cannot LISTEN for other servers' commits: {e}"),
            })?;
        let hub = Arc::new(Hub::new(head, config.watch_buffer.max(16)));
        let shutdown = CancellationToken::new();
        let (jobs, queue) = mpsc::channel(config.max_batch.max(1) * 4);
        let (committed, committed_rx) = watch::channel(head);

        let counters = Arc::new(writer::Counters::default());
        let mut tasks = vec![
            tokio::spawn(
                Writer {
                    counters: counters.clone(),
                    backend: backend.clone(),
                    jobs: queue,
                    committed,
                    max_batch: config.max_batch.max(1),
                    shutdown: shutdown.clone(),
                }
                .run(),
            ),
            tokio::spawn(
                Feeder {
                    backend: backend.clone(),
                    hub: hub.clone(),
                    committed: committed_rx.clone(),
                    listener,
                    poll_interval: config.poll_interval,
                    shutdown: shutdown.clone(),
                }
                .run(),
            ),
        ];
        if let Some(retention) = config.retention {
            tasks.push(tokio::spawn(
                Compactor {
                    backend: backend.clone(),
                    hub: hub.clone(),
                    jobs: jobs.clone(),
                    retention,
                    shutdown: shutdown.clone(),
                }
                .run(),
            ));
        }
        tracing::info!(datastore = %datastore.describe(), revision = head, "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                hub,
                jobs,
                counters,
                committed: committed_rx,
                datastore: datastore.clone(),
                _stop_on_drop: shutdown.clone().drop_guard(),
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// Creates `key`; fails with `AlreadyExists` if it has a live value. Returns the revision.
    pub async fn create(&self, key: &str, value: impl Into<Bytes>) -> Result<i64> {
        validate_key(key, false)?;
        let op = WriteOp::Create {
            key: key.to_owned(),
            value: value.into(),
        };
        match self.write(op).await? {
            Outcome::Written(revision) => Ok(revision),
            Outcome::AlreadyExists => Err(Error::AlreadyExists {
                key: key.to_owned(),
            }),
            other => unreachable!("create answered {other:?}"),
        }
    }

    /// Replaces the value of `key` if its mod_revision is still `expected`. Returns the new
    /// revision; on a mismatch the error carries the current value.
    pub async fn update(&self, key: &str, value: impl Into<Bytes>, expected: i64) -> Result<i64> {
        validate_key(key, false)?;
        let op = WriteOp::Update {
            key: key.to_owned(),
            value: value.into(),
            expected,
        };
        match self.write(op).await? {
            Outcome::Written(revision) => Ok(revision),
            Outcome::Mismatch(current) => Err(mismatch(key, expected, current)),
            other => unreachable!("update answered {other:?}"),
        }
    }

    /// Deletes `key`, only if its mod_revision is `expected` when given. Returns the delete's
    /// revision and the value that was deleted.
    pub async fn delete(&self, key: &str, expected: Option<i64>) -> Result<(i64, KeyValue)> {
        validate_key(key, false)?;
        let op = WriteOp::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.write(op).await? {
            Outcome::Deleted { revision, prev } => Ok((revision, prev)),
            Outcome::Mismatch(current) => Err(mismatch(key, expected.unwrap_or(0), current)),
            other => unreachable!("delete answered {other:?}"),
        }
    }

    /// The value of `key` at `at`, with the revision the read was served at.
    pub async fn get(&self, key: &str, at: ReadAt) -> Result<(i64, Option<KeyValue>)> {
        let page = self.range(&KeyRange::single(key)?, at, 1).await?;
        Ok((page.revision, page.kvs.into_iter().next()))
    }

    /// Up to `limit` keys of `range` in key order (0 = all), all as of one revision. To read the
    /// next page, pass `range.after(last key)` and the returned revision.
    pub async fn range(&self, range: &KeyRange, at: ReadAt, limit: usize) -> Result<RangePage> {
        let at = match at {
            ReadAt::Latest => None,
            ReadAt::Revision(rev) => Some(rev),
        };
        self.inner.backend.range(range, at, limit).await
    }

    /// How many live keys `range` holds now, with the head revision.
    pub async fn count(&self, range: &KeyRange) -> Result<(i64, u64)> {
        self.inner.backend.count(range).await
    }

    /// Events in `range` from revision `start` on (`None`: only what commits after every
    /// write this store has acknowledged).
    pub fn watch(&self, range: KeyRange, start: Option<i64>) -> Watch {
        let committed = *self.inner.committed.borrow();
        crate::watch::watch(
            self.inner.backend.clone(),
            &self.inner.hub,
            range,
            start,
            committed,
        )
    }

    /// The newest committed revision.
    pub async fn revision(&self) -> Result<i64> {
        Ok(self.inner.backend.heads().await?.0)
    }

    /// Removes history up to `revision`; later reads and watches below it fail with
    /// `Compacted`.
    pub async fn compact(&self, revision: i64) -> Result<()> {
        let (head, compacted) = self.inner.backend.heads().await?;
        if revision > head {
            return Err(Error::FutureRevision {
                requested: revision,
                current: head,
            });
        }
        if revision <= compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted,
            });
        }
        compact_range(&self.inner.jobs, compacted, revision, 1_000).await
    }

    pub async fn stats(&self) -> Result<Stats> {
        let (revision, compacted) = self.inner.backend.heads().await?;
        Ok(Stats {
            revision,
            compacted,
            log_rows: self.inner.backend.log_rows().await?,
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            writes: self.inner.counters.writes.load(Ordering::Relaxed),
        })
    }

    /// In-memory counters, free to read (for metrics endpoints): the newest revision published
    /// to watchers, commits and writes so far.
    pub fn counters(&self) -> Counters {
        Counters {
            revision: self.inner.hub.published(),
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            writes: self.inner.counters.writes.load(Ordering::Relaxed),
        }
    }

    pub fn datastore(&self) -> &Datastore {
        &self.inner.datastore
    }

    /// Commits the writes already accepted, stops the background tasks and closes the
    /// database. Later calls on any clone fail with `Closed`.
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("task list poisoned"));
        for task in tasks {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "store task panicked");
            }
        }
        self.inner.backend.close().await;
    }

    async fn write(&self, op: WriteOp) -> Result<Outcome> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::Closed);
        }
        submit(&self.inner.jobs, |reply| Job::Write { op, reply }).await
    }
}

fn mismatch(key: &str, expected: i64, current: Option<KeyValue>) -> Error {
    match current {
        None => Error::NotFound {
            key: key.to_owned(),
        },
        Some(current) => Error::Conflict {
            key: key.to_owned(),
            expected,
            current: Some(Box::new(current)),
        },
    }
}

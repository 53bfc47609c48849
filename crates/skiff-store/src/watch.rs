//! Watch fan-out. One feeder task per store reads each newly committed stretch of the log once
//! and broadcasts it; every watcher filters that shared stream by its key range. A watcher that
//! starts in the past, falls behind the broadcast buffer, or sees a gap reads the log directly
//! until it has caught up, so a watcher sees every revision exactly once and in order.
//!
//! New commits are noticed from the local writer at once and, on Postgres, from other servers
//! through LISTEN/NOTIFY; a slow poll only backs up a lost notification connection.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, NOTIFY_CHANNEL};
use crate::model::KeyRange;
use crate::{Error, Event, Result};

/// Events read from the log in one query.
const PAGE: usize = 512;

/// Where committed events are published for watchers.
pub(crate) struct Hub {
    events: broadcast::Sender<Arc<[Event]>>,
    /// The newest revision whose events have been published.
    published: watch::Sender<i64>,
}

impl Hub {
    pub(crate) fn new(head: i64, capacity: usize) -> Self {
        Hub {
            events: broadcast::channel(capacity).0,
            published: watch::Sender::new(head),
        }
    }

    pub(crate) fn published(&self) -> i64 {
        *self.published.borrow()
    }

    pub(crate) fn subscribe_published(&self) -> watch::Receiver<i64> {
        self.published.subscribe()
    }

    fn publish(&self, events: Vec<Event>) {
        let Some(last) = events.last().map(|e| e.revision) else {
            return;
        };
        // Advance the head first: a watcher subscribing in between then reads these events
        // from the log instead of missing them.
        self.published.send_replace(last);
        let _ = self.events.send(events.into());
    }
}

/// Reads new log entries as they commit and publishes them to the hub.
pub(crate) struct Feeder {
    pub backend: Arc<Backend>,
    pub hub: Arc<Hub>,
    pub committed: watch::Receiver<i64>,
    /// On Postgres: notifications of commits by every server on the database.
    pub listener: Option<PgListener>,
    pub poll_interval: Duration,
    pub shutdown: CancellationToken,
}

impl Feeder {
    pub(crate) async fn run(mut self) {
        let remote = Arc::new(Notify::new());
        let forwarder = self.listener.take().map(|listener| {
            tokio::spawn(forward_notifications(
                listener,
                remote.clone(),
                self.shutdown.clone(),
            ))
        });
        let everything = KeyRange::prefix("").expect("empty prefix is valid");
        let mut last = self.hub.published();
        loop {
            loop {
                match self.backend.events(&everything, last, i64::MAX, PAGE).await {
                    Ok(events) => {
                        let full = events.len() == PAGE;
                        if let Some(event) = events.last() {
                            last = event.revision;
                        }
                        self.hub.publish(events);
                        if !full {
                            break;
                        }
                    }
                    Err(Error::Compacted { compacted, .. }) => {
                        // Compaction overtook the feeder (another server compacted while this
                        // one stalled). Watchers see the gap and report it as Compacted.
                        tracing::error!(last, compacted, "watch feed fell behind compaction");
                        last = compacted;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "reading new events failed; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                changed = self.committed.changed() => if changed.is_err() { break },
                () = remote.notified() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        if let Some(forwarder) = forwarder {
            let _ = forwarder.await;
        }
    }
}

/// Starts listening for commits by any server on a shared Postgres database. Done while the
/// store opens, so no commit after `open` returns can go unnoticed.
pub(crate) async fn listen_for_commits(backend: &Backend) -> Result<Option<PgListener>> {
    let Some(pool) = backend.postgres_pool() else {
        return Ok(None);
    };
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(Some(listener))
}

/// Forwards notifications of commits to the feeder.
async fn forward_notifications(
    mut listener: PgListener,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(_)) => wake.notify_one(),
                // The connection was lost and has been re-established (and LISTEN renewed);
                // notifications sent meanwhile are gone, so look at the log anyway.
                Ok(None) => wake.notify_one(),
                Err(err) => {
                    tracing::warn!(error = %err, "LISTEN connection failed; retrying");
                    wake.notify_one();
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            },
            () = shutdown.cancelled() => return,
        }
    }
}

/// A stream of the events in one key range, from a chosen revision on.
///
/// It ends with `Err(Error::Compacted)` if the requested history is gone, and ends (`None`)
/// when the store closes.
pub struct Watch {
    inner: Pin<Box<dyn Stream<Item = Result<Event>> + Send>>,
}

impl Stream for Watch {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

pub(crate) fn watch(
    backend: Arc<Backend>,
    hub: &Hub,
    range: KeyRange,
    start: Option<i64>,
    committed: i64,
) -> Watch {
    // Subscribe before reading the published head, so nothing falls between the two.
    let events = hub.events.subscribe();
    let published = hub.subscribe_published();
    let head = (*published.borrow()).max(committed);
    let watcher = Watcher {
        backend,
        range,
        next: start.unwrap_or(head + 1).max(1),
        events,
        published,
        pending: VecDeque::new(),
        caught_up: start.is_none(),
        done: false,
    };
    let stream = futures::stream::unfold(watcher, |mut w| async move {
        let item = w.next_event().await?;
        Some((item, w))
    });
    Watch {
        inner: Box::pin(stream),
    }
}

struct Watcher {
    backend: Arc<Backend>,
    range: KeyRange,
    /// The next revision this watcher has not yet looked at.
    next: i64,
    events: broadcast::Receiver<Arc<[Event]>>,
    published: watch::Receiver<i64>,
    pending: VecDeque<Event>,
    /// Whether the broadcast alone can now serve this watcher.
    caught_up: bool,
    done: bool,
}

impl Watcher {
    async fn next_event(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if !self.caught_up {
                if let Err(err) = self.catch_up().await {
                    self.done = true;
                    return Some(Err(err));
                }
                continue;
            }
            match self.events.recv().await {
                Ok(batch) => self.take(&batch),
                Err(broadcast::error::RecvError::Lagged(_)) => self.caught_up = false,
                Err(broadcast::error::RecvError::Closed) => self.done = true,
            }
        }
    }

    /// Reads one page of history from the log.
    async fn catch_up(&mut self) -> Result<()> {
        let head = *self.published.borrow();
        if self.next > head {
            self.caught_up = true;
            return Ok(());
        }
        let events = self
            .backend
            .events(&self.range, self.next - 1, head, PAGE)
            .await?;
        if events.len() < PAGE {
            self.next = head + 1;
            self.caught_up = true;
        } else if let Some(last) = events.last() {
            self.next = last.revision + 1;
        }
        self.pending.extend(events);
        Ok(())
    }

    fn take(&mut self, batch: &[Event]) {
        for event in batch {
            if event.revision < self.next {
                continue;
            }
            if event.revision > self.next {
                // A gap (the feeder skipped compacted history): let the log tell.
                self.caught_up = false;
                return;
            }
            self.next += 1;
            if self.range.contains(event.key()) {
                self.pending.push_back(event.clone());
            }
        }
    }
}

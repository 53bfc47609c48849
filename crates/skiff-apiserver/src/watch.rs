//! The watch verb over HTTP: newline-delimited JSON events (`{"type":..,"object":..}`) in a
//! chunked response, from the watch cache, with bookmarks and the request's timeout. Errors
//! after the response has started are ERROR events carrying a Status, as kube-apiserver sends.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use tokio::time::Instant;

use crate::cache::{CachedObject, Delivery, Start};
use crate::output::{Output, table};
use crate::registry::Resource;
use crate::selector::Selectors;
use crate::{ApiError, AppState, objects};

/// A watch with no `timeoutSeconds` ends after this long (kube-apiserver's minimum request
/// timeout); clients re-watch from their last revision.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often a watcher that asked for bookmarks is told how far it has seen.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

/// What a watch request asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub start: Start,
    pub selectors: Selectors,
    pub bookmarks: bool,
    /// Mark the end of the initial snapshot with a bookmark (`sendInitialEvents=true`).
    pub initial_events_end: bool,
    pub timeout: Option<Duration>,
    /// Events carry one-row Tables when the client asked for Tables (`kubectl get -w`).
    pub output: Output,
}

/// Starts a watch of `resource` (in `namespace`, or all) and streams its events.
pub(crate) async fn serve(
    state: &AppState,
    resource: &Resource,
    namespace: Option<&str>,
    options: &Options,
) -> Result<Response, ApiError> {
    let prefix = objects::prefix(resource, namespace);
    let deliveries = state
        .cache
        .watch(prefix, options.start, options.selectors.clone())
        .await?;
    let deadline = Instant::now() + options.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let lines = Lines {
        deliveries,
        resource: resource.clone(),
        output: options.output,
        bookmarks: options.bookmarks,
        initial_events_end: options.initial_events_end
            && matches!(options.start, Start::Snapshot | Start::SnapshotAfter(_)),
        seen: 0,
        bookmark_at: tokio::time::Instant::now() + BOOKMARK_EVERY,
        finished: false,
    };
    let body = futures::stream::unfold(lines, move |mut lines| async move {
        let line = lines.next_line(deadline).await?;
        Some((Ok::<Bytes, std::convert::Infallible>(line), lines))
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// Turns deliveries into the lines of the response.
struct Lines {
    deliveries: BoxStream<'static, Delivery>,
    resource: Resource,
    output: Output,
    bookmarks: bool,
    initial_events_end: bool,
    /// The newest revision this watcher has been brought up to.
    seen: i64,
    /// When to tell the watcher `seen` unless it has been sent something since: changes to
    /// other kinds move `seen` without sending anything, and a busy cluster must not keep
    /// postponing this (a quiet kind's watcher would resume from a revision long gone).
    bookmark_at: tokio::time::Instant,
    finished: bool,
}

impl Lines {
    async fn next_line(&mut self, deadline: Instant) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        loop {
            let next = tokio::select! {
                next = self.deliveries.next() => next,
                () = tokio::time::sleep_until(deadline) => return None,
                () = tokio::time::sleep_until(self.bookmark_at), if self.bookmarks && self.seen > 0 => {
                    return Some(self.bookmark(false));
                }
            };
            match next? {
                Delivery::Event { change, event } => {
                    self.seen = event.revision;
                    self.bookmark_at = tokio::time::Instant::now() + BOOKMARK_EVERY;
                    return Some(self.event_line(change.as_str(), &event.object));
                }
                Delivery::Snapshot(object) => return Some(self.event_line("ADDED", &object)),
                Delivery::Progress(revision) => {
                    self.seen = self.seen.max(revision);
                    if self.initial_events_end {
                        self.initial_events_end = false;
                        if self.bookmarks {
                            return Some(self.bookmark(true));
                        }
                    }
                }
                Delivery::Error(error) => {
                    self.finished = true;
                    let status =
                        serde_json::to_vec(&error.status()).expect("a Status always encodes");
                    return Some(line("ERROR", &status));
                }
            }
        }
    }

    /// An event's line: the object's cached JSON as it is, or a one-row Table of it, as
    /// `kubectl get -w` asks for.
    fn event_line(&self, kind: &str, object: &CachedObject) -> Bytes {
        let Output::Table(include) = self.output else {
            return line(kind, object.json());
        };
        let object = object.to_value();
        let meta = json!({ "resourceVersion": object["metadata"]["resourceVersion"] });
        let rendered = table(&self.resource, include, std::slice::from_ref(&object), meta);
        line(
            kind,
            &serde_json::to_vec(&rendered).expect("a JSON value always encodes"),
        )
    }

    fn bookmark(&mut self, initial_events_end: bool) -> Bytes {
        self.bookmark_at = tokio::time::Instant::now() + BOOKMARK_EVERY;
        let mut metadata = json!({ "resourceVersion": self.seen.to_string() });
        if initial_events_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = json!({ "kind": self.resource.kind, "apiVersion": self.resource.group_version(), "metadata": metadata });
        line(
            "BOOKMARK",
            &serde_json::to_vec(&object).expect("a JSON value always encodes"),
        )
    }
}

fn line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + kind.len() + 24);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    /// Changes to other kinds reach a watcher only as progress; a steady stream of them must
    /// not postpone its bookmarks forever, or a quiet kind's watcher resumes from a revision
    /// the cache has long forgotten.
    #[tokio::test(start_paused = true)]
    async fn bookmarks_come_on_time_while_other_kinds_churn() {
        let churn = futures::stream::unfold(1_i64, |revision| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Delivery::Progress(revision + 1), revision + 1))
        });
        let deployments = Registry::builtin()
            .resources()
            .iter()
            .find(|r| r.group == "apps" && r.plural == "deployments")
            .unwrap()
            .clone();
        let mut lines = Lines {
            deliveries: churn.boxed(),
            resource: deployments,
            output: Output::Json,
            bookmarks: true,
            initial_events_end: false,
            seen: 0,
            bookmark_at: tokio::time::Instant::now() + BOOKMARK_EVERY,
            finished: false,
        };
        let started = tokio::time::Instant::now();
        let line = lines
            .next_line(Instant::now() + Duration::from_secs(600))
            .await
            .expect("a bookmark before the deadline");
        let event: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(event["type"], "BOOKMARK");
        assert!(started.elapsed() <= BOOKMARK_EVERY + Duration::from_secs(1));
        let revision: i64 = event["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            revision >= 250,
            "the bookmark carries the progress seen: {revision}"
        );
    }
}

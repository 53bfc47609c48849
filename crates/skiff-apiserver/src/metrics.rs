//! `/metrics` in the Prometheus text format: request counts and latencies by method and code,
//! and the store's counters. Kept to a fixed, small set so a scrape costs nothing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use skiff_store::Store;

/// Upper bounds (seconds) of the request-latency histogram buckets, like kube-apiserver's.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0,
    8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Default)]
struct Latency {
    /// Cumulative counts per bucket of `BUCKETS`.
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

/// Request metrics, recorded by the router's middleware.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
}

impl Metrics {
    pub fn record(&self, method: &str, code: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((method.to_owned(), code))
            .or_default() += 1;
        let mut latency = self.latency.lock().expect("metrics lock");
        let entry = latency.entry(method.to_owned()).or_default();
        if entry.buckets.is_empty() {
            entry.buckets = vec![0; BUCKETS.len()];
        }
        let seconds = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(entry.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        entry.count += 1;
        entry.sum += seconds;
    }

    /// The exposition text.
    pub fn render(&self, store: &Store) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP apiserver_request_total Counter of apiserver requests broken out by method and HTTP response code.\n\
             # TYPE apiserver_request_total counter"
        );
        for ((method, code), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",method=\"{method}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP apiserver_request_duration_seconds Response latency distribution in seconds by method.\n\
             # TYPE apiserver_request_duration_seconds histogram"
        );
        for (method, latency) in self.latency.lock().expect("metrics lock").iter() {
            for (bound, count) in BUCKETS.iter().zip(&latency.buckets) {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{method=\"{method}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {}\n\
                 apiserver_request_duration_seconds_sum{{method=\"{method}\"}} {}\n\
                 apiserver_request_duration_seconds_count{{method=\"{method}\"}} {}",
                latency.count, latency.sum, latency.count
            );
        }
        let counters = store.counters();
        let _ = writeln!(
            out,
            "# HELP skiff_store_revision Newest revision published to watchers.\n\
             # TYPE skiff_store_revision gauge\n\
             skiff_store_revision {}\n\
             # HELP skiff_store_commits_total Write transactions committed by this server.\n\
             # TYPE skiff_store_commits_total counter\n\
             skiff_store_commits_total {}\n\
             # HELP skiff_store_writes_total Writes submitted by this server (each commit carries one or more).\n\
             # TYPE skiff_store_writes_total counter\n\
             skiff_store_writes_total {}",
            counters.revision, counters.commits, counters.writes
        );
        out
    }
}

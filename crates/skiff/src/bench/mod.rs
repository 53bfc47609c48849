//! `skiff bench ...`: benchmarks that print throughput, latency percentiles and RSS, each
//! beside a reference measured in the same run.

mod api;
mod cluster;
mod store;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// The revisioned store on SQLite (and Postgres with --postgres), against raw inserts.
    Store(store::Args),
    /// The API server over HTTPS, as a child process: start-up, RSS, creates, fixed-rate
    /// single-object latency and watch fan-out, with the store's own create figure.
    Api(api::Args),
    /// The control plane under a workload on simulated nodes (a second process): scheduling
    /// throughput, RSS holding the pods, deployment scale-up.
    Cluster(cluster::Args),
}

impl Bench {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Bench::Store(args) => store::run(args).await,
            Bench::Api(args) => api::run(args).await,
            Bench::Cluster(args) => cluster::run(args).await,
        }
    }
}

/// Resident set size of this process now and at its peak, in MiB, from /proc.
pub fn rss_mib() -> (f64, f64) {
    rss_mib_from("/proc/self/status")
}

/// Resident set size of another process (e.g. a server started by a benchmark) now and at its
/// peak, in MiB; zeros once it has exited.
pub fn process_rss_mib(pid: u32) -> (f64, f64) {
    rss_mib_from(&format!("/proc/{pid}/status"))
}

fn rss_mib_from(path: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> std::time::Duration {
    cpu_time_from("/proc/self/stat")
}

/// CPU time (user + system) another process has used so far.
pub fn process_cpu_time(pid: u32) -> std::time::Duration {
    cpu_time_from(&format!("/proc/{pid}/stat"))
}

fn cpu_time_from(path: &str) -> std::time::Duration {
    // Fields 14 and 15 of /proc/PID/stat, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    std::time::Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

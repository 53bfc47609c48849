//! `skiff bench ...`: benchmarks that print throughput, latency percentiles and RSS, each
//! beside a reference measured in the same run.

mod store;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Bench {
    /// The revisioned store on SQLite (and Postgres with --postgres), against raw inserts.
    Store(store::Args),
}

impl Bench {
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Bench::Store(args) => store::run(args).await,
        }
    }
}

/// Resident set size of this process now and at its peak, in MiB, from /proc.
pub fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
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
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    std::time::Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

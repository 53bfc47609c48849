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

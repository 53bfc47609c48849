//! `skiff agent`: joins a node to a cluster. Today: `--simulate N` registers N simulated
//! nodes (no containers: pods bound to them run, complete and stop on schedule), which makes
//! controllers and the scheduler testable anywhere.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use skiff_agent::SimulationConfig;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// The cluster to join, as a kubeconfig (e.g. the server's DATA_DIR/kubeconfig.yaml).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Simulate this many nodes instead of running pods on this machine.
    #[arg(long, value_name = "N")]
    simulate: Option<usize>,
    /// Name prefix of simulated nodes (followed by the node's index).
    #[arg(long, default_value = "sim-")]
    name_prefix: String,
    /// Index of the first simulated node (to run several agents with disjoint nodes).
    #[arg(long, default_value_t = 0)]
    first_index: usize,
    /// Seconds from a pod being bound until it is Running and Ready.
    #[arg(long, default_value_t = 1.0)]
    start_delay: f64,
    /// Seconds pods with restartPolicy Never/OnFailure run before they succeed.
    #[arg(long, default_value_t = 5.0)]
    run_time: f64,
    /// The nodes' Lease duration; like the kubelet, they renew it every quarter of it (lower
    /// it below the server's --node-monitor-grace-period when that is shortened).
    #[arg(long, default_value_t = 40)]
    node_lease_duration_seconds: u32,
}

pub async fn run(args: Args) -> Result<()> {
    let Some(nodes) = args.simulate else {
        bail!("running pods on this machine (containerd) is not implemented yet; use --simulate N");
    };
    let seconds = |value: f64, flag: &str| -> Result<Duration> {
        Duration::try_from_secs_f64(value)
            .with_context(|| format!("--{flag} must be a number of seconds >= 0"))
    };
    if args.node_lease_duration_seconds == 0 {
        bail!("--node-lease-duration-seconds must be at least 1");
    }
    let lease_seconds = i32::try_from(args.node_lease_duration_seconds).unwrap_or(i32::MAX);
    let config = SimulationConfig {
        nodes,
        lease_duration_seconds: lease_seconds,
        lease_interval: Duration::from_secs(u64::from(args.node_lease_duration_seconds)) / 4,
        name_prefix: args.name_prefix,
        first_index: args.first_index,
        start_delay: seconds(args.start_delay, "start-delay")?,
        run_time: seconds(args.run_time, "run-time")?,
        ..SimulationConfig::default()
    };
    let client = crate::client::from_kubeconfig(&args.kubeconfig).await?;
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(crate::server::stop_on_signal(shutdown.clone()));
    tracing::info!(nodes, "simulating nodes");
    let result = skiff_agent::simulate(client, config, shutdown).await;
    signals.abort();
    result
}

//! `skiff server`: the control plane. Today: the store, cluster certificates, a kubeconfig,
//! and the HTTPS API server with authentication, health and version endpoints.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use skiff_apiserver::{AppState, Server, StaticTokens, TokenIssuer};
use skiff_pki::{ClusterPki, Kubeconfig};
use skiff_store::{Config, Datastore, Store};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Where state, certificates and the kubeconfig live [default: /var/lib/skiff as root,
    /// ~/.local/share/skiff otherwise].
    #[arg(long, env = "SKIFF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The datastore: a SQLite file or sqlite://PATH, or a postgres:// URL
    /// [default: DATA_DIR/db/state.db].
    #[arg(long, env = "SKIFF_DATASTORE")]
    datastore: Option<String>,
    /// Address and port of the HTTPS API.
    #[arg(long, default_value = "0.0.0.0:6443")]
    listen: SocketAddr,
    /// Extra names or addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Where to write the admin kubeconfig [default: DATA_DIR/kubeconfig.yaml].
    #[arg(long)]
    write_kubeconfig: Option<PathBuf>,
    /// Bearer tokens, one `token,user,uid,"group1,group2"` per line (kube-apiserver's
    /// --token-auth-file format).
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Do not run the controllers (Deployment, ReplicaSet, ...) in this process.
    #[arg(long)]
    disable_controllers: bool,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    disable_scheduler: bool,
    /// Also run N simulated nodes in this process (`skiff agent --simulate N` in one command).
    #[arg(long, value_name = "N", default_value_t = 0)]
    simulate_nodes: usize,
    /// How long a node may stop renewing its Lease and posting status before it is marked
    /// NotReady (Unknown) and tainted unreachable (e.g. `40s`, `1m`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
}

/// A duration as Kubernetes flags write them: numbers with units `h`, `m`, `s` or `ms`,
/// concatenated (`1m30s`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (use e.g. 40s, 1m30s, 500ms)");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => number * 3600.0,
            "m" => number * 60.0,
            "s" => number,
            "ms" => number / 1000.0,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(seconds).map_err(|_| invalid())?;
    }
    Ok(total)
}

/// The first address of k3s's default service range (10.43.0.0/16): the `kubernetes` Service.
const FIRST_SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1));

pub async fn run(args: Args) -> Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let datastore = match &args.datastore {
        Some(text) => Datastore::parse(text)?,
        None => Datastore::Sqlite(data_dir.join("db").join("state.db")),
    };
    let tokens = match &args.token_auth_file {
        Some(path) => StaticTokens::load(path)?,
        None => StaticTokens::default(),
    };
    let store = Store::open(&datastore, Config::default())
        .await
        .context("opening the datastore")?;
    let (dns_names, ip_addresses) = serving_names(&args.listen, &args.tls_san);
    let pki = ClusterPki::load_or_create(&data_dir.join("tls"), &dns_names, &ip_addresses)
        .context("preparing certificates")?;
    let state = AppState::start(
        store.clone(),
        tokens,
        TokenIssuer::new(pki.service_account_key),
    )
    .await
    .context("loading the watch cache")?;
    let server = Server::bind(args.listen, pki.ca.cert_pem(), &pki.serving).await?;
    let bound = server.local_addr()?;
    skiff_apiserver::bootstrap(&state, bound.port())
        .await
        .context("creating the system namespaces and the kubernetes service")?;

    let kubeconfig_path = args
        .write_kubeconfig
        .unwrap_or_else(|| data_dir.join("kubeconfig.yaml"));
    let host = match bound.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    Kubeconfig {
        name: "default".to_owned(),
        server: format!("https://{}", SocketAddr::new(host, bound.port())),
        ca_pem: pki.ca.cert_pem().to_owned(),
        client: pki.admin.clone(),
    }
    .write(&kubeconfig_path)
    .context("writing the kubeconfig")?;
    tracing::info!(address = %bound, kubeconfig = %kubeconfig_path.display(), datastore = %datastore.describe(), "skiff server ready");

    // On a signal the components stop first, then the API they talk to.
    let shutdown = CancellationToken::new();
    let stop_serving = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(shutdown.clone()));
    let mut serving =
        tokio::spawn(server.run(skiff_apiserver::router(state.clone()), stop_serving.clone()));
    // The embedded components are clients of this server's own HTTPS endpoint, as they would
    // be of any conformant API server, and run on their own threads: however busy they get,
    // they cannot starve the API server's runtime.
    let components = Components {
        kubeconfig: kubeconfig_path.clone(),
        root_ca_pem: pki.ca.cert_pem().to_owned(),
        controllers: !args.disable_controllers,
        scheduler: !args.disable_scheduler,
        simulated_nodes: args.simulate_nodes,
        node_monitor_grace_period: args.node_monitor_grace_period,
    }
    .start(shutdown.clone())?;
    let mut served = None;
    tokio::select! {
        () = shutdown.cancelled() => {}
        result = &mut serving => served = Some(result),
    }
    shutdown.cancel();
    // Components get a few seconds to finish what they are writing.
    let _ =
        tokio::task::spawn_blocking(move || components.shutdown_timeout(Duration::from_secs(5)))
            .await;
    stop_serving.cancel();
    let served = match served {
        Some(result) => result,
        None => serving.await,
    };
    if let Err(err) = served {
        tracing::error!(error = %err, "the API server task failed");
    }
    signals.abort();
    state.stop().await;
    store.close().await;
    Ok(())
}

/// The control-plane components that run beside the API server in this process.
struct Components {
    kubeconfig: PathBuf,
    root_ca_pem: String,
    controllers: bool,
    scheduler: bool,
    simulated_nodes: usize,
    node_monitor_grace_period: Duration,
}

impl Components {
    /// Starts the enabled components on a runtime of their own, until `shutdown`.
    fn start(self, shutdown: CancellationToken) -> Result<tokio::runtime::Runtime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("skiff-components")
            .enable_all()
            .build()
            .context("starting the components' runtime")?;
        runtime.spawn(async move {
            let client = match crate::client::from_kubeconfig(&self.kubeconfig).await {
                Ok(client) => client,
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "components cannot reach the API");
                    return;
                }
            };
            let mut tasks = tokio::task::JoinSet::new();
            if self.controllers {
                // One informer per kind for all the controllers, as kube-controller-manager
                // shares its informer factory.
                let informers = skiff_workloads::Informers::new(client.clone(), shutdown.clone());
                let (workloads, stop) = (informers.clone(), shutdown.clone());
                tasks.spawn(async move {
                    if let Err(err) = skiff_workloads::run(workloads, stop).await {
                        tracing::error!(error = %format!("{err:#}"), "workload controllers stopped");
                    }
                });
                let (core, stop) = (informers, shutdown.clone());
                let config = skiff_controllers::Config::new(self.root_ca_pem)
                    .with_node_monitor_grace_period(self.node_monitor_grace_period);
                tasks.spawn(async move {
                    if let Err(err) = skiff_controllers::run(core, config, stop).await {
                        tracing::error!(error = %format!("{err:#}"), "core controllers stopped");
                    }
                });
            }
            if self.scheduler {
                let (scheduler, stop) = (client.clone(), shutdown.clone());
                tasks.spawn(async move {
                    let config = skiff_scheduler::Config::default();
                    if let Err(err) = skiff_scheduler::run(scheduler, config, stop).await {
                        tracing::error!(error = %format!("{err:#}"), "scheduler stopped");
                    }
                });
            }
            if self.simulated_nodes > 0 {
                let (nodes, stop) = (client.clone(), shutdown.clone());
                let defaults = skiff_agent::SimulationConfig::default();
                // Kubelets renew their Lease every quarter of its duration; a grace period
                // shorter than the default lease would see healthy nodes die between beats.
                let lease_seconds = i32::try_from(self.node_monitor_grace_period.as_secs())
                    .unwrap_or(i32::MAX)
                    .clamp(1, defaults.lease_duration_seconds);
                let config = skiff_agent::SimulationConfig {
                    nodes: self.simulated_nodes,
                    lease_duration_seconds: lease_seconds,
                    lease_interval: defaults
                        .lease_interval
                        .min(self.node_monitor_grace_period / 4),
                    ..defaults
                };
                tasks.spawn(async move {
                    if let Err(err) = skiff_agent::simulate(nodes, config, stop).await {
                        tracing::error!(error = %format!("{err:#}"), "simulated nodes stopped");
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        });
        Ok(runtime)
    }
}

pub async fn stop_on_signal(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

fn default_data_dir() -> Result<PathBuf> {
    if is_root() {
        return Ok(PathBuf::from("/var/lib/skiff"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/skiff"))
}

fn is_root() -> bool {
    // The owner of /proc/self is this process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The names clients may use to reach the API: loopback, the host name, the in-cluster
/// service names and address, the listen address, and `--tls-san` extras.
fn serving_names(listen: &SocketAddr, extra: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && !dns.iter().any(|d| d == host) {
            dns.push(host.to_owned());
        }
    }
    let mut ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        FIRST_SERVICE_IP,
    ];
    if !listen.ip().is_unspecified() && !ips.contains(&listen.ip()) {
        ips.push(listen.ip());
    }
    for san in extra {
        match san.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.contains(san) => dns.push(san.clone()),
            Err(_) => {}
        }
    }
    (dns, ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubernetes_flags() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "5", "s", "5x", "-5s", "5s3"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}

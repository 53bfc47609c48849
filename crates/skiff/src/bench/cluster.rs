//! `skiff bench cluster`: the control plane under a workload, on simulated nodes. A `skiff
//! server` child process (API server, controllers, scheduler) and a `skiff agent --simulate N`
//! child process (the nodes, kept out of the server's RSS) on a fresh data dir; then
//! - scheduling: `--pods` bare pods created by concurrent clients; how fast the scheduler binds
//!   them, beside how fast the API accepted the creates (the ceiling, measured in the same run),
//!   and the time until all run;
//! - RSS of the server holding those pods;
//! - a Deployment scaled from 10 to `--replicas`: time until every replica is ready.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

use super::api::{ServerProcess, machine_info};

#[derive(clap::Args)]
pub struct Args {
    /// Simulated nodes (110 pods each).
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Bare pods created for the scheduling phase.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Replicas the Deployment is scaled to from 10.
    #[arg(long, default_value_t = 5_000)]
    replicas: i32,
    /// Concurrent clients creating pods.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The server's datastore (default: SQLite in its temporary data dir).
    #[arg(long)]
    datastore: Option<String>,
}

const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
const SCHEDULING_NAMESPACE: &str = "bench-scheduling";
const DEPLOYMENT_NAMESPACE: &str = "bench-deployment";

pub async fn run(args: Args) -> Result<()> {
    ensure!(args.clients > 0, "--clients must be at least 1");
    ensure!(args.replicas >= 10, "--replicas must be at least 10");
    let capacity = args.nodes * 110;
    ensure!(
        args.pods <= capacity && usize::try_from(args.replicas).unwrap_or(usize::MAX) <= capacity,
        "{} nodes hold at most {capacity} pods",
        args.nodes
    );
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    println!("# skiff bench cluster");
    machine_info().await;
    println!(
        "{} simulated nodes (separate process), {} pods from {} clients, deployment 10 -> {} replicas",
        args.nodes, args.pods, args.clients, args.replicas
    );
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    let mut server =
        ServerProcess::spawn(&temp.path().join("server"), args.datastore.as_deref(), &[])?;
    server.wait_for_kubeconfig().await?;
    let agent = spawn_agent(server.kubeconfig(), args.nodes)?;
    let result = measure(&args, &server).await;
    drop(agent);
    let stopped = server.stop().await;
    result?;
    stopped
}

/// `skiff agent --simulate N` against the server; killed when dropped.
fn spawn_agent(kubeconfig: &Path, nodes: usize) -> Result<tokio::process::Child> {
    let exe = std::env::current_exe().context("finding the skiff executable")?;
    tokio::process::Command::new(exe)
        .args(["agent", "--simulate", &nodes.to_string(), "--kubeconfig"])
        .arg(kubeconfig)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting skiff agent")
}

async fn measure(args: &Args, server: &ServerProcess) -> Result<()> {
    let client = crate::client::from_kubeconfig(server.kubeconfig()).await?;
    let started = Instant::now();
    wait_for_nodes(&client, args.nodes).await?;
    println!(
        "| {} nodes Ready after | {:.1} s |",
        args.nodes,
        started.elapsed().as_secs_f64()
    );
    let (idle, _) = super::process_rss_mib(server.pid);
    println!("| server RSS with the nodes, no pods | {idle:.1} MiB |");

    tokio::time::timeout(PHASE_TIMEOUT, scheduling(&client, args, server.pid))
        .await
        .context("the scheduling phase did not finish in 600 s")??;
    tokio::time::timeout(PHASE_TIMEOUT, clean_up(&client))
        .await
        .context("deleting the pods did not finish in 600 s")??;
    tokio::time::timeout(PHASE_TIMEOUT, scale_up(&client, args.replicas))
        .await
        .context("the scale-up phase did not finish in 600 s")??;
    let (now, peak) = super::process_rss_mib(server.pid);
    let cpu = super::process_cpu_time(server.pid);
    println!(
        "| server RSS at the end / peak; CPU time | {now:.1} / {peak:.1} MiB; {:.1} s |",
        cpu.as_secs_f64()
    );
    Ok(())
}

async fn wait_for_nodes(client: &Client, nodes: usize) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|node| {
                node.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready >= nodes {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {ready} of {nodes} nodes Ready after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// When each pod was first seen bound and first seen running.
#[derive(Default)]
struct Progress {
    bound: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
}

async fn scheduling(client: &Client, args: &Args, pid: u32) -> Result<()> {
    create_namespace(client, SCHEDULING_NAMESPACE).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), SCHEDULING_NAMESPACE);
    let progress = Arc::new(Mutex::new(Progress::default()));
    let observer = tokio::spawn(observe(pods.clone(), Arc::clone(&progress)));

    let template: Pod = serde_json::from_value(json!({
        "metadata": {"labels": {"app": "bench"}},
        "spec": {"containers": [{
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        }]},
    }))?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let created_from = Instant::now();
    let mut creates = futures::stream::iter(0..args.pods)
        .map(|i| {
            let (pods, mut pod) = (pods.clone(), template.clone());
            pod.metadata.name = Some(format!("pod-{i}"));
            async move {
                let sent = Instant::now();
                pods.create(&PostParams::default(), &pod).await?;
                Ok::<_, kube::Error>(sent.elapsed())
            }
        })
        .buffer_unordered(args.clients);
    while let Some(latency) = creates.try_next().await? {
        latencies.record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX))?;
    }
    let create_time = created_from.elapsed();
    let create_rate = args.pods as f64 / create_time.as_secs_f64();
    println!(
        "| creates: {} pods from {} clients | {create_rate:.0}/s; latency p50 / p99 / max {:.1} / {:.1} / {:.1} ms |",
        args.pods,
        args.clients,
        latencies.value_at_quantile(0.5) as f64 / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
        latencies.max() as f64 / 1000.0,
    );
    let mut reported = Instant::now();
    let (all_bound, all_running) = loop {
        {
            let progress = progress.lock().expect("not poisoned");
            if progress.running.len() >= args.pods {
                let last = |times: &HashMap<String, Instant>| times.values().max().copied();
                break (last(&progress.bound), last(&progress.running));
            }
            // Progress on stderr, so a slow phase shows where it is.
            if reported.elapsed() >= Duration::from_secs(10) {
                eprintln!(
                    "bench: {:.0} s after the first create: {} of {} pods bound, {} running",
                    created_from.elapsed().as_secs_f64(),
                    progress.bound.len(),
                    args.pods,
                    progress.running.len()
                );
                reported = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    observer.abort();
    let bound_after = all_bound.map_or(Duration::ZERO, |t| t - created_from);
    let scheduling_rate = args.pods as f64 / bound_after.as_secs_f64();
    println!(
        "| scheduling: all {} pods bound after the first create | {:.1} s = {scheduling_rate:.0} pods/s ({:.0}% of the create rate; goal >= 1,000 pods/s) |",
        args.pods,
        bound_after.as_secs_f64(),
        100.0 * scheduling_rate / create_rate
    );
    println!(
        "| all {} pods Running after the first create | {:.1} s |",
        args.pods,
        all_running.map_or(0.0, |t| (t - created_from).as_secs_f64())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, _) = super::process_rss_mib(pid);
    println!(
        "| server RSS with {} pods running | {rss:.1} MiB (goal <= 300 MiB) |",
        args.pods
    );
    Ok(())
}

/// Records when each pod is first seen bound and running.
async fn observe(pods: Api<Pod>, progress: Arc<Mutex<Progress>>) {
    let stream = watcher(pods, watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
            _ => continue,
        };
        let now = Instant::now();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut progress = progress.lock().expect("not poisoned");
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some()
        {
            progress.bound.entry(name.clone()).or_insert(now);
        }
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            progress.running.entry(name).or_insert(now);
        }
    }
}

/// Deletes the scheduling phase's namespace and waits until its pods are gone.
async fn clean_up(client: &Client) -> Result<()> {
    let started = Instant::now();
    let pods: Api<Pod> = Api::namespaced(client.clone(), SCHEDULING_NAMESPACE);
    pods.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    loop {
        let left = pods
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "| deleting those pods (graceful, finished by their nodes) | {:.1} s |",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn scale_up(client: &Client, replicas: i32) -> Result<()> {
    create_namespace(client, DEPLOYMENT_NAMESPACE).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), DEPLOYMENT_NAMESPACE);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "nginx",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }]},
            },
        },
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    wait_ready_replicas(&deployments, 10).await?;
    let started = Instant::now();
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    wait_ready_replicas(&deployments, replicas).await?;
    let took = started.elapsed();
    println!(
        "| deployment scale-up 10 -> {replicas}: all ready | {:.1} s ({:.0} pods/s) |",
        took.as_secs_f64(),
        f64::from(replicas - 10) / took.as_secs_f64()
    );
    Ok(())
}

async fn wait_ready_replicas(deployments: &Api<Deployment>, replicas: i32) -> Result<()> {
    let mut reported = Instant::now();
    loop {
        let ready = deployments
            .get_status("web")
            .await?
            .status
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready >= replicas {
            return Ok(());
        }
        if reported.elapsed() >= Duration::from_secs(10) {
            eprintln!("bench: {ready} of {replicas} replicas ready");
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(())
}

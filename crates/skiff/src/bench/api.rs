//! `skiff bench api`: the API server as users meet it, over HTTPS with the admin client
//! certificate, as a child process (`skiff server` on a fresh data dir): cold start to the
//! first successful `kubectl get ns`, RSS idle and holding the created ConfigMaps, create
//! throughput and latency from concurrent clients (beside the store's own figure for the same
//! creates, measured in the same run), single-object latency at a fixed request rate, and watch
//! fan-out latency.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use skiff_store::{Config, Datastore, Store};

#[derive(clap::Args)]
pub struct Args {
    /// ConfigMaps created through the API (and, for the reference, directly in the store).
    #[arg(long, default_value_t = 10_000)]
    creates: usize,
    /// Concurrent HTTPS clients creating, each with its own connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Watches in the fan-out phase, each on its own connection.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// Requests per second in the fixed-rate single-object phases (GET, then PUT).
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Seconds each fixed-rate phase lasts.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Updates of one ConfigMap that every watcher receives.
    #[arg(long, default_value_t = 20)]
    watch_events: usize,
    /// The server's datastore (default: a SQLite file in its temporary data dir). The store
    /// reference always runs on a fresh SQLite file.
    #[arg(long)]
    datastore: Option<String>,
}

/// Bytes of `data.payload` in each created ConfigMap: the stored object is then a little over
/// 1 KiB, the value size `skiff bench store` writes.
const PAYLOAD: usize = 1024;
const NAMESPACE: &str = "default";
/// Connections sending the fixed-rate phases' requests (each takes its turn in the schedule).
const PACED_CONNECTIONS: usize = 16;
/// Watch connections opened at once.
const OPENING: usize = 32;
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn run(args: Args) -> Result<()> {
    ensure!(args.clients > 0, "--clients must be at least 1");
    ensure!(args.rate > 0, "--rate must be at least 1");
    ensure!(
        args.creates >= args.clients,
        "--creates must be at least --clients"
    );
    // Every watch and client holds a socket here and one in the server, which inherits this
    // limit.
    let needed = (args.watchers + args.clients + PACED_CONNECTIONS + 256) as u64;
    let nofile = rlimit::increase_nofile_limit(needed.max(65_536)).unwrap_or(0);
    ensure!(
        nofile >= needed,
        "{} watchers need about {needed} file descriptors; the limit is {nofile} (raise ulimit -n)",
        args.watchers
    );

    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let data_dir = temp.path().join("server");
    println!("# skiff bench api");
    machine_info().await;
    println!(
        "{} creates ({PAYLOAD} B payload) from {} HTTPS clients, fixed rate {}/s for {} s, \
         {} watchers x {} updates, datastore {}",
        args.creates,
        args.clients,
        args.rate,
        args.seconds,
        args.watchers,
        args.watch_events,
        args.datastore
            .as_deref()
            .map_or("SQLite in the data dir".to_owned(), |d| {
                Datastore::parse(d).map_or_else(|_| d.to_owned(), |d| d.describe())
            }),
    );
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");

    let mut server = ServerProcess::spawn(&data_dir, args.datastore.as_deref(), &[])?;
    let result = measure(&args, &mut server, temp.path()).await;
    let stopped = server.stop().await;
    result?;
    stopped?;
    Ok(())
}

async fn measure(args: &Args, server: &mut ServerProcess, temp: &Path) -> Result<()> {
    let api = cold_start(server, temp).await?;
    let pid = server.pid;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle, _) = super::process_rss_mib(pid);
    println!("| idle RSS (after start, kubectl get ns, 1 s) | {idle:.1} MiB (goal <= 40 MiB) |");

    let creates = tokio::time::timeout(PHASE_TIMEOUT, create_phase(&api, args, pid))
        .await
        .context("the create phase did not finish in 300 s")??;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (with_objects, _) = super::process_rss_mib(pid);
    println!(
        "| RSS with {} ConfigMaps | {with_objects:.1} MiB |",
        args.creates
    );

    let store_rate = store_reference(temp, args, creates.object_bytes).await?;
    println!(
        "| store reference: same creates in-process, {} writers, fresh SQLite, {} B values | {store_rate:.0}/s (API reaches {:.0}% of it) |",
        args.clients,
        creates.object_bytes,
        100.0 * creates.per_sec / store_rate
    );

    tokio::time::timeout(PHASE_TIMEOUT, paced_phases(&api, args))
        .await
        .context("the fixed-rate phases did not finish in 300 s")??;

    if args.watchers > 0 && args.watch_events > 0 {
        tokio::time::timeout(PHASE_TIMEOUT, watch_fan_out(&api, args, pid))
            .await
            .context("the watch phase did not finish in 300 s")??;
    }
    let (now, peak) = super::process_rss_mib(pid);
    println!("| server RSS at the end / peak | {now:.1} / {peak:.1} MiB |");
    Ok(())
}

pub(super) async fn machine_info() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let date = tokio::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "machine: {cores} cores, {model}, Linux {}; {date}; load average {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 / p99 / max of a histogram of microseconds, in milliseconds.
fn percentiles(h: &Histogram<u64>) -> String {
    format!(
        "{:.2} / {:.2} / {:.2} ms",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}

fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// The server process.

/// The server's log filter: warnings, or `SKIFF_BENCH_SERVER_LOG` to look into a run.
fn server_log_filter() -> String {
    std::env::var("SKIFF_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned())
}

/// `skiff server` on `127.0.0.1:0`, started from this executable; killed if dropped.
pub(super) struct ServerProcess {
    child: tokio::process::Child,
    pub(super) pid: u32,
    started: Instant,
    kubeconfig: PathBuf,
}

impl ServerProcess {
    pub(super) fn spawn(
        data_dir: &Path,
        datastore: Option<&str>,
        extra_args: &[&str],
    ) -> Result<ServerProcess> {
        let exe = std::env::current_exe().context("finding the skiff executable")?;
        let mut command = tokio::process::Command::new(exe);
        command
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir);
        if let Some(datastore) = datastore {
            command.args(["--datastore", datastore]);
        }
        command.args(extra_args);
        let started = Instant::now();
        let child = command
            .env("RUST_LOG", server_log_filter())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting skiff server")?;
        let pid = child.id().context("the server exited at once")?;
        Ok(ServerProcess {
            child,
            pid,
            started,
            kubeconfig: data_dir.join("kubeconfig.yaml"),
        })
    }

    pub(super) fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub(super) async fn wait_for_kubeconfig(&mut self) -> Result<()> {
        // Written through a temporary file and a rename: once it exists it is complete.
        while !self.kubeconfig.exists() {
            if let Some(status) = self.child.try_wait()? {
                bail!("skiff server exited ({status}) before writing its kubeconfig");
            }
            ensure!(
                self.started.elapsed() < Duration::from_secs(30),
                "skiff server wrote no kubeconfig in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub(super) async fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            bail!("skiff server exited during the benchmark");
        }
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                ensure!(status.success(), "skiff server exited with {status}");
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("skiff server did not stop within 10 s of SIGTERM")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An HTTPS client with the admin certificate: one HTTP/1.1 connection per client, as each
// Kubernetes client process has its own.

struct Api {
    address: SocketAddr,
    server_name: ServerName<'static>,
    authority: String,
    tls: tokio_rustls::TlsConnector,
}

impl Api {
    /// From the kubeconfig `skiff server` writes: server URL, CA and admin client certificate.
    fn from_kubeconfig(path: &Path) -> Result<Api> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim().trim_matches('"').to_owned())
                .with_context(|| format!("{} has no {name}", path.display()))
        };
        let pem = |name: &str| -> Result<Vec<u8>> {
            base64::engine::general_purpose::STANDARD
                .decode(field(name)?)
                .with_context(|| format!("decoding {name}"))
        };
        let server = field("server:")?;
        let authority = server
            .strip_prefix("https://")
            .with_context(|| format!("server {server} is not https://"))?
            .to_owned();
        let address: SocketAddr = authority
            .parse()
            .with_context(|| format!("server {server} is not an address and port"))?;

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem("certificate-authority-data:")?) {
            roots.add(cert.context("reading the CA certificate")?)?;
        }
        let chain = CertificateDer::pem_slice_iter(&pem("client-certificate-data:")?)
            .collect::<Result<Vec<_>, _>>()
            .context("reading the client certificate")?;
        let key = PrivateKeyDer::from_pem_slice(&pem("client-key-data:")?)
            .context("reading the client key")?;
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Api {
            address,
            server_name: ServerName::IpAddress(address.ip().into()),
            authority,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(&self) -> Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(self.address).await?;
        tcp.set_nodelay(true)?;
        let tls = self.tls.connect(self.server_name.clone(), tcp).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            authority: self.authority.clone(),
        })
    }
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Conn {
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        self.sender.ready().await?;
        Ok(self.sender.send_request(request).await?)
    }

    /// One request, its whole response body read.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A request that must answer `expected`; the body parsed as JSON.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        expected: StatusCode,
    ) -> Result<Value> {
        let (status, body) = self.call(method.clone(), path, body).await?;
        ensure!(
            status == expected,
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(serde_json::from_slice(&body)?)
    }
}

fn collection() -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/configmaps")
}

fn config_map(name: &str, data: Value) -> Bytes {
    Bytes::from(
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": name, "labels": { "app": "skiff-bench" } },
            "data": data,
        })
        .to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Phases.

/// Times the server from spawn to its kubeconfig, to `/readyz`, and to the first successful
/// `kubectl get ns`.
async fn cold_start(server: &mut ServerProcess, temp: &Path) -> Result<Api> {
    server.wait_for_kubeconfig().await?;
    let kubeconfig_at = server.started.elapsed();
    let api = Api::from_kubeconfig(&server.kubeconfig)?;
    let started = server.started;

    let readyz = async {
        loop {
            if let Ok(mut conn) = api.connect().await
                && let Ok((StatusCode::OK, _)) =
                    conn.call(Method::GET, "/readyz", Bytes::new()).await
            {
                return Ok(started.elapsed());
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "/readyz not OK within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let kubectl = kubectl_binary();
    let cache = temp.join("kubectl-cache");
    let first_get = async {
        loop {
            let ok = match &kubectl {
                Some(kubectl) => kubectl_get_ns(kubectl, &server.kubeconfig, &cache).await,
                None => match api.connect().await {
                    Ok(mut conn) => matches!(
                        conn.call(Method::GET, "/api/v1/namespaces", Bytes::new())
                            .await,
                        Ok((StatusCode::OK, _))
                    ),
                    Err(_) => false,
                },
            };
            if ok {
                return Ok(started.elapsed());
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "no successful `get ns` within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (readyz, first_get): (Result<Duration>, Result<Duration>) = tokio::join!(readyz, first_get);
    let (readyz, first_get) = (readyz?, first_get?);
    println!(
        "| cold start: spawn to kubeconfig written | {:.0} ms |",
        ms(kubeconfig_at)
    );
    println!("| cold start: spawn to /readyz OK | {:.0} ms |", ms(readyz));
    match &kubectl {
        Some(kubectl) => {
            println!(
                "| cold start: spawn to first successful kubectl get ns | {:.0} ms (goal <= 1 s) |",
                ms(first_get)
            );
            let again = Instant::now();
            let ok = kubectl_get_ns(kubectl, &server.kubeconfig, &cache).await;
            ensure!(ok, "a second kubectl get ns failed");
            println!(
                "| kubectl get ns on the warm server (kubectl's own share; {}) | {:.0} ms |",
                kubectl
                    .file_name()
                    .map_or_else(Default::default, |n| n.to_string_lossy()),
                ms(again.elapsed())
            );
        }
        None => println!(
            "| cold start: spawn to first successful GET /api/v1/namespaces (no kubectl.1.33 found) | {:.0} ms (goal <= 1 s) |",
            ms(first_get)
        ),
    }
    Ok(api)
}

/// kubectl 1.33 beside the `kubectl` dispatcher on PATH (how the machine image ships it), or a
/// plain kubectl if that is all there is.
fn kubectl_binary() -> Option<PathBuf> {
    let dispatcher = std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("kubectl"))
        .find(|p| p.is_file())?;
    let dir = std::fs::canonicalize(&dispatcher)
        .ok()?
        .parent()?
        .to_owned();
    let versioned = dir.join("kubectl.1.33");
    Some(if versioned.is_file() {
        versioned
    } else {
        dispatcher
    })
}

async fn kubectl_get_ns(kubectl: &Path, kubeconfig: &Path, cache: &Path) -> bool {
    tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["get", "ns"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

struct Creates {
    per_sec: f64,
    /// Size of one created object as the API returned it (about what the store holds).
    object_bytes: usize,
}

/// `creates` ConfigMaps POSTed by `clients` connections, each creating its own stretch of
/// names (as `skiff bench store`'s writers own stretches of keys).
async fn create_phase(api: &Api, args: &Args, pid: u32) -> Result<Creates> {
    let connections = futures::stream::iter(0..args.clients)
        .map(|_| api.connect())
        .buffer_unordered(OPENING)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .context("connecting the create clients")?;
    let payload = "x".repeat(PAYLOAD);
    let per_client = args.creates.div_ceil(args.clients);
    let total = args.creates;
    let (server_cpu, own_cpu) = (super::process_cpu_time(pid), super::cpu_time());
    let started = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| {
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3)?;
                let mut object_bytes = 0;
                for i in (c * per_client)..((c + 1) * per_client).min(total) {
                    let body = config_map(&format!("bench-{i:06}"), json!({ "payload": payload }));
                    let sent = Instant::now();
                    let (status, body) = conn.call(Method::POST, &collection(), body).await?;
                    latency.record(micros(sent.elapsed()))?;
                    ensure!(
                        status == StatusCode::CREATED,
                        "create: {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    object_bytes = body.len();
                }
                anyhow::Ok((latency, object_bytes))
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new(3)?;
    let mut object_bytes = 0;
    for task in tasks {
        let (h, bytes) = task.await??;
        latency.add(h)?;
        object_bytes = object_bytes.max(bytes);
    }
    let elapsed = started.elapsed();
    let server_cores =
        (super::process_cpu_time(pid) - server_cpu).as_secs_f64() / elapsed.as_secs_f64();
    let own_cores = (super::cpu_time() - own_cpu).as_secs_f64() / elapsed.as_secs_f64();
    let per_sec = total as f64 / elapsed.as_secs_f64();
    println!(
        "| creates through HTTPS, {} clients | {per_sec:.0}/s ({total} in {:.2} s; server {server_cores:.2} cores, benchmark client {own_cores:.2} cores) |",
        args.clients,
        elapsed.as_secs_f64()
    );
    println!(
        "| create latency p50 / p99 / max | {} |",
        percentiles(&latency)
    );
    Ok(Creates {
        per_sec,
        object_bytes,
    })
}

/// The store's own figure for the same creates: `clients` writers, each owning a stretch of
/// keys, values the size of the API's objects, on a fresh SQLite file with the server's
/// configuration (the loop of `skiff bench store`'s concurrent phase).
async fn store_reference(temp: &Path, args: &Args, value_size: usize) -> Result<f64> {
    let path = temp.join("store-reference.db");
    let store = Store::open(&Datastore::Sqlite(path.clone()), Config::default())
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let prefix = format!("/registry/core/configmaps/{NAMESPACE}/bench-");
    let per_sec = super::store::concurrent_creates_of(
        &store,
        &prefix,
        args.creates,
        args.clients,
        value_size,
    )
    .await?;
    store.close().await;
    Ok(per_sec)
}

/// GETs of one ConfigMap, then PUTs (each connection updating its own ConfigMap), on a fixed
/// schedule of `rate` per second. Latency counts from the scheduled start, so a request delayed
/// by a slow one before it is charged for the wait.
async fn paced_phases(api: &Api, args: &Args) -> Result<()> {
    let mut connections = futures::stream::iter(0..PACED_CONNECTIONS)
        .map(|_| api.connect())
        .buffer_unordered(OPENING)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .context("connecting the fixed-rate clients")?;
    for (i, conn) in connections.iter_mut().enumerate() {
        conn.expect(
            Method::POST,
            &collection(),
            config_map(&format!("paced-{i:02}"), json!({ "n": "0" })),
            StatusCode::CREATED,
        )
        .await?;
    }
    let total = (u64::from(args.rate) * args.seconds).max(1) as usize;
    for verb in [Method::GET, Method::PUT] {
        let start = tokio::time::Instant::now() + Duration::from_millis(20);
        let interval = Duration::from_secs(1) / args.rate;
        let tasks: Vec<_> = connections
            .drain(..)
            .enumerate()
            .map(|(c, mut conn)| {
                let verb = verb.clone();
                tokio::spawn(async move {
                    let mut latency = Histogram::<u64>::new(3)?;
                    let mut errors = 0_u64;
                    for slot in (c..total).step_by(PACED_CONNECTIONS) {
                        let scheduled = start + interval * slot as u32;
                        tokio::time::sleep_until(scheduled).await;
                        let (path, body) = if verb == Method::GET {
                            (format!("{}/paced-00", collection()), Bytes::new())
                        } else {
                            let name = format!("paced-{c:02}");
                            (
                                format!("{}/{name}", collection()),
                                config_map(&name, json!({ "n": slot.to_string() })),
                            )
                        };
                        let (status, _) = conn.call(verb.clone(), &path, body).await?;
                        latency.record(micros(scheduled.elapsed()))?;
                        if status != StatusCode::OK {
                            errors += 1;
                        }
                    }
                    anyhow::Ok((conn, latency, errors))
                })
            })
            .collect();
        let mut latency = Histogram::<u64>::new(3)?;
        let mut errors = 0;
        for task in tasks {
            let (conn, h, e) = task.await??;
            connections.push(conn);
            latency.add(h)?;
            errors += e;
        }
        let elapsed = start.elapsed();
        ensure!(errors == 0, "{errors} fixed-rate {verb} requests failed");
        println!(
            "| single-object {verb} at {}/s (achieved {:.0}/s), latency p50 / p99 / max | {} (goal p99 <= 10 ms) |",
            args.rate,
            total as f64 / elapsed.as_secs_f64(),
            percentiles(&latency)
        );
    }
    Ok(())
}

/// `watchers` watches of the namespace's ConfigMaps from the current revision, each on its
/// own connection; then `watch_events` updates of one ConfigMap 50 ms apart, each carrying its
/// send time; latency is from just before the PUT to each watcher's receipt of the event.
async fn watch_fan_out(api: &Api, args: &Args, pid: u32) -> Result<()> {
    let mut writer = api.connect().await?;
    let created = writer
        .expect(
            Method::POST,
            &collection(),
            config_map("watch-target", json!({ "sent": "0" })),
            StatusCode::CREATED,
        )
        .await?;
    let revision = created["metadata"]["resourceVersion"]
        .as_str()
        .context("the created object has no resourceVersion")?
        .to_owned();
    let path = format!(
        "{}?watch=true&resourceVersion={revision}&timeoutSeconds=300",
        collection()
    );
    let base = Instant::now();
    let (rss_before, _) = super::process_rss_mib(pid);
    let opened = Instant::now();
    let streams = futures::stream::iter(0..args.watchers)
        .map(|_| async {
            let mut conn = api.connect().await?;
            let response = conn.send(Method::GET, &path, Bytes::new()).await?;
            ensure!(
                response.status() == StatusCode::OK,
                "watch: {}",
                response.status()
            );
            anyhow::Ok((conn, response.into_body()))
        })
        .buffer_unordered(OPENING)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()
        .context("opening the watches")?;
    let opened = opened.elapsed();
    let events = args.watch_events;
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|(conn, body)| tokio::spawn(receive(conn, body, base, events)))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (rss_open, _) = super::process_rss_mib(pid);

    let mut rss_during: f64 = rss_open;
    let mut put_latency = Histogram::<u64>::new(3)?;
    let (server_cpu, own_cpu, updating) = (
        super::process_cpu_time(pid),
        super::cpu_time(),
        Instant::now(),
    );
    let target = format!("{}/watch-target", collection());
    for _ in 0..events {
        let sent = Instant::now();
        let nanos = sent.duration_since(base).as_nanos().to_string();
        writer
            .expect(
                Method::PUT,
                &target,
                config_map("watch-target", json!({ "sent": nanos })),
                StatusCode::OK,
            )
            .await?;
        put_latency.record(micros(sent.elapsed()))?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        rss_during = rss_during.max(super::process_rss_mib(pid).0);
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut missing = 0;
    for task in tasks {
        let (h, got) = task.await??;
        latency.add(h)?;
        missing += events - got;
    }
    rss_during = rss_during.max(super::process_rss_mib(pid).0);
    let elapsed = updating.elapsed().as_secs_f64();
    let server_cores = (super::process_cpu_time(pid) - server_cpu).as_secs_f64() / elapsed;
    let own_cores = (super::cpu_time() - own_cpu).as_secs_f64() / elapsed;
    println!(
        "| watch fan-out: {} watches opened | in {:.2} s; server RSS {rss_before:.1} -> {rss_open:.1} MiB |",
        args.watchers,
        opened.as_secs_f64()
    );
    println!(
        "| watch fan-out latency p50 / p99 / max ({} deliveries, {missing} missing) | {} (server {server_cores:.2} cores, benchmark client {own_cores:.2} cores while updating) |",
        latency.len(),
        percentiles(&latency)
    );
    println!(
        "| watch fan-out: the updates' own PUT latency p50 / p99 / max | {} |",
        percentiles(&put_latency)
    );
    println!("| server RSS during fan-out (max of samples) | {rss_during:.1} MiB |");
    ensure!(missing == 0, "{missing} watch events were not delivered");
    Ok(())
}

/// Reads one watch's newline-delimited JSON events until `events` updates of `watch-target`
/// arrived (or 30 s passed without one): their latencies, and how many.
async fn receive(
    conn: Conn,
    mut body: Incoming,
    base: Instant,
    events: usize,
) -> Result<(Histogram<u64>, usize)> {
    let mut latency = Histogram::<u64>::new(3)?;
    let mut buffer: Vec<u8> = Vec::new();
    let mut got = 0;
    while got < events {
        let Ok(frame) = tokio::time::timeout(Duration::from_secs(30), body.frame()).await else {
            break;
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = micros(base.elapsed());
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).context("a watch line")?;
            ensure!(event["type"] != "ERROR", "watch error: {event}");
            let object = &event["object"];
            if event["type"] == "MODIFIED" && object["metadata"]["name"] == "watch-target" {
                let sent: u64 = object["data"]["sent"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .context("an update without its send time")?;
                latency.record(now.saturating_sub(sent / 1_000))?;
                got += 1;
            }
        }
    }
    drop(conn);
    Ok((latency, got))
}

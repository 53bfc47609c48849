//! What every e2e test uses: the `skiff` binary as a child process on a fresh data dir, and
//! real kubectl binaries of several minors, each with its own cache dir.
//!
//! kubectl comes from the machine image: the dispatcher on PATH and, beside its target,
//! `kubectl.1.27` ... `kubectl.1.33`.

#![allow(dead_code)] // each test target uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The kubectl minors every e2e test runs with: newest, one back, and the oldest supported.
pub const KUBECTL_MINORS: &[&str] = &["1.33", "1.32", "1.27"];

pub fn kubectl_binary(minor: &str) -> PathBuf {
    let dispatcher = which("kubectl").expect("kubectl is on PATH (part of the machine image)");
    let dir = std::fs::canonicalize(&dispatcher)
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    let binary = dir.join(format!("kubectl.{minor}"));
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// A running `skiff server` that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub kubeconfig: PathBuf,
}

impl ServerProcess {
    /// The API server alone (no controllers or scheduler, which tests of the API do not
    /// need and which would only add load to parallel tests).
    pub fn start(data_dir: &Path) -> ServerProcess {
        Self::start_with(data_dir, &["--disable-controllers", "--disable-scheduler"])
    }

    pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
        let kubeconfig = data_dir.join("kubeconfig.yaml");
        let _ = std::fs::remove_file(&kubeconfig);
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start skiff server");
        let server = ServerProcess { child, kubeconfig };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.kubeconfig.exists() {
            assert!(
                Instant::now() < deadline,
                "server wrote no kubeconfig in 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn kubectl(minor: &str, kubeconfig: &Path, cache: &Path, args: &[&str]) -> Output {
    kubectl_env(minor, kubeconfig, cache, args, &[])
}

/// `kubectl` with extra environment variables (e.g. `EDITOR`).
pub fn kubectl_env(
    minor: &str,
    kubeconfig: &Path,
    cache: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let out = Command::new(kubectl_binary(minor))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache.join(minor))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run kubectl");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn wait_ready(kubeconfig: &Path, cache: &Path) -> Duration {
    let started = Instant::now();
    loop {
        let out = kubectl("1.33", kubeconfig, cache, &["get", "--raw", "/readyz"]);
        if out.ok && out.stdout.trim() == "ok" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready in 30 s: {}",
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server on a fresh data dir, ready to serve: the dir (kept alive with the server), the
/// kubectl cache dir, and the server process.
pub fn start_server() -> (tempfile::TempDir, PathBuf, ServerProcess) {
    start_server_with(&["--disable-controllers", "--disable-scheduler"])
}

/// [`start_server`] with `skiff server` flags of the caller's (the whole control plane when
/// empty).
pub fn start_server_with(args: &[&str]) -> (tempfile::TempDir, PathBuf, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = ServerProcess::start_with(&dir.path().join("data"), args);
    wait_ready(&server.kubeconfig, &cache);
    (dir, cache, server)
}

/// Writes `text` to `dir/name`, returning the path as kubectl's `-f` takes it.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// kubectl's stdout, after asserting it succeeded.
pub fn ok(out: Output, what: &str) -> String {
    assert!(out.ok, "{what}: {}", out.stderr);
    out.stdout
}

/// Polls `check` until it returns true, panicking with `what` once `within` has passed.
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("not within {within:?}: {what}");
}

//! End to end: watches with real kubectl — `get -w`, `delete` waiting for finalizers, `wait`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{KUBECTL_MINORS, kubectl, kubectl_binary, start_server};

fn create_from_yaml(minor: &str, kubeconfig: &Path, cache: &Path, dir: &Path, yaml: &str) {
    let file = dir.join("object.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = kubectl(
        minor,
        kubeconfig,
        cache,
        &["create", "--validate=false", "-f", file.to_str().unwrap()],
    );
    assert!(out.ok, "kubectl {minor} create: {}", out.stderr);
}

fn configmap(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{e2e: watch}}\ndata:\n  k: v\n"
    )
}

/// A kubectl left running, whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(minor: &str, kubeconfig: &Path, cache: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(kubectl_binary(minor))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache.join(minor))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run kubectl");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The next line within 30 s.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("kubectl printed a line within 30 s")
    }

    /// Waits for the process to exit by itself; true if it succeeded.
    fn finish(mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kubectl did not finish within {within:?}");
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn get_watch_prints_objects_as_they_are_added_and_deleted() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let ns = format!("watch-{}", minor.replace('.', "-"));
        create_from_yaml(
            minor,
            kc,
            &cache,
            dir.path(),
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        );
        let in_ns = |args: &[&str]| -> Vec<String> {
            let mut all = vec!["-n".to_owned(), ns.clone()];
            all.extend(args.iter().map(|a| a.to_string()));
            all
        };
        // (Only this test's objects: the controllers add kube-root-ca.crt to the namespace.)
        let args = in_ns(&["get", "configmaps", "-l", "e2e=watch", "-w", "-o", "name"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let watch = Running::start(minor, kc, &cache, &args);
        let file = dir.path().join("cm.yaml");
        for name in ["first", "second"] {
            std::fs::write(&file, configmap(name)).unwrap();
            let out = kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "create",
                    "--validate=false",
                    "-f",
                    file.to_str().unwrap(),
                ],
            );
            assert!(out.ok, "kubectl {minor}: {}", out.stderr);
            assert_eq!(watch.line(), format!("configmap/{name}"), "kubectl {minor}");
        }
        let out = kubectl(
            minor,
            kc,
            &cache,
            &["-n", &ns, "delete", "configmap", "first"],
        );
        assert!(
            out.ok,
            "kubectl {minor} delete (which waits on a watch): {}",
            out.stderr
        );
        assert_eq!(
            watch.line(),
            "configmap/first",
            "the deletion is an event too"
        );

        // `get -w NAME` follows one object, starting with its current state.
        let one = Running::start(
            minor,
            kc,
            &cache,
            &[
                "-n",
                &ns,
                "get",
                "configmap",
                "second",
                "-w",
                "-o",
                "jsonpath={.data.k}{\"\\n\"}",
            ],
        );
        assert_eq!(one.line(), "v");
        let mut cm = kubectl(
            minor,
            kc,
            &cache,
            &["-n", &ns, "get", "configmap", "second", "-o", "json"],
        )
        .stdout;
        cm = cm.replace("\"k\": \"v\"", "\"k\": \"changed\"");
        std::fs::write(&file, cm).unwrap();
        let out = kubectl(
            minor,
            kc,
            &cache,
            &["replace", "-f", file.to_str().unwrap(), "--validate=false"],
        );
        assert!(out.ok, "kubectl {minor} replace: {}", out.stderr);
        assert_eq!(one.line(), "changed", "kubectl {minor}");
    }
    server.stop();
}

#[test]
fn delete_waits_until_the_last_finalizer_is_removed() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let name = format!("held-{}", minor.replace('.', "-"));
        create_from_yaml(
            minor,
            kc,
            &cache,
            dir.path(),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  finalizers: [example.com/hold]\ndata:\n  k: v\n"
            ),
        );
        let mut delete = Running::start(
            minor,
            kc,
            &cache,
            &["delete", "configmap", &name, "--timeout=60s"],
        );
        assert_eq!(delete.line(), format!("configmap \"{name}\" deleted"));
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            delete.is_running(),
            "kubectl {minor} waits while the finalizer holds the object"
        );
        let marked = (0..50).any(|_| {
            let out = kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "configmap",
                    &name,
                    "-o",
                    "jsonpath={.metadata.deletionTimestamp}",
                ],
            );
            if !out.ok {
                eprintln!("kubectl {minor} get: {}", out.stderr);
            }
            let done = out.ok && !out.stdout.is_empty();
            if !done {
                std::thread::sleep(Duration::from_millis(200));
            }
            done
        });
        assert!(marked, "kubectl {minor}: marked for deletion");

        // Release it: the same object without finalizers.
        let json = kubectl(
            minor,
            kc,
            &cache,
            &["get", "configmap", &name, "-o", "json"],
        )
        .stdout;
        let mut object: serde_json::Value = serde_json::from_str(&json).unwrap();
        object["metadata"]["finalizers"] = serde_json::json!([]);
        let file = dir.path().join("release.json");
        std::fs::write(&file, object.to_string()).unwrap();
        let out = kubectl(
            minor,
            kc,
            &cache,
            &["replace", "--validate=false", "-f", file.to_str().unwrap()],
        );
        assert!(out.ok, "kubectl {minor} replace: {}", out.stderr);
        assert!(
            delete.finish(Duration::from_secs(60)),
            "kubectl {minor} delete succeeds once the object is gone"
        );
        let gone = kubectl(minor, kc, &cache, &["get", "configmap", &name]);
        assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
    }
    server.stop();
}

#[test]
fn wait_for_jsonpath_and_for_delete() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let name = format!("awaited-{}", minor.replace('.', "-"));
        create_from_yaml(minor, kc, &cache, dir.path(), &configmap(&name));
        let wait = Running::start(
            minor,
            kc,
            &cache,
            &[
                "wait",
                &format!("configmap/{name}"),
                "--for=jsonpath={.data.k}=ready",
                "--timeout=60s",
            ],
        );
        std::thread::sleep(Duration::from_millis(300));
        let json = kubectl(
            minor,
            kc,
            &cache,
            &["get", "configmap", &name, "-o", "json"],
        )
        .stdout;
        let mut object: serde_json::Value = serde_json::from_str(&json).unwrap();
        object["data"]["k"] = serde_json::json!("ready");
        let file = dir.path().join("ready.json");
        std::fs::write(&file, object.to_string()).unwrap();
        let out = kubectl(
            minor,
            kc,
            &cache,
            &["replace", "--validate=false", "-f", file.to_str().unwrap()],
        );
        assert!(out.ok, "{}", out.stderr);
        assert!(
            wait.finish(Duration::from_secs(60)),
            "kubectl {minor} wait --for=jsonpath"
        );

        let gone = Running::start(
            minor,
            kc,
            &cache,
            &[
                "wait",
                &format!("configmap/{name}"),
                "--for=delete",
                "--timeout=60s",
            ],
        );
        let out = kubectl(
            minor,
            kc,
            &cache,
            &["delete", "configmap", &name, "--wait=false"],
        );
        assert!(out.ok, "{}", out.stderr);
        assert!(
            gone.finish(Duration::from_secs(60)),
            "kubectl {minor} wait --for=delete"
        );
    }
    server.stop();
}

//! End to end: a real `skiff server` on a fresh data dir, driven by real kubectl binaries of
//! several minors (each with its own cache dir) using the kubeconfig the server wrote.
//!
//! kubectl comes from the machine image: the dispatcher on PATH and, beside its target,
//! `kubectl.1.27` ... `kubectl.1.33`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use support::{KUBECTL_MINORS, ServerProcess, kubectl, ok, start_server, wait_ready};

/// Conformance: [sig-cli] Kubectl client Kubectl version should check is all data is printed; [sig-api-machinery] server version should find the server version.
#[test]
fn kubectl_versions_reach_the_server_with_the_generated_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let started = Instant::now();
    let server = ServerProcess::start(&dir.path().join("data"));
    let ready_after = wait_ready(&server.kubeconfig, &cache);
    eprintln!(
        "cold start to ready: {:?} (kubeconfig after {:?})",
        started.elapsed(),
        started.elapsed() - ready_after
    );

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&server.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfig holds a private key");

    for minor in KUBECTL_MINORS {
        let version = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["version", "-o", "json"],
        );
        assert!(version.ok, "kubectl {minor} version: {}", version.stderr);
        let json: serde_json::Value = serde_json::from_str(&version.stdout).unwrap();
        let git_version = json["serverVersion"]["gitVersion"].as_str().unwrap();
        assert!(git_version.starts_with("v1.33."), "{git_version}");
        assert_eq!(json["serverVersion"]["major"], "1");

        for probe in ["/healthz", "/livez", "/readyz"] {
            let out = kubectl(minor, &server.kubeconfig, &cache, &["get", "--raw", probe]);
            assert!(
                out.ok && out.stdout.trim() == "ok",
                "{probe}: {}",
                out.stderr
            );
        }

        let missing = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "--raw", "/no/such/path"],
        );
        assert!(!missing.ok);
        assert!(
            missing
                .stderr
                .contains("the server could not find the requested resource"),
            "kubectl {minor}: {}",
            missing.stderr
        );
    }
    server.stop();
}

#[test]
fn requests_without_valid_credentials_are_refused_with_401() {
    let (dir, cache, server) = start_server();

    // The same cluster and CA, but no client certificate; a bearer token the server does not
    // know (with no credentials at all, kubectl would prompt for a password instead).
    let anonymous_path = dir.path().join("anonymous.yaml");
    with_token(
        &server.kubeconfig,
        "not-a-token-this-server-issued",
        &anonymous_path,
    );

    for minor in KUBECTL_MINORS {
        let out = kubectl(
            minor,
            &anonymous_path,
            &cache,
            &["get", "--raw", "/version"],
        );
        assert!(!out.ok, "kubectl {minor}: anonymous /version was served");
        assert!(
            out.stderr.contains("Unauthorized"),
            "kubectl {minor}: {}",
            out.stderr
        );
        // Liveness and readiness stay open to probes.
        let probe = kubectl(minor, &anonymous_path, &cache, &["get", "--raw", "/livez"]);
        assert!(probe.ok, "kubectl {minor}: {}", probe.stderr);
    }
    server.stop();
}

#[test]
fn a_restarted_server_keeps_its_certificates_so_old_kubeconfigs_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let data = dir.path().join("data");
    let first = ServerProcess::start(&data);
    wait_ready(&first.kubeconfig, &cache);
    let saved = dir.path().join("saved-kubeconfig.yaml");
    std::fs::copy(&first.kubeconfig, &saved).unwrap();
    first.stop();

    // Same data dir; the port changes (0 again), so point the saved file at the new one.
    let second = ServerProcess::start(&data);
    wait_ready(&second.kubeconfig, &cache);
    let new_text = std::fs::read_to_string(&second.kubeconfig).unwrap();
    let server_line = new_text
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap();
    let old_text = std::fs::read_to_string(&saved).unwrap();
    let old_server_line = old_text
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap();
    std::fs::write(&saved, old_text.replace(old_server_line, server_line)).unwrap();
    let out = kubectl("1.33", &saved, &cache, &["get", "--raw", "/version"]);
    assert!(out.ok, "{}", out.stderr);
    second.stop();
}

/// The kubeconfig `path` with its client certificate replaced by a bearer token.
fn with_token(path: &Path, token: &str, out: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let replaced: String = text
        .lines()
        .filter(|l| !l.contains("client-certificate-data") && !l.contains("client-key-data"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("  user:\n", &format!("  user:\n    token: {token}\n"));
    std::fs::write(out, replaced).unwrap();
}

#[test]
fn bearer_tokens_from_the_token_file_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "e2e-token-31337,alice,uid-1,\"devs\"\n").unwrap();
    let server = ServerProcess::start_with(
        &dir.path().join("data"),
        &["--token-auth-file", tokens.to_str().unwrap()],
    );
    wait_ready(&server.kubeconfig, &cache);
    let token_config = dir.path().join("token.yaml");
    with_token(&server.kubeconfig, "e2e-token-31337", &token_config);
    for minor in KUBECTL_MINORS {
        let out = kubectl(minor, &token_config, &cache, &["get", "--raw", "/version"]);
        assert!(out.ok, "kubectl {minor}: {}", out.stderr);
    }
    server.stop();
}

/// `kubectl create token` issues a signed, bound, expiring service-account token that
/// authenticates as the service account (`auth whoami`), passes a TokenReview, and stops
/// working once the account is deleted.
/// Conformance: [sig-auth] ServiceAccounts should create a serviceAccountToken and ensure a
/// successful TokenReview; [sig-auth] ServiceAccounts ServiceAccountIssuerDiscovery should
/// support OIDC discovery of service account issuer (the documents; pods come with the agent).
#[test]
fn service_account_tokens_authenticate_until_the_account_is_deleted() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let account = format!("robot-{}", minor.replace('.', "-"));
        ok(
            kubectl(minor, kc, &cache, &["create", "serviceaccount", &account]),
            "create serviceaccount",
        );
        let token = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["create", "token", &account, "--duration=20m"],
            ),
            "create token",
        );
        let token = token.trim();
        assert_eq!(token.split('.').count(), 3, "a JWS: {token}");
        let token_config = dir.path().join(format!("{account}.yaml"));
        with_token(kc, token, &token_config);
        let ns = ok(
            kubectl(
                minor,
                &token_config,
                &cache,
                &["get", "ns", "default", "-o", "name"],
            ),
            "get with the token",
        );
        assert_eq!(ns.trim(), "namespace/default");
        if *minor != "1.27" {
            // kubectl 1.27 asks authentication/v1beta1 for whoami, which 1.33 no longer serves.
            let whoami = ok(
                kubectl(minor, &token_config, &cache, &["auth", "whoami"]),
                "auth whoami",
            );
            assert!(
                whoami.contains(&format!("system:serviceaccount:default:{account}"))
                    && whoami.contains("system:serviceaccounts:default"),
                "kubectl {minor}: {whoami}"
            );
        }
        let review = support::write(
            dir.path(),
            &format!("{account}-review.yaml"),
            &format!(
                "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n"
            ),
        );
        let reviewed = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "create",
                    "-f",
                    &review,
                    "-o",
                    "jsonpath={.status.authenticated} {.status.user.username}",
                ],
            ),
            "token review",
        );
        assert_eq!(
            reviewed,
            format!("true system:serviceaccount:default:{account}")
        );

        ok(
            kubectl(minor, kc, &cache, &["delete", "serviceaccount", &account]),
            "delete serviceaccount",
        );
        let refused = kubectl(minor, &token_config, &cache, &["get", "ns", "default"]);
        assert!(
            !refused.ok && refused.stderr.contains("Unauthorized"),
            "kubectl {minor}: a deleted account's token must stop working: {}",
            refused.stderr
        );
        let reviewed = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "create",
                    "-f",
                    &review,
                    "-o",
                    "jsonpath={.status.authenticated}",
                ],
            ),
            "token review after deletion",
        );
        assert_eq!(reviewed, "false");
    }
    // Too short a lifetime is refused with kube-apiserver's message.
    ok(
        kubectl("1.33", kc, &cache, &["create", "serviceaccount", "brief"]),
        "create serviceaccount",
    );
    let short = kubectl(
        "1.33",
        kc,
        &cache,
        &["create", "token", "brief", "--duration=1m"],
    );
    assert!(
        !short.ok
            && short
                .stderr
                .contains("may not specify a duration less than 10 minutes"),
        "{}",
        short.stderr
    );
    let missing = kubectl("1.33", kc, &cache, &["create", "token", "nobody"]);
    assert!(
        !missing.ok
            && missing
                .stderr
                .contains("serviceaccounts \"nobody\" not found"),
        "{}",
        missing.stderr
    );
    // The issuer's discovery documents name the key that signs the tokens.
    let discovery = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["get", "--raw", "/.well-known/openid-configuration"],
        ),
        "openid configuration",
    );
    let discovery: serde_json::Value = serde_json::from_str(&discovery).unwrap();
    assert_eq!(
        discovery["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    let jwks = ok(
        kubectl("1.33", kc, &cache, &["get", "--raw", "/openid/v1/jwks"]),
        "jwks",
    );
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    server.stop();
}

#[test]
fn a_malformed_token_file_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "only-a-token\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--token-auth-file")
        .arg(&tokens)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(stderr.contains("tokens.csv"), "{stderr}");
}

/// Conformance: [sig-cli] Kubectl client Kubectl api-versions should check if v1 is in available api versions; [sig-api-machinery] AggregatedDiscovery should support aggregated discovery interface.
#[test]
fn discovery_lists_the_built_in_groups_and_resources() {
    let (_dir, cache, server) = start_server();
    for minor in KUBECTL_MINORS {
        let versions = kubectl(minor, &server.kubeconfig, &cache, &["api-versions"]);
        assert!(
            versions.ok,
            "kubectl {minor} api-versions: {}",
            versions.stderr
        );
        let listed: Vec<&str> = versions.stdout.lines().collect();
        for expected in [
            "v1",
            "apps/v1",
            "autoscaling/v2",
            "autoscaling/v1",
            "batch/v1",
            "apiextensions.k8s.io/v1",
            "rbac.authorization.k8s.io/v1",
        ] {
            assert!(
                listed.contains(&expected),
                "kubectl {minor}: {expected} missing from {listed:?}"
            );
        }

        let resources = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["api-resources", "--no-headers"],
        );
        assert!(
            resources.ok,
            "kubectl {minor} api-resources: {}",
            resources.stderr
        );
        let row = |name: &str| -> Vec<String> {
            resources
                .stdout
                .lines()
                .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .find(|cols| cols.first().map(String::as_str) == Some(name))
                .unwrap_or_else(|| panic!("kubectl {minor}: no {name} in\n{}", resources.stdout))
        };
        assert_eq!(row("pods"), ["pods", "po", "v1", "true", "Pod"]);
        assert_eq!(
            row("deployments"),
            ["deployments", "deploy", "apps/v1", "true", "Deployment"]
        );
        assert_eq!(
            row("namespaces"),
            ["namespaces", "ns", "v1", "false", "Namespace"]
        );
        assert_eq!(
            row("customresourcedefinitions"),
            [
                "customresourcedefinitions",
                "crd,crds",
                "apiextensions.k8s.io/v1",
                "false",
                "CustomResourceDefinition"
            ]
        );

        // `auth can-i` and older clients read the legacy documents.
        let core = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "--raw", "/api/v1"],
        );
        assert!(core.ok, "{}", core.stderr);
        let core: serde_json::Value = serde_json::from_str(&core.stdout).unwrap();
        assert_eq!(core["kind"], "APIResourceList");
        assert!(
            core["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "pods/status")
        );
    }
    server.stop();
}

#[test]
fn a_new_cluster_has_the_system_namespaces_and_kubectl_reads_them() {
    let (dir, cache, server) = start_server();
    for minor in KUBECTL_MINORS {
        let out = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "namespaces", "-o", "name"],
        );
        assert!(out.ok, "kubectl {minor}: {}", out.stderr);
        let names: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            names,
            [
                "namespace/default",
                "namespace/kube-node-lease",
                "namespace/kube-public",
                "namespace/kube-system"
            ],
            "kubectl {minor}"
        );

        let one = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "ns", "kube-system", "-o", "json"],
        );
        assert!(one.ok, "kubectl {minor}: {}", one.stderr);
        let ns: serde_json::Value = serde_json::from_str(&one.stdout).unwrap();
        assert_eq!(ns["metadata"]["name"], "kube-system");
        assert_eq!(ns["status"]["phase"], "Active");
        assert!(
            ns["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| u.len() == 36)
        );
        assert!(
            ns["metadata"]["resourceVersion"]
                .as_str()
                .is_some_and(|rv| rv.parse::<i64>().is_ok())
        );

        let missing = kubectl(minor, &server.kubeconfig, &cache, &["get", "ns", "nope"]);
        assert!(!missing.ok);
        assert!(
            missing.stderr.contains("namespaces \"nope\" not found"),
            "kubectl {minor}: {}",
            missing.stderr
        );

        let empty = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "secrets", "-n", "default", "-o", "json"],
        );
        assert!(empty.ok, "kubectl {minor}: {}", empty.stderr);
        let list: serde_json::Value = serde_json::from_str(&empty.stdout).unwrap();
        assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    }
    // A restart keeps them (and does not duplicate or rewrite them).
    let before = kubectl(
        "1.33",
        &server.kubeconfig,
        &cache,
        &["get", "ns", "default", "-o", "jsonpath={.metadata.uid}"],
    );
    server.stop();
    let server = ServerProcess::start(&dir.path().join("data"));
    wait_ready(&server.kubeconfig, &cache);
    let after = kubectl(
        "1.33",
        &server.kubeconfig,
        &cache,
        &["get", "ns", "default", "-o", "jsonpath={.metadata.uid}"],
    );
    assert_eq!(before.stdout, after.stdout);
    server.stop();
}

#[test]
fn kubectl_creates_and_deletes_objects_from_files() {
    let (dir, cache, server) = start_server();
    for minor in KUBECTL_MINORS {
        let name = format!("settings-{}", minor.replace('.', "-"));
        let manifest = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &manifest,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app: web\ndata:\n  color: blue\n"),
        )
        .unwrap();
        let file = manifest.to_str().unwrap();
        // OpenAPI (for client-side validation) is not served yet, hence --validate=false.
        let created = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["create", "-f", file, "--validate=false"],
        );
        assert!(created.ok, "kubectl {minor} create: {}", created.stderr);
        assert!(
            created
                .stdout
                .contains(&format!("configmap/{name} created")),
            "{}",
            created.stdout
        );

        let again = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["create", "-f", file, "--validate=false"],
        );
        assert!(!again.ok);
        assert!(
            again.stderr.contains("AlreadyExists") || again.stderr.contains("already exists"),
            "{}",
            again.stderr
        );

        let color = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "configmap", &name, "-o", "jsonpath={.data.color}"],
        );
        assert_eq!(color.stdout, "blue", "kubectl {minor}: {}", color.stderr);

        // Deleting waits (on a watch) until the object is gone.
        let deleted = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["delete", "configmap", &name],
        );
        assert!(deleted.ok, "kubectl {minor} delete: {}", deleted.stderr);
        assert!(
            deleted
                .stdout
                .contains(&format!("configmap \"{name}\" deleted")),
            "{}",
            deleted.stdout
        );
        let gone = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "configmap", &name],
        );
        assert!(
            !gone.ok && gone.stderr.contains("not found"),
            "{}",
            gone.stderr
        );
    }
    server.stop();
}

#[test]
fn kubectl_replace_with_a_stale_resource_version_is_a_conflict() {
    let (dir, cache, server) = start_server();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  v: \"1\"\n",
    )
    .unwrap();
    let file = manifest.to_str().unwrap();
    assert!(
        kubectl(
            "1.33",
            &server.kubeconfig,
            &cache,
            &["create", "-f", file, "--validate=false"]
        )
        .ok
    );
    for minor in KUBECTL_MINORS {
        let current = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "cm", "conf", "-o", "json"],
        );
        let mut object: serde_json::Value = serde_json::from_str(&current.stdout).unwrap();
        object["data"]["v"] = serde_json::json!(format!("{minor}"));
        let fresh = dir.path().join(format!("fresh-{minor}.json"));
        std::fs::write(&fresh, object.to_string()).unwrap();
        let replaced = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["replace", "-f", fresh.to_str().unwrap(), "--validate=false"],
        );
        assert!(replaced.ok, "kubectl {minor} replace: {}", replaced.stderr);
        assert!(
            replaced.stdout.contains("configmap/conf replaced"),
            "{}",
            replaced.stdout
        );

        // The same file again holds the resourceVersion that was just replaced.
        let stale = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["replace", "-f", fresh.to_str().unwrap(), "--validate=false"],
        );
        assert!(!stale.ok, "kubectl {minor}: stale replace succeeded");
        assert!(
            stale.stderr.contains("the object has been modified"),
            "kubectl {minor}: {}",
            stale.stderr
        );
    }
    server.stop();
}

/// Conformance: [sig-api-machinery] Servers with support for API chunking should return chunks of results for list calls.
#[test]
fn kubectl_follows_continue_tokens_through_paged_lists() {
    let (dir, cache, server) = start_server();
    let mut manifest = String::new();
    for i in 0..7 {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: page-{i}\n"
        ));
    }
    let file = dir.path().join("many.yaml");
    std::fs::write(&file, manifest).unwrap();
    let created = kubectl(
        "1.33",
        &server.kubeconfig,
        &cache,
        &["create", "-f", file.to_str().unwrap(), "--validate=false"],
    );
    assert!(created.ok, "{}", created.stderr);
    for minor in KUBECTL_MINORS {
        let out = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            // (The controllers add kube-root-ca.crt to every namespace.)
            &[
                "get",
                "configmaps",
                "--chunk-size=3",
                "--field-selector=metadata.name!=kube-root-ca.crt",
                "-o",
                "name",
            ],
        );
        assert!(out.ok, "kubectl {minor}: {}", out.stderr);
        let expected: Vec<String> = (0..7).map(|i| format!("configmap/page-{i}")).collect();
        assert_eq!(
            out.stdout.lines().collect::<Vec<_>>(),
            expected,
            "kubectl {minor}"
        );
    }
    server.stop();
}

#[test]
fn label_selectors_filter_get_and_delete() {
    let (dir, cache, server) = start_server();
    for minor in KUBECTL_MINORS {
        let tag = minor.replace('.', "-");
        let mut manifest = String::new();
        for (name, app) in [("a", "web"), ("b", "web"), ("c", "db")] {
            manifest.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-{tag}\n  labels:\n    app: {app}\n    run: \"{tag}\"\n"
            ));
        }
        let file = dir.path().join(format!("labelled-{tag}.yaml"));
        std::fs::write(&file, manifest).unwrap();
        let created = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["create", "-f", file.to_str().unwrap(), "--validate=false"],
        );
        assert!(created.ok, "{}", created.stderr);

        let selector = format!("app=web,run={tag}");
        let web = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "cm", "-l", &selector, "-o", "name"],
        );
        assert!(web.ok, "kubectl {minor}: {}", web.stderr);
        assert_eq!(
            web.stdout.lines().collect::<Vec<_>>(),
            [format!("configmap/a-{tag}"), format!("configmap/b-{tag}")]
        );

        let others = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &[
                "get",
                "cm",
                "-l",
                &format!("app notin (web),run={tag}"),
                "-o",
                "name",
            ],
        );
        assert_eq!(
            others.stdout.trim(),
            format!("configmap/c-{tag}"),
            "kubectl {minor}: {}",
            others.stderr
        );

        let deleted = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["delete", "cm", "-l", &selector],
        );
        assert!(deleted.ok, "kubectl {minor}: {}", deleted.stderr);
        let left = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "cm", "-l", &format!("run={tag}"), "-o", "name"],
        );
        assert_eq!(
            left.stdout.trim(),
            format!("configmap/c-{tag}"),
            "kubectl {minor}"
        );

        let bad = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &[
                "get",
                "--raw",
                "/api/v1/namespaces/default/configmaps?labelSelector=app%20in%20web",
            ],
        );
        assert!(!bad.ok, "kubectl {minor}: malformed selector accepted");
        assert!(
            bad.stderr.contains("unable to parse requirement"),
            "kubectl {minor}: {}",
            bad.stderr
        );
    }
    server.stop();
}

#[test]
fn auth_whoami_and_can_i_answer_for_the_caller() {
    let (_dir, cache, server) = start_server();
    for minor in ["1.33", "1.32"] {
        let whoami = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
        );
        assert!(whoami.ok, "kubectl {minor}: {}", whoami.stderr);
        assert_eq!(whoami.stdout, "system:admin");
    }
    for minor in KUBECTL_MINORS {
        let can = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["auth", "can-i", "create", "deployments"],
        );
        assert!(can.ok, "kubectl {minor}: {}", can.stderr);
        assert_eq!(can.stdout.trim(), "yes");
        let list = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["auth", "can-i", "--list"],
        );
        assert!(
            list.ok && list.stdout.contains("*.*"),
            "kubectl {minor}: {}{}",
            list.stdout,
            list.stderr
        );
    }
    server.stop();
}

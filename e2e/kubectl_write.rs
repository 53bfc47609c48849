//! End to end: kubectl's write paths against a real server — create and apply with server-side
//! field validation (OpenAPI v3), apply changing and removing list items (strategic merge
//! patch), patch of all three types, label/annotate, diff (dry run), edit, explain, and the
//! Table output of `get`.

mod support;

use support::{KUBECTL_MINORS, kubectl, ok, start_server, write};

fn deployment(name: &str, image: &str, with_sidecar: bool) -> String {
    let sidecar = if with_sidecar {
        "      - name: sidecar\n        image: busybox:1.36\n"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        env: [{{name: A, value: \"1\"}}]\n{sidecar}"
    )
}

#[test]
fn apply_creates_changes_and_removes_list_items_with_strategic_merge_patch() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let name = format!("web-{}", minor.replace('.', "-"));
        let file = write(dir.path(), "d.yaml", &deployment(&name, "nginx:1.25", true));
        let created = ok(kubectl(minor, kc, &cache, &["apply", "-f", &file]), "apply");
        assert!(created.contains("created"), "{created}");

        let file = write(
            dir.path(),
            "d.yaml",
            &deployment(&name, "nginx:1.26", false),
        );
        let changed = ok(kubectl(minor, kc, &cache, &["apply", "-f", &file]), "apply");
        assert!(changed.contains("configured"), "{changed}");
        let images = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment",
                    &name,
                    "-o",
                    "jsonpath={.spec.template.spec.containers[*].image} {.metadata.generation}",
                ],
            ),
            "get",
        );
        assert_eq!(
            images, "nginx:1.26 2",
            "kubectl {minor}: sidecar removed, image changed"
        );

        let unchanged = ok(kubectl(minor, kc, &cache, &["apply", "-f", &file]), "apply");
        assert!(unchanged.contains("unchanged"), "{unchanged}");
    }
    server.stop();
}

/// Conformance: [sig-api-machinery] FieldValidation should detect unknown and duplicate fields of a typed object (unknown fields; duplicates are not detected yet).
#[test]
fn create_with_an_unknown_field_is_refused_by_strict_server_side_validation() {
    let (dir, cache, server) = start_server();
    for minor in KUBECTL_MINORS {
        let file = write(
            dir.path(),
            "bad.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndata:\n  a: b\ndataa:\n  c: d\n",
        );
        let out = kubectl(minor, &server.kubeconfig, &cache, &["create", "-f", &file]);
        assert!(!out.ok);
        assert!(
            out.stderr
                .contains("strict decoding error: unknown field \"dataa\""),
            "kubectl {minor}: {}",
            out.stderr
        );
        let absent = kubectl(
            minor,
            &server.kubeconfig,
            &cache,
            &["get", "configmap", "typo"],
        );
        assert!(absent.stderr.contains("not found"), "nothing stored");
    }
    server.stop();
}

#[test]
fn patch_of_every_type_and_label_annotate() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let name = format!("patched-{}", minor.replace('.', "-"));
        let file = write(dir.path(), "d.yaml", &deployment(&name, "nginx:1.25", true));
        ok(
            kubectl(minor, kc, &cache, &["create", "-f", &file]),
            "create",
        );
        let target = format!("deployment/{name}");
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "patch",
                    &target,
                    "--type=json",
                    "-p",
                    r#"[{"op":"replace","path":"/spec/replicas","value":5}]"#,
                ],
            ),
            "json patch",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "patch",
                    &target,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"annotations":{"merged":"yes"}}}"#,
                ],
            ),
            "merge patch",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "patch",
                    &target,
                    "-p",
                    r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}"#,
                ],
            ),
            "strategic merge patch",
        );
        ok(
            kubectl(minor, kc, &cache, &["label", &target, "tier=front"]),
            "label",
        );
        ok(
            kubectl(minor, kc, &cache, &["annotate", &target, "note=hello"]),
            "annotate",
        );
        let got = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    &target,
                    "-o",
                    "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].image} {.metadata.labels.tier} {.metadata.annotations.note} {.metadata.annotations.merged}",
                ],
            ),
            "get",
        );
        assert_eq!(
            got, "5 nginx:1.27 busybox:1.36 front hello yes",
            "kubectl {minor}: the merge key kept the sidecar"
        );

        ok(
            kubectl(minor, kc, &cache, &["label", &target, "tier-"]),
            "unlabel",
        );
        let labels = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["get", &target, "-o", "jsonpath={.metadata.labels}"],
            ),
            "get",
        );
        assert!(!labels.contains("tier"), "{labels}");

        let bad = kubectl(
            minor,
            kc,
            &cache,
            &[
                "patch",
                &target,
                "--type=json",
                "-p",
                r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
            ],
        );
        assert!(!bad.ok, "a failing JSON patch test op is refused");
        let broken = kubectl(
            minor,
            kc,
            &cache,
            &["patch", &target, "--type=merge", "-p", "{not json"],
        );
        assert!(!broken.ok);
    }
    server.stop();
}

/// Conformance: [sig-cli] Kubectl client Kubectl diff should check if kubectl diff finds a difference for Deployments.
#[test]
fn diff_shows_changes_without_persisting_them_and_edit_saves_them() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let name = format!("edited-{}", minor.replace('.', "-"));
        let file = write(
            dir.path(),
            "d.yaml",
            &deployment(&name, "nginx:1.25", false),
        );
        ok(kubectl(minor, kc, &cache, &["apply", "-f", &file]), "apply");
        let file = write(
            dir.path(),
            "d.yaml",
            &deployment(&name, "nginx:1.26", false),
        );
        let diff = kubectl(minor, kc, &cache, &["diff", "-f", &file]);
        assert!(!diff.ok, "kubectl diff exits 1 when there are differences");
        assert!(
            diff.stdout.contains("-        image: nginx:1.25")
                && diff.stdout.contains("+        image: nginx:1.26"),
            "{}",
            diff.stdout
        );
        assert!(
            !diff.stdout.contains("resourceVersion"),
            "a dry run keeps the version: {}",
            diff.stdout
        );
        let image = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment",
                    &name,
                    "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}",
                ],
            ),
            "get",
        );
        assert_eq!(image, "nginx:1.25", "the dry run persisted nothing");

        let editor = write(
            dir.path(),
            "editor.sh",
            "#!/bin/sh\nsed -i 's/image: nginx:1.25/image: nginx:1.28/' \"$1\"\n",
        );
        std::process::Command::new("chmod")
            .args(["+x", &editor])
            .status()
            .unwrap();
        let edited = support::kubectl_env(
            minor,
            kc,
            &cache,
            &["edit", &format!("deployment/{name}")],
            &[("EDITOR", &editor)],
        );
        assert!(edited.ok, "kubectl {minor} edit: {}", edited.stderr);
        let image = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment",
                    &name,
                    "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}",
                ],
            ),
            "get",
        );
        assert_eq!(image, "nginx:1.28");
    }
    server.stop();
}

#[test]
fn explain_prints_the_real_documentation() {
    let (_dir, cache, server) = start_server();
    for minor in KUBECTL_MINORS {
        let out = ok(
            kubectl(
                minor,
                &server.kubeconfig,
                &cache,
                &["explain", "pod.spec.containers.image"],
            ),
            "explain",
        );
        assert!(
            out.contains("Container image name"),
            "kubectl {minor}: {out}"
        );
        let out = ok(
            kubectl(
                minor,
                &server.kubeconfig,
                &cache,
                &["explain", "deployments.spec.strategy"],
            ),
            "explain",
        );
        assert!(out.contains("RollingUpdate"), "kubectl {minor}: {out}");
    }
    server.stop();
}

#[test]
fn get_prints_kube_apiserver_columns() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    let file = write(
        dir.path(),
        "d.yaml",
        &deployment("columns", "nginx:1.25", false),
    );
    ok(
        kubectl("1.33", kc, &cache, &["create", "-f", &file]),
        "create",
    );
    for minor in KUBECTL_MINORS {
        let table = ok(kubectl(minor, kc, &cache, &["get", "deployments"]), "get");
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            "kubectl {minor}"
        );
        assert!(table.contains("columns   0/2"), "{table}");
        let wide = ok(
            kubectl(minor, kc, &cache, &["get", "deployments", "-o", "wide"]),
            "get -o wide",
        );
        assert!(
            wide.lines()
                .next()
                .unwrap()
                .contains("CONTAINERS   IMAGES       SELECTOR"),
            "{wide}"
        );
        assert!(wide.contains("nginx:1.25   app=columns"), "{wide}");
        let all = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "namespaces",
                    "-A",
                    "--show-labels",
                    "--sort-by=.metadata.name",
                ],
            ),
            "get ns",
        );
        let names: Vec<&str> = all
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            names,
            ["default", "kube-node-lease", "kube-public", "kube-system"],
            "{all}"
        );
        assert!(all.contains("kubernetes.io/metadata.name=default"), "{all}");
        let yaml = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["get", "deployment", "columns", "-o", "yaml"],
            ),
            "get -o yaml",
        );
        assert!(
            yaml.contains("kind: Deployment") && yaml.contains("image: nginx:1.25"),
            "{yaml}"
        );
    }
    server.stop();
}

#[test]
fn scale_reads_and_writes_the_scale_subresource() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    let file = write(
        dir.path(),
        "d.yaml",
        &deployment("scaled", "nginx:1.25", false),
    );
    ok(
        kubectl("1.33", kc, &cache, &["create", "-f", &file]),
        "create",
    );
    for minor in KUBECTL_MINORS {
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["scale", "deployment/scaled", "--replicas=4"],
            ),
            "scale",
        );
        // --current-replicas reads the Scale and PUTs it back (without a Content-Type).
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "scale",
                    "deployment/scaled",
                    "--current-replicas=4",
                    "--replicas=6",
                ],
            ),
            "scale --current-replicas",
        );
        let stale = kubectl(
            minor,
            kc,
            &cache,
            &[
                "scale",
                "deployment/scaled",
                "--current-replicas=4",
                "--replicas=9",
            ],
        );
        assert!(
            !stale.ok,
            "kubectl {minor}: the precondition no longer holds"
        );
        let replicas = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment/scaled",
                    "-o",
                    "jsonpath={.spec.replicas}",
                ],
            ),
            "get",
        );
        assert_eq!(replicas, "6");
        let scale = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "--raw",
                    "/apis/apps/v1/namespaces/default/deployments/scaled/scale",
                ],
            ),
            "get scale",
        );
        let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        assert_eq!(scale["status"]["selector"], "app=scaled");
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["scale", "deployment/scaled", "--replicas=2"],
            ),
            "scale back",
        );
    }
    server.stop();
}

#[test]
fn apply_server_side_reports_conflicts_and_force_takes_ownership() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let name = format!("ssa-{}", minor.replace('.', "-"));
        let file = write(dir.path(), "d.yaml", &deployment(&name, "nginx:1.25", true));
        let applied = ok(
            kubectl(minor, kc, &cache, &["apply", "--server-side", "-f", &file]),
            "apply --server-side",
        );
        assert!(applied.contains("serverside-applied"), "{applied}");
        let managed = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment",
                    &name,
                    "-o",
                    "jsonpath={.metadata.managedFields[0].manager} {.metadata.managedFields[0].operation}",
                ],
            ),
            "managedFields",
        );
        assert_eq!(managed, "kubectl Apply");

        // Another manager applies only the replica count.
        let other = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 5\n"
        );
        let file2 = write(dir.path(), "d2.yaml", &other);
        let conflict = kubectl(
            minor,
            kc,
            &cache,
            &[
                "apply",
                "--server-side",
                "--field-manager=other",
                "-f",
                &file2,
            ],
        );
        assert!(!conflict.ok, "kubectl {minor}: a conflict");
        assert!(
            conflict.stderr.contains("conflict with \"kubectl\"")
                && conflict.stderr.contains(".spec.replicas"),
            "kubectl {minor}: {}",
            conflict.stderr
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "apply",
                    "--server-side",
                    "--field-manager=other",
                    "--force-conflicts",
                    "-f",
                    &file2,
                ],
            ),
            "apply --force-conflicts",
        );
        let replicas = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment",
                    &name,
                    "-o",
                    "jsonpath={.spec.replicas}",
                ],
            ),
            "get",
        );
        assert_eq!(replicas, "5");

        // Removing the sidecar from kubectl's manifest removes it: kubectl owned it alone.
        let file = write(
            dir.path(),
            "d.yaml",
            &deployment(&name, "nginx:1.25", false).replace("  replicas: 2\n", ""),
        );
        ok(
            kubectl(minor, kc, &cache, &["apply", "--server-side", "-f", &file]),
            "re-apply without the sidecar",
        );
        let images = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "deployment",
                    &name,
                    "-o",
                    "jsonpath={.spec.template.spec.containers[*].name} {.spec.replicas}",
                ],
            ),
            "get",
        );
        assert_eq!(
            images, "web 5",
            "kubectl {minor}: the sidecar is gone, replicas stay with their owner"
        );
    }
    server.stop();
}

#[test]
fn generators_send_protobuf_bodies_that_the_server_decodes() {
    let (_dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let suffix = minor.replace('.', "-");
        let ns = format!("gen-{suffix}");
        ok(
            kubectl(minor, kc, &cache, &["create", "namespace", &ns]),
            "create namespace",
        );
        let cases: Vec<Vec<String>> = vec![
            vec![
                "configmap".into(),
                "settings".into(),
                "--from-literal=color=blue".into(),
            ],
            vec![
                "secret".into(),
                "generic".into(),
                "token".into(),
                "--from-literal=key=s3cr3t".into(),
            ],
            vec![
                "deployment".into(),
                "web".into(),
                "--image=nginx:1.25".into(),
                "--replicas=0".into(),
            ],
            vec![
                "service".into(),
                "clusterip".into(),
                "web".into(),
                "--tcp=80:8080".into(),
            ],
            vec!["job".into(), "once".into(), "--image=busybox".into()],
            vec!["serviceaccount".into(), "robot".into()],
        ];
        for case in &cases {
            let mut args = vec!["-n", &ns, "create"];
            args.extend(case.iter().map(String::as_str));
            ok(
                kubectl(minor, kc, &cache, &args),
                &format!("kubectl {minor} create {}", case[0]),
            );
        }
        let got = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "get",
                    "configmap/settings",
                    "deployment/web",
                    "-o",
                    "jsonpath={.items[0].data.color} {.items[1].spec.replicas} {.items[1].spec.template.spec.containers[0].image}",
                ],
            ),
            "get",
        );
        assert_eq!(got, "blue 0 nginx:1.25", "kubectl {minor}");
        let secret = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "get",
                    "secret",
                    "token",
                    "-o",
                    "jsonpath={.data.key}",
                ],
            ),
            "get secret",
        );
        assert_eq!(secret, "czNjcjN0", "base64 of s3cr3t");
        let port = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "get",
                    "service",
                    "web",
                    "-o",
                    "jsonpath={.spec.ports[0].port}:{.spec.ports[0].targetPort}",
                ],
            ),
            "get service",
        );
        assert_eq!(port, "80:8080");
    }
    server.stop();
}

#[test]
fn describe_and_get_all_show_what_kubectl_users_expect() {
    let (_dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let ns = format!("describe-{}", minor.replace('.', "-"));
        ok(
            kubectl(minor, kc, &cache, &["create", "namespace", &ns]),
            "create ns",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "create",
                    "deployment",
                    "web",
                    "--image=nginx:1.25",
                    "--replicas=2",
                ],
            ),
            "create deployment",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "expose",
                    "deployment",
                    "web",
                    "--port=80",
                    "--target-port=8080",
                ],
            ),
            "expose",
        );

        let deployment = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["-n", &ns, "describe", "deployment", "web"],
            ),
            "describe deployment",
        );
        assert!(
            deployment.contains("RollingUpdateStrategy:  25% max unavailable, 25% max surge"),
            "defaulted strategy: {deployment}"
        );
        assert!(
            deployment.contains("Replicas:               2 desired"),
            "{deployment}"
        );
        let service = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["-n", &ns, "describe", "service", "web"],
            ),
            "describe service",
        );
        assert!(
            service.contains("TargetPort:               8080/TCP")
                || service.contains("TargetPort:        8080/TCP"),
            "{service}"
        );
        let ip = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "-n",
                    &ns,
                    "get",
                    "service",
                    "web",
                    "-o",
                    "jsonpath={.spec.clusterIP}",
                ],
            ),
            "get ip",
        );
        assert!(ip.starts_with("10.43."), "an allocated cluster IP: {ip}");
        let namespace = ok(
            kubectl(minor, kc, &cache, &["describe", "namespace", &ns]),
            "describe ns",
        );
        assert!(namespace.contains("Status:       Active"), "{namespace}");

        let all = ok(
            kubectl(minor, kc, &cache, &["-n", &ns, "get", "all"]),
            "get all",
        );
        assert!(
            all.contains("service/web") && all.contains("deployment.apps/web"),
            "{all}"
        );
    }
    server.stop();
}

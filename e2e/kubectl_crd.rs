//! End to end: a CustomResourceDefinition round trip with real kubectl — the definition
//! becomes Established, its kind is served (discovery, Table columns from
//! additionalPrinterColumns, status and scale subresources, schema validation, merge patches,
//! explain), and deleting the definition deletes its objects.

mod support;

use support::{KUBECTL_MINORS, kubectl, ok, start_server, write};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the cron tab runs.
            required: [cronSpec]
            properties:
              cronSpec: {type: string, description: The schedule in cron format.}
              image: {type: string}
              replicas: {type: integer, minimum: 0}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

fn crontab(name: &str, replicas: i64) -> String {
    format!(
        "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {{name: {name}}}\nspec: {{cronSpec: \"*/5 * * * *\", image: cron:1, replicas: {replicas}}}\n"
    )
}

/// Conformance: [sig-api-machinery] CustomResourceDefinition resources [Privileged:ClusterAdmin] Simple CustomResourceDefinition creating/deleting custom resource definition objects works; getting/updating/patching custom resource definition status sub-resource works.
#[test]
fn custom_resource_definition_round_trip() {
    let (dir, cache, server) = start_server();
    let kc = &server.kubeconfig;
    for minor in KUBECTL_MINORS {
        let crd = write(dir.path(), "crd.yaml", CRD);
        ok(
            kubectl(minor, kc, &cache, &["apply", "-f", &crd]),
            "apply crd",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "wait",
                    "--for=condition=Established",
                    "crd/crontabs.stable.example.com",
                    "--timeout=30s",
                ],
            ),
            "wait established",
        );
        let resources = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["api-resources", "--api-group=stable.example.com"],
            ),
            "api-resources",
        );
        assert!(
            resources.contains("crontabs") && resources.contains("ct"),
            "{resources}"
        );

        let file = write(dir.path(), "ct.yaml", &crontab("nightly", 1));
        ok(
            kubectl(minor, kc, &cache, &["apply", "-f", &file]),
            "apply cr",
        );
        let table = ok(kubectl(minor, kc, &cache, &["get", "ct"]), "get ct");
        let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "SPEC", "REPLICAS", "AGE"], "{table}");
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(&row[..2], ["nightly", "*/5"], "{table}");
        assert!(
            row.last().unwrap().ends_with('s'),
            "the age is a duration: {table}"
        );

        let file = write(dir.path(), "ct.yaml", &crontab("nightly", 2));
        let applied = ok(
            kubectl(minor, kc, &cache, &["apply", "-f", &file]),
            "re-apply cr (merge patch)",
        );
        assert!(applied.contains("configured"), "{applied}");
        ok(
            kubectl(minor, kc, &cache, &["scale", "ct/nightly", "--replicas=3"]),
            "scale cr",
        );
        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "patch",
                    "ct/nightly",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    r#"{"status":{"replicas":3}}"#,
                ],
            ),
            "patch status",
        );
        let got = ok(
            kubectl(
                minor,
                kc,
                &cache,
                &[
                    "get",
                    "ct/nightly",
                    "-o",
                    "jsonpath={.spec.replicas} {.status.replicas}",
                ],
            ),
            "get",
        );
        assert_eq!(got, "3 3");

        let invalid = kubectl(
            minor,
            kc,
            &cache,
            &[
                "patch",
                "ct/nightly",
                "--type=merge",
                "-p",
                r#"{"spec":{"replicas":-1}}"#,
            ],
        );
        assert!(
            !invalid.ok && invalid.stderr.contains("spec.replicas"),
            "{}",
            invalid.stderr
        );
        let missing = write(
            dir.path(),
            "bad.yaml",
            "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: bad}\nspec: {image: x}\n",
        );
        let refused = kubectl(minor, kc, &cache, &["create", "-f", &missing]);
        assert!(
            !refused.ok && refused.stderr.contains("spec.cronSpec: Required value"),
            "{}",
            refused.stderr
        );
        let smp = kubectl(
            minor,
            kc,
            &cache,
            &[
                "patch",
                "ct/nightly",
                "--type=strategic",
                "-p",
                r#"{"spec":{"image":"y"}}"#,
            ],
        );
        assert!(!smp.ok, "strategic merge patch is not for custom resources");

        let explained = ok(
            kubectl(minor, kc, &cache, &["explain", "crontab.spec.cronSpec"]),
            "explain",
        );
        assert!(
            explained.contains("The schedule in cron format."),
            "{explained}"
        );

        ok(
            kubectl(
                minor,
                kc,
                &cache,
                &["delete", "crd", "crontabs.stable.example.com"],
            ),
            "delete crd",
        );
        let gone = kubectl(
            minor,
            kc,
            &cache,
            &[
                "get",
                "--raw",
                "/apis/stable.example.com/v1/namespaces/default/crontabs",
            ],
        );
        assert!(!gone.ok, "the kind is no longer served");
    }
    server.stop();
}

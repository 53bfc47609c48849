//! End to end: Jobs and CronJobs in a `skiff server --simulate-nodes 2` process, driven by
//! kubectl. Simulated pods with `restartPolicy: Never` succeed after about five seconds, so
//! jobs complete for real; the one real way to fail a job here is its active deadline.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{KUBECTL_MINORS, eventually, kubectl, ok, start_server_with, write};

fn get(kc: &Path, cache: &Path, args: &[&str]) -> String {
    kubectl("1.33", kc, cache, args).stdout
}

/// The row of `kubectl get <kind>` for `name`, split on whitespace.
fn row(kc: &Path, cache: &Path, minor: &str, kind: &str, name: &str) -> Vec<String> {
    let out = ok(
        kubectl(minor, kc, cache, &["get", kind, name, "--no-headers"]),
        "get",
    );
    out.split_whitespace().map(str::to_owned).collect()
}

/// Conformance: "[sig-apps] Job should delete a job" (and the completion half of "Job should
/// run a job to completion when tasks sometimes fail and are locally restarted", without the
/// failures): `kubectl create job` runs to completion, `kubectl wait --for=condition=complete`
/// returns, `kubectl get jobs` shows `Complete 1/1` for every kubectl minor, the pod shows
/// `Completed`, and deleting the Job removes its pods.
#[test]
fn job_should_run_to_completion_and_be_deleted() {
    let (_dir, cache, server) = start_server_with(&["--simulate-nodes", "2"]);
    let kc = &server.kubeconfig;
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["create", "job", "pi", "--image=busybox", "--", "true"],
        ),
        "create job",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "wait",
                "--for=condition=complete",
                "job/pi",
                "--timeout=90s",
            ],
        ),
        "wait for complete",
    );
    for minor in KUBECTL_MINORS {
        let cells = row(kc, &cache, minor, "jobs", "pi");
        // NAME STATUS COMPLETIONS DURATION AGE (the server renders the Table).
        assert_eq!(
            cells[1..3],
            ["Complete", "1/1"],
            "kubectl {minor}: {cells:?}"
        );
    }
    let pods = ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["get", "pods", "-l", "job-name=pi", "--no-headers"],
        ),
        "get pods",
    );
    assert_eq!(pods.lines().count(), 1, "{pods}");
    assert!(pods.contains("Completed"), "{pods}");
    let described = ok(
        kubectl("1.33", kc, &cache, &["describe", "job", "pi"]),
        "describe",
    );
    assert!(described.contains("1 Succeeded"), "{described}");
    assert!(described.contains("SuccessfulCreate"), "{described}");
    assert!(described.contains("Completed"), "{described}");

    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["delete", "job", "pi", "--timeout=60s"],
        ),
        "delete job",
    );
    eventually(
        Duration::from_secs(60),
        "the job's pods to be deleted",
        || {
            get(
                kc,
                &cache,
                &["get", "pods", "-l", "job-name=pi", "-o", "name"],
            )
            .trim()
            .is_empty()
        },
    );
    server.stop();
}

/// Conformance: "[sig-apps] Job should create pods for an Indexed job with completion
/// indexes and specified hostname": completions 3, parallelism 2, each pod annotated with
/// its index and named `<job>-<index>` as host, `completedIndexes` reaching `0-2`.
#[test]
fn job_should_create_pods_for_an_indexed_job_with_completion_indexes_and_hostname() {
    let (dir, cache, server) = start_server_with(&["--simulate-nodes", "2"]);
    let kc = &server.kubeconfig;
    let manifest = write(
        dir.path(),
        "indexed.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: indexed
spec:
  completions: 3
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      subdomain: workers
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo $JOB_COMPLETION_INDEX"]
"#,
    );
    ok(
        kubectl("1.33", kc, &cache, &["apply", "-f", &manifest]),
        "apply",
    );
    // Parallelism holds: two pods first, for indexes 0 and 1.
    eventually(Duration::from_secs(60), "two pods", || {
        get(
            kc,
            &cache,
            &["get", "pods", "-l", "job-name=indexed", "-o", "name"],
        )
        .lines()
        .count()
            == 2
    });
    let first = get(
        kc,
        &cache,
        &[
            "get",
            "pods",
            "-l",
            "job-name=indexed",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{" "}{end}"#,
        ],
    );
    let mut first: Vec<&str> = first.split_whitespace().collect();
    first.sort_unstable();
    assert_eq!(first, ["0", "1"]);
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "wait",
                "--for=condition=complete",
                "job/indexed",
                "--timeout=120s",
            ],
        ),
        "wait for complete",
    );
    let indexes = get(
        kc,
        &cache,
        &[
            "get",
            "job",
            "indexed",
            "-o",
            "jsonpath={.status.completedIndexes}",
        ],
    );
    assert_eq!(indexes.trim(), "0-2");
    let hosts = get(
        kc,
        &cache,
        &[
            "get",
            "pods",
            "-l",
            "job-name=indexed",
            "-o",
            r#"jsonpath={range .items[*]}{.spec.hostname}.{.spec.subdomain}{" "}{end}"#,
        ],
    );
    let mut hosts: Vec<&str> = hosts.split_whitespace().collect();
    hosts.sort_unstable();
    assert_eq!(
        hosts,
        [
            "indexed-0.workers",
            "indexed-1.workers",
            "indexed-2.workers"
        ]
    );
    for minor in KUBECTL_MINORS {
        let cells = row(kc, &cache, minor, "jobs", "indexed");
        // NAME STATUS COMPLETIONS DURATION AGE (the server renders the Table).
        assert_eq!(
            cells[1..3],
            ["Complete", "3/3"],
            "kubectl {minor}: {cells:?}"
        );
    }
    server.stop();
}

/// A Job whose pods outlive `activeDeadlineSeconds` fails with `DeadlineExceeded` (the one
/// real failure simulated nodes allow), and a finished Job with `ttlSecondsAfterFinished` is
/// deleted with its pods by the TTL-after-finished controller and the garbage collector.
#[test]
fn job_should_fail_past_its_deadline_and_finished_jobs_expire() {
    let (dir, cache, server) = start_server_with(&["--simulate-nodes", "2"]);
    let kc = &server.kubeconfig;
    let manifest = write(
        dir.path(),
        "jobs.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: late
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
---
apiVersion: batch/v1
kind: Job
metadata:
  name: brief
spec:
  ttlSecondsAfterFinished: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
"#,
    );
    ok(
        kubectl("1.33", kc, &cache, &["apply", "-f", &manifest]),
        "apply",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "wait",
                "--for=condition=failed",
                "job/late",
                "--timeout=90s",
            ],
        ),
        "wait for failed",
    );
    let reason = get(
        kc,
        &cache,
        &[
            "get",
            "job",
            "late",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Failed")].reason}"#,
        ],
    );
    assert_eq!(reason.trim(), "DeadlineExceeded");
    for minor in KUBECTL_MINORS {
        let cells = row(kc, &cache, minor, "jobs", "late");
        // NAME STATUS COMPLETIONS DURATION AGE (the server renders the Table).
        assert_eq!(cells[1..3], ["Failed", "0/1"], "kubectl {minor}: {cells:?}");
    }
    // The brief Job completes, then goes, and so do its pods.
    eventually(
        Duration::from_secs(120),
        "the expired job to be deleted",
        || {
            let out = kubectl("1.33", kc, &cache, &["get", "job", "brief"]);
            !out.ok && out.stderr.contains("NotFound")
        },
    );
    eventually(
        Duration::from_secs(60),
        "the expired job's pods to be deleted",
        || {
            get(
                kc,
                &cache,
                &["get", "pods", "-l", "job-name=brief", "-o", "name"],
            )
            .trim()
            .is_empty()
        },
    );
    server.stop();
}

/// Conformance: "[sig-apps] CronJob should not schedule jobs when suspended" (the suspended
/// CronJob starts nothing while the other fires), plus `kubectl create cronjob
/// --schedule="*/1 * * * *"` starting a Job within about a minute that completes, `kubectl
/// get cronjobs` showing its last schedule, and `kubectl create job --from=cronjob/...`.
#[test]
fn cronjob_should_schedule_jobs_and_not_when_suspended() {
    let (_dir, cache, server) = start_server_with(&["--simulate-nodes", "2"]);
    let kc = &server.kubeconfig;
    for name in ["hello", "held"] {
        ok(
            kubectl(
                "1.33",
                kc,
                &cache,
                &[
                    "create",
                    "cronjob",
                    name,
                    "--image=busybox",
                    "--schedule=*/1 * * * *",
                    "--",
                    "true",
                ],
            ),
            "create cronjob",
        );
    }
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "patch",
                "cronjob",
                "held",
                "-p",
                r#"{"spec":{"suspend":true}}"#,
            ],
        ),
        "suspend",
    );
    // A manual run from the template, at once.
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &["create", "job", "manual", "--from=cronjob/hello"],
        ),
        "create job --from",
    );
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "wait",
                "--for=condition=complete",
                "job/manual",
                "--timeout=90s",
            ],
        ),
        "wait for the manual job",
    );
    // The schedule fires within a minute (plus slack for a loaded machine).
    let mut scheduled = String::new();
    eventually(Duration::from_secs(80), "a scheduled job", || {
        let names = get(kc, &cache, &["get", "jobs", "-o", "name"]);
        scheduled = names
            .lines()
            .map(|l| l.trim_start_matches("job.batch/"))
            .find(|n| n.starts_with("hello-"))
            .unwrap_or_default()
            .to_owned();
        !scheduled.is_empty()
    });
    let minutes: i64 = scheduled.trim_start_matches("hello-").parse().unwrap();
    let stamp = get(
        kc,
        &cache,
        &[
            "get",
            "job",
            &scheduled,
            "-o",
            r#"jsonpath={.metadata.annotations.batch\.kubernetes\.io/cronjob-scheduled-timestamp}"#,
        ],
    );
    let stamp: k8s_openapi::jiff::Timestamp = stamp.trim().parse().unwrap();
    assert_eq!(stamp.as_second(), minutes * 60);
    ok(
        kubectl(
            "1.33",
            kc,
            &cache,
            &[
                "wait",
                "--for=condition=complete",
                &format!("job/{scheduled}"),
                "--timeout=90s",
            ],
        ),
        "wait for the scheduled job",
    );
    eventually(Duration::from_secs(30), "lastSuccessfulTime", || {
        !get(
            kc,
            &cache,
            &[
                "get",
                "cronjob",
                "hello",
                "-o",
                "jsonpath={.status.lastSuccessfulTime}",
            ],
        )
        .trim()
        .is_empty()
    });
    let last = get(
        kc,
        &cache,
        &[
            "get",
            "cronjob",
            "hello",
            "-o",
            "jsonpath={.status.lastScheduleTime}",
        ],
    );
    let last: k8s_openapi::jiff::Timestamp = last.trim().parse().unwrap();
    assert!(last.as_second() >= minutes * 60, "{last}");
    for minor in KUBECTL_MINORS {
        // NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST-SCHEDULE AGE
        let cells = row(kc, &cache, minor, "cronjobs", "hello");
        assert!(
            cells.contains(&"False".to_owned()),
            "kubectl {minor}: {cells:?}"
        );
        let held = row(kc, &cache, minor, "cronjobs", "held");
        assert!(
            held.contains(&"True".to_owned()),
            "kubectl {minor}: {held:?}"
        );
    }
    let held_jobs = get(kc, &cache, &["get", "jobs", "-o", "name"]);
    assert!(!held_jobs.contains("held-"), "{held_jobs}");
    let events = get(
        kc,
        &cache,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=hello",
        ],
    );
    assert!(
        events.contains("SuccessfulCreate") && events.contains("SawCompletedJob"),
        "{events}"
    );
    server.stop();
}

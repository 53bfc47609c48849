//! The Job, TTL-after-finished and CronJob controllers against a real in-process API server.
//! No scheduler or node agent runs here, so the tests play kubelet by patching pod status to
//! Running, Succeeded or Failed.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use skiff_testkit::TestServer;
use skiff_testkit::{eventually, eventually_within};
use skiff_workloads::Clock;
use skiff_workloads::Informers;
use skiff_workloads::job::{COMPLETION_INDEX, TRACKING_FINALIZER};
use tokio_util::sync::CancellationToken;

struct Env {
    server: TestServer,
    client: Client,
    namespace: String,
    shutdown: CancellationToken,
}

impl Env {
    async fn start(namespace: &str) -> Env {
        Env::start_with_clock(namespace, Clock::system()).await
    }

    async fn start_with_clock(namespace: &str, clock: Clock) -> Env {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let server = TestServer::start().await.unwrap();
        let client = server.client();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
            )
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(skiff_workloads::run_with_clock(
            Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
            clock,
        ));
        Env {
            server,
            client,
            namespace: namespace.to_owned(),
            shutdown,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Plays kubelet until the returned token is cancelled: every live pod that is not
    /// finished gets the phase `decide` returns for it (`None`: leave it).
    fn kubelet(
        &self,
        decide: impl Fn(&Pod) -> Option<&'static str> + Send + 'static,
    ) -> CancellationToken {
        let stop = CancellationToken::new();
        let pods: Api<Pod> = self.api();
        let token = stop.clone();
        tokio::spawn(async move {
            while !token.is_cancelled() {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for pod in list {
                        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
                        if pod.metadata.deletion_timestamp.is_some()
                            || matches!(phase.as_deref(), Some("Succeeded" | "Failed"))
                        {
                            continue;
                        }
                        if let Some(next) = decide(&pod)
                            && phase.as_deref() != Some(next.split(':').next().unwrap_or(next))
                        {
                            set_phase(&pods, &pod, next).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        stop
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server.stop().await;
    }
}

/// Sets a pod's phase; `Failed:<code>` fails it with its container exited with `code`.
async fn set_phase(pods: &Api<Pod>, pod: &Pod, phase: &str) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", now).unwrap();
    let ready = if phase == "Running" { "True" } else { "False" };
    let (phase, exit_code) = match phase.split_once(':') {
        Some((phase, code)) => (phase, code.parse::<i32>().unwrap()),
        None => (phase, i32::from(phase == "Failed")),
    };
    let mut patch = json!({"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now}],
    }});
    if phase == "Failed" || phase == "Succeeded" {
        patch["status"]["containerStatuses"] = json!([{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "finishedAt": now}},
        }]);
    }
    let _ = pods
        .patch_status(
            pod.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await;
}

fn job(name: &str, spec: Value) -> Job {
    let mut spec = spec;
    spec["template"] = json!({
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox"}],
        },
    });
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn create_job(env: &Env, name: &str, spec: Value) -> Job {
    env.api::<Job>()
        .create(&PostParams::default(), &job(name, spec))
        .await
        .unwrap()
}

fn condition(job: &Job, type_: &str) -> Option<(String, Option<String>)> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn is_true(job: &Job, type_: &str) -> bool {
    condition(job, type_).is_some_and(|(status, _)| status == "True")
}

async fn job_pods(env: &Env, name: &str) -> Vec<Pod> {
    env.api::<Pod>()
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
        .await
        .unwrap()
        .items
}

fn is_live(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

async fn event_reasons(env: &Env, kind: &str, name: &str) -> Vec<String> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some(kind)
                && e.involved_object.name.as_deref() == Some(name)
        })
        .filter_map(|e| e.reason)
        .collect()
}

async fn finished(env: &Env, name: &str, type_: &str) -> Job {
    let api = env.api::<Job>();
    eventually(&format!("job {name} to be {type_}"), || async {
        let job = api.get(name).await.ok()?;
        is_true(&job, type_).then_some(job)
    })
    .await
}

#[tokio::test]
async fn completions_run_at_most_parallelism_pods_at_a_time() {
    let env = Env::start("parallel").await;
    let created = create_job(&env, "work", json!({"completions": 4, "parallelism": 2})).await;
    // The API server's job-selector defaulting labels the template; pods inherit it.
    let uid = created.metadata.uid.clone().unwrap();
    let pods = eventually("two pods", || async {
        let pods = job_pods(&env, "work").await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    for pod in &pods {
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid);
        assert_eq!(labels["controller-uid"], uid);
        assert_eq!(labels["job-name"], "work");
        assert!(
            pod.metadata
                .finalizers
                .as_ref()
                .unwrap()
                .contains(&TRACKING_FINALIZER.to_owned())
        );
        assert!(pod.metadata.generate_name.as_deref() == Some("work-"));
    }
    let job = eventually("status.active 2", || async {
        let job = env.api::<Job>().get("work").await.ok()?;
        (job.status.as_ref()?.active == Some(2)).then_some(job)
    })
    .await;
    assert!(job.status.as_ref().unwrap().start_time.is_some());
    // Succeed pods one round at a time and watch parallelism hold.
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    let most_live = std::sync::atomic::AtomicUsize::new(0);
    let done = eventually("the job to complete", || async {
        let live = job_pods(&env, "work")
            .await
            .iter()
            .filter(|p| is_live(p))
            .count();
        most_live.fetch_max(live, std::sync::atomic::Ordering::Relaxed);
        let job = env.api::<Job>().get("work").await.ok()?;
        is_true(&job, "Complete").then_some(job)
    })
    .await;
    let most_live = most_live.into_inner();
    kubelet.cancel();
    assert!(most_live <= 2, "{most_live} pods ran at once");
    let status = done.status.clone().unwrap();
    assert_eq!(status.succeeded, Some(4));
    assert_eq!(status.active, None);
    assert!(status.completion_time.is_some());
    assert_eq!(
        condition(&done, "Complete").unwrap().1.as_deref(),
        Some("CompletionsReached")
    );
    assert!(condition(&done, "SuccessCriteriaMet").is_some());
    let uncounted = status.uncounted_terminated_pods.unwrap();
    assert!(uncounted.succeeded.unwrap_or_default().is_empty());
    let pods = job_pods(&env, "work").await;
    assert_eq!(pods.len(), 4, "no pod beyond completions");
    assert!(
        pods.iter()
            .all(|p| p.metadata.finalizers.as_ref().is_none_or(Vec::is_empty))
    );
    let reasons = event_reasons(&env, "Job", "work").await;
    assert!(
        reasons.iter().filter(|r| *r == "SuccessfulCreate").count() == 4,
        "{reasons:?}"
    );
    assert!(reasons.contains(&"Completed".to_owned()), "{reasons:?}");
    env.stop().await;
}

/// Deleting a Job leaves no pod held by its tracking finalizer (here without a garbage
/// collector, so the pods stay, released).
#[tokio::test]
async fn a_deleted_jobs_pods_lose_the_tracking_finalizer() {
    let env = Env::start("deleted").await;
    create_job(&env, "gone", json!({"parallelism": 2, "completions": 2})).await;
    let kubelet = env.kubelet(|_| Some("Running"));
    eventually("two running pods", || async {
        let pods = job_pods(&env, "gone").await;
        let running = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == 2).then_some(())
    })
    .await;
    env.api::<Job>()
        .delete("gone", &kube::api::DeleteParams::background())
        .await
        .unwrap();
    eventually("the finalizers released", || async {
        let pods = job_pods(&env, "gone").await;
        let held = pods.iter().any(|p| {
            p.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == TRACKING_FINALIZER)
        });
        (pods.len() == 2 && !held).then_some(())
    })
    .await;
    kubelet.cancel();
    env.stop().await;
}

#[tokio::test]
async fn a_work_queue_job_completes_when_one_pod_succeeds_and_the_rest_finish() {
    let env = Env::start("queue").await;
    create_job(&env, "queue", json!({"parallelism": 3})).await;
    eventually("three pods", || async {
        (job_pods(&env, "queue").await.len() == 3).then_some(())
    })
    .await;
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    let done = finished(&env, "queue", "Complete").await;
    kubelet.cancel();
    assert_eq!(done.status.unwrap().succeeded, Some(3));
    assert_eq!(job_pods(&env, "queue").await.len(), 3);
    env.stop().await;
}

#[tokio::test]
async fn backoff_limit_fails_the_job_after_backed_off_retries() {
    let env = Env::start("backoff").await;
    let started = Instant::now();
    create_job(&env, "flaky", json!({"backoffLimit": 2})).await;
    let kubelet = env.kubelet(|_| Some("Failed"));
    let failed = finished(&env, "flaky", "Failed").await;
    kubelet.cancel();
    // Replacements wait 1 s, then 2 s.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let status = failed.status.clone().unwrap();
    assert_eq!(status.failed, Some(3));
    assert_eq!(status.succeeded, None);
    assert_eq!(
        condition(&failed, "Failed").unwrap().1.as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(
        condition(&failed, "FailureTarget").unwrap().1.as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert!(status.completion_time.is_none());
    assert_eq!(job_pods(&env, "flaky").await.len(), 3);
    let reasons = event_reasons(&env, "Job", "flaky").await;
    assert!(
        reasons.contains(&"BackoffLimitExceeded".to_owned()),
        "{reasons:?}"
    );
    env.stop().await;
}

/// Conformance: "[sig-apps] Job should allow to use the pod failure policy on exit code to
/// fail the job early" (and an Ignore rule keeping failures off the count).
#[tokio::test]
async fn a_pod_failure_policy_ignores_or_fails_the_job_by_exit_code() {
    let env = Env::start("policy").await;
    create_job(
        &env,
        "policed",
        json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        ]}}),
    )
    .await;
    // Exit code 1 is ignored: pods are replaced without counting (or backing off).
    let kubelet = env.kubelet(|_| Some("Failed:1"));
    eventually("three ignored failures", || async {
        let failed = job_pods(&env, "policed")
            .await
            .iter()
            .filter(|p| !is_live(p))
            .count();
        (failed >= 3).then_some(())
    })
    .await;
    kubelet.cancel();
    let job = env.api::<Job>().get("policed").await.unwrap();
    assert_eq!(job.status.clone().unwrap().failed, None);
    assert!(!is_true(&job, "FailureTarget"));
    // Exit code 42 fails the Job at once, far below the backoff limit.
    let kubelet = env.kubelet(|_| Some("Failed:42"));
    let failed = finished(&env, "policed", "Failed").await;
    kubelet.cancel();
    assert_eq!(
        condition(&failed, "Failed").unwrap().1.as_deref(),
        Some("PodFailurePolicy")
    );
    let message = failed
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Failed")
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains("failed with exit code 42 matching FailJob rule at index 1"),
        "{message}"
    );
    assert_eq!(failed.status.unwrap().failed, Some(1));
    env.stop().await;
}

fn index_of(pod: &Pod) -> i32 {
    pod.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX]
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_indexed_job_reports_completed_indexes() {
    let env = Env::start("indexed").await;
    create_job(
        &env,
        "idx",
        json!({"completions": 3, "parallelism": 2, "completionMode": "Indexed"}),
    )
    .await;
    let pods = eventually("pods for indexes 0 and 1", || async {
        let pods = job_pods(&env, "idx").await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    let indexes: BTreeSet<i32> = pods.iter().map(index_of).collect();
    assert_eq!(indexes, [0, 1].into_iter().collect());
    for pod in &pods {
        let index = index_of(pod);
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()[COMPLETION_INDEX],
            index.to_string()
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(
            spec.hostname.as_deref(),
            Some(format!("idx-{index}").as_str())
        );
        let env_var = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env_var.name, "JOB_COMPLETION_INDEX");
        assert!(
            pod.metadata
                .name
                .as_ref()
                .unwrap()
                .starts_with(&format!("idx-{index}-"))
        );
    }
    // Only index 1 succeeds at first: index 2 takes its place.
    let kubelet = env.kubelet(|pod| (index_of(pod) == 1).then_some("Succeeded"));
    let job = eventually("completedIndexes 1 and a pod for index 2", || async {
        let job = env.api::<Job>().get("idx").await.ok()?;
        let live: BTreeSet<i32> = job_pods(&env, "idx")
            .await
            .iter()
            .filter(|p| is_live(p))
            .map(index_of)
            .collect();
        (job.status.as_ref()?.completed_indexes.as_deref() == Some("1")
            && live == [0, 2].into_iter().collect())
        .then_some(job)
    })
    .await;
    assert_eq!(job.status.unwrap().succeeded, Some(1));
    kubelet.cancel();
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    let done = finished(&env, "idx", "Complete").await;
    kubelet.cancel();
    let status = done.status.unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
    env.stop().await;
}

/// A success policy met by index 0 alone completes the Job and deletes the other pods.
#[tokio::test]
async fn a_success_policy_completes_an_indexed_job_early() {
    let env = Env::start("success").await;
    create_job(
        &env,
        "leader",
        json!({
            "completions": 3, "parallelism": 3, "completionMode": "Indexed",
            "successPolicy": {"rules": [{"succeededIndexes": "0"}]},
        }),
    )
    .await;
    let kubelet = env.kubelet(|pod| {
        Some(if index_of(pod) == 0 {
            "Succeeded"
        } else {
            "Running"
        })
    });
    let done = finished(&env, "leader", "Complete").await;
    kubelet.cancel();
    assert_eq!(
        condition(&done, "Complete").unwrap().1.as_deref(),
        Some("SuccessPolicy")
    );
    assert_eq!(
        condition(&done, "SuccessCriteriaMet").unwrap().1.as_deref(),
        Some("SuccessPolicy")
    );
    let status = done.status.unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0"));
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(1), None, None)
    );
    eventually("the other pods to be gone", || async {
        let pods = job_pods(&env, "leader").await;
        (pods.len() == 1 && index_of(&pods[0]) == 0).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn active_deadline_fails_a_running_job() {
    let env = Env::start("deadline").await;
    create_job(
        &env,
        "slow",
        json!({"activeDeadlineSeconds": 2, "parallelism": 2, "completions": 2}),
    )
    .await;
    let kubelet = env.kubelet(|_| Some("Running"));
    let failed = finished(&env, "slow", "Failed").await;
    kubelet.cancel();
    assert_eq!(
        condition(&failed, "Failed").unwrap().1.as_deref(),
        Some("DeadlineExceeded")
    );
    let status = failed.status.unwrap();
    assert_eq!(status.active, None);
    // The pods were deleted (not counted as failures), and nothing holds them back.
    assert_eq!(status.failed, None);
    eventually("the pods to be gone", || async {
        job_pods(&env, "slow").await.is_empty().then_some(())
    })
    .await;
    let reasons = event_reasons(&env, "Job", "slow").await;
    assert!(
        reasons.contains(&"DeadlineExceeded".to_owned()),
        "{reasons:?}"
    );
    env.stop().await;
}

async fn set_suspend(env: &Env, name: &str, suspend: bool) {
    env.api::<Job>()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": suspend}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_suspended_job_deletes_its_pods_and_resumes() {
    let env = Env::start("suspend").await;
    create_job(
        &env,
        "paused",
        json!({"suspend": true, "completions": 2, "parallelism": 2}),
    )
    .await;
    let job = eventually("the Suspended condition", || async {
        let job = env.api::<Job>().get("paused").await.ok()?;
        is_true(&job, "Suspended").then_some(job)
    })
    .await;
    assert_eq!(
        condition(&job, "Suspended").unwrap().1.as_deref(),
        Some("JobSuspended")
    );
    assert!(job.status.unwrap().start_time.is_none());
    assert!(job_pods(&env, "paused").await.is_empty());

    set_suspend(&env, "paused", false).await;
    let kubelet = env.kubelet(|_| Some("Running"));
    eventually("two running pods", || async {
        let pods = job_pods(&env, "paused").await;
        (pods.iter().filter(|p| is_live(p)).count() == 2).then_some(())
    })
    .await;
    let job = env.api::<Job>().get("paused").await.unwrap();
    assert_eq!(
        condition(&job, "Suspended").unwrap(),
        ("False".to_owned(), Some("JobResumed".to_owned()))
    );
    assert!(job.status.unwrap().start_time.is_some());

    // Suspending a running job deletes its pods; they are not failures.
    set_suspend(&env, "paused", true).await;
    eventually("the pods to be gone", || async {
        job_pods(&env, "paused").await.is_empty().then_some(())
    })
    .await;
    let job = env.api::<Job>().get("paused").await.unwrap();
    assert!(is_true(&job, "Suspended"));
    assert_eq!(job.status.unwrap().failed, None);
    kubelet.cancel();

    set_suspend(&env, "paused", false).await;
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    let done = finished(&env, "paused", "Complete").await;
    kubelet.cancel();
    assert_eq!(done.status.unwrap().succeeded, Some(2));
    let reasons = event_reasons(&env, "Job", "paused").await;
    assert!(
        reasons.contains(&"Suspended".to_owned()) && reasons.contains(&"Resumed".to_owned()),
        "{reasons:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_finished_job_is_deleted_after_its_ttl() {
    let env = Env::start("ttl").await;
    create_job(&env, "brief", json!({"ttlSecondsAfterFinished": 1})).await;
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    let done = finished(&env, "brief", "Complete").await;
    kubelet.cancel();
    let completed = done.status.unwrap().completion_time.unwrap().0;
    // Foreground deletion: without a garbage collector in this test the Job stays, marked
    // for deletion with the foregroundDeletion finalizer (the e2e test sees it go).
    let deleting = eventually("the job to be marked for deletion", || async {
        let job = env.api::<Job>().get_opt("brief").await.ok()?;
        match job {
            None => Some(None),
            Some(job) if job.metadata.deletion_timestamp.is_some() => Some(Some(job)),
            Some(_) => None,
        }
    })
    .await;
    if let Some(job) = deleting {
        let marked = job.metadata.deletion_timestamp.unwrap().0;
        assert!(
            marked.as_second() > completed.as_second(),
            "deleted before its TTL"
        );
        assert!(
            job.metadata
                .finalizers
                .unwrap()
                .contains(&"foregroundDeletion".to_owned())
        );
    }
    env.stop().await;
}

fn cronjob(name: &str, schedule: &str, extra: Value) -> CronJob {
    let mut spec = json!({
        "schedule": schedule,
        "jobTemplate": {
            "metadata": {"labels": {"from": name}},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            }}},
        },
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn cronjob_jobs(env: &Env, name: &str) -> Vec<Job> {
    env.api::<Job>()
        .list(&ListParams::default().labels(&format!("from={name}")))
        .await
        .unwrap()
        .items
}

/// A `* * * * *` CronJob on the real clock starts a Job within a minute, named after the
/// schedule time and annotated with it, and records the Job's success.
#[tokio::test]
async fn a_cronjob_starts_a_job_at_the_next_minute() {
    let env = Env::start("cron").await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob("tick", "* * * * *", json!({})),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    let job = eventually_within(
        Duration::from_secs(75),
        "a job from the cronjob",
        || async { cronjob_jobs(&env, "tick").await.into_iter().next() },
    )
    .await;
    let annotations = job.metadata.annotations.clone().unwrap();
    let scheduled: k8s_openapi::jiff::Timestamp =
        annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .parse()
            .unwrap();
    assert_eq!(scheduled.as_second() % 60, 0);
    assert_eq!(
        job.metadata.name.unwrap(),
        format!("tick-{}", scheduled.as_second() / 60)
    );
    let owner = &job.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("CronJob", Some(true))
    );
    let cronjob = eventually("lastSuccessfulTime", || async {
        let cj = env.api::<CronJob>().get("tick").await.ok()?;
        let status = cj.status.clone()?;
        (status.last_successful_time.is_some() && status.active.as_ref().is_none_or(Vec::is_empty))
            .then_some(cj)
    })
    .await;
    kubelet.cancel();
    let status = cronjob.status.unwrap();
    assert_eq!(status.last_schedule_time.unwrap().0, scheduled);
    let reasons = event_reasons(&env, "CronJob", "tick").await;
    assert!(
        reasons.contains(&"SuccessfulCreate".to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"SawCompletedJob".to_owned()),
        "{reasons:?}"
    );
    env.stop().await;
}

/// Forbid: while a Job runs, later schedule times start nothing. The CronJob runs on a
/// clock 30 times faster than real time (a minute in two seconds).
#[tokio::test]
async fn concurrency_policy_forbid_skips_runs_while_one_is_active() {
    let env = Env::start_with_clock("forbid", Clock::accelerated(30)).await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob(
                "single",
                "* * * * *",
                json!({"concurrencyPolicy": "Forbid"}),
            ),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet(|_| Some("Running"));
    eventually("a first job", || async {
        (!cronjob_jobs(&env, "single").await.is_empty()).then_some(())
    })
    .await;
    eventually("JobAlreadyActive", || async {
        event_reasons(&env, "CronJob", "single")
            .await
            .contains(&"JobAlreadyActive".to_owned())
            .then_some(())
    })
    .await;
    assert_eq!(cronjob_jobs(&env, "single").await.len(), 1);
    let cj = env.api::<CronJob>().get("single").await.unwrap();
    assert_eq!(cj.status.unwrap().active.unwrap().len(), 1);
    kubelet.cancel();
    // Once it finishes, the next schedule time starts another.
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    eventually("a second job", || async {
        (cronjob_jobs(&env, "single").await.len() >= 2).then_some(())
    })
    .await;
    kubelet.cancel();
    env.stop().await;
}

/// Replace: a new schedule time deletes the running Job and starts its successor.
#[tokio::test]
async fn concurrency_policy_replace_deletes_the_running_job() {
    let env = Env::start_with_clock("replace", Clock::accelerated(30)).await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob(
                "fresh",
                "* * * * *",
                json!({"concurrencyPolicy": "Replace"}),
            ),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet(|_| Some("Running"));
    let first = eventually("a first job", || async {
        cronjob_jobs(&env, "fresh").await.into_iter().next()
    })
    .await;
    let first_name = first.metadata.name.unwrap();
    eventually("the first job replaced", || async {
        let jobs = cronjob_jobs(&env, "fresh").await;
        let first_gone = jobs.iter().all(|j| {
            j.metadata.name.as_deref() != Some(&first_name)
                || j.metadata.deletion_timestamp.is_some()
        });
        (first_gone
            && jobs
                .iter()
                .any(|j| j.metadata.name.as_deref() != Some(&first_name)))
        .then_some(())
    })
    .await;
    kubelet.cancel();
    env.stop().await;
}

/// History limits: finished Jobs beyond the successful (1) and failed (0) limits are deleted.
#[tokio::test]
async fn history_limits_delete_old_finished_jobs() {
    let env = Env::start_with_clock("history", Clock::accelerated(30)).await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob(
                "hist",
                "* * * * *",
                json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}),
            ),
        )
        .await
        .unwrap();
    let kubelet = env.kubelet(|_| Some("Succeeded"));
    eventually("three deleted jobs", || async {
        let reasons = event_reasons(&env, "CronJob", "hist").await;
        (reasons.iter().filter(|r| *r == "SuccessfulDelete").count() >= 3).then_some(())
    })
    .await;
    kubelet.cancel();
    let live: Vec<Job> = cronjob_jobs(&env, "hist")
        .await
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect();
    let complete = live.iter().filter(|j| is_true(j, "Complete")).count();
    assert!(complete <= 1, "{complete} completed jobs kept");
    env.stop().await;
}

/// A suspended CronJob starts nothing until resumed.
#[tokio::test]
async fn a_suspended_cronjob_starts_no_jobs() {
    let env = Env::start_with_clock("cronsuspend", Clock::accelerated(30)).await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob("held", "* * * * *", json!({"suspend": true})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(cronjob_jobs(&env, "held").await.is_empty());
    env.api::<CronJob>()
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    eventually("a job after resuming", || async {
        (!cronjob_jobs(&env, "held").await.is_empty()).then_some(())
    })
    .await;
    env.stop().await;
}

/// `spec.timeZone` sets the zone of the schedule and of the scheduled-timestamp annotation;
/// an unknown zone is reported and schedules nothing.
#[tokio::test]
async fn a_cronjob_schedules_in_its_time_zone() {
    let env = Env::start_with_clock("zones", Clock::accelerated(30)).await;
    let api = env.api::<CronJob>();
    api.create(
        &PostParams::default(),
        &cronjob("india", "* * * * *", json!({"timeZone": "Asia/Kolkata"})),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &cronjob(
            "nowhere",
            "* * * * *",
            json!({"timeZone": "Mars/Olympus_Mons"}),
        ),
    )
    .await
    .unwrap();
    let job = eventually("a job", || async {
        cronjob_jobs(&env, "india").await.into_iter().next()
    })
    .await;
    let stamp =
        &job.metadata.annotations.unwrap()["batch.kubernetes.io/cronjob-scheduled-timestamp"];
    assert!(stamp.ends_with(":00+05:30"), "{stamp}");
    eventually("UnknownTimeZone", || async {
        event_reasons(&env, "CronJob", "nowhere")
            .await
            .contains(&"UnknownTimeZone".to_owned())
            .then_some(())
    })
    .await;
    assert!(cronjob_jobs(&env, "nowhere").await.is_empty());
    env.stop().await;
}

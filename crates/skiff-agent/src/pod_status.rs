//! What a simulated kubelet writes to a pod's status, as pure functions of a compact view of
//! the pod ([`PodInfo`]): running and ready, completed (restartPolicy Never/OnFailure after
//! the run time), and stopped (containers terminated before the pod is deleted).

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, HostIP, Pod,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// The fields of a pod the simulation acts on (the full object is not kept: 10,000 pods).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub phase: String,
    pub deleting: bool,
    pub restart_policy: String,
    pub host_network: bool,
    /// `(name, image)` of each container.
    pub containers: Vec<(String, String)>,
    pub init_containers: Vec<(String, String)>,
    pub start_time: Option<Timestamp>,
    pub pod_ip: Option<String>,
    pub conditions: Vec<PodCondition>,
}

impl PodInfo {
    /// The view of a pod bound to a node, or `None` for an unbound pod or one without a uid.
    pub(crate) fn from_pod(pod: &Pod) -> Option<PodInfo> {
        let spec = pod.spec.as_ref()?;
        let node = spec.node_name.clone().filter(|n| !n.is_empty())?;
        let status = pod.status.clone().unwrap_or_default();
        let images = |containers: &[k8s_openapi::api::core::v1::Container]| {
            containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        };
        Some(PodInfo {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone()?,
            uid: pod.metadata.uid.clone()?,
            node,
            phase: status.phase.unwrap_or_else(|| "Pending".to_owned()),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            restart_policy: spec
                .restart_policy
                .clone()
                .unwrap_or_else(|| "Always".to_owned()),
            host_network: spec.host_network.unwrap_or(false),
            containers: images(&spec.containers),
            init_containers: images(spec.init_containers.as_deref().unwrap_or_default()),
            start_time: status.start_time.map(|t| t.0),
            pod_ip: status.pod_ip.filter(|ip| !ip.is_empty()),
            conditions: status.conditions.unwrap_or_default(),
        })
    }

    /// Whether the pod's containers run to completion (Jobs) instead of forever.
    pub(crate) fn runs_to_completion(&self) -> bool {
        self.restart_policy != "Always"
    }

    /// Whether the pod has finished (its containers will not run again).
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }

    fn container_id(&self, container: &str) -> String {
        format!("skiff-sim://{}-{container}", self.uid)
    }
}

/// `{"status": ...}` for a merge patch of the status subresource.
fn patch_of(status: PodStatus) -> Value {
    json!({ "status": status })
}

/// Conditions the kubelet owns, in its order, merged with the pod's others (readiness gates,
/// disruption targets): a condition keeps its `lastTransitionTime` while its status holds.
fn conditions(
    info: &PodInfo,
    ours: &[(&str, bool, Option<&str>)],
    now: Timestamp,
) -> Vec<PodCondition> {
    let mut merged: Vec<PodCondition> = ours
        .iter()
        .map(|&(kind, status, reason)| {
            let status = if status { "True" } else { "False" };
            let since = info
                .conditions
                .iter()
                .find(|c| c.type_ == kind && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            PodCondition {
                type_: kind.to_owned(),
                status: status.to_owned(),
                reason: reason.map(str::to_owned),
                last_transition_time: Some(since),
                ..PodCondition::default()
            }
        })
        .collect();
    for other in &info.conditions {
        if !ours.iter().any(|&(kind, _, _)| kind == other.type_) {
            merged.push(other.clone());
        }
    }
    merged
}

fn image_id(image: &str) -> String {
    format!("skiff-sim://image/{image}")
}

fn terminated(info: &PodInfo, name: &str, started: Timestamp, now: Timestamp) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(info.container_id(name)),
            exit_code: 0,
            reason: Some("Completed".to_owned()),
            started_at: Some(Time(started)),
            finished_at: Some(Time(now)),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

fn init_statuses(info: &PodInfo, started: Timestamp) -> Option<Vec<ContainerStatus>> {
    if info.init_containers.is_empty() {
        return None;
    }
    Some(
        info.init_containers
            .iter()
            .map(|(name, image)| ContainerStatus {
                name: name.clone(),
                image: image.clone(),
                image_id: image_id(image),
                container_id: Some(info.container_id(name)),
                ready: true,
                started: Some(false),
                restart_count: 0,
                state: Some(terminated(info, name, started, started)),
                ..ContainerStatus::default()
            })
            .collect(),
    )
}

/// Running and Ready: init containers done, every container running since `now`.
pub(crate) fn running(info: &PodInfo, host_ip: &str, pod_ip: &str, now: Timestamp) -> Value {
    let started = info.start_time.unwrap_or(now);
    let containers = info
        .containers
        .iter()
        .map(|(name, image)| ContainerStatus {
            name: name.clone(),
            image: image.clone(),
            image_id: image_id(image),
            container_id: Some(info.container_id(name)),
            ready: true,
            started: Some(true),
            restart_count: 0,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(now)),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        })
        .collect();
    patch_of(PodStatus {
        phase: Some("Running".to_owned()),
        host_ip: Some(host_ip.to_owned()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_owned(),
        }]),
        pod_ip: Some(pod_ip.to_owned()),
        pod_ips: Some(vec![PodIP {
            ip: pod_ip.to_owned(),
        }]),
        start_time: Some(Time(started)),
        conditions: Some(conditions(
            info,
            &[
                ("PodReadyToStartContainers", true, None),
                ("Initialized", true, None),
                ("Ready", true, None),
                ("ContainersReady", true, None),
                ("PodScheduled", true, None),
            ],
            now,
        )),
        container_statuses: Some(containers),
        init_container_statuses: init_statuses(info, started),
        ..PodStatus::default()
    })
}

/// Containers exited 0 and not ready; phase `Succeeded` when `complete` (the run time is
/// over), unchanged otherwise (stopped because the pod is being deleted).
fn finished(info: &PodInfo, complete: bool, now: Timestamp) -> Value {
    let started = info.start_time.unwrap_or(now);
    let containers = info
        .containers
        .iter()
        .map(|(name, image)| ContainerStatus {
            name: name.clone(),
            image: image.clone(),
            image_id: image_id(image),
            container_id: Some(info.container_id(name)),
            ready: false,
            started: Some(false),
            restart_count: 0,
            state: Some(terminated(info, name, started, now)),
            ..ContainerStatus::default()
        })
        .collect();
    let reason = complete.then_some("PodCompleted");
    patch_of(PodStatus {
        phase: complete.then(|| "Succeeded".to_owned()),
        conditions: Some(conditions(
            info,
            &[
                ("PodReadyToStartContainers", false, None),
                ("Initialized", true, reason),
                ("Ready", false, reason),
                ("ContainersReady", false, reason),
                ("PodScheduled", true, None),
            ],
            now,
        )),
        container_statuses: Some(containers),
        ..PodStatus::default()
    })
}

/// Run to completion: phase `Succeeded`, containers terminated with exit code 0.
pub(crate) fn succeeded(info: &PodInfo, now: Timestamp) -> Value {
    finished(info, true, now)
}

/// Stopped for deletion: containers terminated (exit code 0), not ready.
pub(crate) fn stopped(info: &PodInfo, now: Timestamp) -> Value {
    finished(info, false, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "nodeName": "sim-0",
                "restartPolicy": "Never",
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "app", "image": "nginx:1"}, {"name": "side", "image": "envoy"}]
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                    {"type": "example.com/gate", "status": "False"}
                ]
            }
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2024-05-06T07:08:09Z".parse().unwrap()
    }

    #[test]
    fn the_view_of_a_pod() {
        let info = PodInfo::from_pod(&pod()).unwrap();
        assert_eq!(info.node, "sim-0");
        assert_eq!(info.phase, "Pending");
        assert!(info.runs_to_completion());
        assert!(!info.is_terminal());
        assert!(!info.deleting);
        assert_eq!(info.containers[0], ("app".to_owned(), "nginx:1".to_owned()));
        assert_eq!(info.init_containers.len(), 1);
        let mut unbound = pod();
        unbound.spec.as_mut().unwrap().node_name = None;
        assert_eq!(PodInfo::from_pod(&unbound), None);
        let mut defaulted = pod();
        defaulted.spec.as_mut().unwrap().restart_policy = None;
        assert!(!PodInfo::from_pod(&defaulted).unwrap().runs_to_completion());
    }

    #[test]
    fn running_status_is_ready_with_addresses_and_containers() {
        let info = PodInfo::from_pod(&pod()).unwrap();
        let patch = running(&info, "10.200.0.1", "10.244.0.2", now());
        let status = &patch["status"];
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.244.0.2");
        assert_eq!(status["podIPs"], json!([{"ip": "10.244.0.2"}]));
        assert_eq!(status["hostIP"], "10.200.0.1");
        assert_eq!(status["startTime"], "2024-05-06T07:08:09Z");
        let conditions = status["conditions"].as_array().unwrap();
        let find = |kind: &str| conditions.iter().find(|c| c["type"] == kind).unwrap();
        assert_eq!(find("Ready")["status"], "True");
        assert_eq!(find("ContainersReady")["status"], "True");
        assert_eq!(find("Initialized")["status"], "True");
        // Kept: the scheduler's transition time, and conditions others own.
        assert_eq!(
            find("PodScheduled")["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(find("example.com/gate")["status"], "False");
        let app = &status["containerStatuses"][0];
        assert_eq!(app["name"], "app");
        assert_eq!(app["image"], "nginx:1");
        assert_eq!(app["containerID"], "skiff-sim://u1-app");
        assert_eq!(app["ready"], true);
        assert_eq!(app["started"], true);
        assert_eq!(app["restartCount"], 0);
        assert_eq!(app["state"]["running"]["startedAt"], "2024-05-06T07:08:09Z");
        assert_eq!(status["containerStatuses"].as_array().unwrap().len(), 2);
        let init = &status["initContainerStatuses"][0];
        assert_eq!(init["state"]["terminated"]["exitCode"], 0);
        assert_eq!(init["state"]["terminated"]["reason"], "Completed");
    }

    #[test]
    fn succeeded_and_stopped_statuses() {
        let mut info = PodInfo::from_pod(&pod()).unwrap();
        info.phase = "Running".to_owned();
        info.start_time = Some("2024-05-06T07:00:00Z".parse().unwrap());
        let patch = succeeded(&info, now());
        let status = &patch["status"];
        assert_eq!(status["phase"], "Succeeded");
        let app = &status["containerStatuses"][0];
        assert_eq!(app["ready"], false);
        let terminated = &app["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 0);
        assert_eq!(terminated["reason"], "Completed");
        assert_eq!(terminated["startedAt"], "2024-05-06T07:00:00Z");
        assert_eq!(terminated["finishedAt"], "2024-05-06T07:08:09Z");
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "PodCompleted");

        let patch = stopped(&info, now());
        assert_eq!(patch["status"].get("phase"), None);
        assert_eq!(
            patch["status"]["containerStatuses"][1]["state"]["terminated"]["exitCode"],
            0
        );
    }
}

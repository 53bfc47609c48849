//! Table-driven tests: each case is a kind, an object and the cells kube-apiserver prints.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::{
    IncludeObject, PrinterColumn, columns, custom_table, human_duration, row_cells, table,
};

/// 2024-06-01T12:00:00Z.
static NOW: std::sync::LazyLock<OffsetDateTime> = std::sync::LazyLock::new(|| {
    OffsetDateTime::from_unix_timestamp(1_717_243_200).expect("valid timestamp")
});

/// An RFC 3339 timestamp `secs` seconds before [`NOW`].
fn ago(secs: i64) -> String {
    let t = *NOW - Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

fn check(kind: &str, object: Value, expected: Value) {
    let cells = row_cells(kind, &object, *NOW);
    assert_eq!(Value::Array(cells), expected, "{kind}: {object}");
}

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "metadata": {"name": "p", "creationTimestamp": ago(310)},
        "spec": spec,
        "status": status,
    })
}

#[test]
fn human_duration_boundaries() {
    let cases: &[(i64, &str)] = &[
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (90, "90s"),
        (119, "119s"),
        (120, "2m"),
        (310, "5m10s"),
        (599, "9m59s"),
        (600, "10m"),
        (9000, "150m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 1800, "3h30m"),
        (8 * 3600 - 1, "7h59m"),
        (8 * 3600, "8h"),
        (30 * 3600, "30h"),
        (48 * 3600 - 1, "47h"),
        (48 * 3600, "2d"),
        (76 * 3600, "3d4h"),
        (8 * 86400 - 1, "7d23h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (730 * 86400 - 1, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (8 * 365 * 86400 - 1, "7y364d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ];
    for &(secs, want) in cases {
        assert_eq!(human_duration(Duration::seconds(secs)), want, "{secs}s");
    }
    // Go truncates fractional seconds towards zero.
    assert_eq!(human_duration(Duration::milliseconds(-1500)), "0s");
    assert_eq!(human_duration(Duration::milliseconds(119_999)), "119s");
}

#[test]
fn pods() {
    let one = json!({"containers": [{"name": "a", "image": "nginx"}]});
    check(
        "Pod",
        pod(one.clone(), json!({"phase": "Pending"})),
        json!([
            "p", "0/1", "Pending", "0", "5m10s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
    check(
        "Pod",
        json!({
            "metadata": {"name": "web", "creationTimestamp": ago(90)},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                    {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}},
                ],
            },
        }),
        json!([
            "web", "2/2", "Running", "0", "90s", "10.0.0.5", "n1", "<none>", "<none>"
        ]),
    );
    // CrashLoopBackOff with restarts: the newest termination gives the "(... ago)" suffix.
    check(
        "Pod",
        pod(
            one.clone(),
            json!({
                "phase": "Running",
                "containerStatuses": [{
                    "name": "a", "ready": false, "restartCount": 5,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}},
                }],
            }),
        ),
        json!([
            "p",
            "0/1",
            "CrashLoopBackOff",
            "5 (5m ago)",
            "5m10s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
    // Completed.
    check(
        "Pod",
        pod(
            one.clone(),
            json!({
                "phase": "Succeeded",
                "containerStatuses": [{
                    "name": "a", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }],
            }),
        ),
        json!([
            "p",
            "0/1",
            "Completed",
            "0",
            "5m10s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
    // Terminated without a reason.
    check(
        "Pod",
        pod(
            one.clone(),
            json!({
                "phase": "Failed",
                "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}],
            }),
        ),
        json!([
            "p", "0/1", "Signal:9", "0", "5m10s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
    // A Completed container beside a running one: Running when the pod is Ready.
    check(
        "Pod",
        pod(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "ready": true, "state": {"running": {}}},
                ],
            }),
        ),
        json!([
            "p", "1/2", "NotReady", "0", "5m10s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
}

#[test]
fn pod_init_containers() {
    let spec = json!({
        "initContainers": [{"name": "init"}],
        "containers": [{"name": "a"}],
    });
    let waiting_main = json!([{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]);
    check(
        "Pod",
        pod(
            spec.clone(),
            json!({
                "phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": waiting_main,
            }),
        ),
        json!([
            "p", "0/1", "Init:0/1", "0", "5m10s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
    check(
        "Pod",
        pod(
            spec.clone(),
            json!({
                "phase": "Pending",
                "initContainerStatuses": [{
                    "name": "init", "restartCount": 2,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}},
                }],
            }),
        ),
        json!([
            "p",
            "0/1",
            "Init:CrashLoopBackOff",
            "2 (30s ago)",
            "5m10s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
    check(
        "Pod",
        pod(
            spec.clone(),
            json!({
                "phase": "Pending",
                "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 3}}}],
            }),
        ),
        json!([
            "p",
            "0/1",
            "Init:ExitCode:3",
            "0",
            "5m10s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
    // A started, ready sidecar counts towards READY and is skipped by the init scan.
    check(
        "Pod",
        pod(
            json!({
                "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                "containers": [{"name": "a"}],
            }),
            json!({
                "phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{
                    "name": "proxy", "started": true, "ready": true, "restartCount": 1,
                    "state": {"running": {}},
                }],
                "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}],
            }),
        ),
        json!([
            "p", "2/2", "Running", "1", "5m10s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
}

#[test]
fn pod_terminating_gated_and_wide() {
    let mut p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Running", "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}),
    );
    p["metadata"]["deletionTimestamp"] = json!(ago(5));
    check(
        "Pod",
        p.clone(),
        json!([
            "p",
            "1/1",
            "Terminating",
            "0",
            "5m10s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
    p["status"]["reason"] = json!("NodeLost");
    check(
        "Pod",
        p,
        json!([
            "p", "1/1", "Unknown", "0", "5m10s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
    check(
        "Pod",
        pod(
            json!({"containers": [{"name": "a"}], "schedulingGates": [{"name": "g"}]}),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        ),
        json!([
            "p",
            "0/1",
            "SchedulingGated",
            "0",
            "5m10s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
    check(
        "Pod",
        pod(
            json!({
                "containers": [{"name": "a"}],
                "nodeName": "worker-1",
                "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}],
            }),
            json!({
                "phase": "Pending",
                "podIPs": [{"ip": "10.1.2.3"}],
                "nominatedNodeName": "worker-2",
                "conditions": [
                    {"type": "example.com/lb", "status": "True"},
                    {"type": "example.com/dns", "status": "False"},
                ],
            }),
        ),
        json!([
            "p", "0/1", "Pending", "0", "5m10s", "10.1.2.3", "worker-1", "worker-2", "1/2"
        ]),
    );
}

#[test]
fn services() {
    let meta = json!({"name": "svc", "creationTimestamp": ago(86400 * 3)});
    check(
        "Service",
        json!({"metadata": meta, "spec": {
            "type": "ClusterIP", "clusterIPs": ["10.96.0.1"],
            "ports": [{"port": 443, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        }}),
        json!([
            "svc",
            "ClusterIP",
            "10.96.0.1",
            "<none>",
            "443/TCP,53/UDP",
            "3d",
            "<none>"
        ]),
    );
    check(
        "Service",
        json!({"metadata": meta, "spec": {
            "type": "NodePort", "clusterIPs": ["10.96.10.10"], "externalIPs": ["1.2.3.4"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            "selector": {"app": "web", "tier": "fe"},
        }}),
        json!([
            "svc",
            "NodePort",
            "10.96.10.10",
            "1.2.3.4",
            "80:30080/TCP",
            "3d",
            "app=web,tier=fe"
        ]),
    );
    check(
        "Service",
        json!({"metadata": meta, "spec": {
            "type": "LoadBalancer", "clusterIPs": ["10.96.0.7"],
            "ports": [{"port": 80, "nodePort": 31000, "protocol": "TCP"}],
        }}),
        json!([
            "svc",
            "LoadBalancer",
            "10.96.0.7",
            "<pending>",
            "80:31000/TCP",
            "3d",
            "<none>"
        ]),
    );
    check(
        "Service",
        json!({"metadata": meta, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.7"], "externalIPs": ["9.9.9.9"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}, {"ip": "1.2.3.4"}]}}}),
        json!([
            "svc",
            "LoadBalancer",
            "10.96.0.7",
            "1.2.3.4,5.6.7.8,lb.example.com,9.9.9.9",
            "<none>",
            "3d",
            "<none>"
        ]),
    );
    check(
        "Service",
        json!({"metadata": meta, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        json!([
            "svc",
            "ExternalName",
            "<none>",
            "db.example.com",
            "<none>",
            "3d",
            "<none>"
        ]),
    );
}

#[test]
fn workloads() {
    let meta = json!({"name": "web", "creationTimestamp": ago(7200)});
    let template = json!({"spec": {"containers": [
        {"name": "nginx", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"},
    ]}});
    check(
        "Deployment",
        json!({"metadata": meta, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
        json!([
            "web",
            "2/3",
            3,
            2,
            "120m",
            "nginx,log",
            "nginx:1.25,busybox",
            "app=web"
        ]),
    );
    check(
        "ReplicaSet",
        json!({"metadata": meta, "spec": {"replicas": 2, "template": template, "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ]}},
            "status": {"replicas": 2, "readyReplicas": 1}}),
        json!([
            "web",
            2,
            2,
            1,
            "120m",
            "nginx,log",
            "nginx:1.25,busybox",
            "app=web,!legacy,tier in (be,fe)"
        ]),
    );
    check(
        "StatefulSet",
        json!({"metadata": meta, "spec": {"replicas": 3, "template": template}, "status": {"readyReplicas": 3}}),
        json!(["web", "3/3", "120m", "nginx,log", "nginx:1.25,busybox"]),
    );
    check(
        "DaemonSet",
        json!({"metadata": meta, "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "c", "image": "i"}]}}},
            "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "numberAvailable": 1}}),
        json!([
            "web",
            2,
            2,
            1,
            2,
            1,
            "kubernetes.io/os=linux",
            "120m",
            "c",
            "i",
            "<none>"
        ]),
    );
}

#[test]
fn jobs_and_cronjobs() {
    let meta = json!({"name": "pi", "creationTimestamp": ago(700)});
    let template = json!({"spec": {"containers": [{"name": "pi", "image": "perl"}]}});
    check(
        "Job",
        json!({"metadata": meta, "spec": {"completions": 3, "template": template, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
            "status": {"succeeded": 1, "startTime": ago(600)}}),
        json!([
            "pi",
            "Running",
            "1/3",
            "10m",
            "11m",
            "pi",
            "perl",
            "batch.kubernetes.io/controller-uid=u1"
        ]),
    );
    check(
        "Job",
        json!({"metadata": meta, "spec": {"completions": 1, "template": template},
            "status": {"succeeded": 1, "startTime": ago(600), "completionTime": ago(570),
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}),
        json!([
            "pi", "Complete", "1/1", "30s", "11m", "pi", "perl", "<none>"
        ]),
    );
    check(
        "Job",
        json!({"metadata": meta, "spec": {"parallelism": 4, "template": template}}),
        json!([
            "pi", "Running", "0/1 of 4", "", "11m", "pi", "perl", "<none>"
        ]),
    );
    check(
        "CronJob",
        json!({"metadata": meta, "spec": {"schedule": "*/5 * * * *", "suspend": false,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "pi-1"}], "lastScheduleTime": ago(120)}}),
        json!([
            "pi",
            "*/5 * * * *",
            "<none>",
            "False",
            1,
            "2m",
            "11m",
            "hello",
            "busybox",
            "<none>"
        ]),
    );
    check(
        "CronJob",
        json!({"metadata": meta, "spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}}),
        json!([
            "pi", "@daily", "Etc/UTC", "<unset>", 0, "<none>", "11m", "", "", "<none>"
        ]),
    );
}

#[test]
fn nodes() {
    let node = |labels: Value, ready: &str, unschedulable: bool| {
        json!({
            "metadata": {"name": "n1", "creationTimestamp": ago(86400 * 10), "labels": labels},
            "spec": {"unschedulable": unschedulable},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}],
                "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Ubuntu 24.04", "kernelVersion": "6.8.0", "architecture": "amd64", "containerRuntimeVersion": "containerd://2.0.0"},
            },
        })
    };
    check(
        "Node",
        node(
            json!({"node-role.kubernetes.io/control-plane": ""}),
            "True",
            false,
        ),
        json!([
            "n1",
            "Ready",
            "control-plane",
            "10d",
            "v1.33.0",
            "192.168.1.10",
            "<none>",
            "Ubuntu 24.04",
            "6.8.0 (amd64)",
            "containerd://2.0.0"
        ]),
    );
    check(
        "Node",
        node(
            json!({"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "infra", "node-role.kubernetes.io/": "x"}),
            "Unknown",
            true,
        ),
        json!([
            "n1",
            "NotReady,SchedulingDisabled",
            "infra,worker",
            "10d",
            "v1.33.0",
            "192.168.1.10",
            "<none>",
            "Ubuntu 24.04",
            "6.8.0 (amd64)",
            "containerd://2.0.0"
        ]),
    );
    check(
        "Node",
        json!({"metadata": {"name": "bare"}}),
        json!([
            "bare",
            "Unknown",
            "<none>",
            "<unknown>",
            "",
            "<none>",
            "<none>",
            "<unknown>",
            "<unknown>",
            "<unknown>"
        ]),
    );
}

#[test]
fn core_objects() {
    let meta = json!({"name": "x", "creationTimestamp": ago(45)});
    check(
        "Namespace",
        json!({"metadata": meta, "status": {"phase": "Active"}}),
        json!(["x", "Active", "45s"]),
    );
    check(
        "ConfigMap",
        json!({"metadata": meta, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
        json!(["x", 3, "45s"]),
    );
    check(
        "ConfigMap",
        json!({"metadata": meta}),
        json!(["x", 0, "45s"]),
    );
    check(
        "Secret",
        json!({"metadata": meta, "type": "Opaque", "data": {"u": "YQ==", "p": "Yg=="}}),
        json!(["x", "Opaque", 2, "45s"]),
    );
    check(
        "ServiceAccount",
        json!({"metadata": meta}),
        json!(["x", "45s"]),
    );
    check(
        "Endpoints",
        json!({"metadata": meta, "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}],
        }]}),
        json!([
            "x",
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
            "45s"
        ]),
    );
    check(
        "Endpoints",
        json!({"metadata": meta, "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}, {"addresses": [{"ip": "10.0.0.9"}]}]}),
        json!(["x", "[fd00::1]:53,10.0.0.9", "45s"]),
    );
    check(
        "Endpoints",
        json!({"metadata": meta}),
        json!(["x", "<none>", "45s"]),
    );
    check(
        "PersistentVolumeClaim",
        json!({"metadata": meta, "spec": {"volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}),
        json!([
            "x",
            "Bound",
            "pv-1",
            "1Gi",
            "RWO",
            "standard",
            "<unset>",
            "45s",
            "Filesystem"
        ]),
    );
    check(
        "PersistentVolumeClaim",
        json!({"metadata": {"name": "x", "creationTimestamp": ago(45), "deletionTimestamp": ago(1),
                "annotations": {"volume.beta.kubernetes.io/storage-class": "beta"}},
            "spec": {"storageClassName": "standard"}, "status": {"phase": "Pending"}}),
        json!([
            "x",
            "Terminating",
            "",
            "",
            "",
            "beta",
            "<unset>",
            "45s",
            "<unset>"
        ]),
    );
    check(
        "PersistentVolume",
        json!({"metadata": meta, "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "c"}, "storageClassName": "local"},
            "status": {"phase": "Bound"}}),
        json!([
            "x",
            "5Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "default/c",
            "local",
            "<unset>",
            "",
            "45s",
            "<unset>"
        ]),
    );
}

#[test]
fn events() {
    check(
        "Event",
        json!({
            "metadata": {"name": "p.17a", "creationTimestamp": ago(3600)},
            "type": "Normal", "reason": "Pulled", "message": " Successfully pulled image \n",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(60), "count": 3,
        }),
        json!([
            "60s",
            "Normal",
            "Pulled",
            "pod/p",
            "spec.containers{a}",
            "kubelet, n1",
            "Successfully pulled image",
            "60m",
            3,
            "p.17a"
        ]),
    );
    // events.k8s.io-style: eventTime and a series, no count, reporting controller.
    check(
        "Event",
        json!({
            "metadata": {"name": "e"},
            "type": "Warning", "reason": "BackOff", "message": "Back-off",
            "involvedObject": {"kind": "Node"},
            "reportingController": "kubelet",
            "eventTime": "2024-06-01T11:50:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2024-06-01T11:59:00.000000Z"},
        }),
        json!([
            "60s", "Warning", "BackOff", "node", "", "kubelet", "Back-off", "10m", 7, "e"
        ]),
    );
    check(
        "Event",
        json!({"metadata": {"name": "e"}, "firstTimestamp": ago(30)}),
        json!(["30s", "", "", "", "", "", "", "30s", 1, "e"]),
    );
}

#[test]
fn other_kinds() {
    let meta = json!({"name": "x", "creationTimestamp": ago(45)});
    check(
        "Ingress",
        json!({"metadata": meta, "spec": {"ingressClassName": "nginx", "tls": [{}],
                "rules": [{"host": "a.com"}, {}, {"host": "b.com"}, {"host": "c.com"}, {"host": "d.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}}),
        json!([
            "x",
            "nginx",
            "a.com,b.com,c.com + 2 more...",
            "1.1.1.1",
            "80, 443",
            "45s"
        ]),
    );
    check(
        "HorizontalPodAutoscaler",
        json!({"metadata": meta, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}},
                    {"type": "External", "external": {"target": {"value": "5"}}},
                ]},
            "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"current": {"averageUtilization": 35}}}]}}),
        json!([
            "x",
            "Deployment/web",
            "cpu: 35%/80%, <unknown>/1k + 1 more...",
            "1",
            10,
            2,
            "45s"
        ]),
    );
    check(
        "ControllerRevision",
        json!({"metadata": {"name": "x", "creationTimestamp": ago(45), "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]}, "revision": 4}),
        json!(["x", "daemonset.apps/ds", 4, "45s"]),
    );
    check(
        "ResourceQuota",
        json!({"metadata": meta, "status": {
            "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi", "limits.memory": "2Gi"},
            "used": {"pods": "3", "limits.cpu": "500m"}}}),
        json!([
            "x",
            "pods: 3/10, requests.memory: 0/1Gi",
            "limits.cpu: 500m/2, limits.memory: 0/2Gi",
            "45s"
        ]),
    );
    check(
        "RoleBinding",
        json!({"metadata": meta, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"}, {"kind": "User", "name": "bob"},
            {"kind": "ServiceAccount", "namespace": "kube-system", "name": "default"}]}),
        json!([
            "x",
            "ClusterRole/view",
            "45s",
            "alice, bob",
            "devs",
            "kube-system/default"
        ]),
    );
    check(
        "CertificateSigningRequest",
        json!({"metadata": meta, "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "admin", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}}),
        json!([
            "x",
            "45s",
            "kubernetes.io/kube-apiserver-client",
            "admin",
            "24h",
            "Approved,Issued"
        ]),
    );
    check(
        "PodDisruptionBudget",
        json!({"metadata": meta, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}),
        json!(["x", "50%", "N/A", 1, "45s"]),
    );
    check(
        "PriorityClass",
        json!({"metadata": meta, "value": 1000, "globalDefault": true}),
        json!(["x", 1000, true, "45s", ""]),
    );
    check(
        "EndpointSlice",
        json!({"metadata": meta, "addressType": "IPv4", "ports": [{"name": "http", "port": 80}, {"name": "metrics"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]}),
        json!([
            "x",
            "IPv4",
            "80,metrics",
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
            "45s"
        ]),
    );
    check(
        "IPAddress",
        json!({"metadata": meta, "spec": {"parentRef": {"resource": "Services", "namespace": "default", "name": "kubernetes"}}}),
        json!(["x", "services/default/kubernetes", "45s"]),
    );
    check(
        "Status",
        json!({"status": "Failure", "reason": "NotFound", "message": "nope"}),
        json!(["Failure", "NotFound", "nope"]),
    );
}

#[test]
fn default_table_for_unknown_kinds() {
    let cols = columns("Widget");
    let names: Vec<(&str, &str, &str)> = cols
        .iter()
        .map(|c| (c.name.as_str(), c.r#type.as_str(), c.format.as_str()))
        .collect();
    assert_eq!(
        names,
        [("Name", "string", "name"), ("Created At", "date", "")]
    );
    check(
        "Widget",
        json!({"metadata": {"name": "w", "creationTimestamp": "2024-06-01T13:00:00.5+01:00"}}),
        json!(["w", "2024-06-01T12:00:00Z"]),
    );
    check("Role", json!({}), json!(["", "0001-01-01T00:00:00Z"]));
}

#[test]
fn full_table() {
    let succeeded = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "done", "namespace": "ns", "creationTimestamp": ago(60), "uid": "u1"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
    });
    let t = table(
        "Pod",
        std::slice::from_ref(&succeeded),
        *NOW,
        IncludeObject::Metadata,
        json!({"resourceVersion": "42"}),
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
    let defs = t["columnDefinitions"].as_array().expect("columns");
    assert_eq!(defs.len(), 9);
    assert_eq!(defs[0]["name"], "Name");
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(
        defs[5],
        json!({"name": "IP", "type": "string", "format": "", "description": defs[5]["description"], "priority": 1})
    );
    let row = &t["rows"][0];
    assert_eq!(
        row["cells"],
        json!([
            "done",
            "0/1",
            "Completed",
            "0",
            "60s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ])
    );
    assert_eq!(row["conditions"][0]["type"], "Completed");
    assert_eq!(row["conditions"][0]["reason"], "Succeeded");
    assert_eq!(
        row["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": succeeded["metadata"]})
    );

    let t = table(
        "Pod",
        std::slice::from_ref(&succeeded),
        *NOW,
        IncludeObject::Object,
        Value::Null,
    );
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(t["rows"][0]["object"], succeeded);
    let t = table(
        "Pod",
        std::slice::from_ref(&succeeded),
        *NOW,
        IncludeObject::None,
        Value::Null,
    );
    assert!(t["rows"][0].get("object").is_none());
    assert_eq!(
        IncludeObject::from_query("Object"),
        Some(IncludeObject::Object)
    );
    assert_eq!(IncludeObject::from_query("bogus"), None);
}

#[test]
fn list_rules() {
    // FlowSchemas sort by matching precedence, then name.
    let fs = |name: &str, precedence: i64| json!({"metadata": {"name": name}, "spec": {"matchingPrecedence": precedence}});
    let t = table(
        "FlowSchema",
        &[fs("b", 1000), fs("exempt", 1), fs("a", 1000)],
        *NOW,
        IncludeObject::None,
        json!({}),
    );
    let names: Vec<&Value> = t["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["cells"][0])
        .collect();
    assert_eq!(names, [&json!("exempt"), &json!("a"), &json!("b")]);

    // Only the newest annotated StorageClass is the effective default.
    let sc = |name: &str, age: i64| {
        json!({"metadata": {"name": name, "creationTimestamp": ago(age),
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "p"})
    };
    let t = table(
        "StorageClass",
        &[sc("old", 600), sc("new", 60)],
        *NOW,
        IncludeObject::None,
        json!({}),
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["old", "p", "Delete", "Immediate", false, "10m"])
    );
    assert_eq!(
        t["rows"][1]["cells"],
        json!(["new (default)", "p", "Delete", "Immediate", false, "60s"])
    );
}

#[test]
fn custom_resources() {
    let cols = [
        PrinterColumn::new("Replicas", "integer", ".spec.replicas"),
        PrinterColumn::new(
            "Ready",
            "string",
            r#".status.conditions[?(@.type=="Ready")].status"#,
        ),
        PrinterColumn::new("Paused", "boolean", ".spec.paused"),
        PrinterColumn::new("Age", "date", ".metadata.creationTimestamp"),
    ];
    let obj = json!({
        "metadata": {"name": "c1", "creationTimestamp": "2024-06-01T11:00:00Z"},
        "spec": {"replicas": 3, "paused": "yes"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    });
    let t = custom_table(
        &cols,
        &[obj],
        *NOW,
        IncludeObject::Metadata,
        json!({"resourceVersion": "7"}),
    );
    let names: Vec<&Value> = t["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(
        names,
        [
            &json!("Name"),
            &json!("Replicas"),
            &json!("Ready"),
            &json!("Paused"),
            &json!("Age")
        ]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["c1", 3, "True", null, "60m"]),
        "dates are ages, as kube-apiserver renders them"
    );
}

/// Every TSV kind renders as many cells as it has columns, for minimal and for malformed
/// objects, without panicking. IPAddress has one extra cell, as kube's printer does.
#[test]
fn every_kind_is_robust() {
    let minimal = json!({"metadata": {"name": "x", "creationTimestamp": ago(100)}});
    let malformed = json!({
        "metadata": {"name": 5, "creationTimestamp": "yesterday", "labels": [1], "annotations": "a",
            "deletionTimestamp": {}, "ownerReferences": {"controller": true}},
        "spec": {"containers": "a", "initContainers": [null, 3], "ports": [{"port": "x"}], "selector": {"matchExpressions": [{"operator": "Bogus"}]},
            "replicas": "many", "template": [], "metrics": [{"type": "Resource"}, 7], "rules": [null], "target": {"pod": 1},
            "taint": [], "paramRef": {}, "parentRef": {}, "limited": {"limitResponse": {"queuing": {}}}},
        "status": {"conditions": [{"type": 1}, "x"], "containerStatuses": [{"state": {"terminated": "x"}}, 4],
            "initContainerStatuses": [{"state": {"waiting": 3}}], "pools": [{"totalDevices": "x"}], "targetResponders": [{"state": "Active"}],
            "loadBalancer": {"ingress": [{}]}, "hard": {"cpu": {}}, "addresses": "x"},
        "subsets": [{"addresses": [{}], "ports": [{}]}],
        "data": "x",
        "series": {},
    });
    let kinds = crate::columns::kinds();
    assert_eq!(kinds.len(), 67, "kinds in the TSV");
    for kind in kinds {
        let columns = columns(kind);
        let extra = usize::from(kind == "IPAddress");
        for object in [&minimal, &malformed, &json!(null), &json!([1, 2])] {
            let cells = row_cells(kind, object, *NOW);
            assert_eq!(cells.len(), columns.len() + extra, "{kind}: {object}");
        }
        assert!(crate::has_printer(kind), "{kind}");
        // The first Name-formatted column (if any) is the object's name.
        let row = row_cells(kind, &minimal, *NOW);
        if let Some(i) = columns.iter().position(|c| c.name == "Name") {
            assert_eq!(row[i], json!("x"), "{kind}");
        }
        if let Some(i) = columns.iter().position(|c| c.name == "Age") {
            assert_eq!(row[i], json!("100s"), "{kind}");
        }
    }
}

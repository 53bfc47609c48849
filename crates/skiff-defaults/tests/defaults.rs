//! Table-style tests of `skiff_defaults`: one `check` per kind comparing the defaulted object
//! with what kube-apiserver 1.33 returns, plus idempotence, preservation of client values and
//! a no-panic sweep over odd inputs.

use serde_json::{Value, json};
use skiff_defaults::{
    apply, needs_cluster_ip, needs_health_check_node_port, needs_node_ports, prepare_create,
    prepare_pod_status,
};

/// Splits `"apps/v1"` or `"v1"` into group and version.
fn gv(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Defaults `input` as `kind` of `api_version` and compares with `expected`; also checks that a
/// second pass changes nothing.
fn check(api_version: &str, kind: &str, input: Value, expected: Value) {
    let (group, version) = gv(api_version);
    let mut object = input;
    apply(group, version, kind, &mut object);
    assert_eq!(
        object,
        expected,
        "{kind}: got\n{}",
        serde_json::to_string_pretty(&object).unwrap()
    );
    apply(group, version, kind, &mut object);
    assert_eq!(object, expected, "{kind}: second apply changed the object");
}

/// The defaults every PodSpec gets, merged over `extra`.
fn template_spec(extra: Value) -> Value {
    let mut spec = json!({
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

fn defaulted_container(name: &str, image: &str, policy: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "imagePullPolicy": policy,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    })
}

fn simple_template() -> Value {
    json!({
        "metadata": { "labels": { "app": "web" } },
        "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] },
    })
}

fn defaulted_simple_template() -> Value {
    json!({
        "metadata": { "labels": { "app": "web" } },
        "spec": template_spec(json!({
            "containers": [defaulted_container("web", "nginx:1.27", "IfNotPresent")],
        })),
    })
}

#[test]
fn pod() {
    check(
        "v1",
        "Pod",
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" },
            "spec": {
                "containers": [{
                    "name": "app", "image": "nginx",
                    "ports": [{ "containerPort": 80 }],
                    "env": [{ "name": "NODE", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } }],
                    "livenessProbe": { "httpGet": { "port": 80 } },
                    "readinessProbe": { "grpc": { "port": 9000 }, "periodSeconds": 5 },
                    "lifecycle": { "preStop": { "httpGet": { "port": 80, "path": "/stop" } } },
                    "resources": { "limits": { "cpu": "1" } },
                }],
                "initContainers": [{ "name": "init", "image": "busybox:latest" }],
                "ephemeralContainers": [{ "name": "debug", "image": "busybox:1.36" }],
                "serviceAccountName": "builder",
            },
        }),
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "p" },
            "spec": template_spec(json!({
                "enableServiceLinks": true,
                "serviceAccountName": "builder",
                "serviceAccount": "builder",
                "containers": [{
                    "name": "app", "image": "nginx", "imagePullPolicy": "Always",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "ports": [{ "containerPort": 80, "protocol": "TCP" }],
                    "env": [{ "name": "NODE", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName", "apiVersion": "v1" } } }],
                    "livenessProbe": {
                        "httpGet": { "port": 80, "path": "/", "scheme": "HTTP" },
                        "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3,
                    },
                    "readinessProbe": {
                        "grpc": { "port": 9000, "service": "" },
                        "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3,
                    },
                    "lifecycle": { "preStop": { "httpGet": { "port": 80, "path": "/stop", "scheme": "HTTP" } } },
                    "resources": { "limits": { "cpu": "1" }, "requests": { "cpu": "1" } },
                }],
                "initContainers": [defaulted_container("init", "busybox:latest", "Always")],
                "ephemeralContainers": [defaulted_container("debug", "busybox:1.36", "IfNotPresent")],
            })),
            "status": {},
        }),
    );
}

#[test]
fn pod_volumes() {
    let input = json!({
        "spec": {
            "containers": [],
            "volumes": [
                { "name": "scratch" },
                { "name": "cm", "configMap": { "name": "c" } },
                { "name": "sec", "secret": { "secretName": "s", "defaultMode": 256 } },
                { "name": "host", "hostPath": { "path": "/var" } },
                { "name": "down", "downwardAPI": { "items": [{ "path": "n", "fieldRef": { "fieldPath": "metadata.name" } }] } },
                { "name": "proj", "projected": { "sources": [
                    { "serviceAccountToken": { "path": "token" } },
                    { "downwardAPI": { "items": [{ "path": "l", "fieldRef": { "fieldPath": "metadata.labels" } }] } },
                ] } },
                { "name": "eph", "ephemeral": { "volumeClaimTemplate": { "spec": { "accessModes": ["ReadWriteOnce"] } } } },
                { "name": "rbd", "rbd": { "monitors": ["m"], "image": "i" } },
                { "name": "mem", "emptyDir": { "medium": "Memory" } },
            ],
        },
    });
    let mut pod = input;
    apply("", "v1", "Pod", &mut pod);
    assert_eq!(
        pod["spec"]["volumes"],
        json!([
            { "name": "scratch", "emptyDir": {} },
            { "name": "cm", "configMap": { "name": "c", "defaultMode": 420 } },
            { "name": "sec", "secret": { "secretName": "s", "defaultMode": 256 } },
            { "name": "host", "hostPath": { "path": "/var", "type": "" } },
            { "name": "down", "downwardAPI": { "defaultMode": 420, "items": [{ "path": "n", "fieldRef": { "fieldPath": "metadata.name", "apiVersion": "v1" } }] } },
            { "name": "proj", "projected": { "defaultMode": 420, "sources": [
                { "serviceAccountToken": { "path": "token", "expirationSeconds": 3600 } },
                { "downwardAPI": { "items": [{ "path": "l", "fieldRef": { "fieldPath": "metadata.labels", "apiVersion": "v1" } }] } },
            ] } },
            { "name": "eph", "ephemeral": { "volumeClaimTemplate": { "spec": { "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem" } } } },
            { "name": "rbd", "rbd": { "monitors": ["m"], "image": "i", "pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring" } },
            { "name": "mem", "emptyDir": { "medium": "Memory" } },
        ])
    );
}

#[test]
fn pod_host_network_and_status_ips() {
    let mut pod = json!({
        "spec": { "hostNetwork": true, "containers": [{ "name": "a", "image": "x:1", "ports": [{ "containerPort": 8080 }, { "containerPort": 9090, "hostPort": 19090 }] }] },
        "status": { "podIP": "10.0.0.5" },
    });
    apply("", "v1", "Pod", &mut pod);
    assert_eq!(
        pod["spec"]["containers"][0]["ports"],
        json!([
            { "containerPort": 8080, "hostPort": 8080, "protocol": "TCP" },
            { "containerPort": 9090, "hostPort": 19090, "protocol": "TCP" },
        ])
    );
    assert_eq!(pod["status"]["podIPs"], json!([{ "ip": "10.0.0.5" }]));
}

#[test]
fn templates_do_not_get_pod_only_defaults() {
    // enableServiceLinks and requests-from-limits are SetDefaults_Pod, not SetDefaults_PodSpec.
    check(
        "v1",
        "PodTemplate",
        json!({ "template": { "spec": { "containers": [{ "name": "a", "image": "a:1", "resources": { "limits": { "cpu": "1" } } }] } } }),
        json!({ "template": { "spec": template_spec(json!({
            "containers": [{
                "name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent",
                "resources": { "limits": { "cpu": "1" } },
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            }],
        })) } }),
    );
}

#[test]
fn pod_status_on_create() {
    let qos = |containers: Value| {
        let mut pod =
            json!({ "spec": { "containers": containers }, "status": { "phase": "Running" } });
        prepare_pod_status(&mut pod);
        assert_eq!(pod["status"]["phase"], "Pending");
        pod["status"]["qosClass"].as_str().unwrap().to_owned()
    };
    assert_eq!(qos(json!([{ "name": "a" }])), "BestEffort");
    assert_eq!(qos(json!([{ "name": "a", "resources": {} }])), "BestEffort");
    assert_eq!(
        qos(json!([{ "name": "a", "resources": { "requests": { "cpu": "0" } } }])),
        "BestEffort"
    );
    assert_eq!(
        qos(json!([{ "name": "a", "resources": { "requests": { "cpu": "100m" } } }])),
        "Burstable"
    );
    assert_eq!(
        qos(json!([{ "name": "a", "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }])),
        "Guaranteed"
    );
    assert_eq!(
        qos(json!([{ "name": "a", "resources": {
            "limits": { "cpu": "1", "memory": "1Gi" },
            "requests": { "cpu": "1000m", "memory": "1073741824" },
        } }])),
        "Guaranteed"
    );
    assert_eq!(
        qos(json!([{ "name": "a", "resources": {
            "limits": { "cpu": "1", "memory": "1Gi" },
            "requests": { "cpu": "500m" },
        } }])),
        "Burstable"
    );
    assert_eq!(
        qos(json!([{ "name": "a", "resources": { "limits": { "cpu": "1" } } }])),
        "Burstable"
    );
    assert_eq!(
        qos(json!([
            { "name": "a", "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } },
            { "name": "b" },
        ])),
        "Burstable"
    );
    // Only cpu and memory count.
    assert_eq!(
        qos(json!([{ "name": "a", "resources": { "limits": { "nvidia.com/gpu": "1" } } }])),
        "BestEffort"
    );

    let mut gated = json!({ "spec": { "containers": [], "schedulingGates": [{ "name": "g" }] } });
    prepare_pod_status(&mut gated);
    assert_eq!(
        gated["status"]["conditions"][0]["reason"],
        "SchedulingGated"
    );

    let mut pod = json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "a", "image": "a:1" }] } });
    prepare_create("", "v1", "Pod", &mut pod);
    assert_eq!(
        pod["status"],
        json!({ "phase": "Pending", "qosClass": "BestEffort" })
    );
    assert_eq!(pod["spec"]["enableServiceLinks"], true);
}

#[test]
fn service() {
    check(
        "v1",
        "Service",
        json!({ "spec": { "selector": { "app": "web" }, "ports": [{ "port": 80 }, { "port": 53, "protocol": "UDP", "targetPort": "dns" }] } }),
        json!({
            "spec": {
                "selector": { "app": "web" },
                "ports": [
                    { "port": 80, "protocol": "TCP", "targetPort": 80 },
                    { "port": 53, "protocol": "UDP", "targetPort": "dns" },
                ],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"],
            },
            "status": { "loadBalancer": {} },
        }),
    );
    check(
        "v1",
        "Service",
        json!({ "spec": { "type": "LoadBalancer", "clusterIP": "10.96.0.10", "sessionAffinity": "ClientIP", "ports": [{ "port": 443, "targetPort": 0 }] },
                "status": { "loadBalancer": { "ingress": [{ "ip": "1.2.3.4" }, { "hostname": "lb" }] } } }),
        json!({
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 10800 } },
                "ports": [{ "port": 443, "protocol": "TCP", "targetPort": 443 }],
                "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster",
                "allocateLoadBalancerNodePorts": true,
                "ipFamilyPolicy": "SingleStack",
                "ipFamilies": ["IPv4"],
            },
            "status": { "loadBalancer": { "ingress": [{ "ip": "1.2.3.4", "ipMode": "VIP" }, { "hostname": "lb" }] } },
        }),
    );
    check(
        "v1",
        "Service",
        json!({ "spec": { "type": "ExternalName", "externalName": "example.com", "sessionAffinityConfig": { "clientIP": {} } } }),
        json!({
            "spec": { "type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None" },
            "status": { "loadBalancer": {} },
        }),
    );
    // Headless: with a selector single-stack, without one dual-stack (even on a single-stack cluster).
    check(
        "v1",
        "Service",
        json!({ "spec": { "clusterIP": "None" } }),
        json!({
            "spec": {
                "clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP", "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"],
            },
            "status": { "loadBalancer": {} },
        }),
    );
    let mut headless = json!({ "spec": { "clusterIP": "None", "selector": { "a": "b" } } });
    apply("", "v1", "Service", &mut headless);
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4"]));
    // ClusterIP with externalIPs is externally accessible.
    let mut external = json!({ "spec": { "externalIPs": ["1.2.3.4"], "clusterIP": "fd00::1" } });
    apply("", "v1", "Service", &mut external);
    assert_eq!(external["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(external["spec"]["ipFamilies"], json!(["IPv6"]));
}

#[test]
fn service_allocation_questions() {
    assert!(needs_cluster_ip(&json!({ "spec": {} })));
    assert!(needs_cluster_ip(&json!({ "spec": { "clusterIP": "" } })));
    assert!(needs_cluster_ip(&json!({})));
    assert!(!needs_cluster_ip(
        &json!({ "spec": { "clusterIP": "None" } })
    ));
    assert!(!needs_cluster_ip(
        &json!({ "spec": { "clusterIP": "10.0.0.1" } })
    ));
    assert!(!needs_cluster_ip(
        &json!({ "spec": { "type": "ExternalName" } })
    ));
    assert!(!needs_cluster_ip(&json!(null)));
    assert!(!needs_cluster_ip(&json!({ "spec": { "clusterIP": 5 } })));

    let ports =
        json!([{ "port": 80 }, { "port": 81, "nodePort": 30001 }, { "port": 82, "nodePort": 0 }]);
    assert_eq!(
        needs_node_ports(&json!({ "spec": { "type": "NodePort", "ports": ports } })),
        vec![0, 2]
    );
    assert_eq!(
        needs_node_ports(&json!({ "spec": { "type": "LoadBalancer", "ports": ports } })),
        vec![0, 2]
    );
    assert_eq!(
        needs_node_ports(
            &json!({ "spec": { "type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": ports } })
        ),
        Vec::<usize>::new()
    );
    assert!(needs_node_ports(&json!({ "spec": { "ports": ports } })).is_empty());
    assert!(needs_node_ports(&json!({ "spec": { "type": "NodePort", "ports": "x" } })).is_empty());

    assert!(needs_health_check_node_port(
        &json!({ "spec": { "type": "LoadBalancer", "externalTrafficPolicy": "Local" } })
    ));
    assert!(!needs_health_check_node_port(
        &json!({ "spec": { "type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000 } })
    ));
    assert!(!needs_health_check_node_port(
        &json!({ "spec": { "type": "NodePort", "externalTrafficPolicy": "Local" } })
    ));
}

#[test]
fn deployment() {
    check(
        "apps/v1",
        "Deployment",
        json!({ "spec": { "selector": { "matchLabels": { "app": "web" } }, "template": simple_template() } }),
        json!({
            "spec": {
                "selector": { "matchLabels": { "app": "web" } },
                "template": defaulted_simple_template(),
                "replicas": 1,
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": "25%", "maxSurge": "25%" } },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
            "status": {},
        }),
    );
    // Recreate gets no rollingUpdate; replicas 0 stays 0.
    let mut d = json!({ "spec": { "replicas": 0, "strategy": { "type": "Recreate" } } });
    apply("apps", "v1", "Deployment", &mut d);
    assert_eq!(d["spec"]["strategy"], json!({ "type": "Recreate" }));
    assert_eq!(d["spec"]["replicas"], 0);
}

#[test]
fn replica_sets_and_controllers() {
    check(
        "apps/v1",
        "ReplicaSet",
        json!({ "spec": { "template": simple_template() } }),
        json!({ "spec": { "replicas": 1, "template": defaulted_simple_template() }, "status": { "replicas": 0 } }),
    );
    check(
        "v1",
        "ReplicationController",
        json!({ "metadata": { "name": "rc" }, "spec": { "template": simple_template() } }),
        json!({
            "metadata": { "name": "rc", "labels": { "app": "web" } },
            "spec": { "replicas": 1, "selector": { "app": "web" }, "template": defaulted_simple_template() },
            "status": { "replicas": 0 },
        }),
    );
}

#[test]
fn stateful_set() {
    check(
        "apps/v1",
        "StatefulSet",
        json!({ "spec": {
            "serviceName": "db", "template": simple_template(),
            "volumeClaimTemplates": [{ "metadata": { "name": "data" }, "spec": { "accessModes": ["ReadWriteOnce"] } }],
        } }),
        json!({
            "spec": {
                "serviceName": "db",
                "template": defaulted_simple_template(),
                "volumeClaimTemplates": [{
                    "metadata": { "name": "data" },
                    "spec": { "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem" },
                    "status": { "phase": "Pending" },
                }],
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 0 } },
                "persistentVolumeClaimRetentionPolicy": { "whenDeleted": "Retain", "whenScaled": "Retain" },
                "replicas": 1,
                "revisionHistoryLimit": 10,
            },
            "status": { "replicas": 0, "availableReplicas": 0 },
        }),
    );
    // OnDelete gets no rollingUpdate; an explicit RollingUpdate without rollingUpdate keeps none.
    let mut ss = json!({ "spec": { "updateStrategy": { "type": "OnDelete" } } });
    apply("apps", "v1", "StatefulSet", &mut ss);
    assert_eq!(ss["spec"]["updateStrategy"], json!({ "type": "OnDelete" }));
    let mut ss = json!({ "spec": { "updateStrategy": { "type": "RollingUpdate" } } });
    apply("apps", "v1", "StatefulSet", &mut ss);
    assert_eq!(
        ss["spec"]["updateStrategy"],
        json!({ "type": "RollingUpdate" })
    );
}

#[test]
fn daemon_set() {
    check(
        "apps/v1",
        "DaemonSet",
        json!({ "spec": { "template": simple_template() } }),
        json!({
            "spec": {
                "template": defaulted_simple_template(),
                "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1, "maxSurge": 0 } },
                "revisionHistoryLimit": 10,
            },
            "status": { "currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0 },
        }),
    );
}

fn job_template() -> Value {
    json!({ "spec": { "restartPolicy": "Never", "containers": [{ "name": "pi", "image": "perl:5.34" }] } })
}

fn defaulted_job_template() -> Value {
    json!({ "spec": template_spec(json!({
        "restartPolicy": "Never",
        "containers": [defaulted_container("pi", "perl:5.34", "IfNotPresent")],
    })) })
}

#[test]
fn job() {
    check(
        "batch/v1",
        "Job",
        json!({ "spec": { "template": job_template() } }),
        json!({
            "spec": {
                "template": defaulted_job_template(),
                "completions": 1,
                "parallelism": 1,
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "suspend": false,
                "podReplacementPolicy": "TerminatingOrFailed",
                "manualSelector": false,
            },
            "status": {},
        }),
    );
    // Parallelism without completions: completions stays unset (a work queue).
    let mut j = json!({ "spec": { "parallelism": 3, "backoffLimitPerIndex": 1, "podFailurePolicy": {
        "rules": [{ "action": "Ignore", "onPodConditions": [{ "type": "DisruptionTarget" }] }],
    } } });
    apply("batch", "v1", "Job", &mut j);
    assert!(j["spec"].get("completions").is_none());
    assert_eq!(j["spec"]["parallelism"], 3);
    assert_eq!(j["spec"]["backoffLimit"], 2147483647);
    assert_eq!(j["spec"]["podReplacementPolicy"], "Failed");
    assert_eq!(
        j["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
        "True"
    );
}

#[test]
fn job_create_generates_selector() {
    let mut j = json!({
        "metadata": { "name": "pi", "uid": "u-1" },
        "spec": { "template": job_template() },
        "status": { "active": 3 },
    });
    prepare_create("batch", "v1", "Job", &mut j);
    let labels = json!({
        "batch.kubernetes.io/controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u-1",
        "job-name": "pi",
    });
    assert_eq!(j["spec"]["template"]["metadata"]["labels"], labels);
    assert_eq!(
        j["spec"]["selector"],
        json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": "u-1" } })
    );
    assert_eq!(j["metadata"]["labels"], labels);
    assert_eq!(j["status"], json!({}));

    let mut manual = json!({ "metadata": { "name": "m", "uid": "u" }, "spec": { "manualSelector": true, "template": job_template() } });
    prepare_create("batch", "v1", "Job", &mut manual);
    assert!(manual["spec"].get("selector").is_none());
}

#[test]
fn cron_job() {
    check(
        "batch/v1",
        "CronJob",
        json!({ "spec": { "schedule": "* * * * *", "jobTemplate": { "spec": { "template": job_template() } } } }),
        json!({
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": { "spec": { "template": defaulted_job_template() } },
                "concurrencyPolicy": "Allow",
                "suspend": false,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
            },
            "status": {},
        }),
    );
}

#[test]
fn namespace() {
    check(
        "v1",
        "Namespace",
        json!({ "metadata": { "name": "team", "labels": { "kubernetes.io/metadata.name": "wrong", "x": "y" } } }),
        json!({
            "metadata": { "name": "team", "labels": { "kubernetes.io/metadata.name": "team", "x": "y" } },
            "spec": {},
            "status": { "phase": "Active" },
        }),
    );
    let mut ns = json!({ "metadata": { "name": "n" }, "spec": { "finalizers": ["example.com/x"] }, "status": { "phase": "Terminating" } });
    prepare_create("", "v1", "Namespace", &mut ns);
    assert_eq!(
        ns["spec"]["finalizers"],
        json!(["example.com/x", "kubernetes"])
    );
    assert_eq!(ns["status"], json!({ "phase": "Active" }));
    prepare_create("", "v1", "Namespace", &mut ns);
    assert_eq!(
        ns["spec"]["finalizers"],
        json!(["example.com/x", "kubernetes"])
    );
    // Updates may drop the finalizer (the namespace controller does): apply keeps it dropped.
    let mut finalized = json!({ "metadata": { "name": "n" }, "spec": { "finalizers": [] }, "status": { "phase": "Terminating" } });
    apply("", "v1", "Namespace", &mut finalized);
    assert_eq!(finalized["spec"]["finalizers"], json!([]));
    assert_eq!(finalized["status"]["phase"], "Terminating");
}

#[test]
fn small_core_kinds() {
    check(
        "v1",
        "Secret",
        json!({ "data": {} }),
        json!({ "data": {}, "type": "Opaque" }),
    );
    check(
        "v1",
        "Secret",
        json!({ "type": "kubernetes.io/tls" }),
        json!({ "type": "kubernetes.io/tls" }),
    );
    check(
        "v1",
        "ServiceAccount",
        json!({ "metadata": { "name": "sa" } }),
        json!({ "metadata": { "name": "sa" } }),
    );
    check("v1", "ConfigMap", json!({}), json!({}));
    check(
        "v1",
        "PersistentVolumeClaim",
        json!({ "spec": { "accessModes": ["ReadWriteOnce"] } }),
        json!({ "spec": { "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem" }, "status": { "phase": "Pending" } }),
    );
    check(
        "v1",
        "PersistentVolume",
        json!({ "spec": { "hostPath": { "path": "/data" } } }),
        json!({
            "spec": { "hostPath": { "path": "/data", "type": "" }, "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem" },
            "status": { "phase": "Pending" },
        }),
    );
    check(
        "v1",
        "Endpoints",
        json!({ "subsets": [{ "addresses": [{ "ip": "10.0.0.1" }], "ports": [{ "port": 80 }] }] }),
        json!({ "subsets": [{ "addresses": [{ "ip": "10.0.0.1" }], "ports": [{ "port": 80, "protocol": "TCP" }] }] }),
    );
    check(
        "v1",
        "LimitRange",
        json!({ "spec": { "limits": [{ "type": "Container", "max": { "cpu": "2" }, "min": { "memory": "10Mi" } }, { "type": "Pod", "max": { "cpu": "4" } }] } }),
        json!({ "spec": { "limits": [
            { "type": "Container", "max": { "cpu": "2" }, "min": { "memory": "10Mi" }, "default": { "cpu": "2" }, "defaultRequest": { "cpu": "2", "memory": "10Mi" } },
            { "type": "Pod", "max": { "cpu": "4" } },
        ] } }),
    );
}

#[test]
fn other_groups() {
    check(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        json!({ "spec": { "podSelector": {}, "ingress": [{ "ports": [{ "port": 80 }] }], "egress": [{ "ports": [{ "port": 53, "protocol": "UDP" }] }] } }),
        json!({ "spec": {
            "podSelector": {},
            "ingress": [{ "ports": [{ "port": 80, "protocol": "TCP" }] }],
            "egress": [{ "ports": [{ "port": 53, "protocol": "UDP" }] }],
            "policyTypes": ["Ingress", "Egress"],
        } }),
    );
    check(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        json!({ "spec": { "podSelector": {} } }),
        json!({ "spec": { "podSelector": {}, "policyTypes": ["Ingress"] } }),
    );
    check(
        "networking.k8s.io/v1",
        "Ingress",
        json!({ "spec": { "rules": [] } }),
        json!({ "spec": { "rules": [] }, "status": { "loadBalancer": {} } }),
    );
    check(
        "networking.k8s.io/v1",
        "IngressClass",
        json!({ "spec": { "controller": "x", "parameters": { "kind": "K", "name": "n" } } }),
        json!({ "spec": { "controller": "x", "parameters": { "kind": "K", "name": "n", "scope": "Cluster" } } }),
    );
    check(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        json!({ "roleRef": { "kind": "Role", "name": "r" }, "subjects": [
            { "kind": "User", "name": "alice" }, { "kind": "Group", "name": "devs" },
            { "kind": "ServiceAccount", "name": "sa", "namespace": "ns" },
        ] }),
        json!({ "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r" }, "subjects": [
            { "kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io" },
            { "kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io" },
            { "kind": "ServiceAccount", "name": "sa", "namespace": "ns" },
        ] }),
    );
    check(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        json!({ "roleRef": { "kind": "ClusterRole", "name": "r", "apiGroup": "rbac.authorization.k8s.io" } }),
        json!({ "roleRef": { "kind": "ClusterRole", "name": "r", "apiGroup": "rbac.authorization.k8s.io" } }),
    );
    check(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        json!({ "spec": { "maxReplicas": 5, "scaleTargetRef": { "kind": "Deployment", "name": "d" } } }),
        json!({
            "spec": {
                "maxReplicas": 5, "scaleTargetRef": { "kind": "Deployment", "name": "d" }, "minReplicas": 1,
                "metrics": [{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 80 } } }],
            },
            "status": { "currentMetrics": null, "desiredReplicas": 0 },
        }),
    );
    let mut hpa = json!({ "spec": { "metrics": [{ "type": "Pods" }], "behavior": { "scaleDown": { "stabilizationWindowSeconds": 60 } } } });
    apply("autoscaling", "v2", "HorizontalPodAutoscaler", &mut hpa);
    assert_eq!(
        hpa["spec"]["behavior"],
        json!({
            "scaleUp": { "stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                { "type": "Pods", "value": 4, "periodSeconds": 15 },
                { "type": "Percent", "value": 100, "periodSeconds": 15 },
            ] },
            "scaleDown": { "stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                { "type": "Percent", "value": 100, "periodSeconds": 15 },
            ] },
        })
    );
    assert_eq!(hpa["spec"]["metrics"], json!([{ "type": "Pods" }]));
    check(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        json!({ "spec": { "maxReplicas": 5 } }),
        json!({ "spec": { "maxReplicas": 5, "minReplicas": 1 }, "status": { "currentReplicas": 0, "desiredReplicas": 0 } }),
    );
    check(
        "policy/v1",
        "PodDisruptionBudget",
        json!({ "spec": { "minAvailable": 1 } }),
        json!({ "spec": { "minAvailable": 1 }, "status": { "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0 } }),
    );
    check(
        "scheduling.k8s.io/v1",
        "PriorityClass",
        json!({ "value": 1000 }),
        json!({ "value": 1000, "preemptionPolicy": "PreemptLowerPriority" }),
    );
    check(
        "storage.k8s.io/v1",
        "StorageClass",
        json!({ "provisioner": "p" }),
        json!({ "provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate" }),
    );
    check(
        "storage.k8s.io/v1",
        "CSIDriver",
        json!({ "spec": {} }),
        json!({ "spec": {
            "attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
            "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"], "requiresRepublish": false,
        } }),
    );
    check(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        json!({ "addressType": "IPv4", "endpoints": [{ "addresses": ["10.0.0.1"] }], "ports": [{ "port": 80 }] }),
        json!({
            "addressType": "IPv4",
            "endpoints": [{ "addresses": ["10.0.0.1"], "conditions": {} }],
            "ports": [{ "port": 80, "name": "", "protocol": "TCP" }],
        }),
    );
}

#[test]
fn unknown_kinds_and_versions_are_untouched() {
    for (group, version, kind) in [
        ("", "v1", "Widget"),
        ("apps", "v1beta1", "Deployment"),
        ("example.com", "v1", "Deployment"),
        ("", "v2", "Pod"),
    ] {
        let mut object = json!({ "spec": {} });
        apply(group, version, kind, &mut object);
        assert_eq!(object, json!({ "spec": {} }), "{group}/{version} {kind}");
    }
}

#[test]
fn client_values_are_preserved() {
    let mut d = json!({ "spec": {
        "replicas": 3, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 30,
        "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 2 } },
        "template": { "spec": {
            "restartPolicy": "OnFailure", "dnsPolicy": "Default", "schedulerName": "mine",
            "terminationGracePeriodSeconds": 0, "securityContext": { "runAsUser": 1000 },
            "containers": [{
                "name": "a", "image": "nginx", "imagePullPolicy": "Never",
                "terminationMessagePath": "/tmp/log", "terminationMessagePolicy": "FallbackToLogsOnError",
                "resources": { "requests": { "cpu": "1" } },
                "ports": [{ "containerPort": 53, "protocol": "UDP" }],
                "readinessProbe": { "exec": { "command": ["true"] }, "timeoutSeconds": 7, "periodSeconds": 9, "successThreshold": 2, "failureThreshold": 8 },
            }],
        } },
    } });
    let before = d.clone();
    apply("apps", "v1", "Deployment", &mut d);
    assert_eq!(d["spec"], before["spec"]);
    assert_eq!(d["status"], json!({}));

    let mut svc = json!({ "spec": {
        "type": "NodePort", "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
        "ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6"], "clusterIPs": ["fd00::1"], "clusterIP": "fd00::1",
        "ports": [{ "port": 80, "targetPort": 8080, "protocol": "SCTP", "nodePort": 30080 }], "sessionAffinity": "None",
    } });
    let before = svc.clone();
    apply("", "v1", "Service", &mut svc);
    assert_eq!(svc["spec"], before["spec"]);
}

#[test]
fn idempotent_on_create_too() {
    let cases = [
        (
            "",
            "v1",
            "Pod",
            json!({ "metadata": { "name": "p" }, "spec": { "containers": [{ "name": "a", "image": "a", "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }] } }),
        ),
        (
            "",
            "v1",
            "Namespace",
            json!({ "metadata": { "name": "n" } }),
        ),
        (
            "",
            "v1",
            "Service",
            json!({ "spec": { "ports": [{ "port": 1 }] } }),
        ),
        (
            "batch",
            "v1",
            "Job",
            json!({ "metadata": { "name": "j", "uid": "u" }, "spec": { "template": job_template() } }),
        ),
        ("apps", "v1", "StatefulSet", json!({ "spec": {} })),
    ];
    for (group, version, kind, input) in cases {
        let mut once = input.clone();
        apply(group, version, kind, &mut once);
        prepare_create(group, version, kind, &mut once);
        let mut twice = once.clone();
        apply(group, version, kind, &mut twice);
        assert_eq!(once, twice, "{kind}: apply after prepare_create changed it");
        prepare_create(group, version, kind, &mut twice);
        assert_eq!(once, twice, "{kind}: prepare_create twice changed it");
    }
    let mut pod = json!({ "spec": { "containers": [{ "name": "a", "image": "a", "resources": { "limits": { "cpu": "1", "memory": "1Gi" } } }] } });
    prepare_create("", "v1", "Pod", &mut pod);
    assert_eq!(pod["status"]["qosClass"], "Guaranteed");
}

const KINDS: &[(&str, &str, &str)] = &[
    ("", "v1", "Pod"),
    ("", "v1", "PodTemplate"),
    ("", "v1", "ReplicationController"),
    ("", "v1", "Service"),
    ("", "v1", "Namespace"),
    ("", "v1", "Secret"),
    ("", "v1", "PersistentVolumeClaim"),
    ("", "v1", "PersistentVolume"),
    ("", "v1", "Endpoints"),
    ("", "v1", "LimitRange"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "ReplicaSet"),
    ("apps", "v1", "StatefulSet"),
    ("apps", "v1", "DaemonSet"),
    ("batch", "v1", "Job"),
    ("batch", "v1", "CronJob"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
    ("networking.k8s.io", "v1", "IngressClass"),
    ("networking.k8s.io", "v1", "Ingress"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("scheduling.k8s.io", "v1", "PriorityClass"),
    ("storage.k8s.io", "v1", "StorageClass"),
    ("storage.k8s.io", "v1", "CSIDriver"),
    ("discovery.k8s.io", "v1", "EndpointSlice"),
];

/// A rich object touching most defaulted paths, used as the base for corruption.
fn rich() -> Value {
    let container = json!({
        "name": "a", "image": "nginx", "ports": [{ "containerPort": 80 }],
        "env": [{ "name": "X", "valueFrom": { "fieldRef": { "fieldPath": "f" } } }],
        "livenessProbe": { "httpGet": { "port": 1 }, "grpc": { "port": 2 } },
        "lifecycle": { "postStart": { "httpGet": { "port": 1 } } },
        "resources": { "limits": { "cpu": "1", "memory": "1Gi" }, "requests": { "cpu": "1" } },
    });
    let pod_spec = json!({
        "hostNetwork": true,
        "serviceAccount": "sa",
        "containers": [container], "initContainers": [{ "name": "i" }], "ephemeralContainers": [{ "name": "e" }],
        "schedulingGates": [{ "name": "g" }],
        "volumes": [
            { "name": "v" }, { "name": "s", "secret": {} }, { "name": "c", "configMap": {} }, { "name": "h", "hostPath": {} },
            { "name": "d", "downwardAPI": { "items": [{ "fieldRef": {} }] } },
            { "name": "p", "projected": { "sources": [{ "serviceAccountToken": {} }, { "downwardAPI": { "items": [{ "fieldRef": {} }] } }] } },
            { "name": "e", "ephemeral": { "volumeClaimTemplate": { "spec": {} } } },
            { "name": "i", "iscsi": {} }, { "name": "r", "rbd": {} }, { "name": "z", "azureDisk": {} }, { "name": "o", "scaleIO": {} },
        ],
    });
    let template = json!({ "metadata": { "labels": { "a": "b" } }, "spec": pod_spec });
    json!({
        "metadata": { "name": "x", "uid": "u", "labels": {} },
        "spec": {
            "containers": pod_spec["containers"], "volumes": pod_spec["volumes"], "hostNetwork": true,
            "template": template, "jobTemplate": { "spec": { "template": { "spec": { "containers": [{}] } }, "podFailurePolicy": { "rules": [{ "onPodConditions": [{}] }] } } },
            "podFailurePolicy": { "rules": [{ "onPodConditions": [{}] }] },
            "strategy": {}, "updateStrategy": {}, "persistentVolumeClaimRetentionPolicy": {},
            "volumeClaimTemplates": [{ "spec": {} }],
            "type": "LoadBalancer", "sessionAffinity": "ClientIP", "clusterIP": "None",
            "ports": [{ "port": 80 }], "externalIPs": ["1.1.1.1"],
            "ingress": [{ "ports": [{}] }], "egress": [{ "ports": [{}] }],
            "parameters": {}, "behavior": { "scaleUp": {}, "scaleDown": {} },
            "limits": [{ "type": "Container", "max": { "cpu": "1" }, "min": { "cpu": "1" } }],
            "hostPath": {}, "rbd": {}, "finalizers": [],
        },
        "status": { "podIP": "1.1.1.1", "hostIPs": [{ "ip": "2.2.2.2" }], "loadBalancer": { "ingress": [{ "ip": "1.1.1.1" }] } },
        "subsets": [{ "ports": [{}] }],
        "roleRef": {}, "subjects": [{ "kind": "User" }],
        "endpoints": [{}], "ports": [{}],
    })
}

/// Every value inside `v`, by JSON pointer.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(
                    child,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn odd_inputs_never_panic() {
    let odd = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1.5),
        json!(""),
        json!("x"),
        json!([]),
        json!([null, 1, "a", {}]),
        json!({}),
        json!({ "": null }),
    ];
    // Inside the rich object, a smaller set of replacements keeps the sweep quick.
    let inner = [json!(null), json!(1), json!("x"), json!([null]), json!({})];
    let base = rich();
    let mut paths = Vec::new();
    pointers(&base, String::new(), &mut paths);
    for &(group, version, kind) in KINDS {
        for top in &odd {
            let mut object = top.clone();
            apply(group, version, kind, &mut object);
            prepare_create(group, version, kind, &mut object);
            let _ = needs_cluster_ip(&object);
            let _ = needs_node_ports(&object);
            let _ = needs_health_check_node_port(&object);
        }
        for path in &paths {
            for replacement in &inner {
                let mut object = base.clone();
                if let Some(slot) = object.pointer_mut(path) {
                    *slot = replacement.clone();
                }
                apply(group, version, kind, &mut object);
                let once = object.clone();
                apply(group, version, kind, &mut object);
                assert_eq!(
                    once, object,
                    "{kind}: not idempotent with {path} = {replacement}"
                );
                prepare_create(group, version, kind, &mut object);
                prepare_pod_status(&mut object);
                let _ = needs_cluster_ip(&object);
                let _ = needs_node_ports(&object);
                let _ = needs_health_check_node_port(&object);
            }
        }
    }
}

#[test]
fn wrong_types_are_left_alone() {
    let mut d = json!({ "spec": { "replicas": "three", "strategy": "fast", "template": { "spec": { "containers": "none", "restartPolicy": 7 } } } });
    apply("apps", "v1", "Deployment", &mut d);
    assert_eq!(d["spec"]["replicas"], "three");
    assert_eq!(d["spec"]["strategy"], "fast");
    assert_eq!(d["spec"]["template"]["spec"]["containers"], "none");
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], 7);
    let mut svc = json!({ "spec": "x" });
    apply("", "v1", "Service", &mut svc);
    assert_eq!(
        svc,
        json!({ "spec": "x", "status": { "loadBalancer": {} } })
    );
}

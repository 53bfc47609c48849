//! Tests of decoding against bodies encoded the way client-go encodes them: the typed message
//! (non-pointer scalars written even when zero, as Go's generated marshallers do) inside a
//! `runtime.Unknown` envelope after the `k8s\0` magic.

use prost::Message as _;
use prost_reflect::DynamicMessage;
use serde_json::{Value as Json, json};

use crate::{DecodeError, MAGIC, UNKNOWN, decode, is_protobuf, pool};

/// The message `message` built from its proto3-JSON form.
fn message(message: &str, proto_json: Json) -> Vec<u8> {
    let descriptor = pool().get_message_by_name(message).expect(message);
    DynamicMessage::deserialize(descriptor, proto_json)
        .expect("proto json")
        .encode_to_vec()
}

/// A complete body: magic, envelope, typed message.
fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let envelope = pool().get_message_by_name(UNKNOWN).expect("envelope");
    let mut unknown = DynamicMessage::new(envelope);
    let type_meta = pool()
        .get_message_by_name("k8s.io.apimachinery.pkg.runtime.TypeMeta")
        .expect("type meta");
    let mut tm = DynamicMessage::new(type_meta);
    tm.set_field_by_name(
        "apiVersion",
        prost_reflect::Value::String(api_version.to_owned()),
    );
    tm.set_field_by_name("kind", prost_reflect::Value::String(kind.to_owned()));
    unknown.set_field_by_name("typeMeta", prost_reflect::Value::Message(tm));
    unknown.set_field_by_name("raw", prost_reflect::Value::Bytes(raw.to_vec().into()));
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn object(api_version: &str, kind: &str, name: &str, proto_json: Json) -> Vec<u8> {
    body(api_version, kind, &message(name, proto_json))
}

/// ObjectMeta as Go writes it for a new object: every non-pointer field, zero or not.
fn meta(name: &str, extra: Json) -> Json {
    let mut m = json!({
        "name": name, "generateName": "", "namespace": "", "selfLink": "", "uid": "",
        "resourceVersion": "", "generation": "0", "creationTimestamp": {}
    });
    if let (Some(m), Json::Object(extra)) = (m.as_object_mut(), extra) {
        m.extend(extra);
    }
    m
}

#[test]
fn content_types() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "application/vnd.kubernetes.protobuf; charset=utf-8"
    ));
    assert!(is_protobuf("Application/VND.Kubernetes.Protobuf"));
    assert!(!is_protobuf("application/json"));
    assert!(is_protobuf(
        "application/vnd.kubernetes.protobuf;stream=watch"
    ));
    assert!(!is_protobuf("application/vnd.kubernetes.protobufx"));
    assert!(!is_protobuf(""));
}

#[test]
fn config_map() {
    let raw = object(
        "v1",
        "ConfigMap",
        "k8s.io.api.core.v1.ConfigMap",
        json!({
            "metadata": meta("cfg", json!({"labels": {"app": "web"}, "namespace": "ns1"})),
            "data": {"a": "b", "empty": ""},
            "immutable": false,
        }),
    );
    assert_eq!(
        decode(&raw).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "cfg",
                "namespace": "ns1",
                "labels": {"app": "web"},
                "creationTimestamp": null,
            },
            "data": {"a": "b", "empty": ""},
            "immutable": false,
        })
    );
}

#[test]
fn secret_bytes_are_base64() {
    let raw = object(
        "v1",
        "Secret",
        "k8s.io.api.core.v1.Secret",
        json!({
            "metadata": meta("s", json!({})),
            // proto3 JSON writes bytes as base64 too: these are the bytes "hunter2" and 0xff 0x00.
            "data": {"password": "aHVudGVyMg==", "bin": "/wA="},
            "stringData": {},
            "type": "Opaque",
        }),
    );
    let decoded = decode(&raw).unwrap();
    assert_eq!(
        decoded["data"],
        json!({"password": "aHVudGVyMg==", "bin": "/wA="})
    );
    assert_eq!(decoded["type"], "Opaque");
    assert!(decoded.get("stringData").is_none());
    assert!(decoded.get("immutable").is_none());
}

#[test]
fn deployment_keeps_zero_replicas() {
    let raw = object(
        "apps/v1",
        "Deployment",
        "k8s.io.api.apps.v1.Deployment",
        json!({
            "metadata": meta("web", json!({"labels": {"app": "web"}})),
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": meta("", json!({"labels": {"app": "web"}})),
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP", "name": "",
                                       "hostPort": 0, "hostIP": ""}],
                            "resources": {"limits": {"cpu": {"string": "500m"},
                                                     "memory": {"string": "128Mi"}}},
                            "terminationMessagePath": "",
                            "stdin": false,
                        }],
                        "restartPolicy": "",
                        "hostNetwork": false,
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {
                        "maxUnavailable": {"type": "0", "intVal": 0, "strVal": ""},
                        "maxSurge": {"type": "1", "intVal": 0, "strVal": "25%"},
                    },
                },
                "minReadySeconds": 0,
                "paused": false,
            },
            "status": {"replicas": 0, "observedGeneration": "0"},
        }),
    );
    assert_eq!(
        decode(&raw).unwrap(),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": null},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        }],
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
                },
            },
            "status": {},
        })
    );
}

#[test]
fn service_target_ports() {
    let raw = object(
        "v1",
        "Service",
        "k8s.io.api.core.v1.Service",
        json!({
            "metadata": meta("svc", json!({})),
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80,
                     "targetPort": {"type": "1", "strVal": "http", "intVal": 0}, "nodePort": 0},
                    {"name": "metrics", "protocol": "TCP", "port": 9090,
                     "targetPort": {"type": "0", "intVal": 9091, "strVal": ""}, "nodePort": 0},
                    {"name": "", "protocol": "UDP", "port": 53,
                     "targetPort": {"type": "0", "intVal": 0, "strVal": ""}, "nodePort": 0},
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
                "clusterIP": "",
            },
            "status": {"loadBalancer": {}},
        }),
    );
    let decoded = decode(&raw).unwrap();
    assert_eq!(
        decoded["spec"],
        json!({
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9091},
                {"protocol": "UDP", "port": 53, "targetPort": 0},
            ],
            "selector": {"app": "web"},
            "type": "ClusterIP",
        })
    );
    assert_eq!(decoded["status"], json!({"loadBalancer": {}}));
}

#[test]
fn namespace() {
    let raw = object(
        "v1",
        "Namespace",
        "k8s.io.api.core.v1.Namespace",
        json!({"metadata": meta("team-a", json!({})), "spec": {}, "status": {"phase": ""}}),
    );
    assert_eq!(
        decode(&raw).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team-a", "creationTimestamp": null},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn job() {
    let raw = object(
        "batch/v1",
        "Job",
        "k8s.io.api.batch.v1.Job",
        json!({
            "metadata": meta("pi", json!({"namespace": "default"})),
            "spec": {
                "backoffLimit": 0,
                "suspend": false,
                "template": {
                    "metadata": meta("", json!({})),
                    "spec": {
                        "containers": [{"name": "pi", "image": "perl",
                                        "command": ["perl", "-e", "print 1"]}],
                        "restartPolicy": "Never",
                    },
                },
            },
            "status": {"active": 0, "succeeded": 0, "failed": 0},
        }),
    );
    let decoded = decode(&raw).unwrap();
    assert_eq!(decoded["apiVersion"], "batch/v1");
    assert_eq!(decoded["spec"]["backoffLimit"], 0);
    assert_eq!(decoded["spec"]["suspend"], false);
    assert_eq!(
        decoded["spec"]["template"]["spec"],
        json!({
            "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"]}],
            "restartPolicy": "Never",
        })
    );
    assert_eq!(decoded["status"], json!({}));
}

#[test]
fn self_subject_access_review() {
    let raw = object(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
        json!({
            "metadata": meta("", json!({})),
            "spec": {
                "resourceAttributes": {
                    "namespace": "default", "verb": "create", "group": "", "version": "",
                    "resource": "pods", "subresource": "", "name": "",
                },
            },
            "status": {"allowed": false, "denied": false, "reason": "", "evaluationError": ""},
        }),
    );
    assert_eq!(
        decode(&raw).unwrap(),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {
                "namespace": "default", "verb": "create", "resource": "pods",
            }},
            "status": {"allowed": false},
        })
    );
}

#[test]
fn self_subject_access_review_non_resource() {
    let raw = object(
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "k8s.io.api.authorization.v1.SelfSubjectAccessReview",
        json!({"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}),
    );
    assert_eq!(
        decode(&raw).unwrap()["spec"],
        json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    );
}

#[test]
fn self_subject_review() {
    let raw = object(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        "k8s.io.api.authentication.v1.SelfSubjectReview",
        json!({"metadata": meta("", json!({})), "status": {"userInfo": {"username": "", "uid": ""}}}),
    );
    assert_eq!(
        decode(&raw).unwrap(),
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {}},
        })
    );
}

#[test]
fn token_request_and_extra_values() {
    let raw = object(
        "authentication.k8s.io/v1",
        "TokenRequest",
        "k8s.io.api.authentication.v1.TokenRequest",
        json!({
            "metadata": meta("default", json!({"namespace": "default"})),
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": "3600",
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uID": "u-1"},
            },
            "status": {"token": "", "expirationTimestamp": {}},
        }),
    );
    let decoded = decode(&raw).unwrap();
    assert_eq!(
        decoded["spec"],
        json!({
            "audiences": ["https://kubernetes.default.svc"],
            "expirationSeconds": 3600,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"},
        })
    );
    // `token` has no `omitempty` in Go, so its zero is written.
    assert_eq!(
        decoded["status"],
        json!({"token": "", "expirationTimestamp": null})
    );

    let raw = object(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "k8s.io.api.authorization.v1.SubjectAccessReview",
        json!({"spec": {"user": "u", "extra": {"scopes": {"items": ["a", "b"]}, "none": {}}}}),
    );
    assert_eq!(
        decode(&raw).unwrap()["spec"],
        json!({"user": "u", "extra": {"scopes": ["a", "b"], "none": []}})
    );
}

#[test]
fn times_and_embedded_objects() {
    let raw = object(
        "coordination.k8s.io/v1",
        "Lease",
        "k8s.io.api.coordination.v1.Lease",
        json!({
            "metadata": meta("l", json!({
                "creationTimestamp": {"seconds": "1700000000", "nanos": 999},
                "deletionGracePeriodSeconds": "0",
                "managedFields": [{"manager": "kubectl", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"Raw": "eyJmOmRhdGEiOnt9fQ=="}}],
            })),
            "spec": {"renewTime": {"seconds": "1700000000", "nanos": 123456789},
                     "leaseDurationSeconds": 0},
        }),
    );
    let decoded = decode(&raw).unwrap();
    assert_eq!(
        decoded["metadata"]["creationTimestamp"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(decoded["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        decoded["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {}})
    );
    assert_eq!(decoded["spec"]["renewTime"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(decoded["spec"]["leaseDurationSeconds"], 0);

    // A RawExtension holds JSON, or (from protobuf clients) another protobuf object.
    let inner = object(
        "v1",
        "ConfigMap",
        "k8s.io.api.core.v1.ConfigMap",
        json!({"metadata": {"name": "inner"}}),
    );
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    for (raw, expected) in [
        (br#"{"x":[1,2]}"#.to_vec(), json!({"x": [1, 2]})),
        (
            inner,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}}),
        ),
    ] {
        let body = object(
            "apps/v1",
            "ControllerRevision",
            "k8s.io.api.apps.v1.ControllerRevision",
            json!({"metadata": {"name": "r"}, "data": {"raw": b64(&raw)}, "revision": "3"}),
        );
        let decoded = decode(&body).unwrap();
        assert_eq!(decoded["data"], expected);
        assert_eq!(decoded["revision"], 3);
    }
    let body = object(
        "apps/v1",
        "ControllerRevision",
        "k8s.io.api.apps.v1.ControllerRevision",
        json!({"data": {"raw": b64(b"not json")}}),
    );
    assert!(matches!(decode(&body), Err(DecodeError::Malformed(_))));
}

#[test]
fn custom_resource_definition_schema() {
    let raw = object(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "versions": [{"name": "v1", "served": true,
                "storage": false, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "xKubernetesPreserveUnknownFields": false,
                    "properties": {
                        "list": {"type": "array", "items": {"schema": {"type": "string"}}},
                        "map": {"type": "object",
                                "additionalProperties": {"allows": true}},
                        "default": {"default": {"raw": "eyJhIjoxfQ=="}},
                    },
                }}}]},
        }),
    );
    assert_eq!(
        decode(&raw).unwrap()["spec"]["versions"][0],
        json!({"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": false,
            "properties": {
                "list": {"type": "array", "items": {"type": "string"}},
                "map": {"type": "object", "additionalProperties": true},
                "default": {"default": {"a": 1}},
            },
        }}})
    );
}

#[test]
fn options_kinds_come_from_meta() {
    let raw = object(
        "apps/v1",
        "DeleteOptions",
        "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        json!({"gracePeriodSeconds": "0", "propagationPolicy": "Foreground"}),
    );
    assert_eq!(
        decode(&raw).unwrap(),
        json!({"apiVersion": "apps/v1", "kind": "DeleteOptions",
               "gracePeriodSeconds": 0, "propagationPolicy": "Foreground"})
    );
}

#[test]
fn every_built_in_kind_resolves() {
    let kinds = [
        ("v1", "Pod"),
        ("v1", "ServiceAccount"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Binding"),
        ("apps/v1", "StatefulSet"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("autoscaling/v1", "Scale"),
        ("batch/v1", "CronJob"),
        ("policy/v1", "Eviction"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("networking.k8s.io/v1", "Ingress"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        ("internal.apiserver.k8s.io/v1alpha1", "StorageVersion"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("resource.k8s.io/v1beta2", "ResourceClaim"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
        ),
        ("events.k8s.io/v1", "Event"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("v1", "ConfigMapList"),
    ];
    for (api_version, kind) in kinds {
        let decoded = decode(&body(api_version, kind, &[]))
            .unwrap_or_else(|e| panic!("{api_version} {kind}: {e}"));
        assert_eq!(decoded, json!({"apiVersion": api_version, "kind": kind}));
    }
}

#[test]
fn errors() {
    assert_eq!(
        decode(b"{\"kind\":\"ConfigMap\"}"),
        Err(DecodeError::NotProtobuf)
    );
    assert_eq!(decode(b""), Err(DecodeError::NotProtobuf));
    for (api_version, kind) in [
        ("v1", "Frobnicator"),
        ("example.com/v1", "Widget"),
        ("apps.example.com/v1", "Deployment"),
        ("v1", "Container"),
        ("v1", "ObjectMeta"),
        ("v1", "k8s.io.api.core.v1.Pod"),
        ("../v1", "Pod"),
        ("v9", "Pod"),
    ] {
        assert_eq!(
            decode(&body(api_version, kind, &[])),
            Err(DecodeError::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into()
            }),
        );
    }
    assert!(matches!(
        decode(&body("", "Pod", &[])),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode(&body("v1", "", &[])),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(decode(b"k8s\0"), Err(DecodeError::Malformed(_))));
    assert!(matches!(
        decode(b"k8s\0\xff\xff"),
        Err(DecodeError::Malformed(_))
    ));
    // The typed message cut short.
    let full = message(
        "k8s.io.api.core.v1.ConfigMap",
        json!({"metadata": {"name": "x"}, "data": {"a": "b"}}),
    );
    let cut = body("v1", "ConfigMap", &full[..full.len() - 2]);
    let err = decode(&cut).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("malformed protobuf body: ConfigMap"),
        "{err}"
    );
    // A wrongly typed field (a varint where the name string belongs).
    let wrong = body("v1", "ConfigMap", &[0x0a, 0x02, 0x08, 0x01]);
    assert!(matches!(decode(&wrong), Err(DecodeError::Malformed(_))));
}

#[test]
fn error_messages_are_lowercase_and_name_the_problem() {
    let unknown = DecodeError::UnknownKind {
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
    };
    assert_eq!(
        unknown.to_string(),
        "no protobuf schema for kind \"Widget\" in \"example.com/v1\""
    );
    assert!(DecodeError::NotProtobuf.to_string().contains("k8s\\0"));
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let seeds = [
        object(
            "apps/v1",
            "Deployment",
            "k8s.io.api.apps.v1.Deployment",
            json!({"metadata": meta("d", json!({"labels": {"a": "b"}})),
                   "spec": {"replicas": 0, "template": {"spec": {"containers": [
                       {"name": "c", "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": {"string": "1"}}}}]}}}}),
        ),
        object(
            "v1",
            "Secret",
            "k8s.io.api.core.v1.Secret",
            json!({"metadata": {"name": "s", "creationTimestamp": {"seconds": "5"}},
                   "data": {"k": "AAE="}}),
        ),
        object(
            "apps/v1",
            "ControllerRevision",
            "k8s.io.api.apps.v1.ControllerRevision",
            json!({"data": {"raw": "azhzAAoGCgJ2MRIBWA=="}}),
        ),
        object(
            "coordination.k8s.io/v1",
            "Lease",
            "k8s.io.api.coordination.v1.Lease",
            json!({"spec": {"renewTime": {"seconds": "-99999999999", "nanos": -5}}}),
        ),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut decoded = 0;
    for round in 0..20_000 {
        let mut input = seeds[round % seeds.len()].clone();
        match rng.below(4) {
            0 => input.truncate(rng.below(input.len() + 1)),
            1 => {
                for _ in 0..=rng.below(4) {
                    let i = rng.below(input.len());
                    if let Some(b) = input.get_mut(i) {
                        *b = rng.next() as u8;
                    }
                }
            }
            2 => {
                let len = rng.below(64);
                input = MAGIC.to_vec();
                input.extend((0..len).map(|_| rng.next() as u8));
            }
            _ => {
                let i = rng.below(input.len());
                let junk: Vec<u8> = (0..rng.below(8)).map(|_| rng.next() as u8).collect();
                input.splice(i..i, junk);
            }
        }
        if decode(&input).is_ok() {
            decoded += 1;
        }
    }
    // Some mutations hit strings' contents and still decode: the generator is not degenerate.
    assert!(decoded > 100, "{decoded}");
}

/// `inner` as length-delimited field `number`.
fn wrap(number: u64, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for mut v in [number << 3 | 2, inner.len() as u64] {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out.extend(inner);
    out
}

#[test]
fn deep_nesting_is_refused_not_overflowing() {
    // JSONSchemaProps nests itself without bound: thousands of levels of `not` (field 28), in
    // a CRD's spec (2) / versions (7) / schema (4) / openAPIV3Schema (1).
    let mut schema = Vec::new();
    for _ in 0..5_000 {
        schema = wrap(28, &schema);
    }
    let crd = wrap(2, &wrap(7, &wrap(4, &wrap(1, &schema))));
    let crd = body("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    assert!(matches!(decode(&crd), Err(DecodeError::Malformed(_))));

    // RawExtensions embedding protobuf objects embedding RawExtensions...
    let mut inner = body("v1", "ConfigMap", &[]);
    for _ in 0..20 {
        let revision = wrap(2, &wrap(1, &inner)); // data (2) / raw (1)
        inner = body("apps/v1", "ControllerRevision", &revision);
    }
    let err = decode(&inner).unwrap_err();
    assert!(err.to_string().contains("nest too deeply"), "{err}");
    let mut inner = body("v1", "ConfigMap", &[]);
    for _ in 0..3 {
        inner = body("apps/v1", "ControllerRevision", &wrap(2, &wrap(1, &inner)));
    }
    assert_eq!(
        decode(&inner).unwrap()["data"]["data"]["data"],
        json!({"apiVersion": "v1", "kind": "ConfigMap"})
    );
}

#[test]
fn real_kubectl_bodies_decode_to_kubectls_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kubectl-1.33");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let expected: Json =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        assert_eq!(decode(&body).unwrap(), expected, "{}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 10);
}

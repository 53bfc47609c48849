//! JSON patch (RFC 6902), JSON merge patch (RFC 7386), content types and error messages.

use serde_json::{Value, json};
use skiff_patch::{MAX_JSON_PATCH_OPERATIONS, PatchError, PatchType, StrategyTable, apply};

use crate::{POD, types};

fn object() -> Value {
    json!({
        "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
        "spec": {"replicas": 1, "list": [1, 2, 3], "containers": [{"name": "app"}, {"name": "sidecar"}]}
    })
}

fn patch(ty: PatchType, original: &Value, body: &str) -> Result<Value, PatchError> {
    apply(original, body.as_bytes(), ty, Some(POD), &types())
}

/// Applies `body` of type `ty` to `object()` and compares with `expected`.
fn check(ty: PatchType, body: &str, expected: Value) {
    match patch(ty, &object(), body) {
        Ok(got) => assert_eq!(got, expected, "{ty:?} {body}"),
        Err(err) => panic!("{ty:?} {body}: {err}"),
    }
}

fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut value = object();
    edit(&mut value);
    value
}

#[test]
fn json_patch_operations() {
    check(
        PatchType::Json,
        r#"[{"op": "add", "path": "/metadata/labels/c", "value": "3"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "replace", "path": "/spec/replicas", "value": 3}]"#,
        edited(|o| {
            o["metadata"]["labels"] = json!({"b": "2", "c": "3"});
            o["spec"]["replicas"] = json!(3);
        }),
    );
    check(
        PatchType::Json,
        r#"[{"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "third"}},
            {"op": "move", "from": "/spec/list", "path": "/spec/moved"},
            {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}]"#,
        edited(|o| {
            o["spec"]["containers"]
                .as_array_mut()
                .expect("list")
                .push(json!({"name": "third"}));
            let list = o["spec"]
                .as_object_mut()
                .expect("spec")
                .remove("list")
                .expect("list");
            o["spec"]["moved"] = list;
            o["metadata"]["labels"]["name"] = json!("web");
        }),
    );
    check(
        PatchType::Json,
        r#"[{"op": "remove", "path": "/spec/containers/1"}, {"op": "add", "path": "/metadata/labels/x~1y", "value": "z"}]"#,
        edited(|o| {
            o["spec"]["containers"]
                .as_array_mut()
                .expect("list")
                .truncate(1);
            o["metadata"]["labels"]["x/y"] = json!("z");
        }),
    );
    check(PatchType::Json, "[]", object());
}

#[test]
fn json_patch_failures_are_not_applicable() {
    for body in [
        r#"[{"op": "test", "path": "/spec/replicas", "value": 2}]"#,
        r#"[{"op": "remove", "path": "/spec/missing"}]"#,
        r#"[{"op": "replace", "path": "/spec/missing/deeper", "value": 1}]"#,
        r#"[{"op": "add", "path": "/spec/containers/9", "value": {}}]"#,
        r#"[{"op": "move", "from": "/spec", "path": "/spec/inside"}]"#,
        r#"[{"op": "replace", "path": "", "value": 1}]"#,
    ] {
        match patch(PatchType::Json, &object(), body) {
            Err(PatchError::NotApplicable(message)) => assert!(!message.is_empty()),
            other => panic!("{body}: unexpected {other:?}"),
        }
    }
    let err = patch(
        PatchType::Json,
        &object(),
        r#"[{"op": "test", "path": "/spec/replicas", "value": 2}]"#,
    )
    .expect_err("test fails");
    assert!(err.to_string().contains("/spec/replicas"), "{err}");
}

#[test]
fn json_patch_that_fails_late_leaves_the_original_alone() {
    let original = object();
    let err = patch(
        PatchType::Json,
        &original,
        r#"[{"op": "remove", "path": "/metadata"}, {"op": "test", "path": "/x", "value": 1}]"#,
    );
    assert!(err.is_err());
    assert_eq!(original, object());
}

#[test]
fn malformed_json_patches() {
    for body in [
        "",
        "{",
        "{}",
        r#"{"op": "add", "path": "/a", "value": 1}"#,
        r#"[{"op": "explode", "path": "/a"}]"#,
        r#"[{"op": "add", "path": "no-slash", "value": 1}]"#,
        r#"[{"op": "add", "value": 1}]"#,
    ] {
        match patch(PatchType::Json, &object(), body) {
            Err(PatchError::Malformed(message)) => assert!(!message.is_empty()),
            other => panic!("{body:?}: unexpected {other:?}"),
        }
    }
}

#[test]
fn json_patch_operation_limit() {
    let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/spec/replicas", "value": 1}))
        .collect();
    let err = patch(PatchType::Json, &object(), &Value::from(ops).to_string()).expect_err("limit");
    assert_eq!(
        err,
        PatchError::TooManyOperations {
            operations: MAX_JSON_PATCH_OPERATIONS + 1,
            max: MAX_JSON_PATCH_OPERATIONS
        }
    );
}

#[test]
fn merge_patch() {
    check(
        PatchType::Merge,
        r#"{"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"list": [4]}}"#,
        edited(|o| {
            o["metadata"]["labels"] = json!({"b": "2", "c": "3"});
            o["spec"]["list"] = json!([4]);
        }),
    );
    // Merge patch knows no merge keys: the containers list is replaced.
    check(
        PatchType::Merge,
        r#"{"spec": {"containers": [{"name": "app", "image": "x"}], "new": {"k": "v", "gone": null}}}"#,
        edited(|o| {
            o["spec"]["containers"] = json!([{"name": "app", "image": "x"}]);
            o["spec"]["new"] = json!({"k": "v"});
        }),
    );
    check(PatchType::Merge, "{}", object());
    check(
        PatchType::Merge,
        r#"{"metadata": null}"#,
        edited(|o| {
            o.as_object_mut().expect("object").remove("metadata");
        }),
    );
}

#[test]
fn malformed_merge_patches() {
    for body in ["", "{", "null", "[]", "[1]", "\"x\"", "3"] {
        match patch(PatchType::Merge, &object(), body) {
            Err(PatchError::Malformed(message)) => assert!(!message.is_empty()),
            other => panic!("{body:?}: unexpected {other:?}"),
        }
    }
}

#[test]
fn json_and_merge_patch_work_for_custom_resources() {
    let cr = json!({"spec": {"size": 1}});
    let table = StrategyTable::default();
    let got = apply(
        &cr,
        br#"{"spec": {"size": 2}}"#,
        PatchType::Merge,
        None,
        &table,
    )
    .expect("merge");
    assert_eq!(got, json!({"spec": {"size": 2}}));
    let got = apply(
        &cr,
        br#"[{"op": "replace", "path": "/spec/size", "value": 3}]"#,
        PatchType::Json,
        None,
        &table,
    )
    .expect("json");
    assert_eq!(got, json!({"spec": {"size": 3}}));
}

#[test]
fn content_types() {
    let cases = [
        ("application/json-patch+json", Some(PatchType::Json)),
        ("application/merge-patch+json", Some(PatchType::Merge)),
        (
            "application/strategic-merge-patch+json",
            Some(PatchType::StrategicMerge),
        ),
        (
            "application/merge-patch+json; charset=utf-8",
            Some(PatchType::Merge),
        ),
        ("Application/JSON-Patch+JSON", Some(PatchType::Json)),
        (
            " application/strategic-merge-patch+json ;x=y",
            Some(PatchType::StrategicMerge),
        ),
        ("application/apply-patch+yaml", None),
        ("application/json", None),
        ("", None),
    ];
    for (content_type, expected) in cases {
        assert_eq!(
            PatchType::from_content_type(content_type),
            expected,
            "{content_type:?}"
        );
        if let Some(ty) = expected {
            assert_eq!(PatchType::from_content_type(ty.content_type()), Some(ty));
        }
    }
}

#[test]
fn error_messages_are_lowercase() {
    let errors = [
        PatchError::Malformed("x".to_owned()),
        PatchError::NotApplicable("x".to_owned()),
        PatchError::TooManyOperations {
            operations: 2,
            max: 1,
        },
        PatchError::StrategicMergeUnsupported,
    ];
    for err in errors {
        let message = err.to_string();
        assert!(
            message.starts_with(|c: char| c.is_ascii_lowercase()),
            "{message}"
        );
    }
}

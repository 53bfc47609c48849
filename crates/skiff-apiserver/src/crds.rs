//! CustomResourceDefinitions: checking and defaulting a definition when it is written, turning
//! stored definitions into served resources (routing, discovery, OpenAPI, Tables, status and
//! scale subresources), and the controller that keeps them served: it marks definitions
//! NamesAccepted and Established, and when one is deleted removes its objects before letting
//! the definition go.
//!
//! Versions are served with conversion strategy None: every served version shows the same
//! stored object.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use skiff_store::KeyRange;
use tokio_util::sync::CancellationToken;

use crate::cache::{Delivery, Start};
use crate::openapi::Schemas;
use crate::registry::{Custom, Registry, Resource, ScalePaths, Subresource};
use crate::selector::Selectors;
use crate::{ApiError, AppState, objects};

const GROUP: &str = "apiextensions.k8s.io";
const PLURAL: &str = "customresourcedefinitions";
/// Held by every definition until its objects are gone.
const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// Whether `resource` is CustomResourceDefinition itself.
pub(crate) fn is_definition(resource: &Resource) -> bool {
    resource.group == GROUP && resource.plural == PLURAL
}

/// Names live as long as the process; interned so that redefining a CRD does not leak.
fn intern(text: &str) -> &'static str {
    static STRINGS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut strings = STRINGS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    if let Some(existing) = strings.get(text) {
        return existing;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    strings.insert(leaked);
    leaked
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> &'v str {
    path.iter()
        .fold(value, |v, key| &v[*key])
        .as_str()
        .unwrap_or_default()
}

/// Checks a definition as kube-apiserver's validation would for the fields skiff relies on,
/// and fills in the defaults it stores (singular, listKind, conversion).
pub(crate) fn prepare(
    definition: &Resource,
    registry: &Registry,
    crd: &mut Value,
) -> Result<(), ApiError> {
    let name = str_at(crd, &["metadata", "name"]).to_owned();
    let invalid =
        |field: &str, detail: String| ApiError::invalid(definition, &name, field, &detail);
    let spec = &crd["spec"];
    let group = str_at(spec, &["group"]);
    let plural = str_at(spec, &["names", "plural"]);
    let kind = str_at(spec, &["names", "kind"]);
    if group.is_empty() || !group.contains('.') {
        return Err(invalid(
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if registry
        .resources()
        .iter()
        .any(|r| r.custom.is_none() && r.group == group)
    {
        return Err(invalid(
            "spec.group",
            format!("Invalid value: {group:?}: is a built-in API group"),
        ));
    }
    if plural.is_empty() || plural != plural.to_lowercase() {
        return Err(invalid(
            "spec.names.plural",
            format!("Invalid value: {plural:?}: must be a non-empty lowercase name"),
        ));
    }
    if kind.is_empty() {
        return Err(invalid("spec.names.kind", "Required value".to_owned()));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if !matches!(str_at(spec, &["scope"]), "Namespaced" | "Cluster") {
        return Err(invalid(
            "spec.scope",
            "Unsupported value: must be Namespaced or Cluster".to_owned(),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        return Err(invalid(
            "spec.versions",
            "Required value: must have exactly one version marked as storage version".to_owned(),
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count();
    if storage != 1 {
        return Err(invalid(
            "spec.versions",
            format!(
                "Invalid value: must have exactly one version marked as storage version, status.storedVersions[0] aside (found {storage})"
            ),
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if str_at(version, &["name"]).is_empty() {
            return Err(invalid(
                &format!("spec.versions[{i}].name"),
                "Required value".to_owned(),
            ));
        }
        if !version["schema"]["openAPIV3Schema"].is_object() {
            return Err(invalid(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required".to_owned(),
            ));
        }
    }
    let lower_kind = kind.to_lowercase();
    let list_kind = format!("{kind}List");
    let names = &mut crd["spec"]["names"];
    if str_at(names, &["singular"]).is_empty() {
        names["singular"] = json!(lower_kind);
    }
    if str_at(names, &["listKind"]).is_empty() {
        names["listKind"] = json!(list_kind);
    }
    if !crd["spec"]["conversion"].is_object() {
        crd["spec"]["conversion"] = json!({ "strategy": "None" });
    }
    Ok(())
}

/// The resources a stored definition serves, one per served version.
fn resources_of(crd: &Value) -> Vec<Resource> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let kind = str_at(names, &["kind"]);
    let plural = str_at(names, &["plural"]);
    let group = str_at(spec, &["group"]);
    if kind.is_empty() || plural.is_empty() || group.is_empty() {
        return Vec::new();
    }
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == json!(true))
        .map(|v| str_at(v, &["name"]).to_owned())
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"] != json!(false))
        .map(|v| {
            let mut subresources = Vec::new();
            if v["subresources"]["status"].is_object() {
                subresources.push(Subresource {
                    name: "status".to_owned(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                    group: intern(group),
                    version: intern(str_at(v, &["name"])),
                    kind: intern(kind),
                });
            }
            let scale = &v["subresources"]["scale"];
            if scale.is_object() {
                subresources.push(Subresource {
                    name: "scale".to_owned(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                    group: "autoscaling",
                    version: "v1",
                    kind: "Scale",
                });
            }
            let mut printer_columns: Vec<skiff_table::PrinterColumn> =
                v["additionalPrinterColumns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let mut column = skiff_table::PrinterColumn::new(
                            str_at(c, &["name"]),
                            str_at(c, &["type"]),
                            str_at(c, &["jsonPath"]),
                        );
                        column.format = str_at(c, &["format"]).to_owned();
                        column.description = str_at(c, &["description"]).to_owned();
                        column.priority = c["priority"].as_i64().unwrap_or(0) as i32;
                        column
                    })
                    .collect();
            if printer_columns.is_empty() {
                // What the API defaults a definition without printer columns to.
                printer_columns.push(skiff_table::PrinterColumn::new(
                    "Age",
                    "date",
                    ".metadata.creationTimestamp",
                ));
            }
            Resource {
                group: intern(group),
                version: intern(str_at(v, &["name"])),
                kind: intern(kind),
                plural: intern(plural),
                singular: match str_at(names, &["singular"]) {
                    "" => kind.to_lowercase(),
                    singular => singular.to_owned(),
                },
                namespaced: str_at(spec, &["scope"]) != "Cluster",
                verbs: VERBS.iter().map(|v| (*v).to_owned()).collect(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                subresources,
                custom: Some(Arc::new(Custom {
                    storage_version: storage_version.clone(),
                    printer_columns,
                    scale: scale.is_object().then(|| ScalePaths {
                        spec_replicas: str_at(scale, &["specReplicasPath"]).to_owned(),
                        status_replicas: str_at(scale, &["statusReplicasPath"]).to_owned(),
                        label_selector: Some(str_at(scale, &["labelSelectorPath"]).to_owned())
                            .filter(|p| !p.is_empty()),
                    }),
                    schema: v["schema"].get("openAPIV3Schema").cloned(),
                })),
            }
        })
        .collect()
}

fn definitions(state: &AppState) -> Vec<Value> {
    let prefix = format!("/registry/{GROUP}/{PLURAL}/");
    let (_, crds) = state.cache.list(&prefix, &Selectors::default());
    crds.iter().map(|crd| crd.to_value()).collect()
}

/// Serves what the stored definitions define, now.
pub(crate) fn serve_stored(state: &AppState) {
    serve(state, &definitions(state));
}

fn serve(state: &AppState, crds: &[Value]) {
    let builtin = Registry::builtin();
    let extra = crds.iter().flat_map(resources_of).collect();
    let registry = builtin.extended(extra);
    let schemas = Schemas::new(&registry);
    state.serve(registry, schemas);
}

/// Follows definitions until `shutdown`: serves them, marks them accepted and established,
/// and cleans up after deleted ones.
pub(crate) async fn run(state: AppState, shutdown: CancellationToken) {
    let prefix = format!("/registry/{GROUP}/{PLURAL}/");
    let mut served: Vec<(String, Value)> = Vec::new();
    loop {
        let mut events = match state
            .cache
            .watch(prefix.clone(), Start::Snapshot, Selectors::default())
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "crd controller cannot watch; retrying");
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                () = shutdown.cancelled() => return,
            };
            match next {
                None => break,
                Some(Delivery::Error(e)) => {
                    tracing::warn!(error = %e, "crd controller watch failed; restarting");
                    break;
                }
                Some(Delivery::Progress(_)) => {}
                Some(_) => {
                    // Take whatever else has arrived, then act on the state as a whole.
                    while let Some(Some(_)) = events.next().now_or_never() {}
                    reconcile(&state, &mut served).await;
                }
            }
        }
    }
}

async fn reconcile(state: &AppState, served: &mut Vec<(String, Value)>) {
    let crds = definitions(state);
    let specs: Vec<(String, Value)> = crds
        .iter()
        .map(|crd| {
            (
                str_at(crd, &["metadata", "name"]).to_owned(),
                crd["spec"].clone(),
            )
        })
        .collect();
    if *served != specs {
        serve(state, &crds);
        *served = specs;
    }
    let registry = state.registry();
    let Some(definition) = registry.find(GROUP, "v1", PLURAL) else {
        return;
    };
    for crd in &crds {
        let name = str_at(crd, &["metadata", "name"]).to_owned();
        let result = if crd["metadata"]["deletionTimestamp"].is_string() {
            clean_up(state, definition, crd, &name).await
        } else if needs_status(crd) {
            objects::update_with(
                &state.store,
                definition,
                None,
                &name,
                None,
                false,
                |current| Ok(accepted(current)),
            )
            .await
            .map(drop)
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::warn!(crd = %name, error = %e, "crd controller could not update a definition");
        }
    }
}

fn needs_status(crd: &Value) -> bool {
    let established = crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let has_finalizer = crd["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f == CLEANUP_FINALIZER));
    !established || !has_finalizer || crd["status"]["acceptedNames"] != crd["spec"]["names"]
}

/// The definition, accepted: names, Established, stored versions, and the finalizer that
/// holds it until its objects are gone.
fn accepted(current: &Value) -> Value {
    let mut crd = current.clone();
    let now = objects::now_rfc3339();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": "True", "lastTransitionTime": now,
            "reason": reason, "message": message,
        })
    };
    let storage = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == json!(true))
        .map(|v| v["name"].clone())
        .unwrap_or(Value::Null);
    crd["status"] = json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": [storage],
    });
    let finalizers = crd["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        let mut finalizers = finalizers;
        finalizers.push(json!(CLEANUP_FINALIZER));
        crd["metadata"]["finalizers"] = json!(finalizers);
    }
    crd
}

/// Deletes every object of a deleted definition, then releases the definition.
async fn clean_up(
    state: &AppState,
    definition: &Resource,
    crd: &Value,
    name: &str,
) -> Result<(), ApiError> {
    let prefix = format!(
        "/registry/{}/{}/",
        str_at(crd, &["spec", "group"]),
        str_at(crd, &["spec", "names", "plural"])
    );
    let range = KeyRange::prefix(&prefix).map_err(|e| ApiError::internal(e.to_string()))?;
    let page = state
        .store
        .range(&range, skiff_store::ReadAt::Latest, 0)
        .await
        .map_err(|e| ApiError::internal(format!("storage error: {e}")))?;
    for kv in page.kvs {
        match state.store.delete(&kv.key, None).await {
            Ok(_) | Err(skiff_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(ApiError::internal(format!("storage error: {e}"))),
        }
    }
    objects::update_with(
        &state.store,
        definition,
        None,
        name,
        None,
        false,
        |current| {
            let mut released = current.clone();
            if let Some(finalizers) = released["metadata"]["finalizers"].as_array_mut() {
                finalizers.retain(|f| f != CLEANUP_FINALIZER);
            }
            Ok(released)
        },
    )
    .await
    .map(drop)
}

/// Checks a custom resource against its version's schema: types, required fields, enums and
/// bounds, every violation a cause of one 422 (unknown fields are field validation's job).
pub(crate) fn validate(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    let Some(schema) = resource.custom.as_ref().and_then(|c| c.schema.as_ref()) else {
        return Ok(());
    };
    let mut causes = Vec::new();
    if let Some(fields) = object.as_object() {
        for (field, value) in fields {
            if matches!(field.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(property) = schema["properties"].get(field) {
                check(property, value, field, &mut causes);
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            if let Some(name) = required.as_str()
                && !fields.contains_key(name)
            {
                causes.push((name.to_owned(), "Required value".to_owned()));
            }
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = str_at(object, &["metadata", "name"]);
    let message = causes
        .iter()
        .map(|(field, detail)| format!("{field}: {detail}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut error = ApiError::invalid(resource, name, &causes[0].0, &causes[0].1);
    error.message = format!("{} \"{name}\" is invalid: {message}", resource.kind);
    if let Some(details) = error.details.as_mut() {
        details.causes = causes
            .into_iter()
            .map(|(field, detail)| crate::Cause {
                reason: if detail.starts_with("Required") {
                    "FieldValueRequired".to_owned()
                } else if detail.contains(" must be of type ") {
                    "FieldValueTypeInvalid".to_owned()
                } else if detail.starts_with("Unsupported value") {
                    "FieldValueNotSupported".to_owned()
                } else if detail.starts_with("Too long") {
                    "FieldValueTooLong".to_owned()
                } else if detail.starts_with("Too many") {
                    "FieldValueTooMany".to_owned()
                } else {
                    "FieldValueInvalid".to_owned()
                },
                message: detail,
                field,
            })
            .collect();
    }
    Err(error)
}

/// One value against one schema node, collecting `(field path, detail)` causes.
fn check(schema: &Value, value: &Value, path: &str, causes: &mut Vec<(String, String)>) {
    if value.is_null() && schema["nullable"] == json!(true) {
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"] == json!(true);
    let expected = schema["type"].as_str().unwrap_or_default();
    let type_ok = match expected {
        _ if int_or_string => value.is_i64() || value.is_u64() || value.is_string(),
        "" => true,
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        let got = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        causes.push((
            path.to_owned(),
            format!(
                "Invalid value: \"{got}\": {path} in body must be of type {expected}: \"{got}\""
            ),
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push((
            path.to_owned(),
            format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
    let bound = |key: &str| schema[key].as_f64();
    if let Some(number) = value.as_f64() {
        if bound("minimum").is_some_and(|min| number < min) {
            causes.push((
                path.to_owned(),
                format!(
                    "Invalid value: {value}: {path} in body should be greater than or equal to {}",
                    schema["minimum"]
                ),
            ));
        }
        if bound("maximum").is_some_and(|max| number > max) {
            causes.push((
                path.to_owned(),
                format!(
                    "Invalid value: {value}: {path} in body should be less than or equal to {}",
                    schema["maximum"]
                ),
            ));
        }
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as f64;
        if bound("minLength").is_some_and(|min| length < min) {
            causes.push((
                path.to_owned(),
                format!(
                    "Invalid value: {value}: {path} in body should be at least {} chars long",
                    schema["minLength"]
                ),
            ));
        }
        if bound("maxLength").is_some_and(|max| length > max) {
            causes.push((
                path.to_owned(),
                format!(
                    "Too long: may not be more than {} bytes",
                    schema["maxLength"]
                ),
            ));
        }
    }
    match value {
        Value::Object(fields) => {
            for (field, child) in fields {
                let child_path = format!("{path}.{field}");
                if let Some(property) = schema["properties"].get(field) {
                    check(property, child, &child_path, causes);
                } else if schema["additionalProperties"].is_object() {
                    check(&schema["additionalProperties"], child, &child_path, causes);
                }
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                if let Some(name) = required.as_str()
                    && !fields.contains_key(name)
                {
                    causes.push((format!("{path}.{name}"), "Required value".to_owned()));
                }
            }
        }
        Value::Array(items) => {
            let count = items.len() as f64;
            if bound("minItems").is_some_and(|min| count < min) {
                causes.push((
                    path.to_owned(),
                    format!(
                        "Invalid value: {count}: {path} in body should have at least {} items",
                        schema["minItems"]
                    ),
                ));
            }
            if bound("maxItems").is_some_and(|max| count > max) {
                causes.push((
                    path.to_owned(),
                    format!(
                        "Too many: {count}: must have at most {} items",
                        schema["maxItems"]
                    ),
                ));
            }
            if schema["items"].is_object() {
                for (i, item) in items.iter().enumerate() {
                    check(&schema["items"], item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

//! Objects in the store: where each kind's objects live (keys), how they are stored (JSON
//! without `resourceVersion`, which is the store's `mod_revision` and is filled in on read),
//! the read verbs (get, list), and the objects every cluster starts with.

use serde_json::{Value, json};
use skiff_store::{Error as StoreError, KeyRange, KeyValue, ReadAt, Store};

use std::sync::Arc;

use crate::ApiError;
use crate::cache::{CachedObject, WatchCache};
use crate::registry::Resource;
use crate::selector::Selectors;

/// `/registry/<group>/<resource>/[<namespace>/]<name>`; the core group is spelled `core`.
pub(crate) fn key(resource: &Resource, namespace: Option<&str>, name: &str) -> String {
    format!("{}{name}", prefix(resource, namespace))
}

/// The key prefix of a resource, or of one namespace of it (with a trailing `/`).
pub(crate) fn prefix(resource: &Resource, namespace: Option<&str>) -> String {
    collection_prefix(resource.group, resource.plural, namespace)
}

/// The key prefix of `group`/`plural` (the core group is `""`), or of one namespace of it.
pub(crate) fn collection_prefix(group: &str, plural: &str, namespace: Option<&str>) -> String {
    let group = if group.is_empty() { "core" } else { group };
    match namespace {
        Some(ns) => format!("/registry/{group}/{plural}/{ns}/"),
        None => format!("/registry/{group}/{plural}/"),
    }
}

fn namespace_key(name: &str) -> String {
    format!("{}{name}", collection_prefix("", "namespaces", None))
}

/// Namespaces that exist for the cluster itself and may not be deleted.
const UNDELETABLE_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// `metadata.name` must be a DNS-1123 subdomain (most kinds' rule).
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be no more than 253 characters and not empty");
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if ok {
        Ok(())
    } else {
        Err(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    }
}

/// Five random lower-case alphanumerics, as `generateName` appends.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// `POST` a new object. `dry_run` validates and returns what would be stored.
pub(crate) async fn create(
    store: &Store,
    cache: &WatchCache,
    resource: &Resource,
    namespace: Option<&str>,
    mut object: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    check_type(resource, &object)?;
    let has_spec = object.get("spec").is_some();
    let metadata = scoped_metadata(&mut object, namespace)?;
    let name = match (
        metadata.get("name").and_then(Value::as_str),
        metadata.get("generateName").and_then(Value::as_str),
    ) {
        (Some(name), _) if !name.is_empty() => name.to_owned(),
        (_, Some(base)) if !base.is_empty() => format!("{base}{}", random_suffix()),
        _ => {
            return Err(ApiError::invalid(
                resource,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            ));
        }
    };
    if let Err(detail) = check_name(&name) {
        return Err(ApiError::invalid(
            resource,
            &name,
            "metadata.name",
            &format!("Invalid value: {name:?}: {detail}"),
        ));
    }
    metadata.insert("name".to_owned(), json!(name));
    metadata.insert("uid".to_owned(), json!(new_uid()));
    if has_spec {
        metadata.insert("generation".to_owned(), json!(1));
    }
    metadata.insert("creationTimestamp".to_owned(), json!(now_rfc3339()));
    for server_owned in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        metadata.remove(server_owned);
    }
    skiff_defaults::apply(resource.group, resource.version, resource.kind, &mut object);
    // Mutating admission (LimitRange defaults) comes before the create-time status, which
    // reads the resources (a pod's QoS class).
    if let Some(ns) = namespace {
        crate::quota::limit(cache, resource, ns, &name, &mut object).await?;
    }
    skiff_defaults::prepare_create(resource.group, resource.version, resource.kind, &mut object);
    omit_empty_metadata(&mut object);
    crate::validation::validate(resource, None, &object)?;
    if let Some(ns) = namespace {
        // The cache holds every namespace; only one it has not seen yet costs a store read.
        let found = match cache.get(&namespace_key(ns)) {
            Some(found) => found.to_value(),
            None => {
                let (_, found) = store
                    .get(&namespace_key(ns), ReadAt::Latest)
                    .await
                    .map_err(store_error)?;
                let found = found.ok_or_else(|| ApiError::not_found_namespace(ns))?;
                decode(&found)?
            }
        };
        if found["metadata"]["deletionTimestamp"].is_string() {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                resource.plural
            )));
        }
    }
    if let Some(ns) = namespace {
        crate::quota::charge(store, cache, resource, ns, &name, &object, dry_run).await?;
    }
    let key = key(resource, namespace, &name);
    if dry_run {
        return Ok(object);
    }
    let is_service = resource.group.is_empty() && resource.plural == "services";
    let allocated = if is_service {
        crate::allocator::allocate(store, resource, &mut object, &key).await?
    } else {
        Vec::new()
    };
    let revision = match store.create(&key, object.to_string()).await {
        Ok(revision) => revision,
        Err(err) => {
            if !allocated.is_empty() {
                crate::allocator::release(store, &object).await;
            }
            return Err(match err {
                StoreError::AlreadyExists { .. } => ApiError::already_exists(resource, &name),
                other => store_error(other),
            });
        }
    };
    // A LimitRange or ResourceQuota created here applies to the next create in its namespace,
    // even one admitted before the watch cache has it.
    cache.forget_empty(&key);
    object["metadata"]["resourceVersion"] = json!(revision.to_string());
    Ok(object)
}

/// What a `PUT` of `object` makes of the stored `old`: the object as sent, except that kinds
/// with a status subresource keep the stored `.status`.
pub(crate) fn replaced(resource: &Resource, old: &Value, object: &Value) -> Value {
    let mut new = object.clone();
    keep_namespace_finalizers(resource, old, &mut new);
    if crate::subresource::has_status(resource) {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(fields) = new.as_object_mut() {
                    fields.remove("status");
                }
            }
        }
    }
    new
}

/// Empty lists and maps in metadata are left out, as Go's `omitempty` leaves them out of
/// kube-apiserver's replies (`ownerReferences: []` after the last owner is removed, ...).
fn omit_empty_metadata(object: &mut Value) {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for field in [
            "finalizers",
            "ownerReferences",
            "labels",
            "annotations",
            "managedFields",
        ] {
            let empty = match metadata.get(field) {
                Some(Value::Array(items)) => items.is_empty(),
                Some(Value::Object(fields)) => fields.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                metadata.remove(field);
            }
        }
    }
}

/// A namespace's `spec.finalizers` change only through its `finalize` subresource.
pub(crate) fn keep_namespace_finalizers(resource: &Resource, old: &Value, new: &mut Value) {
    if resource.group.is_empty() && resource.plural == "namespaces" {
        match old["spec"].get("finalizers") {
            Some(finalizers) => new["spec"]["finalizers"] = finalizers.clone(),
            None => {
                if let Some(spec) = new["spec"].as_object_mut() {
                    spec.remove("finalizers");
                }
            }
        }
    }
}

/// A Service keeps its cluster IP: an update that leaves it out keeps the allocated one, one
/// that changes it is refused (the field is immutable).
fn keep_allocations(
    resource: &Resource,
    name: &str,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    let before = old["spec"]["clusterIP"].clone();
    match new["spec"]["clusterIP"].as_str() {
        None | Some("") => {
            if !before.is_null() {
                new["spec"]["clusterIP"] = before;
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
            Ok(())
        }
        Some(ip) if before.as_str().is_some_and(|b| b != ip) => Err(ApiError::invalid(
            resource,
            name,
            "spec.clusterIPs[0]",
            &format!("Invalid value: []string{{{ip:?}}}: may not change once set"),
        )),
        Some(_) => Ok(()),
    }
}

/// A whole object sent to replace `name`: its type and scope checked, its name agreeing with
/// the URL's.
pub(crate) fn prepare_replacement(
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    mut object: Value,
) -> Result<Value, ApiError> {
    check_type(resource, &object)?;
    let metadata = scoped_metadata(&mut object, namespace)?;
    match metadata.get("name").and_then(Value::as_str) {
        Some(body_name) if body_name != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        _ => {
            metadata.insert("name".to_owned(), json!(name));
        }
    }
    Ok(object)
}

/// The `metadata.resourceVersion` a write must find, if the body names one.
pub(crate) fn precondition(
    resource: &Resource,
    name: &str,
    object: &Value,
) -> Result<Option<i64>, ApiError> {
    match object["metadata"].get("resourceVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(rv)) if rv.is_empty() => Ok(None),
        Some(Value::String(rv)) => rv.parse::<i64>().map(Some).map_err(|_| {
            ApiError::invalid(
                resource,
                name,
                "metadata.resourceVersion",
                &format!("Invalid value: {rv:?}: must be a number"),
            )
        }),
        Some(other) => Err(ApiError::invalid(
            resource,
            name,
            "metadata.resourceVersion",
            &format!("Invalid value: {other}: must be a string"),
        )),
    }
}

/// Replaces `name` with what `build` makes of the current object, as a compare-and-swap
/// retried while other writers get in between (unless `expected` pins the version, when a
/// newer one is a 409). Server-owned metadata is kept from the stored object; `generation`
/// grows when `spec` changes; an object being deleted whose last finalizer goes is deleted.
pub(crate) async fn update_with(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    expected: Option<i64>,
    dry_run: bool,
    build: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let key = key(resource, namespace, name);
    loop {
        let (_, current) = store.get(&key, ReadAt::Latest).await.map_err(store_error)?;
        let Some(current) = current else {
            return Err(ApiError::not_found(resource, name));
        };
        if expected.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::conflict(resource, name));
        }
        let old = decode(&current)?;
        let mut new = build(&old)?;
        check_type(resource, &new)?;
        skiff_defaults::apply(resource.group, resource.version, resource.kind, &mut new);
        if resource.group.is_empty() && resource.plural == "services" {
            keep_allocations(resource, name, &old, &mut new)?;
        }
        crate::validation::validate(resource, Some(&old), &new)?;
        if !new["metadata"].is_object() {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        for kept in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old["metadata"].get(kept) {
                Some(value) => new["metadata"][kept] = value.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(kept);
                    }
                }
            }
        }
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        omit_empty_metadata(&mut new);
        if let Some(generation) = old["metadata"]["generation"].as_i64() {
            let bumped = if old.get("spec") != new.get("spec") {
                generation + 1
            } else {
                generation
            };
            new["metadata"]["generation"] = json!(bumped);
        }
        // Gone once marked, without finalizers and past its grace period (a pod still
        // stopping keeps its grace period until its kubelet deletes it).
        // (Namespaces also wait for their `spec.finalizers`: the namespace controller
        // empties them and clears `kubernetes` last.)
        let is_namespace = resource.group.is_empty() && resource.plural == "namespaces";
        let finalized = new["metadata"]["deletionTimestamp"].is_string()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
            && new["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .is_none_or(|g| g == 0)
            && (!is_namespace
                || new["spec"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty()));
        if dry_run {
            // Nothing is written: the object keeps the version it has.
            new["metadata"]["resourceVersion"] = json!(current.mod_revision.to_string());
            return Ok(new);
        }
        let result = if finalized {
            store
                .delete(&key, Some(current.mod_revision))
                .await
                .map(|(revision, _)| revision)
        } else {
            store
                .update(&key, new.to_string(), current.mod_revision)
                .await
        };
        match result {
            Ok(revision) => {
                new["metadata"]["resourceVersion"] = json!(revision.to_string());
                return Ok(new);
            }
            // Someone wrote in between: a conditional update has lost; an unconditional one
            // retries on the newer version.
            Err(StoreError::Conflict { .. }) if expected.is_some() => {
                return Err(ApiError::conflict(resource, name));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(resource, name)),
            Err(other) => return Err(store_error(other)),
        }
    }
}

/// The body's `metadata`, with its namespace made to agree with the URL's: set for
/// namespaced requests (a different one in the body is a 400), removed otherwise.
fn scoped_metadata<'o>(
    object: &'o mut Value,
    namespace: Option<&str>,
) -> Result<&'o mut serde_json::Map<String, Value>, ApiError> {
    let metadata = object
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    match (namespace, metadata.get("namespace").and_then(Value::as_str)) {
        (Some(url), Some(body)) if url != body => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        (Some(url), _) => {
            metadata.insert("namespace".to_owned(), json!(url));
        }
        (None, _) => {
            metadata.remove("namespace");
        }
    }
    Ok(metadata)
}

/// `apiVersion` and `kind` in a body must name the resource of the URL.
pub(crate) fn check_type(resource: &Resource, object: &Value) -> Result<(), ApiError> {
    let Some(fields) = object.as_object() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let api_version = fields
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = fields
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if api_version != resource.group_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.group_version()
        )));
    }
    if kind != resource.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    Ok(())
}

/// How a `DELETE` asks for its object to go (`metav1.DeleteOptions` and the query).
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub dry_run: bool,
    /// `gracePeriodSeconds`: how long a pod's containers get to stop (0: now).
    pub grace_period: Option<i64>,
    /// `preconditions.uid` and `preconditions.resourceVersion`.
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// `propagationPolicy`: `Orphan`, `Background` or `Foreground`.
    pub propagation: Option<String>,
}

/// Finalizers the garbage collector acts on for the non-default propagation policies.
const ORPHAN_FINALIZER: &str = "orphan";
const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// `DELETE` an object. It goes at once unless something must happen first: finalizers
/// (including those a propagation policy adds) and namespaces (the namespace controller
/// empties them) only get a `deletionTimestamp`; a pod bound to a node is deleted gracefully
/// (its kubelet stops it within the grace period, then deletes it with grace 0). Returns the
/// object as it was deleted or marked.
pub(crate) async fn delete(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
    options: &DeleteOptions,
) -> Result<Value, ApiError> {
    let is_namespace = resource.group.is_empty() && resource.plural == "namespaces";
    let is_pod = resource.group.is_empty() && resource.plural == "pods";
    if is_namespace && UNDELETABLE_NAMESPACES.contains(&name) {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        )));
    }
    let key = key(resource, namespace, name);
    loop {
        let (_, current) = store.get(&key, ReadAt::Latest).await.map_err(store_error)?;
        let Some(current) = current else {
            return Err(ApiError::not_found(resource, name));
        };
        let mut object = decode(&current)?;
        check_preconditions(resource, name, &object, options)?;
        let mut finalizers: Vec<Value> = object["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let policy_finalizer = match options.propagation.as_deref() {
            Some("Orphan") => Some(ORPHAN_FINALIZER),
            Some("Foreground") => Some(FOREGROUND_FINALIZER),
            _ => None,
        };
        let already_marked = object["metadata"]["deletionTimestamp"].is_string();
        if let Some(finalizer) = policy_finalizer
            && !already_marked
            && !finalizers.iter().any(|f| f == finalizer)
        {
            finalizers.push(json!(finalizer));
        }
        let grace = if is_pod {
            pod_grace_period(&object, options.grace_period)
        } else {
            0
        };
        let immediate = !is_namespace && finalizers.is_empty() && grace == 0;
        if immediate {
            if options.dry_run {
                return Ok(object);
            }
            match store.delete(&key, Some(current.mod_revision)).await {
                Ok(_) => {
                    if resource.group.is_empty() && resource.plural == "services" {
                        crate::allocator::release(store, &object).await;
                    }
                    return Ok(object);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound { .. }) => {
                    return Err(ApiError::not_found(resource, name));
                }
                Err(other) => return Err(store_error(other)),
            }
        }
        if already_marked {
            // Only a shorter grace period changes anything now.
            let current_grace = object["metadata"]["deletionGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(0);
            if !is_pod || grace >= current_grace {
                return Ok(object);
            }
        }
        object["metadata"]["deletionTimestamp"] = json!(rfc3339_after(grace));
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if !finalizers.is_empty() {
            object["metadata"]["finalizers"] = json!(finalizers);
        }
        if is_namespace {
            object["status"]["phase"] = json!("Terminating");
        }
        if options.dry_run {
            return Ok(object);
        }
        let mut stored = object.clone();
        if let Some(metadata) = stored["metadata"].as_object_mut() {
            metadata.remove("resourceVersion");
        }
        match store
            .update(&key, stored.to_string(), current.mod_revision)
            .await
        {
            Ok(revision) => {
                object["metadata"]["resourceVersion"] = json!(revision.to_string());
                return Ok(object);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound { .. }) => return Err(ApiError::not_found(resource, name)),
            Err(other) => return Err(store_error(other)),
        }
    }
}

/// A pod's grace period: none for pods no kubelet runs (unbound, or finished), else the
/// request's or the pod's `terminationGracePeriodSeconds` (30 by default).
fn pod_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !bound || finished {
        return 0;
    }
    requested
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0)
}

fn check_preconditions(
    resource: &Resource,
    name: &str,
    object: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    let failed = |what: &str, wanted: &str, actual: &Value| {
        let mut error = ApiError::conflict(resource, name);
        error.message = format!(
            "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {}",
            actual.as_str().unwrap_or_default()
        );
        error
    };
    if let Some(uid) = &options.uid
        && object["metadata"]["uid"] != json!(uid)
    {
        return Err(failed("UID", uid, &object["metadata"]["uid"]));
    }
    if let Some(rv) = &options.resource_version
        && object["metadata"]["resourceVersion"] != json!(rv)
    {
        return Err(failed(
            "ResourceVersion",
            rv,
            &object["metadata"]["resourceVersion"],
        ));
    }
    Ok(())
}

/// `seconds` from now in the RFC 3339 form Kubernetes timestamps use.
fn rfc3339_after(seconds: i64) -> String {
    format_rfc3339(time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
}

/// The stored object with its `resourceVersion`.
pub(crate) fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        tracing::error!(key = %kv.key, error = %e, "stored object is not JSON");
        ApiError::internal(format!("stored object {} is unreadable", kv.key))
    })?;
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".to_owned(),
            Value::String(kv.mod_revision.to_string()),
        );
    }
    Ok(object)
}

pub(crate) fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::Compacted { .. } => {
            ApiError::gone("The resourceVersion for the provided list is too old.".to_owned())
        }
        other => {
            tracing::error!(error = %other, "store failed");
            ApiError::internal(format!("storage error: {other}"))
        }
    }
}

/// `GET` one object.
pub(crate) async fn get(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let (_, kv) = store
        .get(&key(resource, namespace, name), ReadAt::Latest)
        .await
        .map_err(store_error)?;
    match kv {
        Some(kv) => decode(&kv),
        None => Err(ApiError::not_found(resource, name)),
    }
}

/// How much of a collection to return.
#[derive(Debug, Default, Clone)]
pub(crate) struct ListOptions {
    /// Most items in one page; 0 = all.
    pub limit: usize,
    /// The `metadata.continue` of the previous page.
    pub continue_token: Option<String>,
    /// Only objects these select.
    pub selectors: Selectors,
    /// Read at exactly this revision (`resourceVersionMatch=Exact`) instead of the latest.
    pub exact: Option<i64>,
}

/// Where a paged list resumes: the revision of its first page and the last key returned.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

const CONTINUE_VERSION: &str = "skiff.v1";

fn encode_continue(revision: i64, last_key: &str) -> String {
    use base64::Engine;
    let token = ContinueToken {
        v: CONTINUE_VERSION.to_owned(),
        rv: revision,
        start: last_key.to_owned(),
    };
    base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&token).expect("a token always serializes"))
}

fn decode_continue(token: &str, prefix: &str) -> Result<ContinueToken, ApiError> {
    use base64::Engine;
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| invalid("not base64"))?;
    let token: ContinueToken =
        serde_json::from_slice(&bytes).map_err(|_| invalid("not a continue token"))?;
    if token.v != CONTINUE_VERSION {
        return Err(invalid("unknown version"));
    }
    if !token.start.starts_with(prefix) {
        return Err(invalid("it belongs to another list"));
    }
    Ok(token)
}

/// `GET` a collection: the objects of the resource (in one namespace, or all), as the
/// `<Kind>List` kube-apiserver returns, a page at a time when asked. Every page of one list is
/// read at the revision of its first page.
pub(crate) async fn list(
    store: &Store,
    resource: &Resource,
    namespace: Option<&str>,
    options: &ListOptions,
) -> Result<List, ApiError> {
    let prefix = prefix(resource, namespace);
    let whole = KeyRange::prefix(&prefix).map_err(store_error)?;
    let (range, at) = match (&options.continue_token, options.exact) {
        (Some(token), _) => {
            let token = decode_continue(token, &prefix)?;
            (whole.after(&token.start), ReadAt::Revision(token.rv))
        }
        (None, Some(revision)) => (whole, ReadAt::Revision(revision)),
        (None, None) => (whole, ReadAt::Latest),
    };
    // With a selector, read the rest of the list and filter, so a page holds `limit` matches.
    let read_limit = if options.selectors.is_empty() {
        options.limit
    } else {
        0
    };
    let page = match store.range(&range, at, read_limit).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) if options.continue_token.is_none() => {
            return Err(ApiError::expired(requested, compacted));
        }
        Err(StoreError::FutureRevision { requested, current }) => {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )));
        }
        Err(StoreError::Compacted { .. }) => {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".to_owned(),
            ));
        }
        other => other.map_err(store_error)?,
    };
    let mut items = Vec::with_capacity(page.kvs.len());
    let mut last_key = None;
    let mut more = page.more;
    for kv in &page.kvs {
        let object = decode(kv)?;
        if !options.selectors.matches(&object) {
            continue;
        }
        if options.limit > 0 && items.len() == options.limit {
            more = true;
            break;
        }
        items.push(object);
        last_key = Some(kv.key.as_str());
    }
    let continue_token = match last_key {
        Some(last) if more => Some(encode_continue(page.revision, last)),
        _ => None,
    };
    Ok(List {
        revision: page.revision,
        continue_token,
        items: Items::Decoded(items),
    })
}

/// A list from the watch cache, as of `revision` or newer (`None`: consistent with the
/// store now). Returns `None` when it holds more than `limit` items, for the caller to page
/// through the store instead.
pub(crate) async fn list_cached(
    cache: &WatchCache,
    resource: &Resource,
    namespace: Option<&str>,
    selectors: &Selectors,
    not_older_than: Option<i64>,
    limit: usize,
) -> Result<Option<List>, ApiError> {
    match not_older_than {
        Some(revision) => cache.wait_for(revision).await?,
        None => cache.sync().await?,
    }
    let (revision, items) = cache.list(&prefix(resource, namespace), selectors);
    if limit > 0 && items.len() > limit {
        return Ok(None);
    }
    Ok(Some(List {
        revision,
        continue_token: None,
        items: Items::Encoded(items),
    }))
}

/// A `<Kind>List` (one page of it) to reply with.
pub(crate) struct List {
    pub revision: i64,
    pub continue_token: Option<String>,
    pub items: Items,
}

/// A list's items: decoded (read from the store), or the watch cache's, kept encoded so that
/// a JSON reply costs their bytes rather than a decoded copy of each.
pub(crate) enum Items {
    Decoded(Vec<Value>),
    Encoded(Vec<Arc<CachedObject>>),
}

impl List {
    /// The list's `metadata`.
    pub(crate) fn metadata(&self) -> Value {
        let mut metadata = json!({ "resourceVersion": self.revision.to_string() });
        if let Some(token) = &self.continue_token {
            metadata["continue"] = json!(token);
        }
        metadata
    }

    /// The namespace and name of each item.
    pub(crate) fn names(&self) -> Vec<(Option<String>, String)> {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        match &self.items {
            Items::Decoded(items) => items
                .iter()
                .filter_map(|item| {
                    let metadata = &item["metadata"];
                    let name = metadata["name"].as_str()?.to_owned();
                    Some((owned(metadata["namespace"].as_str()), name))
                })
                .collect(),
            Items::Encoded(items) => items
                .iter()
                .filter_map(|item| {
                    let attrs = item.attrs();
                    Some((owned(attrs.namespace()), attrs.name()?.to_owned()))
                })
                .collect(),
        }
    }

    /// The items, decoded.
    pub(crate) fn into_values(self) -> Vec<Value> {
        match self.items {
            Items::Decoded(items) => items,
            Items::Encoded(items) => items.iter().map(|item| item.to_value()).collect(),
        }
    }

    /// The `<Kind>List` kube-apiserver returns, as JSON; encoded items are copied as they are.
    pub(crate) fn to_json(&self, resource: &Resource) -> Vec<u8> {
        let head = json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.group_version(),
            "metadata": self.metadata(),
        });
        let mut out = serde_json::to_vec(&head).expect("a JSON value always encodes");
        // Reopen the object for its last member.
        out.pop();
        out.extend_from_slice(b",\"items\":[");
        let mut first = true;
        let mut comma = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
        };
        match &self.items {
            Items::Decoded(items) => {
                for item in items {
                    comma(&mut out);
                    serde_json::to_writer(&mut out, item).expect("a JSON value always encodes");
                }
            }
            Items::Encoded(items) => {
                out.reserve(items.iter().map(|item| item.json().len() + 1).sum());
                for item in items {
                    comma(&mut out);
                    out.extend_from_slice(item.json());
                }
            }
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// The namespaces every cluster has, as kube-apiserver creates them.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The first address of the service network, which the `kubernetes` Service takes.
pub const KUBERNETES_SERVICE_IP: &str = "10.43.0.1";

/// Creates what a new cluster starts with — the system namespaces and the `kubernetes`
/// Service (port 443 to the API server's `api_port`); what already exists is left alone.
pub(crate) async fn bootstrap(
    store: &Store,
    namespaces: &Resource,
    services: &Resource,
    api_port: u16,
) -> Result<(), StoreError> {
    let service = json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "uid": new_uid(),
            "creationTimestamp": now_rfc3339(),
            "labels": { "component": "apiserver", "provider": "kubernetes" },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": KUBERNETES_SERVICE_IP,
            "clusterIPs": [KUBERNETES_SERVICE_IP],
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port }],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": { "loadBalancer": {} },
    });
    let service_key = key(services, Some("default"), "kubernetes");
    for name in SYSTEM_NAMESPACES {
        let object = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": new_uid(),
                "creationTimestamp": now_rfc3339(),
                "labels": { "kubernetes.io/metadata.name": name },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        match store
            .create(&key(namespaces, None, name), object.to_string())
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    match store.create(&service_key, service.to_string()).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// A random (version 4) UUID, as Kubernetes gives every object.
pub(crate) fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now, in the RFC 3339 form with whole seconds that Kubernetes timestamps use.
pub(crate) fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

fn format_rfc3339(now: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn keys_follow_the_registry_layout() {
        let registry = Registry::builtin();
        let find = |plural: &str| {
            registry
                .resources()
                .iter()
                .find(|r| r.plural == plural)
                .unwrap()
                .clone()
        };
        assert_eq!(
            key(&find("configmaps"), Some("default"), "cm1"),
            "/registry/core/configmaps/default/cm1"
        );
        assert_eq!(
            key(&find("namespaces"), None, "kube-system"),
            "/registry/core/namespaces/kube-system"
        );
        assert_eq!(
            prefix(&find("deployments"), Some("ns")),
            "/registry/apps/deployments/ns/"
        );
    }

    #[test]
    fn lists_encode_the_same_from_decoded_and_cached_items() {
        let registry = Registry::builtin();
        let pods = registry.find("", "v1", "pods").unwrap();
        let items = vec![
            json!({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "3"}}),
            json!({"metadata": {"name": "b", "namespace": "ns", "resourceVersion": "5"}}),
        ];
        let cached = items
            .iter()
            .map(|item| Arc::new(CachedObject::new(item, "", "pods")))
            .collect();
        let expected = json!({
            "kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "7", "continue": "t"},
            "items": items,
        });
        for items in [Items::Decoded(items.clone()), Items::Encoded(cached)] {
            let list = List {
                revision: 7,
                continue_token: Some("t".to_owned()),
                items,
            };
            let json: Value = serde_json::from_slice(&list.to_json(pods)).unwrap();
            assert_eq!(json, expected);
            assert_eq!(
                list.names(),
                [
                    (Some("ns".to_owned()), "a".to_owned()),
                    (Some("ns".to_owned()), "b".to_owned())
                ]
            );
            assert_eq!(list.into_values(), items_of(&expected));
        }
        let empty = List {
            revision: 1,
            continue_token: None,
            items: Items::Encoded(Vec::new()),
        };
        let json: Value = serde_json::from_slice(&empty.to_json(pods)).unwrap();
        assert_eq!(json["items"], json!([]));
    }

    fn items_of(list: &Value) -> Vec<Value> {
        list["items"].as_array().unwrap().clone()
    }

    #[test]
    fn timestamps_are_rfc3339_in_whole_seconds() {
        let ts = now_rfc3339();
        assert_eq!(ts.len(), 20);
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T');
    }
}

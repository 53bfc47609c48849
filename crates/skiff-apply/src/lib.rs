//! skiff's server-side apply: field ownership (`metadata.managedFields`), conflict detection and
//! the merge of an apply configuration into the live object, with the semantics of
//! Kubernetes' structured-merge-diff, as pure functions over [`serde_json::Value`].
//!
//! - [`apply`] serves `PATCH` with `application/apply-patch+yaml` (the caller parses the YAML
//!   body into JSON first): it merges the configuration into the live object, removes the
//!   fields the same manager applied before but no longer sends (unless someone else owns them),
//!   detects conflicts with other managers, and returns the new object and managedFields.
//! - [`track_update`] keeps managedFields current for every other write (create, update, JSON,
//!   merge and strategic merge patches): the fields a write changes become the writer's.
//! - Conflicts become kube's 409 with [`conflict_message`] and [`conflict_causes`].
//!
//! What apply needs to know about each field (associative list and its keys, set, atomic,
//! map) is read through skiff-patch's [`Strategies`] plus the bundled list/map type table; see
//! `schema.rs`. For kinds without a definition (custom resources) maps are merged key by key
//! and lists are atomic.
//!
//! Invariants: no IO, no clock (the caller passes `now` as RFC 3339), no panics on any input.
//! Not handled here: YAML parsing, `resourceVersion` preconditions, defaulting and validation of
//! the result, conversion between API versions (managedFields of other versions are compared
//! as they are), client-supplied `metadata.managedFields` on update (the caller decides to
//! honour or reset them).

mod fieldset;
mod managed;
mod schema;
mod walk;

#[cfg(test)]
mod tests;

pub use fieldset::{FieldSet, path_string};
pub use managed::{ANCIENT_CHANGES, BEFORE_FIRST_APPLY, MAX_UPDATE_MANAGERS, Operation};

use serde_json::{Map, Value};
use skiff_patch::Strategies;

use crate::managed::{Entry, decode_all, finish};
use crate::schema::{Schema, Shape};

/// Who writes, when, and what the written kind looks like; shared by [`apply`] and
/// [`track_update`].
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The field manager (`?fieldManager=`, or [`default_manager`] of the user agent).
    pub manager: &'a str,
    /// The subresource written (`"status"`, `"scale"`), or `None` for the main resource.
    pub subresource: Option<&'a str>,
    /// The time stamped on changed entries, RFC 3339 (`2024-05-01T12:00:00Z`).
    pub now: &'a str,
    /// The OpenAPI definition of the object (`io.k8s.api.apps.v1.Deployment`); `None` for
    /// kinds without one.
    pub root_definition: Option<&'a str>,
    /// Field strategies and the type graph.
    pub strategies: &'a dyn Strategies,
    /// Writes to the main resource of a kind with a status subresource: `status` is neither
    /// taken from the configuration nor tracked.
    pub ignore_status: bool,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("manager", &self.manager)
            .field("subresource", &self.subresource)
            .field("now", &self.now)
            .field("root_definition", &self.root_definition)
            .field("ignore_status", &self.ignore_status)
            .finish_non_exhaustive()
    }
}

/// The outcome of an [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new object; its `metadata.managedFields` is [`Applied::managed_fields`].
    pub object: Value,
    /// The new managedFields entries.
    pub managed_fields: Vec<Value>,
}

/// A field another manager owns and the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// How it came to own the field.
    pub operation: Operation,
    /// The API version of its entry.
    pub api_version: String,
    /// The subresource of its entry, if any.
    pub subresource: Option<String>,
    /// The field, in kube's notation: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="web"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as kube names it in conflict messages: `"A"`, `"B" with subresource
    /// "scale"`, `"kubectl-client-side-apply" using apps/v1` (Update entries).
    pub fn manager_description(&self) -> String {
        Entry {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: self.api_version.clone(),
            time: None,
            subresource: self.subresource.clone().unwrap_or_default(),
            set: FieldSet::default(),
        }
        .describe()
    }
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Fields owned by other managers would change; kube answers 409 Conflict with
    /// [`conflict_message`] and [`conflict_causes`]. Retrying with `force=true` takes them.
    #[error("apply failed with {} conflict(s)", .0.len())]
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be applied: not an object, list items without their keys,
    /// duplicate items. kube-apiserver answers 500 ("failed to create typed patch object");
    /// 422 is the more useful status.
    #[error("invalid apply configuration: {0}")]
    InvalidConfig(String),
    /// The field manager name is unusable.
    #[error("invalid field manager: {0}")]
    InvalidManager(String),
}

/// kube's message for a 409 apply conflict, e.g. `Apply failed with 1 conflict: conflict with
/// "A": .spec.replicas`.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_description(),
            only.field
        );
    }
    let mut managers: Vec<String> = conflicts
        .iter()
        .map(Conflict::manager_description)
        .collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in &managers {
        lines.push(format!("conflicts with {manager}:"));
        for conflict in conflicts
            .iter()
            .filter(|c| &c.manager_description() == manager)
        {
            lines.push(format!("- {}", conflict.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The `details.causes` of kube's 409: `{type: "FieldManagerConflict", message: "conflict with
/// \"A\"", field: ".spec.replicas"}` per conflict.
pub fn conflict_causes(conflicts: &[Conflict]) -> Vec<Value> {
    conflicts
        .iter()
        .map(|c| {
            let mut cause = Map::new();
            cause.insert("type".to_owned(), "FieldManagerConflict".into());
            cause.insert(
                "message".to_owned(),
                format!("conflict with {}", c.manager_description()).into(),
            );
            cause.insert("field".to_owned(), c.field.clone().into());
            Value::Object(cause)
        })
        .collect()
}

/// The field manager kube assumes when a non-apply request names none: the user agent up to
/// its first `/` (`kubectl/v1.33.0 (linux/amd64) ...` → `kubectl`), at most 128 characters.
pub fn default_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    prefix.chars().take(128).collect()
}

/// Checks a client-supplied `fieldManager`: at most 128 characters, all printable.
pub fn validate_manager(manager: &str) -> Result<(), ApplyError> {
    if manager.chars().count() > 128 {
        return Err(ApplyError::InvalidManager(
            "fieldManager must not be longer than 128 characters".to_owned(),
        ));
    }
    if manager.chars().any(char::is_control) {
        return Err(ApplyError::InvalidManager(
            "fieldManager must only contain printable characters".to_owned(),
        ));
    }
    Ok(())
}

/// The `FieldsV1` JSON of the fields `object` sets, as an apply of it would own them.
pub fn fields_of(
    object: &Value,
    root_definition: Option<&str>,
    strategies: &dyn Strategies,
    ignore_status: bool,
) -> Result<Value, ApplyError> {
    let schema = Schema { strategies };
    let root = Shape::Root(root_definition.map(str::to_owned));
    let config = prepare_config(object, ignore_status);
    let mut set = schema
        .field_set(&config, &root, true, &mut Vec::new())
        .map_err(ApplyError::InvalidConfig)?;
    strip_ignored(&mut set, ignore_status);
    Ok(set.to_fields_v1())
}

/// Server-side apply of `config` (the request body as JSON) by `request.manager`.
///
/// 1. The fields `config` sets become the manager's `Apply` entry (apiVersion, kind, name,
///    namespace and server-owned metadata are not tracked; nor is `status` with
///    `ignore_status`).
/// 2. The result is `live` with `config` merged in (maps by key, associative lists by item key,
///    set lists as unions, anything else replaced); `null`s in `config` are dropped and
///    `metadata.managedFields` in it is ignored. With `live = None` (create) the result is the
///    configuration itself.
/// 3. Fields the manager applied before and no longer sends are removed from the result unless
///    another manager owns them.
/// 4. Fields other managers own that the result changes are conflicts: refused with
///    [`ApplyError::Conflicts`], or with `force` taken from those managers. Fields the result
///    no longer has leave every manager. Entries left empty are dropped.
///
/// An object with no managedFields that is applied to for the first time gets a
/// [`BEFORE_FIRST_APPLY`] `Update` entry owning everything it had, as upstream does.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    managed: &[Value],
    force: bool,
    request: &Request<'_>,
) -> Result<Applied, ApplyError> {
    validate_manager(request.manager)?;
    if request.manager.is_empty() {
        return Err(ApplyError::InvalidManager(
            "fieldManager is required for apply requests".to_owned(),
        ));
    }
    if !config.is_object() {
        return Err(ApplyError::InvalidConfig(
            "the configuration is not a json object".to_owned(),
        ));
    }
    let schema = Schema {
        strategies: request.strategies,
    };
    let root = Shape::Root(request.root_definition.map(str::to_owned));
    let config = prepare_config(config, request.ignore_status);
    let mut config_set = schema
        .field_set(&config, &root, true, &mut Vec::new())
        .map_err(ApplyError::InvalidConfig)?;
    strip_ignored(&mut config_set, request.ignore_status);
    let api_version = text(&config, "apiVersion");
    let subresource = request.subresource.unwrap_or_default();

    let empty = Value::Object(Map::new());
    let live_value = live.filter(|l| l.is_object()).unwrap_or(&empty);
    let mut entries = decode_all(managed);
    if live.is_some() && entries.is_empty() {
        let mut set = schema.field_set_lenient(live_value, &root);
        strip_ignored(&mut set, request.ignore_status);
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.to_owned(),
            operation: Operation::Update,
            api_version: text(live_value, "apiVersion"),
            time: Some(request.now.to_owned()),
            subresource: String::new(),
            set,
        });
    }
    let own = entries
        .iter()
        .position(|e| e.is(request.manager, Operation::Apply, "", subresource));
    let last_set = own.map(|i| entries[i].set.clone()).unwrap_or_default();

    let mut object = schema.merge(live_value, &config, &root, 0);
    let mut keep = config_set.clone();
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) != own {
            keep.union_with(&entry.set);
        }
    }
    let remove = last_set.difference(&keep);
    schema.prune(&mut object, &remove, Some(&keep), &root, 0);

    let mut comparison = schema.compare(Some(live_value), Some(&object), &root, 0);
    strip_ignored(&mut comparison.added, request.ignore_status);
    strip_ignored(&mut comparison.modified, request.ignore_status);
    strip_ignored(&mut comparison.removed, request.ignore_status);
    let changed = comparison.changed();

    let mut conflicts = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) == own {
            continue;
        }
        for path in entry.set.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: entry.manager.clone(),
                operation: entry.operation,
                api_version: entry.api_version.clone(),
                subresource: (!entry.subresource.is_empty()).then(|| entry.subresource.clone()),
                field: path_string(&path),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by_key(Conflict::manager_description);
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, entry) in entries.iter_mut().enumerate() {
        if Some(i) != own {
            entry.set = entry
                .set
                .difference(&changed)
                .difference(&comparison.removed);
        }
    }
    let object_changed = object != *live_value || live.is_none();
    match own.and_then(|i| entries.get_mut(i)) {
        Some(entry) => {
            if object_changed || entry.set != config_set || entry.api_version != api_version {
                entry.time = Some(request.now.to_owned());
            }
            entry.set = config_set;
            entry.api_version = api_version;
        }
        None => entries.push(Entry {
            manager: request.manager.to_owned(),
            operation: Operation::Apply,
            api_version,
            time: Some(request.now.to_owned()),
            subresource: subresource.to_owned(),
            set: config_set,
        }),
    }
    let managed_fields = finish(entries);
    set_managed_fields(&mut object, &managed_fields);
    Ok(Applied {
        object,
        managed_fields,
    })
}

/// The managedFields after a non-apply write (create, update, patch) by `request.manager`
/// turned `old` (`None` on create) into `new`: the fields the write added or changed become
/// the manager's (its `Update` entry for `new`'s apiVersion and the subresource), and leave
/// every other manager; removed fields leave everyone. A write that changes nothing tracked
/// leaves the entries as they were.
pub fn track_update(
    old: Option<&Value>,
    new: &Value,
    managed: &[Value],
    request: &Request<'_>,
) -> Vec<Value> {
    let schema = Schema {
        strategies: request.strategies,
    };
    let root = Shape::Root(request.root_definition.map(str::to_owned));
    let empty = Value::Object(Map::new());
    let old_value = old.filter(|o| o.is_object()).unwrap_or(&empty);
    let new_value = if new.is_object() { new } else { &empty };
    let mut comparison = schema.compare(Some(old_value), Some(new_value), &root, 0);
    strip_ignored(&mut comparison.added, request.ignore_status);
    strip_ignored(&mut comparison.modified, request.ignore_status);
    strip_ignored(&mut comparison.removed, request.ignore_status);
    let changed = comparison.changed();
    let api_version = text(new_value, "apiVersion");
    let subresource = request.subresource.unwrap_or_default();

    let mut entries = decode_all(managed);
    if changed.is_empty() && comparison.removed.is_empty() {
        return finish(entries);
    }
    for entry in &mut entries {
        entry.set = entry
            .set
            .difference(&changed)
            .difference(&comparison.removed);
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| {
            e.is(
                request.manager,
                Operation::Update,
                &api_version,
                subresource,
            )
        }) {
            Some(entry) => {
                entry.set.union_with(&changed);
                entry.time = Some(request.now.to_owned());
            }
            None => entries.push(Entry {
                manager: request.manager.to_owned(),
                operation: Operation::Update,
                api_version,
                time: Some(request.now.to_owned()),
                subresource: subresource.to_owned(),
                set: changed,
            }),
        }
    }
    finish(entries)
}

/// The configuration as applied: `null`s dropped (recursively, in objects),
/// `metadata.managedFields` removed, `status` removed with `ignore_status`.
fn prepare_config(config: &Value, ignore_status: bool) -> Value {
    let mut config = drop_nulls(config, 0);
    if let Some(map) = config.as_object_mut() {
        if ignore_status {
            map.remove("status");
        }
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
    }
    config
}

fn drop_nulls(value: &Value, depth: usize) -> Value {
    match value {
        Value::Object(map) if depth < 512 => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v, depth + 1)))
                .collect(),
        ),
        Value::Array(items) if depth < 512 => Value::Array(
            items
                .iter()
                .map(|item| drop_nulls(item, depth + 1))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Fields no manager owns: type meta, identity and server-owned metadata (upstream's list),
/// and `status` with `ignore_status`.
fn strip_ignored(set: &mut FieldSet, ignore_status: bool) {
    set.member = false;
    set.remove_child("f:apiVersion");
    set.remove_child("f:kind");
    if ignore_status {
        set.remove_child("f:status");
    }
    if let Some(metadata) = set.children.get_mut("f:metadata") {
        metadata.member = false;
        for field in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            metadata.remove_child(&format!("f:{field}"));
        }
        if metadata.is_empty() {
            set.remove_child("f:metadata");
        }
    }
}

fn set_managed_fields(object: &mut Value, managed_fields: &[Value]) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Some(metadata) = metadata.as_object_mut() {
        if managed_fields.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert(
                "managedFields".to_owned(),
                Value::Array(managed_fields.to_vec()),
            );
        }
    }
}

fn text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

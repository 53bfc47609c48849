//! `metadata.managedFields` entries: reading them, identifying managers, writing them back in
//! kube's order, and capping the number of `Update` entries.

use serde_json::{Map, Value};

use crate::fieldset::FieldSet;

/// kube-apiserver keeps at most this many `Update` entries; older ones are merged into
/// [`ANCIENT_CHANGES`].
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The entry the oldest `Update` entries are merged into beyond [`MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// The manager that receives every field of an object applied to for the first time while it
/// has no managedFields (objects written before field tracking).
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Whether an entry was written by server-side apply or by another write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

impl Operation {
    /// The spelling in managedFields.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One decoded managedFields entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: String,
    pub(crate) set: FieldSet,
}

impl Entry {
    /// Reads an entry; `None` for entries that are not objects, lack a manager or an
    /// operation, or are not `FieldsV1`.
    pub(crate) fn decode(value: &Value) -> Option<Entry> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let operation = match text("operation")?.as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        if text("fieldsType").is_some_and(|t| t != "FieldsV1") {
            return None;
        }
        let set = match value.get("fieldsV1") {
            Some(fields) => FieldSet::from_fields_v1(fields)?,
            None => FieldSet::default(),
        };
        Some(Entry {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource").unwrap_or_default(),
            set,
        })
    }

    pub(crate) fn encode(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".to_owned(), self.manager.clone().into());
        map.insert("operation".to_owned(), self.operation.as_str().into());
        map.insert("apiVersion".to_owned(), self.api_version.clone().into());
        if let Some(time) = &self.time {
            map.insert("time".to_owned(), time.clone().into());
        }
        map.insert("fieldsType".to_owned(), "FieldsV1".into());
        map.insert("fieldsV1".to_owned(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            map.insert("subresource".to_owned(), self.subresource.clone().into());
        }
        Value::Object(map)
    }

    /// Whether this entry is the one `manager` writes with `operation` (Apply entries are one
    /// per manager and subresource, Update entries also per API version).
    pub(crate) fn is(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// How kube names this manager in conflict messages: `"name"`, then
    /// ` with subresource "status"`, then for Update entries ` using apps/v1`.
    pub(crate) fn describe(&self) -> String {
        let mut out = Value::String(self.manager.clone()).to_string();
        if !self.subresource.is_empty() {
            out.push_str(" with subresource ");
            out.push_str(&Value::String(self.subresource.clone()).to_string());
        }
        if self.operation == Operation::Update {
            out.push_str(" using ");
            out.push_str(&self.api_version);
        }
        out
    }
}

/// Decodes every readable entry, merging duplicates of one identity.
pub(crate) fn decode_all(managed: &[Value]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for entry in managed.iter().filter_map(Entry::decode) {
        match out.iter_mut().find(|e| {
            e.is(
                &entry.manager,
                entry.operation,
                &entry.api_version,
                &entry.subresource,
            )
        }) {
            Some(existing) => {
                existing.set.union_with(&entry.set);
                if entry.time > existing.time {
                    existing.time = entry.time;
                }
            }
            None => out.push(entry),
        }
    }
    out
}

/// Drops empty entries, caps Update entries, sorts as kube does (operation, time, manager,
/// API version, subresource) and encodes.
pub(crate) fn finish(mut entries: Vec<Entry>) -> Vec<Value> {
    entries.retain(|e| !e.set.is_empty());
    cap_update_entries(&mut entries);
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    entries.iter().map(Entry::encode).collect()
}

fn cap_update_entries(entries: &mut Vec<Entry>) {
    loop {
        let updates = entries
            .iter()
            .filter(|e| e.operation == Operation::Update)
            .count();
        if updates <= MAX_UPDATE_MANAGERS {
            return;
        }
        // The oldest Update entry that is not the bucket itself goes into the bucket.
        let Some(oldest) = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.operation == Operation::Update && e.manager != ANCIENT_CHANGES)
            .min_by(|(_, a), (_, b)| a.time.cmp(&b.time))
            .map(|(i, _)| i)
        else {
            return;
        };
        let old = entries.remove(oldest);
        match entries
            .iter_mut()
            .find(|e| e.operation == Operation::Update && e.manager == ANCIENT_CHANGES)
        {
            Some(bucket) => {
                bucket.set.union_with(&old.set);
                if old.time > bucket.time {
                    bucket.time = old.time;
                }
            }
            None => entries.push(Entry {
                manager: ANCIENT_CHANGES.to_owned(),
                subresource: String::new(),
                ..old
            }),
        }
    }
}

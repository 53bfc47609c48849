//! Strategic merge patch, following kube's `apimachinery/pkg/util/strategicpatch` as
//! kube-apiserver applies it (`StrategicMergeMapPatch`):
//!
//! - objects merge recursively, `null` deletes a key;
//! - lists with `patchStrategy: merge` merge their objects by the merge key (items of the patch
//!   replace or merge into the item with the same key, new ones are added) or, for lists of
//!   scalars, become the union of both; other lists are replaced;
//! - directives: `$patch: replace|delete` on an object, `$patch: delete|replace` items in a
//!   merged list, `$retainKeys`, `$setElementOrder/<list>` and
//!   `$deleteFromPrimitiveList/<list>`. Directives never reach the result.
//!
//! Deliberate differences from upstream, all where upstream copies raw patch content (and its
//! directives) into the object or answers 500: a value added where the original has none (or
//! has another type) is itself merged into an empty value, so its nested directives are
//! applied and dropped; `$patch: delete` on an object removes the key instead of leaving `{}`;
//! `$deleteFromPrimitiveList` of a list the object lacks is a no-op; a `$setElementOrder` whose
//! list is not a list in the object or the patch is ignored.
//!
//! Nothing here indexes out of bounds or unwraps: every shape mismatch is a [`PatchError`].

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::PatchError;
use crate::strategy::{Child, FieldStrategy, ListStrategy, Strategies};

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

type Object = Map<String, Value>;

/// Applies a strategic merge patch body to a copy of `original`, whose definition is `root`.
pub(crate) fn apply(
    original: &Value,
    body: &[u8],
    root: &str,
    strategies: &dyn Strategies,
) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body).map_err(|e| {
        PatchError::Malformed(format!("invalid json in strategic merge patch: {e}"))
    })?;
    let Value::Object(patch) = patch else {
        return Err(malformed("a strategic merge patch must be a json object"));
    };
    let Value::Object(original) = original.clone() else {
        return Err(PatchError::NotApplicable(
            "the object to patch is not a json object".to_owned(),
        ));
    };
    let merger = Merger { strategies };
    match merger.object(original, patch, Scope::Definition(root))? {
        Merged::Keep(object) => Ok(Value::Object(object)),
        Merged::Delete => Ok(Value::Object(Map::new())),
    }
}

/// What the fields of the object being merged are known to be.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// Nothing is known: objects merge, lists are replaced.
    Unknown,
    /// The object is an instance of this definition.
    Definition(&'a str),
    /// The object is a map whose values are instances of this definition.
    MapValues(&'a str),
}

impl<'a> Scope<'a> {
    /// The scope of a field's value (or of its list items).
    fn below(strategy: &'a FieldStrategy) -> Scope<'a> {
        match &strategy.child {
            None => Scope::Unknown,
            Some(Child::Type(definition)) => Scope::Definition(definition),
            Some(Child::MapValues(definition)) => Scope::MapValues(definition),
        }
    }
}

/// The outcome of merging an object: its new content, or `$patch: delete`.
enum Merged {
    Keep(Object),
    Delete,
}

struct Merger<'s> {
    strategies: &'s dyn Strategies,
}

impl Merger<'_> {
    fn strategy(&self, scope: Scope<'_>, field: &str) -> FieldStrategy {
        match scope {
            Scope::Unknown => FieldStrategy::default(),
            Scope::Definition(definition) => {
                self.strategies.field(definition, field).unwrap_or_default()
            }
            Scope::MapValues(definition) => FieldStrategy {
                child: Some(Child::Type(definition.to_owned())),
                ..FieldStrategy::default()
            },
        }
    }

    /// Merges `patch` into `original` (upstream `mergeMap`).
    fn object(
        &self,
        mut original: Object,
        mut patch: Object,
        scope: Scope<'_>,
    ) -> Result<Merged, PatchError> {
        if let Some(directive) = patch.remove(PATCH_DIRECTIVE) {
            return match directive.as_str() {
                // The rest of the patch is the new object; merging it into nothing applies
                // and drops any directives inside.
                Some("replace") => self.object(Map::new(), patch, scope),
                Some("delete") => Ok(Merged::Delete),
                _ => Err(malformed(format!(
                    "unknown $patch directive {directive} in an object"
                ))),
            };
        }
        if let Some(retain) = patch.remove(RETAIN_KEYS) {
            retain_keys(&mut original, &patch, retain)?;
        }
        let ordered: Vec<String> = patch
            .keys()
            .filter(|key| key.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for key in ordered {
            if let Some(order) = patch.remove(&key) {
                let field = key.get(SET_ELEMENT_ORDER.len()..).unwrap_or_default();
                self.set_element_order(&mut original, &mut patch, field, order, scope)?;
            }
        }
        // Deletions from primitive lists go last, after the same list's additions. Removed keys
        // are dropped in one pass at the end: removing one at a time while keeping key order
        // would be quadratic.
        let mut deletions = Vec::new();
        let mut removed = HashSet::new();
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                deletions.push((field.to_owned(), value));
                continue;
            }
            match self.field(&mut original, &key, value, scope)? {
                Some(value) => {
                    original.insert(key, value);
                }
                None => {
                    removed.insert(key);
                }
            }
        }
        for (field, values) in deletions {
            if delete_from_primitive_list(&mut original, &field, values)? {
                removed.insert(field);
            }
        }
        if !removed.is_empty() {
            original.retain(|key, _| !removed.contains(key));
        }
        Ok(Merged::Keep(original))
    }

    /// Merges one field of the patch with its value in `original` and returns the new value, or
    /// `None` when the field goes.
    fn field(
        &self,
        original: &mut Object,
        key: &str,
        value: Value,
        scope: Scope<'_>,
    ) -> Result<Option<Value>, PatchError> {
        if value.is_null() {
            return Ok(None);
        }
        let strategy = self.strategy(scope, key);
        let existing = original.get_mut(key).map(std::mem::take);
        let merged = match (existing, value) {
            (Some(Value::Object(old)), Value::Object(new)) if !strategy.replace => {
                match self.object(old, new, Scope::below(&strategy))? {
                    Merged::Keep(object) => Some(Value::Object(object)),
                    Merged::Delete => None,
                }
            }
            (Some(Value::Array(old)), Value::Array(new))
                if strategy.list != ListStrategy::Replace =>
            {
                Some(Value::Array(self.list(key, old, new, &strategy)?))
            }
            (_, value) => self.fresh(key, value, &strategy)?,
        };
        Ok(merged)
    }

    /// A patch value that replaces whatever the original had: objects and merge lists are merged
    /// into an empty value (so their directives apply and vanish), replaced lists are taken as
    /// they are minus directives. `None` when the value deletes itself.
    fn fresh(
        &self,
        field: &str,
        value: Value,
        strategy: &FieldStrategy,
    ) -> Result<Option<Value>, PatchError> {
        Ok(match value {
            Value::Object(new) => match self.object(Map::new(), new, Scope::below(strategy))? {
                Merged::Keep(object) => Some(Value::Object(object)),
                Merged::Delete => None,
            },
            Value::Array(new) => Some(Value::Array(match strategy.list {
                ListStrategy::Replace => new.into_iter().map(strip_directives).collect(),
                _ => self.list(field, Vec::new(), new, strategy)?,
            })),
            other => Some(other),
        })
    }

    /// Merges two lists of a field with a merge strategy (upstream `mergeSlice`).
    fn list(
        &self,
        field: &str,
        original: Vec<Value>,
        patch: Vec<Value>,
        strategy: &FieldStrategy,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        if element_kind(field, &original, &patch)? != Kind::Object {
            return Ok(union_scalars(original, &patch));
        }
        let ListStrategy::Merge { key } = &strategy.list else {
            return Err(PatchError::NotApplicable(format!(
                "cannot merge the objects of list {field} without a merge key"
            )));
        };
        self.object_list(field, original, patch, key, Scope::below(strategy))
    }

    /// Merges two lists of objects by `key`, applying `$patch` items first.
    fn object_list(
        &self,
        field: &str,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        scope: Scope<'_>,
    ) -> Result<Vec<Value>, PatchError> {
        let identity = Identity::Key(key);
        let mut items = Vec::with_capacity(patch.len());
        let mut deleted = HashSet::new();
        let mut replace = false;
        for item in patch {
            let Value::Object(item) = item else {
                return Err(not_all_one_type(field));
            };
            let Some(directive) = item.get(PATCH_DIRECTIVE) else {
                items.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let value = item.get(key).ok_or_else(|| no_merge_key(field, key))?;
                    deleted.insert(canonical(value));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(malformed(format!(
                        "$patch: merge in the items of list {field} is not supported"
                    )));
                }
                _ => {
                    return Err(malformed(format!(
                        "unknown $patch directive {directive} in an item of list {field}"
                    )));
                }
            }
        }
        if replace {
            // The patch's other items, in their order, are the whole list.
            let mut replaced = Vec::with_capacity(items.len());
            for item in items {
                if let Merged::Keep(object) = self.object(Map::new(), item, scope)? {
                    replaced.push(Value::Object(object));
                }
            }
            return Ok(replaced);
        }
        if !deleted.is_empty() {
            original.retain(|entry| {
                entry
                    .get(key)
                    .is_none_or(|value| !deleted.contains(&canonical(value)))
            });
        }
        if let Some(position) = original.iter().position(|entry| entry.get(key).is_none()) {
            return Err(PatchError::NotApplicable(format!(
                "item {position} of list {field} has no merge key {key}"
            )));
        }

        let server_order = Order::new(&original, identity);
        let mut position: HashMap<String, usize> = HashMap::new();
        for (index, entry) in original.iter().enumerate() {
            if let Some(id) = identity.of(entry) {
                position.entry(id).or_insert(index);
            }
        }
        let mut patch_ids = Vec::with_capacity(items.len());
        for item in items {
            let id = item
                .get(key)
                .map(canonical)
                .ok_or_else(|| no_merge_key(field, key))?;
            patch_ids.push(id.clone());
            match position.get(&id).and_then(|&index| original.get_mut(index)) {
                Some(slot) => {
                    let Value::Object(old) = std::mem::take(slot) else {
                        return Err(not_all_one_type(field));
                    };
                    *slot = match self.object(old, item, scope)? {
                        Merged::Keep(object) => Value::Object(object),
                        Merged::Delete => Value::Object(Map::new()),
                    };
                }
                None => {
                    if let Merged::Keep(object) = self.object(Map::new(), item, scope)? {
                        position.insert(id, original.len());
                        original.push(Value::Object(object));
                    }
                }
            }
        }

        let patch_order = Order::from_ids(patch_ids);
        let (patch_items, server_only): (Vec<Value>, Vec<Value>) = original
            .into_iter()
            .partition(|entry| patch_order.index_of(entry, identity).is_some());
        Ok(normalize(
            patch_items,
            server_only,
            &patch_order,
            &server_order,
            identity,
        ))
    }

    /// Applies `$setElementOrder/<field>` together with the patch's `<field>` list (upstream
    /// `mergePatchIntoOriginal`): the merged list holds the patch's items in `order` and the
    /// object's other items where they were relative to them.
    fn set_element_order(
        &self,
        original: &mut Object,
        patch: &mut Object,
        field: &str,
        order: Value,
        scope: Scope<'_>,
    ) -> Result<(), PatchError> {
        let Value::Array(order) = order else {
            return Err(malformed(format!(
                "$setElementOrder/{field} must be a list"
            )));
        };
        // A list that is something else on either side is left to the ordinary merge.
        if original.get(field).is_some_and(|v| !v.is_array())
            || patch.get(field).is_some_and(|v| !v.is_array())
        {
            return Ok(());
        }
        let patch_list = match patch.remove(field) {
            Some(Value::Array(list)) => Some(list),
            _ => None,
        };
        let original_list = match original.get_mut(field).map(std::mem::take) {
            Some(Value::Array(list)) => Some(list),
            _ => None,
        };
        let strategy = self.strategy(scope, field);
        let all_objects = original_list
            .iter()
            .chain(patch_list.iter())
            .flatten()
            .all(Value::is_object);
        let identity = match &strategy.list {
            ListStrategy::Merge { key } if all_objects => Identity::Key(key),
            _ => Identity::Whole,
        };
        if let Some(patch_list) = &patch_list {
            check_order(field, patch_list, &order, identity)?;
        }
        let server_order = Order::new(original_list.as_deref().unwrap_or_default(), identity);
        let merged = match (original_list, patch_list) {
            (Some(old), None) => old,
            (Some(old), Some(new)) if strategy.list != ListStrategy::Replace => {
                self.list(field, old, new, &strategy)?
            }
            (_, Some(new)) => match self.fresh(field, Value::Array(new), &strategy)? {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            },
            (None, None) => return Ok(()),
        };
        let wanted = Order::new(&order, identity);
        let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| wanted.index_of(item, identity).is_some());
        let ordered = normalize(patch_items, server_only, &wanted, &server_order, identity);
        original.insert(field.to_owned(), Value::Array(ordered));
        Ok(())
    }
}

/// Clears the keys of `original` not named in `$retainKeys` (upstream
/// `applyRetainKeysDirective`); every field the patch sets must be named.
fn retain_keys(original: &mut Object, patch: &Object, retain: Value) -> Result<(), PatchError> {
    let Value::Array(names) = retain else {
        return Err(malformed("$retainKeys must be a list of field names"));
    };
    let keep: HashSet<&str> = names.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch {
        if value.is_null()
            || key.starts_with(SET_ELEMENT_ORDER)
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        {
            continue;
        }
        if !keep.contains(key.as_str()) {
            return Err(malformed(format!(
                "field {key} is set by the patch but missing from its $retainKeys list"
            )));
        }
    }
    original.retain(|key, _| keep.contains(key.as_str()));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes the listed values from the object's list.
/// Returns whether the whole field is to go.
fn delete_from_primitive_list(
    original: &mut Object,
    field: &str,
    values: Value,
) -> Result<bool, PatchError> {
    match values {
        // Upstream treats a null deletion list like a null field: the list goes.
        Value::Null => return Ok(true),
        Value::Array(values) => {
            let unwanted: HashSet<String> = values.iter().map(canonical).collect();
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|value| !unwanted.contains(&canonical(value)));
            }
        }
        _ => {
            return Err(malformed(format!(
                "$deleteFromPrimitiveList/{field} must be a list"
            )));
        }
    }
    Ok(false)
}

/// Checks that the patch's items appear in the order `$setElementOrder` gives (upstream
/// `validatePatchWithSetOrderList`): the patch list must be a subsequence of the order list,
/// ignoring `$patch` items.
fn check_order(
    field: &str,
    patch: &[Value],
    order: &[Value],
    identity: Identity<'_>,
) -> Result<(), PatchError> {
    let items: Vec<&Value> = patch
        .iter()
        .filter(|item| item.get(PATCH_DIRECTIVE).is_none())
        .collect();
    let mut next = 0;
    for wanted in order {
        let Some(item) = items.get(next) else {
            return Ok(());
        };
        let (Some(have), Some(want)) = (identity.of(item), identity.of(wanted)) else {
            return Err(match identity {
                Identity::Key(key) => no_merge_key(field, key),
                Identity::Whole => malformed(format!("$setElementOrder/{field} is malformed")),
            });
        };
        if have == want {
            next += 1;
        }
    }
    if next < items.len() {
        return Err(malformed(format!(
            "the items of list {field} in the patch are not in the order of $setElementOrder/{field}"
        )));
    }
    Ok(())
}

/// Union of two scalar lists without duplicates, patch items in patch order.
fn union_scalars(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let identity = Identity::Whole;
    let server_order = Order::new(&original, identity);
    let patch_order = Order::new(patch, identity);
    let mut seen = HashSet::new();
    let merged = original
        .into_iter()
        .chain(patch.iter().cloned())
        .filter(|value| seen.insert(canonical(value)));
    let (patch_items, server_only): (Vec<Value>, Vec<Value>) =
        merged.partition(|value| patch_order.index_of(value, identity).is_some());
    normalize(
        patch_items,
        server_only,
        &patch_order,
        &server_order,
        identity,
    )
}

/// Orders `patch_items` by `patch_order` and `server_only` by `server_order`, then interleaves
/// them (upstream `normalizeElementOrder` + `mergeSortedSlice`): a server-only item goes before a
/// patch item only when both are in the original and it came first there.
fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &Order,
    server_order: &Order,
    identity: Identity<'_>,
) -> Vec<Value> {
    let patch_items = sort_by_order(patch_items, patch_order, identity);
    let server_only = sort_by_order(server_only, server_order, identity);
    let mut merged = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only
        .into_iter()
        .map(|item| (server_order.index_of(&item, identity), item))
        .peekable();
    let mut right = patch_items
        .into_iter()
        .map(|item| (server_order.index_of(&item, identity), item))
        .peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((l, _)), Some((r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, item)) = next {
            merged.push(item);
        }
    }
    merged
}

/// Stable sort by position in `order`; items not in it keep their relative order at the end.
fn sort_by_order(items: Vec<Value>, order: &Order, identity: Identity<'_>) -> Vec<Value> {
    let mut keyed: Vec<(usize, usize, Value)> = items
        .into_iter()
        .enumerate()
        .map(|(at, item)| {
            let rank = order.index_of(&item, identity).unwrap_or(usize::MAX);
            (rank, at, item)
        })
        .collect();
    keyed.sort_by_key(|(rank, at, _)| (*rank, *at));
    keyed.into_iter().map(|(_, _, item)| item).collect()
}

/// How list items are told apart: by merge key for lists of objects, by value otherwise.
#[derive(Debug, Clone, Copy)]
enum Identity<'a> {
    Key(&'a str),
    Whole,
}

impl Identity<'_> {
    fn of(self, item: &Value) -> Option<String> {
        match self {
            Identity::Key(key) => item.get(key).map(canonical),
            Identity::Whole => Some(canonical(item)),
        }
    }
}

/// First position of each identity in a list, for O(1) lookups.
struct Order(HashMap<String, usize>);

impl Order {
    fn new(list: &[Value], identity: Identity<'_>) -> Order {
        Order::from_ids(list.iter().filter_map(|item| identity.of(item)))
    }

    fn from_ids(ids: impl IntoIterator<Item = String>) -> Order {
        let mut positions = HashMap::new();
        for (index, id) in ids.into_iter().enumerate() {
            positions.entry(id).or_insert(index);
        }
        Order(positions)
    }

    fn index_of(&self, item: &Value, identity: Identity<'_>) -> Option<usize> {
        self.0.get(&identity.of(item)?).copied()
    }
}

/// A string equal for equal JSON values; numbers compare by value (`80` equals `80.0`), as Go's
/// `float64` comparison upstream does.
fn canonical(value: &Value) -> String {
    match value {
        Value::Null => "z".to_owned(),
        Value::Bool(b) => format!("b{b}"),
        Value::Number(n) => match n.as_f64() {
            Some(f) => format!("n{f}"),
            None => format!("n{n}"),
        },
        Value::String(s) => format!("s{s}"),
        other => format!("j{other}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Object,
}

/// The one kind of all items of both lists (upstream `sliceElementType`).
fn element_kind(field: &str, original: &[Value], patch: &[Value]) -> Result<Kind, PatchError> {
    let mut seen = None;
    for item in original.iter().chain(patch) {
        let kind = match item {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Object(_) => Kind::Object,
            Value::Array(_) => {
                return Err(PatchError::NotApplicable(format!(
                    "list {field} holds lists, and lists of lists are not supported"
                )));
            }
        };
        match seen {
            None => seen = Some(kind),
            Some(previous) if previous != kind => return Err(not_all_one_type(field)),
            Some(_) => {}
        }
    }
    Ok(seen.unwrap_or(Kind::Null))
}

fn is_directive(key: &str) -> bool {
    key == PATCH_DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Drops directive keys at any depth of a value taken from the patch as it is.
fn strip_directives(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter(|(key, _)| !is_directive(key))
                .map(|(key, value)| (key, strip_directives(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_directives).collect()),
        other => other,
    }
}

fn malformed(message: impl Into<String>) -> PatchError {
    PatchError::Malformed(message.into())
}

fn no_merge_key(field: &str, key: &str) -> PatchError {
    malformed(format!(
        "an item of list {field} in the patch has no merge key {key}"
    ))
}

fn not_all_one_type(field: &str) -> PatchError {
    PatchError::NotApplicable(format!(
        "the items of list {field} are not all of the same type"
    ))
}

//! The two kind-agnostic patch types: JSON patch (RFC 6902) and JSON merge patch (RFC 7386),
//! both delegated to the `json-patch` crate. This module only parses bodies and sorts failures
//! into [`PatchError`] variants.

use serde_json::Value;

use crate::{MAX_JSON_PATCH_OPERATIONS, PatchError};

/// Applies an RFC 6902 patch body to a copy of `original`.
pub(crate) fn json_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let operations: json_patch::Patch = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("invalid json patch: {e}")))?;
    if operations.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            operations: operations.0.len(),
            max: MAX_JSON_PATCH_OPERATIONS,
        });
    }
    let mut doc = original.clone();
    // `patch_unsafe` leaves `doc` half patched on failure, which is fine: it is a copy and is
    // dropped. The undoing `patch` has an internal `unreachable!` we would rather not reach.
    json_patch::patch_unsafe(&mut doc, &operations)
        .map_err(|e| PatchError::NotApplicable(e.to_string()))?;
    Ok(doc)
}

/// Applies an RFC 7386 merge patch body to a copy of `original`. The body must be a JSON
/// object: Kubernetes objects are objects, and any other patch would replace the whole object.
pub(crate) fn merge_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("invalid json in merge patch: {e}")))?;
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "a merge patch must be a json object".to_owned(),
        ));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &patch);
    Ok(doc)
}

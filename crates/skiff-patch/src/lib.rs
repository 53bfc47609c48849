//! skiff's PATCH engines: the three patch types kube-apiserver accepts besides server-side
//! apply, as pure functions from (object, patch body) to the patched object.
//!
//! Start at [`apply`]: it takes the stored object as a [`serde_json::Value`], the raw request
//! body and the [`PatchType`] read from the `Content-Type` header
//! ([`PatchType::from_content_type`]), and returns the patched object or a [`PatchError`] whose
//! variant tells the server which HTTP status to answer with.
//!
//! - JSON patch (RFC 6902) and JSON merge patch (RFC 7386) need no knowledge of the kind.
//! - Strategic merge patch needs each field's patch strategy (merge lists by key, retain keys,
//!   replace) and the definition each field's value has, so it can walk down the object. Both
//!   come through the [`Strategies`] trait; [`StrategyTable`] implements it from the bundled
//!   `data/patch-strategies.tsv` (facts from the upstream OpenAPI definitions) plus the type
//!   graph the caller adds with [`StrategyTable::add_schema`].
//!
//! Invariants: this crate does no IO, knows nothing of HTTP, storage or k8s-openapi's types, and
//! never panics on any input. `application/apply-patch+yaml` (server-side apply) is not handled
//! here.

mod error;
mod standard;
mod strategic;
mod strategy;

pub use error::PatchError;
pub use strategy::{
    Child, FieldStrategy, ListStrategy, PATCH_STRATEGIES_TSV, Strategies, StrategyTable, TableError,
};

use serde_json::Value;

/// kube-apiserver refuses JSON patches with more operations than this (413).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch types this crate applies, one per `Content-Type` of a PATCH request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7386 merge patch.
    Merge,
    /// `application/strategic-merge-patch+json`: Kubernetes strategic merge patch.
    StrategicMerge,
}

impl PatchType {
    /// Reads a `Content-Type` header value, ignoring parameters after `;` and letter case.
    /// Returns `None` for anything else, including `application/apply-patch+yaml`, which is
    /// server-side apply and not handled by this crate.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/json-patch+json") {
            Some(PatchType::Json)
        } else if essence.eq_ignore_ascii_case("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if essence.eq_ignore_ascii_case("application/strategic-merge-patch+json") {
            Some(PatchType::StrategicMerge)
        } else {
            None
        }
    }

    /// The media type this patch type is sent with.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies `patch` (the raw request body) of type `ty` to `original` and returns the patched
/// object; `original` is left untouched.
///
/// `root_definition` names the OpenAPI definition of `original` (e.g.
/// `io.k8s.api.apps.v1.Deployment`) and `strategies` gives the patch strategy of its fields; both
/// are only read for [`PatchType::StrategicMerge`]. With `root_definition = None` (custom
/// resources, whose schemas carry no patch strategies) a strategic merge patch is refused with
/// [`PatchError::StrategicMergeUnsupported`], as kube-apiserver does.
///
/// The result is always a JSON object: a patch that would turn the object into anything else
/// is refused.
pub fn apply(
    original: &Value,
    patch: &[u8],
    ty: PatchType,
    root_definition: Option<&str>,
    strategies: &dyn Strategies,
) -> Result<Value, PatchError> {
    let patched = match ty {
        PatchType::Json => standard::json_patch(original, patch)?,
        PatchType::Merge => standard::merge_patch(original, patch)?,
        PatchType::StrategicMerge => {
            let root = root_definition.ok_or(PatchError::StrategicMergeUnsupported)?;
            strategic::apply(original, patch, root, strategies)?
        }
    };
    if patched.is_object() {
        Ok(patched)
    } else {
        Err(PatchError::NotApplicable(
            "the patched document is not a json object".to_owned(),
        ))
    }
}

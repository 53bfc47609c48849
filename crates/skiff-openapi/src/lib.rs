//! OpenAPI documents and strict field validation for skiff, built from k8s-openapi's schemas.
//!
//! [`Catalog`] holds every schema definition (k8s-openapi's `v1_33` types plus custom
//! resources added at run time), answers "which definition is this kind" and "what is the
//! definition of this field" (for strategic merge patch), and finds unknown fields
//! ([`Catalog::validate_unknown_fields`]). [`Documents`] renders what kube-apiserver serves at
//! `/openapi/v3`, `/openapi/v3/<api|apis/group>/<version>` and `/openapi/v2`: the operations
//! of the served [`Kind`]s (carrying `x-kubernetes-group-version-kind`,
//! `x-kubernetes-action` and the `fieldValidation` parameter kubectl looks for) and the
//! schemas they reach, with descriptions, `x-kubernetes-group-version-kind` on kinds and the
//! patch-strategy / list-type extensions on properties. The v2 document also comes in the
//! protobuf encoding kubectl asks for ([`Documents::v2_protobuf`], messages in [`v2proto`]).

mod builtin;
mod catalog;
mod documents;
mod paths;
pub mod v2proto;
mod validate;

pub use catalog::{Catalog, PatchMeta};
pub use documents::{Documents, group_version_key};

/// A served resource kind, as the API server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Kind {
    /// API group, `""` for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Plural resource name, e.g. `pods`.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Kube verbs: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`.
    pub verbs: Vec<String>,
    /// Subresources: `status`, `scale` (also understood: `ephemeralcontainers`, `resize`,
    /// `approval`, `eviction`, `binding`, `token`; others are ignored).
    pub subresources: Vec<String>,
}

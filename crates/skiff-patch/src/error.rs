//! The one error type of the patch engines. Each variant stands for one HTTP status
//! kube-apiserver answers with; the mapping itself belongs to the server.

/// Why a patch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The body is not JSON, or not the shape its patch type needs (a JSON patch that is not a
    /// list of operations, a merge patch that is not an object, a strategic merge directive in
    /// the wrong form, a list item without its merge key). kube-apiserver answers 400 Bad Request.
    #[error("malformed patch: {0}")]
    Malformed(String),
    /// The patch is well formed but cannot be applied to this object: a JSON patch `test` failed
    /// or a path does not exist, or the object's lists do not fit the patch. kube-apiserver
    /// answers 422 Unprocessable Entity ("the server rejected our request due to an error in our
    /// request").
    #[error("patch cannot be applied: {0}")]
    NotApplicable(String),
    /// A JSON patch with more operations than kube-apiserver accepts. It answers 413 Request
    /// Entity Too Large.
    #[error("json patch has {operations} operations, the allowed maximum is {max}")]
    TooManyOperations {
        /// Operations in the patch.
        operations: usize,
        /// [`crate::MAX_JSON_PATCH_OPERATIONS`].
        max: usize,
    },
    /// A strategic merge patch for a type with no known patch strategies (custom resources).
    /// kube-apiserver answers 415 Unsupported Media Type with this message.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )]
    StrategicMergeUnsupported,
}

//! The store's one error type. Messages are lowercase and name the key, path or URL involved.

use std::sync::Arc;

/// Everything a store operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// `create` found the key already present.
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },

    /// `update` or `delete` found no live value under the key.
    #[error("key {key:?} not found")]
    NotFound { key: String },

    /// A compare-and-swap saw another mod_revision than the caller expected.
    /// `current` is the value that won, so callers can retry without another read.
    #[error("key {key:?} was modified: expected mod_revision {expected}, found {}", .current.as_ref().map_or(0, |kv| kv.mod_revision))]
    Conflict {
        key: String,
        expected: i64,
        current: Option<Box<crate::KeyValue>>,
    },

    /// A read or watch asked for history that compaction has already removed.
    #[error("revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted { requested: i64, compacted: i64 },

    /// A read asked for a revision the store has not reached yet.
    #[error("revision {requested} is in the future (current revision is {current})")]
    FutureRevision { requested: i64, current: i64 },

    /// The caller passed a key or range the store cannot hold.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },

    /// The datastore argument could not be understood.
    #[error("invalid datastore {datastore:?}: {reason}")]
    InvalidDatastore { datastore: String, reason: String },

    /// The datastore could not be opened (missing permissions, corrupt file, unreachable server,
    /// locked by another process, or not a skiff database).
    #[error("cannot open datastore {target}: {reason}")]
    Open { target: String, reason: String },

    /// The database failed an operation after it was opened.
    #[error("datastore error: {0}")]
    Database(#[source] Arc<sqlx::Error>),

    /// The store was closed while the operation was pending.
    #[error("store is closed")]
    Closed,
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::Database(Arc::new(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

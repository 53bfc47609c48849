//! skiff's storage: an etcd-like revisioned key-value store on SQLite (embedded) or Postgres
//! (shared by several servers).
//!
//! Start at [`Store`]: `open` a [`Datastore`], then `create` / `update` / `delete` with
//! compare-and-swap on `mod_revision`, `get` / `range` / `count` at the head or a past
//! revision, `watch` a key range from a revision, and `compact` history (also done
//! automatically within a [`Retention`] window).
//!
//! Every write takes the next global revision; revisions have no gaps and watchers receive
//! events in revision order. The store knows nothing of HTTP or Kubernetes kinds: keys are
//! strings and values are bytes.
//!
//! Inside: `backend` holds the SQL for both databases, `writer` commits concurrent writes in
//! groups, `watch` fans committed events out to watchers, `compactor` bounds history.

mod backend;
mod compactor;
mod datastore;
mod error;
mod model;
mod store;
mod watch;
mod writer;

pub use compactor::Retention;
pub use datastore::Datastore;
pub use error::{Error, Result};
pub use model::{Event, EventKind, KeyRange, KeyValue, RangePage, ReadAt};
pub use store::{Config, Counters, Stats, Store};
pub use watch::Watch;

//! skiff's scheduler: a pure API client (kube-rs) that watches pending pods, filters and
//! scores nodes as kube-scheduler's default plugins do, and binds pods through the
//! `pods/binding` subresource.
//!
//! - [`quantity`]: resource quantities as integers.
//! - [`selector`]: label selectors and node selector terms.
//! - [`snapshot`]: nodes, placed pods and their requests, in memory.
//! - [`filter`]: the filters, with kube-scheduler's reason strings and "0/N nodes are
//!   available" message.
//! - [`score`]: the score plugins and their weights.
//! - [`scheduler`]: the loop (watches, queue, assumed pods, bindings, events); start at
//!   [`run`].

pub mod filter;
pub mod quantity;
pub mod scheduler;
pub mod score;
pub mod selector;
pub mod snapshot;

pub use scheduler::{Config, Scheduler, run, select_node};
pub use score::Weights;

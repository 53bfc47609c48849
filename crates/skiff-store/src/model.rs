//! Plain values that cross the store's API: keys with their revisions, watch events, ranges.

use bytes::Bytes;

use crate::{Error, Result};

/// The live value of a key as of some revision, with etcd's revision bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: i64,
    /// Revision of the write that produced this value.
    pub mod_revision: i64,
    pub value: Bytes,
}

/// What a watch event did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One committed change. Events reach watchers in revision order without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The revision of this change.
    pub revision: i64,
    /// For a put, the new value. For a delete, the key with `mod_revision` set to the delete's
    /// revision and an empty value (as etcd reports it).
    pub kv: KeyValue,
    /// The value the key held just before this change, if it existed.
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn key(&self) -> &str {
        &self.kv.key
    }
}

/// A half-open key interval `[start, end)`; `end == None` means "to the end of the key space".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub start: String,
    pub end: Option<String>,
}

impl KeyRange {
    /// All keys beginning with `prefix` (the empty prefix selects every key).
    pub fn prefix(prefix: &str) -> Result<Self> {
        validate_key(prefix, true)?;
        Ok(KeyRange {
            start: prefix.to_owned(),
            end: prefix_end(prefix),
        })
    }

    /// Exactly one key.
    pub fn single(key: &str) -> Result<Self> {
        validate_key(key, false)?;
        let mut end = key.to_owned();
        end.push('\u{1}');
        // Keys carry no NUL, so "key\u{1}" is the first key after `key` that we can store; the
        // range is then exactly {key} because no stored key lies strictly between them.
        Ok(KeyRange {
            start: key.to_owned(),
            end: Some(end),
        })
    }

    /// The rest of this range after `last_key`: how a paged read continues.
    pub fn after(&self, last_key: &str) -> KeyRange {
        let mut start = last_key.to_owned();
        start.push('\u{1}');
        KeyRange {
            start: start.max(self.start.clone()),
            end: self.end.clone(),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        key >= self.start.as_str() && self.end.as_deref().is_none_or(|end| key < end)
    }

    /// The upper bound as a string for SQL; `None` is replaced by a key above every valid key.
    pub(crate) fn end_for_sql(&self) -> &str {
        self.end.as_deref().unwrap_or(KEY_SPACE_END)
    }
}

/// Above every key we accept: keys are valid UTF-8 and U+10FFFF is the last code point.
const KEY_SPACE_END: &str = "\u{10FFFF}\u{10FFFF}\u{10FFFF}\u{10FFFF}";

/// The smallest string greater than every string that starts with `prefix`, if one exists.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // Skip the surrogate gap: the next scalar value after U+D7FF is U+E000.
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Keys are non-empty UTF-8 without NUL (Postgres text cannot hold it) and at most 64 KiB.
pub(crate) fn validate_key(key: &str, allow_empty: bool) -> Result<()> {
    let reason = if key.is_empty() && !allow_empty {
        "key is empty"
    } else if key.contains('\0') {
        "key contains a NUL character"
    } else if key.len() > 65_536 {
        "key is longer than 64 KiB"
    } else if key.starts_with('\u{10FFFF}') {
        "key starts with U+10FFFF, which is reserved"
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey {
        key: key.chars().take(256).collect(),
        reason,
    })
}

/// Which revision a read is served at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAt {
    /// The newest committed state.
    #[default]
    Latest,
    /// The state right after the given revision was committed.
    Revision(i64),
}

/// A page of keys from a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePage {
    /// The revision the page was read at (the store's head revision for `ReadAt::Latest`).
    pub revision: i64,
    pub kvs: Vec<KeyValue>,
    /// More keys follow in the range after the last one returned.
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_covers_exactly_the_prefix() {
        let r = KeyRange::prefix("/registry/pods/").unwrap();
        assert_eq!(r.end.as_deref(), Some("/registry/pods0"));
        assert!(r.contains("/registry/pods/default/a"));
        assert!(!r.contains("/registry/pods"));
        assert!(!r.contains("/registry/podsx"));
        let all = KeyRange::prefix("").unwrap();
        assert_eq!(all.end, None);
        assert!(all.contains("anything"));
    }

    #[test]
    fn prefix_end_carries_past_the_last_code_point() {
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[test]
    fn single_key_range_holds_only_that_key() {
        let r = KeyRange::single("/a/b").unwrap();
        assert!(r.contains("/a/b"));
        assert!(!r.contains("/a/b/"));
        assert!(!r.contains("/a/b\u{1}"));
        assert!(!r.contains("/a/a"));
    }

    #[test]
    fn bad_keys_are_rejected_with_a_reason() {
        assert!(matches!(
            validate_key("", false),
            Err(Error::InvalidKey {
                reason: "key is empty",
                ..
            })
        ));
        assert!(validate_key("a\0b", false).is_err());
        assert!(validate_key(&"x".repeat(70_000), false).is_err());
        assert!(validate_key("/registry/ok", false).is_ok());
    }
}

//! The SQL layer: schema, a batch of writes in one transaction, consistent reads at a revision,
//! the event log that feeds watchers, and bounded compaction steps.
//!
//! Both databases run the same statements (`$n` placeholders work in SQLite too); what differs
//! lives in one [`Dialect`] table per database. Each operation is written once and expanded for
//! both concrete pool types by [`dispatch!`], so no generic sqlx bounds leak into the code.
//!
//! Tables (all prefixed `skiff_` so a shared Postgres database can hold other things):
//! - `skiff_log`: one row per revision (put or tombstone), the only place values live.
//!   `prev_revision` points at the row this one superseded (0 for a fresh create).
//! - `skiff_kv`: the current-value index, key → (create_revision, mod_revision) of live keys,
//!   so reads at the head are index lookups, never `MAX(revision) GROUP BY key`.
//! - `skiff_meta`: the head revision (its row lock also serialises writers across servers),
//!   the compacted revision and the schema version.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::datastore::redact;
use crate::model::{KeyRange, KeyValue};
use crate::{Datastore, Error, Event, EventKind, Result};

/// Schema version written by this code; a database with a higher one is refused.
const SCHEMA_VERSION: i64 = 1;

/// The Postgres channel writers notify after each commit.
pub(crate) const NOTIFY_CHANNEL: &str = "skiff_store_events";

/// What differs between the two databases.
struct Dialect {
    schema: &'static [&'static str],
    /// Starts a read-only transaction that sees one snapshot across statements.
    begin_snapshot: &'static str,
    /// Sent inside each write transaction; delivered to listeners when it commits.
    notify: Option<&'static str>,
    /// Run after a compaction step has committed, to give space back.
    after_compact: Option<&'static str>,
    /// Taken first in the migration transaction, so servers starting together on one
    /// database do not race on CREATE TABLE.
    migration_lock: Option<&'static str>,
}

static SQLITE: Dialect = Dialect {
    schema: &[
        "CREATE TABLE IF NOT EXISTS skiff_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) \
         WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS skiff_log (revision INTEGER PRIMARY KEY, key TEXT NOT NULL, \
         create_revision INTEGER NOT NULL, prev_revision INTEGER NOT NULL, \
         deleted BOOLEAN NOT NULL, value BLOB)",
        "CREATE INDEX IF NOT EXISTS skiff_log_key_revision ON skiff_log (key, revision)",
        "CREATE TABLE IF NOT EXISTS skiff_kv (key TEXT PRIMARY KEY, \
         create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL) WITHOUT ROWID",
    ],
    begin_snapshot: "BEGIN",
    notify: None,
    after_compact: Some("PRAGMA incremental_vacuum(2048)"),
    migration_lock: None,
};

static POSTGRES: Dialect = Dialect {
    schema: &[
        "CREATE TABLE IF NOT EXISTS skiff_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS skiff_log (revision BIGINT PRIMARY KEY, \
         key TEXT COLLATE \"C\" NOT NULL, create_revision BIGINT NOT NULL, \
         prev_revision BIGINT NOT NULL, deleted BOOLEAN NOT NULL, value BYTEA)",
        "CREATE INDEX IF NOT EXISTS skiff_log_key_revision ON skiff_log (key, revision)",
        "CREATE TABLE IF NOT EXISTS skiff_kv (key TEXT COLLATE \"C\" PRIMARY KEY, \
         create_revision BIGINT NOT NULL, mod_revision BIGINT NOT NULL)",
    ],
    begin_snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    notify: Some("SELECT pg_notify('skiff_store_events', $1)"),
    after_compact: None,
    migration_lock: Some("SELECT pg_advisory_xact_lock(727110357)"),
};

const SEED_META: &str = "INSERT INTO skiff_meta (name, value) VALUES ('revision', 0), \
     ('compact_revision', 0), ('schema_version', 1) ON CONFLICT (name) DO NOTHING";
const SELECT_HEADS: &str = "SELECT (SELECT value FROM skiff_meta WHERE name = 'revision'), \
     (SELECT value FROM skiff_meta WHERE name = 'compact_revision')";
/// Takes the head revision with a row lock: concurrent writers (other servers on the same
/// Postgres) queue here, so revisions are gap-free and become visible in order.
const LOCK_HEAD: &str =
    "UPDATE skiff_meta SET value = value WHERE name = 'revision' RETURNING value";
const SET_HEAD: &str = "UPDATE skiff_meta SET value = $1 WHERE name = 'revision'";
const RANGE_HEAD: &str = "SELECT k.key, k.create_revision, k.mod_revision, l.value \
     FROM skiff_kv k JOIN skiff_log l ON l.revision = k.mod_revision \
     WHERE k.key >= $1 AND k.key < $2 ORDER BY k.key LIMIT $3";
const RANGE_PAST: &str = "SELECT l.key, l.create_revision, l.revision, l.value FROM skiff_log l \
     WHERE l.key >= $1 AND l.key < $2 AND l.revision <= $3 AND NOT l.deleted \
     AND NOT EXISTS (SELECT 1 FROM skiff_log n WHERE n.key = l.key \
     AND n.revision > l.revision AND n.revision <= $3) \
     ORDER BY l.key LIMIT $4";
const COUNT_HEAD: &str = "SELECT COUNT(*) FROM skiff_kv WHERE key >= $1 AND key < $2";
const EVENTS: &str = "SELECT l.revision, l.key, l.create_revision, l.deleted, l.value, \
     p.create_revision, p.revision, p.value \
     FROM skiff_log l LEFT JOIN skiff_log p ON p.revision = l.prev_revision \
     WHERE l.revision > $1 AND l.revision <= $2 AND l.key >= $3 AND l.key < $4 \
     ORDER BY l.revision LIMIT $5";
/// A row superseded at or below the compaction revision is never read again: delete every row
/// that a row in the window replaced, then the window's tombstones. Each step costs at most
/// the rows in its window.
const COMPACT_SUPERSEDED: &str = "DELETE FROM skiff_log WHERE revision IN \
     (SELECT prev_revision FROM skiff_log WHERE revision > $1 AND revision <= $2 \
     AND prev_revision > 0)";
const COMPACT_TOMBSTONES: &str =
    "DELETE FROM skiff_log WHERE revision > $1 AND revision <= $2 AND deleted";
const SET_COMPACT: &str =
    "UPDATE skiff_meta SET value = $1 WHERE name = 'compact_revision' AND value < $1";
const COUNT_LOG_ROWS: &str = "SELECT COUNT(*) FROM skiff_log";

/// One write inside a batch.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: i64,
    },
    Delete {
        key: String,
        expected: Option<i64>,
    },
}

impl WriteOp {
    pub(crate) fn key(&self) -> &str {
        match self {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        }
    }
}

/// What one write in a batch came to. Failed compare-and-swaps are outcomes, not errors: they
/// leave the rest of the batch alone.
#[derive(Debug)]
pub(crate) enum Outcome {
    Written(i64),
    Deleted {
        revision: i64,
        prev: KeyValue,
    },
    AlreadyExists,
    /// The compare failed; carries the key's current value, if it has one.
    Mismatch(Option<KeyValue>),
}

/// Settings that only matter when opening.
#[derive(Debug, Clone)]
pub(crate) struct OpenOptions {
    pub busy_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_connections: u32,
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` once per backend with `$pool` bound to the concrete pool and `$dialect` to its
/// [`Dialect`]; the body is type-checked for each database separately.
macro_rules! dispatch {
    ($which:expr, $pool:ident, $dialect:ident => $body:expr) => {
        match $which {
            Pool::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $dialect: &Dialect = &SQLITE;
                $body
            }
            Pool::Postgres($pool) => {
                #[allow(unused_variables)]
                let $dialect: &Dialect = &POSTGRES;
                $body
            }
        }
    };
}

pub(crate) struct Backend {
    /// SQLite: a single connection, so writes never wait on each other's locks. Postgres: the
    /// shared pool.
    write: Pool,
    read: Pool,
    /// Held while the SQLite database is open so two processes never share one file.
    lock_file: std::sync::Mutex<Option<std::fs::File>>,
}

impl Backend {
    pub(crate) async fn open(datastore: &Datastore, options: &OpenOptions) -> Result<Self> {
        match datastore {
            Datastore::Sqlite(path) => open_sqlite(path, options).await,
            Datastore::Postgres(url) => open_postgres(url, options).await,
        }
    }

    pub(crate) fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.read {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// Head and compacted revisions, read together.
    pub(crate) async fn heads(&self) -> Result<(i64, i64)> {
        dispatch!(&self.read, pool, _d => {
            Ok(sqlx::query_as::<_, (i64, i64)>(SELECT_HEADS).fetch_one(pool).await?)
        })
    }

    /// Applies `ops` in order inside one transaction. Each successful op takes the next
    /// revision. Returns the new head revision and one outcome per op.
    ///
    /// The batch costs a constant number of statements, not one per op: read the index rows of
    /// every key involved, decide every compare-and-swap in memory ([`plan`]; the head lock
    /// keeps anyone else from writing meanwhile), then write the index changes and the log
    /// rows with multi-row statements.
    pub(crate) async fn apply(&self, ops: &[&WriteOp]) -> Result<(i64, Vec<Outcome>)> {
        let mut keys: Vec<&str> = ops.iter().map(|op| op.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        dispatch!(&self.write, pool, dialect => {
            let mut tx = pool.begin().await?;
            let base: i64 = sqlx::query_scalar(LOCK_HEAD).fetch_one(&mut *tx).await?;

            let mut stored: HashMap<String, (i64, i64)> = HashMap::with_capacity(keys.len());
            for chunk in keys.chunks(MAX_IN_LIST) {
                let padded = pad_to_power_of_two(chunk);
                let mut select = sqlx::query_as::<_, (String, i64, i64)>(AssertSqlSafe(format!(
                    "SELECT key, create_revision, mod_revision FROM skiff_kv WHERE key IN {}",
                    placeholders(1, padded.len())
                )));
                for key in &padded {
                    select = select.bind(*key);
                }
                for (key, create_revision, mod_revision) in select.fetch_all(&mut *tx).await? {
                    stored.insert(key, (create_revision, mod_revision));
                }
            }
            let plan = plan(ops, base, &stored);

            for chunk in chunks_of_powers_of_two(&plan.upserts) {
                let mut upsert = sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO skiff_kv (key, create_revision, mod_revision) VALUES {} \
                     ON CONFLICT (key) DO UPDATE SET create_revision = excluded.create_revision, \
                     mod_revision = excluded.mod_revision",
                    placeholders(chunk.len(), 3)
                )));
                for (key, create_revision, mod_revision) in chunk {
                    upsert = upsert.bind(*key).bind(*create_revision).bind(*mod_revision);
                }
                upsert.execute(&mut *tx).await?;
            }
            for chunk in plan.deletes.chunks(MAX_IN_LIST) {
                let padded = pad_to_power_of_two(chunk);
                let mut delete = sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM skiff_kv WHERE key IN {}",
                    placeholders(1, padded.len())
                )));
                for key in &padded {
                    delete = delete.bind(*key);
                }
                delete.execute(&mut *tx).await?;
            }
            let mut first = base + 1;
            for chunk in chunks_of_powers_of_two(&plan.rows) {
                let mut insert = sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO skiff_log (revision, key, create_revision, prev_revision, deleted, value) VALUES {}",
                    placeholders(chunk.len(), 6)
                )));
                for (i, row) in chunk.iter().enumerate() {
                    insert = insert
                        .bind(first + i as i64)
                        .bind(row.key)
                        .bind(row.create_revision)
                        .bind(row.prev_revision)
                        .bind(row.value.is_none())
                        .bind(row.value.map(|v| &v[..]));
                }
                insert.execute(&mut *tx).await?;
                first += chunk.len() as i64;
            }

            // Values that callers get back (a deleted value, the winner of a failed compare)
            // and that were committed before this batch.
            let wanted = plan.stored_values_needed(base);
            let mut values: HashMap<i64, Bytes> = HashMap::with_capacity(wanted.len());
            for chunk in wanted.chunks(MAX_IN_LIST) {
                let padded = pad_to_power_of_two(chunk);
                let mut select = sqlx::query_as::<_, (i64, Option<Vec<u8>>)>(AssertSqlSafe(format!(
                    "SELECT revision, value FROM skiff_log WHERE revision IN {}",
                    placeholders(1, padded.len())
                )));
                for revision in &padded {
                    select = select.bind(*revision);
                }
                for (revision, value) in select.fetch_all(&mut *tx).await? {
                    values.insert(revision, value.map(Bytes::from).unwrap_or_default());
                }
            }

            let head = base + plan.rows.len() as i64;
            if head > base {
                sqlx::query(SET_HEAD).bind(head).execute(&mut *tx).await?;
                if let Some(notify) = dialect.notify {
                    sqlx::query(notify).bind(head.to_string()).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok((head, plan.into_outcomes(base, values)))
        })
    }

    /// Up to `limit` live keys of `range` (0 = no limit) as of `at` (`None` = the head).
    pub(crate) async fn range(
        &self,
        range: &KeyRange,
        at: Option<i64>,
        limit: usize,
    ) -> Result<crate::RangePage> {
        // One extra row tells whether more follow.
        let fetch = if limit == 0 {
            i64::MAX
        } else {
            limit as i64 + 1
        };
        let (revision, rows) = dispatch!(&self.read, pool, dialect => {
            let mut tx = pool.begin_with(dialect.begin_snapshot).await?;
            let (head, compacted): (i64, i64) = sqlx::query_as(SELECT_HEADS).fetch_one(&mut *tx).await?;
            let at = check_readable(at, head, compacted)?;
            let rows: Vec<(String, i64, i64, Option<Vec<u8>>)> = if at == head {
                sqlx::query_as(RANGE_HEAD)
                    .bind(range.start.as_str())
                    .bind(range.end_for_sql())
                    .bind(fetch)
                    .fetch_all(&mut *tx)
                    .await?
            } else {
                sqlx::query_as(RANGE_PAST)
                    .bind(range.start.as_str())
                    .bind(range.end_for_sql())
                    .bind(at)
                    .bind(fetch)
                    .fetch_all(&mut *tx)
                    .await?
            };
            tx.commit().await?;
            (at, rows)
        });
        let more = limit != 0 && rows.len() > limit;
        let kvs = rows
            .into_iter()
            .take(if limit == 0 { usize::MAX } else { limit })
            .map(|(key, create_revision, mod_revision, value)| KeyValue {
                key,
                create_revision,
                mod_revision,
                value: value.map(Bytes::from).unwrap_or_default(),
            })
            .collect();
        Ok(crate::RangePage {
            revision,
            kvs,
            more,
        })
    }

    /// Live keys in `range` at the head, with the head revision.
    pub(crate) async fn count(&self, range: &KeyRange) -> Result<(i64, u64)> {
        dispatch!(&self.read, pool, dialect => {
            let mut tx = pool.begin_with(dialect.begin_snapshot).await?;
            let (head, _): (i64, i64) = sqlx::query_as(SELECT_HEADS).fetch_one(&mut *tx).await?;
            let count: i64 = sqlx::query_scalar(COUNT_HEAD)
                .bind(range.start.as_str())
                .bind(range.end_for_sql())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((head, count as u64))
        })
    }

    /// Events in `range` with revisions in `(after, upto]`, oldest first, at most `limit`.
    /// Fails with `Compacted` if some of that history is gone.
    pub(crate) async fn events(
        &self,
        range: &KeyRange,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let rows = dispatch!(&self.read, pool, dialect => {
            let mut tx = pool.begin_with(dialect.begin_snapshot).await?;
            let (_, compacted): (i64, i64) = sqlx::query_as(SELECT_HEADS).fetch_one(&mut *tx).await?;
            if after < compacted {
                return Err(Error::Compacted { requested: after + 1, compacted });
            }
            let rows = sqlx::query(EVENTS)
                .bind(after)
                .bind(upto)
                .bind(range.start.as_str())
                .bind(range.end_for_sql())
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| -> Result<EventRow, sqlx::Error> {
                    Ok(EventRow {
                        revision: row.try_get(0)?,
                        key: row.try_get(1)?,
                        create_revision: row.try_get(2)?,
                        deleted: row.try_get(3)?,
                        value: row.try_get(4)?,
                        prev_create_revision: row.try_get(5)?,
                        prev_revision: row.try_get(6)?,
                        prev_value: row.try_get(7)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            rows
        });
        Ok(rows.into_iter().map(EventRow::into_event).collect())
    }

    /// Compacts the window `(after, upto]`: afterwards no read below `upto` is served.
    pub(crate) async fn compact_step(&self, after: i64, upto: i64) -> Result<()> {
        dispatch!(&self.write, pool, dialect => {
            let mut tx = pool.begin().await?;
            sqlx::query(COMPACT_SUPERSEDED).bind(after).bind(upto).execute(&mut *tx).await?;
            sqlx::query(COMPACT_TOMBSTONES).bind(after).bind(upto).execute(&mut *tx).await?;
            sqlx::query(SET_COMPACT).bind(upto).execute(&mut *tx).await?;
            tx.commit().await?;
            if let Some(reclaim) = dialect.after_compact {
                sqlx::query(reclaim).execute(pool).await?;
            }
            Ok(())
        })
    }

    /// Rows in the log (live values, history and tombstones), for tests and benchmarks.
    pub(crate) async fn log_rows(&self) -> Result<i64> {
        dispatch!(&self.read, pool, _d => {
            Ok(sqlx::query_scalar(COUNT_LOG_ROWS).fetch_one(pool).await?)
        })
    }

    pub(crate) async fn close(&self) {
        dispatch!(&self.write, pool, _d => pool.close().await);
        dispatch!(&self.read, pool, _d => pool.close().await);
        // Only now may another process open the file.
        drop(
            self.lock_file
                .lock()
                .expect("lock file mutex poisoned")
                .take(),
        );
    }
}

/// Longest `IN (...)` list in one statement (well below both databases' parameter limits).
const MAX_IN_LIST: usize = 256;

/// A log row being written in the current batch; its revision is implied by its position.
#[derive(Debug)]
struct LogRow<'a> {
    key: &'a str,
    create_revision: i64,
    prev_revision: i64,
    /// `None` for a tombstone.
    value: Option<&'a Bytes>,
}

/// An index entry: (key, create_revision, mod_revision).
type Entry<'a> = (&'a str, i64, i64);

/// The outcome of one op before the values it reports have been looked up.
#[derive(Debug, PartialEq, Eq)]
enum Planned<'a> {
    Written(i64),
    AlreadyExists,
    Mismatch(Option<Entry<'a>>),
    Deleted { revision: i64, prev: Entry<'a> },
}

/// A batch decided in memory: outcomes, the log rows to append, and the final index changes.
#[derive(Debug)]
struct Plan<'a> {
    outcomes: Vec<Planned<'a>>,
    rows: Vec<LogRow<'a>>,
    upserts: Vec<Entry<'a>>,
    deletes: Vec<&'a str>,
}

/// Decides every op of a batch against the index rows `stored` before it, in order, each op
/// seeing the effect of the ones before it.
fn plan<'a>(ops: &[&'a WriteOp], base: i64, stored: &HashMap<String, (i64, i64)>) -> Plan<'a> {
    // key -> its index entry as of the op being decided (None: no live value).
    let mut state: HashMap<&'a str, Option<(i64, i64)>> = HashMap::new();
    let mut rows: Vec<LogRow<'a>> = Vec::with_capacity(ops.len());
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        let key = op.key();
        let current = match state.get(key) {
            Some(entry) => *entry,
            None => stored.get(key).copied(),
        };
        let next = base + rows.len() as i64 + 1;
        let outcome = match (op, current) {
            (WriteOp::Create { .. }, Some(_)) => Planned::AlreadyExists,
            (WriteOp::Create { value, .. }, None) => {
                state.insert(key, Some((next, next)));
                rows.push(LogRow {
                    key,
                    create_revision: next,
                    prev_revision: 0,
                    value: Some(value),
                });
                Planned::Written(next)
            }
            (
                WriteOp::Update {
                    value, expected, ..
                },
                Some((create, modified)),
            ) if modified == *expected => {
                state.insert(key, Some((create, next)));
                rows.push(LogRow {
                    key,
                    create_revision: create,
                    prev_revision: modified,
                    value: Some(value),
                });
                Planned::Written(next)
            }
            (WriteOp::Delete { expected, .. }, Some((create, modified)))
                if expected.is_none_or(|e| e == modified) =>
            {
                state.insert(key, None);
                rows.push(LogRow {
                    key,
                    create_revision: create,
                    prev_revision: modified,
                    value: None,
                });
                Planned::Deleted {
                    revision: next,
                    prev: (key, create, modified),
                }
            }
            (_, current) => Planned::Mismatch(current.map(|(c, m)| (key, c, m))),
        };
        outcomes.push(outcome);
    }
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for (key, now) in state {
        match (now, stored.contains_key(key)) {
            (Some((create, modified)), _) => upserts.push((key, create, modified)),
            (None, true) => deletes.push(key),
            (None, false) => {}
        }
    }
    upserts.sort_unstable();
    deletes.sort_unstable();
    Plan {
        outcomes,
        rows,
        upserts,
        deletes,
    }
}

impl<'a> Plan<'a> {
    /// Revisions committed before this batch whose values the outcomes report.
    fn stored_values_needed(&self, base: i64) -> Vec<i64> {
        let mut revisions: Vec<i64> = self
            .outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Planned::Mismatch(Some((_, _, modified)))
                | Planned::Deleted {
                    prev: (_, _, modified),
                    ..
                } => Some(*modified),
                _ => None,
            })
            .filter(|&modified| modified <= base)
            .collect();
        revisions.sort_unstable();
        revisions.dedup();
        revisions
    }

    /// Attaches values: from `stored` for older revisions, from this batch's rows otherwise.
    fn into_outcomes(self, base: i64, stored: HashMap<i64, Bytes>) -> Vec<Outcome> {
        let rows = &self.rows;
        let value_of = |(key, create_revision, mod_revision): Entry<'_>| KeyValue {
            key: key.to_owned(),
            create_revision,
            mod_revision,
            value: if mod_revision > base {
                rows.get((mod_revision - base - 1) as usize)
                    .and_then(|row| row.value.cloned())
                    .unwrap_or_default()
            } else {
                // Several outcomes may report the same value: share it, do not take it.
                stored.get(&mod_revision).cloned().unwrap_or_default()
            },
        };
        self.outcomes
            .into_iter()
            .map(|planned| match planned {
                Planned::Written(revision) => Outcome::Written(revision),
                Planned::AlreadyExists => Outcome::AlreadyExists,
                Planned::Mismatch(current) => Outcome::Mismatch(current.map(value_of)),
                Planned::Deleted { revision, prev } => Outcome::Deleted {
                    revision,
                    prev: value_of(prev),
                },
            })
            .collect()
    }
}

/// Pads a list with copies of its last item up to a power of two, so `IN (...)` statements
/// come in a few shapes that stay in the prepared-statement cache. Repeats change nothing.
fn pad_to_power_of_two<T: Copy>(items: &[T]) -> Vec<T> {
    let mut padded = items.to_vec();
    if let Some(&last) = items.last() {
        padded.resize(items.len().next_power_of_two(), last);
    }
    padded
}

/// `rows` tuples of `columns` numbered placeholders: `($1,$2),($3,$4)`.
fn placeholders(rows: usize, columns: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=columns)
                .map(|c| format!("${}", row * columns + c))
                .collect();
            format!("({})", params.join(","))
        })
        .collect();
    tuples.join(",")
}

/// Splits rows into chunks of 64, 32, ... 1 so that a handful of multi-row INSERT statements
/// (each prepared once and cached) cover any batch size.
fn chunks_of_powers_of_two<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= 64 {
            64
        } else {
            1 << (usize::BITS - 1 - rows.len().leading_zeros())
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

fn check_readable(at: Option<i64>, head: i64, compacted: i64) -> Result<i64> {
    match at {
        None => Ok(head),
        Some(rev) if rev > head => Err(Error::FutureRevision {
            requested: rev,
            current: head,
        }),
        Some(rev) if rev < compacted => Err(Error::Compacted {
            requested: rev,
            compacted,
        }),
        Some(rev) => Ok(rev),
    }
}

struct EventRow {
    revision: i64,
    key: String,
    create_revision: i64,
    deleted: bool,
    value: Option<Vec<u8>>,
    prev_create_revision: Option<i64>,
    prev_revision: Option<i64>,
    prev_value: Option<Vec<u8>>,
}

impl EventRow {
    fn into_event(self) -> Event {
        let prev = match (self.prev_revision, self.prev_create_revision) {
            (Some(mod_revision), Some(create_revision)) => Some(KeyValue {
                key: self.key.clone(),
                create_revision,
                mod_revision,
                value: self.prev_value.map(Bytes::from).unwrap_or_default(),
            }),
            _ => None,
        };
        let (kind, create_revision) = if self.deleted {
            (EventKind::Delete, 0)
        } else {
            (EventKind::Put, self.create_revision)
        };
        Event {
            kind,
            revision: self.revision,
            kv: KeyValue {
                key: self.key,
                create_revision,
                mod_revision: self.revision,
                value: self.value.map(Bytes::from).unwrap_or_default(),
            },
            prev,
        }
    }
}

async fn open_sqlite(path: &Path, options: &OpenOptions) -> Result<Backend> {
    let target = path.display().to_string();
    let open_error = |reason: String| Error::Open {
        target: target.clone(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| open_error(format!("creating directory {}: {e}", dir.display())))?;
    }
    let lock_file = lock_sqlite(path).map_err(open_error)?;
    create_private_file(path).map_err(|e| open_error(e.to_string()))?;

    let connect = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(options.busy_timeout)
        // Keep the WAL from staying large after a burst of writes.
        .pragma("journal_size_limit", "67108864");
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect.clone())
        .await
        .map_err(|e| open_error(describe_sqlx(&e)))?;

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&write)
    .await
    .map_err(|e| open_error(describe_sqlx(&e)))?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "skiff_meta") {
        return Err(open_error(format!(
            "file holds another application's tables ({}), not a skiff store",
            tables.join(", ")
        )));
    }
    migrate(&Pool::Sqlite(write.clone()))
        .await
        .map_err(open_error)?;

    let read = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| open_error(describe_sqlx(&e)))?;
    Ok(Backend {
        write: Pool::Sqlite(write),
        read: Pool::Sqlite(read),
        lock_file: std::sync::Mutex::new(Some(lock_file)),
    })
}

/// Takes an exclusive lock on `<db>.lock` for as long as the returned file stays open.
fn lock_sqlite(path: &Path) -> Result<std::fs::File, String> {
    let lock_path = path.with_extension(match path.extension() {
        Some(ext) => format!("{}.lock", ext.to_string_lossy()),
        None => "lock".to_owned(),
    });
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("opening lock file {}: {e}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "database is in use by another process (lock file {} is held)",
            lock_path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("locking {}: {e}", lock_path.display()))
        }
    }
}

/// The database holds secrets: create it readable by its owner only.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("creating {}: {e}", path.display()),
        )),
    }
}

async fn open_postgres(url: &str, options: &OpenOptions) -> Result<Backend> {
    let open_error = |reason: String| Error::Open {
        target: redact(url),
        reason,
    };
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(2))
        .acquire_timeout(options.connect_timeout)
        .connect(url)
        .await
        .map_err(|e| open_error(describe_sqlx(&e)))?;
    let backend = Backend {
        write: Pool::Postgres(pool.clone()),
        read: Pool::Postgres(pool),
        lock_file: std::sync::Mutex::new(None),
    };
    migrate(&backend.write).await.map_err(open_error)?;
    Ok(backend)
}

/// Creates the tables if missing and checks the schema version, in one transaction.
async fn migrate(pool: &Pool) -> Result<(), String> {
    let version: i64 = dispatch!(pool, pool, dialect => {
        async {
            let mut tx = pool.begin().await?;
            if let Some(lock) = dialect.migration_lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            for statement in dialect.schema.iter().copied().chain([SEED_META]) {
                sqlx::query(statement).execute(&mut *tx).await?;
            }
            let version = sqlx::query_scalar(
                "SELECT value FROM skiff_meta WHERE name = 'schema_version'",
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<i64, sqlx::Error>(version)
        }
        .await
        .map_err(|e| describe_sqlx(&e))?
    });
    if version > SCHEMA_VERSION {
        return Err(format!(
            "schema version {version} was written by a newer skiff (this one knows {SCHEMA_VERSION})"
        ));
    }
    Ok(())
}

/// sqlx's messages for database errors are already clear; strip the wrapper noise.
fn describe_sqlx(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::PoolTimedOut => "timed out connecting".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_with_few_shapes() {
        let rows: Vec<u32> = (0..203).collect();
        let sizes: Vec<usize> = chunks_of_powers_of_two(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![64, 64, 64, 8, 2, 1]);
        assert_eq!(chunks_of_powers_of_two::<u32>(&[]).count(), 0);
    }

    fn create(key: &str) -> WriteOp {
        WriteOp::Create {
            key: key.into(),
            value: Bytes::from_static(b"v"),
        }
    }
    fn update(key: &str, expected: i64) -> WriteOp {
        WriteOp::Update {
            key: key.into(),
            value: Bytes::from_static(b"u"),
            expected,
        }
    }
    fn delete(key: &str, expected: Option<i64>) -> WriteOp {
        WriteOp::Delete {
            key: key.into(),
            expected,
        }
    }

    /// Runs `plan` over `ops` with `/old` stored at (create 3, mod 5) and head 10.
    fn check(ops: &[WriteOp], outcomes: &[Planned<'_>], upserts: &[Entry<'_>], deletes: &[&str]) {
        let stored = HashMap::from([("/old".to_owned(), (3, 5))]);
        let refs: Vec<&WriteOp> = ops.iter().collect();
        let plan = plan(&refs, 10, &stored);
        assert_eq!(plan.outcomes, outcomes);
        assert_eq!(plan.upserts, upserts);
        assert_eq!(plan.deletes, deletes);
        let successes = outcomes
            .iter()
            .filter(|o| matches!(o, Planned::Written(_) | Planned::Deleted { .. }))
            .count();
        assert_eq!(plan.rows.len(), successes, "one log row per success");
    }

    #[test]
    fn ops_in_one_batch_see_each_other() {
        check(
            &[
                create("/a"),
                update("/a", 11),
                delete("/a", Some(12)),
                create("/a"),
            ],
            &[
                Planned::Written(11),
                Planned::Written(12),
                Planned::Deleted {
                    revision: 13,
                    prev: ("/a", 11, 12),
                },
                Planned::Written(14),
            ],
            &[("/a", 14, 14)],
            &[],
        );
    }

    #[test]
    fn failed_compares_take_no_revision() {
        check(
            &[
                create("/old"),
                update("/old", 4),
                update("/missing", 1),
                delete("/old", Some(9)),
                update("/old", 5),
            ],
            &[
                Planned::AlreadyExists,
                Planned::Mismatch(Some(("/old", 3, 5))),
                Planned::Mismatch(None),
                Planned::Mismatch(Some(("/old", 3, 5))),
                Planned::Written(11),
            ],
            &[("/old", 3, 11)],
            &[],
        );
    }

    #[test]
    fn deleting_a_stored_key_removes_its_index_row() {
        check(
            &[delete("/old", None), create("/b"), delete("/b", None)],
            &[
                Planned::Deleted {
                    revision: 11,
                    prev: ("/old", 3, 5),
                },
                Planned::Written(12),
                Planned::Deleted {
                    revision: 13,
                    prev: ("/b", 12, 12),
                },
            ],
            &[],
            &["/old"],
        );
    }

    #[test]
    fn placeholders_number_every_parameter() {
        assert_eq!(placeholders(2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(placeholders(1, 3), "($1,$2,$3)");
        assert_eq!(pad_to_power_of_two(&[1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(pad_to_power_of_two::<i32>(&[]), Vec::<i32>::new());
    }

    #[test]
    fn reads_outside_history_are_refused() {
        assert_eq!(check_readable(None, 10, 3).unwrap(), 10);
        assert_eq!(check_readable(Some(3), 10, 3).unwrap(), 3);
        assert!(matches!(
            check_readable(Some(2), 10, 3),
            Err(Error::Compacted { .. })
        ));
        assert!(matches!(
            check_readable(Some(11), 10, 3),
            Err(Error::FutureRevision { .. })
        ));
    }
}

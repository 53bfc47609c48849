//! `skiff bench store`: the store's write throughput, range speed and watch latency on each
//! backend, with the ceiling (raw inserts of the same rows at the same durability) measured in
//! the same run so results are comparable across machines as ratios.

#![allow(clippy::print_stdout, reason = "a benchmark's report is its output")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use skiff_store::{Config, Datastore, KeyRange, ReadAt, Store};
use sqlx::Connection;

#[derive(clap::Args)]
pub struct Args {
    /// Also benchmark Postgres: a URL whose user may create databases. A fresh database is
    /// created for the run and dropped afterwards.
    #[arg(long, env = "SKIFF_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Directory for the SQLite files (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Creates in the concurrent-writers phase.
    #[arg(long, default_value_t = 20_000)]
    writes: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Watchers in the watch-latency phase.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
}

const VALUE_SIZE: usize = 1024;
const RANGE_KEYS: usize = 10_000;
const RAW_BATCH: usize = 64;

pub async fn run(args: Args) -> Result<()> {
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    println!("# skiff bench store");
    println!(
        "{} writers, {} creates of {VALUE_SIZE} B values, range of {RANGE_KEYS} keys, {} watchers",
        args.writers, args.writes, args.watchers
    );
    let sqlite = Target::Sqlite(dir.join("bench-store.db"), dir.join("bench-raw.db"));
    report("sqlite", &measure(&sqlite, &args).await?);
    if let Some(url) = &args.postgres {
        let (store_url, raw_url, admin) = fresh_postgres_databases(url).await?;
        let target = Target::Postgres(store_url, raw_url);
        let result = measure(&target, &args).await;
        drop_postgres_databases(&admin, &target).await;
        report("postgres", &result?);
    }
    let (rss, peak) = super::rss_mib();
    println!("process RSS now {rss:.1} MiB, peak {peak:.1} MiB");
    Ok(())
}

enum Target {
    /// Store file and raw-insert file.
    Sqlite(PathBuf, PathBuf),
    /// Store database URL and raw-insert database URL.
    Postgres(String, String),
}

struct Figures {
    sequential_per_sec: f64,
    concurrent_per_sec: f64,
    /// CPU cores busy (user + system) during the concurrent phase.
    concurrent_cores: f64,
    writes_per_commit: f64,
    /// Raw inserts, one statement per row.
    raw_per_row_per_sec: f64,
    /// Raw inserts, one multi-row statement per table and transaction.
    raw_per_sec: f64,
    range_ms: f64,
    watch_p50: Duration,
    watch_p99: Duration,
    watch_max: Duration,
    watch_events: u64,
}

fn report(backend: &str, f: &Figures) {
    println!();
    println!("## {backend}");
    println!("| measure | value |");
    println!("| --- | --- |");
    println!(
        "| sequential creates (1 writer) | {:.0}/s |",
        f.sequential_per_sec
    );
    println!(
        "| concurrent creates (group commit) | {:.0}/s ({:.1} writes per commit, {:.2} cores busy) |",
        f.concurrent_per_sec, f.writes_per_commit, f.concurrent_cores
    );
    for (label, ceiling) in [
        ("one INSERT per row", f.raw_per_row_per_sec),
        ("multi-row INSERTs", f.raw_per_sec),
    ] {
        println!(
            "| raw ceiling: same rows, {RAW_BATCH} per transaction, same durability, {label} | {ceiling:.0}/s (store reaches {:.0}%) |",
            100.0 * f.concurrent_per_sec / ceiling
        );
    }
    println!(
        "| range of {RANGE_KEYS} keys | {:.1} ms ({:.0} keys/s) |",
        f.range_ms,
        RANGE_KEYS as f64 / (f.range_ms / 1000.0)
    );
    println!(
        "| watch delivery p50 / p99 / max ({} deliveries) | {:.2} / {:.2} / {:.2} ms |",
        f.watch_events,
        ms(f.watch_p50),
        ms(f.watch_p99),
        ms(f.watch_max)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(target: &Target, args: &Args) -> Result<Figures> {
    let datastore = match target {
        Target::Sqlite(path, _) => Datastore::Sqlite(path.clone()),
        Target::Postgres(url, _) => Datastore::Postgres(url.clone()),
    };
    let store = Store::open(
        &datastore,
        Config {
            retention: None,
            ..Config::default()
        },
    )
    .await
    .with_context(|| format!("opening {}", datastore.describe()))?;

    let value = vec![b'v'; VALUE_SIZE];
    let sequential = 2_000;
    let started = Instant::now();
    for i in 0..sequential {
        store
            .create(&format!("/bench/seq/{i:08}"), value.clone())
            .await?;
    }
    let sequential_per_sec = sequential as f64 / started.elapsed().as_secs_f64();

    let before = store.stats().await?;
    let (cpu_before, wall_before) = (super::cpu_time(), Instant::now());
    let concurrent_per_sec =
        concurrent_creates(&store, "/bench/conc/", args.writes, args.writers).await?;
    let concurrent_cores =
        (super::cpu_time() - cpu_before).as_secs_f64() / wall_before.elapsed().as_secs_f64();
    let after = store.stats().await?;
    let writes_per_commit =
        (after.writes - before.writes) as f64 / (after.commits - before.commits).max(1) as f64;
    let raw_per_row_per_sec = raw_ceiling(target, args.writes, args.writers, 1).await?;
    let raw_per_sec = raw_ceiling(target, args.writes, args.writers, RAW_BATCH).await?;

    // The concurrent phase wrote `writes` keys; a range reads 10,000 of them.
    if args.writes < RANGE_KEYS {
        concurrent_creates(&store, "/bench/range/", RANGE_KEYS, args.writers).await?;
    }
    let prefix = if args.writes < RANGE_KEYS {
        "/bench/range/"
    } else {
        "/bench/conc/"
    };
    let range = KeyRange::prefix(prefix)?;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let page = store.range(&range, ReadAt::Latest, RANGE_KEYS).await?;
        anyhow::ensure!(
            page.kvs.len() == RANGE_KEYS,
            "range returned {} keys",
            page.kvs.len()
        );
        best = best.min(ms(started.elapsed()));
    }

    let latency = watch_latency(&store, args.watchers, 300).await?;
    store.close().await;
    Ok(Figures {
        sequential_per_sec,
        concurrent_per_sec,
        concurrent_cores,
        writes_per_commit,
        raw_per_row_per_sec,
        raw_per_sec,
        range_ms: best,
        watch_p50: Duration::from_micros(latency.value_at_quantile(0.5)),
        watch_p99: Duration::from_micros(latency.value_at_quantile(0.99)),
        watch_max: Duration::from_micros(latency.max()),
        watch_events: latency.len(),
    })
}

async fn concurrent_creates(
    store: &Store,
    prefix: &str,
    total: usize,
    writers: usize,
) -> Result<f64> {
    concurrent_creates_of(store, prefix, total, writers, VALUE_SIZE).await
}

/// `total` creates of `value_size`-byte values under `prefix` by `writers` concurrent writers,
/// each owning a stretch of keys; returns creates per second.
pub(super) async fn concurrent_creates_of(
    store: &Store,
    prefix: &str,
    total: usize,
    writers: usize,
    value_size: usize,
) -> Result<f64> {
    let value = bytes::Bytes::from(vec![b'v'; value_size.max(1)]);
    let per_writer = total.div_ceil(writers);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                for i in (w * per_writer)..((w + 1) * per_writer).min(total) {
                    store
                        .create(&format!("{prefix}{i:08}"), value.clone())
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Deliveries to `watchers` watchers of `events` writes, timed from just before each write.
async fn watch_latency(store: &Store, watchers: usize, events: usize) -> Result<Histogram<u64>> {
    let base = Arc::new(Instant::now());
    let range = KeyRange::prefix("/bench/watch/")?;
    let tasks: Vec<_> = (0..watchers)
        .map(|_| {
            let mut watch = store.watch(range.clone(), None);
            let base = base.clone();
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3)?;
                for _ in 0..events {
                    let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
                        .await
                        .context("watch event within 30 s")?
                        .context("watch ended")??;
                    let sent = u64::from_le_bytes(event.kv.value[..8].try_into()?);
                    let now = base.elapsed().as_nanos() as u64;
                    histogram.record(now.saturating_sub(sent) / 1_000)?;
                }
                anyhow::Ok(histogram)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..events {
        let sent = base.elapsed().as_nanos() as u64;
        store
            .create(&format!("/bench/watch/{i:06}"), sent.to_le_bytes().to_vec())
            .await?;
        // Paced writes: this measures delivery latency, not queueing under saturation.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut all = Histogram::<u64>::new(3)?;
    for task in tasks {
        all.add(task.await??)?;
    }
    Ok(all)
}

/// Expands the raw-insert loop for one concrete connection type. Each transaction holds
/// `RAW_BATCH` rows; `$per_statement` rows go into each INSERT (1, or the whole batch: the
/// fewest round trips sqlx allows).
macro_rules! raw_inserts {
    ($conn:ident, $total:expr, $writers:expr, $per_statement:expr, $value:expr, $int:literal, $blob:literal) => {{
        for ddl in [
            "DROP TABLE IF EXISTS raw_log",
            "DROP TABLE IF EXISTS raw_kv",
            concat!("CREATE TABLE raw_log (revision ", $int, " PRIMARY KEY, key TEXT NOT NULL, create_revision ", $int, " NOT NULL, prev_revision ", $int, " NOT NULL, deleted BOOLEAN NOT NULL, value ", $blob, ")"),
            "CREATE INDEX raw_log_key ON raw_log (key, revision)",
            concat!("CREATE TABLE raw_kv (key TEXT PRIMARY KEY, create_revision ", $int, " NOT NULL, mod_revision ", $int, " NOT NULL)"),
        ] {
            sqlx::query(ddl).execute(&mut $conn).await?;
        }
        let started = Instant::now();
        let mut revision: i64 = 0;
        while (revision as usize) < $total {
            let rows = RAW_BATCH.min($total - revision as usize);
            let keys: Vec<(i64, String)> = (1..=rows as i64)
                .map(|i| (revision + i, raw_key(revision + i, $total, $writers)))
                .collect();
            let mut tx = $conn.begin().await?;
            for chunk in keys.chunks($per_statement) {
                let mut kv = sqlx::query(sqlx::AssertSqlSafe(values_sql(
                    "INSERT INTO raw_kv (key, create_revision, mod_revision) VALUES ",
                    chunk.len(),
                    2,
                )));
                let mut log = sqlx::query(sqlx::AssertSqlSafe(values_sql(
                    "INSERT INTO raw_log (revision, key, create_revision, prev_revision, deleted, value) VALUES ",
                    chunk.len(),
                    6,
                )));
                for (rev, key) in chunk {
                    kv = kv.bind(key.as_str()).bind(*rev);
                    log = log
                        .bind(*rev)
                        .bind(key.as_str())
                        .bind(*rev)
                        .bind(0_i64)
                        .bind(false)
                        .bind(&$value[..]);
                }
                kv.execute(&mut *tx).await?;
                log.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            revision += rows as i64;
        }
        Ok($total as f64 / started.elapsed().as_secs_f64())
    }};
}

/// The key the concurrent phase writes as its `revision`-th create: writers own consecutive
/// stretches of keys and take turns, so consecutive revisions land in `writers` places of the
/// key space (which is what makes index pages scatter; sequential keys would flatter the
/// ceiling).
fn raw_key(revision: i64, total: usize, writers: usize) -> String {
    let index = (revision - 1) as usize;
    let per_writer = total.div_ceil(writers);
    format!(
        "/bench/raw/{:08}",
        (index % writers) * per_writer + index / writers
    )
}

/// `prefix` followed by `rows` tuples of `columns` numbered placeholders; the kv tuples are
/// `(key, rev, rev)`, so for two columns the second placeholder repeats.
fn values_sql(prefix: &str, rows: usize, columns: usize) -> String {
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let p: Vec<String> = (1..=columns)
                .map(|c| format!("${}", row * columns + c))
                .collect();
            if columns == 2 {
                format!("({},{},{})", p[0], p[1], p[1])
            } else {
                format!("({})", p.join(","))
            }
        })
        .collect();
    format!("{prefix}{}", tuples.join(","))
}

/// The ceiling: the same log and index rows the store writes for a create, inserted directly
/// in transactions of `RAW_BATCH` with the store's durability settings, `per_statement` rows
/// per INSERT.
async fn raw_ceiling(
    target: &Target,
    total: usize,
    writers: usize,
    per_statement: usize,
) -> Result<f64> {
    let value = vec![b'v'; VALUE_SIZE];
    match target {
        Target::Sqlite(_, path) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
            let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
            raw_inserts!(
                conn,
                total,
                writers,
                per_statement,
                value,
                "INTEGER",
                "BLOB"
            )
        }
        Target::Postgres(_, url) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            raw_inserts!(
                conn,
                total,
                writers,
                per_statement,
                value,
                "BIGINT",
                "BYTEA"
            )
        }
    }
}

async fn fresh_postgres_databases(url: &str) -> Result<(String, String, String)> {
    let mut admin = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to the --postgres URL")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let base = url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .context("the --postgres URL names no database")?;
    let mut urls = Vec::new();
    for role in ["store", "raw"] {
        let name = format!("skiff_bench_{role}_{}_{stamp}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        urls.push(format!("{base}/{name}"));
    }
    Ok((urls[0].clone(), urls[1].clone(), url.to_owned()))
}

async fn drop_postgres_databases(admin: &str, target: &Target) {
    let Target::Postgres(store, raw) = target else {
        return;
    };
    let Ok(mut conn) = sqlx::PgConnection::connect(admin).await else {
        return;
    };
    for url in [store, raw] {
        if let Some((_, name)) = url.rsplit_once('/') {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await
            {
                tracing::warn!(database = name, error = %err, "could not drop benchmark database");
            }
        }
    }
}

//! Faults: a process killed mid-stream, files that are not skiff stores, a locked database,
//! an unreachable server. Nothing acknowledged is lost; nothing foreign is overwritten.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Fixture;
use skiff_store::{Config, Datastore, Error, KeyRange, ReadAt, Store};

on_both_backends!(acknowledged_writes_survive_kill_9);

const CHILD_ENV: &str = "SKIFF_STORE_TEST_CHILD_DATASTORE";

/// Runs only as the child of `acknowledged_writes_survive_kill_9`: writes from 16 tasks and
/// prints `ack <key> <revision>` after each write the store confirmed.
#[test]
fn durability_child_writer() {
    let Ok(datastore) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Store::open(
            &Datastore::parse(&datastore).unwrap(),
            common::quiet_config(),
        )
        .await
        .unwrap();
        let (acks, mut printed) = tokio::sync::mpsc::unbounded_channel::<String>();
        for writer in 0..16 {
            let store = store.clone();
            let acks = acks.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/durable/{writer}/{i}");
                    let rev = store.create(&key, vec![b'x'; 512]).await.unwrap();
                    if acks.send(format!("ack {key} {rev}")).is_err() {
                        return;
                    }
                }
            });
        }
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        while let Some(line) = printed.recv().await {
            writeln!(out, "{line}").unwrap();
            out.flush().unwrap();
        }
    });
}

async fn acknowledged_writes_survive_kill_9(fx: Fixture) {
    let datastore = match &fx.datastore {
        Datastore::Sqlite(path) => path.display().to_string(),
        Datastore::Postgres(url) => url.clone(),
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &datastore)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            let (key, rev) = rest.rsplit_once(' ').unwrap();
            acked.push((key.to_owned(), rev.parse::<i64>().unwrap()));
            if acked.len() == 3000 {
                // SIGKILL: no destructors, no flush, no clean close.
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(
        acked.len(),
        3000,
        "child acknowledged writes before it died"
    );

    let store = fx.open().await;
    for (key, rev) in &acked {
        let (_, kv) = store.get(key, ReadAt::Latest).await.unwrap();
        let kv = kv.unwrap_or_else(|| panic!("acknowledged {key} at {rev} was lost"));
        assert_eq!(kv.mod_revision, *rev);
    }
    // Writes in flight at the kill may or may not have landed, but revisions stay gap-free.
    let page = store
        .range(&KeyRange::prefix("/durable/").unwrap(), ReadAt::Latest, 0)
        .await
        .unwrap();
    let mut revisions: Vec<i64> = page.kvs.iter().map(|kv| kv.mod_revision).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=page.revision).collect::<Vec<_>>());
    store.close().await;
}

fn open_error(result: Result<Store, Error>) -> (String, String) {
    match result {
        Err(Error::Open { target, reason }) => (target, reason),
        Err(other) => panic!("expected an open error, got {other}"),
        Ok(_) => panic!("expected an open error, the store opened"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let (target, reason) =
        open_error(Store::open(&Datastore::Sqlite(path.clone()), common::quiet_config()).await);
    assert_eq!(target, path.display().to_string());
    assert!(reason.contains("not a database"), "{reason}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "file untouched");
}

#[tokio::test]
async fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let status = Command::new("sqlite3")
        .arg(&path)
        .arg("CREATE TABLE invoices (id INTEGER PRIMARY KEY); INSERT INTO invoices VALUES (1);")
        .status();
    if status.is_err() {
        // Without the sqlite3 CLI, make the foreign table through sqlx instead.
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let (_, reason) =
        open_error(Store::open(&Datastore::Sqlite(path.clone()), common::quiet_config()).await);
    assert!(reason.contains("invoices"), "{reason}");
}

#[tokio::test]
async fn a_database_in_use_by_another_store_is_refused() {
    let fx = Fixture::sqlite().await;
    let first = fx.open().await;
    let (target, reason) = open_error(Store::open(&fx.datastore, common::quiet_config()).await);
    assert!(target.ends_with("state.db"));
    assert!(reason.contains("in use by another process"), "{reason}");
    first.close().await;
    // Once closed, the file is free again.
    fx.open().await.close().await;
}

#[tokio::test]
async fn a_database_locked_by_another_program_times_out_with_its_path() {
    let fx = Fixture::sqlite().await;
    fx.open().await.close().await;
    let Datastore::Sqlite(path) = &fx.datastore else {
        unreachable!()
    };
    // Another program holds SQLite's write lock (not skiff's lock file).
    use sqlx::Connection;
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    let config = Config {
        busy_timeout: Duration::from_millis(300),
        ..common::quiet_config()
    };
    let (target, reason) = open_error(Store::open(&fx.datastore, config).await);
    assert_eq!(target, path.display().to_string());
    assert!(reason.contains("locked"), "{reason}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_postgres_names_the_url_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://skiff:hunter2@127.0.0.1:1/skiff";
    let config = Config {
        connect_timeout: Duration::from_secs(2),
        ..common::quiet_config()
    };
    let err = Store::open(&Datastore::parse(url).unwrap(), config)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("postgres://skiff:***@127.0.0.1:1/skiff"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

//! Test fixtures: a fresh datastore per test on either backend.
//!
//! Postgres tests need `SKIFF_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:55432/postgres`); each test gets its own new database.
//! Without it they are skipped, unless `SKIFF_REQUIRE_POSTGRES=1` (set by CI) makes that a
//! failure.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use skiff_store::{Config, Datastore, Store};
use sqlx::Connection;

pub struct Fixture {
    pub datastore: Datastore,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        Fixture {
            datastore: Datastore::Sqlite(dir.path().join("state.db")),
            dir,
        }
    }

    pub async fn postgres() -> Option<Fixture> {
        let admin = match std::env::var("SKIFF_TEST_POSTGRES_URL") {
            Ok(url) => url,
            Err(_) if std::env::var("SKIFF_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
                panic!("SKIFF_REQUIRE_POSTGRES=1 but SKIFF_TEST_POSTGRES_URL is not set")
            }
            Err(_) => {
                eprintln!("skipped: SKIFF_TEST_POSTGRES_URL is not set");
                return None;
            }
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "skiff_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut admin_conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to SKIFF_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin_conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').expect("URL has a database").0;
        Some(Fixture {
            datastore: Datastore::Postgres(format!("{base}/{name}")),
            dir: tempfile::tempdir().expect("temp dir"),
        })
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self.datastore, Datastore::Sqlite(_))
    }

    pub async fn open(&self) -> Store {
        self.open_with(quiet_config()).await
    }

    pub async fn open_with(&self, config: Config) -> Store {
        Store::open(&self.datastore, config)
            .await
            .expect("open store")
    }
}

/// No automatic compaction, so tests see all history unless they ask otherwise.
pub fn quiet_config() -> Config {
    Config {
        retention: None,
        connect_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// Generates one test per backend for each named `async fn(Fixture)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Fixture::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = super::common::Fixture::postgres().await {
                        super::$name(fixture).await
                    }
                }
            )*
        }
    };
}

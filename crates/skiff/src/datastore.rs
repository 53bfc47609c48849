//! `skiff datastore ...`: look at and maintain a store without running a server.

#![allow(clippy::print_stdout, reason = "these commands report on stdout")]

use anyhow::{Context, Result};
use clap::Subcommand;
use skiff_store::{Config, Datastore, Store};

#[derive(Subcommand)]
pub enum DatastoreCommand {
    /// Print the head and compacted revisions and the number of log rows.
    Status(Target),
    /// Remove history up to a revision (default: everything but the current values).
    Compact {
        #[command(flatten)]
        target: Target,
        /// Compact up to this revision.
        #[arg(long)]
        revision: Option<i64>,
    },
}

#[derive(clap::Args)]
pub struct Target {
    /// A SQLite file path (or sqlite://PATH) or a postgres:// URL.
    #[arg(long, env = "SKIFF_DATASTORE")]
    datastore: String,
}

impl DatastoreCommand {
    pub async fn run(self) -> Result<()> {
        match self {
            DatastoreCommand::Status(target) => {
                let store = target.open().await?;
                let stats = store.stats().await?;
                println!("datastore: {}", store.datastore().describe());
                println!("revision: {}", stats.revision);
                println!("compacted: {}", stats.compacted);
                println!("log rows: {}", stats.log_rows);
                store.close().await;
            }
            DatastoreCommand::Compact { target, revision } => {
                let store = target.open().await?;
                let revision = match revision {
                    Some(revision) => revision,
                    None => store.revision().await?,
                };
                store.compact(revision).await?;
                println!("compacted up to revision {revision}");
                store.close().await;
            }
        }
        Ok(())
    }
}

impl Target {
    async fn open(&self) -> Result<Store> {
        let datastore = Datastore::parse(&self.datastore)?;
        let config = Config {
            retention: None,
            ..Config::default()
        };
        Store::open(&datastore, config)
            .await
            .context("opening the datastore")
    }
}

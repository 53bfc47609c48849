//! The `skiff` binary: command-line parsing and wiring only. Each subcommand lives in its own
//! module; the work is done by the library crates.

mod agent;
mod bench;
mod client;
mod datastore;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "skiff",
    version,
    about = "A lightweight Kubernetes distribution"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: datastore, certificates, kubeconfig and the HTTPS API.
    Server(server::Args),
    /// Join a node to a cluster (today: simulated nodes, `--simulate N`).
    Agent(agent::Args),
    /// Measure skiff's components against reference figures taken in the same run.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Inspect or compact a datastore without running a server.
    #[command(subcommand)]
    Datastore(datastore::DatastoreCommand),
}

fn main() -> std::process::ExitCode {
    skiff_alloc::link_tuning();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("skiff: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Bench(bench) => bench.run().await,
            Command::Datastore(command) => command.run().await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("skiff: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

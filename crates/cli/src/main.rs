//! The `pravaha` command: the servers (standalone, segment store, controller) and the
//! storage-engine benchmark; administration commands arrive with the client.

mod bench;
mod controller;
mod segmentstore;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "pravaha",
    version,
    about = "Pravaha: durable, elastic streaming storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a segment store and a controller in one process (ports 12345, 9090, 9091).
    Standalone(controller::StandaloneArgs),
    /// Run a segment store (Pravega's segment protocol, default port 12345).
    Segmentstore(segmentstore::SegmentStoreArgs),
    /// Run a controller (gRPC 9090, REST 9091) for a segment store.
    Controller(controller::ControllerArgs),
    /// Measure performance.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Standalone(args) => controller::run_standalone(args),
        Command::Segmentstore(args) => segmentstore::run(args),
        Command::Controller(args) => controller::run_controller(args),
        Command::Bench(command) => bench::run(command),
    }
}

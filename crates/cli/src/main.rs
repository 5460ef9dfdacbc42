//! The `pravaha` command: the segment store server and the storage-engine benchmark; the
//! controller, standalone and administration commands arrive with their issues.

mod bench;
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
    /// Run a segment store (Pravega's segment protocol, default port 12345).
    Segmentstore(segmentstore::SegmentStoreArgs),
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
        Command::Segmentstore(args) => segmentstore::run(args),
        Command::Bench(command) => bench::run(command),
    }
}

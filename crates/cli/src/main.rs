//! The `pravaha` command: for now the storage-engine benchmark; servers and administration
//! commands arrive with the segment store server, the controller and the client.

mod bench;

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
    /// Measure performance.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(command) => bench::run(command),
    }
}

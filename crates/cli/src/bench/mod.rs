//! `pravaha bench`: measurements printed beside a baseline taken by the same command in the
//! same run, so that figures from noisy machines can be compared as ratios.
//!
//! - `pravaha bench [OPTIONS]`: writers and a reader group driving a running server through the
//!   client library (`client.rs`), beside the storage engine measured in-process afterwards;
//! - `pravaha bench engine`: the storage engine alone, beside plain-file writes (`engine.rs`).

mod client;
mod engine;
mod meter;
mod report;
mod workload;

use clap::Subcommand;

/// `pravaha bench`: the client benchmark, unless a subcommand names another one.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    client: client::ClientArgs,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Append throughput and ack latency of the storage engine (no network), beside plain-file
    /// writes with one sync per batch of the same size on the same disk.
    Engine(engine::EngineArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        Some(BenchCommand::Engine(engine_args)) => engine::run(&engine_args),
        None => client::run(&args.client),
    }
}

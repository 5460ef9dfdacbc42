//! `pravaha bench`: measurements printed beside a baseline taken by the same command in the
//! same run, so that figures from noisy machines can be compared as ratios.

mod engine;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Append throughput and ack latency of the storage engine (no network), beside plain-file
    /// writes with one sync per batch of the same size on the same disk.
    Engine(engine::EngineArgs),
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Engine(args) => engine::run(&args),
    }
}

//! The `pravaha` command: the servers (standalone, segment store, controller), their
//! configuration and the storage-engine benchmark; administration commands arrive with the
//! client.

mod bench;
mod config;
#[allow(dead_code)] // used by the client commands, landing next
mod connect;
mod controller;
mod segmentstore;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::{Parser, Subcommand};

use crate::config::Flags;

#[derive(Parser)]
#[command(
    name = "pravaha",
    version,
    about = "Pravaha: durable, elastic streaming storage",
    after_help = "Configuration: flags override PRAVAHA_* environment variables, which override \
                  the --config file, which overrides the built-in defaults; see \
                  docs/configuration.md."
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
    /// Run a controller (gRPC 9090, REST 9091) for the configured segment stores.
    Controller(controller::ControllerArgs),
    /// Print the effective configuration, each value with its source.
    ///
    /// The output is TOML; it fails as the servers would on a bad configuration.
    Config(CommonArgs),
    /// Measure performance: writers and readers against a running server (beside the storage
    /// engine in-process), or `bench engine` alone.
    Bench(bench::BenchArgs),
}

/// The flags every server command takes.
#[derive(clap::Args)]
pub struct CommonArgs {
    /// TOML config file; config/pravaha.toml lists every key [env: PRAVAHA_CONFIG] [default:
    /// none]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Number of segment containers; fixed for the life of the data directory and the same for
    /// every role [key: containers] [env: PRAVAHA_CONTAINERS] [default: 4]
    #[arg(long, value_name = "COUNT")]
    pub containers: Option<u32>,
    /// Delegation tokens are signed (controller) and checked (segment store) with this key;
    /// prefer the environment variable, which `ps` does not show [key: token_signing_key] [env:
    /// PRAVAHA_TOKEN_SIGNING_KEY] [default: auth off]
    #[arg(long, value_name = "KEY")]
    pub token_signing_key: Option<String>,
}

impl CommonArgs {
    /// The configuration from the file, the process environment, `flags` and these flags.
    pub fn load(&self, flags: Flags) -> anyhow::Result<config::Config> {
        Ok(self.load_with_sources(flags)?.config)
    }

    fn load_with_sources(&self, mut flags: Flags) -> anyhow::Result<config::Loaded> {
        flags.set("containers", "--containers", self.containers.as_ref());
        let key = self.token_signing_key.as_ref();
        flags.set("token_signing_key", "--token-signing-key", key);
        let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
        for name in unknown_env_vars(names) {
            let message = "ignoring an environment variable that names no configuration key";
            tracing::warn!(variable = %name, "{message}");
        }
        let env =
            |name: &str| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned());
        config::load(self.config.as_deref(), env, &flags)
    }
}

fn main() -> anyhow::Result<()> {
    // "Ready in" counts from here to every listener bound.
    let started = Instant::now();
    // Warnings and errors by default, so that a starting server prints just its listeners and
    // readiness; RUST_LOG=info (or debug, per module) shows the rest.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Standalone(args) => controller::run_standalone(args, started),
        Command::Segmentstore(args) => segmentstore::run(args, started),
        Command::Controller(args) => controller::run_controller(args, started),
        Command::Config(args) => {
            let loaded = args.load_with_sources(Flags::default())?;
            print!("{}", render(&loaded)?);
            Ok(())
        }
        Command::Bench(args) => bench::run(args),
    }
}

/// The configuration as TOML with dotted keys, each value followed by its source; the token
/// signing key is never shown.
fn render(loaded: &config::Loaded) -> anyhow::Result<String> {
    let toml::Value::Table(tree) = toml::Value::try_from(&loaded.config)? else {
        bail!("the configuration is not a table")
    };
    let mut text = String::from("# the effective configuration; each value names its source\n");
    for key in std::iter::once("version").chain(config::KEYS.iter().map(|(key, _)| *key)) {
        let source = loaded.source(key);
        let line = match config::lookup(&tree, key) {
            None => format!("# {key} is not set\n"),
            Some(_) if key == "token_signing_key" => {
                format!("# {key} is set (hidden)  # {source}\n")
            }
            Some(value) => format!("{key} = {value}  # {source}\n"),
        };
        text.push_str(&line);
    }
    Ok(text)
}

/// Environment variables that look like settings of a section but name no key (typos).
fn unknown_env_vars(names: impl Iterator<Item = String>) -> Vec<String> {
    let known: Vec<String> = config::KEYS
        .iter()
        .map(|(key, _)| config::env_name(key))
        .collect();
    names
        .filter(|name| {
            name.starts_with("PRAVAHA_SEGMENT_STORE_") || name.starts_with("PRAVAHA_CONTROLLER_")
        })
        .filter(|name| !known.contains(name))
        // The client library's variable (pravaha-client's `ClientConfig::from_env`), often set
        // in the same shell as the servers.
        .filter(|name| name != "PRAVAHA_CONTROLLER_URI")
        .collect()
}

//! The `pravaha` command: the servers (standalone, segment store, controller), their
//! configuration, the client commands for users and operators (scopes, streams, writing and
//! reading events, reader groups, Key-Value Tables; see [`cmd`] and docs/cli.md) and the
//! benchmarks.

mod bench;
mod cmd;
mod config;
mod connect;
mod controller;
mod segmentstore;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd::{ClientArgs, ClientCommand};

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
    /// Print a password digest for the controller's password file, read from the first line
    /// of stdin (Pravega's format: a line of the file is `user:DIGEST:acl`).
    PasswordHash,
    /// Measure performance: writers and readers against a running server (beside the storage
    /// engine in-process), or `bench engine` alone.
    Bench(bench::BenchArgs),
    /// Create, list and delete scopes.
    Scope {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: cmd::ScopeCommand,
    },
    /// Create, inspect, configure, scale, seal, truncate and delete streams.
    Stream {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: cmd::StreamCommand,
    },
    /// Write events to a stream, one per line of stdin or of a file.
    Write {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: cmd::WriteArgs,
    },
    /// Read a stream's events, from its head, its tail or a stream cut.
    Read {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        args: cmd::ReadArgs,
    },
    /// Create, inspect (readers, positions, lag) and delete reader groups.
    Rg {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: cmd::RgCommand,
    },
    /// Create, list and delete Key-Value Tables; get, put and remove keys.
    Kvt {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        command: cmd::KvtCommand,
    },
    /// Print a shell completion script, e.g. `pravaha completions bash > /etc/bash_completion.d/pravaha`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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

fn main() -> ExitCode {
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
    let result = match cli.command {
        Command::Standalone(args) => controller::run_standalone(args, started),
        Command::Segmentstore(args) => segmentstore::run(args, started),
        Command::Controller(args) => controller::run_controller(args, started),
        Command::Config(args) => print_config(&args),
        Command::PasswordHash => print_password_hash(),
        Command::Bench(args) => bench::run(args),
        Command::Scope { client, command } => {
            return cmd::run(client, ClientCommand::Scope(command))
        }
        Command::Stream { client, command } => {
            return cmd::run(client, ClientCommand::Stream(command))
        }
        Command::Write {
            client,
            args: write,
        } => return cmd::run(client, ClientCommand::Write(write)),
        Command::Read { client, args: read } => return cmd::run(client, ClientCommand::Read(read)),
        Command::Rg { client, command } => return cmd::run(client, ClientCommand::Rg(command)),
        Command::Kvt { client, command } => return cmd::run(client, ClientCommand::Kvt(command)),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pravaha", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // As `main` returning the error would print it.
            eprintln!("Error: {error:?}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a password from stdin's first line (without its line ending) and prints its digest.
fn print_password_hash() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on stdin: pipe one in, e.g. `printf '%s' \"$PASSWORD\" | pravaha password-hash`");
    }
    println!("{}", pravaha_controller::auth::hash_password(password));
    Ok(())
}

fn print_config(args: &CommonArgs) -> anyhow::Result<()> {
    let loaded = args.load_with_sources(Flags::default())?;
    print!("{}", render(&loaded)?);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}

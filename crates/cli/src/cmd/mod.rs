//! The client commands of `pravaha`: scopes, streams, writing and reading events, reader
//! groups and Key-Value Tables, each a thin layer over the `pravaha-client` library that parses
//! flags, calls the library and prints an aligned table (or `--json` for scripts).
//!
//! Failures end in [`report`]: one place maps every library error to a message saying what to
//! do and to an exit code ([`Exit`]); docs/cli.md lists the codes.

mod cut;
mod failure;
mod kvt;
mod names;
mod output;
mod progress;
mod read;
mod rg;
mod scope;
mod stream;
mod stream_info;
mod units;
mod write;

use std::process::ExitCode;

use crate::connect::ConnectArgs;
pub use failure::{report, Failure};
pub use kvt::KvtCommand;
pub use read::ReadArgs;
pub use rg::RgCommand;
pub use scope::ScopeCommand;
pub use stream::StreamCommand;
pub use write::WriteArgs;

/// The flags every client command takes: where the controller is, and the output format.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    #[command(flatten, next_help_heading = "Client options")]
    pub connect: ConnectArgs,
    /// Print JSON (shapes documented in docs/cli.md) instead of tables
    #[arg(long, global = true, help_heading = "Client options")]
    pub json: bool,
}

/// A client command with its flags.
pub enum ClientCommand {
    Scope(ScopeCommand),
    Stream(StreamCommand),
    Write(WriteArgs),
    Read(ReadArgs),
    Rg(RgCommand),
    Kvt(KvtCommand),
}

/// Runs a client command on a runtime of its own; prints a failure on stderr and answers the
/// exit code.
pub fn run(args: ClientArgs, command: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let controller_uri = args
        .connect
        .client_config()
        .map(|config| config.controller_uri().to_string())
        .unwrap_or_else(|_| "the configured controller".to_owned());
    let result = runtime.block_on(dispatch(&args, command));
    // Writers and readers leave background tasks behind (heartbeats, connections); the command
    // is done, so they need not finish.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (exit, message) = report(&error, &controller_uri);
            eprintln!("error: {message}");
            ExitCode::from(exit as u8)
        }
    }
}

async fn dispatch(args: &ClientArgs, command: ClientCommand) -> anyhow::Result<()> {
    let context = Context::new(args)?;
    match command {
        ClientCommand::Scope(command) => scope::run(&context, command).await,
        ClientCommand::Stream(command) => stream::run(&context, command).await,
        ClientCommand::Write(args) => write::run(&context, args).await,
        ClientCommand::Read(args) => read::run(&context, args).await,
        ClientCommand::Rg(command) => rg::run(&context, command).await,
        ClientCommand::Kvt(command) => kvt::run(&context, command).await,
    }
}

/// What every command needs: the controller and the output format.
pub struct Context {
    pub controller: pravaha_client::ControllerClient,
    pub json: bool,
}

impl Context {
    fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        Ok(Self {
            controller: args.connect.controller()?,
            json: args.json,
        })
    }
}

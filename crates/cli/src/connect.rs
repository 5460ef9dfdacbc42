//! How the client commands (administration, `pravaha write`/`read`, `pravaha bench`) reach a
//! running controller: the client library's own configuration (`PRAVAHA_CLIENT_CONFIG`,
//! `PRAVAHA_CONTROLLER_URI` and the other `PRAVAHA_*` client variables), overridden by flags.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use pravaha_client::{ClientConfig, ControllerClient};

/// The flags every client command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Controller to talk to, e.g. tcp://127.0.0.1:9090 or tls://host:9090 (several:
    /// tcp://a:9090,b:9090) [env: PRAVAHA_CONTROLLER_URI] [default: tcp://127.0.0.1:9090]
    #[arg(long, value_name = "URI", global = true)]
    pub controller: Option<String>,
    /// Client configuration file (TOML, see pravaha-client's `config` module) [env:
    /// PRAVAHA_CLIENT_CONFIG]
    #[arg(long, value_name = "PATH", global = true)]
    pub client_config: Option<PathBuf>,
}

impl ConnectArgs {
    /// The client configuration: file, then environment, then these flags.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let config = match &self.client_config {
            Some(path) => ClientConfig::from_file(path)
                .with_context(|| format!("reading the client configuration {}", path.display()))?,
            None => ClientConfig::from_env().context("the PRAVAHA_* client variables")?,
        };
        let mut builder = config.to_builder();
        if let Some(uri) = &self.controller {
            builder = builder.controller_uri(uri.clone());
        }
        // A command line wants a quick, clear failure when no server runs, not the library's
        // patient retries meant for long-lived applications.
        let mut retry = *config.retry_policy();
        retry.max_attempts = retry.max_attempts.min(3);
        builder = builder
            .retry_policy(retry)
            .request_timeout(config.request_timeout().min(Duration::from_secs(10)));
        builder.build().context("the client configuration")
    }

    /// A controller client for these settings.
    pub fn controller(&self) -> anyhow::Result<ControllerClient> {
        let config = self.client_config()?;
        ControllerClient::new(config).context("connecting to the controller")
    }
}

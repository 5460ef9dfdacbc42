//! How the client reaches the controller: its URI, TLS, credentials, retries and limits.
//!
//! A [`ClientConfig`] is built one of three ways, so that applications and frameworks can inject
//! clients without code:
//! - in code, with [`ClientConfig::builder`];
//! - from the environment, with [`ClientConfig::from_env`] (variables listed below);
//! - from a TOML file, with [`ClientConfig::from_file`] or [`ClientConfig::from_toml_str`].
//!
//! Every default works for `pravaha standalone` on the local machine.
//!
//! # The file
//!
//! Unknown keys are errors that name the key and the line; `version` must be `1`. Every key is
//! optional. Durations carry their unit in the name, sizes are bytes.
//!
//! ```toml
//! version = 1
//! # One controller, or several separated by commas; schemes: tcp:// (or pravega://) for plain
//! # gRPC, tls:// (or ssl://, tcps://, pravegas://) for TLS; without a scheme `tls.enabled`
//! # decides. The port defaults to 9090.
//! controller_uri = "tcp://127.0.0.1:9090"
//! request_timeout_ms = 30000
//! max_in_flight_bytes_per_writer = 16777216
//!
//! [tls]
//! enabled = false
//! # PEM files, or directories whose *.pem, *.crt and *.cer files are read; none = system roots.
//! ca_cert_paths = []
//! disable_hostname_verification = false
//!
//! [credentials]
//! # Either username and password (HTTP Basic), or token (Bearer), or nothing.
//! # username = "admin"
//! # password = "secret"
//! # token = "eyJ..."
//!
//! [retry]
//! initial_delay_ms = 100
//! max_delay_ms = 5000
//! multiplier = 2.0
//! max_attempts = 8
//! ```
//!
//! # The environment
//!
//! [`ClientConfig::from_env`] starts from the defaults, then reads the file named by
//! `PRAVAHA_CLIENT_CONFIG` if it is set, then applies these variables (an empty variable counts
//! as unset; booleans are `true`, `false`, `1` or `0`):
//!
//! | variable | key |
//! |---|---|
//! | `PRAVAHA_CONTROLLER_URI` | `controller_uri` |
//! | `PRAVAHA_REQUEST_TIMEOUT_MS` | `request_timeout_ms` |
//! | `PRAVAHA_MAX_IN_FLIGHT_BYTES_PER_WRITER` | `max_in_flight_bytes_per_writer` |
//! | `PRAVAHA_TLS_ENABLED` | `tls.enabled` |
//! | `PRAVAHA_TLS_CA_CERT_PATHS` | `tls.ca_cert_paths` (comma-separated) |
//! | `PRAVAHA_TLS_DISABLE_HOSTNAME_VERIFICATION` | `tls.disable_hostname_verification` |
//! | `PRAVAHA_USERNAME` / `PRAVAHA_PASSWORD` | `credentials.username` / `credentials.password` |
//! | `PRAVAHA_TOKEN` | `credentials.token` |
//! | `PRAVAHA_RETRY_INITIAL_DELAY_MS` | `retry.initial_delay_ms` |
//! | `PRAVAHA_RETRY_MAX_DELAY_MS` | `retry.max_delay_ms` |
//! | `PRAVAHA_RETRY_MULTIPLIER` | `retry.multiplier` |
//! | `PRAVAHA_RETRY_MAX_ATTEMPTS` | `retry.max_attempts` |

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

mod options;
mod settings;
mod uri;

pub use options::*;
use settings::*;
pub use uri::*;

/// The config file format this client reads (the file's `version` key).
pub const VERSION: u32 = 1;
/// The controller of a local `pravaha standalone`.
pub const DEFAULT_CONTROLLER_URI: &str = "tcp://127.0.0.1:9090";
/// The controller's gRPC port when a URI names none (Pravega's default).
pub const DEFAULT_CONTROLLER_PORT: u16 = 9090;
/// How long one controller request may take (Pravega's clients use 30 s too).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes a writer may have sent but not yet acknowledged before it waits: 16 MiB.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES_PER_WRITER: u64 = 16 * 1024 * 1024;

/// Names the TOML file that [`ClientConfig::from_env`] reads before the other variables.
pub const ENV_CONFIG_FILE: &str = "PRAVAHA_CLIENT_CONFIG";
/// `controller_uri`.
pub const ENV_CONTROLLER_URI: &str = "PRAVAHA_CONTROLLER_URI";
/// `request_timeout_ms`.
pub const ENV_REQUEST_TIMEOUT_MS: &str = "PRAVAHA_REQUEST_TIMEOUT_MS";
/// `max_in_flight_bytes_per_writer`.
pub const ENV_MAX_IN_FLIGHT_BYTES_PER_WRITER: &str = "PRAVAHA_MAX_IN_FLIGHT_BYTES_PER_WRITER";
/// `tls.enabled`.
pub const ENV_TLS_ENABLED: &str = "PRAVAHA_TLS_ENABLED";
/// `tls.ca_cert_paths`, comma-separated.
pub const ENV_TLS_CA_CERT_PATHS: &str = "PRAVAHA_TLS_CA_CERT_PATHS";
/// `tls.disable_hostname_verification`.
pub const ENV_TLS_DISABLE_HOSTNAME_VERIFICATION: &str = "PRAVAHA_TLS_DISABLE_HOSTNAME_VERIFICATION";
/// `credentials.username`.
pub const ENV_USERNAME: &str = "PRAVAHA_USERNAME";
/// `credentials.password`.
pub const ENV_PASSWORD: &str = "PRAVAHA_PASSWORD";
/// `credentials.token`.
pub const ENV_TOKEN: &str = "PRAVAHA_TOKEN";
/// `retry.initial_delay_ms`.
pub const ENV_RETRY_INITIAL_DELAY_MS: &str = "PRAVAHA_RETRY_INITIAL_DELAY_MS";
/// `retry.max_delay_ms`.
pub const ENV_RETRY_MAX_DELAY_MS: &str = "PRAVAHA_RETRY_MAX_DELAY_MS";
/// `retry.multiplier`.
pub const ENV_RETRY_MULTIPLIER: &str = "PRAVAHA_RETRY_MULTIPLIER";
/// `retry.max_attempts`.
pub const ENV_RETRY_MAX_ATTEMPTS: &str = "PRAVAHA_RETRY_MAX_ATTEMPTS";

/// Why a configuration was refused. Each variant names what was wrong and where.
///
/// ```
/// use pravaha_client::config::{ClientConfig, ConfigError};
///
/// let error = ClientConfig::from_toml_str("contoller_uri = \"tcp://h:9090\"").unwrap_err();
/// assert!(matches!(error, ConfigError::Parse { .. }));
/// assert!(error.to_string().contains("contoller_uri"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TOML did not parse or did not fit the schema (unknown key, wrong type); the message
    /// names the key and the line.
    #[error("invalid config {origin}: {message}")]
    Parse { origin: String, message: String },
    /// The file's `version` is not one this client reads.
    #[error("config {origin} has version {found}; this client reads version {VERSION}")]
    UnsupportedVersion { origin: String, found: u32 },
    /// A controller URI that does not parse.
    #[error("invalid controller URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },
    /// A value out of range or inconsistent with another; `key` is the file key or the
    /// environment variable it came from.
    #[error("invalid {key}: {message}")]
    InvalidValue { key: String, message: String },
    /// A CA certificate file or directory that could not be used.
    #[error("cannot load CA certificates from {path}: {message}")]
    Certificate { path: PathBuf, message: String },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::InvalidValue {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// The client's whole configuration; always valid once built.
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::config::{ClientConfig, Credentials};
///
/// let config = ClientConfig::builder()
///     .controller_uri("tls://controller-1:9090,controller-2:9090")
///     .credentials(Credentials::basic("admin", "secret"))
///     .request_timeout(Duration::from_secs(10))
///     .build()?;
/// assert!(config.tls_enabled());
/// assert_eq!(config.controller_uri().endpoints().len(), 2);
/// # Ok::<(), pravaha_client::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    controller_uri: ControllerUri,
    tls: TlsConfig,
    credentials: Credentials,
    retry: RetryPolicy,
    request_timeout: Duration,
    max_in_flight_bytes_per_writer: u64,
}

impl Default for ClientConfig {
    /// The configuration of a local `pravaha standalone`: plain gRPC to `127.0.0.1:9090`.
    fn default() -> Self {
        Settings::default()
            .build()
            .expect("the default settings are valid")
    }
}

impl ClientConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder::default()
    }

    /// A builder starting from this configuration, to change a few settings.
    pub fn to_builder(&self) -> ClientConfigBuilder {
        ClientConfigBuilder {
            settings: Settings::from_config(self),
        }
    }

    /// Defaults, then the file named by `PRAVAHA_CLIENT_CONFIG` (if set), then the variables
    /// listed in the [module documentation](self), read from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] with the variables read through `lookup` (for tests and for
    /// frameworks that keep their own environment).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use pravaha_client::config::ClientConfig;
    ///
    /// let environment = HashMap::from([
    ///     ("PRAVAHA_CONTROLLER_URI", "tcp://10.0.0.7:9090"),
    ///     ("PRAVAHA_RETRY_MAX_ATTEMPTS", "3"),
    /// ]);
    /// let config = ClientConfig::from_env_with(|name| environment.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(config.controller_uri().to_string(), "tcp://10.0.0.7:9090");
    /// assert_eq!(config.retry_policy().max_attempts, 3);
    /// # Ok::<(), pravaha_client::config::ConfigError>(())
    /// ```
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let mut settings = match lookup(ENV_CONFIG_FILE) {
            Some(path) => Settings::read(Path::new(&path))?,
            None => Settings::default(),
        };
        settings.apply_env(&lookup)?;
        settings.build()
    }

    /// Reads a TOML file (see the [module documentation](self) for its keys).
    ///
    /// ```no_run
    /// use pravaha_client::config::ClientConfig;
    ///
    /// let config = ClientConfig::from_file("/etc/pravaha/client.toml")?;
    /// # Ok::<(), pravaha_client::config::ConfigError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Settings::read(path.as_ref())?.build()
    }

    /// Parses TOML text (see the [module documentation](self) for its keys).
    ///
    /// ```
    /// use pravaha_client::config::ClientConfig;
    ///
    /// let config = ClientConfig::from_toml_str(
    ///     r#"
    ///     controller_uri = "tls://controller.example.com"
    ///     [retry]
    ///     max_attempts = 4
    ///     "#,
    /// )?;
    /// assert_eq!(config.controller_uri().endpoints()[0].port, 9090);
    /// assert_eq!(config.retry_policy().max_attempts, 4);
    /// # Ok::<(), pravaha_client::config::ConfigError>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Settings::parse(text, "TOML text")?.build()
    }

    /// This configuration as a TOML file that [`Self::from_toml_str`] reads back to an equal
    /// configuration. Credentials are included: store the text accordingly.
    ///
    /// ```
    /// use pravaha_client::config::ClientConfig;
    ///
    /// let config = ClientConfig::builder().controller_uri("tcp://h:1").build()?;
    /// let text = config.to_toml_string();
    /// assert_eq!(ClientConfig::from_toml_str(&text)?, config);
    /// # Ok::<(), pravaha_client::config::ConfigError>(())
    /// ```
    pub fn to_toml_string(&self) -> String {
        toml::to_string(&Settings::from_config(self)).expect("settings serialize to TOML")
    }

    /// The controller (or controllers) to talk to.
    pub fn controller_uri(&self) -> &ControllerUri {
        &self.controller_uri
    }

    /// The TLS settings as given; see [`Self::tls_enabled`] for whether TLS is used.
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    /// Whether connections use TLS: `tls.enabled`, or a TLS scheme in the controller URI.
    pub fn tls_enabled(&self) -> bool {
        self.tls.enabled || self.controller_uri.scheme().is_some_and(UriScheme::is_tls)
    }

    /// The credentials sent with every controller request.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// How failed requests are retried.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// How long one controller request (one attempt) may take, connecting included.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Bytes one event writer may have in flight (sent, not yet acknowledged) before it waits.
    pub fn max_in_flight_bytes_per_writer(&self) -> u64 {
        self.max_in_flight_bytes_per_writer
    }
}

/// Builds a [`ClientConfig`]; every setting starts at its default and is checked by
/// [`Self::build`].
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::config::{ClientConfig, RetryPolicy};
///
/// let config = ClientConfig::builder()
///     .controller_uri("127.0.0.1:9090")
///     .tls_enabled(true)
///     .ca_cert_path("/etc/pravaha/ca.pem")
///     .bearer_token("eyJhbGciOi...")
///     .retry_policy(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
///     .max_in_flight_bytes_per_writer(4 << 20)
///     .build()?;
/// assert!(config.tls_enabled());
/// # Ok::<(), pravaha_client::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientConfigBuilder {
    settings: Settings,
}

impl ClientConfigBuilder {
    /// The controller URI (see [`ControllerUri`] for the accepted forms).
    pub fn controller_uri(mut self, uri: impl Into<String>) -> Self {
        self.settings.controller_uri = uri.into();
        self
    }

    /// Turns TLS on for a URI without a scheme (a `tls://` URI turns it on by itself).
    pub fn tls_enabled(mut self, enabled: bool) -> Self {
        self.settings.tls.enabled = enabled;
        self
    }

    /// Adds a CA certificate file (PEM) or a directory of them.
    pub fn ca_cert_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.tls.ca_cert_paths.push(path.into());
        self
    }

    /// Accepts a server certificate that chains to a trusted CA even if it does not name the
    /// host connected to. Only for test set-ups: it allows impersonation by any holder of a
    /// certificate from the same CA.
    pub fn disable_hostname_verification(mut self, disable: bool) -> Self {
        self.settings.tls.disable_hostname_verification = disable;
        self
    }

    /// All TLS settings at once.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.settings.tls = tls;
        self
    }

    /// The credentials sent with every request.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.settings.credentials = CredentialSettings::from_credentials(&credentials);
        self
    }

    /// HTTP Basic credentials.
    pub fn basic_auth(self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials(Credentials::basic(username, password))
    }

    /// A bearer token.
    pub fn bearer_token(self, token: impl Into<String>) -> Self {
        self.credentials(Credentials::bearer(token))
    }

    /// How failed requests are retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = RetrySettings::from_policy(&policy);
        self
    }

    /// How long one request attempt may take.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout_ms = millis(timeout);
        self
    }

    /// Bytes one event writer may have in flight before it waits.
    pub fn max_in_flight_bytes_per_writer(mut self, bytes: u64) -> Self {
        self.settings.max_in_flight_bytes_per_writer = bytes;
        self
    }

    /// Checks every setting and builds the configuration.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        self.settings.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(parse_host_port("h"), Ok(ServerAddress::new("h", 9090)));
        assert_eq!(parse_host_port("h:1"), Ok(ServerAddress::new("h", 1)));
        assert_eq!(
            parse_host_port("[::1]"),
            Ok(ServerAddress::new("::1", 9090))
        );
        assert_eq!(
            parse_host_port("[fe80::1]:7"),
            Ok(ServerAddress::new("fe80::1", 7))
        );
        for bad in [
            "", ":9090", "h:0", "h:70000", "h:x", "::1", "[::1", "[::1]x", "h/p",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delays_grow_then_cap() {
        let policy = RetryPolicy::default();
        let delays: Vec<Duration> = (1..=8).map(|n| policy.delay(n)).collect();
        assert!(delays.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[7], Duration::from_secs(5));
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(5));
        let broken = RetryPolicy {
            multiplier: f64::NAN,
            ..policy
        };
        assert_eq!(broken.delay(4), Duration::from_millis(100));
    }
}

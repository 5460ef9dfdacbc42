//! The file schema, shared by the builder and the environment, and its validation.

use super::*;

/// The file schema; also what the builder and the environment fill in before validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct Settings {
    pub(super) version: u32,
    pub(super) controller_uri: String,
    pub(super) request_timeout_ms: u64,
    pub(super) max_in_flight_bytes_per_writer: u64,
    pub(super) tls: TlsConfig,
    pub(super) credentials: CredentialSettings,
    pub(super) retry: RetrySettings,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CredentialSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) token: Option<String>,
}

impl fmt::Debug for CredentialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSettings")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RetrySettings {
    pub(super) initial_delay_ms: u64,
    pub(super) max_delay_ms: u64,
    pub(super) multiplier: f64,
    pub(super) max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: VERSION,
            controller_uri: DEFAULT_CONTROLLER_URI.to_owned(),
            request_timeout_ms: millis(DEFAULT_REQUEST_TIMEOUT),
            max_in_flight_bytes_per_writer: DEFAULT_MAX_IN_FLIGHT_BYTES_PER_WRITER,
            tls: TlsConfig::default(),
            credentials: CredentialSettings::default(),
            retry: RetrySettings::default(),
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self::from_policy(&RetryPolicy::default())
    }
}

impl RetrySettings {
    pub(super) fn from_policy(policy: &RetryPolicy) -> Self {
        Self {
            initial_delay_ms: millis(policy.initial_delay),
            max_delay_ms: millis(policy.max_delay),
            multiplier: policy.multiplier,
            max_attempts: policy.max_attempts,
        }
    }

    pub(super) fn to_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(self.initial_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            multiplier: self.multiplier,
            max_attempts: self.max_attempts,
        }
    }
}

impl CredentialSettings {
    pub(super) fn from_credentials(credentials: &Credentials) -> Self {
        match credentials {
            Credentials::None => Self::default(),
            Credentials::Basic { username, password } => Self {
                username: Some(username.clone()),
                password: Some(password.clone()),
                token: None,
            },
            Credentials::Bearer { token } => Self {
                token: Some(token.clone()),
                ..Self::default()
            },
        }
    }

    pub(super) fn to_credentials(&self) -> Result<Credentials, ConfigError> {
        match (&self.username, &self.password, &self.token) {
            (None, None, None) => Ok(Credentials::None),
            (Some(username), Some(password), None) => {
                if username.contains(':') {
                    return Err(ConfigError::invalid(
                        "credentials.username",
                        "a Basic user name cannot contain ':'",
                    ));
                }
                Ok(Credentials::basic(username, password))
            }
            (None, None, Some(token)) => Ok(Credentials::bearer(token)),
            (_, _, Some(_)) => Err(ConfigError::invalid(
                "credentials.token",
                "give either a token or a username and password, not both",
            )),
            (Some(_), None, None) => Err(ConfigError::invalid(
                "credentials.password",
                "a username needs a password",
            )),
            (None, Some(_), None) => Err(ConfigError::invalid(
                "credentials.username",
                "a password needs a username",
            )),
        }
    }
}

impl Settings {
    pub(super) fn from_config(config: &ClientConfig) -> Self {
        Self {
            version: VERSION,
            controller_uri: config.controller_uri.to_string(),
            request_timeout_ms: millis(config.request_timeout),
            max_in_flight_bytes_per_writer: config.max_in_flight_bytes_per_writer,
            tls: config.tls.clone(),
            credentials: CredentialSettings::from_credentials(&config.credentials),
            retry: RetrySettings::from_policy(&config.retry),
        }
    }

    pub(super) fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &format!("file {}", path.display()))
    }

    pub(super) fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let settings: Self = toml::from_str(text).map_err(|error| ConfigError::Parse {
            origin: origin.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        if settings.version != VERSION {
            return Err(ConfigError::UnsupportedVersion {
                origin: origin.to_owned(),
                found: settings.version,
            });
        }
        Ok(settings)
    }

    /// Overrides every key whose variable is set.
    pub(super) fn apply_env(
        &mut self,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(uri) = lookup(ENV_CONTROLLER_URI) {
            self.controller_uri = uri;
        }
        env_parse(lookup, ENV_REQUEST_TIMEOUT_MS, &mut self.request_timeout_ms)?;
        env_parse(
            lookup,
            ENV_MAX_IN_FLIGHT_BYTES_PER_WRITER,
            &mut self.max_in_flight_bytes_per_writer,
        )?;
        env_bool(lookup, ENV_TLS_ENABLED, &mut self.tls.enabled)?;
        if let Some(paths) = lookup(ENV_TLS_CA_CERT_PATHS) {
            self.tls.ca_cert_paths = paths
                .split(',')
                .map(str::trim)
                .filter(|path| !path.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        env_bool(
            lookup,
            ENV_TLS_DISABLE_HOSTNAME_VERIFICATION,
            &mut self.tls.disable_hostname_verification,
        )?;
        for (name, field) in [
            (ENV_USERNAME, &mut self.credentials.username),
            (ENV_PASSWORD, &mut self.credentials.password),
            (ENV_TOKEN, &mut self.credentials.token),
        ] {
            if let Some(value) = lookup(name) {
                *field = Some(value);
            }
        }
        env_parse(
            lookup,
            ENV_RETRY_INITIAL_DELAY_MS,
            &mut self.retry.initial_delay_ms,
        )?;
        env_parse(lookup, ENV_RETRY_MAX_DELAY_MS, &mut self.retry.max_delay_ms)?;
        env_parse(lookup, ENV_RETRY_MULTIPLIER, &mut self.retry.multiplier)?;
        env_parse(lookup, ENV_RETRY_MAX_ATTEMPTS, &mut self.retry.max_attempts)?;
        Ok(())
    }

    pub(super) fn build(&self) -> Result<ClientConfig, ConfigError> {
        let controller_uri: ControllerUri = self.controller_uri.parse()?;
        if self.tls.enabled && controller_uri.scheme() == Some(UriScheme::Tcp) {
            return Err(ConfigError::invalid(
                "tls.enabled",
                format!(
                    "TLS is on but the controller URI {} asks for plain tcp://; use tls:// or \
                     leave the scheme out",
                    self.controller_uri
                ),
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "request_timeout_ms",
                "must be at least 1",
            ));
        }
        if self.max_in_flight_bytes_per_writer == 0 {
            return Err(ConfigError::invalid(
                "max_in_flight_bytes_per_writer",
                "must be at least 1",
            ));
        }
        let retry = self.retry.to_policy();
        retry.validate("retry.")?;
        Ok(ClientConfig {
            controller_uri,
            tls: self.tls.clone(),
            credentials: self.credentials.to_credentials()?,
            retry,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            max_in_flight_bytes_per_writer: self.max_in_flight_bytes_per_writer,
        })
    }
}

pub(super) fn env_parse<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    field: &mut T,
) -> Result<(), ConfigError> {
    if let Some(text) = lookup(name) {
        *field = text.trim().parse().map_err(|_| {
            ConfigError::invalid(
                &format!("environment variable {name}"),
                format!("{text:?} is not a valid number"),
            )
        })?;
    }
    Ok(())
}

pub(super) fn env_bool(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    field: &mut bool,
) -> Result<(), ConfigError> {
    if let Some(text) = lookup(name) {
        *field = match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ConfigError::invalid(
                    &format!("environment variable {name}"),
                    format!("{text:?} is not a boolean (true, false, 1 or 0)"),
                ))
            }
        };
    }
    Ok(())
}

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

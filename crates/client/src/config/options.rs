//! TLS, credentials and retries.

use super::*;

/// TLS towards the controller (and, later, the segment stores).
///
/// ```
/// use pravaha_client::config::TlsConfig;
///
/// let tls = TlsConfig {
///     enabled: true,
///     ca_cert_paths: vec!["/etc/pravaha/ca.pem".into()],
///     ..TlsConfig::default()
/// };
/// assert!(!tls.disable_hostname_verification);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Use TLS even though the controller URI has no TLS scheme.
    pub enabled: bool,
    /// CA certificates to trust: PEM files, or directories whose `*.pem`, `*.crt` and `*.cer`
    /// files are read. Empty: the system's trusted roots.
    pub ca_cert_paths: Vec<PathBuf>,
    /// Accept a certificate that chains to a trusted CA but names another host. Test set-ups
    /// only.
    pub disable_hostname_verification: bool,
}

/// Who the client is to the controller: sent with every request as the gRPC `authorization`
/// metadata, as Pravega's clients send it (`Basic base64(user:password)` or `Bearer token`).
/// `Debug` never prints the password or the token.
///
/// ```
/// use pravaha_client::config::Credentials;
///
/// let basic = Credentials::basic("admin", "1111_aaaa");
/// assert_eq!(basic.authorization_header().as_deref(), Some("Basic YWRtaW46MTExMV9hYWFh"));
/// assert_eq!(Credentials::bearer("t0k3n").authorization_header().as_deref(), Some("Bearer t0k3n"));
/// assert_eq!(Credentials::None.authorization_header(), None);
/// assert!(!format!("{basic:?}").contains("1111_aaaa"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No `authorization` header (auth off).
    #[default]
    None,
    /// HTTP Basic: user name and password.
    Basic { username: String, password: String },
    /// A bearer token (for example from Keycloak).
    Bearer { token: String },
}

impl Credentials {
    /// HTTP Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// A bearer token.
    pub fn bearer(token: impl Into<String>) -> Self {
        Self::Bearer {
            token: token.into(),
        }
    }

    /// The value of the `authorization` header, if any.
    pub fn authorization_header(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Basic { username, password } => {
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Some(format!("Basic {encoded}"))
            }
            Self::Bearer { token } => Some(format!("Bearer {token}")),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// Jittered exponential back-off: after failed attempt `n` (from 1) the client waits
/// `min(max_delay, initial_delay × multiplier^(n−1))`, scaled by a random factor in [0.5, 1]
/// so that many clients do not retry in step; it gives up after `max_attempts` attempts.
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::config::RetryPolicy;
///
/// let policy = RetryPolicy {
///     initial_delay: Duration::from_millis(100),
///     max_delay: Duration::from_secs(1),
///     multiplier: 2.0,
///     max_attempts: 6,
/// };
/// assert_eq!(policy.delay(1), Duration::from_millis(100));
/// assert_eq!(policy.delay(3), Duration::from_millis(400));
/// assert_eq!(policy.delay(5), Duration::from_secs(1)); // capped
/// assert_eq!(policy.jittered_delay(3, 0.0), Duration::from_millis(200));
/// assert_eq!(policy.jittered_delay(3, 1.0), Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Each wait is this many times the previous one (at least 1).
    pub multiplier: f64,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 100 ms, doubling, at most 5 s apart, 8 attempts (about 11 s of waiting in all).
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1 = the first), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let seconds = self.initial_delay.as_secs_f64() * multiplier.powi(exponent);
        if seconds.is_finite() && seconds < self.max_delay.as_secs_f64() {
            Duration::from_secs_f64(seconds)
        } else {
            self.max_delay
        }
    }

    /// Whether another attempt may follow `failed_attempts` failed ones.
    pub fn allows_another(&self, failed_attempts: u32) -> bool {
        failed_attempts < self.max_attempts.max(1)
    }

    /// The pause after failed attempt `attempt` (1 = the first), with random jitter: what every
    /// retry loop of the client (controller requests, segment connections) sleeps.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.jittered_delay(attempt, jitter())
    }

    /// [`Self::delay`] scaled into `[delay / 2, delay]` by `jitter` in [0, 1] (clamped).
    pub fn jittered_delay(&self, attempt: u32, jitter: f64) -> Duration {
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self.delay(attempt).mul_f64(0.5 + jitter / 2.0)
    }

    /// Whether the fields are usable; `prefix` names them in the error (`retry.`).
    pub(super) fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid(
                &format!("{prefix}max_attempts"),
                "at least one attempt is needed",
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(ConfigError::invalid(
                &format!("{prefix}multiplier"),
                format!("{} is not a finite number >= 1", self.multiplier),
            ));
        }
        if self.max_delay < self.initial_delay {
            return Err(ConfigError::invalid(
                &format!("{prefix}max_delay_ms"),
                format!(
                    "{} ms is less than the initial delay ({} ms)",
                    self.max_delay.as_millis(),
                    self.initial_delay.as_millis()
                ),
            ));
        }
        Ok(())
    }
}

/// A number in `[0, 1)` to spread retries; random enough for that, not for anything else.
fn jitter() -> f64 {
    // The low 53 bits of a v4 UUID are random, and 53 bits make an evenly spread f64.
    let random = uuid::Uuid::new_v4().as_u128();
    let bits = u64::try_from(random & ((1 << 53) - 1)).unwrap_or(0);
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_in_the_upper_half_of_the_delay() {
        let policy = RetryPolicy::default();
        for attempt in 1..6 {
            for _ in 0..100 {
                let pause = policy.backoff(attempt);
                let full = policy.delay(attempt);
                assert!(pause >= full / 2 && pause <= full, "{attempt}: {pause:?}");
            }
        }
    }

    #[test]
    fn attempts_are_bounded() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(policy.allows_another(2));
        assert!(!policy.allows_another(3));
    }
}

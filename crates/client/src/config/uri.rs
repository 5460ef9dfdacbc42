//! Controller URIs and server addresses.

use super::*;

/// One or more controllers: `[scheme://]host[:port][,host[:port]...]`, as Pravega accepts them.
///
/// Schemes: `tcp` or `pravega` (plain gRPC), `tls`, `ssl`, `tcps` or `pravegas` (TLS). A scheme
/// given on the first controller applies to the others; each may repeat it. The port defaults
/// to 9090; IPv6 hosts go in brackets. Requests go to the first controller and fail over to the
/// next when one is unreachable.
///
/// ```
/// use pravaha_client::config::{ControllerUri, UriScheme};
///
/// let uri: ControllerUri = "tls://a.example.com,b.example.com:9191,[::1]".parse()?;
/// assert_eq!(uri.scheme(), Some(UriScheme::Tls));
/// let ports: Vec<u16> = uri.endpoints().iter().map(|e| e.port).collect();
/// assert_eq!(ports, [9090, 9191, 9090]);
/// assert_eq!(uri.to_string(), "tls://a.example.com:9090,b.example.com:9191,[::1]:9090");
/// assert!("http://a:9090".parse::<ControllerUri>().is_err());
/// # Ok::<(), pravaha_client::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerUri {
    scheme: Option<UriScheme>,
    endpoints: Vec<ServerAddress>,
}

impl ControllerUri {
    /// The scheme, if the URI has one.
    pub fn scheme(&self) -> Option<UriScheme> {
        self.scheme
    }

    /// The controllers, in the order given; never empty.
    pub fn endpoints(&self) -> &[ServerAddress] {
        &self.endpoints
    }
}

impl FromStr for ControllerUri {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidUri {
            uri: text.to_owned(),
            reason,
        };
        let mut scheme = None;
        let mut endpoints = Vec::new();
        for (index, item) in text.split(',').map(str::trim).enumerate() {
            let (item_scheme, rest) = match item.split_once("://") {
                Some((name, rest)) => (Some(UriScheme::parse(name).map_err(&invalid)?), rest),
                None => (None, item),
            };
            match (index, item_scheme) {
                (0, given) => scheme = given,
                (_, Some(given)) if scheme != Some(given) => {
                    return Err(invalid(format!(
                        "controller {} has scheme {given} but the first has {}",
                        index + 1,
                        scheme.map_or("none".to_owned(), |s| s.to_string())
                    )))
                }
                _ => {}
            }
            endpoints.push(parse_host_port(rest).map_err(&invalid)?);
        }
        Ok(Self { scheme, endpoints })
    }
}

impl fmt::Display for ControllerUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = self.scheme {
            write!(f, "{scheme}://")?;
        }
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{endpoint}")?;
        }
        Ok(())
    }
}

/// Whether a controller URI asks for plain gRPC or TLS.
///
/// ```
/// use pravaha_client::config::UriScheme;
///
/// assert!(UriScheme::Tls.is_tls());
/// assert_eq!(UriScheme::Tcp.to_string(), "tcp");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriScheme {
    /// `tcp://` or `pravega://`: plain gRPC (HTTP/2 without TLS).
    Tcp,
    /// `tls://`, `ssl://`, `tcps://` or `pravegas://`: gRPC over TLS.
    Tls,
}

impl UriScheme {
    /// Whether the scheme asks for TLS.
    pub fn is_tls(self) -> bool {
        self == Self::Tls
    }

    pub(super) fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "tcp" | "pravega" => Ok(Self::Tcp),
            "tls" | "ssl" | "tcps" | "pravegas" => Ok(Self::Tls),
            _ => Err(format!(
                "unknown scheme {name:?}; use tcp:// (or pravega://) or tls:// (or ssl://, \
                 tcps://, pravegas://)"
            )),
        }
    }
}

impl fmt::Display for UriScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        })
    }
}

/// A host (DNS name or IP address) and a port: a controller, or the segment store that owns a
/// segment.
///
/// ```
/// use pravaha_client::config::ServerAddress;
///
/// let address = ServerAddress::new("::1", 12345);
/// assert_eq!(address.to_string(), "[::1]:12345");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddress {
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl ServerAddress {
    /// The address `host:port`; an IPv6 host is given without brackets.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
pub(super) fn parse_host_port(text: &str) -> Result<ServerAddress, String> {
    if text.is_empty() {
        return Err("a controller address is empty".into());
    }
    if text.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "{text:?} is not host[:port] (paths, queries and user names are not allowed)"
        ));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?} opens '[' without closing it"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after the IPv6 address")),
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(format!(
                    "{text:?}: write IPv6 addresses in brackets, [::1]:9090"
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    let port = match port {
        None => DEFAULT_CONTROLLER_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("port {port:?} is not a number from 1 to 65535")),
        },
    };
    Ok(ServerAddress::new(host, port))
}

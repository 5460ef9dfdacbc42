//! One segment over Pravega's segment protocol (TCP, default port 12345): an append session
//! ([`SegmentWriter`]), reads and segment information ([`SegmentReader`]) and the parsing of
//! event records out of consecutive reads ([`EventParser`]).
//!
//! - [`Connection`] is one TCP connection to a segment store: dialled with a time-out, `Hello`
//!   exchanged (the server's version range must contain ours), frames read with the protocol's
//!   frame limit and written from a buffer.
//! - [`SegmentWriter`] is one writer id's append session on one segment. Events get increasing
//!   event numbers and travel in `AppendBlockEnd` blocks, pipelined (the next block does not
//!   wait for the previous ack). Bytes not yet acknowledged are bounded by a [`ByteBudget`]
//!   (writers wait when it is spent). A broken connection is re-established with back-off, the
//!   session set up again with the same writer id, and only the events the segment store does
//!   not already hold are resent: exactly once across connection faults. A sealed or missing
//!   segment ends the session and hands the unacknowledged events back, in order
//!   ([`SessionEnd`]), for the caller to write to the successors.
//! - [`SegmentReader`] reads byte ranges (a read at the tail of an open segment waits for data,
//!   the server long-polling about 15 s) and answers segment information; truncation, the end of
//!   a sealed segment and a missing segment are typed.
//!
//! Where a segment lives and which delegation token to present come from a [`Locator`]; it is
//! asked again after `WrongHost` (the segment moved) or an expired token. [`StaticLocator`] is
//! one endpoint and one token (empty = authentication off).
//!
//! This module knows the wire protocol (through `pravaha-wire`) and TCP; it must not know the
//! controller, streams or scaling: successors, routing and resolving endpoints are the caller's.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use pravaha_client::segment::{
//!     EventParser, ReaderConfig, SegmentReader, SegmentWriter, SessionEnd, StaticLocator,
//!     WriterConfig,
//! };
//!
//! let locator = Arc::new(StaticLocator::new("127.0.0.1:12345".parse::<std::net::SocketAddr>()?));
//! let segment = "scope/stream/0.#epoch.0";
//! let writer = SegmentWriter::connect(locator.clone(), segment, WriterConfig::default()).await?;
//! let acknowledged = writer.write(Bytes::from_static(b"hello")).await?;
//! acknowledged.await?; // durable
//! match writer.close().await {
//!     SessionEnd::Closed => {}
//!     SessionEnd::Sealed { unacked } => { /* write `unacked` to the successors, in order */ }
//!     other => return Err(format!("append session ended: {other:?}").into()),
//! }
//!
//! let mut reader = SegmentReader::new(locator, segment, ReaderConfig::default());
//! let mut parser = EventParser::new(0);
//! let read = reader.read(parser.next_offset(), 1 << 20).await?;
//! parser.push_read(&read)?;
//! while let Some(event) = parser.next_event()? {
//!     println!("{} bytes at offset {}", event.payload.len(), event.offset);
//! }
//! # Ok(())
//! # }
//! ```

mod budget;
mod connection;
mod event;
mod parser;
mod pipeline;
mod reader;
mod session;
mod writer;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};

pub use crate::config::RetryPolicy;
pub use budget::{BudgetPermit, ByteBudget};
pub use connection::{Connection, ConnectionConfig, ConnectionError};
pub use event::{
    frame_event, AppendError, AppendFuture, Framing, PendingEvent, MAX_EVENT_DATA,
    MAX_EVENT_PAYLOAD,
};
pub use parser::{Event, EventParser, ParseError};
pub use reader::{ReaderConfig, ReaderError, SegmentInfo, SegmentRead, SegmentReader};
pub use writer::{SegmentWriter, SessionEnd, WriterConfig, WriterError};

/// A boxed, sendable future, as [`Locator`] returns.
///
/// ```
/// use pravaha_client::segment::{BoxFuture, Endpoint, LocatorError};
///
/// let answer: BoxFuture<'_, Result<Endpoint, LocatorError>> =
///     Box::pin(async { Ok(Endpoint::new("127.0.0.1", 12345)) });
/// let endpoint = futures::executor::block_on(answer)?;
/// assert_eq!(endpoint.port(), 12345);
/// # Ok::<(), LocatorError>(())
/// ```
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a [`Locator`] could not answer (e.g. the controller was unreachable). Writers and
/// readers retry on it, and report its message if they give up.
///
/// ```
/// use pravaha_client::segment::LocatorError;
///
/// let error: LocatorError = "the controller at 127.0.0.1:9090 is unreachable".into();
/// assert_eq!(error.to_string(), "the controller at 127.0.0.1:9090 is unreachable");
/// ```
pub type LocatorError = Box<dyn std::error::Error + Send + Sync>;

/// The address of a segment store: a host name or IP address, and a port.
///
/// It parses from and prints as `host:port`, an IPv6 address in brackets.
///
/// ```
/// use pravaha_client::segment::Endpoint;
///
/// let endpoint: Endpoint = "[::1]:12345".parse()?;
/// assert_eq!((endpoint.host(), endpoint.port()), ("::1", 12345));
/// assert_eq!(endpoint.to_string(), "[::1]:12345");
/// assert_eq!(endpoint, Endpoint::new("::1", 12345));
/// assert!("segmentstore.local".parse::<Endpoint>().is_err()); // no port
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// The segment store at `host` (an IPv6 address without brackets) and `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (Pravega's default is 12345).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(address: SocketAddr) -> Self {
        Self::new(address.ip().to_string(), address.port())
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    /// Parses `host:port` (an IPv6 address in brackets: `[::1]:12345`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("endpoint {text:?} has no port"))?;
        let port = port
            .parse()
            .map_err(|_| format!("endpoint {text:?} has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("endpoint {text:?} has no host"));
        }
        Ok(Self::new(host, port))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a segment lives and which delegation token to present for it.
///
/// Writers and readers ask before every connection attempt. `refresh` is true after the
/// segment store answered `WrongHost` (for [`Locator::endpoint`]) or reported the token expired
/// (for [`Locator::token`]): the answer must then be looked up again, not taken from a cache.
///
/// [`StaticLocator`] and [`crate::locator::ControllerLocator`] cover the usual cases; an
/// application that knows its segment stores can implement its own:
///
/// ```
/// use std::collections::HashMap;
///
/// use futures::executor::block_on;
/// use pravaha_client::segment::{BoxFuture, Endpoint, Locator, LocatorError};
///
/// /// Segments placed by a fixed table, authentication off.
/// struct Placement(HashMap<String, Endpoint>);
///
/// impl Locator for Placement {
///     fn endpoint<'a>(
///         &'a self,
///         segment: &'a str,
///         _refresh: bool,
///     ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
///         Box::pin(async move {
///             self.0
///                 .get(segment)
///                 .cloned()
///                 .ok_or_else(|| format!("no segment store holds {segment}").into())
///         })
///     }
///
///     fn token<'a>(
///         &'a self,
///         _segment: &'a str,
///         _refresh: bool,
///     ) -> BoxFuture<'a, Result<String, LocatorError>> {
///         Box::pin(async { Ok(String::new()) })
///     }
/// }
///
/// let placement = Placement(HashMap::from([(
///     "shop/orders/0.#epoch.0".to_owned(),
///     Endpoint::new("store-1.local", 12345),
/// )]));
/// let located = placement.endpoint("shop/orders/0.#epoch.0", false);
/// assert_eq!(block_on(located)?.to_string(), "store-1.local:12345");
/// assert!(block_on(placement.endpoint("shop/orders/1.#epoch.0", false)).is_err());
/// # Ok::<(), LocatorError>(())
/// ```
pub trait Locator: Send + Sync + 'static {
    /// The segment store that owns `segment`.
    fn endpoint<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>>;

    /// The delegation token; empty when authentication is off.
    fn token<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>>;
}

impl fmt::Debug for dyn Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Locator")
    }
}

/// One endpoint and one token for every segment: a standalone, a test, or a caller that
/// resolves endpoints itself.
///
/// ```
/// use futures::executor::block_on;
/// use pravaha_client::segment::{Endpoint, Locator, StaticLocator};
///
/// let locator = StaticLocator::new(Endpoint::new("127.0.0.1", 12345)).with_token("a-token");
/// // Every segment, refreshed or not, has the same answer.
/// let endpoint = block_on(locator.endpoint("shop/orders/0.#epoch.0", true))?;
/// assert_eq!(endpoint, Endpoint::new("127.0.0.1", 12345));
/// assert_eq!(block_on(locator.token("shop/orders/1.#epoch.0", false))?, "a-token");
/// # Ok::<(), pravaha_client::segment::LocatorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticLocator {
    pub endpoint: Endpoint,
    /// Empty when authentication is off.
    pub token: String,
}

impl StaticLocator {
    /// `endpoint` without a delegation token (authentication off).
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
            token: String::new(),
        }
    }

    /// The same endpoint, presenting `token` for every segment.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }
}

impl Locator for StaticLocator {
    fn endpoint<'a>(
        &'a self,
        _segment: &'a str,
        _refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
        Box::pin(std::future::ready(Ok(self.endpoint.clone())))
    }

    fn token<'a>(
        &'a self,
        _segment: &'a str,
        _refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>> {
        Box::pin(std::future::ready(Ok(self.token.clone())))
    }
}

/// A fresh request id: process-wide, positive and increasing (as the official clients number
/// them), so replies can be told apart.
pub fn next_request_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_print() {
        let plain: Endpoint = "segmentstore.local:12345".parse().unwrap();
        assert_eq!(plain, Endpoint::new("segmentstore.local", 12345));
        assert_eq!(plain.to_string(), "segmentstore.local:12345");
        let v6: Endpoint = "[::1]:9".parse().unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.to_string(), "[::1]:9");
        let from_address = Endpoint::from("127.0.0.1:80".parse::<SocketAddr>().unwrap());
        assert_eq!(from_address.to_string(), "127.0.0.1:80");
        assert!("nohost".parse::<Endpoint>().is_err());
        assert!(":1".parse::<Endpoint>().is_err());
        assert!("host:x".parse::<Endpoint>().is_err());
    }

    #[test]
    fn request_ids_increase() {
        let first = next_request_id();
        assert!(first > 0);
        assert!(next_request_id() > first);
    }
}

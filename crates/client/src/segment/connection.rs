//! One TCP connection to a segment store: dialling with a time-out and the `Hello` exchange,
//! then frames read and written with `pravaha-wire`, whole or split into a read and a write half.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pravaha_wire::{self as wire, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::Endpoint;

/// Room for typical replies; a larger frame grows the buffer, up to the frame limit.
const INPUT_CAPACITY: usize = 16 << 10;

/// How connections are made.
///
/// ```
/// use std::time::Duration;
///
/// use pravaha_client::segment::ConnectionConfig;
///
/// // A segment store on a slow link: more time to connect, and no reply above 1 MiB.
/// let config = ConnectionConfig {
///     connect_timeout: Duration::from_secs(30),
///     max_frame_payload: 1 << 20,
/// };
/// assert!(config.max_frame_payload < ConnectionConfig::default().max_frame_payload);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Bounds dialling and the `Hello` exchange together.
    pub connect_timeout: Duration,
    /// The largest frame payload accepted from the server; a larger announcement fails the
    /// connection before anything is allocated. At most [`wire::MAX_FRAME_PAYLOAD`].
    pub max_frame_payload: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_frame_payload: wire::MAX_FRAME_PAYLOAD,
        }
    }
}

/// Why a connection could not be made or used. Every variant means the connection is unusable;
/// all of them may succeed on a new connection except [`ConnectionError::IncompatibleVersion`].
///
/// ```
/// use pravaha_client::segment::{ConnectionError, Endpoint};
///
/// let error = ConnectionError::IncompatibleVersion {
///     endpoint: Endpoint::new("store-1.local", 12345),
///     low: 1,
///     high: 5,
/// };
/// let message = error.to_string();
/// assert!(message.starts_with("segment store store-1.local:12345 speaks wire versions 1..=5"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectionError {
    #[error("could not connect to segment store {endpoint}: {source}")]
    Connect {
        endpoint: Endpoint,
        source: Arc<std::io::Error>,
    },
    #[error("connecting to segment store {endpoint} took longer than {timeout:?}")]
    ConnectTimeout {
        endpoint: Endpoint,
        timeout: Duration,
    },
    #[error("connection to segment store {endpoint} failed: {source}")]
    Io {
        endpoint: Endpoint,
        source: Arc<std::io::Error>,
    },
    #[error("segment store {endpoint} closed the connection")]
    Closed { endpoint: Endpoint },
    /// The server's version range does not contain [`wire::WIRE_VERSION`].
    #[error("segment store {endpoint} speaks wire versions {low}..={high}, not {ours}", ours = wire::WIRE_VERSION)]
    IncompatibleVersion {
        endpoint: Endpoint,
        low: i32,
        high: i32,
    },
    /// A frame that makes no sense here (an unexpected command, a reply to another request).
    #[error("segment store {endpoint} violated the protocol: {message}")]
    Protocol { endpoint: Endpoint, message: String },
    /// A frame that could not be split, decoded or encoded.
    #[error("segment store {endpoint}: {source}")]
    Wire {
        endpoint: Endpoint,
        source: wire::WireError,
    },
}

/// A connection that has exchanged `Hello`.
///
/// For requests the client has no higher-level call for; segment writers and readers make
/// their own connections.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use pravaha_client::segment::{next_request_id, Connection, ConnectionConfig, Endpoint};
/// use pravaha_wire::{GetStreamSegmentInfo, Reply, Request};
///
/// let endpoint = Endpoint::new("127.0.0.1", 12345);
/// let mut connection = Connection::connect(&endpoint, &ConnectionConfig::default()).await?;
/// let request = Request::GetStreamSegmentInfo(GetStreamSegmentInfo {
///     request_id: next_request_id(),
///     segment_name: "shop/orders/0.#epoch.0".into(),
///     delegation_token: String::new(),
/// });
/// match connection.exchange(&request).await? {
///     Reply::StreamSegmentInfo(info) => println!("{} bytes", info.write_offset),
///     other => println!("answered {}", other.name()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Connection {
    reader: ConnectionReader,
    writer: ConnectionWriter,
}

impl Connection {
    /// Dials `endpoint` and exchanges `Hello`, both within `config.connect_timeout`.
    pub async fn connect(
        endpoint: &Endpoint,
        config: &ConnectionConfig,
    ) -> Result<Self, ConnectionError> {
        tokio::time::timeout(config.connect_timeout, Self::dial(endpoint, config))
            .await
            .map_err(|_| ConnectionError::ConnectTimeout {
                endpoint: endpoint.clone(),
                timeout: config.connect_timeout,
            })?
    }

    async fn dial(endpoint: &Endpoint, config: &ConnectionConfig) -> Result<Self, ConnectionError> {
        let stream = TcpStream::connect((endpoint.host(), endpoint.port()))
            .await
            .map_err(|error| ConnectionError::Connect {
                endpoint: endpoint.clone(),
                source: Arc::new(error),
            })?;
        stream
            .set_nodelay(true)
            .map_err(|error| io_error(endpoint, error))?;
        let (read, write) = stream.into_split();
        let mut connection = Self {
            reader: ConnectionReader {
                endpoint: endpoint.clone(),
                stream: read,
                input: BytesMut::with_capacity(INPUT_CAPACITY),
                max_frame_payload: config.max_frame_payload.min(wire::MAX_FRAME_PAYLOAD),
            },
            writer: ConnectionWriter {
                endpoint: endpoint.clone(),
                stream: write,
                output: BytesMut::new(),
            },
        };
        let hello = Request::Hello(wire::Hello {
            high_version: wire::WIRE_VERSION,
            low_version: wire::OLDEST_COMPATIBLE_VERSION,
        });
        match connection.exchange(&hello).await? {
            Reply::Hello(server)
                if server.low_version <= wire::WIRE_VERSION
                    && wire::WIRE_VERSION <= server.high_version =>
            {
                tracing::debug!(%endpoint, high = server.high_version, low = server.low_version, "connected to segment store");
                Ok(connection)
            }
            Reply::Hello(server) => Err(ConnectionError::IncompatibleVersion {
                endpoint: endpoint.clone(),
                low: server.low_version,
                high: server.high_version,
            }),
            other => Err(connection.protocol(format!("answered Hello with {}", other.name()))),
        }
    }

    /// The segment store at the other end.
    pub fn endpoint(&self) -> &Endpoint {
        &self.reader.endpoint
    }

    /// Writes one request.
    pub async fn send(&mut self, request: &Request) -> Result<(), ConnectionError> {
        self.writer.send(request).await
    }

    /// Reads the next reply, whatever it is.
    pub async fn receive(&mut self) -> Result<Reply, ConnectionError> {
        self.reader.read_reply().await
    }

    /// Writes `request` and reads until its reply: `KeepAlive` frames are skipped, and a reply
    /// carrying another request id is a protocol violation (exchanges are sequential). Not for
    /// appends, whose acks are correlated by writer id.
    pub async fn exchange(&mut self, request: &Request) -> Result<Reply, ConnectionError> {
        self.send(request).await?;
        loop {
            let reply = self.receive().await?;
            if reply == Reply::KeepAlive {
                continue;
            }
            if reply.request_id() != request.request_id() {
                return Err(self.protocol(format!(
                    "answered {} {} with {} for request {}",
                    request.name(),
                    request.request_id(),
                    reply.name(),
                    reply.request_id()
                )));
            }
            return Ok(reply);
        }
    }

    /// The read half and the write half, for a session that reads replies while it writes.
    pub(crate) fn into_split(self) -> (ConnectionReader, ConnectionWriter) {
        (self.reader, self.writer)
    }

    fn protocol(&self, message: String) -> ConnectionError {
        ConnectionError::Protocol {
            endpoint: self.endpoint().clone(),
            message,
        }
    }
}

/// The read half: replies, one frame at a time.
#[derive(Debug)]
pub(crate) struct ConnectionReader {
    endpoint: Endpoint,
    stream: OwnedReadHalf,
    /// Received bytes not yet split into frames; at most one frame beyond what is split.
    input: BytesMut,
    max_frame_payload: usize,
}

impl ConnectionReader {
    /// Reads the next reply. Cancel-safe: bytes received before a cancellation stay buffered for
    /// the next call.
    pub async fn read_reply(&mut self) -> Result<Reply, ConnectionError> {
        loop {
            let frame = wire::split_frame(&mut self.input, self.max_frame_payload)
                .map_err(|source| self.wire(source))?;
            if let Some((type_code, payload)) = frame {
                return Reply::decode(type_code, payload).map_err(|source| self.wire(source));
            }
            let received = self
                .stream
                .read_buf(&mut self.input)
                .await
                .map_err(|error| io_error(&self.endpoint, error))?;
            if received == 0 {
                return Err(ConnectionError::Closed {
                    endpoint: self.endpoint.clone(),
                });
            }
        }
    }

    /// The segment store at the other end.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn wire(&self, source: wire::WireError) -> ConnectionError {
        ConnectionError::Wire {
            endpoint: self.endpoint.clone(),
            source,
        }
    }
}

/// The write half: requests are encoded into a buffer and written from it.
#[derive(Debug)]
pub(crate) struct ConnectionWriter {
    endpoint: Endpoint,
    stream: OwnedWriteHalf,
    /// Encoded frames not yet written. Its size is the caller's to bound ([`Self::buffered`]).
    output: BytesMut,
}

impl ConnectionWriter {
    /// Encodes `request` at the end of the buffer, whole or not at all.
    pub fn enqueue(&mut self, request: &Request) -> Result<(), ConnectionError> {
        request
            .encode(&mut self.output)
            .map_err(|source| ConnectionError::Wire {
                endpoint: self.endpoint.clone(),
                source,
            })
    }

    /// Bytes encoded and not yet written.
    pub fn buffered(&self) -> usize {
        self.output.len()
    }

    /// Writes some of the buffer (waits until the socket takes at least one byte). Cancel-safe:
    /// nothing is lost if the future is dropped before it completes.
    pub async fn write_some(&mut self) -> Result<(), ConnectionError> {
        self.stream
            .write_buf(&mut self.output)
            .await
            .map_err(|error| io_error(&self.endpoint, error))?;
        Ok(())
    }

    /// Writes the whole buffer.
    pub async fn write_all(&mut self) -> Result<(), ConnectionError> {
        while !self.output.is_empty() {
            self.write_some().await?;
        }
        Ok(())
    }

    /// Encodes and writes one request.
    pub async fn send(&mut self, request: &Request) -> Result<(), ConnectionError> {
        self.enqueue(request)?;
        self.write_all().await
    }
}

fn io_error(endpoint: &Endpoint, error: std::io::Error) -> ConnectionError {
    ConnectionError::Io {
        endpoint: endpoint.clone(),
        source: Arc::new(error),
    }
}

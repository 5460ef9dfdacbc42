//! [`SegmentClient`]: configuration, the request/reply exchange every method goes through, and
//! the append session. The requests themselves are in `segments.rs` and `tables.rs`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use pravaha_wire::{self as wire, Reply, Request};

use crate::error::failure;
use crate::pool::Pool;
use crate::{ClientError, Endpoint};

/// Supplies the delegation token of requests made with none (`""`). A process that acts for
/// itself rather than for one stream's client (the controller, on its metadata table and in its
/// workflows) signs its own, as Pravega's controller uses a token of its own.
pub type TokenSource = Arc<dyn Fn() -> String + Send + Sync>;

/// How a [`SegmentClient`] behaves.
#[derive(Clone)]
pub struct ClientConfig {
    /// Bound on one whole request: waiting for a connection, dialling, `Hello`, writing the
    /// request and reading its reply. Must exceed the server's wait for data at a segment's
    /// tail (15 s) for tail reads to complete.
    pub request_timeout: Duration,
    /// Idle connections kept per segment store; more are closed when their request completes.
    pub max_idle_per_endpoint: usize,
    /// The token of requests made with none; `None`: they carry none (auth off).
    pub default_token: Option<TokenSource>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("request_timeout", &self.request_timeout)
            .field("max_idle_per_endpoint", &self.max_idle_per_endpoint)
            .field("default_token", &self.default_token.is_some())
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_idle_per_endpoint: 16,
            default_token: None,
        }
    }
}

/// A client of any number of segment stores. Clones share the connection pools.
///
/// Every method names the segment store (`at`) and passes `token`, the delegation token for
/// the segment's stream (`""` when auth is off, or to use [`ClientConfig::default_token`]).
#[derive(Clone)]
pub struct SegmentClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    pool: Pool,
}

impl std::fmt::Debug for SegmentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Request ids are unique in the process, as the official clients make them.
static NEXT_REQUEST_ID: AtomicI64 = AtomicI64::new(1);

pub(crate) fn next_request_id() -> i64 {
    NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)
}

impl SegmentClient {
    pub fn new(config: ClientConfig) -> Self {
        let pool = Pool::new(config.max_idle_per_endpoint);
        Self {
            inner: Arc::new(Inner { config, pool }),
        }
    }

    /// The token a request carries: `given`, or the default token when `given` is empty.
    pub(crate) fn token(&self, given: &str) -> String {
        match &self.inner.config.default_token {
            Some(source) if given.is_empty() => source(),
            _ => given.to_owned(),
        }
    }

    /// Idle pooled connections to `at` (for tests and diagnostics).
    pub fn idle_connections(&self, at: Endpoint) -> usize {
        self.inner.pool.idle_count(at)
    }

    /// Appends `data` verbatim to `segment` as writer `writer_id`, event number
    /// `event_number`, and returns the segment's length after it.
    ///
    /// Runs a whole append session on a connection of its own (`SetupAppend`, one
    /// `AppendBlockEnd` counting one event, `DataAppended`), then closes it: meant for tools
    /// and tests, not for streaming. Pravega readers expect a stream segment to hold framed
    /// events, so frame the payload with [`frame_event`] unless the segment holds raw bytes.
    /// An event number not above the writer's last one is acknowledged without being written
    /// again (idempotence), and the current length returned.
    pub async fn append(
        &self,
        at: Endpoint,
        segment: &str,
        writer_id: u128,
        event_number: i64,
        data: Bytes,
        token: &str,
    ) -> Result<i64, ClientError> {
        let setup_id = next_request_id();
        let mut setup = BytesMut::new();
        Request::SetupAppend(wire::SetupAppend {
            request_id: setup_id,
            writer_id,
            segment: segment.to_owned(),
            delegation_token: self.token(token),
        })
        .encode(&mut setup)?;
        let block_id = next_request_id();
        let mut block = BytesMut::new();
        Request::AppendBlockEnd(wire::AppendBlockEnd {
            writer_id,
            size_of_whole_events: i32::try_from(data.len()).unwrap_or(i32::MAX),
            data,
            num_events: 1,
            last_event_number: event_number,
            request_id: block_id,
        })
        .encode(&mut block)?;
        let session = async {
            let mut lease = self.inner.pool.dedicated(at).await?;
            match lease.connection.exchange(&setup, setup_id).await? {
                Reply::AppendSetup(_) => {}
                other => return Err(failure("SetupAppend", other)),
            }
            match lease.connection.exchange(&block, block_id).await? {
                Reply::DataAppended(ack) => Ok(ack.current_segment_write_offset),
                other => Err(failure("AppendBlockEnd", other)),
            }
        };
        self.timed(at, "AppendBlockEnd", session).await
    }

    /// Sends `request` to `at` on a pooled connection and returns the reply with its id (any
    /// reply: error replies are mapped by the caller). The connection is pooled again only if
    /// the exchange completed.
    pub(crate) async fn call(&self, at: Endpoint, request: Request) -> Result<Reply, ClientError> {
        let name = request.name();
        let request_id = request.request_id();
        let mut frame = BytesMut::new();
        request.encode(&mut frame)?;
        let exchange = async {
            let mut lease = self.inner.pool.lease(at).await?;
            let reply = lease.connection.exchange(&frame, request_id).await?;
            self.inner.pool.give_back(at, lease);
            Ok(reply)
        };
        self.timed(at, name, exchange).await
    }

    /// Runs `exchange` within the request time-out. A connection in use when it runs out is
    /// dropped with the future.
    async fn timed<T>(
        &self,
        at: Endpoint,
        request: &'static str,
        exchange: impl std::future::Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let result = tokio::time::timeout(self.inner.config.request_timeout, exchange)
            .await
            .unwrap_or(Err(ClientError::Timeout {
                endpoint: at,
                request,
            }));
        if let Err(error) = &result {
            tracing::debug!(endpoint = %at, request, %error, "segment store request failed");
        }
        result
    }
}

/// An event record as Pravega clients frame events in stream segments:
/// `[type 0: i32][length: i32][payload]`, big-endian.
pub fn frame_event(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(wire::HEADER_LEN + payload.len());
    out.put_i32(wire::EVENT_TYPE);
    out.put_i32(i32::try_from(payload.len()).unwrap_or(i32::MAX));
    out.put_slice(payload);
    out.freeze()
}

/// Splits bytes read from a stream segment into event payloads (the inverse of
/// [`frame_event`]); an incomplete event at the end is left out. Returns the payloads and how
/// many bytes they used, or an error naming the offset of a record that is not an event.
pub fn parse_events(data: &Bytes) -> Result<(Vec<Bytes>, usize), ClientError> {
    let mut events = Vec::new();
    let mut at = 0;
    while data.len() - at >= wire::HEADER_LEN {
        let header = &data[at..at + wire::HEADER_LEN];
        let kind = i32::from_be_bytes(header[..4].try_into().expect("4 bytes"));
        let length = i32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else {
            return Err(ClientError::Protocol(format!(
                "negative event length at offset {at}"
            )));
        };
        if kind != wire::EVENT_TYPE {
            return Err(ClientError::Protocol(format!(
                "record of type {kind} at offset {at}"
            )));
        }
        let end = at + wire::HEADER_LEN + length;
        if end > data.len() {
            break;
        }
        events.push(data.slice(at + wire::HEADER_LEN..end));
        at = end;
    }
    Ok((events, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_events_parse_back() {
        let mut data = BytesMut::new();
        for payload in [&b"one"[..], b"", b"three"] {
            data.extend_from_slice(&frame_event(payload));
        }
        let whole = data.len();
        data.extend_from_slice(&frame_event(b"torn")[..6]);
        let (events, used) = parse_events(&data.freeze()).unwrap();
        assert_eq!(
            events,
            vec![Bytes::from("one"), Bytes::new(), Bytes::from("three")]
        );
        assert_eq!(used, whole);
        let mut bad = BytesMut::new();
        bad.put_i32(7);
        bad.put_i32(0);
        assert!(parse_events(&bad.freeze()).is_err());
    }

    #[test]
    fn request_ids_are_fresh_and_positive() {
        let first = next_request_id();
        let second = next_request_id();
        assert!(first > 0);
        assert!(second > first);
    }

    #[test]
    fn events_are_framed_big_endian() {
        assert_eq!(
            &frame_event(b"abc")[..],
            &[0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'][..]
        );
    }

    #[test]
    fn defaults_outlast_the_servers_tail_wait() {
        let config = ClientConfig::default();
        assert_eq!(config.request_timeout, Duration::from_secs(30));
        assert_eq!(config.max_idle_per_endpoint, 16);
    }
}

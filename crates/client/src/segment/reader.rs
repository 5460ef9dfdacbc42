//! [`SegmentReader`]: byte ranges of one segment and its information, one request at a time on
//! a connection it keeps.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pravaha_wire::{self as wire, Reply, Request};

use super::connection::{Connection, ConnectionConfig, ConnectionError};
use super::{next_request_id, Endpoint, Locator};
use crate::config::RetryPolicy;

/// How a reader behaves.
///
/// ```
/// use std::time::Duration;
///
/// use pravaha_client::segment::{ReaderConfig, RetryPolicy};
///
/// let config = ReaderConfig {
///     retry: RetryPolicy { max_attempts: 3, ..RetryPolicy::default() },
///     ..ReaderConfig::default()
/// };
/// assert_eq!(config.request_timeout, Duration::from_secs(30));
/// assert!(!config.retry.allows_another(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderConfig {
    pub connection: ConnectionConfig,
    /// Bounds one request once connected. A read at the tail of an open segment is held by the
    /// segment store until data arrives or about 15 s pass, so keep this well above that.
    pub request_timeout: Duration,
    /// Attempts after connection failures, time-outs and `WrongHost`.
    pub retry: RetryPolicy,
}

impl Default for ReaderConfig {
    /// 30 s per request (as the official clients), [`RetryPolicy::default`].
    fn default() -> Self {
        Self {
            connection: ConnectionConfig::default(),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// Data read from a segment.
///
/// ```no_run
/// # use pravaha_client::segment::SegmentReader;
/// # async fn example(mut reader: SegmentReader) -> Result<(), Box<dyn std::error::Error>> {
/// // Everything from offset 0 to the end of a sealed segment.
/// let mut offset = 0;
/// loop {
///     let read = reader.read(offset, 1 << 20).await?;
///     println!("{} bytes at offset {}", read.data.len(), read.offset);
///     offset = read.end_offset();
///     if read.end_of_segment {
///         break;
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRead {
    /// Where `data` starts: the offset asked for.
    pub offset: i64,
    /// Possibly less than asked for; empty after a tail wait that saw no data, or at the end of
    /// a sealed segment.
    pub data: Bytes,
    /// The data reaches the segment's current length.
    pub at_tail: bool,
    /// The segment is sealed and the data reaches its end: nothing more will ever be read.
    pub end_of_segment: bool,
}

impl SegmentRead {
    /// The offset after `data`: where the next read starts.
    pub fn end_offset(&self) -> i64 {
        self.offset + self.data.len() as i64
    }
}

/// What a segment store says about a segment.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use pravaha_client::segment::{Endpoint, ReaderConfig, SegmentReader, StaticLocator};
///
/// let locator = Arc::new(StaticLocator::new(Endpoint::new("127.0.0.1", 12345)));
/// let mut reader = SegmentReader::new(locator, "shop/orders/0.#epoch.0", ReaderConfig::default());
/// let info = reader.segment_info().await?;
/// println!(
///     "{}: {} readable bytes, {}",
///     info.segment,
///     info.length - info.start_offset,
///     if info.sealed { "sealed" } else { "open" },
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub segment: String,
    /// The lowest offset still readable (data below it was truncated).
    pub start_offset: i64,
    /// The segment's length: the offset of the next append.
    pub length: i64,
    pub sealed: bool,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// Why a read or an information request failed.
///
/// Truncation is the one an application usually handles: the data it wanted is gone, and
/// reading resumes at the segment's new start.
///
/// ```no_run
/// # use pravaha_client::segment::SegmentReader;
/// # async fn example(mut reader: SegmentReader) -> Result<(), Box<dyn std::error::Error>> {
/// # let offset = 0;
/// use pravaha_client::segment::ReaderError;
///
/// let read = match reader.read(offset, 1 << 20).await {
///     Err(ReaderError::Truncated { start_offset, .. }) => {
///         reader.read(start_offset, 1 << 20).await?
///     }
///     other => other?,
/// };
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReaderError {
    /// The offset lies below the segment's start offset: that data was truncated.
    #[error("segment {segment} is truncated at {start_offset}; offset {offset} is gone")]
    Truncated {
        segment: String,
        offset: i64,
        start_offset: i64,
    },
    #[error("segment {0} does not exist")]
    NoSuchSegment(String),
    /// The token was reported expired even after asking the locator for a fresh one.
    #[error("the delegation token for segment {0} has expired")]
    TokenExpired(String),
    #[error("the delegation token for segment {segment} was refused: {message}")]
    TokenRefused { segment: String, message: String },
    #[error("segment store {endpoint} does not own segment {segment}")]
    WrongHost { segment: String, endpoint: Endpoint },
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("could not locate segment {segment}: {message}")]
    Locate { segment: String, message: String },
    #[error("{request} of segment {segment} on {endpoint} took longer than {timeout:?}")]
    Timeout {
        segment: String,
        endpoint: Endpoint,
        request: &'static str,
        timeout: Duration,
    },
    #[error("gave up on segment {segment} after {attempts} failed attempts; last: {last}")]
    RetriesExhausted {
        segment: String,
        attempts: u32,
        last: Box<ReaderError>,
    },
    /// `ErrorMessage`: code 0 = illegal argument (e.g. a table segment), -1 = a server failure.
    #[error("segment store refused the request on {segment} (code {code}): {message}")]
    Server {
        segment: String,
        code: i32,
        message: String,
    },
    #[error("segment store violated the protocol on {segment}: {message}")]
    Protocol { segment: String, message: String },
    #[error("invalid read of segment {segment}: {message}")]
    InvalidArgument { segment: String, message: String },
}

/// What to do with one reply.
enum Handled<T> {
    Done(T),
    /// Try again (after a pause), looking the endpoint or token up again as flagged.
    Retry {
        cause: ReaderError,
        endpoint: bool,
        token: bool,
    },
    Fail(ReaderError),
}

/// Reads one segment. Requests are sequential (`&mut self`); the connection is kept between
/// them and replaced after any failure.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use pravaha_client::segment::{Endpoint, ReaderConfig, SegmentReader, StaticLocator};
///
/// let locator = Arc::new(StaticLocator::new(Endpoint::new("127.0.0.1", 12345)));
/// let mut reader = SegmentReader::new(locator, "shop/orders/0.#epoch.0", ReaderConfig::default());
/// let info = reader.segment_info().await?;
/// // The last KiB of the segment (or all of it, if shorter).
/// let mut offset = (info.length - 1024).max(info.start_offset);
/// while offset < info.length {
///     let read = reader.read(offset, (info.length - offset) as usize).await?;
///     offset = read.end_offset();
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SegmentReader {
    segment: String,
    locator: Arc<dyn Locator>,
    config: ReaderConfig,
    connection: Option<Connection>,
}

impl SegmentReader {
    /// A reader of `segment`; it connects on the first request.
    pub fn new(
        locator: Arc<dyn Locator>,
        segment: impl Into<String>,
        config: ReaderConfig,
    ) -> Self {
        Self {
            segment: segment.into(),
            locator,
            config,
            connection: None,
        }
    }

    /// The qualified name of the segment read.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// Reads up to `max_len` bytes at `offset` (the segment store may return less). At the tail
    /// of an open segment the segment store waits for data (about 15 s) and may then answer
    /// with no data and `at_tail`. At the end of a sealed segment: no data, `end_of_segment`.
    pub async fn read(&mut self, offset: i64, max_len: usize) -> Result<SegmentRead, ReaderError> {
        if offset < 0 {
            return Err(ReaderError::InvalidArgument {
                segment: self.segment.clone(),
                message: format!("negative offset {offset}"),
            });
        }
        let suggested_length = i32::try_from(max_len).unwrap_or(i32::MAX);
        let segment = self.segment.clone();
        self.request(
            "ReadSegment",
            |token| {
                Request::ReadSegment(wire::ReadSegment {
                    segment: segment.clone(),
                    offset,
                    suggested_length,
                    delegation_token: token,
                    request_id: next_request_id(),
                })
            },
            |endpoint, reply| read_reply(&segment, endpoint, offset, reply),
        )
        .await
    }

    /// The segment's start offset, length and whether it is sealed.
    pub async fn segment_info(&mut self) -> Result<SegmentInfo, ReaderError> {
        let segment = self.segment.clone();
        self.request(
            "GetStreamSegmentInfo",
            |token| {
                Request::GetStreamSegmentInfo(wire::GetStreamSegmentInfo {
                    request_id: next_request_id(),
                    segment_name: segment.clone(),
                    delegation_token: token,
                })
            },
            |endpoint, reply| match reply {
                Reply::StreamSegmentInfo(info) if !info.exists || info.is_deleted => {
                    Handled::Fail(ReaderError::NoSuchSegment(segment.clone()))
                }
                Reply::StreamSegmentInfo(info) => Handled::Done(SegmentInfo {
                    segment: info.segment_name,
                    start_offset: info.start_offset,
                    length: info.write_offset,
                    sealed: info.is_sealed,
                    last_modified_ms: info.last_modified,
                }),
                other => failure(&segment, endpoint, "GetStreamSegmentInfo", other),
            },
        )
        .await
    }

    /// Sends the request `build` makes (given the delegation token) with the retries of reads
    /// (connection failures, time-outs, `WrongHost`, expired tokens) and returns the reply if
    /// `expected` takes it; the replies every request shares (missing segment, refused token,
    /// server error) become their [`ReaderError`]. For administration and table requests of the
    /// byte-stream and table clients.
    pub(crate) async fn exchange(
        &mut self,
        name: &'static str,
        build: impl Fn(String) -> Request,
        expected: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, ReaderError> {
        let segment = self.segment.clone();
        self.request(name, build, |endpoint, reply| {
            if expected(&reply) {
                Handled::Done(reply)
            } else {
                failure(&segment, endpoint, name, reply)
            }
        })
        .await
    }

    /// Sends the request `build` makes (given the token) and interprets its reply, retrying
    /// connection failures, time-outs, `WrongHost` and expired tokens as the policy allows.
    async fn request<T>(
        &mut self,
        name: &'static str,
        build: impl Fn(String) -> Request,
        interpret: impl Fn(&Endpoint, Reply) -> Handled<T>,
    ) -> Result<T, ReaderError> {
        let mut failures = 0u32;
        let (mut refresh_endpoint, mut refresh_token) = (false, false);
        loop {
            let cause = match self
                .attempt(name, &build, refresh_endpoint, refresh_token)
                .await
            {
                Ok((endpoint, reply)) => match interpret(&endpoint, reply) {
                    Handled::Done(value) => return Ok(value),
                    Handled::Fail(error) => return Err(error),
                    Handled::Retry {
                        cause,
                        endpoint,
                        token,
                    } => {
                        (refresh_endpoint, refresh_token) = (endpoint, token);
                        cause
                    }
                },
                Err(cause) => cause,
            };
            // Whatever failed, the connection is not trusted again.
            self.connection = None;
            failures += 1;
            tracing::debug!(segment = %self.segment, request = name, error = %cause, "segment request failed");
            let retryable = !matches!(
                &cause,
                ReaderError::Connection(ConnectionError::IncompatibleVersion { .. })
            );
            if !retryable {
                return Err(cause);
            }
            if !self.config.retry.allows_another(failures) {
                return Err(ReaderError::RetriesExhausted {
                    segment: self.segment.clone(),
                    attempts: failures,
                    last: Box::new(cause),
                });
            }
            tokio::time::sleep(self.config.retry.backoff(failures)).await;
        }
    }

    /// One exchange: locate, connect if needed, send, wait for the reply (bounded).
    async fn attempt(
        &mut self,
        name: &'static str,
        build: &impl Fn(String) -> Request,
        refresh_endpoint: bool,
        refresh_token: bool,
    ) -> Result<(Endpoint, Reply), ReaderError> {
        let located = async {
            let endpoint = self
                .locator
                .endpoint(&self.segment, refresh_endpoint)
                .await?;
            let token = self.locator.token(&self.segment, refresh_token).await?;
            Ok::<_, super::LocatorError>((endpoint, token))
        };
        let (endpoint, token) = located.await.map_err(|error| ReaderError::Locate {
            segment: self.segment.clone(),
            message: error.to_string(),
        })?;
        if self
            .connection
            .as_ref()
            .is_some_and(|connection| *connection.endpoint() != endpoint)
        {
            self.connection = None;
        }
        if self.connection.is_none() {
            self.connection = Some(Connection::connect(&endpoint, &self.config.connection).await?);
        }
        let connection = self.connection.as_mut().expect("connected above");
        let request = build(token);
        match tokio::time::timeout(self.config.request_timeout, connection.exchange(&request)).await
        {
            Ok(reply) => Ok((endpoint, reply?)),
            Err(_) => Err(ReaderError::Timeout {
                segment: self.segment.clone(),
                endpoint,
                request: name,
                timeout: self.config.request_timeout,
            }),
        }
    }
}

fn read_reply(
    segment: &str,
    endpoint: &Endpoint,
    offset: i64,
    reply: Reply,
) -> Handled<SegmentRead> {
    match reply {
        Reply::SegmentRead(read) if read.offset != offset => Handled::Fail(ReaderError::Protocol {
            segment: segment.to_owned(),
            message: format!("asked for offset {offset}, got data at {}", read.offset),
        }),
        Reply::SegmentRead(read) => Handled::Done(SegmentRead {
            offset,
            data: read.data,
            at_tail: read.at_tail,
            end_of_segment: read.end_of_segment,
        }),
        // The official client takes a sealed answer to a read as the end of the segment.
        Reply::SegmentIsSealed(_) => Handled::Done(SegmentRead {
            offset,
            data: Bytes::new(),
            at_tail: true,
            end_of_segment: true,
        }),
        Reply::SegmentIsTruncated(truncated) => Handled::Fail(ReaderError::Truncated {
            segment: segment.to_owned(),
            offset,
            start_offset: truncated.start_offset,
        }),
        other => failure(segment, endpoint, "ReadSegment", other),
    }
}

/// The replies every request shares: missing segment, ownership, tokens, server errors.
fn failure<T>(segment: &str, endpoint: &Endpoint, request: &str, reply: Reply) -> Handled<T> {
    let segment = segment.to_owned();
    match reply {
        Reply::NoSuchSegment(_) => Handled::Fail(ReaderError::NoSuchSegment(segment)),
        Reply::WrongHost(_) => Handled::Retry {
            cause: ReaderError::WrongHost {
                segment,
                endpoint: endpoint.clone(),
            },
            endpoint: true,
            token: false,
        },
        Reply::AuthTokenCheckFailed(failed) if failed.error_code == 1 => Handled::Retry {
            cause: ReaderError::TokenExpired(segment),
            endpoint: false,
            token: true,
        },
        Reply::AuthTokenCheckFailed(failed) => Handled::Fail(ReaderError::TokenRefused {
            segment,
            message: failed.server_stack_trace,
        }),
        Reply::ErrorMessage(error) => Handled::Fail(ReaderError::Server {
            segment,
            code: error.error_code,
            message: error.message,
        }),
        other => Handled::Fail(ReaderError::Protocol {
            segment,
            message: format!("answered {request} with {}", other.name()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_to_read(reply: Reply) -> Handled<SegmentRead> {
        read_reply("s", &Endpoint::new("localhost", 1), 10, reply)
    }

    #[test]
    fn read_replies_map_to_typed_outcomes() {
        let data = Reply::SegmentRead(wire::SegmentRead {
            segment: "s".into(),
            offset: 10,
            at_tail: true,
            end_of_segment: false,
            data: Bytes::from_static(b"abc"),
            request_id: 1,
        });
        assert!(
            matches!(reply_to_read(data), Handled::Done(read) if read.end_offset() == 13 && read.at_tail)
        );
        let elsewhere = Reply::SegmentRead(wire::SegmentRead {
            segment: "s".into(),
            offset: 11,
            at_tail: false,
            end_of_segment: false,
            data: Bytes::new(),
            request_id: 1,
        });
        assert!(matches!(
            reply_to_read(elsewhere),
            Handled::Fail(ReaderError::Protocol { .. })
        ));
        let truncated = Reply::SegmentIsTruncated(wire::SegmentIsTruncated {
            request_id: 1,
            segment: "s".into(),
            start_offset: 40,
            server_stack_trace: String::new(),
            offset: 10,
        });
        assert!(matches!(
            reply_to_read(truncated),
            Handled::Fail(ReaderError::Truncated {
                start_offset: 40,
                offset: 10,
                ..
            })
        ));
        let sealed = Reply::SegmentIsSealed(wire::SegmentIsSealed {
            request_id: 1,
            segment: "s".into(),
            server_stack_trace: String::new(),
            offset: 10,
        });
        assert!(
            matches!(reply_to_read(sealed), Handled::Done(read) if read.end_of_segment && read.data.is_empty())
        );
    }

    #[test]
    fn tokens_wrong_hosts_and_errors() {
        let expired = Reply::AuthTokenCheckFailed(wire::AuthTokenCheckFailed {
            request_id: 1,
            server_stack_trace: "expired".into(),
            error_code: 1,
        });
        assert!(matches!(
            reply_to_read(expired),
            Handled::Retry {
                cause: ReaderError::TokenExpired(_),
                token: true,
                endpoint: false
            }
        ));
        let refused = Reply::AuthTokenCheckFailed(wire::AuthTokenCheckFailed {
            request_id: 1,
            server_stack_trace: "no".into(),
            error_code: 0,
        });
        assert!(matches!(
            reply_to_read(refused),
            Handled::Fail(ReaderError::TokenRefused { .. })
        ));
        let moved = Reply::WrongHost(wire::WrongHost {
            request_id: 1,
            segment: "s".into(),
            correct_host: String::new(),
            server_stack_trace: String::new(),
        });
        assert!(matches!(
            reply_to_read(moved),
            Handled::Retry { endpoint: true, .. }
        ));
        let missing = Reply::NoSuchSegment(wire::NoSuchSegment {
            request_id: 1,
            segment: "s".into(),
            server_stack_trace: String::new(),
            offset: 10,
        });
        assert!(matches!(
            reply_to_read(missing),
            Handled::Fail(ReaderError::NoSuchSegment(_))
        ));
        assert!(matches!(
            reply_to_read(Reply::KeepAlive),
            Handled::Fail(ReaderError::Protocol { .. })
        ));
    }
}

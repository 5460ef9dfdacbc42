//! The one error type of this crate, and the mapping from error replies to it.

use std::sync::Arc;

use pravaha_wire::Reply;

use crate::Endpoint;

/// Why a request failed.
///
/// The first group are the segment store's answers (the request was served and refused); the
/// second are failures to get an answer. [`ClientError::is_retryable`] tells them apart for
/// retry loops.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("segment {0} does not exist")]
    NoSuchSegment(String),
    /// Only where "already exists" is a failure; creating an existing segment is
    /// `Ok(Created::AlreadyExisted)`.
    #[error("segment {0} already exists")]
    AlreadyExists(String),
    #[error("segment {0} is sealed")]
    Sealed(String),
    /// A read below the segment's start offset.
    #[error("segment {segment} is truncated at {start_offset}")]
    Truncated { segment: String, start_offset: i64 },
    /// The segment store does not own the segment (or its container is not running there):
    /// look the owner up again and retry.
    #[error("the segment store does not own segment {0}")]
    WrongHost(String),
    /// The delegation token was refused: code 1 = expired (get a new one), 0 = invalid or not
    /// permitted, -1 = unspecified.
    #[error("the delegation token was refused (code {code}): {message}")]
    AuthFailed { code: i32, message: String },
    /// A table key's version differs from the one the request required (including a key that
    /// exists where `KeyVersion::NotExists` was required).
    #[error("a key of table {0} has a different version than required")]
    TableKeyBadVersion(String),
    /// A table key that a version condition names does not exist.
    #[error("a key of table {0} does not exist")]
    TableKeyDoesNotExist(String),
    #[error("table {0} is not empty")]
    TableNotEmpty(String),
    /// A condition on the segment failed: a table request's `table_offset` is not the table's
    /// length, or a merge's attribute condition.
    #[error("a conditional check failed")]
    ConditionalCheckFailed,
    /// The segment store does not serve this request.
    #[error("the segment store does not support {0}")]
    Unsupported(String),
    /// `ErrorMessage`: code 0 = illegal argument (wrong segment kind, too large, bad offset),
    /// -1 = unspecified (a storage failure on the server).
    #[error("the segment store failed the request (code {code}): {message}")]
    Server { code: i32, message: String },
    #[error("could not connect to segment store {endpoint}: {source}")]
    Connect {
        endpoint: Endpoint,
        source: Arc<std::io::Error>,
    },
    /// The connection failed or was closed during an exchange.
    #[error("segment store connection failed: {0}")]
    Io(Arc<std::io::Error>),
    /// A reply that makes no sense here: unexpected command, wrong request id, incompatible
    /// `Hello`, inconsistent contents.
    #[error("segment protocol violation: {0}")]
    Protocol(String),
    #[error("{request} to segment store {endpoint} timed out")]
    Timeout {
        endpoint: Endpoint,
        request: &'static str,
    },
    /// A request that cannot be encoded (a name or value too long) or a reply that cannot be
    /// decoded.
    #[error("segment protocol frame: {0}")]
    Wire(#[from] pravaha_wire::WireError),
}

impl ClientError {
    /// Whether the same request may succeed if retried (after looking the owner up again, for
    /// `WrongHost`): connection failures, time-outs and `WrongHost`.
    ///
    /// A retried request may have been executed already (the failure can come after the
    /// server acted); all requests here are safe to repeat, but a create may then answer
    /// `AlreadyExisted` and a conditional table update `TableKeyBadVersion`.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Io(_) | Self::Timeout { .. } | Self::WrongHost(_)
        )
    }

    pub(crate) fn io(error: std::io::Error) -> Self {
        Self::Io(Arc::new(error))
    }
}

/// The error for a reply that is not the success reply of `request`: the protocol's error
/// replies map to their variants, anything else is a protocol violation.
pub(crate) fn failure(request: &'static str, reply: Reply) -> ClientError {
    match reply {
        Reply::NoSuchSegment(r) => ClientError::NoSuchSegment(r.segment),
        Reply::SegmentAlreadyExists(r) => ClientError::AlreadyExists(r.segment),
        Reply::SegmentIsSealed(r) => ClientError::Sealed(r.segment),
        Reply::SegmentIsTruncated(r) => ClientError::Truncated {
            segment: r.segment,
            start_offset: r.start_offset,
        },
        Reply::WrongHost(r) => ClientError::WrongHost(r.segment),
        Reply::AuthTokenCheckFailed(r) => ClientError::AuthFailed {
            code: r.error_code,
            message: r.server_stack_trace,
        },
        Reply::TableKeyBadVersion(r) => ClientError::TableKeyBadVersion(r.segment),
        Reply::TableKeyDoesNotExist(r) => ClientError::TableKeyDoesNotExist(r.segment),
        Reply::TableSegmentNotEmpty(r) => ClientError::TableNotEmpty(r.segment),
        Reply::ConditionalCheckFailed(_) => ClientError::ConditionalCheckFailed,
        Reply::OperationUnsupported(r) => ClientError::Unsupported(r.operation_name),
        Reply::ErrorMessage(r) => ClientError::Server {
            code: r.error_code,
            message: r.message,
        },
        other => ClientError::Protocol(format!("{request} answered with {}", other.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pravaha_wire as wire;

    #[test]
    fn error_replies_map_to_their_variants() {
        let sealed = Reply::SegmentIsSealed(wire::SegmentIsSealed {
            request_id: 1,
            segment: "s".into(),
            server_stack_trace: String::new(),
            offset: -1,
        });
        assert!(matches!(failure("SealSegment", sealed), ClientError::Sealed(s) if s == "s"));
        let truncated = Reply::SegmentIsTruncated(wire::SegmentIsTruncated {
            request_id: 1,
            segment: "s".into(),
            start_offset: 42,
            server_stack_trace: String::new(),
            offset: 3,
        });
        assert!(matches!(
            failure("ReadSegment", truncated),
            ClientError::Truncated {
                start_offset: 42,
                ..
            }
        ));
        let auth = Reply::AuthTokenCheckFailed(wire::AuthTokenCheckFailed {
            request_id: 1,
            server_stack_trace: "expired".into(),
            error_code: 1,
        });
        assert!(matches!(
            failure("ReadSegment", auth),
            ClientError::AuthFailed { code: 1, message } if message == "expired"
        ));
    }

    #[test]
    fn other_replies_are_protocol_violations() {
        let error = failure("SealSegment", Reply::KeepAlive);
        assert!(
            matches!(&error, ClientError::Protocol(m) if m == "SealSegment answered with KeepAlive"),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn only_transport_failures_and_wrong_host_are_retryable() {
        let endpoint: Endpoint = "127.0.0.1:1".parse().unwrap();
        let io = || Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(ClientError::Connect {
            endpoint,
            source: io()
        }
        .is_retryable());
        assert!(ClientError::Io(io()).is_retryable());
        assert!(ClientError::Timeout {
            endpoint,
            request: "ReadSegment"
        }
        .is_retryable());
        assert!(ClientError::WrongHost("s".into()).is_retryable());
        assert!(!ClientError::NoSuchSegment("s".into()).is_retryable());
        assert!(!ClientError::AuthFailed {
            code: 1,
            message: String::new()
        }
        .is_retryable());
        assert!(!ClientError::ConditionalCheckFailed.is_retryable());
    }
}

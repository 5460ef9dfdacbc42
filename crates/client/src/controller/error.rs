//! [`ControllerError`]: every outcome of a controller request the caller can act on, from the
//! status enums in replies and from gRPC status codes.

use tonic::{Code, Status};

use super::types::{ScopedSegment, ScopedStream};
use crate::config::ConfigError;

/// Why a controller request failed.
///
/// Definite answers (not found, sealed, invalid argument, ...) come back at once; transient
/// failures (the controller unreachable, `UNAVAILABLE`, time-outs) are retried per the
/// [`RetryPolicy`](crate::config::RetryPolicy) and end as [`Self::Unavailable`] when every
/// attempt failed.
///
/// ```
/// use pravaha_client::controller::ControllerError;
///
/// let error = ControllerError::StreamNotSealed { scope: "sc".into(), stream: "st".into() };
/// assert_eq!(error.to_string(), "stream sc/st is not sealed; seal it before deleting it");
/// assert!(!error.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// The scope does not exist.
    #[error("scope {scope} does not exist")]
    ScopeNotFound { scope: String },
    /// The stream does not exist.
    #[error("stream {scope}/{stream} does not exist")]
    StreamNotFound { scope: String, stream: String },
    /// Something else the request named does not exist (a segment, an epoch, ...).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The controller answered `ALREADY_EXISTS` (creating a scope or stream that exists is not
    /// an error: those calls answer `false`).
    #[error("already exists: {message}")]
    AlreadyExists { message: String },
    /// The stream is sealed: it takes no more writes, updates or scaling.
    #[error("stream {scope}/{stream} is sealed")]
    StreamSealed { scope: String, stream: String },
    /// Only a sealed stream can be deleted.
    #[error("stream {scope}/{stream} is not sealed; seal it before deleting it")]
    StreamNotSealed { scope: String, stream: String },
    /// Only an empty scope can be deleted.
    #[error("scope {scope} is not empty")]
    ScopeNotEmpty { scope: String },
    /// The request was refused as malformed (bad name, configuration, stream cut, ...); the
    /// message is the controller's (or the client's, for values that cannot be sent).
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },
    /// The request conflicts with the stream's state (e.g. a scale naming segments that are
    /// no longer active, or another change in progress).
    #[error("precondition failed: {message}")]
    PreconditionFailed { message: String },
    /// The credentials were missing or not accepted.
    #[error("unauthenticated: {message}")]
    Unauthenticated { message: String },
    /// The credentials do not allow this request.
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },
    /// The controller does not implement this request.
    #[error("not supported by the controller: {message}")]
    Unsupported { message: String },
    /// Every attempt failed with a transient error; `message` is the last one.
    #[error("controller unavailable after {attempts} attempts: {message}")]
    Unavailable { attempts: u32, message: String },
    /// The controller's TLS certificate was refused (unknown issuer, wrong host name, expired,
    /// ...); not retried.
    #[error("the controller's certificate was refused: {message}")]
    CertificateRejected { message: String },
    /// A wait (for a scale to complete) did not end in time.
    #[error("timed out: {message}")]
    TimedOut { message: String },
    /// The controller failed, or answered something this client cannot use.
    #[error("controller error: {message}")]
    Internal { message: String },
    /// The client configuration could not be used (URI, certificates, credentials).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ControllerError {
    /// Whether trying again later may succeed: only [`Self::Unavailable`] and
    /// [`Self::TimedOut`].
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::TimedOut { .. })
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn scope_not_found(scope: &str) -> Self {
        Self::ScopeNotFound {
            scope: scope.to_owned(),
        }
    }

    pub(crate) fn stream_not_found(stream: &ScopedStream) -> Self {
        Self::StreamNotFound {
            scope: stream.scope.clone(),
            stream: stream.stream.clone(),
        }
    }

    pub(crate) fn stream_sealed(stream: &ScopedStream) -> Self {
        Self::StreamSealed {
            scope: stream.scope.clone(),
            stream: stream.stream.clone(),
        }
    }

    /// A status-enum value this client does not know (prost reads unknown values as the raw
    /// number), or a `FAILURE` answer.
    pub(crate) fn failure(rpc: &str, status: i32) -> Self {
        Self::internal(format!("{rpc} answered status {status}"))
    }

    /// The error for a definite (not retried) gRPC status, given what the request was about.
    pub(crate) fn from_status(status: &Status, target: Target<'_>) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument { message },
            Code::NotFound => not_found(message, target),
            Code::AlreadyExists => Self::AlreadyExists { message },
            Code::FailedPrecondition => precondition(message, target),
            Code::Unauthenticated => Self::Unauthenticated { message },
            Code::PermissionDenied => Self::PermissionDenied { message },
            Code::Unimplemented => Self::Unsupported { message },
            code => Self::Internal {
                message: format!("{code:?}: {message}"),
            },
        }
    }
}

/// What a request was about, to type its `NOT_FOUND` and `FAILED_PRECONDITION` answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Scope(&'a str),
    Stream(&'a ScopedStream),
    Segment(&'a ScopedSegment),
}

impl Target<'_> {
    fn stream(&self) -> Option<&ScopedStream> {
        match self {
            Target::Scope(_) => None,
            Target::Stream(stream) => Some(stream),
            Target::Segment(segment) => Some(&segment.stream),
        }
    }
}

/// Whether the status reports a refused server certificate (tonic reports a failed connection,
/// the TLS handshake included, as `UNAVAILABLE` with the cause in the message; rustls words it
/// "invalid peer certificate: ...").
pub(crate) fn is_certificate_rejection(status: &Status) -> bool {
    status.code() == Code::Unavailable && status.message().contains("invalid peer certificate")
}

/// Whether another attempt may succeed: the controller (or the path to it) was unavailable,
/// the attempt timed out or was cut off, or it lost a race (`ABORTED`).
pub(crate) fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::Unknown
    )
}

/// Our controller answers `scope X does not exist` for a missing scope and `stream S/T does not
/// exist` for a missing stream; Pravega's answer the stream's `NOT_FOUND` for either.
fn not_found(message: String, target: Target<'_>) -> ControllerError {
    match target {
        Target::Scope(scope) => ControllerError::scope_not_found(scope),
        Target::Stream(stream) | Target::Segment(ScopedSegment { stream, .. })
            if message.starts_with("scope ") =>
        {
            ControllerError::scope_not_found(&stream.scope)
        }
        Target::Stream(stream) => ControllerError::stream_not_found(stream),
        Target::Segment(_) if message.starts_with("segment ") => {
            ControllerError::NotFound { message }
        }
        Target::Segment(segment) => ControllerError::stream_not_found(&segment.stream),
    }
}

/// `FAILED_PRECONDITION` answers typed by the controller's message where it is one of the
/// well-known states (sealed, not sealed, not empty).
fn precondition(message: String, target: Target<'_>) -> ControllerError {
    if let Some(stream) = target.stream() {
        if message.ends_with("is not sealed") {
            return ControllerError::StreamNotSealed {
                scope: stream.scope.clone(),
                stream: stream.stream.clone(),
            };
        }
        if message.ends_with("is sealed") {
            return ControllerError::stream_sealed(stream);
        }
    }
    if let Target::Scope(scope) = target {
        if message.ends_with("is not empty") {
            return ControllerError::ScopeNotEmpty {
                scope: scope.to_owned(),
            };
        }
    }
    ControllerError::PreconditionFailed { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_typed_errors() {
        let stream = ScopedStream::new("sc", "st");
        let target = Target::Stream(&stream);
        let error = |status| ControllerError::from_status(&status, target);
        assert!(matches!(
            error(Status::not_found("stream sc/st does not exist")),
            ControllerError::StreamNotFound { .. }
        ));
        assert!(matches!(
            error(Status::not_found("scope sc does not exist")),
            ControllerError::ScopeNotFound { scope } if scope == "sc"
        ));
        assert!(matches!(
            error(Status::failed_precondition("stream sc/st is sealed")),
            ControllerError::StreamSealed { .. }
        ));
        assert!(matches!(
            error(Status::failed_precondition("stream sc/st is not sealed")),
            ControllerError::StreamNotSealed { .. }
        ));
        assert!(matches!(
            error(Status::invalid_argument("bad cut")),
            ControllerError::InvalidArgument { message } if message == "bad cut"
        ));
        assert!(matches!(
            error(Status::internal("boom")),
            ControllerError::Internal { .. }
        ));
        assert!(matches!(
            ControllerError::from_status(
                &Status::failed_precondition("scope sc is not empty"),
                Target::Scope("sc")
            ),
            ControllerError::ScopeNotEmpty { .. }
        ));
        assert!(is_transient(Code::Unavailable) && is_transient(Code::DeadlineExceeded));
        assert!(!is_transient(Code::InvalidArgument) && !is_transient(Code::Internal));
    }
}

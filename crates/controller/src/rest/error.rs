//! REST errors: a status and a message, answered as `{"code": <status>, "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ControllerError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
}

/// The HTTP status of every controller failure (the gRPC front end has its own table).
pub fn status_of(error: &ControllerError) -> StatusCode {
    match error {
        ControllerError::InvalidName(_) | ControllerError::InvalidArgument(_) => {
            StatusCode::BAD_REQUEST
        }
        ControllerError::ScopeNotFound(_)
        | ControllerError::StreamNotFound { .. }
        | ControllerError::SegmentNotFound(_)
        | ControllerError::TransactionNotFound(_) => StatusCode::NOT_FOUND,
        // Pravega answers an update of a sealed stream with a bare 500; 412 says why.
        ControllerError::ScopeNotEmpty(_)
        | ControllerError::StreamNotSealed { .. }
        | ControllerError::StreamSealed { .. }
        | ControllerError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        ControllerError::Metadata(_)
        | ControllerError::SegmentStore(_)
        | ControllerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // Retrying may succeed, as with gRPC's UNAVAILABLE.
        ControllerError::Contention(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<ControllerError> for ApiError {
    fn from(error: ControllerError) -> Self {
        Self::new(status_of(&error), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.status.as_u16(), message = %self.message, "REST request failed");
        }
        let body = serde_json::json!({
            "code": self.status.as_u16(),
            "message": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pravaha_segment_client::ClientError;

    #[test]
    fn every_failure_has_pravegas_status() {
        let stream = || ("s".to_owned(), "t".to_owned());
        let cases = [
            (ControllerError::InvalidName("x".into()), 400),
            (ControllerError::InvalidArgument("x".into()), 400),
            (ControllerError::ScopeNotFound("s".into()), 404),
            (
                ControllerError::StreamNotFound {
                    scope: stream().0,
                    stream: stream().1,
                },
                404,
            ),
            (ControllerError::SegmentNotFound(3), 404),
            (ControllerError::ScopeNotEmpty("s".into()), 412),
            (
                ControllerError::StreamNotSealed {
                    scope: stream().0,
                    stream: stream().1,
                },
                412,
            ),
            (
                ControllerError::StreamSealed {
                    scope: stream().0,
                    stream: stream().1,
                },
                412,
            ),
            (ControllerError::PreconditionFailed("x".into()), 412),
            (
                ControllerError::Metadata(ClientError::Protocol("x".into())),
                500,
            ),
            (
                ControllerError::SegmentStore(ClientError::Protocol("x".into())),
                500,
            ),
            (ControllerError::Internal("x".into()), 500),
            (ControllerError::Contention("k".into()), 503),
        ];
        for (error, code) in cases {
            assert_eq!(status_of(&error).as_u16(), code, "{error}");
        }
    }
}

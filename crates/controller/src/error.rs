//! Controller failures, each mapped by the API layers to Pravega's status codes.

use pravaha_segment_client::ClientError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ControllerError {
    #[error("{0}")]
    InvalidName(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("scope {0} does not exist")]
    ScopeNotFound(String),
    #[error("scope {0} is not empty")]
    ScopeNotEmpty(String),
    #[error("stream {scope}/{stream} does not exist")]
    StreamNotFound { scope: String, stream: String },
    #[error("stream {scope}/{stream} is not sealed")]
    StreamNotSealed { scope: String, stream: String },
    #[error("stream {scope}/{stream} is sealed")]
    StreamSealed { scope: String, stream: String },
    #[error("segment {0} does not exist in this stream")]
    SegmentNotFound(i64),
    #[error("transaction {0} does not exist")]
    TransactionNotFound(String),
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("the metadata store failed: {0}")]
    Metadata(ClientError),
    #[error("the segment store failed: {0}")]
    SegmentStore(ClientError),
    #[error("too many concurrent updates of {0}; try again")]
    Contention(String),
    #[error("internal error: {0}")]
    Internal(String),
}

//! The errors a segment operation can end with.

use std::sync::Arc;

use pravaha_storage::chunk::ChunkError;
use pravaha_storage::log::LogError;

/// Every way a segment operation can fail. Each variant maps to one reply of the segment
/// protocol (see docs/ARCHITECTURE.md), so callers never parse messages.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SegmentError {
    #[error("segment {0} does not exist")]
    NoSuchSegment(String),
    #[error("segment {0} already exists")]
    AlreadyExists(String),
    #[error("segment {0} is sealed")]
    Sealed(String),
    #[error("segment {0} is not sealed")]
    NotSealed(String),
    #[error(
        "segment {segment} is truncated: offset {offset} is before its start offset {start_offset}"
    )]
    Truncated {
        segment: String,
        offset: u64,
        start_offset: u64,
    },
    #[error("bad offset {given} for segment {segment} (expected {expected})")]
    BadOffset {
        segment: String,
        expected: u64,
        given: u64,
    },
    #[error("attribute {attribute:032x} of segment {segment} is {actual:?}, not the expected {expected:?}")]
    AttributeMismatch {
        segment: String,
        attribute: u128,
        expected: Option<i64>,
        actual: Option<i64>,
    },
    #[error("table key does not exist in {0}")]
    TableKeyDoesNotExist(String),
    #[error("table key version mismatch in {segment}: expected {expected:?}, actual {actual:?}")]
    TableKeyVersionMismatch {
        segment: String,
        expected: Option<u64>,
        actual: Option<u64>,
    },
    #[error("segment {segment} is a {actual} segment; the operation needs a {needed} segment")]
    WrongSegmentKind {
        segment: String,
        actual: &'static str,
        needed: &'static str,
    },
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("container {0} is not ready")]
    ContainerNotReady(u32),
    #[error("durable log failed: {0}")]
    Log(Arc<LogError>),
    #[error("chunk storage failed: {0}")]
    ChunkStorage(Arc<ChunkError>),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<LogError> for SegmentError {
    fn from(error: LogError) -> Self {
        Self::Log(Arc::new(error))
    }
}

impl From<ChunkError> for SegmentError {
    fn from(error: ChunkError) -> Self {
        Self::ChunkStorage(Arc::new(error))
    }
}

//! Byte streams: a stream of exactly one segment written and read as plain bytes (no event
//! framing), as Pravega's byte streams are. [`ByteWriter`] appends bytes verbatim (pipelined,
//! exactly once across connection faults), flushes, seals and truncates; [`ByteReader`] reads
//! from any offset, seeks ([`std::io::SeekFrom`]) and waits at the tail for new data.
//!
//! Create the stream with one fixed segment
//! ([`StreamConfiguration::fixed(1)`](crate::controller::types::StreamConfiguration::fixed)).
//! Offsets are byte offsets in that segment; truncation moves the head, and reading below it
//! fails with [`ByteStreamError::Truncated`].
//!
//! ```no_run
//! use std::io::SeekFrom;
//!
//! use pravaha_client::byte::{ByteReader, ByteWriter};
//! use pravaha_client::config::ClientConfig;
//! use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
//! use pravaha_client::controller::ControllerClient;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let controller = ControllerClient::new(ClientConfig::default())?;
//! controller.create_scope("examples").await?;
//! let stream = ScopedStream::new("examples", "log");
//! controller.create_stream(&stream, &StreamConfiguration::fixed(1)).await?;
//!
//! let mut writer = ByteWriter::new(&controller, stream.clone()).await?;
//! writer.write(b"hello, ").await?;
//! writer.write(b"bytes").await?;
//! writer.flush().await?;
//!
//! let mut reader = ByteReader::new(&controller, stream).await?;
//! reader.seek(SeekFrom::Start(7)).await?;
//! let mut buffer = [0u8; 5];
//! reader.read_exact(&mut buffer).await?;
//! assert_eq!(&buffer, b"bytes");
//! # Ok(()) }
//! ```

mod reader;
mod writer;

pub use reader::ByteReader;
pub use writer::ByteWriter;

use std::sync::Arc;

use crate::controller::types::ScopedStream;
use crate::controller::{ControllerClient, ControllerError};
use crate::locator::ControllerLocator;
use crate::segment::{AppendError, Locator, ReaderError, WriterError};

/// Why a byte-stream operation failed.
///
/// ```
/// use pravaha_client::byte::ByteStreamError;
///
/// let error = ByteStreamError::Truncated { segment: "sc/st/0".into(), offset: 3, head: 10 };
/// assert_eq!(error.to_string(), "offset 3 of sc/st/0 was truncated; the stream starts at 10");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ByteStreamError {
    /// Byte streams have exactly one segment.
    #[error("stream {stream} has {segments} segments; a byte stream has exactly one")]
    NotSingleSegment { stream: String, segments: usize },
    /// The stream (its segment) is sealed: nothing more can be written.
    #[error("stream {stream} is sealed")]
    Sealed { stream: String },
    /// The data at `offset` was truncated; the stream now starts at `head`.
    #[error("offset {offset} of {segment} was truncated; the stream starts at {head}")]
    Truncated {
        segment: String,
        offset: i64,
        head: i64,
    },
    /// A seek or truncation to an offset that cannot exist (negative, beyond the tail).
    #[error("invalid offset: {message}")]
    InvalidOffset { message: String },
    /// The stream ended (sealed) before `read_exact` filled its buffer.
    #[error("the stream ended at offset {offset} before the read was complete")]
    UnexpectedEnd { offset: i64 },
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
}

/// The stream's single segment and a locator for it. A sealed stream has no current segment;
/// readers (`sealed_ok`) then take the one at its head.
async fn single_segment(
    controller: &ControllerClient,
    stream: &ScopedStream,
    sealed_ok: bool,
) -> Result<(String, Arc<dyn Locator>), ByteStreamError> {
    let current = controller.get_current_segments(stream).await?;
    let locator = ControllerLocator::new(controller.clone())
        .with_token(stream, current.delegation_token.clone());
    let mut names: Vec<String> = current
        .segments
        .iter()
        .map(|segment| segment.segment.qualified_name())
        .collect();
    if names.is_empty() && sealed_ok {
        let head = controller.get_segments_at_head(stream).await?;
        names = head
            .positions
            .keys()
            .map(|id| stream.segment(*id).qualified_name())
            .collect();
    }
    match names.as_slice() {
        [only] => Ok((only.clone(), Arc::new(locator))),
        [] => Err(ByteStreamError::Sealed {
            stream: stream.to_string(),
        }),
        many => Err(ByteStreamError::NotSingleSegment {
            stream: stream.to_string(),
            segments: many.len(),
        }),
    }
}

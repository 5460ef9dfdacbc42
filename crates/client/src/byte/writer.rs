//! [`ByteWriter`]: appends bytes verbatim to a byte stream's segment.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use pravaha_wire::{self as wire, Reply, Request};

use super::{single_segment, ByteStreamError};
use crate::controller::types::ScopedStream;
use crate::controller::ControllerClient;
use crate::segment::{
    next_request_id, AppendError, AppendFuture, Framing, Locator, ReaderConfig, SegmentReader,
    SegmentWriter, SessionEnd, WriterConfig, WriterError,
};

/// Bytes per append: large writes are cut into pieces of this size so that the in-flight
/// budget keeps flowing (at most [`crate::segment::MAX_EVENT_DATA`]).
const WRITE_PIECE: usize = 1 << 20;

/// Writes a byte stream: bytes are appended verbatim at the segment's tail, pipelined, and
/// exactly once across connection faults (the append session's writer id). Writes return once
/// the bytes are handed to the session; [`flush`](Self::flush) waits until everything written
/// is durable and reports any failure.
///
/// Offsets assume this writer is the stream's only writer: [`current_offset`](Self::current_offset)
/// is the tail when the writer was opened (or last [`seek_to_tail`](Self::seek_to_tail)) plus
/// the bytes written since.
///
/// ```no_run
/// use pravaha_client::byte::ByteWriter;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::controller::ControllerClient;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// let mut writer = ByteWriter::new(&controller, ScopedStream::new("examples", "log")).await?;
/// writer.write(b"some bytes").await?;
/// writer.flush().await?;
/// let end = writer.current_offset();
/// writer.truncate_data_before(end).await?; // drop everything written so far
/// writer.seal().await?; // no more writes, ever
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ByteWriter {
    stream: ScopedStream,
    segment: String,
    /// `None` once sealed (or after the session ended and was closed).
    writer: Option<SegmentWriter>,
    /// Administration and segment information, one request at a time.
    admin: SegmentReader,
    offset: i64,
    /// Appends not yet known to be acknowledged, oldest first.
    pending: VecDeque<AppendFuture>,
}

impl ByteWriter {
    /// Opens a writer on `stream`'s single segment, positioned at its tail.
    pub async fn new(
        controller: &ControllerClient,
        stream: ScopedStream,
    ) -> Result<Self, ByteStreamError> {
        let (segment, locator) = single_segment(controller, &stream, false).await?;
        Self::open(stream, segment, locator).await
    }

    async fn open(
        stream: ScopedStream,
        segment: String,
        locator: Arc<dyn Locator>,
    ) -> Result<Self, ByteStreamError> {
        let config = WriterConfig {
            framing: Framing::Raw,
            ..WriterConfig::default()
        };
        let writer = SegmentWriter::connect(locator.clone(), segment.clone(), config).await?;
        let mut admin = SegmentReader::new(locator, segment.clone(), ReaderConfig::default());
        let info = admin.segment_info().await?;
        Ok(Self {
            stream,
            segment,
            writer: Some(writer),
            admin,
            offset: info.length,
            pending: VecDeque::new(),
        })
    }

    /// The stream this writer appends to.
    pub fn stream(&self) -> &ScopedStream {
        &self.stream
    }

    /// Where the next byte written lands (see the type's note on single writers).
    pub fn current_offset(&self) -> i64 {
        self.offset
    }

    /// Appends all of `data` (in pieces of at most 1 MiB). Waits while the in-flight budget is
    /// spent; fails if the session has failed or the stream is sealed. Returns `data.len()`.
    pub async fn write(&mut self, data: &[u8]) -> Result<usize, ByteStreamError> {
        for piece in data.chunks(WRITE_PIECE) {
            let writer = self.writer.as_ref().ok_or_else(|| self.sealed())?;
            match writer.write(Bytes::copy_from_slice(piece)).await {
                Ok(future) => self.pending.push_back(future),
                Err(WriterError::Ended(_)) => return Err(self.session_end().await),
                Err(error) => return Err(error.into()),
            }
            self.offset += piece.len() as i64;
            self.reap_acknowledged()?;
        }
        Ok(data.len())
    }

    /// Waits until every byte written is durable; the first failure is returned.
    pub async fn flush(&mut self) -> Result<(), ByteStreamError> {
        // The session's own flush ends when every append has an outcome, or when the session
        // ends (sealed segment, failure): then the appends it holds are only handed back by
        // closing it, so their futures must not be awaited.
        if let Some(writer) = &self.writer {
            if writer.flush().await.is_err() {
                self.pending.clear();
                return Err(self.session_end().await);
            }
        }
        while let Some(future) = self.pending.pop_front() {
            match future.await {
                Ok(()) => {}
                Err(AppendError::Session(_) | AppendError::Dropped) => {
                    self.pending.clear();
                    return Err(self.session_end().await);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Flushes, then seals the stream's segment: it takes no more writes (readers see its end).
    pub async fn seal(&mut self) -> Result<(), ByteStreamError> {
        self.flush().await?;
        if let Some(writer) = self.writer.take() {
            writer.close().await;
        }
        let segment = self.segment.clone();
        self.admin
            .exchange(
                "SealSegment",
                |token| {
                    Request::SealSegment(wire::SealSegment {
                        request_id: next_request_id(),
                        segment: segment.clone(),
                        delegation_token: token,
                    })
                },
                |reply| matches!(reply, Reply::SegmentSealed(_)),
            )
            .await?;
        Ok(())
    }

    /// Drops the data before `offset` (at most the current tail): reading it fails from now
    /// on with [`ByteStreamError::Truncated`].
    pub async fn truncate_data_before(&mut self, offset: i64) -> Result<(), ByteStreamError> {
        if offset < 0 {
            return Err(ByteStreamError::InvalidOffset {
                message: format!("cannot truncate at negative offset {offset}"),
            });
        }
        let segment = self.segment.clone();
        self.admin
            .exchange(
                "TruncateSegment",
                |token| {
                    Request::TruncateSegment(wire::TruncateSegment {
                        request_id: next_request_id(),
                        segment: segment.clone(),
                        truncation_offset: offset,
                        delegation_token: token,
                    })
                },
                |reply| matches!(reply, Reply::SegmentTruncated(_)),
            )
            .await?;
        Ok(())
    }

    /// Flushes, then takes the segment's current length as the offset (after other writers
    /// appended, for instance).
    pub async fn seek_to_tail(&mut self) -> Result<(), ByteStreamError> {
        self.flush().await?;
        self.offset = self.admin.segment_info().await?.length;
        Ok(())
    }

    /// The lowest readable offset (data before it was truncated).
    pub async fn current_head(&mut self) -> Result<i64, ByteStreamError> {
        Ok(self.admin.segment_info().await?.start_offset)
    }

    /// Flushes and ends the append session.
    pub async fn close(mut self) -> Result<(), ByteStreamError> {
        self.flush().await?;
        if let Some(writer) = self.writer.take() {
            match writer.close().await {
                SessionEnd::Closed => {}
                SessionEnd::Failed { error } => return Err(error.into()),
                SessionEnd::Sealed { .. } | SessionEnd::NoSuchSegment { .. } => {
                    return Err(self.sealed())
                }
            }
        }
        Ok(())
    }

    /// Drops acknowledged appends from the front of the queue (without waiting), so the queue
    /// holds only what is in flight; returns the first failure seen.
    fn reap_acknowledged(&mut self) -> Result<(), ByteStreamError> {
        while let Some(front) = self.pending.front_mut() {
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            match Pin::new(front).poll(&mut context) {
                Poll::Pending => return Ok(()),
                Poll::Ready(outcome) => {
                    self.pending.pop_front();
                    outcome?;
                }
            }
        }
        Ok(())
    }

    /// How the ended session ended, as an error (the writer is closed).
    async fn session_end(&mut self) -> ByteStreamError {
        let Some(writer) = self.writer.take() else {
            return self.sealed();
        };
        match writer.close().await {
            SessionEnd::Failed { error } => error.into(),
            SessionEnd::Sealed { .. } | SessionEnd::NoSuchSegment { .. } => self.sealed(),
            SessionEnd::Closed => WriterError::Ended(self.segment.clone()).into(),
        }
    }

    fn sealed(&self) -> ByteStreamError {
        ByteStreamError::Sealed {
            stream: self.stream.to_string(),
        }
    }
}

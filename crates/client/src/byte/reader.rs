//! [`ByteReader`]: reads a byte stream's segment from any offset.

use std::io::SeekFrom;

use bytes::{Buf, Bytes};

use super::{single_segment, ByteStreamError};
use crate::controller::types::ScopedStream;
use crate::controller::ControllerClient;
use crate::segment::{ReaderConfig, ReaderError, SegmentReader};

/// How much one request to the segment store asks for.
const READ_SIZE: usize = 1 << 20;

/// Reads a byte stream. Reads return what is available from the current offset (at least one
/// byte); at the tail of an open stream they wait for new data (the segment store long-polls,
/// and the reader asks again until data arrives), and at the end of a sealed stream they return
/// 0. Data read ahead is kept ([`available`](Self::available)) and served first.
///
/// ```no_run
/// use std::io::SeekFrom;
///
/// use pravaha_client::byte::ByteReader;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::controller::ControllerClient;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// let mut reader = ByteReader::new(&controller, ScopedStream::new("examples", "log")).await?;
/// let head = reader.current_head().await?;
/// reader.seek(SeekFrom::Start(head as u64)).await?;
/// let mut buffer = vec![0u8; 4096];
/// let read = reader.read(&mut buffer).await?;
/// println!("{read} bytes from offset {head}");
/// reader.seek(SeekFrom::End(-10)).await?; // the last ten bytes
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ByteReader {
    stream: ScopedStream,
    reader: SegmentReader,
    /// The offset of the next byte returned: where `buffer` starts.
    offset: i64,
    buffer: Bytes,
}

impl ByteReader {
    /// Opens a reader on `stream`'s single segment at offset 0 (seek to the head if the stream
    /// was truncated). A sealed stream can be read to its end.
    pub async fn new(
        controller: &ControllerClient,
        stream: ScopedStream,
    ) -> Result<Self, ByteStreamError> {
        let (segment, locator) = single_segment(controller, &stream, true).await?;
        Ok(Self {
            stream,
            reader: SegmentReader::new(locator, segment, ReaderConfig::default()),
            offset: 0,
            buffer: Bytes::new(),
        })
    }

    /// The stream this reader reads.
    pub fn stream(&self) -> &ScopedStream {
        &self.stream
    }

    /// The offset of the next byte [`read`](Self::read) returns.
    pub fn current_offset(&self) -> i64 {
        self.offset
    }

    /// Bytes read ahead: a read of at most this many returns without asking the segment store.
    pub fn available(&self) -> usize {
        self.buffer.len()
    }

    /// Reads at least one byte into `buffer` (unless it is empty) and returns how many; 0 at
    /// the end of a sealed stream. Waits at the tail for data. Fails with
    /// [`ByteStreamError::Truncated`] if the current offset was truncated.
    pub async fn read(&mut self, buffer: &mut [u8]) -> Result<usize, ByteStreamError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        while self.buffer.is_empty() {
            let read = self
                .reader
                .read(self.offset, READ_SIZE.max(buffer.len()))
                .await
                .map_err(truncation)?;
            if read.data.is_empty() && read.end_of_segment {
                return Ok(0);
            }
            // An empty answer at the tail: the long poll ended without data; ask again.
            self.buffer = read.data;
        }
        let count = buffer.len().min(self.buffer.len());
        buffer[..count].copy_from_slice(&self.buffer[..count]);
        self.buffer.advance(count);
        self.offset += count as i64;
        Ok(count)
    }

    /// Fills `buffer` completely; [`ByteStreamError::UnexpectedEnd`] if the stream is sealed
    /// before.
    pub async fn read_exact(&mut self, buffer: &mut [u8]) -> Result<(), ByteStreamError> {
        let mut filled = 0;
        while filled < buffer.len() {
            let count = self.read(&mut buffer[filled..]).await?;
            if count == 0 {
                return Err(ByteStreamError::UnexpectedEnd {
                    offset: self.offset,
                });
            }
            filled += count;
        }
        Ok(())
    }

    /// Moves the offset: from the start, from the current offset, or from the tail (asking the
    /// segment store for it). Returns the new offset. A negative result is refused; data
    /// read ahead is kept when the new offset falls inside it.
    pub async fn seek(&mut self, position: SeekFrom) -> Result<u64, ByteStreamError> {
        let (base, delta) = match position {
            SeekFrom::Start(offset) => (
                0,
                i64::try_from(offset).map_err(|_| ByteStreamError::InvalidOffset {
                    message: format!("offset {offset} is beyond any segment"),
                })?,
            ),
            SeekFrom::Current(delta) => (self.offset, delta),
            SeekFrom::End(delta) => (self.current_tail().await?, delta),
        };
        let target = base
            .checked_add(delta)
            .filter(|target| *target >= 0)
            .ok_or_else(|| ByteStreamError::InvalidOffset {
                message: format!("cannot seek to {base} + {delta}"),
            })?;
        let skip = target - self.offset;
        if (0..=self.buffer.len() as i64).contains(&skip) {
            self.buffer.advance(skip as usize);
        } else {
            self.buffer = Bytes::new();
        }
        self.offset = target;
        Ok(target as u64)
    }

    /// The lowest readable offset (data before it was truncated).
    pub async fn current_head(&mut self) -> Result<i64, ByteStreamError> {
        Ok(self.reader.segment_info().await?.start_offset)
    }

    /// The stream's length: the offset after the last byte written.
    pub async fn current_tail(&mut self) -> Result<i64, ByteStreamError> {
        Ok(self.reader.segment_info().await?.length)
    }
}

fn truncation(error: ReaderError) -> ByteStreamError {
    match error {
        ReaderError::Truncated {
            segment,
            offset,
            start_offset,
        } => ByteStreamError::Truncated {
            segment,
            offset,
            head: start_offset,
        },
        other => other.into(),
    }
}

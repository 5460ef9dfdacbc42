//! Watermarks: the controller aggregates the times writers note
//! ([`EventWriter::note_time`](crate::EventWriter::note_time)) into watermarks and appends them
//! to the stream's mark stream `_MARK<stream>`, in Pravega's own serialization
//! ([`pravaha_types::watermark`]; docs/formats/controller-metadata.md, "Mark streams"), so
//! watermarks written by Pravaha's controller or by Pravega's are read alike.
//!
//! - [`WatermarkReader`]: a stream's watermarks in order, from the beginning or from a
//!   [`WatermarkPosition`], without waiting or waiting for the next one up to a time-out;
//! - [`TimeWindowTracker`]: the [`TimeWindow`] of event time that a reader group's position
//!   lies in, as Pravega's readers compute it (`EventStreamReader.getCurrentTimeWindow`);
//!   a reader of the group answers it directly:
//!   [`EventReader::current_time_window`](crate::EventReader::current_time_window).
//!
//! A watermark says: every writer active in the stream had written every event with an event
//! time below `lower_time_bound` by the positions of its `stream_cut`, and no writer had noted a
//! time above `upper_time_bound` by then.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use pravaha_client::controller::types::ScopedStream;
//! use pravaha_client::watermark::WatermarkReader;
//! use pravaha_client::{ClientConfig, ControllerClient};
//!
//! let controller = ControllerClient::new(ClientConfig::default())?;
//! let mut marks = WatermarkReader::new(controller, ScopedStream::new("examples", "orders"));
//! while let Some(mark) = marks.next_timeout(Duration::from_secs(30)).await? {
//!     println!("all events before {} are at or before {:?}", mark.lower_time_bound, mark.stream_cut);
//! }
//! # Ok(())
//! # }
//! ```

mod window;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pravaha_types::watermark::{self as format, mark_stream, WatermarkFormatError};
use tokio::time::Instant;

use crate::controller::types::{KeyRange, ScopedStream, SegmentId, StreamCut};
use crate::controller::{ControllerClient, ControllerError};
use crate::locator::ControllerLocator;
use crate::segment::{EventParser, Locator, ParseError, ReaderConfig, ReaderError, SegmentReader};

pub use window::{TimeWindow, TimeWindowTracker};

/// Bytes asked for per read of the mark segment.
const READ_LEN: usize = 64 << 10;
/// How often a reader waiting for the mark stream to appear asks the controller again (a
/// stream created by an older Pravaha gets it with its first watermark).
const ABSENT_POLL: Duration = Duration::from_millis(100);

/// One watermark of a stream.
///
/// ```
/// use std::collections::BTreeMap;
/// use pravaha_client::controller::types::{KeyRange, ScopedStream, SegmentId, StreamCut};
/// use pravaha_client::watermark::Watermark;
///
/// let mut stream_cut = StreamCut::new(ScopedStream::new("sc", "st"));
/// stream_cut.positions.insert(SegmentId::new(0, 0), 1024);
/// let mark = Watermark {
///     lower_time_bound: 1_000,
///     upper_time_bound: 1_500,
///     stream_cut,
///     ranges: BTreeMap::from([(SegmentId::new(0, 0), KeyRange::new(0.0, 1.0))]),
/// };
/// assert!(mark.lower_time_bound <= mark.upper_time_bound);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    /// Every active writer had written every event with an earlier event time (ms).
    pub lower_time_bound: i64,
    /// No active writer had noted a later time (ms).
    pub upper_time_bound: i64,
    /// Where those writers had got to: an upper bound of their positions, complete (its
    /// segments tile the key space).
    pub stream_cut: StreamCut,
    /// The key range of each segment of the cut.
    pub ranges: BTreeMap<SegmentId, KeyRange>,
}

impl Watermark {
    fn from_format(stream: &ScopedStream, mark: format::Watermark) -> Self {
        let mut stream_cut = StreamCut::new(stream.clone());
        let mut ranges = BTreeMap::new();
        for (segment, offset) in mark.stream_cut {
            let id = SegmentId(segment.segment_id);
            stream_cut.positions.insert(id, offset);
            ranges.insert(id, KeyRange::new(segment.range_low, segment.range_high));
        }
        Self {
            lower_time_bound: mark.lower_time_bound,
            upper_time_bound: mark.upper_time_bound,
            stream_cut,
            ranges,
        }
    }
}

/// Where a [`WatermarkReader`] is: the offset in the mark segment after the last watermark
/// read (Pravega's `Revision`). Keep it to resume with [`WatermarkReader::from_position`].
///
/// ```
/// use pravaha_client::watermark::WatermarkPosition;
///
/// let position = WatermarkPosition(117);
/// assert_eq!(position.0, 117);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatermarkPosition(pub i64);

/// Why watermarks could not be read.
///
/// ```
/// use pravaha_client::watermark::{WatermarkError, WatermarkPosition};
///
/// let error = WatermarkError::Truncated { position: WatermarkPosition(10), start_offset: 200 };
/// assert!(error.to_string().contains("truncated"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error("reading the mark segment failed: {0}")]
    Read(ReaderError),
    /// The mark segment was truncated past the position; watermarks before its start offset
    /// are gone (open a reader from the beginning to go on).
    #[error("the mark segment is truncated at {start_offset}; position {position:?} is gone")]
    Truncated {
        position: WatermarkPosition,
        start_offset: i64,
    },
    /// The mark segment holds something that is not a sequence of events (the position was not
    /// an event boundary, or the segment is no mark segment).
    #[error("the mark segment {segment} holds no events there: {source}")]
    NotEvents { segment: String, source: ParseError },
    /// An event that is not a watermark in Pravega's format (for example a JSON watermark of an
    /// older Pravaha, before its controller replaced them). The reader has moved past it.
    #[error("the event at offset {offset} of {segment} is no watermark: {source}")]
    Format {
        segment: String,
        offset: i64,
        source: WatermarkFormatError,
    },
}

impl From<ReaderError> for WatermarkError {
    fn from(error: ReaderError) -> Self {
        Self::Read(error)
    }
}

/// Where a reader begins.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// The mark segment's start offset, looked up when the segment is found.
    Beginning,
    At(WatermarkPosition),
}

/// The mark segment once found, read through one reader and one parser.
#[derive(Debug)]
struct Source {
    reader: SegmentReader,
    parser: EventParser,
}

/// Reads a stream's watermarks from its mark stream `_MARK<stream>`, in the order written.
///
/// [`try_next`](Self::try_next) answers what is already written; [`next_timeout`](Self::next_timeout)
/// waits for the next watermark up to a time-out. Until the mark stream exists (controllers
/// create it with the stream; an older Pravaha with the first watermark) there is nothing to
/// read; waiting asks the controller again every 100 ms.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::watermark::WatermarkReader;
/// use pravaha_client::{ClientConfig, ControllerClient};
///
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// let stream = ScopedStream::new("examples", "orders");
/// let mut marks = WatermarkReader::new(controller.clone(), stream.clone());
/// let first = marks.next_timeout(Duration::from_secs(10)).await?;
/// // Later, carry on after the last watermark read.
/// let mut resumed = WatermarkReader::from_position(controller, stream, marks.position());
/// assert!(resumed.try_next().await?.is_none() || first.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WatermarkReader {
    controller: ControllerClient,
    locator: Arc<dyn Locator>,
    stream: ScopedStream,
    config: ReaderConfig,
    start: Start,
    source: Option<Source>,
}

impl WatermarkReader {
    /// A reader of `stream`'s watermarks from the first one still in the mark stream.
    pub fn new(controller: ControllerClient, stream: ScopedStream) -> Self {
        Self::starting(controller, stream, Start::Beginning)
    }

    /// A reader of `stream`'s watermarks after `position` (from [`Self::position`]).
    pub fn from_position(
        controller: ControllerClient,
        stream: ScopedStream,
        position: WatermarkPosition,
    ) -> Self {
        Self::starting(controller, stream, Start::At(position))
    }

    fn starting(controller: ControllerClient, stream: ScopedStream, start: Start) -> Self {
        Self {
            locator: Arc::new(ControllerLocator::new(controller.clone())),
            controller,
            stream,
            config: ReaderConfig::default(),
            start,
            source: None,
        }
    }

    /// The stream whose watermarks this reads.
    pub fn stream(&self) -> &ScopedStream {
        &self.stream
    }

    /// The position after the last watermark returned (before the first one read from the
    /// beginning: offset 0 until the mark segment is found).
    pub fn position(&self) -> WatermarkPosition {
        match (&self.source, self.start) {
            (Some(source), _) => WatermarkPosition(source.parser.position()),
            (None, Start::At(position)) => position,
            (None, Start::Beginning) => WatermarkPosition(0),
        }
    }

    /// The next watermark if one is written already; `None` (at once) if not.
    pub async fn try_next(&mut self) -> Result<Option<Watermark>, WatermarkError> {
        loop {
            if let Some(mark) = self.parsed()? {
                return Ok(Some(mark));
            }
            if !self.find_source().await? {
                return Ok(None);
            }
            let source = self.source.as_mut().expect("found above");
            let info = source.reader.segment_info().await?;
            if source.parser.next_offset() >= info.length {
                return Ok(None);
            }
            // Data is there, so the segment store answers at once.
            self.read_more().await?;
        }
    }

    /// The next watermark, waiting for it up to `timeout`; `None` if none came in time.
    pub async fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Watermark>, WatermarkError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(mark) = self.try_next().await? {
                return Ok(Some(mark));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(None);
            }
            if self.source.is_none() {
                tokio::time::sleep(remaining.min(ABSENT_POLL)).await;
                continue;
            }
            // A read at the tail is held by the segment store until data arrives.
            if tokio::time::timeout(remaining, self.read_more())
                .await
                .is_err()
            {
                // The read was abandoned mid-request: its connection is not reused.
                self.reset_connection();
                return Ok(None);
            }
        }
    }

    /// The next whole watermark already read, if any.
    fn parsed(&mut self) -> Result<Option<Watermark>, WatermarkError> {
        let Some(source) = self.source.as_mut() else {
            return Ok(None);
        };
        let event =
            source
                .parser
                .next_event()
                .map_err(|source_error| WatermarkError::NotEvents {
                    segment: source.reader.segment().to_owned(),
                    source: source_error,
                })?;
        let Some(event) = event else {
            return Ok(None);
        };
        let mark =
            format::Watermark::decode(&event.payload).map_err(|error| WatermarkError::Format {
                segment: source.reader.segment().to_owned(),
                offset: event.offset,
                source: error,
            })?;
        Ok(Some(Watermark::from_format(&self.stream, mark)))
    }

    /// Reads once at the parser's next offset (waiting at the tail) and hands the data over.
    async fn read_more(&mut self) -> Result<(), WatermarkError> {
        let source = self.source.as_mut().expect("called with a source");
        let offset = source.parser.next_offset();
        let read = match source.reader.read(offset, READ_LEN).await {
            Ok(read) => read,
            Err(ReaderError::Truncated { start_offset, .. }) => {
                return Err(WatermarkError::Truncated {
                    position: WatermarkPosition(source.parser.position()),
                    start_offset,
                })
            }
            Err(error) => return Err(error.into()),
        };
        source
            .parser
            .push_read(&read)
            .map_err(|error| WatermarkError::NotEvents {
                segment: source.reader.segment().to_owned(),
                source: error,
            })
    }

    /// Finds the mark segment (and where to start in it) if not found yet; false while the
    /// mark stream does not exist.
    async fn find_source(&mut self) -> Result<bool, WatermarkError> {
        if self.source.is_some() {
            return Ok(true);
        }
        let marks = ScopedStream::new(self.stream.scope.clone(), mark_stream(&self.stream.stream));
        let segments = match self.controller.get_current_segments(&marks).await {
            Ok(segments) => segments,
            Err(ControllerError::StreamNotFound { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        // Pravega's readers take the mark stream's segment for key 0.
        let Some(segment) = segments.segment_for_position(0.0) else {
            return Ok(false);
        };
        let mut reader = SegmentReader::new(
            self.locator.clone(),
            segment.segment.qualified_name(),
            self.config.clone(),
        );
        let offset = match self.start {
            Start::At(position) => position.0,
            Start::Beginning => reader.segment_info().await?.start_offset,
        };
        self.source = Some(Source {
            reader,
            parser: EventParser::new(offset),
        });
        Ok(true)
    }

    fn reset_connection(&mut self) {
        if let Some(source) = self.source.as_mut() {
            let segment = source.reader.segment().to_owned();
            source.reader = SegmentReader::new(self.locator.clone(), segment, self.config.clone());
        }
    }
}

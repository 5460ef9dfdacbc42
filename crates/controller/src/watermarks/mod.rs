//! Watermarks: writers note the event time they have reached (`noteTimestampFromWriter`, with
//! their position as a stream cut); the controller aggregates the marks of a stream's active
//! writers into watermarks and appends them to the stream's mark stream `_MARK<stream>` (as
//! Pravega does), where readers find them for event-time processing.
//!
//! A watermark says: every writer active in the stream has written everything with an event
//! time below `lower_time_bound`, up to (at most) the positions in `stream_cut`.
//!
//! Mark-stream events are Pravega's own serialization of its `Watermark`
//! ([`pravaha_types::watermark`]; docs/formats/controller-metadata.md, "Mark streams"), so the
//! official clients read them. A watermark is written only when its lower bound passed the last
//! one's (Pravega's rule), and appended idempotently besides (the writer id is derived from the
//! stream, the event number is the lower bound), so two controllers never write one twice.
//!
//! Older Pravaha versions wrote JSON watermarks (mark format 1). They are still read (by
//! [`Controller::watermarks`] and as the previous watermark); the first watermark written after
//! an upgrade truncates the mark segment past them, so readers that start at the segment's
//! start offset, as Pravega's do, meet only Pravega's format.

mod cut;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use pravaha_segment_client::{frame_event, ClientError};
use pravaha_types::qualified_segment_name;
use pravaha_types::watermark::{self as format, SegmentWithRange};
use serde::{Deserialize, Serialize};

use crate::core::{now_ms, Controller, Inner};
use crate::error::ControllerError;
use crate::model::{ScalingPolicy, StreamConfig, StreamRecord};

pub use pravaha_types::watermark::mark_stream;

/// Writers not heard from for this long (unless the stream sets its own aggregation time-out)
/// no longer hold the watermark back.
const DEFAULT_AGGREGATION_TIMEOUT_MS: i64 = 120_000;
/// Bytes asked for per read of a mark segment.
const READ_CHUNK: i32 = 1 << 20;

/// A writer's latest mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterMark {
    pub writer: String,
    pub timestamp: i64,
    pub position: BTreeMap<i64, i64>,
    pub updated_ms: i64,
}

/// How a watermark was stored in its mark stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkFormat {
    /// Pravega's `Watermark` serialization (written since mark format 2).
    Pravega,
    /// The JSON of older Pravaha versions (mark format 1): no key ranges.
    LegacyJson,
}

/// One watermark of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub lower_time_bound: i64,
    pub upper_time_bound: i64,
    /// Segment id → offset.
    pub stream_cut: BTreeMap<i64, i64>,
    /// Segment id → its key range `[low, high)`; empty for a [`MarkFormat::LegacyJson`] one.
    pub ranges: BTreeMap<i64, (f64, f64)>,
    pub format: MarkFormat,
}

/// The JSON watermark of mark format 1.
#[derive(Deserialize)]
struct LegacyWatermark {
    lower_time_bound: i64,
    upper_time_bound: i64,
    stream_cut: BTreeMap<i64, i64>,
}

impl Watermark {
    fn from_format(mark: format::Watermark) -> Self {
        Self {
            lower_time_bound: mark.lower_time_bound,
            upper_time_bound: mark.upper_time_bound,
            stream_cut: mark
                .stream_cut
                .iter()
                .map(|(segment, offset)| (segment.segment_id, *offset))
                .collect(),
            ranges: mark
                .stream_cut
                .iter()
                .map(|(s, _)| (s.segment_id, (s.range_low, s.range_high)))
                .collect(),
            format: MarkFormat::Pravega,
        }
    }

    fn from_bound(lower_time_bound: i64, upper_time_bound: i64, bound: &cut::Bound) -> Self {
        let entries: Vec<(SegmentWithRange, i64)> = bound.values().copied().collect();
        Self::from_format(format::Watermark {
            lower_time_bound,
            upper_time_bound,
            stream_cut: entries,
        })
    }

    /// The cut with key ranges; a legacy watermark's ranges come from the stream's record
    /// (segments it no longer knows are left out).
    fn positions(&self, record: &StreamRecord) -> Vec<(SegmentWithRange, i64)> {
        self.stream_cut
            .iter()
            .filter_map(|(id, offset)| {
                let (range_low, range_high) = match self.ranges.get(id) {
                    Some(range) => *range,
                    None => {
                        let segment = record.segments.get(id)?;
                        (segment.key_start, segment.key_end)
                    }
                };
                Some((
                    SegmentWithRange {
                        segment_id: *id,
                        range_low,
                        range_high,
                    },
                    *offset,
                ))
            })
            .collect()
    }

    /// Pravega's serialization.
    fn encode(&self) -> Result<Vec<u8>, ControllerError> {
        let stream_cut = self
            .stream_cut
            .iter()
            .map(|(id, offset)| {
                let (range_low, range_high) = self.ranges.get(id).copied().ok_or_else(|| {
                    ControllerError::Internal(format!("watermark segment {id} has no key range"))
                })?;
                let segment = SegmentWithRange {
                    segment_id: *id,
                    range_low,
                    range_high,
                };
                Ok((segment, *offset))
            })
            .collect::<Result<_, ControllerError>>()?;
        format::Watermark {
            lower_time_bound: self.lower_time_bound,
            upper_time_bound: self.upper_time_bound,
            stream_cut,
        }
        .encode()
        .map_err(|error| ControllerError::Internal(format!("encoding a watermark: {error}")))
    }

    /// One mark-stream event: Pravega's format, or the JSON of mark format 1 (which begins with
    /// `{`, a byte Pravega's format never begins with).
    fn decode(payload: &[u8]) -> Result<Self, String> {
        if payload.first() == Some(&b'{') {
            let legacy: LegacyWatermark =
                serde_json::from_slice(payload).map_err(|error| error.to_string())?;
            return Ok(Self {
                lower_time_bound: legacy.lower_time_bound,
                upper_time_bound: legacy.upper_time_bound,
                stream_cut: legacy.stream_cut,
                ranges: BTreeMap::new(),
                format: MarkFormat::LegacyJson,
            });
        }
        format::Watermark::decode(payload)
            .map(Self::from_format)
            .map_err(|error| error.to_string())
    }
}

/// Why a mark was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkRefused {
    /// Earlier than the writer's previous mark.
    InvalidTime,
    /// Not a valid stream cut of the stream.
    InvalidPosition,
}

/// The last watermark of a mark segment and the offset its event starts at, per stream key.
#[derive(Debug, Default)]
pub(crate) struct LastWatermarks(Mutex<HashMap<String, (i64, Watermark)>>);

impl LastWatermarks {
    fn get(&self, key: &str) -> Option<(i64, Watermark)> {
        self.0.lock().expect("not poisoned").get(key).cloned()
    }

    fn forget(&self, key: &str) {
        self.0.lock().expect("not poisoned").remove(key);
    }

    fn put(&self, key: &str, start: i64, mark: Watermark) {
        self.0
            .lock()
            .expect("not poisoned")
            .insert(key.to_owned(), (start, mark));
    }
}

fn mark_key(scope: &str, stream: &str, writer: &str) -> String {
    format!("mark/{scope}/{stream}/{writer}")
}

/// The events of a mark segment read from some offset: each with the offset it starts at.
struct MarkEvents {
    segment: String,
    events: Vec<(i64, Bytes)>,
    length: i64,
}

impl Controller {
    /// Records `writer`'s event time and position in the stream.
    pub async fn note_writer_mark(
        &self,
        scope: &str,
        stream: &str,
        writer: &str,
        timestamp: i64,
        position: BTreeMap<i64, i64>,
    ) -> Result<Result<(), MarkRefused>, ControllerError> {
        let record = self.stream(scope, stream).await?;
        if record.validate_cut(&position).is_err() {
            return Ok(Err(MarkRefused::InvalidPosition));
        }
        let key = mark_key(scope, stream, writer);
        for _ in 0..64 {
            let current = self.inner.table.get::<WriterMark>(&key).await?;
            if current
                .as_ref()
                .is_some_and(|c| c.value.timestamp > timestamp)
            {
                return Ok(Err(MarkRefused::InvalidTime));
            }
            let mark = WriterMark {
                writer: writer.to_owned(),
                timestamp,
                position: position.clone(),
                updated_ms: now_ms(),
            };
            let written = match current {
                Some(current) => {
                    self.inner
                        .table
                        .replace(&key, &mark, current.version)
                        .await?
                }
                None => self.inner.table.create(&key, &mark).await?,
            };
            if written.is_some() {
                return Ok(Ok(()));
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Forgets a writer (it no longer holds the stream's watermark back); false if unknown.
    pub async fn remove_writer(
        &self,
        scope: &str,
        stream: &str,
        writer: &str,
    ) -> Result<bool, ControllerError> {
        self.stream(scope, stream).await?;
        let key = mark_key(scope, stream, writer);
        match self.inner.table.get::<WriterMark>(&key).await? {
            Some(mark) => self.inner.table.remove(&key, mark.version).await,
            None => Ok(false),
        }
    }

    /// The watermark the stream's active writers allow now, if any writer is active: the
    /// least and greatest time they noted, at the least upper bound of their positions
    /// (completed with the current epoch's segments where none reported).
    pub async fn current_watermark(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<Watermark>, ControllerError> {
        let record = self.stream(scope, stream).await?;
        let active = self.active_marks(scope, stream, &record).await?;
        let (Some(lower), Some(upper)) = (
            active.iter().map(|m| m.timestamp).min(),
            active.iter().map(|m| m.timestamp).max(),
        ) else {
            return Ok(None);
        };
        let mut bound = cut::Bound::new();
        for mark in &active {
            cut::add_to_upper_bound(&with_ranges(&record, &mark.position), &mut bound);
        }
        cut::complete(&mut bound, |epoch| epoch_segments(&record, epoch));
        Ok(Some(Watermark::from_bound(lower, upper, &bound)))
    }

    /// The marks of writers heard from within the stream's aggregation time-out.
    async fn active_marks(
        &self,
        scope: &str,
        stream: &str,
        record: &StreamRecord,
    ) -> Result<Vec<WriterMark>, ControllerError> {
        let timeout = match record.config.timestamp_aggregation_timeout_ms {
            0 => DEFAULT_AGGREGATION_TIMEOUT_MS,
            t => t,
        };
        let now = now_ms();
        let prefix = format!("mark/{scope}/{stream}/");
        let mut token = String::new();
        let mut active: Vec<WriterMark> = Vec::new();
        loop {
            let (page, next) = self
                .inner
                .table
                .list::<WriterMark>(&prefix, &token, 1000)
                .await?;
            if page.is_empty() {
                return Ok(active);
            }
            active.extend(
                page.into_iter()
                    .map(|(_, m)| m)
                    .filter(|m| now - m.updated_ms <= timeout),
            );
            token = next;
        }
    }

    /// The watermarks in the stream's mark stream, oldest first (mark formats 1 and 2).
    pub async fn watermarks(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<Watermark>, ControllerError> {
        let Some(events) = self.read_marks(scope, stream, None).await? else {
            return Ok(Vec::new());
        };
        events
            .events
            .iter()
            .map(|(offset, payload)| decode_at(&events.segment, *offset, payload))
            .collect()
    }

    /// Reads the events of the stream's mark segment from `from` (or its start offset, if
    /// later); `None` if the mark stream does not exist.
    async fn read_marks(
        &self,
        scope: &str,
        stream: &str,
        from: Option<i64>,
    ) -> Result<Option<MarkEvents>, ControllerError> {
        let Some(segment) = self.mark_segment(scope, stream).await? else {
            return Ok(None);
        };
        let at = self.locate(&segment);
        let info = match self.inner.client.segment_info(at, &segment, "").await {
            Ok(info) => info,
            Err(ClientError::NoSuchSegment(_)) => return Ok(None),
            Err(error) => return Err(ControllerError::SegmentStore(error)),
        };
        let start = from.map_or(info.start_offset, |from| from.max(info.start_offset));
        let mut data = Vec::new();
        let mut offset = start;
        while offset < info.length {
            let read = self
                .inner
                .client
                .read_segment(at, &segment, offset, READ_CHUNK, "")
                .await
                .map_err(ControllerError::SegmentStore)?;
            if read.data.is_empty() {
                break;
            }
            offset += read.data.len() as i64;
            data.extend_from_slice(&read.data);
        }
        let events = split_events(&segment, start, &Bytes::from(data))?;
        Ok(Some(MarkEvents {
            segment,
            events,
            length: info.length,
        }))
    }

    /// The qualified name of the mark stream's one segment, if the mark stream exists.
    async fn mark_segment(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<String>, ControllerError> {
        let mark_name = mark_stream(stream);
        let record = match self.stream(scope, &mark_name).await {
            Ok(record) => record,
            Err(ControllerError::StreamNotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let id = record
            .current_epoch()
            .segments
            .first()
            .copied()
            .unwrap_or(0);
        Ok(Some(qualified_segment_name(scope, &mark_name, id)))
    }

    /// The last watermark in the mark stream, the offset its event starts at and the segment's
    /// length; read from the last one this controller saw onward.
    async fn last_watermark(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<(i64, Watermark, i64)>, ControllerError> {
        let key = format!("{scope}/{stream}");
        let cached = self.inner.last_watermarks.get(&key);
        let from = cached.as_ref().map(|(start, _)| *start);
        let Some(events) = self.read_marks(scope, stream, from).await? else {
            return Ok(None);
        };
        let Some((start, payload)) = events.events.last() else {
            // Truncated past everything cached, or never written.
            return Ok(None);
        };
        let mark = decode_at(&events.segment, *start, payload)?;
        self.inner.last_watermarks.put(&key, *start, mark.clone());
        Ok(Some((*start, mark, events.length)))
    }

    /// Appends the stream's next watermark to its mark stream if its lower bound passed the
    /// last one's; the watermark written, if any.
    pub async fn emit_watermark(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<Watermark>, ControllerError> {
        let Some(current) = self.current_watermark(scope, stream).await? else {
            return Ok(None);
        };
        let previous = self.last_watermark(scope, stream).await?;
        if let Some((_, last, _)) = &previous {
            if last.lower_time_bound >= current.lower_time_bound {
                return Ok(None);
            }
        }
        let record = self.stream(scope, stream).await?;
        let mut bound = cut::Bound::new();
        cut::add_to_upper_bound(&current.positions(&record), &mut bound);
        if let Some((_, last, _)) = &previous {
            // Positions never go back: the cut is at or after the previous watermark's.
            cut::add_to_upper_bound(&last.positions(&record), &mut bound);
        }
        cut::complete(&mut bound, |epoch| epoch_segments(&record, epoch));
        let mark =
            Watermark::from_bound(current.lower_time_bound, current.upper_time_bound, &bound);
        self.ensure_mark_stream(scope, stream).await?;
        let segment = self.mark_segment(scope, stream).await?.ok_or_else(|| {
            ControllerError::Internal(format!("mark stream of {scope}/{stream} vanished"))
        })?;
        if let Some((_, last, length)) = &previous {
            if last.format == MarkFormat::LegacyJson {
                self.drop_legacy_marks(&segment, *length).await?;
            }
        }
        self.append_mark(scope, stream, &segment, &mark).await?;
        tracing::debug!(
            scope,
            stream,
            lower = mark.lower_time_bound,
            "watermark written"
        );
        Ok(Some(mark))
    }

    /// Creates `_MARK<stream>` as Pravega does: one fixed segment, no retention.
    async fn ensure_mark_stream(&self, scope: &str, stream: &str) -> Result<(), ControllerError> {
        let config = StreamConfig {
            scaling: ScalingPolicy::fixed(1),
            retention: None,
            tags: vec![],
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: 0,
        };
        self.create_stream(scope, &mark_stream(stream), config)
            .await
            .map(drop)
    }

    /// Truncates the mark segment at `length`: everything before is JSON of mark format 1.
    async fn drop_legacy_marks(&self, segment: &str, length: i64) -> Result<(), ControllerError> {
        tracing::info!(
            segment,
            offset = length,
            "mark stream holds watermarks of mark format 1 (JSON); truncating past them"
        );
        self.inner
            .client
            .truncate_segment(self.locate(segment), segment, length, "")
            .await
            .map_err(ControllerError::SegmentStore)
    }

    async fn append_mark(
        &self,
        scope: &str,
        stream: &str,
        segment: &str,
        mark: &Watermark,
    ) -> Result<(), ControllerError> {
        // One writer id per stream and the lower bound as event number: a watermark that is not
        // newer than the last one written is acknowledged without being written again.
        let writer =
            u128::from(crc32c::crc32c(format!("{scope}/{stream}").as_bytes())) | (0x57A7 << 64);
        self.inner
            .client
            .append(
                self.locate(segment),
                segment,
                writer,
                mark.lower_time_bound,
                frame_event(&mark.encode()?),
                "",
            )
            .await
            .map_err(ControllerError::SegmentStore)?;
        Ok(())
    }

    /// Removes a deleted stream's writer marks and seals and deletes its mark stream (gone
    /// already counts as done). Mark streams have none of their own.
    pub(crate) async fn forget_watermarks(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<(), ControllerError> {
        if stream.starts_with(format::MARK_STREAM_PREFIX) {
            return Ok(());
        }
        let prefix = format!("mark/{scope}/{stream}/");
        // The stream is gone, so no new marks are accepted; a round lists what is left.
        for _ in 0..64 {
            let (page, _) = self
                .inner
                .table
                .list::<WriterMark>(&prefix, "", 1000)
                .await?;
            if page.is_empty() {
                break;
            }
            for (key, _) in page {
                // A mark changed meanwhile is refused here and listed again next round.
                if let Some(mark) = self.inner.table.get::<WriterMark>(&key).await? {
                    self.inner.table.remove(&key, mark.version).await?;
                }
            }
        }
        self.inner
            .last_watermarks
            .forget(&format!("{scope}/{stream}"));
        let marks = mark_stream(stream);
        match self.seal_stream(scope, &marks).await {
            Ok(()) => {}
            Err(ControllerError::StreamNotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.delete_stream_only(scope, &marks).await.map(drop)
    }

    /// One watermarking pass over every stream that has writer marks.
    pub async fn run_watermarking(&self) -> Result<(), ControllerError> {
        let mut token = String::new();
        let mut streams = std::collections::BTreeSet::new();
        loop {
            let (page, next) = self
                .inner
                .table
                .list::<WriterMark>("mark/", &token, 1000)
                .await?;
            if page.is_empty() {
                break;
            }
            for (key, _) in page {
                let mut parts = key.splitn(4, '/');
                if let (Some(_), Some(scope), Some(stream)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    streams.insert((scope.to_owned(), stream.to_owned()));
                }
            }
            token = next;
        }
        for (scope, stream) in streams {
            match self.emit_watermark(&scope, &stream).await {
                Ok(_) | Err(ControllerError::StreamNotFound { .. }) => {}
                Err(error) => {
                    tracing::warn!(scope, stream, %error, "watermarking failed; retrying next pass")
                }
            }
        }
        Ok(())
    }
}

/// A writer's position with each segment's key range (segments the record no longer knows,
/// deleted by truncation, are left out).
fn with_ranges(
    record: &StreamRecord,
    position: &BTreeMap<i64, i64>,
) -> Vec<(SegmentWithRange, i64)> {
    position
        .iter()
        .filter_map(|(id, offset)| {
            let segment = record.segments.get(id)?;
            Some((
                SegmentWithRange {
                    segment_id: *id,
                    range_low: segment.key_start,
                    range_high: segment.key_end,
                },
                *offset,
            ))
        })
        .collect()
}

/// The segments of `epoch` with their key ranges.
fn epoch_segments(record: &StreamRecord, epoch: u32) -> Option<Vec<SegmentWithRange>> {
    let ids = &record.epoch(epoch)?.segments;
    let position: BTreeMap<i64, i64> = ids.iter().map(|id| (*id, 0)).collect();
    Some(
        with_ranges(record, &position)
            .into_iter()
            .map(|(segment, _)| segment)
            .collect(),
    )
}

/// Splits a mark segment's bytes read from `start` into events, each with its offset.
fn split_events(
    segment: &str,
    start: i64,
    data: &Bytes,
) -> Result<Vec<(i64, Bytes)>, ControllerError> {
    let mut events = Vec::new();
    let mut at = 0usize;
    while data.len() - at >= 8 {
        let kind = i32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        let length = i32::from_be_bytes(data[at + 4..at + 8].try_into().expect("4 bytes"));
        let offset = start + at as i64;
        let length = match usize::try_from(length) {
            Ok(length) if kind == 0 => length,
            _ => {
                return Err(ControllerError::Internal(format!(
                    "{segment} holds a record that is no event at offset {offset}"
                )))
            }
        };
        if data.len() - at - 8 < length {
            break;
        }
        events.push((offset, data.slice(at + 8..at + 8 + length)));
        at += 8 + length;
    }
    Ok(events)
}

fn decode_at(segment: &str, offset: i64, payload: &[u8]) -> Result<Watermark, ControllerError> {
    Watermark::decode(payload).map_err(|error| {
        ControllerError::Internal(format!(
            "{segment} holds an unreadable watermark at offset {offset}: {error}"
        ))
    })
}

/// Runs watermarking every `interval` while the controller exists.
pub(crate) fn start_watermarking(inner: Weak<Inner>, interval: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let controller = Controller { inner };
            if let Err(error) = controller.run_watermarking().await {
                tracing::warn!(%error, "watermarking pass failed; retrying later");
            }
        }
    });
}

//! Watermarks as stored in a mark stream: Pravega's format (mark format 2) and the JSON of
//! older Pravaha versions (mark format 1), the events of a mark segment, and key ranges from
//! the stream record.

use std::collections::BTreeMap;

use bytes::Bytes;
use pravaha_types::watermark::{self as format, SegmentWithRange};
use serde::Deserialize;

use pravaha_segment_client::ClientError;
use pravaha_types::qualified_segment_name;

use super::{cut, mark_stream, READ_CHUNK};
use crate::core::Controller;
use crate::error::ControllerError;
use crate::model::StreamRecord;

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
    pub(super) fn from_format(mark: format::Watermark) -> Self {
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

    pub(super) fn from_bound(
        lower_time_bound: i64,
        upper_time_bound: i64,
        bound: &cut::Bound,
    ) -> Self {
        let entries: Vec<(SegmentWithRange, i64)> = bound.values().copied().collect();
        Self::from_format(format::Watermark {
            lower_time_bound,
            upper_time_bound,
            stream_cut: entries,
        })
    }

    /// The cut with key ranges; a legacy watermark's ranges come from the stream's record
    /// (segments it no longer knows are left out).
    pub(super) fn positions(&self, record: &StreamRecord) -> Vec<(SegmentWithRange, i64)> {
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
    pub(super) fn encode(&self) -> Result<Vec<u8>, ControllerError> {
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
    pub(super) fn decode(payload: &[u8]) -> Result<Self, String> {
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

/// A writer's position with each segment's key range (segments the record no longer knows,
/// deleted by truncation, are left out).
pub(super) fn with_ranges(
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
pub(super) fn epoch_segments(record: &StreamRecord, epoch: u32) -> Option<Vec<SegmentWithRange>> {
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
pub(super) fn split_events(
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

pub(super) fn decode_at(
    segment: &str,
    offset: i64,
    payload: &[u8],
) -> Result<Watermark, ControllerError> {
    Watermark::decode(payload).map_err(|error| {
        ControllerError::Internal(format!(
            "{segment} holds an unreadable watermark at offset {offset}: {error}"
        ))
    })
}

/// The events of a mark segment read from some offset: each with the offset it starts at.
pub(super) struct MarkEvents {
    pub(super) segment: String,
    pub(super) events: Vec<(i64, Bytes)>,
    pub(super) length: i64,
}

impl Controller {
    /// Reads the events of the stream's mark segment from `from` (or its start offset, if
    /// later); `None` if the mark stream does not exist.
    pub(super) async fn read_marks(
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
    pub(super) async fn mark_segment(
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
}

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
//! Every user stream gets its mark stream when it is created (Pravega's Java readers refuse to
//! start without one) and loses it, with its writer marks, when it is deleted.
//!
//! Older Pravaha versions wrote JSON watermarks (mark format 1) and created mark streams with
//! the first watermark. Their watermarks are still read (by [`Controller::watermarks`] and as
//! the previous watermark); the first watermark written after an upgrade truncates the mark
//! segment past them, so readers that start at the segment's start offset, as Pravega's do,
//! meet only Pravega's format.

mod cut;
mod stored;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use pravaha_segment_client::frame_event;
use pravaha_types::watermark as format;
use serde::{Deserialize, Serialize};

use crate::core::{now_ms, Controller};
use crate::error::ControllerError;
use crate::model::{ScalingPolicy, StreamConfig, StreamRecord};

pub use pravaha_types::watermark::mark_stream;
pub use stored::{MarkFormat, Watermark};

use stored::{decode_at, epoch_segments, with_ranges};

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
        let segment = match self.mark_segment(scope, stream).await? {
            Some(segment) => segment,
            None => {
                // A stream created by an older Pravaha, which made mark streams lazily.
                self.ensure_mark_stream(scope, stream).await?;
                self.mark_segment(scope, stream).await?.ok_or_else(|| {
                    ControllerError::Internal(format!("mark stream of {scope}/{stream} vanished"))
                })?
            }
        };
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
    pub(crate) async fn ensure_mark_stream(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<(), ControllerError> {
        let config = StreamConfig {
            scaling: ScalingPolicy::fixed(1),
            retention: None,
            tags: vec![],
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: 0,
        };
        // The stream itself exists, so the scope cannot be deleted under the mark stream.
        self.create_stream_in(scope, &mark_stream(stream), config, false)
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

//! Watermarks: writers note the event time they have reached (`noteTimestampFromWriter`, with
//! their position as a stream cut); the controller aggregates the marks of a stream's active
//! writers into watermarks and appends them to the stream's mark stream `_MARK<stream>` (as
//! Pravega does), where readers find them for event-time processing.
//!
//! A watermark says: every writer active in the stream has written everything with an event
//! time below `lower_time_bound`, up to (at most) the positions in `stream_cut`.
//!
//! Mark stream events are JSON (format version 1, docs/formats/controller-metadata.md), framed
//! as ordinary events; they are appended idempotently (the writer id is derived from the
//! stream, the event number is the watermark's lower bound), so a controller that restarts
//! never writes one twice.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use pravaha_segment_client::{frame_event, parse_events, ClientError};
use pravaha_types::qualified_segment_name;
use serde::{Deserialize, Serialize};

use crate::core::{now_ms, Controller, Inner};
use crate::error::ControllerError;
use crate::model::{ScalingPolicy, StreamConfig};

/// Writers not heard from for this long (unless the stream sets its own aggregation time-out)
/// no longer hold the watermark back.
const DEFAULT_AGGREGATION_TIMEOUT_MS: i64 = 120_000;

/// A writer's latest mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterMark {
    pub writer: String,
    pub timestamp: i64,
    pub position: BTreeMap<i64, i64>,
    pub updated_ms: i64,
}

/// One watermark of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watermark {
    pub v: u32,
    pub lower_time_bound: i64,
    pub upper_time_bound: i64,
    /// Per segment, the furthest position any contributing writer reported.
    pub stream_cut: BTreeMap<i64, i64>,
}

/// Why a mark was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkRefused {
    /// Earlier than the writer's previous mark.
    InvalidTime,
    /// Not a valid stream cut of the stream.
    InvalidPosition,
}

fn mark_key(scope: &str, stream: &str, writer: &str) -> String {
    format!("mark/{scope}/{stream}/{writer}")
}

/// The mark stream of `stream`.
pub fn mark_stream(stream: &str) -> String {
    format!("_MARK{stream}")
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

    /// The watermark the stream's active writers allow now, if any writer is active.
    pub async fn current_watermark(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<Watermark>, ControllerError> {
        let record = self.stream(scope, stream).await?;
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
                break;
            }
            active.extend(
                page.into_iter()
                    .map(|(_, m)| m)
                    .filter(|m| now - m.updated_ms <= timeout),
            );
            token = next;
        }
        let (Some(lower), Some(upper)) = (
            active.iter().map(|m| m.timestamp).min(),
            active.iter().map(|m| m.timestamp).max(),
        ) else {
            return Ok(None);
        };
        let mut stream_cut = BTreeMap::new();
        for mark in &active {
            for (segment, offset) in &mark.position {
                let entry = stream_cut.entry(*segment).or_insert(*offset);
                *entry = (*entry).max(*offset);
            }
        }
        Ok(Some(Watermark {
            v: 1,
            lower_time_bound: lower,
            upper_time_bound: upper,
            stream_cut,
        }))
    }

    /// The watermarks emitted for the stream so far, oldest first.
    pub async fn watermarks(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<Watermark>, ControllerError> {
        let segment = qualified_segment_name(scope, &mark_stream(stream), 0);
        let at = self.locate(&segment);
        let info = match self.inner.client.segment_info(at, &segment, "").await {
            Ok(info) => info,
            Err(ClientError::NoSuchSegment(_)) => return Ok(Vec::new()),
            Err(error) => return Err(ControllerError::SegmentStore(error)),
        };
        let mut data = Vec::new();
        let mut offset = info.start_offset;
        while offset < info.length {
            let read = self
                .inner
                .client
                .read_segment(at, &segment, offset, 1 << 20, "")
                .await
                .map_err(ControllerError::SegmentStore)?;
            offset += read.data.len() as i64;
            data.extend_from_slice(&read.data);
        }
        let (events, _) = parse_events(&Bytes::from(data)).map_err(|error| {
            ControllerError::Internal(format!(
                "{segment} holds a record that is no event: {error}"
            ))
        })?;
        let mut marks = Vec::with_capacity(events.len());
        for event in events {
            marks.push(serde_json::from_slice(&event).map_err(|error| {
                ControllerError::Internal(format!(
                    "{segment} holds an unreadable watermark: {error}"
                ))
            })?);
        }
        Ok(marks)
    }

    /// Appends the stream's current watermark to its mark stream if it moved forward.
    pub async fn emit_watermark(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Option<Watermark>, ControllerError> {
        let Some(mark) = self.current_watermark(scope, stream).await? else {
            return Ok(None);
        };
        let mark_name = mark_stream(stream);
        self.create_stream(
            scope,
            &mark_name,
            StreamConfig {
                scaling: ScalingPolicy::fixed(1),
                retention: None,
                tags: vec![],
                timestamp_aggregation_timeout_ms: 0,
                rollover_size_bytes: 0,
            },
        )
        .await?;
        let segment = qualified_segment_name(scope, &mark_name, 0);
        // One writer id per stream and the lower bound as event number: a watermark that is not
        // newer than the last one written is acknowledged without being written again.
        let writer =
            u128::from(crc32c::crc32c(format!("{scope}/{stream}").as_bytes())) | (0x57A7 << 64);
        let json = serde_json::to_vec(&mark)
            .map_err(|error| ControllerError::Internal(format!("encoding a watermark: {error}")))?;
        self.inner
            .client
            .append(
                self.locate(&segment),
                &segment,
                writer,
                mark.lower_time_bound,
                frame_event(&json),
                "",
            )
            .await
            .map_err(ControllerError::SegmentStore)?;
        Ok(Some(mark))
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

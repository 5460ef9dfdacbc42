//! Large events (above [`MAX_EVENT_PAYLOAD`](crate::segment::MAX_EVENT_PAYLOAD), up to [`MAX_LARGE_EVENT_PAYLOAD`]), Pravega's
//! way: the framed event is appended to a transient segment created beside the routed segment
//! (`CreateTransientSegment`), which is then merged into it (`MergeSegments`). A merge appends
//! the whole source at once, so readers see the whole event or nothing.
//!
//! The transient segment lives as long as the connection that created it (the segment store
//! deletes it when that connection closes): [`Transient`] keeps that connection (a
//! [`SegmentReader`] on the parent) for the create, the merge and the delete. Appends go through
//! an ordinary raw [`SegmentWriter`] on the transient segment, sharing the event writer's
//! in-flight budget, so at most that budget of the event is buffered at any time.
//!
//! When the merge finds the routed segment sealed, the event goes to the successor owning its
//! routing key: a new transient segment is created beside the successor (it may live in another
//! container), the old transient segment's bytes are copied into it (read back in bounded
//! pieces: the caller's chunks are not needed again) and the new one is merged.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use pravaha_wire::{self as wire, Reply, Request};

use super::EventWriterError;
use crate::controller::types::ScopedSegment;
use crate::segment::{
    next_request_id, Framing, Locator, ReaderConfig, ReaderError, SegmentReader, SegmentWriter,
    SessionEnd, WriterConfig, WriterError, MAX_EVENT_DATA,
};

/// The largest payload [`EventWriter::write_large_event`](super::EventWriter::write_large_event)
/// takes: 1 GiB, as Pravega's clients (and what readers accept by default).
pub const MAX_LARGE_EVENT_PAYLOAD: u64 = 1 << 30;

/// Small chunks are gathered into appends of about this size.
const PIECE: usize = 1 << 20;

/// Collects a stream of at most [`MAX_EVENT_PAYLOAD`](crate::segment::MAX_EVENT_PAYLOAD) bytes (the normal path), checking that
/// it yields exactly `size` bytes.
pub(super) async fn collect<S, E>(
    mut chunks: Pin<&mut S>,
    size: u64,
) -> Result<Bytes, EventWriterError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut payload = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
    while let Some(chunk) = next(chunks.as_mut()).await? {
        let total = payload.len() as u64 + chunk.len() as u64;
        if total > size {
            return Err(EventWriterError::SizeMismatch {
                expected: size,
                actual: total,
            });
        }
        payload.extend_from_slice(&chunk);
    }
    if payload.len() as u64 != size {
        return Err(EventWriterError::SizeMismatch {
            expected: size,
            actual: payload.len() as u64,
        });
    }
    Ok(payload.freeze())
}

async fn next<S, E>(chunks: Pin<&mut S>) -> Result<Option<Bytes>, EventWriterError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut chunks = chunks;
    match poll_fn(|context| chunks.as_mut().poll_next(context)).await {
        None => Ok(None),
        Some(Ok(chunk)) => Ok(Some(chunk)),
        Some(Err(error)) => Err(EventWriterError::Source(error.into())),
    }
}

/// How a merge went.
pub(super) enum Merged {
    /// The event is in the target, durably.
    Done,
    /// The target is sealed (or gone): the event must go to its successor.
    TargetSealed,
}

/// One transient segment beside `parent`, and the connection that keeps it alive.
pub(super) struct Transient {
    locator: Arc<dyn Locator>,
    config: WriterConfig,
    parent: ScopedSegment,
    /// On the parent; its connection owns the transient segment.
    admin: SegmentReader,
    name: String,
    /// Bytes appended (and acknowledged once [`Self::append_all`] returns).
    length: u64,
}

impl Transient {
    /// Creates a transient segment beside `parent`.
    pub(super) async fn create(
        locator: Arc<dyn Locator>,
        config: &WriterConfig,
        parent: &ScopedSegment,
    ) -> Result<Self, EventWriterError> {
        let parent_name = parent.qualified_name();
        let mut admin = SegmentReader::new(
            locator.clone(),
            parent_name.clone(),
            ReaderConfig::default(),
        );
        let writer_id = uuid::Uuid::new_v4().as_u128();
        let reply = admin
            .exchange(
                "CreateTransientSegment",
                |token| {
                    Request::CreateTransientSegment(wire::CreateTransientSegment {
                        request_id: next_request_id(),
                        writer_id,
                        segment: parent_name.clone(),
                        delegation_token: token,
                    })
                },
                |reply| matches!(reply, Reply::SegmentCreated(_) | Reply::SegmentIsSealed(_)),
            )
            .await
            .map_err(EventWriterError::SegmentStore)?;
        let name = match reply {
            Reply::SegmentCreated(created) => created.segment,
            _ => return Err(EventWriterError::Segment(WriterError::Sealed(parent_name))),
        };
        tracing::debug!(parent = %parent, transient = name, "created a transient segment");
        let config = WriterConfig {
            framing: Framing::Raw,
            ..config.clone()
        };
        Ok(Self {
            locator,
            config,
            parent: parent.clone(),
            admin,
            name,
            length: 0,
        })
    }

    pub(super) fn parent(&self) -> &ScopedSegment {
        &self.parent
    }

    /// Appends the event record: its 8-byte header (type 0, `size`), then the chunks, checking
    /// they add up to `size`. Returns once every byte is acknowledged.
    pub(super) async fn append_event<S, E>(
        &mut self,
        mut chunks: Pin<&mut S>,
        size: u64,
    ) -> Result<(), EventWriterError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let length = i32::try_from(size).map_err(|_| EventWriterError::EventTooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit: MAX_LARGE_EVENT_PAYLOAD as usize,
        })?;
        let mut appender = self.appender().await?;
        let mut pending = BytesMut::with_capacity(PIECE);
        pending.put_i32(wire::EVENT_TYPE);
        pending.put_i32(length);
        let mut received = 0u64;
        while let Some(chunk) = next(chunks.as_mut()).await? {
            received += chunk.len() as u64;
            if received > size {
                appender.abandon();
                return Err(EventWriterError::SizeMismatch {
                    expected: size,
                    actual: received,
                });
            }
            if pending.is_empty() && chunk.len() >= PIECE {
                appender.append(chunk).await?;
            } else {
                pending.extend_from_slice(&chunk);
                if pending.len() >= PIECE {
                    appender.append(pending.split().freeze()).await?;
                }
            }
        }
        if received != size {
            appender.abandon();
            return Err(EventWriterError::SizeMismatch {
                expected: size,
                actual: received,
            });
        }
        appender.append(pending.freeze()).await?;
        self.length = appender.finish().await?;
        Ok(())
    }

    /// A new transient segment beside `parent` holding this one's bytes; this one is deleted.
    pub(super) async fn move_to(
        mut self,
        parent: &ScopedSegment,
    ) -> Result<Self, EventWriterError> {
        let mut moved = Self::create(self.locator.clone(), &self.config, parent).await?;
        let mut appender = moved.appender().await?;
        let mut source = SegmentReader::new(
            self.locator.clone(),
            self.name.clone(),
            ReaderConfig::default(),
        );
        let piece = appender.piece;
        let mut offset = 0u64;
        while offset < self.length {
            let want = usize::try_from(self.length - offset)
                .unwrap_or(usize::MAX)
                .min(piece);
            let read = source
                .read(offset as i64, want)
                .await
                .map_err(EventWriterError::SegmentStore)?;
            if read.data.is_empty() {
                appender.abandon();
                return Err(EventWriterError::SegmentStore(ReaderError::Protocol {
                    segment: self.name.clone(),
                    message: format!(
                        "transient segment ended at {offset}, before its {} bytes",
                        self.length
                    ),
                }));
            }
            offset += read.data.len() as u64;
            appender.append(read.data).await?;
        }
        moved.length = appender.finish().await?;
        self.delete().await;
        Ok(moved)
    }

    /// Merges the transient segment into its parent: the whole event appears there at once.
    pub(super) async fn merge(&mut self) -> Result<Merged, EventWriterError> {
        let target = self.parent.qualified_name();
        let source = self.name.clone();
        let reply = self
            .admin
            .exchange(
                "MergeSegments",
                |token| {
                    Request::MergeSegments(wire::MergeSegments {
                        request_id: next_request_id(),
                        target: target.clone(),
                        source: source.clone(),
                        delegation_token: token,
                        attribute_updates: None,
                    })
                },
                |reply| {
                    matches!(
                        reply,
                        Reply::SegmentsMerged(_)
                            | Reply::SegmentIsSealed(_)
                            | Reply::NoSuchSegment(_)
                    )
                },
            )
            .await
            .map_err(EventWriterError::SegmentStore)?;
        match reply {
            Reply::SegmentsMerged(_) => {
                tracing::debug!(
                    target = target,
                    source = source,
                    bytes = self.length,
                    "merged a large event"
                );
                Ok(Merged::Done)
            }
            Reply::SegmentIsSealed(sealed) if sealed.segment != source => Ok(Merged::TargetSealed),
            Reply::NoSuchSegment(missing) if missing.segment != source => Ok(Merged::TargetSealed),
            _ => Err(EventWriterError::TransientSegmentLost(source)),
        }
    }

    /// Deletes the transient segment (also done by the segment store when the connection
    /// closes, so failures are only logged).
    pub(super) async fn delete(&mut self) {
        let name = self.name.clone();
        let deleted = self
            .admin
            .exchange(
                "DeleteSegment",
                |token| {
                    Request::DeleteSegment(wire::DeleteSegment {
                        request_id: next_request_id(),
                        segment: name.clone(),
                        delegation_token: token,
                    })
                },
                |reply| matches!(reply, Reply::SegmentDeleted(_)),
            )
            .await;
        if let Err(error) = deleted {
            tracing::debug!(transient = name, %error, "could not delete a transient segment");
        }
    }

    async fn appender(&self) -> Result<Appender, EventWriterError> {
        let writer =
            SegmentWriter::connect(self.locator.clone(), self.name.clone(), self.config.clone())
                .await?;
        // One append may carry at most MAX_EVENT_DATA bytes, and never more than the budget.
        let piece = MAX_EVENT_DATA.min(self.config.budget.capacity()).max(1);
        Ok(Appender {
            writer: Some(writer),
            name: self.name.clone(),
            piece,
            appended: 0,
        })
    }
}

/// Raw appends to a transient segment, each at most `piece` bytes.
struct Appender {
    /// `None` once the session failed (and was closed to learn why).
    writer: Option<SegmentWriter>,
    name: String,
    piece: usize,
    appended: u64,
}

impl Appender {
    /// Appends `data` in pieces; waits while the in-flight budget is spent.
    async fn append(&mut self, mut data: Bytes) -> Result<(), EventWriterError> {
        while !data.is_empty() {
            let piece = data.split_to(data.len().min(self.piece));
            let length = piece.len() as u64;
            let Some(writer) = &self.writer else {
                return Err(EventWriterError::Closed);
            };
            // Each outcome is checked by the flush in `finish`: a failed session fails it.
            if let Err(error) = writer.write(piece).await {
                return Err(self.failed(error).await);
            }
            self.appended += length;
        }
        Ok(())
    }

    /// Waits until every append is acknowledged; the bytes appended.
    async fn finish(mut self) -> Result<u64, EventWriterError> {
        let Some(writer) = &self.writer else {
            return Err(EventWriterError::Closed);
        };
        if let Err(error) = writer.flush().await {
            return Err(self.failed(error).await);
        }
        let writer = self.writer.take().expect("checked above");
        match writer.close().await {
            SessionEnd::Closed => Ok(self.appended),
            end => Err(EventWriterError::Segment(end_error(&self.name, end, None))),
        }
    }

    /// Stops appending (the transient segment goes with its connection or a delete).
    fn abandon(self) {
        drop(self.writer);
    }

    /// Why the session failed, as its end tells.
    async fn failed(&mut self, fallback: WriterError) -> EventWriterError {
        match self.writer.take() {
            Some(writer) => EventWriterError::Segment(end_error(
                &self.name,
                writer.close().await,
                Some(fallback),
            )),
            None => EventWriterError::Segment(fallback),
        }
    }
}

/// The error an ended transient session means (a transient segment is never sealed by others,
/// so any end but `Closed` is a failure of the large event).
fn end_error(name: &str, end: SessionEnd, fallback: Option<WriterError>) -> WriterError {
    let error = match &end {
        SessionEnd::Failed { error } => error.clone(),
        SessionEnd::Sealed { .. } => WriterError::Sealed(name.to_owned()),
        SessionEnd::NoSuchSegment { .. } => WriterError::NoSuchSegment(name.to_owned()),
        SessionEnd::Closed => fallback.unwrap_or_else(|| WriterError::Ended(name.to_owned())),
    };
    for event in end.into_unacked() {
        event.complete(Err(crate::segment::AppendError::Session(error.clone())));
    }
    error
}

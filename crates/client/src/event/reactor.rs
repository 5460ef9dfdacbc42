//! The task behind an [`EventWriter`](super::EventWriter): it owns the routing table and one
//! append session per segment, and handles commands one at a time, so that events handed back
//! by a sealed segment are resent to its successors before any later command is looked at
//! (per-key order across scaling).
//!
//! Sessions report their end (sealed, failed) through [`SegmentWriter::wait_ended`], also when
//! idle; a write to an ended session finds out at once. Either way the segment is retired: its
//! session closed, the events it hands back matched with their routing positions (the last
//! `unacked.len()` positions submitted to it; positions of acknowledged events are trimmed), the
//! successors fetched, routed into the table, and the events resent.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::routing::RoutingTable;
use super::EventWriterError;
use crate::controller::types::{ScopedSegment, ScopedStream, StreamCut};
use crate::controller::ControllerClient;
use crate::segment::{
    AppendError, Locator, PendingEvent, SegmentWriter, SessionEnd, WriterConfig, WriterError,
};

/// Times one event is routed again after the session it was given to ended, before it fails.
const ROUTE_ATTEMPTS: u32 = 16;

type Reply = oneshot::Sender<Result<(), EventWriterError>>;

pub(super) enum Command {
    Write {
        position: f64,
        event: PendingEvent,
    },
    Flush(Reply),
    NoteTime {
        timestamp: i64,
        done: Reply,
    },
    Close(Reply),
    /// Where a large event for `position` goes: once every earlier event for that segment has
    /// an outcome. `sealed` is a segment a merge found sealed: routed past first.
    LargeTarget {
        position: f64,
        sealed: Option<ScopedSegment>,
        done: oneshot::Sender<Result<ScopedSegment, EventWriterError>>,
    },
}

/// One segment's append session and the routing positions of its events without an outcome.
struct Slot {
    writer: SegmentWriter,
    /// Events submitted to the session; the session numbers them the same way, from 1.
    submitted: i64,
    positions: VecDeque<(i64, f64)>,
}

pub(super) struct Reactor {
    controller: ControllerClient,
    locator: Arc<dyn Locator>,
    stream: ScopedStream,
    writer_id: String,
    config: WriterConfig,
    routing: RoutingTable,
    slots: HashMap<ScopedSegment, Slot>,
    /// One task per session, completing with its segment when the session ends.
    ended: JoinSet<ScopedSegment>,
    /// The stream was found sealed: every event fails.
    sealed: bool,
    /// A failure to report with the next flush.
    failure: Option<EventWriterError>,
    noted_time: bool,
}

impl Reactor {
    /// Fetches the current segments and sets up a session on each.
    pub(super) async fn start(
        controller: ControllerClient,
        locator: Arc<dyn Locator>,
        stream: ScopedStream,
        writer_id: String,
        config: WriterConfig,
    ) -> Result<Self, EventWriterError> {
        let segments = controller.get_current_segments(&stream).await?;
        if segments.segments.is_empty() {
            return Err(EventWriterError::StreamSealed(stream));
        }
        let mut reactor = Self {
            controller,
            locator,
            stream,
            writer_id,
            config,
            routing: RoutingTable::new(&segments),
            slots: HashMap::new(),
            ended: JoinSet::new(),
            sealed: false,
            failure: None,
            noted_time: false,
        };
        for segment in reactor.routing.segments() {
            reactor.open(&segment).await?;
        }
        Ok(reactor)
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                biased;
                Some(ended) = self.ended.join_next() => {
                    if let Ok(segment) = ended {
                        self.on_ended(segment).await;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Write { position, event }) => self.route(position, event).await,
                    Some(Command::Flush(done)) => {
                        let _ = done.send(self.flush().await);
                    }
                    Some(Command::NoteTime { timestamp, done }) => {
                        let _ = done.send(self.note_time(timestamp).await);
                    }
                    Some(Command::LargeTarget { position, sealed, done }) => {
                        let _ = done.send(self.large_target(position, sealed).await);
                    }
                    Some(Command::Close(done)) => {
                        let _ = done.send(self.close().await);
                        return;
                    }
                    // The handle is gone: dropping the sessions lets them finish their events.
                    None => return,
                },
            }
        }
    }

    /// Sets up a session on `segment` and watches for its end.
    async fn open(&mut self, segment: &ScopedSegment) -> Result<(), WriterError> {
        let name = segment.qualified_name();
        let writer =
            SegmentWriter::connect(self.locator.clone(), name, self.config.clone()).await?;
        let ended = writer.wait_ended();
        let watched = segment.clone();
        self.ended.spawn(async move {
            ended.await;
            watched
        });
        tracing::debug!(segment = %segment, "event writer opened a segment");
        self.slots.insert(
            segment.clone(),
            Slot {
                writer,
                submitted: 0,
                positions: VecDeque::new(),
            },
        );
        Ok(())
    }

    async fn on_ended(&mut self, segment: ScopedSegment) {
        let ended = self
            .slots
            .get(&segment)
            .is_some_and(|slot| slot.writer.is_ended());
        if ended {
            self.retire(&segment).await;
        }
    }

    /// Sends `event` to the segment owning `position`, retiring ended sessions on the way.
    fn route(
        &mut self,
        position: f64,
        event: PendingEvent,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let mut event = event;
            for _ in 0..ROUTE_ATTEMPTS {
                if self.sealed {
                    return event.complete(Err(self.sealed_error()));
                }
                let Some(segment) = self.routing.segment_for(position).cloned() else {
                    return event.complete(Err(self.sealed_error()));
                };
                if !self.slots.contains_key(&segment) {
                    match self.open(&segment).await {
                        Ok(()) => {}
                        Err(WriterError::Sealed(_) | WriterError::NoSuchSegment(_)) => {
                            self.replace(&segment, Vec::new()).await;
                            continue;
                        }
                        Err(error) => return event.complete(Err(AppendError::Session(error))),
                    }
                }
                let slot = self.slots.get_mut(&segment).expect("opened above");
                match slot.writer.submit(event).await {
                    Ok(()) => {
                        slot.submitted += 1;
                        slot.positions.push_back((slot.submitted, position));
                        let done = slot.writer.done_through();
                        while slot
                            .positions
                            .front()
                            .is_some_and(|(number, _)| *number <= done)
                        {
                            slot.positions.pop_front();
                        }
                        return;
                    }
                    Err(back) => {
                        event = back;
                        self.retire(&segment).await;
                    }
                }
            }
            let error = WriterError::Ended(format!("every segment for position {position}"));
            event.complete(Err(AppendError::Session(error)));
        })
    }

    /// Ends `segment`'s session and deals with how it ended.
    async fn retire(&mut self, segment: &ScopedSegment) {
        let Some(slot) = self.slots.remove(segment) else {
            return;
        };
        let Slot {
            writer, positions, ..
        } = slot;
        match writer.close().await {
            SessionEnd::Closed => {}
            SessionEnd::Failed { error } => {
                tracing::warn!(segment = %segment, %error, "append session failed; its events failed");
                self.failure = Some(EventWriterError::Segment(error));
            }
            SessionEnd::Sealed { unacked } | SessionEnd::NoSuchSegment { unacked } => {
                assert!(
                    unacked.len() <= positions.len(),
                    "a session handed back {} events but only {} lack an outcome",
                    unacked.len(),
                    positions.len()
                );
                let skip = positions.len() - unacked.len();
                let resend = unacked
                    .into_iter()
                    .zip(
                        positions
                            .into_iter()
                            .skip(skip)
                            .map(|(_, position)| position),
                    )
                    .collect();
                self.replace(segment, resend).await;
            }
        }
    }

    /// `segment` is sealed (or gone): route its successors in its place and resend `resend`
    /// (events with their positions, in order) there.
    async fn replace(&mut self, segment: &ScopedSegment, resend: Vec<(PendingEvent, f64)>) {
        let successors = match self.controller.get_successors(segment).await {
            Ok(successors) => successors,
            Err(error) => {
                tracing::warn!(segment = %segment, %error, "could not fetch the successors of a sealed segment");
                let failure = WriterError::Locate {
                    segment: segment.qualified_name(),
                    message: error.to_string(),
                };
                for (event, _) in resend {
                    event.complete(Err(AppendError::Session(failure.clone())));
                }
                self.failure = Some(EventWriterError::Controller(error));
                return;
            }
        };
        if successors.successors.is_empty() {
            tracing::debug!(segment = %segment, "segment sealed without successors: the stream is sealed");
            self.sealed = true;
        } else if !self.routing.replace(segment, &successors.successors) {
            tracing::warn!(segment = %segment, "successors do not cover the sealed segment's keys");
            self.sealed = true;
        } else {
            tracing::debug!(segment = %segment, successors = successors.successors.len(), resend = resend.len(), "segment sealed; routing to its successors");
        }
        if self.sealed {
            self.failure = Some(EventWriterError::StreamSealed(self.stream.clone()));
        }
        for (event, position) in resend {
            self.route(position, event).await;
        }
    }

    /// The segment owning `position` once every event submitted to it has an outcome (so a
    /// large event merged into it lands after them); `sealed` (found sealed by a merge) is
    /// replaced by its successors first.
    async fn large_target(
        &mut self,
        position: f64,
        sealed: Option<ScopedSegment>,
    ) -> Result<ScopedSegment, EventWriterError> {
        if let Some(sealed) = sealed {
            if self.slots.contains_key(&sealed) {
                // Hands any events it did not take to the successors.
                self.retire(&sealed).await;
            }
            if self.routing.segments().contains(&sealed) {
                self.replace(&sealed, Vec::new()).await;
            }
        }
        for _ in 0..ROUTE_ATTEMPTS {
            if self.sealed {
                return Err(EventWriterError::StreamSealed(self.stream.clone()));
            }
            let Some(segment) = self.routing.segment_for(position).cloned() else {
                return Err(EventWriterError::StreamSealed(self.stream.clone()));
            };
            let Some(slot) = self.slots.get(&segment) else {
                return Ok(segment);
            };
            if slot.writer.flush().await.is_ok() {
                return Ok(segment);
            }
            // Sealed (its events move to the successors) or failed: look again.
            self.retire(&segment).await;
            if let Some(failure) = self.failure.take() {
                return Err(failure);
            }
        }
        Err(EventWriterError::Segment(WriterError::Ended(format!(
            "every segment for position {position}"
        ))))
    }

    /// Waits until every session has given an outcome to each of its events.
    async fn flush(&mut self) -> Result<(), EventWriterError> {
        loop {
            let mut retired = false;
            let segments: Vec<ScopedSegment> = self.slots.keys().cloned().collect();
            for segment in segments {
                let Some(slot) = self.slots.get(&segment) else {
                    continue;
                };
                if slot.writer.flush().await.is_err() {
                    self.retire(&segment).await;
                    retired = true;
                }
            }
            if !retired {
                return self.failure.take().map_or(Ok(()), Err);
            }
        }
    }

    async fn note_time(&mut self, timestamp: i64) -> Result<(), EventWriterError> {
        let mut position = StreamCut::new(self.stream.clone());
        for segment in self.routing.segments() {
            let offset = self
                .slots
                .get(&segment)
                .and_then(|slot| slot.writer.acknowledged_offset())
                .unwrap_or(0);
            position.positions.insert(segment.id, offset);
        }
        self.controller
            .note_timestamp_from_writer(&self.writer_id, &position, timestamp)
            .await?;
        self.noted_time = true;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), EventWriterError> {
        let flushed = self.flush().await;
        let segments: Vec<ScopedSegment> = self.slots.keys().cloned().collect();
        for segment in segments {
            // Everything is acknowledged; a seal now hands back nothing.
            self.retire(&segment).await;
        }
        if self.noted_time {
            self.controller
                .remove_writer(&self.stream, &self.writer_id)
                .await?;
        }
        flushed
    }

    fn sealed_error(&self) -> AppendError {
        AppendError::Session(WriterError::Sealed(self.stream.to_string()))
    }
}

//! The task behind a [`super::SegmentWriter`]: takes events from the handle, writes their
//! blocks pipelined, completes them as acks arrive, and reconnects after failures. The events'
//! bookkeeping (numbers, blocks, what to resend) is the [`Pipeline`]'s.

mod setup;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use pravaha_wire::Reply;
use tokio::sync::{mpsc, oneshot};

use super::connection::{ConnectionError, ConnectionReader, ConnectionWriter};
use super::event::{AppendError, PendingEvent};
use super::pipeline::Pipeline;
use super::writer::{SessionEnd, WriterConfig, WriterError};
use super::{Endpoint, Locator};

/// New blocks are encoded only while fewer bytes than this wait to be written, so that events
/// arriving meanwhile make larger blocks.
const OUTPUT_TARGET: usize = 256 << 10;
/// Commands taken in one go, so that a burst of events is packed together.
const COMMAND_BATCH: usize = 512;

pub(super) enum Command {
    Append(PendingEvent),
    Flush(oneshot::Sender<Result<(), WriterError>>),
    Reset,
}

#[derive(Debug)]
pub(super) struct SessionStats {
    pub(super) connections: AtomicU64,
    /// Every event numbered up to this one has an outcome (updated on acks).
    pub(super) done_through: AtomicI64,
    /// The segment's length after the last acknowledged append; -1 until one is known.
    pub(super) acknowledged_offset: AtomicI64,
}

impl SessionStats {
    pub(super) fn new() -> Self {
        Self {
            connections: AtomicU64::new(0),
            done_through: AtomicI64::new(0),
            acknowledged_offset: AtomicI64::new(-1),
        }
    }
}

pub(super) struct Link {
    reader: ConnectionReader,
    writer: ConnectionWriter,
}

/// What to look up again before the next connection attempt.
#[derive(Debug, Default, Clone, Copy)]
struct Refresh {
    endpoint: bool,
    token: bool,
}

/// How the session stops; the pending events are dealt with in [`Session::end`].
enum Outcome {
    Closed,
    Sealed,
    NoSuchSegment,
    Failed(WriterError),
}

enum Step {
    Continue,
    Reconnect {
        cause: WriterError,
        refresh: Refresh,
    },
    End(Outcome),
}

/// A failed setup attempt.
enum Attempt {
    Retry {
        cause: WriterError,
        refresh: Refresh,
    },
    End(Outcome),
}

pub(super) struct Session {
    segment: String,
    writer_id: u128,
    locator: Arc<dyn Locator>,
    config: WriterConfig,
    commands: mpsc::Receiver<Command>,
    stats: Arc<SessionStats>,
    pipeline: Pipeline,
    /// Flush waiters: done once every event up to the number has an outcome.
    flushes: Vec<(i64, oneshot::Sender<Result<(), WriterError>>)>,
    /// The event number of a failed conditional append, until a reset.
    conditional_failure: Option<i64>,
    /// The handle is gone: finish the pending events, then stop.
    closing: bool,
    /// Connection failures since the last progress (an event completed).
    failures: u32,
    last_failure: Option<WriterError>,
}

impl Session {
    pub(super) fn new(
        segment: String,
        writer_id: u128,
        locator: Arc<dyn Locator>,
        config: WriterConfig,
        commands: mpsc::Receiver<Command>,
        stats: Arc<SessionStats>,
    ) -> Self {
        let pipeline = Pipeline::new(writer_id, config.partial_block_window);
        Self {
            segment,
            writer_id,
            locator,
            config,
            commands,
            stats,
            pipeline,
            flushes: Vec::new(),
            conditional_failure: None,
            closing: false,
            failures: 0,
            last_failure: None,
        }
    }

    /// The first setup, in the caller's task, so that its failure is the caller's error.
    pub(super) async fn start(&mut self) -> Result<Link, WriterError> {
        self.establish(Refresh::default())
            .await
            .map_err(|outcome| match outcome {
                Outcome::Sealed => WriterError::Sealed(self.segment.clone()),
                Outcome::NoSuchSegment => WriterError::NoSuchSegment(self.segment.clone()),
                Outcome::Failed(error) => error,
                Outcome::Closed => WriterError::Ended(self.segment.clone()),
            })
    }

    pub(super) async fn run(mut self, link: Link) -> SessionEnd {
        let mut link = Some(link);
        let mut refresh = Refresh::default();
        loop {
            if self.closing && self.pipeline.is_empty() {
                return self.end(Outcome::Closed).await;
            }
            if link.is_none() && self.pipeline.has_unwritten() {
                match self.establish(refresh).await {
                    Ok(established) => link = Some(established),
                    Err(outcome) => return self.finish(outcome).await,
                }
                refresh = Refresh::default();
                continue;
            }
            let step = match link.as_mut() {
                Some(current) => self.step(current).await,
                None => self.idle().await,
            };
            match step {
                Step::Continue => {}
                Step::Reconnect {
                    cause,
                    refresh: wanted,
                } => {
                    if self.pipeline.is_empty() {
                        tracing::debug!(segment = %self.segment, error = %cause, "idle append connection lost");
                    } else {
                        tracing::warn!(segment = %self.segment, writer_id = %format_args!("{:032x}", self.writer_id), error = %cause, "append connection lost, reconnecting");
                    }
                    link = None;
                    refresh = wanted;
                    self.pipeline.requeue();
                    if self.pipeline.has_unwritten() {
                        self.failures += 1;
                    }
                    self.last_failure = Some(cause);
                }
                Step::End(outcome) => {
                    // Not needed any more; settling a seal uses a connection of its own.
                    drop(link);
                    return self.finish(outcome).await;
                }
            }
        }
    }

    async fn finish(mut self, outcome: Outcome) -> SessionEnd {
        let outcome = match outcome {
            Outcome::Sealed => self.settle_sealed().await,
            other => other,
        };
        self.end(outcome).await
    }

    /// One turn with a connection: encode what can go, then whichever comes first of a reply,
    /// progress writing, or a command.
    async fn step(&mut self, link: &mut Link) -> Step {
        if let Err(error) = self.fill(&mut link.writer) {
            return Step::End(Outcome::Failed(WriterError::Connection(error)));
        }
        let writing = link.writer.buffered() > 0;
        tokio::select! {
            biased;
            reply = link.reader.read_reply() => match reply {
                Ok(reply) => self.on_reply(reply, link.reader.endpoint()),
                Err(error) => Self::lost(error),
            },
            written = link.writer.write_some(), if writing => match written {
                Ok(()) => Step::Continue,
                Err(error) => Self::lost(error),
            },
            command = self.commands.recv(), if !self.closing => {
                self.on_commands(command);
                Step::Continue
            }
        }
    }

    /// No connection and nothing to send: wait for the next command.
    async fn idle(&mut self) -> Step {
        let command = self.commands.recv().await;
        self.on_commands(command);
        Step::Continue
    }

    fn lost(error: ConnectionError) -> Step {
        let refresh = Refresh::default();
        Step::Reconnect {
            cause: WriterError::Connection(error),
            refresh,
        }
    }

    /// Handles `first` and whatever other commands are ready, up to a batch.
    fn on_commands(&mut self, first: Option<Command>) {
        let Some(first) = first else {
            self.closing = true;
            return;
        };
        self.on_command(first);
        for _ in 1..COMMAND_BATCH {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.closing = true;
                    return;
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Append(event) => {
                if let Some(event_number) = self.conditional_failure {
                    event.complete(Err(AppendError::ConditionalCheckFailed { event_number }));
                    return;
                }
                self.pipeline.push(event);
            }
            Command::Flush(done) => {
                self.flushes.push((self.pipeline.last_assigned(), done));
                self.complete_flushes();
            }
            Command::Reset => self.conditional_failure = None,
        }
    }

    /// Encodes blocks while the output is short and there is something that may go now.
    fn fill(&mut self, writer: &mut ConnectionWriter) -> Result<(), ConnectionError> {
        while writer.buffered() < OUTPUT_TARGET {
            let Some(block) = self.pipeline.next_block() else {
                return Ok(());
            };
            writer.enqueue(&block)?;
        }
        Ok(())
    }

    fn on_reply(&mut self, reply: Reply, endpoint: &Endpoint) -> Step {
        match reply {
            Reply::DataAppended(ack) if ack.writer_id == self.writer_id => {
                if ack.current_segment_write_offset >= 0 {
                    self.stats
                        .acknowledged_offset
                        .fetch_max(ack.current_segment_write_offset, Ordering::Relaxed);
                }
                self.on_ack(ack.event_number)
            }
            Reply::ConditionalCheckFailed(failed) if failed.writer_id == self.writer_id => {
                self.on_conditional_failure(failed.event_number);
                Step::Continue
            }
            Reply::KeepAlive => Step::Continue,
            // The server closes the connection after it; the next setup resynchronises.
            Reply::InvalidEventNumber(invalid) => Step::Reconnect {
                cause: self.protocol(format!(
                    "invalid event number: {}",
                    invalid.server_stack_trace
                )),
                refresh: Refresh::default(),
            },
            other => match self.refusal(other, endpoint, "an append") {
                Attempt::Retry { cause, refresh } => Step::Reconnect { cause, refresh },
                Attempt::End(outcome) => Step::End(outcome),
            },
        }
    }

    fn on_ack(&mut self, event_number: i64) -> Step {
        match self.pipeline.ack(event_number) {
            Ok(completed) => {
                if completed > 0 {
                    self.failures = 0;
                }
                self.stats
                    .done_through
                    .store(self.pipeline.done_through(), Ordering::Relaxed);
                self.complete_flushes();
                Step::Continue
            }
            Err(message) => Step::End(Outcome::Failed(self.protocol(message))),
        }
    }

    /// A conditional block failed: it was alone in flight. Fail it and everything queued, and
    /// refuse events until a reset.
    fn on_conditional_failure(&mut self, event_number: i64) {
        self.pipeline
            .fail_all(&AppendError::ConditionalCheckFailed { event_number });
        self.conditional_failure = Some(event_number);
        self.complete_flushes();
    }

    /// Answers the flush waiters whose events all have an outcome.
    fn complete_flushes(&mut self) {
        let done_through = self.pipeline.done_through();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|(through, _)| *through <= done_through);
        self.flushes = waiting;
        for (_, waiter) in done {
            let _ = waiter.send(Ok(()));
        }
    }

    /// Stops: hands back or fails every pending event (including those still queued in the
    /// channel, which is closed first so that no more arrive) and answers the flush waiters.
    async fn end(mut self, outcome: Outcome) -> SessionEnd {
        self.commands.close();
        let mut pending: Vec<PendingEvent> = self.pipeline.drain();
        // `recv` (not `try_recv`) also waits for sends that got their slot before the close.
        while let Some(command) = self.commands.recv().await {
            match command {
                Command::Append(event) => pending.push(event),
                Command::Flush(done) => self.flushes.push((0, done)),
                Command::Reset => {}
            }
        }
        let error = match &outcome {
            Outcome::Closed => WriterError::Ended(self.segment.clone()),
            Outcome::Sealed => WriterError::Sealed(self.segment.clone()),
            Outcome::NoSuchSegment => WriterError::NoSuchSegment(self.segment.clone()),
            Outcome::Failed(error) => error.clone(),
        };
        for (_, waiter) in self.flushes.drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
        tracing::debug!(segment = %self.segment, pending = pending.len(), reason = %error, "append session ended");
        match outcome {
            Outcome::Closed => {
                debug_assert!(pending.is_empty(), "closed with pending events");
                SessionEnd::Closed
            }
            Outcome::Sealed => SessionEnd::Sealed { unacked: pending },
            Outcome::NoSuchSegment => SessionEnd::NoSuchSegment { unacked: pending },
            Outcome::Failed(error) => {
                for event in pending {
                    event.complete(Err(AppendError::Session(error.clone())));
                }
                SessionEnd::Failed { error }
            }
        }
    }

    fn protocol(&self, message: String) -> WriterError {
        WriterError::Protocol {
            segment: self.segment.clone(),
            message,
        }
    }
}

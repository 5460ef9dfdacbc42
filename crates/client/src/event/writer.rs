//! [`EventWriter`]: the handle; the routing and the segment writers live in its reactor task
//! (`reactor.rs`).

use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::large::{self, Merged, Transient, MAX_LARGE_EVENT_PAYLOAD};
use super::reactor::{Command, Reactor};
use super::routing::key_position;
use super::EventWriterError;
use crate::controller::types::{ScopedSegment, ScopedStream};
use crate::controller::ControllerClient;
use crate::segment::{
    AppendFuture, ByteBudget, Framing, Locator, PendingEvent, WriterConfig, MAX_EVENT_PAYLOAD,
};

/// Commands queued for the reactor; each write holds its bytes' budget, so memory stays
/// bounded by the budget plus this many small commands.
const COMMAND_QUEUE: usize = 1024;

/// Writes events to a stream.
///
/// Each event goes to the segment that owns its routing key's position in the key space
/// (hashed exactly as Pravega's clients hash it); events without a key go to a random position.
/// Events with the same routing key are appended in the order they were written, also across
/// scaling: when a segment is sealed, the writer asks the controller for its successors and
/// resends the events the sealed segment did not take to them, in order, before any later event.
/// Connection failures are retried and resent exactly once (see
/// [`SegmentWriter`](crate::segment::SegmentWriter)).
///
/// Bytes written and not yet acknowledged are bounded by the configuration's
/// `max_in_flight_bytes_per_writer`; [`Self::write_event`] waits while the budget is spent.
/// [`Self::write_event`] refuses events larger than
/// [`MAX_EVENT_PAYLOAD`](crate::segment::MAX_EVENT_PAYLOAD) (8 MiB) with
/// [`EventWriterError::EventTooLarge`]; [`Self::write_large_event`] writes events up to
/// [`MAX_LARGE_EVENT_PAYLOAD`] (1 GiB) atomically, from a stream of chunks.
///
/// Call [`Self::close`] when done: it waits for every event and tells the controller the
/// writer is gone (for watermarks). Dropping the writer still lets written events finish, but
/// events caught by a seal after that are dropped.
///
/// ```no_run
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::event::ClientFactory;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let factory = ClientFactory::new(ClientConfig::default())?;
/// let writer = factory
///     .create_event_writer(ScopedStream::new("examples", "orders"))
///     .await?;
/// let acknowledged = writer.write_event(Some("customer-17"), "order 1").await?;
/// writer.write_event(None, "no key: any segment").await?;
/// acknowledged.await?; // durable
/// writer.note_time(1_700_000_000_000).await?; // event time reached, for watermarks
/// writer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventWriter {
    stream: ScopedStream,
    writer_id: String,
    budget: ByteBudget,
    /// For large events' transient segments.
    locator: Arc<dyn Locator>,
    config: WriterConfig,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl EventWriter {
    /// A writer on `stream` that finds segments through `controller` and `locator` and sets up
    /// append sessions on every current segment. `config.budget` bounds its bytes in flight.
    pub async fn new(
        controller: ControllerClient,
        locator: Arc<dyn Locator>,
        stream: ScopedStream,
        config: WriterConfig,
    ) -> Result<Self, EventWriterError> {
        let writer_id = uuid::Uuid::new_v4().simple().to_string();
        let budget = config.budget.clone();
        let reactor = Reactor::start(
            controller,
            locator.clone(),
            stream.clone(),
            writer_id.clone(),
            config.clone(),
        )
        .await?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let task = tokio::spawn(reactor.run(receiver));
        Ok(Self {
            stream,
            writer_id,
            budget,
            locator,
            config,
            commands,
            task,
        })
    }

    /// The stream this writer writes to.
    pub fn stream(&self) -> &ScopedStream {
        &self.stream
    }

    /// This writer's id as the controller knows it (watermarks, transactions).
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Bytes written and not yet acknowledged (framing included).
    pub fn in_flight_bytes(&self) -> usize {
        self.budget.capacity() - self.budget.available()
    }

    /// The most bytes that may be in flight.
    pub fn in_flight_capacity(&self) -> usize {
        self.budget.capacity()
    }

    /// Writes one event with `routing_key` (or at a random position without one). Waits while
    /// the in-flight budget is spent; the returned future completes once the event is durable.
    pub async fn write_event(
        &self,
        routing_key: Option<&str>,
        payload: impl Into<Bytes>,
    ) -> Result<AppendFuture, EventWriterError> {
        self.write_at(key_position(routing_key), payload.into())
            .await
    }

    async fn write_at(
        &self,
        position: f64,
        payload: Bytes,
    ) -> Result<AppendFuture, EventWriterError> {
        let prepared = PendingEvent::prepare(payload, Framing::Events, None, &self.budget);
        let (event, future) = tokio::select! {
            prepared = prepared => prepared?,
            () = self.commands.closed() => return Err(EventWriterError::Closed),
        };
        self.commands
            .send(Command::Write { position, event })
            .await
            .map_err(|_| EventWriterError::Closed)?;
        Ok(future)
    }

    /// Writes one event of `size` bytes (up to [`MAX_LARGE_EVENT_PAYLOAD`], 1 GiB) from a stream
    /// of chunks, atomically: readers see the whole event or nothing of it. Returns once the
    /// event is durable in the stream.
    ///
    /// The chunks are never held together: they are appended, as they come, to a transient
    /// segment beside the segment owning `routing_key` (Pravega's large-event design), at most
    /// the writer's in-flight budget of them unacknowledged at a time; the transient segment is
    /// then merged into the routed segment, which appends it as one record. Chunks may have any
    /// sizes (small ones are gathered, large ones split); they must add up to exactly `size`
    /// ([`EventWriterError::SizeMismatch`] otherwise, and nothing is written).
    ///
    /// Order: the event lands after every event written before this call with the same routing
    /// key (the routed segment's earlier events are waited for first) and before every event
    /// written after it returns; events written concurrently, from other tasks, are not ordered
    /// with it. If the routed segment is sealed meanwhile, the event goes whole to the successor
    /// owning the key (its bytes are copied from the old transient segment: the stream of
    /// chunks is read once).
    ///
    /// Events of at most [`MAX_EVENT_PAYLOAD`] bytes take the ordinary path (collected, then
    /// [`Self::write_event`]).
    ///
    /// Failures: [`EventWriterError::EventTooLarge`] above 1 GiB, [`EventWriterError::Source`]
    /// when the stream yields an error, [`EventWriterError::StreamSealed`],
    /// [`EventWriterError::TransientSegmentLost`] when the segment store dropped the transient
    /// segment (its connection broke), and segment and segment store errors. After a failure
    /// nothing of the event is in the stream.
    ///
    /// ```no_run
    /// use bytes::Bytes;
    /// use pravaha_client::config::ClientConfig;
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::event::ClientFactory;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let factory = ClientFactory::new(ClientConfig::default())?;
    /// let writer = factory
    ///     .create_event_writer(ScopedStream::new("examples", "videos"))
    ///     .await?;
    /// // 256 MiB in 1 MiB chunks, produced one at a time (e.g. read from a file).
    /// let chunks = futures::stream::iter(
    ///     (0..256).map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![i as u8; 1 << 20]))),
    /// );
    /// writer.write_large_event(Some("video-7"), 256 << 20, chunks).await?; // durable
    /// writer.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_large_event<S, E>(
        &self,
        routing_key: Option<&str>,
        size: u64,
        chunks: S,
    ) -> Result<(), EventWriterError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if size > MAX_LARGE_EVENT_PAYLOAD {
            return Err(EventWriterError::EventTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: MAX_LARGE_EVENT_PAYLOAD as usize,
            });
        }
        let position = key_position(routing_key);
        let mut chunks = std::pin::pin!(chunks);
        if size <= MAX_EVENT_PAYLOAD as u64 {
            let payload = large::collect(chunks.as_mut(), size).await?;
            let acknowledged = self.write_at(position, payload).await?;
            return acknowledged.await.map_err(EventWriterError::Append);
        }
        let target = self.large_target(position, None).await?;
        let mut transient = Transient::create(self.locator.clone(), &self.config, &target).await?;
        transient.append_event(chunks.as_mut(), size).await?;
        loop {
            match transient.merge().await? {
                Merged::Done => return Ok(()),
                Merged::TargetSealed => {
                    let sealed = transient.parent().clone();
                    tracing::debug!(segment = %sealed, "a large event's segment is sealed; moving it to the successor");
                    let target = match self.large_target(position, Some(sealed)).await {
                        Ok(target) => target,
                        Err(error) => {
                            transient.delete().await;
                            return Err(error);
                        }
                    };
                    transient = transient.move_to(&target).await?;
                }
            }
        }
    }

    async fn large_target(
        &self,
        position: f64,
        sealed: Option<ScopedSegment>,
    ) -> Result<ScopedSegment, EventWriterError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::LargeTarget {
                position,
                sealed,
                done,
            })
            .await
            .map_err(|_| EventWriterError::Closed)?;
        answer.await.unwrap_or(Err(EventWriterError::Closed))
    }

    /// Waits until every event written before has an outcome (its future is complete). Fails
    /// with the reason if a segment's session failed for good or the stream was sealed since
    /// the last flush.
    pub async fn flush(&self) -> Result<(), EventWriterError> {
        self.ask(Command::Flush).await
    }

    /// Tells the controller this writer has written every event with an event time below
    /// `timestamp` (ms since the Unix epoch), up to its acknowledged position in each segment.
    /// Readers' watermarks follow these marks. Times must not go backwards.
    pub async fn note_time(&self, timestamp: i64) -> Result<(), EventWriterError> {
        self.ask(|done| Command::NoteTime { timestamp, done }).await
    }

    /// Flushes, ends every append session, and removes the writer from the controller's
    /// watermark bookkeeping (if it noted a time).
    pub async fn close(self) -> Result<(), EventWriterError> {
        let result = self.ask(Command::Close).await;
        let Self { commands, task, .. } = self;
        drop(commands);
        let _ = task.await;
        result
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), EventWriterError>>) -> Command,
    ) -> Result<(), EventWriterError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(command(done))
            .await
            .map_err(|_| EventWriterError::Closed)?;
        answer.await.unwrap_or(Err(EventWriterError::Closed))
    }
}

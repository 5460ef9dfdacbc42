//! [`SegmentWriter`]: the handle of one append session; the session itself runs as a task
//! (`session.rs`).

use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::budget::ByteBudget;
use super::connection::{ConnectionConfig, ConnectionError};
use super::event::{AppendError, AppendFuture, Framing, PendingEvent};
use super::session::{Command, Session, SessionStats};
use super::{Endpoint, Locator};
use crate::config::RetryPolicy;

/// Commands queued between the handle and the session task; the byte budget bounds the rest.
const COMMAND_QUEUE: usize = 1024;

/// How an append session behaves.
///
/// Writers that share one budget share its bound, e.g. the writers of one stream's segments:
///
/// ```
/// use pravaha_client::segment::{ByteBudget, Framing, WriterConfig};
///
/// let bytes = WriterConfig {
///     framing: Framing::Raw,
///     budget: ByteBudget::new(1 << 20),
///     ..WriterConfig::default()
/// };
/// let same_budget = bytes.clone();
/// let permit = bytes.budget.try_acquire(1 << 19).expect("half the budget is free");
/// assert_eq!(same_budget.budget.available(), 1 << 19);
/// # drop(permit);
/// ```
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// How [`SegmentWriter::write`] turns payloads into segment bytes.
    pub framing: Framing,
    /// Bytes written and not yet acknowledged; clones share it (see [`ByteBudget`]).
    pub budget: ByteBudget,
    /// Reconnection attempts after a failure, before the session gives up.
    pub retry: RetryPolicy,
    pub connection: ConnectionConfig,
    /// Bounds waiting for the reply to `SetupAppend`.
    pub setup_timeout: Duration,
    /// `Some(n)`: a new block that is small (fewer than 500 events and 256 KiB) waits while
    /// `n` blocks are in flight, and the events arriving meanwhile join it; it goes when an
    /// acknowledgement frees a place. A session fed slowly, such as one of the many segments an
    /// event writer spreads its events over, then sends a few large blocks per round trip
    /// instead of a block, a socket write and a segment store append per handful of events.
    /// An acknowledgement is always due while a block waits; larger blocks go at once.
    /// `None` (the default): every block goes as soon as the connection takes it, so the
    /// segment store sees each event without waiting for acknowledgements.
    pub partial_block_window: Option<NonZeroUsize>,
}

impl Default for WriterConfig {
    /// Pravega events, 16 MiB in flight, [`RetryPolicy::default`], 30 s for a setup, every
    /// block sent at once.
    fn default() -> Self {
        Self {
            framing: Framing::Events,
            budget: ByteBudget::new(16 << 20),
            retry: RetryPolicy::default(),
            connection: ConnectionConfig::default(),
            setup_timeout: Duration::from_secs(30),
            partial_block_window: None,
        }
    }
}

/// Why an append session could not start, failed, or refused an event.
///
/// ```
/// use pravaha_client::segment::{Endpoint, WriterError};
///
/// let moved = WriterError::WrongHost {
///     segment: "shop/orders/0.#epoch.0".into(),
///     endpoint: Endpoint::new("store-1.local", 12345),
/// };
/// assert!(moved.is_retryable());
/// assert_eq!(
///     moved.to_string(),
///     "segment store store-1.local:12345 does not own segment shop/orders/0.#epoch.0"
/// );
/// assert!(!WriterError::Sealed("shop/orders/0.#epoch.0".into()).is_retryable());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriterError {
    #[error("segment {0} is sealed")]
    Sealed(String),
    #[error("segment {0} does not exist")]
    NoSuchSegment(String),
    /// The token was reported expired even after asking the locator for a fresh one.
    #[error("the delegation token for segment {0} has expired")]
    TokenExpired(String),
    /// The token is invalid or does not grant writing.
    #[error("the delegation token for segment {segment} was refused: {message}")]
    TokenRefused { segment: String, message: String },
    /// The segment store does not own the segment (after asking the locator again).
    #[error("segment store {endpoint} does not own segment {segment}")]
    WrongHost { segment: String, endpoint: Endpoint },
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("could not locate segment {segment}: {message}")]
    Locate { segment: String, message: String },
    #[error(
        "segment store {endpoint} did not answer SetupAppend for {segment} within {timeout:?}"
    )]
    SetupTimeout {
        segment: String,
        endpoint: Endpoint,
        timeout: Duration,
    },
    #[error("gave up on segment {segment} after {attempts} failed attempts; last: {last}")]
    RetriesExhausted {
        segment: String,
        attempts: u32,
        last: Box<WriterError>,
    },
    /// `ErrorMessage`: code 0 = illegal argument (e.g. a table segment, an append too large),
    /// -1 = a failure on the server.
    #[error("segment store refused appends to {segment} (code {code}): {message}")]
    Server {
        segment: String,
        code: i32,
        message: String,
    },
    #[error("segment store violated the append protocol on {segment}: {message}")]
    Protocol { segment: String, message: String },
    #[error("an append of {size} bytes exceeds the limit of {limit} bytes")]
    EventTooLarge { size: usize, limit: usize },
    #[error("an append of {size} bytes exceeds the in-flight budget of {capacity} bytes")]
    ExceedsBudget { size: usize, capacity: usize },
    /// The session has ended; [`SegmentWriter::close`] tells how.
    #[error("the append session on segment {0} has ended")]
    Ended(String),
}

impl WriterError {
    /// Whether a new connection attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connection(error) => {
                !matches!(error, ConnectionError::IncompatibleVersion { .. })
            }
            Self::TokenExpired(_)
            | Self::WrongHost { .. }
            | Self::Locate { .. }
            | Self::SetupTimeout { .. } => true,
            _ => false,
        }
    }
}

/// How an append session ended.
///
/// A sealed segment hands back the events it did not take; they go to its successor, in order:
///
/// ```no_run
/// # use pravaha_client::segment::SegmentWriter;
/// # type Error = Box<dyn std::error::Error>;
/// # async fn example(writer: SegmentWriter, successor: SegmentWriter) -> Result<(), Error> {
/// use pravaha_client::segment::SessionEnd;
///
/// match writer.close().await {
///     SessionEnd::Closed => {}
///     end @ (SessionEnd::Sealed { .. } | SessionEnd::NoSuchSegment { .. }) => {
///         for event in end.into_unacked() {
///             // Each keeps its future: whoever awaits it learns the successor's outcome.
///             if let Err(event) = successor.submit(event).await {
///                 event.complete(Err(pravaha_client::segment::AppendError::Dropped));
///             }
///         }
///     }
///     SessionEnd::Failed { error } => return Err(error.into()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub enum SessionEnd {
    /// Closed by the caller (or its handle dropped) after every event was acknowledged.
    Closed,
    /// The segment is sealed. `unacked` are the events not in it, in order: write them to the
    /// successor segments, in this order, to keep per-key order.
    Sealed { unacked: Vec<PendingEvent> },
    /// The segment does not exist (deleted, or truncated away with its stream). As for
    /// `Sealed`, `unacked` are not in it.
    NoSuchSegment { unacked: Vec<PendingEvent> },
    /// The session failed for good; every pending event was completed with
    /// [`AppendError::Session`].
    Failed { error: WriterError },
}

impl SessionEnd {
    /// The events handed back (`Sealed`, `NoSuchSegment`), in order; none otherwise.
    pub fn into_unacked(self) -> Vec<PendingEvent> {
        match self {
            Self::Sealed { unacked } | Self::NoSuchSegment { unacked } => unacked,
            Self::Closed | Self::Failed { .. } => Vec::new(),
        }
    }
}

/// One writer id's append session on one segment.
///
/// Events are numbered in the order they are given (from 1) and appended in that order,
/// pipelined. Each completes through its [`AppendFuture`] once the segment store acknowledged
/// it. Connection failures are retried as [`WriterConfig::retry`] allows; the session is set up
/// again with the same writer id and resends only what the segment store lacks, so every event
/// is appended exactly once. The session ends when the segment is sealed or missing (the
/// unacknowledged events are handed back by [`SegmentWriter::close`]), or on a failure that
/// retrying cannot fix.
///
/// Conditional appends (an expected offset) travel alone: one block at a time, nothing else
/// in flight. After one fails, every event is refused with
/// [`AppendError::ConditionalCheckFailed`] until [`SegmentWriter::reset`].
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use bytes::Bytes;
/// use pravaha_client::segment::{Endpoint, SegmentWriter, StaticLocator, WriterConfig};
///
/// let locator = Arc::new(StaticLocator::new(Endpoint::new("127.0.0.1", 12345)));
/// let writer =
///     SegmentWriter::connect(locator, "shop/orders/0.#epoch.0", WriterConfig::default()).await?;
/// let mut acknowledgements = Vec::new();
/// for order in ["order 1", "order 2", "order 3"] {
///     // Pipelined: no waiting for the previous acknowledgement.
///     acknowledgements.push(writer.write(Bytes::from(order)).await?);
/// }
/// for acknowledged in acknowledgements {
///     acknowledged.await?; // durable, in this order
/// }
/// println!("segment length now {:?}", writer.acknowledged_offset());
/// writer.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SegmentWriter {
    segment: String,
    writer_id: u128,
    framing: Framing,
    budget: ByteBudget,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<SessionEnd>,
    stats: Arc<SessionStats>,
    /// Becomes true when the session task has ended.
    ended: watch::Receiver<bool>,
}

impl SegmentWriter {
    /// Sets up an append session on `segment` with a new random writer id. Fails if the
    /// segment does not exist, the token is refused, or no connection could be set up within
    /// the retry policy.
    pub async fn connect(
        locator: Arc<dyn Locator>,
        segment: impl Into<String>,
        config: WriterConfig,
    ) -> Result<Self, WriterError> {
        let segment = segment.into();
        let writer_id = uuid::Uuid::new_v4().as_u128();
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        let stats = Arc::new(SessionStats::new());
        let framing = config.framing;
        let budget = config.budget.clone();
        let mut session = Session::new(
            segment.clone(),
            writer_id,
            locator,
            config,
            receiver,
            stats.clone(),
        );
        let link = session.start().await?;
        let (ended_sender, ended) = watch::channel(false);
        let task = tokio::spawn(async move {
            let end = session.run(link).await;
            let _ = ended_sender.send(true);
            end
        });
        Ok(Self {
            segment,
            writer_id,
            framing,
            budget,
            commands,
            task,
            stats,
            ended,
        })
    }

    /// The qualified name of the segment written.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// The session's writer id (random), under which the segment store tracks its events.
    pub fn writer_id(&self) -> u128 {
        self.writer_id
    }

    /// The in-flight budget its events hold (for [`PendingEvent::prepare`]).
    pub fn budget(&self) -> &ByteBudget {
        &self.budget
    }

    /// How many times the session was set up: 1, plus one per reconnection.
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::Relaxed)
    }

    /// Every event given to this session, up to this many (in order), has an outcome; events
    /// after it may not. Lags the acknowledgements slightly; never runs ahead of them.
    pub fn done_through(&self) -> i64 {
        self.stats.done_through.load(Ordering::Relaxed)
    }

    /// The segment's length after the last acknowledged append of this session (so everything
    /// it acknowledged lies below it); `None` before the first acknowledgement.
    pub fn acknowledged_offset(&self) -> Option<i64> {
        let offset = self.stats.acknowledged_offset.load(Ordering::Relaxed);
        (offset >= 0).then_some(offset)
    }

    /// Completes when the session has ended (sealed segment, failure, or closed); then
    /// [`Self::close`] tells how without waiting. The future does not borrow the writer.
    pub fn wait_ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ended = self.ended.clone();
        async move {
            // An error means the task is gone, which is an end too.
            let _ = ended.wait_for(|ended| *ended).await;
        }
    }

    /// Whether the session has ended (then [`Self::close`] returns at once).
    pub fn is_ended(&self) -> bool {
        self.commands.is_closed() || self.task.is_finished()
    }

    /// Appends `payload` (framed as configured). Waits while the budget is spent (back
    /// pressure); the returned future completes when the event is acknowledged. Fails if the
    /// session has ended (the payload is then not written).
    pub async fn write(&self, payload: Bytes) -> Result<AppendFuture, WriterError> {
        self.write_with(payload, None).await
    }

    /// Appends `payload` only if the segment's length is `expected_offset` when it is applied
    /// (conditional append); otherwise its future fails with
    /// [`AppendError::ConditionalCheckFailed`].
    pub async fn write_conditional(
        &self,
        payload: Bytes,
        expected_offset: i64,
    ) -> Result<AppendFuture, WriterError> {
        self.write_with(payload, Some(expected_offset)).await
    }

    async fn write_with(
        &self,
        payload: Bytes,
        expected_offset: Option<i64>,
    ) -> Result<AppendFuture, WriterError> {
        let prepared = tokio::select! {
            prepared = PendingEvent::prepare(payload, self.framing, expected_offset, &self.budget) => prepared?,
            // Events handed back by an ended session hold budget until the caller takes them.
            () = self.commands.closed() => return Err(self.ended()),
        };
        let (event, future) = prepared;
        match self.submit(event).await {
            Ok(()) => Ok(future),
            Err(event) => {
                event.complete(Err(AppendError::Session(self.ended())));
                Err(self.ended())
            }
        }
    }

    /// Gives this session a prepared event (for instance one handed back by a sealed
    /// predecessor), keeping its future and budget permit. Returns it if the session has ended.
    pub async fn submit(&self, event: PendingEvent) -> Result<(), PendingEvent> {
        self.commands
            .send(Command::Append(event))
            .await
            .map_err(|rejected| match rejected.0 {
                Command::Append(event) => event,
                _ => unreachable!("an append was sent"),
            })
    }

    /// Waits until every event given before has an outcome (acknowledged, or failed a
    /// conditional check). Fails if the session ended first: then [`Self::close`] hands back
    /// what was not appended.
    pub async fn flush(&self) -> Result<(), WriterError> {
        let (done, waiter) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).await.is_err() {
            return Err(self.ended());
        }
        waiter.await.unwrap_or_else(|_| Err(self.ended()))
    }

    /// Accepts events again after a failed conditional append.
    pub async fn reset(&self) {
        // An ended session has nothing to reset.
        let _ = self.commands.send(Command::Reset).await;
    }

    /// Waits until every event is acknowledged, then ends the session; or, if it ended
    /// already, tells how (with the events it hands back).
    pub async fn close(self) -> SessionEnd {
        let Self {
            commands,
            task,
            segment,
            ..
        } = self;
        drop(commands);
        match task.await {
            Ok(end) => end,
            Err(error) => SessionEnd::Failed {
                error: WriterError::Protocol {
                    segment,
                    message: format!("the append session task stopped: {error}"),
                },
            },
        }
    }

    fn ended(&self) -> WriterError {
        WriterError::Ended(self.segment.clone())
    }
}

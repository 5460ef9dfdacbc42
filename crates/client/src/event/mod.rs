//! Event streams: writers (routing keys, successors, exactly-once), transactions; reader groups
//! and readers come next.
//!
//! - [`ClientFactory`] makes writers from a [`ClientConfig`]; it holds one
//!   [`ControllerClient`] and one [`ControllerLocator`] (segment endpoints and tokens, cached)
//!   that its writers share.
//! - [`EventWriter`] routes events by key to the stream's segments, keeps per-key order across
//!   scaling (a sealed segment's unacknowledged events go to its successors before anything
//!   later) and bounds the bytes in flight. [`EventWriter::write_large_event`] writes events up
//!   to 1 GiB atomically from a stream of chunks (a transient segment merged into the routed
//!   segment), never holding the whole event.
//! - [`TransactionalEventWriter`] opens [`Transaction`]s: events written into one become
//!   visible all at once when it commits, or never when it aborts.
//!
//! ```no_run
//! use pravaha_client::config::ClientConfig;
//! use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
//! use pravaha_client::event::ClientFactory;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let factory = ClientFactory::new(ClientConfig::from_env()?)?;
//! let stream = ScopedStream::new("examples", "orders");
//! factory.controller().create_scope("examples").await?;
//! factory.controller().create_stream(&stream, &StreamConfiguration::fixed(4)).await?;
//!
//! let writer = factory.create_event_writer(stream.clone()).await?;
//! for i in 0..100 {
//!     writer.write_event(Some(&format!("key-{}", i % 10)), format!("event {i}")).await?;
//! }
//! writer.close().await?;
//!
//! let transactions = factory.create_transactional_writer(stream);
//! let mut transaction = transactions.begin().await?;
//! transaction.write_event(Some("key-1"), "all or nothing").await?;
//! transaction.commit(None).await?;
//! # Ok(()) }
//! ```

mod large;
mod reactor;
mod routing;
mod transaction;
mod writer;

use std::num::NonZeroUsize;
use std::sync::Arc;

pub use crate::locator::ControllerLocator;
pub use large::MAX_LARGE_EVENT_PAYLOAD;
pub use routing::key_position;
pub use transaction::{Transaction, TransactionalEventWriter, DEFAULT_TRANSACTION_LEASE};
pub use writer::EventWriter;

use crate::config::ClientConfig;
use crate::controller::types::ScopedStream;
use crate::controller::{ControllerClient, ControllerError};
use crate::segment::{AppendError, ByteBudget, Locator, ReaderError, WriterConfig, WriterError};

/// Blocks in flight per segment behind which the sessions of a factory's writers gather
/// events into a block that is not full. Two rather than one, so that a segment's next block
/// can join the segment store's batch gathered while the previous one is made durable.
pub const PARTIAL_BLOCK_WINDOW: usize = 2;

/// Why an event writer or a transaction could not do what was asked.
///
/// ```
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::event::EventWriterError;
///
/// let error = EventWriterError::StreamSealed(ScopedStream::new("sc", "st"));
/// assert_eq!(error.to_string(), "stream sc/st is sealed");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventWriterError {
    /// The controller refused or could not answer.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// A segment's append session failed (or could not start).
    #[error(transparent)]
    Segment(WriterError),
    /// The event's payload exceeds what one append carries (8 MiB, for
    /// [`EventWriter::write_event`]) or the largest event (1 GiB, for
    /// [`EventWriter::write_large_event`]).
    #[error("an event of {size} bytes exceeds the limit of {limit} bytes")]
    EventTooLarge { size: usize, limit: usize },
    /// An event was not appended (its session failed, or it was dropped).
    #[error(transparent)]
    Append(AppendError),
    /// A request to a segment store (creating, merging or reading a large event's transient
    /// segment) failed.
    #[error("segment store request failed: {0}")]
    SegmentStore(#[source] ReaderError),
    /// A large event's chunks did not add up to the size announced.
    #[error("the event was announced as {expected} bytes but its chunks hold {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
    /// A large event's stream of chunks failed; nothing of the event is in the stream.
    #[error("the event's chunks failed: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A large event's transient segment disappeared before its merge (the connection that
    /// created it broke, and the segment store deleted it); nothing of the event is in the
    /// stream, and the chunks are consumed: write the event again.
    #[error("transient segment {0} was lost before its merge")]
    TransientSegmentLost(String),
    /// The event (framed) exceeds the writer's whole in-flight budget.
    #[error("an event of {size} bytes exceeds the in-flight budget of {capacity} bytes")]
    ExceedsBudget { size: usize, capacity: usize },
    /// The stream is sealed: it takes no more events.
    #[error("stream {0} is sealed")]
    StreamSealed(ScopedStream),
    /// The writer was closed, or its task stopped.
    #[error("the writer is closed")]
    Closed,
    /// The transaction is no longer open (committed, aborted, or timed out).
    #[error("transaction {id} is {state}")]
    TransactionNotOpen { id: String, state: String },
}

impl From<WriterError> for EventWriterError {
    fn from(error: WriterError) -> Self {
        match error {
            WriterError::EventTooLarge { size, limit } => Self::EventTooLarge { size, limit },
            WriterError::ExceedsBudget { size, capacity } => Self::ExceedsBudget { size, capacity },
            other => Self::Segment(other),
        }
    }
}

/// Makes event writers and transactional writers for streams, sharing one controller client
/// and one segment locator.
///
/// ```no_run
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::event::ClientFactory;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let factory = ClientFactory::new(ClientConfig::default())?;
/// let writer = factory.create_event_writer(ScopedStream::new("examples", "orders")).await?;
/// writer.write_event(Some("key"), "hello").await?.await?;
/// writer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientFactory {
    controller: ControllerClient,
    locator: Arc<ControllerLocator>,
}

impl ClientFactory {
    /// A factory for the controller(s) of `config`. Must be called inside a Tokio runtime;
    /// nothing is connected yet.
    pub fn new(config: ClientConfig) -> Result<Self, ControllerError> {
        Ok(Self::with_controller(ControllerClient::new(config)?))
    }

    /// A factory over an existing controller client (sharing its connections).
    pub fn with_controller(controller: ControllerClient) -> Self {
        Self {
            locator: Arc::new(ControllerLocator::new(controller.clone())),
            controller,
        }
    }

    /// The controller client the factory's writers use.
    pub fn controller(&self) -> &ControllerClient {
        &self.controller
    }

    /// The locator the factory's writers share.
    pub fn locator(&self) -> Arc<dyn Locator> {
        self.locator.clone()
    }

    /// How this factory's writers set up append sessions: the configuration's in-flight budget
    /// (a new one per call) and retry policy, and partial blocks gathered behind
    /// [`PARTIAL_BLOCK_WINDOW`] blocks in flight (see [`WriterConfig::partial_block_window`]).
    pub fn writer_config(&self) -> WriterConfig {
        let config = self.controller.config();
        let retry = config.retry_policy();
        let budget = usize::try_from(config.max_in_flight_bytes_per_writer()).unwrap_or(usize::MAX);
        WriterConfig {
            budget: ByteBudget::new(budget),
            retry: *retry,
            partial_block_window: NonZeroUsize::new(PARTIAL_BLOCK_WINDOW),
            ..WriterConfig::default()
        }
    }

    /// An event writer on `stream`, with sessions set up on its current segments.
    pub async fn create_event_writer(
        &self,
        stream: ScopedStream,
    ) -> Result<EventWriter, EventWriterError> {
        self.create_event_writer_with(stream, self.writer_config())
            .await
    }

    /// Like [`Self::create_event_writer`], with explicit session settings (budget, retries).
    pub async fn create_event_writer_with(
        &self,
        stream: ScopedStream,
        config: WriterConfig,
    ) -> Result<EventWriter, EventWriterError> {
        EventWriter::new(self.controller.clone(), self.locator(), stream, config).await
    }

    /// A writer of transactions on `stream`.
    pub fn create_transactional_writer(&self, stream: ScopedStream) -> TransactionalEventWriter {
        TransactionalEventWriter::new(
            self.controller.clone(),
            self.locator(),
            stream,
            self.writer_config(),
        )
    }
}

//! Transactions: events written beside the stream's segments (in `#transaction.` segments) that
//! the controller merges into the stream all at once on commit, or deletes on abort.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::routing::{key_position, RoutingTable};
use super::EventWriterError;
use crate::controller::types::{ScopedSegment, ScopedStream, StreamSegments};
use crate::controller::{ControllerClient, PingStatus, TransactionState, TxnId};
use crate::segment::{
    AppendError, AppendFuture, Framing, Locator, PendingEvent, SegmentWriter, SessionEnd,
    WriterConfig, WriterError,
};

/// The lease a transaction gets unless told otherwise (as Pravega's clients: 90 s).
pub const DEFAULT_TRANSACTION_LEASE: Duration = Duration::from_secs(90);

/// Opens transactions on one stream.
///
/// A transaction's lease must be renewed with [`Transaction::ping`] before it runs out, or the
/// controller aborts it (there is no background pinger yet).
///
/// ```no_run
/// use std::time::Duration;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::event::ClientFactory;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let factory = ClientFactory::new(ClientConfig::default())?;
/// let writer = factory
///     .create_transactional_writer(ScopedStream::new("examples", "orders"))
///     .with_lease(Duration::from_secs(30));
/// let mut transaction = writer.begin().await?;
/// transaction.write_event(Some("customer-17"), "debit").await?;
/// transaction.write_event(Some("customer-42"), "credit").await?;
/// transaction.commit(None).await?; // both visible, or neither
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TransactionalEventWriter {
    controller: ControllerClient,
    locator: Arc<dyn Locator>,
    stream: ScopedStream,
    config: WriterConfig,
    writer_id: String,
    lease: Duration,
}

impl TransactionalEventWriter {
    /// A writer of transactions on `stream`; `config.budget` bounds the bytes in flight of all
    /// its transactions together.
    pub fn new(
        controller: ControllerClient,
        locator: Arc<dyn Locator>,
        stream: ScopedStream,
        config: WriterConfig,
    ) -> Self {
        Self {
            controller,
            locator,
            stream,
            config,
            writer_id: uuid::Uuid::new_v4().simple().to_string(),
            lease: DEFAULT_TRANSACTION_LEASE,
        }
    }

    /// Transactions begun from now on get `lease`.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The stream the transactions write to.
    pub fn stream(&self) -> &ScopedStream {
        &self.stream
    }

    /// The writer id sent with commits (for watermarks).
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// Opens a transaction.
    pub async fn begin(&self) -> Result<Transaction, EventWriterError> {
        let created = self
            .controller
            .create_transaction(&self.stream, self.lease)
            .await?;
        Ok(self.transaction_with(created.id, &created.segments))
    }

    /// A handle on the transaction `id` (begun earlier, perhaps by another process).
    pub async fn transaction(&self, id: TxnId) -> Result<Transaction, EventWriterError> {
        let segments = self
            .controller
            .get_epoch_segments(&self.stream, id.epoch())
            .await?;
        Ok(self.transaction_with(id, &segments))
    }

    fn transaction_with(&self, id: TxnId, segments: &StreamSegments) -> Transaction {
        Transaction {
            id,
            writer: self.clone(),
            routing: RoutingTable::new(segments),
            writers: HashMap::new(),
            finished: None,
        }
    }
}

/// One open transaction: events written to it are routed by key as in the stream, but stay
/// invisible until [`Self::commit`]; [`Self::abort`] discards them.
///
/// ```no_run
/// # async fn example(writer: pravaha_client::event::TransactionalEventWriter) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pravaha_client::controller::TransactionState;
///
/// let mut transaction = writer.begin().await?;
/// transaction.write_event(None, "maybe").await?;
/// transaction.ping(Duration::from_secs(60)).await?;
/// assert_eq!(transaction.status().await?, TransactionState::Open);
/// transaction.abort().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Transaction {
    id: TxnId,
    writer: TransactionalEventWriter,
    routing: RoutingTable,
    /// Append sessions on the transaction's segments, set up on first use.
    writers: HashMap<ScopedSegment, SegmentWriter>,
    /// Set once committed or aborted through this handle.
    finished: Option<TransactionState>,
}

impl Transaction {
    /// The transaction's id, as the controller knows it.
    pub fn id(&self) -> TxnId {
        self.id
    }

    /// The stream the transaction writes to.
    pub fn stream(&self) -> &ScopedStream {
        &self.writer.stream
    }

    /// Writes one event into the transaction (routed by `routing_key`, or at random). Waits
    /// while the in-flight budget is spent; the future completes when the event is durable in
    /// the transaction (visible only after the commit).
    pub async fn write_event(
        &mut self,
        routing_key: Option<&str>,
        payload: impl Into<Bytes>,
    ) -> Result<AppendFuture, EventWriterError> {
        self.check_open()?;
        let parent = self
            .routing
            .segment_for(key_position(routing_key))
            .cloned()
            .ok_or_else(|| EventWriterError::StreamSealed(self.writer.stream.clone()))?;
        let (event, future) = PendingEvent::prepare(
            payload.into(),
            Framing::Events,
            None,
            &self.writer.config.budget,
        )
        .await?;
        let writer = self.session(&parent).await?;
        if let Err(event) = writer.submit(event).await {
            let error = self.end_session(&parent).await;
            event.complete(Err(AppendError::Session(error.clone())));
            return Err(EventWriterError::Segment(error));
        }
        Ok(future)
    }

    /// Waits until every event written so far is durable in the transaction.
    pub async fn flush(&mut self) -> Result<(), EventWriterError> {
        let parents: Vec<ScopedSegment> = self.writers.keys().cloned().collect();
        for parent in parents {
            let writer = &self.writers[&parent];
            if writer.flush().await.is_err() {
                return Err(EventWriterError::Segment(self.end_session(&parent).await));
            }
        }
        Ok(())
    }

    /// Flushes, then commits: every event of the transaction appears in the stream at once,
    /// after what the stream already holds. `timestamp` (event time, ms) feeds watermarks.
    pub async fn commit(&mut self, timestamp: Option<i64>) -> Result<(), EventWriterError> {
        self.check_open()?;
        self.flush().await?;
        for (parent, writer) in self.writers.drain() {
            match writer.close().await {
                SessionEnd::Closed => {}
                other => {
                    return Err(EventWriterError::Segment(session_error(&parent, other)));
                }
            }
        }
        self.writer
            .controller
            .commit_transaction(
                &self.writer.stream,
                self.id,
                &self.writer.writer_id,
                timestamp.unwrap_or(i64::MIN),
            )
            .await?;
        self.finished = Some(TransactionState::Committed);
        Ok(())
    }

    /// Aborts: no event of the transaction ever becomes visible. Events still in flight are
    /// dropped.
    pub async fn abort(&mut self) -> Result<(), EventWriterError> {
        self.check_open()?;
        // Dropping the sessions lets them finish; the abort deletes the segments under them.
        self.writers.clear();
        self.writer
            .controller
            .abort_transaction(&self.writer.stream, self.id)
            .await?;
        self.finished = Some(TransactionState::Aborted);
        Ok(())
    }

    /// Renews the lease to `lease` from now.
    pub async fn ping(&self, lease: Duration) -> Result<PingStatus, EventWriterError> {
        Ok(self
            .writer
            .controller
            .ping_transaction(&self.writer.stream, self.id, lease)
            .await?)
    }

    /// Where the transaction stands, as the controller sees it.
    pub async fn status(&self) -> Result<TransactionState, EventWriterError> {
        Ok(self
            .writer
            .controller
            .check_transaction_state(&self.writer.stream, self.id)
            .await?)
    }

    fn check_open(&self) -> Result<(), EventWriterError> {
        match self.finished {
            None => Ok(()),
            Some(state) => Err(EventWriterError::TransactionNotOpen {
                id: self.id.to_string(),
                state: format!("{state:?}").to_lowercase(),
            }),
        }
    }

    /// The session on `parent`'s transaction segment, set up if needed.
    async fn session(
        &mut self,
        parent: &ScopedSegment,
    ) -> Result<&SegmentWriter, EventWriterError> {
        if !self.writers.contains_key(parent) {
            let name = pravaha_types::transaction_segment_name(
                &parent.stream.scope,
                &parent.stream.stream,
                parent.id.0,
                self.id.0,
            );
            let writer = SegmentWriter::connect(
                self.writer.locator.clone(),
                name,
                self.writer.config.clone(),
            )
            .await?;
            self.writers.insert(parent.clone(), writer);
        }
        Ok(&self.writers[parent])
    }

    /// Ends `parent`'s session after it failed; its events fail with the returned reason
    /// (a transaction segment is sealed or deleted only when the transaction ends).
    async fn end_session(&mut self, parent: &ScopedSegment) -> WriterError {
        let Some(writer) = self.writers.remove(parent) else {
            return WriterError::Ended(parent.qualified_name());
        };
        session_error(parent, writer.close().await)
    }
}

/// What a transaction session's end means: handed-back events fail with it.
fn session_error(parent: &ScopedSegment, end: SessionEnd) -> WriterError {
    let error = match &end {
        SessionEnd::Failed { error } => error.clone(),
        SessionEnd::Sealed { .. } => WriterError::Sealed(parent.qualified_name()),
        SessionEnd::NoSuchSegment { .. } => WriterError::NoSuchSegment(parent.qualified_name()),
        SessionEnd::Closed => WriterError::Ended(parent.qualified_name()),
    };
    for event in end.into_unacked() {
        event.complete(Err(AppendError::Session(error.clone())));
    }
    error
}

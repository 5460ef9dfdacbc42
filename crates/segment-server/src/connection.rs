//! One client connection: decode frames, dispatch requests, write replies.
//!
//! Appends are handed to their container in arrival order without waiting for the previous one
//! to be durable; their outcomes come back in the same order through `acks`, and consecutive
//! acknowledgements of one writer that are ready together go out as one `DataAppended`. Reads
//! run as tasks of their own (a read at the tail of an open segment long-polls). Everything
//! else is answered in order, inline.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use pravaha_segmentstore::{
    AppendConditions, AppendOutcome, AttributeUpdate, ContainerHandle, ExpectedVersion,
    SegmentError, SegmentKind, TableChange,
};
use pravaha_wire::{self as wire, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::auth::Permission;
use crate::rates::{RateTable, SegmentRate};
use crate::replies::{self, attributes, to_i64};
use crate::Shared;

mod tables;

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Close {
    #[error("malformed frame: {0}")]
    Malformed(#[from] wire::WireError),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("client wire versions {low}..={high} are not supported (server: {oldest}..={newest})", oldest = wire::OLDEST_COMPATIBLE_VERSION, newest = wire::WIRE_VERSION)]
    Version { low: i32, high: i32 },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Fatal(String),
}

type AckFuture = Pin<Box<dyn Future<Output = AppendDone> + Send>>;

/// The outcome of one append command.
struct AppendDone {
    writer_id: u128,
    segment: Arc<str>,
    request_id: i64,
    event_number: i64,
    /// Events in the append (for the segment's event rate).
    events: u32,
    bytes: usize,
    conditional: bool,
    result: Result<AppendOutcome, SegmentError>,
}

/// A writer set up on this connection.
struct WriterState {
    segment: Arc<str>,
    /// The last event number acknowledged (initially the one `AppendSetup` reported).
    last_acked: i64,
    /// The last event number handed to the container.
    last_submitted: i64,
    /// The body of a Java client's `AppendBlock`, until its `AppendBlockEnd`.
    open_block: Option<Bytes>,
    /// Where the segment's append rates are counted (`None`: not measured).
    rate: Option<Arc<SegmentRate>>,
}

/// An acknowledgement waiting to be sent (several may be folded into one).
struct PendingAck {
    request_id: i64,
    event_number: i64,
    length: u64,
}

pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut connection = Connection::new(shared, peer);
    let mut stream = stream;
    let outcome = connection.run(&mut stream).await;
    if outcome.is_err() && !connection.out.is_empty() {
        // The reply that explains the close (a Hello, InvalidEventNumber) goes out first.
        let explain = stream.write_all(&connection.out);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), explain).await;
    }
    match outcome {
        Ok(()) => tracing::debug!(%peer, "connection closed by the client"),
        Err(Close::Io(error)) => tracing::debug!(%peer, %error, "connection lost"),
        Err(reason) => tracing::warn!(%peer, %reason, "closing connection"),
    }
    connection.cleanup().await;
}

pub(crate) struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    out: BytesMut,
    writers: HashMap<u128, WriterState>,
    acks: FuturesOrdered<AckFuture>,
    ready_acks: Vec<(u128, PendingAck)>,
    in_flight_bytes: usize,
    reads: JoinSet<Reply>,
    /// Transient segments created here; deleted when the connection closes.
    transient: Vec<String>,
}

impl Connection {
    fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        Self {
            shared,
            peer,
            out: BytesMut::with_capacity(64 << 10),
            writers: HashMap::new(),
            acks: FuturesOrdered::new(),
            ready_acks: Vec::new(),
            in_flight_bytes: 0,
            reads: JoinSet::new(),
            transient: Vec::new(),
        }
    }

    fn can_take_more(&self) -> bool {
        let limits = &self.shared.config.limits;
        self.in_flight_bytes < limits.max_in_flight_append_bytes
            && self.reads.len() < limits.max_pending_reads
    }

    async fn run(&mut self, stream: &mut TcpStream) -> Result<(), Close> {
        let limit = self.shared.config.limits.max_frame_payload;
        let mut input = BytesMut::with_capacity(64 << 10);
        loop {
            while self.can_take_more() {
                let Some((type_code, payload)) = wire::split_frame(&mut input, limit)? else {
                    break;
                };
                let request = Request::decode(type_code, payload)?;
                self.handle(request).await?;
            }
            self.flush_acks();
            if !self.out.is_empty() {
                stream.write_all(&self.out).await?;
                self.out.clear();
            }
            let reading = self.can_take_more();
            tokio::select! {
                biased;
                Some(done) = self.acks.next(), if !self.acks.is_empty() => {
                    self.complete_append(done)?;
                    // Fold in every other append that is already done.
                    while let Some(Some(done)) = self.acks.next().now_or_never() {
                        self.complete_append(done)?;
                    }
                }
                Some(read) = self.reads.join_next(), if !self.reads.is_empty() => {
                    let reply = read.map_err(|error| Close::Fatal(format!("read task failed: {error}")))?;
                    self.send(&reply);
                }
                received = stream.read_buf(&mut input), if reading => {
                    if received? == 0 {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Deletes the transient segments this connection created.
    async fn cleanup(&mut self) {
        for name in std::mem::take(&mut self.transient) {
            match self.container(&name).delete_segment(&name).await {
                Ok(()) | Err(SegmentError::NoSuchSegment(_)) => {}
                Err(error) => {
                    tracing::warn!(peer = %self.peer, segment = name, %error, "could not delete a transient segment");
                }
            }
        }
    }

    fn container(&self, segment: &str) -> &ContainerHandle {
        self.shared.store.container(segment)
    }

    fn send(&mut self, reply: &Reply) {
        tracing::trace!(peer = %self.peer, reply = ?reply, "reply");
        if let Err(error) = reply.encode(&mut self.out) {
            // Only strings longer than 64 KiB can fail, and every string here came from a frame.
            tracing::error!(peer = %self.peer, %error, reply = reply.name(), "could not encode a reply");
        }
    }

    /// `Some(reply)` if the request must be refused: the segment is not owned here, or the token
    /// does not grant `needed`.
    fn refuse(
        &self,
        request_id: i64,
        segment: &str,
        token: &str,
        needed: Permission,
    ) -> Option<Reply> {
        if !self.shared.owns(segment) {
            return Some(replies::wrong_host(request_id, segment));
        }
        let verifier = self.shared.config.auth.as_ref()?;
        let error = verifier.verify(token, segment, needed).err()?;
        Some(Reply::AuthTokenCheckFailed(wire::AuthTokenCheckFailed {
            request_id,
            server_stack_trace: error.to_string(),
            error_code: error.code(),
        }))
    }

    async fn handle(&mut self, request: Request) -> Result<(), Close> {
        tracing::trace!(peer = %self.peer, request = ?request, "request");
        match request {
            Request::Hello(hello) => {
                self.send(&Reply::Hello(wire::Hello {
                    high_version: wire::WIRE_VERSION,
                    low_version: wire::OLDEST_COMPATIBLE_VERSION,
                }));
                if hello.low_version > wire::WIRE_VERSION
                    || hello.high_version < wire::OLDEST_COMPATIBLE_VERSION
                {
                    return Err(Close::Version {
                        low: hello.low_version,
                        high: hello.high_version,
                    });
                }
            }
            Request::KeepAlive => self.send(&Reply::KeepAlive),
            Request::SetupAppend(setup) => self.setup_append(setup).await?,
            Request::AppendBlock(block) => {
                let writer = self.writer(block.writer_id, "AppendBlock")?;
                if writer.open_block.is_some() {
                    return Err(Close::Protocol(format!(
                        "writer {:032x} sent AppendBlock before ending the previous one",
                        block.writer_id
                    )));
                }
                writer.open_block = Some(block.data);
            }
            Request::AppendBlockEnd(end) => self.append_block_end(end).await?,
            Request::ConditionalAppend(append) => {
                // The event is stored as the client framed it: header, then payload.
                let mut data = BytesMut::with_capacity(8 + append.event_data.len());
                data.extend_from_slice(&wire::EVENT_TYPE.to_be_bytes());
                let length = i32::try_from(append.event_data.len())
                    .map_err(|_| Close::Protocol("event too large".into()))?;
                data.extend_from_slice(&length.to_be_bytes());
                data.extend_from_slice(&append.event_data);
                self.submit_append(
                    append.writer_id,
                    append.request_id,
                    append.event_number,
                    Some(append.expected_offset),
                    data.freeze(),
                    1,
                )
                .await?;
            }
            Request::ConditionalBlockEnd(append) => {
                // Counted as one event, as Pravega counts a conditional append.
                self.submit_append(
                    append.writer_id,
                    append.request_id,
                    append.event_number,
                    Some(append.expected_offset),
                    append.data,
                    1,
                )
                .await?;
            }
            Request::ReadSegment(read) => self.read_segment(read),
            other => {
                let reply = self.admin(other).await;
                self.send(&reply);
            }
        }
        Ok(())
    }

    fn writer(&mut self, writer_id: u128, command: &str) -> Result<&mut WriterState, Close> {
        self.writers.get_mut(&writer_id).ok_or_else(|| {
            Close::Protocol(format!(
                "{command} for writer {writer_id:032x}, which has not sent SetupAppend"
            ))
        })
    }

    async fn setup_append(&mut self, setup: wire::SetupAppend) -> Result<(), Close> {
        let segment = setup.segment;
        if let Some(refusal) = self.refuse(
            setup.request_id,
            &segment,
            &setup.delegation_token,
            Permission::ReadUpdate,
        ) {
            self.send(&refusal);
            return Ok(());
        }
        // The writer's last durable event number is an attribute keyed by its id. A sealed
        // segment still gets AppendSetup; the seal is reported on the first append.
        let stored = self
            .container(&segment)
            .get_attributes(&segment, vec![setup.writer_id])
            .await;
        match stored {
            Ok(values) => {
                let last = values
                    .first()
                    .copied()
                    .flatten()
                    .unwrap_or(wire::NULL_ATTRIBUTE_VALUE);
                self.writers.insert(
                    setup.writer_id,
                    WriterState {
                        segment: Arc::from(segment.as_str()),
                        last_acked: last,
                        last_submitted: last,
                        open_block: None,
                        rate: self.shared.rates.track(&segment, Instant::now()),
                    },
                );
                self.send(&Reply::AppendSetup(wire::AppendSetup {
                    request_id: setup.request_id,
                    segment,
                    writer_id: setup.writer_id,
                    last_event_number: last,
                }));
            }
            Err(error) => {
                let reply = replies::for_error(setup.request_id, &segment, &error, -1);
                self.send(&reply);
            }
        }
        Ok(())
    }

    async fn append_block_end(&mut self, end: wire::AppendBlockEnd) -> Result<(), Close> {
        if end.num_events <= 0 {
            return Err(Close::Protocol(format!(
                "AppendBlockEnd of writer {:032x} carries {} events",
                end.writer_id, end.num_events
            )));
        }
        let writer = self.writer(end.writer_id, "AppendBlockEnd")?;
        let data = match writer.open_block.take() {
            None => end.data,
            Some(body) => {
                // A Java client's block: whole events, then at most one partial event, then the
                // rest of that event in the AppendBlockEnd.
                let whole = usize::try_from(end.size_of_whole_events).map_err(|_| {
                    Close::Protocol("negative size_of_whole_events in AppendBlockEnd".into())
                })?;
                let (events, partial) = wire::split_append_block(&body, whole)?;
                if partial.is_none() && !end.data.is_empty() {
                    return Err(Close::Protocol(
                        "AppendBlockEnd continues an event that its block did not start".into(),
                    ));
                }
                let mut joined = BytesMut::with_capacity(
                    events.len() + partial.as_ref().map_or(0, Bytes::len) + end.data.len(),
                );
                joined.extend_from_slice(&events);
                if let Some(partial) = partial {
                    joined.extend_from_slice(&partial);
                }
                joined.extend_from_slice(&end.data);
                joined.freeze()
            }
        };
        // Positive (checked above).
        let events = end.num_events.unsigned_abs();
        self.submit_append(
            end.writer_id,
            end.request_id,
            end.last_event_number,
            None,
            data,
            events,
        )
        .await
    }

    /// Hands one append to its container; its outcome arrives through `acks`, in order.
    async fn submit_append(
        &mut self,
        writer_id: u128,
        request_id: i64,
        event_number: i64,
        expected_offset: Option<i64>,
        data: Bytes,
        events: u32,
    ) -> Result<(), Close> {
        let writer = self.writer(writer_id, "an append")?;
        if event_number < writer.last_submitted {
            // Event numbers of a writer never go back: the client is confused. Tell it, then
            // close so that it starts over with SetupAppend (as Pravega does).
            let reply = Reply::InvalidEventNumber(wire::InvalidEventNumber {
                writer_id,
                request_id,
                server_stack_trace: format!(
                    "event number {event_number} is below the last one, {}",
                    writer.last_submitted
                ),
                event_number: Some(event_number),
            });
            let message = format!(
                "writer {writer_id:032x} sent event number {event_number} after {}",
                writer.last_submitted
            );
            self.send(&reply);
            return Err(Close::Protocol(message));
        }
        writer.last_submitted = event_number;
        let segment = writer.segment.clone();
        let bytes = data.len();
        let conditional = expected_offset.is_some();
        let conditions = AppendConditions {
            expected_offset: expected_offset
                .map(|offset| u64::try_from(offset).unwrap_or(u64::MAX)),
            writer: Some((writer_id, event_number)),
        };
        let shared = self.shared.clone();
        let submitted = shared
            .store
            .container(&segment)
            .submit_append(&segment, data, conditions)
            .await;
        let done = move |result| AppendDone {
            writer_id,
            segment,
            request_id,
            event_number,
            events,
            bytes,
            conditional,
            result,
        };
        self.in_flight_bytes += bytes;
        let future: AckFuture = match submitted {
            Ok(outcome) => Box::pin(outcome.map(done)),
            // Failures go through the same queue, to keep each writer's replies in order.
            Err(error) => Box::pin(std::future::ready(done(Err(error)))),
        };
        self.acks.push_back(future);
        Ok(())
    }

    fn complete_append(&mut self, done: AppendDone) -> Result<(), Close> {
        self.in_flight_bytes -= done.bytes;
        match done.result {
            Ok(outcome) => {
                if outcome.offset.is_some() {
                    // Written now (not a duplicate): counts towards the segment's rates.
                    self.record_rate(done.writer_id, done.events, done.bytes);
                }
                let ack = PendingAck {
                    request_id: done.request_id,
                    event_number: done.event_number,
                    length: outcome.length,
                };
                match self
                    .ready_acks
                    .iter_mut()
                    .find(|(w, _)| *w == done.writer_id)
                {
                    Some((_, pending)) => *pending = ack,
                    None => self.ready_acks.push((done.writer_id, ack)),
                }
                Ok(())
            }
            Err(error) => {
                // Whatever was acknowledged before this failure goes out first.
                self.flush_ack(done.writer_id);
                let reply = match &error {
                    SegmentError::BadOffset { .. } if done.conditional => {
                        Reply::ConditionalCheckFailed(wire::ConditionalCheckFailed {
                            writer_id: done.writer_id,
                            event_number: done.event_number,
                            request_id: done.request_id,
                        })
                    }
                    SegmentError::Sealed(_) | SegmentError::NoSuchSegment(_) => {
                        // The writer must set up again (on a successor).
                        self.writers.remove(&done.writer_id);
                        let offset = if matches!(error, SegmentError::Sealed(_)) {
                            done.event_number
                        } else {
                            -1
                        };
                        replies::for_error(done.request_id, &done.segment, &error, offset)
                    }
                    SegmentError::ContainerNotReady(_) => {
                        self.writers.remove(&done.writer_id);
                        replies::wrong_host(done.request_id, &done.segment)
                    }
                    // Appends to a table segment, or beyond the limits: refused, the
                    // connection stays usable; the writer must set up again.
                    SegmentError::WrongSegmentKind { .. }
                    | SegmentError::TooLarge { .. }
                    | SegmentError::InvalidArgument(_) => {
                        self.writers.remove(&done.writer_id);
                        replies::for_error(done.request_id, &done.segment, &error, -1)
                    }
                    _ => {
                        return Err(Close::Fatal(format!(
                            "append to {} failed: {error}",
                            done.segment
                        )))
                    }
                };
                self.send(&reply);
                Ok(())
            }
        }
    }

    fn record_rate(&mut self, writer_id: u128, events: u32, bytes: usize) {
        if let Some(writer) = self.writers.get_mut(&writer_id) {
            self.shared.rates.record(
                &mut writer.rate,
                &writer.segment,
                Instant::now(),
                u64::from(events),
                bytes as u64,
            );
        }
    }

    fn flush_ack(&mut self, writer_id: u128) {
        if let Some(index) = self.ready_acks.iter().position(|(w, _)| *w == writer_id) {
            let (writer_id, ack) = self.ready_acks.swap_remove(index);
            self.send_ack(writer_id, &ack);
        }
    }

    fn flush_acks(&mut self) {
        for (writer_id, ack) in std::mem::take(&mut self.ready_acks) {
            self.send_ack(writer_id, &ack);
        }
    }

    fn send_ack(&mut self, writer_id: u128, ack: &PendingAck) {
        let previous = match self.writers.get_mut(&writer_id) {
            Some(writer) => std::mem::replace(&mut writer.last_acked, ack.event_number),
            None => wire::NULL_ATTRIBUTE_VALUE,
        };
        self.send(&Reply::DataAppended(wire::DataAppended {
            writer_id,
            event_number: ack.event_number,
            previous_event_number: previous,
            request_id: ack.request_id,
            current_segment_write_offset: to_i64(ack.length),
        }));
    }

    fn read_segment(&mut self, read: wire::ReadSegment) {
        if let Some(refusal) = self.refuse(
            read.request_id,
            &read.segment,
            &read.delegation_token,
            Permission::Read,
        ) {
            self.send(&refusal);
            return;
        }
        let Ok(offset) = u64::try_from(read.offset) else {
            let reply = replies::illegal_argument(
                read.request_id,
                &read.segment,
                format!("negative read offset {}", read.offset),
            );
            self.send(&reply);
            return;
        };
        let limits = &self.shared.config.limits;
        let wanted = usize::try_from(read.suggested_length.max(8)).unwrap_or(8);
        let max_length = wanted.min(limits.max_read_bytes);
        let wait = limits.tail_wait;
        let container = self.container(&read.segment).clone();
        self.reads.spawn(async move {
            match container
                .read(&read.segment, offset, max_length, wait)
                .await
            {
                Ok(result) => Reply::SegmentRead(wire::SegmentRead {
                    at_tail: result.at_tail(),
                    end_of_segment: result.end_of_segment,
                    segment: read.segment,
                    offset: read.offset,
                    data: result.data,
                    request_id: read.request_id,
                }),
                Err(error) => {
                    replies::for_error(read.request_id, &read.segment, &error, read.offset)
                }
            }
        });
    }

    /// Every request other than appends and reads: answered in order, one reply each.
    async fn admin(&mut self, request: Request) -> Reply {
        let request_id = request.request_id();
        let (segment, token, needed) = match target(&request) {
            Some(target) => target,
            None => {
                return Reply::OperationUnsupported(wire::OperationUnsupported {
                    request_id,
                    operation_name: request.name().to_owned(),
                    server_stack_trace: String::new(),
                })
            }
        };
        if let Some(refusal) = self.refuse(request_id, &segment, &token, needed) {
            return refusal;
        }
        if let Request::MergeSegments(wire::MergeSegments { source, .. })
        | Request::MergeTableSegments(wire::MergeTableSegments { source, .. }) = &request
        {
            if let Some(refusal) = self.refuse(request_id, source, &token, needed) {
                return refusal;
            }
        }
        match self.admin_on(request, &segment).await {
            Ok(reply) => reply,
            Err(error) => replies::for_error(request_id, &segment, &error, -1),
        }
    }

    async fn admin_on(&mut self, request: Request, segment: &str) -> Result<Reply, SegmentError> {
        let container = self.container(segment).clone();
        let reply = match request {
            Request::CreateSegment(create) => {
                check_name(segment)?;
                let mut attributes = vec![
                    (attributes::CREATION_TIME, now_ms()),
                    (attributes::SCALE_POLICY_TYPE, i64::from(create.scale_type)),
                    (attributes::SCALE_POLICY_RATE, i64::from(create.target_rate)),
                ];
                if let Some(rollover) = create.rollover_size_bytes {
                    attributes.push((attributes::ROLLOVER_SIZE, rollover));
                }
                container
                    .create_segment(segment, SegmentKind::Stream, attributes)
                    .await?;
                segment_created(create.request_id, segment)
            }
            Request::CreateTableSegment(create) => {
                check_name(segment)?;
                let mut attributes = vec![(attributes::CREATION_TIME, now_ms())];
                if let Some(key_length) = create.key_length.filter(|length| *length > 0) {
                    attributes.push((attributes::TABLE_KEY_LENGTH, i64::from(key_length)));
                }
                if let Some(rollover) = create.rollover_size_bytes {
                    attributes.push((attributes::ROLLOVER_SIZE, rollover));
                }
                container
                    .create_segment(segment, SegmentKind::Table, attributes)
                    .await?;
                segment_created(create.request_id, segment)
            }
            Request::CreateTransientSegment(create) => {
                // Named as Pravega names them; routed with their parent.
                let name = format!(
                    "{segment}#transient.{:032x}.{:032x}",
                    create.writer_id,
                    rand::random::<u128>()
                );
                check_name(&name)?;
                let attributes = vec![(attributes::CREATION_TIME, now_ms())];
                container
                    .create_segment(&name, SegmentKind::Stream, attributes)
                    .await?;
                self.transient.push(name.clone());
                segment_created(create.request_id, &name)
            }
            Request::SealSegment(wire::SealSegment { request_id, .. })
            | Request::SealTableSegment(wire::SealTableSegment { request_id, .. }) => {
                container.seal(segment).await?;
                self.shared.rates.forget(segment);
                Reply::SegmentSealed(wire::SegmentSealed {
                    request_id,
                    segment: segment.to_owned(),
                })
            }
            Request::DeleteSegment(delete) => {
                container.delete_segment(segment).await?;
                self.shared.rates.forget(segment);
                self.transient.retain(|name| name != segment);
                segment_deleted(delete.request_id, segment)
            }
            Request::DeleteTableSegment(delete) => {
                let info = container.info(segment).await?;
                if info.kind != SegmentKind::Table {
                    return Err(SegmentError::WrongSegmentKind {
                        segment: segment.to_owned(),
                        actual: info.kind.name(),
                        needed: SegmentKind::Table.name(),
                    });
                }
                if delete.must_be_empty && !container.table_keys(segment, None, 1).await?.is_empty()
                {
                    return Ok(Reply::TableSegmentNotEmpty(wire::TableSegmentNotEmpty {
                        request_id: delete.request_id,
                        segment: segment.to_owned(),
                        server_stack_trace: String::new(),
                    }));
                }
                container.delete_segment(segment).await?;
                segment_deleted(delete.request_id, segment)
            }
            Request::UpdateSegmentPolicy(update) => {
                let updates = vec![
                    unconditional(attributes::SCALE_POLICY_TYPE, i64::from(update.scale_type)),
                    unconditional(attributes::SCALE_POLICY_RATE, i64::from(update.target_rate)),
                ];
                container.update_attributes(segment, updates).await?;
                Reply::SegmentPolicyUpdated(wire::SegmentPolicyUpdated {
                    request_id: update.request_id,
                    segment: segment.to_owned(),
                })
            }
            Request::GetSegmentAttribute(get)
                if pravaha_types::attributes::is_rate_attribute(get.attribute_id) =>
            {
                let rates = &self.shared.rates;
                let value = rate_attribute(rates, &container, segment, get.attribute_id).await?;
                Reply::SegmentAttribute(wire::SegmentAttribute {
                    request_id: get.request_id,
                    value,
                })
            }
            Request::UpdateSegmentAttribute(update)
                if pravaha_types::attributes::is_rate_attribute(update.attribute_id) =>
            {
                // Computed, never stored: refused like a failed compare-and-set.
                container.info(segment).await?;
                Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
                    request_id: update.request_id,
                    success: false,
                })
            }
            Request::GetSegmentAttribute(get) => {
                let values = container
                    .get_attributes(segment, vec![get.attribute_id])
                    .await?;
                Reply::SegmentAttribute(wire::SegmentAttribute {
                    request_id: get.request_id,
                    value: values
                        .first()
                        .copied()
                        .flatten()
                        .unwrap_or(wire::NULL_ATTRIBUTE_VALUE),
                })
            }
            Request::UpdateSegmentAttribute(update) => {
                let expected = if update.expected_value == wire::NULL_ATTRIBUTE_VALUE {
                    None
                } else {
                    Some(update.expected_value)
                };
                let change = AttributeUpdate {
                    id: update.attribute_id,
                    value: update.new_value,
                    expected: Some(expected),
                };
                let success = match container.update_attributes(segment, vec![change]).await {
                    Ok(()) => true,
                    Err(SegmentError::AttributeMismatch { .. }) => false,
                    Err(error) => return Err(error),
                };
                Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
                    request_id: update.request_id,
                    success,
                })
            }
            Request::TruncateSegment(truncate) => {
                let offset = u64::try_from(truncate.truncation_offset).map_err(|_| {
                    SegmentError::InvalidArgument(format!(
                        "negative truncation offset {}",
                        truncate.truncation_offset
                    ))
                })?;
                container.truncate(segment, offset).await?;
                Reply::SegmentTruncated(wire::SegmentTruncated {
                    request_id: truncate.request_id,
                    segment: segment.to_owned(),
                })
            }
            Request::GetStreamSegmentInfo(get) => {
                let info = container.info(segment).await?;
                Reply::StreamSegmentInfo(wire::StreamSegmentInfo {
                    request_id: get.request_id,
                    segment_name: segment.to_owned(),
                    exists: true,
                    is_sealed: info.sealed,
                    is_deleted: false,
                    last_modified: to_i64(info.last_modified_ms),
                    write_offset: to_i64(info.length),
                    start_offset: to_i64(info.start_offset),
                })
            }
            Request::MergeSegments(merge) => {
                if let Some(conditions) = merge.attribute_updates.filter(|c| !c.is_empty()) {
                    let updates = conditions
                        .iter()
                        .map(|c| AttributeUpdate {
                            id: c.attribute_id,
                            value: c.new_value,
                            // 4 = replace if equals; anything else replaces.
                            expected: (c.update_type == 4).then_some(
                                (c.old_value != wire::NULL_ATTRIBUTE_VALUE).then_some(c.old_value),
                            ),
                        })
                        .collect();
                    match container.update_attributes(segment, updates).await {
                        Ok(()) => {}
                        Err(SegmentError::AttributeMismatch { .. }) => {
                            return Ok(Reply::SegmentAttributeUpdated(
                                wire::SegmentAttributeUpdated {
                                    request_id: merge.request_id,
                                    success: false,
                                },
                            ))
                        }
                        Err(error) => return Err(error),
                    }
                }
                let length = self.merge(&container, segment, &merge.source).await?;
                Reply::SegmentsMerged(wire::SegmentsMerged {
                    request_id: merge.request_id,
                    target: segment.to_owned(),
                    source: merge.source,
                    new_target_write_offset: to_i64(length),
                })
            }
            Request::MergeSegmentsBatch(merge) => {
                let mut merged = Vec::with_capacity(merge.source_segment_ids.len());
                for source in merge.source_segment_ids {
                    if let Some(refusal) = self.refuse(
                        merge.request_id,
                        &source,
                        &merge.delegation_token,
                        Permission::ReadUpdate,
                    ) {
                        return Ok(refusal);
                    }
                    let length = self.merge(&container, segment, &source).await?;
                    merged.push((source, to_i64(length)));
                }
                Reply::SegmentsBatchMerged(wire::SegmentsBatchMerged {
                    request_id: merge.request_id,
                    target: segment.to_owned(),
                    new_target_write_offsets: merged,
                })
            }
            Request::GetTableSegmentInfo(get) => {
                let info = container.info(segment).await?;
                let entry_count = tables::count_keys(&container, segment).await?;
                let key_length = container
                    .get_attributes(segment, vec![attributes::TABLE_KEY_LENGTH])
                    .await?
                    .first()
                    .copied()
                    .flatten()
                    .unwrap_or(0);
                Reply::TableSegmentInfo(wire::TableSegmentInfo {
                    request_id: get.request_id,
                    segment_name: segment.to_owned(),
                    start_offset: to_i64(info.start_offset),
                    length: to_i64(info.length),
                    entry_count,
                    key_length: i32::try_from(key_length).unwrap_or(0),
                })
            }
            Request::UpdateTableEntries(update) => {
                tables::update(&container, segment, update).await?
            }
            Request::RemoveTableKeys(remove) => tables::remove(&container, segment, remove).await?,
            Request::ReadTable(read) => tables::read(&container, segment, read).await?,
            Request::ReadTableKeys(read) => {
                let limits = self.shared.config.limits.clone();
                tables::read_keys(&container, segment, read, &limits).await?
            }
            Request::ReadTableEntries(read) => {
                let limits = self.shared.config.limits.clone();
                tables::read_entries(&container, segment, read, &limits).await?
            }
            Request::ReadTableEntriesDelta(read) => {
                let limits = self.shared.config.limits.clone();
                tables::read_delta(&container, segment, read, &limits).await?
            }
            other => {
                return Ok(Reply::OperationUnsupported(wire::OperationUnsupported {
                    request_id: other.request_id(),
                    operation_name: other.name().to_owned(),
                    server_stack_trace: String::new(),
                }))
            }
        };
        Ok(reply)
    }

    /// Seals `source` if needed and merges it onto the end of `target`; the target's new length.
    async fn merge(
        &mut self,
        container: &ContainerHandle,
        target: &str,
        source: &str,
    ) -> Result<u64, SegmentError> {
        if source == target {
            return Err(SegmentError::InvalidArgument(format!(
                "cannot merge {source} into itself"
            )));
        }
        if self.container(source).id() != container.id() {
            return Err(SegmentError::InvalidArgument(format!(
                "{source} and {target} belong to different containers"
            )));
        }
        match container.seal(source).await {
            Ok(_) | Err(SegmentError::Sealed(_)) => {}
            Err(error) => return Err(error),
        }
        let info = container.merge(target, source).await?;
        self.transient.retain(|name| name != source);
        self.shared.rates.forget(source);
        Ok(info.length)
    }
}

/// A computed rate attribute: `i64::MIN` unless the segment has a rate-based policy.
async fn rate_attribute(
    rates: &RateTable,
    container: &ContainerHandle,
    segment: &str,
    id: u128,
) -> Result<i64, SegmentError> {
    let stored = container
        .get_attributes(
            segment,
            vec![attributes::SCALE_POLICY_TYPE, attributes::CREATION_TIME],
        )
        .await?;
    let scale_type = stored.first().copied().flatten();
    let created_ms = stored.get(1).copied().flatten();
    let now = Instant::now();
    Ok(rates.attribute(segment, id, scale_type, created_ms, now, now_ms()))
}

/// The segment a request is about, its token, and the permission it needs; `None` for requests
/// this server does not serve.
fn target(request: &Request) -> Option<(String, String, Permission)> {
    use Permission::{Read, ReadUpdate};
    let (segment, token, needed) = match request {
        Request::GetStreamSegmentInfo(r) => (&r.segment_name, &r.delegation_token, Read),
        Request::CreateSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::CreateTableSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::CreateTransientSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::SealSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::SealTableSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::DeleteSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::DeleteTableSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::UpdateSegmentPolicy(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::GetSegmentAttribute(r) => (&r.segment_name, &r.delegation_token, Read),
        Request::UpdateSegmentAttribute(r) => (&r.segment_name, &r.delegation_token, ReadUpdate),
        Request::TruncateSegment(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::MergeSegments(r) => (&r.target, &r.delegation_token, ReadUpdate),
        Request::MergeSegmentsBatch(r) => (&r.target_segment_id, &r.delegation_token, ReadUpdate),
        Request::GetTableSegmentInfo(r) => (&r.segment_name, &r.delegation_token, Read),
        Request::UpdateTableEntries(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::RemoveTableKeys(r) => (&r.segment, &r.delegation_token, ReadUpdate),
        Request::ReadTable(r) => (&r.segment, &r.delegation_token, Read),
        Request::ReadTableKeys(r) => (&r.segment, &r.delegation_token, Read),
        Request::ReadTableEntries(r) => (&r.segment, &r.delegation_token, Read),
        Request::ReadTableEntriesDelta(r) => (&r.segment, &r.delegation_token, Read),
        // Table merges are gone from Pravega; offset lookup needs an index this server does not
        // keep; storage flush and chunk listing are admin-port commands.
        _ => return None,
    };
    Some((segment.clone(), token.clone(), needed))
}

fn check_name(segment: &str) -> Result<(), SegmentError> {
    pravaha_types::SegmentName::new(segment)
        .map(|_| ())
        .map_err(|error| SegmentError::InvalidArgument(error.to_string()))
}

fn segment_created(request_id: i64, segment: &str) -> Reply {
    Reply::SegmentCreated(wire::SegmentCreated {
        request_id,
        segment: segment.to_owned(),
    })
}

fn segment_deleted(request_id: i64, segment: &str) -> Reply {
    Reply::SegmentDeleted(wire::SegmentDeleted {
        request_id,
        segment: segment.to_owned(),
    })
}

fn unconditional(id: u128, value: i64) -> AttributeUpdate {
    AttributeUpdate {
        id,
        value,
        expected: None,
    }
}

pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// A table key version as the protocol gives it.
fn expected_version(version: i64) -> Result<ExpectedVersion, SegmentError> {
    match version {
        wire::NO_VERSION => Ok(ExpectedVersion::Any),
        wire::NOT_EXISTS => Ok(ExpectedVersion::NotExists),
        v => u64::try_from(v)
            .map(ExpectedVersion::Exactly)
            .map_err(|_| SegmentError::InvalidArgument(format!("invalid key version {v}"))),
    }
}

fn table_change(
    key: Bytes,
    value: Option<Bytes>,
    version: i64,
) -> Result<TableChange, SegmentError> {
    Ok(TableChange {
        key,
        value,
        expected: expected_version(version)?,
    })
}

//! The container task: sequencing, group-committed logging, committing, reads, back pressure,
//! checkpoints and log truncation.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use pravaha_storage::chunk::ChunkStore;
use pravaha_storage::log::{LogAppend, LogCompletion, LogDevice, LogError, LogWriter};
use pravaha_types::ContainerId;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::command::{is_mutating, reject, Command, Reply};
use super::read_index::ReadIndex;
use super::storage_writer;
use super::{recovery, sequencer, ContainerConfig};
use crate::error::SegmentError;
use crate::operation_codec;
use crate::state::{ContainerState, Operation, SegmentMeta};
use crate::Clock;

mod queries;

use queries::touched_segments;
pub(super) use queries::{apply_committed, info};

/// Depth of a container's request queue; senders wait when it is full.
const COMMAND_QUEUE_DEPTH: usize = 1024;
/// Requests taken from the queue at once; their log records go to the writer in one message.
const REQUEST_BURST: usize = 256;
/// Most yields spent gathering a batch (see `Container::gather`).
const MAX_GATHER_YIELDS: usize = 16;

type Done = Box<dyn FnOnce(Result<(), SegmentError>) + Send>;

/// An operation sent to the log and not yet durable, with what to do once it is.
struct Pending {
    sequence: u64,
    operation: Option<Operation>,
    bytes: u64,
    done: Vec<Done>,
}

pub(super) struct Container {
    id: ContainerId,
    config: ContainerConfig,
    clock: Arc<dyn Clock>,
    /// Everything sequenced, durable or not: requests are validated against it.
    accepted: ContainerState,
    /// Everything durable: reads see it.
    committed: ContainerState,
    cache: ReadIndex,
    log: LogWriter,
    next_sequence: u64,
    pending: VecDeque<Pending>,
    in_flight_bytes: u64,
    /// Mutating requests waiting for back pressure to ease, in arrival order.
    throttled: VecDeque<Command>,
    throttled_total: u64,
    /// Committed bytes not yet in Tier-2.
    unstored_bytes: u64,
    log_bytes: u64,
    bytes_since_checkpoint: u64,
    checkpoint_in_flight: bool,
    /// Durable checkpoints still in the log, oldest first.
    checkpoints: VecDeque<u64>,
    truncated_before: u64,
    /// Tier-2 chunks no longer referenced, for the writer to delete.
    garbage: Vec<String>,
    /// Whether the chunk store extends chunks in place (see `storage_writer`).
    extend_chunks: bool,
    failed: Option<SegmentError>,
    storage_writer: Option<storage_writer::StorageWriter>,
    /// Records sequenced but not yet handed to the log writer.
    outbox: Vec<LogAppend>,
    /// Where records are encoded (see `operation_codec::encode_into`).
    record_buffer: BytesMut,
    /// The time read since the task last waited (see `now_ms`).
    time_read: Option<u64>,
    /// Requests answered by the last durability report (how many writers may append again).
    released: usize,
    /// Operations durable and answered but not yet committed (see `commit_durable`).
    durable: Vec<(u64, Operation)>,
}

pub(super) async fn start(
    id: ContainerId,
    config: ContainerConfig,
    device: Box<dyn LogDevice>,
    chunks: ChunkStore,
    clock: Arc<dyn Clock>,
) -> Result<mpsc::Sender<Command>, SegmentError> {
    let recovered = recovery::recover(id, &config, device, &chunks).await?;
    let log_bytes = recovered.log.size_bytes();
    let (log, completions) = LogWriter::start(recovered.log);
    let (commands, requests) = mpsc::channel(COMMAND_QUEUE_DEPTH);
    let unstored_bytes = recovered
        .state
        .segments
        .values()
        .map(SegmentMeta::unstored_bytes)
        .sum();
    let container = Container {
        id,
        clock,
        accepted: recovered.state.clone(),
        committed: recovered.state,
        cache: recovered.cache,
        log,
        next_sequence: recovered.next_sequence,
        pending: VecDeque::new(),
        in_flight_bytes: 0,
        throttled: VecDeque::new(),
        throttled_total: 0,
        unstored_bytes,
        log_bytes,
        bytes_since_checkpoint: recovered.bytes_since_checkpoint,
        checkpoint_in_flight: false,
        truncated_before: recovered.checkpoints.front().copied().unwrap_or(0),
        checkpoints: recovered.checkpoints,
        garbage: Vec::new(),
        extend_chunks: chunks.can_extend(),
        failed: None,
        storage_writer: None,
        outbox: Vec::new(),
        record_buffer: BytesMut::new(),
        time_read: None,
        released: 0,
        durable: Vec::new(),
        config,
    };
    info!(container = %id, segments = container.committed.segments.len(), "container started");
    let mut container = container;
    let interval = container.config.flush_interval;
    // Kept so that shutdown stops the writer before the container is reopened.
    container.storage_writer = Some(storage_writer::spawn(
        id,
        commands.downgrade(),
        chunks,
        interval,
    ));
    tokio::spawn(container.run(requests, completions));
    Ok(commands)
}

impl Container {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Command>,
        mut completions: mpsc::UnboundedReceiver<LogCompletion>,
    ) {
        let mut shutdown_reply = None;
        let mut burst = Vec::with_capacity(REQUEST_BURST);
        let mut log_open = true;
        loop {
            self.time_read = None;
            tokio::select! {
                biased;
                completion = completions.recv(), if log_open => match completion {
                    Some(completion) => self.on_log(completion),
                    // The writer stopped (it does after reporting a failure). Stop polling its
                    // channel: closed, it is always ready, and this biased loop would spin
                    // forever without ever seeing the request channel close.
                    None => {
                        log_open = false;
                        self.fail(SegmentError::ContainerNotReady(self.id.0));
                    }
                },
                received = requests.recv_many(&mut burst, REQUEST_BURST) => {
                    if received == 0 {
                        break;
                    }
                    for request in burst.drain(..) {
                        self.take_request(request, &mut shutdown_reply);
                    }
                }
            }
            if shutdown_reply.is_none() {
                self.gather(&mut requests, &mut shutdown_reply).await;
            }
            self.flush_outbox();
            // Committing waits until the next batch is on its way to the log: it then overlaps
            // that batch's sync instead of delaying it. It may sequence more (a checkpoint,
            // throttled requests), which goes to the log at once.
            self.commit_durable();
            self.flush_outbox();
            if shutdown_reply.is_some() {
                break;
            }
        }
        // Stop taking requests; finish what is in flight, then close the log.
        requests.close();
        if let Some(writer) = self.storage_writer.take() {
            writer.stop().await;
        }
        let stopping = SegmentError::ContainerNotReady(self.id.0);
        for request in std::mem::take(&mut self.throttled) {
            reject(request, &stopping);
        }
        self.flush_outbox();
        while !self.pending.is_empty() && self.failed.is_none() {
            match completions.recv().await {
                Some(completion) => self.on_log(completion),
                None => break,
            }
            self.time_read = None;
            self.commit_durable();
            self.flush_outbox();
        }
        while let Ok(request) = requests.try_recv() {
            reject(request, &stopping);
        }
        self.log.close().await;
        debug!(container = %self.id, "container stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn take_request(&mut self, request: Command, shutdown_reply: &mut Option<oneshot::Sender<()>>) {
        match request {
            Command::Shutdown { reply } => *shutdown_reply = Some(reply),
            request if shutdown_reply.is_some() => {
                reject(request, &SegmentError::ContainerNotReady(self.id.0));
            }
            request => self.on_request(request),
        }
    }

    /// Writers that were just acknowledged usually append again at once. Before handing the log
    /// a small batch (or committing what was just answered), let them run (a few yields, no
    /// timers) so that their records reach the log writer in one message and one wake-up rather
    /// than one by one.
    async fn gather(
        &mut self,
        requests: &mut mpsc::Receiver<Command>,
        shutdown_reply: &mut Option<oneshot::Sender<()>>,
    ) {
        let mut idle_yields = 0;
        for _ in 0..MAX_GATHER_YIELDS {
            let waiting = !self.outbox.is_empty() || !self.durable.is_empty();
            if !waiting || self.outbox.len() >= self.released || idle_yields >= 2 {
                return;
            }
            tokio::task::yield_now().await;
            self.time_read = None;
            let mut arrived = false;
            while let Ok(request) = requests.try_recv() {
                arrived = true;
                self.take_request(request, shutdown_reply);
            }
            idle_yields = if arrived { 0 } else { idle_yields + 1 };
            if shutdown_reply.is_some() {
                return;
            }
        }
    }

    /// Fails the container after the log writer refused a request: with the failure that
    /// stopped the writer when there was one (its own report may still be queued), so that
    /// what is in flight is answered with the cause, not with "the log writer has stopped".
    fn fail_log(&mut self, refused: LogError) {
        let error = match self.log.failure() {
            Some(failure) => SegmentError::Log(failure),
            None => refused.into(),
        };
        self.fail(error);
    }

    fn fail(&mut self, error: SegmentError) {
        if self.failed.is_none() {
            error!(container = %self.id, %error, "container failed; it must be restarted to recover");
        }
        self.failed = Some(error.clone());
        for pending in self.pending.drain(..) {
            for done in pending.done {
                done(Err(error.clone()));
            }
        }
        for request in std::mem::take(&mut self.throttled) {
            reject(request, &error);
        }
    }

    fn on_request(&mut self, request: Command) {
        if !matches!(request, Command::Append { .. }) {
            // Appends are validated against the accepted state alone; anything else may look
            // at the committed state (reads, Tier-2 work) and must see every answered append.
            self.commit_durable();
        }
        if let Some(error) = &self.failed {
            reject(request, error);
            return;
        }
        if is_mutating(&request) && self.should_throttle() {
            self.throttled_total += 1;
            self.throttled.push_back(request);
            return;
        }
        self.dispatch(request);
    }

    fn over_limits(&self) -> bool {
        self.in_flight_bytes >= self.config.max_in_flight_bytes
            || self.unstored_bytes >= self.config.max_unstored_bytes
    }

    fn should_throttle(&self) -> bool {
        !self.throttled.is_empty() || self.over_limits()
    }

    fn drain_throttled(&mut self) {
        while !self.throttled.is_empty() && !self.over_limits() && self.failed.is_none() {
            let request = self.throttled.pop_front().expect("checked non-empty");
            self.dispatch(request);
        }
    }

    /// The clock's time, read once per wake-up of the task (`time_read` is cleared after each
    /// wait): every request handled in one burst is stamped alike, and a burst of appends pays
    /// one clock read instead of one each (a sixth of the time spent sequencing a small append
    /// went to reading the clock, measured with `perf`).
    fn now_ms(&mut self) -> u64 {
        match self.time_read {
            Some(now) => now,
            None => *self.time_read.insert(self.clock.now_ms()),
        }
    }

    fn dispatch(&mut self, request: Command) {
        let now = self.now_ms();
        match request {
            Command::Create {
                name,
                kind,
                attributes,
                reply,
            } => {
                let result = sequencer::create(&self.accepted, &name, kind, &attributes, now);
                self.submit(result, reply, ());
            }
            Command::Delete { name, reply } => {
                let result = sequencer::delete(&self.accepted, &name);
                self.submit(result, reply, ());
            }
            Command::Append {
                name,
                data,
                conditions,
                reply,
            } => {
                let max = self.config.max_append_bytes;
                match sequencer::append(&self.accepted, &name, data, conditions, max, now) {
                    Ok(Some(operation)) => {
                        let (offset, length) = match &operation {
                            Operation::Append { offset, data, .. } => {
                                (*offset, offset + data.len() as u64)
                            }
                            _ => unreachable!("the sequencer returns an append"),
                        };
                        let outcome = super::AppendOutcome {
                            offset: Some(offset),
                            length,
                        };
                        self.submit(Ok(operation), reply, outcome);
                    }
                    Ok(None) => {
                        let length =
                            sequencer::segment(&self.accepted, &name).map_or(0, |s| s.length);
                        // A duplicate is acknowledged only once what came before it is durable.
                        let outcome = super::AppendOutcome {
                            offset: None,
                            length,
                        };
                        self.after_durable(Box::new(move |result| {
                            let _ = reply.send(result.map(|()| outcome));
                        }));
                    }
                    Err(error) => {
                        self.refuse(reply, error);
                    }
                }
            }
            Command::Seal { name, reply } => {
                let result = sequencer::seal(&self.accepted, &name, now);
                let length = sequencer::segment(&self.accepted, &name).map_or(0, |s| s.length);
                self.submit(result, reply, length);
            }
            Command::Truncate {
                name,
                offset,
                reply,
            } => {
                let result = sequencer::truncate(&self.accepted, &name, offset, now);
                self.submit(result, reply, ());
            }
            Command::Merge {
                target,
                source,
                reply,
            } => match sequencer::merge(&self.accepted, &target, &source, now) {
                Ok(operation) => {
                    self.record(operation);
                    let target_info = sequencer::segment(&self.accepted, &target).map(info);
                    let target_info = target_info.expect("the target exists after the merge");
                    self.after_durable(Box::new(move |result| {
                        let _ = reply.send(result.map(|()| target_info));
                    }));
                }
                Err(error) => {
                    self.refuse(reply, error);
                }
            },
            Command::UpdateAttributes {
                name,
                updates,
                reply,
            } => {
                let result = sequencer::update_attributes(&self.accepted, &name, &updates, now);
                self.submit(result, reply, ());
            }
            Command::TableUpdate {
                name,
                changes,
                expected_length,
                reply,
            } => {
                let max = self.config.max_append_bytes;
                let sequenced = sequencer::table_update(
                    &self.accepted,
                    &name,
                    &changes,
                    expected_length,
                    max,
                    now,
                );
                match sequenced {
                    Ok((operation, versions)) => self.submit(Ok(operation), reply, versions),
                    Err(error) => {
                        self.refuse(reply, error);
                    }
                }
            }
            other => self.query(other),
        }
    }

    fn submit<T: Send + 'static>(
        &mut self,
        result: Result<Operation, SegmentError>,
        reply: Reply<T>,
        value: T,
    ) {
        match result {
            Ok(operation) => {
                self.record(operation);
                self.after_durable(Box::new(move |result| {
                    let _ = reply.send(result.map(|()| value));
                }));
            }
            Err(error) => {
                self.refuse(reply, error);
            }
        }
    }

    /// Answers a refused request once everything accepted before it is durable, as a success
    /// would be answered: the refusal was decided on the accepted state, which includes
    /// operations not yet durable. A client told a segment already exists, is sealed or has
    /// another version must find it so when it next looks (reads answer from durable state);
    /// answering at once let a second create's "already exists" overtake the first create, and
    /// the table it named was not there yet.
    fn refuse<T: Send + 'static>(&mut self, reply: Reply<T>, error: SegmentError) {
        self.after_durable(Box::new(move |result| {
            let _ = reply.send(result.and(Err(error)));
        }));
    }

    /// Sequences a validated operation: applies it to the accepted state and queues it for the log.
    fn record(&mut self, operation: Operation) {
        self.accepted.apply(&operation);
        let payload = operation_codec::encode_into(&mut self.record_buffer, &operation);
        let bytes = payload.len() as u64;
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let start_new_file = matches!(operation, Operation::Checkpoint(_));
        // Sent to the log writer in one message per burst of requests (see `run`).
        self.outbox.push(LogAppend {
            sequence,
            payload,
            start_new_file,
        });
        self.in_flight_bytes += bytes;
        self.log_bytes += bytes;
        self.bytes_since_checkpoint += bytes;
        self.pending.push_back(Pending {
            sequence,
            operation: Some(operation),
            bytes,
            done: Vec::new(),
        });
    }

    /// Hands the records sequenced since the last call to the log writer, as one message.
    fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.outbox);
        if let Err(error) = self.log.append_all(records) {
            self.fail_log(error);
        }
    }

    /// Runs `done` once everything sequenced so far is durable.
    fn after_durable(&mut self, done: Done) {
        match self.pending.back_mut() {
            Some(last) => last.done.push(done),
            None => match &self.failed {
                Some(error) => done(Err(error.clone())),
                None => done(Ok(())),
            },
        }
    }

    fn on_log(&mut self, completion: LogCompletion) {
        match completion {
            LogCompletion::Durable(up_to) => {
                // Answer now, commit later (`commit_durable`): the writers answered append
                // again at once, and their next batch should reach the log before this task
                // spends time committing. Until then only appends are taken, and they do not
                // look at the committed state.
                let mut released = 0;
                while self.pending.front().is_some_and(|p| p.sequence <= up_to) {
                    let pending = self.pending.pop_front().expect("checked non-empty");
                    self.in_flight_bytes -= pending.bytes;
                    released += pending.done.len();
                    for done in pending.done {
                        done(Ok(()));
                    }
                    if let Some(operation) = pending.operation {
                        self.durable.push((pending.sequence, operation));
                    }
                }
                self.released = released;
            }
            LogCompletion::Truncated { before, log_bytes } => {
                self.log_bytes = log_bytes;
                self.checkpoints.retain(|&checkpoint| checkpoint >= before);
                debug!(container = %self.id, before, log_bytes, "log truncated");
            }
            LogCompletion::Failed(error) => self.fail(SegmentError::Log(error)),
        }
    }

    /// Commits the operations made durable (and answered) since the last call, then does what
    /// committing may make due: eviction, throttled requests, a checkpoint.
    fn commit_durable(&mut self) {
        if self.durable.is_empty() {
            return;
        }
        let mut durable = std::mem::take(&mut self.durable);
        for (sequence, operation) in durable.drain(..) {
            self.commit(sequence, operation);
        }
        // The buffer is kept between reports.
        self.durable = durable;
        self.evict_if_needed();
        self.drain_throttled();
        self.maybe_checkpoint();
    }

    /// Applies a durable operation to the committed state and the cache.
    fn commit(&mut self, sequence: u64, operation: Operation) {
        if let Operation::Checkpoint(_) = operation {
            // Operations commit in order, so the committed state already equals the snapshot.
            self.checkpoints.push_back(sequence);
            self.checkpoint_in_flight = false;
            self.maybe_truncate_log();
            return;
        }
        let now = Instant::now();
        if let Operation::Append { data, .. } | Operation::TableUpdate { data, .. } = &operation {
            // The common case, without walking the segment's chunks.
            self.unstored_bytes += data.len() as u64;
            apply_committed(
                &mut self.committed,
                &mut self.cache,
                sequence,
                &operation,
                now,
            );
            return;
        }
        let touched = touched_segments(&operation);
        let unstored = |state: &ContainerState| -> u64 {
            touched
                .iter()
                .filter_map(|id| state.get(*id))
                .map(SegmentMeta::unstored_bytes)
                .sum()
        };
        let before = unstored(&self.committed);
        let garbage = apply_committed(
            &mut self.committed,
            &mut self.cache,
            sequence,
            &operation,
            now,
        );
        self.garbage.extend(garbage);
        let after = unstored(&self.committed);
        self.unstored_bytes = (self.unstored_bytes + after).saturating_sub(before);
        if let Operation::Stored { id, .. } = operation {
            match self.committed.get(id) {
                Some(segment) if segment.unstored_bytes() == 0 => self.cache.mark_stored(id),
                Some(_) => self.cache.restart_unstored_clock(id, now),
                None => {}
            }
            self.maybe_truncate_log();
        }
    }

    fn evict_if_needed(&mut self) {
        let budget = self.config.cache_budget_bytes;
        let cached = self.cache.cached_bytes();
        let evictable = cached.saturating_sub(self.unstored_bytes);
        if cached > budget && evictable >= budget / 10 {
            self.cache.evict(&self.committed, budget / 10 * 9);
        }
    }

    fn maybe_checkpoint(&mut self) {
        if self.bytes_since_checkpoint >= self.config.checkpoint_log_bytes
            && !self.checkpoint_in_flight
        {
            self.checkpoint_in_flight = true;
            self.record(Operation::Checkpoint(Box::new(self.accepted.clone())));
            // The checkpoint's own bytes do not count towards the next one, or a checkpoint
            // larger than the threshold would trigger another forever.
            self.bytes_since_checkpoint = 0;
        }
    }

    /// Drops log files that only hold what a later checkpoint and Tier-2 already cover.
    fn maybe_truncate_log(&mut self) {
        let durable_end = self
            .pending
            .front()
            .map_or(self.next_sequence, |p| p.sequence);
        let needed_from = self.cache.oldest_unstored_sequence().unwrap_or(durable_end);
        let Some(&checkpoint) = self.checkpoints.iter().rev().find(|&&c| c <= needed_from) else {
            return;
        };
        if checkpoint > self.truncated_before {
            self.truncated_before = checkpoint;
            if let Err(error) = self.log.truncate_before(checkpoint) {
                self.fail_log(error);
            }
        }
    }
}

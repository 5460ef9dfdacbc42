//! The group-committing front end of the durable log.
//!
//! Records queue on a channel. The writer takes everything queued (up to the batch limit),
//! writes it as one frame, syncs once, and reports the highest durable sequence number. While a
//! sync runs, new records queue up and form the next batch: one sync covers them all.
//!
//! On a real disk the writer is a dedicated thread, so that a sync never blocks the async
//! runtime and no thread hand-off is paid per batch. Closed-loop writers (each waiting for its
//! acknowledgement before appending again) tend to arrive just after a sync returns, a few at a
//! time; so when a batch starts much smaller than the previous one, the thread lingers briefly
//! (at most `max_batch_delay`, and at most half the last write's duration) for the rest to
//! arrive. On a simulated disk the writer is an async task without lingering, which keeps
//! simulations deterministic.

use std::sync::{mpsc as std_mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::error;

use super::{DurableLog, LogError};

enum Request {
    Append {
        sequence: u64,
        payload: Bytes,
        start_new_file: bool,
    },
    Truncate {
        before: u64,
    },
}

/// What the writer reports back, in sequence order.
#[derive(Debug, Clone)]
pub enum LogCompletion {
    /// Every record up to and including this sequence number is durable.
    Durable(u64),
    /// The log failed; nothing after the last `Durable` is durable, and the writer has stopped.
    Failed(Arc<LogError>),
    /// Log files before this sequence number's file were removed; the log now holds this many bytes.
    Truncated { before: u64, log_bytes: u64 },
}

/// One record to append, for [`LogWriter::append_all`].
#[derive(Debug, Clone)]
pub struct LogAppend {
    pub sequence: u64,
    pub payload: Bytes,
    pub start_new_file: bool,
}

/// Requests travel in groups: one channel message (and at most one wake-up of the writer) per
/// group, however many records it holds.
type Message = Vec<Request>;

enum Sender {
    Thread(std_mpsc::Sender<Message>),
    Task(mpsc::UnboundedSender<Message>),
}

enum Running {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

/// Handle to a running writer. Sequence numbers are assigned by the caller and must be
/// consecutive, starting at the recovered log's next sequence number.
pub struct LogWriter {
    requests: Sender,
    running: Running,
    counters: Arc<super::LogCounters>,
    failure: Arc<OnceLock<Arc<LogError>>>,
}

/// Where the writer reports, and where it leaves the failure that stopped it.
struct Reporter {
    completions: mpsc::UnboundedSender<LogCompletion>,
    failure: Arc<OnceLock<Arc<LogError>>>,
}

impl Reporter {
    /// Reports `outcome`; whether the writer goes on (not after a failure, nor once nobody
    /// listens).
    fn report(&self, outcome: LogCompletion) -> bool {
        if let LogCompletion::Failed(error) = &outcome {
            let _ = self.failure.set(error.clone());
            let _ = self.completions.send(outcome);
            return false;
        }
        self.completions.send(outcome).is_ok()
    }
}

impl LogWriter {
    /// Starts the writer for `log`; completions arrive on the returned receiver. The caller
    /// bounds what it queues (the container limits bytes in flight).
    pub fn start(log: DurableLog) -> (Self, mpsc::UnboundedReceiver<LogCompletion>) {
        let (completions, completion_receiver) = mpsc::unbounded_channel();
        let failure = Arc::new(OnceLock::new());
        let reporter = Reporter {
            completions,
            failure: failure.clone(),
        };
        let counters = log.counters();
        let writer = if log.is_blocking() {
            let (requests, receiver) = std_mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("pravaha-log".into())
                .spawn(move || run_thread(log, &receiver, &reporter))
                .expect("failed to start the log writer thread");
            Self {
                requests: Sender::Thread(requests),
                running: Running::Thread(thread),
                counters,
                failure,
            }
        } else {
            let (requests, receiver) = mpsc::unbounded_channel();
            let task = tokio::spawn(run_task(log, receiver, reporter));
            Self {
                requests: Sender::Task(requests),
                running: Running::Task(task),
                counters,
                failure,
            }
        };
        (writer, completion_receiver)
    }

    fn send(&self, message: Message) -> Result<(), LogError> {
        let sent = match &self.requests {
            Sender::Thread(sender) => sender.send(message).is_ok(),
            Sender::Task(sender) => sender.send(message).is_ok(),
        };
        if sent {
            Ok(())
        } else {
            Err(LogError::Closed)
        }
    }

    /// The failure that stopped the writer, once it has: what a request refused with
    /// [`LogError::Closed`] should report, as the failure's own report may still be on its way.
    pub fn failure(&self) -> Option<Arc<LogError>> {
        self.failure.get().cloned()
    }

    /// Queues a record. Returns [`LogError::Closed`] when the writer has stopped.
    pub fn append(
        &self,
        sequence: u64,
        payload: Bytes,
        start_new_file: bool,
    ) -> Result<(), LogError> {
        self.send(vec![Request::Append {
            sequence,
            payload,
            start_new_file,
        }])
    }

    /// Queues several records at once (cheaper than one call each).
    pub fn append_all(&self, records: impl IntoIterator<Item = LogAppend>) -> Result<(), LogError> {
        let message: Message = records
            .into_iter()
            .map(|record| Request::Append {
                sequence: record.sequence,
                payload: record.payload,
                start_new_file: record.start_new_file,
            })
            .collect();
        if message.is_empty() {
            return Ok(());
        }
        self.send(message)
    }

    /// Queues the removal of the files before the one holding `before` (after all queued appends).
    pub fn truncate_before(&self, before: u64) -> Result<(), LogError> {
        self.send(vec![Request::Truncate { before }])
    }

    /// The log's running totals (frames and records written so far).
    pub fn counters(&self) -> &super::LogCounters {
        &self.counters
    }

    /// Stops the writer once everything queued is written, and waits until its files are closed.
    pub async fn close(self) {
        drop(self.requests);
        match self.running {
            Running::Thread(thread) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            Running::Task(task) => {
                let _ = task.await;
            }
        }
    }
}

struct Batch {
    records: Vec<Bytes>,
    bytes: usize,
    start_new_file: bool,
    last_sequence: u64,
}

impl Batch {
    fn new(sequence: u64, payload: Bytes, start_new_file: bool) -> Self {
        Self {
            bytes: payload.len(),
            records: vec![payload],
            start_new_file,
            last_sequence: sequence,
        }
    }

    /// Adds `request` if it is an append that fits; otherwise hands it back to start the next
    /// batch (a truncation, a record opening a new file, or one that would overflow).
    fn add(&mut self, request: Request, max_batch_bytes: usize) -> Option<Request> {
        match request {
            Request::Append {
                sequence,
                payload,
                start_new_file: false,
            } if self.bytes + payload.len() <= max_batch_bytes => {
                assert_eq!(
                    sequence,
                    self.last_sequence + 1,
                    "log sequence numbers must be consecutive"
                );
                self.bytes += payload.len();
                self.records.push(payload);
                self.last_sequence = sequence;
                None
            }
            other => Some(other),
        }
    }

    /// Moves requests from `next` into the batch until it is full or `next` has none.
    fn fill(
        &mut self,
        max_batch_bytes: usize,
        mut next: impl FnMut() -> Option<Request>,
    ) -> Option<Request> {
        while self.bytes < max_batch_bytes {
            let request = next()?;
            if let Some(carried) = self.add(request, max_batch_bytes) {
                return Some(carried);
            }
        }
        None
    }
}

/// The writer thread's view of its channel: requests already received, then the channel.
struct ThreadInbox<'a> {
    queued: std::collections::VecDeque<Request>,
    receiver: &'a std_mpsc::Receiver<Message>,
}

impl ThreadInbox<'_> {
    fn next(&mut self) -> Option<Request> {
        if self.queued.is_empty() {
            self.queued.extend(self.receiver.recv().ok()?);
        }
        self.queued.pop_front()
    }

    fn try_next(&mut self) -> Option<Request> {
        if self.queued.is_empty() {
            self.queued.extend(self.receiver.try_recv().ok()?);
        }
        self.queued.pop_front()
    }

    fn next_before(&mut self, deadline: Instant) -> Option<Request> {
        if self.queued.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            self.queued.extend(self.receiver.recv_timeout(left).ok()?);
        }
        self.queued.pop_front()
    }
}

fn run_thread(mut log: DurableLog, receiver: &std_mpsc::Receiver<Message>, reporter: &Reporter) {
    let mut requests = ThreadInbox {
        queued: std::collections::VecDeque::new(),
        receiver,
    };
    let max_batch_bytes = log.config.max_batch_bytes;
    let max_linger = log.config.max_batch_delay;
    let mut carried: Option<Request> = None;
    let mut recent_records: usize = 1;
    let mut last_write = Duration::ZERO;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match requests.next() {
                Some(request) => request,
                None => return,
            },
        };
        let outcome = match first {
            Request::Truncate { before } => truncate(&mut log, before),
            Request::Append {
                sequence,
                payload,
                start_new_file,
            } => {
                let mut batch = Batch::new(sequence, payload, start_new_file);
                carried = batch.fill(max_batch_bytes, || requests.try_next());
                if carried.is_none() && batch.records.len() < recent_records {
                    let linger = max_linger.min(last_write / 2);
                    carried = linger_for_more(
                        &mut batch,
                        &mut requests,
                        recent_records,
                        linger,
                        max_batch_bytes,
                    );
                }
                // Expect the largest recent batch again (the number of writers waiting on each
                // sync), forgetting it slowly when the load drops.
                recent_records = batch.records.len().max(recent_records - recent_records / 8);
                let started = Instant::now();
                let outcome = write(&mut log, &batch);
                last_write = started.elapsed();
                outcome
            }
        };
        if !reporter.report(outcome) {
            return;
        }
    }
}

/// Waits up to `linger` for the batch to reach `expected` records.
fn linger_for_more(
    batch: &mut Batch,
    requests: &mut ThreadInbox<'_>,
    expected: usize,
    linger: Duration,
    max_batch_bytes: usize,
) -> Option<Request> {
    let deadline = Instant::now() + linger;
    while batch.records.len() < expected && batch.bytes < max_batch_bytes {
        let request = requests.next_before(deadline)?;
        if let Some(carried) = batch.add(request, max_batch_bytes) {
            return Some(carried);
        }
    }
    None
}

async fn run_task(
    mut log: DurableLog,
    mut requests: mpsc::UnboundedReceiver<Message>,
    reporter: Reporter,
) {
    let max_batch_bytes = log.config.max_batch_bytes;
    let mut queued = std::collections::VecDeque::new();
    let mut carried: Option<Request> = None;
    loop {
        if carried.is_none() && queued.is_empty() {
            match requests.recv().await {
                Some(message) => queued.extend(message),
                None => return,
            }
        }
        let Some(first) = carried.take().or_else(|| queued.pop_front()) else {
            continue;
        };
        let outcome = match first {
            Request::Truncate { before } => truncate(&mut log, before),
            Request::Append {
                sequence,
                payload,
                start_new_file,
            } => {
                let mut batch = Batch::new(sequence, payload, start_new_file);
                carried = batch.fill(max_batch_bytes, || {
                    if queued.is_empty() {
                        queued.extend(requests.try_recv().ok()?);
                    }
                    queued.pop_front()
                });
                write(&mut log, &batch)
            }
        };
        if !reporter.report(outcome) {
            return;
        }
        // Let the container run between batches, as a real disk's latency would.
        tokio::task::yield_now().await;
    }
}

fn write(log: &mut DurableLog, batch: &Batch) -> LogCompletion {
    let first_sequence = batch.last_sequence + 1 - batch.records.len() as u64;
    assert_eq!(
        first_sequence,
        log.next_sequence(),
        "log sequence numbers must be consecutive"
    );
    match log.write(&batch.records, batch.start_new_file) {
        Ok(()) => LogCompletion::Durable(batch.last_sequence),
        Err(error) => {
            error!(%error, "durable log write failed");
            LogCompletion::Failed(Arc::new(error))
        }
    }
}

fn truncate(log: &mut DurableLog, before: u64) -> LogCompletion {
    match log.truncate_before(before) {
        Ok(_) => LogCompletion::Truncated {
            before,
            log_bytes: log.size_bytes(),
        },
        Err(error) => {
            error!(%error, "durable log truncation failed");
            LogCompletion::Failed(Arc::new(error))
        }
    }
}

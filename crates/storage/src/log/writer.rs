//! The asynchronous, group-committing front end of the durable log.
//!
//! Records queue on a channel. The writer task takes everything queued (up to the batch limit),
//! writes it as one frame, syncs once, and reports the highest durable sequence number. While a
//! sync runs, new records queue up and form the next batch: one sync covers them all.

use std::sync::Arc;

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

/// Handle to a running writer task. Sequence numbers are assigned by the caller and must be
/// consecutive, starting at the recovered log's next sequence number.
pub struct LogWriter {
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
}

impl LogWriter {
    /// Starts the writer task for `log`; completions arrive on the returned receiver. The
    /// caller bounds what it queues (the container limits bytes in flight).
    pub fn start(log: DurableLog) -> (Self, mpsc::UnboundedReceiver<LogCompletion>) {
        let (requests, request_receiver) = mpsc::unbounded_channel();
        let (completions, completion_receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(log, request_receiver, completions));
        (Self { requests, task }, completion_receiver)
    }

    /// Stops the writer once everything queued is written, and waits until its files are closed.
    pub async fn close(self) {
        drop(self.requests);
        let _ = self.task.await;
    }

    /// Queues a record. Returns [`LogError::Closed`] when the writer has stopped.
    pub fn append(
        &self,
        sequence: u64,
        payload: Bytes,
        start_new_file: bool,
    ) -> Result<(), LogError> {
        self.requests
            .send(Request::Append {
                sequence,
                payload,
                start_new_file,
            })
            .map_err(|_| LogError::Closed)
    }

    /// Queues the removal of the files before the one holding `before` (after all queued appends).
    pub fn truncate_before(&self, before: u64) -> Result<(), LogError> {
        self.requests
            .send(Request::Truncate { before })
            .map_err(|_| LogError::Closed)
    }
}

struct Batch {
    records: Vec<Bytes>,
    bytes: usize,
    start_new_file: bool,
    last_sequence: u64,
}

async fn run(
    mut log: DurableLog,
    mut requests: mpsc::UnboundedReceiver<Request>,
    completions: mpsc::UnboundedSender<LogCompletion>,
) {
    let max_batch_bytes = log.config.max_batch_bytes;
    let delay = log.config.max_batch_delay;
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match requests.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        let (outcome, next_log) = match first {
            Request::Truncate { before } => truncate(log, before).await,
            Request::Append {
                sequence,
                payload,
                start_new_file,
            } => {
                let mut batch = Batch {
                    bytes: payload.len(),
                    records: vec![payload],
                    start_new_file,
                    last_sequence: sequence,
                };
                carried = fill_batch(&mut batch, &mut requests, max_batch_bytes);
                if carried.is_none() && !delay.is_zero() && batch.bytes < max_batch_bytes {
                    tokio::time::sleep(delay).await;
                    carried = fill_batch(&mut batch, &mut requests, max_batch_bytes);
                }
                write(log, batch).await
            }
        };
        log = next_log;
        let failed = matches!(outcome, LogCompletion::Failed(_));
        if completions.send(outcome).is_err() || failed {
            return;
        }
    }
}

/// Moves queued appends into `batch` until it is full; returns a request that must start the
/// next batch (a truncation, a record opening a new file, or one that would overflow).
fn fill_batch(
    batch: &mut Batch,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    max_batch_bytes: usize,
) -> Option<Request> {
    while batch.bytes < max_batch_bytes {
        let request = requests.try_recv().ok()?;
        match request {
            Request::Append {
                sequence,
                payload,
                start_new_file: false,
            } if batch.bytes + payload.len() <= max_batch_bytes => {
                assert_eq!(
                    sequence,
                    batch.last_sequence + 1,
                    "log sequence numbers must be consecutive"
                );
                batch.bytes += payload.len();
                batch.records.push(payload);
                batch.last_sequence = sequence;
            }
            other => return Some(other),
        }
    }
    None
}

async fn write(log: DurableLog, batch: Batch) -> (LogCompletion, DurableLog) {
    let first_sequence = batch.last_sequence + 1 - batch.records.len() as u64;
    assert_eq!(
        first_sequence,
        log.next_sequence(),
        "log sequence numbers must be consecutive"
    );
    let (result, log) = blocking(log, move |log| {
        log.write(&batch.records, batch.start_new_file)
    })
    .await;
    let completion = match result {
        Ok(()) => LogCompletion::Durable(batch.last_sequence),
        Err(error) => {
            error!(%error, "durable log write failed");
            LogCompletion::Failed(Arc::new(error))
        }
    };
    (completion, log)
}

async fn truncate(log: DurableLog, before: u64) -> (LogCompletion, DurableLog) {
    let (result, log) = blocking(log, move |log| log.truncate_before(before)).await;
    let completion = match result {
        Ok(_) => LogCompletion::Truncated {
            before,
            log_bytes: log.size_bytes(),
        },
        Err(error) => {
            error!(%error, "durable log truncation failed");
            LogCompletion::Failed(Arc::new(error))
        }
    };
    (completion, log)
}

/// Runs `work` on the blocking pool when the device blocks, inline otherwise (simulated devices
/// run inline so that a simulation stays deterministic).
async fn blocking<T: Send + 'static>(
    mut log: DurableLog,
    work: impl FnOnce(&mut DurableLog) -> T + Send + 'static,
) -> (T, DurableLog) {
    if !log.is_blocking() {
        let result = work(&mut log);
        return (result, log);
    }
    tokio::task::spawn_blocking(move || {
        let result = work(&mut log);
        (result, log)
    })
    .await
    .expect("log I/O task panicked")
}

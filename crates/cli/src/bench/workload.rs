//! The client benchmark's tasks: writers on a schedule (plain or through transactions), the
//! acknowledgement collector of each plain writer, and readers of one reader group.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::stream::{FuturesUnordered, StreamExt};
use pravaha_client::segment::AppendFuture;
use pravaha_client::{EventReader, EventWriter, TransactionalEventWriter};
use tokio::sync::{mpsc, watch};

use super::meter::{Header, Ledger, Meter};

/// Acknowledgements a writer may hand to its collector before waiting; the writer's in-flight
/// byte budget bounds them as well.
const ACK_QUEUE: usize = 4096;

/// When writers stop.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this many events of all writers together.
    Events(u64),
    /// At this much time after the origin.
    Duration(Duration),
}

/// What every task of one run shares.
#[derive(Debug)]
pub struct Plan {
    /// Written into every event, so that readers skip other runs' events.
    pub run: u32,
    /// The run's clock starts here; events carry their send time relative to it.
    pub origin: Instant,
    pub writers: u32,
    pub event_size: usize,
    pub limit: Limit,
    /// Events per second of all writers together; `None`: as fast as they go.
    pub rate: Option<f64>,
}

impl Plan {
    /// When `writer` sends event `sequence`, or `None` if it sends no more. On a schedule, the
    /// returned time is the scheduled one (already passed): latencies count from it, so that a
    /// slow acknowledgement cannot hide the events it delayed (coordinated omission).
    async fn next_send(&self, writer: u32, sequence: u64) -> Option<Instant> {
        if let Limit::Events(total) = self.limit {
            if sequence >= share(total, self.writers, writer) {
                return None;
            }
        }
        let scheduled = self.scheduled(writer, sequence);
        let at = scheduled.unwrap_or_else(Instant::now);
        if let Limit::Duration(duration) = self.limit {
            if at >= self.origin + duration {
                return None;
            }
        }
        if scheduled.is_some() {
            tokio::time::sleep_until(at.into()).await;
        }
        Some(at)
    }

    /// Each writer sends every `writers / rate` seconds, the writers staggered evenly.
    fn scheduled(&self, writer: u32, sequence: u64) -> Option<Instant> {
        let rate = self.rate?;
        let period = f64::from(self.writers) / rate;
        let slot = sequence as f64 + f64::from(writer) / f64::from(self.writers);
        Some(self.origin + Duration::from_secs_f64(slot * period))
    }

    fn event(&self, writer: u32, sequence: u64, sent: Instant) -> bytes::Bytes {
        Header {
            run: self.run,
            writer,
            sequence,
            sent: sent.saturating_duration_since(self.origin),
        }
        .event(self.event_size)
    }
}

/// Writer `writer`'s part of `total` events: as even as can be, the first writers taking one
/// more.
fn share(total: u64, writers: u32, writer: u32) -> u64 {
    let writers = u64::from(writers);
    total / writers + u64::from(u64::from(writer) < total % writers)
}

/// Writes `plan`'s events through `events`, each acknowledged event recorded in `meter` with
/// its latency from its send time to its acknowledgement.
pub async fn write_events(
    plan: Arc<Plan>,
    writer: u32,
    events: EventWriter,
    meter: Meter,
) -> anyhow::Result<()> {
    let (acks, queue) = mpsc::channel(ACK_QUEUE);
    let size = plan.event_size as u64;
    let collector = tokio::spawn(collect_acks(queue, meter, size));
    let mut sequence = 0;
    while let Some(sent) = plan.next_send(writer, sequence).await {
        let event = plan.event(writer, sequence, sent);
        let acknowledged = events
            .write_event(None, event)
            .await
            .context("writing an event")?;
        if acks.send((acknowledged, sent)).await.is_err() {
            // The collector stopped on a failed acknowledgement: its error says why.
            break;
        }
        sequence += 1;
    }
    drop(acks);
    let collected = collector.await.context("the acknowledgement task failed")?;
    events.close().await.context("closing an event writer")?;
    collected
}

/// Records acknowledgements as they complete (across segments, out of order).
async fn collect_acks(
    mut queue: mpsc::Receiver<(AppendFuture, Instant)>,
    meter: Meter,
    size: u64,
) -> anyhow::Result<()> {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    while open || !pending.is_empty() {
        tokio::select! {
            next = queue.recv(), if open => match next {
                Some((acknowledged, sent)) => {
                    pending.push(async move { acknowledged.await.map(|()| sent) });
                }
                None => open = false,
            },
            Some(done) = pending.next(), if !pending.is_empty() => {
                let sent = done.context("an event was not acknowledged")?;
                let now = Instant::now();
                meter.record(1, size, now.saturating_duration_since(sent), now);
            }
        }
    }
    Ok(())
}

/// Writes `plan`'s events in transactions of `per_transaction` events, one after another; each
/// event is recorded when its transaction's commit returns, with its latency from its send
/// time.
pub async fn write_transactions(
    plan: Arc<Plan>,
    writer: u32,
    transactions: TransactionalEventWriter,
    per_transaction: u64,
    meter: Meter,
) -> anyhow::Result<()> {
    let size = plan.event_size as u64;
    let mut sequence = 0;
    let mut sent_times = Vec::new();
    while let Some(first) = plan.next_send(writer, sequence).await {
        let mut transaction = transactions
            .begin()
            .await
            .context("beginning a transaction")?;
        let mut next = Some(first);
        while let Some(sent) = next {
            let event = plan.event(writer, sequence, sent);
            // The commit waits for every event of the transaction (and fails if one failed).
            let _durable = transaction
                .write_event(None, event)
                .await
                .context("writing an event into a transaction")?;
            sent_times.push(sent);
            sequence += 1;
            // A full transaction commits at once, not when the next event is due.
            next = if sent_times.len() as u64 == per_transaction {
                None
            } else {
                plan.next_send(writer, sequence).await
            };
        }
        transaction
            .commit(None)
            .await
            .context("committing a transaction")?;
        let now = Instant::now();
        for sent in sent_times.drain(..) {
            meter.record(1, size, now.saturating_duration_since(sent), now);
        }
    }
    Ok(())
}

/// How far the readers are, and how far they must get.
#[derive(Debug)]
pub struct Progress {
    /// Events of this run read (each reader counts an event once).
    read: AtomicU64,
    /// Events acknowledged to the writers; unknown (`u64::MAX`) while they write.
    target: AtomicU64,
    /// Turns `true` once `read` reaches `target`.
    finished: watch::Sender<bool>,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            read: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            finished: watch::Sender::new(false),
        }
    }
}

impl Progress {
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::SeqCst)
    }

    /// The writers are done: readers stop once they have read `events`.
    pub fn set_target(&self, events: u64) {
        self.target.store(events, Ordering::SeqCst);
        self.check();
    }

    fn count_read(&self) {
        self.read.fetch_add(1, Ordering::SeqCst);
        self.check();
    }

    fn check(&self) {
        if self.read() >= self.target.load(Ordering::SeqCst) {
            self.finished.send_replace(true);
        }
    }
}

/// What one reader saw.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub ledger: Ledger,
    /// Events that are not this run's (other writers on the same stream).
    pub foreign: u64,
}

/// Reads until the readers together have read every event written, recording each of this
/// run's events in `meter` with its latency from its send time (end to end).
pub async fn read_events(
    plan: Arc<Plan>,
    mut reader: EventReader,
    meter: Meter,
    progress: Arc<Progress>,
) -> anyhow::Result<ReadOutcome> {
    let mut outcome = ReadOutcome::default();
    let mut finished = progress.finished.subscribe();
    loop {
        // A read is abandoned only once the run is over: abandoning one while the reader
        // acquires or releases segments can leave a segment that nobody reads.
        let next = tokio::select! {
            biased;
            _ = finished.wait_for(|finished| *finished) => break,
            next = reader.next_event() => next.context("reading an event")?,
        };
        let Some(event) = next else {
            break;
        };
        let now = Instant::now();
        let header = match Header::parse(&event.payload) {
            Some(header) if header.run == plan.run && header.writer < plan.writers => header,
            _ => {
                outcome.foreign += 1;
                continue;
            }
        };
        let latency = now.saturating_duration_since(plan.origin + header.sent);
        meter.record(1, event.payload.len() as u64, latency, now);
        if outcome.ledger.note(header.writer, header.sequence) {
            progress.count_read();
        }
    }
    reader.close().await.context("closing a reader")?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, writers) in [(2000, 2), (7, 3), (2, 4), (0, 1)] {
            let shares: Vec<u64> = (0..writers).map(|w| share(total, writers, w)).collect();
            assert_eq!(shares.iter().sum::<u64>(), total, "{total} over {writers}");
            assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn the_schedule_spaces_each_writer_and_staggers_writers() {
        let plan = Plan {
            run: 1,
            origin: Instant::now(),
            writers: 4,
            event_size: 100,
            limit: Limit::Events(100),
            rate: Some(1000.0),
        };
        // Whole microseconds: the schedule is computed in floating point.
        let at = |writer, sequence| {
            let offset = plan.scheduled(writer, sequence).unwrap() - plan.origin;
            (offset.as_nanos() as f64 / 1e3).round() as u64
        };
        assert_eq!(at(0, 0), 0);
        assert_eq!(at(0, 1), 4_000);
        assert_eq!(at(1, 0), 1_000);
        assert_eq!(at(3, 2), 11_000);
        let unbounded = Plan { rate: None, ..plan };
        assert_eq!(unbounded.scheduled(0, 5), None);
    }
}

//! Cancel-safety of [`EventReader::next_event`] against an in-process standalone: readers
//! call it under time-outs of 0 to 2 ms, so calls are cancelled at every await point (state
//! changes of rebalances, segment completions and position updates included) while a second,
//! third and fourth reader join and two of them leave again. The stream was scaled halfway
//! (successors wait for their predecessors) and sealed.
//!
//! The contract checked: readers that close (no failure detection) deliver every event exactly
//! once, each key's events in order, and every reader is told the group is finished.

mod common;
mod events_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pravaha_client::controller::types::{KeyRange, ScopedStream};
use pravaha_client::event::ClientFactory;
use pravaha_client::group::{ReaderGroup, ReaderGroupConfig, ReaderSettings};
use pravaha_client::{ControllerClient, EventReader};

use events_common::{bounded, key, keyed_payload, parse_payload, stream_with};

/// Bound on reading the whole stream.
const DEADLINE: Duration = Duration::from_secs(120);
/// The longest time-out a call of `next_event` gets.
const LONGEST_CALL_MICROS: u64 = 2000;

/// Every event delivered, in delivery order across readers: (key, sequence, reader).
type Log = Arc<Mutex<Vec<(String, usize, String)>>>;

/// Rebalances, position updates and idle polls every few milliseconds, so that cancelled
/// calls meet them often. No failure detection: readers leave by closing.
fn busy_settings() -> ReaderSettings {
    ReaderSettings {
        rebalance_interval: Duration::from_millis(10),
        idle_poll_interval: Duration::from_millis(5),
        position_update_interval: Duration::from_millis(5),
        read_size: 512,
        heartbeat_interval: None,
        offline_timeout: None,
        ..ReaderSettings::default()
    }
}

/// A time-out per call from 0 to [`LONGEST_CALL_MICROS`], from a seeded generator (a
/// time-out of 0 polls the call once and cancels it).
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_micros((self.0 >> 33) % (LONGEST_CALL_MICROS + 1))
    }
}

/// What one reader did.
#[derive(Debug, Default)]
struct Outcome {
    delivered: usize,
    cancelled: usize,
    /// Whether it was told the group is finished (rather than leaving early).
    finished: bool,
}

/// Calls `next_event` under short time-outs until the group is finished, or until `leave_after`
/// events were delivered; then closes the reader.
async fn read_cancelled(
    mut reader: EventReader,
    log: Log,
    leave_after: Option<usize>,
    seed: u64,
) -> Outcome {
    let mut jitter = Jitter(seed);
    let mut outcome = Outcome::default();
    let deadline = Instant::now() + DEADLINE;
    while leave_after != Some(outcome.delivered) {
        assert!(
            Instant::now() < deadline,
            "reader {} did not see the group finish within {DEADLINE:?}: {outcome:?}, {} events delivered by all",
            reader.id(),
            log.lock().unwrap().len()
        );
        match tokio::time::timeout(jitter.next(), reader.next_event()).await {
            Err(_) => outcome.cancelled += 1,
            Ok(Ok(Some(event))) => {
                let (key, sequence) = parse_payload(&event.payload);
                log.lock()
                    .unwrap()
                    .push((key, sequence, reader.id().to_owned()));
                outcome.delivered += 1;
            }
            Ok(Ok(None)) => {
                outcome.finished = true;
                break;
            }
            Ok(Err(error)) => panic!("reader {}: {error}", reader.id()),
        }
    }
    bounded(reader.close()).await.expect("close");
    outcome
}

async fn write_keyed(
    factory: &ClientFactory,
    stream: &ScopedStream,
    keys: usize,
    sequences: std::ops::Range<usize>,
) {
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let mut acks = Vec::new();
    for sequence in sequences {
        for k in 0..keys {
            let key = key(k);
            acks.push(
                bounded(writer.write_event(Some(&key), keyed_payload(&key, sequence)))
                    .await
                    .unwrap(),
            );
        }
    }
    bounded(writer.flush()).await.unwrap();
    for ack in acks {
        bounded(ack).await.unwrap();
    }
    bounded(writer.close()).await.unwrap();
}

/// Splits the stream's four segments into six: successors with one or two predecessors.
async fn scale_to_sixths(controller: &ControllerClient, stream: &ScopedStream) {
    let current = bounded(controller.get_current_segments(stream))
        .await
        .unwrap();
    let ids: Vec<_> = current.segments.iter().map(|s| s.segment.id).collect();
    let sixths: Vec<KeyRange> = (0..6)
        .map(|i| KeyRange::new(f64::from(i) / 6.0, f64::from(i + 1) / 6.0))
        .collect();
    bounded(controller.scale_stream(stream, &ids, &sixths))
        .await
        .unwrap();
}

async fn wait_for_log(log: &Log, count: usize) {
    let deadline = Instant::now() + DEADLINE;
    while log.lock().unwrap().len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_reads_lose_and_repeat_nothing_while_readers_come_and_go() {
    let (_standalone, factory, stream) = stream_with(4, "cancelled").await;
    let (keys, per_key) = (16, 80);
    let total = keys * per_key;
    write_keyed(&factory, &stream, keys, 0..per_key / 2).await;
    let controller = factory.controller();
    scale_to_sixths(controller, &stream).await;
    write_keyed(&factory, &stream, keys, per_key / 2..per_key).await;
    bounded(controller.seal_stream(&stream)).await.unwrap();

    let config = ReaderGroupConfig::new().stream(stream.clone());
    bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "cancelled",
        config,
    ))
    .await
    .unwrap();
    let log: Log = Arc::default();
    // (id, delivered by all before it joins, events after which it leaves)
    let plan: [(&str, usize, Option<usize>); 4] = [
        ("first", 0, None),
        ("second", total / 8, Some(total / 4)),
        ("third", total / 4, None),
        ("fourth", total / 3, Some(total / 8)),
    ];
    let mut tasks = Vec::new();
    for (seed, (id, joins_at, leave_after)) in plan.into_iter().enumerate() {
        let log = log.clone();
        let controller = controller.clone();
        let scope = stream.scope.clone();
        tasks.push(tokio::spawn(async move {
            wait_for_log(&log, joins_at).await;
            // Each reader on a group handle (and state copy) of its own, as in processes.
            let group = bounded(ReaderGroup::open(&controller, &scope, "cancelled"))
                .await
                .unwrap();
            let reader = bounded(group.create_reader_with(id, busy_settings()))
                .await
                .unwrap();
            let outcome = read_cancelled(reader, log, leave_after, seed as u64 + 1).await;
            (id, leave_after, outcome)
        }));
    }
    let mut cancelled = 0;
    let mut readers_delivering = 0;
    for task in tasks {
        let (id, leave_after, outcome) = task.await.expect("reader task");
        println!("{id}: {outcome:?}");
        cancelled += outcome.cancelled;
        readers_delivering += usize::from(outcome.delivered > 0);
        if leave_after.is_none() {
            assert!(outcome.finished, "{id} was told the group is finished");
        }
    }
    assert!(cancelled > 0, "calls were cancelled");
    assert!(readers_delivering > 1, "segments moved between readers");

    let log = log.lock().unwrap();
    assert_eq!(log.len(), total, "every event delivered exactly once");
    let mut next: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (key, sequence, reader) in log.iter() {
        let expected = next.entry(key.as_str()).or_default();
        assert_eq!(
            *sequence, *expected,
            "{key}: sequence {sequence} delivered by {reader} where {expected} was next"
        );
        *expected += 1;
    }
    assert_eq!(next.len(), keys);
    assert!(next.values().all(|count| *count == per_key));
}

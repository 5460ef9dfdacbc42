//! Bounded reader groups, checkpoints and retention subscriptions against an in-process
//! standalone: a group ends at its end cut (successors beyond it are not read), checkpoints
//! complete when every reader took part and fail naming an official reader that never does,
//! and subscribers' cuts reach the controller, whose retention truncates no further.
//!
//! Every wait is bounded; nothing depends on timing.

// The official client's closures return its (large) error type.
#![allow(clippy::result_large_err)]

mod common;
mod events_common;
/// Restoring a group to a checkpoint: online readers, merged segments.
#[path = "checkpoints/restore.rs"]
mod restore;
/// Retention subscriptions: cuts reported to the controller.
#[path = "checkpoints/retention.rs"]
mod retention;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pravaha_client::controller::types::{KeyRange, ScopedStream, StreamCut};
use pravaha_client::event::ClientFactory;
use pravaha_client::group::{
    GroupError, Positions, ReadItem, ReaderGroup, ReaderGroupConfig, ReaderSettings, StartFrom,
};
use pravaha_client::{ControllerClient, EventReader};

use events_common::{bounded, key, keyed_payload, parse_payload, stream_with};

/// Bound on every wait for a group to end or a checkpoint to complete.
const DEADLINE: Duration = Duration::from_secs(90);

fn quick_settings() -> ReaderSettings {
    ReaderSettings {
        rebalance_interval: Duration::from_millis(300),
        idle_poll_interval: Duration::from_millis(100),
        position_update_interval: Duration::from_millis(200),
        ..ReaderSettings::default()
    }
}

/// Writes events `sequences` of each key in `keys` (routing key = key), in order per key.
async fn write(
    factory: &ClientFactory,
    stream: &ScopedStream,
    keys: &[String],
    sequences: std::ops::Range<usize>,
) {
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let mut acks = Vec::new();
    for sequence in sequences {
        for key in keys {
            acks.push(
                bounded(writer.write_event(Some(key), keyed_payload(key, sequence)))
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

/// The stream's tail now: every current segment at its length (a group started at the tail
/// holds exactly these positions).
async fn tail_cut(controller: &ControllerClient, stream: &ScopedStream, probe: &str) -> StreamCut {
    let config = ReaderGroupConfig::new().stream_from(stream.clone(), StartFrom::Tail);
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        probe,
        config,
    ))
    .await
    .unwrap();
    let positions = bounded(group.positions()).await.unwrap();
    bounded(group.delete()).await.unwrap();
    cut_of(stream, &positions)
}

fn cut_of(stream: &ScopedStream, positions: &Positions) -> StreamCut {
    let mut cut = StreamCut::new(stream.clone());
    for (segment, offset) in positions {
        assert_eq!(&segment.stream, stream);
        cut.positions.insert(segment.id, *offset);
    }
    cut
}

/// Splits every current segment of `stream` whose range contains `key` in two.
async fn split(controller: &ControllerClient, stream: &ScopedStream) {
    let current = bounded(controller.get_current_segments(stream))
        .await
        .unwrap()
        .segments;
    let widest = current
        .iter()
        .max_by(|a, b| (a.range.high - a.range.low).total_cmp(&(b.range.high - b.range.low)))
        .unwrap();
    let middle = (widest.range.low + widest.range.high) / 2.0;
    bounded(controller.scale_stream(
        stream,
        &[widest.segment.id],
        &[
            KeyRange::new(widest.range.low, middle),
            KeyRange::new(middle, widest.range.high),
        ],
    ))
    .await
    .expect("scale");
}

/// Reads until the group ends, stamping every item with a clock shared across readers.
async fn read_items(mut reader: EventReader, clock: Arc<AtomicU64>) -> Vec<(u64, ReadItem)> {
    let mut items = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while let Some(item) = tokio::time::timeout_at(deadline.into(), reader.read_next())
        .await
        .expect("the group ends before the deadline")
        .expect("next item")
    {
        items.push((clock.fetch_add(1, Ordering::SeqCst), item));
    }
    reader.close().await.expect("close");
    items
}

/// Reads until `count` (shared by the readers) reaches `total` and this reader has announced a
/// checkpoint, then closes.
async fn read_all(
    mut reader: EventReader,
    count: Arc<AtomicU64>,
    total: u64,
) -> Vec<(u64, ReadItem)> {
    let mut items = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    let announced = |items: &Vec<(u64, ReadItem)>| {
        items
            .iter()
            .any(|(_, item)| matches!(item, ReadItem::Checkpoint(_)))
    };
    while count.load(Ordering::SeqCst) < total || !announced(&items) {
        assert!(
            Instant::now() < deadline,
            "everything read before the deadline"
        );
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(100), reader.read_next()).await
        {
            let item = item.expect("next item").expect("an open stream");
            if matches!(item, ReadItem::Event(_)) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            items.push((0, item));
        }
    }
    reader.close().await.expect("close");
    items
}

fn events_of(items: &[(u64, ReadItem)]) -> Vec<(String, usize)> {
    items
        .iter()
        .filter_map(|(_, item)| match item {
            ReadItem::Event(event) => Some(parse_payload(&event.payload)),
            ReadItem::Checkpoint(_) => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_end_cut_stops_the_group_and_successors_beyond_it_are_not_read() {
    let (_standalone, factory, stream) = stream_with(1, "bounded").await;
    let controller = factory.controller();
    let only = vec!["solo".to_string()];
    let end = 30;
    write(&factory, &stream, &only, 0..end).await;
    let cut = tail_cut(controller, &stream, "probe").await;
    // Beyond the cut: more in the same segment, then a split and events in a successor.
    write(&factory, &stream, &only, end..end + 10).await;
    split(controller, &stream).await;
    write(&factory, &stream, &only, end + 10..end + 30).await;

    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .end_at(cut.clone());
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "upto",
        config,
    ))
    .await
    .unwrap();
    assert_eq!(
        bounded(group.config()).await.unwrap().end_of(&stream),
        Some(&cut)
    );
    let reader = bounded(group.create_reader_with("one", quick_settings()))
        .await
        .unwrap();
    // The stream is open and its successors hold events: only the end cut ends the group.
    let items = read_items(reader, Arc::default()).await;
    let expected: Vec<(String, usize)> = (0..end).map(|s| ("solo".to_string(), s)).collect();
    assert_eq!(
        events_of(&items),
        expected,
        "exactly the events before the cut"
    );
    assert!(bounded(group.positions()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_end_cut_after_a_scale_reads_predecessors_whole_and_cut_segments_to_their_offsets() {
    let (_standalone, factory, stream) = stream_with(1, "scaled-end").await;
    let controller = factory.controller();
    let keys: Vec<String> = (0..6).map(key).collect();
    write(&factory, &stream, &keys, 0..20).await;
    split(controller, &stream).await;
    write(&factory, &stream, &keys, 20..40).await;
    let cut = tail_cut(controller, &stream, "probe").await;
    assert_eq!(cut.positions.len(), 2, "the cut names both successors");
    write(&factory, &stream, &keys, 40..50).await;
    split(controller, &stream).await;
    write(&factory, &stream, &keys, 50..60).await;

    let config = ReaderGroupConfig::new().stream(stream.clone()).end_at(cut);
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "pair",
        config,
    ))
    .await
    .unwrap();
    let clock = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for id in ["first", "second"] {
        let reader = bounded(group.create_reader_with(id, quick_settings()))
            .await
            .unwrap();
        tasks.push(tokio::spawn(read_items(reader, clock.clone())));
    }
    let mut all: Vec<(u64, (String, usize))> = Vec::new();
    for task in tasks {
        for (tick, item) in task.await.unwrap() {
            if let ReadItem::Event(event) = item {
                all.push((tick, parse_payload(&event.payload)));
            }
        }
    }
    all.sort();
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (_, (key, sequence)) in &all {
        by_key.entry(key.clone()).or_default().push(*sequence);
    }
    for key in &keys {
        assert_eq!(
            by_key.get(key).cloned().unwrap_or_default(),
            (0..40).collect::<Vec<_>>(),
            "{key}: everything before the cut, in order, once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_records_what_each_reader_handed_out_before_it() {
    let (_standalone, factory, stream) = stream_with(4, "marked").await;
    let controller = factory.controller();
    let keys: Vec<String> = (0..16).map(key).collect();
    write(&factory, &stream, &keys, 0..50).await;
    let total = keys.len() * 50;
    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .refresh_time(Duration::from_millis(100));
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "marks",
        config,
    ))
    .await
    .unwrap();
    let mut readers = Vec::new();
    for id in ["a", "b"] {
        readers.push(
            bounded(group.create_reader_with(id, quick_settings()))
                .await
                .unwrap(),
        );
    }
    // Both readers read a little before the checkpoint starts.
    let mut before = Vec::new();
    for reader in &mut readers {
        for _ in 0..20 {
            match bounded(reader.read_next()).await.unwrap().unwrap() {
                ReadItem::Event(event) => before.push(event),
                ReadItem::Checkpoint(name) => panic!("no checkpoint yet: {name}"),
            }
        }
    }
    let waiting = {
        let group = group.clone();
        tokio::spawn(async move { group.initiate_checkpoint("mark", DEADLINE).await })
    };
    // The stream stays open, so each reader stays online (and takes part) until all is read.
    let count = Arc::new(AtomicU64::new(before.len() as u64));
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|reader| tokio::spawn(read_all(reader, count.clone(), total as u64)))
        .collect();
    let checkpoint = waiting.await.unwrap().expect("every reader takes part");
    assert_eq!(checkpoint.name(), "mark");
    assert!(matches!(
        bounded(group.initiate_checkpoint("mark", DEADLINE)).await,
        Err(GroupError::CheckpointExists(name)) if name == "mark"
    ));
    let positions = checkpoint.positions();
    let mut handed_before: BTreeSet<(String, i64)> = before
        .iter()
        .map(|event| (event.segment.qualified_name(), event.offset))
        .collect();
    let mut handed_after = BTreeSet::new();
    for task in tasks {
        let items = task.await.unwrap();
        let at = items
            .iter()
            .position(|(_, item)| matches!(item, ReadItem::Checkpoint(name) if name == "mark"))
            .expect("each reader announces the checkpoint once");
        for (index, (_, item)) in items.iter().enumerate() {
            if let ReadItem::Event(event) = item {
                let read = (event.segment.qualified_name(), event.offset);
                if index < at {
                    handed_before.insert(read);
                } else {
                    handed_after.insert(read);
                }
            }
        }
    }
    // The contract: before the checkpoint is exactly what lies before its positions.
    for (segment, offset) in &handed_before {
        let at = positions
            .iter()
            .find(|(s, _)| s.qualified_name() == *segment)
            .map(|(_, at)| *at);
        // A segment read to its end before the checkpoint is not in it (nothing left).
        assert!(
            at.is_none_or(|at| *offset < at),
            "{segment}@{offset} before"
        );
    }
    for (segment, offset) in &handed_after {
        let at = positions
            .iter()
            .find(|(s, _)| s.qualified_name() == *segment)
            .map(|(_, at)| *at)
            .unwrap_or_else(|| panic!("{segment} read after the checkpoint is in it"));
        assert!(*offset >= at, "{segment}@{offset} after {at}");
    }
    assert_eq!(
        handed_before.len() + handed_after.len(),
        total,
        "each event once"
    );
    assert_eq!(
        bounded(group.latest_checkpoint()).await.unwrap(),
        Some(checkpoint)
    );
}

// ---- An official reader never takes part: the checkpoint fails naming it ----

use tokio::runtime::Runtime;

#[test]
fn a_checkpoint_times_out_naming_the_official_reader_that_never_took_part() {
    let runtime = Runtime::new().expect("a runtime for the standalone");
    let standalone = runtime.block_on(common::Standalone::start());
    let (controller, official, theirs) =
        events_common::official_shared_group(&runtime, &standalone, 2);

    runtime.block_on(async {
        let group = bounded(ReaderGroup::open(&controller, "mixed", "shared"))
            .await
            .unwrap();
        let mut ours = bounded(group.create_reader_with("ours", quick_settings()))
            .await
            .unwrap();
        // Long enough for our reader to take part (it learns of checkpoints at the group's
        // refresh time, 3 s in groups the official client creates).
        let waiting = {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .initiate_checkpoint("doomed", Duration::from_secs(10))
                    .await
            })
        };
        // Our reader keeps reading (the stream is empty): it takes part and announces it.
        let mut announced = Vec::new();
        while !waiting.is_finished() {
            if let Ok(item) =
                tokio::time::timeout(Duration::from_millis(100), ours.read_next()).await
            {
                match item.expect("read").expect("an open stream") {
                    ReadItem::Checkpoint(name) => announced.push(name),
                    ReadItem::Event(event) => panic!("nothing written: {event:?}"),
                }
            }
        }
        match waiting.await.unwrap() {
            Err(GroupError::CheckpointFailed { name, readers }) => {
                assert_eq!(name, "doomed");
                assert_eq!(readers, vec!["theirs".to_string()]);
            }
            other => panic!("the checkpoint must fail naming the official reader: {other:?}"),
        }
        assert_eq!(announced, vec!["doomed".to_string()]);
        assert_eq!(bounded(group.checkpoint("doomed")).await.unwrap(), None);
        bounded(ours.close()).await.unwrap();
    });
    official.runtime().block_on(async {
        let mut theirs = theirs;
        theirs.reader_offline().await.expect("offline");
    });
}

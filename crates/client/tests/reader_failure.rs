//! The reader failure detector against an in-process standalone: a reader of a group of three
//! is killed mid-read (dropped without goodbye, its heartbeat stopped) and the other two take
//! its segments over from its last recorded positions; an official reader sharing a group,
//! which never heart-beats, is never taken offline.
//!
//! The scenario in full: three readers, a checkpoint, one reader killed mid-read;
//! nothing is lost, and once the group is restored to the checkpoint exactly the events after
//! its positions are read again, none of those before.
//!
//! Every wait is bounded; no assertion depends on timing: what is read twice is exactly what
//! the killed reader handed out after the positions it last recorded in the group's state.

// The official client's closures return its (large) error type.
#![allow(clippy::result_large_err)]

mod common;
mod events_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use pravaha_client::controller::types::ScopedStream;
use pravaha_client::group::{Positions, ReadItem, ReaderGroup, ReaderGroupConfig, ReaderSettings};
use pravaha_client::EventReader;

use common::Standalone;
use events_common::{bounded, key, keyed_payload, parse_payload, stream_with};

/// Bound on every wait for the group to end or a reader to be taken offline.
const DEADLINE: Duration = Duration::from_secs(90);

/// An event read: (key, sequence), its segment and offset.
type Read = ((String, usize), String, i64);

fn detecting_settings() -> ReaderSettings {
    ReaderSettings {
        rebalance_interval: Duration::from_millis(300),
        idle_poll_interval: Duration::from_millis(100),
        position_update_interval: Duration::from_millis(100),
        heartbeat_interval: Some(Duration::from_millis(200)),
        offline_timeout: Some(Duration::from_secs(2)),
        ..ReaderSettings::default()
    }
}

async fn write_keyed(
    factory: &pravaha_client::event::ClientFactory,
    stream: &ScopedStream,
    keys: usize,
    per_key: usize,
) {
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let mut acks = Vec::with_capacity(keys * per_key);
    for sequence in 0..per_key {
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

fn read_of(event: &pravaha_client::group::EventRead) -> Read {
    (
        parse_payload(&event.payload),
        event.segment.qualified_name(),
        event.offset,
    )
}

/// Reads until the group has nothing left (the killed reader's segments included), then
/// closes.
async fn read_to_end(mut reader: EventReader) -> Vec<Read> {
    let mut events = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while let Some(event) = tokio::time::timeout_at(deadline.into(), reader.next_event())
        .await
        .expect("the group ends before the deadline")
        .expect("next event")
    {
        events.push(read_of(&event));
    }
    reader.close().await.expect("close");
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_readers_segments_are_taken_over_from_its_recorded_positions() {
    let (_standalone, factory, stream) = stream_with(6, "failure").await;
    let (keys, per_key) = (60, 100);
    write_keyed(&factory, &stream, keys, per_key).await;
    let controller = factory.controller();
    bounded(controller.seal_stream(&stream)).await.unwrap();

    let config = ReaderGroupConfig::new().stream(stream.clone());
    bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "trio",
        config,
    ))
    .await
    .unwrap();
    // Each reader on a group handle (and state copy) of its own, as in three processes.
    let mut handles = Vec::new();
    let mut readers = Vec::new();
    for id in ["doomed", "left", "right"] {
        let group = bounded(ReaderGroup::open(controller, &stream.scope, "trio"))
            .await
            .unwrap();
        // The doomed reader records its positions before each event it hands out, so what
        // is read twice is at most its last event per segment.
        let settings = match id {
            "doomed" => ReaderSettings {
                position_update_interval: Duration::ZERO,
                ..detecting_settings()
            },
            _ => detecting_settings(),
        };
        readers.push(
            bounded(group.create_reader_with(id, settings))
                .await
                .unwrap(),
        );
        handles.push(group);
    }
    let observer = handles[0].clone();
    drop(handles);
    let mut doomed = readers.remove(0);
    let survivors: Vec<_> = readers
        .into_iter()
        .map(|reader| tokio::spawn(read_to_end(reader)))
        .collect();

    // The doomed reader reads part of its share (2 of 6 segments, ~2,000 events) and dies.
    let mut early = Vec::new();
    while early.len() < 800 {
        let event = bounded(doomed.next_event())
            .await
            .unwrap()
            .expect("the doomed reader's segments are not read yet");
        early.push(read_of(&event));
    }
    // Nothing changes its entry from here on but the failure detector (which keeps it).
    let recorded: Positions = bounded(observer.reader_positions("doomed"))
        .await
        .unwrap()
        .expect("the doomed reader is online");
    let handed_out = doomed.positions();
    assert_eq!(
        recorded.keys().collect::<Vec<_>>(),
        handed_out.keys().collect::<Vec<_>>()
    );
    for (segment, offset) in &recorded {
        assert!(
            *offset <= handed_out[segment],
            "recorded positions lag behind"
        );
    }
    assert!(!recorded.is_empty(), "killed mid-read, owning segments");
    // Killed: no goodbye; dropping it stops its fetch tasks and its heartbeat.
    drop(doomed);

    let mut late = Vec::new();
    for survivor in survivors {
        late.extend(survivor.await.expect("survivor"));
    }
    // The survivors ended only once the group had nothing left: the detector took the doomed
    // reader offline and they read its segments.

    // Nothing lost.
    let mut counts: BTreeMap<(String, usize), usize> = BTreeMap::new();
    for (event, _, _) in early.iter().chain(late.iter()) {
        *counts.entry(event.clone()).or_default() += 1;
    }
    let everything: BTreeSet<(String, usize)> = (0..keys)
        .flat_map(|k| (0..per_key).map(move |sequence| (key(k), sequence)))
        .collect();
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        everything,
        "every event delivered"
    );
    // Read twice: exactly what the doomed reader handed out at or after its recorded
    // positions (the position contract), once more each.
    let expected_again: BTreeSet<(String, usize)> = early
        .iter()
        .filter(|(_, segment, offset)| {
            recorded
                .iter()
                .any(|(owned, from)| owned.qualified_name() == *segment && offset >= from)
        })
        .map(|(event, _, _)| event.clone())
        .collect();
    let again: BTreeSet<(String, usize)> = counts
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(event, _)| event.clone())
        .collect();
    assert!(
        counts.values().all(|count| *count <= 2),
        "read twice at most"
    );
    assert_eq!(
        again, expected_again,
        "duplicates only past the recorded positions"
    );
    assert!(
        again.len() <= recorded.len(),
        "at most one event per segment again"
    );
    // The survivors read the doomed reader's segments from its recorded positions on.
    for (segment, from) in &recorded {
        let name = segment.qualified_name();
        let first = late
            .iter()
            .filter(|(_, read_from, _)| *read_from == name)
            .map(|(_, _, offset)| *offset)
            .min();
        if let Some(first) = first {
            assert_eq!(first, *from, "{name} resumed at its recorded position");
        }
    }
    // Per key, the survivors together read in order (a key lives in one segment).
    let mut by_key: BTreeMap<&str, Vec<(i64, usize)>> = BTreeMap::new();
    for ((key, sequence), _, offset) in &late {
        by_key.entry(key).or_default().push((*offset, *sequence));
    }
    for (key, mut reads) in by_key {
        reads.sort();
        assert!(
            reads.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "{key} in offset order"
        );
    }
}

// ---- The scenario: a killed reader, a checkpoint, a restore ----

/// What a reader handed out, in order: events, and `None` where it announced the checkpoint.
async fn read_items_to_end(mut reader: EventReader) -> Vec<Option<Read>> {
    let mut items = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while let Some(item) = tokio::time::timeout_at(deadline.into(), reader.read_next())
        .await
        .expect("the group ends before the deadline")
        .expect("next item")
    {
        items.push(match item {
            ReadItem::Event(event) => Some(read_of(&event)),
            ReadItem::Checkpoint(_) => None,
        });
    }
    reader.close().await.expect("close");
    items
}

/// Splits a reader's items at its checkpoint announcement: (before, after).
fn around_checkpoint(items: &[Option<Read>]) -> (Vec<Read>, Vec<Read>) {
    let at = items
        .iter()
        .position(Option::is_none)
        .expect("the reader announced the checkpoint");
    assert_eq!(items.iter().filter(|item| item.is_none()).count(), 1);
    let events = |part: &[Option<Read>]| part.iter().flatten().cloned().collect::<Vec<_>>();
    (events(&items[..at]), events(&items[at + 1..]))
}

/// The checkpoint's offset for `segment`; `None`: not in it (read to its end before it).
fn checkpoint_offset(positions: &Positions, segment: &str) -> Option<i64> {
    positions
        .iter()
        .find(|(owned, _)| owned.qualified_name() == segment)
        .map(|(_, offset)| *offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_reader_loses_nothing_and_a_restored_checkpoint_repeats_nothing_it_covers() {
    let (_standalone, factory, stream) = stream_with(6, "restore").await;
    let (keys, per_key) = (60, 100);
    write_keyed(&factory, &stream, keys, per_key).await;
    let controller = factory.controller();
    bounded(controller.seal_stream(&stream)).await.unwrap();
    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .refresh_time(Duration::from_millis(100));
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "trio",
        config,
    ))
    .await
    .unwrap();
    let mut readers = Vec::new();
    for id in ["doomed", "left", "right"] {
        let handle = bounded(ReaderGroup::open(controller, &stream.scope, "trio"))
            .await
            .unwrap();
        readers.push(
            bounded(handle.create_reader_with(id, detecting_settings()))
                .await
                .unwrap(),
        );
    }
    let mut doomed = readers.remove(0);
    let survivors: Vec<_> = readers
        .into_iter()
        .map(|reader| tokio::spawn(read_items_to_end(reader)))
        .collect();

    // The doomed reader reads some of its share, then the application starts a checkpoint.
    let mut doomed_items = Vec::new();
    for _ in 0..300 {
        let event = bounded(doomed.next_event()).await.unwrap().unwrap();
        doomed_items.push(Some(read_of(&event)));
    }
    let waiting = {
        let group = group.clone();
        tokio::spawn(async move { group.initiate_checkpoint("before-crash", DEADLINE).await })
    };
    // Once the checkpoint exists, the doomed reader's next read (past its refresh time)
    // takes part before anything else; it reads on a little and is killed.
    let mut peek = bounded(pravaha_client::Synchronizer::open(
        controller,
        &stream.scope,
        "trio",
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + DEADLINE;
    while peek.get("pravaha_checkpoints", "before-crash").is_none() {
        assert!(Instant::now() < deadline, "the checkpoint is created");
        tokio::time::sleep(Duration::from_millis(20)).await;
        bounded(peek.fetch_updates()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    while doomed_items.iter().flatten().count() < 500 {
        let item = bounded(doomed.read_next()).await.unwrap().unwrap();
        doomed_items.push(match item {
            ReadItem::Event(event) => Some(read_of(&event)),
            ReadItem::Checkpoint(name) => {
                assert_eq!(name, "before-crash");
                None
            }
        });
    }
    assert!(
        !doomed.positions().is_empty(),
        "killed mid-read, owning segments"
    );
    drop(doomed);
    let checkpoint = waiting.await.unwrap().expect("every reader took part");
    let mut per_reader = vec![doomed_items];
    for survivor in survivors {
        per_reader.push(survivor.await.expect("survivor"));
    }

    // Nothing lost: every event was handed out, the killed reader's by the survivors.
    let mut first_run: BTreeMap<(String, i64), (String, usize)> = BTreeMap::new();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for items in &per_reader {
        let (early, late) = around_checkpoint(items);
        before.extend(early);
        after.extend(late);
    }
    for (event, segment, offset) in before.iter().chain(after.iter()) {
        first_run.insert((segment.clone(), *offset), event.clone());
    }
    assert_eq!(first_run.len(), keys * per_key, "every event delivered");
    // The checkpoint's contract: what the readers handed out before it lies before its
    // positions, and what they handed out after (the survivors' repeats included) after.
    let positions = checkpoint.positions();
    for (_, segment, offset) in &before {
        let at = checkpoint_offset(&positions, segment);
        assert!(
            at.is_none_or(|at| *offset < at),
            "{segment}@{offset} before"
        );
    }
    for (_, segment, offset) in &after {
        let at = checkpoint_offset(&positions, segment).expect("in the checkpoint");
        assert!(*offset >= at, "{segment}@{offset} after {at}");
    }

    // Restored to the checkpoint, two new readers read exactly what lies after it, once.
    bounded(group.reset_to_checkpoint(&checkpoint))
        .await
        .unwrap();
    assert!(bounded(group.readers()).await.unwrap().is_empty());
    let again: Vec<_> = ["again-1", "again-2"]
        .into_iter()
        .map(|id| {
            let group = group.clone();
            tokio::spawn(async move {
                let reader = group
                    .create_reader_with(id, detecting_settings())
                    .await
                    .unwrap();
                read_to_end(reader).await
            })
        })
        .collect();
    let mut reread: Vec<(String, i64)> = Vec::new();
    for task in again {
        for (event, segment, offset) in task.await.unwrap() {
            assert_eq!(first_run[&(segment.clone(), offset)], event);
            reread.push((segment, offset));
        }
    }
    let reread_set: BTreeSet<(String, i64)> = reread.iter().cloned().collect();
    assert_eq!(
        reread_set.len(),
        reread.len(),
        "nothing twice after the restore"
    );
    let expected: BTreeSet<(String, i64)> = first_run
        .keys()
        .filter(|(segment, offset)| {
            checkpoint_offset(&positions, segment).is_some_and(|at| *offset >= at)
        })
        .cloned()
        .collect();
    assert_eq!(
        reread_set, expected,
        "exactly the events after the checkpoint"
    );
    let covered: BTreeSet<(String, i64)> = before
        .iter()
        .map(|(_, segment, offset)| (segment.clone(), *offset))
        .collect();
    assert!(!covered.is_empty() && !expected.is_empty());
    assert!(
        covered.is_disjoint(&reread_set),
        "none of the events before the checkpoint again"
    );
}

// ---- An official reader sharing a group is never taken offline ----

use tokio::runtime::Runtime;

#[test]
fn an_official_reader_that_never_heart_beats_stays_online() {
    let runtime = Runtime::new().expect("a runtime for the standalone");
    let standalone = runtime.block_on(Standalone::start());
    // The official client creates the group and its reader joins, takes a segment and then
    // neither reads nor heart-beats.
    let (controller, official, mut theirs) =
        events_common::official_shared_group(&runtime, &standalone, 4);
    let slice = official.runtime().block_on(async {
        for _ in 0..100 {
            if let Some(slice) = theirs.acquire_segment().await.expect("official acquire") {
                return slice;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no segment for the official reader");
    });

    runtime.block_on(async {
        let group = bounded(ReaderGroup::open(&controller, "mixed", "shared"))
            .await
            .unwrap();
        let mut watcher = bounded(group.create_reader_with("watcher", detecting_settings()))
            .await
            .unwrap();
        // A reader of ours joins after the official one, heart-beats, and is dropped.
        let doomed = bounded(group.create_reader_with("doomed", detecting_settings()))
            .await
            .unwrap();
        drop(doomed);
        // The watcher's maintenance runs the detector until it takes the silent reader of
        // ours offline; the official reader, silent for longer, must still be online then.
        let deadline = Instant::now() + DEADLINE;
        loop {
            let readers = bounded(group.readers()).await.unwrap();
            assert!(
                readers.contains(&"theirs".to_string()),
                "the official reader stays online: {readers:?}"
            );
            if !readers.contains(&"doomed".to_string()) {
                assert_eq!(readers, vec!["theirs", "watcher"]);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the doomed reader was taken offline"
            );
            // The stream is open and empty: this only waits, running maintenance.
            let _ = tokio::time::timeout(Duration::from_millis(200), watcher.next_event()).await;
        }
        bounded(watcher.close()).await.unwrap();
    });
    official.runtime().block_on(async {
        theirs.release_segment(slice).await.expect("release");
        theirs.reader_offline().await.expect("offline");
    });
}

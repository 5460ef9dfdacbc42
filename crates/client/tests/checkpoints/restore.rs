//! Restoring a group to a checkpoint: readers online at the reset are taken offline, and a
//! checkpoint taken while a merged successor waits for one of its predecessors restores to
//! exactly the events after it (the predecessor read already is in the cut at its end).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pravaha_client::controller::types::{KeyRange, ScopedSegment};
use pravaha_client::group::{GroupError, ReadItem, ReaderGroup, ReaderGroupConfig};
use pravaha_client::EventReader;

use super::{quick_settings, read_items, write, DEADLINE};
use crate::events_common::{bounded, key, stream_with};

/// Reads (with a short wait each) until `reader` announces a checkpoint; returns the events
/// it handed out before, as (segment, offset).
async fn read_until_announced(reader: &mut EventReader) -> Vec<(ScopedSegment, i64)> {
    let mut events = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "the reader takes part");
        let Ok(item) = tokio::time::timeout(Duration::from_millis(100), reader.read_next()).await
        else {
            continue;
        };
        match item.expect("read").expect("the group is not finished") {
            ReadItem::Event(event) => events.push((event.segment, event.offset)),
            ReadItem::Checkpoint(_) => return events,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_across_a_merge_restores_to_exactly_the_events_after_it() {
    let (_standalone, factory, stream) = stream_with(2, "merged").await;
    let controller = factory.controller();
    let keys: Vec<String> = (0..8).map(key).collect();
    write(&factory, &stream, &keys, 0..20).await;
    let current = bounded(controller.get_current_segments(&stream))
        .await
        .unwrap()
        .segments;
    let ids: Vec<_> = current.iter().map(|s| s.segment.id).collect();
    bounded(controller.scale_stream(&stream, &ids, &[KeyRange::new(0.0, 1.0)]))
        .await
        .expect("merge");
    write(&factory, &stream, &keys, 20..30).await;
    bounded(controller.seal_stream(&stream)).await.unwrap();

    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .refresh_time(Duration::from_millis(100));
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "merge",
        config,
    ))
    .await
    .unwrap();
    // One predecessor each (both readers exist before either reads).
    let mut first = bounded(group.create_reader_with("first", quick_settings()))
        .await
        .unwrap();
    let mut second = bounded(group.create_reader_with("second", quick_settings()))
        .await
        .unwrap();
    let mut before = Vec::new();
    let event = bounded(second.next_event()).await.unwrap().unwrap();
    before.push((event.segment, event.offset));
    // The first reads its predecessor to the end: the merged successor now waits for the
    // second's.
    let mut done = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while done.is_empty() || !first.positions().is_empty() {
        assert!(Instant::now() < deadline, "the first predecessor is read");
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(100), first.read_next()).await
        {
            if let ReadItem::Event(event) = item.unwrap().unwrap() {
                done.push((event.segment, event.offset, event.next_offset));
            }
        }
    }
    let completed = done[0].0.clone();
    let completed_end = done.iter().map(|(_, _, next)| *next).max().unwrap();
    for _ in 0..4 {
        let event = bounded(second.next_event()).await.unwrap().unwrap();
        before.push((event.segment, event.offset));
    }
    let waiting = {
        let group = group.clone();
        tokio::spawn(async move { group.initiate_checkpoint("across", DEADLINE).await })
    };
    assert!(read_until_announced(&mut first).await.is_empty());
    before.extend(read_until_announced(&mut second).await);
    let checkpoint = waiting.await.unwrap().expect("both took part");
    let positions = checkpoint.positions();
    let open = before[0].0.clone();
    assert_ne!(open, completed);
    assert_eq!(
        positions.get(&completed),
        Some(&completed_end),
        "read already: at its end"
    );
    let resume = before.iter().map(|(_, offset)| *offset).max().unwrap();
    assert!(
        positions[&open] > resume,
        "the second's position follows what it handed out"
    );
    assert_eq!(positions.len(), 2, "the successor is not in the cut");
    // Everything the first run handed out, from the start, for the expected set.
    let mut everything: Vec<(ScopedSegment, i64)> = Vec::new();
    everything.extend(
        done.iter()
            .map(|(segment, offset, _)| (segment.clone(), *offset)),
    );
    everything.extend(before.iter().cloned());
    first.close().await.unwrap();
    for (_, item) in read_items(second, Default::default()).await {
        if let ReadItem::Event(event) = item {
            everything.push((event.segment, event.offset));
        }
    }
    assert_eq!(
        everything.len(),
        keys.len() * 30,
        "the first run read everything"
    );

    bounded(group.reset_to_checkpoint(&checkpoint))
        .await
        .unwrap();
    let replay = bounded(group.create_reader_with("replay", quick_settings()))
        .await
        .unwrap();
    let reread: Vec<(ScopedSegment, i64)> = read_items(replay, Default::default())
        .await
        .into_iter()
        .filter_map(|(_, item)| match item {
            ReadItem::Event(event) => Some((event.segment, event.offset)),
            ReadItem::Checkpoint(_) => None,
        })
        .collect();
    let expected: BTreeSet<(ScopedSegment, i64)> = everything
        .into_iter()
        .filter(|(segment, offset)| positions.get(segment).is_none_or(|at| offset >= at))
        .collect();
    assert_eq!(reread.len(), expected.len(), "once each");
    assert_eq!(
        reread.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "the second predecessor after the cut, then the whole successor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_takes_online_readers_offline() {
    let (_standalone, factory, stream) = stream_with(1, "reset").await;
    let controller = factory.controller();
    let keys = vec![key(0)];
    write(&factory, &stream, &keys, 0..10).await;
    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .refresh_time(Duration::from_millis(100));
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "again",
        config,
    ))
    .await
    .unwrap();
    let mut reader = bounded(group.create_reader_with("online", quick_settings()))
        .await
        .unwrap();
    for _ in 0..10 {
        bounded(reader.next_event()).await.unwrap().unwrap();
    }
    let checkpoint = {
        let group = group.clone();
        let waiting =
            tokio::spawn(async move { group.initiate_checkpoint("all-read", DEADLINE).await });
        read_until_announced(&mut reader).await;
        waiting.await.unwrap().unwrap()
    };
    bounded(group.reset_to_checkpoint(&checkpoint))
        .await
        .unwrap();
    assert!(bounded(group.readers()).await.unwrap().is_empty());
    // The reader finds out at its next refresh and stays offline.
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "the reader finds itself offline");
        match tokio::time::timeout(Duration::from_millis(100), reader.read_next()).await {
            Ok(Err(GroupError::ReaderOffline(id))) => {
                assert_eq!(id, "online");
                break;
            }
            Ok(Ok(item)) => panic!("nothing after the checkpoint was written: {item:?}"),
            Ok(Err(error)) => panic!("unexpected error {error}"),
            Err(_) => {}
        }
    }
    assert!(matches!(
        bounded(reader.read_next()).await,
        Err(GroupError::ReaderOffline(_))
    ));
    // A new reader of the same name reads what follows the checkpoint.
    write(&factory, &stream, &keys, 10..15).await;
    let mut again = bounded(group.create_reader_with("online", quick_settings()))
        .await
        .unwrap();
    for expected in 10..15 {
        let event = bounded(again.next_event()).await.unwrap().unwrap();
        assert_eq!(
            crate::events_common::parse_payload(&event.payload).1,
            expected
        );
    }
    bounded(again.close()).await.unwrap();
}

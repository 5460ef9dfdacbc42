//! The event writer against an in-process standalone: routing and per-key order, events
//! without a key, scaling while writing, back pressure, a segment server restart, sealed
//! streams, oversized events, and watermark marks.

mod common;
mod events_common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use pravaha_client::controller::types::KeyRange;
use pravaha_client::controller::ControllerError;
use pravaha_client::event::{EventWriter, EventWriterError};
use pravaha_client::segment::{AppendError, ReaderConfig, SegmentReader, MAX_EVENT_PAYLOAD};
use pravaha_segment_server::{SegmentServer, ServerConfig};

use common::segments::locator;
use events_common::{
    assert_per_key_order, bounded, key, keyed_payload, read_stream, stream_with, writer_config,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyed_events_arrive_complete_in_order_and_in_their_key_segment() {
    let (standalone, factory, stream) = stream_with(4, "keyed").await;
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let (keys, per_key) = (20, 500);
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

    let segments = read_stream(&standalone, &factory, &stream).await;
    assert_eq!(segments.len(), 4);
    assert_per_key_order(&segments, keys, per_key);
    // Each key lives in the segment Pravega's hash routes it to.
    let current = factory
        .controller()
        .get_current_segments(&stream)
        .await
        .unwrap();
    for (segment, events) in &segments {
        for event in events {
            let (key, _) = events_common::parse_payload(event);
            let routed = &current.segment_for_routing_key(&key).unwrap().segment;
            assert_eq!(routed, segment, "key {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_without_a_key_all_arrive_once() {
    let (standalone, factory, stream) = stream_with(3, "unkeyed").await;
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let count = 2000;
    let mut acks = Vec::new();
    for index in 0..count {
        let payload = Bytes::from(format!("free/{index:06}/"));
        acks.push(bounded(writer.write_event(None, payload)).await.unwrap());
    }
    for ack in acks {
        bounded(ack).await.unwrap();
    }
    bounded(writer.close()).await.unwrap();

    let segments = read_stream(&standalone, &factory, &stream).await;
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for (_, events) in &segments {
        assert!(!events.is_empty(), "random positions reach every segment");
        for event in events {
            seen.insert(events_common::parse_payload(event).1);
            total += 1;
        }
    }
    assert_eq!(total, count);
    assert_eq!(seen, (0..count).collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaling_while_writing_keeps_every_key_complete_and_in_order() {
    let (standalone, factory, stream) = stream_with(2, "scaling").await;
    let writer = Arc::new(
        bounded(factory.create_event_writer(stream.clone()))
            .await
            .unwrap(),
    );
    let (keys, per_key) = (20, 400);
    let (producer, written) = spawn_producer(writer.clone(), keys, per_key, 20);

    let controller = factory.controller();
    let total = keys * per_key;
    // Split both segments, then merge the middle two, while the producer writes.
    wait_until(|| written.load(Ordering::Relaxed) >= total / 5).await;
    let first = bounded(controller.get_current_segments(&stream))
        .await
        .unwrap();
    let ids: Vec<_> = first.segments.iter().map(|s| s.segment.id).collect();
    let quarters: Vec<KeyRange> = (0..4)
        .map(|i| KeyRange::new(f64::from(i) / 4.0, f64::from(i + 1) / 4.0))
        .collect();
    bounded(controller.scale_stream(&stream, &ids, &quarters))
        .await
        .unwrap();
    wait_until(|| written.load(Ordering::Relaxed) >= total / 2).await;
    let second = bounded(controller.get_current_segments(&stream))
        .await
        .unwrap();
    // The writer queues events faster than it learns of the split (from a refused append to a
    // sealed predecessor): merge only once it appends to every new segment, so that the middle
    // ones are not sealed before they take anything.
    let address = standalone.segment_store_addr();
    for successor in &second.segments {
        let name = successor.segment.qualified_name();
        let mut info = SegmentReader::new(locator(address), name, ReaderConfig::default());
        bounded(async {
            while info.segment_info().await.expect("segment info").length == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
    }
    let middle: Vec<_> = second
        .segments
        .iter()
        .filter(|s| s.range.low == 0.25 || s.range.low == 0.5)
        .map(|s| s.segment.id)
        .collect();
    assert_eq!(middle.len(), 2);
    bounded(controller.scale_stream(&stream, &middle, &[KeyRange::new(0.25, 0.75)]))
        .await
        .unwrap();

    bounded(producer).await.unwrap();
    bounded(writer.flush()).await.unwrap();
    let writer = Arc::into_inner(writer).expect("the producer is done");
    bounded(writer.close()).await.unwrap();

    let segments = read_stream(&standalone, &factory, &stream).await;
    assert_eq!(
        segments.len(),
        2 + 4 + 1,
        "every epoch's segments were read"
    );
    assert_per_key_order(&segments, keys, per_key);
    for (segment, events) in &segments[2..6] {
        if segment.id.epoch() == 1 {
            assert!(!events.is_empty(), "{segment} took events after the split");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_budget_holds_writers_back_until_acknowledgements_return() {
    let (mut standalone, factory, stream) = stream_with(1, "pressure").await;
    // 108 bytes framed per event: nine fit in 1000.
    let writer = bounded(factory.create_event_writer_with(stream.clone(), writer_config(1000)))
        .await
        .unwrap();
    let payload = |index: usize| Bytes::from(format!("{index:0100}"));
    let address = standalone.segment_store_addr();
    standalone.segment_server.take().unwrap().shutdown().await;

    let mut acks = Vec::new();
    for index in 0..9 {
        acks.push(
            bounded(writer.write_event(Some("k"), payload(index)))
                .await
                .unwrap(),
        );
    }
    assert_eq!(writer.in_flight_bytes(), 9 * 108);
    let mut blocked = Box::pin(writer.write_event(Some("k"), payload(9)));
    tokio::select! {
        biased;
        _ = &mut blocked => panic!("a write went through with the budget spent"),
        () = std::future::ready(()) => {}
    }
    assert!(writer.in_flight_bytes() <= writer.in_flight_capacity());

    standalone.segment_server = Some(
        SegmentServer::start(ServerConfig::new(address), standalone.store.clone())
            .await
            .unwrap(),
    );
    acks.push(bounded(blocked).await.unwrap());
    for ack in acks {
        bounded(ack).await.unwrap();
    }
    assert_eq!(writer.in_flight_bytes(), 0);
    assert!(matches!(
        writer.write_event(None, vec![0u8; 1000]).await,
        Err(EventWriterError::ExceedsBudget {
            size: 1008,
            capacity: 1000
        })
    ));
    bounded(writer.close()).await.unwrap();

    let segments = read_stream(&standalone, &factory, &stream).await;
    let expected: Vec<Bytes> = (0..10).map(payload).collect();
    assert_eq!(segments[0].1, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_server_restart_while_writing_loses_and_duplicates_nothing() {
    let (mut standalone, factory, stream) = stream_with(2, "restart").await;
    let writer = Arc::new(
        bounded(factory.create_event_writer_with(stream.clone(), writer_config(1 << 20)))
            .await
            .unwrap(),
    );
    let (keys, per_key) = (10, 500);
    let (producer, written) = spawn_producer(writer.clone(), keys, per_key, 1);
    wait_until(|| written.load(Ordering::Relaxed) >= keys * per_key / 3).await;
    standalone.restart_segment_server().await;
    bounded(producer).await.unwrap();
    let writer = Arc::into_inner(writer).expect("the producer is done");
    bounded(writer.close()).await.unwrap();

    let segments = read_stream(&standalone, &factory, &stream).await;
    assert_per_key_order(&segments, keys, per_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sealed_stream_fails_later_events_and_oversized_events_are_refused() {
    let (_standalone, factory, stream) = stream_with(2, "sealed").await;
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    assert!(matches!(
        writer
            .write_event(Some("k"), vec![0u8; MAX_EVENT_PAYLOAD + 1])
            .await,
        Err(EventWriterError::EventTooLarge { .. })
    ));
    bounded(
        bounded(writer.write_event(Some("k"), "before"))
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    bounded(factory.controller().seal_stream(&stream))
        .await
        .unwrap();
    let after = bounded(writer.write_event(Some("k"), "after"))
        .await
        .unwrap();
    assert!(matches!(bounded(after).await, Err(AppendError::Session(_))));
    assert!(matches!(
        bounded(writer.flush()).await,
        Err(EventWriterError::StreamSealed(_))
    ));
    let _ = bounded(writer.close()).await;
    assert!(matches!(
        bounded(factory.create_event_writer(stream)).await,
        Err(EventWriterError::StreamSealed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn noted_times_reach_the_controller_and_close_removes_the_writer() {
    let (standalone, factory, stream) = stream_with(2, "marks").await;
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    for index in 0..100 {
        let key = key(index % 7);
        drop(
            bounded(writer.write_event(Some(&key), keyed_payload(&key, index)))
                .await
                .unwrap(),
        );
    }
    bounded(writer.flush()).await.unwrap();
    bounded(writer.note_time(1_000)).await.unwrap();
    let mark = standalone
        .controller
        .current_watermark(&stream.scope, &stream.stream)
        .await
        .unwrap()
        .expect("a watermark from the noted time");
    assert_eq!(mark.lower_time_bound, 1_000);
    assert_eq!(mark.stream_cut.len(), 2);
    assert!(mark.stream_cut.values().any(|offset| *offset > 0));
    assert!(matches!(
        bounded(writer.note_time(500)).await,
        Err(EventWriterError::Controller(
            ControllerError::InvalidArgument { .. }
        ))
    ));
    bounded(writer.note_time(2_000)).await.unwrap();
    bounded(writer.close()).await.unwrap();
    let after = standalone
        .controller
        .current_watermark(&stream.scope, &stream.stream)
        .await
        .unwrap();
    assert!(
        after.is_none(),
        "the closed writer no longer holds watermarks: {after:?}"
    );
}

/// Waits (bounded) until `condition` holds, checking every few milliseconds.
/// Writes `per_key` events for each of `keys` keys, round robin, yielding every `yield_every`
/// rounds, then waits for every acknowledgement; counts the events handed to the writer.
fn spawn_producer(
    writer: Arc<EventWriter>,
    keys: usize,
    per_key: usize,
    yield_every: usize,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let written = Arc::new(AtomicUsize::new(0));
    let producer = tokio::spawn({
        let written = written.clone();
        async move {
            let mut acks = Vec::new();
            for sequence in 0..per_key {
                for k in 0..keys {
                    let key = key(k);
                    acks.push(
                        writer
                            .write_event(Some(&key), keyed_payload(&key, sequence))
                            .await
                            .unwrap(),
                    );
                    written.fetch_add(1, Ordering::Relaxed);
                }
                if sequence % yield_every == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for ack in acks {
                ack.await.unwrap();
            }
        }
    });
    (producer, written)
}

async fn wait_until(condition: impl Fn() -> bool) {
    bounded(async {
        while !condition() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
}

//! The segment layer against an in-process standalone: appends, reconnection, sealing, reads.
//! (`segment_faults.rs` drives it against a scripted fake segment store.)

mod common;

use bytes::{Bytes, BytesMut};
use common::segments::*;
use common::Standalone;
use pravaha_client::segment::{
    frame_event, next_request_id, AppendError, Framing, PendingEvent, ReaderConfig, ReaderError,
    SegmentReader, SegmentWriter, SessionEnd, WriterConfig, WriterError,
};
use pravaha_wire::{self as wire, Reply, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_events_are_read_back_in_order() {
    let standalone = Standalone::start().await;
    let address = standalone.segment_store_addr();
    let segment = "scope/pipelined/0.#epoch.0";
    let writer = new_segment_writer(address, segment).await;
    let mut futures = Vec::new();
    for index in 0..10_000 {
        futures.push(writer.write(payload(index)).await.unwrap());
    }
    bounded(writer.flush()).await.unwrap();
    await_all(futures).await;
    assert!(matches!(bounded(writer.close()).await, SessionEnd::Closed));
    let expected: Vec<Bytes> = (0..10_000).map(payload).collect();
    assert_events(&read_events(address, segment, 0).await, &expected);
}

#[tokio::test]
async fn raw_appends_are_stored_verbatim() {
    let standalone = Standalone::start().await;
    let address = standalone.segment_store_addr();
    let segment = "scope/bytes/0.#epoch.0";
    create_segment(address, segment).await;
    let config = WriterConfig {
        framing: Framing::Raw,
        ..WriterConfig::default()
    };
    let writer = bounded(SegmentWriter::connect(locator(address), segment, config))
        .await
        .unwrap();
    let first = writer.write(Bytes::from_static(b"hello ")).await.unwrap();
    let second = writer.write(Bytes::from_static(b"world")).await.unwrap();
    await_all(vec![first, second]).await;
    let mut reader = SegmentReader::new(locator(address), segment, ReaderConfig::default());
    let read = bounded(reader.read(0, 100)).await.unwrap();
    assert_eq!(&read.data[..], b"hello world");
    assert!(read.at_tail && !read.end_of_segment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_in_flight_survive_a_segment_server_restart_exactly_once() {
    let mut standalone = Standalone::start().await;
    let address = standalone.segment_store_addr();
    let segment = "scope/restart/0.#epoch.0";
    create_segment(address, segment).await;
    let config = WriterConfig {
        retry: quick_retries(),
        ..WriterConfig::default()
    };
    let writer = bounded(SegmentWriter::connect(locator(address), segment, config))
        .await
        .unwrap();
    let big = |index: usize| {
        let mut data = BytesMut::from(&payload(index)[..]);
        data.extend_from_slice(&[b'p'; 2000]);
        data.freeze()
    };
    let mut futures = Vec::new();
    for index in 0..3_000 {
        futures.push(writer.write(big(index)).await.unwrap());
    }
    standalone.restart_segment_server().await;
    // Written after the restart: these need a new connection whatever happened before.
    for index in 3_000..3_100 {
        futures.push(writer.write(big(index)).await.unwrap());
    }
    await_all(futures).await;
    assert!(writer.connections() >= 2, "the session reconnected");
    assert!(matches!(bounded(writer.close()).await, SessionEnd::Closed));
    let expected: Vec<Bytes> = (0..3_100).map(big).collect();
    assert_events(&read_events(address, segment, 0).await, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sealing_hands_back_the_unacknowledged_events_in_order() {
    let standalone = Standalone::start().await;
    let address = standalone.segment_store_addr();
    let segment = "scope/sealed/0.#epoch.0";
    create_segment(address, segment).await;
    let config = WriterConfig::default();
    let writer = bounded(SegmentWriter::connect(
        locator(address),
        segment,
        config.clone(),
    ))
    .await
    .unwrap();
    let mut futures = Vec::new();
    for index in 0..1_000 {
        futures.push(writer.write(payload(index)).await.unwrap());
    }
    let mut handed_back = Vec::new();
    let half = futures.split_off(500);
    await_all(futures).await;
    seal_segment(address, segment).await;
    let mut later = half;
    for index in 1_000..2_000 {
        let (event, future) =
            PendingEvent::prepare(payload(index), Framing::Events, None, &config.budget)
                .await
                .unwrap();
        later.push(future);
        if let Err(event) = writer.submit(event).await {
            handed_back.push(event);
        }
    }
    let SessionEnd::Sealed { unacked } = bounded(writer.close()).await else {
        panic!("the session must end sealed");
    };
    // The session's own hand-back comes first, then what it refused after ending.
    let mut unacked = unacked;
    unacked.append(&mut handed_back);
    let stored = read_events(address, segment, 0).await;
    let count = stored.len();
    assert!(count >= 500, "the acknowledged events are in the segment");
    assert!(
        !unacked.is_empty(),
        "events written after the seal are handed back"
    );
    let expected: Vec<Bytes> = (0..count).map(payload).collect();
    assert_events(&stored, &expected);
    let returned: Vec<Bytes> = unacked.iter().map(|e| e.data().slice(8..)).collect();
    let rest: Vec<Bytes> = (count..2_000).map(payload).collect();
    // Exactly the events not in the segment, in order.
    assert_events(&returned, &rest);
    // The stored ones completed; the handed-back ones are still the caller's to resend.
    let acked = count - 500;
    await_all(later.drain(..acked).collect()).await;
    for event in unacked {
        event.complete(Err(AppendError::Dropped));
    }
    for future in later {
        assert!(matches!(bounded(future).await, Err(AppendError::Dropped)));
    }
}

#[tokio::test]
async fn reads_report_truncation_sealed_ends_missing_segments_and_wait_at_the_tail() {
    let standalone = Standalone::start().await;
    let address = standalone.segment_store_addr();
    let segment = "scope/reads/0.#epoch.0";
    let writer = new_segment_writer(address, segment).await;
    await_all(vec![writer.write(payload(0)).await.unwrap()]).await;
    let first_len = frame_event(&payload(0)).len() as i64;

    // A read at the tail of an open segment waits, and returns what is appended meanwhile.
    let mut tail_reader = SegmentReader::new(locator(address), segment, ReaderConfig::default());
    let tail = tokio::spawn(async move { tail_reader.read(first_len, 1 << 20).await });
    await_all(vec![writer.write(payload(1)).await.unwrap()]).await;
    let read = bounded(tail).await.unwrap().unwrap();
    assert_eq!(read.data, frame_event(&payload(1)));
    assert!(read.at_tail && !read.end_of_segment);

    // Truncation: below the start offset is typed, with the start offset.
    let reply = admin(
        address,
        Request::TruncateSegment(wire::TruncateSegment {
            request_id: next_request_id(),
            segment: segment.into(),
            truncation_offset: first_len,
            delegation_token: String::new(),
        }),
    )
    .await;
    assert!(matches!(reply, Reply::SegmentTruncated(_)), "{reply:?}");
    let mut reader = SegmentReader::new(locator(address), segment, ReaderConfig::default());
    let info = bounded(reader.segment_info()).await.unwrap();
    assert_eq!((info.start_offset, info.sealed), (first_len, false));
    let error = bounded(reader.read(0, 100)).await.unwrap_err();
    assert!(
        matches!(error, ReaderError::Truncated { offset: 0, start_offset, .. } if start_offset == first_len),
        "{error}"
    );
    assert_eq!(read_events(address, segment, first_len).await, [payload(1)]);

    // The end of a sealed segment.
    assert!(matches!(bounded(writer.close()).await, SessionEnd::Closed));
    seal_segment(address, segment).await;
    let info = bounded(reader.segment_info()).await.unwrap();
    assert!(info.sealed);
    let end = bounded(reader.read(info.length, 100)).await.unwrap();
    assert!(end.end_of_segment && end.data.is_empty());
    let last = bounded(reader.read(first_len, 1 << 20)).await.unwrap();
    assert!(
        last.end_of_segment,
        "the data reaches the end of the sealed segment"
    );

    // A missing segment, for readers and writers.
    let mut missing = SegmentReader::new(
        locator(address),
        "scope/none/0.#epoch.0",
        ReaderConfig::default(),
    );
    assert!(matches!(
        bounded(missing.read(0, 10)).await,
        Err(ReaderError::NoSuchSegment(_))
    ));
    assert!(matches!(
        bounded(missing.segment_info()).await,
        Err(ReaderError::NoSuchSegment(_))
    ));
    let connecting = SegmentWriter::connect(
        locator(address),
        "scope/none/0.#epoch.0",
        WriterConfig::default(),
    );
    assert!(matches!(
        bounded(connecting).await,
        Err(WriterError::NoSuchSegment(_))
    ));
}

#[tokio::test]
async fn conditional_appends_fail_on_a_wrong_offset_until_reset() {
    let standalone = Standalone::start().await;
    let address = standalone.segment_store_addr();
    let segment = "scope/conditional/0.#epoch.0";
    let writer = new_segment_writer(address, segment).await;
    let length = frame_event(&payload(0)).len() as i64;
    let both = length + frame_event(&payload(1)).len() as i64;
    let first = writer.write_conditional(payload(0), 0).await.unwrap();
    let second = writer.write_conditional(payload(1), length).await.unwrap();
    await_all(vec![first, second]).await;
    let stale = writer.write_conditional(payload(2), 0).await.unwrap();
    let after = writer.write(payload(3)).await.unwrap();
    assert!(matches!(
        bounded(stale).await,
        Err(AppendError::ConditionalCheckFailed { .. })
    ));
    assert!(matches!(
        bounded(after).await,
        Err(AppendError::ConditionalCheckFailed { .. })
    ));
    bounded(writer.reset()).await;
    let resumed = writer.write_conditional(payload(4), both).await.unwrap();
    await_all(vec![resumed]).await;
    assert!(matches!(bounded(writer.close()).await, SessionEnd::Closed));
    assert_eq!(
        read_events(address, segment, 0).await,
        [payload(0), payload(1), payload(4)]
    );
}

//! Appends and reads over real TCP: concurrent writers, retries after a disconnect, tail reads.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{frame_event, parse_events, read_request, Client, TestServer, TIMEOUT};
use pravaha_wire::{self as wire, Reply, Request};

fn payload(writer: usize, event: i64) -> Bytes {
    Bytes::from(format!(
        "writer {writer} event {event} {}",
        "x".repeat((event % 7) as usize * 13)
    ))
}

/// Waits for acknowledgements until `last` is acknowledged; checks that they come in order and
/// chain (each `previous_event_number` is the event number of the ack before).
async fn await_acks(
    client: &mut Client,
    writer_id: u128,
    mut previous: i64,
    last: i64,
) -> Vec<wire::DataAppended> {
    let mut acks = Vec::new();
    while previous < last {
        match client.recv().await {
            Reply::DataAppended(ack) => {
                assert_eq!(ack.writer_id, writer_id);
                assert_eq!(ack.previous_event_number, previous, "acks must chain");
                assert!(ack.event_number > previous, "acks must move forward");
                previous = ack.event_number;
                acks.push(ack);
            }
            other => panic!("expected DataAppended, got {other:?}"),
        }
    }
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_store_every_event_once_and_in_order() {
    let server = TestServer::start().await;
    let shared = "scope/stream/0.#epoch.0";
    let mut admin = server.client().await;
    admin.create_segment(shared).await;
    for w in 0..4 {
        admin
            .create_segment(&format!("scope/own{w}/0.#epoch.0"))
            .await;
    }
    const BLOCKS: i64 = 60;
    const EVENTS_PER_BLOCK: i64 = 3;
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let addr = server.addr();
        tasks.push(tokio::spawn(async move {
            let segment = if w < 4 {
                "scope/stream/0.#epoch.0".to_owned()
            } else {
                format!("scope/own{}/0.#epoch.0", w - 4)
            };
            let writer_id = 0xABCD_0000_0000_0000_0000_0000_0000_0000u128 + w as u128;
            let mut client = Client::connect(addr).await;
            let last = client.setup_append(&segment, writer_id).await;
            assert_eq!(
                last,
                wire::NULL_ATTRIBUTE_VALUE,
                "a new writer has no events"
            );
            // Pipelined, as the Java client does: every block is sent before any ack is read.
            for block in 0..BLOCKS {
                let first = block * EVENTS_PER_BLOCK + 1;
                let events: Vec<Bytes> = (first..first + EVENTS_PER_BLOCK)
                    .map(|n| payload(w, n))
                    .collect();
                client
                    .send_block(writer_id, first + EVENTS_PER_BLOCK - 1, &events)
                    .await;
            }
            let acks = await_acks(&mut client, writer_id, last, BLOCKS * EVENTS_PER_BLOCK).await;
            let final_ack = acks.last().unwrap();
            (segment, final_ack.current_segment_write_offset)
        }));
    }
    let mut reported = Vec::new();
    for task in tasks {
        reported.push(task.await.unwrap());
    }
    // Every writer's events are in its segment exactly once, in its order.
    let mut reader = server.client().await;
    let shared_events = parse_events(&reader.read_all(shared).await);
    assert_eq!(shared_events.len() as i64, 4 * BLOCKS * EVENTS_PER_BLOCK);
    for w in 0..4 {
        let mine: Vec<_> = shared_events
            .iter()
            .filter(|e| e.starts_with(format!("writer {w} ").as_bytes()))
            .cloned()
            .collect();
        let expected: Vec<_> = (1..=BLOCKS * EVENTS_PER_BLOCK)
            .map(|n| payload(w, n))
            .collect();
        assert_eq!(mine, expected, "writer {w} on the shared segment");
    }
    for w in 4..8 {
        let segment = format!("scope/own{}/0.#epoch.0", w - 4);
        let data = reader.read_all(&segment).await;
        let expected: Vec<_> = (1..=BLOCKS * EVENTS_PER_BLOCK)
            .map(|n| payload(w, n))
            .collect();
        assert_eq!(parse_events(&data), expected);
        // The last ack of a writer alone on its segment reports the segment's length.
        let (_, offset) = reported.iter().find(|(s, _)| *s == segment).unwrap();
        assert_eq!(*offset, data.len() as i64);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_forced_disconnect_is_not_duplicated() {
    let server = TestServer::start().await;
    let segment = "scope/retry/0.#epoch.0";
    let writer_id = 0x1234_5678_9abc_def0_1234_5678_9abc_def0u128;
    let mut admin = server.client().await;
    admin.create_segment(segment).await;
    let events: Vec<Bytes> = (1..=200).map(|n| payload(0, n)).collect();

    // First connection: wait for the first 50 acks, send the rest, then drop the connection
    // without reading further acks.
    let mut first = server.client().await;
    first.setup_append(segment, writer_id).await;
    for n in 1..=50i64 {
        first
            .send_block(writer_id, n, &events[n as usize - 1..n as usize])
            .await;
    }
    await_acks(&mut first, writer_id, wire::NULL_ATTRIBUTE_VALUE, 50).await;
    for n in 51..=200i64 {
        first
            .send_block(writer_id, n, &events[n as usize - 1..n as usize])
            .await;
    }
    drop(first);

    // Second connection: the server reports what it has, and the writer resends the rest, as the
    // clients do. Appends of the first connection may still be on their way to the log when the
    // second one sets up; the container recognises those resent events as duplicates.
    let mut second = server.client().await;
    let last = second.setup_append(segment, writer_id).await;
    assert!(
        (50..=200).contains(&last),
        "at least the acknowledged events are durable: {last}"
    );
    for n in last + 1..=200i64 {
        second
            .send_block(writer_id, n, &events[n as usize - 1..n as usize])
            .await;
    }
    await_acks(&mut second, writer_id, last, 200).await;

    let stored = parse_events(&admin.read_all(segment).await);
    assert_eq!(stored, events, "each event exactly once, in order");

    // A third setup reports the last event.
    let mut third = server.client().await;
    assert_eq!(third.setup_append(segment, writer_id).await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_at_the_tail_receives_data_as_it_arrives() {
    let server = TestServer::start().await;
    let segment = "scope/tail/0.#epoch.0";
    let mut writer = server.client().await;
    writer.create_segment(segment).await;
    let writer_id = 7u128;
    writer.setup_append(segment, writer_id).await;

    let mut reader = server.client().await;
    let mut offset = 0i64;
    for n in 1..=5i64 {
        // Park a read at the tail, then write.
        let request_id = reader.next_id();
        reader
            .send(&read_request(segment, offset, 1 << 20, request_id))
            .await;
        let parked = tokio::time::timeout(Duration::from_millis(150), reader.recv()).await;
        assert!(
            parked.is_err(),
            "a tail read must wait for data, got {parked:?}"
        );
        let event = payload(1, n);
        writer
            .send_block(writer_id, n, std::slice::from_ref(&event))
            .await;
        match writer.recv().await {
            Reply::DataAppended(ack) => assert_eq!(ack.event_number, n),
            other => panic!("{other:?}"),
        }
        match reader.recv().await {
            Reply::SegmentRead(read) => {
                assert_eq!(read.request_id, request_id);
                assert_eq!(read.offset, offset, "the reply echoes the requested offset");
                assert_eq!(read.data, frame_event(&event));
                assert!(read.at_tail);
                assert!(!read.end_of_segment);
                offset += read.data.len() as i64;
            }
            other => panic!("expected SegmentRead, got {other:?}"),
        }
    }

    // A parked read ends with the seal: end of segment.
    let request_id = reader.next_id();
    reader
        .send(&read_request(segment, offset, 1 << 20, request_id))
        .await;
    let seal_id = writer.next_id();
    let sealed = writer
        .call(Request::SealSegment(wire::SealSegment {
            request_id: seal_id,
            segment: segment.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(sealed, Reply::SegmentSealed(_)), "{sealed:?}");
    match reader.recv().await {
        Reply::SegmentRead(read) => {
            assert_eq!(read.offset, offset);
            assert!(read.data.is_empty());
            assert!(read.end_of_segment);
        }
        other => panic!("expected the end of the segment, got {other:?}"),
    }
    // Reading the last event of the sealed segment reports that it ends there.
    match reader.read(segment, 0, 1 << 20).await {
        Reply::SegmentRead(read) => {
            assert_eq!(read.data.len() as i64, offset);
            assert!(read.at_tail && read.end_of_segment);
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tail_read_gets_an_empty_reply_after_the_wait() {
    let server = TestServer::start_with(|config| {
        config.limits.tail_wait = Duration::from_millis(200);
    })
    .await;
    let segment = "scope/idle/0.#epoch.0";
    let mut client = server.client().await;
    client.create_segment(segment).await;
    match client.read(segment, 0, 100).await {
        Reply::SegmentRead(read) => {
            assert!(read.data.is_empty());
            assert!(read.at_tail);
            assert!(!read.end_of_segment);
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_style_blocks_with_partial_events_are_joined() {
    let server = TestServer::start().await;
    let segment = "scope/java/0.#epoch.0";
    let mut client = server.client().await;
    client.create_segment(segment).await;
    let writer_id = 99u128;
    client.setup_append(segment, writer_id).await;
    // Two whole events, then the first 5 bytes of a third (as a PartialEvent frame) whose rest
    // comes in the AppendBlockEnd.
    let whole = [frame_event(b"first"), frame_event(b"second")].concat();
    let third = frame_event(b"third event");
    let mut body = whole.clone();
    body.extend_from_slice(&wire::PARTIAL_EVENT_TYPE.to_be_bytes());
    body.extend_from_slice(&5i32.to_be_bytes());
    body.extend_from_slice(&third[..5]);
    client
        .send(&Request::AppendBlock(wire::AppendBlock {
            writer_id,
            data: Bytes::from(body),
        }))
        .await;
    let request_id = client.next_id();
    client
        .send(&Request::AppendBlockEnd(wire::AppendBlockEnd {
            writer_id,
            size_of_whole_events: i32::try_from(whole.len()).unwrap(),
            data: third.slice(5..),
            num_events: 3,
            last_event_number: 3,
            request_id,
        }))
        .await;
    match client.recv().await {
        Reply::DataAppended(ack) => {
            assert_eq!(ack.event_number, 3);
            assert_eq!(ack.request_id, request_id);
        }
        other => panic!("{other:?}"),
    }
    let events = parse_events(&client.read_all(segment).await);
    assert_eq!(
        events,
        vec![
            Bytes::from("first"),
            Bytes::from("second"),
            Bytes::from("third event")
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_appends_check_the_offset() {
    let server = TestServer::start().await;
    let segment = "scope/cond/0.#epoch.0";
    let mut client = server.client().await;
    client.create_segment(segment).await;
    let writer_id = 5u128;
    client.setup_append(segment, writer_id).await;
    let event = frame_event(b"conditional");
    let append = |event_number: i64, expected_offset: i64, request_id: i64| {
        Request::ConditionalBlockEnd(wire::ConditionalBlockEnd {
            writer_id,
            event_number,
            expected_offset,
            data: event.clone(),
            request_id,
        })
    };
    let id = client.next_id();
    match client.call(append(1, 0, id)).await {
        Reply::DataAppended(ack) => {
            assert_eq!(ack.current_segment_write_offset, event.len() as i64)
        }
        other => panic!("{other:?}"),
    }
    let id = client.next_id();
    assert_eq!(
        client.call(append(2, 0, id)).await,
        Reply::ConditionalCheckFailed(wire::ConditionalCheckFailed {
            writer_id,
            event_number: 2,
            request_id: id,
        })
    );
    // The connection stays usable; the right offset succeeds.
    let id = client.next_id();
    match client.call(append(2, event.len() as i64, id)).await {
        Reply::DataAppended(ack) => assert_eq!(ack.event_number, 2),
        other => panic!("{other:?}"),
    }
    // The Java form (one event, framed by the server).
    let id = client.next_id();
    let reply = client
        .call(Request::ConditionalAppend(wire::ConditionalAppend {
            writer_id,
            event_number: 3,
            expected_offset: 2 * event.len() as i64,
            event_data: Bytes::from_static(b"java"),
            request_id: id,
        }))
        .await;
    assert!(matches!(reply, Reply::DataAppended(_)), "{reply:?}");
    let events = parse_events(&client.read_all(segment).await);
    assert_eq!(
        events,
        vec![
            Bytes::from("conditional"),
            Bytes::from("conditional"),
            Bytes::from("java")
        ]
    );
    let _ = TIMEOUT;
    server.stop().await;
}

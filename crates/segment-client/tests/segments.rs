//! Every segment request's success path against a real segment server.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{client, TestServer, TIMEOUT};
use pravaha_segment_client::{frame_event, ClientError, Created, ScalePolicy};

/// Pravega's core attribute ids: high 64 bits 0x8000…, low 64 bits the index.
const CORE: u128 = 0x8000_0000_0000_0000 << 64;
const SCALE_TYPE: u128 = CORE | 2;
const SCALE_RATE: u128 = CORE | 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_append_read_seal_delete() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/stream/0.#epoch.0";

    let policy = ScalePolicy::default();
    assert_eq!(
        c.create_segment(at, segment, policy, "").await.unwrap(),
        Created::New
    );
    assert_eq!(
        c.create_segment(at, segment, policy, "").await.unwrap(),
        Created::AlreadyExisted
    );
    let info = c.segment_info(at, segment, "").await.unwrap();
    assert_eq!(info.segment, segment);
    assert_eq!((info.length, info.start_offset, info.sealed), (0, 0, false));
    assert!(info.last_modified_ms > 1_600_000_000_000, "{info:?}");

    let (one, two) = (frame_event(b"one"), frame_event(b"second event"));
    let length = c.append(at, segment, 7, 1, one.clone(), "").await.unwrap();
    assert_eq!(length, one.len() as i64);
    let length = c.append(at, segment, 7, 2, two.clone(), "").await.unwrap();
    assert_eq!(length, (one.len() + two.len()) as i64);
    assert_eq!(
        c.segment_info(at, segment, "").await.unwrap().length,
        length
    );

    let read = c.read_segment(at, segment, 0, 1 << 20, "").await.unwrap();
    assert_eq!(read.offset, 0);
    assert_eq!(read.data, [one.clone(), two.clone()].concat());
    assert!(read.at_tail);
    assert!(!read.end_of_segment);
    let second = c
        .read_segment(at, segment, one.len() as i64, 1 << 20, "")
        .await
        .unwrap();
    assert_eq!(
        (second.offset, second.data),
        (one.len() as i64, two.clone())
    );

    c.seal_segment(at, segment, "").await.unwrap();
    c.seal_segment(at, segment, "").await.unwrap(); // already sealed counts as done
    let info = c.segment_info(at, segment, "").await.unwrap();
    assert!(info.sealed);
    assert_eq!(info.length, length);
    let end = c.read_segment(at, segment, length, 100, "").await.unwrap();
    assert!(end.data.is_empty());
    assert!(end.end_of_segment);
    let whole = c.read_segment(at, segment, 0, 1 << 20, "").await.unwrap();
    assert!(
        whole.end_of_segment,
        "the data reaches the end of a sealed segment"
    );

    c.delete_segment(at, segment, "").await.unwrap();
    assert!(matches!(
        c.segment_info(at, segment, "").await,
        Err(ClientError::NoSuchSegment(s)) if s == segment
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_number_is_not_written_twice() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/idempotent/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    let event = frame_event(b"once");
    let first = c
        .append(at, segment, 9, 1, event.clone(), "")
        .await
        .unwrap();
    let again = c
        .append(at, segment, 9, 1, event.clone(), "")
        .await
        .unwrap();
    assert_eq!(first, again);
    let read = c.read_segment(at, segment, 0, 1 << 20, "").await.unwrap();
    assert_eq!(read.data, event);
    // Another writer appends normally.
    let other = c
        .append(at, segment, 10, 1, event.clone(), "")
        .await
        .unwrap();
    assert_eq!(other, 2 * first);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_raises_the_start_offset() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/truncate/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    let first = c
        .append(at, segment, 1, 1, frame_event(b"first"), "")
        .await
        .unwrap();
    c.append(at, segment, 1, 2, frame_event(b"second"), "")
        .await
        .unwrap();
    c.truncate_segment(at, segment, first, "").await.unwrap();
    let info = c.segment_info(at, segment, "").await.unwrap();
    assert_eq!(info.start_offset, first);
    let read = c
        .read_segment(at, segment, first, 1 << 20, "")
        .await
        .unwrap();
    assert_eq!(read.data, frame_event(b"second"));
    match c.read_segment(at, segment, 0, 100, "").await {
        Err(ClientError::Truncated {
            segment: name,
            start_offset,
        }) => assert_eq!((name.as_str(), start_offset), (segment, first)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_policy_is_stored_as_attributes_and_updated() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/policy/0.#epoch.0";
    let policy = ScalePolicy {
        scale_type: 1,
        target_rate: 10,
    };
    c.create_segment(at, segment, policy, "").await.unwrap();
    assert_eq!(
        c.get_attribute(at, segment, SCALE_TYPE, "").await.unwrap(),
        Some(1)
    );
    assert_eq!(
        c.get_attribute(at, segment, SCALE_RATE, "").await.unwrap(),
        Some(10)
    );
    let updated = ScalePolicy {
        scale_type: 2,
        target_rate: 250,
    };
    c.update_segment_policy(at, segment, updated, "")
        .await
        .unwrap();
    assert_eq!(
        c.get_attribute(at, segment, SCALE_TYPE, "").await.unwrap(),
        Some(2)
    );
    assert_eq!(
        c.get_attribute(at, segment, SCALE_RATE, "").await.unwrap(),
        Some(250)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_are_compared_and_set() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/attributes/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    let attribute = 0x1234_5678_9abc_def0_1122_3344_5566_7788u128;
    assert_eq!(
        c.get_attribute(at, segment, attribute, "").await.unwrap(),
        None
    );
    assert!(c
        .update_attribute(at, segment, attribute, 10, None, "")
        .await
        .unwrap());
    assert!(!c
        .update_attribute(at, segment, attribute, 20, None, "")
        .await
        .unwrap());
    assert!(!c
        .update_attribute(at, segment, attribute, 20, Some(11), "")
        .await
        .unwrap());
    assert_eq!(
        c.get_attribute(at, segment, attribute, "").await.unwrap(),
        Some(10)
    );
    assert!(c
        .update_attribute(at, segment, attribute, -5, Some(10), "")
        .await
        .unwrap());
    assert_eq!(
        c.get_attribute(at, segment, attribute, "").await.unwrap(),
        Some(-5)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_appends_the_source_and_deletes_it() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let target = "scope/merge/0.#epoch.0";
    // A transaction segment lives in its parent's container.
    let source = format!("{target}#transaction.{:032x}", 0xabcdu128);
    for segment in [target, source.as_str()] {
        c.create_segment(at, segment, ScalePolicy::default(), "")
            .await
            .unwrap();
    }
    let base = frame_event(b"in the target");
    let txn = [frame_event(b"txn 1"), frame_event(b"txn 2")].concat();
    c.append(at, target, 1, 1, base.clone(), "").await.unwrap();
    c.append(at, &source, 2, 1, Bytes::from(txn.clone()), "")
        .await
        .unwrap();
    let length = c.merge_segments(at, target, &source, "").await.unwrap();
    assert_eq!(length, (base.len() + txn.len()) as i64);
    let read = c.read_segment(at, target, 0, 1 << 20, "").await.unwrap();
    assert_eq!(read.data, [base, Bytes::from(txn)].concat());
    assert!(matches!(
        c.segment_info(at, &source, "").await,
        Err(ClientError::NoSuchSegment(_))
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_at_the_tail_waits_for_data() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/tail/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    let reader = c.clone();
    let read = tokio::spawn(async move { reader.read_segment(at, segment, 0, 1 << 20, "").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!read.is_finished(), "the read waits at the tail");
    let event = frame_event(b"arrives later");
    c.append(at, segment, 3, 1, event.clone(), "")
        .await
        .unwrap();
    let read = tokio::time::timeout(TIMEOUT, read)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((read.offset, read.data), (0, event));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_at_the_tail_ends_empty_after_the_servers_wait() {
    let server =
        TestServer::start_with(|config| config.limits.tail_wait = Duration::from_millis(100)).await;
    let at = server.addr();
    let c = client();
    let segment = "scope/quiet/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    let read = c.read_segment(at, segment, 0, 1 << 20, "").await.unwrap();
    assert!(read.data.is_empty());
    assert!(read.at_tail);
    assert!(!read.end_of_segment);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_reads_come_in_pieces() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/large/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    // Three appends of 3 MiB each; the server returns at most 2 MiB per read.
    let mut expected = BytesMut::new();
    for number in 1..=3u8 {
        let payload = vec![number; 3 << 20];
        let event = frame_event(&payload);
        expected.extend_from_slice(&event);
        c.append(at, segment, 5, i64::from(number), event, "")
            .await
            .unwrap();
    }
    let mut data = BytesMut::new();
    let mut reads = 0;
    while data.len() < expected.len() {
        let read = c
            .read_segment(at, segment, data.len() as i64, 8 << 20, "")
            .await
            .unwrap();
        assert!(!read.data.is_empty());
        assert!(read.data.len() <= 2 << 20);
        data.extend_from_slice(&read.data);
        reads += 1;
    }
    assert_eq!(data, expected);
    assert!(reads >= 5, "{reads} reads");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_segments_are_created_and_deleted() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let table = "_system/_tables/test";
    assert_eq!(
        c.create_table_segment(at, table, "").await.unwrap(),
        Created::New
    );
    assert_eq!(
        c.create_table_segment(at, table, "").await.unwrap(),
        Created::AlreadyExisted
    );
    assert_eq!(c.segment_info(at, table, "").await.unwrap().length, 0);
    let info = c.table_segment_info(at, table, "").await.unwrap();
    assert_eq!((info.entry_count, info.key_length), (0, 0));
    c.delete_table_segment(at, table, true, "").await.unwrap();
    assert!(matches!(
        c.segment_info(at, table, "").await,
        Err(ClientError::NoSuchSegment(_))
    ));

    // A fixed-key table segment (a Key-Value Table partition) reports its key length.
    let partition = "scope/kvt_kvtable/0.#epoch.0";
    assert_eq!(
        c.create_fixed_key_table_segment(at, partition, 12, 0, "")
            .await
            .unwrap(),
        Created::New
    );
    let info = c.table_segment_info(at, partition, "").await.unwrap();
    assert_eq!(info.segment, partition);
    assert_eq!((info.length, info.entry_count, info.key_length), (0, 0, 12));
    assert!(matches!(
        c.table_segment_info(at, "scope/kvt_kvtable/9.#epoch.0", "")
            .await,
        Err(ClientError::NoSuchSegment(_))
    ));
    server.stop().await;
}

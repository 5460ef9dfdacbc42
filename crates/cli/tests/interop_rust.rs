//! Interoperability with Pravega's official Rust client (`pravega-client` 0.3.7 from crates.io):
//! every scenario runs the unmodified client against a real `pravaha standalone` process.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::official::{
    client_factory, create_stream, parse_payload, payload, read_stream, write_keyed, DEADLINE,
};
use common::Standalone;
use futures::StreamExt;
use pravega_client::client_factory::ClientFactory;
use pravega_client::event::reader::EventReader;
use pravega_client_config::credentials::Credentials;
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{Scope, Segment, StreamCut, Timestamp, TransactionStatus, WriterId};

/// Events as read: (global read order, payload). The order counter is taken while the reader
/// holds the segment, and a segment changes hands only through the group's state, so for events
/// of one segment the counter follows their order in the segment.
type Reads = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// Reads with `reader` until `reads` holds `target` events in all (shared between readers) or
/// the deadline passes; the reader goes offline at the end. Returns how many it read itself.
async fn read_until(
    mut reader: EventReader,
    order: Arc<AtomicU64>,
    reads: Reads,
    target: usize,
) -> usize {
    let deadline = Instant::now() + DEADLINE;
    let mut mine = 0;
    while reads.lock().unwrap().len() < target && Instant::now() < deadline {
        if let Some(mut slice) = reader.acquire_segment().await.expect("acquire a segment") {
            for event in &mut slice {
                let n = order.fetch_add(1, Ordering::SeqCst);
                reads.lock().unwrap().push((n, event.value));
                mine += 1;
            }
            reader
                .release_segment(slice)
                .await
                .expect("release the segment");
        }
    }
    reader.reader_offline().await.expect("reader offline");
    mine
}

/// Asserts that `reads` holds, for each of `keys` keys, exactly events 0..per_key[key], in order.
fn assert_complete_in_order(reads: &[(u64, Vec<u8>)], expected: &BTreeMap<usize, usize>) {
    let mut by_key: BTreeMap<usize, Vec<(u64, usize)>> = BTreeMap::new();
    for (order, bytes) in reads {
        let (key, seq) = parse_payload(bytes);
        by_key.entry(key).or_default().push((*order, seq));
    }
    for (key, count) in expected {
        let mut events = by_key.remove(key).unwrap_or_default();
        events.sort();
        let seqs: Vec<usize> = events.iter().map(|(_, seq)| *seq).collect();
        let want: Vec<usize> = (0..*count).collect();
        if seqs != want {
            let mut seen = HashSet::new();
            let duplicates: Vec<_> = seqs.iter().filter(|s| !seen.insert(**s)).collect();
            panic!(
                "key {key}: read {} events, expected {count}; duplicates {:?}; first out of order at {:?}",
                seqs.len(),
                &duplicates[..duplicates.len().min(10)],
                seqs.iter().zip(&want).position(|(a, b)| a != b)
            );
        }
    }
    assert!(
        by_key.is_empty(),
        "events of unexpected keys: {:?}",
        by_key.keys()
    );
}

#[test]
fn ten_thousand_events_twenty_keys_two_readers() {
    const EVENTS: usize = 10_000;
    const KEYS: usize = 20;
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    let handle = factory.runtime_handle();
    let per_reader = factory.runtime().block_on(async {
        let stream = create_stream(&factory, "interop", "events", 4).await;
        let group = factory
            .create_reader_group("twoReaders".to_string(), stream.clone())
            .await;
        let readers = [
            group.create_reader("reader-1".to_string()).await,
            group.create_reader("reader-2".to_string()).await,
        ];
        let order = Arc::new(AtomicU64::new(0));
        let reads: Reads = Arc::default();
        let tasks: Vec<_> = readers
            .into_iter()
            .map(|reader| handle.spawn(read_until(reader, order.clone(), reads.clone(), EVENTS)))
            .collect();

        // The first reader took every segment when it joined alone; the official client
        // rebalances every 10 s, so the writing is spread over 14 s to see a hand-over.
        let mut writer = factory.create_event_writer(stream.clone());
        let mut acks = Vec::with_capacity(EVENTS);
        for i in 0..EVENTS {
            let (key, seq) = (i % KEYS, i / KEYS);
            acks.push(
                writer
                    .write_event_by_routing_key(format!("routing-{key}"), payload(key, seq))
                    .await,
            );
            if i % 500 == 499 {
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
        for ack in acks {
            ack.await.expect("ack channel").expect("event acknowledged");
        }
        let mut per_reader = Vec::new();
        for task in tasks {
            per_reader.push(task.await.expect("reader task"));
        }
        let reads = reads.lock().unwrap().clone();
        let expected = (0..KEYS).map(|k| (k, EVENTS / KEYS)).collect();
        assert_complete_in_order(&reads, &expected);
        per_reader
    });
    assert_eq!(per_reader.iter().sum::<usize>(), EVENTS);
    assert!(
        per_reader.iter().all(|n| *n > 0),
        "both readers took part: {per_reader:?}"
    );
}

#[test]
fn writer_reconnects_after_restart_without_duplicates() {
    const KEYS: usize = 5;
    const BEFORE: usize = 1_000;
    const AFTER: usize = 1_000;
    let mut standalone = Standalone::start();
    let factory = client_factory(&standalone);
    let stream = factory
        .runtime()
        .block_on(create_stream(&factory, "interop", "reconnect", 2));
    let mut writer = factory.create_event_writer(stream.clone());
    // Half the events acknowledged, the rest written while the server restarts: the writer
    // reconnects and resends whatever was not acknowledged, and the server drops what it already
    // has (writer id and event number).
    factory.runtime().block_on(async {
        for ack in write_keyed(&mut writer, 0..BEFORE, KEYS).await {
            ack.await.unwrap().expect("acknowledged before the restart");
        }
    });
    let mut acks =
        factory
            .runtime()
            .block_on(write_keyed(&mut writer, BEFORE..BEFORE + AFTER / 2, KEYS));
    standalone.kill();
    standalone.restart();
    factory.runtime().block_on(async {
        acks.extend(write_keyed(&mut writer, BEFORE + AFTER / 2..BEFORE + AFTER, KEYS).await);
        for ack in acks {
            tokio::time::timeout(DEADLINE, ack)
                .await
                .expect("ack within the deadline")
                .unwrap()
                .expect("acknowledged after the reconnect");
        }
    });
    let reads = read_stream(&factory, &stream, "afterRestart", BEFORE + AFTER);
    let expected = (0..KEYS).map(|k| (k, (BEFORE + AFTER) / KEYS)).collect();
    assert_complete_in_order(&reads, &expected);
}

#[test]
fn transactions_commit_and_abort() {
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    let stream = factory
        .runtime()
        .block_on(create_stream(&factory, "interop", "txns", 3));
    factory.runtime().block_on(async {
        let mut txn_writer = factory
            .create_transactional_event_writer(stream.clone(), WriterId(7))
            .await;
        let mut committed = txn_writer.begin().await.expect("begin");
        let mut aborted = txn_writer.begin().await.expect("begin");
        for seq in 0..50 {
            for key in 0..4 {
                committed
                    .write_event(Some(format!("k{key}")), payload(key, seq))
                    .await
                    .expect("write into the transaction");
                aborted
                    .write_event(Some(format!("k{key}")), payload(key + 10, seq))
                    .await
                    .expect("write into the transaction");
            }
        }
        aborted.abort().await.expect("abort");
        committed.commit(Timestamp(1)).await.expect("commit");
        let deadline = Instant::now() + DEADLINE;
        loop {
            match committed.check_status().await.expect("status") {
                TransactionStatus::Committed => break,
                TransactionStatus::Committing | TransactionStatus::Open => {}
                other => panic!("committed transaction is {other:?}"),
            }
            assert!(Instant::now() < deadline, "commit finished");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(matches!(
            aborted.check_status().await.expect("status"),
            TransactionStatus::Aborted | TransactionStatus::Aborting
        ));
    });
    // Only the committed transaction's events exist, each key complete and in order; the
    // aborted transaction's keys (10..14) never appear.
    let reads = read_stream(&factory, &stream, "txnReader", 200);
    let expected = (0..4).map(|k| (k, 50)).collect();
    assert_complete_in_order(&reads, &expected);
}

#[test]
fn scaling_while_writing_and_reading_keeps_order_per_key() {
    const KEYS: usize = 20;
    const EVENTS: usize = 6_000;
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    let handle = factory.runtime_handle();
    factory.runtime().block_on(async {
        let stream = create_stream(&factory, "interop", "scaling", 2).await;
        let group = factory
            .create_reader_group("scalingReaders".to_string(), stream.clone())
            .await;
        let reader = group.create_reader("reader".to_string()).await;
        let order = Arc::new(AtomicU64::new(0));
        let reads: Reads = Arc::default();
        let reading = handle.spawn(read_until(reader, order, reads.clone(), EVENTS));

        let writing = {
            let mut writer = factory.create_event_writer(stream.clone());
            handle.spawn(async move {
                let mut acks = Vec::new();
                for i in 0..EVENTS {
                    let key = i % KEYS;
                    acks.push(
                        writer
                            .write_event_by_routing_key(format!("key{key}"), payload(key, i / KEYS))
                            .await,
                    );
                    if i % 500 == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                for ack in acks {
                    ack.await.unwrap().expect("acknowledged across scales");
                }
            })
        };
        let controller = factory.controller_client();
        // Split both segments into four, then merge the four into three, while data flows.
        tokio::time::sleep(Duration::from_millis(100)).await;
        controller
            .scale_stream(
                &stream,
                &[Segment::from(0), Segment::from(1)],
                &[(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)],
            )
            .await
            .expect("split");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let current: Vec<Segment> = controller
            .get_current_segments(&stream)
            .await
            .expect("current segments")
            .get_segments()
            .into_iter()
            .map(|s| s.segment)
            .collect();
        assert_eq!(current.len(), 4);
        controller
            .scale_stream(&stream, &current, &[(0.0, 0.3), (0.3, 0.6), (0.6, 1.0)])
            .await
            .expect("merge");
        writing.await.expect("writer task");
        reading.await.expect("reader task");
        let reads = reads.lock().unwrap().clone();
        let expected = (0..KEYS).map(|k| (k, EVENTS / KEYS)).collect();
        assert_complete_in_order(&reads, &expected);
        let segments = controller.get_current_segments(&stream).await.unwrap();
        assert_eq!(segments.get_segments().len(), 3);
    });
}

#[test]
fn byte_stream_write_seek_read() {
    use std::io::SeekFrom;
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    factory.runtime().block_on(async {
        let stream = create_stream(&factory, "interop", "bytes", 1).await;
        let data: Vec<u8> = (0..3 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut writer = factory.create_byte_writer(stream.clone()).await;
        for chunk in data.chunks(100_000) {
            let mut written = 0;
            while written < chunk.len() {
                written += writer.write(&chunk[written..]).await.expect("write");
            }
        }
        writer.flush().await.expect("flush");
        assert_eq!(writer.current_offset(), data.len() as u64);

        let mut reader = factory.create_byte_reader(stream.clone()).await;
        assert_eq!(reader.current_tail().await.unwrap(), data.len() as u64);
        for start in [0usize, 1, 777_777, 2 * 1024 * 1024 + 5, data.len() - 10] {
            assert_eq!(
                reader.seek(SeekFrom::Start(start as u64)).await.unwrap(),
                start as u64
            );
            let want = &data[start..(start + 200_000).min(data.len())];
            let got = read_exactly(&mut reader, want.len()).await;
            assert!(got == want, "bytes from offset {start}");
        }
        // From the end, and relative to the current position.
        reader.seek(SeekFrom::End(-1000)).await.unwrap();
        assert!(read_exactly(&mut reader, 1000).await == data[data.len() - 1000..]);
        reader.seek(SeekFrom::Start(10)).await.unwrap();
        reader.seek(SeekFrom::Current(90)).await.unwrap();
        assert!(read_exactly(&mut reader, 50).await == data[100..150]);

        // Truncation moves the head; data after it stays readable.
        writer
            .truncate_data_before(1024 * 1024)
            .await
            .expect("truncate");
        assert_eq!(reader.current_head().await.unwrap(), 1024 * 1024);
        reader.seek(SeekFrom::Start(1024 * 1024)).await.unwrap();
        assert!(read_exactly(&mut reader, 4096).await == data[1024 * 1024..1024 * 1024 + 4096]);
    });
}

async fn read_exactly(reader: &mut pravega_client::byte::ByteReader, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut filled = 0;
    let deadline = Instant::now() + DEADLINE;
    while filled < len {
        assert!(Instant::now() < deadline, "read {filled} of {len} bytes");
        filled += reader.read(&mut out[filled..]).await.expect("read");
    }
    out
}

#[test]
fn large_event_over_eight_mib_is_read_whole() {
    // Over Pravega's 8 MiB event limit, so the client writes it through a transient segment and a
    // merge; under the 16 MiB frame limit of this client's codec, its own largest event.
    const LARGE: usize = 12 * 1024 * 1024 + 123;
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    let stream = factory
        .runtime()
        .block_on(create_stream(&factory, "interop", "large", 1));
    let large: Vec<u8> = (0..LARGE).map(|i| (i % 251) as u8).collect();
    factory.runtime().block_on(async {
        let mut writer = factory.create_event_writer(stream.clone());
        let before = writer
            .write_event_by_routing_key("k".into(), b"before".to_vec())
            .await;
        let big = writer
            .write_event_by_routing_key("k".into(), large.clone())
            .await;
        let after = writer
            .write_event_by_routing_key("k".into(), b"after".to_vec())
            .await;
        for ack in [before, big, after] {
            ack.await.unwrap().expect("acknowledged");
        }
    });
    let reads = read_stream(&factory, &stream, "largeReader", 3);
    let events: Vec<&Vec<u8>> = reads.iter().map(|(_, e)| e).collect();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].as_slice(), b"before");
    assert_eq!(events[1].len(), LARGE);
    assert!(*events[1] == large, "the large event's bytes");
    assert_eq!(events[2].as_slice(), b"after");
}

#[test]
fn table_insert_conditional_update_remove_iterate() {
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    factory.runtime().block_on(async {
        let scope = Scope::from("interop".to_string());
        factory
            .controller_client()
            .create_scope(&scope)
            .await
            .unwrap();
        let table = factory.create_table(scope, "settings".to_string()).await;
        let v1 = table
            .insert(&"colour".to_string(), &"red".to_string(), -1)
            .await
            .expect("insert");
        let (value, version): (String, i64) =
            table.get(&"colour".to_string()).await.unwrap().unwrap();
        assert_eq!((value.as_str(), version), ("red", v1));

        // A conditional update with the current version succeeds; with a stale one it fails.
        let v2 = table
            .insert_conditionally(&"colour".to_string(), &"blue".to_string(), v1, -1)
            .await
            .expect("update with the current version");
        assert_ne!(v1, v2);
        let stale = table
            .insert_conditionally(&"colour".to_string(), &"green".to_string(), v1, -1)
            .await;
        assert!(
            matches!(
                stale,
                Err(pravega_client::sync::table::TableError::IncorrectKeyVersion { .. })
            ),
            "stale version rejected: {stale:?}"
        );
        let (value, _): (String, i64) = table.get(&"colour".to_string()).await.unwrap().unwrap();
        assert_eq!(value, "blue");

        for i in 0..30 {
            table
                .insert(&format!("key-{i:02}"), &format!("value-{i}"), -1)
                .await
                .unwrap();
        }
        table
            .remove(&"key-07".to_string(), -1)
            .await
            .expect("remove");
        assert!(table
            .get::<String, String>(&"key-07".to_string())
            .await
            .unwrap()
            .is_none());
        let stale_remove = table
            .remove_conditionally(&"colour".to_string(), v1, -1)
            .await;
        assert!(stale_remove.is_err(), "remove with a stale version fails");

        // Iteration, a few entries per round trip, sees every live entry once.
        let mut entries: HashMap<String, String> = HashMap::new();
        let mut stream = Box::pin(table.read_entries_stream::<String, String>(4));
        while let Some(entry) = stream.next().await {
            let (key, value, _) = entry.expect("entry");
            assert!(entries.insert(key, value).is_none(), "each key once");
        }
        let mut want: HashMap<String, String> = (0..30)
            .filter(|i| *i != 7)
            .map(|i| (format!("key-{i:02}"), format!("value-{i}")))
            .collect();
        want.insert("colour".into(), "blue".into());
        assert_eq!(entries, want);
    });
}

#[test]
fn truncation_then_seal_readers_reach_the_end() {
    let standalone = Standalone::start();
    let factory = client_factory(&standalone);
    let stream = factory
        .runtime()
        .block_on(create_stream(&factory, "interop", "truncated", 1));
    // 100 events on one segment; the offsets come from a first read.
    factory.runtime().block_on(async {
        let mut writer = factory.create_event_writer(stream.clone());
        let mut acks = Vec::new();
        for seq in 0..100 {
            acks.push(
                writer
                    .write_event_by_routing_key("k".into(), payload(0, seq))
                    .await,
            );
        }
        for ack in acks {
            ack.await.unwrap().unwrap();
        }
    });
    let offsets: Vec<i64> = factory.runtime().block_on(async {
        let group = factory
            .create_reader_group("offsets".into(), stream.clone())
            .await;
        let mut reader = group.create_reader("r".into()).await;
        let mut offsets = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        while offsets.len() < 100 {
            assert!(Instant::now() < deadline);
            if let Some(mut slice) = reader.acquire_segment().await.unwrap() {
                for event in &mut slice {
                    assert_eq!(parse_payload(&event.value), (0, offsets.len()));
                    offsets.push(event.offset_in_segment);
                }
                reader.release_segment(slice).await.unwrap();
            }
        }
        reader.reader_offline().await.unwrap();
        offsets
    });
    factory.runtime().block_on(async {
        let cut = StreamCut::new(stream.clone(), HashMap::from([(0i64, offsets[40])]));
        factory
            .controller_client()
            .truncate_stream(&cut)
            .await
            .expect("truncate");
    });
    // A new group reads from the new head: events 40..100 only.
    let reads = read_stream(&factory, &stream, "afterTruncation", 60);
    let seqs: Vec<usize> = reads.iter().map(|(_, e)| parse_payload(e).1).collect();
    assert_eq!(seqs, (40..100).collect::<Vec<_>>());

    // Seal: writes fail, and a reader group drains the stream and completes every segment.
    factory.runtime().block_on(async {
        let group = factory
            .create_reader_group("toTheEnd".into(), stream.clone())
            .await;
        let mut reader = group.create_reader("r".into()).await;
        assert!(factory
            .controller_client()
            .seal_stream(&stream)
            .await
            .expect("seal"));
        let mut writer = factory.create_event_writer(stream.clone());
        let refused = writer
            .write_event_by_routing_key("k".into(), b"late".to_vec())
            .await;
        let refused = tokio::time::timeout(DEADLINE, refused)
            .await
            .expect("an answer");
        assert!(
            !matches!(refused, Ok(Ok(()))),
            "a write to a sealed stream is refused"
        );
        let mut read = 0;
        let deadline = Instant::now() + DEADLINE;
        while read < 60 {
            assert!(Instant::now() < deadline, "read {read} of 60 events");
            if let Some(mut slice) = reader.acquire_segment().await.unwrap() {
                read += (&mut slice).count();
                reader.release_segment(slice).await.unwrap();
            }
        }
        // Reaching the end of a sealed segment with no successors completes it in the group's
        // state. The official client's `get_streamcut` panics once the group has no segment
        // left, so a panic here is the sign that the readers reached the end of the stream.
        let deadline = Instant::now() + DEADLINE;
        let group = Arc::new(group);
        loop {
            assert!(Instant::now() < deadline, "the group never reached the end");
            assert!(
                reader.acquire_segment().await.unwrap().is_none(),
                "no events after the end"
            );
            let probe = group.clone();
            let cut = tokio::spawn(async move { probe.get_streamcut().await }).await;
            match cut {
                Err(e) if e.is_panic() => break,
                Err(e) => panic!("{e}"),
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
}

#[test]
fn delegation_tokens_when_auth_is_on() {
    use bytes::BytesMut;
    use std::io::{Read, Write};

    // The controller checks the official client's Basic credentials against a password file in
    // Pravega's format.
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let digest = pravaha_controller::auth::hash_password("1111_aaaa");
    std::fs::write(&passwd, format!("admin:{digest}:prn::*,READ_UPDATE\n")).unwrap();
    let config_file = dir.path().join("pravaha.toml");
    std::fs::write(
        &config_file,
        format!(
            "[controller]\npassword_file = {:?}\n",
            passwd.to_str().unwrap()
        ),
    )
    .unwrap();
    let standalone = Standalone::start_with_args(&[
        "--token-signing-key",
        "interop-secret",
        "--config",
        config_file.to_str().unwrap(),
    ]);
    // With auth enabled the official client asks the controller for a delegation token per
    // stream and presents it to the segment store, and sends its credentials with every
    // controller call; the controller signs a token of its own for its metadata and workflows.
    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .is_auth_enabled(true)
        .credentials(Credentials::basic("admin".into(), "1111_aaaa".into()))
        .build()
        .expect("client configuration");
    let factory = ClientFactory::new(config);
    let stream = factory
        .runtime()
        .block_on(create_stream(&factory, "secured", "events", 2));
    factory.runtime().block_on(async {
        let mut writer = factory.create_event_writer(stream.clone());
        let mut acks = Vec::new();
        for seq in 0..100 {
            acks.push(
                writer
                    .write_event_by_routing_key(format!("k{}", seq % 2), payload(seq % 2, seq / 2))
                    .await,
            );
        }
        for ack in acks {
            match ack.await {
                Ok(Ok(())) => {}
                other => panic!(
                    "not acknowledged: {other:?}; server log:\n{}",
                    standalone.log()
                ),
            }
        }
    });
    let reads = read_stream(&factory, &stream, "securedReader", 100);
    assert_complete_in_order(&reads, &BTreeMap::from([(0, 50), (1, 50)]));

    // Without credentials the controller refuses: the password file is in force.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_pravaha"))
        .args([
            "scope",
            "list",
            "--controller",
            standalone.controller_uri().as_str(),
        ])
        .env_remove("PRAVAHA_USERNAME")
        .env_remove("PRAVAHA_PASSWORD")
        .env_remove("PRAVAHA_CLIENT_CONFIG")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("authentication required"), "{stderr}");

    // Without a token, the segment store refuses: the test above did not pass by auth being off.
    let mut socket = std::net::TcpStream::connect(standalone.listeners.segment_store).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut out = BytesMut::new();
    pravaha_wire::Request::Hello(pravaha_wire::Hello {
        high_version: pravaha_wire::WIRE_VERSION,
        low_version: pravaha_wire::OLDEST_COMPATIBLE_VERSION,
    })
    .encode(&mut out)
    .unwrap();
    pravaha_wire::Request::ReadSegment(pravaha_wire::ReadSegment {
        segment: "secured/events/0.#epoch.0".into(),
        offset: 0,
        suggested_length: 100,
        delegation_token: String::new(),
        request_id: 5,
    })
    .encode(&mut out)
    .unwrap();
    socket.write_all(&out).unwrap();
    let mut input = BytesMut::new();
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).expect("a reply");
        assert!(n > 0, "connection closed after {replies:?}");
        input.extend_from_slice(&chunk[..n]);
        while let Some((code, payload)) =
            pravaha_wire::split_frame(&mut input, pravaha_wire::MAX_FRAME_PAYLOAD).unwrap()
        {
            replies.push(pravaha_wire::Reply::decode(code, payload).unwrap());
        }
    }
    assert!(
        matches!(&replies[1], pravaha_wire::Reply::AuthTokenCheckFailed(r) if r.request_id == 5),
        "a read without a token is refused: {:?}",
        replies[1]
    );
}

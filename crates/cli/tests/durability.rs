//! Data survives restarts of `pravaha standalone`: a clean stop (SIGTERM) and a SIGKILL in the
//! middle of writing, checked through Pravega's official Rust client.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::official::{
    client_factory, create_stream, parse_payload, payload, read_stream, scoped, write_keyed,
    DEADLINE,
};
use common::Standalone;
use pravega_client::client_factory::ClientFactory;
use pravega_client_shared::{Scope, ScopedStream};

/// Every event of `stream`, per key in the order read (see [`read_stream`]).
fn read_per_key(
    factory: &ClientFactory,
    stream: &ScopedStream,
    group: &str,
    at_least: usize,
) -> BTreeMap<usize, Vec<usize>> {
    let mut per_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (_, event) in read_stream(factory, stream, group, at_least) {
        let (key, seq) = parse_payload(&event);
        per_key.entry(key).or_default().push(seq);
    }
    per_key
}

#[test]
fn stop_and_start_keeps_everything() {
    const KEYS: usize = 4;
    const EVENTS: usize = 2_000;
    let mut standalone = Standalone::start();
    let events = scoped("durable", "events");
    let bytes = scoped("durable", "bytes");
    let blob: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    {
        let factory = client_factory(&standalone);
        factory.runtime().block_on(async {
            create_stream(&factory, "durable", "events", 3).await;
            create_stream(&factory, "durable", "bytes", 1).await;
            let mut writer = factory.create_event_writer(events.clone());
            for ack in write_keyed(&mut writer, 0..EVENTS, KEYS).await {
                ack.await.unwrap().expect("acknowledged");
            }
            let mut byte_writer = factory.create_byte_writer(bytes.clone()).await;
            let mut written = 0;
            while written < blob.len() {
                written += byte_writer.write(&blob[written..]).await.expect("write");
            }
            byte_writer.flush().await.expect("flush");
            let table = factory
                .create_table(Scope::from("durable".to_string()), "kv".to_string())
                .await;
            for i in 0..50 {
                table
                    .insert(&format!("key{i}"), &format!("value{i}"), -1)
                    .await
                    .expect("table insert");
            }
        });
    }
    // Ctrl-C (SIGINT) stops it as cleanly as SIGTERM: everything acknowledged is durable.
    let status = standalone.stop_with("-INT");
    assert!(
        status.success(),
        "a clean stop exits 0: {status}\n{}",
        standalone.log()
    );
    standalone.restart();

    let factory = client_factory(&standalone);
    let per_key = read_per_key(&factory, &events, "afterStop", EVENTS);
    for key in 0..KEYS {
        assert_eq!(
            per_key.get(&key).cloned().unwrap_or_default(),
            (0..EVENTS / KEYS).collect::<Vec<_>>(),
            "key {key}"
        );
    }
    factory.runtime().block_on(async {
        let segments = factory
            .controller_client()
            .get_current_segments(&events)
            .await
            .expect("stream metadata after restart");
        assert_eq!(segments.get_segments().len(), 3);

        let mut reader = factory.create_byte_reader(bytes.clone()).await;
        let mut back = vec![0u8; blob.len()];
        let mut filled = 0;
        while filled < back.len() {
            filled += reader.read(&mut back[filled..]).await.expect("read");
        }
        assert!(back == blob, "byte stream content after restart");

        let table = factory
            .create_table(Scope::from("durable".to_string()), "kv".to_string())
            .await;
        for i in 0..50 {
            let value: Option<(String, i64)> = table.get(&format!("key{i}")).await.unwrap();
            assert_eq!(value.map(|(v, _)| v), Some(format!("value{i}")));
        }
    });
}

/// Per key, how many events were acknowledged (acknowledgements of one key arrive in order).
type Acked = Arc<Mutex<BTreeMap<usize, usize>>>;

#[test]
fn sigkill_while_writing_keeps_every_acknowledged_event() {
    const KEYS_PER_ROUND: usize = 8;
    let mut standalone = Standalone::start();
    let stream = scoped("durable", "killed");
    {
        let factory = client_factory(&standalone);
        factory
            .runtime()
            .block_on(create_stream(&factory, "durable", "killed", 4));
    }
    // Each round writes to its own keys without waiting for acknowledgements and is killed once
    // `kill_after` events are acknowledged, with many more in flight.
    let mut acked_all: BTreeMap<usize, usize> = BTreeMap::new();
    for (round, kill_after) in [700usize, 2_300, 1_500].into_iter().enumerate() {
        let factory = client_factory(&standalone);
        let acked: Acked = Arc::default();
        let first_key = round * KEYS_PER_ROUND;
        {
            let acked = acked.clone();
            let mut writer = factory.create_event_writer(stream.clone());
            factory.runtime_handle().spawn(async move {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(async move {
                    while let Some((key, ack)) = rx.recv().await {
                        let ack: tokio::sync::oneshot::Receiver<Result<(), _>> = ack;
                        match ack.await {
                            Ok(Ok(())) => *acked.lock().unwrap().entry(key).or_insert(0) += 1,
                            _ => break,
                        }
                    }
                });
                for i in 0.. {
                    let key = first_key + i % KEYS_PER_ROUND;
                    let ack = writer
                        .write_event_by_routing_key(
                            format!("k{key}"),
                            payload(key, i / KEYS_PER_ROUND),
                        )
                        .await;
                    if tx.send((key, ack)).is_err() {
                        break;
                    }
                    if i % 64 == 63 {
                        tokio::task::yield_now().await;
                    }
                }
            });
        }
        let deadline = Instant::now() + DEADLINE;
        while acked.lock().unwrap().values().sum::<usize>() < kill_after {
            assert!(
                Instant::now() < deadline,
                "round {round}: acknowledgements stalled"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        standalone.kill();
        // The client goes away with the server: nothing it still holds may reach the next
        // server and blur what was acknowledged before the kill.
        drop(factory);
        let acked = acked.lock().unwrap().clone();
        let in_round: usize = acked.values().sum();
        assert!(in_round >= kill_after);
        acked_all.extend(acked);
        standalone.restart();

        let factory = client_factory(&standalone);
        let total_acked: usize = acked_all.values().sum();
        let per_key = read_per_key(&factory, &stream, &format!("check{round}"), total_acked);
        for (key, count) in &acked_all {
            let seqs = per_key.get(key).cloned().unwrap_or_default();
            // Every acknowledged event, in order, and after them only a contiguous run of
            // events written but not yet acknowledged when the server died: no gaps, no
            // duplicates, no partial events (a partial event would not parse).
            assert!(
                seqs.len() >= *count,
                "round {round}, key {key}: {} events found, {count} acknowledged",
                seqs.len()
            );
            assert_eq!(
                seqs,
                (0..seqs.len()).collect::<Vec<_>>(),
                "round {round}, key {key}"
            );
        }
        for key in per_key.keys() {
            assert!(key / KEYS_PER_ROUND <= round, "a key from no round: {key}");
        }
        eprintln!(
            "round {round}: killed after {in_round} acknowledged events; found {} in all",
            per_key.values().map(Vec::len).sum::<usize>()
        );
    }
}

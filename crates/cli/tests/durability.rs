//! Data survives restarts of `pravaha standalone`: a clean stop (SIGTERM) and a SIGKILL in the
//! middle of writing, checked through Pravega's official Rust client.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Standalone;
use pravega_client::client_factory::ClientFactory;
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{
    Retention, ScaleType, Scaling, Scope, ScopedStream, Stream, StreamConfiguration,
};

const DEADLINE: Duration = Duration::from_secs(120);

fn client(standalone: &Standalone) -> ClientFactory {
    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("client configuration");
    ClientFactory::new(config)
}

fn scoped(scope: &str, stream: &str) -> ScopedStream {
    ScopedStream {
        scope: Scope::from(scope.to_string()),
        stream: Stream::from(stream.to_string()),
    }
}

async fn create_stream(factory: &ClientFactory, stream: &ScopedStream, segments: i32) {
    let controller = factory.controller_client();
    controller.create_scope(&stream.scope).await.expect("scope");
    controller
        .create_stream(&StreamConfiguration {
            scoped_stream: stream.clone(),
            scaling: Scaling {
                scale_type: ScaleType::FixedNumSegments,
                target_rate: 0,
                scale_factor: 0,
                min_num_segments: segments,
            },
            retention: Retention::default(),
            tags: None,
        })
        .await
        .expect("stream");
}

fn payload(key: usize, seq: usize) -> Vec<u8> {
    format!("{key}:{seq}").into_bytes()
}

fn parse(bytes: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(bytes).unwrap();
    let (key, seq) = text.split_once(':').unwrap();
    (key.parse().unwrap(), seq.parse().unwrap())
}

/// Every event of `stream`, per key in the order read, through a new one-reader group. Stops
/// after `at_least` events once nothing more arrives for a second.
fn read_per_key(
    factory: &ClientFactory,
    stream: &ScopedStream,
    group: &str,
    at_least: usize,
) -> BTreeMap<usize, Vec<usize>> {
    factory.runtime().block_on(async {
        let group = factory
            .create_reader_group(group.to_string(), stream.clone())
            .await;
        let mut reader = group.create_reader("reader".to_string()).await;
        let mut per_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        let mut read = 0;
        let deadline = Instant::now() + DEADLINE;
        let mut quiet_since: Option<Instant> = None;
        loop {
            assert!(
                Instant::now() < deadline,
                "read {read} of {at_least} events"
            );
            match reader.acquire_segment().await.expect("acquire") {
                Some(mut slice) => {
                    for event in &mut slice {
                        let (key, seq) = parse(&event.value);
                        per_key.entry(key).or_default().push(seq);
                        read += 1;
                    }
                    reader.release_segment(slice).await.expect("release");
                    quiet_since = None;
                }
                None if read >= at_least
                    && quiet_since.get_or_insert_with(Instant::now).elapsed()
                        > Duration::from_secs(1) =>
                {
                    break;
                }
                None => {}
            }
        }
        reader.reader_offline().await.expect("offline");
        per_key
    })
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
        let factory = client(&standalone);
        factory.runtime().block_on(async {
            create_stream(&factory, &events, 3).await;
            create_stream(&factory, &bytes, 1).await;
            let mut writer = factory.create_event_writer(events.clone());
            let mut acks = Vec::new();
            for i in 0..EVENTS {
                acks.push(
                    writer
                        .write_event_by_routing_key(
                            format!("k{}", i % KEYS),
                            payload(i % KEYS, i / KEYS),
                        )
                        .await,
                );
            }
            for ack in acks {
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

    let factory = client(&standalone);
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
        let factory = client(&standalone);
        factory
            .runtime()
            .block_on(create_stream(&factory, &stream, 4));
    }
    // Each round writes to its own keys without waiting for acknowledgements and is killed once
    // `kill_after` events are acknowledged, with many more in flight.
    let mut acked_all: BTreeMap<usize, usize> = BTreeMap::new();
    for (round, kill_after) in [700usize, 2_300, 1_500].into_iter().enumerate() {
        let factory = client(&standalone);
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

        let factory = client(&standalone);
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

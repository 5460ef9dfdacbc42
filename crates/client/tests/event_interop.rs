//! Interoperability: events written by this client's `EventWriter` are read, complete and in
//! per-key order, by a reader group of Pravega's official Rust client (`pravega-client` 0.3.7).
//!
//! The official `ClientFactory` owns its own runtime, so the test is a plain `#[test]`: the
//! in-process standalone and our writer run on a runtime created here, the official reader on
//! its factory's runtime.

mod common;
mod events_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pravega_client::client_factory::ClientFactory as OfficialFactory;
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{Scope, ScopedStream as OfficialStream, Stream};

use common::Standalone;
use events_common::{key, keyed_payload, parse_payload, stream_with};

const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn events_written_here_are_read_by_the_official_reader_group() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let (keys, per_key) = (8, 250);
    let (standalone, _factory, stream): (Standalone, _, _) = runtime.block_on(async {
        let (standalone, factory, stream) = stream_with(3, "interop").await;
        let writer = factory.create_event_writer(stream.clone()).await.unwrap();
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
            }
        }
        for ack in acks {
            ack.await.unwrap();
        }
        writer.close().await.unwrap();
        (standalone, factory, stream)
    });

    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("official client configuration");
    let official = OfficialFactory::new(config);
    let scoped = OfficialStream {
        scope: Scope::from(stream.scope.clone()),
        stream: Stream::from(stream.stream.clone()),
    };
    let events = read_all(&official, scoped, keys * per_key);

    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for event in &events {
        let (key, sequence) = parse_payload(event);
        by_key.entry(key).or_default().push(sequence);
    }
    assert_eq!(by_key.len(), keys);
    for (key, sequences) in by_key {
        assert_eq!(sequences, (0..per_key).collect::<Vec<_>>(), "key {key}");
    }
    drop(official);
    drop(standalone);
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// Reads `count` events from the stream's head with a new one-reader group, then checks that
/// no more arrive for a second.
fn read_all(factory: &OfficialFactory, stream: OfficialStream, count: usize) -> Vec<Vec<u8>> {
    factory.runtime().block_on(async {
        let group = factory
            .create_reader_group("interop-group".to_string(), stream)
            .await;
        let mut reader = group.create_reader("only".to_string()).await;
        let mut events = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        let mut quiet_since: Option<Instant> = None;
        loop {
            assert!(
                Instant::now() < deadline,
                "read {} of {count} events before the deadline",
                events.len()
            );
            match reader.acquire_segment().await.expect("acquire a segment") {
                Some(mut slice) => {
                    for event in &mut slice {
                        events.push(event.value);
                    }
                    reader.release_segment(slice).await.expect("release");
                    quiet_since = None;
                }
                None if events.len() >= count => {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(1) {
                        break;
                    }
                }
                None => {}
            }
        }
        reader.reader_offline().await.expect("offline");
        assert_eq!(events.len(), count, "every event once");
        events
    })
}

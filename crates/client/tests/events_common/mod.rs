//! Helpers for the event-writer and transaction tests: a standalone with a stream, keyed
//! payloads, and reading every segment of a stream back in epoch order.
#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use pravaha_client::config::{ClientConfig, RetryPolicy};
use pravaha_client::controller::types::{ScopedSegment, ScopedStream, StreamConfiguration};
use pravaha_client::event::ClientFactory;
use pravaha_client::segment::{self, ByteBudget, WriterConfig};
use pravaha_client::ControllerClient;

use crate::common::segments::read_events;
use crate::common::{Standalone, TIMEOUT};

pub async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT * 4, future)
        .await
        .expect("bounded wait")
}

pub fn config(uri: &str) -> ClientConfig {
    ClientConfig::builder()
        .controller_uri(uri)
        .retry_policy(RetryPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
            multiplier: 2.0,
            max_attempts: 20,
        })
        .request_timeout(Duration::from_secs(10))
        .build()
        .expect("a valid configuration")
}

/// Session settings that ride out a segment server restart, with `budget` bytes in flight.
pub fn writer_config(budget: usize) -> WriterConfig {
    WriterConfig {
        budget: ByteBudget::new(budget),
        retry: segment::RetryPolicy {
            max_attempts: 60,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(250),
            multiplier: 2.0,
        },
        ..WriterConfig::default()
    }
}

/// A standalone, a factory for it, and a new stream of `segments` fixed segments.
pub async fn stream_with(segments: u32, name: &str) -> (Standalone, ClientFactory, ScopedStream) {
    stream_on(Standalone::start().await, segments, name).await
}

/// Like [`stream_with`], on `standalone`.
pub async fn stream_on(
    standalone: Standalone,
    segments: u32,
    name: &str,
) -> (Standalone, ClientFactory, ScopedStream) {
    let factory = ClientFactory::new(config(&standalone.controller_uri())).expect("a factory");
    let stream = ScopedStream::new("events", name);
    let controller = factory.controller();
    controller.create_scope(&stream.scope).await.expect("scope");
    controller
        .create_stream(&stream, &StreamConfiguration::fixed(segments))
        .await
        .expect("stream");
    (standalone, factory, stream)
}

pub fn key(index: usize) -> String {
    format!("key-{index:02}")
}

/// `<key>/<sequence>/` and some padding, so events differ in size.
pub fn keyed_payload(key: &str, sequence: usize) -> Bytes {
    let mut text = format!("{key}/{sequence:06}/");
    text.push_str(&"p".repeat(sequence % 37));
    Bytes::from(text)
}

pub fn parse_payload(payload: &[u8]) -> (String, usize) {
    let text = std::str::from_utf8(payload).expect("utf-8 payload");
    let mut parts = text.split('/');
    let key = parts.next().expect("key").to_owned();
    let sequence = parts.next().expect("sequence").parse().expect("number");
    (key, sequence)
}

/// Every segment the stream ever had, oldest epoch first, with its events.
pub async fn read_stream(
    standalone: &Standalone,
    factory: &ClientFactory,
    stream: &ScopedStream,
) -> Vec<(ScopedSegment, Vec<Bytes>)> {
    let controller = factory.controller();
    let mut segments: BTreeMap<ScopedSegment, ()> = BTreeMap::new();
    for epoch in 0..1000 {
        match controller.get_epoch_segments(stream, epoch).await {
            Ok(found) if !found.segments.is_empty() => {
                for segment in found.segments {
                    segments.insert(segment.segment, ());
                }
            }
            _ => break,
        }
    }
    let mut ordered: Vec<ScopedSegment> = segments.into_keys().collect();
    // Creation epoch first (the high bits of the id), as successors follow their predecessors.
    ordered.sort_by_key(|segment| (segment.id.epoch(), segment.id.number()));
    let mut out = Vec::new();
    for segment in ordered {
        let events = read_events(
            standalone.segment_store_addr(),
            &segment.qualified_name(),
            0,
        )
        .await;
        out.push((segment, events));
    }
    out
}

/// Checks that every key's sequence is exactly `0..per_key` in order (nothing lost, duplicated
/// or reordered), reading the segments in the order given.
pub fn assert_per_key_order(segments: &[(ScopedSegment, Vec<Bytes>)], keys: usize, per_key: usize) {
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (_, events) in segments {
        for event in events {
            let (key, sequence) = parse_payload(event);
            seen.entry(key).or_default().push(sequence);
        }
    }
    assert_eq!(
        seen.len(),
        keys,
        "keys seen: {:?}",
        seen.keys().collect::<Vec<_>>()
    );
    for (key, sequences) in &seen {
        let expected: Vec<usize> = (0..per_key).collect();
        if sequences != &expected {
            let first_bad = sequences
                .iter()
                .enumerate()
                .find(|(index, sequence)| *index != **sequence)
                .map(|(index, sequence)| (index, *sequence));
            panic!(
                "key {key}: {} events, expected {per_key}; first out of place (index, sequence): {first_bad:?}",
                sequences.len()
            );
        }
    }
}

/// Stream `mixed/events` of `segments` segments on `standalone`, and the official client's
/// reader group `shared` on it with its reader `theirs` (the official client's own runtime is
/// in the factory returned).
pub fn official_shared_group(
    runtime: &tokio::runtime::Runtime,
    standalone: &Standalone,
    segments: u32,
) -> (
    ControllerClient,
    pravega_client::client_factory::ClientFactory,
    pravega_client::event::reader::EventReader,
) {
    let controller = runtime.block_on(async {
        ControllerClient::new(config(&standalone.controller_uri())).expect("controller client")
    });
    let stream = ScopedStream::new("mixed", "events");
    runtime.block_on(async {
        bounded(controller.create_scope(&stream.scope))
            .await
            .unwrap();
        bounded(controller.create_stream(&stream, &StreamConfiguration::fixed(segments)))
            .await
            .unwrap();
    });
    let official = pravega_client::client_factory::ClientFactory::new(
        pravega_client_config::ClientConfigBuilder::default()
            .controller_uri(standalone.controller_uri().as_str())
            .build()
            .expect("official client configuration"),
    );
    let group = official.runtime().block_on(official.create_reader_group(
        "shared".to_string(),
        pravega_client_shared::ScopedStream {
            scope: pravega_client_shared::Scope::from("mixed".to_string()),
            stream: pravega_client_shared::Stream::from("events".to_string()),
        },
    ));
    let theirs = official
        .runtime()
        .block_on(group.create_reader("theirs".to_string()));
    (controller, official, theirs)
}

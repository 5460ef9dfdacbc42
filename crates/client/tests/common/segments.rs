//! Helpers shared by the segment-layer tests: segments created, sealed and read over the wire,
//! payloads, locators and bounded waits.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use pravaha_client::segment::{
    next_request_id, AppendFuture, Connection, ConnectionConfig, EventParser, Locator,
    ReaderConfig, RetryPolicy, SegmentReader, SegmentWriter, StaticLocator, WriterConfig,
};
use pravaha_wire::{self as wire, Reply, Request};

use super::TIMEOUT;

pub async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("bounded wait")
}

pub fn payload(index: usize) -> Bytes {
    let mut text = format!("event-{index:08}-");
    text.push_str(&"x".repeat(index % 97));
    Bytes::from(text)
}

pub fn locator(address: SocketAddr) -> Arc<dyn Locator> {
    Arc::new(StaticLocator::new(address))
}

pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 40,
        initial_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(250),
        multiplier: 2.0,
    }
}

/// Administration over the wire, as a client does it.
pub async fn admin(address: SocketAddr, request: Request) -> Reply {
    let mut connection = Connection::connect(&address.into(), &ConnectionConfig::default())
        .await
        .expect("admin connection");
    bounded(connection.exchange(&request))
        .await
        .expect("admin exchange")
}

pub async fn create_segment(address: SocketAddr, segment: &str) {
    let reply = admin(
        address,
        Request::CreateSegment(wire::CreateSegment {
            request_id: next_request_id(),
            segment: segment.into(),
            target_rate: 0,
            scale_type: 0,
            delegation_token: String::new(),
            rollover_size_bytes: None,
        }),
    )
    .await;
    assert!(matches!(reply, Reply::SegmentCreated(_)), "{reply:?}");
}

pub async fn seal_segment(address: SocketAddr, segment: &str) {
    let reply = admin(
        address,
        Request::SealSegment(wire::SealSegment {
            request_id: next_request_id(),
            segment: segment.into(),
            delegation_token: String::new(),
        }),
    )
    .await;
    assert!(matches!(reply, Reply::SegmentSealed(_)), "{reply:?}");
}

/// Every event of the segment from `from` to its current length.
pub async fn read_events(address: SocketAddr, segment: &str, from: i64) -> Vec<Bytes> {
    let mut reader = SegmentReader::new(locator(address), segment, ReaderConfig::default());
    let length = bounded(reader.segment_info()).await.unwrap().length;
    let mut parser = EventParser::new(from);
    let mut events = Vec::new();
    while parser.next_offset() < length {
        let read = bounded(reader.read(parser.next_offset(), 1 << 20))
            .await
            .unwrap();
        parser.push_read(&read).unwrap();
        while let Some(event) = parser.next_event().unwrap() {
            events.push(event.payload);
        }
    }
    assert_eq!(parser.buffered(), 0, "no partial event at the end");
    events
}

/// Compares event lists without printing thousands of payloads: on a mismatch it names the
/// runs of event indexes that were read.
pub fn assert_events(got: &[Bytes], expected: &[Bytes]) {
    if got == expected {
        return;
    }
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for event in got {
        let index = std::str::from_utf8(&event[6..14])
            .ok()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(u64::MAX);
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(index) => *end = index,
            _ => runs.push((index, index)),
        }
    }
    panic!(
        "{} events read, {} expected; runs of indexes read: {runs:?}",
        got.len(),
        expected.len()
    );
}

pub async fn await_all(futures: Vec<AppendFuture>) {
    for (index, future) in futures.into_iter().enumerate() {
        bounded(future)
            .await
            .unwrap_or_else(|error| panic!("event {index}: {error}"));
    }
}

/// Creates `segment` and opens an append session on it with the default settings.
pub async fn new_segment_writer(address: SocketAddr, segment: &str) -> SegmentWriter {
    create_segment(address, segment).await;
    bounded(SegmentWriter::connect(
        locator(address),
        segment,
        WriterConfig::default(),
    ))
    .await
    .expect("an append session")
}

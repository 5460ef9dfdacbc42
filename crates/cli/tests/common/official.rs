//! Helpers for driving Pravega's official Rust client (`pravega-client`) against a standalone.

use std::ops::Range;
use std::time::{Duration, Instant};

use pravega_client::client_factory::ClientFactory;
use pravega_client::event::writer::EventWriter;
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{
    Retention, ScaleType, Scaling, Scope, ScopedStream, Stream, StreamConfiguration,
};

use super::Standalone;

/// Bound on every wait in these tests, so that a hang fails instead of blocking CI.
pub const DEADLINE: Duration = Duration::from_secs(120);

pub fn client_factory(standalone: &Standalone) -> ClientFactory {
    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("client configuration");
    ClientFactory::new(config)
}

pub async fn create_stream(
    factory: &ClientFactory,
    scope: &str,
    stream: &str,
    segments: i32,
) -> ScopedStream {
    let scoped = scoped(scope, stream);
    let controller = factory.controller_client();
    controller
        .create_scope(&scoped.scope)
        .await
        .expect("create scope");
    let created = controller
        .create_stream(&StreamConfiguration {
            scoped_stream: scoped.clone(),
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
        .expect("create stream");
    assert!(created, "the stream {scoped} is new");
    scoped
}

pub fn scoped(scope: &str, stream: &str) -> ScopedStream {
    ScopedStream {
        scope: Scope::from(scope.to_string()),
        stream: Stream::from(stream.to_string()),
    }
}

/// An event payload naming its routing key and its number among that key's events.
pub fn payload(key: usize, seq: usize) -> Vec<u8> {
    format!("key-{key:02}:{seq:06}").into_bytes()
}

pub fn parse_payload(bytes: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(bytes).expect("utf-8 payload");
    let (key, seq) = text
        .strip_prefix("key-")
        .and_then(|rest| rest.split_once(':'))
        .unwrap_or_else(|| panic!("unexpected payload {text:?}"));
    (key.parse().unwrap(), seq.parse().unwrap())
}

/// Reads `count` events of `stream` from its head with a new one-reader group, then checks that
/// no more arrive for a second.
pub fn read_stream(
    factory: &ClientFactory,
    stream: &ScopedStream,
    group: &str,
    count: usize,
) -> Vec<(u64, Vec<u8>)> {
    factory.runtime().block_on(async {
        let group = factory
            .create_reader_group(group.to_string(), stream.clone())
            .await;
        let mut reader = group.create_reader("only".to_string()).await;
        let mut reads = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        let mut quiet_since: Option<Instant> = None;
        loop {
            assert!(
                Instant::now() < deadline,
                "read {} of {count} events before the deadline",
                reads.len()
            );
            match reader.acquire_segment().await.expect("acquire a segment") {
                Some(mut slice) => {
                    for event in &mut slice {
                        reads.push((reads.len() as u64, event.value));
                    }
                    reader.release_segment(slice).await.expect("release");
                    quiet_since = None;
                }
                None if reads.len() >= count => {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(1) {
                        break;
                    }
                }
                None => {}
            }
        }
        reader.reader_offline().await.expect("offline");
        reads
    })
}

/// Writes events `range` with `keys` routing keys (event `i` has key `i % keys` and is that key's
/// event `i / keys`) and returns their acknowledgements.
pub async fn write_keyed(
    writer: &mut EventWriter,
    range: Range<usize>,
    keys: usize,
) -> Vec<tokio::sync::oneshot::Receiver<Result<(), pravega_client::error::Error>>> {
    let mut acks = Vec::with_capacity(range.len());
    for i in range {
        let (key, seq) = (i % keys, i / keys);
        acks.push(
            writer
                .write_event_by_routing_key(format!("routing-{key}"), payload(key, seq))
                .await,
        );
    }
    acks
}

//! Reader groups against an in-process standalone: the synchronizer's table shared with the
//! official Rust client (`pravega-client` 0.3.7) both ways, reader groups of our readers, and a
//! group shared by an official reader and one of ours.
//!
//! The official `ClientFactory` owns its own Tokio runtime, so these are plain `#[test]`s: the
//! standalone and our client run on a runtime of their own.

// The official client's update closures return its (large) error type.
#![allow(clippy::result_large_err)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Standalone;
use pravaha_client::controller::types::{KeyRange, ScopedStream};
use pravaha_client::group::{ReaderGroup, ReaderGroupConfig, ReaderSettings};
use pravaha_client::sync::Synchronizer;
use pravaha_client::{ClientConfig, ControllerClient, EventReader};
use pravega_client::client_factory::ClientFactory;
use pravega_client::sync::synchronizer::{deserialize_from, SynchronizerError, Update};
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::{Retention, ScaleType, Scaling, Scope, Stream, StreamConfiguration};
use tokio::runtime::Runtime;

/// Bound on every wait for events.
const DEADLINE: Duration = Duration::from_secs(90);

/// The standalone on its own runtime (kept alive as long as the standalone).
fn standalone() -> (Runtime, Standalone) {
    let runtime = Runtime::new().expect("a runtime for the standalone");
    let standalone = runtime.block_on(Standalone::start());
    (runtime, standalone)
}

fn official_factory(standalone: &Standalone) -> ClientFactory {
    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("official client configuration");
    ClientFactory::new(config)
}

fn controller(standalone: &Standalone) -> ControllerClient {
    let config = ClientConfig::builder()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("client configuration");
    ControllerClient::new(config).expect("controller client")
}

#[test]
fn synchronizer_reads_what_the_official_client_wrote() {
    let (runtime, standalone) = standalone();
    let factory = official_factory(&standalone);
    factory.runtime().block_on(async {
        let mut official = factory
            .create_synchronizer(Scope::from("sync".to_string()), "shared".to_string())
            .await;
        official
            .insert(|table: &mut Update| {
                table.insert(
                    "settings".into(),
                    "colour".into(),
                    "String".into(),
                    Box::new("green".to_string()),
                );
                table.insert("counters".into(), "a".into(), "u64".into(), Box::new(7u64));
                table.insert("counters".into(), "b".into(), "u64".into(), Box::new(8u64));
                Ok::<(), SynchronizerError>(())
            })
            .await
            .expect("official insert");
        official
            .insert(|table: &mut Update| table.insert_tombstone("counters".into(), "b".into()))
            .await
            .expect("official removal");
    });

    runtime.block_on(async {
        let controller = controller(&standalone);
        let sync = Synchronizer::open(&controller, "sync", "shared")
            .await
            .unwrap();
        let colour: String = sync.get("settings", "colour").unwrap().decode().unwrap();
        assert_eq!(colour, "green");
        assert_eq!(sync.get("settings", "colour").unwrap().type_id, "String");
        let counters = sync.inner_map("counters");
        assert_eq!(counters.len(), 1, "{counters:?}");
        assert_eq!(counters["a"].decode::<u64>().unwrap(), 7);
        assert!(sync.get("counters", "b").is_none());
    });
}

#[test]
fn the_official_client_reads_what_the_synchronizer_wrote() {
    let (runtime, standalone) = standalone();
    runtime.block_on(async {
        let controller = controller(&standalone);
        let mut sync = Synchronizer::open(&controller, "sync", "ours")
            .await
            .unwrap();
        sync.update(|table| {
            table.insert("settings", "colour", "String", &"blue")?;
            table.insert("counters", "a", "u64", &1u64)?;
            table.insert("counters", "b", "u64", &2u64)
        })
        .await
        .unwrap();
        sync.update(|table| table.insert_tombstone("counters", "a"))
            .await
            .unwrap();
        // A second client of ours conflicts on the outer key and retries.
        let mut other = Synchronizer::open(&controller, "sync", "ours")
            .await
            .unwrap();
        sync.update(|table| table.insert("counters", "c", "u64", &3u64))
            .await
            .unwrap();
        other
            .update(|table| {
                let b: u64 = table.get_as("counters", "b")?.unwrap_or(0);
                table.insert("counters", "b", "u64", &(b + 40))
            })
            .await
            .unwrap();
    });

    let factory = official_factory(&standalone);
    factory.runtime().block_on(async {
        let mut official = factory
            .create_synchronizer(Scope::from("sync".to_string()), "ours".to_string())
            .await;
        official.fetch_updates().await.expect("official fetch");
        let colour: String =
            deserialize_from(&official.get("settings", "colour").unwrap().data).unwrap();
        assert_eq!(colour, "blue");
        let counters: HashMap<String, u64> = official
            .get_inner_map("counters")
            .into_iter()
            .map(|(key, value)| (key, deserialize_from(&value.data).unwrap()))
            .collect();
        assert_eq!(
            counters,
            HashMap::from([("b".to_string(), 42), ("c".to_string(), 3)])
        );
        // And the official client can update what we wrote (our versions are its versions).
        official
            .insert(|table: &mut Update| {
                table.insert("counters".into(), "d".into(), "u64".into(), Box::new(4u64));
                Ok::<(), SynchronizerError>(())
            })
            .await
            .expect("official update of our table");
    });
    runtime.block_on(async {
        let controller = controller(&standalone);
        let sync = Synchronizer::open(&controller, "sync", "ours")
            .await
            .unwrap();
        assert_eq!(sync.inner_map("counters").len(), 3);
    });
}

/// Creates `scope/stream` with `segments` fixed segments through the official client.
fn create_stream(factory: &ClientFactory, scope: &str, stream: &str, segments: i32) {
    factory.runtime().block_on(async {
        let controller = factory.controller_client();
        let scoped = official_stream(scope, stream);
        controller
            .create_scope(&scoped.scope)
            .await
            .expect("create scope");
        let created = controller
            .create_stream(&StreamConfiguration {
                scoped_stream: scoped,
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
        assert!(created);
    });
}

fn official_stream(scope: &str, stream: &str) -> pravega_client_shared::ScopedStream {
    pravega_client_shared::ScopedStream {
        scope: Scope::from(scope.to_string()),
        stream: Stream::from(stream.to_string()),
    }
}

fn payload(key: usize, seq: usize) -> Vec<u8> {
    format!("key-{key:02}:{seq:06}").into_bytes()
}

fn parse_payload(bytes: &[u8]) -> (usize, usize) {
    let text = std::str::from_utf8(bytes).expect("utf-8 payload");
    let (key, seq) = text
        .strip_prefix("key-")
        .and_then(|rest| rest.split_once(':'))
        .unwrap_or_else(|| panic!("unexpected payload {text:?}"));
    (key.parse().unwrap(), seq.parse().unwrap())
}

/// Writes `per_key` events (numbered from `first`) for each of `keys` routing keys with the
/// official writer, and waits for every acknowledgement.
fn write_events(
    factory: &ClientFactory,
    scope: &str,
    stream: &str,
    keys: usize,
    first: usize,
    per_key: usize,
) {
    factory.runtime().block_on(async {
        let mut writer = factory.create_event_writer(official_stream(scope, stream));
        let mut acks = Vec::new();
        for seq in first..first + per_key {
            for key in 0..keys {
                acks.push(
                    writer
                        .write_event_by_routing_key(format!("routing-{key}"), payload(key, seq))
                        .await,
                );
            }
        }
        for ack in acks {
            ack.await.expect("ack").expect("event written");
        }
    });
}

fn quick_settings() -> ReaderSettings {
    ReaderSettings {
        rebalance_interval: Duration::from_millis(500),
        idle_poll_interval: Duration::from_millis(100),
        position_update_interval: Duration::from_millis(500),
        ..ReaderSettings::default()
    }
}

/// Reads until the end of the group, numbering every event handed out (across readers).
async fn read_to_end(
    mut reader: EventReader,
    clock: Arc<AtomicU64>,
) -> Vec<(u64, (usize, usize), String)> {
    let mut events = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while let Some(event) = tokio::time::timeout_at(deadline.into(), reader.next_event())
        .await
        .expect("the group ends before the deadline")
        .expect("next event")
    {
        let tick = clock.fetch_add(1, Ordering::SeqCst);
        events.push((
            tick,
            parse_payload(&event.payload),
            event.segment.qualified_name(),
        ));
    }
    reader.close().await.expect("close");
    events
}

#[test]
fn two_readers_read_everything_in_per_key_order_across_a_scale() {
    let (runtime, standalone) = standalone();
    let factory = official_factory(&standalone);
    let (keys, per_phase) = (8, 40);
    create_stream(&factory, "rg", "scaled", 4);
    write_events(&factory, "rg", "scaled", keys, 0, per_phase);

    let stream = ScopedStream::new("rg", "scaled");
    runtime.block_on(async {
        let controller = controller(&standalone);
        // Merge the two lowest segments and split the highest one.
        let mut current = controller
            .get_current_segments(&stream)
            .await
            .unwrap()
            .segments;
        current.sort_by(|a, b| a.range.low.total_cmp(&b.range.low));
        let (low, high) = (&current[..2], &current[3]);
        let middle = (high.range.low + high.range.high) / 2.0;
        controller
            .scale_stream(
                &stream,
                &[low[0].segment.id, low[1].segment.id, high.segment.id],
                &[
                    KeyRange::new(low[0].range.low, low[1].range.high),
                    KeyRange::new(high.range.low, middle),
                    KeyRange::new(middle, high.range.high),
                ],
            )
            .await
            .expect("scale");
    });
    write_events(&factory, "rg", "scaled", keys, per_phase, per_phase);

    let events = runtime.block_on(async {
        let controller = controller(&standalone);
        controller.seal_stream(&stream).await.expect("seal");
        let config = ReaderGroupConfig::new().stream(stream.clone());
        let group = ReaderGroup::create(&controller, "rg", "pair", config)
            .await
            .unwrap();
        let first = group
            .create_reader_with("first", quick_settings())
            .await
            .unwrap();
        let second = group
            .create_reader_with("second", quick_settings())
            .await
            .unwrap();
        assert_eq!(group.readers().await.unwrap(), vec!["first", "second"]);
        let clock = Arc::new(AtomicU64::new(0));
        let first = tokio::spawn(read_to_end(first, clock.clone()));
        let second = tokio::spawn(read_to_end(second, clock));
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert!(!first.is_empty() && !second.is_empty(), "both readers read");
        let segments_first: BTreeSet<_> = first.iter().map(|e| e.2.clone()).collect();
        let segments_second: BTreeSet<_> = second.iter().map(|e| e.2.clone()).collect();
        assert!(
            segments_first.is_disjoint(&segments_second),
            "{segments_first:?} {segments_second:?}"
        );
        assert!(group.readers().await.unwrap().is_empty());
        let mut all = first;
        all.extend(second);
        all
    });

    assert_eq!(events.len(), keys * per_phase * 2);
    let mut by_key: BTreeMap<usize, Vec<(u64, usize)>> = BTreeMap::new();
    for (tick, (key, seq), _) in &events {
        by_key.entry(*key).or_default().push((*tick, *seq));
    }
    for (key, mut reads) in by_key {
        reads.sort();
        let seqs: Vec<usize> = reads.iter().map(|(_, seq)| *seq).collect();
        assert_eq!(
            seqs,
            (0..per_phase * 2).collect::<Vec<_>>(),
            "key {key} in order, once each"
        );
    }
}

#[test]
fn an_official_reader_and_ours_share_a_group() {
    let (runtime, standalone) = standalone();
    let factory = official_factory(&standalone);
    let (keys, per_key) = (8, 30);
    create_stream(&factory, "shared", "events", 4);
    write_events(&factory, "shared", "events", keys, 0, per_key);

    // The official client creates the group; ours joins it first (owning nothing yet), then
    // the official reader takes its fair share (2 of 4) and ours the rest on its first read.
    let official_group = factory.runtime().block_on(
        factory.create_reader_group("mixed".to_string(), official_stream("shared", "events")),
    );
    let mut ours = runtime.block_on(async {
        let group = ReaderGroup::open(&controller(&standalone), "shared", "mixed")
            .await
            .unwrap();
        group
            .create_reader_with("ours", quick_settings())
            .await
            .unwrap()
    });
    let mut official = factory
        .runtime()
        .block_on(official_group.create_reader("theirs".to_string()));

    let expected = keys * per_key;
    let total = Arc::new(AtomicUsize::new(0));
    let theirs: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let official_thread = {
        let (total, theirs) = (total.clone(), theirs.clone());
        let handle = factory.runtime().handle().clone();
        std::thread::spawn(move || {
            handle.block_on(async {
                let deadline = Instant::now() + DEADLINE;
                while total.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
                    if let Some(mut slice) = official.acquire_segment().await.expect("acquire") {
                        for event in &mut slice {
                            theirs.lock().unwrap().push(parse_payload(&event.value));
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        official.release_segment(slice).await.expect("release");
                    }
                }
                official.reader_offline().await.expect("offline");
            });
        })
    };
    let mine = runtime.block_on(async {
        let mut mine = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        while total.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
            if let Ok(event) =
                tokio::time::timeout(Duration::from_millis(200), ours.next_event()).await
            {
                let event = event
                    .expect("next event")
                    .expect("the stream is not sealed");
                mine.push(parse_payload(&event.payload));
                total.fetch_add(1, Ordering::SeqCst);
            }
        }
        ours.close().await.expect("close");
        mine
    });
    official_thread.join().expect("official reader");
    let theirs = theirs.lock().unwrap().clone();

    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "both readers read: ours {}, theirs {}",
        mine.len(),
        theirs.len()
    );
    let keys_mine: BTreeSet<usize> = mine.iter().map(|(key, _)| *key).collect();
    let keys_theirs: BTreeSet<usize> = theirs.iter().map(|(key, _)| *key).collect();
    assert!(
        keys_mine.is_disjoint(&keys_theirs),
        "disjoint segments: {keys_mine:?} {keys_theirs:?}"
    );
    let mut all: Vec<(usize, usize)> = mine.iter().chain(theirs.iter()).copied().collect();
    assert_eq!(all.len(), expected, "every event once");
    for reads in [&mine, &theirs] {
        for key in 0..keys {
            let seqs: Vec<usize> = reads
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, s)| *s)
                .collect();
            assert!(
                seqs.windows(2).all(|pair| pair[0] < pair[1]),
                "key {key} in order"
            );
        }
    }
    all.sort();
    let everything: Vec<(usize, usize)> = (0..keys)
        .flat_map(|key| (0..per_key).map(move |seq| (key, seq)))
        .collect();
    assert_eq!(all, everything);
}

#[test]
fn a_dropped_readers_segments_resume_from_its_recorded_positions() {
    let (runtime, standalone) = standalone();
    let factory = official_factory(&standalone);
    let (keys, per_key) = (4, 50);
    create_stream(&factory, "offline", "events", 2);
    write_events(&factory, "offline", "events", keys, 0, per_key);
    let stream = ScopedStream::new("offline", "events");
    runtime.block_on(async {
        let controller = controller(&standalone);
        controller.seal_stream(&stream).await.expect("seal");
        let config = ReaderGroupConfig::new().stream(stream.clone());
        let group = ReaderGroup::create(&controller, "offline", "g", config)
            .await
            .unwrap();
        let settings = ReaderSettings {
            position_update_interval: Duration::ZERO,
            ..quick_settings()
        };
        // The first reader takes both segments, reads some events and dies without goodbye.
        let mut doomed = group
            .create_reader_with("doomed", settings.clone())
            .await
            .unwrap();
        let mut early = Vec::new();
        for _ in 0..30 {
            let event = doomed.next_event().await.unwrap().unwrap();
            early.push(parse_payload(&event.payload));
        }
        // Positions are recorded before each hand-out: the last event may be read again.
        let recorded = group.positions().await.unwrap();
        drop(doomed);
        assert_eq!(group.readers().await.unwrap(), vec!["doomed"]);
        group.reader_offline("doomed", None).await.unwrap();
        assert_eq!(group.positions().await.unwrap(), recorded);

        let survivor = group
            .create_reader_with("survivor", settings)
            .await
            .unwrap();
        let late: Vec<(usize, usize)> = read_to_end(survivor, Arc::default())
            .await
            .into_iter()
            .map(|(_, event, _)| event)
            .collect();
        let mut all: BTreeSet<(usize, usize)> = early.iter().copied().collect();
        all.extend(late.iter().copied());
        assert_eq!(all.len(), keys * per_key, "nothing lost");
        let duplicates = early.len() + late.len() - all.len();
        assert!(
            duplicates <= 2,
            "at most the unrecorded event per segment again: {duplicates}"
        );
    });
}

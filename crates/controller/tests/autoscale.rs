//! The auto-scaler against a real segment store: a stream scaled by event rate is split while
//! it is written well above its target and merged back to its minimum once writes stop; a
//! fixed stream under the same load keeps its one segment.
//!
//! The segment store's moving averages run over 0.25 to 2 s instead of 2 to 20 minutes, and
//! the auto-scaler looks every 100 ms with no cooldown, so this takes seconds. Rates are
//! approximate: every wait is a bounded loop, never an exact timing.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Cluster;
use pravaha_controller::model::{ScaleType, ScalingPolicy, SegmentRange, StreamConfig};
use pravaha_controller::{start_autoscaler, AutoScaleConfig, Controller};
use pravaha_segment_client::{frame_event, ClientError, SegmentClient};
use pravaha_segment_server::RateConfig;
use pravaha_types::qualified_segment_name;
use tokio::time::Instant;

const SCOPE: &str = "auto";
/// Generous: a loaded test machine may be slow, the rates only approximate.
const DEADLINE: Duration = Duration::from_secs(60);

fn windows() -> [Duration; 4] {
    [250, 500, 1000, 2000].map(Duration::from_millis)
}

fn config(scaling: ScalingPolicy) -> StreamConfig {
    StreamConfig {
        scaling,
        retention: None,
        tags: Vec::new(),
        timestamp_aggregation_timeout_ms: 0,
        rollover_size_bytes: 0,
    }
}

async fn current(controller: &Controller, stream: &str) -> Vec<SegmentRange> {
    controller
        .stream(SCOPE, stream)
        .await
        .unwrap()
        .current_segments()
}

async fn epochs(controller: &Controller, stream: &str) -> usize {
    controller.stream(SCOPE, stream).await.unwrap().epochs.len()
}

/// Appends one event about every 10 ms (about 100 events/s in all) to the segment of `stream`
/// that owns the next key of an evenly spread sequence, until `stop`; follows scaling by
/// reading the stream's segments again after a sealed segment and every 50 events.
async fn write_until(
    stop: Arc<AtomicBool>,
    controller: Controller,
    client: SegmentClient,
    stream: &'static str,
) -> u64 {
    let writer_id = 0xA0_u128 << 64 | u128::from(stream.len() as u64);
    let mut segments = current(&controller, stream).await;
    let mut event_numbers: HashMap<i64, i64> = HashMap::new();
    let mut pace = tokio::time::interval(Duration::from_millis(10));
    let (mut key, mut written) = (0.0f64, 0u64);
    while !stop.load(Ordering::SeqCst) {
        pace.tick().await;
        key = (key + 0.618_033_988_75) % 1.0;
        let Some(segment) = segments
            .iter()
            .find(|s| s.key_start <= key && key < s.key_end)
        else {
            segments = current(&controller, stream).await;
            continue;
        };
        let name = qualified_segment_name(SCOPE, stream, segment.id);
        let at = controller.endpoint(SCOPE, stream, segment.id).address;
        let number = event_numbers.entry(segment.id).or_insert(0);
        *number += 1;
        let event = frame_event(b"an event well above the target rate");
        match client
            .append(at, &name, writer_id, *number, event, "")
            .await
        {
            Ok(_) => written += 1,
            Err(ClientError::Sealed(_) | ClientError::NoSuchSegment(_)) => {
                segments = current(&controller, stream).await;
                continue;
            }
            Err(error) => panic!("appending to {name} failed: {error}"),
        }
        if written.is_multiple_of(50) {
            segments = current(&controller, stream).await;
        }
    }
    written
}

/// Waits until `done` holds for the stream's current segment count, at most `DEADLINE`.
async fn wait_for_count(
    controller: &Controller,
    stream: &str,
    what: &str,
    done: impl Fn(usize) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let count = current(controller, stream).await.len();
        if done(count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stream}: {what} not reached ({count} segments)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_policy_streams_split_under_load_and_merge_back_while_fixed_ones_stay() {
    let rates = RateConfig {
        tick: Duration::from_millis(50),
        windows: windows(),
        ..RateConfig::default()
    };
    let cluster = Cluster::start_with_server(|server| server.rates = rates, |_| {}).await;
    let controller = cluster.controller.clone();
    controller.create_scope(SCOPE).await.unwrap();
    let by_events = ScalingPolicy {
        scale_type: ScaleType::ByRateInEventsPerSec,
        target_rate: 10,
        scale_factor: 2,
        min_num_segments: 1,
    };
    controller
        .create_stream(SCOPE, "elastic", config(by_events))
        .await
        .unwrap();
    controller
        .create_stream(SCOPE, "fixed", config(ScalingPolicy::fixed(1)))
        .await
        .unwrap();
    let scaler = start_autoscaler(
        controller.clone(),
        AutoScaleConfig {
            interval: Duration::from_millis(100),
            cooldown: Duration::ZERO,
            rate_windows: windows(),
        },
    );

    // About 100 events/s on each stream: ten times the elastic stream's target.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = ["elastic", "fixed"]
        .into_iter()
        .map(|stream| {
            let (stop, controller) = (stop.clone(), controller.clone());
            tokio::spawn(write_until(
                stop,
                controller,
                cluster.segments.clone(),
                stream,
            ))
        })
        .collect();
    wait_for_count(&controller, "elastic", "a split", |count| count >= 2).await;

    // The load goes on for a few more rounds: the fixed stream still never scales.
    let rounds = scaler.stats().rounds;
    let deadline = Instant::now() + DEADLINE;
    while scaler.stats().rounds < rounds + 5 {
        assert!(Instant::now() < deadline, "the auto-scaler stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        assert!(writer.await.unwrap() > 0, "a writer wrote nothing");
    }
    assert_eq!(epochs(&controller, "fixed").await, 1);

    // Idle: the elastic stream merges back down to its minimum of one segment.
    wait_for_count(&controller, "elastic", "a merge down to 1", |count| {
        count == 1
    })
    .await;
    assert!(
        epochs(&controller, "elastic").await >= 3,
        "a split, then merges"
    );
    assert_eq!(epochs(&controller, "fixed").await, 1);
    let stats = scaler.stats();
    assert!(stats.scales_started >= 2, "{stats:?}");
    scaler.stop().await;
    cluster.stop().await;
}

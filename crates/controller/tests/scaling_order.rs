//! Events with 50 routing keys, routed as the official clients route them, are appended while
//! the stream is scaled up and down repeatedly; reading the segments in epoch order (every
//! predecessor before its successors) gives each key's events complete and in order.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Cluster, TIMEOUT};
use pravaha_controller_api::v1 as api;
use pravaha_segment_client::{frame_event, ClientError};
use pravaha_types::{qualified_segment_name, routing_key_position, segment_epoch};

const KEYS: usize = 50;
const MIN_ROUNDS: usize = 30;
const SCALES: usize = 6;

fn info() -> api::StreamInfo {
    api::StreamInfo {
        scope: "sc".into(),
        stream: "st".into(),
        access_operation: 0,
    }
}

fn ranges(response: Vec<api::SegmentRange>) -> Vec<(i64, f64, f64)> {
    response
        .into_iter()
        .map(|r| (r.segment_id.unwrap().segment_id, r.min_key, r.max_key))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_survives_scaling_up_and_down() {
    let cluster = Cluster::start().await;
    let mut grpc = cluster.grpc().await;
    grpc.create_scope(api::ScopeInfo { scope: "sc".into() })
        .await
        .unwrap();
    let status = grpc
        .create_stream(api::StreamConfig {
            stream_info: Some(info()),
            scaling_policy: Some(api::ScalingPolicy {
                scale_type: 0,
                target_rate: 0,
                scale_factor: 0,
                min_num_segments: 2,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, 0);

    let scales_done = Arc::new(AtomicBool::new(false));
    let rounds_written = Arc::new(AtomicUsize::new(0));

    // The scaler: alternately split the widest segment and merge the narrowest adjacent pair,
    // each scale awaited through checkScale, with writes going on in between.
    let scaler = {
        let mut grpc = grpc.clone();
        let done = scales_done.clone();
        let rounds = rounds_written.clone();
        tokio::spawn(async move {
            for n in 0..SCALES {
                // Let some writes happen in this epoch first.
                let before = rounds.load(Ordering::SeqCst);
                let deadline = tokio::time::Instant::now() + TIMEOUT;
                while rounds.load(Ordering::SeqCst) < before + 2 {
                    assert!(tokio::time::Instant::now() < deadline, "the writer stalled");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let current = ranges(
                    grpc.get_current_segments(info())
                        .await
                        .unwrap()
                        .into_inner()
                        .segment_ranges,
                );
                let (sealed, new) = if n % 2 == 0 || current.len() < 2 {
                    let widest = current
                        .iter()
                        .max_by(|a, b| (a.2 - a.1).total_cmp(&(b.2 - b.1)))
                        .unwrap();
                    let middle = (widest.1 + widest.2) / 2.0;
                    (vec![widest.0], vec![(widest.1, middle), (middle, widest.2)])
                } else {
                    let pair = current
                        .windows(2)
                        .min_by(|a, b| (a[1].2 - a[0].1).total_cmp(&(b[1].2 - b[0].1)))
                        .unwrap();
                    (vec![pair[0].0, pair[1].0], vec![(pair[0].1, pair[1].2)])
                };
                let response = grpc
                    .scale(api::ScaleRequest {
                        stream_info: Some(info()),
                        sealed_segments: sealed,
                        new_key_ranges: new
                            .into_iter()
                            .map(|(start, end)| api::scale_request::KeyRangeEntry { start, end })
                            .collect(),
                        scale_timestamp: 0,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(response.status, 0, "scale {n} did not start");
                let deadline = tokio::time::Instant::now() + TIMEOUT;
                loop {
                    let status = grpc
                        .check_scale(api::ScaleStatusRequest {
                            stream_info: Some(info()),
                            epoch: response.epoch,
                        })
                        .await
                        .unwrap()
                        .into_inner()
                        .status;
                    if status == api::scale_status_response::ScaleStatus::Success as i32 {
                        break;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "scale {n} did not finish"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    // The writer: one event per key per round, each acknowledged before the key's next one; a
    // sealed segment sends the writer to its successors, as the clients do.
    let at = cluster.segment_store_addr();
    let keys: Vec<String> = (0..KEYS).map(|k| format!("routing-key-{k}")).collect();
    let mut routes = ranges(
        grpc.get_current_segments(info())
            .await
            .unwrap()
            .into_inner()
            .segment_ranges,
    );
    let mut writers: HashMap<i64, (u128, i64)> = HashMap::new();
    let mut round = 0;
    let mut redirects = 0;
    while round < MIN_ROUNDS || !scales_done.load(Ordering::SeqCst) {
        for key in &keys {
            let position = routing_key_position(key);
            let payload = frame_event(format!("{key}:{round}").as_bytes());
            loop {
                let &(segment, _, _) = routes
                    .iter()
                    .find(|(_, low, high)| *low <= position && position < *high)
                    .expect("the active segments cover the key space");
                let name = qualified_segment_name("sc", "st", segment);
                let next_writer = u128::try_from(writers.len()).unwrap() + 1;
                let writer = writers.entry(segment).or_insert((next_writer, 1));
                match cluster
                    .segments
                    .append(at, &name, writer.0, writer.1, payload.clone(), "")
                    .await
                {
                    Ok(_) => {
                        writer.1 += 1;
                        break;
                    }
                    Err(ClientError::Sealed(_)) => {
                        redirects += 1;
                        let successors = grpc
                            .get_segments_immediately_following(api::SegmentId {
                                stream_info: Some(info()),
                                segment_id: segment,
                            })
                            .await
                            .unwrap()
                            .into_inner()
                            .segments;
                        assert!(
                            !successors.is_empty(),
                            "a sealed segment of an open stream has successors"
                        );
                        routes.retain(|(id, _, _)| *id != segment);
                        for entry in successors {
                            let range = entry.segment.unwrap();
                            let id = range.segment_id.unwrap().segment_id;
                            if !routes.iter().any(|r| r.0 == id) {
                                routes.push((id, range.min_key, range.max_key));
                            }
                        }
                    }
                    Err(error) => panic!("append to {name} failed: {error}"),
                }
            }
        }
        round += 1;
        rounds_written.store(round, Ordering::SeqCst);
        assert!(round < 10_000, "the scaler never finished");
    }
    scaler.await.unwrap();
    assert!(
        redirects > 0,
        "no write ever met a sealed segment; the test proved nothing"
    );

    // Read every segment, in epoch order, and check each key's events.
    let record = cluster.controller.stream("sc", "st").await.unwrap();
    assert_eq!(record.epochs.len(), SCALES + 1);
    let mut order: Vec<_> = record.segments.values().collect();
    order.sort_by(|a, b| {
        segment_epoch(a.id)
            .cmp(&segment_epoch(b.id))
            .then(a.key_start.total_cmp(&b.key_start))
    });
    let mut per_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for segment in order {
        let name = qualified_segment_name("sc", "st", segment.id);
        for event in common::segment_events(&cluster.segments, at, &name).await {
            let (key, n) = event.rsplit_once(':').unwrap();
            // Every event is in the segment its key routes to.
            let position = routing_key_position(key);
            assert!(
                segment.key_start <= position && position < segment.key_end,
                "{event} is in segment {} [{}, {})",
                segment.id,
                segment.key_start,
                segment.key_end
            );
            per_key
                .entry(key.to_owned())
                .or_default()
                .push(n.parse().unwrap());
        }
    }
    assert_eq!(per_key.len(), KEYS);
    let expected: Vec<usize> = (0..round).collect();
    for (key, events) in &per_key {
        assert_eq!(
            events, &expected,
            "events of {key} are missing or out of order"
        );
    }
    cluster.stop().await;
}

//! The retention service: streams truncated by time and by size, never past what their policy
//! must keep.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, TIMEOUT};
use pravaha_controller::model::{RetentionPolicy, RetentionType, ScalingPolicy, StreamConfig};
use pravaha_controller::retention::RetentionSet;
use pravaha_controller::METADATA_TABLE;
use pravaha_segment_client::frame_event;

const SEGMENT: &str = "sc/st/0.#epoch.0";

fn config(retention_type: RetentionType, min: i64) -> StreamConfig {
    StreamConfig {
        scaling: ScalingPolicy::fixed(1),
        retention: Some(RetentionPolicy {
            retention_type,
            retention_param: min,
            retention_max: i64::MAX,
        }),
        tags: vec![],
        timestamp_aggregation_timeout_ms: 0,
        rollover_size_bytes: 0,
    }
}

async fn start(policy: StreamConfig) -> Cluster {
    let cluster = Cluster::start_with(|config| {
        config.retention_interval = Duration::from_millis(100);
    })
    .await;
    cluster.controller.create_scope("sc").await.unwrap();
    cluster
        .controller
        .create_stream("sc", "st", policy)
        .await
        .unwrap();
    cluster
}

/// Appends `count` events of 92 payload bytes (100 framed); returns the segment's length.
async fn write(cluster: &Cluster, writer: u128, first: i64, count: i64) -> i64 {
    let mut length = 0;
    for n in first..first + count {
        let payload = format!("{n:0>92}");
        length = cluster
            .segments
            .append(
                cluster.segment_store_addr(),
                SEGMENT,
                writer,
                n,
                frame_event(payload.as_bytes()),
                "",
            )
            .await
            .unwrap();
    }
    length
}

/// Waits until the retention service has recorded a cut at `offset`.
async fn await_record(cluster: &Cluster, offset: i64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let entries = cluster
            .segments
            .table_get(
                cluster.segment_store_addr(),
                METADATA_TABLE,
                vec![Bytes::from("retention/sc/st")],
                "",
            )
            .await
            .unwrap();
        if let Some(entry) = entries.into_iter().next().flatten() {
            let set: RetentionSet = serde_json::from_slice(&entry.value).unwrap();
            if set.cuts.iter().any(|c| c.cut.get(&0) == Some(&offset)) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cut recorded at {offset}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the stream is truncated: the controller truncates the segment first and records
/// the cut in the stream's record after, so both are awaited. Returns the segment's start offset.
async fn await_start_offset(cluster: &Cluster) -> i64 {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let info = cluster
            .segments
            .segment_info(cluster.segment_store_addr(), SEGMENT, "")
            .await
            .unwrap();
        let record = cluster.controller.stream("sc", "st").await.unwrap();
        if info.start_offset > 0 && record.truncation.get(&0) == Some(&info.start_offset) {
            return info.start_offset;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream was never truncated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_truncates_but_keeps_the_minimum() {
    let cluster = start(config(RetentionType::Size, 500)).await;
    let first = write(&cluster, 1, 1, 10).await;
    assert_eq!(first, 1000);
    await_record(&cluster, first).await;
    let total = write(&cluster, 1, 11, 6).await;
    await_record(&cluster, total).await;
    // Truncating at 1000 leaves 600 bytes (>= 500); at 1600 it would leave none.
    let start = await_start_offset(&cluster).await;
    assert_eq!(start, first);
    let record = cluster.controller.stream("sc", "st").await.unwrap();
    assert_eq!(record.truncation.get(&0), Some(&first));
    // Nothing more is truncated while the stream does not grow.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = cluster
        .segments
        .segment_info(cluster.segment_store_addr(), SEGMENT, "")
        .await
        .unwrap();
    assert_eq!(info.start_offset, first);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_truncates_data_older_than_the_minimum_only() {
    let cluster = start(config(RetentionType::Time, 4000)).await;
    let first = write(&cluster, 1, 1, 10).await;
    await_record(&cluster, first).await;
    // Written well after the first batch was recorded: it must survive the first truncation.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let total = write(&cluster, 1, 11, 5).await;
    let start = await_start_offset(&cluster).await;
    assert_eq!(start, first, "only the data older than the minimum goes");
    let read = cluster
        .segments
        .read_segment(cluster.segment_store_addr(), SEGMENT, start, 1 << 20, "")
        .await
        .unwrap();
    assert_eq!(read.data.len() as i64, total - first);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_a_policy_or_subscribers_are_never_truncated() {
    let mut plain = config(RetentionType::Size, 0);
    plain.retention = None;
    let cluster = start(plain).await;
    let total = write(&cluster, 1, 1, 10).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let info = cluster
        .segments
        .segment_info(cluster.segment_store_addr(), SEGMENT, "")
        .await
        .unwrap();
    assert_eq!((info.start_offset, info.length), (0, total));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumption_retention_truncates_up_to_the_slowest_subscriber() {
    use pravaha_controller_api::v1 as api;
    let mut plain = config(RetentionType::Size, 0);
    plain.retention = None;
    let cluster = start(plain).await;
    let mut client = cluster.grpc().await;
    let info = api::StreamInfo {
        scope: "sc".into(),
        stream: "st".into(),
        access_operation: 0,
    };
    let group_id = "8f1d2c3b-4a5e-4f60-9a7b-0c1d2e3f4a5b";
    // A reader group subscribed to the stream (retention type MANUAL).
    let created = client
        .create_reader_group(api::ReaderGroupConfiguration {
            scope: "sc".into(),
            reader_group_name: "rg".into(),
            group_refresh_time_millis: 3000,
            automatic_checkpoint_interval_millis: 30000,
            max_outstanding_checkpoint_request: 3,
            retention_type: 1,
            generation: 0,
            reader_group_id: group_id.into(),
            starting_stream_cuts: vec![api::StreamCut {
                stream_info: Some(info.clone()),
                cut: HashMap::new(),
            }],
            ending_stream_cuts: vec![api::StreamCut {
                stream_info: Some(info.clone()),
                cut: HashMap::new(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.status, 0, "{created:?}");
    let generation = created.config.map_or(0, |c| c.generation);
    let publish = |offset: i64| api::SubscriberStreamCut {
        subscriber: "sc/rg".into(),
        generation,
        reader_group_id: group_id.into(),
        stream_cut: Some(api::StreamCut {
            stream_info: Some(info.clone()),
            cut: HashMap::from([(0, offset)]),
        }),
    };

    let half = write(&cluster, 1, 1, 5).await;
    await_record(&cluster, half).await;
    let full = write(&cluster, 1, 6, 5).await;
    await_record(&cluster, full).await;
    // Nothing published yet: nothing is truncated.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info0 = cluster
        .segments
        .segment_info(cluster.segment_store_addr(), SEGMENT, "")
        .await
        .unwrap();
    assert_eq!(info0.start_offset, 0);
    // The subscriber read up to 700: truncated at the newest recorded cut before it (500).
    let status = client
        .update_subscriber_stream_cut(publish(700))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, 0);
    assert_eq!(await_start_offset(&cluster).await, half);
    // Then everything.
    client
        .update_subscriber_stream_cut(publish(full))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let info = cluster
            .segments
            .segment_info(cluster.segment_store_addr(), SEGMENT, "")
            .await
            .unwrap();
        if info.start_offset == full {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not truncated to the subscriber's cut"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_subscriber_stops_pinning_data_at_the_maximum() {
    use pravaha_controller_api::v1 as api;
    // Keep at least nothing, at most 1.5 s of data; a subscriber that never publishes a cut.
    let mut bounded = config(RetentionType::Time, 0);
    bounded.retention.as_mut().unwrap().retention_max = 1500;
    let cluster = start(bounded).await;
    let mut client = cluster.grpc().await;
    let info = api::StreamInfo {
        scope: "sc".into(),
        stream: "st".into(),
        access_operation: 0,
    };
    let created = client
        .create_reader_group(api::ReaderGroupConfiguration {
            scope: "sc".into(),
            reader_group_name: "dead".into(),
            group_refresh_time_millis: 3000,
            automatic_checkpoint_interval_millis: 30000,
            max_outstanding_checkpoint_request: 3,
            retention_type: 1,
            reader_group_id: "7f1d2c3b-4a5e-4f60-9a7b-0c1d2e3f4a5b".into(),
            starting_stream_cuts: vec![api::StreamCut {
                stream_info: Some(info.clone()),
                cut: HashMap::new(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.status, 0, "{created:?}");
    let written = write(&cluster, 1, 1, 10).await;
    await_record(&cluster, written).await;
    // The subscriber never publishes a cut; once the recorded cut is older than the maximum the
    // stream is truncated at it anyway. (That it pins data before then is the consumption
    // test's "nothing published yet" step.)
    let start = await_start_offset(&cluster).await;
    assert_eq!(start, written);
    cluster.stop().await;
}

//! Writers' marks aggregated into watermarks on the stream's mark stream.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::Cluster;
use pravaha_controller::watermarks::MarkFormat;
use pravaha_controller_api::v1 as api;
use pravaha_types::watermark::{SegmentWithRange, Watermark};

fn info() -> api::StreamInfo {
    api::StreamInfo {
        scope: "sc".into(),
        stream: "st".into(),
        access_operation: 0,
    }
}

fn mark(writer: &str, timestamp: i64, cut: &[(i64, i64)]) -> api::TimestampFromWriter {
    api::TimestampFromWriter {
        writer: writer.into(),
        position: Some(api::StreamCut {
            stream_info: Some(info()),
            cut: cut.iter().copied().collect::<HashMap<_, _>>(),
        }),
        timestamp,
    }
}

/// A cluster with stream `sc/s` of two segments, and a gRPC client of its controller.
async fn cluster_with_stream() -> (
    Cluster,
    pravaha_controller_api::ControllerServiceClient<tonic::transport::Channel>,
) {
    let cluster = Cluster::start().await;
    let mut client = cluster.grpc().await;
    client
        .create_scope(api::ScopeInfo { scope: "sc".into() })
        .await
        .unwrap();
    client
        .create_stream(api::StreamConfig {
            stream_info: Some(info()),
            scaling_policy: Some(api::ScalingPolicy {
                min_num_segments: 2,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    (cluster, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_follow_the_slowest_active_writer() {
    let (cluster, mut client) = cluster_with_stream().await;
    use api::timestamp_response::Status;
    let note = |client: &mut pravaha_controller_api::ControllerServiceClient<_>, m| {
        let mut client = client.clone();
        async move {
            client
                .note_timestamp_from_writer(m)
                .await
                .unwrap()
                .into_inner()
                .result
        }
    };
    assert_eq!(
        note(&mut client, mark("w1", 100, &[(0, 10), (1, 0)])).await,
        Status::Success as i32
    );
    assert_eq!(
        note(&mut client, mark("w2", 200, &[(0, 0), (1, 30)])).await,
        Status::Success as i32
    );
    // A mark earlier than the writer's last, or at a position that is no stream cut: refused.
    assert_eq!(
        note(&mut client, mark("w1", 50, &[(0, 10), (1, 0)])).await,
        Status::InvalidTime as i32
    );
    assert_eq!(
        note(&mut client, mark("w1", 150, &[(0, 10)])).await,
        Status::InvalidPosition as i32
    );

    let controller = &cluster.controller;
    controller.run_watermarking().await.unwrap();
    // Unchanged marks do not produce a second watermark.
    controller.run_watermarking().await.unwrap();
    assert_eq!(
        note(&mut client, mark("w1", 300, &[(0, 40), (1, 0)])).await,
        Status::Success as i32
    );
    controller.run_watermarking().await.unwrap();
    // Removing the slow writer lets the watermark move to the remaining one.
    let removed = client
        .remove_writer(api::RemoveWriterRequest {
            writer: "w2".into(),
            stream: Some(info()),
        })
        .await
        .unwrap()
        .into_inner()
        .result;
    assert_eq!(removed, api::remove_writer_response::Status::Success as i32);
    let unknown = client
        .remove_writer(api::RemoveWriterRequest {
            writer: "w2".into(),
            stream: Some(info()),
        })
        .await
        .unwrap()
        .into_inner()
        .result;
    assert_eq!(
        unknown,
        api::remove_writer_response::Status::UnknownWriter as i32
    );
    controller.run_watermarking().await.unwrap();

    let marks = controller.watermarks("sc", "st").await.unwrap();
    let bounds: Vec<(i64, i64)> = marks
        .iter()
        .map(|m| (m.lower_time_bound, m.upper_time_bound))
        .collect();
    assert_eq!(bounds, vec![(100, 200), (200, 300), (300, 300)]);
    // The cut covers the furthest position any contributing writer reported.
    assert_eq!(marks[1].stream_cut.get(&0), Some(&40));
    assert_eq!(marks[1].stream_cut.get(&1), Some(&30));
    assert!(marks.iter().all(|m| m.format == MarkFormat::Pravega));
    assert_eq!(marks[1].ranges.get(&0), Some(&(0.0, 0.5)));
    assert_eq!(marks[1].ranges.get(&1), Some(&(0.5, 1.0)));
    // The mark stream is an internal stream of the scope with one fixed segment, holding
    // ordinary events whose payloads are Pravega's serialization of its Watermark.
    let mark_stream = controller.stream("sc", "_MARKst").await.unwrap();
    assert_eq!(mark_stream.current_segments().len(), 1);
    let payloads = mark_payloads(&cluster).await;
    assert_eq!(payloads.len(), 3);
    let second = Watermark::decode(&payloads[1]).unwrap();
    assert_eq!(
        (second.lower_time_bound, second.upper_time_bound),
        (200, 300)
    );
    assert_eq!(
        second.stream_cut,
        vec![
            (segment_range(0, 0.0, 0.5), 40),
            (segment_range(1, 0.5, 1.0), 30)
        ]
    );

    // Deleting the stream deletes its watermarks: writer marks and mark stream, so the scope
    // is empty and a stream created again under the name starts without marks.
    let config = controller.stream("sc", "st").await.unwrap().config;
    controller.seal_stream("sc", "st").await.unwrap();
    assert!(controller.delete_stream("sc", "st").await.unwrap());
    assert!(matches!(
        controller.stream("sc", "_MARKst").await,
        Err(pravaha_controller::ControllerError::StreamNotFound { .. })
    ));
    assert!(controller.watermarks("sc", "st").await.unwrap().is_empty());
    controller.create_stream("sc", "st", config).await.unwrap();
    assert_eq!(
        controller.current_watermark("sc", "st").await.unwrap(),
        None
    );
    controller.seal_stream("sc", "st").await.unwrap();
    assert!(controller.delete_stream("sc", "st").await.unwrap());
    assert!(controller.delete_scope("sc").await.unwrap());
    cluster.stop().await;
}

fn segment_range(segment_id: i64, range_low: f64, range_high: f64) -> SegmentWithRange {
    SegmentWithRange {
        segment_id,
        range_low,
        range_high,
    }
}

/// The payloads of the events in `sc/_MARKst`'s segment.
async fn mark_payloads(cluster: &Cluster) -> Vec<Bytes> {
    let segment = "sc/_MARKst/0.#epoch.0";
    let at = cluster.controller.config().stores.locate(segment).address;
    let info = cluster
        .segments
        .segment_info(at, segment, "")
        .await
        .unwrap();
    let read = cluster
        .segments
        .read_segment(at, segment, info.start_offset, 1 << 20, "")
        .await
        .unwrap();
    assert_eq!(read.data.len() as i64, info.length - info.start_offset);
    let (events, used) = pravaha_segment_client::parse_events(&read.data).unwrap();
    assert_eq!(used, read.data.len());
    events
}

/// A mark stream written by an older Pravaha (JSON watermarks) is read, and the first
/// watermark written after the upgrade truncates it past the JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_watermarks_of_older_versions_are_read_then_replaced() {
    let (cluster, client) = cluster_with_stream().await;
    let controller = &cluster.controller;
    controller
        .create_stream(
            "sc",
            "_MARKst",
            pravaha_controller::model::StreamConfig {
                scaling: pravaha_controller::model::ScalingPolicy::fixed(1),
                retention: None,
                tags: vec![],
                timestamp_aggregation_timeout_ms: 0,
                rollover_size_bytes: 0,
            },
        )
        .await
        .unwrap();
    let segment = "sc/_MARKst/0.#epoch.0";
    let at = controller.config().stores.locate(segment).address;
    let json =
        br#"{"v":1,"lower_time_bound":100,"upper_time_bound":150,"stream_cut":{"0":7,"1":9}}"#;
    let length = cluster
        .segments
        .append(
            at,
            segment,
            42,
            1,
            pravaha_segment_client::frame_event(json),
            "",
        )
        .await
        .unwrap();
    let old = controller.watermarks("sc", "st").await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].format, MarkFormat::LegacyJson);
    assert_eq!(
        (old[0].lower_time_bound, old[0].upper_time_bound),
        (100, 150)
    );
    assert_eq!(old[0].stream_cut.get(&1), Some(&9));

    let mut client = client.clone();
    let status = client
        .note_timestamp_from_writer(mark("w1", 500, &[(0, 3), (1, 20)]))
        .await
        .unwrap()
        .into_inner()
        .result;
    assert_eq!(status, api::timestamp_response::Status::Success as i32);
    controller.run_watermarking().await.unwrap();
    let info = cluster
        .segments
        .segment_info(at, segment, "")
        .await
        .unwrap();
    assert_eq!(
        info.start_offset, length,
        "truncated past the JSON watermark"
    );
    let marks = controller.watermarks("sc", "st").await.unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].format, MarkFormat::Pravega);
    assert_eq!(marks[0].lower_time_bound, 500);
    // The cut is at or after the JSON watermark's (positions never go back).
    assert_eq!(
        marks[0]
            .stream_cut
            .iter()
            .map(|(s, o)| (*s, *o))
            .collect::<Vec<_>>(),
        [(0, 7), (1, 20)]
    );
    let payloads = mark_payloads(&cluster).await;
    assert_eq!(
        Watermark::decode(&payloads[0]).unwrap().lower_time_bound,
        500
    );
    cluster.stop().await;
}

/// A recursive scope deletion meets mark streams its own stream deletions already removed
/// (`A` sorts before `_MARKA`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_scope_deletion_takes_mark_streams_along() {
    let cluster = Cluster::start().await;
    let mut client = cluster.grpc().await;
    client
        .create_scope(api::ScopeInfo { scope: "sc".into() })
        .await
        .unwrap();
    let stream = api::StreamInfo {
        scope: "sc".into(),
        stream: "A".into(),
        access_operation: 0,
    };
    client
        .create_stream(api::StreamConfig {
            stream_info: Some(stream.clone()),
            scaling_policy: Some(api::ScalingPolicy {
                min_num_segments: 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let noted = client
        .note_timestamp_from_writer(api::TimestampFromWriter {
            writer: "w".into(),
            position: Some(api::StreamCut {
                stream_info: Some(stream),
                cut: HashMap::from([(0, 0)]),
            }),
            timestamp: 10,
        })
        .await
        .unwrap()
        .into_inner()
        .result;
    assert_eq!(noted, api::timestamp_response::Status::Success as i32);
    cluster.controller.run_watermarking().await.unwrap();
    assert_eq!(
        cluster
            .controller
            .watermarks("sc", "A")
            .await
            .unwrap()
            .len(),
        1
    );
    let deleted = client
        .delete_scope_recursive(api::ScopeInfo { scope: "sc".into() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(deleted, api::delete_scope_status::Status::Success as i32);
    assert!(!cluster.controller.scope_exists("sc").await.unwrap());
    cluster.stop().await;
}

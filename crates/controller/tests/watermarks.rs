//! Writers' marks aggregated into watermarks on the stream's mark stream.

mod common;

use std::collections::HashMap;

use common::Cluster;
use pravaha_controller_api::v1 as api;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_follow_the_slowest_active_writer() {
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
    // The mark stream is an internal stream of the scope.
    assert!(controller.stream("sc", "_MARKst").await.is_ok());
    cluster.stop().await;
}

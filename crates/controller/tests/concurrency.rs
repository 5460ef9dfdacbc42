//! Concurrent requests on the same metadata: no lost updates, no stream left in a deleted scope.

mod common;

use common::Cluster;
use pravaha_controller::model::{ScalingPolicy, StreamConfig};
use pravaha_controller::ControllerError;

fn config() -> StreamConfig {
    StreamConfig {
        scaling: ScalingPolicy::fixed(1),
        retention: None,
        tags: vec![],
        timestamp_aggregation_timeout_ms: 0,
        rollover_size_bytes: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_never_left_in_a_deleted_scope() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller.clone();
    let (mut deleted, mut kept) = (0, 0);
    for round in 0..20 {
        let scope = format!("race{round}");
        assert!(controller.create_scope(&scope).await.unwrap());
        let (c1, c2) = (controller.clone(), controller.clone());
        let (s1, s2) = (scope.clone(), scope.clone());
        let create = tokio::spawn(async move { c1.create_stream(&s1, "st", config()).await });
        let delete = tokio::spawn(async move { c2.delete_scope(&s2).await });
        let created = create.await.unwrap();
        let removed = delete.await.unwrap();
        let scope_exists = controller.scope_exists(&scope).await.unwrap();
        let stream_exists = controller.stream(&scope, "st").await.is_ok();
        match (created, removed) {
            (Ok(true), Err(ControllerError::ScopeNotEmpty(_))) => {
                assert!(scope_exists && stream_exists);
                kept += 1;
            }
            (Err(ControllerError::ScopeNotFound(_)), Ok(true)) => {
                assert!(!scope_exists && !stream_exists);
                deleted += 1;
            }
            // Each saw the other in progress and backed off: nothing changed.
            (Err(ControllerError::ScopeNotFound(_)), Err(ControllerError::ScopeNotEmpty(_))) => {
                assert!(scope_exists && !stream_exists);
                kept += 1;
            }
            other => panic!("round {round}: unexpected outcome {other:?}"),
        }
    }
    assert_eq!(deleted + kept, 20);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scales_of_one_stream_each_apply_once() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller.clone();
    controller.create_scope("sc").await.unwrap();
    let mut eight = config();
    eight.scaling = ScalingPolicy::fixed(8);
    controller.create_stream("sc", "st", eight).await.unwrap();
    // Eight tasks each split "their" segment; only one scale runs at a time, so the others are
    // refused (precondition) and retry on the new epoch.
    let mut tasks = Vec::new();
    for n in 0..8i64 {
        let controller = controller.clone();
        tasks.push(tokio::spawn(async move {
            let (start, end) = (n as f64 / 8.0, (n + 1) as f64 / 8.0);
            let end = if n == 7 { 1.0 } else { end };
            let middle = (start + end) / 2.0;
            for _ in 0..2000 {
                match controller
                    .scale("sc", "st", &[n], &[(start, middle), (middle, end)])
                    .await
                {
                    Ok(_) => return,
                    Err(ControllerError::PreconditionFailed(_)) => {
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    }
                    Err(error) => panic!("{error}"),
                }
            }
            panic!("segment {n} was never split");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Wait for the last scale to complete, then: 8 epochs of scaling, 16 segments tiling [0, 1).
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    let record = loop {
        let record = controller.stream("sc", "st").await.unwrap();
        if record.workflow.is_none() {
            break record;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(record.epochs.len(), 9);
    let current = record.current_segments();
    assert_eq!(current.len(), 16);
    assert_eq!(current[0].key_start, 0.0);
    assert_eq!(current[15].key_end, 1.0);
    for pair in current.windows(2) {
        assert_eq!(pair[0].key_end, pair[1].key_start);
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_minimum_number_of_segments_splits_the_stream() {
    let cluster = Cluster::start().await;
    let controller = cluster.controller.clone();
    controller.create_scope("sc").await.unwrap();
    controller
        .create_stream("sc", "st", config())
        .await
        .unwrap();
    let mut five = config();
    five.scaling = ScalingPolicy::fixed(5);
    controller.update_stream("sc", "st", five).await.unwrap();
    let record = controller.stream("sc", "st").await.unwrap();
    let current = record.current_segments();
    assert_eq!(current.len(), 5);
    assert_eq!((current[0].key_start, current[4].key_end), (0.0, 1.0));
    for pair in current.windows(2) {
        assert_eq!(pair[0].key_end, pair[1].key_start);
    }
    // Every segment exists on the segment store; lowering the minimum does not merge.
    for segment in &current {
        let name = pravaha_types::qualified_segment_name("sc", "st", segment.id);
        let info = cluster
            .segments
            .segment_info(cluster.segment_store_addr(), &name, "")
            .await
            .unwrap();
        assert!(!info.sealed);
    }
    controller
        .update_stream("sc", "st", config())
        .await
        .unwrap();
    assert_eq!(
        controller
            .stream("sc", "st")
            .await
            .unwrap()
            .current_segments()
            .len(),
        5
    );
    cluster.stop().await;
}

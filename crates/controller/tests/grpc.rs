//! The Controller gRPC API over real HTTP/2 on 127.0.0.1, checked against the controller's
//! metadata and the segments on the segment store.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, TIMEOUT};
use pravaha_controller_api::v1 as api;
use pravaha_controller_api::ControllerServiceClient;
use pravaha_segment_client::{frame_event, ClientError};
use pravaha_types::segment_id;
use tonic::transport::Channel;

type Client = ControllerServiceClient<Channel>;

fn info(scope: &str, stream: &str) -> api::StreamInfo {
    api::StreamInfo {
        scope: scope.into(),
        stream: stream.into(),
        access_operation: 0,
    }
}

fn fixed(scope: &str, stream: &str, segments: i32) -> api::StreamConfig {
    api::StreamConfig {
        stream_info: Some(info(scope, stream)),
        scaling_policy: Some(api::ScalingPolicy {
            scale_type: api::scaling_policy::ScalingPolicyType::FixedNumSegments.into(),
            target_rate: 0,
            scale_factor: 0,
            min_num_segments: segments,
        }),
        retention_policy: None,
        tags: None,
        timestamp_aggregation_timeout: 0,
        rollover_size_bytes: 0,
    }
}

fn segment_ref(scope: &str, stream: &str, id: i64) -> api::SegmentId {
    api::SegmentId {
        stream_info: Some(info(scope, stream)),
        segment_id: id,
    }
}

async fn create_scope(client: &mut Client, scope: &str) -> i32 {
    client
        .create_scope(api::ScopeInfo {
            scope: scope.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

async fn create_stream(client: &mut Client, config: api::StreamConfig) -> i32 {
    client
        .create_stream(config)
        .await
        .unwrap()
        .into_inner()
        .status
}

async fn current(client: &mut Client, scope: &str, stream: &str) -> Vec<(i64, f64, f64)> {
    client
        .get_current_segments(info(scope, stream))
        .await
        .unwrap()
        .into_inner()
        .segment_ranges
        .into_iter()
        .map(|r| (r.segment_id.unwrap().segment_id, r.min_key, r.max_key))
        .collect()
}

/// Waits until the scale started from `epoch` reports SUCCESS.
async fn await_scale(client: &mut Client, scope: &str, stream: &str, epoch: i32) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let status = client
            .check_scale(api::ScaleStatusRequest {
                stream_info: Some(info(scope, stream)),
                epoch,
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == api::scale_status_response::ScaleStatus::Success as i32 {
            return;
        }
        assert_eq!(
            status,
            api::scale_status_response::ScaleStatus::InProgress as i32,
            "unexpected scale status"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the scale did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_created_listed_in_pages_and_deleted() {
    let cluster = Cluster::start_with(|config| config.page_size = 2).await;
    let mut client = cluster.grpc().await;
    use api::create_scope_status::Status as Create;
    use api::delete_scope_status::Status as Delete;
    for scope in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        assert_eq!(
            create_scope(&mut client, scope).await,
            Create::Success as i32
        );
    }
    assert_eq!(
        create_scope(&mut client, "alpha").await,
        Create::ScopeExists as i32
    );
    assert_eq!(
        create_scope(&mut client, "bad/name").await,
        Create::InvalidScopeName as i32
    );
    assert_eq!(
        create_scope(&mut client, "").await,
        Create::InvalidScopeName as i32
    );
    let exists = |client: &mut Client, scope: &str| {
        let mut client = client.clone();
        let scope = scope.to_owned();
        async move {
            client
                .check_scope_exists(api::ScopeInfo { scope })
                .await
                .unwrap()
                .into_inner()
                .exists
        }
    };
    assert!(exists(&mut client, "gamma").await);
    assert!(!exists(&mut client, "zeta").await);

    // Pages of 2 until an empty page, as the clients iterate.
    let mut token = String::new();
    let mut scopes = Vec::new();
    for _ in 0..10 {
        let page = client
            .list_scopes(api::ScopesRequest {
                continuation_token: Some(api::ContinuationToken {
                    token: token.clone(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        if page.scopes.is_empty() {
            break;
        }
        assert!(page.scopes.len() <= 2);
        scopes.extend(page.scopes);
        token = page
            .continuation_token
            .expect("a token with every page")
            .token;
    }
    assert_eq!(scopes, vec!["alpha", "beta", "delta", "epsilon", "gamma"]);

    // A scope with a stream cannot be deleted; an empty one can, once.
    assert_eq!(
        create_stream(&mut client, fixed("beta", "s", 1)).await,
        api::create_stream_status::Status::Success as i32
    );
    let delete = |client: &mut Client, scope: &str| {
        let mut client = client.clone();
        let scope = scope.to_owned();
        async move {
            client
                .delete_scope(api::ScopeInfo { scope })
                .await
                .unwrap()
                .into_inner()
                .status
        }
    };
    assert_eq!(
        delete(&mut client, "beta").await,
        Delete::ScopeNotEmpty as i32
    );
    assert_eq!(delete(&mut client, "alpha").await, Delete::Success as i32);
    assert_eq!(
        delete(&mut client, "alpha").await,
        Delete::ScopeNotFound as i32
    );
    // Recursive delete seals and deletes the streams first.
    let status = client
        .delete_scope_recursive(api::ScopeInfo {
            scope: "beta".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, Delete::Success as i32);
    assert!(!exists(&mut client, "beta").await);
    let gone = cluster
        .segments
        .segment_info(cluster.segment_store_addr(), "beta/s/0.#epoch.0", "")
        .await;
    assert!(
        matches!(gone, Err(ClientError::NoSuchSegment(_))),
        "{gone:?}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_created_configured_listed_sealed_and_deleted() {
    let cluster = Cluster::start_with(|config| config.page_size = 2).await;
    let mut client = cluster.grpc().await;
    use api::create_stream_status::Status as Create;
    create_scope(&mut client, "sc").await;
    assert_eq!(
        create_stream(&mut client, fixed("sc", "orders", 3)).await,
        Create::Success as i32
    );
    assert_eq!(
        create_stream(&mut client, fixed("sc", "orders", 3)).await,
        Create::StreamExists as i32
    );
    assert_eq!(
        create_stream(&mut client, fixed("nope", "orders", 1)).await,
        Create::ScopeNotFound as i32
    );
    assert_eq!(
        create_stream(&mut client, fixed("sc", "bad name", 1)).await,
        Create::InvalidStreamName as i32
    );
    let invalid = client
        .create_stream(fixed("sc", "zero", 0))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);

    // Three segments tiling [0, 1), each on the segment store.
    let segments = current(&mut client, "sc", "orders").await;
    assert_eq!(segments.len(), 3);
    assert_eq!(
        segments.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!((segments[0].1, segments[2].2), (0.0, 1.0));
    for n in 0..3 {
        let segment = format!("sc/orders/{n}.#epoch.0");
        let found = cluster
            .segments
            .segment_info(cluster.segment_store_addr(), &segment, "")
            .await
            .unwrap();
        assert!(!found.sealed);
    }

    // Configuration round trip with tags and retention; an update replaces it.
    let mut config = fixed("sc", "orders", 3);
    config.scaling_policy = Some(api::ScalingPolicy {
        scale_type: api::scaling_policy::ScalingPolicyType::ByRateInEventsPerSec.into(),
        target_rate: 100,
        scale_factor: 2,
        min_num_segments: 3,
    });
    config.retention_policy = Some(api::RetentionPolicy {
        retention_type: api::retention_policy::RetentionPolicyType::Size.into(),
        retention_param: 1 << 20,
        retention_max: 1 << 30,
    });
    config.tags = Some(api::Tags {
        tag: vec!["blue".into(), "fast".into()],
    });
    let status = client
        .update_stream(config.clone())
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::update_stream_status::Status::Success as i32);
    let read = client
        .get_stream_configuration(info("sc", "orders"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, config);
    // The scaling policy reached the segments (Pravega's core attributes 2 and 3).
    let scale_type = cluster
        .segments
        .get_attribute(
            cluster.segment_store_addr(),
            "sc/orders/1.#epoch.0",
            (0x8000_0000_0000_0000u128 << 64) | 2,
            "",
        )
        .await
        .unwrap();
    assert_eq!(scale_type, Some(2));
    let mut missing = fixed("sc", "missing", 1);
    missing.stream_info = Some(info("sc", "missing"));
    assert_eq!(
        client
            .update_stream(missing)
            .await
            .unwrap()
            .into_inner()
            .status,
        api::update_stream_status::Status::StreamNotFound as i32
    );

    // Listing in pages, and by tag.
    for name in ["a1", "a2", "a3"] {
        let mut config = fixed("sc", name, 1);
        if name == "a2" {
            config.tags = Some(api::Tags {
                tag: vec!["blue".into()],
            });
        }
        create_stream(&mut client, config).await;
    }
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_streams_in_scope(api::StreamsInScopeRequest {
                scope: Some(api::ScopeInfo { scope: "sc".into() }),
                continuation_token: Some(api::ContinuationToken {
                    token: token.clone(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            page.status,
            api::streams_in_scope_response::Status::Success as i32
        );
        if page.streams.is_empty() {
            break;
        }
        names.extend(page.streams.into_iter().map(|s| s.stream));
        token = page.continuation_token.unwrap().token;
    }
    // Each stream comes with its mark stream, listed like any stream (as Pravega lists them).
    assert_eq!(
        names,
        vec![
            "_MARKa1",
            "_MARKa2",
            "_MARKa3",
            "_MARKorders",
            "a1",
            "a2",
            "a3",
            "orders"
        ]
    );
    let tagged = client
        .list_streams_in_scope_for_tag(api::StreamsInScopeWithTagRequest {
            scope: Some(api::ScopeInfo { scope: "sc".into() }),
            tag: "blue".into(),
            continuation_token: Some(api::ContinuationToken::default()),
        })
        .await
        .unwrap()
        .into_inner();
    let mut tagged: Vec<_> = tagged.streams.into_iter().map(|s| s.stream).collect();
    tagged.sort();
    assert_eq!(tagged, vec!["a2", "orders"]);
    let unknown = client
        .list_streams_in_scope(api::StreamsInScopeRequest {
            scope: Some(api::ScopeInfo {
                scope: "nope".into(),
            }),
            continuation_token: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unknown.status,
        api::streams_in_scope_response::Status::ScopeNotFound as i32
    );

    // Delete needs a sealed stream; seal seals every segment and empties the current set.
    use api::delete_stream_status::Status as Delete;
    let status = client
        .delete_stream(info("sc", "orders"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, Delete::StreamNotSealed as i32);
    let status = client
        .seal_stream(info("sc", "orders"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::update_stream_status::Status::Success as i32);
    assert!(current(&mut client, "sc", "orders").await.is_empty());
    for n in 0..3 {
        let segment = format!("sc/orders/{n}.#epoch.0");
        let found = cluster
            .segments
            .segment_info(cluster.segment_store_addr(), &segment, "")
            .await
            .unwrap();
        assert!(found.sealed, "{segment} is not sealed");
        // The last segments of a sealed stream have no successors.
        let successors = client
            .get_segments_immediately_following(segment_ref("sc", "orders", n))
            .await
            .unwrap()
            .into_inner();
        assert!(successors.segments.is_empty());
    }
    // Sealing again is fine; updating a sealed stream is not.
    let status = client
        .seal_stream(info("sc", "orders"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::update_stream_status::Status::Success as i32);
    let status = client
        .update_stream(config)
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        api::update_stream_status::Status::StreamSealed as i32
    );
    let status = client
        .delete_stream(info("sc", "orders"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, Delete::Success as i32);
    let status = client
        .delete_stream(info("sc", "orders"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, Delete::StreamNotFound as i32);
    let gone = cluster
        .segments
        .segment_info(cluster.segment_store_addr(), "sc/orders/0.#epoch.0", "")
        .await;
    assert!(
        matches!(gone, Err(ClientError::NoSuchSegment(_))),
        "{gone:?}"
    );
    let missing = client
        .get_stream_configuration(info("sc", "orders"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let exists = client
        .check_stream_exists(info("sc", "a1"))
        .await
        .unwrap()
        .into_inner();
    assert!(exists.exists);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_creates_epochs_with_successors_and_refuses_conflicts() {
    let cluster = Cluster::start().await;
    let mut client = cluster.grpc().await;
    create_scope(&mut client, "sc").await;
    create_stream(&mut client, fixed("sc", "st", 2)).await;

    // getURI answers for any segment, including `_kvtable` pseudo-streams.
    for (stream, id) in [("st", 0), ("st", segment_id(3, 9)), ("group_kvtable", 0)] {
        let uri = client
            .get_uri(segment_ref("sc", stream, id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(uri.endpoint, cluster.segment_store_addr().ip().to_string());
        assert_eq!(uri.port, i32::from(cluster.segment_store_addr().port()));
    }

    // Split segment 0 in two.
    let scale = |sealed: Vec<i64>, ranges: Vec<(f64, f64)>| api::ScaleRequest {
        stream_info: Some(info("sc", "st")),
        sealed_segments: sealed,
        new_key_ranges: ranges
            .into_iter()
            .map(|(start, end)| api::scale_request::KeyRangeEntry { start, end })
            .collect(),
        scale_timestamp: 0,
    };
    let response = client
        .scale(scale(vec![0], vec![(0.0, 0.25), (0.25, 0.5)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status,
        api::scale_response::ScaleStreamStatus::Started as i32
    );
    assert_eq!(response.epoch, 0);
    let new: Vec<i64> = response
        .segments
        .iter()
        .map(|s| s.segment_id.as_ref().unwrap().segment_id)
        .collect();
    assert_eq!(new, vec![segment_id(1, 2), segment_id(1, 3)]);
    await_scale(&mut client, "sc", "st", 0).await;
    assert_eq!(
        current(&mut client, "sc", "st").await,
        vec![
            (segment_id(1, 2), 0.0, 0.25),
            (segment_id(1, 3), 0.25, 0.5),
            (1, 0.5, 1.0)
        ]
    );
    // On the segment store: the old segment sealed, the new ones there.
    let at = cluster.segment_store_addr();
    assert!(
        cluster
            .segments
            .segment_info(at, "sc/st/0.#epoch.0", "")
            .await
            .unwrap()
            .sealed
    );
    for name in ["sc/st/2.#epoch.1", "sc/st/3.#epoch.1"] {
        assert!(
            !cluster
                .segments
                .segment_info(at, name, "")
                .await
                .unwrap()
                .sealed
        );
    }
    let successors = client
        .get_segments_immediately_following(segment_ref("sc", "st", 0))
        .await
        .unwrap()
        .into_inner();
    let found: Vec<(i64, Vec<i64>)> = successors
        .segments
        .into_iter()
        .map(|e| (e.segment.unwrap().segment_id.unwrap().segment_id, e.value))
        .collect();
    assert_eq!(
        found,
        vec![(segment_id(1, 2), vec![0]), (segment_id(1, 3), vec![0])]
    );

    // Merge the two back; the successor lists both predecessors.
    let response = client
        .scale(scale(
            vec![segment_id(1, 2), segment_id(1, 3)],
            vec![(0.0, 0.5)],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status,
        api::scale_response::ScaleStreamStatus::Started as i32
    );
    assert_eq!(response.epoch, 1);
    await_scale(&mut client, "sc", "st", 1).await;
    let successors = client
        .get_segments_immediatly_following(segment_ref("sc", "st", segment_id(1, 3)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(successors.segments.len(), 1);
    assert_eq!(
        successors.segments[0].value,
        vec![segment_id(1, 2), segment_id(1, 3)]
    );

    // A scale that conflicts with the current epoch: refused.
    for (sealed, ranges) in [
        (vec![0], vec![(0.0, 0.5)]),             // no longer active
        (vec![1], vec![(0.5, 0.9)]),             // does not cover
        (vec![1], vec![(0.5, 0.8), (0.7, 1.0)]), // overlapping
    ] {
        let response = client
            .scale(scale(sealed, ranges))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            api::scale_response::ScaleStreamStatus::PreconditionFailed as i32
        );
    }
    let status = client
        .check_scale(api::ScaleStatusRequest {
            stream_info: Some(info("sc", "st")),
            epoch: 7,
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        api::scale_status_response::ScaleStatus::InvalidInput as i32
    );

    // Epochs, validity, segments at the head and between cuts.
    let epoch0 = client
        .get_epoch_segments(api::GetEpochSegmentsRequest {
            stream_info: Some(info("sc", "st")),
            epoch: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(epoch0.segment_ranges.len(), 2);
    let bad_epoch = client
        .get_epoch_segments(api::GetEpochSegmentsRequest {
            stream_info: Some(info("sc", "st")),
            epoch: 9,
        })
        .await
        .unwrap_err();
    assert_eq!(bad_epoch.code(), tonic::Code::InvalidArgument);
    let valid = |client: &mut Client, id: i64| {
        let mut client = client.clone();
        async move {
            client
                .is_segment_valid(segment_ref("sc", "st", id))
                .await
                .unwrap()
                .into_inner()
                .response
        }
    };
    assert!(valid(&mut client, 1).await);
    assert!(valid(&mut client, segment_id(2, 4)).await);
    assert!(!valid(&mut client, 0).await);
    let cut = |pairs: &[(i64, i64)]| pairs.iter().copied().collect::<HashMap<i64, i64>>();
    let cut_valid = |client: &mut Client, cut: HashMap<i64, i64>| {
        let mut client = client.clone();
        async move {
            client
                .is_stream_cut_valid(api::StreamCut {
                    stream_info: Some(info("sc", "st")),
                    cut,
                })
                .await
                .unwrap()
                .into_inner()
                .response
        }
    };
    assert!(cut_valid(&mut client, cut(&[(0, 0), (1, 10)])).await);
    assert!(cut_valid(&mut client, cut(&[(segment_id(2, 4), 0), (1, 0)])).await);
    assert!(!cut_valid(&mut client, cut(&[(0, 0)])).await);
    let head = client
        .get_segments(api::GetSegmentsRequest {
            stream_info: Some(info("sc", "st")),
            timestamp: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut head: Vec<(i64, i64)> = head
        .segments
        .into_iter()
        .map(|l| (l.segment_id.unwrap().segment_id, l.offset))
        .collect();
    head.sort();
    assert_eq!(head, vec![(0, 0), (1, 0)]);
    let between = client
        .get_segments_between(api::StreamCutRange {
            stream_info: Some(info("sc", "st")),
            from: HashMap::new(),
            to: HashMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut between: Vec<i64> = between.segments.into_iter().map(|s| s.segment_id).collect();
    between.sort();
    assert_eq!(
        between,
        vec![0, 1, segment_id(1, 2), segment_id(1, 3), segment_id(2, 4)]
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_moves_the_head_and_deletes_segments_before_the_cut() {
    let cluster = Cluster::start().await;
    let mut client = cluster.grpc().await;
    let at = cluster.segment_store_addr();
    create_scope(&mut client, "sc").await;
    create_stream(&mut client, fixed("sc", "st", 1)).await;
    // Ten events in segment 0, then a split, then ten in each successor.
    let event = frame_event(b"0123456789");
    let step = event.len() as i64;
    let write = |segment: &'static str, writer: u128| {
        let segments = cluster.segments.clone();
        let event = event.clone();
        async move {
            for n in 1..=10 {
                segments
                    .append(at, segment, writer, n, event.clone(), "")
                    .await
                    .unwrap();
            }
        }
    };
    write("sc/st/0.#epoch.0", 1).await;
    let response = client
        .scale(api::ScaleRequest {
            stream_info: Some(info("sc", "st")),
            sealed_segments: vec![0],
            new_key_ranges: vec![
                api::scale_request::KeyRangeEntry {
                    start: 0.0,
                    end: 0.5,
                },
                api::scale_request::KeyRangeEntry {
                    start: 0.5,
                    end: 1.0,
                },
            ],
            scale_timestamp: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status,
        api::scale_response::ScaleStreamStatus::Started as i32
    );
    await_scale(&mut client, "sc", "st", 0).await;
    write("sc/st/1.#epoch.1", 2).await;
    write("sc/st/2.#epoch.1", 3).await;

    // Truncate within segment 0 first: its start offset moves.
    let truncate = |cut: Vec<(i64, i64)>| api::StreamCut {
        stream_info: Some(info("sc", "st")),
        cut: cut.into_iter().collect(),
    };
    let status = client
        .truncate_stream(truncate(vec![(0, 3 * step)]))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::update_stream_status::Status::Success as i32);
    let info0 = cluster
        .segments
        .segment_info(at, "sc/st/0.#epoch.0", "")
        .await
        .unwrap();
    assert_eq!(info0.start_offset, 3 * step);

    // Then past the scale: segment 0 is deleted, the successors truncated.
    let (a, b) = (segment_id(1, 1), segment_id(1, 2));
    let status = client
        .truncate_stream(truncate(vec![(a, 2 * step), (b, 5 * step)]))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::update_stream_status::Status::Success as i32);
    let gone = cluster
        .segments
        .segment_info(at, "sc/st/0.#epoch.0", "")
        .await;
    assert!(
        matches!(gone, Err(ClientError::NoSuchSegment(_))),
        "{gone:?}"
    );
    assert_eq!(
        cluster
            .segments
            .segment_info(at, "sc/st/1.#epoch.1", "")
            .await
            .unwrap()
            .start_offset,
        2 * step
    );
    assert_eq!(
        cluster
            .segments
            .segment_info(at, "sc/st/2.#epoch.1", "")
            .await
            .unwrap()
            .start_offset,
        5 * step
    );
    // Readers see the data before the cut as gone.
    let read = cluster
        .segments
        .read_segment(at, "sc/st/1.#epoch.1", 0, 100, "")
        .await;
    assert!(
        matches!(read, Err(ClientError::Truncated { .. })),
        "{read:?}"
    );
    let read = cluster
        .segments
        .read_segment(at, "sc/st/1.#epoch.1", 2 * step, 1000, "")
        .await
        .unwrap();
    assert_eq!(read.data, Bytes::from(event.repeat(8)));
    // The head is the truncation cut.
    let head = client
        .get_segments(api::GetSegmentsRequest {
            stream_info: Some(info("sc", "st")),
            timestamp: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut head: Vec<(i64, i64)> = head
        .segments
        .into_iter()
        .map(|l| (l.segment_id.unwrap().segment_id, l.offset))
        .collect();
    head.sort();
    assert_eq!(head, vec![(a, 2 * step), (b, 5 * step)]);
    // Going back before the truncation is refused; an invalid cut is refused.
    let back = client
        .truncate_stream(truncate(vec![(0, 0)]))
        .await
        .unwrap_err();
    assert_eq!(back.code(), tonic::Code::FailedPrecondition);
    let invalid = client
        .truncate_stream(truncate(vec![(a, 0)]))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    let back = client
        .truncate_stream(truncate(vec![(a, step), (b, 5 * step)]))
        .await
        .unwrap_err();
    assert_eq!(back.code(), tonic::Code::FailedPrecondition);
    cluster.stop().await;
}

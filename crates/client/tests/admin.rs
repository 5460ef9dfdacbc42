//! Every administration operation against an in-process standalone, asserting the controller's
//! real state afterwards; retries against a controller that is down or comes up late; failover
//! between controllers; TLS through a terminating proxy.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::admin::*;
use common::Standalone;
use pravaha_client::config::{ClientConfig, RetryPolicy};
use pravaha_client::controller::types::{
    ContinuationToken, KeyRange, RetentionPolicy, ScaleStatus, ScalingPolicy, ScopedStream,
    SegmentId, SegmentWithRange, StreamConfiguration, StreamCut,
};
use pravaha_client::{ControllerClient, ControllerError, StreamManager};
use pravaha_controller::{
    Controller, ControllerConfig, ControllerServer, SegmentStoreNode, SegmentStores,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_created_listed_and_deleted() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    bounded(async {
        assert!(manager.create_scope("alpha").await.unwrap());
        assert!(!manager.create_scope("alpha").await.unwrap(), "exists");
        assert!(manager.create_scope("beta").await.unwrap());
        assert!(manager.scope_exists("alpha").await.unwrap());
        assert!(!manager.scope_exists("gamma").await.unwrap());
        let scopes: BTreeSet<String> = manager.list_scopes().await.unwrap().into_iter().collect();
        assert!(scopes.contains("alpha") && scopes.contains("beta"), "{scopes:?}");

        let error = manager.create_scope("bad scope").await.unwrap_err();
        assert!(
            matches!(&error, ControllerError::InvalidArgument { message } if message.contains("bad scope")),
            "{error:?}"
        );

        assert!(manager.delete_scope("beta").await.unwrap());
        assert!(!manager.delete_scope("beta").await.unwrap(), "already gone");
        assert!(!manager.scope_exists("beta").await.unwrap());
        let scopes = manager.list_scopes().await.unwrap();
        assert!(!scopes.contains(&"beta".to_owned()), "{scopes:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_keep_and_update_their_configuration() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    bounded(async {
        manager.create_scope("configs").await.unwrap();
        let stream = ScopedStream::new("configs", "events");
        let original = StreamConfiguration {
            scaling: ScalingPolicy::ByEventRate {
                target_events_per_second: 500,
                scale_factor: 2,
                min_segments: 2,
            },
            retention: RetentionPolicy::Time {
                min: Duration::from_secs(3600),
                max: None,
            },
            tags: vec!["blue".into(), "fast".into()],
            timestamp_aggregation_timeout: Duration::from_secs(2),
            rollover_size_bytes: 8 << 20,
        };
        assert!(manager.create_stream(&stream, &original).await.unwrap());
        assert!(!manager.create_stream(&stream, &original).await.unwrap());
        assert!(manager.stream_exists(&stream).await.unwrap());
        assert_eq!(
            manager.stream_configuration(&stream).await.unwrap(),
            original
        );
        assert_eq!(
            manager.stream_info(&stream).await.unwrap().segments.len(),
            2
        );

        let updated = StreamConfiguration {
            scaling: ScalingPolicy::ByByteRate {
                target_kib_per_second: 1024,
                scale_factor: 3,
                min_segments: 3,
            },
            retention: RetentionPolicy::Size {
                min_bytes: 1 << 20,
                max_bytes: Some(1 << 30),
            },
            tags: vec!["green".into()],
            ..StreamConfiguration::default()
        };
        manager.update_stream(&stream, &updated).await.unwrap();
        assert_eq!(
            manager.stream_configuration(&stream).await.unwrap(),
            updated
        );
        // Raising the minimum splits segments until it is reached.
        let info = manager.stream_info(&stream).await.unwrap();
        assert_eq!(info.segments.len(), 3, "{info:?}");

        let other = ScopedStream::new("configs", "other");
        let tagged = StreamConfiguration {
            tags: vec!["green".into()],
            ..StreamConfiguration::default()
        };
        manager.create_stream(&other, &tagged).await.unwrap();
        let green: BTreeSet<_> = manager
            .list_streams_with_tag("configs", "green")
            .await
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(green, BTreeSet::from([stream.clone(), other.clone()]));
        let blue = manager
            .list_streams_with_tag("configs", "blue")
            .await
            .unwrap();
        assert!(blue.is_empty(), "{blue:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    bounded(async {
        let nowhere = ScopedStream::new("nowhere", "s");
        let error = manager
            .create_stream(&nowhere, &StreamConfiguration::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ControllerError::ScopeNotFound { scope } if scope == "nowhere"),
            "{error:?}"
        );
        let error = manager.list_streams("nowhere").await.unwrap_err();
        assert!(matches!(error, ControllerError::ScopeNotFound { .. }), "{error:?}");

        manager.create_scope("refusals").await.unwrap();
        let missing = ScopedStream::new("refusals", "missing");
        let error = manager.stream_configuration(&missing).await.unwrap_err();
        assert!(
            matches!(&error, ControllerError::StreamNotFound { stream, .. } if stream == "missing"),
            "{error:?}"
        );
        let error = manager
            .update_stream(&missing, &StreamConfiguration::default())
            .await
            .unwrap_err();
        assert!(matches!(error, ControllerError::StreamNotFound { .. }), "{error:?}");
        assert!(!manager.stream_exists(&missing).await.unwrap());
        assert!(!manager.delete_stream(&missing).await.unwrap());
        assert!(!manager.seal_and_delete_stream(&missing).await.unwrap());

        let error = manager
            .create_stream(
                &ScopedStream::new("refusals", "bad/name"),
                &StreamConfiguration::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, ControllerError::InvalidArgument { .. }), "{error:?}");

        // The controller's own message comes back with an invalid configuration.
        let error = manager
            .create_stream(
                &ScopedStream::new("refusals", "none"),
                &StreamConfiguration::fixed(0),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ControllerError::InvalidArgument { message } if message.contains("at least 1")),
            "{error:?}"
        );
    })
    .await;
}

/// The ids of [`split_stream`]'s segments: two in epoch 0, the first split in two in epoch 1.
const FIRST: SegmentId = SegmentId(0);
const SECOND: SegmentId = SegmentId(1);
const LOW: SegmentId = SegmentId((1 << 32) | 2);
const HIGH: SegmentId = SegmentId((1 << 32) | 3);
const HALVES: [KeyRange; 2] = [
    KeyRange {
        low: 0.0,
        high: 0.25,
    },
    KeyRange {
        low: 0.25,
        high: 0.5,
    },
];

/// A new stream `scope/split` of two fixed segments whose first was split in two.
async fn split_stream(manager: &StreamManager, scope: &str) -> ScopedStream {
    manager.create_scope(scope).await.unwrap();
    let stream = ScopedStream::new(scope, "split");
    manager
        .create_stream(&stream, &StreamConfiguration::fixed(2))
        .await
        .unwrap();
    manager
        .scale_stream(&stream, &[FIRST], &HALVES)
        .await
        .unwrap();
    stream
}

fn ids_and_ranges(segments: &[SegmentWithRange]) -> Vec<(SegmentId, KeyRange)> {
    let mut found: Vec<_> = segments.iter().map(|s| (s.segment.id, s.range)).collect();
    found.sort_by(|a, b| a.1.low.total_cmp(&b.1.low));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_replaces_segments() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    let controller = manager.controller().clone();
    bounded(async {
        manager.create_scope("scaling").await.unwrap();
        let stream = ScopedStream::new("scaling", "orders");
        manager
            .create_stream(&stream, &StreamConfiguration::fixed(2))
            .await
            .unwrap();
        let before = controller.get_current_segments(&stream).await.unwrap();
        assert_eq!(
            ids_and_ranges(&before.segments),
            [
                (FIRST, KeyRange::new(0.0, 0.5)),
                (SECOND, KeyRange::new(0.5, 1.0))
            ]
        );
        assert_eq!(before.delegation_token, "", "auth is off");

        let created = manager
            .scale_stream(&stream, &[FIRST], &HALVES)
            .await
            .unwrap();
        assert_eq!(
            ids_and_ranges(&created),
            [(LOW, HALVES[0]), (HIGH, HALVES[1])]
        );
        assert_eq!(
            controller.check_scale(&stream, 0).await.unwrap(),
            ScaleStatus::Done
        );

        // The current segments have the new ranges; epoch 0 is still described.
        let after = manager.stream_info(&stream).await.unwrap().segments;
        assert_eq!(
            ids_and_ranges(&after),
            [
                (LOW, HALVES[0]),
                (HIGH, HALVES[1]),
                (SECOND, KeyRange::new(0.5, 1.0))
            ]
        );
        assert_eq!(
            controller
                .get_epoch_segments(&stream, 0)
                .await
                .unwrap()
                .segments,
            before.segments
        );

        // A scale naming a segment that is no longer active is refused.
        let error = manager
            .scale_stream(&stream, &[FIRST], &HALVES)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ControllerError::PreconditionFailed { .. }),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successors_and_locations_follow_a_scale() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    let controller = manager.controller().clone();
    bounded(async {
        let stream = split_stream(&manager, "successors").await;
        // Successors of the sealed segment, each naming it as predecessor.
        let successors = controller
            .get_successors(&stream.segment(FIRST))
            .await
            .unwrap();
        let found: Vec<(SegmentId, Vec<SegmentId>)> = successors
            .successors
            .iter()
            .map(|s| (s.segment.segment.id, s.predecessors.clone()))
            .collect();
        assert_eq!(found, [(LOW, vec![FIRST]), (HIGH, vec![FIRST])]);
        let none = controller
            .get_successors(&stream.segment(SECOND))
            .await
            .unwrap();
        assert!(none.successors.is_empty());
        assert!(!controller
            .is_segment_open(&stream.segment(FIRST))
            .await
            .unwrap());
        assert!(controller
            .is_segment_open(&stream.segment(LOW))
            .await
            .unwrap());

        // Every segment is served by the one segment store.
        let store = standalone.segment_store_addr();
        for id in [FIRST, SECOND, LOW, HIGH] {
            let address = controller.get_uri(&stream.segment(id)).await.unwrap();
            assert_eq!(address.port, store.port());
            assert_eq!(address.host, store.ip().to_string());
        }
        assert_eq!(controller.get_delegation_token(&stream).await.unwrap(), "");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_moves_the_head() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    let controller = manager.controller().clone();
    bounded(async {
        let stream = split_stream(&manager, "truncation").await;
        // Before truncation the head is epoch 0; the segments now are the current ones.
        let head = controller.get_segments_at_head(&stream).await.unwrap();
        assert_eq!(
            head.positions.into_iter().collect::<Vec<_>>(),
            [(FIRST, 0), (SECOND, 0)]
        );
        let now = controller
            .get_segments_at_time(&stream, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(
            now.positions.keys().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([SECOND, LOW, HIGH])
        );

        let mut cut = StreamCut::new(stream.clone());
        cut.positions.extend([(LOW, 0), (HIGH, 0), (SECOND, 0)]);
        assert!(controller.is_stream_cut_valid(&cut).await.unwrap());
        manager.truncate_stream(&cut).await.unwrap();
        assert_eq!(manager.stream_info(&stream).await.unwrap().head, cut);

        // A cut that does not cover the key space is refused with the controller's reason.
        let mut partial = StreamCut::new(stream.clone());
        partial.positions.insert(LOW, 0);
        assert!(!controller.is_stream_cut_valid(&partial).await.unwrap());
        let error = manager.truncate_stream(&partial).await.unwrap_err();
        assert!(
            matches!(error, ControllerError::InvalidArgument { .. }),
            "{error:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_streams_refuse_changes_and_only_they_are_deleted() {
    let standalone = Standalone::start().await;
    let manager = manager(&standalone);
    bounded(async {
        manager.create_scope("sealing").await.unwrap();
        let stream = ScopedStream::new("sealing", "done");
        let open = ScopedStream::new("sealing", "open");
        for s in [&stream, &open] {
            manager
                .create_stream(s, &StreamConfiguration::fixed(2))
                .await
                .unwrap();
        }

        let error = manager.delete_stream(&open).await.unwrap_err();
        assert!(
            matches!(&error, ControllerError::StreamNotSealed { stream, .. } if stream == "open"),
            "{error:?}"
        );
        let error = manager.delete_scope("sealing").await.unwrap_err();
        assert!(
            matches!(error, ControllerError::ScopeNotEmpty { .. }),
            "{error:?}"
        );

        manager.seal_stream(&stream).await.unwrap();
        manager.seal_stream(&stream).await.unwrap();
        let info = manager.stream_info(&stream).await.unwrap();
        assert!(info.is_sealed(), "{info:?}");
        let error = manager
            .update_stream(&stream, &StreamConfiguration::fixed(3))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ControllerError::StreamSealed { stream, .. } if stream == "done"),
            "{error:?}"
        );
        let error = manager
            .scale_stream(&stream, &[SegmentId::new(0, 0)], &[KeyRange::new(0.0, 0.5)])
            .await
            .unwrap_err();
        assert!(
            matches!(error, ControllerError::PreconditionFailed { .. }),
            "{error:?}"
        );
        let last = manager
            .controller()
            .get_successors(&stream.segment(SegmentId::new(0, 0)))
            .await
            .unwrap();
        assert!(last.successors.is_empty());

        assert!(manager.delete_stream(&stream).await.unwrap());
        assert!(!manager.stream_exists(&stream).await.unwrap());
        assert!(!manager.delete_stream(&stream).await.unwrap());
        assert!(manager.seal_and_delete_stream(&open).await.unwrap());
        assert!(manager.list_streams("sealing").await.unwrap().is_empty());
        assert!(manager.delete_scope("sealing").await.unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_are_complete_across_pages() {
    let standalone = Standalone::start().await;
    // A second controller over the same metadata that pages by 7, so 25 streams and their 25
    // mark streams take 8 pages.
    let stores = SegmentStores::new(
        standalone.store.container_count(),
        vec![SegmentStoreNode::all_containers(
            standalone.segment_store_addr(),
        )],
    )
    .unwrap();
    let mut paging = ControllerConfig::new(stores);
    paging.page_size = 7;
    let paging = Controller::start(paging).await.unwrap();
    let paging_server = ControllerServer::start(paging, &listen_on("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let paged =
        ControllerClient::new(config(&format!("tcp://{}", paging_server.grpc_addr()))).unwrap();
    let manager = manager(&standalone);
    bounded(async {
        manager.create_scope("many").await.unwrap();
        let mut expected = BTreeSet::new();
        for i in 0..25 {
            let stream = ScopedStream::new("many", format!("stream-{i:02}"));
            manager
                .create_stream(&stream, &StreamConfiguration::default())
                .await
                .unwrap();
            expected.insert(ScopedStream::new("many", format!("_MARKstream-{i:02}")));
            expected.insert(stream);
        }
        for scope in 0..10 {
            manager
                .create_scope(&format!("scope-{scope}"))
                .await
                .unwrap();
        }

        for client in [manager.controller(), &paged] {
            let listed = client.list_streams("many").await.unwrap();
            assert_eq!(listed.len(), 50, "no duplicates");
            assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), expected);
            let scopes = client.list_scopes().await.unwrap();
            assert_eq!(scopes.len(), 11, "{scopes:?}");
        }

        // Page by page: at most 7 each, then an empty page.
        let mut token = ContinuationToken::start();
        let mut sizes = Vec::new();
        loop {
            let page = paged.list_streams_page("many", &token).await.unwrap();
            sizes.push(page.items.len());
            if page.items.is_empty() {
                break;
            }
            token = page.next;
        }
        assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 1, 0]);
    })
    .await;
    paging_server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_controller_is_unavailable_after_the_configured_attempts() {
    let address = unused_port();
    let config = ClientConfig::builder()
        .controller_uri(format!("tcp://{address}"))
        .retry_policy(quick_retries(3))
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let manager = StreamManager::new(config).unwrap();
    let error = bounded(manager.list_scopes()).await.unwrap_err();
    assert!(
        matches!(error, ControllerError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_started_during_the_retry_window_is_reached() {
    let standalone = Standalone::start().await;
    let address = unused_port();
    let config = ClientConfig::builder()
        .controller_uri(format!("tcp://{address}"))
        .retry_policy(RetryPolicy {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            multiplier: 2.0,
            max_attempts: 100,
        })
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let manager = StreamManager::new(config).unwrap();
    let call = tokio::spawn(async move { manager.create_scope("late").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call is still retrying");
    let late = ControllerServer::start(standalone.controller.clone(), &listen_on(address))
        .await
        .expect("the reserved port is still free");
    let created = bounded(call).await.unwrap();
    assert!(
        created.unwrap(),
        "the scope was created through the late controller"
    );
    let direct = self::manager(&standalone);
    assert!(direct.scope_exists("late").await.unwrap());
    late.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_over_to_the_next_controller() {
    let standalone = Standalone::start().await;
    let down = unused_port();
    let uri = format!("tcp://{down},{}", standalone.grpc_addr());
    let manager = StreamManager::new(config(&uri)).unwrap();
    bounded(async {
        assert!(manager.create_scope("failover").await.unwrap());
        assert!(manager.scope_exists("failover").await.unwrap());
    })
    .await;
}

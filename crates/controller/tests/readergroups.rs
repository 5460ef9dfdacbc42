//! Reader groups and subscribers through the Controller gRPC API on 127.0.0.1, checked against
//! the controller's records and the segments on the segment store. Helpers and reader groups
//! here; subscribers in `readergroups/subscribers.rs`.

mod common;

#[path = "readergroups/subscribers.rs"]
mod subscribers;

use std::future::Future;

use common::{Cluster, TIMEOUT};
use pravaha_controller::readergroups::{GroupState, ReaderGroupRecord};
use pravaha_controller_api::v1 as api;
use pravaha_controller_api::ControllerServiceClient;
use pravaha_segment_client::ClientError;
use tonic::transport::Channel;

type Client = ControllerServiceClient<Channel>;

use api::create_reader_group_response::Status as Create;
use api::delete_reader_group_status::Status as Delete;
use api::reader_group_config_response::Status as Get;
use api::update_reader_group_response::Status as Update;
use api::update_subscriber_status::Status as Cut;

/// Bounds a whole test.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(4 * TIMEOUT, test)
        .await
        .expect("the test timed out")
}

fn info(scope: &str, stream: &str) -> api::StreamInfo {
    api::StreamInfo {
        scope: scope.into(),
        stream: stream.into(),
        access_operation: 0,
    }
}

fn cut(scope: &str, stream: &str, offsets: &[(i64, i64)]) -> api::StreamCut {
    api::StreamCut {
        stream_info: Some(info(scope, stream)),
        cut: offsets.iter().copied().collect(),
    }
}

/// A group of `sc` reading `streams` (in `sc`) from their heads.
fn group(name: &str, retention: i32, streams: &[&str]) -> api::ReaderGroupConfiguration {
    api::ReaderGroupConfiguration {
        scope: "sc".into(),
        reader_group_name: name.into(),
        group_refresh_time_millis: 3000,
        automatic_checkpoint_interval_millis: 30_000,
        max_outstanding_checkpoint_request: 3,
        retention_type: retention,
        generation: 0,
        reader_group_id: String::new(),
        starting_stream_cuts: streams.iter().map(|s| cut("sc", s, &[])).collect(),
        ending_stream_cuts: Vec::new(),
        rollover_size_bytes: 0,
    }
}

const NONE: i32 = 0;
const MANUAL: i32 = 1;

/// A cluster with scope `sc` and fixed streams `sc/<name>` of the given segment counts.
async fn cluster_with(streams: &[(&str, i32)]) -> (Cluster, Client) {
    let cluster = Cluster::start().await;
    let controller = &cluster.controller;
    controller.create_scope("sc").await.unwrap();
    for (stream, segments) in streams {
        let config = pravaha_controller::model::StreamConfig {
            scaling: pravaha_controller::model::ScalingPolicy::fixed(*segments),
            retention: None,
            tags: vec![],
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: 0,
        };
        assert!(controller
            .create_stream("sc", stream, config)
            .await
            .unwrap());
    }
    let client = cluster.grpc().await;
    (cluster, client)
}

async fn create(
    client: &mut Client,
    config: api::ReaderGroupConfiguration,
) -> (i32, Option<api::ReaderGroupConfiguration>) {
    let reply = client
        .create_reader_group(config)
        .await
        .unwrap()
        .into_inner();
    (reply.status, reply.config)
}

fn group_info(name: &str, id: &str) -> api::ReaderGroupInfo {
    api::ReaderGroupInfo {
        scope: "sc".into(),
        reader_group: name.into(),
        reader_group_id: id.into(),
        generation: 0,
    }
}

async fn subscribers(client: &mut Client, stream: &str) -> (i32, Vec<String>) {
    let reply = client
        .list_subscribers(info("sc", stream))
        .await
        .unwrap()
        .into_inner();
    (reply.status, reply.subscribers)
}

async fn update_cut(
    client: &mut Client,
    subscriber: &str,
    id: &str,
    generation: i64,
    stream_cut: api::StreamCut,
) -> i32 {
    client
        .update_subscriber_stream_cut(api::SubscriberStreamCut {
            subscriber: subscriber.into(),
            generation,
            reader_group_id: id.into(),
            stream_cut: Some(stream_cut),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

async fn record(cluster: &Cluster, name: &str) -> Option<ReaderGroupRecord> {
    cluster.controller.reader_group("sc", name).await.unwrap()
}

/// Whether the segment exists on the segment store.
async fn exists(cluster: &Cluster, segment: &str) -> bool {
    match cluster
        .segments
        .segment_info(cluster.segment_store_addr(), segment, "")
        .await
    {
        Ok(_) => true,
        Err(ClientError::NoSuchSegment(_)) => false,
        Err(error) => panic!("segment info of {segment}: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_groups_are_created_read_updated_and_deleted() {
    within(async {
        let (cluster, mut client) = cluster_with(&[("a", 2), ("b", 1)]).await;

        // Created with a fresh id at generation 0, with Java's `_RG` stream of one segment.
        let (status, config) = create(&mut client, group("rg", MANUAL, &["a", "b"])).await;
        assert_eq!(status, Create::Success as i32);
        let config = config.expect("the stored configuration");
        assert_eq!(config.generation, 0);
        assert_eq!(
            config.reader_group_id.len(),
            36,
            "{}",
            config.reader_group_id
        );
        let id = config.reader_group_id.clone();
        let stored = record(&cluster, "rg").await.expect("the group's record");
        assert_eq!(
            (stored.id.as_str(), &stored.state),
            (id.as_str(), &GroupState::Active)
        );
        assert_eq!(stored.config.starting_cuts.len(), 2);
        let state_stream = cluster.controller.stream("sc", "_RGrg").await.unwrap();
        assert_eq!(state_stream.current_segments().len(), 1);
        assert!(exists(&cluster, "sc/_RGrg/0.#epoch.0").await);

        // A subscriber of both streams, without a cut yet.
        for stream in ["a", "b"] {
            let (status, names) = subscribers(&mut client, stream).await;
            assert_eq!((status, names), (0, vec!["sc/rg".to_owned()]));
        }
        assert_eq!(
            cluster.controller.subscriber_cuts("sc", "a").await.unwrap(),
            vec![("sc/rg".to_owned(), Default::default())]
        );

        // Creating it again answers the stored configuration, whatever was asked.
        let (status, again) = create(&mut client, group("rg", NONE, &["b"])).await;
        assert_eq!(
            (status, again.as_ref()),
            (Create::Success as i32, Some(&config))
        );
        let reply = client
            .get_reader_group_config(group_info("rg", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (reply.status, reply.config),
            (Get::Success as i32, Some(config.clone()))
        );
        let reply = client
            .get_reader_group_config(group_info("missing", ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, Get::RgNotFound as i32);

        // Updates need the current generation and the group's id.
        let mut update = group("rg", MANUAL, &["a"]);
        update.reader_group_id = id.clone();
        let updated = |client: &mut Client, request: api::ReaderGroupConfiguration| {
            let mut client = client.clone();
            async move {
                let reply = client
                    .update_reader_group(request)
                    .await
                    .unwrap()
                    .into_inner();
                (reply.status, reply.generation)
            }
        };
        let stale = api::ReaderGroupConfiguration {
            generation: 5,
            ..update.clone()
        };
        assert_eq!(
            updated(&mut client, stale).await,
            (Update::InvalidConfig as i32, 5)
        );
        let other_id = api::ReaderGroupConfiguration {
            reader_group_id: "00000000-0000-0000-0000-000000000001".into(),
            ..update.clone()
        };
        assert_eq!(
            updated(&mut client, other_id).await.0,
            Update::InvalidConfig as i32
        );
        let no_streams = api::ReaderGroupConfiguration {
            starting_stream_cuts: Vec::new(),
            ..update.clone()
        };
        assert_eq!(
            updated(&mut client, no_streams).await.0,
            Update::InvalidConfig as i32
        );
        let missing = api::ReaderGroupConfiguration {
            reader_group_name: "missing".into(),
            ..update.clone()
        };
        assert_eq!(
            updated(&mut client, missing).await.0,
            Update::RgNotFound as i32
        );

        // Dropping stream b unsubscribes from it; a's subscriber takes generation 1.
        assert_eq!(
            updated(&mut client, update.clone()).await,
            (Update::Success as i32, 1)
        );
        assert_eq!(record(&cluster, "rg").await.unwrap().config.generation, 1);
        assert_eq!(subscribers(&mut client, "b").await, (0, vec![]));
        assert_eq!(
            subscribers(&mut client, "a").await,
            (0, vec!["sc/rg".to_owned()])
        );
        let head = cut("sc", "a", &[(0, 0), (1, 0)]);
        assert_eq!(
            update_cut(&mut client, "sc/rg", &id, 0, head.clone()).await,
            Cut::GenerationMismatch as i32
        );
        assert_eq!(
            update_cut(&mut client, "sc/rg", &id, 1, head).await,
            Cut::Success as i32
        );
        // No longer a subscriber at all (generation 1 → 2).
        let not_subscriber = api::ReaderGroupConfiguration {
            retention_type: NONE,
            generation: 1,
            ..update.clone()
        };
        assert_eq!(
            updated(&mut client, not_subscriber).await,
            (Update::Success as i32, 2)
        );
        assert_eq!(subscribers(&mut client, "a").await, (0, vec![]));

        // Deletion needs the group's id; it takes the `_RG` stream along.
        let delete = |client: &mut Client, id: &str| {
            let mut client = client.clone();
            let request = group_info("rg", id);
            async move {
                client
                    .delete_reader_group(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .status
            }
        };
        let other = "00000000-0000-0000-0000-000000000001";
        assert_eq!(delete(&mut client, other).await, Delete::RgNotFound as i32);
        assert!(record(&cluster, "rg").await.is_some());
        assert_eq!(delete(&mut client, &id).await, Delete::Success as i32);
        assert!(record(&cluster, "rg").await.is_none());
        assert!(!exists(&cluster, "sc/_RGrg/0.#epoch.0").await);
        assert!(cluster.controller.stream("sc", "_RGrg").await.is_err());
        assert_eq!(delete(&mut client, &id).await, Delete::RgNotFound as i32);
        let reply = client
            .get_reader_group_config(group_info("rg", &id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, Get::RgNotFound as i32);

        // The name is free again; an explicit id and generation are kept.
        let mut explicit = group("rg", NONE, &["a"]);
        explicit.reader_group_id = "123e4567-e89b-12d3-a456-426614174000".into();
        explicit.generation = 7;
        let (status, config) = create(&mut client, explicit.clone()).await;
        assert_eq!((status, config), (Create::Success as i32, Some(explicit)));
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_group_requests_are_checked_as_pravega_does() {
    within(async {
        let (cluster, mut client) = cluster_with(&[("a", 1)]).await;
        for bad in ["bad name", "_internal", "a/b", ""] {
            let (status, config) = create(&mut client, group(bad, NONE, &["a"])).await;
            assert_eq!(
                (status, config),
                (Create::InvalidRgName as i32, None),
                "{bad:?}"
            );
        }
        let elsewhere = api::ReaderGroupConfiguration {
            scope: "missing".into(),
            ..group("rg", NONE, &["a"])
        };
        assert_eq!(
            create(&mut client, elsewhere).await.0,
            Create::ScopeNotFound as i32
        );

        // Configurations that do not validate are refused outright.
        let invalid = [
            group("rg", NONE, &[]),
            group("rg", 7, &["a"]),
            api::ReaderGroupConfiguration {
                max_outstanding_checkpoint_request: 0,
                ..group("rg", NONE, &["a"])
            },
            api::ReaderGroupConfiguration {
                reader_group_id: "not-a-uuid".into(),
                ..group("rg", NONE, &["a"])
            },
            group("rg", NONE, &["a", "a"]),
            api::ReaderGroupConfiguration {
                ending_stream_cuts: vec![cut("sc", "other", &[(0, 1)])],
                ..group("rg", NONE, &["a"])
            },
        ];
        for config in invalid {
            let error = client.create_reader_group(config).await.unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
        }
        // A subscriber reads existing streams only; a plain group is not checked.
        let error = client
            .create_reader_group(group("rg", MANUAL, &["a", "missing"]))
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
        assert_eq!(
            create(&mut client, group("rg", NONE, &["a", "missing"]))
                .await
                .0,
            Create::Success as i32
        );

        // The scope is not empty while it has a group (its `_RG` stream and its record).
        let status = client
            .delete_scope(api::ScopeInfo { scope: "sc".into() })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            api::delete_scope_status::Status::ScopeNotEmpty as i32
        );
        // A recursive deletion removes the groups (and their `_RG` streams) first.
        cluster
            .controller
            .delete_groups_and_tables_in("sc")
            .await
            .unwrap();
        assert!(record(&cluster, "rg").await.is_none());
        assert!(!exists(&cluster, "sc/_RGrg/0.#epoch.0").await);
        cluster.controller.seal_stream("sc", "a").await.unwrap();
        assert!(cluster.controller.delete_stream("sc", "a").await.unwrap());
        assert!(cluster.controller.delete_scope("sc").await.unwrap());
        cluster.stop().await;
    })
    .await;
}

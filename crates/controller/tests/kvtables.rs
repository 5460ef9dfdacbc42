//! Key-Value Tables through the Controller gRPC API on 127.0.0.1, checked against the
//! controller's records and the table segments on the segment store; and a creation cut short
//! (as by a crash) that a restarted controller completes.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{Cluster, TIMEOUT};
use pravaha_controller::kvtables::KeyValueTableConfig;
use pravaha_controller::{Controller, ControllerConfig, SegmentStoreNode, SegmentStores};
use pravaha_controller_api::v1 as api;
use pravaha_controller_api::ControllerServiceClient;
use pravaha_segment_client::{ClientError, TableSegmentInfo};
use tonic::transport::Channel;

type Client = ControllerServiceClient<Channel>;

use api::create_key_value_table_status::Status as Create;
use api::delete_kv_table_status::Status as Delete;
use api::key_value_table_config_response::Status as Get;
use api::kv_tables_in_scope_response::Status as List;

/// Bounds a whole test.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(4 * TIMEOUT, test)
        .await
        .expect("the test timed out")
}

fn table(name: &str, partitions: i32, primary: i32, secondary: i32) -> api::KeyValueTableConfig {
    api::KeyValueTableConfig {
        scope: "sc".into(),
        kvt_name: name.into(),
        partition_count: partitions,
        primary_key_length: primary,
        secondary_key_length: secondary,
        rollover_size_bytes: 0,
    }
}

fn table_ref(name: &str) -> api::KeyValueTableInfo {
    api::KeyValueTableInfo {
        scope: "sc".into(),
        kvt_name: name.into(),
    }
}

async fn create(client: &mut Client, config: api::KeyValueTableConfig) -> i32 {
    client
        .create_key_value_table(config)
        .await
        .unwrap()
        .into_inner()
        .status
}

async fn delete(client: &mut Client, name: &str) -> i32 {
    client
        .delete_key_value_table(table_ref(name))
        .await
        .unwrap()
        .into_inner()
        .status
}

/// The table segment's info, `None` if it does not exist.
async fn partition(cluster: &Cluster, segment: &str) -> Option<TableSegmentInfo> {
    match cluster
        .segments
        .table_segment_info(cluster.segment_store_addr(), segment, "")
        .await
    {
        Ok(info) => Some(info),
        Err(ClientError::NoSuchSegment(_)) => None,
        Err(error) => panic!("table segment info of {segment}: {error}"),
    }
}

/// Every page of the scope's tables, asserting each holds at most `page_size`.
async fn list_all(client: &mut Client, scope: &str, page_size: usize) -> Vec<String> {
    let mut token = String::new();
    let mut names = Vec::new();
    for _ in 0..20 {
        let page = client
            .list_key_value_tables_in_scope(api::KvTablesInScopeRequest {
                scope: Some(api::ScopeInfo {
                    scope: scope.into(),
                }),
                continuation_token: Some(api::ContinuationToken {
                    token: token.clone(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.status, List::Success as i32);
        if page.kvtables.is_empty() {
            return names;
        }
        assert!(page.kvtables.len() <= page_size);
        names.extend(page.kvtables.into_iter().map(|t| t.kvt_name));
        token = page
            .continuation_token
            .expect("a token with every page")
            .token;
    }
    panic!("the listing did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_tables_are_created_listed_and_deleted() {
    within(async {
        // A page size of 2 makes the listing span pages.
        let cluster = Cluster::start_with(|config| config.page_size = 2).await;
        cluster.controller.create_scope("sc").await.unwrap();
        let mut client = cluster.grpc().await;

        // Three fixed-key partitions of 4 + 2 bytes, tiling the key space.
        assert_eq!(
            create(&mut client, table("t1", 3, 4, 2)).await,
            Create::Success as i32
        );
        for number in 0..3 {
            let info = partition(&cluster, &format!("sc/t1_kvtable/{number}.#epoch.0"))
                .await
                .expect("a partition");
            assert_eq!((info.key_length, info.entry_count), (6, 0));
        }
        assert!(partition(&cluster, "sc/t1_kvtable/3.#epoch.0")
            .await
            .is_none());
        let record = cluster
            .controller
            .key_value_table("sc", "t1")
            .await
            .unwrap()
            .unwrap();
        let expected = KeyValueTableConfig {
            partition_count: 3,
            primary_key_length: 4,
            secondary_key_length: 2,
            rollover_size_bytes: 0,
        };
        assert_eq!(record.config, expected);
        let ranges = client
            .get_current_segments_key_value_table(table_ref("t1"))
            .await
            .unwrap()
            .into_inner()
            .segment_ranges;
        let ranges: Vec<(i64, String, f64, f64)> = ranges
            .into_iter()
            .map(|r| {
                let id = r.segment_id.unwrap();
                (
                    id.segment_id,
                    id.stream_info.unwrap().stream,
                    r.min_key,
                    r.max_key,
                )
            })
            .collect();
        assert_eq!(ranges.len(), 3);
        assert_eq!((ranges[0].0, ranges[0].2), (0, 0.0));
        assert_eq!((ranges[2].0, ranges[2].3), (2, 1.0));
        assert!(ranges.windows(2).all(|pair| pair[0].3 == pair[1].2));
        assert!(ranges.iter().all(|r| r.1 == "t1"));
        let reply = client
            .get_key_value_table_configuration(table_ref("t1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, Get::Success as i32);
        assert_eq!(reply.config, Some(table("t1", 3, 4, 2)));
        // Clients find the partitions through the pseudo-stream `t1_kvtable`.
        let uri = client
            .get_uri(api::SegmentId {
                stream_info: Some(api::StreamInfo {
                    scope: "sc".into(),
                    stream: "t1_kvtable".into(),
                    access_operation: 0,
                }),
                segment_id: 2,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(uri.port, i32::from(cluster.segment_store_addr().port()));

        // A second create of the name is TABLE_EXISTS, whatever its configuration.
        assert_eq!(
            create(&mut client, table("t1", 3, 4, 2)).await,
            Create::TableExists as i32
        );
        assert_eq!(
            create(&mut client, table("t1", 1, 8, 0)).await,
            Create::TableExists as i32
        );

        for name in ["t5", "t3", "t2", "t4"] {
            assert_eq!(
                create(&mut client, table(name, 1, 1, 0)).await,
                Create::Success as i32
            );
        }
        assert_eq!(
            list_all(&mut client, "sc", 2).await,
            ["t1", "t2", "t3", "t4", "t5"]
        );

        // Deleted with its segments; then it is not found anywhere.
        assert_eq!(delete(&mut client, "t1").await, Delete::Success as i32);
        for number in 0..3 {
            let segment = format!("sc/t1_kvtable/{number}.#epoch.0");
            assert!(partition(&cluster, &segment).await.is_none(), "{segment}");
        }
        assert!(cluster
            .controller
            .key_value_table("sc", "t1")
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            delete(&mut client, "t1").await,
            Delete::TableNotFound as i32
        );
        let reply = client
            .get_key_value_table_configuration(table_ref("t1"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (reply.status, reply.config),
            (Get::TableNotFound as i32, None)
        );
        let error = client
            .get_current_segments_key_value_table(table_ref("t1"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
        assert_eq!(
            list_all(&mut client, "sc", 2).await,
            ["t2", "t3", "t4", "t5"]
        );
        // The name can be used again.
        assert_eq!(
            create(&mut client, table("t1", 1, 2, 2)).await,
            Create::Success as i32
        );
        assert_eq!(
            partition(&cluster, "sc/t1_kvtable/0.#epoch.0")
                .await
                .unwrap()
                .key_length,
            4
        );
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_table_requests_are_checked_as_pravega_does() {
    within(async {
        let cluster = Cluster::start().await;
        cluster.controller.create_scope("sc").await.unwrap();
        let mut client = cluster.grpc().await;
        for bad in ["bad name", "_internal", "a/b", ""] {
            assert_eq!(
                create(&mut client, table(bad, 1, 4, 0)).await,
                Create::InvalidTableName as i32,
                "{bad:?}"
            );
        }
        let elsewhere = api::KeyValueTableConfig {
            scope: "missing".into(),
            ..table("t", 1, 4, 0)
        };
        assert_eq!(
            create(&mut client, elsewhere).await,
            Create::ScopeNotFound as i32
        );
        let invalid = [
            table("t", 0, 4, 0),
            table("t", 1, 0, 0),
            table("t", 1, 4, -1),
            table("t", 1, 8192, 1),
            api::KeyValueTableConfig {
                rollover_size_bytes: -1,
                ..table("t", 1, 4, 0)
            },
        ];
        for config in invalid {
            let error = client.create_key_value_table(config).await.unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
        }
        assert!(cluster
            .controller
            .key_value_table("sc", "t")
            .await
            .unwrap()
            .is_none());
        let page = client
            .list_key_value_tables_in_scope(api::KvTablesInScopeRequest {
                scope: Some(api::ScopeInfo {
                    scope: "missing".into(),
                }),
                continuation_token: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (page.status, page.kvtables.len()),
            (List::ScopeNotFound as i32, 0)
        );
        assert_eq!(
            delete(&mut client, "nothing").await,
            Delete::TableNotFound as i32
        );

        // A Rust client's `Table` of that name holds the segment: the name is taken.
        cluster
            .segments
            .create_table_segment(
                cluster.segment_store_addr(),
                "sc/taken_kvtable/0.#epoch.0",
                "",
            )
            .await
            .unwrap();
        assert_eq!(
            create(&mut client, table("taken", 2, 4, 0)).await,
            Create::TableExists as i32
        );
        assert!(cluster
            .controller
            .key_value_table("sc", "taken")
            .await
            .unwrap()
            .is_none());
        assert!(partition(&cluster, "sc/taken_kvtable/1.#epoch.0")
            .await
            .is_none());

        // A scope with a Key-Value Table is not empty.
        assert_eq!(
            create(&mut client, table("t", 1, 4, 0)).await,
            Create::Success as i32
        );
        let delete_scope = |client: &mut Client| {
            let mut client = client.clone();
            async move {
                client
                    .delete_scope(api::ScopeInfo { scope: "sc".into() })
                    .await
                    .unwrap()
                    .into_inner()
                    .status
            }
        };
        use api::delete_scope_status::Status as Scope;
        assert_eq!(delete_scope(&mut client).await, Scope::ScopeNotEmpty as i32);
        assert!(cluster.controller.scope_exists("sc").await.unwrap());
        assert_eq!(delete(&mut client, "t").await, Delete::Success as i32);
        assert_eq!(delete_scope(&mut client).await, Scope::Success as i32);
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_cut_short_is_completed_by_a_restarted_controller() {
    within(async {
        // This controller's workflows stop after their first segment-store step.
        let cluster =
            Cluster::start_with(|config| config.pause_workflow_after_steps = Some(1)).await;
        cluster.controller.create_scope("sc").await.unwrap();
        let config = KeyValueTableConfig {
            partition_count: 3,
            primary_key_length: 8,
            secondary_key_length: 0,
            rollover_size_bytes: 0,
        };
        let stopped = cluster.controller.clone();
        let creation =
            tokio::spawn(async move { stopped.create_key_value_table("sc", "t", config).await });
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while partition(&cluster, "sc/t_kvtable/0.#epoch.0")
            .await
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the first partition never appeared"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The controller "crashes" with one partition of three created.
        tokio::time::sleep(Duration::from_millis(50)).await;
        creation.abort();
        assert!(creation.await.unwrap_err().is_cancelled());
        assert!(partition(&cluster, "sc/t_kvtable/1.#epoch.0")
            .await
            .is_none());
        assert!(cluster
            .controller
            .key_value_table("sc", "t")
            .await
            .unwrap()
            .is_none());

        // A controller started on the same metadata completes it.
        let stores = SegmentStores::new(
            cluster.store.container_count(),
            vec![SegmentStoreNode::all_containers(
                cluster.segment_store_addr(),
            )],
        )
        .unwrap();
        let restarted = Controller::start(ControllerConfig::new(stores))
            .await
            .unwrap();
        restarted.drive_pending_groups_and_tables().await.unwrap();
        let record = restarted
            .key_value_table("sc", "t")
            .await
            .unwrap()
            .expect("the table");
        assert_eq!(record.config, config);
        for number in 0..3 {
            let info = partition(&cluster, &format!("sc/t_kvtable/{number}.#epoch.0"))
                .await
                .expect("a partition");
            assert_eq!(info.key_length, 8);
        }
        // A retried create finds it there.
        assert!(!restarted
            .create_key_value_table("sc", "t", config)
            .await
            .unwrap());
        cluster.stop().await;
    })
    .await;
}

//! Transactions through the gRPC API: create, write, commit, abort, ping, lease expiry, commits
//! after the stream scaled (rolling), batched concurrent commits.

mod common;

use std::time::Duration;

use common::{Cluster, TIMEOUT};
use pravaha_controller_api::v1 as api;
use pravaha_controller_api::ControllerServiceClient;
use pravaha_segment_client::{frame_event, ClientError};
use pravaha_types::{qualified_segment_name, segment_epoch, transaction_segment_name};
use tonic::transport::Channel;

type Client = ControllerServiceClient<Channel>;

fn info(stream: &str) -> api::StreamInfo {
    api::StreamInfo {
        scope: "sc".into(),
        stream: stream.into(),
        access_operation: 0,
    }
}

async fn setup(cluster: &Cluster, stream: &str, segments: i32) -> Client {
    let mut client = cluster.grpc().await;
    client
        .create_scope(api::ScopeInfo { scope: "sc".into() })
        .await
        .unwrap();
    let status = client
        .create_stream(api::StreamConfig {
            stream_info: Some(info(stream)),
            scaling_policy: Some(api::ScalingPolicy {
                min_num_segments: segments,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, 0);
    client
}

fn to_u128(id: &api::TxnId) -> u128 {
    (u128::from(id.high_bits as u64) << 64) | u128::from(id.low_bits as u64)
}

async fn create_txn(client: &mut Client, stream: &str, lease: i64) -> (api::TxnId, Vec<i64>) {
    let response = client
        .create_transaction(api::CreateTxnRequest {
            stream_info: Some(info(stream)),
            lease,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let segments = response
        .active_segments
        .iter()
        .map(|r| r.segment_id.as_ref().unwrap().segment_id)
        .collect();
    (response.txn_id.unwrap(), segments)
}

fn txn_request(stream: &str, id: &api::TxnId) -> api::TxnRequest {
    api::TxnRequest {
        stream_info: Some(info(stream)),
        txn_id: Some(*id),
        writer_id: "12345".into(),
        timestamp: 0,
    }
}

async fn state(client: &mut Client, stream: &str, id: &api::TxnId) -> i32 {
    client
        .check_transaction_state(txn_request(stream, id))
        .await
        .unwrap()
        .into_inner()
        .state
}

/// Appends `events` to the transaction's segment beside `parent`.
async fn write_txn(cluster: &Cluster, stream: &str, parent: i64, id: u128, events: &[String]) {
    let segment = transaction_segment_name("sc", stream, parent, id);
    for (n, event) in events.iter().enumerate() {
        cluster
            .segments
            .append(
                cluster.segment_store_addr(),
                &segment,
                7,
                n as i64 + 1,
                frame_event(event.as_bytes()),
                "",
            )
            .await
            .unwrap();
    }
}

async fn events_of(cluster: &Cluster, segment: &str) -> Vec<String> {
    common::segment_events(&cluster.segments, cluster.segment_store_addr(), segment).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_appear_after_earlier_data_and_aborted_ones_never() {
    let cluster = Cluster::start().await;
    let mut client = setup(&cluster, "st", 2).await;
    use api::txn_state::State;
    let at = cluster.segment_store_addr();
    // Some data in the stream before the transaction.
    let parent0 = qualified_segment_name("sc", "st", 0);
    cluster
        .segments
        .append(at, &parent0, 1, 1, frame_event(b"before"), "")
        .await
        .unwrap();

    let (id, segments) = create_txn(&mut client, "st", 30_000).await;
    assert_eq!(segments, vec![0, 1]);
    assert!(
        id.low_bits >= 0,
        "the Rust client needs a non-negative low half"
    );
    assert_eq!(
        (id.high_bits as u64) >> 32,
        0,
        "the epoch is in the top bits"
    );
    let txn = to_u128(&id);
    assert_eq!(state(&mut client, "st", &id).await, State::Open as i32);
    let txn_events: Vec<String> = (0..5).map(|n| format!("txn event {n}")).collect();
    write_txn(&cluster, "st", 0, txn, &txn_events).await;
    // Not visible before the commit.
    assert_eq!(events_of(&cluster, &parent0).await, vec!["before"]);
    let ping = client
        .ping_transaction(api::PingTxnRequest {
            stream_info: Some(info("st")),
            txn_id: Some(id),
            lease: 30_000,
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(ping, api::ping_txn_status::Status::Ok as i32);

    let status = client
        .commit_transaction(txn_request("st", &id))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::txn_status::Status::Success as i32);
    assert_eq!(state(&mut client, "st", &id).await, State::Committed as i32);
    let mut expected = vec!["before".to_owned()];
    expected.extend(txn_events.clone());
    assert_eq!(events_of(&cluster, &parent0).await, expected);
    let gone = cluster
        .segments
        .segment_info(at, &transaction_segment_name("sc", "st", 0, txn), "")
        .await;
    assert!(
        matches!(gone, Err(ClientError::NoSuchSegment(_))),
        "{gone:?}"
    );
    // A retried commit (lost reply) succeeds; pings answer COMMITTED, not an error.
    let status = client
        .commit_transaction(txn_request("st", &id))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::txn_status::Status::Success as i32);
    let ping = client
        .ping_transaction(api::PingTxnRequest {
            stream_info: Some(info("st")),
            txn_id: Some(id),
            lease: 30_000,
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(ping, api::ping_txn_status::Status::Committed as i32);

    // Abort: the events never appear, the segments go, a later commit fails.
    let (aborted, _) = create_txn(&mut client, "st", 30_000).await;
    write_txn(&cluster, "st", 1, to_u128(&aborted), &["never".into()]).await;
    let status = client
        .abort_transaction(txn_request("st", &aborted))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::txn_status::Status::Success as i32);
    let status = client
        .abort_transaction(txn_request("st", &aborted))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        api::txn_status::Status::Success as i32,
        "abort is idempotent"
    );
    assert_eq!(
        state(&mut client, "st", &aborted).await,
        State::Aborted as i32
    );
    let status = client
        .commit_transaction(txn_request("st", &aborted))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::txn_status::Status::Failure as i32);
    assert!(events_of(&cluster, &qualified_segment_name("sc", "st", 1))
        .await
        .is_empty());
    let gone = cluster
        .segments
        .segment_info(
            at,
            &transaction_segment_name("sc", "st", 1, to_u128(&aborted)),
            "",
        )
        .await;
    assert!(
        matches!(gone, Err(ClientError::NoSuchSegment(_))),
        "{gone:?}"
    );

    // Unknown transactions.
    let unknown = api::TxnId {
        high_bits: 0,
        low_bits: 42,
    };
    assert_eq!(
        state(&mut client, "st", &unknown).await,
        State::Unknown as i32
    );
    let status = client
        .commit_transaction(txn_request("st", &unknown))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::txn_status::Status::TransactionNotFound as i32);
    let completed = client
        .list_completed_transactions(api::ListCompletedTxnRequest {
            stream_info: Some(info("st")),
        })
        .await
        .unwrap()
        .into_inner()
        .response;
    assert_eq!(completed.len(), 2);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_lease_runs_out_is_aborted() {
    let cluster = Cluster::start_with(|config| {
        config.transaction_sweep_interval = Duration::from_millis(50);
    })
    .await;
    let mut client = setup(&cluster, "st", 1).await;
    let (id, _) = create_txn(&mut client, "st", 100).await;
    write_txn(&cluster, "st", 0, to_u128(&id), &["lost".into()]).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while state(&mut client, "st", &id).await != api::txn_state::State::Aborted as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired transaction was not aborted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = cluster
        .segments
        .segment_info(
            cluster.segment_store_addr(),
            &transaction_segment_name("sc", "st", 0, to_u128(&id)),
            "",
        )
        .await;
    assert!(
        matches!(gone, Err(ClientError::NoSuchSegment(_))),
        "{gone:?}"
    );
    assert!(events_of(&cluster, &qualified_segment_name("sc", "st", 0))
        .await
        .is_empty());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_after_the_stream_scaled_rolls_the_transaction_forward() {
    let cluster = Cluster::start().await;
    let mut client = setup(&cluster, "st", 2).await;
    let (id, _) = create_txn(&mut client, "st", 60_000).await;
    let txn = to_u128(&id);
    write_txn(&cluster, "st", 0, txn, &["t0-a".into(), "t0-b".into()]).await;
    write_txn(&cluster, "st", 1, txn, &["t1-a".into()]).await;
    // Scale: split segment 0 while the transaction is open.
    let response = client
        .scale(api::ScaleRequest {
            stream_info: Some(info("st")),
            sealed_segments: vec![0],
            new_key_ranges: vec![
                api::scale_request::KeyRangeEntry {
                    start: 0.0,
                    end: 0.25,
                },
                api::scale_request::KeyRangeEntry {
                    start: 0.25,
                    end: 0.5,
                },
            ],
            scale_timestamp: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.status, 0);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let status = client
            .check_scale(api::ScaleStatusRequest {
                stream_info: Some(info("st")),
                epoch: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        if status == api::scale_status_response::ScaleStatus::Success as i32 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let status = client
        .commit_transaction(txn_request("st", &id))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, api::txn_status::Status::Success as i32);

    // Two more epochs: copies of epoch 0 holding the transaction (sealed), then copies of epoch 1.
    let record = cluster.controller.stream("sc", "st").await.unwrap();
    assert_eq!(record.epochs.len(), 4);
    let copies = &record.epochs[2].segments;
    assert_eq!(copies.len(), 2);
    let at = cluster.segment_store_addr();
    let first_copy = qualified_segment_name("sc", "st", copies[0]);
    assert_eq!(events_of(&cluster, &first_copy).await, vec!["t0-a", "t0-b"]);
    assert!(
        cluster
            .segments
            .segment_info(at, &first_copy, "")
            .await
            .unwrap()
            .sealed
    );
    assert_eq!(
        events_of(&cluster, &qualified_segment_name("sc", "st", copies[1])).await,
        vec!["t1-a"]
    );
    // The current epoch has epoch 1's ranges again, in new segments.
    let current = record.current_segments();
    let epoch1 = record.epoch_segments(1).unwrap();
    assert_eq!(current.len(), epoch1.len());
    for (now, before) in current.iter().zip(&epoch1) {
        assert_eq!(
            (now.key_start, now.key_end),
            (before.key_start, before.key_end)
        );
        assert_eq!(segment_epoch(now.id), 3);
    }
    // Successors lead through the copies: epoch 1 → copies → current.
    let successors = record.successors(1).unwrap();
    assert!(successors.iter().all(|(s, _)| segment_epoch(s.id) == 2));
    let successors = record.successors(copies[0]).unwrap();
    assert!(successors.iter().all(|(s, _)| segment_epoch(s.id) == 3));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_and_aborts_land_whole_once_and_in_commit_order() {
    let cluster = Cluster::start().await;
    let mut client = setup(&cluster, "st", 1).await;
    let mut txns = Vec::new();
    for t in 0..12 {
        let (id, _) = create_txn(&mut client, "st", 60_000).await;
        let events: Vec<String> = (0..3).map(|n| format!("txn {t} event {n}")).collect();
        write_txn(&cluster, "st", 0, to_u128(&id), &events).await;
        txns.push((t, id));
    }
    // Every third transaction is aborted, the others committed. First 11, 10 and 9 one after
    // the other (11 aborted): a commit that returned comes before every later one. Then the
    // rest all at the same time.
    let finish = |client: &mut Client, t: usize, id: api::TxnId| {
        let mut client = client.clone();
        async move {
            let status = if t % 3 == 2 {
                client.abort_transaction(txn_request("st", &id)).await
            } else {
                client.commit_transaction(txn_request("st", &id)).await
            };
            assert_eq!(status.unwrap().into_inner().status, 0, "transaction {t}");
        }
    };
    for (t, id) in txns.iter().rev().take(3) {
        finish(&mut client, *t, *id).await;
    }
    let mut tasks = Vec::new();
    for (t, id) in txns.iter().take(9) {
        tasks.push(tokio::spawn(finish(&mut client, *t, *id)));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = events_of(&cluster, &qualified_segment_name("sc", "st", 0)).await;
    assert_eq!(events.len(), 8 * 3);
    // Each committed transaction's events are contiguous (it appeared at once) and complete;
    // aborted ones never appear.
    let mut order = Vec::new();
    for chunk in events.chunks(3) {
        let t: usize = chunk[0].split(' ').nth(1).unwrap().parse().unwrap();
        assert_ne!(t % 3, 2, "an aborted transaction's events appeared");
        let expected: Vec<String> = (0..3).map(|n| format!("txn {t} event {n}")).collect();
        assert_eq!(chunk, expected.as_slice());
        order.push(t);
    }
    // The sequential commits in their order, then the concurrent ones, each once.
    assert_eq!(order[..2], [10, 9]);
    let mut rest = order[2..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, vec![0, 1, 3, 4, 6, 7]);
    for (t, id) in &txns {
        let expected = if t % 3 == 2 {
            api::txn_state::State::Aborted
        } else {
            api::txn_state::State::Committed
        };
        assert_eq!(state(&mut client, "st", id).await, expected as i32);
    }
    cluster.stop().await;
}

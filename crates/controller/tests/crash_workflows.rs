//! Crash safety of the other workflows: stream creation and deletion, transaction commits
//! (simple and rolling), Key-Value Table creation and reader-group creation. Each is stopped
//! after some segment-store steps in a child controller process, which is killed with SIGKILL;
//! a restarted controller finishes the workflow.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use pravaha_controller::kvtables::KeyValueTableConfig;
use pravaha_controller::model::{ScalingPolicy, StreamConfig};
use pravaha_controller::readergroups::{GroupRetention, ReaderGroupConfig};
use pravaha_controller::{
    Controller, ControllerConfig, SegmentStoreNode, SegmentStores, TxnStatus,
};
use pravaha_segment_client::{frame_event, ClientError};
use pravaha_types::{qualified_segment_name, transaction_segment_name};
use serde_json::Value;

const CHILD_TEST: &str = "workflow_child";
const ADDR_VAR: &str = "PRAVAHA_WORKFLOW_SEGMENT_STORE";
const OP_VAR: &str = "PRAVAHA_WORKFLOW_OP";
const PAUSE_VAR: &str = "PRAVAHA_WORKFLOW_PAUSE_AFTER";
const TXN_VAR: &str = "PRAVAHA_WORKFLOW_TXN";

fn stores(addr: std::net::SocketAddr) -> SegmentStores {
    SegmentStores::new(4, vec![SegmentStoreNode::all_containers(addr)]).unwrap()
}

fn fixed(segments: i32) -> StreamConfig {
    StreamConfig {
        scaling: ScalingPolicy::fixed(segments),
        retention: None,
        tags: vec![],
        timestamp_aggregation_timeout_ms: 0,
        rollover_size_bytes: 0,
    }
}

fn group_config() -> ReaderGroupConfig {
    ReaderGroupConfig {
        group_refresh_time_ms: 3000,
        automatic_checkpoint_interval_ms: 30_000,
        max_outstanding_checkpoint_request: 3,
        retention: GroupRetention::Manual,
        generation: 0,
        starting_cuts: BTreeMap::from([("sc/st".to_owned(), BTreeMap::new())]),
        ending_cuts: BTreeMap::new(),
        rollover_size_bytes: 0,
    }
}

/// The child: runs one operation with a controller whose workflows hang after some steps.
#[test]
fn workflow_child() {
    let Ok(addr) = std::env::var(ADDR_VAR) else {
        return; // Not a child.
    };
    let op = std::env::var(OP_VAR).unwrap();
    let pause: usize = std::env::var(PAUSE_VAR).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let mut config = ControllerConfig::new(stores(addr.parse().unwrap()));
        config.pause_workflow_after_steps = Some(pause);
        let controller = Controller::start(config).await.unwrap();
        let c = controller.clone();
        tokio::spawn(async move {
            let result = match op.as_str() {
                "create-stream" => c.create_stream("sc", "fresh", fixed(3)).await.map(drop),
                "delete-stream" => c.delete_stream("sc", "st").await.map(drop),
                "commit" => {
                    let txn = u128::from_str_radix(&std::env::var(TXN_VAR).unwrap(), 16).unwrap();
                    c.commit_transaction("sc", "st", txn, "1", 0).await
                }
                "kvt" => c
                    .create_key_value_table(
                        "sc",
                        "table",
                        KeyValueTableConfig {
                            partition_count: 3,
                            primary_key_length: 8,
                            secondary_key_length: 0,
                            rollover_size_bytes: 0,
                        },
                    )
                    .await
                    .map(drop),
                "rg" => c
                    .create_reader_group(
                        "sc",
                        "group",
                        "5f1d2c3b-4a5e-4f60-9a7b-0c1d2e3f4a5b",
                        group_config(),
                    )
                    .await
                    .map(drop),
                "kvt-delete" => c.delete_key_value_table("sc", "table").await.map(drop),
                "rg-delete" => c.delete_reader_group("sc", "group", None).await.map(drop),
                other => panic!("unknown operation {other}"),
            };
            result.unwrap();
        });
        tokio::time::sleep(Duration::from_secs(120)).await;
        panic!("the parent did not kill this controller");
    });
}

struct Store {
    inner: common::SegmentStoreOnly,
}

impl std::ops::Deref for Store {
    type Target = common::SegmentStoreOnly;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Store {
    async fn start() -> Self {
        Self {
            inner: common::SegmentStoreOnly::start().await,
        }
    }

    async fn controller(&self) -> Controller {
        Controller::start(ControllerConfig::new(stores(self.addr())))
            .await
            .unwrap()
    }

    async fn record(&self, key: &str) -> Option<Value> {
        self.metadata(key).await
    }

    async fn exists(&self, segment: &str) -> bool {
        match self.client.segment_info(self.addr(), segment, "").await {
            Ok(_) => true,
            Err(ClientError::NoSuchSegment(_)) => false,
            Err(error) => panic!("{error}"),
        }
    }

    async fn events(&self, segment: &str) -> Vec<String> {
        common::segment_events(&self.client, self.addr(), segment).await
    }

    async fn stop(self) {
        self.inner.stop().await;
    }
}

/// Whether the record at `key` has unfinished work: a stream's workflow, or a group's or
/// table's state other than Active.
fn unfinished(record: &Value) -> bool {
    match record.get("workflow") {
        Some(workflow) => !workflow.is_null(),
        None => record.get("state").is_some_and(|s| s != "Active"),
    }
}

/// Runs `op` in a child paused after `pause` steps; kills it once `key` shows unfinished work.
async fn kill_mid_workflow(store: &Store, op: &str, pause: usize, key: &str, txn: Option<u128>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ADDR_VAR, store.addr().to_string())
        .env(OP_VAR, op)
        .env(PAUSE_VAR, pause.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(txn) = txn {
        command.env(TXN_VAR, format!("{txn:032x}"));
    }
    let mut child = command.spawn().unwrap();
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        if store.record(key).await.as_ref().is_some_and(unfinished) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{op}: the child never started its workflow"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{op}: the child exited early"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        store.record(key).await.as_ref().is_some_and(unfinished),
        "{op}: the workflow finished before the kill"
    );
}

/// Starts a fresh controller and waits until `key` has no unfinished work (or is gone).
async fn finish(store: &Store, key: &str) -> (Controller, Option<Value>) {
    let controller = store.controller().await;
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        let record = store.record(key).await;
        if !record.as_ref().is_some_and(unfinished) {
            return (controller, record);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted controller did not finish {key}: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn prepare(store: &Store) -> Controller {
    let controller = store.controller().await;
    controller.create_scope("sc").await.unwrap();
    controller
        .create_stream("sc", "st", fixed(3))
        .await
        .unwrap();
    controller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_creation_and_deletion_finish_after_a_kill() {
    for pause in [0, 1] {
        let store = Store::start().await;
        prepare(&store).await;
        kill_mid_workflow(&store, "create-stream", pause, "stream/sc/fresh", None).await;
        let (controller, record) = finish(&store, "stream/sc/fresh").await;
        assert_eq!(record.unwrap()["state"], "Active");
        assert_eq!(
            controller
                .stream("sc", "fresh")
                .await
                .unwrap()
                .current_segments()
                .len(),
            3
        );
        for n in 0..3 {
            assert!(store.exists(&format!("sc/fresh/{n}.#epoch.0")).await);
        }
        store.stop().await;
    }
    for pause in [0, 2] {
        let store = Store::start().await;
        let controller = prepare(&store).await;
        controller.seal_stream("sc", "st").await.unwrap();
        kill_mid_workflow(&store, "delete-stream", pause, "stream/sc/st", None).await;
        let (_, record) = finish(&store, "stream/sc/st").await;
        assert!(record.is_none(), "the stream record outlived its deletion");
        for n in 0..3 {
            assert!(!store.exists(&format!("sc/st/{n}.#epoch.0")).await);
        }
        store.stop().await;
    }
}

/// A transaction on sc/st with two events beside each of the three segments.
async fn open_transaction(store: &Store, controller: &Controller) -> u128 {
    let (txn, _) = controller
        .create_transaction("sc", "st", 60_000)
        .await
        .unwrap();
    for parent in 0..3 {
        let segment = transaction_segment_name("sc", "st", parent, txn);
        for n in 1..=2 {
            store
                .client
                .append(
                    store.addr(),
                    &segment,
                    9,
                    n,
                    frame_event(format!("txn {parent}.{n}").as_bytes()),
                    "",
                )
                .await
                .unwrap();
        }
    }
    txn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_commits_finish_after_a_kill() {
    // Simple commit: 6 merges; stop before any, and after two.
    for pause in [0, 2] {
        let store = Store::start().await;
        let controller = prepare(&store).await;
        let txn = open_transaction(&store, &controller).await;
        kill_mid_workflow(&store, "commit", pause, "stream/sc/st", Some(txn)).await;
        let (controller, _) = finish(&store, "stream/sc/st").await;
        assert_eq!(
            controller
                .transaction_status("sc", "st", txn)
                .await
                .unwrap(),
            Some(TxnStatus::Committed)
        );
        for parent in 0..3 {
            let events = store
                .events(&qualified_segment_name("sc", "st", parent))
                .await;
            assert_eq!(
                events,
                vec![format!("txn {parent}.1"), format!("txn {parent}.2")]
            );
        }
        store.stop().await;
    }
    // Rolling commit after a split: create 3 copies, 6 merges, seal copies, create 4, seal 4.
    for pause in [1, 9] {
        let store = Store::start().await;
        let controller = prepare(&store).await;
        let txn = open_transaction(&store, &controller).await;
        controller
            .scale(
                "sc",
                "st",
                &[0],
                &[(0.0, 1.0 / 6.0), (1.0 / 6.0, 1.0 / 3.0)],
            )
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + common::TIMEOUT;
        while controller.stream("sc", "st").await.unwrap().epochs.len() < 2 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        kill_mid_workflow(&store, "commit", pause, "stream/sc/st", Some(txn)).await;
        let (controller, _) = finish(&store, "stream/sc/st").await;
        assert_eq!(
            controller
                .transaction_status("sc", "st", txn)
                .await
                .unwrap(),
            Some(TxnStatus::Committed)
        );
        let record = controller.stream("sc", "st").await.unwrap();
        assert_eq!(record.epochs.len(), 4, "exactly two epochs were added");
        for (i, copy) in record.epochs[2].segments.iter().enumerate() {
            let events = store
                .events(&qualified_segment_name("sc", "st", *copy))
                .await;
            assert_eq!(events, vec![format!("txn {i}.1"), format!("txn {i}.2")]);
        }
        store.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_group_creation_finish_after_a_kill() {
    for pause in [0, 1] {
        let store = Store::start().await;
        prepare(&store).await;
        kill_mid_workflow(&store, "kvt", pause, "kvt/sc/table", None).await;
        let (_, record) = finish(&store, "kvt/sc/table").await;
        assert_eq!(record.unwrap()["state"], "Active");
        for n in 0..3 {
            assert!(
                store
                    .exists(&format!("sc/table_kvtable/{n}.#epoch.0"))
                    .await
            );
        }
        store.stop().await;
    }
    for pause in [0, 1] {
        let store = Store::start().await;
        prepare(&store).await;
        kill_mid_workflow(&store, "rg", pause, "rg/sc/group", None).await;
        let (controller, record) = finish(&store, "rg/sc/group").await;
        assert_eq!(record.unwrap()["state"], "Active");
        assert_eq!(
            controller.list_subscribers("sc", "st").await.unwrap(),
            vec!["sc/group".to_owned()]
        );
        assert!(controller.stream("sc", "_RGgroup").await.is_ok());
        store.stop().await;
    }
}

fn table_config() -> KeyValueTableConfig {
    KeyValueTableConfig {
        partition_count: 3,
        primary_key_length: 8,
        secondary_key_length: 0,
        rollover_size_bytes: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_and_group_deletion_finish_after_a_kill() {
    for pause in [0, 1] {
        let store = Store::start().await;
        let controller = prepare(&store).await;
        assert!(controller
            .create_key_value_table("sc", "table", table_config())
            .await
            .unwrap());
        kill_mid_workflow(&store, "kvt-delete", pause, "kvt/sc/table", None).await;
        let (_, record) = finish(&store, "kvt/sc/table").await;
        assert!(record.is_none(), "the table record outlived its deletion");
        for n in 0..3 {
            assert!(
                !store
                    .exists(&format!("sc/table_kvtable/{n}.#epoch.0"))
                    .await
            );
        }
        store.stop().await;
    }
    for pause in [0, 1] {
        let store = Store::start().await;
        let controller = prepare(&store).await;
        controller
            .create_reader_group(
                "sc",
                "group",
                "5f1d2c3b-4a5e-4f60-9a7b-0c1d2e3f4a5b",
                group_config(),
            )
            .await
            .unwrap();
        kill_mid_workflow(&store, "rg-delete", pause, "rg/sc/group", None).await;
        let (controller, record) = finish(&store, "rg/sc/group").await;
        assert!(record.is_none(), "the group record outlived its deletion");
        assert!(controller
            .list_subscribers("sc", "st")
            .await
            .unwrap()
            .is_empty());
        assert!(controller.stream("sc", "_RGgroup").await.is_err());
        store.stop().await;
    }
}

//! Crash safety of workflows: a controller process killed with SIGKILL in the middle of a scale,
//! a truncation or a seal leaves metadata from which a restarted controller completes the
//! workflow, and no epoch is ever half-written.
//!
//! The segment store runs in the test process; each controller to be killed runs in a child
//! process (this test binary re-executed) with a hook that stops its workflow after a given
//! number of segment-store steps.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use pravaha_controller::model::{ScalingPolicy, StreamConfig, StreamRecord, StreamState, Workflow};
use pravaha_controller::{Controller, ControllerConfig, SegmentStoreNode, SegmentStores};
use pravaha_segment_client::{frame_event, ClientError};
use pravaha_types::segment_id;

const CHILD_TEST: &str = "controller_child";
const ADDR_VAR: &str = "PRAVAHA_CRASH_SEGMENT_STORE";
const OP_VAR: &str = "PRAVAHA_CRASH_OP";
const PAUSE_VAR: &str = "PRAVAHA_CRASH_PAUSE_AFTER";

fn stores(addr: std::net::SocketAddr) -> SegmentStores {
    SegmentStores::new(4, vec![SegmentStoreNode::all_containers(addr)]).unwrap()
}

fn config(segments: i32) -> StreamConfig {
    StreamConfig {
        scaling: ScalingPolicy::fixed(segments),
        retention: None,
        tags: vec![],
        timestamp_aggregation_timeout_ms: 0,
        rollover_size_bytes: 0,
    }
}

/// The child: a controller whose workflow hangs after some steps, until it is killed.
#[test]
fn controller_child() {
    let Ok(addr) = std::env::var(ADDR_VAR) else {
        return; // Not a child: nothing to do.
    };
    let op = std::env::var(OP_VAR).unwrap();
    let pause: usize = std::env::var(PAUSE_VAR).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let mut config = ControllerConfig::new(stores(addr.parse().unwrap()));
        config.pause_workflow_after_steps = Some(pause);
        let controller = Controller::start(config).await.unwrap();
        let started = match op.as_str() {
            "scale" => controller
                .scale(
                    "sc",
                    "st",
                    &[0, 1],
                    &[(0.0, 0.2), (0.2, 0.4), (0.4, 2.0 / 3.0)],
                )
                .await
                .map(|_| ()),
            "truncate" => {
                let event = frame_event(b"payload");
                let step = i64::try_from(event.len()).unwrap();
                let cut = BTreeMap::from([(0, step), (1, 2 * step), (2, 3 * step)]);
                let c = controller.clone();
                tokio::spawn(async move { c.truncate_stream("sc", "st", cut).await });
                Ok(())
            }
            "seal" => {
                let c = controller.clone();
                tokio::spawn(async move { c.seal_stream("sc", "st").await });
                Ok(())
            }
            other => panic!("unknown operation {other}"),
        };
        started.unwrap();
        // Hang (the workflow is paused) until the parent kills the process.
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

    /// The stream's record as stored (read directly from the metadata table).
    async fn record(&self) -> StreamRecord {
        let record = self
            .metadata("stream/sc/st")
            .await
            .expect("the stream record");
        serde_json::from_value(record).unwrap()
    }

    /// Whether the segment is sealed (`Err` with the error's text if it cannot be asked).
    async fn sealed(&self, segment: &str) -> Result<bool, String> {
        self.client
            .segment_info(self.addr(), segment, "")
            .await
            .map(|info| info.sealed)
            .map_err(|error: ClientError| error.to_string())
    }

    async fn stop(self) {
        self.inner.stop().await;
    }
}

/// A stream sc/st with 3 segments and a few events in each, created by an in-process controller.
async fn prepare(store: &Store) {
    let controller = Controller::start(ControllerConfig::new(stores(store.addr())))
        .await
        .unwrap();
    controller.create_scope("sc").await.unwrap();
    assert!(controller
        .create_stream("sc", "st", config(3))
        .await
        .unwrap());
    let event = frame_event(b"payload");
    for n in 0..3 {
        let segment = format!("sc/st/{n}.#epoch.0");
        for e in 1..=5 {
            store
                .client
                .append(
                    store.addr(),
                    &segment,
                    100 + n as u128,
                    e,
                    event.clone(),
                    "",
                )
                .await
                .unwrap();
        }
    }
}

/// Runs `op` in a child controller paused after `pause` steps, kills it with SIGKILL while the
/// workflow is recorded but unfinished, and returns the record it left.
async fn kill_mid_workflow(store: &Store, op: &str, pause: usize) -> StreamRecord {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ADDR_VAR, store.addr().to_string())
        .env(OP_VAR, op)
        .env(PAUSE_VAR, pause.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the workflow is recorded and its first `pause` steps could have run.
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        if store.record().await.workflow.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child never started its workflow"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child exited early"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let record = store.record().await;
    assert!(
        record.workflow.is_some(),
        "the workflow finished before the kill"
    );
    record
}

/// Starts a controller (no hook) and waits until the stream has no pending workflow.
async fn restart_and_finish(store: &Store) -> StreamRecord {
    let _controller = Controller::start(ControllerConfig::new(stores(store.addr())))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + common::TIMEOUT;
    loop {
        let record = store.record().await;
        if record.workflow.is_none() {
            return record;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted controller did not finish"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_killed_midway_is_completed_by_the_next_controller() {
    // Steps: create 3 segments, then seal 2. Kill before any, after one creation, and after
    // one seal.
    for pause in [0, 1, 4] {
        let store = Store::start().await;
        prepare(&store).await;
        let left = kill_mid_workflow(&store, "scale", pause).await;
        // The epoch was not written: the record still has epoch 0 only.
        assert_eq!(left.epochs.len(), 1, "an epoch was half-written");
        assert!(matches!(
            left.workflow,
            Some(Workflow::Scale { new_epoch: 1, .. })
        ));
        assert_eq!(left.current_segments().len(), 3);

        let done = restart_and_finish(&store).await;
        assert_eq!(done.epochs.len(), 2);
        let current: Vec<i64> = done.current_segments().iter().map(|s| s.id).collect();
        assert_eq!(
            current,
            vec![segment_id(1, 3), segment_id(1, 4), segment_id(1, 5), 2]
        );
        for old in ["sc/st/0.#epoch.0", "sc/st/1.#epoch.0"] {
            assert_eq!(store.sealed(old).await, Ok(true), "{old}");
        }
        for new in [
            "sc/st/3.#epoch.1",
            "sc/st/4.#epoch.1",
            "sc/st/5.#epoch.1",
            "sc/st/2.#epoch.0",
        ] {
            assert_eq!(store.sealed(new).await, Ok(false), "{new}");
        }
        let successors = done.successors(1).unwrap();
        assert_eq!(successors.len(), 2);
        store.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncation_killed_midway_is_completed_by_the_next_controller() {
    // Steps: truncate 3 segments. Kill before the first, and after two.
    let step = i64::try_from(frame_event(b"payload").len()).unwrap();
    let cut = BTreeMap::from([(0, step), (1, 2 * step), (2, 3 * step)]);
    for pause in [0, 2] {
        let store = Store::start().await;
        prepare(&store).await;
        let left = kill_mid_workflow(&store, "truncate", pause).await;
        assert!(matches!(left.workflow, Some(Workflow::Truncate { .. })));
        assert!(
            left.truncation.is_empty(),
            "the cut was recorded before its steps ran"
        );
        let done = restart_and_finish(&store).await;
        assert_eq!(done.truncation, cut);
        for (id, offset) in &cut {
            let info = store
                .client
                .segment_info(store.addr(), &format!("sc/st/{id}.#epoch.0"), "")
                .await
                .unwrap();
            assert_eq!(info.start_offset, *offset);
        }
        store.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seal_killed_midway_is_completed_by_the_next_controller() {
    // Steps: seal 3 segments. Kill before the first, after one and after two.
    for pause in [0, 1, 2] {
        let store = Store::start().await;
        prepare(&store).await;
        let left = kill_mid_workflow(&store, "seal", pause).await;
        assert_eq!(left.state, StreamState::Active);
        assert!(matches!(left.workflow, Some(Workflow::Seal)));
        // Exactly the first `pause` segments were sealed before the kill.
        for n in 0..3 {
            let sealed = store.sealed(&format!("sc/st/{n}.#epoch.0")).await;
            assert_eq!(sealed, Ok(n < pause), "segment {n} after {pause} steps");
        }
        let done = restart_and_finish(&store).await;
        assert_eq!(done.state, StreamState::Sealed);
        assert!(done.current_segments().is_empty());
        for n in 0..3 {
            assert_eq!(store.sealed(&format!("sc/st/{n}.#epoch.0")).await, Ok(true));
        }
        store.stop().await;
    }
}

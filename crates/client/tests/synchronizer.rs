//! The application-facing state synchronizer ([`Synchronizer`]) against an in-process
//! standalone: two synchronizers on one name counting together with conditional updates,
//! removals seen by the other synchronizer, and one table shared with the official Rust
//! client's synchronizer (`pravega-client` 0.3.7) both ways.
//!
//! The official `ClientFactory` owns its own Tokio runtime, so the interoperability test is a
//! plain `#[test]`: the standalone and our client run on a runtime of their own.

// The official client's update closures return its (large) error type.
#![allow(clippy::result_large_err)]

mod common;

use std::collections::BTreeSet;

use common::{Standalone, TIMEOUT};
use pravaha_client::sync::{SyncError, Synchronizer};
use pravaha_client::{ClientConfig, ControllerClient};
use pravega_client::client_factory::ClientFactory;
use pravega_client::sync::synchronizer::{deserialize_from, Update};
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::Scope;
use tokio::runtime::Runtime;

/// Increments per synchronizer.
const INCREMENTS: u64 = 200;

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT * 4, future)
        .await
        .expect("bounded wait")
}

fn controller(standalone: &Standalone) -> ControllerClient {
    let config = ClientConfig::builder()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("client configuration");
    ControllerClient::new(config).expect("controller client")
}

/// Adds one to `counters/shared`; returns the value written and how often the update
/// function ran (more than once after conflicts).
async fn increment(sync: &mut Synchronizer) -> (u64, u32) {
    let mut runs = 0;
    let written = bounded(sync.update(|table| {
        runs += 1;
        let next = table.get_as::<u64>("counters", "shared")?.unwrap_or(0) + 1;
        table.insert("counters", "shared", "u64", &next)?;
        Ok(next)
    }))
    .await
    .expect("increment");
    (written, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_synchronizers_count_together_without_losing_an_increment() {
    let standalone = Standalone::start().await;
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let controller = controller(&standalone);
        tasks.push(tokio::spawn(async move {
            // Both open (and so create) the table at once: the one told "already exists"
            // must find it.
            let mut sync = bounded(Synchronizer::open(&controller, "sync", "counter"))
                .await
                .expect("open");
            let mut written = Vec::new();
            let mut runs = 0;
            for _ in 0..INCREMENTS {
                let (value, attempts) = increment(&mut sync).await;
                written.push(value);
                runs += attempts;
                // Let the other task in between, so that the two interleave.
                tokio::task::yield_now().await;
            }
            (sync, written, runs)
        }));
    }
    let mut all_written = BTreeSet::new();
    let mut synchronizers = Vec::new();
    let mut runs = 0;
    for task in tasks {
        let (sync, written, task_runs) = task.await.expect("task");
        // Each synchronizer's own increments went up.
        assert!(
            written.windows(2).all(|pair| pair[0] < pair[1]),
            "{written:?}"
        );
        all_written.extend(written);
        synchronizers.push(sync);
        runs += task_runs;
    }
    // Every increment wrote a value nobody else wrote: none was lost to a concurrent one.
    assert_eq!(all_written, (1..=2 * INCREMENTS).collect::<BTreeSet<_>>());
    println!(
        "{runs} update function runs for {} increments",
        2 * INCREMENTS
    );
    for sync in &mut synchronizers {
        bounded(sync.fetch_updates()).await.expect("fetch");
        let value = sync.get("counters", "shared").expect("the counter");
        assert_eq!(value.type_id, "u64");
        assert_eq!(value.decode::<u64>().unwrap(), 2 * INCREMENTS);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_are_seen_by_the_other_synchronizer() {
    let standalone = Standalone::start().await;
    let controller = controller(&standalone);
    let mut first = bounded(Synchronizer::open(&controller, "sync", "jobs"))
        .await
        .unwrap();
    let mut second = bounded(Synchronizer::open(&controller, "sync", "jobs"))
        .await
        .unwrap();
    bounded(first.update(|table| {
        for job in ["a", "b", "c"] {
            table.insert("jobs", job, "String", &format!("payload of {job}"))?;
        }
        Ok(())
    }))
    .await
    .unwrap();
    bounded(second.fetch_updates()).await.unwrap();
    assert_eq!(live_jobs(&second), ["a", "b", "c"]);

    bounded(first.update(|table| table.insert_tombstone("jobs", "b")))
        .await
        .unwrap();
    bounded(second.fetch_updates()).await.unwrap();
    assert_eq!(live_jobs(&second), ["a", "c"]);
    assert!(second.get("jobs", "b").is_none());

    // The second removes what the first wrote (its copy has the version to remove it at).
    bounded(second.update(|table| table.insert_tombstone("jobs", "a")))
        .await
        .unwrap();
    bounded(first.fetch_updates()).await.unwrap();
    assert_eq!(live_jobs(&first), ["c"]);
    // Removing it again is refused: the update function sees it gone.
    let again = bounded(first.update(|table| table.insert_tombstone("jobs", "a"))).await;
    assert!(
        matches!(again, Err(SyncError::Precondition(_))),
        "{again:?}"
    );

    // A removed key can be written again, "only if absent", from either copy: the second's
    // copy still holds the tombstone's version, so its first attempt conflicts and is retried.
    bounded(second.update(|table| {
        if table.contains("jobs", "b") {
            return Err(SyncError::Precondition("b exists".into()));
        }
        table.insert("jobs", "b", "String", &"payload of b, again".to_owned())
    }))
    .await
    .unwrap();
    bounded(first.fetch_updates()).await.unwrap();
    assert_eq!(live_jobs(&first), ["b", "c"]);
    let b: String = first.get("jobs", "b").unwrap().decode().unwrap();
    assert_eq!(b, "payload of b, again");

    // A synchronizer opened now reads the same.
    let fresh = bounded(Synchronizer::open(&controller, "sync", "jobs"))
        .await
        .unwrap();
    assert_eq!(live_jobs(&fresh), ["b", "c"]);
}

fn live_jobs(sync: &Synchronizer) -> Vec<String> {
    sync.inner_map("jobs").into_keys().collect()
}

fn official_factory(standalone: &Standalone) -> ClientFactory {
    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("official client configuration");
    ClientFactory::new(config)
}

/// What the official client's copy of `settings` and `counters` holds.
fn official_view(
    official: &pravega_client::sync::synchronizer::Synchronizer,
) -> (Option<String>, Option<String>, Option<u64>) {
    let string = |outer: &str, inner: &str| {
        official
            .get(outer, inner)
            .map(|value| deserialize_from::<String>(&value.data).expect("a string"))
    };
    let hits = official
        .get("counters", "hits")
        .map(|value| deserialize_from::<u64>(&value.data).expect("a u64"));
    (
        string("settings", "colour"),
        string("settings", "size"),
        hits,
    )
}

#[test]
fn values_cross_between_our_synchronizer_and_the_official_one() {
    let runtime = Runtime::new().expect("a runtime for the standalone");
    let standalone = runtime.block_on(Standalone::start());
    let mut ours = runtime.block_on(async {
        let controller = controller(&standalone);
        let mut ours = bounded(Synchronizer::open(&controller, "interop", "shared"))
            .await
            .unwrap();
        bounded(ours.update(|table| {
            table.insert("settings", "colour", "String", &"green".to_owned())?;
            table.insert("counters", "hits", "u64", &5u64)
        }))
        .await
        .unwrap();
        ours
    });

    let factory = official_factory(&standalone);
    let mut official = factory.runtime().block_on(async {
        let mut official = factory
            .create_synchronizer(Scope::from("interop".to_string()), "shared".to_string())
            .await;
        official.fetch_updates().await.expect("official fetch");
        assert_eq!(
            official_view(&official),
            (Some("green".into()), None, Some(5))
        );
        assert_eq!(official.get("counters", "hits").unwrap().type_id, "u64");
        // A conditional increment of our value, a new key and a removal of ours.
        official
            .insert(|table: &mut Update| {
                let hits: u64 =
                    deserialize_from(&table.get("counters", "hits").unwrap().data).expect("a u64");
                table.insert(
                    "counters".into(),
                    "hits".into(),
                    "u64".into(),
                    Box::new(hits + 1),
                );
                table.insert(
                    "settings".into(),
                    "size".into(),
                    "String".into(),
                    Box::new("large".to_string()),
                );
                table.insert_tombstone("settings".into(), "colour".into())
            })
            .await
            .expect("official update");
        official
    });

    runtime.block_on(async {
        bounded(ours.fetch_updates()).await.unwrap();
        assert!(
            ours.get("settings", "colour").is_none(),
            "removed by theirs"
        );
        let size: String = ours.get("settings", "size").unwrap().decode().unwrap();
        assert_eq!(size, "large");
        assert_eq!(ours.get("settings", "size").unwrap().type_id, "String");
        // Their versions are ours: our conditional update of their write goes through.
        let hits = bounded(ours.update(|table| {
            let hits = table.get_as::<u64>("counters", "hits")?.expect("hits") + 1;
            table.insert("counters", "hits", "u64", &hits)?;
            Ok(hits)
        }))
        .await
        .unwrap();
        assert_eq!(hits, 7);
        bounded(
            ours.update(|table| table.insert("settings", "colour", "String", &"blue".to_owned())),
        )
        .await
        .unwrap();
    });

    factory.runtime().block_on(async {
        official.fetch_updates().await.expect("official fetch");
        assert_eq!(
            official_view(&official),
            (Some("blue".into()), Some("large".into()), Some(7))
        );
    });
}

//! Reader groups against an in-process standalone: the synchronizer's table shared with the
//! official Rust client (`pravega-client` 0.3.7) both ways, reader groups of our readers, and a
//! group shared by an official reader and one of ours.
//!
//! The official `ClientFactory` owns its own Tokio runtime, so these are plain `#[test]`s: the
//! standalone and our client run on a runtime of their own.

// The official client's update closures return its (large) error type.
#![allow(clippy::result_large_err)]

mod common;

use std::collections::HashMap;

use common::Standalone;
use pravaha_client::sync::Synchronizer;
use pravaha_client::{ClientConfig, ControllerClient};
use pravega_client::client_factory::ClientFactory;
use pravega_client::sync::synchronizer::{deserialize_from, SynchronizerError, Update};
use pravega_client_config::ClientConfigBuilder;
use pravega_client_shared::Scope;
use tokio::runtime::Runtime;

/// The standalone on its own runtime (kept alive as long as the standalone).
fn standalone() -> (Runtime, Standalone) {
    let runtime = Runtime::new().expect("a runtime for the standalone");
    let standalone = runtime.block_on(Standalone::start());
    (runtime, standalone)
}

fn official_factory(standalone: &Standalone) -> ClientFactory {
    let config = ClientConfigBuilder::default()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("official client configuration");
    ClientFactory::new(config)
}

fn controller(standalone: &Standalone) -> ControllerClient {
    let config = ClientConfig::builder()
        .controller_uri(standalone.controller_uri().as_str())
        .build()
        .expect("client configuration");
    ControllerClient::new(config).expect("controller client")
}

#[test]
fn synchronizer_reads_what_the_official_client_wrote() {
    let (runtime, standalone) = standalone();
    let factory = official_factory(&standalone);
    factory.runtime().block_on(async {
        let mut official = factory
            .create_synchronizer(Scope::from("sync".to_string()), "shared".to_string())
            .await;
        official
            .insert(|table: &mut Update| {
                table.insert(
                    "settings".into(),
                    "colour".into(),
                    "String".into(),
                    Box::new("green".to_string()),
                );
                table.insert("counters".into(), "a".into(), "u64".into(), Box::new(7u64));
                table.insert("counters".into(), "b".into(), "u64".into(), Box::new(8u64));
                Ok::<(), SynchronizerError>(())
            })
            .await
            .expect("official insert");
        official
            .insert(|table: &mut Update| table.insert_tombstone("counters".into(), "b".into()))
            .await
            .expect("official removal");
    });

    runtime.block_on(async {
        let controller = controller(&standalone);
        let sync = Synchronizer::open(&controller, "sync", "shared")
            .await
            .unwrap();
        let colour: String = sync.get("settings", "colour").unwrap().decode().unwrap();
        assert_eq!(colour, "green");
        assert_eq!(sync.get("settings", "colour").unwrap().type_id, "String");
        let counters = sync.inner_map("counters");
        assert_eq!(counters.len(), 1, "{counters:?}");
        assert_eq!(counters["a"].decode::<u64>().unwrap(), 7);
        assert!(sync.get("counters", "b").is_none());
    });
}

#[test]
fn the_official_client_reads_what_the_synchronizer_wrote() {
    let (runtime, standalone) = standalone();
    runtime.block_on(async {
        let controller = controller(&standalone);
        let mut sync = Synchronizer::open(&controller, "sync", "ours")
            .await
            .unwrap();
        sync.update(|table| {
            table.insert("settings", "colour", "String", &"blue")?;
            table.insert("counters", "a", "u64", &1u64)?;
            table.insert("counters", "b", "u64", &2u64)
        })
        .await
        .unwrap();
        sync.update(|table| table.insert_tombstone("counters", "a"))
            .await
            .unwrap();
        // A second client of ours conflicts on the outer key and retries.
        let mut other = Synchronizer::open(&controller, "sync", "ours")
            .await
            .unwrap();
        sync.update(|table| table.insert("counters", "c", "u64", &3u64))
            .await
            .unwrap();
        other
            .update(|table| {
                let b: u64 = table.get_as("counters", "b")?.unwrap_or(0);
                table.insert("counters", "b", "u64", &(b + 40))
            })
            .await
            .unwrap();
    });

    let factory = official_factory(&standalone);
    factory.runtime().block_on(async {
        let mut official = factory
            .create_synchronizer(Scope::from("sync".to_string()), "ours".to_string())
            .await;
        official.fetch_updates().await.expect("official fetch");
        let colour: String =
            deserialize_from(&official.get("settings", "colour").unwrap().data).unwrap();
        assert_eq!(colour, "blue");
        let counters: HashMap<String, u64> = official
            .get_inner_map("counters")
            .into_iter()
            .map(|(key, value)| (key, deserialize_from(&value.data).unwrap()))
            .collect();
        assert_eq!(
            counters,
            HashMap::from([("b".to_string(), 42), ("c".to_string(), 3)])
        );
        // And the official client can update what we wrote (our versions are its versions).
        official
            .insert(|table: &mut Update| {
                table.insert("counters".into(), "d".into(), "u64".into(), Box::new(4u64));
                Ok::<(), SynchronizerError>(())
            })
            .await
            .expect("official update of our table");
    });
    runtime.block_on(async {
        let controller = controller(&standalone);
        let sync = Synchronizer::open(&controller, "sync", "ours")
            .await
            .unwrap();
        assert_eq!(sync.inner_map("counters").len(), 3);
    });
}

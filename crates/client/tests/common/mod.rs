//! An in-process standalone (segment store, segment server, controller with gRPC and REST) on
//! ephemeral ports of 127.0.0.1 with a fresh data directory, for the client's tests.
#![allow(dead_code)] // each test file uses its own part

pub mod admin;
pub mod segments;

use std::net::SocketAddr;
use std::time::Duration;

use pravaha_controller::{
    Controller, ControllerConfig, ControllerServer, ListenConfig, SegmentStoreNode, SegmentStores,
};
use pravaha_segment_server::{SegmentServer, ServerConfig};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Standalone {
    pub store: SegmentStore,
    pub segment_server: Option<SegmentServer>,
    pub controller: Controller,
    pub server: Option<ControllerServer>,
    _dir: tempfile::TempDir,
}

impl Standalone {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Self::start`], with the controller's configuration changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut ControllerConfig)) -> Self {
        Self::start_configured(|_| {}, configure).await
    }

    /// Like [`Self::start`], with the segment store's and the controller's configurations
    /// changed by `store` and `controller`.
    pub async fn start_configured(
        store: impl FnOnce(&mut SegmentStoreConfig),
        configure: impl FnOnce(&mut ControllerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store_config = SegmentStoreConfig::new(dir.path());
        store(&mut store_config);
        let store = SegmentStore::open(store_config)
            .await
            .expect("open the segment store");
        let segment_server = SegmentServer::start(
            ServerConfig::new("127.0.0.1:0".parse().unwrap()),
            store.clone(),
        )
        .await
        .expect("segment server");
        let stores = SegmentStores::new(
            store.container_count(),
            vec![SegmentStoreNode::all_containers(
                segment_server.local_addr(),
            )],
        )
        .expect("segment store directory");
        let mut config = ControllerConfig::new(stores);
        configure(&mut config);
        let controller = Controller::start(config).await.expect("controller");
        let listen = ListenConfig {
            grpc: "127.0.0.1:0".parse().unwrap(),
            rest: "127.0.0.1:0".parse().unwrap(),
        };
        let server = ControllerServer::start(controller.clone(), &listen)
            .await
            .expect("controller listeners");
        Self {
            store,
            segment_server: Some(segment_server),
            controller,
            server: Some(server),
            _dir: dir,
        }
    }

    /// The controller's gRPC address, as `tcp://127.0.0.1:PORT`.
    pub fn controller_uri(&self) -> String {
        format!("tcp://{}", self.grpc_addr())
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().grpc_addr()
    }

    pub fn segment_store_addr(&self) -> SocketAddr {
        self.segment_server.as_ref().unwrap().local_addr()
    }

    /// Stops the segment server (its connections drop) and starts it again on the same port.
    pub async fn restart_segment_server(&mut self) {
        let addr = self.segment_store_addr();
        self.segment_server.take().unwrap().shutdown().await;
        let server = SegmentServer::start(ServerConfig::new(addr), self.store.clone())
            .await
            .expect("segment server restarted on the same port");
        self.segment_server = Some(server);
    }
}

/// A standalone whose controller aggregates writers' marks into watermarks every
/// `watermark_interval` (the watermark tests shorten it, or lengthen it to drive passes
/// themselves).
pub async fn standalone_with_watermark_interval(watermark_interval: Duration) -> Standalone {
    Standalone::start_with(|config| config.watermark_interval = watermark_interval).await
}

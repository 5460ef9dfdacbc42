//! A segment store and a controller on 127.0.0.1 with fresh data directories, and clients of
//! both controller APIs.
#![allow(dead_code)]

use std::time::Duration;

use pravaha_controller::{
    Controller, ControllerConfig, ControllerServer, ListenConfig, SegmentStoreNode, SegmentStores,
};
use pravaha_controller_api::ControllerServiceClient;
use pravaha_segment_client::{ClientConfig, SegmentClient};
use pravaha_segment_server::{SegmentServer, ServerConfig};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Cluster {
    pub store: SegmentStore,
    pub segment_server: Option<SegmentServer>,
    pub controller: Controller,
    pub server: Option<ControllerServer>,
    pub segments: SegmentClient,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ControllerConfig)) -> Self {
        Self::start_with_server(|_| {}, configure).await
    }

    /// Like `start_with`, also configuring the segment server.
    pub async fn start_with_server(
        configure_server: impl FnOnce(&mut ServerConfig),
        configure: impl FnOnce(&mut ControllerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(SegmentStoreConfig::new(dir.path()))
            .await
            .unwrap();
        let mut server_config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        configure_server(&mut server_config);
        let segment_server = SegmentServer::start(server_config, store.clone())
            .await
            .unwrap();
        let stores = SegmentStores::new(
            store.container_count(),
            vec![SegmentStoreNode::all_containers(
                segment_server.local_addr(),
            )],
        )
        .unwrap();
        let mut config = ControllerConfig::new(stores);
        configure(&mut config);
        let controller = Controller::start(config).await.unwrap();
        let listen = ListenConfig {
            grpc: "127.0.0.1:0".parse().unwrap(),
            rest: "127.0.0.1:0".parse().unwrap(),
        };
        let server = ControllerServer::start(controller.clone(), &listen)
            .await
            .unwrap();
        Self {
            store,
            segment_server: Some(segment_server),
            controller,
            server: Some(server),
            segments: SegmentClient::new(ClientConfig::default()),
            _dir: dir,
        }
    }

    pub fn segment_store_addr(&self) -> std::net::SocketAddr {
        self.segment_server.as_ref().unwrap().local_addr()
    }

    pub fn grpc_addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().grpc_addr()
    }

    pub fn rest_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.as_ref().unwrap().rest_addr())
    }

    pub async fn grpc(&self) -> ControllerServiceClient<tonic::transport::Channel> {
        let url = format!("http://{}", self.grpc_addr());
        tokio::time::timeout(TIMEOUT, ControllerServiceClient::connect(url))
            .await
            .expect("gRPC connect timed out")
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some(server) = self.segment_server.take() {
            server.shutdown().await;
        }
        self.store.shutdown().await;
    }
}

/// A segment store alone (for tests that run controllers in other processes).
pub struct SegmentStoreOnly {
    pub store: SegmentStore,
    pub server: SegmentServer,
    pub client: SegmentClient,
    _dir: tempfile::TempDir,
}

impl SegmentStoreOnly {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(SegmentStoreConfig::new(dir.path()))
            .await
            .unwrap();
        let server = SegmentServer::start(
            ServerConfig::new("127.0.0.1:0".parse().unwrap()),
            store.clone(),
        )
        .await
        .unwrap();
        Self {
            store,
            server,
            client: SegmentClient::new(ClientConfig::default()),
            _dir: dir,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// The controller's metadata record under `key`, as JSON (`None` if absent).
    pub async fn metadata(&self, key: &str) -> Option<serde_json::Value> {
        let entries = self
            .client
            .table_get(
                self.addr(),
                pravaha_controller::METADATA_TABLE,
                vec![bytes::Bytes::from(key.to_owned())],
                "",
            )
            .await
            .unwrap();
        entries
            .into_iter()
            .next()
            .flatten()
            .map(|entry| serde_json::from_slice(&entry.value).unwrap())
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
        self.store.shutdown().await;
    }
}

/// The events of a whole segment as UTF-8 strings, from its start offset to its length.
pub async fn segment_events(
    client: &SegmentClient,
    at: std::net::SocketAddr,
    segment: &str,
) -> Vec<String> {
    let info = client.segment_info(at, segment, "").await.unwrap();
    let mut data = Vec::new();
    let mut offset = info.start_offset;
    while offset < info.length {
        let read = client
            .read_segment(at, segment, offset, 1 << 20, "")
            .await
            .unwrap();
        offset += read.data.len() as i64;
        data.extend_from_slice(&read.data);
    }
    let (events, used) = pravaha_segment_client::parse_events(&bytes::Bytes::from(data)).unwrap();
    assert_eq!(
        used as i64,
        info.length - info.start_offset,
        "a torn event in {segment}"
    );
    events
        .into_iter()
        .map(|e| String::from_utf8(e.to_vec()).unwrap())
        .collect()
}

//! A real segment server on 127.0.0.1 with a fresh data directory, and stand-ins for servers
//! that misbehave: one that never answers, one that answers from a script, and a counting proxy.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pravaha_segment_client::{ClientConfig, SegmentClient};
use pravaha_segment_server::{SegmentServer, ServerConfig, TokenVerifier};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};
use pravaha_wire::{self as wire, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every request in these tests is bounded by this (the client's request time-out).
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn client() -> SegmentClient {
    SegmentClient::new(ClientConfig {
        request_timeout: TIMEOUT,
        ..ClientConfig::default()
    })
}

pub struct TestServer {
    server: Option<SegmentServer>,
    store: Option<SegmentStore>,
    config: ServerConfig,
    dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        configure(&mut config);
        let mut server = Self {
            server: None,
            store: None,
            config,
            dir,
        };
        server.open().await;
        // A restart binds the same port.
        server.config.listen = server.addr();
        server
    }

    pub async fn start_with_auth(key: &[u8]) -> Self {
        let verifier = TokenVerifier::new(key);
        Self::start_with(|config| config.auth = Some(verifier)).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    /// Stops the server and its store, then opens both again on the same data and port.
    pub async fn restart(&mut self) {
        self.close().await;
        self.open().await;
    }

    pub async fn stop(mut self) {
        self.close().await;
    }

    async fn open(&mut self) {
        let store = SegmentStore::open(SegmentStoreConfig::new(self.dir.path()))
            .await
            .unwrap();
        let server = SegmentServer::start(self.config.clone(), store.clone())
            .await
            .unwrap();
        self.store = Some(store);
        self.server = Some(server);
    }

    async fn close(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some(store) = self.store.take() {
            store.shutdown().await;
        }
    }
}

/// A listener that accepts connections and never answers (nor closes them).
pub async fn silent_listener() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// A server that answers every request, `Hello` included, with what `script` returns for it;
/// `None` closes the connection.
pub async fn scripted_server(
    script: impl Fn(Request) -> Option<Vec<Reply>> + Send + Sync + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_script(stream, script.clone()));
        }
    });
    (addr, task)
}

async fn serve_script(
    mut stream: TcpStream,
    script: Arc<impl Fn(Request) -> Option<Vec<Reply>> + Send + Sync + 'static>,
) {
    let mut input = BytesMut::new();
    loop {
        while let Some((type_code, payload)) =
            wire::split_frame(&mut input, wire::MAX_FRAME_PAYLOAD).unwrap()
        {
            let Some(replies) = script(Request::decode(type_code, payload).unwrap()) else {
                return;
            };
            let mut out = BytesMut::new();
            for reply in replies {
                reply.encode(&mut out).unwrap();
            }
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The `Hello` this crate's client accepts.
pub fn hello() -> Reply {
    Reply::Hello(wire::Hello {
        high_version: 15,
        low_version: 5,
    })
}

/// Forwards connections to `upstream`, counting them.
pub struct CountingProxy {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn token(key: &[u8], claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

pub fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

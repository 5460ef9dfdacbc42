//! A segment server on 127.0.0.1 with a fresh data directory, and a minimal protocol client.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pravaha_segment_server::{SegmentServer, ServerConfig, TokenVerifier};
use pravaha_segmentstore::{SegmentStore, SegmentStoreConfig};
use pravaha_wire::{self as wire, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub server: Option<SegmentServer>,
    pub store: SegmentStore,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::open(SegmentStoreConfig::new(dir.path()))
            .await
            .unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        configure(&mut config);
        let server = SegmentServer::start(config, store.clone()).await.unwrap();
        Self {
            server: Some(server),
            store,
            _dir: dir,
        }
    }

    pub async fn start_owning(containers: BTreeSet<u32>) -> Self {
        Self::start_with(|c| c.owned_containers = Some(containers)).await
    }

    pub async fn start_with_auth(key: &[u8]) -> Self {
        let verifier = TokenVerifier::new(key);
        Self::start_with(|c| c.auth = Some(verifier)).await
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().local_addr()
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.store.shutdown().await;
    }
}

pub struct Client {
    pub stream: TcpStream,
    input: BytesMut,
    next_id: i64,
}

impl Client {
    /// Connects and exchanges Hello.
    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        let mut client = Self::connect_raw(addr).await;
        let reply = client
            .call(Request::Hello(wire::Hello {
                high_version: 15,
                low_version: 5,
            }))
            .await;
        assert_eq!(
            reply,
            Reply::Hello(wire::Hello {
                high_version: wire::WIRE_VERSION,
                low_version: wire::OLDEST_COMPATIBLE_VERSION,
            })
        );
        client
    }

    /// Connects without any handshake.
    pub async fn connect_raw(addr: std::net::SocketAddr) -> Self {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            input: BytesMut::new(),
            next_id: 1,
        }
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub async fn send(&mut self, request: &Request) {
        let mut out = BytesMut::new();
        request.encode(&mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next reply; panics on time-out or disconnect.
    pub async fn recv(&mut self) -> Reply {
        self.try_recv()
            .await
            .expect("the server closed the connection")
    }

    /// The next reply, or `None` once the server has closed the connection.
    pub async fn try_recv(&mut self) -> Option<Reply> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some((type_code, payload)) =
                    wire::split_frame(&mut self.input, wire::MAX_FRAME_PAYLOAD).unwrap()
                {
                    return Some(Reply::decode(type_code, payload).unwrap());
                }
                match self.stream.read_buf(&mut self.input).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("no reply in time")
    }

    pub async fn call(&mut self, request: Request) -> Reply {
        self.send(&request).await;
        self.recv().await
    }

    /// True once the server has closed the connection (reads see end of stream).
    pub async fn closed_by_server(&mut self) -> bool {
        self.try_recv().await.is_none()
    }

    pub async fn create_segment(&mut self, segment: &str) {
        let request_id = self.next_id();
        let reply = self
            .call(Request::CreateSegment(wire::CreateSegment {
                request_id,
                segment: segment.into(),
                target_rate: 0,
                scale_type: 0,
                delegation_token: String::new(),
                rollover_size_bytes: None,
            }))
            .await;
        assert_eq!(
            reply,
            Reply::SegmentCreated(wire::SegmentCreated {
                request_id,
                segment: segment.into()
            })
        );
    }

    pub async fn create_table(&mut self, segment: &str) {
        let request_id = self.next_id();
        let reply = self
            .call(Request::CreateTableSegment(wire::CreateTableSegment {
                request_id,
                segment: segment.into(),
                delegation_token: String::new(),
                sorted: None,
                key_length: None,
                rollover_size_bytes: None,
            }))
            .await;
        assert!(matches!(reply, Reply::SegmentCreated(_)), "{reply:?}");
    }

    /// SetupAppend; returns the last event number the server reports.
    pub async fn setup_append(&mut self, segment: &str, writer_id: u128) -> i64 {
        let request_id = self.next_id();
        match self
            .call(Request::SetupAppend(wire::SetupAppend {
                request_id,
                writer_id,
                segment: segment.into(),
                delegation_token: String::new(),
            }))
            .await
        {
            Reply::AppendSetup(setup) => {
                assert_eq!(setup.request_id, request_id);
                assert_eq!(setup.writer_id, writer_id);
                setup.last_event_number
            }
            other => panic!("SetupAppend answered with {other:?}"),
        }
    }

    /// Sends an append block of `events` (already framed) without waiting.
    pub async fn send_block(
        &mut self,
        writer_id: u128,
        last_event_number: i64,
        events: &[Bytes],
    ) -> i64 {
        let request_id = self.next_id();
        let mut data = BytesMut::new();
        for event in events {
            data.extend_from_slice(&frame_event(event));
        }
        self.send(&Request::AppendBlockEnd(wire::AppendBlockEnd {
            writer_id,
            size_of_whole_events: i32::try_from(data.len()).unwrap(),
            data: data.freeze(),
            num_events: i32::try_from(events.len()).unwrap(),
            last_event_number,
            request_id,
        }))
        .await;
        request_id
    }

    pub async fn info(&mut self, segment: &str) -> wire::StreamSegmentInfo {
        let request_id = self.next_id();
        match self
            .call(Request::GetStreamSegmentInfo(wire::GetStreamSegmentInfo {
                request_id,
                segment_name: segment.into(),
                delegation_token: String::new(),
            }))
            .await
        {
            Reply::StreamSegmentInfo(info) => info,
            other => panic!("GetStreamSegmentInfo answered with {other:?}"),
        }
    }

    pub async fn read(&mut self, segment: &str, offset: i64, length: i32) -> Reply {
        let request_id = self.next_id();
        self.call(read_request(segment, offset, length, request_id))
            .await
    }

    /// Reads the whole segment from 0 to its current length.
    pub async fn read_all(&mut self, segment: &str) -> Bytes {
        let length = self.info(segment).await.write_offset;
        let mut data = BytesMut::new();
        while (data.len() as i64) < length {
            match self.read(segment, data.len() as i64, 1 << 20).await {
                Reply::SegmentRead(read) => {
                    assert_eq!(read.offset, data.len() as i64);
                    assert!(!read.data.is_empty());
                    data.extend_from_slice(&read.data);
                }
                other => panic!("ReadSegment answered with {other:?}"),
            }
        }
        data.freeze()
    }
}

pub fn read_request(segment: &str, offset: i64, length: i32, request_id: i64) -> Request {
    Request::ReadSegment(wire::ReadSegment {
        segment: segment.into(),
        offset,
        suggested_length: length,
        delegation_token: String::new(),
        request_id,
    })
}

/// `[0:i32][len:i32][payload]`, as clients frame events.
pub fn frame_event(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + payload.len());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&i32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

/// Splits segment bytes into event payloads, checking the framing.
pub fn parse_events(mut data: &[u8]) -> Vec<Bytes> {
    let mut events = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 8, "torn event header");
        let kind = i32::from_be_bytes(data[0..4].try_into().unwrap());
        assert_eq!(kind, 0, "stored record is not an event");
        let length = usize::try_from(i32::from_be_bytes(data[4..8].try_into().unwrap())).unwrap();
        events.push(Bytes::copy_from_slice(&data[8..8 + length]));
        data = &data[8 + length..];
    }
    events
}

//! The segment store server: Pravega's segment protocol (TCP, default port 12345) on top of the
//! storage engine, so that the official Pravega clients read and write segments here unchanged.
//!
//! - One task per connection. Appends are pipelined (handed to their container in order, acked
//!   as they become durable, consecutive acks of one writer coalesced); reads run beside them
//!   (a tail read long-polls); administration requests are answered in order.
//! - Bounded: bytes of appends in flight and reads outstanding per connection, frame size (checked
//!   before anything is allocated).
//! - Bad input (unknown or malformed frames, wrong versions, protocol violations) closes that
//!   connection with one log line; nothing else is affected.
//! - Append rates per segment (moving averages, as Pravega's) are measured for auto-scaling and
//!   read as computed attributes ([`RateConfig`]).
//!
//! The protocol as implemented is documented in docs/formats/wire-protocol.md.

pub mod auth;
mod connection;
mod rates;
mod replies;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pravaha_segmentstore::SegmentStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use auth::{Permission, TokenError, TokenVerifier};
pub use rates::RateConfig;

/// Pravega's default segment store port.
pub const DEFAULT_PORT: u16 = 12345;

/// Per-connection limits; the defaults follow Pravega's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame payload accepted (the protocol's limit).
    pub max_frame_payload: usize,
    /// Append bytes handed to containers but not yet acknowledged; above it the connection is
    /// not read until acks come back (back pressure through TCP).
    pub max_in_flight_append_bytes: usize,
    /// Reads outstanding (for example parked at a segment's tail) before the connection is not
    /// read any more.
    pub max_pending_reads: usize,
    /// Most data returned by one `SegmentRead`.
    pub max_read_bytes: usize,
    /// How long a read at the tail of an open segment waits for data before an empty reply
    /// (below the clients' 30 s request time-out).
    pub tail_wait: Duration,
    /// Most keys or entries in one table page, and about the most bytes.
    pub max_table_page_entries: usize,
    pub max_table_page_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_payload: pravaha_wire::MAX_FRAME_PAYLOAD,
            max_in_flight_append_bytes: 32 << 20,
            max_pending_reads: 64,
            max_read_bytes: 2 << 20,
            tail_wait: Duration::from_secs(15),
            max_table_page_entries: 10_000,
            max_table_page_bytes: 2 << 20,
        }
    }
}

/// How the server listens and what it serves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The containers this server owns; `None` = all of them. A request for a segment of another
    /// container gets `WrongHost`.
    pub owned_containers: Option<BTreeSet<u32>>,
    /// Delegation-token checking; `None` = auth off.
    pub auth: Option<TokenVerifier>,
    pub limits: Limits,
    /// How append rates are measured for auto-scaling.
    pub rates: RateConfig,
}

impl ServerConfig {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            owned_containers: None,
            auth: None,
            limits: Limits::default(),
            rates: RateConfig::default(),
        }
    }
}

/// What every connection shares.
struct Shared {
    store: SegmentStore,
    config: ServerConfig,
    rates: rates::RateTable,
}

impl Shared {
    fn owns(&self, segment: &str) -> bool {
        self.config.owned_containers.as_ref().is_none_or(|owned| {
            let container =
                pravaha_types::container_for_segment(segment, self.store.container_count());
            owned.contains(&container.0)
        })
    }
}

/// A running segment server.
pub struct SegmentServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl SegmentServer {
    /// Binds `config.listen` and starts serving `store`.
    pub async fn start(config: ServerConfig, store: SegmentStore) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let rates = rates::RateTable::new(&config.rates, Instant::now(), connection::now_ms());
        let shared = Arc::new(Shared {
            store,
            config,
            rates,
        });
        let accept = tokio::spawn(accept_loop(listener, shared, stopped));
        tracing::info!(address = %local_addr, "segment store listening");
        Ok(Self {
            local_addr,
            stop,
            accept,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and closes every connection. Appends already handed to a container are
    /// still made durable by it; their acknowledgements are not sent.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection::serve(shared.clone(), stream, peer));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

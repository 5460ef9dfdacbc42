//! Async client of Pravega's segment protocol: what the controller uses to create, seal,
//! truncate, merge and delete segments and to keep its metadata in table segments, and what the
//! Rust client library builds on.
//!
//! - [`SegmentClient`] is cheap to clone; every clone shares one pool of connections per segment
//!   store ([`Endpoint`]). A request takes an idle connection (or dials one and exchanges
//!   `Hello`), writes one frame with a fresh process-wide request id, and reads frames until the
//!   reply with that id. The connection goes back to the pool only after a clean exchange; on
//!   any transport error, protocol error or time-out it is dropped.
//! - Every request is bounded by [`ClientConfig::request_timeout`], which covers waiting for a
//!   connection, dialling, the handshake and the reply.
//! - Replies are mapped to typed results: expected outcomes become values (`Created`, `Ok(())`
//!   for sealing a sealed segment, `None` for an unset attribute), the rest a [`ClientError`].
//!
//! This crate knows the wire protocol (through `pravaha-wire`) and TCP. It must not know the
//! storage engine, the server's internals, streams or scaling: which segment store owns a
//! segment is the caller's business (a `WrongHost` error tells it to look again).
//!
//! Behaviour and the reply → result table: `docs/segment-client.md`.

mod client;
mod connection;
mod error;
mod pool;
mod segments;
mod tables;
mod types;

pub use client::{frame_event, parse_events, ClientConfig, SegmentClient, TokenSource};
pub use error::ClientError;
pub use types::{
    Created, KeyVersion, ScalePolicy, SegmentInfo, SegmentRead, TableDelta, TableEntry, TablePage,
    TableSegmentInfo,
};

/// The address of a segment store.
pub type Endpoint = std::net::SocketAddr;

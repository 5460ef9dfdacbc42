//! Pure codec of the Pravega segment-store wire protocol, as spoken by the official Rust client
//! (`pravega-wire-protocol` 0.3.7, wire version 15) and by Java Pravega (up to version 17).
//!
//! This crate owns the bytes: frame splitting ([`split_frame`]), every command's layout
//! ([`Request`], [`Reply`] and their structs), the frames embedded in append data
//! ([`split_append_block`]) and the protocol constants. It knows nothing of segments, storage,
//! sockets or async runtimes, and it never panics on input: every read is bounds-checked and a
//! declared length is checked against the bytes present before anything is allocated.
//!
//! Layouts, optional trailing fields and where Java and the Rust client disagree are documented
//! in `docs/formats/wire-protocol.md`.
#![deny(clippy::pedantic)]
#![allow(
    clippy::module_name_repetitions,
    clippy::missing_errors_doc,
    clippy::must_use_candidate,
    clippy::doc_markdown,
    clippy::missing_panics_doc
)]

#[macro_use]
mod command;
mod codec;
mod error;
mod frame;
mod replies;
mod requests;
mod types;

#[cfg(test)]
mod golden;

pub use error::WireError;
pub use frame::{split_append_block, split_frame, EVENT_TYPE, PADDING_TYPE, PARTIAL_EVENT_TYPE};
pub use replies::*;
pub use requests::*;
pub use types::{ChunkInfo, ConditionalAttributeUpdate, TableEntries, TableKey, TableValue};

/// Largest payload (header excluded) a frame may announce; the Rust client drops a connection
/// whose reply announces more.
pub const MAX_FRAME_PAYLOAD: usize = 0x00FF_FFFF;
/// Frame header: type code (i32) and payload length (i32), big-endian.
pub const HEADER_LEN: usize = 8;
/// The wire version the official Rust client sends in Hello.
pub const WIRE_VERSION: i32 = 15;
/// The oldest version the official Rust client accepts.
pub const OLDEST_COMPATIBLE_VERSION: i32 = 5;
/// Value of a segment attribute that was never set (also "never wrote" in AppendSetup).
pub const NULL_ATTRIBUTE_VALUE: i64 = i64::MIN;
/// Table key version meaning "no condition".
pub const NO_VERSION: i64 = i64::MIN;
/// Table key version meaning "the key must not exist"; also the version of an absent key in
/// TableRead.
pub const NOT_EXISTS: i64 = -1;

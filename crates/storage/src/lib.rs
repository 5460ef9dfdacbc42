//! Pravaha's storage tiers, with no knowledge of segments, containers or the controller.
//!
//! - [`log`]: the durable log (Tier-1): an append-only sequence of checksummed, versioned frames
//!   on a [`log::LogDevice`], written in group-committed batches and recovered with torn tails cut
//!   and corruption reported. It stores opaque records numbered by sequence.
//! - [`chunk`]: chunk storage (Tier-2): immutable named chunks in long-term storage through
//!   OpenDAL, so that any of its backends is chosen by configuration alone.
//! - [`codec`]: bounds-checked little-endian encoding helpers shared by our own formats.
//! - [`sim`]: a simulated log device that tears writes, loses unsynced data and flips bits, used
//!   by deterministic simulation tests.
#![deny(clippy::pedantic)]
#![allow(
    clippy::module_name_repetitions,
    clippy::missing_errors_doc,
    clippy::must_use_candidate,
    clippy::doc_markdown,
    clippy::missing_panics_doc
)]

pub mod chunk;
pub mod codec;
pub mod log;
pub mod sim;
mod sys;

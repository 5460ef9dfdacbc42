//! The segment store's storage engine: segment containers on a durable log, with tiered chunk
//! storage, a bounded read cache and table segments. No network: the segment protocol server
//! sits on top of this crate, and nothing here knows of the controller or the wire.
//!
//! - [`SegmentStore`]: a set of containers; routes each segment to its container by name.
//! - [`ContainerHandle`]: one container's API (create, append, read, seal, truncate, merge,
//!   attributes, table operations).
//! - [`state`]: the container metadata as a pure state machine over [`state::Operation`]s.

mod container;
mod error;
pub mod operation_codec;
pub mod state;
mod store;
pub mod table;

pub use container::{
    AppendConditions, AppendOutcome, AttributeUpdate, ContainerConfig, ContainerHandle,
    ContainerStats, ReadResult, SegmentInfo,
};
pub use error::SegmentError;
pub use state::{AttributeId, SegmentKind};
pub use store::{SegmentStore, SegmentStoreConfig};
pub use table::{ExpectedVersion, RawEntry, TableChange, TableEntry};

/// Wall-clock time for segment metadata (last-modified times); behind a trait so that
/// simulations control it.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }
}

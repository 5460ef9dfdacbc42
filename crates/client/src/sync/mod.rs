//! State synchronization over table segments: the shared state of reader groups, and a general
//! state synchronizer for applications.
//!
//! - [`TableSegment`]: one table segment over the segment protocol (create, conditional
//!   updates and removals, reads by key and of what changed since a position);
//! - [`Synchronizer`]: a two-level map (outer key → inner key → [`Value`]) kept in a table
//!   segment and changed by conditional updates that retry on conflicts, in the official Rust
//!   client's byte format ([`format`](mod@format)), so both clients share one table;
//! - [`ControllerLocator`]: where a segment lives and its token, asked of the controller.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use pravaha_client::sync::Synchronizer;
//! use pravaha_client::{ClientConfig, ControllerClient};
//!
//! let controller = ControllerClient::new(ClientConfig::default())?;
//! let mut sync = Synchronizer::open(&controller, "examples", "settings").await?;
//! sync.update(|table| table.insert("colours", "favourite", "String", &"green")).await?;
//! sync.fetch_updates().await?;
//! let favourite: String = sync.get("colours", "favourite").unwrap().decode()?;
//! assert_eq!(favourite, "green");
//! # Ok(())
//! # }
//! ```

pub mod format;
mod synchronizer;
mod table;

use std::sync::Arc;

pub use crate::locator::ControllerLocator;
pub use format::{FormatError, Value};
pub use synchronizer::{SyncError, Synchronizer, Update};
pub use table::{TableDelta, TableError, TableSegment, NOT_EXISTS, NO_VERSION};

use crate::controller::ControllerClient;
use crate::segment::{Locator, ReaderConfig};

impl Synchronizer {
    /// The synchronizer `name` of `scope` (the official client's
    /// `ClientFactory::create_synchronizer`), creating its table if needed, with the changes
    /// written so far fetched. Every synchronizer opened on the same scope and name, of either
    /// client, shares the one table.
    pub async fn open(
        controller: &ControllerClient,
        scope: &str,
        name: &str,
    ) -> Result<Self, SyncError> {
        let locator: Arc<dyn Locator> = Arc::new(ControllerLocator::new(controller.clone()));
        Self::open_with(locator, scope, name, ReaderConfig::default()).await
    }

    /// Like [`Self::open`], with segments located by `locator`.
    pub async fn open_with(
        locator: Arc<dyn Locator>,
        scope: &str,
        name: &str,
        config: ReaderConfig,
    ) -> Result<Self, SyncError> {
        let table =
            TableSegment::create(locator, format::table_segment_name(scope, name), config).await?;
        let mut synchronizer = Self::new(table);
        synchronizer.fetch_updates().await?;
        Ok(synchronizer)
    }
}

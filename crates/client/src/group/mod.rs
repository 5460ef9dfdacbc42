//! Reader groups: readers sharing the segments of some streams, each segment read by one
//! reader at a time, with the group's state in a table segment kept the way the official Rust
//! client keeps it ([`mod@format`]), so readers of both clients can share one group.
//!
//! - [`ReaderGroup`]: creates the group ([`ReaderGroupConfig`]: its streams from the head, the
//!   tail or a stream cut, optionally up to an end cut), adds readers, takes readers offline,
//!   answers the group's positions, takes checkpoints and resets the group to one;
//! - [`EventReader`]: acquires segments up to its fair share, reads their events in order,
//!   records its positions, releases segments when other readers join, and moves on to
//!   successors only after all their predecessors are read (per-key order across scaling).
//!
//! **End cuts.** A stream with an end cut ([`ReaderGroupConfig::end_at`]) is read up to it:
//! each segment the cut names up to its offset and no further, without its successors
//! (Java's rule: a segment of the end cut completes without successors); readers answer
//! `None` once everything before the cut is read. Official readers ignore end cuts.
//!
//! **Checkpoints** ([`ReaderGroup::initiate_checkpoint`], or automatic at
//! [`ReaderGroupConfig::automatic_checkpoint_interval`]): every online reader takes part at its
//! next read once it learns of the checkpoint (at the group's refresh time), recording its
//! positions; [`EventReader::read_next`] announces it ([`ReadItem::Checkpoint`]) between the
//! events before and after it. Complete once every reader named at creation took part or
//! left; a reader that never takes part (the official client's) makes it fail at its time-out,
//! naming it. A [`Checkpoint`]'s cuts start new groups ([`StartFrom::Cut`]) or restore this
//! one ([`ReaderGroup::reset_to_checkpoint`], which takes every reader offline). Kept under
//! outer keys of ours ([`mod@format`]); the contract and its proof sketch are in
//! `checkpoint_state.rs`.
//!
//! **Retention.** With [`RetentionMode::Manual`] or [`RetentionMode::Automatic`] the group is
//! registered with the controller as a subscriber of its streams; the application reports
//! cuts ([`ReaderGroup::update_retention_stream_cut`]), or, automatic, the reader completing a
//! checkpoint reports its cuts. The controller's consumption-based retention then truncates no
//! stream past its slowest subscriber's cut.
//!
//! A failure detector (not in Pravega, which leaves it to the application): each of our readers
//! moves a heartbeat counter on in the group's state every
//! [`ReaderSettings::heartbeat_interval`] (a task of its own, from its creation until it is
//! closed or dropped), under an outer key the official client ignores
//! ([`format::HEARTBEATS`]). Each reader's maintenance (in [`EventReader::next_event`]) watches
//! the others' counters: a reader whose counter it has not seen change for
//! [`ReaderSettings::offline_timeout`] is taken offline as [`ReaderGroup::reader_offline`]
//! does, its segments unassigned at the positions it last recorded, and read by the others
//! from there (events it handed out after its last recorded position are read again). Only
//! the observer's clock is used (no clock skew between readers matters). Readers that never
//! heart-beat, such as the official client's readers sharing our groups, are never taken
//! offline by the detector; both settings can be disabled (`None`).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use pravaha_client::controller::types::ScopedStream;
//! use pravaha_client::group::{ReaderGroup, ReaderGroupConfig};
//! use pravaha_client::{ClientConfig, ControllerClient};
//!
//! let controller = ControllerClient::new(ClientConfig::default())?;
//! let config = ReaderGroupConfig::new().stream(ScopedStream::new("examples", "orders"));
//! let group = ReaderGroup::create(&controller, "examples", "billing", config).await?;
//! let mut reader = group.create_reader("billing-1").await?;
//! while let Some(event) = reader.next_event().await? {
//!     println!("{} bytes from {}", event.payload.len(), event.segment.qualified_name());
//! }
//! // The streams are sealed and every event was read.
//! reader.close().await?;
//! # Ok(())
//! # }
//! ```

mod checkpoint;
mod checkpoint_state;
mod config;
mod error;
pub mod format;
mod reader;
mod state;
mod tasks;

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::controller::types::{ScopedStream, StreamCut};
pub use crate::controller::RetentionMode;
use crate::controller::{ControllerClient, ControllerError};
use crate::segment::{Locator, ReaderConfig, SegmentReader};
use crate::sync::{ControllerLocator, SyncError, Synchronizer};
pub use checkpoint::Checkpoint;
pub use config::{ReaderGroupConfig, StartFrom};
pub use error::GroupError;
pub use reader::{EventRead, EventReader, ReadItem, ReaderSettings};
pub use state::Positions;

/// A reader group: a handle on its shared state. Cheap to clone; clones share one copy of the
/// state (separate processes each open their own with [`Self::open`]).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::group::{ReaderGroup, ReaderGroupConfig};
/// use pravaha_client::{ClientConfig, ControllerClient};
///
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// let config = ReaderGroupConfig::new().stream(ScopedStream::new("shop", "orders"));
/// let group = ReaderGroup::create(&controller, "shop", "billing", config).await?;
/// let reader = group.create_reader("billing-1").await?;
/// let checkpoint = group.initiate_checkpoint("start", Duration::from_secs(30)).await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ReaderGroup {
    scope: String,
    name: String,
    controller: ControllerClient,
    locator: Arc<dyn Locator>,
    state: Arc<Mutex<Synchronizer>>,
}

impl ReaderGroup {
    /// Creates group `name` in `scope` (or joins it if it exists: the configuration of the
    /// existing group stays). A group whose retention mode is not
    /// [`RetentionMode::None`] is first registered with the controller as a subscriber of its
    /// streams (`createReaderGroup`; idempotent).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::{ReaderGroup, ReaderGroupConfig};
    /// use pravaha_client::{ClientConfig, ControllerClient};
    ///
    /// let controller = ControllerClient::new(ClientConfig::default())?;
    /// let config = ReaderGroupConfig::new().stream(ScopedStream::new("shop", "orders"));
    /// let group = ReaderGroup::create(&controller, "shop", "billing", config).await?;
    /// assert_eq!(group.name(), "billing");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create(
        controller: &ControllerClient,
        scope: &str,
        name: &str,
        config: ReaderGroupConfig,
    ) -> Result<Self, GroupError> {
        config.validate()?;
        if config.retention_mode() != RetentionMode::None {
            controller
                .create_reader_group(&config.to_record(scope, name))
                .await?;
        }
        let group = Self::open(controller, scope, name).await?;
        let segments = group.starting_segments(&config).await?;
        let (state, settings) = (config.to_state(), config.settings_to_state());
        group
            .state
            .lock()
            .await
            .update(|update| {
                let created = state::initialize(update, &state, &segments)?;
                if created {
                    state::put_settings(update, &settings)?;
                }
                Ok(created)
            })
            .await?;
        Ok(group)
    }

    /// The existing group `name` of `scope` (its table is created if missing, empty).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// use pravaha_client::group::ReaderGroup;
    /// use pravaha_client::{ClientConfig, ControllerClient};
    ///
    /// let controller = ControllerClient::new(ClientConfig::default())?;
    /// let group = ReaderGroup::open(&controller, "shop", "billing").await?;
    /// println!("online: {:?}", group.readers().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(
        controller: &ControllerClient,
        scope: &str,
        name: &str,
    ) -> Result<Self, GroupError> {
        let locator: Arc<dyn Locator> = Arc::new(ControllerLocator::new(controller.clone()));
        let sync =
            Synchronizer::open_with(locator.clone(), scope, name, ReaderConfig::default()).await?;
        Ok(Self {
            scope: scope.to_owned(),
            name: name.to_owned(),
            controller: controller.clone(),
            locator,
            state: Arc::new(Mutex::new(sync)),
        })
    }

    /// The group's scope.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) {
    /// assert_eq!(group.scope(), "shop");
    /// # }
    /// ```
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The group's name.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) {
    /// assert_eq!(group.name(), "billing");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's configuration as its state holds it (the one it was created or last reset
    /// with).
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// let config = group.config().await?;
    /// for stream in config.streams() {
    ///     println!("reads {stream}, ends at {:?}", config.end_of(stream));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn config(&self) -> Result<ReaderGroupConfig, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        let config =
            state::config(&*sync)?.ok_or_else(|| GroupError::NoSuchGroup(self.scoped_name()))?;
        let settings = checkpoint_state::settings(&*sync)?;
        Ok(ReaderGroupConfig::from_state(&config, settings.as_ref()))
    }

    /// Adds reader `id` (online, no segments yet) and returns it; it acquires segments on its
    /// first read. Fails if a reader `id` is online.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut reader = group.create_reader("billing-1").await?;
    /// if let Some(event) = reader.next_event().await? {
    ///     println!("{} bytes", event.payload.len());
    /// }
    /// reader.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_reader(&self, id: &str) -> Result<EventReader, GroupError> {
        self.create_reader_with(id, ReaderSettings::default()).await
    }

    /// Like [`Self::create_reader`], with `settings`.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use pravaha_client::group::ReaderSettings;
    ///
    /// let settings = ReaderSettings {
    ///     offline_timeout: Some(Duration::from_secs(5)),
    ///     ..ReaderSettings::default()
    /// };
    /// let reader = group.create_reader_with("billing-2", settings).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn create_reader_with(
        &self,
        id: &str,
        settings: ReaderSettings,
    ) -> Result<EventReader, GroupError> {
        self.state
            .lock()
            .await
            .update(|update| {
                state::add_reader(update, id)?;
                // Heart-beating from the moment it joins.
                if settings.heartbeat_interval.is_some() {
                    state::heartbeat(update, id)?;
                }
                Ok(())
            })
            .await?;
        Ok(EventReader::new(self.clone(), id, settings))
    }

    /// The online readers.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// for reader in group.readers().await? {
    ///     println!("{reader} is online");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn readers(&self) -> Result<Vec<String>, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        Ok(state::assigned(&*sync)?.into_keys().collect())
    }

    /// Takes reader `id` offline (a reader that stopped without closing): its segments become
    /// unassigned at `positions` where given, else at the positions it last recorded.
    /// Checkpoints waiting for it record those positions and stop waiting for it.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// // The process of reader "billing-1" died; its segments go back to the group.
    /// group.reader_offline("billing-1", None).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reader_offline(
        &self,
        id: &str,
        positions: Option<&Positions>,
    ) -> Result<(), GroupError> {
        let completed = self
            .state
            .lock()
            .await
            .update(|update| state::remove_reader(update, id, positions))
            .await
            .map_err(|error| match error {
                SyncError::Precondition(_) => GroupError::ReaderOffline(id.to_owned()),
                other => other.into(),
            })?;
        self.checkpoints_completed(&completed).await;
        Ok(())
    }

    /// The segments of online reader `id` with the positions it last recorded (where they
    /// restart if it goes offline without closing); `None` if it is offline.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(positions) = group.reader_positions("billing-1").await? {
    ///     for (segment, offset) in positions {
    ///         println!("{segment} at {offset}");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reader_positions(&self, id: &str) -> Result<Option<Positions>, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        Ok(state::assigned(&*sync)?.remove(id))
    }

    /// Every segment the group still has to read (owned or not) with its recorded position:
    /// a stream cut per stream, as far as readers have recorded their positions.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// let left = group.positions().await?;
    /// println!("{} segments left to read", left.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn positions(&self) -> Result<Positions, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        let mut positions = state::unassigned(&*sync)?;
        for owned in state::assigned(&*sync)?.into_values() {
            positions.extend(owned);
        }
        Ok(positions)
    }

    /// Deletes the group's state (its readers stop at their next state change) and, if it is
    /// a subscriber, its record at the controller (so it no longer holds back retention).
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// group.delete().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete(self) -> Result<(), GroupError> {
        let subscribed = match self.config().await {
            Ok(config) => config.retention_mode() != RetentionMode::None,
            Err(GroupError::NoSuchGroup(_)) => false,
            Err(error) => return Err(error),
        };
        if subscribed {
            match self
                .controller
                .get_reader_group(&self.scope, &self.name)
                .await
            {
                Ok(record) => {
                    self.controller
                        .delete_reader_group(&self.scope, &self.name, &record.id)
                        .await?;
                }
                Err(ControllerError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let table = crate::sync::TableSegment::open(
            self.locator.clone(),
            self.state.lock().await.table_name(),
            ReaderConfig::default(),
        );
        Synchronizer::new(table).delete().await?;
        Ok(())
    }

    /// `scope/name`, the group's name as a subscriber.
    fn scoped_name(&self) -> String {
        format!("{}/{}", self.scope, self.name)
    }

    /// Every starting segment of `config` with its offset.
    async fn starting_segments(&self, config: &ReaderGroupConfig) -> Result<Positions, GroupError> {
        let mut segments = Positions::new();
        for stream in config.streams() {
            if let Some(start) = config.start_of(stream) {
                segments.extend(self.starting_positions(stream, start).await?);
            }
        }
        Ok(segments)
    }

    async fn starting_positions(
        &self,
        stream: &ScopedStream,
        start: &StartFrom,
    ) -> Result<Positions, GroupError> {
        let cut = match start {
            StartFrom::Head => self.controller.get_segments_at_head(stream).await?,
            StartFrom::Cut(cut) => cut.clone(),
            StartFrom::Tail => {
                let current = self.controller.get_current_segments(stream).await?;
                let mut cut = StreamCut::new(stream.clone());
                for segment in current.segments {
                    let mut reader = SegmentReader::new(
                        self.locator.clone(),
                        segment.segment.qualified_name(),
                        ReaderConfig::default(),
                    );
                    let info = reader.segment_info().await?;
                    cut.positions.insert(segment.segment.id, info.length);
                }
                cut
            }
        };
        Ok(cut
            .positions
            .iter()
            .map(|(id, offset)| (stream.segment(*id), *offset))
            .collect())
    }
}

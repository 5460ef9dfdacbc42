//! Reader groups: readers sharing the segments of some streams, each segment read by one
//! reader at a time, with the group's state in a table segment kept the way the official Rust
//! client keeps it ([`format`]), so readers of both clients can share one group.
//!
//! - [`ReaderGroup`]: creates the group (its streams from the head, the tail or a stream cut),
//!   adds readers, takes readers offline, answers the group's positions;
//! - [`EventReader`]: acquires segments up to its fair share, reads their events in order,
//!   records its positions, releases segments when other readers join, and moves on to
//!   successors only after all their predecessors are read (per-key order across scaling).
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

pub mod format;
mod reader;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::controller::types::{ScopedStream, StreamCut};
use crate::controller::{ControllerClient, ControllerError};
use crate::segment::{Locator, ParseError, ReaderConfig, ReaderError, SegmentReader};
use crate::sync::{ControllerLocator, SyncError, Synchronizer};
use format::{
    ConfigV1, ConfigVersioned, SegmentRecord, StreamCutV1, StreamCutVersioned, StreamRecord,
};
pub use reader::{EventRead, EventReader, ReaderSettings};
pub use state::Positions;

/// Where a reader group starts reading a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    Head,
    /// The end of the stream when the group is created: only later events are read.
    Tail,
    Cut(StreamCut),
}

/// The streams a group reads and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderGroupConfig {
    streams: BTreeMap<ScopedStream, StartFrom>,
    refresh_time: Duration,
}

impl Default for ReaderGroupConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ReaderGroupConfig {
    /// No streams yet; a group refresh time of 3 s (the official client's default, recorded
    /// in the group's configuration).
    pub fn new() -> Self {
        Self {
            streams: BTreeMap::new(),
            refresh_time: Duration::from_secs(3),
        }
    }

    /// Reads `stream` from its head.
    pub fn stream(self, stream: ScopedStream) -> Self {
        self.stream_from(stream, StartFrom::Head)
    }

    pub fn stream_from(mut self, stream: ScopedStream, start: StartFrom) -> Self {
        self.streams.insert(stream, start);
        self
    }

    pub fn refresh_time(mut self, refresh_time: Duration) -> Self {
        self.refresh_time = refresh_time;
        self
    }

    pub fn streams(&self) -> impl Iterator<Item = &ScopedStream> {
        self.streams.keys()
    }

    fn to_state(&self) -> ConfigVersioned {
        let starting = self
            .streams
            .iter()
            .map(|(stream, start)| {
                let cut = match start {
                    StartFrom::Head => StreamCutVersioned::Unbounded,
                    StartFrom::Tail => StreamCutVersioned::Tail,
                    StartFrom::Cut(cut) => StreamCutVersioned::V1(StreamCutV1 {
                        stream: StreamRecord::from(stream),
                        positions: cut
                            .positions
                            .iter()
                            .map(|(id, offset)| {
                                (SegmentRecord::from(&stream.segment(*id)), *offset)
                            })
                            .collect(),
                    }),
                };
                (StreamRecord::from(stream), cut)
            })
            .collect();
        ConfigVersioned::V1(ConfigV1 {
            group_refresh_time_millis: u64::try_from(self.refresh_time.as_millis())
                .unwrap_or(u64::MAX),
            starting_stream_cuts: starting,
            ending_stream_cuts: BTreeMap::new(),
        })
    }
}

/// Why a reader-group operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    Read(#[from] ReaderError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The reader was taken offline (by itself, the application or another reader).
    #[error("reader {0} is offline")]
    ReaderOffline(String),
    #[error("invalid reader group configuration: {0}")]
    InvalidConfig(String),
}

/// A reader group: a handle on its shared state. Cheap to clone.
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
    /// existing group stays).
    pub async fn create(
        controller: &ControllerClient,
        scope: &str,
        name: &str,
        config: ReaderGroupConfig,
    ) -> Result<Self, GroupError> {
        if config.streams.is_empty() {
            return Err(GroupError::InvalidConfig("no streams".into()));
        }
        let group = Self::open(controller, scope, name).await?;
        let mut segments = Positions::new();
        for (stream, start) in &config.streams {
            segments.extend(group.starting_positions(stream, start).await?);
        }
        let state = config.to_state();
        group
            .state
            .lock()
            .await
            .update(|update| state::initialize(update, &state, &segments))
            .await?;
        Ok(group)
    }

    /// The existing group `name` of `scope` (its table is created if missing, empty).
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

    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds reader `id` (online, no segments yet) and returns it; it acquires segments on its
    /// first read. Fails if a reader `id` is online.
    pub async fn create_reader(&self, id: &str) -> Result<EventReader, GroupError> {
        self.create_reader_with(id, ReaderSettings::default()).await
    }

    /// Like [`Self::create_reader`], with `settings`.
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
    pub async fn readers(&self) -> Result<Vec<String>, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        Ok(state::assigned(&*sync)?.into_keys().collect())
    }

    /// Takes reader `id` offline (a reader that stopped without closing): its segments become
    /// unassigned at `positions` where given, else at the positions it last recorded.
    pub async fn reader_offline(
        &self,
        id: &str,
        positions: Option<&Positions>,
    ) -> Result<(), GroupError> {
        self.state
            .lock()
            .await
            .update(|update| state::remove_reader(update, id, positions))
            .await
            .map_err(|error| match error {
                SyncError::Precondition(_) => GroupError::ReaderOffline(id.to_owned()),
                other => other.into(),
            })
    }

    /// The segments of online reader `id` with the positions it last recorded (where they
    /// restart if it goes offline without closing); `None` if it is offline.
    pub async fn reader_positions(&self, id: &str) -> Result<Option<Positions>, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        Ok(state::assigned(&*sync)?.remove(id))
    }

    /// Every segment the group still has to read (owned or not) with its recorded position:
    /// a stream cut per stream, as far as readers have recorded their positions.
    pub async fn positions(&self) -> Result<Positions, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        let mut positions = state::unassigned(&*sync)?;
        for owned in state::assigned(&*sync)?.into_values() {
            positions.extend(owned);
        }
        Ok(positions)
    }

    /// Deletes the group's state (its readers stop at their next state change).
    pub async fn delete(self) -> Result<(), GroupError> {
        let table = crate::sync::TableSegment::open(
            self.locator.clone(),
            self.state.lock().await.table_name(),
            ReaderConfig::default(),
        );
        Synchronizer::new(table).delete().await?;
        Ok(())
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

//! Checkpoints of a reader group ([`Checkpoint`]), restoring a group to one, and reporting
//! the group's position to the controller for retention.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::controller::types::{ScopedSegment, ScopedStream, StreamCut};
use crate::controller::{ControllerError, RetentionMode};
use crate::segment::{ReaderConfig, SegmentReader};

use super::checkpoint_state::{self, Creation};
use super::format::CheckpointRecord;
use super::state::{self, Positions};
use super::{GroupError, ReaderGroup, ReaderGroupConfig, StartFrom};

/// How often [`ReaderGroup::initiate_checkpoint`] looks at the state while it waits.
const CHECKPOINT_POLL: Duration = Duration::from_millis(50);

/// A completed checkpoint: a position in every stream of the group such that the events the
/// readers handed out before taking part are exactly those before it.
///
/// A stream's cut names the segments the group still had to read (a stream the group has
/// finished is at its end cut if it has one, else names no segment: nothing is left). Restore
/// a group to it with [`ReaderGroup::reset_to_checkpoint`], or start a new group from its cuts
/// ([`StartFrom::Cut`]).
///
/// ```no_run
/// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pravaha_client::group::{ReaderGroupConfig, StartFrom};
///
/// let checkpoint = group.initiate_checkpoint("nightly", Duration::from_secs(30)).await?;
/// let mut replay = ReaderGroupConfig::new();
/// for cut in checkpoint.stream_cuts() {
///     replay = replay.stream_from(cut.stream.clone(), StartFrom::Cut(cut.clone()));
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    name: String,
    sequence: u64,
    cuts: BTreeMap<ScopedStream, StreamCut>,
}

impl Checkpoint {
    /// The checkpoint's name (automatic ones are named `pravaha-auto-<sequence>`).
    ///
    /// ```no_run
    /// # fn example(checkpoint: pravaha_client::group::Checkpoint) {
    /// println!("checkpoint {}", checkpoint.name());
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creation order among the group's checkpoints (from 1).
    ///
    /// ```no_run
    /// # fn example(a: pravaha_client::group::Checkpoint, b: pravaha_client::group::Checkpoint) {
    /// let latest = if a.sequence() > b.sequence() { a } else { b };
    /// # }
    /// ```
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// One cut per stream of the group.
    ///
    /// ```no_run
    /// # fn example(checkpoint: pravaha_client::group::Checkpoint) {
    /// for cut in checkpoint.stream_cuts() {
    ///     println!("{}: {:?}", cut.stream, cut.positions);
    /// }
    /// # }
    /// ```
    pub fn stream_cuts(&self) -> impl Iterator<Item = &StreamCut> {
        self.cuts.values()
    }

    /// The cut of `stream`; `None` if the group does not read it.
    ///
    /// ```no_run
    /// # fn example(checkpoint: pravaha_client::group::Checkpoint) {
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::StartFrom;
    ///
    /// let orders = ScopedStream::new("shop", "orders");
    /// let start = checkpoint.stream_cut(&orders).cloned().map(StartFrom::Cut);
    /// # }
    /// ```
    pub fn stream_cut(&self, stream: &ScopedStream) -> Option<&StreamCut> {
        self.cuts.get(stream)
    }

    /// Every segment named by the cuts, with its offset.
    ///
    /// ```no_run
    /// # fn example(checkpoint: pravaha_client::group::Checkpoint) {
    /// for (segment, offset) in checkpoint.positions() {
    ///     println!("{segment} from {offset}");
    /// }
    /// # }
    /// ```
    pub fn positions(&self) -> Positions {
        self.cuts
            .values()
            .flat_map(|cut| {
                cut.positions
                    .iter()
                    .map(|(id, offset)| (cut.stream.segment(*id), *offset))
            })
            .collect()
    }

    /// The checkpoint as the state holds it, with the group's configuration (its streams and
    /// end cuts).
    fn from_record(
        name: &str,
        record: &CheckpointRecord,
        config: &ReaderGroupConfig,
    ) -> Result<Self, GroupError> {
        let mut cuts: BTreeMap<ScopedStream, StreamCut> = config
            .streams()
            .map(|stream| (stream.clone(), StreamCut::new(stream.clone())))
            .collect();
        for (segment, offset) in &record.positions {
            let segment: ScopedSegment = segment.parse().map_err(|message: String| {
                GroupError::Sync(crate::sync::SyncError::Precondition(format!(
                    "bad segment in checkpoint {name}: {message}"
                )))
            })?;
            if let Some(cut) = cuts.get_mut(&segment.stream) {
                cut.positions.insert(segment.id, *offset);
            }
        }
        for (stream, cut) in &mut cuts {
            if cut.positions.is_empty() {
                if let Some(end) = config.end_of(stream) {
                    *cut = end.clone();
                }
            }
        }
        Ok(Self {
            name: name.to_owned(),
            sequence: record.sequence,
            cuts,
        })
    }
}

impl ReaderGroup {
    /// Starts checkpoint `name` and waits up to `timeout` for it to complete: each of our
    /// online readers takes part at its next read (recording its positions; its
    /// [`EventReader::read_next`](super::EventReader::read_next) answers
    /// [`ReadItem::Checkpoint`](super::ReadItem::Checkpoint)). At the time-out the checkpoint is
    /// abandoned and the error names the readers that had not taken part (the official
    /// client's readers never do). With retention [`RetentionMode::Automatic`], the completed
    /// checkpoint's cuts are reported to the controller.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// let checkpoint = group.initiate_checkpoint("before-upgrade", Duration::from_secs(30)).await?;
    /// println!("{} segments recorded", checkpoint.positions().len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn initiate_checkpoint(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<Checkpoint, GroupError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.create_checkpoint(name, false).await?;
        loop {
            if let Some(found) = self.find_checkpoint(name).await? {
                if found.is_complete() {
                    return self.checkpoint_from(name, &found).await;
                }
            } else {
                return Err(GroupError::CheckpointRemoved(name.to_owned()));
            }
            if tokio::time::Instant::now() >= deadline {
                return self.abandon_checkpoint(name).await;
            }
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + CHECKPOINT_POLL))
                .await;
        }
    }

    /// The completed checkpoint `name`, if the state still keeps it (the latest few completed
    /// ones are kept).
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(checkpoint) = group.checkpoint("before-upgrade").await? {
    ///     group.reset_to_checkpoint(&checkpoint).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, GroupError> {
        match self.find_checkpoint(name).await? {
            Some(record) if record.is_complete() => {
                Ok(Some(self.checkpoint_from(name, &record).await?))
            }
            _ => Ok(None),
        }
    }

    /// The latest completed checkpoint (application or automatic), if any.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(checkpoint) = group.latest_checkpoint().await? {
    ///     println!("latest: {}", checkpoint.name());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, GroupError> {
        let latest = {
            let mut sync = self.state.lock().await;
            sync.fetch_updates().await?;
            checkpoint_state::checkpoints(&*sync)?
                .into_iter()
                .filter(|(_, record)| record.is_complete())
                .max_by_key(|(_, record)| record.sequence)
        };
        match latest {
            Some((name, record)) => Ok(Some(self.checkpoint_from(&name, &record).await?)),
            None => Ok(None),
        }
    }

    /// Restores the group to `checkpoint`: its configuration stays but each stream starts at
    /// the checkpoint's cut (Java's `resetReaderGroup` with the checkpoint's positions).
    /// See [`Self::reset`] for what happens to online readers.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// let checkpoint = group.latest_checkpoint().await?.expect("a checkpoint");
    /// group.reset_to_checkpoint(&checkpoint).await?;
    /// let mut reader = group.create_reader("replay-1").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reset_to_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), GroupError> {
        let mut config = self.config().await?;
        for cut in checkpoint.stream_cuts() {
            config = config.stream_from(cut.stream.clone(), StartFrom::Cut(cut.clone()));
        }
        self.reset(config).await
    }

    /// Starts the group over with `config` (Java's `resetReaderGroup`): its segments are those
    /// of the new starting positions, nothing else. Every online reader is taken offline:
    /// each of ours finds out at its next state change or refresh (at most one group refresh
    /// time later, if the application keeps reading) and answers
    /// [`GroupError::ReaderOffline`] from then on; events it hands out
    /// before that are from before the reset, so stop readers (or discard what they return)
    /// before resetting, and create new readers after. Outstanding checkpoints are abandoned;
    /// completed ones stay. The controller's record follows when either configuration
    /// subscribes to retention; the controller keeps the subscriber's last reported cut (it
    /// only moves forward), so after restoring an older checkpoint, cuts reported before the
    /// group is past that one again are refused (automatic reports log a warning).
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::{ReaderGroupConfig, StartFrom};
    ///
    /// let config = ReaderGroupConfig::new().stream_from(ScopedStream::new("shop", "orders"), StartFrom::Tail);
    /// group.reset(config).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reset(&self, config: ReaderGroupConfig) -> Result<(), GroupError> {
        config.validate()?;
        let previous = self.config().await?;
        let subscribed =
            |config: &ReaderGroupConfig| config.retention_mode() != RetentionMode::None;
        if subscribed(&previous) || subscribed(&config) {
            let mut record = config.to_record(&self.scope, &self.name);
            match self
                .controller
                .get_reader_group(&self.scope, &self.name)
                .await
            {
                Ok(current) => {
                    record.id = current.id;
                    record.generation = current.generation;
                    self.controller.update_reader_group(&record).await?;
                }
                Err(ControllerError::NotFound { .. }) => {
                    self.controller.create_reader_group(&record).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        let segments = self.starting_segments(&config).await?;
        let (state, settings) = (config.to_state(), config.settings_to_state());
        self.state
            .lock()
            .await
            .update(|update| state::reset(update, &state, &settings, &segments))
            .await?;
        tracing::info!(group = %self.scoped_name(), segments = segments.len(), "reader group reset");
        Ok(())
    }

    /// Reports to the controller that the group has read up to `cuts` (retention
    /// [`RetentionMode::Manual`]; automatic groups report at each checkpoint): retention
    /// keeps every stream's data after the slowest subscriber's cut. A cut behind the last one
    /// reported is refused.
    ///
    /// ```no_run
    /// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// let checkpoint = group.initiate_checkpoint("processed", Duration::from_secs(30)).await?;
    /// // ... once the events before it are durably processed:
    /// let cuts: Vec<_> = checkpoint.stream_cuts().cloned().collect();
    /// group.update_retention_stream_cut(&cuts).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update_retention_stream_cut(&self, cuts: &[StreamCut]) -> Result<(), GroupError> {
        let config = self.config().await?;
        if config.retention_mode() == RetentionMode::None {
            return Err(GroupError::NotSubscribed(self.scoped_name()));
        }
        let record = self
            .controller
            .get_reader_group(&self.scope, &self.name)
            .await?;
        let subscriber = self.scoped_name();
        for cut in cuts.iter().filter(|cut| !cut.positions.is_empty()) {
            self.controller
                .update_subscriber_stream_cut(&subscriber, &record.id, record.generation, cut)
                .await?;
        }
        Ok(())
    }

    /// Creates checkpoint `name` (automatic ones only when none is outstanding: then `false`).
    pub(super) async fn create_checkpoint(
        &self,
        name: &str,
        automatic: bool,
    ) -> Result<bool, GroupError> {
        let config = self.config().await?;
        loop {
            let future = {
                let mut sync = self.state.lock().await;
                sync.fetch_updates().await?;
                state::future(&*sync)?
            };
            let completed = self.completed_predecessors(&future).await?;
            let max = config.max_outstanding();
            let created = self
                .state
                .lock()
                .await
                .update(|update| {
                    checkpoint_state::create(update, name, automatic, max, &future, &completed)
                })
                .await?;
            match created {
                Creation::Started { sequence, complete } => {
                    tracing::debug!(group = %self.scoped_name(), checkpoint = name, sequence, automatic, "checkpoint started");
                    if complete {
                        self.checkpoints_completed(&[name.to_owned()]).await;
                    }
                    return Ok(true);
                }
                Creation::Exists if automatic => return Ok(false),
                Creation::Exists => return Err(GroupError::CheckpointExists(name.to_owned())),
                Creation::TooMany { max } => return Err(GroupError::TooManyCheckpoints { max }),
                Creation::FutureChanged => continue,
            }
        }
    }

    /// Abandons outstanding checkpoint `name`: the error names the readers it waited for; a
    /// checkpoint that completed meanwhile is answered.
    pub(super) async fn abandon_checkpoint(&self, name: &str) -> Result<Checkpoint, GroupError> {
        let abandoned = self
            .state
            .lock()
            .await
            .update(|update| checkpoint_state::abandon(update, name))
            .await?;
        if let Some(readers) = abandoned {
            tracing::warn!(group = %self.scoped_name(), checkpoint = name, ?readers, "checkpoint abandoned: readers did not take part");
            return Err(GroupError::CheckpointFailed {
                name: name.to_owned(),
                readers,
            });
        }
        self.checkpoint(name)
            .await?
            .ok_or_else(|| GroupError::CheckpointRemoved(name.to_owned()))
    }

    /// Completed checkpoints' aftermath: with automatic retention their cuts are reported to
    /// the controller (a failure is logged; the next checkpoint reports again).
    pub(super) async fn checkpoints_completed(&self, names: &[String]) {
        for name in names {
            if let Err(error) = self.report_checkpoint(name).await {
                tracing::warn!(group = %self.scoped_name(), checkpoint = name.as_str(), %error, "could not report the checkpoint's stream cuts for retention");
            }
        }
    }

    async fn report_checkpoint(&self, name: &str) -> Result<(), GroupError> {
        if self.config().await?.retention_mode() != RetentionMode::Automatic {
            return Ok(());
        }
        let Some(checkpoint) = self.checkpoint(name).await? else {
            return Ok(()); // pruned meanwhile: a later one was reported
        };
        let cuts: Vec<StreamCut> = checkpoint.stream_cuts().cloned().collect();
        self.update_retention_stream_cut(&cuts).await?;
        tracing::debug!(group = %self.scoped_name(), checkpoint = name, "checkpoint's stream cuts reported for retention");
        Ok(())
    }

    async fn find_checkpoint(&self, name: &str) -> Result<Option<CheckpointRecord>, GroupError> {
        let mut sync = self.state.lock().await;
        sync.fetch_updates().await?;
        Ok(checkpoint_state::checkpoints(&*sync)?.remove(name))
    }

    async fn checkpoint_from(
        &self,
        name: &str,
        record: &CheckpointRecord,
    ) -> Result<Checkpoint, GroupError> {
        let config = self.config().await?;
        Checkpoint::from_record(name, record, &config)
    }

    /// The predecessors, read already, of successors still waiting for others, at their ends:
    /// without them a cut would leave the successor waiting for ever once restored.
    async fn completed_predecessors(
        &self,
        future: &BTreeMap<ScopedSegment, BTreeSet<i64>>,
    ) -> Result<Positions, GroupError> {
        let mut completed = Positions::new();
        for (successor, waiting) in future {
            let Some(some_waiting) = waiting.iter().next() else {
                continue;
            };
            let predecessor = successor
                .stream
                .segment(crate::controller::types::SegmentId(*some_waiting));
            let successors = self.controller.get_successors(&predecessor).await?;
            let Some(entry) = successors
                .successors
                .iter()
                .find(|s| s.segment.segment == *successor)
            else {
                continue;
            };
            for id in &entry.predecessors {
                if waiting.contains(&id.0) {
                    continue;
                }
                let segment = successor.stream.segment(*id);
                let mut reader = SegmentReader::new(
                    self.locator.clone(),
                    segment.qualified_name(),
                    ReaderConfig::default(),
                );
                let length = reader.segment_info().await?.length;
                completed.insert(segment, length);
            }
        }
        Ok(completed)
    }
}

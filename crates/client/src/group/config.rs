//! [`ReaderGroupConfig`]: the streams a group reads, where it starts and ends, its checkpoints
//! and how it holds back retention; kept in the group's state (the official part in `config`,
//! ours in `pravaha_settings`, see [`super::format`]).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::controller::types::{ScopedStream, SegmentId, StreamCut};
use crate::controller::{ReaderGroupRecord, RetentionMode};

use super::format::{
    ConfigV1, ConfigVersioned, GroupSettingsV1, GroupSettingsVersioned, SegmentRecord, StreamCutV1,
    StreamCutVersioned, StreamRecord,
};
use super::GroupError;

/// Where a reader group starts reading a stream.
///
/// ```
/// use pravaha_client::controller::types::{ScopedStream, SegmentId, StreamCut};
/// use pravaha_client::group::StartFrom;
///
/// let mut cut = StreamCut::new(ScopedStream::new("shop", "orders"));
/// cut.positions.insert(SegmentId(0), 4096);
/// let start = StartFrom::Cut(cut);
/// assert_ne!(start, StartFrom::Head);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// The stream's head (its first segments, at their truncation offsets).
    Head,
    /// The end of the stream when the group is created: only later events are read.
    Tail,
    /// A stream cut, such as a [`Checkpoint`](super::Checkpoint)'s: each segment named is read
    /// from its offset (a cut naming no segment reads nothing of the stream).
    Cut(StreamCut),
}

/// The streams a group reads, where it starts and ends, its checkpoints and retention.
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::controller::RetentionMode;
/// use pravaha_client::group::ReaderGroupConfig;
///
/// let orders = ScopedStream::new("shop", "orders");
/// let config = ReaderGroupConfig::new()
///     .stream(orders.clone())
///     .automatic_checkpoint_interval(Some(Duration::from_secs(30)))
///     .retention(RetentionMode::Automatic);
/// assert_eq!(config.streams().collect::<Vec<_>>(), vec![&orders]);
/// assert_eq!(config.retention_mode(), RetentionMode::Automatic);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderGroupConfig {
    streams: BTreeMap<ScopedStream, StartFrom>,
    ends: BTreeMap<ScopedStream, StreamCut>,
    refresh_time: Duration,
    checkpoint_interval: Option<Duration>,
    max_outstanding_checkpoints: u32,
    retention: RetentionMode,
}

impl Default for ReaderGroupConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ReaderGroupConfig {
    /// No streams yet; a refresh time of 3 s (the official client's default), no automatic
    /// checkpoints, 3 outstanding application checkpoints at most, no retention.
    ///
    /// ```
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let config = ReaderGroupConfig::new();
    /// assert_eq!(config.streams().count(), 0);
    /// assert_eq!(config.max_outstanding(), 3);
    /// ```
    pub fn new() -> Self {
        Self {
            streams: BTreeMap::new(),
            ends: BTreeMap::new(),
            refresh_time: Duration::from_secs(3),
            checkpoint_interval: None,
            max_outstanding_checkpoints: 3,
            retention: RetentionMode::None,
        }
    }

    /// Reads `stream` from its head.
    ///
    /// ```
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::{ReaderGroupConfig, StartFrom};
    ///
    /// let orders = ScopedStream::new("shop", "orders");
    /// let config = ReaderGroupConfig::new().stream(orders.clone());
    /// assert_eq!(config.start_of(&orders), Some(&StartFrom::Head));
    /// ```
    pub fn stream(self, stream: ScopedStream) -> Self {
        self.stream_from(stream, StartFrom::Head)
    }

    /// Reads `stream` from `start`.
    ///
    /// ```
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::{ReaderGroupConfig, StartFrom};
    ///
    /// let orders = ScopedStream::new("shop", "orders");
    /// let config = ReaderGroupConfig::new().stream_from(orders.clone(), StartFrom::Tail);
    /// assert_eq!(config.start_of(&orders), Some(&StartFrom::Tail));
    /// ```
    pub fn stream_from(mut self, stream: ScopedStream, start: StartFrom) -> Self {
        self.streams.insert(stream, start);
        self
    }

    /// Ends `end.stream` at `end`: each segment named there is read up to its offset (not
    /// beyond), successors of those segments are not read, and the group is finished (readers
    /// answer `None`) once everything before the cut is read. Segments the cut does not name
    /// but that precede it are read whole. The stream must also be read
    /// ([`Self::stream_from`]). Only our readers honour end cuts; the official client's ignore
    /// them.
    ///
    /// ```
    /// use pravaha_client::controller::types::{ScopedStream, SegmentId, StreamCut};
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let orders = ScopedStream::new("shop", "orders");
    /// let mut end = StreamCut::new(orders.clone());
    /// end.positions.insert(SegmentId(0), 1 << 20);
    /// let config = ReaderGroupConfig::new().stream(orders.clone()).end_at(end.clone());
    /// assert_eq!(config.end_of(&orders), Some(&end));
    /// ```
    pub fn end_at(mut self, end: StreamCut) -> Self {
        self.ends.insert(end.stream.clone(), end);
        self
    }

    /// How often readers refresh the group's state (where they learn of checkpoints; the
    /// official readers also rebalance at this pace).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let config = ReaderGroupConfig::new().refresh_time(Duration::from_millis(500));
    /// assert_eq!(config.refresh(), Duration::from_millis(500));
    /// ```
    pub fn refresh_time(mut self, refresh_time: Duration) -> Self {
        self.refresh_time = refresh_time;
        self
    }

    /// Readers start a checkpoint every `interval` (Java's `automaticCheckpointIntervalMillis`,
    /// whose default is 30 s; ours is `None`: never). An automatic checkpoint is started only
    /// when no checkpoint is outstanding, and abandoned if still incomplete when the next is
    /// due (a reader that never takes part, such as an official one, keeps it from completing):
    /// keep it several refresh times long, since readers learn of checkpoints at their refresh.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let config = ReaderGroupConfig::new().automatic_checkpoint_interval(Some(Duration::from_secs(10)));
    /// assert_eq!(config.checkpoint_interval(), Some(Duration::from_secs(10)));
    /// ```
    pub fn automatic_checkpoint_interval(mut self, interval: Option<Duration>) -> Self {
        self.checkpoint_interval = interval.filter(|interval| !interval.is_zero());
        self
    }

    /// How many checkpoints the application may have outstanding at once (Java's
    /// `maxOutstandingCheckpointRequest`, default 3); at least 1.
    ///
    /// ```
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// assert_eq!(ReaderGroupConfig::new().max_outstanding_checkpoints(5).max_outstanding(), 5);
    /// ```
    pub fn max_outstanding_checkpoints(mut self, max: u32) -> Self {
        self.max_outstanding_checkpoints = max;
        self
    }

    /// Whether the group holds back its streams' retention (Java's `retentionType`):
    /// [`RetentionMode::None`] (`NONE`), [`RetentionMode::Manual`]
    /// (`MANUAL_RELEASE_AT_USER_STREAMCUT`: the application reports cuts with
    /// [`ReaderGroup::update_retention_stream_cut`](super::ReaderGroup::update_retention_stream_cut))
    /// or [`RetentionMode::Automatic`] (`AUTOMATIC_RELEASE_AT_LAST_CHECKPOINT`: each completed
    /// checkpoint's cuts are reported). Other than `None`, the group is registered with the
    /// controller as a subscriber of its streams.
    ///
    /// ```
    /// use pravaha_client::controller::RetentionMode;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let config = ReaderGroupConfig::new().retention(RetentionMode::Manual);
    /// assert_eq!(config.retention_mode(), RetentionMode::Manual);
    /// ```
    pub fn retention(mut self, retention: RetentionMode) -> Self {
        self.retention = retention;
        self
    }

    /// The streams read, in order.
    ///
    /// ```
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let config = ReaderGroupConfig::new()
    ///     .stream(ScopedStream::new("shop", "refunds"))
    ///     .stream(ScopedStream::new("shop", "orders"));
    /// let names: Vec<_> = config.streams().map(|s| s.stream.as_str()).collect();
    /// assert_eq!(names, ["orders", "refunds"]);
    /// ```
    pub fn streams(&self) -> impl Iterator<Item = &ScopedStream> {
        self.streams.keys()
    }

    /// Where `stream` starts; `None` if it is not read.
    ///
    /// ```
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// assert_eq!(ReaderGroupConfig::new().start_of(&ScopedStream::new("a", "b")), None);
    /// ```
    pub fn start_of(&self, stream: &ScopedStream) -> Option<&StartFrom> {
        self.streams.get(stream)
    }

    /// Where `stream` ends; `None`: unbounded.
    ///
    /// ```
    /// use pravaha_client::controller::types::ScopedStream;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// let orders = ScopedStream::new("shop", "orders");
    /// assert_eq!(ReaderGroupConfig::new().stream(orders.clone()).end_of(&orders), None);
    /// ```
    pub fn end_of(&self, stream: &ScopedStream) -> Option<&StreamCut> {
        self.ends.get(stream)
    }

    /// The refresh time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// assert_eq!(ReaderGroupConfig::new().refresh(), Duration::from_secs(3));
    /// ```
    pub fn refresh(&self) -> Duration {
        self.refresh_time
    }

    /// The automatic checkpoint interval; `None`: no automatic checkpoints.
    ///
    /// ```
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// assert_eq!(ReaderGroupConfig::new().checkpoint_interval(), None);
    /// ```
    pub fn checkpoint_interval(&self) -> Option<Duration> {
        self.checkpoint_interval
    }

    /// The bound on outstanding application checkpoints.
    ///
    /// ```
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// assert_eq!(ReaderGroupConfig::new().max_outstanding(), 3);
    /// ```
    pub fn max_outstanding(&self) -> u32 {
        self.max_outstanding_checkpoints
    }

    /// The retention type.
    ///
    /// ```
    /// use pravaha_client::controller::RetentionMode;
    /// use pravaha_client::group::ReaderGroupConfig;
    ///
    /// assert_eq!(ReaderGroupConfig::new().retention_mode(), RetentionMode::None);
    /// ```
    pub fn retention_mode(&self) -> RetentionMode {
        self.retention
    }

    /// Refuses a configuration no group can have.
    pub(super) fn validate(&self) -> Result<(), GroupError> {
        if self.streams.is_empty() {
            return Err(GroupError::InvalidConfig("no streams".into()));
        }
        if let Some(stream) = self.ends.keys().find(|s| !self.streams.contains_key(*s)) {
            return Err(GroupError::InvalidConfig(format!(
                "stream {stream} has an end cut but is not read"
            )));
        }
        if self.max_outstanding_checkpoints == 0 {
            return Err(GroupError::InvalidConfig(
                "at least one outstanding checkpoint must be allowed".into(),
            ));
        }
        Ok(())
    }

    /// The official part, as the group's state keeps it.
    pub(super) fn to_state(&self) -> ConfigVersioned {
        let starting = self
            .streams
            .iter()
            .map(|(stream, start)| {
                let cut = match start {
                    StartFrom::Head => StreamCutVersioned::Unbounded,
                    StartFrom::Tail => StreamCutVersioned::Tail,
                    StartFrom::Cut(cut) => cut_to_state(cut),
                };
                (StreamRecord::from(stream), cut)
            })
            .collect();
        let ending = self
            .ends
            .iter()
            .map(|(stream, cut)| (StreamRecord::from(stream), cut_to_state(cut)))
            .collect();
        ConfigVersioned::V1(ConfigV1 {
            group_refresh_time_millis: millis(self.refresh_time),
            starting_stream_cuts: starting,
            ending_stream_cuts: ending,
        })
    }

    /// Our part, as the group's state keeps it.
    pub(super) fn settings_to_state(&self) -> GroupSettingsVersioned {
        GroupSettingsVersioned::V1(GroupSettingsV1 {
            automatic_checkpoint_interval_millis: self.checkpoint_interval.map(millis),
            max_outstanding_checkpoints: self.max_outstanding_checkpoints,
            retention: match self.retention {
                RetentionMode::None => 0,
                RetentionMode::Manual => 1,
                RetentionMode::Automatic => 2,
            },
        })
    }

    /// The configuration the state holds; our settings default where the group has none (it
    /// was created by the official client).
    pub(super) fn from_state(config: &ConfigVersioned, settings: Option<&GroupSettingsV1>) -> Self {
        let ConfigVersioned::V1(config) = config;
        let mut result =
            Self::new().refresh_time(Duration::from_millis(config.group_refresh_time_millis));
        for (record, cut) in &config.starting_stream_cuts {
            let stream = ScopedStream::from(record);
            let start = match cut {
                StreamCutVersioned::Unbounded => StartFrom::Head,
                StreamCutVersioned::Tail => StartFrom::Tail,
                StreamCutVersioned::V1(cut) => StartFrom::Cut(cut_from_state(&stream, cut)),
            };
            result.streams.insert(stream, start);
        }
        for (record, cut) in &config.ending_stream_cuts {
            let stream = ScopedStream::from(record);
            if let StreamCutVersioned::V1(cut) = cut {
                result
                    .ends
                    .insert(stream.clone(), cut_from_state(&stream, cut));
            }
        }
        if let Some(settings) = settings {
            result.checkpoint_interval = settings
                .automatic_checkpoint_interval_millis
                .map(Duration::from_millis);
            result.max_outstanding_checkpoints = settings.max_outstanding_checkpoints.max(1);
            result.retention = match settings.retention {
                1 => RetentionMode::Manual,
                2 => RetentionMode::Automatic,
                _ => RetentionMode::None,
            };
        }
        result
    }

    /// The controller's record of a group with this configuration (starting cuts as given;
    /// a head or tail start is an empty cut there).
    pub(super) fn to_record(&self, scope: &str, name: &str) -> ReaderGroupRecord {
        let mut record = ReaderGroupRecord::new(scope, name);
        record.refresh_time = self.refresh_time;
        // Zero is the client record's "never".
        record.checkpoint_interval = self.checkpoint_interval.unwrap_or(Duration::ZERO);
        record.max_outstanding_checkpoints =
            i32::try_from(self.max_outstanding_checkpoints).unwrap_or(i32::MAX);
        record.retention = self.retention;
        record.starting_cuts = self
            .streams
            .iter()
            .map(|(stream, start)| match start {
                StartFrom::Cut(cut) => cut.clone(),
                StartFrom::Head | StartFrom::Tail => StreamCut::new(stream.clone()),
            })
            .collect();
        record.ending_cuts = self.ends.values().cloned().collect();
        record
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn cut_to_state(cut: &StreamCut) -> StreamCutVersioned {
    StreamCutVersioned::V1(StreamCutV1 {
        stream: StreamRecord::from(&cut.stream),
        positions: cut
            .positions
            .iter()
            .map(|(id, offset)| (SegmentRecord::from(&cut.stream.segment(*id)), *offset))
            .collect(),
    })
}

fn cut_from_state(stream: &ScopedStream, cut: &StreamCutV1) -> StreamCut {
    StreamCut {
        stream: stream.clone(),
        positions: cut
            .positions
            .iter()
            .map(|(segment, offset)| (SegmentId(segment.segment.number), *offset))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_survives_the_state() {
        let orders = ScopedStream::new("shop", "orders");
        let refunds = ScopedStream::new("shop", "refunds");
        let mut start = StreamCut::new(orders.clone());
        start.positions.insert(SegmentId::new(1, 3), 40);
        let mut end = StreamCut::new(orders.clone());
        end.positions.insert(SegmentId::new(2, 5), 900);
        let config = ReaderGroupConfig::new()
            .stream_from(orders.clone(), StartFrom::Cut(start))
            .stream_from(refunds, StartFrom::Tail)
            .end_at(end)
            .refresh_time(Duration::from_millis(250))
            .automatic_checkpoint_interval(Some(Duration::from_secs(7)))
            .max_outstanding_checkpoints(2)
            .retention(RetentionMode::Automatic);
        config.validate().unwrap();
        let GroupSettingsVersioned::V1(settings) = config.settings_to_state();
        let back = ReaderGroupConfig::from_state(&config.to_state(), Some(&settings));
        assert_eq!(back, config);
        // Without our settings (an official group), the defaults.
        let official = ReaderGroupConfig::from_state(&config.to_state(), None);
        assert_eq!(official.retention_mode(), RetentionMode::None);
        assert_eq!(official.checkpoint_interval(), None);
    }

    #[test]
    fn invalid_configurations_are_refused() {
        assert!(ReaderGroupConfig::new().validate().is_err());
        let orders = ScopedStream::new("shop", "orders");
        let elsewhere = StreamCut::new(ScopedStream::new("shop", "other"));
        let config = ReaderGroupConfig::new().stream(orders).end_at(elsewhere);
        assert!(
            matches!(config.validate(), Err(GroupError::InvalidConfig(m)) if m.contains("shop/other"))
        );
    }
}

//! What an [`EventReader`](super::EventReader) is configured with and hands out.

use std::time::Duration;

use bytes::Bytes;

use crate::controller::types::ScopedSegment;
use crate::segment::ReaderConfig;

/// How a reader shares work and records its progress.
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::group::ReaderSettings;
///
/// // A reader that finds failed readers within about 5 s.
/// let settings = ReaderSettings {
///     heartbeat_interval: Some(Duration::from_millis(500)),
///     offline_timeout: Some(Duration::from_secs(5)),
///     ..ReaderSettings::default()
/// };
/// assert_eq!(settings.rebalance_interval, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderSettings {
    /// How often the reader compares its share of segments with the group's and acquires or
    /// releases one (the official client: 10 s).
    pub rebalance_interval: Duration,
    /// How often a reader that owns no segment looks for unassigned ones.
    pub idle_poll_interval: Duration,
    /// How often the reader records the positions of its segments in the group's state (where
    /// its segments restart if it goes offline without closing).
    pub position_update_interval: Duration,
    /// Bytes asked for per segment read.
    pub read_size: usize,
    /// How each segment is read (connections, retries).
    pub segment_reader: ReaderConfig,
    /// How often the reader's heartbeat task (running from the reader's creation until it is
    /// closed or dropped, whether or not the application calls [`EventReader::next_event`](super::EventReader::next_event))
    /// moves its heartbeat counter on in the group's state. `None`: no heartbeats, and the
    /// failure detector of other readers never takes this reader offline.
    pub heartbeat_interval: Option<Duration>,
    /// The failure detector run by this reader's maintenance (every heartbeat interval): a
    /// reader whose heartbeat counter this reader has not seen change for `offline_timeout`
    /// is taken offline, its segments unassigned at its last recorded positions. `None`: this
    /// reader detects nothing. Readers that never heart-beat (official readers, ours with no
    /// `heartbeat_interval`) are never taken offline. Keep it several heartbeat intervals
    /// long.
    pub offline_timeout: Option<Duration>,
}

impl Default for ReaderSettings {
    fn default() -> Self {
        Self {
            rebalance_interval: Duration::from_secs(10),
            idle_poll_interval: Duration::from_secs(1),
            position_update_interval: Duration::from_secs(3),
            read_size: 1 << 20,
            segment_reader: ReaderConfig::default(),
            heartbeat_interval: Some(Duration::from_secs(1)),
            offline_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// An event and where it was read.
///
/// ```no_run
/// # async fn example(mut reader: pravaha_client::EventReader) -> Result<(), Box<dyn std::error::Error>> {
/// if let Some(event) = reader.next_event().await? {
///     println!("{} bytes at {}:{}", event.payload.len(), event.segment, event.offset);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRead {
    /// The event's bytes, as written.
    pub payload: Bytes,
    /// The segment it was read from.
    pub segment: ScopedSegment,
    /// The offset of the event's record in its segment.
    pub offset: i64,
    /// The offset after it: the segment's position once this event is processed.
    pub next_offset: i64,
}

/// What [`EventReader::read_next`](super::EventReader::read_next) hands out: an event, or the news that the reader has
/// taken part in a checkpoint (Java's `EventRead.isCheckpoint()`).
///
/// ```no_run
/// # async fn example(mut reader: pravaha_client::EventReader) -> Result<(), Box<dyn std::error::Error>> {
/// use pravaha_client::group::ReadItem;
///
/// while let Some(item) = reader.read_next().await? {
///     match item {
///         ReadItem::Event(event) => println!("{} bytes", event.payload.len()),
///         // Everything handed out before is before the checkpoint, everything after after.
///         ReadItem::Checkpoint(name) => println!("checkpoint {name}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadItem {
    /// The next event.
    Event(EventRead),
    /// The reader recorded its positions for this checkpoint: the events it handed out before
    /// are before the checkpoint, those it hands out next are after it.
    Checkpoint(String),
}

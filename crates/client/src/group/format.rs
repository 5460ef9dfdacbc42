//! The reader-group state's values, in the official Rust client's format (`pravega-client`
//! 0.3.7, `event::reader_group_state`), so readers of both clients share one group.
//!
//! The state is a [`Synchronizer`](crate::sync::Synchronizer) table named after the group
//! (`<scope>/<group>_kvtable/0.#epoch.0`); every value is CBOR (serde_cbor):
//!
//! | outer key | inner key | `type_id` | value |
//! |---|---|---|---|
//! | `config` | `default` | `ReaderGroupConfigVersioned` | [`ConfigVersioned`] |
//! | `assigned_segments` | reader id | `HashMap<ScopedSegment, Offset>` | map [`SegmentRecord`] → [`Offset`]: the reader's segments and positions |
//! | `unassigned_segments` | qualified segment name | `Offset` | [`Offset`]: where the next owner starts |
//! | `future_segments` | qualified segment name | `HashSet<i64>` | set of [`SegmentNumber`]: predecessors not completed yet |
//! | `distance_to_tail` | reader id | `u64` | `u64::MAX` (not maintained) |
//!
//!
//! Ours only (outer keys the official client never asks for):
//!
//! | outer key | inner key | `type_id` | value |
//! |---|---|---|---|
//! | `pravaha_heartbeats` | reader id | `u64` | a counter each of our readers increments every heartbeat interval (see [`crate::group`]'s failure detector) |
//! | `pravaha_settings` | `default` | `GroupSettingsVersioned` | [`GroupSettingsVersioned`]: checkpoint settings and retention type |
//! | `pravaha_checkpoints` | checkpoint name | `CheckpointRecord` | [`CheckpointRecord`]: an outstanding or completed checkpoint |
//! | `pravaha_checkpoint_sequence` | `default` | `u64` | the sequence number of the last checkpoint created |
//!
//! A reader is online while it has an `assigned_segments` entry. Segment names are
//! `<scope>/<stream>/<number>.#epoch.<epoch>`.
//!
//! The official client reads only the outer keys it knows (it fetches every entry into its
//! map but asks only for these), so our entries are invisible to it; its updates of other
//! outer keys do not conflict with them. Checkpoint creation writes the markers of
//! `assigned_segments` and `unassigned_segments` (without changing an entry), so that it
//! conflicts with every concurrent change of ownership, official readers' included.
//!
//! The official client (0.3.7) writes `ending_stream_cuts` empty and its readers ignore them:
//! only our readers stop at a group's end cut.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::controller::types::{ScopedSegment, ScopedStream, SegmentId};

/// The group's configuration (official).
pub const CONFIG: &str = "config";
/// The inner key of single-valued outer keys.
pub const CONFIG_KEY: &str = "default";
/// The `type_id` of [`CONFIG`]'s value.
pub const CONFIG_TYPE: &str = "ReaderGroupConfigVersioned";
/// Each online reader's segments and positions (official).
pub const ASSIGNED: &str = "assigned_segments";
/// The `type_id` of [`ASSIGNED`]'s values.
pub const ASSIGNED_TYPE: &str = "HashMap<ScopedSegment, Offset>";
/// Segments no reader owns, with their offsets (official).
pub const UNASSIGNED: &str = "unassigned_segments";
/// The `type_id` of [`UNASSIGNED`]'s values.
pub const OFFSET_TYPE: &str = "Offset";
/// Successors waiting for predecessors (official).
pub const FUTURE: &str = "future_segments";
/// The `type_id` of [`FUTURE`]'s values.
pub const FUTURE_TYPE: &str = "HashSet<i64>";
/// Each reader's distance to the tail (official; not maintained).
pub const DISTANCE: &str = "distance_to_tail";
/// The `type_id` of [`DISTANCE`]'s values.
pub const DISTANCE_TYPE: &str = "u64";
/// Our readers' heartbeat counters (an outer key the official client ignores).
pub const HEARTBEATS: &str = "pravaha_heartbeats";
/// The `type_id` of [`HEARTBEATS`]'s values.
pub const HEARTBEAT_TYPE: &str = "u64";
/// Our settings of the group: checkpoints and retention (an outer key the official client
/// ignores).
pub const SETTINGS: &str = "pravaha_settings";
/// The `type_id` of [`SETTINGS`]'s value.
pub const SETTINGS_TYPE: &str = "GroupSettingsVersioned";
/// Checkpoints, by name (an outer key the official client ignores).
pub const CHECKPOINTS: &str = "pravaha_checkpoints";
/// The `type_id` of [`CHECKPOINTS`]'s values.
pub const CHECKPOINT_TYPE: &str = "CheckpointRecord";
/// The last checkpoint's sequence number (an outer key the official client ignores).
pub const CHECKPOINT_SEQUENCE: &str = "pravaha_checkpoint_sequence";
/// The `type_id` of [`CHECKPOINT_SEQUENCE`]'s value.
pub const SEQUENCE_TYPE: &str = "u64";

/// A name wrapped in a struct, as the official `Scope`, `Stream` and `Reader` are.
///
/// ```
/// use pravaha_client::group::format::Name;
///
/// let name = Name { name: "shop".into() };
/// assert_eq!(serde_cbor::to_vec(&name).unwrap(), b"\xa1\x64name\x64shop");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Name {
    pub name: String,
}

/// The official `Segment`: the segment id and a transaction id (always `None` here).
///
/// ```
/// use pravaha_client::group::format::SegmentNumber;
///
/// let segment = SegmentNumber { number: 3, tx_id: None };
/// assert_eq!(segment.number, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentNumber {
    pub number: i64,
    pub tx_id: Option<u128>,
}

/// The official `ScopedSegment`.
///
/// ```
/// use pravaha_client::controller::types::{ScopedSegment, ScopedStream, SegmentId};
/// use pravaha_client::group::format::SegmentRecord;
///
/// let segment = ScopedStream::new("shop", "orders").segment(SegmentId::new(1, 4));
/// let record = SegmentRecord::from(&segment);
/// assert_eq!(ScopedSegment::from(&record), segment);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub scope: Name,
    pub stream: Name,
    pub segment: SegmentNumber,
}

/// The official `ScopedStream`.
///
/// ```
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::group::format::StreamRecord;
///
/// let stream = ScopedStream::new("shop", "orders");
/// assert_eq!(ScopedStream::from(&StreamRecord::from(&stream)), stream);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamRecord {
    pub scope: Name,
    pub stream: Name,
}

/// A reading position in a segment (the official `Offset`).
///
/// ```
/// use pravaha_client::group::format::Offset;
///
/// assert_eq!(serde_cbor::to_vec(&Offset { read: 5 }).unwrap(), b"\xa1\x64read\x05");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Offset {
    pub read: i64,
}

/// The group's configuration, versioned (the official `ReaderGroupConfigVersioned`).
///
/// ```
/// use std::collections::BTreeMap;
/// use pravaha_client::group::format::{ConfigV1, ConfigVersioned};
///
/// let config = ConfigVersioned::V1(ConfigV1 {
///     group_refresh_time_millis: 3000,
///     starting_stream_cuts: BTreeMap::new(),
///     ending_stream_cuts: BTreeMap::new(),
/// });
/// assert_eq!(&serde_cbor::to_vec(&config).unwrap()[..4], b"\xa1\x62V1");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConfigVersioned {
    V1(ConfigV1),
}

/// Version 1 of [`ConfigVersioned`]: the refresh time and each stream's start and end.
///
/// ```
/// use std::collections::BTreeMap;
/// use pravaha_client::group::format::ConfigV1;
///
/// let config = ConfigV1 {
///     group_refresh_time_millis: 3000,
///     starting_stream_cuts: BTreeMap::new(),
///     ending_stream_cuts: BTreeMap::new(),
/// };
/// assert!(config.ending_stream_cuts.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigV1 {
    pub group_refresh_time_millis: u64,
    pub starting_stream_cuts: BTreeMap<StreamRecord, StreamCutVersioned>,
    /// Where our readers stop (the official client writes none and ignores them).
    pub ending_stream_cuts: BTreeMap<StreamRecord, StreamCutVersioned>,
}

/// Where a stream is read from (the official `StreamCutVersioned`).
///
/// ```
/// use pravaha_client::group::format::StreamCutVersioned;
///
/// assert_eq!(serde_cbor::to_vec(&StreamCutVersioned::Tail).unwrap(), b"\x64Tail");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamCutVersioned {
    V1(StreamCutV1),
    /// The head of the stream.
    Unbounded,
    Tail,
}

/// A stream cut: each segment's offset.
///
/// ```
/// use std::collections::BTreeMap;
/// use pravaha_client::controller::types::{ScopedStream, SegmentId};
/// use pravaha_client::group::format::{SegmentRecord, StreamCutV1, StreamRecord};
///
/// let stream = ScopedStream::new("shop", "orders");
/// let cut = StreamCutV1 {
///     stream: StreamRecord::from(&stream),
///     positions: BTreeMap::from([(SegmentRecord::from(&stream.segment(SegmentId(0))), 64)]),
/// };
/// assert_eq!(cut.positions.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCutV1 {
    pub stream: StreamRecord,
    pub positions: BTreeMap<SegmentRecord, i64>,
}

/// Our settings of a group, versioned: a later version may add fields, and readers of every
/// version decode all earlier ones.
///
/// ```
/// use pravaha_client::group::format::{GroupSettingsV1, GroupSettingsVersioned};
///
/// let settings = GroupSettingsVersioned::V1(GroupSettingsV1 {
///     automatic_checkpoint_interval_millis: Some(30_000),
///     max_outstanding_checkpoints: 3,
///     retention: 2,
/// });
/// let bytes = serde_cbor::to_vec(&settings).unwrap();
/// assert_eq!(serde_cbor::from_slice::<GroupSettingsVersioned>(&bytes).unwrap(), settings);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupSettingsVersioned {
    V1(GroupSettingsV1),
}

/// Version 1 of [`GroupSettingsVersioned`].
///
/// ```
/// use pravaha_client::group::format::GroupSettingsV1;
///
/// let none = GroupSettingsV1 {
///     automatic_checkpoint_interval_millis: None,
///     max_outstanding_checkpoints: 3,
///     retention: 0,
/// };
/// assert_eq!(none.retention, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettingsV1 {
    /// How often readers start a checkpoint; `None`: never.
    pub automatic_checkpoint_interval_millis: Option<u64>,
    /// Application checkpoints that may be outstanding at once.
    pub max_outstanding_checkpoints: u32,
    /// The retention type as the controller's API numbers it: 0 none, 1 manual (the
    /// application reports cuts), 2 automatic (each completed checkpoint's cut is reported).
    pub retention: i32,
}

/// A checkpoint in the group's state: the readers that have not taken part yet and the
/// positions recorded so far. Complete once `pending` is empty.
///
/// ```
/// use std::collections::{BTreeMap, BTreeSet};
/// use pravaha_client::group::format::CheckpointRecord;
///
/// let record = CheckpointRecord {
///     sequence: 1,
///     automatic: false,
///     pending: BTreeSet::from(["reader-1".to_string()]),
///     positions: BTreeMap::from([("shop/orders/0".to_string(), 120)]),
///     took_part: BTreeSet::new(),
/// };
/// assert!(!record.is_complete());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Creation order among the group's checkpoints.
    pub sequence: u64,
    /// Started by a reader at the group's automatic interval (not by the application).
    pub automatic: bool,
    /// The readers (online at creation) that have not taken part yet.
    pub pending: BTreeSet<String>,
    /// Qualified segment name → offset: where the checkpoint puts each segment.
    pub positions: BTreeMap<String, i64>,
    /// The readers that took part (not those that left): each announces the checkpoint once.
    pub took_part: BTreeSet<String>,
}

impl CheckpointRecord {
    /// Whether no reader is left to take part (each took part or went offline).
    ///
    /// ```
    /// use pravaha_client::group::format::CheckpointRecord;
    ///
    /// let record = CheckpointRecord {
    ///     sequence: 1,
    ///     automatic: true,
    ///     pending: Default::default(),
    ///     positions: Default::default(),
    ///     took_part: Default::default(),
    /// };
    /// assert!(record.is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.pending.is_empty()
    }
}

impl From<&ScopedStream> for StreamRecord {
    fn from(stream: &ScopedStream) -> Self {
        Self {
            scope: Name {
                name: stream.scope.clone(),
            },
            stream: Name {
                name: stream.stream.clone(),
            },
        }
    }
}

impl From<&StreamRecord> for ScopedStream {
    fn from(record: &StreamRecord) -> Self {
        ScopedStream::new(record.scope.name.clone(), record.stream.name.clone())
    }
}

impl From<&ScopedSegment> for SegmentRecord {
    fn from(segment: &ScopedSegment) -> Self {
        let stream = StreamRecord::from(&segment.stream);
        Self {
            scope: stream.scope,
            stream: stream.stream,
            segment: SegmentNumber {
                number: segment.id.0,
                tx_id: None,
            },
        }
    }
}

impl From<&SegmentRecord> for ScopedSegment {
    fn from(record: &SegmentRecord) -> Self {
        ScopedStream::new(record.scope.name.clone(), record.stream.name.clone())
            .segment(SegmentId(record.segment.number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden bytes of an `Offset` and of a one-segment map, field by field.
    #[test]
    fn offsets_and_segment_maps_have_the_official_bytes() {
        let offset = serde_cbor::to_vec(&Offset { read: 5 }).unwrap();
        assert_eq!(offset, [0xa1, 0x64, b'r', b'e', b'a', b'd', 0x05]);
        let segment = ScopedStream::new("s", "t").segment(SegmentId::new(1, 2));
        let map = BTreeMap::from([(SegmentRecord::from(&segment), Offset { read: 0 })]);
        let bytes = serde_cbor::to_vec(&map).unwrap();
        let mut expected = vec![0xa1, 0xa3]; // map of 1; key: map of 3
        expected.extend_from_slice(b"\x65scope\xa1\x64name\x61s");
        expected.extend_from_slice(b"\x66stream\xa1\x64name\x61t");
        expected.extend_from_slice(b"\x67segment\xa2\x66number");
        expected.extend_from_slice(&[0x1b, 0, 0, 0, 1, 0, 0, 0, 2]); // (1 << 32) | 2, 8 bytes
        expected.extend_from_slice(b"\x65tx_id\xf6"); // null
        expected.extend_from_slice(&[0xa1, 0x64, b'r', b'e', b'a', b'd', 0x00]);
        assert_eq!(bytes, expected);
        let back: BTreeMap<SegmentRecord, Offset> = serde_cbor::from_slice(&bytes).unwrap();
        assert_eq!(ScopedSegment::from(back.keys().next().unwrap()), segment);
    }

    #[test]
    fn stream_cuts_are_externally_tagged() {
        assert_eq!(
            serde_cbor::to_vec(&StreamCutVersioned::Unbounded).unwrap(),
            b"\x69Unbounded"
        );
        let config = ConfigVersioned::V1(ConfigV1 {
            group_refresh_time_millis: 3000,
            starting_stream_cuts: BTreeMap::new(),
            ending_stream_cuts: BTreeMap::new(),
        });
        let bytes = serde_cbor::to_vec(&config).unwrap();
        assert_eq!(&bytes[..4], b"\xa1\x62V1");
        assert_eq!(
            serde_cbor::from_slice::<ConfigVersioned>(&bytes).unwrap(),
            config
        );
    }
}

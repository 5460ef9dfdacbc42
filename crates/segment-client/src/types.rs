//! The values requests take and return, in the caller's terms rather than the wire's.

use bytes::Bytes;

/// How a stream segment asks to be scaled: Pravega's scale type (0 = fixed, 1 = KiB/s,
/// 2 = events/s) and the target rate in that unit. Stored by the segment store as attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScalePolicy {
    pub scale_type: u8,
    pub target_rate: i32,
}

/// The outcome of a create request: creating a segment that exists is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

/// What `GetStreamSegmentInfo` reports about a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub segment: String,
    /// The segment's length (its write offset), in bytes since creation.
    pub length: i64,
    /// The truncation point: bytes below it can no longer be read.
    pub start_offset: i64,
    pub sealed: bool,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// What `GetTableSegmentInfo` reports about a table segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSegmentInfo {
    pub segment: String,
    /// The table segment's length in bytes (its entries as written, removals included).
    pub length: i64,
    pub start_offset: i64,
    /// How many keys the table holds.
    pub entry_count: i64,
    /// The fixed key length, or 0 for variable-length keys.
    pub key_length: i32,
}

/// One `SegmentRead` reply. `data` starts at `offset` (the requested offset) and may be shorter
/// than asked for, or empty after the server's tail wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRead {
    pub offset: i64,
    pub data: Bytes,
    /// The data reaches the segment's current length.
    pub at_tail: bool,
    /// The segment is sealed and the data reaches its end.
    pub end_of_segment: bool,
}

/// The condition of a table update or removal on a key's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVersion {
    /// No condition (wire `NO_VERSION`).
    Any,
    /// The key must be absent (wire `NOT_EXISTS`).
    NotExists,
    /// The key's current version must equal this one.
    Exactly(i64),
}

impl KeyVersion {
    /// The version as the wire carries it.
    pub fn to_wire(self) -> i64 {
        match self {
            Self::Any => pravaha_wire::NO_VERSION,
            Self::NotExists => pravaha_wire::NOT_EXISTS,
            Self::Exactly(version) => version,
        }
    }
}

/// A table entry with its current version (the byte position of its latest write in the table
/// segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub key: Bytes,
    pub value: Bytes,
    pub version: i64,
}

/// One page request of a key or entry iteration.
///
/// Start with an empty `continuation`, then pass the token each page returns; the iteration is
/// over when a page comes back empty. `max_items` is a suggestion (the server clamps it to
/// 1..=10,000 and also stops at about 2 MiB). The filters are honoured by Pravaha and by Java
/// Pravega (not by every server); an empty filter means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TablePage {
    pub continuation: Bytes,
    pub max_items: i32,
    /// Only keys starting with these bytes.
    pub prefix: Option<Bytes>,
    /// Only keys at or above this one.
    pub from_key: Option<Bytes>,
    /// Only keys at or below this one.
    pub to_key: Option<Bytes>,
}

/// One page of changes since a position in a table segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDelta {
    /// The latest value of each key written in the page, in write order; removals left out.
    pub entries: Vec<TableEntry>,
    /// Where the next page starts.
    pub last_position: i64,
    /// Nothing newer was written.
    pub reached_end: bool,
    /// The requested position is older than the table's retained history: rebuild from
    /// scratch.
    pub should_clear: bool,
}

//! The controller's vocabulary as Rust types: streams, segments and their key ranges, stream
//! cuts, stream configurations, pages of listings. Conversions to and from the gRPC messages
//! live here too, so that the rest of the client never sees a generated type.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use pravaha_controller_api::v1 as api;

pub use crate::config::ServerAddress;
pub use configuration::{RetentionPolicy, ScalingPolicy, StreamConfiguration};

mod configuration;

/// A stream, named by its scope and its name.
///
/// ```
/// use pravaha_client::controller::types::ScopedStream;
///
/// let stream: ScopedStream = "examples/orders".parse().unwrap();
/// assert_eq!(stream, ScopedStream::new("examples", "orders"));
/// assert_eq!(stream.to_string(), "examples/orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopedStream {
    pub scope: String,
    pub stream: String,
}

impl ScopedStream {
    /// Stream `stream` of scope `scope`.
    pub fn new(scope: impl Into<String>, stream: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            stream: stream.into(),
        }
    }

    /// The segment `id` of this stream.
    pub fn segment(&self, id: SegmentId) -> ScopedSegment {
        ScopedSegment {
            stream: self.clone(),
            id,
        }
    }

    pub(crate) fn to_api(&self) -> api::StreamInfo {
        api::StreamInfo {
            scope: self.scope.clone(),
            stream: self.stream.clone(),
            access_operation: 0,
        }
    }
}

impl fmt::Display for ScopedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.scope, self.stream)
    }
}

/// `scope/stream`; neither part may be empty or contain `/`.
impl FromStr for ScopedStream {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('/') {
            Some((scope, stream))
                if !scope.is_empty() && !stream.is_empty() && !stream.contains('/') =>
            {
                Ok(Self::new(scope, stream))
            }
            _ => Err(format!("{text:?} is not scope/stream")),
        }
    }
}

/// A segment id: the epoch that created the segment in the high 32 bits, its number in the low
/// 32 (Pravega's layout; see [`pravaha_types::segment_id`]).
///
/// ```
/// use pravaha_client::controller::types::SegmentId;
///
/// let id = SegmentId::new(1, 3);
/// assert_eq!(id.0, (1 << 32) | 3);
/// assert_eq!((id.epoch(), id.number()), (1, 3));
/// assert_eq!(id.to_string(), "3.#epoch.1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentId(pub i64);

impl SegmentId {
    /// The id of segment `number` created in epoch `epoch`.
    pub fn new(epoch: u32, number: u32) -> Self {
        Self(pravaha_types::segment_id(epoch, number))
    }

    /// The epoch that created the segment.
    pub fn epoch(self) -> u32 {
        pravaha_types::segment_epoch(self.0)
    }

    /// The segment's number, unique within its stream.
    pub fn number(self) -> u32 {
        pravaha_types::segment_number(self.0)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.#epoch.{}", self.number(), self.epoch())
    }
}

/// A segment of a stream; its [`qualified_name`](Self::qualified_name) is its name on the
/// segment store.
///
/// ```
/// use pravaha_client::controller::types::{ScopedSegment, ScopedStream, SegmentId};
///
/// let segment = ScopedStream::new("sc", "st").segment(SegmentId::new(2, 5));
/// assert_eq!(segment.qualified_name(), "sc/st/5.#epoch.2");
/// assert_eq!("sc/st/5.#epoch.2".parse::<ScopedSegment>().unwrap(), segment);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopedSegment {
    pub stream: ScopedStream,
    pub id: SegmentId,
}

impl ScopedSegment {
    /// `<scope>/<stream>/<number>.#epoch.<epoch>`.
    pub fn qualified_name(&self) -> String {
        pravaha_types::qualified_segment_name(&self.stream.scope, &self.stream.stream, self.id.0)
    }

    pub(crate) fn to_api(&self) -> api::SegmentId {
        api::SegmentId {
            stream_info: Some(self.stream.to_api()),
            segment_id: self.id.0,
        }
    }
}

impl fmt::Display for ScopedSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qualified_name())
    }
}

/// A qualified segment name (`scope/stream/3.#epoch.1`, or `scope/stream/3` for epoch 0).
impl FromStr for ScopedSegment {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (scope, stream, id) = pravaha_types::parse_qualified_segment_name(text)
            .ok_or_else(|| format!("{text:?} is not a qualified segment name"))?;
        Ok(ScopedStream::new(scope, stream).segment(SegmentId(id)))
    }
}

/// A half-open range `[low, high)` of the routing-key space `[0, 1)`.
///
/// ```
/// use pravaha_client::controller::types::KeyRange;
///
/// let range = KeyRange::new(0.25, 0.5);
/// assert!(range.contains(0.25) && !range.contains(0.5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct KeyRange {
    pub low: f64,
    pub high: f64,
}

impl KeyRange {
    /// The range `[low, high)` of routing-key positions.
    pub fn new(low: f64, high: f64) -> Self {
        Self { low, high }
    }

    /// Whether `position` lies in `[low, high)`.
    pub fn contains(&self, position: f64) -> bool {
        self.low <= position && position < self.high
    }
}

/// A segment and the routing keys it takes.
///
/// ```
/// use pravaha_client::controller::types::{KeyRange, ScopedStream, SegmentId, SegmentWithRange};
///
/// let segment = SegmentWithRange {
///     segment: ScopedStream::new("sc", "st").segment(SegmentId::new(0, 0)),
///     range: KeyRange::new(0.0, 1.0),
/// };
/// assert!(segment.range.contains(0.7));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentWithRange {
    pub segment: ScopedSegment,
    pub range: KeyRange,
}

impl SegmentWithRange {
    pub(crate) fn from_api(range: api::SegmentRange) -> Option<Self> {
        Some(Self {
            segment: segment_from_api(range.segment_id?)?,
            range: KeyRange::new(range.min_key, range.max_key),
        })
    }
}

pub(crate) fn segment_from_api(id: api::SegmentId) -> Option<ScopedSegment> {
    let info = id.stream_info?;
    Some(ScopedStream::new(info.scope, info.stream).segment(SegmentId(id.segment_id)))
}

/// The segments of a stream at one epoch (the current one for
/// [`get_current_segments`](super::ControllerClient::get_current_segments)), tiling the key
/// space, with the delegation token for the segment store. Empty for a sealed stream.
///
/// ```
/// use pravaha_client::controller::types::{KeyRange, ScopedStream, SegmentId, SegmentWithRange, StreamSegments};
///
/// let stream = ScopedStream::new("sc", "st");
/// let segments = StreamSegments {
///     segments: vec![
///         SegmentWithRange { segment: stream.segment(SegmentId::new(0, 0)), range: KeyRange::new(0.0, 0.5) },
///         SegmentWithRange { segment: stream.segment(SegmentId::new(0, 1)), range: KeyRange::new(0.5, 1.0) },
///     ],
///     delegation_token: String::new(),
/// };
/// assert_eq!(segments.segment_for_position(0.75).unwrap().segment.id, SegmentId::new(0, 1));
/// // "hello" hashes to 0.6587...
/// assert_eq!(segments.segment_for_routing_key("hello").unwrap().segment.id, SegmentId::new(0, 1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSegments {
    pub segments: Vec<SegmentWithRange>,
    pub delegation_token: String,
}

impl StreamSegments {
    /// The segment taking key-space `position`, picked as Pravega's clients pick it: the one
    /// with the smallest upper bound at or above `position`.
    pub fn segment_for_position(&self, position: f64) -> Option<&SegmentWithRange> {
        self.segments
            .iter()
            .filter(|s| s.range.high >= position)
            .min_by(|a, b| a.range.high.total_cmp(&b.range.high))
    }

    /// The segment an event with `routing_key` goes to (hashed as Pravega's clients hash it).
    pub fn segment_for_routing_key(&self, routing_key: &str) -> Option<&SegmentWithRange> {
        self.segment_for_position(pravaha_types::routing_key_position(routing_key))
    }

    pub(crate) fn from_api(reply: api::SegmentRanges) -> Option<Self> {
        Some(Self {
            segments: reply
                .segment_ranges
                .into_iter()
                .map(SegmentWithRange::from_api)
                .collect::<Option<_>>()?,
            delegation_token: reply.delegation_token,
        })
    }
}

/// A segment that follows a sealed one, with all of its predecessors.
///
/// ```
/// use pravaha_client::controller::types::{KeyRange, ScopedStream, SegmentId, SegmentWithRange, Successor};
///
/// let stream = ScopedStream::new("sc", "st");
/// let successor = Successor {
///     segment: SegmentWithRange { segment: stream.segment(SegmentId::new(1, 2)), range: KeyRange::new(0.0, 0.5) },
///     predecessors: vec![SegmentId::new(0, 0)],
/// };
/// assert_eq!(successor.predecessors.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Successor {
    pub segment: SegmentWithRange,
    pub predecessors: Vec<SegmentId>,
}

/// The successors of a segment; empty if the segment is not sealed by a scale (still active,
/// or its stream is sealed).
///
/// ```
/// use pravaha_client::controller::types::Successors;
///
/// let none = Successors { successors: Vec::new(), delegation_token: String::new() };
/// assert!(none.successors.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Successors {
    pub successors: Vec<Successor>,
    pub delegation_token: String,
}

impl Successors {
    pub(crate) fn from_api(reply: api::SuccessorResponse) -> Option<Self> {
        let successors = reply
            .segments
            .into_iter()
            .map(|entry| {
                Some(Successor {
                    segment: SegmentWithRange::from_api(entry.segment?)?,
                    predecessors: entry.value.into_iter().map(SegmentId).collect(),
                })
            })
            .collect::<Option<_>>()?;
        Some(Self {
            successors,
            delegation_token: reply.delegation_token,
        })
    }
}

/// A position in every segment of a stream: segment → offset. Truncation takes one; the head
/// and the segments at a time are answered as one.
///
/// ```
/// use pravaha_client::controller::types::{ScopedStream, SegmentId, StreamCut};
///
/// let mut cut = StreamCut::new(ScopedStream::new("sc", "st"));
/// cut.positions.insert(SegmentId::new(0, 0), 1024);
/// cut.positions.insert(SegmentId::new(0, 1), 0);
/// assert_eq!(cut.positions.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCut {
    pub stream: ScopedStream,
    pub positions: BTreeMap<SegmentId, i64>,
}

impl StreamCut {
    /// A cut with no positions yet.
    pub fn new(stream: ScopedStream) -> Self {
        Self {
            stream,
            positions: BTreeMap::new(),
        }
    }

    pub(crate) fn to_api(&self) -> api::StreamCut {
        api::StreamCut {
            stream_info: Some(self.stream.to_api()),
            cut: self.positions.iter().map(|(id, at)| (id.0, *at)).collect(),
        }
    }
}

/// An opaque listing cursor; [`ContinuationToken::start`] asks for the first page.
///
/// ```
/// use pravaha_client::controller::types::ContinuationToken;
///
/// assert!(ContinuationToken::start().is_start());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ContinuationToken(pub String);

impl ContinuationToken {
    /// The token that asks for the first page (empty).
    pub fn start() -> Self {
        Self::default()
    }

    /// Whether this token asks for the first page.
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }
}

/// One page of a listing and the cursor of the next; an empty page ends the listing.
///
/// ```
/// use pravaha_client::controller::types::{ContinuationToken, Page};
///
/// let last: Page<String> = Page { items: Vec::new(), next: ContinuationToken::start() };
/// assert!(last.items.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: ContinuationToken,
}

/// A scale the controller accepted: the epoch it started from (what
/// [`check_scale`](super::ControllerClient::check_scale) takes) and the segments it creates.
///
/// ```
/// use pravaha_client::controller::types::ScaleStarted;
///
/// let started = ScaleStarted { epoch: 0, segments: Vec::new() };
/// assert_eq!(started.epoch, 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleStarted {
    pub epoch: u32,
    pub segments: Vec<SegmentWithRange>,
}

/// Where a scale stands.
///
/// ```
/// use pravaha_client::controller::types::ScaleStatus;
///
/// assert_ne!(ScaleStatus::InProgress, ScaleStatus::Done);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleStatus {
    InProgress,
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_picks_the_ceiling_segment() {
        let stream = ScopedStream::new("sc", "st");
        let segments = StreamSegments {
            segments: (0..4)
                .map(|i| {
                    let (low, high) = pravaha_types::key_space_part(i, 4);
                    SegmentWithRange {
                        segment: stream.segment(SegmentId::new(0, i)),
                        range: KeyRange::new(low, high),
                    }
                })
                .collect(),
            delegation_token: String::new(),
        };
        for position in [0.0, 0.1, 0.25, 0.3, 0.99] {
            let chosen = segments.segment_for_position(position).unwrap();
            assert!(chosen.range.low <= position && position <= chosen.range.high);
        }
        // A boundary goes to the lower segment, as Pravega's ceiling lookup does.
        assert_eq!(
            segments.segment_for_position(0.5).unwrap().segment.id,
            SegmentId::new(0, 1)
        );
    }
}

//! The time window of a reader group's position, computed as Pravega's readers compute it
//! (`WatermarkReaderImpl`): watermarks whose stream cut the position has passed give the lower
//! bound, the first watermark it has not passed gives the upper bound.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};

use super::{Watermark, WatermarkError, WatermarkReader};
use crate::controller::types::{KeyRange, SegmentId};
use crate::group::Positions;

/// Bounds on the event time of what a reader group has read: every event written after the
/// group's position has an event time above `lower` (if known), and everything before it was
/// written by writers that had noted no time above `upper` (if known).
///
/// `lower` is `None` until the position has passed a watermark; `upper` is `None` when no
/// watermark lies ahead of the position yet (the group is near the tail of the stream).
///
/// ```
/// use pravaha_client::watermark::TimeWindow;
///
/// let window = TimeWindow { lower: Some(1_000), upper: None };
/// assert!(window.is_near_head_of_stream());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWindow {
    pub lower: Option<i64>,
    pub upper: Option<i64>,
}

impl TimeWindow {
    /// No watermark is ahead of the position: the group reads about as fast as writers write.
    pub fn is_near_head_of_stream(&self) -> bool {
        self.upper.is_none()
    }
}

/// Follows a reader group's position through a stream's watermarks and answers its
/// [`TimeWindow`], as Pravega's `EventStreamReader.getCurrentTimeWindow` does.
///
/// Give it the group's positions ([`ReaderGroup::positions`](crate::group::ReaderGroup::positions));
/// positions in other streams are ignored. A position *has passed* a watermark when none of its
/// segments is behind the watermark's cut and at least one is ahead of it or the position equals
/// the cut; it *lies within* a watermark when some segments are ahead and some behind.
/// Segments are matched to the cut's by id, else by overlapping key range; a segment of an
/// earlier epoch is behind any segment of a later one.
///
/// ```no_run
/// # async fn example(group: pravaha_client::group::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
/// use pravaha_client::controller::types::ScopedStream;
/// use pravaha_client::watermark::{TimeWindowTracker, WatermarkReader};
/// use pravaha_client::{ClientConfig, ControllerClient};
///
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// let marks = WatermarkReader::new(controller, ScopedStream::new("examples", "orders"));
/// let mut tracker = TimeWindowTracker::new(marks);
/// let window = tracker.advance_to(&group.positions().await?).await?;
/// if let Some(lower) = window.lower {
///     println!("every event still to come has an event time above {lower}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TimeWindowTracker {
    reader: WatermarkReader,
    /// Watermarks read and not yet passed, oldest first.
    ahead: VecDeque<Watermark>,
    /// The lower bound of the last watermark passed.
    passed: Option<i64>,
    /// Key ranges of the group's segments, asked of the controller once each.
    ranges: HashMap<SegmentId, KeyRange>,
}

impl TimeWindowTracker {
    /// A tracker reading watermarks through `reader` (usually from the beginning).
    pub fn new(reader: WatermarkReader) -> Self {
        Self {
            reader,
            ahead: VecDeque::new(),
            passed: None,
            ranges: HashMap::new(),
        }
    }

    /// The window found by the last [`advance_to`](Self::advance_to).
    pub fn time_window(&self) -> TimeWindow {
        TimeWindow {
            lower: self.passed,
            upper: self.ahead.back().map(|mark| mark.upper_time_bound),
        }
    }

    /// Moves to the group's `positions`, reading the watermarks written so far as far as
    /// needed (without waiting for new ones), and answers the window they lie in.
    pub async fn advance_to(
        &mut self,
        positions: &Positions,
    ) -> Result<TimeWindow, WatermarkError> {
        let position = self.with_ranges(positions).await?;
        while let Some(first) = self.ahead.front() {
            if compare(&position, first) != Ordering::Greater {
                break;
            }
            self.passed = self.ahead.pop_front().map(|mark| mark.lower_time_bound);
        }
        // Read on until a watermark is wholly ahead of the position (or none is left).
        while self
            .ahead
            .back()
            .is_none_or(|last| compare(&position, last) != Ordering::Less)
        {
            let Some(mark) = self.reader.try_next().await? else {
                break;
            };
            if compare(&position, &mark) == Ordering::Greater {
                self.passed = Some(mark.lower_time_bound);
            } else {
                self.ahead.push_back(mark);
            }
        }
        Ok(self.time_window())
    }

    /// The group's segments of this stream with their key ranges and offsets.
    async fn with_ranges(
        &mut self,
        positions: &Positions,
    ) -> Result<Vec<(SegmentId, KeyRange, i64)>, WatermarkError> {
        let stream = self.reader.stream().clone();
        let mut position = Vec::new();
        for (segment, offset) in positions {
            if segment.stream != stream {
                continue;
            }
            if !self.ranges.contains_key(&segment.id) {
                // A segment is among the segments of the epoch that created it.
                let created = self
                    .reader
                    .controller
                    .get_epoch_segments(&stream, segment.id.epoch())
                    .await?;
                for known in created.segments {
                    self.ranges.insert(known.segment.id, known.range);
                }
            }
            let range = self.ranges.get(&segment.id).copied().ok_or_else(|| {
                WatermarkError::Controller(crate::controller::ControllerError::NotFound {
                    message: format!("segment {segment} is not in its epoch's segments"),
                })
            })?;
            position.push((segment.id, range, *offset));
        }
        Ok(position)
    }
}

/// Where `position` stands against `mark`'s cut: `Less` behind it, `Greater` past it (or exactly
/// at it: time moves on there), `Equal` partly before and partly after.
fn compare(position: &[(SegmentId, KeyRange, i64)], mark: &Watermark) -> Ordering {
    let cut = &mark.stream_cut.positions;
    let (mut behind, mut ahead) = (false, false);
    for (id, range, offset) in position {
        let matching: Vec<(SegmentId, i64)> = match cut.get(id) {
            Some(at) => vec![(*id, *at)],
            None => cut
                .iter()
                .filter(|(other, _)| {
                    mark.ranges
                        .get(other)
                        .is_none_or(|other_range| overlaps(range, other_range))
                })
                .map(|(other, at)| (*other, *at))
                .collect(),
        };
        for (other, at) in matching {
            match compare_segment_offsets((*id, *offset), (other, at)) {
                Ordering::Less => behind = true,
                Ordering::Greater => ahead = true,
                Ordering::Equal => {}
            }
        }
    }
    match (behind, ahead) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Segments order by id (a later epoch's segments are later); within one segment a negative
/// offset (the segment read to its end) is past every real offset.
fn compare_segment_offsets(left: (SegmentId, i64), right: (SegmentId, i64)) -> Ordering {
    left.0
        .cmp(&right.0)
        .then_with(|| match (left.1 < 0, right.1 < 0) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => left.1.cmp(&right.1),
        })
}

fn overlaps(a: &KeyRange, b: &KeyRange) -> bool {
    a.low < b.high && b.low < a.high
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::controller::types::{ScopedStream, StreamCut};

    fn mark(lower: i64, cut: &[(SegmentId, f64, f64, i64)]) -> Watermark {
        let mut stream_cut = StreamCut::new(ScopedStream::new("sc", "st"));
        let mut ranges = BTreeMap::new();
        for (id, low, high, offset) in cut {
            stream_cut.positions.insert(*id, *offset);
            ranges.insert(*id, KeyRange::new(*low, *high));
        }
        Watermark {
            lower_time_bound: lower,
            upper_time_bound: lower + 5,
            stream_cut,
            ranges,
        }
    }

    #[test]
    fn positions_compare_segment_by_segment() {
        let (a, b) = (SegmentId::new(0, 0), SegmentId::new(0, 1));
        let (left, right) = (KeyRange::new(0.0, 0.5), KeyRange::new(0.5, 1.0));
        let watermark = mark(100, &[(a, 0.0, 0.5, 10), (b, 0.5, 1.0, 20)]);
        let at = |x, y| vec![(a, left, x), (b, right, y)];
        assert_eq!(compare(&at(5, 20), &watermark), Ordering::Less);
        assert_eq!(compare(&at(10, 20), &watermark), Ordering::Greater);
        assert_eq!(compare(&at(11, 25), &watermark), Ordering::Greater);
        assert_eq!(compare(&at(11, 19), &watermark), Ordering::Equal);
        // A segment read to its end is past any offset in it.
        assert_eq!(compare(&at(-1, 20), &watermark), Ordering::Greater);
    }

    #[test]
    fn other_epochs_match_by_key_range() {
        let old = SegmentId::new(0, 0);
        let (left, right) = (SegmentId::new(1, 1), SegmentId::new(1, 2));
        let watermark = mark(100, &[(left, 0.0, 0.5, 10), (right, 0.5, 1.0, 0)]);
        // Still in the predecessor: behind both successors.
        let position = [(old, KeyRange::new(0.0, 1.0), 1_000_000)];
        assert_eq!(compare(&position, &watermark), Ordering::Less);
        // Only the right successor overlaps [0.6, 1.0) and it is at the cut.
        let later = SegmentId::new(2, 3);
        let position = [
            (left, KeyRange::new(0.0, 0.5), 10),
            (later, KeyRange::new(0.6, 1.0), 0),
        ];
        assert_eq!(compare(&position, &watermark), Ordering::Greater);
    }

    #[test]
    fn windows_report_absent_bounds_as_none() {
        let window = TimeWindow::default();
        assert_eq!((window.lower, window.upper), (None, None));
        assert!(window.is_near_head_of_stream());
    }
}

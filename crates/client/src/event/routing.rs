//! Which segment takes which part of the key space, as a writer sees it: the current segments,
//! with sealed ones replaced by their successors clipped to the sealed segment's range (so a
//! successor that merged several segments takes, through this writer, only the keys of the
//! segments it has seen sealed). Pure; no I/O.

use crate::controller::types::{KeyRange, ScopedSegment, StreamSegments, Successor};

/// A routing position in `[0, 1)` for `routing_key` (Pravega's hash), or a random one.
pub fn key_position(routing_key: Option<&str>) -> f64 {
    match routing_key {
        Some(key) => pravaha_types::routing_key_position(key),
        None => random_position(),
    }
}

/// A uniformly random position in `[0, 1)`.
fn random_position() -> f64 {
    // A thread-local generator: the position needs spread, not secrecy, and asking the
    // operating system for entropy on every event (as a v4 UUID does) costs a system call each.
    fastrand::f64()
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    range: KeyRange,
    segment: ScopedSegment,
}

/// Key ranges → segments, ordered by upper bound.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoutingTable {
    entries: Vec<Entry>,
}

impl RoutingTable {
    pub fn new(segments: &StreamSegments) -> Self {
        let mut entries: Vec<Entry> = segments
            .segments
            .iter()
            .map(|s| Entry {
                range: s.range,
                segment: s.segment.clone(),
            })
            .collect();
        entries.sort_by(|a, b| a.range.high.total_cmp(&b.range.high));
        Self { entries }
    }

    /// The segment for `position`: the entry with the smallest upper bound at or above it
    /// (Pravega's ceiling lookup; a boundary goes to the lower segment).
    pub fn segment_for(&self, position: f64) -> Option<&ScopedSegment> {
        let index = self
            .entries
            .partition_point(|entry| entry.range.high < position);
        self.entries
            .get(index)
            .or_else(|| self.entries.last())
            .map(|entry| &entry.segment)
    }

    /// The distinct segments routed to, in key order.
    pub fn segments(&self) -> Vec<ScopedSegment> {
        let mut segments: Vec<ScopedSegment> = Vec::new();
        for entry in &self.entries {
            if !segments.contains(&entry.segment) {
                segments.push(entry.segment.clone());
            }
        }
        segments
    }

    /// Replaces every entry of `sealed` with the successors that cover it, clipped to the
    /// entry's range. Returns false (and changes nothing) if the successors leave part of the
    /// range uncovered.
    pub fn replace(&mut self, sealed: &ScopedSegment, successors: &[Successor]) -> bool {
        let mut entries = Vec::with_capacity(self.entries.len() + successors.len());
        for entry in &self.entries {
            if &entry.segment != sealed {
                entries.push(entry.clone());
                continue;
            }
            let mut parts: Vec<Entry> = successors
                .iter()
                .filter(|s| s.predecessors.contains(&sealed.id))
                .filter_map(|s| {
                    let low = s.segment.range.low.max(entry.range.low);
                    let high = s.segment.range.high.min(entry.range.high);
                    (low < high).then(|| Entry {
                        range: KeyRange::new(low, high),
                        segment: s.segment.segment.clone(),
                    })
                })
                .collect();
            parts.sort_by(|a, b| a.range.low.total_cmp(&b.range.low));
            let mut covered = entry.range.low;
            for part in &parts {
                if part.range.low > covered {
                    return false;
                }
                covered = covered.max(part.range.high);
            }
            if covered < entry.range.high {
                return false;
            }
            entries.extend(parts);
        }
        entries.sort_by(|a, b| a.range.high.total_cmp(&b.range.high));
        self.entries = entries;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::types::{ScopedStream, SegmentId, SegmentWithRange};

    fn stream() -> ScopedStream {
        ScopedStream::new("sc", "st")
    }

    fn with_range(epoch: u32, number: u32, low: f64, high: f64) -> SegmentWithRange {
        SegmentWithRange {
            segment: stream().segment(SegmentId::new(epoch, number)),
            range: KeyRange::new(low, high),
        }
    }

    fn table(parts: &[(u32, f64, f64)]) -> RoutingTable {
        RoutingTable::new(&StreamSegments {
            segments: parts
                .iter()
                .map(|(number, low, high)| with_range(0, *number, *low, *high))
                .collect(),
            delegation_token: String::new(),
        })
    }

    #[test]
    fn lookups_take_the_ceiling_entry() {
        let routing = table(&[(1, 0.5, 1.0), (0, 0.0, 0.5)]);
        let number = |position| routing.segment_for(position).unwrap().id.number();
        assert_eq!(number(0.0), 0);
        assert_eq!(number(0.5), 0);
        assert_eq!(number(0.50001), 1);
        assert_eq!(number(0.999), 1);
        assert_eq!(routing.segments().len(), 2);
        assert!(RoutingTable::default().segment_for(0.3).is_none());
    }

    #[test]
    fn a_split_replaces_the_sealed_range() {
        let mut routing = table(&[(0, 0.0, 0.5), (1, 0.5, 1.0)]);
        let sealed = stream().segment(SegmentId::new(0, 1));
        let successors = vec![
            Successor {
                segment: with_range(1, 2, 0.5, 0.75),
                predecessors: vec![sealed.id],
            },
            Successor {
                segment: with_range(1, 3, 0.75, 1.0),
                predecessors: vec![sealed.id],
            },
        ];
        assert!(routing.replace(&sealed, &successors));
        let number = |position| routing.segment_for(position).unwrap().id.number();
        assert_eq!(number(0.2), 0);
        assert_eq!(number(0.6), 2);
        assert_eq!(number(0.9), 3);
    }

    #[test]
    fn a_merge_is_clipped_to_the_sealed_range_until_the_other_is_seen_sealed() {
        let mut routing = table(&[(0, 0.0, 0.5), (1, 0.5, 1.0)]);
        let first = stream().segment(SegmentId::new(0, 0));
        let second = stream().segment(SegmentId::new(0, 1));
        let merged = vec![Successor {
            segment: with_range(1, 2, 0.0, 1.0),
            predecessors: vec![first.id, second.id],
        }];
        assert!(routing.replace(&first, &merged));
        assert_eq!(routing.segment_for(0.2).unwrap().id.number(), 2);
        assert_eq!(routing.segment_for(0.7).unwrap().id.number(), 1);
        assert!(routing.replace(&second, &merged));
        assert_eq!(routing.segment_for(0.7).unwrap().id.number(), 2);
        assert_eq!(routing.segments().len(), 1);
    }

    #[test]
    fn successors_that_leave_a_gap_are_refused() {
        let mut routing = table(&[(0, 0.0, 1.0)]);
        let sealed = stream().segment(SegmentId::new(0, 0));
        let partial = vec![Successor {
            segment: with_range(1, 1, 0.0, 0.5),
            predecessors: vec![sealed.id],
        }];
        let before = routing.clone();
        assert!(!routing.replace(&sealed, &partial));
        assert_eq!(routing, before);
    }

    #[test]
    fn positions_lie_in_the_key_space() {
        for _ in 0..1000 {
            assert!((0.0..1.0).contains(&key_position(None)));
        }
        assert_eq!(
            key_position(Some("hello")),
            pravaha_types::routing_key_position("hello")
        );
    }
}

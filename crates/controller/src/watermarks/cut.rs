//! The stream cut of a watermark, computed as Pravega's controller computes it: the least
//! upper bound of the active writers' positions and the previous watermark's cut (a segment is
//! dropped once a successor of it is in the bound), with key ranges nobody reported filled by
//! the segments of the highest epoch in the bound at offset 0, so the cut is complete.

use std::collections::BTreeMap;

use pravaha_types::segment_epoch;
use pravaha_types::watermark::SegmentWithRange;

/// Segment id → (segment with its range, offset).
pub(crate) type Bound = BTreeMap<i64, (SegmentWithRange, i64)>;

/// Raises `bound` to cover `position`: a segment already in the bound keeps the greater
/// offset; a segment none of whose successors is in the bound replaces its predecessors.
pub(crate) fn add_to_upper_bound(position: &[(SegmentWithRange, i64)], bound: &mut Bound) {
    for (segment, offset) in position {
        if let Some((_, current)) = bound.get_mut(&segment.segment_id) {
            *current = (*current).max(*offset);
            continue;
        }
        // Later epochs have larger ids, so an overlapping segment with a larger id succeeds it.
        let has_successor = bound
            .values()
            .any(|(other, _)| segment.overlaps(other) && other.segment_id > segment.segment_id);
        if has_successor {
            continue;
        }
        bound.retain(|_, (other, _)| {
            !(segment.overlaps(other) && segment.segment_id > other.segment_id)
        });
        bound.insert(segment.segment_id, (*segment, *offset));
    }
}

/// The key ranges `[low, high)` of `[0, 1)` that no segment of `bound` covers.
pub(crate) fn missing_ranges(bound: &Bound) -> Vec<(f64, f64)> {
    let mut sorted: Vec<&SegmentWithRange> = bound.values().map(|(segment, _)| segment).collect();
    sorted.sort_by(|a, b| a.range_low.total_cmp(&b.range_low));
    let mut missing = Vec::new();
    let mut covered_to = 0.0;
    for segment in sorted {
        if segment.range_low > covered_to {
            missing.push((covered_to, segment.range_low));
        }
        covered_to = f64::max(covered_to, segment.range_high);
    }
    if covered_to < 1.0 {
        missing.push((covered_to, 1.0));
    }
    missing
}

/// Fills the ranges `bound` misses with segments of the highest epoch it holds, at offset 0,
/// until it covers the key space. `epoch_segments` answers an epoch's segments; an epoch it
/// does not know ends the filling (the cut stays incomplete rather than wrong).
pub(crate) fn complete(
    bound: &mut Bound,
    epoch_segments: impl Fn(u32) -> Option<Vec<SegmentWithRange>>,
) {
    // Each round either covers a range or moves to a higher epoch; a stream has fewer epochs
    // than this bound in any realistic history, and the loop must end even on bad metadata.
    for _ in 0..1024 {
        let missing = missing_ranges(bound);
        if missing.is_empty() {
            return;
        }
        let Some(highest) = bound.keys().map(|id| segment_epoch(*id)).max() else {
            return;
        };
        let Some(segments) = epoch_segments(highest) else {
            return;
        };
        let before = bound.clone();
        for (low, high) in missing {
            let filler: Vec<(SegmentWithRange, i64)> = segments
                .iter()
                .filter(|segment| segment.range_low < high && segment.range_high > low)
                .map(|segment| (*segment, 0))
                .collect();
            add_to_upper_bound(&filler, bound);
        }
        if *bound == before {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pravaha_types::segment_id;

    fn segment(epoch: u32, number: u32, low: f64, high: f64) -> SegmentWithRange {
        SegmentWithRange {
            segment_id: segment_id(epoch, number),
            range_low: low,
            range_high: high,
        }
    }

    fn offsets(bound: &Bound) -> Vec<(i64, i64)> {
        bound
            .iter()
            .map(|(id, (_, offset))| (*id, *offset))
            .collect()
    }

    #[test]
    fn the_bound_takes_the_greatest_offset_per_segment() {
        let (a, b) = (segment(0, 0, 0.0, 0.5), segment(0, 1, 0.5, 1.0));
        let mut bound = Bound::new();
        add_to_upper_bound(&[(a, 10), (b, 0)], &mut bound);
        add_to_upper_bound(&[(a, 0), (b, 30)], &mut bound);
        assert_eq!(offsets(&bound), [(a.segment_id, 10), (b.segment_id, 30)]);
        assert!(missing_ranges(&bound).is_empty());
    }

    #[test]
    fn successors_replace_their_predecessors_in_either_order() {
        let old = segment(0, 0, 0.0, 1.0);
        let (left, right) = (segment(1, 1, 0.0, 0.5), segment(1, 2, 0.5, 1.0));
        let mut bound = Bound::new();
        add_to_upper_bound(&[(old, 99)], &mut bound);
        add_to_upper_bound(&[(left, 5)], &mut bound);
        assert_eq!(offsets(&bound), [(left.segment_id, 5)]);
        // A predecessor reported after its successor is left out.
        add_to_upper_bound(&[(old, 120)], &mut bound);
        assert_eq!(offsets(&bound), [(left.segment_id, 5)]);
        assert_eq!(missing_ranges(&bound), [(0.5, 1.0)]);
        complete(&mut bound, |epoch| (epoch == 1).then(|| vec![left, right]));
        assert_eq!(
            offsets(&bound),
            [(left.segment_id, 5), (right.segment_id, 0)]
        );
    }

    #[test]
    fn an_unknown_epoch_leaves_the_gap() {
        let left = segment(1, 1, 0.0, 0.5);
        let mut bound = Bound::new();
        add_to_upper_bound(&[(left, 5)], &mut bound);
        complete(&mut bound, |_| None);
        assert_eq!(missing_ranges(&bound), [(0.5, 1.0)]);
    }
}

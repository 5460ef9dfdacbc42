//! The auto-scaling decision for one stream, as a pure function of its segments' measured
//! rates (Pravega's `AutoScaleProcessor.report` and `AutoScaleTask`).
//!
//! With target rate `T` per segment and moving averages `r2 ≤ r5 ≤ r10 ≤ r20` (named after
//! Pravega's default time constants, in minutes), a segment older than the cooldown is
//! - **hot** if `r2 > 5T`, `r5 > 2T` or `r10 > T`, each counted only once the rate has been
//!   measured for longer than its time constant. It is split into
//!   `min(max(2, ⌊max(r2, r5, r10) / T⌋), max(2, scale_factor))` equal key ranges.
//! - **cold** if `r2`, `r5` and `r10` are below `T` and `r20` below `T/2`, measured for longer
//!   than the longest time constant. Two adjacent cold segments are merged into one, while the
//!   stream keeps at least `min_num_segments` (Pravega merges the cold neighbours of a cold
//!   segment; merging pairs halves a cold stream per round all the same).
//!
//! All splits and merges a stream needs go into one scale. A stream with fewer segments than
//! its minimum (after `updateStream` raised it) has its widest segments split until it has
//! enough, whatever the rates.

use std::collections::BinaryHeap;
use std::time::Duration;

use pravaha_types::attributes::RATE_WINDOWS;

use crate::model::{split_range, ScaleType, ScalingPolicy};

/// What a policy's target rate counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateUnit {
    Events,
    Kibibytes,
}

/// One active segment and its measured load.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SegmentLoad {
    pub id: i64,
    pub key_start: f64,
    pub key_end: f64,
    pub created_ms: i64,
    /// The moving averages in the policy's unit, shortest first; `None` if not measured.
    pub rates: Option<[f64; RATE_WINDOWS]>,
    /// How long the rates have been measured.
    pub observed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thresholds {
    pub cooldown: Duration,
    pub windows: [Duration; RATE_WINDOWS],
}

/// A scale to start: segments to seal and the key ranges that replace them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScalePlan {
    pub sealed: Vec<i64>,
    pub ranges: Vec<(f64, f64)>,
    pub splits: usize,
    pub merges: usize,
    pub segments_after: usize,
}

/// The scale `segments` (the stream's active segments, in key order) call for, if any.
pub(crate) fn plan(
    policy: &ScalingPolicy,
    segments: &[SegmentLoad],
    now_ms: i64,
    thresholds: &Thresholds,
) -> Option<ScalePlan> {
    if policy.scale_type == ScaleType::FixedNumSegments || segments.is_empty() {
        return None;
    }
    let minimum = usize::try_from(policy.min_num_segments).unwrap_or(1).max(1);
    if segments.len() < minimum {
        return Some(fill_to_minimum(segments, minimum));
    }
    let target = f64::from(policy.target_rate);
    if target <= 0.0 {
        return None;
    }
    let cooled = |s: &SegmentLoad| {
        let age_ms = u64::try_from(now_ms.saturating_sub(s.created_ms)).unwrap_or(0);
        Duration::from_millis(age_ms) >= thresholds.cooldown
    };
    let max_parts = u32::try_from(policy.scale_factor).unwrap_or(0).max(2);
    let parts: Vec<u32> = segments
        .iter()
        .map(|s| match s.rates {
            Some(rates) if cooled(s) => {
                split_parts(&rates, s.observed, target, max_parts, thresholds)
            }
            _ => 1,
        })
        .collect();
    let cold: Vec<bool> = segments
        .iter()
        .map(|s| match s.rates {
            Some(rates) => cooled(s) && is_cold(&rates, s.observed, target, thresholds),
            None => false,
        })
        .collect();
    let mut plan = ScalePlan {
        sealed: Vec::new(),
        ranges: Vec::new(),
        splits: 0,
        merges: 0,
        segments_after: segments.len(),
    };
    let mut mergeable = segments.len() - minimum;
    let mut i = 0;
    while i < segments.len() {
        let segment = &segments[i];
        if parts[i] > 1 {
            split(&mut plan, segment, parts[i]);
        } else if mergeable > 0 && i + 1 < segments.len() && cold[i] && cold[i + 1] {
            let next = &segments[i + 1];
            plan.sealed.extend([segment.id, next.id]);
            plan.ranges.push((segment.key_start, next.key_end));
            plan.merges += 1;
            plan.segments_after -= 1;
            mergeable -= 1;
            i += 1;
        }
        i += 1;
    }
    (!plan.sealed.is_empty()).then_some(plan)
}

/// Into how many parts a segment with these rates is split (1 = it is not hot).
fn split_parts(
    rates: &[f64; RATE_WINDOWS],
    observed: Duration,
    target: f64,
    max_parts: u32,
    thresholds: &Thresholds,
) -> u32 {
    let warm = |w: usize| observed > thresholds.windows[w];
    let hot = (rates[0] > 5.0 * target && warm(0))
        || (rates[1] > 2.0 * target && warm(1))
        || (rates[2] > target && warm(2));
    if !hot {
        return 1;
    }
    let highest = rates[0].max(rates[1]).max(rates[2]);
    // Saturating conversion: an absurd rate asks for at most `max_parts`.
    let wanted = ((highest / target).floor() as u32).max(2);
    wanted.min(max_parts)
}

fn is_cold(
    rates: &[f64; RATE_WINDOWS],
    observed: Duration,
    target: f64,
    thresholds: &Thresholds,
) -> bool {
    rates[..3].iter().all(|r| *r < target)
        && rates[3] < target / 2.0
        && observed > thresholds.windows[RATE_WINDOWS - 1]
}

fn split(plan: &mut ScalePlan, segment: &SegmentLoad, parts: u32) {
    plan.sealed.push(segment.id);
    plan.ranges
        .extend((0..parts).map(|i| split_range(segment.key_start, segment.key_end, i, parts)));
    plan.splits += 1;
    plan.segments_after += parts as usize - 1;
}

/// Splits the widest segments until there are `minimum`: each further part goes to the segment
/// whose parts would otherwise be widest.
fn fill_to_minimum(segments: &[SegmentLoad], minimum: usize) -> ScalePlan {
    let mut parts = vec![1u32; segments.len()];
    // Widths are positive, so their bit patterns order like the values.
    let width_per_part = |i: usize, parts: u32| {
        ((segments[i].key_end - segments[i].key_start) / f64::from(parts)).to_bits()
    };
    let mut widest: BinaryHeap<(u64, usize)> = (0..segments.len())
        .map(|i| (width_per_part(i, 1), i))
        .collect();
    for _ in segments.len()..minimum {
        let Some((_, i)) = widest.pop() else {
            break;
        };
        parts[i] += 1;
        widest.push((width_per_part(i, parts[i]), i));
    }
    let mut plan = ScalePlan {
        sealed: Vec::new(),
        ranges: Vec::new(),
        splits: 0,
        merges: 0,
        segments_after: segments.len(),
    };
    for (segment, parts) in segments.iter().zip(parts) {
        if parts > 1 {
            split(&mut plan, segment, parts);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn thresholds() -> Thresholds {
        Thresholds {
            cooldown: 10 * SECOND,
            windows: [2, 5, 10, 20].map(|s| s * SECOND),
        }
    }

    fn policy(target: i32, factor: i32, min: i32) -> ScalingPolicy {
        ScalingPolicy {
            scale_type: ScaleType::ByRateInEventsPerSec,
            target_rate: target,
            scale_factor: factor,
            min_num_segments: min,
        }
    }

    /// `count` equal segments created at 0, each with `rates`, measured for 60 s.
    fn stream(count: u32, rates: [f64; 4]) -> Vec<SegmentLoad> {
        (0..count)
            .map(|i| {
                let (key_start, key_end) = split_range(0.0, 1.0, i, count);
                SegmentLoad {
                    id: i64::from(i),
                    key_start,
                    key_end,
                    created_ms: 0,
                    rates: Some(rates),
                    observed: 60 * SECOND,
                }
            })
            .collect()
    }

    const NOW: i64 = 60_000;
    const HOT: [f64; 4] = [100.0, 100.0, 100.0, 100.0];
    const COLD: [f64; 4] = [1.0, 1.0, 1.0, 1.0];
    const WARM: [f64; 4] = [8.0, 8.0, 8.0, 8.0];

    #[test]
    fn a_hot_segment_is_split_into_at_most_the_scale_factor() {
        let plan = plan(&policy(10, 3, 1), &stream(1, HOT), NOW, &thresholds()).unwrap();
        assert_eq!(plan.sealed, vec![0]);
        assert_eq!(plan.ranges.len(), 3);
        assert_eq!((plan.ranges[0].0, plan.ranges[2].1), (0.0, 1.0));
        assert_eq!((plan.splits, plan.segments_after), (1, 3));
        // Just above the target: two parts, whatever the factor.
        let barely = stream(1, [11.0, 11.0, 11.0, 11.0]);
        let plan = super::plan(&policy(10, 8, 1), &barely, NOW, &thresholds()).unwrap();
        assert_eq!(plan.ranges.len(), 2);
    }

    #[test]
    fn rates_count_only_once_measured_for_their_window_and_after_the_cooldown() {
        let mut young = stream(1, [30.0, 30.0, 30.0, 30.0]);
        // Measured for 6 s: the 2 s and 5 s averages count, and 30 is above 2T (not 5T).
        young[0].observed = 6 * SECOND;
        assert!(
            plan(&policy(10, 2, 1), &young, NOW, &thresholds()).is_some(),
            "r5 > 2T"
        );
        young[0].observed = 4 * SECOND;
        assert!(
            plan(&policy(10, 2, 1), &young, NOW, &thresholds()).is_none(),
            "r2 < 5T"
        );
        let mut new = stream(1, HOT);
        new[0].created_ms = NOW - 5_000;
        assert!(
            plan(&policy(10, 2, 1), &new, NOW, &thresholds()).is_none(),
            "cooldown"
        );
        let mut unmeasured = stream(1, HOT);
        unmeasured[0].rates = None;
        assert!(plan(&policy(10, 2, 1), &unmeasured, NOW, &thresholds()).is_none());
    }

    #[test]
    fn fixed_streams_are_never_scaled() {
        let fixed = ScalingPolicy::fixed(1);
        assert!(plan(&fixed, &stream(1, HOT), NOW, &thresholds()).is_none());
        assert!(plan(
            &ScalingPolicy::fixed(4),
            &stream(1, HOT),
            NOW,
            &thresholds()
        )
        .is_none());
    }

    #[test]
    fn adjacent_cold_pairs_merge_down_to_the_minimum() {
        let plan = plan(&policy(10, 2, 1), &stream(4, COLD), NOW, &thresholds()).unwrap();
        assert_eq!(plan.sealed, vec![0, 1, 2, 3]);
        assert_eq!(plan.ranges, vec![(0.0, 0.5), (0.5, 1.0)]);
        assert_eq!(plan.segments_after, 2);
        let plan = super::plan(&policy(10, 2, 3), &stream(4, COLD), NOW, &thresholds()).unwrap();
        assert_eq!((plan.sealed.len(), plan.segments_after), (2, 3));
        assert!(super::plan(&policy(10, 2, 4), &stream(4, COLD), NOW, &thresholds()).is_none());
        // Below the target but not below half of it over the longest window: not cold.
        assert!(super::plan(&policy(10, 2, 1), &stream(4, WARM), NOW, &thresholds()).is_none());
        // Cold only once the longest window is trusted.
        let mut young = stream(2, COLD);
        young.iter_mut().for_each(|s| s.observed = 15 * SECOND);
        assert!(super::plan(&policy(10, 2, 1), &young, NOW, &thresholds()).is_none());
    }

    #[test]
    fn splits_and_merges_go_into_one_scale() {
        let mut segments = stream(4, COLD);
        segments[3].rates = Some(HOT);
        let plan = plan(&policy(10, 2, 1), &segments, NOW, &thresholds()).unwrap();
        // 0 and 1 merge; 2 has no cold neighbour left; 3 splits.
        assert_eq!(plan.sealed, vec![0, 1, 3]);
        assert_eq!(plan.ranges, vec![(0.0, 0.5), (0.75, 0.875), (0.875, 1.0)]);
        assert_eq!((plan.splits, plan.merges, plan.segments_after), (1, 1, 4));
    }

    #[test]
    fn a_stream_below_its_minimum_splits_its_widest_segments() {
        let plan = plan(&policy(10, 2, 4), &stream(1, COLD), NOW, &thresholds()).unwrap();
        assert_eq!(
            plan.ranges,
            vec![(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
        );
        let mut uneven = stream(3, COLD);
        for (segment, (start, end)) in uneven
            .iter_mut()
            .zip([(0.0, 0.25), (0.25, 0.5), (0.5, 1.0)])
        {
            (segment.key_start, segment.key_end) = (start, end);
        }
        let plan = super::plan(&policy(10, 2, 4), &uneven, NOW, &thresholds()).unwrap();
        assert_eq!(plan.sealed, vec![2]);
        assert_eq!(plan.ranges, vec![(0.5, 0.75), (0.75, 1.0)]);
        assert_eq!(plan.segments_after, 4);
    }
}

//! The controller's metadata as plain data, and the pure rules over it: creating a stream's first
//! epoch, validating and applying a scale, successors and predecessors, segments at a time,
//! between stream cuts, and stream-cut validity. No I/O here; the service layer loads a record,
//! asks these functions, and writes the record back with a version check.
//!
//! Serialized as JSON in the controller's metadata table (docs/formats/controller-metadata.md).

use std::collections::{BTreeMap, BTreeSet};

use pravaha_types::{segment_epoch, segment_id};
use serde::{Deserialize, Serialize};

/// Version of the JSON records; bumped on an incompatible change.
pub const RECORD_VERSION: u32 = 1;

/// How a stream's segment count is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScaleType {
    /// A fixed number of segments: never scaled automatically.
    FixedNumSegments,
    /// Scaled by byte rate (`target_rate` in KiB/s per segment).
    ByRateInKbytesPerSec,
    /// Scaled by event rate (`target_rate` in events/s per segment).
    ByRateInEventsPerSec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    pub scale_type: ScaleType,
    pub target_rate: i32,
    pub scale_factor: i32,
    pub min_num_segments: i32,
}

impl ScalingPolicy {
    pub fn fixed(segments: i32) -> Self {
        Self {
            scale_type: ScaleType::FixedNumSegments,
            target_rate: 0,
            scale_factor: 0,
            min_num_segments: segments,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionType {
    /// `retention_param` and `retention_max` in milliseconds.
    Time,
    /// `retention_param` and `retention_max` in bytes.
    Size,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub retention_type: RetentionType,
    /// The minimum to keep.
    pub retention_param: i64,
    /// The maximum to keep (`i64::MAX` = no maximum).
    pub retention_max: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    pub scaling: ScalingPolicy,
    pub retention: Option<RetentionPolicy>,
    pub tags: Vec<String>,
    pub timestamp_aggregation_timeout_ms: i64,
    pub rollover_size_bytes: i64,
}

impl StreamConfig {
    /// Checks the configuration as Pravega does.
    pub fn validate(&self) -> Result<(), String> {
        let scaling = &self.scaling;
        if scaling.min_num_segments < 1 {
            return Err(format!(
                "the minimum number of segments must be at least 1, not {}",
                scaling.min_num_segments
            ));
        }
        if scaling.min_num_segments > MAX_SEGMENTS_PER_EPOCH {
            return Err(format!(
                "at most {MAX_SEGMENTS_PER_EPOCH} segments per stream are supported"
            ));
        }
        if scaling.scale_type != ScaleType::FixedNumSegments {
            if scaling.target_rate <= 0 {
                return Err("a rate-based scaling policy needs a positive target rate".into());
            }
            if scaling.scale_factor <= 0 {
                return Err("a rate-based scaling policy needs a positive scale factor".into());
            }
        }
        if let Some(retention) = &self.retention {
            if retention.retention_param < 0 || retention.retention_max < retention.retention_param
            {
                return Err(format!(
                    "retention limits must satisfy 0 <= min ({}) <= max ({})",
                    retention.retention_param, retention.retention_max
                ));
            }
        }
        if self.tags.len() > 128 {
            return Err("a stream has at most 128 tags".into());
        }
        if let Some(tag) = self.tags.iter().find(|t| t.is_empty() || t.len() > 256) {
            return Err(format!("tag {tag:?} must be 1 to 256 characters long"));
        }
        if self.rollover_size_bytes < 0 || self.timestamp_aggregation_timeout_ms < 0 {
            return Err("rollover size and aggregation timeout must not be negative".into());
        }
        Ok(())
    }
}

/// Most segments one epoch may have (a sanity bound: key ranges are f64 fractions).
pub const MAX_SEGMENTS_PER_EPOCH: i32 = 100_000;

/// One segment of a stream, active or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub id: i64,
    pub key_start: f64,
    pub key_end: f64,
    pub created_ms: i64,
    /// The epoch in which it was replaced (sealed by a scale), if it was.
    pub replaced_in_epoch: Option<u32>,
}

impl SegmentRecord {
    pub fn number(&self) -> u32 {
        pravaha_types::segment_number(self.id)
    }

    pub fn creation_epoch(&self) -> u32 {
        segment_epoch(self.id)
    }

    fn overlaps(&self, other: &SegmentRecord) -> bool {
        self.key_start < other.key_end && other.key_start < self.key_end
    }
}

/// A generation of a stream's segment set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u32,
    /// Active segments of the epoch, in key order.
    pub segments: Vec<i64>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamState {
    /// Being created: its first segments may not all exist yet.
    Creating,
    Active,
    Sealed,
}

/// A change to a stream that takes several steps on the segment store. It is written into the
/// stream's record before its first step, so that a controller restarted at any point finishes
/// it; each step is idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Workflow {
    /// Create the first epoch's segments, then mark the stream active.
    Create,
    /// Create `created`, seal `sealed`, then write epoch `new_epoch`.
    Scale {
        new_epoch: u32,
        sealed: Vec<i64>,
        created: Vec<SegmentRecord>,
        started_ms: i64,
    },
    /// Truncate the cut's segments at their offsets and delete the segments wholly before it.
    Truncate {
        cut: BTreeMap<i64, i64>,
        delete: Vec<i64>,
    },
    /// Seal every active segment, then mark the stream sealed.
    Seal,
    /// Delete every segment that still exists, then the record.
    Delete,
    /// Push the new scaling policy to the active segments.
    UpdatePolicy,
    /// Merge committing transactions (all created in `epoch`) into the stream, in commit order.
    CommitTransactions {
        /// Transaction ids as 32 lower-case hex digits, in commit order.
        txns: Vec<String>,
        epoch: u32,
        /// Set when `epoch` is no longer the current epoch (rolling transactions).
        rolling: Option<RollingCommit>,
    },
}

/// How transactions of an older epoch are committed (as Pravega's rolling transactions): their
/// segments are merged into `duplicates` (copies of that epoch's segments, forming a new epoch
/// that replaces the current segments), which are sealed at once and followed by `successors`
/// (copies of the current segments, in the epoch after). Readers thus see the transactions after
/// everything written before the commit, and per-key order holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingCommit {
    pub duplicates: Vec<SegmentRecord>,
    pub successors: Vec<SegmentRecord>,
    /// The current segments when the commit started (replaced by `duplicates`).
    pub sealed: Vec<i64>,
}

impl Workflow {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Scale { .. } => "scale",
            Self::Truncate { .. } => "truncate",
            Self::Seal => "seal",
            Self::Delete => "delete",
            Self::UpdatePolicy => "update",
            Self::CommitTransactions { .. } => "transaction commit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeRecord {
    pub v: u32,
    pub name: String,
    pub created_ms: i64,
    /// Set while a deletion checks that the scope is empty; the scope counts as gone.
    #[serde(default)]
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub v: u32,
    pub scope: String,
    pub name: String,
    pub config: StreamConfig,
    pub created_ms: i64,
    pub state: StreamState,
    /// Every epoch, oldest first; the last is the current one.
    pub epochs: Vec<EpochRecord>,
    /// Every segment ever created and not deleted by truncation.
    pub segments: BTreeMap<i64, SegmentRecord>,
    /// The next segment number to hand out.
    pub next_number: u32,
    /// The stream cut the stream is truncated at (empty: never truncated).
    pub truncation: BTreeMap<i64, i64>,
    /// Segments deleted by truncation (so successors queries still answer for them).
    pub truncated_segments: BTreeSet<i64>,
    pub workflow: Option<Workflow>,
}

/// A segment with its key range, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentRange {
    pub id: i64,
    pub key_start: f64,
    pub key_end: f64,
}

impl From<&SegmentRecord> for SegmentRange {
    fn from(record: &SegmentRecord) -> Self {
        Self {
            id: record.id,
            key_start: record.key_start,
            key_end: record.key_end,
        }
    }
}

/// Why a requested scale cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition(pub String);

impl StreamRecord {
    /// A new stream in state `Creating` with epoch 0: `min_num_segments` segments numbered
    /// 0..n tiling [0, 1), the last ending exactly at 1.0.
    pub fn new(scope: &str, name: &str, config: StreamConfig, now_ms: i64) -> Self {
        let count = u32::try_from(config.scaling.min_num_segments.max(1)).unwrap_or(1);
        let mut segments = BTreeMap::new();
        let mut ids = Vec::new();
        for number in 0..count {
            let id = segment_id(0, number);
            let (key_start, key_end) = split_range(0.0, 1.0, number, count);
            segments.insert(
                id,
                SegmentRecord {
                    id,
                    key_start,
                    key_end,
                    created_ms: now_ms,
                    replaced_in_epoch: None,
                },
            );
            ids.push(id);
        }
        Self {
            v: RECORD_VERSION,
            scope: scope.to_owned(),
            name: name.to_owned(),
            config,
            created_ms: now_ms,
            state: StreamState::Creating,
            epochs: vec![EpochRecord {
                epoch: 0,
                segments: ids,
                created_ms: now_ms,
            }],
            segments,
            next_number: count,
            truncation: BTreeMap::new(),
            truncated_segments: BTreeSet::new(),
            workflow: Some(Workflow::Create),
        }
    }

    pub fn current_epoch(&self) -> &EpochRecord {
        self.epochs.last().expect("a stream has at least one epoch")
    }

    pub fn epoch(&self, epoch: u32) -> Option<&EpochRecord> {
        self.epochs.get(epoch as usize)
    }

    fn ranges(&self, ids: &[i64]) -> Vec<SegmentRange> {
        ids.iter()
            .filter_map(|id| self.segments.get(id))
            .map(SegmentRange::from)
            .collect()
    }

    /// The active segments; empty once the stream is sealed.
    pub fn current_segments(&self) -> Vec<SegmentRange> {
        if self.state == StreamState::Sealed {
            return Vec::new();
        }
        self.ranges(&self.current_epoch().segments)
    }

    pub fn epoch_segments(&self, epoch: u32) -> Option<Vec<SegmentRange>> {
        self.epoch(epoch).map(|e| self.ranges(&e.segments))
    }

    /// Checks a scale of `sealed` into `new_ranges` against the current epoch and returns the
    /// workflow that performs it.
    pub fn plan_scale(
        &self,
        sealed: &[i64],
        new_ranges: &[(f64, f64)],
        now_ms: i64,
    ) -> Result<Workflow, Precondition> {
        if self.state != StreamState::Active {
            return Err(Precondition(format!("the stream is {:?}", self.state)));
        }
        if let Some(workflow) = &self.workflow {
            return Err(Precondition(format!(
                "a {} is in progress",
                workflow.name()
            )));
        }
        if sealed.is_empty() || new_ranges.is_empty() {
            return Err(Precondition(
                "a scale needs segments to seal and new key ranges".into(),
            ));
        }
        let current: BTreeSet<i64> = self.current_epoch().segments.iter().copied().collect();
        let mut unique = BTreeSet::new();
        for id in sealed {
            if !current.contains(id) {
                return Err(Precondition(format!(
                    "segment {id} is not active in epoch {}",
                    self.current_epoch().epoch
                )));
            }
            if !unique.insert(*id) {
                return Err(Precondition(format!("segment {id} is listed twice")));
            }
        }
        // The new ranges must cover exactly what the sealed segments covered.
        let mut old: Vec<(f64, f64)> = sealed
            .iter()
            .map(|id| {
                let s = &self.segments[id];
                (s.key_start, s.key_end)
            })
            .collect();
        let mut new: Vec<(f64, f64)> = new_ranges.to_vec();
        if new
            .iter()
            .any(|(start, end)| !(0.0..1.0).contains(start) || end <= start || *end > 1.0)
        {
            return Err(Precondition(
                "key ranges must lie in [0, 1) with start < end".into(),
            ));
        }
        let total = i32::try_from(current.len() - sealed.len() + new.len()).unwrap_or(i32::MAX);
        if total > MAX_SEGMENTS_PER_EPOCH {
            return Err(Precondition(format!(
                "at most {MAX_SEGMENTS_PER_EPOCH} segments per epoch"
            )));
        }
        old.sort_by(|a, b| a.0.total_cmp(&b.0));
        new.sort_by(|a, b| a.0.total_cmp(&b.0));
        if coverage(&old) != coverage(&new) {
            return Err(Precondition(
                "the new key ranges do not cover exactly the ranges of the sealed segments".into(),
            ));
        }
        let new_epoch = self.current_epoch().epoch + 1;
        let created = new
            .iter()
            .enumerate()
            .map(|(i, (key_start, key_end))| SegmentRecord {
                id: segment_id(
                    new_epoch,
                    self.next_number + u32::try_from(i).expect("bounded above"),
                ),
                key_start: *key_start,
                key_end: *key_end,
                created_ms: now_ms,
                replaced_in_epoch: None,
            })
            .collect();
        Ok(Workflow::Scale {
            new_epoch,
            sealed: sealed.to_vec(),
            created,
            started_ms: now_ms,
        })
    }

    /// The record as it will be once its pending workflow's epochs are written.
    pub fn projected(&self) -> StreamRecord {
        let mut future = self.clone();
        future.workflow = None;
        match &self.workflow {
            Some(Workflow::Scale {
                new_epoch,
                sealed,
                created,
                ..
            }) => future.complete_scale(*new_epoch, sealed, created),
            Some(Workflow::CommitTransactions {
                rolling: Some(rolling),
                ..
            }) => future.complete_rolling(rolling),
            _ => {}
        }
        future
    }

    /// Plans a rolling commit of transactions created in `txn_epoch` (an older epoch).
    pub fn plan_rolling(&self, txn_epoch: u32, now_ms: i64) -> Option<RollingCommit> {
        let old = self.epoch(txn_epoch)?;
        let current = self.current_epoch();
        // Copies keep their original's segment number (in a new epoch), as Pravega's do: a
        // number's generations share a container, so the transaction segments (beside the
        // originals) can be merged into the copies.
        let copy = |source: &[i64], epoch: u32| -> Vec<SegmentRecord> {
            source
                .iter()
                .filter_map(|id| self.segments.get(id))
                .map(|s| SegmentRecord {
                    id: segment_id(epoch, s.number()),
                    key_start: s.key_start,
                    key_end: s.key_end,
                    created_ms: now_ms,
                    replaced_in_epoch: None,
                })
                .collect()
        };
        let duplicates = copy(&old.segments, current.epoch + 1);
        let successors = copy(&current.segments, current.epoch + 2);
        Some(RollingCommit {
            duplicates,
            successors,
            sealed: current.segments.clone(),
        })
    }

    /// Writes the two epochs of a rolling commit (the workflow's last step).
    pub fn complete_rolling(&mut self, rolling: &RollingCommit) {
        let Some(first) = rolling.duplicates.first() else {
            return;
        };
        let duplicates_epoch = segment_epoch(first.id);
        self.complete_scale(duplicates_epoch, &rolling.sealed, &rolling.duplicates);
        let duplicate_ids: Vec<i64> = rolling.duplicates.iter().map(|s| s.id).collect();
        self.complete_scale(duplicates_epoch + 1, &duplicate_ids, &rolling.successors);
    }

    /// Writes the new epoch of a scale workflow into the record (the workflow's last step).
    pub fn complete_scale(&mut self, new_epoch: u32, sealed: &[i64], created: &[SegmentRecord]) {
        if self.current_epoch().epoch >= new_epoch {
            return;
        }
        let now = created.first().map_or(0, |s| s.created_ms);
        for id in sealed {
            if let Some(segment) = self.segments.get_mut(id) {
                segment.replaced_in_epoch = Some(new_epoch);
            }
        }
        for segment in created {
            self.segments.insert(segment.id, segment.clone());
            self.next_number = self.next_number.max(segment.number() + 1);
        }
        let mut active: Vec<&SegmentRecord> = self
            .current_epoch()
            .segments
            .iter()
            .filter(|id| !sealed.contains(id))
            .filter_map(|id| self.segments.get(id))
            .chain(created.iter())
            .collect();
        active.sort_by(|a, b| a.key_start.total_cmp(&b.key_start));
        let segments = active.iter().map(|s| s.id).collect();
        self.epochs.push(EpochRecord {
            epoch: new_epoch,
            segments,
            created_ms: now,
        });
    }

    /// The successors of `id` with each successor's predecessors; empty while `id` is active
    /// (or the stream is sealed and `id` was among the last segments).
    pub fn successors(&self, id: i64) -> Option<Vec<(SegmentRange, Vec<i64>)>> {
        let segment = self.segments.get(&id)?;
        let Some(epoch) = segment.replaced_in_epoch else {
            // A scale (or rolling commit) in progress that seals this segment already names its
            // successors (they are created before it is sealed): writers that find it sealed
            // move on to them.
            if self.workflow.is_some() {
                let projected = self.projected();
                if projected
                    .segments
                    .get(&id)
                    .is_some_and(|s| s.replaced_in_epoch.is_some())
                {
                    return projected.successors(id);
                }
            }
            return Some(Vec::new());
        };
        let new_epoch = self.epoch(epoch)?;
        let previous = self.epoch(epoch - 1)?;
        let replaced: Vec<&SegmentRecord> = previous
            .segments
            .iter()
            .filter_map(|id| self.segments.get(id))
            .filter(|s| s.replaced_in_epoch == Some(epoch))
            .collect();
        let successors = new_epoch
            .segments
            .iter()
            .filter_map(|id| self.segments.get(id))
            .filter(|s| s.creation_epoch() == epoch && s.overlaps(segment))
            .map(|s| {
                let predecessors = replaced
                    .iter()
                    .filter(|p| p.overlaps(s))
                    .map(|p| p.id)
                    .collect();
                (SegmentRange::from(s), predecessors)
            })
            .collect();
        Some(successors)
    }

    /// The head of the stream: its truncation cut, or the first epoch's segments at 0.
    pub fn head(&self) -> BTreeMap<i64, i64> {
        if self.truncation.is_empty() {
            self.epochs[0].segments.iter().map(|id| (*id, 0)).collect()
        } else {
            self.truncation.clone()
        }
    }

    /// The segments (with start offsets) at `timestamp_ms`: the epoch active then, at offset 0,
    /// or the head if the stream was truncated past it. Timestamp 0 is the head.
    pub fn segments_at(&self, timestamp_ms: i64) -> BTreeMap<i64, i64> {
        let epoch = self
            .epochs
            .iter()
            .rev()
            .find(|e| e.created_ms <= timestamp_ms)
            .unwrap_or(&self.epochs[0]);
        let head = self.head();
        // A cut at that epoch is only readable if no segment of it was deleted by truncation and
        // it is not before the truncation cut.
        let before_head = epoch.segments.iter().any(|id| {
            self.truncated_segments.contains(id)
                || (!head.contains_key(id)
                    && !self.truncation.is_empty()
                    && self.is_before_cut(*id, &head))
        });
        if timestamp_ms <= 0 || before_head {
            return head;
        }
        epoch
            .segments
            .iter()
            .map(|id| (*id, head.get(id).copied().unwrap_or(0)))
            .collect()
    }

    /// Whether `id` lies wholly before `cut` (it is a predecessor of a cut segment).
    fn is_before_cut(&self, id: i64, cut: &BTreeMap<i64, i64>) -> bool {
        let Some(segment) = self.segments.get(&id) else {
            return self.truncated_segments.contains(&id);
        };
        cut.keys().filter_map(|c| self.segments.get(c)).any(|c| {
            c.overlaps(segment)
                && c.creation_epoch() > segment.creation_epoch()
                && segment
                    .replaced_in_epoch
                    .is_some_and(|e| e <= c.creation_epoch())
        })
    }

    /// Checks a stream cut: its segments exist in this stream, their ranges tile [0, 1) without
    /// overlap, and no offset is negative.
    pub fn validate_cut(&self, cut: &BTreeMap<i64, i64>) -> Result<(), String> {
        if cut.is_empty() {
            return Err("the stream cut is empty".into());
        }
        let mut ranges = Vec::with_capacity(cut.len());
        for (id, offset) in cut {
            let Some(segment) = self.segments.get(id) else {
                return Err(format!("segment {id} is not a segment of this stream"));
            };
            if *offset < 0 {
                return Err(format!("offset {offset} of segment {id} is negative"));
            }
            ranges.push((segment.key_start, segment.key_end));
        }
        ranges.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut expected_start = 0.0;
        for (start, end) in &ranges {
            if *start != expected_start {
                return Err("the cut's segments do not tile the key space".into());
            }
            expected_start = *end;
        }
        if expected_start != 1.0 {
            return Err("the cut's segments do not cover the whole key space".into());
        }
        Ok(())
    }

    /// The segments wholly before `cut` that still exist (deleted by a truncation at `cut`).
    pub fn segments_before(&self, cut: &BTreeMap<i64, i64>) -> Vec<i64> {
        self.segments
            .keys()
            .filter(|id| !cut.contains_key(id) && self.is_before_cut(**id, cut))
            .copied()
            .collect()
    }

    /// Every segment from `from` (or the head) up to `to` (or the current tail), following
    /// successors: the segments a reader covers between the two cuts.
    pub fn segments_between(&self, from: &BTreeMap<i64, i64>, to: &BTreeMap<i64, i64>) -> Vec<i64> {
        let start = if from.is_empty() {
            self.head()
        } else {
            from.clone()
        };
        let mut seen: BTreeSet<i64> = BTreeSet::new();
        let mut frontier: Vec<i64> = start.keys().copied().collect();
        while let Some(id) = frontier.pop() {
            if !seen.insert(id) || to.contains_key(&id) {
                continue;
            }
            for (successor, _) in self.successors(id).unwrap_or_default() {
                if !self.is_after_cut(successor.id, to) {
                    frontier.push(successor.id);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Whether `id` comes after `cut`: it overlaps a cut segment created before it (so it
    /// descends from that segment).
    fn is_after_cut(&self, id: i64, cut: &BTreeMap<i64, i64>) -> bool {
        let Some(segment) = self.segments.get(&id) else {
            return false;
        };
        cut.keys()
            .filter_map(|c| self.segments.get(c))
            .any(|c| c.overlaps(segment) && segment.creation_epoch() > c.creation_epoch())
    }
}

/// The key intervals covered by sorted ranges, with adjacent ones merged.
fn coverage(sorted: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for &(start, end) in sorted {
        match merged.last_mut() {
            Some(last) if start < last.1 => return vec![(f64::NAN, f64::NAN)],
            Some(last) if start == last.1 => last.1 = end,
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Range `i` of `count` equal parts of [start, end); the last ends exactly at `end`.
pub fn split_range(start: f64, end: f64, i: u32, count: u32) -> (f64, f64) {
    let width = (end - start) / f64::from(count);
    let from = start + width * f64::from(i);
    let to = if i + 1 == count {
        end
    } else {
        start + width * f64::from(i + 1)
    };
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pravaha_types::segment_id as id;

    fn stream(segments: i32) -> StreamRecord {
        let config = StreamConfig {
            scaling: ScalingPolicy::fixed(segments),
            retention: None,
            tags: vec![],
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: 0,
        };
        let mut record = StreamRecord::new("sc", "st", config, 1000);
        record.state = StreamState::Active;
        record.workflow = None;
        record
    }

    fn scale(record: &mut StreamRecord, sealed: &[i64], ranges: &[(f64, f64)], now: i64) {
        let Workflow::Scale {
            new_epoch,
            sealed,
            created,
            ..
        } = record.plan_scale(sealed, ranges, now).unwrap()
        else {
            panic!("not a scale")
        };
        record.complete_scale(new_epoch, &sealed, &created);
    }

    #[test]
    fn first_segments_and_table_partitions_divide_the_key_space_alike() {
        // Key-Value Table clients route with pravaha_types::key_value_table_partition, which
        // must agree with the ranges the controller gives the partitions.
        for count in [1, 2, 3, 7, 10, 64] {
            for i in 0..count {
                assert_eq!(
                    split_range(0.0, 1.0, i, count),
                    pravaha_types::key_space_part(i, count)
                );
            }
        }
    }

    #[test]
    fn a_new_stream_tiles_the_key_space() {
        let record = stream(3);
        let ranges = record.current_segments();
        assert_eq!(
            ranges.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(ranges[0].key_start, 0.0);
        assert_eq!(ranges[2].key_end, 1.0);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].key_end, pair[1].key_start);
        }
        assert_eq!(record.next_number, 3);
    }

    #[test]
    fn split_then_merge_keeps_successors_and_predecessors() {
        let mut record = stream(2);
        scale(&mut record, &[0], &[(0.0, 0.25), (0.25, 0.5)], 2000);
        assert_eq!(record.current_epoch().epoch, 1);
        let current: Vec<i64> = record.current_segments().iter().map(|r| r.id).collect();
        assert_eq!(current, vec![id(1, 2), id(1, 3), 1]);
        let successors = record.successors(0).unwrap();
        assert_eq!(
            successors
                .iter()
                .map(|(s, p)| (s.id, p.clone()))
                .collect::<Vec<_>>(),
            vec![(id(1, 2), vec![0]), (id(1, 3), vec![0])]
        );
        // An active segment has no successors yet.
        assert!(record.successors(1).unwrap().is_empty());
        assert!(record.successors(999).is_none());

        scale(&mut record, &[id(1, 2), id(1, 3)], &[(0.0, 0.5)], 3000);
        let merged = id(2, 4);
        assert_eq!(
            record
                .current_segments()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![merged, 1]
        );
        let successors = record.successors(id(1, 2)).unwrap();
        assert_eq!(successors.len(), 1);
        assert_eq!(successors[0].0.id, merged);
        assert_eq!(successors[0].1, vec![id(1, 2), id(1, 3)]);
        assert_eq!(record.epoch_segments(1).unwrap().len(), 3);
    }

    #[test]
    fn successors_are_known_while_a_scale_is_in_progress() {
        let mut record = stream(2);
        let workflow = record
            .plan_scale(&[1], &[(0.5, 0.75), (0.75, 1.0)], 5)
            .unwrap();
        record.workflow = Some(workflow);
        let successors = record.successors(1).unwrap();
        assert_eq!(
            successors
                .iter()
                .map(|(s, p)| (s.id, p.clone()))
                .collect::<Vec<_>>(),
            vec![(id(1, 2), vec![1]), (id(1, 3), vec![1])]
        );
        assert!(record.successors(0).unwrap().is_empty());
        // The current epoch is unchanged until the scale completes.
        assert_eq!(record.current_segments().len(), 2);
    }

    #[test]
    fn scales_that_do_not_fit_the_current_epoch_are_refused() {
        let mut record = stream(2);
        let refuse = |record: &StreamRecord, sealed: &[i64], ranges: &[(f64, f64)]| {
            record.plan_scale(sealed, ranges, 0).unwrap_err()
        };
        // Not covering exactly, overlapping, outside [0, 1), unknown segment, duplicates.
        refuse(&record, &[0], &[(0.0, 0.4)]);
        refuse(&record, &[0], &[(0.0, 0.3), (0.2, 0.5)]);
        refuse(&record, &[0], &[(0.0, 0.5), (0.5, 0.6)]);
        refuse(&record, &[0], &[(-0.1, 0.5)]);
        refuse(&record, &[7], &[(0.0, 0.5)]);
        refuse(&record, &[0, 0], &[(0.0, 0.5)]);
        refuse(&record, &[], &[]);
        // Merging non-adjacent is fine only when the union matches.
        let mut three = stream(3);
        refuse(&three, &[0, 2], &[(0.0, 1.0)]);
        scale(&mut three, &[0, 1], &[(0.0, 2.0 / 3.0)], 5);
        // After the scale, the old segments are no longer active.
        refuse(&three, &[0], &[(0.0, 1.0 / 3.0)]);
        // A pending workflow blocks another scale; so does a sealed stream.
        record.workflow = Some(Workflow::Seal);
        refuse(&record, &[0], &[(0.0, 0.5)]);
        record.workflow = None;
        record.state = StreamState::Sealed;
        refuse(&record, &[0], &[(0.0, 0.5)]);
        assert!(record.current_segments().is_empty());
    }

    #[test]
    fn stream_cuts_must_tile_the_key_space() {
        let mut record = stream(2);
        scale(&mut record, &[0], &[(0.0, 0.25), (0.25, 0.5)], 2000);
        let cut = |pairs: &[(i64, i64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        assert!(record.validate_cut(&cut(&[(0, 10), (1, 5)])).is_ok());
        assert!(record
            .validate_cut(&cut(&[(id(1, 2), 0), (id(1, 3), 0), (1, 7)]))
            .is_ok());
        // Mixed generations that still tile are valid (a reader part-way through a scale).
        assert!(record.validate_cut(&cut(&[(0, 3), (1, 7)])).is_ok());
        assert!(record.validate_cut(&cut(&[(0, 3)])).is_err());
        assert!(record
            .validate_cut(&cut(&[(0, 3), (id(1, 2), 0), (1, 0)]))
            .is_err());
        assert!(record.validate_cut(&cut(&[(0, -1), (1, 0)])).is_err());
        assert!(record.validate_cut(&cut(&[(42, 0), (1, 0)])).is_err());
        assert!(record.validate_cut(&BTreeMap::new()).is_err());
    }

    #[test]
    fn segments_before_and_between_cuts_follow_the_scale_history() {
        let mut record = stream(2);
        scale(&mut record, &[0], &[(0.0, 0.25), (0.25, 0.5)], 2000);
        scale(&mut record, &[id(1, 2), id(1, 3)], &[(0.0, 0.5)], 3000);
        let merged = id(2, 4);
        let cut = |pairs: &[(i64, i64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        let tail = cut(&[(merged, 0), (1, 0)]);
        assert_eq!(record.segments_before(&tail), vec![0, id(1, 2), id(1, 3)]);
        assert_eq!(
            record.segments_before(&cut(&[(0, 0), (1, 0)])),
            Vec::<i64>::new()
        );
        // From the head to the tail: everything.
        assert_eq!(
            record.segments_between(&BTreeMap::new(), &BTreeMap::new()),
            vec![0, 1, id(1, 2), id(1, 3), merged]
        );
        // Up to the middle generation: not the merged segment.
        let middle = cut(&[(id(1, 2), 5), (id(1, 3), 5), (1, 5)]);
        assert_eq!(
            record.segments_between(&BTreeMap::new(), &middle),
            vec![0, 1, id(1, 2), id(1, 3)]
        );
        // From the middle on.
        assert_eq!(
            record.segments_between(&middle, &BTreeMap::new()),
            vec![1, id(1, 2), id(1, 3), merged]
        );
    }

    #[test]
    fn segments_at_a_time_come_from_the_epoch_then() {
        let mut record = stream(1);
        scale(&mut record, &[0], &[(0.0, 0.5), (0.5, 1.0)], 2000);
        assert_eq!(record.segments_at(0), BTreeMap::from([(0, 0)]));
        assert_eq!(record.segments_at(1500), BTreeMap::from([(0, 0)]));
        assert_eq!(
            record.segments_at(2500),
            BTreeMap::from([(id(1, 1), 0), (id(1, 2), 0)])
        );
        // After truncating into epoch 1, earlier times answer with the truncation cut.
        record.truncation = BTreeMap::from([(id(1, 1), 10), (id(1, 2), 20)]);
        record.truncated_segments.insert(0);
        assert_eq!(record.segments_at(1500), record.truncation);
        assert_eq!(record.segments_at(0), record.truncation);
        assert_eq!(
            record.segments_at(2500),
            BTreeMap::from([(id(1, 1), 10), (id(1, 2), 20)])
        );
    }

    #[test]
    fn configurations_are_checked() {
        let mut config = stream(1).config;
        assert!(config.validate().is_ok());
        config.scaling.min_num_segments = 0;
        assert!(config.validate().is_err());
        config.scaling = ScalingPolicy {
            scale_type: ScaleType::ByRateInEventsPerSec,
            target_rate: 0,
            scale_factor: 2,
            min_num_segments: 1,
        };
        assert!(config.validate().is_err());
        config.scaling.target_rate = 100;
        assert!(config.validate().is_ok());
        config.retention = Some(RetentionPolicy {
            retention_type: RetentionType::Size,
            retention_param: 10,
            retention_max: 5,
        });
        assert!(config.validate().is_err());
        config.retention = None;
        config.tags = vec![String::new()];
        assert!(config.validate().is_err());
    }
}

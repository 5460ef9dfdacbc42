//! Retention: a periodic service that truncates streams by time, by size, and by consumption.
//!
//! As Pravega does, each pass records a stream cut at the stream's tail together with the time
//! and the stream's total size then (its "retention set", `retention/<scope>/<stream>` in the
//! metadata table). Truncation points are chosen among recorded cuts:
//! - by time: the newest cut recorded at least `min` ago; a cut older than `max` is always
//!   reached;
//! - by size: the newest cut after which at least `min` bytes remain; truncation goes at least
//!   as far as needed to keep at most `max` bytes;
//! - by consumption: when reader groups subscribed to the stream (retention type MANUAL or
//!   AUTOMATIC) published stream cuts, the truncation point is additionally bounded by the
//!   slowest subscriber: never past any subscriber's cut, unless `max` forces it (Pravega's
//!   consumption-based retention). Without subscribers, time/size rules apply alone.

use std::collections::BTreeMap;

use pravaha_types::qualified_segment_name;
use serde::{Deserialize, Serialize};

use crate::core::{now_ms, Controller};
use crate::error::ControllerError;
use crate::metadata::Versioned;
use crate::model::{RetentionPolicy, RetentionType, StreamRecord};

/// Recorded cuts kept per stream (the oldest are dropped).
const MAX_RECORDS: usize = 512;

/// A stream cut recorded by a retention pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedCut {
    pub time_ms: i64,
    pub cut: BTreeMap<i64, i64>,
}

/// The stream's data as the segment store reports it: each existing segment's start offset and
/// length.
pub struct StreamData {
    pub segments: BTreeMap<i64, (i64, i64)>,
}

impl StreamData {
    /// Bytes readable now.
    pub fn total(&self) -> i64 {
        self.segments
            .values()
            .map(|(start, length)| length - start)
            .sum()
    }

    /// Bytes that would remain after truncating at `cut`.
    pub fn retained_after(&self, record: &StreamRecord, cut: &BTreeMap<i64, i64>) -> i64 {
        let before = record.segments_before(cut);
        self.segments
            .iter()
            .filter(|(id, _)| !before.contains(id))
            .map(|(id, (start, length))| {
                let from = cut.get(id).copied().unwrap_or(*start).max(*start);
                (length - from).max(0)
            })
            .sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionSet {
    pub cuts: Vec<RecordedCut>,
}

fn retention_key(scope: &str, stream: &str) -> String {
    format!("retention/{scope}/{stream}")
}

/// Whether cut `a` is at or before cut `b` in the stream (every position of `a` is reached by
/// a reader no later than `b`).
pub fn at_or_before(record: &StreamRecord, a: &BTreeMap<i64, i64>, b: &BTreeMap<i64, i64>) -> bool {
    a.iter().all(|(segment, offset)| match b.get(segment) {
        Some(other) => offset <= other,
        None => record.segments_before(b).contains(segment),
    })
}

/// The cut to truncate at, among `recorded` (oldest first), for `policy` at `now`, bounded by
/// the subscribers' cuts; `None` to leave the stream as it is.
pub fn choose_cut<'a>(
    record: &StreamRecord,
    policy: Option<&RetentionPolicy>,
    recorded: &'a [RecordedCut],
    subscribers: &[BTreeMap<i64, i64>],
    now_ms: i64,
    data: &StreamData,
) -> Option<&'a RecordedCut> {
    // The newest cut the policy allows, and the oldest cut its maximum forces (if any).
    let (allowed, forced): (Option<&RecordedCut>, Option<&RecordedCut>) = match policy {
        None => (recorded.last(), None),
        Some(policy) => match policy.retention_type {
            RetentionType::Time => (
                recorded
                    .iter()
                    .rev()
                    .find(|c| now_ms - c.time_ms >= policy.retention_param),
                recorded
                    .iter()
                    .rev()
                    .find(|c| now_ms - c.time_ms >= policy.retention_max),
            ),
            RetentionType::Size => (
                recorded
                    .iter()
                    .rev()
                    .find(|c| data.retained_after(record, &c.cut) >= policy.retention_param),
                if data.total() > policy.retention_max {
                    recorded
                        .iter()
                        .find(|c| data.retained_after(record, &c.cut) <= policy.retention_max)
                } else {
                    None
                },
            ),
        },
    };
    if subscribers.is_empty() {
        // Without subscribers only a policy truncates.
        policy?;
        return match (allowed, forced) {
            (Some(a), Some(f)) if f.time_ms > a.time_ms => Some(f),
            (Some(a), _) => Some(a),
            (None, f) => f,
        };
    }
    // The newest allowed cut that no subscriber still needs.
    let consumed = recorded
        .iter()
        .rev()
        .filter(|c| allowed.is_some_and(|a| c.time_ms <= a.time_ms))
        .find(|c| subscribers.iter().all(|s| at_or_before(record, &c.cut, s)));
    match (consumed, forced) {
        (Some(c), Some(f)) if f.time_ms > c.time_ms => Some(f),
        (None, Some(f)) => Some(f),
        (c, _) => c,
    }
}

impl Controller {
    /// One retention pass over every stream.
    pub async fn run_retention(&self) -> Result<(), ControllerError> {
        let mut token = String::new();
        loop {
            let (scopes, next) = self.list_scopes(&token).await?;
            if scopes.is_empty() {
                return Ok(());
            }
            for scope in scopes {
                let mut stream_token = String::new();
                loop {
                    let (streams, next) = match self.list_streams(&scope, &stream_token, None).await
                    {
                        Ok(page) => page,
                        Err(ControllerError::ScopeNotFound(_)) => break,
                        Err(error) => return Err(error),
                    };
                    if streams.is_empty() {
                        break;
                    }
                    for record in streams {
                        if let Err(error) = self.retain(&record).await {
                            tracing::warn!(scope = record.scope, stream = record.name, %error, "retention failed for this stream; retrying next pass");
                        }
                    }
                    stream_token = next;
                }
            }
            token = next;
        }
    }

    /// Records the stream's tail and truncates it if its policy or subscribers allow.
    async fn retain(&self, record: &StreamRecord) -> Result<(), ControllerError> {
        let (scope, stream) = (record.scope.as_str(), record.name.as_str());
        let subscribers = self.subscriber_cuts(scope, stream).await?;
        if record.config.retention.is_none() && subscribers.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let (tail, data) = self.tail(record).await?;
        let key = retention_key(scope, stream);
        let set = loop {
            let current = self.inner.table.get::<RetentionSet>(&key).await?;
            let mut set = current
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default();
            if set.cuts.last().is_none_or(|last| last.cut != tail) {
                set.cuts.push(RecordedCut {
                    time_ms: now,
                    cut: tail.clone(),
                });
            }
            // Forget cuts at or before the stream's truncation, and the oldest beyond the cap.
            if !record.truncation.is_empty() {
                let truncation = record.truncation.clone();
                let keep_from = set
                    .cuts
                    .iter()
                    .rposition(|c| at_or_before(record, &c.cut, &truncation))
                    .map_or(0, |i| i + 1);
                set.cuts
                    .drain(..keep_from.min(set.cuts.len().saturating_sub(1)));
            }
            if set.cuts.len() > MAX_RECORDS {
                let excess = set.cuts.len() - MAX_RECORDS;
                set.cuts.drain(..excess);
            }
            let written = match current {
                Some(Versioned { version, .. }) => {
                    self.inner.table.replace(&key, &set, version).await?
                }
                None => self.inner.table.create(&key, &set).await?,
            };
            if written.is_some() {
                break set;
            }
        };
        let subscriber_cuts: Vec<BTreeMap<i64, i64>> =
            subscribers.into_iter().map(|(_, cut)| cut).collect();
        let Some(chosen) = choose_cut(
            record,
            record.config.retention.as_ref(),
            &set.cuts,
            &subscriber_cuts,
            now,
            &data,
        ) else {
            return Ok(());
        };
        if chosen.cut == record.truncation
            || (!record.truncation.is_empty()
                && at_or_before(record, &chosen.cut, &record.truncation))
        {
            return Ok(());
        }
        tracing::info!(scope, stream, cut = ?chosen.cut, "retention truncates the stream");
        self.truncate_stream(scope, stream, chosen.cut.clone())
            .await
    }

    /// The stream's tail cut, and each existing segment's start offset and length.
    async fn tail(
        &self,
        record: &StreamRecord,
    ) -> Result<(BTreeMap<i64, i64>, StreamData), ControllerError> {
        let mut cut = BTreeMap::new();
        let mut segments = BTreeMap::new();
        let current = &record.current_epoch().segments;
        for id in record.segments.keys() {
            if record.truncated_segments.contains(id) {
                continue;
            }
            let name = qualified_segment_name(&record.scope, &record.name, *id);
            let info = self
                .inner
                .client
                .segment_info(self.locate(&name), &name, "")
                .await
                .map_err(ControllerError::SegmentStore)?;
            segments.insert(*id, (info.start_offset, info.length));
            if current.contains(id) {
                cut.insert(*id, info.length);
            }
        }
        Ok((cut, StreamData { segments }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ScalingPolicy, StreamConfig, StreamState, Workflow};

    fn stream() -> StreamRecord {
        let config = StreamConfig {
            scaling: ScalingPolicy::fixed(1),
            retention: None,
            tags: vec![],
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: 0,
        };
        let mut record = StreamRecord::new("sc", "st", config, 0);
        record.state = StreamState::Active;
        record.workflow = None;
        record
    }

    /// Cuts of the single segment 0 at offsets 100, 200, ... recorded at times 1000, 2000, ...
    fn recorded(n: i64) -> Vec<RecordedCut> {
        (1..=n)
            .map(|i| RecordedCut {
                time_ms: i * 1000,
                cut: BTreeMap::from([(0, i * 100)]),
            })
            .collect()
    }

    fn data(length: i64) -> StreamData {
        StreamData {
            segments: BTreeMap::from([(0, (0, length))]),
        }
    }

    fn policy(retention_type: RetentionType, min: i64, max: i64) -> RetentionPolicy {
        RetentionPolicy {
            retention_type,
            retention_param: min,
            retention_max: max,
        }
    }

    #[test]
    fn time_retention_keeps_at_least_min_and_at_most_max() {
        let record = stream();
        let cuts = recorded(5);
        let keep = policy(RetentionType::Time, 2500, i64::MAX);
        // At 5000: cuts recorded at least 2.5 s ago are 1000 and 2000: truncate at 2000.
        let chosen = choose_cut(&record, Some(&keep), &cuts, &[], 5000, &data(500)).unwrap();
        assert_eq!(chosen.time_ms, 2000);
        // Nothing old enough yet.
        assert!(choose_cut(&record, Some(&keep), &cuts, &[], 3000, &data(500)).is_none());
        // No policy, no subscribers: never truncated.
        assert!(choose_cut(&record, None, &cuts, &[], 99_000, &data(500)).is_none());
    }

    #[test]
    fn size_retention_keeps_min_bytes_and_forces_max() {
        let record = stream();
        let cuts = recorded(5);
        // 500 bytes written; keep at least 250: the newest cut leaving >= 250 is at 200 (300 left).
        let keep = policy(RetentionType::Size, 250, i64::MAX);
        let chosen = choose_cut(&record, Some(&keep), &cuts, &[], 9000, &data(500)).unwrap();
        assert_eq!(chosen.cut[&0], 200);
        // Keep everything (min above the total): nothing to do.
        let all = policy(RetentionType::Size, 1000, i64::MAX);
        assert!(choose_cut(&record, Some(&all), &cuts, &[], 9000, &data(500)).is_none());
    }

    #[test]
    fn consumption_retention_waits_for_the_slowest_subscriber_within_bounds() {
        let record = stream();
        let cuts = recorded(5);
        let fast = BTreeMap::from([(0, 450)]);
        let slow = BTreeMap::from([(0, 250)]);
        // No policy: truncate up to what every subscriber has read.
        let chosen = choose_cut(
            &record,
            None,
            &cuts,
            &[fast.clone(), slow.clone()],
            9000,
            &data(500),
        )
        .unwrap();
        assert_eq!(chosen.cut[&0], 200);
        // A time minimum still keeps recent data even when consumed.
        let keep = policy(RetentionType::Time, 4500, i64::MAX);
        let chosen = choose_cut(
            &record,
            Some(&keep),
            &cuts,
            std::slice::from_ref(&fast),
            6000,
            &data(500),
        )
        .unwrap();
        assert_eq!(chosen.cut[&0], 100);
        // A time maximum truncates past a subscriber that is too slow.
        let bounded = policy(RetentionType::Time, 0, 2500);
        let stuck = BTreeMap::from([(0, 0)]);
        let chosen =
            choose_cut(&record, Some(&bounded), &cuts, &[stuck], 5000, &data(500)).unwrap();
        assert_eq!(chosen.cut[&0], 200);
    }

    #[test]
    fn cuts_compare_across_scaling() {
        let mut record = stream();
        let Workflow::Scale {
            new_epoch,
            sealed,
            created,
            ..
        } = record
            .plan_scale(&[0], &[(0.0, 0.5), (0.5, 1.0)], 10)
            .unwrap()
        else {
            unreachable!()
        };
        record.complete_scale(new_epoch, &sealed, &created);
        let old = BTreeMap::from([(0, 500)]);
        let new = BTreeMap::from([(created[0].id, 0), (created[1].id, 10)]);
        assert!(at_or_before(&record, &old, &new));
        assert!(!at_or_before(&record, &new, &old));
        assert!(at_or_before(&record, &new, &new));
    }
}

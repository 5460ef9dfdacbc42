//! Subscribers: reader groups whose reading holds back the truncation of a stream (retention
//! type MANUAL or AUTOMATIC). Each has a record beside the stream's,
//! `sub/<scope>/<stream>/<group scope>/<group>`, with the group's generation and the stream cut
//! it last published; a retention service may truncate the stream only up to the lowest of
//! them ([`Controller::subscriber_cuts`]).
//!
//! Records are written by the group's workflows ([`crate::readergroups`]). A record outlives
//! neither its group nor its stream: it names the group's id and the stream's creation time,
//! and one whose group or stream is gone or was re-created is ignored (and removed) when read.

use pravaha_types::segment_epoch;
use serde::{Deserialize, Serialize};

use crate::core::Controller;
use crate::error::ControllerError;
use crate::metadata::Versioned;
use crate::model::{StreamRecord, RECORD_VERSION};
use crate::readergroups::{
    format_uuid, group_key, parse_uuid, split_scoped_name, GroupState, ReaderGroupRecord, StreamCut,
};

/// How many times a read-modify-write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 64;

/// A subscriber of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberRecord {
    pub v: u32,
    /// `scope/group`.
    pub subscriber: String,
    /// The group's id when it subscribed.
    pub group_id: String,
    /// The group's generation; cut updates must carry it.
    pub generation: i64,
    /// The stream's `created_ms` when the group subscribed (tells a re-created stream apart).
    pub stream_created_ms: i64,
    /// The last cut the group published (empty: none yet).
    pub cut: StreamCut,
    pub updated_ms: i64,
}

/// The outcome of `update_subscriber_cut`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriberUpdate {
    Updated,
    StreamNotFound,
    /// Not a subscriber of the stream, or the group's id is another.
    SubscriberNotFound,
    /// Not a cut of the stream, or behind the subscriber's last cut.
    CutNotValid(String),
    GenerationMismatch,
}

fn subscriber_key(scope: &str, stream: &str, subscriber: &str) -> String {
    format!("sub/{scope}/{stream}/{subscriber}")
}

impl Controller {
    /// The names (`scope/group`) of the stream's subscribers.
    pub async fn list_subscribers(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<String>, ControllerError> {
        let subscribers = self.live_subscribers(scope, stream).await?;
        Ok(subscribers.into_iter().map(|s| s.subscriber).collect())
    }

    /// Each subscriber of the stream with the last cut it published (empty if none yet): a
    /// retention service truncates no further than these.
    pub async fn subscriber_cuts(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<(String, StreamCut)>, ControllerError> {
        let subscribers = self.live_subscribers(scope, stream).await?;
        Ok(subscribers
            .into_iter()
            .map(|s| (s.subscriber, s.cut))
            .collect())
    }

    /// Records the cut up to which subscriber `subscriber` (`scope/group`, with the group's
    /// id and generation) has read the stream. A subscriber's cut only moves forward.
    pub async fn update_subscriber_cut(
        &self,
        scope: &str,
        stream: &str,
        subscriber: &str,
        group_id: &str,
        generation: i64,
        cut: &StreamCut,
    ) -> Result<SubscriberUpdate, ControllerError> {
        let record = match self.stream(scope, stream).await {
            Ok(record) => record,
            Err(ControllerError::StreamNotFound { .. }) => {
                return Ok(SubscriberUpdate::StreamNotFound)
            }
            Err(error) => return Err(error),
        };
        let key = subscriber_key(scope, stream, subscriber);
        for _ in 0..MAX_ATTEMPTS {
            let Some(Versioned { value, version }) =
                self.records().get::<SubscriberRecord>(&key).await?
            else {
                return Ok(SubscriberUpdate::SubscriberNotFound);
            };
            let group_matches =
                parse_uuid(group_id).map(format_uuid).as_deref() == Some(value.group_id.as_str());
            if value.stream_created_ms != record.created_ms
                || !group_matches
                || !self.group_is_live(&value).await?
            {
                return Ok(SubscriberUpdate::SubscriberNotFound);
            }
            if value.generation != generation {
                return Ok(SubscriberUpdate::GenerationMismatch);
            }
            if let Err(why) = record.validate_cut(cut) {
                return Ok(SubscriberUpdate::CutNotValid(why));
            }
            if !value.cut.is_empty() && !is_at_or_after(&record, cut, &value.cut) {
                return Ok(SubscriberUpdate::CutNotValid(
                    "the cut is behind the subscriber's last cut".into(),
                ));
            }
            let next = SubscriberRecord {
                cut: cut.clone(),
                updated_ms: self.wall_clock_ms(),
                ..value
            };
            if self
                .records()
                .replace(&key, &next, version)
                .await?
                .is_some()
            {
                return Ok(SubscriberUpdate::Updated);
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Subscribes `group` to the stream at the group's generation: a new subscriber starts
    /// without a cut; an existing one keeps its cut and takes the newer generation. A stream
    /// that is gone is skipped (there is nothing to hold back).
    pub(crate) async fn add_subscriber(
        &self,
        group: &ReaderGroupRecord,
        scope: &str,
        stream: &str,
    ) -> Result<(), ControllerError> {
        let record = match self.stream(scope, stream).await {
            Ok(record) => record,
            Err(ControllerError::StreamNotFound { .. }) => {
                tracing::info!(
                    scope,
                    stream,
                    group = group.name,
                    "not subscribing to a stream that does not exist"
                );
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let subscriber = group.scoped_name();
        let key = subscriber_key(scope, stream, &subscriber);
        let fresh = SubscriberRecord {
            v: RECORD_VERSION,
            subscriber,
            group_id: group.id.clone(),
            generation: group.config.generation,
            stream_created_ms: record.created_ms,
            cut: StreamCut::new(),
            updated_ms: self.wall_clock_ms(),
        };
        for _ in 0..MAX_ATTEMPTS {
            let written = match self.records().get::<SubscriberRecord>(&key).await? {
                None => self.records().create(&key, &fresh).await?,
                Some(Versioned { value, version }) => {
                    let same = value.group_id == fresh.group_id
                        && value.stream_created_ms == fresh.stream_created_ms;
                    let next = if !same {
                        fresh.clone()
                    } else if value.generation < fresh.generation {
                        SubscriberRecord {
                            generation: fresh.generation,
                            updated_ms: fresh.updated_ms,
                            ..value
                        }
                    } else {
                        return Ok(());
                    };
                    self.records().replace(&key, &next, version).await?
                }
            };
            if written.is_some() {
                return Ok(());
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Removes subscriber `subscriber` (`scope/group`) from `stream` (`scope/stream`).
    pub(crate) async fn remove_subscriber(
        &self,
        subscriber: &str,
        stream: &str,
    ) -> Result<(), ControllerError> {
        let Some((scope, name)) = split_scoped_name(stream) else {
            return Ok(());
        };
        let key = subscriber_key(scope, name, subscriber);
        for _ in 0..MAX_ATTEMPTS {
            let Some(found) = self.records().get::<SubscriberRecord>(&key).await? else {
                return Ok(());
            };
            if self.records().remove(&key, found.version).await? {
                return Ok(());
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// The stream's subscribers whose group and stream are those they subscribed with; stale
    /// records are removed on the way.
    async fn live_subscribers(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<SubscriberRecord>, ControllerError> {
        let record = self.stream(scope, stream).await?;
        let prefix = format!("sub/{scope}/{stream}/");
        let mut token = String::new();
        let mut live = Vec::new();
        loop {
            let (page, next) = self
                .records()
                .list::<SubscriberRecord>(&prefix, &token, 1000)
                .await?;
            if page.is_empty() {
                return Ok(live);
            }
            for (key, subscriber) in page {
                if subscriber.stream_created_ms == record.created_ms
                    && self.group_is_live(&subscriber).await?
                {
                    live.push(subscriber);
                } else if !self.group_may_own(&subscriber).await? {
                    self.forget_stale_subscriber(&key).await;
                }
            }
            token = next;
        }
    }

    /// Whether the subscriber's group exists with its id and is not being deleted.
    async fn group_is_live(&self, subscriber: &SubscriberRecord) -> Result<bool, ControllerError> {
        let group = self.subscriber_group(subscriber).await?;
        Ok(group.is_some_and(|g| g.state != GroupState::Deleting))
    }

    /// Whether the subscriber's group (same id) still exists, in any state: while it does, its
    /// own workflows manage the record.
    async fn group_may_own(&self, subscriber: &SubscriberRecord) -> Result<bool, ControllerError> {
        Ok(self.subscriber_group(subscriber).await?.is_some())
    }

    async fn subscriber_group(
        &self,
        subscriber: &SubscriberRecord,
    ) -> Result<Option<ReaderGroupRecord>, ControllerError> {
        let Some((scope, name)) = split_scoped_name(&subscriber.subscriber) else {
            return Ok(None);
        };
        let group = self
            .records()
            .get::<ReaderGroupRecord>(&group_key(scope, name))
            .await?;
        Ok(group
            .map(|g| g.value)
            .filter(|g| g.id == subscriber.group_id))
    }

    /// Best effort: a stale record that stays is ignored again next time.
    async fn forget_stale_subscriber(&self, key: &str) {
        let removal = async {
            if let Some(found) = self.records().get::<SubscriberRecord>(key).await? {
                self.records().remove(key, found.version).await?;
            }
            Ok::<_, ControllerError>(())
        };
        match removal.await {
            Ok(()) => tracing::info!(key, "removed a subscriber whose group or stream is gone"),
            Err(error) => tracing::debug!(key, %error, "could not remove a stale subscriber"),
        }
    }
}

/// Whether cut `new` is at or after cut `previous` (both valid cuts of `record`): no segment of
/// `new` is behind the same segment in `previous` or precedes (overlaps and was created
/// before) a segment of `previous`. Segments of `previous` deleted by truncation since are
/// skipped: every remaining segment is after them.
pub fn is_at_or_after(record: &StreamRecord, new: &StreamCut, previous: &StreamCut) -> bool {
    previous.iter().all(|(old_id, old_offset)| {
        let Some(old) = record.segments.get(old_id) else {
            return true;
        };
        new.iter().all(|(new_id, new_offset)| {
            if new_id == old_id {
                return new_offset >= old_offset;
            }
            let Some(segment) = record.segments.get(new_id) else {
                return false;
            };
            let overlaps = segment.key_start < old.key_end && old.key_start < segment.key_end;
            !overlaps || segment_epoch(*new_id) > segment_epoch(*old_id)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ScalingPolicy, StreamConfig};
    use pravaha_types::segment_id;

    /// Epoch 0: segments 0 [0, .5) and 1 [.5, 1); epoch 1 splits 0 into 2 and 3.
    fn scaled() -> StreamRecord {
        let config = StreamConfig {
            scaling: ScalingPolicy::fixed(2),
            retention: None,
            tags: vec![],
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: 0,
        };
        let mut record = StreamRecord::new("sc", "st", config, 1);
        record.state = crate::model::StreamState::Active;
        record.workflow = None;
        let plan = record
            .plan_scale(&[0], &[(0.0, 0.25), (0.25, 0.5)], 2)
            .unwrap();
        let crate::model::Workflow::Scale {
            new_epoch,
            sealed,
            created,
            ..
        } = plan
        else {
            panic!("not a scale");
        };
        record.complete_scale(new_epoch, &sealed, &created);
        record
    }

    #[test]
    fn cuts_move_forward_only() {
        let record = scaled();
        let (two, three) = (segment_id(1, 2), segment_id(1, 3));
        let head = StreamCut::from([(0, 10), (1, 10)]);
        let later = StreamCut::from([(two, 0), (three, 5), (1, 10)]);
        let further = StreamCut::from([(two, 7), (three, 5), (1, 11)]);
        assert!(is_at_or_after(&record, &head, &head));
        assert!(is_at_or_after(&record, &later, &head));
        assert!(is_at_or_after(&record, &further, &later));
        assert!(!is_at_or_after(&record, &head, &later));
        assert!(!is_at_or_after(&record, &later, &further));
        let lower_offset = StreamCut::from([(0, 9), (1, 10)]);
        assert!(!is_at_or_after(&record, &lower_offset, &head));
        // A previous segment deleted by truncation since is behind everything left.
        let mut truncated = record.clone();
        truncated.segments.remove(&0);
        assert!(is_at_or_after(&truncated, &later, &head));
    }
}

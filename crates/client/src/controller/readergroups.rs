//! Reader groups and subscribers as the controller records them: `createReaderGroup`,
//! `getReaderGroupConfig`, `updateReaderGroup`, `deleteReaderGroup`, `listSubscribers` and
//! `updateSubscriberStreamCut`.
//!
//! The controller's record is what retention reads (a group with [`RetentionMode::Automatic`] or
//! [`RetentionMode::Manual`] subscribes to its streams, and data before its cut is kept); the
//! readers' own shared state lives in the group's table segment ([`crate::group`]).

use std::collections::BTreeMap;
use std::time::Duration;

use pravaha_controller_api::v1 as api;

use super::types::{ScopedStream, SegmentId, StreamCut};
use super::{ControllerClient, ControllerError, Target};

/// Whether, and how, a reader group's position holds back its streams' retention.
///
/// ```
/// use pravaha_client::controller::{ReaderGroupRecord, RetentionMode};
///
/// let mut group = ReaderGroupRecord::new("shop", "billing");
/// assert_eq!(group.retention, RetentionMode::None); // the default
/// // Data stays until this group's readers have checkpointed past it.
/// group.retention = RetentionMode::Automatic;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetentionMode {
    /// The group does not count for retention.
    #[default]
    None,
    /// The application reports the group's cuts ([`ControllerClient::update_subscriber_stream_cut`]).
    Manual,
    /// The readers report the group's cuts at checkpoints.
    Automatic,
}

impl RetentionMode {
    fn to_api(self) -> i32 {
        use api::reader_group_configuration::RetentionType as R;
        match self {
            Self::None => R::None,
            Self::Manual => R::Manual,
            Self::Automatic => R::Automatic,
        }
        .into()
    }

    fn from_api(value: i32) -> Self {
        use api::reader_group_configuration::RetentionType as R;
        match R::try_from(value) {
            Ok(R::Manual) => Self::Manual,
            Ok(R::Automatic) => Self::Automatic,
            _ => Self::None,
        }
    }
}

/// A reader group as the controller records it.
///
/// ```
/// use pravaha_client::controller::types::{ScopedStream, StreamCut};
/// use pravaha_client::controller::{ReaderGroupRecord, RetentionMode};
///
/// let mut group = ReaderGroupRecord::new("shop", "billing");
/// group.retention = RetentionMode::Automatic;
/// // An empty cut starts at the stream's head.
/// group.starting_cuts.push(StreamCut::new(ScopedStream::new("shop", "orders")));
/// assert_eq!(group.generation, 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderGroupRecord {
    pub scope: String,
    pub name: String,
    /// How often readers refresh the group's shared state.
    pub refresh_time: Duration,
    /// How often a checkpoint is started automatically; zero: never.
    pub checkpoint_interval: Duration,
    /// Checkpoints that may be outstanding at once.
    pub max_outstanding_checkpoints: i32,
    pub retention: RetentionMode,
    /// Increases with every update; the controller assigns it.
    pub generation: i64,
    /// The group's id (a UUID) the controller assigns at creation; empty before.
    pub id: String,
    /// Where reading starts, per stream (an empty cut: the stream's head).
    pub starting_cuts: Vec<StreamCut>,
    /// Where reading ends, per stream (none: unbounded).
    pub ending_cuts: Vec<StreamCut>,
}

impl ReaderGroupRecord {
    /// A group with Pravega's defaults (3 s refresh, checkpoints every 30 s, 3 outstanding, no
    /// retention) and no streams yet.
    pub fn new(scope: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            name: name.into(),
            refresh_time: Duration::from_secs(3),
            checkpoint_interval: Duration::from_secs(30),
            max_outstanding_checkpoints: 3,
            retention: RetentionMode::None,
            generation: 0,
            id: String::new(),
            starting_cuts: Vec::new(),
            ending_cuts: Vec::new(),
        }
    }

    fn to_api(&self) -> api::ReaderGroupConfiguration {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        api::ReaderGroupConfiguration {
            scope: self.scope.clone(),
            reader_group_name: self.name.clone(),
            group_refresh_time_millis: millis(self.refresh_time),
            automatic_checkpoint_interval_millis: millis(self.checkpoint_interval),
            max_outstanding_checkpoint_request: self.max_outstanding_checkpoints,
            retention_type: self.retention.to_api(),
            generation: self.generation,
            reader_group_id: self.id.clone(),
            starting_stream_cuts: self.starting_cuts.iter().map(StreamCut::to_api).collect(),
            ending_stream_cuts: self.ending_cuts.iter().map(StreamCut::to_api).collect(),
            rollover_size_bytes: 0,
        }
    }

    fn from_api(config: api::ReaderGroupConfiguration) -> Self {
        let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        let cuts = |cuts: Vec<api::StreamCut>| cuts.into_iter().filter_map(cut_from_api).collect();
        Self {
            scope: config.scope,
            name: config.reader_group_name,
            refresh_time: millis(config.group_refresh_time_millis),
            checkpoint_interval: millis(config.automatic_checkpoint_interval_millis),
            max_outstanding_checkpoints: config.max_outstanding_checkpoint_request,
            retention: RetentionMode::from_api(config.retention_type),
            generation: config.generation,
            id: config.reader_group_id,
            starting_cuts: cuts(config.starting_stream_cuts),
            ending_cuts: cuts(config.ending_stream_cuts),
        }
    }
}

fn cut_from_api(cut: api::StreamCut) -> Option<StreamCut> {
    let info = cut.stream_info?;
    Some(StreamCut {
        stream: ScopedStream::new(info.scope, info.stream),
        positions: cut
            .cut
            .into_iter()
            .map(|(id, offset)| (SegmentId(id), offset))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn group_not_found(scope: &str, name: &str) -> ControllerError {
    ControllerError::NotFound {
        message: format!("reader group {scope}/{name}"),
    }
}

impl ControllerClient {
    /// Records a reader group; answers the record as stored, with its id and generation. A
    /// group that exists already is answered as it is (creation is idempotent).
    pub async fn create_reader_group(
        &self,
        group: &ReaderGroupRecord,
    ) -> Result<ReaderGroupRecord, ControllerError> {
        use api::create_reader_group_response::Status as S;
        let reply = self
            .call(
                "createReaderGroup",
                Target::Scope(&group.scope),
                group.to_api(),
                |mut api, r| async move { api.create_reader_group(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => reply
                .config
                .map(ReaderGroupRecord::from_api)
                .ok_or_else(|| ControllerError::internal("createReaderGroup answered no record")),
            Ok(S::ScopeNotFound) => Err(ControllerError::scope_not_found(&group.scope)),
            Ok(S::InvalidRgName) => Err(ControllerError::invalid_argument(format!(
                "invalid reader group name {:?}",
                group.name
            ))),
            _ => Err(ControllerError::failure("createReaderGroup", reply.status)),
        }
    }

    /// The controller's record of a reader group.
    pub async fn get_reader_group(
        &self,
        scope: &str,
        name: &str,
    ) -> Result<ReaderGroupRecord, ControllerError> {
        use api::reader_group_config_response::Status as S;
        let message = api::ReaderGroupInfo {
            scope: scope.to_owned(),
            reader_group: name.to_owned(),
            reader_group_id: String::new(),
            generation: 0,
        };
        let reply = self
            .call(
                "getReaderGroupConfig",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.get_reader_group_config(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => reply
                .config
                .map(ReaderGroupRecord::from_api)
                .ok_or_else(|| {
                    ControllerError::internal("getReaderGroupConfig answered no record")
                }),
            Ok(S::RgNotFound) => Err(group_not_found(scope, name)),
            _ => Err(ControllerError::failure(
                "getReaderGroupConfig",
                reply.status,
            )),
        }
    }

    /// Replaces a group's configuration (`group.id` must be the recorded one); answers the new
    /// generation.
    pub async fn update_reader_group(
        &self,
        group: &ReaderGroupRecord,
    ) -> Result<i64, ControllerError> {
        use api::update_reader_group_response::Status as S;
        let reply = self
            .call(
                "updateReaderGroup",
                Target::Scope(&group.scope),
                group.to_api(),
                |mut api, r| async move { api.update_reader_group(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(reply.generation),
            Ok(S::RgNotFound) => Err(group_not_found(&group.scope, &group.name)),
            Ok(S::InvalidConfig) => Err(ControllerError::invalid_argument(format!(
                "reader group {}/{}: configuration refused",
                group.scope, group.name
            ))),
            _ => Err(ControllerError::failure("updateReaderGroup", reply.status)),
        }
    }

    /// Deletes the group's record (and its subscriptions): `true` if deleted, `false` if it did
    /// not exist. `id` must be the recorded id ([`ReaderGroupRecord::id`], from
    /// [`Self::get_reader_group`]): for an empty or stale id the controller answers as for
    /// a missing group (`false`), so a group re-created under the same name is never deleted
    /// by mistake.
    pub async fn delete_reader_group(
        &self,
        scope: &str,
        name: &str,
        id: &str,
    ) -> Result<bool, ControllerError> {
        use api::delete_reader_group_status::Status as S;
        let message = api::ReaderGroupInfo {
            scope: scope.to_owned(),
            reader_group: name.to_owned(),
            reader_group_id: id.to_owned(),
            generation: 0,
        };
        let reply = self
            .call(
                "deleteReaderGroup",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.delete_reader_group(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::RgNotFound) => Ok(false),
            _ => Err(ControllerError::failure("deleteReaderGroup", reply.status)),
        }
    }

    /// The reader groups subscribed to a stream (groups whose retention mode is not `None`),
    /// as `scope/group` names.
    pub async fn list_subscribers(
        &self,
        stream: &ScopedStream,
    ) -> Result<Vec<String>, ControllerError> {
        use api::subscribers_response::Status as S;
        let reply = self
            .call(
                "listSubscribers",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.list_subscribers(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(reply.subscribers),
            Ok(S::StreamNotFound) => Err(ControllerError::stream_not_found(stream)),
            _ => Err(ControllerError::failure("listSubscribers", reply.status)),
        }
    }

    /// Reports how far a subscriber has read `cut.stream`: retention keeps the data after the
    /// slowest subscriber's cut. A cut behind the recorded one, or of another generation of the
    /// group, is refused.
    pub async fn update_subscriber_stream_cut(
        &self,
        subscriber: &str,
        group_id: &str,
        generation: i64,
        cut: &StreamCut,
    ) -> Result<(), ControllerError> {
        use api::update_subscriber_status::Status as S;
        let message = api::SubscriberStreamCut {
            subscriber: subscriber.to_owned(),
            generation,
            reader_group_id: group_id.to_owned(),
            stream_cut: Some(cut.to_api()),
        };
        let reply = self
            .call(
                "updateSubscriberStreamCut",
                Target::Stream(&cut.stream),
                message,
                |mut api, r| async move { api.update_subscriber_stream_cut(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(()),
            Ok(S::StreamNotFound) => Err(ControllerError::stream_not_found(&cut.stream)),
            Ok(S::SubscriberNotFound) => Err(ControllerError::NotFound {
                message: format!("subscriber {subscriber} of {}", cut.stream),
            }),
            Ok(S::GenerationMismatch) => Err(ControllerError::PreconditionFailed {
                message: format!("subscriber {subscriber}: generation {generation} is not current"),
            }),
            Ok(S::StreamCutNotValid) => Err(ControllerError::invalid_argument(format!(
                "subscriber {subscriber}: the stream cut is not valid or moves backwards"
            ))),
            _ => Err(ControllerError::failure(
                "updateSubscriberStreamCut",
                reply.status,
            )),
        }
    }
}

//! Reader groups as Pravega's controller keeps them: the group's configuration with its id and
//! generation in a record (`rg/<scope>/<group>`), the `_RG<group>` stream Java readers keep the
//! group's state in, and, for groups whose retention type is not NONE, a subscriber record on
//! every stream they read ([`crate::subscribers`]).
//!
//! Readers never tell the controller who is reading: the Java client keeps the group's state in
//! the `_RG` stream, the Rust client in a table segment of its own. So the controller knows the
//! configuration, not the online readers.
//!
//! Creating, updating and deleting a group are workflows like a stream's: the record's state
//! says which one is pending, its steps are idempotent, and the final state is written with a
//! version check. A request that meets a pending workflow drives it first, and
//! [`Controller::resume_group_and_table_workflows`] finishes them all after a restart.

mod config;

use pravaha_types::validate_stream_name;
use serde::{Deserialize, Serialize};

use crate::core::Controller;
use crate::error::ControllerError;
use crate::metadata::Versioned;
use crate::model::{ScalingPolicy, StreamConfig, RECORD_VERSION};
pub use config::{
    format_uuid, parse_uuid, split_scoped_name, GroupRetention, ReaderGroupConfig, StreamCut,
};
use config::{new_uuid, streams_to_unsubscribe};

/// Java's name for a group's state stream: this prefix and the group's name.
pub const READER_GROUP_STREAM_PREFIX: &str = "_RG";

/// The rollover size Java gives the segments of a group's state stream.
const GROUP_STREAM_ROLLOVER_SIZE_BYTES: i64 = 4 * 1024 * 1024;

/// How many times a read-modify-write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 64;

/// Which workflow of the group is pending, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    /// Subscribing and creating the `_RG` stream; invisible to the API until done.
    Creating,
    Active,
    /// The record holds the new configuration; the subscribers are being brought in line
    /// (the group unsubscribes from `unsubscribe` first).
    Updating {
        unsubscribe: Vec<String>,
    },
    /// Unsubscribing and deleting the `_RG` stream; then the record goes.
    Deleting,
}

/// A reader group's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderGroupRecord {
    pub v: u32,
    pub scope: String,
    pub name: String,
    /// The group's UUID, lower-case with hyphens.
    pub id: String,
    pub created_ms: i64,
    pub config: ReaderGroupConfig,
    pub state: GroupState,
}

impl ReaderGroupRecord {
    /// `scope/group`: the group's name as a subscriber.
    pub fn scoped_name(&self) -> String {
        format!("{}/{}", self.scope, self.name)
    }

    /// `_RG<group>`, the group's state stream in its scope.
    pub fn state_stream(&self) -> String {
        format!("{READER_GROUP_STREAM_PREFIX}{}", self.name)
    }

    /// Whether the API sees the group (not being created or deleted).
    pub fn is_visible(&self) -> bool {
        matches!(self.state, GroupState::Active | GroupState::Updating { .. })
    }
}

/// The outcome of `update_reader_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupUpdate {
    /// Done; the group's new generation.
    Updated {
        generation: i64,
    },
    NotFound,
    /// A stale generation, another group's id or a configuration that does not validate.
    InvalidConfig(String),
}

pub(crate) fn group_key(scope: &str, group: &str) -> String {
    format!("rg/{scope}/{group}")
}

impl Controller {
    /// Creates a reader group, or returns the one of that name unchanged (Pravega answers a
    /// repeated create with the stored configuration; clients compare it with theirs).
    ///
    /// `id` is the group's UUID; empty or nil means "pick one" (and generation 0). Subscriber
    /// groups must read existing streams (`StreamNotFound` otherwise).
    pub async fn create_reader_group(
        &self,
        scope: &str,
        name: &str,
        id: &str,
        mut config: ReaderGroupConfig,
    ) -> Result<ReaderGroupRecord, ControllerError> {
        validate_stream_name(name, false)
            .map_err(|e| ControllerError::InvalidName(e.to_string()))?;
        config
            .validate()
            .map_err(ControllerError::InvalidArgument)?;
        let id = match parse_uuid(id) {
            Some(0) => {
                config.generation = 0;
                format_uuid(new_uuid())
            }
            Some(id) => format_uuid(id),
            None => {
                return Err(ControllerError::InvalidArgument(format!(
                    "readerGroupId {id:?} is not a UUID"
                )))
            }
        };
        if !self.scope_exists(scope).await? {
            return Err(ControllerError::ScopeNotFound(scope.to_owned()));
        }
        self.require_subscribed_streams(&config).await?;
        let key = group_key(scope, name);
        for _ in 0..MAX_ATTEMPTS {
            if let Some(existing) = self.records().get::<ReaderGroupRecord>(&key).await? {
                if existing.value.state != GroupState::Active {
                    self.drive_group(&key).await?;
                    continue;
                }
                return Ok(existing.value);
            }
            let record = ReaderGroupRecord {
                v: RECORD_VERSION,
                scope: scope.to_owned(),
                name: name.to_owned(),
                id: id.clone(),
                created_ms: self.wall_clock_ms(),
                config: config.clone(),
                state: GroupState::Creating,
            };
            let Some(version) = self.records().create(&key, &record).await? else {
                continue;
            };
            // The scope may have been deleted since it was checked (see `delete_scope`).
            if !self.scope_exists(scope).await? {
                self.records().remove(&key, version).await?;
                return Err(ControllerError::ScopeNotFound(scope.to_owned()));
            }
            tracing::info!(scope, group = name, id, "creating a reader group");
            self.drive_group(&key).await?;
        }
        Err(ControllerError::Contention(key))
    }

    /// The group, unless it does not exist or is being created or deleted.
    pub async fn reader_group(
        &self,
        scope: &str,
        name: &str,
    ) -> Result<Option<ReaderGroupRecord>, ControllerError> {
        let found = self
            .records()
            .get::<ReaderGroupRecord>(&group_key(scope, name))
            .await?;
        Ok(found.map(|r| r.value).filter(ReaderGroupRecord::is_visible))
    }

    /// One page of a scope's reader groups, and the token for the next.
    pub async fn list_reader_groups(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<(Vec<ReaderGroupRecord>, String), ControllerError> {
        if !self.scope_exists(scope).await? {
            return Err(ControllerError::ScopeNotFound(scope.to_owned()));
        }
        self.visible_page(
            &format!("rg/{scope}/"),
            token,
            ReaderGroupRecord::is_visible,
        )
        .await
    }

    /// Replaces the group's configuration. `config.generation` must be the stored generation
    /// and `id` the group's id; the stored generation then goes up by one.
    pub async fn update_reader_group(
        &self,
        scope: &str,
        name: &str,
        id: &str,
        config: ReaderGroupConfig,
    ) -> Result<GroupUpdate, ControllerError> {
        let key = group_key(scope, name);
        for _ in 0..MAX_ATTEMPTS {
            let Some(Versioned { value, version }) =
                self.records().get::<ReaderGroupRecord>(&key).await?
            else {
                return Ok(GroupUpdate::NotFound);
            };
            if value.state != GroupState::Active {
                self.drive_group(&key).await?;
                continue;
            }
            if value.config.generation != config.generation {
                return Ok(GroupUpdate::InvalidConfig(format!(
                    "generation {} is not the group's current generation {}",
                    config.generation, value.config.generation
                )));
            }
            if parse_uuid(id).map(format_uuid).as_deref() != Some(value.id.as_str()) {
                return Ok(GroupUpdate::InvalidConfig(format!(
                    "readerGroupId {id:?} is not the group's id"
                )));
            }
            if let Err(why) = config.validate() {
                return Ok(GroupUpdate::InvalidConfig(why));
            }
            self.require_subscribed_streams(&config).await?;
            let generation = value.config.generation + 1;
            let unsubscribe = streams_to_unsubscribe(&value.config, &config);
            let mut next = value;
            next.config = ReaderGroupConfig {
                generation,
                ..config.clone()
            };
            next.state = GroupState::Updating { unsubscribe };
            if self
                .records()
                .replace(&key, &next, version)
                .await?
                .is_some()
            {
                self.drive_group(&key).await?;
                return Ok(GroupUpdate::Updated { generation });
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Deletes the group, its subscriptions and its `_RG` stream; false if there is no such
    /// group, or (with `id`) its id is another.
    pub async fn delete_reader_group(
        &self,
        scope: &str,
        name: &str,
        id: Option<&str>,
    ) -> Result<bool, ControllerError> {
        let key = group_key(scope, name);
        for _ in 0..MAX_ATTEMPTS {
            let Some(Versioned { mut value, version }) =
                self.records().get::<ReaderGroupRecord>(&key).await?
            else {
                return Ok(false);
            };
            if let Some(id) = id {
                if parse_uuid(id).map(format_uuid).as_deref() != Some(value.id.as_str()) {
                    return Ok(false);
                }
            }
            match value.state {
                GroupState::Deleting => {
                    self.drive_group(&key).await?;
                    return Ok(true);
                }
                // A pending subscription change is finished first, so that the deletion
                // unsubscribes from exactly the configuration's streams.
                GroupState::Creating | GroupState::Updating { .. } => {
                    self.drive_group(&key).await?;
                    continue;
                }
                GroupState::Active => {}
            }
            value.state = GroupState::Deleting;
            if self
                .records()
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                tracing::info!(scope, group = name, "deleting a reader group");
                self.drive_group(&key).await?;
                return Ok(true);
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Deletes every reader group and Key-Value Table of the scope, for a recursive deletion of
    /// the scope (before its streams).
    pub async fn delete_groups_and_tables_in(&self, scope: &str) -> Result<(), ControllerError> {
        let groups = format!("rg/{scope}/");
        for key in self
            .keys_where::<ReaderGroupRecord>(&groups, |_| true)
            .await?
        {
            if let Some(name) = key.strip_prefix(&groups) {
                self.delete_reader_group(scope, name, None).await?;
            }
        }
        let tables = format!("kvt/{scope}/");
        let keys = self
            .keys_where::<crate::kvtables::KeyValueTableRecord>(&tables, |_| true)
            .await?;
        for key in keys {
            if let Some(name) = key.strip_prefix(&tables) {
                self.delete_key_value_table(scope, name).await?;
            }
        }
        Ok(())
    }

    /// Whether the scope has reader groups in any state.
    pub(crate) async fn has_reader_groups(&self, scope: &str) -> Result<bool, ControllerError> {
        let (page, _) = self
            .records()
            .list::<ReaderGroupRecord>(&format!("rg/{scope}/"), "", 1)
            .await?;
        Ok(!page.is_empty())
    }

    /// Every reader group whose workflow is pending, as record keys.
    pub(crate) async fn pending_reader_groups(&self) -> Result<Vec<String>, ControllerError> {
        self.keys_where::<ReaderGroupRecord>("rg/", |r| r.state != GroupState::Active)
            .await
    }

    /// Runs the group's pending workflow, if any, to its end.
    pub(crate) async fn drive_group(&self, key: &str) -> Result<(), ControllerError> {
        let lock = self.workflow_lock(key).await;
        let _running = lock.lock().await;
        let mut steps = 0usize;
        for _ in 0..MAX_ATTEMPTS {
            let Some(Versioned { value, version }) =
                self.records().get::<ReaderGroupRecord>(key).await?
            else {
                return Ok(());
            };
            let mut next = value.clone();
            next.state = GroupState::Active;
            match &value.state {
                GroupState::Active => return Ok(()),
                GroupState::Creating => {
                    self.subscribe(&value, &mut steps).await?;
                    self.create_group_stream(&value, &mut steps).await?;
                }
                GroupState::Updating { unsubscribe } => {
                    for stream in unsubscribe {
                        self.workflow_step(&mut steps).await;
                        self.remove_subscriber(&value.scoped_name(), stream).await?;
                    }
                    self.subscribe(&value, &mut steps).await?;
                }
                GroupState::Deleting => {
                    for stream in value.config.starting_cuts.keys() {
                        self.workflow_step(&mut steps).await;
                        self.remove_subscriber(&value.scoped_name(), stream).await?;
                    }
                    self.delete_group_stream(&value, &mut steps).await?;
                    self.records().remove(key, version).await?;
                    continue;
                }
            }
            // On a conflict the loop reads the record again and redoes the (idempotent) steps.
            self.records().replace(key, &next, version).await?;
        }
        Err(ControllerError::Contention(key.to_owned()))
    }

    /// Subscriber groups subscribe to every stream they read, at the group's generation.
    async fn subscribe(
        &self,
        group: &ReaderGroupRecord,
        steps: &mut usize,
    ) -> Result<(), ControllerError> {
        if !group.config.retention.is_subscriber() {
            return Ok(());
        }
        for (scope, stream) in group.config.streams() {
            self.workflow_step(steps).await;
            self.add_subscriber(group, scope, stream).await?;
        }
        Ok(())
    }

    /// Java readers keep the group's state in `_RG<group>`: one fixed segment.
    async fn create_group_stream(
        &self,
        group: &ReaderGroupRecord,
        steps: &mut usize,
    ) -> Result<(), ControllerError> {
        self.workflow_step(steps).await;
        let config = StreamConfig {
            scaling: ScalingPolicy::fixed(1),
            retention: None,
            tags: Vec::new(),
            timestamp_aggregation_timeout_ms: 0,
            rollover_size_bytes: GROUP_STREAM_ROLLOVER_SIZE_BYTES,
        };
        self.create_stream(&group.scope, &group.state_stream(), config)
            .await
            .map(drop)
    }

    /// Seals and deletes `_RG<group>` (gone already counts as done).
    async fn delete_group_stream(
        &self,
        group: &ReaderGroupRecord,
        steps: &mut usize,
    ) -> Result<(), ControllerError> {
        self.workflow_step(steps).await;
        let (scope, stream) = (group.scope.as_str(), group.state_stream());
        // A creation cut short by a crash is finished, so that the stream can be deleted.
        self.finish_stream_workflow(scope, &stream).await?;
        match self.seal_stream(scope, &stream).await {
            Ok(()) | Err(ControllerError::StreamNotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        self.delete_stream(scope, &stream).await.map(drop)
    }

    /// Subscriber groups may only read streams that exist.
    async fn require_subscribed_streams(
        &self,
        config: &ReaderGroupConfig,
    ) -> Result<(), ControllerError> {
        if config.retention.is_subscriber() {
            for (scope, stream) in config.streams() {
                self.stream(scope, stream).await?;
            }
        }
        Ok(())
    }
}

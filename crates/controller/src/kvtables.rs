//! Pravega's (Java) Key-Value Tables: a table of `partition_count` fixed-key-length table
//! segments `<scope>/<kvt>_kvtable/<n>.#epoch.0` whose key ranges tile [0, 1) like a stream's
//! first epoch (Java clients pick the partition by hashing the primary key). Its record is
//! `kvt/<scope>/<kvt>`.
//!
//! Creation and deletion are workflows like a stream's: the record is written first (state
//! `Creating` or `Deleting`), then the segments are created or deleted (each step idempotent),
//! then the record is marked `Active` or removed. A request that meets a pending workflow
//! drives it first, and [`Controller::resume_group_and_table_workflows`] finishes them all
//! after a restart.
//!
//! The Rust client's `Table`s and reader-group state use the same naming
//! (`<scope>/<name>_kvtable/0.#epoch.0`) without a controller record; a Key-Value Table is not
//! created over such a segment (`TABLE_EXISTS`).

use pravaha_segment_client::ClientError;
use pravaha_types::{qualified_segment_name, segment_id, validate_stream_name};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::core::Controller;
use crate::error::ControllerError;
use crate::metadata::Versioned;
use crate::model::{split_range, SegmentRange, RECORD_VERSION};

/// The suffix of a Key-Value Table's pseudo-stream, which names its segments.
pub const KVT_SUFFIX: &str = "_kvtable";

/// Most partitions a table may have (a bound of ours; Pravega has none).
pub const MAX_PARTITIONS: i32 = 1024;

/// Longest key (primary and secondary together) a table segment takes, as in Pravega.
pub const MAX_KEY_LENGTH: i32 = 8192;

/// How many times a read-modify-write is retried when another writer got there first.
const MAX_ATTEMPTS: usize = 64;

/// A Key-Value Table's configuration (Pravega's `KeyValueTableConfiguration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValueTableConfig {
    pub partition_count: i32,
    pub primary_key_length: i32,
    pub secondary_key_length: i32,
    /// 0: the segment store's default.
    pub rollover_size_bytes: i64,
}

impl KeyValueTableConfig {
    /// Checks the configuration as Pravega does (and bounds the partition count).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_PARTITIONS).contains(&self.partition_count) {
            return Err(format!(
                "partitionCount must be 1 to {MAX_PARTITIONS}, not {}",
                self.partition_count
            ));
        }
        if self.primary_key_length <= 0 || self.secondary_key_length < 0 {
            return Err(format!(
                "primaryKeyLength must be positive and secondaryKeyLength not negative ({}, {})",
                self.primary_key_length, self.secondary_key_length
            ));
        }
        let key_length = i64::from(self.primary_key_length) + i64::from(self.secondary_key_length);
        if key_length > i64::from(MAX_KEY_LENGTH) {
            return Err(format!(
                "keys of {key_length} bytes are longer than the {MAX_KEY_LENGTH} allowed"
            ));
        }
        if self.rollover_size_bytes < 0 {
            return Err("rolloverSizeBytes must not be negative".into());
        }
        Ok(())
    }

    /// The length of every key of the table's segments.
    pub fn key_length(&self) -> i32 {
        self.primary_key_length + self.secondary_key_length
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableState {
    /// Its segments may not all exist yet; invisible to the API.
    Creating,
    Active,
    /// Its segments are being deleted; invisible to the API.
    Deleting,
}

/// A Key-Value Table's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValueTableRecord {
    pub v: u32,
    pub scope: String,
    pub name: String,
    pub created_ms: i64,
    pub config: KeyValueTableConfig,
    pub state: TableState,
}

impl KeyValueTableRecord {
    /// The partitions: ids 0..n of epoch 0, ranges tiling [0, 1) with the last ending at 1.0.
    pub fn segments(&self) -> Vec<SegmentRange> {
        let count = u32::try_from(self.config.partition_count.max(1)).unwrap_or(1);
        (0..count)
            .map(|number| {
                let (key_start, key_end) = split_range(0.0, 1.0, number, count);
                SegmentRange {
                    id: segment_id(0, number),
                    key_start,
                    key_end,
                }
            })
            .collect()
    }

    /// `<kvt>_kvtable`, the pseudo-stream its segments are named after.
    pub fn stream_name(&self) -> String {
        format!("{}{KVT_SUFFIX}", self.name)
    }

    /// The segment store's name of partition `id`.
    pub fn segment_name(&self, id: i64) -> String {
        qualified_segment_name(&self.scope, &self.stream_name(), id)
    }
}

fn table_key(scope: &str, table: &str) -> String {
    format!("kvt/{scope}/{table}")
}

impl Controller {
    /// Creates a Key-Value Table and its segments; false if it exists.
    pub async fn create_key_value_table(
        &self,
        scope: &str,
        name: &str,
        config: KeyValueTableConfig,
    ) -> Result<bool, ControllerError> {
        validate_stream_name(name, false)
            .map_err(|e| ControllerError::InvalidName(e.to_string()))?;
        config
            .validate()
            .map_err(ControllerError::InvalidArgument)?;
        if !self.scope_exists(scope).await? {
            return Err(ControllerError::ScopeNotFound(scope.to_owned()));
        }
        let key = table_key(scope, name);
        for _ in 0..MAX_ATTEMPTS {
            if let Some(existing) = self.records().get::<KeyValueTableRecord>(&key).await? {
                // One being created (here or by a controller that stopped) is finished first;
                // one being deleted is gone after that.
                let state = existing.value.state;
                self.drive_table(&key).await?;
                if state == TableState::Deleting {
                    continue;
                }
                return Ok(false);
            }
            let record = KeyValueTableRecord {
                v: RECORD_VERSION,
                scope: scope.to_owned(),
                name: name.to_owned(),
                created_ms: self.wall_clock_ms(),
                config,
                state: TableState::Creating,
            };
            if self.segments_taken(&record).await? {
                return Ok(false);
            }
            let Some(version) = self.records().create(&key, &record).await? else {
                continue;
            };
            // The scope may have been deleted since it was checked (see `delete_scope`).
            if !self.scope_exists(scope).await? {
                self.records().remove(&key, version).await?;
                return Err(ControllerError::ScopeNotFound(scope.to_owned()));
            }
            tracing::info!(
                scope,
                table = name,
                partitions = config.partition_count,
                "creating a key-value table"
            );
            self.drive_table(&key).await?;
            return Ok(true);
        }
        Err(ControllerError::Contention(key))
    }

    /// The table, unless it does not exist or is being created or deleted.
    pub async fn key_value_table(
        &self,
        scope: &str,
        name: &str,
    ) -> Result<Option<KeyValueTableRecord>, ControllerError> {
        let found = self
            .records()
            .get::<KeyValueTableRecord>(&table_key(scope, name))
            .await?;
        Ok(found
            .map(|r| r.value)
            .filter(|r| r.state == TableState::Active))
    }

    /// One page of a scope's Key-Value Tables, and the token for the next.
    pub async fn list_key_value_tables(
        &self,
        scope: &str,
        token: &str,
    ) -> Result<(Vec<KeyValueTableRecord>, String), ControllerError> {
        if !self.scope_exists(scope).await? {
            return Err(ControllerError::ScopeNotFound(scope.to_owned()));
        }
        self.visible_page(
            &format!("kvt/{scope}/"),
            token,
            |r: &KeyValueTableRecord| r.state == TableState::Active,
        )
        .await
    }

    /// Deletes the table and its segments; false if it does not exist.
    pub async fn delete_key_value_table(
        &self,
        scope: &str,
        name: &str,
    ) -> Result<bool, ControllerError> {
        let key = table_key(scope, name);
        for _ in 0..MAX_ATTEMPTS {
            let Some(Versioned { mut value, version }) =
                self.records().get::<KeyValueTableRecord>(&key).await?
            else {
                return Ok(false);
            };
            if value.state != TableState::Deleting {
                value.state = TableState::Deleting;
                if self
                    .records()
                    .replace(&key, &value, version)
                    .await?
                    .is_none()
                {
                    continue;
                }
                tracing::info!(scope, table = name, "deleting a key-value table");
            }
            self.drive_table(&key).await?;
            return Ok(true);
        }
        Err(ControllerError::Contention(key))
    }

    /// Finishes every reader-group and Key-Value Table workflow a previous run left pending
    /// (in the background; failures are retried on the next start or request).
    pub fn resume_group_and_table_workflows(&self) {
        let controller = self.clone();
        tokio::spawn(async move {
            if let Err(error) = controller.drive_pending_groups_and_tables().await {
                tracing::warn!(%error, "resuming reader-group and key-value table workflows failed; they resume on the next start or request");
            }
        });
    }

    /// Drives every pending reader-group and Key-Value Table workflow, one after the other.
    pub async fn drive_pending_groups_and_tables(&self) -> Result<(), ControllerError> {
        for key in self.pending_reader_groups().await? {
            tracing::info!(group = key, "resuming an unfinished reader-group workflow");
            self.drive_group(&key).await?;
        }
        let tables = self
            .keys_where::<KeyValueTableRecord>("kvt/", |r| r.state != TableState::Active)
            .await?;
        for key in tables {
            tracing::info!(
                table = key,
                "resuming an unfinished key-value table workflow"
            );
            self.drive_table(&key).await?;
        }
        Ok(())
    }

    /// Whether the scope has Key-Value Tables in any state.
    pub(crate) async fn has_key_value_tables(&self, scope: &str) -> Result<bool, ControllerError> {
        let (page, _) = self
            .records()
            .list::<KeyValueTableRecord>(&format!("kvt/{scope}/"), "", 1)
            .await?;
        Ok(!page.is_empty())
    }

    /// Runs the table's pending workflow, if any, to its end.
    async fn drive_table(&self, key: &str) -> Result<(), ControllerError> {
        let lock = self.workflow_lock(key).await;
        let _running = lock.lock().await;
        let mut steps = 0usize;
        for _ in 0..MAX_ATTEMPTS {
            let Some(Versioned { mut value, version }) =
                self.records().get::<KeyValueTableRecord>(key).await?
            else {
                return Ok(());
            };
            match value.state {
                TableState::Active => return Ok(()),
                TableState::Creating => {
                    for segment in value.segments() {
                        self.workflow_step(&mut steps).await;
                        self.create_partition(&value, segment.id).await?;
                    }
                    value.state = TableState::Active;
                    // On a conflict the loop reads the record again and redoes the steps.
                    self.records().replace(key, &value, version).await?;
                }
                TableState::Deleting => {
                    for segment in value.segments() {
                        self.workflow_step(&mut steps).await;
                        self.delete_partition(&value, segment.id).await?;
                    }
                    self.records().remove(key, version).await?;
                }
            }
        }
        Err(ControllerError::Contention(key.to_owned()))
    }

    async fn create_partition(
        &self,
        table: &KeyValueTableRecord,
        id: i64,
    ) -> Result<(), ControllerError> {
        let segment = table.segment_name(id);
        self.segment_store_client()
            .create_fixed_key_table_segment(
                self.segment_store_of(&segment),
                &segment,
                table.config.key_length(),
                table.config.rollover_size_bytes,
                "",
            )
            .await
            .map(drop)
            .map_err(ControllerError::SegmentStore)
    }

    async fn delete_partition(
        &self,
        table: &KeyValueTableRecord,
        id: i64,
    ) -> Result<(), ControllerError> {
        let segment = table.segment_name(id);
        let at = self.segment_store_of(&segment);
        match self
            .segment_store_client()
            .delete_table_segment(at, &segment, false, "")
            .await
        {
            Ok(()) | Err(ClientError::NoSuchSegment(_)) => Ok(()),
            Err(error) => Err(ControllerError::SegmentStore(error)),
        }
    }

    /// Whether a segment the new table would create exists already (a Rust client's `Table` or
    /// reader-group state of the same name): the name is taken.
    async fn segments_taken(&self, table: &KeyValueTableRecord) -> Result<bool, ControllerError> {
        for segment in table.segments() {
            let name = table.segment_name(segment.id);
            let at = self.segment_store_of(&name);
            match self
                .segment_store_client()
                .segment_info(at, &name, "")
                .await
            {
                Ok(_) => {
                    tracing::info!(segment = name, "a key-value table's segment exists already");
                    return Ok(true);
                }
                Err(ClientError::NoSuchSegment(_)) => {}
                Err(error) => return Err(ControllerError::SegmentStore(error)),
            }
        }
        Ok(false)
    }

    /// One page (the configured page size) of the records under `prefix` that `visible`
    /// accepts, after `token`; the returned token continues after the last record looked at.
    pub(crate) async fn visible_page<T: DeserializeOwned>(
        &self,
        prefix: &str,
        token: &str,
        visible: impl Fn(&T) -> bool,
    ) -> Result<(Vec<T>, String), ControllerError> {
        let limit = self.config().page_size;
        let mut token = token.to_owned();
        let mut items = Vec::new();
        loop {
            let (page, _) = self.records().list::<T>(prefix, &token, limit).await?;
            let exhausted = page.is_empty();
            for (key, record) in page {
                if items.len() == limit {
                    break;
                }
                token = key;
                if visible(&record) {
                    items.push(record);
                }
            }
            if exhausted || items.len() >= limit {
                return Ok((items, token));
            }
        }
    }

    /// The keys of every record under `prefix` that `pending` selects.
    pub(crate) async fn keys_where<T: DeserializeOwned>(
        &self,
        prefix: &str,
        pending: impl Fn(&T) -> bool,
    ) -> Result<Vec<String>, ControllerError> {
        let mut token = String::new();
        let mut keys = Vec::new();
        loop {
            let (page, next) = self.records().list::<T>(prefix, &token, 1000).await?;
            if page.is_empty() {
                return Ok(keys);
            }
            keys.extend(
                page.into_iter()
                    .filter(|(_, record)| pending(record))
                    .map(|(key, _)| key),
            );
            token = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(partitions: i32, primary: i32, secondary: i32) -> KeyValueTableConfig {
        KeyValueTableConfig {
            partition_count: partitions,
            primary_key_length: primary,
            secondary_key_length: secondary,
            rollover_size_bytes: 0,
        }
    }

    #[test]
    fn configurations_are_validated_as_pravega_does() {
        assert_eq!(config(1, 1, 0).validate(), Ok(()));
        assert_eq!(config(MAX_PARTITIONS, 4096, 4096).validate(), Ok(()));
        for bad in [
            config(0, 4, 4),
            config(MAX_PARTITIONS + 1, 4, 4),
            config(2, 0, 4),
            config(2, 4, -1),
            config(2, 4096, 4097),
            config(2, i32::MAX, i32::MAX),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let mut negative_rollover = config(1, 1, 0);
        negative_rollover.rollover_size_bytes = -1;
        assert!(negative_rollover.validate().is_err());
    }

    #[test]
    fn partitions_tile_the_key_space_and_are_named_as_in_pravega() {
        let record = KeyValueTableRecord {
            v: RECORD_VERSION,
            scope: "sc".into(),
            name: "t".into(),
            created_ms: 0,
            config: config(3, 4, 2),
            state: TableState::Active,
        };
        let segments = record.segments();
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[0].key_start, 0.0);
        assert_eq!(segments[2].key_end, 1.0);
        for pair in segments.windows(2) {
            assert_eq!(pair[0].key_end, pair[1].key_start);
        }
        let ids: Vec<i64> = segments.iter().map(|s| s.id).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert_eq!(record.segment_name(2), "sc/t_kvtable/2.#epoch.0");
        assert_eq!(record.config.key_length(), 6);
    }
}

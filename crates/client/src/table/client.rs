//! [`KeyValueTable`]: reads, writes, conditional updates and removals of one Key-Value Table,
//! each sent to the partition (table segment) its primary key hashes to.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use pravaha_wire::{self as wire, Reply, Request};
use tokio::sync::Mutex;

use super::types::{
    KeyValueTableConfiguration, KeyValueTableInfo, TableEntry, TableError, TableKey,
    TableModification, Version,
};
use crate::controller::types::ScopedStream;
use crate::controller::{ControllerClient, ControllerError};
use crate::locator::ControllerLocator;
use crate::segment::{next_request_id, Locator, ReaderConfig, ReaderError, SegmentReader};

/// A client of one Key-Value Table (Pravega's Java `KeyValueTable`); cheap to clone (clones
/// share connections).
///
/// Every key is a primary key plus a secondary key of the lengths the table was created with.
/// The primary key picks the partition (hashed as Pravega's clients hash it), so all keys of
/// one primary key (a *key family*) live in one table segment, and [`update`](Self::update)
/// changes several of them atomically. Each entry's [`Version`] is the offset of its last
/// update in its segment; conditional calls fail with [`TableError::BadKeyVersion`] (or
/// [`TableError::NoSuchKey`]) and change nothing when the version differs.
///
/// Requests to one partition travel one at a time on one connection; connection failures,
/// `WrongHost` and expired tokens are retried. A retried unconditional write may be applied
/// twice (harmless: same value, new version); a retried conditional one may then report a
/// version mismatch although it was applied, as with Pravega's clients.
///
/// ```no_run
/// use bytes::Bytes;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::ControllerClient;
/// use pravaha_client::table::{KeyValueTable, KeyValueTableConfiguration, KeyValueTableInfo, TableKey};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// controller.create_scope("examples").await?;
/// let info = KeyValueTableInfo::new("examples", "accounts");
/// controller
///     .create_key_value_table(&info, &KeyValueTableConfiguration::new(4, 8, 3))
///     .await?;
/// let table = KeyValueTable::open(&controller, info).await?;
///
/// let key = TableKey::new(&b"acct0001"[..], &b"bal"[..]);
/// let version = table.put_if_absent(&key, Bytes::from_static(b"100")).await?;
/// let version = table.replace(&key, Bytes::from_static(b"90"), version).await?;
/// let entry = table.get(&key).await?.expect("present");
/// assert_eq!((entry.value, entry.version), (Bytes::from_static(b"90"), version));
/// table.remove_if(&key, version).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KeyValueTable {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    info: KeyValueTableInfo,
    config: KeyValueTableConfiguration,
    /// In partition order (segment ids 0..n of epoch 0).
    partitions: Vec<Partition>,
}

#[derive(Debug)]
struct Partition {
    segment: String,
    connection: Mutex<SegmentReader>,
}

impl KeyValueTable {
    /// Opens a table created with
    /// [`create_key_value_table`](ControllerClient::create_key_value_table): its configuration
    /// and partitions come from the controller. Connections are made on first use.
    pub async fn open(
        controller: &ControllerClient,
        info: KeyValueTableInfo,
    ) -> Result<Self, TableError> {
        Self::open_with(controller, info, ReaderConfig::default()).await
    }

    /// As [`open`](Self::open), with the time-outs and retries of `config`.
    pub async fn open_with(
        controller: &ControllerClient,
        info: KeyValueTableInfo,
        config: ReaderConfig,
    ) -> Result<Self, TableError> {
        let missing = |error: ControllerError| match error {
            ControllerError::NotFound { .. } | ControllerError::StreamNotFound { .. } => {
                TableError::TableDoesNotExist {
                    table: info.to_string(),
                }
            }
            other => TableError::Controller(other),
        };
        let table_config = controller
            .get_key_value_table_configuration(&info)
            .await
            .map_err(missing)?;
        let segments = controller
            .get_current_segments_key_value_table(&info)
            .await
            .map_err(missing)?;
        if segments.segments.len() != table_config.partition_count as usize {
            return Err(TableError::Controller(ControllerError::Internal {
                message: format!(
                    "key-value table {info} has {} partitions, but the controller listed {} segments",
                    table_config.partition_count,
                    segments.segments.len()
                ),
            }));
        }
        let locator: Arc<dyn Locator> = Arc::new(
            ControllerLocator::for_key_value_table(controller.clone(), info.clone()).with_token(
                &ScopedStream::new(info.scope.clone(), info.stream_name()),
                segments.delegation_token.clone(),
            ),
        );
        let partitions = segments
            .segments
            .iter()
            .map(|segment| {
                let name = segment.segment.qualified_name();
                Partition {
                    connection: Mutex::new(SegmentReader::new(
                        locator.clone(),
                        name.clone(),
                        config.clone(),
                    )),
                    segment: name,
                }
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                info,
                config: table_config,
                partitions,
            }),
        })
    }

    /// The table's scope and name.
    pub fn info(&self) -> &KeyValueTableInfo {
        &self.inner.info
    }

    /// The table's partition count and key lengths, as the controller answered them.
    pub fn configuration(&self) -> &KeyValueTableConfiguration {
        &self.inner.config
    }

    /// The entry of `key`, or `None` if it does not exist.
    pub async fn get(&self, key: &TableKey) -> Result<Option<TableEntry>, TableError> {
        let mut found = self.get_all(std::slice::from_ref(key)).await?;
        Ok(found.pop().flatten())
    }

    /// The entries of `keys`, in the same order (`None` for absent keys); one request per
    /// partition involved.
    pub async fn get_all(&self, keys: &[TableKey]) -> Result<Vec<Option<TableEntry>>, TableError> {
        let mut results = vec![None; keys.len()];
        let mut by_partition: Vec<Vec<usize>> = vec![Vec::new(); self.inner.partitions.len()];
        for (index, key) in keys.iter().enumerate() {
            self.check_key(key)?;
            by_partition[self.partition_of(key)].push(index);
        }
        for (partition, indexes) in by_partition.into_iter().enumerate() {
            if indexes.is_empty() {
                continue;
            }
            let wire_keys: Vec<wire::TableKey> = indexes
                .iter()
                .map(|&i| wire_key(&keys[i], wire::NO_VERSION))
                .collect();
            let reply = self
                .exchange(
                    partition,
                    "ReadTable",
                    |token| {
                        Request::ReadTable(wire::ReadTable {
                            request_id: next_request_id(),
                            segment: self.inner.partitions[partition].segment.clone(),
                            delegation_token: token,
                            keys: wire_keys.clone(),
                        })
                    },
                    |reply| matches!(reply, Reply::TableRead(_)),
                )
                .await?;
            let Reply::TableRead(read) = reply else {
                unreachable!("only TableRead is accepted")
            };
            if read.entries.entries.len() != indexes.len() {
                return Err(self.protocol(format!(
                    "ReadTable of {} keys answered {} entries",
                    indexes.len(),
                    read.entries.entries.len()
                )));
            }
            for (index, (key, value)) in indexes.into_iter().zip(read.entries.entries) {
                if key.key_version >= 0 {
                    results[index] = Some(TableEntry {
                        key: keys[index].clone(),
                        value: value.data,
                        version: Version(key.key_version),
                    });
                }
            }
        }
        Ok(results)
    }

    /// Sets `key` to `value` whatever its state; returns the new version.
    pub async fn put(&self, key: &TableKey, value: Bytes) -> Result<Version, TableError> {
        self.single(TableModification::Put {
            key: key.clone(),
            value,
        })
        .await
    }

    /// Sets `key` to `value` only if the key does not exist; otherwise
    /// [`TableError::BadKeyVersion`].
    pub async fn put_if_absent(&self, key: &TableKey, value: Bytes) -> Result<Version, TableError> {
        self.single(TableModification::Insert {
            key: key.clone(),
            value,
        })
        .await
    }

    /// Sets `key` to `value` only if its version is `version`; otherwise
    /// [`TableError::BadKeyVersion`] (or [`TableError::NoSuchKey`] if it does not exist).
    pub async fn replace(
        &self,
        key: &TableKey,
        value: Bytes,
        version: Version,
    ) -> Result<Version, TableError> {
        self.single(TableModification::Replace {
            key: key.clone(),
            value,
            version,
        })
        .await
    }

    /// Removes `key` (nothing happens if it does not exist).
    pub async fn remove(&self, key: &TableKey) -> Result<(), TableError> {
        self.update(vec![TableModification::Remove {
            key: key.clone(),
            version: None,
        }])
        .await
        .map(drop)
    }

    /// Removes `key` only if its version is `version`; otherwise [`TableError::BadKeyVersion`]
    /// (or [`TableError::NoSuchKey`]).
    pub async fn remove_if(&self, key: &TableKey, version: Version) -> Result<(), TableError> {
        self.update(vec![TableModification::Remove {
            key: key.clone(),
            version: Some(version),
        }])
        .await
        .map(drop)
    }

    /// Applies `changes` atomically: all of them or, if any condition fails, none (Pravega's
    /// `update`). As in Pravega, every key must have the same primary key (one key family),
    /// no key may appear twice, and removals cannot be mixed with puts. Returns the new
    /// versions in order (empty for removals).
    pub async fn update(
        &self,
        changes: Vec<TableModification>,
    ) -> Result<Vec<Version>, TableError> {
        let partition = self.check_batch(&changes)?;
        let segment = self.inner.partitions[partition].segment.clone();
        if changes[0].is_removal() {
            let keys: Vec<wire::TableKey> = changes
                .iter()
                .map(|change| wire_key(change.key(), change.wire_version()))
                .collect();
            let build = |token| {
                Request::RemoveTableKeys(wire::RemoveTableKeys {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token: token,
                    keys: keys.clone(),
                    table_segment_offset: -1,
                })
            };
            let reply = self
                .exchange(partition, "RemoveTableKeys", build, is_update_reply)
                .await?;
            self.update_outcome(reply, 0)
        } else {
            let entries: Vec<(wire::TableKey, wire::TableValue)> = changes
                .into_iter()
                .map(|change| {
                    let version = change.wire_version();
                    match change {
                        TableModification::Put { key, value }
                        | TableModification::Insert { key, value }
                        | TableModification::Replace { key, value, .. } => {
                            (wire_key(&key, version), wire::TableValue { data: value })
                        }
                        TableModification::Remove { .. } => unreachable!("checked: no removals"),
                    }
                })
                .collect();
            let count = entries.len();
            let build = |token| {
                Request::UpdateTableEntries(wire::UpdateTableEntries {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token: token,
                    table_entries: wire::TableEntries {
                        entries: entries.clone(),
                    },
                    table_segment_offset: -1,
                })
            };
            let reply = self
                .exchange(partition, "UpdateTableEntries", build, is_update_reply)
                .await?;
            self.update_outcome(reply, count)
        }
    }

    // ---- helpers --------------------------------------------------------------------------

    async fn single(&self, change: TableModification) -> Result<Version, TableError> {
        let versions = self.update(vec![change]).await?;
        versions
            .into_iter()
            .next()
            .ok_or_else(|| self.protocol("an update answered no version".into()))
    }

    /// The partition of a valid batch.
    fn check_batch(&self, changes: &[TableModification]) -> Result<usize, TableError> {
        let Some(first) = changes.first() else {
            return Err(self.invalid("an update needs at least one change".into()));
        };
        let mut seen = HashSet::new();
        for change in changes {
            self.check_key(change.key())?;
            if change.key().primary != first.key().primary {
                return Err(self.invalid(
                    "every key of an atomic update must have the same primary key".into(),
                ));
            }
            if change.is_removal() != first.is_removal() {
                return Err(self.invalid("removals cannot be mixed with puts".into()));
            }
            if !seen.insert(change.key()) {
                return Err(self.invalid("a key appears twice in one update".into()));
            }
        }
        Ok(self.partition_of(first.key()))
    }

    fn update_outcome(&self, reply: Reply, expected: usize) -> Result<Vec<Version>, TableError> {
        let table = self.inner.info.to_string();
        match reply {
            Reply::TableEntriesUpdated(updated) if updated.updated_versions.len() == expected => {
                Ok(updated.updated_versions.into_iter().map(Version).collect())
            }
            Reply::TableEntriesUpdated(updated) => Err(self.protocol(format!(
                "an update of {expected} entries answered {} versions",
                updated.updated_versions.len()
            ))),
            Reply::TableKeysRemoved(_) => Ok(Vec::new()),
            Reply::TableKeyBadVersion(_) => Err(TableError::BadKeyVersion { table }),
            Reply::TableKeyDoesNotExist(_) => Err(TableError::NoSuchKey { table }),
            other => Err(self.protocol(format!("unexpected reply {}", other.name()))),
        }
    }

    pub(super) async fn exchange(
        &self,
        partition: usize,
        name: &'static str,
        build: impl Fn(String) -> Request,
        expected: impl Fn(&Reply) -> bool,
    ) -> Result<Reply, TableError> {
        let mut connection = self.inner.partitions[partition].connection.lock().await;
        connection
            .exchange(name, build, expected)
            .await
            .map_err(|error| self.segment_error(error))
    }

    pub(super) fn partition_count(&self) -> usize {
        self.inner.partitions.len()
    }

    pub(super) fn partition_segment(&self, partition: usize) -> &str {
        &self.inner.partitions[partition].segment
    }

    pub(super) fn key_from_wire(&self, key: Bytes) -> TableKey {
        TableKey::from_bytes(key, self.inner.config.primary_key_length as usize)
    }

    fn partition_of(&self, key: &TableKey) -> usize {
        let count = u32::try_from(self.inner.partitions.len()).unwrap_or(u32::MAX);
        pravaha_types::key_value_table_partition(&key.primary, count) as usize
    }

    fn check_key(&self, key: &TableKey) -> Result<(), TableError> {
        let config = &self.inner.config;
        if key.primary.len() != config.primary_key_length as usize
            || key.secondary.len() != config.secondary_key_length as usize
        {
            return Err(TableError::InvalidKey {
                table: self.inner.info.to_string(),
                message: format!(
                    "keys are {} + {} bytes, not {} + {}",
                    config.primary_key_length,
                    config.secondary_key_length,
                    key.primary.len(),
                    key.secondary.len()
                ),
            });
        }
        Ok(())
    }

    fn segment_error(&self, error: ReaderError) -> TableError {
        let table = self.inner.info.to_string();
        match error {
            ReaderError::NoSuchSegment(_) => TableError::TableDoesNotExist { table },
            source => TableError::Segment { table, source },
        }
    }

    fn invalid(&self, message: String) -> TableError {
        TableError::InvalidArgument {
            table: self.inner.info.to_string(),
            message,
        }
    }

    pub(super) fn protocol(&self, message: String) -> TableError {
        TableError::Segment {
            table: self.inner.info.to_string(),
            source: ReaderError::Protocol {
                segment: self.inner.info.stream_name(),
                message,
            },
        }
    }
}

fn is_update_reply(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::TableEntriesUpdated(_)
            | Reply::TableKeysRemoved(_)
            | Reply::TableKeyBadVersion(_)
            | Reply::TableKeyDoesNotExist(_)
    )
}

fn wire_key(key: &TableKey, version: i64) -> wire::TableKey {
    wire::TableKey {
        data: key.to_bytes(),
        key_version: version,
    }
}

//! A segment container: one task that owns the metadata and cache of its segments, records every
//! change in its durable log before acknowledging it, and moves data to Tier-2 in the background.
//!
//! Other code reaches a container through a [`ContainerHandle`] (a bounded channel). The task
//! validates each request against the *accepted* state (everything sequenced so far), sends the
//! operation to the log writer, and once the log reports it durable applies it to the
//! *committed* state, which is what reads and `info` see, and only then replies.

mod command;
mod read_index;
mod recovery;
mod sequencer;
mod storage_writer;
mod task;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pravaha_storage::chunk::{ChunkErrorKind, ChunkStore};
use pravaha_storage::log::{LogConfig, LogDevice};
use pravaha_types::ContainerId;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::SegmentError;
use crate::state::{AttributeId, SegmentKind};
use crate::table::{self, RawEntry, TableChange, TableEntry};
use crate::Clock;

use command::{Command, PlannedRead, ReadPlan, Reply};
pub use sequencer::{AppendConditions, AttributeUpdate};

/// Tunables of a container; every default works for a laptop.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub log: LogConfig,
    /// Largest single append (and table update batch).
    pub max_append_bytes: u64,
    /// Memory for cached segment data (data not yet in Tier-2 is never evicted).
    pub cache_budget_bytes: u64,
    /// When this much committed data is not yet in Tier-2, appends wait (back pressure).
    pub max_unstored_bytes: u64,
    /// When this much data is queued for the log but not yet durable, appends wait.
    pub max_in_flight_bytes: u64,
    /// A segment's unstored data goes to Tier-2 once it reaches this size...
    pub chunk_target_bytes: u64,
    /// ...or once its oldest byte is this old.
    pub chunk_max_age: Duration,
    /// How often the Tier-2 writer looks for work.
    pub flush_interval: Duration,
    /// A metadata checkpoint is written after this many log bytes, so the log can be truncated.
    pub checkpoint_log_bytes: u64,
    /// Reads from Tier-2 fetch at least this much (and cache it).
    pub read_ahead_bytes: u64,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        Self {
            log: LogConfig::default(),
            max_append_bytes: 16 << 20,
            cache_budget_bytes: 256 << 20,
            max_unstored_bytes: 128 << 20,
            max_in_flight_bytes: 32 << 20,
            chunk_target_bytes: 16 << 20,
            chunk_max_age: Duration::from_secs(5),
            flush_interval: Duration::from_millis(100),
            checkpoint_log_bytes: 16 << 20,
            read_ahead_bytes: 1 << 20,
        }
    }
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Where the data begins, or `None` for a duplicate (acknowledged, not written again).
    pub offset: Option<u64>,
    /// The segment's length after this append (as sequenced).
    pub length: u64,
}

/// A segment's metadata as seen by readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub name: String,
    pub kind: SegmentKind,
    pub length: u64,
    pub start_offset: u64,
    pub sealed: bool,
    pub last_modified_ms: u64,
    /// Bytes at or after the start offset that are not yet in Tier-2.
    pub unstored_bytes: u64,
}

/// What a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub offset: u64,
    pub data: Bytes,
    /// The read is at the end of a sealed segment: no more data will come.
    pub end_of_segment: bool,
    /// The segment's length and seal state when the read was served.
    pub segment_length: u64,
    pub sealed: bool,
}

impl ReadResult {
    /// The data returned reaches the segment's length as it was when the read was served.
    pub fn at_tail(&self) -> bool {
        self.offset + self.data.len() as u64 >= self.segment_length
    }
}

/// Figures a container reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerStats {
    pub segments: usize,
    pub cached_bytes: u64,
    pub unstored_bytes: u64,
    pub log_bytes: u64,
    pub throttled_requests: u64,
    /// Log frames written (one sync each) and records in them, since the container started.
    pub log_frames: u64,
    pub log_records: u64,
}

/// The entry point to a running container. Cheap to clone; the container stops when every
/// handle is dropped (after finishing what is in flight).
#[derive(Clone)]
pub struct ContainerHandle {
    id: ContainerId,
    commands: mpsc::Sender<Command>,
    chunks: ChunkStore,
}

impl ContainerHandle {
    /// Recovers container `id` from its log on `device` and Tier-2 in `chunks`, then starts it.
    pub async fn start(
        id: ContainerId,
        config: ContainerConfig,
        device: Box<dyn LogDevice>,
        chunks: ChunkStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SegmentError> {
        let commands = task::start(id, config, device, chunks.clone(), clock).await?;
        Ok(Self {
            id,
            commands,
            chunks,
        })
    }

    pub fn id(&self) -> ContainerId {
        self.id
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, SegmentError> {
        let (reply, response) = oneshot::channel();
        let not_ready = || SegmentError::ContainerNotReady(self.id.0);
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| not_ready())?;
        response.await.map_err(|_| not_ready())?
    }

    pub async fn create_segment(
        &self,
        name: &str,
        kind: SegmentKind,
        attributes: Vec<(AttributeId, i64)>,
    ) -> Result<(), SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::Create {
            name,
            kind,
            attributes,
            reply,
        })
        .await
    }

    pub async fn delete_segment(&self, name: &str) -> Result<(), SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::Delete { name, reply }).await
    }

    /// Appends `data`; acknowledged once durable.
    pub async fn append(
        &self,
        name: &str,
        data: Bytes,
        conditions: AppendConditions,
    ) -> Result<AppendOutcome, SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::Append {
            name,
            data,
            conditions,
            reply,
        })
        .await
    }

    /// Hands an append to the container and returns at once with a future of its outcome, so
    /// that a caller can pipeline appends: appends submitted in order are applied in order.
    pub async fn submit_append(
        &self,
        name: &str,
        data: Bytes,
        conditions: AppendConditions,
    ) -> Result<
        impl std::future::Future<Output = Result<AppendOutcome, SegmentError>> + Send + 'static,
        SegmentError,
    > {
        let (reply, response) = oneshot::channel();
        let id = self.id;
        self.commands
            .send(Command::Append {
                name: name.to_owned(),
                data,
                conditions,
                reply,
            })
            .await
            .map_err(|_| SegmentError::ContainerNotReady(id.0))?;
        Ok(async move {
            response
                .await
                .map_err(|_| SegmentError::ContainerNotReady(id.0))?
        })
    }

    /// Seals the segment; returns its final length.
    pub async fn seal(&self, name: &str) -> Result<u64, SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::Seal { name, reply }).await
    }

    /// Makes everything before `offset` unreadable and frees it.
    pub async fn truncate(&self, name: &str, offset: u64) -> Result<(), SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::Truncate {
            name,
            offset,
            reply,
        })
        .await
    }

    /// Appends the sealed `source` to `target` atomically; `source` disappears. Returns the
    /// target's info after the merge.
    pub async fn merge(&self, target: &str, source: &str) -> Result<SegmentInfo, SegmentError> {
        let (target, source) = (target.to_owned(), source.to_owned());
        self.call(|reply| Command::Merge {
            target,
            source,
            reply,
        })
        .await
    }

    pub async fn info(&self, name: &str) -> Result<SegmentInfo, SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::Info { name, reply }).await
    }

    pub async fn get_attributes(
        &self,
        name: &str,
        ids: Vec<AttributeId>,
    ) -> Result<Vec<Option<i64>>, SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::GetAttributes { name, ids, reply })
            .await
    }

    /// Applies all updates or none (a failed compare-and-set fails the whole call).
    pub async fn update_attributes(
        &self,
        name: &str,
        updates: Vec<AttributeUpdate>,
    ) -> Result<(), SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::UpdateAttributes {
            name,
            updates,
            reply,
        })
        .await
    }

    /// Reads up to `max_length` bytes at `offset`. At the tail of an unsealed segment it waits up
    /// to `wait` for data and returns nothing if none came.
    pub async fn read(
        &self,
        name: &str,
        offset: u64,
        max_length: usize,
        wait: Duration,
    ) -> Result<ReadResult, SegmentError> {
        let deadline = Instant::now() + wait;
        let max_length = max_length.max(1);
        let mut missing_chunks = 0;
        loop {
            let owned_name = name.to_owned();
            let PlannedRead {
                plan,
                length: segment_length,
                sealed,
            } = self
                .call(|reply| Command::Read {
                    name: owned_name,
                    offset,
                    max_length,
                    reply,
                })
                .await?;
            let data = match plan {
                ReadPlan::Data(data) => data,
                ReadPlan::EndOfSegment => {
                    return Ok(ReadResult {
                        offset,
                        data: Bytes::new(),
                        end_of_segment: true,
                        segment_length,
                        sealed,
                    })
                }
                ReadPlan::Wait(woken) => {
                    if tokio::time::timeout_at(deadline, woken).await.is_err() {
                        return Ok(ReadResult {
                            offset,
                            data: Bytes::new(),
                            end_of_segment: false,
                            segment_length,
                            sealed,
                        });
                    }
                    continue;
                }
                ReadPlan::Storage {
                    id,
                    chunk,
                    chunk_range,
                } => {
                    match self.chunks.read(&chunk, chunk_range).await {
                        Ok(data) => {
                            let fill = Command::CacheFill {
                                id,
                                offset,
                                data: data.clone(),
                            };
                            let _ = self.commands.send(fill).await;
                            data.slice(..data.len().min(max_length))
                        }
                        // The chunk went away (truncation, deletion) since the plan was made:
                        // plan again. A chunk that stays missing is lost data, reported.
                        Err(error)
                            if error.kind == ChunkErrorKind::NotFound && missing_chunks < 3 =>
                        {
                            missing_chunks += 1;
                            continue;
                        }
                        Err(error) if error.kind == ChunkErrorKind::NotFound => {
                            return Err(SegmentError::Corrupt(format!(
                                "{name}: chunk {chunk} is missing from Tier-2"
                            )));
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            let end_of_segment = sealed && offset + data.len() as u64 >= segment_length;
            return Ok(ReadResult {
                offset,
                data,
                end_of_segment,
                segment_length,
                sealed,
            });
        }
    }

    /// Reads exactly `length` bytes at `offset` (no waiting at the tail).
    pub async fn read_exact(
        &self,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, SegmentError> {
        let mut parts = bytes::BytesMut::new();
        let mut position = offset;
        while position < offset + length {
            let remaining = usize::try_from(offset + length - position).unwrap_or(usize::MAX);
            let result = self.read(name, position, remaining, Duration::ZERO).await?;
            if result.data.is_empty() {
                return Err(SegmentError::Corrupt(format!(
                    "{name}: expected {length} bytes at {offset}, data ends at {position}"
                )));
            }
            position += result.data.len() as u64;
            parts.extend_from_slice(&result.data);
        }
        Ok(parts.freeze())
    }

    /// Updates and removes table keys, all or nothing. Returns each change's new version.
    pub async fn table_update(
        &self,
        name: &str,
        changes: Vec<TableChange>,
    ) -> Result<Vec<u64>, SegmentError> {
        self.table_update_at(name, changes, None).await
    }

    /// Like [`Self::table_update`], and only if the table segment's length is `expected_length`
    /// (else [`SegmentError::BadOffset`]).
    pub async fn table_update_at(
        &self,
        name: &str,
        changes: Vec<TableChange>,
        expected_length: Option<u64>,
    ) -> Result<Vec<u64>, SegmentError> {
        let name = name.to_owned();
        self.call(|reply| Command::TableUpdate {
            name,
            changes,
            expected_length,
            reply,
        })
        .await
    }

    /// The current entry of each key (`None` for an absent key).
    pub async fn table_get(
        &self,
        name: &str,
        keys: Vec<Bytes>,
    ) -> Result<Vec<Option<TableEntry>>, SegmentError> {
        let owned_name = name.to_owned();
        let lookup_keys = keys.clone();
        let slots = self
            .call(|reply| Command::TableLookup {
                name: owned_name,
                keys: lookup_keys,
                reply,
            })
            .await?;
        let mut entries = Vec::with_capacity(keys.len());
        for (key, slot) in keys.into_iter().zip(slots) {
            let entry = match slot {
                Some((version, value_offset, value_length)) => {
                    let value = self
                        .read_exact(name, value_offset, u64::from(value_length))
                        .await?;
                    Some(TableEntry {
                        key,
                        value,
                        version,
                    })
                }
                None => None,
            };
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Up to `max_keys` live keys after `after` in key order, with versions. The last key
    /// returned is the continuation token for the next call.
    pub async fn table_keys(
        &self,
        name: &str,
        after: Option<Bytes>,
        max_keys: usize,
    ) -> Result<Vec<(Bytes, u64)>, SegmentError> {
        let name = name.to_owned();
        let slots = self
            .call(|reply| Command::TableScan {
                name,
                after,
                max_keys,
                reply,
            })
            .await?;
        Ok(slots
            .into_iter()
            .map(|(key, version, _, _)| (key, version))
            .collect())
    }

    /// Like [`Self::table_keys`], with values.
    pub async fn table_entries(
        &self,
        name: &str,
        after: Option<Bytes>,
        max_keys: usize,
    ) -> Result<Vec<TableEntry>, SegmentError> {
        let owned_name = name.to_owned();
        let slots = self
            .call(|reply| Command::TableScan {
                name: owned_name,
                after,
                max_keys,
                reply,
            })
            .await?;
        let mut entries = Vec::with_capacity(slots.len());
        for (key, version, value_offset, value_length) in slots {
            let value = self
                .read_exact(name, value_offset, u64::from(value_length))
                .await?;
            entries.push(TableEntry {
                key,
                value,
                version,
            });
        }
        Ok(entries)
    }

    /// Entries (updates and removals) written at or after `from_offset`, up to about
    /// `max_bytes`; returns them and the offset to continue from.
    pub async fn table_read_delta(
        &self,
        name: &str,
        from_offset: u64,
        max_bytes: usize,
    ) -> Result<(Vec<RawEntry>, u64), SegmentError> {
        let mut buffer = bytes::BytesMut::new();
        let mut want = max_bytes.max(table::ENTRY_HEADER_LEN);
        loop {
            let position = from_offset + buffer.len() as u64;
            let result = self
                .read(name, position, want - buffer.len(), Duration::ZERO)
                .await?;
            buffer.extend_from_slice(&result.data);
            let data = Bytes::copy_from_slice(&buffer);
            let (entries, used) = table::decode_entries(&data, from_offset)
                .map_err(|error| SegmentError::Corrupt(format!("{name}: {error}")))?;
            let at_end = result.data.is_empty();
            if !entries.is_empty() || at_end {
                return Ok((entries, from_offset + used as u64));
            }
            // Not one whole entry yet: read on until the first entry is complete.
            want = (want * 2)
                .min(table::ENTRY_HEADER_LEN + table::MAX_KEY_BYTES + table::MAX_VALUE_BYTES);
            if buffer.len() >= want {
                return Err(SegmentError::Corrupt(format!(
                    "{name}: table entry at {from_offset} exceeds the limits"
                )));
            }
        }
    }

    /// Stops the container: what was accepted is made durable and answered, later requests
    /// fail with [`SegmentError::ContainerNotReady`]. Returns once the log is closed.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = done.await;
        }
    }

    pub async fn stats(&self) -> Result<ContainerStats, SegmentError> {
        let (reply, response) = oneshot::channel();
        let not_ready = || SegmentError::ContainerNotReady(self.id.0);
        self.commands
            .send(Command::Stats { reply })
            .await
            .map_err(|_| not_ready())?;
        response.await.map_err(|_| not_ready())
    }
}

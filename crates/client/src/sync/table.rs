//! [`TableSegment`]: one table segment over the segment protocol: create, conditional updates
//! and removals, reads by key and reads of what changed since a position.

use std::sync::Arc;

use bytes::Bytes;
use pravaha_wire::{self as wire, Reply, Request, TableEntries, TableKey, TableValue};

use crate::segment::{next_request_id, Locator, ReaderConfig, ReaderError, SegmentReader};

/// Table-key version meaning "the key must not exist" (and the version of an absent key).
pub const NOT_EXISTS: i64 = wire::NOT_EXISTS;
/// Table-key version meaning "no condition".
pub const NO_VERSION: i64 = wire::NO_VERSION;

/// Why a table request failed.
///
/// ```
/// use pravaha_client::segment::ReaderError;
/// use pravaha_client::sync::TableError;
///
/// let stale = TableError::BadKeyVersion { table: "shop/locks/0.#epoch.0".into() };
/// assert!(stale.is_conflict()); // read again, then retry
/// // A missing segment is a missing table.
/// let missing = TableError::from(ReaderError::NoSuchSegment("shop/locks/0.#epoch.0".into()));
/// assert!(matches!(&missing, TableError::NoSuchTable(table) if table == "shop/locks/0.#epoch.0"));
/// assert!(!missing.is_conflict());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum TableError {
    /// A conditional update or removal named a version the key no longer has.
    #[error("table {table}: a key has another version than expected")]
    BadKeyVersion { table: String },
    /// A conditional update or removal named a key that does not exist.
    #[error("table {table}: a key does not exist")]
    KeyDoesNotExist { table: String },
    #[error("table {0} does not exist")]
    NoSuchTable(String),
    /// The request failed for good: connection, time-out, token, or retries exhausted.
    #[error(transparent)]
    Segment(ReaderError),
    #[error("segment store refused {request} on table {table}: {message}")]
    Server {
        table: String,
        request: &'static str,
        message: String,
    },
}

impl From<ReaderError> for TableError {
    fn from(error: ReaderError) -> Self {
        match error {
            ReaderError::NoSuchSegment(table) => Self::NoSuchTable(table),
            other => Self::Segment(other),
        }
    }
}

impl TableError {
    /// A conflict with another writer: read the table again and retry the update.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::BadKeyVersion { .. } | Self::KeyDoesNotExist { .. }
        )
    }
}

/// Entries written at or after a position, as [`TableSegment::read_delta`] answers them.
///
/// ```no_run
/// # use pravaha_client::sync::TableSegment;
/// # async fn example(mut table: TableSegment) -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::HashMap;
///
/// // A local copy of the table, caught up from position 0.
/// let mut copy = HashMap::new();
/// let mut position = 0;
/// loop {
///     let delta = table.read_delta(position, 100).await?;
///     if delta.should_clear {
///         copy.clear();
///     }
///     if delta.entries.is_empty() {
///         break;
///     }
///     for (key, value, _version) in delta.entries {
///         copy.insert(key, value);
///     }
///     position = delta.last_position;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDelta {
    /// Key, value and version (the entry's position), oldest first; removals are not listed.
    pub entries: Vec<(Bytes, Bytes, i64)>,
    /// Where to continue from.
    pub last_position: i64,
    /// The position asked for was truncated away: forget everything and start over.
    pub should_clear: bool,
}

enum Outcome<T> {
    Done(T),
    Fail(TableError),
}

/// One table segment. Requests are sequential (`&mut self`) and go through a
/// [`SegmentReader`]'s exchange: the connection is kept between them and replaced after any
/// failure; connection failures, time-outs, `WrongHost` and expired tokens are retried per the
/// configuration's retry policy.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
///
/// use bytes::Bytes;
/// use pravaha_client::segment::{Endpoint, ReaderConfig, StaticLocator};
/// use pravaha_client::sync::{format, TableSegment, NOT_EXISTS};
///
/// let locator = Arc::new(StaticLocator::new(Endpoint::new("127.0.0.1", 12345)));
/// let name = format::table_segment_name("shop", "locks");
/// let mut table = TableSegment::create(locator, name, ReaderConfig::default()).await?;
/// let key = Bytes::from_static(b"compaction");
/// // Only if nobody holds the lock yet.
/// let versions = table
///     .update(vec![(key.clone(), Bytes::from_static(b"worker-7"), NOT_EXISTS)])
///     .await?;
/// let found = table.get(vec![key.clone()]).await?;
/// assert_eq!(found[0], Some((Bytes::from_static(b"worker-7"), versions[0])));
/// // Released only if nobody changed it since.
/// table.remove(vec![(key, versions[0])]).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TableSegment {
    name: String,
    segment: SegmentReader,
}

impl TableSegment {
    /// Opens table segment `name`, creating it if it does not exist.
    pub async fn create(
        locator: Arc<dyn Locator>,
        name: impl Into<String>,
        config: ReaderConfig,
    ) -> Result<Self, TableError> {
        let mut table = Self::open(locator, name, config);
        let segment = table.name.clone();
        table
            .request(
                "CreateTableSegment",
                |token| {
                    Request::CreateTableSegment(wire::CreateTableSegment {
                        request_id: next_request_id(),
                        segment: segment.clone(),
                        delegation_token: token,
                        sorted: None,
                        key_length: None,
                        rollover_size_bytes: None,
                    })
                },
                |reply| match reply {
                    Reply::SegmentCreated(_) | Reply::SegmentAlreadyExists(_) => Outcome::Done(()),
                    other => other_reply(&segment, "CreateTableSegment", other),
                },
            )
            .await?;
        Ok(table)
    }

    /// Table segment `name`, assumed to exist; nothing is sent yet.
    pub fn open(locator: Arc<dyn Locator>, name: impl Into<String>, config: ReaderConfig) -> Self {
        let name = name.into();
        Self {
            segment: SegmentReader::new(locator, name.clone(), config),
            name,
        }
    }

    /// The table segment's qualified name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes every entry `(key, value, expected version)` or none: a version of
    /// [`NOT_EXISTS`] requires the key to be absent, [`NO_VERSION`] sets no condition. Returns
    /// the new versions, in order.
    pub async fn update(
        &mut self,
        entries: Vec<(Bytes, Bytes, i64)>,
    ) -> Result<Vec<i64>, TableError> {
        let segment = self.name.clone();
        let count = entries.len();
        let table_entries = TableEntries {
            entries: entries
                .into_iter()
                .map(|(key, value, version)| {
                    (
                        TableKey {
                            data: key,
                            key_version: version,
                        },
                        TableValue { data: value },
                    )
                })
                .collect(),
        };
        self.request(
            "UpdateTableEntries",
            |token| {
                Request::UpdateTableEntries(wire::UpdateTableEntries {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token: token,
                    table_entries: table_entries.clone(),
                    table_segment_offset: -1,
                })
            },
            |reply| match reply {
                Reply::TableEntriesUpdated(updated) if updated.updated_versions.len() == count => {
                    Outcome::Done(updated.updated_versions)
                }
                other => other_reply(&segment, "UpdateTableEntries", other),
            },
        )
        .await
    }

    /// Removes every key `(key, expected version)` or none.
    pub async fn remove(&mut self, keys: Vec<(Bytes, i64)>) -> Result<(), TableError> {
        let segment = self.name.clone();
        let keys: Vec<TableKey> = keys
            .into_iter()
            .map(|(data, key_version)| TableKey { data, key_version })
            .collect();
        self.request(
            "RemoveTableKeys",
            |token| {
                Request::RemoveTableKeys(wire::RemoveTableKeys {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token: token,
                    keys: keys.clone(),
                    table_segment_offset: -1,
                })
            },
            |reply| match reply {
                Reply::TableKeysRemoved(_) => Outcome::Done(()),
                other => other_reply(&segment, "RemoveTableKeys", other),
            },
        )
        .await
    }

    /// The current value and version of each key, in order; `None` for an absent key.
    pub async fn get(&mut self, keys: Vec<Bytes>) -> Result<Vec<Option<(Bytes, i64)>>, TableError> {
        let segment = self.name.clone();
        let count = keys.len();
        let keys: Vec<TableKey> = keys
            .into_iter()
            .map(|data| TableKey {
                data,
                key_version: NO_VERSION,
            })
            .collect();
        self.request(
            "ReadTable",
            |token| {
                Request::ReadTable(wire::ReadTable {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token: token,
                    keys: keys.clone(),
                })
            },
            |reply| match reply {
                Reply::TableRead(read) if read.entries.entries.len() == count => Outcome::Done(
                    read.entries
                        .entries
                        .into_iter()
                        .map(|(key, value)| {
                            (key.key_version != NOT_EXISTS).then_some((value.data, key.key_version))
                        })
                        .collect(),
                ),
                other => other_reply(&segment, "ReadTable", other),
            },
        )
        .await
    }

    /// Up to about `max_entries` entries written at or after `from_position` (the latest value
    /// of each key). An empty answer means nothing newer.
    pub async fn read_delta(
        &mut self,
        from_position: i64,
        max_entries: i32,
    ) -> Result<TableDelta, TableError> {
        let segment = self.name.clone();
        self.request(
            "ReadTableEntriesDelta",
            |token| {
                Request::ReadTableEntriesDelta(wire::ReadTableEntriesDelta {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token: token,
                    from_position,
                    suggested_entry_count: max_entries,
                })
            },
            |reply| match reply {
                Reply::TableEntriesDeltaRead(read) => Outcome::Done(TableDelta {
                    entries: read
                        .entries
                        .entries
                        .into_iter()
                        .map(|(key, value)| (key.data, value.data, key.key_version))
                        .collect(),
                    last_position: read.last_position,
                    should_clear: read.should_clear,
                }),
                other => other_reply(&segment, "ReadTableEntriesDelta", other),
            },
        )
        .await
    }

    /// Deletes the table segment; a missing one counts as deleted.
    pub async fn delete(&mut self) -> Result<(), TableError> {
        let segment = self.name.clone();
        self.request(
            "DeleteTableSegment",
            |token| {
                Request::DeleteTableSegment(wire::DeleteTableSegment {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    must_be_empty: false,
                    delegation_token: token,
                })
            },
            |reply| match reply {
                Reply::SegmentDeleted(_) | Reply::NoSuchSegment(_) => Outcome::Done(()),
                other => other_reply(&segment, "DeleteTableSegment", other),
            },
        )
        .await
    }

    /// Sends the request `build` makes; the replies every segment request shares (`WrongHost`,
    /// refused or expired tokens, server errors) are handled and retried by the segment layer,
    /// the rest interpreted here.
    async fn request<T>(
        &mut self,
        name: &'static str,
        build: impl Fn(String) -> Request,
        interpret: impl Fn(Reply) -> Outcome<T>,
    ) -> Result<T, TableError> {
        let reply = self
            .segment
            .exchange(name, build, |reply| {
                !matches!(
                    reply,
                    Reply::WrongHost(_) | Reply::AuthTokenCheckFailed(_) | Reply::ErrorMessage(_)
                )
            })
            .await?;
        match interpret(reply) {
            Outcome::Done(value) => Ok(value),
            Outcome::Fail(error) => Err(error),
        }
    }
}

/// The replies a table request may get besides its own answer.
fn other_reply<T>(table: &str, request: &'static str, reply: Reply) -> Outcome<T> {
    let table = table.to_owned();
    match reply {
        Reply::TableKeyBadVersion(_) => Outcome::Fail(TableError::BadKeyVersion { table }),
        Reply::TableKeyDoesNotExist(_) => Outcome::Fail(TableError::KeyDoesNotExist { table }),
        Reply::NoSuchSegment(_) => Outcome::Fail(TableError::NoSuchTable(table)),
        other => Outcome::Fail(TableError::Server {
            table,
            request,
            message: format!("unexpected reply {}", other.name()),
        }),
    }
}

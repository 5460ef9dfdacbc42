//! Iteration over a table's keys or entries: partition after partition, each in pages resumed
//! with the segment store's continuation token.

use bytes::Bytes;
use pravaha_wire::{self as wire, Reply, Request};

use super::client::KeyValueTable;
use super::types::{TableEntry, TableError, TableKey, Version};
use crate::segment::next_request_id;

/// Where an iteration stands: the partition being read and the segment store's (opaque) token
/// within it. Keep it to resume later with [`KeyValueTable::entries_from`] or
/// [`KeyValueTable::keys_from`].
///
/// ```
/// use pravaha_client::table::IteratorPosition;
///
/// let start = IteratorPosition::start();
/// assert_eq!(start.partition, 0);
/// assert!(start.token.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IteratorPosition {
    pub partition: usize,
    pub token: Bytes,
}

impl IteratorPosition {
    /// The first key of the first partition.
    pub fn start() -> Self {
        Self::default()
    }
}

/// Pages of a table's entries; every live entry is returned exactly once if the table is not
/// changed meanwhile (keys changed during the iteration may or may not be seen).
///
/// ```no_run
/// # async fn example(table: pravaha_client::table::KeyValueTable) -> Result<(), pravaha_client::table::TableError> {
/// let mut entries = table.entries(100);
/// while let Some(page) = entries.next_page().await? {
///     for entry in page {
///         println!("{:?} = {:?} (version {:?})", entry.key, entry.value, entry.version);
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EntryIterator {
    cursor: Cursor,
}

impl EntryIterator {
    /// The next non-empty page, or `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<TableEntry>>, TableError> {
        let Some((entries, _)) = self.cursor.next(true).await? else {
            return Ok(None);
        };
        Ok(Some(entries))
    }

    /// Where the next page starts.
    pub fn position(&self) -> IteratorPosition {
        self.cursor.position.clone()
    }
}

/// Pages of a table's keys with their versions (values are not read).
///
/// ```no_run
/// # async fn example(table: pravaha_client::table::KeyValueTable) -> Result<(), pravaha_client::table::TableError> {
/// let mut keys = table.keys(100);
/// while let Some(page) = keys.next_page().await? {
///     println!("{} keys", page.len());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KeyIterator {
    cursor: Cursor,
}

impl KeyIterator {
    /// The next non-empty page, or `None` at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<(TableKey, Version)>>, TableError> {
        let Some((_, keys)) = self.cursor.next(false).await? else {
            return Ok(None);
        };
        Ok(Some(keys))
    }

    /// Where the next page starts.
    pub fn position(&self) -> IteratorPosition {
        self.cursor.position.clone()
    }
}

impl KeyValueTable {
    /// Every entry, `page_size` (a suggestion to the segment store) at a time.
    pub fn entries(&self, page_size: u32) -> EntryIterator {
        self.entries_from(IteratorPosition::start(), page_size)
    }

    /// The entries from `position` (an earlier iteration's [`EntryIterator::position`]).
    pub fn entries_from(&self, position: IteratorPosition, page_size: u32) -> EntryIterator {
        EntryIterator {
            cursor: Cursor::new(self.clone(), position, page_size),
        }
    }

    /// Every key with its version, `page_size` (a suggestion) at a time.
    pub fn keys(&self, page_size: u32) -> KeyIterator {
        self.keys_from(IteratorPosition::start(), page_size)
    }

    /// The keys from `position` (an earlier iteration's [`KeyIterator::position`]).
    pub fn keys_from(&self, position: IteratorPosition, page_size: u32) -> KeyIterator {
        KeyIterator {
            cursor: Cursor::new(self.clone(), position, page_size),
        }
    }
}

type Pages = (Vec<TableEntry>, Vec<(TableKey, Version)>);

#[derive(Debug)]
struct Cursor {
    table: KeyValueTable,
    position: IteratorPosition,
    page_size: i32,
}

impl Cursor {
    fn new(table: KeyValueTable, position: IteratorPosition, page_size: u32) -> Self {
        Self {
            table,
            position,
            page_size: i32::try_from(page_size.max(1)).unwrap_or(i32::MAX),
        }
    }

    /// The next non-empty page of entries (`with_values`) or keys; an empty page from the
    /// segment store ends its partition.
    async fn next(&mut self, with_values: bool) -> Result<Option<Pages>, TableError> {
        while self.position.partition < self.table.partition_count() {
            let (pages, token) = self.read_page(with_values).await?;
            if pages.0.is_empty() && pages.1.is_empty() {
                self.position = IteratorPosition {
                    partition: self.position.partition + 1,
                    token: Bytes::new(),
                };
                continue;
            }
            self.position.token = token;
            return Ok(Some(pages));
        }
        Ok(None)
    }

    async fn read_page(&self, with_values: bool) -> Result<(Pages, Bytes), TableError> {
        let partition = self.position.partition;
        let segment = self.table.partition_segment(partition).to_owned();
        let token = self.position.token.clone();
        let count = self.page_size;
        let reply = if with_values {
            let build = |delegation_token| {
                Request::ReadTableEntries(wire::ReadTableEntries {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token,
                    suggested_entry_count: count,
                    continuation_token: token.clone(),
                    prefix_filter: None,
                    from_key: None,
                    to_key: None,
                })
            };
            let expected = |reply: &Reply| matches!(reply, Reply::TableEntriesRead(_));
            self.table
                .exchange(partition, "ReadTableEntries", build, expected)
                .await?
        } else {
            let build = |delegation_token| {
                Request::ReadTableKeys(wire::ReadTableKeys {
                    request_id: next_request_id(),
                    segment: segment.clone(),
                    delegation_token,
                    suggested_key_count: count,
                    continuation_token: token.clone(),
                    prefix_filter: None,
                    from_key: None,
                    to_key: None,
                })
            };
            let expected = |reply: &Reply| matches!(reply, Reply::TableKeysRead(_));
            self.table
                .exchange(partition, "ReadTableKeys", build, expected)
                .await?
        };
        match reply {
            Reply::TableEntriesRead(read) => {
                let entries = read
                    .entries
                    .entries
                    .into_iter()
                    .map(|(key, value)| TableEntry {
                        key: self.table.key_from_wire(key.data),
                        value: value.data,
                        version: Version(key.key_version),
                    })
                    .collect();
                Ok(((entries, Vec::new()), read.continuation_token))
            }
            Reply::TableKeysRead(read) => {
                let keys = read
                    .keys
                    .into_iter()
                    .map(|key| (self.table.key_from_wire(key.data), Version(key.key_version)))
                    .collect();
                Ok(((Vec::new(), keys), read.continuation_token))
            }
            other => Err(self
                .table
                .protocol(format!("unexpected reply {}", other.name()))),
        }
    }
}

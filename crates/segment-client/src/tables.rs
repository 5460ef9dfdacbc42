//! Table segment requests: conditional updates and removals, point reads, key and entry
//! iteration, and delta reads.

use bytes::Bytes;
use pravaha_wire::{self as wire, Reply, TableEntries, TableKey, TableValue};

use crate::client::next_request_id;
use crate::error::failure;
use crate::{ClientError, Endpoint, KeyVersion, SegmentClient, TableDelta, TableEntry, TablePage};

/// `table_segment_offset` meaning "no condition on the table's length".
const NO_TABLE_OFFSET: i64 = -1;

impl SegmentClient {
    /// Writes `entries` all-or-nothing, each under its version condition, and returns their
    /// new versions in order. A failed condition is `TableKeyBadVersion` (the key exists with
    /// another version, or exists where `NotExists` was required) or `TableKeyDoesNotExist`.
    /// With `table_offset`, the table's length must equal it, else `ConditionalCheckFailed`.
    pub async fn table_update(
        &self,
        at: Endpoint,
        table: &str,
        entries: Vec<(Bytes, Bytes, KeyVersion)>,
        table_offset: Option<i64>,
        token: &str,
    ) -> Result<Vec<i64>, ClientError> {
        let count = entries.len();
        let request = wire::UpdateTableEntries {
            request_id: next_request_id(),
            segment: table.to_owned(),
            delegation_token: self.token(token),
            table_entries: TableEntries {
                entries: entries
                    .into_iter()
                    .map(|(key, value, version)| {
                        (table_key(key, version), TableValue { data: value })
                    })
                    .collect(),
            },
            table_segment_offset: table_offset.unwrap_or(NO_TABLE_OFFSET),
        };
        match self.call(at, request.into()).await? {
            Reply::TableEntriesUpdated(updated) if updated.updated_versions.len() == count => {
                Ok(updated.updated_versions)
            }
            Reply::TableEntriesUpdated(updated) => Err(ClientError::Protocol(format!(
                "{count} table entries updated, {} versions returned",
                updated.updated_versions.len()
            ))),
            other => Err(table_failure("UpdateTableEntries", other, table_offset)),
        }
    }

    /// Removes `keys` all-or-nothing under their version conditions (as [`Self::table_update`]).
    /// Removing an absent key unconditionally succeeds.
    pub async fn table_remove(
        &self,
        at: Endpoint,
        table: &str,
        keys: Vec<(Bytes, KeyVersion)>,
        table_offset: Option<i64>,
        token: &str,
    ) -> Result<(), ClientError> {
        let request = wire::RemoveTableKeys {
            request_id: next_request_id(),
            segment: table.to_owned(),
            delegation_token: self.token(token),
            keys: keys
                .into_iter()
                .map(|(key, version)| table_key(key, version))
                .collect(),
            table_segment_offset: table_offset.unwrap_or(NO_TABLE_OFFSET),
        };
        match self.call(at, request.into()).await? {
            Reply::TableKeysRemoved(_) => Ok(()),
            other => Err(table_failure("RemoveTableKeys", other, table_offset)),
        }
    }

    /// The current entry of each key, in order; `None` for an absent key.
    pub async fn table_get(
        &self,
        at: Endpoint,
        table: &str,
        keys: Vec<Bytes>,
        token: &str,
    ) -> Result<Vec<Option<TableEntry>>, ClientError> {
        let count = keys.len();
        let request = wire::ReadTable {
            request_id: next_request_id(),
            segment: table.to_owned(),
            delegation_token: self.token(token),
            keys: keys
                .into_iter()
                .map(|key| table_key(key, KeyVersion::Any))
                .collect(),
        };
        match self.call(at, request.into()).await? {
            Reply::TableRead(read) if read.entries.entries.len() == count => Ok(read
                .entries
                .entries
                .into_iter()
                .map(|(key, value)| {
                    (key.key_version != wire::NOT_EXISTS).then(|| table_entry(key, value))
                })
                .collect()),
            Reply::TableRead(read) => Err(ClientError::Protocol(format!(
                "{count} table keys read, {} entries returned",
                read.entries.entries.len()
            ))),
            other => Err(failure("ReadTable", other)),
        }
    }

    /// One page of keys (with versions) in key order, and the continuation token for the next
    /// page. Loop until a page comes back empty.
    pub async fn table_keys(
        &self,
        at: Endpoint,
        table: &str,
        page: TablePage,
        token: &str,
    ) -> Result<(Vec<(Bytes, i64)>, Bytes), ClientError> {
        let (prefix_filter, from_key, to_key) = page_filters(&page);
        let request = wire::ReadTableKeys {
            request_id: next_request_id(),
            segment: table.to_owned(),
            delegation_token: self.token(token),
            suggested_key_count: page.max_items,
            continuation_token: page.continuation,
            prefix_filter,
            from_key,
            to_key,
        };
        match self.call(at, request.into()).await? {
            Reply::TableKeysRead(read) => Ok((
                read.keys
                    .into_iter()
                    .map(|key| (key.data, key.key_version))
                    .collect(),
                read.continuation_token,
            )),
            other => Err(failure("ReadTableKeys", other)),
        }
    }

    /// One page of entries in key order, and the continuation token for the next page. Loop
    /// until a page comes back empty.
    pub async fn table_entries(
        &self,
        at: Endpoint,
        table: &str,
        page: TablePage,
        token: &str,
    ) -> Result<(Vec<TableEntry>, Bytes), ClientError> {
        let (prefix_filter, from_key, to_key) = page_filters(&page);
        let request = wire::ReadTableEntries {
            request_id: next_request_id(),
            segment: table.to_owned(),
            delegation_token: self.token(token),
            suggested_entry_count: page.max_items,
            continuation_token: page.continuation,
            prefix_filter,
            from_key,
            to_key,
        };
        match self.call(at, request.into()).await? {
            Reply::TableEntriesRead(read) => Ok((
                read.entries
                    .entries
                    .into_iter()
                    .map(|(key, value)| table_entry(key, value))
                    .collect(),
                read.continuation_token,
            )),
            other => Err(failure("ReadTableEntries", other)),
        }
    }

    /// Entries written at or after `from_position` (a table segment byte position; start at
    /// 0), up to about `max_entries`. Continue from `last_position` until `reached_end`.
    pub async fn table_delta(
        &self,
        at: Endpoint,
        table: &str,
        from_position: i64,
        max_entries: i32,
        token: &str,
    ) -> Result<TableDelta, ClientError> {
        let request = wire::ReadTableEntriesDelta {
            request_id: next_request_id(),
            segment: table.to_owned(),
            delegation_token: self.token(token),
            from_position,
            suggested_entry_count: max_entries,
        };
        match self.call(at, request.into()).await? {
            Reply::TableEntriesDeltaRead(read) => Ok(TableDelta {
                entries: read
                    .entries
                    .entries
                    .into_iter()
                    .map(|(key, value)| table_entry(key, value))
                    .collect(),
                last_position: read.last_position,
                reached_end: read.reached_end,
                should_clear: read.should_clear,
            }),
            other => Err(failure("ReadTableEntriesDelta", other)),
        }
    }
}

fn table_key(data: Bytes, version: KeyVersion) -> TableKey {
    TableKey {
        data,
        key_version: version.to_wire(),
    }
}

fn table_entry(key: TableKey, value: TableValue) -> TableEntry {
    TableEntry {
        key: key.data,
        value: value.data,
        version: key.key_version,
    }
}

/// A failed `table_offset` condition comes back as `SegmentIsTruncated` (as Pravega reports
/// it); nothing else truncates a table under an update.
fn table_failure(request: &'static str, reply: Reply, table_offset: Option<i64>) -> ClientError {
    match reply {
        Reply::SegmentIsTruncated(_) if table_offset.is_some() => {
            ClientError::ConditionalCheckFailed
        }
        other => failure(request, other),
    }
}

/// The three optional trailing filters of a key iteration. The wire carries them in order and
/// only while present, so a filter after an absent one makes the absent one empty (which
/// servers read as "no filter").
fn page_filters(page: &TablePage) -> (Option<Bytes>, Option<Bytes>, Option<Bytes>) {
    let to_key = page.to_key.clone();
    let from_key = page
        .from_key
        .clone()
        .or_else(|| to_key.as_ref().map(|_| Bytes::new()));
    let prefix = page
        .prefix
        .clone()
        .or_else(|| from_key.as_ref().map(|_| Bytes::new()));
    (prefix, from_key, to_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_versions_travel_as_the_wire_constants() {
        assert_eq!(KeyVersion::Any.to_wire(), i64::MIN);
        assert_eq!(KeyVersion::NotExists.to_wire(), -1);
        assert_eq!(KeyVersion::Exactly(17).to_wire(), 17);
    }

    #[test]
    fn filters_before_a_present_one_are_filled_with_empty() {
        let none = TablePage::default();
        assert_eq!(page_filters(&none), (None, None, None));
        let prefix_only = TablePage {
            prefix: Some(Bytes::from_static(b"p")),
            ..TablePage::default()
        };
        assert_eq!(
            page_filters(&prefix_only),
            (Some(Bytes::from_static(b"p")), None, None)
        );
        let to_only = TablePage {
            to_key: Some(Bytes::from_static(b"z")),
            ..TablePage::default()
        };
        assert_eq!(
            page_filters(&to_only),
            (
                Some(Bytes::new()),
                Some(Bytes::new()),
                Some(Bytes::from_static(b"z"))
            )
        );
    }

    #[test]
    fn every_filter_combination_encodes() {
        let key = || Bytes::from_static(b"k");
        for bits in 0..8u8 {
            let page = TablePage {
                max_items: 5,
                prefix: (bits & 1 != 0).then(key),
                from_key: (bits & 2 != 0).then(key),
                to_key: (bits & 4 != 0).then(key),
                ..TablePage::default()
            };
            let (prefix_filter, from_key, to_key) = page_filters(&page);
            let request = wire::Request::ReadTableKeys(wire::ReadTableKeys {
                request_id: 1,
                segment: "t".into(),
                delegation_token: String::new(),
                suggested_key_count: 5,
                continuation_token: Bytes::new(),
                prefix_filter,
                from_key,
                to_key,
            });
            let mut out = bytes::BytesMut::new();
            request.encode(&mut out).unwrap();
        }
    }
}

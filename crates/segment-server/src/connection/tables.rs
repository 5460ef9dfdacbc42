//! Table segment requests.
//!
//! Iteration tokens (`ReadTableKeys`, `ReadTableEntries`) are opaque to clients: one byte of
//! token format version (1) followed by the last key returned; iteration resumes after it, in
//! key order. An empty token starts from the first key.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use pravaha_segmentstore::{ContainerHandle, SegmentError, SegmentKind};
use pravaha_wire::{self as wire, Reply, TableEntries, TableKey, TableValue};

use super::table_change;
use crate::replies::to_i64;
use crate::Limits;

const TOKEN_VERSION: u8 = 1;

pub(super) async fn update(
    container: &ContainerHandle,
    segment: &str,
    update: wire::UpdateTableEntries,
) -> Result<Reply, SegmentError> {
    let changes = update
        .table_entries
        .entries
        .into_iter()
        .map(|(key, value)| table_change(key.data, Some(value.data), key.key_version))
        .collect::<Result<Vec<_>, _>>()?;
    let versions = match container
        .table_update_at(
            segment,
            changes,
            expected_length(update.table_segment_offset)?,
        )
        .await
    {
        Ok(versions) => versions,
        Err(error) => return Err(offset_mismatch(error, update.table_segment_offset)),
    };
    Ok(Reply::TableEntriesUpdated(wire::TableEntriesUpdated {
        request_id: update.request_id,
        updated_versions: versions.into_iter().map(to_i64).collect(),
    }))
}

pub(super) async fn remove(
    container: &ContainerHandle,
    segment: &str,
    remove: wire::RemoveTableKeys,
) -> Result<Reply, SegmentError> {
    let changes = remove
        .keys
        .into_iter()
        .map(|key| table_change(key.data, None, key.key_version))
        .collect::<Result<Vec<_>, _>>()?;
    if let Err(error) = container
        .table_update_at(
            segment,
            changes,
            expected_length(remove.table_segment_offset)?,
        )
        .await
    {
        return Err(offset_mismatch(error, remove.table_segment_offset));
    }
    Ok(Reply::TableKeysRemoved(wire::TableKeysRemoved {
        request_id: remove.request_id,
        segment: segment.to_owned(),
    }))
}

/// `table_segment_offset`: -1 = no condition, otherwise the table's length must equal it.
fn expected_length(offset: i64) -> Result<Option<u64>, SegmentError> {
    match offset {
        -1 => Ok(None),
        offset => u64::try_from(offset).map(Some).map_err(|_| {
            SegmentError::InvalidArgument(format!("invalid table segment offset {offset}"))
        }),
    }
}

/// A failed length condition is reported as Pravega reports it: `SegmentIsTruncated`.
fn offset_mismatch(error: SegmentError, offset: i64) -> SegmentError {
    match error {
        SegmentError::BadOffset {
            segment, expected, ..
        } => SegmentError::Truncated {
            segment,
            offset: u64::try_from(offset).unwrap_or(0),
            start_offset: expected,
        },
        other => other,
    }
}

pub(super) async fn read(
    container: &ContainerHandle,
    segment: &str,
    read: wire::ReadTable,
) -> Result<Reply, SegmentError> {
    let keys: Vec<Bytes> = read.keys.into_iter().map(|key| key.data).collect();
    let found = container.table_get(segment, keys.clone()).await?;
    let entries = keys
        .into_iter()
        .zip(found)
        .map(|(key, entry)| match entry {
            Some(entry) => (
                TableKey {
                    data: entry.key,
                    key_version: to_i64(entry.version),
                },
                TableValue { data: entry.value },
            ),
            // Absent: version -1 and an empty value, as the clients expect.
            None => (
                TableKey {
                    data: key,
                    key_version: wire::NOT_EXISTS,
                },
                TableValue { data: Bytes::new() },
            ),
        })
        .collect();
    Ok(Reply::TableRead(wire::TableRead {
        request_id: read.request_id,
        segment: segment.to_owned(),
        entries: TableEntries { entries },
    }))
}

/// Bounds and position of a key iteration.
struct Scan {
    after: Option<Bytes>,
    count: usize,
    prefix: Option<Bytes>,
    from_key: Option<Bytes>,
    to_key: Option<Bytes>,
}

impl Scan {
    fn new(
        token: &Bytes,
        suggested: i32,
        prefix: Option<Bytes>,
        from_key: Option<Bytes>,
        to_key: Option<Bytes>,
        limits: &Limits,
    ) -> Result<Self, SegmentError> {
        let after = match token.split_first() {
            None => None,
            Some((&TOKEN_VERSION, key)) => Some(token.slice_ref(key)),
            Some(_) => {
                return Err(SegmentError::InvalidArgument(
                    "the continuation token was not issued by this server".into(),
                ))
            }
        };
        let count = usize::try_from(suggested)
            .unwrap_or(1)
            .clamp(1, limits.max_table_page_entries);
        let mut scan = Self {
            after,
            count,
            prefix: prefix.filter(|p| !p.is_empty()),
            from_key: from_key.filter(|k| !k.is_empty()),
            to_key: to_key.filter(|k| !k.is_empty()),
        };
        if scan.after.is_none() {
            // Seek: the range's keys are all at least max(prefix, from_key), so start after that
            // bound without its last byte (a key no wanted key can equal).
            let floor = match (&scan.prefix, &scan.from_key) {
                (Some(p), Some(f)) => Some(p.max(f)),
                (p, f) => p.as_ref().or(f.as_ref()),
            };
            scan.after = floor.map(|floor| floor.slice(..floor.len() - 1));
        }
        Ok(scan)
    }

    /// Whether `key` is in the requested range, and whether iteration is past its end.
    fn admits(&self, key: &Bytes) -> (bool, bool) {
        if self.to_key.as_ref().is_some_and(|to| key > to) {
            return (false, true);
        }
        // Keys come in order: once past the prefix's range, nothing more can match.
        if self
            .prefix
            .as_ref()
            .is_some_and(|p| key > p && !key.starts_with(p))
        {
            return (false, true);
        }
        let wanted = self.from_key.as_ref().is_none_or(|from| key >= from)
            && self.prefix.as_ref().is_none_or(|p| key.starts_with(p));
        (wanted, false)
    }

    /// The continuation token after `last` (or the request's own when nothing was returned).
    fn token(&self, last: Option<&Bytes>) -> Bytes {
        match last.or(self.after.as_ref()) {
            None => Bytes::new(),
            Some(key) => {
                let mut token = BytesMut::with_capacity(1 + key.len());
                token.put_u8(TOKEN_VERSION);
                token.put_slice(key);
                token.freeze()
            }
        }
    }
}

/// Keys (with versions) of a page, in key order.
async fn scan_keys(
    container: &ContainerHandle,
    segment: &str,
    scan: &Scan,
    limits: &Limits,
) -> Result<Vec<(Bytes, u64)>, SegmentError> {
    let mut page = Vec::new();
    let mut bytes = 0;
    let mut cursor = scan.after.clone();
    'fetch: while page.len() < scan.count && bytes < limits.max_table_page_bytes {
        let batch = container
            .table_keys(segment, cursor.clone(), scan.count - page.len())
            .await?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        cursor = Some(last.clone());
        for (key, version) in batch {
            let (wanted, past_end) = scan.admits(&key);
            if past_end {
                break 'fetch;
            }
            if wanted {
                bytes += key.len() + 8;
                page.push((key, version));
                if bytes >= limits.max_table_page_bytes {
                    break 'fetch;
                }
            }
        }
    }
    Ok(page)
}

pub(super) async fn read_keys(
    container: &ContainerHandle,
    segment: &str,
    read: wire::ReadTableKeys,
    limits: &Limits,
) -> Result<Reply, SegmentError> {
    require_table(container, segment).await?;
    let scan = Scan::new(
        &read.continuation_token,
        read.suggested_key_count,
        read.prefix_filter,
        read.from_key,
        read.to_key,
        limits,
    )?;
    let page = scan_keys(container, segment, &scan, limits).await?;
    let continuation_token = scan.token(page.last().map(|(key, _)| key));
    Ok(Reply::TableKeysRead(wire::TableKeysRead {
        request_id: read.request_id,
        segment: segment.to_owned(),
        keys: page
            .into_iter()
            .map(|(data, version)| TableKey {
                data,
                key_version: to_i64(version),
            })
            .collect(),
        continuation_token,
    }))
}

pub(super) async fn read_entries(
    container: &ContainerHandle,
    segment: &str,
    read: wire::ReadTableEntries,
    limits: &Limits,
) -> Result<Reply, SegmentError> {
    require_table(container, segment).await?;
    let scan = Scan::new(
        &read.continuation_token,
        read.suggested_entry_count,
        read.prefix_filter,
        read.from_key,
        read.to_key,
        limits,
    )?;
    // Values are fetched for a page of keys; a key removed in between is left out, and one
    // updated in between is returned with its new value and version. If every key of a page
    // went away meanwhile, the next page is tried: an empty page must mean the end.
    let mut scan = scan;
    let mut entries = Vec::new();
    let mut last = None;
    loop {
        let keys = scan_keys(container, segment, &scan, limits).await?;
        if keys.is_empty() {
            break;
        }
        let mut bytes = 0;
        let found = container
            .table_get(segment, keys.iter().map(|(key, _)| key.clone()).collect())
            .await?;
        for ((key, _), entry) in keys.into_iter().zip(found) {
            last = Some(key);
            if let Some(entry) = entry {
                bytes += entry.key.len() + entry.value.len() + 16;
                entries.push((
                    TableKey {
                        data: entry.key,
                        key_version: to_i64(entry.version),
                    },
                    TableValue { data: entry.value },
                ));
                if bytes >= limits.max_table_page_bytes {
                    break;
                }
            }
        }
        if !entries.is_empty() {
            break;
        }
        scan.after.clone_from(&last);
    }
    let continuation_token = scan.token(last.as_ref());
    Ok(Reply::TableEntriesRead(wire::TableEntriesRead {
        request_id: read.request_id,
        segment: segment.to_owned(),
        entries: TableEntries { entries },
        continuation_token,
    }))
}

pub(super) async fn read_delta(
    container: &ContainerHandle,
    segment: &str,
    read: wire::ReadTableEntriesDelta,
    limits: &Limits,
) -> Result<Reply, SegmentError> {
    let info = require_table(container, segment).await?;
    let requested = u64::try_from(read.from_position).map_err(|_| {
        SegmentError::InvalidArgument(format!("negative position {}", read.from_position))
    })?;
    // Positions before the start offset are gone: the client must start over. A position past
    // the end continues from the end (so that later writes are not skipped).
    let should_clear = requested < info.start_offset;
    let mut position = requested.clamp(info.start_offset, info.length);
    let count = usize::try_from(read.suggested_entry_count)
        .unwrap_or(1)
        .clamp(1, limits.max_table_page_entries);
    // Latest written value per key within the page, in the order keys were first written.
    // Removals are not listed (delta reads carry written entries only), and a removal must not
    // hide the write before it in the same page either: a synchronizer writes a tombstone value
    // and then removes the key, and its readers learn of the removal from the tombstone alone.
    let mut order: Vec<Bytes> = Vec::new();
    let mut latest: HashMap<Bytes, (Bytes, u64)> = HashMap::new();
    let mut bytes = 0;
    let mut consumed = 0;
    // Read on until the page has an entry or the table ends, so that an empty page always
    // means "nothing newer" (the clients stop at an empty page).
    while position < info.length {
        let (raw, _) = container
            .table_read_delta(segment, position, limits.max_table_page_bytes)
            .await?;
        if raw.is_empty() {
            break;
        }
        for entry in raw {
            let value_length = entry.value.as_ref().map_or(0, Bytes::len);
            position = entry.version
                + pravaha_segmentstore::table::entry_length(entry.key.len(), value_length);
            bytes += entry.key.len() + value_length + 16;
            consumed += 1;
            if let Some(value) = entry.value {
                if latest
                    .insert(entry.key.clone(), (value, entry.version))
                    .is_none()
                {
                    order.push(entry.key);
                }
            }
            if !latest.is_empty() && (consumed >= count || bytes >= limits.max_table_page_bytes) {
                break;
            }
        }
        if !latest.is_empty() {
            break;
        }
    }
    // In the order of each key's latest write.
    let mut page: Vec<(Bytes, Bytes, u64)> = order
        .into_iter()
        .filter_map(|key| {
            let (value, version) = latest.remove(&key)?;
            Some((key, value, version))
        })
        .collect();
    page.sort_by_key(|(_, _, version)| *version);
    let entries = page
        .into_iter()
        .map(|(key, value, version)| {
            (
                TableKey {
                    data: key,
                    key_version: to_i64(version),
                },
                TableValue { data: value },
            )
        })
        .collect();
    Ok(Reply::TableEntriesDeltaRead(wire::TableEntriesDeltaRead {
        request_id: read.request_id,
        segment: segment.to_owned(),
        entries: TableEntries { entries },
        should_clear,
        reached_end: position >= info.length,
        last_position: to_i64(position),
    }))
}

async fn require_table(
    container: &ContainerHandle,
    segment: &str,
) -> Result<pravaha_segmentstore::SegmentInfo, SegmentError> {
    let info = container.info(segment).await?;
    if info.kind == SegmentKind::Table {
        Ok(info)
    } else {
        Err(SegmentError::WrongSegmentKind {
            segment: segment.to_owned(),
            actual: info.kind.name(),
            needed: SegmentKind::Table.name(),
        })
    }
}

/// The number of live keys (walks the index; for the rarely used table info request).
pub(super) async fn count_keys(
    container: &ContainerHandle,
    segment: &str,
) -> Result<i64, SegmentError> {
    let mut count = 0i64;
    let mut after = None;
    loop {
        let page = container.table_keys(segment, after, 10_000).await?;
        let Some((last, _)) = page.last() else {
            return Ok(count);
        };
        after = Some(last.clone());
        count += i64::try_from(page.len()).unwrap_or(i64::MAX);
    }
}

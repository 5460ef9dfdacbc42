//! Validation: turns a request into the operation to record, against the accepted state (which
//! includes every operation already sequenced, durable or not). Pure functions.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::SegmentError;
use crate::state::{AttributeId, ContainerState, Operation, SegmentKind, SegmentMeta};
use crate::table::{self, ExpectedVersion, TableChange};

/// An attribute change, optionally conditional on the attribute's current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeUpdate {
    pub id: AttributeId,
    pub value: i64,
    /// `Some(expected)`: compare-and-set; `expected == None` means "must not be set".
    pub expected: Option<Option<i64>>,
}

/// Conditions on an append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendConditions {
    /// The segment's length must be exactly this.
    pub expected_offset: Option<u64>,
    /// Idempotence: `(writer id, event number)`. An event number not above the writer's last
    /// recorded one makes the append a duplicate, acknowledged without being written.
    pub writer: Option<(AttributeId, i64)>,
}

pub(super) fn segment<'a>(
    state: &'a ContainerState,
    name: &str,
) -> Result<&'a SegmentMeta, SegmentError> {
    state
        .by_name(name)
        .ok_or_else(|| SegmentError::NoSuchSegment(name.to_owned()))
}

fn writable<'a>(
    state: &'a ContainerState,
    name: &str,
    kind: SegmentKind,
) -> Result<&'a SegmentMeta, SegmentError> {
    let segment = segment(state, name)?;
    if segment.kind != kind {
        return Err(SegmentError::WrongSegmentKind {
            segment: name.to_owned(),
            actual: segment.kind.name(),
            needed: kind.name(),
        });
    }
    if segment.sealed {
        return Err(SegmentError::Sealed(name.to_owned()));
    }
    Ok(segment)
}

pub(super) fn create(
    state: &ContainerState,
    name: &str,
    kind: SegmentKind,
    attributes: &[(AttributeId, i64)],
    time_ms: u64,
) -> Result<Operation, SegmentError> {
    pravaha_types::SegmentName::new(name)
        .map_err(|error| SegmentError::InvalidArgument(error.to_string()))?;
    if state.by_name(name).is_some() {
        return Err(SegmentError::AlreadyExists(name.to_owned()));
    }
    Ok(Operation::CreateSegment {
        id: state.next_segment_id,
        name: name.to_owned(),
        kind,
        attributes: attributes.to_vec(),
        time_ms,
    })
}

/// `Ok(None)` for a duplicate append.
pub(super) fn append(
    state: &ContainerState,
    name: &str,
    data: Bytes,
    conditions: AppendConditions,
    max_append_bytes: u64,
    time_ms: u64,
) -> Result<Option<Operation>, SegmentError> {
    if data.len() as u64 > max_append_bytes {
        return Err(SegmentError::TooLarge {
            what: "append",
            size: data.len() as u64,
            limit: max_append_bytes,
        });
    }
    let segment = writable(state, name, SegmentKind::Stream)?;
    if let Some((writer, event_number)) = conditions.writer {
        if segment
            .attributes
            .get(&writer)
            .is_some_and(|&last| event_number <= last)
        {
            return Ok(None);
        }
    }
    if let Some(expected) = conditions.expected_offset {
        if expected != segment.length {
            return Err(SegmentError::BadOffset {
                segment: name.to_owned(),
                expected: segment.length,
                given: expected,
            });
        }
    }
    Ok(Some(Operation::Append {
        id: segment.id,
        offset: segment.length,
        data,
        attributes: conditions.writer.into_iter().collect(),
        time_ms,
    }))
}

pub(super) fn seal(
    state: &ContainerState,
    name: &str,
    time_ms: u64,
) -> Result<Operation, SegmentError> {
    let segment = segment(state, name)?;
    if segment.sealed {
        return Err(SegmentError::Sealed(name.to_owned()));
    }
    Ok(Operation::Seal {
        id: segment.id,
        time_ms,
    })
}

pub(super) fn truncate(
    state: &ContainerState,
    name: &str,
    offset: u64,
    time_ms: u64,
) -> Result<Operation, SegmentError> {
    let segment = segment(state, name)?;
    if segment.kind != SegmentKind::Stream {
        // A table's index points into its whole history; tables are compacted, not truncated.
        return Err(SegmentError::WrongSegmentKind {
            segment: name.to_owned(),
            actual: segment.kind.name(),
            needed: SegmentKind::Stream.name(),
        });
    }
    if offset > segment.length {
        return Err(SegmentError::BadOffset {
            segment: name.to_owned(),
            expected: segment.length,
            given: offset,
        });
    }
    Ok(Operation::Truncate {
        id: segment.id,
        offset,
        time_ms,
    })
}

pub(super) fn merge(
    state: &ContainerState,
    target: &str,
    source: &str,
    time_ms: u64,
) -> Result<Operation, SegmentError> {
    let target_segment = writable(state, target, SegmentKind::Stream)?;
    let source_segment = segment(state, source)?;
    if source_segment.id == target_segment.id {
        return Err(SegmentError::InvalidArgument(
            "a segment cannot be merged into itself".into(),
        ));
    }
    if source_segment.kind != SegmentKind::Stream {
        return Err(SegmentError::WrongSegmentKind {
            segment: source.to_owned(),
            actual: source_segment.kind.name(),
            needed: SegmentKind::Stream.name(),
        });
    }
    if !source_segment.sealed {
        return Err(SegmentError::NotSealed(source.to_owned()));
    }
    if source_segment.start_offset > 0 {
        return Err(SegmentError::Truncated {
            segment: source.to_owned(),
            offset: 0,
            start_offset: source_segment.start_offset,
        });
    }
    Ok(Operation::Merge {
        target: target_segment.id,
        source: source_segment.id,
        target_offset: target_segment.length,
        time_ms,
    })
}

pub(super) fn delete(state: &ContainerState, name: &str) -> Result<Operation, SegmentError> {
    Ok(Operation::Delete {
        id: segment(state, name)?.id,
    })
}

pub(super) fn update_attributes(
    state: &ContainerState,
    name: &str,
    updates: &[AttributeUpdate],
    time_ms: u64,
) -> Result<Operation, SegmentError> {
    let segment = segment(state, name)?;
    let mut pending: HashMap<AttributeId, i64> = HashMap::new();
    for update in updates {
        if let Some(expected) = update.expected {
            let actual = pending
                .get(&update.id)
                .or_else(|| segment.attributes.get(&update.id))
                .copied();
            if actual != expected {
                return Err(SegmentError::AttributeMismatch {
                    segment: name.to_owned(),
                    attribute: update.id,
                    expected,
                    actual,
                });
            }
        }
        pending.insert(update.id, update.value);
    }
    Ok(Operation::UpdateAttributes {
        id: segment.id,
        values: updates.iter().map(|u| (u.id, u.value)).collect(),
        time_ms,
    })
}

/// Checks every change against the current versions (and the changes before it in the same
/// batch): all or nothing. Returns the operation and the new version of each changed key.
pub(super) fn table_update(
    state: &ContainerState,
    name: &str,
    changes: &[TableChange],
    expected_length: Option<u64>,
    max_append_bytes: u64,
    time_ms: u64,
) -> Result<(Operation, Vec<u64>), SegmentError> {
    let segment = writable(state, name, SegmentKind::Table)?;
    if let Some(expected) = expected_length {
        if expected != segment.length {
            return Err(SegmentError::BadOffset {
                segment: name.to_owned(),
                expected: segment.length,
                given: expected,
            });
        }
    }
    let mut new_versions = Vec::with_capacity(changes.len());
    let mut offset = segment.length;
    for change in changes {
        check_table_limits(change)?;
        // Every condition is checked against the table as it was before this batch (as
        // Pravega does): a batch may name a key twice, and the later change wins.
        let current = segment.table.get(&change.key).map(|slot| slot.version);
        check_version(name, change.expected, current)?;
        let value_length = change.value.as_ref().map_or(0, Bytes::len);
        new_versions.push(offset);
        offset += table::entry_length(change.key.len(), value_length);
    }
    let data = table::encode_entries(changes);
    if data.len() as u64 > max_append_bytes {
        return Err(SegmentError::TooLarge {
            what: "table update",
            size: data.len() as u64,
            limit: max_append_bytes,
        });
    }
    let operation = Operation::TableUpdate {
        id: segment.id,
        offset: segment.length,
        data,
        time_ms,
    };
    Ok((operation, new_versions))
}

fn check_table_limits(change: &TableChange) -> Result<(), SegmentError> {
    if change.key.is_empty() {
        return Err(SegmentError::InvalidArgument(
            "table keys must not be empty".into(),
        ));
    }
    if change.key.len() > table::MAX_KEY_BYTES {
        return Err(SegmentError::TooLarge {
            what: "table key",
            size: change.key.len() as u64,
            limit: table::MAX_KEY_BYTES as u64,
        });
    }
    let value_length = change.value.as_ref().map_or(0, Bytes::len);
    if value_length > table::MAX_VALUE_BYTES {
        return Err(SegmentError::TooLarge {
            what: "table value",
            size: value_length as u64,
            limit: table::MAX_VALUE_BYTES as u64,
        });
    }
    Ok(())
}

fn check_version(
    name: &str,
    expected: ExpectedVersion,
    current: Option<u64>,
) -> Result<(), SegmentError> {
    match (expected, current) {
        (ExpectedVersion::Any, _) | (ExpectedVersion::NotExists, None) => Ok(()),
        (ExpectedVersion::Exactly(wanted), Some(actual)) if wanted == actual => Ok(()),
        (ExpectedVersion::Exactly(_), None) => {
            Err(SegmentError::TableKeyDoesNotExist(name.to_owned()))
        }
        (ExpectedVersion::NotExists, Some(actual)) => Err(SegmentError::TableKeyVersionMismatch {
            segment: name.to_owned(),
            expected: None,
            actual: Some(actual),
        }),
        (ExpectedVersion::Exactly(wanted), Some(actual)) => {
            Err(SegmentError::TableKeyVersionMismatch {
                segment: name.to_owned(),
                expected: Some(wanted),
                actual: Some(actual),
            })
        }
    }
}

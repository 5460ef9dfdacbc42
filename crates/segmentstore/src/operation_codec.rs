//! The byte layout of operations in log records (documented in docs/formats/operations.md).
//!
//! A record is `format version: u8 = 2`, `kind: u8`, then the kind's fields. Integers are
//! little-endian; strings and byte fields are a u32 length and the bytes; lists a u32 count.

use bytes::{BufMut, Bytes, BytesMut};
use pravaha_storage::codec::{owned, DecodeError, Reader, WriteExt};

use crate::state::{
    AttributeId, ChunkRef, ContainerState, Operation, SegmentKind, SegmentMeta, TableSlot,
};

/// The version written. Version 1 has the same layout and is still read: it predates chunks
/// holding several ranges, which a version-1 reader would delete while still referenced (so it
/// must refuse version-2 records, and does).
pub const OPERATION_FORMAT_VERSION: u8 = 2;

/// The oldest version read.
const OLDEST_OPERATION_FORMAT_VERSION: u8 = 1;

mod kind {
    pub const CHECKPOINT: u8 = 1;
    pub const CREATE_SEGMENT: u8 = 2;
    pub const APPEND: u8 = 3;
    pub const SEAL: u8 = 4;
    pub const TRUNCATE: u8 = 5;
    pub const MERGE: u8 = 6;
    pub const DELETE: u8 = 7;
    pub const UPDATE_ATTRIBUTES: u8 = 8;
    pub const TABLE_UPDATE: u8 = 9;
    pub const STORED: u8 = 10;
}

/// Records are encoded into buffers of at least this size (see [`encode_into`]).
const RECORD_BUFFER_BYTES: usize = 64 << 10;

/// Serializes an operation into a log record.
pub fn encode(operation: &Operation) -> Bytes {
    encode_into(&mut BytesMut::new(), operation)
}

/// Serializes an operation into the free space of `buffer` (which holds nothing else) and
/// splits it off as a record. Records encoded one after another into the same buffer share its
/// allocation, so a container sequencing a burst of small appends allocates about once per
/// [`RECORD_BUFFER_BYTES`] rather than once per record: an allocation per record was a quarter
/// of the time spent sequencing a 1 KiB append (`perf`, `pravaha bench engine`), mostly in the
/// allocator's slow path, as the log writer thread frees what the container allocates. Once
/// every record split from an allocation is dropped, the buffer takes it up again.
pub fn encode_into(buffer: &mut BytesMut, operation: &Operation) -> Bytes {
    debug_assert!(buffer.is_empty(), "records are split off whole");
    let expected = 64 + data_len(operation);
    if buffer.capacity() < expected {
        buffer.reserve(expected.max(RECORD_BUFFER_BYTES));
    }
    let out = buffer;
    out.put_u8(OPERATION_FORMAT_VERSION);
    match operation {
        Operation::Checkpoint(state) => {
            out.put_u8(kind::CHECKPOINT);
            encode_state(out, state);
        }
        Operation::CreateSegment {
            id,
            name,
            kind: segment_kind,
            attributes,
            time_ms,
        } => {
            out.put_u8(kind::CREATE_SEGMENT);
            out.put_u64_le(*id);
            out.put_len_bytes(name.as_bytes());
            out.put_u8(encode_kind(*segment_kind));
            encode_attributes(out, attributes);
            out.put_u64_le(*time_ms);
        }
        Operation::Append {
            id,
            offset,
            data,
            attributes,
            time_ms,
        } => {
            out.put_u8(kind::APPEND);
            out.put_u64_le(*id);
            out.put_u64_le(*offset);
            out.put_len_bytes(data);
            encode_attributes(out, attributes);
            out.put_u64_le(*time_ms);
        }
        Operation::Seal { id, time_ms } => {
            out.put_u8(kind::SEAL);
            out.put_u64_le(*id);
            out.put_u64_le(*time_ms);
        }
        Operation::Truncate {
            id,
            offset,
            time_ms,
        } => {
            out.put_u8(kind::TRUNCATE);
            out.put_u64_le(*id);
            out.put_u64_le(*offset);
            out.put_u64_le(*time_ms);
        }
        Operation::Merge {
            target,
            source,
            target_offset,
            time_ms,
        } => {
            out.put_u8(kind::MERGE);
            out.put_u64_le(*target);
            out.put_u64_le(*source);
            out.put_u64_le(*target_offset);
            out.put_u64_le(*time_ms);
        }
        Operation::Delete { id } => {
            out.put_u8(kind::DELETE);
            out.put_u64_le(*id);
        }
        Operation::UpdateAttributes {
            id,
            values,
            time_ms,
        } => {
            out.put_u8(kind::UPDATE_ATTRIBUTES);
            out.put_u64_le(*id);
            encode_attributes(out, values);
            out.put_u64_le(*time_ms);
        }
        Operation::TableUpdate {
            id,
            offset,
            data,
            time_ms,
        } => {
            out.put_u8(kind::TABLE_UPDATE);
            out.put_u64_le(*id);
            out.put_u64_le(*offset);
            out.put_len_bytes(data);
            out.put_u64_le(*time_ms);
        }
        Operation::Stored { id, offset, chunk } => {
            out.put_u8(kind::STORED);
            out.put_u64_le(*id);
            out.put_u64_le(*offset);
            encode_chunk(out, chunk);
        }
    }
    out.split().freeze()
}

fn data_len(operation: &Operation) -> usize {
    match operation {
        Operation::Append { data, .. } | Operation::TableUpdate { data, .. } => data.len(),
        _ => 0,
    }
}

/// Parses a log record into an operation.
pub fn decode(record: &[u8]) -> Result<Operation, DecodeError> {
    let mut reader = Reader::new(record);
    let version = reader.u8()?;
    if !(OLDEST_OPERATION_FORMAT_VERSION..=OPERATION_FORMAT_VERSION).contains(&version) {
        return Err(DecodeError::Invalid {
            offset: 0,
            reason: format!("unsupported operation format version {version}"),
        });
    }
    let operation = match reader.u8()? {
        kind::CHECKPOINT => Operation::Checkpoint(Box::new(decode_state(&mut reader)?)),
        kind::CREATE_SEGMENT => Operation::CreateSegment {
            id: reader.u64()?,
            name: reader.string()?,
            kind: decode_kind(&mut reader)?,
            attributes: decode_attributes(&mut reader)?,
            time_ms: reader.u64()?,
        },
        kind::APPEND => Operation::Append {
            id: reader.u64()?,
            offset: reader.u64()?,
            data: owned(reader.bytes()?),
            attributes: decode_attributes(&mut reader)?,
            time_ms: reader.u64()?,
        },
        kind::SEAL => Operation::Seal {
            id: reader.u64()?,
            time_ms: reader.u64()?,
        },
        kind::TRUNCATE => Operation::Truncate {
            id: reader.u64()?,
            offset: reader.u64()?,
            time_ms: reader.u64()?,
        },
        kind::MERGE => Operation::Merge {
            target: reader.u64()?,
            source: reader.u64()?,
            target_offset: reader.u64()?,
            time_ms: reader.u64()?,
        },
        kind::DELETE => Operation::Delete { id: reader.u64()? },
        kind::UPDATE_ATTRIBUTES => Operation::UpdateAttributes {
            id: reader.u64()?,
            values: decode_attributes(&mut reader)?,
            time_ms: reader.u64()?,
        },
        kind::TABLE_UPDATE => Operation::TableUpdate {
            id: reader.u64()?,
            offset: reader.u64()?,
            data: owned(reader.bytes()?),
            time_ms: reader.u64()?,
        },
        kind::STORED => Operation::Stored {
            id: reader.u64()?,
            offset: reader.u64()?,
            chunk: decode_chunk(&mut reader)?,
        },
        other => return Err(reader.invalid(format!("unknown operation kind {other}"))),
    };
    if !reader.is_empty() {
        return Err(reader.invalid("trailing bytes after the operation"));
    }
    Ok(operation)
}

fn encode_kind(kind: SegmentKind) -> u8 {
    match kind {
        SegmentKind::Stream => 0,
        SegmentKind::Table => 1,
    }
}

fn decode_kind(reader: &mut Reader<'_>) -> Result<SegmentKind, DecodeError> {
    match reader.u8()? {
        0 => Ok(SegmentKind::Stream),
        1 => Ok(SegmentKind::Table),
        other => Err(reader.invalid(format!("unknown segment kind {other}"))),
    }
}

fn encode_attributes(out: &mut BytesMut, attributes: &[(AttributeId, i64)]) {
    out.put_count(attributes.len());
    for (id, value) in attributes {
        out.put_u128_le(*id);
        out.put_i64_le(*value);
    }
}

fn decode_attributes(reader: &mut Reader<'_>) -> Result<Vec<(AttributeId, i64)>, DecodeError> {
    let count = reader.count()?;
    (0..count)
        .map(|_| Ok((reader.u128()?, reader.i64()?)))
        .collect()
}

fn encode_chunk(out: &mut BytesMut, chunk: &ChunkRef) {
    out.put_len_bytes(chunk.name.as_bytes());
    out.put_u64_le(chunk.chunk_offset);
    out.put_u64_le(chunk.length);
}

fn decode_chunk(reader: &mut Reader<'_>) -> Result<ChunkRef, DecodeError> {
    Ok(ChunkRef {
        name: reader.string()?,
        chunk_offset: reader.u64()?,
        length: reader.u64()?,
    })
}

/// Checkpoint body: next segment id, then each segment (sorted by id, so that equal states
/// encode to equal bytes).
fn encode_state(out: &mut BytesMut, state: &ContainerState) {
    out.put_u64_le(state.next_segment_id);
    let mut segments: Vec<&SegmentMeta> = state.segments.values().collect();
    segments.sort_by_key(|segment| segment.id);
    out.put_count(segments.len());
    for segment in segments {
        out.put_u64_le(segment.id);
        out.put_len_bytes(segment.name.as_bytes());
        out.put_u8(encode_kind(segment.kind));
        out.put_u64_le(segment.length);
        out.put_u64_le(segment.start_offset);
        out.put_bool_le(segment.sealed);
        out.put_u64_le(segment.last_modified_ms);
        let attributes: Vec<(AttributeId, i64)> =
            segment.attributes.iter().map(|(k, v)| (*k, *v)).collect();
        encode_attributes(out, &attributes);
        out.put_count(segment.chunks.len());
        for (start, chunk) in &segment.chunks {
            out.put_u64_le(*start);
            encode_chunk(out, chunk);
        }
        out.put_count(segment.table.len());
        for (key, slot) in &segment.table {
            out.put_len_bytes(key);
            out.put_u64_le(slot.version);
            out.put_u32_le(slot.value_length);
        }
    }
}

fn decode_state(reader: &mut Reader<'_>) -> Result<ContainerState, DecodeError> {
    let mut state = ContainerState {
        next_segment_id: reader.u64()?,
        ..ContainerState::default()
    };
    let count = reader.count()?;
    for _ in 0..count {
        let segment = decode_segment(reader)?;
        if segment.id >= state.next_segment_id || state.segments.contains_key(&segment.id) {
            return Err(reader.invalid("duplicate or out-of-range segment id in checkpoint"));
        }
        if state
            .names
            .insert(segment.name.clone(), segment.id)
            .is_some()
        {
            return Err(reader.invalid("duplicate segment name in checkpoint"));
        }
        state.segments.insert(segment.id, segment);
    }
    Ok(state)
}

fn decode_segment(reader: &mut Reader<'_>) -> Result<SegmentMeta, DecodeError> {
    let id = reader.u64()?;
    let name = reader.string()?;
    let kind = decode_kind(reader)?;
    let length = reader.u64()?;
    let start_offset = reader.u64()?;
    let sealed = reader.bool()?;
    let last_modified_ms = reader.u64()?;
    let attributes = decode_attributes(reader)?.into_iter().collect();
    let chunk_count = reader.count()?;
    let mut chunks = std::collections::BTreeMap::new();
    for _ in 0..chunk_count {
        let start = reader.u64()?;
        chunks.insert(start, decode_chunk(reader)?);
    }
    let key_count = reader.count()?;
    let mut table = std::collections::BTreeMap::new();
    for _ in 0..key_count {
        let key = owned(reader.bytes()?);
        let slot = TableSlot {
            version: reader.u64()?,
            value_length: reader.u32()?,
        };
        table.insert(key, slot);
    }
    if start_offset > length {
        return Err(reader.invalid("segment start offset beyond its length"));
    }
    Ok(SegmentMeta {
        id,
        name,
        kind,
        length,
        start_offset,
        sealed,
        last_modified_ms,
        attributes,
        chunks,
        table,
    })
}

#[cfg(test)]
mod tests;

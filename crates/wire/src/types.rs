//! Structures embedded in commands: table keys, values and entries, conditional attribute
//! updates and chunk descriptions.

use bytes::Bytes;

use crate::codec::{Field, Reader, Writer};
use crate::WireError;

/// A table key and its version condition (requests) or current version (replies).
///
/// Wire layout: `payload_size:i32 (= 4 + key length + 8), key_length:i32, key, version:i64`.
/// The version is always written and read, as the Rust client does; Java omits it for an empty
/// key, so empty keys must not be sent (and are invalid in table segments anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKey {
    pub data: Bytes,
    /// [`crate::NO_VERSION`], [`crate::NOT_EXISTS`], or a version (≥ 0).
    pub key_version: i64,
}

/// A table value. Wire layout: `payload_size:i32 (= 4 + value length), value_length:i32, value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableValue {
    pub data: Bytes,
}

/// `count:i32`, then `count` × (TableKey, TableValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntries {
    pub entries: Vec<(TableKey, TableValue)>,
}

/// One attribute condition of MergeSegments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalAttributeUpdate {
    pub attribute_id: u128,
    /// 1 = replace, 4 = replace if equals.
    pub update_type: u8,
    pub new_value: i64,
    pub old_value: i64,
}

/// One chunk of a segment in long-term storage (StorageChunksListed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    pub length_in_metadata: i64,
    pub length_in_storage: i64,
    pub start_offset: i64,
    pub chunk_name: String,
    pub exists_in_storage: bool,
}

/// Bytes of a TableKey's `payload_size` besides the key: the key length and the version.
const KEY_PAYLOAD_OVERHEAD: usize = 4 + 8;
/// Bytes of a TableValue's `payload_size` besides the value: the value length.
const VALUE_PAYLOAD_OVERHEAD: usize = 4;

/// Reads `payload_size` and the data length after it, and checks that they agree. Both Java
/// and Rust senders compute `payload_size` this way; the data length is what is decoded by.
fn read_sized(
    reader: &mut Reader,
    overhead: usize,
    fields: [&'static str; 2],
) -> Result<Bytes, WireError> {
    let at = reader.offset();
    let payload_size = reader.i32(fields[0])?;
    let length = reader.length(fields[1])?;
    if usize::try_from(payload_size).ok() != length.checked_add(overhead) {
        return Err(reader.invalid_at(at, fields[0], "payload size disagrees with data length"));
    }
    reader.take(length, fields[1])
}

fn write_sized(
    writer: &mut Writer<'_>,
    data: &[u8],
    overhead: usize,
    fields: [&'static str; 2],
) -> Result<(), WireError> {
    // A payload size that fits in i32 also bounds the data length written after it.
    writer.length(data.len().saturating_add(overhead), fields[0])?;
    writer.bytes(data, fields[1])
}

impl Field for TableKey {
    const MIN_SIZE: usize = 4 + 4 + 8;
    fn read(reader: &mut Reader, _field: &'static str) -> Result<Self, WireError> {
        let fields = ["table_key.payload_size", "table_key.data"];
        let data = read_sized(reader, KEY_PAYLOAD_OVERHEAD, fields)?;
        let key_version = reader.i64("table_key.key_version")?;
        Ok(Self { data, key_version })
    }
    fn write(&self, writer: &mut Writer<'_>, _field: &'static str) -> Result<(), WireError> {
        let fields = ["table_key.payload_size", "table_key.data"];
        write_sized(writer, &self.data, KEY_PAYLOAD_OVERHEAD, fields)?;
        writer.i64(self.key_version);
        Ok(())
    }
}

impl Field for TableValue {
    const MIN_SIZE: usize = 4 + 4;
    fn read(reader: &mut Reader, _field: &'static str) -> Result<Self, WireError> {
        let fields = ["table_value.payload_size", "table_value.data"];
        let data = read_sized(reader, VALUE_PAYLOAD_OVERHEAD, fields)?;
        Ok(Self { data })
    }
    fn write(&self, writer: &mut Writer<'_>, _field: &'static str) -> Result<(), WireError> {
        let fields = ["table_value.payload_size", "table_value.data"];
        write_sized(writer, &self.data, VALUE_PAYLOAD_OVERHEAD, fields)
    }
}

impl Field for TableEntries {
    const MIN_SIZE: usize = 4;
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
        let entries = Vec::read(reader, field)?;
        Ok(Self { entries })
    }
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError> {
        self.entries.write(writer, field)
    }
}

impl Field for ConditionalAttributeUpdate {
    const MIN_SIZE: usize = 16 + 1 + 8 + 8;
    fn read(reader: &mut Reader, _field: &'static str) -> Result<Self, WireError> {
        Ok(Self {
            attribute_id: reader.u128("attribute_update.attribute_id")?,
            update_type: reader.u8("attribute_update.update_type")?,
            new_value: reader.i64("attribute_update.new_value")?,
            old_value: reader.i64("attribute_update.old_value")?,
        })
    }
    fn write(&self, writer: &mut Writer<'_>, _field: &'static str) -> Result<(), WireError> {
        writer.u128(self.attribute_id);
        writer.u8(self.update_type);
        writer.i64(self.new_value);
        writer.i64(self.old_value);
        Ok(())
    }
}

impl Field for ChunkInfo {
    const MIN_SIZE: usize = 8 + 8 + 8 + 2 + 1;
    fn read(reader: &mut Reader, _field: &'static str) -> Result<Self, WireError> {
        Ok(Self {
            length_in_metadata: reader.i64("chunk.length_in_metadata")?,
            length_in_storage: reader.i64("chunk.length_in_storage")?,
            start_offset: reader.i64("chunk.start_offset")?,
            chunk_name: reader.string("chunk.chunk_name")?,
            exists_in_storage: reader.bool("chunk.exists_in_storage")?,
        })
    }
    fn write(&self, writer: &mut Writer<'_>, _field: &'static str) -> Result<(), WireError> {
        writer.i64(self.length_in_metadata);
        writer.i64(self.length_in_storage);
        writer.i64(self.start_offset);
        writer.string(&self.chunk_name, "chunk.chunk_name")?;
        writer.bool(self.exists_in_storage);
        Ok(())
    }
}

//! Table segments: the layout of table entries in a segment and the requests that change them.
//!
//! A table segment is an ordinary segment whose bytes are a sequence of entries; a key's
//! version is the offset of its latest entry. Layout (little-endian, documented in
//! docs/formats/table-entry.md):
//!
//! | offset | width | meaning |
//! |---|---|---|
//! | 0 | 1 | entry format version (1) |
//! | 1 | 1 | flags: bit 0 set = removal (tombstone) |
//! | 2 | 4 | key length |
//! | 6 | 4 | value length (0 for a removal) |
//! | 10 | key length | key |
//! | 10 + key length | value length | value |

use bytes::{BufMut, Bytes};
use pravaha_storage::codec::{DecodeError, Reader};

pub const ENTRY_VERSION: u8 = 1;
pub const ENTRY_HEADER_LEN: usize = 10;
const FLAG_REMOVAL: u8 = 1;
/// Longest key accepted (as in Pravega).
pub const MAX_KEY_BYTES: usize = 8192;
/// Largest value accepted (as in Pravega: 1 MiB less 8 KiB for the key).
pub const MAX_VALUE_BYTES: usize = 1_040_384;

/// The version a conditional table change expects a key to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Unconditional.
    Any,
    /// The key must not exist.
    NotExists,
    /// The key must exist with exactly this version.
    Exactly(u64),
}

/// One change in a table update: a new value, or a removal when `value` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange {
    pub key: Bytes,
    pub value: Option<Bytes>,
    pub expected: ExpectedVersion,
}

/// A live entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub key: Bytes,
    pub value: Bytes,
    pub version: u64,
}

/// An entry as found in the segment: an update or a removal, with its version (offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Bytes,
    pub value: Option<Bytes>,
    pub version: u64,
}

/// Serializes `changes` as consecutive entries.
pub fn encode_entries(changes: &[TableChange]) -> Bytes {
    let size: usize = changes
        .iter()
        .map(|c| ENTRY_HEADER_LEN + c.key.len() + c.value.as_ref().map_or(0, Bytes::len))
        .sum();
    let mut out = Vec::with_capacity(size);
    for change in changes {
        let value = change.value.as_deref().unwrap_or_default();
        out.put_u8(ENTRY_VERSION);
        out.put_u8(if change.value.is_none() {
            FLAG_REMOVAL
        } else {
            0
        });
        out.put_u32_le(u32::try_from(change.key.len()).expect("keys are bounded"));
        out.put_u32_le(u32::try_from(value.len()).expect("values are bounded"));
        out.put_slice(&change.key);
        out.put_slice(value);
    }
    Bytes::from(out)
}

/// Decodes the complete entries at the start of `data`, which lies at segment offset `offset`.
/// Returns them and the number of bytes they take; an incomplete entry at the end is left out.
pub fn decode_entries(data: &Bytes, offset: u64) -> Result<(Vec<RawEntry>, usize), DecodeError> {
    let mut entries = Vec::new();
    let mut position = 0;
    loop {
        let mut reader = Reader::new(&data[position..]);
        if reader.remaining() < ENTRY_HEADER_LEN {
            break;
        }
        let version = reader.u8()?;
        if version != ENTRY_VERSION {
            return Err(DecodeError::Invalid {
                offset: position,
                reason: format!("unknown table entry version {version}"),
            });
        }
        let flags = reader.u8()?;
        let key_length = reader.u32()? as usize;
        let value_length = reader.u32()? as usize;
        if key_length > MAX_KEY_BYTES || value_length > MAX_VALUE_BYTES {
            return Err(DecodeError::Invalid {
                offset: position,
                reason: "table entry larger than the limits".into(),
            });
        }
        if reader.remaining() < key_length + value_length {
            break;
        }
        let key_start = position + ENTRY_HEADER_LEN;
        let value_start = key_start + key_length;
        let removal = flags & FLAG_REMOVAL != 0;
        entries.push(RawEntry {
            key: data.slice(key_start..value_start),
            value: (!removal).then(|| data.slice(value_start..value_start + value_length)),
            version: offset + position as u64,
        });
        position = value_start + value_length;
    }
    Ok((entries, position))
}

/// The length of the entry for `key` with a value of `value_length` bytes.
pub fn entry_length(key_length: usize, value_length: usize) -> u64 {
    (ENTRY_HEADER_LEN + key_length + value_length) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_entry_v1() {
        let changes = [
            TableChange {
                key: Bytes::from_static(b"k"),
                value: Some(Bytes::from_static(b"vv")),
                expected: ExpectedVersion::Any,
            },
            TableChange {
                key: Bytes::from_static(b"k"),
                value: None,
                expected: ExpectedVersion::Any,
            },
        ];
        let encoded = encode_entries(&changes);
        let hex: String = encoded.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "01", "00", "01000000", "02000000", "6b", "7676", // update k = "vv"
                "01", "01", "01000000", "00000000", "6b", // removal of k
            )
        );
        let (entries, used) = decode_entries(&encoded, 100).unwrap();
        assert_eq!(used, encoded.len());
        assert_eq!(entries[0].version, 100);
        assert_eq!(entries[0].value.as_deref(), Some(b"vv".as_slice()));
        assert_eq!(entries[1].version, 113);
        assert_eq!(entries[1].value, None);
    }

    #[test]
    fn incomplete_entries_are_left_for_later() {
        let encoded = encode_entries(&[TableChange {
            key: Bytes::from_static(b"key"),
            value: Some(Bytes::from_static(b"value")),
            expected: ExpectedVersion::Any,
        }]);
        for cut in 0..encoded.len() {
            let (entries, used) = decode_entries(&encoded.slice(..cut), 0).unwrap();
            assert!(entries.is_empty());
            assert_eq!(used, 0);
        }
    }
}

//! The bytes of a synchronizer table, exactly as the official Rust client (`pravega-client`
//! 0.3.7, `sync::synchronizer`) writes them, so both clients share one table.
//!
//! | part | encoding |
//! |---|---|
//! | table segment | `<scope>/<name>_kvtable/0.#epoch.0` |
//! | table key | CBOR text string (serde_cbor) of the composite key |
//! | composite key of an inner key | `{outer length:02}{outer}/{inner}`, e.g. `06config/default` |
//! | composite key of an outer key | `{outer length:02}{outer}`: the outer key's version marker |
//! | table value | CBOR map (serde_cbor) `{"type_id": text, "data": array of u8}` ([`Value`]) |
//! | `Value::data` | CBOR (serde_cbor) of the application value, e.g. a reader's segment map |
//! | outer key marker value | `Value { type_id: "blob", data: [0] }` |
//! | removed inner key | first written as `Value { type_id: "tombstone", data: CBOR {} }`, then removed |
//!
//! Every write of an inner key also rewrites its outer key's marker, both conditional on the
//! versions last seen, so two writers touching the same outer key conflict even on different
//! inner keys.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The suffix of a synchronizer's table name (the stream part of its segment name).
pub const TABLE_SUFFIX: &str = "_kvtable";
/// The `type_id` of a removed inner key, before the key itself is removed.
pub const TOMBSTONE: &str = "tombstone";
/// The `type_id` of an outer key's version marker.
pub const MARKER_TYPE: &str = "blob";
/// Outer keys are prefixed by their length in two decimal digits.
pub const MAX_OUTER_KEY_LEN: usize = 99;

/// A value in a synchronizer table: what it holds (`type_id`, free text the official client
/// sets to the Rust type's name) and its CBOR bytes.
///
/// ```
/// use std::collections::BTreeMap;
///
/// use pravaha_client::sync::Value;
///
/// let offsets = BTreeMap::from([("orders/0.#epoch.0".to_owned(), 1024_i64)]);
/// let value = Value::encode("Offsets", &offsets)?;
/// assert_eq!(value.type_id, "Offsets");
/// assert_eq!(value.decode::<BTreeMap<String, i64>>()?, offsets);
/// assert!(value.decode::<String>().is_err()); // a map, not a string
/// assert!(Value::tombstone().is_tombstone() && !value.is_tombstone());
/// # Ok::<(), pravaha_client::sync::FormatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    pub type_id: String,
    pub data: Vec<u8>,
}

impl Value {
    /// `data` encoded as CBOR, labelled `type_id`.
    pub fn encode<T: Serialize>(type_id: &str, data: &T) -> Result<Self, FormatError> {
        Ok(Self {
            type_id: type_id.to_owned(),
            data: serde_cbor::to_vec(data).map_err(FormatError::encode)?,
        })
    }

    /// The CBOR bytes decoded as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, FormatError> {
        serde_cbor::from_slice(&self.data).map_err(|error| FormatError::Decode {
            what: self.type_id.clone(),
            message: error.to_string(),
        })
    }

    /// Whether this value marks a removed inner key.
    pub fn is_tombstone(&self) -> bool {
        self.type_id == TOMBSTONE
    }

    /// The marker written under an outer key each time one of its inner keys changes.
    pub fn marker() -> Self {
        Self {
            type_id: MARKER_TYPE.to_owned(),
            data: vec![0],
        }
    }

    /// The value that marks an inner key as removed.
    pub fn tombstone() -> Self {
        #[derive(Serialize)]
        struct Tombstone {}
        Self {
            type_id: TOMBSTONE.to_owned(),
            // An empty struct is an empty CBOR map (0xa0); it cannot fail.
            data: serde_cbor::to_vec(&Tombstone {}).unwrap_or_else(|_| vec![0xa0]),
        }
    }
}

/// A synchronizer key or value that cannot be encoded or decoded.
///
/// ```
/// use pravaha_client::sync::format::{composite_key, split_key};
/// use pravaha_client::sync::FormatError;
///
/// let long = "x".repeat(100);
/// assert_eq!(
///     composite_key(&long, Some("inner")),
///     Err(FormatError::OuterKeyTooLong { key: long.clone() })
/// );
/// assert_eq!(split_key("config"), Err(FormatError::BadKey { key: "config".into() }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("outer key {key:?} is longer than {MAX_OUTER_KEY_LEN} bytes")]
    OuterKeyTooLong { key: String },
    #[error("{key:?} is not a synchronizer key")]
    BadKey { key: String },
    #[error("could not decode {what}: {message}")]
    Decode { what: String, message: String },
    #[error("could not encode a value: {message}")]
    Encode { message: String },
}

impl FormatError {
    fn encode(error: serde_cbor::Error) -> Self {
        Self::Encode {
            message: error.to_string(),
        }
    }
}

/// The composite key of `outer` (and `inner`, or the outer key's marker when `None`).
///
/// ```
/// use pravaha_client::sync::format::{composite_key, split_key};
///
/// let key = composite_key("config", Some("default"))?;
/// assert_eq!(key, "06config/default");
/// assert_eq!(split_key(&key)?, ("config".to_owned(), Some("default".to_owned())));
/// assert_eq!(composite_key("config", None)?, "06config");
/// # Ok::<(), pravaha_client::sync::FormatError>(())
/// ```
pub fn composite_key(outer: &str, inner: Option<&str>) -> Result<String, FormatError> {
    if outer.len() > MAX_OUTER_KEY_LEN {
        return Err(FormatError::OuterKeyTooLong {
            key: outer.to_owned(),
        });
    }
    Ok(match inner {
        Some(inner) => format!("{:02}{outer}/{inner}", outer.len()),
        None => format!("{:02}{outer}", outer.len()),
    })
}

/// The outer and inner key of a composite key (`None` inner: the outer key's marker).
pub fn split_key(key: &str) -> Result<(String, Option<String>), FormatError> {
    let bad = || FormatError::BadKey {
        key: key.to_owned(),
    };
    let digits = key.get(..2).ok_or_else(bad)?;
    if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(bad());
    }
    let outer_len: usize = digits.parse().map_err(|_| bad())?;
    let outer = key.get(2..2 + outer_len).ok_or_else(bad)?;
    let rest = &key[2 + outer_len..];
    if rest.is_empty() {
        return Ok((outer.to_owned(), None));
    }
    let inner = rest.strip_prefix('/').ok_or_else(bad)?;
    Ok((outer.to_owned(), Some(inner.to_owned())))
}

/// The table key bytes of a composite key: a CBOR text string.
pub fn encode_key(composite: &str) -> Bytes {
    // A string always encodes.
    Bytes::from(serde_cbor::to_vec(&composite).unwrap_or_default())
}

/// The composite key in table key bytes; the inverse of [`encode_key`].
pub fn decode_key(bytes: &[u8]) -> Result<String, FormatError> {
    serde_cbor::from_slice(bytes).map_err(|error| FormatError::Decode {
        what: "a table key".into(),
        message: error.to_string(),
    })
}

/// The table value bytes of `value`: a CBOR map of its `type_id` and `data`.
pub fn encode_value(value: &Value) -> Result<Bytes, FormatError> {
    serde_cbor::to_vec(value)
        .map(Bytes::from)
        .map_err(FormatError::encode)
}

/// The [`Value`] in table value bytes; the inverse of [`encode_value`].
pub fn decode_value(bytes: &[u8]) -> Result<Value, FormatError> {
    serde_cbor::from_slice(bytes).map_err(|error| FormatError::Decode {
        what: "a table value".into(),
        message: error.to_string(),
    })
}

/// The table segment of synchronizer `name` in `scope`.
pub fn table_segment_name(scope: &str, name: &str) -> String {
    format!("{scope}/{name}{TABLE_SUFFIX}/0.#epoch.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_round_trip() {
        assert_eq!(
            composite_key("config", Some("default")).unwrap(),
            "06config/default"
        );
        assert_eq!(composite_key("config", None).unwrap(), "06config");
        let segment = composite_key("unassigned_segments", Some("sc/st/0.#epoch.0")).unwrap();
        assert_eq!(segment, "19unassigned_segments/sc/st/0.#epoch.0");
        assert_eq!(
            split_key(&segment).unwrap(),
            (
                "unassigned_segments".into(),
                Some("sc/st/0.#epoch.0".into())
            )
        );
        assert_eq!(split_key("06config").unwrap(), ("config".into(), None));
        assert!(composite_key(&"x".repeat(100), None).is_err());
        for bad in ["", "0", "x1abc", "10short", "03abcdef"] {
            assert!(split_key(bad).is_err(), "{bad:?}");
        }
    }

    /// Golden bytes, field by field.
    #[test]
    fn keys_and_values_have_the_official_bytes() {
        // CBOR text string, major type 3, length 8 in the initial byte (0x60 + 8).
        assert_eq!(&encode_key("06config")[..], b"\x6806config");
        let marker = encode_value(&Value::marker()).unwrap();
        let expected: &[u8] = &[
            0xa2, // map of 2 pairs
            0x67, b't', b'y', b'p', b'e', b'_', b'i', b'd', // "type_id"
            0x64, b'b', b'l', b'o', b'b', // "blob"
            0x64, b'd', b'a', b't', b'a', // "data"
            0x81, 0x00, // array of 1: 0
        ];
        assert_eq!(&marker[..], expected);
        assert_eq!(decode_value(&marker).unwrap(), Value::marker());
        assert_eq!(Value::tombstone().data, vec![0xa0]);
        assert_eq!(decode_key(b"\x6806config").unwrap(), "06config");
        assert!(decode_value(b"\xff").is_err());
    }

    #[test]
    fn values_decode_what_they_encode() {
        let value = Value::encode("u64", &u64::MAX).unwrap();
        assert_eq!(value.data[0], 0x1b, "an 8-byte unsigned integer");
        assert_eq!(value.decode::<u64>().unwrap(), u64::MAX);
        assert!(value.decode::<String>().is_err());
        assert_eq!(
            table_segment_name("sc", "group"),
            "sc/group_kvtable/0.#epoch.0"
        );
    }
}

//! The vocabulary of Key-Value Tables: names, configurations, keys, versions, entries,
//! modifications and errors.

use std::fmt;

use bytes::{Bytes, BytesMut};

use crate::controller::ControllerError;
use crate::segment::ReaderError;

/// A Key-Value Table, named by its scope and its name.
///
/// ```
/// use pravaha_client::table::KeyValueTableInfo;
///
/// let table = KeyValueTableInfo::new("examples", "accounts");
/// assert_eq!(table.to_string(), "examples/accounts");
/// assert_eq!(table.partition_segment(1), "examples/accounts_kvtable/1.#epoch.0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyValueTableInfo {
    pub scope: String,
    pub name: String,
}

impl KeyValueTableInfo {
    /// Table `name` of scope `scope`.
    pub fn new(scope: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            name: name.into(),
        }
    }

    /// `<name>_kvtable`: the pseudo-stream the table's segments are named after (as Pravega).
    pub fn stream_name(&self) -> String {
        format!("{}_kvtable", self.name)
    }

    /// The segment-store name of partition `id` (`<scope>/<name>_kvtable/<n>.#epoch.<e>`).
    pub fn partition_segment(&self, id: i64) -> String {
        pravaha_types::qualified_segment_name(&self.scope, &self.stream_name(), id)
    }
}

impl fmt::Display for KeyValueTableInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.scope, self.name)
    }
}

/// How a Key-Value Table is laid out (Pravega's `KeyValueTableConfiguration`): how many
/// partitions (table segments) and how long every key is. Every key is a primary key of exactly
/// `primary_key_length` bytes followed by a secondary key of exactly `secondary_key_length`
/// bytes (0: no secondary keys). The primary key picks the partition, so keys sharing a primary
/// key (a *key family*) live together and can be updated atomically.
///
/// ```
/// use pravaha_client::table::KeyValueTableConfiguration;
///
/// let config = KeyValueTableConfiguration::new(4, 8, 4);
/// assert_eq!(config.key_length(), 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValueTableConfiguration {
    pub partition_count: u32,
    pub primary_key_length: u32,
    pub secondary_key_length: u32,
    /// Segment chunk size on the segment store; 0 = the server's default.
    pub rollover_size_bytes: u64,
}

impl KeyValueTableConfiguration {
    /// `partition_count` partitions and keys of `primary_key_length` + `secondary_key_length`
    /// bytes, with the server's default rollover size.
    pub fn new(partition_count: u32, primary_key_length: u32, secondary_key_length: u32) -> Self {
        Self {
            partition_count,
            primary_key_length,
            secondary_key_length,
            rollover_size_bytes: 0,
        }
    }

    /// The length of every key of the table's segments: primary plus secondary.
    pub fn key_length(&self) -> u32 {
        self.primary_key_length + self.secondary_key_length
    }
}

/// A key: a primary key and a secondary key (empty when the table has none), each of exactly
/// the table's configured length.
///
/// ```
/// use pravaha_client::table::TableKey;
///
/// let key = TableKey::new(&b"acct0001"[..], &b"bal"[..]);
/// assert_eq!(&key.to_bytes()[..], b"acct0001bal");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    pub primary: Bytes,
    pub secondary: Bytes,
}

impl TableKey {
    /// A key of a primary and a secondary part ([`Self::primary`] for tables without
    /// secondary keys).
    pub fn new(primary: impl Into<Bytes>, secondary: impl Into<Bytes>) -> Self {
        Self {
            primary: primary.into(),
            secondary: secondary.into(),
        }
    }

    /// A key of a table without secondary keys.
    pub fn primary(primary: impl Into<Bytes>) -> Self {
        Self::new(primary, Bytes::new())
    }

    /// The key as stored: primary ‖ secondary.
    pub fn to_bytes(&self) -> Bytes {
        let mut bytes = BytesMut::with_capacity(self.primary.len() + self.secondary.len());
        bytes.extend_from_slice(&self.primary);
        bytes.extend_from_slice(&self.secondary);
        bytes.freeze()
    }

    /// Splits a stored key at `primary_length`.
    pub(crate) fn from_bytes(mut bytes: Bytes, primary_length: usize) -> Self {
        let at = primary_length.min(bytes.len());
        let primary = bytes.split_to(at);
        Self {
            primary,
            secondary: bytes,
        }
    }
}

/// The version of an entry: the offset of its last update in the partition's segment (as in
/// Pravega). Conditional updates and removals name the version they expect.
///
/// ```
/// use pravaha_client::table::Version;
///
/// assert!(Version(0) < Version(120));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub i64);

/// A key, its value and its version.
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::table::{TableEntry, TableKey, Version};
///
/// let entry = TableEntry {
///     key: TableKey::primary(&b"k"[..]),
///     value: Bytes::from_static(b"v"),
///     version: Version(0),
/// };
/// assert_eq!(&entry.value[..], b"v");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub key: TableKey,
    pub value: Bytes,
    pub version: Version,
}

/// One change of an atomic [`update`](super::KeyValueTable::update) (Pravega's
/// `TableModification`).
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::table::{TableKey, TableModification, Version};
///
/// let key = TableKey::new(&b"acct0001"[..], &b"bal"[..]);
/// let change = TableModification::Replace { key, value: Bytes::from_static(b"10"), version: Version(0) };
/// assert!(!change.is_removal());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableModification {
    /// Sets the value whatever the key's state.
    Put { key: TableKey, value: Bytes },
    /// Sets the value only if the key does not exist.
    Insert { key: TableKey, value: Bytes },
    /// Sets the value only if the key's version is `version`.
    Replace {
        key: TableKey,
        value: Bytes,
        version: Version,
    },
    /// Removes the key; with a version, only if the key's version is that one.
    Remove {
        key: TableKey,
        version: Option<Version>,
    },
}

impl TableModification {
    /// The key the modification touches.
    pub fn key(&self) -> &TableKey {
        match self {
            Self::Put { key, .. }
            | Self::Insert { key, .. }
            | Self::Replace { key, .. }
            | Self::Remove { key, .. } => key,
        }
    }

    /// Whether the modification removes its key.
    pub fn is_removal(&self) -> bool {
        matches!(self, Self::Remove { .. })
    }

    /// The wire condition: no condition, "must not exist", or a version.
    pub(crate) fn wire_version(&self) -> i64 {
        match self {
            Self::Put { .. } | Self::Remove { version: None, .. } => pravaha_wire::NO_VERSION,
            Self::Insert { .. } => pravaha_wire::NOT_EXISTS,
            Self::Replace { version, .. }
            | Self::Remove {
                version: Some(version),
                ..
            } => version.0,
        }
    }
}

/// Why a table request failed.
///
/// ```
/// use pravaha_client::table::TableError;
///
/// let error = TableError::BadKeyVersion { table: "sc/t".into() };
/// assert!(error.is_conditional_failure());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A condition failed: a key's version was not the expected one, or an inserted key exists
    /// already. Nothing of the request was applied.
    #[error("key-value table {table}: a key's version was not the expected one")]
    BadKeyVersion { table: String },
    /// A conditional removal or replacement named a key that does not exist. Nothing of the
    /// request was applied.
    #[error("key-value table {table}: a key does not exist")]
    NoSuchKey { table: String },
    /// The table (or one of its partitions) does not exist.
    #[error("key-value table {table} does not exist")]
    TableDoesNotExist { table: String },
    /// A key's primary or secondary part has the wrong length for the table.
    #[error("invalid key for key-value table {table}: {message}")]
    InvalidKey { table: String, message: String },
    /// The request is not valid (e.g. an atomic update across key families).
    #[error("invalid request on key-value table {table}: {message}")]
    InvalidArgument { table: String, message: String },
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// The segment store failed or could not be reached.
    #[error("key-value table {table}: {source}")]
    Segment { table: String, source: ReaderError },
}

impl TableError {
    /// Whether a condition failed ([`Self::BadKeyVersion`], [`Self::NoSuchKey`]): read again
    /// and retry.
    pub fn is_conditional_failure(&self) -> bool {
        matches!(self, Self::BadKeyVersion { .. } | Self::NoSuchKey { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_into_primary_and_secondary() {
        let key = TableKey::new(&b"primary1"[..], &b"sec"[..]);
        assert_eq!(TableKey::from_bytes(key.to_bytes(), 8), key);
        let no_secondary = TableKey::primary(&b"onlykey"[..]);
        assert_eq!(
            TableKey::from_bytes(no_secondary.to_bytes(), 7),
            no_secondary
        );
        // A key shorter than the primary length (from a misbehaving server) does not panic.
        assert_eq!(
            TableKey::from_bytes(Bytes::from_static(b"ab"), 8),
            TableKey::primary(&b"ab"[..])
        );
    }

    #[test]
    fn modifications_carry_pravegas_version_conditions() {
        let key = TableKey::primary(&b"k"[..]);
        let value = Bytes::from_static(b"v");
        let put = TableModification::Put {
            key: key.clone(),
            value: value.clone(),
        };
        let insert = TableModification::Insert {
            key: key.clone(),
            value: value.clone(),
        };
        let replace = TableModification::Replace {
            key: key.clone(),
            value,
            version: Version(42),
        };
        let remove = TableModification::Remove {
            key: key.clone(),
            version: None,
        };
        let remove_if = TableModification::Remove {
            key,
            version: Some(Version(7)),
        };
        assert_eq!(put.wire_version(), pravaha_wire::NO_VERSION);
        assert_eq!(insert.wire_version(), pravaha_wire::NOT_EXISTS);
        assert_eq!(replace.wire_version(), 42);
        assert_eq!(remove.wire_version(), pravaha_wire::NO_VERSION);
        assert_eq!(remove_if.wire_version(), 7);
        assert!(remove.is_removal() && !put.is_removal());
    }
}

//! The controller's metadata: JSON records in one table segment on the segment store, reached
//! through the segment protocol. Every change is a compare-and-set on the key's version, so
//! concurrent requests (and several controllers) never lose an update.
//!
//! Keys: `scope/<scope>` → [`ScopeRecord`], `stream/<scope>/<stream>` → [`StreamRecord`].
//! Names cannot contain `/`, so keys are unambiguous and a scope's streams share a prefix.

use bytes::Bytes;
use pravaha_segment_client::{ClientError, KeyVersion, SegmentClient, TablePage};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::directory::SegmentStores;
use crate::error::ControllerError;

/// The table segment holding the controller's records.
pub const METADATA_TABLE: &str = "_system/_controller_metadata/0.#epoch.0";

/// A record with the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
}

#[derive(Clone)]
pub struct MetadataTable {
    client: SegmentClient,
    stores: SegmentStores,
}

impl MetadataTable {
    pub fn new(client: SegmentClient, stores: SegmentStores) -> Self {
        Self { client, stores }
    }

    fn at(&self) -> std::net::SocketAddr {
        self.stores.locate(METADATA_TABLE).address
    }

    /// Creates the table if it is not there yet.
    pub async fn ensure_exists(&self) -> Result<(), ControllerError> {
        self.client
            .create_table_segment(self.at(), METADATA_TABLE, "")
            .await
            .map_err(ControllerError::Metadata)?;
        Ok(())
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, ControllerError> {
        let found = self
            .client
            .table_get(
                self.at(),
                METADATA_TABLE,
                vec![Bytes::from(key.to_owned())],
                "",
            )
            .await
            .map_err(ControllerError::Metadata)?;
        match found.into_iter().next().flatten() {
            None => Ok(None),
            Some(entry) => Ok(Some(Versioned {
                value: decode(key, &entry.value)?,
                version: entry.version,
            })),
        }
    }

    /// Writes `value` under `key` if the key does not exist; `None` if it does.
    pub async fn create<T: Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<Option<i64>, ControllerError> {
        self.write(key, value, KeyVersion::NotExists).await
    }

    /// Replaces the value read at `version`; `None` if it changed since.
    pub async fn replace<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        version: i64,
    ) -> Result<Option<i64>, ControllerError> {
        self.write(key, value, KeyVersion::Exactly(version)).await
    }

    async fn write<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        expected: KeyVersion,
    ) -> Result<Option<i64>, ControllerError> {
        let json = serde_json::to_vec(value).map_err(|error| {
            ControllerError::Internal(format!("encoding the record {key}: {error}"))
        })?;
        let result = self
            .client
            .table_update(
                self.at(),
                METADATA_TABLE,
                vec![(Bytes::from(key.to_owned()), Bytes::from(json), expected)],
                None,
                "",
            )
            .await;
        match result {
            Ok(versions) => Ok(versions.first().copied()),
            Err(ClientError::TableKeyBadVersion(_) | ClientError::TableKeyDoesNotExist(_)) => {
                Ok(None)
            }
            Err(error) => Err(ControllerError::Metadata(error)),
        }
    }

    /// Removes the key if it is still at `version`; false if it changed or is gone.
    pub async fn remove(&self, key: &str, version: i64) -> Result<bool, ControllerError> {
        let result = self
            .client
            .table_remove(
                self.at(),
                METADATA_TABLE,
                vec![(Bytes::from(key.to_owned()), KeyVersion::Exactly(version))],
                None,
                "",
            )
            .await;
        match result {
            Ok(()) => Ok(true),
            Err(ClientError::TableKeyBadVersion(_) | ClientError::TableKeyDoesNotExist(_)) => {
                Ok(false)
            }
            Err(error) => Err(ControllerError::Metadata(error)),
        }
    }

    /// Up to `limit` records whose keys start with `prefix`, in key order, after the
    /// continuation token (empty = from the start); the returned token continues after them.
    pub async fn list<T: DeserializeOwned>(
        &self,
        prefix: &str,
        continuation: &str,
        limit: usize,
    ) -> Result<(Vec<(String, T)>, String), ControllerError> {
        let mut items = Vec::new();
        let mut token = continuation_to_server(prefix, continuation);
        loop {
            let page = TablePage {
                continuation: token.clone(),
                max_items: i32::try_from(limit - items.len()).unwrap_or(i32::MAX),
                prefix: Some(Bytes::from(prefix.to_owned())),
                from_key: None,
                to_key: None,
            };
            let (entries, next) = self
                .client
                .table_entries(self.at(), METADATA_TABLE, page, "")
                .await
                .map_err(ControllerError::Metadata)?;
            if entries.is_empty() {
                break;
            }
            for entry in entries {
                let key = String::from_utf8_lossy(&entry.key).into_owned();
                let value = decode(&key, &entry.value)?;
                items.push((key, value));
            }
            token = next;
            if items.len() >= limit {
                break;
            }
        }
        // The clients call again with the token until they get an empty page, so the token
        // always points after the last item returned (and stays put at the end).
        let continuation = match items.last() {
            Some((key, _)) => key.clone(),
            None => continuation.to_owned(),
        };
        Ok((items, continuation))
    }
}

/// Our listing tokens are the last key returned; the table server's token is its format byte
/// followed by that key (docs/segment-server.md).
fn continuation_to_server(prefix: &str, continuation: &str) -> Bytes {
    if continuation.is_empty() || !continuation.starts_with(prefix) {
        return Bytes::new();
    }
    let mut token = Vec::with_capacity(1 + continuation.len());
    token.push(1);
    token.extend_from_slice(continuation.as_bytes());
    Bytes::from(token)
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, ControllerError> {
    serde_json::from_slice(value).map_err(|error| {
        ControllerError::Internal(format!("the metadata record {key} is unreadable: {error}"))
    })
}

//! Chunk storage (Tier-2): immutable, named chunks in long-term storage.
//!
//! Every backend OpenDAL supports is reached the same way, so choosing S3, HDFS, Azure or GCS
//! instead of the local file system is a matter of configuration ([`ChunkStoreConfig`]: a scheme
//! and its options), with no change in the engine. Only the services compiled in (the `fs` and
//! `memory` features of `opendal`) are available in a given build.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use opendal::{Buffer, ErrorKind as DalErrorKind, Operator};

/// Which backend holds the chunks, and its options (as OpenDAL names them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkStoreConfig {
    /// OpenDAL scheme: `fs`, `memory`, `s3`, `hdfs`, `azblob`, `gcs`, ...
    pub scheme: String,
    /// Backend options, e.g. `root` for `fs`; `bucket`, `endpoint`, `region` for `s3`.
    pub options: BTreeMap<String, String>,
}

impl ChunkStoreConfig {
    /// Chunks as files under `root` on the local (or a mounted network) file system.
    pub fn filesystem(root: &Path) -> Self {
        let root = root.to_string_lossy().into_owned();
        let staging = format!("{root}/.staging");
        Self {
            scheme: "fs".into(),
            options: BTreeMap::from([
                ("root".to_owned(), root),
                ("atomic_write_dir".to_owned(), staging),
            ]),
        }
    }

    /// Chunks in process memory (for tests and simulations).
    pub fn memory() -> Self {
        Self {
            scheme: "memory".into(),
            options: BTreeMap::new(),
        }
    }
}

/// What kind of failure a chunk operation met, so that callers can branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkErrorKind {
    NotFound,
    /// Bad configuration or an unsupported backend.
    Config,
    /// Any other failure of the backend (I/O, network, permissions); may succeed on retry.
    Unavailable,
}

/// A failed chunk operation.
#[derive(Debug, thiserror::Error)]
#[error("chunk storage {operation} of {path:?} failed ({kind:?}): {source}")]
pub struct ChunkError {
    pub kind: ChunkErrorKind,
    pub operation: &'static str,
    pub path: String,
    #[source]
    pub source: Box<opendal::Error>,
}

/// Handle to the chunk store; cheap to clone.
#[derive(Clone, Debug)]
pub struct ChunkStore {
    operator: Operator,
    /// For the `fs` backend: its root, whose directories we sync after each write.
    local_root: Option<PathBuf>,
}

impl ChunkStore {
    pub fn open(config: &ChunkStoreConfig) -> Result<Self, ChunkError> {
        opendal::init_default_registry();
        let options = config.options.clone();
        let operator =
            Operator::via_iter(&config.scheme, options).map_err(|source| ChunkError {
                kind: ChunkErrorKind::Config,
                operation: "open",
                path: config.scheme.clone(),
                source: Box::new(source),
            })?;
        let local_root = (config.scheme == "fs")
            .then(|| config.options.get("root").map(PathBuf::from))
            .flatten();
        Ok(Self {
            operator,
            local_root,
        })
    }

    /// Writes a whole chunk from `parts` (written in order, without joining them first). The
    /// chunk is durable when this returns.
    pub async fn write(&self, name: &str, parts: Vec<Bytes>) -> Result<(), ChunkError> {
        self.operator
            .write(name, Buffer::from(parts))
            .await
            .map_err(|source| error("write", name, source))?;
        if let Some(root) = &self.local_root {
            sync_directories(root.clone(), name).await?;
        }
        Ok(())
    }

    /// Reads `range` (byte offsets within the chunk).
    pub async fn read(&self, name: &str, range: Range<u64>) -> Result<Bytes, ChunkError> {
        self.operator
            .read_with(name)
            .range(range)
            .await
            .map(|buffer| buffer.to_bytes())
            .map_err(|source| error("read", name, source))
    }

    /// Deletes a chunk; deleting a chunk that does not exist succeeds.
    pub async fn delete(&self, name: &str) -> Result<(), ChunkError> {
        match self.operator.delete(name).await {
            Err(source) if source.kind() != DalErrorKind::NotFound => {
                Err(error("delete", name, source))
            }
            _ => Ok(()),
        }
    }

    /// Names of all chunks under `prefix` (a directory path ending in `/`), recursively.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ChunkError> {
        let entries = match self.operator.list_with(prefix).recursive(true).await {
            Ok(entries) => entries,
            Err(source) if source.kind() == DalErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(error("list", prefix, source)),
        };
        Ok(entries
            .into_iter()
            .filter(|entry| entry.metadata().is_file())
            .map(|entry| entry.path().to_owned())
            .collect())
    }
}

/// OpenDAL's `fs` backend syncs a chunk's file and renames it into place, but syncs no
/// directory: after a power loss the rename (or a directory it created) could be gone while the
/// chunk is already recorded as stored. So sync every directory from the chunk's up to the root.
async fn sync_directories(root: PathBuf, name: &str) -> Result<(), ChunkError> {
    let owned_name = name.to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let mut directory = root.join(&owned_name);
        while directory.pop() && directory.starts_with(&root) {
            std::fs::File::open(&directory)?.sync_all()?;
        }
        Ok::<(), std::io::Error>(())
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
    result.map_err(|io| {
        error(
            "sync directories of",
            name,
            opendal::Error::new(DalErrorKind::Unexpected, io.to_string()),
        )
    })
}

fn error(operation: &'static str, path: &str, source: opendal::Error) -> ChunkError {
    let kind = match source.kind() {
        DalErrorKind::NotFound => ChunkErrorKind::NotFound,
        DalErrorKind::ConfigInvalid | DalErrorKind::Unsupported => ChunkErrorKind::Config,
        _ => ChunkErrorKind::Unavailable,
    };
    ChunkError {
        kind,
        operation,
        path: path.to_owned(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(store: ChunkStore) {
        let parts = vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")];
        store.write("c0001/s1/0", parts).await.unwrap();
        assert_eq!(store.read("c0001/s1/0", 6..11).await.unwrap(), "world");
        assert_eq!(
            store.list("c0001/").await.unwrap(),
            vec!["c0001/s1/0".to_owned()]
        );
        store.delete("c0001/s1/0").await.unwrap();
        store.delete("c0001/s1/0").await.unwrap();
        let missing = store.read("c0001/s1/0", 0..1).await.unwrap_err();
        assert_eq!(missing.kind, ChunkErrorKind::NotFound);
        assert!(store.list("c0001/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn filesystem_backend() {
        let root = tempfile::tempdir().unwrap();
        exercise(ChunkStore::open(&ChunkStoreConfig::filesystem(root.path())).unwrap()).await;
    }

    #[tokio::test]
    async fn memory_backend() {
        exercise(ChunkStore::open(&ChunkStoreConfig::memory()).unwrap()).await;
    }

    #[test]
    fn unknown_backend_is_a_config_error() {
        let config = ChunkStoreConfig {
            scheme: "no-such-backend".into(),
            options: BTreeMap::new(),
        };
        assert_eq!(
            ChunkStore::open(&config).unwrap_err().kind,
            ChunkErrorKind::Config
        );
    }
}

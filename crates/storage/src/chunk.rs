//! Chunk storage (Tier-2): immutable, named chunks in long-term storage.
//!
//! Every backend OpenDAL supports is reached the same way, so choosing S3, HDFS, Azure or GCS
//! instead of the local file system is a matter of configuration ([`ChunkStoreConfig`]: a scheme
//! and its options), with no change in the engine. Only the services compiled in (the `fs` and
//! `memory` features of `opendal`) are available in a given build.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use opendal::{Buffer, ErrorKind as DalErrorKind, Operator};

mod local;

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

/// Parts at least this large are handed to the backend as they are; smaller ones are first
/// copied together into pieces of about [`WRITE_PIECE_BYTES`].
const WRITE_PART_MIN_BYTES: usize = 256 << 10;
const WRITE_PIECE_BYTES: usize = 1 << 20;

/// One write of a batch: `parts`, in order, written into chunk `name` at byte `offset`.
///
/// At offset 0 the chunk is created, or replaced whole. At a later offset the chunk is extended:
/// it must exist and hold at least `offset` bytes, whatever it holds past `offset` is cut, and
/// `parts` follow (only where [`ChunkStore::can_extend`] says so).
#[derive(Debug, Clone)]
pub struct ChunkWrite {
    pub name: String,
    pub offset: u64,
    pub parts: Vec<Bytes>,
}

impl ChunkWrite {
    /// A whole new chunk.
    pub fn new_chunk(name: impl Into<String>, parts: Vec<Bytes>) -> Self {
        Self {
            name: name.into(),
            offset: 0,
            parts,
        }
    }
}

/// Handle to the chunk store; cheap to clone.
#[derive(Clone, Debug)]
pub struct ChunkStore {
    operator: Operator,
    /// For the `fs` backend: its root; chunks are written there directly (see [`local`]).
    local_root: Option<PathBuf>,
    /// Directories under the root whose own entry (in their parent) is known to be durable,
    /// so that each write syncs only the chunk's directory, not every ancestor again.
    durable_directories: Arc<Mutex<HashSet<PathBuf>>>,
    /// Whether chunks can be extended in place (see [`ChunkStore::can_extend`]).
    extendable: bool,
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
        let extendable = local_root.is_some() || config.scheme == "memory";
        Ok(Self {
            operator,
            local_root,
            durable_directories: Arc::default(),
            extendable,
        })
    }

    /// Whether [`ChunkWrite`]s at an offset past 0 (extending a chunk in place) are supported:
    /// on the `fs` backend (a file written at an offset), and on `memory` (the object rewritten
    /// whole, which is cheap there). Object stores cannot extend an object, so there every write
    /// makes a new chunk.
    pub fn can_extend(&self) -> bool {
        self.extendable
    }

    /// Writes a whole chunk from `parts`, in order. The chunk is durable when this returns.
    pub async fn write(&self, name: &str, parts: Vec<Bytes>) -> Result<(), ChunkError> {
        self.write_batch(vec![ChunkWrite::new_chunk(name, parts)])
            .await
    }

    /// Performs several [`ChunkWrite`]s; all of them are durable when this returns `Ok`. After
    /// an error, any of them may be missing, partial or complete: the caller must not reference
    /// what they wrote, and may write it again (under the same name, at the same offset).
    ///
    /// On the `fs` backend the chunks are written as plain files, paced, and made durable
    /// together (see `chunk/local.rs`). Other backends write them one by one
    /// through OpenDAL; small parts are joined into larger pieces first, since backends write a
    /// buffer part by part and a chunk of 1 KiB appends would otherwise cost about a thousand
    /// calls per MiB.
    pub async fn write_batch(&self, chunks: Vec<ChunkWrite>) -> Result<(), ChunkError> {
        if let Some(root) = &self.local_root {
            let root = root.clone();
            let durable = self.durable_directories.clone();
            let result =
                tokio::task::spawn_blocking(move || local::write_batch(&root, chunks, &durable))
                    .await
                    .unwrap_or_else(|join| Err((String::new(), std::io::Error::other(join))));
            return result.map_err(|(name, io)| {
                error(
                    "write",
                    &name,
                    opendal::Error::new(DalErrorKind::Unexpected, io.to_string()),
                )
            });
        }
        for write in chunks {
            let name = write.name;
            let mut parts = coalesce(write.parts);
            if write.offset > 0 {
                if !self.extendable {
                    let unsupported = opendal::Error::new(
                        DalErrorKind::Unsupported,
                        "this backend cannot extend a chunk in place",
                    );
                    return Err(error("write", &name, unsupported));
                }
                let length = self.size(&name).await?;
                if length < write.offset {
                    return Err(error("write", &name, too_short(length, write.offset)));
                }
                parts.insert(0, self.read(&name, 0..write.offset).await?);
            }
            self.operator
                .write(&name, Buffer::from(parts))
                .await
                .map_err(|source| error("write", &name, source))?;
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

    /// The size of a chunk in bytes.
    pub async fn size(&self, name: &str) -> Result<u64, ChunkError> {
        self.operator
            .stat(name)
            .await
            .map(|metadata| metadata.content_length())
            .map_err(|source| error("stat", name, source))
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

/// Joins runs of small parts into pieces of about [`WRITE_PIECE_BYTES`]; large parts are kept
/// as they are (no copy).
fn coalesce(parts: Vec<Bytes>) -> Vec<Bytes> {
    if parts.iter().all(|part| part.len() >= WRITE_PART_MIN_BYTES) {
        return parts;
    }
    let mut pieces = Vec::new();
    let mut piece: Vec<u8> = Vec::new();
    for part in parts {
        if part.len() >= WRITE_PART_MIN_BYTES {
            if !piece.is_empty() {
                pieces.push(Bytes::from(std::mem::take(&mut piece)));
            }
            pieces.push(part);
            continue;
        }
        if piece.is_empty() {
            piece.reserve(WRITE_PIECE_BYTES);
        }
        piece.extend_from_slice(&part);
        if piece.len() >= WRITE_PIECE_BYTES {
            pieces.push(Bytes::from(std::mem::take(&mut piece)));
        }
    }
    if !piece.is_empty() {
        pieces.push(Bytes::from(piece));
    }
    pieces
}

/// A chunk extended at `offset` holds fewer bytes than that: what references it is wrong.
fn too_short(length: u64, offset: u64) -> opendal::Error {
    let message =
        format!("the chunk holds {length} bytes, fewer than the offset {offset} to extend it at");
    opendal::Error::new(DalErrorKind::Unexpected, message)
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

    #[test]
    fn coalesce_keeps_bytes_in_order_and_large_parts_uncopied() {
        let large = Bytes::from(vec![7_u8; WRITE_PART_MIN_BYTES]);
        let mut parts: Vec<Bytes> = (0..3000_u32)
            .map(|index| Bytes::from(vec![(index % 251) as u8; 1000]))
            .collect();
        parts.insert(1500, large.clone());
        let expected: Vec<u8> = parts.iter().flat_map(|part| part.iter().copied()).collect();
        let pieces = coalesce(parts);
        let joined: Vec<u8> = pieces
            .iter()
            .flat_map(|piece| piece.iter().copied())
            .collect();
        assert_eq!(joined, expected);
        assert!(pieces.len() <= 6, "{} pieces", pieces.len());
        assert!(pieces.iter().any(|piece| piece.as_ptr() == large.as_ptr()));
    }

    #[tokio::test]
    async fn filesystem_backend_nested_chunks() {
        let root = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(&ChunkStoreConfig::filesystem(root.path())).unwrap();
        for name in ["a/b/0", "a/b/1", "a/c/0"] {
            let parts = vec![Bytes::from_static(b"x"); 3];
            store.write(name, parts).await.unwrap();
            assert_eq!(store.read(name, 0..3).await.unwrap(), "xxx");
        }
        let durable = store.durable_directories.lock().unwrap().clone();
        for directory in ["a", "a/b", "a/c"] {
            assert!(
                durable.contains(&root.path().join(directory)),
                "{directory}"
            );
        }
    }

    #[tokio::test]
    async fn filesystem_batch_writes_pieces_in_order_and_overwrites() {
        let root = tempfile::tempdir().unwrap();
        let store = ChunkStore::open(&ChunkStoreConfig::filesystem(root.path())).unwrap();
        let small: Vec<Bytes> = (0..1500_u32)
            .map(|index| Bytes::from(vec![(index % 251) as u8; 1000]))
            .collect();
        let large = vec![Bytes::from(vec![9_u8; local::PIECE_BYTES * 2 + 17])];
        let expected: Vec<u8> = small.iter().flat_map(|part| part.to_vec()).collect();
        store
            .write("c/a/0", vec![Bytes::from(vec![1_u8; 2_000_000])])
            .await
            .unwrap();
        let batch = vec![
            ChunkWrite::new_chunk("c/a/0", small),
            ChunkWrite::new_chunk("c/b/0", large),
        ];
        store.write_batch(batch).await.unwrap();
        let read = store.read("c/a/0", 0..expected.len() as u64).await.unwrap();
        assert_eq!(read, expected);
        let length = std::fs::metadata(root.path().join("c/a/0")).unwrap().len();
        assert_eq!(length, expected.len() as u64, "an overwrite truncates");
        let second = store.read("c/b/0", 0..(local::PIECE_BYTES * 2 + 17) as u64);
        assert!(second.await.unwrap().iter().all(|&byte| byte == 9));
    }

    /// Extending in place: bytes land at the offset, whatever was past it is cut, and a chunk
    /// shorter than the offset (or missing) is an error that leaves it as it was.
    async fn extend(store: ChunkStore) {
        assert!(store.can_extend());
        let name = "c/s/0";
        store
            .write(name, vec![Bytes::from_static(b"abc")])
            .await
            .unwrap();
        let at = |offset, text: &'static str| ChunkWrite {
            name: name.to_owned(),
            offset,
            parts: vec![Bytes::from_static(text.as_bytes())],
        };
        store.write_batch(vec![at(3, "def")]).await.unwrap();
        assert_eq!(store.read(name, 0..6).await.unwrap(), "abcdef");
        // A retry after a failed round: the unreferenced tail is replaced, not kept.
        store.write_batch(vec![at(4, "XY")]).await.unwrap();
        assert_eq!(store.read(name, 0..6).await.unwrap(), "abcdXY");
        store.write_batch(vec![at(2, "z")]).await.unwrap();
        assert_eq!(
            store.size(name).await.unwrap(),
            3,
            "what was past the offset is cut"
        );
        assert_eq!(store.read(name, 0..3).await.unwrap(), "abz");
        let short = store.write_batch(vec![at(9, "q")]).await.unwrap_err();
        assert!(
            short.to_string().contains("fewer than the offset 9"),
            "{short}"
        );
        assert_eq!(store.read(name, 0..3).await.unwrap(), "abz");
        let missing = ChunkWrite {
            name: "c/s/100".to_owned(),
            offset: 5,
            parts: vec![Bytes::from_static(b"q")],
        };
        store.write_batch(vec![missing]).await.unwrap_err();
        let gone = store.size("c/s/100").await.unwrap_err();
        assert_eq!(gone.kind, ChunkErrorKind::NotFound);
    }

    #[tokio::test]
    async fn filesystem_chunks_extend_in_place() {
        let root = tempfile::tempdir().unwrap();
        extend(ChunkStore::open(&ChunkStoreConfig::filesystem(root.path())).unwrap()).await;
    }

    #[tokio::test]
    async fn memory_chunks_extend_in_place() {
        extend(ChunkStore::open(&ChunkStoreConfig::memory()).unwrap()).await;
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

//! A segment store: a fixed number of containers on one data directory, each segment routed to
//! its container by the stable hash of its name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pravaha_storage::chunk::{ChunkStore, ChunkStoreConfig};
use pravaha_storage::log::FileLogDevice;
use pravaha_types::{container_for_segment, ContainerId};

use crate::container::{ContainerConfig, ContainerHandle};
use crate::error::SegmentError;
use crate::{Clock, SystemClock};

/// Where a segment store keeps its data, and how.
#[derive(Debug, Clone)]
pub struct SegmentStoreConfig {
    /// Tier-1 logs live in `<data_dir>/log/container-<id>`.
    pub data_dir: PathBuf,
    pub container_count: u32,
    /// Tier-2; by default the file system under `<data_dir>/tier2`.
    pub chunk_store: ChunkStoreConfig,
    pub container: ContainerConfig,
}

impl SegmentStoreConfig {
    /// Defaults for a data directory: 4 containers, Tier-2 on the local file system.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        let data_dir = data_dir.as_ref().to_path_buf();
        Self {
            chunk_store: ChunkStoreConfig::filesystem(&data_dir.join("tier2")),
            data_dir,
            container_count: 4,
            container: ContainerConfig::default(),
        }
    }

    pub fn log_directory(&self, container: ContainerId) -> PathBuf {
        self.data_dir
            .join("log")
            .join(format!("container-{:04}", container.0))
    }

    /// What a log file usually holds: a checkpoint starts a new file, so `checkpoint_log_bytes`
    /// (or a full file).
    fn usual_log_file_bytes(&self) -> u64 {
        self.container
            .log
            .max_file_bytes
            .min(self.container.checkpoint_log_bytes)
    }

    /// Log files are preallocated to what a file usually holds plus a sixteenth, for the batch
    /// that crosses the mark and the checkpoint. A file that outgrows it is extended.
    pub fn log_file_preallocation(&self) -> u64 {
        let usual = self.usual_log_file_bytes();
        usual + usual / 16
    }

    /// How many log files removed by truncation each container keeps for reuse: as many as one
    /// truncation usually drops (the log holds about `max_unstored_bytes` of data behind its
    /// oldest needed checkpoint), at most 16. Each is a preallocated file on disk besides the
    /// log, so a container's Tier-1 directory holds at most this many more, plus one spare.
    pub fn recycled_log_files(&self) -> usize {
        let files = self.container.max_unstored_bytes / self.usual_log_file_bytes().max(1) + 1;
        usize::try_from(files.min(16)).unwrap_or(16)
    }
}

/// A running segment store; cheap to clone.
#[derive(Clone)]
pub struct SegmentStore {
    containers: Arc<Vec<ContainerHandle>>,
}

impl SegmentStore {
    /// Recovers and starts every container.
    pub async fn open(config: SegmentStoreConfig) -> Result<Self, SegmentError> {
        Self::open_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn open_with_clock(
        config: SegmentStoreConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SegmentError> {
        if config.container_count == 0 {
            return Err(SegmentError::InvalidArgument(
                "container count must be at least 1".into(),
            ));
        }
        check_layout(&config.data_dir, config.container_count)?;
        let chunks = ChunkStore::open(&config.chunk_store)?;
        let mut containers = Vec::with_capacity(config.container_count as usize);
        for index in 0..config.container_count {
            let id = ContainerId(index);
            let device = FileLogDevice::open(config.log_directory(id))
                .map_err(|error| SegmentError::Log(Arc::new(error.into())))?
                .with_preallocation(config.log_file_preallocation())
                .with_recycling(config.recycled_log_files());
            let handle = ContainerHandle::start(
                id,
                config.container.clone(),
                Box::new(device),
                chunks.clone(),
                clock.clone(),
            )
            .await?;
            containers.push(handle);
        }
        Ok(Self {
            containers: Arc::new(containers),
        })
    }

    pub fn container_count(&self) -> u32 {
        u32::try_from(self.containers.len()).expect("container count is a u32")
    }

    /// The container that owns `segment`.
    pub fn container(&self, segment: &str) -> &ContainerHandle {
        let id = container_for_segment(segment, self.container_count());
        &self.containers[id.0 as usize]
    }

    /// Stops every container (see [`ContainerHandle::shutdown`]).
    pub async fn shutdown(&self) {
        for container in self.containers.iter() {
            container.shutdown().await;
        }
    }

    pub fn containers(&self) -> &[ContainerHandle] {
        &self.containers
    }
}

/// The file that records how a data directory is laid out.
const LAYOUT_FILE: &str = "segmentstore.layout";
const LAYOUT_VERSION: u32 = 1;

/// Records the container count in a new data directory, and refuses to open an existing one with
/// another count: segments would be looked for in containers that do not hold them.
fn check_layout(data_dir: &Path, container_count: u32) -> Result<(), SegmentError> {
    let path = data_dir.join(LAYOUT_FILE);
    let expected = format!("version {LAYOUT_VERSION}\ncontainers {container_count}\n");
    let io_error = |error: std::io::Error| SegmentError::Log(Arc::new(error.into()));
    match std::fs::read_to_string(&path) {
        Ok(found) if found == expected => Ok(()),
        Ok(found) => Err(SegmentError::InvalidArgument(format!(
            "{} was created with a different layout ({:?}); this configuration has {container_count} containers",
            data_dir.display(),
            found.trim()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(io_error)?;
            let staging = data_dir.join(format!("{LAYOUT_FILE}.new"));
            std::fs::write(&staging, expected).map_err(io_error)?;
            std::fs::File::open(&staging).and_then(|file| file.sync_all()).map_err(io_error)?;
            std::fs::rename(&staging, &path).map_err(io_error)?;
            std::fs::File::open(data_dir).and_then(|dir| dir.sync_all()).map_err(io_error)
        }
        Err(error) => Err(io_error(error)),
    }
}

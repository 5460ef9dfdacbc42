//! [`GroupError`]: why a reader-group operation failed.

use crate::controller::types::ScopedStream;
use crate::controller::ControllerError;
use crate::segment::{ParseError, ReaderError};
use crate::sync::SyncError;
use crate::watermark::WatermarkError;

/// Why a reader-group operation failed.
///
/// ```no_run
/// # async fn example(group: pravaha_client::ReaderGroup) {
/// use std::time::Duration;
/// use pravaha_client::group::GroupError;
///
/// match group.initiate_checkpoint("hourly", Duration::from_secs(10)).await {
///     Ok(checkpoint) => println!("{} complete", checkpoint.name()),
///     Err(GroupError::CheckpointFailed { readers, .. }) => println!("{readers:?} did not take part"),
///     Err(error) => println!("failed: {error}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The group's state could not be read or changed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A controller call failed.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// A segment could not be read.
    #[error(transparent)]
    Read(#[from] ReaderError),
    /// A segment's data is not a sequence of events.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The reader was taken offline (by itself, the application or another reader).
    #[error("reader {0} is offline")]
    ReaderOffline(String),
    #[error("invalid reader group configuration: {0}")]
    InvalidConfig(String),
    /// The group's state does not exist (deleted, or never created).
    #[error("reader group {0} does not exist")]
    NoSuchGroup(String),
    /// A checkpoint of that name exists (outstanding, or among the completed ones kept).
    #[error("checkpoint {0} exists already")]
    CheckpointExists(String),
    /// The application's outstanding checkpoints are at the group's maximum.
    #[error("{max} checkpoints are outstanding, the group's maximum")]
    TooManyCheckpoints { max: u32 },
    /// The checkpoint was not complete at its time-out: these online readers had not taken
    /// part (readers of the official client never do). It was abandoned.
    #[error("checkpoint {name} timed out waiting for readers {readers:?}")]
    CheckpointFailed { name: String, readers: Vec<String> },
    /// The checkpoint disappeared while it was awaited: the group was reset or deleted, or it
    /// was abandoned by a reader.
    #[error("checkpoint {0} was removed before it completed")]
    CheckpointRemoved(String),
    /// A retention operation on a group that is not a subscriber of its streams.
    #[error("reader group {0} has no retention subscription (retention mode none)")]
    NotSubscribed(String),
    /// The group does not read this stream.
    #[error("reader group {group} does not read stream {stream}")]
    StreamNotRead { group: String, stream: ScopedStream },
    /// A stream's watermarks could not be read.
    #[error(transparent)]
    Watermark(#[from] WatermarkError),
}

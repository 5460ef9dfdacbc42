//! The Tier-2 writer: a background task that moves committed data from the cache into chunks
//! and deletes chunks that nothing references any more.
//!
//! Each round it asks the container for work ([`select_work`]), writes each chunk, and reports
//! it; the container records a `Stored` operation, after which the data may leave the cache and
//! the log. A new chunk the container refuses (its segment changed meanwhile) is deleted again.
//!
//! Where the chunk store can extend chunks in place, a segment's next range goes into the chunk
//! holding the range just before it, until that chunk reaches `chunk_target_bytes`: one file
//! per segment per round would cost a file creation (and its journal commit) for each, many per
//! second with many busy segments under back pressure. A chunk may thus hold several consecutive
//! ranges of one segment, each referenced on its own; they are always adjacent in the segment
//! and in the chunk, and nothing else references the chunk.

use std::time::Duration;

use bytes::Bytes;
use pravaha_storage::chunk::{ChunkStore, ChunkWrite};
use pravaha_types::ContainerId;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::warn;

use super::command::Command;
use super::read_index::ReadIndex;
use super::ContainerConfig;
use crate::state::{ChunkRef, ContainerState, SegmentId, SegmentMeta};

pub(crate) enum WriterRequest {
    Work {
        reply: oneshot::Sender<Work>,
    },
    Stored {
        id: SegmentId,
        offset: u64,
        chunk: ChunkRef,
        reply: oneshot::Sender<bool>,
    },
}

/// One range to write: `parts` hold the segment's bytes from `offset`, which go into chunk
/// `chunk_name` at `chunk_offset` (0: a new chunk; past 0: the end of the segment's chunk that
/// holds the bytes before `offset`).
pub(crate) struct Job {
    id: SegmentId,
    offset: u64,
    chunk_name: String,
    chunk_offset: u64,
    parts: Vec<Bytes>,
}

#[derive(Default)]
pub(crate) struct Work {
    jobs: Vec<Job>,
    garbage: Vec<String>,
}

/// The Tier-2 name of the chunk of segment `id` starting at segment offset `offset`.
pub fn chunk_name(container: ContainerId, id: SegmentId, offset: u64) -> String {
    format!("{}{id:016x}/{offset:020}", container_prefix(container))
}

/// Every chunk of a container lives under this prefix.
pub fn container_prefix(container: ContainerId) -> String {
    format!("container-{:04}/", container.0)
}

/// The running writer. [`StorageWriter::stop`] waits for the chunk files being written: a
/// blocking write cannot be cancelled, and one left running would write into the container's
/// Tier-2 directory after the container stopped (while it is reopened, or removed).
pub(super) struct StorageWriter {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl StorageWriter {
    /// Stops the writer at its next wait; returns once the writes it started have ended. The
    /// container must have stopped taking requests (the writer's requests then fail at once).
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub(super) fn spawn(
    container: ContainerId,
    commands: mpsc::WeakSender<Command>,
    chunks: ChunkStore,
    interval: Duration,
) -> StorageWriter {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut busy = false;
        loop {
            // Right after a round that moved data, look for more at once: one chunk per
            // segment per round must not cap a busy segment at one chunk per interval.
            if !busy {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
            let Some(commands) = commands.upgrade() else {
                return;
            };
            let (reply, work) = oneshot::channel();
            let request = Command::Storage(WriterRequest::Work { reply });
            if commands.send(request).await.is_err() {
                return;
            }
            let work = tokio::select! {
                work = work => work,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            let Ok(work) = work else {
                return;
            };
            match run_round(container, &commands, &chunks, work, &mut stopped).await {
                Some(moved) => busy = moved,
                None => return,
            }
        }
    });
    StorageWriter { task, stop }
}

/// Writes a round's chunks and reports them; whether any was stored, or `None` when the
/// writer was stopped (chunks written and not reported are orphans, removed at the next
/// recovery).
async fn run_round(
    container: ContainerId,
    commands: &mpsc::Sender<Command>,
    chunks: &ChunkStore,
    work: Work,
    stopped: &mut watch::Receiver<bool>,
) -> Option<bool> {
    let mut stored_any = false;
    for name in work.garbage {
        if let Err(error) = chunks.delete(&name).await {
            // Left for the orphan sweep at the next recovery.
            warn!(%container, chunk = %name, %error, "failed to delete an unreferenced chunk");
        }
    }
    // The whole round is written and made durable together, then reported chunk by chunk.
    let batch = work
        .jobs
        .iter()
        .map(|job| ChunkWrite {
            name: job.chunk_name.clone(),
            offset: job.chunk_offset,
            parts: job.parts.clone(),
        })
        .collect();
    if let Err(error) = chunks.write_batch(batch).await {
        warn!(%container, %error, "failed to write chunks; will retry");
        return Some(false);
    }
    for job in work.jobs {
        let length: u64 = job.parts.iter().map(|p| p.len() as u64).sum();
        let chunk = ChunkRef {
            name: job.chunk_name.clone(),
            chunk_offset: job.chunk_offset,
            length,
        };
        let (reply, accepted) = oneshot::channel();
        let request = WriterRequest::Stored {
            id: job.id,
            offset: job.offset,
            chunk,
            reply,
        };
        if commands.send(Command::Storage(request)).await.is_err() {
            return None;
        }
        let accepted = tokio::select! {
            accepted = accepted => accepted.unwrap_or(false),
            _ = stopped.wait_for(|stop| *stop) => return None,
        };
        if accepted {
            stored_any = true;
        } else if job.chunk_offset == 0 {
            let _ = chunks.delete(&job.chunk_name).await;
        }
        // A refused extension leaves bytes past the chunk's referenced end: the next write
        // there cuts them, and the chunk goes whole once nothing references it.
    }
    Some(stored_any)
}

/// Picks the data to move to Tier-2: for each segment with unstored data, its first unstored
/// range, when it is big enough, old enough, sealed, or the container is under pressure. With
/// `extend`, a range goes into the end of the chunk holding the bytes before it, when that chunk
/// stays within the target size.
#[allow(clippy::too_many_arguments)]
pub(super) fn select_work(
    container: ContainerId,
    config: &ContainerConfig,
    accepted: &ContainerState,
    committed: &ContainerState,
    cache: &mut ReadIndex,
    unstored_total: u64,
    garbage: Vec<String>,
    extend: bool,
) -> Work {
    let now = Instant::now();
    let pressure = unstored_total >= config.max_unstored_bytes / 2;
    let round_limit = config.chunk_target_bytes.saturating_mul(4);
    let mut work = Work {
        jobs: Vec::new(),
        garbage,
    };
    let mut round_bytes = 0;
    // Only segments the cache marks as holding unstored data: idle segments cost nothing here.
    let mut candidates: Vec<_> = cache
        .segments_with_unstored()
        .filter_map(|id| committed.get(id))
        .filter(|s| s.length > s.start_offset)
        .collect();
    candidates.sort_by_key(|s| s.id);
    for segment in candidates {
        // Ranges come from the accepted state, so that chunks already reported are not redone;
        // data only from the committed state (the cache holds nothing else).
        let Some(sequenced) = accepted.get(segment.id) else {
            continue;
        };
        let Some((start, end)) = sequenced.first_unstored_range() else {
            continue;
        };
        let end = end
            .min(segment.length)
            .min(start + config.chunk_target_bytes);
        if end <= start.max(segment.start_offset) {
            continue;
        }
        let old = cache
            .unstored_since(segment.id)
            .is_none_or(|since| now.duration_since(since) >= config.chunk_max_age);
        let full = end - start >= config.chunk_target_bytes;
        if !(full || old || pressure || segment.sealed) {
            continue;
        }
        let Some(parts) = cache.collect(segment.id, start, end) else {
            warn!(%container, segment = %segment.name, start, end, "unstored data missing from the cache");
            continue;
        };
        let (chunk_name, chunk_offset) = extend
            .then(|| extensible_chunk(sequenced, start, end - start, config.chunk_target_bytes))
            .flatten()
            .unwrap_or_else(|| (chunk_name(container, segment.id, start), 0));
        work.jobs.push(Job {
            id: segment.id,
            offset: start,
            chunk_name,
            chunk_offset,
            parts,
        });
        round_bytes += end - start;
        if round_bytes >= round_limit {
            break;
        }
    }
    work
}

/// The range of `segment` that ends at `offset`, if one is stored.
fn stored_range_ending_at(segment: &SegmentMeta, offset: u64) -> Option<&ChunkRef> {
    let (start, chunk) = segment.chunk_at(offset.checked_sub(1)?)?;
    (start + chunk.length == offset).then_some(chunk)
}

/// The chunk holding `segment`'s bytes just before `start`, and the chunk offset its end is at,
/// when `length` more bytes fit in it within `target` bytes.
fn extensible_chunk(
    segment: &SegmentMeta,
    start: u64,
    length: u64,
    target: u64,
) -> Option<(String, u64)> {
    let previous = stored_range_ending_at(segment, start)?;
    let end = previous.chunk_offset + previous.length;
    (end + length <= target).then(|| (previous.name.clone(), end))
}

/// Whether `chunk` (a range at `offset`) directly follows, in the same chunk, the range
/// stored just before `offset`: only then may it extend that chunk.
fn extends_previous(segment: &SegmentMeta, offset: u64, chunk: &ChunkRef) -> bool {
    stored_range_ending_at(segment, offset).is_some_and(|previous| {
        previous.name == chunk.name && previous.chunk_offset + previous.length == chunk.chunk_offset
    })
}

/// Whether a reported chunk still fits its segment: the segment exists, the range is sequenced,
/// not yet stored, and not entirely truncated away; a range written into an existing chunk
/// must still follow that chunk's last range (a truncation or deletion meanwhile may have made
/// the chunk garbage).
pub(super) fn stored_is_valid(
    accepted: &ContainerState,
    id: SegmentId,
    offset: u64,
    chunk: &ChunkRef,
) -> bool {
    let Some(segment) = accepted.get(id) else {
        return false;
    };
    let end = offset + chunk.length;
    let overlaps =
        segment.chunk_at(offset).is_some() || segment.chunks.range(offset..end).next().is_some();
    let placed = chunk.chunk_offset == 0 || extends_previous(segment, offset, chunk);
    chunk.length > 0 && end <= segment.length && end > segment.start_offset && !overlaps && placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Operation, SegmentKind};

    fn range(name: &str, chunk_offset: u64, length: u64) -> ChunkRef {
        ChunkRef {
            name: name.to_owned(),
            chunk_offset,
            length,
        }
    }

    /// Segment 1 of 3000 bytes; [0, 2000) stored as two ranges of chunk "a".
    fn state() -> ContainerState {
        let mut state = ContainerState::default();
        state.apply(&Operation::CreateSegment {
            id: 1,
            name: "s".into(),
            kind: SegmentKind::Stream,
            attributes: Vec::new(),
            time_ms: 0,
        });
        state.apply(&Operation::Append {
            id: 1,
            offset: 0,
            data: Bytes::from(vec![0; 3000]),
            attributes: Vec::new(),
            time_ms: 0,
        });
        for (offset, chunk) in [(0, range("a", 0, 1000)), (1000, range("a", 1000, 1000))] {
            assert!(stored_is_valid(&state, 1, offset, &chunk));
            state.apply(&Operation::Stored {
                id: 1,
                offset,
                chunk,
            });
        }
        state
    }

    #[test]
    fn a_range_extends_only_the_chunk_holding_the_range_before_it_at_its_end() {
        let state = state();
        let segment = state.get(1).unwrap();
        assert_eq!(
            extensible_chunk(segment, 2000, 1000, 3000),
            Some(("a".to_owned(), 2000))
        );
        assert_eq!(
            extensible_chunk(segment, 2000, 1001, 3000),
            None,
            "past the target"
        );
        assert_eq!(
            extensible_chunk(segment, 2500, 500, 3000),
            None,
            "not adjacent"
        );
        assert_eq!(extensible_chunk(segment, 0, 10, 3000), None);
        assert!(stored_is_valid(&state, 1, 2000, &range("a", 2000, 1000)));
        assert!(stored_is_valid(&state, 1, 2000, &range("b", 0, 1000)));
        assert!(!stored_is_valid(&state, 1, 2000, &range("a", 1500, 1000)));
        assert!(!stored_is_valid(&state, 1, 2000, &range("b", 2000, 1000)));
        assert!(!stored_is_valid(&state, 1, 1500, &range("a", 2000, 500)));
    }

    #[test]
    fn a_chunk_is_garbage_once_truncation_leaves_none_of_its_ranges() {
        let mut state = state();
        let truncate = |offset| Operation::Truncate {
            id: 1,
            offset,
            time_ms: 0,
        };
        assert!(
            state.apply(&truncate(1000)).is_empty(),
            "one range of it is left"
        );
        // An extension planned before the truncation no longer follows a stored range.
        let extension = range("a", 2000, 1000);
        assert!(stored_is_valid(&state, 1, 2000, &extension));
        assert_eq!(state.apply(&truncate(2000)), vec!["a".to_owned()]);
        assert!(!stored_is_valid(&state, 1, 2000, &extension));
        let mut deleted = self::state();
        let garbage = deleted.apply(&Operation::Delete { id: 1 });
        assert_eq!(garbage, vec!["a".to_owned()], "named once");
    }
}

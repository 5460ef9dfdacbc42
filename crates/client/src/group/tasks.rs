//! The tasks of an [`EventReader`](super::EventReader): its heartbeat and one fetch per owned
//! segment.

use std::time::Duration;

use tokio::sync::mpsc;

use super::state;
use super::ReaderGroup;
use crate::segment::{ReaderError, SegmentRead, SegmentReader};
use crate::sync::SyncError;

/// A read (or its failure) from a fetch task, tagged with the ownership it belongs to.
pub(super) struct Fetched {
    pub tag: u64,
    pub result: Result<SegmentRead, ReaderError>,
}

/// Moves `reader`'s heartbeat counter on every `interval` until the reader is offline (or the
/// task is aborted: the reader was closed or dropped).
pub(super) async fn heartbeat(group: ReaderGroup, reader: String, interval: Duration) {
    // The first heartbeat was written when the reader joined.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = group
            .state
            .lock()
            .await
            .update(|update| state::heartbeat(update, &reader))
            .await;
        match result {
            Ok(_) => {}
            Err(SyncError::Precondition(message)) => {
                tracing::debug!(%reader, %message, "heartbeat stops");
                return;
            }
            Err(error) => tracing::warn!(%reader, %error, "heartbeat failed"),
        }
    }
}

/// Reads `segment` from `offset` until its end, or until `end` (the group's end cut) where
/// given, handing each read over. Reaching `end` is handed over as the end of the segment.
pub(super) async fn fetch(
    mut reader: SegmentReader,
    mut offset: i64,
    end: Option<i64>,
    read_size: usize,
    sender: mpsc::Sender<Fetched>,
    tag: u64,
) {
    loop {
        let room = end.map(|end| usize::try_from(end - offset).unwrap_or(0));
        let result = match room {
            Some(0) => Ok(SegmentRead {
                offset,
                data: bytes::Bytes::new(),
                at_tail: false,
                end_of_segment: true,
            }),
            Some(room) => reader
                .read(offset, read_size.min(room))
                .await
                .map(|read| stop_at(read, room)),
            None => reader.read(offset, read_size).await,
        };
        let finished = match &result {
            Ok(read) => {
                offset = read.end_offset();
                read.end_of_segment
            }
            Err(_) => true,
        };
        let empty = matches!(&result, Ok(read) if read.data.is_empty() && !read.end_of_segment);
        if !empty && sender.send(Fetched { tag, result }).await.is_err() {
            return;
        }
        if finished {
            return;
        }
    }
}

/// `read` cut at `room` bytes, the end of the segment if it reaches them.
fn stop_at(mut read: SegmentRead, room: usize) -> SegmentRead {
    if read.data.len() >= room {
        read.data.truncate(room);
        read.end_of_segment = true;
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_cut() {
        let read = |data: &'static [u8]| SegmentRead {
            offset: 10,
            data: bytes::Bytes::from_static(data),
            at_tail: false,
            end_of_segment: false,
        };
        let cut = stop_at(read(b"abcdef"), 4);
        assert_eq!((&cut.data[..], cut.end_of_segment), (&b"abcd"[..], true));
        let short = stop_at(read(b"ab"), 4);
        assert_eq!((&short.data[..], short.end_of_segment), (&b"ab"[..], false));
    }
}

//! [`EventReader`]: one reader of a group. It owns some segments of the group's streams, reads
//! each with a fetch task (one read in flight per segment, bounded hand-off), parses events in
//! segment order and hands them out one at a time, round robin across its segments.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::state::{self, Positions};
use super::tasks::{fetch, heartbeat, Fetched};
use super::{GroupError, ReaderGroup};
use crate::controller::types::{ScopedSegment, ScopedStream};
use crate::segment::{EventParser, ReaderError, SegmentReader};
use crate::watermark::TimeWindowTracker;
use steps::Step;

mod checkpoints;
mod steps;
mod time_window;
mod types;

pub use types::{EventRead, ReadItem, ReaderSettings};

/// Reads handed from the fetch tasks to the reader and not yet taken (each up to
/// [`ReaderSettings::read_size`] bytes).
const FETCHED_CAPACITY: usize = 4;

struct Owned {
    tag: u64,
    parser: EventParser,
    /// The segment's end was read (sealed).
    ended: bool,
    task: JoinHandle<()>,
}

/// One reader of a [`ReaderGroup`]; see [`Self::next_event`] and [`Self::read_next`]. Close
/// it to leave the group; dropped without closing, it stays online until taken offline (see
/// the failure detector in [`crate::group`]).
///
/// ```no_run
/// # async fn example(group: pravaha_client::ReaderGroup) -> Result<(), Box<dyn std::error::Error>> {
/// let mut reader = group.create_reader("worker-7").await?;
/// while let Some(event) = reader.next_event().await? {
///     println!("{} bytes from {}", event.payload.len(), event.segment);
/// }
/// reader.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EventReader {
    group: ReaderGroup,
    id: String,
    settings: ReaderSettings,
    owned: BTreeMap<ScopedSegment, Owned>,
    sender: mpsc::Sender<Fetched>,
    receiver: mpsc::Receiver<Fetched>,
    next_tag: u64,
    last_rebalance: Option<Instant>,
    last_position_update: Instant,
    /// Where the round robin over owned segments resumes.
    cursor: usize,
    offline: bool,
    heartbeat: Option<JoinHandle<()>>,
    /// Other readers' heartbeat counters and when this reader saw each change.
    observed: BTreeMap<String, (u64, Instant)>,
    last_detection: Instant,
    /// Where the group's end cut stops each segment named there.
    ends: Positions,
    /// The group's refresh time and automatic checkpoint interval, once read from its state.
    group_settings: Option<(Duration, Option<Duration>)>,
    last_refresh: Option<Instant>,
    /// The highest checkpoint sequence number seen and when this reader first saw it.
    last_checkpoint: (u64, Instant),
    /// Checkpoints taken part in and not yet announced by [`EventReader::read_next`].
    announcements: VecDeque<String>,
    /// Checkpoints taken part in whose announcement was queued (those the state still keeps).
    announced: BTreeSet<String>,
    /// The change of the group's state in flight, if a call was cancelled while it ran; the
    /// next call settles it first (see `steps`).
    pending: Option<JoinHandle<Result<Step, GroupError>>>,
    /// The watermarks followed per stream by [`Self::current_time_window`].
    time_windows: BTreeMap<ScopedStream, TimeWindowTracker>,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned")
            .field("position", &self.parser.position())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl EventReader {
    pub(super) fn new(group: ReaderGroup, id: &str, settings: ReaderSettings) -> Self {
        let (sender, receiver) = mpsc::channel(FETCHED_CAPACITY);
        let heartbeat = settings
            .heartbeat_interval
            .map(|interval| tokio::spawn(heartbeat(group.clone(), id.to_owned(), interval)));
        Self {
            group,
            id: id.to_owned(),
            settings,
            owned: BTreeMap::new(),
            sender,
            receiver,
            next_tag: 0,
            last_rebalance: None,
            last_position_update: Instant::now(),
            cursor: 0,
            offline: false,
            heartbeat,
            observed: BTreeMap::new(),
            last_detection: Instant::now(),
            ends: Positions::new(),
            group_settings: None,
            last_refresh: None,
            last_checkpoint: (0, Instant::now()),
            announcements: VecDeque::new(),
            announced: BTreeSet::new(),
            pending: None,
            time_windows: BTreeMap::new(),
        }
    }

    /// The reader's id in its group.
    ///
    /// ```no_run
    /// # fn example(reader: pravaha_client::EventReader) {
    /// println!("reader {}", reader.id());
    /// # }
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The segments this reader owns, each with the position after the last event handed out.
    ///
    /// ```no_run
    /// # fn example(reader: pravaha_client::EventReader) {
    /// for (segment, offset) in reader.positions() {
    ///     println!("{segment}: next event at {offset}");
    /// }
    /// # }
    /// ```
    pub fn positions(&self) -> Positions {
        self.owned
            .iter()
            .map(|(segment, owned)| (segment.clone(), owned.parser.position()))
            .collect()
    }

    /// The next event of one of this reader's segments, waiting for one; `None` once the group
    /// has nothing left to read (its streams are sealed and every segment was read, or it was
    /// read up to the group's end cuts). Checkpoints this reader takes part in meanwhile are
    /// not announced (see [`Self::read_next`]).
    ///
    /// Events of one segment come in order; successors of a segment are read only after all
    /// their predecessors.
    ///
    /// **Cancel-safe**: the call may be dropped at any point (a time-out, a `select!`) and
    /// nothing is lost or read twice. An event is handed out only when the call returns. A
    /// change of the group's state the call started (acquiring, releasing or completing
    /// segments, recording positions, taking part in a checkpoint, taking a failed reader
    /// offline) runs to its end in a task of its own; the next call (or [`Self::close`])
    /// first waits for it and makes the reader match what it wrote: segments it acquired are
    /// read from the offsets recorded for them, those it released or completed are no longer
    /// read. Events are handed out more than once only by a reader taken offline without
    /// closing (by the failure detector or [`ReaderGroup::reader_offline`]): others read
    /// again what it handed out after the positions it last recorded.
    ///
    /// ```no_run
    /// # async fn example(mut reader: pravaha_client::EventReader) -> Result<(), Box<dyn std::error::Error>> {
    /// while let Some(event) = reader.next_event().await? {
    ///     println!("{:?}", event.payload);
    /// }
    /// reader.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_event(&mut self) -> Result<Option<EventRead>, GroupError> {
        loop {
            match self.read_next().await? {
                Some(ReadItem::Event(event)) => return Ok(Some(event)),
                Some(ReadItem::Checkpoint(_)) => {}
                None => return Ok(None),
            }
        }
    }

    /// Like [`Self::next_event`], but also announces each checkpoint this reader took part in,
    /// in order with the events: events answered before [`ReadItem::Checkpoint`] are before
    /// the checkpoint's positions, events answered after are after them. The reader takes part
    /// in a checkpoint at the first call after it learns of it, which is at most one group
    /// refresh time after the checkpoint started if the application keeps calling.
    ///
    /// ```no_run
    /// # async fn example(mut reader: pravaha_client::EventReader) -> Result<(), Box<dyn std::error::Error>> {
    /// use pravaha_client::group::ReadItem;
    ///
    /// while let Some(item) = reader.read_next().await? {
    ///     if let ReadItem::Checkpoint(name) = item {
    ///         println!("everything before {name} is processed");
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_next(&mut self) -> Result<Option<ReadItem>, GroupError> {
        loop {
            if self.offline {
                return Err(GroupError::ReaderOffline(self.id.clone()));
            }
            self.settle().await?;
            self.maintain().await?;
            if let Some(name) = self.announcements.pop_front() {
                return Ok(Some(ReadItem::Checkpoint(name)));
            }
            if let Some(event) = self.take_buffered()? {
                return Ok(Some(ReadItem::Event(event)));
            }
            if let Some(segment) = self.ended_segment() {
                self.complete(&segment).await?;
                continue;
            }
            if self.owned.is_empty() && self.group_finished().await? {
                return Ok(None);
            }
            let wait = self.next_maintenance();
            // The sender half lives in `self`; a time-out leads to maintenance.
            if let Ok(Some(fetched)) = tokio::time::timeout(wait, self.receiver.recv()).await {
                self.accept(fetched).await?;
            }
        }
    }

    /// Takes this reader offline: its segments become unassigned at the positions after the
    /// events handed out (checkpoints waiting for it record them and stop waiting).
    ///
    /// ```no_run
    /// # async fn example(reader: pravaha_client::EventReader) -> Result<(), Box<dyn std::error::Error>> {
    /// reader.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(mut self) -> Result<(), GroupError> {
        // Leaves at the positions of the segments a cancelled call's change assigned.
        self.settle().await?;
        let positions = self.positions();
        self.stop_all();
        self.stop_heartbeat();
        self.offline = true;
        self.group.reader_offline(&self.id, Some(&positions)).await
    }

    /// Refreshes the group's state (checkpoints), records positions, detects failed readers and
    /// rebalances when due.
    async fn maintain(&mut self) -> Result<(), GroupError> {
        let refresh = self
            .group_settings
            .map_or(Duration::ZERO, |(refresh, _)| refresh);
        if self.last_refresh.is_none_or(|at| at.elapsed() >= refresh) {
            self.refresh().await?;
            self.last_refresh = Some(Instant::now());
        }
        if let Some(timeout) = self.settings.offline_timeout {
            let interval = self.detection_interval();
            if self.last_detection.elapsed() >= interval {
                self.detect_failures(timeout).await?;
                self.last_detection = Instant::now();
            }
        }
        if self.last_position_update.elapsed() >= self.settings.position_update_interval {
            self.record_positions().await?;
            self.last_position_update = Instant::now();
        }
        let due = match self.last_rebalance {
            None => true,
            Some(at) if self.owned.is_empty() => at.elapsed() >= self.settings.idle_poll_interval,
            Some(at) => at.elapsed() >= self.settings.rebalance_interval,
        };
        if due {
            self.rebalance().await?;
            self.last_rebalance = Some(Instant::now());
        }
        Ok(())
    }

    fn detection_interval(&self) -> Duration {
        self.settings
            .heartbeat_interval
            .unwrap_or(Duration::from_secs(1))
    }

    /// The failure detector: every other reader whose heartbeat counter stood still for
    /// `timeout` (as this reader saw it: no clocks are compared) is taken offline at its last
    /// recorded positions. Readers that never heart-beat are left alone.
    async fn detect_failures(&mut self, timeout: Duration) -> Result<(), GroupError> {
        let now = Instant::now();
        let stale: Vec<(String, u64)> = {
            let mut sync = self.group.state.lock().await;
            sync.fetch_updates().await?;
            let online = state::assigned(&*sync)?;
            let heartbeats = state::heartbeats(&*sync)?;
            self.observed
                .retain(|reader, _| online.contains_key(reader) && heartbeats.contains_key(reader));
            let mut stale = Vec::new();
            for (reader, count) in heartbeats {
                if reader == self.id || !online.contains_key(&reader) {
                    continue;
                }
                match self.observed.get(&reader) {
                    Some((seen, since)) if *seen == count => {
                        if now.duration_since(*since) >= timeout {
                            stale.push((reader, count));
                        }
                    }
                    _ => {
                        self.observed.insert(reader, (count, now));
                    }
                }
            }
            stale
        };
        for (reader, count) in stale {
            let (group, id, offline) = (self.group.clone(), self.id.clone(), reader.clone());
            self.run_step(async move {
                let removed = group
                    .state
                    .lock()
                    .await
                    .update(|update| state::remove_if_stale(update, &offline, count))
                    .await?;
                let Some(completed) = removed else {
                    return Ok(Step::default());
                };
                group.checkpoints_completed(&completed).await;
                tracing::warn!(reader = %id, %offline, heartbeat = count, ?timeout, "reader stopped heart-beating; took it offline at its recorded positions");
                // Take a share of its segments now.
                Ok(Step::rebalance())
            })
            .await?;
            self.observed.remove(&reader);
        }
        Ok(())
    }

    /// Acquires unassigned segments up to the fair share, or releases one above it.
    async fn rebalance(&mut self) -> Result<(), GroupError> {
        let wanted = {
            let mut sync = self.group.state.lock().await;
            sync.fetch_updates().await?;
            if state::owned(&*sync, &self.id).is_err() {
                drop(sync);
                self.offline = true;
                self.stop_all();
                return Err(GroupError::ReaderOffline(self.id.clone()));
            }
            // The end cuts of a group reset meanwhile apply to what is acquired now.
            self.ends = state::end_offsets(&*sync)?;
            state::segments_to_acquire(&*sync, &self.id)?
        };
        if wanted > 0 {
            self.acquire(wanted.unsigned_abs()).await?;
        } else if wanted < 0 {
            // Give up the segment with the least buffered: others are mid-event more likely.
            let released = self
                .owned
                .iter()
                .filter(|(_, owned)| !owned.ended)
                .min_by_key(|(_, owned)| owned.parser.buffered())
                .map(|(segment, owned)| (segment.clone(), owned.parser.position()));
            if let Some((segment, offset)) = released {
                tracing::debug!(reader = %self.id, segment = %segment.qualified_name(), offset, "releasing segment");
                self.release(segment, offset).await?;
            }
        }
        Ok(())
    }

    /// `segment` was read to its end: successors are registered and become assignable when
    /// all their predecessors are completed. A segment that reached the group's end cut has
    /// no successors to read.
    async fn complete(&mut self, segment: &ScopedSegment) -> Result<(), GroupError> {
        let successors: Vec<_> = if self.ends.contains_key(segment) {
            Vec::new()
        } else {
            let successors = self.group.controller.get_successors(segment).await?;
            successors
                .successors
                .into_iter()
                .map(|successor| (successor.segment.segment, successor.predecessors))
                .collect()
        };
        let end = self
            .owned
            .get(segment)
            .map_or(0, |owned| owned.parser.position());
        let count = successors.len();
        self.record_completed(segment.clone(), end, successors)
            .await?;
        tracing::debug!(reader = %self.id, segment = %segment.qualified_name(), successors = count, "segment completed");
        // Acquire successors (or anything else) now.
        self.last_rebalance = None;
        Ok(())
    }

    /// Whether nothing is left to read anywhere in the group.
    async fn group_finished(&mut self) -> Result<bool, GroupError> {
        let mut sync = self.group.state.lock().await;
        sync.fetch_updates().await?;
        let assigned = state::assigned(&*sync)?;
        Ok(assigned.values().all(BTreeMap::is_empty)
            && state::unassigned(&*sync)?.is_empty()
            && state::future(&*sync)?.is_empty())
    }

    fn next_maintenance(&self) -> Duration {
        let interval = if self.owned.is_empty() {
            self.settings.idle_poll_interval
        } else {
            self.settings.rebalance_interval
        };
        let since = self.last_rebalance.map_or(interval, |at| at.elapsed());
        let mut wait = interval
            .saturating_sub(since)
            .min(self.settings.position_update_interval);
        if let (Some((refresh, _)), Some(at)) = (self.group_settings, self.last_refresh) {
            wait = wait.min(refresh.saturating_sub(at.elapsed()));
        }
        if self.settings.offline_timeout.is_some() {
            let detection = self.detection_interval();
            wait = wait.min(detection.saturating_sub(self.last_detection.elapsed()));
        }
        wait.max(Duration::from_millis(10))
    }

    /// The next complete event of an owned segment, round robin.
    fn take_buffered(&mut self) -> Result<Option<EventRead>, GroupError> {
        let count = self.owned.len();
        for step in 0..count {
            let index = (self.cursor + step) % count;
            let Some((segment, owned)) = self.owned.iter_mut().nth(index) else {
                continue;
            };
            if let Some(event) = owned.parser.next_event()? {
                self.cursor = index + 1;
                return Ok(Some(EventRead {
                    payload: event.payload,
                    segment: segment.clone(),
                    offset: event.offset,
                    next_offset: owned.parser.position(),
                }));
            }
        }
        Ok(None)
    }

    fn ended_segment(&self) -> Option<ScopedSegment> {
        self.owned
            .iter()
            .find(|(_, owned)| owned.ended)
            .map(|(segment, owned)| {
                if owned.parser.buffered() > 0 {
                    tracing::warn!(segment = %segment.qualified_name(), bytes = owned.parser.buffered(), "sealed segment ends inside an event");
                }
                segment.clone()
            })
    }

    async fn accept(&mut self, fetched: Fetched) -> Result<(), GroupError> {
        let Some((segment, owned)) = self
            .owned
            .iter_mut()
            .find(|(_, owned)| owned.tag == fetched.tag)
        else {
            return Ok(()); // from a segment released since
        };
        match fetched.result {
            Ok(read) => {
                owned.parser.push_read(&read)?;
                owned.ended |= read.end_of_segment;
                Ok(())
            }
            Err(ReaderError::NoSuchSegment(_)) => {
                owned.ended = true;
                Ok(())
            }
            Err(error) => {
                // Give the segment back where this reader stands; it is picked up again.
                tracing::warn!(reader = %self.id, segment = %segment.qualified_name(), %error, "segment read failed; releasing it");
                let (segment, offset) = (segment.clone(), owned.parser.position());
                self.release(segment, offset).await
            }
        }
    }

    fn start(&mut self, segment: ScopedSegment, offset: i64) {
        self.next_tag += 1;
        let tag = self.next_tag;
        let reader = SegmentReader::new(
            self.group.locator.clone(),
            segment.qualified_name(),
            self.settings.segment_reader.clone(),
        );
        let task = tokio::spawn(fetch(
            reader,
            offset,
            self.ends.get(&segment).copied(),
            self.settings.read_size,
            self.sender.clone(),
            tag,
        ));
        self.owned.insert(
            segment,
            Owned {
                tag,
                parser: EventParser::new(offset),
                ended: false,
                task,
            },
        );
    }

    fn stop(&mut self, segment: &ScopedSegment) {
        if let Some(owned) = self.owned.remove(segment) {
            owned.task.abort();
        }
    }

    fn stop_heartbeat(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }

    fn stop_all(&mut self) {
        for (_, owned) in std::mem::take(&mut self.owned) {
            owned.task.abort();
        }
    }
}

impl Drop for EventReader {
    /// Stops the fetch tasks and the heartbeat. The reader stays online in the group (no
    /// goodbye) until [`ReaderGroup::reader_offline`] or another reader's failure detector
    /// takes it out; use [`EventReader::close`] to leave.
    fn drop(&mut self) {
        self.stop_all();
        self.stop_heartbeat();
    }
}

//! The read index: recent segment data in memory, and readers waiting at the tail.
//!
//! Committed data enters the cache when its operation becomes durable and stays there until it
//! is in Tier-2; only then may it be evicted. Historical data read from Tier-2 is cached too.
//! Entries of a segment never overlap.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::state::{ContainerState, SegmentId, SegmentMeta};

struct CacheEntry {
    data: Bytes,
    /// The log sequence number of the operation that brought the data (0 for Tier-2 reads).
    sequence: u64,
}

#[derive(Default)]
struct SegmentCache {
    entries: BTreeMap<u64, CacheEntry>,
    waiters: Vec<oneshot::Sender<()>>,
    /// When the oldest data not yet in Tier-2 arrived.
    unstored_since: Option<Instant>,
    /// The lowest log sequence number among entries not yet in Tier-2 (the log must keep it).
    oldest_unstored: Option<u64>,
}

#[derive(Default)]
pub(super) struct ReadIndex {
    segments: HashMap<SegmentId, SegmentCache>,
    bytes: u64,
}

impl ReadIndex {
    pub fn cached_bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds committed data at `offset` (at the end of the segment) and wakes tail readers.
    pub fn append(&mut self, id: SegmentId, offset: u64, data: Bytes, sequence: u64, now: Instant) {
        let cache = self.segments.entry(id).or_default();
        cache.unstored_since.get_or_insert(now);
        // Sequence numbers grow, so an existing minimum stays the minimum.
        cache.oldest_unstored.get_or_insert(sequence);
        if !data.is_empty() {
            self.bytes += data.len() as u64;
            cache.entries.insert(offset, CacheEntry { data, sequence });
        }
        notify(cache);
    }

    /// Adds data read from Tier-2, trimmed so that it overlaps nothing cached.
    /// The caller checks that the segment exists.
    pub fn fill(&mut self, id: SegmentId, offset: u64, mut data: Bytes) {
        let cache = self.segments.entry(id).or_default();
        if let Some((&start, entry)) = cache.entries.range(..=offset).next_back() {
            if start + entry.data.len() as u64 > offset {
                return;
            }
        }
        if let Some((&next, _)) = cache.entries.range(offset..).next() {
            let room = usize::try_from(next - offset).unwrap_or(usize::MAX);
            data.truncate(room);
        }
        if !data.is_empty() {
            self.bytes += data.len() as u64;
            cache
                .entries
                .insert(offset, CacheEntry { data, sequence: 0 });
        }
    }

    /// Up to `max_length` cached bytes starting exactly at `offset` (joined across entries).
    pub fn read(&self, id: SegmentId, offset: u64, max_length: usize) -> Option<Bytes> {
        let cache = self.segments.get(&id)?;
        let (&start, entry) = cache.entries.range(..=offset).next_back()?;
        let end = start + entry.data.len() as u64;
        if offset >= end {
            return None;
        }
        let skip = usize::try_from(offset - start).expect("within an entry");
        let first = entry.data.slice(skip..);
        if first.len() >= max_length {
            return Some(first.slice(..max_length));
        }
        let mut joined = BytesMut::from(first.as_ref());
        let mut position = end;
        while joined.len() < max_length {
            let Some(next) = cache.entries.get(&position) else {
                break;
            };
            let take = next.data.len().min(max_length - joined.len());
            joined.extend_from_slice(&next.data[..take]);
            position += take as u64;
        }
        Some(joined.freeze())
    }

    /// The cached pieces of `[offset, end)`, for writing to Tier-2. `None` if a byte is missing.
    pub fn collect(&self, id: SegmentId, offset: u64, end: u64) -> Option<Vec<Bytes>> {
        let cache = self.segments.get(&id)?;
        let mut parts = Vec::new();
        let mut position = offset;
        while position < end {
            let (&start, entry) = cache.entries.range(..=position).next_back()?;
            let entry_end = start + entry.data.len() as u64;
            if position >= entry_end {
                return None;
            }
            let from = usize::try_from(position - start).expect("within an entry");
            let to = usize::try_from(entry_end.min(end) - start).expect("within an entry");
            parts.push(entry.data.slice(from..to));
            position = entry_end.min(end);
        }
        Some(parts)
    }

    /// Registers a reader waiting for data or a seal.
    pub fn wait(&mut self, id: SegmentId) -> oneshot::Receiver<()> {
        let cache = self.segments.entry(id).or_default();
        if cache.waiters.len() >= 64 {
            cache.waiters.retain(|waiter| !waiter.is_closed());
        }
        let (sender, receiver) = oneshot::channel();
        cache.waiters.push(sender);
        receiver
    }

    /// Wakes the readers waiting on `id` (after a seal, truncation or merge).
    pub fn notify(&mut self, id: SegmentId) {
        if let Some(cache) = self.segments.get_mut(&id) {
            notify(cache);
        }
    }

    pub fn remove(&mut self, id: SegmentId) {
        if let Some(cache) = self.segments.remove(&id) {
            self.bytes -= cache
                .entries
                .values()
                .map(|e| e.data.len() as u64)
                .sum::<u64>();
            // Dropping the waiters wakes them; they find the segment gone.
        }
    }

    /// Drops the entries that end at or before `start_offset`.
    pub fn truncate(&mut self, id: SegmentId, start_offset: u64) {
        let Some(cache) = self.segments.get_mut(&id) else {
            return;
        };
        let dropped: Vec<u64> = cache
            .entries
            .iter()
            .take_while(|(&start, entry)| start + entry.data.len() as u64 <= start_offset)
            .map(|(&start, _)| start)
            .collect();
        for start in dropped {
            let entry = cache.entries.remove(&start).expect("listed above");
            self.bytes -= entry.data.len() as u64;
        }
        notify(cache);
    }

    /// Moves the source's entries into the target, shifted to `target_offset`.
    pub fn merge(&mut self, target: SegmentId, source: SegmentId, target_offset: u64) {
        let source_cache = self.segments.remove(&source).unwrap_or_default();
        let cache = self.segments.entry(target).or_default();
        for (start, entry) in source_cache.entries {
            cache.entries.insert(target_offset + start, entry);
        }
        if let Some(oldest) = source_cache.oldest_unstored {
            cache.oldest_unstored =
                Some(cache.oldest_unstored.map_or(oldest, |own| own.min(oldest)));
        }
        if let Some(since) = source_cache.unstored_since {
            let earliest = cache.unstored_since.map_or(since, |own| own.min(since));
            cache.unstored_since = Some(earliest);
        }
        notify(cache);
    }

    /// Segments that may hold data not yet in Tier-2 (every segment with unstored data is among
    /// them), so that periodic work skips idle segments.
    pub fn segments_with_unstored(&self) -> impl Iterator<Item = SegmentId> + '_ {
        self.segments
            .iter()
            .filter(|(_, cache)| cache.unstored_since.is_some())
            .map(|(&id, _)| id)
    }

    /// When the oldest unstored data of `id` arrived.
    pub fn unstored_since(&self, id: SegmentId) -> Option<Instant> {
        self.segments.get(&id)?.unstored_since
    }

    /// Records that `id` has no data outside Tier-2 any more.
    pub fn mark_stored(&mut self, id: SegmentId) {
        if let Some(cache) = self.segments.get_mut(&id) {
            cache.unstored_since = None;
        }
    }

    /// Restarts the age of `id`'s unstored data after part of it went to Tier-2, so that the
    /// rest waits for a full chunk or a full age again instead of leaving as a small chunk.
    pub fn restart_unstored_clock(&mut self, id: SegmentId, now: Instant) {
        if let Some(cache) = self.segments.get_mut(&id) {
            cache.unstored_since = Some(now);
        }
    }

    /// Evicts entries already in Tier-2, lowest offsets first, until the cache holds at most
    /// `target_bytes` (or nothing evictable is left).
    pub fn evict(&mut self, state: &ContainerState, target_bytes: u64) {
        for (id, cache) in &mut self.segments {
            if self.bytes <= target_bytes {
                return;
            }
            let Some(segment) = state.get(*id) else {
                continue;
            };
            let evictable: Vec<u64> = cache
                .entries
                .iter()
                .filter(|(&start, entry)| segment.is_stored(start, entry.data.len() as u64))
                .map(|(&start, _)| start)
                .collect();
            for start in evictable {
                if self.bytes <= target_bytes {
                    return;
                }
                let entry = cache.entries.remove(&start).expect("listed above");
                self.bytes -= entry.data.len() as u64;
            }
        }
    }

    /// Recomputes the oldest unstored sequence of `segment` after part of it was stored or
    /// truncated: a walk over its unstored entries only.
    pub fn refresh_oldest_unstored(&mut self, segment: &SegmentMeta) {
        let Some(cache) = self.segments.get_mut(&segment.id) else {
            return;
        };
        let Some((first_unstored, _)) = segment.first_unstored_range() else {
            cache.oldest_unstored = None;
            return;
        };
        let from = cache
            .entries
            .range(..=first_unstored)
            .next_back()
            .map_or(first_unstored, |(&start, _)| start);
        cache.oldest_unstored = cache
            .entries
            .range(from..)
            .filter(|(&start, entry)| {
                let end = start + entry.data.len() as u64;
                end > segment.start_offset && !segment.is_stored(start, entry.data.len() as u64)
            })
            .map(|(_, entry)| entry.sequence)
            .min();
    }

    /// The lowest log sequence number whose data is not yet in Tier-2: the log must keep it.
    pub fn oldest_unstored_sequence(&self) -> Option<u64> {
        self.segments
            .values()
            .filter_map(|cache| cache.oldest_unstored)
            .min()
    }
}

fn notify(cache: &mut SegmentCache) {
    for waiter in cache.waiters.drain(..) {
        let _ = waiter.send(());
    }
}

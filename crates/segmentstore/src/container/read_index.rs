//! The read index: recent segment data in memory, and readers waiting at the tail.
//!
//! Committed data enters the cache when its operation becomes durable and stays there until it
//! is in Tier-2; only then may it be evicted. Historical data read from Tier-2 is cached too.
//! Entries of a segment never overlap.
//!
//! Small appends are copied into a segment's open block (up to [`BLOCK_BYTES`]) rather than
//! kept as one entry each: with an entry per 1 KiB append, 256 MiB of cache was a quarter of a
//! million map entries, and evicting or collecting a chunk's worth walked tens of thousands of
//! them at once (measured: 5 to 9 ms pauses of the container under sustained appends, in
//! `pravaha bench engine`). Whatever looks at a segment's entries first closes its open block
//! ([`SegmentCache::close_block`]): what it holds becomes an ordinary entry, sharing the block's
//! memory, and later appends fill the rest of the block.

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

/// Largest open block: appends are copied into blocks up to this size.
const BLOCK_BYTES: usize = 256 << 10;
/// First capacity of a segment's open block; each new block doubles it, up to [`BLOCK_BYTES`],
/// so that a segment written slowly holds little unused memory.
const FIRST_BLOCK_BYTES: usize = 16 << 10;
/// Appends at least this large become entries of their own, without a copy.
const DIRECT_BYTES: usize = 32 << 10;

/// Appended data not yet made an entry: `data` holds the segment's bytes from `start`.
struct OpenBlock {
    start: u64,
    data: BytesMut,
    /// The log sequence number of the first operation whose data is in the block.
    sequence: u64,
    /// The block's whole capacity, including what entries made from it use.
    capacity: usize,
}

#[derive(Default)]
struct SegmentCache {
    entries: BTreeMap<u64, CacheEntry>,
    open: Option<OpenBlock>,
    waiters: Vec<oneshot::Sender<()>>,
    /// When the oldest data not yet in Tier-2 arrived.
    unstored_since: Option<Instant>,
    /// The lowest log sequence number among entries not yet in Tier-2 (the log must keep it).
    oldest_unstored: Option<u64>,
}

#[derive(Default)]
pub(super) struct ReadIndex {
    segments: HashMap<SegmentId, SegmentCache, crate::state::FastHash>,
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
            cache.add(offset, data, sequence);
        }
        notify(cache);
    }

    /// Adds data read from Tier-2, trimmed so that it overlaps nothing cached.
    /// The caller checks that the segment exists.
    pub fn fill(&mut self, id: SegmentId, offset: u64, mut data: Bytes) {
        let cache = self.segments.entry(id).or_default();
        cache.close_block();
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
    pub fn read(&mut self, id: SegmentId, offset: u64, max_length: usize) -> Option<Bytes> {
        let cache = self.segments.get_mut(&id)?;
        cache.close_block();
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
    pub fn collect(&mut self, id: SegmentId, offset: u64, end: u64) -> Option<Vec<Bytes>> {
        let cache = self.segments.get_mut(&id)?;
        cache.close_block();
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
        if let Some(mut cache) = self.segments.remove(&id) {
            cache.close_block();
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
        cache.close_block();
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
        let mut source_cache = self.segments.remove(&source).unwrap_or_default();
        source_cache.close_block();
        let cache = self.segments.entry(target).or_default();
        cache.close_block();
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
            // Closed, and not reopened: the entries made from the block pin its memory until
            // the block itself is gone.
            cache.close_block();
            cache.open = None;
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
        cache.close_block();
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

impl SegmentCache {
    /// Adds `data` at `offset`, the segment's end: copied into the open block when small.
    fn add(&mut self, offset: u64, data: Bytes, sequence: u64) {
        if data.len() >= DIRECT_BYTES {
            self.close_block();
            self.entries.insert(offset, CacheEntry { data, sequence });
            return;
        }
        let fits = self.open.as_ref().is_some_and(|open| {
            open.start + open.data.len() as u64 == offset
                && open.data.capacity() - open.data.len() >= data.len()
        });
        if !fits {
            self.close_block();
            // Each new block doubles the last one's capacity, up to the largest.
            let capacity = self
                .open
                .as_ref()
                .map_or(FIRST_BLOCK_BYTES, |open| open.capacity.saturating_mul(2));
            let capacity = capacity
                .clamp(FIRST_BLOCK_BYTES, BLOCK_BYTES)
                .max(data.len());
            self.open = Some(OpenBlock {
                start: offset,
                data: BytesMut::with_capacity(capacity),
                sequence,
                capacity,
            });
        }
        let open = self.open.as_mut().expect("opened above");
        if open.data.is_empty() {
            open.start = offset;
            open.sequence = sequence;
        }
        open.data.extend_from_slice(&data);
    }

    /// Makes what the open block holds an entry. The block stays open for later appends, in
    /// the memory the entry does not use.
    fn close_block(&mut self) {
        let Some(open) = self.open.as_mut() else {
            return;
        };
        if open.data.is_empty() {
            return;
        }
        let data = open.data.split().freeze();
        let start = open.start;
        open.start += data.len() as u64;
        self.entries.insert(
            start,
            CacheEntry {
                data,
                sequence: open.sequence,
            },
        );
    }
}

fn notify(cache: &mut SegmentCache) {
    for waiter in cache.waiters.drain(..) {
        let _ = waiter.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ChunkRef, Operation, SegmentKind};

    const SEGMENT: SegmentId = 7;

    /// `count` appends of `size` bytes each, byte `i` of the segment being `i % 251`.
    fn append_pattern(index: &mut ReadIndex, from: u64, count: u64, size: u64) -> u64 {
        let now = Instant::now();
        let mut offset = from;
        for sequence in 0..count {
            let data: Vec<u8> = (offset..offset + size).map(|i| (i % 251) as u8).collect();
            index.append(SEGMENT, offset, Bytes::from(data), 100 + sequence, now);
            offset += size;
        }
        offset
    }

    fn pattern(from: u64, to: u64) -> Vec<u8> {
        (from..to).map(|i| (i % 251) as u8).collect()
    }

    fn entry_count(index: &ReadIndex) -> usize {
        index.segments[&SEGMENT].entries.len()
    }

    #[test]
    fn small_appends_share_blocks_and_read_back_at_any_offset() {
        let mut index = ReadIndex::default();
        let end = append_pattern(&mut index, 0, 3000, 100);
        assert_eq!(index.cached_bytes(), end);
        // Reads inside the open block, across blocks, and at the end.
        for (offset, length) in [(0, 10), (150, 1000), (16_000, 40_000), (end - 50, 500)] {
            let data = index.read(SEGMENT, offset, length).unwrap();
            let to = (offset + length as u64).min(end);
            assert_eq!(data.as_ref(), &pattern(offset, to)[..], "at {offset}");
        }
        assert!(index.read(SEGMENT, end, 10).is_none());
        // Appends after a read continue where it closed the block.
        let end2 = append_pattern(&mut index, end, 10, 100);
        assert_eq!(
            index.read(SEGMENT, end - 10, 2000).unwrap().as_ref(),
            &pattern(end - 10, end2)[..]
        );
        let parts = index.collect(SEGMENT, 0, end2).unwrap();
        assert_eq!(parts.concat(), pattern(0, end2));
        // 300,000 bytes in 100-byte appends, in blocks of up to 256 KiB, and the pieces that
        // the reads closed: a handful of entries rather than 3,010.
        assert!(entry_count(&index) < 20, "{} entries", entry_count(&index));
    }

    #[test]
    fn large_appends_are_kept_without_a_copy() {
        let mut index = ReadIndex::default();
        let data = Bytes::from(vec![3u8; DIRECT_BYTES]);
        index.append(SEGMENT, 0, data.clone(), 1, Instant::now());
        let read = index.read(SEGMENT, 0, DIRECT_BYTES).unwrap();
        assert_eq!(read.as_ptr(), data.as_ptr());
    }

    #[test]
    fn truncation_and_merge_see_the_open_block() {
        let mut index = ReadIndex::default();
        let end = append_pattern(&mut index, 0, 50, 100);
        index.truncate(SEGMENT, end);
        assert_eq!(index.cached_bytes(), 0);
        assert!(index.read(SEGMENT, 0, 10).is_none());
        // A source with an open block merged onto a target with one.
        let source = 9;
        let now = Instant::now();
        index.append(source, 0, Bytes::from_static(b"source"), 1, now);
        let target_end = append_pattern(&mut index, end, 3, 10);
        index.merge(SEGMENT, source, target_end);
        let merged = index.read(SEGMENT, end, 100).unwrap();
        let mut expected = pattern(end, target_end);
        expected.extend_from_slice(b"source");
        assert_eq!(merged.as_ref(), &expected[..]);
        index.remove(SEGMENT);
        assert_eq!(index.cached_bytes(), 0);
    }

    #[test]
    fn eviction_drops_only_stored_data() {
        let mut index = ReadIndex::default();
        let end = append_pattern(&mut index, 0, 1000, 100);
        let mut state = ContainerState::default();
        state.apply(&Operation::CreateSegment {
            id: SEGMENT,
            name: "s".into(),
            kind: SegmentKind::Stream,
            attributes: Vec::new(),
            time_ms: 0,
        });
        state.apply(&Operation::Append {
            id: SEGMENT,
            offset: 0,
            data: Bytes::from(vec![0; end as usize]),
            attributes: Vec::new(),
            time_ms: 0,
        });
        // Only the first half is in Tier-2: the rest stays whatever the budget.
        let half = 50_000;
        index.collect(SEGMENT, 0, half).unwrap();
        state.apply(&Operation::Stored {
            id: SEGMENT,
            offset: 0,
            chunk: ChunkRef {
                name: "chunk".into(),
                chunk_offset: 0,
                length: half,
            },
        });
        index.evict(&state, 0);
        assert!(
            index.cached_bytes() >= end - half,
            "{}",
            index.cached_bytes()
        );
        let tail = index.read(SEGMENT, end - 100, 100).unwrap();
        assert_eq!(tail.as_ref(), &pattern(end - 100, end)[..]);
        // Appending after an eviction starts a new block.
        let end2 = append_pattern(&mut index, end, 5, 100);
        assert_eq!(
            index.read(SEGMENT, end, 500).unwrap().as_ref(),
            &pattern(end, end2)[..]
        );
    }
}

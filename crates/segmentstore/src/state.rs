//! The container's metadata as a pure state machine: [`ContainerState`] and [`Operation`].
//!
//! Every change to a container is an [`Operation`] recorded in the durable log. Applying the same
//! operations to the same state always gives the same state, which is how recovery rebuilds a
//! container (a checkpoint, then the operations after it). Validation happens before an operation
//! is recorded (see `container::sequencer`); [`ContainerState::apply`] itself never fails.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::table;

/// Segment ids are internal to a container and never reused.
pub type SegmentId = u64;
/// Attribute ids are UUIDs, held as the u128 of their big-endian bytes (the log stores the u128
/// little-endian).
pub type AttributeId = u128;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Opaque bytes (events, byte streams).
    Stream,
    /// Table entries (see [`crate::table`]).
    Table,
}

impl SegmentKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Table => "table",
        }
    }
}

/// A range of a segment stored in Tier-2: `length` bytes at `chunk_offset` in chunk `name`.
/// A chunk may hold several ranges of one segment (never of two): they are adjacent, in order,
/// in the segment and in the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    pub name: String,
    pub chunk_offset: u64,
    pub length: u64,
}

/// Where a live table key's latest value is: its version (the entry's offset) and value length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSlot {
    pub version: u64,
    pub value_length: u32,
}

impl TableSlot {
    /// The segment offset of the value of an entry for a key of `key_length` bytes.
    pub fn value_offset(&self, key_length: usize) -> u64 {
        self.version + (table::ENTRY_HEADER_LEN + key_length) as u64
    }
}

/// The metadata of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub id: SegmentId,
    pub name: String,
    pub kind: SegmentKind,
    pub length: u64,
    pub start_offset: u64,
    pub sealed: bool,
    pub last_modified_ms: u64,
    pub attributes: BTreeMap<AttributeId, i64>,
    /// Tier-2 chunks by the segment offset they start at; they never overlap.
    pub chunks: BTreeMap<u64, ChunkRef>,
    /// Live keys of a table segment.
    pub table: BTreeMap<Bytes, TableSlot>,
}

impl SegmentMeta {
    fn new(id: SegmentId, name: String, kind: SegmentKind, time_ms: u64) -> Self {
        Self {
            id,
            name,
            kind,
            length: 0,
            start_offset: 0,
            sealed: false,
            last_modified_ms: time_ms,
            attributes: BTreeMap::new(),
            chunks: BTreeMap::new(),
            table: BTreeMap::new(),
        }
    }

    /// The chunk holding segment offset `offset`, with the offset it starts at.
    pub fn chunk_at(&self, offset: u64) -> Option<(u64, &ChunkRef)> {
        let (&start, chunk) = self.chunks.range(..=offset).next_back()?;
        (offset < start + chunk.length).then_some((start, chunk))
    }

    /// Whether every byte of `[offset, offset + length)` is in Tier-2.
    pub fn is_stored(&self, offset: u64, length: u64) -> bool {
        let end = offset + length;
        let mut position = offset;
        while position < end {
            match self.chunk_at(position) {
                Some((start, chunk)) => position = start + chunk.length,
                None => return false,
            }
        }
        true
    }

    /// Bytes of `[start_offset, length)` not yet in Tier-2.
    pub fn unstored_bytes(&self) -> u64 {
        let stored: u64 = self
            .chunks
            .iter()
            .map(|(&start, chunk)| {
                let end = start + chunk.length;
                end.saturating_sub(start.max(self.start_offset))
            })
            .sum();
        (self.length - self.start_offset).saturating_sub(stored)
    }

    /// The first range at or after the start offset that is not in Tier-2, if any.
    pub fn first_unstored_range(&self) -> Option<(u64, u64)> {
        let mut position = self.start_offset;
        loop {
            if position >= self.length {
                return None;
            }
            match self.chunk_at(position) {
                Some((start, chunk)) => position = start + chunk.length,
                None => {
                    let next_chunk = self
                        .chunks
                        .range(position..)
                        .next()
                        .map_or(self.length, |(&start, _)| start);
                    return Some((position, next_chunk.min(self.length)));
                }
            }
        }
    }
}

/// One recorded change to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// The whole metadata, so that the log before it can be dropped.
    Checkpoint(Box<ContainerState>),
    CreateSegment {
        id: SegmentId,
        name: String,
        kind: SegmentKind,
        attributes: Vec<(AttributeId, i64)>,
        time_ms: u64,
    },
    /// `data` goes at `offset` (the segment's length when it was accepted); `attributes` are
    /// set with it (a writer's last event number).
    Append {
        id: SegmentId,
        offset: u64,
        data: Bytes,
        attributes: Vec<(AttributeId, i64)>,
        time_ms: u64,
    },
    Seal {
        id: SegmentId,
        time_ms: u64,
    },
    Truncate {
        id: SegmentId,
        offset: u64,
        time_ms: u64,
    },
    /// The sealed `source` is appended to `target` at `target_offset` and disappears.
    Merge {
        target: SegmentId,
        source: SegmentId,
        target_offset: u64,
        time_ms: u64,
    },
    Delete {
        id: SegmentId,
    },
    UpdateAttributes {
        id: SegmentId,
        values: Vec<(AttributeId, i64)>,
        time_ms: u64,
    },
    /// Table entries (see [`crate::table`]) appended at `offset`.
    TableUpdate {
        id: SegmentId,
        offset: u64,
        data: Bytes,
        time_ms: u64,
    },
    /// `chunk` now holds the segment's bytes from `offset`.
    Stored {
        id: SegmentId,
        offset: u64,
        chunk: ChunkRef,
    },
}

/// All metadata of a container.
/// The container's maps are looked up several times per append; SipHash (the standard
/// library's default, resistant to chosen-key flooding) cost more than the rest of a lookup.
/// Segment names and ids come from authorized clients and the container itself, so a fast
/// seeded hash is enough.
pub type FastHash = foldhash::fast::RandomState;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerState {
    pub next_segment_id: SegmentId,
    pub segments: HashMap<SegmentId, SegmentMeta, FastHash>,
    pub names: HashMap<String, SegmentId, FastHash>,
}

impl ContainerState {
    pub fn by_name(&self, name: &str) -> Option<&SegmentMeta> {
        self.names.get(name).and_then(|id| self.segments.get(id))
    }

    pub fn get(&self, id: SegmentId) -> Option<&SegmentMeta> {
        self.segments.get(&id)
    }

    /// Applies a validated operation. Returns the chunks it made unreachable (to delete in
    /// Tier-2 once the operation is durable).
    pub fn apply(&mut self, operation: &Operation) -> Vec<String> {
        match operation {
            Operation::Checkpoint(state) => {
                *self = (**state).clone();
                Vec::new()
            }
            Operation::CreateSegment {
                id,
                name,
                kind,
                attributes,
                time_ms,
            } => {
                let mut segment = SegmentMeta::new(*id, name.clone(), *kind, *time_ms);
                segment.attributes.extend(attributes.iter().copied());
                self.names.insert(name.clone(), *id);
                self.segments.insert(*id, segment);
                self.next_segment_id = self.next_segment_id.max(id + 1);
                Vec::new()
            }
            Operation::Append {
                id,
                offset,
                data,
                attributes,
                time_ms,
            } => {
                let segment = self.segment_mut(*id);
                assert_eq!(segment.length, *offset, "appends are applied at the end");
                segment.length += data.len() as u64;
                segment.attributes.extend(attributes.iter().copied());
                segment.last_modified_ms = *time_ms;
                Vec::new()
            }
            Operation::Seal { id, time_ms } => {
                let segment = self.segment_mut(*id);
                segment.sealed = true;
                segment.last_modified_ms = *time_ms;
                Vec::new()
            }
            Operation::Truncate {
                id,
                offset,
                time_ms,
            } => self.apply_truncate(*id, *offset, *time_ms),
            Operation::Merge {
                target,
                source,
                target_offset,
                time_ms,
            } => {
                self.apply_merge(*target, *source, *target_offset, *time_ms);
                Vec::new()
            }
            Operation::Delete { id } => {
                let segment = self.segments.remove(id).expect("deleting a known segment");
                self.names.remove(&segment.name);
                let mut names: Vec<String> = segment
                    .chunks
                    .into_values()
                    .map(|chunk| chunk.name)
                    .collect();
                // A chunk holding several ranges appears once per range, in a run.
                names.dedup();
                names
            }
            Operation::UpdateAttributes {
                id,
                values,
                time_ms,
            } => {
                let segment = self.segment_mut(*id);
                segment.attributes.extend(values.iter().copied());
                segment.last_modified_ms = *time_ms;
                Vec::new()
            }
            Operation::TableUpdate {
                id,
                offset,
                data,
                time_ms,
            } => {
                self.apply_table_update(*id, *offset, data, *time_ms);
                Vec::new()
            }
            Operation::Stored { id, offset, chunk } => {
                let segment = self.segment_mut(*id);
                segment.chunks.insert(*offset, chunk.clone());
                Vec::new()
            }
        }
    }

    fn segment_mut(&mut self, id: SegmentId) -> &mut SegmentMeta {
        self.segments
            .get_mut(&id)
            .expect("validated operations name existing segments")
    }

    fn apply_truncate(&mut self, id: SegmentId, offset: u64, time_ms: u64) -> Vec<String> {
        let segment = self.segment_mut(id);
        segment.start_offset = segment.start_offset.max(offset);
        segment.last_modified_ms = time_ms;
        let start = segment.start_offset;
        let dropped: Vec<u64> = segment
            .chunks
            .iter()
            .filter(|(&chunk_start, chunk)| chunk_start + chunk.length <= start)
            .map(|(&chunk_start, _)| chunk_start)
            .collect();
        let mut names: Vec<String> = dropped
            .into_iter()
            .filter_map(|chunk_start| segment.chunks.remove(&chunk_start))
            .map(|chunk| chunk.name)
            .collect();
        // A chunk holding several ranges appears once per range, in a run; the ranges dropped
        // are the segment's first ones, so only the first range kept can share their last
        // chunk, which then stays.
        names.dedup();
        let kept = segment
            .chunks
            .values()
            .next()
            .map(|chunk| chunk.name.as_str());
        if names.last().map(String::as_str) == kept {
            names.pop();
        }
        names
    }

    fn apply_merge(
        &mut self,
        target: SegmentId,
        source: SegmentId,
        target_offset: u64,
        time_ms: u64,
    ) {
        let source = self
            .segments
            .remove(&source)
            .expect("merging a known segment");
        self.names.remove(&source.name);
        let target = self.segment_mut(target);
        assert_eq!(
            target.length, target_offset,
            "merges are applied at the end"
        );
        target.length += source.length;
        target.last_modified_ms = time_ms;
        for (start, chunk) in source.chunks {
            target.chunks.insert(target_offset + start, chunk);
        }
    }

    fn apply_table_update(&mut self, id: SegmentId, offset: u64, data: &Bytes, time_ms: u64) {
        let segment = self.segment_mut(id);
        assert_eq!(
            segment.length, offset,
            "table updates are applied at the end"
        );
        let (entries, used) =
            table::decode_entries(data, offset).expect("validated table updates decode");
        assert_eq!(used, data.len(), "table updates hold whole entries");
        for entry in entries {
            match entry.value {
                Some(value) => {
                    let slot = TableSlot {
                        version: entry.version,
                        value_length: u32::try_from(value.len()).expect("values are bounded"),
                    };
                    segment.table.insert(entry.key, slot);
                }
                None => {
                    segment.table.remove(&entry.key);
                }
            }
        }
        segment.length += data.len() as u64;
        segment.last_modified_ms = time_ms;
    }
}

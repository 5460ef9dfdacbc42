//! The container's answers to requests that change nothing durable (reads, info, attributes,
//! table lookups and scans), its side of the Tier-2 writer's protocol, and the application of
//! durable operations to a state and its cache (shared with recovery).

use super::Container;
use crate::container::command::{command_name, Command, KeyLocation, PlannedRead, ReadPlan};
use crate::container::read_index::ReadIndex;
use crate::container::storage_writer::{self, WriterRequest};
use crate::container::SegmentInfo;
use crate::container::{sequencer, ContainerStats};
use crate::error::SegmentError;
use crate::state::{ContainerState, Operation, SegmentMeta};
use std::sync::atomic::Ordering;
use tokio::time::Instant;

impl Container {
    /// Requests that change nothing durable: answered at once from the committed state.
    pub(super) fn query(&mut self, request: Command) {
        match request {
            Command::Read {
                name,
                offset,
                max_length,
                reply,
            } => {
                let _ = reply.send(self.read(&name, offset, max_length));
            }
            Command::Info { name, reply } => {
                let _ = reply.send(sequencer::segment(&self.committed, &name).map(info));
            }
            Command::GetAttributes { name, ids, reply } => {
                let result = sequencer::segment(&self.committed, &name).map(|segment| {
                    ids.iter()
                        .map(|id| segment.attributes.get(id).copied())
                        .collect()
                });
                let _ = reply.send(result);
            }
            Command::TableLookup { name, keys, reply } => {
                let _ = reply.send(self.table_lookup(&name, &keys));
            }
            Command::TableScan {
                name,
                after,
                max_keys,
                reply,
            } => {
                let _ = reply.send(self.table_scan(&name, after.as_ref(), max_keys));
            }
            Command::CacheFill { id, offset, data } => {
                if self
                    .committed
                    .get(id)
                    .is_some_and(|s| offset >= s.start_offset)
                {
                    self.cache.fill(id, offset, data);
                    self.evict_if_needed();
                }
            }
            Command::Stats { reply } => {
                let _ = reply.send(ContainerStats {
                    segments: self.committed.segments.len(),
                    cached_bytes: self.cache.cached_bytes(),
                    unstored_bytes: self.unstored_bytes,
                    log_bytes: self.log_bytes,
                    throttled_requests: self.throttled_total,
                    log_frames: self.log.counters().frames.load(Ordering::Relaxed),
                    log_records: self.log.counters().records.load(Ordering::Relaxed),
                });
            }
            Command::Storage(request) => self.on_writer(request),
            mutating => unreachable!(
                "mutating requests are dispatched: {}",
                command_name(&mutating)
            ),
        }
    }

    fn read(
        &mut self,
        name: &str,
        offset: u64,
        max_length: usize,
    ) -> Result<PlannedRead, SegmentError> {
        let segment = sequencer::segment(&self.committed, name)?;
        let (length, sealed) = (segment.length, segment.sealed);
        let plan = self.plan_read(name, offset, max_length)?;
        Ok(PlannedRead {
            plan,
            length,
            sealed,
        })
    }

    fn plan_read(
        &mut self,
        name: &str,
        offset: u64,
        max_length: usize,
    ) -> Result<ReadPlan, SegmentError> {
        let segment = sequencer::segment(&self.committed, name)?;
        if offset < segment.start_offset {
            return Err(SegmentError::Truncated {
                segment: name.to_owned(),
                offset,
                start_offset: segment.start_offset,
            });
        }
        if offset > segment.length {
            return Err(SegmentError::BadOffset {
                segment: name.to_owned(),
                expected: segment.length,
                given: offset,
            });
        }
        if offset == segment.length {
            if segment.sealed {
                return Ok(ReadPlan::EndOfSegment);
            }
            return Ok(ReadPlan::Wait(self.cache.wait(segment.id)));
        }
        let available = usize::try_from(segment.length - offset).unwrap_or(usize::MAX);
        let length = max_length.min(available);
        if let Some(data) = self.cache.read(segment.id, offset, length) {
            return Ok(ReadPlan::Data(data));
        }
        let Some((start, chunk)) = segment.chunk_at(offset) else {
            return Err(SegmentError::Corrupt(format!(
                "{name}: offset {offset} is neither cached nor in Tier-2"
            )));
        };
        let within = offset - start;
        let want = (length as u64).max(self.config.read_ahead_bytes);
        let end = chunk.length.min(within + want);
        Ok(ReadPlan::Storage {
            id: segment.id,
            chunk: chunk.name.clone(),
            chunk_range: chunk.chunk_offset + within..chunk.chunk_offset + end,
        })
    }

    fn table_lookup(
        &self,
        name: &str,
        keys: &[bytes::Bytes],
    ) -> Result<Vec<Option<KeyLocation>>, SegmentError> {
        let segment = table_segment(&self.committed, name)?;
        Ok(keys
            .iter()
            .map(|key| {
                let slot = segment.table.get(key)?;
                Some((
                    slot.version,
                    slot.value_offset(key.len()),
                    slot.value_length,
                ))
            })
            .collect())
    }

    fn table_scan(
        &self,
        name: &str,
        after: Option<&bytes::Bytes>,
        max_keys: usize,
    ) -> Result<Vec<(bytes::Bytes, u64, u64, u32)>, SegmentError> {
        use std::ops::Bound;
        let segment = table_segment(&self.committed, name)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(segment
            .table
            .range::<bytes::Bytes, _>((lower, Bound::Unbounded))
            .take(max_keys)
            .map(|(key, slot)| {
                (
                    key.clone(),
                    slot.version,
                    slot.value_offset(key.len()),
                    slot.value_length,
                )
            })
            .collect())
    }

    pub(super) fn on_writer(&mut self, request: WriterRequest) {
        match request {
            WriterRequest::Work { reply } => {
                let work = storage_writer::select_work(
                    self.id,
                    &self.config,
                    &self.accepted,
                    &self.committed,
                    &mut self.cache,
                    self.unstored_bytes,
                    std::mem::take(&mut self.garbage),
                    self.extend_chunks,
                );
                let _ = reply.send(work);
            }
            WriterRequest::Stored {
                id,
                offset,
                chunk,
                reply,
            } => {
                let accepted = storage_writer::stored_is_valid(&self.accepted, id, offset, &chunk);
                if accepted && self.failed.is_none() {
                    self.record(Operation::Stored { id, offset, chunk });
                }
                let _ = reply.send(accepted);
            }
        }
    }
}

/// Applies a durable operation to a state and its cache; shared by commits and recovery.
/// Returns the Tier-2 chunks the operation made unreachable.
pub(in crate::container) fn apply_committed(
    state: &mut ContainerState,
    cache: &mut ReadIndex,
    sequence: u64,
    operation: &Operation,
    now: Instant,
) -> Vec<String> {
    let garbage = state.apply(operation);
    match operation {
        Operation::Append {
            id, offset, data, ..
        }
        | Operation::TableUpdate {
            id, offset, data, ..
        } => {
            cache.append(*id, *offset, data.clone(), sequence, now);
        }
        Operation::Seal { id, .. } => cache.notify(*id),
        Operation::Truncate { id, .. } => {
            if let Some(segment) = state.get(*id) {
                cache.truncate(*id, segment.start_offset);
                cache.refresh_oldest_unstored(segment);
            }
        }
        Operation::Stored { id, .. } => {
            if let Some(segment) = state.get(*id) {
                cache.refresh_oldest_unstored(segment);
            }
        }
        Operation::Merge {
            target,
            source,
            target_offset,
            ..
        } => cache.merge(*target, *source, *target_offset),
        Operation::Delete { id } => cache.remove(*id),
        Operation::Checkpoint(_)
        | Operation::CreateSegment { .. }
        | Operation::UpdateAttributes { .. } => {}
    }
    garbage
}

pub(super) fn touched_segments(operation: &Operation) -> Vec<u64> {
    match operation {
        Operation::Checkpoint(_) => Vec::new(),
        Operation::Merge { target, source, .. } => vec![*target, *source],
        Operation::CreateSegment { id, .. }
        | Operation::Append { id, .. }
        | Operation::Seal { id, .. }
        | Operation::Truncate { id, .. }
        | Operation::Delete { id }
        | Operation::UpdateAttributes { id, .. }
        | Operation::TableUpdate { id, .. }
        | Operation::Stored { id, .. } => vec![*id],
    }
}

pub(super) fn table_segment<'a>(
    state: &'a ContainerState,
    name: &str,
) -> Result<&'a SegmentMeta, SegmentError> {
    let segment = sequencer::segment(state, name)?;
    if segment.kind != crate::state::SegmentKind::Table {
        return Err(SegmentError::WrongSegmentKind {
            segment: name.to_owned(),
            actual: segment.kind.name(),
            needed: "table",
        });
    }
    Ok(segment)
}

pub(in crate::container) fn info(segment: &SegmentMeta) -> SegmentInfo {
    SegmentInfo {
        name: segment.name.clone(),
        kind: segment.kind,
        length: segment.length,
        start_offset: segment.start_offset,
        sealed: segment.sealed,
        last_modified_ms: segment.last_modified_ms,
        unstored_bytes: segment.unstored_bytes(),
    }
}

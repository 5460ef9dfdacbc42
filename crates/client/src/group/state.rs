//! The reader-group state's rules, as the official Rust client applies them: readers join and
//! leave, acquire unassigned segments up to their fair share, release them at a position, and
//! complete them (successors become assignable once all their predecessors are completed).
//!
//! Every change is a function of an [`Update`] (run again on a conflict), so two readers (of
//! either client) never own one segment.

use std::collections::{BTreeMap, BTreeSet};

use crate::controller::types::{ScopedSegment, SegmentId};
use crate::sync::{SyncError, Synchronizer, Update, Value};

use super::checkpoint_state;
use super::format::{
    ConfigVersioned, GroupSettingsVersioned, Offset, SegmentNumber, SegmentRecord,
    StreamCutVersioned, ASSIGNED, ASSIGNED_TYPE, CONFIG, CONFIG_KEY, CONFIG_TYPE, DISTANCE,
    DISTANCE_TYPE, FUTURE, FUTURE_TYPE, HEARTBEATS, HEARTBEAT_TYPE, OFFSET_TYPE, SETTINGS,
    SETTINGS_TYPE, UNASSIGNED,
};

/// Segment → offset.
///
/// ```
/// use pravaha_client::controller::types::{ScopedStream, SegmentId};
/// use pravaha_client::group::Positions;
///
/// let orders = ScopedStream::new("shop", "orders");
/// let positions = Positions::from([(orders.segment(SegmentId(0)), 4096)]);
/// assert_eq!(positions[&orders.segment(SegmentId(0))], 4096);
/// ```
pub type Positions = BTreeMap<ScopedSegment, i64>;

/// A read-only view of the state: the synchronizer's copy or an update's snapshot.
pub trait StateView {
    fn entries(&self, outer: &str) -> Vec<(String, Value)>;
}

impl StateView for Synchronizer {
    fn entries(&self, outer: &str) -> Vec<(String, Value)> {
        self.inner_map(outer).into_iter().collect()
    }
}

impl StateView for Update {
    fn entries(&self, outer: &str) -> Vec<(String, Value)> {
        self.inner_map(outer)
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.clone()))
            .collect()
    }
}

/// Every online reader with its segments and positions.
pub fn assigned(view: &impl StateView) -> Result<BTreeMap<String, Positions>, SyncError> {
    view.entries(ASSIGNED)
        .into_iter()
        .map(|(reader, value)| Ok((reader, decode_positions(&value)?)))
        .collect()
}

/// The segments no reader owns, with the offsets to start from.
pub fn unassigned(view: &impl StateView) -> Result<Positions, SyncError> {
    view.entries(UNASSIGNED)
        .into_iter()
        .map(|(name, value)| {
            let offset: Offset = value.decode()?;
            Ok((parse_segment(&name)?, offset.read))
        })
        .collect()
}

/// Successors waiting for predecessors (segment ids) to be completed.
pub fn future(view: &impl StateView) -> Result<BTreeMap<ScopedSegment, BTreeSet<i64>>, SyncError> {
    view.entries(FUTURE)
        .into_iter()
        .map(|(name, value)| {
            let waiting: BTreeSet<SegmentNumber> = value.decode()?;
            let ids = waiting.into_iter().map(|segment| segment.number).collect();
            Ok((parse_segment(&name)?, ids))
        })
        .collect()
}

/// How many segments `reader` should acquire (positive) or release (negative) to hold its
/// fair share: the segments (assigned and unassigned) divided by the readers, rounded up.
pub fn segments_to_acquire(view: &impl StateView, reader: &str) -> Result<isize, SyncError> {
    let assigned = assigned(view)?;
    let Some(own) = assigned.get(reader) else {
        return Ok(0);
    };
    let total = assigned.values().map(BTreeMap::len).sum::<usize>() + unassigned(view)?.len();
    let fair_share = total.div_ceil(assigned.len());
    Ok(fair_share as isize - own.len() as isize)
}

/// Writes the configuration and the starting segments, unless the group exists already.
/// Returns whether it was created now.
pub fn initialize(
    update: &mut Update,
    config: &ConfigVersioned,
    segments: &Positions,
) -> Result<bool, SyncError> {
    if !update.is_empty() {
        return Ok(false);
    }
    update.insert(CONFIG, CONFIG_KEY, CONFIG_TYPE, config)?;
    for (segment, offset) in segments {
        put_unassigned(update, segment, *offset)?;
    }
    Ok(true)
}

/// Writes our settings of the group (beside [`initialize`], or at a reset).
pub fn put_settings(
    update: &mut Update,
    settings: &GroupSettingsVersioned,
) -> Result<(), SyncError> {
    update.insert(SETTINGS, CONFIG_KEY, SETTINGS_TYPE, settings)
}

/// Starts the group over with `config` from `segments`: every reader is taken offline (each
/// finds out at its next state change), nothing waits for predecessors, outstanding
/// checkpoints are abandoned (completed ones stay).
pub fn reset(
    update: &mut Update,
    config: &ConfigVersioned,
    settings: &GroupSettingsVersioned,
    segments: &Positions,
) -> Result<(), SyncError> {
    for outer in [ASSIGNED, DISTANCE, HEARTBEATS, UNASSIGNED, FUTURE] {
        let keys: Vec<String> = update
            .inner_map(outer)
            .into_keys()
            .map(str::to_owned)
            .collect();
        for key in keys {
            update.insert_tombstone(outer, &key)?;
        }
    }
    checkpoint_state::abandon_all(update)?;
    update.insert(CONFIG, CONFIG_KEY, CONFIG_TYPE, config)?;
    put_settings(update, settings)?;
    for (segment, offset) in segments {
        put_unassigned(update, segment, *offset)?;
    }
    Ok(())
}

/// The group's configuration; `None` if the group does not exist.
pub fn config(view: &impl StateView) -> Result<Option<ConfigVersioned>, SyncError> {
    view.entries(CONFIG)
        .into_iter()
        .find(|(key, _)| key == CONFIG_KEY)
        .map(|(_, value)| value.decode().map_err(SyncError::from))
        .transpose()
}

/// The offsets of the group's end cuts: where readers stop reading each segment named there.
pub fn end_offsets(view: &impl StateView) -> Result<Positions, SyncError> {
    let Some(ConfigVersioned::V1(config)) = config(view)? else {
        return Ok(Positions::new());
    };
    Ok(config
        .ending_stream_cuts
        .values()
        .filter_map(|cut| match cut {
            StreamCutVersioned::V1(cut) => Some(cut),
            StreamCutVersioned::Unbounded | StreamCutVersioned::Tail => None,
        })
        .flat_map(|cut| {
            cut.positions
                .iter()
                .map(|(segment, offset)| (ScopedSegment::from(segment), *offset))
        })
        .collect())
}

/// Adds `reader` with no segments; fails if it is online already.
pub fn add_reader(update: &mut Update, reader: &str) -> Result<(), SyncError> {
    if update.contains(ASSIGNED, reader) {
        return Err(SyncError::Precondition(format!(
            "reader {reader} is already online"
        )));
    }
    put_assigned(update, reader, &Positions::new())?;
    update.insert(DISTANCE, reader, DISTANCE_TYPE, &u64::MAX)
}

/// Takes `reader` offline: its segments become unassigned at `positions` (where given) or at
/// the positions it last recorded; checkpoints waiting for it record them and stop waiting.
/// Returns the checkpoints completed by its leaving.
pub fn remove_reader(
    update: &mut Update,
    reader: &str,
    positions: Option<&Positions>,
) -> Result<Vec<String>, SyncError> {
    let owned = owned(update, reader)?;
    let mut released = Positions::new();
    for (segment, recorded) in &owned {
        let offset = positions
            .and_then(|positions| positions.get(segment))
            .unwrap_or(recorded);
        put_unassigned(update, segment, *offset)?;
        released.insert(segment.clone(), *offset);
    }
    update.insert_tombstone(ASSIGNED, reader)?;
    if update.contains(DISTANCE, reader) {
        update.insert_tombstone(DISTANCE, reader)?;
    }
    if update.contains(HEARTBEATS, reader) {
        update.insert_tombstone(HEARTBEATS, reader)?;
    }
    checkpoint_state::give_up(update, reader, &released, true)
}

/// Every reader's heartbeat counter (readers of ours that heartbeat; official readers never
/// do).
pub fn heartbeats(view: &impl StateView) -> Result<BTreeMap<String, u64>, SyncError> {
    view.entries(HEARTBEATS)
        .into_iter()
        .map(|(reader, value)| Ok((reader, value.decode()?)))
        .collect()
}

/// `reader` is alive: its heartbeat counter moves on. A precondition failure if it is
/// offline (it stops heart-beating).
pub fn heartbeat(update: &mut Update, reader: &str) -> Result<u64, SyncError> {
    if !update.contains(ASSIGNED, reader) {
        return Err(SyncError::Precondition(format!(
            "reader {reader} is not online"
        )));
    }
    let count = update
        .get_as::<u64>(HEARTBEATS, reader)?
        .unwrap_or(0)
        .wrapping_add(1);
    update.insert(HEARTBEATS, reader, HEARTBEAT_TYPE, &count)?;
    Ok(count)
}

/// Takes `reader` offline at its recorded positions if its heartbeat is still `stale` (the
/// failure detector's verdict); returns the checkpoints its leaving completed if it did. The
/// heartbeat's removal makes the change conflict with a heartbeat written meanwhile (the
/// verdict is then checked again).
pub fn remove_if_stale(
    update: &mut Update,
    reader: &str,
    stale: u64,
) -> Result<Option<Vec<String>>, SyncError> {
    if !update.contains(ASSIGNED, reader)
        || update.get_as::<u64>(HEARTBEATS, reader)? != Some(stale)
    {
        return Ok(None);
    }
    remove_reader(update, reader, None).map(Some)
}

/// Moves up to `max` unassigned segments (lowest first) to `reader`; returns them with their
/// offsets. A reader an outstanding checkpoint waits for acquires nothing (see
/// [`checkpoint_state`]).
pub fn acquire(update: &mut Update, reader: &str, max: usize) -> Result<Positions, SyncError> {
    let mut owned = owned(update, reader)?;
    if checkpoint_state::is_pending(update, reader)? {
        return Ok(Positions::new());
    }
    let taken: Positions = unassigned(update)?.into_iter().take(max).collect();
    if taken.is_empty() {
        return Ok(taken);
    }
    for (segment, offset) in &taken {
        owned.insert(segment.clone(), *offset);
        update.insert_tombstone(UNASSIGNED, &segment.qualified_name())?;
    }
    put_assigned(update, reader, &owned)?;
    Ok(taken)
}

/// Gives `segment` up: unassigned again, to be read from `offset`.
pub fn release(
    update: &mut Update,
    reader: &str,
    segment: &ScopedSegment,
    offset: i64,
) -> Result<(), SyncError> {
    let mut owned = owned(update, reader)?;
    if owned.remove(segment).is_none() {
        return Err(SyncError::Precondition(format!(
            "reader {reader} does not own {}",
            segment.qualified_name()
        )));
    }
    put_assigned(update, reader, &owned)?;
    put_unassigned(update, segment, offset)?;
    let given_up = Positions::from([(segment.clone(), offset)]);
    checkpoint_state::give_up(update, reader, &given_up, false)?;
    Ok(())
}

/// `segment` was read to its end (`end`: its length, or its offset in the group's end cut): it
/// leaves `reader`; each successor waits for its predecessors and becomes unassigned (from
/// offset 0) once none is left. A segment ending at the group's end cut has no successors to
/// read (the caller passes none).
pub fn segment_completed(
    update: &mut Update,
    reader: &str,
    segment: &ScopedSegment,
    end: i64,
    successors: &[(ScopedSegment, Vec<SegmentId>)],
) -> Result<(), SyncError> {
    let mut owned = owned(update, reader)?;
    if owned.remove(segment).is_none() {
        return Err(SyncError::Precondition(format!(
            "reader {reader} does not own {}",
            segment.qualified_name()
        )));
    }
    put_assigned(update, reader, &owned)?;
    let mut waiting = future(update)?;
    for (successor, predecessors) in successors {
        if !waiting.contains_key(successor) {
            let ids: BTreeSet<i64> = predecessors.iter().map(|id| id.0).collect();
            put_future(update, successor, &ids)?;
            waiting.insert(successor.clone(), ids);
        }
    }
    for (successor, ids) in &mut waiting {
        if ids.remove(&segment.id.0) {
            put_future(update, successor, ids)?;
        }
    }
    for (successor, ids) in &waiting {
        if ids.is_empty() {
            put_unassigned(update, successor, 0)?;
            update.insert_tombstone(FUTURE, &successor.qualified_name())?;
        }
    }
    let given_up = Positions::from([(segment.clone(), end)]);
    checkpoint_state::give_up(update, reader, &given_up, false)?;
    Ok(())
}

/// Records how far `reader` has read its segments (those it still owns).
pub fn update_positions(
    update: &mut Update,
    reader: &str,
    positions: &Positions,
) -> Result<(), SyncError> {
    let mut owned = owned(update, reader)?;
    let mut changed = false;
    for (segment, offset) in positions {
        if let Some(recorded) = owned.get_mut(segment) {
            changed |= *recorded != *offset;
            *recorded = *offset;
        }
    }
    if changed {
        put_assigned(update, reader, &owned)?;
    }
    Ok(())
}

/// The segments `reader` owns; a precondition failure if it is offline.
pub fn owned(view: &impl StateView, reader: &str) -> Result<Positions, SyncError> {
    let value = view
        .entries(ASSIGNED)
        .into_iter()
        .find(|(name, _)| name == reader)
        .map(|(_, value)| value)
        .ok_or_else(|| SyncError::Precondition(format!("reader {reader} is not online")))?;
    decode_positions(&value)
}

fn decode_positions(value: &Value) -> Result<Positions, SyncError> {
    let records: BTreeMap<SegmentRecord, Offset> = value.decode()?;
    Ok(records
        .iter()
        .map(|(record, offset)| (ScopedSegment::from(record), offset.read))
        .collect())
}

fn put_assigned(update: &mut Update, reader: &str, positions: &Positions) -> Result<(), SyncError> {
    let records: BTreeMap<SegmentRecord, Offset> = positions
        .iter()
        .map(|(segment, offset)| (SegmentRecord::from(segment), Offset { read: *offset }))
        .collect();
    update.insert(ASSIGNED, reader, ASSIGNED_TYPE, &records)
}

fn put_unassigned(
    update: &mut Update,
    segment: &ScopedSegment,
    offset: i64,
) -> Result<(), SyncError> {
    update.insert(
        UNASSIGNED,
        &segment.qualified_name(),
        OFFSET_TYPE,
        &Offset { read: offset },
    )
}

fn put_future(
    update: &mut Update,
    segment: &ScopedSegment,
    ids: &BTreeSet<i64>,
) -> Result<(), SyncError> {
    let set: BTreeSet<SegmentNumber> = ids
        .iter()
        .map(|id| SegmentNumber {
            number: *id,
            tx_id: None,
        })
        .collect();
    update.insert(FUTURE, &segment.qualified_name(), FUTURE_TYPE, &set)
}

fn parse_segment(name: &str) -> Result<ScopedSegment, SyncError> {
    name.parse()
        .map_err(|message: String| SyncError::Precondition(format!("bad segment key: {message}")))
}

#[cfg(test)]
mod tests;

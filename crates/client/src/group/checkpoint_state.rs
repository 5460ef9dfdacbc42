//! Checkpoints in the reader-group state (ours only; see [`super::format`]): creation, readers
//! taking part, readers giving segments up while a checkpoint waits for them, and completion.
//!
//! The contract: for every segment, the events handed out before the checkpoint are exactly
//! those before its recorded offset. It holds because
//! - creation records every unassigned segment at its offset and names every online reader
//!   (it writes the markers of `assigned_segments` and `unassigned_segments`, so it is
//!   ordered with every change of ownership);
//! - a reader named by an outstanding checkpoint acquires nothing until it has taken part, so
//!   a segment that changes hands during the checkpoint is read only by readers past it;
//! - a named reader records each segment it gives up (released, read to its end, or taken
//!   offline) at the offset where it gives it up, and all its segments when it takes part.

use std::collections::{BTreeMap, BTreeSet};

use crate::sync::{SyncError, Update};

use super::format::{
    CheckpointRecord, GroupSettingsV1, GroupSettingsVersioned, ASSIGNED, CHECKPOINTS,
    CHECKPOINT_SEQUENCE, CHECKPOINT_TYPE, CONFIG_KEY, SEQUENCE_TYPE, SETTINGS, UNASSIGNED,
};
use super::state::{self, Positions, StateView};

/// Completed checkpoints kept in the state (older ones are removed as new ones complete).
pub const COMPLETED_KEPT: usize = 4;

/// The outcome of [`create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creation {
    /// Created with this sequence number; complete already if no reader was online.
    Started { sequence: u64, complete: bool },
    /// A checkpoint of that name exists.
    Exists,
    /// `max` application checkpoints are outstanding.
    TooMany { max: u32 },
    /// Successors waiting for predecessors changed since the caller looked them up.
    FutureChanged,
}

/// Every checkpoint, outstanding or completed, by name.
pub fn checkpoints(view: &impl StateView) -> Result<BTreeMap<String, CheckpointRecord>, SyncError> {
    view.entries(CHECKPOINTS)
        .into_iter()
        .map(|(name, value)| Ok((name, value.decode()?)))
        .collect()
}

/// Our settings of the group; `None` for a group created by the official client.
pub fn settings(view: &impl StateView) -> Result<Option<GroupSettingsV1>, SyncError> {
    let Some((_, value)) = view
        .entries(SETTINGS)
        .into_iter()
        .find(|(key, _)| key == CONFIG_KEY)
    else {
        return Ok(None);
    };
    let GroupSettingsVersioned::V1(settings) = value.decode()?;
    Ok(Some(settings))
}

/// Whether `reader` is named by an outstanding checkpoint (it acquires nothing meanwhile).
pub fn is_pending(view: &impl StateView, reader: &str) -> Result<bool, SyncError> {
    Ok(checkpoints(view)?
        .values()
        .any(|record| record.pending.contains(reader)))
}

/// Creates checkpoint `name`: every unassigned segment is recorded at its offset, as is
/// `completed` (predecessors, already read, of segments in `future` waiting for others, at
/// their ends), and every online reader is to take part. `max_outstanding` bounds the
/// outstanding application checkpoints (`None` for an automatic one, which is created only if
/// no checkpoint is outstanding).
pub fn create(
    update: &mut Update,
    name: &str,
    automatic: bool,
    max_outstanding: u32,
    future: &BTreeMap<crate::controller::types::ScopedSegment, BTreeSet<i64>>,
    completed: &Positions,
) -> Result<Creation, SyncError> {
    let existing = checkpoints(update)?;
    if existing.contains_key(name) {
        return Ok(Creation::Exists);
    }
    let outstanding: Vec<&CheckpointRecord> = existing
        .values()
        .filter(|record| !record.is_complete())
        .collect();
    if automatic && !outstanding.is_empty() {
        return Ok(Creation::Exists);
    }
    let by_application = outstanding.iter().filter(|r| !r.automatic).count();
    if !automatic && by_application >= max_outstanding as usize {
        return Ok(Creation::TooMany {
            max: max_outstanding,
        });
    }
    if state::future(update)? != *future {
        return Ok(Creation::FutureChanged);
    }
    // Ordered with every change of ownership (see the module's contract).
    update.retain(ASSIGNED);
    update.retain(UNASSIGNED);
    let positions: BTreeMap<String, i64> = state::unassigned(update)?
        .iter()
        .chain(completed.iter())
        .map(|(segment, offset)| (segment.qualified_name(), *offset))
        .collect();
    let pending: BTreeSet<String> = state::assigned(update)?.into_keys().collect();
    let sequence = update
        .get_as::<u64>(CHECKPOINT_SEQUENCE, CONFIG_KEY)?
        .unwrap_or(0)
        + 1;
    update.insert(CHECKPOINT_SEQUENCE, CONFIG_KEY, SEQUENCE_TYPE, &sequence)?;
    let record = CheckpointRecord {
        sequence,
        automatic,
        pending,
        positions,
        took_part: BTreeSet::new(),
    };
    let complete = record.is_complete();
    update.insert(CHECKPOINTS, name, CHECKPOINT_TYPE, &record)?;
    if complete {
        prune(update)?;
    }
    Ok(Creation::Started { sequence, complete })
}

/// `reader` takes part in every outstanding checkpoint naming it: its segments are recorded
/// at `positions` (also written as its recorded positions). Returns the checkpoints it took
/// part in, in creation order, each with whether it is complete now.
pub fn take_part(
    update: &mut Update,
    reader: &str,
    positions: &Positions,
) -> Result<Vec<(String, bool)>, SyncError> {
    state::update_positions(update, reader, positions)?;
    let owned = state::owned(update, reader)?;
    let mut taken = record_for(update, reader, &owned, Named::TookPart)?;
    taken.sort_by_key(|(_, sequence, _)| *sequence);
    Ok(taken
        .into_iter()
        .map(|(name, _, complete)| (name, complete))
        .collect())
}

/// `reader` gives `given_up` up (released, read to its end, or taken offline): each outstanding
/// checkpoint naming it records them there. With `leaving`, the reader also stops being named
/// (it goes offline). Returns the checkpoints completed by its leaving.
pub fn give_up(
    update: &mut Update,
    reader: &str,
    given_up: &Positions,
    leaving: bool,
) -> Result<Vec<String>, SyncError> {
    let named = if leaving { Named::Left } else { Named::Stays };
    Ok(record_for(update, reader, given_up, named)?
        .into_iter()
        .filter(|(_, _, complete)| *complete)
        .map(|(name, _, _)| name)
        .collect())
}

/// Removes `name` if it is still outstanding (abandoned); returns the readers it waited for,
/// or `None` if it is gone or complete.
pub fn abandon(update: &mut Update, name: &str) -> Result<Option<Vec<String>>, SyncError> {
    match checkpoints(update)?.remove(name) {
        Some(record) if !record.is_complete() => {
            update.insert_tombstone(CHECKPOINTS, name)?;
            Ok(Some(record.pending.into_iter().collect()))
        }
        _ => Ok(None),
    }
}

/// Removes every outstanding checkpoint (the group is reset); completed ones stay.
pub fn abandon_all(update: &mut Update) -> Result<(), SyncError> {
    for (name, record) in checkpoints(update)? {
        if !record.is_complete() {
            update.insert_tombstone(CHECKPOINTS, &name)?;
        }
    }
    Ok(())
}

/// What becomes of a reader named by a checkpoint when it records positions there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    /// Still to take part (it gave a segment up).
    Stays,
    TookPart,
    /// Went offline without taking part.
    Left,
}

/// Records `positions` in every outstanding checkpoint naming `reader`, which then stays
/// named or not (`named`). Returns (name, sequence, complete now) of each checkpoint touched.
fn record_for(
    update: &mut Update,
    reader: &str,
    positions: &Positions,
    named: Named,
) -> Result<Vec<(String, u64, bool)>, SyncError> {
    let mut touched = Vec::new();
    let mut completed_any = false;
    for (name, mut record) in checkpoints(update)? {
        if !record.pending.contains(reader) {
            continue;
        }
        for (segment, offset) in positions {
            record.positions.insert(segment.qualified_name(), *offset);
        }
        if named != Named::Stays {
            record.pending.remove(reader);
        }
        if named == Named::TookPart {
            record.took_part.insert(reader.to_owned());
        }
        let complete = record.is_complete();
        completed_any |= complete;
        update.insert(CHECKPOINTS, &name, CHECKPOINT_TYPE, &record)?;
        touched.push((name, record.sequence, complete));
    }
    if completed_any {
        prune(update)?;
    }
    Ok(touched)
}

/// Keeps the [`COMPLETED_KEPT`] latest completed checkpoints.
fn prune(update: &mut Update) -> Result<(), SyncError> {
    let mut completed: Vec<(u64, String)> = checkpoints(update)?
        .into_iter()
        .filter(|(_, record)| record.is_complete())
        .map(|(name, record)| (record.sequence, name))
        .collect();
    completed.sort();
    let excess = completed.len().saturating_sub(COMPLETED_KEPT);
    for (_, name) in completed.into_iter().take(excess) {
        update.insert_tombstone(CHECKPOINTS, &name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::types::{ScopedSegment, ScopedStream, SegmentId};
    use crate::group::format::{ConfigV1, ConfigVersioned};

    fn segment(number: u32) -> ScopedSegment {
        ScopedStream::new("sc", "st").segment(SegmentId::new(0, number))
    }

    fn group_of(segments: u32, readers: &[&str]) -> Update {
        let mut update = Update::empty();
        let config = ConfigVersioned::V1(ConfigV1 {
            group_refresh_time_millis: 3000,
            starting_stream_cuts: BTreeMap::new(),
            ending_stream_cuts: BTreeMap::new(),
        });
        let start: Positions = (0..segments).map(|n| (segment(n), 0)).collect();
        state::initialize(&mut update, &config, &start).unwrap();
        for reader in readers {
            state::add_reader(&mut update, reader).unwrap();
        }
        update
    }

    fn create_named(update: &mut Update, name: &str) -> Creation {
        create(update, name, false, 2, &BTreeMap::new(), &Positions::new()).unwrap()
    }

    fn positions_of(update: &Update, name: &str) -> BTreeMap<String, i64> {
        checkpoints(update).unwrap()[name].positions.clone()
    }

    #[test]
    fn a_checkpoint_completes_when_every_named_reader_took_part() {
        let mut update = group_of(3, &["a", "b"]);
        state::acquire(&mut update, "a", 2).unwrap();
        assert_eq!(
            create_named(&mut update, "one"),
            Creation::Started {
                sequence: 1,
                complete: false
            }
        );
        assert_eq!(create_named(&mut update, "one"), Creation::Exists);
        // The unassigned segment is recorded at creation.
        assert_eq!(
            positions_of(&update, "one"),
            BTreeMap::from([(segment(2).qualified_name(), 0)])
        );
        assert!(is_pending(&update, "b").unwrap());
        // A named reader acquires nothing before it has taken part.
        assert!(state::acquire(&mut update, "b", 1).unwrap().is_empty());
        let at = Positions::from([(segment(0), 10), (segment(1), 20)]);
        assert_eq!(
            take_part(&mut update, "a", &at).unwrap(),
            vec![("one".to_string(), false)]
        );
        assert_eq!(state::owned(&update, "a").unwrap(), at);
        assert!(take_part(&mut update, "a", &at).unwrap().is_empty());
        assert_eq!(
            take_part(&mut update, "b", &Positions::new()).unwrap(),
            vec![("one".to_string(), true)]
        );
        assert_eq!(
            positions_of(&update, "one"),
            BTreeMap::from([
                (segment(0).qualified_name(), 10),
                (segment(1).qualified_name(), 20),
                (segment(2).qualified_name(), 0),
            ])
        );
        assert!(!is_pending(&update, "b").unwrap());
        assert_eq!(
            checkpoints(&update).unwrap()["one"].took_part,
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
        assert_eq!(state::acquire(&mut update, "b", 1).unwrap().len(), 1);
    }

    #[test]
    fn segments_given_up_and_readers_leaving_are_recorded() {
        let mut update = group_of(2, &["a", "b"]);
        state::acquire(&mut update, "a", 2).unwrap();
        create_named(&mut update, "cp");
        // "a" releases segment 1 at 7, then goes offline at 12 in segment 0.
        state::release(&mut update, "a", &segment(1), 7).unwrap();
        assert_eq!(
            positions_of(&update, "cp"),
            BTreeMap::from([(segment(1).qualified_name(), 7)])
        );
        let at = Positions::from([(segment(0), 12)]);
        state::remove_reader(&mut update, "a", Some(&at)).unwrap();
        let record = &checkpoints(&update).unwrap()["cp"];
        assert_eq!(record.pending, BTreeSet::from(["b".to_string()]));
        assert_eq!(record.positions[&segment(0).qualified_name()], 12);
        // The last named reader leaving completes it; readers that left did not take part.
        state::remove_reader(&mut update, "b", None).unwrap();
        let record = &checkpoints(&update).unwrap()["cp"];
        assert!(record.is_complete() && record.took_part.is_empty());
    }

    #[test]
    fn outstanding_checkpoints_are_bounded_and_old_completed_ones_pruned() {
        let mut update = group_of(1, &["a"]);
        create_named(&mut update, "x");
        create_named(&mut update, "y");
        assert_eq!(create_named(&mut update, "z"), Creation::TooMany { max: 2 });
        // An automatic checkpoint waits for none outstanding.
        let automatic = create(
            &mut update,
            "auto",
            true,
            2,
            &BTreeMap::new(),
            &Positions::new(),
        )
        .unwrap();
        assert_eq!(automatic, Creation::Exists);
        assert_eq!(abandon(&mut update, "x").unwrap(), Some(vec!["a".into()]));
        assert_eq!(abandon(&mut update, "x").unwrap(), None);
        take_part(&mut update, "a", &Positions::new()).unwrap();
        for n in 0..COMPLETED_KEPT + 2 {
            create_named(&mut update, &format!("later-{n}"));
            take_part(&mut update, "a", &Positions::new()).unwrap();
        }
        let kept = checkpoints(&update).unwrap();
        assert_eq!(kept.len(), COMPLETED_KEPT);
        assert!(!kept.contains_key("y") && kept.contains_key("later-5"));
        // A changed set of waiting successors makes the creator look again.
        let waiting = BTreeMap::from([(segment(9), BTreeSet::from([1]))]);
        assert_eq!(
            create(&mut update, "f", false, 2, &waiting, &Positions::new()).unwrap(),
            Creation::FutureChanged
        );
    }
}

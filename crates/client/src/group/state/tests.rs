//! The state rules' unit tests.

use super::*;
use crate::controller::types::ScopedStream;
use crate::group::format::ConfigV1;

fn segment(epoch: u32, number: u32) -> ScopedSegment {
    ScopedStream::new("sc", "st").segment(SegmentId::new(epoch, number))
}

fn group_of(segments: u32) -> Update {
    let mut update = Update::empty();
    let config = ConfigVersioned::V1(ConfigV1 {
        group_refresh_time_millis: 3000,
        starting_stream_cuts: BTreeMap::new(),
        ending_stream_cuts: BTreeMap::new(),
    });
    let start: Positions = (0..segments).map(|n| (segment(0, n), 0)).collect();
    assert!(initialize(&mut update, &config, &start).unwrap());
    assert!(!initialize(&mut update, &config, &Positions::new()).unwrap());
    update
}

#[test]
fn readers_acquire_their_fair_share() {
    let mut update = group_of(5);
    add_reader(&mut update, "a").unwrap();
    assert!(add_reader(&mut update, "a").is_err());
    assert_eq!(segments_to_acquire(&update, "a").unwrap(), 5);
    add_reader(&mut update, "b").unwrap();
    assert_eq!(segments_to_acquire(&update, "a").unwrap(), 3);
    let taken = acquire(&mut update, "a", 3).unwrap();
    assert_eq!(
        taken.keys().cloned().collect::<Vec<_>>(),
        vec![segment(0, 0), segment(0, 1), segment(0, 2)]
    );
    assert_eq!(segments_to_acquire(&update, "b").unwrap(), 3);
    assert_eq!(acquire(&mut update, "b", 3).unwrap().len(), 2);
    assert!(unassigned(&update).unwrap().is_empty());
    // A third reader: "a" is above its share of 2 and releases one.
    add_reader(&mut update, "c").unwrap();
    assert_eq!(segments_to_acquire(&update, "a").unwrap(), -1);
    release(&mut update, "a", &segment(0, 0), 17).unwrap();
    assert!(release(&mut update, "a", &segment(0, 0), 17).is_err());
    assert_eq!(
        acquire(&mut update, "c", 2).unwrap(),
        Positions::from([(segment(0, 0), 17)])
    );
}

#[test]
fn offline_readers_return_their_segments_at_their_positions() {
    let mut update = group_of(2);
    add_reader(&mut update, "a").unwrap();
    acquire(&mut update, "a", 2).unwrap();
    update_positions(
        &mut update,
        "a",
        &Positions::from([(segment(0, 0), 10), (segment(0, 1), 20)]),
    )
    .unwrap();
    remove_reader(
        &mut update,
        "a",
        Some(&Positions::from([(segment(0, 1), 25)])),
    )
    .unwrap();
    assert_eq!(
        unassigned(&update).unwrap(),
        Positions::from([(segment(0, 0), 10), (segment(0, 1), 25)])
    );
    assert!(assigned(&update).unwrap().is_empty());
    assert!(remove_reader(&mut update, "a", None).is_err());
    assert!(acquire(&mut update, "a", 1).is_err());
}

#[test]
fn stale_readers_are_removed_only_while_their_heartbeat_stands_still() {
    let mut update = group_of(2);
    add_reader(&mut update, "a").unwrap();
    add_reader(&mut update, "official").unwrap();
    acquire(&mut update, "a", 1).unwrap();
    update_positions(&mut update, "a", &Positions::from([(segment(0, 0), 10)])).unwrap();
    assert_eq!(heartbeat(&mut update, "a").unwrap(), 1);
    assert_eq!(heartbeat(&mut update, "a").unwrap(), 2);
    assert!(heartbeat(&mut update, "gone").is_err());
    assert_eq!(
        heartbeats(&update).unwrap(),
        BTreeMap::from([("a".to_owned(), 2)])
    );
    // A reader that never heart-beat is never stale.
    assert!(remove_if_stale(&mut update, "official", 0)
        .unwrap()
        .is_none());
    assert!(remove_if_stale(&mut update, "a", 1).unwrap().is_none());
    assert!(remove_if_stale(&mut update, "a", 2).unwrap().is_some());
    assert!(remove_if_stale(&mut update, "a", 2).unwrap().is_none());
    assert!(heartbeats(&update).unwrap().is_empty());
    assert_eq!(
        unassigned(&update).unwrap(),
        Positions::from([(segment(0, 0), 10), (segment(0, 1), 0)])
    );
    assert_eq!(assigned(&update).unwrap().len(), 1);
}

#[test]
fn successors_wait_for_all_their_predecessors() {
    // 0 and 1 merge into 2; 2 follows both.
    let mut update = group_of(2);
    add_reader(&mut update, "a").unwrap();
    acquire(&mut update, "a", 2).unwrap();
    let merged = segment(1, 2);
    let successors = vec![(
        merged.clone(),
        vec![SegmentId::new(0, 0), SegmentId::new(0, 1)],
    )];
    segment_completed(&mut update, "a", &segment(0, 0), 9, &successors).unwrap();
    assert!(unassigned(&update).unwrap().is_empty());
    assert_eq!(
        future(&update).unwrap(),
        BTreeMap::from([(merged.clone(), BTreeSet::from([SegmentId::new(0, 1).0]))])
    );
    assert!(segment_completed(&mut update, "a", &segment(0, 0), 9, &successors).is_err());
    segment_completed(&mut update, "a", &segment(0, 1), 9, &successors).unwrap();
    assert_eq!(unassigned(&update).unwrap(), Positions::from([(merged, 0)]));
    assert!(future(&update).unwrap().is_empty());
    assert!(owned(&update, "a").unwrap().is_empty());
}

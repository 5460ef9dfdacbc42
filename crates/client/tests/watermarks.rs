//! Watermarks against an in-process standalone: writers note times on a stream of two
//! segments, the controller writes watermarks into `_MARK<stream>` in Pravega's format, the
//! `WatermarkReader` reads them back in order, and a reader group's time window follows its
//! position through them.

mod common;
mod events_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{standalone_with_watermark_interval, Standalone, TIMEOUT};
use events_common::{bounded, config, key, keyed_payload};
use pravaha_client::controller::types::{
    KeyRange, ScopedStream, SegmentId, StreamConfiguration, StreamCut,
};
use pravaha_client::event::ClientFactory;
use pravaha_client::group::{GroupError, Positions, ReaderGroup, ReaderGroupConfig};
use pravaha_client::locator::ControllerLocator;
use pravaha_client::segment::{ReaderConfig, SegmentReader};
use pravaha_client::watermark::{TimeWindow, TimeWindowTracker, Watermark, WatermarkReader};
use pravaha_client::{ControllerClient, EventWriter};

const ROUNDS: i64 = 3;

/// A watermark's lower and upper bounds and its cut (segment id, offset).
type Summary = (i64, i64, Vec<(i64, i64)>);
const EVENTS_PER_WRITER_AND_ROUND: usize = 20;

/// A standalone, a factory and a new stream of two fixed segments.
async fn setup(
    watermark_interval: Duration,
    name: &str,
) -> (Standalone, ClientFactory, ScopedStream) {
    let standalone = standalone_with_watermark_interval(watermark_interval).await;
    let factory = ClientFactory::new(config(&standalone.controller_uri())).expect("a factory");
    let stream = ScopedStream::new("marks", name);
    let controller = factory.controller();
    controller.create_scope(&stream.scope).await.unwrap();
    controller
        .create_stream(&stream, &StreamConfiguration::fixed(2))
        .await
        .unwrap();
    (standalone, factory, stream)
}

/// Writes a round of keyed events (spread over both segments), waits for their acks, then
/// notes `time`.
async fn write_and_note(writer: &EventWriter, round: i64, time: i64) {
    for index in 0..EVENTS_PER_WRITER_AND_ROUND {
        let key = key(index % 7);
        let sequence = round as usize * 1000 + index;
        let ack = bounded(writer.write_event(Some(&key), keyed_payload(&key, sequence)))
            .await
            .unwrap();
        drop(ack);
    }
    bounded(writer.flush()).await.unwrap();
    bounded(writer.note_time(time)).await.unwrap();
}

/// The fast writer notes `round × 1000`, the slow one 500 ms later.
fn noted_times() -> BTreeSet<i64> {
    (1..=ROUNDS)
        .flat_map(|round| [round * 1000, round * 1000 + 500])
        .collect()
}

/// Every segment's current length, as a cut.
async fn tail(controller: &ControllerClient, stream: &ScopedStream) -> StreamCut {
    let locator = Arc::new(ControllerLocator::new(controller.clone()));
    let mut cut = StreamCut::new(stream.clone());
    for segment in controller
        .get_current_segments(stream)
        .await
        .unwrap()
        .segments
    {
        let name = segment.segment.qualified_name();
        let mut reader = SegmentReader::new(locator.clone(), name, ReaderConfig::default());
        let info = reader.segment_info().await.unwrap();
        cut.positions.insert(segment.segment.id, info.length);
    }
    cut
}

/// What every watermark of a two-segment stream must be: a valid, complete cut with the
/// segments' ranges, and time bounds among the noted times.
async fn assert_well_formed(controller: &ControllerClient, mark: &Watermark) {
    let noted = noted_times();
    assert!(noted.contains(&mark.lower_time_bound), "{mark:?}");
    assert!(noted.contains(&mark.upper_time_bound), "{mark:?}");
    assert!(mark.lower_time_bound <= mark.upper_time_bound, "{mark:?}");
    let ranges: Vec<KeyRange> = mark.ranges.values().copied().collect();
    assert_eq!(ranges, [KeyRange::new(0.0, 0.5), KeyRange::new(0.5, 1.0)]);
    let segments: Vec<SegmentId> = mark.stream_cut.positions.keys().copied().collect();
    assert_eq!(segments, [SegmentId::new(0, 0), SegmentId::new(0, 1)]);
    assert!(controller
        .is_stream_cut_valid(&mark.stream_cut)
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn periodic_watermarks_follow_the_slowest_writer() {
    let (standalone, factory, stream) = setup(Duration::from_millis(50), "periodic").await;
    let controller = factory.controller().clone();
    let fast = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let slow = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    // Watermarks are written while the rounds go on.
    let mut reader = WatermarkReader::new(controller.clone(), stream.clone());
    for round in 1..=ROUNDS {
        write_and_note(&fast, round, round * 1000).await;
        write_and_note(&slow, round, round * 1000 + 500).await;
    }

    let mut marks: Vec<Watermark> = Vec::new();
    let mut after_first = None;
    while marks
        .last()
        .is_none_or(|m| m.lower_time_bound < ROUNDS * 1000)
    {
        let mark = bounded(reader.next_timeout(TIMEOUT))
            .await
            .unwrap()
            .expect("a watermark within the time-out");
        assert_well_formed(&controller, &mark).await;
        if let Some(previous) = marks.last() {
            assert!(
                previous.lower_time_bound < mark.lower_time_bound,
                "{marks:?} {mark:?}"
            );
            for (segment, offset) in &mark.stream_cut.positions {
                assert!(
                    previous.stream_cut.positions[segment] <= *offset,
                    "cuts never go back"
                );
            }
        }
        marks.push(mark);
        after_first.get_or_insert(reader.position());
    }
    // The last watermark: both writers' last times, at the end of everything they wrote.
    let last = marks.last().unwrap();
    assert_eq!((last.lower_time_bound, last.upper_time_bound), (3000, 3500));
    assert_eq!(last.stream_cut, tail(&controller, &stream).await);
    assert!(last.stream_cut.positions.values().all(|offset| *offset > 0));
    assert!(bounded(reader.try_next()).await.unwrap().is_none());

    // The controller lists the same watermarks, and a reader resumes from a position.
    let listed = standalone
        .controller
        .watermarks(&stream.scope, &stream.stream)
        .await
        .unwrap();
    let listed: Vec<Summary> = listed
        .iter()
        .map(|m| {
            let cut = m.stream_cut.iter().map(|(s, o)| (*s, *o)).collect();
            (m.lower_time_bound, m.upper_time_bound, cut)
        })
        .collect();
    let read: Vec<Summary> = marks
        .iter()
        .map(|m| {
            let cut = m
                .stream_cut
                .positions
                .iter()
                .map(|(s, o)| (s.0, *o))
                .collect();
            (m.lower_time_bound, m.upper_time_bound, cut)
        })
        .collect();
    assert_eq!(listed, read);
    let mut resumed =
        WatermarkReader::from_position(controller.clone(), stream.clone(), after_first.unwrap());
    for expected in &marks[1..] {
        assert_eq!(
            bounded(resumed.try_next()).await.unwrap().as_ref(),
            Some(expected)
        );
    }
    assert!(bounded(resumed.try_next()).await.unwrap().is_none());
    assert!(bounded(resumed.next_timeout(Duration::from_millis(200)))
        .await
        .unwrap()
        .is_none());

    bounded(fast.close()).await.unwrap();
    bounded(slow.close()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn time_windows_follow_the_group_position() {
    // Passes are driven by the test, one per round, so the watermarks are known exactly.
    let (standalone, factory, stream) = setup(Duration::from_secs(3600), "window").await;
    let controller = factory.controller().clone();
    let fast = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let slow = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let mut tails = Vec::new();
    for round in 1..=ROUNDS {
        write_and_note(&fast, round, round * 1000).await;
        write_and_note(&slow, round, round * 1000 + 500).await;
        standalone.controller.run_watermarking().await.unwrap();
        tails.push(tail(&controller, &stream).await);
    }
    // A pass with nothing new writes nothing.
    standalone.controller.run_watermarking().await.unwrap();

    let mut reader = WatermarkReader::new(controller.clone(), stream.clone());
    let mut marks = Vec::new();
    while let Some(mark) = bounded(reader.try_next()).await.unwrap() {
        assert_well_formed(&controller, &mark).await;
        marks.push(mark);
    }
    let bounds: Vec<(i64, i64)> = marks
        .iter()
        .map(|m| (m.lower_time_bound, m.upper_time_bound))
        .collect();
    assert_eq!(bounds, [(1000, 1500), (2000, 2500), (3000, 3500)]);
    let cuts: Vec<&StreamCut> = marks.iter().map(|m| &m.stream_cut).collect();
    assert_eq!(cuts, tails.iter().collect::<Vec<_>>());

    let group_config = ReaderGroupConfig::new().stream(stream.clone());
    let group = bounded(ReaderGroup::create(
        &controller,
        "marks",
        "window-group",
        group_config,
    ))
    .await
    .unwrap();
    let mut tracker =
        TimeWindowTracker::new(WatermarkReader::new(controller.clone(), stream.clone()));
    let window = |lower, upper| TimeWindow { lower, upper };

    // At the head: before every watermark.
    let head = bounded(group.positions()).await.unwrap();
    assert!(head.values().all(|offset| *offset == 0), "{head:?}");
    let at_head = bounded(tracker.advance_to(&head)).await.unwrap();
    assert_eq!(at_head, window(None, Some(1500)));

    // Exactly at the first watermark's cut: past it (time moves on there).
    let at_first = bounded(tracker.advance_to(&positions(&stream, &tails[0], &tails[0]))).await;
    assert_eq!(at_first.unwrap(), window(Some(1000), Some(2500)));

    // One segment at the last cut, the other still at the first: within the second and third
    // watermarks, past only the first.
    let straddling = positions(&stream, &tails[2], &tails[0]);
    let within = bounded(tracker.advance_to(&straddling)).await.unwrap();
    assert_eq!(within, window(Some(1000), Some(3500)));
    assert_eq!(tracker.time_window(), within);

    // Everything read: past every watermark, near the head of the stream.
    let mut events = bounded(group.create_reader("window-reader")).await.unwrap();
    let total = ROUNDS as usize * 2 * EVENTS_PER_WRITER_AND_ROUND;
    for _ in 0..total {
        bounded(events.next_event())
            .await
            .unwrap()
            .expect("an event");
    }
    let read_all = events.positions();
    let expected: BTreeMap<SegmentId, i64> = read_all
        .iter()
        .map(|(segment, offset)| (segment.id, *offset))
        .collect();
    assert_eq!(expected, tails[2].positions);
    let at_tail = bounded(tracker.advance_to(&read_all)).await.unwrap();
    assert_eq!(at_tail, window(Some(3000), None));
    assert!(at_tail.is_near_head_of_stream());

    // A tracker from the beginning answers the same for the same position.
    let mut fresh =
        TimeWindowTracker::new(WatermarkReader::new(controller.clone(), stream.clone()));
    assert_eq!(bounded(fresh.advance_to(&read_all)).await.unwrap(), at_tail);

    events.close().await.unwrap();
    bounded(fast.close()).await.unwrap();
    bounded(slow.close()).await.unwrap();
}

/// Segment 0 at `first`'s offset, segment 1 at `second`'s.
fn positions(stream: &ScopedStream, first: &StreamCut, second: &StreamCut) -> Positions {
    let (zero, one) = (SegmentId::new(0, 0), SegmentId::new(0, 1));
    Positions::from([
        (stream.segment(zero), first.positions[&zero]),
        (stream.segment(one), second.positions[&one]),
    ])
}

/// The window a two-segment position lies in, from the watermarks' cuts alone: past a
/// watermark when no segment is behind its cut, behind it when some segment is behind and
/// none past. The upper bound is the first watermark wholly ahead's, else the last one not
/// passed's.
fn expected_window(marks: &[Watermark], at: &BTreeMap<SegmentId, i64>) -> TimeWindow {
    let mut window = TimeWindow::default();
    for mark in marks {
        let (mut behind, mut past) = (false, false);
        for (segment, cut) in &mark.stream_cut.positions {
            let offset = at.get(segment).copied().unwrap_or(0);
            behind |= offset < *cut;
            past |= offset > *cut;
        }
        if !behind {
            window.lower = Some(mark.lower_time_bound);
            continue;
        }
        window.upper = Some(mark.upper_time_bound);
        if !past {
            break;
        }
    }
    window
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_answers_the_time_window_of_its_groups_position() {
    let (standalone, factory, stream) = setup(Duration::from_secs(3600), "reader-window").await;
    let controller = factory.controller().clone();
    let fast = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let slow = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    for round in 1..=ROUNDS {
        write_and_note(&fast, round, round * 1000).await;
        write_and_note(&slow, round, round * 1000 + 500).await;
        standalone.controller.run_watermarking().await.unwrap();
    }
    let mut marks = Vec::new();
    let mut mark_reader = WatermarkReader::new(controller.clone(), stream.clone());
    while let Some(mark) = bounded(mark_reader.try_next()).await.unwrap() {
        marks.push(mark);
    }
    assert_eq!(marks.len(), ROUNDS as usize);

    let group_config = ReaderGroupConfig::new().stream(stream.clone());
    let group = bounded(ReaderGroup::create(
        &controller,
        "marks",
        "reader-window-group",
        group_config,
    ))
    .await
    .unwrap();
    let mut reader = bounded(group.create_reader("reader")).await.unwrap();
    // Before reading: the group is at the head, before every watermark.
    let at_head = bounded(reader.current_time_window(&stream)).await.unwrap();
    assert_eq!(
        at_head,
        TimeWindow {
            lower: None,
            upper: Some(1500)
        }
    );
    // After each event, the window of the positions after it (both segments are this
    // reader's), as the watermarks' cuts say; windows only move forward.
    let total = ROUNDS as usize * 2 * EVENTS_PER_WRITER_AND_ROUND;
    let mut windows = vec![at_head];
    for _ in 0..total {
        bounded(reader.next_event())
            .await
            .unwrap()
            .expect("an event");
        let at: BTreeMap<SegmentId, i64> = reader
            .positions()
            .iter()
            .map(|(segment, offset)| (segment.id, *offset))
            .collect();
        let window = bounded(reader.current_time_window(&stream)).await.unwrap();
        assert_eq!(window, expected_window(&marks, &at), "at {at:?}");
        windows.push(window);
    }
    assert!(windows
        .windows(2)
        .all(|pair| pair[0].lower <= pair[1].lower));
    let lowers: BTreeSet<Option<i64>> = windows.iter().map(|window| window.lower).collect();
    assert_eq!(
        lowers,
        BTreeSet::from([None, Some(1000), Some(2000), Some(3000)]),
        "every watermark was passed on the way"
    );
    let last = windows.last().unwrap();
    assert_eq!(
        *last,
        TimeWindow {
            lower: Some(3000),
            upper: None
        }
    );
    assert!(last.is_near_head_of_stream());
    // A stream the group does not read has no window.
    let other = ScopedStream::new("marks", "unread");
    let refused = bounded(reader.current_time_window(&other)).await;
    assert!(
        matches!(&refused, Err(GroupError::StreamNotRead { stream, .. }) if *stream == other),
        "{refused:?}"
    );

    reader.close().await.unwrap();
    bounded(fast.close()).await.unwrap();
    bounded(slow.close()).await.unwrap();
}

//! The events of one append session on their way: numbered, packed into blocks, in flight,
//! acknowledged. Pure state, no I/O; the session task drives it.
//!
//! Invariants: event numbers increase by one from 1 in the order events are pushed; `inflight`
//! (blocks written on the current connection), then `resend` (blocks written on an earlier one,
//! not yet written again), then `unsent` (never written) hold increasing numbers. A block keeps
//! its boundaries for good: the segment store deduplicates a resent block by its last event
//! number (anything not above the writer's last sequenced number is acknowledged, not written),
//! and a block from a lost connection may still become durable after the next `AppendSetup`
//! was answered. Resending it with the same boundaries keeps every event exactly once;
//! regrouping could straddle what the store holds and write part of a block twice.

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use bytes::BytesMut;
use pravaha_wire::{self as wire, Request};

use super::event::{AppendError, PendingEvent, MAX_EVENT_DATA};
use super::next_request_id;

/// Events per block, as the official client sends at most.
pub(super) const BLOCK_EVENTS_MAX: usize = 500;
/// Unsent bytes that make a new block worth sending even while the partial block window is
/// full: gathering more would save no write worth having, only delay these events.
pub(super) const GATHER_BYTES_MAX: usize = 256 << 10;

pub(super) struct Numbered {
    number: i64,
    event: PendingEvent,
}

struct Block {
    /// In number order, never empty; acknowledged events leave from the front.
    events: VecDeque<Numbered>,
    /// The number the block was sent with, kept when events leave (its boundary).
    last: i64,
}

impl Block {
    fn conditional(&self) -> Option<i64> {
        self.events
            .front()
            .and_then(|first| first.event.expected_offset())
    }
}

pub(super) struct Pipeline {
    writer_id: u128,
    /// A new block that is not full waits while this many blocks are in flight (see
    /// [`WriterConfig::partial_block_window`](super::WriterConfig::partial_block_window)).
    partial_block_window: Option<NonZeroUsize>,
    last_assigned: i64,
    sent_through: i64,
    /// The highest event number written on an earlier connection.
    earlier_through: i64,
    unsent: VecDeque<Numbered>,
    /// Bytes of the events in `unsent`.
    unsent_bytes: usize,
    resend: VecDeque<Block>,
    inflight: VecDeque<Block>,
}

impl Pipeline {
    pub(super) fn new(writer_id: u128, partial_block_window: Option<NonZeroUsize>) -> Self {
        Self {
            writer_id,
            partial_block_window,
            last_assigned: 0,
            sent_through: 0,
            earlier_through: 0,
            unsent: VecDeque::new(),
            unsent_bytes: 0,
            resend: VecDeque::new(),
            inflight: VecDeque::new(),
        }
    }

    /// Numbers `event` and queues it.
    pub(super) fn push(&mut self, event: PendingEvent) {
        self.last_assigned += 1;
        self.unsent_bytes += event.data().len();
        self.unsent.push_back(Numbered {
            number: self.last_assigned,
            event,
        });
    }

    pub(super) fn last_assigned(&self) -> i64 {
        self.last_assigned
    }

    /// No event without an outcome.
    pub(super) fn is_empty(&self) -> bool {
        self.unsent.is_empty() && self.resend.is_empty() && self.inflight.is_empty()
    }

    /// Events wait to be written (there is a reason to connect).
    pub(super) fn has_unwritten(&self) -> bool {
        !self.unsent.is_empty() || !self.resend.is_empty()
    }

    /// Every event up to this number has an outcome.
    pub(super) fn done_through(&self) -> i64 {
        let first_block = |blocks: &VecDeque<Block>| {
            blocks
                .front()
                .and_then(|block| block.events.front())
                .map(|first| first.number)
        };
        first_block(&self.inflight)
            .or_else(|| first_block(&self.resend))
            .or_else(|| self.unsent.front().map(|first| first.number))
            .map_or(self.last_assigned, |first| first - 1)
    }

    /// The next block to write, moved to `inflight`: a block to resend as it was, else a new
    /// one of unsent events (up to 500 events and [`MAX_EVENT_DATA`] bytes; conditional events
    /// only with those whose expected offsets chain). A new block of fewer than 500 events and
    /// [`GATHER_BYTES_MAX`] bytes waits while the partial block window is full. A conditional
    /// block goes only when
    /// nothing is in flight, and nothing follows it until its outcome is known.
    pub(super) fn next_block(&mut self) -> Option<Request> {
        let conditional_in_flight = self
            .inflight
            .back()
            .is_some_and(|block| block.conditional().is_some());
        if conditional_in_flight {
            return None;
        }
        let next_conditional = match self.resend.front() {
            Some(block) => block.conditional(),
            None => self.unsent.front()?.event.expected_offset(),
        };
        if next_conditional.is_some() && !self.inflight.is_empty() {
            return None;
        }
        let window_full = self
            .partial_block_window
            .is_some_and(|window| self.inflight.len() >= window.get());
        let gathering = window_full
            && self.resend.is_empty()
            && next_conditional.is_none()
            && self.unsent.len() < BLOCK_EVENTS_MAX
            && self.unsent_bytes < GATHER_BYTES_MAX;
        if gathering {
            return None;
        }
        let block = match self.resend.pop_front() {
            Some(block) => block,
            None => self.new_block(),
        };
        let request = self.request(&block);
        self.sent_through = self.sent_through.max(block.last);
        self.inflight.push_back(block);
        Some(request)
    }

    fn new_block(&mut self) -> Block {
        let conditional = self
            .unsent
            .front()
            .and_then(|first| first.event.expected_offset());
        let mut chained = conditional;
        let mut bytes = 0;
        let mut events = VecDeque::new();
        while let Some(next) = self.unsent.front() {
            let length = next.event.data().len();
            let fits = events.len() < BLOCK_EVENTS_MAX && bytes + length <= MAX_EVENT_DATA;
            // Unconditional events join unconditional ones; conditional ones must chain.
            let same_kind = next.event.expected_offset() == chained;
            let joins = events.is_empty() || (fits && same_kind);
            if !joins {
                break;
            }
            let next = self.unsent.pop_front().expect("front exists");
            self.unsent_bytes -= length;
            bytes += length;
            chained = chained.map(|offset| offset + length as i64);
            events.push_back(next);
        }
        let last = events.back().expect("unsent was not empty").number;
        Block { events, last }
    }

    fn request(&self, block: &Block) -> Request {
        let mut data = BytesMut::new();
        for numbered in &block.events {
            data.extend_from_slice(numbered.event.data());
        }
        let data = data.freeze();
        match block.conditional() {
            Some(expected_offset) => Request::ConditionalBlockEnd(wire::ConditionalBlockEnd {
                writer_id: self.writer_id,
                event_number: block.last,
                expected_offset,
                data,
                request_id: next_request_id(),
            }),
            None => Request::AppendBlockEnd(wire::AppendBlockEnd {
                writer_id: self.writer_id,
                size_of_whole_events: i32::try_from(data.len()).expect("a block fits an i32"),
                data,
                num_events: i32::try_from(block.events.len()).expect("at most 500 events"),
                last_event_number: block.last,
                request_id: next_request_id(),
            }),
        }
    }

    /// Completes every in-flight event up to `event_number` (acks of several blocks may come
    /// folded into one). Returns how many completed, or why the ack is impossible.
    pub(super) fn ack(&mut self, event_number: i64) -> Result<usize, String> {
        if event_number > self.sent_through {
            return Err(format!(
                "acknowledged event {event_number}, but only {} were sent",
                self.sent_through
            ));
        }
        Ok(complete_through(&mut self.inflight, event_number))
    }

    /// Whether an event without an outcome was written on an earlier connection (it may be in
    /// the segment although this connection never acknowledged it).
    pub(super) fn written_before_this_connection(&self) -> bool {
        !self.is_empty() && self.done_through() < self.earlier_through
    }

    /// The connection is lost: whatever was written on it is resent first, as it was.
    pub(super) fn requeue(&mut self) {
        self.earlier_through = self.sent_through;
        while let Some(block) = self.inflight.pop_back() {
            self.resend.push_front(block);
        }
    }

    /// A new session reports the store holds this writer's events up to `last_event_number`:
    /// those are done. Returns how many completed, or why the report is impossible.
    pub(super) fn acknowledge_setup(&mut self, last_event_number: i64) -> Result<usize, String> {
        debug_assert!(
            self.inflight.is_empty(),
            "setup on a connection with writes"
        );
        if last_event_number == wire::NULL_ATTRIBUTE_VALUE {
            return Ok(0);
        }
        if last_event_number > self.sent_through {
            return Err(format!(
                "AppendSetup reports event {last_event_number}, but only {} were sent",
                self.sent_through
            ));
        }
        Ok(complete_through(&mut self.resend, last_event_number))
    }

    /// Takes every event without an outcome, in order (to hand back or fail).
    pub(super) fn drain(&mut self) -> Vec<PendingEvent> {
        let blocks = self.inflight.drain(..).chain(self.resend.drain(..));
        let events: Vec<PendingEvent> = blocks
            .flat_map(|block| block.events)
            .chain(self.unsent.drain(..))
            .map(|numbered| numbered.event)
            .collect();
        self.unsent_bytes = 0;
        events
    }

    /// Fails every event without an outcome.
    pub(super) fn fail_all(&mut self, error: &AppendError) {
        for event in self.drain() {
            event.complete(Err(error.clone()));
        }
    }
}

/// Completes the events of `blocks` numbered up to `event_number`, from the front.
fn complete_through(blocks: &mut VecDeque<Block>, event_number: i64) -> usize {
    let mut completed = 0;
    while let Some(block) = blocks.front_mut() {
        while block
            .events
            .front()
            .is_some_and(|first| first.number <= event_number)
        {
            let done = block.events.pop_front().expect("front exists");
            done.event.complete(Ok(()));
            completed += 1;
        }
        if !block.events.is_empty() {
            break;
        }
        blocks.pop_front();
    }
    completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{AppendFuture, BudgetPermit};
    use bytes::Bytes;

    fn event(data: &'static [u8], expected_offset: Option<i64>) -> (PendingEvent, AppendFuture) {
        PendingEvent::with_condition(
            Bytes::from_static(data),
            expected_offset,
            BudgetPermit::empty(),
        )
        .unwrap()
    }

    fn block_of(request: &Request) -> (i64, i32, Bytes) {
        match request {
            Request::AppendBlockEnd(block) => (
                block.last_event_number,
                block.num_events,
                block.data.clone(),
            ),
            Request::ConditionalBlockEnd(block) => (block.event_number, 1, block.data.clone()),
            other => panic!("not a block: {other:?}"),
        }
    }

    #[tokio::test]
    async fn acks_complete_in_order_and_resent_blocks_keep_their_boundaries() {
        let mut pipeline = Pipeline::new(7, None);
        let mut futures = Vec::new();
        for data in [&b"a"[..], b"b", b"c"] {
            let (pending, future) = event(data, None);
            pipeline.push(pending);
            futures.push(future);
        }
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (3, 3, Bytes::from("abc"))
        );
        assert!(pipeline.next_block().is_none());
        let (pending, fourth) = event(b"d", None);
        pipeline.push(pending);
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (4, 1, Bytes::from("d"))
        );
        assert_eq!(pipeline.ack(2), Ok(2));
        assert_eq!(pipeline.done_through(), 2);
        // Lost connection: the store holds up to 2; block 1..=3 goes again with event 3 only,
        // still numbered 3, and block 4 follows unchanged.
        pipeline.requeue();
        assert_eq!(pipeline.acknowledge_setup(2), Ok(0));
        let (pending, _fifth) = event(b"e", None);
        pipeline.push(pending);
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (3, 1, Bytes::from("c"))
        );
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (4, 1, Bytes::from("d"))
        );
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (5, 1, Bytes::from("e"))
        );
        pipeline.requeue();
        assert_eq!(pipeline.acknowledge_setup(4), Ok(2));
        assert_eq!(pipeline.done_through(), 4);
        for future in futures {
            assert!(future.await.is_ok());
        }
        assert!(fourth.await.is_ok());
        assert!(pipeline.has_unwritten());
    }

    #[test]
    fn events_written_on_an_earlier_connection_are_known() {
        let mut pipeline = Pipeline::new(7, None);
        let mut futures = Vec::new();
        for data in [&b"a"[..], b"b"] {
            let (pending, future) = event(data, None);
            pipeline.push(pending);
            futures.push(future);
        }
        pipeline.next_block().unwrap();
        assert!(!pipeline.written_before_this_connection());
        pipeline.requeue();
        assert!(pipeline.written_before_this_connection());
        pipeline.next_block().unwrap();
        assert_eq!(pipeline.ack(2), Ok(2));
        let (pending, _third) = event(b"c", None);
        pipeline.push(pending);
        assert!(
            !pipeline.written_before_this_connection(),
            "3 was never written"
        );
    }

    #[test]
    fn impossible_acks_are_refused() {
        let mut pipeline = Pipeline::new(7, None);
        let (pending, _future) = event(b"a", None);
        pipeline.push(pending);
        pipeline.next_block().unwrap();
        assert!(pipeline.ack(2).is_err());
        pipeline.requeue();
        assert!(pipeline.acknowledge_setup(2).is_err());
        assert_eq!(
            pipeline.acknowledge_setup(wire::NULL_ATTRIBUTE_VALUE),
            Ok(0)
        );
    }

    #[test]
    fn partial_blocks_gather_events_while_the_window_is_full() {
        let mut pipeline = Pipeline::new(7, NonZeroUsize::new(2));
        let mut futures = Vec::new();
        let mut push = |pipeline: &mut Pipeline, data: &'static [u8]| {
            let (pending, future) = event(data, None);
            pipeline.push(pending);
            futures.push(future);
        };
        push(&mut pipeline, b"a");
        assert_eq!(block_of(&pipeline.next_block().unwrap()).0, 1);
        push(&mut pipeline, b"b");
        assert_eq!(block_of(&pipeline.next_block().unwrap()).0, 2);
        for data in [&b"c"[..], b"d", b"e"] {
            push(&mut pipeline, data);
            assert!(pipeline.next_block().is_none(), "two blocks are in flight");
        }
        assert_eq!(pipeline.done_through(), 0);
        // One ack frees a place: everything gathered goes as one block.
        assert_eq!(pipeline.ack(1), Ok(1));
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (5, 3, Bytes::from("cde"))
        );
        // A full block does not wait.
        for _ in 0..BLOCK_EVENTS_MAX {
            push(&mut pipeline, b"x");
        }
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()).1,
            i32::try_from(BLOCK_EVENTS_MAX).unwrap()
        );
        assert!(pipeline.next_block().is_none());
        // Nor does a large one.
        static LARGE: [u8; GATHER_BYTES_MAX] = [7; GATHER_BYTES_MAX];
        push(&mut pipeline, &LARGE);
        assert_eq!(block_of(&pipeline.next_block().unwrap()).0, 506);
        // Once the in-flight blocks are acknowledged, nothing is held back.
        push(&mut pipeline, b"y");
        assert_eq!(pipeline.ack(506), Ok(505));
        assert_eq!(
            block_of(&pipeline.next_block().unwrap()),
            (507, 1, Bytes::from("y"))
        );
        // A lost connection resends its blocks at once, whatever is in flight.
        pipeline.requeue();
        assert_eq!(block_of(&pipeline.next_block().unwrap()).0, 507);
    }

    #[test]
    fn blocks_hold_at_most_500_events() {
        let mut pipeline = Pipeline::new(7, None);
        let mut futures = Vec::new();
        for _ in 0..1001 {
            let (pending, future) = event(b"x", None);
            pipeline.push(pending);
            futures.push(future);
        }
        let sizes: Vec<i32> = std::iter::from_fn(|| pipeline.next_block())
            .map(|request| block_of(&request).1)
            .collect();
        assert_eq!(sizes, [500, 500, 1]);
    }

    #[test]
    fn conditional_blocks_travel_alone_and_chain_offsets() {
        let mut pipeline = Pipeline::new(7, None);
        let mut futures = Vec::new();
        for (data, expected) in [
            (&b"plain"[..], None),
            (b"ab", Some(10)),
            (b"cd", Some(12)),
            (b"ef", Some(20)),
            (b"after", None),
        ] {
            let (pending, future) = event(data, expected);
            pipeline.push(pending);
            futures.push(future);
        }
        assert_eq!(block_of(&pipeline.next_block().unwrap()).0, 1);
        assert!(
            pipeline.next_block().is_none(),
            "a conditional waits for the plain block"
        );
        pipeline.ack(1).unwrap();
        let chained = pipeline.next_block().unwrap();
        assert!(matches!(
            &chained,
            Request::ConditionalBlockEnd(block)
                if block.expected_offset == 10 && block.event_number == 3 && &block.data[..] == b"abcd"
        ));
        assert!(
            pipeline.next_block().is_none(),
            "nothing follows a conditional block"
        );
        pipeline.ack(3).unwrap();
        assert!(matches!(
            pipeline.next_block(),
            Some(Request::ConditionalBlockEnd(block)) if block.expected_offset == 20
        ));
        pipeline.fail_all(&AppendError::ConditionalCheckFailed { event_number: 4 });
        assert!(pipeline.is_empty());
        assert_eq!(pipeline.done_through(), 5);
    }
}

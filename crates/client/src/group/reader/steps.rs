//! The changes an [`EventReader`] makes to its group's state, each run as a step that a
//! cancelled call cannot cut in half.
//!
//! A change of the shared state and the matching local change (starting or stopping a
//! segment's reads) cannot happen at once, and the application may drop a call of
//! [`EventReader::next_event`] at any await point between them (a time-out, a `select!`). So
//! every change runs in a task of its own, which finishes whatever happens to the call; the
//! reader keeps its handle, and the next call (or [`EventReader::close`]) settles it before
//! anything else: it waits for the task and makes the reader match what was written. The
//! state is the truth: after a change of ownership the reader reads exactly the segments the
//! state then assigns to it, new ones from the offsets recorded there.
//!
//! Every change is also idempotent against the state it runs on: the synchronizer re-runs it
//! after a conflict, which a write that succeeded but whose reply was lost (a retried request)
//! also causes.

use std::future::Future;

use super::EventReader;
use crate::controller::types::{ScopedSegment, SegmentId};
use crate::group::state::{self, Positions};
use crate::group::GroupError;
use crate::sync::{SyncError, Update};

/// What a state change leaves for the reader to do locally.
#[derive(Debug, Default)]
pub(super) struct Step {
    /// After a change of ownership: the segments the state assigns to this reader, with the
    /// offsets recorded there.
    owned: Option<Positions>,
    /// Rebalance at the next call (another reader's segments were unassigned).
    rebalance: bool,
}

impl Step {
    pub(super) fn rebalance() -> Self {
        Self {
            owned: None,
            rebalance: true,
        }
    }
}

impl EventReader {
    /// Runs `step` in a task of its own and settles it (see [`Self::settle`]).
    pub(super) async fn run_step(
        &mut self,
        step: impl Future<Output = Result<Step, GroupError>> + Send + 'static,
    ) -> Result<(), GroupError> {
        // Every caller settles first; two steps in flight could overtake each other.
        assert!(self.pending.is_none(), "a state change is still in flight");
        self.pending = Some(tokio::spawn(step));
        self.settle().await
    }

    /// Waits for the state change in flight, if any (started by this call, or by one that
    /// was cancelled), and applies what it leaves to do. Cancel-safe: the task's handle stays
    /// here until the task has finished.
    pub(super) async fn settle(&mut self) -> Result<(), GroupError> {
        let Some(task) = self.pending.as_mut() else {
            return Ok(());
        };
        let joined = task.await;
        self.pending = None;
        let step = match joined {
            Ok(result) => result.map_err(|error| self.refused(error))?,
            // Never aborted (the reader drops it only when dropped itself): a panic.
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        };
        if let Some(owned) = step.owned {
            self.adopt(&owned);
        }
        if step.rebalance {
            self.last_rebalance = None;
        }
        Ok(())
    }

    /// Acquires up to `max` unassigned segments.
    pub(super) async fn acquire(&mut self, max: usize) -> Result<(), GroupError> {
        let id = self.id.clone();
        self.change_ownership(move |update| state::acquire(update, &id, max).map(drop))
            .await
    }

    /// Gives `segment` up, to be read from `offset` by whoever acquires it next.
    pub(super) async fn release(
        &mut self,
        segment: ScopedSegment,
        offset: i64,
    ) -> Result<(), GroupError> {
        let id = self.id.clone();
        self.change_ownership(move |update| {
            // Not owned: released already, by an attempt whose reply was lost.
            if !state::owned(update, &id)?.contains_key(&segment) {
                return Ok(());
            }
            state::release(update, &id, &segment, offset)
        })
        .await
    }

    /// Records that `segment` was read up to `end`; its successors wait for their other
    /// predecessors.
    pub(super) async fn record_completed(
        &mut self,
        segment: ScopedSegment,
        end: i64,
        successors: Vec<(ScopedSegment, Vec<SegmentId>)>,
    ) -> Result<(), GroupError> {
        let id = self.id.clone();
        self.change_ownership(move |update| {
            // Not owned: completed already, by an attempt whose reply was lost.
            if !state::owned(update, &id)?.contains_key(&segment) {
                return Ok(());
            }
            state::segment_completed(update, &id, &segment, end, &successors)
        })
        .await
    }

    /// Records how far this reader has read its segments.
    pub(super) async fn record_positions(&mut self) -> Result<(), GroupError> {
        let (state, id, positions) = (self.group.state.clone(), self.id.clone(), self.positions());
        self.run_step(async move {
            state
                .lock()
                .await
                .update(|update| state::update_positions(update, &id, &positions))
                .await?;
            Ok(Step::default())
        })
        .await
    }

    /// A change of this reader's segments, then the reader reads what the state assigns it.
    async fn change_ownership(
        &mut self,
        mut change: impl FnMut(&mut Update) -> Result<(), SyncError> + Send + 'static,
    ) -> Result<(), GroupError> {
        let (state, id) = (self.group.state.clone(), self.id.clone());
        self.run_step(async move {
            let owned = state
                .lock()
                .await
                .update(|update| {
                    change(update)?;
                    state::owned(update, &id)
                })
                .await?;
            Ok(Step {
                owned: Some(owned),
                rebalance: false,
            })
        })
        .await
    }

    /// Makes the segments read here those of `owned`: segments no longer assigned to this
    /// reader stop, newly assigned ones start at the offsets recorded for them. Segments read
    /// here already go on from where they are (the state's offsets may be older).
    fn adopt(&mut self, owned: &Positions) {
        let gone: Vec<ScopedSegment> = self
            .owned
            .keys()
            .filter(|segment| !owned.contains_key(*segment))
            .cloned()
            .collect();
        for segment in gone {
            tracing::debug!(reader = %self.id, segment = %segment.qualified_name(), "segment no longer read here");
            self.stop(&segment);
        }
        for (segment, offset) in owned {
            if !self.owned.contains_key(segment) {
                tracing::debug!(reader = %self.id, segment = %segment.qualified_name(), offset, "acquired segment");
                self.start(segment.clone(), *offset);
            }
        }
    }

    /// A state change's failure; a reader found offline stops reading.
    fn refused(&mut self, error: GroupError) -> GroupError {
        let GroupError::Sync(SyncError::Precondition(message)) = &error else {
            return error;
        };
        tracing::warn!(reader = %self.id, %message, "reader group state refused a change");
        if message.contains("is not online") {
            self.offline = true;
            self.stop_all();
            return GroupError::ReaderOffline(self.id.clone());
        }
        error
    }
}

//! An [`EventReader`]'s part in checkpoints: refreshing the group's state, starting automatic
//! checkpoints, and taking part in those waiting for it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{EventReader, Step};
use crate::group::checkpoint_state;
use crate::group::format::{CheckpointRecord, ConfigVersioned};
use crate::group::state;
use crate::group::GroupError;

/// The prefix of automatic checkpoints' names (the sequence number follows).
const AUTOMATIC_CHECKPOINT_PREFIX: &str = "pravaha-auto-";

impl EventReader {
    /// Reads the group's state: settings and end cuts, whether this reader is still online
    /// (a reset takes every reader offline), automatic checkpoints due, and the checkpoints
    /// waiting for this reader, in which it takes part now (at its current positions).
    pub(super) async fn refresh(&mut self) -> Result<(), GroupError> {
        let (checkpoints, settings, ends, online) = {
            let mut sync = self.group.state.lock().await;
            sync.fetch_updates().await?;
            let config = state::config(&*sync)?;
            let settings = checkpoint_state::settings(&*sync)?;
            (
                checkpoint_state::checkpoints(&*sync)?,
                (config, settings),
                state::end_offsets(&*sync)?,
                state::owned(&*sync, &self.id).is_ok(),
            )
        };
        if !online {
            self.offline = true;
            self.stop_all();
            return Err(GroupError::ReaderOffline(self.id.clone()));
        }
        self.ends = ends;
        if let (Some(ConfigVersioned::V1(config)), settings) = settings {
            let interval = settings
                .and_then(|settings| settings.automatic_checkpoint_interval_millis)
                .filter(|millis| *millis > 0)
                .map(Duration::from_millis);
            self.group_settings = Some((
                Duration::from_millis(config.group_refresh_time_millis),
                interval,
            ));
        }
        let newest = checkpoints.values().map(|r| r.sequence).max().unwrap_or(0);
        if newest > self.last_checkpoint.0 {
            self.last_checkpoint = (newest, Instant::now());
        }
        if let Some((_, Some(interval))) = self.group_settings {
            if self.last_checkpoint.1.elapsed() >= interval {
                self.automatic_checkpoint(&checkpoints, newest).await?;
            }
        }
        let waiting = checkpoints.values().any(|r| r.pending.contains(&self.id))
            || self.last_checkpoint.0 > newest;
        if waiting {
            self.take_part().await?;
        }
        self.announce().await
    }

    /// Queues the announcement of every checkpoint this reader took part in and has not
    /// announced, oldest first. Read from the state, so a participation written by a call that
    /// was cancelled before it returned is still announced (once).
    async fn announce(&mut self) -> Result<(), GroupError> {
        let mut checkpoints: Vec<(String, CheckpointRecord)> = {
            let sync = self.group.state.lock().await;
            checkpoint_state::checkpoints(&*sync)?.into_iter().collect()
        };
        self.announced
            .retain(|name| checkpoints.iter().any(|(kept, _)| kept == name));
        checkpoints.sort_by_key(|(_, record)| record.sequence);
        for (name, record) in checkpoints {
            if record.took_part.contains(&self.id) && self.announced.insert(name.clone()) {
                self.announcements.push_back(name);
            }
        }
        Ok(())
    }

    /// Starts an automatic checkpoint, abandoning the previous one if it is still outstanding
    /// (a reader that never takes part keeps it from completing).
    async fn automatic_checkpoint(
        &mut self,
        checkpoints: &BTreeMap<String, CheckpointRecord>,
        newest: u64,
    ) -> Result<(), GroupError> {
        let outstanding: Vec<String> = checkpoints
            .iter()
            .filter(|(_, record)| record.automatic && !record.is_complete())
            .map(|(name, _)| name.clone())
            .collect();
        let name = format!("{AUTOMATIC_CHECKPOINT_PREFIX}{}", newest + 1);
        let group = self.group.clone();
        self.run_step(async move {
            for name in outstanding {
                // Its error names the readers it waited for, and is logged there.
                let _ = group.abandon_checkpoint(&name).await;
            }
            match group.create_checkpoint(&name, true).await {
                // Started here, or by another reader, or an application's is outstanding.
                Ok(_) | Err(GroupError::CheckpointExists(_)) => Ok(Step::default()),
                Err(error) => Err(error),
            }
        })
        .await?;
        // Counted from now whichever reader started it; this reader takes part below.
        self.last_checkpoint = (self.last_checkpoint.0.max(newest + 1), Instant::now());
        Ok(())
    }

    /// Takes part in every checkpoint waiting for this reader (announced by [`Self::announce`]).
    async fn take_part(&mut self) -> Result<(), GroupError> {
        let (group, id, positions) = (self.group.clone(), self.id.clone(), self.positions());
        self.run_step(async move {
            let taken = group
                .state
                .lock()
                .await
                .update(|update| checkpoint_state::take_part(update, &id, &positions))
                .await?;
            let mut completed = Vec::new();
            for (name, complete) in taken {
                tracing::debug!(reader = %id, checkpoint = name.as_str(), complete, "took part in a checkpoint");
                if complete {
                    completed.push(name);
                }
            }
            group.checkpoints_completed(&completed).await;
            Ok(Step::default())
        })
        .await?;
        self.last_position_update = Instant::now();
        Ok(())
    }
}

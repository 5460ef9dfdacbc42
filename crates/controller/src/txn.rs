//! Transactions: segments beside the stream's segments that receive a transaction's events, and
//! are merged into the stream all at once when it commits.
//!
//! - A transaction has a record `txn/<scope>/<stream>/<32 hex id>` (JSON, see
//!   docs/formats/controller-metadata.md) written before its segments are created, so that a
//!   crash never leaves segments nobody knows of.
//! - Commit marks the record `Committing` (so a retried commit after a lost reply succeeds),
//!   then runs the stream's commit workflow, which takes every committing transaction of one
//!   epoch at once (commits are batched), merges them in commit order, marks them `Committed`
//!   and clears the workflow. Transactions of an older epoch are committed as Pravega's rolling
//!   transactions are (see [`crate::model::RollingCommit`]).
//! - A background sweeper aborts transactions whose lease ran out, finishes aborts and commits
//!   a crash interrupted, and forgets finished transactions after a while.

use pravaha_segment_client::ClientError;
use pravaha_types::{qualified_segment_name, transaction_segment_name};
use serde::{Deserialize, Serialize};

use crate::core::{now_ms, policy_of, stream_key, Controller};
use crate::error::ControllerError;
use crate::metadata::Versioned;
use crate::model::{RollingCommit, SegmentRange, StreamRecord, StreamState, Workflow};

/// The longest lease a transaction may ask for.
pub const MAX_LEASE_MS: i64 = 10 * 60 * 1000;
/// How long finished transactions are remembered (for status and `listCompletedTransactions`).
const COMPLETED_RETENTION_MS: i64 = 60 * 60 * 1000;
/// A commit marked but not finished for this long is driven by the sweeper.
const STUCK_COMMIT_MS: i64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    Open,
    Committing,
    Committed,
    Aborting,
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnRecord {
    pub v: u32,
    /// 32 lower-case hex digits.
    pub id: String,
    pub scope: String,
    pub stream: String,
    /// The epoch whose segments the transaction writes beside.
    pub epoch: u32,
    /// The parent segments (the epoch's segments when it was created).
    pub segments: Vec<i64>,
    pub status: TxnStatus,
    pub lease_ms: i64,
    /// When the lease runs out unless pinged.
    pub deadline_ms: i64,
    pub created_ms: i64,
    /// When commit or abort was asked (orders commits; ages finished records).
    pub finished_ms: i64,
    /// Commit order: strictly increasing per controller clock.
    pub commit_sequence: u64,
    pub writer_id: String,
    pub commit_timestamp: i64,
}

/// What a ping found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    Ok,
    LeaseTooLarge,
    Committed,
    Aborted,
    Unknown,
}

fn txn_key(scope: &str, stream: &str, id: u128) -> String {
    format!("txn/{scope}/{stream}/{id:032x}")
}

fn parse_id(id: &str) -> u128 {
    u128::from_str_radix(id, 16).unwrap_or(0)
}

/// The lease granted: the asked lease, plus one more lease of grace, because the official Rust
/// client pings only once per full lease.
fn deadline(now: i64, lease_ms: i64) -> i64 {
    now.saturating_add(lease_ms.saturating_mul(2))
}

/// A new transaction id: the epoch in the top 32 bits of the high half (as the clients expect),
/// random bits elsewhere, and a non-negative low half.
fn new_txn_id(epoch: u32) -> u128 {
    let high = (u64::from(epoch) << 32) | u64::from(rand::random::<u32>());
    let low = rand::random::<u64>() >> 1;
    (u128::from(high) << 64) | u128::from(low)
}

impl Controller {
    /// Opens a transaction: its record, then one segment beside each segment of the current
    /// epoch. Returns its id and that epoch's segments.
    pub async fn create_transaction(
        &self,
        scope: &str,
        stream: &str,
        lease_ms: i64,
    ) -> Result<(u128, Vec<SegmentRange>), ControllerError> {
        if !(1..=MAX_LEASE_MS).contains(&lease_ms) {
            return Err(ControllerError::InvalidArgument(format!(
                "the lease must be between 1 ms and {MAX_LEASE_MS} ms, not {lease_ms}"
            )));
        }
        let record = self.stream(scope, stream).await?;
        if record.state != StreamState::Active {
            return Err(ControllerError::StreamSealed {
                scope: scope.to_owned(),
                stream: stream.to_owned(),
            });
        }
        let epoch = record.current_epoch().clone();
        let now = now_ms();
        let id = new_txn_id(epoch.epoch);
        let txn = TxnRecord {
            v: 1,
            id: format!("{id:032x}"),
            scope: scope.to_owned(),
            stream: stream.to_owned(),
            epoch: epoch.epoch,
            segments: epoch.segments.clone(),
            status: TxnStatus::Open,
            lease_ms,
            deadline_ms: deadline(now, lease_ms),
            created_ms: now,
            finished_ms: 0,
            commit_sequence: 0,
            writer_id: String::new(),
            commit_timestamp: 0,
        };
        if self
            .inner
            .table
            .create(&txn_key(scope, stream, id), &txn)
            .await?
            .is_none()
        {
            return Err(ControllerError::Internal("transaction id collision".into()));
        }
        let policy = policy_of(&record.config);
        for parent in &epoch.segments {
            let segment = transaction_segment_name(scope, stream, *parent, id);
            self.create_segment(&segment, policy).await?;
        }
        let ranges = record.epoch_segments(epoch.epoch).unwrap_or_default();
        Ok((id, ranges))
    }

    async fn load_txn(
        &self,
        scope: &str,
        stream: &str,
        id: u128,
    ) -> Result<Option<Versioned<TxnRecord>>, ControllerError> {
        self.inner.table.get(&txn_key(scope, stream, id)).await
    }

    /// The transaction's status; `None` if it is unknown (never existed or long forgotten).
    pub async fn transaction_status(
        &self,
        scope: &str,
        stream: &str,
        id: u128,
    ) -> Result<Option<TxnStatus>, ControllerError> {
        Ok(self
            .load_txn(scope, stream, id)
            .await?
            .map(|txn| txn.value.status))
    }

    /// Extends an open transaction's lease.
    pub async fn ping_transaction(
        &self,
        scope: &str,
        stream: &str,
        id: u128,
        lease_ms: i64,
    ) -> Result<PingOutcome, ControllerError> {
        if lease_ms > MAX_LEASE_MS {
            return Ok(PingOutcome::LeaseTooLarge);
        }
        let key = txn_key(scope, stream, id);
        for _ in 0..64 {
            let Some(Versioned { mut value, version }) = self.load_txn(scope, stream, id).await?
            else {
                return Ok(PingOutcome::Unknown);
            };
            match value.status {
                TxnStatus::Committing | TxnStatus::Committed => return Ok(PingOutcome::Committed),
                TxnStatus::Aborting | TxnStatus::Aborted => return Ok(PingOutcome::Aborted),
                TxnStatus::Open => {}
            }
            value.lease_ms = lease_ms.max(1);
            value.deadline_ms = deadline(now_ms(), value.lease_ms);
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                return Ok(PingOutcome::Ok);
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Commits a transaction: its events appear in the stream all at once, after everything
    /// committed before it. Idempotent: committing a committed transaction succeeds.
    pub async fn commit_transaction(
        &self,
        scope: &str,
        stream: &str,
        id: u128,
        writer_id: &str,
        timestamp: i64,
    ) -> Result<(), ControllerError> {
        let key = txn_key(scope, stream, id);
        loop {
            let Some(Versioned { mut value, version }) = self.load_txn(scope, stream, id).await?
            else {
                return Err(ControllerError::TransactionNotFound(format!("{id:032x}")));
            };
            match value.status {
                TxnStatus::Committed => return Ok(()),
                TxnStatus::Committing => break,
                TxnStatus::Aborting | TxnStatus::Aborted => {
                    return Err(ControllerError::PreconditionFailed(format!(
                        "transaction {id:032x} was aborted"
                    )))
                }
                TxnStatus::Open => {}
            }
            value.status = TxnStatus::Committing;
            value.finished_ms = now_ms();
            value.commit_sequence = commit_sequence();
            value.writer_id = writer_id.to_owned();
            value.commit_timestamp = timestamp;
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                break;
            }
        }
        self.commit_pending(scope, stream, Some(id)).await
    }

    /// Runs commit workflows for the stream until `wanted` (or, without one, every committing
    /// transaction) is committed.
    pub(crate) async fn commit_pending(
        &self,
        scope: &str,
        stream: &str,
        wanted: Option<u128>,
    ) -> Result<(), ControllerError> {
        let key = stream_key(scope, stream);
        for _ in 0..256 {
            self.drive(&key).await?;
            let committing = self.committing(scope, stream).await?;
            if let Some(id) = wanted {
                match self.transaction_status(scope, stream, id).await? {
                    Some(TxnStatus::Committed) => return Ok(()),
                    Some(TxnStatus::Committing) => {}
                    _ => {
                        return Err(ControllerError::PreconditionFailed(format!(
                            "transaction {id:032x} is no longer committing"
                        )))
                    }
                }
            }
            let Some(first) = committing.first() else {
                return Ok(());
            };
            let Versioned { mut value, version } = match self.load(scope, stream).await {
                Ok(record) => record,
                Err(ControllerError::StreamNotFound { .. }) => {
                    // The stream is gone: its transactions can never commit.
                    for txn in &committing {
                        self.finish_abort(txn).await?;
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            if value.workflow.is_some() {
                continue;
            }
            if value.state == StreamState::Sealed {
                tracing::warn!(
                    scope,
                    stream,
                    "aborting transactions committed after the stream was sealed"
                );
                for txn in &committing {
                    self.finish_abort(txn).await?;
                }
                continue;
            }
            // One epoch per workflow: the epoch of the earliest commit, and every transaction
            // of that epoch that is committing (the batch).
            let epoch = first.epoch;
            let batch: Vec<String> = committing
                .iter()
                .filter(|t| t.epoch == epoch)
                .map(|t| t.id.clone())
                .collect();
            let rolling = if epoch == value.current_epoch().epoch {
                None
            } else {
                Some(value.plan_rolling(epoch, now_ms()).ok_or_else(|| {
                    ControllerError::Internal(format!(
                        "epoch {epoch} of {scope}/{stream} is unknown"
                    ))
                })?)
            };
            value.workflow = Some(Workflow::CommitTransactions {
                txns: batch,
                epoch,
                rolling,
            });
            self.inner.table.replace(&key, &value, version).await?;
        }
        Err(ControllerError::Contention(key))
    }

    /// The stream's committing transactions, in commit order.
    async fn committing(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<TxnRecord>, ControllerError> {
        let mut all = self.transactions(scope, stream).await?;
        all.retain(|t| t.status == TxnStatus::Committing);
        all.sort_by_key(|t| t.commit_sequence);
        Ok(all)
    }

    /// Every transaction record of the stream.
    pub async fn transactions(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<TxnRecord>, ControllerError> {
        let prefix = format!("txn/{scope}/{stream}/");
        self.list_all(&prefix).await
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<TxnRecord>, ControllerError> {
        let mut token = String::new();
        let mut all = Vec::new();
        loop {
            let (page, next) = self
                .inner
                .table
                .list::<TxnRecord>(prefix, &token, 1000)
                .await?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page.into_iter().map(|(_, txn)| txn));
            token = next;
        }
    }

    /// The segment-store steps of a commit workflow (see [`RollingCommit`]); each may repeat.
    pub(crate) async fn perform_commit(
        &self,
        record: &StreamRecord,
        txns: &[String],
        epoch: u32,
        rolling: Option<&RollingCommit>,
        steps: &mut usize,
    ) -> Result<(), ControllerError> {
        let (scope, stream) = (record.scope.as_str(), record.name.as_str());
        let name = |id: i64| qualified_segment_name(scope, stream, id);
        let parents = record
            .epoch(epoch)
            .map(|e| e.segments.clone())
            .unwrap_or_default();
        let policy = policy_of(&record.config);
        if let Some(rolling) = rolling {
            for duplicate in &rolling.duplicates {
                self.step(steps).await;
                self.create_segment(&name(duplicate.id), policy).await?;
            }
        }
        for txn in txns {
            let id = parse_id(txn);
            for (i, parent) in parents.iter().enumerate() {
                let target = match rolling {
                    Some(rolling) => rolling.duplicates.get(i).map_or(*parent, |d| d.id),
                    None => *parent,
                };
                let source = transaction_segment_name(scope, stream, *parent, id);
                self.step(steps).await;
                self.merge_segment(&name(target), &source).await?;
            }
        }
        if let Some(rolling) = rolling {
            for duplicate in &rolling.duplicates {
                self.step(steps).await;
                self.seal_segment(&name(duplicate.id)).await?;
            }
            for successor in &rolling.successors {
                self.step(steps).await;
                self.create_segment(&name(successor.id), policy).await?;
            }
            for sealed in &rolling.sealed {
                self.step(steps).await;
                self.seal_segment(&name(*sealed)).await?;
            }
        }
        for txn in txns {
            self.mark(scope, stream, parse_id(txn), TxnStatus::Committed)
                .await?;
        }
        Ok(())
    }

    async fn merge_segment(&self, target: &str, source: &str) -> Result<(), ControllerError> {
        match self
            .inner
            .client
            .merge_segments(self.locate(target), target, source, "")
            .await
        {
            // A source that is gone was merged by an earlier attempt of this workflow.
            Ok(_) | Err(ClientError::NoSuchSegment(_)) => Ok(()),
            Err(error) => Err(ControllerError::SegmentStore(error)),
        }
    }

    /// Sets a transaction's status (if it is not already final).
    async fn mark(
        &self,
        scope: &str,
        stream: &str,
        id: u128,
        status: TxnStatus,
    ) -> Result<(), ControllerError> {
        let key = txn_key(scope, stream, id);
        for _ in 0..64 {
            let Some(Versioned { mut value, version }) = self.load_txn(scope, stream, id).await?
            else {
                return Ok(());
            };
            if value.status == status {
                return Ok(());
            }
            value.status = status;
            if value.finished_ms == 0 {
                value.finished_ms = now_ms();
            }
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                return Ok(());
            }
        }
        Err(ControllerError::Contention(key))
    }

    /// Aborts a transaction: its segments are deleted and its events never appear. Idempotent.
    pub async fn abort_transaction(
        &self,
        scope: &str,
        stream: &str,
        id: u128,
    ) -> Result<(), ControllerError> {
        let key = txn_key(scope, stream, id);
        loop {
            let Some(Versioned { mut value, version }) = self.load_txn(scope, stream, id).await?
            else {
                return Err(ControllerError::TransactionNotFound(format!("{id:032x}")));
            };
            match value.status {
                TxnStatus::Aborted => return Ok(()),
                TxnStatus::Aborting => return self.finish_abort(&value).await,
                TxnStatus::Committing | TxnStatus::Committed => {
                    return Err(ControllerError::PreconditionFailed(format!(
                        "transaction {id:032x} is committing or committed"
                    )))
                }
                TxnStatus::Open => {}
            }
            value.status = TxnStatus::Aborting;
            value.finished_ms = now_ms();
            if self
                .inner
                .table
                .replace(&key, &value, version)
                .await?
                .is_some()
            {
                return self.finish_abort(&value).await;
            }
        }
    }

    async fn finish_abort(&self, txn: &TxnRecord) -> Result<(), ControllerError> {
        let id = parse_id(&txn.id);
        for parent in &txn.segments {
            let segment = transaction_segment_name(&txn.scope, &txn.stream, *parent, id);
            self.delete_segment(&segment).await?;
        }
        self.mark(&txn.scope, &txn.stream, id, TxnStatus::Aborted)
            .await
    }

    /// Finished transactions of the stream that are still remembered.
    pub async fn completed_transactions(
        &self,
        scope: &str,
        stream: &str,
    ) -> Result<Vec<(u128, TxnStatus)>, ControllerError> {
        self.stream(scope, stream).await?;
        Ok(self
            .transactions(scope, stream)
            .await?
            .into_iter()
            .filter(|t| matches!(t.status, TxnStatus::Committed | TxnStatus::Aborted))
            .map(|t| (parse_id(&t.id), t.status))
            .collect())
    }

    /// One pass of the sweeper over every transaction.
    pub async fn sweep_transactions(&self) -> Result<(), ControllerError> {
        let now = now_ms();
        let mut stuck_streams = std::collections::BTreeSet::new();
        for txn in self.list_all("txn/").await? {
            let id = parse_id(&txn.id);
            match txn.status {
                TxnStatus::Open if txn.deadline_ms < now => {
                    tracing::info!(
                        scope = txn.scope,
                        stream = txn.stream,
                        txn = txn.id,
                        "aborting a transaction whose lease ran out"
                    );
                    if let Err(error) = self.abort_transaction(&txn.scope, &txn.stream, id).await {
                        tracing::debug!(%error, "lease abort lost a race");
                    }
                }
                TxnStatus::Aborting => self.finish_abort(&txn).await?,
                TxnStatus::Committing if now - txn.finished_ms > STUCK_COMMIT_MS => {
                    stuck_streams.insert((txn.scope.clone(), txn.stream.clone()));
                }
                TxnStatus::Committed | TxnStatus::Aborted
                    if now - txn.finished_ms > COMPLETED_RETENTION_MS =>
                {
                    if let Some(record) = self.load_txn(&txn.scope, &txn.stream, id).await? {
                        self.inner
                            .table
                            .remove(&txn_key(&txn.scope, &txn.stream, id), record.version)
                            .await?;
                    }
                }
                _ => {}
            }
        }
        for (scope, stream) in stuck_streams {
            self.commit_pending(&scope, &stream, None).await?;
        }
        Ok(())
    }
}

/// A strictly increasing commit sequence: wall-clock microseconds, bumped past the last one.
fn commit_sequence() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(now_ms()).unwrap_or(0) * 1000;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

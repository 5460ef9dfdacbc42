//! Transactions (create, ping, commit, abort, state) and the writer calls for watermarks
//! (`noteTimestampFromWriter`, `removeWriter`).

use std::fmt;
use std::time::Duration;

use pravaha_controller_api::v1 as api;

use super::types::{ScopedStream, SegmentWithRange, StreamCut, StreamSegments};
use super::{ControllerClient, ControllerError, Target};

/// A transaction id: 128 bits, the epoch the transaction was created in sitting in the top 32
/// bits (Pravega's layout). Printed as 32 lower-case hex digits, as in transaction segment names.
///
/// ```
/// use pravaha_client::controller::TxnId;
///
/// let id = TxnId((7u128 << 96) | 42);
/// assert_eq!(id.epoch(), 7);
/// assert_eq!(id.to_string(), "0000000700000000000000000000002a");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub u128);

impl TxnId {
    /// The epoch of the stream the transaction was created in (its segments are that epoch's).
    pub fn epoch(self) -> u32 {
        // The top 32 bits of a u128 always fit.
        u32::try_from(self.0 >> 96).unwrap_or(u32::MAX)
    }

    pub(crate) fn to_api(self) -> api::TxnId {
        // Two's complement halves, as the Java and Rust clients send them.
        api::TxnId {
            high_bits: (self.0 >> 64) as u64 as i64,
            low_bits: self.0 as u64 as i64,
        }
    }

    pub(crate) fn from_api(id: &api::TxnId) -> Self {
        Self((u128::from(id.high_bits as u64) << 64) | u128::from(id.low_bits as u64))
    }
}

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A transaction the controller opened: its id and the segments (of its epoch) it writes
/// beside, with the delegation token for them.
///
/// ```
/// use pravaha_client::controller::{TransactionCreated, TxnId};
/// use pravaha_client::controller::types::StreamSegments;
///
/// let created = TransactionCreated {
///     id: TxnId(1),
///     segments: StreamSegments { segments: Vec::new(), delegation_token: String::new() },
/// };
/// assert_eq!(created.id.epoch(), 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionCreated {
    pub id: TxnId,
    pub segments: StreamSegments,
}

/// Where a transaction stands (`checkTransactionState`).
///
/// ```
/// use pravaha_client::controller::TransactionState;
///
/// assert!(TransactionState::Committed.is_finished());
/// assert!(!TransactionState::Open.is_finished());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// Not known to the controller (never created, or forgotten long after it finished).
    Unknown,
    Open,
    Committing,
    Committed,
    Aborting,
    Aborted,
}

impl TransactionState {
    /// Committed or aborted: nothing will change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Committed | Self::Aborted)
    }
}

/// The answer to a lease renewal (`pingTransaction`).
///
/// ```
/// use pravaha_client::controller::PingStatus;
///
/// assert_ne!(PingStatus::Ok, PingStatus::Committed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingStatus {
    /// The lease was renewed.
    Ok,
    /// The lease asked for exceeds the controller's maximum; nothing changed.
    LeaseTooLarge,
    /// The transaction ran longer than it may.
    MaxExecutionTimeExceeded,
    /// The transaction is committing or committed.
    Committed,
    /// The transaction is aborting or aborted (perhaps because its lease ran out).
    Aborted,
    /// The controller does not know the transaction.
    Unknown,
}

impl ControllerClient {
    /// Opens a transaction on `stream` that the controller aborts unless it is pinged within
    /// `lease` (at most the controller's maximum).
    pub async fn create_transaction(
        &self,
        stream: &ScopedStream,
        lease: Duration,
    ) -> Result<TransactionCreated, ControllerError> {
        let message = api::CreateTxnRequest {
            stream_info: Some(stream.to_api()),
            lease: lease_ms(lease)?,
            ..Default::default()
        };
        let reply = self
            .call(
                "createTransaction",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.create_transaction(r).await },
            )
            .await?;
        let id = reply
            .txn_id
            .as_ref()
            .map(TxnId::from_api)
            .ok_or_else(|| ControllerError::internal("createTransaction answered no id"))?;
        let segments = reply
            .active_segments
            .into_iter()
            .map(SegmentWithRange::from_api)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ControllerError::internal("createTransaction answered a segment without an id")
            })?;
        Ok(TransactionCreated {
            id,
            segments: StreamSegments {
                segments,
                delegation_token: reply.delegation_token,
            },
        })
    }

    /// Renews the transaction's lease to `lease` from now.
    pub async fn ping_transaction(
        &self,
        stream: &ScopedStream,
        id: TxnId,
        lease: Duration,
    ) -> Result<PingStatus, ControllerError> {
        use api::ping_txn_status::Status as S;
        let message = api::PingTxnRequest {
            stream_info: Some(stream.to_api()),
            txn_id: Some(id.to_api()),
            lease: lease_ms(lease)?,
        };
        let reply = self
            .call(
                "pingTransaction",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.ping_transaction(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Ok) => Ok(PingStatus::Ok),
            Ok(S::LeaseTooLarge) => Ok(PingStatus::LeaseTooLarge),
            Ok(S::MaxExecutionTimeExceeded) => Ok(PingStatus::MaxExecutionTimeExceeded),
            Ok(S::Committed) => Ok(PingStatus::Committed),
            Ok(S::Aborted) => Ok(PingStatus::Aborted),
            Ok(S::Unknown) => Ok(PingStatus::Unknown),
            _ => Err(ControllerError::failure("pingTransaction", reply.status)),
        }
    }

    /// Commits the transaction: its events appear in the stream at once, after everything
    /// before. `writer_id` and `timestamp` (event time, ms) feed watermarks; pass an empty
    /// writer id and `i64::MIN` to leave them out. Committing a committed transaction succeeds;
    /// an aborted one is refused with [`ControllerError::PreconditionFailed`].
    pub async fn commit_transaction(
        &self,
        stream: &ScopedStream,
        id: TxnId,
        writer_id: &str,
        timestamp: i64,
    ) -> Result<(), ControllerError> {
        let message = txn_request(stream, id, writer_id, timestamp);
        let reply = self
            .call(
                "commitTransaction",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.commit_transaction(r).await },
            )
            .await?;
        txn_status("commitTransaction", stream, id, reply.status)
    }

    /// Aborts the transaction: its events are never visible. Aborting an aborted transaction
    /// succeeds; a committed one is refused with [`ControllerError::PreconditionFailed`].
    pub async fn abort_transaction(
        &self,
        stream: &ScopedStream,
        id: TxnId,
    ) -> Result<(), ControllerError> {
        let message = txn_request(stream, id, "", i64::MIN);
        let reply = self
            .call(
                "abortTransaction",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.abort_transaction(r).await },
            )
            .await?;
        txn_status("abortTransaction", stream, id, reply.status)
    }

    /// Where the transaction stands.
    pub async fn check_transaction_state(
        &self,
        stream: &ScopedStream,
        id: TxnId,
    ) -> Result<TransactionState, ControllerError> {
        use api::txn_state::State as S;
        let message = txn_request(stream, id, "", i64::MIN);
        let reply = self
            .call(
                "checkTransactionState",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.check_transaction_state(r).await },
            )
            .await?;
        Ok(match S::try_from(reply.state) {
            Ok(S::Open) => TransactionState::Open,
            Ok(S::Committing) => TransactionState::Committing,
            Ok(S::Committed) => TransactionState::Committed,
            Ok(S::Aborting) => TransactionState::Aborting,
            Ok(S::Aborted) => TransactionState::Aborted,
            Ok(S::Unknown) | Err(_) => TransactionState::Unknown,
        })
    }

    /// Tells the controller that `writer` has written every event with an event time below
    /// `timestamp` (ms), up to `position` (per segment, the offset it has written to; the
    /// segments must tile the key space). Watermarks are computed from these marks. A time
    /// earlier than the writer's previous mark, or a position that is not a stream cut of the
    /// stream, is refused with [`ControllerError::InvalidArgument`].
    pub async fn note_timestamp_from_writer(
        &self,
        writer: &str,
        position: &StreamCut,
        timestamp: i64,
    ) -> Result<(), ControllerError> {
        use api::timestamp_response::Status as S;
        let stream = &position.stream;
        let message = api::TimestampFromWriter {
            writer: writer.to_owned(),
            position: Some(position.to_api()),
            timestamp,
        };
        let reply = self
            .call(
                "noteTimestampFromWriter",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.note_timestamp_from_writer(r).await },
            )
            .await?;
        match S::try_from(reply.result) {
            Ok(S::Success) => Ok(()),
            Ok(S::InvalidTime) => Err(ControllerError::invalid_argument(format!(
                "time {timestamp} of writer {writer} on {stream} is before its previous mark"
            ))),
            Ok(S::InvalidPosition) => Err(ControllerError::invalid_argument(format!(
                "the position of writer {writer} is not a stream cut of {stream}"
            ))),
            _ => Err(ControllerError::failure(
                "noteTimestampFromWriter",
                reply.result,
            )),
        }
    }

    /// Forgets `writer`'s marks on `stream` (it no longer holds watermarks back): `true` if it
    /// was known, `false` if not.
    pub async fn remove_writer(
        &self,
        stream: &ScopedStream,
        writer: &str,
    ) -> Result<bool, ControllerError> {
        use api::remove_writer_response::Status as S;
        let message = api::RemoveWriterRequest {
            writer: writer.to_owned(),
            stream: Some(stream.to_api()),
        };
        let reply = self
            .call(
                "removeWriter",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.remove_writer(r).await },
            )
            .await?;
        match S::try_from(reply.result) {
            Ok(S::Success) => Ok(true),
            Ok(S::UnknownWriter) => Ok(false),
            Ok(S::StreamDoesNotExist) => Err(ControllerError::stream_not_found(stream)),
            _ => Err(ControllerError::failure("removeWriter", reply.result)),
        }
    }
}

fn lease_ms(lease: Duration) -> Result<i64, ControllerError> {
    i64::try_from(lease.as_millis())
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| {
            ControllerError::invalid_argument(format!("a lease of {lease:?} cannot be sent"))
        })
}

fn txn_request(
    stream: &ScopedStream,
    id: TxnId,
    writer_id: &str,
    timestamp: i64,
) -> api::TxnRequest {
    api::TxnRequest {
        stream_info: Some(stream.to_api()),
        txn_id: Some(id.to_api()),
        writer_id: writer_id.to_owned(),
        timestamp,
    }
}

/// The outcome of `commitTransaction` and `abortTransaction`.
fn txn_status(
    rpc: &str,
    stream: &ScopedStream,
    id: TxnId,
    status: i32,
) -> Result<(), ControllerError> {
    use api::txn_status::Status as S;
    match S::try_from(status) {
        Ok(S::Success) => Ok(()),
        Ok(S::StreamNotFound) => Err(ControllerError::stream_not_found(stream)),
        Ok(S::TransactionNotFound) => Err(ControllerError::NotFound {
            message: format!("transaction {id} of {stream}"),
        }),
        Ok(S::Failure) => Err(ControllerError::PreconditionFailed {
            message: format!(
                "{rpc} of transaction {id} of {stream} refused (already finished the other way)"
            ),
        }),
        Err(_) => Err(ControllerError::failure(rpc, status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_ids_round_trip_through_the_api() {
        for raw in [0u128, 1, u128::MAX, (5u128 << 96) | (1 << 63), 1 << 127] {
            let id = TxnId(raw);
            assert_eq!(TxnId::from_api(&id.to_api()), id);
        }
        assert_eq!(TxnId(u128::MAX).epoch(), u32::MAX);
    }

    #[test]
    fn leases_must_be_positive_milliseconds() {
        assert_eq!(lease_ms(Duration::from_secs(90)).unwrap(), 90_000);
        assert!(lease_ms(Duration::ZERO).is_err());
        assert!(lease_ms(Duration::from_micros(10)).is_err());
    }
}

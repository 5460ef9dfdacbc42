//! Events waiting to be appended: their bytes, their completion and their share of the budget.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use pravaha_wire as wire;
use tokio::sync::oneshot;

use super::budget::{BudgetPermit, ByteBudget};
use super::writer::WriterError;

/// The most bytes one append may carry (an `AppendBlockEnd` block of the official client): one
/// event of [`MAX_EVENT_PAYLOAD`] with its 8-byte header. Larger events need the large-event
/// path (a transient segment and a merge).
pub const MAX_EVENT_DATA: usize = (8 << 20) + wire::HEADER_LEN;
/// The largest event payload that fits one append.
pub const MAX_EVENT_PAYLOAD: usize = 8 << 20;

/// How a writer turns a payload into segment bytes.
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::segment::Framing;
///
/// let framed = Framing::Events.apply(Bytes::from_static(b"hi"));
/// assert_eq!(&framed[..], &[0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
/// let raw = Framing::Raw.apply(Bytes::from_static(b"hi"));
/// assert_eq!(&raw[..], b"hi");
/// assert_eq!(Framing::default(), Framing::Events);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// Pravega events: `[type 0: i32][length: i32][payload]`, big-endian; what event readers
    /// parse.
    #[default]
    Events,
    /// The bytes verbatim (byte streams).
    Raw,
}

impl Framing {
    /// The bytes to append for `payload`.
    pub fn apply(self, payload: Bytes) -> Bytes {
        match self {
            Framing::Events => frame_event(&payload),
            Framing::Raw => payload,
        }
    }
}

/// Frames `payload` as one Pravega event record. Payloads longer than `i32::MAX` cannot be
/// framed; callers refuse them first (see [`MAX_EVENT_PAYLOAD`]).
pub fn frame_event(payload: &[u8]) -> Bytes {
    let length =
        i32::try_from(payload.len()).expect("event payloads are checked against the limit");
    let mut out = BytesMut::with_capacity(wire::HEADER_LEN + payload.len());
    out.put_i32(wire::EVENT_TYPE);
    out.put_i32(length);
    out.put_slice(payload);
    out.freeze()
}

/// Why one event was not appended.
///
/// ```no_run
/// # use pravaha_client::segment::SegmentWriter;
/// # async fn example(writer: SegmentWriter) -> Result<(), Box<dyn std::error::Error>> {
/// use bytes::Bytes;
/// use pravaha_client::segment::AppendError;
///
/// // Append only if nobody else appended since offset 0.
/// let appended = writer.write_conditional(Bytes::from_static(b"first"), 0).await?;
/// match appended.await {
///     Ok(()) => println!("written at offset 0"),
///     Err(AppendError::ConditionalCheckFailed { .. }) => {
///         // Someone else wrote first; accept events again and read what they wrote.
///         writer.reset().await;
///     }
///     Err(error) => return Err(error.into()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// A conditional append whose expected offset was not the segment's length; also every
    /// event given to the writer after such a failure until [`super::SegmentWriter::reset`].
    #[error("conditional append failed: the segment length differed from the expected offset (failed event number {event_number})")]
    ConditionalCheckFailed { event_number: i64 },
    /// The session failed for good (retries exhausted, refused token, protocol violation). The
    /// event may or may not be in the segment.
    #[error("the append session failed: {0}")]
    Session(WriterError),
    /// The event was dropped without an outcome: a session's hand-back (sealed segment) that the
    /// caller did not resend, or a writer task that stopped abnormally.
    #[error("the event was dropped before it was acknowledged")]
    Dropped,
}

/// Completes with the outcome of one event: `Ok(())` once the segment store acknowledged it
/// (it is durable).
///
/// Dropping the future does not cancel the append; an event dropped without an outcome
/// completes with [`AppendError::Dropped`]:
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::segment::{AppendError, BudgetPermit, PendingEvent};
///
/// let (event, appended) = PendingEvent::new(Bytes::from_static(b"data"), BudgetPermit::empty())?;
/// drop(event); // never given to a writer
/// let outcome = futures::executor::block_on(appended);
/// assert!(matches!(outcome, Err(AppendError::Dropped)));
/// # Ok::<(), pravaha_client::segment::WriterError>(())
/// ```
#[derive(Debug)]
#[must_use = "an append's outcome is known only through its future"]
pub struct AppendFuture {
    receiver: oneshot::Receiver<Result<(), AppendError>>,
}

impl Future for AppendFuture {
    type Output = Result<(), AppendError>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(context)
            .map(|received| received.unwrap_or(Err(AppendError::Dropped)))
    }
}

/// One event on its way into a segment: the exact bytes to append (already framed, or raw),
/// an optional expected offset (conditional append), the sender of its outcome and its share of
/// the in-flight budget, held until it completes.
///
/// A session that ends because the segment is sealed hands its pending events back in order
/// ([`super::SessionEnd::Sealed`]); submitting them to another writer keeps their futures.
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::segment::{ByteBudget, Framing, PendingEvent};
///
/// # futures::executor::block_on(async {
/// let budget = ByteBudget::new(1 << 20);
/// let (event, acknowledged) =
///     PendingEvent::prepare(Bytes::from_static(b"hello"), Framing::Events, None, &budget).await?;
/// assert_eq!(event.data().len(), 8 + 5); // the event header, then the payload
/// assert_eq!(budget.available(), (1 << 20) - 13);
/// // A segment writer completes it when the segment store acknowledges it
/// // (`SegmentWriter::submit`); here it is completed by hand.
/// event.complete(Ok(()));
/// acknowledged.await?;
/// assert_eq!(budget.available(), 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct PendingEvent {
    data: Bytes,
    expected_offset: Option<i64>,
    completion: oneshot::Sender<Result<(), AppendError>>,
    _permit: BudgetPermit,
}

impl PendingEvent {
    /// An event of `data` (appended verbatim) holding `permit`, and the future of its outcome.
    pub fn new(data: Bytes, permit: BudgetPermit) -> Result<(Self, AppendFuture), WriterError> {
        Self::with_condition(data, None, permit)
    }

    /// Like [`Self::new`], appended only if the segment's length is then `expected_offset`.
    pub fn with_condition(
        data: Bytes,
        expected_offset: Option<i64>,
        permit: BudgetPermit,
    ) -> Result<(Self, AppendFuture), WriterError> {
        if data.len() > MAX_EVENT_DATA {
            return Err(WriterError::EventTooLarge {
                size: data.len(),
                limit: MAX_EVENT_DATA,
            });
        }
        let (completion, receiver) = oneshot::channel();
        let event = Self {
            data,
            expected_offset,
            completion,
            _permit: permit,
        };
        Ok((event, AppendFuture { receiver }))
    }

    /// Frames `payload` as `framing` says and waits for its size in `budget` (back pressure).
    pub async fn prepare(
        payload: Bytes,
        framing: Framing,
        expected_offset: Option<i64>,
        budget: &ByteBudget,
    ) -> Result<(Self, AppendFuture), WriterError> {
        let limit = match framing {
            Framing::Events => MAX_EVENT_PAYLOAD,
            Framing::Raw => MAX_EVENT_DATA,
        };
        if payload.len() > limit {
            return Err(WriterError::EventTooLarge {
                size: payload.len(),
                limit,
            });
        }
        let data = framing.apply(payload);
        let permit = budget
            .acquire(data.len())
            .await
            .ok_or(WriterError::ExceedsBudget {
                size: data.len(),
                capacity: budget.capacity(),
            })?;
        Self::with_condition(data, expected_offset, permit)
    }

    /// The bytes appended to the segment (framed unless the writer is raw).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The offset the segment's length must have for a conditional append; `None` appends
    /// unconditionally.
    pub fn expected_offset(&self) -> Option<i64> {
        self.expected_offset
    }

    /// Completes the event's future (e.g. with an error when it cannot be placed anywhere).
    pub fn complete(self, result: Result<(), AppendError>) {
        let Self {
            completion,
            _permit: permit,
            ..
        } = self;
        // The budget is back before anyone learns of the outcome.
        drop(permit);
        // The caller may have dropped the future: nobody is waiting, nothing to do.
        let _ = completion.send(result);
    }
}

impl fmt::Debug for PendingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingEvent")
            .field("bytes", &self.data.len())
            .field("expected_offset", &self.expected_offset)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_big_endian() {
        assert_eq!(
            &frame_event(b"abc")[..],
            &[0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'][..]
        );
        assert_eq!(Framing::Raw.apply(Bytes::from_static(b"abc")), &b"abc"[..]);
    }

    #[tokio::test]
    async fn completion_reaches_the_future_and_a_dropped_event_is_an_error() {
        let (event, future) =
            PendingEvent::new(Bytes::from_static(b"x"), BudgetPermit::empty()).unwrap();
        event.complete(Ok(()));
        assert!(future.await.is_ok());
        let (event, future) = PendingEvent::new(Bytes::new(), BudgetPermit::empty()).unwrap();
        drop(event);
        assert!(matches!(future.await, Err(AppendError::Dropped)));
    }

    #[tokio::test]
    async fn sizes_are_checked_and_the_budget_held_until_completion() {
        let budget = ByteBudget::new(100);
        let too_large = Bytes::from(vec![0; MAX_EVENT_PAYLOAD + 1]);
        assert!(matches!(
            PendingEvent::prepare(too_large, Framing::Events, None, &budget).await,
            Err(WriterError::EventTooLarge { .. })
        ));
        let over_budget = Bytes::from(vec![0; 93]);
        assert!(matches!(
            PendingEvent::prepare(over_budget, Framing::Events, None, &budget).await,
            Err(WriterError::ExceedsBudget {
                size: 101,
                capacity: 100
            })
        ));
        let (event, _future) =
            PendingEvent::prepare(Bytes::from(vec![7; 12]), Framing::Events, Some(5), &budget)
                .await
                .unwrap();
        assert_eq!(event.data().len(), 20);
        assert_eq!(event.expected_offset(), Some(5));
        assert_eq!(budget.available(), 80);
        event.complete(Ok(()));
        assert_eq!(budget.available(), 100);
    }
}

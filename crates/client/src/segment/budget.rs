//! The bound on bytes written and not yet acknowledged.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A budget of bytes in flight (written, not yet acknowledged), shared by its clones.
///
/// Each pending event holds a [`BudgetPermit`] for its size until it completes; a writer whose
/// event does not fit waits (back pressure). Give every segment writer of one event writer the
/// same budget (clone it) so that moving events to successor segments keeps the bound.
///
/// ```
/// use pravaha_client::segment::ByteBudget;
///
/// let budget = ByteBudget::new(1024);
/// let shared = budget.clone();
/// let first = budget.try_acquire(1000).expect("1000 of 1024 bytes are free");
/// assert_eq!(shared.available(), 24);
/// assert!(shared.try_acquire(100).is_none()); // would wait: not enough is free
/// assert!(futures::executor::block_on(budget.acquire(2048)).is_none()); // never fits
/// drop(first); // the event completed
/// assert_eq!(shared.available(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

/// Bytes of a [`ByteBudget`] held by one event; returned when dropped.
///
/// ```
/// use pravaha_client::segment::{BudgetPermit, ByteBudget};
///
/// let budget = ByteBudget::new(100);
/// let permit = futures::executor::block_on(budget.acquire(60)).expect("60 bytes fit");
/// assert_eq!((permit.bytes(), budget.available()), (60, 40));
/// drop(permit);
/// assert_eq!(budget.available(), 100);
/// assert_eq!(BudgetPermit::empty().bytes(), 0);
/// ```
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl ByteBudget {
    /// A budget of `capacity` bytes (capped at `u32::MAX`; at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// The most bytes that can be held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes not held by any permit now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Waits until `bytes` are free and takes them. `None` if `bytes` exceeds the capacity
    /// (it could never be granted).
    pub async fn acquire(&self, bytes: usize) -> Option<BudgetPermit> {
        let count = self.count(bytes)?;
        if count == 0 {
            return Some(BudgetPermit::empty());
        }
        let permit = self
            .semaphore
            .clone()
            .acquire_many_owned(count)
            .await
            .expect("the budget's semaphore is never closed");
        Some(BudgetPermit {
            _permit: Some(permit),
            bytes,
        })
    }

    /// Takes `bytes` if they are free now.
    pub fn try_acquire(&self, bytes: usize) -> Option<BudgetPermit> {
        let count = self.count(bytes)?;
        if count == 0 {
            return Some(BudgetPermit::empty());
        }
        let permit = self.semaphore.clone().try_acquire_many_owned(count).ok()?;
        Some(BudgetPermit {
            _permit: Some(permit),
            bytes,
        })
    }

    fn count(&self, bytes: usize) -> Option<u32> {
        if bytes > self.capacity {
            return None;
        }
        u32::try_from(bytes).ok()
    }
}

impl BudgetPermit {
    /// A permit for nothing, for events outside any budget.
    pub fn empty() -> Self {
        Self {
            _permit: None,
            bytes: 0,
        }
    }

    /// The bytes this permit holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_return_their_bytes_when_dropped() {
        let budget = ByteBudget::new(100);
        let first = budget.acquire(60).await.unwrap();
        assert_eq!(first.bytes(), 60);
        assert_eq!(budget.available(), 40);
        assert!(budget.try_acquire(41).is_none());
        let second = budget.try_acquire(40).unwrap();
        assert_eq!(budget.available(), 0);
        drop(first);
        assert_eq!(budget.available(), 60);
        drop(second);
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test]
    async fn more_than_the_capacity_is_refused_and_zero_is_free() {
        let budget = ByteBudget::new(10);
        assert!(budget.acquire(11).await.is_none());
        assert!(budget.try_acquire(11).is_none());
        let nothing = budget.acquire(0).await.unwrap();
        assert_eq!(nothing.bytes(), 0);
        assert_eq!(budget.available(), 10);
    }

    #[tokio::test]
    async fn a_waiting_acquire_completes_when_bytes_return() {
        let budget = ByteBudget::new(10);
        let held = budget.acquire(10).await.unwrap();
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.acquire(5).await.map(|permit| permit.bytes()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(held);
        assert_eq!(waiting.await.unwrap(), Some(5));
    }
}

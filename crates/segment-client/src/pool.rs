//! Connections per segment store: a bounded stack of idle ones, and a bound on how many are in
//! use at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connection::Connection;
use crate::{ClientError, Endpoint};

/// Requests in flight to one segment store (each on its own connection); more wait for a turn
/// (within their time-out). Far above what the controller needs; it keeps a burst from opening
/// thousands of sockets.
pub(crate) const MAX_CONNECTIONS_PER_ENDPOINT: usize = 256;

pub(crate) struct Pool {
    max_idle_per_endpoint: usize,
    /// Never locked across an await. One entry per segment store ever used; there are few.
    endpoints: Mutex<HashMap<Endpoint, EndpointState>>,
}

struct EndpointState {
    /// Most recently returned last: taken first, so a few connections stay busy and warm.
    idle: Vec<Connection>,
    in_use: Arc<Semaphore>,
}

/// A connection in use; holds one of its endpoint's permits until dropped.
pub(crate) struct Lease {
    pub(crate) connection: Connection,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub(crate) fn new(max_idle_per_endpoint: usize) -> Self {
        Self {
            max_idle_per_endpoint,
            endpoints: Mutex::new(HashMap::new()),
        }
    }

    /// An idle connection to `endpoint` that is still usable, or a new one.
    pub(crate) async fn lease(&self, endpoint: Endpoint) -> Result<Lease, ClientError> {
        let permit = self.permit(endpoint).await;
        let connection = match self.take_idle(endpoint) {
            Some(connection) => connection,
            None => Connection::open(endpoint).await?,
        };
        Ok(Lease {
            connection,
            _permit: permit,
        })
    }

    /// A new connection that will not be pooled (for append sessions, which leave writer
    /// state on the server).
    pub(crate) async fn dedicated(&self, endpoint: Endpoint) -> Result<Lease, ClientError> {
        let permit = self.permit(endpoint).await;
        let connection = Connection::open(endpoint).await?;
        Ok(Lease {
            connection,
            _permit: permit,
        })
    }

    /// Keeps the connection of a lease whose exchange completed cleanly, unless enough are idle.
    pub(crate) fn give_back(&self, endpoint: Endpoint, lease: Lease) {
        let mut endpoints = self.lock();
        let idle = &mut endpoints.entry(endpoint).or_insert_with(new_state).idle;
        if idle.len() < self.max_idle_per_endpoint {
            idle.push(lease.connection);
        }
    }

    pub(crate) fn idle_count(&self, endpoint: Endpoint) -> usize {
        self.lock()
            .get(&endpoint)
            .map_or(0, |state| state.idle.len())
    }

    async fn permit(&self, endpoint: Endpoint) -> OwnedSemaphorePermit {
        let in_use = self
            .lock()
            .entry(endpoint)
            .or_insert_with(new_state)
            .in_use
            .clone();
        in_use
            .acquire_owned()
            .await
            .expect("the semaphore of an endpoint is never closed")
    }

    fn take_idle(&self, endpoint: Endpoint) -> Option<Connection> {
        let mut endpoints = self.lock();
        let idle = &mut endpoints.get_mut(&endpoint)?.idle;
        while let Some(connection) = idle.pop() {
            if connection.is_usable() {
                return Some(connection);
            }
            tracing::debug!(%endpoint, "dropping an idle connection the segment store closed");
        }
        None
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Endpoint, EndpointState>> {
        // Nothing here can panic while holding the lock; recover the map if something did.
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn new_state() -> EndpointState {
    EndpointState {
        idle: Vec::new(),
        in_use: Arc::new(Semaphore::new(MAX_CONNECTIONS_PER_ENDPOINT)),
    }
}

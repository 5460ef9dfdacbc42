//! [`ControllerLocator`]: where a segment lives and which delegation token to present, asked of
//! the controller and cached until a segment store says the answer is stale (`WrongHost`, an
//! expired token). The one locator of every layer above the segment protocol: event writers,
//! transactions, reader groups, byte streams and Key-Value Tables.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::controller::types::{ScopedSegment, ScopedStream};
use crate::controller::ControllerClient;
use crate::segment::{BoxFuture, Endpoint, Locator, LocatorError};
use crate::table::KeyValueTableInfo;

/// A [`Locator`] backed by the controller: `getURI` per segment (transaction segments are
/// located by their parent), and the delegation token of the segment's stream
/// (`getDelegationToken`) or, for a Key-Value Table's partitions, the token the controller
/// answers with the table's segments.
///
/// ```no_run
/// use std::sync::Arc;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::ControllerClient;
/// use pravaha_client::locator::ControllerLocator;
/// use pravaha_client::segment::{SegmentWriter, WriterConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// let locator = Arc::new(ControllerLocator::new(controller));
/// let writer = SegmentWriter::connect(locator, "examples/orders/0.#epoch.0", WriterConfig::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ControllerLocator {
    controller: ControllerClient,
    /// `None`: each segment's stream's own token; `Some`: every segment is a partition of this
    /// table.
    table: Option<KeyValueTableInfo>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    tokens: Mutex<HashMap<ScopedStream, String>>,
}

impl ControllerLocator {
    /// A locator for segments of any stream.
    pub fn new(controller: ControllerClient) -> Self {
        Self {
            controller,
            table: None,
            endpoints: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A locator for the partitions of a Key-Value Table.
    pub fn for_key_value_table(controller: ControllerClient, table: KeyValueTableInfo) -> Self {
        Self {
            table: Some(table),
            ..Self::new(controller)
        }
    }

    /// Remembers the token already received for `stream` (with its segments), sparing a
    /// request.
    pub fn with_token(self, stream: &ScopedStream, token: String) -> Self {
        lock(&self.tokens).insert(stream.clone(), token);
        self
    }

    async fn look_up_endpoint(
        &self,
        segment: &str,
        refresh: bool,
    ) -> Result<Endpoint, LocatorError> {
        let parsed: ScopedSegment = segment.parse()?;
        let primary = parsed.qualified_name();
        if !refresh {
            if let Some(endpoint) = lock(&self.endpoints).get(&primary) {
                return Ok(endpoint.clone());
            }
        }
        let address = self.controller.get_uri(&parsed).await?;
        let endpoint = Endpoint::new(address.host, address.port);
        lock(&self.endpoints).insert(primary, endpoint.clone());
        Ok(endpoint)
    }

    async fn look_up_token(&self, segment: &str, refresh: bool) -> Result<String, LocatorError> {
        let stream = segment.parse::<ScopedSegment>()?.stream;
        if !refresh {
            if let Some(token) = lock(&self.tokens).get(&stream) {
                return Ok(token.clone());
            }
        }
        let token = match &self.table {
            None => self.controller.get_delegation_token(&stream).await?,
            Some(table) => {
                self.controller
                    .get_current_segments_key_value_table(table)
                    .await?
                    .delegation_token
            }
        };
        lock(&self.tokens).insert(stream, token.clone());
        Ok(token)
    }
}

impl Locator for ControllerLocator {
    fn endpoint<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
        Box::pin(self.look_up_endpoint(segment, refresh))
    }

    fn token<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>> {
        Box::pin(self.look_up_token(segment, refresh))
    }
}

/// The caches hold plain values; a panic while one was held leaves nothing half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

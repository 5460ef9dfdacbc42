//! [`ControllerLocator`]: segment endpoints and delegation tokens from the controller, cached.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::controller::types::{ScopedSegment, ScopedStream};
use crate::controller::ControllerClient;
use crate::segment::{BoxFuture, Endpoint, Locator, LocatorError};

/// A [`Locator`] that asks the controller (`getURI`, `getDelegationToken`) and caches the
/// answers until a segment store says they are stale. Transaction segments are located by
/// their parent segment.
///
/// ```no_run
/// use std::sync::Arc;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::ControllerClient;
/// use pravaha_client::event::ControllerLocator;
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
    endpoints: Mutex<HashMap<String, Endpoint>>,
    tokens: Mutex<HashMap<ScopedStream, String>>,
}

impl ControllerLocator {
    pub fn new(controller: ControllerClient) -> Self {
        Self {
            controller,
            endpoints: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn lookup_endpoint(
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
        let endpoint = Endpoint::new(address.host.clone(), address.port);
        lock(&self.endpoints).insert(primary, endpoint.clone());
        Ok(endpoint)
    }

    async fn lookup_token(&self, segment: &str, refresh: bool) -> Result<String, LocatorError> {
        let parsed: ScopedSegment = segment.parse()?;
        if !refresh {
            if let Some(token) = lock(&self.tokens).get(&parsed.stream) {
                return Ok(token.clone());
            }
        }
        let token = self.controller.get_delegation_token(&parsed.stream).await?;
        lock(&self.tokens).insert(parsed.stream, token.clone());
        Ok(token)
    }
}

/// The caches hold plain values; a panic while one was held leaves nothing half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Locator for ControllerLocator {
    fn endpoint<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
        Box::pin(self.lookup_endpoint(segment, refresh))
    }

    fn token<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>> {
        Box::pin(self.lookup_token(segment, refresh))
    }
}

//! [`ControllerLocator`]: where a stream's (or a Key-Value Table's) segments live and which
//! delegation token to present, asked of the controller and cached until a segment store says
//! otherwise.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::controller::types::{ScopedSegment, ScopedStream};
use crate::controller::ControllerClient;
use crate::segment::{BoxFuture, Endpoint, Locator, LocatorError};
use crate::table::KeyValueTableInfo;

/// Whose delegation token the segments need.
#[derive(Debug, Clone)]
pub(crate) enum TokenSource {
    /// `getDelegationToken` of the stream.
    Stream(ScopedStream),
    /// The token `getCurrentSegmentsKeyValueTable` answers with the table's partitions.
    KeyValueTable(KeyValueTableInfo),
}

/// A [`Locator`] backed by the controller: `getURI` per segment, the token of a stream or table.
#[derive(Debug)]
pub(crate) struct ControllerLocator {
    controller: ControllerClient,
    source: TokenSource,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    token: Mutex<Option<String>>,
}

impl ControllerLocator {
    pub(crate) fn new(controller: ControllerClient, source: TokenSource) -> Self {
        Self {
            controller,
            source,
            endpoints: Mutex::new(HashMap::new()),
            token: Mutex::new(None),
        }
    }

    /// Remembers a token already received (with the segments), sparing a request.
    pub(crate) fn with_token(self, token: String) -> Self {
        *lock(&self.token) = Some(token);
        self
    }

    async fn look_up_endpoint(&self, segment: &str) -> Result<Endpoint, LocatorError> {
        let scoped: ScopedSegment = segment.parse()?;
        let address = self.controller.get_uri(&scoped).await?;
        let endpoint = Endpoint::new(address.host, address.port);
        lock(&self.endpoints).insert(segment.to_owned(), endpoint.clone());
        Ok(endpoint)
    }

    async fn look_up_token(&self) -> Result<String, LocatorError> {
        let token = match &self.source {
            TokenSource::Stream(stream) => self.controller.get_delegation_token(stream).await?,
            TokenSource::KeyValueTable(table) => {
                self.controller
                    .get_current_segments_key_value_table(table)
                    .await?
                    .delegation_token
            }
        };
        *lock(&self.token) = Some(token.clone());
        Ok(token)
    }
}

impl Locator for ControllerLocator {
    fn endpoint<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
        Box::pin(async move {
            let cached = lock(&self.endpoints).get(segment).cloned();
            match cached {
                Some(endpoint) if !refresh => Ok(endpoint),
                _ => self.look_up_endpoint(segment).await,
            }
        })
    }

    fn token<'a>(
        &'a self,
        _segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>> {
        Box::pin(async move {
            let cached = lock(&self.token).clone();
            match cached {
                Some(token) if !refresh => Ok(token),
                _ => self.look_up_token().await,
            }
        })
    }
}

/// The caches hold plain values, so a panic elsewhere cannot leave them inconsistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

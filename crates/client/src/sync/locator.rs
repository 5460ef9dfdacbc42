//! [`ControllerLocator`]: segment endpoints and delegation tokens asked of the controller, and
//! cached until a segment store says they are stale.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::controller::types::{ScopedSegment, ScopedStream};
use crate::controller::ControllerClient;
use crate::segment::{BoxFuture, Endpoint, Locator, LocatorError};

/// A [`Locator`] backed by the controller (`getURI`, `getDelegationToken`).
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
}

fn parse(segment: &str) -> Result<ScopedSegment, LocatorError> {
    segment.parse::<ScopedSegment>().map_err(LocatorError::from)
}

impl Locator for ControllerLocator {
    fn endpoint<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
        Box::pin(async move {
            if !refresh {
                let cached = self
                    .endpoints
                    .lock()
                    .map_err(|_| "poisoned")?
                    .get(segment)
                    .cloned();
                if let Some(endpoint) = cached {
                    return Ok(endpoint);
                }
            }
            let address = self.controller.get_uri(&parse(segment)?).await?;
            let endpoint = Endpoint::new(address.host, address.port);
            self.endpoints
                .lock()
                .map_err(|_| "poisoned")?
                .insert(segment.to_owned(), endpoint.clone());
            Ok(endpoint)
        })
    }

    fn token<'a>(
        &'a self,
        segment: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>> {
        Box::pin(async move {
            let stream = parse(segment)?.stream;
            if !refresh {
                let cached = self
                    .tokens
                    .lock()
                    .map_err(|_| "poisoned")?
                    .get(&stream)
                    .cloned();
                if let Some(token) = cached {
                    return Ok(token);
                }
            }
            let token = self.controller.get_delegation_token(&stream).await?;
            self.tokens
                .lock()
                .map_err(|_| "poisoned")?
                .insert(stream, token.clone());
            Ok(token)
        })
    }
}

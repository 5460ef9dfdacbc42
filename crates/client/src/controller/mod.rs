//! The Controller gRPC API (Pravega's, which Pravaha serves unchanged) with retries and typed
//! errors.
//!
//! [`ControllerClient`] wraps the generated `ControllerServiceClient`: every call carries the
//! configured credentials (the `authorization` metadata), is bounded by the request time-out,
//! and is retried with jittered exponential back-off while the failure is transient (the
//! controller unreachable, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, a cut-off call); with several
//! controllers in the URI, a transient failure moves the next attempt to the next controller.
//! Definite answers — a status enum in the reply or a gRPC status such as `INVALID_ARGUMENT` —
//! come back at once as a [`ControllerError`], and so does a refused TLS certificate. Replies
//! are converted into the Rust types of [`types`].
//!
//! | controller answer | error |
//! |---|---|
//! | `SCOPE_NOT_FOUND`, `NOT_FOUND` "scope ..." | [`ControllerError::ScopeNotFound`] |
//! | `STREAM_NOT_FOUND`, `NOT_FOUND` | [`ControllerError::StreamNotFound`] ([`ControllerError::NotFound`] for a segment) |
//! | `STREAM_SEALED`, `FAILED_PRECONDITION` "... is sealed" | [`ControllerError::StreamSealed`] |
//! | `STREAM_NOT_SEALED` | [`ControllerError::StreamNotSealed`] |
//! | `SCOPE_NOT_EMPTY` | [`ControllerError::ScopeNotEmpty`] |
//! | `INVALID_*_NAME`, `INVALID_ARGUMENT`, `INVALID_INPUT` | [`ControllerError::InvalidArgument`] |
//! | `PRECONDITION_FAILED`, other `FAILED_PRECONDITION` | [`ControllerError::PreconditionFailed`] |
//! | `ALREADY_EXISTS` | [`ControllerError::AlreadyExists`] (creating an existing scope or stream answers `false` instead) |
//! | `UNAUTHENTICATED` / `PERMISSION_DENIED` | [`ControllerError::Unauthenticated`] / [`ControllerError::PermissionDenied`] |
//! | `UNIMPLEMENTED` | [`ControllerError::Unsupported`] |
//! | `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `CANCELLED`, `ABORTED`, `UNKNOWN`, no connection | retried, then [`ControllerError::Unavailable`] |
//! | `FAILURE`, `INTERNAL`, anything else | [`ControllerError::Internal`] |
//!
//! Connections are made lazily, on the first call; a controller that is down when the client is
//! created is reached once it is up.

mod error;
mod kvtables;
mod readergroups;
mod segments;
mod streams;
mod tls;
mod transactions;
pub mod types;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pravaha_controller_api::ControllerServiceClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Response, Status};

use crate::config::{ClientConfig, ConfigError, ServerAddress};
pub use error::ControllerError;
pub(crate) use error::Target;
pub use readergroups::{ReaderGroupRecord, RetentionMode};
pub use transactions::{PingStatus, TransactionCreated, TransactionState, TxnId};

type Api = ControllerServiceClient<Channel>;

/// A client of the controller; cheap to clone (clones share connections).
///
/// Create it inside a Tokio runtime. Every method retries transient failures per the
/// configuration's [`RetryPolicy`](crate::config::RetryPolicy).
///
/// ```no_run
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
/// use pravaha_client::controller::ControllerClient;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let controller = ControllerClient::new(ClientConfig::default())?;
/// controller.create_scope("examples").await?;
/// let stream = ScopedStream::new("examples", "orders");
/// controller.create_stream(&stream, &StreamConfiguration::fixed(2)).await?;
/// let segments = controller.get_current_segments(&stream).await?;
/// let segment = &segments.segment_for_routing_key("customer-17").unwrap().segment;
/// let store = controller.get_uri(segment).await?;
/// println!("{segment} is served by {store}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ControllerClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    /// One lazily connected channel per controller, in the URI's order.
    channels: Vec<Channel>,
    /// The controller tried first; moves to the next one after a transient failure.
    preferred: AtomicUsize,
    /// The `authorization` metadata value, if credentials are configured.
    authorization: Option<AsciiMetadataValue>,
}

impl fmt::Debug for ControllerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerClient")
            .field(
                "controller_uri",
                &self.inner.config.controller_uri().to_string(),
            )
            .field("tls", &self.inner.config.tls_enabled())
            .finish_non_exhaustive()
    }
}

impl ControllerClient {
    /// A client for the controller(s) of `config`. Nothing is connected yet; CA certificates
    /// are read now. Must be called inside a Tokio runtime.
    pub fn new(config: ClientConfig) -> Result<Self, ControllerError> {
        let verifier = if config.tls_enabled() {
            Some(tls::verifier(config.tls())?)
        } else {
            None
        };
        let channels = config
            .controller_uri()
            .endpoints()
            .iter()
            .map(|address| channel(address, &config, verifier.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let authorization = match config.credentials().authorization_header() {
            None => None,
            Some(header) => {
                let mut value: AsciiMetadataValue =
                    MetadataValue::try_from(header).map_err(|_| ConfigError::InvalidValue {
                        key: "credentials".into(),
                        message: "credentials must be printable ASCII".into(),
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                channels,
                preferred: AtomicUsize::new(0),
                authorization,
            }),
        })
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// `message` as a request carrying the credentials.
    fn request<M>(&self, message: M) -> Request<M> {
        let mut request = Request::new(message);
        if let Some(value) = &self.inner.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// Sends `message` through `send`, retrying transient failures per the retry policy.
    async fn call<M, R, F, Fut>(
        &self,
        rpc: &'static str,
        target: Target<'_>,
        message: M,
        send: F,
    ) -> Result<R, ControllerError>
    where
        M: Clone,
        F: Fn(Api, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let policy = *self.inner.config.retry_policy();
        let attempts = policy.max_attempts.max(1);
        let channels = &self.inner.channels;
        let mut last_failure = String::new();
        for attempt in 1..=attempts {
            let index = self.inner.preferred.load(Ordering::Relaxed) % channels.len();
            let api = Api::new(channels[index].clone());
            let status = match send(api, self.request(message.clone())).await {
                Ok(reply) => return Ok(reply.into_inner()),
                Err(status) if error::is_certificate_rejection(&status) => {
                    return Err(ControllerError::CertificateRejected {
                        message: status.message().to_owned(),
                    })
                }
                Err(status) if error::is_transient(status.code()) => status,
                Err(status) => return Err(ControllerError::from_status(&status, target)),
            };
            // The next attempt goes to the next controller (if there are several); a
            // concurrent call may have moved on already.
            let _ = self.inner.preferred.compare_exchange(
                index,
                (index + 1) % channels.len(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            last_failure = format!("{:?}: {}", status.code(), status.message());
            tracing::debug!(
                rpc,
                attempt,
                attempts,
                controller = %self.inner.config.controller_uri().endpoints()[index],
                error = %last_failure,
                "controller request failed; retrying"
            );
            if attempt < attempts {
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
        }
        Err(ControllerError::Unavailable {
            attempts,
            message: last_failure,
        })
    }
}

/// A lazily connected channel to one controller, with the request time-out and TLS.
fn channel(
    address: &ServerAddress,
    config: &ClientConfig,
    verifier: Option<&Arc<dyn rustls::client::danger::ServerCertVerifier>>,
) -> Result<Channel, ControllerError> {
    let scheme = if verifier.is_some() { "https" } else { "http" };
    let invalid = |error: tonic::transport::Error| ConfigError::InvalidUri {
        uri: config.controller_uri().to_string(),
        reason: format!("{address}: {error}"),
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .map_err(invalid)?
        .connect_timeout(config.request_timeout())
        .timeout(config.request_timeout())
        .tcp_nodelay(true);
    if let Some(verifier) = verifier {
        let tls = ClientTlsConfig::new().domain_name(address.host.clone());
        endpoint = endpoint
            .tls_config_with_verifier(tls, Arc::clone(verifier))
            .map_err(invalid)?;
    }
    Ok(endpoint.connect_lazy())
}

/// Every page of a listing: asks with each returned token until a page comes back empty (the
/// end, as Pravega's clients see it).
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, ControllerError>
where
    F: FnMut(types::ContinuationToken) -> Fut,
    Fut: Future<Output = Result<types::Page<T>, ControllerError>>,
{
    let mut items = Vec::new();
    let mut token = types::ContinuationToken::start();
    loop {
        let page = fetch(token.clone()).await?;
        if page.items.is_empty() {
            return Ok(items);
        }
        if page.next == token {
            return Err(ControllerError::internal(
                "the controller returned the same continuation token with a non-empty page",
            ));
        }
        items.extend(page.items);
        token = page.next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credentials;

    #[tokio::test]
    async fn requests_carry_the_credentials() {
        let config = ClientConfig::builder()
            .credentials(Credentials::basic("admin", "1111_aaaa"))
            .build()
            .unwrap();
        let client = ControllerClient::new(config).unwrap();
        let request = client.request(());
        let value = request.metadata().get("authorization").unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic YWRtaW46MTExMV9hYWFh");
        assert!(value.is_sensitive());

        let anonymous = ControllerClient::new(ClientConfig::default()).unwrap();
        assert!(anonymous
            .request(())
            .metadata()
            .get("authorization")
            .is_none());
        assert!(!format!("{anonymous:?}").is_empty());
    }
}

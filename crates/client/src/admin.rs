//! [`StreamManager`]: scopes and streams for applications and operators — create, list,
//! update, scale, seal, truncate, delete, describe.
//!
//! It is the friendly front of [`ControllerClient`]: the same retries and typed errors, with
//! a few compound operations (seal then delete, describe a stream).

use crate::config::ClientConfig;
use crate::controller::types::{
    KeyRange, ScopedStream, SegmentId, SegmentWithRange, StreamConfiguration, StreamCut,
};
use crate::controller::{ControllerClient, ControllerError};

/// Administers scopes and streams.
///
/// ```no_run
/// use pravaha_client::admin::StreamManager;
/// use pravaha_client::config::ClientConfig;
/// use pravaha_client::controller::types::{KeyRange, ScopedStream, StreamConfiguration};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = StreamManager::new(ClientConfig::from_env()?)?;
/// manager.create_scope("examples").await?;
/// let stream = ScopedStream::new("examples", "orders");
/// manager.create_stream(&stream, &StreamConfiguration::fixed(1)).await?;
///
/// // Split the single segment in two.
/// let info = manager.stream_info(&stream).await?;
/// let old = info.segments[0].segment.id;
/// manager
///     .scale_stream(&stream, &[old], &[KeyRange::new(0.0, 0.5), KeyRange::new(0.5, 1.0)])
///     .await?;
/// assert_eq!(manager.stream_info(&stream).await?.segments.len(), 2);
///
/// manager.seal_and_delete_stream(&stream).await?;
/// manager.delete_scope("examples").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StreamManager {
    controller: ControllerClient,
}

/// What [`StreamManager::stream_info`] tells about a stream.
///
/// ```
/// use pravaha_client::admin::StreamInfo;
/// use pravaha_client::controller::types::{ScopedStream, StreamConfiguration, StreamCut};
///
/// let stream = ScopedStream::new("sc", "st");
/// let info = StreamInfo {
///     stream: stream.clone(),
///     configuration: StreamConfiguration::default(),
///     segments: Vec::new(),
///     head: StreamCut::new(stream),
/// };
/// assert!(info.is_sealed());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub stream: ScopedStream,
    pub configuration: StreamConfiguration,
    /// The active segments and their key ranges; empty once the stream is sealed.
    pub segments: Vec<SegmentWithRange>,
    /// Where the stream starts (after truncation).
    pub head: StreamCut,
}

impl StreamInfo {
    /// Whether the stream is sealed (it has no active segment).
    pub fn is_sealed(&self) -> bool {
        self.segments.is_empty()
    }
}

impl StreamManager {
    /// A manager talking to the controller(s) of `config`; connects on first use. Must be
    /// called inside a Tokio runtime.
    pub fn new(config: ClientConfig) -> Result<Self, ControllerError> {
        Ok(Self {
            controller: ControllerClient::new(config)?,
        })
    }

    /// A manager over an existing controller client (sharing its connections).
    pub fn with_controller(controller: ControllerClient) -> Self {
        Self { controller }
    }

    /// The controller client underneath, for the calls this front does not offer.
    pub fn controller(&self) -> &ControllerClient {
        &self.controller
    }

    /// Creates a scope: `true` if created, `false` if it existed.
    pub async fn create_scope(&self, scope: &str) -> Result<bool, ControllerError> {
        self.controller.create_scope(scope).await
    }

    /// Whether the scope exists.
    pub async fn scope_exists(&self, scope: &str) -> Result<bool, ControllerError> {
        self.controller.scope_exists(scope).await
    }

    /// Every scope.
    pub async fn list_scopes(&self) -> Result<Vec<String>, ControllerError> {
        self.controller.list_scopes().await
    }

    /// Deletes an empty scope: `true` if deleted, `false` if it did not exist;
    /// [`ControllerError::ScopeNotEmpty`] if it still has streams.
    pub async fn delete_scope(&self, scope: &str) -> Result<bool, ControllerError> {
        self.controller.delete_scope(scope).await
    }

    /// Creates a stream: `true` if created, `false` if it existed.
    pub async fn create_stream(
        &self,
        stream: &ScopedStream,
        configuration: &StreamConfiguration,
    ) -> Result<bool, ControllerError> {
        self.controller.create_stream(stream, configuration).await
    }

    /// Whether the stream exists.
    pub async fn stream_exists(&self, stream: &ScopedStream) -> Result<bool, ControllerError> {
        self.controller.stream_exists(stream).await
    }

    /// Replaces the stream's configuration (raising the minimum segment count splits
    /// segments); [`ControllerError::StreamSealed`] once it is sealed.
    pub async fn update_stream(
        &self,
        stream: &ScopedStream,
        configuration: &StreamConfiguration,
    ) -> Result<(), ControllerError> {
        self.controller.update_stream(stream, configuration).await
    }

    /// The stream's configuration.
    pub async fn stream_configuration(
        &self,
        stream: &ScopedStream,
    ) -> Result<StreamConfiguration, ControllerError> {
        self.controller.get_stream_configuration(stream).await
    }

    /// Every stream of the scope.
    pub async fn list_streams(&self, scope: &str) -> Result<Vec<ScopedStream>, ControllerError> {
        self.controller.list_streams(scope).await
    }

    /// Every stream of the scope carrying `tag`.
    pub async fn list_streams_with_tag(
        &self,
        scope: &str,
        tag: &str,
    ) -> Result<Vec<ScopedStream>, ControllerError> {
        self.controller.list_streams_for_tag(scope, tag).await
    }

    /// Configuration, active segments and head of the stream.
    pub async fn stream_info(&self, stream: &ScopedStream) -> Result<StreamInfo, ControllerError> {
        let configuration = self.controller.get_stream_configuration(stream).await?;
        let segments = self.controller.get_current_segments(stream).await?.segments;
        let head = self.controller.get_segments_at_head(stream).await?;
        Ok(StreamInfo {
            stream: stream.clone(),
            configuration,
            segments,
            head,
        })
    }

    /// Seals `sealed` and replaces them by segments over `new_ranges`, waiting until done;
    /// returns the new segments.
    pub async fn scale_stream(
        &self,
        stream: &ScopedStream,
        sealed: &[SegmentId],
        new_ranges: &[KeyRange],
    ) -> Result<Vec<SegmentWithRange>, ControllerError> {
        self.controller
            .scale_stream(stream, sealed, new_ranges)
            .await
    }

    /// Seals the stream (no more writes); sealing twice is fine.
    pub async fn seal_stream(&self, stream: &ScopedStream) -> Result<(), ControllerError> {
        self.controller.seal_stream(stream).await
    }

    /// Truncates the stream at `cut`.
    pub async fn truncate_stream(&self, cut: &StreamCut) -> Result<(), ControllerError> {
        self.controller.truncate_stream(cut).await
    }

    /// Deletes a sealed stream: `true` if deleted, `false` if it did not exist;
    /// [`ControllerError::StreamNotSealed`] if it is not sealed.
    pub async fn delete_stream(&self, stream: &ScopedStream) -> Result<bool, ControllerError> {
        self.controller.delete_stream(stream).await
    }

    /// Seals the stream if needed, then deletes it: `true` if deleted, `false` if it did not
    /// exist.
    pub async fn seal_and_delete_stream(
        &self,
        stream: &ScopedStream,
    ) -> Result<bool, ControllerError> {
        match self.controller.seal_stream(stream).await {
            Ok(()) => {}
            Err(ControllerError::StreamNotFound { .. }) => return Ok(false),
            Err(error) => return Err(error),
        }
        self.controller.delete_stream(stream).await
    }
}

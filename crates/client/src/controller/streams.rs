//! Scopes and streams: create, list, update, seal, truncate, delete.

use pravaha_controller_api::v1 as api;

use super::types::{ContinuationToken, Page, ScopedStream, StreamConfiguration, StreamCut};
use super::{all_pages, ControllerClient, ControllerError, Target};

impl ControllerClient {
    // ---- scopes ---------------------------------------------------------------------------

    /// Creates a scope: `true` if created, `false` if it existed already.
    pub async fn create_scope(&self, scope: &str) -> Result<bool, ControllerError> {
        use api::create_scope_status::Status as S;
        let message = api::ScopeInfo {
            scope: scope.to_owned(),
        };
        let reply = self
            .call(
                "createScope",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.create_scope(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::ScopeExists) => Ok(false),
            Ok(S::InvalidScopeName) => Err(invalid_name(
                "scope",
                scope,
                pravaha_types::validate_scope_name(scope, true),
            )),
            _ => Err(ControllerError::failure("createScope", reply.status)),
        }
    }

    /// Whether the scope exists.
    pub async fn scope_exists(&self, scope: &str) -> Result<bool, ControllerError> {
        let message = api::ScopeInfo {
            scope: scope.to_owned(),
        };
        let reply = self
            .call(
                "checkScopeExists",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.check_scope_exists(r).await },
            )
            .await?;
        Ok(reply.exists)
    }

    /// One page of scope names.
    pub async fn list_scopes_page(
        &self,
        token: &ContinuationToken,
    ) -> Result<Page<String>, ControllerError> {
        let message = api::ScopesRequest {
            continuation_token: Some(api::ContinuationToken {
                token: token.0.clone(),
            }),
        };
        let reply = self
            .call(
                "listScopes",
                Target::Scope(""),
                message,
                |mut api, r| async move { api.list_scopes(r).await },
            )
            .await?;
        page(reply.scopes, reply.continuation_token)
    }

    /// Every scope name, all pages.
    pub async fn list_scopes(&self) -> Result<Vec<String>, ControllerError> {
        all_pages(|token| async move { self.list_scopes_page(&token).await }).await
    }

    /// Deletes an empty scope: `true` if deleted, `false` if it did not exist.
    pub async fn delete_scope(&self, scope: &str) -> Result<bool, ControllerError> {
        self.delete_scope_with(scope, false).await
    }

    /// Deletes a scope with everything in it (its streams are sealed and deleted first):
    /// `true` if deleted, `false` if it did not exist. Served by Pravaha and by recent Pravega
    /// controllers.
    pub async fn delete_scope_recursive(&self, scope: &str) -> Result<bool, ControllerError> {
        self.delete_scope_with(scope, true).await
    }

    async fn delete_scope_with(
        &self,
        scope: &str,
        recursive: bool,
    ) -> Result<bool, ControllerError> {
        use api::delete_scope_status::Status as S;
        let rpc = if recursive {
            "deleteScopeRecursive"
        } else {
            "deleteScope"
        };
        let message = api::ScopeInfo {
            scope: scope.to_owned(),
        };
        let reply = self
            .call(
                rpc,
                Target::Scope(scope),
                message,
                |mut api, r| async move {
                    if recursive {
                        api.delete_scope_recursive(r).await
                    } else {
                        api.delete_scope(r).await
                    }
                },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::ScopeNotFound) => Ok(false),
            Ok(S::ScopeNotEmpty) => Err(ControllerError::ScopeNotEmpty {
                scope: scope.to_owned(),
            }),
            _ => Err(ControllerError::failure(rpc, reply.status)),
        }
    }

    // ---- streams --------------------------------------------------------------------------

    /// Creates a stream and its first segments: `true` if created, `false` if it existed
    /// already (its configuration is left as it is).
    pub async fn create_stream(
        &self,
        stream: &ScopedStream,
        config: &StreamConfiguration,
    ) -> Result<bool, ControllerError> {
        use api::create_stream_status::Status as S;
        let message = config
            .to_api(stream)
            .map_err(ControllerError::invalid_argument)?;
        let reply = self
            .call(
                "createStream",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.create_stream(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::StreamExists) => Ok(false),
            Ok(S::ScopeNotFound) => Err(ControllerError::scope_not_found(&stream.scope)),
            Ok(S::InvalidStreamName) => Err(invalid_name(
                "stream",
                &stream.stream,
                pravaha_types::validate_stream_name(&stream.stream, true),
            )),
            _ => Err(ControllerError::failure("createStream", reply.status)),
        }
    }

    /// Replaces the stream's configuration. A sealed stream refuses with
    /// [`ControllerError::StreamSealed`].
    pub async fn update_stream(
        &self,
        stream: &ScopedStream,
        config: &StreamConfiguration,
    ) -> Result<(), ControllerError> {
        let message = config
            .to_api(stream)
            .map_err(ControllerError::invalid_argument)?;
        let reply = self
            .call(
                "updateStream",
                Target::Stream(stream),
                message,
                |mut api, r| async move { api.update_stream(r).await },
            )
            .await?;
        update_status("updateStream", stream, reply)
    }

    /// The stream's configuration.
    pub async fn get_stream_configuration(
        &self,
        stream: &ScopedStream,
    ) -> Result<StreamConfiguration, ControllerError> {
        let reply = self
            .call(
                "getStreamConfiguration",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.get_stream_configuration(r).await },
            )
            .await?;
        StreamConfiguration::from_api(reply)
            .map_err(|why| ControllerError::internal(format!("getStreamConfiguration: {why}")))
    }

    /// Whether the stream exists.
    pub async fn stream_exists(&self, stream: &ScopedStream) -> Result<bool, ControllerError> {
        let reply = self
            .call(
                "checkStreamExists",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.check_stream_exists(r).await },
            )
            .await?;
        Ok(reply.exists)
    }

    /// One page of the scope's streams (internal streams, whose names start with `_`,
    /// included).
    pub async fn list_streams_page(
        &self,
        scope: &str,
        token: &ContinuationToken,
    ) -> Result<Page<ScopedStream>, ControllerError> {
        let message = api::StreamsInScopeRequest {
            scope: Some(api::ScopeInfo {
                scope: scope.to_owned(),
            }),
            continuation_token: Some(api::ContinuationToken {
                token: token.0.clone(),
            }),
        };
        let reply = self
            .call(
                "listStreamsInScope",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.list_streams_in_scope(r).await },
            )
            .await?;
        streams_page("listStreamsInScope", scope, reply)
    }

    /// Every stream of the scope, all pages.
    pub async fn list_streams(&self, scope: &str) -> Result<Vec<ScopedStream>, ControllerError> {
        all_pages(|token| async move { self.list_streams_page(scope, &token).await }).await
    }

    /// One page of the scope's streams that carry `tag`.
    pub async fn list_streams_for_tag_page(
        &self,
        scope: &str,
        tag: &str,
        token: &ContinuationToken,
    ) -> Result<Page<ScopedStream>, ControllerError> {
        let message = api::StreamsInScopeWithTagRequest {
            scope: Some(api::ScopeInfo {
                scope: scope.to_owned(),
            }),
            tag: tag.to_owned(),
            continuation_token: Some(api::ContinuationToken {
                token: token.0.clone(),
            }),
        };
        let reply = self
            .call(
                "listStreamsInScopeForTag",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.list_streams_in_scope_for_tag(r).await },
            )
            .await?;
        streams_page("listStreamsInScopeForTag", scope, reply)
    }

    /// Every stream of the scope that carries `tag`, all pages.
    pub async fn list_streams_for_tag(
        &self,
        scope: &str,
        tag: &str,
    ) -> Result<Vec<ScopedStream>, ControllerError> {
        all_pages(|token| async move { self.list_streams_for_tag_page(scope, tag, &token).await })
            .await
    }

    /// Seals every segment of the stream: it takes no more writes. Sealing a sealed stream
    /// succeeds.
    pub async fn seal_stream(&self, stream: &ScopedStream) -> Result<(), ControllerError> {
        let reply = self
            .call(
                "sealStream",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.seal_stream(r).await },
            )
            .await?;
        update_status("sealStream", stream, reply)
    }

    /// Deletes a sealed stream and its segments: `true` if deleted, `false` if it did not
    /// exist; an unsealed stream refuses with [`ControllerError::StreamNotSealed`].
    pub async fn delete_stream(&self, stream: &ScopedStream) -> Result<bool, ControllerError> {
        use api::delete_stream_status::Status as S;
        let reply = self
            .call(
                "deleteStream",
                Target::Stream(stream),
                stream.to_api(),
                |mut api, r| async move { api.delete_stream(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::StreamNotFound) => Ok(false),
            Ok(S::StreamNotSealed) => Err(ControllerError::StreamNotSealed {
                scope: stream.scope.clone(),
                stream: stream.stream.clone(),
            }),
            _ => Err(ControllerError::failure("deleteStream", reply.status)),
        }
    }

    /// Truncates the stream at `cut`: data before it is deleted. The cut must name a position
    /// in every part of the key space, not before the current truncation.
    pub async fn truncate_stream(&self, cut: &StreamCut) -> Result<(), ControllerError> {
        let stream = &cut.stream;
        let reply = self
            .call(
                "truncateStream",
                Target::Stream(stream),
                cut.to_api(),
                |mut api, r| async move { api.truncate_stream(r).await },
            )
            .await?;
        update_status("truncateStream", stream, reply)
    }
}

/// The outcome of `updateStream`, `sealStream` and `truncateStream`.
fn update_status(
    rpc: &str,
    stream: &ScopedStream,
    reply: api::UpdateStreamStatus,
) -> Result<(), ControllerError> {
    use api::update_stream_status::Status as S;
    match S::try_from(reply.status) {
        Ok(S::Success) => Ok(()),
        Ok(S::StreamNotFound) => Err(ControllerError::stream_not_found(stream)),
        Ok(S::ScopeNotFound) => Err(ControllerError::scope_not_found(&stream.scope)),
        Ok(S::StreamSealed) => Err(ControllerError::stream_sealed(stream)),
        _ => Err(ControllerError::failure(rpc, reply.status)),
    }
}

fn streams_page(
    rpc: &str,
    scope: &str,
    reply: api::StreamsInScopeResponse,
) -> Result<Page<ScopedStream>, ControllerError> {
    use api::streams_in_scope_response::Status as S;
    match S::try_from(reply.status) {
        Ok(S::Success) => {}
        Ok(S::ScopeNotFound) => return Err(ControllerError::scope_not_found(scope)),
        _ => return Err(ControllerError::failure(rpc, reply.status)),
    }
    let streams = reply
        .streams
        .into_iter()
        .map(|info| ScopedStream::new(info.scope, info.stream))
        .collect();
    page(streams, reply.continuation_token)
}

/// A page; a non-empty one must say where the next starts.
fn page<T>(
    items: Vec<T>,
    token: Option<api::ContinuationToken>,
) -> Result<Page<T>, ControllerError> {
    match token {
        Some(token) => Ok(Page {
            items,
            next: ContinuationToken(token.token),
        }),
        None if items.is_empty() => Ok(Page {
            items,
            next: ContinuationToken::start(),
        }),
        None => Err(ControllerError::internal(
            "a listing page came without a continuation token",
        )),
    }
}

/// The error for a name the controller refused, with the reason when the naming rules give
/// one.
fn invalid_name(
    kind: &str,
    name: &str,
    rules: Result<(), pravaha_types::StreamNameError>,
) -> ControllerError {
    ControllerError::invalid_argument(match rules {
        Err(reason) => reason.to_string(),
        Ok(()) => format!("the controller refused the {kind} name {name:?}"),
    })
}

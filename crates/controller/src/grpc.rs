//! Pravega's Controller gRPC API over [`Controller`].
//!
//! Outcomes the API has a status enum for are answered with it (`SCOPE_EXISTS`,
//! `STREAM_NOT_FOUND`, ...); other failures become gRPC status codes the clients understand:
//! `INVALID_ARGUMENT` (permanent: bad names, configurations, cuts), `NOT_FOUND`,
//! `FAILED_PRECONDITION`, `UNAVAILABLE` (the segment store or metadata is unreachable: retried)
//! and `INTERNAL`. Every rpc of the API is served except `getControllerToBucketMapping`
//! (Pravega's internal controller-cluster bucketing), which answers `UNIMPLEMENTED`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use pravaha_controller_api::v1 as api;
use pravaha_controller_api::ControllerService;
use tonic::{Request, Response, Status};

use crate::auth::{resource, Caller, Permission};
use crate::core::{Controller, ScaleStatus};
use crate::error::ControllerError;
use crate::model::{
    RetentionPolicy, RetentionType, ScaleType, ScalingPolicy, SegmentRange, StreamConfig,
    StreamRecord,
};
use crate::txn::{PingOutcome, TxnStatus};
use crate::watermarks::MarkRefused;

pub struct GrpcService {
    controller: Controller,
    /// This controller's own gRPC address, for `getControllerServerList`.
    address: SocketAddr,
}

impl GrpcService {
    pub fn new(controller: Controller, address: SocketAddr) -> Self {
        Self {
            controller,
            address,
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

/// Requests that name one stream, so that a call can be authorized before it is taken apart.
trait NamesStream {
    fn stream_named(&self) -> Option<&api::StreamInfo>;
}

macro_rules! names_stream {
    ($($message:ty => |$m:ident| $stream:expr;)*) => {
        $(impl NamesStream for $message {
            fn stream_named(&self) -> Option<&api::StreamInfo> {
                let $m = self;
                $stream
            }
        })*
    };
}

names_stream! {
    api::StreamInfo => |m| Some(m);
    api::StreamConfig => |m| m.stream_info.as_ref();
    api::StreamCut => |m| m.stream_info.as_ref();
    api::SegmentId => |m| m.stream_info.as_ref();
    api::GetEpochSegmentsRequest => |m| m.stream_info.as_ref();
    api::GetSegmentsRequest => |m| m.stream_info.as_ref();
    api::StreamCutRange => |m| m.stream_info.as_ref();
    api::ScaleRequest => |m| m.stream_info.as_ref();
    api::ScaleStatusRequest => |m| m.stream_info.as_ref();
    api::CreateTxnRequest => |m| m.stream_info.as_ref();
    api::PingTxnRequest => |m| m.stream_info.as_ref();
    api::TxnRequest => |m| m.stream_info.as_ref();
    api::ListCompletedTxnRequest => |m| m.stream_info.as_ref();
    api::RemoveWriterRequest => |m| m.stream.as_ref();
    api::TimestampFromWriter => |m| m.position.as_ref().and_then(|p| p.stream_info.as_ref());
    api::SubscriberStreamCut => |m| m.stream_cut.as_ref().and_then(|c| c.stream_info.as_ref());
}

/// The stream a request names; `INVALID_ARGUMENT` when it names none.
fn stream_of<T: NamesStream>(request: &Request<T>) -> Result<&api::StreamInfo, Status> {
    request
        .get_ref()
        .stream_named()
        .ok_or_else(|| Status::invalid_argument("streamInfo is missing"))
}

/// The resource a stream name stands for, as Pravega's controller checks it: a reader group's
/// state stream (`_RG<group>`) is the reader group, a mark stream (`_MARK<stream>`) its stream.
fn named_resource(scope: &str, stream: &str) -> String {
    if let Some(group) = stream.strip_prefix("_RG") {
        resource::reader_group(scope, group)
    } else if let Some(marked) = stream.strip_prefix("_MARK") {
        resource::stream(scope, marked)
    } else {
        resource::stream(scope, stream)
    }
}

/// The gRPC status for a failure that has no place in the reply's status enum.
fn status(error: ControllerError) -> Status {
    match &error {
        ControllerError::InvalidName(_) | ControllerError::InvalidArgument(_) => {
            Status::invalid_argument(error.to_string())
        }
        ControllerError::ScopeNotFound(_)
        | ControllerError::StreamNotFound { .. }
        | ControllerError::SegmentNotFound(_)
        | ControllerError::TransactionNotFound(_) => Status::not_found(error.to_string()),
        ControllerError::ScopeNotEmpty(_)
        | ControllerError::StreamNotSealed { .. }
        | ControllerError::StreamSealed { .. }
        | ControllerError::PreconditionFailed(_) => Status::failed_precondition(error.to_string()),
        ControllerError::Metadata(_)
        | ControllerError::SegmentStore(_)
        | ControllerError::Contention(_) => Status::unavailable(error.to_string()),
        ControllerError::Internal(_) => Status::internal(error.to_string()),
    }
}

fn unimplemented(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} is not available yet in Pravaha (it arrives with the controller workflows issue)"
    ))
}

fn stream_info(info: Option<api::StreamInfo>) -> Result<(String, String), Status> {
    let info = info.ok_or_else(|| Status::invalid_argument("streamInfo is missing"))?;
    Ok((info.scope, info.stream))
}

fn make_stream_info(scope: &str, stream: &str) -> api::StreamInfo {
    api::StreamInfo {
        scope: scope.to_owned(),
        stream: stream.to_owned(),
        access_operation: 0,
    }
}

fn segment_range(scope: &str, stream: &str, range: &SegmentRange) -> api::SegmentRange {
    api::SegmentRange {
        segment_id: Some(api::SegmentId {
            stream_info: Some(make_stream_info(scope, stream)),
            segment_id: range.id,
        }),
        min_key: range.key_start,
        max_key: range.key_end,
    }
}

/// The model configuration from the API's, checking enum values.
fn config_from_api(config: &api::StreamConfig) -> Result<StreamConfig, Status> {
    let scaling = config
        .scaling_policy
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("scalingPolicy is missing"))?;
    use api::scaling_policy::ScalingPolicyType as Api;
    let scale_type = match Api::try_from(scaling.scale_type) {
        Ok(Api::FixedNumSegments) => ScaleType::FixedNumSegments,
        Ok(Api::ByRateInKbytesPerSec) => ScaleType::ByRateInKbytesPerSec,
        Ok(Api::ByRateInEventsPerSec) => ScaleType::ByRateInEventsPerSec,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "unknown scaling policy type {}",
                scaling.scale_type
            )))
        }
    };
    let retention = match &config.retention_policy {
        None => None,
        Some(policy) => {
            use api::retention_policy::RetentionPolicyType as Api;
            match Api::try_from(policy.retention_type) {
                Ok(Api::Unknown) => None,
                Ok(kind) => Some(RetentionPolicy {
                    retention_type: if kind == Api::Time {
                        RetentionType::Time
                    } else {
                        RetentionType::Size
                    },
                    retention_param: policy.retention_param,
                    // Older clients leave the maximum unset (0): no maximum.
                    retention_max: if policy.retention_max <= 0 {
                        i64::MAX
                    } else {
                        policy.retention_max
                    },
                }),
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "unknown retention policy type {}",
                        policy.retention_type
                    )))
                }
            }
        }
    };
    Ok(StreamConfig {
        scaling: ScalingPolicy {
            scale_type,
            target_rate: scaling.target_rate,
            scale_factor: scaling.scale_factor,
            min_num_segments: scaling.min_num_segments,
        },
        retention,
        tags: config
            .tags
            .as_ref()
            .map(|t| t.tag.clone())
            .unwrap_or_default(),
        timestamp_aggregation_timeout_ms: config.timestamp_aggregation_timeout,
        rollover_size_bytes: config.rollover_size_bytes,
    })
}

fn config_to_api(record: &StreamRecord) -> api::StreamConfig {
    let config = &record.config;
    use api::scaling_policy::ScalingPolicyType as Scale;
    let scale_type = match config.scaling.scale_type {
        ScaleType::FixedNumSegments => Scale::FixedNumSegments,
        ScaleType::ByRateInKbytesPerSec => Scale::ByRateInKbytesPerSec,
        ScaleType::ByRateInEventsPerSec => Scale::ByRateInEventsPerSec,
    };
    use api::retention_policy::RetentionPolicyType as Retention;
    api::StreamConfig {
        stream_info: Some(make_stream_info(&record.scope, &record.name)),
        scaling_policy: Some(api::ScalingPolicy {
            scale_type: scale_type.into(),
            target_rate: config.scaling.target_rate,
            scale_factor: config.scaling.scale_factor,
            min_num_segments: config.scaling.min_num_segments,
        }),
        retention_policy: config.retention.map(|policy| api::RetentionPolicy {
            retention_type: match policy.retention_type {
                RetentionType::Time => Retention::Time,
                RetentionType::Size => Retention::Size,
            }
            .into(),
            retention_param: policy.retention_param,
            retention_max: policy.retention_max,
        }),
        tags: (!config.tags.is_empty()).then(|| api::Tags {
            tag: config.tags.clone(),
        }),
        timestamp_aggregation_timeout: config.timestamp_aggregation_timeout_ms,
        rollover_size_bytes: config.rollover_size_bytes,
    }
}

fn txn_id_to_api(id: u128) -> api::TxnId {
    api::TxnId {
        high_bits: (id >> 64) as u64 as i64,
        low_bits: id as u64 as i64,
    }
}

fn txn_id_from_api(id: Option<api::TxnId>) -> Result<u128, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("txnId is missing"))?;
    Ok((u128::from(id.high_bits as u64) << 64) | u128::from(id.low_bits as u64))
}

/// The `DeleteScopeStatus` reply for a scope deletion.
fn delete_scope_status(result: Result<bool, ControllerError>) -> Reply<api::DeleteScopeStatus> {
    use api::delete_scope_status::Status as S;
    let outcome = match result {
        Ok(true) => S::Success,
        Ok(false) => S::ScopeNotFound,
        Err(ControllerError::ScopeNotEmpty(_)) => S::ScopeNotEmpty,
        Err(error) => return Err(status(error)),
    };
    ok(api::DeleteScopeStatus {
        status: outcome.into(),
    })
}

/// The `TxnStatus` reply for a commit or abort.
fn txn_status(result: Result<(), ControllerError>) -> Reply<api::TxnStatus> {
    use api::txn_status::Status as S;
    let outcome = match result {
        Ok(()) => S::Success,
        Err(ControllerError::TransactionNotFound(_)) => S::TransactionNotFound,
        Err(ControllerError::StreamNotFound { .. }) => S::StreamNotFound,
        Err(ControllerError::PreconditionFailed(why)) => {
            tracing::debug!(why, "transaction request refused");
            S::Failure
        }
        Err(error) => return Err(status(error)),
    };
    ok(api::TxnStatus {
        status: outcome.into(),
    })
}

fn cut_from_api(cut: &std::collections::HashMap<i64, i64>) -> BTreeMap<i64, i64> {
    cut.iter().map(|(k, v)| (*k, *v)).collect()
}

impl GrpcService {
    /// Refuses the call (`PERMISSION_DENIED`) unless its caller has `needed` on `resource`;
    /// returns what the caller has (everything when no users are configured).
    fn require<T>(
        &self,
        request: &Request<T>,
        resource: &str,
        needed: Permission,
    ) -> Result<Permission, Status> {
        self.controller
            .authorize(request.extensions().get::<Caller>(), resource, needed)
            .map_err(|denied| Status::permission_denied(denied.to_string()))
    }

    /// [`Self::require`] on the stream the request names.
    fn require_stream<T: NamesStream>(
        &self,
        request: &Request<T>,
        needed: Permission,
    ) -> Result<Permission, Status> {
        let info = stream_of(request)?;
        let stream = resource::stream(&info.scope, &info.stream);
        self.require(request, &stream, needed)
    }

    /// [`Self::require`] on what the named stream stands for ([`named_resource`]).
    fn require_named<T: NamesStream>(
        &self,
        request: &Request<T>,
        needed: Permission,
    ) -> Result<Permission, Status> {
        let info = stream_of(request)?;
        self.require(request, &named_resource(&info.scope, &info.stream), needed)
    }

    /// For calls that hand out a token unless the caller asks for no access: with access
    /// operation `NONE` the caller needs READ and gets no token (`NONE` returned), otherwise
    /// READ_UPDATE on what the stream stands for.
    fn access_or_update<T: NamesStream>(&self, request: &Request<T>) -> Result<Permission, Status> {
        use api::stream_info::AccessOperation as Op;
        let none = request
            .get_ref()
            .stream_named()
            .is_some_and(|info| info.access_operation == Op::None as i32);
        if none {
            self.require_named(request, Permission::Read)?;
            Ok(Permission::None)
        } else {
            self.require_named(request, Permission::ReadUpdate)
        }
    }

    /// [`Self::token`], or no token for `NONE`.
    fn token_unless_none(
        &self,
        scope: &str,
        stream: &str,
        grant: Permission,
    ) -> Result<String, Status> {
        if grant == Permission::None {
            return Ok(String::new());
        }
        self.token(scope, stream, grant)
    }

    /// A delegation token for the stream granting `granted` (what the caller has on it).
    fn token(&self, scope: &str, stream: &str, granted: Permission) -> Result<String, Status> {
        self.controller
            .delegation_token_for(scope, stream, granted)
            .map_err(status)
    }

    /// A page of the scope's streams (with `tag`), only those `caller` may read.
    async fn list_streams(
        &self,
        caller: Option<&Caller>,
        scope: String,
        token: Option<api::ContinuationToken>,
        tag: Option<&str>,
    ) -> Reply<api::StreamsInScopeResponse> {
        use api::streams_in_scope_response::Status as S;
        let token = token.map(|t| t.token).unwrap_or_default();
        match self.controller.list_streams(&scope, &token, tag).await {
            Ok((streams, next)) => ok(api::StreamsInScopeResponse {
                streams: streams
                    .iter()
                    .filter(|r| {
                        let stream = resource::stream(&r.scope, &r.name);
                        self.controller.permission(caller, &stream) >= Permission::Read
                    })
                    .map(|r| make_stream_info(&r.scope, &r.name))
                    .collect(),
                continuation_token: Some(api::ContinuationToken { token: next }),
                status: S::Success.into(),
            }),
            Err(ControllerError::ScopeNotFound(_)) => ok(api::StreamsInScopeResponse {
                streams: Vec::new(),
                continuation_token: Some(api::ContinuationToken { token }),
                status: S::ScopeNotFound.into(),
            }),
            Err(error) => Err(status(error)),
        }
    }

    async fn successors(
        &self,
        request: api::SegmentId,
        granted: Permission,
    ) -> Reply<api::SuccessorResponse> {
        let (scope, stream) = stream_info(request.stream_info)?;
        let record = self
            .controller
            .stream(&scope, &stream)
            .await
            .map_err(status)?;
        let successors = record
            .successors(request.segment_id)
            .ok_or_else(|| status(ControllerError::SegmentNotFound(request.segment_id)))?;
        ok(api::SuccessorResponse {
            segments: successors
                .iter()
                .map(
                    |(range, predecessors)| api::successor_response::SegmentEntry {
                        segment: Some(segment_range(&scope, &stream, range)),
                        value: predecessors.clone(),
                    },
                )
                .collect(),
            delegation_token: self.token(&scope, &stream, granted)?,
        })
    }
}

#[tonic::async_trait]
impl ControllerService for GrpcService {
    async fn get_controller_server_list(
        &self,
        _request: Request<api::ServerRequest>,
    ) -> Reply<api::ServerResponse> {
        ok(api::ServerResponse {
            node_uri: vec![api::NodeUri {
                endpoint: self.address.ip().to_string(),
                port: i32::from(self.address.port()),
            }],
        })
    }

    async fn get_controller_to_bucket_mapping(
        &self,
        _request: Request<api::ControllerToBucketMappingRequest>,
    ) -> Reply<api::ControllerToBucketMappingResponse> {
        Err(unimplemented("getControllerToBucketMapping"))
    }

    async fn create_scope(
        &self,
        request: Request<api::ScopeInfo>,
    ) -> Reply<api::CreateScopeStatus> {
        self.require(&request, &resource::root(), Permission::ReadUpdate)?;
        use api::create_scope_status::Status as S;
        let scope = request.into_inner().scope;
        let result = match self.controller.create_scope(&scope).await {
            Ok(true) => S::Success,
            Ok(false) => S::ScopeExists,
            Err(ControllerError::InvalidName(_)) => S::InvalidScopeName,
            Err(error) => return Err(status(error)),
        };
        ok(api::CreateScopeStatus {
            status: result.into(),
        })
    }

    async fn check_scope_exists(
        &self,
        request: Request<api::ScopeInfo>,
    ) -> Reply<api::ExistsResponse> {
        self.require(
            &request,
            &resource::scope(&request.get_ref().scope),
            Permission::Read,
        )?;
        let scope = request.into_inner().scope;
        let exists = self.controller.scope_exists(&scope).await.map_err(status)?;
        ok(api::ExistsResponse { exists })
    }

    async fn list_scopes(
        &self,
        request: Request<api::ScopesRequest>,
    ) -> Reply<api::ScopesResponse> {
        // As Pravega: READ on the root, and only the scopes the caller may read.
        self.require(&request, &resource::root(), Permission::Read)?;
        let caller = request.extensions().get::<Caller>().cloned();
        let token = request
            .into_inner()
            .continuation_token
            .map(|t| t.token)
            .unwrap_or_default();
        let (mut scopes, next) = self.controller.list_scopes(&token).await.map_err(status)?;
        scopes.retain(|scope| {
            self.controller
                .permission(caller.as_ref(), &resource::scope(scope))
                >= Permission::Read
        });
        ok(api::ScopesResponse {
            scopes,
            continuation_token: Some(api::ContinuationToken { token: next }),
        })
    }

    async fn delete_scope(
        &self,
        request: Request<api::ScopeInfo>,
    ) -> Reply<api::DeleteScopeStatus> {
        self.require(&request, &resource::root(), Permission::ReadUpdate)?;
        let scope = request.into_inner().scope;
        delete_scope_status(self.controller.delete_scope(&scope).await)
    }

    async fn delete_scope_recursive(
        &self,
        request: Request<api::ScopeInfo>,
    ) -> Reply<api::DeleteScopeStatus> {
        self.require(&request, &resource::root(), Permission::ReadUpdate)?;
        use api::delete_scope_status::Status as S;
        let scope = request.into_inner().scope;
        if !self.controller.scope_exists(&scope).await.map_err(status)? {
            return ok(api::DeleteScopeStatus {
                status: S::ScopeNotFound.into(),
            });
        }
        // Reader groups and Key-Value Tables first, then seal and delete every stream, then the
        // scope.
        self.controller
            .delete_groups_and_tables_in(&scope)
            .await
            .map_err(status)?;
        loop {
            let (streams, _) = self
                .controller
                .list_streams(&scope, "", None)
                .await
                .map_err(status)?;
            if streams.is_empty() {
                break;
            }
            for record in streams {
                // A mark stream listed in this page may be gone already: deleting its stream
                // deletes it too.
                match self.controller.seal_stream(&scope, &record.name).await {
                    Ok(()) | Err(ControllerError::StreamNotFound { .. }) => {}
                    Err(error) => return Err(status(error)),
                }
                self.controller
                    .delete_stream(&scope, &record.name)
                    .await
                    .map_err(status)?;
            }
        }
        delete_scope_status(self.controller.delete_scope(&scope).await)
    }

    async fn create_stream(
        &self,
        request: Request<api::StreamConfig>,
    ) -> Reply<api::CreateStreamStatus> {
        // Internal streams need only READ: mark streams, and reader groups' state streams (as
        // Pravega's default `readerGroupStreams.writesWithReadPermissions`).
        let needed = match request.get_ref().stream_named() {
            Some(info) if info.stream.starts_with("_MARK") || info.stream.starts_with("_RG") => {
                Permission::Read
            }
            _ => Permission::ReadUpdate,
        };
        let scope = request
            .get_ref()
            .stream_named()
            .map(|info| resource::scope(&info.scope))
            .unwrap_or_default();
        self.require(&request, &scope, needed)?;
        use api::create_stream_status::Status as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info.clone())?;
        let config = config_from_api(&request)?;
        let result = match self.controller.create_stream(&scope, &stream, config).await {
            Ok(true) => S::Success,
            Ok(false) => S::StreamExists,
            Err(ControllerError::ScopeNotFound(_)) => S::ScopeNotFound,
            Err(ControllerError::InvalidName(_)) => S::InvalidStreamName,
            Err(error) => return Err(status(error)),
        };
        ok(api::CreateStreamStatus {
            status: result.into(),
        })
    }

    async fn update_stream(
        &self,
        request: Request<api::StreamConfig>,
    ) -> Reply<api::UpdateStreamStatus> {
        self.require_named(&request, Permission::ReadUpdate)?;
        use api::update_stream_status::Status as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info.clone())?;
        let config = config_from_api(&request)?;
        let result = match self.controller.update_stream(&scope, &stream, config).await {
            Ok(()) => S::Success,
            Err(ControllerError::StreamNotFound { .. }) => {
                if self.controller.scope_exists(&scope).await.map_err(status)? {
                    S::StreamNotFound
                } else {
                    S::ScopeNotFound
                }
            }
            Err(ControllerError::StreamSealed { .. }) => S::StreamSealed,
            Err(error) => return Err(status(error)),
        };
        ok(api::UpdateStreamStatus {
            status: result.into(),
        })
    }

    async fn get_stream_configuration(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::StreamConfig> {
        self.require_stream(&request, Permission::Read)?;
        let info = request.into_inner();
        let record = self
            .controller
            .stream(&info.scope, &info.stream)
            .await
            .map_err(status)?;
        ok(config_to_api(&record))
    }

    async fn check_stream_exists(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::ExistsResponse> {
        self.require_stream(&request, Permission::Read)?;
        let info = request.into_inner();
        let exists = match self.controller.stream(&info.scope, &info.stream).await {
            Ok(_) => true,
            Err(ControllerError::StreamNotFound { .. }) => false,
            Err(error) => return Err(status(error)),
        };
        ok(api::ExistsResponse { exists })
    }

    async fn list_streams_in_scope(
        &self,
        request: Request<api::StreamsInScopeRequest>,
    ) -> Reply<api::StreamsInScopeResponse> {
        let caller = request.extensions().get::<Caller>().cloned();
        let scope = request.get_ref().scope.clone().map(|s| s.scope);
        let scope = scope.unwrap_or_default();
        self.require(&request, &resource::scope(&scope), Permission::Read)?;
        let token = request.into_inner().continuation_token;
        self.list_streams(caller.as_ref(), scope, token, None).await
    }

    async fn list_streams_in_scope_for_tag(
        &self,
        request: Request<api::StreamsInScopeWithTagRequest>,
    ) -> Reply<api::StreamsInScopeResponse> {
        let caller = request.extensions().get::<Caller>().cloned();
        let scope = request.get_ref().scope.clone().map(|s| s.scope);
        let scope = scope.unwrap_or_default();
        self.require(&request, &resource::scope(&scope), Permission::Read)?;
        let request = request.into_inner();
        let tag = Some(request.tag.as_str());
        self.list_streams(caller.as_ref(), scope, request.continuation_token, tag)
            .await
    }

    async fn truncate_stream(
        &self,
        request: Request<api::StreamCut>,
    ) -> Reply<api::UpdateStreamStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let result = self
            .controller
            .truncate_stream(&scope, &stream, cut_from_api(&request.cut))
            .await;
        self.update_status(&scope, result).await
    }

    async fn seal_stream(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::UpdateStreamStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        let info = request.into_inner();
        let result = self.controller.seal_stream(&info.scope, &info.stream).await;
        self.update_status(&info.scope, result).await
    }

    async fn delete_stream(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::DeleteStreamStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        use api::delete_stream_status::Status as S;
        let info = request.into_inner();
        let result = match self
            .controller
            .delete_stream(&info.scope, &info.stream)
            .await
        {
            Ok(true) => S::Success,
            Ok(false) => S::StreamNotFound,
            Err(ControllerError::StreamNotSealed { .. }) => S::StreamNotSealed,
            Err(error) => return Err(status(error)),
        };
        ok(api::DeleteStreamStatus {
            status: result.into(),
        })
    }

    /// As Pravega's controller: the token grants what the access operation asks for, once the
    /// caller is found to have it (`UNSPECIFIED`, from older clients, asks for everything).
    async fn get_delegation_token(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::DelegationToken> {
        use api::stream_info::AccessOperation as Op;
        let info = request.get_ref();
        let operation = Op::try_from(info.access_operation).unwrap_or(Op::Unspecified);
        let internal = info.stream.starts_with('_');
        let named = named_resource(&info.scope, &info.stream);
        let plain = resource::stream(&info.scope, &info.stream);
        let (checked, needed, grant) = match operation {
            Op::Unspecified => (named, Permission::ReadUpdate, Permission::ReadUpdate),
            Op::Any => {
                return Err(Status::invalid_argument(
                    "accessOperation ANY names no permission to grant",
                ))
            }
            Op::Write | Op::ReadWrite if internal => {
                // Readers write their group's state, writers marks for watermarks: READ on
                // the group or the stream suffices (Pravega's default
                // `readerGroupStreams.writesWithReadPermissions`).
                let needed = if info.stream.starts_with("_MARK") || info.stream.starts_with("_RG") {
                    Permission::Read
                } else {
                    Permission::ReadUpdate
                };
                (named, needed, Permission::ReadUpdate)
            }
            Op::Write | Op::ReadWrite => (plain, Permission::ReadUpdate, Permission::ReadUpdate),
            Op::Read if internal => (named, Permission::Read, Permission::Read),
            Op::Read => (plain, Permission::Read, Permission::Read),
            Op::None if internal => (named, Permission::Read, Permission::Read),
            Op::None => (plain, Permission::Read, Permission::None),
        };
        self.require(&request, &checked, needed)?;
        let info = request.into_inner();
        ok(api::DelegationToken {
            delegation_token: self.token(&info.scope, &info.stream, grant)?,
        })
    }

    async fn get_current_segments(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::SegmentRanges> {
        // As Pravega: a caller asking for no access needs READ and gets no token; anyone else
        // needs READ_UPDATE and gets a token for it.
        let grant = self.access_or_update(&request)?;
        let info = request.into_inner();
        let record = self
            .controller
            .stream(&info.scope, &info.stream)
            .await
            .map_err(status)?;
        ok(api::SegmentRanges {
            segment_ranges: record
                .current_segments()
                .iter()
                .map(|r| segment_range(&info.scope, &info.stream, r))
                .collect(),
            delegation_token: self.token_unless_none(&info.scope, &info.stream, grant)?,
        })
    }

    async fn get_epoch_segments(
        &self,
        request: Request<api::GetEpochSegmentsRequest>,
    ) -> Reply<api::SegmentRanges> {
        let granted = self.require_stream(&request, Permission::ReadUpdate)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let record = self
            .controller
            .stream(&scope, &stream)
            .await
            .map_err(status)?;
        let ranges = u32::try_from(request.epoch)
            .ok()
            .and_then(|epoch| record.epoch_segments(epoch))
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "epoch {} does not exist (the current epoch is {})",
                    request.epoch,
                    record.current_epoch().epoch
                ))
            })?;
        ok(api::SegmentRanges {
            segment_ranges: ranges
                .iter()
                .map(|r| segment_range(&scope, &stream, r))
                .collect(),
            delegation_token: self.token(&scope, &stream, granted)?,
        })
    }

    async fn get_segments(
        &self,
        request: Request<api::GetSegmentsRequest>,
    ) -> Reply<api::SegmentsAtTime> {
        let grant = self.access_or_update(&request)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let record = self
            .controller
            .stream(&scope, &stream)
            .await
            .map_err(status)?;
        let segments = record
            .segments_at(request.timestamp)
            .into_iter()
            .map(|(id, offset)| api::segments_at_time::SegmentLocation {
                segment_id: Some(api::SegmentId {
                    stream_info: Some(make_stream_info(&scope, &stream)),
                    segment_id: id,
                }),
                offset,
            })
            .collect();
        ok(api::SegmentsAtTime {
            segments,
            delegation_token: self.token_unless_none(&scope, &stream, grant)?,
        })
    }

    async fn get_segments_immediatly_following(
        &self,
        request: Request<api::SegmentId>,
    ) -> Reply<api::SuccessorResponse> {
        let granted = self.require_stream(&request, Permission::Read)?;
        self.successors(request.into_inner(), granted).await
    }

    async fn get_segments_immediately_following(
        &self,
        request: Request<api::SegmentId>,
    ) -> Reply<api::SuccessorResponse> {
        let granted = self.require_stream(&request, Permission::Read)?;
        self.successors(request.into_inner(), granted).await
    }

    async fn get_segments_between(
        &self,
        request: Request<api::StreamCutRange>,
    ) -> Reply<api::StreamCutRangeResponse> {
        let granted = self.require_stream(&request, Permission::Read)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let record = self
            .controller
            .stream(&scope, &stream)
            .await
            .map_err(status)?;
        let (from, to) = (cut_from_api(&request.from), cut_from_api(&request.to));
        for cut in [&from, &to] {
            if !cut.is_empty() {
                record.validate_cut(cut).map_err(Status::invalid_argument)?;
            }
        }
        ok(api::StreamCutRangeResponse {
            segments: record
                .segments_between(&from, &to)
                .into_iter()
                .map(|id| api::SegmentId {
                    stream_info: Some(make_stream_info(&scope, &stream)),
                    segment_id: id,
                })
                .collect(),
            delegation_token: self.token(&scope, &stream, granted)?,
        })
    }

    async fn get_uri(&self, request: Request<api::SegmentId>) -> Reply<api::NodeUri> {
        self.require_named(&request, Permission::Read)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let node = self
            .controller
            .endpoint(&scope, &stream, request.segment_id);
        ok(api::NodeUri {
            endpoint: node.advertised_host.clone(),
            port: i32::from(node.advertised_port),
        })
    }

    async fn is_segment_valid(
        &self,
        request: Request<api::SegmentId>,
    ) -> Reply<api::SegmentValidityResponse> {
        self.require_stream(&request, Permission::Read)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let response = match self
            .controller
            .is_segment_valid(&scope, &stream, request.segment_id)
            .await
        {
            Ok(valid) => valid,
            Err(ControllerError::StreamNotFound { .. }) => false,
            Err(error) => return Err(status(error)),
        };
        ok(api::SegmentValidityResponse { response })
    }

    async fn is_stream_cut_valid(
        &self,
        request: Request<api::StreamCut>,
    ) -> Reply<api::StreamCutValidityResponse> {
        self.require_stream(&request, Permission::Read)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let record = self
            .controller
            .stream(&scope, &stream)
            .await
            .map_err(status)?;
        ok(api::StreamCutValidityResponse {
            response: record.validate_cut(&cut_from_api(&request.cut)).is_ok(),
        })
    }

    async fn scale(&self, request: Request<api::ScaleRequest>) -> Reply<api::ScaleResponse> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        use api::scale_response::ScaleStreamStatus as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let ranges: Vec<(f64, f64)> = request
            .new_key_ranges
            .iter()
            .map(|r| (r.start, r.end))
            .collect();
        match self
            .controller
            .scale(&scope, &stream, &request.sealed_segments, &ranges)
            .await
        {
            Ok(started) => ok(api::ScaleResponse {
                status: S::Started.into(),
                segments: started
                    .segments
                    .iter()
                    .map(|r| segment_range(&scope, &stream, r))
                    .collect(),
                epoch: i32::try_from(started.epoch).unwrap_or(i32::MAX),
            }),
            Err(ControllerError::PreconditionFailed(why)) => {
                tracing::debug!(scope, stream, why, "scale refused");
                ok(api::ScaleResponse {
                    status: S::PreconditionFailed.into(),
                    segments: Vec::new(),
                    epoch: 0,
                })
            }
            Err(error) => Err(status(error)),
        }
    }

    async fn check_scale(
        &self,
        request: Request<api::ScaleStatusRequest>,
    ) -> Reply<api::ScaleStatusResponse> {
        self.require_stream(&request, Permission::Read)?;
        use api::scale_status_response::ScaleStatus as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let result = match self
            .controller
            .check_scale(&scope, &stream, request.epoch)
            .await
        {
            Ok(ScaleStatus::Success) => S::Success,
            Ok(ScaleStatus::InProgress) => S::InProgress,
            Ok(ScaleStatus::InvalidInput) | Err(ControllerError::StreamNotFound { .. }) => {
                S::InvalidInput
            }
            Err(error) => {
                tracing::warn!(scope, stream, %error, "checkScale failed");
                S::InternalError
            }
        };
        ok(api::ScaleStatusResponse {
            status: result.into(),
        })
    }

    async fn create_transaction(
        &self,
        request: Request<api::CreateTxnRequest>,
    ) -> Reply<api::CreateTxnResponse> {
        let granted = self.require_stream(&request, Permission::ReadUpdate)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let (id, segments) = self
            .controller
            .create_transaction(&scope, &stream, request.lease)
            .await
            .map_err(status)?;
        ok(api::CreateTxnResponse {
            txn_id: Some(txn_id_to_api(id)),
            active_segments: segments
                .iter()
                .map(|r| segment_range(&scope, &stream, r))
                .collect(),
            delegation_token: self.token(&scope, &stream, granted)?,
        })
    }

    async fn ping_transaction(
        &self,
        request: Request<api::PingTxnRequest>,
    ) -> Reply<api::PingTxnStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        use api::ping_txn_status::Status as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let id = txn_id_from_api(request.txn_id)?;
        let outcome = self
            .controller
            .ping_transaction(&scope, &stream, id, request.lease)
            .await
            .map_err(status)?;
        // Finished transactions answer COMMITTED / ABORTED, never an error: an error status
        // stops the Rust client's pinger.
        let result = match outcome {
            PingOutcome::Ok => S::Ok,
            PingOutcome::LeaseTooLarge => S::LeaseTooLarge,
            PingOutcome::Committed => S::Committed,
            PingOutcome::Aborted => S::Aborted,
            PingOutcome::Unknown => S::Unknown,
        };
        ok(api::PingTxnStatus {
            status: result.into(),
        })
    }

    async fn commit_transaction(&self, request: Request<api::TxnRequest>) -> Reply<api::TxnStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let id = txn_id_from_api(request.txn_id)?;
        let result = self
            .controller
            .commit_transaction(&scope, &stream, id, &request.writer_id, request.timestamp)
            .await;
        txn_status(result)
    }

    async fn abort_transaction(&self, request: Request<api::TxnRequest>) -> Reply<api::TxnStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let id = txn_id_from_api(request.txn_id)?;
        let result = self.controller.abort_transaction(&scope, &stream, id).await;
        txn_status(result)
    }

    async fn check_transaction_state(
        &self,
        request: Request<api::TxnRequest>,
    ) -> Reply<api::TxnState> {
        self.require_stream(&request, Permission::Read)?;
        use api::txn_state::State as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream_info)?;
        let id = txn_id_from_api(request.txn_id)?;
        let state = match self
            .controller
            .transaction_status(&scope, &stream, id)
            .await
            .map_err(status)?
        {
            None => S::Unknown,
            Some(TxnStatus::Open) => S::Open,
            Some(TxnStatus::Committing) => S::Committing,
            Some(TxnStatus::Committed) => S::Committed,
            Some(TxnStatus::Aborting) => S::Aborting,
            Some(TxnStatus::Aborted) => S::Aborted,
        };
        ok(api::TxnState {
            state: state.into(),
        })
    }

    async fn list_completed_transactions(
        &self,
        request: Request<api::ListCompletedTxnRequest>,
    ) -> Reply<api::ListCompletedTxnResponse> {
        self.require_stream(&request, Permission::Read)?;
        use api::txn_response::Status as S;
        let (scope, stream) = stream_info(request.into_inner().stream_info)?;
        let completed = self
            .controller
            .completed_transactions(&scope, &stream)
            .await
            .map_err(status)?;
        ok(api::ListCompletedTxnResponse {
            response: completed
                .into_iter()
                .map(|(id, state)| api::TxnResponse {
                    txn_id: Some(txn_id_to_api(id)),
                    status: if state == TxnStatus::Committed {
                        S::Committed
                    } else {
                        S::Aborted
                    }
                    .into(),
                })
                .collect(),
        })
    }

    async fn remove_writer(
        &self,
        request: Request<api::RemoveWriterRequest>,
    ) -> Reply<api::RemoveWriterResponse> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        use api::remove_writer_response::Status as S;
        let request = request.into_inner();
        let (scope, stream) = stream_info(request.stream)?;
        let result = match self
            .controller
            .remove_writer(&scope, &stream, &request.writer)
            .await
        {
            Ok(true) => S::Success,
            Ok(false) => S::UnknownWriter,
            Err(ControllerError::StreamNotFound { .. }) => S::StreamDoesNotExist,
            Err(error) => {
                tracing::warn!(scope, stream, %error, "removeWriter failed");
                S::InternalError
            }
        };
        ok(api::RemoveWriterResponse {
            result: result.into(),
        })
    }

    async fn note_timestamp_from_writer(
        &self,
        request: Request<api::TimestampFromWriter>,
    ) -> Reply<api::TimestampResponse> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        use api::timestamp_response::Status as S;
        let request = request.into_inner();
        let position = request
            .position
            .ok_or_else(|| Status::invalid_argument("position is missing"))?;
        let (scope, stream) = stream_info(position.stream_info)?;
        let result = match self
            .controller
            .note_writer_mark(
                &scope,
                &stream,
                &request.writer,
                request.timestamp,
                cut_from_api(&position.cut),
            )
            .await
        {
            Ok(Ok(())) => S::Success,
            Ok(Err(MarkRefused::InvalidTime)) => S::InvalidTime,
            Ok(Err(MarkRefused::InvalidPosition)) => S::InvalidPosition,
            Err(ControllerError::StreamNotFound { .. }) => S::InvalidPosition,
            Err(error) => {
                tracing::warn!(scope, stream, %error, "noteTimestampFromWriter failed");
                S::InternalError
            }
        };
        ok(api::TimestampResponse {
            result: result.into(),
        })
    }

    async fn create_key_value_table(
        &self,
        request: Request<api::KeyValueTableConfig>,
    ) -> Reply<api::CreateKeyValueTableStatus> {
        self.require(
            &request,
            &resource::scope(&request.get_ref().scope),
            Permission::ReadUpdate,
        )?;
        crate::grpc_groups::create_key_value_table(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn get_key_value_table_configuration(
        &self,
        request: Request<api::KeyValueTableInfo>,
    ) -> Reply<api::KeyValueTableConfigResponse> {
        let table = request.get_ref();
        let table = resource::key_value_table(&table.scope, &table.kvt_name);
        self.require(&request, &table, Permission::Read)?;
        crate::grpc_groups::key_value_table_configuration(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn get_current_segments_key_value_table(
        &self,
        request: Request<api::KeyValueTableInfo>,
    ) -> Reply<api::SegmentRanges> {
        let table = request.get_ref();
        let table = resource::key_value_table(&table.scope, &table.kvt_name);
        self.require(&request, &table, Permission::ReadUpdate)?;
        crate::grpc_groups::key_value_table_segments(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn list_key_value_tables_in_scope(
        &self,
        request: Request<api::KvTablesInScopeRequest>,
    ) -> Reply<api::KvTablesInScopeResponse> {
        let caller = request.extensions().get::<Caller>().cloned();
        let scope = request.get_ref().scope.as_ref().map(|s| s.scope.clone());
        self.require(
            &request,
            &resource::scope(&scope.unwrap_or_default()),
            Permission::Read,
        )?;
        let mut page =
            crate::grpc_groups::list_key_value_tables(&self.controller, request.into_inner())
                .await
                .map_err(status)?;
        page.kvtables.retain(|table| {
            let table = resource::key_value_table(&table.scope, &table.kvt_name);
            self.controller.permission(caller.as_ref(), &table) >= Permission::Read
        });
        ok(page)
    }

    async fn delete_key_value_table(
        &self,
        request: Request<api::KeyValueTableInfo>,
    ) -> Reply<api::DeleteKvTableStatus> {
        let table = request.get_ref();
        let table = resource::key_value_table(&table.scope, &table.kvt_name);
        self.require(&request, &table, Permission::ReadUpdate)?;
        crate::grpc_groups::delete_key_value_table(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn create_reader_group(
        &self,
        request: Request<api::ReaderGroupConfiguration>,
    ) -> Reply<api::CreateReaderGroupResponse> {
        self.require(
            &request,
            &resource::scope(&request.get_ref().scope),
            Permission::Read,
        )?;
        crate::grpc_groups::create_reader_group(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn get_reader_group_config(
        &self,
        request: Request<api::ReaderGroupInfo>,
    ) -> Reply<api::ReaderGroupConfigResponse> {
        self.require(
            &request,
            &resource::scope(&request.get_ref().scope),
            Permission::Read,
        )?;
        crate::grpc_groups::reader_group_config(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn update_reader_group(
        &self,
        request: Request<api::ReaderGroupConfiguration>,
    ) -> Reply<api::UpdateReaderGroupResponse> {
        self.require(
            &request,
            &resource::scope(&request.get_ref().scope),
            Permission::Read,
        )?;
        crate::grpc_groups::update_reader_group(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn delete_reader_group(
        &self,
        request: Request<api::ReaderGroupInfo>,
    ) -> Reply<api::DeleteReaderGroupStatus> {
        self.require(
            &request,
            &resource::scope(&request.get_ref().scope),
            Permission::Read,
        )?;
        crate::grpc_groups::delete_reader_group(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn list_subscribers(
        &self,
        request: Request<api::StreamInfo>,
    ) -> Reply<api::SubscribersResponse> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        crate::grpc_groups::list_subscribers(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }

    async fn update_subscriber_stream_cut(
        &self,
        request: Request<api::SubscriberStreamCut>,
    ) -> Reply<api::UpdateSubscriberStatus> {
        self.require_stream(&request, Permission::ReadUpdate)?;
        crate::grpc_groups::update_subscriber_stream_cut(&self.controller, request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    }
}

impl GrpcService {
    /// The `UpdateStreamStatus` for a truncate or seal.
    async fn update_status(
        &self,
        scope: &str,
        result: Result<(), ControllerError>,
    ) -> Reply<api::UpdateStreamStatus> {
        use api::update_stream_status::Status as S;
        let outcome = match result {
            Ok(()) => S::Success,
            Err(ControllerError::StreamNotFound { .. }) => {
                if self.controller.scope_exists(scope).await.map_err(status)? {
                    S::StreamNotFound
                } else {
                    S::ScopeNotFound
                }
            }
            Err(error) => return Err(status(error)),
        };
        ok(api::UpdateStreamStatus {
            status: outcome.into(),
        })
    }
}

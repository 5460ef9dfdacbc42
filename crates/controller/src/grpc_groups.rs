//! The Controller gRPC API's reader-group, subscriber and Key-Value Table rpcs over
//! [`Controller`] (called by [`crate::grpc`], which maps the failures returned here to gRPC
//! status codes). Outcomes a reply's status enum has a value for are answered with it.

use std::collections::{BTreeMap, HashMap};

use pravaha_controller_api::v1 as api;

use crate::core::Controller;
use crate::error::ControllerError;
use crate::kvtables::{KeyValueTableConfig, KeyValueTableRecord, KVT_SUFFIX};
use crate::readergroups::{
    split_scoped_name, GroupRetention, GroupUpdate, ReaderGroupConfig, ReaderGroupRecord, StreamCut,
};
use crate::subscribers::SubscriberUpdate;

type Answer<T> = Result<T, ControllerError>;

// ---- reader groups ----------------------------------------------------------------------

pub(crate) async fn create_reader_group(
    controller: &Controller,
    request: api::ReaderGroupConfiguration,
) -> Answer<api::CreateReaderGroupResponse> {
    use api::create_reader_group_response::Status as S;
    let config = group_config_from_api(&request)?;
    let (scope, name) = (&request.scope, &request.reader_group_name);
    let outcome = controller
        .create_reader_group(scope, name, &request.reader_group_id, config)
        .await;
    let (status, config) = match outcome {
        Ok(record) => (S::Success, Some(group_config_to_api(&record))),
        Err(ControllerError::InvalidName(_)) => (S::InvalidRgName, None),
        Err(ControllerError::ScopeNotFound(_)) => (S::ScopeNotFound, None),
        Err(error) => return Err(error),
    };
    Ok(api::CreateReaderGroupResponse {
        status: status.into(),
        config,
    })
}

pub(crate) async fn reader_group_config(
    controller: &Controller,
    request: api::ReaderGroupInfo,
) -> Answer<api::ReaderGroupConfigResponse> {
    use api::reader_group_config_response::Status as S;
    let found = controller
        .reader_group(&request.scope, &request.reader_group)
        .await?;
    Ok(match found {
        Some(record) => api::ReaderGroupConfigResponse {
            config: Some(group_config_to_api(&record)),
            status: S::Success.into(),
        },
        None => api::ReaderGroupConfigResponse {
            config: None,
            status: S::RgNotFound.into(),
        },
    })
}

pub(crate) async fn update_reader_group(
    controller: &Controller,
    request: api::ReaderGroupConfiguration,
) -> Answer<api::UpdateReaderGroupResponse> {
    use api::update_reader_group_response::Status as S;
    let reply = |status: S, generation| api::UpdateReaderGroupResponse {
        status: status.into(),
        generation,
    };
    let config = match group_config_from_api(&request) {
        Ok(config) => config,
        Err(error) => {
            tracing::debug!(%error, "reader group update refused");
            return Ok(reply(S::InvalidConfig, request.generation));
        }
    };
    let outcome = controller
        .update_reader_group(
            &request.scope,
            &request.reader_group_name,
            &request.reader_group_id,
            config,
        )
        .await?;
    Ok(match outcome {
        GroupUpdate::Updated { generation } => reply(S::Success, generation),
        GroupUpdate::NotFound => reply(S::RgNotFound, request.generation),
        GroupUpdate::InvalidConfig(why) => {
            tracing::debug!(why, "reader group update refused");
            reply(S::InvalidConfig, request.generation)
        }
    })
}

pub(crate) async fn delete_reader_group(
    controller: &Controller,
    request: api::ReaderGroupInfo,
) -> Answer<api::DeleteReaderGroupStatus> {
    use api::delete_reader_group_status::Status as S;
    let deleted = controller
        .delete_reader_group(
            &request.scope,
            &request.reader_group,
            Some(&request.reader_group_id),
        )
        .await?;
    let status = if deleted { S::Success } else { S::RgNotFound };
    Ok(api::DeleteReaderGroupStatus {
        status: status.into(),
    })
}

pub(crate) async fn list_subscribers(
    controller: &Controller,
    request: api::StreamInfo,
) -> Answer<api::SubscribersResponse> {
    use api::subscribers_response::Status as S;
    match controller
        .list_subscribers(&request.scope, &request.stream)
        .await
    {
        Ok(subscribers) => Ok(api::SubscribersResponse {
            subscribers,
            status: S::Success.into(),
        }),
        Err(ControllerError::StreamNotFound { .. }) => Ok(api::SubscribersResponse {
            subscribers: Vec::new(),
            status: S::StreamNotFound.into(),
        }),
        Err(error) => Err(error),
    }
}

pub(crate) async fn update_subscriber_stream_cut(
    controller: &Controller,
    request: api::SubscriberStreamCut,
) -> Answer<api::UpdateSubscriberStatus> {
    use api::update_subscriber_status::Status as S;
    let cut = request
        .stream_cut
        .ok_or_else(|| ControllerError::InvalidArgument("streamCut is missing".into()))?;
    let info = cut.stream_info.ok_or_else(|| {
        ControllerError::InvalidArgument("streamCut.streamInfo is missing".into())
    })?;
    let outcome = controller
        .update_subscriber_cut(
            &info.scope,
            &info.stream,
            &request.subscriber,
            &request.reader_group_id,
            request.generation,
            &cut_from_api(&cut.cut),
        )
        .await?;
    let status = match outcome {
        SubscriberUpdate::Updated => S::Success,
        SubscriberUpdate::StreamNotFound => S::StreamNotFound,
        SubscriberUpdate::SubscriberNotFound => S::SubscriberNotFound,
        SubscriberUpdate::GenerationMismatch => S::GenerationMismatch,
        SubscriberUpdate::CutNotValid(why) => {
            tracing::debug!(
                why,
                subscriber = request.subscriber,
                "subscriber cut refused"
            );
            S::StreamCutNotValid
        }
    };
    Ok(api::UpdateSubscriberStatus {
        status: status.into(),
    })
}

/// The model configuration from the API's; streams are keyed by their scoped names.
fn group_config_from_api(request: &api::ReaderGroupConfiguration) -> Answer<ReaderGroupConfig> {
    let retention = GroupRetention::from_api(request.retention_type).ok_or_else(|| {
        ControllerError::InvalidArgument(format!(
            "unknown retention type {}",
            request.retention_type
        ))
    })?;
    Ok(ReaderGroupConfig {
        group_refresh_time_ms: request.group_refresh_time_millis,
        automatic_checkpoint_interval_ms: request.automatic_checkpoint_interval_millis,
        max_outstanding_checkpoint_request: request.max_outstanding_checkpoint_request,
        retention,
        generation: request.generation,
        starting_cuts: cuts_from_api(&request.starting_stream_cuts)?,
        ending_cuts: cuts_from_api(&request.ending_stream_cuts)?,
        rollover_size_bytes: request.rollover_size_bytes,
    })
}

fn cuts_from_api(cuts: &[api::StreamCut]) -> Answer<BTreeMap<String, StreamCut>> {
    let mut by_stream = BTreeMap::new();
    for cut in cuts {
        let info = cut.stream_info.as_ref().ok_or_else(|| {
            ControllerError::InvalidArgument("a stream cut has no streamInfo".into())
        })?;
        let name = format!("{}/{}", info.scope, info.stream);
        if by_stream
            .insert(name.clone(), cut_from_api(&cut.cut))
            .is_some()
        {
            return Err(ControllerError::InvalidArgument(format!(
                "stream {name} has two cuts"
            )));
        }
    }
    Ok(by_stream)
}

fn group_config_to_api(record: &ReaderGroupRecord) -> api::ReaderGroupConfiguration {
    let config = &record.config;
    api::ReaderGroupConfiguration {
        scope: record.scope.clone(),
        reader_group_name: record.name.clone(),
        group_refresh_time_millis: config.group_refresh_time_ms,
        automatic_checkpoint_interval_millis: config.automatic_checkpoint_interval_ms,
        max_outstanding_checkpoint_request: config.max_outstanding_checkpoint_request,
        retention_type: config.retention.to_api(),
        generation: config.generation,
        reader_group_id: record.id.clone(),
        starting_stream_cuts: cuts_to_api(&config.starting_cuts),
        ending_stream_cuts: cuts_to_api(&config.ending_cuts),
        rollover_size_bytes: config.rollover_size_bytes,
    }
}

fn cuts_to_api(cuts: &BTreeMap<String, StreamCut>) -> Vec<api::StreamCut> {
    cuts.iter()
        .filter_map(|(name, cut)| {
            let (scope, stream) = split_scoped_name(name)?;
            Some(api::StreamCut {
                stream_info: Some(stream_info(scope, stream)),
                cut: cut.iter().map(|(id, offset)| (*id, *offset)).collect(),
            })
        })
        .collect()
}

fn cut_from_api(cut: &HashMap<i64, i64>) -> StreamCut {
    cut.iter().map(|(id, offset)| (*id, *offset)).collect()
}

fn stream_info(scope: &str, stream: &str) -> api::StreamInfo {
    api::StreamInfo {
        scope: scope.to_owned(),
        stream: stream.to_owned(),
        access_operation: 0,
    }
}

// ---- Key-Value Tables --------------------------------------------------------------------

pub(crate) async fn create_key_value_table(
    controller: &Controller,
    request: api::KeyValueTableConfig,
) -> Answer<api::CreateKeyValueTableStatus> {
    use api::create_key_value_table_status::Status as S;
    let config = KeyValueTableConfig {
        partition_count: request.partition_count,
        primary_key_length: request.primary_key_length,
        secondary_key_length: request.secondary_key_length,
        rollover_size_bytes: request.rollover_size_bytes,
    };
    let outcome = controller
        .create_key_value_table(&request.scope, &request.kvt_name, config)
        .await;
    let status = match outcome {
        Ok(true) => S::Success,
        Ok(false) => S::TableExists,
        Err(ControllerError::InvalidName(_)) => S::InvalidTableName,
        Err(ControllerError::ScopeNotFound(_)) => S::ScopeNotFound,
        Err(error) => return Err(error),
    };
    Ok(api::CreateKeyValueTableStatus {
        status: status.into(),
    })
}

pub(crate) async fn key_value_table_configuration(
    controller: &Controller,
    request: api::KeyValueTableInfo,
) -> Answer<api::KeyValueTableConfigResponse> {
    use api::key_value_table_config_response::Status as S;
    let found = controller
        .key_value_table(&request.scope, &request.kvt_name)
        .await?;
    Ok(match found {
        Some(record) => api::KeyValueTableConfigResponse {
            config: Some(api::KeyValueTableConfig {
                scope: record.scope,
                kvt_name: record.name,
                partition_count: record.config.partition_count,
                primary_key_length: record.config.primary_key_length,
                secondary_key_length: record.config.secondary_key_length,
                rollover_size_bytes: record.config.rollover_size_bytes,
            }),
            status: S::Success.into(),
        },
        None => api::KeyValueTableConfigResponse {
            config: None,
            status: S::TableNotFound.into(),
        },
    })
}

/// The table's partitions; a missing table is `NOT_FOUND` (as its pseudo-stream).
pub(crate) async fn key_value_table_segments(
    controller: &Controller,
    request: api::KeyValueTableInfo,
) -> Answer<api::SegmentRanges> {
    let (scope, name) = (request.scope, request.kvt_name);
    let Some(record) = controller.key_value_table(&scope, &name).await? else {
        return Err(ControllerError::StreamNotFound {
            scope,
            stream: format!("{name}{KVT_SUFFIX}"),
        });
    };
    let segment_ranges = record
        .segments()
        .iter()
        .map(|range| api::SegmentRange {
            segment_id: Some(api::SegmentId {
                // Java names the table here, not its pseudo-stream.
                stream_info: Some(stream_info(&scope, &name)),
                segment_id: range.id,
            }),
            min_key: range.key_start,
            max_key: range.key_end,
        })
        .collect();
    Ok(api::SegmentRanges {
        segment_ranges,
        delegation_token: controller.delegation_token(&scope, &record.stream_name())?,
    })
}

pub(crate) async fn list_key_value_tables(
    controller: &Controller,
    request: api::KvTablesInScopeRequest,
) -> Answer<api::KvTablesInScopeResponse> {
    use api::kv_tables_in_scope_response::Status as S;
    let scope = request.scope.map(|s| s.scope).unwrap_or_default();
    let token = request
        .continuation_token
        .map(|t| t.token)
        .unwrap_or_default();
    match controller.list_key_value_tables(&scope, &token).await {
        Ok((tables, next)) => Ok(api::KvTablesInScopeResponse {
            kvtables: tables.iter().map(table_info).collect(),
            continuation_token: Some(api::ContinuationToken { token: next }),
            status: S::Success.into(),
        }),
        Err(ControllerError::ScopeNotFound(_)) => Ok(api::KvTablesInScopeResponse {
            kvtables: Vec::new(),
            continuation_token: Some(api::ContinuationToken { token }),
            status: S::ScopeNotFound.into(),
        }),
        Err(error) => Err(error),
    }
}

pub(crate) async fn delete_key_value_table(
    controller: &Controller,
    request: api::KeyValueTableInfo,
) -> Answer<api::DeleteKvTableStatus> {
    use api::delete_kv_table_status::Status as S;
    let deleted = controller
        .delete_key_value_table(&request.scope, &request.kvt_name)
        .await?;
    let status = if deleted {
        S::Success
    } else {
        S::TableNotFound
    };
    Ok(api::DeleteKvTableStatus {
        status: status.into(),
    })
}

fn table_info(record: &KeyValueTableRecord) -> api::KeyValueTableInfo {
    api::KeyValueTableInfo {
        scope: record.scope.clone(),
        kvt_name: record.name.clone(),
    }
}

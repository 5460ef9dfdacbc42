//! Key-Value Tables (Pravega's Java API): create, configuration, partitions, listing, delete.

use pravaha_controller_api::v1 as api;

use super::types::{ContinuationToken, Page, ScopedStream, StreamSegments};
use super::{all_pages, ControllerClient, ControllerError, Target};
use crate::table::{KeyValueTableConfiguration, KeyValueTableInfo};

impl ControllerClient {
    /// Creates a Key-Value Table and its partitions: `true` if created, `false` if it exists
    /// (or a segment of its name does).
    pub async fn create_key_value_table(
        &self,
        table: &KeyValueTableInfo,
        config: &KeyValueTableConfiguration,
    ) -> Result<bool, ControllerError> {
        use api::create_key_value_table_status::Status as S;
        let to_i32 = |value: u32, what: &str| {
            i32::try_from(value).map_err(|_| {
                ControllerError::invalid_argument(format!("{what} {value} is above {}", i32::MAX))
            })
        };
        let message = api::KeyValueTableConfig {
            scope: table.scope.clone(),
            kvt_name: table.name.clone(),
            partition_count: to_i32(config.partition_count, "partition count")?,
            primary_key_length: to_i32(config.primary_key_length, "primary key length")?,
            secondary_key_length: to_i32(config.secondary_key_length, "secondary key length")?,
            rollover_size_bytes: i64::try_from(config.rollover_size_bytes).unwrap_or(i64::MAX),
        };
        let stream = pseudo_stream(table);
        let reply = self
            .call(
                "createKeyValueTable",
                Target::Stream(&stream),
                message,
                |mut api, r| async move { api.create_key_value_table(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::TableExists) => Ok(false),
            Ok(S::ScopeNotFound) => Err(ControllerError::scope_not_found(&table.scope)),
            Ok(S::InvalidTableName) => Err(ControllerError::invalid_argument(format!(
                "invalid key-value table name {:?}",
                table.name
            ))),
            _ => Err(ControllerError::failure(
                "createKeyValueTable",
                reply.status,
            )),
        }
    }

    /// The table's configuration; [`ControllerError::NotFound`] if it does not exist.
    pub async fn get_key_value_table_configuration(
        &self,
        table: &KeyValueTableInfo,
    ) -> Result<KeyValueTableConfiguration, ControllerError> {
        use api::key_value_table_config_response::Status as S;
        let stream = pseudo_stream(table);
        let reply = self
            .call(
                "getKeyValueTableConfiguration",
                Target::Stream(&stream),
                table_info(table),
                |mut api, r| async move { api.get_key_value_table_configuration(r).await },
            )
            .await?;
        match (S::try_from(reply.status), reply.config) {
            (Ok(S::Success), Some(config)) => configuration_from_api(&config),
            (Ok(S::TableNotFound), _) => Err(table_not_found(table)),
            _ => Err(ControllerError::failure(
                "getKeyValueTableConfiguration",
                reply.status,
            )),
        }
    }

    /// The table's partitions (segments of its pseudo-stream `<name>_kvtable`, epoch 0) with
    /// their key ranges, in partition order, and the delegation token for them.
    pub async fn get_current_segments_key_value_table(
        &self,
        table: &KeyValueTableInfo,
    ) -> Result<StreamSegments, ControllerError> {
        let stream = pseudo_stream(table);
        let reply = self
            .call(
                "getCurrentSegmentsKeyValueTable",
                Target::Stream(&stream),
                table_info(table),
                |mut api, r| async move { api.get_current_segments_key_value_table(r).await },
            )
            .await
            .map_err(|error| match error {
                ControllerError::StreamNotFound { .. } => table_not_found(table),
                other => other,
            })?;
        let mut segments = StreamSegments::from_api(reply).ok_or_else(|| {
            ControllerError::internal(
                "getCurrentSegmentsKeyValueTable answered a segment without an id",
            )
        })?;
        // Java names the table in the segment ids; the segments belong to its pseudo-stream.
        let owner = ScopedStream::new(table.scope.clone(), table.stream_name());
        for segment in &mut segments.segments {
            segment.segment.stream = owner.clone();
        }
        segments.segments.sort_by_key(|segment| segment.segment.id);
        Ok(segments)
    }

    /// One page of the scope's Key-Value Tables; an empty page ends the listing.
    pub async fn list_key_value_tables_page(
        &self,
        scope: &str,
        token: &ContinuationToken,
    ) -> Result<Page<KeyValueTableInfo>, ControllerError> {
        use api::kv_tables_in_scope_response::Status as S;
        let message = api::KvTablesInScopeRequest {
            scope: Some(api::ScopeInfo {
                scope: scope.to_owned(),
            }),
            continuation_token: Some(api::ContinuationToken {
                token: token.0.clone(),
            }),
        };
        let reply = self
            .call(
                "listKeyValueTablesInScope",
                Target::Scope(scope),
                message,
                |mut api, r| async move { api.list_key_value_tables_in_scope(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => {}
            Ok(S::ScopeNotFound) => return Err(ControllerError::scope_not_found(scope)),
            _ => {
                return Err(ControllerError::failure(
                    "listKeyValueTablesInScope",
                    reply.status,
                ))
            }
        }
        let items: Vec<KeyValueTableInfo> = reply
            .kvtables
            .into_iter()
            .map(|info| KeyValueTableInfo::new(info.scope, info.kvt_name))
            .collect();
        let next = match reply.continuation_token {
            Some(next) => ContinuationToken(next.token),
            None if items.is_empty() => ContinuationToken::start(),
            None => {
                return Err(ControllerError::internal(
                    "a listing page came without a continuation token",
                ))
            }
        };
        Ok(Page { items, next })
    }

    /// Every Key-Value Table of the scope, all pages.
    pub async fn list_key_value_tables(
        &self,
        scope: &str,
    ) -> Result<Vec<KeyValueTableInfo>, ControllerError> {
        all_pages(|token| async move { self.list_key_value_tables_page(scope, &token).await }).await
    }

    /// Deletes the table and its data: `true` if deleted, `false` if it did not exist.
    pub async fn delete_key_value_table(
        &self,
        table: &KeyValueTableInfo,
    ) -> Result<bool, ControllerError> {
        use api::delete_kv_table_status::Status as S;
        let stream = pseudo_stream(table);
        let reply = self
            .call(
                "deleteKeyValueTable",
                Target::Stream(&stream),
                table_info(table),
                |mut api, r| async move { api.delete_key_value_table(r).await },
            )
            .await?;
        match S::try_from(reply.status) {
            Ok(S::Success) => Ok(true),
            Ok(S::TableNotFound) => Ok(false),
            _ => Err(ControllerError::failure(
                "deleteKeyValueTable",
                reply.status,
            )),
        }
    }
}

fn table_info(table: &KeyValueTableInfo) -> api::KeyValueTableInfo {
    api::KeyValueTableInfo {
        scope: table.scope.clone(),
        kvt_name: table.name.clone(),
    }
}

/// What errors about the table are typed against (scope / table name).
fn pseudo_stream(table: &KeyValueTableInfo) -> ScopedStream {
    ScopedStream::new(table.scope.clone(), table.name.clone())
}

fn table_not_found(table: &KeyValueTableInfo) -> ControllerError {
    ControllerError::NotFound {
        message: format!("key-value table {table} does not exist"),
    }
}

fn configuration_from_api(
    config: &api::KeyValueTableConfig,
) -> Result<KeyValueTableConfiguration, ControllerError> {
    let to_u32 = |value: i32| {
        u32::try_from(value).map_err(|_| {
            ControllerError::internal(format!(
                "getKeyValueTableConfiguration answered a negative value {value}"
            ))
        })
    };
    Ok(KeyValueTableConfiguration {
        partition_count: to_u32(config.partition_count)?,
        primary_key_length: to_u32(config.primary_key_length)?,
        secondary_key_length: to_u32(config.secondary_key_length)?,
        rollover_size_bytes: u64::try_from(config.rollover_size_bytes).unwrap_or(0),
    })
}

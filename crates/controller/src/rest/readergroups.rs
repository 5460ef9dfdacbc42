//! Reader-group routes. The controller knows a group's configuration, not its readers: Java
//! readers keep the group's state in the group's `_RG` stream and Rust readers in a table
//! segment, neither through the controller. So `onlineReaderIds` is always empty.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::ApiError;
use super::extract::ApiPath;
use super::json::{ReaderGroupName, ReaderGroupProperty, ReaderGroupsList};
use crate::core::Controller;
use crate::error::ControllerError;

/// `GET /v1/scopes/{scope}/readergroups`: every group of the scope, through all pages.
pub async fn list(
    State(controller): State<Controller>,
    ApiPath(scope): ApiPath<String>,
) -> Result<Json<ReaderGroupsList>, ApiError> {
    let mut reader_groups = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = controller.list_reader_groups(&scope, &token).await?;
        if page.is_empty() {
            return Ok(Json(ReaderGroupsList { reader_groups }));
        }
        if next == token {
            return Err(ControllerError::Internal(
                "the reader-group listing did not advance".into(),
            )
            .into());
        }
        reader_groups.extend(page.into_iter().map(|group| ReaderGroupName {
            reader_group_name: group.name,
        }));
        token = next;
    }
}

/// `GET /v1/scopes/{scope}/readergroups/{group}`: 404 for a missing scope or group.
pub async fn get(
    State(controller): State<Controller>,
    ApiPath((scope, group)): ApiPath<(String, String)>,
) -> Result<Json<ReaderGroupProperty>, ApiError> {
    require_scope(&controller, &scope).await?;
    let Some(record) = controller.reader_group(&scope, &group).await? else {
        return Err(not_found(&scope, &group));
    };
    Ok(Json(ReaderGroupProperty {
        scope_name: record.scope,
        reader_group_name: record.name,
        stream_list: record.config.starting_cuts.into_keys().collect(),
        online_reader_ids: Vec::new(),
    }))
}

/// `DELETE /v1/scopes/{scope}/readergroups/{group}`: 204; 404 for a missing scope or group.
pub async fn delete(
    State(controller): State<Controller>,
    ApiPath((scope, group)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_scope(&controller, &scope).await?;
    if !controller.delete_reader_group(&scope, &group, None).await? {
        return Err(not_found(&scope, &group));
    }
    tracing::info!(scope, group, "reader group deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(scope: &str, group: &str) -> ApiError {
    ApiError::not_found(format!("reader group {scope}/{group} does not exist"))
}

async fn require_scope(controller: &Controller, scope: &str) -> Result<(), ApiError> {
    if controller.scope_exists(scope).await? {
        Ok(())
    } else {
        Err(ControllerError::ScopeNotFound(scope.to_owned()).into())
    }
}

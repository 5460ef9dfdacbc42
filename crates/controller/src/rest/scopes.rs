//! Scope routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use pravaha_types::validate_scope_name;

use super::error::ApiError;
use super::extract::{ApiPath, JsonBody};
use super::json::{ScopeProperty, ScopesList};
use crate::auth::{resource, Caller, Permission};
use crate::core::Controller;
use crate::error::ControllerError;

/// `GET /v1/scopes`: every scope, through all pages.
/// With users configured, only the scopes the caller may read.
pub async fn list(
    State(controller): State<Controller>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<ScopesList>, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let mut scopes = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = controller.list_scopes(&token).await?;
        if page.is_empty() {
            return Ok(Json(ScopesList { scopes }));
        }
        if next == token {
            return Err(
                ControllerError::Internal("the scope listing did not advance".into()).into(),
            );
        }
        scopes.extend(
            page.into_iter()
                .filter(|scope| {
                    controller.permission(caller.as_ref(), &resource::scope(scope))
                        >= Permission::Read
                })
                .map(|scope_name| ScopeProperty { scope_name }),
        );
        token = next;
    }
}

/// `POST /v1/scopes`: 201, 400 for a bad or internal (`_`) name, 409 if it exists.
pub async fn create(
    State(controller): State<Controller>,
    JsonBody(request): JsonBody<ScopeProperty>,
) -> Result<(StatusCode, Json<ScopeProperty>), ApiError> {
    let scope = &request.scope_name;
    validate_scope_name(scope, false).map_err(|error| ApiError::bad_request(error.to_string()))?;
    if !controller.create_scope(scope).await? {
        return Err(ApiError::conflict(format!("scope {scope} already exists")));
    }
    tracing::info!(scope, "scope created");
    Ok((StatusCode::CREATED, Json(request)))
}

/// `GET /v1/scopes/{scope}`.
pub async fn get(
    State(controller): State<Controller>,
    ApiPath(scope): ApiPath<String>,
) -> Result<Json<ScopeProperty>, ApiError> {
    require_scope(&controller, &scope).await?;
    Ok(Json(ScopeProperty { scope_name: scope }))
}

/// `DELETE /v1/scopes/{scope}`: 204, 404, 412 when it still has streams, reader groups or
/// Key-Value Tables.
pub async fn delete(
    State(controller): State<Controller>,
    ApiPath(scope): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !controller.delete_scope(&scope).await? {
        return Err(ControllerError::ScopeNotFound(scope).into());
    }
    tracing::info!(scope, "scope deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn require_scope(controller: &Controller, scope: &str) -> Result<(), ApiError> {
    if controller.scope_exists(scope).await? {
        Ok(())
    } else {
        Err(ControllerError::ScopeNotFound(scope.to_owned()).into())
    }
}

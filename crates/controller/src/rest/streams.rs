//! Stream routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use pravaha_types::{validate_stream_name, INTERNAL_NAME_PREFIX};
use serde::Deserialize;

use super::convert::events_in_window;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::json::{
    ScalingEventList, StreamProperty, StreamRequest, StreamStateBody, StreamsList, SEALED,
};
use crate::auth::{resource, Caller, Permission};
use crate::core::Controller;
use crate::error::ControllerError;
use crate::model::StreamRecord;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    filter_type: Option<String>,
    filter_value: Option<String>,
}

/// Which streams `GET .../streams` answers with.
#[derive(Debug, PartialEq, Eq)]
enum Filter {
    /// Names not starting with `_` (the default).
    User,
    /// Only names starting with `_` (`filter_type=showInternalStreams`).
    Internal,
    /// Streams with this tag, whatever their name (`filter_type=tag&filter_value=T`).
    Tag(String),
}

impl Filter {
    fn parse(query: ListQuery) -> Result<Self, ApiError> {
        match (query.filter_type.as_deref(), query.filter_value) {
            (None, _) => Ok(Self::User),
            (Some("showInternalStreams"), _) => Ok(Self::Internal),
            (Some("tag"), Some(tag)) => Ok(Self::Tag(tag)),
            (Some("tag"), None) => Err(ApiError::bad_request(
                "filter_type=tag needs the tag in filter_value",
            )),
            (Some(other), _) => Err(ApiError::bad_request(format!(
                "unknown filter_type {other:?}; expected showInternalStreams or tag"
            ))),
        }
    }

    fn keeps(&self, record: &StreamRecord) -> bool {
        let internal = record.name.starts_with(INTERNAL_NAME_PREFIX);
        match self {
            Self::User => !internal,
            Self::Internal => internal,
            // `list_streams` already selected by tag.
            Self::Tag(_) => true,
        }
    }
}

/// `GET /v1/scopes/{scope}/streams[?filter_type=...]`: every matching stream, through all
/// pages of `list_streams`.
pub async fn list(
    State(controller): State<Controller>,
    caller: Option<Extension<Caller>>,
    ApiPath(scope): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<StreamsList>, ApiError> {
    let caller = caller.map(|Extension(caller)| caller);
    let filter = Filter::parse(query)?;
    let tag = match &filter {
        Filter::Tag(tag) => Some(tag.as_str()),
        Filter::User | Filter::Internal => None,
    };
    let mut streams = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = controller.list_streams(&scope, &token, tag).await?;
        if page.is_empty() {
            return Ok(Json(StreamsList { streams }));
        }
        if next == token {
            return Err(
                ControllerError::Internal("the stream listing did not advance".into()).into(),
            );
        }
        streams.extend(
            page.iter()
                .filter(|record| filter.keeps(record))
                .filter(|record| {
                    let stream = resource::stream(&record.scope, &record.name);
                    controller.permission(caller.as_ref(), &stream) >= Permission::Read
                })
                .map(|record| StreamProperty::new(&record.scope, &record.name, &record.config)),
        );
        token = next;
    }
}

/// `POST /v1/scopes/{scope}/streams`: 201, 400 (name, policy), 404 (scope), 409 (exists).
pub async fn create(
    State(controller): State<Controller>,
    ApiPath(scope): ApiPath<String>,
    JsonBody(request): JsonBody<StreamRequest>,
) -> Result<(StatusCode, Json<StreamProperty>), ApiError> {
    let Some(stream) = request.stream_name.as_deref() else {
        return Err(ApiError::bad_request("streamName is required"));
    };
    validate_stream_name(stream, false)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let config = request.to_config().map_err(ApiError::bad_request)?;
    if !controller
        .create_stream(&scope, stream, config.clone())
        .await?
    {
        return Err(ApiError::conflict(format!(
            "stream {scope}/{stream} already exists"
        )));
    }
    tracing::info!(scope, stream, "stream created");
    Ok((
        StatusCode::CREATED,
        Json(StreamProperty::new(&scope, stream, &config)),
    ))
}

/// `GET /v1/scopes/{scope}/streams/{stream}`.
pub async fn get(
    State(controller): State<Controller>,
    ApiPath((scope, stream)): ApiPath<(String, String)>,
) -> Result<Json<StreamProperty>, ApiError> {
    let record = controller.stream(&scope, &stream).await?;
    Ok(Json(StreamProperty::new(
        &record.scope,
        &record.name,
        &record.config,
    )))
}

/// `PUT /v1/scopes/{scope}/streams/{stream}`: replaces the whole configuration (missing
/// fields take their defaults, as in Pravega).
pub async fn update(
    State(controller): State<Controller>,
    ApiPath((scope, stream)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<StreamRequest>,
) -> Result<Json<StreamProperty>, ApiError> {
    if let Some(named) = request.stream_name.as_deref().filter(|n| *n != stream) {
        return Err(ApiError::bad_request(format!(
            "the body names stream {named:?} but the path names {stream:?}"
        )));
    }
    let config = request.to_config().map_err(ApiError::bad_request)?;
    controller
        .update_stream(&scope, &stream, config.clone())
        .await?;
    tracing::info!(scope, stream, "stream updated");
    Ok(Json(StreamProperty::new(&scope, &stream, &config)))
}

/// `DELETE /v1/scopes/{scope}/streams/{stream}`: 204, 404, 412 when not sealed.
pub async fn delete(
    State(controller): State<Controller>,
    ApiPath((scope, stream)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !controller.delete_stream(&scope, &stream).await? {
        return Err(ControllerError::StreamNotFound { scope, stream }.into());
    }
    tracing::info!(scope, stream, "stream deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/scopes/{scope}/streams/{stream}/state`: only `{"streamState":"SEALED"}`.
pub async fn update_state(
    State(controller): State<Controller>,
    ApiPath((scope, stream)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<StreamStateBody>,
) -> Result<Json<StreamStateBody>, ApiError> {
    if request.stream_state != SEALED {
        return Err(ApiError::bad_request(format!(
            "streamState {:?} cannot be set; only {SEALED} can",
            request.stream_state
        )));
    }
    controller.seal_stream(&scope, &stream).await?;
    tracing::info!(scope, stream, "stream sealed");
    Ok(Json(request))
}

#[derive(Debug, Deserialize)]
pub struct WindowQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/scopes/{scope}/streams/{stream}/scaling-events?from=ms&to=ms`.
pub async fn scaling_events(
    State(controller): State<Controller>,
    ApiPath((scope, stream)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Json<ScalingEventList>, ApiError> {
    let from_ms = time_parameter("from", query.from.as_deref())?;
    let to_ms = time_parameter("to", query.to.as_deref())?;
    if from_ms > to_ms {
        return Err(ApiError::bad_request(format!(
            "from ({from_ms}) is after to ({to_ms})"
        )));
    }
    // From the beginning: the event before the window belongs in the answer too.
    let events = controller.scaling_events(&scope, &stream, 0, to_ms).await?;
    Ok(Json(ScalingEventList {
        scaling_events: events_in_window(&events, from_ms, to_ms),
    }))
}

fn time_parameter(name: &str, value: Option<&str>) -> Result<i64, ApiError> {
    let Some(value) = value else {
        return Err(ApiError::bad_request(format!(
            "the query parameter {name} (ms since 1970) is required"
        )));
    };
    match value.parse::<i64>() {
        Ok(ms) if ms >= 0 => Ok(ms),
        _ => Err(ApiError::bad_request(format!(
            "{name}={value:?} is not a non-negative number of milliseconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(filter_type: Option<&str>, filter_value: Option<&str>) -> Result<Filter, ApiError> {
        Filter::parse(ListQuery {
            filter_type: filter_type.map(str::to_owned),
            filter_value: filter_value.map(str::to_owned),
        })
    }

    #[test]
    fn list_filters_are_parsed() {
        assert_eq!(filter(None, None).unwrap(), Filter::User);
        assert_eq!(
            filter(Some("showInternalStreams"), None).unwrap(),
            Filter::Internal
        );
        assert_eq!(
            filter(Some("tag"), Some("t")).unwrap(),
            Filter::Tag("t".into())
        );
        assert!(filter(Some("tag"), None).is_err());
        assert!(filter(Some("everything"), None).is_err());
    }

    #[test]
    fn time_parameters_are_non_negative_numbers() {
        assert_eq!(time_parameter("from", Some("0")).unwrap(), 0);
        assert_eq!(
            time_parameter("from", Some("1700000000000")).unwrap(),
            1_700_000_000_000
        );
        for bad in [None, Some("-1"), Some("soon"), Some("")] {
            assert_eq!(
                time_parameter("from", bad).unwrap_err().status,
                StatusCode::BAD_REQUEST
            );
        }
    }
}

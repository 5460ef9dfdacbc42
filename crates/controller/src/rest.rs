//! Pravega's Controller REST admin API (default port 9091, base path `/v1`), JSON in and out,
//! over [`Controller`]'s public operations. Routes, shapes and statuses follow Pravega's
//! `Controller.yaml`; `docs/controller.md` lists them and what is not supported yet.
//!
//! - Errors are `{"code": <status>, "message": "..."}`; [`error::status_of`] maps every
//!   controller failure to its status.
//! - With users configured ([`crate::auth`]), every route but `/v1/health*` needs Basic
//!   credentials (401 otherwise) and the permission Pravega's controller asks for on the
//!   resource the route names (403 otherwise, see [`needed_permission`]); lists show only what
//!   the caller may read. Without users, an `Authorization` header is ignored.
//! - Reader groups are the controller's records; their online readers are not known to it.
//! - `GET /v1/openapi.json` serves an OpenAPI 3 description of exactly these routes.

mod convert;
mod error;
mod extract;
mod health;
mod json;
mod readergroups;
mod scopes;
mod streams;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Router;

use crate::auth::{resource, Caller, Permission};
use crate::core::Controller;
use error::ApiError;

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("rest/openapi.json");

/// Largest request body accepted (a stream request with 128 tags of 256 bytes is ~40 KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The REST API's routes over `controller`.
pub fn router(controller: Controller) -> Router {
    Router::new()
        .route("/v1/scopes", get(scopes::list).post(scopes::create))
        .route(
            "/v1/scopes/{scope}",
            get(scopes::get).delete(scopes::delete),
        )
        .route(
            "/v1/scopes/{scope}/streams",
            get(streams::list).post(streams::create),
        )
        .route(
            "/v1/scopes/{scope}/streams/{stream}",
            get(streams::get)
                .put(streams::update)
                .delete(streams::delete),
        )
        .route(
            "/v1/scopes/{scope}/streams/{stream}/state",
            put(streams::update_state),
        )
        .route(
            "/v1/scopes/{scope}/streams/{stream}/scaling-events",
            get(streams::scaling_events),
        )
        .route("/v1/scopes/{scope}/readergroups", get(readergroups::list))
        .route(
            "/v1/scopes/{scope}/readergroups/{group}",
            get(readergroups::get).delete(readergroups::delete),
        )
        .route("/v1/health", get(health::health))
        .route("/v1/health/status", get(health::status))
        .route("/v1/health/readiness", get(health::readiness))
        .route("/v1/health/liveness", get(health::liveness))
        .route("/v1/health/details", get(health::details))
        .route("/v1/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            controller.clone(),
            require_credentials,
        ))
        .with_state(controller)
}

/// The permission a route needs, and on what, as Pravega's REST API asks for it; `None` for
/// routes that need only valid credentials (and unknown routes, which answer 404 or 405).
/// Path segments are percent-decoded as the router decodes them for the handlers, so that
/// `/v1/scopes/%62ank` is checked as scope `bank`; one that does not decode needs
/// `READ_UPDATE` on everything.
fn needed_permission(method: &Method, path: &str) -> Option<(String, Permission)> {
    use Permission::{Read, ReadUpdate};
    let decoded: Result<Vec<String>, _> = path
        .strip_prefix("/v1/")?
        .split('/')
        .map(|part| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|text| text.into_owned())
        })
        .collect();
    let Ok(decoded) = decoded else {
        return Some(("prn::*".to_owned(), ReadUpdate));
    };
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let read_or_update = |resource: String| {
        let needed = if method == Method::GET {
            Read
        } else {
            ReadUpdate
        };
        Some((resource, needed))
    };
    match parts.as_slice() {
        ["health", "details", ..] => Some((resource::root(), ReadUpdate)),
        ["scopes"] => read_or_update(resource::root()),
        ["scopes", scope] if method == Method::GET => Some((resource::scope(scope), Read)),
        ["scopes", _] => Some((resource::root(), ReadUpdate)),
        ["scopes", scope, "streams"] | ["scopes", scope, "readergroups"] => {
            read_or_update(resource::scope(scope))
        }
        ["scopes", scope, "streams", stream, ..] => read_or_update(resource::stream(scope, stream)),
        ["scopes", scope, "readergroups", group] => {
            read_or_update(resource::reader_group(scope, group))
        }
        _ => None,
    }
}

/// Refuses calls without valid credentials (401) or without the permission their route needs
/// (403) when users are configured; puts the [`Caller`] in the request for the handlers. Health
/// routes (but details) stay open, for liveness and readiness probes.
async fn require_credentials(
    axum::extract::State(controller): axum::extract::State<Controller>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(users) = &controller.config().users else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    if path.starts_with("/v1/health") && !path.starts_with("/v1/health/details") {
        return next.run(request).await;
    }
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    match users.authenticate(header) {
        Ok(user) => {
            let caller = Caller(user);
            if let Some((resource, needed)) = needed_permission(request.method(), &path) {
                if let Err(denied) = controller.authorize(Some(&caller), &resource, needed) {
                    return ApiError::new(StatusCode::FORBIDDEN, denied.to_string())
                        .into_response();
                }
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(failure) => {
            let mut response =
                ApiError::new(StatusCode::UNAUTHORIZED, failure.to_string()).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"pravaha\""),
            );
            response
        }
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_what_pravega_asks_for() {
        use Permission::{Read, ReadUpdate};
        let cases = [
            (Method::GET, "/v1/scopes", Some(("prn::/", Read))),
            (Method::POST, "/v1/scopes", Some(("prn::/", ReadUpdate))),
            (Method::GET, "/v1/scopes/a", Some(("prn::/scope:a", Read))),
            (Method::DELETE, "/v1/scopes/a", Some(("prn::/", ReadUpdate))),
            (
                Method::GET,
                "/v1/scopes/a/streams",
                Some(("prn::/scope:a", Read)),
            ),
            (
                Method::POST,
                "/v1/scopes/a/streams",
                Some(("prn::/scope:a", ReadUpdate)),
            ),
            (
                Method::GET,
                "/v1/scopes/a/streams/b",
                Some(("prn::/scope:a/stream:b", Read)),
            ),
            (
                Method::PUT,
                "/v1/scopes/a/streams/b",
                Some(("prn::/scope:a/stream:b", ReadUpdate)),
            ),
            (
                Method::PUT,
                "/v1/scopes/a/streams/b/state",
                Some(("prn::/scope:a/stream:b", ReadUpdate)),
            ),
            (
                Method::GET,
                "/v1/scopes/a/streams/b/scaling-events",
                Some(("prn::/scope:a/stream:b", Read)),
            ),
            (
                Method::GET,
                "/v1/scopes/a/readergroups",
                Some(("prn::/scope:a", Read)),
            ),
            (
                Method::DELETE,
                "/v1/scopes/a/readergroups/g",
                Some(("prn::/scope:a/reader-group:g", ReadUpdate)),
            ),
            (
                Method::GET,
                "/v1/health/details",
                Some(("prn::/", ReadUpdate)),
            ),
            (Method::GET, "/v1/openapi.json", None),
            // Checked on the names the handlers see.
            (
                Method::DELETE,
                "/v1/scopes/s/streams/%62ank",
                Some(("prn::/scope:s/stream:bank", ReadUpdate)),
            ),
            (Method::GET, "/v1/scopes/%ff", Some(("prn::*", ReadUpdate))),
            (Method::GET, "/v2/anything", None),
        ];
        for (method, path, expected) in cases {
            let needed = needed_permission(&method, path);
            let expected = expected.map(|(resource, permission)| (resource.to_owned(), permission));
            assert_eq!(needed, expected, "{method} {path}");
        }
    }

    #[test]
    fn the_openapi_document_is_json_of_version_3() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        assert!(document["paths"].as_object().unwrap().len() > 10);
    }
}

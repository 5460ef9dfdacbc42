//! Health routes. The controller is `UP` (ready and alive) when it can read its metadata
//! table within [`PROBE_TIMEOUT`], and `DOWN` otherwise; every answer is a 200, as in Pravega,
//! with the outcome in the body.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::Json;

use super::json::{HealthResult, HealthStatus};
use crate::core::Controller;
use crate::metadata::METADATA_TABLE;

/// Bound on one probe of the metadata table.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The scope the probe looks up; any answer, found or not, shows the metadata is readable.
const PROBE_SCOPE: &str = "_system";

const NAME: &str = "controller";

/// `GET /v1/health`.
pub async fn health(State(controller): State<Controller>) -> Json<HealthResult> {
    Json(probe(&controller).await)
}

/// `GET /v1/health/status`: `"UP"` or `"DOWN"`.
pub async fn status(State(controller): State<Controller>) -> Json<HealthStatus> {
    Json(probe(&controller).await.status)
}

/// `GET /v1/health/readiness`: `true` or `false`.
pub async fn readiness(State(controller): State<Controller>) -> Json<bool> {
    Json(probe(&controller).await.readiness)
}

/// `GET /v1/health/liveness`: `true` or `false`.
pub async fn liveness(State(controller): State<Controller>) -> Json<bool> {
    Json(probe(&controller).await.liveness)
}

/// `GET /v1/health/details`: a map of strings.
pub async fn details(State(controller): State<Controller>) -> Json<BTreeMap<String, String>> {
    Json(probe(&controller).await.details)
}

async fn probe(controller: &Controller) -> HealthResult {
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, controller.scope_exists(PROBE_SCOPE)).await;
    let failure = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!(
            "reading the metadata table timed out after {PROBE_TIMEOUT:?}"
        )),
    };
    if let Some(failure) = &failure {
        tracing::warn!(%failure, "health probe failed");
    }
    result(failure)
}

/// The health answer for a probe that failed with `failure`, or succeeded.
fn result(failure: Option<String>) -> HealthResult {
    let up = failure.is_none();
    let mut details = BTreeMap::from([("metadataTable".to_owned(), METADATA_TABLE.to_owned())]);
    if let Some(failure) = failure {
        details.insert("error".to_owned(), failure);
    }
    HealthResult {
        name: NAME.to_owned(),
        status: if up {
            HealthStatus::Up
        } else {
            HealthStatus::Down
        },
        readiness: up,
        liveness: up,
        details,
        children: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_probe_is_down_with_the_reason() {
        let up = serde_json::to_value(result(None)).unwrap();
        assert_eq!(up["status"], "UP");
        assert_eq!(up["readiness"], true);
        assert_eq!(up["children"], serde_json::json!({}));
        let down = serde_json::to_value(result(Some("no store".into()))).unwrap();
        assert_eq!(down["status"], "DOWN");
        assert_eq!(down["liveness"], false);
        assert_eq!(down["details"]["error"], "no store");
    }
}

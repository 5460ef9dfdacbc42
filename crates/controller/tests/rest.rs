//! The REST admin API over real HTTP on 127.0.0.1, checked against the controller's metadata
//! and the segments on the segment store. Helpers, scopes, reader groups, health and the
//! OpenAPI document here; streams in `rest/streams.rs`.

mod common;

#[path = "rest/streams.rs"]
mod streams;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use common::{Cluster, TIMEOUT};
use pravaha_controller::model::{ScalingPolicy, StreamConfig};
use pravaha_controller::readergroups::{GroupRetention, ReaderGroupConfig};
use pravaha_segment_client::ClientError;
use reqwest::Method;
use serde_json::{json, Value};

/// Bounds a whole test.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(4 * TIMEOUT, test)
        .await
        .expect("the test timed out")
}

/// One request: the status and the JSON body (`Null` when empty).
async fn call(cluster: &Cluster, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http().request(method, cluster.rest_url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    (status, body)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(TIMEOUT).build().unwrap()
}

async fn get(cluster: &Cluster, path: &str) -> (u16, Value) {
    call(cluster, Method::GET, path, None).await
}

/// Asserts an error answer: the status, and the JSON error carrying it.
fn assert_error((status, body): (u16, Value), expected: u16) -> String {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], expected, "{body}");
    body["message"]
        .as_str()
        .expect("an error message")
        .to_owned()
}

fn fixed(segments: i32) -> StreamConfig {
    StreamConfig {
        scaling: ScalingPolicy::fixed(segments),
        retention: None,
        tags: vec![],
        timestamp_aggregation_timeout_ms: 0,
        rollover_size_bytes: 0,
    }
}

async fn scope_with_stream(cluster: &Cluster, scope: &str, stream: &str, segments: i32) {
    cluster.controller.create_scope(scope).await.unwrap();
    assert!(cluster
        .controller
        .create_stream(scope, stream, fixed(segments))
        .await
        .unwrap());
}

/// Whether the segment is sealed on the segment store (an error if it does not exist).
async fn sealed(cluster: &Cluster, segment: &str) -> Result<bool, ClientError> {
    cluster
        .segments
        .segment_info(cluster.segment_store_addr(), segment, "")
        .await
        .map(|info| info.sealed)
}

fn names(list: &Value, field: &str, name: &str) -> BTreeSet<String> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[name].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_created_listed_and_deleted() {
    within(async {
        // A page size of 2 makes the listing span pages.
        let cluster = Cluster::start_with(|config| config.page_size = 2).await;
        for scope in ["sc1", "sc2", "sc3"] {
            let created = call(
                &cluster,
                Method::POST,
                "/v1/scopes",
                Some(json!({"scopeName": scope})),
            )
            .await;
            assert_eq!(created, (201, json!({"scopeName": scope})));
            assert!(cluster.controller.scope_exists(scope).await.unwrap());
        }
        let (status, list) = get(&cluster, "/v1/scopes").await;
        assert_eq!(status, 200);
        assert!(names(&list, "scopes", "scopeName").is_superset(&set(&["sc1", "sc2", "sc3"])));
        assert_eq!(
            get(&cluster, "/v1/scopes/sc1").await,
            (200, json!({"scopeName": "sc1"}))
        );

        let (status, body) = call(&cluster, Method::DELETE, "/v1/scopes/sc1", None).await;
        assert_eq!((status, body), (204, Value::Null));
        assert!(!cluster.controller.scope_exists("sc1").await.unwrap());
        assert_error(get(&cluster, "/v1/scopes/sc1").await, 404);
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_errors_have_pravegas_statuses() {
    within(async {
        let cluster = Cluster::start().await;
        let create = |body: Value| call(&cluster, Method::POST, "/v1/scopes", Some(body));
        assert_eq!(create(json!({"scopeName": "sc"})).await.0, 201);
        assert_error(create(json!({"scopeName": "sc"})).await, 409);
        for bad in ["bad name", "_internal", "", "a/b"] {
            assert_error(create(json!({"scopeName": bad})).await, 400);
        }
        assert_error(create(json!({})).await, 400);
        assert_error(create(json!({"scopeName": "x", "extra": 1})).await, 400);
        let malformed = http()
            .post(cluster.rest_url("/v1/scopes"))
            .header("content-type", "application/json")
            .body("{\"scopeName\": ");
        let message = assert_error(answer(malformed).await, 400);
        assert!(message.contains("JSON"), "{message}");

        assert_error(get(&cluster, "/v1/scopes/missing").await, 404);
        assert_error(
            call(&cluster, Method::DELETE, "/v1/scopes/missing", None).await,
            404,
        );
        // Not empty: 412 until its stream is sealed and deleted.
        assert!(cluster
            .controller
            .create_stream("sc", "st", fixed(1))
            .await
            .unwrap());
        assert_error(
            call(&cluster, Method::DELETE, "/v1/scopes/sc", None).await,
            412,
        );
        cluster.controller.seal_stream("sc", "st").await.unwrap();
        assert!(cluster.controller.delete_stream("sc", "st").await.unwrap());
        assert_eq!(
            call(&cluster, Method::DELETE, "/v1/scopes/sc", None)
                .await
                .0,
            204
        );
        cluster.stop().await;
    })
    .await;
}

/// A reader group reading `streams` (scoped names) from their heads, not a subscriber.
fn group_config(streams: &[&str]) -> ReaderGroupConfig {
    ReaderGroupConfig {
        group_refresh_time_ms: 3000,
        automatic_checkpoint_interval_ms: 30_000,
        max_outstanding_checkpoint_request: 3,
        retention: GroupRetention::None,
        generation: 0,
        starting_cuts: streams
            .iter()
            .map(|s| ((*s).to_owned(), BTreeMap::new()))
            .collect(),
        ending_cuts: BTreeMap::new(),
        rollover_size_bytes: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_groups_are_listed_shown_and_deleted() {
    within(async {
        // A page size of 2 makes the listing span pages.
        let cluster = Cluster::start_with(|config| config.page_size = 2).await;
        scope_with_stream(&cluster, "sc", "st", 1).await;
        let listed = get(&cluster, "/v1/scopes/sc/readergroups").await;
        assert_eq!(listed, (200, json!({"readerGroups": []})));
        for group in ["rg1", "rg2", "rg3"] {
            cluster
                .controller
                .create_reader_group("sc", group, "", group_config(&["sc/st", "other/st"]))
                .await
                .unwrap();
        }
        let (status, list) = get(&cluster, "/v1/scopes/sc/readergroups").await;
        assert_eq!(status, 200);
        assert_eq!(
            names(&list, "readerGroups", "readerGroupName"),
            set(&["rg1", "rg2", "rg3"])
        );
        assert_eq!(
            get(&cluster, "/v1/scopes/sc/readergroups/rg2").await,
            (
                200,
                json!({
                    "scopeName": "sc",
                    "readerGroupName": "rg2",
                    "streamList": ["other/st", "sc/st"],
                    "onlineReaderIds": [],
                })
            )
        );
        // Its `_RG` stream is internal: not among the scope's streams by default.
        let (_, streams) = get(&cluster, "/v1/scopes/sc/streams").await;
        assert_eq!(names(&streams, "streams", "streamName"), set(&["st"]));

        let (status, body) = call(
            &cluster,
            Method::DELETE,
            "/v1/scopes/sc/readergroups/rg2",
            None,
        )
        .await;
        assert_eq!((status, body), (204, Value::Null));
        assert!(cluster
            .controller
            .reader_group("sc", "rg2")
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            sealed(&cluster, "sc/_RGrg2/0.#epoch.0").await,
            Err(ClientError::NoSuchSegment(_))
        ));
        for method in [Method::GET, Method::DELETE] {
            for path in [
                "/v1/scopes/sc/readergroups/rg2",
                "/v1/scopes/missing/readergroups/rg1",
            ] {
                let message = assert_error(call(&cluster, method.clone(), path, None).await, 404);
                assert!(message.contains("does not exist"), "{message}");
            }
        }
        assert_error(get(&cluster, "/v1/scopes/missing/readergroups").await, 404);
        // A scope with reader groups is not empty.
        assert_error(
            call(&cluster, Method::DELETE, "/v1/scopes/sc", None).await,
            412,
        );
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_metadata_store() {
    within(async {
        let mut cluster = Cluster::start().await;
        let (status, health) = get(&cluster, "/v1/health").await;
        assert_eq!(status, 200);
        assert_eq!(health["name"], "controller");
        assert_eq!(health["status"], "UP");
        assert_eq!(
            (health["readiness"].clone(), health["liveness"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(health["children"], json!({}));
        assert_eq!(get(&cluster, "/v1/health/status").await, (200, json!("UP")));
        assert_eq!(
            get(&cluster, "/v1/health/readiness").await,
            (200, json!(true))
        );
        assert_eq!(
            get(&cluster, "/v1/health/liveness").await,
            (200, json!(true))
        );
        let (status, details) = get(&cluster, "/v1/health/details").await;
        assert_eq!(status, 200);
        assert!(details["metadataTable"].is_string(), "{details}");
        assert!(details.get("error").is_none(), "{details}");

        // Without its segment store the controller cannot read its metadata.
        cluster.segment_server.take().unwrap().shutdown().await;
        cluster.store.shutdown().await;
        assert_eq!(
            get(&cluster, "/v1/health/status").await,
            (200, json!("DOWN"))
        );
        assert_eq!(
            get(&cluster, "/v1/health/readiness").await,
            (200, json!(false))
        );
        assert_eq!(
            get(&cluster, "/v1/health/liveness").await,
            (200, json!(false))
        );
        let (_, health) = get(&cluster, "/v1/health").await;
        assert_eq!(health["status"], "DOWN");
        assert!(health["details"]["error"].is_string(), "{health}");
        // And metadata failures are 500s with the reason.
        let message = assert_error(get(&cluster, "/v1/scopes").await, 500);
        assert!(message.contains("metadata"), "{message}");
        if let Some(server) = cluster.server.take() {
            server.shutdown().await;
        }
    })
    .await;
}

/// Every route of the API, as (method, path) in the OpenAPI document.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/scopes"),
    ("post", "/scopes"),
    ("get", "/scopes/{scopeName}"),
    ("delete", "/scopes/{scopeName}"),
    ("get", "/scopes/{scopeName}/streams"),
    ("post", "/scopes/{scopeName}/streams"),
    ("get", "/scopes/{scopeName}/streams/{streamName}"),
    ("put", "/scopes/{scopeName}/streams/{streamName}"),
    ("delete", "/scopes/{scopeName}/streams/{streamName}"),
    ("put", "/scopes/{scopeName}/streams/{streamName}/state"),
    (
        "get",
        "/scopes/{scopeName}/streams/{streamName}/scaling-events",
    ),
    ("get", "/scopes/{scopeName}/readergroups"),
    ("get", "/scopes/{scopeName}/readergroups/{readerGroupName}"),
    (
        "delete",
        "/scopes/{scopeName}/readergroups/{readerGroupName}",
    ),
    ("get", "/health"),
    ("get", "/health/status"),
    ("get", "/health/readiness"),
    ("get", "/health/liveness"),
    ("get", "/health/details"),
    ("get", "/openapi.json"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_the_served_routes() {
    within(async {
        let cluster = Cluster::start().await;
        let response = http()
            .get(cluster.rest_url("/v1/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let document: Value = response.json().await.unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        assert_eq!(document["servers"][0]["url"], "/v1");
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(operation["responses"].is_object(), "{method} {path}");
                documented.insert((method.clone(), path.clone()));
            }
        }
        let expected: BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, expected);
        // Every schema reference resolves.
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let pointer = reference.split('"').next().unwrap().trim_start_matches('#');
            assert!(document.pointer(pointer).is_some(), "{pointer}");
        }

        // Every documented route is served (not the fallbacks); none of these calls change
        // anything, as the scope does not exist.
        for (method, path) in ROUTES {
            let concrete = path
                .replace("{scopeName}", "no-such-scope")
                .replace("{streamName}", "st")
                .replace("{readerGroupName}", "rg");
            let query = if concrete.ends_with("scaling-events") {
                "?from=0&to=1"
            } else {
                ""
            };
            let method: Method = method.to_uppercase().parse().unwrap();
            let request = http()
                .request(
                    method.clone(),
                    cluster.rest_url(&format!("/v1{concrete}{query}")),
                )
                .json(&json!({}));
            let (status, body) = answer(request).await;
            assert_ne!(status, 405, "{method} {concrete}");
            let unrouted = body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("no route"));
            assert!(!unrouted, "{method} {concrete}: {body}");
        }
        cluster.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_json_errors_and_auth_is_ignored() {
    within(async {
        let cluster = Cluster::start().await;
        let message = assert_error(get(&cluster, "/v1/nothing").await, 404);
        assert!(message.starts_with("no route"), "{message}");
        assert_error(call(&cluster, Method::PATCH, "/v1/scopes", None).await, 405);
        assert_error(
            call(&cluster, Method::DELETE, "/v1/health", None).await,
            405,
        );
        // An Authorization header is accepted and ignored.
        let request = http()
            .post(cluster.rest_url("/v1/scopes"))
            .header("authorization", "Basic YWRtaW46MTExMV9hYWFh")
            .json(&json!({"scopeName": "authorized"}));
        assert_eq!(answer(request).await.0, 201);
        assert!(cluster.controller.scope_exists("authorized").await.unwrap());
        cluster.stop().await;
    })
    .await;
}

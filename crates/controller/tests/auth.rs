//! Credentials at the controller: with a password file, gRPC calls without valid Basic
//! credentials are refused as UNAUTHENTICATED and REST calls with 401; valid ones work, and
//! health stays open. Real listeners on 127.0.0.1.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use common::Cluster;
use pravaha_controller::auth::{hash_password, Users};
use pravaha_controller_api::v1 as api;

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn cluster_with_users() -> Cluster {
    let file = format!(
        "# Pravega's format: user:digest:acl\nadmin:{}:prn::*,READ_UPDATE\n",
        hash_password("1111_aaaa")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    std::fs::write(&path, file).unwrap();
    let users = Arc::new(Users::load(&path).unwrap());
    Cluster::start_with(move |config| config.users = Some(users)).await
}

fn with_authorization<T>(message: T, header: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(header) = header {
        request
            .metadata_mut()
            .insert("authorization", header.parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_need_valid_credentials() {
    let cluster = cluster_with_users().await;
    let mut client = cluster.grpc().await;
    let scope = |name: &str| api::ScopeInfo {
        scope: name.to_owned(),
    };
    let wrong = basic("admin", "wrong");
    let stranger = basic("nobody", "1111_aaaa");
    for header in [
        None,
        Some(wrong.as_str()),
        Some(stranger.as_str()),
        Some("Bearer x"),
    ] {
        let refused = client
            .create_scope(with_authorization(scope("refused"), header))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{header:?}");
    }
    assert!(!cluster.controller.scope_exists("refused").await.unwrap());
    let admin = basic("admin", "1111_aaaa");
    let created = client
        .create_scope(with_authorization(scope("granted"), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.status(), api::create_scope_status::Status::Success);
    assert!(cluster.controller.scope_exists("granted").await.unwrap());
    // Delegation tokens are handed out only to authenticated callers too.
    let request = api::StreamInfo {
        scope: "granted".into(),
        stream: "s".into(),
        ..Default::default()
    };
    let refused = client
        .get_delegation_token(with_authorization(request.clone(), None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    client
        .get_delegation_token(with_authorization(request, Some(&admin)))
        .await
        .unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_calls_need_valid_credentials_but_health_is_open() {
    let cluster = cluster_with_users().await;
    let http = reqwest::Client::new();
    let create = |header: Option<String>| {
        let mut request = http
            .post(cluster.rest_url("/v1/scopes"))
            .json(&serde_json::json!({"scopeName": "web"}));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        request.send()
    };
    for header in [None, Some(basic("admin", "wrong"))] {
        let response = create(header.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{header:?}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"pravaha\""
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], 401);
    }
    assert!(!cluster.controller.scope_exists("web").await.unwrap());
    let response = create(Some(basic("admin", "1111_aaaa"))).await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert!(cluster.controller.scope_exists("web").await.unwrap());
    let health = http
        .get(cluster.rest_url("/v1/health/liveness"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    cluster.stop().await;
}

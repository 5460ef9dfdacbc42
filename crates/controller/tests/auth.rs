//! Credentials and permissions at the controller: with a password file, gRPC calls without
//! valid Basic credentials are refused as UNAUTHENTICATED and REST calls with 401; calls the
//! user's ACL does not allow get PERMISSION_DENIED / 403; lists show only what the user may
//! read; delegation tokens grant what was asked for and allowed; health stays open. Real
//! listeners on 127.0.0.1.

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

/// `admin` may do everything; `reader` may read scope `shop` and what is in it (and list
/// scopes); `writer` may also update `shop/orders`, and create streams in `shop`.
fn users() -> Arc<Users> {
    let file = format!(
        "# Pravega's format: user:digest:acl\n\
         admin:{}:prn::*,READ_UPDATE\n\
         reader:{}:prn::/,READ;prn::/scope:shop,READ;prn::/scope:shop/*,READ\n\
         writer:{}:prn::/,READ;prn::/scope:shop/stream:orders,READ_UPDATE;\
         prn::/scope:shop,READ_UPDATE;prn::/scope:shop/*,READ\n",
        hash_password("1111_aaaa"),
        hash_password("r"),
        hash_password("w"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    std::fs::write(&path, file).unwrap();
    Arc::new(Users::load(&path).unwrap())
}

async fn cluster_with_users() -> Cluster {
    let users = users();
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

/// The claims of a delegation token (a JWT), unverified.
fn token_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_need_the_permission_the_acl_grants() {
    use api::stream_info::AccessOperation;
    let users = users();
    let cluster = Cluster::start_with(move |config| {
        config.users = Some(users);
        config.token_signing_key = Some(b"acl-test-key".to_vec());
    })
    .await;
    let mut client = cluster.grpc().await;
    let admin = basic("admin", "1111_aaaa");
    let reader = basic("reader", "r");
    let writer = basic("writer", "w");
    for scope in ["shop", "other"] {
        let info = api::ScopeInfo {
            scope: scope.into(),
        };
        client
            .create_scope(with_authorization(info, Some(&admin)))
            .await
            .unwrap();
    }
    let stream_config = |stream: &str| api::StreamConfig {
        stream_info: Some(api::StreamInfo {
            scope: "shop".into(),
            stream: stream.into(),
            ..Default::default()
        }),
        scaling_policy: Some(api::ScalingPolicy {
            min_num_segments: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    // Creating a stream needs READ_UPDATE on the scope.
    let denied = client
        .create_stream(with_authorization(stream_config("orders"), Some(&reader)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(denied.message().contains("prn::/scope:shop"), "{denied:?}");
    for stream in ["orders", "archive"] {
        client
            .create_stream(with_authorization(stream_config(stream), Some(&writer)))
            .await
            .unwrap();
    }
    // Creating a scope needs READ_UPDATE on the root.
    let denied = client
        .create_scope(with_authorization(
            api::ScopeInfo {
                scope: "mine".into(),
            },
            Some(&writer),
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert!(!cluster.controller.scope_exists("mine").await.unwrap());

    // Lists show only what the caller may read.
    let scopes = client
        .list_scopes(with_authorization(
            api::ScopesRequest::default(),
            Some(&reader),
        ))
        .await
        .unwrap()
        .into_inner()
        .scopes;
    assert_eq!(scopes, vec!["shop".to_owned()]);
    let all = client
        .list_scopes(with_authorization(
            api::ScopesRequest::default(),
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner()
        .scopes;
    assert_eq!(all.len(), 2, "{all:?}");

    // Reading a stream's configuration needs READ; sealing it READ_UPDATE.
    let info = |stream: &str, operation: AccessOperation| api::StreamInfo {
        scope: "shop".into(),
        stream: stream.into(),
        access_operation: operation as i32,
    };
    client
        .get_stream_configuration(with_authorization(
            info("orders", AccessOperation::Unspecified),
            Some(&reader),
        ))
        .await
        .unwrap();
    let denied = client
        .seal_stream(with_authorization(
            info("archive", AccessOperation::Unspecified),
            Some(&writer),
        ))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    client
        .seal_stream(with_authorization(
            info("orders", AccessOperation::Unspecified),
            Some(&writer),
        ))
        .await
        .unwrap();

    // Tokens grant what the access operation asks for, once the caller is found to have it.
    let token = |operation, header: &str| {
        let mut client = client.clone();
        let request = with_authorization(info("archive", operation), Some(header));
        async move { client.get_delegation_token(request).await }
    };
    let read = token(AccessOperation::Read, &reader).await.unwrap();
    let claims = token_claims(&read.into_inner().delegation_token);
    assert_eq!(claims["prn::/scope:shop/stream:archive"], "READ");
    let denied = token(AccessOperation::Write, &reader).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let denied = token(AccessOperation::Unspecified, &reader)
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    // Readers write their group's state with READ on the group (Pravega's default).
    let mut rg_client = client.clone();
    let state = rg_client
        .get_delegation_token(with_authorization(
            info("_RGbilling", AccessOperation::Write),
            Some(&reader),
        ))
        .await
        .unwrap();
    let claims = token_claims(&state.into_inner().delegation_token);
    assert_eq!(claims["prn::/scope:shop/stream:_RGbilling"], "READ_UPDATE");
    let write = token(AccessOperation::ReadWrite, &admin).await.unwrap();
    let claims = token_claims(&write.into_inner().delegation_token);
    assert_eq!(claims["prn::/scope:shop/stream:archive"], "READ_UPDATE");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_routes_need_the_permission_the_acl_grants() {
    let cluster = cluster_with_users().await;
    cluster.controller.create_scope("shop").await.unwrap();
    cluster.controller.create_scope("other").await.unwrap();
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method,
                path: &str,
                user: (&str, &str),
                body: Option<serde_json::Value>| {
        let mut request = http
            .request(method, cluster.rest_url(path))
            .header("authorization", basic(user.0, user.1));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let reader = ("reader", "r");
    let writer = ("writer", "w");
    let scopes = send(reqwest::Method::GET, "/v1/scopes", reader, None)
        .await
        .unwrap();
    assert_eq!(scopes.status().as_u16(), 200);
    let scopes: serde_json::Value = scopes.json().await.unwrap();
    assert_eq!(scopes["scopes"], serde_json::json!([{"scopeName": "shop"}]));
    let body = serde_json::json!({"scopeName": "mine"});
    let denied = send(reqwest::Method::POST, "/v1/scopes", writer, Some(body))
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    let message: serde_json::Value = denied.json().await.unwrap();
    assert!(
        message["message"].as_str().unwrap().contains("READ_UPDATE"),
        "{message}"
    );
    let stream = serde_json::json!({"streamName": "orders", "scalingPolicy": {"type": "FIXED_NUM_SEGMENTS", "minSegments": 1}});
    let sealed = serde_json::json!({"streamState": "SEALED"});
    // In order: each step may rely on the ones before (the stream is created, then sealed).
    let steps = [
        (
            "POST",
            "/v1/scopes/shop/streams",
            reader,
            Some(&stream),
            403,
        ),
        (
            "POST",
            "/v1/scopes/shop/streams",
            writer,
            Some(&stream),
            201,
        ),
        // An encoded name is checked as the name the handler sees.
        ("GET", "/v1/scopes/other", reader, None, 403),
        ("GET", "/v1/scopes/%6Fther", reader, None, 403),
        ("GET", "/v1/scopes/shop/streams/orders", reader, None, 200),
        (
            "PUT",
            "/v1/scopes/shop/streams/orders/state",
            reader,
            Some(&sealed),
            403,
        ),
        (
            "PUT",
            "/v1/scopes/shop/streams/orders/state",
            writer,
            Some(&sealed),
            200,
        ),
    ];
    for (method, path, user, body, expected) in steps {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = send(method.clone(), path, user, body.cloned())
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            expected,
            "{method} {path} as {}",
            user.0
        );
    }
    cluster.stop().await;
}

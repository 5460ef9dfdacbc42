//! Every refusal of the segment store, mapped to its `ClientError`.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{client, token, unix_now, TestServer};
use pravaha_segment_client::{frame_event, ClientError, KeyVersion, ScalePolicy, TablePage};

fn no_such(result: Result<impl std::fmt::Debug, ClientError>, segment: &str, what: &str) {
    match result {
        Err(ClientError::NoSuchSegment(name)) => assert_eq!(name, segment, "{what}"),
        other => panic!("{what}: expected NoSuchSegment, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_on_a_missing_segment_is_no_such_segment() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let s = "scope/missing/0.#epoch.0";
    no_such(c.segment_info(at, s, "").await, s, "info");
    no_such(c.seal_segment(at, s, "").await, s, "seal");
    no_such(c.truncate_segment(at, s, 0, "").await, s, "truncate");
    no_such(c.delete_segment(at, s, "").await, s, "delete");
    no_such(
        c.delete_table_segment(at, s, false, "").await,
        s,
        "delete table",
    );
    let policy = ScalePolicy::default();
    no_such(
        c.update_segment_policy(at, s, policy, "").await,
        s,
        "policy",
    );
    no_such(c.get_attribute(at, s, 1, "").await, s, "get attribute");
    no_such(
        c.update_attribute(at, s, 1, 2, None, "").await,
        s,
        "set attribute",
    );
    no_such(c.read_segment(at, s, 0, 10, "").await, s, "read");
    no_such(
        c.append(at, s, 1, 1, frame_event(b"x"), "").await,
        s,
        "append",
    );
    let existing = "scope/missing/1.#epoch.0";
    c.create_segment(at, existing, policy, "").await.unwrap();
    let source = format!("{existing}#transaction.{:032x}", 1u128);
    no_such(
        c.merge_segments(at, existing, &source, "").await,
        &source,
        "merge",
    );
    let k = || Bytes::from_static(b"k");
    let update = vec![(k(), k(), KeyVersion::Any)];
    no_such(c.table_update(at, s, update, None, "").await, s, "update");
    no_such(
        c.table_remove(at, s, vec![(k(), KeyVersion::Any)], None, "")
            .await,
        s,
        "remove",
    );
    no_such(c.table_get(at, s, vec![k()], "").await, s, "get");
    no_such(
        c.table_keys(at, s, TablePage::default(), "").await,
        s,
        "keys",
    );
    no_such(
        c.table_entries(at, s, TablePage::default(), "").await,
        s,
        "entries",
    );
    no_such(c.table_delta(at, s, 0, 10, "").await, s, "delta");
    // Refusals are clean exchanges: the connection stays pooled.
    assert_eq!(c.idle_connections(at), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_segments_refuse_appends_and_merges() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let s = "scope/sealed/0.#epoch.0";
    c.create_segment(at, s, ScalePolicy::default(), "")
        .await
        .unwrap();
    c.append(at, s, 1, 1, frame_event(b"before"), "")
        .await
        .unwrap();
    c.seal_segment(at, s, "").await.unwrap();
    match c.append(at, s, 1, 2, frame_event(b"after"), "").await {
        Err(ClientError::Sealed(name)) => assert_eq!(name, s),
        other => panic!("expected Sealed, got {other:?}"),
    }
    let source = format!("{s}#transaction.{:032x}", 2u128);
    c.create_segment(at, &source, ScalePolicy::default(), "")
        .await
        .unwrap();
    let merge = c.merge_segments(at, s, &source, "").await;
    assert!(matches!(merge, Err(ClientError::Sealed(_))), "{merge:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_server_errors() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let s = "scope/arguments/0.#epoch.0";
    c.create_segment(at, s, ScalePolicy::default(), "")
        .await
        .unwrap();
    // Truncating beyond the length.
    let beyond = c.truncate_segment(at, s, 1000, "").await;
    assert!(
        matches!(&beyond, Err(ClientError::Server { code: 0, .. })),
        "{beyond:?}"
    );
    // A table request on a stream segment.
    let keys = c.table_keys(at, s, TablePage::default(), "").await;
    assert!(
        matches!(&keys, Err(ClientError::Server { code: 0, message }) if !message.is_empty()),
        "{keys:?}"
    );
    assert!(!keys.unwrap_err().is_retryable());
    server.stop().await;
}

/// A segment of container 0 and one of another container, of 4.
fn segments_by_container() -> (String, String) {
    let name = |n: u32| format!("scope/hosts/{n}.#epoch.0");
    let owned = (0..100)
        .map(name)
        .find(|s| pravaha_types::container_for_segment(s, 4).0 == 0)
        .unwrap();
    let foreign = (0..100)
        .map(name)
        .find(|s| pravaha_types::container_for_segment(s, 4).0 != 0)
        .unwrap();
    (owned, foreign)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_owned_elsewhere_are_wrong_host() {
    let server = TestServer::start_with(|config| {
        config.owned_containers = Some(BTreeSet::from([0]));
    })
    .await;
    let at = server.addr();
    let c = client();
    let (owned, foreign) = segments_by_container();
    let policy = ScalePolicy::default();
    c.create_segment(at, &owned, policy, "").await.unwrap();
    let wrong_host = |result: Result<(), ClientError>, what: &str| match result {
        Err(error @ ClientError::WrongHost(_)) => {
            assert!(error.is_retryable());
            assert!(
                matches!(error, ClientError::WrongHost(s) if s == foreign),
                "{what}"
            );
        }
        other => panic!("{what}: expected WrongHost, got {other:?}"),
    };
    wrong_host(
        c.create_segment(at, &foreign, policy, "").await.map(drop),
        "create",
    );
    wrong_host(
        c.create_table_segment(at, &foreign, "").await.map(drop),
        "create table",
    );
    wrong_host(c.segment_info(at, &foreign, "").await.map(drop), "info");
    wrong_host(
        c.read_segment(at, &foreign, 0, 1, "").await.map(drop),
        "read",
    );
    wrong_host(
        c.append(at, &foreign, 1, 1, frame_event(b"x"), "")
            .await
            .map(drop),
        "append",
    );
    wrong_host(
        c.table_get(at, &foreign, vec![Bytes::from_static(b"k")], "")
            .await
            .map(drop),
        "get",
    );
    server.stop().await;
}

fn auth_failure(result: Result<impl std::fmt::Debug, ClientError>, code: i32, what: &str) {
    match result {
        Err(ClientError::AuthFailed { code: got, message }) => {
            assert_eq!(got, code, "{what}: {message}");
        }
        other => panic!("{what}: expected AuthFailed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_auth_failures() {
    let key = b"a key shared with the controller";
    let server = TestServer::start_with_auth(key).await;
    let at = server.addr();
    let c = client();
    let s = "scope/secure/0.#epoch.0";
    let grant = |level: &str, exp: i64| {
        token(
            key,
            serde_json::json!({"exp": exp, "prn::/scope:scope/stream:secure": level}),
        )
    };
    let valid = grant("READ_UPDATE", unix_now() + 600);
    let read_only = grant("READ", unix_now() + 600);
    let expired = grant("READ_UPDATE", unix_now() - 60);
    let forged = token(
        b"another key",
        serde_json::json!({"exp": unix_now() + 600, "prn::/": "READ_UPDATE"}),
    );
    let policy = ScalePolicy::default();

    auth_failure(c.create_segment(at, s, policy, "").await, 0, "no token");
    auth_failure(c.create_segment(at, s, policy, &forged).await, 0, "forged");
    auth_failure(
        c.create_segment(at, s, policy, &expired).await,
        1,
        "expired",
    );
    auth_failure(
        c.create_segment(at, s, policy, &read_only).await,
        0,
        "read only",
    );
    c.create_segment(at, s, policy, &valid).await.unwrap();

    // A read-only token reads but does not write.
    assert_eq!(c.segment_info(at, s, &read_only).await.unwrap().length, 0);
    auth_failure(
        c.append(at, s, 1, 1, frame_event(b"x"), &read_only).await,
        0,
        "append",
    );
    c.append(at, s, 1, 1, frame_event(b"x"), &valid)
        .await
        .unwrap();
    let read = c.read_segment(at, s, 0, 100, &read_only).await.unwrap();
    assert_eq!(read.data, frame_event(b"x"));
    auth_failure(c.seal_segment(at, s, &read_only).await, 0, "seal");

    // A global grant covers tables too.
    let global = token(
        key,
        serde_json::json!({"exp": unix_now() + 600, "prn::/": "READ_UPDATE"}),
    );
    let table = "scope/_tables/secure";
    auth_failure(
        c.create_table_segment(at, table, &read_only).await,
        0,
        "table",
    );
    c.create_table_segment(at, table, &global).await.unwrap();
    let auth = c
        .table_get(at, table, vec![Bytes::from_static(b"k")], &expired)
        .await;
    auth_failure(auth, 1, "expired get");
    assert!(!ClientError::AuthFailed {
        code: 1,
        message: String::new()
    }
    .is_retryable());
    server.stop().await;
}

//! Connection handling: pooling and reuse, concurrency, a restarting server, time-outs,
//! refused connections and servers that break the protocol.

mod common;

use std::time::{Duration, Instant};

use common::{client, hello, scripted_server, silent_listener, CountingProxy, TestServer};
use pravaha_segment_client::{ClientConfig, ClientError, Created, ScalePolicy, SegmentClient};
use pravaha_wire::{self as wire, Reply, Request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_connection() {
    let server = TestServer::start().await;
    let proxy = CountingProxy::start(server.addr()).await;
    let at = proxy.addr;
    let c = client();
    let segment = "scope/reuse/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    for round in 0..100 {
        let info = c.segment_info(at, segment, "").await.unwrap();
        assert_eq!(info.length, 0, "round {round}");
        // Refusals are clean exchanges too.
        let missing = c.segment_info(at, "scope/reuse/9.#epoch.0", "").await;
        assert!(matches!(missing, Err(ClientError::NoSuchSegment(_))));
    }
    assert_eq!(proxy.accepted(), 1, "201 requests over one connection");
    assert_eq!(c.idle_connections(at), 1);
    // Clones share the pool.
    let clone = c.clone();
    clone.segment_info(at, segment, "").await.unwrap();
    assert_eq!(proxy.accepted(), 1);
    // Append sessions use connections of their own and do not pool them.
    clone
        .append(
            at,
            segment,
            1,
            1,
            pravaha_segment_client::frame_event(b"e"),
            "",
        )
        .await
        .unwrap();
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(c.idle_connections(at), 1);
    server.stop().await;
}

/// 50 concurrent `segment_info` requests from clones of `c`; all must succeed.
async fn info_wave(c: &SegmentClient, at: std::net::SocketAddr) {
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let c = c.clone();
            tokio::spawn(async move {
                let segment = format!("scope/concurrent/{n}.#epoch.0");
                c.segment_info(at, &segment, "").await
            })
        })
        .collect();
    for (n, task) in tasks.into_iter().enumerate() {
        let info = tokio::time::timeout(common::TIMEOUT, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(info.segment, format!("scope/concurrent/{n}.#epoch.0"));
        assert_eq!(info.length, 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_from_clones_all_complete() {
    let server = TestServer::start().await;
    let proxy = CountingProxy::start(server.addr()).await;
    let at = proxy.addr;
    let c = SegmentClient::new(ClientConfig {
        max_idle_per_endpoint: 64,
        ..ClientConfig::default()
    });
    let tasks: Vec<_> = (0..50u8)
        .map(|n| {
            let c = c.clone();
            tokio::spawn(async move {
                let segment = format!("scope/concurrent/{n}.#epoch.0");
                let created = c
                    .create_segment(at, &segment, ScalePolicy::default(), "")
                    .await?;
                let length = c
                    .append(at, &segment, 1, 1, bytes::Bytes::from(vec![n; 10]), "")
                    .await?;
                let read = c.read_segment(at, &segment, 0, 100, "").await?;
                Ok::<_, ClientError>((created, length, read.data))
            })
        })
        .collect();
    for (n, task) in (0..50u8).zip(tasks) {
        let (created, length, data) = tokio::time::timeout(common::TIMEOUT, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((created, length), (Created::New, 10));
        assert_eq!(data, vec![n; 10]);
    }
    // The pool keeps every connection (64 idle allowed), so pooled connections never outnumber
    // the requests that were in flight at once (50); the 50 appends had their own.
    let opened = proxy.accepted();
    assert!(opened <= 100, "{opened} connections");
    assert_eq!(c.idle_connections(at), opened - 50);
    info_wave(&c, at).await;
    assert!(proxy.accepted() <= 100, "{} connections", proxy.accepted());

    // With few idle connections allowed, the rest are closed after use.
    let frugal = SegmentClient::new(ClientConfig {
        max_idle_per_endpoint: 4,
        ..ClientConfig::default()
    });
    info_wave(&frugal, at).await;
    let idle = frugal.idle_connections(at);
    assert!((1..=4).contains(&idle), "{idle} idle connections");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_recovers_when_the_server_restarts() {
    let mut server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let segment = "scope/restart/0.#epoch.0";
    c.create_segment(at, segment, ScalePolicy::default(), "")
        .await
        .unwrap();
    c.append(
        at,
        segment,
        1,
        1,
        pravaha_segment_client::frame_event(b"kept"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(c.idle_connections(at), 1);

    server.restart().await;
    // The pooled connection was closed by the old server; the client notices that before
    // using it (given a moment for the runtime to see the close) and dials again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let info = c.segment_info(at, segment, "").await.unwrap();
    assert_eq!(
        info.length,
        pravaha_segment_client::frame_event(b"kept").len() as i64
    );
    assert_eq!(c.idle_connections(at), 1);

    // While the server is down, requests fail to connect, retryably.
    let stopped_at = server.addr();
    server.stop().await;
    match c.segment_info(stopped_at, segment, "").await {
        Err(error @ (ClientError::Connect { .. } | ClientError::Io(_))) => {
            assert!(error.is_retryable());
        }
        other => panic!("expected a connection failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let (at, listener) = silent_listener().await;
    let c = SegmentClient::new(ClientConfig {
        request_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    });
    let started = Instant::now();
    let result = c.segment_info(at, "scope/silent/0.#epoch.0", "").await;
    let elapsed = started.elapsed();
    match result {
        Err(error @ ClientError::Timeout { .. }) => {
            assert!(error.is_retryable());
            assert!(
                matches!(error, ClientError::Timeout { endpoint, request: "GetStreamSegmentInfo" } if endpoint == at)
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(
        c.idle_connections(at),
        0,
        "a timed-out connection is dropped"
    );
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_retryable_connect_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    drop(listener);
    match client().seal_segment(at, "scope/s/0.#epoch.0", "").await {
        Err(error @ ClientError::Connect { .. }) => {
            assert!(error.is_retryable());
            assert!(error.to_string().contains(&at.to_string()), "{error}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

fn info_reply(request_id: i64, segment: String) -> Reply {
    Reply::StreamSegmentInfo(wire::StreamSegmentInfo {
        request_id,
        segment_name: segment,
        exists: true,
        is_sealed: false,
        is_deleted: false,
        last_modified: 5,
        write_offset: 42,
        start_offset: 0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_are_skipped_and_a_wrong_request_id_drops_the_connection() {
    let (at, server) = scripted_server(|request| match request {
        Request::Hello(_) => Some(vec![hello()]),
        // Known segment: a keep-alive, then the reply.
        Request::GetStreamSegmentInfo(get) if get.segment_name == "good" => Some(vec![
            Reply::KeepAlive,
            info_reply(get.request_id, get.segment_name),
        ]),
        // Anything else: a reply to some other request.
        Request::GetStreamSegmentInfo(get) => {
            Some(vec![info_reply(get.request_id + 1000, get.segment_name)])
        }
        _ => None,
    })
    .await;
    let c = client();
    let info = c.segment_info(at, "good", "").await.unwrap();
    assert_eq!((info.length, info.last_modified_ms), (42, 5));
    assert_eq!(c.idle_connections(at), 1);
    match c.segment_info(at, "bad", "").await {
        Err(ClientError::Protocol(message)) => assert!(message.contains("request"), "{message}"),
        other => panic!("expected Protocol, got {other:?}"),
    }
    assert_eq!(c.idle_connections(at), 0, "the connection is dropped");
    // A new connection serves the next request.
    c.segment_info(at, "good", "").await.unwrap();
    assert_eq!(c.idle_connections(at), 1);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_hello_is_a_protocol_error() {
    let (at, server) = scripted_server(|request| match request {
        Request::Hello(_) => Some(vec![Reply::Hello(wire::Hello {
            high_version: 4,
            low_version: 2,
        })]),
        _ => None,
    })
    .await;
    let c = client();
    match c.segment_info(at, "s", "").await {
        Err(error @ ClientError::Protocol(_)) => assert!(!error.is_retryable()),
        other => panic!("expected Protocol, got {other:?}"),
    }
    assert_eq!(c.idle_connections(at), 0);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_and_unsupported_replies_are_mapped() {
    let (at, server) = scripted_server(|request| match request {
        Request::Hello(_) => Some(vec![hello()]),
        // A success reply of another request.
        Request::SealSegment(seal) => Some(vec![Reply::SegmentDeleted(wire::SegmentDeleted {
            request_id: seal.request_id,
            segment: seal.segment,
        })]),
        other => Some(vec![Reply::OperationUnsupported(
            wire::OperationUnsupported {
                request_id: other.request_id(),
                operation_name: other.name().to_owned(),
                server_stack_trace: String::new(),
            },
        )]),
    })
    .await;
    let c = client();
    match c.seal_segment(at, "s", "").await {
        Err(ClientError::Protocol(message)) => {
            assert_eq!(message, "SealSegment answered with SegmentDeleted");
        }
        other => panic!("expected Protocol, got {other:?}"),
    }
    match c.merge_segments(at, "t", "s", "").await {
        Err(ClientError::Unsupported(operation)) => assert_eq!(operation, "MergeSegments"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_mid_request_is_an_io_error() {
    let (at, server) = scripted_server(|request| match request {
        Request::Hello(_) => Some(vec![hello()]),
        // No reply: the connection is closed.
        _ => None,
    })
    .await;
    let c = client();
    match c.segment_info(at, "s", "").await {
        Err(error @ ClientError::Io(_)) => assert!(error.is_retryable()),
        other => panic!("expected Io, got {other:?}"),
    }
    assert_eq!(c.idle_connections(at), 0);
    server.abort();
}

//! Every error reply of the protocol, each triggered by the case it names.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{frame_event, Client, TestServer};
use pravaha_wire::{self as wire, Reply, Request};

fn create(request_id: i64, segment: &str) -> Request {
    Request::CreateSegment(wire::CreateSegment {
        request_id,
        segment: segment.into(),
        target_rate: 10,
        scale_type: 1,
        delegation_token: String::new(),
        rollover_size_bytes: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_errors_name_their_case() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let segment = "scope/errors/0.#epoch.0";
    c.create_segment(segment).await;

    // SegmentAlreadyExists: creating it again.
    let id = c.next_id();
    match c.call(create(id, segment)).await {
        Reply::SegmentAlreadyExists(reply) => {
            assert_eq!((reply.request_id, reply.segment.as_str()), (id, segment));
        }
        other => panic!("{other:?}"),
    }

    // NoSuchSegment: info, setup, read and delete of a missing segment.
    let missing = "scope/errors/9.#epoch.0";
    let id = c.next_id();
    let reply = c
        .call(Request::GetStreamSegmentInfo(wire::GetStreamSegmentInfo {
            request_id: id,
            segment_name: missing.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(
        matches!(&reply, Reply::NoSuchSegment(r) if r.request_id == id && r.segment == missing),
        "{reply:?}"
    );
    let id = c.next_id();
    let reply = c
        .call(Request::SetupAppend(wire::SetupAppend {
            request_id: id,
            writer_id: 1,
            segment: missing.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(
        matches!(&reply, Reply::NoSuchSegment(r) if r.request_id == id),
        "{reply:?}"
    );
    match c.read(missing, 100, 10).await {
        Reply::NoSuchSegment(r) => assert_eq!(r.offset, 100, "a read reports its offset"),
        other => panic!("{other:?}"),
    }
    let id = c.next_id();
    let reply = c
        .call(Request::DeleteSegment(wire::DeleteSegment {
            request_id: id,
            segment: missing.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::NoSuchSegment(_)), "{reply:?}");

    // SegmentIsTruncated: a read below the start offset.
    let writer = 11u128;
    c.setup_append(segment, writer).await;
    c.send_block(writer, 1, &[Bytes::from_static(b"one")]).await;
    c.send_block(writer, 2, &[Bytes::from_static(b"two")]).await;
    let mut acked = 0;
    while acked < 2 {
        match c.recv().await {
            Reply::DataAppended(ack) => acked = ack.event_number,
            other => panic!("{other:?}"),
        }
    }
    let first_length = frame_event(b"one").len() as i64;
    let id = c.next_id();
    let reply = c
        .call(Request::TruncateSegment(wire::TruncateSegment {
            request_id: id,
            segment: segment.into(),
            truncation_offset: first_length,
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentTruncated(_)), "{reply:?}");
    match c.read(segment, 0, 100).await {
        Reply::SegmentIsTruncated(r) => {
            assert_eq!(r.start_offset, first_length);
            assert_eq!(r.offset, 0);
            assert_eq!(r.segment, segment);
        }
        other => panic!("{other:?}"),
    }
    let info = c.info(segment).await;
    assert_eq!(info.start_offset, first_length);

    // SegmentIsSealed: an append after the seal; its offset field carries the event number.
    let id = c.next_id();
    let reply = c
        .call(Request::SealSegment(wire::SealSegment {
            request_id: id,
            segment: segment.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentSealed(_)), "{reply:?}");
    // A sealed segment still gets AppendSetup.
    assert_eq!(c.setup_append(segment, writer).await, 2);
    let id = c
        .send_block(writer, 3, &[Bytes::from_static(b"three")])
        .await;
    match c.recv().await {
        Reply::SegmentIsSealed(r) => {
            assert_eq!(r.request_id, id);
            assert_eq!(r.segment, segment);
            assert_eq!(r.offset, 3);
        }
        other => panic!("{other:?}"),
    }
    // Sealing again says it is sealed.
    let id = c.next_id();
    let reply = c
        .call(Request::SealSegment(wire::SealSegment {
            request_id: id,
            segment: segment.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentIsSealed(_)), "{reply:?}");

    // OperationUnsupported: requests this server does not serve.
    let id = c.next_id();
    let reply = c
        .call(Request::LocateOffset(wire::LocateOffset {
            request_id: id,
            segment: segment.into(),
            target_offset: 0,
            delegation_token: String::new(),
        }))
        .await;
    assert_eq!(
        reply,
        Reply::OperationUnsupported(wire::OperationUnsupported {
            request_id: id,
            operation_name: "LocateOffset".into(),
            server_stack_trace: String::new(),
        })
    );
    let id = c.next_id();
    let reply = c
        .call(Request::MergeTableSegments(wire::MergeTableSegments {
            request_id: id,
            target: "a/b/0".into(),
            source: "a/c/0".into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(
        matches!(&reply, Reply::OperationUnsupported(r) if r.request_id == id),
        "{reply:?}"
    );

    // Segment attributes: get unset, compare-and-set, mismatch answered with success = false.
    let attribute = 0x42u128;
    let get = |request_id| {
        Request::GetSegmentAttribute(wire::GetSegmentAttribute {
            request_id,
            segment_name: segment.into(),
            attribute_id: attribute,
            delegation_token: String::new(),
        })
    };
    let update = |request_id, new_value, expected_value| {
        Request::UpdateSegmentAttribute(wire::UpdateSegmentAttribute {
            request_id,
            segment_name: segment.into(),
            attribute_id: attribute,
            new_value,
            expected_value,
            delegation_token: String::new(),
        })
    };
    let id = c.next_id();
    assert_eq!(
        c.call(get(id)).await,
        Reply::SegmentAttribute(wire::SegmentAttribute {
            request_id: id,
            value: wire::NULL_ATTRIBUTE_VALUE
        })
    );
    let id = c.next_id();
    assert_eq!(
        c.call(update(id, 10, wire::NULL_ATTRIBUTE_VALUE)).await,
        Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
            request_id: id,
            success: true
        })
    );
    let id = c.next_id();
    assert_eq!(
        c.call(update(id, 20, 99)).await,
        Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
            request_id: id,
            success: false
        })
    );
    let id = c.next_id();
    assert_eq!(
        c.call(get(id)).await,
        Reply::SegmentAttribute(wire::SegmentAttribute {
            request_id: id,
            value: 10
        })
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_number_going_back_gets_invalid_event_number_and_a_close() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let segment = "scope/numbers/0.#epoch.0";
    c.create_segment(segment).await;
    let writer = 3u128;
    c.setup_append(segment, writer).await;
    c.send_block(writer, 5, &[Bytes::from_static(b"five")])
        .await;
    assert!(matches!(c.recv().await, Reply::DataAppended(a) if a.event_number == 5));
    let id = c
        .send_block(writer, 4, &[Bytes::from_static(b"four")])
        .await;
    match c.recv().await {
        Reply::InvalidEventNumber(reply) => {
            assert_eq!(reply.writer_id, writer);
            assert_eq!(reply.request_id, id);
            assert_eq!(reply.event_number, Some(4));
        }
        other => panic!("{other:?}"),
    }
    assert!(c.closed_by_server().await);
    // Nothing of the rejected block was stored.
    let mut other = server.client().await;
    assert_eq!(other.read_all(segment).await, frame_event(b"five"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_of_containers_owned_elsewhere_get_wrong_host() {
    let server = TestServer::start_owning(BTreeSet::from([0])).await;
    // Find a segment of container 0 and one of another container (4 containers by default).
    let name = |n: u32| format!("scope/hosts/{n}.#epoch.0");
    let owned = (0..100)
        .map(name)
        .find(|s| pravaha_types::container_for_segment(s, 4).0 == 0)
        .unwrap();
    let foreign = (0..100)
        .map(name)
        .find(|s| pravaha_types::container_for_segment(s, 4).0 != 0)
        .unwrap();
    let mut c = server.client().await;
    c.create_segment(&owned).await;
    for request in [
        create(c.next_id(), &foreign),
        Request::SetupAppend(wire::SetupAppend {
            request_id: c.next_id(),
            writer_id: 1,
            segment: foreign.clone(),
            delegation_token: String::new(),
        }),
        common::read_request(&foreign, 0, 10, c.next_id()),
        Request::CreateTableSegment(wire::CreateTableSegment {
            request_id: c.next_id(),
            segment: foreign.clone(),
            delegation_token: String::new(),
            sorted: None,
            key_length: None,
            rollover_size_bytes: None,
        }),
    ] {
        let id = request.request_id();
        match c.call(request).await {
            Reply::WrongHost(reply) => {
                assert_eq!(reply.request_id, id);
                assert_eq!(reply.segment, foreign);
            }
            other => panic!("expected WrongHost, got {other:?}"),
        }
    }
    server.stop().await;
}

fn token(key: &[u8], claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_bad_tokens_get_auth_token_check_failed() {
    let key = b"a shared signing key";
    let server = TestServer::start_with_auth(key).await;
    let segment = "scope/secure/0.#epoch.0";
    let valid = token(
        key,
        serde_json::json!({"sub": "writer", "exp": unix_now() + 600, "prn::/scope:scope/stream:secure": "READ_UPDATE"}),
    );
    let read_only = token(
        key,
        serde_json::json!({"exp": unix_now() + 600, "prn::/scope:scope/stream:secure": "READ"}),
    );
    let expired = token(
        key,
        serde_json::json!({"exp": unix_now() - 60, "prn::/scope:scope/stream:secure": "READ_UPDATE"}),
    );
    let forged = token(
        b"some other key",
        serde_json::json!({"exp": unix_now() + 600, "prn::/": "READ_UPDATE"}),
    );
    let mut c = server.client().await;
    let create_with = |request_id, token: &str| {
        Request::CreateSegment(wire::CreateSegment {
            request_id,
            segment: segment.into(),
            target_rate: 0,
            scale_type: 0,
            delegation_token: token.into(),
            rollover_size_bytes: None,
        })
    };
    for (token, code) in [
        ("", 0),
        (forged.as_str(), 0),
        (expired.as_str(), 1),
        (read_only.as_str(), 0),
    ] {
        let id = c.next_id();
        match c.call(create_with(id, token)).await {
            Reply::AuthTokenCheckFailed(reply) => {
                assert_eq!(reply.request_id, id);
                assert_eq!(reply.error_code, code, "token {token:?}");
            }
            other => panic!("expected AuthTokenCheckFailed, got {other:?}"),
        }
    }
    let id = c.next_id();
    assert!(matches!(
        c.call(create_with(id, &valid)).await,
        Reply::SegmentCreated(_)
    ));
    // A read-only token reads but does not write.
    let id = c.next_id();
    let reply = c
        .call(Request::GetStreamSegmentInfo(wire::GetStreamSegmentInfo {
            request_id: id,
            segment_name: segment.into(),
            delegation_token: read_only.clone(),
        }))
        .await;
    assert!(matches!(reply, Reply::StreamSegmentInfo(_)), "{reply:?}");
    let id = c.next_id();
    let reply = c
        .call(Request::SetupAppend(wire::SetupAppend {
            request_id: id,
            writer_id: 1,
            segment: segment.into(),
            delegation_token: read_only,
        }))
        .await;
    assert!(
        matches!(&reply, Reply::AuthTokenCheckFailed(r) if r.error_code == 0),
        "{reply:?}"
    );
    let id = c.next_id();
    let reply = c
        .call(Request::SetupAppend(wire::SetupAppend {
            request_id: id,
            writer_id: 1,
            segment: segment.into(),
            delegation_token: valid,
        }))
        .await;
    assert!(matches!(reply, Reply::AppendSetup(_)), "{reply:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_version_gets_the_servers_hello_and_a_close() {
    let server = TestServer::start().await;
    let mut c = Client::connect_raw(server.addr()).await;
    let reply = c
        .call(Request::Hello(wire::Hello {
            high_version: 4,
            low_version: 2,
        }))
        .await;
    assert_eq!(
        reply,
        Reply::Hello(wire::Hello {
            high_version: wire::WIRE_VERSION,
            low_version: wire::OLDEST_COMPATIBLE_VERSION
        })
    );
    assert!(c.closed_by_server().await);
    // A newer client whose range includes ours is served.
    let mut newer = Client::connect_raw(server.addr()).await;
    let reply = newer
        .call(Request::Hello(wire::Hello {
            high_version: 17,
            low_version: 5,
        }))
        .await;
    assert!(matches!(reply, Reply::Hello(_)));
    let id = newer.next_id();
    assert_eq!(
        newer.call(Request::KeepAlive).await,
        Reply::KeepAlive,
        "keep-alive is echoed ({id})"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_the_wrong_kind_of_segment_are_refused_without_harm() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let segment = "scope/kinds/0.#epoch.0";
    let table = "scope/kinds_kvtable/0.#epoch.0";
    c.create_segment(segment).await;
    c.create_table(table).await;

    // Merging a segment into itself: refused, and the segment is not sealed by it.
    let id = c.next_id();
    let reply = c
        .call(Request::MergeSegments(wire::MergeSegments {
            request_id: id,
            target: segment.into(),
            source: segment.into(),
            delegation_token: String::new(),
            attribute_updates: None,
        }))
        .await;
    assert!(
        matches!(&reply, Reply::ErrorMessage(r) if r.error_code == 0),
        "{reply:?}"
    );
    assert!(!c.info(segment).await.is_sealed);

    // Appending to a table segment: an error reply, and the connection stays usable.
    c.setup_append(table, 9).await;
    let id = c
        .send_block(9, 1, &[Bytes::from_static(b"not a table entry")])
        .await;
    match c.recv().await {
        Reply::ErrorMessage(r) => {
            assert_eq!(r.request_id, id);
            assert_eq!(r.error_code, 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.info(table).await.write_offset, 0);

    // A delta read from past the end continues from the end.
    let id = c.next_id();
    match c
        .call(Request::ReadTableEntriesDelta(
            wire::ReadTableEntriesDelta {
                request_id: id,
                segment: table.into(),
                delegation_token: String::new(),
                from_position: 1_000_000,
                suggested_entry_count: 10,
            },
        ))
        .await
    {
        Reply::TableEntriesDeltaRead(read) => {
            assert!(read.entries.entries.is_empty());
            assert!(read.reached_end);
            assert_eq!(read.last_position, 0);
        }
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

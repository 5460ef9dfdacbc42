//! Table segments over the wire, and segment administration (merge, transient segments, policy).

mod common;

use bytes::Bytes;
use common::{frame_event, parse_events, Client, TestServer};
use pravaha_wire::{self as wire, Reply, Request, TableEntries, TableKey, TableValue};

const TABLE: &str = "scope/_kvtable_test/0.#epoch.0";

fn key(data: &str, key_version: i64) -> TableKey {
    TableKey {
        data: Bytes::copy_from_slice(data.as_bytes()),
        key_version,
    }
}

fn entry(k: &str, version: i64, v: &str) -> (TableKey, TableValue) {
    (
        key(k, version),
        TableValue {
            data: Bytes::copy_from_slice(v.as_bytes()),
        },
    )
}

async fn update(c: &mut Client, entries: Vec<(TableKey, TableValue)>, offset: i64) -> Reply {
    let request_id = c.next_id();
    c.call(Request::UpdateTableEntries(wire::UpdateTableEntries {
        request_id,
        segment: TABLE.into(),
        delegation_token: String::new(),
        table_entries: TableEntries { entries },
        table_segment_offset: offset,
    }))
    .await
}

async fn versions(c: &mut Client, entries: Vec<(TableKey, TableValue)>) -> Vec<i64> {
    match update(c, entries, -1).await {
        Reply::TableEntriesUpdated(reply) => reply.updated_versions,
        other => panic!("expected TableEntriesUpdated, got {other:?}"),
    }
}

async fn remove(c: &mut Client, keys: Vec<TableKey>) -> Reply {
    let request_id = c.next_id();
    c.call(Request::RemoveTableKeys(wire::RemoveTableKeys {
        request_id,
        segment: TABLE.into(),
        delegation_token: String::new(),
        keys,
        table_segment_offset: -1,
    }))
    .await
}

async fn get(c: &mut Client, keys: &[&str]) -> Vec<(String, i64, String)> {
    let request_id = c.next_id();
    match c
        .call(Request::ReadTable(wire::ReadTable {
            request_id,
            segment: TABLE.into(),
            delegation_token: String::new(),
            keys: keys.iter().map(|k| key(k, wire::NO_VERSION)).collect(),
        }))
        .await
    {
        Reply::TableRead(read) => read
            .entries
            .entries
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.data.to_vec()).unwrap(),
                    k.key_version,
                    String::from_utf8(v.data.to_vec()).unwrap(),
                )
            })
            .collect(),
        other => panic!("expected TableRead, got {other:?}"),
    }
}

/// Iterates all keys page by page (as the clients do: until an empty page).
async fn all_keys(c: &mut Client, page: i32) -> Vec<(String, i64)> {
    let mut token = Bytes::new();
    let mut keys = Vec::new();
    for _ in 0..1000 {
        let request_id = c.next_id();
        match c
            .call(Request::ReadTableKeys(wire::ReadTableKeys {
                request_id,
                segment: TABLE.into(),
                delegation_token: String::new(),
                suggested_key_count: page,
                continuation_token: token.clone(),
                prefix_filter: None,
                from_key: None,
                to_key: None,
            }))
            .await
        {
            Reply::TableKeysRead(read) => {
                if read.keys.is_empty() {
                    return keys;
                }
                assert!(read.keys.len() <= page as usize);
                keys.extend(
                    read.keys
                        .into_iter()
                        .map(|k| (String::from_utf8(k.data.to_vec()).unwrap(), k.key_version)),
                );
                token = read.continuation_token;
            }
            other => panic!("expected TableKeysRead, got {other:?}"),
        }
    }
    panic!("iteration did not end");
}

async fn all_entries(c: &mut Client, page: i32) -> Vec<(String, i64, String)> {
    let mut token = Bytes::new();
    let mut entries = Vec::new();
    for _ in 0..1000 {
        let request_id = c.next_id();
        match c
            .call(Request::ReadTableEntries(wire::ReadTableEntries {
                request_id,
                segment: TABLE.into(),
                delegation_token: String::new(),
                suggested_entry_count: page,
                continuation_token: token.clone(),
                prefix_filter: None,
                from_key: None,
                to_key: None,
            }))
            .await
        {
            Reply::TableEntriesRead(read) => {
                if read.entries.entries.is_empty() {
                    return entries;
                }
                entries.extend(read.entries.entries.into_iter().map(|(k, v)| {
                    (
                        String::from_utf8(k.data.to_vec()).unwrap(),
                        k.key_version,
                        String::from_utf8(v.data.to_vec()).unwrap(),
                    )
                }));
                token = read.continuation_token;
            }
            other => panic!("expected TableEntriesRead, got {other:?}"),
        }
    }
    panic!("iteration did not end");
}

/// Delta reads from `from` until an empty page, as the Rust client's synchronizer does.
async fn delta(c: &mut Client, mut from: i64) -> (Vec<(String, i64, String)>, i64) {
    let mut entries = Vec::new();
    for _ in 0..1000 {
        let request_id = c.next_id();
        match c
            .call(Request::ReadTableEntriesDelta(
                wire::ReadTableEntriesDelta {
                    request_id,
                    segment: TABLE.into(),
                    delegation_token: String::new(),
                    from_position: from,
                    suggested_entry_count: 2,
                },
            ))
            .await
        {
            Reply::TableEntriesDeltaRead(read) => {
                assert!(!read.should_clear);
                if read.entries.entries.is_empty() {
                    assert!(read.reached_end);
                    return (entries, from);
                }
                assert!(read.last_position > from, "the position must advance");
                from = read.last_position;
                entries.extend(read.entries.entries.into_iter().map(|(k, v)| {
                    (
                        String::from_utf8(k.data.to_vec()).unwrap(),
                        k.key_version,
                        String::from_utf8(v.data.to_vec()).unwrap(),
                    )
                }));
            }
            other => panic!("expected TableEntriesDeltaRead, got {other:?}"),
        }
    }
    panic!("delta reads did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_operations_follow_key_versions() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_table(TABLE).await;
    // Creating it again: SegmentAlreadyExists (the clients take it as success).
    let request_id = c.next_id();
    let reply = c
        .call(Request::CreateTableSegment(wire::CreateTableSegment {
            request_id,
            segment: TABLE.into(),
            delegation_token: String::new(),
            sorted: None,
            key_length: None,
            rollover_size_bytes: None,
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentAlreadyExists(_)), "{reply:?}");

    // Inserts: one that must not exist yet, one unconditional.
    let v = versions(
        &mut c,
        vec![
            entry("a", wire::NOT_EXISTS, "1"),
            entry("b", wire::NO_VERSION, "2"),
        ],
    )
    .await;
    assert_eq!(v.len(), 2);
    let (va, vb) = (v[0], v[1]);
    assert!(va >= 0 && vb > va);
    assert_eq!(
        get(&mut c, &["a", "b", "zz"]).await,
        vec![
            ("a".into(), va, "1".into()),
            ("b".into(), vb, "2".into()),
            // Absent: version -1 and an empty value.
            ("zz".into(), -1, String::new()),
        ]
    );

    // A batch may name a key twice: conditions hold against the table before the batch, and
    // the later value wins (the Rust client's reader groups rely on this).
    let dup = versions(
        &mut c,
        vec![
            entry("dup", wire::NOT_EXISTS, "first"),
            entry("dup", wire::NOT_EXISTS, "second"),
        ],
    )
    .await;
    assert_eq!(
        get(&mut c, &["dup"]).await,
        vec![("dup".into(), dup[1], "second".into())]
    );
    assert!(matches!(
        remove(&mut c, vec![key("dup", dup[1])]).await,
        Reply::TableKeysRemoved(_)
    ));

    // A conditional update with the current version succeeds and changes the version.
    let va2 = versions(&mut c, vec![entry("a", va, "1b")]).await[0];
    assert_ne!(va2, va);
    // The stale version: TableKeyBadVersion, and nothing of the batch is applied.
    match update(&mut c, vec![entry("b", vb, "2b"), entry("a", va, "1c")], -1).await {
        Reply::TableKeyBadVersion(r) => assert_eq!(r.segment, TABLE),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        get(&mut c, &["b"]).await,
        vec![("b".into(), vb, "2".into())]
    );
    // NOT_EXISTS on a present key: bad version. A version on an absent key: does not exist.
    assert!(matches!(
        update(&mut c, vec![entry("a", wire::NOT_EXISTS, "x")], -1).await,
        Reply::TableKeyBadVersion(_)
    ));
    assert!(matches!(
        update(&mut c, vec![entry("nope", 5, "x")], -1).await,
        Reply::TableKeyDoesNotExist(_)
    ));
    // A length condition that does not hold: SegmentIsTruncated, as Pravega reports it.
    assert!(matches!(
        update(&mut c, vec![entry("c", wire::NO_VERSION, "3")], 1).await,
        Reply::SegmentIsTruncated(_)
    ));
    let length = c.info(TABLE).await.write_offset;
    assert!(matches!(
        update(&mut c, vec![entry("c", wire::NO_VERSION, "3")], length).await,
        Reply::TableEntriesUpdated(_)
    ));

    // Removals: conditional with a wrong version fails; an absent key removed unconditionally is
    // a no-op; with the right version it goes.
    assert!(matches!(
        remove(&mut c, vec![key("b", va)]).await,
        Reply::TableKeyBadVersion(_)
    ));
    assert!(matches!(
        remove(&mut c, vec![key("ghost", wire::NO_VERSION)]).await,
        Reply::TableKeysRemoved(_)
    ));
    assert!(matches!(
        remove(&mut c, vec![key("ghost", 3)]).await,
        Reply::TableKeyDoesNotExist(_)
    ));
    assert!(matches!(
        remove(&mut c, vec![key("b", vb)]).await,
        Reply::TableKeysRemoved(_)
    ));
    assert_eq!(
        get(&mut c, &["b"]).await,
        vec![("b".into(), -1, String::new())]
    );

    // Many keys, iterated in pages of 7 until an empty page.
    let many: Vec<_> = (0..50)
        .map(|i| entry(&format!("k{i:03}"), wire::NO_VERSION, &format!("value {i}")))
        .collect();
    let many_versions = versions(&mut c, many).await;
    let keys = all_keys(&mut c, 7).await;
    let mut expected: Vec<(String, i64)> = vec![("a".into(), va2)];
    let c_version = get(&mut c, &["c"]).await[0].1;
    expected.push(("c".into(), c_version));
    expected.extend((0..50).map(|i| (format!("k{i:03}"), many_versions[i])));
    expected.sort();
    assert_eq!(keys, expected);
    let entries = all_entries(&mut c, 9).await;
    assert_eq!(entries.len(), 52);
    assert_eq!(entries[0], ("a".into(), va2, "1b".into()));
    assert_eq!(
        entries[51],
        ("k049".into(), many_versions[49], "value 49".into())
    );

    // Delta reads from the start: each live key once, with its latest value; removed keys not.
    let (changes, end) = delta(&mut c, 0).await;
    assert_eq!(end, c.info(TABLE).await.write_offset);
    // Versions are positions: the delta lists them in write order.
    assert!(changes.windows(2).all(|w| w[0].1 < w[1].1));
    let last_of = |name: &str| changes.iter().rev().find(|(k, _, _)| k == name).cloned();
    assert_eq!(last_of("a"), Some(("a".into(), va2, "1b".into())));
    assert_eq!(
        last_of("k007"),
        Some(("k007".into(), many_versions[7], "value 7".into()))
    );
    // From the end: nothing newer.
    assert_eq!(delta(&mut c, end).await.0, vec![]);

    // Delete with must_be_empty refuses a table with keys.
    let request_id = c.next_id();
    let reply = c
        .call(Request::DeleteTableSegment(wire::DeleteTableSegment {
            request_id,
            segment: TABLE.into(),
            must_be_empty: true,
            delegation_token: String::new(),
        }))
        .await;
    assert!(
        matches!(&reply, Reply::TableSegmentNotEmpty(r) if r.request_id == request_id),
        "{reply:?}"
    );
    let request_id = c.next_id();
    let reply = c
        .call(Request::DeleteTableSegment(wire::DeleteTableSegment {
            request_id,
            segment: TABLE.into(),
            must_be_empty: false,
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentDeleted(_)), "{reply:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_segments_merge_into_their_parent_and_vanish_with_their_connection() {
    let server = TestServer::start().await;
    let parent = "scope/large/0.#epoch.0";
    let mut c = server.client().await;
    c.create_segment(parent).await;
    let writer = 0x77u128;
    c.setup_append(parent, writer).await;
    c.send_block(writer, 1, &[Bytes::from_static(b"before")])
        .await;
    assert!(matches!(c.recv().await, Reply::DataAppended(_)));

    // A large event goes through a transient segment, then merges atomically.
    let request_id = c.next_id();
    let transient = match c
        .call(Request::CreateTransientSegment(
            wire::CreateTransientSegment {
                request_id,
                writer_id: writer,
                segment: parent.into(),
                delegation_token: String::new(),
            },
        ))
        .await
    {
        Reply::SegmentCreated(created) => created.segment,
        other => panic!("{other:?}"),
    };
    assert!(
        transient.starts_with(&format!("{parent}#transient.{writer:032x}.")),
        "{transient}"
    );
    let chunk_writer = 0x88u128;
    c.setup_append(&transient, chunk_writer).await;
    let big = vec![b'z'; 3 << 20];
    c.send_block(chunk_writer, 0, &[Bytes::from(big.clone())])
        .await;
    assert!(matches!(c.recv().await, Reply::DataAppended(a) if a.event_number == 0));
    let request_id = c.next_id();
    match c
        .call(Request::MergeSegments(wire::MergeSegments {
            request_id,
            target: parent.into(),
            source: transient.clone(),
            delegation_token: String::new(),
            attribute_updates: None,
        }))
        .await
    {
        Reply::SegmentsMerged(merged) => {
            assert_eq!(merged.source, transient);
            assert_eq!(
                merged.new_target_write_offset,
                (frame_event(b"before").len() + frame_event(&big).len()) as i64
            );
        }
        other => panic!("{other:?}"),
    }
    let events = parse_events(&c.read_all(parent).await);
    assert_eq!(
        events,
        vec![Bytes::from_static(b"before"), Bytes::from(big)]
    );

    // A transient segment left unmerged disappears when its connection closes.
    let mut other = server.client().await;
    let request_id = other.next_id();
    let orphan = match other
        .call(Request::CreateTransientSegment(
            wire::CreateTransientSegment {
                request_id,
                writer_id: 1,
                segment: parent.into(),
                delegation_token: String::new(),
            },
        ))
        .await
    {
        Reply::SegmentCreated(created) => created.segment,
        other => panic!("{other:?}"),
    };
    c.info(&orphan).await;
    drop(other);
    let mut gone = false;
    for _ in 0..100 {
        let request_id = c.next_id();
        let reply = c
            .call(Request::GetStreamSegmentInfo(wire::GetStreamSegmentInfo {
                request_id,
                segment_name: orphan.clone(),
                delegation_token: String::new(),
            }))
            .await;
        if matches!(reply, Reply::NoSuchSegment(_)) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone, "the orphaned transient segment was not deleted");

    // Merge conditions on the target's attributes are checked.
    let request_id = c.next_id();
    let source = match c
        .call(Request::CreateTransientSegment(
            wire::CreateTransientSegment {
                request_id,
                writer_id: 2,
                segment: parent.into(),
                delegation_token: String::new(),
            },
        ))
        .await
    {
        Reply::SegmentCreated(created) => created.segment,
        other => panic!("{other:?}"),
    };
    let request_id = c.next_id();
    let reply = c
        .call(Request::MergeSegments(wire::MergeSegments {
            request_id,
            target: parent.into(),
            source: source.clone(),
            delegation_token: String::new(),
            attribute_updates: Some(vec![wire::ConditionalAttributeUpdate {
                attribute_id: 9,
                update_type: 4,
                new_value: 1,
                old_value: 12345,
            }]),
        }))
        .await;
    assert_eq!(
        reply,
        Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
            request_id,
            success: false
        })
    );
    // A batch merge of sealed transaction-like segments, in order.
    let sources: Vec<String> = (0..3)
        .map(|i| format!("{parent}#transaction.{:016x}{:016x}", 1, i))
        .collect();
    for (i, source) in sources.iter().enumerate() {
        c.create_segment(source).await;
        let w = 1000 + i as u128;
        c.setup_append(source, w).await;
        c.send_block(w, 1, &[Bytes::from(format!("txn {i}"))]).await;
        assert!(matches!(c.recv().await, Reply::DataAppended(_)));
    }
    let before = c.info(parent).await.write_offset;
    let request_id = c.next_id();
    match c
        .call(Request::MergeSegmentsBatch(wire::MergeSegmentsBatch {
            request_id,
            target_segment_id: parent.into(),
            source_segment_ids: sources.clone(),
            delegation_token: String::new(),
        }))
        .await
    {
        Reply::SegmentsBatchMerged(merged) => {
            assert_eq!(merged.new_target_write_offsets.len(), 3);
            let step = frame_event(b"txn 0").len() as i64;
            for (i, (source, offset)) in merged.new_target_write_offsets.iter().enumerate() {
                assert_eq!(source, &sources[i]);
                assert_eq!(*offset, before + step * (i as i64 + 1));
            }
        }
        other => panic!("{other:?}"),
    }
    let events = parse_events(&c.read_all(parent).await);
    assert_eq!(
        events[2..].to_vec(),
        vec![
            Bytes::from("txn 0"),
            Bytes::from("txn 1"),
            Bytes::from("txn 2")
        ]
    );

    // Policy updates are accepted for existing segments.
    let request_id = c.next_id();
    let reply = c
        .call(Request::UpdateSegmentPolicy(wire::UpdateSegmentPolicy {
            request_id,
            segment: parent.into(),
            target_rate: 100,
            scale_type: 2,
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentPolicyUpdated(_)), "{reply:?}");
    server.stop().await;
}

/// A synchronizer removes a key by writing a tombstone value and then removing it; its readers
/// learn of the removal from the tombstone alone, so a removal in the same delta page must not
/// hide the tombstone (it used to, and readers kept the key's old value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_reads_keep_a_value_written_just_before_a_removal() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.create_table(TABLE).await;
    versions(
        &mut c,
        vec![
            entry("x", wire::NO_VERSION, "old"),
            entry("y", wire::NO_VERSION, "1"),
        ],
    )
    .await;
    let tombstone = versions(&mut c, vec![entry("x", wire::NO_VERSION, "tombstone")]).await;
    assert!(matches!(
        remove(&mut c, vec![key("x", tombstone[0])]).await,
        Reply::TableKeysRemoved(_)
    ));
    // Pages of two entries: [x=old, y=1], then [x=tombstone, remove x].
    let (changes, _) = delta(&mut c, 0).await;
    let last_x = changes.iter().rev().find(|(k, _, _)| k == "x").cloned();
    assert_eq!(last_x, Some(("x".into(), tombstone[0], "tombstone".into())));
}

//! Table segment requests against a real segment server: conditional writes, point reads,
//! paging through keys and entries, delta reads.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{client, TestServer};
use pravaha_segment_client::{ClientError, Endpoint, KeyVersion, SegmentClient, TablePage};

fn key(n: usize) -> Bytes {
    Bytes::from(format!("key-{n:04}"))
}

fn value(n: usize, round: usize) -> Bytes {
    Bytes::from(format!("value {n} of round {round}"))
}

async fn create_table(c: &SegmentClient, at: Endpoint, table: &str) {
    c.create_table_segment(at, table, "").await.unwrap();
}

/// A table with key 1 and key 2 written; their versions.
async fn table_with_two_keys(c: &SegmentClient, at: Endpoint, table: &str) -> Vec<i64> {
    create_table(c, at, table).await;
    let entries = vec![
        (key(1), value(1, 0), KeyVersion::NotExists),
        (key(2), value(2, 0), KeyVersion::Any),
    ];
    let versions = c.table_update(at, table, entries, None, "").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(
        versions[0] >= 0 && versions[1] > versions[0],
        "{versions:?}"
    );
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_reads_follow_versions() {
    let server = TestServer::start().await;
    let (at, c, table) = (server.addr(), client(), "scope/_tables/versions");
    let versions = table_with_two_keys(&c, at, table).await;
    let got = c
        .table_get(at, table, vec![key(1), key(3), key(2)], "")
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    let first = got[0].as_ref().unwrap();
    assert_eq!(
        (&first.key, &first.value, first.version),
        (&key(1), &value(1, 0), versions[0])
    );
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_ref().unwrap().version, versions[1]);

    // A conditional update on the current version succeeds and moves the version on.
    let current = vec![(key(1), value(1, 1), KeyVersion::Exactly(versions[0]))];
    let next = c.table_update(at, table, current, None, "").await.unwrap();
    assert!(next[0] > versions[1]);

    // The old version, "must not exist" on a present key, a version on an absent key: all fail
    // and nothing of their batch is written.
    let stale = vec![
        (key(2), value(2, 9), KeyVersion::Any),
        (key(1), value(1, 9), KeyVersion::Exactly(versions[0])),
    ];
    let stale = c.table_update(at, table, stale, None, "").await;
    assert!(
        matches!(&stale, Err(ClientError::TableKeyBadVersion(t)) if t == table),
        "{stale:?}"
    );
    let exists = vec![(key(2), value(2, 9), KeyVersion::NotExists)];
    let exists = c.table_update(at, table, exists, None, "").await;
    assert!(
        matches!(exists, Err(ClientError::TableKeyBadVersion(_))),
        "{exists:?}"
    );
    let absent = vec![(key(5), value(5, 9), KeyVersion::Exactly(0))];
    let absent = c.table_update(at, table, absent, None, "").await;
    assert!(
        matches!(&absent, Err(ClientError::TableKeyDoesNotExist(t)) if t == table),
        "{absent:?}"
    );
    let got = c.table_get(at, table, vec![key(2)], "").await.unwrap();
    assert_eq!(got[0].as_ref().unwrap().value, value(2, 0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_follow_versions() {
    let server = TestServer::start().await;
    let (at, c, table) = (server.addr(), client(), "scope/_tables/removals");
    let versions = table_with_two_keys(&c, at, table).await;
    let next = vec![(key(1), value(1, 1), KeyVersion::Any)];
    let next = c.table_update(at, table, next, None, "").await.unwrap();

    let stale = vec![(key(1), KeyVersion::Exactly(versions[0]))];
    let stale = c.table_remove(at, table, stale, None, "").await;
    assert!(
        matches!(stale, Err(ClientError::TableKeyBadVersion(_))),
        "{stale:?}"
    );
    let absent = vec![(key(5), KeyVersion::Exactly(3))];
    let absent = c.table_remove(at, table, absent, None, "").await;
    assert!(
        matches!(absent, Err(ClientError::TableKeyDoesNotExist(_))),
        "{absent:?}"
    );
    // The current version removes; an absent key removed unconditionally is a no-op.
    let keys = vec![
        (key(1), KeyVersion::Exactly(next[0])),
        (key(9), KeyVersion::Any),
    ];
    c.table_remove(at, table, keys, None, "").await.unwrap();
    let got = c
        .table_get(at, table, vec![key(1), key(2)], "")
        .await
        .unwrap();
    assert_eq!(got[0], None);
    assert_eq!(got[1].as_ref().unwrap().version, versions[1]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_offset_condition_must_match_the_tables_length() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let table = "scope/_tables/offsets";
    create_table(&c, at, table).await;
    c.table_update(
        at,
        table,
        vec![(key(1), value(1, 0), KeyVersion::Any)],
        Some(0),
        "",
    )
    .await
    .unwrap();
    let length = c.segment_info(at, table, "").await.unwrap().length;
    assert!(length > 0);
    let wrong = c
        .table_update(
            at,
            table,
            vec![(key(2), value(2, 0), KeyVersion::Any)],
            Some(0),
            "",
        )
        .await;
    assert!(
        matches!(wrong, Err(ClientError::ConditionalCheckFailed)),
        "{wrong:?}"
    );
    let wrong = c
        .table_remove(
            at,
            table,
            vec![(key(1), KeyVersion::Any)],
            Some(length + 1),
            "",
        )
        .await;
    assert!(
        matches!(wrong, Err(ClientError::ConditionalCheckFailed)),
        "{wrong:?}"
    );
    c.table_update(
        at,
        table,
        vec![(key(2), value(2, 0), KeyVersion::Any)],
        Some(length),
        "",
    )
    .await
    .unwrap();
    let got = c
        .table_get(at, table, vec![key(1), key(2)], "")
        .await
        .unwrap();
    assert!(got.iter().all(Option::is_some));
    server.stop().await;
}

/// Writes `count` keys in batches and returns key → (value, version).
async fn fill(
    c: &SegmentClient,
    at: Endpoint,
    table: &str,
    count: usize,
) -> BTreeMap<Bytes, (Bytes, i64)> {
    let mut written = BTreeMap::new();
    // Written in a scrambled order, so that key order differs from write order.
    let order: Vec<usize> = (0..count).map(|i| (i * 7919) % count).collect();
    for batch in order.chunks(40) {
        let entries: Vec<_> = batch
            .iter()
            .map(|&n| (key(n), value(n, 0), KeyVersion::NotExists))
            .collect();
        let versions = c
            .table_update(at, table, entries.clone(), None, "")
            .await
            .unwrap();
        for ((k, v, _), version) in entries.into_iter().zip(versions) {
            written.insert(k, (v, version));
        }
    }
    assert_eq!(written.len(), count);
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_entries_are_paged_until_an_empty_page() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let table = "scope/_tables/paging";
    create_table(&c, at, table).await;
    let written = fill(&c, at, table, 250).await;

    let mut keys = Vec::new();
    let mut page = TablePage {
        max_items: 7,
        ..TablePage::default()
    };
    let mut pages = 0;
    loop {
        let (items, continuation) = c.table_keys(at, table, page.clone(), "").await.unwrap();
        pages += 1;
        assert!(items.len() <= 7);
        if items.is_empty() {
            break;
        }
        keys.extend(items);
        page.continuation = continuation;
        assert!(pages < 1000, "paging does not end");
    }
    assert_eq!(pages, 250usize.div_ceil(7) + 1);
    let expected: Vec<(Bytes, i64)> = written
        .iter()
        .map(|(k, (_, version))| (k.clone(), *version))
        .collect();
    assert_eq!(
        keys, expected,
        "every key once, in key order, with its version"
    );

    let mut entries = Vec::new();
    let mut page = TablePage {
        max_items: 11,
        ..TablePage::default()
    };
    loop {
        let (items, continuation) = c.table_entries(at, table, page.clone(), "").await.unwrap();
        if items.is_empty() {
            break;
        }
        entries.extend(items);
        page.continuation = continuation;
    }
    assert_eq!(entries.len(), written.len());
    for entry in entries {
        let (value, version) = &written[&entry.key];
        assert_eq!((&entry.value, entry.version), (value, *version));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pages_honour_prefix_and_bounds() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let table = "scope/_tables/filters";
    create_table(&c, at, table).await;
    fill(&c, at, table, 120).await;

    let collect = |page: TablePage| {
        let c = c.clone();
        async move {
            let mut page = page;
            let mut keys = Vec::new();
            loop {
                let (items, continuation) =
                    c.table_keys(at, table, page.clone(), "").await.unwrap();
                if items.is_empty() {
                    return keys;
                }
                keys.extend(items.into_iter().map(|(k, _)| k));
                page.continuation = continuation;
            }
        }
    };
    let prefixed = collect(TablePage {
        max_items: 4,
        prefix: Some(Bytes::from_static(b"key-005")),
        ..TablePage::default()
    })
    .await;
    assert_eq!(prefixed, (50..60).map(key).collect::<Vec<_>>());
    let bounded = collect(TablePage {
        max_items: 4,
        from_key: Some(key(95)),
        to_key: Some(key(104)),
        ..TablePage::default()
    })
    .await;
    assert_eq!(bounded, (95..=104).map(key).collect::<Vec<_>>());
    let upper = collect(TablePage {
        max_items: 50,
        to_key: Some(key(9)),
        ..TablePage::default()
    })
    .await;
    assert_eq!(upper, (0..=9).map(key).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_follow_writes_from_a_position() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let table = "scope/_tables/delta";
    create_table(&c, at, table).await;
    let written = fill(&c, at, table, 60).await;

    // From the start, in pages, until the end.
    let mut position = 0;
    let mut seen = BTreeMap::new();
    let mut pages = 0;
    loop {
        let delta = c.table_delta(at, table, position, 8, "").await.unwrap();
        assert!(!delta.should_clear);
        pages += 1;
        for entry in delta.entries {
            seen.insert(entry.key, (entry.value, entry.version));
        }
        assert!(delta.last_position >= position);
        position = delta.last_position;
        if delta.reached_end {
            break;
        }
        assert!(pages < 100, "delta reads do not end");
    }
    assert!(pages > 1);
    assert_eq!(seen, written);
    assert_eq!(
        position,
        c.segment_info(at, table, "").await.unwrap().length
    );

    // Nothing new: an empty page at the end.
    let delta = c.table_delta(at, table, position, 8, "").await.unwrap();
    assert!(delta.entries.is_empty());
    assert!(delta.reached_end);
    assert_eq!(delta.last_position, position);

    // An update and a removal: the delta holds the update only.
    let versions = c
        .table_update(
            at,
            table,
            vec![(key(3), value(3, 1), KeyVersion::Any)],
            None,
            "",
        )
        .await
        .unwrap();
    c.table_remove(at, table, vec![(key(4), KeyVersion::Any)], None, "")
        .await
        .unwrap();
    let delta = c.table_delta(at, table, position, 8, "").await.unwrap();
    assert_eq!(delta.entries.len(), 1);
    let entry = &delta.entries[0];
    assert_eq!(
        (&entry.key, &entry.value, entry.version),
        (&key(3), &value(3, 1), versions[0])
    );
    assert!(delta.reached_end);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_keys_is_not_deleted_when_it_must_be_empty() {
    let server = TestServer::start().await;
    let at = server.addr();
    let c = client();
    let table = "scope/_tables/full";
    create_table(&c, at, table).await;
    c.table_update(
        at,
        table,
        vec![(key(1), value(1, 0), KeyVersion::Any)],
        None,
        "",
    )
    .await
    .unwrap();
    let refused = c.delete_table_segment(at, table, true, "").await;
    assert!(
        matches!(&refused, Err(ClientError::TableNotEmpty(t)) if t == table),
        "{refused:?}"
    );
    c.table_remove(at, table, vec![(key(1), KeyVersion::Any)], None, "")
        .await
        .unwrap();
    c.delete_table_segment(at, table, true, "").await.unwrap();

    // Without the condition a full table is deleted.
    let other = "scope/_tables/full2";
    create_table(&c, at, other).await;
    c.table_update(
        at,
        other,
        vec![(key(1), value(1, 0), KeyVersion::Any)],
        None,
        "",
    )
    .await
    .unwrap();
    c.delete_table_segment(at, other, false, "").await.unwrap();
    let missing = c.delete_table_segment(at, other, false, "").await;
    assert!(
        matches!(missing, Err(ClientError::NoSuchSegment(_))),
        "{missing:?}"
    );
    server.stop().await;
}

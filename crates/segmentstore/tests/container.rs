//! Container behaviour through its public API, on a real log directory and file-system Tier-2.

use std::time::Duration;

use bytes::Bytes;
use pravaha_segmentstore::{
    AppendConditions, AttributeUpdate, ContainerConfig, ExpectedVersion, SegmentError, SegmentKind,
    SegmentStore, SegmentStoreConfig, TableChange,
};

fn config(dir: &std::path::Path) -> SegmentStoreConfig {
    let mut config = SegmentStoreConfig::new(dir);
    config.container_count = 2;
    config.container = ContainerConfig {
        flush_interval: Duration::from_millis(20),
        chunk_max_age: Duration::from_millis(50),
        ..ContainerConfig::default()
    };
    config
}

async fn open(dir: &std::path::Path) -> SegmentStore {
    SegmentStore::open(config(dir)).await.unwrap()
}

fn put(key: &str, value: &str, expected: ExpectedVersion) -> TableChange {
    TableChange {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        expected,
    }
}

#[tokio::test]
async fn append_read_seal_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let c = store.container("scope/stream/0.#epoch.0");
    let name = "scope/stream/0.#epoch.0";
    c.create_segment(name, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    assert!(matches!(
        c.create_segment(name, SegmentKind::Stream, vec![]).await,
        Err(SegmentError::AlreadyExists(_))
    ));
    let first = c
        .append(
            name,
            Bytes::from_static(b"hello "),
            AppendConditions::default(),
        )
        .await
        .unwrap();
    assert_eq!(first.offset, Some(0));
    let second = c
        .append(
            name,
            Bytes::from_static(b"world"),
            AppendConditions::default(),
        )
        .await
        .unwrap();
    assert_eq!(second.offset, Some(6));
    let read = c.read(name, 0, 100, Duration::ZERO).await.unwrap();
    assert_eq!(read.data, "hello world");
    // Conditional append on a wrong offset.
    let wrong = AppendConditions {
        expected_offset: Some(3),
        writer: None,
    };
    assert!(matches!(
        c.append(name, Bytes::from_static(b"x"), wrong).await,
        Err(SegmentError::BadOffset { expected: 11, .. })
    ));
    // Tail read times out empty, then sees new data.
    let tail = c
        .read(name, 11, 100, Duration::from_millis(20))
        .await
        .unwrap();
    assert!(tail.data.is_empty() && !tail.end_of_segment);
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move { c.read(name, 11, 100, Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.append(name, Bytes::from_static(b"!"), AppendConditions::default())
        .await
        .unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().data, "!");
    assert!(matches!(
        c.read(name, 50, 1, Duration::ZERO).await,
        Err(SegmentError::BadOffset { .. })
    ));
    assert_eq!(c.seal(name).await.unwrap(), 12);
    assert!(matches!(
        c.append(name, Bytes::from_static(b"x"), AppendConditions::default())
            .await,
        Err(SegmentError::Sealed(_))
    ));
    assert!(
        c.read(name, 12, 10, Duration::from_secs(5))
            .await
            .unwrap()
            .end_of_segment
    );
    assert!(matches!(
        c.info("nope").await,
        Err(SegmentError::NoSuchSegment(_))
    ));
    let big = Bytes::from(vec![0u8; (16 << 20) + 1]);
    c.create_segment("big", SegmentKind::Stream, vec![])
        .await
        .unwrap();
    assert!(matches!(
        c.append("big", big, AppendConditions::default()).await,
        Err(SegmentError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn idempotent_appends_and_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let c = store.container("seg");
    c.create_segment("seg", SegmentKind::Stream, vec![(7, 70)])
        .await
        .unwrap();
    let writer = 0xABCD;
    for event in 1..=3 {
        let conditions = AppendConditions {
            expected_offset: None,
            writer: Some((writer, event)),
        };
        c.append("seg", Bytes::from(format!("e{event}")), conditions)
            .await
            .unwrap();
    }
    let retry = AppendConditions {
        expected_offset: None,
        writer: Some((writer, 2)),
    };
    let outcome = c
        .append("seg", Bytes::from_static(b"e2"), retry)
        .await
        .unwrap();
    assert_eq!(
        outcome.offset, None,
        "a duplicate is acknowledged, not written"
    );
    assert_eq!(c.info("seg").await.unwrap().length, 6);
    assert_eq!(
        c.get_attributes("seg", vec![writer, 7, 8]).await.unwrap(),
        vec![Some(3), Some(70), None]
    );
    let cas = |expected, value| AttributeUpdate {
        id: 7,
        value,
        expected: Some(expected),
    };
    c.update_attributes("seg", vec![cas(Some(70), 71)])
        .await
        .unwrap();
    assert!(matches!(
        c.update_attributes("seg", vec![cas(Some(70), 72)]).await,
        Err(SegmentError::AttributeMismatch {
            actual: Some(71),
            ..
        })
    ));
    store.shutdown().await;
    let store = open(dir.path()).await;
    let c = store.container("seg");
    assert_eq!(
        c.get_attributes("seg", vec![writer, 7]).await.unwrap(),
        vec![Some(3), Some(71)]
    );
    let retry = AppendConditions {
        expected_offset: None,
        writer: Some((writer, 3)),
    };
    assert_eq!(
        c.append("seg", Bytes::from_static(b"e3"), retry)
            .await
            .unwrap()
            .offset,
        None
    );
}

#[tokio::test]
async fn truncate_merge_delete_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let target = "s/t/0.#epoch.0";
    let source = "s/t/0.#epoch.0#transaction.00000000000000010000000000000002";
    let c = store.container(target);
    c.create_segment(target, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    c.create_segment(source, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    c.append(
        target,
        Bytes::from_static(b"0123456789"),
        AppendConditions::default(),
    )
    .await
    .unwrap();
    c.append(
        source,
        Bytes::from_static(b"txn"),
        AppendConditions::default(),
    )
    .await
    .unwrap();
    assert!(matches!(
        c.merge(target, source).await,
        Err(SegmentError::NotSealed(_))
    ));
    c.seal(source).await.unwrap();
    let merged = c.merge(target, source).await.unwrap();
    assert_eq!(merged.length, 13);
    assert!(matches!(
        c.info(source).await,
        Err(SegmentError::NoSuchSegment(_))
    ));
    c.truncate(target, 4).await.unwrap();
    assert!(matches!(
        c.read(target, 2, 5, Duration::ZERO).await,
        Err(SegmentError::Truncated {
            start_offset: 4,
            ..
        })
    ));
    assert_eq!(
        c.read(target, 4, 100, Duration::ZERO).await.unwrap().data,
        "456789txn"
    );
    c.create_segment("doomed", SegmentKind::Stream, vec![])
        .await
        .unwrap();
    c.delete_segment("doomed").await.unwrap();
    store.shutdown().await;
    let store = open(dir.path()).await;
    let c = store.container(target);
    let info = c.info(target).await.unwrap();
    assert_eq!((info.start_offset, info.length), (4, 13));
    assert_eq!(c.read_exact(target, 4, 9).await.unwrap(), "456789txn");
    assert!(matches!(
        c.info("doomed").await,
        Err(SegmentError::NoSuchSegment(_))
    ));
}

#[tokio::test]
async fn tables_with_versions_iteration_and_delta() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let t = "scope/_tables/meta";
    let c = store.container(t);
    c.create_segment(t, SegmentKind::Table, vec![])
        .await
        .unwrap();
    let versions = c
        .table_update(
            t,
            vec![
                put("a", "1", ExpectedVersion::NotExists),
                put("b", "2", ExpectedVersion::NotExists),
            ],
        )
        .await
        .unwrap();
    assert_eq!(versions[0], 0);
    let conflict = c
        .table_update(
            t,
            vec![
                put("c", "3", ExpectedVersion::Any),
                put("a", "x", ExpectedVersion::NotExists),
            ],
        )
        .await;
    assert!(matches!(
        conflict,
        Err(SegmentError::TableKeyVersionMismatch { .. })
    ));
    assert_eq!(
        c.table_get(t, vec![Bytes::from_static(b"c")])
            .await
            .unwrap(),
        vec![None],
        "all or nothing"
    );
    let updated = c
        .table_update(
            t,
            vec![put("a", "10", ExpectedVersion::Exactly(versions[0]))],
        )
        .await
        .unwrap();
    let stale = c
        .table_update(
            t,
            vec![put("a", "11", ExpectedVersion::Exactly(versions[0]))],
        )
        .await;
    assert!(matches!(
        stale,
        Err(SegmentError::TableKeyVersionMismatch { .. })
    ));
    let missing = c
        .table_update(t, vec![put("zz", "1", ExpectedVersion::Exactly(3))])
        .await;
    assert!(matches!(
        missing,
        Err(SegmentError::TableKeyDoesNotExist(_))
    ));
    let removal = TableChange {
        key: Bytes::from_static(b"b"),
        value: None,
        expected: ExpectedVersion::Exactly(versions[1]),
    };
    c.table_update(t, vec![removal]).await.unwrap();
    for key in ["k1", "k2", "k3", "k4"] {
        c.table_update(t, vec![put(key, key, ExpectedVersion::Any)])
            .await
            .unwrap();
    }
    let page = c.table_keys(t, None, 3).await.unwrap();
    let names: Vec<_> = page.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(names, vec!["a", "k1", "k2"]);
    let rest = c
        .table_entries(t, Some(names[2].clone()), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|e| e.value.clone()).collect::<Vec<_>>(),
        vec!["k3", "k4"]
    );
    let (delta, next) = c.table_read_delta(t, updated[0], 1 << 20).await.unwrap();
    assert_eq!(
        delta.len(),
        6,
        "the update of a, the removal of b, four puts"
    );
    assert_eq!(delta[1].value, None);
    assert_eq!(next, c.info(t).await.unwrap().length);
    store.shutdown().await;
    let store = open(dir.path()).await;
    let c = store.container(t);
    let got = c
        .table_get(t, vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")])
        .await
        .unwrap();
    assert_eq!(
        got[0].as_ref().map(|e| (e.value.clone(), e.version)),
        Some((Bytes::from_static(b"10"), updated[0]))
    );
    assert_eq!(got[1], None);
}

#[tokio::test]
async fn data_moves_to_tier2_and_is_read_back_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.container.chunk_target_bytes = 64 << 10;
    cfg.container.cache_budget_bytes = 256 << 10;
    cfg.container.checkpoint_log_bytes = 128 << 10;
    cfg.container.log.max_file_bytes = 64 << 10;
    let store = SegmentStore::open(cfg.clone()).await.unwrap();
    let c = store.container("long");
    c.create_segment("long", SegmentKind::Stream, vec![])
        .await
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..2000u32 {
        let data = Bytes::from(format!("{i:08}-").repeat(100));
        expected.extend_from_slice(&data);
        c.append("long", data, AppendConditions::default())
            .await
            .unwrap();
    }
    // Wait (bounded) for Tier-2 to catch up.
    for _ in 0..500 {
        if c.info("long").await.unwrap().unstored_bytes == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(c.info("long").await.unwrap().unstored_bytes, 0);
    let stats = c.stats().await.unwrap();
    assert!(stats.cached_bytes <= 256 << 10, "cache bounded: {stats:?}");
    store.shutdown().await;
    let store = SegmentStore::open(cfg).await.unwrap();
    let c = store.container("long");
    let data = c
        .read_exact("long", 0, expected.len() as u64)
        .await
        .unwrap();
    assert!(data == expected, "Tier-2 data differs");
}

#[tokio::test]
async fn a_data_directory_keeps_its_container_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.shutdown().await;
    let mut other = config(dir.path());
    other.container_count = 3;
    let refused = SegmentStore::open(other)
        .await
        .err()
        .expect("a different container count is refused");
    assert!(
        matches!(refused, SegmentError::InvalidArgument(_)),
        "{refused}"
    );
    open(dir.path()).await.shutdown().await;
}

#[tokio::test]
async fn table_segments_cannot_be_truncated_or_appended_raw() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let c = store.container("t");
    c.create_segment("t", SegmentKind::Table, vec![])
        .await
        .unwrap();
    assert!(matches!(
        c.truncate("t", 0).await,
        Err(SegmentError::WrongSegmentKind { .. })
    ));
    let raw = c
        .append("t", Bytes::from_static(b"x"), AppendConditions::default())
        .await;
    assert!(matches!(raw, Err(SegmentError::WrongSegmentKind { .. })));
}

/// Chunk files under the Tier-2 root (the fs backend's layout), excluding its staging area.
fn chunk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".staging") {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("tier2"), &mut out);
    out.sort();
    out
}

async fn wait_until_stored(c: &pravaha_segmentstore::ContainerHandle, name: &str) {
    for _ in 0..500 {
        if c.info(name).await.unwrap().unstored_bytes == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{name} never reached Tier-2");
}

async fn wait_for_chunk_count(dir: &std::path::Path, expected: usize) {
    for _ in 0..500 {
        if chunk_files(dir).len() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {expected} chunks, found {:?}", chunk_files(dir));
}

#[tokio::test]
async fn tier2_follows_merge_truncate_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.container_count = 1;
    cfg.container.chunk_target_bytes = 1000;
    let store = SegmentStore::open(cfg.clone()).await.unwrap();
    let c = store.container("a");
    let target = "s/t/1.#epoch.0";
    let source = "s/t/1.#epoch.0#transaction.0000000000000000000000000000000f";
    c.create_segment(target, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    c.create_segment(source, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    for i in 0..4u8 {
        c.append(
            target,
            Bytes::from(vec![b'a' + i; 1000]),
            AppendConditions::default(),
        )
        .await
        .unwrap();
        wait_until_stored(c, target).await;
    }
    c.append(
        source,
        Bytes::from(vec![b'z'; 1000]),
        AppendConditions::default(),
    )
    .await
    .unwrap();
    wait_until_stored(c, source).await;
    wait_for_chunk_count(dir.path(), 5).await;
    // Merge adopts the source's chunk without copying it.
    c.seal(source).await.unwrap();
    c.merge(target, source).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_for_chunk_count(dir.path(), 5).await;
    // Truncation frees the chunks wholly before the new start.
    c.truncate(target, 2500).await.unwrap();
    wait_for_chunk_count(dir.path(), 3).await;
    store.shutdown().await;
    let store = SegmentStore::open(cfg.clone()).await.unwrap();
    let c = store.container("a");
    let tail = c.read_exact(target, 2500, 2500).await.unwrap();
    let mut expected = vec![b'c'; 500];
    expected.extend(vec![b'd'; 1000]);
    expected.extend(vec![b'z'; 1000]);
    assert!(
        tail == expected,
        "merged and truncated data read back from Tier-2"
    );
    // Deletion leaves no chunk behind.
    c.delete_segment(target).await.unwrap();
    wait_for_chunk_count(dir.path(), 0).await;
    store.shutdown().await;
}

/// Lengths of the chunk files, in name order.
fn chunk_lengths(dir: &std::path::Path) -> Vec<u64> {
    chunk_files(dir)
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .collect()
}

async fn wait_for_chunk_lengths(dir: &std::path::Path, expected: &[u64]) {
    for _ in 0..500 {
        if chunk_lengths(dir) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected chunks of {expected:?} bytes, found {:?}",
        chunk_lengths(dir)
    );
}

/// Appends 1000 bytes of `byte` to `segment` and waits until they are in Tier-2.
async fn append_stored(c: &pravaha_segmentstore::ContainerHandle, segment: &str, byte: u8) {
    let data = Bytes::from(vec![byte; 1000]);
    c.append(segment, data, AppendConditions::default())
        .await
        .unwrap();
    wait_until_stored(c, segment).await;
}

/// Ranges stored one round at a time go into the segment's last chunk until it reaches the
/// target size; a chunk is deleted only once truncation leaves none of its ranges, a merged
/// source's chunk goes on growing in its target, and everything reads back from Tier-2 after a
/// restart.
#[tokio::test]
async fn ranges_fill_a_chunk_up_to_the_target_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.container_count = 1;
    cfg.container.chunk_target_bytes = 4000;
    // Nothing stays cached once it is in Tier-2: reads after the restart come from chunks.
    cfg.container.cache_budget_bytes = 0;
    let store = SegmentStore::open(cfg.clone()).await.unwrap();
    let c = store.container("a");
    let name = "s/t/1.#epoch.0";
    let source = "s/t/1.#epoch.0#transaction.0000000000000000000000000000000f";
    c.create_segment(name, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    // Segment bytes [1000 i, 1000 (i + 1)) are all `b'a' + i`.
    for i in 0..10 {
        append_stored(c, name, b'a' + i).await;
    }
    wait_for_chunk_lengths(dir.path(), &[4000, 4000, 2000]).await;
    // The first chunk goes once its last range is truncated away, the second stays while it
    // holds a range after the start offset.
    c.truncate(name, 4500).await.unwrap();
    wait_for_chunk_lengths(dir.path(), &[4000, 2000]).await;
    c.truncate(name, 6000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(chunk_lengths(dir.path()), [4000, 2000]);
    // The third chunk takes one more range; after the merge, the target's next range goes
    // into the source's chunk (named after the source, sorted after the target's chunks).
    append_stored(c, name, b'a' + 10).await;
    c.create_segment(source, SegmentKind::Stream, vec![])
        .await
        .unwrap();
    append_stored(c, source, b'a' + 11).await;
    c.seal(source).await.unwrap();
    c.merge(name, source).await.unwrap();
    append_stored(c, name, b'a' + 12).await;
    assert_eq!(chunk_lengths(dir.path()), [4000, 3000, 2000]);
    store.shutdown().await;
    let store = SegmentStore::open(cfg.clone()).await.unwrap();
    let c = store.container("a");
    let read = c.read_exact(name, 6000, 7000).await.unwrap();
    let expected: Vec<u8> = (6..13).flat_map(|i| vec![b'a' + i; 1000]).collect();
    assert!(read == expected, "read back from Tier-2");
    c.delete_segment(name).await.unwrap();
    wait_for_chunk_count(dir.path(), 0).await;
    store.shutdown().await;
}

/// A create answered "already exists" because another create of the name is accepted but not
/// yet durable must not overtake it: whoever is told the segment exists finds it at once
/// (as a table too: `table_get` on a table created by the other request).
#[tokio::test]
async fn already_exists_is_answered_only_once_the_segment_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    for round in 0..50 {
        let name = format!("scope/_tables_{round}");
        let c = store.container(&name);
        let mut first = Box::pin(c.create_segment(&name, SegmentKind::Table, vec![]));
        let mut second = Box::pin(c.create_segment(&name, SegmentKind::Table, vec![]));
        let (answered, other) = tokio::select! {
            result = &mut first => (result, second),
            result = &mut second => (result, first),
        };
        if matches!(answered, Err(SegmentError::AlreadyExists(_))) {
            // Asked while the other create may still be on its way to the log.
            let info = c.info(&name).await;
            assert!(info.is_ok(), "round {round}: {info:?}");
            let found = c.table_get(&name, vec![Bytes::from_static(b"k")]).await;
            assert!(found.is_ok(), "round {round}: {found:?}");
        }
        let results = [answered, other.await];
        let created = results.iter().filter(|result| result.is_ok()).count();
        assert_eq!(
            created, 1,
            "round {round}: one create succeeds: {results:?}"
        );
    }
}

/// Every file under `dir` with its length.
fn file_lengths(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(path),
                Ok(meta) => out.push((path, meta.len())),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Shutdown returns only once the Tier-2 writes it interrupted have ended. The writer used to
/// be aborted, which cannot stop a blocking chunk write: files kept appearing in the data
/// directory after the store had stopped (a benchmark's removed directory came back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_tier2_writes_in_flight() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.container_count = 1;
        // Long enough for all the data to be appended before the first round, which then
        // writes 32 MiB of chunks.
        config.container.flush_interval = Duration::from_millis(500);
        config.container.chunk_max_age = Duration::ZERO;
        let store = SegmentStore::open(config).await.unwrap();
        let data = Bytes::from(vec![7_u8; 1 << 20]);
        for segment in 0..32 {
            let name = format!("s/t/{segment}.#epoch.0");
            let c = store.container(&name);
            c.create_segment(&name, SegmentKind::Stream, vec![])
                .await
                .unwrap();
            c.append(&name, data.clone(), AppendConditions::default())
                .await
                .unwrap();
        }
        // A round of 32 chunks is under way once its first file exists.
        for _ in 0..5000 {
            if !chunk_files(dir.path()).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        store.shutdown().await;
        let stopped = file_lengths(dir.path());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            file_lengths(dir.path()),
            stopped,
            "round {round}: files changed after shutdown returned"
        );
    }
}

/// Operations are committed (made visible to reads) after the next batch is handed to the log,
/// not when they are acknowledged. Whatever a writer was told is durable must still be what it
/// reads next, while other writers keep the container busy with new batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_append_is_visible_to_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let mut writers = Vec::new();
    for writer in 0..16 {
        let name = format!("scope/visible/{writer}.#epoch.0");
        let c = store.container(&name).clone();
        c.create_segment(&name, SegmentKind::Stream, vec![])
            .await
            .unwrap();
        writers.push(tokio::spawn(async move {
            let mut expected = Vec::new();
            for n in 0..40_u32 {
                let data = format!("<{writer}:{n}>");
                let outcome = c
                    .append(
                        &name,
                        Bytes::from(data.clone()),
                        AppendConditions::default(),
                    )
                    .await
                    .unwrap();
                assert_eq!(outcome.offset, Some(expected.len() as u64));
                expected.extend_from_slice(data.as_bytes());
                let info = c.info(&name).await.unwrap();
                assert_eq!(info.length, expected.len() as u64, "{name} after {n}");
                let read = c.read(&name, 0, 1 << 20, Duration::ZERO).await.unwrap();
                assert_eq!(read.data, expected, "{name} after {n}");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
}

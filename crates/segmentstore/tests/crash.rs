//! Crash recovery with real processes and SIGKILL.
//!
//! The test binary re-executes itself: `crash_child` (a no-op unless `PRAVAHA_CRASH_CHILD_DIR`
//! is set) opens a segment store on that directory and writes until it is killed, printing one
//! line per acknowledged operation. `crash_recovery` runs many such children on one directory,
//! kills each at a random moment, then opens the store itself and checks that everything
//! acknowledged survived, byte for byte, and that nothing else did except whole operations
//! that were in flight at the kill.
//!
//! Every append is self-describing (a header naming its segment, offset, length and seed; a body
//! generated from them), so the checker can account for every byte of a segment, including
//! durable appends whose acknowledgement the kill swallowed. Table values carry their seed too.
//!
//! The schedule is random; the seed is printed, and `PRAVAHA_CRASH_SEED=<seed>` repeats it
//! (timing still varies, so a replay is likely, not certain, to hit the same crash). A failed
//! check keeps a copy of the data directory in the temporary directory, named after the seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pravaha_segmentstore::operation_codec;
use pravaha_segmentstore::state::Operation;
use pravaha_segmentstore::{
    AppendConditions, ContainerConfig, ExpectedVersion, SegmentError, SegmentKind, SegmentStore,
    SegmentStoreConfig, TableChange,
};
use pravaha_storage::log::{DurableLog, FileLogDevice, LogConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_DIR_VAR: &str = "PRAVAHA_CRASH_CHILD_DIR";
const CHILD_SEED_VAR: &str = "PRAVAHA_CRASH_CHILD_SEED";
const SEED_VAR: &str = "PRAVAHA_CRASH_SEED";
const CHILD_TEST: &str = "crash_child";

const CYCLES: usize = 30;
/// Every this many cycles the child is killed without waiting for it to be ready, so that some
/// kills land in recovery (torn-tail repair, orphan sweep, the first checkpoint).
const EARLY_KILL_EVERY: usize = 5;
const SEGMENTS: u32 = 4;
const TABLE: &str = "crash/table";
const KEYS: usize = 16;
const UPDATERS: usize = 2;
/// A child never outlives this (it guards against a parent that died without killing it).
const CHILD_LIFETIME: Duration = Duration::from_secs(20);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// Append layout (little-endian): magic, segment index, offset, total length, seed; then a body
/// generated from all of them.
const MAGIC: u32 = 0x5052_4356;
const HEADER_LEN: usize = 28;

fn segment_name(index: u32) -> String {
    format!("crash/stream-{index}")
}

fn key_name(index: usize) -> String {
    format!("key-{index:02}")
}

fn store_config(dir: &Path) -> SegmentStoreConfig {
    let mut config = SegmentStoreConfig::new(dir);
    config.container_count = 2;
    config.container = ContainerConfig {
        log: LogConfig {
            max_file_bytes: 128 << 10,
            ..LogConfig::default()
        },
        cache_budget_bytes: 1 << 20,
        chunk_target_bytes: 64 << 10,
        chunk_max_age: Duration::from_millis(20),
        flush_interval: Duration::from_millis(10),
        checkpoint_log_bytes: 128 << 10,
        read_ahead_bytes: 64 << 10,
        ..ContainerConfig::default()
    };
    config
}

/// Fills `out` with bytes determined by `seed` (splitmix64).
fn fill(seed: u64, out: &mut [u8]) {
    let mut state = seed;
    for piece in out.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        piece.copy_from_slice(&z.to_le_bytes()[..piece.len()]);
    }
}

fn payload(segment: u32, offset: u64, len: usize, seed: u64) -> Vec<u8> {
    assert!(len >= HEADER_LEN);
    let mut data = vec![0; len];
    data[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    data[4..8].copy_from_slice(&segment.to_le_bytes());
    data[8..16].copy_from_slice(&offset.to_le_bytes());
    data[16..20].copy_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
    data[20..28].copy_from_slice(&seed.to_le_bytes());
    let body_seed = seed ^ offset.rotate_left(21) ^ u64::from(segment).rotate_left(53);
    fill(body_seed, &mut data[HEADER_LEN..]);
    data
}

fn table_value(key: &str, seed: u64) -> Vec<u8> {
    let len = 8 + usize::try_from(seed % 200).unwrap();
    let mut value = vec![0; len];
    value[..8].copy_from_slice(&seed.to_le_bytes());
    fill(
        seed ^ u64::from(crc32c::crc32c(key.as_bytes())),
        &mut value[8..],
    );
    value
}

/// The seed of a well-formed table value of `key`, or `None`.
fn table_value_seed(key: &str, value: &[u8]) -> Option<u64> {
    let seed = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    (table_value(key, seed) == value).then_some(seed)
}

// ---------------------------------------------------------------------------------------------
// The child: writes until killed.

#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_VAR)
        .expect("the parent passes a seed")
        .parse()
        .expect("the seed is a number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(child_main(PathBuf::from(dir), seed));
}

fn die(what: &str) -> ! {
    eprintln!("crash child: {what}");
    std::process::exit(2)
}

/// Prints one line and flushes it: once it is out, the parent may hold the store to it.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}

/// The segment's current length, creating it when absent (a creation may have been durable
/// without being acknowledged before the last kill).
async fn ensure_segment(store: &SegmentStore, name: &str, kind: SegmentKind) -> u64 {
    let container = store.container(name);
    match container.info(name).await {
        Ok(info) => return info.length,
        Err(SegmentError::NoSuchSegment(_)) => {}
        Err(error) => die(&format!("info {name}: {error}")),
    }
    if let Err(error) = container.create_segment(name, kind, vec![]).await {
        die(&format!("create {name}: {error}"));
    }
    emit(&format!("C {name}"));
    0
}

async fn child_main(dir: PathBuf, seed: u64) {
    // The test harness has printed "test crash_child ... " without ending the line.
    emit("");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let store = SegmentStore::open(store_config(&dir))
        .await
        .unwrap_or_else(|error| die(&format!("open: {error}")));
    let mut lengths = Vec::new();
    for segment in 0..SEGMENTS {
        lengths.push(ensure_segment(&store, &segment_name(segment), SegmentKind::Stream).await);
    }
    ensure_segment(&store, TABLE, SegmentKind::Table).await;
    let keys: Vec<Bytes> = (0..KEYS).map(|k| Bytes::from(key_name(k))).collect();
    let entries = store
        .container(TABLE)
        .table_get(TABLE, keys)
        .await
        .unwrap_or_else(|error| die(&format!("table get: {error}")));
    let versions: Vec<Option<u64>> = entries
        .iter()
        .map(|e| e.as_ref().map(|e| e.version))
        .collect();
    emit("READY");
    for (segment, length) in (0..SEGMENTS).zip(lengths) {
        tokio::spawn(appender(store.clone(), segment, length, rng.gen()));
    }
    for updater_index in 0..UPDATERS {
        let owned: Vec<(usize, Option<u64>)> = (0..KEYS)
            .filter(|k| k % UPDATERS == updater_index)
            .map(|k| (k, versions[k]))
            .collect();
        tokio::spawn(updater(store.clone(), owned, rng.gen()));
    }
    tokio::time::sleep(CHILD_LIFETIME).await;
    die("was not killed in time");
}

/// Appends to one segment, one append at a time, each conditional on the offset it expects.
async fn appender(store: SegmentStore, segment: u32, mut offset: u64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let name = segment_name(segment);
    let container = store.container(&name).clone();
    loop {
        let len = if rng.gen_ratio(1, 8) {
            rng.gen_range(HEADER_LEN..=48 << 10)
        } else {
            rng.gen_range(HEADER_LEN..=4 << 10)
        };
        let append_seed: u64 = rng.gen();
        let data = Bytes::from(payload(segment, offset, len, append_seed));
        let conditions = AppendConditions {
            expected_offset: Some(offset),
            writer: None,
        };
        match container.append(&name, data, conditions).await {
            Ok(outcome) if outcome.offset == Some(offset) => {}
            other => die(&format!("append to {name} at {offset}: {other:?}")),
        }
        emit(&format!("A {segment} {offset} {len} {append_seed}"));
        offset += len as u64;
    }
}

/// Updates (and sometimes removes) its own keys, each change conditional on the key's version.
async fn updater(store: SegmentStore, owned: Vec<(usize, Option<u64>)>, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let container = store.container(TABLE).clone();
    let mut versions: BTreeMap<usize, Option<u64>> = owned.into_iter().collect();
    let keys: Vec<usize> = versions.keys().copied().collect();
    loop {
        let key_index = keys[rng.gen_range(0..keys.len())];
        let key = key_name(key_index);
        let current = versions[&key_index];
        let expected = current.map_or(ExpectedVersion::NotExists, ExpectedVersion::Exactly);
        let remove = current.is_some() && rng.gen_ratio(1, 10);
        let value_seed: u64 = rng.gen();
        let change = TableChange {
            key: Bytes::from(key.clone()),
            value: (!remove).then(|| Bytes::from(table_value(&key, value_seed))),
            expected,
        };
        let version = match container.table_update(TABLE, vec![change]).await {
            Ok(versions) if versions.len() == 1 => versions[0],
            other => die(&format!("table update of {key} ({expected:?}): {other:?}")),
        };
        if remove {
            emit(&format!("T {key} {version} -"));
        } else {
            emit(&format!("T {key} {version} {value_seed}"));
        }
        versions.insert(key_index, (!remove).then_some(version));
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: kills children and checks what they left.

/// Kills the child if the parent gives up on it (a failed assertion, a timeout).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct ChildRun {
    lines: Vec<String>,
    ready: bool,
    ran_for: Duration,
}

fn spawn_child(
    dir: &Path,
    seed: u64,
) -> (
    ChildGuard,
    mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_SEED_VAR, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                // A line cut by the kill was never acknowledged.
                Ok(0) | Err(_) => return,
                Ok(_) if !line.ends_with('\n') => return,
                Ok(_) => {
                    if lines.send(line.trim_end().to_owned()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    (ChildGuard(child), receiver, errors)
}

fn run_child(dir: &Path, seed: u64, wait_ready: bool, delay: Duration) -> ChildRun {
    let (mut guard, receiver, errors) = spawn_child(dir, seed);
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut ready = false;
    if wait_ready {
        let deadline = started + READY_TIMEOUT;
        while !ready {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    ready = line == "READY";
                    lines.push(line);
                }
                Err(error) => {
                    drop(guard);
                    panic!(
                        "child not ready ({error:?}); stderr:\n{}",
                        errors.join().unwrap()
                    );
                }
            }
        }
    }
    let kill_at = Instant::now() + delay;
    std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
    if let Some(status) = guard.0.try_wait().unwrap() {
        panic!(
            "child exited by itself ({status}); stderr:\n{}",
            errors.join().unwrap()
        );
    }
    guard.0.kill().expect("SIGKILL the child");
    guard.0.wait().unwrap();
    let ran_for = started.elapsed();
    // The child is dead: its stdout reaches EOF and the reader thread ends.
    let collect_deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = collect_deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("child output did not end"),
        }
    }
    ready |= lines.iter().any(|line| line == "READY");
    ChildRun {
        lines,
        ready,
        ran_for,
    }
}

/// An append found in a segment: offset -> (length, seed).
type Appends = BTreeMap<u64, (usize, u64)>;

#[derive(Default)]
struct SegmentModel {
    /// Every append found by the last check (acknowledged or not).
    known: Appends,
    length: u64,
    /// Acknowledged since the last check.
    acked: Vec<(u64, usize, u64)>,
}

#[derive(Default)]
struct TableModel {
    /// Every entry found by the last check: version -> (key, value seed or `None` for removal).
    known: BTreeMap<u64, (String, Option<u64>)>,
    length: u64,
    /// Acknowledged since the last check: (key, version, value seed).
    acked: Vec<(String, u64, Option<u64>)>,
    /// The latest acknowledged change of each key: (version, value seed).
    last_acked: HashMap<String, (u64, Option<u64>)>,
}

#[derive(Default)]
struct Model {
    segments: Vec<SegmentModel>,
    table: TableModel,
    created: HashSet<String>,
    acked_appends: usize,
    acked_bytes: u64,
    acked_updates: usize,
    unacked_appends: usize,
    unacked_updates: usize,
}

impl Model {
    fn new() -> Self {
        Self {
            segments: (0..SEGMENTS).map(|_| SegmentModel::default()).collect(),
            ..Self::default()
        }
    }

    fn absorb(&mut self, lines: &[String]) {
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["A", segment, offset, len, seed] => {
                    let segment: usize = segment.parse().unwrap();
                    let len: usize = len.parse().unwrap();
                    self.segments[segment].acked.push((
                        offset.parse().unwrap(),
                        len,
                        seed.parse().unwrap(),
                    ));
                    self.acked_appends += 1;
                    self.acked_bytes += len as u64;
                }
                ["T", key, version, seed] => {
                    let version: u64 = version.parse().unwrap();
                    let seed = (*seed != "-").then(|| seed.parse().unwrap());
                    self.table.acked.push(((*key).to_owned(), version, seed));
                    let last = self.table.last_acked.entry((*key).to_owned());
                    let last = last.or_insert((version, seed));
                    if version >= last.0 {
                        *last = (version, seed);
                    }
                    self.acked_updates += 1;
                }
                ["C", name] => {
                    self.created.insert((*name).to_owned());
                }
                // READY, and what the test harness prints.
                _ => {}
            }
        }
    }
}

/// Splits a segment's bytes into whole, well-formed appends; panics at the first byte that is
/// not part of one.
fn parse_segment(segment: u32, data: &[u8]) -> Appends {
    let mut appends = Appends::new();
    let mut position = 0;
    while position < data.len() {
        let rest = &data[position..];
        let at = position as u64;
        assert!(
            rest.len() >= HEADER_LEN,
            "segment {segment}: {} stray bytes at {at} (a partial append?)",
            rest.len()
        );
        let word = |range: std::ops::Range<usize>| {
            let mut bytes = [0; 8];
            bytes[..range.len()].copy_from_slice(&rest[range]);
            u64::from_le_bytes(bytes)
        };
        let (magic, index, offset, len, seed) = (
            word(0..4),
            word(4..8),
            word(8..16),
            word(16..20),
            word(20..28),
        );
        assert_eq!(
            magic,
            u64::from(MAGIC),
            "segment {segment}: no append header at {at}"
        );
        assert_eq!(
            index,
            u64::from(segment),
            "segment {segment}: append of another segment at {at}"
        );
        assert_eq!(
            offset, at,
            "segment {segment}: append at {at} claims offset {offset}"
        );
        let len = usize::try_from(len).unwrap();
        assert!(
            len >= HEADER_LEN && len <= rest.len(),
            "segment {segment}: append at {at} of {len} bytes, {} left (a partial append?)",
            rest.len()
        );
        assert!(
            rest[..len] == payload(segment, at, len, seed)[..],
            "segment {segment}: the append at {at} ({len} bytes) has wrong content"
        );
        appends.insert(at, (len, seed));
        position += len;
    }
    appends
}

async fn verify(dir: &Path, model: &mut Model) {
    let store = match SegmentStore::open(store_config(dir)).await {
        Ok(store) => store,
        Err(error) => panic!(
            "recovery after the kill failed: {error}; log files: {:?}",
            log_files(dir)
        ),
    };
    for segment in 0..SEGMENTS {
        verify_segment(&store, segment, model).await;
    }
    verify_table(&store, model).await;
    store.shutdown().await;
}

async fn verify_segment(store: &SegmentStore, segment: u32, model: &mut Model) {
    let name = segment_name(segment);
    let container = store.container(&name);
    let seg = &mut model.segments[segment as usize];
    let info = match container.info(&name).await {
        Ok(info) => info,
        Err(SegmentError::NoSuchSegment(_)) => {
            assert!(
                !model.created.contains(&name) && seg.acked.is_empty() && seg.length == 0,
                "{name} is gone"
            );
            return;
        }
        Err(error) => panic!("info {name}: {error}"),
    };
    assert!(!info.sealed && info.start_offset == 0, "{info:?}");
    assert!(
        info.length >= seg.length,
        "{name} shrank from {} to {}",
        seg.length,
        info.length
    );
    let data = container
        .read_exact(&name, 0, info.length)
        .await
        .unwrap_or_else(|error| panic!("read {name}: {error}"));
    let appends = parse_segment(segment, &data);
    for (offset, found) in &seg.known {
        assert_eq!(
            appends.get(offset),
            Some(found),
            "{name}: the append at {offset} changed or vanished"
        );
    }
    let mut acked = HashSet::new();
    for &(offset, len, seed) in &seg.acked {
        assert_eq!(
            appends.get(&offset),
            Some(&(len, seed)),
            "{name}: the acknowledged append at {offset} ({len} bytes) is lost"
        );
        acked.insert(offset);
    }
    // Beyond what the last check saw, only the one append in flight at the kill may be
    // durable without an acknowledgement (each segment has one appender, one append at a time).
    let new: Vec<u64> = appends
        .range(seg.length..)
        .map(|(&offset, _)| offset)
        .collect();
    for (index, offset) in new.iter().enumerate() {
        if !acked.contains(offset) {
            assert_eq!(
                index,
                new.len() - 1,
                "{name}: unacknowledged append at {offset} is followed by others"
            );
            model.unacked_appends += 1;
        }
    }
    seg.known = appends;
    seg.length = info.length;
    seg.acked.clear();
}

async fn verify_table(store: &SegmentStore, model: &mut Model) {
    let container = store.container(TABLE);
    let table = &mut model.table;
    let info = match container.info(TABLE).await {
        Ok(info) => info,
        Err(SegmentError::NoSuchSegment(_)) => {
            assert!(
                !model.created.contains(TABLE) && table.acked.is_empty(),
                "the table is gone"
            );
            return;
        }
        Err(error) => panic!("info {TABLE}: {error}"),
    };
    assert!(info.length >= table.length, "the table shrank");
    // Every entry ever written, in order.
    let mut entries: BTreeMap<u64, (String, Option<u64>)> = BTreeMap::new();
    let mut live: BTreeMap<String, (u64, Option<u64>)> = BTreeMap::new();
    let mut from = 0;
    while from < info.length {
        let (raw, next) = container
            .table_read_delta(TABLE, from, 256 << 10)
            .await
            .unwrap_or_else(|error| panic!("table delta at {from}: {error}"));
        assert!(
            next > from && !raw.is_empty(),
            "table delta stuck at {from}"
        );
        for entry in raw {
            let key = String::from_utf8(entry.key.to_vec()).expect("keys are text");
            assert!((0..KEYS).any(|k| key_name(k) == key), "unknown key {key:?}");
            let seed = entry.value.as_ref().map(|value| {
                table_value_seed(&key, value)
                    .unwrap_or_else(|| panic!("malformed value of {key} at {}", entry.version))
            });
            live.insert(key.clone(), (entry.version, seed));
            entries.insert(entry.version, (key, seed));
        }
        from = next;
    }
    assert_eq!(from, info.length, "the table ends in a partial entry");
    for (version, found) in &table.known {
        assert_eq!(
            entries.get(version),
            Some(found),
            "the table entry at {version} changed or vanished"
        );
    }
    let mut acked = HashSet::new();
    for (key, version, seed) in &table.acked {
        assert_eq!(
            entries.get(version),
            Some(&(key.clone(), *seed)),
            "the acknowledged change of {key} at version {version} is lost"
        );
        acked.insert(*version);
    }
    // Per updater, only its last change may be durable without an acknowledgement.
    for updater in 0..UPDATERS {
        let owned = |key: &str| (0..KEYS).any(|k| k % UPDATERS == updater && key_name(k) == key);
        let new: Vec<u64> = entries
            .range(table.length..)
            .filter(|(_, (key, _))| owned(key))
            .map(|(&version, _)| version)
            .collect();
        for (index, version) in new.iter().enumerate() {
            if !acked.contains(version) {
                assert_eq!(
                    index,
                    new.len() - 1,
                    "unacknowledged table change at {version} is followed by others"
                );
                model.unacked_updates += 1;
            }
        }
    }
    // Each key's latest acknowledged change is what readers see, unless a later change was
    // durable.
    for (key, &(version, seed)) in &table.last_acked {
        let (live_version, live_seed) = live.get(key).copied().unwrap_or((0, None));
        let superseded = entries
            .range(version + 1..)
            .any(|(_, (other, _))| other == key);
        if !superseded {
            assert_eq!(
                (live_version, live_seed),
                (version, seed),
                "{key}: not its latest acknowledged change"
            );
        }
    }
    // The index agrees with the entries, through both read paths.
    let expected: Vec<(String, u64, u64)> = live
        .iter()
        .filter_map(|(key, &(version, seed))| seed.map(|seed| (key.clone(), version, seed)))
        .collect();
    let scanned: Vec<(String, u64, u64)> = container
        .table_entries(TABLE, None, KEYS + 1)
        .await
        .expect("table scan")
        .into_iter()
        .map(|entry| {
            let key = String::from_utf8(entry.key.to_vec()).unwrap();
            let seed = table_value_seed(&key, &entry.value).expect("well-formed value");
            (key, entry.version, seed)
        })
        .collect();
    assert_eq!(scanned, expected, "table scan disagrees with the entries");
    let keys: Vec<Bytes> = (0..KEYS).map(|k| Bytes::from(key_name(k))).collect();
    let got = container.table_get(TABLE, keys).await.expect("table get");
    for (k, entry) in got.into_iter().enumerate() {
        let key = key_name(k);
        let want = live
            .get(&key)
            .and_then(|&(version, seed)| seed.map(|s| (version, s)));
        let have = entry.map(|e| (e.version, table_value_seed(&key, &e.value).unwrap()));
        assert_eq!(have, want, "table get of {key}");
    }
    table.known = entries;
    table.length = info.length;
    table.acked.clear();
}

fn log_dir_bytes(dir: &Path) -> (u64, bool) {
    let mut bytes = 0;
    let mut truncated = false;
    for container in std::fs::read_dir(dir.join("log")).unwrap() {
        let mut first: Option<u64> = None;
        for file in std::fs::read_dir(container.unwrap().path()).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            // Preallocated files kept for reuse (`*.spare`) are not log.
            if !name.ends_with(".spare") {
                bytes += file.metadata().unwrap().len();
            }
            if let Some(sequence) = name.strip_suffix(".log").and_then(|s| s.parse().ok()) {
                first = Some(first.map_or(sequence, |f: u64| f.min(sequence)));
            }
        }
        truncated |= first.is_some_and(|first| first > 0);
    }
    (bytes, truncated)
}

/// The log files of each container, with their sizes (for failure reports).
fn log_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    for container in std::fs::read_dir(dir.join("log")).unwrap() {
        let container = container.unwrap();
        for file in std::fs::read_dir(container.path()).unwrap() {
            let file = file.unwrap();
            let name = format!(
                "{}/{}",
                container.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            files.push((name, file.metadata().unwrap().len()));
        }
    }
    files.sort();
    files
}

/// How many containers' logs begin before their first checkpoint: what a kill in the middle of
/// a log truncation leaves (recovery must skip to the checkpoint).
fn interrupted_truncations(dir: &Path) -> usize {
    let mut count = 0;
    for container in std::fs::read_dir(dir.join("log")).unwrap() {
        let device = FileLogDevice::open(container.unwrap().path()).unwrap();
        let (_, records) =
            DurableLog::open(Box::new(device), LogConfig::default()).expect("the log reads back");
        let first = records
            .first()
            .map(|record| operation_codec::decode(&record.payload));
        if first.is_some_and(|operation| !matches!(operation, Ok(Operation::Checkpoint(_)))) {
            count += 1;
        }
    }
    count
}

/// Keeps a copy of a failed run's directory for inspection.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::create_dir_all(to);
    for entry in std::fs::read_dir(from).into_iter().flatten().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            copy_dir(&entry.path(), &target);
        } else {
            let _ = std::fs::copy(entry.path(), target);
        }
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|entry| {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                count_files(&entry.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn crash_recovery() {
    if std::env::var_os(CHILD_DIR_VAR).is_some() {
        return;
    }
    let seed: u64 = match std::env::var(SEED_VAR) {
        Ok(seed) => seed.parse().expect("PRAVAHA_CRASH_SEED is a number"),
        Err(_) => rand::random(),
    };
    println!("crash test seed {seed} (repeat the schedule with {SEED_VAR}={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut model = Model::new();
    let started = Instant::now();
    let mut early_kills = 0;
    let mut interrupted_total = 0;
    let mut max_log_bytes = 0;
    for cycle in 0..CYCLES {
        let early = cycle % EARLY_KILL_EVERY == EARLY_KILL_EVERY - 1;
        let delay = if early {
            Duration::from_millis(rng.gen_range(0..=60))
        } else {
            Duration::from_millis(rng.gen_range(50..=400))
        };
        let run = run_child(dir.path(), rng.gen(), !early, delay);
        if !run.ready {
            early_kills += 1;
        }
        model.absorb(&run.lines);
        let checked = Instant::now();
        let check = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let interrupted = interrupted_truncations(dir.path());
            runtime.block_on(async {
                tokio::time::timeout(VERIFY_TIMEOUT, verify(dir.path(), &mut model))
                    .await
                    .expect("the check timed out");
            });
            interrupted
        }));
        let interrupted = match check {
            Ok(interrupted) => interrupted,
            Err(panic) => {
                let keep = std::env::temp_dir().join(format!("pravaha-crash-{seed}"));
                copy_dir(dir.path(), &keep);
                eprintln!(
                    "cycle {cycle} failed (seed {seed}); the data directory is kept in {keep:?}"
                );
                std::panic::resume_unwind(panic);
            }
        };
        interrupted_total += interrupted;
        let (log_bytes, _) = log_dir_bytes(dir.path());
        max_log_bytes = max_log_bytes.max(log_bytes);
        println!(
            "cycle {cycle}: killed after {:?}{}{}, {} lines; checked in {:?}; segments {:?}; log {} KiB",
            run.ran_for,
            if run.ready { "" } else { " (before ready)" },
            if interrupted > 0 { " (log begins before its first checkpoint)" } else { "" },
            run.lines.len(),
            checked.elapsed(),
            model.segments.iter().map(|s| s.length).collect::<Vec<_>>(),
            log_bytes >> 10,
        );
    }
    let (log_bytes, truncated) = log_dir_bytes(dir.path());
    let chunks = count_files(&dir.path().join("tier2").join("container-0000"))
        + count_files(&dir.path().join("tier2").join("container-0001"));
    println!(
        "{CYCLES} kills ({early_kills} before ready; {interrupted_total} recoveries after an \
         interrupted log truncation) in {:?}: {} appends ({} KiB) and {} table changes \
         acknowledged; {} appends and {} table changes durable but unacknowledged; \
         {chunks} chunks in Tier-2; log {} KiB now, {} KiB at most",
        started.elapsed(),
        model.acked_appends,
        model.acked_bytes >> 10,
        model.acked_updates,
        model.unacked_appends,
        model.unacked_updates,
        log_bytes >> 10,
        max_log_bytes >> 10,
    );
    assert!(
        model.acked_appends >= 100 && model.acked_updates >= 100,
        "the children did too little to test anything"
    );
    assert!(chunks > 0, "nothing reached Tier-2");
    assert!(truncated, "no log was ever truncated");
}

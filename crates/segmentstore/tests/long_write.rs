//! A long stream of appends to one segment, with small thresholds: the Tier-1 log must stay
//! bounded (checkpoints, Tier-2 flushes and log truncation keep up) and the cache must stay near
//! its budget while the segment grows far past both. After a restart, with the log holding only
//! a sliver of the data, the whole segment is read back (so from Tier-2) and must be identical.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pravaha_segmentstore::{
    AppendConditions, ContainerConfig, ContainerStats, SegmentKind, SegmentStore,
    SegmentStoreConfig,
};
use pravaha_storage::log::LogConfig;

const SEGMENT: &str = "long/write";
const APPEND_BYTES: usize = 64 << 10;
const APPENDS: usize = 768;
const TOTAL_BYTES: u64 = (APPEND_BYTES * APPENDS) as u64;
/// Appends in flight at once, so that group commit batches them.
const WRITERS: usize = 4;
const MIB: u64 = 1 << 20;

const LOG_FILE_BYTES: u64 = MIB;
const CHECKPOINT_LOG_BYTES: u64 = MIB;
const CHUNK_TARGET_BYTES: u64 = MIB;
const CACHE_BUDGET_BYTES: u64 = 4 * MIB;
const MAX_UNSTORED_BYTES: u64 = 8 * MIB;

fn config(dir: &Path) -> SegmentStoreConfig {
    let mut config = SegmentStoreConfig::new(dir);
    config.container_count = 1;
    config.container = ContainerConfig {
        log: LogConfig {
            max_file_bytes: LOG_FILE_BYTES,
            ..LogConfig::default()
        },
        cache_budget_bytes: CACHE_BUDGET_BYTES,
        max_unstored_bytes: MAX_UNSTORED_BYTES,
        chunk_target_bytes: CHUNK_TARGET_BYTES,
        chunk_max_age: Duration::from_millis(100),
        flush_interval: Duration::from_millis(10),
        checkpoint_log_bytes: CHECKPOINT_LOG_BYTES,
        read_ahead_bytes: MIB,
        ..ContainerConfig::default()
    };
    config
}

/// The content of append number `index` (splitmix64 from the index).
fn append_data(index: usize) -> Vec<u8> {
    let mut data = vec![0; APPEND_BYTES];
    let mut state = (index as u64).wrapping_mul(0xA24B_AED4_963E_E407);
    for piece in data.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        piece.copy_from_slice(&z.to_le_bytes()[..piece.len()]);
    }
    data
}

/// Bytes in the files under `dir`, recursively (files vanishing meanwhile count as empty).
fn dir_bytes(dir: &Path) -> u64 {
    let (other, reserve) = log_dir_bytes(dir);
    other + reserve
}

/// Bytes in the files under `dir`, recursively, split into log files and preallocated files
/// kept for reuse (the spare and recycled files, named `*.spare`).
fn log_dir_bytes(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut log, mut reserve) = (0, 0);
    for entry in entries.filter_map(Result::ok) {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            let (inner_log, inner_reserve) = log_dir_bytes(&entry.path());
            log += inner_log;
            reserve += inner_reserve;
        } else if entry.file_name().to_string_lossy().ends_with(".spare") {
            reserve += meta.len();
        } else {
            log += meta.len();
        }
    }
    (log, reserve)
}

/// Samples the size of the log directory on a thread of its own until stopped.
struct LogSampler {
    stop: Arc<AtomicBool>,
    max: Arc<(AtomicU64, AtomicU64)>,
    thread: std::thread::JoinHandle<usize>,
}

impl LogSampler {
    fn start(log_dir: std::path::PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let thread = {
            let (stop, max) = (stop.clone(), max.clone());
            std::thread::spawn(move || {
                let mut samples = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (log, reserve) = log_dir_bytes(&log_dir);
                    max.0.fetch_max(log, Ordering::Relaxed);
                    max.1.fetch_max(reserve, Ordering::Relaxed);
                    samples += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                samples
            })
        };
        Self { stop, max, thread }
    }

    /// The largest sizes seen (log files, reserved files), and the number of samples.
    fn finish(self) -> ((u64, u64), usize) {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap();
        let max = (
            self.max.0.load(Ordering::Relaxed),
            self.max.1.load(Ordering::Relaxed),
        );
        (max, samples)
    }
}

/// Waits (bounded) until `done` holds for the container's stats and the segment's info.
async fn wait_until(
    store: &SegmentStore,
    what: &str,
    done: impl Fn(&ContainerStats, u64) -> bool,
) -> ContainerStats {
    let container = store.container(SEGMENT);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = container.stats().await.unwrap();
        let unstored = container.info(SEGMENT).await.unwrap().unstored_bytes;
        if done(&stats, unstored) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_stays_bounded_and_data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let started = Instant::now();
    let store = SegmentStore::open(config(dir.path())).await.unwrap();
    let container = store.container(SEGMENT).clone();
    container
        .create_segment(SEGMENT, SegmentKind::Stream, vec![])
        .await
        .unwrap();

    // Write: WRITERS tasks take append numbers in turn; each append's offset is recorded, so
    // that the segment's expected content is known whatever order they land in.
    let sampler = LogSampler::start(log_dir.clone());
    let next = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (container, next) = (container.clone(), next.clone());
        writers.push(tokio::spawn(async move {
            let mut placed = Vec::new();
            loop {
                let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap();
                if index >= APPENDS {
                    return placed;
                }
                let data = Bytes::from(append_data(index));
                let outcome = container
                    .append(SEGMENT, data, AppendConditions::default())
                    .await
                    .unwrap();
                placed.push((outcome.offset.expect("not a duplicate"), index));
            }
        }));
    }
    // Meanwhile, watch the cache.
    let mut max_cached = 0;
    let mut max_unstored = 0;
    let mut max_cached_beyond_unstored = 0;
    let mut stat_samples = 0;
    while !writers.iter().all(|writer| writer.is_finished()) {
        let stats = container.stats().await.unwrap();
        max_cached = max_cached.max(stats.cached_bytes);
        max_unstored = max_unstored.max(stats.unstored_bytes);
        // Data not yet in Tier-2 cannot leave the cache; the rest is what the budget governs.
        max_cached_beyond_unstored =
            max_cached_beyond_unstored.max(stats.cached_bytes.saturating_sub(stats.unstored_bytes));
        stat_samples += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut placed = Vec::new();
    for writer in writers {
        placed.extend(writer.await.unwrap());
    }
    let written_in = started.elapsed();
    placed.sort_unstable();
    let mut expected_crc = 0;
    for (position, &(offset, index)) in placed.iter().enumerate() {
        assert_eq!(
            offset,
            (position * APPEND_BYTES) as u64,
            "appends tile the segment"
        );
        expected_crc = crc32c::crc32c_append(expected_crc, &append_data(index));
    }
    let info = container.info(SEGMENT).await.unwrap();
    assert_eq!(info.length, TOTAL_BYTES);

    // Let Tier-2 catch up and the log shrink behind it, then stop.
    wait_until(&store, "Tier-2 to catch up", |_, unstored| unstored == 0).await;
    let quiet = wait_until(&store, "the log to be truncated", |stats, _| {
        stats.log_bytes <= 2 * (CHECKPOINT_LOG_BYTES + LOG_FILE_BYTES)
    })
    .await;
    let throttled = quiet.throttled_requests;
    store.shutdown().await;
    let ((max_log, max_reserve), log_samples) = sampler.finish();
    let (log_after, reserve_after) = log_dir_bytes(&log_dir);
    let tier2 = dir_bytes(&dir.path().join("tier2").join("container-0000"));
    println!(
        "wrote {} MiB in {written_in:?}; log on disk at most {} KiB ({log_samples} samples), \
         {} KiB at the end; files kept for reuse at most {} KiB, {} KiB at the end; cache at most {} KiB ({} KiB beyond unstored data), unstored at \
         most {} KiB ({stat_samples} samples); {throttled} appends throttled; Tier-2 {} KiB",
        TOTAL_BYTES / MIB,
        max_log >> 10,
        log_after >> 10,
        max_reserve >> 10,
        reserve_after >> 10,
        max_cached >> 10,
        max_cached_beyond_unstored >> 10,
        max_unstored >> 10,
        tier2 >> 10,
    );
    // The log holds at most the unstored data (bounded by back pressure) plus what lies
    // between the checkpoint it must keep and that data, plus a file being filled.
    let log_bound = MAX_UNSTORED_BYTES + 2 * CHECKPOINT_LOG_BYTES + 2 * LOG_FILE_BYTES;
    assert!(
        max_log <= log_bound,
        "the log reached {max_log} bytes (bound {log_bound})"
    );
    assert!(max_log <= TOTAL_BYTES / 4);
    // Besides the log, Tier-1 keeps the spare and removed files for reuse, a bounded number.
    let reserve_config = config(dir.path());
    let reserve_bound =
        (reserve_config.recycled_log_files() as u64 + 1) * reserve_config.log_file_preallocation();
    assert!(
        max_reserve <= reserve_bound && reserve_after <= reserve_bound,
        "files kept for reuse reached {max_reserve} bytes (bound {reserve_bound})"
    );
    assert!(
        max_unstored <= MAX_UNSTORED_BYTES + (WRITERS * APPEND_BYTES) as u64,
        "back pressure bounds unstored data: {max_unstored}"
    );
    assert!(
        max_cached_beyond_unstored <= CACHE_BUDGET_BYTES + (WRITERS * APPEND_BYTES) as u64,
        "the cache exceeded its budget by {max_cached_beyond_unstored} bytes of stored data"
    );
    assert!(max_cached <= CACHE_BUDGET_BYTES + MAX_UNSTORED_BYTES + MIB);
    assert_eq!(
        tier2, TOTAL_BYTES,
        "Tier-2 holds the segment once, nothing more"
    );
    assert!(
        log_after <= 2 * (CHECKPOINT_LOG_BYTES + LOG_FILE_BYTES),
        "the log kept {log_after} bytes"
    );
    assert!(
        log_after * 10 < TOTAL_BYTES,
        "the log is not far smaller than the segment"
    );

    // Restart: the log holds a sliver of the segment, so the reads come from Tier-2.
    let store = SegmentStore::open(config(dir.path())).await.unwrap();
    let container = store.container(SEGMENT).clone();
    let info = container.info(SEGMENT).await.unwrap();
    assert_eq!((info.length, info.unstored_bytes), (TOTAL_BYTES, 0));
    let recovered_cache = container.stats().await.unwrap().cached_bytes;
    assert!(
        recovered_cache <= log_after,
        "recovery cached {recovered_cache} bytes from a {log_after}-byte log"
    );
    let read_started = Instant::now();
    let mut crc = 0;
    let mut offset = 0;
    let mut max_cached_reading = 0;
    while offset < TOTAL_BYTES {
        let want = usize::try_from((TOTAL_BYTES - offset).min(MIB)).unwrap();
        let read = container
            .read(SEGMENT, offset, want, Duration::ZERO)
            .await
            .unwrap();
        assert!(!read.data.is_empty(), "no data at {offset}");
        // Compare append by append, for a precise report of a difference.
        let mut position = offset;
        while position < offset + read.data.len() as u64 {
            let slot = usize::try_from(position / APPEND_BYTES as u64).unwrap();
            let within = usize::try_from(position % APPEND_BYTES as u64).unwrap();
            let expected = append_data(placed[slot].1);
            let from = usize::try_from(position - offset).unwrap();
            let take = (APPEND_BYTES - within).min(read.data.len() - from);
            assert!(
                read.data[from..from + take] == expected[within..within + take],
                "bytes at {position}..{} differ after the restart",
                position + take as u64
            );
            position += take as u64;
        }
        crc = crc32c::crc32c_append(crc, &read.data);
        offset += read.data.len() as u64;
        let cached = container.stats().await.unwrap().cached_bytes;
        max_cached_reading = max_cached_reading.max(cached);
    }
    assert_eq!(crc, expected_crc, "checksum of the whole segment");
    assert!(
        max_cached_reading <= CACHE_BUDGET_BYTES + MIB,
        "reading from Tier-2 grew the cache to {max_cached_reading} bytes"
    );
    println!(
        "read back {} MiB in {:?} (cache at most {} KiB, {} KiB after recovery); total {:?}",
        TOTAL_BYTES / MIB,
        read_started.elapsed(),
        max_cached_reading >> 10,
        recovered_cache >> 10,
        started.elapsed()
    );
    store.shutdown().await;
}

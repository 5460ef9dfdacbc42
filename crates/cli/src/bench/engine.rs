//! The storage-engine benchmark.
//!
//! For each append size and number of concurrent appenders it runs two measurements on the same
//! disk, one after the other, for the same duration:
//! - **baseline**: one thread writes a plain file in batches of `appenders × size` bytes and calls
//!   `fdatasync` after each batch: the best a single-file log with group commit can do;
//! - **engine**: `appenders` tasks each append `size` bytes in a loop to their own segment of one
//!   container and wait for each acknowledgement (durable in the log), while the engine also
//!   moves data to Tier-2 in the background, as in production.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use pravaha_segmentstore::{
    AppendConditions, ContainerHandle, SegmentError, SegmentKind, SegmentStore, SegmentStoreConfig,
};
use tokio::sync::{mpsc, Semaphore};

#[derive(clap::Args)]
pub struct EngineArgs {
    /// Directory on the disk to measure (a temporary directory is made inside it).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Append sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1024, 1 << 20])]
    sizes: Vec<usize>,
    /// Numbers of concurrent appenders.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64])]
    appenders: Vec<usize>,
    /// Runs of each case (baseline, then engine, each time); with more than one, a summary
    /// gives the median ratio, steadier than one run's on a noisy machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Print one JSON object per run (and per summary) instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one measurement saw.
#[derive(Debug, Clone, Copy)]
pub(super) struct Figures {
    pub appends: u64,
    pub elapsed: Duration,
    pub bytes: u64,
    pub p50: Duration,
    pub p99: Duration,
    /// The slowest acknowledgement: pauses rarer than one append in a hundred show only here.
    pub max: Duration,
    /// Appends per sync (group-commit batch size).
    pub appends_per_sync: f64,
}

impl Figures {
    pub fn appends_per_second(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }

    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

pub fn run(args: &EngineArgs) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(args.seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !args.json {
        println!(
            "{:>9} {:>9} | {:>12} {:>9} {:>10} {:>10} {:>10} {:>8} | {:>12} {:>9} {:>10} {:>10} | {:>6}",
            "size",
            "appenders",
            "engine ap/s",
            "MB/s",
            "p50",
            "p99",
            "max",
            "ap/sync",
            "baseline ap/s",
            "MB/s",
            "p50",
            "p99",
            "ratio"
        );
    }
    for &size in &args.sizes {
        for &appenders in &args.appenders {
            let mut ratios = Vec::with_capacity(args.repeat as usize);
            for _ in 0..args.repeat {
                let scratch = tempfile::Builder::new()
                    .prefix("pravaha-bench-")
                    .tempdir_in(&args.dir)
                    .with_context(|| format!("creating a directory in {}", args.dir.display()))?;
                let baseline = baseline(
                    &scratch.path().join("baseline.dat"),
                    size,
                    appenders,
                    duration,
                )?;
                let engine =
                    runtime.block_on(engine(scratch.path(), size, appenders, 1, duration))?;
                ratios.push(report(size, appenders, &engine, &baseline, args.json));
                let path = scratch.path().to_path_buf();
                scratch
                    .close()
                    .with_context(|| format!("removing {}", path.display()))?;
            }
            if ratios.len() > 1 {
                summarize(size, appenders, &mut ratios, args.json);
            }
        }
    }
    Ok(())
}

/// The median (the lower middle one for an even count), least and greatest of `ratios`.
fn spread(ratios: &mut [f64]) -> (f64, f64, f64) {
    ratios.sort_by(f64::total_cmp);
    let median = ratios[(ratios.len() - 1) / 2];
    (median, ratios[0], ratios[ratios.len() - 1])
}

fn summarize(size: usize, appenders: usize, ratios: &mut [f64], json: bool) {
    let runs = ratios.len();
    let (median, least, greatest) = spread(ratios);
    if json {
        println!(
            "{{\"size\":{size},\"appenders\":{appenders},\"runs\":{runs},\"median_ratio\":{median:.3},\"min_ratio\":{least:.3},\"max_ratio\":{greatest:.3}}}"
        );
    } else {
        println!(
            "{size:>9} {appenders:>9} | median ratio {median:.2} over {runs} runs (least {least:.2}, greatest {greatest:.2})"
        );
    }
}

/// Prints one run; returns its ratio (engine MB/s ÷ baseline MB/s).
fn report(size: usize, appenders: usize, engine: &Figures, baseline: &Figures, json: bool) -> f64 {
    let ratio = engine.megabytes_per_second() / baseline.megabytes_per_second();
    if json {
        println!(
            "{{\"size\":{size},\"appenders\":{appenders},\"engine\":{},\"baseline\":{},\"ratio\":{ratio:.3}}}",
            figures_json(engine),
            figures_json(baseline)
        );
        return ratio;
    }
    println!(
        "{:>9} {:>9} | {:>12.0} {:>9.1} {:>10} {:>10} {:>10} {:>8.1} | {:>12.0} {:>9.1} {:>10} {:>10} | {:>6.2}",
        size,
        appenders,
        engine.appends_per_second(),
        engine.megabytes_per_second(),
        format_duration(engine.p50),
        format_duration(engine.p99),
        format_duration(engine.max),
        engine.appends_per_sync,
        baseline.appends_per_second(),
        baseline.megabytes_per_second(),
        format_duration(baseline.p50),
        format_duration(baseline.p99),
        ratio
    );
    ratio
}

fn figures_json(figures: &Figures) -> String {
    format!(
        "{{\"appends\":{},\"seconds\":{:.3},\"appends_per_second\":{:.1},\"mb_per_second\":{:.2},\"p50_us\":{},\"p99_us\":{},\"max_us\":{},\"appends_per_sync\":{:.1}}}",
        figures.appends,
        figures.elapsed.as_secs_f64(),
        figures.appends_per_second(),
        figures.megabytes_per_second(),
        figures.p50.as_micros(),
        figures.p99.as_micros(),
        figures.max.as_micros(),
        figures.appends_per_sync
    )
}

pub(super) fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros >= 10_000 {
        format!("{:.1}ms", duration.as_secs_f64() * 1e3)
    } else {
        format!("{micros}us")
    }
}

/// Plain file, one `fdatasync` per batch of `appenders × size` bytes. Every append in a batch is
/// acknowledged when the batch's sync returns, so each gets the batch's latency.
fn baseline(
    path: &Path,
    size: usize,
    appenders: usize,
    duration: Duration,
) -> anyhow::Result<Figures> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let batch = vec![0x5a_u8; size * appenders];
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut batches = 0u64;
    while started.elapsed() < duration {
        let batch_started = Instant::now();
        file.write_all(&batch)?;
        file.sync_data()?;
        latencies.push(batch_started.elapsed());
        batches += 1;
    }
    let elapsed = started.elapsed();
    let appends = batches * appenders as u64;
    let (p50, p99, max) = percentiles(&mut latencies);
    Ok(Figures {
        appends,
        elapsed,
        bytes: appends * size as u64,
        p50,
        p99,
        max,
        appends_per_sync: appenders as f64,
    })
}

/// The storage engine in `dir`: `appenders` tasks appending `size` bytes each to their own
/// segment for `duration`, each with up to `depth` appends in flight (1: one append at a time,
/// each waiting for the previous acknowledgement).
pub(super) async fn engine(
    dir: &Path,
    size: usize,
    appenders: usize,
    depth: usize,
    duration: Duration,
) -> anyhow::Result<Figures> {
    let mut config = SegmentStoreConfig::new(dir.join("engine"));
    config.container_count = 1;
    let store = SegmentStore::open(config).await?;
    let payload = Bytes::from(vec![0xa5_u8; size]);
    // Segments are created before the clock starts: each creation is a durable operation of
    // its own, and timing them (one after another) would charge setup to the engine's
    // throughput, with fewer appenders running at first, which the baseline never pays.
    let mut segments = Vec::with_capacity(appenders);
    for appender in 0..appenders {
        let name = format!("bench/engine/{appender}.#epoch.0");
        let container = store.container(&name).clone();
        container
            .create_segment(&name, SegmentKind::Stream, Vec::new())
            .await?;
        segments.push((name, container));
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(appenders);
    for (name, container) in segments {
        let until = started + duration;
        tasks.push(tokio::spawn(append_until(
            container,
            name,
            payload.clone(),
            depth.max(1),
            until,
        )));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let stats = store.containers()[0].stats().await?;
    store.shutdown().await;
    let appends = latencies.len() as u64;
    let (p50, p99, max) = percentiles(&mut latencies);
    Ok(Figures {
        appends,
        elapsed,
        bytes: appends * size as u64,
        p50,
        p99,
        max,
        appends_per_sync: stats.log_records as f64 / stats.log_frames.max(1) as f64,
    })
}

/// Appends `payload` to segment `name` until `until` with up to `depth` appends in flight; the
/// latency of each, from its submission to its acknowledgement.
async fn append_until(
    container: ContainerHandle,
    name: String,
    payload: Bytes,
    depth: usize,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    if depth == 1 {
        return append_one_at_a_time(container, name, payload, until).await;
    }
    let slots = Arc::new(Semaphore::new(depth));
    // Appends to one segment are acknowledged in order, so awaiting them in submission order
    // sees each acknowledgement as it comes.
    let (pending, mut acknowledgements) = mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        let mut latencies = Vec::new();
        while let Some((submitted, outcome, slot)) = acknowledgements.recv().await {
            let outcome: Result<_, SegmentError> = outcome.await;
            outcome?;
            latencies.push(Instant::now() - submitted);
            drop(slot);
        }
        anyhow::Ok(latencies)
    });
    while Instant::now() < until {
        let slot = slots.clone().acquire_owned().await?;
        let submitted = Instant::now();
        let outcome = container
            .submit_append(&name, payload.clone(), AppendConditions::default())
            .await?;
        if pending.send((submitted, outcome, slot)).is_err() {
            // The collector stopped on a failed append: its error says why.
            break;
        }
    }
    drop(pending);
    collector.await?
}

/// [`append_until`] with one append in flight: each awaited before the next is submitted, with
/// no helper task between the acknowledgement and the next append (the baseline has none).
async fn append_one_at_a_time(
    container: ContainerHandle,
    name: String,
    payload: Bytes,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let submitted = Instant::now();
        container
            .submit_append(&name, payload.clone(), AppendConditions::default())
            .await?
            .await?;
        latencies.push(Instant::now() - submitted);
    }
    Ok(latencies)
}

/// The median, the 99th percentile and the maximum of `latencies` (zero when empty).
fn percentiles(latencies: &mut [Duration]) -> (Duration, Duration, Duration) {
    if latencies.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    latencies.sort_unstable();
    let at = |quantile: f64| {
        let index = ((latencies.len() - 1) as f64 * quantile).round() as usize;
        latencies[index]
    };
    (at(0.50), at(0.99), at(1.0))
}

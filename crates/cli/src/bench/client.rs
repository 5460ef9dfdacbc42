//! `pravaha bench` (no subcommand): writers and a reader group on one stream of a running
//! server, through the client library, as Pravega's benchmark tool and Kafka's perf-test tools
//! do; then the storage engine in-process for the same event size, appenders and duration, the
//! baseline the client's figures are printed against.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use pravaha_client::controller::types::{ScopedStream, StreamConfiguration};
use pravaha_client::group::{ReaderGroup, ReaderGroupConfig, StartFrom};
use pravaha_client::segment::MAX_EVENT_PAYLOAD;
use pravaha_client::{ClientFactory, ControllerClient, EventReader, StreamManager};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::engine;
use super::meter::{Figures, Ledger, Meter, Percentiles, HEADER_BYTES};
use super::report::{Baseline, Interval, Read, Summary};
use super::workload::{self, Limit, Plan, Progress};
use crate::connect::ConnectArgs;

/// Segments of a stream the benchmark creates when `--segments` is not given.
const DEFAULT_SEGMENTS: u32 = 1;
/// How long a run writes when neither `--seconds` nor `--events` is given.
const DEFAULT_SECONDS: f64 = 10.0;
/// A transaction must end well within its lease (90 s), or the controller aborts it.
const MAX_TRANSACTION_SPAN: Duration = Duration::from_secs(60);
/// Readers that read nothing new for this long after the writers finished have stopped.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes the event framing adds to each event (type and length), as the client's in-flight
/// budget counts them.
const EVENT_FRAMING_BYTES: usize = 8;
/// The baseline runs at least this long: shorter measurements are mostly noise.
const MIN_BASELINE: Duration = Duration::from_secs(1);

/// The client benchmark's options.
#[derive(clap::Args)]
pub struct ClientArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Event writers, each a task with its own writer; events carry no routing key, so they
    /// spread over all segments.
    #[arg(long, value_name = "COUNT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    writers: u32,
    /// Readers in one reader group that reads the stream from where it ends when the run
    /// starts; 0: write only.
    #[arg(long, value_name = "COUNT", default_value_t = 1)]
    readers: u32,
    /// Bytes per event (at least 24: the header carrying the send time).
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    event_size: usize,
    /// Events per second of all writers together, each writer on a fixed schedule; latencies
    /// count from the scheduled time. 0: as fast as the writers go.
    #[arg(long, value_name = "EVENTS_PER_S", default_value_t = 0.0)]
    rate: f64,
    /// How long to write [default: 10, unless --events is given].
    #[arg(long, value_name = "SECONDS", conflicts_with = "events")]
    seconds: Option<f64>,
    /// How many events to write, all writers together.
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    events: Option<u64>,
    /// Segments of the stream, created with a fixed scaling policy if missing (an existing
    /// stream is used as it is) [default: 1].
    #[arg(long, value_name = "COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    segments: Option<u32>,
    /// Scope of the stream (created if missing).
    #[arg(long, default_value = "bench")]
    scope: String,
    /// Stream to write (created if missing) [default: a fresh name].
    #[arg(long)]
    stream: Option<String>,
    /// Write through transactions of this many events, each writer committing one after
    /// another.
    #[arg(long, value_name = "EVENTS_PER_TXN",
          value_parser = clap::value_parser!(u64).range(1..))]
    transactions: Option<u64>,
    /// Seconds between progress lines.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    report_interval: f64,
    /// Print JSON lines (one per interval, then the summary) instead of text.
    #[arg(long)]
    json: bool,
    /// Skip the storage-engine baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Where the baseline keeps its data (a temporary directory made inside) [default: the
    /// system's temporary directory].
    #[arg(long, value_name = "PATH")]
    baseline_dir: Option<PathBuf>,
}

pub fn run(args: &ClientArgs) -> anyhow::Result<()> {
    args.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut summary = runtime.block_on(run_client(args))?;
    if !args.no_baseline {
        let span = Duration::from_secs_f64(summary.write.seconds).max(MIN_BASELINE);
        let (figures, depth) = runtime.block_on(baseline(args, span))?;
        let read = summary.read.as_ref();
        let baseline = Baseline::new(&figures, args.writers, depth, &summary.write, read);
        summary.baseline = Some(baseline);
    }
    summary.print(args.json);
    Ok(())
}

impl ClientArgs {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (HEADER_BYTES..=MAX_EVENT_PAYLOAD).contains(&self.event_size),
            "--event-size must be between {HEADER_BYTES} (the header) and {MAX_EVENT_PAYLOAD} bytes"
        );
        ensure!(
            self.rate.is_finite() && self.rate >= 0.0,
            "--rate must be a number of events per second, or 0 for unbounded"
        );
        if let Some(seconds) = self.seconds {
            ensure!(
                seconds.is_finite() && seconds > 0.0,
                "--seconds must be positive"
            );
        }
        ensure!(
            self.report_interval.is_finite() && self.report_interval > 0.0,
            "--report-interval must be positive"
        );
        if let (Some(per_transaction), Some(rate)) = (self.transactions, self.rate()) {
            let span = per_transaction as f64 * f64::from(self.writers) / rate;
            ensure!(
                span < MAX_TRANSACTION_SPAN.as_secs_f64(),
                "a transaction of {per_transaction} events at {rate} events/s over {} writers \
                 would stay open {span:.0} s, longer than its lease allows; use fewer events \
                 per transaction",
                self.writers
            );
        }
        Ok(())
    }

    fn limit(&self) -> Limit {
        match (self.events, self.seconds) {
            (Some(events), _) => Limit::Events(events),
            (None, seconds) => {
                Limit::Duration(Duration::from_secs_f64(seconds.unwrap_or(DEFAULT_SECONDS)))
            }
        }
    }

    fn rate(&self) -> Option<f64> {
        (self.rate > 0.0).then_some(self.rate)
    }
}

/// The writers of a run, set up before the clock starts.
enum Writers {
    Events(Vec<pravaha_client::EventWriter>),
    Transactions(Box<pravaha_client::TransactionalEventWriter>, u64),
}

/// The client part of a run: stream, readers and writers set up, then timed.
async fn run_client(args: &ClientArgs) -> anyhow::Result<Summary> {
    let config = args.connect.client_config()?;
    let uri = config.controller_uri().to_string();
    let controller = ControllerClient::new(config).context("setting up the controller client")?;
    let run = run_id();
    let name = args
        .stream
        .clone()
        .unwrap_or_else(|| fresh_stream_name(run));
    let stream = ScopedStream::new(args.scope.clone(), name);
    let segments = prepare_stream(&controller, &stream, args.segments)
        .await
        .with_context(|| format!("preparing stream {stream} (controller {uri})"))?;
    let (group, readers) = create_readers(&controller, &stream, run, args.readers)
        .await
        .context("setting up the reader group")?;
    let writers = create_writers(&controller, &stream, args)
        .await
        .context("setting up the writers")?;
    if !args.json {
        println!(
            "bench: stream {stream} ({segments} segments), {} writers, {} readers, {}-byte events",
            args.writers, args.readers, args.event_size
        );
    }
    let plan = Arc::new(Plan {
        run,
        origin: Instant::now(),
        writers: args.writers,
        event_size: args.event_size,
        limit: args.limit(),
        rate: args.rate(),
    });
    let measured = timed_run(args, &plan, readers, writers).await?;
    if let Some(group) = group {
        if let Err(error) = group.delete().await {
            tracing::warn!(%error, "could not delete the benchmark's reader group");
        }
    }
    Ok(Summary {
        kind: "summary",
        scope: stream.scope.clone(),
        stream: stream.stream.clone(),
        segments,
        writers: args.writers,
        readers: args.readers,
        event_size: args.event_size,
        rate: args.rate,
        transaction_events: args.transactions,
        intervals: measured.intervals,
        write: measured.write.throughput,
        write_latency: measured.write.latency,
        read: measured.read.map(|(read, _)| read),
        end_to_end_latency: measured.read.map(|(_, latency)| latency),
        baseline: None,
    })
}

/// What the timed part of a run measured.
struct Measured {
    /// Report lines printed.
    intervals: u64,
    write: Figures,
    /// The reads and their end-to-end latencies, when there were readers.
    read: Option<(Read, Percentiles)>,
}

/// Runs the readers, the writers and the reporter from `plan`'s origin until every event
/// written was read.
async fn timed_run(
    args: &ClientArgs,
    plan: &Arc<Plan>,
    readers: Vec<EventReader>,
    writers: Writers,
) -> anyhow::Result<Measured> {
    let write_meter = Meter::default();
    let read_meter = (!readers.is_empty()).then(Meter::default);
    let (stop, stopped) = oneshot::channel();
    let every = Duration::from_secs_f64(args.report_interval);
    let reporter = tokio::spawn(report_intervals(
        plan.origin,
        every,
        write_meter.clone(),
        read_meter.clone(),
        args.json,
        stopped,
    ));
    let progress = Arc::new(Progress::default());
    let mut reading = JoinSet::new();
    for reader in readers {
        let meter = read_meter.clone().expect("readers have a meter");
        let task = workload::read_events(plan.clone(), reader, meter, progress.clone());
        reading.spawn(task);
    }
    let writing = spawn_writers(plan, writers, &write_meter);
    finish_writers(writing).await?;
    progress.set_target(write_meter.events());
    let outcome = finish_readers(reading, &progress).await?;
    let _ = stop.send(());
    let intervals = reporter.await.context("the reporter failed")?;
    let (ledger, foreign) = outcome;
    Ok(Measured {
        intervals,
        write: write_meter.total(plan.origin),
        read: read_meter.map(|meter| {
            let figures = meter.total(plan.origin);
            let read = Read {
                throughput: figures.throughput,
                distinct: ledger.distinct(),
                duplicates: ledger.duplicates(),
                foreign,
            };
            (read, figures.latency)
        }),
    })
}

/// Creates the scope, and the stream with `requested` segments (or 1) if missing; the
/// stream's active segments.
async fn prepare_stream(
    controller: &ControllerClient,
    stream: &ScopedStream,
    requested: Option<u32>,
) -> anyhow::Result<usize> {
    let manager = StreamManager::with_controller(controller.clone());
    manager
        .create_scope(&stream.scope)
        .await
        .with_context(|| format!("creating scope {}", stream.scope))?;
    let configuration = StreamConfiguration::fixed(requested.unwrap_or(DEFAULT_SEGMENTS));
    let created = manager
        .create_stream(stream, &configuration)
        .await
        .context("creating the stream")?;
    let active = manager
        .stream_info(stream)
        .await
        .context("reading the stream's segments")?
        .segments
        .len();
    if active == 0 {
        bail!("stream {stream} is sealed");
    }
    if let Some(requested) = requested.filter(|requested| !created && active != *requested as usize)
    {
        tracing::warn!(%stream, active, requested, "the stream exists with another segment count; using it as it is");
    }
    Ok(active)
}

/// A reader group of run `run` reading `stream` from its current end, and `count` readers in
/// it.
async fn create_readers(
    controller: &ControllerClient,
    stream: &ScopedStream,
    run: u32,
    count: u32,
) -> anyhow::Result<(Option<ReaderGroup>, Vec<EventReader>)> {
    if count == 0 {
        return Ok((None, Vec::new()));
    }
    let config = ReaderGroupConfig::new().stream_from(stream.clone(), StartFrom::Tail);
    let name = format!("{}-readers-{run:08x}", stream.stream);
    let group = ReaderGroup::create(controller, &stream.scope, &name, config).await?;
    let mut readers = Vec::with_capacity(count as usize);
    for index in 0..count {
        readers.push(
            group
                .create_reader(&format!("bench-reader-{index}"))
                .await?,
        );
    }
    Ok((Some(group), readers))
}

async fn create_writers(
    controller: &ControllerClient,
    stream: &ScopedStream,
    args: &ClientArgs,
) -> anyhow::Result<Writers> {
    let factory = ClientFactory::with_controller(controller.clone());
    if let Some(per_transaction) = args.transactions {
        let writer = factory.create_transactional_writer(stream.clone());
        return Ok(Writers::Transactions(Box::new(writer), per_transaction));
    }
    let mut writers = Vec::with_capacity(args.writers as usize);
    for _ in 0..args.writers {
        writers.push(factory.create_event_writer(stream.clone()).await?);
    }
    Ok(Writers::Events(writers))
}

fn spawn_writers(plan: &Arc<Plan>, writers: Writers, meter: &Meter) -> JoinSet<anyhow::Result<()>> {
    let mut tasks = JoinSet::new();
    match writers {
        Writers::Events(writers) => {
            for (index, writer) in (0..).zip(writers) {
                tasks.spawn(workload::write_events(
                    plan.clone(),
                    index,
                    writer,
                    meter.clone(),
                ));
            }
        }
        Writers::Transactions(writer, per_transaction) => {
            for index in 0..plan.writers {
                let task = workload::write_transactions(
                    plan.clone(),
                    index,
                    (*writer).clone(),
                    per_transaction,
                    meter.clone(),
                );
                tasks.spawn(task);
            }
        }
    }
    tasks
}

/// Waits for every writer; the first failure ends the run.
async fn finish_writers(mut tasks: JoinSet<anyhow::Result<()>>) -> anyhow::Result<()> {
    while let Some(done) = tasks.join_next().await {
        done.context("a writer task failed")??;
    }
    Ok(())
}

/// Waits for the readers to read every event written, as long as they make progress.
async fn finish_readers(
    mut tasks: JoinSet<anyhow::Result<workload::ReadOutcome>>,
    progress: &Progress,
) -> anyhow::Result<(Ledger, u64)> {
    let mut ledger = Ledger::default();
    let mut foreign = 0;
    let mut last_read = progress.read();
    let mut last_progress = Instant::now();
    while !tasks.is_empty() {
        tokio::select! {
            Some(done) = tasks.join_next() => {
                let outcome = done.context("a reader task failed")??;
                ledger.merge(outcome.ledger);
                foreign += outcome.foreign;
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                let read = progress.read();
                if read != last_read {
                    last_read = read;
                    last_progress = Instant::now();
                } else if last_progress.elapsed() >= STALL_TIMEOUT {
                    bail!("the readers stopped after {read} events of the run: nothing new for {} s", STALL_TIMEOUT.as_secs());
                }
            }
        }
    }
    Ok((ledger, foreign))
}

/// Prints one line per interval until told to stop, then one for the rest (if anything
/// happened since the last line); the number of lines printed.
async fn report_intervals(
    origin: Instant,
    every: Duration,
    write: Meter,
    read: Option<Meter>,
    json: bool,
    mut stop: oneshot::Receiver<()>,
) -> u64 {
    let mut printed = 0;
    let mut last = origin;
    loop {
        let due = last + every;
        let stopped = tokio::select! {
            () = tokio::time::sleep_until(due.into()) => false,
            _ = &mut stop => true,
        };
        let now = if stopped { Instant::now() } else { due };
        let idle = write.interval_is_empty() && read.as_ref().is_none_or(Meter::interval_is_empty);
        if stopped && idle {
            return printed;
        }
        let span = now - last;
        let read_figures = read.as_ref().map(|meter| meter.take_interval(span));
        Interval::new(now - origin, write.take_interval(span), read_figures).print(json);
        printed += 1;
        last = now;
        if stopped {
            return printed;
        }
    }
}

/// The storage engine in-process: the run's event size, one appender per writer, each with as
/// many appends in flight as a client writer's in-flight budget holds, `span` long.
async fn baseline(args: &ClientArgs, span: Duration) -> anyhow::Result<(engine::Figures, usize)> {
    let budget = args
        .connect
        .client_config()?
        .max_in_flight_bytes_per_writer();
    let framed = (args.event_size + EVENT_FRAMING_BYTES) as u64;
    let depth = usize::try_from(budget / framed)
        .unwrap_or(usize::MAX)
        .max(1);
    let parent = args.baseline_dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix("pravaha-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating the baseline's directory in {}", parent.display()))?;
    let appenders = args.writers as usize;
    let figures = engine::engine(scratch.path(), args.event_size, appenders, depth, span)
        .await
        .context("running the storage-engine baseline")?;
    Ok((figures, depth))
}

/// Tells this run's events from others'; unique enough for runs that share a stream.
fn run_id() -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.subsec_nanos() ^ (now.as_secs() as u32) ^ std::process::id().rotate_left(16)
}

fn fresh_stream_name(run: u32) -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!("run-{seconds}-{run:08x}")
}

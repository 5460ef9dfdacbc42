//! `pravaha bench` run as a process against a real `pravaha standalone`: what its JSON reports
//! say about the events written and read (counts, bytes, percentile order, report intervals,
//! the stream it made) and how it fails without a server. No timing is asserted.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Standalone;
use pravaha_client::controller::types::ScopedStream;
use pravaha_client::{ClientConfig, StreamManager};
use serde_json::Value;

/// How long one `pravaha bench` run may take (small counts, debug builds, a busy machine).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `pravaha` with `args`, killing it after [`RUN_TIMEOUT`].
fn pravaha(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pravaha"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pravaha");
    // Drained on threads so that a full pipe never stalls the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).expect("read a pipe");
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pravaha {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `pravaha bench` against `standalone`; asserts it succeeded without warnings and returns its
/// JSON lines.
fn bench(standalone: &Standalone, args: &[&str]) -> Vec<Value> {
    let controller = format!("tcp://{}", standalone.listeners.grpc);
    let mut all = vec!["bench", "--controller", &controller, "--json"];
    all.extend_from_slice(args);
    let output = pravaha(&all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pravaha {all:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "unexpected warnings:\n{stderr}"
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The interval lines and the summary (the last line).
fn split(lines: &[Value]) -> (&[Value], &Value) {
    let (summary, intervals) = lines.split_last().expect("output");
    assert_eq!(summary["type"], "summary", "{summary}");
    for interval in intervals {
        assert_eq!(interval["type"], "interval", "{interval}");
    }
    (intervals, summary)
}

fn number(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

/// p50 ≤ p95 ≤ p99 ≤ p99.9 ≤ max, and at least one microsecond (nothing is instantaneous).
fn assert_ordered(latency: &Value) {
    let keys = ["p50_us", "p95_us", "p99_us", "p999_us", "max_us"];
    let values: Vec<u64> = keys.iter().map(|key| number(latency, key)).collect();
    assert!(values[0] >= 1, "{latency}");
    assert!(
        values.windows(2).all(|pair| pair[0] <= pair[1]),
        "{latency}"
    );
}

/// The summary's counts: `events` written of `size` bytes, and (with readers) exactly those read.
fn assert_counts(summary: &Value, events: u64, size: u64, readers: bool) {
    let write = &summary["write"];
    assert_eq!(number(write, "events"), events, "{summary}");
    assert_eq!(number(write, "bytes"), events * size, "{summary}");
    assert_ordered(&summary["write_latency"]);
    if !readers {
        assert!(summary.get("read").is_none(), "{summary}");
        assert!(summary.get("end_to_end_latency").is_none(), "{summary}");
        return;
    }
    let read = &summary["read"];
    assert_eq!(number(read, "events"), events, "{summary}");
    assert_eq!(number(read, "distinct"), events, "{summary}");
    assert_eq!(number(read, "duplicates"), 0, "{summary}");
    assert_eq!(number(read, "foreign"), 0, "{summary}");
    assert_eq!(number(read, "bytes"), events * size, "{summary}");
    assert_ordered(&summary["end_to_end_latency"]);
}

/// The interval lines add up to the summary, each with ordered percentiles where it counted
/// events.
fn assert_intervals(intervals: &[Value], summary: &Value) {
    assert!(!intervals.is_empty(), "no periodic report: {summary}");
    assert_eq!(number(summary, "intervals"), intervals.len() as u64);
    for side in ["write", "read"] {
        if summary.get(side).is_none() {
            continue;
        }
        let latency = if side == "write" {
            "write_latency"
        } else {
            "end_to_end_latency"
        };
        let mut events = 0;
        for interval in intervals {
            let counted = number(&interval[side], "events");
            if counted > 0 {
                assert_ordered(&interval[latency]);
            }
            events += counted;
        }
        assert_eq!(
            events,
            number(&summary[side], "events"),
            "{side}: {summary}"
        );
    }
}

/// The active segments of `scope/stream`, as the controller tells.
fn segment_count(standalone: &Standalone, scope: &str, stream: &str) -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = ClientConfig::builder()
            .controller_uri(format!("tcp://{}", standalone.listeners.grpc))
            .build()
            .unwrap();
        let manager = StreamManager::new(config).unwrap();
        let info = manager
            .stream_info(&ScopedStream::new(scope, stream))
            .await
            .expect("the stream exists");
        info.segments.len()
    })
}

#[test]
fn writers_and_readers_move_exactly_the_events_written() {
    let standalone = Standalone::start();
    let baseline_dir = tempfile::tempdir().unwrap();
    let baseline_path = baseline_dir.path().to_str().unwrap();
    let args = [
        "--events",
        "2000",
        "--writers",
        "2",
        "--readers",
        "2",
        "--segments",
        "4",
        "--event-size",
        "100",
        "--scope",
        "bench-test",
        "--stream",
        "plain",
        "--report-interval",
        "0.05",
        "--baseline-dir",
        baseline_path,
    ];
    let lines = bench(&standalone, &args);
    let (intervals, summary) = split(&lines);
    assert_counts(summary, 2000, 100, true);
    assert_intervals(intervals, summary);
    assert_eq!(summary["scope"], "bench-test");
    assert_eq!(summary["stream"], "plain");
    assert_eq!(number(summary, "segments"), 4);
    assert_eq!(number(summary, "writers"), 2);
    assert_eq!(number(summary, "readers"), 2);
    assert_eq!(segment_count(&standalone, "bench-test", "plain"), 4);

    // The baseline: the engine with one appender per writer, the client as a share of it, and
    // its scratch directory gone.
    let baseline = &summary["baseline"];
    assert_eq!(number(baseline, "appenders"), 2);
    assert!(number(baseline, "appends") > 0, "{baseline}");
    let engine_rate = baseline["mb_per_second"].as_f64().unwrap();
    let client_rate = summary["write"]["mb_per_second"].as_f64().unwrap();
    let ratio = baseline["write_ratio"].as_f64().unwrap();
    assert!(
        (ratio - client_rate / engine_rate).abs() <= 1e-9 * ratio.max(1.0),
        "{baseline}"
    );
    assert!(baseline["read_ratio"].as_f64().is_some(), "{baseline}");
    assert_eq!(std::fs::read_dir(baseline_dir.path()).unwrap().count(), 0);

    // A second run on the same stream reads only its own events (the group starts at the
    // stream's end, and events carry the run's id).
    let again = [
        "--events",
        "500",
        "--writers",
        "1",
        "--readers",
        "1",
        "--scope",
        "bench-test",
        "--stream",
        "plain",
        "--no-baseline",
    ];
    let lines = bench(&standalone, &again);
    let (_, summary) = split(&lines);
    assert_counts(summary, 500, 100, true);
    assert_eq!(number(summary, "segments"), 4);
}

#[test]
fn transactions_commit_every_event_once() {
    let standalone = Standalone::start();
    let args = [
        "--events",
        "1000",
        "--writers",
        "2",
        "--readers",
        "1",
        "--segments",
        "2",
        "--event-size",
        "200",
        "--transactions",
        "40",
        "--report-interval",
        "0.05",
        "--no-baseline",
    ];
    let lines = bench(&standalone, &args);
    let (intervals, summary) = split(&lines);
    assert_counts(summary, 1000, 200, true);
    assert_intervals(intervals, summary);
    assert_eq!(number(summary, "transaction_events"), 40);
    let stream = summary["stream"].as_str().unwrap();
    assert!(stream.starts_with("run-"), "a fresh name: {stream}");
    assert_eq!(segment_count(&standalone, "bench", stream), 2);
}

#[test]
fn a_bounded_rate_paces_the_writers() {
    let standalone = Standalone::start();
    let args = [
        "--events",
        "600",
        "--writers",
        "2",
        "--readers",
        "0",
        "--rate",
        "1000",
        "--event-size",
        "1024",
        "--report-interval",
        "0.1",
        "--no-baseline",
    ];
    let lines = bench(&standalone, &args);
    let (intervals, summary) = split(&lines);
    assert_counts(summary, 600, 1024, false);
    assert_intervals(intervals, summary);
    assert_eq!(summary["rate"].as_f64(), Some(1000.0));
    // A lower bound the schedule guarantees, however slow the machine: the last of 600 events
    // at 1000 per second is not sent before 0.599 s.
    let seconds = summary["write"]["seconds"].as_f64().unwrap();
    assert!(seconds >= 0.599, "{summary}");
}

#[test]
fn without_a_server_it_fails_clearly() {
    // A port nobody listens on: bound, then freed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let controller = format!("tcp://127.0.0.1:{port}");
    let output = pravaha(&[
        "bench",
        "--controller",
        &controller,
        "--events",
        "10",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains(&controller), "{stderr}");
    assert!(stderr.contains("controller unavailable"), "{stderr}");

    let output = pravaha(&["bench", "--controller", &controller, "--event-size", "10"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--event-size"));
}

#[test]
fn the_engine_benchmark_is_still_a_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let lines = engine_bench(dir.path(), &["--seconds", "0.2", "--appenders", "1"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(number(line, "size"), 100);
    assert!(number(&line["engine"], "appends") > 0, "{line}");
    assert!(number(&line["baseline"], "appends") > 0, "{line}");
    for side in ["engine", "baseline"] {
        let figures = &line[side];
        let (p50, p99, max) = (
            number(figures, "p50_us"),
            number(figures, "p99_us"),
            number(figures, "max_us"),
        );
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{side}: {figures}");
    }
    assert!(is_empty(dir.path()));

    // Client options and a subcommand do not mix.
    let output = pravaha(&["bench", "--writers", "2", "engine"]);
    assert!(!output.status.success());
}

#[test]
fn repeated_engine_runs_end_with_their_median_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--seconds", "0.1", "--appenders", "2", "--repeat", "3"];
    let lines = engine_bench(dir.path(), &extra);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let mut ratios: Vec<f64> = lines[..3]
        .iter()
        .map(|run| run["ratio"].as_f64().unwrap())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let summary = &lines[3];
    assert_eq!(number(summary, "runs"), 3);
    assert_eq!(summary["median_ratio"].as_f64().unwrap(), ratios[1]);
    assert_eq!(summary["min_ratio"].as_f64().unwrap(), ratios[0]);
    assert_eq!(summary["max_ratio"].as_f64().unwrap(), ratios[2]);
    assert!(is_empty(dir.path()));
    let output = pravaha(&["bench", "engine", "--repeat", "0"]);
    assert!(!output.status.success());
}

/// `pravaha bench engine --json` on 100-byte appends in `dir` with `extra` options; its lines.
fn engine_bench(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["bench", "engine", "--dir", dir, "--sizes", "100", "--json"];
    args.extend_from_slice(extra);
    let output = pravaha(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

//! The client benchmark's output: one line per report interval and a final summary, as text
//! or as JSON lines (`--json`; every line an object whose `type` is `interval` or `summary`).

use std::time::Duration;

use serde::Serialize;

use super::engine;
use super::meter::{Figures, Percentiles, Throughput};

/// The figures of one report interval.
#[derive(Debug, Serialize)]
pub struct Interval {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Since the start of the run, at the end of the interval.
    pub elapsed_seconds: f64,
    pub write: Throughput,
    /// From each event's send time (the write call, or its scheduled time under `--rate`) to
    /// its acknowledgement.
    pub write_latency: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Throughput>,
    /// From each event's send time to its read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end_latency: Option<Percentiles>,
}

impl Interval {
    pub fn new(elapsed: Duration, write: Figures, read: Option<Figures>) -> Self {
        Self {
            kind: "interval",
            elapsed_seconds: elapsed.as_secs_f64(),
            write: write.throughput,
            write_latency: write.latency,
            read: read.map(|figures| figures.throughput),
            end_to_end_latency: read.map(|figures| figures.latency),
        }
    }

    pub fn print(&self, json: bool) {
        if json {
            print_json(self);
            return;
        }
        let mut line = format!(
            "{:>8.2} s  write {}  ack {}",
            self.elapsed_seconds,
            rates(&self.write),
            short_percentiles(&self.write_latency)
        );
        if let (Some(read), Some(latency)) = (&self.read, &self.end_to_end_latency) {
            let read_part = format!(
                " | read {}  e2e {}",
                rates(read),
                short_percentiles(latency)
            );
            line.push_str(&read_part);
        }
        println!("{line}");
    }
}

/// Events read, beside what tells whether they were exactly the events written.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Read {
    /// Every read of this run's events (duplicates included).
    #[serde(flatten)]
    pub throughput: Throughput,
    /// Distinct events of this run read.
    pub distinct: u64,
    /// Reads of events read before.
    pub duplicates: u64,
    /// Events of other writers in the stream, skipped.
    pub foreign: u64,
}

/// The storage engine's figures from the same run, and the client's as a share of them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baseline {
    pub appenders: u32,
    /// Appends each appender keeps in flight (as many as a client writer's in-flight budget
    /// holds).
    pub in_flight_per_appender: usize,
    pub seconds: f64,
    pub appends: u64,
    pub appends_per_second: f64,
    pub mb_per_second: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Appends per log write (group commit).
    pub appends_per_sync: f64,
    /// Client write MB/s ÷ engine MB/s.
    pub write_ratio: f64,
    /// Client read MB/s ÷ engine MB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_ratio: Option<f64>,
}

impl Baseline {
    pub fn new(
        engine: &engine::Figures,
        appenders: u32,
        in_flight_per_appender: usize,
        write: &Throughput,
        read: Option<&Read>,
    ) -> Self {
        let engine_rate = engine.megabytes_per_second();
        let ratio = |client: f64| {
            if engine_rate > 0.0 {
                client / engine_rate
            } else {
                0.0
            }
        };
        Self {
            appenders,
            in_flight_per_appender,
            seconds: engine.elapsed.as_secs_f64(),
            appends: engine.appends,
            appends_per_second: engine.appends_per_second(),
            mb_per_second: engine_rate,
            p50_us: u64::try_from(engine.p50.as_micros()).unwrap_or(u64::MAX),
            p99_us: u64::try_from(engine.p99.as_micros()).unwrap_or(u64::MAX),
            appends_per_sync: engine.appends_per_sync,
            write_ratio: ratio(write.mb_per_second),
            read_ratio: read.map(|read| ratio(read.throughput.mb_per_second)),
        }
    }
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Summary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub scope: String,
    pub stream: String,
    /// Active segments of the stream when the run started.
    pub segments: usize,
    pub writers: u32,
    pub readers: u32,
    pub event_size: usize,
    /// Events per second of all writers together; 0: unbounded.
    pub rate: f64,
    /// Events per transaction, when writing through transactions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_events: Option<u64>,
    /// Report intervals printed.
    pub intervals: u64,
    pub write: Throughput,
    pub write_latency: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<Read>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end_latency: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

impl Summary {
    pub fn print(&self, json: bool) {
        if json {
            print_json(self);
            return;
        }
        let rate = if self.rate > 0.0 {
            format!("{} events/s", self.rate)
        } else {
            "unbounded rate".to_owned()
        };
        let transactions = self
            .transaction_events
            .map(|events| format!(", transactions of {events} events"))
            .unwrap_or_default();
        println!(
            "summary: stream {}/{} ({} segments), {} writers, {} readers, {}-byte events, {rate}{transactions}",
            self.scope, self.stream, self.segments, self.writers, self.readers, self.event_size
        );
        println!("  written  {}", totals(&self.write));
        println!(
            "    ack latency         {}",
            long_percentiles(&self.write_latency)
        );
        if let (Some(read), Some(latency)) = (&self.read, &self.end_to_end_latency) {
            println!(
                "  read     {} ({} distinct, {} duplicates, {} foreign)",
                totals(&read.throughput),
                read.distinct,
                read.duplicates,
                read.foreign
            );
            println!("    end-to-end latency  {}", long_percentiles(latency));
        }
        if let Some(baseline) = &self.baseline {
            self.print_baseline(baseline);
        }
    }

    fn print_baseline(&self, baseline: &Baseline) {
        println!(
            "  baseline: storage engine in-process, {} appenders of {} bytes ({} in flight each), {:.2} s: {:.0} appends/s, {:.2} MB/s, p50 {}, p99 {}",
            baseline.appenders,
            self.event_size,
            baseline.in_flight_per_appender,
            baseline.seconds,
            baseline.appends_per_second,
            baseline.mb_per_second,
            micros(baseline.p50_us),
            micros(baseline.p99_us)
        );
        let read = baseline
            .read_ratio
            .map(|ratio| format!(", read {ratio:.3}"))
            .unwrap_or_default();
        println!(
            "  client / engine throughput: write {:.3}{read}",
            baseline.write_ratio
        );
    }
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        // Plain numbers and strings always serialize; should that change, say so loudly.
        Err(error) => eprintln!("failed to format a report as JSON: {error}"),
    }
}

fn rates(throughput: &Throughput) -> String {
    format!(
        "{:>9.0} ev/s {:>8.2} MB/s",
        throughput.events_per_second, throughput.mb_per_second
    )
}

fn totals(throughput: &Throughput) -> String {
    format!(
        "{} events, {} bytes in {:.2} s: {:.0} events/s, {:.2} MB/s",
        throughput.events,
        throughput.bytes,
        throughput.seconds,
        throughput.events_per_second,
        throughput.mb_per_second
    )
}

fn short_percentiles(latency: &Percentiles) -> String {
    format!(
        "p50 {:>8} p99 {:>8} max {:>8}",
        micros(latency.p50_us),
        micros(latency.p99_us),
        micros(latency.max_us)
    )
}

fn long_percentiles(latency: &Percentiles) -> String {
    format!(
        "p50 {}  p95 {}  p99 {}  p99.9 {}  max {}",
        micros(latency.p50_us),
        micros(latency.p95_us),
        micros(latency.p99_us),
        micros(latency.p999_us),
        micros(latency.max_us)
    )
}

fn micros(value: u64) -> String {
    engine::format_duration(Duration::from_micros(value))
}

//! What the client benchmark counts: events, bytes and latency histograms per side (writes,
//! reads), each taken per report interval and for the whole run; the header every benchmark
//! event carries; and the ledger that tells which events were read.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to an hour (longer ones count as an hour), with
/// three significant digits.
const HISTOGRAM_MAX_MICROS: u64 = 3_600_000_000;
const HISTOGRAM_DIGITS: u8 = 3;

/// Bytes of the header at the start of every event the benchmark writes (all big-endian):
///
/// | offset | width | meaning                                                              |
/// |--------|-------|----------------------------------------------------------------------|
/// | 0      | 4     | run id: tells this run's events from others in the same stream        |
/// | 4      | 4     | writer index                                                         |
/// | 8      | 8     | sequence number of the event within its writer, from 0               |
/// | 16     | 8     | send time: nanoseconds since the run's origin (a monotonic clock)    |
///
/// The rest of the event is filler.
pub const HEADER_BYTES: usize = 24;

/// The header of one benchmark event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub run: u32,
    pub writer: u32,
    pub sequence: u64,
    /// Since the run's origin.
    pub sent: Duration,
}

impl Header {
    /// An event of `size` bytes (at least [`HEADER_BYTES`]) carrying this header.
    pub fn event(&self, size: usize) -> Bytes {
        assert!(size >= HEADER_BYTES, "events hold at least their header");
        let mut event = BytesMut::with_capacity(size);
        event.put_u32(self.run);
        event.put_u32(self.writer);
        event.put_u64(self.sequence);
        event.put_u64(u64::try_from(self.sent.as_nanos()).unwrap_or(u64::MAX));
        event.resize(size, 0x5a);
        event.freeze()
    }

    /// The header of `event`, or `None` if it is too short to hold one.
    pub fn parse(event: &[u8]) -> Option<Header> {
        let field = |range: std::ops::Range<usize>| event.get(range);
        let run = u32::from_be_bytes(field(0..4)?.try_into().ok()?);
        let writer = u32::from_be_bytes(field(4..8)?.try_into().ok()?);
        let sequence = u64::from_be_bytes(field(8..16)?.try_into().ok()?);
        let sent = u64::from_be_bytes(field(16..24)?.try_into().ok()?);
        Some(Header {
            run,
            writer,
            sequence,
            sent: Duration::from_nanos(sent),
        })
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        let at = |quantile: f64| histogram.value_at_quantile(quantile);
        Self {
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: histogram.max(),
        }
    }
}

/// Events and bytes over a span of time, with their rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Throughput {
    pub events: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub events_per_second: f64,
    pub mb_per_second: f64,
}

impl Throughput {
    pub fn new(events: u64, bytes: u64, span: Duration) -> Self {
        let seconds = span.as_secs_f64();
        let rate = |count: u64| {
            if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            events,
            bytes,
            seconds,
            events_per_second: rate(events),
            mb_per_second: rate(bytes) / 1e6,
        }
    }
}

/// What one side (writes or reads) saw, over an interval or the whole run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub throughput: Throughput,
    pub latency: Percentiles,
}

/// One side's counters, shared by its tasks (each recording takes the lock briefly; the
/// reporter takes it once per interval).
#[derive(Debug, Clone)]
pub struct Meter {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Debug)]
struct Counts {
    interval: Histogram<u64>,
    interval_events: u64,
    interval_bytes: u64,
    total: Histogram<u64>,
    total_events: u64,
    total_bytes: u64,
    /// When the last event was recorded (the end of the side's run).
    last: Option<Instant>,
}

impl Default for Meter {
    fn default() -> Self {
        let histogram = || {
            Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, HISTOGRAM_DIGITS)
                .expect("constant histogram bounds are valid")
        };
        Self {
            inner: Arc::new(Mutex::new(Counts {
                interval: histogram(),
                interval_events: 0,
                interval_bytes: 0,
                total: histogram(),
                total_events: 0,
                total_bytes: 0,
                last: None,
            })),
        }
    }
}

impl Meter {
    /// Counts `events` of `bytes` in all that completed at `at`, each with `latency`.
    pub fn record(&self, events: u64, bytes: u64, latency: Duration, at: Instant) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut counts = self.lock();
        counts.interval.saturating_record_n(micros, events);
        counts.total.saturating_record_n(micros, events);
        counts.interval_events += events;
        counts.interval_bytes += bytes;
        counts.total_events += events;
        counts.total_bytes += bytes;
        counts.last = Some(counts.last.map_or(at, |last| last.max(at)));
    }

    /// Events recorded so far.
    pub fn events(&self) -> u64 {
        self.lock().total_events
    }

    /// The figures since the previous call, over `span`, starting a new interval.
    pub fn take_interval(&self, span: Duration) -> Figures {
        let mut counts = self.lock();
        let figures = Figures {
            throughput: Throughput::new(counts.interval_events, counts.interval_bytes, span),
            latency: Percentiles::of(&counts.interval),
        };
        counts.interval.reset();
        counts.interval_events = 0;
        counts.interval_bytes = 0;
        figures
    }

    /// Whether events were recorded since the last [`Self::take_interval`].
    pub fn interval_is_empty(&self) -> bool {
        self.lock().interval_events == 0
    }

    /// The figures of the whole run, from `origin` to the last event recorded.
    pub fn total(&self, origin: Instant) -> Figures {
        let counts = self.lock();
        let span = counts.last.map_or(Duration::ZERO, |last| last - origin);
        Figures {
            throughput: Throughput::new(counts.total_events, counts.total_bytes, span),
            latency: Percentiles::of(&counts.total),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while holding the lock leaves plain counters behind: still fine to read.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Which events of each writer a reader saw: one bit per sequence number.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    writers: Vec<Vec<u64>>,
    duplicates: u64,
}

impl Ledger {
    /// Notes event `sequence` of `writer`; `false` if it was noted before (a duplicate).
    pub fn note(&mut self, writer: u32, sequence: u64) -> bool {
        let writer = writer as usize;
        if self.writers.len() <= writer {
            self.writers.resize_with(writer + 1, Vec::new);
        }
        let bits = &mut self.writers[writer];
        let word = usize::try_from(sequence / 64).expect("sequence numbers fit in memory");
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        let mask = 1u64 << (sequence % 64);
        let fresh = bits[word] & mask == 0;
        bits[word] |= mask;
        if !fresh {
            self.duplicates += 1;
        }
        fresh
    }

    /// Adds `other`'s events; those both saw count as duplicates.
    pub fn merge(&mut self, other: Ledger) {
        self.duplicates += other.duplicates;
        if self.writers.len() < other.writers.len() {
            self.writers.resize_with(other.writers.len(), Vec::new);
        }
        for (mine, theirs) in self.writers.iter_mut().zip(other.writers) {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (word, their_word) in mine.iter_mut().zip(theirs) {
                self.duplicates += u64::from((*word & their_word).count_ones());
                *word |= their_word;
            }
        }
    }

    /// Distinct events seen.
    pub fn distinct(&self) -> u64 {
        self.writers
            .iter()
            .flatten()
            .map(|word| u64::from(word.count_ones()))
            .sum()
    }

    /// Events seen more than once (each extra sighting counts).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_fills_the_event() {
        let header = Header {
            run: 0xdead_beef,
            writer: 3,
            sequence: 1 << 40,
            sent: Duration::from_nanos(123_456_789),
        };
        let event = header.event(100);
        assert_eq!(event.len(), 100);
        assert_eq!(&event[..4], &[0xde, 0xad, 0xbe, 0xef]);
        assert!(event[HEADER_BYTES..].iter().all(|byte| *byte == 0x5a));
        assert_eq!(Header::parse(&event), Some(header));
        assert_eq!(Header::parse(&event[..HEADER_BYTES - 1]), None);
    }

    #[test]
    fn ledger_counts_distinct_events_and_duplicates_across_readers() {
        let mut first = Ledger::default();
        assert!(first.note(0, 0));
        assert!(first.note(0, 64));
        assert!(!first.note(0, 64));
        let mut second = Ledger::default();
        assert!(second.note(0, 0));
        assert!(second.note(2, 5));
        first.merge(second);
        assert_eq!(first.distinct(), 3);
        assert_eq!(first.duplicates(), 2);
    }

    #[test]
    fn meter_splits_intervals_and_keeps_totals() {
        let meter = Meter::default();
        let origin = Instant::now();
        meter.record(1, 100, Duration::from_micros(10), origin);
        meter.record(1, 100, Duration::from_millis(5), origin);
        let interval = meter.take_interval(Duration::from_secs(1));
        assert_eq!(interval.throughput.events, 2);
        assert_eq!(interval.throughput.bytes, 200);
        assert_eq!(interval.latency.p50_us, 10);
        assert!(interval.latency.max_us >= 5_000);
        assert!(meter.interval_is_empty());
        meter.record(
            3,
            300,
            Duration::from_micros(7),
            origin + Duration::from_secs(2),
        );
        let total = meter.total(origin);
        assert_eq!(total.throughput.events, 5);
        assert_eq!(total.throughput.bytes, 500);
        assert_eq!(total.throughput.seconds, 2.0);
        assert_eq!(total.latency.p50_us, 7);
    }
}

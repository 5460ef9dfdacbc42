//! Append rates per segment, for auto-scaling.
//!
//! Every successful append adds its events and bytes to its segment's open measurement
//! interval (`tick` long). When an interval closes, four exponentially weighted moving
//! averages of each rate take it in, as Pravega's `SegmentAggregates` do:
//!
//! `rate ← rate + α·(count/tick − rate)`, with `α = 1 − e^(−tick/τ)` and τ the window's time
//! constant. The defaults are Pravega's: tick 5 s, τ = 2, 5, 10 and 20 minutes, so
//! α ≈ 0.0408, 0.0165, 0.0083 and 0.0042. The first interval a segment closes sets all four
//! averages to its rate (Pravega starts from the first measurement too); a run of `k` silent
//! intervals multiplies each average by `e^(−k·tick/τ)` in one step. Intervals stay aligned to
//! the segment's first append, and an interval is closed by the next append or read after it
//! ends, so a read sees silence as decay.
//!
//! Cost per append: one short, normally uncontended lock of the segment's own state (the
//! writer holds it since `SetupAppend`; no map lookup). Memory is bounded: at most
//! `max_segments` segments are measured, a segment is forgotten when it is sealed, deleted or
//! has had no append for `idle_expiry`, and satellite segments (transactions, transient
//! segments) are not measured. The rates are read as computed attributes
//! (`pravaha_types::attributes`; docs/segment-server.md).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pravaha_types::attributes::{self, RATE_WINDOWS};
use pravaha_wire::NULL_ATTRIBUTE_VALUE;

/// How append rates are measured; the defaults are Pravega's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateConfig {
    /// Length of one measurement interval.
    pub tick: Duration,
    /// Time constants of the four moving averages, shortest first.
    pub windows: [Duration; RATE_WINDOWS],
    /// A segment without appends for this long is forgotten.
    pub idle_expiry: Duration,
    /// Most segments measured at once; appends to further segments are not measured.
    pub max_segments: usize,
}

impl Default for RateConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            tick: Duration::from_secs(5),
            windows: [minutes(2), minutes(5), minutes(10), minutes(20)],
            idle_expiry: minutes(30),
            max_segments: 100_000,
        }
    }
}

/// A segment's measured rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Measurement {
    pub events_per_second: [f64; RATE_WINDOWS],
    pub bytes_per_second: [f64; RATE_WINDOWS],
    /// How long the rates have been measured.
    pub observed: Duration,
}

const SHARDS: usize = 64;

/// The rates of every measured segment of this server.
pub(crate) struct RateTable {
    tick: Duration,
    tick_seconds: f64,
    /// Per window: the weight of a newly closed interval, `1 − e^(−tick/τ)`.
    alphas: [f64; RATE_WINDOWS],
    /// Per window: τ in seconds.
    time_constants: [f64; RATE_WINDOWS],
    idle_expiry: Duration,
    /// A shard is swept of idle segments at most this often (when it is next used).
    sweep_every: Duration,
    max_segments: usize,
    /// When this table began measuring (monotonic and wall-clock milliseconds).
    started: Instant,
    started_ms: i64,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    tracked: AtomicUsize,
    /// Segments that could not be measured because `max_segments` were.
    refused: AtomicU64,
}

struct Shard {
    segments: HashMap<Box<str>, Arc<SegmentRate>>,
    swept: Instant,
}

/// One segment's rates; writers of the segment hold it.
pub(crate) struct SegmentRate(Mutex<RateState>);

struct RateState {
    /// Removed from the table: appends are no longer counted here.
    forgotten: bool,
    /// The first append counted, if any.
    started: Option<Instant>,
    interval_start: Instant,
    /// The last append (or the registration): idleness is measured from here.
    touched: Instant,
    pending_events: u64,
    pending_bytes: u64,
    /// Whether an interval has closed (the averages hold a measurement).
    primed: bool,
    events: [f64; RATE_WINDOWS],
    bytes: [f64; RATE_WINDOWS],
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is plain numbers, consistent after every statement: a panic elsewhere does not
    // make it unusable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateTable {
    pub fn new(config: &RateConfig, now: Instant, now_ms: i64) -> Self {
        let tick = config.tick.max(Duration::from_millis(1));
        let tick_seconds = tick.as_secs_f64();
        let time_constants = config.windows.map(|w| w.as_secs_f64().max(tick_seconds));
        let alphas = time_constants.map(|tau| 1.0 - (-tick_seconds / tau).exp());
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    segments: HashMap::new(),
                    swept: now,
                })
            })
            .collect();
        Self {
            tick,
            tick_seconds,
            alphas,
            time_constants,
            idle_expiry: config.idle_expiry,
            sweep_every: (config.idle_expiry / 4).min(Duration::from_secs(60)),
            max_segments: config.max_segments,
            started: now,
            started_ms: now_ms,
            shards,
            hasher: RandomState::new(),
            tracked: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The rate handle of `segment` for a writer that set up on it; `None` if the segment is
    /// not measured (a satellite segment, or the table is full).
    pub fn track(&self, segment: &str, now: Instant) -> Option<Arc<SegmentRate>> {
        if pravaha_types::primary_segment_name(segment) != segment {
            return None;
        }
        let mut shard = lock(self.shard(segment));
        if now.saturating_duration_since(shard.swept) >= self.sweep_every {
            self.sweep(&mut shard, now);
        }
        if let Some(rate) = shard.segments.get(segment) {
            return Some(rate.clone());
        }
        if self.tracked.load(Ordering::Relaxed) >= self.max_segments {
            let refused = self.refused.fetch_add(1, Ordering::Relaxed);
            if refused.is_multiple_of(10_000) {
                tracing::warn!(
                    segment,
                    refused = refused + 1,
                    max_segments = self.max_segments,
                    "append rates of a segment are not measured: too many segments measured"
                );
            }
            return None;
        }
        let rate = Arc::new(SegmentRate::new(now));
        shard.segments.insert(segment.into(), rate.clone());
        self.tracked.fetch_add(1, Ordering::Relaxed);
        Some(rate)
    }

    /// Counts one successful append through a writer's handle. A handle whose segment was
    /// forgotten (idle) is replaced by a fresh one.
    pub fn record(
        &self,
        handle: &mut Option<Arc<SegmentRate>>,
        segment: &str,
        now: Instant,
        events: u64,
        bytes: u64,
    ) {
        let Some(rate) = handle else {
            return;
        };
        if rate.record(self, now, events, bytes) {
            return;
        }
        *handle = self.track(segment, now);
        if let Some(rate) = handle {
            rate.record(self, now, events, bytes);
        }
    }

    /// Stops measuring `segment` (sealed or deleted).
    pub fn forget(&self, segment: &str) {
        let removed = lock(self.shard(segment)).segments.remove(segment);
        if let Some(rate) = removed {
            lock(&rate.0).forgotten = true;
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The rates of `segment` now. A segment without a measured append has rate 0, observed
    /// since the later of this table's start and the segment's creation (`created_ms`).
    pub fn measure(
        &self,
        segment: &str,
        created_ms: Option<i64>,
        now: Instant,
        now_ms: i64,
    ) -> Measurement {
        let rate = lock(self.shard(segment)).segments.get(segment).cloned();
        if let Some(rate) = rate {
            let mut state = lock(&rate.0);
            if let Some(started) = state.started {
                self.advance(&mut state, now);
                return Measurement {
                    events_per_second: state.events,
                    bytes_per_second: state.bytes,
                    observed: now.saturating_duration_since(started),
                };
            }
        }
        let since_ms = created_ms.map_or(self.started_ms, |c| c.max(self.started_ms));
        let observed_ms = u64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(0);
        Measurement {
            events_per_second: [0.0; RATE_WINDOWS],
            bytes_per_second: [0.0; RATE_WINDOWS],
            observed: Duration::from_millis(observed_ms)
                .min(now.saturating_duration_since(self.started)),
        }
    }

    /// The value of the computed attribute `id` of `segment`, whose stored scaling policy type
    /// is `scale_type`: `i64::MIN` unless the policy is rate-based (1 or 2) and `id` is a rate
    /// attribute.
    pub fn attribute(
        &self,
        segment: &str,
        id: u128,
        scale_type: Option<i64>,
        created_ms: Option<i64>,
        now: Instant,
        now_ms: i64,
    ) -> i64 {
        if !matches!(scale_type, Some(1 | 2)) || !attributes::is_rate_attribute(id) {
            return NULL_ATTRIBUTE_VALUE;
        }
        let measured = self.measure(segment, created_ms, now, now_ms);
        let scaled = |rate: f64, scale: f64| (rate * scale).round() as i64;
        if id == attributes::RATE_OBSERVED_MS {
            return i64::try_from(measured.observed.as_millis()).unwrap_or(i64::MAX);
        }
        if let Some(w) = attributes::EVENT_RATE.iter().position(|a| *a == id) {
            return scaled(
                measured.events_per_second[w],
                attributes::EVENT_RATE_SCALE as f64,
            );
        }
        match attributes::BYTE_RATE.iter().position(|a| *a == id) {
            Some(w) => scaled(measured.bytes_per_second[w], 1.0),
            None => NULL_ATTRIBUTE_VALUE,
        }
    }

    /// Segments measured now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    fn shard(&self, segment: &str) -> &Mutex<Shard> {
        let hash = self.hasher.hash_one(segment);
        &self.shards[(hash % SHARDS as u64) as usize]
    }

    fn sweep(&self, shard: &mut Shard, now: Instant) {
        let before = shard.segments.len();
        shard.segments.retain(|_, rate| {
            let mut state = lock(&rate.0);
            let idle = now.saturating_duration_since(state.touched) > self.idle_expiry;
            state.forgotten |= idle;
            !idle
        });
        shard.swept = now;
        self.tracked
            .fetch_sub(before - shard.segments.len(), Ordering::Relaxed);
    }

    /// Closes every interval that ended by `now` into the averages.
    fn advance(&self, state: &mut RateState, now: Instant) {
        let elapsed = now.saturating_duration_since(state.interval_start);
        if state.started.is_none() || elapsed < self.tick {
            return;
        }
        let tick_nanos = self.tick.as_nanos();
        let intervals = elapsed.as_nanos() / tick_nanos;
        let events_now = state.pending_events as f64 / self.tick_seconds;
        let bytes_now = state.pending_bytes as f64 / self.tick_seconds;
        for w in 0..RATE_WINDOWS {
            if state.primed {
                state.events[w] += self.alphas[w] * (events_now - state.events[w]);
                state.bytes[w] += self.alphas[w] * (bytes_now - state.bytes[w]);
            } else {
                state.events[w] = events_now;
                state.bytes[w] = bytes_now;
            }
        }
        state.primed = true;
        state.pending_events = 0;
        state.pending_bytes = 0;
        let silent = (intervals - 1) as f64;
        if silent > 0.0 {
            for w in 0..RATE_WINDOWS {
                let kept = (-silent * self.tick_seconds / self.time_constants[w]).exp();
                state.events[w] *= kept;
                state.bytes[w] *= kept;
            }
        }
        // The next interval starts where the last closed one ended.
        let into_open = Duration::from_nanos((elapsed.as_nanos() % tick_nanos) as u64);
        state.interval_start = now.checked_sub(into_open).unwrap_or(now);
    }
}

impl SegmentRate {
    fn new(now: Instant) -> Self {
        Self(Mutex::new(RateState {
            forgotten: false,
            started: None,
            interval_start: now,
            touched: now,
            pending_events: 0,
            pending_bytes: 0,
            primed: false,
            events: [0.0; RATE_WINDOWS],
            bytes: [0.0; RATE_WINDOWS],
        }))
    }

    /// Counts an append; false if the segment was forgotten (nothing counted).
    fn record(&self, table: &RateTable, now: Instant, events: u64, bytes: u64) -> bool {
        let mut state = lock(&self.0);
        if state.forgotten {
            return false;
        }
        if state.started.is_none() {
            state.started = Some(now);
            state.interval_start = now;
        } else {
            table.advance(&mut state, now);
        }
        state.pending_events += events;
        state.pending_bytes += bytes;
        state.touched = now;
        true
    }
}

#[cfg(test)]
mod tests;

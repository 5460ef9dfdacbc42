//! Auto-scaling: a background task that splits hot segments and merges cold ones of every
//! stream with a rate-based scaling policy.
//!
//! Pravega's segment stores decide and post scale requests themselves; here the segment stores
//! only measure (moving averages of each segment's event and byte rates, read as computed
//! attributes, `pravaha_types::attributes`) and this task decides, every `interval`, with
//! Pravega's rules (`plan`). It goes through the controller's public operations only: it lists
//! scopes and streams, and starts a scale with [`Controller::scale`], which refuses a scale
//! that conflicts with another workflow (`PreconditionFailed`); that stream is simply looked at
//! again next round. Nothing is recorded by this task, so it can stop at any point.

mod plan;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pravaha_segment_client::{ClientError, SegmentClient};
use pravaha_types::attributes::{self, RATE_WINDOWS};
use pravaha_types::qualified_segment_name;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::core::Controller;
use crate::error::ControllerError;
use crate::model::{ScaleType, StreamRecord, StreamState};

use plan::{RateUnit, SegmentLoad, Thresholds};

/// Auto-scaler settings; the defaults follow Pravega's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoScaleConfig {
    /// How often every stream is looked at.
    pub interval: Duration,
    /// A segment is neither split nor merged until it is this old (Pravega's cooldown).
    pub cooldown: Duration,
    /// The time constants of the segment stores' moving averages (their
    /// `RateConfig::windows`, shortest first). A rate is trusted once it has been measured for
    /// longer than its time constant, as Pravega requires.
    pub rate_windows: [Duration; RATE_WINDOWS],
}

impl Default for AutoScaleConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            interval: Duration::from_secs(10),
            cooldown: minutes(10),
            rate_windows: [minutes(2), minutes(5), minutes(10), minutes(20)],
        }
    }
}

/// What the auto-scaler has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AutoScaleStats {
    /// Rounds completed (every stream looked at once).
    pub rounds: u64,
    /// Scales started.
    pub scales_started: u64,
    /// Scales refused because the stream changed meanwhile (retried next round).
    pub conflicts: u64,
    /// Streams that could not be looked at or scaled (segment store or metadata failures).
    pub failures: u64,
}

/// The running auto-scaler. Dropping it stops the task too.
pub struct AutoScaler {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    stats: Arc<Counters>,
}

/// Starts the auto-scaler of `controller` in the background (on the current Tokio runtime).
pub fn start_autoscaler(controller: Controller, config: AutoScaleConfig) -> AutoScaler {
    let (stop, stopped) = watch::channel(false);
    let stats = Arc::new(Counters::default());
    let scaler = Scaler {
        client: controller.segment_client(),
        thresholds: Thresholds {
            cooldown: config.cooldown,
            windows: config.rate_windows,
        },
        controller,
        stats: stats.clone(),
    };
    let task = tokio::spawn(run(scaler, config.interval, stopped));
    AutoScaler {
        stop,
        task: Some(task),
        stats,
    }
}

impl AutoScaler {
    pub fn stats(&self) -> AutoScaleStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        AutoScaleStats {
            rounds: read(&self.stats.rounds),
            scales_started: read(&self.stats.scales_started),
            conflicts: read(&self.stats.conflicts),
            failures: read(&self.stats.failures),
        }
    }

    /// Stops the task and waits for it. A round in progress is abandoned: scales it already
    /// started complete as workflows.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for AutoScaler {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[derive(Default)]
struct Counters {
    rounds: AtomicU64,
    scales_started: AtomicU64,
    conflicts: AtomicU64,
    failures: AtomicU64,
}

struct Scaler {
    controller: Controller,
    client: SegmentClient,
    thresholds: Thresholds,
    stats: Arc<Counters>,
}

async fn run(scaler: Scaler, interval: Duration, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(interval = ?interval, "auto-scaler started");
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            _ = stopped.changed() => break,
            () = scaler.round() => {}
        }
        scaler.stats.rounds.fetch_add(1, Ordering::Relaxed);
    }
    tracing::info!("auto-scaler stopped");
}

impl Scaler {
    /// Looks at every stream once.
    async fn round(&self) {
        let scopes = match self.scopes().await {
            Ok(scopes) => scopes,
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "auto-scaling round skipped: listing scopes failed");
                return;
            }
        };
        let mut failed = 0u64;
        for scope in scopes {
            failed += self.check_scope(&scope).await;
        }
        if failed > 0 {
            self.stats.failures.fetch_add(failed, Ordering::Relaxed);
            tracing::warn!(
                streams = failed,
                "auto-scaling round could not check some streams; they are retried next round"
            );
        }
    }

    /// Looks at every stream of `scope`; the number of streams that could not be checked.
    async fn check_scope(&self, scope: &str) -> u64 {
        let mut failed = 0;
        let mut token = String::new();
        loop {
            let (streams, next) = match self.controller.list_streams(scope, &token, None).await {
                Ok(page) => page,
                Err(ControllerError::ScopeNotFound(_)) => return failed,
                Err(error) => {
                    tracing::debug!(scope, %error, "auto-scaling could not list streams");
                    return failed + 1;
                }
            };
            if streams.is_empty() {
                return failed;
            }
            for record in &streams {
                match self.check(record).await {
                    // Deleted since it was listed: nothing to scale.
                    Ok(()) | Err(ControllerError::StreamNotFound { .. }) => {}
                    Err(error) => {
                        failed += 1;
                        let (scope, stream) = (&record.scope, &record.name);
                        tracing::debug!(scope, stream, %error, "auto-scaling skipped a stream");
                    }
                }
            }
            token = next;
        }
    }

    async fn scopes(&self) -> Result<Vec<String>, ControllerError> {
        let mut scopes = Vec::new();
        let mut token = String::new();
        loop {
            let (page, next) = self.controller.list_scopes(&token).await?;
            if page.is_empty() {
                return Ok(scopes);
            }
            scopes.extend(page);
            token = next;
        }
    }

    /// Reads the rates of the stream's segments and starts the scale they call for, if any.
    async fn check(&self, record: &StreamRecord) -> Result<(), ControllerError> {
        let policy = record.config.scaling;
        let unit = match policy.scale_type {
            ScaleType::FixedNumSegments => return Ok(()),
            ScaleType::ByRateInEventsPerSec => RateUnit::Events,
            ScaleType::ByRateInKbytesPerSec => RateUnit::Kibibytes,
        };
        if record.state != StreamState::Active || record.workflow.is_some() {
            return Ok(());
        }
        let loads = self.loads(record, unit).await?;
        let Some(plan) = plan::plan(&policy, &loads, crate::core::now_ms(), &self.thresholds)
        else {
            return Ok(());
        };
        let (scope, stream) = (record.scope.as_str(), record.name.as_str());
        match self
            .controller
            .scale(scope, stream, &plan.sealed, &plan.ranges)
            .await
        {
            Ok(started) => {
                self.stats.scales_started.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    scope,
                    stream,
                    from_epoch = started.epoch,
                    splits = plan.splits,
                    merges = plan.merges,
                    segments = plan.segments_after,
                    "auto-scaling started a scale"
                );
                Ok(())
            }
            Err(ControllerError::PreconditionFailed(why)) => {
                self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(scope, stream, why, "auto-scale refused; retried next round");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The measured load of every active segment of the stream, in key order.
    async fn loads(
        &self,
        record: &StreamRecord,
        unit: RateUnit,
    ) -> Result<Vec<SegmentLoad>, ControllerError> {
        let (scope, stream) = (record.scope.as_str(), record.name.as_str());
        let token = self.controller.delegation_token(scope, stream)?;
        let mut reads = JoinSet::new();
        for (index, segment) in record.current_segments().into_iter().enumerate() {
            let created_ms = record
                .segments
                .get(&segment.id)
                .map_or(record.created_ms, |s| s.created_ms);
            let at = self.controller.endpoint(scope, stream, segment.id).address;
            let name = qualified_segment_name(scope, stream, segment.id);
            let (client, token) = (self.client.clone(), token.clone());
            reads.spawn(async move {
                let measured = read_rates(&client, at, &name, &token, unit).await;
                measured.map(|(rates, observed)| {
                    let load = SegmentLoad {
                        id: segment.id,
                        key_start: segment.key_start,
                        key_end: segment.key_end,
                        created_ms,
                        rates,
                        observed,
                    };
                    (index, load)
                })
            });
        }
        let mut loads = Vec::with_capacity(reads.len());
        while let Some(joined) = reads.join_next().await {
            let read = joined.map_err(|e| ControllerError::Internal(format!("rate read: {e}")))?;
            loads.push(read.map_err(ControllerError::SegmentStore)?);
        }
        loads.sort_by_key(|(index, _)| *index);
        Ok(loads.into_iter().map(|(_, load)| load).collect())
    }
}

/// A segment's four moving averages in the policy's unit (`None` when the segment store does
/// not measure the segment) and for how long they have been measured.
async fn read_rates(
    client: &SegmentClient,
    at: std::net::SocketAddr,
    segment: &str,
    token: &str,
    unit: RateUnit,
) -> Result<(Option<[f64; RATE_WINDOWS]>, Duration), ClientError> {
    let (ids, scale) = match unit {
        RateUnit::Events => (attributes::EVENT_RATE, attributes::EVENT_RATE_SCALE as f64),
        // Bytes per second, compared with a target in KiB/s.
        RateUnit::Kibibytes => (attributes::BYTE_RATE, 1024.0),
    };
    let mut rates = [0.0; RATE_WINDOWS];
    for (rate, id) in rates.iter_mut().zip(ids) {
        match client.get_attribute(at, segment, id, token).await? {
            Some(value) => *rate = value as f64 / scale,
            None => return Ok((None, Duration::ZERO)),
        }
    }
    let observed = client
        .get_attribute(at, segment, attributes::RATE_OBSERVED_MS, token)
        .await?
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    Ok((Some(rates), observed))
}

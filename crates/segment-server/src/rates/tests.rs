//! Unit tests of the rate table, on synthetic time.

use super::*;

const SEGMENT: &str = "scope/stream/0.#epoch.0";

fn config() -> RateConfig {
    RateConfig {
        tick: Duration::from_secs(1),
        windows: [10, 20, 40, 80].map(Duration::from_secs),
        idle_expiry: Duration::from_secs(600),
        max_segments: 4,
    }
}

fn seconds(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance * expected.abs().max(1e-9)
}

/// Appends `events` events of 10 bytes each per second, for `secs` seconds from `from`.
fn steady(table: &RateTable, handle: &mut Option<Arc<SegmentRate>>, from: Instant, secs: u64) {
    for s in 0..secs {
        table.record(handle, SEGMENT, from + seconds(s), 100, 1000);
    }
}

#[test]
fn a_steady_rate_is_measured_in_every_window() {
    let t0 = Instant::now();
    let table = RateTable::new(&config(), t0, 0);
    let mut handle = table.track(SEGMENT, t0);
    steady(&table, &mut handle, t0, 120);
    let m = table.measure(SEGMENT, None, t0 + seconds(120), 120_000);
    for w in 0..RATE_WINDOWS {
        assert!(close(m.events_per_second[w], 100.0, 1e-9), "{m:?}");
        assert!(close(m.bytes_per_second[w], 1000.0, 1e-9), "{m:?}");
    }
    assert_eq!(m.observed, seconds(120));
}

#[test]
fn silence_decays_each_window_by_its_time_constant() {
    let t0 = Instant::now();
    let table = RateTable::new(&config(), t0, 0);
    let mut handle = table.track(SEGMENT, t0);
    steady(&table, &mut handle, t0, 100);
    // The interval [99 s, 100 s) holds the last append; 20 silent seconds follow it.
    let m = table.measure(SEGMENT, None, t0 + seconds(120), 120_000);
    for (w, tau) in [10.0, 20.0, 40.0, 80.0].iter().enumerate() {
        let expected = 100.0 * (-20.0f64 / tau).exp();
        assert!(close(m.events_per_second[w], expected, 1e-9), "{w}: {m:?}");
    }
    assert!(m.events_per_second[0] < m.events_per_second[3]);
}

#[test]
fn silent_intervals_in_one_step_equal_one_by_one() {
    let t0 = Instant::now();
    let (one_step, by_one) = (
        RateTable::new(&config(), t0, 0),
        RateTable::new(&config(), t0, 0),
    );
    let (mut a, mut b) = (one_step.track(SEGMENT, t0), by_one.track(SEGMENT, t0));
    steady(&one_step, &mut a, t0, 30);
    steady(&by_one, &mut b, t0, 30);
    for s in 31..=60 {
        by_one.measure(SEGMENT, None, t0 + seconds(s), 0);
    }
    let x = one_step.measure(SEGMENT, None, t0 + seconds(60), 0);
    let y = by_one.measure(SEGMENT, None, t0 + seconds(60), 0);
    for w in 0..RATE_WINDOWS {
        assert!(close(x.events_per_second[w], y.events_per_second[w], 1e-9));
    }
}

#[test]
fn attributes_need_a_rate_policy_and_a_rate_id() {
    let t0 = Instant::now();
    let table = RateTable::new(&config(), t0, 1_000_000);
    let mut handle = table.track(SEGMENT, t0);
    steady(&table, &mut handle, t0, 30);
    let now = t0 + seconds(30);
    let get = |id, policy| table.attribute(SEGMENT, id, policy, None, now, 1_030_000);
    assert_eq!(get(attributes::EVENT_RATE[0], Some(2)), 100_000);
    assert_eq!(get(attributes::BYTE_RATE[3], Some(1)), 1000);
    assert_eq!(get(attributes::RATE_OBSERVED_MS, Some(2)), 30_000);
    for policy in [None, Some(0)] {
        assert_eq!(get(attributes::EVENT_RATE[0], policy), NULL_ATTRIBUTE_VALUE);
    }
    assert_eq!(
        get(attributes::SCALE_POLICY_RATE, Some(2)),
        NULL_ATTRIBUTE_VALUE
    );
    // Never appended to: rate 0, observed since its creation.
    let other = "scope/stream/1.#epoch.0";
    let created = Some(1_010_000);
    let zero = table.attribute(
        other,
        attributes::EVENT_RATE[0],
        Some(2),
        created,
        now,
        1_030_000,
    );
    let observed = table.attribute(
        other,
        attributes::RATE_OBSERVED_MS,
        Some(2),
        created,
        now,
        1_030_000,
    );
    assert_eq!((zero, observed), (0, 20_000));
}

#[test]
fn memory_is_bounded_by_forgetting_and_a_cap() {
    let t0 = Instant::now();
    let table = RateTable::new(&config(), t0, 0);
    assert!(table
        .track("scope/stream/0.#epoch.0#transaction.00ff", t0)
        .is_none());
    let mut handles: Vec<_> = (0..4)
        .map(|i| table.track(&format!("scope/stream/{i}.#epoch.0"), t0))
        .collect();
    assert!(handles.iter().all(Option::is_some));
    assert!(
        table.track("scope/stream/9.#epoch.0", t0).is_none(),
        "over the cap"
    );
    assert_eq!(table.tracked(), 4);
    table.forget("scope/stream/1.#epoch.0");
    assert_eq!(table.tracked(), 3);
    // A forgotten segment's writer re-registers on its next append.
    table.record(&mut handles[1], "scope/stream/1.#epoch.0", t0, 1, 1);
    assert_eq!(table.tracked(), 4);
    // Idle for longer than the expiry: swept when their shards are next used.
    let later = t0 + seconds(601);
    table.record(&mut handles[0], "scope/stream/0.#epoch.0", later, 1, 1);
    for i in 0..4 {
        table.track(&format!("scope/stream/{i}.#epoch.0"), later + seconds(60));
    }
    assert!(table.tracked() <= 4);
    let fresh = table
        .track("scope/stream/1.#epoch.0", later + seconds(61))
        .unwrap();
    assert!(!lock(&fresh.0).forgotten);
    assert!(
        lock(&handles[2].as_ref().unwrap().0).forgotten,
        "idle since t0"
    );
}

//! Append rates as computed attributes: measured while a writer appends at a known pace,
//! decaying once it stops, absent (`i64::MIN`) without a rate-based scaling policy.
//!
//! Rates are approximate and the pace of a test machine is not exact, so every check is a
//! range, and waits are bounded loops.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Client, TestServer, TIMEOUT};
use pravaha_segment_server::RateConfig;
use pravaha_types::attributes::{self, BYTE_RATE, EVENT_RATE, EVENT_RATE_SCALE};
use pravaha_wire::{self as wire, Reply, Request};

/// Windows of 1, 2, 3 and 4 s over 100 ms intervals: a few seconds of appends warm them up.
fn fast_rates() -> RateConfig {
    RateConfig {
        tick: Duration::from_millis(100),
        windows: [1, 2, 3, 4].map(Duration::from_secs),
        ..RateConfig::default()
    }
}

async fn create(client: &mut Client, segment: &str, scale_type: u8, target_rate: i32) {
    let request_id = client.next_id();
    let reply = client
        .call(Request::CreateSegment(wire::CreateSegment {
            request_id,
            segment: segment.into(),
            target_rate,
            scale_type,
            delegation_token: String::new(),
            rollover_size_bytes: None,
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentCreated(_)), "{reply:?}");
}

async fn attribute(client: &mut Client, segment: &str, id: u128) -> Reply {
    let request_id = client.next_id();
    client
        .call(Request::GetSegmentAttribute(wire::GetSegmentAttribute {
            request_id,
            segment_name: segment.into(),
            attribute_id: id,
            delegation_token: String::new(),
        }))
        .await
}

async fn value(client: &mut Client, segment: &str, id: u128) -> i64 {
    match attribute(client, segment, id).await {
        Reply::SegmentAttribute(reply) => reply.value,
        other => panic!("GetSegmentAttribute answered with {other:?}"),
    }
}

/// Appends blocks of `events` events every `every` for `duration`, waiting for each ack;
/// returns the events and bytes written and the time it took.
async fn write_steadily(
    client: &mut Client,
    segment: &str,
    writer_id: u128,
    events: usize,
    every: Duration,
    duration: Duration,
) -> (u64, u64, Duration) {
    client.setup_append(segment, writer_id).await;
    let payloads: Vec<Bytes> = (0..events).map(|_| Bytes::from(vec![7u8; 100])).collect();
    let block_bytes = (events * (8 + 100)) as u64;
    let mut pace = tokio::time::interval(every);
    let started = Instant::now();
    let (mut event_number, mut sent_events, mut sent_bytes) = (0i64, 0u64, 0u64);
    while started.elapsed() < duration {
        pace.tick().await;
        event_number += events as i64;
        client.send_block(writer_id, event_number, &payloads).await;
        match client.recv().await {
            Reply::DataAppended(ack) => assert_eq!(ack.event_number, event_number),
            other => panic!("expected DataAppended, got {other:?}"),
        }
        sent_events += events as u64;
        sent_bytes += block_bytes;
    }
    (sent_events, sent_bytes, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_writer_is_measured_and_its_rates_decay_when_it_stops() {
    let server = TestServer::start_with(|c| c.rates = fast_rates()).await;
    let mut client = server.client().await;
    let by_events = "scope/rates/0.#epoch.0";
    let fixed = "scope/rates/1.#epoch.0";
    create(&mut client, by_events, 2, 10).await;
    create(&mut client, fixed, 0, 0).await;

    // 5 events of 108 framed bytes every 20 ms: about 250 events/s and 27,000 B/s.
    let (events, bytes, took) = write_steadily(
        &mut client,
        by_events,
        1,
        5,
        Duration::from_millis(20),
        Duration::from_secs(3),
    )
    .await;
    let event_rate = events as f64 / took.as_secs_f64();
    let byte_rate = bytes as f64 / took.as_secs_f64();
    for window in 0..attributes::RATE_WINDOWS {
        let measured = value(&mut client, by_events, EVENT_RATE[window]).await as f64
            / EVENT_RATE_SCALE as f64;
        assert!(
            (0.4 * event_rate..=2.5 * event_rate).contains(&measured),
            "window {window}: {measured} events/s measured, {event_rate} written"
        );
        let measured = value(&mut client, by_events, BYTE_RATE[window]).await as f64;
        assert!(
            (0.4 * byte_rate..=2.5 * byte_rate).contains(&measured),
            "window {window}: {measured} B/s measured, {byte_rate} written"
        );
    }
    let observed = value(&mut client, by_events, attributes::RATE_OBSERVED_MS).await;
    assert!(
        (2_000..=TIMEOUT.as_millis() as i64).contains(&observed),
        "{observed}"
    );

    // Stopped: the 1 s average falls below a tenth of the rate within a few seconds.
    let peak = value(&mut client, by_events, EVENT_RATE[0]).await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = value(&mut client, by_events, EVENT_RATE[0]).await;
        if now < peak / 10 {
            break;
        }
        assert!(Instant::now() < deadline, "rate still {now} (peak {peak})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_attributes_need_a_rate_policy_and_are_read_only() {
    let server = TestServer::start_with(|c| c.rates = fast_rates()).await;
    let mut client = server.client().await;
    let fixed = "scope/rates/0.#epoch.0";
    let by_bytes = "scope/rates/1.#epoch.0";
    create(&mut client, fixed, 0, 0).await;
    create(&mut client, by_bytes, 1, 100).await;
    write_steadily(
        &mut client,
        fixed,
        1,
        5,
        Duration::from_millis(20),
        Duration::from_millis(500),
    )
    .await;
    for id in EVENT_RATE.iter().chain(&BYTE_RATE) {
        assert_eq!(value(&mut client, fixed, *id).await, i64::MIN);
    }
    assert_eq!(
        value(&mut client, fixed, attributes::RATE_OBSERVED_MS).await,
        i64::MIN
    );

    // A rate policy without appends: rate 0, measured since the segment was created.
    assert_eq!(value(&mut client, by_bytes, BYTE_RATE[0]).await, 0);
    assert!(value(&mut client, by_bytes, attributes::RATE_OBSERVED_MS).await >= 0);
    // Unknown attributes still read as unset.
    let unknown = attributes::CORE_ATTRIBUTE_SPACE | 0x1ff;
    assert_eq!(value(&mut client, by_bytes, unknown).await, i64::MIN);

    // Read-only: an update is refused like a failed compare-and-set.
    let request_id = client.next_id();
    let reply = client
        .call(Request::UpdateSegmentAttribute(
            wire::UpdateSegmentAttribute {
                request_id,
                segment_name: by_bytes.into(),
                attribute_id: BYTE_RATE[0],
                new_value: 5,
                expected_value: i64::MIN,
                delegation_token: String::new(),
            },
        ))
        .await;
    assert_eq!(
        reply,
        Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
            request_id,
            success: false
        })
    );

    // The policy can be switched off.
    let request_id = client.next_id();
    let reply = client
        .call(Request::UpdateSegmentPolicy(wire::UpdateSegmentPolicy {
            request_id,
            segment: by_bytes.into(),
            target_rate: 0,
            scale_type: 0,
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentPolicyUpdated(_)), "{reply:?}");
    assert_eq!(value(&mut client, by_bytes, BYTE_RATE[0]).await, i64::MIN);

    // A deleted segment has no attributes.
    let request_id = client.next_id();
    let reply = client
        .call(Request::DeleteSegment(wire::DeleteSegment {
            request_id,
            segment: by_bytes.into(),
            delegation_token: String::new(),
        }))
        .await;
    assert!(matches!(reply, Reply::SegmentDeleted(_)), "{reply:?}");
    let reply = attribute(&mut client, by_bytes, BYTE_RATE[0]).await;
    assert!(matches!(reply, Reply::NoSuchSegment(_)), "{reply:?}");
    server.stop().await;
}

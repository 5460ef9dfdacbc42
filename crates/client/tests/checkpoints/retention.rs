//! Retention subscriptions: a group with retention MANUAL or AUTOMATIC is a subscriber of its
//! streams at the controller; its cuts (the application's, or each completed checkpoint's)
//! are recorded there, and the controller's consumption-based retention truncates no stream
//! past them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pravaha_client::controller::types::StreamCut;
use pravaha_client::controller::RetentionMode;
use pravaha_client::group::{GroupError, ReadItem, ReaderGroup, ReaderGroupConfig};

use super::{quick_settings, tail_cut, write, DEADLINE};
use crate::events_common::{bounded, key, stream_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn automatic_checkpoints_report_their_cuts_and_retention_truncates_no_further() {
    let (standalone, factory, stream) = stream_with(2, "retained").await;
    let controller = factory.controller();
    let keys: Vec<String> = (0..4).map(key).collect();
    write(&factory, &stream, &keys, 0..50).await;
    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .refresh_time(Duration::from_millis(100))
        .automatic_checkpoint_interval(Some(Duration::from_millis(300)))
        .retention(RetentionMode::Automatic);
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "audit",
        config,
    ))
    .await
    .unwrap();
    let record = bounded(controller.get_reader_group(&stream.scope, "audit"))
        .await
        .unwrap();
    assert_eq!(record.retention, RetentionMode::Automatic);
    assert_eq!(
        bounded(controller.list_subscribers(&stream)).await.unwrap(),
        vec!["events/audit".to_string()]
    );
    let tail = tail_cut(controller, &stream, "probe").await;

    // One reader reads everything, then keeps going until an automatic checkpoint taken
    // after the last event was announced: its cut is the tail.
    let mut reader = bounded(group.create_reader_with("only", quick_settings()))
        .await
        .unwrap();
    let (mut events, mut checkpoints_after_all) = (0, Vec::new());
    let deadline = Instant::now() + DEADLINE;
    while checkpoints_after_all.is_empty() {
        assert!(
            Instant::now() < deadline,
            "an automatic checkpoint completes"
        );
        let Ok(item) = tokio::time::timeout(Duration::from_millis(200), reader.read_next()).await
        else {
            continue;
        };
        match item.unwrap().unwrap() {
            ReadItem::Event(_) => events += 1,
            ReadItem::Checkpoint(name) if events == keys.len() * 50 => {
                checkpoints_after_all.push(name)
            }
            ReadItem::Checkpoint(_) => {}
        }
    }
    let name = &checkpoints_after_all[0];
    assert!(name.starts_with("pravaha-auto-"), "{name}");
    let checkpoint = bounded(group.checkpoint(name))
        .await
        .unwrap()
        .expect("completed: the only reader took part");
    assert_eq!(checkpoint.stream_cut(&stream), Some(&tail));
    bounded(reader.close()).await.unwrap();

    // The controller recorded the tail as the subscriber's cut (reported by the reader that
    // completed the checkpoint).
    let tail_map: BTreeMap<i64, i64> = tail.positions.iter().map(|(id, at)| (id.0, *at)).collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let cuts = standalone
            .controller
            .subscriber_cuts(&stream.scope, &stream.stream)
            .await
            .unwrap();
        if cuts == vec![("events/audit".to_string(), tail_map.clone())] {
            break;
        }
        assert!(Instant::now() < deadline, "the cut is reported: {cuts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Consumption-based retention: a pass records the tail and truncates up to the slowest
    // subscriber's cut (here the tail itself)...
    standalone.controller.run_retention().await.unwrap();
    let head = bounded(controller.get_segments_at_head(&stream))
        .await
        .unwrap();
    assert_eq!(
        head.positions, tail.positions,
        "truncated at the subscriber's cut"
    );
    // ... and never past it: later data stays while the subscriber has not read it.
    write(&factory, &stream, &keys, 50..60).await;
    standalone.controller.run_retention().await.unwrap();
    let head = bounded(controller.get_segments_at_head(&stream))
        .await
        .unwrap();
    assert_eq!(
        head.positions, tail.positions,
        "not truncated past the subscriber"
    );

    bounded(group.delete()).await.unwrap();
    assert!(bounded(controller.list_subscribers(&stream))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_retention_reports_the_applications_cut() {
    let (standalone, factory, stream) = stream_with(2, "manual").await;
    let controller = factory.controller();
    let keys: Vec<String> = (0..4).map(key).collect();
    write(&factory, &stream, &keys, 0..20).await;
    let head = bounded(controller.get_segments_at_head(&stream))
        .await
        .unwrap();
    let config = ReaderGroupConfig::new()
        .stream(stream.clone())
        .refresh_time(Duration::from_millis(100))
        .retention(RetentionMode::Manual);
    let group = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "ledger",
        config,
    ))
    .await
    .unwrap();
    let mut reader = bounded(group.create_reader_with("only", quick_settings()))
        .await
        .unwrap();
    for _ in 0..40 {
        bounded(reader.next_event()).await.unwrap().unwrap();
    }
    let waiting = {
        let group = group.clone();
        tokio::spawn(async move { group.initiate_checkpoint("processed", DEADLINE).await })
    };
    // Reads on (taking part) until the checkpoint completes.
    while !waiting.is_finished() {
        let _ = tokio::time::timeout(Duration::from_millis(100), reader.read_next()).await;
    }
    let checkpoint = waiting.await.unwrap().unwrap();
    // Nothing reported before the application does.
    let empty = standalone
        .controller
        .subscriber_cuts(&stream.scope, &stream.stream)
        .await
        .unwrap();
    assert_eq!(empty, vec![("events/ledger".to_string(), BTreeMap::new())]);
    let cuts: Vec<StreamCut> = checkpoint.stream_cuts().cloned().collect();
    bounded(group.update_retention_stream_cut(&cuts))
        .await
        .unwrap();
    let expected: BTreeMap<i64, i64> = cuts[0]
        .positions
        .iter()
        .map(|(id, at)| (id.0, *at))
        .collect();
    assert_ne!(
        expected,
        head.positions.iter().map(|(id, at)| (id.0, *at)).collect()
    );
    assert_eq!(
        standalone
            .controller
            .subscriber_cuts(&stream.scope, &stream.stream)
            .await
            .unwrap(),
        vec![("events/ledger".to_string(), expected)]
    );
    // A cut behind the reported one is refused.
    assert!(matches!(
        bounded(group.update_retention_stream_cut(&[head])).await,
        Err(GroupError::Controller(_))
    ));
    bounded(reader.close()).await.unwrap();

    // A group without retention has nothing to report.
    let plain = ReaderGroupConfig::new().stream(stream.clone());
    let other = bounded(ReaderGroup::create(
        controller,
        &stream.scope,
        "plain",
        plain,
    ))
    .await
    .unwrap();
    assert!(matches!(
        bounded(other.update_retention_stream_cut(&cuts)).await,
        Err(GroupError::NotSubscribed(name)) if name == "events/plain"
    ));
}

//! Transactions against an in-process standalone: a commit makes every event visible at once
//! (after what the stream held), an abort never does, status moves Open → Committed/Aborted,
//! pings renew the lease.

mod common;
mod events_common;

use std::time::Duration;

use pravaha_client::controller::{PingStatus, TransactionState, TxnId};
use pravaha_client::event::EventWriterError;

use events_common::{
    assert_per_key_order, bounded, key, keyed_payload, parse_payload, read_stream, stream_with,
};

fn event_count(
    segments: &[(
        pravaha_client::controller::types::ScopedSegment,
        Vec<bytes::Bytes>,
    )],
) -> usize {
    segments.iter().map(|(_, events)| events.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_makes_every_event_visible_after_what_the_stream_held() {
    let (standalone, factory, stream) = stream_with(3, "commit").await;
    let writer = bounded(factory.create_event_writer(stream.clone()))
        .await
        .unwrap();
    let (keys, per_key) = (6, 50);
    // The first half of every key goes straight to the stream...
    for sequence in 0..per_key / 2 {
        for k in 0..keys {
            let key = key(k);
            drop(
                bounded(writer.write_event(Some(&key), keyed_payload(&key, sequence)))
                    .await
                    .unwrap(),
            );
        }
    }
    bounded(writer.flush()).await.unwrap();

    // ...the second half through a transaction.
    let transactions = factory.create_transactional_writer(stream.clone());
    let mut transaction = bounded(transactions.begin()).await.unwrap();
    assert_eq!(transaction.id().epoch(), 0);
    let mut acks = Vec::new();
    for sequence in per_key / 2..per_key {
        for k in 0..keys {
            let key = key(k);
            acks.push(
                bounded(transaction.write_event(Some(&key), keyed_payload(&key, sequence)))
                    .await
                    .unwrap(),
            );
        }
    }
    bounded(transaction.flush()).await.unwrap();
    for ack in acks {
        bounded(ack).await.unwrap();
    }
    assert_eq!(
        bounded(transaction.status()).await.unwrap(),
        TransactionState::Open
    );
    let before = read_stream(&standalone, &factory, &stream).await;
    assert_eq!(
        event_count(&before),
        keys * per_key / 2,
        "nothing visible before the commit"
    );

    bounded(transaction.commit(Some(1_000))).await.unwrap();
    assert_eq!(
        bounded(transaction.status()).await.unwrap(),
        TransactionState::Committed
    );
    assert_eq!(
        bounded(transaction.ping(Duration::from_secs(10)))
            .await
            .unwrap(),
        PingStatus::Committed
    );
    assert!(matches!(
        transaction.write_event(None, "late").await,
        Err(EventWriterError::TransactionNotOpen { .. })
    ));
    bounded(writer.close()).await.unwrap();

    let after = read_stream(&standalone, &factory, &stream).await;
    assert_per_key_order(&after, keys, per_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_aborted_transaction_is_never_visible() {
    let (standalone, factory, stream) = stream_with(2, "abort").await;
    let transactions = factory.create_transactional_writer(stream.clone());
    let mut aborted = bounded(transactions.begin()).await.unwrap();
    for index in 0..40 {
        let key = key(index % 4);
        drop(
            bounded(aborted.write_event(Some(&key), keyed_payload("aborted", index)))
                .await
                .unwrap(),
        );
    }
    bounded(aborted.flush()).await.unwrap();
    bounded(aborted.abort()).await.unwrap();
    let state = bounded(aborted.status()).await.unwrap();
    assert!(
        matches!(
            state,
            TransactionState::Aborting | TransactionState::Aborted
        ),
        "{state:?}"
    );
    assert!(matches!(
        aborted.commit(None).await,
        Err(EventWriterError::TransactionNotOpen { .. })
    ));
    // Committing it through another handle is refused.
    let reopened = bounded(transactions.transaction(aborted.id()))
        .await
        .unwrap();
    let mut reopened = reopened;
    assert!(bounded(reopened.commit(None)).await.is_err());

    let mut committed = bounded(transactions.begin()).await.unwrap();
    drop(
        bounded(committed.write_event(Some("k"), keyed_payload("committed", 0)))
            .await
            .unwrap(),
    );
    bounded(committed.commit(None)).await.unwrap();

    let segments = read_stream(&standalone, &factory, &stream).await;
    let events: Vec<(String, usize)> = segments
        .iter()
        .flat_map(|(_, events)| events.iter().map(|event| parse_payload(event)))
        .collect();
    assert_eq!(events, vec![("committed".to_owned(), 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pings_renew_the_lease_and_unknown_transactions_say_so() {
    let (_standalone, factory, stream) = stream_with(1, "ping").await;
    let transactions = factory
        .create_transactional_writer(stream.clone())
        .with_lease(Duration::from_secs(30));
    let transaction = bounded(transactions.begin()).await.unwrap();
    assert_eq!(
        bounded(transaction.ping(Duration::from_secs(60)))
            .await
            .unwrap(),
        PingStatus::Ok
    );
    assert_eq!(
        bounded(transaction.ping(Duration::from_secs(24 * 3600)))
            .await
            .unwrap(),
        PingStatus::LeaseTooLarge
    );
    assert_eq!(
        bounded(transaction.status()).await.unwrap(),
        TransactionState::Open
    );
    let unknown = bounded(transactions.transaction(TxnId(12345)))
        .await
        .unwrap();
    assert_eq!(
        bounded(unknown.status()).await.unwrap(),
        TransactionState::Unknown
    );
    assert_eq!(
        bounded(unknown.ping(Duration::from_secs(10)))
            .await
            .unwrap(),
        PingStatus::Unknown
    );
    assert_eq!(
        bounded(
            factory
                .controller()
                .check_transaction_state(&stream, transaction.id())
        )
        .await
        .unwrap(),
        TransactionState::Open
    );
}

//! The segment layer against a scripted fake segment store, where the test decides every reply:
//! back pressure, resend after a fault, a seal met by resent events, hosts and tokens looked up
//! again, incompatible versions.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::segments::*;
use pravaha_client::segment::{
    frame_event, AppendError, AppendFuture, BoxFuture, ByteBudget, Connection, ConnectionConfig,
    ConnectionError, Endpoint, EventParser, Locator, LocatorError, SegmentWriter, SessionEnd,
    WriterConfig, WriterError,
};
use pravaha_wire::{self as wire, Reply, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

// ---- A scripted fake segment store ----

enum Control {
    Reply(Reply),
    /// Closes the current connection.
    Disconnect,
}

/// A segment store whose every reply (but `Hello`) the test sends. Connections are served one
/// at a time.
struct Fake {
    address: SocketAddr,
    /// Every request but `Hello`, in order.
    seen: mpsc::UnboundedReceiver<Request>,
    control: mpsc::UnboundedSender<Control>,
}

impl Fake {
    async fn start(hello: (i32, i32)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (control, mut control_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut input = BytesMut::new();
                loop {
                    tokio::select! {
                        read = stream.read_buf(&mut input) => {
                            if !matches!(read, Ok(n) if n > 0) { break; }
                            while let Some((code, payload)) = wire::split_frame(&mut input, wire::MAX_FRAME_PAYLOAD).unwrap() {
                                match Request::decode(code, payload).unwrap() {
                                    Request::Hello(_) => {
                                        let mut out = BytesMut::new();
                                        Reply::Hello(wire::Hello { high_version: hello.0, low_version: hello.1 }).encode(&mut out).unwrap();
                                        stream.write_all(&out).await.unwrap();
                                    }
                                    request => { let _ = seen_tx.send(request); }
                                }
                            }
                        }
                        control = control_rx.recv() => match control {
                            Some(Control::Reply(reply)) => {
                                let mut out = BytesMut::new();
                                reply.encode(&mut out).unwrap();
                                if stream.write_all(&out).await.is_err() { break; }
                            }
                            Some(Control::Disconnect) => break,
                            None => return,
                        },
                    }
                }
            }
        });
        Self {
            address,
            seen,
            control,
        }
    }

    async fn next_request(&mut self) -> Request {
        bounded(self.seen.recv()).await.expect("fake store running")
    }

    async fn expect_setup(&mut self) -> wire::SetupAppend {
        match self.next_request().await {
            Request::SetupAppend(setup) => setup,
            other => panic!("expected SetupAppend, got {other:?}"),
        }
    }

    /// Blocks until one whose last event number is `last`; returns them.
    async fn blocks_through(&mut self, last: i64) -> Vec<wire::AppendBlockEnd> {
        let mut blocks = Vec::new();
        loop {
            match self.next_request().await {
                Request::AppendBlockEnd(block) => {
                    let done = block.last_event_number == last;
                    blocks.push(block);
                    if done {
                        return blocks;
                    }
                }
                other => panic!("expected AppendBlockEnd, got {other:?}"),
            }
        }
    }

    fn reply(&self, reply: Reply) {
        self.control.send(Control::Reply(reply)).unwrap();
    }

    fn setup_done(&self, setup: &wire::SetupAppend, last_event_number: i64) {
        self.reply(Reply::AppendSetup(wire::AppendSetup {
            request_id: setup.request_id,
            segment: setup.segment.clone(),
            writer_id: setup.writer_id,
            last_event_number,
        }));
    }

    fn ack(&self, writer_id: u128, event_number: i64) {
        self.reply(Reply::DataAppended(wire::DataAppended {
            writer_id,
            event_number,
            previous_event_number: -1,
            request_id: -1,
            current_segment_write_offset: -1,
        }));
    }
}

fn block_payloads(blocks: &[wire::AppendBlockEnd]) -> Vec<Bytes> {
    let mut parser = EventParser::new(0);
    let mut payloads = Vec::new();
    for block in blocks {
        parser
            .push(parser.next_offset(), block.data.clone())
            .unwrap();
        while let Some(event) = parser.next_event().unwrap() {
            payloads.push(event.payload);
        }
    }
    payloads
}

#[tokio::test]
async fn a_full_budget_holds_writers_back_until_acks_return_it() {
    let mut fake = Fake::start((15, 5)).await;
    let event_size = frame_event(&payload(0)).len();
    let config = WriterConfig {
        budget: ByteBudget::new(3 * event_size),
        ..WriterConfig::default()
    };
    let budget = config.budget.clone();
    let connecting = tokio::spawn(SegmentWriter::connect(locator(fake.address), "s", config));
    let setup = fake.expect_setup().await;
    fake.setup_done(&setup, wire::NULL_ATTRIBUTE_VALUE);
    let writer = Arc::new(bounded(connecting).await.unwrap().unwrap());
    let mut futures = Vec::new();
    for _ in 0..3 {
        futures.push(writer.write(payload(0)).await.unwrap());
    }
    fake.blocks_through(3).await;
    // All three are unacknowledged: the budget is spent and a fourth write must wait.
    assert_eq!(budget.available(), 0);
    assert!(budget.try_acquire(1).is_none());
    let fourth = tokio::spawn({
        let writer = writer.clone();
        async move { writer.write(payload(0)).await }
    });
    tokio::task::yield_now().await;
    assert!(!fourth.is_finished(), "the fourth write waits for budget");
    fake.ack(setup.writer_id, 3);
    await_all(futures).await;
    let fourth = bounded(fourth).await.unwrap().unwrap();
    fake.blocks_through(4).await;
    fake.ack(setup.writer_id, 4);
    await_all(vec![fourth]).await;
    assert_eq!(budget.available(), budget.capacity());
}

#[tokio::test]
async fn after_a_fault_only_events_the_store_lacks_are_resent_with_the_same_writer_id() {
    let mut fake = Fake::start((17, 5)).await;
    let config = WriterConfig {
        retry: quick_retries(),
        ..WriterConfig::default()
    };
    let connecting = tokio::spawn(SegmentWriter::connect(locator(fake.address), "s", config));
    let setup = fake.expect_setup().await;
    fake.setup_done(&setup, wire::NULL_ATTRIBUTE_VALUE);
    let writer = bounded(connecting).await.unwrap().unwrap();
    let mut futures: VecDeque<AppendFuture> = VecDeque::new();
    for index in 1..=10 {
        futures.push_back(writer.write(payload(index)).await.unwrap());
    }
    let first_round = fake.blocks_through(10).await;
    assert_eq!(
        block_payloads(&first_round),
        (1..=10).map(payload).collect::<Vec<_>>()
    );
    fake.ack(setup.writer_id, 4);
    await_all(futures.drain(..4).collect()).await;

    // The connection breaks; the store says it holds events up to 7 (durable, never acked).
    fake.control.send(Control::Disconnect).unwrap();
    let again = fake.expect_setup().await;
    assert_eq!(again.writer_id, setup.writer_id, "same writer id");
    fake.setup_done(&again, 7);
    await_all(futures.drain(..3).collect()).await;
    let resent = fake.blocks_through(10).await;
    assert_eq!(
        block_payloads(&resent),
        (8..=10).map(payload).collect::<Vec<_>>()
    );
    fake.ack(setup.writer_id, 10);
    await_all(futures.into_iter().collect()).await;
    assert_eq!(writer.connections(), 2);
    assert!(matches!(bounded(writer.close()).await, SessionEnd::Closed));
}

#[tokio::test]
async fn a_seal_met_by_resent_events_hands_back_only_what_the_segment_lacks() {
    let mut fake = Fake::start((15, 5)).await;
    let config = WriterConfig {
        retry: quick_retries(),
        ..WriterConfig::default()
    };
    let connecting = tokio::spawn(SegmentWriter::connect(locator(fake.address), "s", config));
    let setup = fake.expect_setup().await;
    fake.setup_done(&setup, wire::NULL_ATTRIBUTE_VALUE);
    let writer = bounded(connecting).await.unwrap().unwrap();
    let mut futures = VecDeque::new();
    for index in 1..=6 {
        futures.push_back(writer.write(payload(index)).await.unwrap());
    }
    fake.blocks_through(6).await;
    // Lost connection; the store's durable state lags (2) behind what it will hold (4).
    fake.control.send(Control::Disconnect).unwrap();
    let again = fake.expect_setup().await;
    fake.setup_done(&again, 2);
    await_all(futures.drain(..2).collect()).await;
    let Request::AppendBlockEnd(resent) = fake.next_request().await else {
        panic!("expected a resent block");
    };
    fake.reply(Reply::SegmentIsSealed(wire::SegmentIsSealed {
        request_id: resent.request_id,
        segment: "s".into(),
        server_stack_trace: String::new(),
        offset: resent.last_event_number,
    }));
    // The writer asks, on a new connection, what the sealed segment holds.
    let request = fake.next_request().await;
    let Request::GetStreamSegmentInfo(info) = request else {
        panic!("expected GetStreamSegmentInfo, got {request:?}");
    };
    fake.reply(Reply::StreamSegmentInfo(wire::StreamSegmentInfo {
        request_id: info.request_id,
        segment_name: "s".into(),
        exists: true,
        is_sealed: true,
        is_deleted: false,
        last_modified: 0,
        write_offset: 1000,
        start_offset: 0,
    }));
    let last = fake.expect_setup().await;
    assert_eq!(last.writer_id, setup.writer_id);
    fake.setup_done(&last, 4);
    let SessionEnd::Sealed { unacked } = bounded(writer.close()).await else {
        panic!("the session must end sealed");
    };
    await_all(futures.drain(..2).collect()).await;
    let returned: Vec<Bytes> = unacked.iter().map(|e| e.data().slice(8..)).collect();
    assert_eq!(returned, [payload(5), payload(6)]);
}

/// Counts refreshes; hands out "old" until the token is refreshed, then "new".
struct Refreshing {
    endpoint: Endpoint,
    endpoint_refreshes: AtomicUsize,
    token_refreshes: AtomicUsize,
}

impl Locator for Refreshing {
    fn endpoint<'a>(
        &'a self,
        _: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<Endpoint, LocatorError>> {
        if refresh {
            self.endpoint_refreshes.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(std::future::ready(Ok(self.endpoint.clone())))
    }

    fn token<'a>(
        &'a self,
        _: &'a str,
        refresh: bool,
    ) -> BoxFuture<'a, Result<String, LocatorError>> {
        if refresh {
            self.token_refreshes.fetch_add(1, Ordering::SeqCst);
        }
        let token = if self.token_refreshes.load(Ordering::SeqCst) > 0 {
            "new"
        } else {
            "old"
        };
        Box::pin(std::future::ready(Ok(token.to_owned())))
    }
}

#[tokio::test]
async fn wrong_hosts_and_expired_tokens_are_looked_up_again_and_refused_tokens_fail() {
    let mut fake = Fake::start((15, 5)).await;
    let refreshing = Arc::new(Refreshing {
        endpoint: fake.address.into(),
        endpoint_refreshes: AtomicUsize::new(0),
        token_refreshes: AtomicUsize::new(0),
    });
    let config = WriterConfig {
        retry: quick_retries(),
        ..WriterConfig::default()
    };
    let connecting = tokio::spawn(SegmentWriter::connect(
        refreshing.clone(),
        "s",
        config.clone(),
    ));
    let setup = fake.expect_setup().await;
    assert_eq!(setup.delegation_token, "old");
    fake.reply(Reply::WrongHost(wire::WrongHost {
        request_id: setup.request_id,
        segment: "s".into(),
        correct_host: String::new(),
        server_stack_trace: String::new(),
    }));
    let setup = fake.expect_setup().await;
    assert_eq!(refreshing.endpoint_refreshes.load(Ordering::SeqCst), 1);
    fake.reply(Reply::AuthTokenCheckFailed(wire::AuthTokenCheckFailed {
        request_id: setup.request_id,
        server_stack_trace: "expired".into(),
        error_code: 1,
    }));
    let setup = fake.expect_setup().await;
    assert_eq!(setup.delegation_token, "new");
    fake.setup_done(&setup, wire::NULL_ATTRIBUTE_VALUE);
    let writer = bounded(connecting).await.unwrap().unwrap();
    assert_eq!(writer.connections(), 1);

    // A refused token ends the session and fails its events.
    let pending = writer.write(payload(1)).await.unwrap();
    fake.blocks_through(1).await;
    fake.reply(Reply::AuthTokenCheckFailed(wire::AuthTokenCheckFailed {
        request_id: 1,
        server_stack_trace: "not permitted".into(),
        error_code: 0,
    }));
    assert!(matches!(
        bounded(pending).await,
        Err(AppendError::Session(WriterError::TokenRefused { .. }))
    ));
    assert!(matches!(
        bounded(writer.close()).await,
        SessionEnd::Failed {
            error: WriterError::TokenRefused { .. }
        }
    ));
}

#[tokio::test]
async fn an_incompatible_server_version_is_refused_at_connect() {
    let fake = Fake::start((30, 20)).await;
    let error = Connection::connect(&fake.address.into(), &ConnectionConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectionError::IncompatibleVersion {
                low: 20,
                high: 30,
                ..
            }
        ),
        "{error}"
    );
    let connecting = SegmentWriter::connect(locator(fake.address), "s", WriterConfig::default());
    assert!(matches!(
        bounded(connecting).await,
        Err(WriterError::Connection(
            ConnectionError::IncompatibleVersion { .. }
        ))
    ));
}

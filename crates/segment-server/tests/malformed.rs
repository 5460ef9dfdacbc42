//! Bad input closes the offending connection and harms no one else.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{parse_events, Client, TestServer};
use pravaha_wire::{self as wire, Reply, Request};

fn frame(type_code: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_i32(type_code);
    out.put_i32(i32::try_from(payload.len()).unwrap());
    out.put_slice(payload);
    out.to_vec()
}

fn encoded(request: &Request) -> Vec<u8> {
    let mut out = BytesMut::new();
    request.encode(&mut out).unwrap();
    out.to_vec()
}

/// The malformed frame number `n`, of one of several kinds.
fn malformed(n: usize) -> Vec<u8> {
    let setup = encoded(&Request::SetupAppend(wire::SetupAppend {
        request_id: 1,
        writer_id: 2,
        segment: "scope/stream/0.#epoch.0".into(),
        delegation_token: String::new(),
    }));
    match n % 10 {
        // An unknown type code.
        0 => frame(1000 + n as i32, b"whatever"),
        // An event (type 0) is never a frame of its own.
        1 => frame(0, &[0, 0, 0, 0]),
        // A payload cut short: its declared fields run past the end.
        2 => {
            let payload = &setup[8..setup.len() - 5];
            frame(1, payload)
        }
        // A frame announcing more than the limit (the server must not allocate for it).
        3 => {
            let mut out = vec![];
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&0x7FFF_FFF0i32.to_be_bytes());
            out
        }
        // A negative length.
        4 => {
            let mut out = vec![];
            out.extend_from_slice(&9i32.to_be_bytes());
            out.extend_from_slice(&(-5i32).to_be_bytes());
            out
        }
        // A string length beyond the payload.
        5 => {
            let mut payload = BytesMut::new();
            payload.put_i64(7);
            payload.put_u16(60_000);
            payload.put_slice(b"short");
            frame(28, &payload)
        }
        // A bool that is neither 0 nor 1 (DeleteTableSegment.must_be_empty).
        6 => {
            let mut payload = BytesMut::new();
            payload.put_i64(7);
            payload.put_u16(3);
            payload.put_slice(b"a/b");
            payload.put_u8(7);
            payload.put_u16(0);
            frame(71, &payload)
        }
        // An append from a writer that never set up.
        7 => encoded(&Request::AppendBlockEnd(wire::AppendBlockEnd {
            writer_id: 0xDEAD,
            size_of_whole_events: 0,
            data: Bytes::new(),
            num_events: 1,
            last_event_number: 1,
            request_id: 3,
        })),
        // A list count far beyond the payload (ReadTable with 2^31-1 keys).
        8 => {
            let mut payload = BytesMut::new();
            payload.put_i64(7);
            payload.put_u16(3);
            payload.put_slice(b"a/b");
            payload.put_u16(0);
            payload.put_i32(i32::MAX);
            frame(78, &payload)
        }
        // Garbage.
        _ => (0..64).map(|i| (i * 37 + n) as u8).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_their_connection_while_others_keep_working() {
    let server = TestServer::start().await;
    let segment = "scope/steady/0.#epoch.0";
    let mut good = server.client().await;
    good.create_segment(segment).await;
    let writer = 0xC0FFEEu128;
    good.setup_append(segment, writer).await;

    let addr = server.addr();
    let attacker = tokio::spawn(async move {
        // One connection sends a stream of 1,000 malformed frames; the server closes it at the
        // first, so later writes may fail: that is expected.
        let mut stream = Client::connect(addr).await;
        for n in 0..1000 {
            if stream.send_raw(&malformed(n)).await.is_err() {
                break;
            }
        }
        assert!(stream.closed_by_server().await);
        // And each kind on a connection of its own, every one closed.
        for n in 0..100 {
            let mut one = Client::connect(addr).await;
            let _ = one.send_raw(&malformed(n)).await;
            assert!(
                one.closed_by_server().await,
                "malformed frame kind {} was not refused",
                n % 10
            );
        }
    });

    // Meanwhile the good connection appends and reads, and everything it reads is right.
    let mut expected = Vec::new();
    for n in 1..=200i64 {
        let event = Bytes::from(format!("steady event {n}"));
        expected.push(event.clone());
        good.send_block(writer, n, &[event]).await;
        match good.recv().await {
            Reply::DataAppended(ack) => assert_eq!(ack.event_number, n),
            other => panic!("{other:?}"),
        }
        if n % 20 == 0 {
            assert_eq!(parse_events(&good.read_all(segment).await), expected);
        }
    }
    attacker.await.unwrap();
    // The server still accepts new connections and serves them.
    let mut after = server.client().await;
    assert_eq!(parse_events(&after.read_all(segment).await), expected);
    server.stop().await;
}

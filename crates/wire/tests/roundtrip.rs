//! Round trips for every command of both enums: `decode(encode(x)) == x`, the frame header
//! carries the type code and the exact payload length, and a frame is split off a stream of
//! frames intact.

mod common;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use common::{any_reply, any_request, reply_cases, request_cases};
use pravaha_wire::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Request variants (32 commands + KeepAlive) and reply variants (37 + KeepAlive).
const REQUEST_VARIANTS: usize = 33;
const REPLY_VARIANTS: usize = 38;

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Checks the header and returns the payload.
fn split_one(frame: &BytesMut, type_code: i32) -> Result<Bytes, TestCaseError> {
    let announced = i32::from_be_bytes(frame[4..8].try_into().unwrap());
    prop_assert_eq!(
        i32::from_be_bytes(frame[..4].try_into().unwrap()),
        type_code
    );
    prop_assert_eq!(
        usize::try_from(announced).unwrap(),
        frame.len() - HEADER_LEN
    );
    let mut buf = frame.clone();
    let (split_type, payload) = split_frame(&mut buf, MAX_FRAME_PAYLOAD)?.expect("whole frame");
    prop_assert!(buf.is_empty());
    prop_assert_eq!(split_type, type_code);
    Ok(payload)
}

fn distinct_names(names: impl IntoIterator<Item = &'static str>) -> usize {
    names.into_iter().collect::<BTreeSet<_>>().len()
}

#[test]
fn every_request_round_trips() {
    let cases = request_cases();
    assert_eq!(
        distinct_names(cases.iter().map(|(name, _)| *name)),
        REQUEST_VARIANTS
    );
    for (name, strategy) in cases {
        runner(64)
            .run(&strategy, |request| {
                prop_assert_eq!(request.name(), name);
                let frame = common::request_frame(&request);
                let payload = split_one(&frame, request.type_code())?;
                prop_assert_eq!(Request::decode(request.type_code(), payload)?, request);
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{name}: {failure}"));
    }
}

#[test]
fn every_reply_round_trips() {
    let cases = reply_cases();
    assert_eq!(
        distinct_names(cases.iter().map(|(name, _)| *name)),
        REPLY_VARIANTS
    );
    for (name, strategy) in cases {
        runner(64)
            .run(&strategy, |reply| {
                prop_assert_eq!(reply.name(), name);
                let frame = common::reply_frame(&reply);
                let payload = split_one(&frame, reply.type_code())?;
                prop_assert_eq!(Reply::decode(reply.type_code(), payload)?, reply);
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{name}: {failure}"));
    }
}

/// Only Hello and KeepAlive travel both ways; every other code belongs to one direction.
#[test]
fn directions_do_not_share_type_codes() {
    let strategy = (any_request(), any_reply());
    runner(512)
        .run(&strategy, |(request, reply)| {
            let shared = |code: i32| code == -127 || code == 100;
            if !shared(request.type_code()) {
                prop_assert_eq!(
                    Reply::decode(request.type_code(), Bytes::new()),
                    Err(WireError::UnknownType(request.type_code()))
                );
            }
            if !shared(reply.type_code()) {
                prop_assert_eq!(
                    Request::decode(reply.type_code(), Bytes::new()),
                    Err(WireError::UnknownType(reply.type_code()))
                );
            }
            Ok(())
        })
        .unwrap();
}

proptest! {
    #![proptest_config(Config { cases: 256, failure_persistence: None, ..Config::default() })]

    /// Frames written back to back come out one by one, however the bytes arrive.
    #[test]
    fn a_stream_of_frames_splits_back_into_its_commands(
        requests in proptest::collection::vec(any_request(), 1..8),
        chunk in 1usize..64,
    ) {
        let mut stream = BytesMut::new();
        for request in &requests {
            request.encode(&mut stream)?;
        }
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some((type_code, payload)) = split_frame(&mut buf, MAX_FRAME_PAYLOAD)? {
                decoded.push(Request::decode(type_code, payload)?);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, requests);
    }
}

/// The longest string the u16 prefix allows survives; one byte more is refused.
#[test]
fn string_length_limit() {
    let longest = "s".repeat(usize::from(u16::MAX));
    let reply = Reply::SegmentCreated(SegmentCreated {
        request_id: 1,
        segment: longest.clone(),
    });
    let mut out = BytesMut::new();
    reply.encode(&mut out).unwrap();
    let (type_code, payload) = split_frame(&mut out, MAX_FRAME_PAYLOAD).unwrap().unwrap();
    assert_eq!(Reply::decode(type_code, payload).unwrap(), reply);

    let too_long = Reply::SegmentCreated(SegmentCreated {
        request_id: 1,
        segment: longest + "s",
    });
    assert!(matches!(
        too_long.encode(&mut out),
        Err(WireError::TooLong {
            field: "segment",
            length: 65_536,
            ..
        })
    ));
    assert!(out.is_empty());
}

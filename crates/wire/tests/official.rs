//! Cross-checks against the official Rust client's codec (`pravega-wire-protocol` 0.3.7).
//!
//! For every command both crates have, a generated value is built in both crates, then:
//! official frame → our decoder gives our value; our frame is byte-identical to the official
//! frame; our frame (including Java-only trailing fields) decodes with the official decoder to
//! the official value, and re-encodes to the same bytes. Exceptions, each tested for what is
//! compatible: AppendBlock, TableSegmentInfo and SegmentsBatchMerged (the official layouts differ
//! from Java's, which is the real protocol), and AppendBlockEnd's request id (the official enum
//! reports -1 for it).

mod common;
#[path = "official/convert.rs"]
mod convert;
#[path = "official/convert_replies.rs"]
mod convert_replies;

use bytes::{BufMut, Bytes, BytesMut};
use common::{blob, reply_cases, request_cases, text};
use convert::{official_request, strip_reply, strip_request};
use convert_replies::official_reply;
use pravaha_wire::*;
use pravega_wire_protocol::commands as official;
use pravega_wire_protocol::commands::{Reply as _, Request as _};
use pravega_wire_protocol::wire_commands::{Decode, Encode, Replies, Requests};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const CASES: u32 = 64;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

fn payload_of(frame: &[u8]) -> (i32, Bytes) {
    let mut buf = BytesMut::from(frame);
    let split = split_frame(&mut buf, MAX_FRAME_PAYLOAD).expect("valid frame");
    assert!(buf.is_empty(), "one frame exactly");
    split.expect("whole frame")
}

fn our_request_frame(request: &Request) -> Vec<u8> {
    common::request_frame(request).to_vec()
}

fn our_reply_frame(reply: &Reply) -> Vec<u8> {
    common::reply_frame(reply).to_vec()
}

fn check_request(request: &Request) -> Result<(), TestCaseError> {
    let Some(official) = official_request(request) else {
        return Ok(());
    };
    let stripped = strip_request(request);
    let official_frame = official.write_fields().expect("official encodes");
    prop_assert_eq!(
        &our_request_frame(&stripped),
        &official_frame,
        "byte-identical frames"
    );

    let (type_code, payload) = payload_of(&official_frame);
    prop_assert_eq!(Request::decode(type_code, payload)?, stripped.clone());

    let full_frame = our_request_frame(request);
    let decoded = Requests::read_from(&full_frame).expect("official decodes our frame");
    prop_assert_eq!(&decoded, &official);
    let reencoded = decoded.write_fields().expect("official re-encodes");
    prop_assert_eq!(
        &reencoded,
        &official_frame,
        "versions and sizes survive too"
    );
    if !matches!(request, Request::AppendBlockEnd(_)) {
        prop_assert_eq!(official.get_request_id(), request.request_id());
    }
    Ok(())
}

fn check_reply(reply: &Reply) -> Result<(), TestCaseError> {
    let Some(official) = official_reply(reply) else {
        return Ok(());
    };
    let stripped = strip_reply(reply);
    let official_frame = official.write_fields().expect("official encodes");
    prop_assert_eq!(
        &our_reply_frame(&stripped),
        &official_frame,
        "byte-identical frames"
    );

    let (type_code, payload) = payload_of(&official_frame);
    prop_assert_eq!(Reply::decode(type_code, payload)?, stripped.clone());

    let full_frame = our_reply_frame(reply);
    let decoded = Replies::read_from(&full_frame).expect("official decodes our frame");
    prop_assert_eq!(&decoded, &official);
    let reencoded = decoded.write_fields().expect("official re-encodes");
    prop_assert_eq!(
        &reencoded,
        &official_frame,
        "versions and sizes survive too"
    );
    prop_assert_eq!(official.get_request_id(), reply.request_id());
    Ok(())
}

#[test]
fn every_request_matches_the_official_codec() {
    for (name, strategy) in request_cases() {
        runner()
            .run(&strategy, |request| check_request(&request))
            .unwrap_or_else(|failure| panic!("{name}: {failure}"));
    }
}

#[test]
fn every_reply_matches_the_official_codec() {
    for (name, strategy) in reply_cases() {
        runner()
            .run(&strategy, |reply| check_reply(&reply))
            .unwrap_or_else(|failure| panic!("{name}: {failure}"));
    }
}

/// The official crate encodes AppendBlock with bincode, which puts a u32 length before the
/// body; Java writes the body raw up to the end of the frame (`length - 16` bytes), and that is
/// what Java clients send. The Rust client never sends AppendBlock. What stays compatible: our
/// decoder reads the official frame as a body that starts with that length prefix, and encoding
/// that body reproduces the official frame.
#[test]
fn append_block_official_layout_adds_a_length_prefix() {
    let strategy = (any::<u128>(), blob());
    runner()
        .run(&strategy, |(writer_id, data)| {
            let official = Requests::AppendBlock(official::AppendBlockCommand {
                writer_id,
                data: data.to_vec(),
            });
            let official_frame = official.write_fields().expect("official encodes");
            let mut prefixed = Vec::new();
            prefixed.put_u32(u32::try_from(data.len()).unwrap());
            prefixed.extend_from_slice(&data);
            let ours = Request::AppendBlock(AppendBlock {
                writer_id,
                data: Bytes::from(prefixed),
            });
            let (type_code, payload) = payload_of(&official_frame);
            prop_assert_eq!(&Request::decode(type_code, payload)?, &ours);
            prop_assert_eq!(our_request_frame(&ours), official_frame);
            Ok(())
        })
        .unwrap();
}

/// Reply 69: Java writes (request_id, segment_name, start_offset, length, entry_count,
/// key_length); the official struct has (request_id, segment_name, delegation_token) and is
/// never used by the client. Only the first two fields are shared, byte for byte.
#[test]
fn table_segment_info_shares_only_its_first_two_fields() {
    let strategy = (
        any::<i64>(),
        text(),
        text(),
        any::<[i64; 3]>(),
        any::<i32>(),
    );
    runner()
        .run(
            &strategy,
            |(request_id, name, token, [start, length, count], key_length)| {
                let official = Replies::TableSegmentInfo(official::TableSegmentInfoCommand {
                    request_id,
                    segment_name: name.clone(),
                    delegation_token: token,
                });
                let ours = Reply::TableSegmentInfo(TableSegmentInfo {
                    request_id,
                    segment_name: name.clone(),
                    start_offset: start,
                    length,
                    entry_count: count,
                    key_length,
                });
                let official_frame = official.write_fields().expect("official encodes");
                let our_frame = our_reply_frame(&ours);
                let shared = pravaha_wire::HEADER_LEN + 8 + 2 + name.len();
                prop_assert_eq!(&our_frame[..4], &official_frame[..4], "same type code");
                prop_assert_eq!(&our_frame[8..shared], &official_frame[8..shared]);
                prop_assert_eq!(our_frame.len() - shared, 8 + 8 + 8 + 4);
                Ok(())
            },
        )
        .unwrap();
}

/// Reply 91: Java writes a count and then (source, offset) pairs; the official struct has two
/// separate lists (sources, then offsets) and cannot read Java's frames. An empty batch from the
/// official encoder still decodes with ours (its second count is an ignored trailing field), and
/// with entries the two layouts agree up to the first count.
#[test]
fn segments_batch_merged_agrees_only_up_to_the_count() {
    let strategy = (
        any::<i64>(),
        text(),
        proptest::collection::vec((text(), any::<i64>()), 0..4),
    );
    runner()
        .run(&strategy, |(request_id, target, pairs)| {
            let official = Replies::SegmentsBatchMerged(official::SegmentsBatchMergedCommand {
                request_id,
                target: target.clone(),
                sources: pairs.iter().map(|(source, _)| source.clone()).collect(),
                new_target_write_offset: pairs.iter().map(|(_, offset)| *offset).collect(),
            });
            let ours = Reply::SegmentsBatchMerged(SegmentsBatchMerged {
                request_id,
                target: target.clone(),
                new_target_write_offsets: pairs.clone(),
            });
            let official_frame = official.write_fields().expect("official encodes");
            let our_frame = our_reply_frame(&ours);
            let through_count = pravaha_wire::HEADER_LEN + 8 + 2 + target.len() + 4;
            prop_assert_eq!(
                &our_frame[8..through_count],
                &official_frame[8..through_count]
            );
            if pairs.is_empty() {
                let (type_code, payload) = payload_of(&official_frame);
                prop_assert_eq!(Reply::decode(type_code, payload)?, ours);
                prop_assert!(
                    Replies::read_from(&our_frame).is_err(),
                    "official needs 2 lists"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// The handshake values match the official crate's constants.
#[test]
fn constants_match_the_official_crate() {
    assert_eq!(WIRE_VERSION, official::WIRE_VERSION);
    assert_eq!(
        OLDEST_COMPATIBLE_VERSION,
        official::OLDEST_COMPATIBLE_VERSION
    );
    assert_eq!(MAX_FRAME_PAYLOAD, official::MAX_WIRECOMMAND_SIZE as usize);
    assert_eq!(NULL_ATTRIBUTE_VALUE, official::NULL_ATTRIBUTE_VALUE);
    assert_eq!(NO_VERSION, official::TableKey::KEY_NO_VERSION);
    assert_eq!(NOT_EXISTS, official::TableKey::KEY_NOT_EXISTS);
    assert_eq!(HEADER_LEN as u32, official::TYPE_PLUS_LENGTH_SIZE);
}

//! Golden byte tests written by hand from the layouts in docs/formats/wire-protocol.md, plus
//! the decoding rules for optional trailing fields and the encoder's refusals.

use bytes::{BufMut, Bytes, BytesMut};

use crate::*;

/// Concatenates hex fragments, ignoring spaces, so that fixtures can be commented per field.
fn hex(parts: &[&str]) -> Vec<u8> {
    let digits: String = parts
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (0..digits.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&digits[at..at + 2], 16).unwrap())
        .collect()
}

fn encode_request(request: &Request) -> Vec<u8> {
    let mut out = BytesMut::new();
    request.encode(&mut out).unwrap();
    out.to_vec()
}

fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut out = BytesMut::new();
    reply.encode(&mut out).unwrap();
    out.to_vec()
}

fn decode_reply_frame(frame: &[u8]) -> Reply {
    let mut buf = BytesMut::from(frame);
    let (type_code, payload) = split_frame(&mut buf, MAX_FRAME_PAYLOAD).unwrap().unwrap();
    assert!(buf.is_empty());
    Reply::decode(type_code, payload).unwrap()
}

#[test]
fn hello_golden() {
    let expected = hex(&[
        "ffffff81", // type -127
        "00000008", // payload length 8
        "0000000f", // high_version 15
        "00000005", // low_version 5
    ]);
    let hello = Hello {
        high_version: WIRE_VERSION,
        low_version: OLDEST_COMPATIBLE_VERSION,
    };
    assert_eq!(encode_request(&Request::Hello(hello.clone())), expected);
    assert_eq!(encode_reply(&Reply::Hello(hello.clone())), expected);
    assert_eq!(decode_reply_frame(&expected), Reply::Hello(hello));
}

#[test]
fn append_setup_golden() {
    let expected = hex(&[
        "00000002",                         // type 2
        "00000025",                         // payload length 37
        "0000000000000007",                 // request_id 7
        "0003 612f62",                      // segment "a/b"
        "0102030405060708090a0b0c0d0e0f10", // writer_id, big-endian u128
        "8000000000000000",                 // last_event_number NULL_ATTRIBUTE_VALUE
    ]);
    let reply = Reply::AppendSetup(AppendSetup {
        request_id: 7,
        segment: "a/b".into(),
        writer_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
        last_event_number: NULL_ATTRIBUTE_VALUE,
    });
    assert_eq!(encode_reply(&reply), expected);
    assert_eq!(decode_reply_frame(&expected), reply);
}

#[test]
fn data_appended_golden() {
    let expected = hex(&[
        "00000007",                         // type 7
        "00000030",                         // payload length 48
        "000000000000000000000000000000ff", // writer_id 255
        "000000000000000a",                 // event_number 10
        "0000000000000004",                 // previous_event_number 4
        "0000000000000063",                 // request_id 99
        "0000000000001000",                 // current_segment_write_offset 4096
    ]);
    let reply = Reply::DataAppended(DataAppended {
        writer_id: 255,
        event_number: 10,
        previous_event_number: 4,
        request_id: 99,
        current_segment_write_offset: 4096,
    });
    assert_eq!(encode_reply(&reply), expected);
    assert_eq!(decode_reply_frame(&expected), reply);
    assert_eq!(reply.request_id(), 99);
}

#[test]
fn table_keys_read_with_versioned_key_golden() {
    let expected = hex(&[
        "00000054",         // type 84
        "00000028",         // payload length 40
        "0000000000000001", // request_id 1
        "0001 74",          // segment "t"
        "00000001",         // 1 key
        "0000000f",         // key payload_size = 4 + 3 + 8
        "00000003 6b6579",  // key length 3, "key"
        "0000000000000020", // key_version 32
        "00000002 ffee",    // continuation_token
    ]);
    let reply = Reply::TableKeysRead(TableKeysRead {
        request_id: 1,
        segment: "t".into(),
        keys: vec![TableKey {
            data: Bytes::from_static(b"key"),
            key_version: 32,
        }],
        continuation_token: Bytes::from_static(&[0xff, 0xee]),
    });
    assert_eq!(encode_reply(&reply), expected);
    assert_eq!(decode_reply_frame(&expected), reply);
}

#[test]
fn table_key_with_inconsistent_payload_size_is_refused() {
    let payload = hex(&[
        "0000000000000001 0001 74 0000 00000001", // request_id, "t", token "", 1 key
        "00000010 00000003 6b6579 0000000000000020", // payload_size 16 instead of 15
    ]);
    assert!(matches!(
        Request::decode(78, Bytes::from(payload)),
        Err(WireError::Invalid {
            type_code: 78,
            field: "table_key.payload_size",
            offset: 17,
            ..
        })
    ));
}

#[test]
fn absent_trailing_fields_read_as_defaults() {
    // ReadSegment without request_id (older Java clients).
    let payload = hex(&["0001 73", "0000000000000010", "00000100", "0000"]);
    let Ok(Request::ReadSegment(read)) = Request::decode(9, Bytes::from(payload)) else {
        panic!("ReadSegment did not decode");
    };
    assert_eq!(
        (read.offset, read.suggested_length, read.request_id),
        (16, 256, -1)
    );

    // CreateTableSegment with only `sorted` (Rust sends none of the three).
    let payload = hex(&["0000000000000003", "0001 74", "0000", "01", "000000"]);
    let Ok(Request::CreateTableSegment(create)) = Request::decode(70, Bytes::from(payload)) else {
        panic!("CreateTableSegment did not decode");
    };
    assert_eq!(
        (create.sorted, create.key_length, create.rollover_size_bytes),
        (Some(true), None, None)
    );

    // NoSuchSegment from an old sender: no stack trace, no offset.
    let payload = hex(&["0000000000000005", "0001 73"]);
    assert_eq!(
        Reply::decode(53, Bytes::from(payload)),
        Ok(Reply::NoSuchSegment(NoSuchSegment {
            request_id: 5,
            segment: "s".into(),
            server_stack_trace: String::new(),
            offset: -1,
        }))
    );
}

#[test]
fn unknown_trailing_bytes_are_ignored() {
    let payload = hex(&["0000000000000009", "0001 73", "deadbeef"]);
    assert_eq!(
        Reply::decode(29, Bytes::from(payload)),
        Ok(Reply::SegmentSealed(SegmentSealed {
            request_id: 9,
            segment: "s".into()
        }))
    );
}

#[test]
fn invalid_event_number_uses_javas_layout_and_id() {
    let reply = Reply::InvalidEventNumber(InvalidEventNumber {
        writer_id: 1,
        request_id: 42,
        server_stack_trace: String::new(),
        event_number: Some(7),
    });
    let expected = hex(&[
        "00000037 00000022",                // type 55, length 34
        "00000000000000000000000000000001", // writer_id
        "000000000000002a",                 // request_id 42
        "0000",                             // server_stack_trace ""
        "0000000000000007",                 // event_number 7
    ]);
    assert_eq!(encode_reply(&reply), expected);
    assert_eq!(reply.request_id(), 42);
}

#[test]
fn request_ids_and_names() {
    let hello = Hello {
        high_version: 1,
        low_version: 1,
    };
    assert_eq!(Request::Hello(hello.clone()).request_id(), 0);
    assert_eq!(Reply::Hello(hello).request_id(), 0);
    assert_eq!(Request::KeepAlive.request_id(), -1);
    assert_eq!(Reply::KeepAlive.name(), "KeepAlive");
    let block = Request::AppendBlock(AppendBlock {
        writer_id: 1,
        data: Bytes::new(),
    });
    assert_eq!(
        (block.request_id(), block.type_code(), block.name()),
        (-1, 3, "AppendBlock")
    );
    assert_eq!(
        encode_request(&Request::KeepAlive),
        hex(&["00000064 00000000"])
    );
}

#[test]
fn wrong_embedded_event_type_is_refused() {
    let payload = hex(&[
        "00000000000000000000000000000001 0000000000000001 0000000000000000", // ids, offset
        "ffffffff 00000000", // embedded type -1 instead of 0
    ]);
    assert!(matches!(
        Request::decode(5, Bytes::from(payload)),
        Err(WireError::Invalid {
            field: "event_type",
            offset: 32,
            ..
        })
    ));
}

#[test]
fn bad_bools_lengths_and_utf8_are_refused() {
    let bad_bool = hex(&["0000000000000001", "02"]);
    assert!(matches!(
        Reply::decode(37, Bytes::from(bad_bool)),
        Err(WireError::Invalid {
            field: "success",
            offset: 8,
            ..
        })
    ));
    let bad_utf8 = hex(&["0000000000000001", "0002 c328"]);
    assert!(matches!(
        Reply::decode(21, Bytes::from(bad_utf8)),
        Err(WireError::Invalid {
            field: "segment",
            offset: 8,
            ..
        })
    ));
    let negative_count = hex(&["0000000000000001", "ffffffff"]);
    assert!(matches!(
        Reply::decode(75, Bytes::from(negative_count)),
        Err(WireError::Invalid {
            field: "updated_versions",
            ..
        })
    ));
    let huge_count = hex(&["0000000000000001", "7fffffff", "0000000000000001"]);
    assert!(matches!(
        Reply::decode(75, Bytes::from(huge_count)),
        Err(WireError::Truncated {
            field: "updated_versions",
            available: 8,
            ..
        })
    ));
    assert_eq!(
        Reply::decode(1, Bytes::new()),
        Err(WireError::UnknownType(1))
    );
    assert_eq!(
        Request::decode(2, Bytes::new()),
        Err(WireError::UnknownType(2))
    );
}

#[test]
fn every_truncation_of_a_frame_is_an_error_not_a_panic() {
    let reply = Reply::TableEntriesDeltaRead(TableEntriesDeltaRead {
        request_id: 3,
        segment: "scope/stream/0.#epoch.0".into(),
        entries: TableEntries {
            entries: vec![(
                TableKey {
                    data: Bytes::from_static(b"k"),
                    key_version: 0,
                },
                TableValue {
                    data: Bytes::from_static(b"value"),
                },
            )],
        },
        should_clear: false,
        reached_end: true,
        last_position: 77,
    });
    let frame = encode_reply(&reply);
    let payload = Bytes::from(frame[HEADER_LEN..].to_vec());
    for cut in 0..payload.len() {
        assert!(
            Reply::decode(87, payload.slice(..cut)).is_err(),
            "cut at {cut}"
        );
    }
    assert_eq!(Reply::decode(87, payload), Ok(reply));
}

#[test]
fn encoder_refuses_what_the_wire_cannot_carry() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let long_name = Request::SealSegment(SealSegment {
        request_id: 1,
        segment: "x".repeat(usize::from(u16::MAX) + 1),
        delegation_token: String::new(),
    });
    assert_eq!(
        long_name.encode(&mut out),
        Err(WireError::TooLong {
            type_code: 28,
            field: "segment",
            length: 65_536,
            limit: 65_535
        })
    );
    let gap = Request::CreateTableSegment(CreateTableSegment {
        request_id: 1,
        segment: "t".into(),
        delegation_token: String::new(),
        sorted: None,
        key_length: Some(4),
        rollover_size_bytes: None,
    });
    assert!(matches!(
        gap.encode(&mut out),
        Err(WireError::Invalid {
            field: "key_length",
            ..
        })
    ));
    let huge = Reply::SegmentRead(SegmentRead {
        segment: "s".into(),
        offset: 0,
        at_tail: false,
        end_of_segment: false,
        data: Bytes::from(vec![0; MAX_FRAME_PAYLOAD]),
        request_id: 1,
    });
    assert!(matches!(
        huge.encode(&mut out),
        Err(WireError::FrameTooLarge { type_code: 10, .. })
    ));
    assert_eq!(
        &out[..],
        b"keep",
        "failed encodes leave the buffer unchanged"
    );
    out.put_u8(b'!');
}

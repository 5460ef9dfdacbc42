//! Golden bytes: protobuf encodings written by hand from field numbers and wire types, checked
//! both ways (decode gives the struct, encode gives the bytes).
//!
//! Protobuf reminders: a key byte is `field_number << 3 | wire_type`; wire type 0 = varint,
//! 1 = 64-bit (little-endian, used by `double`), 2 = length-delimited. Varints are base-128,
//! least significant group first; a negative `int64` takes ten bytes. proto3 leaves out fields
//! that hold their default (0, 0.0, "", empty list) and packs repeated scalars.

use std::collections::HashMap;

use pravaha_controller_api::v1::{
    retention_policy::RetentionPolicyType, scale_request::KeyRangeEntry,
    scaling_policy::ScalingPolicyType, successor_response::SegmentEntry, RetentionPolicy,
    ScaleRequest, ScalingPolicy, SegmentId, SegmentRange, StreamConfig, StreamCut, StreamInfo,
    SuccessorResponse, Tags, TxnId,
};
use prost::Message;

/// `StreamInfo { scope: "s", stream: "t" }`: 6 bytes.
const STREAM_S_T: &[u8] = &[
    0x0a, 0x01, b's', // 1 scope: LEN 1 "s"
    0x12, 0x01, b't', // 2 stream: LEN 1 "t"
];

fn stream_s_t() -> StreamInfo {
    StreamInfo {
        scope: "s".into(),
        stream: "t".into(),
        access_operation: 0,
    }
}

fn segment_id(number: i64) -> SegmentId {
    SegmentId {
        stream_info: Some(stream_s_t()),
        segment_id: number,
    }
}

/// `SegmentId { s/t, number }` for a number below 128: 10 bytes.
fn segment_id_bytes(number: u8) -> Vec<u8> {
    assert!(number < 0x80, "one-byte varint only");
    [&[0x0a, 0x06][..], STREAM_S_T, &[0x10, number]].concat() // 1 streamInfo; 2 segmentId
}

fn assert_golden<M: Message + Default + PartialEq + std::fmt::Debug>(value: &M, bytes: &[u8]) {
    assert_eq!(value.encode_to_vec(), bytes, "encoding of {value:?}");
    assert_eq!(&M::decode(bytes).expect("golden bytes decode"), value);
}

#[test]
fn stream_config_with_scaling_retention_and_tags() {
    let config = StreamConfig {
        stream_info: Some(StreamInfo {
            scope: "sc".into(),
            stream: "st".into(),
            access_operation: 0,
        }),
        scaling_policy: Some(ScalingPolicy {
            scale_type: ScalingPolicyType::ByRateInEventsPerSec as i32,
            target_rate: 100,
            scale_factor: 2,
            min_num_segments: 3,
        }),
        retention_policy: Some(RetentionPolicy {
            retention_type: RetentionPolicyType::Size as i32,
            retention_param: 1 << 20,
            retention_max: i64::MAX,
        }),
        tags: Some(Tags {
            tag: vec!["a".into(), "bc".into()],
        }),
        timestamp_aggregation_timeout: 0,
        rollover_size_bytes: 4096,
    };
    let bytes: Vec<u8> = [
        &[0x0a, 0x08][..],         // 1 streamInfo: LEN 8
        &[0x0a, 0x02, b's', b'c'], //   1 scope "sc"
        &[0x12, 0x02, b's', b't'], //   2 stream "st" (3 accessOperation 0: left out)
        &[0x12, 0x08],             // 2 scalingPolicy: LEN 8
        &[0x08, 0x02],             //   1 scaleType BY_RATE_IN_EVENTS_PER_SEC
        &[0x10, 0x64],             //   2 targetRate 100
        &[0x18, 0x02],             //   3 scaleFactor 2
        &[0x20, 0x03],             //   4 minNumSegments 3
        &[0x1a, 0x10],             // 3 retentionPolicy: LEN 16
        &[0x08, 0x02],             //   1 retentionType SIZE
        &[0x10, 0x80, 0x80, 0x40], //   2 retentionParam 1 MiB = 2^20
        &[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], //   3 retentionMax i64::MAX
        &[0x22, 0x07],             // 4 tags: LEN 7
        &[0x0a, 0x01, b'a'],       //   1 tag "a"
        &[0x0a, 0x02, b'b', b'c'], //   1 tag "bc"
        &[0x30, 0x80, 0x20], // 6 rolloverSizeBytes 4096 (5 timestampAggregationTimeout 0: left out)
    ]
    .concat();
    assert_golden(&config, &bytes);
}

#[test]
fn unknown_enum_value_is_kept_raw_and_reads_as_the_zero_value() {
    // 1 scaleType = 7, a value the enum does not define.
    let policy = ScalingPolicy::decode(&[0x08, 0x07][..]).expect("decodes");
    assert_eq!(policy.scale_type, 7);
    assert_eq!(policy.scale_type(), ScalingPolicyType::FixedNumSegments);
}

#[test]
fn segment_range_with_epoch_in_the_segment_id() {
    let range = SegmentRange {
        segment_id: Some(segment_id((1 << 32) | 5)), // segment 5 created in epoch 1
        min_key: 0.25,
        max_key: 1.0,
    };
    let bytes: Vec<u8> = [
        &[0x0a, 0x0e][..], // 1 segmentId: LEN 14
        &[0x0a, 0x06],     //   1 streamInfo: LEN 6
        STREAM_S_T,
        &[0x10, 0x85, 0x80, 0x80, 0x80, 0x10], //   2 segmentId 0x1_0000_0005
        &[0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f], // 2 minKey 0.25 (fixed64 LE)
        &[0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f], // 3 maxKey 1.0
    ]
    .concat();
    assert_golden(&range, &bytes);
}

#[test]
fn scale_request_with_nested_key_ranges() {
    let request = ScaleRequest {
        stream_info: Some(stream_s_t()),
        sealed_segments: vec![0, 1],
        new_key_ranges: vec![
            KeyRangeEntry {
                start: 0.0,
                end: 0.5,
            },
            KeyRangeEntry {
                start: 0.5,
                end: 1.0,
            },
        ],
        scale_timestamp: 1000,
    };
    let bytes: Vec<u8> = [
        &[0x0a, 0x06][..], // 1 streamInfo: LEN 6
        STREAM_S_T,
        &[0x12, 0x02, 0x00, 0x01], // 2 sealedSegments: packed, LEN 2, [0, 1]
        &[0x1a, 0x09],             // 3 newKeyRanges[0]: LEN 9 (1 start 0.0: left out)
        &[0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f], //   2 end 0.5
        &[0x1a, 0x12],             // 3 newKeyRanges[1]: LEN 18
        &[0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f], //   1 start 0.5
        &[0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f], //   2 end 1.0
        &[0x20, 0xe8, 0x07],       // 4 scaleTimestamp 1000
    ]
    .concat();
    assert_golden(&request, &bytes);
}

#[test]
fn repeated_int64_is_also_accepted_unpacked() {
    // Parsers must take both forms: 2 sealedSegments as two separate varint fields.
    let unpacked = [0x10, 0x00, 0x10, 0x01];
    let request = ScaleRequest::decode(&unpacked[..]).expect("decodes");
    assert_eq!(request.sealed_segments, vec![0, 1]);
}

#[test]
fn txn_id_positive_and_negative_halves() {
    let epoch_three = TxnId {
        high_bits: 3 << 32,
        low_bits: 42,
    };
    let bytes = [
        0x08, 0x80, 0x80, 0x80, 0x80, 0x30, // 1 highBits 3 << 32 (epoch 3 in the top 32 bits)
        0x10, 0x2a, // 2 lowBits 42
    ];
    assert_golden(&epoch_three, &bytes);

    let negative = TxnId {
        high_bits: -1,
        low_bits: -2,
    };
    let bytes = [
        0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // 1 highBits -1
        0x10, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // 2 lowBits -2
    ];
    assert_golden(&negative, &bytes);
}

#[test]
fn successor_response_lists_successors_with_predecessors() {
    // Segment 0 split into 2 = [0, 0.25) and 3 = [0.25, 0.5); each has predecessor 0.
    let response = SuccessorResponse {
        segments: vec![
            SegmentEntry {
                segment: Some(SegmentRange {
                    segment_id: Some(segment_id(2)),
                    min_key: 0.0,
                    max_key: 0.25,
                }),
                value: vec![0],
            },
            SegmentEntry {
                segment: Some(SegmentRange {
                    segment_id: Some(segment_id(3)),
                    min_key: 0.25,
                    max_key: 0.5,
                }),
                value: vec![0],
            },
        ],
        delegation_token: "tok".into(),
    };
    let bytes: Vec<u8> = [
        &[0x0a, 0x1a][..], // 1 segments[0]: LEN 26
        &[0x0a, 0x15],     //   1 segment: LEN 21
        &[0x0a, 0x0a],     //     1 segmentId: LEN 10
        &segment_id_bytes(2),
        &[0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f], //     3 maxKey 0.25 (2 minKey 0.0 left out)
        &[0x12, 0x01, 0x00],                                     //   2 value: packed, LEN 1, [0]
        &[0x0a, 0x23],                                           // 1 segments[1]: LEN 35
        &[0x0a, 0x1e],                                           //   1 segment: LEN 30
        &[0x0a, 0x0a],                                           //     1 segmentId: LEN 10
        &segment_id_bytes(3),
        &[0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f], //     2 minKey 0.25
        &[0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f], //     3 maxKey 0.5
        &[0x12, 0x01, 0x00],                                     //   2 value: packed, LEN 1, [0]
        &[0x12, 0x03, b't', b'o', b'k'],                         // 2 delegationToken "tok"
    ]
    .concat();
    assert_golden(&response, &bytes);
}

#[test]
fn stream_cut_map_entries() {
    // A map field is a repeated message of {1 key, 2 value}. One entry, so the order is fixed.
    let cut = StreamCut {
        stream_info: Some(stream_s_t()),
        cut: HashMap::from([(1, 100)]),
    };
    let bytes: Vec<u8> = [
        &[0x0a, 0x06][..], // 1 streamInfo: LEN 6
        STREAM_S_T,
        &[0x12, 0x04, 0x08, 0x01, 0x10, 0x64], // 2 cut entry: LEN 4, 1 key 1, 2 value 100
    ]
    .concat();
    assert_golden(&cut, &bytes);

    // Two entries decode whatever their order.
    let two_entries = [&bytes[..], &[0x12, 0x04, 0x08, 0x02, 0x10, 0x00]].concat();
    let decoded = StreamCut::decode(&two_entries[..]).expect("decodes");
    assert_eq!(decoded.cut, HashMap::from([(1, 100), (2, 0)]));
}

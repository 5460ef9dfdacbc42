use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::state::{ChunkRef, ContainerState, Operation, SegmentKind, SegmentMeta, TableSlot};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn golden_append_v2() {
    let operation = Operation::Append {
        id: 5,
        offset: 16,
        data: Bytes::from_static(b"hi"),
        attributes: vec![(0x0102, -1)],
        time_ms: 1000,
    };
    let encoded = encode(&operation);
    assert_eq!(
        hex(&encoded),
        concat!(
            "02",               // operation format version 2
            "03",               // kind: append
            "0500000000000000", // segment id 5
            "1000000000000000", // offset 16
            "02000000",
            "6869",                             // data "hi"
            "01000000",                         // one attribute
            "02010000000000000000000000000000", // attribute id 0x0102 (u128 LE)
            "ffffffffffffffff",                 // value -1
            "e803000000000000",                 // time 1000 ms
        )
    );
    assert_eq!(decode(&encoded).unwrap(), operation);
    // Version 1 had the same layout, and is still read.
    let mut v1 = encoded.to_vec();
    v1[0] = 1;
    assert_eq!(decode(&v1).unwrap(), operation);
    v1[0] = 3;
    let error = decode(&v1).unwrap_err().to_string();
    assert!(
        error.contains("unsupported operation format version 3"),
        "{error}"
    );
}

#[test]
fn golden_checkpoint_v2() {
    let mut state = ContainerState {
        next_segment_id: 2,
        ..ContainerState::default()
    };
    let segment = SegmentMeta {
        id: 1,
        name: "s".into(),
        kind: SegmentKind::Table,
        length: 30,
        start_offset: 0,
        sealed: false,
        last_modified_ms: 7,
        attributes: BTreeMap::new(),
        chunks: BTreeMap::from([(
            0,
            ChunkRef {
                name: "c".into(),
                chunk_offset: 0,
                length: 20,
            },
        )]),
        table: BTreeMap::from([(
            Bytes::from_static(b"k"),
            TableSlot {
                version: 20,
                value_length: 3,
            },
        )]),
    };
    state.names.insert("s".into(), 1);
    state.segments.insert(1, segment);
    let encoded = encode(&Operation::Checkpoint(Box::new(state.clone())));
    assert_eq!(
        hex(&encoded),
        concat!(
            "02",
            "01",               // version 2, kind: checkpoint
            "0200000000000000", // next segment id 2
            "01000000",         // one segment
            "0100000000000000", // id 1
            "01000000",
            "73",               // name "s"
            "01",               // kind: table
            "1e00000000000000", // length 30
            "0000000000000000", // start offset 0
            "00",               // not sealed
            "0700000000000000", // last modified 7 ms
            "00000000",         // no attributes
            "01000000",         // one chunk
            "0000000000000000", // at segment offset 0
            "01000000",
            "63",               // chunk name "c"
            "0000000000000000", // chunk offset 0
            "1400000000000000", // length 20
            "01000000",         // one table key
            "01000000",
            "6b",               // key "k"
            "1400000000000000", // version 20
            "03000000",         // value length 3
        )
    );
    assert_eq!(
        decode(&encoded).unwrap(),
        Operation::Checkpoint(Box::new(state))
    );
}

#[test]
fn every_truncation_fails_cleanly() {
    let encoded = encode(&Operation::Merge {
        target: 1,
        source: 2,
        target_offset: 3,
        time_ms: 4,
    });
    for cut in 0..encoded.len() {
        assert!(decode(&encoded[..cut]).is_err(), "cut at {cut}");
    }
}

fn operations() -> impl Strategy<Value = Operation> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from);
    let attributes = proptest::collection::vec((any::<u128>(), any::<i64>()), 0..3);
    prop_oneof![
        (
            any::<u64>(),
            "[a-z/#.0-9]{1,20}",
            any::<bool>(),
            attributes.clone(),
            any::<u64>()
        )
            .prop_map(
                |(id, name, table, attributes, time_ms)| Operation::CreateSegment {
                    id,
                    name,
                    kind: if table {
                        SegmentKind::Table
                    } else {
                        SegmentKind::Stream
                    },
                    attributes,
                    time_ms,
                }
            ),
        (
            any::<u64>(),
            any::<u64>(),
            bytes.clone(),
            attributes.clone(),
            any::<u64>()
        )
            .prop_map(
                |(id, offset, data, attributes, time_ms)| Operation::Append {
                    id,
                    offset,
                    data,
                    attributes,
                    time_ms
                }
            ),
        (any::<u64>(), any::<u64>()).prop_map(|(id, time_ms)| Operation::Seal { id, time_ms }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(id, offset, time_ms)| {
            Operation::Truncate {
                id,
                offset,
                time_ms,
            }
        }),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(target, source, target_offset, time_ms)| Operation::Merge {
                target,
                source,
                target_offset,
                time_ms
            }
        ),
        any::<u64>().prop_map(|id| Operation::Delete { id }),
        (any::<u64>(), attributes, any::<u64>()).prop_map(|(id, values, time_ms)| {
            Operation::UpdateAttributes {
                id,
                values,
                time_ms,
            }
        }),
        (any::<u64>(), any::<u64>(), bytes, any::<u64>()).prop_map(
            |(id, offset, data, time_ms)| Operation::TableUpdate {
                id,
                offset,
                data,
                time_ms
            }
        ),
        (
            any::<u64>(),
            any::<u64>(),
            "[a-z0-9/]{1,30}",
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(|(id, offset, name, chunk_offset, length)| {
                Operation::Stored {
                    id,
                    offset,
                    chunk: ChunkRef {
                        name,
                        chunk_offset,
                        length,
                    },
                }
            }),
    ]
}

proptest! {
    #[test]
    fn operations_round_trip(operation in operations()) {
        prop_assert_eq!(decode(&encode(&operation)).unwrap(), operation);
    }

    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&input);
    }
}

#[test]
fn records_encoded_into_one_buffer_share_it_and_decode_alone() {
    let operations: Vec<Operation> = (0..10_u64)
        .map(|id| Operation::Append {
            id,
            offset: id * 100,
            data: Bytes::from(vec![id as u8; 1000]),
            attributes: vec![(7, id as i64)],
            time_ms: 5,
        })
        .collect();
    let mut buffer = BytesMut::new();
    let records: Vec<Bytes> = operations
        .iter()
        .map(|operation| encode_into(&mut buffer, operation))
        .collect();
    for (record, operation) in records.iter().zip(&operations) {
        assert_eq!(
            record,
            &encode(operation),
            "the same bytes as a record of its own"
        );
        assert_eq!(&decode(record).unwrap(), operation);
    }
    // One allocation, records back to back.
    for pair in records.windows(2) {
        assert_eq!(
            pair[0].as_ptr().wrapping_add(pair[0].len()),
            pair[1].as_ptr()
        );
    }
    // Once they are dropped, records fill the rest of the buffer, then start over in the
    // same memory (no new allocation while nothing else holds it).
    let first = records[0].as_ptr();
    drop(records);
    let reused = (0..200).any(|_| encode_into(&mut buffer, &operations[0]).as_ptr() == first);
    assert!(reused, "the buffer's memory is taken up again");
}

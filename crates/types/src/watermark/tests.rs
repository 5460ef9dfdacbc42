//! The codec against a golden fixture built from the documented layout, truncations, skipped
//! revisions, refusals and garbage.

use super::*;

fn segment(segment_id: i64, range_low: f64, range_high: f64) -> SegmentWithRange {
    SegmentWithRange {
        segment_id,
        range_low,
        range_high,
    }
}

/// Two segments of a stream split in halves; the bytes are built field by field from the
/// documented layout (docs/formats/controller-metadata.md), not from the encoder.
const GOLDEN: &str = concat!(
    "00",               // serializer format 0
    "00",               // watermark version 0
    "01",               // one revision
    "00",               // revision 0
    "00000061",         // its length: 8 + 8 + 1 + 2 × (8 + 24 + 8) = 97
    "0000019ab697f400", // lower time bound 1764000003072
    "0000019ab697fbd0", // upper time bound 1764000005072
    "02",               // compact int: two entries
    "0000010000000018", // segment object: format, version, one revision, revision 0, length 24
    "0000000000000000", // segment id 0
    "0000000000000000", // range low 0.0
    "3fe0000000000000", // range high 0.5
    "0000000000000400", // offset 1024
    "0000010000000018", // segment object header, length 24
    "0000000100000001", // segment id 1 of epoch 1 (4294967297)
    "3fe0000000000000", // range low 0.5
    "3ff0000000000000", // range high 1.0
    "0000000000000000", // offset 0
);

fn golden_watermark() -> Watermark {
    Watermark {
        lower_time_bound: 1_764_000_003_072,
        upper_time_bound: 1_764_000_005_072,
        stream_cut: vec![
            (segment(0, 0.0, 0.5), 1024),
            (segment((1 << 32) | 1, 0.5, 1.0), 0),
        ],
    }
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn encodes_the_golden_fixture_byte_for_byte() {
    let golden = unhex(GOLDEN);
    assert_eq!(golden.len(), HEADER_LEN + 97);
    assert_eq!(golden_watermark().encode().unwrap(), golden);
    assert_eq!(Watermark::decode(&golden).unwrap(), golden_watermark());
}

#[test]
fn every_truncation_is_an_error_with_its_offset() {
    let golden = unhex(GOLDEN);
    for end in 0..golden.len() {
        match Watermark::decode(&golden[..end]) {
            Err(WatermarkFormatError::Truncated {
                offset,
                needed,
                available,
            }) => {
                assert!(offset <= end && available < needed, "cut at {end}");
            }
            other => panic!("cut at {end}: {other:?}"),
        }
    }
}

#[test]
fn later_revisions_and_extra_fields_are_skipped() {
    let mut fields = golden_watermark().encode().unwrap()[HEADER_LEN..].to_vec();
    fields.extend_from_slice(b"new field");
    let mut data = vec![0, 0, 2, 0];
    data.extend_from_slice(&(fields.len() as i32).to_be_bytes());
    data.extend_from_slice(&fields);
    data.extend_from_slice(&[1, 0, 0, 0, 3, 7, 7, 7]); // revision 1, 3 bytes
    data.extend_from_slice(b"trailing");
    assert_eq!(Watermark::decode(&data).unwrap(), golden_watermark());
}

#[test]
fn bad_headers_and_values_are_refused() {
    let golden = unhex(GOLDEN);
    let mut format = golden.clone();
    format[0] = 1;
    assert!(matches!(
        Watermark::decode(&format),
        Err(WatermarkFormatError::UnknownFormat {
            offset: 0,
            found: 1
        })
    ));
    let mut version = golden.clone();
    version[1] = 1;
    assert!(matches!(
        Watermark::decode(&version),
        Err(WatermarkFormatError::UnsupportedVersion { offset: 1, .. })
    ));
    let mut count = golden.clone();
    count[24] = 0x7F; // 127 entries cannot fit
    assert!(matches!(
        Watermark::decode(&count),
        Err(WatermarkFormatError::Invalid { .. })
    ));
    let mut range = golden.clone();
    range[41] = 0x40; // range low 0.0 → 2.0, above its high
    assert!(matches!(
        Watermark::decode(&range),
        Err(WatermarkFormatError::Invalid { offset: 33, .. })
    ));
    assert!(matches!(
        Watermark::decode(b"{\"v\":1}"),
        Err(WatermarkFormatError::UnknownFormat { found: b'{', .. })
    ));
}

#[test]
fn compact_ints_take_one_two_or_four_bytes() {
    for (value, bytes) in [
        (0usize, vec![0x00]),
        (0x7F, vec![0x7F]),
        (0x80, vec![0x80, 0x80]),
        (0x3FFF, vec![0xBF, 0xFF]),
        (0x4000, vec![0xC0, 0x00, 0x40, 0x00]),
        (COMPACT_INT_MAX, vec![0xFF, 0xFF, 0xFF, 0xFF]),
    ] {
        let mut out = Vec::new();
        put_compact_int(&mut out, value);
        assert_eq!(out, bytes, "{value}");
        assert_eq!(Cursor::new(&out, 0).compact_int().unwrap(), value);
    }
}

#[test]
fn invalid_watermarks_are_not_written() {
    let mut backwards = golden_watermark();
    backwards.upper_time_bound = backwards.lower_time_bound - 1;
    assert!(matches!(
        backwards.encode(),
        Err(WatermarkEncodeError::TimeBounds { .. })
    ));
    let mut empty_range = golden_watermark();
    empty_range.stream_cut[0].0.range_high = 0.0;
    assert!(matches!(
        empty_range.encode(),
        Err(WatermarkEncodeError::Segment(_))
    ));
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for length in 0..400 {
        let data: Vec<u8> = (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8 & if length % 3 == 0 { 0x03 } else { 0xFF }
            })
            .collect();
        let _ = Watermark::decode(&data);
    }
}

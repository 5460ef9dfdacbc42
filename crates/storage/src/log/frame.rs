//! The byte layout of log files and frames (documented in docs/formats/durable-log.md).
//!
//! A log file is a 32-byte file header followed by frames. A frame is a 32-byte header and a
//! payload holding `record_count` records, each a u32 length and its bytes. All integers are
//! little-endian; checksums are CRC32C.

use bytes::BufMut;

use crate::codec::{DecodeError, Reader, WriteExt};

pub const FILE_MAGIC: [u8; 8] = *b"PRVHLOG\0";
pub const FILE_HEADER_LEN: usize = 32;
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"PFRM");
pub const FRAME_HEADER_LEN: usize = 32;
/// The frame format version: the only one written and read (a frame with another version has a
/// bad header).
pub const FRAME_FORMAT_VERSION: u16 = 1;
/// The file format version written. Version 2 files may be preallocated: zeros from the end of
/// their last frame to the end of the file are unused space, not a torn write.
pub const FILE_FORMAT_VERSION: u16 = 2;
/// The oldest file format version still read (version 1: the file ends with its last frame).
pub const FILE_FORMAT_VERSION_MIN: u16 = 1;
/// Frame payloads larger than this are refused before any allocation.
pub const MAX_FRAME_PAYLOAD: u32 = 256 << 20;

/// The header at the start of every log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// The sequence number of the first record in the file (also the file's name).
    pub first_sequence: u64,
    /// The file format version ([`FILE_FORMAT_VERSION`] for every file written).
    pub version: u16,
}

impl FileHeader {
    /// The header of a new file, in the current version.
    pub fn new(first_sequence: u64) -> Self {
        Self {
            first_sequence,
            version: FILE_FORMAT_VERSION,
        }
    }

    /// Whether zeros after the file's last frame are unused space (preallocation).
    pub fn may_be_preallocated(&self) -> bool {
        self.version >= 2
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_slice(&FILE_MAGIC);
        out.put_u16_le(self.version);
        out.put_u16_le(0);
        out.put_u32_le(0);
        out.put_u64_le(self.first_sequence);
        out.put_u32_le(0);
        let crc = crc32c::crc32c(&out[start..]);
        out.put_u32_le(crc);
    }

    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(input);
        let magic = reader.take(8)?;
        if magic != FILE_MAGIC {
            return Err(reader.invalid("not a Pravaha log file (bad magic)"));
        }
        let version = reader.u16()?;
        reader.take(6)?;
        let first_sequence = reader.u64()?;
        reader.take(4)?;
        let stored_crc = reader.u32()?;
        if crc32c::crc32c(&input[..FILE_HEADER_LEN - 4]) != stored_crc {
            return Err(DecodeError::Invalid {
                offset: 0,
                reason: "file header checksum mismatch".into(),
            });
        }
        if !(FILE_FORMAT_VERSION_MIN..=FILE_FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::Invalid {
                offset: 8,
                reason: format!(
                    "unsupported log file format version {version} (this build reads versions \
                     {FILE_FORMAT_VERSION_MIN} to {FILE_FORMAT_VERSION})"
                ),
            });
        }
        Ok(Self {
            first_sequence,
            version,
        })
    }
}

/// A frame's header, as decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub payload_length: u32,
    pub record_count: u32,
    pub first_sequence: u64,
    pub payload_crc: u32,
}

/// Appends one frame holding `records` to `out`.
pub fn encode_frame<R: AsRef<[u8]>>(out: &mut Vec<u8>, first_sequence: u64, records: &[R]) {
    let header_start = out.len();
    out.resize(header_start + FRAME_HEADER_LEN, 0);
    for record in records {
        out.put_len_bytes(record.as_ref());
    }
    let payload = &out[header_start + FRAME_HEADER_LEN..];
    let payload_length = u32::try_from(payload.len()).expect("frame payload over 4 GiB");
    assert!(
        payload_length <= MAX_FRAME_PAYLOAD,
        "frame payload over the limit"
    );
    let payload_crc = crc32c::crc32c(payload);
    let mut header = Vec::with_capacity(FRAME_HEADER_LEN);
    header.put_u32_le(FRAME_MAGIC);
    header.put_u16_le(FRAME_FORMAT_VERSION);
    header.put_u16_le(0);
    header.put_u32_le(payload_length);
    header.put_count(records.len());
    header.put_u64_le(first_sequence);
    header.put_u32_le(payload_crc);
    let header_crc = crc32c::crc32c(&header);
    header.put_u32_le(header_crc);
    out[header_start..header_start + FRAME_HEADER_LEN].copy_from_slice(&header);
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer bytes remain than the header or the announced payload needs.
    Incomplete,
    /// The header is complete but fails its magic, checksum or version.
    BadHeader,
    /// The payload is complete but fails its checksum or record layout.
    BadPayload,
}

/// Decodes the frame at the start of `input`: its header and its records (as sub-slices).
pub fn decode_frame(input: &[u8]) -> Result<(FrameHeader, Vec<&[u8]>), FrameFault> {
    let header = decode_frame_header(input)?;
    let payload_end = FRAME_HEADER_LEN + header.payload_length as usize;
    if input.len() < payload_end {
        return Err(FrameFault::Incomplete);
    }
    let payload = &input[FRAME_HEADER_LEN..payload_end];
    if crc32c::crc32c(payload) != header.payload_crc {
        return Err(FrameFault::BadPayload);
    }
    let mut reader = Reader::new(payload);
    let mut records = Vec::with_capacity((header.record_count as usize).min(payload.len() / 4));
    for _ in 0..header.record_count {
        records.push(reader.bytes().map_err(|_| FrameFault::BadPayload)?);
    }
    if !reader.is_empty() {
        return Err(FrameFault::BadPayload);
    }
    Ok((header, records))
}

/// Decodes and checks a frame header alone (recovery uses it to learn a bad frame's extent).
pub(super) fn decode_frame_header(input: &[u8]) -> Result<FrameHeader, FrameFault> {
    if input.len() < FRAME_HEADER_LEN {
        return Err(FrameFault::Incomplete);
    }
    let header = &input[..FRAME_HEADER_LEN];
    let mut reader = Reader::new(header);
    let field = |result: Result<u64, DecodeError>| result.map_err(|_| FrameFault::BadHeader);
    let magic = field(reader.u32().map(u64::from))?;
    let version = field(reader.u16().map(u64::from))?;
    field(reader.u16().map(u64::from))?;
    let payload_length = field(reader.u32().map(u64::from))?;
    let record_count = field(reader.u32().map(u64::from))?;
    let first_sequence = field(reader.u64())?;
    let payload_crc = field(reader.u32().map(u64::from))?;
    let header_crc = field(reader.u32().map(u64::from))?;
    let valid = magic == u64::from(FRAME_MAGIC)
        && u64::from(crc32c::crc32c(&header[..FRAME_HEADER_LEN - 4])) == header_crc
        && version == u64::from(FRAME_FORMAT_VERSION)
        && payload_length <= u64::from(MAX_FRAME_PAYLOAD);
    if !valid {
        return Err(FrameFault::BadHeader);
    }
    Ok(FrameHeader {
        payload_length: u32::try_from(payload_length).map_err(|_| FrameFault::BadHeader)?,
        record_count: u32::try_from(record_count).map_err(|_| FrameFault::BadHeader)?,
        first_sequence,
        payload_crc: u32::try_from(payload_crc).map_err(|_| FrameFault::BadHeader)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Golden frame, version 1: two records "ab" and "c" starting at sequence 7.
    const GOLDEN_FRAME_V1: &str = concat!(
        "5046524d",         // magic "PFRM"
        "0100",             // version 1
        "0000",             // flags
        "0b000000",         // payload length 11
        "02000000",         // record count 2
        "0700000000000000", // first sequence 7
        "1b65cab4",         // payload crc32c
        "9af614e2",         // header crc32c
        "02000000",
        "6162", // record "ab"
        "01000000",
        "63", // record "c"
    );

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    #[test]
    fn golden_frame_v1() {
        let mut out = Vec::new();
        encode_frame(&mut out, 7, &[b"ab".as_slice(), b"c".as_slice()]);
        assert_eq!(hex(&out), GOLDEN_FRAME_V1);
        let (header, records) = decode_frame(&out).unwrap();
        assert_eq!(header.first_sequence, 7);
        assert_eq!(records, vec![b"ab".as_slice(), b"c".as_slice()]);
    }

    /// Version 1 file header for first sequence 42: still read, no longer written.
    const GOLDEN_FILE_HEADER_V1: &str = concat!(
        "505256484c4f4700", // magic "PRVHLOG\0"
        "0100",             // version 1
        "0000",             // reserved
        "00000000",         // reserved
        "2a00000000000000", // first sequence 42
        "00000000",         // reserved
        "f6f46030",         // header crc32c
    );

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn golden_file_header_v1() {
        let header = FileHeader::decode(&unhex(GOLDEN_FILE_HEADER_V1)).unwrap();
        assert_eq!(header.first_sequence, 42);
        assert_eq!(header.version, 1);
        assert!(!header.may_be_preallocated());
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(hex(&out), GOLDEN_FILE_HEADER_V1);
    }

    #[test]
    fn golden_file_header_v2() {
        let mut out = Vec::new();
        FileHeader::new(42).encode(&mut out);
        assert_eq!(
            hex(&out),
            concat!(
                "505256484c4f4700", // magic "PRVHLOG\0"
                "0200",             // version 2
                "0000",             // reserved
                "00000000",         // reserved
                "2a00000000000000", // first sequence 42
                "00000000",         // reserved
                "31eca469",         // header crc32c
            )
        );
        let header = FileHeader::decode(&out).unwrap();
        assert_eq!((header.first_sequence, header.version), (42, 2));
        assert!(header.may_be_preallocated());
    }

    #[test]
    fn unknown_file_versions_are_refused_with_the_versions_read() {
        for version in [0_u16, 3, 0xffff] {
            let mut out = Vec::new();
            FileHeader {
                first_sequence: 1,
                version,
            }
            .encode(&mut out);
            let error = FileHeader::decode(&out).unwrap_err().to_string();
            assert!(error.contains(&format!("version {version}")), "{error}");
            assert!(error.contains("reads versions 1 to 2"), "{error}");
        }
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let mut out = Vec::new();
        encode_frame(&mut out, 1, &[b"hello".as_slice(), b"world".as_slice()]);
        for cut in 0..out.len() {
            assert_eq!(
                decode_frame(&out[..cut]),
                Err(FrameFault::Incomplete),
                "cut {cut}"
            );
        }
    }

    proptest! {
        #[test]
        fn frames_round_trip(
            first in any::<u64>(),
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        ) {
            let mut out = Vec::new();
            encode_frame(&mut out, first, &records);
            let (header, decoded) = decode_frame(&out).unwrap();
            prop_assert_eq!(header.first_sequence, first);
            prop_assert_eq!(decoded, records.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }

        #[test]
        fn any_single_bit_flip_is_detected(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..4),
            bit in any::<proptest::sample::Index>(),
        ) {
            let mut out = Vec::new();
            encode_frame(&mut out, 3, &records);
            let bit = bit.index(out.len() * 8);
            out[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_frame(&out).is_err());
        }

        #[test]
        fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_frame(&input);
            let _ = FileHeader::decode(&input);
        }
    }
}

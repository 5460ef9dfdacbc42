//! Pravega's serialization of a watermark, as the controller writes it into a stream's mark
//! stream `_MARK<stream>` and as readers decode it (Pravega's `io.pravega.shared.watermarks`
//! `Watermark` and `SegmentWithRange` through its `VersionedSerializer`).
//!
//! Layout (big-endian, as Java's `DataOutput`; docs/formats/controller-metadata.md, "Mark
//! streams"): a one-byte serializer format (0), a one-byte object version (0), a one-byte count
//! of revisions, then per revision its one-byte id and an `i32` length of its fields. Revision 0
//! of a watermark holds `lower_time_bound: i64`, `upper_time_bound: i64` and the stream cut as a
//! map (compact-int count, then per entry a nested `SegmentWithRange` object — the same header,
//! then `segment_id: i64`, `range_low: f64`, `range_high: f64` — and the offset as `i64`).
//!
//! Decoding follows Pravega's rules for forward compatibility: bytes a revision holds beyond the
//! fields known here are skipped, and so are revisions after the known ones. Decoders never
//! panic: every read is bounds-checked and fails with the offset, the bytes needed and the bytes
//! available.

use std::fmt;

/// The serializer's own format byte, first in every object (Pravega's `SERIALIZER_VERSION`).
pub const SERIALIZER_FORMAT: u8 = 0;
/// The object version written and the only one read.
pub const OBJECT_VERSION: u8 = 0;
/// The prefix of every mark stream's name: `_MARK<stream>` holds `<stream>`'s watermarks.
pub const MARK_STREAM_PREFIX: &str = "_MARK";

/// Bytes of a `SegmentWithRange` revision 0: id, low, high.
const SEGMENT_FIELDS_LEN: usize = 8 + 8 + 8;
/// Bytes of an object header before its fields: format, version, revision count, revision
/// id, revision length.
const HEADER_LEN: usize = 1 + 1 + 1 + 1 + 4;
/// The least bytes one stream-cut entry takes (a segment object and its offset); bounds a
/// declared count before anything is allocated.
const MIN_ENTRY_LEN: usize = HEADER_LEN + SEGMENT_FIELDS_LEN + 8;
/// Compact ints hold values below 2^30.
const COMPACT_INT_MAX: usize = (1 << 30) - 1;

/// The mark stream of `stream`: `_MARK<stream>` in the same scope.
///
/// ```
/// assert_eq!(pravaha_types::watermark::mark_stream("orders"), "_MARKorders");
/// ```
pub fn mark_stream(stream: &str) -> String {
    format!("{MARK_STREAM_PREFIX}{stream}")
}

/// A segment and its key range `[range_low, range_high)`, as a watermark's stream cut names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentWithRange {
    pub segment_id: i64,
    pub range_low: f64,
    pub range_high: f64,
}

impl SegmentWithRange {
    /// Whether the two key ranges share a point.
    pub fn overlaps(&self, other: &SegmentWithRange) -> bool {
        other.range_low < self.range_high && other.range_high > self.range_low
    }
}

/// A watermark: every active writer had written every event with an event time below
/// `lower_time_bound` by the positions of `stream_cut`, and none had noted a time above
/// `upper_time_bound`.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub lower_time_bound: i64,
    pub upper_time_bound: i64,
    /// Segment → offset, in the order written (segment id order when we write).
    pub stream_cut: Vec<(SegmentWithRange, i64)>,
}

/// Why bytes are not a watermark.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatermarkFormatError {
    #[error(
        "watermark ends early at offset {offset}: {needed} bytes needed, {available} available"
    )]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("unknown serializer format {found} at offset {offset} (only 0 exists)")]
    UnknownFormat { offset: usize, found: u8 },
    #[error("{object} version {found} at offset {offset} is not supported (only 0)")]
    UnsupportedVersion {
        object: &'static str,
        offset: usize,
        found: u8,
    },
    #[error("{object} at offset {offset}: {message}")]
    Invalid {
        object: &'static str,
        offset: usize,
        message: String,
    },
}

/// Why a watermark cannot be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatermarkEncodeError {
    #[error("upper time bound {upper} is below lower time bound {lower}")]
    TimeBounds { lower: i64, upper: i64 },
    #[error("segment {0:?} has a negative id or an empty or out-of-range key range")]
    Segment(SegmentWithRange),
    #[error("a stream cut of {0} segments is more than the format can count")]
    TooManySegments(usize),
}

impl fmt::Display for SegmentWithRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}, {})",
            self.segment_id, self.range_low, self.range_high
        )
    }
}

impl Watermark {
    /// Pravega's serialization of this watermark (what one mark-stream event holds).
    ///
    /// ```
    /// use pravaha_types::watermark::{SegmentWithRange, Watermark};
    ///
    /// let mark = Watermark {
    ///     lower_time_bound: 10,
    ///     upper_time_bound: 20,
    ///     stream_cut: vec![(SegmentWithRange { segment_id: 0, range_low: 0.0, range_high: 1.0 }, 42)],
    /// };
    /// let bytes = mark.encode().unwrap();
    /// assert_eq!(&bytes[..4], &[0, 0, 1, 0]); // format, version, one revision, revision 0
    /// assert_eq!(Watermark::decode(&bytes).unwrap(), mark);
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, WatermarkEncodeError> {
        if self.upper_time_bound < self.lower_time_bound {
            return Err(WatermarkEncodeError::TimeBounds {
                lower: self.lower_time_bound,
                upper: self.upper_time_bound,
            });
        }
        if self.stream_cut.len() > COMPACT_INT_MAX {
            return Err(WatermarkEncodeError::TooManySegments(self.stream_cut.len()));
        }
        let mut fields = Vec::with_capacity(24 + self.stream_cut.len() * MIN_ENTRY_LEN);
        fields.extend_from_slice(&self.lower_time_bound.to_be_bytes());
        fields.extend_from_slice(&self.upper_time_bound.to_be_bytes());
        put_compact_int(&mut fields, self.stream_cut.len());
        for (segment, offset) in &self.stream_cut {
            if !segment_is_valid(segment) {
                return Err(WatermarkEncodeError::Segment(*segment));
            }
            let mut segment_fields = [0u8; SEGMENT_FIELDS_LEN];
            segment_fields[..8].copy_from_slice(&segment.segment_id.to_be_bytes());
            segment_fields[8..16].copy_from_slice(&segment.range_low.to_bits().to_be_bytes());
            segment_fields[16..].copy_from_slice(&segment.range_high.to_bits().to_be_bytes());
            put_object(&mut fields, &segment_fields);
            fields.extend_from_slice(&offset.to_be_bytes());
        }
        let mut out = Vec::with_capacity(HEADER_LEN + fields.len());
        put_object(&mut out, &fields);
        Ok(out)
    }

    /// Reads a watermark from Pravega's serialization; bytes after it are ignored (as Pravega
    /// does).
    pub fn decode(data: &[u8]) -> Result<Self, WatermarkFormatError> {
        let mut cursor = Cursor::new(data, 0);
        let mut fields = cursor.object("watermark")?;
        let lower_time_bound = fields.i64()?;
        let upper_time_bound = fields.i64()?;
        if upper_time_bound < lower_time_bound {
            return Err(fields.invalid(
                "watermark",
                format!("upper time bound {upper_time_bound} is below lower time bound {lower_time_bound}"),
            ));
        }
        let count = fields.compact_int()?;
        if count.saturating_mul(MIN_ENTRY_LEN) > fields.remaining() {
            return Err(fields.invalid(
                "watermark",
                format!(
                    "a stream cut of {count} segments does not fit in the {} bytes left",
                    fields.remaining()
                ),
            ));
        }
        let mut stream_cut = Vec::with_capacity(count);
        for _ in 0..count {
            let mut segment_fields = fields.object("segment with range")?;
            let at = segment_fields.offset();
            let segment = SegmentWithRange {
                segment_id: segment_fields.i64()?,
                range_low: f64::from_bits(segment_fields.u64()?),
                range_high: f64::from_bits(segment_fields.u64()?),
            };
            if !segment_is_valid(&segment) {
                return Err(WatermarkFormatError::Invalid {
                    object: "segment with range",
                    offset: at,
                    message: format!("{segment} has a negative id or a bad key range"),
                });
            }
            stream_cut.push((segment, fields.i64()?));
        }
        Ok(Self {
            lower_time_bound,
            upper_time_bound,
            stream_cut,
        })
    }
}

/// Pravega's preconditions on a `SegmentWithRange`.
fn segment_is_valid(segment: &SegmentWithRange) -> bool {
    segment.segment_id >= 0
        && segment.range_low >= 0.0
        && segment.range_high <= 1.0
        && segment.range_low < segment.range_high
}

/// Writes an object's header (one revision, 0) and its revision-0 fields.
fn put_object(out: &mut Vec<u8>, fields: &[u8]) {
    let length = i32::try_from(fields.len()).expect("a watermark is far below 2 GiB");
    out.extend_from_slice(&[SERIALIZER_FORMAT, OBJECT_VERSION, 1, 0]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(fields);
}

/// Pravega's compact int: one byte below 2^7, two (high bits 10) below 2^14, else four (high
/// bits 11). `value` is at most `COMPACT_INT_MAX` (checked by the caller).
fn put_compact_int(out: &mut Vec<u8>, value: usize) {
    let value = u32::try_from(value).expect("checked against COMPACT_INT_MAX");
    if value < 0x80 {
        out.push(value as u8);
    } else if value < 0x4000 {
        out.extend_from_slice(&((value as u16) | 0x8000).to_be_bytes());
    } else {
        out.extend_from_slice(&(value | 0xC000_0000).to_be_bytes());
    }
}

/// A bounds-checked reader over `data`, reporting offsets relative to the whole input.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], base: usize) -> Self {
        Self { data, at: 0, base }
    }

    fn offset(&self) -> usize {
        self.base + self.at
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.at
    }

    fn take(&mut self, needed: usize) -> Result<&'a [u8], WatermarkFormatError> {
        if self.remaining() < needed {
            return Err(WatermarkFormatError::Truncated {
                offset: self.offset(),
                needed,
                available: self.remaining(),
            });
        }
        let bytes = &self.data[self.at..self.at + needed];
        self.at += needed;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, WatermarkFormatError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WatermarkFormatError> {
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn i64(&mut self) -> Result<i64, WatermarkFormatError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, WatermarkFormatError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn compact_int(&mut self) -> Result<usize, WatermarkFormatError> {
        let first = self.u8()?;
        let value = match first >> 6 {
            0 | 1 => u32::from(first),
            2 => u32::from(u16::from_be_bytes([first & 0x3F, self.u8()?])),
            _ => {
                let rest: [u8; 3] = self.array()?;
                u32::from_be_bytes([first & 0x3F, rest[0], rest[1], rest[2]])
            }
        };
        Ok(value as usize)
    }

    fn invalid(&self, object: &'static str, message: String) -> WatermarkFormatError {
        WatermarkFormatError::Invalid {
            object,
            offset: self.offset(),
            message,
        }
    }

    /// Reads a versioned object's header and returns a cursor over its revision-0 fields,
    /// leaving this cursor after the whole object (later revisions skipped).
    fn object(&mut self, object: &'static str) -> Result<Cursor<'a>, WatermarkFormatError> {
        let format_at = self.offset();
        let format = self.u8()?;
        if format != SERIALIZER_FORMAT {
            return Err(WatermarkFormatError::UnknownFormat {
                offset: format_at,
                found: format,
            });
        }
        let version_at = self.offset();
        let version = self.u8()?;
        if version != OBJECT_VERSION {
            return Err(WatermarkFormatError::UnsupportedVersion {
                object,
                offset: version_at,
                found: version,
            });
        }
        let count_at = self.offset();
        let revisions = self.u8()?;
        if revisions == 0 || revisions > 127 {
            return Err(WatermarkFormatError::Invalid {
                object,
                offset: count_at,
                message: format!("{} revisions; revision 0 is required", revisions as i8),
            });
        }
        let mut first = None;
        for index in 0..revisions {
            let revision_at = self.offset();
            let revision = self.u8()?;
            if index == 0 && revision != 0 {
                return Err(WatermarkFormatError::Invalid {
                    object,
                    offset: revision_at,
                    message: format!("first revision is {revision}, not 0"),
                });
            }
            let length_at = self.offset();
            let length = i32::from_be_bytes(self.array()?);
            let length = usize::try_from(length).map_err(|_| WatermarkFormatError::Invalid {
                object,
                offset: length_at,
                message: format!("negative revision length {length}"),
            })?;
            let fields_at = self.offset();
            let fields = self.take(length)?;
            if index == 0 {
                first = Some(Cursor::new(fields, fields_at));
            }
        }
        Ok(first.expect("revisions > 0"))
    }
}

#[cfg(test)]
mod tests;

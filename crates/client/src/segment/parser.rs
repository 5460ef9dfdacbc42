//! [`EventParser`]: whole events out of consecutive reads of an event segment.
//!
//! An event segment is a concatenation of records `[type 0: i32][length: i32][payload]`,
//! big-endian (docs/formats/wire-protocol.md, "Append data"). Reads cut records anywhere, so the
//! parser keeps the bytes of a started record until the rest arrives. Whole records inside one
//! read are returned as slices of it (no copy); only a record split across reads is copied.

use bytes::{Buf, Bytes, BytesMut};
use pravaha_wire as wire;

use super::reader::SegmentRead;

/// The default largest event accepted: 1 GiB, the largest event a Pravega writer can write
/// (large events are merged into the segment as one record).
pub const DEFAULT_MAX_EVENT_LEN: usize = 1 << 30;

/// One event: its payload, and the offset of its record (header included) in the segment.
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::segment::{frame_event, Event, EventParser};
///
/// let mut parser = EventParser::new(100);
/// parser.push(100, frame_event(b"order 17"))?;
/// let event = parser.next_event()?.expect("one whole event");
/// assert_eq!(event, Event { offset: 100, payload: Bytes::from_static(b"order 17") });
/// # Ok::<(), pravaha_client::segment::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub offset: i64,
    pub payload: Bytes,
}

/// Bytes that are not a sequence of event records.
///
/// ```
/// use bytes::Bytes;
/// use pravaha_client::segment::{EventParser, ParseError};
///
/// let mut parser = EventParser::new(0);
/// // Raw bytes, not event records: the first 4 bytes are not event type 0.
/// parser.push(0, Bytes::from_static(b"plain text, no framing"))?;
/// assert_eq!(
///     parser.next_event(),
///     Err(ParseError::Corrupt { offset: 0, type_code: i32::from_be_bytes(*b"plai") })
/// );
/// // Data must continue where the previous data ended.
/// assert_eq!(
///     parser.push(5, Bytes::from_static(b"x")),
///     Err(ParseError::Discontinuous { expected: 22, got: 5 })
/// );
/// # Ok::<(), ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A record whose type is not Event (0): corrupt data, a position that is not a record
    /// boundary, or a segment that holds raw bytes.
    #[error("the record at offset {offset} has type {type_code}, not an event")]
    Corrupt { offset: i64, type_code: i32 },
    /// A record length that is negative or above the parser's limit.
    #[error("the event at offset {offset} announces {length} bytes, outside 0..={limit}")]
    BadLength {
        offset: i64,
        length: i64,
        limit: usize,
    },
    /// Data pushed at an offset other than where the previous data ended.
    #[error("data at offset {got} does not continue at offset {expected}")]
    Discontinuous { expected: i64, got: i64 },
}

/// Turns consecutive reads of an event segment into whole events.
///
/// Push data in segment order ([`Self::push`] or [`Self::push_read`]), then take events with
/// [`Self::next_event`] until it returns `None` (the rest is an incomplete record, kept until
/// more data arrives). An error is final: the parser keeps returning it.
///
/// ```
/// use bytes::{BufMut, Bytes, BytesMut};
/// use pravaha_client::segment::{frame_event, EventParser};
///
/// let mut segment = BytesMut::new();
/// segment.put(frame_event(b"first"));
/// segment.put(frame_event(b"second"));
/// let segment = segment.freeze();
///
/// // Reads may cut a record anywhere: here inside the second one.
/// let mut parser = EventParser::new(0);
/// parser.push(0, segment.slice(..20))?;
/// let first = parser.next_event()?.expect("the first event is whole");
/// assert_eq!((first.offset, &first.payload[..]), (0, &b"first"[..]));
/// assert_eq!(parser.next_event()?, None); // the rest of "second" is still to come
/// assert_eq!((parser.position(), parser.next_offset()), (13, 20));
///
/// parser.push(20, segment.slice(20..))?;
/// let second = parser.next_event()?.expect("the second event is whole now");
/// assert_eq!((second.offset, &second.payload[..]), (13, &b"second"[..]));
/// assert_eq!(parser.buffered(), 0);
/// # Ok::<(), pravaha_client::segment::ParseError>(())
/// ```
#[derive(Debug)]
pub struct EventParser {
    /// Segment offset of the first byte not yet returned in an event.
    position: i64,
    /// The start of a record begun in earlier data (copied), followed by `current`.
    partial: BytesMut,
    /// Data pushed last, not yet parsed.
    current: Bytes,
    max_event_len: usize,
    error: Option<ParseError>,
}

impl EventParser {
    /// A parser whose first record starts at segment offset `offset`.
    pub fn new(offset: i64) -> Self {
        Self::with_max_event_len(offset, DEFAULT_MAX_EVENT_LEN)
    }

    /// Like [`Self::new`], refusing records longer than `max_event_len` bytes: the bytes of one
    /// record are buffered whole, so this bounds the parser's memory.
    pub fn with_max_event_len(offset: i64, max_event_len: usize) -> Self {
        Self {
            position: offset,
            partial: BytesMut::new(),
            current: Bytes::new(),
            max_event_len,
            error: None,
        }
    }

    /// The offset after the last event returned: where a reader resumes (a record boundary).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The offset where the next data must start (after everything pushed).
    pub fn next_offset(&self) -> i64 {
        self.position + self.buffered() as i64
    }

    /// Bytes pushed and not yet returned in an event.
    pub fn buffered(&self) -> usize {
        self.partial.len() + self.current.len()
    }

    /// Appends `data`, read at segment offset `offset`, which must be [`Self::next_offset`].
    pub fn push(&mut self, offset: i64, data: Bytes) -> Result<(), ParseError> {
        let expected = self.next_offset();
        if offset != expected {
            return Err(ParseError::Discontinuous {
                expected,
                got: offset,
            });
        }
        if data.is_empty() {
            return Ok(());
        }
        if !self.current.is_empty() {
            let rest = std::mem::take(&mut self.current);
            self.partial.extend_from_slice(&rest);
        }
        self.current = data;
        Ok(())
    }

    /// Appends the data of a read.
    pub fn push_read(&mut self, read: &SegmentRead) -> Result<(), ParseError> {
        self.push(read.offset, read.data.clone())
    }

    /// The next whole event, or `None` until more data is pushed.
    pub fn next_event(&mut self) -> Result<Option<Event>, ParseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = if self.partial.is_empty() {
            self.parse_current()
        } else {
            self.parse_partial()
        };
        if let Err(error) = &result {
            self.error = Some(error.clone());
        }
        result
    }

    /// A record that starts in `current`: sliced out if whole, else kept in `partial`.
    fn parse_current(&mut self) -> Result<Option<Event>, ParseError> {
        let Some(header) = self.current.first_chunk::<{ wire::HEADER_LEN }>() else {
            self.stash(0);
            return Ok(None);
        };
        let record_len = wire::HEADER_LEN + self.payload_len(header)?;
        if self.current.len() < record_len {
            self.stash(record_len);
            return Ok(None);
        }
        let record = self.current.split_to(record_len);
        Ok(Some(self.emit(&record)))
    }

    /// A record that starts in `partial`: completed from `current` as far as it goes.
    fn parse_partial(&mut self) -> Result<Option<Event>, ParseError> {
        self.fill_partial(wire::HEADER_LEN);
        let Some(header) = self.partial.first_chunk::<{ wire::HEADER_LEN }>() else {
            return Ok(None);
        };
        let record_len = wire::HEADER_LEN + self.payload_len(header)?;
        self.fill_partial(record_len);
        if self.partial.len() < record_len {
            return Ok(None);
        }
        let record = self.partial.split_to(record_len).freeze();
        Ok(Some(self.emit(&record)))
    }

    fn emit(&mut self, record: &Bytes) -> Event {
        let event = Event {
            offset: self.position,
            payload: record.slice(wire::HEADER_LEN..),
        };
        self.position += record.len() as i64;
        event
    }

    /// Validates a record header and returns its payload length.
    fn payload_len(&self, header: &[u8; wire::HEADER_LEN]) -> Result<usize, ParseError> {
        let type_code = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let length = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if type_code != wire::EVENT_TYPE {
            return Err(ParseError::Corrupt {
                offset: self.position,
                type_code,
            });
        }
        usize::try_from(length)
            .ok()
            .filter(|length| *length <= self.max_event_len)
            .ok_or(ParseError::BadLength {
                offset: self.position,
                length: i64::from(length),
                limit: self.max_event_len,
            })
    }

    /// Moves `current` into `partial`, with room for a record of `record_len` bytes.
    fn stash(&mut self, record_len: usize) {
        self.partial.reserve(
            record_len
                .saturating_sub(self.partial.len())
                .max(self.current.len()),
        );
        self.partial.extend_from_slice(&self.current);
        self.current = Bytes::new();
    }

    /// Moves bytes from `current` until `partial` holds `wanted` bytes (or `current` is empty).
    fn fill_partial(&mut self, wanted: usize) {
        let missing = wanted.saturating_sub(self.partial.len());
        let taken = missing.min(self.current.len());
        if taken > 0 {
            self.partial.reserve(missing);
            self.partial.extend_from_slice(&self.current[..taken]);
            self.current.advance(taken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::frame_event;
    use bytes::BufMut;

    fn events(payloads: &[&[u8]]) -> Vec<u8> {
        payloads
            .iter()
            .flat_map(|p| frame_event(p).to_vec())
            .collect()
    }

    fn drain(parser: &mut EventParser) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(event) = parser.next_event().unwrap() {
            out.push(event);
        }
        out
    }

    #[test]
    fn whole_events_in_one_read_are_slices_of_it() {
        let data = Bytes::from(events(&[b"one", b"", b"three"]));
        let mut parser = EventParser::new(100);
        parser.push(100, data.clone()).unwrap();
        let parsed = drain(&mut parser);
        let payloads: Vec<&[u8]> = parsed.iter().map(|e| &e.payload[..]).collect();
        assert_eq!(payloads, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(
            parsed.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [100, 111, 119]
        );
        assert_eq!(parser.position(), 100 + data.len() as i64);
        assert_eq!(parser.buffered(), 0);
        // No copy: the payload points into the read.
        assert_eq!(parsed[0].payload.as_ptr(), data[8..].as_ptr());
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let payloads: [&[u8]; 4] = [b"alpha", b"b", b"", b"a somewhat longer payload"];
        let data = events(&payloads);
        for cut in 0..=data.len() {
            for second_cut in cut..=data.len() {
                let mut parser = EventParser::new(0);
                let mut parsed = Vec::new();
                for (start, end) in [(0, cut), (cut, second_cut), (second_cut, data.len())] {
                    let chunk = Bytes::copy_from_slice(&data[start..end]);
                    parser.push(start as i64, chunk).unwrap();
                    parsed.extend(drain(&mut parser));
                }
                let got: Vec<&[u8]> = parsed.iter().map(|e| &e.payload[..]).collect();
                assert_eq!(got, payloads, "cuts at {cut} and {second_cut}");
                assert_eq!(parser.buffered(), 0);
            }
        }
    }

    #[test]
    fn a_partial_event_waits_for_more_data() {
        let data = events(&[b"0123456789"]);
        let mut parser = EventParser::new(0);
        parser.push(0, Bytes::copy_from_slice(&data[..5])).unwrap();
        assert_eq!(parser.next_event().unwrap(), None);
        parser
            .push(5, Bytes::copy_from_slice(&data[5..12]))
            .unwrap();
        assert_eq!(parser.next_event().unwrap(), None);
        assert_eq!(parser.position(), 0);
        assert_eq!(parser.next_offset(), 12);
        parser
            .push(12, Bytes::copy_from_slice(&data[12..]))
            .unwrap();
        let event = parser.next_event().unwrap().unwrap();
        assert_eq!(&event.payload[..], b"0123456789");
        assert_eq!(parser.next_event().unwrap(), None);
    }

    #[test]
    fn pushing_twice_before_parsing_keeps_everything() {
        let data = events(&[b"first", b"second"]);
        let mut parser = EventParser::new(0);
        parser.push(0, Bytes::copy_from_slice(&data[..3])).unwrap();
        parser
            .push(3, Bytes::copy_from_slice(&data[3..20]))
            .unwrap();
        parser
            .push(20, Bytes::copy_from_slice(&data[20..]))
            .unwrap();
        let got: Vec<Bytes> = drain(&mut parser).into_iter().map(|e| e.payload).collect();
        assert_eq!(got, [Bytes::from("first"), Bytes::from("second")]);
    }

    #[test]
    fn a_bad_type_is_corruption_and_final() {
        let mut data = events(&[b"ok"]);
        data.put_i32(7);
        data.put_i32(1);
        data.put_u8(0);
        let mut parser = EventParser::new(40);
        parser.push(40, Bytes::from(data)).unwrap();
        assert_eq!(&parser.next_event().unwrap().unwrap().payload[..], b"ok");
        let corrupt = ParseError::Corrupt {
            offset: 50,
            type_code: 7,
        };
        assert_eq!(parser.next_event(), Err(corrupt.clone()));
        assert_eq!(parser.next_event(), Err(corrupt));
    }

    #[test]
    fn a_bad_type_split_across_reads_is_found_once_the_header_is_whole() {
        let mut data = Vec::new();
        data.put_i32(-2);
        data.put_i32(3);
        let mut parser = EventParser::new(0);
        parser.push(0, Bytes::copy_from_slice(&data[..6])).unwrap();
        assert_eq!(parser.next_event(), Ok(None));
        parser.push(6, Bytes::copy_from_slice(&data[6..])).unwrap();
        assert_eq!(
            parser.next_event(),
            Err(ParseError::Corrupt {
                offset: 0,
                type_code: -2
            })
        );
    }

    #[test]
    fn negative_and_oversized_lengths_are_refused_before_buffering() {
        for length in [-1, 1001] {
            let mut data = Vec::new();
            data.put_i32(0);
            data.put_i32(length);
            let mut parser = EventParser::with_max_event_len(0, 1000);
            parser.push(0, Bytes::from(data)).unwrap();
            assert_eq!(
                parser.next_event(),
                Err(ParseError::BadLength {
                    offset: 0,
                    length: i64::from(length),
                    limit: 1000
                })
            );
        }
    }

    #[test]
    fn data_must_continue_where_the_last_ended() {
        let mut parser = EventParser::new(10);
        assert_eq!(
            parser.push(11, Bytes::from_static(b"x")),
            Err(ParseError::Discontinuous {
                expected: 10,
                got: 11
            })
        );
        parser.push(10, Bytes::from_static(b"abc")).unwrap();
        assert!(parser.push(12, Bytes::from_static(b"x")).is_err());
        assert!(parser.push(13, Bytes::new()).is_ok());
    }
}

//! Frame boundaries: splitting a connection's byte stream into `(type, payload)` frames, and the
//! frames embedded in append data (Event, Padding, PartialEvent).

use bytes::{Buf, Bytes, BytesMut};

use crate::codec::Reader;
use crate::{WireError, HEADER_LEN};

/// An event record: `[0:i32][length:i32][payload]`, inside append data and stored segments.
pub const EVENT_TYPE: i32 = 0;
/// Zero bytes that fill the rest of an AppendBlock body; skipped.
pub const PADDING_TYPE: i32 = -1;
/// The first part of an event whose rest follows in the AppendBlockEnd `data`.
pub const PARTIAL_EVENT_TYPE: i32 = -2;

/// Type code used in errors about an AppendBlock body.
const APPEND_BLOCK_TYPE: i32 = 3;

/// Splits the next frame off the front of `buf`.
///
/// Returns `Ok(None)` while fewer than 8 header bytes, or fewer than the announced payload bytes,
/// are buffered; in the second case it reserves room for the rest of the frame (bounded by
/// `limit`). A negative length or one above `limit` is refused before anything is reserved.
/// On success the frame is removed from `buf` and its payload returned without the header.
pub fn split_frame(buf: &mut BytesMut, limit: usize) -> Result<Option<(i32, Bytes)>, WireError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let type_code = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let announced = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let length = usize::try_from(announced)
        .ok()
        .filter(|length| *length <= limit)
        .ok_or(WireError::FrameTooLarge {
            type_code,
            length: i64::from(announced),
            limit,
        })?;
    let frame_length = HEADER_LEN + length;
    if buf.len() < frame_length {
        if buf.capacity() < frame_length {
            // Room for exactly this frame. `BytesMut::reserve` grows the whole allocation,
            // which may still hold frames already split off before this one, so what it
            // reserves is not bounded by `limit`.
            let mut room = BytesMut::with_capacity(frame_length);
            room.extend_from_slice(buf);
            *buf = room;
        }
        return Ok(None);
    }
    let mut frame = buf.split_to(frame_length);
    frame.advance(HEADER_LEN);
    Ok(Some((type_code, frame.freeze())))
}

/// Splits an AppendBlock body the way Java's `AppendDecoder` does once the matching
/// AppendBlockEnd arrives.
///
/// The first `size_of_whole_events` bytes are complete event records, returned as they are.
/// If bytes remain, they must start with exactly one embedded frame: a PartialEvent, whose
/// payload is returned as the fragment (the rest of that event is the AppendBlockEnd `data`),
/// or Padding, which is dropped (`None`; Java then requires the AppendBlockEnd `data` to be
/// empty). Anything after that embedded frame is ignored, as Java does. No remaining bytes
/// gives `None` too; note that Java then ignores the AppendBlockEnd `data` entirely.
pub fn split_append_block(
    body: &Bytes,
    size_of_whole_events: usize,
) -> Result<(Bytes, Option<Bytes>), WireError> {
    let mut reader = Reader::new(APPEND_BLOCK_TYPE, body.clone());
    let whole_events = reader.take(size_of_whole_events, "size_of_whole_events")?;
    if reader.remaining() == 0 {
        return Ok((whole_events, None));
    }
    let at = reader.offset();
    let embedded_type = reader.i32("embedded_type")?;
    let length = reader.length("embedded_length")?;
    let payload = reader.take(length, "embedded_payload")?;
    match embedded_type {
        PARTIAL_EVENT_TYPE => Ok((whole_events, Some(payload))),
        PADDING_TYPE => Ok((whole_events, None)),
        _ => Err(reader.invalid_at(
            at,
            "embedded_type",
            "an append block may end only with PartialEvent or Padding",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn frame(type_code: i32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_i32(type_code);
        out.put_i32(i32::try_from(payload.len()).unwrap());
        out.put_slice(payload);
        out
    }

    #[test]
    fn split_frame_waits_for_header_then_payload() {
        let whole = frame(11, b"abcdef");
        let mut buf = BytesMut::new();
        for (index, byte) in whole.iter().enumerate() {
            assert_eq!(split_frame(&mut buf, 100), Ok(None), "after {index} bytes");
            buf.put_u8(*byte);
        }
        let (type_code, payload) = split_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!((type_code, &payload[..]), (11, &b"abcdef"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn split_frame_refuses_oversized_and_negative_lengths_before_reserving() {
        for announced in [101, -1, i32::MIN, i32::MAX] {
            let mut buf = BytesMut::with_capacity(8);
            buf.put_i32(7);
            buf.put_i32(announced);
            let capacity = buf.capacity();
            assert_eq!(
                split_frame(&mut buf, 100),
                Err(WireError::FrameTooLarge {
                    type_code: 7,
                    length: i64::from(announced),
                    limit: 100
                })
            );
            assert_eq!(buf.capacity(), capacity, "nothing reserved for {announced}");
        }
    }

    #[test]
    fn split_frame_reserves_only_the_announced_rest() {
        let mut buf = BytesMut::with_capacity(8);
        buf.put_i32(11);
        buf.put_i32(4096);
        assert_eq!(split_frame(&mut buf, 1 << 20), Ok(None));
        assert!(buf.capacity() >= HEADER_LEN + 4096);
        assert!(buf.capacity() < 4 * (HEADER_LEN + 4096));
    }

    #[test]
    fn split_frame_leaves_the_next_frame_in_place() {
        let mut buf = BytesMut::new();
        buf.put_slice(&frame(1, b"x"));
        buf.put_slice(&frame(2, b""));
        buf.put_slice(&frame(3, b"yz")[..5]);
        assert_eq!(split_frame(&mut buf, 10).unwrap().unwrap().0, 1);
        assert_eq!(
            split_frame(&mut buf, 10).unwrap().unwrap(),
            (2, Bytes::new())
        );
        assert_eq!(split_frame(&mut buf, 10), Ok(None));
        assert_eq!(buf.len(), 5);
    }

    #[test]
    fn append_block_with_partial_event() {
        let mut body = frame(EVENT_TYPE, b"one");
        let whole = body.len();
        body.extend(frame(PARTIAL_EVENT_TYPE, b"\0\0\0\0\0\0\0\x05tw"));
        let body = Bytes::from(body);
        let (events, fragment) = split_append_block(&body, whole).unwrap();
        assert_eq!(&events[..], &frame(EVENT_TYPE, b"one")[..]);
        assert_eq!(fragment.as_deref(), Some(&b"\0\0\0\0\0\0\0\x05tw"[..]));
    }

    #[test]
    fn append_block_with_padding_or_nothing_after_whole_events() {
        let mut body = frame(EVENT_TYPE, b"one");
        let whole = body.len();
        assert_eq!(
            split_append_block(&Bytes::from(body.clone()), whole).unwrap(),
            (Bytes::from(body.clone()), None)
        );
        body.extend(frame(PADDING_TYPE, &[0; 5]));
        let (events, fragment) = split_append_block(&Bytes::from(body), whole).unwrap();
        assert_eq!(events.len(), whole);
        assert_eq!(fragment, None);
    }

    #[test]
    fn append_block_errors() {
        let body = Bytes::from(frame(EVENT_TYPE, b"one"));
        assert!(matches!(
            split_append_block(&body, body.len() + 1),
            Err(WireError::Truncated { offset: 0, .. })
        ));
        // An Event frame is not allowed where the whole events end.
        assert!(matches!(
            split_append_block(&body, 0),
            Err(WireError::Invalid {
                field: "embedded_type",
                offset: 0,
                ..
            })
        ));
        let cut = Bytes::from(frame(PARTIAL_EVENT_TYPE, b"abc")[..10].to_vec());
        assert!(matches!(
            split_append_block(&cut, 0),
            Err(WireError::Truncated {
                field: "embedded_payload",
                offset: 8,
                needed: 3,
                available: 2,
                ..
            })
        ));
        let short = Bytes::from_static(&[0xff, 0xff, 0xff]);
        assert!(matches!(
            split_append_block(&short, 0),
            Err(WireError::Truncated {
                needed: 4,
                available: 3,
                ..
            })
        ));
    }
}

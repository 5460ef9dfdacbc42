//! The one error type of this crate. It describes bytes, never the domain: the server maps it to
//! "close the connection" (decoding) or "this is a bug" (encoding).

/// Why a frame could not be split, decoded or encoded.
///
/// Offsets count from the start of the frame payload (the 8-byte header excluded), or from the
/// start of the append-block body for [`crate::split_append_block`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A field runs past the end of the payload.
    #[error(
        "command type {type_code}: field `{field}` at offset {offset} needs {needed} bytes, \
         {available} available"
    )]
    Truncated {
        type_code: i32,
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A frame header announces a negative payload length or one above the limit; also returned
    /// by `encode` for a payload above [`crate::MAX_FRAME_PAYLOAD`].
    #[error("command type {type_code}: payload length {length} is outside 0..={limit}")]
    FrameTooLarge {
        type_code: i32,
        length: i64,
        limit: usize,
    },
    /// A type code that is not a command of the expected direction.
    #[error("unknown command type {0}")]
    UnknownType(i32),
    /// A value that is not allowed where it was found (bad bool byte, bad UTF-8, negative length,
    /// wrong embedded frame type, an inconsistent size field), or, when encoding, an optional
    /// trailing field set after an absent one.
    #[error("command type {type_code}: invalid field `{field}` at offset {offset}: {reason}")]
    Invalid {
        type_code: i32,
        field: &'static str,
        offset: usize,
        reason: &'static str,
    },
    /// Encoding only: a string longer than its u16 length prefix allows, or a byte field or list
    /// longer than its i32 prefix allows. Nothing is truncated; the caller must split or refuse.
    #[error("command type {type_code}: field `{field}` has length {length}, at most {limit} fits")]
    TooLong {
        type_code: i32,
        field: &'static str,
        length: usize,
        limit: usize,
    },
}

//! Bounds-checked readers and writers for Pravaha's own binary formats (log frames, operations,
//! checkpoints, table entries). All integers are little-endian. Decoding never panics: a short
//! read returns [`DecodeError`] with the offset, the bytes needed and the bytes available.

use bytes::{BufMut, Bytes};

/// A read past the end of the input, or a value that is not allowed where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated input at offset {offset}: need {needed} bytes, {available} available")]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("invalid value at offset {offset}: {reason}")]
    Invalid { offset: usize, reason: String },
}

/// Reads fields from a byte slice, tracking the offset for error messages.
pub struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, offset: 0 }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn remaining(&self) -> usize {
        self.input.len() - self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed: count,
                available: self.remaining(),
            });
        }
        let slice = &self.input[self.offset..self.offset + count];
        self.offset += count;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.offset;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(Self::invalid_at(at, format!("boolean byte {other}"))),
        }
    }

    /// A u32 length followed by that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let length = self.u32()? as usize;
        self.take(length)
    }

    /// A u32 length followed by that many bytes of UTF-8.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.offset;
        let raw = self.bytes()?;
        String::from_utf8(raw.to_vec()).map_err(|_| Self::invalid_at(at, "string is not UTF-8"))
    }

    /// A u32 element count, refused when even one byte per element could not fit in the input;
    /// this keeps garbage counts from causing large allocations.
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let at = self.offset;
        let count = self.u32()? as usize;
        if count > self.remaining() {
            return Err(Self::invalid_at(
                at,
                format!("count {count} exceeds the input"),
            ));
        }
        Ok(count)
    }

    pub fn invalid(&self, reason: impl Into<String>) -> DecodeError {
        Self::invalid_at(self.offset, reason)
    }

    fn invalid_at(offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError::Invalid {
            offset,
            reason: reason.into(),
        }
    }
}

/// Writes fields; the counterpart of [`Reader`].
pub trait WriteExt: BufMut {
    fn put_bool_le(&mut self, value: bool) {
        self.put_u8(u8::from(value));
    }

    /// Writes a u32 length and the bytes. Panics if `value` exceeds `u32::MAX` bytes, which
    /// callers rule out by their own size limits.
    fn put_len_bytes(&mut self, value: &[u8]) {
        let length = u32::try_from(value.len()).expect("field larger than 4 GiB");
        self.put_u32_le(length);
        self.put_slice(value);
    }

    fn put_count(&mut self, count: usize) {
        self.put_u32_le(u32::try_from(count).expect("more than u32::MAX elements"));
    }
}

impl<T: BufMut + ?Sized> WriteExt for T {}

/// Copies a slice read by [`Reader::bytes`] into owned [`Bytes`].
pub fn owned(slice: &[u8]) -> Bytes {
    Bytes::copy_from_slice(slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_reads_report_offset_and_sizes() {
        let mut reader = Reader::new(&[1, 0, 0]);
        assert_eq!(reader.u16().unwrap(), 1);
        assert_eq!(
            reader.u32(),
            Err(DecodeError::Truncated {
                offset: 2,
                needed: 4,
                available: 1
            })
        );
    }

    #[test]
    fn garbage_counts_are_refused_before_allocating() {
        let mut reader = Reader::new(&[0xff, 0xff, 0xff, 0x7f, 0]);
        assert!(matches!(
            reader.count(),
            Err(DecodeError::Invalid { offset: 0, .. })
        ));
    }

    #[test]
    fn strings_round_trip() {
        let mut buffer = Vec::new();
        buffer.put_len_bytes("scope/stream".as_bytes());
        buffer.put_bool_le(true);
        let mut reader = Reader::new(&buffer);
        assert_eq!(reader.string().unwrap(), "scope/stream");
        assert!(reader.bool().unwrap());
        assert!(reader.is_empty());
    }
}

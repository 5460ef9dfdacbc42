//! Bounds-checked big-endian field readers and writers, and the [`Field`] trait that maps each
//! Rust field type to its wire encoding (see docs/formats/wire-protocol.md, "Encoding rules").
//!
//! Reading never panics and never allocates more than the bytes it has already checked are
//! present: every declared length is compared with the bytes remaining first.

use bytes::{BufMut, Bytes, BytesMut};

use crate::WireError;

/// Lists are preallocated for at most this many items; longer lists grow as items are decoded,
/// so the memory used follows the bytes actually present, not the declared count.
const MAX_PREALLOCATED_ITEMS: usize = 1024;

/// Reads fields from one frame payload (or one embedded body), tracking the offset for errors.
pub(crate) struct Reader {
    input: Bytes,
    offset: usize,
    type_code: i32,
}

impl Reader {
    pub(crate) fn new(type_code: i32, input: Bytes) -> Self {
        Self {
            input,
            offset: 0,
            type_code,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.offset
    }

    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// A zero-copy slice of the next `count` bytes.
    pub(crate) fn take(&mut self, count: usize, field: &'static str) -> Result<Bytes, WireError> {
        self.ensure(count, field)?;
        let slice = self.input.slice(self.offset..self.offset + count);
        self.offset += count;
        Ok(slice)
    }

    /// Everything left, zero-copy.
    pub(crate) fn rest(&mut self) -> Bytes {
        let slice = self.input.slice(self.offset..);
        self.offset = self.input.len();
        slice
    }

    fn ensure(&self, needed: usize, field: &'static str) -> Result<(), WireError> {
        if needed > self.remaining() {
            return Err(WireError::Truncated {
                type_code: self.type_code,
                field,
                offset: self.offset,
                needed,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        self.ensure(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.input[self.offset..self.offset + N]);
        self.offset += N;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u128(&mut self, field: &'static str) -> Result<u128, WireError> {
        Ok(u128::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        let at = self.offset;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid_at(at, field, "boolean byte is neither 0 nor 1")),
        }
    }

    /// A u16 byte count and that many bytes of UTF-8.
    pub(crate) fn string(&mut self, field: &'static str) -> Result<String, WireError> {
        let at = self.offset;
        let length = u16::from_be_bytes(self.array(field)?);
        let raw = self.take(usize::from(length), field)?;
        // The length was checked against the input above, so this copy is bounded by it.
        String::from_utf8(raw.to_vec())
            .map_err(|_| self.invalid_at(at, field, "string is not UTF-8"))
    }

    /// An i32 byte count and that many bytes, zero-copy.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let length = self.length(field)?;
        self.take(length, field)
    }

    /// A non-negative i32 length.
    pub(crate) fn length(&mut self, field: &'static str) -> Result<usize, WireError> {
        let at = self.offset;
        let length = self.i32(field)?;
        usize::try_from(length).map_err(|_| self.invalid_at(at, field, "negative length"))
    }

    /// An i32 item count, refused unless `count × min_item_size` bytes are still present, so a
    /// garbage count never causes a large allocation.
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        min_item_size: usize,
    ) -> Result<usize, WireError> {
        let at = self.offset;
        let count = self.i32(field)?;
        let count =
            usize::try_from(count).map_err(|_| self.invalid_at(at, field, "negative count"))?;
        self.ensure(count.saturating_mul(min_item_size), field)?;
        Ok(count)
    }

    pub(crate) fn invalid_at(
        &self,
        offset: usize,
        field: &'static str,
        reason: &'static str,
    ) -> WireError {
        WireError::Invalid {
            type_code: self.type_code,
            field,
            offset,
            reason,
        }
    }
}

/// Appends fields to an output buffer; the counterpart of [`Reader`].
pub(crate) struct Writer<'a> {
    out: &'a mut BytesMut,
    type_code: i32,
    /// Set once an optional trailing field was absent: nothing may be written after it, or the
    /// reader would take the later field for the missing one.
    absent_optional: bool,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(type_code: i32, out: &'a mut BytesMut) -> Self {
        Self {
            out,
            type_code,
            absent_optional: false,
        }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.put_u8(value);
    }

    pub(crate) fn i32(&mut self, value: i32) {
        self.out.put_i32(value);
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.out.put_i64(value);
    }

    pub(crate) fn u128(&mut self, value: u128) {
        self.out.put_u128(value);
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.out.put_u8(u8::from(value));
    }

    pub(crate) fn raw(&mut self, value: &[u8]) {
        self.out.put_slice(value);
    }

    pub(crate) fn string(&mut self, value: &str, field: &'static str) -> Result<(), WireError> {
        let length = u16::try_from(value.len())
            .map_err(|_| self.too_long(field, value.len(), usize::from(u16::MAX)))?;
        self.out.put_u16(length);
        self.out.put_slice(value.as_bytes());
        Ok(())
    }

    pub(crate) fn bytes(&mut self, value: &[u8], field: &'static str) -> Result<(), WireError> {
        self.length(value.len(), field)?;
        self.out.put_slice(value);
        Ok(())
    }

    /// An i32 length or count.
    pub(crate) fn length(&mut self, length: usize, field: &'static str) -> Result<(), WireError> {
        let limit = usize::try_from(i32::MAX).unwrap_or(usize::MAX);
        let encoded = i32::try_from(length).map_err(|_| self.too_long(field, length, limit))?;
        self.out.put_i32(encoded);
        Ok(())
    }

    /// Called before every field that writes bytes; fails if an optional trailing field before
    /// it was absent.
    pub(crate) fn check_order(&self, field: &'static str) -> Result<(), WireError> {
        if self.absent_optional {
            return Err(WireError::Invalid {
                type_code: self.type_code,
                field,
                offset: self.out.len(),
                reason: "optional trailing field is set after an absent one",
            });
        }
        Ok(())
    }

    pub(crate) fn mark_absent(&mut self) {
        self.absent_optional = true;
    }

    fn too_long(&self, field: &'static str, length: usize, limit: usize) -> WireError {
        WireError::TooLong {
            type_code: self.type_code,
            field,
            length,
            limit,
        }
    }
}

/// A value with one wire encoding. `MIN_SIZE` is the fewest bytes an encoding can take; it
/// bounds list counts and decides whether an optional trailing field is present.
pub(crate) trait Field: Sized {
    const MIN_SIZE: usize;
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError>;
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError>;

    /// Only an absent optional field writes nothing.
    fn is_absent(&self) -> bool {
        false
    }

    /// Writes a top-level command field, refusing to write one after an absent optional field.
    fn write_in_order(
        &self,
        writer: &mut Writer<'_>,
        field: &'static str,
    ) -> Result<(), WireError> {
        if !self.is_absent() {
            writer.check_order(field)?;
        }
        self.write(writer, field)
    }

    /// A trailing field that older senders omit: absent (fewer than `MIN_SIZE` bytes left)
    /// gives `default`.
    fn read_or(reader: &mut Reader, field: &'static str, default: Self) -> Result<Self, WireError> {
        if reader.remaining() < Self::MIN_SIZE {
            return Ok(default);
        }
        Self::read(reader, field)
    }
}

macro_rules! fixed_field {
    ($type:ty, $size:expr, $method:ident) => {
        impl Field for $type {
            const MIN_SIZE: usize = $size;
            fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
                reader.$method(field)
            }
            fn write(
                &self,
                writer: &mut Writer<'_>,
                _field: &'static str,
            ) -> Result<(), WireError> {
                writer.$method(*self);
                Ok(())
            }
        }
    };
}

fixed_field!(u8, 1, u8);
fixed_field!(bool, 1, bool);
fixed_field!(i32, 4, i32);
fixed_field!(i64, 8, i64);
fixed_field!(u128, 16, u128);

impl Field for String {
    const MIN_SIZE: usize = 2;
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
        reader.string(field)
    }
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError> {
        writer.string(self, field)
    }
}

impl Field for Bytes {
    const MIN_SIZE: usize = 4;
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
        reader.bytes(field)
    }
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError> {
        writer.bytes(self, field)
    }
}

impl<T: Field> Field for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
        let count = reader.count(field, T::MIN_SIZE.max(1))?;
        let mut items = Vec::with_capacity(count.min(MAX_PREALLOCATED_ITEMS));
        for _ in 0..count {
            items.push(T::read(reader, field)?);
        }
        Ok(items)
    }
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError> {
        writer.length(self.len(), field)?;
        self.iter().try_for_each(|item| item.write(writer, field))
    }
}

impl<A: Field, B: Field> Field for (A, B) {
    const MIN_SIZE: usize = A::MIN_SIZE + B::MIN_SIZE;
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
        Ok((A::read(reader, field)?, B::read(reader, field)?))
    }
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError> {
        self.0.write(writer, field)?;
        self.1.write(writer, field)
    }
}

/// An optional trailing field: present iff at least `T::MIN_SIZE` bytes remain; written only
/// when `Some`, and then nothing may follow a `None`.
impl<T: Field> Field for Option<T> {
    const MIN_SIZE: usize = 0;
    fn is_absent(&self) -> bool {
        self.is_none()
    }
    fn read(reader: &mut Reader, field: &'static str) -> Result<Self, WireError> {
        if reader.remaining() < T::MIN_SIZE {
            return Ok(None);
        }
        T::read(reader, field).map(Some)
    }
    fn write(&self, writer: &mut Writer<'_>, field: &'static str) -> Result<(), WireError> {
        if let Some(value) = self {
            return value.write(writer, field);
        }
        writer.mark_absent();
        Ok(())
    }
}

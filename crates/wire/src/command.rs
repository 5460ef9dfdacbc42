//! What every command struct implements, how a whole frame is written, and the macros that
//! declare command structs (`commands!`) and the two command enums (`command_enum!`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Reader, Writer};
use crate::{WireError, HEADER_LEN, MAX_FRAME_PAYLOAD};

/// Type code of KeepAlive, the one command without a struct (its payload is empty).
pub(crate) const KEEP_ALIVE_TYPE: i32 = 100;

/// One wire command: its code, its name and its fields in wire order.
pub(crate) trait Command: Sized {
    const TYPE_CODE: i32;
    const NAME: &'static str;
    /// Reads the fields from the start of the payload; unknown trailing bytes are left unread.
    fn read_fields(reader: &mut Reader) -> Result<Self, WireError>;
    fn write_fields(&self, writer: &mut Writer<'_>) -> Result<(), WireError>;
    /// The id a client correlates the reply by.
    fn request_id(&self) -> i64;
}

pub(crate) fn decode_command<C: Command>(payload: Bytes) -> Result<C, WireError> {
    C::read_fields(&mut Reader::new(C::TYPE_CODE, payload))
}

pub(crate) fn encode_command<C: Command>(command: &C, out: &mut BytesMut) -> Result<(), WireError> {
    encode_frame(C::TYPE_CODE, out, |writer| command.write_fields(writer))
}

/// Appends a whole frame: type, length, then whatever `write_payload` writes. On error `out` is
/// left as it was.
pub(crate) fn encode_frame(
    type_code: i32,
    out: &mut BytesMut,
    write_payload: impl FnOnce(&mut Writer<'_>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let start = out.len();
    out.put_i32(type_code);
    out.put_i32(0); // patched below, once the payload length is known
    let written = write_payload(&mut Writer::new(type_code, out));
    let payload_length = out.len() - start - HEADER_LEN;
    let length = written.and_then(|()| {
        i32::try_from(payload_length)
            .ok()
            .filter(|_| payload_length <= MAX_FRAME_PAYLOAD)
            .ok_or(WireError::FrameTooLarge {
                type_code,
                length: i64::try_from(payload_length).unwrap_or(i64::MAX),
                limit: MAX_FRAME_PAYLOAD,
            })
    });
    match length {
        Ok(length) => {
            out[start + 4..start + HEADER_LEN].copy_from_slice(&length.to_be_bytes());
            Ok(())
        }
        Err(error) => {
            out.truncate(start);
            Err(error)
        }
    }
}

/// Reads one declared field: required, or trailing with a default when absent.
macro_rules! read_field {
    ($reader:ident, $field:ident, $type:ty) => {
        <$type as $crate::codec::Field>::read($reader, stringify!($field))?
    };
    ($reader:ident, $field:ident, $type:ty, $default:expr) => {
        <$type as $crate::codec::Field>::read_or($reader, stringify!($field), $default)?
    };
}

/// `id request_id` reads that field; `id 0` or `id (-1)` is a constant.
macro_rules! request_id_of {
    ($command:ident, $field:ident) => {
        $command.$field
    };
    ($command:ident, $constant:tt) => {
        $constant
    };
}

/// Declares command structs whose fields are encoded one after the other in declaration order.
/// `field: Type = default` marks a trailing field that older senders omit (always written);
/// `Option<T>` fields are written only when `Some` and read only when bytes remain.
macro_rules! commands {
    ($(
        $(#[$meta:meta])*
        $name:ident = $code:literal, id $id:tt {
            $( $(#[$field_meta:meta])* $field:ident : $type:ty $(= $default:expr)? ),* $(,)?
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $type, )*
        }

        impl $crate::command::Command for $name {
            const TYPE_CODE: i32 = $code;
            const NAME: &'static str = stringify!($name);

            fn read_fields(
                reader: &mut $crate::codec::Reader,
            ) -> Result<Self, $crate::WireError> {
                $( let $field = read_field!(reader, $field, $type $(, $default)?); )*
                Ok(Self { $($field),* })
            }

            fn write_fields(
                &self,
                writer: &mut $crate::codec::Writer<'_>,
            ) -> Result<(), $crate::WireError> {
                $( $crate::codec::Field::write_in_order(&self.$field, writer, stringify!($field))?; )*
                Ok(())
            }

            fn request_id(&self) -> i64 {
                request_id_of!(self, $id)
            }
        }
    )*};
}

/// Declares `Request` or `Reply`: one variant per command struct plus `KeepAlive`, with
/// `decode`, `encode`, `type_code`, `request_id`, `name` and `From` conversions.
macro_rules! command_enum {
    ($(#[$meta:meta])* $enum:ident { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $enum {
            $( $variant($variant), )*
            /// Empty frame (type 100); Java peers send it, the server echoes it.
            KeepAlive,
        }

        impl $enum {
            /// Decodes a payload (the 8-byte header already removed, e.g. by
            /// [`crate::split_frame`]). Byte fields are zero-copy slices of `payload`; unknown
            /// trailing bytes are ignored.
            pub fn decode(type_code: i32, payload: bytes::Bytes) -> Result<Self, $crate::WireError> {
                use $crate::command::{decode_command, Command, KEEP_ALIVE_TYPE};
                match type_code {
                    $( <$variant as Command>::TYPE_CODE => decode_command(payload).map(Self::$variant), )*
                    KEEP_ALIVE_TYPE => Ok(Self::KeepAlive),
                    other => Err($crate::WireError::UnknownType(other)),
                }
            }

            /// Appends the whole frame (type, length, payload) to `out`. Fails, leaving `out`
            /// unchanged, if a string, byte field or list is too long for its length prefix or
            /// the payload exceeds [`crate::MAX_FRAME_PAYLOAD`].
            pub fn encode(&self, out: &mut bytes::BytesMut) -> Result<(), $crate::WireError> {
                use $crate::command::{encode_command, encode_frame, KEEP_ALIVE_TYPE};
                match self {
                    $( Self::$variant(command) => encode_command(command, out), )*
                    Self::KeepAlive => encode_frame(KEEP_ALIVE_TYPE, out, |_| Ok(())),
                }
            }

            pub fn type_code(&self) -> i32 {
                use $crate::command::{Command, KEEP_ALIVE_TYPE};
                match self {
                    $( Self::$variant(_) => <$variant as Command>::TYPE_CODE, )*
                    Self::KeepAlive => KEEP_ALIVE_TYPE,
                }
            }

            /// The id a client correlates replies by: the `request_id` field, except Hello (0),
            /// KeepAlive and commands without an id (-1), and InvalidEventNumber (its 2nd field).
            pub fn request_id(&self) -> i64 {
                use $crate::command::Command;
                match self {
                    $( Self::$variant(command) => command.request_id(), )*
                    Self::KeepAlive => -1,
                }
            }

            pub fn name(&self) -> &'static str {
                use $crate::command::Command;
                match self {
                    $( Self::$variant(_) => <$variant as Command>::NAME, )*
                    Self::KeepAlive => "KeepAlive",
                }
            }
        }

        $(
            impl From<$variant> for $enum {
                fn from(command: $variant) -> Self {
                    Self::$variant(command)
                }
            }
        )*
    };
}

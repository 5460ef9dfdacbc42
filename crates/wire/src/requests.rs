//! Commands a client sends to a segment store, and the [`Request`] enum over them.
//!
//! Field order is wire order. Trailing fields marked `= default` are optional in Java: they are
//! always written, and read as the default when a sender omitted them. `Option` fields exist in
//! Java but not in the official Rust client: written only when `Some`.

use bytes::Bytes;

use crate::codec::{Reader, Writer};
use crate::command::Command;
use crate::frame::EVENT_TYPE;
use crate::types::{ConditionalAttributeUpdate, TableEntries, TableKey};
use crate::WireError;

commands! {
    /// First command on every connection, both ways: the sender's supported version range.
    Hello = -127, id 0 {
        high_version: i32,
        low_version: i32,
    }

    /// Opens an append session for `writer_id` on `segment`.
    SetupAppend = 1, id request_id {
        request_id: i64,
        writer_id: u128,
        segment: String,
        delegation_token: String,
    }

    /// Closes an append block. Rust clients put the whole block in `data`; after a Java
    /// AppendBlock, `data` is the rest of the block's partial event (see `split_append_block`).
    AppendBlockEnd = 4, id request_id {
        writer_id: u128,
        size_of_whole_events: i32,
        data: Bytes,
        num_events: i32,
        last_event_number: i64,
        request_id: i64 = -1,
    }

    /// Appends `data` only if the segment length equals `expected_offset`.
    ConditionalBlockEnd = 89, id request_id {
        writer_id: u128,
        event_number: i64,
        expected_offset: i64,
        data: Bytes,
        request_id: i64,
    }

    ReadSegment = 9, id request_id {
        segment: String,
        offset: i64,
        suggested_length: i32,
        delegation_token: String,
        request_id: i64 = -1,
    }

    GetStreamSegmentInfo = 11, id request_id {
        request_id: i64,
        segment_name: String,
        delegation_token: String,
    }

    CreateSegment = 20, id request_id {
        request_id: i64,
        segment: String,
        target_rate: i32,
        /// 0 = fixed, 1 = KiB/s, 2 = events/s.
        scale_type: u8,
        delegation_token: String,
        /// Java only; Java reads absent as 0.
        rollover_size_bytes: Option<i64>,
    }

    SealSegment = 28, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
    }

    DeleteSegment = 30, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
    }

    UpdateSegmentPolicy = 32, id request_id {
        request_id: i64,
        segment: String,
        target_rate: i32,
        scale_type: u8,
        delegation_token: String,
    }

    GetSegmentAttribute = 34, id request_id {
        request_id: i64,
        segment_name: String,
        attribute_id: u128,
        delegation_token: String,
    }

    /// Compare-and-set of one attribute; `expected_value` = `NULL_ATTRIBUTE_VALUE` means unset.
    UpdateSegmentAttribute = 36, id request_id {
        request_id: i64,
        segment_name: String,
        attribute_id: u128,
        new_value: i64,
        expected_value: i64,
        delegation_token: String,
    }

    TruncateSegment = 38, id request_id {
        request_id: i64,
        segment: String,
        truncation_offset: i64,
        delegation_token: String,
    }

    /// `segment` is the parent segment; the reply carries the generated name.
    CreateTransientSegment = 40, id request_id {
        request_id: i64,
        writer_id: u128,
        segment: String,
        delegation_token: String,
    }

    /// Java only (wire version 17).
    LocateOffset = 41, id request_id {
        request_id: i64,
        segment: String,
        target_offset: i64,
        delegation_token: String,
    }

    MergeSegments = 58, id request_id {
        request_id: i64,
        target: String,
        source: String,
        delegation_token: String,
        /// Java only; absent means none.
        attribute_updates: Option<Vec<ConditionalAttributeUpdate>>,
    }

    MergeSegmentsBatch = 90, id request_id {
        request_id: i64,
        target_segment_id: String,
        source_segment_ids: Vec<String>,
        delegation_token: String,
    }

    GetTableSegmentInfo = 68, id request_id {
        request_id: i64,
        segment_name: String,
        delegation_token: String,
    }

    /// The three options are Java only; each is present only if those before it are.
    CreateTableSegment = 70, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        /// Deprecated in Java.
        sorted: Option<bool>,
        /// 0 = variable-length keys.
        key_length: Option<i32>,
        rollover_size_bytes: Option<i64>,
    }

    DeleteTableSegment = 71, id request_id {
        request_id: i64,
        segment: String,
        must_be_empty: bool,
        delegation_token: String,
    }

    /// Rust CLI only; removed from Java.
    MergeTableSegments = 72, id request_id {
        request_id: i64,
        target: String,
        source: String,
        delegation_token: String,
    }

    /// Rust CLI only; removed from Java.
    SealTableSegment = 73, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
    }

    UpdateTableEntries = 74, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        table_entries: TableEntries,
        /// -1 = no condition on the table segment length.
        table_segment_offset: i64 = -1,
    }

    RemoveTableKeys = 76, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        keys: Vec<TableKey>,
        table_segment_offset: i64 = -1,
    }

    ReadTable = 78, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        keys: Vec<TableKey>,
    }

    ReadTableKeys = 83, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        suggested_key_count: i32,
        /// Opaque server bytes; empty = from the start.
        continuation_token: Bytes = Bytes::new(),
        /// Deprecated in Java (always sent empty). This and the two bounds are Java only.
        prefix_filter: Option<Bytes>,
        from_key: Option<Bytes>,
        to_key: Option<Bytes>,
    }

    ReadTableEntries = 85, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        suggested_entry_count: i32,
        continuation_token: Bytes = Bytes::new(),
        prefix_filter: Option<Bytes>,
        from_key: Option<Bytes>,
        to_key: Option<Bytes>,
    }

    ReadTableEntriesDelta = 88, id request_id {
        request_id: i64,
        segment: String,
        delegation_token: String,
        from_position: i64,
        suggested_entry_count: i32,
    }

    /// Admin only.
    FlushToStorage = -3, id request_id {
        container_id: i32,
        delegation_token: String,
        request_id: i64,
    }

    /// Admin only.
    ListStorageChunks = -5, id request_id {
        segment: String,
        delegation_token: String,
        request_id: i64,
    }
}

/// Java clients' block start: `writer_id`, then the raw block body up to the end of the frame
/// (no length prefix). The body holds whole event records and possibly one embedded
/// PartialEvent or Padding frame; split it with [`crate::split_append_block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendBlock {
    pub writer_id: u128,
    pub data: Bytes,
}

impl Command for AppendBlock {
    const TYPE_CODE: i32 = 3;
    const NAME: &'static str = "AppendBlock";

    fn read_fields(reader: &mut Reader) -> Result<Self, WireError> {
        let writer_id = reader.u128("writer_id")?;
        let data = reader.rest();
        Ok(Self { writer_id, data })
    }

    fn write_fields(&self, writer: &mut Writer<'_>) -> Result<(), WireError> {
        writer.u128(self.writer_id);
        writer.raw(&self.data);
        Ok(())
    }

    fn request_id(&self) -> i64 {
        -1
    }
}

/// One event appended only if the segment length equals `expected_offset` (Java clients). The
/// event travels as an embedded frame `[0:i32][length:i32][event_data]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalAppend {
    pub writer_id: u128,
    pub event_number: i64,
    pub expected_offset: i64,
    pub event_data: Bytes,
    pub request_id: i64,
}

impl Command for ConditionalAppend {
    const TYPE_CODE: i32 = 5;
    const NAME: &'static str = "ConditionalAppend";

    fn read_fields(reader: &mut Reader) -> Result<Self, WireError> {
        let writer_id = reader.u128("writer_id")?;
        let event_number = reader.i64("event_number")?;
        let expected_offset = reader.i64("expected_offset")?;
        let at = reader.offset();
        if reader.i32("event_type")? != EVENT_TYPE {
            return Err(reader.invalid_at(at, "event_type", "embedded event type is not 0"));
        }
        let event_data = reader.bytes("event_data")?;
        let request_id = if reader.remaining() >= 8 {
            reader.i64("request_id")?
        } else {
            -1
        };
        Ok(Self {
            writer_id,
            event_number,
            expected_offset,
            event_data,
            request_id,
        })
    }

    fn write_fields(&self, writer: &mut Writer<'_>) -> Result<(), WireError> {
        writer.u128(self.writer_id);
        writer.i64(self.event_number);
        writer.i64(self.expected_offset);
        writer.i32(EVENT_TYPE);
        writer.bytes(&self.event_data, "event_data")?;
        writer.i64(self.request_id);
        Ok(())
    }

    fn request_id(&self) -> i64 {
        self.request_id
    }
}

command_enum! {
    /// Every command a segment store accepts (client → server).
    Request {
        Hello,
        SetupAppend,
        AppendBlock,
        AppendBlockEnd,
        ConditionalAppend,
        ConditionalBlockEnd,
        ReadSegment,
        GetStreamSegmentInfo,
        CreateSegment,
        SealSegment,
        DeleteSegment,
        UpdateSegmentPolicy,
        GetSegmentAttribute,
        UpdateSegmentAttribute,
        TruncateSegment,
        CreateTransientSegment,
        LocateOffset,
        MergeSegments,
        MergeSegmentsBatch,
        GetTableSegmentInfo,
        CreateTableSegment,
        DeleteTableSegment,
        MergeTableSegments,
        SealTableSegment,
        UpdateTableEntries,
        RemoveTableKeys,
        ReadTable,
        ReadTableKeys,
        ReadTableEntries,
        ReadTableEntriesDelta,
        FlushToStorage,
        ListStorageChunks,
    }
}

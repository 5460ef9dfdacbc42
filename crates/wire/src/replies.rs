//! Commands a segment store sends back, and the [`Reply`] enum over them.
//!
//! Same conventions as [`crate::requests`]: `= default` marks a trailing field Java reads as
//! optional (always written here); `Option` marks a field the official Rust client lacks.

use bytes::Bytes;

use crate::types::{ChunkInfo, TableEntries, TableKey};
use crate::Hello;

commands! {
    /// Reply to SetupAppend. `last_event_number` = `NULL_ATTRIBUTE_VALUE` if the writer never
    /// wrote this segment.
    AppendSetup = 2, id request_id {
        request_id: i64,
        segment: String,
        writer_id: u128,
        last_event_number: i64,
    }

    /// Acknowledges appends up to `event_number`.
    DataAppended = 7, id request_id {
        writer_id: u128,
        event_number: i64,
        previous_event_number: i64 = -1,
        request_id: i64 = -1,
        current_segment_write_offset: i64 = -1,
    }

    ConditionalCheckFailed = 8, id request_id {
        writer_id: u128,
        event_number: i64,
        request_id: i64 = -1,
    }

    /// `offset` must equal the requested offset; `data` starts there.
    SegmentRead = 10, id request_id {
        segment: String,
        offset: i64,
        at_tail: bool,
        end_of_segment: bool,
        data: Bytes,
        request_id: i64 = -1,
    }

    StreamSegmentInfo = 12, id request_id {
        request_id: i64,
        segment_name: String,
        exists: bool,
        is_sealed: bool,
        is_deleted: bool,
        /// Milliseconds since the Unix epoch.
        last_modified: i64,
        /// The segment length.
        write_offset: i64,
        start_offset: i64 = 0,
    }

    SegmentCreated = 21, id request_id {
        request_id: i64,
        segment: String,
    }

    SegmentSealed = 29, id request_id {
        request_id: i64,
        segment: String,
    }

    SegmentDeleted = 31, id request_id {
        request_id: i64,
        segment: String,
    }

    SegmentPolicyUpdated = 33, id request_id {
        request_id: i64,
        segment: String,
    }

    SegmentAttribute = 35, id request_id {
        request_id: i64,
        /// `NULL_ATTRIBUTE_VALUE` if never set.
        value: i64,
    }

    SegmentAttributeUpdated = 37, id request_id {
        request_id: i64,
        success: bool,
    }

    SegmentTruncated = 39, id request_id {
        request_id: i64,
        segment: String,
    }

    /// Java only (wire version 17); the Rust client cannot decode it.
    OffsetLocated = 42, id request_id {
        request_id: i64,
        segment: String,
        offset: i64,
    }

    WrongHost = 50, id request_id {
        request_id: i64,
        segment: String,
        correct_host: String,
        server_stack_trace: String = String::new(),
    }

    /// On the append path `offset` carries the failed append's event number.
    SegmentIsSealed = 51, id request_id {
        request_id: i64,
        segment: String,
        server_stack_trace: String = String::new(),
        offset: i64 = -1,
    }

    SegmentAlreadyExists = 52, id request_id {
        request_id: i64,
        segment: String,
        server_stack_trace: String = String::new(),
    }

    NoSuchSegment = 53, id request_id {
        request_id: i64,
        segment: String,
        server_stack_trace: String = String::new(),
        offset: i64 = -1,
    }

    /// Java's layout. The official Rust crate reads the 2nd field as "event_number" and uses it
    /// as the reply id; it never reads `event_number` (Java only, absent reads as `None`).
    InvalidEventNumber = 55, id request_id {
        writer_id: u128,
        request_id: i64,
        server_stack_trace: String = String::new(),
        event_number: Option<i64>,
    }

    SegmentIsTruncated = 56, id request_id {
        request_id: i64,
        segment: String,
        start_offset: i64,
        server_stack_trace: String = String::new(),
        offset: i64 = -1,
    }

    OperationUnsupported = 57, id request_id {
        request_id: i64,
        operation_name: String,
        server_stack_trace: String = String::new(),
    }

    SegmentsMerged = 59, id request_id {
        request_id: i64,
        target: String,
        source: String,
        new_target_write_offset: i64 = -1,
    }

    /// `error_code`: -1 unspecified, 0 token check failed, 1 token expired; the Rust client
    /// panics on any other value.
    AuthTokenCheckFailed = 60, id request_id {
        request_id: i64,
        server_stack_trace: String = String::new(),
        error_code: i32 = -1,
    }

    /// `error_code`: -1 unspecified, 0 illegal argument.
    ErrorMessage = 61, id request_id {
        request_id: i64,
        segment: String,
        message: String,
        error_code: i32,
    }

    /// Java's layout; the official Rust crate's struct for code 69 is wrong and unused.
    TableSegmentInfo = 69, id request_id {
        request_id: i64,
        segment_name: String,
        start_offset: i64,
        length: i64,
        entry_count: i64,
        key_length: i32,
    }

    /// The new version of every entry, in request order.
    TableEntriesUpdated = 75, id request_id {
        request_id: i64,
        updated_versions: Vec<i64>,
    }

    TableKeysRemoved = 77, id request_id {
        request_id: i64,
        segment: String,
    }

    /// One entry per requested key, in order; an absent key has version -1 and an empty value.
    TableRead = 79, id request_id {
        request_id: i64,
        segment: String,
        entries: TableEntries,
    }

    TableSegmentNotEmpty = 80, id request_id {
        request_id: i64,
        segment: String,
        server_stack_trace: String,
    }

    TableKeyDoesNotExist = 81, id request_id {
        request_id: i64,
        segment: String,
        server_stack_trace: String,
    }

    TableKeyBadVersion = 82, id request_id {
        request_id: i64,
        segment: String,
        server_stack_trace: String,
    }

    TableKeysRead = 84, id request_id {
        request_id: i64,
        segment: String,
        keys: Vec<TableKey>,
        continuation_token: Bytes,
    }

    TableEntriesRead = 86, id request_id {
        request_id: i64,
        segment: String,
        entries: TableEntries,
        continuation_token: Bytes,
    }

    /// Note: numbered below its request (88).
    TableEntriesDeltaRead = 87, id request_id {
        request_id: i64,
        segment: String,
        entries: TableEntries,
        should_clear: bool,
        reached_end: bool,
        last_position: i64,
    }

    /// Java's layout: a count, then (source, new target offset) pairs. The official Rust crate
    /// expects two separate lists and cannot decode it.
    SegmentsBatchMerged = 91, id request_id {
        request_id: i64,
        target: String,
        new_target_write_offsets: Vec<(String, i64)>,
    }

    StorageFlushed = -4, id request_id {
        request_id: i64,
    }

    StorageChunksListed = -6, id request_id {
        request_id: i64,
        chunks: Vec<ChunkInfo>,
    }
}

command_enum! {
    /// Every command a segment store sends (server → client).
    Reply {
        Hello,
        AppendSetup,
        DataAppended,
        ConditionalCheckFailed,
        SegmentRead,
        StreamSegmentInfo,
        SegmentCreated,
        SegmentSealed,
        SegmentDeleted,
        SegmentPolicyUpdated,
        SegmentAttribute,
        SegmentAttributeUpdated,
        SegmentTruncated,
        OffsetLocated,
        WrongHost,
        SegmentIsSealed,
        SegmentAlreadyExists,
        NoSuchSegment,
        InvalidEventNumber,
        SegmentIsTruncated,
        OperationUnsupported,
        SegmentsMerged,
        AuthTokenCheckFailed,
        ErrorMessage,
        TableSegmentInfo,
        TableEntriesUpdated,
        TableKeysRemoved,
        TableRead,
        TableSegmentNotEmpty,
        TableKeyDoesNotExist,
        TableKeyBadVersion,
        TableKeysRead,
        TableEntriesRead,
        TableEntriesDeltaRead,
        SegmentsBatchMerged,
        StorageFlushed,
        StorageChunksListed,
    }
}

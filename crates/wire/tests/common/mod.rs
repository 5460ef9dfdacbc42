//! Proptest strategies for every command of both enums, shared by the integration tests.
//! `request_cases()` / `reply_cases()` list one named strategy per enum variant.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use pravaha_wire::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

/// Segment names, tokens and stack traces: mostly ASCII names, sometimes any printable Unicode.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-zA-Z0-9/._#-]{0,24}", 1 => "\\PC{0,8}"]
}

pub fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

pub fn table_key() -> impl Strategy<Value = TableKey> {
    (blob(), any::<i64>()).prop_map(|(data, key_version)| TableKey { data, key_version })
}

pub fn table_value() -> impl Strategy<Value = TableValue> {
    blob().prop_map(|data| TableValue { data })
}

pub fn table_entries() -> impl Strategy<Value = TableEntries> {
    vec((table_key(), table_value()), 0..4).prop_map(|entries| TableEntries { entries })
}

pub fn attribute_update() -> impl Strategy<Value = ConditionalAttributeUpdate> {
    (any::<u128>(), any::<u8>(), any::<i64>(), any::<i64>()).prop_map(
        |(attribute_id, update_type, new_value, old_value)| ConditionalAttributeUpdate {
            attribute_id,
            update_type,
            new_value,
            old_value,
        },
    )
}

pub fn chunk_info() -> impl Strategy<Value = ChunkInfo> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        text(),
        any::<bool>(),
    )
        .prop_map(
            |(
                length_in_metadata,
                length_in_storage,
                start_offset,
                chunk_name,
                exists_in_storage,
            )| {
                ChunkInfo {
                    length_in_metadata,
                    length_in_storage,
                    start_offset,
                    chunk_name,
                    exists_in_storage,
                }
            },
        )
}

/// Three optional trailing fields where each is present only if those before it are.
pub type PrefixOptions<A, B, C> = (Option<A>, Option<B>, Option<C>);

pub fn prefix_options<A: Strategy, B: Strategy, C: Strategy>(
    first: A,
    second: B,
    third: C,
) -> impl Strategy<Value = PrefixOptions<A::Value, B::Value, C::Value>> {
    (0..=3usize, first, second, third).prop_map(|(present, first, second, third)| {
        (
            (present >= 1).then_some(first),
            (present >= 2).then_some(second),
            (present >= 3).then_some(third),
        )
    })
}

fn table_iteration(count_field_is_keys: bool) -> impl Strategy<Value = Request> {
    let options = prefix_options(blob(), blob(), blob());
    (any::<i64>(), text(), text(), any::<i32>(), blob(), options).prop_map(
        move |(request_id, segment, delegation_token, count, token, (prefix, from, to))| {
            if count_field_is_keys {
                Request::ReadTableKeys(ReadTableKeys {
                    request_id,
                    segment,
                    delegation_token,
                    suggested_key_count: count,
                    continuation_token: token,
                    prefix_filter: prefix,
                    from_key: from,
                    to_key: to,
                })
            } else {
                Request::ReadTableEntries(ReadTableEntries {
                    request_id,
                    segment,
                    delegation_token,
                    suggested_entry_count: count,
                    continuation_token: token,
                    prefix_filter: prefix,
                    from_key: from,
                    to_key: to,
                })
            }
        },
    )
}

fn create_table_segment() -> impl Strategy<Value = Request> {
    let options = prefix_options(any::<bool>(), any::<i32>(), any::<i64>());
    (any::<i64>(), text(), text(), options).prop_map(
        |(request_id, segment, delegation_token, (sorted, key_length, rollover_size_bytes))| {
            Request::CreateTableSegment(CreateTableSegment {
                request_id,
                segment,
                delegation_token,
                sorted,
                key_length,
                rollover_size_bytes,
            })
        },
    )
}

/// Builds `fn $cases() -> Vec<(name, strategy)>`: one entry per listed variant (`plain` ones
/// from one strategy per field, `special` ones from a whole-command strategy) plus KeepAlive.
macro_rules! cases {
    (
        $enum:ident, $cases:ident,
        plain { $( $variant:ident { $( $field:ident : $strategy:expr ),* $(,)? } )* }
        special { $( $special:ident => $special_strategy:expr ),* $(,)? }
    ) => {
        pub fn $cases() -> Vec<(&'static str, BoxedStrategy<$enum>)> {
            vec![
                $(
                    (
                        stringify!($variant),
                        ( $( $strategy, )* )
                            .prop_map(|( $( $field, )* )| $enum::$variant($variant { $( $field ),* }))
                            .boxed(),
                    ),
                )*
                $( (stringify!($special), $special_strategy.boxed()), )*
                ("KeepAlive", Just($enum::KeepAlive).boxed()),
            ]
        }
    };
}

cases! {
    Request, request_cases,
    plain {
        Hello { high_version: any::<i32>(), low_version: any::<i32>() }
        SetupAppend { request_id: any::<i64>(), writer_id: any::<u128>(), segment: text(), delegation_token: text() }
        AppendBlock { writer_id: any::<u128>(), data: blob() }
        AppendBlockEnd {
            writer_id: any::<u128>(), size_of_whole_events: any::<i32>(), data: blob(),
            num_events: any::<i32>(), last_event_number: any::<i64>(), request_id: any::<i64>(),
        }
        ConditionalAppend {
            writer_id: any::<u128>(), event_number: any::<i64>(), expected_offset: any::<i64>(),
            event_data: blob(), request_id: any::<i64>(),
        }
        ConditionalBlockEnd {
            writer_id: any::<u128>(), event_number: any::<i64>(), expected_offset: any::<i64>(),
            data: blob(), request_id: any::<i64>(),
        }
        ReadSegment {
            segment: text(), offset: any::<i64>(), suggested_length: any::<i32>(),
            delegation_token: text(), request_id: any::<i64>(),
        }
        GetStreamSegmentInfo { request_id: any::<i64>(), segment_name: text(), delegation_token: text() }
        CreateSegment {
            request_id: any::<i64>(), segment: text(), target_rate: any::<i32>(), scale_type: any::<u8>(),
            delegation_token: text(), rollover_size_bytes: option::of(any::<i64>()),
        }
        SealSegment { request_id: any::<i64>(), segment: text(), delegation_token: text() }
        DeleteSegment { request_id: any::<i64>(), segment: text(), delegation_token: text() }
        UpdateSegmentPolicy {
            request_id: any::<i64>(), segment: text(), target_rate: any::<i32>(), scale_type: any::<u8>(),
            delegation_token: text(),
        }
        GetSegmentAttribute {
            request_id: any::<i64>(), segment_name: text(), attribute_id: any::<u128>(), delegation_token: text(),
        }
        UpdateSegmentAttribute {
            request_id: any::<i64>(), segment_name: text(), attribute_id: any::<u128>(),
            new_value: any::<i64>(), expected_value: any::<i64>(), delegation_token: text(),
        }
        TruncateSegment {
            request_id: any::<i64>(), segment: text(), truncation_offset: any::<i64>(), delegation_token: text(),
        }
        CreateTransientSegment {
            request_id: any::<i64>(), writer_id: any::<u128>(), segment: text(), delegation_token: text(),
        }
        LocateOffset {
            request_id: any::<i64>(), segment: text(), target_offset: any::<i64>(), delegation_token: text(),
        }
        MergeSegments {
            request_id: any::<i64>(), target: text(), source: text(), delegation_token: text(),
            attribute_updates: option::of(vec(attribute_update(), 0..4)),
        }
        MergeSegmentsBatch {
            request_id: any::<i64>(), target_segment_id: text(), source_segment_ids: vec(text(), 0..4),
            delegation_token: text(),
        }
        GetTableSegmentInfo { request_id: any::<i64>(), segment_name: text(), delegation_token: text() }
        DeleteTableSegment {
            request_id: any::<i64>(), segment: text(), must_be_empty: any::<bool>(), delegation_token: text(),
        }
        MergeTableSegments { request_id: any::<i64>(), target: text(), source: text(), delegation_token: text() }
        SealTableSegment { request_id: any::<i64>(), segment: text(), delegation_token: text() }
        UpdateTableEntries {
            request_id: any::<i64>(), segment: text(), delegation_token: text(),
            table_entries: table_entries(), table_segment_offset: any::<i64>(),
        }
        RemoveTableKeys {
            request_id: any::<i64>(), segment: text(), delegation_token: text(),
            keys: vec(table_key(), 0..4), table_segment_offset: any::<i64>(),
        }
        ReadTable {
            request_id: any::<i64>(), segment: text(), delegation_token: text(), keys: vec(table_key(), 0..4),
        }
        ReadTableEntriesDelta {
            request_id: any::<i64>(), segment: text(), delegation_token: text(),
            from_position: any::<i64>(), suggested_entry_count: any::<i32>(),
        }
        FlushToStorage { container_id: any::<i32>(), delegation_token: text(), request_id: any::<i64>() }
        ListStorageChunks { segment: text(), delegation_token: text(), request_id: any::<i64>() }
    }
    special {
        CreateTableSegment => create_table_segment(),
        ReadTableKeys => table_iteration(true),
        ReadTableEntries => table_iteration(false),
    }
}

cases! {
    Reply, reply_cases,
    plain {
        Hello { high_version: any::<i32>(), low_version: any::<i32>() }
        AppendSetup {
            request_id: any::<i64>(), segment: text(), writer_id: any::<u128>(), last_event_number: any::<i64>(),
        }
        DataAppended {
            writer_id: any::<u128>(), event_number: any::<i64>(), previous_event_number: any::<i64>(),
            request_id: any::<i64>(), current_segment_write_offset: any::<i64>(),
        }
        ConditionalCheckFailed { writer_id: any::<u128>(), event_number: any::<i64>(), request_id: any::<i64>() }
        SegmentRead {
            segment: text(), offset: any::<i64>(), at_tail: any::<bool>(), end_of_segment: any::<bool>(),
            data: blob(), request_id: any::<i64>(),
        }
        StreamSegmentInfo {
            request_id: any::<i64>(), segment_name: text(), exists: any::<bool>(), is_sealed: any::<bool>(),
            is_deleted: any::<bool>(), last_modified: any::<i64>(), write_offset: any::<i64>(),
            start_offset: any::<i64>(),
        }
        SegmentCreated { request_id: any::<i64>(), segment: text() }
        SegmentSealed { request_id: any::<i64>(), segment: text() }
        SegmentDeleted { request_id: any::<i64>(), segment: text() }
        SegmentPolicyUpdated { request_id: any::<i64>(), segment: text() }
        SegmentAttribute { request_id: any::<i64>(), value: any::<i64>() }
        SegmentAttributeUpdated { request_id: any::<i64>(), success: any::<bool>() }
        SegmentTruncated { request_id: any::<i64>(), segment: text() }
        OffsetLocated { request_id: any::<i64>(), segment: text(), offset: any::<i64>() }
        WrongHost { request_id: any::<i64>(), segment: text(), correct_host: text(), server_stack_trace: text() }
        SegmentIsSealed {
            request_id: any::<i64>(), segment: text(), server_stack_trace: text(), offset: any::<i64>(),
        }
        SegmentAlreadyExists { request_id: any::<i64>(), segment: text(), server_stack_trace: text() }
        NoSuchSegment {
            request_id: any::<i64>(), segment: text(), server_stack_trace: text(), offset: any::<i64>(),
        }
        InvalidEventNumber {
            writer_id: any::<u128>(), request_id: any::<i64>(), server_stack_trace: text(),
            event_number: option::of(any::<i64>()),
        }
        SegmentIsTruncated {
            request_id: any::<i64>(), segment: text(), start_offset: any::<i64>(), server_stack_trace: text(),
            offset: any::<i64>(),
        }
        OperationUnsupported { request_id: any::<i64>(), operation_name: text(), server_stack_trace: text() }
        SegmentsMerged {
            request_id: any::<i64>(), target: text(), source: text(), new_target_write_offset: any::<i64>(),
        }
        AuthTokenCheckFailed { request_id: any::<i64>(), server_stack_trace: text(), error_code: any::<i32>() }
        ErrorMessage { request_id: any::<i64>(), segment: text(), message: text(), error_code: any::<i32>() }
        TableSegmentInfo {
            request_id: any::<i64>(), segment_name: text(), start_offset: any::<i64>(), length: any::<i64>(),
            entry_count: any::<i64>(), key_length: any::<i32>(),
        }
        TableEntriesUpdated { request_id: any::<i64>(), updated_versions: vec(any::<i64>(), 0..6) }
        TableKeysRemoved { request_id: any::<i64>(), segment: text() }
        TableRead { request_id: any::<i64>(), segment: text(), entries: table_entries() }
        TableSegmentNotEmpty { request_id: any::<i64>(), segment: text(), server_stack_trace: text() }
        TableKeyDoesNotExist { request_id: any::<i64>(), segment: text(), server_stack_trace: text() }
        TableKeyBadVersion { request_id: any::<i64>(), segment: text(), server_stack_trace: text() }
        TableKeysRead {
            request_id: any::<i64>(), segment: text(), keys: vec(table_key(), 0..4), continuation_token: blob(),
        }
        TableEntriesRead {
            request_id: any::<i64>(), segment: text(), entries: table_entries(), continuation_token: blob(),
        }
        TableEntriesDeltaRead {
            request_id: any::<i64>(), segment: text(), entries: table_entries(), should_clear: any::<bool>(),
            reached_end: any::<bool>(), last_position: any::<i64>(),
        }
        SegmentsBatchMerged {
            request_id: any::<i64>(), target: text(), new_target_write_offsets: vec((text(), any::<i64>()), 0..4),
        }
        StorageFlushed { request_id: any::<i64>() }
        StorageChunksListed { request_id: any::<i64>(), chunks: vec(chunk_info(), 0..4) }
    }
    special {}
}

pub fn any_request() -> impl Strategy<Value = Request> {
    Union::new(request_cases().into_iter().map(|(_, strategy)| strategy))
}

pub fn any_reply() -> impl Strategy<Value = Reply> {
    Union::new(reply_cases().into_iter().map(|(_, strategy)| strategy))
}

pub fn request_frame(request: &Request) -> BytesMut {
    let mut out = BytesMut::new();
    request.encode(&mut out).expect("generated requests encode");
    out
}

pub fn reply_frame(reply: &Reply) -> BytesMut {
    let mut out = BytesMut::new();
    reply.encode(&mut out).expect("generated replies encode");
    out
}

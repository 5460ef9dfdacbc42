//! Builds the official crate's value for one of ours, field by field, and strips the fields the
//! official crate does not know (Java-only optional trailing fields).

use pravaha_wire::*;
use pravega_wire_protocol::commands as official;
use pravega_wire_protocol::wire_commands::Requests;

fn key(key: &TableKey) -> official::TableKey {
    official::TableKey::new(key.data.to_vec(), key.key_version)
}

fn keys(keys: &[TableKey]) -> Vec<official::TableKey> {
    keys.iter().map(key).collect()
}

fn entries(entries: &TableEntries) -> official::TableEntries {
    official::TableEntries {
        entries: entries
            .entries
            .iter()
            .map(|(k, v)| (key(k), official::TableValue::new(v.data.to_vec())))
            .collect(),
    }
}

/// Our value as the official crate's client would send it: Java-only fields absent.
pub fn strip_request(request: &Request) -> Request {
    let mut stripped = request.clone();
    match &mut stripped {
        Request::CreateSegment(c) => c.rollover_size_bytes = None,
        Request::MergeSegments(c) => c.attribute_updates = None,
        Request::CreateTableSegment(c) => {
            (c.sorted, c.key_length, c.rollover_size_bytes) = (None, None, None);
        }
        Request::ReadTableKeys(c) => (c.prefix_filter, c.from_key, c.to_key) = (None, None, None),
        Request::ReadTableEntries(c) => {
            (c.prefix_filter, c.from_key, c.to_key) = (None, None, None);
        }
        _ => {}
    }
    stripped
}

pub fn strip_reply(reply: &Reply) -> Reply {
    let mut stripped = reply.clone();
    if let Reply::InvalidEventNumber(c) = &mut stripped {
        c.event_number = None;
    }
    stripped
}

/// `None` where the official crate has no command with our layout: LocateOffset (Java only) and
/// AppendBlock (the official layout adds a length prefix; tested separately).
#[allow(clippy::too_many_lines)]
pub fn official_request(request: &Request) -> Option<Requests> {
    Some(match request.clone() {
        Request::Hello(c) => Requests::Hello(official::HelloCommand {
            high_version: c.high_version,
            low_version: c.low_version,
        }),
        Request::SetupAppend(c) => Requests::SetupAppend(official::SetupAppendCommand {
            request_id: c.request_id,
            writer_id: c.writer_id,
            segment: c.segment,
            delegation_token: c.delegation_token,
        }),
        Request::AppendBlock(_) | Request::LocateOffset(_) => return None,
        Request::AppendBlockEnd(c) => Requests::AppendBlockEnd(official::AppendBlockEndCommand {
            writer_id: c.writer_id,
            size_of_whole_events: c.size_of_whole_events,
            data: c.data.to_vec(),
            num_event: c.num_events,
            last_event_number: c.last_event_number,
            request_id: c.request_id,
        }),
        Request::ConditionalAppend(c) => {
            Requests::ConditionalAppend(official::ConditionalAppendCommand {
                writer_id: c.writer_id,
                event_number: c.event_number,
                expected_offset: c.expected_offset,
                event: official::EventCommand {
                    data: c.event_data.to_vec(),
                },
                request_id: c.request_id,
            })
        }
        Request::ConditionalBlockEnd(c) => {
            Requests::ConditionalBlockEnd(official::ConditionalBlockEndCommand {
                writer_id: c.writer_id,
                event_number: c.event_number,
                expected_offset: c.expected_offset,
                data: c.data.to_vec(),
                request_id: c.request_id,
            })
        }
        Request::ReadSegment(c) => Requests::ReadSegment(official::ReadSegmentCommand {
            segment: c.segment,
            offset: c.offset,
            suggested_length: c.suggested_length,
            delegation_token: c.delegation_token,
            request_id: c.request_id,
        }),
        Request::GetStreamSegmentInfo(c) => {
            Requests::GetStreamSegmentInfo(official::GetStreamSegmentInfoCommand {
                request_id: c.request_id,
                segment_name: c.segment_name,
                delegation_token: c.delegation_token,
            })
        }
        Request::CreateSegment(c) => Requests::CreateSegment(official::CreateSegmentCommand {
            request_id: c.request_id,
            segment: c.segment,
            target_rate: c.target_rate,
            scale_type: c.scale_type,
            delegation_token: c.delegation_token,
        }),
        Request::SealSegment(c) => Requests::SealSegment(official::SealSegmentCommand {
            request_id: c.request_id,
            segment: c.segment,
            delegation_token: c.delegation_token,
        }),
        Request::DeleteSegment(c) => Requests::DeleteSegment(official::DeleteSegmentCommand {
            request_id: c.request_id,
            segment: c.segment,
            delegation_token: c.delegation_token,
        }),
        Request::UpdateSegmentPolicy(c) => {
            Requests::UpdateSegmentPolicy(official::UpdateSegmentPolicyCommand {
                request_id: c.request_id,
                segment: c.segment,
                target_rate: c.target_rate,
                scale_type: c.scale_type,
                delegation_token: c.delegation_token,
            })
        }
        Request::GetSegmentAttribute(c) => {
            Requests::GetSegmentAttribute(official::GetSegmentAttributeCommand {
                request_id: c.request_id,
                segment_name: c.segment_name,
                attribute_id: c.attribute_id,
                delegation_token: c.delegation_token,
            })
        }
        Request::UpdateSegmentAttribute(c) => {
            Requests::UpdateSegmentAttribute(official::UpdateSegmentAttributeCommand {
                request_id: c.request_id,
                segment_name: c.segment_name,
                attribute_id: c.attribute_id,
                new_value: c.new_value,
                expected_value: c.expected_value,
                delegation_token: c.delegation_token,
            })
        }
        Request::TruncateSegment(c) => {
            Requests::TruncateSegment(official::TruncateSegmentCommand {
                request_id: c.request_id,
                segment: c.segment,
                truncation_offset: c.truncation_offset,
                delegation_token: c.delegation_token,
            })
        }
        Request::CreateTransientSegment(c) => {
            Requests::CreateTransientSegment(official::CreateTransientSegmentCommand {
                request_id: c.request_id,
                writer_id: c.writer_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
            })
        }
        Request::MergeSegments(c) => Requests::MergeSegments(official::MergeSegmentsCommand {
            request_id: c.request_id,
            target: c.target,
            source: c.source,
            delegation_token: c.delegation_token,
        }),
        Request::MergeSegmentsBatch(c) => {
            Requests::MergeSegmentsBatch(official::MergeSegmentsBatchCommand {
                request_id: c.request_id,
                target_segment_id: c.target_segment_id,
                source_segment_ids: c.source_segment_ids,
                delegation_token: c.delegation_token,
            })
        }
        Request::GetTableSegmentInfo(c) => {
            Requests::GetTableSegmentInfo(official::GetTableSegmentInfoCommand {
                request_id: c.request_id,
                segment_name: c.segment_name,
                delegation_token: c.delegation_token,
            })
        }
        Request::CreateTableSegment(c) => {
            Requests::CreateTableSegment(official::CreateTableSegmentCommand {
                request_id: c.request_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
            })
        }
        Request::DeleteTableSegment(c) => {
            Requests::DeleteTableSegment(official::DeleteTableSegmentCommand {
                request_id: c.request_id,
                segment: c.segment,
                must_be_empty: c.must_be_empty,
                delegation_token: c.delegation_token,
            })
        }
        Request::MergeTableSegments(c) => {
            Requests::MergeTableSegments(official::MergeTableSegmentsCommand {
                request_id: c.request_id,
                target: c.target,
                source: c.source,
                delegation_token: c.delegation_token,
            })
        }
        Request::SealTableSegment(c) => {
            Requests::SealTableSegment(official::SealTableSegmentCommand {
                request_id: c.request_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
            })
        }
        Request::UpdateTableEntries(c) => {
            Requests::UpdateTableEntries(official::UpdateTableEntriesCommand {
                request_id: c.request_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
                table_entries: entries(&c.table_entries),
                table_segment_offset: c.table_segment_offset,
            })
        }
        Request::RemoveTableKeys(c) => {
            Requests::RemoveTableKeys(official::RemoveTableKeysCommand {
                request_id: c.request_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
                keys: keys(&c.keys),
                table_segment_offset: c.table_segment_offset,
            })
        }
        Request::ReadTable(c) => Requests::ReadTable(official::ReadTableCommand {
            request_id: c.request_id,
            segment: c.segment,
            delegation_token: c.delegation_token,
            keys: keys(&c.keys),
        }),
        Request::ReadTableKeys(c) => Requests::ReadTableKeys(official::ReadTableKeysCommand {
            request_id: c.request_id,
            segment: c.segment,
            delegation_token: c.delegation_token,
            suggested_key_count: c.suggested_key_count,
            continuation_token: c.continuation_token.to_vec(),
        }),
        Request::ReadTableEntries(c) => {
            Requests::ReadTableEntries(official::ReadTableEntriesCommand {
                request_id: c.request_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
                suggested_entry_count: c.suggested_entry_count,
                continuation_token: c.continuation_token.to_vec(),
            })
        }
        Request::ReadTableEntriesDelta(c) => {
            Requests::ReadTableEntriesDelta(official::ReadTableEntriesDeltaCommand {
                request_id: c.request_id,
                segment: c.segment,
                delegation_token: c.delegation_token,
                from_position: c.from_position,
                suggested_entry_count: c.suggested_entry_count,
            })
        }
        Request::FlushToStorage(c) => Requests::FlushToStorage(official::FlushToStorageCommand {
            container_id: c.container_id,
            delegation_token: c.delegation_token,
            request_id: c.request_id,
        }),
        Request::ListStorageChunks(c) => {
            Requests::ListStorageChunks(official::ListStorageChunksCommand {
                segment: c.segment,
                delegation_token: c.delegation_token,
                request_id: c.request_id,
            })
        }
        Request::KeepAlive => Requests::KeepAlive(official::KeepAliveCommand {}),
    })
}

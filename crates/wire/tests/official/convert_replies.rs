//! Builds the official crate's reply for one of ours, field by field.

use pravaha_wire::*;
use pravega_wire_protocol::commands as official;
use pravega_wire_protocol::wire_commands::Replies;

fn keys(keys: &[TableKey]) -> Vec<official::TableKey> {
    keys.iter()
        .map(|key| official::TableKey::new(key.data.to_vec(), key.key_version))
        .collect()
}

fn entries(entries: &TableEntries) -> official::TableEntries {
    official::TableEntries {
        entries: entries
            .entries
            .iter()
            .map(|(k, v)| {
                (
                    official::TableKey::new(k.data.to_vec(), k.key_version),
                    official::TableValue::new(v.data.to_vec()),
                )
            })
            .collect(),
    }
}

/// `None` where the official crate has no command with our layout: OffsetLocated (Java only),
/// TableSegmentInfo and SegmentsBatchMerged (official layouts differ; tested separately).
///
/// InvalidEventNumber maps Java's `request_id` (2nd field) to the official `event_number`,
/// which is what the official decoder reads there.
#[allow(clippy::too_many_lines)]
pub fn official_reply(reply: &Reply) -> Option<Replies> {
    Some(match reply.clone() {
        Reply::OffsetLocated(_) | Reply::TableSegmentInfo(_) | Reply::SegmentsBatchMerged(_) => {
            return None
        }
        Reply::Hello(c) => Replies::Hello(official::HelloCommand {
            high_version: c.high_version,
            low_version: c.low_version,
        }),
        Reply::AppendSetup(c) => Replies::AppendSetup(official::AppendSetupCommand {
            request_id: c.request_id,
            segment: c.segment,
            writer_id: c.writer_id,
            last_event_number: c.last_event_number,
        }),
        Reply::DataAppended(c) => Replies::DataAppended(official::DataAppendedCommand {
            writer_id: c.writer_id,
            event_number: c.event_number,
            previous_event_number: c.previous_event_number,
            request_id: c.request_id,
            current_segment_write_offset: c.current_segment_write_offset,
        }),
        Reply::ConditionalCheckFailed(c) => {
            Replies::ConditionalCheckFailed(official::ConditionalCheckFailedCommand {
                writer_id: c.writer_id,
                event_number: c.event_number,
                request_id: c.request_id,
            })
        }
        Reply::SegmentRead(c) => Replies::SegmentRead(official::SegmentReadCommand {
            segment: c.segment,
            offset: c.offset,
            at_tail: c.at_tail,
            end_of_segment: c.end_of_segment,
            data: c.data.to_vec(),
            request_id: c.request_id,
        }),
        Reply::StreamSegmentInfo(c) => {
            Replies::StreamSegmentInfo(official::StreamSegmentInfoCommand {
                request_id: c.request_id,
                segment_name: c.segment_name,
                exists: c.exists,
                is_sealed: c.is_sealed,
                is_deleted: c.is_deleted,
                last_modified: c.last_modified,
                write_offset: c.write_offset,
                start_offset: c.start_offset,
            })
        }
        Reply::SegmentCreated(c) => Replies::SegmentCreated(official::SegmentCreatedCommand {
            request_id: c.request_id,
            segment: c.segment,
        }),
        Reply::SegmentSealed(c) => Replies::SegmentSealed(official::SegmentSealedCommand {
            request_id: c.request_id,
            segment: c.segment,
        }),
        Reply::SegmentDeleted(c) => Replies::SegmentDeleted(official::SegmentDeletedCommand {
            request_id: c.request_id,
            segment: c.segment,
        }),
        Reply::SegmentPolicyUpdated(c) => {
            Replies::SegmentPolicyUpdated(official::SegmentPolicyUpdatedCommand {
                request_id: c.request_id,
                segment: c.segment,
            })
        }
        Reply::SegmentAttribute(c) => {
            Replies::SegmentAttribute(official::SegmentAttributeCommand {
                request_id: c.request_id,
                value: c.value,
            })
        }
        Reply::SegmentAttributeUpdated(c) => {
            Replies::SegmentAttributeUpdated(official::SegmentAttributeUpdatedCommand {
                request_id: c.request_id,
                success: c.success,
            })
        }
        Reply::SegmentTruncated(c) => {
            Replies::SegmentTruncated(official::SegmentTruncatedCommand {
                request_id: c.request_id,
                segment: c.segment,
            })
        }
        Reply::WrongHost(c) => Replies::WrongHost(official::WrongHostCommand {
            request_id: c.request_id,
            segment: c.segment,
            correct_host: c.correct_host,
            server_stack_trace: c.server_stack_trace,
        }),
        Reply::SegmentIsSealed(c) => Replies::SegmentIsSealed(official::SegmentIsSealedCommand {
            request_id: c.request_id,
            segment: c.segment,
            server_stack_trace: c.server_stack_trace,
            offset: c.offset,
        }),
        Reply::SegmentAlreadyExists(c) => {
            Replies::SegmentAlreadyExists(official::SegmentAlreadyExistsCommand {
                request_id: c.request_id,
                segment: c.segment,
                server_stack_trace: c.server_stack_trace,
            })
        }
        Reply::NoSuchSegment(c) => Replies::NoSuchSegment(official::NoSuchSegmentCommand {
            request_id: c.request_id,
            segment: c.segment,
            server_stack_trace: c.server_stack_trace,
            offset: c.offset,
        }),
        Reply::InvalidEventNumber(c) => {
            Replies::InvalidEventNumber(official::InvalidEventNumberCommand {
                writer_id: c.writer_id,
                event_number: c.request_id,
                server_stack_trace: c.server_stack_trace,
            })
        }
        Reply::SegmentIsTruncated(c) => {
            Replies::SegmentIsTruncated(official::SegmentIsTruncatedCommand {
                request_id: c.request_id,
                segment: c.segment,
                start_offset: c.start_offset,
                server_stack_trace: c.server_stack_trace,
                offset: c.offset,
            })
        }
        Reply::OperationUnsupported(c) => {
            Replies::OperationUnsupported(official::OperationUnsupportedCommand {
                request_id: c.request_id,
                operation_name: c.operation_name,
                server_stack_trace: c.server_stack_trace,
            })
        }
        Reply::SegmentsMerged(c) => Replies::SegmentsMerged(official::SegmentsMergedCommand {
            request_id: c.request_id,
            target: c.target,
            source: c.source,
            new_target_write_offset: c.new_target_write_offset,
        }),
        Reply::AuthTokenCheckFailed(c) => {
            Replies::AuthTokenCheckFailed(official::AuthTokenCheckFailedCommand {
                request_id: c.request_id,
                server_stack_trace: c.server_stack_trace,
                error_code: c.error_code,
            })
        }
        Reply::ErrorMessage(c) => Replies::ErrorMessage(official::ErrorMessageCommand {
            request_id: c.request_id,
            segment: c.segment,
            message: c.message,
            error_code: c.error_code,
        }),
        Reply::TableEntriesUpdated(c) => {
            Replies::TableEntriesUpdated(official::TableEntriesUpdatedCommand {
                request_id: c.request_id,
                updated_versions: c.updated_versions,
            })
        }
        Reply::TableKeysRemoved(c) => {
            Replies::TableKeysRemoved(official::TableKeysRemovedCommand {
                request_id: c.request_id,
                segment: c.segment,
            })
        }
        Reply::TableRead(c) => Replies::TableRead(official::TableReadCommand {
            request_id: c.request_id,
            segment: c.segment,
            entries: entries(&c.entries),
        }),
        Reply::TableSegmentNotEmpty(c) => {
            Replies::TableSegmentNotEmpty(official::TableSegmentNotEmptyCommand {
                request_id: c.request_id,
                segment: c.segment,
                server_stack_trace: c.server_stack_trace,
            })
        }
        Reply::TableKeyDoesNotExist(c) => {
            Replies::TableKeyDoesNotExist(official::TableKeyDoesNotExistCommand {
                request_id: c.request_id,
                segment: c.segment,
                server_stack_trace: c.server_stack_trace,
            })
        }
        Reply::TableKeyBadVersion(c) => {
            Replies::TableKeyBadVersion(official::TableKeyBadVersionCommand {
                request_id: c.request_id,
                segment: c.segment,
                server_stack_trace: c.server_stack_trace,
            })
        }
        Reply::TableKeysRead(c) => Replies::TableKeysRead(official::TableKeysReadCommand {
            request_id: c.request_id,
            segment: c.segment,
            keys: keys(&c.keys),
            continuation_token: c.continuation_token.to_vec(),
        }),
        Reply::TableEntriesRead(c) => {
            Replies::TableEntriesRead(official::TableEntriesReadCommand {
                request_id: c.request_id,
                segment: c.segment,
                entries: entries(&c.entries),
                continuation_token: c.continuation_token.to_vec(),
            })
        }
        Reply::TableEntriesDeltaRead(c) => {
            Replies::TableEntriesDeltaRead(official::TableEntriesDeltaReadCommand {
                request_id: c.request_id,
                segment: c.segment,
                entries: entries(&c.entries),
                should_clear: c.should_clear,
                reached_end: c.reached_end,
                last_position: c.last_position,
            })
        }
        Reply::StorageFlushed(c) => Replies::StorageFlushed(official::StorageFlushedCommand {
            request_id: c.request_id,
        }),
        Reply::StorageChunksListed(c) => {
            Replies::StorageChunksListed(official::StorageChunksListedCommand {
                request_id: c.request_id,
                chunks: c
                    .chunks
                    .into_iter()
                    .map(|chunk| official::ChunkInfo {
                        length_in_metadata: chunk.length_in_metadata,
                        length_in_storage: chunk.length_in_storage,
                        start_offset: chunk.start_offset,
                        chunck_name: chunk.chunk_name,
                        exists_in_storage: chunk.exists_in_storage,
                    })
                    .collect(),
            })
        }
        Reply::KeepAlive => Replies::KeepAlive(official::KeepAliveCommand {}),
    })
}

//! Segment requests: create, seal, truncate, delete, info, policy, merge, attributes, reads.

use pravaha_wire::{self as wire, Reply};

use crate::client::next_request_id;
use crate::error::failure;
use crate::{
    ClientError, Created, Endpoint, ScalePolicy, SegmentClient, SegmentInfo, SegmentRead,
    TableSegmentInfo,
};

impl SegmentClient {
    /// Creates a stream segment with `policy` (stored as segment attributes).
    pub async fn create_segment(
        &self,
        at: Endpoint,
        segment: &str,
        policy: ScalePolicy,
        token: &str,
    ) -> Result<Created, ClientError> {
        let request = wire::CreateSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            target_rate: policy.target_rate,
            scale_type: policy.scale_type,
            delegation_token: self.token(token),
            rollover_size_bytes: None,
        };
        created("CreateSegment", self.call(at, request.into()).await?)
    }

    /// Creates a table segment with variable-length keys.
    pub async fn create_table_segment(
        &self,
        at: Endpoint,
        segment: &str,
        token: &str,
    ) -> Result<Created, ClientError> {
        let request = wire::CreateTableSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            delegation_token: self.token(token),
            sorted: None,
            key_length: None,
            rollover_size_bytes: None,
        };
        created("CreateTableSegment", self.call(at, request.into()).await?)
    }

    /// Creates a table segment whose keys all have `key_length` bytes (a partition of a Java
    /// Key-Value Table; 0 = variable-length keys), with a rollover size hint
    /// (`rollover_size_bytes`, 0 = the store's default).
    pub async fn create_fixed_key_table_segment(
        &self,
        at: Endpoint,
        segment: &str,
        key_length: i32,
        rollover_size_bytes: i64,
        token: &str,
    ) -> Result<Created, ClientError> {
        let request = wire::CreateTableSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            delegation_token: self.token(token),
            // The wire carries the later options only after the earlier ones.
            sorted: Some(false),
            key_length: Some(key_length),
            rollover_size_bytes: Some(rollover_size_bytes),
        };
        created("CreateTableSegment", self.call(at, request.into()).await?)
    }

    /// What `GetTableSegmentInfo` reports about a table segment.
    pub async fn table_segment_info(
        &self,
        at: Endpoint,
        segment: &str,
        token: &str,
    ) -> Result<TableSegmentInfo, ClientError> {
        let request = wire::GetTableSegmentInfo {
            request_id: next_request_id(),
            segment_name: segment.to_owned(),
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::TableSegmentInfo(info) => Ok(TableSegmentInfo {
                segment: info.segment_name,
                length: info.length,
                start_offset: info.start_offset,
                entry_count: info.entry_count,
                key_length: info.key_length,
            }),
            other => Err(failure("GetTableSegmentInfo", other)),
        }
    }

    /// Seals a segment (stream or table); sealing a sealed segment succeeds.
    pub async fn seal_segment(
        &self,
        at: Endpoint,
        segment: &str,
        token: &str,
    ) -> Result<(), ClientError> {
        let request = wire::SealSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentSealed(_) | Reply::SegmentIsSealed(_) => Ok(()),
            other => Err(failure("SealSegment", other)),
        }
    }

    /// Drops the data below `offset` (at most the segment's length).
    pub async fn truncate_segment(
        &self,
        at: Endpoint,
        segment: &str,
        offset: i64,
        token: &str,
    ) -> Result<(), ClientError> {
        let request = wire::TruncateSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            truncation_offset: offset,
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentTruncated(_) => Ok(()),
            other => Err(failure("TruncateSegment", other)),
        }
    }

    /// Deletes a segment; a missing one is `Err(ClientError::NoSuchSegment)`.
    pub async fn delete_segment(
        &self,
        at: Endpoint,
        segment: &str,
        token: &str,
    ) -> Result<(), ClientError> {
        let request = wire::DeleteSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentDeleted(_) => Ok(()),
            other => Err(failure("DeleteSegment", other)),
        }
    }

    /// Deletes a table segment; with `must_be_empty`, a table holding keys is
    /// `Err(ClientError::TableNotEmpty)`. A missing one is `Err(ClientError::NoSuchSegment)`
    /// (the official client counts that as success; callers decide).
    pub async fn delete_table_segment(
        &self,
        at: Endpoint,
        segment: &str,
        must_be_empty: bool,
        token: &str,
    ) -> Result<(), ClientError> {
        let request = wire::DeleteTableSegment {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            must_be_empty,
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentDeleted(_) => Ok(()),
            other => Err(failure("DeleteTableSegment", other)),
        }
    }

    pub async fn segment_info(
        &self,
        at: Endpoint,
        segment: &str,
        token: &str,
    ) -> Result<SegmentInfo, ClientError> {
        let request = wire::GetStreamSegmentInfo {
            request_id: next_request_id(),
            segment_name: segment.to_owned(),
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            // Java servers of some versions answer a missing segment this way.
            Reply::StreamSegmentInfo(info) if !info.exists || info.is_deleted => {
                Err(ClientError::NoSuchSegment(info.segment_name))
            }
            Reply::StreamSegmentInfo(info) => Ok(SegmentInfo {
                segment: info.segment_name,
                length: info.write_offset,
                start_offset: info.start_offset,
                sealed: info.is_sealed,
                last_modified_ms: info.last_modified,
            }),
            other => Err(failure("GetStreamSegmentInfo", other)),
        }
    }

    /// Replaces the scale policy stored with a stream segment.
    pub async fn update_segment_policy(
        &self,
        at: Endpoint,
        segment: &str,
        policy: ScalePolicy,
        token: &str,
    ) -> Result<(), ClientError> {
        let request = wire::UpdateSegmentPolicy {
            request_id: next_request_id(),
            segment: segment.to_owned(),
            target_rate: policy.target_rate,
            scale_type: policy.scale_type,
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentPolicyUpdated(_) => Ok(()),
            other => Err(failure("UpdateSegmentPolicy", other)),
        }
    }

    /// Seals `source` if needed, appends all of it to `target` atomically and deletes it;
    /// returns the target's new length. Both must live in the same container (a transaction
    /// segment and its parent always do).
    pub async fn merge_segments(
        &self,
        at: Endpoint,
        target: &str,
        source: &str,
        token: &str,
    ) -> Result<i64, ClientError> {
        let request = wire::MergeSegments {
            request_id: next_request_id(),
            target: target.to_owned(),
            source: source.to_owned(),
            delegation_token: self.token(token),
            attribute_updates: None,
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentsMerged(merged) => Ok(merged.new_target_write_offset),
            // Only with attribute conditions, which this request does not send.
            Reply::SegmentAttributeUpdated(wire::SegmentAttributeUpdated {
                success: false,
                ..
            }) => Err(ClientError::ConditionalCheckFailed),
            other => Err(failure("MergeSegments", other)),
        }
    }

    /// A segment attribute's value; `None` if it was never set.
    pub async fn get_attribute(
        &self,
        at: Endpoint,
        segment: &str,
        attribute: u128,
        token: &str,
    ) -> Result<Option<i64>, ClientError> {
        let request = wire::GetSegmentAttribute {
            request_id: next_request_id(),
            segment_name: segment.to_owned(),
            attribute_id: attribute,
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentAttribute(reply) => {
                Ok((reply.value != wire::NULL_ATTRIBUTE_VALUE).then_some(reply.value))
            }
            other => Err(failure("GetSegmentAttribute", other)),
        }
    }

    /// Compare-and-set of a segment attribute: sets `new` if the current value is `expected`
    /// (`None` = unset). Returns whether it was set.
    pub async fn update_attribute(
        &self,
        at: Endpoint,
        segment: &str,
        attribute: u128,
        new: i64,
        expected: Option<i64>,
        token: &str,
    ) -> Result<bool, ClientError> {
        let request = wire::UpdateSegmentAttribute {
            request_id: next_request_id(),
            segment_name: segment.to_owned(),
            attribute_id: attribute,
            new_value: new,
            expected_value: expected.unwrap_or(wire::NULL_ATTRIBUTE_VALUE),
            delegation_token: self.token(token),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentAttributeUpdated(reply) => Ok(reply.success),
            other => Err(failure("UpdateSegmentAttribute", other)),
        }
    }

    /// Reads up to `max_length` bytes from `offset`. At the tail of an open segment the server
    /// waits (up to 15 s) for data, then may answer with empty data and `at_tail`; at the end
    /// of a sealed segment the answer is empty with `end_of_segment`. Below the start offset:
    /// `Err(ClientError::Truncated)`.
    pub async fn read_segment(
        &self,
        at: Endpoint,
        segment: &str,
        offset: i64,
        max_length: i32,
        token: &str,
    ) -> Result<SegmentRead, ClientError> {
        let request = wire::ReadSegment {
            segment: segment.to_owned(),
            offset,
            suggested_length: max_length,
            delegation_token: self.token(token),
            request_id: next_request_id(),
        };
        match self.call(at, request.into()).await? {
            Reply::SegmentRead(read) if read.offset != offset => Err(ClientError::Protocol(
                format!("read of {segment} at {offset} answered at {}", read.offset),
            )),
            Reply::SegmentRead(read) => Ok(SegmentRead {
                offset: read.offset,
                data: read.data,
                at_tail: read.at_tail,
                end_of_segment: read.end_of_segment,
            }),
            other => Err(failure("ReadSegment", other)),
        }
    }
}

fn created(request: &'static str, reply: Reply) -> Result<Created, ClientError> {
    match reply {
        Reply::SegmentCreated(_) => Ok(Created::New),
        Reply::SegmentAlreadyExists(_) => Ok(Created::AlreadyExisted),
        other => Err(failure(request, other)),
    }
}

//! From engine outcomes to protocol replies: each `SegmentError` becomes the reply the protocol
//! defines for its case.

use pravaha_segmentstore::SegmentError;
use pravaha_wire::{
    ErrorMessage, NoSuchSegment, Reply, SegmentAlreadyExists, SegmentIsSealed, SegmentIsTruncated,
    TableKeyBadVersion, TableKeyDoesNotExist, WrongHost,
};

/// Segment attributes with a fixed meaning, numbered as Pravega numbers its core attributes
/// (high 64 bits 0x8000000000000000, low 64 bits the index).
pub mod attributes {
    const CORE: u128 = 0x8000_0000_0000_0000 << 64;
    pub const CREATION_TIME: u128 = CORE;
    pub const SCALE_POLICY_TYPE: u128 = CORE | 2;
    pub const SCALE_POLICY_RATE: u128 = CORE | 3;
    pub const ROLLOVER_SIZE: u128 = CORE | 4;
    pub const TABLE_KEY_LENGTH: u128 = CORE | 17;
}

/// The protocol's `ErrorMessage` codes.
pub const ERROR_UNSPECIFIED: i32 = -1;
pub const ERROR_ILLEGAL_ARGUMENT: i32 = 0;

pub fn wrong_host(request_id: i64, segment: &str) -> Reply {
    Reply::WrongHost(WrongHost {
        request_id,
        segment: segment.to_owned(),
        correct_host: String::new(),
        server_stack_trace: String::new(),
    })
}

pub fn illegal_argument(request_id: i64, segment: &str, message: impl Into<String>) -> Reply {
    Reply::ErrorMessage(ErrorMessage {
        request_id,
        segment: segment.to_owned(),
        message: message.into(),
        error_code: ERROR_ILLEGAL_ARGUMENT,
    })
}

/// The reply for a failed request on `segment`. `offset` is what the offset field of
/// `NoSuchSegment` and `SegmentIsSealed` carries (the read offset, or -1).
pub fn for_error(request_id: i64, segment: &str, error: &SegmentError, offset: i64) -> Reply {
    let trace = error.to_string();
    match error {
        SegmentError::NoSuchSegment(name) => Reply::NoSuchSegment(NoSuchSegment {
            request_id,
            segment: name.clone(),
            server_stack_trace: trace,
            offset,
        }),
        SegmentError::AlreadyExists(name) => Reply::SegmentAlreadyExists(SegmentAlreadyExists {
            request_id,
            segment: name.clone(),
            server_stack_trace: trace,
        }),
        SegmentError::Sealed(name) => Reply::SegmentIsSealed(SegmentIsSealed {
            request_id,
            segment: name.clone(),
            server_stack_trace: trace,
            offset,
        }),
        SegmentError::Truncated {
            segment,
            offset,
            start_offset,
        } => Reply::SegmentIsTruncated(SegmentIsTruncated {
            request_id,
            segment: segment.clone(),
            start_offset: to_i64(*start_offset),
            server_stack_trace: trace,
            offset: to_i64(*offset),
        }),
        SegmentError::TableKeyDoesNotExist(name) => {
            Reply::TableKeyDoesNotExist(TableKeyDoesNotExist {
                request_id,
                segment: name.clone(),
                server_stack_trace: trace,
            })
        }
        SegmentError::TableKeyVersionMismatch { segment, .. } => {
            Reply::TableKeyBadVersion(TableKeyBadVersion {
                request_id,
                segment: segment.clone(),
                server_stack_trace: trace,
            })
        }
        // The container is not serving (stopping, or failed): let the client look again.
        SegmentError::ContainerNotReady(_) => wrong_host(request_id, segment),
        SegmentError::NotSealed(_)
        | SegmentError::BadOffset { .. }
        | SegmentError::AttributeMismatch { .. }
        | SegmentError::WrongSegmentKind { .. }
        | SegmentError::TooLarge { .. }
        | SegmentError::InvalidArgument(_) => illegal_argument(request_id, segment, trace),
        SegmentError::Log(_) | SegmentError::ChunkStorage(_) | SegmentError::Corrupt(_) => {
            tracing::error!(segment, %error, "request failed in the storage engine");
            Reply::ErrorMessage(ErrorMessage {
                request_id,
                segment: segment.to_owned(),
                message: trace,
                error_code: ERROR_UNSPECIFIED,
            })
        }
    }
}

/// Offsets and lengths are below 2^63 in practice; saturate rather than wrap.
pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

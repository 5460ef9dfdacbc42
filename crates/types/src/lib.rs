//! Identifiers and naming rules shared by every layer of Pravaha.
//!
//! This crate owns the small vocabulary that the wire codec, the storage engine and the controller
//! must agree on: container ids, segment-name parsing (which name a transaction or transient
//! segment is routed with) and the stable segment-to-container mapping. It knows nothing of I/O.

pub mod attributes;
mod names;
mod routing;
mod streams;
pub mod watermark;

pub use names::{
    container_for_segment, primary_segment_name, routing_name, NameError, SegmentName,
};
pub use routing::{
    key_space_part, key_value_table_partition, key_value_table_position, routing_key_position,
};
pub use streams::{
    parse_qualified_segment_name, qualified_segment_name, segment_epoch, segment_id,
    segment_number, transaction_segment_name, validate_scope_name, validate_stream_name,
    StreamNameError, INTERNAL_NAME_PREFIX, MAX_SCOPE_NAME_LENGTH, MAX_STREAM_NAME_LENGTH,
};

/// The id of a segment container: the unit of ownership, recovery and load balancing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(pub u32);

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

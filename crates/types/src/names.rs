//! Segment names and the segment-to-container mapping.

use crate::ContainerId;

/// Suffixes that make a segment a satellite of its primary segment. Such a segment lives in the
/// container of its primary, so that merging it into the primary (a transaction commit, a large
/// event) stays inside one container.
const SATELLITE_MARKERS: [&str; 3] = ["#transaction.", "#transient.", "#index"];

/// The longest segment name accepted, in bytes (names travel as u16-prefixed strings).
pub const MAX_SEGMENT_NAME_BYTES: usize = 1024;

/// Why a segment name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("segment name is empty")]
    Empty,
    #[error("segment name is {length} bytes long; the limit is {MAX_SEGMENT_NAME_BYTES}")]
    TooLong { length: usize },
    #[error("segment name contains a NUL or control character")]
    ControlCharacter,
}

/// A validated segment name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName(String);

impl SegmentName {
    /// Validates `name`: non-empty, at most `MAX_SEGMENT_NAME_BYTES` (1024) bytes, no control characters.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_SEGMENT_NAME_BYTES {
            return Err(NameError::TooLong { length: name.len() });
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a segment is routed by: a transaction, transient or index segment is routed with the
/// segment it belongs to; any other segment is its own primary.
pub fn primary_segment_name(name: &str) -> &str {
    SATELLITE_MARKERS
        .iter()
        .filter_map(|marker| name.find(marker))
        .min()
        .map_or(name, |cut| &name[..cut])
}

/// The part of a segment name that decides its container: the primary name without a trailing
/// `.#epoch.<n>`. Every generation of a segment number therefore lives in one container, so a
/// transaction segment created beside a segment of an old epoch can be merged into its copy in a
/// new epoch (rolling transactions).
pub fn routing_name(name: &str) -> &str {
    let primary = primary_segment_name(name);
    match primary.rfind(".#epoch.") {
        Some(at)
            if !primary[at..].contains('/')
                && primary[at + ".#epoch.".len()..]
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                && primary.len() > at + ".#epoch.".len() =>
        {
            &primary[..at]
        }
        _ => primary,
    }
}

/// The container that owns `name` among `container_count` containers.
///
/// The mapping is a persisted contract (changing it moves segments between containers): CRC32C of
/// the UTF-8 bytes of the segment's [`routing_name`], modulo the container count.
pub fn container_for_segment(name: &str, container_count: u32) -> ContainerId {
    assert!(
        container_count > 0,
        "a segment store has at least one container"
    );
    let hash = crc32c::crc32c(routing_name(name).as_bytes());
    ContainerId(hash % container_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn satellites_route_with_their_primary() {
        let primary = "scope/stream/3.#epoch.1";
        let txn = "scope/stream/3.#epoch.1#transaction.00000000000000010000000000000002";
        let transient = "scope/stream/3.#epoch.1#transient.0123.4567";
        assert_eq!(primary_segment_name(txn), primary);
        assert_eq!(primary_segment_name(transient), primary);
        assert_eq!(primary_segment_name(primary), primary);
        for count in [1, 4, 7, 64] {
            assert_eq!(
                container_for_segment(txn, count),
                container_for_segment(primary, count)
            );
        }
    }

    #[test]
    fn mapping_is_stable() {
        // Golden values: the mapping is persisted, a change here relocates every segment.
        assert_eq!(crc32c::crc32c(b"scope/stream/0"), 0x91BB_3825);
        assert_eq!(
            container_for_segment("scope/stream/0.#epoch.0", 4),
            ContainerId(1)
        );
        // Every generation of a segment number, and its satellites, share the container.
        assert_eq!(routing_name("scope/stream/0.#epoch.7"), "scope/stream/0");
        assert_eq!(
            routing_name("scope/stream/0.#epoch.0#transaction.00000000000000000000000000000001"),
            "scope/stream/0"
        );
        assert_eq!(routing_name("scope/stream/0"), "scope/stream/0");
        assert_eq!(routing_name("a/b/0.#epoch.x"), "a/b/0.#epoch.x");
        assert_eq!(
            routing_name("_system/_controller_metadata/0.#epoch.0"),
            "_system/_controller_metadata/0"
        );
        for count in [1, 4, 7] {
            assert_eq!(
                container_for_segment("sc/st/3.#epoch.0", count),
                container_for_segment("sc/st/3.#epoch.12", count)
            );
        }
    }

    #[test]
    fn invalid_names_are_refused() {
        assert_eq!(SegmentName::new(""), Err(NameError::Empty));
        assert_eq!(SegmentName::new("a\0b"), Err(NameError::ControlCharacter));
        let long = "x".repeat(MAX_SEGMENT_NAME_BYTES + 1);
        assert!(matches!(
            SegmentName::new(long),
            Err(NameError::TooLong { .. })
        ));
        assert!(SegmentName::new("scope/stream/0.#epoch.0").is_ok());
    }

    proptest! {
        #[test]
        fn container_is_in_range(name in ".{1,64}", count in 1u32..256) {
            prop_assert!(container_for_segment(&name, count).0 < count);
        }
    }
}

//! Segment attribute ids that the segment store and the controller must agree on.
//!
//! Pravega numbers its core attributes with the high 64 bits 0x8000_0000_0000_0000 and a small
//! index in the low 64 bits (segmentstore `Attributes.java`). The measured append rates are
//! read-only attributes in the same space, computed by the segment store when asked
//! (`GetSegmentAttribute`) and never stored; see docs/segment-server.md, "Append rates".

/// The high 64 bits of every core attribute id.
pub const CORE_ATTRIBUTE_SPACE: u128 = 0x8000_0000_0000_0000 << 64;

/// The scaling policy type a segment was created with: 0 none (fixed), 1 KiB/s, 2 events/s.
pub const SCALE_POLICY_TYPE: u128 = CORE_ATTRIBUTE_SPACE | 2;
/// The target rate of the scaling policy, in the unit its type names.
pub const SCALE_POLICY_RATE: u128 = CORE_ATTRIBUTE_SPACE | 3;

/// How many moving averages each rate has (Pravega's 2, 5, 10 and 20 minute rates).
pub const RATE_WINDOWS: usize = 4;

/// Measured event rates, one per moving average (shortest first), in events per 1000 s
/// (events per second × 1000, rounded).
pub const EVENT_RATE: [u128; RATE_WINDOWS] = [
    CORE_ATTRIBUTE_SPACE | 0x100,
    CORE_ATTRIBUTE_SPACE | 0x102,
    CORE_ATTRIBUTE_SPACE | 0x104,
    CORE_ATTRIBUTE_SPACE | 0x106,
];

/// Measured byte rates, one per moving average (shortest first), in bytes per second (rounded).
pub const BYTE_RATE: [u128; RATE_WINDOWS] = [
    CORE_ATTRIBUTE_SPACE | 0x101,
    CORE_ATTRIBUTE_SPACE | 0x103,
    CORE_ATTRIBUTE_SPACE | 0x105,
    CORE_ATTRIBUTE_SPACE | 0x107,
];

/// For how long (milliseconds) the segment store has measured the segment's rates; a moving
/// average means little before it has run for about its time constant.
pub const RATE_OBSERVED_MS: u128 = CORE_ATTRIBUTE_SPACE | 0x108;

/// `EVENT_RATE` values are events per second multiplied by this.
pub const EVENT_RATE_SCALE: i64 = 1000;

/// Whether `id` is one of the computed, read-only rate attributes.
pub fn is_rate_attribute(id: u128) -> bool {
    EVENT_RATE.contains(&id) || BYTE_RATE.contains(&id) || id == RATE_OBSERVED_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_ids_are_distinct_core_attributes() {
        let mut ids: Vec<u128> = EVENT_RATE.iter().chain(&BYTE_RATE).copied().collect();
        ids.push(RATE_OBSERVED_MS);
        for id in &ids {
            assert_eq!(id >> 64, 0x8000_0000_0000_0000);
            assert!(is_rate_attribute(*id));
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 2 * RATE_WINDOWS + 1);
        assert!(!is_rate_attribute(SCALE_POLICY_TYPE));
        assert!(!is_rate_attribute(SCALE_POLICY_RATE));
    }
}

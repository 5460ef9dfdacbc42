//! A reader group's configuration and the pure rules over it: validation, which streams an
//! update unsubscribes from, and the group's UUID.

use std::collections::BTreeMap;

use pravaha_types::{validate_scope_name, validate_stream_name};
use serde::{Deserialize, Serialize};

/// Segment id → offset.
pub type StreamCut = BTreeMap<i64, i64>;

/// Pravega's `StreamDataRetention`: whether (and how) the group holds back truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupRetention {
    /// Not a subscriber: its reading never holds back truncation.
    None,
    /// A subscriber whose cut the application publishes.
    Manual,
    /// A subscriber whose cut is published at each checkpoint.
    Automatic,
}

impl GroupRetention {
    /// From the API's `retentionType` (0 NONE, 1 MANUAL, 2 AUTOMATIC).
    pub fn from_api(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::None),
            1 => Some(Self::Manual),
            2 => Some(Self::Automatic),
            _ => None,
        }
    }

    pub fn to_api(self) -> i32 {
        match self {
            Self::None => 0,
            Self::Manual => 1,
            Self::Automatic => 2,
        }
    }

    /// Whether the group is a subscriber of its streams.
    pub fn is_subscriber(self) -> bool {
        self != Self::None
    }
}

/// A reader group's configuration (Pravega's `ReaderGroupConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderGroupConfig {
    pub group_refresh_time_ms: i64,
    /// Negative: no automatic checkpoints.
    pub automatic_checkpoint_interval_ms: i64,
    pub max_outstanding_checkpoint_request: i32,
    pub retention: GroupRetention,
    /// Bumped by every update; updates must name the generation they replace.
    pub generation: i64,
    /// Scoped stream name (`scope/stream`) → where reading starts (empty: unbounded).
    pub starting_cuts: BTreeMap<String, StreamCut>,
    /// Scoped stream name → where reading stops (empty or absent: unbounded).
    pub ending_cuts: BTreeMap<String, StreamCut>,
    pub rollover_size_bytes: i64,
}

impl ReaderGroupConfig {
    /// Checks the configuration as Pravega's `ReaderGroupConfig` builder does.
    pub fn validate(&self) -> Result<(), String> {
        if self.starting_cuts.is_empty() {
            return Err("a reader group reads at least one stream".into());
        }
        for name in self.starting_cuts.keys().chain(self.ending_cuts.keys()) {
            let (scope, stream) = split_scoped_name(name)
                .ok_or_else(|| format!("{name:?} is not a scoped stream name"))?;
            validate_scope_name(scope, true).map_err(|e| e.to_string())?;
            validate_stream_name(stream, true).map_err(|e| e.to_string())?;
        }
        if let Some(name) = self
            .ending_cuts
            .keys()
            .find(|name| !self.starting_cuts.contains_key(*name))
        {
            return Err(format!("stream {name} has an end but is not read"));
        }
        if self.max_outstanding_checkpoint_request <= 0 {
            return Err("maxOutstandingCheckpointRequest must be positive".into());
        }
        if self.group_refresh_time_ms < 0 || self.generation < 0 || self.rollover_size_bytes < 0 {
            return Err("refresh time, generation and rollover size must not be negative".into());
        }
        Ok(())
    }

    /// The streams the group reads, as (scope, stream).
    pub fn streams(&self) -> impl Iterator<Item = (&str, &str)> {
        self.starting_cuts
            .keys()
            .filter_map(|name| split_scoped_name(name))
    }
}

/// `scope/name` → (scope, name); both non-empty and without another `/`.
pub fn split_scoped_name(name: &str) -> Option<(&str, &str)> {
    let (scope, rest) = name.split_once('/')?;
    let valid = !scope.is_empty() && !rest.is_empty() && !rest.contains('/');
    valid.then_some((scope, rest))
}

/// The streams an update unsubscribes the group from, as Pravega decides them: all of them when
/// it stops being a subscriber, none when it becomes one, else those it no longer reads.
pub(crate) fn streams_to_unsubscribe(
    current: &ReaderGroupConfig,
    new: &ReaderGroupConfig,
) -> Vec<String> {
    let (was, will_be) = (
        current.retention.is_subscriber(),
        new.retention.is_subscriber(),
    );
    match (was, will_be) {
        (false, _) => Vec::new(),
        (true, false) => current.starting_cuts.keys().cloned().collect(),
        (true, true) => current
            .starting_cuts
            .keys()
            .filter(|name| !new.starting_cuts.contains_key(*name))
            .cloned()
            .collect(),
    }
}

/// A UUID in its text form (hex digits in groups of 8-4-4-4-12; empty = nil).
pub fn parse_uuid(text: &str) -> Option<u128> {
    if text.is_empty() {
        return Some(0);
    }
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return None;
    }
    let digits = groups.concat();
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&digits, 16).ok()
}

/// The canonical text form: lower-case, 8-4-4-4-12.
pub fn format_uuid(id: u128) -> String {
    let hex = format!("{id:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A random (version 4) UUID.
pub(crate) fn new_uuid() -> u128 {
    let random: u128 = rand::random();
    (random & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(retention: GroupRetention, streams: &[&str]) -> ReaderGroupConfig {
        ReaderGroupConfig {
            group_refresh_time_ms: 3000,
            automatic_checkpoint_interval_ms: 30_000,
            max_outstanding_checkpoint_request: 3,
            retention,
            generation: 0,
            starting_cuts: streams
                .iter()
                .map(|s| ((*s).to_owned(), StreamCut::new()))
                .collect(),
            ending_cuts: BTreeMap::new(),
            rollover_size_bytes: 0,
        }
    }

    #[test]
    fn uuids_round_trip_and_new_ones_are_version_4() {
        let text = "123e4567-e89b-12d3-a456-426614174000";
        assert_eq!(format_uuid(parse_uuid(text).unwrap()), text);
        assert_eq!(
            parse_uuid("123E4567-E89B-12D3-A456-426614174000"),
            parse_uuid(text)
        );
        assert_eq!(parse_uuid(""), Some(0));
        for bad in [
            "x",
            "123e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-42661417400g",
            "+23e4567-e89b-12d3-a456-426614174000",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
        let id = format_uuid(new_uuid());
        assert_eq!(&id[14..15], "4", "{id}");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(new_uuid(), new_uuid());
    }

    #[test]
    fn configurations_are_validated_as_pravega_does() {
        assert_eq!(config(GroupRetention::None, &["sc/st"]).validate(), Ok(()));
        assert!(config(GroupRetention::None, &[]).validate().is_err());
        assert!(config(GroupRetention::None, &["st"]).validate().is_err());
        assert!(config(GroupRetention::None, &["sc/a/b"])
            .validate()
            .is_err());
        assert!(config(GroupRetention::None, &["sc/bad name"])
            .validate()
            .is_err());
        let mut no_checkpoints = config(GroupRetention::None, &["sc/st"]);
        no_checkpoints.max_outstanding_checkpoint_request = 0;
        assert!(no_checkpoints.validate().is_err());
        let mut unread_end = config(GroupRetention::None, &["sc/st"]);
        unread_end
            .ending_cuts
            .insert("sc/other".into(), StreamCut::from([(0, 5)]));
        assert!(unread_end.validate().is_err());
    }

    #[test]
    fn updates_unsubscribe_as_pravega_does() {
        let (none, manual) = (GroupRetention::None, GroupRetention::Manual);
        let ab = |r| config(r, &["sc/a", "sc/b"]);
        let bc = |r| config(r, &["sc/b", "sc/c"]);
        assert!(streams_to_unsubscribe(&ab(none), &bc(manual)).is_empty());
        assert_eq!(
            streams_to_unsubscribe(&ab(manual), &bc(none)),
            ["sc/a", "sc/b"]
        );
        assert_eq!(streams_to_unsubscribe(&ab(manual), &bc(manual)), ["sc/a"]);
        assert!(streams_to_unsubscribe(&ab(none), &bc(none)).is_empty());
    }
}

//! Pieces shared by the model-based test (`model.rs`) and the crash simulation
//! (`simulation.rs`): the container thresholds, the paused clock, and the rules of the in-memory
//! reference models that do not depend on how each model stores a segment.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use pravaha_segmentstore::{
    AppendConditions, AttributeUpdate, Clock, ContainerConfig, ExpectedVersion, SegmentError,
    SegmentKind,
};
use pravaha_storage::log::LogConfig;

/// Thresholds small enough that Tier-2 flushes, checkpoints, log truncation and cache eviction
/// all happen.
pub fn config() -> ContainerConfig {
    ContainerConfig {
        log: LogConfig {
            max_file_bytes: 8 << 10,
            ..LogConfig::default()
        },
        cache_budget_bytes: 16 << 10,
        chunk_target_bytes: 4 << 10,
        chunk_max_age: Duration::from_millis(10),
        flush_interval: Duration::from_millis(5),
        checkpoint_log_bytes: 8 << 10,
        read_ahead_bytes: 2 << 10,
        ..ContainerConfig::default()
    }
}

/// Wall-clock milliseconds that follow tokio's (paused) clock: deterministic, and known to the
/// models too.
pub struct PausedClock {
    pub origin: tokio::time::Instant,
}

impl Clock for PausedClock {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000 + u64::try_from(self.origin.elapsed().as_millis()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Rules of the reference models.

pub fn no_such(name: &str) -> SegmentError {
    SegmentError::NoSuchSegment(name.to_owned())
}

pub fn wrong_kind(name: &str, actual: SegmentKind, needed: SegmentKind) -> SegmentError {
    SegmentError::WrongSegmentKind {
        segment: name.to_owned(),
        actual: actual.name(),
        needed: needed.name(),
    }
}

/// Whether a segment of `actual` kind, `sealed` or not, accepts a write that needs `needed`.
pub fn check_writable(
    name: &str,
    actual: SegmentKind,
    sealed: bool,
    needed: SegmentKind,
) -> Result<(), SegmentError> {
    if actual != needed {
        return Err(wrong_kind(name, actual, needed));
    }
    if sealed {
        return Err(SegmentError::Sealed(name.to_owned()));
    }
    Ok(())
}

/// Checks an append's conditions against a segment's attributes and length: `Ok(true)` when it
/// is a duplicate (its writer's event number is not past the last one), which is not applied.
pub fn check_append(
    name: &str,
    attributes: &BTreeMap<u128, i64>,
    length: u64,
    conditions: &AppendConditions,
) -> Result<bool, SegmentError> {
    if let Some((writer, event)) = conditions.writer {
        if attributes.get(&writer).is_some_and(|&last| event <= last) {
            return Ok(true);
        }
    }
    if let Some(expected) = conditions.expected_offset {
        if expected != length {
            return Err(SegmentError::BadOffset {
                segment: name.to_owned(),
                expected: length,
                given: expected,
            });
        }
    }
    Ok(false)
}

/// The attributes after `updates`, all or none of which apply.
pub fn updated_attributes(
    name: &str,
    attributes: &BTreeMap<u128, i64>,
    updates: &[AttributeUpdate],
) -> Result<BTreeMap<u128, i64>, SegmentError> {
    let mut values = attributes.clone();
    for update in updates {
        if let Some(expected) = update.expected {
            let actual = values.get(&update.id).copied();
            if actual != expected {
                return Err(SegmentError::AttributeMismatch {
                    segment: name.to_owned(),
                    attribute: update.id,
                    expected,
                    actual,
                });
            }
        }
        values.insert(update.id, update.value);
    }
    Ok(values)
}

/// Whether `source` (of `kind`, `sealed` or not, starting at `start`) may be merged into
/// `target`, once the target is known to be writable.
pub fn check_merge_source(
    target: &str,
    source: &str,
    kind: SegmentKind,
    sealed: bool,
    start: u64,
) -> Result<(), SegmentError> {
    if source == target {
        return Err(SegmentError::InvalidArgument(
            "a segment cannot be merged into itself".into(),
        ));
    }
    if kind != SegmentKind::Stream {
        return Err(wrong_kind(source, kind, SegmentKind::Stream));
    }
    if !sealed {
        return Err(SegmentError::NotSealed(source.to_owned()));
    }
    if start > 0 {
        return Err(SegmentError::Truncated {
            segment: source.to_owned(),
            offset: 0,
            start_offset: start,
        });
    }
    Ok(())
}

/// Whether a table change expecting `expected` applies to a key whose version is `current`.
pub fn check_expected_version(
    name: &str,
    expected: ExpectedVersion,
    current: Option<u64>,
) -> Result<(), SegmentError> {
    let mismatch = |expected| SegmentError::TableKeyVersionMismatch {
        segment: name.to_owned(),
        expected,
        actual: current,
    };
    match (expected, current) {
        (ExpectedVersion::Any, _) | (ExpectedVersion::NotExists, None) => Ok(()),
        (ExpectedVersion::Exactly(wanted), Some(actual)) if wanted == actual => Ok(()),
        (ExpectedVersion::Exactly(_), None) => {
            Err(SegmentError::TableKeyDoesNotExist(name.to_owned()))
        }
        (ExpectedVersion::NotExists, Some(_)) => Err(mismatch(None)),
        (ExpectedVersion::Exactly(wanted), Some(_)) => Err(mismatch(Some(wanted))),
    }
}

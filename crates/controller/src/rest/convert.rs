//! Conversions between the REST API's JSON shapes and the controller's records, with
//! Pravega's rules (`ModelHelper`): retention sizes in MiB, times in days or
//! days/hours/minutes, defaults for missing fields. Pure: no I/O.

use super::json::{
    RetentionConfig, RetentionRequest, RetentionTypeName, ScaleMetadata, ScaleTypeName,
    ScalingConfig, ScalingRequest, SegmentJson, StreamProperty, StreamRequest, TimeBasedRequest,
    TimeBasedRetention,
};
use crate::core::ScalingEvent;
use crate::model::{RetentionPolicy, RetentionType, ScaleType, ScalingPolicy, StreamConfig};

/// `LIMITED_SIZE_MB` values are MiB; the controller keeps bytes.
pub const BYTES_PER_MIB: i64 = 1_048_576;
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;
/// A retention policy without a maximum keeps this as its maximum.
const NO_MAXIMUM: i64 = i64::MAX;

impl StreamRequest {
    /// The stream configuration this request asks for, or why it is invalid. The controller
    /// checks the resulting configuration further (segment counts, rates, tags).
    pub fn to_config(&self) -> Result<StreamConfig, String> {
        let scaling = match &self.scaling_policy {
            None => ScalingPolicy::fixed(1),
            Some(request) => request.to_policy(),
        };
        let retention = self
            .retention_policy
            .as_ref()
            .map(RetentionRequest::to_policy)
            .transpose()?;
        Ok(StreamConfig {
            scaling,
            retention,
            tags: self.stream_tags.clone().unwrap_or_default(),
            timestamp_aggregation_timeout_ms: self.timestamp_aggregation_timeout.unwrap_or(0),
            rollover_size_bytes: self.rollover_size_bytes.unwrap_or(0),
        })
    }
}

impl ScalingRequest {
    fn to_policy(&self) -> ScalingPolicy {
        let min_num_segments = self.min_segments.unwrap_or(0);
        match self.scale_type {
            // Pravega ignores the rate fields of a fixed policy.
            ScaleTypeName::FixedNumSegments => ScalingPolicy::fixed(min_num_segments),
            ScaleTypeName::ByRateInKbytesPerSec | ScaleTypeName::ByRateInEventsPerSec => {
                ScalingPolicy {
                    scale_type: scale_type_of(self.scale_type),
                    target_rate: self.target_rate.unwrap_or(0),
                    scale_factor: self.scale_factor.unwrap_or(0),
                    min_num_segments,
                }
            }
        }
    }
}

impl RetentionRequest {
    fn to_policy(&self) -> Result<RetentionPolicy, String> {
        let has_maximum = self.max_value.is_some() || self.max_time_based_retention.is_some();
        let (retention_type, retention_param, retention_max) = match self.retention_type {
            RetentionTypeName::LimitedSizeMb => {
                let minimum = mib_to_bytes(self.value.unwrap_or(0))?;
                let maximum = match self.max_value {
                    Some(value) => mib_to_bytes(value)?,
                    None => NO_MAXIMUM,
                };
                (RetentionType::Size, minimum, maximum)
            }
            RetentionTypeName::LimitedDays => {
                let minimum = time_ms(self.value, self.time_based_retention.as_ref())?;
                let maximum = if has_maximum {
                    time_ms(self.max_value, self.max_time_based_retention.as_ref())?
                } else {
                    NO_MAXIMUM
                };
                (RetentionType::Time, minimum, maximum)
            }
        };
        Ok(RetentionPolicy {
            retention_type,
            retention_param,
            retention_max,
        })
    }
}

fn scale_type_of(name: ScaleTypeName) -> ScaleType {
    match name {
        ScaleTypeName::FixedNumSegments => ScaleType::FixedNumSegments,
        ScaleTypeName::ByRateInKbytesPerSec => ScaleType::ByRateInKbytesPerSec,
        ScaleTypeName::ByRateInEventsPerSec => ScaleType::ByRateInEventsPerSec,
    }
}

fn scale_type_name(scale_type: ScaleType) -> ScaleTypeName {
    match scale_type {
        ScaleType::FixedNumSegments => ScaleTypeName::FixedNumSegments,
        ScaleType::ByRateInKbytesPerSec => ScaleTypeName::ByRateInKbytesPerSec,
        ScaleType::ByRateInEventsPerSec => ScaleTypeName::ByRateInEventsPerSec,
    }
}

fn mib_to_bytes(mib: i64) -> Result<i64, String> {
    if mib < 0 {
        return Err(format!("retention size {mib} MiB is negative"));
    }
    mib.checked_mul(BYTES_PER_MIB)
        .ok_or_else(|| format!("retention size {mib} MiB is too large"))
}

/// A time limit in ms: whole `days`, or when `days` is 0 or missing and `detail` is given, its
/// days, hours and minutes (Pravega's rule).
fn time_ms(days: Option<i64>, detail: Option<&TimeBasedRequest>) -> Result<i64, String> {
    let days = days.unwrap_or(0);
    let parts = match detail {
        Some(detail) if days == 0 => [
            (detail.days.unwrap_or(0), MS_PER_DAY),
            (detail.hours.unwrap_or(0), MS_PER_HOUR),
            (detail.minutes.unwrap_or(0), MS_PER_MINUTE),
        ],
        _ => [(days, MS_PER_DAY), (0, MS_PER_HOUR), (0, MS_PER_MINUTE)],
    };
    let mut total: i64 = 0;
    for (count, unit) in parts {
        if count < 0 {
            return Err(format!("retention time part {count} is negative"));
        }
        total = count
            .checked_mul(unit)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| "retention time is too large".to_owned())?;
    }
    Ok(total)
}

impl StreamProperty {
    pub fn new(scope: &str, stream: &str, config: &StreamConfig) -> Self {
        let scaling = &config.scaling;
        Self {
            scope_name: scope.to_owned(),
            stream_name: stream.to_owned(),
            scaling_policy: ScalingConfig {
                scale_type: scale_type_name(scaling.scale_type),
                target_rate: scaling.target_rate,
                scale_factor: scaling.scale_factor,
                min_segments: scaling.min_num_segments,
            },
            retention_policy: config.retention.as_ref().map(RetentionConfig::new),
            tags: config.tags.clone(),
            timestamp_aggregation_timeout: config.timestamp_aggregation_timeout_ms,
            rollover_size_bytes: config.rollover_size_bytes,
        }
    }
}

impl RetentionConfig {
    fn new(policy: &RetentionPolicy) -> Self {
        let maximum = (policy.retention_max != NO_MAXIMUM).then_some(policy.retention_max);
        match policy.retention_type {
            RetentionType::Size => Self {
                retention_type: RetentionTypeName::LimitedSizeMb,
                value: policy.retention_param / BYTES_PER_MIB,
                time_based_retention: None,
                max_value: maximum.map(|bytes| bytes / BYTES_PER_MIB),
                max_time_based_retention: None,
            },
            RetentionType::Time => {
                let (value, detail) = days_and_detail(policy.retention_param);
                let maximum = maximum.map(days_and_detail);
                Self {
                    retention_type: RetentionTypeName::LimitedDays,
                    value,
                    time_based_retention: Some(detail),
                    max_value: maximum.map(|(days, _)| days),
                    max_time_based_retention: maximum.map(|(_, detail)| detail),
                }
            }
        }
    }
}

/// Pravega's encoding of a time limit: `value` is the number of days when the limit is whole
/// days and 0 otherwise; the detail always splits it into days, hours and minutes (seconds
/// are dropped).
fn days_and_detail(ms: i64) -> (i64, TimeBasedRetention) {
    let detail = TimeBasedRetention {
        days: ms / MS_PER_DAY,
        hours: ms % MS_PER_DAY / MS_PER_HOUR,
        minutes: ms % MS_PER_HOUR / MS_PER_MINUTE,
    };
    let value = if ms % MS_PER_DAY == 0 { detail.days } else { 0 };
    (value, detail)
}

impl ScaleMetadata {
    pub fn new(event: &ScalingEvent) -> Self {
        Self {
            timestamp: event.timestamp_ms,
            segment_list: event
                .segments
                .iter()
                .map(|&(number, start_time, key_start, key_end)| SegmentJson {
                    number,
                    start_time,
                    key_start,
                    key_end,
                })
                .collect(),
            splits: i64::from(event.splits),
            merges: i64::from(event.merges),
        }
    }
}

/// Pravega's selection of scaling events for `[from_ms, to_ms]`: the events in the window,
/// preceded by the latest event before it (the segments in place when the window opens).
/// `events` are in time order.
pub fn events_in_window(events: &[ScalingEvent], from_ms: i64, to_ms: i64) -> Vec<ScaleMetadata> {
    let reference = events.iter().rfind(|e| e.timestamp_ms < from_ms);
    reference
        .into_iter()
        .chain(
            events
                .iter()
                .filter(|e| (from_ms..=to_ms).contains(&e.timestamp_ms)),
        )
        .map(ScaleMetadata::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> Result<StreamConfig, String> {
        serde_json::from_value::<StreamRequest>(json)
            .map_err(|e| e.to_string())?
            .to_config()
    }

    fn retention(json: serde_json::Value) -> RetentionPolicy {
        request(serde_json::json!({ "retentionPolicy": json }))
            .unwrap()
            .retention
            .unwrap()
    }

    #[test]
    fn an_empty_request_is_one_fixed_segment() {
        let config = request(serde_json::json!({})).unwrap();
        assert_eq!(config.scaling, ScalingPolicy::fixed(1));
        assert_eq!(config.retention, None);
        assert!(config.tags.is_empty());
    }

    #[test]
    fn nulls_are_missing_fields_and_unknown_fields_are_refused() {
        let config = request(serde_json::json!({
            "scalingPolicy": {"type": "FIXED_NUM_SEGMENTS", "targetRate": null,
                              "scaleFactor": null, "minSegments": 3},
            "retentionPolicy": null, "streamTags": null,
        }))
        .unwrap();
        assert_eq!(config.scaling, ScalingPolicy::fixed(3));
        assert!(request(serde_json::json!({"tags": ["a"]})).is_err());
        assert!(request(serde_json::json!({"scalingPolicy": {"type": "BY_MAGIC"}})).is_err());
    }

    #[test]
    fn size_retention_is_mib_and_round_trips() {
        let policy = retention(serde_json::json!({"type": "LIMITED_SIZE_MB", "value": 10,
                                                  "maxValue": 20}));
        assert_eq!(policy.retention_type, RetentionType::Size);
        assert_eq!(policy.retention_param, 10 * BYTES_PER_MIB);
        assert_eq!(policy.retention_max, 20 * BYTES_PER_MIB);
        let json = serde_json::to_value(RetentionConfig::new(&policy)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "LIMITED_SIZE_MB", "value": 10, "maxValue": 20})
        );
        let unbounded = retention(serde_json::json!({"type": "LIMITED_SIZE_MB", "value": 1}));
        assert_eq!(unbounded.retention_max, NO_MAXIMUM);
    }

    #[test]
    fn time_retention_is_days_or_days_hours_minutes() {
        let days = retention(serde_json::json!({"type": "LIMITED_DAYS", "value": 2}));
        assert_eq!(days.retention_param, 2 * MS_PER_DAY);
        assert_eq!(days.retention_max, NO_MAXIMUM);
        assert_eq!(
            serde_json::to_value(RetentionConfig::new(&days)).unwrap(),
            serde_json::json!({"type": "LIMITED_DAYS", "value": 2,
                               "timeBasedRetention": {"days": 2, "hours": 0, "minutes": 0}})
        );
        let detailed = retention(serde_json::json!({
            "type": "LIMITED_DAYS", "value": 0,
            "timeBasedRetention": {"days": 1, "hours": 2, "minutes": 3},
            "maxTimeBasedRetention": {"days": 3},
        }));
        assert_eq!(
            detailed.retention_param,
            MS_PER_DAY + 2 * MS_PER_HOUR + 3 * MS_PER_MINUTE
        );
        assert_eq!(detailed.retention_max, 3 * MS_PER_DAY);
        assert_eq!(
            serde_json::to_value(RetentionConfig::new(&detailed)).unwrap(),
            serde_json::json!({"type": "LIMITED_DAYS", "value": 0,
                               "timeBasedRetention": {"days": 1, "hours": 2, "minutes": 3},
                               "maxValue": 3,
                               "maxTimeBasedRetention": {"days": 3, "hours": 0, "minutes": 0}})
        );
        // A non-zero value wins over the detail, as in Pravega.
        let value_wins = retention(serde_json::json!({
            "type": "LIMITED_DAYS", "value": 1, "timeBasedRetention": {"hours": 5}}));
        assert_eq!(value_wins.retention_param, MS_PER_DAY);
    }

    #[test]
    fn negative_or_overflowing_retention_is_refused() {
        for json in [
            serde_json::json!({"type": "LIMITED_SIZE_MB", "value": -1}),
            serde_json::json!({"type": "LIMITED_SIZE_MB", "value": i64::MAX}),
            serde_json::json!({"type": "LIMITED_DAYS", "value": i64::MAX}),
            serde_json::json!({"type": "LIMITED_DAYS", "timeBasedRetention": {"hours": -1}}),
        ] {
            assert!(request(serde_json::json!({ "retentionPolicy": json })).is_err());
        }
    }

    #[test]
    fn scaling_policies_convert_both_ways() {
        let config = request(serde_json::json!({"scalingPolicy": {
            "type": "BY_RATE_IN_EVENTS_PER_SEC", "targetRate": 100, "scaleFactor": 2,
            "minSegments": 4}}))
        .unwrap();
        let json = serde_json::to_value(StreamProperty::new("sc", "st", &config)).unwrap();
        assert_eq!(
            json["scalingPolicy"],
            serde_json::json!({"type": "BY_RATE_IN_EVENTS_PER_SEC", "targetRate": 100,
                               "scaleFactor": 2, "minSegments": 4})
        );
        assert_eq!(json["retentionPolicy"], serde_json::Value::Null);
    }

    #[test]
    fn the_window_starts_with_the_event_in_place_when_it_opens() {
        let event = |timestamp_ms| ScalingEvent {
            timestamp_ms,
            segments: vec![(0, timestamp_ms, 0.0, 1.0)],
            splits: 0,
            merges: 0,
        };
        let events = [event(10), event(20), event(30), event(40)];
        let times = |from, to| -> Vec<i64> {
            events_in_window(&events, from, to)
                .iter()
                .map(|e| e.timestamp)
                .collect()
        };
        assert_eq!(times(25, 35), vec![20, 30]);
        assert_eq!(times(0, 15), vec![10]);
        assert_eq!(times(45, 50), vec![40]);
        assert_eq!(times(10, 40), vec![10, 20, 30, 40]);
    }
}

//! A stream's configuration: scaling and retention policies, tags, and their gRPC form.

use std::time::Duration;

use pravaha_controller_api::v1 as api;

use super::ScopedStream;

/// How a stream's segments scale.
///
/// ```
/// use pravaha_client::controller::types::ScalingPolicy;
///
/// let policy = ScalingPolicy::ByEventRate { target_events_per_second: 1000, scale_factor: 2, min_segments: 3 };
/// assert_eq!(policy.min_segments(), 3);
/// assert_eq!(ScalingPolicy::Fixed { segments: 4 }.min_segments(), 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalingPolicy {
    /// Always this many segments (unless scaled by hand).
    Fixed { segments: u32 },
    /// A segment splits in `scale_factor` parts above the target event rate and merges with a
    /// neighbour well below it; never fewer than `min_segments`.
    ByEventRate {
        target_events_per_second: u32,
        scale_factor: u32,
        min_segments: u32,
    },
    /// As [`Self::ByEventRate`], on the byte rate in KiB per second.
    ByByteRate {
        target_kib_per_second: u32,
        scale_factor: u32,
        min_segments: u32,
    },
}

impl ScalingPolicy {
    /// The number of segments the stream starts with and never goes below.
    pub fn min_segments(&self) -> u32 {
        match *self {
            Self::Fixed { segments } => segments,
            Self::ByEventRate { min_segments, .. } | Self::ByByteRate { min_segments, .. } => {
                min_segments
            }
        }
    }
}

/// How much of a stream is kept. With subscribed reader groups (consumption-based retention,
/// as in Pravega) the stream is truncated at what every subscriber has read, but always keeps
/// at least the minimum and never more than the maximum.
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::controller::types::RetentionPolicy;
///
/// let day = RetentionPolicy::Time { min: Duration::from_secs(86_400), max: None };
/// let consumption = RetentionPolicy::Size { min_bytes: 1 << 30, max_bytes: Some(10 << 30) };
/// assert_ne!(day, consumption);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetentionPolicy {
    /// Keep everything (truncate by hand).
    #[default]
    None,
    /// Keep data for at least `min`; with consumption-based retention, at most `max`.
    Time {
        min: Duration,
        max: Option<Duration>,
    },
    /// Keep at least `min_bytes`; with consumption-based retention, at most `max_bytes`.
    Size {
        min_bytes: u64,
        max_bytes: Option<u64>,
    },
}

/// A stream's configuration.
///
/// ```
/// use std::time::Duration;
/// use pravaha_client::controller::types::{RetentionPolicy, ScalingPolicy, StreamConfiguration};
///
/// let config = StreamConfiguration {
///     scaling: ScalingPolicy::Fixed { segments: 3 },
///     retention: RetentionPolicy::Time { min: Duration::from_secs(3600), max: None },
///     tags: vec!["orders".into()],
///     ..StreamConfiguration::default()
/// };
/// assert_eq!(StreamConfiguration::fixed(3).scaling, config.scaling);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfiguration {
    pub scaling: ScalingPolicy,
    pub retention: RetentionPolicy,
    /// Labels to find streams by ([`list_streams_for_tag`](crate::controller::ControllerClient::list_streams_for_tag));
    /// at most 128, each 1 to 256 characters.
    pub tags: Vec<String>,
    /// How long writers' marks are aggregated into a watermark; zero = the server's default.
    pub timestamp_aggregation_timeout: Duration,
    /// Segment chunk size on the segment store; zero = the server's default.
    pub rollover_size_bytes: u64,
}

impl Default for StreamConfiguration {
    /// One fixed segment, no retention, no tags.
    fn default() -> Self {
        Self::fixed(1)
    }
}

impl StreamConfiguration {
    /// `segments` fixed segments, everything else at its default.
    pub fn fixed(segments: u32) -> Self {
        Self {
            scaling: ScalingPolicy::Fixed { segments },
            retention: RetentionPolicy::None,
            tags: Vec::new(),
            timestamp_aggregation_timeout: Duration::ZERO,
            rollover_size_bytes: 0,
        }
    }

    /// The gRPC message, or why a value does not fit it.
    pub(crate) fn to_api(&self, stream: &ScopedStream) -> Result<api::StreamConfig, String> {
        use api::scaling_policy::ScalingPolicyType as Type;
        let (scale_type, target_rate, scale_factor, min_segments) = match self.scaling {
            ScalingPolicy::Fixed { segments } => (Type::FixedNumSegments, 0, 0, segments),
            ScalingPolicy::ByEventRate {
                target_events_per_second,
                scale_factor,
                min_segments,
            } => (
                Type::ByRateInEventsPerSec,
                target_events_per_second,
                scale_factor,
                min_segments,
            ),
            ScalingPolicy::ByByteRate {
                target_kib_per_second,
                scale_factor,
                min_segments,
            } => (
                Type::ByRateInKbytesPerSec,
                target_kib_per_second,
                scale_factor,
                min_segments,
            ),
        };
        let int32 = |value: u32, what: &str| {
            i32::try_from(value).map_err(|_| format!("{what} {value} is above {}", i32::MAX))
        };
        let int64 = |value: u64, what: &str| {
            i64::try_from(value).map_err(|_| format!("{what} {value} is above {}", i64::MAX))
        };
        Ok(api::StreamConfig {
            stream_info: Some(stream.to_api()),
            scaling_policy: Some(api::ScalingPolicy {
                scale_type: scale_type.into(),
                target_rate: int32(target_rate, "target rate")?,
                scale_factor: int32(scale_factor, "scale factor")?,
                min_num_segments: int32(min_segments, "segment count")?,
            }),
            retention_policy: retention_to_api(self.retention)?,
            tags: (!self.tags.is_empty()).then(|| api::Tags {
                tag: self.tags.clone(),
            }),
            timestamp_aggregation_timeout: int64(
                millis(self.timestamp_aggregation_timeout),
                "timestamp aggregation timeout (ms)",
            )?,
            rollover_size_bytes: int64(self.rollover_size_bytes, "rollover size")?,
        })
    }

    /// The configuration of a `getStreamConfiguration` reply, or what was wrong with it.
    pub(crate) fn from_api(config: api::StreamConfig) -> Result<Self, String> {
        use api::scaling_policy::ScalingPolicyType as Type;
        let scaling = config
            .scaling_policy
            .ok_or("the reply has no scaling policy")?;
        let unsigned = |value: i32| u32::try_from(value).unwrap_or(0);
        let (rate, factor, min) = (
            unsigned(scaling.target_rate),
            unsigned(scaling.scale_factor),
            unsigned(scaling.min_num_segments),
        );
        let scaling = match Type::try_from(scaling.scale_type) {
            Ok(Type::FixedNumSegments) => ScalingPolicy::Fixed { segments: min },
            Ok(Type::ByRateInEventsPerSec) => ScalingPolicy::ByEventRate {
                target_events_per_second: rate,
                scale_factor: factor,
                min_segments: min,
            },
            Ok(Type::ByRateInKbytesPerSec) => ScalingPolicy::ByByteRate {
                target_kib_per_second: rate,
                scale_factor: factor,
                min_segments: min,
            },
            Err(_) => return Err(format!("unknown scaling type {}", scaling.scale_type)),
        };
        Ok(Self {
            scaling,
            retention: retention_from_api(config.retention_policy)?,
            tags: config.tags.map(|tags| tags.tag).unwrap_or_default(),
            timestamp_aggregation_timeout: Duration::from_millis(
                u64::try_from(config.timestamp_aggregation_timeout).unwrap_or(0),
            ),
            rollover_size_bytes: u64::try_from(config.rollover_size_bytes).unwrap_or(0),
        })
    }
}

fn retention_to_api(policy: RetentionPolicy) -> Result<Option<api::RetentionPolicy>, String> {
    use api::retention_policy::RetentionPolicyType as Type;
    let int64 = |value: u64| i64::try_from(value).map_err(|_| format!("{value} is too large"));
    let (retention_type, min, max) = match policy {
        RetentionPolicy::None => return Ok(None),
        RetentionPolicy::Time { min, max } => (Type::Time, millis(min), max.map(millis)),
        RetentionPolicy::Size {
            min_bytes,
            max_bytes,
        } => (Type::Size, min_bytes, max_bytes),
    };
    Ok(Some(api::RetentionPolicy {
        retention_type: retention_type.into(),
        retention_param: int64(min)?,
        // Pravega's clients send i64::MAX for "no maximum".
        retention_max: max.map_or(Ok(i64::MAX), int64)?,
    }))
}

fn retention_from_api(policy: Option<api::RetentionPolicy>) -> Result<RetentionPolicy, String> {
    use api::retention_policy::RetentionPolicyType as Type;
    let Some(policy) = policy else {
        return Ok(RetentionPolicy::None);
    };
    let min = u64::try_from(policy.retention_param).unwrap_or(0);
    let max = match policy.retention_max {
        i64::MAX => None,
        value if value <= 0 => None,
        value => Some(value.unsigned_abs()),
    };
    Ok(match Type::try_from(policy.retention_type) {
        Ok(Type::Unknown) => RetentionPolicy::None,
        Ok(Type::Time) => RetentionPolicy::Time {
            min: Duration::from_millis(min),
            max: max.map(Duration::from_millis),
        },
        Ok(Type::Size) => RetentionPolicy::Size {
            min_bytes: min,
            max_bytes: max,
        },
        Err(_) => return Err(format!("unknown retention type {}", policy.retention_type)),
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_survive_the_wire() {
        let stream = ScopedStream::new("sc", "st");
        let configs = [
            StreamConfiguration::fixed(4),
            StreamConfiguration {
                scaling: ScalingPolicy::ByByteRate {
                    target_kib_per_second: 1024,
                    scale_factor: 2,
                    min_segments: 2,
                },
                retention: RetentionPolicy::Size {
                    min_bytes: 1 << 20,
                    max_bytes: Some(1 << 30),
                },
                tags: vec!["a".into(), "b".into()],
                timestamp_aggregation_timeout: Duration::from_secs(5),
                rollover_size_bytes: 1 << 24,
            },
            StreamConfiguration {
                retention: RetentionPolicy::Time {
                    min: Duration::from_secs(60),
                    max: None,
                },
                ..StreamConfiguration::default()
            },
        ];
        for config in configs {
            let message = config.to_api(&stream).unwrap();
            assert_eq!(StreamConfiguration::from_api(message).unwrap(), config);
        }
        let too_large = StreamConfiguration::fixed(u32::MAX);
        assert!(too_large.to_api(&stream).is_err());
    }
}

//! The REST API's JSON shapes: the definitions of Pravega's `Controller.yaml`.
//!
//! Requests accept `null` wherever a field may be missing (Java clients send nulls) and refuse
//! unknown fields, so that a misspelt field is a 400 instead of a silently dropped setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// ---- scopes -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeProperty {
    pub scope_name: String,
}

#[derive(Debug, Serialize)]
pub struct ScopesList {
    pub scopes: Vec<ScopeProperty>,
}

// ---- streams ------------------------------------------------------------------------------

/// The body of `POST .../streams` (`CreateStreamRequest`, with `streamName`) and of
/// `PUT .../streams/{stream}` (`UpdateStreamRequest`, without it). Every field but the name
/// has a default, as in Pravega: a missing policy means one fixed segment, no retention,
/// no tags, zero aggregation timeout and rollover size.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamRequest {
    pub stream_name: Option<String>,
    pub scaling_policy: Option<ScalingRequest>,
    pub retention_policy: Option<RetentionRequest>,
    pub stream_tags: Option<Vec<String>>,
    pub timestamp_aggregation_timeout: Option<i64>,
    pub rollover_size_bytes: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRequest {
    #[serde(rename = "type")]
    pub scale_type: ScaleTypeName,
    pub target_rate: Option<i32>,
    pub scale_factor: Option<i32>,
    pub min_segments: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionRequest {
    #[serde(rename = "type")]
    pub retention_type: RetentionTypeName,
    pub value: Option<i64>,
    pub time_based_retention: Option<TimeBasedRequest>,
    pub max_value: Option<i64>,
    pub max_time_based_retention: Option<TimeBasedRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeBasedRequest {
    pub days: Option<i64>,
    pub hours: Option<i64>,
    pub minutes: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScaleTypeName {
    FixedNumSegments,
    ByRateInKbytesPerSec,
    ByRateInEventsPerSec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetentionTypeName {
    /// Time: whole days in `value`, or days/hours/minutes in `timeBasedRetention`.
    LimitedDays,
    /// Size in MiB.
    LimitedSizeMb,
}

/// `StreamProperty`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamProperty {
    pub scope_name: String,
    pub stream_name: String,
    pub scaling_policy: ScalingConfig,
    /// `null` when the stream has no retention policy.
    pub retention_policy: Option<RetentionConfig>,
    pub tags: Vec<String>,
    pub timestamp_aggregation_timeout: i64,
    pub rollover_size_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingConfig {
    #[serde(rename = "type")]
    pub scale_type: ScaleTypeName,
    pub target_rate: i32,
    pub scale_factor: i32,
    pub min_segments: i32,
}

/// `RetentionConfig`; the maximum fields appear only when the policy has a maximum.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionConfig {
    #[serde(rename = "type")]
    pub retention_type: RetentionTypeName,
    pub value: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_based_retention: Option<TimeBasedRetention>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_time_based_retention: Option<TimeBasedRetention>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeBasedRetention {
    pub days: i64,
    pub hours: i64,
    pub minutes: i64,
}

#[derive(Debug, Serialize)]
pub struct StreamsList {
    pub streams: Vec<StreamProperty>,
}

/// `StreamState`; `SEALED` is the only state a request may set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamStateBody {
    pub stream_state: String,
}

pub const SEALED: &str = "SEALED";

// ---- scaling events -----------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingEventList {
    pub scaling_events: Vec<ScaleMetadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleMetadata {
    pub timestamp: i64,
    pub segment_list: Vec<SegmentJson>,
    pub splits: i64,
    pub merges: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentJson {
    pub number: u32,
    pub start_time: i64,
    pub key_start: f64,
    pub key_end: f64,
}

// ---- reader groups ------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderGroupsList {
    pub reader_groups: Vec<ReaderGroupName>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderGroupName {
    pub reader_group_name: String,
}

/// `ReaderGroupProperty`; `streamList` holds scoped names (`scope/stream`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderGroupProperty {
    pub scope_name: String,
    pub reader_group_name: String,
    pub stream_list: Vec<String>,
    pub online_reader_ids: Vec<String>,
}

// ---- health -------------------------------------------------------------------------------

/// `HealthStatus`; this controller reports `UP` or `DOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthResult {
    pub name: String,
    pub status: HealthStatus,
    pub readiness: bool,
    pub liveness: bool,
    pub details: BTreeMap<String, String>,
    pub children: BTreeMap<String, HealthResult>,
}

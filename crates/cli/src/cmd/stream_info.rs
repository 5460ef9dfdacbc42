//! `pravaha stream info` and `pravaha stream scale`: a stream's configuration and segments as
//! people and scripts read them, and splitting or merging key ranges.

use std::sync::Arc;

use anyhow::Context as _;
use pravaha_client::controller::types::{
    KeyRange, RetentionPolicy, ScalingPolicy, ScopedSegment, ScopedStream, SegmentId,
    SegmentWithRange, StreamConfiguration, StreamCut,
};
use pravaha_client::locator::ControllerLocator;
use pravaha_client::segment::{Locator, ReaderConfig, SegmentInfo, SegmentReader};
use pravaha_client::ControllerClient;
use serde_json::json;

use super::output::{self, Table};
use super::units::{format_duration, format_size};
use super::{cut, names, Context, Failure};

/// The flags of `pravaha stream scale`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScaleArgs {
    /// SCOPE/STREAM
    pub stream: String,
    /// A current segment to seal (N or N.#epoch.E; repeat for several) [default: all current
    /// segments]
    #[arg(long = "segment", value_name = "SEGMENT")]
    pub segments: Vec<String>,
    /// Replace them by N segments of equal key ranges over the range they cover
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "ranges",
        required_unless_present = "ranges"
    )]
    pub into: Option<u32>,
    /// Replace them by these key ranges, e.g. 0-0.25,0.25-0.5 (together covering theirs)
    #[arg(long, value_name = "LOW-HIGH,...")]
    pub ranges: Option<String>,
}

/// A segment's start offset, length and whether it is sealed, from its segment store.
pub async fn segment_info(
    locator: &Arc<dyn Locator>,
    segment: &ScopedSegment,
) -> anyhow::Result<SegmentInfo> {
    let mut reader = SegmentReader::new(
        locator.clone(),
        segment.qualified_name(),
        ReaderConfig::default(),
    );
    reader.segment_info().await.with_context(|| {
        format!(
            "asking for the length of segment {}",
            segment.qualified_name()
        )
    })
}

/// The locator the client commands read segments with.
pub fn locator(controller: &ControllerClient) -> Arc<dyn Locator> {
    Arc::new(ControllerLocator::new(controller.clone()))
}

pub async fn info(context: &Context, text: &str) -> anyhow::Result<()> {
    let stream = names::stream(text)?;
    let controller = &context.controller;
    let configuration = controller
        .get_stream_configuration(&stream)
        .await
        .with_context(|| format!("reading the configuration of {stream}"))?;
    let current = controller
        .get_current_segments(&stream)
        .await
        .with_context(|| format!("reading the segments of {stream}"))?;
    let head = controller
        .get_segments_at_head(&stream)
        .await
        .with_context(|| format!("reading the head of {stream}"))?;
    let locator = locator(controller);
    let mut tail = StreamCut::new(stream.clone());
    let mut segments = Vec::new();
    for segment in current.segments {
        let info = segment_info(&locator, &segment.segment).await?;
        tail.positions.insert(segment.segment.id, info.length);
        segments.push((segment, info));
    }
    let info = Info {
        stream,
        configuration,
        segments,
        head,
        tail,
    };
    if context.json {
        output::json(&info.to_json());
    } else {
        output::print(&info.render());
    }
    Ok(())
}

/// What `stream info` shows.
struct Info {
    stream: ScopedStream,
    configuration: StreamConfiguration,
    /// The current segments; none once the stream is sealed.
    segments: Vec<(SegmentWithRange, SegmentInfo)>,
    head: StreamCut,
    tail: StreamCut,
}

impl Info {
    fn to_json(&self) -> serde_json::Value {
        let segments: Vec<_> = self
            .segments
            .iter()
            .map(|(segment, info)| {
                json!({
                    "segment": segment.segment.id.to_string(),
                    "id": segment.segment.id.0,
                    "key_low": segment.range.low,
                    "key_high": segment.range.high,
                    "start_offset": info.start_offset,
                    "length": info.length,
                })
            })
            .collect();
        json!({
            "scope": self.stream.scope,
            "stream": self.stream.stream,
            "sealed": self.segments.is_empty(),
            "configuration": configuration_json(&self.configuration),
            "segments": segments,
            "head": cut::cut_json(&self.head),
            "tail": cut::cut_json(&self.tail),
        })
    }

    fn render(&self) -> String {
        let config = &self.configuration;
        let tags = if config.tags.is_empty() {
            "-".to_owned()
        } else {
            config.tags.join(", ")
        };
        let state = if self.segments.is_empty() {
            "sealed"
        } else {
            "open"
        };
        let mut summary = Table::new(&["STREAM", &self.stream.to_string()]);
        summary.row(vec!["state".into(), state.into()]);
        summary.row(vec!["scaling".into(), describe_scaling(&config.scaling)]);
        summary.row(vec![
            "retention".into(),
            describe_retention(&config.retention),
        ]);
        summary.row(vec!["tags".into(), tags]);
        summary.row(vec!["head".into(), cut::cut_text(&self.head)]);
        summary.row(vec!["tail".into(), cut::cut_text(&self.tail)]);
        let mut table = Table::new(&["SEGMENT", "KEY RANGE", "START", "LENGTH"]);
        for (segment, info) in &self.segments {
            table.row(vec![
                segment.segment.id.to_string(),
                key_range(&segment.range),
                info.start_offset.to_string(),
                info.length.to_string(),
            ]);
        }
        format!("{}\n{}", summary.render(), table.render())
    }
}

fn key_range(range: &KeyRange) -> String {
    format!("[{:.4}, {:.4})", range.low, range.high)
}

pub async fn scale(context: &Context, args: ScaleArgs) -> anyhow::Result<()> {
    let stream = names::stream(&args.stream)?;
    let controller = &context.controller;
    let current = controller
        .get_current_segments(&stream)
        .await
        .with_context(|| format!("reading the segments of {stream}"))?;
    if current.segments.is_empty() {
        return Err(
            Failure::conflict(format!("stream {stream} is sealed: it cannot scale")).into(),
        );
    }
    let sealed = chosen_segments(&args.segments, &current.segments, &stream)?;
    let mut covered: Vec<KeyRange> = current
        .segments
        .iter()
        .filter(|segment| sealed.contains(&segment.segment.id))
        .map(|segment| segment.range)
        .collect();
    covered.sort_by(|a, b| a.low.total_cmp(&b.low));
    let ranges = match (args.into, &args.ranges) {
        (Some(count), _) => equal_ranges(&covered, count)?,
        (None, Some(text)) => parse_ranges(text)?,
        (None, None) => return Err(Failure::invalid("give --into N or --ranges").into()),
    };
    let created = controller
        .scale_stream(&stream, &sealed, &ranges)
        .await
        .with_context(|| format!("scaling stream {stream}"))?;
    if context.json {
        let segments: Vec<_> = created
            .iter()
            .map(|segment| {
                json!({
                    "segment": segment.segment.id.to_string(),
                    "id": segment.segment.id.0,
                    "key_low": segment.range.low,
                    "key_high": segment.range.high,
                })
            })
            .collect();
        let sealed: Vec<String> = sealed.iter().map(ToString::to_string).collect();
        output::json(&json!({
            "stream": stream.to_string(),
            "sealed": sealed,
            "segments": segments,
        }));
    } else {
        let mut table = Table::new(&["NEW SEGMENT", "KEY RANGE"]);
        for segment in &created {
            table.row(vec![
                segment.segment.id.to_string(),
                key_range(&segment.range),
            ]);
        }
        let count = sealed.len();
        let text = format!("scaled stream {stream}: sealed {count} segment(s)\n");
        output::print(&(text + &table.render()));
    }
    Ok(())
}

/// The current segments `texts` name (all of them if none is named).
fn chosen_segments(
    texts: &[String],
    current: &[SegmentWithRange],
    stream: &ScopedStream,
) -> Result<Vec<SegmentId>, Failure> {
    let ids: Vec<SegmentId> = current.iter().map(|s| s.segment.id).collect();
    if texts.is_empty() {
        return Ok(ids);
    }
    texts
        .iter()
        .map(|text| {
            let id = cut::parse_segment(text, &ids)?;
            if ids.contains(&id) {
                return Ok(id);
            }
            let listed: Vec<String> = ids.iter().map(ToString::to_string).collect();
            Err(Failure::invalid(format!(
                "segment {id} is not a current segment of {stream} (current: {})",
                listed.join(", ")
            )))
        })
        .collect()
}

/// `count` equal ranges over `covered` (sorted), which must be one contiguous range.
fn equal_ranges(covered: &[KeyRange], count: u32) -> Result<Vec<KeyRange>, Failure> {
    if count == 0 {
        return Err(Failure::invalid("--into must be at least 1"));
    }
    for pair in covered.windows(2) {
        if pair[0].high != pair[1].low {
            return Err(Failure::invalid(
                "the segments do not cover one contiguous key range: name neighbouring \
                 segments, or give --ranges",
            ));
        }
    }
    let (Some(first), Some(last)) = (covered.first(), covered.last()) else {
        return Err(Failure::invalid("no segment to scale"));
    };
    let (low, high) = (first.low, last.high);
    let step = (high - low) / f64::from(count);
    Ok((0..count)
        .map(|i| {
            let start = low + step * f64::from(i);
            let end = if i + 1 == count {
                high
            } else {
                low + step * f64::from(i + 1)
            };
            KeyRange::new(start, end)
        })
        .collect())
}

/// `LOW-HIGH,...` key ranges.
fn parse_ranges(text: &str) -> Result<Vec<KeyRange>, Failure> {
    text.split(',')
        .map(|part| {
            let bad = || {
                Failure::invalid(format!(
                    "{part:?} is not a key range LOW-HIGH such as 0.25-0.5"
                ))
            };
            let (low, high) = part.trim().split_once('-').ok_or_else(bad)?;
            let low: f64 = low.trim().parse().map_err(|_| bad())?;
            let high: f64 = high.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&low) || !(0.0..=1.0).contains(&high) || low >= high {
                return Err(Failure::invalid(format!(
                    "key range {part:?} must satisfy 0 <= LOW < HIGH <= 1"
                )));
            }
            Ok(KeyRange::new(low, high))
        })
        .collect()
}

/// The configuration as JSON (docs/cli.md).
pub fn configuration_json(config: &StreamConfiguration) -> serde_json::Value {
    let scaling = match config.scaling {
        ScalingPolicy::Fixed { segments } => json!({ "type": "fixed", "segments": segments }),
        ScalingPolicy::ByEventRate {
            target_events_per_second,
            scale_factor,
            min_segments,
        } => json!({
            "type": "events_per_second",
            "target": target_events_per_second,
            "scale_factor": scale_factor,
            "min_segments": min_segments,
        }),
        ScalingPolicy::ByByteRate {
            target_kib_per_second,
            scale_factor,
            min_segments,
        } => json!({
            "type": "kib_per_second",
            "target": target_kib_per_second,
            "scale_factor": scale_factor,
            "min_segments": min_segments,
        }),
    };
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let retention = match config.retention {
        RetentionPolicy::None => json!({ "type": "none" }),
        RetentionPolicy::Size {
            min_bytes,
            max_bytes,
        } => json!({ "type": "size", "min_bytes": min_bytes, "max_bytes": max_bytes }),
        RetentionPolicy::Time { min, max } => {
            json!({ "type": "time", "min_ms": millis(min), "max_ms": max.map(millis) })
        }
    };
    json!({
        "scaling": scaling,
        "retention": retention,
        "tags": config.tags,
        "rollover_size_bytes": config.rollover_size_bytes,
    })
}

fn describe_scaling(policy: &ScalingPolicy) -> String {
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    match *policy {
        ScalingPolicy::Fixed { segments } => {
            format!("fixed, {segments} segment{}", plural(segments))
        }
        ScalingPolicy::ByEventRate {
            target_events_per_second,
            scale_factor,
            min_segments,
        } => format!(
            "by event rate: {target_events_per_second} events/s per segment, scale factor \
             {scale_factor}, at least {min_segments} segment{}",
            plural(min_segments)
        ),
        ScalingPolicy::ByByteRate {
            target_kib_per_second,
            scale_factor,
            min_segments,
        } => format!(
            "by byte rate: {target_kib_per_second} KiB/s per segment, scale factor \
             {scale_factor}, at least {min_segments} segment{}",
            plural(min_segments)
        ),
    }
}

fn describe_retention(policy: &RetentionPolicy) -> String {
    match *policy {
        RetentionPolicy::None => "none (keep everything)".to_owned(),
        RetentionPolicy::Size {
            min_bytes,
            max_bytes,
        } => match max_bytes {
            Some(max) => format!(
                "by size: at least {}, at most {}",
                format_size(min_bytes),
                format_size(max)
            ),
            None => format!("by size: at least {}", format_size(min_bytes)),
        },
        RetentionPolicy::Time { min, max } => match max {
            Some(max) => format!(
                "by time: at least {}, at most {}",
                format_duration(min),
                format_duration(max)
            ),
            None => format!("by time: at least {}", format_duration(min)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_ranges_split_the_covered_range() {
        let ranges = equal_ranges(&[KeyRange::new(0.0, 0.5), KeyRange::new(0.5, 1.0)], 4).unwrap();
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[0], KeyRange::new(0.0, 0.25));
        assert_eq!(ranges[3].high, 1.0);
        assert!(equal_ranges(&[KeyRange::new(0.0, 0.25), KeyRange::new(0.5, 1.0)], 2).is_err());
        assert!(equal_ranges(&[KeyRange::new(0.0, 1.0)], 0).is_err());
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(
            parse_ranges("0-0.5, 0.5-1").unwrap(),
            vec![KeyRange::new(0.0, 0.5), KeyRange::new(0.5, 1.0)]
        );
        assert!(parse_ranges("0.5-0.25").is_err());
        assert!(parse_ranges("0.5").is_err());
        assert!(parse_ranges("0-2").is_err());
    }
}

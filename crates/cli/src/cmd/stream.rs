//! `pravaha stream create|list|info|update|scale|seal|truncate|delete`, and the flags of a
//! stream's configuration (scaling and retention policies, tags).

use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use pravaha_client::controller::types::{
    RetentionPolicy, ScalingPolicy, SegmentId, StreamConfiguration,
};
use serde_json::json;

use super::output::{self, Table};
use super::stream_info::{self, ScaleArgs};
use super::units::{parse_duration, parse_size};
use super::{cut, names, Context, Failure};

#[derive(Subcommand, Debug, Clone)]
pub enum StreamCommand {
    /// Create a stream (succeeds if it exists already, leaving its configuration as it is)
    Create {
        /// SCOPE/STREAM
        stream: String,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// List the streams of a scope (internal ones, named `_...`, with --all)
    List {
        scope: String,
        /// Only streams carrying this tag
        #[arg(long, value_name = "TAG")]
        tag: Option<String>,
        /// Include internal streams (reader groups' `_RG...`, watermarks' `_MARK...`)
        #[arg(long)]
        all: bool,
    },
    /// Show a stream's configuration, tags, segments (key ranges, lengths), head and tail
    Info { stream: String },
    /// Change a stream's configuration; only the flags given change
    Update {
        stream: String,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Keep everything (remove the retention policy)
        #[arg(long, conflicts_with_all = ["retention_size", "retention_time"])]
        no_retention: bool,
        /// Remove every tag
        #[arg(long, conflicts_with = "tags")]
        no_tags: bool,
    },
    /// Split or merge segments: seal the given ones and replace them by new key ranges
    Scale(ScaleArgs),
    /// Seal a stream: it takes no more events
    Seal { stream: String },
    /// Drop the data before a stream cut (JSON or SEGMENT:OFFSET,...; see `stream info`)
    Truncate {
        stream: String,
        /// The stream cut, e.g. '0:120,1:0' or '{"0.#epoch.0":120}'
        cut: String,
    },
    /// Seal (if needed) and delete a stream with all its data
    Delete { stream: String },
}

/// The flags of a stream's configuration.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// A fixed number of segments [create's default: 1]
    #[arg(long, value_name = "N", conflicts_with_all = ["events_per_second", "kib_per_second"])]
    pub segments: Option<u32>,
    /// Scale by event rate: a segment splits above RATE events per second, merges well below
    #[arg(long, value_name = "RATE", conflicts_with = "kib_per_second")]
    pub events_per_second: Option<u32>,
    /// Scale by byte rate: a segment splits above RATE KiB per second, merges well below
    #[arg(long, value_name = "RATE")]
    pub kib_per_second: Option<u32>,
    /// With rate scaling: how many segments one splits into [default: 2]
    #[arg(long, value_name = "N")]
    pub scale_factor: Option<u32>,
    /// With rate scaling: the fewest segments [default: 1]
    #[arg(long, value_name = "N")]
    pub min_segments: Option<u32>,
    /// Retention by size: keep at least SIZE (e.g. 10GiB); older data may be truncated
    #[arg(long, value_name = "SIZE", value_parser = parse_size, conflicts_with = "retention_time")]
    pub retention_size: Option<u64>,
    /// With --retention-size: keep at most SIZE even if subscribers lag
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "retention_size")]
    pub retention_max_size: Option<u64>,
    /// Retention by time: keep at least DURATION (e.g. 7d, 12h, 30m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retention_time: Option<Duration>,
    /// With --retention-time: keep at most DURATION even if subscribers lag
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "retention_time")]
    pub retention_max_time: Option<Duration>,
    /// A tag (repeat for several); on update, the tags given replace the stream's
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Size of the segments' chunks on the segment store (e.g. 64MiB) [default: the server's]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub rollover_size: Option<u64>,
}

impl PolicyArgs {
    /// `base` with the policies these flags set.
    pub fn apply(&self, base: StreamConfiguration) -> Result<StreamConfiguration, Failure> {
        let mut config = base;
        config.scaling = self.scaling(config.scaling)?;
        if let Some(min_bytes) = self.retention_size {
            config.retention = RetentionPolicy::Size {
                min_bytes,
                max_bytes: self.retention_max_size,
            };
        }
        if let Some(min) = self.retention_time {
            config.retention = RetentionPolicy::Time {
                min,
                max: self.retention_max_time,
            };
        }
        if !self.tags.is_empty() {
            config.tags = self.tags.clone();
        }
        if let Some(size) = self.rollover_size {
            config.rollover_size_bytes = size;
        }
        Ok(config)
    }

    fn scaling(&self, base: ScalingPolicy) -> Result<ScalingPolicy, Failure> {
        if let Some(segments) = self.segments {
            return Ok(ScalingPolicy::Fixed {
                segments: positive(segments, "--segments")?,
            });
        }
        let (base_factor, base_min) = match base {
            ScalingPolicy::Fixed { .. } => (2, 1),
            ScalingPolicy::ByEventRate {
                scale_factor,
                min_segments,
                ..
            }
            | ScalingPolicy::ByByteRate {
                scale_factor,
                min_segments,
                ..
            } => (scale_factor, min_segments),
        };
        let scale_factor = positive(self.scale_factor.unwrap_or(base_factor), "--scale-factor")?;
        let min_segments = positive(self.min_segments.unwrap_or(base_min), "--min-segments")?;
        Ok(match (self.events_per_second, self.kib_per_second, base) {
            (Some(rate), _, _) => ScalingPolicy::ByEventRate {
                target_events_per_second: positive(rate, "--events-per-second")?,
                scale_factor,
                min_segments,
            },
            (None, Some(rate), _) => ScalingPolicy::ByByteRate {
                target_kib_per_second: positive(rate, "--kib-per-second")?,
                scale_factor,
                min_segments,
            },
            (None, None, ScalingPolicy::Fixed { .. }) => {
                if self.scale_factor.is_some() || self.min_segments.is_some() {
                    return Err(Failure::invalid(
                        "--scale-factor and --min-segments apply to rate scaling: add \
                         --events-per-second or --kib-per-second",
                    ));
                }
                base
            }
            (
                None,
                None,
                ScalingPolicy::ByEventRate {
                    target_events_per_second,
                    ..
                },
            ) => ScalingPolicy::ByEventRate {
                target_events_per_second,
                scale_factor,
                min_segments,
            },
            (
                None,
                None,
                ScalingPolicy::ByByteRate {
                    target_kib_per_second,
                    ..
                },
            ) => ScalingPolicy::ByByteRate {
                target_kib_per_second,
                scale_factor,
                min_segments,
            },
        })
    }
}

/// `value`, refused if zero.
fn positive(value: u32, flag: &str) -> Result<u32, Failure> {
    if value == 0 {
        Err(Failure::invalid(format!("{flag} must be at least 1")))
    } else {
        Ok(value)
    }
}

pub async fn run(context: &Context, command: StreamCommand) -> anyhow::Result<()> {
    match command {
        StreamCommand::Create { stream, policy } => create(context, &stream, &policy).await,
        StreamCommand::List { scope, tag, all } => list(context, &scope, tag, all).await,
        StreamCommand::Info { stream } => stream_info::info(context, &stream).await,
        StreamCommand::Update {
            stream,
            policy,
            no_retention,
            no_tags,
        } => update(context, &stream, &policy, no_retention, no_tags).await,
        StreamCommand::Scale(args) => stream_info::scale(context, args).await,
        StreamCommand::Seal { stream } => seal(context, &stream).await,
        StreamCommand::Truncate { stream, cut } => truncate(context, &stream, &cut).await,
        StreamCommand::Delete { stream } => delete(context, &stream).await,
    }
}

async fn create(context: &Context, text: &str, policy: &PolicyArgs) -> anyhow::Result<()> {
    let stream = names::stream(text)?;
    if stream.stream.starts_with('_') {
        return Err(Failure::invalid(format!(
            "invalid name: stream name {:?} starts with '_', which is reserved for internal names",
            stream.stream
        ))
        .into());
    }
    let config = policy.apply(StreamConfiguration::default())?;
    let created = context
        .controller
        .create_stream(&stream, &config)
        .await
        .with_context(|| format!("creating stream {stream}"))?;
    if context.json {
        output::json(&json!({ "stream": stream.to_string(), "created": created }));
    } else if created {
        output::print(&format!("created stream {stream}\n"));
    } else {
        output::print(&format!(
            "stream {stream} exists already (its configuration is unchanged; see `pravaha \
             stream update`)\n"
        ));
    }
    Ok(())
}

async fn list(
    context: &Context,
    scope: &str,
    tag: Option<String>,
    all: bool,
) -> anyhow::Result<()> {
    let scope = names::scope(scope)?;
    let controller = &context.controller;
    let streams = match &tag {
        Some(tag) => controller.list_streams_for_tag(&scope, tag).await,
        None => controller.list_streams(&scope).await,
    }
    .with_context(|| format!("listing the streams of {scope}"))?;
    let mut names: Vec<String> = streams
        .into_iter()
        .map(|stream| stream.stream)
        .filter(|name| all || !name.starts_with('_'))
        .collect();
    names.sort();
    if context.json {
        let items: Vec<_> = names
            .iter()
            .map(|name| json!({ "scope": scope, "stream": name }))
            .collect();
        output::json(&items.into());
    } else {
        let mut table = Table::new(&["STREAM"]);
        for name in names {
            table.row(vec![format!("{scope}/{name}")]);
        }
        table.print();
    }
    Ok(())
}

async fn update(
    context: &Context,
    text: &str,
    policy: &PolicyArgs,
    no_retention: bool,
    no_tags: bool,
) -> anyhow::Result<()> {
    let stream = names::stream(text)?;
    let controller = &context.controller;
    let current = controller
        .get_stream_configuration(&stream)
        .await
        .with_context(|| format!("reading the configuration of {stream}"))?;
    let mut config = policy.apply(current.clone())?;
    if no_retention {
        config.retention = RetentionPolicy::None;
    }
    if no_tags {
        config.tags.clear();
    }
    if config != current {
        controller
            .update_stream(&stream, &config)
            .await
            .with_context(|| format!("updating stream {stream}"))?;
    }
    if context.json {
        output::json(&json!({
            "stream": stream.to_string(),
            "updated": config != current,
            "configuration": stream_info::configuration_json(&config),
        }));
    } else if config == current {
        output::print(&format!("stream {stream}: nothing to change\n"));
    } else {
        output::print(&format!("updated stream {stream}\n"));
    }
    Ok(())
}

async fn seal(context: &Context, text: &str) -> anyhow::Result<()> {
    let stream = names::stream(text)?;
    context
        .controller
        .seal_stream(&stream)
        .await
        .with_context(|| format!("sealing stream {stream}"))?;
    if context.json {
        output::json(&json!({ "stream": stream.to_string(), "sealed": true }));
    } else {
        output::print(&format!("sealed stream {stream}\n"));
    }
    Ok(())
}

async fn truncate(context: &Context, text: &str, cut_text: &str) -> anyhow::Result<()> {
    let stream = names::stream(text)?;
    let current: Vec<SegmentId> = context
        .controller
        .get_current_segments(&stream)
        .await
        .with_context(|| format!("reading the segments of {stream}"))?
        .segments
        .iter()
        .map(|segment| segment.segment.id)
        .collect();
    let cut = cut::parse_cut(cut_text, &stream, &current)?;
    context
        .controller
        .truncate_stream(&cut)
        .await
        .with_context(|| format!("truncating stream {stream}"))?;
    if context.json {
        output::json(&json!({ "stream": stream.to_string(), "truncated_at": cut::cut_json(&cut) }));
    } else {
        output::print(&format!(
            "truncated stream {stream} at {}\n",
            cut::cut_text(&cut)
        ));
    }
    Ok(())
}

async fn delete(context: &Context, text: &str) -> anyhow::Result<()> {
    let stream = names::stream(text)?;
    let deleted = pravaha_client::StreamManager::with_controller(context.controller.clone())
        .seal_and_delete_stream(&stream)
        .await
        .with_context(|| format!("deleting stream {stream}"))?;
    if !deleted {
        return Err(Failure::not_found(format!("stream {stream} does not exist")).into());
    }
    if context.json {
        output::json(&json!({ "stream": stream.to_string(), "deleted": true }));
    } else {
        output::print(&format!("deleted stream {stream}\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_flags_build_configurations() {
        let fixed = PolicyArgs {
            segments: Some(3),
            tags: vec!["a".into()],
            ..PolicyArgs::default()
        };
        let config = fixed.apply(StreamConfiguration::default()).unwrap();
        assert_eq!(config.scaling, ScalingPolicy::Fixed { segments: 3 });
        assert_eq!(config.tags, vec!["a".to_owned()]);

        let by_rate = PolicyArgs {
            events_per_second: Some(100),
            min_segments: Some(2),
            retention_size: Some(1 << 20),
            ..PolicyArgs::default()
        };
        let config = by_rate.apply(StreamConfiguration::default()).unwrap();
        assert_eq!(
            config.scaling,
            ScalingPolicy::ByEventRate {
                target_events_per_second: 100,
                scale_factor: 2,
                min_segments: 2
            }
        );
        assert_eq!(
            config.retention,
            RetentionPolicy::Size {
                min_bytes: 1 << 20,
                max_bytes: None
            }
        );

        // Changing only the minimum keeps the rate policy.
        let more = PolicyArgs {
            min_segments: Some(4),
            ..PolicyArgs::default()
        };
        let updated = more.apply(config.clone()).unwrap();
        assert_eq!(updated.scaling.min_segments(), 4);
        assert_eq!(updated.retention, config.retention);

        // ... but means nothing for a fixed policy.
        assert!(more.apply(StreamConfiguration::default()).is_err());
        let zero = PolicyArgs {
            segments: Some(0),
            ..PolicyArgs::default()
        };
        assert!(zero.apply(StreamConfiguration::default()).is_err());
    }
}

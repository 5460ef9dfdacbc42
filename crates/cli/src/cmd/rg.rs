//! `pravaha rg create|list|info|delete`: reader groups.
//!
//! A group lives in two places: the controller's record (its streams, starting cuts, id;
//! what retention and Java clients see) and the group's shared state in a table segment
//! (readers, the segments each owns, their positions), which `pravaha-client` readers use.
//! `create` makes both, `delete` removes both. The controller has no call listing groups, so
//! `list` finds them as Pravega does: by their `_RG<group>` state streams, each confirmed with
//! the controller's record.

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Subcommand;
use pravaha_client::controller::types::{ScopedSegment, ScopedStream, StreamCut};
use pravaha_client::controller::{ControllerError, ReaderGroupRecord};
use pravaha_client::group::{ReaderGroup, ReaderGroupConfig, StartFrom};
use pravaha_client::ControllerClient;
use serde_json::json;

use super::output::{self, Table};
use super::stream_info::{locator, segment_info};
use super::{cut, names, Context, Failure};

/// The prefix of a group's state stream (Pravega's).
const GROUP_STREAM_PREFIX: &str = "_RG";

#[derive(Subcommand, Debug, Clone)]
pub enum RgCommand {
    /// Create a reader group reading some streams (succeeds if it exists already)
    Create {
        /// SCOPE/GROUP
        group: String,
        /// A stream to read, SCOPE/STREAM (repeat for several)
        #[arg(long = "stream", value_name = "SCOPE/STREAM", required = true)]
        streams: Vec<String>,
        /// Where the group starts: head, tail, or a stream cut (with one stream)
        #[arg(long, value_name = "head|tail|CUT", default_value = "head")]
        from: String,
    },
    /// List the reader groups of a scope
    List { scope: String },
    /// Show a group's readers, their segments, positions and lag
    Info {
        /// SCOPE/GROUP
        group: String,
    },
    /// Delete a reader group (its readers stop)
    Delete {
        /// SCOPE/GROUP
        group: String,
    },
}

pub async fn run(context: &Context, command: RgCommand) -> anyhow::Result<()> {
    match command {
        RgCommand::Create {
            group,
            streams,
            from,
        } => create(context, &group, &streams, &from).await,
        RgCommand::List { scope } => list(context, &scope).await,
        RgCommand::Info { group } => info(context, &group).await,
        RgCommand::Delete { group } => delete(context, &group).await,
    }
}

/// The controller's record of the group, `None` if there is none.
async fn record(
    controller: &ControllerClient,
    scope: &str,
    name: &str,
) -> anyhow::Result<Option<ReaderGroupRecord>> {
    match controller.get_reader_group(scope, name).await {
        Ok(record) => Ok(Some(record)),
        Err(ControllerError::NotFound { .. }) => Ok(None),
        Err(error) => Err(error).with_context(|| format!("looking up reader group {scope}/{name}")),
    }
}

fn missing(scope: &str, name: &str) -> Failure {
    Failure::not_found(format!(
        "reader group {scope}/{name} does not exist: create it with `pravaha rg create \
         {scope}/{name} --stream {scope}/STREAM`"
    ))
}

async fn create(
    context: &Context,
    text: &str,
    streams: &[String],
    from: &str,
) -> anyhow::Result<()> {
    let (scope, name) = names::scoped(text, "reader group", false)?;
    let streams = streams
        .iter()
        .map(|stream| names::stream(stream))
        .collect::<Result<Vec<_>, _>>()?;
    let controller = &context.controller;
    let existing = record(controller, &scope, &name).await?;
    let created = existing.is_none();
    let record = match existing {
        Some(record) => record,
        None => {
            let mut record = ReaderGroupRecord::new(scope.clone(), name.clone());
            for stream in &streams {
                let start = starting_cut(controller, stream, from, streams.len()).await?;
                record.starting_cuts.push(start);
            }
            controller
                .create_reader_group(&record)
                .await
                .with_context(|| format!("creating reader group {scope}/{name}"))?
        }
    };
    // The group's shared state, from the recorded starting cuts; an existing state stays as
    // it is, so running `create` again also repairs a group whose state was never made.
    let mut config = ReaderGroupConfig::new();
    for cut in &record.starting_cuts {
        let start = if cut.positions.is_empty() {
            StartFrom::Head
        } else {
            StartFrom::Cut(cut.clone())
        };
        config = config.stream_from(cut.stream.clone(), start);
    }
    if !record.starting_cuts.is_empty() {
        ReaderGroup::create(controller, &scope, &name, config)
            .await
            .with_context(|| format!("creating the state of reader group {scope}/{name}"))?;
    }
    let names: Vec<String> = record
        .starting_cuts
        .iter()
        .map(|c| c.stream.to_string())
        .collect();
    if context.json {
        output::json(&json!({
            "scope": scope,
            "group": name,
            "id": record.id,
            "streams": names,
            "created": created,
        }));
    } else if created {
        output::print(&format!(
            "created reader group {scope}/{name} on {}\n",
            names.join(", ")
        ));
    } else {
        output::print(&format!(
            "reader group {scope}/{name} exists already (on {})\n",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Where the group starts on `stream`, as an explicit cut.
async fn starting_cut(
    controller: &ControllerClient,
    stream: &ScopedStream,
    from: &str,
    stream_count: usize,
) -> anyhow::Result<StreamCut> {
    let current = controller
        .get_current_segments(stream)
        .await
        .with_context(|| format!("reading the segments of {stream}"))?;
    Ok(match from {
        "head" => controller
            .get_segments_at_head(stream)
            .await
            .with_context(|| format!("reading the head of {stream}"))?,
        "tail" => {
            let locator = locator(controller);
            let mut cut = StreamCut::new(stream.clone());
            for segment in &current.segments {
                let info = segment_info(&locator, &segment.segment).await?;
                cut.positions.insert(segment.segment.id, info.length);
            }
            cut
        }
        text if stream_count == 1 => {
            let ids: Vec<_> = current.segments.iter().map(|s| s.segment.id).collect();
            cut::parse_cut(text, stream, &ids)?
        }
        _ => {
            return Err(Failure::invalid(
                "--from takes a stream cut only for a group of one stream; use head or tail",
            )
            .into())
        }
    })
}

async fn list(context: &Context, scope: &str) -> anyhow::Result<()> {
    let scope = names::scope(scope)?;
    let controller = &context.controller;
    let streams = controller
        .list_streams(&scope)
        .await
        .with_context(|| format!("listing the streams of {scope}"))?;
    let mut groups = Vec::new();
    for stream in streams {
        let Some(name) = stream.stream.strip_prefix(GROUP_STREAM_PREFIX) else {
            continue;
        };
        if let Some(record) = record(controller, &scope, name).await? {
            groups.push(record);
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let streams_of = |record: &ReaderGroupRecord| -> Vec<String> {
        record
            .starting_cuts
            .iter()
            .map(|c| c.stream.to_string())
            .collect()
    };
    if context.json {
        let items: Vec<_> = groups
            .iter()
            .map(|g| json!({ "scope": scope, "group": g.name, "streams": streams_of(g) }))
            .collect();
        output::json(&items.into());
    } else {
        let mut table = Table::new(&["GROUP", "STREAMS"]);
        for group in &groups {
            table.row(vec![
                format!("{scope}/{}", group.name),
                streams_of(group).join(","),
            ]);
        }
        table.print();
    }
    Ok(())
}

/// One segment of the group: who reads it, where, and how far behind its end.
struct SegmentLag {
    segment: ScopedSegment,
    reader: Option<String>,
    position: i64,
    length: i64,
}

impl SegmentLag {
    fn lag(&self) -> i64 {
        (self.length - self.position).max(0)
    }
}

async fn info(context: &Context, text: &str) -> anyhow::Result<()> {
    let (scope, name) = names::scoped(text, "reader group", false)?;
    let controller = &context.controller;
    let Some(record) = record(controller, &scope, &name).await? else {
        return Err(missing(&scope, &name).into());
    };
    let group = ReaderGroup::open(controller, &scope, &name)
        .await
        .with_context(|| format!("opening reader group {scope}/{name}"))?;
    let readers = group.readers().await.context("reading the group's state")?;
    let mut owners: BTreeMap<ScopedSegment, String> = BTreeMap::new();
    for reader in &readers {
        let owned = group
            .reader_positions(reader)
            .await
            .context("reading the group's state")?;
        for segment in owned.unwrap_or_default().into_keys() {
            owners.insert(segment, reader.clone());
        }
    }
    let locator = locator(controller);
    let mut segments = Vec::new();
    for (segment, position) in group
        .positions()
        .await
        .context("reading the group's state")?
    {
        let length = segment_info(&locator, &segment).await?.length;
        segments.push(SegmentLag {
            reader: owners.get(&segment).cloned(),
            segment,
            position,
            length,
        });
    }
    let state = GroupState {
        scope,
        name,
        record,
        readers,
        segments,
    };
    if context.json {
        output::json(&state.to_json());
    } else {
        output::print(&state.render());
    }
    Ok(())
}

/// What `rg info` shows.
struct GroupState {
    scope: String,
    name: String,
    record: ReaderGroupRecord,
    /// The online readers.
    readers: Vec<String>,
    segments: Vec<SegmentLag>,
}

impl GroupState {
    fn streams(&self) -> Vec<String> {
        let cuts = &self.record.starting_cuts;
        cuts.iter().map(|cut| cut.stream.to_string()).collect()
    }

    fn total_lag(&self) -> i64 {
        self.segments.iter().map(SegmentLag::lag).sum()
    }

    /// How many segments `reader` owns and their total lag.
    fn reader_lag(&self, reader: &str) -> (usize, i64) {
        let mine = self
            .segments
            .iter()
            .filter(|s| s.reader.as_deref() == Some(reader));
        mine.fold((0, 0), |(count, lag), s| (count + 1, lag + s.lag()))
    }

    fn to_json(&self) -> serde_json::Value {
        let readers: Vec<_> = self
            .readers
            .iter()
            .map(|reader| {
                let (count, lag) = self.reader_lag(reader);
                json!({ "reader": reader, "segments": count, "lag_bytes": lag })
            })
            .collect();
        let segments: Vec<_> = self
            .segments
            .iter()
            .map(|s| {
                json!({
                    "stream": s.segment.stream.to_string(),
                    "segment": s.segment.id.to_string(),
                    "reader": s.reader,
                    "position": s.position,
                    "length": s.length,
                    "lag_bytes": s.lag(),
                })
            })
            .collect();
        json!({
            "scope": self.scope,
            "group": self.name,
            "id": self.record.id,
            "streams": self.streams(),
            "readers": readers,
            "segments": segments,
            "lag_bytes": self.total_lag(),
        })
    }

    fn render(&self) -> String {
        let mut summary = Table::new(&["GROUP", &format!("{}/{}", self.scope, self.name)]);
        summary.row(vec!["id".into(), self.record.id.clone()]);
        summary.row(vec!["streams".into(), self.streams().join(", ")]);
        summary.row(vec!["lag".into(), format!("{} bytes", self.total_lag())]);
        let mut readers = Table::new(&["READER", "SEGMENTS", "LAG"]);
        for reader in &self.readers {
            let (count, lag) = self.reader_lag(reader);
            readers.row(vec![reader.clone(), count.to_string(), lag.to_string()]);
        }
        let mut segments = Table::new(&["SEGMENT", "READER", "POSITION", "LENGTH", "LAG"]);
        for s in &self.segments {
            segments.row(vec![
                s.segment.qualified_name(),
                s.reader.clone().unwrap_or_else(|| "-".to_owned()),
                s.position.to_string(),
                s.length.to_string(),
                s.lag().to_string(),
            ]);
        }
        format!(
            "{}\n{}\n{}",
            summary.render(),
            readers.render(),
            segments.render()
        )
    }
}

async fn delete(context: &Context, text: &str) -> anyhow::Result<()> {
    let (scope, name) = names::scoped(text, "reader group", false)?;
    let controller = &context.controller;
    let Some(record) = record(controller, &scope, &name).await? else {
        return Err(missing(&scope, &name).into());
    };
    ReaderGroup::open(controller, &scope, &name)
        .await
        .with_context(|| format!("opening reader group {scope}/{name}"))?
        .delete()
        .await
        .with_context(|| format!("deleting the state of reader group {scope}/{name}"))?;
    controller
        .delete_reader_group(&scope, &name, &record.id)
        .await
        .with_context(|| format!("deleting reader group {scope}/{name}"))?;
    if context.json {
        output::json(&json!({ "scope": scope, "group": name, "deleted": true }));
    } else {
        output::print(&format!("deleted reader group {scope}/{name}\n"));
    }
    Ok(())
}

//! `pravaha read SCOPE/STREAM`: the events of a stream, from its head, its tail or a stream
//! cut, printed as lines or JSON.
//!
//! The command reads the segments itself (no reader group: reading changes nothing on the
//! servers), one task per segment, each handing events over in segment order. A segment that
//! ends sealed hands over to its successors once all their predecessors are read, so events
//! of one routing key come out in order across scaling.
//!
//! Where a read without `--follow` stops, "the current tail": when the command starts, it asks
//! for the stream's current segments and each one's length. Those lengths are the end: each
//! current segment is read up to its length then (events appended later are not printed), the
//! older, sealed segments on the way are read to their ends, and segments created after that
//! moment (by a later scale) are not read. With `--follow` there is no end: current segments
//! are read as they grow, successors are followed, and the command ends only when the stream is
//! sealed and read to its end, `--max` events were printed, or it is interrupted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::Context as _;
use pravaha_client::controller::types::{ScopedStream, SegmentId, StreamCut};
use pravaha_client::segment::{Event, EventParser, Locator, ReaderConfig, SegmentReader};
use pravaha_client::ControllerClient;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::output;
use super::stream_info::{locator, segment_info};
use super::{cut, names, progress, Context};

/// Bytes asked for per segment read.
const READ_SIZE: usize = 1 << 20;
/// Events handed from the segment tasks to the printer and not yet printed.
const HANDOFF_CAPACITY: usize = 1024;

/// The flags of `pravaha read`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// SCOPE/STREAM
    pub stream: String,
    /// Where to start: head, tail, or a stream cut (JSON or SEGMENT:OFFSET,...)
    #[arg(long, value_name = "head|tail|CUT", default_value = "head")]
    pub from: String,
    /// Keep reading new events (until the stream is sealed or the command is interrupted)
    #[arg(long)]
    pub follow: bool,
    /// Stop after N events
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
}

pub async fn run(context: &Context, args: ReadArgs) -> anyhow::Result<()> {
    let stream = names::stream(&args.stream)?;
    let controller = &context.controller;
    let locator = locator(controller);
    let current = controller
        .get_current_segments(&stream)
        .await
        .with_context(|| format!("reading the segments of {stream}"))?;
    let current_ids: Vec<SegmentId> = current.segments.iter().map(|s| s.segment.id).collect();
    let mut tail = StreamCut::new(stream.clone());
    for segment in &current.segments {
        let info = segment_info(&locator, &segment.segment).await?;
        tail.positions.insert(segment.segment.id, info.length);
    }
    let start = match args.from.as_str() {
        "head" => controller
            .get_segments_at_head(&stream)
            .await
            .with_context(|| format!("reading the head of {stream}"))?,
        "tail" => tail.clone(),
        text => cut::parse_cut(text, &stream, &current_ids)?,
    };
    let end = (!args.follow).then(|| End {
        newest_epoch: current_ids.iter().map(|id| id.epoch()).max(),
        lengths: tail.positions,
    });
    let mut sink = Sink::new(context.json, args.max, args.follow);
    if sink.is_full() {
        return Ok(());
    }
    let mut reading = Reading::new(stream, controller.clone(), locator, end);
    for (id, offset) in start.positions {
        reading.start(id, offset);
    }
    let result = reading.run(&mut sink).await;
    reading.stop();
    sink.finish();
    result
}

/// Where a read without `--follow` ends.
struct End {
    /// The current segments when the read began and their lengths then.
    lengths: BTreeMap<SegmentId, i64>,
    /// The epoch of the newest of them; segments of later epochs came after the end.
    newest_epoch: Option<u32>,
}

enum Item {
    Event {
        segment: SegmentId,
        event: Event,
        next_offset: i64,
    },
    /// The segment task finished: at the end of a sealed segment (`sealed`), or at the
    /// read's end in it (its length when the read began, or the printer gone).
    Ended {
        segment: SegmentId,
        sealed: bool,
    },
    Failed(anyhow::Error),
}

struct Reading {
    stream: ScopedStream,
    controller: ControllerClient,
    locator: Arc<dyn Locator>,
    end: Option<End>,
    sender: mpsc::Sender<Item>,
    receiver: mpsc::Receiver<Item>,
    active: BTreeMap<SegmentId, JoinHandle<()>>,
    done: BTreeSet<SegmentId>,
    /// Successors of finished segments, with their predecessors.
    waiting: BTreeMap<SegmentId, Vec<SegmentId>>,
}

impl Reading {
    fn new(
        stream: ScopedStream,
        controller: ControllerClient,
        locator: Arc<dyn Locator>,
        end: Option<End>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(HANDOFF_CAPACITY);
        Self {
            stream,
            controller,
            locator,
            end,
            sender,
            receiver,
            active: BTreeMap::new(),
            done: BTreeSet::new(),
            waiting: BTreeMap::new(),
        }
    }

    /// Starts reading segment `id` at `offset`, unless it lies beyond the end.
    fn start(&mut self, id: SegmentId, offset: i64) {
        let limit = match &self.end {
            None => None,
            Some(end) => match end.lengths.get(&id) {
                Some(length) => Some(*length),
                // Created after the end was taken: nothing in it is before the end.
                None if end.newest_epoch.is_some_and(|newest| id.epoch() > newest) => {
                    self.done.insert(id);
                    return;
                }
                // Sealed before the end was taken: read to its end.
                None => None,
            },
        };
        let task = tokio::spawn(read_segment(
            self.locator.clone(),
            self.stream.segment(id).qualified_name(),
            id,
            offset,
            limit,
            self.sender.clone(),
        ));
        self.active.insert(id, task);
    }

    async fn run(&mut self, sink: &mut Sink) -> anyhow::Result<()> {
        while !self.active.is_empty() {
            let Some(item) = self.receiver.recv().await else {
                break;
            };
            match item {
                Item::Event {
                    segment,
                    event,
                    next_offset,
                } => {
                    // Printed in batches: flushed once nothing more is waiting.
                    let flush = self.receiver.is_empty();
                    if !sink.event(segment, &event, next_offset, flush)? {
                        return Ok(());
                    }
                }
                Item::Ended { segment, sealed } => {
                    self.active.remove(&segment);
                    self.done.insert(segment);
                    if sealed {
                        self.add_successors(segment).await?;
                    }
                    self.start_ready();
                }
                Item::Failed(error) => return Err(error),
            }
        }
        Ok(())
    }

    async fn add_successors(&mut self, id: SegmentId) -> anyhow::Result<()> {
        let segment = self.stream.segment(id);
        let successors = self
            .controller
            .get_successors(&segment)
            .await
            .with_context(|| {
                format!("asking for the successors of {}", segment.qualified_name())
            })?;
        for successor in successors.successors {
            let next = successor.segment.segment.id;
            let known = self.done.contains(&next)
                || self.active.contains_key(&next)
                || self.waiting.contains_key(&next);
            if !known {
                self.waiting.insert(next, successor.predecessors);
            }
        }
        Ok(())
    }

    /// Starts the successors whose predecessors are all read (a predecessor this read never
    /// reached, from before the starting cut, does not hold them back).
    fn start_ready(&mut self) {
        let ready: Vec<SegmentId> = self
            .waiting
            .iter()
            .filter(|(_, predecessors)| {
                predecessors.iter().all(|p| {
                    self.done.contains(p)
                        || !(self.active.contains_key(p) || self.waiting.contains_key(p))
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.waiting.remove(&id);
            self.start(id, 0);
        }
    }

    fn stop(&mut self) {
        for task in self.active.values() {
            task.abort();
        }
    }
}

/// Reads segment `name` from `offset` up to `limit` (or its end if sealed, or for ever) and
/// hands its events over in order.
async fn read_segment(
    locator: Arc<dyn Locator>,
    name: String,
    id: SegmentId,
    offset: i64,
    limit: Option<i64>,
    sender: mpsc::Sender<Item>,
) {
    let result: anyhow::Result<bool> = async {
        let mut reader = SegmentReader::new(locator, name.clone(), ReaderConfig::default());
        let mut parser = EventParser::new(offset);
        loop {
            if limit.is_some_and(|limit| parser.position() >= limit) {
                return Ok(false);
            }
            let read = reader
                .read(parser.next_offset(), READ_SIZE)
                .await
                .with_context(|| format!("reading segment {name}"))?;
            parser
                .push_read(&read)
                .with_context(|| format!("parsing the events of segment {name}"))?;
            while let Some(event) = parser
                .next_event()
                .with_context(|| format!("parsing the events of segment {name}"))?
            {
                if limit.is_some_and(|limit| event.offset >= limit) {
                    return Ok(false);
                }
                let item = Item::Event {
                    segment: id,
                    event,
                    next_offset: parser.position(),
                };
                if sender.send(item).await.is_err() {
                    return Ok(false);
                }
            }
            if read.end_of_segment {
                return Ok(true);
            }
        }
    }
    .await;
    let item = match result {
        Ok(sealed) => Item::Ended {
            segment: id,
            sealed,
        },
        Err(error) => Item::Failed(error),
    };
    let _ = sender.send(item).await;
}

/// Prints events and counts them.
struct Sink {
    json: bool,
    max: Option<u64>,
    follow: bool,
    events: u64,
    bytes: u64,
    out: std::io::BufWriter<std::io::Stdout>,
    bar: indicatif::ProgressBar,
}

impl Sink {
    fn new(json: bool, max: Option<u64>, follow: bool) -> Self {
        Self {
            json,
            max,
            follow,
            events: 0,
            bytes: 0,
            out: std::io::BufWriter::new(std::io::stdout()),
            // Events printed on the same terminal would tear the bar apart.
            bar: if std::io::stdout().is_terminal() {
                indicatif::ProgressBar::hidden()
            } else {
                progress::counter("read")
            },
        }
    }

    fn is_full(&self) -> bool {
        self.max.is_some_and(|max| self.events >= max)
    }

    /// Prints one event; `false` once no more are wanted (`--max` reached, stdout closed).
    fn event(
        &mut self,
        segment: SegmentId,
        event: &Event,
        next_offset: i64,
        flush: bool,
    ) -> anyhow::Result<bool> {
        let written = if self.json {
            let mut object = serde_json::Map::new();
            object.insert("segment".into(), segment.to_string().into());
            object.insert("offset".into(), event.offset.into());
            object.insert("next_offset".into(), next_offset.into());
            output::bytes_field(&mut object, "payload", &event.payload);
            writeln!(self.out, "{}", json!(object))
        } else {
            self.out
                .write_all(&event.payload)
                .and_then(|()| self.out.write_all(b"\n"))
        };
        let flushed = written.and_then(|()| {
            if flush || self.follow {
                self.out.flush()
            } else {
                Ok(())
            }
        });
        if let Err(error) = flushed {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(false);
            }
            return Err(error).context("writing to stdout");
        }
        self.events += 1;
        self.bytes += event.payload.len() as u64;
        progress::advance(&self.bar, self.bytes);
        Ok(!self.is_full())
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
        self.bar.finish_and_clear();
    }
}

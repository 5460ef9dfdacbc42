//! `pravaha write SCOPE/STREAM`: one event per input line, routed by a fixed key or by a JSON
//! field of each line, every event acknowledged (durable) before the command returns.

use std::collections::VecDeque;
use std::path::PathBuf;

use anyhow::Context as _;
use pravaha_client::segment::AppendFuture;
use pravaha_client::ClientFactory;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::output;
use super::{names, progress, Context, Failure};

/// Acknowledgements awaited at most this far behind the newest event (the writer's in-flight
/// byte budget bounds the bytes; this bounds the futures held).
const PENDING_ACKS_MAX: usize = 4096;

/// The flags of `pravaha write`.
#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
    /// SCOPE/STREAM
    pub stream: String,
    /// Read the events from this file instead of stdin (one per line)
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Routing key of every event (events with one key stay in order)
    #[arg(long, value_name = "KEY", conflicts_with = "key_field")]
    pub key: Option<String>,
    /// Each line is a JSON object; route it by this field's value
    #[arg(long, value_name = "NAME")]
    pub key_field: Option<String>,
}

pub async fn run(context: &Context, args: WriteArgs) -> anyhow::Result<()> {
    let stream = names::stream(&args.stream)?;
    let input: Box<dyn AsyncBufRead + Unpin + Send> = match &args.file {
        Some(path) => Box::new(BufReader::new(tokio::fs::File::open(path).await.map_err(
            |error| Failure::invalid(format!("cannot open {}: {error}", path.display())),
        )?)),
        None => Box::new(BufReader::new(tokio::io::stdin())),
    };
    // Fails early, with the controller's answer, on a missing stream.
    let factory = ClientFactory::with_controller(context.controller.clone());
    let writer = factory
        .create_event_writer(stream.clone())
        .await
        .with_context(|| format!("opening a writer on {stream}"))?;
    let bar = progress::counter("wrote");
    let mut written = Written::default();
    let result = write_lines(&writer, input, &args, &mut written, &bar).await;
    // Whatever happened, the events sent so far are waited for, so that the summary is true.
    let acknowledged = written.settle().await;
    let closed = writer.close().await.context("closing the writer");
    bar.finish_and_clear();
    result?;
    acknowledged?;
    closed?;
    if context.json {
        output::json(&json!({
            "stream": stream.to_string(),
            "events": written.events,
            "bytes": written.bytes,
        }));
    } else {
        output::print(&format!(
            "wrote {} events ({} bytes) to {stream}\n",
            written.events, written.bytes
        ));
    }
    Ok(())
}

/// What was sent, and the acknowledgements not yet awaited.
#[derive(Default)]
struct Written {
    events: u64,
    bytes: u64,
    pending: VecDeque<AppendFuture>,
}

impl Written {
    /// Waits for every outstanding acknowledgement.
    async fn settle(&mut self) -> anyhow::Result<()> {
        while let Some(ack) = self.pending.pop_front() {
            ack.await.context("an event was not acknowledged")?;
        }
        Ok(())
    }
}

async fn write_lines(
    writer: &pravaha_client::EventWriter,
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    args: &WriteArgs,
    written: &mut Written,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    // Bytes, not text: events need not be UTF-8 (only a JSON line must be).
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .await
            .map_err(|error| Failure::invalid(format!("reading the input: {error}")))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let event = line.strip_suffix(b"\n").unwrap_or(&line);
        let event = event.strip_suffix(b"\r").unwrap_or(event);
        // Blank lines separate nothing and carry nothing: skipped.
        if event.is_empty() {
            continue;
        }
        let key = match (&args.key, &args.key_field) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(field)) => Some(key_of(event, field).map_err(|message| {
                Failure::invalid(format!(
                    "line {number}: {message}; the {} events before it were written",
                    written.events
                ))
            })?),
            (None, None) => None,
        };
        let ack = writer
            .write_event(key.as_deref(), event.to_vec())
            .await
            .with_context(|| format!("writing the event of line {number}"))?;
        written.events += 1;
        written.bytes += event.len() as u64;
        written.pending.push_back(ack);
        progress::advance(bar, written.bytes);
        if written.pending.len() > PENDING_ACKS_MAX {
            if let Some(oldest) = written.pending.pop_front() {
                oldest.await.context("an event was not acknowledged")?;
            }
        }
    }
}

/// The routing key of a JSON line: the field's string, or the JSON text of another scalar.
fn key_of(line: &[u8], field: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|error| format!("not a JSON object ({error})"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    match object.get(field) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(value.to_string())
        }
        Some(_) => Err(format!(
            "field {field:?} is not a string, number or boolean"
        )),
        None => Err(format!("no field {field:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_json_fields() {
        assert_eq!(key_of(br#"{"id":"a","n":1}"#, "id"), Ok("a".to_owned()));
        assert_eq!(key_of(br#"{"id":17}"#, "id"), Ok("17".to_owned()));
        assert!(key_of(br#"{"x":1}"#, "id")
            .unwrap_err()
            .contains("no field"));
        assert!(key_of(b"plain text", "id")
            .unwrap_err()
            .contains("not a JSON"));
        assert!(key_of(br#"{"id":null}"#, "id").is_err());
        assert!(key_of(b"[1]", "id").is_err());
        assert!(key_of(b"{\"id\":\"\xff\"}", "id").is_err());
    }
}

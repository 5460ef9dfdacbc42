//! The requests a container task serves, and how each is refused when it cannot be served.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::sequencer::{AppendConditions, AttributeUpdate};
use super::storage_writer::WriterRequest;
use super::{AppendOutcome, ContainerStats, SegmentInfo};
use crate::error::SegmentError;
use crate::state::{AttributeId, SegmentKind};
use crate::table::TableChange;

pub(super) type Reply<T> = oneshot::Sender<Result<T, SegmentError>>;

/// Where a live table key's value is: (version, value offset, value length).
pub(super) type KeyLocation = (u64, u64, u32);

/// Where the data of a read is.
/// A read plan with the segment's length and seal state when it was made.
pub(super) struct PlannedRead {
    pub plan: ReadPlan,
    pub length: u64,
    pub sealed: bool,
}

pub(super) enum ReadPlan {
    Data(Bytes),
    EndOfSegment,
    Wait(oneshot::Receiver<()>),
    Storage {
        id: u64,
        chunk: String,
        chunk_range: std::ops::Range<u64>,
    },
}

pub(super) enum Command {
    Create {
        name: String,
        kind: SegmentKind,
        attributes: Vec<(AttributeId, i64)>,
        reply: Reply<()>,
    },
    Delete {
        name: String,
        reply: Reply<()>,
    },
    Append {
        name: String,
        data: Bytes,
        conditions: AppendConditions,
        reply: Reply<AppendOutcome>,
    },
    Seal {
        name: String,
        reply: Reply<u64>,
    },
    Truncate {
        name: String,
        offset: u64,
        reply: Reply<()>,
    },
    Merge {
        target: String,
        source: String,
        reply: Reply<SegmentInfo>,
    },
    UpdateAttributes {
        name: String,
        updates: Vec<AttributeUpdate>,
        reply: Reply<()>,
    },
    TableUpdate {
        name: String,
        changes: Vec<TableChange>,
        expected_length: Option<u64>,
        reply: Reply<Vec<u64>>,
    },
    Read {
        name: String,
        offset: u64,
        max_length: usize,
        reply: Reply<PlannedRead>,
    },
    Info {
        name: String,
        reply: Reply<SegmentInfo>,
    },
    GetAttributes {
        name: String,
        ids: Vec<AttributeId>,
        reply: Reply<Vec<Option<i64>>>,
    },
    TableLookup {
        name: String,
        keys: Vec<Bytes>,
        reply: Reply<Vec<Option<KeyLocation>>>,
    },
    TableScan {
        name: String,
        after: Option<Bytes>,
        max_keys: usize,
        reply: Reply<Vec<(Bytes, u64, u64, u32)>>,
    },
    CacheFill {
        id: u64,
        offset: u64,
        data: Bytes,
    },
    Stats {
        reply: oneshot::Sender<ContainerStats>,
    },
    Storage(WriterRequest),
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Whether a request changes the container (and so is subject to back pressure).
pub(super) fn is_mutating(request: &Command) -> bool {
    matches!(
        request,
        Command::Create { .. }
            | Command::Delete { .. }
            | Command::Append { .. }
            | Command::Seal { .. }
            | Command::Truncate { .. }
            | Command::Merge { .. }
            | Command::UpdateAttributes { .. }
            | Command::TableUpdate { .. }
    )
}

pub(super) fn command_name(request: &Command) -> &'static str {
    match request {
        Command::Create { .. } => "create",
        Command::Delete { .. } => "delete",
        Command::Append { .. } => "append",
        Command::Seal { .. } => "seal",
        Command::Truncate { .. } => "truncate",
        Command::Merge { .. } => "merge",
        Command::UpdateAttributes { .. } => "update attributes",
        Command::TableUpdate { .. } => "table update",
        _ => "query",
    }
}

/// Answers a request with `error` without doing it.
pub(super) fn reject(request: Command, error: &SegmentError) {
    let error = error.clone();
    match request {
        Command::Create { reply, .. }
        | Command::Delete { reply, .. }
        | Command::Truncate { reply, .. }
        | Command::UpdateAttributes { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Append { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Seal { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Merge { reply, .. } | Command::Info { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::TableUpdate { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Read { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::GetAttributes { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::TableLookup { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::TableScan { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Stats { .. } | Command::CacheFill { .. } => {}
        Command::Storage(WriterRequest::Work { .. }) => {}
        Command::Storage(WriterRequest::Stored { reply, .. }) => {
            let _ = reply.send(false);
        }
        Command::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}

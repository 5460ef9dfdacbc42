//! Deterministic simulation of a container on a simulated disk, with crashes.
//!
//! Each seed drives one container through rounds. A round submits a batch of concurrent requests
//! (one task each, so that group commit batches them) and tail reads, awaits some of them, then
//! either awaits the rest or crashes: the disk starts failing after a few more calls (so that a
//! write may be left unsynced), every task and handle is dropped without a shutdown, the disk
//! loses or tears its unsynced tails (and sometimes has a bit of synced data flipped), and the
//! container recovers on the same disk and Tier-2.
//!
//! Oracle: requests are sequenced in submission order, so a model predicts every reply; every
//! reply that is not a disk failure must match it. After a crash the recovered state must equal
//! the model after all acknowledged requests and possibly some of the unacknowledged ones that
//! follow them in submission order (a prefix of the log), and everything a tail reader saw must
//! still be there. When a bit was flipped, recovery may instead report corruption, which ends
//! the seed; it must never silently lose acknowledged data.
//!
//! A failure prints its seed; `PRAVAHA_SIM_SEED=<seed> cargo test -p pravaha-segmentstore --test
//! simulation replay_seed -- --nocapture` replays it (`PRAVAHA_SIM_VERBOSE=1` traces each round,
//! the requests, crash fates and container figures). `PRAVAHA_SIM_SEEDS=<n>` runs seeds `0..n`
//! instead of the CI count. Replays are deterministic except for which already-stored bytes
//! the engine evicts from its cache (it iterates a `HashMap`), which has not been seen to
//! change an outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pravaha_segmentstore::table::{encode_entries, entry_length};
use pravaha_segmentstore::{
    AppendConditions, AppendOutcome, AttributeUpdate, ContainerConfig, ContainerHandle,
    ExpectedVersion, ReadResult, SegmentError, SegmentKind, TableChange,
};
use pravaha_storage::chunk::{ChunkStore, ChunkStoreConfig};
use pravaha_storage::log::LogError;
use pravaha_storage::sim::{SimDisk, TailFate};
use pravaha_types::ContainerId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;

mod common;

use common::{
    check_append, check_expected_version, check_merge_source, check_writable, no_such,
    updated_attributes, PausedClock,
};

/// Seeds run by `fixed_seeds` in CI.
const SEEDS: u64 = 40;
const ROUNDS: usize = 40;

const STREAMS: [&str; 3] = [
    "sim/s0/0.#epoch.0",
    "sim/s1/0.#epoch.0",
    "sim/s2/0.#epoch.0",
];
const TABLES: [&str; 2] = ["sim/_tables/t0", "sim/_tables/t1"];
const TXN_MARKER: &str = "#transaction.";
const WRITERS: [u128; 3] = [0xa1, 0xa2, 0xa3];
const PLAIN_ATTRIBUTES: [u128; 2] = [11, 12];
const KEYS: [&[u8]; 8] = [b"k0", b"k1", b"k2", b"k3", b"key-4", b"key-5", b"6", b"7"];

/// Progress on stderr when `PRAVAHA_SIM_VERBOSE` is set.
fn verbose() -> bool {
    std::env::var_os("PRAVAHA_SIM_VERBOSE").is_some()
}

fn describe(request: &Request) -> String {
    match request {
        Request::Append {
            name,
            data,
            conditions,
        } => format!("append {name} {} {conditions:?}", data.len()),
        Request::TableUpdate { name, changes } => format!("table {name} {}", changes.len()),
        other => format!("{other:?}"),
    }
}

/// What a crash leaves of a file's `unsynced` bytes, within what docs/formats/durable-log.md
/// assumes of a file system: a prefix of what was written, possibly followed by zeros where the
/// data never reached the disk, either from the old end of the file (its length was persisted,
/// its new data not) or in whole 512-byte sectors.
fn tail_fate(rng: &mut ChaCha8Rng, unsynced: usize) -> TailFate {
    match rng.gen_range(0..5) {
        0 => TailFate::Lost,
        1 => TailFate::Prefix {
            kept: rng.gen_range(0..=unsynced),
        },
        2 => TailFate::PrefixThenZeros {
            kept: 0,
            zeros: rng.gen_range(1..=unsynced.max(1)),
        },
        // Zeros to the end, long enough to cover a whole sector wherever the file starts.
        3 if unsynced > 1024 => TailFate::PrefixThenZeros {
            kept: rng.gen_range(0..=unsynced - 1024),
            zeros: unsynced,
        },
        _ => TailFate::Kept,
    }
}

fn brief(result: &Result<Reply, SegmentError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(error) => error.to_string(),
    }
}

fn all_attributes() -> Vec<u128> {
    PLAIN_ATTRIBUTES.iter().chain(&WRITERS).copied().collect()
}

/// The shared thresholds, plus limits small enough that requests get throttled.
fn config() -> ContainerConfig {
    ContainerConfig {
        max_in_flight_bytes: 16 << 10,
        max_unstored_bytes: 64 << 10,
        ..common::config()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests and the model that predicts them.

#[derive(Debug, Clone)]
enum Request {
    Create {
        name: String,
        kind: SegmentKind,
    },
    Append {
        name: String,
        data: Bytes,
        conditions: AppendConditions,
    },
    Seal {
        name: String,
    },
    Truncate {
        name: String,
        offset: u64,
    },
    Merge {
        target: String,
        source: String,
    },
    Delete {
        name: String,
    },
    UpdateAttributes {
        name: String,
        updates: Vec<AttributeUpdate>,
    },
    TableUpdate {
        name: String,
        changes: Vec<TableChange>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Done,
    Appended(AppendOutcome),
    Sealed(u64),
    Merged { length: u64, start: u64 },
    Versions(Vec<u64>),
}

impl Request {
    fn names(&self) -> Vec<&str> {
        match self {
            Self::Merge { target, source } => vec![target, source],
            Self::Create { name, .. }
            | Self::Append { name, .. }
            | Self::Seal { name }
            | Self::Truncate { name, .. }
            | Self::Delete { name }
            | Self::UpdateAttributes { name, .. }
            | Self::TableUpdate { name, .. } => vec![name],
        }
    }

    async fn execute(self, c: ContainerHandle) -> Result<Reply, SegmentError> {
        match self {
            Self::Create { name, kind } => c
                .create_segment(&name, kind, Vec::new())
                .await
                .map(|()| Reply::Done),
            Self::Append {
                name,
                data,
                conditions,
            } => c.append(&name, data, conditions).await.map(Reply::Appended),
            Self::Seal { name } => c.seal(&name).await.map(Reply::Sealed),
            Self::Truncate { name, offset } => {
                c.truncate(&name, offset).await.map(|()| Reply::Done)
            }
            Self::Merge { target, source } => {
                c.merge(&target, &source).await.map(|info| Reply::Merged {
                    length: info.length,
                    start: info.start_offset,
                })
            }
            Self::Delete { name } => c.delete_segment(&name).await.map(|()| Reply::Done),
            Self::UpdateAttributes { name, updates } => c
                .update_attributes(&name, updates)
                .await
                .map(|()| Reply::Done),
            Self::TableUpdate { name, changes } => {
                c.table_update(&name, changes).await.map(Reply::Versions)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct ModelSegment {
    kind: SegmentKind,
    /// Every byte ever written, truncated ones included.
    data: Vec<u8>,
    start: u64,
    sealed: bool,
    attributes: BTreeMap<u128, i64>,
    table: BTreeMap<Bytes, (u64, Bytes)>,
}

impl ModelSegment {
    fn length(&self) -> u64 {
        self.data.len() as u64
    }
}

#[derive(Debug, Clone, Default)]
struct Model {
    segments: BTreeMap<String, ModelSegment>,
}

impl Model {
    fn length(&self, name: &str) -> u64 {
        self.segments.get(name).map_or(0, ModelSegment::length)
    }

    fn attribute(&self, name: &str, id: u128) -> Option<i64> {
        self.segments
            .get(name)
            .and_then(|segment| segment.attributes.get(&id).copied())
    }

    fn version(&self, name: &str, key: &[u8]) -> Option<u64> {
        self.segments
            .get(name)
            .and_then(|segment| segment.table.get(key))
            .map(|(version, _)| *version)
    }

    fn writable(
        &mut self,
        name: &str,
        kind: SegmentKind,
    ) -> Result<&mut ModelSegment, SegmentError> {
        let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
        check_writable(name, segment.kind, segment.sealed, kind)?;
        Ok(segment)
    }

    /// Applies `request` as the container would; returns the reply it would give.
    fn apply(&mut self, request: &Request) -> Result<Reply, SegmentError> {
        match request {
            Request::Create { name, kind } => {
                if self.segments.contains_key(name) {
                    return Err(SegmentError::AlreadyExists(name.clone()));
                }
                let segment = ModelSegment {
                    kind: *kind,
                    data: Vec::new(),
                    start: 0,
                    sealed: false,
                    attributes: BTreeMap::new(),
                    table: BTreeMap::new(),
                };
                self.segments.insert(name.clone(), segment);
                Ok(Reply::Done)
            }
            Request::Append {
                name,
                data,
                conditions,
            } => {
                let segment = self.writable(name, SegmentKind::Stream)?;
                if check_append(name, &segment.attributes, segment.length(), conditions)? {
                    return Ok(Reply::Appended(AppendOutcome {
                        offset: None,
                        length: segment.length(),
                    }));
                }
                let offset = segment.length();
                segment.data.extend_from_slice(data);
                if let Some((writer, event)) = conditions.writer {
                    segment.attributes.insert(writer, event);
                }
                Ok(Reply::Appended(AppendOutcome {
                    offset: Some(offset),
                    length: segment.length(),
                }))
            }
            Request::Seal { name } => {
                let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
                if segment.sealed {
                    return Err(SegmentError::Sealed(name.clone()));
                }
                segment.sealed = true;
                Ok(Reply::Sealed(segment.length()))
            }
            Request::Truncate { name, offset } => {
                let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
                if *offset > segment.length() {
                    return Err(SegmentError::BadOffset {
                        segment: name.clone(),
                        expected: segment.length(),
                        given: *offset,
                    });
                }
                segment.start = segment.start.max(*offset);
                Ok(Reply::Done)
            }
            Request::Merge { target, source } => self.merge(target, source),
            Request::Delete { name } => self
                .segments
                .remove(name)
                .map(|_| Reply::Done)
                .ok_or_else(|| no_such(name)),
            Request::UpdateAttributes { name, updates } => {
                let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
                segment.attributes = updated_attributes(name, &segment.attributes, updates)?;
                Ok(Reply::Done)
            }
            Request::TableUpdate { name, changes } => self.table_update(name, changes),
        }
    }

    fn merge(&mut self, target: &str, source: &str) -> Result<Reply, SegmentError> {
        self.writable(target, SegmentKind::Stream)?;
        let source_segment = self.segments.get(source).ok_or_else(|| no_such(source))?;
        check_merge_source(
            target,
            source,
            source_segment.kind,
            source_segment.sealed,
            source_segment.start,
        )?;
        let source_segment = self.segments.remove(source).expect("checked above");
        let target_segment = self.segments.get_mut(target).expect("checked above");
        target_segment.data.extend_from_slice(&source_segment.data);
        Ok(Reply::Merged {
            length: target_segment.length(),
            start: target_segment.start,
        })
    }

    fn table_update(&mut self, name: &str, changes: &[TableChange]) -> Result<Reply, SegmentError> {
        let segment = self.writable(name, SegmentKind::Table)?;
        let mut table = segment.table.clone();
        let mut offset = segment.length();
        let mut versions = Vec::new();
        for change in changes {
            // Conditions hold against the table before the batch (a later change wins).
            let current = segment.table.get(&change.key).map(|(version, _)| *version);
            check_expected_version(name, change.expected, current)?;
            match &change.value {
                Some(value) => table.insert(change.key.clone(), (offset, value.clone())),
                None => table.remove(&change.key),
            };
            versions.push(offset);
            offset += entry_length(
                change.key.len(),
                change.value.as_ref().map_or(0, Bytes::len),
            );
        }
        segment.data.extend_from_slice(&encode_entries(changes));
        segment.table = table;
        Ok(Reply::Versions(versions))
    }
}

/// Whether an error means the container (or its disk) failed, so that the request's fate is
/// unknown, as opposed to a refusal the model predicts.
fn is_failure(error: &SegmentError) -> bool {
    matches!(
        error,
        SegmentError::Log(_) | SegmentError::ContainerNotReady(_)
    )
}

fn is_corruption(error: &SegmentError) -> bool {
    match error {
        SegmentError::Corrupt(_) => true,
        SegmentError::Log(error) => matches!(**error, LogError::Corrupt { .. }),
        _ => false,
    }
}

fn same_outcome(expected: &Result<Reply, SegmentError>, got: &Result<Reply, SegmentError>) -> bool {
    match (expected, got) {
        (Ok(expected), Ok(got)) => expected == got,
        (Err(expected), Err(got)) => expected.to_string() == got.to_string(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// What can be observed of a container, compared as a whole.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    kind: SegmentKind,
    length: u64,
    start: u64,
    sealed: bool,
    /// The readable bytes, `[start, length)`.
    data: Vec<u8>,
    attributes: Vec<Option<i64>>,
    /// Live table entries: key, version, value.
    table: Vec<(Bytes, u64, Bytes)>,
}

type World = BTreeMap<String, Observed>;

fn observe_model(model: &Model) -> World {
    model
        .segments
        .iter()
        .map(|(name, segment)| {
            let observed = Observed {
                kind: segment.kind,
                length: segment.length(),
                start: segment.start,
                sealed: segment.sealed,
                data: segment.data[usize::try_from(segment.start).unwrap()..].to_vec(),
                attributes: all_attributes()
                    .iter()
                    .map(|id| segment.attributes.get(id).copied())
                    .collect(),
                table: segment
                    .table
                    .iter()
                    .map(|(key, (version, value))| (key.clone(), *version, value.clone()))
                    .collect(),
            };
            (name.clone(), observed)
        })
        .collect()
}

/// A short description of how two worlds differ, for failure messages.
fn difference(expected: &World, got: &World) -> String {
    let names: BTreeSet<&String> = expected.keys().chain(got.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        match (expected.get(name), got.get(name)) {
            (Some(e), Some(g)) if e == g => {}
            (Some(e), Some(g)) => out.push(format!(
                "{name}: expected length {} start {} sealed {} attrs {:?} keys {}, got length {} \
                 start {} sealed {} attrs {:?} keys {}{}",
                e.length,
                e.start,
                e.sealed,
                e.attributes,
                e.table.len(),
                g.length,
                g.start,
                g.sealed,
                g.attributes,
                g.table.len(),
                if e.length == g.length && e.data != g.data {
                    " (same length, different bytes)"
                } else {
                    ""
                }
            )),
            (e, g) => out.push(format!(
                "{name}: expected {}, got {}",
                if e.is_some() { "present" } else { "absent" },
                if g.is_some() { "present" } else { "absent" }
            )),
        }
    }
    out.join("; ")
}

// ---------------------------------------------------------------------------------------------
// The simulation.

#[derive(Debug, Default)]
struct Stats {
    requests: u64,
    acknowledged: u64,
    crashes: u64,
    torn_tails: u64,
    unacknowledged_survived: u64,
    flips: u64,
    corruption_reported: u64,
    clean_restarts: u64,
    tail_reads: u64,
    /// State checks that found data in Tier-2, a truncated log, requests throttled so far.
    flushed: u64,
    log_truncated: u64,
    throttled: u64,
}

struct Sim {
    seed: u64,
    rng: ChaCha8Rng,
    disk: SimDisk,
    chunks: ChunkStore,
    clock: Arc<PausedClock>,
    container: Option<ContainerHandle>,
    model: Model,
    /// Every name ever used, so that resurrected segments are noticed.
    names: BTreeSet<String>,
    next_txn: u64,
    stats: Stats,
}

/// A tail read running alongside a batch.
struct TailRead {
    name: String,
    offset: u64,
    task: JoinHandle<Result<ReadResult, SegmentError>>,
}

impl Sim {
    async fn new(seed: u64) -> Self {
        let disk = SimDisk::new();
        let chunks = ChunkStore::open(&ChunkStoreConfig::memory()).unwrap();
        let clock = Arc::new(PausedClock {
            origin: tokio::time::Instant::now(),
        });
        let mut sim = Self {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            disk,
            chunks,
            clock,
            container: None,
            model: Model::default(),
            names: BTreeSet::new(),
            next_txn: 1,
            stats: Stats::default(),
        };
        sim.container = Some(
            sim.start()
                .await
                .unwrap_or_else(|error| panic!("seed {seed}: a new container fails: {error}")),
        );
        let setup = STREAMS
            .iter()
            .map(|name| (name, SegmentKind::Stream))
            .chain(TABLES.iter().map(|name| (name, SegmentKind::Table)));
        for (name, kind) in setup {
            let request = Request::Create {
                name: (*name).to_owned(),
                kind,
            };
            sim.model.apply(&request).unwrap();
            sim.names.insert((*name).to_owned());
            let reply = request.execute(sim.container().clone()).await;
            assert!(reply.is_ok(), "seed {seed}: creating {name}: {reply:?}");
        }
        sim
    }

    fn container(&self) -> &ContainerHandle {
        self.container.as_ref().expect("the container is running")
    }

    async fn start(&self) -> Result<ContainerHandle, SegmentError> {
        ContainerHandle::start(
            ContainerId(7),
            config(),
            Box::new(self.disk.clone()),
            self.chunks.clone(),
            self.clock.clone(),
        )
        .await
    }

    // --- generation --------------------------------------------------------------------------

    fn bytes(&mut self, length: usize) -> Bytes {
        let mut data = vec![0; length];
        self.rng.fill(&mut data[..]);
        Bytes::from(data)
    }

    fn data_size(&mut self) -> usize {
        match self.rng.gen_range(0..10) {
            0 => self.rng.gen_range(0..8),
            1..=6 => self.rng.gen_range(8..1500),
            _ => self.rng.gen_range(1500..5000),
        }
    }

    fn transactions(model: &Model) -> Vec<String> {
        model
            .segments
            .keys()
            .filter(|name| name.contains(TXN_MARKER))
            .cloned()
            .collect()
    }

    fn append(&mut self, model: &Model, name: String) -> Request {
        let size = self.data_size();
        let data = self.bytes(size);
        let mut conditions = AppendConditions::default();
        match self.rng.gen_range(0..100) {
            0..60 => {}
            60..85 => {
                let writer = WRITERS[self.rng.gen_range(0..WRITERS.len())];
                let last = model.attribute(&name, writer).unwrap_or(0);
                let event = if self.rng.gen_bool(0.15) {
                    last - self.rng.gen_range(0..2)
                } else {
                    last + 1
                };
                conditions.writer = Some((writer, event));
            }
            _ => {
                let length = model.length(&name);
                let wrong = self.rng.gen_bool(0.15);
                conditions.expected_offset = Some(if wrong { length + 1 } else { length });
            }
        }
        Request::Append {
            name,
            data,
            conditions,
        }
    }

    fn table_update(&mut self, model: &Model) -> Request {
        let name = TABLES[self.rng.gen_range(0..TABLES.len())].to_owned();
        let count = self.rng.gen_range(1..=3);
        let mut changes = Vec::new();
        for _ in 0..count {
            let key = Bytes::from_static(KEYS[self.rng.gen_range(0..KEYS.len())]);
            let current = model.version(&name, &key);
            let expected = match self.rng.gen_range(0..10) {
                0..4 => ExpectedVersion::Any,
                4..6 => ExpectedVersion::NotExists,
                6..9 => ExpectedVersion::Exactly(current.unwrap_or(3)),
                _ => ExpectedVersion::Exactly(self.rng.gen_range(0..200)),
            };
            let value = if self.rng.gen_bool(0.15) {
                None
            } else {
                let size = if self.rng.gen_bool(0.1) {
                    self.rng.gen_range(1000..2500)
                } else {
                    self.rng.gen_range(0..300)
                };
                Some(self.bytes(size))
            };
            changes.push(TableChange {
                key,
                value,
                expected,
            });
        }
        Request::TableUpdate { name, changes }
    }

    fn attributes(&mut self, model: &Model) -> Request {
        let names: Vec<&str> = STREAMS.iter().chain(&TABLES).copied().collect();
        let name = names[self.rng.gen_range(0..names.len())].to_owned();
        let count = self.rng.gen_range(1..=2);
        let updates = (0..count)
            .map(|_| {
                let id = PLAIN_ATTRIBUTES[self.rng.gen_range(0..PLAIN_ATTRIBUTES.len())];
                let expected = match self.rng.gen_range(0..10) {
                    0..6 => Some(model.attribute(&name, id)),
                    6..8 => None,
                    _ => Some(Some(self.rng.gen_range(-3..3))),
                };
                AttributeUpdate {
                    id,
                    value: self.rng.gen_range(-1000..1000),
                    expected,
                }
            })
            .collect();
        Request::UpdateAttributes { name, updates }
    }

    /// One request, mostly valid against `model` (the state predicted after the requests
    /// generated before it).
    fn generate(&mut self, model: &Model) -> Request {
        let stream = STREAMS[self.rng.gen_range(0..STREAMS.len())].to_owned();
        let transactions = Self::transactions(model);
        let some_txn = |rng: &mut ChaCha8Rng| {
            (!transactions.is_empty())
                .then(|| transactions[rng.gen_range(0..transactions.len())].clone())
        };
        match self.rng.gen_range(0..100) {
            0..45 => self.append(model, stream),
            45..53 => match some_txn(&mut self.rng) {
                Some(txn) => self.append(model, txn),
                None => self.append(model, stream),
            },
            53..72 => self.table_update(model),
            72..77 => self.attributes(model),
            77..82 => {
                let name = format!("{stream}{TXN_MARKER}{:032x}", self.next_txn);
                self.next_txn += 1;
                Request::Create {
                    name,
                    kind: SegmentKind::Stream,
                }
            }
            82..86 => match some_txn(&mut self.rng) {
                Some(name) => Request::Seal { name },
                None => self.table_update(model),
            },
            86..91 => {
                let sealed: Vec<&String> = transactions
                    .iter()
                    .filter(|name| model.segments[*name].sealed)
                    .collect();
                let source = if sealed.is_empty() || self.rng.gen_bool(0.1) {
                    some_txn(&mut self.rng)
                } else {
                    Some(sealed[self.rng.gen_range(0..sealed.len())].clone())
                };
                match source {
                    Some(source) => {
                        let target = source[..source.find(TXN_MARKER).unwrap()].to_owned();
                        Request::Merge { target, source }
                    }
                    None => self.append(model, stream),
                }
            }
            91..93 => match some_txn(&mut self.rng) {
                Some(name) => Request::Delete { name },
                None => self.append(model, stream),
            },
            93..98 => {
                let (start, length) = model
                    .segments
                    .get(&stream)
                    .map_or((0, 0), |segment| (segment.start, segment.length()));
                let offset = self.rng.gen_range(start..=length);
                Request::Truncate {
                    name: stream,
                    offset,
                }
            }
            // Requests the container must refuse.
            _ => match self.rng.gen_range(0..4) {
                0 => Request::Append {
                    name: TABLES[0].to_owned(),
                    data: Bytes::from_static(b"x"),
                    conditions: AppendConditions::default(),
                },
                1 => Request::Create {
                    name: stream,
                    kind: SegmentKind::Stream,
                },
                2 => Request::Seal {
                    name: format!("{stream}{TXN_MARKER}{:032x}", 0),
                },
                _ => Request::Merge {
                    target: stream.clone(),
                    source: stream,
                },
            },
        }
    }

    // --- checking ----------------------------------------------------------------------------

    async fn observe(&self) -> World {
        let seed = self.seed;
        let c = self.container();
        let mut world = World::new();
        for name in &self.names {
            let info = match c.info(name).await {
                Ok(info) => info,
                Err(SegmentError::NoSuchSegment(_)) => continue,
                Err(error) => panic!("seed {seed}: info of {name}: {error}"),
            };
            let data = c
                .read_exact(name, info.start_offset, info.length - info.start_offset)
                .await
                .unwrap_or_else(|error| panic!("seed {seed}: reading {name}: {error}"));
            let attributes = c
                .get_attributes(name, all_attributes())
                .await
                .unwrap_or_else(|error| panic!("seed {seed}: attributes of {name}: {error}"));
            let table = if info.kind == SegmentKind::Table {
                c.table_entries(name, None, usize::MAX)
                    .await
                    .unwrap_or_else(|error| panic!("seed {seed}: entries of {name}: {error}"))
                    .into_iter()
                    .map(|entry| (entry.key, entry.version, entry.value))
                    .collect()
            } else {
                Vec::new()
            };
            let observed = Observed {
                kind: info.kind,
                length: info.length,
                start: info.start_offset,
                sealed: info.sealed,
                data: data.to_vec(),
                attributes,
                table,
            };
            world.insert(name.clone(), observed);
        }
        world
    }

    async fn check_state(&mut self, what: &str) {
        let seed = self.seed;
        let expected = observe_model(&self.model);
        let got = self.observe().await;
        assert!(
            got == expected,
            "seed {seed}: {what}: the container differs from the model: {}",
            difference(&expected, &got)
        );
        let stats = self.container().stats().await.unwrap();
        let files = self.disk.file_names();
        if verbose() {
            eprintln!("  {what}: {stats:?}, disk files {files:?}");
        }
        let readable: u64 = got
            .values()
            .map(|segment| segment.length - segment.start)
            .sum();
        self.stats.flushed += u64::from(stats.unstored_bytes < readable);
        self.stats.log_truncated += u64::from(
            files
                .first()
                .is_some_and(|first| first != "00000000000000000000.log"),
        );
        self.stats.throttled += u64::from(stats.throttled_requests > 0);
        assert_eq!(
            stats.segments,
            self.model.segments.len(),
            "seed {seed}: {what}: segment count"
        );
    }

    /// What a tail reader saw must be in `model` (reads see only durable data).
    fn check_tail_read(
        &mut self,
        model: &Model,
        name: &str,
        offset: u64,
        result: &Result<ReadResult, SegmentError>,
    ) {
        let seed = self.seed;
        let Ok(result) = result else {
            return;
        };
        if result.data.is_empty() {
            return;
        }
        self.stats.tail_reads += 1;
        let segment = model
            .segments
            .get(name)
            .unwrap_or_else(|| panic!("seed {seed}: {name} read at {offset} but it is gone"));
        let from = usize::try_from(offset).unwrap();
        let to = from + result.data.len();
        assert!(
            to <= segment.data.len() && segment.data[from..to] == result.data[..],
            "seed {seed}: a tail read of {} at {} saw {} bytes that are not what the segment holds \
             (length {})",
            name,
            offset,
            result.data.len(),
            segment.data.len()
        );
    }

    // --- rounds ------------------------------------------------------------------------------

    /// Runs one round; returns false when the seed ends (recovery reported corruption).
    async fn round(&mut self, round: usize) -> bool {
        let seed = self.seed;
        if verbose() {
            eprintln!("seed {seed}: round {round}");
        }
        let count = self.rng.gen_range(1..=16);
        let mut predicted = self.model.clone();
        let mut batch = Vec::with_capacity(count);
        for _ in 0..count {
            let request = self.generate(&predicted);
            let expected = predicted.apply(&request);
            self.names
                .extend(request.names().into_iter().map(str::to_owned));
            batch.push((request, expected));
        }
        self.stats.requests += count as u64;
        let c = self.container().clone();
        let mut reads = Vec::new();
        for _ in 0..self.rng.gen_range(0..=2) {
            let name = STREAMS[self.rng.gen_range(0..STREAMS.len())].to_owned();
            let offset = self.model.length(&name);
            let wait = Duration::from_millis(self.rng.gen_range(0..20));
            let reader = c.clone();
            let task = {
                let name = name.clone();
                tokio::spawn(async move { reader.read(&name, offset, 1 << 16, wait).await })
            };
            reads.push(TailRead { name, offset, task });
        }
        let mut tasks: Vec<JoinHandle<Result<Reply, SegmentError>>> = batch
            .iter()
            .map(|(request, _)| tokio::spawn(request.clone().execute(c.clone())))
            .collect();
        drop(c);
        let mut results: Vec<Option<Result<Reply, SegmentError>>> = vec![None; count];
        let awaited = self.rng.gen_range(0..=count);
        if verbose() {
            let requests: Vec<String> = batch
                .iter()
                .map(|(request, expected)| format!("{} -> {}", describe(request), brief(expected)))
                .collect();
            eprintln!("  {count} requests, awaiting {awaited}: {requests:?}");
        }
        // A crash is decided up front; half the time the disk starts failing before the batch
        // runs (so that the crash falls among its writes), else once some replies are in.
        let ending = self.rng.gen_range(0..10);
        let crash = ending < 3;
        let fail_early = crash && self.rng.gen_bool(0.5);
        if fail_early {
            self.fail_disk_soon();
        }
        for (task, result) in tasks.iter_mut().zip(&mut results).take(awaited) {
            *result = Some(task.await.expect("request task"));
        }
        if ending == 3 {
            return self
                .shut_down_mid_batch(round, &batch, tasks, results, reads)
                .await;
        }
        if !crash {
            for (task, result) in tasks.iter_mut().zip(&mut results).skip(awaited) {
                *result = Some(task.await.expect("request task"));
            }
            self.check_replies(round, &batch, &results);
            for read in reads {
                let result = read.task.await.expect("read task");
                self.check_tail_read(&predicted, &read.name, read.offset, &result);
            }
            self.model = predicted;
            if self.rng.gen_bool(0.1) {
                self.container().shutdown().await;
                self.container = Some(self.start().await.unwrap_or_else(|error| {
                    panic!("seed {seed}: round {round}: restart after a shutdown: {error}")
                }));
                self.stats.clean_restarts += 1;
            }
            let pause = self.rng.gen_range(0..25);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            self.check_state(&format!("after round {round}")).await;
            return true;
        }

        // Crash: every task and handle is dropped, without a shutdown.
        self.stats.crashes += 1;
        if !fail_early {
            self.fail_disk_soon();
        }
        for _ in 0..self.rng.gen_range(0..16) {
            tokio::task::yield_now().await;
        }
        let mut aborted = Vec::new();
        for (task, result) in tasks.into_iter().zip(&mut results).skip(awaited) {
            if task.is_finished() {
                *result = Some(task.await.expect("request task"));
            } else {
                task.abort();
                aborted.push(task);
            }
        }
        let mut seen = Vec::new();
        let mut aborted_reads = Vec::new();
        for read in reads {
            if read.task.is_finished() {
                seen.push((read.name, read.offset, read.task.await.expect("read task")));
            } else {
                read.task.abort();
                aborted_reads.push(read.task);
            }
        }
        // Without handles the old container stops; once it has, nothing of it touches the disk.
        self.container = None;
        for task in aborted {
            let _ = task.await;
        }
        for task in aborted_reads {
            let _ = task.await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            Arc::strong_count(&self.clock),
            1,
            "seed {seed}: round {round}: the crashed container is still running"
        );
        let rng = &mut self.rng;
        let mut torn = false;
        self.disk.crash(|file, unsynced| {
            torn = true;
            let fate = tail_fate(rng, unsynced);
            if verbose() {
                eprintln!("  crash: {file} loses {unsynced} unsynced bytes as {fate:?}");
            }
            fate
        });
        if torn {
            self.stats.torn_tails += 1;
        }
        let flipped = if self.rng.gen_bool(0.1) {
            self.disk.flip_bit(self.rng.gen())
        } else {
            None
        };
        if flipped.is_some() {
            self.stats.flips += 1;
        }
        let container = match self.start().await {
            Ok(container) => container,
            Err(error) if flipped.is_some() && is_corruption(&error) => {
                self.stats.corruption_reported += 1;
                return false;
            }
            Err(error) => panic!(
                "seed {seed}: round {round}: recovery failed (bit flipped: {flipped:?}): {error}"
            ),
        };
        self.container = Some(container);
        self.check_replies(round, &batch, &results);

        // Everything acknowledged must have survived, and what survived is a prefix of the batch.
        let acknowledged = results
            .iter()
            .rposition(|result| matches!(result, Some(Ok(_))))
            .map_or(0, |last| last + 1);
        let got = self.observe().await;
        let mut state = self.model.clone();
        let mut matched = None;
        for survivors in 0..=count {
            if survivors > 0 {
                let _ = state.apply(&batch[survivors - 1].0);
            }
            if survivors >= acknowledged && observe_model(&state) == got {
                matched = Some((survivors, state.clone()));
            }
        }
        let Some((survivors, state)) = matched else {
            let mut expected = self.model.clone();
            for (request, _) in &batch[..acknowledged] {
                let _ = expected.apply(request);
            }
            panic!(
                "seed {seed}: round {round}: after the crash (bit flipped: {flipped:?}) the \
                 recovered state is not the state after the {acknowledged} acknowledged requests \
                 plus a prefix of the rest ({count} submitted). Against the acknowledged state: {}",
                difference(&observe_model(&expected), &got)
            );
        };
        self.stats.unacknowledged_survived += (survivors - acknowledged) as u64;
        for (name, offset, result) in &seen {
            self.check_tail_read(&state, name, *offset, result);
        }
        self.model = state;
        self.check_state(&format!("after recovery in round {round}"))
            .await;
        true
    }

    /// Shuts the container down while requests are in flight: what it accepted is made durable
    /// and answered, later requests fail with `ContainerNotReady`, so those form a suffix of the
    /// batch, and after a restart the state is exactly the model after the others.
    async fn shut_down_mid_batch(
        &mut self,
        round: usize,
        batch: &[(Request, Result<Reply, SegmentError>)],
        tasks: Vec<JoinHandle<Result<Reply, SegmentError>>>,
        mut results: Vec<Option<Result<Reply, SegmentError>>>,
        reads: Vec<TailRead>,
    ) -> bool {
        let seed = self.seed;
        self.container().shutdown().await;
        for (task, result) in tasks.into_iter().zip(&mut results) {
            if result.is_none() {
                *result = Some(task.await.expect("request task"));
            }
        }
        let mut seen = Vec::new();
        for read in reads {
            seen.push((read.name, read.offset, read.task.await.expect("read task")));
        }
        self.check_replies(round, batch, &results);
        let refused = |result: &Option<Result<Reply, SegmentError>>| {
            matches!(result, Some(Err(SegmentError::ContainerNotReady(_))))
        };
        assert!(
            !results
                .iter()
                .any(|result| matches!(result, Some(Err(SegmentError::Log(_))))),
            "seed {seed}: round {round}: a log failure without a disk failure: {results:?}"
        );
        let served = results.iter().take_while(|result| !refused(result)).count();
        assert!(
            results[served..].iter().all(refused),
            "seed {seed}: round {round}: requests refused by a stopping container are not a \
             suffix of the batch: {results:?}"
        );
        self.container = Some(self.start().await.unwrap_or_else(|error| {
            panic!("seed {seed}: round {round}: restart after a shutdown: {error}")
        }));
        self.stats.clean_restarts += 1;
        let mut state = self.model.clone();
        for (request, _) in &batch[..served] {
            let _ = state.apply(request);
        }
        for (name, offset, result) in &seen {
            self.check_tail_read(&state, name, *offset, result);
        }
        self.model = state;
        self.check_state(&format!("after a shutdown in round {round}"))
            .await;
        true
    }

    /// Makes the disk fail after a few more calls, so that the requests in flight may reach it
    /// and a write may be appended but never synced. The old container then fails and can no
    /// longer write (until `crash`, which also resets the failure).
    fn fail_disk_soon(&mut self) {
        // Calls alternate append and sync, so an odd count mostly fails a sync: a torn write.
        let calls = if self.rng.gen_bool(0.8) {
            2 * self.rng.gen_range(0..4) + 1
        } else {
            self.rng.gen_range(0..8)
        };
        self.disk.fail_after(calls);
    }

    fn check_replies(
        &mut self,
        round: usize,
        batch: &[(Request, Result<Reply, SegmentError>)],
        results: &[Option<Result<Reply, SegmentError>>],
    ) {
        let seed = self.seed;
        for (index, ((request, expected), result)) in batch.iter().zip(results).enumerate() {
            let Some(result) = result else {
                continue;
            };
            if matches!(result, Err(error) if is_failure(error)) {
                continue;
            }
            assert!(
                same_outcome(expected, result),
                "seed {seed}: round {round}: request {index} {request:?}: expected {expected:?}, \
                 got {result:?}"
            );
            if result.is_ok() {
                self.stats.acknowledged += 1;
            }
        }
    }
}

async fn run(seed: u64) -> Stats {
    let mut sim = Sim::new(seed).await;
    for round in 0..ROUNDS {
        if !sim.round(round).await {
            return sim.stats;
        }
    }
    // A last clean restart must preserve everything.
    sim.container().shutdown().await;
    sim.container = Some(
        sim.start()
            .await
            .unwrap_or_else(|error| panic!("seed {seed}: final restart: {error}")),
    );
    sim.check_state("after the final restart").await;
    sim.container().shutdown().await;
    sim.stats
}

fn run_seed(seed: u64) -> Stats {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(run(seed))));
    match outcome {
        Ok(stats) => stats,
        Err(panic) => {
            eprintln!(
                "simulation seed {seed} failed; replay it with PRAVAHA_SIM_SEED={seed} cargo test \
                 -p pravaha-segmentstore --test simulation replay_seed -- --nocapture"
            );
            std::panic::resume_unwind(panic)
        }
    }
}

/// Seeds `0..SEEDS`, or `0..PRAVAHA_SIM_SEEDS` when set (for longer local runs).
#[test]
fn fixed_seeds() {
    let seeds = std::env::var("PRAVAHA_SIM_SEEDS")
        .ok()
        .and_then(|seeds| seeds.parse().ok())
        .unwrap_or(SEEDS);
    let mut total = Stats::default();
    for seed in 0..seeds {
        let stats = run_seed(seed);
        total.requests += stats.requests;
        total.acknowledged += stats.acknowledged;
        total.crashes += stats.crashes;
        total.torn_tails += stats.torn_tails;
        total.unacknowledged_survived += stats.unacknowledged_survived;
        total.flips += stats.flips;
        total.corruption_reported += stats.corruption_reported;
        total.clean_restarts += stats.clean_restarts;
        total.tail_reads += stats.tail_reads;
        total.flushed += stats.flushed;
        total.log_truncated += stats.log_truncated;
        total.throttled += stats.throttled;
    }
    eprintln!("{seeds} seeds: {total:?}");
    // The workload and thresholds are meant to exercise all of these; if one stops happening,
    // the simulation silently lost coverage.
    for (what, count) in [
        ("crashes", total.crashes),
        ("torn tails", total.torn_tails),
        ("bit flips", total.flips),
        ("corruption reports", total.corruption_reported),
        (
            "unacknowledged requests that survived",
            total.unacknowledged_survived,
        ),
        ("tail reads", total.tail_reads),
        ("clean restarts", total.clean_restarts),
        ("Tier-2 flushes", total.flushed),
        ("log truncations", total.log_truncated),
        ("throttled requests", total.throttled),
    ] {
        assert!(count > 0, "no {what} in {seeds} seeds");
    }
}

/// Replays the seed in `PRAVAHA_SIM_SEED` (does nothing when it is not set).
#[test]
fn replay_seed() {
    if let Ok(seed) = std::env::var("PRAVAHA_SIM_SEED") {
        let seed = seed.parse().expect("PRAVAHA_SIM_SEED is a number");
        let stats = run_seed(seed);
        eprintln!("seed {seed}: {stats:?}");
    }
}

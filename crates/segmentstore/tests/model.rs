//! Model-based property test of one container.
//!
//! Random sequences of operations run against the engine (a simulated log disk, in-memory Tier-2,
//! and thresholds small enough that Tier-2 flushes, checkpoints, log truncation and cache eviction
//! all happen) and against a plain in-memory model. After every step the result (value, or the
//! exact error) and the whole observable state must agree, and so must they after every restart.
//! Time is paused (tokio's test clock), so a run is deterministic; `PRAVAHA_MODEL_CASES` raises
//! the number of cases for a longer local run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pravaha_segmentstore::table::{encode_entries, entry_length};
use pravaha_segmentstore::{
    AppendConditions, AppendOutcome, AttributeUpdate, Clock, ContainerHandle, ExpectedVersion,
    RawEntry, SegmentError, SegmentInfo, SegmentKind, TableChange, TableEntry,
};
use pravaha_storage::chunk::{ChunkStore, ChunkStoreConfig};
use pravaha_storage::sim::SimDisk;
use pravaha_types::ContainerId;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

mod common;

use common::{
    check_append, check_expected_version, check_merge_source, check_writable, config, no_such,
    updated_attributes, wrong_kind, PausedClock,
};

// ---------------------------------------------------------------------------------------------
// The universe of names, attributes and keys operations pick from.

const STREAMS: [&str; 2] = ["scope/alpha/0.#epoch.0", "scope/beta/1.#epoch.0"];
const TABLES: [&str; 2] = ["scope/_tables/one", "scope/_tables/two"];
/// Streams, then two transactions per stream, then tables.
const NAME_COUNT: usize = 8;
const WRITERS: [u128; 2] = [0xaaaa_0000_0000_0001, 0xbbbb_0000_0000_0002];
const ATTRIBUTES: [u128; 4] = [1, 2, WRITERS[0], WRITERS[1]];
const KEYS: [&[u8]; 5] = [b"a", b"b", b"key-c", b"dd", b"e"];

fn name(index: usize) -> String {
    match index {
        0 | 1 => STREAMS[index].to_owned(),
        2..=5 => {
            let stream = (index - 2) / 2;
            let txn = (index - 2) % 2;
            format!(
                "{}#transaction.{:032x}",
                STREAMS[stream],
                0x1234_5678_u128 * (txn as u128 + 1)
            )
        }
        6 | 7 => TABLES[index - 6].to_owned(),
        _ => unreachable!("name index {index}"),
    }
}

fn natural_kind(index: usize) -> SegmentKind {
    if index >= 6 {
        SegmentKind::Table
    } else {
        SegmentKind::Stream
    }
}

/// Deterministic, position-dependent bytes, so that misplaced data is noticed.
fn payload(size: usize, fill: u8) -> Bytes {
    (0..size)
        .map(|i| fill.wrapping_add((i as u8).wrapping_mul(7)) ^ (i >> 8) as u8)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The model.

#[derive(Debug, Clone)]
struct ModelSegment {
    kind: SegmentKind,
    /// Every byte ever written, truncated ones included.
    data: Vec<u8>,
    start: u64,
    sealed: bool,
    last_modified: u64,
    attributes: BTreeMap<u128, i64>,
    /// Live keys: version and value.
    table: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    /// Every table entry written, in order.
    entries: Vec<RawEntry>,
}

impl ModelSegment {
    fn length(&self) -> u64 {
        self.data.len() as u64
    }
}

/// What a caller sees of a segment's metadata (everything but the Tier-2 progress).
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    name: String,
    kind: SegmentKind,
    length: u64,
    start: u64,
    sealed: bool,
    last_modified: u64,
}

impl From<SegmentInfo> for View {
    fn from(info: SegmentInfo) -> Self {
        Self {
            name: info.name,
            kind: info.kind,
            length: info.length,
            start: info.start_offset,
            sealed: info.sealed,
            last_modified: info.last_modified_ms,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Model {
    segments: BTreeMap<String, ModelSegment>,
}

impl Model {
    fn segment(&self, name: &str) -> Result<&ModelSegment, SegmentError> {
        self.segments.get(name).ok_or_else(|| no_such(name))
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

    fn view(&self, name: &str) -> Result<View, SegmentError> {
        let segment = self.segment(name)?;
        Ok(View {
            name: name.to_owned(),
            kind: segment.kind,
            length: segment.length(),
            start: segment.start,
            sealed: segment.sealed,
            last_modified: segment.last_modified,
        })
    }

    fn create(
        &mut self,
        name: &str,
        kind: SegmentKind,
        attributes: &[(u128, i64)],
        now: u64,
    ) -> Result<(), SegmentError> {
        if self.segments.contains_key(name) {
            return Err(SegmentError::AlreadyExists(name.to_owned()));
        }
        let segment = ModelSegment {
            kind,
            data: Vec::new(),
            start: 0,
            sealed: false,
            last_modified: now,
            attributes: attributes.iter().copied().collect(),
            table: BTreeMap::new(),
            entries: Vec::new(),
        };
        self.segments.insert(name.to_owned(), segment);
        Ok(())
    }

    fn append(
        &mut self,
        name: &str,
        data: &[u8],
        conditions: AppendConditions,
        now: u64,
    ) -> Result<AppendOutcome, SegmentError> {
        let segment = self.writable(name, SegmentKind::Stream)?;
        if check_append(name, &segment.attributes, segment.length(), &conditions)? {
            return Ok(AppendOutcome {
                offset: None,
                length: segment.length(),
            });
        }
        let offset = segment.length();
        segment.data.extend_from_slice(data);
        if let Some((writer, event)) = conditions.writer {
            segment.attributes.insert(writer, event);
        }
        segment.last_modified = now;
        Ok(AppendOutcome {
            offset: Some(offset),
            length: segment.length(),
        })
    }

    fn seal(&mut self, name: &str, now: u64) -> Result<u64, SegmentError> {
        let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
        if segment.sealed {
            return Err(SegmentError::Sealed(name.to_owned()));
        }
        segment.sealed = true;
        segment.last_modified = now;
        Ok(segment.length())
    }

    fn truncate(&mut self, name: &str, offset: u64, now: u64) -> Result<(), SegmentError> {
        let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
        if segment.kind != SegmentKind::Stream {
            // Tables are compacted, not truncated.
            return Err(wrong_kind(name, segment.kind, SegmentKind::Stream));
        }
        if offset > segment.length() {
            return Err(SegmentError::BadOffset {
                segment: name.to_owned(),
                expected: segment.length(),
                given: offset,
            });
        }
        segment.start = segment.start.max(offset);
        segment.last_modified = now;
        Ok(())
    }

    fn merge(&mut self, target: &str, source: &str, now: u64) -> Result<View, SegmentError> {
        self.writable(target, SegmentKind::Stream)?;
        let source_segment = self.segment(source)?;
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
        target_segment.last_modified = now;
        self.view(target)
    }

    fn delete(&mut self, name: &str) -> Result<(), SegmentError> {
        self.segments
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| no_such(name))
    }

    fn update_attributes(
        &mut self,
        name: &str,
        updates: &[AttributeUpdate],
        now: u64,
    ) -> Result<(), SegmentError> {
        let segment = self.segments.get_mut(name).ok_or_else(|| no_such(name))?;
        segment.attributes = updated_attributes(name, &segment.attributes, updates)?;
        segment.last_modified = now;
        Ok(())
    }

    fn table_update(
        &mut self,
        name: &str,
        changes: &[TableChange],
        now: u64,
    ) -> Result<Vec<u64>, SegmentError> {
        let segment = self.writable(name, SegmentKind::Table)?;
        let mut table = segment.table.clone();
        let mut offset = segment.length();
        let mut versions = Vec::new();
        let mut entries = Vec::new();
        for change in changes {
            if change.key.is_empty() {
                return Err(SegmentError::InvalidArgument(
                    "table keys must not be empty".into(),
                ));
            }
            // Conditions hold against the table before the batch; a later change of the
            // same key wins.
            let current = segment
                .table
                .get(change.key.as_ref())
                .map(|(version, _)| *version);
            check_expected_version(name, change.expected, current)?;
            match &change.value {
                Some(value) => table.insert(change.key.to_vec(), (offset, value.to_vec())),
                None => table.remove(change.key.as_ref()),
            };
            entries.push(RawEntry {
                key: change.key.clone(),
                value: change.value.clone(),
                version: offset,
            });
            versions.push(offset);
            offset += entry_length(
                change.key.len(),
                change.value.as_ref().map_or(0, Bytes::len),
            );
        }
        segment.data.extend_from_slice(&encode_entries(changes));
        assert_eq!(segment.length(), offset, "model entry layout");
        segment.table = table;
        segment.entries.extend(entries);
        segment.last_modified = now;
        Ok(versions)
    }

    fn table_segment(&self, name: &str) -> Result<&ModelSegment, SegmentError> {
        let segment = self.segment(name)?;
        if segment.kind != SegmentKind::Table {
            return Err(wrong_kind(name, segment.kind, SegmentKind::Table));
        }
        Ok(segment)
    }

    fn read_entry(segment: &ModelSegment, key: &[u8]) -> Option<TableEntry> {
        let (version, value) = segment.table.get(key)?;
        Some(TableEntry {
            key: Bytes::copy_from_slice(key),
            value: Bytes::copy_from_slice(value),
            version: *version,
        })
    }

    fn table_entries(&self, name: &str) -> Result<Vec<TableEntry>, SegmentError> {
        let segment = self.table_segment(name)?;
        Ok(segment
            .table
            .keys()
            .filter_map(|key| Self::read_entry(segment, key))
            .collect())
    }

    fn table_get(
        &self,
        name: &str,
        keys: &[Bytes],
    ) -> Result<Vec<Option<TableEntry>>, SegmentError> {
        let segment = self.table_segment(name)?;
        Ok(keys
            .iter()
            .map(|key| Self::read_entry(segment, key))
            .collect())
    }

    fn table_keys(&self, name: &str) -> Result<Vec<(Bytes, u64)>, SegmentError> {
        let segment = self.table_segment(name)?;
        Ok(segment
            .table
            .iter()
            .map(|(key, (version, _))| (Bytes::copy_from_slice(key), *version))
            .collect())
    }

    /// The bytes a read at `offset` may return (it may return any non-empty prefix of them),
    /// and whether the segment is sealed.
    fn read(
        &self,
        name: &str,
        offset: u64,
        max_length: usize,
    ) -> Result<(Vec<u8>, bool), SegmentError> {
        let segment = self.segment(name)?;
        if offset < segment.start {
            return Err(SegmentError::Truncated {
                segment: name.to_owned(),
                offset,
                start_offset: segment.start,
            });
        }
        if offset > segment.length() {
            return Err(SegmentError::BadOffset {
                segment: name.to_owned(),
                expected: segment.length(),
                given: offset,
            });
        }
        let from = usize::try_from(offset).unwrap();
        let to = segment.data.len().min(from + max_length.max(1));
        Ok((segment.data[from..to].to_vec(), segment.sealed))
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    what: &str,
    engine: &Result<T, SegmentError>,
    model: &Result<T, SegmentError>,
) {
    match (engine, model) {
        (Ok(engine), Ok(model)) => assert_eq!(engine, model, "{what}: engine vs model"),
        (Err(engine), Err(model)) => {
            assert_eq!(
                engine.to_string(),
                model.to_string(),
                "{what}: error differs"
            );
        }
        _ => panic!("{what}: engine returned {engine:?}, the model expected {model:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Operations and their generation.

#[derive(Debug, Clone, Copy)]
enum Cas {
    Unconditional,
    Current,
    Absent,
    Wrong(i64),
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Any,
    NotExists,
    Current,
    Stale(u64),
}

#[derive(Debug, Clone, Copy)]
enum ReadAt {
    Start,
    Tail,
    Inside(u8),
    BeforeStart,
    Beyond,
}

/// A table change: key index (`KEYS.len()` is the invalid empty key), the value's size and
/// fill byte (`None` removes the key), and the expected version.
type Change = (usize, Option<(usize, u8)>, Expect);

#[derive(Debug, Clone)]
enum Op {
    Create {
        name: usize,
        flip_kind: bool,
        attributes: Vec<(usize, i64)>,
    },
    Append {
        name: usize,
        size: usize,
        fill: u8,
        /// Expected offset relative to the current length.
        expected_offset: Option<i64>,
        /// Writer and event number relative to its last one (at most 0: a duplicate).
        writer: Option<(usize, i64)>,
    },
    Seal {
        name: usize,
    },
    Truncate {
        name: usize,
        /// Fraction (of 255) of the length; `beyond` asks past the end.
        fraction: u8,
        beyond: bool,
    },
    Merge {
        target: usize,
        source: usize,
    },
    Delete {
        name: usize,
    },
    UpdateAttributes {
        name: usize,
        updates: Vec<(usize, i64, Cas)>,
    },
    TableUpdate {
        name: usize,
        changes: Vec<Change>,
    },
    Read {
        name: usize,
        at: ReadAt,
        max_length: usize,
    },
    ReadDelta {
        name: usize,
        entry: usize,
        max_bytes: usize,
    },
    /// Create a transaction segment of `stream`, append to it, seal it and (if `commit`) merge
    /// it: each one step, checked as such.
    Transaction {
        stream: usize,
        txn: usize,
        appends: Vec<(usize, u8)>,
        commit: bool,
    },
    Restart,
    Sleep {
        ms: u64,
    },
}

/// Mostly a name from `preferred`, sometimes any.
fn pick_name(preferred: std::ops::Range<usize>) -> BoxedStrategy<usize> {
    prop_oneof![4 => preferred, 1 => 0..NAME_COUNT].boxed()
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![2 => 0usize..64, 4 => 64usize..2000, 4 => 2000usize..8000]
}

fn op() -> impl Strategy<Value = Op> {
    let create = (
        pick_name(2..6),
        prop::bool::weighted(0.1),
        prop::collection::vec((0..ATTRIBUTES.len(), -3i64..3), 0..3),
    )
        .prop_map(|(name, flip_kind, attributes)| Op::Create {
            name,
            flip_kind,
            attributes,
        });
    let append = (
        prop_oneof![6 => 0..2usize, 3 => 2..6usize, 1 => 0..NAME_COUNT],
        size(),
        any::<u8>(),
        prop::option::weighted(0.2, -2i64..=2),
        prop::option::weighted(
            0.4,
            (
                prop_oneof![3 => Just(0usize), 1 => Just(1usize)],
                prop_oneof![6 => Just(1i64), 1 => Just(2i64), 3 => -1i64..=0],
            ),
        ),
    )
        .prop_map(|(name, size, fill, expected_offset, writer)| Op::Append {
            name,
            size,
            fill,
            expected_offset,
            writer,
        });
    let merge = prop_oneof![
        4 => (0..2usize, 0..2usize).prop_map(|(stream, txn)| Op::Merge {
            target: stream,
            source: 2 + 2 * stream + txn,
        }),
        1 => (0..NAME_COUNT, 0..NAME_COUNT)
            .prop_map(|(target, source)| Op::Merge { target, source }),
    ];
    let cas = prop_oneof![
        Just(Cas::Unconditional),
        Just(Cas::Current),
        Just(Cas::Absent),
        (-3i64..3).prop_map(Cas::Wrong),
    ];
    let attributes = (
        pick_name(0..6),
        prop::collection::vec((0..ATTRIBUTES.len(), -5i64..5, cas), 1..4),
    )
        .prop_map(|(name, updates)| Op::UpdateAttributes { name, updates });
    let expect = prop_oneof![
        3 => Just(Expect::Any),
        2 => Just(Expect::NotExists),
        3 => Just(Expect::Current),
        1 => (0u64..64).prop_map(Expect::Stale),
    ];
    let value = prop_oneof![
        6 => (0usize..200, any::<u8>()),
        1 => (1000usize..3000, any::<u8>()),
    ];
    let change = (
        prop_oneof![30 => 0..KEYS.len(), 1 => Just(KEYS.len())],
        prop::option::weighted(0.8, value),
        expect,
    );
    let table = (pick_name(6..8), prop::collection::vec(change, 1..4))
        .prop_map(|(name, changes)| Op::TableUpdate { name, changes });
    let read_at = prop_oneof![
        Just(ReadAt::Start),
        Just(ReadAt::Tail),
        any::<u8>().prop_map(ReadAt::Inside),
        Just(ReadAt::BeforeStart),
        Just(ReadAt::Beyond),
    ];
    let transaction = (
        0..2usize,
        0..2usize,
        prop::collection::vec((size(), any::<u8>()), 0..4),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(stream, txn, appends, commit)| Op::Transaction {
            stream,
            txn,
            appends,
            commit,
        });
    prop_oneof![
        4 => create,
        3 => transaction,
        20 => append,
        2 => pick_name(2..6).prop_map(|name| Op::Seal { name }),
        3 => (pick_name(0..2), any::<u8>(), prop::bool::weighted(0.1))
            .prop_map(|(name, fraction, beyond)| Op::Truncate { name, fraction, beyond }),
        3 => merge,
        1 => (0..NAME_COUNT).prop_map(|name| Op::Delete { name }),
        4 => attributes,
        10 => table,
        3 => (0..NAME_COUNT, read_at, 1usize..6000)
            .prop_map(|(name, at, max_length)| Op::Read { name, at, max_length }),
        2 => (pick_name(6..8), any::<usize>(), 1usize..400)
            .prop_map(|(name, entry, max_bytes)| Op::ReadDelta { name, entry, max_bytes }),
        2 => Just(Op::Restart),
        4 => (1u64..40).prop_map(|ms| Op::Sleep { ms }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Coverage: the thresholds are meant to make every background mechanism run at least once.

static FLUSHED: AtomicU64 = AtomicU64::new(0);
static CHECKPOINTED: AtomicU64 = AtomicU64::new(0);
static LOG_TRUNCATED: AtomicU64 = AtomicU64::new(0);
static EVICTED: AtomicU64 = AtomicU64::new(0);
static MERGED: AtomicU64 = AtomicU64::new(0);
static DUPLICATES: AtomicU64 = AtomicU64::new(0);
static RESTARTS: AtomicU64 = AtomicU64::new(0);

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// Running a case.

struct Harness {
    disk: SimDisk,
    chunks: ChunkStore,
    clock: Arc<PausedClock>,
    container: ContainerHandle,
    model: Model,
    /// Whether the container restarted in this case (the cache then holds less than it could).
    restarted: bool,
}

async fn start(disk: &SimDisk, chunks: &ChunkStore, clock: &Arc<PausedClock>) -> ContainerHandle {
    ContainerHandle::start(
        ContainerId(0),
        config(),
        Box::new(disk.clone()),
        chunks.clone(),
        clock.clone(),
    )
    .await
    .expect("the container starts")
}

impl Harness {
    async fn new() -> Self {
        let disk = SimDisk::new();
        let chunks = ChunkStore::open(&ChunkStoreConfig::memory()).unwrap();
        let clock = Arc::new(PausedClock {
            origin: tokio::time::Instant::now(),
        });
        let container = start(&disk, &chunks, &clock).await;
        Self {
            disk,
            chunks,
            clock,
            container,
            model: Model::default(),
            restarted: false,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn length(&self, name: &str) -> u64 {
        self.model
            .segments
            .get(name)
            .map_or(0, ModelSegment::length)
    }

    fn attribute(&self, name: &str, id: u128) -> Option<i64> {
        self.model
            .segments
            .get(name)
            .and_then(|segment| segment.attributes.get(&id).copied())
    }

    async fn step(&mut self, index: usize, op: &Op) {
        let what = format!("step {index}: {op:?}");
        let c = self.container.clone();
        match op {
            Op::Create {
                name,
                flip_kind,
                attributes,
            } => {
                let kind = match (natural_kind(*name), flip_kind) {
                    (kind, false) => kind,
                    (SegmentKind::Stream, true) => SegmentKind::Table,
                    (SegmentKind::Table, true) => SegmentKind::Stream,
                };
                let name = self::name(*name);
                let attributes: Vec<(u128, i64)> = attributes
                    .iter()
                    .map(|&(attribute, value)| (ATTRIBUTES[attribute], value))
                    .collect();
                let now = self.now();
                let engine = c.create_segment(&name, kind, attributes.clone()).await;
                let model = self.model.create(&name, kind, &attributes, now);
                check(&what, &engine, &model);
            }
            Op::Append {
                name,
                size,
                fill,
                expected_offset,
                writer,
            } => {
                let name = self::name(*name);
                let length = self.length(&name);
                let conditions = AppendConditions {
                    expected_offset: expected_offset
                        .map(|delta| length.saturating_add_signed(delta)),
                    writer: writer.map(|(writer, delta)| {
                        let id = WRITERS[writer];
                        (id, self.attribute(&name, id).unwrap_or(0) + delta)
                    }),
                };
                let data = payload(*size, *fill);
                let now = self.now();
                let engine = c.append(&name, data.clone(), conditions).await;
                let model = self.model.append(&name, &data, conditions, now);
                if matches!(model, Ok(AppendOutcome { offset: None, .. })) {
                    count(&DUPLICATES);
                }
                check(&what, &engine, &model);
            }
            Op::Seal { name } => {
                let name = self::name(*name);
                let now = self.now();
                let engine = c.seal(&name).await;
                check(&what, &engine, &self.model.seal(&name, now));
            }
            Op::Truncate {
                name,
                fraction,
                beyond,
            } => {
                let name = self::name(*name);
                let length = self.length(&name);
                let offset = if *beyond {
                    length + 1 + u64::from(*fraction)
                } else {
                    length * u64::from(*fraction) / 255
                };
                let now = self.now();
                let engine = c.truncate(&name, offset).await;
                check(&what, &engine, &self.model.truncate(&name, offset, now));
            }
            Op::Merge { target, source } => {
                let (target, source) = (self::name(*target), self::name(*source));
                let now = self.now();
                let engine = c.merge(&target, &source).await.map(View::from);
                let model = self.model.merge(&target, &source, now);
                if model.is_ok() {
                    count(&MERGED);
                }
                check(&what, &engine, &model);
            }
            Op::Delete { name } => {
                let name = self::name(*name);
                let engine = c.delete_segment(&name).await;
                check(&what, &engine, &self.model.delete(&name));
            }
            Op::UpdateAttributes { name, updates } => {
                let name = self::name(*name);
                let updates: Vec<AttributeUpdate> = updates
                    .iter()
                    .map(|&(attribute, value, cas)| {
                        let id = ATTRIBUTES[attribute];
                        let expected = match cas {
                            Cas::Unconditional => None,
                            Cas::Current => Some(self.attribute(&name, id)),
                            Cas::Absent => Some(None),
                            Cas::Wrong(value) => Some(Some(value)),
                        };
                        AttributeUpdate {
                            id,
                            value,
                            expected,
                        }
                    })
                    .collect();
                let now = self.now();
                let engine = c.update_attributes(&name, updates.clone()).await;
                let model = self.model.update_attributes(&name, &updates, now);
                check(&what, &engine, &model);
            }
            Op::TableUpdate { name, changes } => {
                let name = self::name(*name);
                let changes: Vec<TableChange> = changes
                    .iter()
                    .map(|&(key, value, expect)| {
                        let key = Bytes::from_static(KEYS.get(key).copied().unwrap_or(b""));
                        let current = self
                            .model
                            .segments
                            .get(&name)
                            .and_then(|segment| segment.table.get(key.as_ref()))
                            .map(|(version, _)| *version);
                        let expected = match expect {
                            Expect::Any => ExpectedVersion::Any,
                            Expect::NotExists => ExpectedVersion::NotExists,
                            Expect::Current => ExpectedVersion::Exactly(current.unwrap_or(7)),
                            Expect::Stale(version) => ExpectedVersion::Exactly(version),
                        };
                        TableChange {
                            key,
                            value: value.map(|(size, fill)| payload(size, fill)),
                            expected,
                        }
                    })
                    .collect();
                let now = self.now();
                let engine = c.table_update(&name, changes.clone()).await;
                let model = self.model.table_update(&name, &changes, now);
                check(&what, &engine, &model);
            }
            Op::Read {
                name,
                at,
                max_length,
            } => {
                let name = self::name(*name);
                let (start, length) = self
                    .model
                    .segments
                    .get(&name)
                    .map_or((0, 0), |segment| (segment.start, segment.length()));
                let offset = match at {
                    ReadAt::Start => start,
                    ReadAt::Tail => length,
                    ReadAt::Inside(fraction) => {
                        start + (length - start) * u64::from(*fraction) / 255
                    }
                    ReadAt::BeforeStart => start.saturating_sub(1),
                    ReadAt::Beyond => length + 1,
                };
                let engine = c.read(&name, offset, *max_length, Duration::ZERO).await;
                let model = self.model.read(&name, offset, *max_length);
                match (&engine, &model) {
                    (Ok(read), Ok((expected, sealed))) => {
                        // A read may return less than there is (it stops at a chunk's end);
                        // whatever reaches the end of a sealed segment says so.
                        let at_end = *sealed && offset + read.data.len() as u64 == length;
                        assert_eq!(read.offset, offset, "{what}");
                        assert_eq!(read.end_of_segment, at_end, "{what}");
                        assert_eq!(read.data.is_empty(), expected.is_empty(), "{what}");
                        assert!(
                            expected.starts_with(&read.data),
                            "{what}: read returned other bytes than written"
                        );
                    }
                    _ => check(&what, &engine.map(|_| ()), &model.map(|_| ())),
                }
            }
            Op::ReadDelta {
                name,
                entry,
                max_bytes,
            } => {
                let name = self::name(*name);
                let Some(segment) = self.model.segments.get(&name) else {
                    let engine = c.table_read_delta(&name, 0, *max_bytes).await;
                    check(&what, &engine.map(|_| ()), &Err(no_such(&name)));
                    return;
                };
                if segment.kind != SegmentKind::Table {
                    return;
                }
                let readable: Vec<&RawEntry> = segment
                    .entries
                    .iter()
                    .filter(|entry| entry.version >= segment.start)
                    .collect();
                let first = if readable.is_empty() {
                    0
                } else {
                    entry % (readable.len() + 1)
                };
                let from = readable.get(first).map_or(segment.length(), |e| e.version);
                let (entries, next) = c
                    .table_read_delta(&name, from, *max_bytes)
                    .await
                    .unwrap_or_else(|error| panic!("{what}: {error}"));
                let expected: Vec<RawEntry> = readable[first..]
                    .iter()
                    .map(|&entry| entry.clone())
                    .collect();
                assert_eq!(entries.is_empty(), expected.is_empty(), "{what}");
                assert!(entries.len() <= expected.len(), "{what}: {entries:?}");
                assert_eq!(entries[..], expected[..entries.len()], "{what}");
                let end = entries.last().map_or(from, |entry| {
                    entry.version
                        + entry_length(entry.key.len(), entry.value.as_ref().map_or(0, Bytes::len))
                });
                assert_eq!(next, end, "{what}: continuation offset");
            }
            Op::Restart => {
                self.container.shutdown().await;
                assert!(
                    matches!(
                        c.info(STREAMS[0]).await,
                        Err(SegmentError::ContainerNotReady(0))
                    ),
                    "{what}: a stopped container refuses requests"
                );
                self.container = start(&self.disk, &self.chunks, &self.clock).await;
                self.restarted = true;
                count(&RESTARTS);
            }
            Op::Transaction {
                stream,
                txn,
                appends,
                commit,
            } => {
                let source = 2 + 2 * stream + txn;
                let mut steps = vec![Op::Create {
                    name: source,
                    flip_kind: false,
                    attributes: Vec::new(),
                }];
                steps.extend(appends.iter().map(|&(size, fill)| Op::Append {
                    name: source,
                    size,
                    fill,
                    expected_offset: None,
                    writer: None,
                }));
                steps.push(Op::Seal { name: source });
                if *commit {
                    steps.push(Op::Merge {
                        target: *stream,
                        source,
                    });
                }
                for step in &steps {
                    Box::pin(self.step(index, step)).await;
                }
            }
            Op::Sleep { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
        }
    }

    /// Compares everything observable about every name with the model.
    async fn check_state(&self, what: &str) {
        let c = &self.container;
        let mut readable_bytes = 0;
        for index in 0..NAME_COUNT {
            let name = name(index);
            let info = c.info(&name).await;
            let Some(segment) = self.model.segments.get(&name) else {
                check(what, &info.map(View::from), &Err(no_such(&name)));
                continue;
            };
            let info = info.unwrap_or_else(|error| panic!("{what}: info of {name}: {error}"));
            if info.unstored_bytes < info.length - info.start_offset {
                count(&FLUSHED);
            }
            readable_bytes += info.length - info.start_offset;
            check(
                &format!("{what}: info of {name}"),
                &Ok(View::from(info)),
                &self.model.view(&name),
            );
            let start = usize::try_from(segment.start).unwrap();
            let data = c
                .read_exact(&name, segment.start, segment.length() - segment.start)
                .await
                .unwrap_or_else(|error| panic!("{what}: reading {name}: {error}"));
            assert!(
                data[..] == segment.data[start..],
                "{what}: bytes of {name} differ ({} read, {} expected)",
                data.len(),
                segment.data.len() - start
            );
            let attributes = c.get_attributes(&name, ATTRIBUTES.to_vec()).await;
            let expected: Vec<Option<i64>> = ATTRIBUTES
                .iter()
                .map(|id| segment.attributes.get(id).copied())
                .collect();
            check(
                &format!("{what}: attributes of {name}"),
                &attributes,
                &Ok(expected),
            );
            let entries = c.table_entries(&name, None, usize::MAX).await;
            check(
                &format!("{what}: table entries of {name}"),
                &entries,
                &self.model.table_entries(&name),
            );
            if segment.kind == SegmentKind::Table {
                self.check_table(what, &name).await;
            }
        }
        let stats = c.stats().await.unwrap();
        assert_eq!(
            stats.segments,
            self.model.segments.len(),
            "{what}: segment count"
        );
        if !self.restarted && stats.cached_bytes < readable_bytes {
            count(&EVICTED);
        }
        let files = self.disk.file_names();
        if files.len() > 1 {
            count(&CHECKPOINTED);
        }
        if files
            .first()
            .is_some_and(|first| first != &format!("{:020}.log", 0))
        {
            count(&LOG_TRUNCATED);
        }
    }

    async fn check_table(&self, what: &str, name: &str) {
        let c = &self.container;
        let mut keys: Vec<Bytes> = KEYS.iter().map(|key| Bytes::from_static(key)).collect();
        keys.push(Bytes::from_static(b"absent"));
        let got = c.table_get(name, keys.clone()).await;
        check(
            &format!("{what}: table get of {name}"),
            &got,
            &self.model.table_get(name, &keys),
        );
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = c
                .table_keys(name, after.clone(), 2)
                .await
                .unwrap_or_else(|error| panic!("{what}: table keys of {name}: {error}"));
            after = page.last().map(|(key, _)| key.clone());
            let done = page.len() < 2;
            paged.extend(page);
            if done {
                break;
            }
        }
        check(
            &format!("{what}: table keys of {name}"),
            &Ok(paged),
            &self.model.table_keys(name),
        );
    }
}

async fn run_case(ops: &[Op]) {
    let mut harness = Harness::new().await;
    let prologue = [0, 1, 6, 7].map(|name| Op::Create {
        name,
        flip_kind: false,
        attributes: Vec::new(),
    });
    for (index, op) in prologue.iter().enumerate() {
        harness.step(index, op).await;
    }
    for (index, op) in ops.iter().enumerate() {
        harness.step(index, op).await;
        harness
            .check_state(&format!("after step {index} ({op:?})"))
            .await;
    }
    // Whatever happened, a final restart must preserve everything.
    harness.step(ops.len(), &Op::Restart).await;
    harness.check_state("after the final restart").await;
    harness.container.shutdown().await;
}

#[test]
fn container_matches_model() {
    let cases = std::env::var("PRAVAHA_MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = prop::collection::vec(op(), 1..48);
    runner
        .run(&strategy, |ops| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(run_case(&ops));
            Ok(())
        })
        .unwrap();
    let counters = [
        ("Tier-2 flushes", &FLUSHED),
        ("checkpoints", &CHECKPOINTED),
        ("log truncations", &LOG_TRUNCATED),
        ("cache evictions", &EVICTED),
        ("merges", &MERGED),
        ("duplicate appends", &DUPLICATES),
        ("restarts", &RESTARTS),
    ];
    for (what, counter) in counters {
        eprintln!("{what}: {}", counter.load(Ordering::Relaxed));
    }
    for (what, counter) in counters {
        assert!(
            counter.load(Ordering::Relaxed) > 0,
            "no {what} happened: the thresholds no longer exercise them"
        );
    }
}

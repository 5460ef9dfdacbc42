//! [`Synchronizer`]: a two-level map (outer key → inner key → [`Value`]) shared through a
//! table segment, changed only by conditional updates, in the official Rust client's format.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::format::{self, FormatError, Value};
use super::table::{TableError, TableSegment, NOT_EXISTS};

/// Entries asked for per delta read (the official client asks for 10).
const DELTA_PAGE_ENTRIES: i32 = 100;
/// Conflicting updates in a row before an update gives up.
const MAX_CONFLICTS: u32 = 1000;

/// Why a synchronizer operation failed.
///
/// An update function refuses a change by returning [`SyncError::Precondition`]; the update
/// then writes nothing and returns that error.
///
/// ```no_run
/// # use pravaha_client::sync::Synchronizer;
/// # async fn example(mut sync: Synchronizer) -> Result<(), Box<dyn std::error::Error>> {
/// use pravaha_client::sync::SyncError;
///
/// let claimed = sync
///     .update(|table| {
///         if table.contains("leases", "compaction") {
///             return Err(SyncError::Precondition("another worker holds the lease".into()));
///         }
///         table.insert("leases", "compaction", "String", &"worker-7")
///     })
///     .await;
/// match claimed {
///     Ok(()) => println!("this worker compacts"),
///     Err(SyncError::Precondition(reason)) => println!("not this worker: {reason}"),
///     Err(error) => return Err(error.into()),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The update function refused the change (e.g. a reader that is already offline).
    #[error("precondition failed: {0}")]
    Precondition(String),
    #[error("{conflicts} conflicting updates in a row on {table}; giving up")]
    TooManyConflicts { table: String, conflicts: u32 },
}

/// A value and the version of its table key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Versioned {
    value: Value,
    version: i64,
}

/// The local copy of a synchronizer table and the way to change it.
///
/// Reads ([`Self::get`], [`Self::inner_map`]) see the copy as of the last
/// [`Self::fetch_updates`] or update: changes by other synchronizers on the same name (ours or
/// the official client's) appear only once fetched. [`Self::update`] runs a function on a
/// snapshot, writes what it inserted conditionally on the versions seen, and on a conflict
/// fetches the changes and runs the function again.
///
/// What to rely on:
/// - **Conflicts are per outer key.** Every update also writes a marker of each outer key it
///   touched, so it conflicts with any concurrent update of the same outer key, not only of
///   the same inner keys: a read-modify-write (a counter, a lease) is never lost.
/// - **The function may run several times** (once per conflict, up to 1000 in a row, then
///   [`SyncError::TooManyConflicts`]); keep its effects to the [`Update`] it is given, and use
///   what [`Self::update`] returns (the last run's result).
/// - **Removals** ([`Update::insert_tombstone`]) write a tombstone value first, which other
///   copies see at their next fetch (the key reads as absent there), then remove the key.
///   A key removed can be written again "only if absent" from any copy.
/// - **Cancelling** an update (dropping its future) leaves the write done or not, never
///   half-done (the entries of one update are written atomically; a removal cancelled after its
///   tombstone was written leaves the tombstone, which reads as absent); the local copy
///   catches up at the next fetch or conflict. Reads are not affected.
/// - One synchronizer is used by one task at a time (`&mut self`); share one behind a
///   `tokio::sync::Mutex`, or open one per task or process (each keeps its own copy).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use pravaha_client::sync::Synchronizer;
/// use pravaha_client::{ClientConfig, ControllerClient};
///
/// let controller = ControllerClient::new(ClientConfig::from_env()?)?;
/// let mut sync = Synchronizer::open(&controller, "shop", "counters").await?;
/// // A counter that many processes increment: a conflict re-runs the closure on fresh data.
/// let next = sync
///     .update(|table| {
///         let next = table.get_as::<u64>("counters", "orders")?.unwrap_or(0) + 1;
///         table.insert("counters", "orders", "u64", &next)?;
///         Ok(next)
///     })
///     .await?;
/// assert_eq!(sync.get("counters", "orders").unwrap().decode::<u64>()?, next);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Synchronizer {
    table: TableSegment,
    /// outer key → inner key → value (tombstones included until their removal is seen).
    inner: BTreeMap<String, BTreeMap<String, Versioned>>,
    /// outer key → its marker's version.
    markers: BTreeMap<String, Versioned>,
    fetch_position: i64,
}

impl Synchronizer {
    /// A synchronizer over `table` (created by the caller), with an empty local copy.
    pub fn new(table: TableSegment) -> Self {
        Self {
            table,
            inner: BTreeMap::new(),
            markers: BTreeMap::new(),
            fetch_position: 0,
        }
    }

    /// The name of the table segment the state lives in.
    pub fn table_name(&self) -> &str {
        self.table.name()
    }

    /// The value of `outer`/`inner`, unless absent or removed.
    pub fn get(&self, outer: &str, inner: &str) -> Option<&Value> {
        let entry = self.inner.get(outer)?.get(inner)?;
        (!entry.value.is_tombstone()).then_some(&entry.value)
    }

    /// Every live inner key of `outer` with its value.
    pub fn inner_map(&self, outer: &str) -> BTreeMap<String, Value> {
        live(self.inner.get(outer))
    }

    /// Whether nothing was ever written (as far as this copy knows).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty() && self.markers.is_empty()
    }

    /// Applies every change written since the last fetch; returns how many entries were read.
    pub async fn fetch_updates(&mut self) -> Result<usize, SyncError> {
        let mut count = 0;
        loop {
            let delta = self
                .table
                .read_delta(self.fetch_position, DELTA_PAGE_ENTRIES)
                .await?;
            if delta.should_clear {
                self.inner.clear();
                self.markers.clear();
            }
            if delta.entries.is_empty() {
                self.fetch_position = self.fetch_position.max(delta.last_position);
                return Ok(count);
            }
            for (key, value, version) in delta.entries {
                let composite = format::decode_key(&key)?;
                let (outer, inner) = format::split_key(&composite)?;
                let value = format::decode_value(&value)?;
                self.apply(outer, inner, Versioned { value, version });
                count += 1;
            }
            self.fetch_position = delta.last_position;
        }
    }

    /// Runs `change` on a snapshot of the table and writes what it inserted, conditionally on
    /// the versions the snapshot saw; on a conflict, fetches the changes and runs it again.
    /// Inner keys it tombstoned are removed afterwards. Returns what `change` returned last.
    pub async fn update<R>(
        &mut self,
        mut change: impl FnMut(&mut Update) -> Result<R, SyncError>,
    ) -> Result<R, SyncError> {
        let mut conflicts = 0;
        loop {
            let mut update = Update::snapshot(self);
            let result = change(&mut update)?;
            if update.writes.is_empty() {
                return Ok(result);
            }
            match self.write(&update).await {
                Ok(()) => {
                    self.remove_tombstones(update.tombstoned).await?;
                    return Ok(result);
                }
                Err(SyncError::Table(error)) if error.is_conflict() => {
                    conflicts += 1;
                    if conflicts >= MAX_CONFLICTS {
                        return Err(SyncError::TooManyConflicts {
                            table: self.table.name().to_owned(),
                            conflicts,
                        });
                    }
                    self.refresh(&update.writes).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Deletes the table segment.
    pub async fn delete(mut self) -> Result<(), SyncError> {
        self.table.delete().await?;
        Ok(())
    }

    /// One conditional write of everything `update` inserted; applied locally on success.
    async fn write(&mut self, update: &Update) -> Result<(), SyncError> {
        let mut entries = Vec::with_capacity(update.writes.len());
        for (outer, inner) in &update.writes {
            let composite = format::composite_key(outer, inner.as_deref())?;
            let value = update.value(outer, inner.as_deref());
            entries.push((
                format::encode_key(&composite),
                format::encode_value(value)?,
                self.version(outer, inner.as_deref()),
            ));
        }
        let versions = self.table.update(entries).await?;
        for ((outer, inner), version) in update.writes.iter().zip(versions) {
            let value = update.value(outer, inner.as_deref()).clone();
            self.apply(outer.clone(), inner.clone(), Versioned { value, version });
        }
        Ok(())
    }

    /// After a conflict: the changes since the last fetch, and the current versions of the
    /// keys written (a key removed by another client is never listed in a delta).
    async fn refresh(&mut self, writes: &[(String, Option<String>)]) -> Result<(), SyncError> {
        self.fetch_updates().await?;
        let keys = writes
            .iter()
            .map(|(outer, inner)| {
                format::composite_key(outer, inner.as_deref()).map(|key| format::encode_key(&key))
            })
            .collect::<Result<Vec<Bytes>, _>>()?;
        let current = self.table.get(keys).await?;
        for ((outer, inner), entry) in writes.iter().zip(current) {
            match entry {
                Some((value, version)) => {
                    let value = format::decode_value(&value)?;
                    self.apply(outer.clone(), inner.clone(), Versioned { value, version });
                }
                None => self.forget(outer, inner.as_deref()),
            }
        }
        Ok(())
    }

    /// Removes the tombstoned inner keys still tombstoned, conditionally on their versions.
    async fn remove_tombstones(
        &mut self,
        mut keys: Vec<(String, String)>,
    ) -> Result<(), SyncError> {
        let mut conflicts = 0;
        while !keys.is_empty() {
            keys.retain(|(outer, inner)| {
                self.inner
                    .get(outer)
                    .and_then(|map| map.get(inner))
                    .is_some_and(|entry| entry.value.is_tombstone())
            });
            let mut removals = Vec::with_capacity(keys.len());
            for (outer, inner) in &keys {
                let composite = format::composite_key(outer, Some(inner))?;
                removals.push((
                    format::encode_key(&composite),
                    self.version(outer, Some(inner)),
                ));
            }
            if removals.is_empty() {
                return Ok(());
            }
            match self.table.remove(removals).await {
                Ok(()) => {
                    for (outer, inner) in &keys {
                        self.forget(outer, Some(inner));
                    }
                    return Ok(());
                }
                Err(error) if error.is_conflict() && conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    let writes: Vec<_> = keys
                        .iter()
                        .map(|(outer, inner)| (outer.clone(), Some(inner.clone())))
                        .collect();
                    self.refresh(&writes).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    fn version(&self, outer: &str, inner: Option<&str>) -> i64 {
        let entry = match inner {
            Some(inner) => self.inner.get(outer).and_then(|map| map.get(inner)),
            None => self.markers.get(outer),
        };
        entry.map_or(NOT_EXISTS, |entry| entry.version)
    }

    fn apply(&mut self, outer: String, inner: Option<String>, entry: Versioned) {
        match inner {
            Some(inner) => {
                self.inner.entry(outer).or_default().insert(inner, entry);
            }
            None => {
                self.markers.insert(outer, entry);
            }
        }
    }

    fn forget(&mut self, outer: &str, inner: Option<&str>) {
        match inner {
            Some(inner) => {
                if let Some(map) = self.inner.get_mut(outer) {
                    map.remove(inner);
                }
            }
            None => {
                self.markers.remove(outer);
            }
        }
    }
}

fn live(map: Option<&BTreeMap<String, Versioned>>) -> BTreeMap<String, Value> {
    map.map(|map| {
        map.iter()
            .filter(|(_, entry)| !entry.value.is_tombstone())
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect()
    })
    .unwrap_or_default()
}

/// A snapshot of a synchronizer table that an update function reads and changes.
///
/// What the function inserts or tombstones is written when it returns `Ok`, conditionally on
/// the versions the snapshot saw.
///
/// ```no_run
/// # use pravaha_client::sync::Synchronizer;
/// # async fn example(mut sync: Synchronizer) -> Result<(), Box<dyn std::error::Error>> {
/// use pravaha_client::sync::Update;
///
/// /// Moves every job of `worker` back to the queue.
/// fn requeue(table: &mut Update, worker: &str) -> Result<usize, pravaha_client::sync::SyncError> {
///     let jobs: Vec<String> = table.inner_map(worker).into_keys().map(str::to_owned).collect();
///     for job in &jobs {
///         table.insert("queue", job, "String", &job)?;
///         table.insert_tombstone(worker, job)?;
///     }
///     Ok(jobs.len())
/// }
///
/// let moved = sync.update(|table| requeue(table, "worker-7")).await?;
/// println!("{moved} jobs back in the queue");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Update {
    inner: HashMap<String, BTreeMap<String, Value>>,
    markers: HashMap<String, Value>,
    /// Keys to write, each once, in the order first written (`None`: an outer key's marker).
    writes: Vec<(String, Option<String>)>,
    tombstoned: Vec<(String, String)>,
}

impl Update {
    fn snapshot(synchronizer: &Synchronizer) -> Self {
        Self {
            inner: synchronizer
                .inner
                .iter()
                .map(|(outer, map)| {
                    let values = map
                        .iter()
                        .map(|(inner, entry)| (inner.clone(), entry.value.clone()))
                        .collect();
                    (outer.clone(), values)
                })
                .collect(),
            markers: synchronizer
                .markers
                .iter()
                .map(|(outer, entry)| (outer.clone(), entry.value.clone()))
                .collect(),
            writes: Vec::new(),
            tombstoned: Vec::new(),
        }
    }

    /// An update of an empty table, for tests of update functions.
    #[cfg(test)]
    pub(crate) fn empty() -> Self {
        Self {
            inner: HashMap::new(),
            markers: HashMap::new(),
            writes: Vec::new(),
            tombstoned: Vec::new(),
        }
    }

    /// Whether the table holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The value of `outer`/`inner`, unless absent or removed.
    pub fn get(&self, outer: &str, inner: &str) -> Option<&Value> {
        self.inner
            .get(outer)?
            .get(inner)
            .filter(|value| !value.is_tombstone())
    }

    /// The value of `outer`/`inner` decoded as `T`.
    pub fn get_as<T: DeserializeOwned>(
        &self,
        outer: &str,
        inner: &str,
    ) -> Result<Option<T>, SyncError> {
        self.get(outer, inner)
            .map(Value::decode)
            .transpose()
            .map_err(SyncError::from)
    }

    /// Whether `outer`/`inner` holds a value (not removed).
    pub fn contains(&self, outer: &str, inner: &str) -> bool {
        self.get(outer, inner).is_some()
    }

    /// Every live inner key of `outer` with its value.
    pub fn inner_map(&self, outer: &str) -> BTreeMap<&str, &Value> {
        self.inner
            .get(outer)
            .map(|map| {
                map.iter()
                    .filter(|(_, value)| !value.is_tombstone())
                    .map(|(key, value)| (key.as_str(), value))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets `outer`/`inner` to `data` (CBOR), labelled `type_id`.
    pub fn insert<T: Serialize>(
        &mut self,
        outer: &str,
        inner: &str,
        type_id: &str,
        data: &T,
    ) -> Result<(), SyncError> {
        let value = Value::encode(type_id, data)?;
        self.put(outer, inner, value);
        Ok(())
    }

    /// Removes `outer`/`inner`: a tombstone now, the key once the update is written.
    pub fn insert_tombstone(&mut self, outer: &str, inner: &str) -> Result<(), SyncError> {
        if !self.contains(outer, inner) {
            return Err(SyncError::Precondition(format!(
                "{outer}/{inner} does not exist"
            )));
        }
        self.put(outer, inner, Value::tombstone());
        self.tombstoned.push((outer.to_owned(), inner.to_owned()));
        Ok(())
    }

    /// Writes `outer`'s marker only: the update conflicts with any concurrent change of `outer`.
    pub fn retain(&mut self, outer: &str) {
        self.touch(outer);
    }

    fn put(&mut self, outer: &str, inner: &str, value: Value) {
        self.inner
            .entry(outer.to_owned())
            .or_default()
            .insert(inner.to_owned(), value);
        self.record(outer, Some(inner));
        self.touch(outer);
    }

    fn touch(&mut self, outer: &str) {
        self.markers
            .entry(outer.to_owned())
            .or_insert_with(Value::marker);
        self.record(outer, None);
    }

    fn record(&mut self, outer: &str, inner: Option<&str>) {
        let key = (outer.to_owned(), inner.map(str::to_owned));
        if !self.writes.contains(&key) {
            self.writes.push(key);
        }
    }

    fn value(&self, outer: &str, inner: Option<&str>) -> &Value {
        let value = match inner {
            Some(inner) => self.inner.get(outer).and_then(|map| map.get(inner)),
            None => self.markers.get(outer),
        };
        // Every recorded write put its value first.
        value.expect("a written key has a value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{ReaderConfig, StaticLocator};
    use std::sync::Arc;

    fn synchronizer() -> Synchronizer {
        let locator = Arc::new(StaticLocator::new(crate::segment::Endpoint::new(
            "localhost",
            1,
        )));
        Synchronizer::new(TableSegment::open(
            locator,
            "sc/t_kvtable/0.#epoch.0",
            ReaderConfig::default(),
        ))
    }

    #[test]
    fn updates_record_each_key_once_with_its_marker() {
        let sync = synchronizer();
        let mut update = Update::snapshot(&sync);
        assert!(update.is_empty());
        update.insert("outer", "a", "u64", &1u64).unwrap();
        update.insert("outer", "b", "u64", &2u64).unwrap();
        update.insert("outer", "a", "u64", &3u64).unwrap();
        assert_eq!(
            update.writes,
            vec![
                ("outer".to_owned(), Some("a".to_owned())),
                ("outer".to_owned(), None),
                ("outer".to_owned(), Some("b".to_owned())),
            ]
        );
        assert_eq!(update.get_as::<u64>("outer", "a").unwrap(), Some(3));
        assert_eq!(update.value("outer", None), &Value::marker());
        update.insert_tombstone("outer", "a").unwrap();
        assert!(!update.contains("outer", "a"));
        assert!(update.insert_tombstone("outer", "a").is_err());
        assert_eq!(update.inner_map("outer").len(), 1);
    }

    #[test]
    fn applied_entries_are_read_back_without_tombstones() {
        let mut sync = synchronizer();
        sync.apply(
            "o".into(),
            Some("k".into()),
            Versioned {
                value: Value::encode("u64", &7u64).unwrap(),
                version: 10,
            },
        );
        sync.apply(
            "o".into(),
            Some("gone".into()),
            Versioned {
                value: Value::tombstone(),
                version: 11,
            },
        );
        sync.apply(
            "o".into(),
            None,
            Versioned {
                value: Value::marker(),
                version: 12,
            },
        );
        assert_eq!(sync.get("o", "k").unwrap().decode::<u64>().unwrap(), 7);
        assert!(sync.get("o", "gone").is_none());
        assert_eq!(sync.inner_map("o").len(), 1);
        assert_eq!(sync.version("o", Some("gone")), 11);
        assert_eq!(sync.version("o", None), 12);
        assert_eq!(sync.version("x", None), NOT_EXISTS);
        sync.forget("o", Some("gone"));
        assert_eq!(sync.version("o", Some("gone")), NOT_EXISTS);
    }
}

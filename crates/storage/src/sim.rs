//! A simulated log device for deterministic fault-injection tests.
//!
//! [`SimDisk`] keeps files in memory, with what was synced kept apart from what was only
//! appended. [`SimDisk::crash`] loses unsynced data the way a real crash can: all of it, a prefix
//! of it (a torn write), or a prefix with a zero-filled tail. [`SimDisk::flip_bit`] corrupts
//! synced data. Clones share one disk, so a test keeps a handle while the log owns another.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::LogDevice;

#[derive(Default)]
struct SimFile {
    synced: Vec<u8>,
    unsynced: Vec<u8>,
    /// Whether the file's existence is durable (it was synced at least once).
    durable: bool,
}

#[derive(Default)]
struct SimState {
    files: BTreeMap<String, SimFile>,
    /// Fails every call while set, as a dead disk would.
    failing: bool,
    /// Counts device calls, so that faults can be placed at the N-th one.
    calls: u64,
    fail_after_calls: Option<u64>,
}

/// A shared, in-memory disk; see the module documentation.
#[derive(Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

/// What a crash does to the unsynced tail of one file, chosen by the caller's randomness.
#[derive(Debug, Clone, Copy)]
pub enum TailFate {
    /// Nothing unsynced survives.
    Lost,
    /// The first `kept` unsynced bytes survive.
    Prefix { kept: usize },
    /// The first `kept` unsynced bytes survive and the next `zeros` read as zeros.
    PrefixThenZeros { kept: usize, zeros: usize },
    /// Everything written survives (the cache happened to be flushed).
    Kept,
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("sim disk lock poisoned")
    }

    /// Simulates a power loss: `fate` decides, per file with unsynced data (given its name and
    /// unsynced length), what survives. Files never synced may disappear.
    pub fn crash(&self, mut fate: impl FnMut(&str, usize) -> TailFate) {
        let mut state = self.lock();
        state.failing = false;
        state.fail_after_calls = None;
        let mut vanished = Vec::new();
        for (name, file) in &mut state.files {
            let unsynced = std::mem::take(&mut file.unsynced);
            if unsynced.is_empty() {
                continue;
            }
            match fate(name, unsynced.len()) {
                TailFate::Lost => {}
                TailFate::Prefix { kept } => {
                    file.synced
                        .extend_from_slice(&unsynced[..kept.min(unsynced.len())]);
                }
                TailFate::PrefixThenZeros { kept, zeros } => {
                    let kept = kept.min(unsynced.len());
                    let zeros = zeros.min(unsynced.len() - kept);
                    file.synced.extend_from_slice(&unsynced[..kept]);
                    file.synced.resize(file.synced.len() + zeros, 0);
                }
                TailFate::Kept => file.synced.extend_from_slice(&unsynced),
            }
            if !file.durable && file.synced.is_empty() {
                vanished.push(name.clone());
            }
        }
        for name in vanished {
            state.files.remove(&name);
        }
    }

    /// Flips one bit of synced data: bit `bit` of the concatenation of all synced files, in
    /// name order. Returns the file and byte offset hit, or `None` when nothing is synced.
    pub fn flip_bit(&self, bit: u64) -> Option<(String, u64)> {
        let mut state = self.lock();
        let total_bits: u64 = state
            .files
            .values()
            .map(|f| f.synced.len() as u64 * 8)
            .sum();
        if total_bits == 0 {
            return None;
        }
        let mut bit = bit % total_bits;
        for (name, file) in &mut state.files {
            let bits = file.synced.len() as u64 * 8;
            if bit < bits {
                let byte = usize::try_from(bit / 8).expect("sim files fit in memory");
                file.synced[byte] ^= 1 << (bit % 8);
                return Some((name.clone(), bit / 8));
            }
            bit -= bits;
        }
        None
    }

    /// Makes every call fail from the `count`-th call on (counting from now), until the next crash.
    pub fn fail_after(&self, count: u64) {
        let mut state = self.lock();
        state.fail_after_calls = Some(state.calls + count);
    }

    /// Total synced bytes on the disk.
    pub fn synced_bytes(&self) -> u64 {
        self.lock()
            .files
            .values()
            .map(|f| f.synced.len() as u64)
            .sum()
    }

    /// Names of the files present.
    pub fn file_names(&self) -> Vec<String> {
        self.lock().files.keys().cloned().collect()
    }

    fn check(&self) -> io::Result<MutexGuard<'_, SimState>> {
        let mut state = self.lock();
        state.calls += 1;
        if state
            .fail_after_calls
            .is_some_and(|limit| state.calls > limit)
        {
            state.failing = true;
        }
        if state.failing {
            return Err(io::Error::other("simulated disk failure"));
        }
        Ok(state)
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file {name}"))
}

impl LogDevice for SimDisk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.check()?.files.keys().cloned().collect())
    }

    fn read_all(&mut self, name: &str) -> io::Result<Vec<u8>> {
        let state = self.check()?;
        let file = state.files.get(name).ok_or_else(|| not_found(name))?;
        let mut content = file.synced.clone();
        content.extend_from_slice(&file.unsynced);
        Ok(content)
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut state = self.check()?;
        let file = state.files.entry(name.to_owned()).or_default();
        file.unsynced.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let mut state = self.check()?;
        let file = state.files.get_mut(name).ok_or_else(|| not_found(name))?;
        let unsynced = std::mem::take(&mut file.unsynced);
        file.synced.extend_from_slice(&unsynced);
        file.durable = true;
        Ok(())
    }

    fn truncate(&mut self, name: &str, length: u64) -> io::Result<()> {
        let mut state = self.check()?;
        let file = state.files.get_mut(name).ok_or_else(|| not_found(name))?;
        let mut content = std::mem::take(&mut file.synced);
        content.extend_from_slice(&std::mem::take(&mut file.unsynced));
        content.truncate(usize::try_from(length).unwrap_or(usize::MAX));
        file.synced = content;
        file.durable = true;
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut state = self.check()?;
        state
            .files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    fn is_blocking(&self) -> bool {
        false
    }
}

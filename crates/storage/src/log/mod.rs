//! The durable log (Tier-1): numbered records in checksummed frames on a [`LogDevice`].
//!
//! Records carry consecutive sequence numbers. Each write is one frame followed by one sync, so
//! at most one frame is ever unsynced: after a crash only the last frame of the last file can be
//! torn. Recovery ([`DurableLog::open`]) returns every record in order, cuts a torn tail, and
//! reports corruption anywhere else with the file and offset. The layout is documented in
//! docs/formats/durable-log.md.

mod device;
mod frame;
mod recovery;
mod writer;

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use bytes::Bytes;

pub use device::{FileLogDevice, LogDevice};
pub use frame::{
    decode_frame, encode_frame, FileHeader, FrameFault, FILE_FORMAT_VERSION,
    FILE_FORMAT_VERSION_MIN, FILE_HEADER_LEN, FRAME_FORMAT_VERSION, FRAME_HEADER_LEN,
    MAX_FRAME_PAYLOAD,
};
pub use writer::{LogAppend, LogCompletion, LogWriter};

/// Tunables of the durable log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A new file is started once the current one reaches this size.
    pub max_file_bytes: u64,
    /// Group commit puts at most this many bytes in one frame (a larger single record gets a
    /// frame of its own).
    pub max_batch_bytes: usize,
    /// How long the writer may wait for more records when a batch starts much smaller than the
    /// previous one (closed-loop writers arriving just after a sync). Zero never waits. Applies
    /// to blocking (real) devices only.
    pub max_batch_delay: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 64 << 20,
            max_batch_bytes: 4 << 20,
            max_batch_delay: Duration::from_micros(500),
        }
    }
}

/// A failure of the durable log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log I/O failed: {0}")]
    Io(#[from] io::Error),
    #[error("log file {file} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error("the log writer has stopped")]
    Closed,
}

/// A record read back by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub sequence: u64,
    pub payload: Bytes,
}

#[derive(Debug, Clone)]
struct LogFile {
    first_sequence: u64,
    name: String,
    length: u64,
}

/// Running totals of a log's writes, shared with whoever watches it (metrics, benchmarks).
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Frames written, each followed by one sync.
    pub frames: std::sync::atomic::AtomicU64,
    pub records: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

/// The log's files and the position of the next record. Single-threaded; see [`LogWriter`] for
/// the asynchronous, group-committing front end.
pub struct DurableLog {
    device: Box<dyn LogDevice>,
    config: LogConfig,
    files: VecDeque<LogFile>,
    next_sequence: u64,
    counters: std::sync::Arc<LogCounters>,
}

/// File names are the first sequence number of the file, zero-padded so they sort.
fn file_name(first_sequence: u64) -> String {
    format!("{first_sequence:020}.log")
}

fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

impl DurableLog {
    /// Recovers the log on `device`: returns it ready to append after the last valid record, and
    /// every record still in the log, in order.
    pub fn open(
        mut device: Box<dyn LogDevice>,
        config: LogConfig,
    ) -> Result<(Self, Vec<LogRecord>), LogError> {
        let recovered = recovery::recover(device.as_mut())?;
        let log = Self {
            device,
            config,
            files: recovered.files,
            next_sequence: recovered.next_sequence,
            counters: std::sync::Arc::default(),
        };
        Ok((log, recovered.records))
    }

    /// The sequence number the next record will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Bytes in all log files.
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.length).sum()
    }

    /// Number of log files.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Writes `records` as one frame and syncs it; they get the next sequence numbers. With
    /// `start_new_file`, or when the current file is full, the frame opens a new file.
    pub fn write(&mut self, records: &[Bytes], start_new_file: bool) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let file_full = self
            .files
            .back()
            .is_none_or(|file| file.length >= self.config.max_file_bytes);
        let mut buffer = Vec::with_capacity(
            FILE_HEADER_LEN + FRAME_HEADER_LEN + records.iter().map(|r| r.len() + 4).sum::<usize>(),
        );
        if start_new_file || file_full {
            FileHeader::new(self.next_sequence).encode(&mut buffer);
            self.files.push_back(LogFile {
                first_sequence: self.next_sequence,
                name: file_name(self.next_sequence),
                length: 0,
            });
        }
        encode_frame(&mut buffer, self.next_sequence, records);
        let file = self.files.back_mut().expect("a file was opened above");
        self.device.append(&file.name, &buffer)?;
        self.device.sync(&file.name)?;
        file.length += buffer.len() as u64;
        self.next_sequence += records.len() as u64;
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.counters.frames.fetch_add(1, relaxed);
        self.counters
            .records
            .fetch_add(records.len() as u64, relaxed);
        self.counters.bytes.fetch_add(buffer.len() as u64, relaxed);
        Ok(())
    }

    /// Removes every file whose records all precede `sequence`'s file: the file holding
    /// `sequence` (or starting at it) becomes the oldest. Returns the number of files removed.
    pub fn truncate_before(&mut self, sequence: u64) -> Result<usize, LogError> {
        let mut removed = 0;
        while self.files.len() > 1 && self.files[1].first_sequence <= sequence {
            let oldest = self.files.front().expect("checked length").name.clone();
            self.device.discard(&oldest)?;
            self.files.pop_front();
            removed += 1;
        }
        Ok(removed)
    }

    /// The log's running totals.
    pub fn counters(&self) -> std::sync::Arc<LogCounters> {
        self.counters.clone()
    }

    /// Whether device calls block (and must run off the async runtime).
    pub fn is_blocking(&self) -> bool {
        self.device.is_blocking()
    }
}

#[cfg(test)]
mod tests;

//! Where log files live: the [`LogDevice`] trait and its local-file implementation.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing::warn;

/// The file operations the durable log needs. Calls may block (disk I/O); the log runs them off
/// the async runtime when [`LogDevice::is_blocking`] says so.
///
/// Contract: `append` may leave data in volatile buffers; only `sync` makes what was appended to a
/// file durable, including the file's existence. `truncate` and `remove` are durable on return.
pub trait LogDevice: Send + 'static {
    /// Names of the files present, in no particular order.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read_all(&mut self, name: &str) -> io::Result<Vec<u8>>;
    /// Appends to a file, creating it when absent.
    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended to `name` durable.
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Cuts a file to `length` bytes, durably.
    fn truncate(&mut self, name: &str, length: u64) -> io::Result<()>;
    /// Removes a file, durably.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Removes a file the log no longer needs (log truncation), not necessarily durably: after
    /// a crash it may still be there, as if this was never called. Files discarded one after
    /// the other disappear in that order, so a crash never leaves a gap among the log files.
    /// A discarded name may be used again at once.
    fn discard(&mut self, name: &str) -> io::Result<()> {
        self.remove(name)
    }
    /// Whether calls block the calling thread on real I/O.
    fn is_blocking(&self) -> bool;
}

/// Log files in one local directory. Appends go through an open handle per file; `sync` is
/// `fdatasync`, plus a sync of the directory the first time a new file is synced.
///
/// With [`FileLogDevice::with_preallocation`], new files are preallocated: a background thread
/// writes a zero-filled spare file of that size (and syncs it) once the current file holds an
/// eighth of it, and the next new file is that spare, renamed. Appending into space that is already
/// allocated and written leaves the file's size and extents unchanged, so `fdatasync` has only
/// the data to write, not a journal commit too. When no spare is ready, a file starts empty.
///
/// A removed log file is kept for reuse (up to [`FileLogDevice::with_recycling`] files, one by
/// default): it is renamed, not unlinked, and zero-filled in place when it becomes the next
/// spare. Its pages are usually still in the page cache and its blocks still allocated, so the
/// zeros overwrite memory the kernel already holds instead of new pages and new extents:
/// measured, allocating fresh page-cache pages for the zeros of a new file cost as much CPU as
/// the rest of the log's writes (`pravaha bench engine`). Keeping every file a truncation
/// drops, not only one, also spares the file system freeing and reallocating their blocks: on a
/// file system mounted with `discard`, each unlinked file was trimmed on the device while the
/// log wrote (measured: as many bytes trimmed as written), and engine throughput rose by 3 to
/// 9% without it.
pub struct FileLogDevice {
    directory: PathBuf,
    open_files: HashMap<String, OpenFile>,
    /// Size of a preallocated file; 0 preallocates nothing.
    preallocate_bytes: u64,
    spare: Option<SparePreparation>,
    /// Removed log files kept for reuse, under hidden names (`recycled-<n>.spare`); the last
    /// one becomes the next spare.
    recycled: Vec<PathBuf>,
    /// The number in the next recycled file's name.
    next_recycled: u64,
    /// At most this many removed log files are kept for reuse; more are unlinked.
    max_recycled: usize,
    /// Unlinks discarded files in the background (started at the first discard).
    remover: Option<Remover>,
}

/// A thread unlinking discarded log files, in the order received.
struct Remover {
    paths: std::sync::mpsc::Sender<PathBuf>,
    thread: JoinHandle<()>,
}

struct OpenFile {
    file: File,
    directory_synced: bool,
    /// Where the next append goes: the end of the data (a preallocated file is longer).
    position: u64,
}

/// A spare file being written (or written) in the background.
struct SparePreparation {
    thread: JoinHandle<io::Result<()>>,
    cancel: Arc<AtomicBool>,
}

/// The spare's name: not a log file name, and hidden from [`LogDevice::list`] (as is every name
/// ending in [`SPARE_SUFFIX`]).
const SPARE_NAME: &str = "next-log-file.spare";
const SPARE_SUFFIX: &str = ".spare";
/// Removed log files kept for reuse are named `recycled-<n>.spare`.
const RECYCLED_PREFIX: &str = "recycled-";
/// A discarded log file is renamed with this suffix before it is unlinked in the background:
/// the rename is quick and in order with the log's other renames, while the unlink of a large
/// file (freeing its blocks and cached pages) took about 5 ms, measured, during which the log
/// thread wrote nothing. Such names are hidden from `list`; leftovers of a crash are removed
/// when the device is opened.
const DISCARDED_SUFFIX: &str = ".discarded";
/// Zeros are handed to the disk this much at a time, so the log's syncs never queue behind
/// more than one piece.
const SPARE_PIECE_BYTES: usize = 256 << 10;

impl FileLogDevice {
    /// Uses `directory`, creating it (and its parents) when absent.
    pub fn open(directory: impl AsRef<Path>) -> io::Result<Self> {
        let directory = directory.as_ref().to_path_buf();
        std::fs::create_dir_all(&directory)?;
        for entry in std::fs::read_dir(&directory)? {
            let entry = entry?;
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(DISCARDED_SUFFIX)
            {
                match std::fs::remove_file(entry.path()) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                    _ => {}
                }
            }
        }
        Ok(Self {
            directory,
            open_files: HashMap::new(),
            preallocate_bytes: 0,
            spare: None,
            recycled: Vec::new(),
            next_recycled: 0,
            max_recycled: 1,
            remover: None,
        })
    }

    /// Preallocates new files to `bytes` (see the type's documentation). Such files need log
    /// file format version 2 or later, which recovery reads with their zero-filled ends.
    #[must_use]
    pub fn with_preallocation(mut self, bytes: u64) -> Self {
        self.preallocate_bytes = bytes;
        // Files recycled by an earlier run are reused, and so is a spare it left, which may be
        // partial or an old log file: either way it is zero-filled again when a spare is due.
        if let Err(error) = self.adopt_recycled() {
            warn!(directory = %self.directory.display(), %error, "failed to look for recycled log files");
        }
        self
    }

    /// Keeps up to `files` removed log files for reuse (one by default), at a cost in disk
    /// space of up to that many preallocated files besides the log and its spare. A log
    /// truncation drops all the files before a checkpoint at once; keeping as many as it
    /// usually drops means no file is freed and allocated again.
    #[must_use]
    pub fn with_recycling(mut self, files: usize) -> Self {
        self.max_recycled = files;
        self.drop_excess_recycled();
        self
    }

    /// Unlinks the recycled files beyond the bound (oldest first), as after a reopening with a
    /// lower bound.
    fn drop_excess_recycled(&mut self) {
        while self.recycled.len() > self.max_recycled {
            let path = self.recycled.remove(0);
            if let Err(error) = std::fs::remove_file(&path) {
                warn!(file = %path.display(), %error, "failed to remove a recycled log file");
            }
        }
    }

    fn adopt_recycled(&mut self) -> io::Result<()> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.directory)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let number = name
                .strip_prefix(RECYCLED_PREFIX)
                .and_then(|rest| rest.strip_suffix(SPARE_SUFFIX))
                .and_then(|number| number.parse::<u64>().ok());
            if let Some(number) = number {
                found.push((number, self.directory.join(&name)));
            }
        }
        found.sort();
        self.next_recycled = found.last().map_or(0, |(number, _)| number + 1);
        self.recycled = found.into_iter().map(|(_, path)| path).collect();
        let spare = self.directory.join(SPARE_NAME);
        if spare.is_file() {
            let kept = self.recycled_name();
            std::fs::rename(&spare, &kept)?;
            self.recycled.push(kept);
        }
        Ok(())
    }

    /// A new name for a recycled file.
    fn recycled_name(&mut self) -> PathBuf {
        let number = self.next_recycled;
        self.next_recycled += 1;
        self.directory
            .join(format!("{RECYCLED_PREFIX}{number:06}{SPARE_SUFFIX}"))
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn sync_directory(&self) -> io::Result<()> {
        File::open(&self.directory)?.sync_all()
    }

    fn handle(&mut self, name: &str) -> io::Result<&mut OpenFile> {
        if !self.open_files.contains_key(name) {
            let path = self.directory.join(name);
            let (file, position) = match OpenOptions::new().write(true).open(&path) {
                Ok(file) => {
                    let length = file.metadata()?.len();
                    (file, length)
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => (self.create(&path)?, 0),
                Err(error) => return Err(error),
            };
            let open = OpenFile {
                file,
                directory_synced: false,
                position,
            };
            self.open_files.insert(name.to_owned(), open);
        }
        Ok(self.open_files.get_mut(name).expect("inserted above"))
    }

    /// A new, empty log file at `path`: the spare, renamed, when one is ready.
    fn create(&mut self, path: &Path) -> io::Result<File> {
        if self.take_ready_spare() {
            std::fs::rename(self.directory.join(SPARE_NAME), path)?;
            return OpenOptions::new().write(true).open(path);
        }
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    }

    /// Queues `path` for the background unlink, starting the remover thread if needed.
    fn unlink_later(&mut self, path: PathBuf) -> io::Result<()> {
        if self.remover.is_none() {
            let (paths, queued) = std::sync::mpsc::channel::<PathBuf>();
            let directory = self.directory.clone();
            let thread = std::thread::Builder::new()
                .name("log-remove".into())
                .spawn(move || remove_discarded(&directory, &queued))?;
            self.remover = Some(Remover { paths, thread });
        }
        let remover = self.remover.as_ref().expect("started above");
        match remover.paths.send(path) {
            Ok(()) => Ok(()),
            // The thread stopped (a failed unlink): unlink here instead.
            Err(returned) => std::fs::remove_file(returned.0),
        }
    }

    /// Stops appending to log file `name` and, unless enough files are kept already, keeps it
    /// for reuse as a future spare (see the type's documentation); whether it did. Renaming is
    /// as atomic as unlinking: after a crash the file is either still a log file (as when an
    /// unlink is lost) or a recycled file, which is never read as log.
    fn recycle(&mut self, name: &str) -> io::Result<bool> {
        let open = self.open_files.remove(name);
        if self.preallocate_bytes == 0 || self.recycled.len() >= self.max_recycled {
            return Ok(false);
        }
        let kept = self.recycled_name();
        std::fs::rename(self.directory.join(name), &kept)?;
        // A file that outgrew its preallocation is cut back (rarely: a batch crossed the end),
        // so that recycled files take at most a preallocation each.
        let file = match open {
            Some(open) => open.file,
            None => OpenOptions::new().write(true).open(&kept)?,
        };
        if file.metadata()?.len() > self.preallocate_bytes {
            file.set_len(self.preallocate_bytes)?;
        }
        self.recycled.push(kept);
        Ok(true)
    }

    fn take_ready_spare(&mut self) -> bool {
        if !self
            .spare
            .as_ref()
            .is_some_and(|spare| spare.thread.is_finished())
        {
            return false;
        }
        let spare = self.spare.take().expect("checked above");
        match spare.thread.join() {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                warn!(directory = %self.directory.display(), %error, "failed to preallocate a log file");
                false
            }
            Err(_) => false,
        }
    }

    /// Starts writing a spare once the file being appended to holds an eighth of a file: early
    /// enough to be ready when the next file starts, late enough that a log which stays small
    /// (tests, idle containers) never writes one.
    fn prepare_spare_if_due(&mut self, position: u64) {
        if self.preallocate_bytes == 0 || self.spare.is_some() {
            return;
        }
        if position < self.preallocate_bytes / 8 {
            return;
        }
        let path = self.directory.join(SPARE_NAME);
        // The thread zero-fills the most recently recycled file in place (or creates a file).
        if let Some(recycled) = self.recycled.pop() {
            if let Err(error) = std::fs::rename(&recycled, &path) {
                warn!(file = %recycled.display(), %error, "failed to reuse a recycled log file");
            }
        }
        let bytes = self.preallocate_bytes;
        let cancel = Arc::new(AtomicBool::new(false));
        let cancelled = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("log-preallocate".into())
            .spawn(move || write_spare(&path, bytes, &cancelled));
        match thread {
            Ok(thread) => self.spare = Some(SparePreparation { thread, cancel }),
            Err(error) => warn!(%error, "failed to start preallocating a log file"),
        }
    }
}

/// Writes `bytes` zeros to `path` (a recycled log file, overwritten in place, or a new file),
/// piece by piece (each written out before the next), and syncs it with its metadata:
/// afterwards overwriting it changes neither its size nor its extents.
fn write_spare(path: &Path, bytes: u64, cancel: &AtomicBool) -> io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)?;
    if file.metadata()?.len() > bytes {
        file.set_len(bytes)?;
    }
    let zeros = vec![0_u8; SPARE_PIECE_BYTES];
    let mut written = 0;
    while written < bytes {
        if cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let length =
            usize::try_from(bytes - written).map_or(zeros.len(), |rest| rest.min(zeros.len()));
        file.write_all_at(&zeros[..length], written)?;
        crate::sys::write_out(&file, written, length as u64)?;
        written += length as u64;
    }
    file.sync_all()
}

/// The remover thread: unlinks each path in turn and syncs the directory once the queue is
/// empty, so that removals do not stay pending in the file system's journal for long.
fn remove_discarded(directory: &Path, queued: &std::sync::mpsc::Receiver<PathBuf>) {
    while let Ok(path) = queued.recv() {
        let mut next = Some(path);
        while let Some(path) = next.take() {
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    // Left for the next opening of the device, which removes discarded files.
                    warn!(file = %path.display(), %error, "failed to remove a discarded log file");
                }
                _ => {}
            }
            next = queued.try_recv().ok();
        }
        if let Err(error) = File::open(directory).and_then(|d| d.sync_all()) {
            warn!(directory = %directory.display(), %error, "failed to sync the log directory");
        }
    }
}

impl Drop for FileLogDevice {
    fn drop(&mut self) {
        if let Some(remover) = self.remover.take() {
            drop(remover.paths);
            let _ = remover.thread.join();
        }
        if let Some(spare) = self.spare.take() {
            spare.cancel.store(true, Ordering::Relaxed);
            let _ = spare.thread.join();
        }
    }
}

impl LogDevice for FileLogDevice {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.directory)? {
            let entry = entry?;
            let name = entry.file_name();
            let name_text = name.to_string_lossy();
            let hidden = name_text.ends_with(SPARE_SUFFIX) || name_text.ends_with(DISCARDED_SUFFIX);
            if entry.file_type()?.is_file() && !hidden {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn read_all(&mut self, name: &str) -> io::Result<Vec<u8>> {
        let mut content = Vec::new();
        File::open(self.directory.join(name))?.read_to_end(&mut content)?;
        Ok(content)
    }

    fn append(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let open = self.handle(name)?;
        open.file.write_all_at(data, open.position)?;
        open.position += data.len() as u64;
        let position = open.position;
        self.prepare_spare_if_due(position);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let open = self.handle(name)?;
        open.file.sync_data()?;
        if !open.directory_synced {
            open.directory_synced = true;
            self.sync_directory()?;
        }
        Ok(())
    }

    fn truncate(&mut self, name: &str, length: u64) -> io::Result<()> {
        self.open_files.remove(name);
        let file = OpenOptions::new()
            .write(true)
            .open(self.directory.join(name))?;
        file.set_len(length)?;
        file.sync_all()
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let path = self.directory.join(name);
        if !self.recycle(name)? {
            std::fs::remove_file(&path)?;
        }
        self.sync_directory()
    }

    fn discard(&mut self, name: &str) -> io::Result<()> {
        // Unlike `remove`, no directory sync: a recycled file's rename is made durable with
        // the next new file's first sync, and the remover thread syncs after its unlinks.
        if self.recycle(name)? {
            return Ok(());
        }
        let path = self.directory.join(name);
        let mut discarded = path.clone().into_os_string();
        discarded.push(DISCARDED_SUFFIX);
        let discarded = PathBuf::from(discarded);
        std::fs::rename(&path, &discarded)?;
        self.unlink_later(discarded)
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

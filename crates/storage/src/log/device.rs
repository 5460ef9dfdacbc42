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
/// A removed log file becomes the next spare when none is being prepared: it is renamed, not
/// unlinked, and later zero-filled in place. Its pages are usually still in the page cache and
/// its blocks still allocated, so the zeros overwrite memory the kernel already holds instead
/// of new pages and new extents: measured, allocating fresh page-cache pages for the zeros of
/// a new file cost as much CPU as the rest of the log's writes (`pravaha bench engine`).
pub struct FileLogDevice {
    directory: PathBuf,
    open_files: HashMap<String, OpenFile>,
    /// Size of a preallocated file; 0 preallocates nothing.
    preallocate_bytes: u64,
    spare: Option<SparePreparation>,
    /// A removed log file waits under the spare's name to be zero-filled when a spare is due.
    recycled: bool,
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

/// The spare's name: not a log file name, and hidden from [`LogDevice::list`].
const SPARE_NAME: &str = "next-log-file.spare";
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
            recycled: false,
            remover: None,
        })
    }

    /// Preallocates new files to `bytes` (see the type's documentation). Such files need log
    /// file format version 2 or later, which recovery reads with their zero-filled ends.
    #[must_use]
    pub fn with_preallocation(mut self, bytes: u64) -> Self {
        self.preallocate_bytes = bytes;
        // A spare left by an earlier run may be partial or an old log file: either way it is
        // zero-filled again when a spare is due, like a recycled file.
        self.recycled = self.directory.join(SPARE_NAME).is_file();
        self
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

    /// Stops appending to log file `name` and, when no spare exists or is being written,
    /// keeps it as the next spare (see the type's documentation); whether it did. Renaming is
    /// as atomic as unlinking: after a crash the file is either still a log file (as when an
    /// unlink is lost) or a spare, which is never read as log.
    fn recycle(&mut self, name: &str) -> io::Result<bool> {
        self.open_files.remove(name);
        if self.preallocate_bytes == 0 || self.spare.is_some() || self.recycled {
            return Ok(false);
        }
        std::fs::rename(self.directory.join(name), self.directory.join(SPARE_NAME))?;
        self.recycled = true;
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
        // The thread zero-fills the recycled file in place (or creates a new one).
        self.recycled = false;
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
            let hidden = name == SPARE_NAME || name.to_string_lossy().ends_with(DISCARDED_SUFFIX);
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

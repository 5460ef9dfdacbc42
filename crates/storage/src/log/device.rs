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
/// Zeros are handed to the disk this much at a time, so the log's syncs never queue behind
/// more than one piece.
const SPARE_PIECE_BYTES: usize = 256 << 10;

impl FileLogDevice {
    /// Uses `directory`, creating it (and its parents) when absent.
    pub fn open(directory: impl AsRef<Path>) -> io::Result<Self> {
        let directory = directory.as_ref().to_path_buf();
        std::fs::create_dir_all(&directory)?;
        Ok(Self {
            directory,
            open_files: HashMap::new(),
            preallocate_bytes: 0,
            spare: None,
            recycled: false,
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

impl Drop for FileLogDevice {
    fn drop(&mut self) {
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
            if entry.file_type()?.is_file() && entry.file_name() != SPARE_NAME {
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
        self.open_files.remove(name);
        let path = self.directory.join(name);
        if self.preallocate_bytes > 0 && self.spare.is_none() && !self.recycled {
            // Kept as the next spare (see the type's documentation). Renaming is as atomic as
            // unlinking: after a crash the file is either still a log file (as when an unlink
            // is lost) or a spare, which is never read as log.
            std::fs::rename(&path, self.directory.join(SPARE_NAME))?;
            self.recycled = true;
        } else {
            std::fs::remove_file(&path)?;
        }
        self.sync_directory()
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

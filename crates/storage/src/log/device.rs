//! Where log files live: the [`LogDevice`] trait and its local-file implementation.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

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
pub struct FileLogDevice {
    directory: PathBuf,
    open_files: HashMap<String, OpenFile>,
}

struct OpenFile {
    file: File,
    directory_synced: bool,
}

impl FileLogDevice {
    /// Uses `directory`, creating it (and its parents) when absent.
    pub fn open(directory: impl AsRef<Path>) -> io::Result<Self> {
        let directory = directory.as_ref().to_path_buf();
        std::fs::create_dir_all(&directory)?;
        Ok(Self {
            directory,
            open_files: HashMap::new(),
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn sync_directory(&self) -> io::Result<()> {
        File::open(&self.directory)?.sync_all()
    }

    fn handle(&mut self, name: &str) -> io::Result<&mut OpenFile> {
        if !self.open_files.contains_key(name) {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.directory.join(name))?;
            let open = OpenFile {
                file,
                directory_synced: false,
            };
            self.open_files.insert(name.to_owned(), open);
        }
        Ok(self.open_files.get_mut(name).expect("inserted above"))
    }
}

impl LogDevice for FileLogDevice {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.directory)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
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
        self.handle(name)?.file.write_all(data)
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
        std::fs::remove_file(self.directory.join(name))?;
        self.sync_directory()
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

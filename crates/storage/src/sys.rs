//! Small operating-system helpers shared by the log and the chunk store.

use std::fs::File;
use std::io;

/// Starts writeback of `[offset, offset + length)` of `file` and waits for it: no metadata and
/// no cache flush, so this paces writes (bounds what is queued at the disk) but makes nothing
/// durable. Elsewhere than on Linux it does nothing.
#[cfg(target_os = "linux")]
pub(crate) fn write_out(file: &File, offset: u64, length: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
        return Ok(());
    };
    // SAFETY: a system call on a file descriptor that `file` keeps open; no memory is passed.
    let result = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, length, flags) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn write_out(_file: &File, _offset: u64, _length: u64) -> io::Result<()> {
    Ok(())
}

/// Drops `[offset, offset + length)` of `file` from the page cache: clean pages only, so call
/// it after [`write_out`]. Advice only: a failure changes nothing but memory use, so it is not
/// reported. Elsewhere than on Linux it does nothing.
#[cfg(target_os = "linux")]
pub(crate) fn drop_cached(file: &File, offset: u64, length: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
        return;
    };
    // SAFETY: advice on a file descriptor that `file` keeps open; no memory is passed.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, length, libc::POSIX_FADV_DONTNEED) };
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn drop_cached(_file: &File, _offset: u64, _length: u64) {}

//! Temporary files whose writer is gone. A writer holds an `flock` on its
//! temporary file for as long as it writes it, and the lock dies with the
//! process, so a file whose lock can be taken was left by a process that
//! was killed (SIGKILL, a full disk, a crash) and can be removed, while a
//! concurrent writer's file is never touched. Output files (`.ossify-*`)
//! and the cache's partial downloads (`.partial-*`) are swept this way.

use std::fs::{self, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Removes `path` if its lock can be taken, while holding it, so a writer
/// that locks it next finds it unlinked; returns whether it was removed.
pub fn remove_if_abandoned(path: &Path) -> io::Result<bool> {
    // Neither through a link nor waiting on a FIFO someone put there.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(true),
        },
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Removes the abandoned regular files in `dir` whose names start with
/// `prefix`; returns how many. A missing `dir` holds none.
pub fn remove_abandoned(dir: &Path, prefix: &str) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(prefix.as_bytes())
            && entry.file_type()?.is_file()
            && remove_if_abandoned(&entry.path())?
        {
            removed += 1;
        }
    }
    Ok(removed)
}

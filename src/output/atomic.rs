//! Output files that appear whole or not at all.
//!
//! Each output is written to a temporary file beside its final path and
//! renamed into place once complete, so a failed or interrupted build never
//! leaves a half-written image where a CI job would pick it up. Ctrl-C is
//! caught and removes the temporary files still being written.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

/// Temporary files being written, removed if the build is interrupted.
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INTERRUPT_HANDLER: Once = Once::new();

/// Exit status of a process ended by SIGINT, as shells report it.
const INTERRUPTED: i32 = 130;

/// An output being written; [`AtomicFile::commit`] puts it in place.
pub struct AtomicFile {
    target: PathBuf,
    /// Taken by `commit`; dropping a file still holding it removes it.
    temp: Option<NamedTempFile>,
    hasher: Sha256,
    size: u64,
}

/// What a finished output file is: where, how large, its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

impl AtomicFile {
    /// Starts writing `target`, in a temporary file in the same directory
    /// (so the final rename cannot cross filesystems).
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        INTERRUPT_HANDLER.call_once(|| {
            // Without a handler, Ctrl-C would end the process before any
            // destructor could remove the temporary files.
            let _ = ctrlc::set_handler(|| {
                if let Ok(paths) = IN_PROGRESS.lock() {
                    for path in paths.iter() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                std::process::exit(INTERRUPTED);
            });
        });
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".ossify-")
            .tempfile_in(dir)?;
        IN_PROGRESS
            .lock()
            .expect("no thread panics while holding the lock")
            .push(temp.path().to_owned());
        Ok(AtomicFile {
            target: target.to_owned(),
            temp: Some(temp),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Moves the finished file to its final path, world-readable like a
    /// file the user created (temporary files start out private).
    pub fn commit(mut self) -> io::Result<Finished> {
        let temp = self.temp.take().expect("only commit takes the file");
        let temp_path = temp.path().to_owned();
        // A file that ends in a hole is only as long as its last write.
        temp.as_file().set_len(self.size)?;
        temp.as_file().sync_all()?;
        set_default_permissions(temp.as_file())?;
        let persisted = temp.persist(&self.target).map(drop).map_err(|e| e.error);
        forget(&temp_path);
        persisted?;
        Ok(Finished {
            path: std::mem::take(&mut self.target),
            size: self.size,
            sha256: hex(&std::mem::take(&mut self.hasher).finalize()),
        })
    }

    fn temp(&mut self) -> &mut NamedTempFile {
        self.temp.as_mut().expect("only commit takes the file")
    }
}

/// Writes at least this long and all zero become holes in the output.
const HOLE_MIN: usize = 64 * 1024;

impl Write for AtomicFile {
    /// Long runs of zeros (the free space of a disk image) are skipped
    /// rather than written, so they cost neither time nor disk space.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = if buf.len() >= HOLE_MIN && crate::write::is_zero(buf) {
            self.temp()
                .as_file_mut()
                .seek(SeekFrom::Current(buf.len() as i64))?;
            buf.len()
        } else {
            self.temp().write(buf)?
        };
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            forget(temp.path());
        }
    }
}

fn forget(path: &Path) {
    if let Ok(mut paths) = IN_PROGRESS.lock() {
        paths.retain(|p| p != path);
    }
}

/// 0644 less the umask, as `File::create` would give.
fn set_default_permissions(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let umask = current_umask();
    file.set_permissions(std::fs::Permissions::from_mode(0o644 & !umask))
}

/// The process umask, read without changing it (Linux's `/proc` status).
fn current_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A buffered writer over an [`AtomicFile`], the usual way to fill one.
pub fn buffered(file: AtomicFile) -> BufWriter<AtomicFile> {
    BufWriter::with_capacity(256 * 1024, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_nothing_remains_after_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.img");
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"half").unwrap();
        assert!(!target.exists());
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"whole").unwrap();
        let finished = file.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert_eq!(finished.size, 5);
        // `printf whole | sha256sum`
        assert_eq!(
            finished.sha256,
            "5d5766cf2d78701614200418ee1450690d9af12c84d52545e4802f001ad53099"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

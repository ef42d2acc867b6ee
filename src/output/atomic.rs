//! Output files that appear whole and together, or not at all.
//!
//! Each output is written to a temporary file beside its final path, named
//! `.ossify-…` and locked for as long as it is open. Once every output of a
//! build is complete, [`commit`] renames them all into place in one step,
//! the manifest last; until then the destination is as it was.
//!
//! The temporary files of this process are listed, so that a process
//! ending on a signal can remove them ([`abandon_in_progress`]); when and
//! how it ends is the program's policy, not this module's. A temporary
//! file whose lock nobody holds was left by a process that is gone, and
//! [`remove_stale`] deletes it.

use std::fs::{self, File, TryLockError};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tempfile::NamedTempFile;
use thiserror::Error;

use super::destination::parent;
use crate::file_type::describe;
use crate::sha256::Sha256Stream;
use crate::write::contents::Contents;

/// How the name of every temporary output file starts.
pub const TEMP_PREFIX: &str = ".ossify-";

/// The buffer in front of an output file.
pub(crate) const BUFFER: usize = 256 * 1024;

/// The temporary files of this process, being written or waiting for their
/// commit. A commit holds the list from its first rename to its last.
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn in_progress() -> MutexGuard<'static, Vec<PathBuf>> {
    // A thread that panicked holding the list left it as valid as before.
    IN_PROGRESS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A listed temporary file; dropped, it is removed from the disk, then
/// from the list (the other way round, a signal in between would miss it).
struct Temp(Option<NamedTempFile>);

impl Temp {
    fn file(&mut self) -> &mut NamedTempFile {
        self.0.as_mut().expect("only a commit takes the file")
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(temp) = self.0.take() {
            let path = temp.path().to_owned();
            drop(temp);
            in_progress().retain(|p| *p != path);
        }
    }
}

/// An output being written; [`AtomicFile::finish`] completes it.
///
/// Written front to back, it is hashed as it is written. Writers that seek
/// back to fill in a header (the root filesystem images) write in place;
/// it is then hashed from the disk once complete.
pub struct AtomicFile {
    target: PathBuf,
    temp: Temp,
    /// The digest of the bytes so far, until a seek moves away from the end.
    hasher: Option<Sha256Stream>,
    /// Where the next write goes.
    position: u64,
    /// The end of the furthest write.
    size: u64,
}

/// What a finished output file is: where, how large, its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// A complete output in its temporary file, waiting for [`commit`];
/// dropped uncommitted, it is removed.
pub struct Pending {
    file: Finished,
    temp: Temp,
}

impl Pending {
    /// The output as it will be once committed.
    pub fn file(&self) -> &Finished {
        &self.file
    }
}

impl AtomicFile {
    /// Starts writing `target`, in a temporary file in the same directory
    /// (so the final rename cannot cross filesystems).
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        // Listed as it is made, under the list's lock, so that a signal's
        // cleanup cannot come between and miss it.
        let mut in_progress = in_progress();
        let temp = locked_temp_file(parent(target))?;
        in_progress.push(temp.path().to_owned());
        drop(in_progress);
        Ok(AtomicFile {
            target: target.to_owned(),
            temp: Temp(Some(temp)),
            hasher: Some(Sha256Stream::new()),
            position: 0,
            size: 0,
        })
    }

    /// Completes the file: its length, its data on disk, and the mode of a
    /// file the user created (temporary files start out private). It takes
    /// its place only with [`commit`].
    pub fn finish(mut self) -> io::Result<Pending> {
        let file = self.temp.file().as_file();
        // A file that ends in a hole is only as long as its last write.
        file.set_len(self.size)?;
        file.sync_all()?;
        set_default_permissions(file)?;
        let sha256 = match self.hasher {
            Some(hasher) => hasher.finalize(),
            None => hash_file(file, self.size)?,
        };
        Ok(Pending {
            file: Finished {
                path: self.target,
                size: self.size,
                sha256: hex(&sha256),
            },
            temp: self.temp,
        })
    }
}

/// The sha256 of the first `size` bytes of `file`.
fn hash_file(file: &File, size: u64) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256Stream::new();
    Contents::file(file, size).for_each_piece(|piece| hasher.update(piece))?;
    Ok(hasher.finalize())
}

/// How often a new temporary file is made when a sweep took the last.
const ATTEMPTS: usize = 8;

/// A new temporary file in `dir`, locked while it is open so that
/// [`remove_stale`] never takes it for stale. A sweep can lock and remove
/// a file between its creation and its creator's locking; the creator
/// then finds it unlinked and makes another.
fn locked_temp_file(dir: &Path) -> io::Result<NamedTempFile> {
    for _ in 0..ATTEMPTS {
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)?;
        match temp.as_file().try_lock() {
            Ok(()) if temp.as_file().metadata()?.nlink() > 0 => return Ok(temp),
            Ok(()) | Err(TryLockError::WouldBlock) => continue,
            // A filesystem without locks: no sweep can lock it either.
            Err(TryLockError::Error(_)) => return Ok(temp),
        }
    }
    Err(io::Error::other(format!(
        "new temporary files in {} kept disappearing; is another program deleting {TEMP_PREFIX}* files?",
        dir.display()
    )))
}

/// Writes at least this long and all zero become holes in the output.
const HOLE_MIN: usize = 64 * 1024;

impl Write for AtomicFile {
    /// Long runs of zeros (the free space of a disk image) are skipped
    /// rather than written, so they cost neither time nor disk space.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = if buf.len() >= HOLE_MIN && crate::write::is_zero(buf) {
            self.temp
                .file()
                .as_file_mut()
                .seek(SeekFrom::Current(buf.len() as i64))?;
            buf.len()
        } else {
            self.temp.file().write(buf)?
        };
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..written]);
        }
        self.position += written as u64;
        self.size = self.size.max(self.position);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.file().flush()
    }
}

impl Seek for AtomicFile {
    /// Anywhere but where the file is, the running digest is dropped; the
    /// file is hashed from the disk when it is finished.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let position = self.temp.file().as_file_mut().seek(to)?;
        if position != self.position {
            self.hasher = None;
        }
        self.position = position;
        Ok(position)
    }
}

/// Putting outputs in place failed.
#[derive(Debug, Error)]
pub enum CommitError {
    #[error(
        "will not replace {}: it is {what}; move it away or choose another output name",
        path.display()
    )]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("cannot put {} in place", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Puts `outputs` in place, then `manifest`. Before anything moves, every
/// final path is checked to be absent or a regular file, and the old
/// manifest is removed, so that it never stands beside outputs it does not
/// describe. The commit holds the list of files in progress throughout:
/// [`abandon_in_progress`] waits for it rather than cut it short.
pub fn commit(outputs: Vec<Pending>, manifest: Option<Pending>) -> Result<(), CommitError> {
    let old_manifest = manifest.as_ref().map(|m| m.file.path.clone());
    let mut files = outputs;
    files.extend(manifest);
    // Taken after `files`, so released before any of them is dropped.
    let mut in_progress = in_progress();
    for file in &files {
        replaceable(&file.file.path)?;
    }
    if let Some(path) = old_manifest {
        match fs::remove_file(&path) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => {
                return Err(CommitError::Io { path, source });
            }
            _ => {}
        }
    }
    for file in &mut files {
        let temp = file.temp.0.take().expect("only a commit takes the file");
        let temp_path = temp.path().to_owned();
        match temp.persist(&file.file.path) {
            Ok(_) => in_progress.retain(|p| *p != temp_path),
            Err(error) => {
                file.temp.0 = Some(error.file);
                return Err(CommitError::Io {
                    path: file.file.path.clone(),
                    source: error.error,
                });
            }
        }
    }
    Ok(())
}

/// Fails unless `path` is absent or a regular file. One that cannot be
/// inspected is left for the rename to report.
fn replaceable(path: &Path) -> Result<(), CommitError> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.is_file() => Err(CommitError::NotAFile {
            path: path.to_owned(),
            what: describe(metadata.file_type()),
        }),
        _ => Ok(()),
    }
}

/// The list of temporary files in progress, emptied and held: no output
/// can start or be put in place while it lives.
#[must_use = "outputs can start and be committed again once it is dropped"]
pub struct Abandoned {
    _held: MutexGuard<'static, Vec<PathBuf>>,
}

/// Removes every temporary output file of this process, once a commit
/// under way has ended. For a process about to exit on a signal, which
/// keeps the returned guard until it has exited.
pub fn abandon_in_progress() -> Abandoned {
    let mut in_progress = in_progress();
    for path in in_progress.drain(..) {
        // Gone already is as good as removed.
        let _ = fs::remove_file(&path);
    }
    Abandoned { _held: in_progress }
}

/// Removes the temporary output files in `dir` that no process is writing:
/// `.ossify-…` files left by a process that ended without cleaning up
/// (killed with SIGKILL, say). Best effort: a sweep that fails (another
/// user's file in a shared directory) leaves the rest. Returns how many
/// were removed.
pub fn remove_stale(dir: &Path) -> usize {
    crate::abandoned::remove_abandoned(dir, TEMP_PREFIX).unwrap_or(0)
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
    BufWriter::with_capacity(BUFFER, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn pending(target: &Path, contents: &[u8]) -> Pending {
        let mut file = AtomicFile::create(target).unwrap();
        file.write_all(contents).unwrap();
        file.finish().unwrap()
    }

    /// A writer that seeks back to fill in a header writes in place; the
    /// digest and size are those of the finished file.
    #[test]
    fn a_file_written_in_place_is_hashed_as_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image");
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(&[0; 16]).unwrap();
        file.write_all(b"body").unwrap();
        // A seek to where the file is keeps the running digest.
        assert_eq!(file.stream_position().unwrap(), 20);
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(b"header").unwrap();
        let finished = file.finish().unwrap();
        let mut expected = b"header".to_vec();
        expected.extend([0; 10]);
        expected.extend(b"body");
        assert_eq!(finished.file().size, 20);
        assert_eq!(finished.file().sha256, hex(&Sha256::digest(&expected)));
        commit(vec![finished], None).unwrap();
        assert_eq!(fs::read(&target).unwrap(), expected);
    }

    #[test]
    fn written_front_to_back_the_digest_is_kept_across_a_seek_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = AtomicFile::create(&dir.path().join("tar")).unwrap();
        file.write_all(b"front").unwrap();
        assert_eq!(file.stream_position().unwrap(), 5);
        file.write_all(b" to back").unwrap();
        assert!(file.hasher.is_some());
        let finished = file.finish().unwrap();
        assert_eq!(
            finished.file().sha256,
            hex(&Sha256::digest(b"front to back"))
        );
    }

    #[test]
    fn nothing_appears_until_commit_and_nothing_remains_after_a_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.img");
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"half").unwrap();
        assert!(!target.exists());
        drop(file);
        assert!(names(dir.path()).is_empty());

        let finished = pending(&target, b"whole");
        assert!(!target.exists());
        drop(finished);
        assert!(names(dir.path()).is_empty());

        let whole = pending(&target, b"whole");
        assert_eq!(whole.file().size, 5);
        // `printf whole | sha256sum`
        assert_eq!(
            whole.file().sha256,
            "5d5766cf2d78701614200418ee1450690d9af12c84d52545e4802f001ad53099"
        );
        commit(vec![whole], None).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"whole");
        assert_eq!(names(dir.path()), ["out.img"]);
    }

    #[test]
    fn a_commit_replaces_the_manifest_last_and_moves_nothing_if_a_path_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.json");
        fs::write(&manifest, "old manifest").unwrap();
        fs::write(dir.path().join("a"), "old a").unwrap();
        fs::create_dir(dir.path().join("b")).unwrap();

        let outputs = vec![
            pending(&dir.path().join("a"), b"new a"),
            pending(&dir.path().join("b"), b"new b"),
        ];
        let error = commit(outputs, Some(pending(&manifest, b"new manifest"))).unwrap_err();
        assert!(
            error.to_string().contains("b: it is a directory"),
            "{error}"
        );
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"old a");
        assert_eq!(fs::read(&manifest).unwrap(), b"old manifest");
        assert_eq!(names(dir.path()), ["a", "b", "m.json"]);

        fs::remove_dir(dir.path().join("b")).unwrap();
        let outputs = vec![
            pending(&dir.path().join("a"), b"new a"),
            pending(&dir.path().join("b"), b"new b"),
        ];
        commit(outputs, Some(pending(&manifest, b"new manifest"))).unwrap();
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"new b");
        assert_eq!(fs::read(&manifest).unwrap(), b"new manifest");
        assert_eq!(names(dir.path()), ["a", "b", "m.json"]);
    }

    #[test]
    fn only_unlocked_temporary_files_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".ossify-stale");
        fs::write(&stale, "left by a killed build").unwrap();
        let held = dir.path().join(".ossify-held");
        fs::write(&held, "another build's").unwrap();
        let lock = File::open(&held).unwrap();
        lock.lock().unwrap();
        fs::create_dir(dir.path().join(".ossify-dir")).unwrap();
        fs::write(dir.path().join("ossify-output"), "an output").unwrap();
        let mut writing = AtomicFile::create(&dir.path().join("out")).unwrap();
        writing.write_all(b"in progress").unwrap();

        assert_eq!(remove_stale(dir.path()), 1);
        assert!(!stale.exists());
        assert!(held.exists());
        assert_eq!(names(dir.path()).len(), 4, "{:?}", names(dir.path()));
        commit(vec![writing.finish().unwrap()], None).unwrap();
        assert_eq!(fs::read(dir.path().join("out")).unwrap(), b"in progress");
    }
}

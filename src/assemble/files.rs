//! The `files:` section: entries written last, over everything the images
//! put in place.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::Failure;
use super::ids::IdMap;
use crate::config::{File, Located};
use crate::file_type::describe;
use crate::tree::{Blob, Kind, Metadata, StoreError, Tree};

/// The most a `source:` file may hold: the largest file a newc cpio, and
/// so the initrd, can hold (4 GiB less a byte).
pub const MAX_SOURCE_SIZE: u64 = u32::MAX as u64;

/// A `source:` that cannot become a file's contents.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The source is missing or cannot be read.
    #[error("cannot read source {source_file}; create it, or mark the entry `optional: true`")]
    Unreadable {
        /// The source as written, and the file it names when that differs.
        source_file: String,
        /// Why it cannot be read.
        #[source]
        error: io::Error,
    },
    /// LinuxKit reads a source with `os.ReadFile`, which refuses directories.
    #[error(
        "source {source_file} is a directory; a source is one file, so give each file its own entry"
    )]
    Directory {
        /// The source as written, and the file it names when that differs.
        source_file: String,
    },
    /// FIFOs, sockets and devices have no contents to copy (and reading a
    /// FIFO waits for a writer).
    #[error("source {source_file} is {kind}; a source must be a regular file")]
    NotAFile {
        /// The source as written, and the file it names when that differs.
        source_file: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The source holds more than a file of the image may.
    #[error(
        "source {source_file} holds more than {MAX_SOURCE_SIZE} bytes, the most a file in an initrd can hold"
    )]
    TooLarge {
        /// The source as written, and the file it names when that differs.
        source_file: String,
    },
}

/// LinuxKit's mode for a file entry without `mode:`.
const DEFAULT_FILE_MODE: u32 = 0o600;
/// LinuxKit's mode for a `directory: true` entry without `mode:`.
const DEFAULT_DIR_MODE: u32 = 0o700;

/// What a `files` entry needs from outside the configuration.
pub struct Host<'a> {
    /// `source:` paths are relative to it.
    pub working_dir: &'a Path,
    /// `~/` in a `source:` path stands for it.
    pub home: Option<&'a Path>,
    /// The contents of `metadata: yaml` and `metadata: json` entries.
    pub metadata_yaml: &'a [u8],
    pub metadata_json: &'a [u8],
    /// Each `source:` read, as written, with the sha256 of what was read:
    /// inputs a build's manifest pins.
    pub sources_read: &'a RefCell<Vec<SourceRead>>,
}

/// A host file a `files:` entry read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRead {
    /// The `source:` as written.
    pub source: String,
    pub sha256: String,
}

/// Writes every entry of `files` into `root`, in order.
///
/// As LinuxKit does, each parent directory not yet written by an earlier
/// entry is written again, owned like the entry and with a mode derived
/// from it (`0644` gives `0755`): an image's `/etc` takes the owner and mode
/// that the first `etc/…` entry implies.
pub fn place(
    root: &mut Tree,
    files: &[Located<File>],
    ids: &IdMap,
    host: &Host<'_>,
    mtime: u64,
) -> Result<(), (usize, Failure)> {
    let mut written: HashSet<String> = HashSet::new();
    for (index, file) in files.iter().enumerate() {
        place_one(root, file, ids, host, mtime, &mut written).map_err(|e| (index, e))?;
    }
    Ok(())
}

fn place_one(
    root: &mut Tree,
    file: &File,
    ids: &IdMap,
    host: &Host<'_>,
    mtime: u64,
    written: &mut HashSet<String>,
) -> Result<(), Failure> {
    let path = file.path.strip_prefix('/').unwrap_or(&file.path);
    let default_mode = if file.directory {
        DEFAULT_DIR_MODE
    } else {
        DEFAULT_FILE_MODE
    };
    let mode = match &file.mode {
        Some(mode) => u32::from_str_radix(mode, 8)
            .map_err(|_| Failure::Invalid(format!("mode `{mode}` is not an octal number")))?,
        None => default_mode,
    };
    let numeric = |id: &Option<crate::config::Id>| match id {
        Some(id) => ids.numeric(id).map_err(Failure::UnknownId),
        None => Ok(0),
    };
    let metadata = Metadata {
        uid: numeric(&file.uid)?,
        gid: numeric(&file.gid)?,
        ..Metadata::new(mode, mtime)
    };

    let kind = if file.directory {
        Kind::directory()
    } else if let Some(target) = &file.symlink {
        Kind::Symlink(target.clone().into_bytes())
    } else if let Some(contents) = &file.contents {
        Kind::File(
            root.store_bytes(contents.as_bytes())
                .map_err(Failure::Storage)?,
        )
    } else if let Some(format) = &file.metadata {
        let contents = if format == "json" {
            host.metadata_json
        } else {
            host.metadata_yaml
        };
        Kind::File(root.store_bytes(contents).map_err(Failure::Storage)?)
    } else if let Some(source) = &file.source {
        match read_source(root, source, &expand_source(source, host), file.optional)? {
            Some(blob) => {
                let sha256 = crate::output::manifest::sha256(&mut root.contents(&blob))
                    .map_err(Failure::Storage)?;
                host.sources_read.borrow_mut().push(SourceRead {
                    source: source.clone(),
                    sha256,
                });
                Kind::File(blob)
            }
            None => return Ok(()),
        }
    } else {
        return Err(Failure::Invalid("nothing to write".into()));
    };

    let mut parent = String::new();
    for component in path
        .split('/')
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .split_last()
        .map_or(&[][..], |(_, p)| p)
    {
        if !parent.is_empty() {
            parent.push('/');
        }
        parent.push_str(component);
        if written.insert(parent.clone()) {
            let dir = Metadata {
                mode: directory_mode(mode),
                ..metadata.clone()
            };
            root.insert(&parent, Kind::directory(), dir)?;
        }
    }
    written.insert(path.to_owned());
    root.insert(path, kind, metadata)?;
    Ok(())
}

/// A parent directory's mode: the entry's, with search permission for
/// whoever may read or write (LinuxKit's rule).
fn directory_mode(mode: u32) -> u32 {
    let mut dir = mode;
    for (any, search) in [(0o700, 0o100), (0o070, 0o010), (0o007, 0o001)] {
        if mode & any != 0 {
            dir |= search;
        }
    }
    dir
}

/// `~/x` means the home directory's `x`; other paths are relative to the
/// working directory.
fn expand_source(source: &str, host: &Host<'_>) -> PathBuf {
    match (source.strip_prefix("~/"), host.home) {
        (Some(rest), Some(home)) if !rest.is_empty() => home.join(rest),
        _ => host.working_dir.join(source),
    }
}

/// The contents of the regular file at `path`, read to its end (files in
/// /proc and /sys report a size of 0); `None` for an `optional` source that
/// cannot be read. Directories, FIFOs, sockets and devices are refused by
/// their type, before they are opened.
fn read_source(
    root: &mut Tree,
    written: &str,
    path: &Path,
    optional: bool,
) -> Result<Option<Blob>, Failure> {
    let unreadable = |error| SourceError::Unreadable {
        source_file: source_file(written, path),
        error,
    };
    // Like LinuxKit's os.Stat and os.ReadFile, follow symlinks.
    let opened = std::fs::metadata(path).and_then(|metadata| {
        let file_type = metadata.file_type();
        if file_type.is_file() {
            std::fs::File::open(path).map(Ok)
        } else {
            Ok(Err(file_type))
        }
    });
    let file = match opened {
        Ok(Ok(file)) => file,
        Ok(Err(file_type)) => return Err(not_a_file(written, path, file_type).into()),
        Err(_) if optional => return Ok(None),
        Err(error) => return Err(unreadable(error).into()),
    };
    let blob = root
        .store_from(file, MAX_SOURCE_SIZE + 1)
        .map_err(|error| match error {
            StoreError::Read(error) => unreadable(error).into(),
            StoreError::Spill(error) => Failure::Storage(error),
        })?;
    if blob.len() > MAX_SOURCE_SIZE {
        return Err(SourceError::TooLarge {
            source_file: source_file(written, path),
        }
        .into());
    }
    Ok(Some(blob))
}

/// The error for a source that is not a regular file.
fn not_a_file(written: &str, path: &Path, file_type: FileType) -> SourceError {
    let source_file = source_file(written, path);
    if file_type.is_dir() {
        return SourceError::Directory { source_file };
    }
    let kind = describe(file_type);
    SourceError::NotAFile { source_file, kind }
}

/// A source as messages name it: as written, and the file that names when
/// it differs (a relative or `~/` source).
fn source_file(written: &str, path: &Path) -> String {
    if Path::new(written) == path {
        format!("`{written}`")
    } else {
        format!("`{written}` ({})", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::directory_mode;

    #[test]
    fn parent_directories_get_search_permission_where_the_file_is_readable() {
        assert_eq!(directory_mode(0o600), 0o700);
        assert_eq!(directory_mode(0o644), 0o755);
        assert_eq!(directory_mode(0o640), 0o750);
        assert_eq!(directory_mode(0o4755), 0o4755);
    }
}

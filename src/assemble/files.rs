//! The `files:` section: entries written last, over everything the images
//! put in place.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Failure;
use super::ids::IdMap;
use crate::config::{File, Located};
use crate::tree::{Kind, Metadata, Tree};

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
        Some(id) => ids.numeric(id).map_err(|e| Failure::Invalid(e.to_string())),
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
        Kind::File(root.store_bytes(contents.as_bytes())?)
    } else if let Some(format) = &file.metadata {
        let contents = if format == "json" {
            host.metadata_json
        } else {
            host.metadata_yaml
        };
        Kind::File(root.store_bytes(contents)?)
    } else if let Some(source) = &file.source {
        let source_path = expand_source(source, host);
        let opened = std::fs::File::open(&source_path);
        if file.optional && opened.is_err() {
            return Ok(());
        }
        let opened = opened.map_err(|e| source_error(source, &source_path, e))?;
        let size = opened
            .metadata()
            .map_err(|e| source_error(source, &source_path, e))?
            .len();
        let blob = root.store(opened, size)?;
        if blob.len() != size {
            return Err(Failure::Invalid(format!(
                "source `{source}` ({}) changed size while being read",
                source_path.display()
            )));
        }
        Kind::File(blob)
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

fn source_error(source: &str, path: &Path, error: std::io::Error) -> Failure {
    Failure::Invalid(format!(
        "cannot read source `{source}` ({}): {error}; create it, or mark the entry `optional: true`",
        path.display()
    ))
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

//! FAT12/16/32 volumes for EFI system partitions and BIOS boot partitions.
//!
//! Written here rather than through a crate so that the image is planned in
//! full before a byte is written and then streamed out front to back: the
//! caller learns the size and FAT type first (an MBR partition type depends
//! on it), file contents are read once from any reader, and the output can be
//! placed at an offset inside a disk image or an ISO. Each file lies in
//! contiguous clusters; directories come first in each directory's subtree,
//! entries in name order; nothing depends on the clock.

mod boot;
mod entry;
mod geometry;
mod names;
mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use thiserror::Error;

use entry::{ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID, DIR_ENTRY_LEN, DosTime};
pub use geometry::FatType;
use geometry::{Geometry, SECTOR};
use names::{EntryName, SHORT_NAME_LEN, ShortName};

const MIB: u64 = 1024 * 1024;
/// Fixed root directory entries on FAT12/16 unless more are needed.
const DEFAULT_ROOT_ENTRIES: u64 = 512;
/// Largest file a FAT directory entry can describe.
const MAX_FILE_SIZE: u64 = u32::MAX as u64;
/// "No label", as the spec spells it.
const NO_LABEL: &[u8; SHORT_NAME_LEN] = b"NO NAME    ";
/// Sizing rounds rarely need more than two passes; this bounds a bug.
const MAX_SIZING_PASSES: usize = 64;
const WRITE_CHUNK: usize = 64 * 1024;
/// What [`FatError::Io`] names when writing the boot sector, FATs or directories failed.
pub const STRUCTURES: &str = "(FAT structures)";

/// Building or writing a FAT image failed.
#[derive(Debug, Error)]
pub enum FatError {
    /// A path cannot be stored on FAT.
    #[error("`{path}` cannot be stored on a FAT volume: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// Two entries would share a name (FAT names ignore case), or a file is in
    /// the way of a directory.
    #[error(
        "`{path}` clashes with `{existing}` already on the FAT volume (FAT names ignore case); rename one"
    )]
    Clash {
        /// The path being added.
        path: String,
        /// The entry already there.
        existing: String,
    },
    /// A file is larger than FAT can hold.
    #[error("`{path}` is {len} bytes; FAT files hold at most 4 GiB - 1")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its length.
        len: u64,
    },
    /// The volume label is not valid.
    #[error("FAT volume label `{label}` must be at most 11 characters of A-Z, 0-9, space and _-")]
    InvalidLabel {
        /// The label.
        label: String,
    },
    /// The volume would be larger than FAT with 512-byte sectors can address.
    #[error("a FAT volume of {bytes} bytes is larger than the 2 TiB FAT can address")]
    TooLarge {
        /// The size asked for.
        bytes: u64,
    },
    /// No cluster size gives a valid cluster count (a bug if it happens).
    #[error("no FAT layout fits a volume of {bytes} bytes; ask for a different size")]
    NoGeometry {
        /// The volume size.
        bytes: u64,
    },
    /// A file's reader gave a different number of bytes than its declared length.
    #[error("`{path}` was declared as {declared} bytes but its contents had {actual}")]
    LengthMismatch {
        /// The file.
        path: String,
        /// The length given to [`FatBuilder::add_file`].
        declared: u64,
        /// The bytes read, or `declared + 1` if there were more.
        actual: u64,
    },
    /// Reading contents or writing the image failed.
    #[error("writing the FAT image failed at `{path}` (is the output's disk full?)")]
    Io {
        /// The file being copied, or [`STRUCTURES`] for the rest.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Settings of a FAT volume; every value comes from the caller.
#[derive(Clone, Debug, Default)]
pub struct FatOptions {
    /// Volume label, up to 11 characters; `None` for "NO NAME".
    pub label: Option<String>,
    /// Volume serial number, derived by the caller from its inputs.
    pub volume_id: u32,
    /// Timestamp of every entry, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// Sectors before the volume on its disk (the partition's start LBA);
    /// boot code that loads files by sector needs it.
    pub hidden_sectors: u32,
    /// Smallest size of the volume in bytes. Without it the volume holds its
    /// contents plus 10% and 1 MiB of headroom, rounded up to a MiB.
    pub min_size: Option<u64>,
}

/// A FAT volume being described: directories and files with their contents.
pub struct FatBuilder<'a> {
    options: FatOptions,
    root: Dir<'a>,
}

#[derive(Default)]
struct Dir<'a> {
    children: BTreeMap<String, Node<'a>>,
}

enum Node<'a> {
    Dir(Dir<'a>),
    File(FileContents<'a>),
}

struct FileContents<'a> {
    path: String,
    len: u64,
    reader: Box<dyn Read + 'a>,
}

impl<'a> FatBuilder<'a> {
    /// An empty volume with `options`.
    pub fn new(options: FatOptions) -> FatBuilder<'a> {
        FatBuilder {
            options,
            root: Dir::default(),
        }
    }

    /// Adds the directory at `path` (like `EFI/BOOT`) and any missing parents.
    pub fn add_dir(&mut self, path: &str) -> Result<(), FatError> {
        let components = split_path(path)?;
        self.dir_at(path, &components).map(|_| ())
    }

    /// Adds a file of `len` bytes at `path`, creating missing parent
    /// directories. The contents are read from `contents` only while the image
    /// is written; a byte slice works as well as a file.
    pub fn add_file(
        &mut self,
        path: &str,
        len: u64,
        contents: impl Read + 'a,
    ) -> Result<(), FatError> {
        if len > MAX_FILE_SIZE {
            return Err(FatError::FileTooLarge {
                path: path.to_owned(),
                len,
            });
        }
        let components = split_path(path)?;
        let (name, parents) = components
            .split_last()
            .ok_or_else(|| invalid(path, "the path is empty"))?;
        let dir = self.dir_at(path, parents)?;
        check_clash(dir, path, name)?;
        if dir.children.contains_key(*name) {
            return Err(FatError::Clash {
                path: path.to_owned(),
                existing: path.to_owned(),
            });
        }
        dir.children.insert(
            (*name).to_owned(),
            Node::File(FileContents {
                path: path.to_owned(),
                len,
                reader: Box::new(contents),
            }),
        );
        Ok(())
    }

    /// The directory at `components`, created as needed.
    fn dir_at(&mut self, path: &str, components: &[&str]) -> Result<&mut Dir<'a>, FatError> {
        let mut dir = &mut self.root;
        for name in components {
            if !dir.children.contains_key(*name) {
                check_clash(dir, path, name)?;
            }
            let node = dir
                .children
                .entry((*name).to_owned())
                .or_insert_with(|| Node::Dir(Dir::default()));
            dir = match node {
                Node::Dir(child) => child,
                Node::File(file) => {
                    return Err(FatError::Clash {
                        path: path.to_owned(),
                        existing: file.path.clone(),
                    });
                }
            };
        }
        Ok(dir)
    }

    /// Plans the volume: its size, FAT type and where everything goes.
    pub fn plan(self) -> Result<FatImage<'a>, FatError> {
        let label = volume_label(self.options.label.as_deref())?;
        let time = DosTime::from_unix(self.options.timestamp);
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        flatten(self.root, None, &mut dirs, &mut files);
        if label.is_some() {
            dirs[0].entry_count += 1;
        }
        let geometry = size_volume(&self.options, &dirs, &files)?;
        let mut image = FatImage {
            geometry,
            options: self.options,
            label: label.unwrap_or(*NO_LABEL),
            root_dir: Vec::new(),
            extents: Vec::new(),
        };
        image.allocate(dirs, files, label.is_some(), time);
        Ok(image)
    }
}

fn invalid(path: &str, reason: &'static str) -> FatError {
    FatError::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

fn split_path(path: &str) -> Result<Vec<&str>, FatError> {
    path.split('/')
        .filter(|component| !component.is_empty())
        .map(|component| match names::invalid_reason(component) {
            Some(reason) => Err(invalid(path, reason)),
            None => Ok(component),
        })
        .collect()
}

/// Fails if `dir` holds a name equal to `name` but for case.
fn check_clash(dir: &Dir<'_>, path: &str, name: &str) -> Result<(), FatError> {
    let upper = name.to_uppercase();
    match dir
        .children
        .keys()
        .find(|existing| existing.to_uppercase() == upper)
    {
        Some(existing) if existing != name => Err(FatError::Clash {
            path: path.to_owned(),
            existing: existing.clone(),
        }),
        _ => Ok(()),
    }
}

/// The label as a padded short name, or `None` for no label.
fn volume_label(label: Option<&str>) -> Result<Option<ShortName>, FatError> {
    let Some(label) = label else {
        return Ok(None);
    };
    let valid = label.len() <= SHORT_NAME_LEN
        && !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b" _-".contains(&b));
    if !valid {
        return Err(FatError::InvalidLabel {
            label: label.to_owned(),
        });
    }
    let mut padded = [b' '; SHORT_NAME_LEN];
    padded[..label.len()].copy_from_slice(label.as_bytes());
    Ok(Some(padded))
}

/// A directory in write order, with its entries' names decided.
struct FlatDir {
    parent: Option<usize>,
    /// 32-byte entries it needs, with `.`/`..` and long-name entries.
    entry_count: u64,
    entries: Vec<FlatEntry>,
    first_cluster: u32,
}

struct FlatEntry {
    name: EntryName,
    target: Target,
}

enum Target {
    Dir(usize),
    File(usize),
}

/// Numbers directories in preorder (root is 0) and names their entries.
fn flatten<'a>(
    dir: Dir<'a>,
    parent: Option<usize>,
    dirs: &mut Vec<FlatDir>,
    files: &mut Vec<FileContents<'a>>,
) {
    let index = dirs.len();
    let child_names: Vec<&str> = dir.children.keys().map(String::as_str).collect();
    let entry_names = names::name_entries(&child_names);
    let dot_entries = if parent.is_some() { 2 } else { 0 };
    let entry_count = dot_entries
        + entry_names
            .iter()
            .map(|name| 1 + name.long.as_deref().map_or(0, entry::long_entry_count) as u64)
            .sum::<u64>();
    dirs.push(FlatDir {
        parent,
        entry_count,
        entries: Vec::new(),
        first_cluster: 0,
    });
    for (node, name) in dir.children.into_values().zip(entry_names) {
        let target = match node {
            Node::Dir(child) => {
                let child_index = dirs.len();
                flatten(child, Some(index), dirs, files);
                Target::Dir(child_index)
            }
            Node::File(file) => {
                files.push(file);
                Target::File(files.len() - 1)
            }
        };
        dirs[index].entries.push(FlatEntry { name, target });
    }
}

/// Picks the smallest volume at least as large as asked that holds everything.
fn size_volume(
    options: &FatOptions,
    dirs: &[FlatDir],
    files: &[FileContents<'_>],
) -> Result<Geometry, FatError> {
    let dir_bytes = |dir: &FlatDir| dir.entry_count * DIR_ENTRY_LEN as u64;
    let root_entries = dirs[0]
        .entry_count
        .next_multiple_of(16)
        .max(DEFAULT_ROOT_ENTRIES);
    let content: u64 =
        files.iter().map(|file| file.len).sum::<u64>() + dirs.iter().map(dir_bytes).sum::<u64>();
    let headroom = (content + content / 10 + MIB).next_multiple_of(MIB);
    let mut total_sectors = options.min_size.unwrap_or(0).max(headroom).div_ceil(SECTOR);
    for _ in 0..MAX_SIZING_PASSES {
        let geometry = Geometry::choose(total_sectors, root_entries)?;
        let cluster = geometry.cluster_bytes();
        let clusters = |bytes: u64| bytes.div_ceil(cluster);
        let root_in_data = geometry.fat_type == FatType::Fat32;
        let needed: u64 = files.iter().map(|file| clusters(file.len)).sum::<u64>()
            + dirs
                .iter()
                .enumerate()
                .filter(|(index, _)| *index > 0 || root_in_data)
                .map(|(_, dir)| clusters(dir_bytes(dir)).max(1))
                .sum::<u64>();
        if needed <= geometry.cluster_count {
            return Ok(geometry);
        }
        let missing = (needed - geometry.cluster_count) * cluster;
        total_sectors += (missing + missing / 8).next_multiple_of(MIB) / SECTOR;
    }
    Err(FatError::NoGeometry {
        bytes: total_sectors * SECTOR,
    })
}

/// A planned FAT volume, ready to be written.
pub struct FatImage<'a> {
    geometry: Geometry,
    options: FatOptions,
    label: ShortName,
    /// The fixed root directory region of FAT12/16; empty on FAT32.
    root_dir: Vec<u8>,
    /// What fills the data region, in cluster order from cluster 2.
    extents: Vec<Extent<'a>>,
}

/// A run of contiguous clusters holding one directory or file.
struct Extent<'a> {
    clusters: u32,
    contents: ExtentContents<'a>,
}

enum ExtentContents<'a> {
    Dir(Vec<u8>),
    File(FileContents<'a>),
}

/// The first data cluster.
const FIRST_CLUSTER: u32 = 2;

impl<'a> FatImage<'a> {
    /// Size of the volume in bytes.
    pub fn size(&self) -> u64 {
        self.geometry.total_sectors * SECTOR
    }

    /// The FAT variant, which decides the MBR partition type.
    pub fn fat_type(&self) -> FatType {
        self.geometry.fat_type
    }

    /// Gives every directory and file its clusters and encodes the directories.
    fn allocate(
        &mut self,
        mut dirs: Vec<FlatDir>,
        files: Vec<FileContents<'a>>,
        has_label: bool,
        time: DosTime,
    ) {
        let cluster = self.geometry.cluster_bytes();
        let clusters = |bytes: u64| bytes.div_ceil(cluster) as u32;
        let root_in_data = self.geometry.fat_type == FatType::Fat32;
        // Directories first, in preorder, then files in the same order.
        let mut next = FIRST_CLUSTER;
        let mut dir_clusters = Vec::with_capacity(dirs.len());
        for (index, dir) in dirs.iter_mut().enumerate() {
            let count = if index > 0 || root_in_data {
                clusters(dir.entry_count * DIR_ENTRY_LEN as u64).max(1)
            } else {
                0
            };
            dir.first_cluster = if count > 0 { next } else { 0 };
            dir_clusters.push(count);
            next += count;
        }
        let mut file_clusters = Vec::with_capacity(files.len());
        for file in &files {
            let count = clusters(file.len);
            file_clusters.push((if count > 0 { next } else { 0 }, count));
            next += count;
        }
        let mut encoded: Vec<Vec<u8>> = dirs
            .iter()
            .enumerate()
            .map(|(index, dir)| {
                let label = (index == 0 && has_label).then_some(&self.label);
                encode_dir(&dirs, dir, &files, &file_clusters, label, time)
            })
            .collect();
        self.root_dir = if root_in_data {
            Vec::new()
        } else {
            std::mem::take(&mut encoded[0])
        };
        for (bytes, count) in encoded.into_iter().zip(dir_clusters) {
            if count > 0 {
                self.extents.push(Extent {
                    clusters: count,
                    contents: ExtentContents::Dir(bytes),
                });
            }
        }
        for (file, (_, count)) in files.into_iter().zip(file_clusters) {
            if count > 0 {
                self.extents.push(Extent {
                    clusters: count,
                    contents: ExtentContents::File(file),
                });
            }
        }
    }

    /// Writes the boot sector and on FAT32 the FSInfo sector and backups.
    fn write_reserved(&self, out: &mut impl Write) -> io::Result<()> {
        let geometry = &self.geometry;
        let boot = boot::boot_sector(
            geometry,
            self.options.volume_id,
            self.options.hidden_sectors,
            &self.label,
        );
        let used: u64 = self
            .extents
            .iter()
            .map(|extent| u64::from(extent.clusters))
            .sum();
        // Both fit: the cluster count is below 2^28.
        let free = (geometry.cluster_count - used) as u32;
        let next_free = if free > 0 {
            FIRST_CLUSTER + used as u32
        } else {
            u32::MAX
        };
        let info = boot::fs_info(free, next_free);
        for sector in 0..geometry.reserved_sectors {
            let contents: &[u8] = match (geometry.fat_type, sector) {
                (_, 0) => &boot,
                (FatType::Fat32, boot::FSINFO_SECTOR) => &info,
                (FatType::Fat32, boot::BACKUP_BOOT_SECTOR) => &boot,
                (FatType::Fat32, sector) if sector == boot::BACKUP_BOOT_SECTOR + 1 => &info,
                _ => &[],
            };
            write_padded(out, contents, SECTOR)?;
        }
        Ok(())
    }

    fn write_fat(&self, out: &mut impl Write) -> io::Result<()> {
        let chains: Vec<u32> = self.extents.iter().map(|extent| extent.clusters).collect();
        table::write_fat(
            out,
            self.geometry.fat_type,
            self.geometry.fat_sectors,
            boot::MEDIA_FIXED,
            &chains,
        )
    }

    /// Writes the whole volume to `out`, front to back, and returns `out`.
    pub fn write<W: Write>(self, mut out: W) -> Result<W, FatError> {
        let structures = |source| FatError::Io {
            path: STRUCTURES.to_owned(),
            source,
        };
        self.write_reserved(&mut out).map_err(structures)?;
        for _ in 0..self.geometry.num_fats() {
            self.write_fat(&mut out).map_err(structures)?;
        }
        let region = self.geometry.root_dir_sectors() * SECTOR;
        write_padded(&mut out, &self.root_dir, region).map_err(structures)?;
        let mut written = self.geometry.data_start();
        let cluster = self.geometry.cluster_bytes();
        for extent in self.extents {
            let bytes = u64::from(extent.clusters) * cluster;
            match extent.contents {
                ExtentContents::Dir(entries) => {
                    write_padded(&mut out, &entries, bytes).map_err(structures)?;
                }
                ExtentContents::File(file) => copy_file(&mut out, file, bytes)?,
            }
            written += bytes / SECTOR;
        }
        let rest = (self.geometry.total_sectors - written) * SECTOR;
        write_zeros(&mut out, rest).map_err(structures)?;
        Ok(out)
    }
}

/// Encodes one directory's entries.
fn encode_dir(
    dirs: &[FlatDir],
    dir: &FlatDir,
    files: &[FileContents<'_>],
    file_clusters: &[(u32, u32)],
    label: Option<&ShortName>,
    time: DosTime,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.entry_count as usize * DIR_ENTRY_LEN);
    if let Some(label) = label {
        entry::push_short_entry(&mut out, label, ATTR_VOLUME_ID, 0, 0, time);
    }
    if let Some(parent) = dir.parent {
        // `..` of a directory in the root points at cluster 0, even on FAT32.
        let parent_cluster = if parent == 0 {
            0
        } else {
            dirs[parent].first_cluster
        };
        entry::push_short_entry(
            &mut out,
            b".          ",
            ATTR_DIRECTORY,
            dir.first_cluster,
            0,
            time,
        );
        entry::push_short_entry(
            &mut out,
            b"..         ",
            ATTR_DIRECTORY,
            parent_cluster,
            0,
            time,
        );
    }
    for child in &dir.entries {
        if let Some(long) = &child.name.long {
            entry::push_long_entries(&mut out, long, &child.name.short);
        }
        let (attr, first_cluster, size) = match child.target {
            Target::Dir(index) => (ATTR_DIRECTORY, dirs[index].first_cluster, 0),
            // Lengths were checked against MAX_FILE_SIZE when added.
            Target::File(index) => (
                ATTR_ARCHIVE,
                file_clusters[index].0,
                files[index].len as u32,
            ),
        };
        entry::push_short_entry(&mut out, &child.name.short, attr, first_cluster, size, time);
    }
    out
}

fn write_padded(out: &mut impl Write, bytes: &[u8], len: u64) -> io::Result<()> {
    out.write_all(bytes)?;
    write_zeros(out, len - bytes.len() as u64)
}

fn write_zeros(out: &mut impl Write, mut len: u64) -> io::Result<()> {
    let zeros = [0u8; WRITE_CHUNK];
    while len > 0 {
        let chunk = len.min(WRITE_CHUNK as u64) as usize;
        out.write_all(&zeros[..chunk])?;
        len -= chunk as u64;
    }
    Ok(())
}

/// Copies exactly `file.len` bytes of the file, then pads to `len`.
fn copy_file(out: &mut impl Write, file: FileContents<'_>, len: u64) -> Result<(), FatError> {
    let FileContents {
        path,
        len: declared,
        reader,
    } = file;
    let io_error = |source| FatError::Io {
        path: path.clone(),
        source,
    };
    let mut limited = reader.take(declared + 1);
    let mut buffer = vec![0u8; WRITE_CHUNK];
    let mut copied = 0u64;
    loop {
        let read = match limited.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(io_error(error)),
        };
        let keep = read.min((declared - copied.min(declared)) as usize);
        out.write_all(&buffer[..keep]).map_err(io_error)?;
        copied += read as u64;
    }
    if copied != declared {
        return Err(FatError::LengthMismatch {
            path,
            declared,
            actual: copied,
        });
    }
    write_zeros(out, len - declared).map_err(io_error)
}

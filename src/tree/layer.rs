//! Applying an OCI layer to a tree, straight from its (compressed) stream.
//!
//! Follows the OCI image spec's changeset rules: entries are added or
//! replace what lower layers left (a directory over a directory merges),
//! `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` hides everything
//! lower layers put in its directory. Whiteouts never hide entries of their
//! own layer, whatever the order of the tar. Paths resolve inside the tree
//! (see `resolve`), and the uncompressed stream is hashed on the way to check
//! the image config's diff_id without a second pass.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, Read};

use thiserror::Error;

use super::arena::SMALL_CONTENTS;
use super::limits::{self, MAX_HOLE_BYTES, MAX_PATH_LEN};
use super::pax::{self, PaxError};
use super::resolve::{Resolution, shown};
use super::sparse::{self, Map, Sparse, SparseError};
use super::{Compression, Device, Kind, Metadata, NodeId, StoreError, Tree, TreeError};
use crate::sha256::Sha256Stream;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping, never files of the image.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
const READ_BUFFER: usize = 128 * 1024;

/// A layer could not be applied. On error the tree holds part of the layer
/// and should be dropped.
#[derive(Debug, Error)]
pub enum LayerError {
    /// The stream could not be read or decompressed.
    #[error(
        "layer {layer}: the stream is truncated or corrupt; remove the blob from the cache and pull it again"
    )]
    Stream {
        /// The layer's digest.
        layer: String,
        /// The read or decompression error.
        source: io::Error,
    },
    /// The stream failed inside an entry's contents.
    #[error(
        "layer {layer}: entry `{entry}`: the stream is truncated or corrupt; remove the blob from the cache and pull it again"
    )]
    ContentsStream {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// The read or decompression error.
        source: io::Error,
    },
    /// An entry's contents could not be written to temporary storage.
    #[error(
        "layer {layer}: entry `{entry}`: cannot write its contents to ossify's temporary file; free space in $TMPDIR or point TMPDIR elsewhere"
    )]
    ContentsStorage {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// The write error.
        source: io::Error,
    },
    /// The stream ended inside an entry's contents.
    #[error(
        "layer {layer}: entry `{entry}` should hold {expected} bytes but the stream ends after {actual}; the blob is truncated, pull it again"
    )]
    Truncated {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// The size the header claims.
        expected: u64,
        /// The bytes actually present.
        actual: u64,
    },
    /// A header field could not be decoded.
    #[error("layer {layer}: entry `{entry}` has a malformed header; the blob is corrupt")]
    Header {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// What was wrong.
        source: io::Error,
    },
    /// The entry's path cannot be placed in the tree.
    #[error("layer {layer}: entry `{entry}` cannot be applied")]
    Placement {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// Why.
        source: TreeError,
    },
    /// A link's target is not a path Linux would take.
    #[error("layer {layer}: entry `{entry}`: the link's target cannot be used")]
    LinkTarget {
        /// The layer's digest.
        layer: String,
        /// The link's path in the layer.
        entry: String,
        /// Why.
        source: TreeError,
    },
    /// A hard link names a path nothing was written to.
    #[error(
        "layer {layer}: entry `{entry}` is a hard link to `{target}`, which neither this layer nor a lower one holds; the layer is corrupt or the layers are out of order"
    )]
    HardLinkTargetMissing {
        /// The layer's digest.
        layer: String,
        /// The link's path.
        entry: String,
        /// The path it links to.
        target: String,
    },
    /// A link entry without a link name.
    #[error("layer {layer}: entry `{entry}` is a link without a target; the blob is corrupt")]
    MissingLinkName {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
    },
    /// An entry type a container layer cannot hold (or ossify does not read).
    #[error(
        "layer {layer}: entry `{entry}` has tar entry type {entry_type}, which ossify does not support in layers"
    )]
    UnsupportedEntry {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// The tar entry type.
        entry_type: String,
    },
    /// A PAX record ossify reads cannot be applied.
    #[error("layer {layer}: entry `{entry}`: a PAX record cannot be applied")]
    Pax {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// Which record, and why.
        source: PaxError,
    },
    /// A GNU sparse file whose map is malformed.
    #[error(
        "layer {layer}: entry `{entry}` is a GNU sparse file with a malformed map; the blob is corrupt"
    )]
    Sparse {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// What is wrong with the map.
        source: SparseError,
    },
    /// Sparse files whose holes, stored as zeros, would exceed the limit.
    #[error(
        "layer {layer}: entry `{entry}`: the layer's sparse files hold more than {MAX_HOLE_BYTES} bytes of holes, ossify's limit (holes are stored as zeros)"
    )]
    Holes {
        /// The layer's digest.
        layer: String,
        /// The sparse file that went over the limit.
        entry: String,
    },
    /// The diff_id does not use sha256.
    #[error(
        "layer {layer}: diff_id `{diff_id}` is not a sha256 digest; ossify verifies sha256 diff_ids only"
    )]
    DiffIdAlgorithm {
        /// The layer's digest.
        layer: String,
        /// The diff_id given.
        diff_id: String,
    },
    /// The uncompressed stream is not the one the image config names.
    #[error(
        "layer {layer}: the uncompressed stream has digest {actual} but the image config's diff_id is {expected}; the blob is corrupt or belongs to another image"
    )]
    DiffIdMismatch {
        /// The layer's digest.
        layer: String,
        /// The diff_id from the image config.
        expected: String,
        /// The digest computed.
        actual: String,
    },
}

/// A layer blob to apply.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// Names the layer in errors: its blob digest (callers add the image).
    pub digest: &'a str,
    /// How the blob is compressed; [`Compression::Detect`] sniffs it.
    pub compression: Compression,
    /// The image config's `rootfs.diff_ids` entry for this layer
    /// (`sha256:<hex>`), checked against the uncompressed stream when given.
    pub diff_id: Option<&'a str>,
}

impl Layer<'_> {
    /// Applies the layer read from `stream` over `tree`, checking the
    /// digest of its uncompressed stream against [`Layer::diff_id`].
    ///
    /// The whole stream is consumed, also past the tar's end-of-archive
    /// blocks, so the digest covers it all and the compressed format's own
    /// checks (gzip's CRC) run.
    pub fn apply(&self, tree: &mut Tree, stream: impl Read) -> Result<(), LayerError> {
        self.apply_backed(tree, stream, None)
    }

    /// [`Layer::apply`] where `backing` holds the uncompressed stream's
    /// bytes at the same offsets, by the time each entry has been read (a
    /// kept copy of the layer, or one being written as the stream is
    /// read): large files' contents are then referenced there, not copied.
    pub fn apply_backed(
        &self,
        tree: &mut Tree,
        stream: impl Read,
        backing: Option<File>,
    ) -> Result<(), LayerError> {
        let expected = self.expected_diff_id()?;
        let stream_error = |source| LayerError::Stream {
            layer: self.digest.to_owned(),
            source,
        };
        let decoded = self.compression.decoder(stream).map_err(stream_error)?;
        let hashing = HashingReader {
            inner: BufReader::with_capacity(READ_BUFFER, decoded),
            // Without a diff_id to check, hashing would be wasted time.
            hasher: expected.is_some().then(Sha256Stream::new),
        };
        let mut archive = tar::Archive::new(hashing);
        let layer_start = NodeId(tree.nodes.len() as u32);
        let backing = backing.map(|file| tree.arena.attach(file));
        let mut applier = Applier {
            tree,
            layer: self.digest,
            layer_start,
            kept_lower: HashSet::new(),
            holes: 0,
            backing,
        };
        for entry in archive.entries().map_err(stream_error)? {
            applier.apply(entry.map_err(stream_error)?)?;
        }
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
        match (expected, rest.digest()) {
            (Some(expected), Some(actual)) if expected != actual => {
                Err(LayerError::DiffIdMismatch {
                    layer: self.digest.to_owned(),
                    expected,
                    actual,
                })
            }
            _ => Ok(()),
        }
    }

    fn expected_diff_id(&self) -> Result<Option<String>, LayerError> {
        let Some(diff_id) = self.diff_id else {
            return Ok(None);
        };
        let lowercase = diff_id.to_ascii_lowercase();
        if !lowercase.starts_with("sha256:") {
            return Err(LayerError::DiffIdAlgorithm {
                layer: self.digest.to_owned(),
                diff_id: diff_id.to_owned(),
            });
        }
        Ok(Some(lowercase))
    }
}

/// Passes a stream through while hashing it, if given a hasher.
struct HashingReader<R> {
    inner: R,
    hasher: Option<Sha256Stream>,
}

impl<R> HashingReader<R> {
    fn digest(self) -> Option<String> {
        let mut digest = String::from("sha256:");
        for byte in self.hasher?.finalize() {
            write!(digest, "{byte:02x}").expect("writing to a String cannot fail");
        }
        Some(digest)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..read]);
        }
        Ok(read)
    }
}

/// The state of one layer being applied.
struct Applier<'t> {
    tree: &'t mut Tree,
    layer: &'t str,
    /// Nodes from this id on were created by this layer.
    layer_start: NodeId,
    /// Entries this layer wrote that name nodes of lower layers (directories
    /// it merged with, hard links to lower files): opaque directories and
    /// whiteouts must keep them although their nodes are older.
    kept_lower: HashSet<(NodeId, Vec<u8>)>,
    /// Bytes of holes the layer's sparse files hold so far.
    holes: u64,
    /// The arena's number for the file holding the uncompressed stream.
    backing: Option<u32>,
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let mut records = self.records(&mut entry)?;
        let entry_type = entry.header().entry_type();
        let sparse = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                std::mem::take(&mut records.sparse)
                    .sparse()
                    .map_err(|source| LayerError::Sparse {
                        layer: self.layer.to_owned(),
                        entry: shown(&entry.path_bytes()),
                        source,
                    })?
            }
            _ => None,
        };
        let path = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => entry.path_bytes().into_owned(),
        };
        let (parent, name) = split_last(&path);
        if name == OPAQUE_WHITEOUT {
            return self.make_opaque(parent);
        }
        if name.starts_with(AUFS_META_PREFIX) {
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            self.white_out(parent, hidden);
            return Ok(());
        }
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => match sparse {
                Some(sparse) => self.sparse_file(&mut entry, &path, sparse)?,
                None => {
                    let size = entry.size();
                    match self.backing {
                        Some(file) if size > SMALL_CONTENTS => {
                            self.backed_file(&mut entry, &path, size, file)?
                        }
                        _ => self.file(&mut entry, &path, size)?,
                    }
                }
            },
            tar::EntryType::GNUSparse => {
                // The tar crate expands the old GNU sparse header itself:
                // `size()` is the real size, the header's the stored data.
                let real_size = entry.size();
                let stored = entry
                    .header()
                    .entry_size()
                    .map_err(|source| self.header_error(&path, source))?;
                self.count_holes(&path, real_size.saturating_sub(stored))?;
                self.file(&mut entry, &path, real_size)?
            }
            tar::EntryType::Directory => Kind::directory(),
            tar::EntryType::Symlink => {
                let target = self.link_name(&entry, &path)?;
                if target.len() > MAX_PATH_LEN {
                    return Err(LayerError::LinkTarget {
                        layer: self.layer.to_owned(),
                        entry: shown(&path),
                        source: TreeError::PathTooLong {
                            path: shown(&target),
                            length: target.len(),
                        },
                    });
                }
                Kind::Symlink(target)
            }
            tar::EntryType::Char => Kind::CharDevice(self.device(&entry, &path)?),
            tar::EntryType::Block => Kind::BlockDevice(self.device(&entry, &path)?),
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Link => {
                let target = self.link_name(&entry, &path)?;
                limits::check_path(&target).map_err(|source| LayerError::LinkTarget {
                    layer: self.layer.to_owned(),
                    entry: shown(&path),
                    source,
                })?;
                return self.hard_link(&path, &target);
            }
            tar::EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(LayerError::UnsupportedEntry {
                    layer: self.layer.to_owned(),
                    entry: shown(&path),
                    entry_type: format!("{other:?}"),
                });
            }
        };
        let metadata = self.metadata(&entry, &path, records)?;
        self.place(&path, |tree, resolution| {
            tree.insert_at(resolution, kind, metadata, &path)
        })
    }

    /// Stores `size` bytes of contents read from `contents` as a file.
    fn file(&mut self, contents: impl Read, path: &[u8], size: u64) -> Result<Kind, LayerError> {
        let blob = self
            .tree
            .store_from(contents, size)
            .map_err(|error| match error {
                StoreError::Read(source) => LayerError::ContentsStream {
                    layer: self.layer.to_owned(),
                    entry: shown(path),
                    source,
                },
                StoreError::Spill(source) => LayerError::ContentsStorage {
                    layer: self.layer.to_owned(),
                    entry: shown(path),
                    source,
                },
            })?;
        if blob.len() != size {
            return Err(LayerError::Truncated {
                layer: self.layer.to_owned(),
                entry: shown(path),
                expected: size,
                actual: blob.len(),
            });
        }
        Ok(Kind::File(blob))
    }

    /// A file whose `size` bytes of contents the backing file `file` holds
    /// where the entry's data lies in the stream; the data is read past
    /// (and so hashed and, when the backing is being written, copied).
    fn backed_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &[u8],
        size: u64,
        file: u32,
    ) -> Result<Kind, LayerError> {
        let offset = entry.raw_file_position();
        let read =
            io::copy(entry, &mut io::sink()).map_err(|source| LayerError::ContentsStream {
                layer: self.layer.to_owned(),
                entry: shown(path),
                source,
            })?;
        if read != size {
            return Err(LayerError::Truncated {
                layer: self.layer.to_owned(),
                entry: shown(path),
                expected: size,
                actual: read,
            });
        }
        Ok(Kind::File(self.tree.arena.reference(file, offset, size)))
    }

    /// A GNU PAX sparse file: its segments with zeros around them.
    fn sparse_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &[u8],
        sparse: Sparse,
    ) -> Result<Kind, LayerError> {
        let sparse_error = |source| LayerError::Sparse {
            layer: self.layer.to_owned(),
            entry: shown(path),
            source,
        };
        let size = entry.size();
        let (segments, stored) = match sparse.map {
            Map::Records(segments) => (segments, size),
            Map::InData => {
                let (segments, map_len) =
                    sparse::read_map(entry, sparse.real_size).map_err(sparse_error)?;
                (segments, size - map_len)
            }
        };
        let mapped = sparse::mapped(&segments);
        if mapped != stored {
            return Err(sparse_error(SparseError::DataSize { mapped, stored }));
        }
        self.count_holes(path, sparse.real_size - mapped)?;
        let expanded = sparse::Expand::new(entry, &segments, sparse.real_size);
        self.file(expanded, path, sparse.real_size)
    }

    /// Adds a sparse file's holes to the layer's, within [`MAX_HOLE_BYTES`].
    fn count_holes(&mut self, path: &[u8], holes: u64) -> Result<(), LayerError> {
        self.holes = self.holes.saturating_add(holes);
        if self.holes > MAX_HOLE_BYTES {
            return Err(LayerError::Holes {
                layer: self.layer.to_owned(),
                entry: shown(path),
            });
        }
        Ok(())
    }

    fn hard_link(&mut self, path: &[u8], target_path: &[u8]) -> Result<(), LayerError> {
        let target =
            self.tree
                .lookup(target_path)
                .ok_or_else(|| LayerError::HardLinkTargetMissing {
                    layer: self.layer.to_owned(),
                    entry: shown(path),
                    target: shown(target_path),
                })?;
        self.place(path, |tree, resolution| {
            tree.hard_link_at(resolution, target, path)
        })
    }

    /// Resolves `path` (creating missing parents), lets `put` write the
    /// entry there and remembers what it wrote.
    fn place(
        &mut self,
        path: &[u8],
        put: impl FnOnce(&mut Tree, Resolution) -> Result<NodeId, TreeError>,
    ) -> Result<(), LayerError> {
        let placement = |source| LayerError::Placement {
            layer: self.layer.to_owned(),
            entry: shown(path),
            source,
        };
        let resolution = self.tree.resolve_creating(path).map_err(placement)?;
        let (dir, name) = (resolution.dir, resolution.name.clone());
        let id = put(self.tree, resolution).map_err(placement)?;
        self.note_written(dir, name, id);
        Ok(())
    }

    /// Remembers an entry naming a lower layer's node; entries naming new
    /// nodes are recognised by their id.
    fn note_written(&mut self, dir: NodeId, name: Option<Vec<u8>>, id: NodeId) {
        if let Some(name) = name
            && id < self.layer_start
        {
            self.kept_lower.insert((dir, name));
        }
    }

    fn written_here(&self, dir: NodeId, name: &[u8], id: NodeId) -> bool {
        id >= self.layer_start || self.kept_lower.contains(&(dir, name.to_vec()))
    }

    /// `.wh.NAME`: deletes NAME unless this layer wrote it.
    fn white_out(&mut self, parent: &[u8], name: &[u8]) {
        let Ok(dir) = self.tree.resolve_directory(parent) else {
            return;
        };
        if let Some(id) = self.tree.directory(dir).get(name)
            && !self.written_here(dir, name, id)
        {
            self.tree.detach(dir, name);
        }
    }

    /// `.wh..wh..opq`: deletes everything below the directory that this
    /// layer did not write.
    fn make_opaque(&mut self, path: &[u8]) -> Result<(), LayerError> {
        let Ok(dir) = self.tree.resolve_directory(path) else {
            return Ok(());
        };
        let mut pending = vec![dir];
        while let Some(dir) = pending.pop() {
            let entries: Vec<(Vec<u8>, NodeId)> = self
                .tree
                .directory(dir)
                .entries()
                .map(|(name, id)| (name.to_vec(), id))
                .collect();
            for (name, id) in entries {
                if !self.written_here(dir, &name, id) {
                    self.tree.detach(dir, &name);
                } else if id < self.layer_start
                    && matches!(self.tree.node(id).kind, Kind::Directory(_))
                {
                    pending.push(id);
                }
            }
        }
        Ok(())
    }

    /// The entry's PAX records that ossify applies.
    fn records<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<pax::Records, LayerError> {
        let path = entry.path_bytes().into_owned();
        let mut records = pax::Records::default();
        let Some(extensions) = entry
            .pax_extensions()
            .map_err(|source| self.header_error(&path, source))?
        else {
            return Ok(records);
        };
        for extension in extensions {
            let extension = extension.map_err(|source| self.header_error(&path, source))?;
            records
                .take(extension.key_bytes(), extension.value_bytes())
                .map_err(|source| LayerError::Pax {
                    layer: self.layer.to_owned(),
                    entry: shown(&path),
                    source,
                })?;
        }
        Ok(records)
    }

    /// The header's metadata with the PAX records' over it.
    fn metadata<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        path: &[u8],
        records: pax::Records,
    ) -> Result<Metadata, LayerError> {
        let header_error = |source| self.header_error(path, source);
        let header = entry.header();
        let header_id = |id, field| id_field(id, field).map_err(header_error);
        Ok(Metadata {
            mode: header.mode().map_err(header_error)? & 0o7777,
            uid: match records.uid {
                Some(uid) => uid,
                None => header_id(header.uid(), "uid")?,
            },
            gid: match records.gid {
                Some(gid) => gid,
                None => header_id(header.gid(), "gid")?,
            },
            mtime: match records.mtime {
                Some(mtime) => mtime,
                None => header.mtime().map_err(header_error)?,
            },
            xattrs: records.xattrs,
        })
    }

    fn link_name<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        path: &[u8],
    ) -> Result<Vec<u8>, LayerError> {
        match entry.link_name_bytes() {
            Some(target) if !target.is_empty() => Ok(target.into_owned()),
            _ => Err(LayerError::MissingLinkName {
                layer: self.layer.to_owned(),
                entry: shown(path),
            }),
        }
    }

    fn device<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        path: &[u8],
    ) -> Result<Device, LayerError> {
        let header = entry.header();
        let header_error = |source| self.header_error(path, source);
        let major = header.device_major().map_err(header_error)?;
        let minor = header.device_minor().map_err(header_error)?;
        match (major, minor) {
            (Some(major), Some(minor)) => Ok(Device { major, minor }),
            _ => Err(header_error(io::Error::new(
                io::ErrorKind::InvalidData,
                "a device entry in a header with no device numbers (neither ustar nor GNU)",
            ))),
        }
    }

    fn header_error(&self, path: &[u8], source: io::Error) -> LayerError {
        LayerError::Header {
            layer: self.layer.to_owned(),
            entry: shown(path),
            source,
        }
    }
}

/// Splits a path into its parent and last component, ignoring trailing `/`.
fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    let end = path
        .iter()
        .rposition(|&byte| byte != b'/')
        .map_or(0, |i| i + 1);
    let trimmed = &path[..end];
    match trimmed.iter().rposition(|&byte| byte == b'/') {
        Some(slash) => (&trimmed[..slash], &trimmed[slash + 1..]),
        None => (b"", trimmed),
    }
}

/// A header uid or gid; Linux ids are 32 bits, so a wider one is corrupt.
fn id_field(id: io::Result<u64>, field: &str) -> io::Result<u32> {
    u32::try_from(id?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the {field} does not fit 32 bits"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header with `name`, of `kind`, holding `size` bytes.
    fn header(name: &str, kind: tar::EntryType, size: usize) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(size as u64);
        header.set_cksum();
        header
    }

    /// A layer of one PAX header holding `records`, then an entry `name`
    /// of `kind` it applies to.
    fn with_pax(records: &str, name: &str, kind: tar::EntryType) -> Vec<u8> {
        let mut layer = Vec::new();
        for (header, data) in [
            (
                header("PaxHeader", tar::EntryType::XHeader, records.len()),
                records.as_bytes(),
            ),
            (header(name, kind, 0), &b""[..]),
        ] {
            layer.extend_from_slice(header.as_bytes());
            layer.extend_from_slice(data);
            layer.resize(layer.len().next_multiple_of(512), 0);
        }
        layer.extend_from_slice(&[0; 1024]);
        layer
    }

    fn plain(digest: &str) -> Layer<'_> {
        Layer {
            digest,
            compression: Compression::None,
            diff_id: None,
        }
    }

    #[test]
    fn pax_value_with_a_newline_is_refused_not_split_into_a_record() {
        // One record whose value holds a newline and, after it, what reads
        // as a record of its own if records are split at newlines (as the
        // tar crate splits them): a path that makes the entry a whiteout of
        // etc/passwd. Readers that frame records by their length (Go's, so
        // Docker's) see a comment only.
        let inner = "23 path=etc/.wh.passwd\n";
        let outer_rest = format!(" comment=\n{inner}");
        let outer = format!("{}{outer_rest}", outer_rest.len() + 2);
        assert_eq!(
            outer.split_once(' ').unwrap().0.parse::<usize>().unwrap(),
            outer.len()
        );
        let layer = with_pax(&outer, "harmless", tar::EntryType::Regular);
        let mut tree = Tree::new(0);
        let passwd = tree.store_bytes(b"root").unwrap();
        tree.insert("etc/passwd", Kind::File(passwd), Metadata::new(0o644, 0))
            .unwrap();
        let error = plain("sha256:lower")
            .apply(&mut tree, &layer[..])
            .unwrap_err();
        assert!(matches!(&error, LayerError::Header { .. }), "{error:?}");
        assert!(
            tree.lookup("etc/passwd").is_some(),
            "the smuggled whiteout was applied"
        );
    }

    #[test]
    fn nul_in_a_pax_path_or_link_target_is_refused() {
        for (key, kind) in [
            ("path", tar::EntryType::Regular),
            ("linkpath", tar::EntryType::Symlink),
        ] {
            let rest = format!(" {key}=a\0b\n");
            let record = format!("{}{rest}", rest.len() + 2);
            let layer = with_pax(&record, "entry", kind);
            let mut tree = Tree::new(0);
            let error = plain("sha256:nul")
                .apply(&mut tree, &layer[..])
                .unwrap_err();
            assert!(
                matches!(&error, LayerError::Pax { source: PaxError::Nul { record }, .. } if record == key),
                "{key}: {error:?}"
            );
            assert_eq!(tree.walk().count(), 0, "{key}: a NUL reached the tree");
        }
    }

    #[test]
    fn split_last_component() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"a/b/"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(split_last(b"/"), (&b""[..], &b""[..]));
    }
}

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
use std::io::{self, BufReader, Read};

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::resolve::{Resolution, lossy};
use super::{Compression, Device, Kind, Metadata, NodeId, Tree, TreeError};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping, never files of the image.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
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
    /// Contents of an entry could not be read or stored.
    #[error(
        "layer {layer}: entry `{entry}`: reading its contents into temporary storage failed (a corrupt blob, or $TMPDIR is full)"
    )]
    Contents {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// The read or write error.
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
    /// A PAX header the tar reader cannot frame. It splits records at
    /// newlines, so a value holding one (legal: records are length-prefixed)
    /// breaks its record, and the tail would be read as a record of its own,
    /// a path or link target that other readers never see.
    #[error(
        "layer {layer}: entry `{entry}` has a PAX header ossify cannot read (a malformed record, or a value holding a newline); the layer cannot be applied as other tools would apply it"
    )]
    UnreadablePax {
        /// The layer's digest.
        layer: String,
        /// The entry's path as the tar reader took it.
        entry: String,
    },
    /// A PAX record ossify needs is malformed.
    #[error(
        "layer {layer}: entry `{entry}` has a malformed PAX record `{record}`; the blob is corrupt"
    )]
    PaxRecord {
        /// The layer's digest.
        layer: String,
        /// The entry's path in the layer.
        entry: String,
        /// The record's key.
        record: String,
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
    /// Applies the layer read from `stream` over `tree` and returns the
    /// digest of its uncompressed stream (`sha256:<hex>`).
    ///
    /// The whole stream is consumed, also past the tar's end-of-archive
    /// blocks, so the digest covers it all and the compressed format's own
    /// checks (gzip's CRC) run.
    pub fn apply(&self, tree: &mut Tree, stream: impl Read) -> Result<String, LayerError> {
        let expected = self.expected_diff_id()?;
        let stream_error = |source| LayerError::Stream {
            layer: self.digest.to_owned(),
            source,
        };
        let decoded = self.compression.decoder(stream).map_err(stream_error)?;
        let hashing = HashingReader {
            inner: BufReader::with_capacity(READ_BUFFER, decoded),
            hasher: Sha256::new(),
        };
        let mut archive = tar::Archive::new(hashing);
        let layer_start = NodeId(tree.nodes.len() as u32);
        let mut applier = Applier {
            tree,
            layer: self.digest,
            layer_start,
            kept_lower: HashSet::new(),
        };
        for entry in archive.entries().map_err(stream_error)? {
            applier.apply(entry.map_err(stream_error)?)?;
        }
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(stream_error)?;
        let actual = rest.digest();
        match expected {
            Some(expected) if expected != actual => Err(LayerError::DiffIdMismatch {
                layer: self.digest.to_owned(),
                expected,
                actual,
            }),
            _ => Ok(actual),
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

/// Passes a stream through while hashing it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R> HashingReader<R> {
    fn digest(self) -> String {
        let mut digest = String::from("sha256:");
        for byte in self.hasher.finalize() {
            write!(digest, "{byte:02x}").expect("writing to a String cannot fail");
        }
        digest
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(&buf[..read]);
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
}

impl Applier<'_> {
    fn apply<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let path = entry.path_bytes().into_owned();
        self.check_pax_framing(&mut entry, &path)?;
        // Only a PAX record can put a NUL in a path; no file system can hold
        // one, and Go's reader (Docker's) refuses it.
        if path.contains(&0) {
            return Err(self.bad_pax_record(&path, "path"));
        }
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
        let entry_type = entry.header().entry_type();
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let expected = entry.size();
                let blob = self.tree.store(&mut entry, expected).map_err(|source| {
                    LayerError::Contents {
                        layer: self.layer.to_owned(),
                        entry: lossy(&path),
                        source,
                    }
                })?;
                if blob.len() != expected {
                    return Err(LayerError::Truncated {
                        layer: self.layer.to_owned(),
                        entry: lossy(&path),
                        expected,
                        actual: blob.len(),
                    });
                }
                Kind::File(blob)
            }
            tar::EntryType::Directory => Kind::directory(),
            tar::EntryType::Symlink => Kind::Symlink(self.link_name(&entry, &path)?),
            tar::EntryType::Char => Kind::CharDevice(self.device(&entry, &path)?),
            tar::EntryType::Block => Kind::BlockDevice(self.device(&entry, &path)?),
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Link => {
                let target = self.link_name(&entry, &path)?;
                return self.hard_link(&path, &target);
            }
            tar::EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(LayerError::UnsupportedEntry {
                    layer: self.layer.to_owned(),
                    entry: lossy(&path),
                    entry_type: format!("{other:?}"),
                });
            }
        };
        let metadata = self.metadata(&mut entry, &path)?;
        self.place(&path, |tree, resolution| {
            tree.insert_at(resolution, kind, metadata, &path)
        })
    }

    /// Fails unless every PAX record of `entry` parses, before its path,
    /// which may come from those records, is used (see
    /// [`LayerError::UnreadablePax`]).
    fn check_pax_framing<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &[u8],
    ) -> Result<(), LayerError> {
        let unreadable = || LayerError::UnreadablePax {
            layer: self.layer.to_owned(),
            entry: lossy(path),
        };
        let Some(records) = entry.pax_extensions().map_err(|_| unreadable())? else {
            return Ok(());
        };
        for record in records {
            record.map_err(|_| unreadable())?;
        }
        Ok(())
    }

    fn hard_link(&mut self, path: &[u8], target_path: &[u8]) -> Result<(), LayerError> {
        let target =
            self.tree
                .lookup(target_path)
                .ok_or_else(|| LayerError::HardLinkTargetMissing {
                    layer: self.layer.to_owned(),
                    entry: lossy(path),
                    target: lossy(target_path),
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
            entry: lossy(path),
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

    fn metadata<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &[u8],
    ) -> Result<Metadata, LayerError> {
        let header_error = |source| self.header_error(path, source);
        let header = entry.header();
        let mut metadata = Metadata {
            mode: header.mode().map_err(header_error)? & 0o7777,
            uid: id_field(header.uid(), "uid").map_err(header_error)?,
            gid: id_field(header.gid(), "gid").map_err(header_error)?,
            mtime: header.mtime().map_err(header_error)?,
            xattrs: Default::default(),
        };
        let Some(extensions) = entry.pax_extensions().map_err(header_error)? else {
            return Ok(metadata);
        };
        for extension in extensions {
            let extension = extension.map_err(header_error)?;
            let key = extension.key_bytes();
            let value = extension.value_bytes();
            let bad_record = || self.bad_pax_record(path, &lossy(key));
            if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                let name = String::from_utf8(name.to_vec()).map_err(|_| bad_record())?;
                metadata.xattrs.insert(name, value.to_vec());
                continue;
            }
            match key {
                b"uid" => metadata.uid = pax_id(value).ok_or_else(bad_record)?,
                b"gid" => metadata.gid = pax_id(value).ok_or_else(bad_record)?,
                b"mtime" => metadata.mtime = pax_time(value).ok_or_else(bad_record)?,
                _ => {}
            }
        }
        Ok(metadata)
    }

    fn link_name<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        path: &[u8],
    ) -> Result<Vec<u8>, LayerError> {
        match entry.link_name_bytes() {
            Some(target) if target.contains(&0) => Err(self.bad_pax_record(path, "linkpath")),
            Some(target) if !target.is_empty() => Ok(target.into_owned()),
            _ => Err(LayerError::MissingLinkName {
                layer: self.layer.to_owned(),
                entry: lossy(path),
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

    fn bad_pax_record(&self, path: &[u8], record: &str) -> LayerError {
        LayerError::PaxRecord {
            layer: self.layer.to_owned(),
            entry: lossy(path).replace('\0', "\\0"),
            record: record.to_owned(),
        }
    }

    fn header_error(&self, path: &[u8], source: io::Error) -> LayerError {
        LayerError::Header {
            layer: self.layer.to_owned(),
            entry: lossy(path),
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

fn pax_id(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A PAX time (`seconds[.fraction]`), whole seconds; times before 1970 are 0.
fn pax_time(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let seconds = text.split_once('.').map_or(text, |(seconds, _)| seconds);
    match seconds.strip_prefix('-') {
        Some(before_epoch) => before_epoch.parse::<u64>().ok().map(|_| 0),
        None => seconds.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_component() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"a/b/"), (&b"a"[..], &b"b"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
        assert_eq!(split_last(b"/"), (&b""[..], &b""[..]));
    }

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

    #[test]
    fn pax_value_with_a_newline_is_refused_not_split_into_a_record() {
        // One record whose value holds a newline and, after it, what reads
        // as a record of its own if records are split at newlines: a path
        // that makes the entry a whiteout of etc/passwd. Readers that frame
        // records by their length (Go's, so Docker's) see a comment only.
        let inner = "23 path=etc/.wh.passwd\n";
        let outer_rest = format!(" comment=\n{inner}");
        let outer = format!("{}{outer_rest}", outer_rest.len() + 2);
        assert_eq!(
            outer.split_once(' ').unwrap().0.parse::<usize>().unwrap(),
            outer.len()
        );
        let mut layer = Vec::new();
        for (header, data) in [
            (
                header("PaxHeader", tar::EntryType::XHeader, outer.len()),
                outer.as_bytes(),
            ),
            (header("harmless", tar::EntryType::Regular, 0), &b""[..]),
        ] {
            layer.extend_from_slice(header.as_bytes());
            layer.extend_from_slice(data);
            layer.resize(layer.len().next_multiple_of(512), 0);
        }
        layer.extend_from_slice(&[0; 1024]);

        let mut tree = Tree::new(0);
        let passwd = tree.store_bytes(b"root").unwrap();
        tree.insert("etc/passwd", Kind::File(passwd), Metadata::new(0o644, 0))
            .unwrap();
        let lower = Layer {
            digest: "sha256:lower",
            compression: Compression::None,
            diff_id: None,
        };
        let error = lower.apply(&mut tree, &layer[..]).unwrap_err();
        assert!(
            matches!(&error, LayerError::UnreadablePax { entry, .. } if entry == "etc/.wh.passwd"),
            "{error:?}"
        );
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
            let mut layer = Vec::new();
            for (header, data) in [
                (
                    header("PaxHeader", tar::EntryType::XHeader, record.len()),
                    record.as_bytes(),
                ),
                (header("entry", kind, 0), &b""[..]),
            ] {
                layer.extend_from_slice(header.as_bytes());
                layer.extend_from_slice(data);
                layer.resize(layer.len().next_multiple_of(512), 0);
            }
            layer.extend_from_slice(&[0; 1024]);
            let mut tree = Tree::new(0);
            let error = Layer {
                digest: "sha256:nul",
                compression: Compression::None,
                diff_id: None,
            }
            .apply(&mut tree, &layer[..])
            .unwrap_err();
            assert!(
                matches!(&error, LayerError::PaxRecord { record, .. } if record == key),
                "{key}: {error:?}"
            );
            assert_eq!(tree.walk().count(), 0, "{key}: a NUL reached the tree");
        }
    }

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"1700000000.123456"), Some(1_700_000_000));
        assert_eq!(pax_time(b"42"), Some(42));
        assert_eq!(pax_time(b"-5.5"), Some(0));
        assert_eq!(pax_time(b"soon"), None);
    }
}

//! cpio "newc" archives of a tree: the format the kernel unpacks as an
//! initramfs.
//!
//! Written here rather than through a crate because the format is small and
//! every field must be under control for reproducible output. Inode numbers
//! count up from 1 in walk order; hard links share one inode number and carry
//! the contents on the last link only, the newc convention that both the
//! kernel and GNU cpio rely on. Device numbers of the archive itself are 0;
//! those of device nodes go in the `rdev` fields.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};

use super::{WriteError, clamp_mtime};
use crate::tree::{Blob, Device, Entry, Kind, NodeId, Tree};

const MAGIC: &[u8] = b"070701";
const TRAILER: &[u8] = b"TRAILER!!!";
const FORMAT: &str = "cpio newc";
/// Output buffer; data is copied straight into it from the tree's arena.
const BUFFER: usize = 256 * 1024;

/// Where an archive goes. A sink may take some files' contents apart from
/// the stream of bytes, to put in a form of them it holds already (a
/// compressor's output made ahead of time).
pub trait Sink: Write + Sized {
    /// Whether the contents of a file of `len` bytes go to
    /// [`Sink::contents`] rather than through `write`.
    fn takes_contents(&self, _len: u64) -> bool {
        false
    }

    /// Writes the contents of `blob`, a file of `tree`.
    fn contents(&mut self, tree: &Tree, blob: &Blob) -> io::Result<()> {
        tree.contents(blob).copy_to(self).map(drop)
    }
}

/// Any writer, as a sink that takes every byte through `write`.
struct Plain<W>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Sink for Plain<W> {}

/// Writes `tree` as a newc cpio archive to `out` and returns `out`. Mtimes
/// later than `source_date_epoch` are written as it.
pub fn write<W: Write>(tree: &Tree, out: W, source_date_epoch: u64) -> Result<W, WriteError> {
    write_to_sink(tree, Plain(out), source_date_epoch).map(|plain| plain.0)
}

/// [`write`] to a [`Sink`].
pub fn write_to_sink<S: Sink>(
    tree: &Tree,
    out: S,
    source_date_epoch: u64,
) -> Result<S, WriteError> {
    let mut writer = CpioWriter {
        tree,
        source_date_epoch,
        out: BufWriter::with_capacity(BUFFER, out),
        next_inode: 1,
        links: HashMap::new(),
    };
    for entry in tree.walk() {
        writer.append(&entry)?;
    }
    writer.append_trailer()?;
    writer
        .out
        .into_inner()
        .map_err(|error| WriteError::io(TRAILER, error.into_error()))
}

/// One newc header's fields.
struct Header<'a> {
    inode: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u64,
    size: u64,
    rdev: Device,
    name: &'a [u8],
}

/// A hard-linked node being written: its inode and links still to come.
struct PendingLinks {
    inode: u32,
    remaining: u32,
}

struct CpioWriter<'t, W: Sink> {
    tree: &'t Tree,
    source_date_epoch: u64,
    out: BufWriter<W>,
    next_inode: u32,
    links: HashMap<NodeId, PendingLinks>,
}

impl<W: Sink> CpioWriter<'_, W> {
    fn append(&mut self, entry: &Entry<'_>) -> Result<(), WriteError> {
        let node = entry.node;
        let (inode, last_link) = self.inode(entry);
        let size = match &node.kind {
            Kind::File(blob) if last_link => blob.len(),
            Kind::Symlink(target) => target.len() as u64,
            _ => 0,
        };
        let rdev = match node.kind {
            Kind::CharDevice(device) | Kind::BlockDevice(device) => device,
            _ => Device::NONE,
        };
        let nlink = match &node.kind {
            Kind::Directory(dir) => {
                let subdirectories = dir
                    .entries()
                    .filter(|&(_, id)| matches!(self.tree.node(id).kind, Kind::Directory(_)))
                    .count();
                2 + subdirectories as u32
            }
            _ => node.links(),
        };
        let header = Header {
            inode,
            mode: node.kind.file_type_bits() | (node.metadata.mode & 0o7777),
            uid: node.metadata.uid,
            gid: node.metadata.gid,
            nlink,
            mtime: clamp_mtime(node.metadata.mtime, self.source_date_epoch),
            size,
            rdev,
            name: &entry.path,
        };
        self.append_header(&header)?;
        let io_error = |source| WriteError::io(&entry.path, source);
        match &node.kind {
            Kind::File(blob) if last_link && self.out.get_ref().takes_contents(size) => {
                self.out.flush().map_err(io_error)?;
                self.out
                    .get_mut()
                    .contents(self.tree, blob)
                    .map_err(io_error)?;
            }
            Kind::File(blob) if last_link => {
                self.tree
                    .contents(blob)
                    .copy_to(&mut self.out)
                    .map_err(io_error)?;
            }
            Kind::Symlink(target) => self.out.write_all(target).map_err(io_error)?,
            _ => {}
        }
        self.out.write_all(padding(size)).map_err(io_error)
    }

    /// The inode number for this entry, and whether it is the last (or only)
    /// name of its node.
    fn inode(&mut self, entry: &Entry<'_>) -> (u32, bool) {
        let links = entry.node.links();
        if links <= 1 {
            return (self.allocate_inode(), true);
        }
        if let Some(pending) = self.links.get_mut(&entry.id) {
            pending.remaining -= 1;
            return (pending.inode, pending.remaining == 0);
        }
        let inode = self.allocate_inode();
        let remaining = links - 1;
        self.links
            .insert(entry.id, PendingLinks { inode, remaining });
        (inode, false)
    }

    fn allocate_inode(&mut self) -> u32 {
        let inode = self.next_inode;
        self.next_inode += 1;
        inode
    }

    fn append_trailer(&mut self) -> Result<(), WriteError> {
        let trailer = Header {
            inode: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
            rdev: Device::NONE,
            name: TRAILER,
        };
        self.append_header(&trailer)
    }

    fn append_header(&mut self, header: &Header<'_>) -> Result<(), WriteError> {
        let field = |field: &'static str, value: u64| {
            u32::try_from(value).map_err(|_| WriteError::Unrepresentable {
                path: String::from_utf8_lossy(header.name).into_owned(),
                field,
                value,
                format: FORMAT,
            })
        };
        let name_size = header.name.len() as u64 + 1;
        let fields = [
            header.inode,
            header.mode,
            header.uid,
            header.gid,
            header.nlink,
            field("mtime", header.mtime)?,
            field("file size", header.size)?,
            // the device holding the archived file: none
            0,
            0,
            header.rdev.major,
            header.rdev.minor,
            field("name length", name_size)?,
            0,
        ];
        let mut bytes = Vec::with_capacity(MAGIC.len() + fields.len() * 8 + header.name.len() + 4);
        bytes.extend_from_slice(MAGIC);
        for value in fields {
            bytes.extend_from_slice(format!("{value:08X}").as_bytes());
        }
        bytes.extend_from_slice(header.name);
        bytes.push(0);
        bytes.extend_from_slice(padding(bytes.len() as u64));
        self.out
            .write_all(&bytes)
            .map_err(|source| WriteError::io(header.name, source))
    }
}

/// The zero bytes that bring `len` to a multiple of 4.
fn padding(len: u64) -> &'static [u8] {
    &[0; 3][..((4 - len % 4) % 4) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Metadata;

    #[test]
    fn one_file_archive_is_exact() {
        let mut tree = Tree::new(0);
        let blob = tree.store_bytes(b"hi").unwrap();
        let metadata = Metadata {
            uid: 1,
            gid: 2,
            ..Metadata::new(0o644, 20)
        };
        tree.insert("f", Kind::File(blob), metadata).unwrap();
        let archive = write(&tree, Vec::new(), 10).unwrap();
        let mut expected = Vec::new();
        // ino mode uid gid nlink mtime(clamped) size devmaj devmin rdevmaj rdevmin namesize check
        expected.extend_from_slice(b"070701");
        expected.extend_from_slice(b"00000001000081A4000000010000000200000001");
        expected
            .extend_from_slice(b"0000000A00000002000000000000000000000000000000000000000200000000");
        expected.extend_from_slice(b"f\0"); // 112 bytes: aligned
        expected.extend_from_slice(b"hi\0\0");
        expected.extend_from_slice(b"070701");
        expected.extend_from_slice(&b"00000000".repeat(4));
        expected.extend_from_slice(b"00000001");
        expected.extend_from_slice(&b"00000000".repeat(6));
        expected.extend_from_slice(b"0000000B00000000");
        expected.extend_from_slice(b"TRAILER!!!\0\0\0\0");
        assert_eq!(
            String::from_utf8_lossy(&archive),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn contents_of_4_gib_do_not_fit() {
        let header = Header {
            inode: 1,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 1 << 32,
            rdev: Device::NONE,
            name: b"huge",
        };
        let tree = Tree::new(0);
        let mut writer = CpioWriter {
            tree: &tree,
            source_date_epoch: 0,
            out: BufWriter::new(Plain(Vec::new())),
            next_inode: 1,
            links: HashMap::new(),
        };
        let error = writer.append_header(&header).unwrap_err();
        assert!(
            matches!(
                error,
                WriteError::Unrepresentable {
                    field: "file size",
                    ..
                }
            ),
            "{error}"
        );
    }
}

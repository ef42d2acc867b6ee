//! What one inode of a [`Tree`](super::Tree) holds.

use std::collections::BTreeMap;

use super::arena::Blob;

/// Identifies a node (an inode) of a tree. Directory entries that share a
/// `NodeId` are hard links to one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub(super) u32);

/// Ownership, permissions, time and extended attributes of a node.
///
/// These are plain values, not requests to the host: representing a file
/// owned by uid 0 or a device node needs no privilege.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and
    /// sticky (0o1000); the file type lives in [`Kind`].
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: u64,
    /// Extended attributes by name, sorted so writers emit them in order.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Metadata {
    /// Metadata owned by root with the given permission bits and mtime.
    pub fn new(mode: u32, mtime: u64) -> Self {
        Metadata {
            mode,
            mtime,
            ..Metadata::default()
        }
    }
}

/// A device number, as in `makedev(major, minor)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// The driver.
    pub major: u32,
    /// The device within the driver.
    pub minor: u32,
}

impl Device {
    /// Device numbers 0:0, which archive headers carry for non-devices.
    pub const NONE: Device = Device { major: 0, minor: 0 };
}

/// The entries of a directory, sorted by name bytes.
///
/// Only the tree changes entries, so that it can keep link counts right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub(super) entries: BTreeMap<Vec<u8>, NodeId>,
}

impl Directory {
    /// The node named `name` in this directory.
    pub fn get(&self, name: &[u8]) -> Option<NodeId> {
        self.entries.get(name).copied()
    }

    /// Entries in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], NodeId)> {
        self.entries.iter().map(|(name, id)| (name.as_slice(), *id))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the directory has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The file type of a node and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory; insert one with `Kind::Directory(Directory::default())`.
    Directory(Directory),
    /// A regular file with its contents.
    File(Blob),
    /// A symbolic link with its target, kept verbatim.
    Symlink(Vec<u8>),
    /// A character device.
    CharDevice(Device),
    /// A block device.
    BlockDevice(Device),
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl Kind {
    /// An empty directory.
    pub fn directory() -> Kind {
        Kind::Directory(Directory::default())
    }

    /// The `S_IFMT` bits of this file type, as in `st_mode`.
    pub fn file_type_bits(&self) -> u32 {
        match self {
            Kind::Directory(_) => 0o040000,
            Kind::File(_) => 0o100000,
            Kind::Symlink(_) => 0o120000,
            Kind::CharDevice(_) => 0o020000,
            Kind::BlockDevice(_) => 0o060000,
            Kind::Fifo => 0o010000,
            Kind::Socket => 0o140000,
        }
    }
}

/// One inode: its kind, its metadata, and how many entries name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What the node is and holds.
    pub kind: Kind,
    /// Ownership, mode, time and xattrs.
    pub metadata: Metadata,
    pub(super) links: u32,
}

impl Node {
    /// The number of directory entries naming this node (its hard links).
    pub fn links(&self) -> u32 {
        self.links
    }
}

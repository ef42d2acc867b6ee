//! The first pass over the tree: inode numbers, directory entries, link
//! counts, xattrs, and which blocks of each file hold data. Contents are
//! read here once to find the all-zero blocks (holes) and to feed the
//! digest the UUID is derived from; the image's size depends on both, and
//! every checksum on the UUID, so this must come before any block is
//! placed. Writing reads the contents a second time.

use std::collections::{BTreeMap, btree_map};
use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::Ext4Error;
use super::allocator::Run;
use super::directory::{DirEntry, file_type};
use super::extent::{MAX_LEN, tree_blocks};
use super::geometry::BLOCK_SIZE;
use super::inode::MAX_TIME;
use super::superblock::FIRST_INODE;
use super::xattr::{self, Attr, Refused};
use crate::tree::{Blob, Device, Kind, Node, NodeId, Tree};
use crate::write::{clamp_mtime, is_zero};

/// The root directory's inode.
pub const ROOT_INODE: u32 = 2;
/// Hard links an inode may have; directories beyond it record 1.
const MAX_LINKS: u32 = 65000;
/// Symlink targets shorter than this live in the inode.
pub const FAST_SYMLINK_MAX: usize = 60;
/// The longest symlink target: Linux's `PATH_MAX` less its NUL.
const MAX_SYMLINK: usize = 4095;
/// The largest file 32-bit logical block numbers address.
const MAX_FILE_SIZE: u64 = (1 << 32) * BLOCK_SIZE - BLOCK_SIZE;
/// Blocks mke2fs gives `lost+found` so that e2fsck can reconnect files
/// without allocating.
const LOST_FOUND_BLOCKS: u64 = 4;
/// Bytes read from a file at a time.
const READ_CHUNK: usize = 1 << 20;

/// What an inode holds.
#[derive(Debug)]
pub enum Content<'t> {
    /// A directory's entries, in at least `min_blocks` blocks.
    Directory {
        /// `.`, `..`, then the names in byte order.
        entries: Vec<DirEntry>,
        /// Blocks to give it even if fewer hold the entries.
        min_blocks: u64,
    },
    /// A regular file and the runs of its logical blocks that hold data.
    File {
        /// The contents.
        blob: &'t Blob,
        /// Logical block runs with data; the rest are holes.
        runs: Vec<Run>,
    },
    /// A symbolic link's target.
    Symlink(Vec<u8>),
    /// A character or block device.
    Device(Device),
    /// A FIFO or socket.
    Nothing,
}

/// One inode, ready to be placed.
#[derive(Debug)]
pub struct Planned<'t> {
    /// Its number.
    pub ino: u32,
    /// A path naming it, for messages.
    pub path: String,
    /// File type and permission bits.
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Every timestamp.
    pub time: u64,
    /// Hard links.
    pub links: u16,
    /// What it holds.
    pub content: Content<'t>,
    /// Its xattrs as stored.
    pub attrs: Vec<Attr>,
}

impl Planned<'_> {
    /// Whether its xattrs need a block of their own.
    pub fn xattr_block(&self) -> bool {
        !xattr::fit_inline(&self.attrs)
    }

    /// Blocks it will hold, an upper bound of what placement gives it.
    fn blocks_bound(&self) -> u64 {
        let data = match &self.content {
            Content::Directory {
                entries,
                min_blocks,
            } => {
                // An index adds a root block, and keeping equal hashes in
                // one leaf may leave a leaf less full.
                (super::directory::linear_blocks(entries) + 2).max(*min_blocks)
            }
            Content::File { runs, .. } => {
                let blocks: u64 = runs.iter().map(|run| run.len).sum();
                // Each run splits at most every MAX_LEN blocks and at each
                // superblock copy it crosses, which is less often.
                let extents = runs.len() as u64 + 2 * blocks.div_ceil(MAX_LEN);
                blocks + tree_blocks(extents as usize)
            }
            Content::Symlink(target) => u64::from(target.len() >= FAST_SYMLINK_MAX),
            Content::Device(_) | Content::Nothing => 0,
        };
        data + u64::from(self.xattr_block())
    }
}

/// Every inode of the image in number order, and what sizing needs.
#[derive(Debug)]
pub struct Plan<'t> {
    /// Inodes by increasing number: the root, then 11 on.
    pub inodes: Vec<Planned<'t>>,
    /// Blocks of contents, directories, extent trees and xattr blocks at
    /// most.
    pub data_blocks: u64,
    /// A digest of everything the image records.
    pub digest: [u8; 32],
}

/// Inode numbers in walk order (a hard-linked node keeps its first), and
/// each directory's parent.
struct Numbering {
    numbers: BTreeMap<NodeId, u32>,
    /// Each node once, under its first path.
    order: Vec<(String, NodeId)>,
    parents: BTreeMap<NodeId, NodeId>,
    /// Whether the writer adds `lost+found` (inode 11): the tree has none.
    own_lost_found: bool,
}

impl Numbering {
    fn of(tree: &Tree) -> Numbering {
        let root = tree.root();
        let own_lost_found = directory(tree.node(root)).get(b"lost+found").is_none();
        let mut next = FIRST_INODE + u32::from(own_lost_found);
        let mut numbers = BTreeMap::from([(root, ROOT_INODE)]);
        let mut order = vec![(String::new(), root)];
        for entry in tree.walk() {
            if let btree_map::Entry::Vacant(vacant) = numbers.entry(entry.id) {
                vacant.insert(next);
                next += 1;
                order.push((String::from_utf8_lossy(&entry.path).into_owned(), entry.id));
            }
        }
        let mut parents = BTreeMap::from([(root, root)]);
        for (_, id) in &order {
            if let Kind::Directory(dir) = &tree.node(*id).kind {
                for (_, child) in dir.entries() {
                    if matches!(tree.node(child).kind, Kind::Directory(_)) {
                        parents.insert(child, *id);
                    }
                }
            }
        }
        Numbering {
            numbers,
            order,
            parents,
            own_lost_found,
        }
    }
}

/// Plans `tree` with mtimes clamped to `epoch`.
pub fn plan(tree: &Tree, epoch: u64) -> Result<Plan<'_>, Ext4Error> {
    let numbering = Numbering::of(tree);
    let mut inodes = Vec::with_capacity(numbering.order.len() + 1);
    let mut digest = Sha256::new();
    for (path, id) in &numbering.order {
        let planned = plan_node(tree, &numbering, path, *id, epoch, &mut digest)?;
        digest_inode(&mut digest, &planned);
        inodes.push(planned);
        if *id == tree.root() && numbering.own_lost_found {
            let lost_found = lost_found(epoch.min(MAX_TIME));
            digest_inode(&mut digest, &lost_found);
            inodes.push(lost_found);
        }
    }
    let data_blocks = inodes.iter().map(Planned::blocks_bound).sum();
    Ok(Plan {
        inodes,
        data_blocks,
        digest: digest.finalize().into(),
    })
}

/// Plans node `id`, named `path`; file contents are scanned into `digest`.
fn plan_node<'t>(
    tree: &'t Tree,
    numbering: &Numbering,
    path: &str,
    id: NodeId,
    epoch: u64,
    digest: &mut Sha256,
) -> Result<Planned<'t>, Ext4Error> {
    let node = tree.node(id);
    let refused = |refused| match refused {
        Refused::Name(name) => Ext4Error::XattrName {
            path: path.to_owned(),
            name,
        },
        Refused::Acl(name) => Ext4Error::Acl {
            path: path.to_owned(),
            name,
        },
    };
    let attrs = xattr::attrs(&node.metadata.xattrs).map_err(refused)?;
    if !xattr::fit_block(&attrs) {
        return Err(Ext4Error::XattrsTooLarge {
            path: path.to_owned(),
        });
    }
    let (content, links) = match &node.kind {
        Kind::Directory(dir) => directory_content(tree, numbering, path, id, dir)?,
        Kind::File(blob) => {
            if blob.len() > MAX_FILE_SIZE {
                return Err(Ext4Error::FileTooLarge {
                    path: path.to_owned(),
                    len: blob.len(),
                });
            }
            let runs = scan(tree, blob, path, digest)?;
            (Content::File { blob, runs }, node.links())
        }
        Kind::Symlink(target) => {
            if target.is_empty() {
                return Err(Ext4Error::EmptySymlink {
                    path: path.to_owned(),
                });
            }
            if target.len() > MAX_SYMLINK {
                return Err(Ext4Error::SymlinkTooLong {
                    path: path.to_owned(),
                    len: target.len(),
                });
            }
            (Content::Symlink(target.clone()), node.links())
        }
        Kind::CharDevice(device) | Kind::BlockDevice(device) => {
            (Content::Device(*device), node.links())
        }
        Kind::Fifo | Kind::Socket => (Content::Nothing, node.links()),
    };
    if links > MAX_LINKS {
        return Err(Ext4Error::TooManyLinks {
            path: path.to_owned(),
            links,
        });
    }
    let time = clamp_mtime(node.metadata.mtime, epoch);
    if time > MAX_TIME {
        return Err(Ext4Error::TimeTooLate {
            path: path.to_owned(),
            time,
        });
    }
    Ok(Planned {
        ino: numbering.numbers[&id],
        path: path.to_owned(),
        mode: (node.kind.file_type_bits() | node.metadata.mode & 0o7777) as u16,
        uid: node.metadata.uid,
        gid: node.metadata.gid,
        time,
        links: links as u16,
        content,
        attrs,
    })
}

/// A directory's entries (`.`, `..`, then by name, with `lost+found` in
/// the root when the writer adds it) and its link count: 2 plus its
/// subdirectories, or 1 past ext4's count (`dir_nlink`).
fn directory_content<'t>(
    tree: &Tree,
    numbering: &Numbering,
    path: &str,
    id: NodeId,
    dir: &crate::tree::Directory,
) -> Result<(Content<'t>, u32), Ext4Error> {
    let numbers = &numbering.numbers;
    let parent = numbers[&numbering.parents[&id]];
    let mut entries = vec![dot(b".", numbers[&id]), dot(b"..", parent)];
    for (name, child) in dir.entries() {
        if name.len() > 255 {
            return Err(Ext4Error::NameTooLong {
                path: format!("{path}/{}", String::from_utf8_lossy(name)),
            });
        }
        entries.push(DirEntry {
            name: name.to_vec(),
            ino: numbers[&child],
            file_type: entry_type(&tree.node(child).kind),
        });
    }
    if id == tree.root() && numbering.own_lost_found {
        entries.push(dot(b"lost+found", FIRST_INODE));
        entries[2..].sort_by(|a, b| a.name.cmp(&b.name));
    }
    let subdirectories = entries[2..]
        .iter()
        .filter(|entry| entry.file_type == file_type::DIRECTORY)
        .count() as u32;
    let links = 2 + subdirectories;
    let content = Content::Directory {
        entries,
        min_blocks: 1,
    };
    Ok((content, if links > MAX_LINKS { 1 } else { links }))
}

/// The directory a node is; the root always is one.
fn directory(node: &Node) -> &crate::tree::Directory {
    match &node.kind {
        Kind::Directory(dir) => dir,
        _ => unreachable!("a tree's root is a directory"),
    }
}

/// A directory entry naming directory `ino`.
fn dot(name: &[u8], ino: u32) -> DirEntry {
    DirEntry {
        name: name.to_vec(),
        ino,
        file_type: file_type::DIRECTORY,
    }
}

/// The directory-entry file type of a node.
fn entry_type(kind: &Kind) -> u8 {
    match kind {
        Kind::Directory(_) => file_type::DIRECTORY,
        Kind::File(_) => file_type::FILE,
        Kind::Symlink(_) => file_type::SYMLINK,
        Kind::CharDevice(_) => file_type::CHAR_DEVICE,
        Kind::BlockDevice(_) => file_type::BLOCK_DEVICE,
        Kind::Fifo => file_type::FIFO,
        Kind::Socket => file_type::SOCKET,
    }
}

/// `lost+found` as mke2fs makes it, for a tree without one: root's, mode
/// 0700, four empty blocks.
fn lost_found(time: u64) -> Planned<'static> {
    Planned {
        ino: FIRST_INODE,
        path: "lost+found".to_owned(),
        mode: 0o040700,
        uid: 0,
        gid: 0,
        time,
        links: 2,
        content: Content::Directory {
            entries: vec![dot(b".", FIRST_INODE), dot(b"..", ROOT_INODE)],
            min_blocks: LOST_FOUND_BLOCKS,
        },
        attrs: Vec::new(),
    }
}

/// Reads a file once: the runs of its logical blocks that are not all
/// zero, each such block fed to `digest` with its number.
fn scan(tree: &Tree, blob: &Blob, path: &str, digest: &mut Sha256) -> Result<Vec<Run>, Ext4Error> {
    let io = |source| Ext4Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = tree.contents(blob);
    let mut buffer = vec![0u8; READ_CHUNK];
    let mut runs: Vec<Run> = Vec::new();
    let mut block = 0u64;
    let mut total = 0u64;
    loop {
        let read = read_full(&mut reader, &mut buffer).map_err(io)?;
        if read == 0 {
            break;
        }
        total += read as u64;
        for chunk in buffer[..read].chunks(BLOCK_SIZE as usize) {
            if !is_zero(chunk) {
                digest.update(block.to_le_bytes());
                digest.update(chunk);
                match runs.last_mut() {
                    Some(run) if run.start + run.len == block => run.len += 1,
                    _ => runs.push(Run {
                        start: block,
                        len: 1,
                    }),
                }
            }
            block += 1;
        }
    }
    if total != blob.len() {
        return Err(Ext4Error::LengthMismatch {
            path: path.to_owned(),
            declared: blob.len(),
            actual: total,
        });
    }
    Ok(runs)
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
pub fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Feeds what an inode records, but file contents (fed while scanning),
/// to `digest`.
fn digest_inode(digest: &mut Sha256, planned: &Planned) {
    let field = |digest: &mut Sha256, bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    };
    digest.update(planned.ino.to_le_bytes());
    field(digest, planned.path.as_bytes());
    digest.update(planned.mode.to_le_bytes());
    digest.update(planned.uid.to_le_bytes());
    digest.update(planned.gid.to_le_bytes());
    digest.update(planned.time.to_le_bytes());
    digest.update(planned.links.to_le_bytes());
    match &planned.content {
        Content::Directory { entries, .. } => {
            for entry in entries {
                field(digest, &entry.name);
                digest.update(entry.ino.to_le_bytes());
            }
        }
        Content::File { blob, .. } => digest.update(blob.len().to_le_bytes()),
        Content::Symlink(target) => field(digest, target),
        Content::Device(device) => {
            digest.update(device.major.to_le_bytes());
            digest.update(device.minor.to_le_bytes());
        }
        Content::Nothing => {}
    }
    for attr in &planned.attrs {
        digest.update([attr.index]);
        field(digest, &attr.name);
        field(digest, &attr.value);
    }
}

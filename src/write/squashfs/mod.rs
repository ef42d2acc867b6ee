//! Squashfs 4.0 images, as Linux and `unsquashfs` read them.
//!
//! Written here rather than through the `backhand` crate, whose writer
//! (0.25) has no hard links, no xattrs and wrong directory link counts.
//!
//! Layout, as mksquashfs lays it out and the kernel checks it: superblock;
//! compressor options (LZ4 only); file data and fragment blocks; the inode
//! table; the directory table; the fragment, export and id tables, each as
//! metadata blocks followed by their index; the xattr pairs, xattr id
//! entries, xattr id table header and index; zeros up to a multiple of
//! 4 KiB.
//!
//! What is stored: every node kind, one inode per node (hard links share
//! it, with its link count), owners through the id table, xattrs (each
//! distinct set once), mtimes clamped to SOURCE_DATE_EPOCH, all-zero blocks
//! as holes, the tails of all files packed into fragments in walk order, an
//! export table for NFS. Not done: duplicate file detection, directory
//! indexes (lookups in large directories scan the listing).
//!
//! Deterministic: the layout follows the tree's order alone; blocks are
//! compressed independently, so the thread count never changes the bytes.

mod compressor;
mod data;
mod directory;
mod id;
mod inode;
mod metadata;
mod options;
mod plan;
mod superblock;
mod xattr;

#[cfg(test)]
mod read_back;

use std::collections::HashMap;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use thiserror::Error;

use crate::tree::{Directory, Kind, Node, NodeId, Tree};
use crate::write::clamp_mtime;

pub use compressor::Compression;
pub use options::{BlockSize, Options, ParseError};

use data::{DataWriter, FileData};
use directory::DirEntry;
use id::IdTable;
use inode::{Body, Common, InodeType};
use metadata::{IndexedTable, MetadataRef, MetadataWriter};
use plan::{Plan, Planned};
use superblock::{NO_TABLE, Superblock, flags};
use xattr::XattrTable;

/// Images are padded to a multiple of this, as mksquashfs pads them, so
/// block devices and loop mounts see every byte.
const PADDING: u64 = 4096;
/// Longest symlink target Linux reads back from squashfs (PATH_MAX - 1).
const MAX_SYMLINK: usize = 4095;
const OUTPUT_BUFFER: usize = 256 * 1024;

/// Writing a squashfs image failed.
#[derive(Debug, Error)]
pub enum SquashfsError {
    /// Writing the output, reading contents from the tree, or compressing
    /// failed.
    #[error("writing the squashfs image failed at `{path}` (is the output's disk full?)")]
    Io {
        /// The tree path being written, or the table.
        path: String,
        #[source]
        source: io::Error,
    },
    /// The superblock's date is 32-bit.
    #[error(
        "SOURCE_DATE_EPOCH {0} is after 2106-02-07, the last second squashfs's 32-bit times hold; use an earlier one"
    )]
    EpochTooLate(u64),
    /// A device number wider than Linux's 12-bit major, 20-bit minor.
    #[error(
        "`{path}` is device {major}:{minor}; squashfs holds majors up to 4095 and minors up to 1048575; remove the node or use another format"
    )]
    DeviceNumber {
        path: String,
        major: u32,
        minor: u32,
    },
    /// A symlink target longer than Linux reads back.
    #[error(
        "`{path}` is a symlink to a target of {length} bytes; Linux reads squashfs symlinks of at most {MAX_SYMLINK} bytes; shorten it"
    )]
    SymlinkTooLong { path: String, length: usize },
    /// An xattr outside the namespaces squashfs has.
    #[error(
        "`{path}` has xattr `{name}`, which is not in the user., trusted. or security. namespace, the only ones squashfs holds; remove it or use another format"
    )]
    XattrNamespace { path: String, name: String },
    /// An xattr name or value longer than its length field.
    #[error(
        "`{path}` has xattr `{name}` longer than squashfs holds (names up to 65535 bytes, values up to 4 GiB); remove it"
    )]
    XattrTooLarge { path: String, name: String },
    /// More distinct owners and groups than the id table can index.
    #[error(
        "the tree has more than 65535 distinct uids and gids together, squashfs's limit; map owners to fewer ids"
    )]
    TooManyIds,
    /// A table grew past the offsets its references can hold.
    #[error(
        "the squashfs {table} table grew past the 4 GiB its references can address; split the tree into smaller images"
    )]
    TableTooLarge { table: &'static str },
}

impl SquashfsError {
    fn io(path: impl Into<String>, source: io::Error) -> SquashfsError {
        SquashfsError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Writes `tree` as a squashfs image to `out`, which must be at position 0,
/// and returns `out` positioned after the image. Same tree and options,
/// same bytes, for any thread count.
pub fn write<W: Write + Seek>(tree: &Tree, out: W, options: &Options) -> Result<W, SquashfsError> {
    let epoch = options.source_date_epoch;
    let mkfs_time = u32::try_from(epoch).map_err(|_| SquashfsError::EpochTooLate(epoch))?;
    let compression = options.compression;
    let block_size = options.block_size.get();
    let plan = Plan::new(tree);
    let ids = IdTable::new(plan.order.iter().flat_map(|planned| {
        let metadata = &tree.node(planned.id).metadata;
        [metadata.uid, metadata.gid]
    }))
    .ok_or(SquashfsError::TooManyIds)?;

    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER, out);
    let mut head = vec![0; superblock::SIZE];
    let mut sb_flags = flags::ALWAYS_FRAGMENTS | flags::EXPORTABLE;
    if let Some(compressor_options) = compression.options() {
        sb_flags |= flags::COMPRESSOR_OPTIONS;
        let mut block = MetadataWriter::new(compression, block_size);
        let stored = block
            .write(&compressor_options)
            .and_then(|()| block.finish())
            .map_err(|source| SquashfsError::io("the compressor options", source))?;
        head.extend_from_slice(&stored.0);
    }
    out.write_all(&head)
        .map_err(|source| SquashfsError::io("the superblock", source))?;

    let files = write_data(tree, &plan, &mut out, head.len() as u64, options)?;
    let tables = Tables::new(tree, &plan, &ids, &files.data, options)?;

    let inode_table = files.end;
    let directory_table = inode_table + tables.inodes.len() as u64;
    let table = |entries: &[u8], start: u64, name: &'static str| {
        IndexedTable::new(entries, start, compression, block_size)
            .map_err(|source| SquashfsError::io(format!("the {name} table"), source))
    };
    let fragment_start = directory_table + tables.directories.len() as u64;
    let fragment = table(&files.fragments, fragment_start, "fragment")?;
    let lookup_start = fragment_start + fragment.bytes.len() as u64;
    let lookup = table(&tables.export, lookup_start, "export")?;
    let id_start = lookup_start + lookup.bytes.len() as u64;
    let id = table(&ids.entries(), id_start, "id")?;
    let xattr_start = id_start + id.bytes.len() as u64;
    let xattr = tables
        .xattrs
        .finish(xattr_start)
        .map_err(|source| SquashfsError::io("the xattr table", source))?;
    let (xattr_bytes, xattr_id_table) = match &xattr {
        Some((bytes, header)) => (bytes.as_slice(), *header),
        None => {
            sb_flags |= flags::NO_XATTRS;
            (&[][..], NO_TABLE)
        }
    };
    let bytes_used = xattr_start + xattr_bytes.len() as u64;
    let padded = bytes_used.next_multiple_of(PADDING);
    let padding = vec![0; (padded - bytes_used) as usize];

    let sb = Superblock {
        inodes: plan.order.len() as u32,
        mkfs_time,
        block_size,
        fragments: files.fragment_count,
        compression: compression.id(),
        block_log: options.block_size.log(),
        flags: sb_flags,
        ids: ids.len(),
        root_inode: tables.root.packed(),
        bytes_used,
        id_table: id.index_start,
        xattr_id_table,
        inode_table,
        directory_table,
        fragment_table: fragment.index_start,
        lookup_table: lookup.index_start,
    };
    let parts: [&[u8]; 7] = [
        &tables.inodes,
        &tables.directories,
        &fragment.bytes,
        &lookup.bytes,
        &id.bytes,
        xattr_bytes,
        &padding,
    ];
    let finish = |out: &mut BufWriter<W>| -> io::Result<()> {
        for part in parts {
            out.write_all(part)?;
        }
        out.seek(SeekFrom::Start(0))?;
        out.write_all(&sb.to_bytes())?;
        out.seek(SeekFrom::Start(padded))?;
        out.flush()
    };
    finish(&mut out).map_err(|source| SquashfsError::io("the image's tables", source))?;
    out.into_inner()
        .map_err(|err| SquashfsError::io("the image's end", err.into_error()))
}

/// Where the data of every file went.
struct Files {
    data: HashMap<NodeId, FileData>,
    /// The fragment table's entries.
    fragments: Vec<u8>,
    fragment_count: u32,
    /// Absolute offset after the last data block.
    end: u64,
}

/// Writes the contents of every file, in plan order, starting at absolute
/// offset `start`.
fn write_data(
    tree: &Tree,
    plan: &Plan,
    out: &mut impl Write,
    start: u64,
    options: &Options,
) -> Result<Files, SquashfsError> {
    let mut writer = DataWriter::new(
        out,
        start,
        options.compression,
        options.block_size.get(),
        options.threads,
    );
    let mut ids = Vec::new();
    for planned in &plan.order {
        if let Kind::File(blob) = &tree.node(planned.id).kind {
            writer
                .write_file(tree.contents(blob), blob.len())
                .map_err(|source| SquashfsError::io(lossy(&planned.path), source))?;
            ids.push(planned.id);
        }
    }
    let (_, written) = writer
        .finish()
        .map_err(|source| SquashfsError::io("the last data blocks", source))?;
    Ok(Files {
        data: ids.into_iter().zip(written.files).collect(),
        fragments: written.fragments,
        fragment_count: written.fragment_count,
        end: written.end,
    })
}

/// The metadata tables built from the tree.
struct Tables {
    inodes: Vec<u8>,
    directories: Vec<u8>,
    /// The export table's entries: each inode's packed reference, by number.
    export: Vec<u8>,
    xattrs: XattrTable,
    root: MetadataRef,
}

impl Tables {
    /// Every inode in plan order, each directory's listing just before its
    /// inode.
    fn new(
        tree: &Tree,
        plan: &Plan,
        ids: &IdTable,
        files: &HashMap<NodeId, FileData>,
        options: &Options,
    ) -> Result<Tables, SquashfsError> {
        let (compression, block_size) = (options.compression, options.block_size.get());
        let mut builder = TableBuilder {
            tree,
            plan,
            inodes: MetadataWriter::new(compression, block_size),
            directories: MetadataWriter::new(compression, block_size),
            xattrs: XattrTable::new(compression, block_size),
            refs: HashMap::new(),
            export: Vec::new(),
        };
        for planned in &plan.order {
            let node = tree.node(planned.id);
            let path = lossy(&planned.path);
            let (body, nlink) = match &node.kind {
                Kind::Directory(dir) => builder.list(dir, planned, &path)?,
                Kind::File(_) => (Body::File(&files[&planned.id]), node.links()),
                Kind::Symlink(target) if target.len() > MAX_SYMLINK => {
                    return Err(SquashfsError::SymlinkTooLong {
                        path,
                        length: target.len(),
                    });
                }
                Kind::Symlink(target) => (Body::Symlink(target), node.links()),
                Kind::CharDevice(device) | Kind::BlockDevice(device) => {
                    let rdev = inode::encode_dev(device.major, device.minor).ok_or_else(|| {
                        SquashfsError::DeviceNumber {
                            path: path.clone(),
                            major: device.major,
                            minor: device.minor,
                        }
                    })?;
                    let block = matches!(node.kind, Kind::BlockDevice(_));
                    (Body::Device { block, rdev }, node.links())
                }
                Kind::Fifo | Kind::Socket => (Body::Ipc(InodeType::of(&node.kind)), node.links()),
            };
            let common = common(node, plan.numbers[&planned.id], nlink, ids, options);
            builder.add(planned.id, common, &body, &path)?;
        }
        let table_error = |name: &str| {
            let name = format!("the {name} table");
            move |source| SquashfsError::io(name, source)
        };
        Ok(Tables {
            inodes: builder.inodes.finish().map_err(table_error("inode"))?.0,
            directories: builder
                .directories
                .finish()
                .map_err(table_error("directory"))?
                .0,
            export: builder.export,
            xattrs: builder.xattrs,
            root: builder.refs[&tree.root()],
        })
    }
}

/// The tables while inodes are added.
struct TableBuilder<'a> {
    tree: &'a Tree,
    plan: &'a Plan,
    inodes: MetadataWriter,
    directories: MetadataWriter,
    xattrs: XattrTable,
    /// Where each inode written so far starts.
    refs: HashMap<NodeId, MetadataRef>,
    export: Vec<u8>,
}

impl TableBuilder<'_> {
    /// Writes the listing of `dir`, whose entries' inodes are all written;
    /// returns its inode's body and link count (2 + subdirectories).
    fn list(
        &mut self,
        dir: &Directory,
        planned: &Planned,
        path: &str,
    ) -> Result<(Body<'static>, u32), SquashfsError> {
        let entries: Vec<DirEntry<'_>> = dir
            .entries()
            .map(|(name, child)| DirEntry {
                name,
                inode: self.refs[&child],
                number: self.plan.numbers[&child],
                inode_type: InodeType::of(&self.tree.node(child).kind),
            })
            .collect();
        let subdirectories = entries
            .iter()
            .filter(|entry| entry.inode_type == InodeType::Directory)
            .count() as u32;
        let listing =
            directory::encode(&entries).ok_or(SquashfsError::TableTooLarge { table: "inode" })?;
        let start = self.directories.position();
        self.directories
            .write(&listing)
            .map_err(|source| SquashfsError::io(path, source))?;
        let start_block = u32::try_from(start.block)
            .map_err(|_| SquashfsError::TableTooLarge { table: "directory" })?;
        let parent = if planned.id == self.tree.root() {
            // mksquashfs's choice for the root: one past the last inode.
            self.plan.order.len() as u32 + 1
        } else {
            self.plan.numbers[&planned.parent]
        };
        let body = Body::Directory {
            start_block,
            offset: start.offset,
            // Far below 4 GiB: 2^32 bytes of names would not fit in memory.
            file_size: listing.len() as u32 + 3,
            parent,
        };
        Ok((body, 2 + subdirectories))
    }

    /// Writes the inode of node `id` (at `path`).
    fn add(
        &mut self,
        id: NodeId,
        common: Common,
        body: &Body<'_>,
        path: &str,
    ) -> Result<(), SquashfsError> {
        let xattrs = &self.tree.node(id).metadata.xattrs;
        let common = common.with_xattr(self.xattrs.add(xattrs, path)?);
        let at = self.inodes.position();
        self.refs.insert(id, at);
        self.export.extend_from_slice(&at.packed().to_le_bytes());
        let mut encoded = Vec::new();
        inode::encode(&common, body, &mut encoded);
        self.inodes
            .write(&encoded)
            .map_err(|source| SquashfsError::io(path, source))
    }
}

/// The fields every inode has, xattrs aside.
fn common(node: &Node, number: u32, nlink: u32, ids: &IdTable, options: &Options) -> Common {
    let metadata = &node.metadata;
    Common {
        // Permission bits alone: the type is the inode's, and Linux 6.18
        // refuses inodes whose mode carries type bits (mksquashfs stores
        // none either).
        mode: (metadata.mode & 0o7777) as u16,
        uid: ids.index(metadata.uid),
        gid: ids.index(metadata.gid),
        // Clamped to the epoch, which `write` checked fits 32 bits.
        mtime: clamp_mtime(metadata.mtime, options.source_date_epoch) as u32,
        number,
        nlink,
        xattr: None,
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Cursor;
    use std::num::NonZeroUsize;

    use super::read_back::Image;
    use super::*;
    use crate::tree::{Device, Metadata};

    const EPOCH: u64 = 1_700_000_000;

    fn meta(mode: u32, uid: u32, mtime: u64) -> Metadata {
        Metadata {
            mode,
            uid,
            gid: uid,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }

    fn text(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"0123456789abcdef\n"[i % 17]).collect()
    }

    /// Every node kind, a hard link, xattrs, owners, a hole and tails.
    fn sample() -> Tree {
        let mut tree = Tree::new(EPOCH);
        let mut big = text(300_000);
        big[131_072..262_144].fill(0);
        let big = tree.store_bytes(&big).unwrap();
        let small = tree.store_bytes(b"hello\n").unwrap();
        let empty = tree.store_bytes(b"").unwrap();
        let mut secure = meta(0o4755, 0, EPOCH - 5);
        secure.xattrs.insert(
            "security.capability".into(),
            vec![1, 0, 0, 2, 0x20, 0, 0, 0],
        );
        secure.xattrs.insert("user.note".into(), b"hi".to_vec());
        tree.insert("bin/big", Kind::File(big), secure.clone())
            .unwrap();
        let small = tree
            .insert(
                "etc/small",
                Kind::File(small),
                meta(0o644, 100_000, EPOCH + 99),
            )
            .unwrap();
        tree.hard_link("etc/link", small).unwrap();
        tree.insert(
            "etc/empty",
            Kind::File(empty),
            meta(0o600, 4_294_967_294, 1),
        )
        .unwrap();
        tree.insert("etc/x", Kind::Symlink(b"small".to_vec()), secure.clone())
            .unwrap();
        let device = Device {
            major: 259,
            minor: 70000,
        };
        tree.insert("dev/nvme", Kind::BlockDevice(device), meta(0o660, 0, 0))
            .unwrap();
        tree.insert(
            "dev/null",
            Kind::CharDevice(Device { major: 1, minor: 3 }),
            meta(0o666, 0, 0),
        )
        .unwrap();
        tree.insert("run/fifo", Kind::Fifo, meta(0o644, 0, 0))
            .unwrap();
        tree.insert("run/sock", Kind::Socket, meta(0o755, 0, 0))
            .unwrap();
        tree.insert("tmp", Kind::directory(), meta(0o1777, 0, 0))
            .unwrap();
        tree
    }

    fn options(compression: Compression) -> Options {
        Options {
            source_date_epoch: EPOCH,
            compression,
            ..Options::default()
        }
    }

    fn image(tree: &Tree, options: &Options) -> Vec<u8> {
        write(tree, Cursor::new(Vec::new()), options)
            .unwrap()
            .into_inner()
    }

    #[test]
    fn every_kind_reads_back_with_every_compressor() {
        let tree = sample();
        for compression in [
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
            Compression::Lz4,
        ] {
            let bytes = image(&tree, &options(compression));
            assert_eq!(bytes.len() % 4096, 0);
            let read = Image::new(bytes.clone());
            let sb = &read.sb;
            assert_eq!(sb.compression, compression.id());
            assert_eq!((sb.block_size, sb.block_log), (131072, 17));
            assert_eq!(sb.mkfs_time as u64, EPOCH);
            assert_eq!(sb.ids, 3);
            assert!(sb.bytes_used <= bytes.len() as u64);
            assert_eq!(
                sb.flags & flags::COMPRESSOR_OPTIONS != 0,
                compression == Compression::Lz4
            );
            let walked = read.walk();
            let paths: Vec<&str> = walked.iter().map(|(path, _)| path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    "",
                    "bin",
                    "bin/big",
                    "dev",
                    "dev/null",
                    "dev/nvme",
                    "etc",
                    "etc/empty",
                    "etc/link",
                    "etc/small",
                    "etc/x",
                    "run",
                    "run/fifo",
                    "run/sock",
                    "tmp"
                ]
            );
            assert_eq!(sb.inodes, 14, "the hard link shares an inode");
            let by_path: HashMap<&str, &read_back::Inode> = walked
                .iter()
                .map(|(path, inode)| (path.as_str(), inode))
                .collect();

            let root = by_path[""];
            assert_eq!((root.mode, root.nlink), (0o755, 2 + 5));
            assert_eq!(root.parent, sb.inodes + 1);

            let big = by_path["bin/big"];
            assert_eq!((big.code, big.mode, big.uid), (9, 0o4755, 0));
            assert_eq!(big.blocks.len(), 2);
            assert_eq!(big.blocks[1], 0, "the zero block is a hole");
            let mut expected = text(300_000);
            expected[131_072..262_144].fill(0);
            assert!(read.contents(big) == expected, "{compression}");
            assert_eq!(
                read.xattrs(big),
                [
                    (
                        "security.capability".to_string(),
                        vec![1, 0, 0, 2, 0x20, 0, 0, 0]
                    ),
                    ("user.note".to_string(), b"hi".to_vec())
                ]
            );
            assert_eq!(read.xattrs(by_path["etc/x"]), read.xattrs(big));
            assert_eq!(by_path["etc/x"].xattr, big.xattr, "one set, stored once");

            let small = by_path["etc/small"];
            assert_eq!(small, by_path["etc/link"]);
            assert_eq!((small.nlink, small.uid, small.gid), (2, 100_000, 100_000));
            assert_eq!(small.mtime as u64, EPOCH, "clamped");
            assert_eq!(read.contents(small), b"hello\n");
            let empty = by_path["etc/empty"];
            assert_eq!(
                (empty.code, empty.size, empty.uid, empty.mtime),
                (2, 0, 4_294_967_294, 1)
            );
            assert_eq!(by_path["etc/x"].target, b"small");
            assert_eq!(by_path["etc/x"].code, 10);

            let nvme = by_path["dev/nvme"];
            assert_eq!((nvme.code, nvme.mode), (4, 0o660));
            assert_eq!(nvme.rdev, inode::encode_dev(259, 70000).unwrap());
            assert_eq!(by_path["dev/null"].code, 5);
            assert_eq!(by_path["run/fifo"].mode, 0o644);
            assert_eq!(by_path["run/sock"].mode, 0o755);
            assert_eq!(by_path["tmp"].mode, 0o1777);
            assert_eq!(by_path["tmp"].dir.2, 3, "an empty listing");
        }
    }

    #[test]
    fn large_directories_span_headers_and_blocks() {
        let mut tree = Tree::new(EPOCH);
        for i in 0..3000 {
            let name = format!("dir/{i:05}-{}", "n".repeat(40));
            let blob = tree.store_bytes(name.as_bytes()).unwrap();
            tree.insert(&name, Kind::File(blob), meta(0o644, 0, 0))
                .unwrap();
        }
        tree.insert("dir/sub/x", Kind::Fifo, meta(0o644, 0, 0))
            .unwrap();
        let read = Image::new(image(&tree, &options(Compression::Gzip)));
        let walked = read.walk();
        assert_eq!(walked.len(), 3004);
        let dir = &walked[1].1;
        assert_eq!((dir.code, dir.nlink), (8, 3), "listing over 64 KiB");
        for (path, inode) in &walked[2..3002] {
            assert_eq!(read.contents(inode), path.as_bytes());
        }
    }

    #[test]
    fn bytes_depend_on_the_tree_and_epoch_not_threads() {
        let tree = sample();
        let one = Options {
            threads: NonZeroUsize::MIN,
            ..options(Compression::Gzip)
        };
        let four = Options {
            threads: NonZeroUsize::new(4).unwrap(),
            ..one.clone()
        };
        let first = image(&tree, &one);
        assert_eq!(first, image(&tree, &one));
        assert_eq!(first, image(&tree, &four));
        let later = Options {
            source_date_epoch: EPOCH + 1,
            ..one
        };
        assert_ne!(first, image(&tree, &later));
    }

    #[test]
    fn an_empty_tree_is_a_root_alone() {
        let read = Image::new(image(&Tree::new(EPOCH), &options(Compression::Gzip)));
        assert_eq!((read.sb.inodes, read.sb.fragments, read.sb.ids), (1, 0, 1));
        assert_eq!(read.sb.xattr_id_table, NO_TABLE);
        assert_ne!(read.sb.flags & flags::NO_XATTRS, 0);
        assert_eq!(read.walk().len(), 1);
    }

    #[test]
    fn what_squashfs_cannot_hold_is_refused() {
        let write_err = |tree: &Tree, options: &Options| {
            write(tree, Cursor::new(Vec::new()), options).unwrap_err()
        };
        let mut tree = Tree::new(0);
        let device = Device {
            major: 4096,
            minor: 0,
        };
        tree.insert("dev/big", Kind::CharDevice(device), meta(0o600, 0, 0))
            .unwrap();
        let err = write_err(&tree, &options(Compression::Gzip));
        assert!(matches!(&err, SquashfsError::DeviceNumber { path, .. } if path == "dev/big"));

        let mut tree = Tree::new(0);
        let mut acl = meta(0o644, 0, 0);
        acl.xattrs.insert("system.posix_acl_access".into(), vec![2]);
        tree.insert("f", Kind::Fifo, acl).unwrap();
        let err = write_err(&tree, &options(Compression::Gzip));
        assert!(matches!(err, SquashfsError::XattrNamespace { .. }), "{err}");

        let mut tree = Tree::new(0);
        tree.insert("l", Kind::Symlink(vec![b'a'; 4096]), meta(0o777, 0, 0))
            .unwrap();
        let err = write_err(&tree, &options(Compression::Gzip));
        assert!(matches!(
            err,
            SquashfsError::SymlinkTooLong { length: 4096, .. }
        ));

        let late = Options {
            source_date_epoch: 1 << 32,
            ..Options::default()
        };
        let err = write_err(&Tree::new(0), &late);
        assert!(err.to_string().contains("2106"), "{err}");
    }
}

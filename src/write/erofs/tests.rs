//! Reads images back with a small reader built on the modules' decoders
//! and checks every node against the tree it was written from.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use super::chunk::NULL_ADDR;
use super::inode::{COMPACT, Core, EXTENDED, Layout};
use super::superblock::{self, Superblock};
use super::*;
use crate::tree::{Metadata, Tree};

const EPOCH: u64 = 1_700_000_000;

fn write_image(tree: &Tree, epoch: u64) -> Vec<u8> {
    write_with(tree, epoch, Compression::None)
}

fn write_with(tree: &Tree, epoch: u64, compression: Compression) -> Vec<u8> {
    let options = Options {
        source_date_epoch: epoch,
        compression,
    };
    let out = write(tree, Cursor::new(Vec::new()), &options).unwrap();
    assert_eq!(
        out.position(),
        out.get_ref().len() as u64,
        "left at the end"
    );
    out.into_inner()
}

/// An inode read back.
#[derive(Debug)]
struct ReadBack {
    core: Core,
    xattrs: Vec<(String, Vec<u8>)>,
    /// Where the bytes after the xattrs start.
    trailer: usize,
}

/// A directory's entries: name, nid, file type.
type Entries = Vec<(Vec<u8>, u64, u8)>;

struct Reader<'a> {
    image: &'a [u8],
    superblock: Superblock,
    /// Directories read so far, by nid.
    directories: RefCell<BTreeMap<u64, Entries>>,
}

impl<'a> Reader<'a> {
    fn new(image: &'a [u8]) -> Reader<'a> {
        let at = SUPERBLOCK_OFFSET as usize;
        let superblock = Superblock::decode(&image[at..at + superblock::SIZE]).expect("magic");
        assert_eq!(image.len() as u64, u64::from(superblock.blocks) * 4096);
        let mut block = image[at..4096].to_vec();
        let checksum = u32::from_le_bytes(block[4..8].try_into().unwrap());
        let mut sealed: [u8; superblock::SIZE] = block[..superblock::SIZE].try_into().unwrap();
        superblock::seal(&mut sealed, &block[superblock::SIZE..]);
        block[..superblock::SIZE].copy_from_slice(&sealed);
        assert_eq!(
            checksum,
            u32::from_le_bytes(block[4..8].try_into().unwrap())
        );
        Reader {
            image,
            superblock,
            directories: RefCell::default(),
        }
    }

    fn inode(&self, nid: u64) -> ReadBack {
        let at = (nid * SLOT) as usize;
        let core = Core::decode(&self.image[at..], self.superblock.build_time);
        let core_len = if core.extended { EXTENDED } else { COMPACT };
        let xattr_len = match core.xattr_icount {
            0 => 0,
            count => 12 + (usize::from(count) - 1) * 4,
        };
        let xattr_at = at + core_len;
        let xattrs = match xattr_len {
            0 => Vec::new(),
            len => xattr::decode(&self.image[xattr_at..xattr_at + len]),
        };
        ReadBack {
            core,
            xattrs,
            trailer: xattr_at + xattr_len,
        }
    }

    fn block(&self, address: u64, len: u64) -> &[u8] {
        let start = (address * 4096) as usize;
        &self.image[start..start + len as usize]
    }

    /// An inode's data, following its layout.
    fn data(&self, inode: &ReadBack) -> Vec<u8> {
        let size = inode.core.size;
        match inode.core.layout {
            Layout::FlatPlain if size == 0 => Vec::new(),
            Layout::FlatPlain => self.block(inode.core.i_u.into(), size).to_vec(),
            Layout::FlatInline => {
                let tail = (size % 4096) as usize;
                assert!(tail > 0, "an inline layout has a tail");
                let start = inode.trailer;
                assert!(
                    start % 4096 + tail <= 4096,
                    "an inline tail crosses a block boundary at {start}"
                );
                let mut data = self
                    .block(inode.core.i_u.into(), size - tail as u64)
                    .to_vec();
                data.extend_from_slice(&self.image[start..start + tail]);
                data
            }
            Layout::ChunkBased => {
                assert_eq!(inode.core.i_u & !0x1f, 0, "a block map, not chunk indexes");
                let chunk = 4096u64 << inode.core.i_u;
                let mut data = Vec::new();
                for index in 0..size.div_ceil(chunk) {
                    let entry = inode.trailer + index as usize * 4;
                    let address =
                        u32::from_le_bytes(self.image[entry..entry + 4].try_into().unwrap());
                    let len = chunk.min(size - index * chunk);
                    if address == NULL_ADDR {
                        data.resize(data.len() + len as usize, 0);
                    } else {
                        data.extend_from_slice(self.block(address.into(), len));
                    }
                }
                data
            }
            Layout::CompressionLegacy => self.decompress(inode),
        }
    }

    /// A compressed file's lcluster indexes: type, offset, block or deltas.
    fn indexes(&self, inode: &ReadBack) -> Vec<(u16, u16, u32)> {
        let header = inode.trailer.next_multiple_of(8);
        assert_eq!(
            &self.image[header..header + 16],
            &[0; 16],
            "map header: LZ4, 4 KiB lclusters, no advise; then padding"
        );
        (0..inode.core.size.div_ceil(4096) as usize)
            .map(|lcluster| {
                let at = header + 16 + lcluster * 8;
                let index = &self.image[at..at + 8];
                assert_eq!(at / 4096, (at + 7) / 4096, "an index within a block");
                (
                    u16::from_le_bytes([index[0], index[1]]),
                    u16::from_le_bytes([index[2], index[3]]),
                    u32::from_le_bytes(index[4..8].try_into().unwrap()),
                )
            })
            .collect()
    }

    /// A compressed file's data, read as Linux does: each lcluster's index
    /// says where an extent starts in it (HEAD, PLAIN) or how far back its
    /// extent's head is (NONHEAD); an extent runs to the next start or the
    /// end of file and is decompressed from its one block.
    fn decompress(&self, inode: &ReadBack) -> Vec<u8> {
        let size = inode.core.size;
        let lclusters = size.div_ceil(4096) as usize;
        let indexes = self.indexes(inode);
        // Extent starts: (file offset, compressed, block).
        let mut starts = Vec::new();
        for (lcluster, &(kind, offset, u)) in indexes.iter().enumerate() {
            let at = lcluster as u64 * 4096 + u64::from(offset);
            match kind {
                0 | 1 if at < size => starts.push((at, kind == 1, u)),
                0 => assert_eq!((at, u), (size, 0), "only the end of file has no block"),
                2 => {
                    let (back, on) = ((u & 0xffff) as usize, (u >> 16) as usize);
                    assert!((1..1 << 11).contains(&back), "delta[0] {back}");
                    let head = lcluster - back;
                    assert!(indexes[head].0 != 2, "delta[0] leads to a head");
                    let next = lcluster + on;
                    assert!(on >= 1, "delta[1] {on}");
                    assert!(
                        next >= lclusters || indexes[next].0 != 2,
                        "delta[1] leads on"
                    );
                    assert!(
                        (head + 1..next).all(|at| indexes[at].0 == 2),
                        "no head in between"
                    );
                }
                other => panic!("lcluster type {other}"),
            }
        }
        assert_eq!(
            starts.first().map(|start| start.0),
            Some(0),
            "lcluster 0 starts"
        );
        let blocks: Vec<u32> = starts.iter().map(|start| start.2).collect();
        let consecutive: Vec<u32> = (blocks[0]..).take(blocks.len()).collect();
        assert_eq!(blocks, consecutive, "one block per extent, in order");
        assert_eq!(
            inode.core.i_u as usize,
            blocks.len(),
            "i_u counts the blocks"
        );
        let mut data = Vec::with_capacity(size as usize);
        for (index, &(at, compressed, block)) in starts.iter().enumerate() {
            let end = starts.get(index + 1).map_or(size, |next| next.0);
            let len = (end - at) as usize;
            let stored = self.block(block.into(), 4096);
            if compressed {
                let start = stored.iter().position(|&byte| byte != 0).expect("data");
                let decoded = lz4_flex::block::decompress(&stored[start..], len)
                    .expect("an LZ4 block decoding to exactly the extent");
                assert_eq!(decoded.len(), len);
                assert!(len > 4096, "a compressed extent saves");
                data.extend_from_slice(&decoded);
            } else {
                assert!(len <= 4096, "a plain extent fits its block");
                data.extend_from_slice(&stored[..len]);
            }
        }
        data
    }

    /// The nid at `path`, following directory entries from the root.
    fn lookup(&self, path: &[u8]) -> u64 {
        let mut nid = u64::from(self.superblock.root_nid);
        for name in path
            .split(|&byte| byte == b'/')
            .filter(|name| !name.is_empty())
        {
            let mut directories = self.directories.borrow_mut();
            let entries = directories
                .entry(nid)
                .or_insert_with(|| directory::decode(&self.data(&self.inode(nid))));
            nid = entries
                .iter()
                .find(|(entry, ..)| entry == name)
                .unwrap_or_else(|| panic!("{} not found", String::from_utf8_lossy(path)))
                .1;
        }
        nid
    }
}

/// Checks every node of `tree` in `image`: type, permissions, owners,
/// mtime, size, links, xattrs and contents; and directories' dot entries.
fn assert_matches(tree: &Tree, image: &[u8], epoch: u64) {
    let reader = Reader::new(image);
    let root = (Vec::new(), tree.root(), tree.node(tree.root()));
    let entries =
        std::iter::once(root).chain(tree.walk().map(|entry| (entry.path, entry.id, entry.node)));
    let mut nids = BTreeMap::new();
    for (path, id, node) in entries {
        let shown = String::from_utf8_lossy(&path).into_owned();
        let nid = reader.lookup(&path);
        assert_eq!(
            *nids.entry(id).or_insert(nid),
            nid,
            "{shown}: one inode per node"
        );
        let inode = reader.inode(nid);
        let core = &inode.core;
        let metadata = &node.metadata;
        let mode = node.kind.file_type_bits() | metadata.mode;
        assert_eq!(u32::from(core.mode), mode, "{shown}: mode");
        assert_eq!(
            (core.uid, core.gid),
            (metadata.uid, metadata.gid),
            "{shown}"
        );
        assert_eq!(core.mtime, metadata.mtime.min(epoch), "{shown}: mtime");
        let xattrs: Vec<(String, Vec<u8>)> = metadata.xattrs.clone().into_iter().collect();
        assert_eq!(inode.xattrs, xattrs, "{shown}: xattrs");
        let data = reader.data(&inode);
        match &node.kind {
            Kind::Directory(directory) => {
                let entries = directory::decode(&data);
                let subdirectories = directory
                    .entries()
                    .filter(|(_, child)| matches!(tree.node(*child).kind, Kind::Directory(_)))
                    .count();
                assert_eq!(core.nlink as usize, 2 + subdirectories, "{shown}: links");
                assert_eq!(entries.len(), directory.len() + 2, "{shown}: entries");
                let dot = entries.iter().find(|(name, ..)| name == b".").unwrap();
                assert_eq!(dot.1, nid, "{shown}: `.`");
                let parent = &path[..path.iter().rposition(|&b| b == b'/').unwrap_or(0)];
                let dotdot = entries.iter().find(|(name, ..)| name == b"..").unwrap();
                assert_eq!(dotdot.1, reader.lookup(parent), "{shown}: `..`");
                let names: Vec<&Vec<u8>> = entries.iter().map(|(name, ..)| name).collect();
                assert!(names.is_sorted(), "{shown}: entries sorted");
            }
            Kind::File(blob) => {
                let mut contents = Vec::new();
                tree.contents(blob).read_to_end(&mut contents).unwrap();
                assert_eq!(core.size, blob.len(), "{shown}: size");
                assert!(data == contents, "{shown}: contents");
                assert_eq!(core.nlink, node.links(), "{shown}: links");
            }
            Kind::Symlink(target) => assert_eq!(&data, target, "{shown}: target"),
            Kind::CharDevice(device) | Kind::BlockDevice(device) => {
                let rdev = core.i_u;
                let major = (rdev & 0xfff00) >> 8;
                let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
                assert_eq!(
                    (major, minor),
                    (device.major, device.minor),
                    "{shown}: rdev"
                );
            }
            Kind::Fifo | Kind::Socket => assert_eq!(core.size, 0),
        }
    }
    assert_eq!(reader.superblock.inodes, nids.len() as u64);
}

fn metadata(mode: u32, mtime: u64) -> Metadata {
    Metadata::new(mode, mtime)
}

fn file(tree: &mut Tree, path: &str, contents: &[u8], metadata: Metadata) -> NodeId {
    let blob = tree.store_bytes(contents).unwrap();
    tree.insert(path, Kind::File(blob), metadata).unwrap()
}

/// Every kind of node, owners, special permission bits, xattrs and mtimes
/// on both sides of the epoch.
fn every_kind() -> Tree {
    let mut tree = Tree::new(EPOCH);
    let mut owned = metadata(0o4755, EPOCH - 100);
    owned.uid = 100_000;
    owned.gid = 4_294_967_294;
    owned.xattrs.insert(
        "security.capability".into(),
        vec![
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    owned
        .xattrs
        .insert("user.comment".into(), b"hello".to_vec());
    owned
        .xattrs
        .insert("trusted.overlay.opaque".into(), b"y".to_vec());
    let linked = file(&mut tree, "bin/tool", &[7; 10_000], owned);
    tree.hard_link("sbin/tool", linked).unwrap();
    file(&mut tree, "empty", b"", metadata(0o644, EPOCH + 100));
    file(
        &mut tree,
        "etc/hostname",
        b"ossify\n",
        metadata(0o2644, EPOCH),
    );
    file(&mut tree, "block", &[1; 8192], metadata(0o600, 0));
    tree.insert("tmp", Kind::directory(), metadata(0o1777, EPOCH))
        .unwrap();
    tree.insert("emptydir", Kind::directory(), metadata(0o700, 5))
        .unwrap();
    let long_target = "t/".repeat(2047) + "x";
    for (name, target) in [("short", "etc/hostname"), ("long", long_target.as_str())] {
        tree.insert(
            format!("links/{name}"),
            Kind::Symlink(target.as_bytes().to_vec()),
            metadata(0o777, EPOCH),
        )
        .unwrap();
    }
    let devices = [
        ("dev/null", Kind::CharDevice(Device { major: 1, minor: 3 })),
        (
            "dev/nvme",
            Kind::BlockDevice(Device {
                major: 259,
                minor: 70_000,
            }),
        ),
        ("dev/fifo", Kind::Fifo),
        ("dev/socket", Kind::Socket),
    ];
    for (path, kind) in devices {
        tree.insert(path, kind, metadata(0o660, EPOCH)).unwrap();
    }
    tree
}

#[test]
fn every_kind_reads_back() {
    let tree = every_kind();
    let image = write_image(&tree, EPOCH);
    assert_matches(&tree, &image, EPOCH);
    let reader = Reader::new(&image);
    let superblock = &reader.superblock;
    assert_eq!(superblock.root_nid, 36, "the root follows the superblock");
    assert_eq!(superblock.build_time, EPOCH);
    assert_eq!(superblock.feature_incompat, 0, "no holes, no features");
    assert_eq!(superblock.uuid[6] >> 4, 8, "a version 8 UUID");
    let long = reader.inode(reader.lookup(b"links/long"));
    assert_eq!(long.core.size, 4095);
    assert_eq!(
        long.core.layout,
        Layout::FlatPlain,
        "4095 bytes cannot go inline"
    );
    let tool = reader.inode(reader.lookup(b"bin/tool"));
    assert!(
        tool.core.extended,
        "owners above 65535 need an extended inode"
    );
    assert_eq!(tool.core.nlink, 2);
    assert_eq!(tool.core.layout, Layout::FlatInline);
    let hostname = reader.inode(reader.lookup(b"etc/hostname"));
    assert!(
        !hostname.core.extended,
        "mtime at the epoch fits a compact inode"
    );
}

#[test]
fn the_same_tree_gives_the_same_bytes_and_another_epoch_others() {
    let tree = every_kind();
    let image = write_image(&tree, EPOCH);
    assert_eq!(write_image(&every_kind(), EPOCH), image);
    let later = write_image(&tree, EPOCH + 1);
    assert_ne!(later, image);
    assert_matches(&tree, &later, EPOCH + 1);
    assert_ne!(
        Reader::new(&later).superblock.uuid,
        Reader::new(&image).superblock.uuid
    );
}

#[test]
fn an_empty_tree_is_a_root_directory() {
    let tree = Tree::new(EPOCH);
    let image = write_image(&tree, EPOCH);
    assert_eq!(image.len(), 4096, "one block holds superblock and root");
    assert_matches(&tree, &image, EPOCH);
}

#[test]
fn sparse_files_become_holes() {
    const MIB: usize = 1 << 20;
    let mut tree = Tree::new(EPOCH);
    let mut contents = vec![0; 64 * MIB];
    for at in [0, 32 * MIB, 64 * MIB - 4096] {
        contents[at..at + 4096].fill(0x5A);
    }
    file(&mut tree, "sparse", &contents, metadata(0o644, EPOCH));
    file(
        &mut tree,
        "zeros",
        &vec![0; 3 * 4096 + 5],
        metadata(0o644, EPOCH),
    );
    let image = write_image(&tree, EPOCH);
    assert!(image.len() < MIB, "{} bytes", image.len());
    assert_matches(&tree, &image, EPOCH);
    let reader = Reader::new(&image);
    assert_eq!(
        reader.superblock.feature_incompat,
        superblock::INCOMPAT_CHUNKED_FILE
    );
    let sparse = reader.inode(reader.lookup(b"sparse"));
    assert_eq!(sparse.core.layout, Layout::ChunkBased);
}

#[test]
fn many_files_of_many_sizes_keep_tails_within_blocks() {
    let mut tree = Tree::new(EPOCH);
    for i in 0..400u64 {
        let size = (i * 977) % 9000;
        let bytes: Vec<u8> = (0..size).map(|at| (at % 251) as u8 + 1).collect();
        let mut meta = metadata(0o644, EPOCH - i % 3);
        if i % 7 == 0 {
            meta.xattrs
                .insert(format!("user.n{i}"), vec![i as u8; (i * 13 % 700) as usize]);
        }
        file(&mut tree, &format!("d{}/f{i}", i % 5), &bytes, meta);
    }
    let image = write_image(&tree, EPOCH);
    assert_matches(&tree, &image, EPOCH);
}

#[test]
fn wide_and_deep_directories_read_back() {
    let mut tree = Tree::new(EPOCH);
    for i in 0..10_000 {
        file(
            &mut tree,
            &format!("wide/entry-{i}"),
            b"",
            metadata(0o644, EPOCH),
        );
    }
    let deep: Vec<String> = (0..120).map(|level| format!("level{level}")).collect();
    tree.insert(deep.join("/"), Kind::directory(), metadata(0o755, EPOCH))
        .unwrap();
    let image = write_image(&tree, EPOCH);
    assert_matches(&tree, &image, EPOCH);
}

#[test]
fn what_erofs_cannot_hold_is_an_error_naming_the_path() {
    let mut tree = Tree::new(EPOCH);
    tree.insert(
        "dev/huge",
        Kind::CharDevice(Device {
            major: 4096,
            minor: 0,
        }),
        metadata(0o600, EPOCH),
    )
    .unwrap();
    let error = write(&tree, Cursor::new(Vec::new()), &Options::default()).unwrap_err();
    assert!(matches!(error, ErofsError::DeviceNumber { .. }), "{error}");
    assert!(error.to_string().contains("/dev/huge"), "{error}");

    let mut tree = Tree::new(EPOCH);
    let mut odd = metadata(0o644, EPOCH);
    odd.xattrs.insert("system.nfs4_acl".into(), b"x".to_vec());
    file(&mut tree, "f", b"", odd);
    let error = write(&tree, Cursor::new(Vec::new()), &Options::default()).unwrap_err();
    assert!(
        matches!(error, ErofsError::XattrNamespace { .. }),
        "{error}"
    );
}

/// Text-like bytes: words from a small vocabulary, pseudo-randomly.
pub(super) fn text(len: usize, seed: u32) -> Vec<u8> {
    let words = [
        "root ",
        "erofs ",
        "image ",
        "kernel ",
        "block ",
        "/usr/lib ",
        "\n",
        "0x1f ",
    ];
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 10);
    while bytes.len() < len {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.extend_from_slice(words[(state >> 16) as usize % words.len()].as_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Bytes LZ4 cannot shorten.
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Files LZ4 compresses, files it cannot, zero runs, and sizes around
/// block multiples.
fn compressible() -> Tree {
    const MIB: usize = 1 << 20;
    let mut tree = every_kind();
    let meta = || metadata(0o644, EPOCH);
    file(&mut tree, "text/large", &text(3 * MIB + 123, 1), meta());
    file(&mut tree, "text/small", &text(5000, 2), meta());
    file(&mut tree, "noise", &noise(100_000, 3), meta());
    let mixed: Vec<u8> = [text(50_000, 4), noise(30_000, 5), text(50_000, 6)].concat();
    file(&mut tree, "mixed", &mixed, meta());
    let holes: Vec<u8> = [text(MIB, 7), vec![0; MIB], text(MIB, 8), vec![0; 10_000]].concat();
    file(&mut tree, "zero-runs", &holes, meta());
    let mut sparse = vec![0; 64 * MIB];
    sparse[32 * MIB..32 * MIB + 10_000].copy_from_slice(&text(10_000, 9));
    file(&mut tree, "sparse", &sparse, meta());
    for blocks in [2, 3, 10, 300] {
        for delta in [-1i64, 0, 1] {
            let size = (blocks * 4096 + delta) as usize;
            file(
                &mut tree,
                &format!("sizes/{size}"),
                &text(size, size as u32),
                meta(),
            );
        }
    }
    tree
}

#[test]
fn lz4_files_read_back() {
    let tree = compressible();
    let image = write_with(&tree, EPOCH, Compression::Lz4);
    assert_matches(&tree, &image, EPOCH);
    let reader = Reader::new(&image);
    assert_eq!(
        reader.superblock.feature_incompat,
        superblock::INCOMPAT_LZ4_0PADDING | superblock::INCOMPAT_CHUNKED_FILE
    );
    assert_eq!(reader.superblock.lz4_max_distance, 65_535);
    let inode = |path: &str| reader.inode(reader.lookup(path.as_bytes()));
    let layout = |path: &str| inode(path).core.layout;
    for path in [
        "text/large",
        "mixed",
        "zero-runs",
        "bin/tool",
        "block",
        "sizes/40959",
        "sizes/40961",
        "sizes/1228801",
    ] {
        assert_eq!(layout(path), Layout::CompressionLegacy, "{path}");
    }
    assert_eq!(
        layout("text/small"),
        Layout::FlatInline,
        "5000 bytes cannot save a block"
    );
    assert_eq!(
        layout("sizes/8191"),
        Layout::CompressionLegacy,
        "2 blocks to 1"
    );
    assert_eq!(layout("noise"), Layout::FlatInline, "noise stays flat");
    assert_eq!(
        layout("sparse"),
        Layout::ChunkBased,
        "holes beat compressed zeros"
    );
    let kinds = |path: &str| {
        let indexes = reader.indexes(&inode(path));
        [0, 1, 2].map(|kind| indexes.iter().filter(|index| index.0 == kind).count())
    };
    let [plain, head, nonhead] = kinds("mixed");
    assert!(
        plain >= 7 && head >= 4 && nonhead >= 4,
        "{plain} {head} {nonhead}"
    );
    let [_, head, nonhead] = kinds("text/large");
    assert!(nonhead > head, "text compresses over 2:1: {head} {nonhead}");
    let uncompressed = write_image(&tree, EPOCH);
    assert!(
        image.len() < uncompressed.len() - (4 << 20),
        "{} vs {} bytes",
        image.len(),
        uncompressed.len()
    );
}

#[test]
fn lz4_images_are_deterministic() {
    let tree = compressible();
    let image = write_with(&tree, EPOCH, Compression::Lz4);
    assert!(write_with(&compressible(), EPOCH, Compression::Lz4) == image);
}

#[test]
fn lz4_without_compressible_files_claims_no_lz4_feature() {
    let mut tree = Tree::new(EPOCH);
    file(&mut tree, "small", &text(5000, 1), metadata(0o644, EPOCH));
    file(
        &mut tree,
        "noise",
        &noise(100_000, 2),
        metadata(0o644, EPOCH),
    );
    let image = write_with(&tree, EPOCH, Compression::Lz4);
    assert_eq!(Reader::new(&image).superblock.feature_incompat, 0);
    assert!(image == write_image(&tree, EPOCH), "nothing saves a block");
}

#[test]
fn compression_names_parse() {
    for compression in Compression::ALL {
        assert_eq!(
            compression.to_string().parse::<Compression>().unwrap(),
            compression
        );
    }
    let error = "zstd".parse::<Compression>().unwrap_err().to_string();
    assert!(error.contains("none or lz4"), "{error}");
}

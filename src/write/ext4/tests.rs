//! Images read back by a small reader of our own: every checksum is
//! recomputed, and every node's fields and contents compared with the tree.

use std::collections::BTreeMap;
use std::io::Cursor;

use super::geometry::{BLOCKS_PER_GROUP, INODE_SIZE};
use super::le::{get16, get32};
use super::*;
use crate::tree::{Device, Kind, Metadata};

const EPOCH: u64 = 1_700_000_000;

fn options() -> Options {
    Options {
        source_date_epoch: EPOCH,
        size: None,
        label: "root".to_owned(),
    }
}

fn image(tree: &Tree, options: &Options) -> Vec<u8> {
    write(tree, Cursor::new(Vec::new()), options)
        .expect("writes")
        .into_inner()
}

/// The error writing `tree` gives (without printing a whole image if it
/// does not).
fn refusal(tree: &Tree, options: &Options) -> Ext4Error {
    match write(tree, Cursor::new(Vec::new()), options) {
        Ok(_) => panic!("the image was written"),
        Err(error) => error,
    }
}

fn crc(seed: u32, bytes: &[u8]) -> u32 {
    crc32c::update(seed, bytes)
}

/// Reads back what the writer wrote, checking checksums on the way.
struct Image<'a> {
    bytes: &'a [u8],
    seed: u32,
    hash_seed: [u32; 4],
    inodes_per_group: u64,
    descriptors: Vec<&'a [u8]>,
}

impl<'a> Image<'a> {
    fn open(bytes: &'a [u8]) -> Image<'a> {
        let sb = &bytes[1024..2048];
        assert_eq!(get16(sb, 0x38), superblock::MAGIC);
        assert_eq!(
            get32(sb, 0x3FC),
            crc(!0, &sb[..0x3FC]),
            "superblock checksum"
        );
        let blocks = u64::from(get32(sb, 4)) | u64::from(get32(sb, 0x150)) << 32;
        assert!(blocks * BLOCK_SIZE <= bytes.len() as u64);
        let seed = crc(!0, &sb[0x68..0x78]);
        let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
        let descriptors: Vec<&[u8]> = (0..groups as usize)
            .map(|g| &bytes[4096 + g * 64..4096 + (g + 1) * 64])
            .collect();
        for (g, desc) in descriptors.iter().enumerate() {
            let mut zeroed = desc.to_vec();
            zeroed[0x1E..0x20].fill(0);
            let expected = crc(crc(seed, &(g as u32).to_le_bytes()), &zeroed) as u16;
            assert_eq!(get16(desc, 0x1E), expected, "descriptor {g} checksum");
        }
        Image {
            bytes,
            seed,
            hash_seed: std::array::from_fn(|i| get32(sb, 0xEC + 4 * i)),
            inodes_per_group: u64::from(get32(sb, 0x28)),
            descriptors,
        }
    }

    fn block(&self, block: u64) -> &'a [u8] {
        &self.bytes[(block * BLOCK_SIZE) as usize..((block + 1) * BLOCK_SIZE) as usize]
    }

    fn inode(&self, ino: u32) -> &'a [u8] {
        let index = u64::from(ino) - 1;
        let desc = self.descriptors[(index / self.inodes_per_group) as usize];
        let table = u64::from(get32(desc, 8)) | u64::from(get32(desc, 0x28)) << 32;
        let at = (table * BLOCK_SIZE + index % self.inodes_per_group * INODE_SIZE) as usize;
        let raw = &self.bytes[at..at + INODE_SIZE as usize];
        let mut zeroed = raw.to_vec();
        zeroed[0x7C..0x7E].fill(0);
        zeroed[0x82..0x84].fill(0);
        let checksum = crc(inode::checksum_seed(self.seed, ino), &zeroed);
        let stored = u32::from(get16(raw, 0x7C)) | u32::from(get16(raw, 0x82)) << 16;
        assert_eq!(stored, checksum, "inode {ino} checksum");
        raw
    }

    /// (logical, len, physical) of every extent under `node`, checking
    /// tree block checksums.
    fn extents(&self, ino: u32, node: &[u8], out: &mut Vec<(u64, u64, u64)>) {
        assert_eq!(get16(node, 0), 0xF30A, "extent magic");
        let entries = usize::from(get16(node, 2));
        let depth = get16(node, 6);
        for i in 0..entries {
            let entry = &node[12 * (i + 1)..12 * (i + 2)];
            if depth == 0 {
                let start = u64::from(get16(entry, 6)) << 32 | u64::from(get32(entry, 8));
                out.push((
                    u64::from(get32(entry, 0)),
                    u64::from(get16(entry, 4)),
                    start,
                ));
            } else {
                let child = u64::from(get16(entry, 8)) << 32 | u64::from(get32(entry, 4));
                let block = self.block(child);
                let max = usize::from(get16(block, 4));
                let tail = 12 + 12 * max;
                let seed = inode::checksum_seed(self.seed, ino);
                assert_eq!(
                    get32(block, tail),
                    crc(seed, &block[..tail]),
                    "extent block checksum"
                );
                self.extents(ino, block, out);
            }
        }
    }

    /// The inode's contents, holes as zeros.
    fn contents(&self, ino: u32) -> Vec<u8> {
        let raw = self.inode(ino);
        let size = (u64::from(get32(raw, 4)) | u64::from(get32(raw, 0x6C)) << 32) as usize;
        let mut extents = Vec::new();
        self.extents(ino, &raw[0x28..0x64], &mut extents);
        let mut bytes = vec![0u8; size];
        for (logical, len, start) in extents {
            for n in 0..len {
                let at = ((logical + n) * BLOCK_SIZE) as usize;
                let end = (at + BLOCK_SIZE as usize).min(size);
                bytes[at..end].copy_from_slice(&self.block(start + n)[..end - at]);
            }
        }
        bytes
    }

    /// The directory's entries, checking each block's tail checksum.
    fn entries(&self, ino: u32) -> Vec<(Vec<u8>, u32, u8)> {
        let indexed = get32(self.inode(ino), 0x20) & inode::INDEX_FL != 0;
        let bytes = self.contents(ino);
        let seed = inode::checksum_seed(self.seed, ino);
        let mut blocks = bytes.chunks(BLOCK_SIZE as usize);
        let mut entries = Vec::new();
        let mut index = Vec::new();
        if indexed {
            let root = blocks.next().unwrap();
            let (limit, count) = (usize::from(get16(root, 32)), usize::from(get16(root, 34)));
            assert_eq!(limit, 507);
            let tail = 32 + 8 * limit;
            let mut zeroed_tail = root[tail..tail + 8].to_vec();
            zeroed_tail[4..].fill(0);
            let checksum = crc(crc(seed, &root[..32 + 8 * count]), &zeroed_tail);
            assert_eq!(get32(root, tail + 4), checksum, "index root checksum");
            entries.push((b".".to_vec(), get32(root, 0), root[7]));
            entries.push((b"..".to_vec(), get32(root, 12), root[19]));
            for leaf in 0..count {
                let hash = if leaf == 0 {
                    0
                } else {
                    get32(root, 32 + 8 * leaf)
                };
                assert_eq!(get32(root, 36 + 8 * leaf), leaf as u32 + 1, "leaf block");
                index.push(hash);
            }
            assert_eq!(index.len(), blocks.len());
        }
        for (leaf, block) in blocks.enumerate() {
            assert_eq!(
                get32(block, 4092),
                crc(seed, &block[..4084]),
                "directory block checksum"
            );
            assert_eq!(block[4084 + 7], 0xDE);
            let mut at = 0;
            while at < 4084 {
                let len = usize::from(get16(block, at + 4));
                let name = &block[at + 8..at + 8 + usize::from(block[at + 6])];
                if get32(block, at) != 0 {
                    if indexed {
                        let (hash, _) = hash::name_hash(name, &self.hash_seed);
                        assert!(index[leaf] <= hash, "hash below its leaf's range");
                        assert!(
                            index.get(leaf + 1).is_none_or(|&next| hash < next),
                            "hash above its leaf's range"
                        );
                    }
                    entries.push((name.to_vec(), get32(block, at), block[at + 7]));
                }
                at += len;
            }
            assert_eq!(at, 4084, "entries fill the block up to its tail");
        }
        entries
    }

    fn lookup(&self, path: &str) -> u32 {
        path.split('/')
            .filter(|part| !part.is_empty())
            .fold(2, |dir, name| {
                self.entries(dir)
                    .into_iter()
                    .find(|(entry, _, _)| entry == name.as_bytes())
                    .unwrap_or_else(|| panic!("{path}: no {name}"))
                    .1
            })
    }
}

fn small_tree() -> Tree {
    let mut tree = Tree::new(EPOCH - 100);
    let data = tree.store_bytes(b"hello, ext4\n").unwrap();
    let mut meta = Metadata::new(0o4755, EPOCH + 1000);
    meta.uid = 100_000;
    meta.gid = 4_294_967_294;
    meta.xattrs.insert("user.small".into(), b"v".to_vec());
    let file = tree.insert("etc/hello", Kind::File(data), meta).unwrap();
    tree.hard_link("etc/hello-again", file).unwrap();
    tree.insert(
        "dev/nvme",
        Kind::BlockDevice(Device {
            major: 259,
            minor: 70000,
        }),
        Metadata::new(0o660, 0),
    )
    .unwrap();
    tree.insert(
        "dev/null",
        Kind::CharDevice(Device { major: 1, minor: 3 }),
        Metadata::new(0o666, 0),
    )
    .unwrap();
    tree.insert(
        "short",
        Kind::Symlink(b"etc/hello".to_vec()),
        Metadata::new(0o777, 0),
    )
    .unwrap();
    tree.insert(
        "long",
        Kind::Symlink(vec![b'x'; 300]),
        Metadata::new(0o777, 0),
    )
    .unwrap();
    tree.insert("run/fifo", Kind::Fifo, Metadata::new(0o600, 0))
        .unwrap();
    tree
}

#[test]
fn superblock_and_descriptors_check_out() {
    let bytes = image(&small_tree(), &options());
    let image = Image::open(&bytes);
    let sb = &bytes[1024..2048];
    assert_eq!(&sb[0x78..0x7C], b"root");
    assert_eq!(get32(sb, 0x5C), superblock::COMPAT);
    assert_eq!(get32(sb, 0x60), superblock::INCOMPAT);
    assert_eq!(get32(sb, 0x64), superblock::RO_COMPAT);
    assert_eq!(get32(sb, 0x108), EPOCH as u32, "mkfs time");
    assert_eq!(get32(sb, 0x30), 0, "never written by a kernel");
    assert_eq!(sb[0x68 + 6] >> 4, 4, "a version 4 UUID");
    assert!(
        bytes.len() as u64 >= 16 * 1024 * 1024,
        "16 MiB of headroom at least"
    );
    for (g, desc) in image.descriptors.iter().enumerate() {
        let block_bitmap = image.block(u64::from(get32(desc, 0)));
        let inode_bitmap = image.block(u64::from(get32(desc, 4)));
        let block_csum = u32::from(get16(desc, 0x18)) | u32::from(get16(desc, 0x38)) << 16;
        let inode_csum = u32::from(get16(desc, 0x1A)) | u32::from(get16(desc, 0x3A)) << 16;
        assert_eq!(
            block_csum,
            crc(image.seed, block_bitmap),
            "group {g} block bitmap"
        );
        let inode_bytes = (image.inodes_per_group / 8) as usize;
        assert_eq!(
            inode_csum,
            crc(image.seed, &inode_bitmap[..inode_bytes]),
            "group {g} inode bitmap"
        );
    }
}

#[test]
fn nodes_read_back_as_written() {
    let tree = small_tree();
    let bytes = image(&tree, &options());
    let image = Image::open(&bytes);

    let root = image.inode(2);
    assert_eq!(get16(root, 0), 0o040755);
    // ., .., and lost+found, dev, etc, run: links 2 + 4 subdirectories.
    assert_eq!(get16(root, 0x1A), 6);
    let names: Vec<Vec<u8>> = image
        .entries(2)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    let expected: Vec<&[u8]> = vec![
        b".",
        b"..",
        b"dev",
        b"etc",
        b"long",
        b"lost+found",
        b"run",
        b"short",
    ];
    assert_eq!(names, expected);
    assert_eq!(image.lookup("lost+found"), 11);
    assert_eq!(image.contents(11).len(), 4 * 4096);

    let hello = image.lookup("etc/hello");
    assert_eq!(
        image.lookup("etc/hello-again"),
        hello,
        "hard links share an inode"
    );
    let raw = image.inode(hello);
    assert_eq!(get16(raw, 0), 0o104755);
    assert_eq!(get16(raw, 0x1A), 2);
    assert_eq!(
        u32::from(get16(raw, 2)) | u32::from(get16(raw, 0x78)) << 16,
        100_000
    );
    assert_eq!(
        u32::from(get16(raw, 0x18)) | u32::from(get16(raw, 0x7A)) << 16,
        4_294_967_294
    );
    assert_eq!(get32(raw, 0x10), EPOCH as u32, "mtime clamped");
    assert_eq!(image.contents(hello), b"hello, ext4\n");
    assert_eq!(
        &raw[XATTR_AREA..XATTR_AREA + 4],
        &0xEA02_0000u32.to_le_bytes()
    );
    assert_eq!(&raw[XATTR_AREA + 4 + 16..XATTR_AREA + 4 + 21], b"small");

    let nvme = image.inode(image.lookup("dev/nvme"));
    assert_eq!(get16(nvme, 0), 0o060660);
    assert_eq!(get32(nvme, 0x28), 0);
    assert_eq!(
        get32(nvme, 0x2C),
        (70000 & 0xFF) | 259 << 8 | (70000 & !0xFF) << 12
    );
    let null = image.inode(image.lookup("dev/null"));
    assert_eq!(get32(null, 0x28), 1 << 8 | 3);

    let short = image.inode(image.lookup("short"));
    assert_eq!(
        get32(short, 0x20) & inode::EXTENTS_FL,
        0,
        "fast symlinks hold no extents"
    );
    assert_eq!(&short[0x28..0x31], b"etc/hello");
    assert_eq!(image.contents(image.lookup("long")), vec![b'x'; 300]);
    assert_eq!(get16(image.inode(image.lookup("run/fifo")), 0), 0o010600);
}

const XATTR_AREA: usize = inode::XATTR_START;

#[test]
fn holes_take_no_blocks_and_many_extents_make_a_tree() {
    let mut tree = Tree::new(EPOCH);
    let mut sparse = vec![0u8; 64 << 20];
    sparse[..5].copy_from_slice(b"start");
    sparse[32 << 20] = 1;
    sparse[(64 << 20) - 1] = 2;
    let blob = tree.store_bytes(&sparse).unwrap();
    tree.insert("sparse", Kind::File(blob), Metadata::new(0o644, 0))
        .unwrap();
    // Every other block holds data: 3000 extents.
    let mut striped = vec![0u8; 6000 * 4096];
    for block in (0..6000).step_by(2) {
        striped[block * 4096] = (block % 251) as u8 + 1;
    }
    let blob = tree.store_bytes(&striped).unwrap();
    tree.insert("striped", Kind::File(blob), Metadata::new(0o644, 0))
        .unwrap();
    let bytes = image(&tree, &options());
    let image = Image::open(&bytes);

    let ino = image.lookup("sparse");
    let raw = image.inode(ino);
    assert_eq!(
        get32(raw, 0x1C),
        3 * 8,
        "three 4 KiB blocks in 512-byte sectors"
    );
    assert_eq!(image.contents(ino), sparse);

    let ino = image.lookup("striped");
    let raw = image.inode(ino);
    // 3000 extents fill 9 leaves under one index block.
    assert_eq!(get16(raw, 0x28 + 6), 2, "tree depth");
    let mut extents = Vec::new();
    image.extents(ino, &raw[0x28..0x64], &mut extents);
    assert_eq!(extents.len(), 3000);
    assert_eq!(image.contents(ino), striped);
    assert!(bytes.len() < (32 << 20), "{} bytes", bytes.len());
}

#[test]
fn ten_thousand_entries_span_blocks() {
    let mut tree = Tree::new(EPOCH);
    for n in 0..10_000 {
        tree.insert(
            format!("wide/file-{n:05}"),
            Kind::Fifo,
            Metadata::new(0o644, 0),
        )
        .unwrap();
    }
    let bytes = image(&tree, &options());
    let image = Image::open(&bytes);
    let free_inodes = get32(&bytes[1024..], 0x10);
    assert!(free_inodes >= 1024, "{free_inodes} free inodes");
    let wide = image.lookup("wide");
    assert_ne!(
        get32(image.inode(wide), 0x20) & inode::INDEX_FL,
        0,
        "hash-indexed"
    );
    let mut names: Vec<Vec<u8>> = image
        .entries(wide)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(&names[..2], [b".".to_vec(), b"..".to_vec()]);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 10_002);
    assert_eq!(names[2], b"file-00000");
    assert_eq!(names[10_001], b"file-09999");
}

#[test]
fn large_xattrs_go_to_a_checksummed_block() {
    let mut tree = Tree::new(EPOCH);
    let mut meta = Metadata::new(0o644, 0);
    meta.xattrs.insert(
        "security.capability".into(),
        vec![
            1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    meta.xattrs.insert("user.big".into(), vec![7; 1000]);
    tree.insert("f", Kind::Fifo, meta).unwrap();
    let bytes = image(&tree, &options());
    let image = Image::open(&bytes);
    let ino = image.lookup("f");
    let raw = image.inode(ino);
    let block_nr = u64::from(get32(raw, 0x68));
    assert_ne!(block_nr, 0);
    assert_eq!(get32(raw, 0x1C), 8, "the xattr block counts in i_blocks");
    let block = image.block(block_nr);
    let mut zeroed = block.to_vec();
    zeroed[0x10..0x14].fill(0);
    assert_eq!(
        get32(block, 0x10),
        crc(crc(image.seed, &block_nr.to_le_bytes()), &zeroed)
    );
    // Sorted by index: user (1) before security (6).
    assert_eq!(block[32 + 1], 1);
    assert_eq!(&block[32 + 16..32 + 19], b"big");
    let offset = usize::from(get16(block, 32 + 2));
    assert_eq!(&block[offset..offset + 1000], &[7; 1000][..]);
}

#[test]
fn same_input_same_bytes_and_epoch_matters() {
    let tree = small_tree();
    assert_eq!(image(&tree, &options()), image(&tree, &options()));
    let later = Options {
        source_date_epoch: EPOCH + 1,
        ..options()
    };
    assert_ne!(image(&tree, &options()), image(&tree, &later));
}

#[test]
fn explicit_sizes_are_kept_or_refused() {
    let tree = small_tree();
    let sized = Options {
        size: Some(100 << 20),
        ..options()
    };
    let bytes = image(&tree, &sized);
    assert_eq!(bytes.len(), 100 << 20);
    Image::open(&bytes);
    let tiny = Options {
        size: Some(16 * 1024),
        ..options()
    };
    let error = refusal(&tree, &tiny);
    assert!(
        matches!(error, Ext4Error::TooSmall { size: 16384, needed } if needed > 16384),
        "{error}"
    );
}

#[test]
fn several_groups_keep_superblock_copies() {
    // 300 MiB: three groups, copies in groups 1 (and none in 2).
    let tree = small_tree();
    let options = Options {
        size: Some(300 << 20),
        ..options()
    };
    let bytes = image(&tree, &options);
    let image = Image::open(&bytes);
    assert_eq!(image.descriptors.len(), 3);
    let copy = &bytes[(BLOCKS_PER_GROUP * BLOCK_SIZE) as usize..][..1024];
    assert_eq!(get16(copy, 0x38), superblock::MAGIC);
    assert_eq!(get16(copy, 0x5A), 1, "s_block_group_nr");
    assert_eq!(get32(copy, 0x3FC), crc(!0, &copy[..0x3FC]));
}

#[test]
fn refuses_what_ext4_cannot_hold() {
    let mut tree = Tree::new(EPOCH);
    let mut meta = Metadata::new(0o644, 0);
    meta.xattrs
        .insert("com.apple.quarantine".into(), b"x".to_vec());
    tree.insert("f", Kind::Fifo, meta).unwrap();
    let error = refusal(&tree, &options());
    assert!(matches!(error, Ext4Error::XattrName { .. }), "{error}");
    let mut tree = Tree::new(EPOCH);
    tree.insert("empty", Kind::Symlink(Vec::new()), Metadata::new(0o777, 0))
        .unwrap();
    let error = refusal(&tree, &options());
    assert!(matches!(error, Ext4Error::EmptySymlink { .. }), "{error}");
    let mut tree = Tree::new(EPOCH);
    tree.insert(
        "long",
        Kind::Symlink(vec![b'x'; 4096]),
        Metadata::new(0o777, 0),
    )
    .unwrap();
    assert!(matches!(
        refusal(&tree, &options()),
        Ext4Error::SymlinkTooLong { len: 4096, .. }
    ));
    let mut tree = Tree::new(EPOCH);
    let mut meta = Metadata::new(0o644, 0);
    meta.xattrs.insert("user.huge".into(), vec![0; 5000]);
    tree.insert("f", Kind::Fifo, meta).unwrap();
    assert!(matches!(
        refusal(&tree, &options()),
        Ext4Error::XattrsTooLarge { .. }
    ));
    let mut tree = Tree::new(EPOCH);
    let mut meta = Metadata::new(0o644, 0);
    meta.xattrs
        .insert("system.posix_acl_access".into(), vec![1, 2, 3]);
    tree.insert("f", Kind::Fifo, meta).unwrap();
    assert!(matches!(refusal(&tree, &options()), Ext4Error::Acl { .. }));
    let mut tree = Tree::new(EPOCH);
    tree.insert("f", Kind::Fifo, Metadata::new(0o644, inode::MAX_TIME + 1))
        .unwrap();
    let unclamped = Options {
        source_date_epoch: u64::MAX,
        ..options()
    };
    assert!(matches!(
        refusal(&tree, &unclamped),
        Ext4Error::TimeTooLate { .. }
    ));
    let mut tree = Tree::new(EPOCH);
    let fifo = tree
        .insert("links/0", Kind::Fifo, Metadata::new(0o644, 0))
        .unwrap();
    for n in 1..=65_000 {
        tree.hard_link(format!("links/{n}"), fifo).unwrap();
    }
    let error = refusal(&tree, &options());
    assert!(
        matches!(error, Ext4Error::TooManyLinks { links: 65_001, .. }),
        "{error}"
    );
    let long_label = Options {
        label: "x".repeat(17),
        ..options()
    };
    let error = refusal(&Tree::new(0), &long_label);
    assert!(matches!(error, Ext4Error::LabelTooLong { .. }), "{error}");
}

#[test]
fn times_past_2038_carry_epoch_bits() {
    assert_eq!(inode::split_time(0x7FFF_FFFF), (0x7FFF_FFFF, 0));
    assert_eq!(inode::split_time(1 << 31), (0x8000_0000, 1));
    assert_eq!(inode::split_time(inode::MAX_TIME), (0x7FFF_FFFF, 3));
}

#[test]
fn acls_are_stored_in_ext4_form() {
    let mut value = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (1u16, 6u16, u32::MAX),
        (2, 4, 1000),
        (4, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        value.extend_from_slice(&tag.to_le_bytes());
        value.extend_from_slice(&perm.to_le_bytes());
        value.extend_from_slice(&id.to_le_bytes());
    }
    let attrs = xattr::attrs(&BTreeMap::from([(
        "system.posix_acl_access".to_owned(),
        value,
    )]))
    .unwrap();
    assert_eq!(attrs[0].index, 2);
    assert!(attrs[0].name.is_empty());
    // Header, four short entries, one long.
    assert_eq!(attrs[0].value.len(), 4 + 4 * 4 + 8);
    assert_eq!(&attrs[0].value[..4], &1u32.to_le_bytes());
}

#[test]
fn a_tree_with_its_own_lost_found_keeps_it() {
    let mut tree = Tree::new(EPOCH);
    tree.insert("lost+found", Kind::directory(), Metadata::new(0o700, 0))
        .unwrap();
    tree.insert("a", Kind::Fifo, Metadata::new(0o644, 0))
        .unwrap();
    let bytes = image(&tree, &options());
    let image = Image::open(&bytes);
    let names: Vec<(Vec<u8>, u32)> = image
        .entries(2)
        .into_iter()
        .map(|(name, ino, _)| (name, ino))
        .collect();
    // No inode is set aside for a lost+found of ours: the tree's takes 12,
    // after `a` (11) in walk order.
    let expected: Vec<(Vec<u8>, u32)> = vec![
        (b".".to_vec(), 2),
        (b"..".to_vec(), 2),
        (b"a".to_vec(), 11),
        (b"lost+found".to_vec(), 12),
    ];
    assert_eq!(names, expected);
    assert_eq!(get16(image.inode(2), 0x1A), 3);
    assert_eq!(image.contents(12).len(), 4096);
}

#[test]
fn directories_too_big_for_one_index_level_stay_linear() {
    // 32,000 entries of 68 bytes (60-byte names) fill 534 leaves, more
    // than the 507 one index block addresses.
    let mut tree = Tree::new(EPOCH);
    let name = |n: u32| format!("{n:06}{}", "-".repeat(54));
    for n in 0..32_000 {
        tree.insert(
            format!("huge/{}", name(n)),
            Kind::Fifo,
            Metadata::new(0o644, 0),
        )
        .unwrap();
    }
    let bytes = image(&tree, &options());
    let image = Image::open(&bytes);
    let huge = image.lookup("huge");
    assert_eq!(
        get32(image.inode(huge), 0x20) & inode::INDEX_FL,
        0,
        "linear"
    );
    let entries = image.entries(huge);
    assert_eq!(entries.len(), 32_002);
    assert_eq!(entries[32_001].0, name(31_999).as_bytes());
}

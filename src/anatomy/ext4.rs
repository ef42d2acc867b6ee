//! ext4 file systems: the superblock and its backups, group descriptors,
//! bitmaps, inode tables (down to the inode and its path) and data blocks
//! (named by the file whose extent tree maps them).

use std::collections::VecDeque;

use super::source::{Fields, Source};

pub(crate) const MAGIC: u16 = 0xef53;
const SUPERBLOCK: u64 = 1024;
const ROOT_INODE: u32 = 2;
const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const EXTENTS_FLAG: u32 = 0x80000;
const EXTENT_MAGIC: u16 = 0xf30a;
const MODE_TYPE: u16 = 0xf000;
const MODE_DIRECTORY: u16 = 0x4000;
/// The deepest extent tree ext4 allows.
const MAX_EXTENT_DEPTH: u16 = 5;
/// The most inodes looked at while finding a block's or inode's owner.
const MAX_INODES: usize = 1 << 20;
/// The largest directory read.
const MAX_DIRECTORY: u64 = 16 << 20;

/// The breadcrumb of `offset` in the ext4 volume `source`.
pub(crate) fn describe(source: &dyn Source, offset: u64) -> Vec<String> {
    if offset < SUPERBLOCK {
        return vec!["boot sector padding".to_owned()];
    }
    if offset < SUPERBLOCK * 2 {
        return vec!["superblock".to_owned()];
    }
    let Some(volume) = Volume::open(source) else {
        return Vec::new();
    };
    volume.name(offset)
}

/// An ext4 volume's geometry and group descriptors.
struct Volume<'a> {
    source: &'a dyn Source,
    block: u64,
    first_data_block: u64,
    blocks_per_group: u64,
    inodes_per_group: u64,
    inode_size: u64,
    descriptor_size: u64,
    reserved_gdt_blocks: u64,
    sparse_super: bool,
    descriptors: Vec<u8>,
}

impl<'a> Volume<'a> {
    fn open(source: &'a dyn Source) -> Option<Volume<'a>> {
        let sb = source.bytes(SUPERBLOCK, 1024)?;
        if sb.le16(56) != MAGIC || sb.le32(24) > 6 {
            return None;
        }
        let block = 1024u64 << sb.le32(24);
        let wide = sb.le32(96) & INCOMPAT_64BIT != 0;
        let blocks = u64::from(sb.le32(4))
            | if wide {
                u64::from(sb.le32(0x150)) << 32
            } else {
                0
            };
        let first_data_block = u64::from(sb.le32(20));
        let blocks_per_group = u64::from(sb.le32(32));
        let inodes_per_group = u64::from(sb.le32(40));
        let inode_size = match sb.le32(76) {
            0 => 128,
            _ => u64::from(sb.le16(88)),
        };
        let descriptor_size = if wide { u64::from(sb.le16(254)) } else { 32 };
        if blocks_per_group == 0
            || inodes_per_group == 0
            || inode_size < 128
            || descriptor_size < 32
        {
            return None;
        }
        let groups = blocks
            .saturating_sub(first_data_block)
            .div_ceil(blocks_per_group);
        let descriptors = source.bytes(
            (first_data_block + 1) * block,
            groups.checked_mul(descriptor_size)?,
        )?;
        Some(Volume {
            source,
            block,
            first_data_block,
            blocks_per_group,
            inodes_per_group,
            inode_size,
            descriptor_size,
            reserved_gdt_blocks: u64::from(sb.le16(0xce)),
            sparse_super: sb.le32(100) & RO_COMPAT_SPARSE_SUPER != 0,
            descriptors,
        })
    }

    fn groups(&self) -> u64 {
        self.descriptors.len() as u64 / self.descriptor_size
    }

    /// A 64-bit descriptor field split into a low half at `low` and a high
    /// half at `high` (present with 64-byte descriptors).
    fn descriptor_field(&self, group: u64, low: usize, high: usize) -> u64 {
        let at = (group * self.descriptor_size) as usize;
        let d = &self.descriptors[at..at + self.descriptor_size as usize];
        let high = if self.descriptor_size >= 64 {
            u64::from(d.le32(high))
        } else {
            0
        };
        u64::from(d.le32(low)) | high << 32
    }

    fn inode_table_blocks(&self) -> u64 {
        (self.inodes_per_group * self.inode_size).div_ceil(self.block)
    }

    fn has_superblock(&self, group: u64) -> bool {
        let power_of = |base: u64| {
            let mut n = 1;
            while n < group {
                n *= base;
            }
            n == group
        };
        !self.sparse_super || group <= 1 || power_of(3) || power_of(5) || power_of(7)
    }

    /// The crumbs of a byte past the primary superblock.
    fn name(&self, offset: u64) -> Vec<String> {
        let block = offset / self.block;
        if block == 0 {
            return vec!["padding after the superblock".to_owned()];
        }
        let descriptor_blocks = (self.groups() * self.descriptor_size).div_ceil(self.block);
        let group = block.saturating_sub(self.first_data_block) / self.blocks_per_group;
        let start = self.first_data_block + group * self.blocks_per_group;
        if self.has_superblock(group) {
            let copy = if group == 0 { "" } else { "backup " };
            if block == start {
                return vec![format!("{copy}superblock (group {group})")];
            }
            if block < start + 1 + descriptor_blocks {
                let index = (offset - (start + 1) * self.block) / self.descriptor_size;
                return vec![
                    format!("{copy}group descriptors (group {group})"),
                    format!("descriptor of group {index}"),
                ];
            }
            if block < start + 1 + descriptor_blocks + self.reserved_gdt_blocks {
                return vec![format!("reserved GDT blocks (group {group})")];
            }
        }
        for g in 0..self.groups() {
            if block == self.descriptor_field(g, 0, 0x20) {
                return vec![format!("block bitmap of group {g}")];
            }
            if block == self.descriptor_field(g, 4, 0x24) {
                return vec![format!("inode bitmap of group {g}")];
            }
            let table = self.descriptor_field(g, 8, 0x28);
            if (table..table.saturating_add(self.inode_table_blocks())).contains(&block) {
                let index = (offset - table * self.block) / self.inode_size;
                let inode = g * self.inodes_per_group + index + 1;
                let inode = match self.find(|number, _| u64::from(number) == inode) {
                    Some((path, _)) => format!("inode {inode} ({path})"),
                    None => format!("inode {inode}"),
                };
                return vec![format!("inode table of group {g}"), inode];
            }
        }
        match self.find(|_, inode| self.block_use(inode, block).is_some()) {
            Some((path, inode)) => {
                let what = if inode.le16(0) & MODE_TYPE == MODE_DIRECTORY {
                    "directory"
                } else {
                    "file"
                };
                let part = self.block_use(&inode, block).unwrap_or("data");
                vec![format!("{what} {path}"), part.to_owned()]
            }
            None => vec![format!("block {block} (not in use)")],
        }
    }

    /// The bytes of inode `number`.
    fn inode(&self, number: u32) -> Option<Vec<u8>> {
        let index = u64::from(number).checked_sub(1)?;
        let group = index / self.inodes_per_group;
        if group >= self.groups() {
            return None;
        }
        let table = self.descriptor_field(group, 8, 0x28);
        let at = table
            .saturating_mul(self.block)
            .saturating_add((index % self.inodes_per_group) * self.inode_size);
        self.source.bytes(at, self.inode_size)
    }

    /// What `block` is to `inode`: its data, an extent tree block, or its
    /// extended-attribute block.
    fn block_use(&self, inode: &[u8], block: u64) -> Option<&'static str> {
        let xattr = u64::from(inode.le32(0x68)) | u64::from(inode.le16(0x76)) << 32;
        if xattr != 0 && xattr == block {
            return Some("extended attribute block");
        }
        let mut found = None;
        self.extents(inode, &mut |extent| match extent {
            Extent::Tree(at) if at == block => found = Some("extent tree block"),
            Extent::Data { start, len, .. } if (start..start + len).contains(&block) => {
                found = Some("data");
            }
            _ => {}
        });
        found
    }

    /// Calls `visit` for every extent and tree block of `inode`.
    fn extents(&self, inode: &[u8], visit: &mut dyn FnMut(Extent)) {
        if inode.le32(0x20) & EXTENTS_FLAG == 0 {
            return;
        }
        self.node(&inode[0x28..0x28 + 60], MAX_EXTENT_DEPTH, visit);
    }

    fn node(&self, node: &[u8], depth_left: u16, visit: &mut dyn FnMut(Extent)) {
        let (entries, depth) = (node.le16(2) as usize, node.le16(6));
        if node.le16(0) != EXTENT_MAGIC || depth > depth_left {
            return;
        }
        for entry in node.chunks_exact(12).skip(1).take(entries) {
            if depth == 0 {
                let len = u64::from(entry.le16(4));
                visit(Extent::Data {
                    logical: u64::from(entry.le32(0)),
                    start: u64::from(entry.le16(6)) << 32 | u64::from(entry.le32(8)),
                    len: if len > 32768 { len - 32768 } else { len },
                });
            } else {
                let child = u64::from(entry.le32(4)) | u64::from(entry.le16(8)) << 32;
                visit(Extent::Tree(child));
                if let Some(bytes) = self
                    .source
                    .bytes(child.saturating_mul(self.block), self.block)
                {
                    self.node(&bytes, depth - 1, visit);
                }
            }
        }
    }

    /// A directory's bytes, in logical order, up to [`MAX_DIRECTORY`].
    fn directory(&self, inode: &[u8]) -> Vec<u8> {
        let size =
            (u64::from(inode.le32(4)) | u64::from(inode.le32(0x6c)) << 32).min(MAX_DIRECTORY);
        let mut bytes = vec![0; size as usize];
        self.extents(inode, &mut |extent| {
            let Extent::Data {
                logical,
                start,
                len,
            } = extent
            else {
                return;
            };
            for i in 0..len {
                let at = (logical + i) * self.block;
                if at + self.block > size {
                    break;
                }
                if let Some(block) = self
                    .source
                    .bytes((start + i).saturating_mul(self.block), self.block)
                {
                    bytes[at as usize..(at + self.block) as usize].copy_from_slice(&block);
                }
            }
        });
        bytes
    }

    /// The first inode, breadth first from the root, that `wanted` accepts,
    /// with its path.
    fn find(&self, mut wanted: impl FnMut(u32, &[u8]) -> bool) -> Option<(String, Vec<u8>)> {
        let root = self.inode(ROOT_INODE)?;
        if wanted(ROOT_INODE, &root) {
            return Some(("/".to_owned(), root));
        }
        let mut queue = VecDeque::from([(String::new(), root)]);
        let mut seen = 0;
        while let Some((path, directory)) = queue.pop_front() {
            let bytes = self.directory(&directory);
            let mut at = 0;
            while at + 8 <= bytes.len() {
                let entry = &bytes[at..];
                let (number, len, name_len) =
                    (entry.le32(0), entry.le16(4) as usize, entry.byte(6));
                if len < 8 {
                    break;
                }
                at += len;
                let Some(name) = entry.get(8..8 + usize::from(name_len)) else {
                    break;
                };
                if number == 0 || name == b"." || name == b".." {
                    continue;
                }
                seen += 1;
                if seen > MAX_INODES {
                    return None;
                }
                let Some(inode) = self.inode(number) else {
                    continue;
                };
                let child = format!("{path}/{}", String::from_utf8_lossy(name));
                if wanted(number, &inode) {
                    return Some((child.trim_start_matches('/').to_owned(), inode));
                }
                if inode.le16(0) & MODE_TYPE == MODE_DIRECTORY {
                    queue.push_back((child, inode));
                }
            }
        }
        None
    }
}

/// One step of an extent tree walk.
enum Extent {
    /// A block holding an index or leaf node.
    Tree(u64),
    /// `len` blocks from `start` holding the file's blocks from `logical`.
    Data { logical: u64, start: u64, len: u64 },
}

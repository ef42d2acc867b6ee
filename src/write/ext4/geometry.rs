//! The shape of the filesystem: block groups, inodes per group, where the
//! superblock copies lie, and how big an image a tree needs.

use super::Ext4Error;

/// Bytes per block. 4 KiB is what mke2fs picks for any image over 512 MiB
/// and the page size the kernel caches in.
pub const BLOCK_SIZE: u64 = 4096;
/// Blocks per group: as many as one bitmap block has bits.
pub const BLOCKS_PER_GROUP: u64 = BLOCK_SIZE * 8;
/// Bytes per inode: 128 of the original layout plus the extra fields and
/// room for small xattrs.
pub const INODE_SIZE: u64 = 256;
/// Bytes per group descriptor with the `64bit` feature.
pub const DESC_SIZE: u64 = 64;
/// Inodes per group at most: as many as one bitmap block has bits.
const MAX_INODES_PER_GROUP: u64 = BLOCK_SIZE * 8;
/// Inodes per inode-table block.
const INODES_PER_BLOCK: u64 = BLOCK_SIZE / INODE_SIZE;
/// One inode per this many bytes of image at least, mke2fs's default
/// ratio, so that a mounted image has room for new files.
const BYTES_PER_INODE: u64 = 16384;
/// Images of more blocks than this are refused: 16 TiB, where 32-bit
/// logical block numbers in extents end too.
pub const MAX_BLOCKS: u64 = 1 << 32;
/// A last group shorter than this (beyond its superblock copy) is left out
/// of the filesystem, as mke2fs does, rather than be a sliver.
const MIN_TAIL_BLOCKS: u64 = 64;
/// Sizing converges in two or three rounds; this bounds a bug.
const MAX_SIZING_ROUNDS: usize = 32;

/// Block groups and inode counts of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Blocks in the filesystem.
    pub blocks: u64,
    /// Block groups.
    pub groups: u64,
    /// Inodes in each group, a multiple of the inodes in a block.
    pub inodes_per_group: u64,
}

impl Geometry {
    /// The geometry of a filesystem of `blocks` blocks holding at least
    /// `inodes` inodes.
    pub fn new(blocks: u64, inodes: u64) -> Result<Geometry, Ext4Error> {
        if blocks > MAX_BLOCKS {
            return Err(Ext4Error::TooLarge {
                bytes: blocks * BLOCK_SIZE,
            });
        }
        let mut blocks = blocks;
        let mut groups = blocks.div_ceil(BLOCKS_PER_GROUP).max(1);
        let tail = blocks - (groups - 1) * BLOCKS_PER_GROUP;
        if groups > 1 && tail < MIN_TAIL_BLOCKS + backup_blocks(groups) {
            groups -= 1;
            blocks = groups * BLOCKS_PER_GROUP;
        }
        let by_ratio = (blocks * BLOCK_SIZE / BYTES_PER_INODE).div_ceil(groups);
        let wanted = inodes.div_ceil(groups).max(by_ratio);
        let inodes_per_group = wanted
            .next_multiple_of(INODES_PER_BLOCK)
            .clamp(INODES_PER_BLOCK, MAX_INODES_PER_GROUP);
        if inodes > inodes_per_group * groups {
            return Err(Ext4Error::TooManyInodes {
                inodes,
                max: inodes_per_group * groups,
            });
        }
        Ok(Geometry {
            blocks,
            groups,
            inodes_per_group,
        })
    }

    /// The smallest geometry whose free space after `data_blocks` of
    /// contents and all metadata is `headroom(used)`, for `inodes` inodes.
    pub fn fitting(
        data_blocks: u64,
        inodes: u64,
        headroom: impl Fn(u64) -> u64,
    ) -> Result<Geometry, Ext4Error> {
        let mut blocks = data_blocks + 1;
        for _ in 0..MAX_SIZING_ROUNDS {
            // Enough groups for the inodes, then enough blocks for the data.
            let min_groups = inodes.div_ceil(MAX_INODES_PER_GROUP);
            let floor = if min_groups > 1 {
                min_groups * BLOCKS_PER_GROUP
            } else {
                0
            };
            let candidate = Geometry::new(blocks.max(floor), inodes)?;
            let used = data_blocks + candidate.metadata_blocks();
            let wanted = used + headroom(used);
            if wanted <= candidate.blocks {
                return Ok(candidate);
            }
            blocks = wanted.max(blocks + 1);
        }
        unreachable!("ext4 sizing did not converge in {MAX_SIZING_ROUNDS} rounds")
    }

    /// Inodes in the filesystem.
    pub fn inodes(&self) -> u64 {
        self.inodes_per_group * self.groups
    }

    /// Blocks of one group's inode table.
    pub fn inode_table_blocks(&self) -> u64 {
        self.inodes_per_group / INODES_PER_BLOCK
    }

    /// Blocks of the group descriptor table.
    pub fn descriptor_blocks(&self) -> u64 {
        descriptor_blocks(self.groups)
    }

    /// The first block of group `group`.
    pub fn group_start(&self, group: u64) -> u64 {
        group * BLOCKS_PER_GROUP
    }

    /// Blocks in group `group`; the last one may be short.
    pub fn group_len(&self, group: u64) -> u64 {
        (self.blocks - self.group_start(group)).min(BLOCKS_PER_GROUP)
    }

    /// Blocks at the start of `group` taken by a copy of the superblock and
    /// descriptor table, or 0 in groups without one.
    pub fn backup_len(&self, group: u64) -> u64 {
        if has_superblock(group) {
            backup_blocks(self.groups)
        } else {
            0
        }
    }

    /// Blocks of every superblock copy, descriptor table, bitmap and inode
    /// table together.
    pub fn metadata_blocks(&self) -> u64 {
        let copies: u64 = (0..self.groups).map(|group| self.backup_len(group)).sum();
        copies + self.groups * (2 + self.inode_table_blocks())
    }
}

/// Blocks of a descriptor table for `groups` groups.
fn descriptor_blocks(groups: u64) -> u64 {
    (groups * DESC_SIZE).div_ceil(BLOCK_SIZE)
}

/// Blocks of one superblock copy and descriptor table.
fn backup_blocks(groups: u64) -> u64 {
    1 + descriptor_blocks(groups)
}

/// Whether group `group` holds the superblock or a copy of it: with
/// `sparse_super`, groups 0 and 1 and powers of 3, 5 and 7.
pub fn has_superblock(group: u64) -> bool {
    fn is_power(mut n: u64, base: u64) -> bool {
        while n.is_multiple_of(base) {
            n /= base;
        }
        n == 1
    }
    group <= 1 || is_power(group, 3) || is_power(group, 5) || is_power(group, 7)
}

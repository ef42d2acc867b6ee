//! The superblock, at byte 1024 of the image and copied at the start of
//! groups 1 and the powers of 3, 5 and 7.

use super::crc32c;
use super::geometry::{BLOCKS_PER_GROUP, DESC_SIZE, Geometry, INODE_SIZE};
use super::inode::EXTRA_ISIZE;
use super::le::{put16, put32};

/// Bytes of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Where the primary superblock starts in the image.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// First inode that is not reserved for the filesystem's own use.
pub const FIRST_INODE: u32 = 11;
/// The latest time a superblock field (32 bits plus an 8-bit high part)
/// records.
pub const MAX_TIME: u64 = (1 << 40) - 1;
/// `s_magic`.
pub const MAGIC: u16 = 0xEF53;

/// compat: extended attributes.
const COMPAT_EXT_ATTR: u32 = 0x0008;
/// compat: directories may have hash indexes.
const COMPAT_DIR_INDEX: u32 = 0x0020;
/// incompat: directory entries record the file type.
const INCOMPAT_FILETYPE: u32 = 0x0002;
/// incompat: extent trees map file blocks.
const INCOMPAT_EXTENTS: u32 = 0x0040;
/// incompat: 64-bit block numbers and 64-byte group descriptors.
const INCOMPAT_64BIT: u32 = 0x0080;
/// incompat: bitmaps and inode tables may lie outside their group.
const INCOMPAT_FLEX_BG: u32 = 0x0200;
/// ro_compat: superblock copies only in groups 0, 1 and powers of 3, 5, 7.
const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
/// ro_compat: files over 2 GiB.
const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
/// ro_compat: block counts beyond 2^32 sectors.
const RO_COMPAT_HUGE_FILE: u32 = 0x0008;
/// ro_compat: directories with over 65000 subdirectories.
const RO_COMPAT_DIR_NLINK: u32 = 0x0020;
/// ro_compat: inodes have the extra fields.
const RO_COMPAT_EXTRA_ISIZE: u32 = 0x0040;
/// ro_compat: crc32c checksums on all metadata.
const RO_COMPAT_METADATA_CSUM: u32 = 0x0400;

/// The features of every image: no journal (an image is written once,
/// whole; `tune2fs -j` adds one), no resize inode.
pub const COMPAT: u32 = COMPAT_EXT_ATTR | COMPAT_DIR_INDEX;
/// See [`COMPAT`].
pub const INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG;
/// See [`COMPAT`].
pub const RO_COMPAT: u32 = RO_COMPAT_SPARSE_SUPER
    | RO_COMPAT_LARGE_FILE
    | RO_COMPAT_HUGE_FILE
    | RO_COMPAT_DIR_NLINK
    | RO_COMPAT_EXTRA_ISIZE
    | RO_COMPAT_METADATA_CSUM;

/// What the superblock records beyond the geometry.
#[derive(Debug, Clone)]
pub struct Superblock<'a> {
    /// Block groups and inode counts.
    pub geometry: &'a Geometry,
    /// Free blocks in the whole filesystem.
    pub free_blocks: u64,
    /// Free inodes in the whole filesystem.
    pub free_inodes: u64,
    /// The volume UUID.
    pub uuid: [u8; 16],
    /// The volume label, at most 16 bytes.
    pub label: &'a [u8],
    /// Seed of directory-index hashes.
    pub hash_seed: [u8; 16],
    /// Creation and last-check time.
    pub time: u64,
}

impl Superblock<'_> {
    /// The superblock as stored in group `group`.
    pub fn encode(&self, group: u64) -> [u8; SUPERBLOCK_SIZE] {
        let g = self.geometry;
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        put32(&mut raw, 0x00, g.inodes() as u32);
        put32(&mut raw, 0x04, g.blocks as u32);
        put32(&mut raw, 0x0C, self.free_blocks as u32);
        put32(&mut raw, 0x10, self.free_inodes as u32);
        // s_first_data_block 0; s_log_block_size and s_log_cluster_size:
        // 1024 << 2 = 4096.
        put32(&mut raw, 0x18, 2);
        put32(&mut raw, 0x1C, 2);
        put32(&mut raw, 0x20, BLOCKS_PER_GROUP as u32);
        put32(&mut raw, 0x24, BLOCKS_PER_GROUP as u32);
        put32(&mut raw, 0x28, g.inodes_per_group as u32);
        // s_mtime and s_wtime stay 0: never mounted, and e2fsck complains
        // of a write time in its future.
        put16(&mut raw, 0x36, u16::MAX); // s_max_mnt_count: no forced checks
        put16(&mut raw, 0x38, MAGIC);
        put16(&mut raw, 0x3A, 1); // s_state: clean
        put16(&mut raw, 0x3C, 1); // s_errors: continue
        put32(&mut raw, 0x40, self.time as u32); // s_lastcheck
        put32(&mut raw, 0x4C, 1); // s_rev_level: dynamic
        put32(&mut raw, 0x54, FIRST_INODE);
        put16(&mut raw, 0x58, INODE_SIZE as u16);
        put16(&mut raw, 0x5A, group as u16);
        put32(&mut raw, 0x5C, COMPAT);
        put32(&mut raw, 0x60, INCOMPAT);
        put32(&mut raw, 0x64, RO_COMPAT);
        raw[0x68..0x78].copy_from_slice(&self.uuid);
        raw[0x78..0x78 + self.label.len()].copy_from_slice(self.label);
        raw[0xEC..0xFC].copy_from_slice(&self.hash_seed);
        raw[0xFC] = 1; // s_def_hash_version: half MD4, as mke2fs
        put16(&mut raw, 0xFE, DESC_SIZE as u16);
        put32(&mut raw, 0x100, 0x000C); // default mount options: user_xattr, acl
        put32(&mut raw, 0x108, self.time as u32); // s_mkfs_time
        put32(&mut raw, 0x150, (g.blocks >> 32) as u32);
        put32(&mut raw, 0x158, (self.free_blocks >> 32) as u32);
        put16(&mut raw, 0x15C, EXTRA_ISIZE);
        put16(&mut raw, 0x15E, EXTRA_ISIZE);
        put32(&mut raw, 0x160, 0x0002); // s_flags: unsigned directory hash
        raw[0x174] = log_groups_per_flex(g.groups);
        raw[0x175] = 1; // s_checksum_type: crc32c
        raw[0x276] = (self.time >> 32) as u8; // s_mkfs_time_hi
        raw[0x277] = (self.time >> 32) as u8; // s_lastcheck_hi
        let checksum = crc32c::update(!0, &raw[..0x3FC]);
        put32(&mut raw, 0x3FC, checksum);
        raw
    }
}

/// The seed of every metadata checksum but the superblock's.
pub fn checksum_seed(uuid: &[u8; 16]) -> u32 {
    crc32c::update(!0, uuid)
}

/// A flex group spanning every group, which is how the bitmaps and inode
/// tables lie: together at the start.
fn log_groups_per_flex(groups: u64) -> u8 {
    (groups.next_power_of_two().trailing_zeros() as u8).max(4)
}

//! Group descriptors and the checksums of the bitmaps they point to.

use super::crc32c;
use super::geometry::{BLOCK_SIZE, DESC_SIZE};
use super::le::{put16, put32};

/// Group flag: the inode table is zeroed, so the kernel need not do it.
const INODE_ZEROED: u16 = 0x0004;

/// One group's descriptor.
#[derive(Debug, Clone, Default)]
pub struct Descriptor {
    /// The block bitmap's block.
    pub block_bitmap: u64,
    /// The inode bitmap's block.
    pub inode_bitmap: u64,
    /// The inode table's first block.
    pub inode_table: u64,
    /// Free blocks in the group.
    pub free_blocks: u32,
    /// Free inodes in the group.
    pub free_inodes: u32,
    /// Directories among the group's inodes.
    pub directories: u32,
    /// Inodes at the table's end never used.
    pub unused_inodes: u32,
    /// crc32c of the block bitmap.
    pub block_bitmap_checksum: u32,
    /// crc32c of the inode bitmap's used bytes.
    pub inode_bitmap_checksum: u32,
}

impl Descriptor {
    /// The descriptor of group `group`, checksummed under `seed`.
    pub fn encode(&self, group: u32, seed: u32) -> [u8; DESC_SIZE as usize] {
        let mut raw = [0u8; DESC_SIZE as usize];
        let split = |raw: &mut [u8], lo: usize, hi: usize, value: u64| {
            put32(raw, lo, value as u32);
            put32(raw, hi, (value >> 32) as u32);
        };
        split(&mut raw, 0x00, 0x20, self.block_bitmap);
        split(&mut raw, 0x04, 0x24, self.inode_bitmap);
        split(&mut raw, 0x08, 0x28, self.inode_table);
        let halves = |raw: &mut [u8], lo: usize, hi: usize, value: u32| {
            put16(raw, lo, value as u16);
            put16(raw, hi, (value >> 16) as u16);
        };
        halves(&mut raw, 0x0C, 0x2C, self.free_blocks);
        halves(&mut raw, 0x0E, 0x2E, self.free_inodes);
        halves(&mut raw, 0x10, 0x30, self.directories);
        put16(&mut raw, 0x12, INODE_ZEROED);
        halves(&mut raw, 0x18, 0x38, self.block_bitmap_checksum);
        halves(&mut raw, 0x1A, 0x3A, self.inode_bitmap_checksum);
        halves(&mut raw, 0x1C, 0x32, self.unused_inodes);
        let checksum = crc32c::update(crc32c::update(seed, &group.to_le_bytes()), &raw);
        put16(&mut raw, 0x1E, checksum as u16);
        raw
    }
}

/// The checksum of a block bitmap: all of it, one bit per block of a group.
pub fn block_bitmap_checksum(seed: u32, bitmap: &[u8]) -> u32 {
    crc32c::update(seed, &bitmap[..BLOCK_SIZE as usize])
}

/// The checksum of an inode bitmap: the bytes that map the group's inodes.
pub fn inode_bitmap_checksum(seed: u32, bitmap: &[u8], inodes_per_group: u64) -> u32 {
    crc32c::update(seed, &bitmap[..(inodes_per_group / 8) as usize])
}

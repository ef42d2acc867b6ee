//! The 256-byte inode: the original 128 bytes, 32 extra bytes (checksum
//! high half, timestamps' epoch bits, creation time) and in-inode xattrs.

use super::crc32c;
use super::geometry::INODE_SIZE;
use super::le::{put16, put32};

/// Inode flag: the directory has a hash index.
pub const INDEX_FL: u32 = 0x0000_1000;
/// Inode flag: `i_block` holds an extent tree.
pub const EXTENTS_FL: u32 = 0x0008_0000;
/// Bytes of the extra fields after the original 128, as mke2fs sets.
pub const EXTRA_ISIZE: u16 = 32;
/// Where the in-inode xattr area starts.
pub const XATTR_START: usize = 128 + EXTRA_ISIZE as usize;
/// The latest time the 32-bit seconds plus two epoch bits can hold
/// (in 2446).
pub const MAX_TIME: u64 = (3 << 32) + (1 << 31) - 1;

/// Everything an inode records.
#[derive(Debug, Clone)]
pub struct Inode {
    /// File type and permission bits.
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hard links.
    pub links: u16,
    /// Every timestamp (access, change, modification, creation), at most
    /// [`MAX_TIME`].
    pub time: u64,
    /// Blocks held, data, extent tree and xattr block together.
    pub blocks: u64,
    /// Inode flags.
    pub flags: u32,
    /// The extent tree root, symlink target or device number.
    pub block: [u8; 60],
    /// The xattr block, or 0.
    pub xattr_block: u64,
    /// The in-inode xattr area, from [`XATTR_START`] to the inode's end.
    pub xattrs: Option<[u8; INODE_SIZE as usize - XATTR_START]>,
}

/// The checksum seed of inode `ino` (generation 0), which also seeds its
/// extent, directory and xattr checksums.
pub fn checksum_seed(filesystem_seed: u32, ino: u32) -> u32 {
    let seed = crc32c::update(filesystem_seed, &ino.to_le_bytes());
    crc32c::update(seed, &0u32.to_le_bytes())
}

/// Seconds as ext4 stores them: the low 32 bits (read back as signed) and
/// the epoch bits that extend them, for the `_extra` field.
pub fn split_time(time: u64) -> (u32, u32) {
    let low = time as u32;
    let epoch = ((time as i64 - i64::from(low as i32)) >> 32) as u32 & 3;
    (low, epoch)
}

/// The `i_block` of a device node, as the kernel writes it: the old 16-bit
/// encoding in word 0 when major and minor fit a byte, else the new one in
/// word 1.
pub fn device_block(major: u32, minor: u32) -> [u8; 60] {
    let mut block = [0; 60];
    if major < 256 && minor < 256 {
        block[..4].copy_from_slice(&(major << 8 | minor).to_le_bytes());
    } else {
        let new = (minor & 0xFF) | (major << 8) | ((minor & !0xFF) << 12);
        block[4..8].copy_from_slice(&new.to_le_bytes());
    }
    block
}

impl Inode {
    /// The inode's bytes, checksummed as inode `ino` under `seed`.
    pub fn encode(&self, ino: u32, seed: u32) -> [u8; INODE_SIZE as usize] {
        let mut raw = [0u8; INODE_SIZE as usize];
        let (time, epoch) = split_time(self.time);
        let sectors = self.blocks * 8;
        put16(&mut raw, 0x00, self.mode);
        put16(&mut raw, 0x02, self.uid as u16);
        put32(&mut raw, 0x04, self.size as u32);
        for field in [0x08, 0x0C, 0x10] {
            put32(&mut raw, field, time);
        }
        put16(&mut raw, 0x18, self.gid as u16);
        put16(&mut raw, 0x1A, self.links);
        put32(&mut raw, 0x1C, sectors as u32);
        put32(&mut raw, 0x20, self.flags);
        raw[0x28..0x64].copy_from_slice(&self.block);
        put32(&mut raw, 0x68, self.xattr_block as u32);
        put32(&mut raw, 0x6C, (self.size >> 32) as u32);
        put16(&mut raw, 0x74, (sectors >> 32) as u16);
        put16(&mut raw, 0x76, (self.xattr_block >> 32) as u16);
        put16(&mut raw, 0x78, (self.uid >> 16) as u16);
        put16(&mut raw, 0x7A, (self.gid >> 16) as u16);
        put16(&mut raw, 0x80, EXTRA_ISIZE);
        // ctime, mtime, atime extra: epoch bits, nanoseconds zero.
        for field in [0x84, 0x88, 0x8C] {
            put32(&mut raw, field, epoch);
        }
        put32(&mut raw, 0x90, time);
        put32(&mut raw, 0x94, epoch);
        if let Some(xattrs) = &self.xattrs {
            raw[XATTR_START..].copy_from_slice(xattrs);
        }
        // The checksum covers the whole inode with both halves zero.
        let checksum = crc32c::update(checksum_seed(seed, ino), &raw);
        put16(&mut raw, 0x7C, checksum as u16);
        put16(&mut raw, 0x82, (checksum >> 16) as u16);
        raw
    }
}

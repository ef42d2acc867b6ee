//! The superblock: 128 bytes at byte 1024 (`struct erofs_super_block`).
//!
//! Only fields Linux 6.1 reads are set; the rest stay zero. The superblock
//! carries a checksum (`EROFS_FEATURE_COMPAT_SB_CHKSUM`): CRC-32C over the
//! rest of block 0 from the superblock on, which the kernel verifies at
//! mount, so a damaged first block is refused rather than misread.

use super::{BLOCK_BITS, SUPERBLOCK_OFFSET};

/// `EROFS_SUPER_MAGIC_V1`.
pub const MAGIC: u32 = 0xE0F5_E1E2;
/// The superblock's size on disk.
pub const SIZE: usize = 128;
/// Where the first inode may go: right after the superblock.
pub const END: u64 = SUPERBLOCK_OFFSET + SIZE as u64;

/// `EROFS_FEATURE_COMPAT_SB_CHKSUM`: the checksum field is set.
const COMPAT_SB_CHKSUM: u32 = 0x0000_0001;
/// `EROFS_FEATURE_INCOMPAT_LZ4_0PADDING` (Linux 5.3): compressed data is
/// right-aligned in its block behind zeros.
pub const INCOMPAT_LZ4_0PADDING: u32 = 0x0000_0001;
/// `EROFS_FEATURE_INCOMPAT_CHUNKED_FILE` (Linux 5.15): chunk-based inodes,
/// which hold sparse files.
pub const INCOMPAT_CHUNKED_FILE: u32 = 0x0000_0004;

/// What the superblock records about the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// The root directory's inode number (`nid`); 16 bits on disk.
    pub root_nid: u16,
    /// The number of inodes.
    pub inodes: u64,
    /// The time compact inodes take as their mtime.
    pub build_time: u64,
    /// The image's size in blocks.
    pub blocks: u32,
    /// The volume UUID.
    pub uuid: [u8; 16],
    /// `EROFS_FEATURE_INCOMPAT_*` bits the image needs.
    pub feature_incompat: u32,
    /// `u1.lz4_max_distance`: how far LZ4 matches reach back, which the
    /// kernel sizes its decompression buffers by (0: the default 64 KiB).
    /// Without `EROFS_FEATURE_INCOMPAT_COMPR_CFGS` (Linux 5.16), this is
    /// what the union holds, rather than `available_compr_algs`.
    pub lz4_max_distance: u16,
}

impl Superblock {
    /// The on-disk bytes with the checksum field zero; see [`seal`]. The
    /// metadata area starts at block 0, so a nid is a byte offset in the
    /// image divided by 32.
    pub fn encode(&self) -> [u8; SIZE] {
        let mut bytes = [0; SIZE];
        bytes[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        // checksum (4..8) is set by `seal`.
        bytes[8..12].copy_from_slice(&COMPAT_SB_CHKSUM.to_le_bytes());
        bytes[12] = BLOCK_BITS as u8;
        // sb_extslots (13) stays zero: the superblock is 128 bytes.
        bytes[14..16].copy_from_slice(&self.root_nid.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.inodes.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.build_time.to_le_bytes());
        // build_time_nsec (32..36) stays zero.
        bytes[36..40].copy_from_slice(&self.blocks.to_le_bytes());
        // meta_blkaddr (40..44) and xattr_blkaddr (44..48) stay zero.
        bytes[48..64].copy_from_slice(&self.uuid);
        // volume_name (64..80) stays empty.
        bytes[80..84].copy_from_slice(&self.feature_incompat.to_le_bytes());
        bytes[84..86].copy_from_slice(&self.lz4_max_distance.to_le_bytes());
        bytes
    }

    /// Reads back what [`encode`](Self::encode) wrote, or `None` without
    /// the magic number.
    #[cfg(test)]
    pub fn decode(bytes: &[u8]) -> Option<Superblock> {
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        if u32_at(0) != MAGIC || bytes[12] != BLOCK_BITS as u8 {
            return None;
        }
        Some(Superblock {
            root_nid: u16_at(14),
            inodes: u64_at(16),
            build_time: u64_at(24),
            blocks: u32_at(36),
            uuid: bytes[48..64].try_into().unwrap(),
            feature_incompat: u32_at(80),
            lz4_max_distance: u16_at(84),
        })
    }
}

/// Sets the checksum of `superblock`, encoded, given the bytes that follow
/// it to the end of block 0: Linux's `crc32c(~0, ...)` over both, the
/// checksum field zero, without a final inversion.
pub fn seal(superblock: &mut [u8; SIZE], rest_of_block: &[u8]) {
    superblock[4..8].fill(0);
    let crc = crc32c(crc32c(!0, superblock), rest_of_block);
    superblock[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32C (Castagnoli, reflected) of `bytes` continuing from `crc`, as
/// Linux's `crc32c()`: no inversion in or out. Bitwise: it runs over 4 KiB
/// once per image.
fn crc32c(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let superblock = Superblock {
            root_nid: 36,
            inodes: 7,
            build_time: 1_700_000_000,
            blocks: 3,
            uuid: [9; 16],
            feature_incompat: INCOMPAT_CHUNKED_FILE,
            lz4_max_distance: 65_535,
        };
        let bytes = superblock.encode();
        assert_eq!(&bytes[0..4], &[0xE2, 0xE1, 0xF5, 0xE0]);
        assert_eq!(bytes[12], 12);
        assert_eq!(Superblock::decode(&bytes), Some(superblock));
        assert_eq!(Superblock::decode(&[0; SIZE]), None);
    }

    #[test]
    fn the_checksum_is_linux_crc32c_without_final_inversion() {
        // The CRC-32C check value, 0xE3069283, before its final inversion.
        assert_eq!(crc32c(!0, b"123456789"), !0xE306_9283);
        let mut bytes = [7; SIZE];
        seal(&mut bytes, &[1, 2, 3]);
        let stored = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        bytes[4..8].fill(0);
        let whole: Vec<u8> = bytes.iter().chain(&[1, 2, 3]).copied().collect();
        assert_eq!(stored, crc32c(!0, &whole));
    }
}

//! Inode cores: `erofs_inode_compact` (32 bytes) and
//! `erofs_inode_extended` (64 bytes).
//!
//! A compact inode has 16-bit owners and link count, a 32-bit size and no
//! mtime of its own (it takes the superblock's build time), so each inode
//! is compact exactly when its values fit and its mtime equals the build
//! time; otherwise it is extended. Compact-where-possible is never larger
//! than extended-always, and smaller for every file built at the epoch.

/// Where an inode's data lives (`EROFS_INODE_*` data layouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Whole blocks from `i_u` (`EROFS_INODE_FLAT_PLAIN`); also for inodes
    /// without data.
    FlatPlain = 0,
    /// A map header and an 8-byte index per 4 KiB of file after the
    /// xattrs, compressed data in blocks
    /// (`EROFS_INODE_FLAT_COMPRESSION_LEGACY`).
    CompressionLegacy = 1,
    /// Whole blocks from `i_u`, the last partial block right after the
    /// inode's xattrs (`EROFS_INODE_FLAT_INLINE`).
    FlatInline = 2,
    /// A block address per chunk after the xattrs, a null address for a
    /// hole (`EROFS_INODE_CHUNK_BASED`).
    ChunkBased = 4,
}

/// `EROFS_INODE_LAYOUT_EXTENDED` in `i_format`'s bit 0.
const EXTENDED_BIT: u16 = 1;
/// The compact inode's size.
pub const COMPACT: usize = 32;
/// The extended inode's size.
pub const EXTENDED: usize = 64;

/// The fields of an inode core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// Whether the 64-byte form is needed; see [`Core::needs_extended`].
    pub extended: bool,
    /// The data layout.
    pub layout: Layout,
    /// `i_xattr_icount`: 4-byte words of inline xattrs, header included.
    pub xattr_icount: u16,
    /// File type and permission bits, as in `st_mode`.
    pub mode: u16,
    /// Link count.
    pub nlink: u32,
    /// Size in bytes.
    pub size: u64,
    /// `i_u`: the first data block, the device number, the chunk format,
    /// or the compressed blocks.
    pub i_u: u32,
    /// `i_ino`, only used by 32-bit stat.
    pub ino: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Modification time; compact inodes take the build time instead.
    pub mtime: u64,
}

impl Core {
    /// Whether these values need an extended inode under `build_time`.
    pub fn needs_extended(&self, build_time: u64) -> bool {
        let fits_16 = |value: u32| value <= u32::from(u16::MAX);
        !(fits_16(self.uid)
            && fits_16(self.gid)
            && fits_16(self.nlink)
            && self.size <= u64::from(u32::MAX)
            && self.mtime == build_time)
    }

    /// The core's size on disk.
    pub fn on_disk_len(&self) -> usize {
        if self.extended { EXTENDED } else { COMPACT }
    }

    /// The on-disk bytes.
    pub fn encode(&self) -> Vec<u8> {
        let format = (self.layout as u16) << 1 | if self.extended { EXTENDED_BIT } else { 0 };
        let mut bytes = Vec::with_capacity(self.on_disk_len());
        bytes.extend_from_slice(&format.to_le_bytes());
        bytes.extend_from_slice(&self.xattr_icount.to_le_bytes());
        bytes.extend_from_slice(&self.mode.to_le_bytes());
        if self.extended {
            bytes.extend_from_slice(&[0; 2]); // i_reserved
            bytes.extend_from_slice(&self.size.to_le_bytes());
            bytes.extend_from_slice(&self.i_u.to_le_bytes());
            bytes.extend_from_slice(&self.ino.to_le_bytes());
            bytes.extend_from_slice(&self.uid.to_le_bytes());
            bytes.extend_from_slice(&self.gid.to_le_bytes());
            bytes.extend_from_slice(&self.mtime.to_le_bytes());
            bytes.extend_from_slice(&[0; 4]); // i_mtime_nsec
            bytes.extend_from_slice(&self.nlink.to_le_bytes());
            bytes.extend_from_slice(&[0; 16]); // i_reserved2
        } else {
            bytes.extend_from_slice(&(self.nlink as u16).to_le_bytes());
            bytes.extend_from_slice(&(self.size as u32).to_le_bytes());
            bytes.extend_from_slice(&[0; 4]); // i_reserved
            bytes.extend_from_slice(&self.i_u.to_le_bytes());
            bytes.extend_from_slice(&self.ino.to_le_bytes());
            bytes.extend_from_slice(&(self.uid as u16).to_le_bytes());
            bytes.extend_from_slice(&(self.gid as u16).to_le_bytes());
            bytes.extend_from_slice(&[0; 4]); // i_reserved2
        }
        debug_assert_eq!(bytes.len(), self.on_disk_len());
        bytes
    }

    /// Reads a core back; a compact one gets `build_time` as its mtime.
    #[cfg(test)]
    pub fn decode(bytes: &[u8], build_time: u64) -> Core {
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let format = u16_at(0);
        let layout = match (format >> 1) & 7 {
            0 => Layout::FlatPlain,
            1 => Layout::CompressionLegacy,
            2 => Layout::FlatInline,
            4 => Layout::ChunkBased,
            other => panic!("unexpected data layout {other}"),
        };
        let extended = format & EXTENDED_BIT != 0;
        let (xattr_icount, mode) = (u16_at(2), u16_at(4));
        if extended {
            Core {
                extended,
                layout,
                xattr_icount,
                mode,
                size: u64_at(8),
                i_u: u32_at(16),
                ino: u32_at(20),
                uid: u32_at(24),
                gid: u32_at(28),
                mtime: u64_at(32),
                nlink: u32_at(44),
            }
        } else {
            Core {
                extended,
                layout,
                xattr_icount,
                mode,
                nlink: u32::from(u16_at(6)),
                size: u64::from(u32_at(8)),
                i_u: u32_at(16),
                ino: u32_at(20),
                uid: u32::from(u16_at(24)),
                gid: u32::from(u16_at(26)),
                mtime: build_time,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Core {
        Core {
            extended: false,
            layout: Layout::FlatInline,
            xattr_icount: 3,
            mode: 0o100644,
            nlink: 2,
            size: 5000,
            i_u: 17,
            ino: 4,
            uid: 1000,
            gid: 100,
            mtime: 1_700_000_000,
        }
    }

    #[test]
    fn compact_where_everything_fits_and_the_mtime_is_the_build_time() {
        let build_time = 1_700_000_000;
        assert!(!core().needs_extended(build_time));
        let changes: [fn(&mut Core); 5] = [
            |core| core.uid = 65536,
            |core| core.gid = 4_294_967_294,
            |core| core.nlink = 70_000,
            |core| core.size = 5 << 30,
            |core| core.mtime -= 1,
        ];
        for change in changes {
            let mut changed = core();
            change(&mut changed);
            assert!(changed.needs_extended(build_time), "{changed:?}");
        }
    }

    #[test]
    fn both_forms_read_back() {
        let build_time = 1_700_000_000;
        let compact = core();
        let bytes = compact.encode();
        assert_eq!(bytes.len(), COMPACT);
        assert_eq!(bytes[0], 2 << 1);
        assert_eq!(Core::decode(&bytes, build_time), compact);

        let extended = Core {
            extended: true,
            layout: Layout::ChunkBased,
            uid: 100_000,
            gid: 4_294_967_294,
            size: 5 << 30,
            mtime: 12,
            nlink: 70_000,
            ..core()
        };
        let bytes = extended.encode();
        assert_eq!(bytes.len(), EXTENDED);
        assert_eq!(bytes[0], 4 << 1 | 1);
        assert_eq!(Core::decode(&bytes, build_time), extended);
    }
}

//! The superblock: the first 96 bytes, saying where every table starts.

/// "hsqs" read as a little-endian u32.
pub(super) const MAGIC: u32 = 0x7371_7368;
pub(super) const SIZE: usize = 96;
/// No table: the lookup (export) or xattr table pointer of an image
/// without one.
pub(super) const NO_TABLE: u64 = u64::MAX;

/// Superblock flags this writer sets.
pub(super) mod flags {
    /// Tails of files of any size go into fragments, not only small files.
    pub const ALWAYS_FRAGMENTS: u16 = 0x0020;
    /// The image has an export (inode lookup) table, for NFS.
    pub const EXPORTABLE: u16 = 0x0080;
    /// No inode has xattrs.
    pub const NO_XATTRS: u16 = 0x0200;
    /// A compressor options block follows the superblock.
    pub const COMPRESSOR_OPTIONS: u16 = 0x0400;
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Superblock {
    pub inodes: u32,
    pub mkfs_time: u32,
    pub block_size: u32,
    pub fragments: u32,
    pub compression: u16,
    pub block_log: u16,
    pub flags: u16,
    pub ids: u16,
    /// Packed reference of the root directory's inode.
    pub root_inode: u64,
    /// The image's length, without the padding to 4 KiB.
    pub bytes_used: u64,
    pub id_table: u64,
    pub xattr_id_table: u64,
    pub inode_table: u64,
    pub directory_table: u64,
    pub fragment_table: u64,
    pub lookup_table: u64,
}

impl Superblock {
    pub fn to_bytes(&self) -> [u8; SIZE] {
        let mut out = Vec::with_capacity(SIZE);
        for word in [
            MAGIC,
            self.inodes,
            self.mkfs_time,
            self.block_size,
            self.fragments,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        // Format version 4.0 follows the flags and id count.
        for half in [self.compression, self.block_log, self.flags, self.ids, 4, 0] {
            out.extend_from_slice(&half.to_le_bytes());
        }
        for long in [
            self.root_inode,
            self.bytes_used,
            self.id_table,
            self.xattr_id_table,
            self.inode_table,
            self.directory_table,
            self.fragment_table,
            self.lookup_table,
        ] {
            out.extend_from_slice(&long.to_le_bytes());
        }
        out.try_into().expect("the fields add up to 96 bytes")
    }

    /// Reads back a superblock this writer wrote.
    #[cfg(test)]
    pub fn parse(bytes: &[u8]) -> Superblock {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let half = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
        let long = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        assert_eq!(word(0), MAGIC);
        assert_eq!((half(28), half(30)), (4, 0), "version 4.0");
        Superblock {
            inodes: word(4),
            mkfs_time: word(8),
            block_size: word(12),
            fragments: word(16),
            compression: half(20),
            block_log: half(22),
            flags: half(24),
            ids: half(26),
            root_inode: long(32),
            bytes_used: long(40),
            id_table: long(48),
            xattr_id_table: long(56),
            inode_table: long(64),
            directory_table: long(72),
            fragment_table: long(80),
            lookup_table: long(88),
        }
    }
}

//! Metadata blocks: the inode, directory, fragment, export, id and xattr
//! tables are streams cut into 8 KiB pieces, each compressed on its own and
//! preceded by a 16-bit header (its stored length, bit 15 set when stored
//! uncompressed). A place in such a stream is named by the stored offset of
//! its block from the table's start and the offset inside the block.

use std::io;

use super::Compression;

/// Uncompressed bytes in a full metadata block.
pub(super) const METADATA_SIZE: usize = 8192;
/// Header bit marking a metadata block stored uncompressed.
const UNCOMPRESSED: u16 = 1 << 15;

/// A place in a metadata stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MetadataRef {
    /// Offset of the block's header from the table's start.
    pub block: u64,
    /// Offset in the block's uncompressed bytes, below 8192.
    pub offset: u16,
}

impl MetadataRef {
    /// The packed form inodes and the superblock use: block << 16 | offset.
    pub fn packed(self) -> u64 {
        self.block << 16 | u64::from(self.offset)
    }
}

/// Builds one table's metadata blocks in memory.
pub(super) struct MetadataWriter {
    compression: Compression,
    block_size: u32,
    stored: Vec<u8>,
    block_starts: Vec<u64>,
    current: Vec<u8>,
}

impl MetadataWriter {
    pub fn new(compression: Compression, block_size: u32) -> Self {
        MetadataWriter {
            compression,
            block_size,
            stored: Vec::new(),
            block_starts: Vec::new(),
            current: Vec::with_capacity(METADATA_SIZE),
        }
    }

    /// Where the next byte written will be. A full block is stored at once,
    /// so the offset is always inside a block.
    pub fn position(&self) -> MetadataRef {
        MetadataRef {
            block: self.stored.len() as u64,
            offset: self.current.len() as u16,
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let take = bytes.len().min(METADATA_SIZE - self.current.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.current.len() == METADATA_SIZE {
                self.store_block()?;
            }
        }
        Ok(())
    }

    /// The stored table, and the offset of each of its blocks.
    pub fn finish(mut self) -> io::Result<(Vec<u8>, Vec<u64>)> {
        if !self.current.is_empty() {
            self.store_block()?;
        }
        Ok((self.stored, self.block_starts))
    }

    fn store_block(&mut self) -> io::Result<()> {
        self.block_starts.push(self.stored.len() as u64);
        // Lengths are at most 8192, so they fit the 15 bits below the flag.
        match self.compression.compress(&self.current, self.block_size)? {
            Some(compressed) => {
                self.stored
                    .extend_from_slice(&(compressed.len() as u16).to_le_bytes());
                self.stored.extend_from_slice(&compressed);
            }
            None => {
                let header = self.current.len() as u16 | UNCOMPRESSED;
                self.stored.extend_from_slice(&header.to_le_bytes());
                self.stored.extend_from_slice(&self.current);
            }
        }
        self.current.clear();
        Ok(())
    }
}

/// A table of fixed-size entries (fragments, export refs, ids, xattr ids)
/// as placed in the image: its metadata blocks, then an index of their
/// absolute offsets, which the superblock points at.
pub(super) struct IndexedTable {
    /// The metadata blocks followed by the index.
    pub bytes: Vec<u8>,
    /// The absolute offset of the index.
    pub index_start: u64,
}

impl IndexedTable {
    /// The table of `entries` placed at absolute offset `start`.
    pub fn new(
        entries: &[u8],
        start: u64,
        compression: Compression,
        block_size: u32,
    ) -> io::Result<IndexedTable> {
        let mut writer = MetadataWriter::new(compression, block_size);
        writer.write(entries)?;
        let (mut bytes, block_starts) = writer.finish()?;
        let index_start = start + bytes.len() as u64;
        for block in block_starts {
            bytes.extend_from_slice(&(start + block).to_le_bytes());
        }
        Ok(IndexedTable { bytes, index_start })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_at_8_kib_and_positions_follow() {
        let mut writer = MetadataWriter::new(Compression::Gzip, 131072);
        writer.write(&[7; 8000]).unwrap();
        assert_eq!(
            writer.position(),
            MetadataRef {
                block: 0,
                offset: 8000
            }
        );
        writer.write(&[7; 192]).unwrap();
        let second = writer.position();
        assert_eq!(second.offset, 0, "a full block is stored at once");
        assert!(second.block > 2 && second.block < 200, "{second:?}");
        writer.write(&[1; 10]).unwrap();
        let (stored, starts) = writer.finish().unwrap();
        assert_eq!(starts, vec![0, second.block]);
        let header = u16::from_le_bytes([stored[0], stored[1]]);
        assert_eq!(u64::from(header) + 2, second.block, "compressed, no flag");
    }

    #[test]
    fn incompressible_blocks_are_flagged() {
        let mut writer = MetadataWriter::new(Compression::Lz4, 131072);
        writer.write(&[1, 2, 3]).unwrap();
        let (stored, _) = writer.finish().unwrap();
        assert_eq!(stored, [3, 0x80, 1, 2, 3]);
    }

    #[test]
    fn indexed_tables_end_with_absolute_block_offsets() {
        let entries = vec![0u8; METADATA_SIZE + 8];
        let table = IndexedTable::new(&entries, 1000, Compression::Gzip, 131072).unwrap();
        let index = &table.bytes[table.bytes.len() - 16..];
        assert_eq!(table.index_start, 1000 + table.bytes.len() as u64 - 16);
        assert_eq!(u64::from_le_bytes(index[..8].try_into().unwrap()), 1000);
        let second = u64::from_le_bytes(index[8..].try_into().unwrap());
        assert!(second > 1002 && second < table.index_start);
    }
}

//! Sparse files as chunk-based inodes: the file is cut into chunks of
//! 2^n blocks, each with a 4-byte block address in a map after the inode
//! (`EROFS_INODE_CHUNK_BASED` without `EROFS_CHUNK_FORMAT_INDEXES`), and a
//! chunk of zeros gets the null address (`EROFS_NULL_ADDR`), a hole.
//!
//! Small chunks find every hole but make a long map; large ones a short map
//! but store zeros around data. A file's contents are scanned once for
//! zero blocks, then the chunk size that makes map plus stored data
//! smallest is taken, if that beats storing the file flat.

use std::io::{self, Read};

use super::{BLOCK_SIZE, is_zero};

/// `EROFS_NULL_ADDR`: a chunk that is a hole.
pub const NULL_ADDR: u32 = u32::MAX;
/// `EROFS_BLOCK_MAP_ENTRY_SIZE`.
pub const MAP_ENTRY: u64 = 4;
/// `EROFS_CHUNK_FORMAT_BLKBITS_MASK`: the most chunk bits `i_u` holds.
const MAX_CHUNK_BITS: u32 = 31;
/// How much is read at a time while scanning.
const SCAN_BUFFER: usize = 1 << 20;

/// What one read of a file's contents found.
#[derive(Debug)]
pub struct Scan {
    /// The file's size.
    pub size: u64,
    /// The last `size % BLOCK_SIZE` bytes, which may go inline.
    pub tail: Vec<u8>,
    /// Bit `i` is set when block `i` holds a non-zero byte.
    data_blocks: Vec<u64>,
}

impl Scan {
    /// Reads exactly `size` bytes from `contents`.
    pub fn read(mut contents: impl Read, size: u64) -> io::Result<Scan> {
        let blocks = size.div_ceil(BLOCK_SIZE as u64);
        let mut data_blocks = vec![0u64; blocks.div_ceil(64) as usize];
        let mut buffer = vec![0; SCAN_BUFFER.min(size as usize)];
        let mut tail = Vec::new();
        let mut offset = 0u64;
        while offset < size {
            let want = buffer.len().min((size - offset) as usize);
            contents.read_exact(&mut buffer[..want])?;
            for (index, block) in buffer[..want].chunks(BLOCK_SIZE).enumerate() {
                if !is_zero(block) {
                    let block_index = offset / BLOCK_SIZE as u64 + index as u64;
                    data_blocks[(block_index / 64) as usize] |= 1 << (block_index % 64);
                }
                if block.len() < BLOCK_SIZE {
                    tail = block.to_vec();
                }
            }
            offset += want as u64;
        }
        Ok(Scan {
            size,
            tail,
            data_blocks,
        })
    }

    /// The indexes of blocks holding data, in order.
    fn data_block_indexes(&self) -> impl Iterator<Item = u64> + '_ {
        self.data_blocks
            .iter()
            .enumerate()
            .flat_map(|(word_index, &word)| {
                (0..64)
                    .filter(move |bit| word & (1 << bit) != 0)
                    .map(move |bit| word_index as u64 * 64 + bit)
            })
    }

    /// The chunking that stores this file in fewer bytes than flat blocks,
    /// if any: only files with zero blocks have one.
    pub fn chunks(&self) -> Option<Chunks> {
        let blocks = self.size.div_ceil(BLOCK_SIZE as u64);
        // Chunks as large as the file leave no holes; stop below that.
        let levels = (u64::BITS - blocks.saturating_sub(1).leading_zeros()).min(MAX_CHUNK_BITS);
        // Per chunk size 2^bits blocks: the last chunk counted, and how
        // many blocks the chunks with data take.
        let mut last_chunk = vec![None; levels as usize];
        let mut stored = vec![0u64; levels as usize];
        for block in self.data_block_indexes() {
            for bits in 0..levels {
                let chunk = block >> bits;
                if last_chunk[bits as usize] != Some(chunk) {
                    last_chunk[bits as usize] = Some(chunk);
                    stored[bits as usize] += (1 << bits).min(blocks - (chunk << bits));
                }
            }
        }
        let flat = blocks * BLOCK_SIZE as u64;
        let cost = |bits: u32| {
            blocks.div_ceil(1 << bits) * MAP_ENTRY + stored[bits as usize] * BLOCK_SIZE as u64
        };
        let bits = (0..levels).min_by_key(|&bits| (cost(bits), bits))?;
        if cost(bits) >= flat {
            return None;
        }
        let mut present = vec![false; blocks.div_ceil(1 << bits) as usize];
        for block in self.data_block_indexes() {
            present[(block >> bits) as usize] = true;
        }
        Some(Chunks {
            bits,
            size: self.size,
            present,
        })
    }
}

/// A file cut into chunks, some of them holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunks {
    /// A chunk is 2^bits blocks.
    pub bits: u32,
    /// The file's size.
    pub size: u64,
    /// Whether each chunk holds data (else it is a hole).
    pub present: Vec<bool>,
}

impl Chunks {
    /// A chunk's size in bytes.
    pub fn chunk_size(&self) -> u64 {
        (BLOCK_SIZE as u64) << self.bits
    }

    /// The file bytes chunk `index` covers: the last chunk may be short.
    pub fn chunk_len(&self, index: usize) -> u64 {
        self.chunk_size()
            .min(self.size - index as u64 * self.chunk_size())
    }

    /// The blocks the chunks with data take in the data area.
    pub fn stored_blocks(&self) -> u64 {
        self.present
            .iter()
            .enumerate()
            .filter(|(_, present)| **present)
            .map(|(index, _)| self.chunk_len(index).div_ceil(BLOCK_SIZE as u64))
            .sum()
    }

    /// The block map's length in bytes.
    pub fn map_len(&self) -> u64 {
        self.present.len() as u64 * MAP_ENTRY
    }

    /// The block map, chunks with data stored one after another from
    /// block `first_block`.
    pub fn map(&self, first_block: u32) -> Vec<u8> {
        let mut map = Vec::with_capacity(self.map_len() as usize);
        let mut next = first_block;
        for (index, &present) in self.present.iter().enumerate() {
            let address = if present {
                let address = next;
                next += self.chunk_len(index).div_ceil(BLOCK_SIZE as u64) as u32;
                address
            } else {
                NULL_ADDR
            };
            map.extend_from_slice(&address.to_le_bytes());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// A file of `size` bytes, zero but for 4 KiB of data at each of `at`.
    fn sparse(size: u64, at: &[u64]) -> Vec<u8> {
        let mut bytes = vec![0; size as usize];
        for &offset in at {
            let end = (offset + BLOCK_SIZE as u64).min(size) as usize;
            bytes[offset as usize..end].fill(0xA5);
        }
        bytes
    }

    #[test]
    fn files_without_zero_blocks_stay_flat() {
        let bytes = vec![1; 3 * BLOCK_SIZE + 100];
        let scan = Scan::read(&bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(scan.tail, vec![1; 100]);
        assert_eq!(scan.chunks(), None);
    }

    #[test]
    fn a_mostly_empty_file_gets_a_short_map_and_little_data() {
        let size = 256 * MIB;
        let bytes = sparse(size, &[0, 128 * MIB, size - 10]);
        let scan = Scan::read(&bytes[..], size).unwrap();
        assert_eq!(scan.tail, vec![0xA5; (size % BLOCK_SIZE as u64) as usize]);
        let chunks = scan.chunks().expect("a sparse file is chunked");
        let stored = chunks.map_len() + chunks.stored_blocks() * BLOCK_SIZE as u64;
        assert!(stored < MIB / 2, "{stored} bytes for {chunks:?}");
        assert_eq!(chunks.present.iter().filter(|present| **present).count(), 3);
        let map = chunks.map(100);
        let addresses: Vec<u32> = map
            .chunks(4)
            .map(|entry| u32::from_le_bytes(entry.try_into().unwrap()))
            .collect();
        assert_eq!(addresses[0], 100);
        assert_eq!(addresses[1], NULL_ADDR);
        let chunk_blocks = 1u32 << chunks.bits;
        assert_eq!(addresses[addresses.len() / 2], 100 + chunk_blocks);
        assert_eq!(addresses[addresses.len() - 1], 100 + 2 * chunk_blocks);
    }

    #[test]
    fn the_last_chunk_stores_only_the_blocks_the_file_reaches() {
        let size = 10 * BLOCK_SIZE as u64 + 1;
        let mut bytes = vec![0; size as usize];
        bytes[size as usize - 1] = 1;
        let chunks = Scan::read(&bytes[..], size).unwrap().chunks().unwrap();
        // Two-block chunks: a map of 6 entries and one stored block beats
        // 11 entries and the same block, and larger chunks store more zeros.
        assert_eq!(chunks.bits, 1);
        assert_eq!(chunks.present, [false, false, false, false, false, true]);
        assert_eq!(chunks.stored_blocks(), 1);
        assert_eq!(chunks.chunk_len(5), 1);
    }

    #[test]
    fn a_short_stream_is_an_error() {
        let error = Scan::read(&[1u8; 10][..], 20).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}

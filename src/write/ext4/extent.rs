//! Extent trees: which blocks hold which part of a file. Up to four
//! extents sit in the inode; more go into leaf blocks under index entries
//! in the inode, with further index levels as needed.

use super::allocator::Run;
use super::crc32c;
use super::geometry::BLOCK_SIZE;
use super::le::{put16, put32};

/// `eh_magic`.
const MAGIC: u16 = 0xF30A;
/// Bytes of a header, an extent or an index entry.
const ENTRY: usize = 12;
/// Entries in the inode's 60 bytes after the header.
const IN_INODE: usize = 4;
/// Entries in a tree block before its 4-byte checksum tail.
const PER_BLOCK: usize = (BLOCK_SIZE as usize - ENTRY - 4) / ENTRY;
/// Where a tree block's checksum lies.
const TAIL: usize = ENTRY + PER_BLOCK * ENTRY;
/// The longest initialised extent; longer lengths mean unwritten ones.
pub const MAX_LEN: u64 = 32768;

/// Logical blocks `logical..logical + len` of a file lie at `start..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// The first logical block.
    pub logical: u32,
    /// Blocks, at most [`MAX_LEN`].
    pub len: u16,
    /// The first physical block.
    pub start: u64,
}

/// Appends extents for logical blocks from `logical` stored in `runs`.
pub fn map(extents: &mut Vec<Extent>, mut logical: u64, runs: &[Run]) {
    for run in runs {
        let mut done = 0;
        while done < run.len {
            let len = (run.len - done).min(MAX_LEN);
            extents.push(Extent {
                logical: logical as u32,
                len: len as u16,
                start: run.start + done,
            });
            logical += len;
            done += len;
        }
    }
}

/// Blocks of the tree over `extents` extents beyond the inode.
pub fn tree_blocks(extents: usize) -> u64 {
    let mut total = 0;
    let mut level = extents;
    while level > IN_INODE {
        level = level.div_ceil(PER_BLOCK);
        total += level as u64;
    }
    total
}

/// An extent tree laid out: the inode's part and the blocks below it.
#[derive(Debug)]
pub struct Tree {
    /// The inode's `i_block`.
    pub root: [u8; 60],
    /// Tree blocks and their contents.
    pub blocks: Vec<(u64, Vec<u8>)>,
}

/// The tree over `extents`, its blocks at `blocks` (as many as
/// [`tree_blocks`] says), checksummed under inode checksum seed `seed`.
pub fn build(extents: &[Extent], blocks: &[u64], seed: u32) -> Tree {
    // Each level as (first logical block, entry bytes) pairs.
    let mut level: Vec<(u32, [u8; ENTRY])> = extents
        .iter()
        .map(|extent| {
            let mut entry = [0; ENTRY];
            put32(&mut entry, 0, extent.logical);
            put16(&mut entry, 4, extent.len);
            put16(&mut entry, 6, (extent.start >> 32) as u16);
            put32(&mut entry, 8, extent.start as u32);
            (extent.logical, entry)
        })
        .collect();
    let mut depth = 0;
    let mut free = blocks.iter();
    let mut written = Vec::new();
    while level.len() > IN_INODE {
        let mut parents = Vec::new();
        for chunk in level.chunks(PER_BLOCK) {
            let block = *free
                .next()
                .expect("as many tree blocks as tree_blocks counts");
            let mut raw = vec![0u8; BLOCK_SIZE as usize];
            header(&mut raw, chunk.len(), PER_BLOCK, depth);
            for (i, (_, entry)) in chunk.iter().enumerate() {
                raw[ENTRY * (i + 1)..ENTRY * (i + 2)].copy_from_slice(entry);
            }
            let checksum = crc32c::update(seed, &raw[..TAIL]);
            put32(&mut raw, TAIL, checksum);
            written.push((block, raw));
            let mut index = [0; ENTRY];
            put32(&mut index, 0, chunk[0].0);
            put32(&mut index, 4, block as u32);
            put16(&mut index, 8, (block >> 32) as u16);
            parents.push((chunk[0].0, index));
        }
        level = parents;
        depth += 1;
    }
    let mut root = [0u8; 60];
    header(&mut root, level.len(), IN_INODE, depth);
    for (i, (_, entry)) in level.iter().enumerate() {
        root[ENTRY * (i + 1)..ENTRY * (i + 2)].copy_from_slice(entry);
    }
    Tree {
        root,
        blocks: written,
    }
}

/// Writes a node header.
fn header(raw: &mut [u8], entries: usize, max: usize, depth: u16) {
    put16(raw, 0, MAGIC);
    put16(raw, 2, entries as u16);
    put16(raw, 4, max as u16);
    put16(raw, 6, depth);
}

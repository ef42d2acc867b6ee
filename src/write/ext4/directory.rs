//! Linear directories: entries packed into blocks, each block ending in a
//! 12-byte tail that holds its checksum.

use super::crc32c;
use super::geometry::BLOCK_SIZE;
use super::hash;
use super::le::{put16, put32};

/// Bytes of the checksum tail.
const TAIL: usize = 12;
/// Bytes of a block that entries may use.
const ROOM: usize = BLOCK_SIZE as usize - TAIL;
/// Bytes of an entry before its name.
const HEADER: usize = 8;
/// The tail's "file type", marking it as a checksum.
const TAIL_TYPE: u8 = 0xDE;
/// Where the index root's entries (limit and count first) start.
const INDEX_START: usize = 32;
/// Index entries in the root: the block less the header and the 8-byte
/// checksum tail.
const INDEX_LIMIT: usize = (BLOCK_SIZE as usize - INDEX_START - 8) / 8;
/// `dx_root_info.hash_version`: half MD4 (unsigned, as the superblock says).
const HASH_HALF_MD4: u8 = 1;

/// File types of directory entries.
pub mod file_type {
    /// Regular file.
    pub const FILE: u8 = 1;
    /// Directory.
    pub const DIRECTORY: u8 = 2;
    /// Character device.
    pub const CHAR_DEVICE: u8 = 3;
    /// Block device.
    pub const BLOCK_DEVICE: u8 = 4;
    /// FIFO.
    pub const FIFO: u8 = 5;
    /// Socket.
    pub const SOCKET: u8 = 6;
    /// Symbolic link.
    pub const SYMLINK: u8 = 7;
}

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name, at most 255 bytes.
    pub name: Vec<u8>,
    /// The inode it names.
    pub ino: u32,
    /// Its [`file_type`].
    pub file_type: u8,
}

/// The bytes an entry for `name` takes at least.
fn entry_len(name: &[u8]) -> usize {
    (HEADER + name.len()).next_multiple_of(4)
}

/// Splits entries (by index into `entries`, in order) into blocks; with
/// `keep_together`, never between two entries it calls equal.
fn pack(
    entries: &[DirEntry],
    order: impl IntoIterator<Item = usize>,
    keep_together: impl Fn(usize, usize) -> bool,
) -> Vec<Vec<usize>> {
    let mut blocks: Vec<Vec<usize>> = vec![Vec::new()];
    let mut used = 0;
    let mut previous = None;
    for i in order {
        let len = entry_len(&entries[i].name);
        let current = blocks.last().expect("one block at least");
        let joined = previous.is_some_and(|p| keep_together(p, i));
        if used + len > ROOM && !current.is_empty() && !joined {
            blocks.push(Vec::new());
            used = 0;
        }
        used += len;
        blocks.last_mut().expect("one block at least").push(i);
        previous = Some(i);
    }
    blocks
}

/// Blocks a linear directory of `entries` fills.
pub fn linear_blocks(entries: &[DirEntry]) -> u64 {
    pack(entries, 0..entries.len(), |_, _| false).len() as u64
}

/// How a directory's entries lie in its blocks.
#[derive(Debug)]
pub struct Layout {
    /// Entry indexes per block (per leaf block when indexed).
    blocks: Vec<Vec<usize>>,
    /// When indexed: the lowest name hash in each leaf block.
    index: Option<Vec<u32>>,
}

impl Layout {
    /// Lays out `entries` (`.` and `..` first) in at least `min_blocks`
    /// blocks. A directory that fills more than one block gets a
    /// one-level hash index (`dir_index`) over leaf blocks in hash order,
    /// so that lookups read two blocks, not all; one too large for a
    /// single index level stays linear, which is as valid, only slower.
    pub fn new(entries: &[DirEntry], min_blocks: u64, hash_seed: &[u32; 4]) -> Layout {
        let linear = Layout {
            blocks: pack(entries, 0..entries.len(), |_, _| false),
            index: None,
        };
        if linear.blocks.len() == 1 || min_blocks > 1 {
            return linear;
        }
        let hashes: Vec<(u32, u32)> = entries
            .iter()
            .map(|entry| hash::name_hash(&entry.name, hash_seed))
            .collect();
        let mut order: Vec<usize> = (2..entries.len()).collect();
        order.sort_by_key(|&i| (hashes[i], i));
        let leaves = pack(entries, order, |a, b| hashes[a].0 == hashes[b].0);
        if leaves.len() > INDEX_LIMIT {
            return linear;
        }
        let index = leaves.iter().map(|leaf| hashes[leaf[0]].0).collect();
        Layout {
            blocks: leaves,
            index: Some(index),
        }
    }

    /// Whether the directory is hash-indexed.
    pub fn indexed(&self) -> bool {
        self.index.is_some()
    }

    /// Blocks the directory takes, at least `min_blocks`.
    pub fn len(&self, min_blocks: u64) -> u64 {
        (self.blocks.len() as u64 + u64::from(self.indexed())).max(min_blocks)
    }

    /// The directory's blocks, at least `min_blocks` of them (later ones
    /// empty), each checksummed under inode checksum seed `seed`.
    pub fn encode(&self, entries: &[DirEntry], min_blocks: u64, seed: u32) -> Vec<Vec<u8>> {
        let mut blocks = Vec::new();
        if let Some(index) = &self.index {
            blocks.push(index_root(&entries[0], &entries[1], index, seed));
        }
        for block_entries in &self.blocks {
            let block_entries: Vec<&DirEntry> =
                block_entries.iter().map(|&i| &entries[i]).collect();
            blocks.push(block(&block_entries, seed));
        }
        while (blocks.len() as u64) < min_blocks {
            blocks.push(block(&[], seed));
        }
        blocks
    }
}

/// The index root: `.` and `..` (spanning the block), the index header,
/// one (hash, block) entry per leaf, and the checksum tail.
fn index_root(dot: &DirEntry, dotdot: &DirEntry, index: &[u32], seed: u32) -> Vec<u8> {
    let mut raw = vec![0u8; BLOCK_SIZE as usize];
    put32(&mut raw, 0, dot.ino);
    put16(&mut raw, 4, 12);
    raw[6] = 1;
    raw[7] = file_type::DIRECTORY;
    raw[8] = b'.';
    put32(&mut raw, 12, dotdot.ino);
    put16(&mut raw, 16, BLOCK_SIZE as u16 - 12);
    raw[18] = 2;
    raw[19] = file_type::DIRECTORY;
    raw[20..22].copy_from_slice(b"..");
    // dx_root_info: hash version, its own length, one level.
    raw[28] = HASH_HALF_MD4;
    raw[29] = 8;
    put16(&mut raw, INDEX_START, INDEX_LIMIT as u16);
    put16(&mut raw, INDEX_START + 2, index.len() as u16);
    for (leaf, &hash) in index.iter().enumerate() {
        let at = INDEX_START + 8 * leaf;
        if leaf > 0 {
            // The first entry's hash is implicitly 0; its place holds the
            // limit and count.
            put32(&mut raw, at, hash);
        }
        put32(&mut raw, at + 4, leaf as u32 + 1);
    }
    let tail = INDEX_START + 8 * INDEX_LIMIT;
    // The checksum covers the header and used entries, then the whole
    // tail with the checksum itself still zero.
    let checksum = crc32c::update(
        crc32c::update(seed, &raw[..INDEX_START + 8 * index.len()]),
        &raw[tail..tail + 8],
    );
    put32(&mut raw, tail + 4, checksum);
    raw
}

/// One block holding `entries`; the last entry's record reaches the tail.
/// An empty block holds one unused entry spanning it.
fn block(entries: &[&DirEntry], seed: u32) -> Vec<u8> {
    let mut raw = vec![0u8; BLOCK_SIZE as usize];
    let mut at = 0;
    for (i, entry) in entries.iter().enumerate() {
        let len = if i + 1 == entries.len() {
            ROOM - at
        } else {
            entry_len(&entry.name)
        };
        put32(&mut raw, at, entry.ino);
        put16(&mut raw, at + 4, len as u16);
        raw[at + 6] = entry.name.len() as u8;
        raw[at + 7] = entry.file_type;
        raw[at + HEADER..at + HEADER + entry.name.len()].copy_from_slice(&entry.name);
        at += len;
    }
    if entries.is_empty() {
        put16(&mut raw, 4, ROOM as u16);
    }
    put16(&mut raw, ROOM + 4, TAIL as u16);
    raw[ROOM + 7] = TAIL_TYPE;
    let checksum = crc32c::update(seed, &raw[..ROOM]);
    put32(&mut raw, ROOM + 8, checksum);
    raw
}

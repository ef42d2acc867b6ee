//! Linear directories: entries packed into blocks, each block ending in a
//! 12-byte tail that holds its checksum.

use super::crc32c;
use super::geometry::BLOCK_SIZE;
use super::le::{put16, put32};

/// Bytes of the checksum tail.
const TAIL: usize = 12;
/// Bytes of a block that entries may use.
const ROOM: usize = BLOCK_SIZE as usize - TAIL;
/// Bytes of an entry before its name.
const HEADER: usize = 8;
/// The tail's "file type", marking it as a checksum.
const TAIL_TYPE: u8 = 0xDE;

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

/// How `entries` split into blocks: the index of each block's first entry.
fn block_starts(entries: &[DirEntry]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut used = 0;
    for (i, entry) in entries.iter().enumerate() {
        let len = entry_len(&entry.name);
        if used + len > ROOM {
            starts.push(i);
            used = 0;
        }
        used += len;
    }
    starts
}

/// Blocks `entries` fill.
pub fn blocks_needed(entries: &[DirEntry]) -> u64 {
    block_starts(entries).len() as u64
}

/// The directory's blocks, at least `min_blocks` of them (later ones
/// empty), each checksummed under inode checksum seed `seed`.
pub fn encode(entries: &[DirEntry], min_blocks: u64, seed: u32) -> Vec<Vec<u8>> {
    let starts = block_starts(entries);
    let mut blocks = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(entries.len());
        blocks.push(block(&entries[start..end], seed));
    }
    while (blocks.len() as u64) < min_blocks {
        blocks.push(block(&[], seed));
    }
    blocks
}

/// One block holding `entries`; the last entry's record reaches the tail.
/// An empty block holds one unused entry spanning it.
fn block(entries: &[DirEntry], seed: u32) -> Vec<u8> {
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

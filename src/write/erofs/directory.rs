//! Directory contents: blocks of `erofs_dirent`s (12 bytes each: nid,
//! name offset, file type) followed by their names, unterminated.
//!
//! All entries, `.` and `..` included, are sorted by name bytes across the
//! whole directory, since Linux binary-searches first the blocks (by their
//! first name) and then the entries of one block. No entry or name crosses
//! a block; a block's first `nameoff` says how many entries it has. The
//! directory's size ends right after the last name, so the last block may
//! be partial and stored inline.

use super::BLOCK_SIZE;

/// `sizeof(struct erofs_dirent)`.
const DIRENT: usize = 12;

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    /// The name, at most 255 bytes.
    pub name: Vec<u8>,
    /// The index of the inode it names.
    pub inode: usize,
    /// `EROFS_FT_*`.
    pub file_type: u8,
}

/// A directory's entries, sorted and cut into blocks.
#[derive(Debug, Clone)]
pub struct Directory {
    entries: Vec<Dirent>,
    /// The number of entries in each block.
    per_block: Vec<usize>,
    /// The size in bytes: whole blocks, then the last block's used bytes.
    size: u64,
}

impl Directory {
    /// Sorts `entries` and packs them into blocks, as many as fit in each.
    pub fn new(mut entries: Vec<Dirent>) -> Directory {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut per_block = Vec::new();
        let (mut count, mut used) = (0, 0);
        for entry in &entries {
            let len = DIRENT + entry.name.len();
            if used + len > BLOCK_SIZE {
                per_block.push(count);
                (count, used) = (0, 0);
            }
            count += 1;
            used += len;
        }
        per_block.push(count);
        let size = (per_block.len() as u64 - 1) * BLOCK_SIZE as u64 + used as u64;
        Directory {
            entries,
            per_block,
            size,
        }
    }

    /// The directory's size in bytes (`i_size`).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The contents, [`size`](Self::size) bytes, each entry's nid taken
    /// from `nid_of` its inode index.
    pub fn encode(&self, nid_of: impl Fn(usize) -> u64) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.size as usize);
        let mut rest = self.entries.as_slice();
        for &count in &self.per_block {
            let (block, after) = rest.split_at(count);
            rest = after;
            bytes.resize(bytes.len().next_multiple_of(BLOCK_SIZE), 0);
            let mut nameoff = DIRENT * block.len();
            for entry in block {
                bytes.extend_from_slice(&nid_of(entry.inode).to_le_bytes());
                bytes.extend_from_slice(&(nameoff as u16).to_le_bytes());
                bytes.push(entry.file_type);
                bytes.push(0);
                nameoff += entry.name.len();
            }
            for entry in block {
                bytes.extend_from_slice(&entry.name);
            }
        }
        debug_assert_eq!(bytes.len() as u64, self.size);
        bytes
    }
}

/// Reads directory contents back: (name, nid, file type) in stored order.
#[cfg(test)]
pub fn decode(bytes: &[u8]) -> Vec<(Vec<u8>, u64, u8)> {
    let mut entries = Vec::new();
    for block in bytes.chunks(BLOCK_SIZE) {
        let count = u16::from_le_bytes([block[8], block[9]]) as usize / DIRENT;
        for index in 0..count {
            let dirent = &block[index * DIRENT..(index + 1) * DIRENT];
            let nid = u64::from_le_bytes(dirent[0..8].try_into().unwrap());
            let start = u16::from_le_bytes([dirent[8], dirent[9]]) as usize;
            let end = if index + 1 < count {
                let next = &block[(index + 1) * DIRENT..];
                u16::from_le_bytes([next[8], next[9]]) as usize
            } else {
                block[start..]
                    .iter()
                    .position(|&byte| byte == 0)
                    .map_or(block.len(), |zero| start + zero)
            };
            entries.push((block[start..end].to_vec(), nid, dirent[10]));
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirent(name: &[u8], inode: usize) -> Dirent {
        Dirent {
            name: name.to_vec(),
            inode,
            file_type: 1,
        }
    }

    #[test]
    fn small_directories_are_one_partial_block_sorted_by_name_bytes() {
        let directory = Directory::new(vec![
            dirent(b"b", 2),
            dirent(b"..", 0),
            dirent(b"-a", 3),
            dirent(b".", 1),
            dirent(b"B", 4),
        ]);
        let bytes = directory.encode(|inode| inode as u64 * 10);
        assert_eq!(directory.size(), 5 * 12 + 1 + 2 + 2 + 1 + 1);
        let names: Vec<(Vec<u8>, u64)> = decode(&bytes)
            .into_iter()
            .map(|(name, nid, _)| (name, nid))
            .collect();
        let expected: Vec<(Vec<u8>, u64)> = [
            (&b"-a"[..], 30),
            (b".", 10),
            (b"..", 0),
            (b"B", 40),
            (b"b", 20),
        ]
        .into_iter()
        .map(|(name, nid)| (name.to_vec(), nid))
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn large_directories_fill_blocks_without_splitting_entries() {
        let entries: Vec<Dirent> = (0..10_000)
            .map(|i| dirent(format!("file-{i:05}").as_bytes(), i))
            .collect();
        let directory = Directory::new(entries);
        let bytes = directory.encode(|inode| inode as u64);
        // 22 bytes an entry: 186 fit in a block.
        let blocks = 10_000usize.div_ceil(186);
        assert_eq!(bytes.len() as u64, directory.size());
        assert_eq!(bytes.len(), (blocks - 1) * BLOCK_SIZE + (10_000 % 186) * 22);
        let decoded = decode(&bytes);
        assert_eq!(decoded.len(), 10_000);
        for (i, (name, nid, _)) in decoded.iter().enumerate() {
            assert_eq!(name, format!("file-{i:05}").as_bytes());
            assert_eq!(*nid, i as u64);
        }
    }
}

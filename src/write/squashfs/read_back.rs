//! Reads images this writer made, far enough for the unit tests to check
//! what was stored: inodes, listings, contents, ids and xattrs.

use std::collections::HashMap;
use std::io::Read;

use super::superblock::{NO_TABLE, Superblock};

/// An inode as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub code: u16,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    pub number: u32,
    pub nlink: u32,
    pub xattr: u32,
    pub size: u64,
    pub start: u64,
    pub blocks: Vec<u32>,
    pub fragment: (u32, u32),
    pub target: Vec<u8>,
    pub rdev: u32,
    /// Listing block, offset, and size as stored (listing + 3).
    pub dir: (u32, u16, u32),
    pub parent: u32,
}

pub struct Image {
    pub sb: Superblock,
    bytes: Vec<u8>,
    inodes: (Vec<u8>, HashMap<u64, usize>),
    dirs: (Vec<u8>, HashMap<u64, usize>),
    ids: Vec<u32>,
}

impl Image {
    pub fn new(bytes: Vec<u8>) -> Image {
        let sb = Superblock::parse(&bytes);
        let mut image = Image {
            sb: sb.clone(),
            bytes,
            inodes: Default::default(),
            dirs: Default::default(),
            ids: Vec::new(),
        };
        let mut ends = vec![sb.id_table];
        if sb.fragments > 0 {
            ends.push(image.u64_at(sb.fragment_table));
        }
        if sb.lookup_table != NO_TABLE {
            ends.push(image.u64_at(sb.lookup_table));
        }
        image.inodes = image.stream(sb.inode_table, sb.directory_table);
        image.dirs = image.stream(sb.directory_table, *ends.iter().min().unwrap());
        let ids = image.table(sb.id_table, usize::from(sb.ids) * 4);
        image.ids = ids
            .chunks(4)
            .map(|id| u32::from_le_bytes(id.try_into().unwrap()))
            .collect();
        image
    }

    fn u64_at(&self, at: u64) -> u64 {
        let at = at as usize;
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    pub fn decompress(&self, data: &[u8], capacity: usize) -> Vec<u8> {
        let mut out = Vec::new();
        match self.sb.compression {
            1 => {
                flate2::read::ZlibDecoder::new(data)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            4 => {
                lzma_rust2::XzReader::new(data, false)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            5 => out = lz4_flex::block::decompress(data, capacity).unwrap(),
            6 => out = zstd::bulk::decompress(data, capacity).unwrap(),
            other => panic!("compression {other}"),
        }
        out
    }

    /// The metadata blocks from `start` to `end`, uncompressed, and where
    /// each block (by offset from `start`) begins in the result.
    fn stream(&self, start: u64, end: u64) -> (Vec<u8>, HashMap<u64, usize>) {
        let mut out = Vec::new();
        let mut blocks = HashMap::new();
        let mut at = start;
        while at < end {
            blocks.insert(at - start, out.len());
            let (block, next) = self.metadata_block(at);
            out.extend_from_slice(&block);
            at = next;
        }
        (out, blocks)
    }

    fn metadata_block(&self, at: u64) -> (Vec<u8>, u64) {
        let at = at as usize;
        let header = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]);
        let len = usize::from(header & 0x7fff);
        let stored = &self.bytes[at + 2..at + 2 + len];
        let block = if header & 0x8000 != 0 {
            stored.to_vec()
        } else {
            self.decompress(stored, 8192)
        };
        assert!(block.len() <= 8192);
        (block, (at + 2 + len) as u64)
    }

    /// `len` bytes of the indexed table whose index is at `index`.
    pub fn table(&self, index: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut slot = index;
        while out.len() < len {
            out.extend(self.metadata_block(self.u64_at(slot)).0);
            slot += 8;
        }
        out.truncate(len);
        out
    }

    pub fn inode(&self, packed: u64) -> Inode {
        let at = self.inodes.1[&(packed >> 16)] + (packed & 0xffff) as usize;
        let data = &self.inodes.0[at..];
        let h = |at: usize| u16::from_le_bytes(data[at..at + 2].try_into().unwrap());
        let w = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let l = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
        let mut inode = Inode {
            code: h(0),
            mode: h(2),
            uid: self.ids[usize::from(h(4))],
            gid: self.ids[usize::from(h(6))],
            mtime: w(8),
            number: w(12),
            nlink: 1,
            xattr: u32::MAX,
            size: 0,
            start: 0,
            blocks: Vec::new(),
            fragment: (u32::MAX, 0),
            target: Vec::new(),
            rdev: 0,
            dir: (0, 0, 0),
            parent: 0,
        };
        let blocks_at = match inode.code {
            1 => {
                inode.dir = (w(16), h(26), u32::from(h(24)));
                (inode.nlink, inode.parent) = (w(20), w(28));
                None
            }
            8 => {
                inode.dir = (w(24), h(34), w(20));
                (inode.nlink, inode.parent, inode.xattr) = (w(16), w(28), w(36));
                None
            }
            2 => {
                (inode.start, inode.fragment, inode.size) =
                    (u64::from(w(16)), (w(20), w(24)), u64::from(w(28)));
                Some(32)
            }
            9 => {
                (inode.start, inode.size, inode.nlink) = (l(16), l(24), w(40));
                (inode.fragment, inode.xattr) = ((w(44), w(48)), w(52));
                Some(56)
            }
            3 | 10 => {
                inode.nlink = w(16);
                let len = w(20) as usize;
                inode.target = data[24..24 + len].to_vec();
                if inode.code == 10 {
                    inode.xattr = w(24 + len);
                }
                None
            }
            4 | 5 | 11 | 12 => {
                (inode.nlink, inode.rdev) = (w(16), w(20));
                if inode.code > 7 {
                    inode.xattr = w(24);
                }
                None
            }
            6 | 7 | 13 | 14 => {
                inode.nlink = w(16);
                if inode.code > 7 {
                    inode.xattr = w(20);
                }
                None
            }
            other => panic!("inode type {other}"),
        };
        if let Some(at) = blocks_at {
            let block = u64::from(self.sb.block_size);
            let count = if inode.fragment.0 == u32::MAX {
                inode.size.div_ceil(block)
            } else {
                inode.size / block
            };
            inode.blocks = (0..count as usize).map(|i| w(at + 4 * i)).collect();
        }
        inode
    }

    /// A directory's entries: name, packed inode reference, type code.
    pub fn entries(&self, dir: &Inode) -> Vec<(Vec<u8>, u64, u16)> {
        let (block, offset, size) = dir.dir;
        if size == 3 {
            return Vec::new();
        }
        let start = self.dirs.1[&u64::from(block)] + usize::from(offset);
        let listing = &self.dirs.0[start..start + size as usize - 3];
        let h = |at: usize| u16::from_le_bytes(listing[at..at + 2].try_into().unwrap());
        let w = |at: usize| u32::from_le_bytes(listing[at..at + 4].try_into().unwrap());
        let mut entries = Vec::new();
        let mut at = 0;
        while at < listing.len() {
            let (count, inode_block) = (w(at) + 1, u64::from(w(at + 4)));
            at += 12;
            for _ in 0..count {
                let name_len = usize::from(h(at + 6)) + 1;
                let name = listing[at + 8..at + 8 + name_len].to_vec();
                entries.push((name, inode_block << 16 | u64::from(h(at)), h(at + 4)));
                at += 8 + name_len;
            }
        }
        entries
    }

    /// Every inode by path, the root ("") first, parents before entries.
    pub fn walk(&self) -> Vec<(String, Inode)> {
        let mut out = vec![(String::new(), self.inode(self.sb.root_inode))];
        let mut i = 0;
        while i < out.len() {
            let (path, inode) = out[i].clone();
            i += 1;
            if inode.code != 1 && inode.code != 8 {
                continue;
            }
            let children: Vec<_> = self
                .entries(&inode)
                .into_iter()
                .map(|(name, packed, _)| {
                    let name = String::from_utf8(name).unwrap();
                    let child = if path.is_empty() {
                        name
                    } else {
                        format!("{path}/{name}")
                    };
                    (child, self.inode(packed))
                })
                .collect();
            out.splice(i..i, children);
        }
        out
    }

    pub fn contents(&self, inode: &Inode) -> Vec<u8> {
        let block_size = self.sb.block_size as usize;
        let mut out = Vec::new();
        let mut at = inode.start as usize;
        for &word in &inode.blocks {
            let want = block_size.min(inode.size as usize - out.len());
            if word == 0 {
                out.resize(out.len() + want, 0);
                continue;
            }
            let len = (word & 0xff_ffff) as usize;
            let stored = &self.bytes[at..at + len];
            at += len;
            if word & (1 << 24) != 0 {
                out.extend_from_slice(stored);
            } else {
                out.extend(self.decompress(stored, block_size));
            }
        }
        let (index, offset) = inode.fragment;
        if index != u32::MAX {
            let entries = self.table(self.sb.fragment_table, (index as usize + 1) * 16);
            let entry = &entries[index as usize * 16..];
            let start = u64::from_le_bytes(entry[..8].try_into().unwrap()) as usize;
            let word = u32::from_le_bytes(entry[8..12].try_into().unwrap());
            let stored = &self.bytes[start..start + (word & 0xff_ffff) as usize];
            let block = if word & (1 << 24) != 0 {
                stored.to_vec()
            } else {
                self.decompress(stored, block_size)
            };
            let tail = inode.size as usize - out.len();
            out.extend_from_slice(&block[offset as usize..offset as usize + tail]);
        }
        out
    }

    /// The inode's xattrs, full names, in stored order.
    pub fn xattrs(&self, inode: &Inode) -> Vec<(String, Vec<u8>)> {
        if inode.xattr == u32::MAX {
            return Vec::new();
        }
        let header = self.sb.xattr_id_table as usize;
        let pairs_start = self.u64_at(header as u64);
        let count = u32::from_le_bytes(self.bytes[header + 8..header + 12].try_into().unwrap());
        let ids = self.table(header as u64 + 16, count as usize * 16);
        let entry = &ids[inode.xattr as usize * 16..];
        let packed = u64::from_le_bytes(entry[..8].try_into().unwrap());
        let pairs_count = u32::from_le_bytes(entry[8..12].try_into().unwrap());
        let (pairs, blocks) = self.stream(pairs_start, self.u64_at(header as u64 + 16));
        let mut at = blocks[&(packed >> 16)] + (packed & 0xffff) as usize;
        let h = |at: usize| u16::from_le_bytes(pairs[at..at + 2].try_into().unwrap());
        (0..pairs_count)
            .map(|_| {
                let prefix = ["user.", "trusted.", "security."][usize::from(h(at))];
                let name_len = usize::from(h(at + 2));
                let name = std::str::from_utf8(&pairs[at + 4..at + 4 + name_len]).unwrap();
                at += 4 + name_len;
                let value_len = u32::from_le_bytes(pairs[at..at + 4].try_into().unwrap()) as usize;
                let value = pairs[at + 4..at + 4 + value_len].to_vec();
                at += 4 + value_len;
                (format!("{prefix}{name}"), value)
            })
            .collect()
    }
}

//! Extended attributes: in the inode's spare 96 bytes when they all fit,
//! else in one xattr block. Names are stored without their namespace
//! prefix, which becomes a name index; POSIX ACLs are converted from the
//! xattr interface's form to ext4's shorter on-disk form.

use std::collections::BTreeMap;

use super::crc32c;
use super::geometry::{BLOCK_SIZE, INODE_SIZE};
use super::inode::XATTR_START;
use super::le::{put16, put32, put64};

/// `h_magic` of the in-inode area and of xattr blocks.
const MAGIC: u32 = 0xEA02_0000;
/// Bytes of an entry before its name.
const ENTRY_HEADER: usize = 16;
/// Bytes of an xattr block's header.
const BLOCK_HEADER: usize = 32;
/// Bytes of the in-inode area.
pub const INLINE_AREA: usize = INODE_SIZE as usize - XATTR_START;

/// Name prefixes and their indexes; whole names first.
const PREFIXES: [(&str, u8); 5] = [
    ("system.posix_acl_access", 2),
    ("system.posix_acl_default", 3),
    ("user.", 1),
    ("trusted.", 4),
    ("security.", 6),
];

/// An attribute as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// The namespace index.
    pub index: u8,
    /// The name after the namespace prefix.
    pub name: Vec<u8>,
    /// The value as stored.
    pub value: Vec<u8>,
}

/// Why an attribute cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The name is in no namespace ext4 stores, or too long.
    Name(String),
    /// A POSIX ACL value is malformed.
    Acl(String),
}

/// The attributes of `xattrs` as stored, in the order ext4 sorts them.
pub fn attrs(xattrs: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Attr>, Refused> {
    let mut attrs = Vec::new();
    for (name, value) in xattrs {
        let refused = || Refused::Name(name.clone());
        let (prefix, index) = PREFIXES
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .ok_or_else(refused)?;
        let suffix = &name.as_bytes()[prefix.len()..];
        if suffix.len() > 255 || (prefix.ends_with('.') && suffix.is_empty()) {
            return Err(refused());
        }
        let value = if *index == 2 || *index == 3 {
            acl_to_disk(value).ok_or_else(|| Refused::Acl(name.clone()))?
        } else {
            value.clone()
        };
        attrs.push(Attr {
            index: *index,
            name: suffix.to_vec(),
            value,
        });
    }
    attrs.sort_by(|a, b| (a.index, a.name.len(), &a.name).cmp(&(b.index, b.name.len(), &b.name)));
    Ok(attrs)
}

/// Converts a POSIX ACL from the xattr interface's form (version 2, every
/// entry 8 bytes) to ext4's (version 1, owner/group/mask/other entries
/// without the id).
fn acl_to_disk(value: &[u8]) -> Option<Vec<u8>> {
    const VERSION: u32 = 2;
    const USER: u16 = 0x02;
    const GROUP: u16 = 0x08;
    let (header, entries) = value.split_at_checked(4)?;
    if u32::from_le_bytes(header.try_into().ok()?) != VERSION || entries.len() % 8 != 0 {
        return None;
    }
    let mut disk = 1u32.to_le_bytes().to_vec();
    for entry in entries.chunks(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        disk.extend_from_slice(&entry[..4]);
        match tag {
            USER | GROUP => disk.extend_from_slice(&entry[4..]),
            0x01 | 0x04 | 0x10 | 0x20 => {}
            _ => return None,
        }
    }
    Some(disk)
}

/// Bytes an entry for `attr` takes in the entry table.
fn entry_len(attr: &Attr) -> usize {
    (ENTRY_HEADER + attr.name.len()).next_multiple_of(4)
}

/// Bytes `attr`'s value takes.
fn value_len(attr: &Attr) -> usize {
    attr.value.len().next_multiple_of(4)
}

/// Bytes the entries, their terminator and values take.
fn table_len(attrs: &[Attr]) -> usize {
    attrs
        .iter()
        .map(|a| entry_len(a) + value_len(a))
        .sum::<usize>()
        + 4
}

/// Whether `attrs` fit the inode's spare bytes.
pub fn fit_inline(attrs: &[Attr]) -> bool {
    4 + table_len(attrs) <= INLINE_AREA
}

/// Whether `attrs` fit one xattr block.
pub fn fit_block(attrs: &[Attr]) -> bool {
    BLOCK_HEADER + table_len(attrs) <= BLOCK_SIZE as usize
}

/// The in-inode area holding `attrs`, which [`fit_inline`].
pub fn inline(attrs: &[Attr]) -> [u8; INLINE_AREA] {
    let mut area = [0u8; INLINE_AREA];
    put32(&mut area, 0, MAGIC);
    // Value offsets count from the first entry; entry hashes stay 0 in
    // the inode, as the kernel leaves them.
    place(&mut area, 4, 4, attrs, false);
    area
}

/// The xattr block holding `attrs`, which [`fit_block`], stored at block
/// `block` and checksummed under the filesystem seed `seed`.
pub fn block(attrs: &[Attr], block: u64, seed: u32) -> Vec<u8> {
    let mut raw = vec![0u8; BLOCK_SIZE as usize];
    put32(&mut raw, 0x00, MAGIC);
    put32(&mut raw, 0x04, 1); // h_refcount
    put32(&mut raw, 0x08, 1); // h_blocks
    let hashes = place(&mut raw, BLOCK_HEADER, 0, attrs, true);
    // An entry without a hash voids the block's, as e2fsprogs computes it.
    let block_hash = if hashes.contains(&0) {
        0
    } else {
        hashes
            .iter()
            .fold(0u32, |hash, &entry| (hash << 16) ^ (hash >> 16) ^ entry)
    };
    put32(&mut raw, 0x0C, block_hash);
    let mut number = [0u8; 8];
    put64(&mut number, 0, block);
    let checksum = crc32c::update(crc32c::update(seed, &number), &raw);
    put32(&mut raw, 0x10, checksum);
    raw
}

/// Writes the entry table at `table` and values from the end of `area`
/// down; value offsets are relative to `base`. Returns the entry hashes.
fn place(area: &mut [u8], table: usize, base: usize, attrs: &[Attr], hash: bool) -> Vec<u32> {
    let mut at = table;
    let mut value_end = area.len();
    let mut hashes = Vec::new();
    for attr in attrs {
        let offset = if attr.value.is_empty() {
            0
        } else {
            value_end -= value_len(attr);
            area[value_end..value_end + attr.value.len()].copy_from_slice(&attr.value);
            value_end - base
        };
        let entry_hash = if hash { entry_hash(attr) } else { 0 };
        area[at] = attr.name.len() as u8;
        area[at + 1] = attr.index;
        put16(area, at + 2, offset as u16);
        put32(area, at + 8, attr.value.len() as u32);
        put32(area, at + 12, entry_hash);
        area[at + ENTRY_HEADER..at + ENTRY_HEADER + attr.name.len()].copy_from_slice(&attr.name);
        at += entry_len(attr);
        hashes.push(entry_hash);
    }
    hashes
}

/// The hash of one entry: its name, then its value in 32-bit
/// little-endian words (zero-padded).
fn entry_hash(attr: &Attr) -> u32 {
    let mut hash = attr.name.iter().fold(0u32, |hash, &byte| {
        (hash << 5) ^ (hash >> 27) ^ u32::from(byte)
    });
    for word in attr.value.chunks(4) {
        let mut padded = [0u8; 4];
        padded[..word.len()].copy_from_slice(word);
        hash = (hash << 16) ^ (hash >> 16) ^ u32::from_le_bytes(padded);
    }
    hash
}

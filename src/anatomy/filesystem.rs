//! Squashfs and EROFS images, named by region: superblock, tables and data.
//! Files are not named here.

use super::source::{Fields, Source};

pub(crate) const EROFS_MAGIC: u32 = 0xe0f5_e1e2;
const EROFS_SUPERBLOCK: u64 = 1024;
const SQUASHFS_SUPERBLOCK: u64 = 96;
const SQUASHFS_ABSENT: u64 = u64::MAX;
const METADATA_BLOCK: u64 = 8192;
/// The most metadata blocks counted to name one.
const MAX_METADATA_BLOCKS: u64 = 1 << 20;

/// The breadcrumb of `offset` in the squashfs image `source`.
pub(crate) fn squashfs(source: &dyn Source, offset: u64) -> Vec<String> {
    let Some(sb) = source.bytes(0, SQUASHFS_SUPERBLOCK) else {
        return Vec::new();
    };
    if offset < SQUASHFS_SUPERBLOCK {
        return vec!["superblock".to_owned()];
    }
    // Each table's index sits after its metadata blocks, whose first one
    // the index's first entry points at.
    let mut regions = vec![
        (SQUASHFS_SUPERBLOCK, "data blocks and fragments"),
        (sb.le64(64), "inode table"),
        (sb.le64(72), "directory table"),
        (sb.le64(40), "padding to 4 KiB"),
    ];
    for (at, name) in [
        (sb.le64(80), "fragment table"),
        (sb.le64(88), "export table"),
        (sb.le64(48), "id table"),
    ] {
        if at == SQUASHFS_ABSENT {
            continue;
        }
        regions.push((at, name));
        if let Some(first) = source.bytes(at, 8) {
            regions.push((first.le64(0), name));
        }
    }
    let xattr = sb.le64(56);
    if xattr != SQUASHFS_ABSENT
        && let Some(header) = source.bytes(xattr, 16)
    {
        regions.push((header.le64(0), "xattr table"));
        regions.push((xattr, "xattr id table"));
    }
    let Some(&(start, name)) = regions
        .iter()
        .filter(|(start, _)| *start <= offset)
        .max_by_key(|(start, _)| *start)
    else {
        return Vec::new();
    };
    let mut crumbs = vec![name.to_owned()];
    if matches!(name, "inode table" | "directory table")
        && let Some(block) = metadata_block(source, start, offset)
    {
        crumbs.push(format!("metadata block {block}"));
    }
    crumbs
}

/// Which metadata block, counting from the one at `start`, holds `offset`:
/// each is a 2-byte header (length, high bit "uncompressed") and its data.
fn metadata_block(source: &dyn Source, start: u64, offset: u64) -> Option<u64> {
    let mut at = start;
    for index in 0..MAX_METADATA_BLOCKS {
        let len = u64::from(source.bytes(at, 2)?.le16(0) & 0x7fff);
        if len == 0 || len > METADATA_BLOCK {
            return None;
        }
        at += 2 + len;
        if offset < at {
            return Some(index);
        }
    }
    None
}

/// The breadcrumb of `offset` in the EROFS image `source`.
pub(crate) fn erofs(source: &dyn Source, offset: u64) -> Vec<String> {
    let Some(sb) = source.bytes(EROFS_SUPERBLOCK, 128) else {
        return Vec::new();
    };
    let block = 1u64 << sb.byte(12).min(16);
    let crumb = if offset < EROFS_SUPERBLOCK {
        "unused space before the superblock".to_owned()
    } else if offset < EROFS_SUPERBLOCK + 128 {
        "superblock".to_owned()
    } else {
        let meta = u64::from(sb.le32(40)) * block;
        let nid = offset.saturating_sub(meta) / 32;
        format!(
            "metadata or data block {} (inode slot {nid} if metadata)",
            offset / block
        )
    };
    vec![crumb]
}

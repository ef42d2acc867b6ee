//! Writing a placed image: contents, inode tables, bitmaps, descriptors
//! and superblocks, each with its checksum.

use std::io::{self, Read, Seek, Write};

use super::allocator::{Allocator, set_bits};
use super::extent::Extent;
use super::geometry::{BLOCK_SIZE, BLOCKS_PER_GROUP, DESC_SIZE, Geometry, INODE_SIZE};
use super::group::{self, Descriptor};
use super::inode::{self, EXTENTS_FL, INDEX_FL, Inode};
use super::output::Output;
use super::placement::{Placed, Tables};
use super::plan::{self, Content, FAST_SYMLINK_MAX, Plan, Planned};
use super::superblock::{self, FIRST_INODE, SUPERBLOCK_OFFSET, Superblock};
use super::{Ext4Error, directory, xattr};
use crate::tree::Tree;

/// Bytes read at a time when skipping a hole.
const SKIP_BUFFER: usize = 1 << 20;

/// Writes one inode's blocks: contents, extent tree blocks, xattr block.
pub fn write_contents(
    tree: &Tree,
    out: &mut Output<impl Write + Seek>,
    planned: &Planned,
    placed: &Placed,
    seed: u32,
) -> Result<(), Ext4Error> {
    let io = |source| Ext4Error::Io {
        path: planned.path.clone(),
        source,
    };
    let inode_seed = inode::checksum_seed(seed, planned.ino);
    match &planned.content {
        Content::Directory {
            entries,
            min_blocks,
        } => {
            let layout = placed.directory.as_ref().expect("directories are laid out");
            let blocks = layout.encode(entries, *min_blocks, inode_seed);
            write_blocks(out, &placed.extents, &blocks.concat()).map_err(io)?;
        }
        Content::File { blob, .. } => {
            write_file(out, &mut tree.contents(blob), blob.len(), &placed.extents).map_err(io)?;
        }
        Content::Symlink(target) if target.len() >= FAST_SYMLINK_MAX => {
            write_blocks(out, &placed.extents, target).map_err(io)?;
        }
        Content::Symlink(_) | Content::Device(_) | Content::Nothing => {}
    }
    for (block, bytes) in placed.tree.iter().flat_map(|tree| &tree.blocks) {
        out.write_at(*block, bytes).map_err(io)?;
    }
    if let Some(block) = placed.xattr_block {
        out.write_at(block, &xattr::block(&planned.attrs, block, seed))
            .map_err(io)?;
    }
    Ok(())
}

/// Writes `bytes`, logical block 0 on, where `extents` put them.
fn write_blocks(
    out: &mut Output<impl Write + Seek>,
    extents: &[Extent],
    bytes: &[u8],
) -> io::Result<()> {
    for extent in extents {
        let from = u64::from(extent.logical) * BLOCK_SIZE;
        let to = (from + u64::from(extent.len) * BLOCK_SIZE).min(bytes.len() as u64);
        out.write_at(extent.start, &bytes[from as usize..to as usize])?;
    }
    Ok(())
}

/// Copies a file's data blocks where `extents` put them, reading past
/// the holes between them.
fn write_file(
    out: &mut Output<impl Write + Seek>,
    contents: &mut impl Read,
    len: u64,
    extents: &[Extent],
) -> io::Result<()> {
    let mut position = 0;
    let mut buffer = vec![0u8; SKIP_BUFFER];
    for extent in extents {
        let from = u64::from(extent.logical) * BLOCK_SIZE;
        let to = (from + u64::from(extent.len) * BLOCK_SIZE).min(len);
        skip(contents, from - position, &mut buffer)?;
        out.seek_to(extent.start * BLOCK_SIZE)?;
        let copied = io::copy(&mut contents.by_ref().take(to - from), out)?;
        if copied != to - from {
            return Err(ended_early());
        }
        position = to;
    }
    Ok(())
}

/// Reads and drops `len` bytes (a hole's zeros) through `buffer`.
fn skip(contents: &mut impl Read, mut len: u64, buffer: &mut [u8]) -> io::Result<()> {
    while len > 0 {
        let want = (buffer.len() as u64).min(len) as usize;
        if plan::read_full(contents, &mut buffer[..want])? < want {
            return Err(ended_early());
        }
        len -= want as u64;
    }
    Ok(())
}

fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file ended early while being copied into the image",
    )
}

/// Writes every group's inode table and bitmaps; returns the descriptors.
pub fn write_groups(
    out: &mut Output<impl Write + Seek>,
    geometry: &Geometry,
    allocator: &Allocator,
    tables: &[Tables],
    plan: &Plan,
    placed: &[Placed],
    seed: u32,
) -> io::Result<Vec<Descriptor>> {
    let per_group = geometry.inodes_per_group;
    let last_ino = u64::from(plan.inodes.last().map_or(0, |planned| planned.ino))
        .max(u64::from(FIRST_INODE) - 1);
    let mut descriptors = Vec::with_capacity(tables.len());
    let mut inodes = plan.inodes.iter().zip(placed).peekable();
    for (group, tables) in tables.iter().enumerate() {
        let group = group as u64;
        let first = group * per_group;
        let used = last_ino.saturating_sub(first).min(per_group);

        let mut table = vec![0u8; (used * INODE_SIZE) as usize];
        let mut directories = 0;
        while let Some((planned, placed)) =
            inodes.next_if(|(planned, _)| u64::from(planned.ino) <= first + per_group)
        {
            let at = ((u64::from(planned.ino) - 1 - first) * INODE_SIZE) as usize;
            table[at..at + INODE_SIZE as usize]
                .copy_from_slice(&inode_of(planned, placed).encode(planned.ino, seed));
            directories += u32::from(matches!(planned.content, Content::Directory { .. }));
        }
        out.write_at(tables.inode_table, &table)?;

        let mut inode_bitmap = vec![0u8; BLOCK_SIZE as usize];
        set_bits(&mut inode_bitmap, 0, used, true);
        set_bits(&mut inode_bitmap, per_group, BLOCKS_PER_GROUP, true);
        out.write_at(tables.inode_bitmap, &inode_bitmap)?;

        let mut block_bitmap = vec![0u8; BLOCK_SIZE as usize];
        allocator.mark_used(group, &mut block_bitmap);
        out.write_at(tables.block_bitmap, &block_bitmap)?;
        let set: u64 = block_bitmap
            .iter()
            .map(|byte| u64::from(byte.count_ones()))
            .sum();

        descriptors.push(Descriptor {
            block_bitmap: tables.block_bitmap,
            inode_bitmap: tables.inode_bitmap,
            inode_table: tables.inode_table,
            // The bitmap's padding bits past a short group are set too.
            free_blocks: (BLOCKS_PER_GROUP - set) as u32,
            free_inodes: (per_group - used) as u32,
            directories,
            unused_inodes: (per_group - used) as u32,
            block_bitmap_checksum: group::block_bitmap_checksum(seed, &block_bitmap),
            inode_bitmap_checksum: group::inode_bitmap_checksum(seed, &inode_bitmap, per_group),
        });
    }
    Ok(descriptors)
}

/// The inode record of a placed inode.
fn inode_of(planned: &Planned, placed: &Placed) -> Inode {
    let root = placed.tree.as_ref().map_or([0; 60], |tree| tree.root);
    let (size, flags, block) = match &planned.content {
        Content::Directory { .. } => {
            let blocks: u64 = placed
                .extents
                .iter()
                .map(|extent| u64::from(extent.len))
                .sum();
            let indexed = placed
                .directory
                .as_ref()
                .is_some_and(directory::Layout::indexed);
            let flags = if indexed {
                EXTENTS_FL | INDEX_FL
            } else {
                EXTENTS_FL
            };
            (blocks * BLOCK_SIZE, flags, root)
        }
        Content::File { blob, .. } => (blob.len(), EXTENTS_FL, root),
        Content::Symlink(target) if target.len() >= FAST_SYMLINK_MAX => {
            (target.len() as u64, EXTENTS_FL, root)
        }
        Content::Symlink(target) => {
            let mut block = [0; 60];
            block[..target.len()].copy_from_slice(target);
            (target.len() as u64, 0, block)
        }
        Content::Device(device) => (0, 0, inode::device_block(device.major, device.minor)),
        Content::Nothing => (0, 0, [0; 60]),
    };
    Inode {
        mode: planned.mode,
        uid: planned.uid,
        gid: planned.gid,
        size,
        links: planned.links,
        time: planned.time,
        blocks: placed.blocks,
        flags,
        block,
        xattr_block: placed.xattr_block.unwrap_or(0),
        xattrs: (!planned.attrs.is_empty() && placed.xattr_block.is_none())
            .then(|| xattr::inline(&planned.attrs)),
    }
}

/// Writes the superblock and descriptor table to group 0 and every group
/// that keeps a copy.
pub fn write_superblocks(
    out: &mut Output<impl Write + Seek>,
    geometry: &Geometry,
    superblock: &Superblock,
    descriptors: &[Descriptor],
    seed: u32,
) -> io::Result<()> {
    let mut table = vec![0u8; (geometry.descriptor_blocks() * BLOCK_SIZE) as usize];
    for (group, descriptor) in descriptors.iter().enumerate() {
        let at = group * DESC_SIZE as usize;
        table[at..at + DESC_SIZE as usize].copy_from_slice(&descriptor.encode(group as u32, seed));
    }
    for group in (0..geometry.groups).filter(|&group| geometry.backup_len(group) > 0) {
        let start = geometry.group_start(group);
        let mut block = vec![0u8; BLOCK_SIZE as usize];
        // Group 0's superblock follows 1024 bytes left for a boot sector;
        // copies start their block.
        let at = if group == 0 {
            SUPERBLOCK_OFFSET as usize
        } else {
            0
        };
        block[at..at + superblock::SUPERBLOCK_SIZE].copy_from_slice(&superblock.encode(group));
        out.write_at(start, &block)?;
        out.write_at(start + 1, &table)?;
    }
    Ok(())
}

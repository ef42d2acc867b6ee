//! ext4 filesystem images, written from the tree without mke2fs, a host
//! directory or root.
//!
//! The image is planned in full before a byte is written: a first pass
//! numbers inodes, lays out directories and finds each file's all-zero
//! blocks, which become holes; then blocks are handed out front to back
//! (bitmaps and inode tables first, together as `flex_bg` allows, then
//! each inode's contents in tree order) and everything is written with its
//! checksum. The UUID and directory hash seed are derived from a digest
//! of the tree and options, and every timestamp from the tree's clamped
//! mtimes or `source_date_epoch`, so equal input gives equal bytes.
//!
//! Features: `ext_attr`, `dir_index`, `filetype`, `extent`, `64bit`,
//! `flex_bg`, `sparse_super`, `large_file`, `huge_file`, `dir_nlink`,
//! `extra_isize`, `metadata_csum`. Directories of one block are linear,
//! larger ones get a one-level hash index (up to about 80,000 entries;
//! beyond that they stay linear, valid but slower to search). No journal
//! (the image is written once, whole; add one with `tune2fs -O
//! has_journal` if the mounted system wants it), no resize inode (the
//! image cannot be grown online), no inline data, no `ea_inode` (a node's
//! xattrs fit one 4 KiB block).
//!
//! Regions the writer only seeks over (free blocks, unused inode slots)
//! must read as zeros: write to a new file or an empty buffer.

mod allocator;
mod crc32c;
mod directory;
mod extent;
mod geometry;
mod group;
mod hash;
mod inode;
mod le;
mod output;
mod plan;
mod superblock;
#[cfg(test)]
mod tests;
mod xattr;

use std::io::{self, Read, Seek, Write};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::tree::Tree;
use allocator::{Allocator, Full, set_bits};
use extent::Extent;
use geometry::{BLOCK_SIZE, BLOCKS_PER_GROUP, DESC_SIZE, Geometry, INODE_SIZE};
use group::Descriptor;
use inode::{EXTENTS_FL, INDEX_FL, Inode};
use output::Output;
use plan::{Content, FAST_SYMLINK_MAX, Plan, Planned};
use superblock::{FIRST_INODE, SUPERBLOCK_OFFSET, Superblock};

/// Free space an image gets at least when its size is not given: 16 MiB.
const MIN_HEADROOM_BLOCKS: u64 = 16 * 1024 * 1024 / BLOCK_SIZE;
/// Longest volume label.
const MAX_LABEL: usize = 16;
/// What [`Ext4Error::Io`] names when writing the filesystem's own
/// structures failed.
pub const STRUCTURES: &str = "(ext4 metadata)";

/// How to write an ext4 image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// mtimes later than this are clamped to it; it is also the creation
    /// and last-check time, and `lost+found`'s mtime when the tree has none.
    pub source_date_epoch: u64,
    /// The image's size in bytes (a whole number of 4 KiB blocks is used;
    /// the image is padded to exactly this size). `None`: contents plus
    /// metadata plus free space of 10% of that, at least 16 MiB, so that a
    /// mounted image has room to write.
    pub size: Option<u64>,
    /// The volume label, at most 16 bytes.
    pub label: String,
}

/// Planning or writing an ext4 image failed.
#[derive(Debug, Error)]
pub enum Ext4Error {
    /// Reading a file's contents or writing the image failed.
    #[error(
        "writing the ext4 image failed at `{path}` (reading its contents, or writing the output: is the disk full?)"
    )]
    Io {
        /// The path being written, or [`STRUCTURES`].
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The given size cannot hold the tree.
    #[error(
        "an ext4 image of {size} bytes cannot hold this tree, which needs about {needed} bytes; give a larger size or none"
    )]
    TooSmall {
        /// The size given.
        size: u64,
        /// The size the tree needs without free space.
        needed: u64,
    },
    /// The image would be larger than this writer makes them.
    #[error(
        "an ext4 image of {bytes} bytes is over the 16 TiB this writer makes; split the tree or give a smaller size"
    )]
    TooLarge {
        /// The size.
        bytes: u64,
    },
    /// The given size has too few block groups for the inodes.
    #[error(
        "the tree needs {inodes} inodes but an image of this size holds at most {max}; give a larger size"
    )]
    TooManyInodes {
        /// Inodes needed.
        inodes: u64,
        /// Inodes possible.
        max: u64,
    },
    /// A file is larger than ext4 with 4 KiB blocks can hold.
    #[error("`{path}` is {len} bytes; ext4 files hold at most 16 TiB - 4 KiB")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its length.
        len: u64,
    },
    /// A name is longer than a directory entry holds.
    #[error(
        "`{path}`: the name is over 255 bytes, which an ext4 directory entry cannot hold; rename it"
    )]
    NameTooLong {
        /// The path.
        path: String,
    },
    /// A symlink target is longer than Linux resolves.
    #[error("symlink `{path}` has a {len}-byte target; ext4 and Linux take at most 4095 bytes")]
    SymlinkTooLong {
        /// The symlink.
        path: String,
        /// Its target's length.
        len: usize,
    },
    /// A symlink has an empty target, which Linux cannot create and e2fsck
    /// rejects.
    #[error("symlink `{path}` has an empty target, which ext4 cannot hold; remove it")]
    EmptySymlink {
        /// The symlink.
        path: String,
    },
    /// A node has more hard links than ext4 counts.
    #[error(
        "`{path}` has {links} hard links; ext4 counts at most 65000, so make some copies instead"
    )]
    TooManyLinks {
        /// The node.
        path: String,
        /// Its links.
        links: u32,
    },
    /// An xattr name is in no namespace ext4 stores.
    #[error(
        "`{path}` has xattr `{name}`, which ext4 cannot store (only user., trusted., security. and POSIX ACLs, names up to 255 bytes after the prefix); remove it"
    )]
    XattrName {
        /// The node.
        path: String,
        /// The xattr.
        name: String,
    },
    /// A POSIX ACL xattr is malformed.
    #[error(
        "`{path}`: xattr `{name}` is not a valid POSIX ACL (version 2 entries); fix or remove it"
    )]
    Acl {
        /// The node.
        path: String,
        /// The xattr.
        name: String,
    },
    /// A node's xattrs do not fit one block.
    #[error(
        "the xattrs of `{path}` take more than the one 4 KiB block ext4 gives them; shorten or remove some"
    )]
    XattrsTooLarge {
        /// The node.
        path: String,
    },
    /// An mtime is later than ext4 records.
    #[error(
        "`{path}` has mtime {time}, after 2446, the last second ext4 records; set SOURCE_DATE_EPOCH to clamp it"
    )]
    TimeTooLate {
        /// The node.
        path: String,
        /// The time.
        time: u64,
    },
    /// A file's contents were not as long as the tree said.
    #[error("reading `{path}` gave {actual} bytes, but {declared} were declared; was it changed?")]
    LengthMismatch {
        /// The file.
        path: String,
        /// Its length in the tree.
        declared: u64,
        /// The bytes read.
        actual: u64,
    },
    /// The label is too long.
    #[error("ext4 volume label `{label}` is over 16 bytes; shorten it")]
    LabelTooLong {
        /// The label.
        label: String,
    },
}

/// Where one inode's blocks went.
#[derive(Debug, Default)]
struct Placed {
    /// Its data, directory or symlink blocks.
    extents: Vec<Extent>,
    /// Its extent tree.
    tree: Option<extent::Tree>,
    /// Its xattr block.
    xattr_block: Option<u64>,
    /// Blocks it holds in all.
    blocks: u64,
    /// A directory's layout.
    directory: Option<directory::Layout>,
}

/// Where one group's bitmaps and inode table went.
#[derive(Debug, Clone, Copy)]
struct Tables {
    block_bitmap: u64,
    inode_bitmap: u64,
    inode_table: u64,
}

/// Writes `tree` as a bare ext4 image (no partition table) to `out`,
/// starting at position 0, and returns `out`. Deterministic: the same tree
/// and options give the same bytes.
pub fn write<W: Write + Seek>(tree: &Tree, out: W, options: &Options) -> Result<W, Ext4Error> {
    if options.label.len() > MAX_LABEL {
        return Err(Ext4Error::LabelTooLong {
            label: options.label.clone(),
        });
    }
    let plan = plan::plan(tree, options.source_date_epoch)?;
    let last_ino = plan
        .inodes
        .last()
        .map_or(FIRST_INODE - 1, |planned| planned.ino);
    let inodes = u64::from(last_ino.max(FIRST_INODE - 1));
    let geometry = match options.size {
        Some(size) => {
            let geometry = Geometry::new(size / BLOCK_SIZE, inodes)?;
            if geometry.metadata_blocks() + plan.data_blocks > geometry.blocks {
                return Err(too_small(size, &plan, inodes));
            }
            geometry
        }
        None => Geometry::fitting(plan.data_blocks, inodes + inodes / 10, |used| {
            (used / 10).max(MIN_HEADROOM_BLOCKS)
        })?,
    };
    let (uuid, hash_seed) = identity(&plan, options);
    let seed = superblock::checksum_seed(&uuid);

    let mut allocator = Allocator::new(&geometry);
    let full = |Full| too_small(options.size.unwrap_or(0), &plan, inodes);
    let tables = allocate_tables(&mut allocator, &geometry).map_err(full)?;
    let hash_words: [u32; 4] = std::array::from_fn(|i| {
        u32::from_le_bytes(hash_seed[4 * i..4 * i + 4].try_into().expect("4 bytes"))
    });
    let placed = plan
        .inodes
        .iter()
        .map(|planned| place(&mut allocator, planned, seed, &hash_words))
        .collect::<Result<Vec<_>, _>>()
        .map_err(full)?;

    let mut out = Output::new(out);
    for (planned, placed) in plan.inodes.iter().zip(&placed) {
        write_contents(tree, &mut out, planned, placed, seed)?;
    }
    let structures = |source| Ext4Error::Io {
        path: STRUCTURES.to_owned(),
        source,
    };
    let descriptors = write_groups(
        &mut out, &geometry, &allocator, &tables, &plan, &placed, seed,
    )
    .map_err(structures)?;
    let superblock = Superblock {
        geometry: &geometry,
        free_blocks: descriptors.iter().map(|d| u64::from(d.free_blocks)).sum(),
        free_inodes: descriptors.iter().map(|d| u64::from(d.free_inodes)).sum(),
        uuid,
        label: options.label.as_bytes(),
        hash_seed,
        time: options.source_date_epoch.min(superblock::MAX_TIME),
    };
    let len = options.size.unwrap_or(geometry.blocks * BLOCK_SIZE);
    write_superblocks(&mut out, &geometry, &superblock, &descriptors, seed).map_err(structures)?;
    out.finish(len).map_err(structures)
}

/// The error for an image of `size` bytes too small for `plan`.
fn too_small(size: u64, plan: &Plan, inodes: u64) -> Ext4Error {
    let needed = Geometry::fitting(plan.data_blocks, inodes, |_| 0)
        .map_or(u64::MAX, |geometry| geometry.blocks * BLOCK_SIZE);
    Ext4Error::TooSmall { size, needed }
}

/// The volume UUID (a well-formed version 4 UUID) and directory hash seed,
/// from the tree's digest and the options.
fn identity(plan: &Plan, options: &Options) -> ([u8; 16], [u8; 16]) {
    let mut hasher = Sha256::new();
    hasher.update(b"ossify ext4\0");
    hasher.update(plan.digest);
    hasher.update(options.source_date_epoch.to_le_bytes());
    hasher.update(options.size.unwrap_or(0).to_le_bytes());
    hasher.update(options.label.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut uuid: [u8; 16] = digest[..16].try_into().expect("16 bytes");
    uuid[6] = (uuid[6] & 0x0F) | 0x40;
    uuid[8] = (uuid[8] & 0x3F) | 0x80;
    let hash_seed = digest[16..].try_into().expect("16 bytes");
    (uuid, hash_seed)
}

/// Places every group's bitmaps, then every inode table, at the start.
fn allocate_tables(allocator: &mut Allocator, geometry: &Geometry) -> Result<Vec<Tables>, Full> {
    let groups = 0..geometry.groups;
    let block_bitmaps = groups
        .clone()
        .map(|_| allocator.contiguous(1))
        .collect::<Result<Vec<_>, _>>()?;
    let inode_bitmaps = groups
        .clone()
        .map(|_| allocator.contiguous(1))
        .collect::<Result<Vec<_>, _>>()?;
    let inode_tables = groups
        .map(|_| allocator.contiguous(geometry.inode_table_blocks()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..geometry.groups as usize)
        .map(|g| Tables {
            block_bitmap: block_bitmaps[g],
            inode_bitmap: inode_bitmaps[g],
            inode_table: inode_tables[g],
        })
        .collect())
}

/// Gives one inode its blocks: contents, then extent tree, then xattr block.
fn place(
    allocator: &mut Allocator,
    planned: &Planned,
    seed: u32,
    hash_seed: &[u32; 4],
) -> Result<Placed, Full> {
    let mut extents = Vec::new();
    let mut layout = None;
    match &planned.content {
        Content::Directory {
            entries,
            min_blocks,
        } => {
            let directory = directory::Layout::new(entries, *min_blocks, hash_seed);
            extent::map(
                &mut extents,
                0,
                &allocator.runs(directory.len(*min_blocks))?,
            );
            layout = Some(directory);
        }
        Content::File { runs, .. } => {
            for run in runs {
                extent::map(&mut extents, run.start, &allocator.runs(run.len)?);
            }
        }
        Content::Symlink(target) if target.len() >= FAST_SYMLINK_MAX => {
            extent::map(&mut extents, 0, &allocator.runs(1)?);
        }
        Content::Symlink(_) | Content::Device(_) | Content::Nothing => {}
    }
    let mut blocks: u64 = extents.iter().map(|extent| u64::from(extent.len)).sum();
    let tree = if uses_extents(planned) {
        let count = extent::tree_blocks(extents.len());
        let tree_blocks: Vec<u64> = allocator
            .runs(count)?
            .iter()
            .flat_map(|run| run.start..run.start + run.len)
            .collect();
        blocks += count;
        Some(extent::build(
            &extents,
            &tree_blocks,
            inode::checksum_seed(seed, planned.ino),
        ))
    } else {
        None
    };
    let xattr_block = if planned.xattr_block() {
        blocks += 1;
        Some(allocator.contiguous(1)?)
    } else {
        None
    };
    Ok(Placed {
        extents,
        tree,
        xattr_block,
        blocks,
        directory: layout,
    })
}

/// Whether the inode's `i_block` is an extent tree: for everything with
/// blocks of contents, and empty files.
fn uses_extents(planned: &Planned) -> bool {
    match &planned.content {
        Content::Directory { .. } | Content::File { .. } => true,
        Content::Symlink(target) => target.len() >= FAST_SYMLINK_MAX,
        Content::Device(_) | Content::Nothing => false,
    }
}

/// Writes one inode's blocks: contents, extent tree blocks, xattr block.
fn write_contents(
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
    for extent in extents {
        let from = u64::from(extent.logical) * BLOCK_SIZE;
        let to = (from + u64::from(extent.len) * BLOCK_SIZE).min(len);
        io::copy(
            &mut contents.by_ref().take(from - position),
            &mut io::sink(),
        )?;
        out.seek_to(extent.start * BLOCK_SIZE)?;
        let copied = io::copy(&mut contents.by_ref().take(to - from), out)?;
        if copied != to - from {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ended early while being copied into the image",
            ));
        }
        position = to;
    }
    Ok(())
}

/// Writes every group's inode table and bitmaps; returns the descriptors.
fn write_groups(
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
fn write_superblocks(
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

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
mod image;
mod inode;
mod le;
mod output;
mod placement;
mod plan;
mod superblock;
#[cfg(test)]
mod tests;
mod xattr;

use std::io::{self, Seek, Write};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::tree::Tree;
use allocator::{Allocator, Full};
use geometry::{BLOCK_SIZE, Geometry};
use image::{write_contents, write_groups, write_superblocks};
use output::Output;
use placement::{allocate_tables, place};
use plan::Plan;
use superblock::{FIRST_INODE, Superblock};

/// Free space an image gets at least when its size is not given: 16 MiB.
const MIN_HEADROOM_BLOCKS: u64 = 16 * 1024 * 1024 / BLOCK_SIZE;
/// Free inodes an image gets at least when its size is not given: one
/// per 16 KiB of the minimum free space, as mke2fs's default ratio.
const MIN_SPARE_INODES: u64 = MIN_HEADROOM_BLOCKS * BLOCK_SIZE / 16384;
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
    /// metadata plus free space of 10% of that, at least 16 MiB, and 10%
    /// more inodes than used, at least 1024, so that a mounted image has
    /// room to write.
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
        None => {
            let spare_inodes = (inodes / 10).max(MIN_SPARE_INODES);
            Geometry::fitting(plan.data_blocks, inodes + spare_inodes, |used| {
                (used / 10).max(MIN_HEADROOM_BLOCKS)
            })?
        }
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

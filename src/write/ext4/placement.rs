//! Placement: which blocks every group's tables and every inode's
//! contents, extent tree and xattr block take.

use super::allocator::{Allocator, Full};
use super::directory;
use super::extent::{self, Extent};
use super::geometry::Geometry;
use super::inode;
use super::plan::{Content, FAST_SYMLINK_MAX, Planned};

/// Where one inode's blocks went.
#[derive(Debug)]
pub struct Placed {
    /// Its data, directory or symlink blocks.
    pub extents: Vec<Extent>,
    /// Its extent tree.
    pub tree: Option<extent::Tree>,
    /// Its xattr block.
    pub xattr_block: Option<u64>,
    /// Blocks it holds in all.
    pub blocks: u64,
    /// A directory's layout.
    pub directory: Option<directory::Layout>,
}

/// Where one group's bitmaps and inode table went.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    /// The block bitmap's block.
    pub block_bitmap: u64,
    /// The inode bitmap's block.
    pub inode_bitmap: u64,
    /// The inode table's first block.
    pub inode_table: u64,
}

/// Places every group's bitmaps, then every inode table, at the start.
pub fn allocate_tables(
    allocator: &mut Allocator,
    geometry: &Geometry,
) -> Result<Vec<Tables>, Full> {
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
pub fn place(
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

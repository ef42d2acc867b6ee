//! Root filesystem images: the root, without `boot/`, as one bare squashfs,
//! EROFS or ext4 filesystem, for a kernel that mounts its root from a disk
//! rather than unpacking it into RAM.

use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

use super::FormatError;
use super::format::Filesystem;
use crate::tree::Tree;
use crate::write::{erofs, ext4, squashfs};

/// How root filesystem images are written, besides the tree and the date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootOptions {
    /// squashfs's compressor (gzip, as LinuxKit's mksquashfs call).
    pub squashfs_compression: squashfs::Compression,
    /// squashfs's data block size.
    pub squashfs_block_size: squashfs::BlockSize,
    /// The ext4 image's size in bytes; `None` for content plus headroom.
    pub size: Option<u64>,
}

/// Writes `tree` as `filesystem` to `out`. The writers seek back to fill
/// in their superblocks, so the image is laid out in an unlinked temporary
/// file in `scratch` first, then copied out in one pass.
pub fn write(
    tree: &Tree,
    filesystem: Filesystem,
    name: &str,
    options: &RootOptions,
    source_date_epoch: u64,
    scratch: &Path,
    out: &mut dyn Write,
) -> Result<(), FormatError> {
    let file = BufWriter::new(tempfile::tempfile_in(scratch)?);
    let written = match filesystem {
        Filesystem::Squashfs => {
            let options = squashfs::Options {
                source_date_epoch,
                compression: options.squashfs_compression,
                block_size: options.squashfs_block_size,
                ..squashfs::Options::default()
            };
            squashfs::write(tree, file, &options)?
        }
        Filesystem::Erofs => {
            let options = erofs::Options {
                source_date_epoch,
                ..erofs::Options::default()
            };
            erofs::write(tree, file, &options)?
        }
        Filesystem::Ext4 => {
            let options = ext4::Options {
                source_date_epoch,
                size: options.size,
                label: label(name),
            };
            ext4::write(tree, file, &options)?
        }
    };
    let mut file = written.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    io::copy(&mut file, out)?;
    Ok(())
}

/// The build's name as an ext4 volume label: at most 16 bytes, cut at a
/// character boundary.
fn label(name: &str) -> String {
    let mut end = name.len().min(16);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

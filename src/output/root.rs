//! Root filesystem images: the root, without `boot/`, as one bare squashfs,
//! EROFS, ext4 or ISO 9660 filesystem, for a kernel that mounts its root
//! from a disk rather than unpacking it into RAM.

use std::io::{Seek, Write};

use super::FormatError;
use super::format::Filesystem;
use crate::tree::{Kind, Tree};
use crate::write::iso9660::{self, IsoBuilder};
use crate::write::{WriteError, erofs, ext4, squashfs};

/// How root filesystem images are written, besides the tree and the date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RootOptions {
    /// squashfs's compressor (gzip, as LinuxKit's mksquashfs call).
    pub squashfs_compression: squashfs::Compression,
    /// squashfs's data block size.
    pub squashfs_block_size: squashfs::BlockSize,
    /// EROFS's compression (none, as LinuxKit's mkfs.erofs call).
    pub erofs_compression: erofs::Compression,
    /// The ext4 image's size in bytes; `None` for content plus headroom.
    pub size: Option<u64>,
}

/// Writes `tree` as `filesystem` to `out`, in place: the writers seek
/// back to fill in their superblocks.
pub fn write<W: Write + Seek>(
    tree: &Tree,
    filesystem: Filesystem,
    name: &str,
    options: &RootOptions,
    source_date_epoch: u64,
    out: W,
) -> Result<(), FormatError> {
    match filesystem {
        Filesystem::Squashfs => {
            let options = squashfs::Options {
                source_date_epoch,
                compression: options.squashfs_compression,
                block_size: options.squashfs_block_size,
                ..squashfs::Options::default()
            };
            squashfs::write(tree, out, &options)?;
        }
        Filesystem::Erofs => {
            let options = erofs::Options {
                source_date_epoch,
                compression: options.erofs_compression,
            };
            erofs::write(tree, out, &options)?;
        }
        Filesystem::Ext4 => {
            let options = ext4::Options {
                source_date_epoch,
                size: options.size,
                label: label(name),
            };
            ext4::write(tree, out, &options)?;
        }
        Filesystem::Iso9660 => {
            iso(tree, name, source_date_epoch)?.write(out)?;
        }
    }
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

/// The root as LinuxKit's `kernel+iso` has genisoimage make it: ISO 9660
/// with Rock Ridge (owners, modes, symlinks) and Joliet, not bootable.
/// Hard links become copies; device nodes, FIFOs and sockets have no place
/// in this writer and are refused.
fn iso<'t>(
    tree: &'t Tree,
    name: &str,
    source_date_epoch: u64,
) -> Result<iso9660::IsoImage<'t>, FormatError> {
    let root = tree.node(tree.root()).metadata.clone();
    let metadata = |m: &crate::tree::Metadata| iso9660::Metadata {
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
    };
    let mut builder = IsoBuilder::new(metadata(&root));
    for entry in tree.walk() {
        let path = String::from_utf8_lossy(&entry.path);
        let unsupported = |what| WriteError::Unsupported {
            path: path.clone().into_owned(),
            what,
            format: "an ISO 9660 root image",
        };
        let entry_metadata = metadata(&entry.node.metadata);
        match &entry.node.kind {
            Kind::Directory(_) => builder.dir(&path, entry_metadata)?,
            Kind::File(blob) => {
                builder.file(&path, entry_metadata, blob.len(), tree.contents(blob))?
            }
            Kind::Symlink(target) => {
                builder.symlink(&path, entry_metadata, &String::from_utf8_lossy(target))?
            }
            Kind::CharDevice(_) => return Err(unsupported("a character device").into()),
            Kind::BlockDevice(_) => return Err(unsupported("a block device").into()),
            Kind::Fifo => return Err(unsupported("a FIFO").into()),
            Kind::Socket => return Err(unsupported("a socket").into()),
        }
    }
    let options = iso9660::Options {
        volume_id: name.to_owned(),
        timestamp: source_date_epoch,
        el_torito: None,
        hybrid: None,
    };
    Ok(builder.layout(&options)?)
}

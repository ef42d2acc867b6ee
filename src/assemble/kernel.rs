//! The kernel image: LinuxKit takes three files out of it and ignores the
//! rest.
//!
//! The kernel goes to `boot/kernel` with the command line beside it in
//! `boot/cmdline`, microcode to `boot/ucode.cpio` (outputs move these out
//! of the root filesystem), and the modules tarball is unpacked into the
//! root filesystem.

use super::Failure;
use crate::config::Kernel;
use crate::tree::layer::Layer;
use crate::tree::{Compression, Kind, Metadata, Tree};

/// LinuxKit's default name of the kernel in a kernel image.
const DEFAULT_BINARY: &str = "kernel";
/// LinuxKit's default name of the modules tarball in a kernel image.
const DEFAULT_TAR: &str = "kernel.tar";

/// Places the kernel of `image` into `root` as the `kernel:` section says.
pub fn place(root: &mut Tree, image: &Tree, kernel: &Kernel, mtime: u64) -> Result<(), Failure> {
    let binary = kernel
        .binary
        .as_deref()
        .filter(|b| !b.is_empty())
        .unwrap_or(DEFAULT_BINARY);
    let Some(blob_meta) = regular_file(image, binary) else {
        return Err(Failure::Missing(format!(
            "no file `{binary}` in the kernel image; set `binary:` to the kernel's path in the image"
        )));
    };
    root.insert("boot", Kind::directory(), Metadata::new(0o755, mtime))?;
    let cmdline = kernel.cmdline.as_deref().unwrap_or_default();
    let cmdline_blob = root
        .store_bytes(cmdline.as_bytes())
        .map_err(Failure::Storage)?;
    root.insert(
        "boot/cmdline",
        Kind::File(cmdline_blob),
        Metadata::new(0o644, mtime),
    )?;
    copy_file(root, image, blob_meta, "boot/kernel")?;

    if let Some(ucode) = kernel.ucode.as_deref().filter(|u| !u.is_empty())
        && let Some(found) = regular_file(image, ucode)
    {
        copy_file(root, image, found, "boot/ucode.cpio")?;
    }

    let tar = match kernel.tar.as_deref() {
        None => Some(DEFAULT_TAR),
        Some("" | "none") => None,
        Some(name) => Some(name),
    };
    if let Some(tar) = tar {
        let Some((blob, _)) = regular_file(image, tar) else {
            return Err(Failure::Missing(format!(
                "no file `{tar}` in the kernel image; set `tar: none` if the image has no modules tarball"
            )));
        };
        let layer = Layer {
            digest: tar,
            compression: Compression::Detect,
            diff_id: None,
        };
        layer.apply(root, image.contents(&blob))?;
    }
    Ok(())
}

/// The contents and metadata of the regular file at `path`, if there is one.
fn regular_file(tree: &Tree, path: &str) -> Option<(crate::tree::Blob, Metadata)> {
    let node = tree.node(tree.lookup(path)?);
    match &node.kind {
        Kind::File(blob) => Some((*blob, node.metadata.clone())),
        _ => None,
    }
}

/// Copies a file of `from` into `to` at `path`, keeping its metadata.
fn copy_file(
    to: &mut Tree,
    from: &Tree,
    (blob, metadata): (crate::tree::Blob, Metadata),
    path: &str,
) -> Result<(), Failure> {
    let copied = to
        .store(from.contents(&blob), blob.len())
        .map_err(Failure::Storage)?;
    to.insert(path, Kind::File(copied), metadata)?;
    Ok(())
}

//! Splitting the boot files out of a built root filesystem, as LinuxKit's
//! `kernel+initrd` output does: `boot/kernel`, `boot/cmdline` and
//! `boot/ucode.cpio` become files of their own, and nothing under `boot/`
//! goes into the initrd.

use std::io::{self, Read};

use crate::tree::{Kind, Tree};

/// The boot files of a build.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub kernel: Vec<u8>,
    pub cmdline: Vec<u8>,
    /// Microcode, a cpio archive the initrd starts with.
    pub ucode: Vec<u8>,
}

/// Takes the boot files out of `tree`, leaving `boot/` empty.
pub fn split(tree: &mut Tree) -> io::Result<BootFiles> {
    let boot = BootFiles {
        kernel: read(tree, "boot/kernel")?,
        cmdline: read(tree, "boot/cmdline")?,
        ucode: read(tree, "boot/ucode.cpio")?,
    };
    let names: Vec<Vec<u8>> = match tree.lookup("boot").map(|id| &tree.node(id).kind) {
        Some(Kind::Directory(dir)) => dir.entries().map(|(name, _)| name.to_vec()).collect(),
        _ => Vec::new(),
    };
    for name in names {
        let mut path = b"boot/".to_vec();
        path.extend_from_slice(&name);
        tree.remove(path);
    }
    Ok(boot)
}

/// The contents of the regular file at `path`; empty when there is none.
fn read(tree: &Tree, path: &str) -> io::Result<Vec<u8>> {
    let mut contents = Vec::new();
    if let Some(id) = tree.lookup(path)
        && let Kind::File(blob) = &tree.node(id).kind
    {
        tree.contents(blob).read_to_end(&mut contents)?;
    }
    Ok(contents)
}

/// Runs `write` on `tree` without its (emptied) `boot/` directory, as
/// LinuxKit leaves it out of root filesystem images, then puts it back so
/// the initrd is unchanged.
pub fn without_boot_dir<T>(tree: &mut Tree, write: impl FnOnce(&Tree) -> T) -> T {
    let boot_dir = tree
        .lookup("boot")
        .map(|id| tree.node(id))
        .filter(|node| matches!(&node.kind, Kind::Directory(dir) if dir.is_empty()))
        .map(|node| node.metadata.clone());
    if boot_dir.is_some() {
        tree.remove("boot");
    }
    let written = write(tree);
    if let Some(metadata) = boot_dir {
        tree.insert("boot", Kind::directory(), metadata)
            .expect("a top-level directory just removed inserts again");
    }
    written
}

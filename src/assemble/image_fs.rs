//! LinuxKit's adjustments to an image's filesystem before it is placed in
//! the root filesystem.
//!
//! Docker leaves traces in images (`.dockerenv`, a build-time hostname and
//! resolv.conf); LinuxKit drops or replaces them and makes sure the mount
//! points its init and runc need exist. Every placed image gets the same
//! treatment, so a container sees the same files under ossify as under
//! LinuxKit.

use super::Failure;
use crate::tree::{Kind, Metadata, Tree};

/// Entries removed from every image.
const DROPPED: &[&str] = &[
    ".dockerenv",
    "Dockerfile",
    "dev/console",
    "dev/pts",
    "dev/shm",
    "etc/hostname",
];

/// What `etc/hosts` holds in every image.
pub const HOSTS: &str = "127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
";

/// What `etc/resolv.conf` holds in a container image.
pub const RESOLV_CONF: &str = "\n# no resolv.conf configured\n";

/// Where `etc/resolv.conf` points in the root filesystem, which LinuxKit's
/// DHCP client writes at boot.
pub const RESOLV_CONF_LINK: &str = "/run/resolvconf/resolv.conf";

/// Where an image goes, which decides its `etc/resolv.conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Init images and volumes: the root filesystem itself, whose
    /// resolv.conf is a symlink to the one written at boot.
    Root,
    /// A container's own filesystem, with a placeholder resolv.conf.
    Container,
}

/// Applies LinuxKit's adjustments to `tree`, dating generated entries
/// `mtime`.
pub fn adjust(tree: &mut Tree, placement: Placement, mtime: u64) -> Result<(), Failure> {
    for path in DROPPED {
        tree.remove(path);
    }
    for dir in ["dev", "dev/pts", "dev/shm", "etc", "proc", "sys"] {
        touch(tree, dir, Kind::directory, 0o755, mtime)?;
    }
    replace_file(tree, "etc/hosts", HOSTS.as_bytes(), mtime)?;
    match placement {
        Placement::Container => {
            replace_file(tree, "etc/resolv.conf", RESOLV_CONF.as_bytes(), mtime)?
        }
        Placement::Root => {
            let mode = existing_mode(tree, "etc/resolv.conf").unwrap_or(0o644);
            tree.insert(
                "etc/resolv.conf",
                Kind::Symlink(RESOLV_CONF_LINK.into()),
                Metadata::new(mode, mtime),
            )?;
        }
    }
    touch(
        tree,
        "etc/mtab",
        || Kind::Symlink(b"/proc/mounts".to_vec()),
        0o755,
        mtime,
    )
}

/// Makes sure `path` exists: an existing entry only gets `mtime`, a missing
/// one is created, owned by root.
fn touch(
    tree: &mut Tree,
    path: &str,
    kind: impl Fn() -> Kind,
    mode: u32,
    mtime: u64,
) -> Result<(), Failure> {
    match tree.lookup(path) {
        Some(id) => tree.metadata_mut(id).mtime = mtime,
        None => {
            tree.insert(path, kind(), Metadata::new(mode, mtime))?;
        }
    }
    Ok(())
}

/// Gives the file at `path` new contents, keeping its mode and owner when
/// the image has it; creates it (0644, root) when not.
fn replace_file(tree: &mut Tree, path: &str, contents: &[u8], mtime: u64) -> Result<(), Failure> {
    let mut metadata = match tree.lookup(path) {
        Some(id) => tree.node(id).metadata.clone(),
        None => Metadata::new(0o644, 0),
    };
    metadata.mtime = mtime;
    let blob = tree.store_bytes(contents).map_err(Failure::Storage)?;
    tree.insert(path, Kind::File(blob), metadata)?;
    Ok(())
}

fn existing_mode(tree: &Tree, path: &str) -> Option<u32> {
    tree.lookup(path).map(|id| tree.node(id).metadata.mode)
}

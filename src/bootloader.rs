//! Bootloader files: where the ISO and disk formats get isolinux, systemd's
//! UKI stub and GRUB's i386-pc modules.
//!
//! They come from a *boot image*, an OCI image with the distribution's boot
//! packages installed at their usual paths (`scripts/make-boot-image.sh`
//! builds one from Debian's), pinned by digest like every other input. Only
//! when no boot image is named are the host's own files used, and then
//! every file read is recorded with its sha256 so the build manifest shows
//! exactly what went in.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::tree::{Kind, Tree};
use crate::write::grub::GrubPcFiles;

/// A bootloader file, with where distributions install it and which Debian
/// package provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootFile {
    /// What the file is, for messages.
    pub name: &'static str,
    /// Paths to look at, Debian's first, then Alpine's and Fedora's.
    pub paths: &'static [&'static str],
    pub debian_package: &'static str,
}

/// isolinux's El Torito boot file.
pub const ISOLINUX: BootFile = BootFile {
    name: "isolinux.bin",
    paths: &[
        "usr/lib/ISOLINUX/isolinux.bin",
        "usr/share/syslinux/isolinux.bin",
    ],
    debian_package: "isolinux",
};

/// The isohybrid MBR code, so an ISO also boots as a disk under BIOS.
pub const ISOHYBRID_MBR: BootFile = BootFile {
    name: "isohdpfx.bin",
    paths: &[
        "usr/lib/ISOLINUX/isohdpfx.bin",
        "usr/share/syslinux/isohdpfx.bin",
    ],
    debian_package: "isolinux",
};

/// isolinux's second stage, which it loads from the ISO.
pub const LDLINUX: BootFile = BootFile {
    name: "ldlinux.c32",
    paths: &[
        "usr/lib/syslinux/modules/bios/ldlinux.c32",
        "usr/share/syslinux/ldlinux.c32",
    ],
    debian_package: "syslinux-common",
};

/// systemd's EFI stub for x86-64, the base of a UKI.
pub const EFI_STUB_X64: BootFile = BootFile {
    name: "linuxx64.efi.stub",
    paths: &["usr/lib/systemd/boot/efi/linuxx64.efi.stub"],
    debian_package: "systemd-boot-efi",
};

/// systemd's EFI stub for arm64.
pub const EFI_STUB_AA64: BootFile = BootFile {
    name: "linuxaa64.efi.stub",
    paths: &["usr/lib/systemd/boot/efi/linuxaa64.efi.stub"],
    debian_package: "systemd-boot-efi",
};

/// GRUB's i386-pc images and modules, a directory.
const GRUB_PC_DIRS: &[&str] = &["usr/lib/grub/i386-pc", "usr/share/grub/i386-pc"];

/// A bootloader file could not be found or read.
#[derive(Debug, Error)]
pub enum BootloaderError {
    #[error(
        "{name} is not in {source_name} (looked at {}); it comes from Debian's {package} package: \
         add it to the boot image (scripts/make-boot-image.sh does) or name another with --boot-image",
        paths.iter().map(|p| format!("/{p}")).collect::<Vec<_>>().join(", ")
    )]
    Missing {
        name: &'static str,
        paths: &'static [&'static str],
        package: &'static str,
        source_name: String,
    },
    #[error("no EFI stub is known for architecture {architecture}; build for amd64 or arm64")]
    NoEfiStub { architecture: String },
    #[error("cannot read /{path} from {source_name}")]
    Read {
        path: String,
        source_name: String,
        source: std::io::Error,
    },
}

/// A file taken from the host, for the build manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFile {
    pub path: String,
    pub sha256: String,
}

/// Where bootloader files are read from.
enum Source {
    /// A boot image's filesystem.
    Image { reference: String, tree: Tree },
    /// The host's own filesystem.
    Host,
}

/// Bootloader files from a boot image, or from the host.
pub struct Bootloader {
    source: Source,
    host_files: RefCell<Vec<HostFile>>,
}

impl Bootloader {
    /// Files from the boot image `reference`, whose filesystem is `tree`.
    pub fn from_image(reference: String, tree: Tree) -> Bootloader {
        Bootloader {
            source: Source::Image { reference, tree },
            host_files: RefCell::default(),
        }
    }

    /// Files from the host, recorded as they are read.
    pub fn host() -> Bootloader {
        Bootloader {
            source: Source::Host,
            host_files: RefCell::default(),
        }
    }

    /// The host files read so far, sorted by path; empty for a boot image.
    pub fn host_files(&self) -> Vec<HostFile> {
        let mut files = self.host_files.borrow().clone();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup();
        files
    }

    fn source_name(&self) -> String {
        match &self.source {
            Source::Image { reference, .. } => format!("boot image {reference}"),
            Source::Host => "this host".to_owned(),
        }
    }

    /// The contents of `file`, from the first of its paths that exists.
    pub fn read(&self, file: BootFile) -> Result<Vec<u8>, BootloaderError> {
        for path in file.paths {
            if let Some(contents) = self.read_path(path)? {
                return Ok(contents);
            }
        }
        Err(BootloaderError::Missing {
            name: file.name,
            paths: file.paths,
            package: file.debian_package,
            source_name: self.source_name(),
        })
    }

    /// GRUB's i386-pc files: every regular file of the first directory
    /// that exists.
    pub fn grub_pc(&self) -> Result<GrubPcFiles, BootloaderError> {
        for dir in GRUB_PC_DIRS {
            let names = match &self.source {
                Source::Image { tree, .. } => {
                    match tree.lookup(dir).map(|id| &tree.node(id).kind) {
                        Some(Kind::Directory(entries)) => entries
                            .entries()
                            .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
                            .collect(),
                        _ => continue,
                    }
                }
                Source::Host => match std::fs::read_dir(Path::new("/").join(dir)) {
                    Ok(entries) => entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>(),
                    Err(_) => continue,
                },
            };
            let mut files = BTreeMap::new();
            for name in names {
                if let Some(contents) = self.read_path(&format!("{dir}/{name}"))? {
                    files.insert(name, contents);
                }
            }
            return Ok(GrubPcFiles::new(files));
        }
        Err(BootloaderError::Missing {
            name: "GRUB's i386-pc directory",
            paths: GRUB_PC_DIRS,
            package: "grub-pc-bin",
            source_name: self.source_name(),
        })
    }

    /// The regular file at `path` (relative to `/`), following symlinks
    /// inside the source; `None` when there is none.
    fn read_path(&self, path: &str) -> Result<Option<Vec<u8>>, BootloaderError> {
        let read_error = |source| BootloaderError::Read {
            path: path.to_owned(),
            source_name: self.source_name(),
            source,
        };
        match &self.source {
            Source::Image { tree, .. } => {
                let Some(id) = tree.lookup_following(path) else {
                    return Ok(None);
                };
                let Kind::File(blob) = &tree.node(id).kind else {
                    return Ok(None);
                };
                let mut contents = Vec::new();
                tree.contents(blob)
                    .read_to_end(&mut contents)
                    .map_err(read_error)?;
                Ok(Some(contents))
            }
            Source::Host => {
                let host_path = Path::new("/").join(path);
                if !host_path.is_file() {
                    return Ok(None);
                }
                let contents = std::fs::read(&host_path).map_err(read_error)?;
                self.host_files.borrow_mut().push(HostFile {
                    path: host_path.display().to_string(),
                    sha256: hex::encode(Sha256::digest(&contents)),
                });
                Ok(Some(contents))
            }
        }
    }
}

//! GRUB for BIOS disks, built from GRUB's stock i386-pc files without running
//! any GRUB program.
//!
//! A BIOS disk boots through three pieces, all made here from the files of
//! Debian's grub-pc-bin package (`/usr/lib/grub/i386-pc/`):
//!
//! - the MBR boot code ([`boot_code`]): `boot.img`, which loads sector 1;
//! - the core image ([`core_image`]) in the gap between the MBR and the first
//!   partition: `diskboot.img`, `lzma_decompress.img`, and the LZMA-compressed
//!   kernel with its modules and the prefix where `grub.cfg` lives;
//! - `grub.cfg` ([`config`]) on the first partition, a FAT file system that
//!   also holds the kernel and initrd.
//!
//! The core image embeds every module the generated `grub.cfg` needs
//! ([`MODULES`]: 290 sectors with GRUB 2.12, of the 2047 before a partition
//! at 2048), so the partition holds no GRUB files besides `grub.cfg`: nothing
//! is loaded from disk but the configuration, the kernel and the initrd, and
//! GRUB talks on the serial console from its first message on.

mod boot_code;
mod config;
mod core_image;
mod moddep;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::{fs, io};

use thiserror::Error;

pub use boot_code::{BOOT_CODE_SIZE, boot_code};
pub use config::config;
pub use core_image::{CORE_IMAGE_LBA, SECTOR_SIZE, core_image};

/// The modules embedded in the core image: the disk, partition table and file
/// system to read the first partition, the serial console, and the normal
/// mode and `linux` loader that `grub.cfg` uses. Their dependencies come from
/// `moddep.lst`.
pub const MODULES: &[&str] = &[
    "biosdisk",
    "part_msdos",
    "fat",
    "serial",
    "terminfo",
    "normal",
    "linux",
];

/// Where GRUB looks for `grub.cfg`: the first MBR partition of the disk GRUB
/// was booted from (GRUB fills in the drive).
pub const PREFIX: &str = "(,msdos1)/boot/grub";
/// `grub.cfg`'s path on the first partition, under [`PREFIX`].
pub const CONFIG_PATH: &str = "boot/grub/grub.cfg";

/// Where GRUB's stock files come from, for error messages.
const PACKAGE_HINT: &str = "Debian's grub-pc-bin package, /usr/lib/grub/i386-pc/";

/// GRUB's stock i386-pc files by file name (`boot.img`, `kernel.img`,
/// `moddep.lst`, `fat.mod`, …), all from one GRUB version: the pieces of a
/// core image must match each other.
#[derive(Debug, Clone, Default)]
pub struct GrubPcFiles {
    files: BTreeMap<String, Vec<u8>>,
}

impl GrubPcFiles {
    /// The files in `files`, keyed by file name.
    pub fn new(files: BTreeMap<String, Vec<u8>>) -> GrubPcFiles {
        GrubPcFiles { files }
    }

    /// The regular files directly in `dir`, e.g. `/usr/lib/grub/i386-pc`.
    pub fn from_dir(dir: &Path) -> Result<GrubPcFiles, GrubError> {
        let read_error = |path: PathBuf| move |source| GrubError::Read { path, source };
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(read_error(dir.to_owned()))? {
            let path = entry.map_err(read_error(dir.to_owned()))?.path();
            if !path.is_file() {
                continue;
            }
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                continue;
            };
            let name = name.to_owned();
            let bytes = fs::read(&path).map_err(read_error(path))?;
            files.insert(name, bytes);
        }
        Ok(GrubPcFiles { files })
    }

    /// The file `name`, or an error that says where it comes from.
    fn get(&self, name: &str) -> Result<&[u8], GrubError> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| GrubError::Missing {
                name: name.to_owned(),
            })
    }
}

/// Building GRUB's boot pieces failed.
#[derive(Debug, Error)]
pub enum GrubError {
    /// A stock file is not among the given files.
    #[error("GRUB's i386-pc file `{name}` is missing; it comes from {PACKAGE_HINT}")]
    Missing {
        /// The file name, e.g. `fat.mod`.
        name: String,
    },
    /// A stock file does not have the layout this GRUB version should have.
    #[error(
        "GRUB's i386-pc file `{name}` is not usable: {reason}; use the unmodified files of one \
         GRUB version, from {PACKAGE_HINT}"
    )]
    Malformed {
        /// The file name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `moddep.lst` makes a module depend on itself.
    #[error("GRUB module `{module}` depends on itself in moddep.lst; use an unmodified moddep.lst")]
    DependencyCycle {
        /// A module on the cycle.
        module: String,
    },
    /// The kernel and modules exceed what GRUB's startup code can load.
    #[error(
        "GRUB's kernel and modules take {size} bytes, more than the {limit} GRUB can load \
         below its upper memory limit; embed fewer modules"
    )]
    PayloadTooLarge {
        /// The uncompressed kernel and module area.
        size: usize,
        /// The largest size GRUB accepts.
        limit: usize,
    },
    /// The core image does not fit the sectors before the first partition.
    #[error(
        "GRUB's core image needs {needed} sectors after the MBR but only {available} are free \
         before the first partition; start the first partition later"
    )]
    GapTooSmall {
        /// Sectors the core image takes.
        needed: u64,
        /// Sectors between the MBR and the first partition.
        available: u64,
    },
    /// The LZMA encoder failed.
    #[error("compressing GRUB's core image failed")]
    Compress(#[source] io::Error),
    /// Reading a directory of stock files failed.
    #[error("cannot read GRUB's i386-pc files at {path} (is grub-pc-bin installed?)")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl GrubError {
    fn malformed(name: &str, reason: impl Into<String>) -> GrubError {
        GrubError::Malformed {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

//! What every bootable format puts on its medium: the kernel, the initrd
//! (microcode first), the command line, and the bootloader files, plus the
//! seed every volume id, disk signature and GUID is derived from.

use std::io;

use sha2::{Digest, Sha256};

use crate::bootloader::{self, BootFile, Bootloader, BootloaderError};
use crate::write::contents::Contents;

/// Where the kernel, initrd and command line go on media that carry them
/// loose (BIOS ISOs and raw disks), so that a
/// loader other than ours finds them too.
pub const KERNEL_PATH: &str = "boot/kernel";
pub const INITRD_PATH: &str = "boot/initrd.img";
pub const CMDLINE_PATH: &str = "boot/cmdline";

/// A built system, ready to be put on bootable media.
pub struct Bootable<'a> {
    /// The build's name: volume labels and the UKI's os-release.
    pub name: &'a str,
    pub kernel: &'a [u8],
    /// The initrd, read from its file each time a medium is written.
    pub initrd: Contents<'a>,
    pub cmdline: &'a str,
    pub source_date_epoch: u64,
    /// The architecture, as OCI names it (`amd64`, `arm64`).
    pub architecture: &'a str,
    pub bootloader: &'a Bootloader,
    /// The os-release a UKI carries, which boot menus show.
    pub os_release: Vec<u8>,
    /// A digest of the kernel, initrd, command line, name and date, so the
    /// ids of two builds differ when what they boot differs.
    seed: [u8; 32],
}

impl<'a> Bootable<'a> {
    /// Fails only when the initrd cannot be read.
    pub fn new(
        name: &'a str,
        kernel: &'a [u8],
        initrd: Contents<'a>,
        cmdline: &'a str,
        source_date_epoch: u64,
        architecture: &'a str,
        bootloader: &'a Bootloader,
    ) -> io::Result<Bootable<'a>> {
        let mut hasher = Sha256::new();
        let parts: [Contents<'_>; 4] = [
            name.as_bytes().into(),
            kernel.into(),
            initrd,
            cmdline.as_bytes().into(),
        ];
        for part in parts {
            hasher.update(part.len().to_le_bytes());
            part.for_each_piece(|piece| hasher.update(piece))?;
        }
        hasher.update(source_date_epoch.to_le_bytes());
        Ok(Bootable {
            name,
            kernel,
            initrd,
            cmdline,
            source_date_epoch,
            architecture,
            bootloader,
            os_release: format!(
                "ID=ossify\nNAME=\"{name}\"\nPRETTY_NAME=\"{name} (built by ossify)\"\n",
                name = name.replace(['"', '\\', '\n'], "_")
            )
            .into_bytes(),
            seed: hasher.finalize().into(),
        })
    }

    /// A value for `purpose` (a volume id, a disk GUID, …) derived from
    /// the system's content: the same build gives the same ids.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.seed)
            .chain_update(purpose.as_bytes())
            .finalize()
            .into()
    }

    /// A 32-bit id (FAT volume id, MBR disk signature) for `purpose`.
    pub fn derive_u32(&self, purpose: &str) -> u32 {
        let bytes = self.derive(purpose);
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    /// systemd's EFI stub for this architecture, and where firmware looks
    /// for a loader on removable media.
    pub fn efi_target(&self) -> Result<(BootFile, &'static str), BootloaderError> {
        efi_target(self.architecture).ok_or_else(|| BootloaderError::NoEfiStub {
            architecture: self.architecture.to_owned(),
        })
    }
}

/// systemd's EFI stub for `architecture`, and where firmware looks for a
/// loader on removable media; `None` for architectures without one here.
pub fn efi_target(architecture: &str) -> Option<(BootFile, &'static str)> {
    match architecture {
        "amd64" => Some((bootloader::EFI_STUB_X64, "EFI/BOOT/BOOTX64.EFI")),
        "arm64" => Some((bootloader::EFI_STUB_AA64, "EFI/BOOT/BOOTAA64.EFI")),
        _ => None,
    }
}

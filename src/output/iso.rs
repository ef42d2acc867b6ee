//! Bootable ISO images: isolinux for BIOS, an EFI system partition image
//! for UEFI, or both, each also bootable as a USB disk.
//!
//! Unlike LinuxKit, whose ISOs mount the ISO filesystem itself as the root
//! (`root=/dev/sr0`, which needs CD and ISO 9660 drivers built into the
//! kernel), these boot the kernel and initrd from the medium, so any kernel
//! works.

use std::io::{Seek, Write};
use std::path::Path;

use super::FormatError;
use super::bootable::{Bootable, CMDLINE_PATH, INITRD_PATH, KERNEL_PATH};
use super::efi;
use crate::bootloader;
use crate::write::contents::Contents;
use crate::write::iso9660::{ElTorito, Hybrid, IsoBuilder, Metadata, Options};

const CATALOG_PATH: &str = "boot/boot.cat";
const EFI_IMAGE_PATH: &str = "boot/efi.img";
const ISOLINUX_BIN: &str = "isolinux/isolinux.bin";

const DIRECTORY: Metadata = Metadata {
    mode: 0o755,
    uid: 0,
    gid: 0,
};
const FILE: Metadata = Metadata {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

/// Which firmware an ISO boots under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firmware {
    pub bios: bool,
    pub efi: bool,
}

/// isolinux's configuration: straight to the kernel, on the serial console
/// and the screen alike. Line breaks in the command line become spaces, so
/// it cannot add lines of its own.
fn isolinux_cfg(cmdline: &str) -> String {
    let cmdline = cmdline.replace(['\n', '\r'], " ");
    format!(
        "SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\n\
         LABEL linux\n  KERNEL /{KERNEL_PATH}\n  APPEND initrd=/{INITRD_PATH} {cmdline}\n"
    )
}

/// Writes `system` as an ISO image booting under `firmware` to `out`. The
/// EFI system partition image is staged in a temporary file in `scratch`.
pub fn write(
    system: &Bootable<'_>,
    firmware: Firmware,
    scratch: &Path,
    out: &mut dyn Write,
) -> Result<(), FormatError> {
    let isolinux;
    let ldlinux;
    let config;
    let mut iso = IsoBuilder::new(DIRECTORY);
    iso.dir("boot", DIRECTORY)?;
    let mut hybrid = Hybrid {
        mbr_code: None,
        // Each kind of ISO gets GUIDs of its own, as distinct disks must.
        seed: system
            .derive(&format!("iso bios={} efi={}", firmware.bios, firmware.efi))
            .to_vec(),
    };
    if firmware.bios {
        isolinux = system.bootloader.read(bootloader::ISOLINUX)?;
        ldlinux = system.bootloader.read(bootloader::LDLINUX)?;
        hybrid.mbr_code = Some(system.bootloader.read(bootloader::ISOHYBRID_MBR)?);
        config = isolinux_cfg(system.cmdline);
        iso.dir("isolinux", DIRECTORY)?;
        let files: [(&str, Contents<'_>); 6] = [
            (ISOLINUX_BIN, isolinux[..].into()),
            ("isolinux/ldlinux.c32", ldlinux[..].into()),
            ("isolinux/isolinux.cfg", config.as_bytes().into()),
            (KERNEL_PATH, system.kernel.into()),
            (INITRD_PATH, system.initrd),
            (CMDLINE_PATH, system.cmdline.as_bytes().into()),
        ];
        for (path, contents) in files {
            iso.file(path, FILE, contents.len(), contents.reader())?;
        }
    }
    if firmware.efi {
        let esp = efi::esp(system, false, 0)?;
        let size = esp.size();
        let mut staged = tempfile::tempfile_in(scratch)?;
        esp.write(&mut staged)?;
        staged.rewind()?;
        iso.file(EFI_IMAGE_PATH, FILE, size, staged)?;
    }
    let options = Options {
        volume_id: system.name.to_owned(),
        timestamp: system.source_date_epoch,
        el_torito: Some(ElTorito {
            catalog: CATALOG_PATH.to_owned(),
            bios: firmware.bios.then(|| ISOLINUX_BIN.to_owned()),
            efi: firmware.efi.then(|| EFI_IMAGE_PATH.to_owned()),
        }),
        hybrid: Some(hybrid),
    };
    iso.layout(&options)?.write(out)?;
    Ok(())
}

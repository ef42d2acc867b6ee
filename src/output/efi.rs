//! EFI boot: a Unified Kernel Image (systemd's stub with the kernel, initrd,
//! command line and os-release as PE sections), and the FAT EFI system
//! partition that holds it where firmware looks on removable media.

use super::FormatError;
use super::bootable::{Bootable, CMDLINE_PATH, INITRD_PATH, KERNEL_PATH};
use crate::write::contents::Contents;
use crate::write::fat::{FatBuilder, FatImage, FatOptions};
use crate::write::uki::{Uki, UkiContents};

/// The label of every EFI system partition ossify writes.
const ESP_LABEL: &str = "EFI";

/// The UKI of `system`, built on the boot image's stub.
pub fn uki<'a>(system: &'a Bootable<'_>) -> Result<Uki<'a>, FormatError> {
    let (stub, _) = system.efi_target()?;
    let stub = system.bootloader.read(stub)?;
    let contents = UkiContents {
        osrel: &system.os_release,
        cmdline: system.cmdline.as_bytes(),
        uname: None,
        initrd: system.initrd,
        linux: system.kernel,
    };
    Ok(Uki::new(&stub, &contents)?)
}

/// An EFI system partition holding `system`'s UKI; with `loose_files`, the
/// kernel, initrd and command line too, for loaders other than firmware.
/// `hidden_sectors` is the partition's first sector on its disk.
pub fn esp<'a>(
    system: &'a Bootable<'_>,
    loose_files: bool,
    hidden_sectors: u32,
) -> Result<FatImage<'a>, FormatError> {
    let uki = uki(system)?;
    let (_, uki_path) = system.efi_target()?;
    let mut fat = FatBuilder::new(FatOptions {
        label: Some(ESP_LABEL.to_owned()),
        volume_id: system.derive_u32("esp volume id"),
        timestamp: system.source_date_epoch,
        hidden_sectors,
        min_size: None,
    });
    fat.add_file(uki_path, uki.size(), uki.into_reader())?;
    if loose_files {
        add_loose_files(&mut fat, system)?;
    }
    Ok(fat.plan()?)
}

/// The kernel, initrd and command line at `boot/`, for loaders other than
/// firmware (GRUB, isolinux, a rescue shell).
pub fn add_loose_files<'a>(
    fat: &mut FatBuilder<'a>,
    system: &'a Bootable<'_>,
) -> Result<(), FormatError> {
    let files: [(&str, Contents<'a>); 3] = [
        (KERNEL_PATH, system.kernel.into()),
        (INITRD_PATH, system.initrd),
        (CMDLINE_PATH, system.cmdline.as_bytes().into()),
    ];
    for (path, contents) in files {
        fat.add_file(path, contents.len(), contents.reader())?;
    }
    Ok(())
}

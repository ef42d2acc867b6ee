//! Bootable disk images: `raw-efi` (GPT, one EFI system partition holding
//! the UKI) and `raw-bios` (MBR, GRUB's boot code and a core image that
//! ossify assembles itself, one FAT partition), and the virtual-disk
//! containers wrapped around them, including the cloud formats: `aws` (the
//! BIOS disk, raw, 1 GiB by default) and `gcp` (the same in a gzip'd tar
//! as `disk.raw`, the shape Compute Engine imports).
//!
//! Each raw disk is laid out once, by offset, in a sparse temporary file,
//! so memory stays flat however large `--size` makes it; every format of
//! the build that needs it is then made from that file.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::FormatError;
use super::bootable::{Bootable, INITRD_PATH, KERNEL_PATH};
use super::efi;
use crate::write::fat::{FatBuilder, FatImage, FatOptions};
use crate::write::grub;
use crate::write::partition::SECTOR;
use crate::write::partition::gpt::{self, Gpt, GptPartition, Guid};
use crate::write::partition::mbr::{Mbr, MbrPartition};
use crate::write::raw_image::RawImage;
use crate::write::{qcow2, vhd, vmdk};

/// Where the one partition starts: 1 MiB, leaving GRUB's core image the
/// sectors before it.
const PARTITION_START: u64 = gpt::ALIGNMENT_SECTORS;
/// What a GPT needs at the disk's end: backup entries and header.
const GPT_BACKUP_SECTORS: u64 = 33;
const MIB: u64 = 1 << 20;
/// The label of the BIOS disk's FAT partition.
const BIOS_LABEL: &str = "OSSIFY";

/// How a raw disk boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Efi,
}

/// The disk is smaller than what it must hold.
#[derive(Debug, thiserror::Error)]
#[error(
    "--size {given} bytes is too small: the disk needs at least {needed} bytes ({needed_mib} MiB); \
     give a larger --size or leave it out"
)]
pub struct TooSmall {
    pub given: u64,
    pub needed: u64,
    pub needed_mib: u64,
}

/// How large a format's disk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// `--size`, else the content plus headroom.
    Fit,
    /// `--size`, else LinuxKit's 1 GiB, rounded up to a multiple of
    /// `multiple` bytes.
    Cloud { multiple: u64 },
}

/// LinuxKit's default `-size`, which its cloud formats use.
const CLOUD_SIZE: u64 = 1 << 30;

impl Sizing {
    /// The disk size in bytes for `--size` `given`; `None` to fit the content.
    fn size(self, given: Option<u64>) -> Option<u64> {
        match self {
            Sizing::Fit => given,
            Sizing::Cloud { multiple } => {
                Some(given.unwrap_or(CLOUD_SIZE).next_multiple_of(multiple))
            }
        }
    }
}

/// The raw disks of one build, each laid out at most once.
pub struct Disks<'a> {
    system: &'a Bootable<'a>,
    size: Option<u64>,
    scratch: &'a Path,
    /// The disks laid out so far, by firmware and size.
    laid_out: Vec<((Firmware, Option<u64>), File)>,
}

impl<'a> Disks<'a> {
    /// Disks of `system`, `size` bytes each when given, staged in `scratch`.
    pub fn new(system: &'a Bootable<'a>, size: Option<u64>, scratch: &'a Path) -> Disks<'a> {
        Disks {
            system,
            size,
            scratch,
            laid_out: Vec::new(),
        }
    }

    /// The raw disk booting under `firmware` and sized by `sizing`, laid
    /// out on first use.
    pub fn raw(&mut self, firmware: Firmware, sizing: Sizing) -> Result<&File, FormatError> {
        let key = (firmware, sizing.size(self.size));
        let index = match self.laid_out.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                let file = match firmware {
                    Firmware::Bios => bios_disk(self.system, key.1, self.scratch)?,
                    Firmware::Efi => efi_disk(self.system, key.1, self.scratch)?,
                };
                self.laid_out.push((key, file));
                self.laid_out.len() - 1
            }
        };
        Ok(&self.laid_out[index].1)
    }
}

/// Which container a disk format is, around which raw disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Raw,
    Qcow2,
    FixedVhd,
    DynamicVhd,
    Vmdk,
    /// A gzip'd tar holding the raw disk as `disk.raw`, as Compute Engine
    /// imports it.
    GceTarball,
}

/// The name Compute Engine requires of the disk in an imported tarball.
const GCE_DISK_NAME: &str = "disk.raw";

/// Writes the raw disk for `firmware`, sized by `sizing`, to `out` as
/// `container`.
pub fn write(
    disks: &mut Disks<'_>,
    firmware: Firmware,
    container: Container,
    sizing: Sizing,
    out: &mut dyn Write,
) -> Result<(), FormatError> {
    let system = disks.system;
    let raw = disks.raw(firmware, sizing)?;
    let identity = vhd::VhdIdentity {
        unique_id: system.derive("vhd unique id")[..16]
            .try_into()
            .expect("16 of 32 bytes"),
        timestamp: system.source_date_epoch,
    };
    match container {
        Container::Raw => RawImage::new(raw)?.copy_to(out, "raw")?,
        Container::Qcow2 => drop(qcow2::write(raw, out)?),
        Container::FixedVhd => drop(vhd::write_fixed(raw, out, &identity)?),
        Container::DynamicVhd => drop(vhd::write_dynamic(raw, out, &identity)?),
        Container::Vmdk => drop(vmdk::write(raw, out, system.derive_u32("vmdk cid"))?),
        Container::GceTarball => gce_tarball(raw, system.source_date_epoch, out)?,
    }
    Ok(())
}

/// `raw` as the one file of a gzip'd tar, in the GNU format Compute
/// Engine's import documents (`tar --format=oldgnu -czf … disk.raw`).
fn gce_tarball(raw: &File, source_date_epoch: u64, out: &mut dyn Write) -> Result<(), FormatError> {
    let size = raw.metadata()?.len();
    let mut header = tar::Header::new_gnu();
    header.set_path(GCE_DISK_NAME)?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(source_date_epoch);
    header.set_size(size);
    header.set_cksum();
    let mut archive = tar::Builder::new(crate::write::gzip::encoder(out));
    let mut at = raw;
    at.seek(SeekFrom::Start(0))?;
    archive.append(&header, at)?;
    archive.into_inner()?.finish()?;
    Ok(())
}

/// The disk size for content ending at sector `content_end`: `size` (in
/// whole sectors) when given and large enough, else the content plus a MiB,
/// in whole MiB.
fn disk_size(size: Option<u64>, content_end: u64) -> Result<u64, TooSmall> {
    let needed = (content_end * SECTOR).div_ceil(MIB) * MIB + MIB;
    match size {
        Some(given) if given < needed => Err(TooSmall {
            given,
            needed,
            needed_mib: needed / MIB,
        }),
        Some(given) => Ok(given / SECTOR * SECTOR),
        None => Ok(needed),
    }
}

/// A sparse temporary file of `size` bytes in `scratch`.
fn sparse_file(scratch: &Path, size: u64) -> Result<File, FormatError> {
    let file = tempfile::tempfile_in(scratch)?;
    file.set_len(size)?;
    Ok(file)
}

/// Writes `fat` into `disk` at sector `start`.
fn write_partition(disk: &File, start: u64, fat: FatImage<'_>) -> Result<(), FormatError> {
    let mut at = disk;
    at.seek(SeekFrom::Start(start * SECTOR))?;
    fat.write(BufWriter::with_capacity(MIB as usize, at))?
        .flush()?;
    Ok(())
}

/// GPT, one EFI system partition with the UKI and the loose boot files.
fn efi_disk(system: &Bootable<'_>, size: Option<u64>, scratch: &Path) -> Result<File, FormatError> {
    let esp = efi::esp(system, true, PARTITION_START as u32)?;
    let esp_sectors = esp.size() / SECTOR;
    let size = disk_size(size, PARTITION_START + esp_sectors + GPT_BACKUP_SECTORS)?;
    let disk = sparse_file(scratch, size)?;
    let mut gpt = Gpt::new(size / SECTOR, Guid::derive(&system.derive("gpt"), "disk"))?;
    let start = gpt
        .add(GptPartition {
            type_guid: gpt::TYPE_EFI_SYSTEM,
            unique_guid: Guid::derive(&system.derive("gpt"), "esp"),
            name: "EFI system partition".to_owned(),
            sectors: esp_sectors,
            attributes: 0,
        })?
        .first_lba;
    debug_assert_eq!(
        start, PARTITION_START,
        "the first partition starts at 1 MiB"
    );
    gpt.write(&disk)?;
    write_partition(&disk, start, esp)?;
    Ok(disk)
}

/// MBR with GRUB's boot code, GRUB's core image before the partition, and
/// one active FAT partition with the kernel, initrd and grub.cfg.
fn bios_disk(
    system: &Bootable<'_>,
    size: Option<u64>,
    scratch: &Path,
) -> Result<File, FormatError> {
    let files = system.bootloader.grub_pc()?;
    let core = grub::core_image(
        &files,
        grub::MODULES,
        grub::PREFIX,
        None,
        PARTITION_START - grub::CORE_IMAGE_LBA,
    )?;
    let config = grub::config(KERNEL_PATH, INITRD_PATH, system.cmdline);
    let mut fat = FatBuilder::new(FatOptions {
        label: Some(BIOS_LABEL.to_owned()),
        volume_id: system.derive_u32("bios volume id"),
        timestamp: system.source_date_epoch,
        hidden_sectors: PARTITION_START as u32,
        min_size: None,
    });
    efi::add_loose_files(&mut fat, system)?;
    fat.add_file(grub::CONFIG_PATH, config.len() as u64, config.as_bytes())?;
    let fat = fat.plan()?;
    let fat_sectors = fat.size() / SECTOR;
    let size = disk_size(size, PARTITION_START + fat_sectors)?;
    let disk = sparse_file(scratch, size)?;
    let mut mbr = Mbr::new(size / SECTOR, system.derive_u32("mbr disk signature"));
    mbr.set_boot_code(&grub::boot_code(&files)?)?;
    mbr.add(MbrPartition {
        kind: fat.fat_type().mbr_partition_type(),
        active: true,
        start_lba: PARTITION_START as u32,
        sectors: u32::try_from(fat_sectors).map_err(|_| {
            std::io::Error::other("the boot partition is over 2 TiB, more than an MBR describes")
        })?,
    })?;
    mbr.write(&disk)?;
    disk.write_all_at(&core, grub::CORE_IMAGE_LBA * SECTOR)?;
    write_partition(&disk, PARTITION_START, fat)?;
    Ok(disk)
}

//! The system area of a hybrid ISO: an MBR and, for EFI, a GPT, so the same
//! image boots when written to a USB stick.
//!
//! The MBR carries isolinux's isohybrid boot code, which loads the El
//! Torito boot file from the disk sector stored at offset 0x1B0. Without EFI
//! one active partition (type 0x17, as isohybrid writes) spans the image.
//! With EFI the MBR is protective (one 0xEE partition) and a GPT holds an
//! EFI system partition over the FAT image inside the ISO 9660 volume; its
//! partition entries fill the system area up to the volume descriptors at
//! 32 KiB, and the backup GPT sits in the image's last sectors.

use sha2::{Digest, Sha256};

use crate::write::partition::SECTOR;
use crate::write::partition::gpt::{
    self, GptPartition, Guid, PlacedPartition, TYPE_EFI_SYSTEM, TableCopy, TableLayout,
};
use crate::write::partition::mbr::{self, Geometry, MbrPartition, TYPE_GPT_PROTECTIVE};

/// Disk sectors, the unit of MBR and GPT addresses.
pub(super) const DISK_SECTOR: u64 = SECTOR;
/// The system area: the volume's first 16 sectors.
pub(super) const SYSTEM_AREA: usize = 32 * 1024;
/// The geometry isohybrid assumes for CHS addresses.
const GEOMETRY: Geometry = Geometry {
    heads: 64,
    sectors_per_track: 32,
};
/// Hybrid images are padded to whole cylinders of isohybrid's geometry: 1 MiB.
pub(super) const CYLINDER: u64 = GEOMETRY.heads * GEOMETRY.sectors_per_track * DISK_SECTOR;
/// isohybrid's boot code fills the MBR up to the boot file's sector address.
pub(super) const MBR_CODE_LEN: usize = MBR_BOOT_FILE_SECTOR;

const MBR_BOOT_FILE_SECTOR: usize = 0x1B0;
const MBR_TYPE_ISOHYBRID: u8 = 0x17;

/// Partition entries from disk sector 2 up to the primary volume descriptor.
const GPT_ENTRIES: usize =
    (SYSTEM_AREA - gpt::PRIMARY_ENTRIES_LBA as usize * SECTOR as usize) / gpt::ENTRY_SIZE;
/// Sectors the backup GPT takes at the end: its entries and its header.
pub(super) const GPT_BACKUP_SECTORS: u64 = gpt::entry_sectors(GPT_ENTRIES) + 1;
/// Required by the platform (bit 0) and read-only (bit 60), as xorriso marks
/// partitions on read-only media.
const ESP_ATTRIBUTES: u64 = 1 | 1 << 60;
const ESP_NAME: &str = "EFI system partition";

/// What the system area describes.
pub(super) struct SystemArea<'a> {
    /// The whole image, in bytes (a multiple of [`CYLINDER`]).
    pub image_len: u64,
    /// isohybrid boot code and the El Torito BIOS boot file's 2048-byte
    /// sector, if the image boots BIOS.
    pub bios: Option<(&'a [u8], u32)>,
    /// The FAT image's first 512-byte sector and its length in bytes, if the
    /// image boots EFI.
    pub esp: Option<(u64, u64)>,
    /// Seed of the disk signature and GPT GUIDs.
    pub seed: &'a [u8],
}

/// A GPT as the system area and the image's end carry it.
struct HybridGpt {
    layout: TableLayout,
    disk_guid: Guid,
    entries: Vec<u8>,
}

impl SystemArea<'_> {
    /// The 32 KiB system area: MBR, then the primary GPT if any.
    pub(super) fn system_area(&self) -> Vec<u8> {
        let mut area = vec![0; SYSTEM_AREA];
        let sector = DISK_SECTOR as usize;
        area[..sector].copy_from_slice(&self.mbr());
        if let Some(gpt) = self.gpt() {
            let header = gpt
                .layout
                .header_bytes(TableCopy::Primary, gpt.disk_guid, &gpt.entries);
            let header_at = gpt::PRIMARY_HEADER_LBA as usize * sector;
            area[header_at..header_at + sector].copy_from_slice(&header);
            let entries_at = gpt::PRIMARY_ENTRIES_LBA as usize * sector;
            area[entries_at..].copy_from_slice(&gpt.entries);
        }
        area
    }

    /// The backup GPT that ends the image (entries, then header), if any.
    pub(super) fn backup_gpt(&self) -> Option<Vec<u8>> {
        let gpt = self.gpt()?;
        let header = gpt
            .layout
            .header_bytes(TableCopy::Backup, gpt.disk_guid, &gpt.entries);
        let mut out = gpt.entries;
        out.extend_from_slice(&header);
        Some(out)
    }

    /// The MBR: isohybrid's boot code and, without EFI, one active partition
    /// over the whole image, or with EFI a protective one.
    fn mbr(&self) -> [u8; DISK_SECTOR as usize] {
        let mut boot_code = [0; mbr::BOOT_CODE_SIZE];
        if let Some((code, boot_file_lba)) = self.bios {
            boot_code[..code.len()].copy_from_slice(code);
            let boot_file_sector = u64::from(boot_file_lba) * 4;
            boot_code[MBR_BOOT_FILE_SECTOR..].copy_from_slice(&boot_file_sector.to_le_bytes());
        }
        let sectors = self.image_len / DISK_SECTOR;
        let up_to_end = |start_lba| u32::try_from(sectors - start_lba).unwrap_or(u32::MAX);
        let partition = match self.esp {
            None => MbrPartition {
                kind: MBR_TYPE_ISOHYBRID,
                active: true,
                start_lba: 0,
                sectors: up_to_end(0),
            },
            Some(_) => MbrPartition {
                kind: TYPE_GPT_PROTECTIVE,
                active: false,
                start_lba: 1,
                sectors: up_to_end(1),
            },
        };
        mbr::sector_bytes(
            &boot_code,
            disk_signature(self.seed),
            &[partition],
            GEOMETRY,
        )
    }

    /// The GPT, if the image boots EFI: one EFI system partition over the
    /// FAT image inside the volume.
    fn gpt(&self) -> Option<HybridGpt> {
        let (first_lba, len) = self.esp?;
        let layout = TableLayout {
            disk_sectors: self.image_len / DISK_SECTOR,
            entry_count: GPT_ENTRIES,
        };
        let esp = PlacedPartition {
            partition: GptPartition {
                type_guid: TYPE_EFI_SYSTEM,
                unique_guid: Guid::derive(self.seed, "iso9660 hybrid esp"),
                name: ESP_NAME.to_owned(),
                sectors: len.div_ceil(DISK_SECTOR),
                attributes: ESP_ATTRIBUTES,
            },
            first_lba,
        };
        Some(HybridGpt {
            layout,
            disk_guid: Guid::derive(self.seed, "iso9660 hybrid disk"),
            entries: layout.entries_bytes(&[esp]),
        })
    }
}

/// The MBR's disk signature, derived from `seed`.
fn disk_signature(seed: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(b"ossify iso9660 hybrid mbr disk signature\0")
        .chain_update(seed)
        .finalize();
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_matches_xorrisos_partition_table() {
        assert_eq!(GEOMETRY.chs(0), [0, 1, 0]);
        assert_eq!(GEOMETRY.chs(6143), [0x3F, 0x20, 0x02]);
        assert_eq!(GEOMETRY.chs(1024 * 2048), [0xFE, 0xFF, 0xFF]);
    }

    #[test]
    fn bios_only_mbr_has_one_active_isohybrid_partition() {
        let code = [0xAB; MBR_CODE_LEN];
        let hybrid = SystemArea {
            image_len: 3 << 20,
            bios: Some((&code, 1058)),
            esp: None,
            seed: b"x",
        };
        let area = hybrid.system_area();
        assert_eq!(area[..MBR_CODE_LEN], code);
        assert_eq!(area[0x1B0..0x1B8], [0x88, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            area[0x1BE..0x1CE],
            [
                0x80, 0, 1, 0, 0x17, 0x3F, 0x20, 2, 0, 0, 0, 0, 0, 0x18, 0, 0
            ]
        );
        assert_eq!(area[0x1FE..0x200], [0x55, 0xAA]);
        assert!(hybrid.backup_gpt().is_none());
    }
}

//! The classic MBR: boot code, a disk signature and four primary entries.
//!
//! CHS fields are filled the way fdisk and sgdisk do today: computed for a
//! 255-head, 63-sector geometry, and saturated to cylinder 1023, head 254,
//! sector 63 (bytes FE FF FF) once an address is past what CHS can reach
//! (about 8 GiB). No firmware of interest reads them, but some tools check
//! they are plausible.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::{PartitionError, check_file_size};

/// The MBR's size: one sector.
pub const MBR_SIZE: usize = 512;
/// Bytes of boot code before the disk signature (GRUB's boot.img fills them).
pub const BOOT_CODE_SIZE: usize = 440;
const DISK_SIGNATURE_OFFSET: usize = 440;
const ENTRIES_OFFSET: usize = 446;
const ENTRY_SIZE: usize = 16;
const MAX_ENTRIES: usize = 4;
const BOOT_SIGNATURE_OFFSET: usize = 510;
const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xAA];
const ACTIVE: u8 = 0x80;

/// The geometry CHS addresses are computed in.
const HEADS: u64 = 255;
const SECTORS_PER_TRACK: u64 = 63;
const MAX_CYLINDER: u64 = 1023;
/// The CHS address written for sectors CHS cannot reach.
const CHS_SATURATED: [u8; 3] = [0xFE, 0xFF, 0xFF];

/// Partition type: FAT32 with LBA addressing (an ESP or data partition on MBR).
pub const TYPE_FAT32_LBA: u8 = 0x0C;
/// Partition type: Linux.
pub const TYPE_LINUX: u8 = 0x83;
/// Partition type: EFI System Partition.
pub const TYPE_EFI_SYSTEM: u8 = 0xEF;
/// Partition type: GPT protective, covering the whole disk.
pub const TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// One primary partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MbrPartition {
    /// The partition type byte (see the `TYPE_*` constants).
    pub kind: u8,
    /// Whether the entry carries the active ("bootable") flag.
    pub active: bool,
    /// The first sector.
    pub start_lba: u32,
    /// The length in sectors.
    pub sectors: u32,
}

/// An MBR being laid out.
#[derive(Debug, Clone)]
pub struct Mbr {
    disk_sectors: u64,
    disk_signature: u32,
    boot_code: [u8; BOOT_CODE_SIZE],
    partitions: Vec<MbrPartition>,
}

impl Mbr {
    /// An empty MBR for a disk of `disk_sectors` sectors.
    pub fn new(disk_sectors: u64, disk_signature: u32) -> Mbr {
        Mbr {
            disk_sectors,
            disk_signature,
            boot_code: [0; BOOT_CODE_SIZE],
            partitions: Vec::new(),
        }
    }

    /// Places `code` (at most 440 bytes, e.g. GRUB's boot.img) at the start
    /// of the sector; the rest of the boot code area stays zero.
    pub fn set_boot_code(&mut self, code: &[u8]) -> Result<(), PartitionError> {
        let area = self
            .boot_code
            .get_mut(..code.len())
            .ok_or(PartitionError::BootCodeTooLong(code.len()))?;
        area.copy_from_slice(code);
        Ok(())
    }

    /// Adds a primary partition, which must lie after the MBR and inside the disk.
    pub fn add(&mut self, partition: MbrPartition) -> Result<(), PartitionError> {
        if self.partitions.len() == MAX_ENTRIES {
            return Err(PartitionError::TooMany {
                table: "MBR",
                max: MAX_ENTRIES,
            });
        }
        let first = u64::from(partition.start_lba);
        let end = first + u64::from(partition.sectors);
        if first < 1 || end > self.disk_sectors {
            return Err(PartitionError::OutOfRange {
                name: format!("#{}", self.partitions.len() + 1),
                first,
                end,
                usable_first: 1,
                usable_end: self.disk_sectors,
            });
        }
        self.partitions.push(partition);
        Ok(())
    }

    /// The sector's bytes.
    pub fn to_bytes(&self) -> [u8; MBR_SIZE] {
        let mut sector = [0; MBR_SIZE];
        sector[..BOOT_CODE_SIZE].copy_from_slice(&self.boot_code);
        sector[DISK_SIGNATURE_OFFSET..DISK_SIGNATURE_OFFSET + 4]
            .copy_from_slice(&self.disk_signature.to_le_bytes());
        for (index, partition) in self.partitions.iter().enumerate() {
            let offset = ENTRIES_OFFSET + index * ENTRY_SIZE;
            sector[offset..offset + ENTRY_SIZE].copy_from_slice(&entry_bytes(partition));
        }
        sector[BOOT_SIGNATURE_OFFSET..].copy_from_slice(&BOOT_SIGNATURE);
        sector
    }

    /// Writes the MBR into sector 0 of `file`, which must already be the
    /// disk's size.
    pub fn write(&self, file: &File) -> Result<(), PartitionError> {
        check_file_size(file, self.disk_sectors)?;
        file.write_all_at(&self.to_bytes(), 0)?;
        Ok(())
    }
}

/// A 16-byte partition entry.
fn entry_bytes(partition: &MbrPartition) -> [u8; ENTRY_SIZE] {
    let first = u64::from(partition.start_lba);
    let last = (first + u64::from(partition.sectors)).saturating_sub(1);
    let mut entry = [0; ENTRY_SIZE];
    entry[0] = if partition.active { ACTIVE } else { 0 };
    entry[1..4].copy_from_slice(&chs(first));
    entry[4] = partition.kind;
    entry[5..8].copy_from_slice(&chs(last));
    entry[8..12].copy_from_slice(&partition.start_lba.to_le_bytes());
    entry[12..16].copy_from_slice(&partition.sectors.to_le_bytes());
    entry
}

/// The packed CHS address of `lba`: head; sector with the cylinder's two
/// high bits on top; the cylinder's low byte.
fn chs(lba: u64) -> [u8; 3] {
    let cylinder = lba / (HEADS * SECTORS_PER_TRACK);
    if cylinder > MAX_CYLINDER {
        return CHS_SATURATED;
    }
    let head = (lba / SECTORS_PER_TRACK) % HEADS;
    let sector = lba % SECTORS_PER_TRACK + 1;
    // Each value is bounded above (cylinder <= 1023, head < 255, sector <= 63),
    // so the narrowing casts keep every bit.
    [
        head as u8,
        (sector as u8) | (((cylinder >> 8) as u8) << 6),
        cylinder as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_follows_255_63_geometry_and_saturates() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(1), [0, 2, 0]);
        assert_eq!(chs(2048), [32, 33, 0]);
        // cylinder 1023, head 254, sector 63: the last CHS-addressable sector.
        assert_eq!(chs(1024 * 255 * 63 - 1), [254, 0xFF, 0xFF]);
        assert_eq!(chs(1024 * 255 * 63), CHS_SATURATED);
    }

    #[test]
    fn rejects_a_fifth_entry_and_long_boot_code() {
        let mut mbr = Mbr::new(100_000, 1);
        for index in 0..4 {
            let partition = MbrPartition {
                kind: TYPE_LINUX,
                active: false,
                start_lba: 2048 + index * 100,
                sectors: 100,
            };
            mbr.add(partition).unwrap();
        }
        let fifth = MbrPartition {
            kind: TYPE_LINUX,
            active: false,
            start_lba: 4096,
            sectors: 1,
        };
        assert!(matches!(
            mbr.add(fifth),
            Err(PartitionError::TooMany { max: 4, .. })
        ));
        assert!(matches!(
            mbr.set_boot_code(&[0; 441]),
            Err(PartitionError::BootCodeTooLong(441))
        ));
    }

    #[test]
    fn rejects_a_partition_past_the_disk_end() {
        let mut mbr = Mbr::new(4096, 1);
        let partition = MbrPartition {
            kind: TYPE_LINUX,
            active: false,
            start_lba: 2048,
            sectors: 2049,
        };
        assert!(matches!(
            mbr.add(partition),
            Err(PartitionError::OutOfRange { end: 4097, .. })
        ));
    }
}

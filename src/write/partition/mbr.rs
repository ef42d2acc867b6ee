//! The classic MBR: boot code, a disk signature and four primary entries.
//!
//! CHS fields are filled the way fdisk and sgdisk do today: computed for a
//! 255-head, 63-sector geometry ([`Geometry::FDISK`]), and saturated to
//! bytes FE FF FF once an address is past what CHS can reach (about 8 GiB
//! there). No firmware of interest reads them, but some tools check they are
//! plausible. Hybrid ISOs use the same packing with isohybrid's geometry.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::{PartitionError, check_file_size};

/// The MBR's size: one sector.
const MBR_SIZE: usize = 512;
/// Bytes of boot code before the disk signature (GRUB's boot.img fills them).
pub const BOOT_CODE_SIZE: usize = 440;
const DISK_SIGNATURE_OFFSET: usize = 440;
const ENTRIES_OFFSET: usize = 446;
const ENTRY_SIZE: usize = 16;
const MAX_ENTRIES: usize = 4;
const BOOT_SIGNATURE_OFFSET: usize = 510;
const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xAA];
const ACTIVE: u8 = 0x80;

const MAX_CYLINDER: u64 = 1023;
/// The CHS address written for sectors CHS cannot reach.
const CHS_SATURATED: [u8; 3] = [0xFE, 0xFF, 0xFF];

/// Partition type: GPT protective, covering the whole disk.
pub const TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// The disk geometry CHS addresses are computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Heads per cylinder.
    pub heads: u64,
    /// Sectors per track.
    pub sectors_per_track: u64,
}

impl Geometry {
    /// What fdisk and sgdisk assume today.
    pub const FDISK: Geometry = Geometry {
        heads: 255,
        sectors_per_track: 63,
    };

    /// The packed CHS address of `lba`: head; sector with the cylinder's
    /// two high bits on top; the cylinder's low byte.
    pub fn chs(self, lba: u64) -> [u8; 3] {
        let cylinder = lba / (self.heads * self.sectors_per_track);
        if cylinder > MAX_CYLINDER {
            return CHS_SATURATED;
        }
        let head = (lba / self.sectors_per_track) % self.heads;
        let sector = lba % self.sectors_per_track + 1;
        // Each value is bounded above (cylinder <= 1023, and head and sector
        // by geometries that fit CHS: heads <= 256, sectors <= 63), so the
        // narrowing casts keep every bit.
        [
            head as u8,
            (sector as u8) | (((cylinder >> 8) as u8) << 6),
            cylinder as u8,
        ]
    }
}

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

    /// Writes the MBR into sector 0 of `file`, which must already be the
    /// disk's size.
    pub fn write(&self, file: &File) -> Result<(), PartitionError> {
        check_file_size(file, self.disk_sectors)?;
        let sector = sector_bytes(
            &self.boot_code,
            self.disk_signature,
            &self.partitions,
            Geometry::FDISK,
        );
        file.write_all_at(&sector, 0)?;
        Ok(())
    }
}

/// An MBR sector from its parts, CHS fields in `geometry`. Of `partitions`,
/// the first four are written ([`Mbr::add`] allows no more); unlike
/// [`Mbr::add`], no range is checked, since an isohybrid partition starts
/// at sector 0.
pub fn sector_bytes(
    boot_code: &[u8; BOOT_CODE_SIZE],
    disk_signature: u32,
    partitions: &[MbrPartition],
    geometry: Geometry,
) -> [u8; MBR_SIZE] {
    let mut sector = [0; MBR_SIZE];
    sector[..BOOT_CODE_SIZE].copy_from_slice(boot_code);
    sector[DISK_SIGNATURE_OFFSET..DISK_SIGNATURE_OFFSET + 4]
        .copy_from_slice(&disk_signature.to_le_bytes());
    let slots = sector[ENTRIES_OFFSET..BOOT_SIGNATURE_OFFSET].chunks_exact_mut(ENTRY_SIZE);
    for (partition, slot) in partitions.iter().take(MAX_ENTRIES).zip(slots) {
        slot.copy_from_slice(&entry_bytes(partition, geometry));
    }
    sector[BOOT_SIGNATURE_OFFSET..].copy_from_slice(&BOOT_SIGNATURE);
    sector
}

/// A 16-byte partition entry.
fn entry_bytes(partition: &MbrPartition, geometry: Geometry) -> [u8; ENTRY_SIZE] {
    let first = u64::from(partition.start_lba);
    let last = (first + u64::from(partition.sectors)).saturating_sub(1);
    let mut entry = [0; ENTRY_SIZE];
    entry[0] = if partition.active { ACTIVE } else { 0 };
    entry[1..4].copy_from_slice(&geometry.chs(first));
    entry[4] = partition.kind;
    entry[5..8].copy_from_slice(&geometry.chs(last));
    entry[8..12].copy_from_slice(&partition.start_lba.to_le_bytes());
    entry[12..16].copy_from_slice(&partition.sectors.to_le_bytes());
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partition type: Linux.
    const TYPE_LINUX: u8 = 0x83;

    #[test]
    fn chs_follows_255_63_geometry_and_saturates() {
        let chs = |lba| Geometry::FDISK.chs(lba);
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

//! The GUID Partition Table (UEFI spec, chapter 5).
//!
//! Layout for a disk of N sectors: a protective MBR in sector 0, the primary
//! header in sector 1, 128 entries of 128 bytes in sectors 2..34, and their
//! mirror image at the very end (entries in N-33..N-1, backup header in
//! N-1). Partitions start on 1 MiB boundaries, as every current partitioner
//! places them, which keeps filesystems aligned on any storage.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;

use sha2::{Digest, Sha256};

use super::mbr::{Mbr, MbrPartition, TYPE_GPT_PROTECTIVE};
use super::{PartitionError, SECTOR, check_file_size};

const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION_1_0: u32 = 0x0001_0000;
const HEADER_SIZE: u32 = 92;
const ENTRY_COUNT: usize = 128;
const ENTRY_SIZE: usize = 128;
/// Sectors the entry array takes: 128 × 128 bytes.
const ENTRY_SECTORS: u64 = (ENTRY_COUNT * ENTRY_SIZE) as u64 / SECTOR;
const PRIMARY_HEADER_LBA: u64 = 1;
const PRIMARY_ENTRIES_LBA: u64 = 2;
/// Partitions are placed on 1 MiB boundaries.
pub const ALIGNMENT_SECTORS: u64 = 2048;
/// UTF-16 code units in an entry's name field.
const NAME_UNITS: usize = 36;

/// A GUID, held in the order it is written as text
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
///
/// On disk the first three groups are little-endian ([`Guid::to_disk_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid([u8; 16]);

impl Guid {
    /// A GUID from its text form's groups: `data1-data2-data3-data4`.
    const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
        let [a, b, c, d] = data1.to_be_bytes();
        let [e, f] = data2.to_be_bytes();
        let [g, h] = data3.to_be_bytes();
        let [i, j, k, l, m, n, o, p] = data4;
        Guid([a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p])
    }

    /// A GUID derived from `seed` and `label`: the first 16 bytes of
    /// sha256(seed, 0, label) with the version-4 and RFC 4122 variant bits set,
    /// so it reads like a random GUID yet is the same on every build.
    pub fn derive(seed: &[u8], label: &str) -> Guid {
        let digest = Sha256::new()
            .chain_update(seed)
            .chain_update([0])
            .chain_update(label.as_bytes())
            .finalize();
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Guid(bytes)
    }

    /// The text-order bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The on-disk (mixed-endian) bytes.
    pub fn to_disk_bytes(&self) -> [u8; 16] {
        let mut bytes = self.0;
        bytes[0..4].reverse();
        bytes[4..6].reverse();
        bytes[6..8].reverse();
        bytes
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// Partition type: EFI System Partition.
pub const TYPE_EFI_SYSTEM: Guid = Guid::from_fields(
    0xC12A_7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// Partition type: Linux filesystem data.
pub const TYPE_LINUX_FILESYSTEM: Guid = Guid::from_fields(
    0x0FC6_3DAF,
    0x8483,
    0x4772,
    [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4],
);
/// Partition type: BIOS boot partition (where GRUB puts core.img on GPT).
pub const TYPE_BIOS_BOOT: Guid = Guid::from_fields(
    0x2168_6148,
    0x6449,
    0x6E6F,
    [0x74, 0x4E, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49],
);

/// A partition to add: what it is and how large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// The partition type (see the `TYPE_*` constants).
    pub type_guid: Guid,
    /// The partition's own GUID.
    pub unique_guid: Guid,
    /// Its name, at most 36 UTF-16 code units.
    pub name: String,
    /// Its length in sectors.
    pub sectors: u64,
    /// The attribute bits (bit 0: required by the platform; bit 2: legacy
    /// BIOS bootable).
    pub attributes: u64,
}

/// A partition as placed on the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPartition {
    /// What was asked for.
    pub partition: GptPartition,
    /// The first sector, on a 1 MiB boundary.
    pub first_lba: u64,
}

impl PlacedPartition {
    /// The partition's byte offset in the disk image.
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    /// One past the partition's last sector.
    pub fn end_lba(&self) -> u64 {
        self.first_lba + self.partition.sectors
    }
}

/// A GPT being laid out for a disk of a fixed size.
#[derive(Debug, Clone)]
pub struct Gpt {
    disk_sectors: u64,
    disk_guid: Guid,
    partitions: Vec<PlacedPartition>,
}

impl Gpt {
    /// An empty table for a disk of `disk_sectors` sectors.
    pub fn new(disk_sectors: u64, disk_guid: Guid) -> Result<Gpt, PartitionError> {
        // The MBR, both headers and both entry arrays, and one aligned sector.
        if disk_sectors < ALIGNMENT_SECTORS + 2 + ENTRY_SECTORS + 1 {
            return Err(PartitionError::DiskTooSmall {
                table: "GPT",
                sectors: disk_sectors,
            });
        }
        Ok(Gpt {
            disk_sectors,
            disk_guid,
            partitions: Vec::new(),
        })
    }

    /// The first sector a partition may use: after the primary entries.
    pub fn first_usable_lba(&self) -> u64 {
        PRIMARY_ENTRIES_LBA + ENTRY_SECTORS
    }

    /// The last sector a partition may use: before the backup entries.
    pub fn last_usable_lba(&self) -> u64 {
        self.backup_entries_lba() - 1
    }

    fn backup_header_lba(&self) -> u64 {
        self.disk_sectors - 1
    }

    fn backup_entries_lba(&self) -> u64 {
        self.backup_header_lba() - ENTRY_SECTORS
    }

    /// Where the next partition would start: the first 1 MiB boundary after
    /// the last one.
    pub fn next_start_lba(&self) -> u64 {
        let after = self
            .partitions
            .last()
            .map_or(self.first_usable_lba(), PlacedPartition::end_lba);
        after.next_multiple_of(ALIGNMENT_SECTORS)
    }

    /// Sectors left from [`Gpt::next_start_lba`] to the last usable sector:
    /// the size of a partition filling the rest of the disk.
    pub fn remaining_sectors(&self) -> u64 {
        (self.last_usable_lba() + 1).saturating_sub(self.next_start_lba())
    }

    /// Places `partition` at the next 1 MiB boundary and returns where it went.
    pub fn add(&mut self, partition: GptPartition) -> Result<&PlacedPartition, PartitionError> {
        if self.partitions.len() == ENTRY_COUNT {
            return Err(PartitionError::TooMany {
                table: "GPT",
                max: ENTRY_COUNT,
            });
        }
        if partition.name.encode_utf16().count() > NAME_UNITS {
            return Err(PartitionError::NameTooLong(partition.name));
        }
        let first_lba = self.next_start_lba();
        let end = first_lba + partition.sectors;
        if partition.sectors == 0 || end > self.last_usable_lba() + 1 {
            return Err(PartitionError::OutOfRange {
                name: partition.name,
                first: first_lba,
                end,
                usable_first: self.first_usable_lba(),
                usable_end: self.last_usable_lba() + 1,
            });
        }
        self.partitions.push(PlacedPartition {
            partition,
            first_lba,
        });
        Ok(&self.partitions[self.partitions.len() - 1])
    }

    /// The partitions placed so far, in table order.
    pub fn partitions(&self) -> &[PlacedPartition] {
        &self.partitions
    }

    /// The protective MBR: one entry of type 0xEE over the whole disk
    /// (capped at 2^32-1 sectors), disk signature 0. Set boot code on it
    /// and write it after [`Gpt::write`] to boot BIOS machines from a GPT disk.
    pub fn protective_mbr(&self) -> Mbr {
        let mut mbr = Mbr::new(self.disk_sectors, 0);
        let sectors = u32::try_from(self.disk_sectors - 1).unwrap_or(u32::MAX);
        mbr.add(MbrPartition {
            kind: TYPE_GPT_PROTECTIVE,
            active: false,
            start_lba: 1,
            sectors,
        })
        .expect("one entry from sector 1 always fits a disk that holds a GPT");
        mbr
    }

    /// Writes the protective MBR, the primary header and entries, and the
    /// backup entries and header into `file`, which must already be the
    /// disk's size.
    pub fn write(&self, file: &File) -> Result<(), PartitionError> {
        check_file_size(file, self.disk_sectors)?;
        let entries = self.entries_bytes();
        let entries_crc = crc32(&entries);
        let primary = self.header_bytes(PRIMARY_HEADER_LBA, PRIMARY_ENTRIES_LBA, entries_crc);
        let backup = self.header_bytes(
            self.backup_header_lba(),
            self.backup_entries_lba(),
            entries_crc,
        );
        self.protective_mbr().write(file)?;
        file.write_all_at(&primary, PRIMARY_HEADER_LBA * SECTOR)?;
        file.write_all_at(&entries, PRIMARY_ENTRIES_LBA * SECTOR)?;
        file.write_all_at(&entries, self.backup_entries_lba() * SECTOR)?;
        file.write_all_at(&backup, self.backup_header_lba() * SECTOR)?;
        Ok(())
    }

    /// A header sector: the header at `my_lba` describing entries at `entries_lba`.
    fn header_bytes(&self, my_lba: u64, entries_lba: u64, entries_crc: u32) -> Vec<u8> {
        let alternate_lba = if my_lba == PRIMARY_HEADER_LBA {
            self.backup_header_lba()
        } else {
            PRIMARY_HEADER_LBA
        };
        let mut header = vec![0; SECTOR as usize];
        header[0..8].copy_from_slice(SIGNATURE);
        header[8..12].copy_from_slice(&REVISION_1_0.to_le_bytes());
        header[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        // 16..20: the header's CRC32, computed over the header with it zero.
        // 20..24: reserved.
        header[24..32].copy_from_slice(&my_lba.to_le_bytes());
        header[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        header[40..48].copy_from_slice(&self.first_usable_lba().to_le_bytes());
        header[48..56].copy_from_slice(&self.last_usable_lba().to_le_bytes());
        header[56..72].copy_from_slice(&self.disk_guid.to_disk_bytes());
        header[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        header[80..84].copy_from_slice(&(ENTRY_COUNT as u32).to_le_bytes());
        header[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let header_crc = crc32(&header[..HEADER_SIZE as usize]);
        header[16..20].copy_from_slice(&header_crc.to_le_bytes());
        header
    }

    /// The entry array, unused entries all zero.
    fn entries_bytes(&self) -> Vec<u8> {
        let mut entries = vec![0; ENTRY_COUNT * ENTRY_SIZE];
        for (placed, entry) in self
            .partitions
            .iter()
            .zip(entries.chunks_exact_mut(ENTRY_SIZE))
        {
            let partition = &placed.partition;
            let last_lba = placed.end_lba() - 1;
            entry[0..16].copy_from_slice(&partition.type_guid.to_disk_bytes());
            entry[16..32].copy_from_slice(&partition.unique_guid.to_disk_bytes());
            entry[32..40].copy_from_slice(&placed.first_lba.to_le_bytes());
            entry[40..48].copy_from_slice(&last_lba.to_le_bytes());
            entry[48..56].copy_from_slice(&partition.attributes.to_le_bytes());
            for (unit, name) in partition
                .name
                .encode_utf16()
                .zip(entry[56..].chunks_exact_mut(2))
            {
                name.copy_from_slice(&unit.to_le_bytes());
            }
        }
        entries
    }
}

/// The CRC-32 (IEEE) the headers carry, from the pinned deflate backend.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_guids_read_and_store_as_the_spec_writes_them() {
        assert_eq!(
            TYPE_EFI_SYSTEM.to_string(),
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
        );
        assert_eq!(
            TYPE_EFI_SYSTEM.to_disk_bytes()[..8],
            [0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11]
        );
        assert_eq!(
            TYPE_BIOS_BOOT.to_string(),
            "21686148-6449-6E6F-744E-656564454649"
        );
    }

    #[test]
    fn derived_guids_are_stable_version_4_and_differ_by_label() {
        let esp = Guid::derive(b"seed", "esp");
        assert_eq!(esp, Guid::derive(b"seed", "esp"));
        assert_ne!(esp, Guid::derive(b"seed", "root"));
        assert_ne!(esp, Guid::derive(b"seed2", "esp"));
        assert_eq!(esp.as_bytes()[6] >> 4, 4);
        assert_eq!(esp.as_bytes()[8] & 0xC0, 0x80);
    }

    #[test]
    fn partitions_are_aligned_and_bounded_by_usable_sectors() {
        let mut gpt = Gpt::new(8192, Guid::derive(b"t", "disk")).unwrap();
        assert_eq!(gpt.first_usable_lba(), 34);
        assert_eq!(gpt.last_usable_lba(), 8192 - 34);
        let partition = |name: &str, sectors| GptPartition {
            type_guid: TYPE_LINUX_FILESYSTEM,
            unique_guid: Guid::derive(b"t", name),
            name: name.into(),
            sectors,
            attributes: 0,
        };
        assert_eq!(gpt.add(partition("a", 1)).unwrap().first_lba, 2048);
        assert_eq!(gpt.next_start_lba(), 4096);
        assert_eq!(gpt.remaining_sectors(), 8192 - 34 + 1 - 4096);
        let too_big = partition("b", gpt.remaining_sectors() + 1);
        assert!(matches!(
            gpt.add(too_big),
            Err(PartitionError::OutOfRange { .. })
        ));
        let rest = partition("b", gpt.remaining_sectors());
        assert_eq!(gpt.add(rest).unwrap().end_lba(), gpt.last_usable_lba() + 1);
        let long_name = partition(&"x".repeat(37), 1);
        assert!(matches!(
            gpt.add(long_name),
            Err(PartitionError::NameTooLong(_))
        ));
    }

    #[test]
    fn a_disk_too_small_for_the_table_is_refused() {
        assert!(matches!(
            Gpt::new(2048, Guid::derive(b"t", "disk")),
            Err(PartitionError::DiskTooSmall { .. })
        ));
    }
}

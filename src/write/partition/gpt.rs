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
/// The entry count every partitioner writes, and the spec's minimum.
const ENTRY_COUNT: usize = 128;
/// The size of one partition entry.
pub const ENTRY_SIZE: usize = 128;
/// The primary header's sector.
pub const PRIMARY_HEADER_LBA: u64 = 1;
/// The primary entry array's first sector.
pub const PRIMARY_ENTRIES_LBA: u64 = 2;
/// Partitions are placed on 1 MiB boundaries.
pub const ALIGNMENT_SECTORS: u64 = 2048;
/// UTF-16 code units in an entry's name field.
const NAME_UNITS: usize = 36;

/// Sectors an entry array of `entry_count` entries takes.
pub const fn entry_sectors(entry_count: usize) -> u64 {
    ((entry_count * ENTRY_SIZE) as u64).div_ceil(SECTOR)
}

/// A GUID, held in the order it is written as text
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
///
/// On disk the first three groups are little-endian ([`Guid::to_disk_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid([u8; 16]);

impl Guid {
    /// A GUID from its text form's groups: `data1-data2-data3-data4`.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
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
    fn to_disk_bytes(self) -> [u8; 16] {
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
    /// One past the partition's last sector.
    pub fn end_lba(&self) -> u64 {
        self.first_lba + self.partition.sectors
    }
}

/// Which of a GPT's two copies a header belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableCopy {
    /// At the disk's start: header in sector 1, entries after it.
    Primary,
    /// At the disk's end: entries, then the header in the last sector.
    Backup,
}

/// Where a GPT's parts sit on a disk of `disk_sectors` sectors whose entry
/// arrays hold `entry_count` entries, and their encoding. [`Gpt`] uses the
/// usual 128 entries; a hybrid ISO uses more, to fill its system area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLayout {
    /// The disk's size in sectors.
    pub disk_sectors: u64,
    /// Entries in each entry array.
    pub entry_count: usize,
}

impl TableLayout {
    /// The first sector a partition may use: after the primary entries.
    pub fn first_usable_lba(&self) -> u64 {
        PRIMARY_ENTRIES_LBA + entry_sectors(self.entry_count)
    }

    /// The last sector a partition may use: before the backup entries.
    pub fn last_usable_lba(&self) -> u64 {
        self.backup_entries_lba() - 1
    }

    /// The backup header: the disk's last sector.
    pub fn backup_header_lba(&self) -> u64 {
        self.disk_sectors - 1
    }

    /// The backup entries: just before the backup header.
    pub fn backup_entries_lba(&self) -> u64 {
        self.backup_header_lba() - entry_sectors(self.entry_count)
    }

    /// The entry array for `partitions` (at most `entry_count`; the rest
    /// are not written), unused entries all zero.
    pub fn entries_bytes(&self, partitions: &[PlacedPartition]) -> Vec<u8> {
        let mut entries = vec![0; self.entry_count * ENTRY_SIZE];
        for (placed, entry) in partitions.iter().zip(entries.chunks_exact_mut(ENTRY_SIZE)) {
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

    /// The header sector of `copy`, describing `entries` (from
    /// [`TableLayout::entries_bytes`]) on the disk `disk_guid`.
    pub fn header_bytes(&self, copy: TableCopy, disk_guid: Guid, entries: &[u8]) -> Vec<u8> {
        let (my_lba, alternate_lba, entries_lba) = match copy {
            TableCopy::Primary => (
                PRIMARY_HEADER_LBA,
                self.backup_header_lba(),
                PRIMARY_ENTRIES_LBA,
            ),
            TableCopy::Backup => (
                self.backup_header_lba(),
                PRIMARY_HEADER_LBA,
                self.backup_entries_lba(),
            ),
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
        header[56..72].copy_from_slice(&disk_guid.to_disk_bytes());
        header[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        header[80..84].copy_from_slice(&(self.entry_count as u32).to_le_bytes());
        header[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        header[88..92].copy_from_slice(&crc32(entries).to_le_bytes());
        let header_crc = crc32(&header[..HEADER_SIZE as usize]);
        header[16..20].copy_from_slice(&header_crc.to_le_bytes());
        header
    }
}

/// A GPT being laid out for a disk of a fixed size.
#[derive(Debug, Clone)]
pub struct Gpt {
    layout: TableLayout,
    disk_guid: Guid,
    partitions: Vec<PlacedPartition>,
}

impl Gpt {
    /// An empty table for a disk of `disk_sectors` sectors.
    pub fn new(disk_sectors: u64, disk_guid: Guid) -> Result<Gpt, PartitionError> {
        // The MBR, both headers and both entry arrays, and one aligned sector.
        if disk_sectors < ALIGNMENT_SECTORS + 2 + entry_sectors(ENTRY_COUNT) + 1 {
            return Err(PartitionError::DiskTooSmall {
                table: "GPT",
                sectors: disk_sectors,
            });
        }
        Ok(Gpt {
            layout: TableLayout {
                disk_sectors,
                entry_count: ENTRY_COUNT,
            },
            disk_guid,
            partitions: Vec::new(),
        })
    }

    /// Where the next partition would start: the first 1 MiB boundary after
    /// the last one.
    fn next_start_lba(&self) -> u64 {
        let after = self
            .partitions
            .last()
            .map_or(self.layout.first_usable_lba(), PlacedPartition::end_lba);
        after.next_multiple_of(ALIGNMENT_SECTORS)
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
        let usable_end = self.layout.last_usable_lba() + 1;
        if partition.sectors == 0 || end > usable_end {
            return Err(PartitionError::OutOfRange {
                name: partition.name,
                first: first_lba,
                end,
                usable_first: self.layout.first_usable_lba(),
                usable_end,
            });
        }
        self.partitions.push(PlacedPartition {
            partition,
            first_lba,
        });
        Ok(&self.partitions[self.partitions.len() - 1])
    }

    /// The protective MBR: one entry of type 0xEE over the whole disk
    /// (capped at 2^32-1 sectors), disk signature 0.
    fn protective_mbr(&self) -> Mbr {
        let disk_sectors = self.layout.disk_sectors;
        let mut mbr = Mbr::new(disk_sectors, 0);
        let sectors = u32::try_from(disk_sectors - 1).unwrap_or(u32::MAX);
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
        let layout = &self.layout;
        check_file_size(file, layout.disk_sectors)?;
        let entries = layout.entries_bytes(&self.partitions);
        let primary = layout.header_bytes(TableCopy::Primary, self.disk_guid, &entries);
        let backup = layout.header_bytes(TableCopy::Backup, self.disk_guid, &entries);
        self.protective_mbr().write(file)?;
        file.write_all_at(&primary, PRIMARY_HEADER_LBA * SECTOR)?;
        file.write_all_at(&entries, PRIMARY_ENTRIES_LBA * SECTOR)?;
        file.write_all_at(&entries, layout.backup_entries_lba() * SECTOR)?;
        file.write_all_at(&backup, layout.backup_header_lba() * SECTOR)?;
        Ok(())
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
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn type_guids_read_and_store_as_the_spec_writes_them() {
        assert_eq!(
            TYPE_EFI_SYSTEM.to_string(),
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
        );
        assert_eq!(
            TYPE_EFI_SYSTEM.to_disk_bytes(),
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
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
    fn layout_places_both_copies_around_the_usable_sectors() {
        let usual = TableLayout {
            disk_sectors: 8192,
            entry_count: 128,
        };
        assert_eq!(usual.first_usable_lba(), 34);
        assert_eq!(usual.last_usable_lba(), 8192 - 34);
        assert_eq!(usual.backup_entries_lba(), 8192 - 33);
        // A hybrid ISO's 248 entries fill sectors 2..64.
        let hybrid = TableLayout {
            disk_sectors: 8192,
            entry_count: 248,
        };
        assert_eq!(hybrid.first_usable_lba(), 64);
        assert_eq!(hybrid.backup_entries_lba(), 8192 - 63);
        let entries = hybrid.entries_bytes(&[]);
        assert_eq!(entries.len(), 62 * 512);
        let header = hybrid.header_bytes(TableCopy::Backup, Guid::derive(b"t", "disk"), &entries);
        assert_eq!(header[24..32], 8191u64.to_le_bytes());
        assert_eq!(header[32..40], 1u64.to_le_bytes());
        assert_eq!(header[72..80], (8192u64 - 63).to_le_bytes());
        assert_eq!(header[80..84], 248u32.to_le_bytes());
    }

    #[test]
    fn partitions_are_aligned_and_bounded_by_usable_sectors() {
        let mut gpt = Gpt::new(8192, Guid::derive(b"t", "disk")).unwrap();
        let partition = |name: &str, sectors| GptPartition {
            type_guid: TYPE_EFI_SYSTEM,
            unique_guid: Guid::derive(b"t", name),
            name: name.into(),
            sectors,
            attributes: 0,
        };
        assert_eq!(gpt.add(partition("a", 1)).unwrap().first_lba, 2048);
        assert_eq!(gpt.next_start_lba(), 4096);
        let remaining = 8192 - 34 + 1 - 4096;
        let too_big = partition("b", remaining + 1);
        assert!(matches!(
            gpt.add(too_big),
            Err(PartitionError::OutOfRange { .. })
        ));
        let rest = partition("b", remaining);
        assert_eq!(gpt.add(rest).unwrap().end_lba(), 8192 - 34 + 1);
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

//! Choosing the FAT type and cluster size for a volume size.
//!
//! Microsoft's FAT specification (fatgen103) defines the type by the count of
//! data clusters alone: fewer than 4085 is FAT12, fewer than 65525 is FAT16,
//! anything else FAT32. Drivers follow that rule, not the label in the boot
//! sector, so the cluster size is picked to land the count inside the range of
//! the type we want. Cluster sizes follow the spec's default tables.

use super::FatError;

pub(super) const SECTOR: u64 = 512;
const FAT12_MAX_CLUSTERS: u64 = 4084;
const FAT16_MAX_CLUSTERS: u64 = 65524;
/// Largest cluster count a FAT32 entry (28 bits, minus reserved values) addresses.
const FAT32_MAX_CLUSTERS: u64 = 0x0FFF_FFF4;
/// Volumes up to this many sectors (4.1 MB) are FAT12, per the spec's table.
const FAT12_MAX_SECTORS: u64 = 8400;
/// Volumes up to this many sectors (256 MiB) are FAT16; larger ones FAT32, the
/// type UEFI prefers for system partitions.
const FAT16_MAX_SECTORS: u64 = 524_288;
const NUM_FATS: u64 = 2;
/// FAT12/16 keep only the boot sector in the reserved area.
const FAT1X_RESERVED_SECTORS: u64 = 1;
/// FAT32 reserves room for the boot sector, FSInfo and their backups at 6 and 7.
const FAT32_RESERVED_SECTORS: u64 = 32;
const DIR_ENTRY: u64 = 32;

/// The variant of FAT, decided by the volume's cluster count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    /// 12-bit entries, fewer than 4085 clusters.
    Fat12,
    /// 16-bit entries, 4085 to 65524 clusters.
    Fat16,
    /// 28-bit entries, 65525 clusters or more.
    Fat32,
}

impl FatType {
    /// The MBR partition type for a volume of this type: 0x01 FAT12, 0x0E FAT16
    /// (LBA), 0x0C FAT32 (LBA).
    pub fn mbr_partition_type(self) -> u8 {
        match self {
            FatType::Fat12 => 0x01,
            FatType::Fat16 => 0x0E,
            FatType::Fat32 => 0x0C,
        }
    }

    /// The boot sector's file system type label.
    pub(super) fn label(self) -> &'static [u8; 8] {
        match self {
            FatType::Fat12 => b"FAT12   ",
            FatType::Fat16 => b"FAT16   ",
            FatType::Fat32 => b"FAT32   ",
        }
    }

    /// Bits per FAT entry.
    pub(super) fn entry_bits(self) -> u64 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }

    fn cluster_range(self) -> (u64, u64) {
        match self {
            FatType::Fat12 => (1, FAT12_MAX_CLUSTERS),
            FatType::Fat16 => (FAT12_MAX_CLUSTERS + 1, FAT16_MAX_CLUSTERS),
            FatType::Fat32 => (FAT16_MAX_CLUSTERS + 1, FAT32_MAX_CLUSTERS),
        }
    }
}

/// Where everything lies on a volume, in 512-byte sectors.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub fat_type: FatType,
    pub total_sectors: u64,
    pub sectors_per_cluster: u64,
    pub reserved_sectors: u64,
    pub fat_sectors: u64,
    /// Fixed root directory entries (FAT12/16); 0 for FAT32.
    pub root_entries: u64,
    pub cluster_count: u64,
}

impl Geometry {
    /// Lays out a volume of `total_sectors`. `root_entries` is the fixed root
    /// directory size used if the volume is FAT12/16 (a multiple of 16).
    pub fn choose(total_sectors: u64, root_entries: u64) -> Result<Geometry, FatError> {
        if total_sectors > u64::from(u32::MAX) {
            return Err(FatError::TooLarge {
                bytes: total_sectors * SECTOR,
            });
        }
        let fat_type = if total_sectors <= FAT12_MAX_SECTORS {
            FatType::Fat12
        } else if total_sectors <= FAT16_MAX_SECTORS {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        let (reserved_sectors, root_entries) = match fat_type {
            FatType::Fat32 => (FAT32_RESERVED_SECTORS, 0),
            _ => (FAT1X_RESERVED_SECTORS, root_entries),
        };
        let sectors_per_cluster = default_cluster_sectors(fat_type, total_sectors);
        let mut geometry = Geometry {
            fat_type,
            total_sectors,
            sectors_per_cluster,
            reserved_sectors,
            fat_sectors: 0,
            root_entries,
            cluster_count: 0,
        };
        geometry.fit_fat();
        // FAT12 has no table in the spec: take the smallest cluster that keeps
        // the count in range.
        while fat_type == FatType::Fat12 && geometry.cluster_count > FAT12_MAX_CLUSTERS {
            geometry.sectors_per_cluster *= 2;
            geometry.fit_fat();
        }
        let (min, max) = fat_type.cluster_range();
        if !(min..=max).contains(&geometry.cluster_count) {
            return Err(FatError::NoGeometry {
                bytes: total_sectors * SECTOR,
            });
        }
        Ok(geometry)
    }

    /// Sizes the FATs for the current cluster size and counts the clusters
    /// left for data. The FAT is sized for the count it would have without the
    /// FATs, so it always covers every cluster.
    fn fit_fat(&mut self) {
        let before_fats = self
            .total_sectors
            .saturating_sub(self.reserved_sectors + self.root_dir_sectors());
        let upper_bound = before_fats / self.sectors_per_cluster;
        let fat_bytes = ((upper_bound + 2) * self.fat_type.entry_bits()).div_ceil(8);
        self.fat_sectors = fat_bytes.div_ceil(SECTOR);
        self.cluster_count =
            before_fats.saturating_sub(NUM_FATS * self.fat_sectors) / self.sectors_per_cluster;
    }

    pub fn root_dir_sectors(&self) -> u64 {
        (self.root_entries * DIR_ENTRY).div_ceil(SECTOR)
    }

    pub fn num_fats(&self) -> u64 {
        NUM_FATS
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * SECTOR
    }

    /// First sector of the data region (cluster 2).
    pub fn data_start(&self) -> u64 {
        self.reserved_sectors + NUM_FATS * self.fat_sectors + self.root_dir_sectors()
    }
}

/// The spec's default cluster size for FAT16 and FAT32 volumes; FAT12 starts
/// at one sector and grows as needed.
fn default_cluster_sectors(fat_type: FatType, total_sectors: u64) -> u64 {
    match fat_type {
        FatType::Fat12 => 1,
        FatType::Fat16 => match total_sectors {
            ..=32_680 => 2,
            32_681..=262_144 => 4,
            _ => 8,
        },
        FatType::Fat32 => match total_sectors {
            ..=532_480 => 1,
            532_481..=16_777_216 => 8,
            16_777_217..=33_554_432 => 16,
            33_554_433..=67_108_864 => 32,
            _ => 64,
        },
    }
}

//! FAT12/16/32 file systems: the boot sector and FSInfo, the FATs, the
//! root directory, and data clusters named by the file or directory whose
//! cluster chain holds them.

use std::collections::VecDeque;

use super::Pair;
use super::source::{Fields, Source};

/// The most directory entries looked at while finding a cluster's owner.
const MAX_ENTRIES: usize = 1 << 20;
const ENTRY: usize = 32;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0f;

/// Whether a boot sector is a FAT one: a sane BIOS parameter block and a
/// "FAT" file-system type where FAT12/16 or FAT32 put it.
pub(crate) fn is_fat(boot: &[u8]) -> bool {
    Geometry::parse(boot).is_some()
        && (boot.get(54..57) == Some(b"FAT") || boot.get(82..85) == Some(b"FAT"))
}

/// Where the regions of a FAT volume lie, in sectors.
struct Geometry {
    sector: u64,
    cluster_sectors: u64,
    reserved: u64,
    fats: u64,
    fat_sectors: u64,
    root_sectors: u64,
    clusters: u64,
    /// FAT32's root directory cluster; `None` for FAT12/16's fixed root.
    root_cluster: Option<u32>,
    fsinfo: u64,
    backup_boot: u64,
    /// Bits per FAT entry: 12, 16 or 32.
    bits: u64,
}

impl Geometry {
    fn parse(boot: &[u8]) -> Option<Geometry> {
        let sector = u64::from(boot.le16(11));
        let cluster_sectors = u64::from(boot.byte(13));
        let reserved = u64::from(boot.le16(14));
        let fats = u64::from(boot.byte(16));
        let root_entries = u64::from(boot.le16(17));
        let total = match boot.le16(19) {
            0 => u64::from(boot.le32(32)),
            total => u64::from(total),
        };
        let fat32 = boot.le16(22) == 0;
        let fat_sectors = if fat32 {
            u64::from(boot.le32(36))
        } else {
            u64::from(boot.le16(22))
        };
        let sane = matches!(sector, 512 | 1024 | 2048 | 4096)
            && cluster_sectors.is_power_of_two()
            && cluster_sectors <= 128
            && reserved >= 1
            && (1..=4).contains(&fats)
            && fat_sectors > 0;
        if !sane {
            return None;
        }
        let root_sectors = (root_entries * ENTRY as u64).div_ceil(sector);
        let data = reserved + fats * fat_sectors + root_sectors;
        let clusters = total.checked_sub(data)? / cluster_sectors;
        let bits = match clusters {
            0..4085 => 12,
            4085..65525 => 16,
            _ => 32,
        };
        Some(Geometry {
            sector,
            cluster_sectors,
            reserved,
            fats,
            fat_sectors,
            root_sectors,
            clusters,
            root_cluster: fat32.then(|| boot.le32(44)),
            fsinfo: if fat32 { boot.le16(48).into() } else { 0 },
            backup_boot: if fat32 { boot.le16(50).into() } else { 0 },
            bits,
        })
    }

    fn data_start(&self) -> u64 {
        (self.reserved + self.fats * self.fat_sectors + self.root_sectors) * self.sector
    }

    fn cluster_bytes(&self) -> u64 {
        self.cluster_sectors * self.sector
    }

    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_start() + u64::from(cluster).saturating_sub(2) * self.cluster_bytes()
    }
}

/// The breadcrumb of `offset` in the FAT volume of `pair`.
pub(crate) fn describe(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let source = pair.expected;
    let Some(geometry) = source.bytes(0, 512).and_then(|boot| Geometry::parse(&boot)) else {
        return Vec::new();
    };
    let g = &geometry;
    let sector = offset / g.sector;
    let fats_end = g.reserved + g.fats * g.fat_sectors;
    let crumb = match sector {
        0 => "boot sector".to_owned(),
        s if g.fsinfo != 0 && s == g.fsinfo => "FSInfo sector".to_owned(),
        s if g.backup_boot != 0 && s == g.backup_boot => "backup boot sector".to_owned(),
        s if g.backup_boot != 0 && s == g.backup_boot + 1 => "backup FSInfo sector".to_owned(),
        s if s < g.reserved => "reserved sectors".to_owned(),
        s if s < fats_end => {
            let fat = (s - g.reserved) / g.fat_sectors;
            let within = offset - (g.reserved + fat * g.fat_sectors) * g.sector;
            return vec![
                format!("FAT {}", fat + 1),
                format!("entry of cluster {}", within * 8 / g.bits),
            ];
        }
        s if s < fats_end + g.root_sectors => "root directory".to_owned(),
        _ => {
            let cluster = (offset - g.data_start()) / g.cluster_bytes() + 2;
            let mut crumbs = vec![format!("FAT cluster {cluster}")];
            if cluster >= g.clusters + 2 {
                crumbs.push("after the last cluster".to_owned());
            } else if let Some(owner) =
                Volume::load(source, geometry).and_then(|volume| volume.owner(cluster as u32))
            {
                crumbs.extend(owner);
            }
            return crumbs;
        }
    };
    vec![crumb]
}

/// A volume with its first FAT read, to follow cluster chains.
struct Volume<'a> {
    source: &'a dyn Source,
    geometry: Geometry,
    fat: Vec<u8>,
}

impl<'a> Volume<'a> {
    fn load(source: &'a dyn Source, geometry: Geometry) -> Option<Volume<'a>> {
        let fat = source.bytes(
            geometry.reserved * geometry.sector,
            geometry.fat_sectors * geometry.sector,
        )?;
        Some(Volume {
            source,
            geometry,
            fat,
        })
    }

    /// The cluster after `cluster` in its chain, if any.
    fn next(&self, cluster: u32) -> Option<u32> {
        let c = cluster as usize;
        let next = match self.geometry.bits {
            12 => {
                let pair = self.fat.le16(c + c / 2);
                u32::from(if c.is_multiple_of(2) {
                    pair & 0xfff
                } else {
                    pair >> 4
                })
            }
            16 => u32::from(self.fat.le16(c * 2)),
            _ => self.fat.le32(c * 4) & 0x0fff_ffff,
        };
        (2..self.geometry.clusters as u32 + 2)
            .contains(&next)
            .then_some(next)
    }

    /// The chain from `first`, cut at the volume's cluster count so a loop
    /// ends.
    fn chain(&self, first: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        let mut at = Some(first).filter(|&c| c >= 2);
        while let Some(cluster) = at {
            if chain.len() as u64 > self.geometry.clusters {
                break;
            }
            chain.push(cluster);
            at = self.next(cluster);
        }
        chain
    }

    /// The bytes of a directory: FAT12/16's fixed root, or a chain.
    fn directory(&self, first: Option<u32>) -> Vec<u8> {
        let g = &self.geometry;
        match first {
            None => self
                .source
                .bytes(
                    (g.reserved + g.fats * g.fat_sectors) * g.sector,
                    g.root_sectors * g.sector,
                )
                .unwrap_or_default(),
            Some(first) => self
                .chain(first)
                .iter()
                .map_while(|&c| self.source.bytes(g.cluster_offset(c), g.cluster_bytes()))
                .flatten()
                .collect(),
        }
    }

    /// The file or directory whose chain holds `cluster`, walking the tree
    /// breadth first from the root.
    fn owner(&self, cluster: u32) -> Option<Vec<String>> {
        let root = self.geometry.root_cluster;
        if root.is_some_and(|root| self.chain(root).contains(&cluster)) {
            return Some(vec!["root directory".to_owned()]);
        }
        let mut queue = VecDeque::from([(String::new(), root)]);
        let mut seen = 0;
        while let Some((path, first)) = queue.pop_front() {
            for (name, attributes, start) in entries(&self.directory(first)) {
                seen += 1;
                if seen > MAX_ENTRIES {
                    return None;
                }
                let child = if path.is_empty() {
                    name
                } else {
                    format!("{path}/{name}")
                };
                let chain = self.chain(start);
                let directory = attributes & ATTR_DIRECTORY != 0;
                if chain.contains(&cluster) {
                    return Some(if directory {
                        vec![format!("directory {child}"), "directory entries".to_owned()]
                    } else {
                        vec![format!("file {child}"), "data".to_owned()]
                    });
                }
                if directory && start >= 2 {
                    queue.push_back((child, Some(start)));
                }
            }
        }
        Some(vec!["free cluster".to_owned()])
    }
}

/// The entries of a directory, long names assembled: (name, attributes,
/// first cluster), without `.`, `..`, the volume label and deleted entries.
fn entries(directory: &[u8]) -> Vec<(String, u8, u32)> {
    let mut out = Vec::new();
    let mut long: Vec<u16> = Vec::new();
    for entry in directory.chunks_exact(ENTRY) {
        let attributes = entry[11];
        match entry[0] {
            0 => break,
            0xe5 => {
                long.clear();
                continue;
            }
            _ => {}
        }
        if attributes == ATTR_LONG_NAME {
            // Long-name pieces come last piece first: prepend each.
            let piece: Vec<u16> = [1..11, 14..26, 28..32]
                .into_iter()
                .flat_map(|range| entry[range].chunks_exact(2))
                .map(|unit| u16::from_le_bytes([unit[0], unit[1]]))
                .take_while(|&unit| unit != 0 && unit != 0xffff)
                .collect();
            long.splice(0..0, piece);
            continue;
        }
        let name = if long.is_empty() {
            short_name(entry)
        } else {
            String::from_utf16_lossy(&long)
        };
        long.clear();
        if attributes & ATTR_VOLUME != 0 || name == "." || name == ".." {
            continue;
        }
        let first = u32::from(entry.le16(20)) << 16 | u32::from(entry.le16(26));
        out.push((name, attributes, first));
    }
    out
}

/// An 8.3 name as `NAME.EXT`.
fn short_name(entry: &[u8]) -> String {
    let base = String::from_utf8_lossy(&entry[..8]).trim_end().to_owned();
    let extension = String::from_utf8_lossy(&entry[8..11]).trim_end().to_owned();
    if extension.is_empty() {
        base
    } else {
        format!("{base}.{extension}")
    }
}

//! ISO 9660 images: the system area (an isohybrid's MBR and GPT), volume
//! descriptors, path tables, the El Torito boot catalog, directory records
//! and file extents, whose contents (the EFI system partition image) are
//! described in turn.

use std::collections::{HashSet, VecDeque};

use super::source::Fields;
use super::{Pair, disk};

const SECTOR: u64 = 2048;
const SYSTEM_AREA: u64 = 16 * SECTOR;
/// The most volume descriptors read before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 64;
/// The most directory records looked at.
const MAX_RECORDS: usize = 1 << 20;
const FLAG_DIRECTORY: u8 = 0x02;

/// The breadcrumb of `offset` in the ISO image of `pair`.
pub(crate) fn describe(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let source = pair.expected;
    if offset < SYSTEM_AREA {
        let mut crumbs = vec!["system area".to_owned()];
        crumbs.extend(disk::tables(source, offset).unwrap_or_default());
        return crumbs;
    }
    let mut trees = Vec::new();
    let mut catalog = None;
    for index in 0..MAX_DESCRIPTORS {
        let at = SYSTEM_AREA + index * SECTOR;
        let Some(descriptor) = source.bytes(at, SECTOR) else {
            break;
        };
        if &descriptor[1..6] != b"CD001" {
            break;
        }
        let name = match descriptor[0] {
            0 => {
                catalog = Some(u64::from(descriptor.le32(0x47)));
                "boot record volume descriptor"
            }
            1 => {
                trees.push(("", descriptor.clone()));
                "primary volume descriptor"
            }
            2 => {
                trees.push(("Joliet ", descriptor.clone()));
                "supplementary volume descriptor"
            }
            3 => "volume partition descriptor",
            255 => "volume descriptor set terminator",
            _ => "volume descriptor",
        };
        if (at..at + SECTOR).contains(&offset) {
            return vec![name.to_owned()];
        }
        if descriptor[0] == 255 {
            break;
        }
    }
    if let Some(lba) = catalog
        && (lba * SECTOR..(lba + 1) * SECTOR).contains(&offset)
    {
        let entry = match (offset - lba * SECTOR) / 32 {
            0 => "validation entry".to_owned(),
            n => format!("entry {n}"),
        };
        return vec!["El Torito boot catalog".to_owned(), entry];
    }
    for (tree, descriptor) in &trees {
        if let Some(crumbs) = path_table(tree, descriptor, offset) {
            return crumbs;
        }
    }
    for (tree, descriptor) in &trees {
        if let Some(crumbs) = walk(pair, tree, descriptor, offset) {
            return crumbs;
        }
    }
    disk::tables(source, offset).unwrap_or_else(|| vec!["unused sectors".to_owned()])
}

/// The path table holding `offset`, if one does.
fn path_table(tree: &str, descriptor: &[u8], offset: u64) -> Option<Vec<String>> {
    let size = u64::from(descriptor.le32(132));
    let tables = [
        ("L", u64::from(descriptor.le32(140))),
        ("optional L", u64::from(descriptor.le32(144))),
        ("M", u64::from(descriptor.be32(148))),
        ("optional M", u64::from(descriptor.be32(152))),
    ];
    tables
        .into_iter()
        .find(|&(_, lba)| lba != 0 && (lba * SECTOR..lba * SECTOR + size).contains(&offset))
        .map(|(kind, _)| vec![format!("{tree}path table ({kind})")])
}

/// Finds the directory or file extent holding `offset` in the tree of
/// `descriptor`, breadth first.
fn walk(pair: &Pair<'_>, tree: &str, descriptor: &[u8], offset: u64) -> Option<Vec<String>> {
    let source = pair.expected;
    let joliet = !tree.is_empty();
    let root = Record::parse(&descriptor[156..190], joliet)?;
    let mut queue = VecDeque::from([(String::from("/"), root)]);
    let mut seen_directories = HashSet::new();
    let mut seen = 0;
    while let Some((path, directory)) = queue.pop_front() {
        if !seen_directories.insert(directory.lba) {
            continue;
        }
        let extent = directory.lba * SECTOR..directory.lba * SECTOR + directory.size;
        if extent.contains(&offset) {
            return Some(vec![format!("{tree}directory records of {path}")]);
        }
        let bytes = source.bytes(extent.start, directory.size)?;
        let mut at = 0usize;
        while at < bytes.len() {
            let len = usize::from(bytes[at]);
            if len == 0 {
                // Records do not cross sectors: the rest of this one is padding.
                at = (at / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let Some(record) = bytes
                .get(at..at + len)
                .and_then(|r| Record::parse(r, joliet))
            else {
                break;
            };
            at += len;
            seen += 1;
            if seen > MAX_RECORDS {
                return None;
            }
            if record.name.is_empty() {
                continue;
            }
            let child = format!("{path}{}", record.name);
            if record.directory {
                queue.push_back((format!("{child}/"), record));
                continue;
            }
            let data = record.lba * SECTOR..record.lba * SECTOR + record.size;
            if record.size > 0 && data.contains(&offset) {
                let mut crumbs = vec![format!("file {child}"), "data".to_owned()];
                crumbs.extend(pair.nested(data, offset));
                return Some(crumbs);
            }
        }
    }
    None
}

/// A directory record: where its extent is and what it is called.
struct Record {
    lba: u64,
    size: u64,
    directory: bool,
    /// Empty for `.` and `..`.
    name: String,
}

impl Record {
    fn parse(bytes: &[u8], joliet: bool) -> Option<Record> {
        let name_len = usize::from(*bytes.get(32)?);
        let raw = bytes.get(33..33 + name_len)?;
        let name = if raw == [0] || raw == [1] {
            String::new()
        } else if joliet {
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|unit| u16::from_be_bytes([unit[0], unit[1]]))
                .collect();
            strip_version(&String::from_utf16_lossy(&units))
        } else {
            // The system use area follows the name, padded to an even offset.
            let system_use = bytes
                .get((33 + name_len).next_multiple_of(2)..)
                .unwrap_or(&[]);
            rock_ridge_name(system_use)
                .unwrap_or_else(|| strip_version(&String::from_utf8_lossy(raw)))
        };
        Some(Record {
            lba: u64::from(bytes.le32(2)),
            size: u64::from(bytes.le32(10)),
            directory: bytes.byte(25) & FLAG_DIRECTORY != 0,
            name,
        })
    }
}

/// `NAME;1` as `NAME`, and `NAME.;1` as `NAME`.
fn strip_version(name: &str) -> String {
    let name = name.split(';').next().unwrap_or(name);
    name.strip_suffix('.').unwrap_or(name).to_owned()
}

/// The Rock Ridge `NM` name in a system use area, its pieces joined.
fn rock_ridge_name(mut area: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    while area.len() >= 4 {
        let len = usize::from(area[2]);
        if len < 4 || len > area.len() {
            break;
        }
        if &area[..2] == b"NM" && len >= 5 {
            name.extend_from_slice(&area[5..len]);
        }
        area = &area[len..];
    }
    (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
}

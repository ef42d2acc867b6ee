//! Partitioned disks: the MBR (protective or not), the GPT's headers and
//! entry arrays, and the partitions, whose contents are described in turn.

use super::Pair;
use super::source::{Fields, Source};

const SECTOR: u64 = 512;
const GPT_SIGNATURE: &[u8] = b"EFI PART";
/// The most GPT entries read: 128 is the norm, a few times that the most
/// any tool writes.
const MAX_GPT_ENTRIES: u32 = 1024;

/// The breadcrumb of `offset` in the disk of `pair`.
pub(crate) fn describe(pair: &Pair<'_>, offset: u64) -> Vec<String> {
    let source = pair.expected;
    if let Some(crumbs) = tables(source, offset) {
        return crumbs;
    }
    let Some(mbr) = source.bytes(0, SECTOR) else {
        return Vec::new();
    };
    if let Some(header) = gpt_header(source, 1) {
        for (index, entry) in gpt_entries(source, &header).iter().enumerate() {
            let (first, last) = (entry.le64(32), entry.le64(40));
            let range = first.saturating_mul(SECTOR)..last.saturating_add(1).saturating_mul(SECTOR);
            if entry[..16] != [0; 16] && range.contains(&offset) {
                let mut crumbs = vec![format!(
                    "GPT partition {} \"{}\"",
                    index + 1,
                    utf16le(&entry[56..128])
                )];
                crumbs.extend(pair.nested(range, offset));
                return crumbs;
            }
        }
        return vec!["unpartitioned gap".to_owned()];
    }
    let mut first_start = u64::MAX;
    for index in 0..4 {
        let entry = &mbr[446 + 16 * index..462 + 16 * index];
        let (kind, start, sectors) = (
            entry[4],
            u64::from(entry.le32(8)),
            u64::from(entry.le32(12)),
        );
        if kind == 0 || sectors == 0 {
            continue;
        }
        first_start = first_start.min(start);
        let range = start * SECTOR..(start + sectors) * SECTOR;
        if range.contains(&offset) {
            let mut crumbs = vec![format!("MBR partition {} (type {kind:#04x})", index + 1)];
            crumbs.extend(pair.nested(range, offset));
            return crumbs;
        }
    }
    if offset < first_start.saturating_mul(SECTOR) {
        vec!["gap before the first partition (boot loader area)".to_owned()]
    } else {
        vec!["unpartitioned gap".to_owned()]
    }
}

/// The partition-table structure at `offset`, if it is one: the MBR, the
/// GPT headers and entry arrays. Also names an isohybrid ISO's system area.
pub(crate) fn tables(source: &dyn Source, offset: u64) -> Option<Vec<String>> {
    let mbr = source.bytes(0, SECTOR)?;
    if mbr.le16(510) != 0xaa55 {
        return None;
    }
    let primary = gpt_header(source, 1);
    if offset < SECTOR {
        let table = if primary.is_some() {
            "protective MBR"
        } else {
            "MBR"
        };
        let part = match offset {
            0..446 => "boot code".to_owned(),
            446..510 => format!("partition entry {}", (offset - 446) / 16 + 1),
            _ => "signature".to_owned(),
        };
        return Some(vec![table.to_owned(), part]);
    }
    let primary = primary?;
    let backup = gpt_header(source, primary.le64(32));
    for (name, header) in [("GPT", Some(&primary)), ("backup GPT", backup.as_ref())] {
        let Some(header) = header else { continue };
        let at = header.le64(24).saturating_mul(SECTOR);
        if (at..at.saturating_add(SECTOR)).contains(&offset) {
            return Some(vec![format!("{name} header")]);
        }
        let entries = header.le64(72).saturating_mul(SECTOR);
        let size = u64::from(header.le32(84));
        let count = u64::from(header.le32(80));
        let end = entries.saturating_add(size.saturating_mul(count));
        if (entries..end).contains(&offset) && size > 0 {
            return Some(vec![
                format!("{name} partition entry array"),
                format!("entry {}", (offset - entries) / size + 1),
            ]);
        }
    }
    None
}

/// The GPT header at sector `lba`, if its signature is there.
fn gpt_header(source: &dyn Source, lba: u64) -> Option<Vec<u8>> {
    let header = source.bytes(lba.checked_mul(SECTOR)?, SECTOR)?;
    header.starts_with(GPT_SIGNATURE).then_some(header)
}

/// The entries of the array `header` points at, each at least 128 bytes.
fn gpt_entries(source: &dyn Source, header: &[u8]) -> Vec<Vec<u8>> {
    let (count, size) = (header.le32(80), u64::from(header.le32(84)));
    if count > MAX_GPT_ENTRIES || !(128..=4096).contains(&size) {
        return Vec::new();
    }
    let Some(array) = header
        .le64(72)
        .checked_mul(SECTOR)
        .and_then(|at| source.bytes(at, size * u64::from(count)))
    else {
        return Vec::new();
    };
    array.chunks(size as usize).map(<[u8]>::to_vec).collect()
}

/// A NUL-padded UTF-16LE name.
pub(crate) fn utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .take_while(|&unit| unit != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

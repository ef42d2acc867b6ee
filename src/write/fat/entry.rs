//! The 32-byte directory entries: short entries, the VFAT long-name entries
//! that precede them, and the DOS date and time they carry.

use super::names::{SHORT_NAME_LEN, ShortName};
use crate::write::date::DateTime;

pub(super) const DIR_ENTRY_LEN: usize = 32;
pub(super) const ATTR_VOLUME_ID: u8 = 0x08;
pub(super) const ATTR_DIRECTORY: u8 = 0x10;
pub(super) const ATTR_ARCHIVE: u8 = 0x20;
/// READ_ONLY | HIDDEN | SYSTEM | VOLUME_ID: marks a long-name entry.
const ATTR_LONG_NAME: u8 = 0x0F;
/// Set in the ordinal of the long-name entry holding the name's end.
const LAST_LONG_ENTRY: u8 = 0x40;
/// UTF-16 units per long-name entry: 5 + 6 + 2.
const LONG_NAME_CHARS: usize = 13;
/// Where each long-name entry keeps its three runs of characters.
const LONG_NAME_RUNS: [(usize, usize); 3] = [(1, 5), (14, 6), (28, 2)];

// Short entry fields.
const NAME: usize = 0;
const ATTR: usize = 11;
const CREATION_TENTHS: usize = 13;
const CREATION_TIME: usize = 14;
const CREATION_DATE: usize = 16;
const ACCESS_DATE: usize = 18;
const FIRST_CLUSTER_HIGH: usize = 20;
const WRITE_TIME: usize = 22;
const WRITE_DATE: usize = 24;
const FIRST_CLUSTER_LOW: usize = 26;
const FILE_SIZE: usize = 28;
// Long entry fields besides the name runs.
const LONG_ORDINAL: usize = 0;
const LONG_CHECKSUM: usize = 13;

/// A DOS timestamp: local time by convention, here UTC from the caller's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DosTime {
    pub date: u16,
    /// Two-second resolution.
    pub time: u16,
    /// Hundredths of a second added to `time` (0 or 100), creation only.
    pub hundredths: u8,
}

impl DosTime {
    /// The timestamp for `seconds` since the Unix epoch, clamped to the range
    /// DOS dates hold (1980 to 2107).
    pub fn from_unix(seconds: u64) -> DosTime {
        const FIRST_YEAR: i64 = 1980;
        const LAST_YEAR: i64 = 2107;
        let date = DateTime::from_unix(seconds);
        let (year, month, day) = (date.year as i64, date.month, date.day);
        if year < FIRST_YEAR {
            return DosTime {
                date: (1 << 5) | 1,
                time: 0,
                hundredths: 0,
            };
        }
        if year > LAST_YEAR {
            return DosTime {
                date: (((LAST_YEAR - FIRST_YEAR) as u16) << 9) | (12 << 5) | 31,
                time: (23 << 11) | (59 << 5) | 29,
                hundredths: 100,
            };
        }
        let (hour, minute, second) = (date.hour, date.minute, date.second);
        DosTime {
            date: (((year - FIRST_YEAR) as u16) << 9) | ((month as u16) << 5) | day as u16,
            time: ((hour as u16) << 11) | ((minute as u16) << 5) | (second / 2) as u16,
            hundredths: second % 2 * 100,
        }
    }
}

/// Appends a short entry.
pub(super) fn push_short_entry(
    out: &mut Vec<u8>,
    name: &ShortName,
    attr: u8,
    first_cluster: u32,
    size: u32,
    time: DosTime,
) {
    let mut entry = [0u8; DIR_ENTRY_LEN];
    entry[NAME..NAME + SHORT_NAME_LEN].copy_from_slice(name);
    entry[ATTR] = attr;
    entry[CREATION_TENTHS] = time.hundredths;
    put_u16(&mut entry, CREATION_TIME, time.time);
    put_u16(&mut entry, CREATION_DATE, time.date);
    put_u16(&mut entry, ACCESS_DATE, time.date);
    put_u16(&mut entry, FIRST_CLUSTER_HIGH, (first_cluster >> 16) as u16);
    put_u16(&mut entry, WRITE_TIME, time.time);
    put_u16(&mut entry, WRITE_DATE, time.date);
    put_u16(&mut entry, FIRST_CLUSTER_LOW, first_cluster as u16);
    entry[FILE_SIZE..FILE_SIZE + 4].copy_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&entry);
}

/// How many long-name entries `long` takes.
pub(super) fn long_entry_count(long: &[u16]) -> usize {
    long.len().div_ceil(LONG_NAME_CHARS)
}

/// Appends the long-name entries for `long`, last part first as VFAT
/// stores them, each tied to `short` by its checksum.
pub(super) fn push_long_entries(out: &mut Vec<u8>, long: &[u16], short: &ShortName) {
    let checksum = short_name_checksum(short);
    let count = long_entry_count(long);
    for index in (0..count).rev() {
        let mut entry = [0u8; DIR_ENTRY_LEN];
        let mut ordinal = (index + 1) as u8;
        if index + 1 == count {
            ordinal |= LAST_LONG_ENTRY;
        }
        entry[LONG_ORDINAL] = ordinal;
        entry[ATTR] = ATTR_LONG_NAME;
        entry[LONG_CHECKSUM] = checksum;
        // The name ends with a NUL unless it fills the entry; 0xFFFF pads the rest.
        let mut units =
            (index * LONG_NAME_CHARS..(index + 1) * LONG_NAME_CHARS).map(|position| match position
                .cmp(&long.len())
            {
                std::cmp::Ordering::Less => long[position],
                std::cmp::Ordering::Equal => 0x0000,
                std::cmp::Ordering::Greater => 0xFFFF,
            });
        for (offset, chars) in LONG_NAME_RUNS {
            for slot in 0..chars {
                let unit = units.next().unwrap_or(0xFFFF);
                put_u16(&mut entry, offset + 2 * slot, unit);
            }
        }
        out.extend_from_slice(&entry);
    }
}

/// The checksum long-name entries carry of their short name: a rotate-right
/// then add over the 11 bytes.
fn short_name_checksum(short: &ShortName) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, byte| sum.rotate_right(1).wrapping_add(*byte))
}

fn put_u16(entry: &mut [u8], offset: usize, value: u16) {
    entry[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_time_encodes_utc_fields() {
        // 2017-04-18 16:30:00 UTC, LinuxKit's default SOURCE_DATE_EPOCH.
        let time = DosTime::from_unix(1_492_533_000);
        assert_eq!(time.date, ((2017 - 1980) << 9) | (4 << 5) | 18);
        assert_eq!(time.time, (16 << 11) | (30 << 5));
        assert_eq!(time.hundredths, 0);
        // 2000-02-29 23:59:59.
        let time = DosTime::from_unix(951_868_799);
        assert_eq!(time.date, (20 << 9) | (2 << 5) | 29);
        assert_eq!(time.time, (23 << 11) | (59 << 5) | 29);
        assert_eq!(time.hundredths, 100);
        assert_eq!(DosTime::from_unix(0).date, (1 << 5) | 1);
    }

    #[test]
    fn checksum_matches_the_specs_algorithm() {
        // Worked by hand with fatgen103's ChkSum loop.
        let mut sum = 0u8;
        for byte in *b"VMLINU~1   " {
            sum = (if sum & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(sum >> 1)
                .wrapping_add(byte);
        }
        assert_eq!(short_name_checksum(b"VMLINU~1   "), sum);
    }

    #[test]
    fn long_entries_are_reversed_terminated_and_padded() {
        let long: Vec<u16> = "abcdefghijklmn".encode_utf16().collect();
        let mut out = Vec::new();
        push_long_entries(&mut out, &long, b"ABCDEF~1   ");
        assert_eq!(out.len(), 2 * DIR_ENTRY_LEN);
        assert_eq!(out[0], 0x42);
        assert_eq!(out[DIR_ENTRY_LEN], 0x01);
        // Second part: "n", NUL, then 0xFFFF padding.
        assert_eq!(&out[1..7], &[b'n', 0, 0, 0, 0xFF, 0xFF]);
        assert_eq!(out[11], ATTR_LONG_NAME);
        assert_eq!(&out[DIR_ENTRY_LEN + 1..DIR_ENTRY_LEN + 3], &[b'a', 0]);
        assert_eq!(
            &out[DIR_ENTRY_LEN + 28..DIR_ENTRY_LEN + 32],
            &[b'l', 0, b'm', 0]
        );
    }
}

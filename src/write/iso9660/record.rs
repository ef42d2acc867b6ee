//! ISO 9660 directory records (ECMA-119 9.1) and the number and date
//! encodings they share with the volume descriptors.

/// A logical sector: the unit of every address in the volume.
pub(super) const SECTOR: usize = 2048;
/// A directory record without its identifier or system use area.
pub(super) const RECORD_BASE: usize = 33;
/// A directory record's length is one byte.
pub(super) const RECORD_MAX: usize = 255;
/// The identifiers of a directory's "." and ".." records.
pub(super) const SELF_ID: &[u8] = &[0];
pub(super) const PARENT_ID: &[u8] = &[1];

const FLAG_DIRECTORY: u8 = 0x02;

/// Sectors needed for `bytes`.
pub(super) fn sectors(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR as u64)
}

/// Writes `value` little-endian then big-endian ("both-byte order").
pub(super) fn put_both_u32(buf: &mut [u8], value: u32) {
    buf[..4].copy_from_slice(&value.to_le_bytes());
    buf[4..8].copy_from_slice(&value.to_be_bytes());
}

pub(super) fn put_both_u16(buf: &mut [u8], value: u16) {
    buf[..2].copy_from_slice(&value.to_le_bytes());
    buf[2..4].copy_from_slice(&value.to_be_bytes());
}

pub(super) use crate::write::date::DateTime;

impl DateTime {
    /// The 7-byte form of directory records and Rock Ridge TF entries:
    /// years since 1900, then month to second, then the offset from UTC in
    /// 15-minute steps (0). The caller checks `year` is in 1900..=2155.
    pub(super) fn short(&self) -> [u8; 7] {
        [
            (self.year - 1900) as u8,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            0,
        ]
    }

    /// The 17-byte form of volume descriptors: "YYYYMMDDHHMMSScc" in
    /// digits, then the UTC offset (0).
    pub(super) fn long(&self) -> [u8; 17] {
        let digits = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        let mut out = [0; 17];
        out[..16].copy_from_slice(digits.as_bytes());
        out
    }
}

/// What a directory record describes.
pub(super) struct Record<'a> {
    pub identifier: &'a [u8],
    pub extent: u32,
    pub length: u32,
    pub is_dir: bool,
    pub date: [u8; 7],
    /// The system use area (Rock Ridge), already laid out.
    pub system_use: &'a [u8],
}

/// The length of a record with an `identifier_len`-byte identifier and no
/// system use area: always even, as records must be.
pub(super) fn record_len_without_system_use(identifier_len: usize) -> usize {
    let len = RECORD_BASE + identifier_len;
    len + len % 2
}

impl Record<'_> {
    /// The record's bytes; a system use area of odd length is padded with a
    /// zero so the record stays even.
    pub(super) fn encode(&self) -> Vec<u8> {
        let start_of_system_use = record_len_without_system_use(self.identifier.len());
        let len = start_of_system_use + self.system_use.len();
        let len = len + len % 2;
        let mut out = vec![0; len];
        out[0] = len as u8;
        // out[1]: no extended attribute record
        put_both_u32(&mut out[2..10], self.extent);
        put_both_u32(&mut out[10..18], self.length);
        out[18..25].copy_from_slice(&self.date);
        out[25] = if self.is_dir { FLAG_DIRECTORY } else { 0 };
        // out[26..28]: not interleaved
        put_both_u16(&mut out[28..32], 1); // volume sequence number
        out[32] = self.identifier.len() as u8;
        out[33..33 + self.identifier.len()].copy_from_slice(self.identifier);
        out[start_of_system_use..start_of_system_use + self.system_use.len()]
            .copy_from_slice(self.system_use);
        out
    }
}

/// Packs records into whole sectors: a record never crosses a sector
/// boundary, the rest of a sector is zero.
#[derive(Default)]
pub(super) struct SectorPacker {
    pub bytes: Vec<u8>,
}

impl SectorPacker {
    /// Where a record of `len` bytes goes, padding to the next sector if it
    /// does not fit the current one.
    pub(super) fn reserve(&mut self, len: usize) -> usize {
        let used = self.bytes.len() % SECTOR;
        if used + len > SECTOR {
            self.bytes.resize(self.bytes.len() + SECTOR - used, 0);
        }
        let at = self.bytes.len();
        self.bytes.resize(at + len, 0);
        at
    }

    pub(super) fn push(&mut self, data: &[u8]) {
        let at = self.reserve(data.len());
        self.bytes[at..].copy_from_slice(data);
    }

    /// The packed bytes, padded to whole sectors.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let len = sectors(self.bytes.len() as u64) as usize * SECTOR;
        self.bytes.resize(len, 0);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        // 2017-04-18T16:30:00Z, LinuxKit's default SOURCE_DATE_EPOCH
        let date = DateTime::from_unix(1_492_533_000);
        assert_eq!(&date.long()[..16], b"2017041816300000");
        assert_eq!(date.short(), [117, 4, 18, 16, 30, 0, 0]);
        assert_eq!(&DateTime::from_unix(951_782_400).long()[..8], b"20000229");
    }

    #[test]
    fn records_do_not_cross_sectors() {
        let mut packer = SectorPacker::default();
        packer.push(&[1; 2000]);
        packer.push(&[2; 100]);
        let bytes = packer.finish();
        assert_eq!(bytes.len(), 2 * SECTOR);
        assert_eq!(bytes[2000..SECTOR], [0; 48]);
        assert_eq!(bytes[SECTOR], 2);
    }
}

//! The system area of a hybrid ISO: an MBR and, for EFI, a GPT, so the same
//! image boots when written to a USB stick.
//!
//! The MBR carries isolinux's isohybrid boot code, which loads the El
//! Torito boot file from the disk sector stored at offset 0x1B0. Without EFI
//! one active partition (type 0x17, as isohybrid writes) spans the image.
//! With EFI the MBR is protective (one 0xEE partition) and a GPT holds an
//! EFI system partition over the FAT image inside the ISO 9660 volume; its
//! partition entries fill the system area up to the volume descriptors at
//! 32 KiB, and the backup GPT sits in the image's last sectors.

use sha2::{Digest, Sha256};

/// Disk sectors, the unit of MBR and GPT addresses.
pub(super) const DISK_SECTOR: u64 = 512;
/// The system area: the volume's first 16 sectors.
pub(super) const SYSTEM_AREA: usize = 32 * 1024;
/// Hybrid images are padded to whole cylinders of the 64-head, 32-sector
/// geometry isohybrid assumes: 1 MiB.
pub(super) const CYLINDER: u64 = 64 * 32 * DISK_SECTOR;
/// isohybrid's boot code fills the MBR up to here.
pub(super) const MBR_CODE_LEN: usize = 432;

const HEADS: u64 = 64;
const SECTORS_PER_TRACK: u64 = 32;
const MBR_BOOT_FILE_SECTOR: usize = 0x1B0;
const MBR_DISK_SIGNATURE: usize = 0x1B8;
const MBR_PARTITION_TABLE: usize = 0x1BE;
const MBR_SIGNATURE: usize = 0x1FE;
const MBR_ACTIVE: u8 = 0x80;
const MBR_TYPE_ISOHYBRID: u8 = 0x17;
const MBR_TYPE_GPT_PROTECTIVE: u8 = 0xEE;
/// CHS of addresses beyond what CHS can express.
const CHS_OVERFLOW: [u8; 3] = [0xFE, 0xFF, 0xFF];

const GPT_SIGNATURE: &[u8] = b"EFI PART";
const GPT_REVISION: u32 = 0x0001_0000;
const GPT_HEADER_LEN: usize = 92;
const GPT_ENTRY_LEN: usize = 128;
/// Partition entries from disk sector 2 up to the primary volume descriptor.
const GPT_ENTRIES_SECTORS: u64 = SYSTEM_AREA as u64 / DISK_SECTOR - 2;
const GPT_ENTRIES: usize = GPT_ENTRIES_SECTORS as usize * DISK_SECTOR as usize / GPT_ENTRY_LEN;
/// Sectors the backup GPT takes at the end: its entries and its header.
pub(super) const GPT_BACKUP_SECTORS: u64 = GPT_ENTRIES_SECTORS + 1;
/// C12A7328-F81F-11D2-BA4B-00A0C93EC93B in GPT's mixed-endian byte order.
const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
];
/// Required by the platform (bit 0) and read-only (bit 60), as xorriso marks
/// partitions on read-only media.
const ESP_ATTRIBUTES: u64 = 1 | 1 << 60;
const ESP_NAME: &str = "EFI system partition";

/// What the system area describes.
pub(super) struct SystemArea<'a> {
    /// The whole image, in bytes (a multiple of [`CYLINDER`]).
    pub image_len: u64,
    /// isohybrid boot code and the El Torito BIOS boot file's 2048-byte
    /// sector, if the image boots BIOS.
    pub bios: Option<(&'a [u8], u32)>,
    /// The FAT image's first 512-byte sector and its length in bytes, if the
    /// image boots EFI.
    pub esp: Option<(u64, u64)>,
    /// Seed of the disk signature and GPT GUIDs.
    pub seed: &'a [u8],
}

impl SystemArea<'_> {
    /// The 32 KiB system area: MBR, then the primary GPT if any.
    pub(super) fn system_area(&self) -> Vec<u8> {
        let mut area = vec![0; SYSTEM_AREA];
        let sectors = self.image_len / DISK_SECTOR;
        if let Some((code, boot_file_lba)) = self.bios {
            area[..code.len()].copy_from_slice(code);
            let boot_file_sector = u64::from(boot_file_lba) * 4;
            area[MBR_BOOT_FILE_SECTOR..MBR_BOOT_FILE_SECTOR + 8]
                .copy_from_slice(&boot_file_sector.to_le_bytes());
        }
        area[MBR_DISK_SIGNATURE..MBR_DISK_SIGNATURE + 4]
            .copy_from_slice(&derive(self.seed, "mbr disk signature")[..4]);
        let partition = &mut area[MBR_PARTITION_TABLE..MBR_PARTITION_TABLE + 16];
        match self.esp {
            None => mbr_partition(partition, MBR_ACTIVE, MBR_TYPE_ISOHYBRID, 0, sectors),
            Some(_) => mbr_partition(partition, 0, MBR_TYPE_GPT_PROTECTIVE, 1, sectors - 1),
        }
        area[MBR_SIGNATURE..MBR_SIGNATURE + 2].copy_from_slice(&[0x55, 0xAA]);
        if self.esp.is_some() {
            let entries = self.gpt_entries();
            let header = self.gpt_header(1, sectors - 1, 2, &entries);
            let sector = DISK_SECTOR as usize;
            area[sector..sector + GPT_HEADER_LEN].copy_from_slice(&header);
            area[2 * sector..].copy_from_slice(&entries);
        }
        area
    }

    /// The backup GPT that ends the image (entries, then header), if any.
    pub(super) fn backup_gpt(&self) -> Option<Vec<u8>> {
        self.esp?;
        let sectors = self.image_len / DISK_SECTOR;
        let entries = self.gpt_entries();
        let header = self.gpt_header(sectors - 1, 1, sectors - GPT_BACKUP_SECTORS, &entries);
        let mut out = entries;
        out.extend_from_slice(&header);
        out.resize(GPT_BACKUP_SECTORS as usize * DISK_SECTOR as usize, 0);
        Some(out)
    }

    fn gpt_entries(&self) -> Vec<u8> {
        let mut entries = vec![0; GPT_ENTRIES * GPT_ENTRY_LEN];
        if let Some((first, len)) = self.esp {
            let entry = &mut entries[..GPT_ENTRY_LEN];
            entry[0..16].copy_from_slice(&ESP_TYPE);
            entry[16..32].copy_from_slice(&guid(self.seed, "gpt esp partition guid"));
            entry[32..40].copy_from_slice(&first.to_le_bytes());
            let last = first + len.div_ceil(DISK_SECTOR) - 1;
            entry[40..48].copy_from_slice(&last.to_le_bytes());
            entry[48..56].copy_from_slice(&ESP_ATTRIBUTES.to_le_bytes());
            for (slot, unit) in entry[56..].chunks_mut(2).zip(ESP_NAME.encode_utf16()) {
                slot.copy_from_slice(&unit.to_le_bytes());
            }
        }
        entries
    }

    fn gpt_header(&self, current: u64, backup: u64, entries_lba: u64, entries: &[u8]) -> Vec<u8> {
        let sectors = self.image_len / DISK_SECTOR;
        let mut header = vec![0; GPT_HEADER_LEN];
        header[0..8].copy_from_slice(GPT_SIGNATURE);
        header[8..12].copy_from_slice(&GPT_REVISION.to_le_bytes());
        header[12..16].copy_from_slice(&(GPT_HEADER_LEN as u32).to_le_bytes());
        // header[16..20]: its CRC32, computed with the field zero
        header[24..32].copy_from_slice(&current.to_le_bytes());
        header[32..40].copy_from_slice(&backup.to_le_bytes());
        let first_usable = 2 + GPT_ENTRIES_SECTORS;
        let last_usable = sectors - GPT_BACKUP_SECTORS - 1;
        header[40..48].copy_from_slice(&first_usable.to_le_bytes());
        header[48..56].copy_from_slice(&last_usable.to_le_bytes());
        header[56..72].copy_from_slice(&guid(self.seed, "gpt disk guid"));
        header[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        header[80..84].copy_from_slice(&(GPT_ENTRIES as u32).to_le_bytes());
        header[84..88].copy_from_slice(&(GPT_ENTRY_LEN as u32).to_le_bytes());
        header[88..92].copy_from_slice(&crc32(entries).to_le_bytes());
        let crc = crc32(&header);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    }
}

/// One MBR partition entry; `start` and `len` in 512-byte sectors.
fn mbr_partition(out: &mut [u8], status: u8, kind: u8, start: u64, len: u64) {
    let len = len.min(u64::from(u32::MAX));
    out[0] = status;
    out[1..4].copy_from_slice(&chs(start));
    out[4] = kind;
    out[5..8].copy_from_slice(&chs(start + len - 1));
    out[8..12].copy_from_slice(&(start as u32).to_le_bytes());
    out[12..16].copy_from_slice(&(len as u32).to_le_bytes());
}

/// The cylinder-head-sector address of `lba` in the isohybrid geometry.
fn chs(lba: u64) -> [u8; 3] {
    let cylinder = lba / (HEADS * SECTORS_PER_TRACK);
    if cylinder > 1023 {
        return CHS_OVERFLOW;
    }
    let head = lba / SECTORS_PER_TRACK % HEADS;
    let sector = lba % SECTORS_PER_TRACK + 1;
    [
        head as u8,
        (sector | (cylinder >> 8) << 6) as u8,
        cylinder as u8,
    ]
}

fn derive(seed: &[u8], purpose: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"ossify iso9660 hybrid ")
        .chain_update(purpose.as_bytes())
        .chain_update(b"\0")
        .chain_update(seed)
        .finalize()
        .into()
}

/// A version 4 (random-form) GUID derived from `seed`, in on-disk order.
fn guid(seed: &[u8], purpose: &str) -> [u8; 16] {
    let mut guid = [0; 16];
    guid.copy_from_slice(&derive(seed, purpose)[..16]);
    guid[7] = (guid[7] & 0x0F) | 0x40;
    guid[8] = (guid[8] & 0x3F) | 0x80;
    guid
}

/// CRC-32 (IEEE 802.3, reflected), as GPT uses; bitwise, since it only
/// covers a few KiB.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn chs_matches_xorrisos_partition_table() {
        assert_eq!(chs(0), [0, 1, 0]);
        assert_eq!(chs(6143), [0x3F, 0x20, 0x02]);
        assert_eq!(chs(1024 * 2048), CHS_OVERFLOW);
    }

    #[test]
    fn bios_only_mbr_has_one_active_isohybrid_partition() {
        let code = [0xAB; MBR_CODE_LEN];
        let hybrid = SystemArea {
            image_len: 3 << 20,
            bios: Some((&code, 1058)),
            esp: None,
            seed: b"x",
        };
        let area = hybrid.system_area();
        assert_eq!(area[..MBR_CODE_LEN], code);
        assert_eq!(area[0x1B0..0x1B8], [0x88, 0x10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            area[0x1BE..0x1CE],
            [
                0x80, 0, 1, 0, 0x17, 0x3F, 0x20, 2, 0, 0, 0, 0, 0, 0x18, 0, 0
            ]
        );
        assert_eq!(area[0x1FE..0x200], [0x55, 0xAA]);
        assert!(hybrid.backup_gpt().is_none());
    }
}

//! El Torito: the boot record volume descriptor, the boot catalog it points
//! at, and the boot info table isolinux expects patched into its image.

use super::record::SECTOR;

/// Platform ids of the validation entry and section headers.
pub(super) const PLATFORM_X86: u8 = 0x00;
pub(super) const PLATFORM_EFI: u8 = 0xEF;
/// The boot system identifier of the boot record volume descriptor.
const BOOT_SYSTEM_ID: &[u8] = b"EL TORITO SPECIFICATION";
const ENTRY: usize = 32;
const HEADER_VALIDATION: u8 = 0x01;
const HEADER_SECTION: u8 = 0x90;
const HEADER_FINAL_SECTION: u8 = 0x91;
const BOOTABLE: u8 = 0x88;
/// Media type of an image loaded as is, without floppy or disk emulation.
const NO_EMULATION: u8 = 0x00;
/// Where the boot info table sits in the boot image, and where the part its
/// checksum covers starts.
const INFO_TABLE_OFFSET: usize = 8;
const INFO_TABLE_CHECKSUMMED_FROM: usize = 64;

/// One bootable image in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BootEntry {
    pub platform: u8,
    /// The image's first sector.
    pub lba: u32,
    /// Sectors of 512 bytes the firmware loads; 0 for EFI images over 32 MiB
    /// (firmware then reads to the end of the volume).
    pub load_sectors: u16,
}

/// The boot record volume descriptor (sector 17), pointing at the catalog.
pub(super) fn boot_record(catalog_lba: u32) -> [u8; SECTOR] {
    let mut out = [0; SECTOR];
    out[0] = 0; // volume descriptor type: boot record
    out[1..6].copy_from_slice(b"CD001");
    out[6] = 1;
    out[7..7 + BOOT_SYSTEM_ID.len()].copy_from_slice(BOOT_SYSTEM_ID);
    out[71..75].copy_from_slice(&catalog_lba.to_le_bytes());
    out
}

/// The boot catalog: the validation entry and the first image as the
/// default entry, then one section (header and entry) per further image.
/// `entries` holds at least one entry and at most 62, which fit one sector.
pub(super) fn catalog(entries: &[BootEntry]) -> [u8; SECTOR] {
    let mut out = [0; SECTOR];
    let validation = &mut out[..ENTRY];
    validation[0] = HEADER_VALIDATION;
    validation[1] = entries[0].platform;
    validation[30] = 0x55;
    validation[31] = 0xAA;
    // The 16-bit words of the validation entry sum to zero.
    let sum = validation.chunks(2).fold(0u16, |sum, word| {
        sum.wrapping_add(u16::from_le_bytes([word[0], word[1]]))
    });
    validation[28..30].copy_from_slice(&sum.wrapping_neg().to_le_bytes());
    write_entry(&mut out[ENTRY..2 * ENTRY], &entries[0]);
    let sections = &entries[1..];
    for (index, entry) in sections.iter().enumerate() {
        let at = (2 + 2 * index) * ENTRY;
        let header = &mut out[at..at + ENTRY];
        header[0] = if index + 1 == sections.len() {
            HEADER_FINAL_SECTION
        } else {
            HEADER_SECTION
        };
        header[1] = entry.platform;
        header[2..4].copy_from_slice(&1u16.to_le_bytes());
        write_entry(&mut out[at + ENTRY..at + 2 * ENTRY], entry);
    }
    out
}

fn write_entry(out: &mut [u8], entry: &BootEntry) {
    out[0] = BOOTABLE;
    out[1] = NO_EMULATION;
    // out[2..4]: load segment 0, the traditional 0x7C0
    out[6..8].copy_from_slice(&entry.load_sectors.to_le_bytes());
    out[8..12].copy_from_slice(&entry.lba.to_le_bytes());
}

/// The 512-byte sector count of an EFI image of `len` bytes, or 0 when the
/// 16-bit field cannot hold it.
pub(super) fn efi_load_sectors(len: u64) -> u16 {
    u16::try_from(len.div_ceil(512)).unwrap_or(0)
}

/// Patches the boot info table (as `mkisofs -boot-info-table`) into `image`:
/// the primary volume descriptor's sector, the image's sector, its length
/// and the 32-bit sum of its little-endian words from byte 64 on. Returns
/// false if the image is too short to hold the table.
pub(super) fn patch_boot_info_table(image: &mut [u8], pvd_lba: u32, image_lba: u32) -> bool {
    if image.len() < INFO_TABLE_CHECKSUMMED_FROM {
        return false;
    }
    let checksum = image[INFO_TABLE_CHECKSUMMED_FROM..]
        .chunks(4)
        .fold(0u32, |sum, word| {
            let mut padded = [0; 4];
            padded[..word.len()].copy_from_slice(word);
            sum.wrapping_add(u32::from_le_bytes(padded))
        });
    let len = image.len() as u32;
    let table = &mut image[INFO_TABLE_OFFSET..INFO_TABLE_CHECKSUMMED_FROM];
    table.fill(0);
    table[0..4].copy_from_slice(&pvd_lba.to_le_bytes());
    table[4..8].copy_from_slice(&image_lba.to_le_bytes());
    table[8..12].copy_from_slice(&len.to_le_bytes());
    table[12..16].copy_from_slice(&checksum.to_le_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_matches_xorrisos_layout() {
        let bios = BootEntry {
            platform: PLATFORM_X86,
            lba: 1058,
            load_sectors: 4,
        };
        let efi = BootEntry {
            platform: PLATFORM_EFI,
            lba: 34,
            load_sectors: 4096,
        };
        let catalog = catalog(&[bios, efi]);
        // Bytes of a catalog xorriso 1.5.4 wrote for the same images.
        let expected: &[u8] = &[
            0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0xaa, 0x55, 0x55, 0xaa, 0x88, 0, 0, 0, 0, 0, 4, 0, 0x22, 0x04, 0, 0,
        ];
        assert_eq!(&catalog[..expected.len()], expected);
        assert_eq!(catalog[64..68], [0x91, 0xEF, 1, 0]);
        assert_eq!(catalog[96..104], [0x88, 0, 0, 0, 0, 0, 0, 0x10]);
        assert_eq!(catalog[104..108], 34u32.to_le_bytes());
    }

    #[test]
    fn efi_load_sectors_fall_back_to_zero_over_32_mib() {
        assert_eq!(efi_load_sectors(2 << 20), 4096);
        assert_eq!(efi_load_sectors(32 << 20), 0);
        assert_eq!(efi_load_sectors((32 << 20) - 512), 65535);
    }

    #[test]
    fn boot_info_table_sums_words_after_byte_64() {
        let mut image = vec![0xFF; 70];
        assert!(patch_boot_info_table(&mut image, 16, 40));
        assert_eq!(
            image[8..24],
            [
                [16, 0, 0, 0],
                [40, 0, 0, 0],
                [70, 0, 0, 0],
                [0xFE, 0xFF, 0, 0]
            ]
            .concat()
        );
        assert_eq!(image[24..64], [0; 40]);
        assert!(!patch_boot_info_table(&mut [0; 63], 16, 40));
    }
}

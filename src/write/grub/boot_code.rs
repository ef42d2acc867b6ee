//! The MBR boot code: GRUB's `boot.img`, patched as `grub-bios-setup`
//! patches it for a hard disk.

use super::core_image::{CORE_IMAGE_LBA, SECTOR_SIZE};
use super::{GrubError, GrubPcFiles};

const BOOT_IMG: &str = "boot.img";
/// The MBR's code area: the disk signature (0x1B8) and partition table
/// follow, written by the caller.
pub const BOOT_CODE_SIZE: usize = 0x1B8;
/// `boot.img`'s `kernel_sector` (u64): where the core image starts.
const KERNEL_SECTOR: usize = 0x5C;
/// A two-byte jump over `boot.img`'s check of the BIOS's drive number (DL).
/// `grub-bios-setup` replaces it with two NOPs for hard disks, so that a
/// buggy BIOS's floppy-like drive number is corrected to 0x80.
const FLOPPY_JUMP: usize = 0x66;
const NOP: u8 = 0x90;
const BOOT_SIGNATURE: usize = 0x1FE;

/// The 440 bytes of MBR boot code that load GRUB's core image from
/// [`CORE_IMAGE_LBA`]. The bytes from 0x1B8 of stock `boot.img` (floppy
/// probing code, where the disk signature and partition table go) are not
/// part of it: left in place, GRUB finds no partitions.
pub fn boot_code(files: &GrubPcFiles) -> Result<[u8; BOOT_CODE_SIZE], GrubError> {
    let boot_img = files.get(BOOT_IMG)?;
    if boot_img.len() != SECTOR_SIZE || boot_img[BOOT_SIGNATURE..] != [0x55, 0xAA] {
        return Err(GrubError::malformed(
            BOOT_IMG,
            "it is not a 512-byte boot sector ending in 55 AA",
        ));
    }
    let mut code = [0; BOOT_CODE_SIZE];
    code.copy_from_slice(&boot_img[..BOOT_CODE_SIZE]);
    code[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&CORE_IMAGE_LBA.to_le_bytes());
    code[FLOPPY_JUMP..FLOPPY_JUMP + 2].fill(NOP);
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn with_boot_img(boot_img: Vec<u8>) -> GrubPcFiles {
        GrubPcFiles::new(BTreeMap::from([(BOOT_IMG.to_owned(), boot_img)]))
    }

    #[test]
    fn patches_kernel_sector_and_jump_only() {
        let mut boot_img = vec![0xAB; SECTOR_SIZE];
        boot_img[BOOT_SIGNATURE..].copy_from_slice(&[0x55, 0xAA]);
        let code = boot_code(&with_boot_img(boot_img.clone())).unwrap();
        assert_eq!(
            code[KERNEL_SECTOR..KERNEL_SECTOR + 8],
            [1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(code[FLOPPY_JUMP..FLOPPY_JUMP + 2], [NOP, NOP]);
        let unchanged = |offset: &usize| {
            !(KERNEL_SECTOR..KERNEL_SECTOR + 8).contains(offset)
                && !(FLOPPY_JUMP..FLOPPY_JUMP + 2).contains(offset)
        };
        assert!(
            (0..BOOT_CODE_SIZE)
                .filter(unchanged)
                .all(|i| code[i] == boot_img[i])
        );
    }

    #[test]
    fn rejects_a_file_that_is_no_boot_sector() {
        let error = boot_code(&with_boot_img(vec![0; 100])).unwrap_err();
        assert!(error.to_string().contains("boot.img"), "{error}");
    }

    #[test]
    fn missing_boot_img_names_the_package() {
        let error = boot_code(&GrubPcFiles::default()).unwrap_err();
        assert!(
            error.to_string().contains("`boot.img` is missing"),
            "{error}"
        );
        assert!(error.to_string().contains("grub-pc-bin"), "{error}");
    }
}

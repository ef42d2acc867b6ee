//! CRC32C (Castagnoli) as ext4 uses it: the bare register update, with no
//! inversion before or after, so that the caller chooses the seed (`!0`
//! for the superblock, the filesystem's seed for everything else) and can
//! chain one checksum into the next as the kernel's `ext4_chksum` does.

/// The reflected Castagnoli polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
}

/// Continues `crc` over `bytes`.
pub fn update(crc: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(crc, |crc, &byte| {
        TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::update;

    #[test]
    fn matches_the_standard_check_value() {
        // CRC-32C's published check value, which inverts before and after.
        assert_eq!(!update(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn chains() {
        assert_eq!(update(update(7, b"abc"), b"def"), update(7, b"abcdef"));
    }
}

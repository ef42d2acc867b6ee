//! The one gzip configuration ossify writes with.
//!
//! Outputs are compared by digest across builds, so every byte must be a
//! function of the input: a fixed level (6, gzip's default) on one pinned
//! backend (zlib-rs, single-threaded, so thread count cannot matter), and a
//! header with no file name, mtime 0 and OS "unknown". flate2 prefers a C
//! zlib if any crate in the build enables one; the pinned-output test below
//! catches that.

use std::io::Write;

use flate2::GzBuilder;
use flate2::write::GzEncoder;

/// gzip's default level, a good size/speed balance for initrds.
const LEVEL: u32 = 6;
/// The header's OS field: "unknown", independent of the build host.
const OS_UNKNOWN: u8 = 255;

/// A gzip encoder over `out`. Call `finish()` to write the trailer.
pub fn encoder<W: Write>(out: W) -> GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(OS_UNKNOWN)
        .write(out, flate2::Compression::new(LEVEL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;
    use std::io::Read;

    #[test]
    fn header_is_fixed_and_contents_round_trip() {
        let mut encoder = encoder(Vec::new());
        encoder.write_all(b"ossify").unwrap();
        let bytes = encoder.finish().unwrap();
        // magic, deflate, no flags, mtime 0, xfl 0 (level 6), OS unknown
        assert_eq!(bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, "ossify");
    }

    /// Pins the compressed bytes: a change of backend, level or backend
    /// version that alters output must be a deliberate, visible decision,
    /// since it changes every published digest.
    #[test]
    fn output_bytes_are_pinned() {
        let mut state = 1u32;
        let input: Vec<u8> = (0..256 * 1024)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    b"ossify"[i % 6]
                }
            })
            .collect();
        let mut encoder = encoder(Vec::new());
        encoder.write_all(&input).unwrap();
        let compressed = encoder.finish().unwrap();
        let digest: String = sha2::Sha256::digest(&compressed)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            digest,
            "c253ed7f40236243919fb9be79615f4d078900f46074fb8f7b448419301b1699"
        );
    }
}

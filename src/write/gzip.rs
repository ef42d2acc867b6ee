//! The one gzip configuration ossify writes with.
//!
//! Outputs are compared by digest across builds, so every byte must be a
//! function of the input: a fixed level (6, gzip's default) on one pinned
//! backend (zlib-rs, single-threaded, so thread count cannot matter), and a
//! header with no file name, mtime 0 and OS "unknown".

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
}

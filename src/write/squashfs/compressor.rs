//! The compressors a squashfs superblock can name, and how each compresses
//! one block (a data block, a fragment block or an 8 KiB metadata block).
//!
//! Every block is compressed on its own, so the result depends only on the
//! block's bytes: blocks can be compressed on any thread in any order.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use flate2::write::ZlibEncoder;
use lzma_rust2::{CheckType, XzOptions, XzWriter};

use super::ParseError;

/// mksquashfs's default levels, so images compare with its output.
const GZIP_LEVEL: u32 = 9;
const XZ_PRESET: u32 = 6;
const ZSTD_LEVEL: i32 = 15;

/// The LZ4 options block's version field: the kernel reads only the
/// "legacy" format, which is raw LZ4 blocks without frame headers.
const LZ4_LEGACY: u32 = 1;

/// The compressor of every block in the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// zlib streams (deflate with the zlib header), level 9: LinuxKit's
    /// choice and the one every kernel reads.
    #[default]
    Gzip,
    /// `.xz` streams with a CRC32 check and a dictionary of one block, as
    /// the kernel's decoder (which allocates one block's dictionary) needs.
    Xz,
    /// zstd frames, level 15.
    Zstd,
    /// Raw LZ4 blocks (the kernel's "legacy" format), with the options block
    /// the kernel requires for LZ4.
    Lz4,
}

impl Compression {
    const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
        Compression::Lz4,
    ];

    /// The superblock's compression id.
    pub(super) fn id(self) -> u16 {
        match self {
            Compression::Gzip => 1,
            Compression::Xz => 4,
            Compression::Lz4 => 5,
            Compression::Zstd => 6,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    /// The compressor options stored after the superblock, when the reader
    /// needs them: only LZ4, whose kernel driver refuses images without.
    pub(super) fn options(self) -> Option<Vec<u8>> {
        match self {
            Compression::Lz4 => {
                let flags = 0u32;
                Some([LZ4_LEGACY.to_le_bytes(), flags.to_le_bytes()].concat())
            }
            Compression::Gzip | Compression::Xz | Compression::Zstd => None,
        }
    }

    /// `data` compressed, or `None` when that would not make it smaller (the
    /// block is then stored as it is, flagged uncompressed).
    /// `block_size` bounds the xz dictionary.
    pub(super) fn compress(self, data: &[u8], block_size: u32) -> io::Result<Option<Vec<u8>>> {
        let compressed = match self {
            Compression::Gzip => {
                let level = flate2::Compression::new(GZIP_LEVEL);
                let mut encoder = ZlibEncoder::new(Vec::with_capacity(data.len()), level);
                encoder.write_all(data)?;
                encoder.finish()?
            }
            Compression::Xz => {
                let mut options = XzOptions::with_preset(XZ_PRESET);
                options.lzma_options.dict_size = block_size;
                options.set_check_sum_type(CheckType::Crc32);
                let mut writer = XzWriter::new(Vec::with_capacity(data.len()), options)?;
                writer.write_all(data)?;
                writer.finish()?
            }
            Compression::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL)?,
            Compression::Lz4 => lz4_flex::block::compress(data),
        };
        Ok((compressed.len() < data.len()).then_some(compressed))
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = ParseError;

    fn from_str(name: &str) -> Result<Self, ParseError> {
        Compression::ALL
            .into_iter()
            .find(|compression| compression.name() == name)
            .ok_or_else(|| ParseError::Compression(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sample() -> Vec<u8> {
        (0..20_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect()
    }

    #[test]
    fn names_round_trip() {
        for compression in Compression::ALL {
            let name = compression.to_string();
            assert_eq!(name.parse::<Compression>().unwrap(), compression);
        }
        let err = "lzo".parse::<Compression>().unwrap_err().to_string();
        assert!(err.contains("gzip, xz, zstd, lz4"), "{err}");
    }

    #[test]
    fn gzip_is_a_zlib_stream() {
        let data = sample();
        let compressed = Compression::Gzip.compress(&data, 131072).unwrap().unwrap();
        assert_eq!(compressed[0], 0x78, "zlib header");
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&compressed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn xz_uses_crc32_and_a_one_block_dictionary() {
        let data = sample();
        let compressed = Compression::Xz.compress(&data, 4096).unwrap().unwrap();
        assert_eq!(&compressed[..6], b"\xfd7zXZ\0");
        assert_eq!(compressed[7], CheckType::Crc32 as u8, "stream flags");
        let mut back = Vec::new();
        lzma_rust2::XzReader::new(&compressed[..], false)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn zstd_and_lz4_round_trip() {
        let data = sample();
        let zstd = Compression::Zstd.compress(&data, 131072).unwrap().unwrap();
        assert_eq!(zstd::bulk::decompress(&zstd, data.len()).unwrap(), data);
        let lz4 = Compression::Lz4.compress(&data, 131072).unwrap().unwrap();
        assert_eq!(lz4_flex::block::decompress(&lz4, data.len()).unwrap(), data);
    }

    #[test]
    fn incompressible_blocks_are_left_alone() {
        let mut state = 0x1234_5678u32;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        for compression in Compression::ALL {
            assert_eq!(compression.compress(&noise, 4096).unwrap(), None);
        }
    }
}

//! How an initrd is compressed: the formats the Linux kernel unpacks an
//! initramfs from (Debian's 6.1 has RD_GZIP, RD_ZSTD, RD_XZ and RD_LZ4),
//! each written the one way the kernel's decoder takes it. Every stream is
//! the same bytes for any number of threads.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use lzma_rust2::{CheckType, XzOptions, XzWriter};

use super::gzip;

/// zstd's default level: several times faster than gzip -6 and smaller.
const ZSTD_LEVEL: i32 = 3;
/// xz's default preset.
const XZ_PRESET: u32 = 6;
/// The legacy LZ4 format (`lz4 -l`): this magic, then blocks of 8 MiB of
/// input, each as its compressed length (u32, little-endian) and a raw LZ4
/// block. It is the only LZ4 format the kernel's unlz4 reads.
const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// An initrd compression, as `--initrd-compression` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitrdCompression {
    /// gzip level 6 on every core (LinuxKit's choice, and every kernel's).
    #[default]
    Gzip,
    /// One zstd frame, level 3.
    Zstd,
    /// One `.xz` stream with a CRC32 check: the kernel's decoder checks no
    /// other (CRC64 or SHA-256 streams fail to unpack at boot).
    Xz,
    /// LZ4's legacy format.
    Lz4,
    /// The cpio as it is.
    None,
}

impl InitrdCompression {
    const ALL: [InitrdCompression; 5] = [
        InitrdCompression::Gzip,
        InitrdCompression::Zstd,
        InitrdCompression::Xz,
        InitrdCompression::Lz4,
        InitrdCompression::None,
    ];

    fn name(self) -> &'static str {
        match self {
            InitrdCompression::Gzip => "gzip",
            InitrdCompression::Zstd => "zstd",
            InitrdCompression::Xz => "xz",
            InitrdCompression::Lz4 => "lz4",
            InitrdCompression::None => "none",
        }
    }

    /// A compressor writing to `out`; [`Compressor::finish`] ends it.
    pub fn compressor<W: Write>(self, out: W) -> io::Result<Compressor<W>> {
        Ok(match self {
            InitrdCompression::Gzip => Compressor::Gzip(gzip::encoder(out)),
            InitrdCompression::Zstd => {
                let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
                encoder.include_checksum(true)?;
                Compressor::Zstd(encoder)
            }
            InitrdCompression::Xz => {
                let mut options = XzOptions::with_preset(XZ_PRESET);
                options.set_check_sum_type(CheckType::Crc32);
                Compressor::Xz(XzWriter::new(out, options)?)
            }
            InitrdCompression::Lz4 => Compressor::Lz4(Lz4Legacy::new(out)?),
            InitrdCompression::None => Compressor::None(out),
        })
    }
}

impl fmt::Display for InitrdCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name `--initrd-compression` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown initrd compression `{0}`; use one of gzip, zstd, xz, lz4, none")]
pub struct UnknownInitrdCompression(String);

impl FromStr for InitrdCompression {
    type Err = UnknownInitrdCompression;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        InitrdCompression::ALL
            .into_iter()
            .find(|c| c.name() == text)
            .ok_or_else(|| UnknownInitrdCompression(text.to_owned()))
    }
}

/// A compressed stream being written.
pub enum Compressor<W: Write> {
    Gzip(gzip::Encoder<W>),
    Zstd(zstd::stream::Encoder<'static, W>),
    Xz(XzWriter<W>),
    Lz4(Lz4Legacy<W>),
    None(W),
}

impl<W: Write> Compressor<W> {
    /// Writes the end of the stream and returns `out`.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(encoder) => encoder.finish(),
            Compressor::Zstd(encoder) => encoder.finish(),
            Compressor::Xz(writer) => writer.finish(),
            Compressor::Lz4(writer) => writer.finish(),
            Compressor::None(out) => Ok(out),
        }
    }

    fn inner(&mut self) -> &mut dyn Write {
        match self {
            Compressor::Gzip(encoder) => encoder,
            Compressor::Zstd(encoder) => encoder,
            Compressor::Xz(writer) => writer,
            Compressor::Lz4(writer) => writer,
            Compressor::None(out) => out,
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner().flush()
    }
}

/// LZ4's legacy format, block by block.
pub struct Lz4Legacy<W: Write> {
    out: W,
    block: Vec<u8>,
}

impl<W: Write> Lz4Legacy<W> {
    fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&LZ4_LEGACY_MAGIC.to_le_bytes())?;
        Ok(Lz4Legacy {
            out,
            block: Vec::with_capacity(LZ4_LEGACY_BLOCK),
        })
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let compressed = lz4_flex::block::compress(&self.block);
        let length = u32::try_from(compressed.len()).expect("an 8 MiB block compresses to less");
        self.out.write_all(&length.to_le_bytes())?;
        self.out.write_all(&compressed)?;
        self.block.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Lz4Legacy<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = LZ4_LEGACY_BLOCK - self.block.len();
        let taken = buf.len().min(room);
        self.block.extend_from_slice(&buf[..taken]);
        if self.block.len() == LZ4_LEGACY_BLOCK {
            self.write_block()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn compressed(compression: InitrdCompression, data: &[u8]) -> Vec<u8> {
        let mut compressor = compression.compressor(Vec::new()).unwrap();
        compressor.write_all(data).unwrap();
        compressor.finish().unwrap()
    }

    /// Reads a legacy LZ4 stream back, block by block.
    fn unlz4_legacy(mut stream: &[u8]) -> Vec<u8> {
        let magic = u32::from_le_bytes(stream[..4].try_into().unwrap());
        assert_eq!(magic, LZ4_LEGACY_MAGIC);
        stream = &stream[4..];
        let mut out = Vec::new();
        while !stream.is_empty() {
            let length = u32::from_le_bytes(stream[..4].try_into().unwrap()) as usize;
            let block = &stream[4..4 + length];
            out.extend(lz4_flex::block::decompress(block, LZ4_LEGACY_BLOCK).unwrap());
            stream = &stream[4 + length..];
        }
        out
    }

    #[test]
    fn every_compression_round_trips() {
        // Over two LZ4 blocks, half of it compressible.
        let data: Vec<u8> = (0..(LZ4_LEGACY_BLOCK * 2 + 1000) as u32)
            .map(|i| {
                if i % 2 == 0 {
                    (i >> 8) as u8
                } else {
                    (i.wrapping_mul(2_654_435_761) >> 24) as u8
                }
            })
            .collect();
        let mut gunzipped = Vec::new();
        flate2::read::GzDecoder::new(&compressed(InitrdCompression::Gzip, &data)[..])
            .read_to_end(&mut gunzipped)
            .unwrap();
        assert_eq!(gunzipped, data);
        let zstd = compressed(InitrdCompression::Zstd, &data);
        assert_eq!(zstd::stream::decode_all(&zstd[..]).unwrap(), data);
        let mut unxz = Vec::new();
        lzma_rust2::XzReader::new(&compressed(InitrdCompression::Xz, &data)[..], false)
            .read_to_end(&mut unxz)
            .unwrap();
        assert_eq!(unxz, data);
        assert_eq!(
            unlz4_legacy(&compressed(InitrdCompression::Lz4, &data)),
            data
        );
        assert_eq!(compressed(InitrdCompression::None, &data), data);
    }

    #[test]
    fn xz_checks_with_crc32_as_the_kernel_needs() {
        let xz = compressed(InitrdCompression::Xz, b"initrd");
        // Stream flags follow the 6-byte magic: 0x00, then the check type
        // (1 is CRC32).
        assert_eq!(&xz[..6], b"\xfd7zXZ\0");
        assert_eq!(xz[7], 1);
    }

    #[test]
    fn names_parse_and_print() {
        for compression in InitrdCompression::ALL {
            assert_eq!(compression.to_string().parse(), Ok(compression));
        }
        assert!(
            "bzip2"
                .parse::<InitrdCompression>()
                .unwrap_err()
                .to_string()
                .contains("gzip, zstd, xz, lz4, none")
        );
    }
}

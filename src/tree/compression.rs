//! The compression of a layer stream, and its decoder.

use std::io::{self, Cursor, Read};

use flate2::read::MultiGzDecoder;

use super::read_up_to;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Decide from the stream's first bytes (gzip and zstd magic numbers;
    /// anything else is taken as a plain tar).
    #[default]
    Detect,
    /// A plain tar.
    None,
    /// gzip, possibly several members (as Docker's reader accepts).
    Gzip,
    /// zstd, possibly several frames.
    Zstd,
}

impl Compression {
    /// The compression an OCI or Docker layer media type names, or `None`
    /// for a media type that is not a layer ossify knows.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        let tar = media_type
            .strip_prefix("application/vnd.oci.image.layer.")
            .or_else(|| media_type.strip_prefix("application/vnd.docker.image.rootfs."))?;
        let compression = tar.split_once("tar").map(|(_, suffix)| suffix)?;
        match compression {
            "" => Some(Compression::None),
            "+gzip" | ".gzip" => Some(Compression::Gzip),
            "+zstd" | ".zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Wraps `stream` in the decoder for this compression; `Detect` reads the
    /// first bytes to decide and hands them on to the decoder.
    pub fn decoder<'r>(self, mut stream: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
        let (compression, stream): (Compression, Box<dyn Read + 'r>) = match self {
            Compression::Detect => {
                let mut magic = [0u8; 4];
                let read = read_up_to(&mut stream, &mut magic)?;
                let head = &magic[..read];
                let detected = if head.starts_with(GZIP_MAGIC) {
                    Compression::Gzip
                } else if head.starts_with(ZSTD_MAGIC) {
                    Compression::Zstd
                } else {
                    Compression::None
                };
                let whole = Cursor::new(magic).take(read as u64).chain(stream);
                (detected, Box::new(whole))
            }
            known => (known, Box::new(stream)),
        };
        Ok(match compression {
            Compression::Detect | Compression::None => stream,
            Compression::Gzip => Box::new(MultiGzDecoder::new(stream)),
            Compression::Zstd => Box::new(zstd::Decoder::new(stream)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let cases = [
            (
                "application/vnd.oci.image.layer.v1.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            ("application/vnd.oci.image.config.v1+json", None),
            ("application/vnd.oci.image.layer.v1.tar+bzip2", None),
        ];
        for (media_type, expected) in cases {
            assert_eq!(
                Compression::from_media_type(media_type),
                expected,
                "{media_type}"
            );
        }
    }
}

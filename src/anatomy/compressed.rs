//! Compressed streams (the initrd's gzip, zstd, xz or legacy LZ4; the GCE
//! tarball's gzip): both sides are decompressed and compared, and the
//! first differing decompressed byte is named inside the archive within.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

use super::compare::{self, OnError};
use super::sequential::{ReadStream, SourceReader};
use super::source::{Fields, Source};
use super::{Found, Pair, cpio, tar};

/// A compression the kernel or a cloud importer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    Gzip,
    Zstd,
    Xz,
    Lz4Legacy,
}

const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// The legacy LZ4 format's block of input.
const LZ4_BLOCK: usize = 8 << 20;

impl Compression {
    /// The compression whose magic `head` starts with.
    pub(crate) fn sniff(head: &[u8]) -> Option<Compression> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Compression::Xz)
        } else if head.len() >= 4 && head.le32(0) == LZ4_LEGACY_MAGIC {
            Some(Compression::Lz4Legacy)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Lz4Legacy => "lz4",
        }
    }

    /// A decoder of `source` from its start.
    fn decoder<'a>(self, source: &'a dyn Source) -> io::Result<Box<dyn Read + 'a>> {
        let input = SourceReader {
            source,
            position: 0,
        };
        Ok(match self {
            Compression::Gzip => Box::new(MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
            Compression::Xz => Box::new(lzma_rust2::XzReader::new(input, true)),
            Compression::Lz4Legacy => Box::new(Lz4Legacy {
                input,
                block: Vec::new(),
                at: 0,
            }),
        })
    }
}

/// The structure at the first decompressed difference of `pair`, both
/// streams compressed with `compression`.
pub(crate) fn describe(compression: Compression, pair: &Pair<'_>) -> Vec<String> {
    let mut crumbs = vec![format!("{} stream", compression.name())];
    let decoders = compression
        .decoder(pair.expected)
        .and_then(|e| Ok((e, compression.decoder(pair.actual)?)));
    let Ok((mut expected, mut actual)) = decoders else {
        crumbs.push("undecodable".to_owned());
        return crumbs;
    };
    let target = match compare::first_difference(&mut expected, &mut actual, OnError::End) {
        Ok(Some(target)) => target,
        Ok(None) => {
            crumbs.push("compressed bytes only (decompressed contents identical)".to_owned());
            return crumbs;
        }
        Err(_) => return crumbs,
    };
    let Ok(mut inner) = compression.decoder(pair.expected) else {
        return crumbs;
    };
    let mut head = [0u8; 512];
    if inner.read_exact(&mut head).is_err() {
        crumbs.push(format!("decompressed byte {target}"));
        return crumbs;
    }
    let mut stream = ReadStream(io::Cursor::new(head).chain(inner));
    let found = if head.starts_with(cpio::MAGIC) {
        cpio::describe(&mut stream, target)
    } else if &head[257..262] == b"ustar" {
        tar::describe(&mut stream, target)
    } else {
        Found::crumbs([format!("decompressed byte {target}")])
    };
    crumbs.extend(found.crumbs);
    crumbs
}

/// LZ4's legacy frame format, as the kernel's unlz4 reads it: the magic,
/// then blocks of a little-endian compressed length and a raw LZ4 block of
/// at most 8 MiB of output; the magic may recur (concatenated streams).
struct Lz4Legacy<R> {
    input: R,
    block: Vec<u8>,
    at: usize,
}

impl<R: Read> Lz4Legacy<R> {
    /// Decodes the next block; false at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        let mut word = [0u8; 4];
        loop {
            match self.input.read_exact(&mut word) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(error) => return Err(error),
            }
            let len = u32::from_le_bytes(word);
            if len != LZ4_LEGACY_MAGIC {
                let len = len as usize;
                // Incompressible input grows by at most 1/255 plus a little.
                if len > LZ4_BLOCK + LZ4_BLOCK / 255 + 16 {
                    return Err(io::Error::other("lz4 block length out of range"));
                }
                let mut compressed = vec![0; len];
                self.input.read_exact(&mut compressed)?;
                let mut block = vec![0; LZ4_BLOCK];
                let n = lz4_flex::block::decompress_into(&compressed, &mut block)
                    .map_err(io::Error::other)?;
                block.truncate(n);
                self.block = block;
                self.at = 0;
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for Lz4Legacy<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

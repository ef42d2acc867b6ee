//! Contents a writer places whole in its output that may be larger than
//! memory should hold, like an initrd inside a UKI, on an EFI system
//! partition or on an ISO: bytes in memory, or a span of a file read in
//! place while the output is written.
//!
//! A file is read at each reader's own offset (positional reads, not the
//! file's cursor), so several readers can be open on one file at once, as a
//! FAT volume holding both a UKI and the loose initrd needs.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// How much of a file [`Contents::for_each_piece`] reads at a time.
const PIECE: usize = 256 * 1024;

/// Bytes in memory, or `len` bytes of `file` from `offset`.
#[derive(Debug, Clone, Copy)]
pub enum Contents<'a> {
    Bytes(&'a [u8]),
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

impl<'a> Contents<'a> {
    /// The first `len` bytes of `file`.
    pub fn file(file: &'a File, len: u64) -> Contents<'a> {
        Contents::File {
            file,
            offset: 0,
            len,
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Contents::Bytes(bytes) => bytes.len() as u64,
            Contents::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader from the first byte to the last; a file that turns out
    /// shorter than its span is an [`io::ErrorKind::UnexpectedEof`] error.
    pub fn reader(&self) -> ContentsReader<'a> {
        ContentsReader {
            contents: *self,
            position: 0,
        }
    }
}

impl Contents<'_> {
    /// Passes the contents to `each` in order, in pieces: bytes in memory
    /// whole, a file [`PIECE`] bytes at a time, the last piece shorter.
    /// Every piece but the last is of even length, so sums of 16-bit words
    /// can be taken piece by piece.
    pub fn for_each_piece(&self, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        if let Contents::Bytes(bytes) = self {
            each(bytes);
            return Ok(());
        }
        let mut reader = self.reader();
        let mut buffer = vec![0; PIECE.min(usize::try_from(self.len()).unwrap_or(PIECE))];
        let mut remaining = self.len();
        while remaining > 0 {
            let piece = &mut buffer[..usize::try_from(remaining).map_or(PIECE, |r| r.min(PIECE))];
            reader.read_exact(piece)?;
            each(piece);
            remaining -= piece.len() as u64;
        }
        Ok(())
    }
}

impl<'a> From<&'a [u8]> for Contents<'a> {
    fn from(bytes: &'a [u8]) -> Contents<'a> {
        Contents::Bytes(bytes)
    }
}

/// Reads [`Contents`] front to back; see [`Contents::reader`].
pub struct ContentsReader<'a> {
    contents: Contents<'a>,
    position: u64,
}

impl Read for ContentsReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.contents.len() - self.position;
        let wanted = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        if wanted == 0 {
            return Ok(0);
        }
        let read = match self.contents {
            Contents::Bytes(bytes) => {
                let start = self.position as usize;
                buf[..wanted].copy_from_slice(&bytes[start..start + wanted]);
                wanted
            }
            Contents::File { file, offset, len } => {
                let read = file.read_at(&mut buf[..wanted], offset + self.position)?;
                if read == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file ended after {} of the {len} bytes expected from offset {offset}",
                            self.position
                        ),
                    ));
                }
                read
            }
        };
        self.position += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn read_all(contents: &Contents<'_>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        contents.reader().read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn bytes_read_back_whole() {
        let contents = Contents::from(&b"initrd"[..]);
        assert_eq!(contents.len(), 6);
        assert_eq!(read_all(&contents).unwrap(), b"initrd");
    }

    #[test]
    fn a_file_span_reads_only_its_bytes() {
        let file = file_of(b"0123456789");
        let span = Contents::File {
            file: &file,
            offset: 2,
            len: 5,
        };
        assert_eq!(read_all(&span).unwrap(), b"23456");
        assert_eq!(read_all(&Contents::file(&file, 3)).unwrap(), b"012");
    }

    #[test]
    fn readers_of_one_file_keep_their_own_places() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = file_of(&bytes);
        // Neither the file's cursor nor another reader moves a reader.
        file.seek(SeekFrom::Start(7)).unwrap();
        let contents = Contents::file(&file, bytes.len() as u64);
        let (mut first, mut second) = (contents.reader(), contents.reader());
        let mut head = [0; 1000];
        first.read_exact(&mut head).unwrap();
        let mut whole = Vec::new();
        second.read_to_end(&mut whole).unwrap();
        let mut rest = Vec::new();
        first.read_to_end(&mut rest).unwrap();
        assert_eq!(whole, bytes);
        assert_eq!([&head[..], &rest].concat(), bytes);
    }

    #[test]
    fn a_file_comes_in_even_pieces_in_order() {
        let bytes: Vec<u8> = (0..PIECE as u32 * 2 + 3).map(|i| (i % 253) as u8).collect();
        let file = file_of(&bytes);
        let mut pieces = Vec::new();
        Contents::file(&file, bytes.len() as u64)
            .for_each_piece(|piece| pieces.push(piece.to_vec()))
            .unwrap();
        let lens: Vec<usize> = pieces.iter().map(Vec::len).collect();
        assert_eq!(lens, [PIECE, PIECE, 3]);
        assert_eq!(pieces.concat(), bytes);
    }

    #[test]
    fn a_file_shorter_than_its_span_is_an_error() {
        let file = file_of(b"short");
        let error = read_all(&Contents::file(&file, 10)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            error.to_string().contains("after 5 of the 10 bytes"),
            "{error}"
        );
    }
}

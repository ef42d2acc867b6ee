//! Random access to the bytes being described, and the one bounded way
//! every format reads a structure out of them.
//!
//! A format's describer sees a [`Source`]: the whole file, a partition or
//! file extent inside it ([`Window`]), or a virtual disk's guest view. Every
//! read goes through [`Source::bytes`], which caps the length and fails
//! (returns `None`) past the end, so a corrupt or foreign file can only
//! shorten a breadcrumb, never panic or allocate what a field claims.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The largest structure read at once: a FAT, a group descriptor table, a
/// directory. Anything larger is not described further.
pub(crate) const MAX_READ: u64 = 64 << 20;

/// Bytes readable at any offset.
pub(crate) trait Source {
    /// The length in bytes.
    fn len(&self) -> u64;
    /// Fills `buf` from `offset`; fails when it runs past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// `len` bytes at `offset`, or `None` when they lie outside the source,
    /// exceed [`MAX_READ`] or cannot be read.
    fn bytes(&self, offset: u64, len: u64) -> Option<Vec<u8>> {
        if len > MAX_READ || offset.checked_add(len)? > self.len() {
            return None;
        }
        let mut buf = vec![0; len as usize];
        self.read_at(offset, &mut buf).ok()?;
        Some(buf)
    }
}

/// A file on disk.
pub(crate) struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub(crate) fn new(file: File) -> io::Result<FileSource> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// Bytes held in memory (a decompressed grain, a test image).
impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let part = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

/// A range of another source: a partition, a file's extent.
pub(crate) struct Window<'a> {
    inner: &'a dyn Source,
    start: u64,
    len: u64,
}

impl<'a> Window<'a> {
    /// `len` bytes of `inner` from `start`, clipped to its end.
    pub(crate) fn new(inner: &'a dyn Source, start: u64, len: u64) -> Window<'a> {
        let start = start.min(inner.len());
        let len = len.min(inner.len() - start);
        Window { inner, start, len }
    }
}

impl Source for Window<'_> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match offset.checked_add(buf.len() as u64) {
            Some(end) if end <= self.len => self.inner.read_at(self.start + offset, buf),
            _ => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Fixed-width integers at byte offsets of a structure; a field past the
/// structure's end reads as 0, which every caller treats as "absent".
pub(crate) trait Fields {
    fn le16(&self, at: usize) -> u16;
    fn le32(&self, at: usize) -> u32;
    fn le64(&self, at: usize) -> u64;
    fn be32(&self, at: usize) -> u32;
    fn be64(&self, at: usize) -> u64;
    fn byte(&self, at: usize) -> u8;
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    at.checked_add(N)
        .and_then(|end| bytes.get(at..end))
        .and_then(|part| part.try_into().ok())
        .unwrap_or([0; N])
}

impl Fields for [u8] {
    fn le16(&self, at: usize) -> u16 {
        u16::from_le_bytes(array(self, at))
    }
    fn le32(&self, at: usize) -> u32 {
        u32::from_le_bytes(array(self, at))
    }
    fn le64(&self, at: usize) -> u64 {
        u64::from_le_bytes(array(self, at))
    }
    fn be32(&self, at: usize) -> u32 {
        u32::from_be_bytes(array(self, at))
    }
    fn be64(&self, at: usize) -> u64 {
        u64::from_be_bytes(array(self, at))
    }
    fn byte(&self, at: usize) -> u8 {
        self.get(at).copied().unwrap_or(0)
    }
}

/// `bytes` up to the first NUL, as text.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

//! The image being written: buffered, written by absolute block position,
//! and aware of how far it reaches, so that it can be padded to its size
//! without asking the output for its length (an output inside a larger
//! disk image has its own idea of where it ends).

use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use super::geometry::BLOCK_SIZE;

/// Output buffer.
const BUFFER: usize = 1 << 20;

/// An output positioned by block.
pub struct Output<W: Write + Seek> {
    inner: BufWriter<W>,
    position: u64,
    end: u64,
}

impl<W: Write + Seek> Output<W> {
    /// Writes to `inner`, whose position 0 is the image's first byte.
    pub fn new(inner: W) -> Self {
        Output {
            inner: BufWriter::with_capacity(BUFFER, inner),
            position: 0,
            end: 0,
        }
    }

    /// Moves to byte `offset` of the image.
    pub fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        if offset != self.position {
            self.inner.seek(SeekFrom::Start(offset))?;
            self.position = offset;
        }
        Ok(())
    }

    /// Writes `bytes` at block `block`.
    pub fn write_at(&mut self, block: u64, bytes: &[u8]) -> io::Result<()> {
        self.seek_to(block * BLOCK_SIZE)?;
        self.write_all(bytes)
    }

    /// Makes the image `len` bytes long if nothing was written that far,
    /// and returns the output.
    pub fn finish(mut self, len: u64) -> io::Result<W> {
        if self.end < len {
            self.seek_to(len - 1)?;
            self.write_all(&[0])?;
        }
        self.inner.into_inner().map_err(|error| error.into_error())
    }
}

impl<W: Write + Seek> Write for Output<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.position += written as u64;
        self.end = self.end.max(self.position);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

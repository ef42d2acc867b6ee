//! Archives read front to back: tar and cpio name an offset by walking
//! their entries from the start, whether they lie in a file or come out of
//! a decompressor.

use std::io::{self, Read};

use super::source::Source;

/// A stream that can skip ahead; its position is the caller's to count.
pub(crate) trait Sequential {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()>;
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

/// A source read front to back; skipping is free.
pub(crate) struct SourceStream<'a> {
    pub source: &'a dyn Source,
    pub position: u64,
}

impl Sequential for SourceStream<'_> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.source.read_at(self.position, buf)?;
        self.position += buf.len() as u64;
        Ok(())
    }
    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.position = self.position.saturating_add(n);
        Ok(())
    }
}

/// A decompressed stream; skipping reads through.
pub(crate) struct ReadStream<R>(pub R);

impl<R: Read> Sequential for ReadStream<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf)
    }
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let skipped = io::copy(&mut (&mut self.0).take(n), &mut io::sink())?;
        if skipped == n {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }
}

/// A source as a `Read`, for decoders.
pub(crate) struct SourceReader<'a> {
    pub source: &'a dyn Source,
    pub position: u64,
}

impl Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.source.len().saturating_sub(self.position);
        let n = (buf.len() as u64).min(left) as usize;
        self.source.read_at(self.position, &mut buf[..n])?;
        self.position += n as u64;
        Ok(n)
    }
}

//! A raw disk image read chunk by chunk: the input every virtual-disk
//! container (qcow2, VHD, VMDK) is converted from.
//!
//! Chunks are read by offset, so a multi-GiB image costs one chunk of
//! memory, and an all-zero chunk is reported as such so that containers can
//! leave it unallocated.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use thiserror::Error;

/// The sector size disk sizes must be a multiple of.
const SECTOR: u64 = 512;
/// How much of the image [`RawImage::copy_to`] holds in memory at once.
const COPY_CHUNK: usize = 1 << 20;

/// Converting a raw disk image to a container format failed.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// Reading the raw image failed.
    #[error("reading the raw disk image failed at byte {offset}")]
    Read {
        /// Where the read started.
        offset: u64,
        /// The I/O error.
        source: io::Error,
    },
    /// Writing the container failed.
    #[error("writing the {format} image failed (is the output's disk full?)")]
    Write {
        /// The container format.
        format: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// The raw image's size is no whole number of sectors, or zero.
    #[error(
        "the raw disk image is {0} bytes, not a non-zero multiple of 512; pad it to whole sectors"
    )]
    Size(u64),
    /// The raw image is larger than the format can describe.
    #[error(
        "the raw disk image is {size} bytes, more than a {format} image holds ({max} bytes); use qcow2, which has no such limit"
    )]
    TooLarge {
        /// The container format.
        format: &'static str,
        /// The image's size.
        size: u64,
        /// The format's limit.
        max: u64,
    },
}

impl ConvertError {
    /// A write error for `format`, as a closure for `map_err`.
    pub(crate) fn write(format: &'static str) -> impl Fn(io::Error) -> ConvertError {
        move |source| ConvertError::Write { format, source }
    }
}

/// A raw disk image file.
#[derive(Debug, Clone, Copy)]
pub struct RawImage<'a> {
    file: &'a File,
    size: u64,
}

impl<'a> RawImage<'a> {
    /// The image in `file`, whose length must be a non-zero multiple of 512.
    pub fn new(file: &'a File) -> Result<RawImage<'a>, ConvertError> {
        let size = file
            .metadata()
            .map_err(|source| ConvertError::Read { offset: 0, source })?
            .len();
        if size == 0 || !size.is_multiple_of(SECTOR) {
            return Err(ConvertError::Size(size));
        }
        Ok(RawImage { file, size })
    }

    /// The image's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many chunks of `chunk_size` bytes cover the image (the last may
    /// be partial).
    pub fn chunk_count(&self, chunk_size: usize) -> u64 {
        self.size.div_ceil(chunk_size as u64)
    }

    /// Reads chunk `index` (of `buffer.len()` bytes) into `buffer`, zero-filled
    /// past the image's end, and tells whether it holds any non-zero byte.
    pub fn read_chunk(&self, index: u64, buffer: &mut [u8]) -> Result<bool, ConvertError> {
        let offset = index * buffer.len() as u64;
        let available = usize::try_from(self.size.saturating_sub(offset))
            .map_or(buffer.len(), |left| left.min(buffer.len()));
        let (data, past_end) = buffer.split_at_mut(available);
        past_end.fill(0);
        if self.is_hole(offset, available as u64) {
            data.fill(0);
            return Ok(false);
        }
        self.file
            .read_exact_at(data, offset)
            .map_err(|source| ConvertError::Read { offset, source })?;
        Ok(!super::is_zero(data))
    }

    /// Whether the filesystem says `len` bytes at `offset` are a hole, so a
    /// multi-GiB disk that is mostly free space need not be read. `false`
    /// whenever it cannot tell (the bytes are then read and checked).
    fn is_hole(&self, offset: u64, len: u64) -> bool {
        use std::os::fd::AsRawFd;
        let Ok(start) = libc::off_t::try_from(offset) else {
            return false;
        };
        // SAFETY: lseek only reads the descriptor, which `self.file` keeps
        // open; moving its offset is harmless as every read here is
        // positioned (pread).
        let data = unsafe { libc::lseek(self.file.as_raw_fd(), start, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: no data from `offset` to the end of the file.
            return io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
        }
        data as u64 >= offset + len
    }

    /// Writes the whole image to `out`, in order, as part of a `format`
    /// output. A sink that turns runs of zeros into holes keeps it sparse.
    pub fn copy_to<W: Write + ?Sized>(
        &self,
        out: &mut W,
        format: &'static str,
    ) -> Result<(), ConvertError> {
        let mut chunk = vec![0; COPY_CHUNK];
        for index in 0..self.chunk_count(COPY_CHUNK) {
            self.read_chunk(index, &mut chunk)?;
            let offset = index * COPY_CHUNK as u64;
            let len = (self.size - offset).min(COPY_CHUNK as u64) as usize;
            out.write_all(&chunk[..len])
                .map_err(ConvertError::write(format))?;
        }
        Ok(())
    }

    /// For each chunk of `chunk_size` bytes, whether it holds any non-zero
    /// byte: one sequential pass, for formats whose tables precede the data.
    pub fn allocated_chunks(&self, chunk_size: usize) -> Result<Vec<bool>, ConvertError> {
        let mut buffer = vec![0; chunk_size];
        (0..self.chunk_count(chunk_size))
            .map(|index| self.read_chunk(index, &mut buffer))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_zero_padded_and_classified() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(3 * 512).unwrap();
        file.write_all_at(&[7], 3 * 512 - 1).unwrap();
        let image = RawImage::new(&file).unwrap();
        assert_eq!(image.chunk_count(1024), 2);
        assert_eq!(image.allocated_chunks(1024).unwrap(), [false, true]);
        let mut buffer = vec![0xAA; 1024];
        assert!(image.read_chunk(1, &mut buffer).unwrap());
        assert_eq!(buffer[511], 7);
        assert!(buffer[512..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn sizes_not_in_whole_sectors_are_refused() {
        let file = tempfile::tempfile().unwrap();
        assert!(matches!(RawImage::new(&file), Err(ConvertError::Size(0))));
        file.set_len(513).unwrap();
        assert!(matches!(RawImage::new(&file), Err(ConvertError::Size(513))));
    }
}

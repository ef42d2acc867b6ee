//! File contents of a [`Tree`](super::Tree), kept apart from its metadata.
//!
//! A root filesystem can be far larger than the memory ossify may use, so only
//! small contents stay in memory, packed into fixed-size chunks (no per-file
//! allocation, no reallocation copies). Everything else is appended to an
//! unlinked temporary file and read back by offset, leaving the data to the
//! kernel's page cache. Nothing is ever freed: a tree lives for one build.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use thiserror::Error;

use super::read_up_to;

/// Contents up to this size may stay in memory.
pub(super) const SMALL_CONTENTS: u64 = 16 * 1024;
/// Size of one in-memory chunk; a small blob never spans two.
const CHUNK_SIZE: usize = 1024 * 1024;
/// The buffer spilled contents pass through: few, large writes.
const SPILL_BUFFER: usize = 256 * 1024;
/// In-memory contents stop growing here; later small contents are spilled too.
const MEMORY_BUDGET: usize = 64 * 1024 * 1024;

/// Contents could not be stored: reading them failed, or writing them to
/// the arena's temporary file did.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The reader handed over failed.
    #[error("cannot read the contents")]
    Read(#[source] io::Error),
    /// The temporary file in `$TMPDIR` could not be created or written.
    #[error("cannot write file contents to ossify's temporary file in $TMPDIR")]
    Spill(#[source] io::Error),
}

impl From<StoreError> for io::Error {
    fn from(error: StoreError) -> io::Error {
        match error {
            StoreError::Read(error) | StoreError::Spill(error) => error,
        }
    }
}

/// A handle to contents stored in an [`Arena`]; cheap to copy.
///
/// A blob is only meaningful for the arena (and so the tree) that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    location: Location,
    len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Memory { chunk: u32, offset: u32 },
    Spilled { file: u32, offset: u64 },
}

impl Blob {
    /// The number of bytes stored.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Told of each blob as it is spilled, so that work on file contents (an
/// initrd's compression) can run while later layers are still being read.
pub trait SpillWatcher: Send {
    /// `len` bytes at `offset` of `file` now hold one file's contents, and
    /// will not change.
    fn spilled(&mut self, file: &File, offset: u64, len: u64);
}

/// Storage for file contents: small ones in memory, large ones in temp files.
#[derive(Debug, Default)]
pub struct Arena {
    chunks: Vec<Vec<u8>>,
    memory_used: usize,
    spill_files: Vec<SpillFile>,
    /// Where spilled contents pass on their way to the file; allocated once.
    spill_buffer: Vec<u8>,
    watcher: Option<Watcher>,
}

/// A [`SpillWatcher`], in a type the arena can print.
struct Watcher(Box<dyn SpillWatcher>);

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpillWatcher")
    }
}

#[derive(Debug)]
struct SpillFile {
    file: File,
    len: u64,
    /// Whether contents may be appended: not to a file attached with
    /// [`Arena::attach`], which belongs to someone else.
    writable: bool,
}

/// How to move blobs of an absorbed arena to their new place.
#[derive(Debug, Clone, Copy)]
pub struct Relocation {
    chunk_base: u32,
    file_base: u32,
}

impl Relocation {
    /// The blob in the absorbing arena that holds the same bytes.
    pub fn apply(&self, blob: Blob) -> Blob {
        let location = match blob.location {
            Location::Memory { chunk, offset } => Location::Memory {
                chunk: chunk + self.chunk_base,
                offset,
            },
            Location::Spilled { file, offset } => Location::Spilled {
                file: file + self.file_base,
                offset,
            },
        };
        Blob { location, ..blob }
    }
}

impl Arena {
    /// Stores at most `size` bytes read from `contents`, streaming them.
    ///
    /// `size` is trusted only as an upper bound: nothing is allocated from it,
    /// so a header claiming a terabyte with a short stream costs nothing. The
    /// returned blob's length is what was actually read; a caller expecting
    /// exactly `size` bytes compares the two.
    pub fn store(&mut self, contents: impl Read, size: u64) -> Result<Blob, StoreError> {
        let mut contents = contents.take(size);
        if size <= SMALL_CONTENTS && self.memory_used + CHUNK_SIZE <= MEMORY_BUDGET {
            return self.store_in_memory(&mut contents, size as usize);
        }
        self.store_spilled(&mut contents)
    }

    fn store_in_memory(
        &mut self,
        contents: &mut impl Read,
        size: usize,
    ) -> Result<Blob, StoreError> {
        let fits = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.capacity() - chunk.len() >= size);
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK_SIZE));
            self.memory_used += CHUNK_SIZE;
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_index];
        let offset = chunk.len();
        // Fill in place rather than with `read_to_end`, which may grow (and
        // so reallocate and copy) the chunk.
        chunk.resize(offset + size, 0);
        let filled = match read_up_to(contents, &mut chunk[offset..]) {
            Ok(filled) => filled,
            Err(error) => {
                chunk.truncate(offset);
                return Err(StoreError::Read(error));
            }
        };
        chunk.truncate(offset + filled);
        Ok(Blob {
            location: Location::Memory {
                chunk: chunk_index as u32,
                offset: offset as u32,
            },
            len: filled as u64,
        })
    }

    fn store_spilled(&mut self, contents: &mut impl Read) -> Result<Blob, StoreError> {
        if self.spill_files.last().is_none_or(|spill| !spill.writable) {
            self.spill_files.push(SpillFile {
                file: tempfile::tempfile().map_err(StoreError::Spill)?,
                len: 0,
                writable: true,
            });
        }
        let file_index = self.spill_files.len() - 1;
        let spill = &mut self.spill_files[file_index];
        let offset = spill.len;
        if self.spill_buffer.is_empty() {
            self.spill_buffer = vec![0; SPILL_BUFFER];
        }
        let mut copied = 0;
        if let Err(error) = copy_to_spill(
            contents,
            &spill.file,
            offset,
            &mut self.spill_buffer,
            &mut copied,
        ) {
            // Keep the append position where the file really ends: a write
            // may have failed part-way.
            spill.len = spill.file.metadata().map_err(StoreError::Spill)?.len();
            return Err(error);
        }
        spill.len += copied;
        if let Some(Watcher(watcher)) = &mut self.watcher {
            watcher.spilled(&spill.file, offset, copied);
        }
        Ok(Blob {
            location: Location::Spilled {
                file: file_index as u32,
                offset,
            },
            len: copied,
        })
    }

    /// Makes the bytes of `file`, which must not change while the arena
    /// lives, available to [`Arena::reference`]; returns its number.
    pub fn attach(&mut self, file: File) -> u32 {
        self.spill_files.push(SpillFile {
            file,
            len: 0,
            writable: false,
        });
        (self.spill_files.len() - 1) as u32
    }

    /// A blob of the `len` bytes at `offset` of the attached file `file`,
    /// which already holds them: nothing is copied.
    pub fn reference(&mut self, file: u32, offset: u64, len: u64) -> Blob {
        let spill = &mut self.spill_files[file as usize];
        spill.len = spill.len.max(offset + len);
        if let Some(Watcher(watcher)) = &mut self.watcher {
            watcher.spilled(&spill.file, offset, len);
        }
        Blob {
            location: Location::Spilled { file, offset },
            len,
        }
    }

    /// Tells `watcher` of every blob spilled from now on.
    pub fn watch(&mut self, watcher: Box<dyn SpillWatcher>) {
        self.watcher = Some(Watcher(watcher));
    }

    /// A reader over a blob's bytes.
    pub fn open(&self, blob: &Blob) -> BlobReader<'_> {
        match blob.location {
            Location::Memory { chunk, offset } => {
                let start = offset as usize;
                let bytes = &self.chunks[chunk as usize][start..start + blob.len as usize];
                BlobReader::Memory(bytes)
            }
            Location::Spilled { file, offset } => BlobReader::Spilled {
                file: &self.spill_files[file as usize].file,
                position: offset,
                end: offset + blob.len,
            },
        }
    }

    /// Takes over another arena's storage without copying any spilled bytes.
    ///
    /// Blobs of `other` stay valid once passed through the returned
    /// [`Relocation`]. The absorbed spill files are appended after this
    /// arena's current one, so later stores go to a file of `other`; that is
    /// harmless, each file only ever grows at its end.
    pub fn absorb(&mut self, other: Arena) -> Relocation {
        let relocation = Relocation {
            chunk_base: self.chunks.len() as u32,
            file_base: self.spill_files.len() as u32,
        };
        self.memory_used += other.memory_used;
        self.chunks.extend(other.chunks);
        self.spill_files.extend(other.spill_files);
        relocation
    }
}

/// Appends everything `contents` holds to `file` from `start` through
/// `buffer`, in large writes, counting the bytes in `copied`. Buffers of
/// zeros are skipped, not written, leaving holes: a sparse file in a layer
/// (a disk image, say) costs neither disk space nor write time.
fn copy_to_spill(
    contents: &mut impl Read,
    file: &File,
    start: u64,
    buffer: &mut [u8],
    copied: &mut u64,
) -> Result<(), StoreError> {
    loop {
        let read = read_up_to(contents, buffer).map_err(StoreError::Read)?;
        if read == 0 {
            break;
        }
        if !crate::write::is_zero(&buffer[..read]) {
            file.write_all_at(&buffer[..read], start + *copied)
                .map_err(StoreError::Spill)?;
        }
        *copied += read as u64;
    }
    let end = start + *copied;
    if file.metadata().map_err(StoreError::Spill)?.len() < end {
        file.set_len(end).map_err(StoreError::Spill)?;
    }
    Ok(())
}

/// Reads one blob; spilled blobs are read by offset, so many readers of the
/// same arena can coexist.
#[derive(Debug)]
pub enum BlobReader<'a> {
    /// Contents held in memory.
    Memory(&'a [u8]),
    /// Contents in a spill file, between `position` and `end`.
    Spilled {
        /// The spill file.
        file: &'a File,
        /// The next byte to read.
        position: u64,
        /// One past the blob's last byte.
        end: u64,
    },
}

impl BlobReader<'_> {
    /// Copies the rest of the blob to `out`, with no intermediate copy for
    /// in-memory contents.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<u64> {
        match self {
            BlobReader::Memory(bytes) => {
                out.write_all(bytes)?;
                let written = bytes.len() as u64;
                *bytes = &[];
                Ok(written)
            }
            BlobReader::Spilled { .. } => io::copy(self, out),
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            BlobReader::Memory(bytes) => bytes.read(buf),
            BlobReader::Spilled {
                file,
                position,
                end,
            } => {
                let wanted = buf.len().min((*end - *position) as usize);
                if wanted == 0 {
                    return Ok(0);
                }
                let read = file.read_at(&mut buf[..wanted], *position)?;
                if read == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the arena's spill file is shorter than a blob in it",
                    ));
                }
                *position += read as u64;
                Ok(read)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(arena: &Arena, blob: &Blob) -> Vec<u8> {
        let mut bytes = Vec::new();
        arena.open(blob).read_to_end(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn small_and_large_contents_read_back() {
        let mut arena = Arena::default();
        let small = b"hello".to_vec();
        let large: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let small_blob = arena.store(&small[..], small.len() as u64).unwrap();
        let large_blob = arena.store(&large[..], large.len() as u64).unwrap();
        assert!(matches!(small_blob.location, Location::Memory { .. }));
        assert!(matches!(large_blob.location, Location::Spilled { .. }));
        assert_eq!(read_all(&arena, &small_blob), small);
        assert_eq!(read_all(&arena, &large_blob), large);
    }

    #[test]
    fn size_bounds_the_read_and_short_streams_are_reported_by_length() {
        let mut arena = Arena::default();
        let blob = arena.store(&b"abcdef"[..], 3).unwrap();
        assert_eq!(read_all(&arena, &blob), b"abc");
        let claimed = 1 << 40;
        let short = arena.store(&b"tiny"[..], claimed).unwrap();
        assert_eq!(short.len(), 4);
        assert_eq!(read_all(&arena, &short), b"tiny");
    }

    /// Yields `good` bytes, then fails.
    struct Failing {
        good: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.good == 0 {
                return Err(io::Error::other("the disk is gone"));
            }
            let read = buf.len().min(self.good);
            buf[..read].fill(1);
            self.good -= read;
            Ok(read)
        }
    }

    #[test]
    fn a_failing_reader_is_a_read_error_and_later_blobs_are_intact() {
        let mut arena = Arena::default();
        for (size, good) in [(100, 10), (1 << 20, 300_000)] {
            let error = arena.store(Failing { good }, size).unwrap_err();
            assert!(matches!(error, StoreError::Read(_)), "{error:?}");
        }
        let large = vec![5u8; 100_000];
        let blob = arena.store(&large[..], large.len() as u64).unwrap();
        assert_eq!(read_all(&arena, &blob), large);
    }

    #[test]
    fn absorbed_blobs_stay_readable() {
        let mut first = Arena::default();
        let mut second = Arena::default();
        let large = vec![7u8; 100_000];
        let a = first.store(&b"first"[..], 5).unwrap();
        let b = second.store(&b"second"[..], 6).unwrap();
        let c = second.store(&large[..], large.len() as u64).unwrap();
        let relocation = first.absorb(second);
        assert_eq!(read_all(&first, &a), b"first");
        assert_eq!(read_all(&first, &relocation.apply(b)), b"second");
        assert_eq!(read_all(&first, &relocation.apply(c)), large);
    }
}

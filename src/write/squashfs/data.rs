//! File contents: whole blocks written in order after the superblock, each
//! compressed on its own (or stored as it is when that is no smaller, or
//! left out as a hole when all zero), and tails packed into shared fragment
//! blocks in the order files are met.
//!
//! Blocks of many files, and full fragment blocks, are queued and
//! compressed together on every thread, so small files (most of a root's
//! bytes are in tails) keep every core busy too. Where a block lands is
//! known only once the blocks before it are compressed, so a file's
//! [`FileData`] is complete after [`DataWriter::finish`].

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crate::write::is_zero;

use super::Compression;

/// Size-word bit marking a data or fragment block stored uncompressed.
const UNCOMPRESSED: u32 = 1 << 24;
/// Input bytes queued per compressing thread before the queue is
/// compressed: enough blocks to even out their costs, few enough to bound
/// memory (8 MiB at 8 threads of 1 MiB blocks).
const QUEUE_PER_THREAD: usize = 1 << 20;

/// Where a file's contents went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct FileData {
    /// The file's length.
    pub size: u64,
    /// Absolute offset of its first stored block.
    pub start: u64,
    /// One size word per whole block (and per all-zero tail): the stored
    /// length, [`UNCOMPRESSED`] when stored as it is, 0 for a hole.
    pub blocks: Vec<u32>,
    /// The fragment block holding its tail, and the tail's offset in it.
    pub fragment: Option<(u32, u32)>,
    /// Bytes left out as holes.
    pub sparse: u64,
}

/// A block as it goes into the image.
enum Stored {
    Hole,
    Raw,
    Compressed(Vec<u8>),
}

/// What waits in the queue, in image order.
enum Job {
    /// File `index` starts here: its `start` is the offset reached.
    Start(usize),
    /// A whole block, or an all-zero tail, of file `index`.
    Block(usize, Vec<u8>),
    /// A full fragment block.
    Fragment(Vec<u8>),
}

/// Where [`DataWriter`] put everything.
pub(super) struct Written {
    /// Absolute offset after the last block.
    pub end: u64,
    /// Each file's data, in the order they were written.
    pub files: Vec<FileData>,
    /// The fragment table's entries.
    pub fragments: Vec<u8>,
    pub fragment_count: u32,
}

/// Writes file contents and fragment blocks to `out`, which is at absolute
/// offset `position`.
pub(super) struct DataWriter<W> {
    out: W,
    position: u64,
    compression: Compression,
    block_size: u32,
    threads: NonZeroUsize,
    files: Vec<FileData>,
    queue: Vec<Job>,
    queued_bytes: usize,
    fragment: Vec<u8>,
    fragments: Vec<u8>,
    fragment_count: u32,
}

impl<W: Write> DataWriter<W> {
    pub fn new(
        out: W,
        position: u64,
        compression: Compression,
        block_size: u32,
        threads: NonZeroUsize,
    ) -> Self {
        DataWriter {
            out,
            position,
            compression,
            block_size,
            threads,
            files: Vec::new(),
            queue: Vec::new(),
            queued_bytes: 0,
            fragment: Vec::with_capacity(block_size as usize),
            fragments: Vec::new(),
            fragment_count: 0,
        }
    }

    /// Writes the `size` bytes of `contents`; fails if it holds fewer.
    /// The file's data is the next one in [`Written::files`].
    pub fn write_file(&mut self, mut contents: impl Read, size: u64) -> io::Result<()> {
        let index = self.files.len();
        self.files.push(FileData {
            size,
            ..FileData::default()
        });
        self.push(Job::Start(index))?;
        let block = u64::from(self.block_size);
        for _ in 0..size / block {
            let mut buffer = vec![0; self.block_size as usize];
            contents.read_exact(&mut buffer)?;
            self.push(Job::Block(index, buffer))?;
        }
        let mut tail = vec![0; (size % block) as usize];
        contents.read_exact(&mut tail)?;
        if is_zero(&tail) {
            if !tail.is_empty() {
                self.push(Job::Block(index, tail))?;
            }
        } else {
            if self.fragment.len() + tail.len() > self.block_size as usize {
                self.queue_fragment()?;
            }
            self.files[index].fragment = Some((self.fragment_count, self.fragment.len() as u32));
            self.fragment.extend_from_slice(&tail);
        }
        Ok(())
    }

    /// Stores the queue and the last fragment block; returns the output.
    pub fn finish(mut self) -> io::Result<(W, Written)> {
        if !self.fragment.is_empty() {
            self.queue_fragment()?;
        }
        self.flush_queue()?;
        let written = Written {
            end: self.position,
            files: self.files,
            fragments: self.fragments,
            fragment_count: self.fragment_count,
        };
        Ok((self.out, written))
    }

    fn queue_fragment(&mut self) -> io::Result<()> {
        let full = std::mem::replace(
            &mut self.fragment,
            Vec::with_capacity(self.block_size as usize),
        );
        self.fragment_count += 1;
        self.push(Job::Fragment(full))
    }

    /// Queues `job`; compresses and writes the queue once it holds
    /// [`QUEUE_PER_THREAD`] bytes per thread.
    fn push(&mut self, job: Job) -> io::Result<()> {
        if let Job::Block(_, bytes) | Job::Fragment(bytes) = &job {
            self.queued_bytes += bytes.len();
        }
        self.queue.push(job);
        if self.queued_bytes >= QUEUE_PER_THREAD * self.threads.get() {
            self.flush_queue()?;
        }
        Ok(())
    }

    /// Compresses the queued blocks on up to `threads` threads, then writes
    /// them in order and records where each went.
    fn flush_queue(&mut self) -> io::Result<()> {
        let queue = std::mem::take(&mut self.queue);
        self.queued_bytes = 0;
        let mut stored = self.store_all(&queue)?.into_iter();
        for job in queue {
            match job {
                Job::Start(index) => self.files[index].start = self.position,
                Job::Block(index, bytes) => {
                    let word = match stored.next().expect("one result per block") {
                        Stored::Hole => {
                            self.files[index].sparse += bytes.len() as u64;
                            0
                        }
                        Stored::Raw => self.emit(&bytes, UNCOMPRESSED)?,
                        Stored::Compressed(compressed) => self.emit(&compressed, 0)?,
                    };
                    self.files[index].blocks.push(word);
                }
                Job::Fragment(bytes) => {
                    let start = self.position;
                    let word = match stored.next().expect("one result per block") {
                        Stored::Compressed(compressed) => self.emit(&compressed, 0)?,
                        Stored::Raw | Stored::Hole => self.emit(&bytes, UNCOMPRESSED)?,
                    };
                    self.fragments.extend_from_slice(&start.to_le_bytes());
                    self.fragments.extend_from_slice(&word.to_le_bytes());
                    self.fragments.extend_from_slice(&0u32.to_le_bytes());
                }
            }
        }
        Ok(())
    }

    /// How each block of `queue` is stored, in queue order; threads take
    /// the next block as they come free. Each result depends only on its
    /// block's bytes. Data blocks of zeros become holes; fragment blocks
    /// never do (they hold non-zero tails).
    fn store_all(&self, queue: &[Job]) -> io::Result<Vec<Stored>> {
        let blocks: Vec<(&[u8], bool)> = queue
            .iter()
            .filter_map(|job| match job {
                Job::Start(_) => None,
                Job::Block(_, bytes) => Some((&bytes[..], true)),
                Job::Fragment(bytes) => Some((&bytes[..], false)),
            })
            .collect();
        let (compression, block_size) = (self.compression, self.block_size);
        let store = move |(block, may_be_hole): (&[u8], bool)| -> io::Result<Stored> {
            if may_be_hole && is_zero(block) {
                return Ok(Stored::Hole);
            }
            Ok(match compression.compress(block, block_size)? {
                Some(compressed) => Stored::Compressed(compressed),
                None => Stored::Raw,
            })
        };
        let threads = self.threads.get().min(blocks.len());
        if threads <= 1 {
            return blocks.into_iter().map(store).collect();
        }
        let next = AtomicUsize::new(0);
        let mut done: Vec<(usize, io::Result<Stored>)> = thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&block) = blocks.get(index) else {
                                return done;
                            };
                            done.push((index, store(block)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a compressing thread panicked"))
                .collect()
        });
        done.sort_unstable_by_key(|&(index, _)| index);
        done.into_iter().map(|(_, stored)| stored).collect()
    }

    /// Writes `bytes` and returns their size word.
    fn emit(&mut self, bytes: &[u8], flag: u32) -> io::Result<u32> {
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        // A block is at most 1 MiB, below the flag bit.
        Ok(bytes.len() as u32 | flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(threads: usize) -> DataWriter<Vec<u8>> {
        DataWriter::new(
            Vec::new(),
            96,
            Compression::Gzip,
            4096,
            NonZeroUsize::new(threads).unwrap(),
        )
    }

    fn text(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"squashfs "[i % 9] ^ (i / 4096) as u8)
            .collect()
    }

    /// The writer's output and what it says about its files.
    type Result = (Vec<u8>, u64, Vec<FileData>, Vec<u8>, u32);

    fn finish(data: DataWriter<Vec<u8>>) -> Result {
        let (out, written) = data.finish().unwrap();
        (
            out,
            written.end,
            written.files,
            written.fragments,
            written.fragment_count,
        )
    }

    #[test]
    fn blocks_holes_and_tails() {
        let mut contents = text(4096);
        contents.extend_from_slice(&[0; 4096]);
        contents.extend_from_slice(&text(100));
        let mut data = writer(1);
        data.write_file(&contents[..], contents.len() as u64)
            .unwrap();
        data.write_file(&text(50)[..], 50).unwrap();
        data.write_file(&[0u8; 10][..], 10).unwrap();
        let (out, end, files, fragments, count) = finish(data);
        let [file, second, zeros] = &files[..] else {
            panic!("three files: {files:?}")
        };
        assert_eq!(file.start, 96);
        assert_eq!(file.blocks.len(), 2);
        assert!(file.blocks[0] > 0 && file.blocks[0] < 4096, "compressed");
        assert_eq!(file.blocks[1], 0, "hole");
        assert_eq!(file.sparse, 4096);
        assert_eq!(file.fragment, Some((0, 0)));

        assert_eq!(second.fragment, Some((0, 100)), "tails share a block");
        assert!(second.blocks.is_empty());
        assert_eq!(second.start, 96 + u64::from(file.blocks[0]));

        assert_eq!((&zeros.blocks, zeros.fragment), (&vec![0], None));

        assert_eq!(count, 1);
        assert_eq!(end, 96 + out.len() as u64);
        assert_eq!(fragments.len(), 16, "start, size word, unused");
        let start = u64::from_le_bytes(fragments[..8].try_into().unwrap());
        assert_eq!(start, 96 + u64::from(file.blocks[0]));
    }

    #[test]
    fn a_full_fragment_block_starts_another() {
        let mut data = writer(1);
        data.write_file(&text(3000)[..], 3000).unwrap();
        data.write_file(&text(3000)[..], 3000).unwrap();
        let (_, _, files, _, count) = finish(data);
        assert_eq!(files[0].fragment, Some((0, 0)));
        assert_eq!(files[1].fragment, Some((1, 0)));
        assert_eq!(count, 2);
    }

    #[test]
    fn short_contents_fail() {
        let err = writer(1).write_file(&[1u8; 10][..], 11).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Files of many sizes, about 3 MiB in all: the queue is compressed
    /// several times, between and inside files, with blocks of several
    /// files and fragment blocks in one go.
    #[test]
    fn thread_count_does_not_change_the_bytes() {
        let sizes: Vec<usize> = (0..400).map(|i| (i * 7919) % (4 * 4096) + 1).collect();
        let results: Vec<Result> = [1, 2, 3, 8]
            .into_iter()
            .map(|threads| {
                let mut data = writer(threads);
                for &size in &sizes {
                    data.write_file(&text(size)[..], size as u64).unwrap();
                }
                finish(data)
            })
            .collect();
        let (out, end, files, _, count) = &results[0];
        let input: usize = sizes.iter().sum();
        assert!(input > 2 << 20 && *count > 100, "several queues' worth");
        assert_eq!(*end, 96 + out.len() as u64);
        assert!(files.windows(2).all(|pair| pair[0].start <= pair[1].start));
        assert!(results.windows(2).all(|pair| pair[0] == pair[1]));
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let mut state = 1u32;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as u8
            })
            .collect();
        let mut data = writer(1);
        data.write_file(&noise[..], 4096).unwrap();
        assert_eq!(finish(data).2[0].blocks, vec![4096 | UNCOMPRESSED]);
    }
}

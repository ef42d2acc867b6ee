//! File contents: whole blocks written in order after the superblock, each
//! compressed on its own (or stored as it is when that is no smaller, or
//! left out as a hole when all zero), and tails packed into shared fragment
//! blocks in the order files are met.

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::thread;

use crate::write::is_zero;

use super::Compression;

/// Size-word bit marking a data or fragment block stored uncompressed.
const UNCOMPRESSED: u32 = 1 << 24;

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

/// Writes file contents and fragment blocks to `out`, which is at absolute
/// offset `position`.
pub(super) struct DataWriter<W> {
    out: W,
    position: u64,
    compression: Compression,
    block_size: u32,
    threads: NonZeroUsize,
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
            fragment: Vec::with_capacity(block_size as usize),
            fragments: Vec::new(),
            fragment_count: 0,
        }
    }

    /// Writes the `size` bytes of `contents`; fails if it holds fewer.
    pub fn write_file(&mut self, mut contents: impl Read, size: u64) -> io::Result<FileData> {
        let block = u64::from(self.block_size);
        let mut data = FileData {
            size,
            start: self.position,
            ..FileData::default()
        };
        let mut whole_blocks = size / block;
        while whole_blocks > 0 {
            let batch = whole_blocks.min(self.threads.get() as u64) as usize;
            let mut buffers = Vec::with_capacity(batch);
            for _ in 0..batch {
                let mut buffer = vec![0; self.block_size as usize];
                contents.read_exact(&mut buffer)?;
                buffers.push(buffer);
            }
            for (buffer, stored) in buffers.iter().zip(self.store_all(&buffers)?) {
                self.put_block(&mut data, buffer, stored)?;
            }
            whole_blocks -= batch as u64;
        }
        let mut tail = vec![0; (size % block) as usize];
        contents.read_exact(&mut tail)?;
        if is_zero(&tail) {
            if !tail.is_empty() {
                self.put_block(&mut data, &tail, Stored::Hole)?;
            }
        } else {
            if self.fragment.len() + tail.len() > self.block_size as usize {
                self.flush_fragment()?;
            }
            data.fragment = Some((self.fragment_count, self.fragment.len() as u32));
            self.fragment.extend_from_slice(&tail);
        }
        Ok(data)
    }

    /// Stores the last fragment block; returns the output, its absolute
    /// offset, the fragment table's entries and their count.
    pub fn finish(mut self) -> io::Result<(W, u64, Vec<u8>, u32)> {
        if !self.fragment.is_empty() {
            self.flush_fragment()?;
        }
        Ok((self.out, self.position, self.fragments, self.fragment_count))
    }

    /// How each of `blocks` is stored, compressed on up to `threads`
    /// threads; each block's result depends only on its bytes.
    fn store_all(&self, blocks: &[Vec<u8>]) -> io::Result<Vec<Stored>> {
        let (compression, block_size) = (self.compression, self.block_size);
        let store = move |block: &Vec<u8>| -> io::Result<Stored> {
            if is_zero(block) {
                return Ok(Stored::Hole);
            }
            Ok(match compression.compress(block, block_size)? {
                Some(compressed) => Stored::Compressed(compressed),
                None => Stored::Raw,
            })
        };
        if blocks.len() == 1 {
            return blocks.iter().map(store).collect();
        }
        thread::scope(|scope| {
            let workers: Vec<_> = blocks
                .iter()
                .map(|block| scope.spawn(move || store(block)))
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().expect("a compressing thread panicked"))
                .collect()
        })
    }

    fn put_block(&mut self, data: &mut FileData, block: &[u8], stored: Stored) -> io::Result<()> {
        let word = match stored {
            Stored::Hole => {
                data.sparse += block.len() as u64;
                0
            }
            Stored::Raw => self.emit(block, UNCOMPRESSED)?,
            Stored::Compressed(compressed) => self.emit(&compressed, 0)?,
        };
        data.blocks.push(word);
        Ok(())
    }

    /// Writes `bytes` and returns their size word.
    fn emit(&mut self, bytes: &[u8], flag: u32) -> io::Result<u32> {
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        // A block is at most 1 MiB, below the flag bit.
        Ok(bytes.len() as u32 | flag)
    }

    fn flush_fragment(&mut self) -> io::Result<()> {
        let start = self.position;
        let fragment = std::mem::take(&mut self.fragment);
        let word = match self.compression.compress(&fragment, self.block_size)? {
            Some(compressed) => self.emit(&compressed, 0)?,
            None => self.emit(&fragment, UNCOMPRESSED)?,
        };
        self.fragments.extend_from_slice(&start.to_le_bytes());
        self.fragments.extend_from_slice(&word.to_le_bytes());
        self.fragments.extend_from_slice(&0u32.to_le_bytes());
        self.fragment_count += 1;
        self.fragment = fragment;
        self.fragment.clear();
        Ok(())
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

    #[test]
    fn blocks_holes_and_tails() {
        let mut contents = text(4096);
        contents.extend_from_slice(&[0; 4096]);
        contents.extend_from_slice(&text(100));
        let mut data = writer(1);
        let file = data
            .write_file(&contents[..], contents.len() as u64)
            .unwrap();
        assert_eq!(file.start, 96);
        assert_eq!(file.blocks.len(), 2);
        assert!(file.blocks[0] > 0 && file.blocks[0] < 4096, "compressed");
        assert_eq!(file.blocks[1], 0, "hole");
        assert_eq!(file.sparse, 4096);
        assert_eq!(file.fragment, Some((0, 0)));

        let second = data.write_file(&text(50)[..], 50).unwrap();
        assert_eq!(second.fragment, Some((0, 100)), "tails share a block");
        assert!(second.blocks.is_empty());

        let zeros = data.write_file(&[0u8; 10][..], 10).unwrap();
        assert_eq!((zeros.blocks, zeros.fragment), (vec![0], None));

        let (out, end, fragments, count) = data.finish().unwrap();
        assert_eq!(count, 1);
        assert_eq!(end, 96 + out.len() as u64);
        assert_eq!(fragments.len(), 16, "start, size word, unused");
        let start = u64::from_le_bytes(fragments[..8].try_into().unwrap());
        assert_eq!(start, 96 + u64::from(file.blocks[0]));
    }

    #[test]
    fn a_full_fragment_block_starts_another() {
        let mut data = writer(1);
        let first = data.write_file(&text(3000)[..], 3000).unwrap();
        let second = data.write_file(&text(3000)[..], 3000).unwrap();
        assert_eq!(first.fragment, Some((0, 0)));
        assert_eq!(second.fragment, Some((1, 0)));
        assert_eq!(data.finish().unwrap().3, 2);
    }

    #[test]
    fn short_contents_fail() {
        let err = writer(1).write_file(&[1u8; 10][..], 11).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn thread_count_does_not_change_the_bytes() {
        let contents = text(4096 * 9 + 7);
        let results: Vec<_> = [1, 2, 3, 8]
            .into_iter()
            .map(|threads| {
                let mut data = writer(threads);
                let file = data
                    .write_file(&contents[..], contents.len() as u64)
                    .unwrap();
                (file, data.finish().unwrap())
            })
            .collect();
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
        let file = data.write_file(&noise[..], 4096).unwrap();
        assert_eq!(file.blocks, vec![4096 | UNCOMPRESSED]);
    }
}

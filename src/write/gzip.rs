//! The one gzip configuration ossify writes with.
//!
//! Outputs are compared by digest across builds, so every byte must be a
//! function of the input alone: a fixed level (6, gzip's default) on one
//! pinned backend (zlib-rs), and a header with no file name, mtime 0 and OS
//! "unknown". flate2 prefers a C zlib if any crate in the build enables
//! one; the pinned-output test below catches that.
//!
//! Deflate is the slowest step of an initrd, so it runs on every core, the
//! way pigz does it: the input is cut into fixed blocks, each compressed
//! on its own as raw deflate primed with the 32 KiB before it and ended
//! with a sync flush, and the pieces are joined in order. Block boundaries
//! depend only on the input's length, and each piece only on its block and
//! the bytes before it, so the stream is the same for any number of
//! threads. Memory stays a few blocks per thread.
//!
//! A stream may also be cut into [segments](Encoder::end_segment): each
//! starts with an empty window and its own block boundaries, so a segment's
//! compressed bytes depend on its input alone. That lets a segment be
//! [deflated](deflate_segment) ahead of time, on another thread or in an
//! earlier build, and [spliced](Encoder::splice) into the stream later:
//! the stream is the same bytes either way.

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

/// gzip's default level, a good size/speed balance for initrds.
const LEVEL: u32 = 6;
/// The header: magic, deflate, no flags, mtime 0, no extra flags, and OS
/// "unknown", independent of the build host.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// How much input each block holds.
const BLOCK: usize = 1 << 20;
/// Deflate's window: how much of the previous block primes the next.
const WINDOW: usize = 32 * 1024;

/// A gzip encoder over `out`. Call [`Encoder::finish`] to write the end.
pub fn encoder<W: Write>(out: W) -> Encoder<W> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    Encoder::with_threads(out, threads)
}

/// What a stream's CRC-32 and length need of a segment deflated apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCheck {
    /// The CRC-32 of the segment's input.
    pub crc: u32,
    /// The length of the segment's input.
    pub len: u64,
}

/// A gzip stream being written; see the module docs.
pub struct Encoder<W: Write> {
    out: W,
    /// Full blocks of the segment waiting to be compressed, and the one
    /// being filled last.
    blocks: Vec<Vec<u8>>,
    /// The last [`WINDOW`] bytes of the segment before `blocks[0]`.
    window: Vec<u8>,
    /// How many full blocks to gather before compressing them at once.
    batch: usize,
    crc: crc32fast::Hasher,
    len: u64,
    header_written: bool,
}

impl<W: Write> Encoder<W> {
    /// An encoder compressing on `threads` threads; the bytes it writes do
    /// not depend on `threads`.
    pub fn with_threads(out: W, threads: usize) -> Encoder<W> {
        Encoder {
            out,
            blocks: vec![Vec::with_capacity(BLOCK)],
            window: Vec::new(),
            batch: threads.max(1) * 2,
            crc: crc32fast::Hasher::new(),
            len: 0,
            header_written: false,
        }
    }

    /// Ends the segment being written, if it holds anything, and starts
    /// the next with an empty window: what follows compresses as though
    /// the stream began there.
    pub fn end_segment(&mut self) -> io::Result<()> {
        if self.blocks.iter().any(|block| !block.is_empty()) {
            self.flush_blocks(Flush::Segment)?;
        }
        Ok(())
    }

    /// Ends the segment being written and appends `deflated`: the output of
    /// [`deflate_segment`] for input whose CRC and length are `check`.
    pub fn splice(&mut self, check: SegmentCheck, deflated: impl Read) -> io::Result<()> {
        self.end_segment()?;
        self.write_header()?;
        let mut deflated = deflated;
        io::copy(&mut deflated, &mut self.out)?;
        self.crc.combine(&crc32fast::Hasher::new_with_initial_len(
            check.crc, check.len,
        ));
        self.len += check.len;
        Ok(())
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Compresses the buffered blocks: all full ones, or at a segment's or
    /// the stream's end all of them (the last may be short, even empty).
    fn flush_blocks(&mut self, flush: Flush) -> io::Result<()> {
        self.write_header()?;
        let mut blocks = std::mem::replace(&mut self.blocks, vec![Vec::with_capacity(BLOCK)]);
        // A segment ending on a block boundary has no empty piece after it,
        // as `deflate_segment` makes none; a stream's end needs one for
        // deflate's final block.
        if flush == Flush::Segment && blocks.len() > 1 && blocks.last().is_some_and(Vec::is_empty) {
            blocks.pop();
        }
        let dictionaries: Vec<&[u8]> = std::iter::once(&self.window[..])
            .chain(blocks.iter().map(|b| &b[b.len().saturating_sub(WINDOW)..]))
            .collect();
        let count = blocks.len();
        let last_flush = |index: usize| {
            if index + 1 == count && flush == Flush::Stream {
                FlushCompress::Finish
            } else {
                FlushCompress::Sync
            }
        };
        let pieces: Vec<io::Result<Vec<u8>>> = if count == 1 {
            vec![deflate(&blocks[0], dictionaries[0], last_flush(0))]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = blocks
                    .iter()
                    .enumerate()
                    .map(|(index, block)| {
                        let dictionary = dictionaries[index];
                        let end = last_flush(index);
                        scope.spawn(move || deflate(block, dictionary, end))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("deflate does not panic"))
                    .collect()
            })
        };
        for piece in pieces {
            self.out.write_all(&piece?)?;
        }
        self.window = match flush {
            // Mid-segment every block is full, longer than the window.
            Flush::Blocks => {
                let tail = blocks.last().expect("never empty");
                tail[tail.len().saturating_sub(WINDOW)..].to_vec()
            }
            Flush::Segment | Flush::Stream => Vec::new(),
        };
        Ok(())
    }

    /// Compresses the rest and writes gzip's trailer (CRC-32 and length);
    /// returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_blocks(Flush::Stream)?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        // gzip keeps the length modulo 2^32.
        self.out.write_all(&(self.len as u32).to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// How far [`Encoder::flush_blocks`] ends what it compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// Full blocks within a segment.
    Blocks,
    /// The segment's end, with a sync flush.
    Segment,
    /// The stream's end, with deflate's final block.
    Stream,
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let written = buf.len();
        self.crc.update(buf);
        self.len += written as u64;
        while !buf.is_empty() {
            let filling = self.blocks.last_mut().expect("never empty");
            let take = (BLOCK - filling.len()).min(buf.len());
            filling.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if filling.len() == BLOCK {
                if self.blocks.len() == self.batch {
                    self.flush_blocks(Flush::Blocks)?;
                } else {
                    self.blocks.push(Vec::with_capacity(BLOCK));
                }
            }
        }
        Ok(written)
    }

    /// Compressed output exists only per block; this flushes the sink.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `input`, `len` bytes, deflated as one segment of a stream on this
/// thread and written to `out`: the bytes [`Encoder`] writes for it
/// between two [`Encoder::end_segment`] calls. Returns its check, for
/// [`Encoder::splice`]. Reads `input` a block at a time, so memory stays
/// a block whatever `len`; fails if `input` holds fewer than `len` bytes.
pub fn deflate_segment(
    mut input: impl Read,
    len: u64,
    mut out: impl Write,
) -> io::Result<SegmentCheck> {
    let mut crc = crc32fast::Hasher::new();
    let mut block = vec![0; len.min(BLOCK as u64) as usize];
    let mut window: &[u8] = &[];
    let mut previous = Vec::new();
    let mut left = len;
    while left > 0 {
        let block = &mut block[..left.min(BLOCK as u64) as usize];
        input.read_exact(block)?;
        crc.update(block);
        left -= block.len() as u64;
        out.write_all(&deflate(block, window, FlushCompress::Sync)?)?;
        previous.clear();
        previous.extend_from_slice(&block[block.len().saturating_sub(WINDOW)..]);
        window = &previous;
    }
    Ok(SegmentCheck {
        crc: crc.finalize(),
        len,
    })
}

thread_local! {
    /// Each thread's deflate state, reset for every block rather than
    /// allocated: a fresh one costs more than a small block's compression.
    static COMPRESS: std::cell::RefCell<Compress> =
        std::cell::RefCell::new(Compress::new(Compression::new(LEVEL), false));
}

/// `block` as raw deflate, primed with `dictionary`, ended as `flush` says:
/// a sync flush, or the stream's final block.
fn deflate(block: &[u8], dictionary: &[u8], flush: FlushCompress) -> io::Result<Vec<u8>> {
    COMPRESS.with_borrow_mut(|compress| {
        compress.reset();
        deflate_with(compress, block, dictionary, flush)
    })
}

fn deflate_with(
    compress: &mut Compress,
    block: &[u8],
    dictionary: &[u8],
    flush: FlushCompress,
) -> io::Result<Vec<u8>> {
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let last = flush == FlushCompress::Finish;
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = compress.total_in() as usize;
        let status = compress
            .compress_vec(&block[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == block.len();
        match status {
            Status::StreamEnd => return Ok(out),
            // With room left after all input, a sync flush is complete.
            _ if !last && all_in && out.len() < out.capacity() => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sha2::Digest;
    use std::io::Read;

    #[test]
    fn header_is_fixed_and_contents_round_trip() {
        let mut encoder = encoder(Vec::new());
        encoder.write_all(b"ossify").unwrap();
        let bytes = encoder.finish().unwrap();
        // magic, deflate, no flags, mtime 0, xfl 0 (level 6), OS unknown
        assert_eq!(bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut decoded)
            .unwrap();
        assert_eq!(decoded, "ossify");
    }

    /// Bytes that compress somewhat, like a root filesystem, different
    /// for each `seed`.
    pub(crate) fn sample(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 4 == 0 {
                    (state >> 24) as u8
                } else {
                    b"initrd"[i % 6]
                }
            })
            .collect()
    }

    fn compress(input: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut encoder = Encoder::with_threads(Vec::new(), threads);
        for piece in input.chunks(chunk.max(1)) {
            encoder.write_all(piece).unwrap();
        }
        encoder.finish().unwrap()
    }

    #[test]
    fn the_stream_is_the_same_for_any_thread_count_and_decodes() {
        for len in [0, 1, WINDOW, BLOCK - 1, BLOCK, BLOCK + 1, 9 * BLOCK + 4321] {
            let input = sample(len, 7);
            let one = compress(&input, 1, 100_000);
            for (threads, chunk) in [(2, 4096), (3, BLOCK), (8, 3 * BLOCK + 7)] {
                assert_eq!(
                    compress(&input, threads, chunk),
                    one,
                    "{len} bytes, {threads} threads"
                );
            }
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&one[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, input, "{len} bytes");
        }
    }

    /// `head`, `middle` as a segment of its own, and `tail`, written in
    /// place on `threads` threads.
    fn with_segment(head: &[u8], middle: &[u8], tail: &[u8], threads: usize) -> Vec<u8> {
        let mut encoder = Encoder::with_threads(Vec::new(), threads);
        encoder.write_all(head).unwrap();
        encoder.end_segment().unwrap();
        for piece in middle.chunks(300_001) {
            encoder.write_all(piece).unwrap();
        }
        encoder.end_segment().unwrap();
        encoder.write_all(tail).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_segment_deflated_ahead_splices_to_the_bytes_written_in_place() {
        let head = sample(70_000, 7);
        for len in [0, 1, WINDOW, BLOCK, BLOCK + 1, 3 * BLOCK, 5 * BLOCK + 17] {
            let middle = sample(len, 8);
            let in_place = with_segment(&head, &middle, b"trailer", 3);
            assert_eq!(with_segment(&head, &middle, b"trailer", 1), in_place);
            let mut deflated = Vec::new();
            let check = deflate_segment(&middle[..], len as u64, &mut deflated).unwrap();
            assert_eq!(check.len, len as u64);
            let mut spliced = Encoder::with_threads(Vec::new(), 2);
            spliced.write_all(&head).unwrap();
            spliced.splice(check, &deflated[..]).unwrap();
            spliced.write_all(b"trailer").unwrap();
            assert_eq!(spliced.finish().unwrap(), in_place, "{len} bytes");
            // GzDecoder checks the CRC-32 and length of the whole stream.
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&in_place[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, [&head[..], &middle, b"trailer"].concat());
        }
    }

    #[test]
    fn an_empty_segment_writes_nothing() {
        let mut cut = Encoder::with_threads(Vec::new(), 1);
        cut.write_all(b"one").unwrap();
        cut.end_segment().unwrap();
        cut.end_segment().unwrap();
        cut.write_all(b"two").unwrap();
        let mut once = Encoder::with_threads(Vec::new(), 1);
        once.write_all(b"one").unwrap();
        once.end_segment().unwrap();
        once.write_all(b"two").unwrap();
        assert_eq!(cut.finish().unwrap(), once.finish().unwrap());
    }

    #[test]
    #[ignore = "heavy: needs GNU gzip (scripts/test.sh)"]
    fn gnu_gzip_reads_a_many_block_stream() {
        let input = sample(5 * BLOCK + 99, 7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, compress(&input, 2, 65536)).unwrap();
        let output = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .expect("gzip runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout == input);
    }

    /// Pins the compressed bytes: a change of backend, level or backend
    /// version that alters output must be a deliberate, visible decision,
    /// since it changes every published digest.
    #[test]
    fn output_bytes_are_pinned() {
        let mut state = 1u32;
        let input: Vec<u8> = (0..256 * 1024)
            .map(|i| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                if i % 3 == 0 {
                    (state >> 24) as u8
                } else {
                    b"ossify"[i % 6]
                }
            })
            .collect();
        let mut encoder = encoder(Vec::new());
        encoder.write_all(&input).unwrap();
        let compressed = encoder.finish().unwrap();
        let digest: String = sha2::Sha256::digest(&compressed)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            digest,
            "5c8a67361e9d9e9df1739695ff1bdd9d4550b6cd6c349c4a4e2bfa781095da8e"
        );
    }
}

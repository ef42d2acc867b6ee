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

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

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

/// A gzip stream being written; see the module docs.
pub struct Encoder<W: Write> {
    out: W,
    /// Full blocks waiting to be compressed, and the one being filled last.
    blocks: Vec<Vec<u8>>,
    /// The last [`WINDOW`] bytes before `blocks[0]`.
    window: Vec<u8>,
    /// How many full blocks to gather before compressing them at once.
    batch: usize,
    crc: Crc,
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
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// Compresses the buffered blocks: all full ones, or, when `last`, the
    /// stream's end (its final block may be short, even empty).
    fn flush_blocks(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.out.write_all(&HEADER)?;
            self.header_written = true;
        }
        let blocks = std::mem::replace(&mut self.blocks, vec![Vec::with_capacity(BLOCK)]);
        let dictionaries: Vec<&[u8]> = std::iter::once(&self.window[..])
            .chain(blocks.iter().map(|b| &b[b.len().saturating_sub(WINDOW)..]))
            .collect();
        let count = blocks.len();
        let pieces: Vec<io::Result<Vec<u8>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = blocks
                .iter()
                .enumerate()
                .map(|(index, block)| {
                    let dictionary = dictionaries[index];
                    let end = last && index + 1 == count;
                    scope.spawn(move || deflate(block, dictionary, end))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("deflate does not panic"))
                .collect()
        });
        for piece in pieces {
            self.out.write_all(&piece?)?;
        }
        // Before the end every block is full, longer than the window.
        let tail = blocks.last().expect("never empty");
        self.window = tail[tail.len().saturating_sub(WINDOW)..].to_vec();
        Ok(())
    }

    /// Compresses the rest and writes gzip's trailer (CRC-32 and length);
    /// returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_blocks(true)?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let written = buf.len();
        self.crc.update(buf);
        while !buf.is_empty() {
            let filling = self.blocks.last_mut().expect("never empty");
            let take = (BLOCK - filling.len()).min(buf.len());
            filling.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if filling.len() == BLOCK {
                if self.blocks.len() == self.batch {
                    self.flush_blocks(false)?;
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

/// `block` as raw deflate, primed with `dictionary`, ended with a sync
/// flush, or as the stream's final block when `last`.
fn deflate(block: &[u8], dictionary: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(Compression::new(LEVEL), false);
    if !dictionary.is_empty() {
        compress
            .set_dictionary(dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
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
mod tests {
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

    /// Bytes that compress somewhat, like a root filesystem.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 7u32;
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
            let input = sample(len);
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

    #[test]
    #[ignore = "heavy: needs GNU gzip (scripts/test.sh)"]
    fn gnu_gzip_reads_a_many_block_stream() {
        let input = sample(5 * BLOCK + 99);
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

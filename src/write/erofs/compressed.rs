//! LZ4-compressed files in the layout Linux 6.1 reads without newer
//! features: `EROFS_INODE_FLAT_COMPRESSION_LEGACY` with 4 KiB logical
//! clusters (lclusters) and 4 KiB physical clusters (pclusters).
//!
//! The file is cut into extents, each stored in one block: a compressed
//! extent is as much input as LZ4 fits into 4 KiB, right-aligned in its
//! block behind zeros (`EROFS_FEATURE_INCOMPAT_LZ4_0PADDING`, which lets
//! the kernel decompress in place and check the input's length); where
//! that is no more than 4 KiB of input, the extent is those 4 KiB stored
//! as they are (a plain extent), as mkfs.erofs does. The last 4 KiB or
//! less are always plain: compressing them cannot save a block.
//!
//! After the inode's xattrs, 8-aligned, come a `z_erofs_map_header` and 8
//! bytes of padding, then one 8-byte `z_erofs_vle_decompressed_index` per
//! lcluster: HEAD (compressed) or PLAIN where an extent starts in the
//! lcluster, with the start's offset in it and the extent's block; a
//! PLAIN with block 0 at the end of file when no extent starts in that
//! lcluster; NONHEAD elsewhere, with the distances back to the lcluster
//! where its extent starts and on to where the next one does.
//!
//! Each extent is compressed alone, from a window of at most
//! [`MAX_WINDOW`] bytes at its start: the same bytes give the same
//! extents, so the contents are compressed once to plan the layout and
//! again to write it rather than held in memory between the two.

use std::io::{self, Read};

use super::lz4::Compressor;
use super::{BLOCK_BITS, BLOCK_SIZE};

/// The most input one extent is compressed from: 1 MiB, 256 lclusters,
/// keeping lcluster distances far below the 2^11 the index holds, and
/// each extent's decompression (which a read of any byte in it costs)
/// small. LZ4 fits at most about 1 MiB of zeros into 4 KiB anyway.
pub const MAX_WINDOW: usize = 1 << 20;
/// The map header and its padding (`Z_EROFS_VLE_LEGACY_INDEX_ALIGN`).
const MAP_HEADER: u64 = 16;
/// `sizeof(struct z_erofs_vle_decompressed_index)`.
const INDEX: u64 = 8;
/// `Z_EROFS_VLE_CLUSTER_TYPE_*`.
const PLAIN: u16 = 0;
const HEAD: u16 = 1;
const NONHEAD: u16 = 2;
/// `Z_EROFS_VLE_DI_D0_CBLKCNT`: `delta[0]` stays below it.
const CBLKCNT: u16 = 1 << 11;

/// One extent of a file, stored in one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// The file bytes it holds.
    pub len: u32,
    /// LZ4-compressed, or plain bytes.
    pub compressed: bool,
}

/// A file cut into extents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extents {
    /// The file's size.
    pub size: u64,
    /// The extents in file order, one block each.
    pub extents: Vec<Extent>,
}

impl Extents {
    /// Compresses `size` bytes from `contents` into extents, unless they
    /// take more than `max_blocks` blocks or, with the map, more than
    /// `max_bytes`: then `None`, decided as soon as it is certain.
    pub fn plan(
        contents: impl Read,
        size: u64,
        max_blocks: u64,
        max_bytes: u64,
    ) -> io::Result<Option<Extents>> {
        let map = map_len(size);
        let max_blocks = max_blocks.min(max_bytes.saturating_sub(map) / BLOCK_SIZE as u64);
        if max_blocks == 0 {
            return Ok(None);
        }
        let mut encoder = Encoder::new(contents, size);
        let mut extents = Vec::new();
        while let Some(extent) = encoder.next_extent()? {
            if extents.len() as u64 == max_blocks {
                return Ok(None);
            }
            extents.push(extent);
        }
        Ok(Some(Extents { size, extents }))
    }

    /// The blocks the extents take.
    pub fn blocks(&self) -> u64 {
        self.extents.len() as u64
    }

    /// The length of the map header and indexes.
    pub fn map_len(&self) -> u64 {
        map_len(self.size)
    }

    /// The map header and indexes, the extents stored one block after
    /// another from `first_block`.
    pub fn map(&self, first_block: u32) -> Vec<u8> {
        let lclusters = self.size.div_ceil(BLOCK_SIZE as u64) as usize;
        // Where an extent starts in an lcluster: (offset, type, block).
        let mut heads: Vec<Option<(u16, u16, u32)>> = vec![None; lclusters];
        let mut start = 0u64;
        for (index, extent) in self.extents.iter().enumerate() {
            let kind = if extent.compressed { HEAD } else { PLAIN };
            let block = first_block + index as u32;
            let head = &mut heads[(start >> BLOCK_BITS) as usize];
            debug_assert!(head.is_none(), "extents but the last are 4 KiB or more");
            *head = Some((offset_in_block(start), kind, block));
            start += u64::from(extent.len);
        }
        debug_assert_eq!(start, self.size);
        if let Some(last @ None) = heads.get_mut((self.size >> BLOCK_BITS) as usize) {
            *last = Some((offset_in_block(self.size), PLAIN, 0));
        }
        let mut map = Vec::with_capacity(self.map_len() as usize);
        // h_reserved1, h_idata_size, h_advise, h_algorithmtype (LZ4),
        // h_clusterbits (4 KiB), then Z_EROFS_VLE_LEGACY_HEADER_PADDING.
        map.extend_from_slice(&[0; MAP_HEADER as usize]);
        // The lclusters where the current extent starts and the next one.
        let (mut head, mut next) = (0, 0);
        for lcluster in 0..lclusters {
            let (advise, offset, u) = match heads[lcluster] {
                Some((offset, kind, block)) => {
                    head = lcluster;
                    (kind, offset, block)
                }
                None => {
                    if next <= lcluster {
                        next = (lcluster..lclusters)
                            .find(|&at| heads[at].is_some())
                            .unwrap_or(lclusters);
                    }
                    let back = (lcluster - head) as u16;
                    let on = (next - lcluster) as u16;
                    debug_assert!(back < CBLKCNT, "windows are far shorter");
                    let offset = heads[head].map_or(0, |(offset, ..)| offset);
                    (NONHEAD, offset, u32::from(back) | u32::from(on) << 16)
                }
            };
            map.extend_from_slice(&advise.to_le_bytes());
            map.extend_from_slice(&offset.to_le_bytes());
            map.extend_from_slice(&u.to_le_bytes());
        }
        map
    }
}

fn map_len(size: u64) -> u64 {
    MAP_HEADER + size.div_ceil(BLOCK_SIZE as u64) * INDEX
}

fn offset_in_block(at: u64) -> u16 {
    (at % BLOCK_SIZE as u64) as u16
}

/// Reads a file once, cutting it into extents and making their blocks.
pub struct Encoder<R> {
    window: Window<R>,
    compressor: Compressor,
    compressed: Vec<u8>,
    block: Vec<u8>,
    at: u64,
}

impl<R: Read> Encoder<R> {
    pub fn new(contents: R, size: u64) -> Self {
        Encoder {
            window: Window {
                reader: contents,
                size,
                buffer: Vec::new(),
                start: 0,
            },
            compressor: Compressor::default(),
            compressed: Vec::with_capacity(BLOCK_SIZE),
            block: vec![0; BLOCK_SIZE],
            at: 0,
        }
    }

    /// The next extent, its block then in [`block`](Self::block); `None`
    /// at the end of the file. A short read is `UnexpectedEof`.
    pub fn next_extent(&mut self) -> io::Result<Option<Extent>> {
        let remaining = self.window.size - self.at;
        if remaining == 0 {
            return Ok(None);
        }
        let input = self.window.at(self.at)?;
        let mut extent = Extent {
            len: input.len().min(BLOCK_SIZE) as u32,
            compressed: false,
        };
        if remaining > BLOCK_SIZE as u64 {
            let consumed = self
                .compressor
                .compress(input, BLOCK_SIZE, &mut self.compressed);
            if consumed > BLOCK_SIZE {
                extent = Extent {
                    len: consumed as u32,
                    compressed: true,
                };
            }
        }
        if extent.compressed {
            let padding = BLOCK_SIZE - self.compressed.len();
            self.block[..padding].fill(0);
            self.block[padding..].copy_from_slice(&self.compressed);
        } else {
            let len = extent.len as usize;
            self.block[..len].copy_from_slice(&input[..len]);
            self.block[len..].fill(0);
        }
        self.at += u64::from(extent.len);
        Ok(Some(extent))
    }

    /// The block of the extent last returned.
    pub fn block(&self) -> &[u8] {
        &self.block
    }
}

/// The bytes from a position to at most [`MAX_WINDOW`] on, read ahead in
/// runs of twice that so bytes are moved about once per window.
struct Window<R> {
    reader: R,
    size: u64,
    buffer: Vec<u8>,
    /// The file offset of `buffer[0]`.
    start: u64,
}

impl<R: Read> Window<R> {
    fn at(&mut self, at: u64) -> io::Result<&[u8]> {
        let end = (at + MAX_WINDOW as u64).min(self.size);
        let buffered = self.start + self.buffer.len() as u64;
        if end > buffered {
            self.buffer.drain(..(at - self.start) as usize);
            self.start = at;
            let filled = self.buffer.len();
            let until = (at + 2 * MAX_WINDOW as u64).min(self.size);
            self.buffer.resize((until - at) as usize, 0);
            self.reader.read_exact(&mut self.buffer[filled..])?;
        }
        let from = (at - self.start) as usize;
        Ok(&self.buffer[from..(end - self.start) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a map back into (type, offset, block or deltas) per lcluster.
    fn indexes(map: &[u8]) -> Vec<(u16, u16, u32)> {
        assert_eq!(&map[..16], &[0; 16], "LZ4, 4 KiB lclusters, no advise");
        map[16..]
            .chunks(8)
            .map(|index| {
                let u16_at = |at: usize| u16::from_le_bytes([index[at], index[at + 1]]);
                (
                    u16_at(0),
                    u16_at(2),
                    u32::from_le_bytes(index[4..8].try_into().unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn indexes_mark_heads_nonheads_and_the_end() {
        let extents = Extents {
            size: 5 * 4096 + 100,
            extents: vec![
                Extent {
                    len: 9000,
                    compressed: true,
                },
                Extent {
                    len: 4096,
                    compressed: false,
                },
                Extent {
                    len: 5 * 4096 + 100 - 9000 - 4096,
                    compressed: true,
                },
            ],
        };
        let map = extents.map(50);
        assert_eq!(map.len() as u64, extents.map_len());
        let deltas = |back: u32, on: u32| back | on << 16;
        assert_eq!(
            indexes(&map),
            [
                (HEAD, 0, 50),
                (NONHEAD, 0, deltas(1, 1)),
                (PLAIN, 808, 51),
                (HEAD, 808, 52),
                (NONHEAD, 808, deltas(1, 1)),
                (PLAIN, 100, 0),
            ]
        );
    }

    #[test]
    fn a_file_ending_on_a_block_boundary_has_no_end_index() {
        let extents = Extents {
            size: 3 * 4096,
            extents: vec![Extent {
                len: 3 * 4096,
                compressed: true,
            }],
        };
        let deltas = |back: u32, on: u32| back | on << 16;
        assert_eq!(
            indexes(&extents.map(7)),
            [
                (HEAD, 0, 7),
                (NONHEAD, 0, deltas(1, 2)),
                (NONHEAD, 0, deltas(2, 1))
            ]
        );
    }

    #[test]
    fn blocks_hold_right_aligned_lz4_or_plain_bytes() {
        let mut contents: Vec<u8> = (0..40_000u32).map(|at| (at / 100) as u8).collect();
        let noise_at = contents.len();
        let mut state = 1u32;
        contents.extend((0..9000).map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        }));
        let size = contents.len() as u64;
        let mut encoder = Encoder::new(&contents[..], size);
        let mut at = 0usize;
        while let Some(extent) = encoder.next_extent().unwrap() {
            let len = extent.len as usize;
            let block = encoder.block();
            if extent.compressed {
                let start = block.iter().position(|&byte| byte != 0).unwrap();
                let back = lz4_flex::block::decompress(&block[start..], len).unwrap();
                assert!(back == contents[at..at + len], "extent at {at}");
            } else {
                assert!(len <= 4096);
                assert!(block[..len] == contents[at..at + len]);
                assert!(block[len..].iter().all(|&byte| byte == 0));
            }
            assert!(
                extent.compressed || at >= noise_at - 4096,
                "text compresses"
            );
            at += len;
        }
        assert_eq!(at as u64, size);
    }

    #[test]
    fn a_budget_too_small_stops_early() {
        let contents = vec![7u8; 1 << 20];
        let size = contents.len() as u64;
        let plan = |blocks, bytes| Extents::plan(&contents[..], size, blocks, bytes).unwrap();
        let planned = plan(u64::MAX, u64::MAX).unwrap();
        let blocks = planned.blocks();
        assert!((1..=2).contains(&blocks), "{planned:?}");
        let bytes = map_len(size) + blocks * BLOCK_SIZE as u64;
        assert_eq!(plan(blocks, bytes), Some(planned));
        assert_eq!(plan(blocks - 1, bytes), None);
        assert_eq!(plan(blocks, bytes - 1), None);
    }

    #[test]
    fn a_short_stream_is_an_error() {
        let error = Extents::plan(&[1u8; 10_000][..], 20_000, 9, u64::MAX).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}

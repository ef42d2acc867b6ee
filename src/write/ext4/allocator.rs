//! Block allocation: one cursor moving up the image, stepping over the
//! superblock copies, so that contents lie in tree order, contiguous where
//! the copies allow, and the used blocks are described by the cursor plus
//! the few gaps left where a table had to skip to fit whole.

use super::geometry::{BLOCKS_PER_GROUP, Geometry};

/// Blocks `start..start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The first block.
    pub start: u64,
    /// How many blocks.
    pub len: u64,
}

/// The image is full.
#[derive(Debug)]
pub struct Full;

/// Hands out the blocks of one image in increasing order.
#[derive(Debug)]
pub struct Allocator<'g> {
    geometry: &'g Geometry,
    cursor: u64,
    /// Free ranges below the cursor, in increasing order.
    gaps: Vec<Run>,
    /// The first blocks of the superblock copies after group 0.
    copies: Vec<u64>,
}

impl<'g> Allocator<'g> {
    /// An allocator whose first block follows group 0's superblock and
    /// descriptor table.
    pub fn new(geometry: &'g Geometry) -> Self {
        Allocator {
            geometry,
            cursor: geometry.backup_len(0),
            gaps: Vec::new(),
            copies: (1..geometry.groups)
                .filter(|&group| geometry.backup_len(group) > 0)
                .map(|group| geometry.group_start(group))
                .collect(),
        }
    }

    /// `len` blocks in one run.
    pub fn contiguous(&mut self, len: u64) -> Result<u64, Full> {
        loop {
            self.skip_copies();
            let room = self.next_copy() - self.cursor;
            if room >= len {
                let start = self.cursor;
                self.cursor += len;
                return Ok(start);
            }
            if self.next_copy() >= self.geometry.blocks {
                return Err(Full);
            }
            self.gaps.push(Run {
                start: self.cursor,
                len: room,
            });
            self.cursor += room;
        }
    }

    /// `len` blocks in as few runs as the superblock copies allow.
    pub fn runs(&mut self, mut len: u64) -> Result<Vec<Run>, Full> {
        let mut runs = Vec::new();
        while len > 0 {
            self.skip_copies();
            let take = len.min(self.next_copy() - self.cursor);
            if take == 0 {
                return Err(Full);
            }
            runs.push(Run {
                start: self.cursor,
                len: take,
            });
            self.cursor += take;
            len -= take;
        }
        Ok(runs)
    }

    /// Sets the bits of group `group`'s block bitmap for the blocks in
    /// use, and for the bits past a short last group's end.
    pub fn mark_used(&self, group: u64, bitmap: &mut [u8]) {
        let start = self.geometry.group_start(group);
        let len = self.geometry.group_len(group);
        set_bits(
            bitmap,
            0,
            self.cursor.clamp(start, start + len) - start,
            true,
        );
        for gap in &self.gaps {
            let from = gap.start.clamp(start, start + len);
            let to = (gap.start + gap.len).clamp(start, start + len);
            set_bits(bitmap, from - start, to - start, false);
        }
        set_bits(bitmap, 0, self.geometry.backup_len(group), true);
        set_bits(bitmap, len, BLOCKS_PER_GROUP, true);
    }

    /// Moves the cursor past a superblock copy it stands on.
    fn skip_copies(&mut self) {
        let group = self.cursor / BLOCKS_PER_GROUP;
        let copy_end = self.geometry.group_start(group) + self.geometry.backup_len(group);
        self.cursor = self.cursor.max(copy_end).min(self.geometry.blocks);
    }

    /// The first block of the next superblock copy after the cursor, or
    /// the end of the image.
    fn next_copy(&self) -> u64 {
        let after = self.copies.partition_point(|&copy| copy <= self.cursor);
        self.copies
            .get(after)
            .copied()
            .unwrap_or(self.geometry.blocks)
    }
}

/// Sets (or clears) bits `from..to` of `bitmap`, least significant bit first.
pub fn set_bits(bitmap: &mut [u8], from: u64, to: u64, value: bool) {
    for bit in from..to {
        let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
        if value {
            bitmap[byte] |= mask;
        } else {
            bitmap[byte] &= !mask;
        }
    }
}

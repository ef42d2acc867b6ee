//! The file allocation table itself: one chain per directory or file, each a
//! run of consecutive clusters, written out without holding the table.

use std::io::{self, Write};

use super::geometry::{FatType, SECTOR};

/// Flush the table to the output in chunks of about this many bytes.
const CHUNK: usize = 64 * 1024;

/// End-of-chain mark, and entry 0's value around the media byte.
fn end_of_chain(fat_type: FatType) -> u32 {
    match fat_type {
        FatType::Fat12 => 0xFFF,
        FatType::Fat16 => 0xFFFF,
        FatType::Fat32 => 0x0FFF_FFFF,
    }
}

/// Writes one FAT of `fat_sectors` for chains of `chain_lengths` clusters
/// laid end to end from cluster 2; the remaining clusters are free.
pub(super) fn write_fat(
    out: &mut impl Write,
    fat_type: FatType,
    fat_sectors: u64,
    media: u8,
    chain_lengths: &[u32],
) -> io::Result<()> {
    let eoc = end_of_chain(fat_type);
    let reserved = [(eoc & !0xFF) | u32::from(media), eoc];
    let chains = chain_lengths
        .iter()
        .flat_map(|&length| (1..=length).map(move |position| (position, length)));
    let mut next_cluster = super::FIRST_CLUSTER;
    let values = reserved.into_iter().chain(chains.map(|(position, length)| {
        let cluster = next_cluster;
        next_cluster += 1;
        if position == length { eoc } else { cluster + 1 }
    }));
    let mut encoder = Encoder {
        fat_type,
        buffer: Vec::with_capacity(CHUNK + 8),
        pending: None,
        written: 0,
    };
    for value in values {
        encoder.push(value);
        if encoder.buffer.len() >= CHUNK {
            encoder.flush(out)?;
        }
    }
    if encoder.pending.is_some() {
        encoder.push(0);
    }
    encoder.flush(out)?;
    let rest = fat_sectors * SECTOR - encoder.written;
    super::write_zeros(out, rest)
}

/// Packs entries into bytes: 12-bit entries go in pairs of three bytes.
struct Encoder {
    fat_type: FatType,
    buffer: Vec<u8>,
    /// A FAT12 entry waiting for its pair.
    pending: Option<u32>,
    written: u64,
}

impl Encoder {
    fn push(&mut self, value: u32) {
        match self.fat_type {
            FatType::Fat12 => match self.pending.take() {
                None => self.pending = Some(value),
                Some(first) => {
                    let pair = first | (value << 12);
                    self.buffer.extend_from_slice(&pair.to_le_bytes()[..3]);
                }
            },
            FatType::Fat16 => self.buffer.extend_from_slice(&(value as u16).to_le_bytes()),
            FatType::Fat32 => self.buffer.extend_from_slice(&value.to_le_bytes()),
        }
    }

    fn flush(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.buffer)?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

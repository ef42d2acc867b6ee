//! An LZ4 block compressor that fills a bounded output: it encodes as much
//! of its input as fits in `capacity` bytes and says how much that was, as
//! liblz4's `LZ4_compress_destSize`, which mkfs.erofs uses to fill each
//! 4 KiB physical cluster. lz4_flex compresses whole inputs only.
//!
//! The block format: sequences of a token (literal count, match length),
//! the literals, a 2-byte little-endian offset and the match length's
//! extra bytes; the last sequence has literals only. The reference decoder
//! (Linux's `LZ4_decompress_safe`, liblz4's) insists that the last 5
//! bytes of a block are literals and that the last match starts at least
//! 12 bytes before the block's end, so a block cut short ends with enough
//! literals for both.
//!
//! Greedy parsing with a one-entry hash table, as LZ4's fast mode: the
//! output depends on the input and the capacity only.

/// Matches reach back at most this far (the 2-byte offset).
pub const MAX_DISTANCE: usize = 65_535;
/// The shortest match.
const MIN_MATCH: usize = 4;
/// The block's last bytes that are always literals (`LASTLITERALS`).
const LAST_LITERALS: usize = 5;
/// No match starts in the block's last bytes (`MFLIMIT`).
const MATCH_FIND_LIMIT: usize = 12;
/// A token's 4-bit field saturates at this; the rest follows in bytes.
const RUN_MASK: usize = 15;
/// The longest final sequence a block cut short needs: literals enough
/// that the last match (4 bytes or more) starts 12 bytes before the end.
const FINAL_RESERVE: usize = 1 + MATCH_FIND_LIMIT - MIN_MATCH;
const HASH_BITS: u32 = 14;
/// Misses in a row before the search starts skipping bytes, as LZ4 does
/// (`LZ4_skipTrigger`): incompressible data is given up on quickly.
const SKIP_TRIGGER: u32 = 6;

/// A compressor, reusable across blocks; its hash table is kept between
/// calls but entries from earlier calls are never used.
pub struct Compressor {
    /// `stamp + position` of the last 4-byte sequence with each hash.
    table: Vec<u32>,
    /// Entries below this belong to earlier calls.
    stamp: u32,
}

impl Default for Compressor {
    fn default() -> Self {
        Compressor {
            table: vec![0; 1 << HASH_BITS],
            stamp: 1,
        }
    }
}

impl Compressor {
    /// Compresses a prefix of `input` into `out` (cleared first), at most
    /// `capacity` bytes, and returns the prefix's length: all of `input`
    /// when it fits. `input` must be shorter than 2^31 bytes; `capacity`
    /// at least 16.
    pub fn compress(&mut self, input: &[u8], capacity: usize, out: &mut Vec<u8>) -> usize {
        assert!(input.len() < 1 << 31, "LZ4 inputs here are under 2 GiB");
        assert!(capacity >= 16, "room for a token and some literals");
        out.clear();
        let stamp = self.begin(input.len());
        let mut anchor = 0;
        // Literals the final sequence needs after the last match.
        let mut final_literals = 1;
        if input.len() > MATCH_FIND_LIMIT {
            let match_limit = input.len() - LAST_LITERALS;
            let last_start = input.len() - MATCH_FIND_LIMIT;
            let mut at = 0;
            let mut misses = 0u32;
            while at <= last_start {
                let Some(from) = self.find(input, at, stamp) else {
                    misses += 1;
                    at += 1 + (misses >> SKIP_TRIGGER) as usize;
                    continue;
                };
                misses = 0;
                let end = at
                    + MIN_MATCH
                    + common_prefix(input, from + MIN_MATCH, at + MIN_MATCH, match_limit);
                let back = (1..=at - anchor)
                    .take_while(|&back| back <= from && input[at - back] == input[from - back])
                    .last()
                    .unwrap_or(0);
                let start = at - back;
                // The sequence and the longest final sequence a match
                // can need must fit; the match is cut to what does.
                let Some(room) = capacity.checked_sub(
                    out.len() + sequence_len(start - anchor, Some(MIN_MATCH)) + FINAL_RESERVE,
                ) else {
                    break;
                };
                let length = (end - start).min(MIN_MATCH + RUN_MASK - 1 + 255 * room);
                push_sequence(out, &input[anchor..start], Some((at - from, length)));
                anchor = start + length;
                final_literals = LAST_LITERALS.max(MATCH_FIND_LIMIT.saturating_sub(length));
                at = anchor;
                self.insert(input, at - 2, stamp);
            }
        }
        let room = capacity - out.len();
        let mut literals = (input.len() - anchor).min(room - 1);
        while sequence_len(literals, None) > room {
            literals -= 1;
        }
        debug_assert!(literals >= final_literals.min(input.len()), "room was kept");
        push_sequence(out, &input[anchor..anchor + literals], None);
        anchor + literals
    }

    /// Starts a call over `len` bytes: entries stored before are below the
    /// returned stamp; the table is cleared when stamps would overflow.
    fn begin(&mut self, len: usize) -> u32 {
        let len = len as u32 + 1;
        if self.stamp.checked_add(len).is_none() {
            self.table.fill(0);
            self.stamp = 1;
        }
        let stamp = self.stamp;
        self.stamp += len;
        stamp
    }

    /// Records `at` and returns an earlier position of the same 4 bytes
    /// within reach, if the table holds one.
    fn find(&mut self, input: &[u8], at: usize, stamp: u32) -> Option<usize> {
        let sequence = read_u32(input, at);
        let slot = &mut self.table[hash(sequence)];
        let previous = *slot;
        *slot = stamp + at as u32;
        let from = previous.checked_sub(stamp)? as usize;
        (at - from <= MAX_DISTANCE && read_u32(input, from) == sequence).then_some(from)
    }

    fn insert(&mut self, input: &[u8], at: usize, stamp: u32) {
        self.table[hash(read_u32(input, at))] = stamp + at as u32;
    }
}

fn read_u32(input: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(input[at..at + 4].try_into().expect("4 bytes"))
}

/// Knuth's multiplicative hash of 4 bytes, as LZ4's.
fn hash(sequence: u32) -> usize {
    (sequence.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

/// How many bytes from `a` equal those from `b`, `b` stopping at `limit`
/// (`a < b`).
fn common_prefix(input: &[u8], mut a: usize, mut b: usize, limit: usize) -> usize {
    let begin = b;
    while b + 8 <= limit {
        let x = u64::from_le_bytes(input[a..a + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(input[b..b + 8].try_into().expect("8 bytes"));
        let differ = x ^ y;
        if differ != 0 {
            return b - begin + (differ.trailing_zeros() / 8) as usize;
        }
        a += 8;
        b += 8;
    }
    while b < limit && input[a] == input[b] {
        a += 1;
        b += 1;
    }
    b - begin
}

/// Bytes a length of `value` takes beyond its token nibble.
fn extra_len(value: usize) -> usize {
    if value >= RUN_MASK {
        (value - RUN_MASK) / 255 + 1
    } else {
        0
    }
}

/// The encoded size of a sequence: `literals` literal bytes, then a match
/// of `length` bytes if any.
fn sequence_len(literals: usize, length: Option<usize>) -> usize {
    let matched = length.map_or(0, |length| 2 + extra_len(length - MIN_MATCH));
    1 + extra_len(literals) + literals + matched
}

fn push_length(out: &mut Vec<u8>, value: usize) {
    if value >= RUN_MASK {
        let mut rest = value - RUN_MASK;
        while rest >= 255 {
            out.push(255);
            rest -= 255;
        }
        out.push(rest as u8);
    }
}

/// Appends a sequence: `literals`, then a match `(offset, length)` if any.
fn push_sequence(out: &mut Vec<u8>, literals: &[u8], matched: Option<(usize, usize)>) {
    let match_code = matched.map_or(0, |(_, length)| length - MIN_MATCH);
    out.push(((literals.len().min(RUN_MASK) as u8) << 4) | match_code.min(RUN_MASK) as u8);
    push_length(out, literals.len());
    out.extend_from_slice(literals);
    if let Some((offset, _)) = matched {
        out.extend_from_slice(&(offset as u16).to_le_bytes());
        push_length(out, match_code);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{noise, text};
    use super::*;

    /// Checks the reference decoder's end-of-block rules, which lz4_flex
    /// does not enforce, and returns the decoded length.
    fn check_block_rules(block: &[u8]) -> usize {
        let length = |at: &mut usize, nibble: usize| {
            let mut value = nibble;
            if nibble == RUN_MASK {
                loop {
                    let byte = block[*at];
                    *at += 1;
                    value += usize::from(byte);
                    if byte != 255 {
                        break;
                    }
                }
            }
            value
        };
        let (mut at, mut decoded) = (0, 0);
        let mut last_match: Option<(usize, usize)> = None;
        loop {
            let token = usize::from(block[at]);
            at += 1;
            let literals = length(&mut at, token >> 4);
            at += literals;
            decoded += literals;
            if at == block.len() {
                break;
            }
            let offset = usize::from(u16::from_le_bytes([block[at], block[at + 1]]));
            at += 2;
            assert!(
                offset >= 1 && offset <= decoded,
                "offset {offset} at {decoded}"
            );
            let matched = length(&mut at, token & 15) + MIN_MATCH;
            last_match = Some((decoded, decoded + matched));
            decoded += matched;
        }
        if let Some((start, end)) = last_match {
            assert!(
                end + LAST_LITERALS <= decoded,
                "the last 5 bytes are literals"
            );
            assert!(
                start + MATCH_FIND_LIMIT <= decoded,
                "no match in the last 12 bytes"
            );
        }
        decoded
    }

    /// Compresses a prefix of `input` into `capacity` bytes and checks it
    /// decodes to exactly that prefix; returns the prefix's length.
    fn round_trip(compressor: &mut Compressor, input: &[u8], capacity: usize) -> usize {
        let mut out = Vec::new();
        let consumed = compressor.compress(input, capacity, &mut out);
        assert!(out.len() <= capacity, "{} > {capacity}", out.len());
        assert_eq!(check_block_rules(&out), consumed);
        let back = lz4_flex::block::decompress(&out, consumed).expect("a valid LZ4 block");
        assert!(back == input[..consumed], "decodes to the prefix");
        consumed
    }

    #[test]
    fn compressible_input_fills_the_block() {
        let mut compressor = Compressor::default();
        let input = text(1 << 20, 7);
        let consumed = round_trip(&mut compressor, &input, 4096);
        assert!(consumed > 2 * 4096, "text compresses: {consumed} bytes");
        assert!(
            consumed < input.len(),
            "and the block is full before the input ends"
        );
        let mut out = Vec::new();
        compressor.compress(&input, 4096, &mut out);
        assert!(
            out.len() > 4096 - 16,
            "the block is nearly full: {}",
            out.len()
        );
    }

    #[test]
    fn zeros_compress_about_250_to_1() {
        let mut compressor = Compressor::default();
        let consumed = round_trip(&mut compressor, &vec![0; 1 << 20], 4096);
        assert!(consumed > 900 * 1024, "{consumed}");
        assert_eq!(round_trip(&mut compressor, &[0; 100_000], 4096), 100_000);
    }

    #[test]
    fn incompressible_input_takes_less_than_the_block() {
        let mut compressor = Compressor::default();
        let input = noise(100_000, 3);
        let consumed = round_trip(&mut compressor, &input, 4096);
        assert!(consumed < 4096 && consumed > 4000, "{consumed}");
    }

    #[test]
    fn every_small_size_and_capacity_round_trips() {
        let mut compressor = Compressor::default();
        let mixed: Vec<u8> = text(3000, 1)
            .into_iter()
            .chain(noise(500, 9))
            .chain([0; 600])
            .chain(text(3000, 2))
            .collect();
        for len in (0..200).chain([4095, 4096, 4097, 7000]) {
            for capacity in [16, 17, 40, 300, 4096] {
                let consumed = round_trip(&mut compressor, &mixed[..len], capacity);
                if capacity == 4096 {
                    assert_eq!(consumed, len, "{len} bytes fit 4 KiB");
                }
            }
        }
    }

    #[test]
    fn output_depends_on_the_input_only() {
        let input = text(50_000, 5);
        let mut fresh = Vec::new();
        Compressor::default().compress(&input, 4096, &mut fresh);
        let mut used = Compressor::default();
        let mut out = Vec::new();
        for seed in 0..20 {
            used.compress(&text(30_000, seed), 4096, &mut out);
        }
        used.compress(&input, 4096, &mut out);
        assert_eq!(out, fresh);
        used.stamp = u32::MAX - 10;
        used.compress(&input, 4096, &mut out);
        assert_eq!(out, fresh, "after the stamps wrap");
    }
}

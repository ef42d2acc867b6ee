//! GNU tar's sparse files in PAX archives (`tar --sparse --format=pax`).
//!
//! A sparse file is archived as its data segments only, with a map of where
//! each goes in a file of a given real size; what lies between segments is
//! a hole and reads as zeros. GNU tar has spelt the map three ways in PAX
//! records: format 0.0 repeats `GNU.sparse.offset` and `GNU.sparse.numbytes`
//! records, 0.1 joins them in one `GNU.sparse.map` record, both with
//! `GNU.sparse.numblocks` and the real size in `GNU.sparse.size`; 1.0
//! (`GNU.sparse.major=1`, `GNU.sparse.minor=0`) writes the map as decimal
//! lines in 512-byte blocks ahead of the data, the real name in
//! `GNU.sparse.name` and the real size in `GNU.sparse.realsize`. Go's
//! archive/tar and so containerd read all three; so does ossify. The older
//! GNU sparse header (entry type `S`) is decoded by the tar crate itself.

use std::io::{self, Read};

use thiserror::Error;

const BLOCK: usize = 512;
/// Digits of the largest u64; a longer number in a map is malformed.
const MAX_DIGITS: usize = 20;
/// The most segments a sparse file may have: its map is held in memory
/// (16 bytes a segment) before any data is placed.
pub const MAX_SEGMENTS: u64 = 1 << 20;

/// A sparse map that cannot be applied.
#[derive(Debug, Error)]
pub enum SparseError {
    /// `GNU.sparse.major`/`minor` name a format GNU tar never wrote.
    #[error("GNU sparse format {major}.{minor} is unknown; ossify reads 0.0, 0.1 and 1.0")]
    UnknownVersion {
        /// `GNU.sparse.major`.
        major: String,
        /// `GNU.sparse.minor`.
        minor: String,
    },
    /// A record or map field is not a decimal number.
    #[error("{field} {value:?} is not a decimal number")]
    NotANumber {
        /// What the number is.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// A required record is missing.
    #[error("the `{0}` record is missing")]
    Missing(&'static str),
    /// Format 0.0 records out of their offset, numbytes order.
    #[error("`GNU.sparse.offset` and `GNU.sparse.numbytes` records do not alternate")]
    Unpaired,
    /// The map holds another number of values than its count says.
    #[error("the map holds {found} numbers for {segments} segments")]
    Count {
        /// The count of segments declared.
        segments: u64,
        /// The numbers present.
        found: u64,
    },
    /// More segments than ossify holds in memory.
    #[error("the map declares {0} segments; ossify takes at most {MAX_SEGMENTS}")]
    TooManySegments(u64),
    /// A segment whose end does not fit 64 bits.
    #[error("the segment at offset {offset} of {length} bytes ends beyond 2^64")]
    Overflow {
        /// Where the segment starts.
        offset: u64,
        /// Its length.
        length: u64,
    },
    /// A segment starting before the previous one ends.
    #[error(
        "the segment at offset {offset} starts before the previous one ends ({previous_end}): segments out of order or overlapping"
    )]
    OutOfOrder {
        /// Where the segment starts.
        offset: u64,
        /// Where the segment before it ends.
        previous_end: u64,
    },
    /// A segment reaching past the file's real size.
    #[error(
        "the segment at offset {offset} of {length} bytes ends beyond the real size {real_size}"
    )]
    BeyondSize {
        /// Where the segment starts.
        offset: u64,
        /// Its length.
        length: u64,
        /// The real size of the file.
        real_size: u64,
    },
    /// The segments hold another amount of data than the entry stores.
    #[error("the map places {mapped} bytes of data but the entry stores {stored}")]
    DataSize {
        /// The sum of the segments' lengths.
        mapped: u64,
        /// The data the entry holds after its map.
        stored: u64,
    },
    /// The entry ends inside its format 1.0 map.
    #[error("the entry ends inside its sparse map")]
    MapTruncated,
    /// The entry's data could not be read while reading its map.
    #[error("cannot read the sparse map")]
    Read(#[source] io::Error),
}

/// One run of data: `length` bytes that go at `offset` of the real file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub(super) offset: u64,
    pub(super) length: u64,
}

impl Segment {
    fn end(&self) -> Result<u64, SparseError> {
        self.offset
            .checked_add(self.length)
            .ok_or(SparseError::Overflow {
                offset: self.offset,
                length: self.length,
            })
    }
}

/// The `GNU.sparse.*` records of one entry, as they were written.
#[derive(Debug, Default)]
pub(super) struct Records {
    major: Option<String>,
    minor: Option<String>,
    name: Option<Vec<u8>>,
    size: Option<String>,
    real_size: Option<String>,
    blocks: Option<String>,
    map: Option<String>,
    /// Format 0.0's records in order: `true` for an offset, `false` for a
    /// numbytes.
    pairs: Vec<(bool, String)>,
}

/// Where a sparse entry's map is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Map {
    /// Formats 0.0 and 0.1: in the records, checked.
    Records(Vec<Segment>),
    /// Format 1.0: at the start of the entry's data.
    InData,
}

/// A sparse entry, as its records describe it.
#[derive(Debug)]
pub(super) struct Sparse {
    /// The file's real name, when the records give one (format 1.0 always).
    pub(super) name: Option<Vec<u8>>,
    /// The file's real size, holes included.
    pub(super) real_size: u64,
    pub(super) map: Map,
}

impl Records {
    /// Takes the record `key` if it is a sparse one; returns whether it was.
    pub(super) fn take(&mut self, key: &[u8], value: &[u8]) -> bool {
        let text = || String::from_utf8_lossy(value).into_owned();
        match key {
            b"GNU.sparse.major" => self.major = Some(text()),
            b"GNU.sparse.minor" => self.minor = Some(text()),
            b"GNU.sparse.name" => self.name = Some(value.to_vec()),
            b"GNU.sparse.size" => self.size = Some(text()),
            b"GNU.sparse.realsize" => self.real_size = Some(text()),
            b"GNU.sparse.numblocks" => self.blocks = Some(text()),
            b"GNU.sparse.map" => self.map = Some(text()),
            b"GNU.sparse.offset" => self.pairs.push((true, text())),
            b"GNU.sparse.numbytes" => self.pairs.push((false, text())),
            _ => return false,
        }
        true
    }

    /// The sparse file these records describe, or `None` when they do not
    /// make the entry a sparse file (as Go decides: a version, or a map).
    pub(super) fn sparse(self) -> Result<Option<Sparse>, SparseError> {
        let version = (self.major.as_deref(), self.minor.as_deref());
        let format_1_0 = match version {
            (Some("0"), Some("0" | "1")) => false,
            (Some("1"), Some("0")) => true,
            (None, None) if self.map.is_some() || !self.pairs.is_empty() => false,
            (None, None) => return Ok(None),
            (major, minor) => {
                return Err(SparseError::UnknownVersion {
                    major: major.unwrap_or_default().to_owned(),
                    minor: minor.unwrap_or_default().to_owned(),
                });
            }
        };
        let (size_record, size) = match (self.size, self.real_size) {
            (Some(size), _) => ("GNU.sparse.size", size),
            (None, Some(size)) => ("GNU.sparse.realsize", size),
            (None, None) => return Err(SparseError::Missing("GNU.sparse.realsize")),
        };
        let real_size = number(size_record, &size)?;
        let map = if format_1_0 {
            Map::InData
        } else {
            let blocks = self
                .blocks
                .ok_or(SparseError::Missing("GNU.sparse.numblocks"))?;
            let blocks = number("GNU.sparse.numblocks", &blocks)?;
            let numbers = match self.map {
                Some(map) if !map.is_empty() => map.split(',').map(str::to_owned).collect(),
                Some(_) => Vec::new(),
                None => paired(self.pairs)?,
            };
            let numbers = numbers
                .iter()
                .map(|n| number("a map entry", n))
                .collect::<Result<Vec<u64>, _>>()?;
            let segments = segments(blocks, &numbers)?;
            check(&segments, real_size)?;
            Map::Records(segments)
        };
        Ok(Some(Sparse {
            name: self.name,
            real_size,
            map,
        }))
    }
}

/// Format 0.0's numbers, once checked to alternate offset, numbytes.
fn paired(pairs: Vec<(bool, String)>) -> Result<Vec<String>, SparseError> {
    let alternate = pairs
        .iter()
        .enumerate()
        .all(|(index, (is_offset, _))| *is_offset == (index % 2 == 0));
    if !alternate || !pairs.len().is_multiple_of(2) {
        return Err(SparseError::Unpaired);
    }
    Ok(pairs.into_iter().map(|(_, value)| value).collect())
}

fn number(field: &'static str, text: &str) -> Result<u64, SparseError> {
    let not_a_number = || SparseError::NotANumber {
        field,
        value: text.chars().take(MAX_DIGITS + 1).collect(),
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    text.parse().map_err(|_| not_a_number())
}

/// Pairs `numbers` into `count` segments.
fn segments(count: u64, numbers: &[u64]) -> Result<Vec<Segment>, SparseError> {
    if numbers.len() as u64 != count_numbers(count)? {
        return Err(SparseError::Count {
            segments: count,
            found: numbers.len() as u64,
        });
    }
    Ok(numbers
        .chunks_exact(2)
        .map(|pair| Segment {
            offset: pair[0],
            length: pair[1],
        })
        .collect())
}

/// How many numbers describe `count` segments, for a count ossify takes.
fn count_numbers(count: u64) -> Result<u64, SparseError> {
    if count > MAX_SEGMENTS {
        return Err(SparseError::TooManySegments(count));
    }
    Ok(count * 2)
}

/// Checks that segments are in order, apart, and inside the real size.
fn check(segments: &[Segment], real_size: u64) -> Result<(), SparseError> {
    let mut previous_end = 0;
    for segment in segments {
        let end = segment.end()?;
        if segment.offset < previous_end {
            return Err(SparseError::OutOfOrder {
                offset: segment.offset,
                previous_end,
            });
        }
        if end > real_size {
            return Err(SparseError::BeyondSize {
                offset: segment.offset,
                length: segment.length,
                real_size,
            });
        }
        previous_end = end;
    }
    Ok(())
}

/// The bytes of data the segments place.
pub(super) fn mapped(segments: &[Segment]) -> u64 {
    segments.iter().map(|s| s.length).sum()
}

/// Reads format 1.0's map from the start of an entry's data: decimal
/// numbers each ended by a newline, the count of segments first, then each
/// segment's offset and length, filling whole 512-byte blocks. Returns the
/// segments, checked against `real_size`, and the bytes the map took.
///
/// Memory follows the input and [`MAX_SEGMENTS`]: segments are collected as
/// they are read, never allocated from the declared count.
pub(super) fn read_map(
    data: &mut impl Read,
    real_size: u64,
) -> Result<(Vec<Segment>, u64), SparseError> {
    let mut tokens = Tokens {
        data,
        block: [0; BLOCK],
        position: BLOCK,
        consumed: 0,
    };
    let count = tokens.number("the segment count")?;
    let mut numbers = Vec::new();
    for _ in 0..count_numbers(count)? {
        numbers.push(tokens.number("a map entry")?);
    }
    let segments = segments(count, &numbers)?;
    check(&segments, real_size)?;
    Ok((segments, tokens.consumed))
}

/// Newline-ended numbers read block by block.
struct Tokens<'d, R> {
    data: &'d mut R,
    block: [u8; BLOCK],
    /// The next unread byte of `block`; `BLOCK` when all are read.
    position: usize,
    /// Bytes taken from `data`, always whole blocks.
    consumed: u64,
}

impl<R: Read> Tokens<'_, R> {
    fn number(&mut self, field: &'static str) -> Result<u64, SparseError> {
        let mut digits = String::new();
        loop {
            if self.position == BLOCK {
                let read =
                    super::read_up_to(self.data, &mut self.block).map_err(SparseError::Read)?;
                if read < BLOCK {
                    return Err(SparseError::MapTruncated);
                }
                self.position = 0;
                self.consumed += BLOCK as u64;
            }
            let byte = self.block[self.position];
            self.position += 1;
            if byte == b'\n' {
                return number(field, &digits);
            }
            if digits.len() > MAX_DIGITS {
                return Err(SparseError::NotANumber {
                    field,
                    value: digits,
                });
            }
            digits.push(char::from(byte));
        }
    }
}

/// A sparse file's contents: its data segments, read in turn from `data`,
/// with zeros for the holes around them, `real_size` bytes in all. Ends
/// early if `data` does.
pub(super) struct Expand<'s, R> {
    data: R,
    segments: &'s [Segment],
    real_size: u64,
    position: u64,
}

impl<'s, R: Read> Expand<'s, R> {
    pub(super) fn new(data: R, segments: &'s [Segment], real_size: u64) -> Self {
        Expand {
            data,
            segments,
            real_size,
            position: 0,
        }
    }
}

impl<R: Read> Read for Expand<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (start, end) = match self.segments.first() {
                Some(segment) => (segment.offset, segment.offset + segment.length),
                None => (self.real_size, self.real_size),
            };
            let room = buf.len() as u64;
            if self.position < start {
                let zeros = (start - self.position).min(room) as usize;
                buf[..zeros].fill(0);
                self.position += zeros as u64;
                return Ok(zeros);
            }
            if self.position < end {
                let wanted = (end - self.position).min(room) as usize;
                let read = self.data.read(&mut buf[..wanted])?;
                self.position += read as u64;
                return Ok(read);
            }
            match self.segments.split_first() {
                Some((_, rest)) => self.segments = rest,
                None => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(pairs: &[(&str, &str)]) -> Records {
        let mut records = Records::default();
        for (key, value) in pairs {
            assert!(records.take(key.as_bytes(), value.as_bytes()), "{key}");
        }
        records
    }

    fn segment(offset: u64, length: u64) -> Segment {
        Segment { offset, length }
    }

    #[test]
    fn formats_0_0_and_0_1_give_the_same_map() {
        let old = records(&[
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.offset", "10"),
            ("GNU.sparse.numbytes", "5"),
            ("GNU.sparse.offset", "50"),
            ("GNU.sparse.numbytes", "0"),
        ]);
        let new = records(&[
            ("GNU.sparse.major", "0"),
            ("GNU.sparse.minor", "1"),
            ("GNU.sparse.size", "100"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.map", "10,5,50,0"),
        ]);
        for records in [old, new] {
            let sparse = records.sparse().unwrap().unwrap();
            assert_eq!(sparse.real_size, 100);
            assert_eq!(
                sparse.map,
                Map::Records(vec![segment(10, 5), segment(50, 0)])
            );
        }
        assert!(records(&[]).sparse().unwrap().is_none());
    }

    /// Records, and what the error they give must match.
    type Case<'a> = (&'a [(&'a str, &'a str)], fn(&SparseError) -> bool);

    #[test]
    fn malformed_records_are_named() {
        let cases: &[Case] = &[
            (
                &[("GNU.sparse.major", "2"), ("GNU.sparse.minor", "0")],
                |e| matches!(e, SparseError::UnknownVersion { .. }),
            ),
            (
                &[("GNU.sparse.map", "0,1"), ("GNU.sparse.numblocks", "1")],
                |e| matches!(e, SparseError::Missing("GNU.sparse.realsize")),
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.numblocks", "1"),
                    ("GNU.sparse.numbytes", "1"),
                    ("GNU.sparse.offset", "0"),
                ],
                |e| matches!(e, SparseError::Unpaired),
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.numblocks", "2"),
                    ("GNU.sparse.map", "0,1"),
                ],
                |e| {
                    matches!(
                        e,
                        SparseError::Count {
                            segments: 2,
                            found: 2
                        }
                    )
                },
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.numblocks", "9223372036854775808"),
                    ("GNU.sparse.map", "0,1"),
                ],
                |e| matches!(e, SparseError::TooManySegments(_)),
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.numblocks", "2"),
                    ("GNU.sparse.map", "4,2,5,1"),
                ],
                |e| {
                    matches!(
                        e,
                        SparseError::OutOfOrder {
                            offset: 5,
                            previous_end: 6
                        }
                    )
                },
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.numblocks", "1"),
                    ("GNU.sparse.map", "8,3"),
                ],
                |e| matches!(e, SparseError::BeyondSize { .. }),
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.numblocks", "1"),
                    ("GNU.sparse.map", "18446744073709551615,1"),
                ],
                |e| matches!(e, SparseError::Overflow { .. }),
            ),
            (
                &[
                    ("GNU.sparse.size", "-1"),
                    ("GNU.sparse.numblocks", "0"),
                    ("GNU.sparse.map", ""),
                ],
                |e| matches!(e, SparseError::NotANumber { .. }),
            ),
        ];
        for (pairs, matcher) in cases {
            let error = records(pairs).sparse().unwrap_err();
            assert!(matcher(&error), "{pairs:?}: {error:?}");
        }
    }

    #[test]
    fn the_1_0_map_fills_whole_blocks() {
        let mut data = b"2\n0\n3\n9\n1\n".to_vec();
        data.resize(BLOCK, 0);
        data.extend_from_slice(b"abcd");
        let mut reader = &data[..];
        let (segments, consumed) = read_map(&mut reader, 10).unwrap();
        assert_eq!(segments, [segment(0, 3), segment(9, 1)]);
        assert_eq!(consumed, BLOCK as u64);
        assert_eq!(reader, b"abcd");

        let long: String = (0..200).map(|i| format!("{}\n{}\n", i * 10, 1)).collect();
        let mut data = format!("200\n{long}").into_bytes();
        data.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
        let (segments, consumed) = read_map(&mut &data[..], 2000).unwrap();
        assert_eq!(segments.len(), 200);
        assert_eq!(consumed, data.len() as u64);

        assert!(matches!(
            read_map(&mut &b"1\n0\n"[..], 10),
            Err(SparseError::MapTruncated)
        ));
        let mut huge = b"9223372036854775808\n".to_vec();
        huge.resize(BLOCK, 0);
        assert!(matches!(
            read_map(&mut &huge[..], 10),
            Err(SparseError::TooManySegments(_))
        ));
        let mut endless = vec![b'7'; BLOCK * 2];
        endless[BLOCK * 2 - 1] = b'\n';
        assert!(matches!(
            read_map(&mut &endless[..], 10),
            Err(SparseError::NotANumber { .. })
        ));
    }

    #[test]
    fn expand_puts_zeros_in_the_holes() {
        let segments = [segment(2, 3), segment(7, 1), segment(10, 0)];
        let mut expanded = Vec::new();
        Expand::new(&b"abcd"[..], &segments, 10)
            .read_to_end(&mut expanded)
            .unwrap();
        assert_eq!(expanded, b"\0\0abc\0\0d\0\0");
        let mut short = Vec::new();
        Expand::new(&b"ab"[..], &segments, 10)
            .read_to_end(&mut short)
            .unwrap();
        assert_eq!(short, b"\0\0ab");
    }
}

//! What the caller chooses about an image: its date, compressor and block
//! size, and how many threads may compress (which never changes the bytes).

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

use thiserror::Error;

use super::Compression;

/// Most threads compressing data blocks at once; more only add memory.
const MAX_THREADS: usize = 8;

/// How to write the image; `Default` gives LinuxKit's layout (gzip, 128 KiB
/// blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// SOURCE_DATE_EPOCH: later mtimes are clamped to it, and it dates the
    /// superblock.
    pub source_date_epoch: u64,
    /// The compressor of data, fragment and metadata blocks.
    pub compression: Compression,
    /// The size of a data block and of a fragment block.
    pub block_size: BlockSize,
    /// Threads compressing a file's data blocks; each block is compressed on
    /// its own, so the image is the same for any count.
    pub threads: NonZeroUsize,
}

impl Default for Options {
    fn default() -> Self {
        let threads =
            std::thread::available_parallelism().map_or(1, |count| count.get().min(MAX_THREADS));
        Options {
            source_date_epoch: 0,
            compression: Compression::default(),
            block_size: BlockSize::default(),
            threads: NonZeroUsize::new(threads).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// A data block size squashfs can hold: a power of two from 4 KiB to 1 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSize(u32);

impl BlockSize {
    /// The smallest block size, 4 KiB.
    pub const MIN: BlockSize = BlockSize(4096);
    /// The largest block size, 1 MiB.
    pub const MAX: BlockSize = BlockSize(1 << 20);

    /// `bytes` as a block size, if it is a power of two from 4 KiB to 1 MiB.
    pub fn new(bytes: u32) -> Result<BlockSize, ParseError> {
        if bytes.is_power_of_two() && (Self::MIN.0..=Self::MAX.0).contains(&bytes) {
            Ok(BlockSize(bytes))
        } else {
            Err(ParseError::BlockSize(bytes.to_string()))
        }
    }

    /// The size in bytes.
    pub fn get(self) -> u32 {
        self.0
    }

    /// log2 of the size, the superblock's `block_log`.
    pub(super) fn log(self) -> u16 {
        self.0.trailing_zeros() as u16
    }
}

impl Default for BlockSize {
    /// 128 KiB, mksquashfs's and LinuxKit's block size.
    fn default() -> Self {
        BlockSize(128 * 1024)
    }
}

impl FromStr for BlockSize {
    type Err = ParseError;

    /// Bytes, or KiB and MiB with a `K`/`KiB` or `M`/`MiB` suffix:
    /// `131072`, `128K`, `1M`.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::BlockSize(text.to_owned());
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let shift = match unit.to_ascii_lowercase().as_str() {
            "" => 0,
            "k" | "kib" => 10,
            "m" | "mib" => 20,
            _ => return Err(bad()),
        };
        let number: u32 = digits.parse().map_err(|_| bad())?;
        let bytes = number.checked_mul(1 << shift).ok_or_else(bad)?;
        BlockSize::new(bytes).map_err(|_| bad())
    }
}

impl fmt::Display for BlockSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 20 {
            write!(f, "{}M", self.0 >> 20)
        } else {
            write!(f, "{}K", self.0 >> 10)
        }
    }
}

/// A compressor name or block size given as text is not one squashfs has.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// Not a compressor name.
    #[error("unknown squashfs compression `{0}`; use one of gzip, xz, zstd, lz4")]
    Compression(String),
    /// Not a block size squashfs can hold.
    #[error(
        "squashfs block size `{0}` is not a power of two from 4K to 1M; use e.g. 128K (the default) or 1M"
    )]
    BlockSize(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_parse_with_units() {
        assert_eq!("131072".parse(), Ok(BlockSize::default()));
        assert_eq!("128K".parse(), Ok(BlockSize::default()));
        assert_eq!("128KiB".parse(), Ok(BlockSize::default()));
        assert_eq!("1M".parse(), Ok(BlockSize::MAX));
        assert_eq!("4k".parse(), Ok(BlockSize::MIN));
        assert_eq!(BlockSize::default().log(), 17);
        assert_eq!(BlockSize::default().to_string(), "128K");
        assert_eq!(BlockSize::MAX.to_string(), "1M");
    }

    #[test]
    fn bad_block_sizes_are_refused() {
        for text in ["", "2K", "2M", "100K", "128X", "K", "99999999999M", "-4K"] {
            let err = text.parse::<BlockSize>().unwrap_err();
            assert_eq!(err, ParseError::BlockSize(text.to_owned()));
            assert!(err.to_string().contains("power of two"));
        }
    }
}

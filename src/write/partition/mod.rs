//! Partition tables: MBR and GPT, written by offset into a disk image file.
//!
//! The tables are laid out in memory (a few KiB) and written with positioned
//! writes into a file the caller has already sized with `set_len`, so a
//! multi-GiB sparse disk never passes through memory. Every id (disk
//! signature, disk and partition GUIDs) comes from the caller.

use std::io;

use thiserror::Error;

pub mod gpt;
pub mod mbr;

/// The logical sector size every table here is laid out in.
pub const SECTOR: u64 = 512;

/// Laying out or writing a partition table failed.
#[derive(Debug, Error)]
pub enum PartitionError {
    /// The table has no room for another entry.
    #[error("the {table} has room for {max} partitions; drop one")]
    TooMany {
        /// MBR or GPT.
        table: &'static str,
        /// The table's entry count.
        max: usize,
    },
    /// A partition does not fit the disk's usable sectors.
    #[error(
        "partition `{name}` (sectors {first}..{end}) does not fit the usable sectors \
         {usable_first}..{usable_end}; make the disk larger or the partition smaller"
    )]
    OutOfRange {
        /// The partition's name, or its index for MBR entries.
        name: String,
        /// Its first sector.
        first: u64,
        /// One past its last sector.
        end: u64,
        /// The first usable sector.
        usable_first: u64,
        /// One past the last usable sector.
        usable_end: u64,
    },
    /// A partition name does not fit the 36 UTF-16 code units of a GPT entry.
    #[error("partition name `{0}` is longer than the 36 UTF-16 code units a GPT entry holds")]
    NameTooLong(String),
    /// Boot code longer than the MBR's boot code area.
    #[error("boot code is {0} bytes, but the MBR holds at most 440; use GRUB's boot.img")]
    BootCodeTooLong(usize),
    /// The disk is too small to hold the table itself.
    #[error("a disk of {sectors} sectors is too small for a {table}")]
    DiskTooSmall {
        /// MBR or GPT.
        table: &'static str,
        /// The disk's size in sectors.
        sectors: u64,
    },
    /// The image file's length differs from the disk size the table was laid out for.
    #[error(
        "the image file is {actual} bytes but the partition table was laid out for {expected}; \
         size the file with set_len first"
    )]
    FileSize {
        /// The disk size the table describes.
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// Writing the table into the image file failed.
    #[error("writing the partition table into the image failed (is the output's disk full?)")]
    Io(#[from] io::Error),
}

/// Checks that `file` is exactly `sectors` sectors long, so that structures
/// placed at "the end of the disk" really are at its end.
fn check_file_size(file: &std::fs::File, sectors: u64) -> Result<(), PartitionError> {
    let actual = file.metadata()?.len();
    let expected = sectors * SECTOR;
    if actual != expected {
        return Err(PartitionError::FileSize { expected, actual });
    }
    Ok(())
}

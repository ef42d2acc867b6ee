//! VHD images of a raw disk, fixed and dynamic (Microsoft's "Virtual Hard
//! Disk Image Format Specification").
//!
//! A fixed VHD is the raw disk followed by a 512-byte footer, written in
//! order (a sink that skips zeros, as ossify's outputs do, keeps it sparse).
//! A dynamic VHD
//! is a footer copy, a dynamic header, a block allocation table (BAT) and
//! 2 MiB blocks, each behind a sector bitmap, then the footer; all-zero
//! blocks are left out of the BAT, so the file is written sequentially
//! after one pass that finds them.
//!
//! The creator fields say Hyper-V ("win "): readers disagree on whether a
//! VHD's size is its footer's current size or its CHS geometry, which
//! rounds down, and qemu (before and after 10.0) takes the current size for
//! this creator. That keeps the disk exactly the raw image's size, and the
//! backup GPT in its last sector.

use std::fs::File;
use std::io::{BufWriter, Write};

use super::raw_image::{ConvertError, RawImage};

const FOOTER_SIZE: usize = 512;
const COOKIE: &[u8; 8] = b"conectix";
/// The "reserved" feature bit, which the spec says must always be set.
const FEATURES: u32 = 2;
const FORMAT_VERSION: u32 = 0x0001_0000;
/// The data offset of a fixed disk, which has no dynamic header.
const NO_DATA_OFFSET: u64 = u64::MAX;
const CREATOR_APP: &[u8; 4] = b"win ";
/// Hyper-V's version field (10.0).
const CREATOR_VERSION: u32 = 0x000A_0000;
const CREATOR_HOST_WINDOWS: &[u8; 4] = b"Wi2k";
const DISK_TYPE_FIXED: u32 = 2;
const DISK_TYPE_DYNAMIC: u32 = 3;
/// Seconds from the Unix epoch to the VHD epoch, 2000-01-01 00:00:00 UTC.
const VHD_EPOCH: u64 = 946_684_800;
/// The largest disk the format is specified for: 2040 GiB.
const MAX_SIZE: u64 = 2040 << 30;

const DYNAMIC_HEADER_SIZE: usize = 1024;
const DYNAMIC_COOKIE: &[u8; 8] = b"cxsparse";
const DYNAMIC_HEADER_VERSION: u32 = 0x0001_0000;
/// 2 MiB, the block size every VHD writer uses.
const BLOCK_SIZE: usize = 2 << 20;
const SECTOR: usize = 512;
/// One bit per sector of a block, padded to whole sectors.
const BITMAP_SIZE: usize = (BLOCK_SIZE / SECTOR / 8).next_multiple_of(SECTOR);
const BAT_UNUSED: u32 = u32::MAX;

/// The caller-given values a VHD records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhdIdentity {
    /// The disk's unique id, e.g. the bytes of a
    /// [`Guid::derive`](super::partition::gpt::Guid::derive)d GUID.
    pub unique_id: [u8; 16],
    /// The creation time, in seconds since the Unix epoch (e.g. `SOURCE_DATE_EPOCH`).
    pub timestamp: u64,
}

/// Writes the raw disk image in `raw` as a fixed VHD to `out`: the image
/// itself, then the footer.
pub fn write_fixed<W: Write>(
    raw: &File,
    mut out: W,
    identity: &VhdIdentity,
) -> Result<W, ConvertError> {
    const FORMAT: &str = "fixed VHD";
    let image = checked_image(raw, FORMAT)?;
    image.copy_to(&mut out, FORMAT)?;
    let footer = footer(image.size(), DISK_TYPE_FIXED, NO_DATA_OFFSET, identity);
    out.write_all(&footer)
        .map_err(ConvertError::write(FORMAT))?;
    Ok(out)
}

/// Writes the raw disk image in `raw` as a dynamic VHD to `out` and returns `out`.
pub fn write_dynamic<W: Write>(
    raw: &File,
    out: W,
    identity: &VhdIdentity,
) -> Result<W, ConvertError> {
    const FORMAT: &str = "dynamic VHD";
    let image = checked_image(raw, FORMAT)?;
    let write_error = ConvertError::write(FORMAT);
    let allocated = image.allocated_chunks(BLOCK_SIZE)?;
    let bat_offset = (FOOTER_SIZE + DYNAMIC_HEADER_SIZE) as u64;
    let bat_size = (allocated.len() * 4).next_multiple_of(SECTOR);
    let first_block = bat_offset + bat_size as u64;

    let mut out = BufWriter::with_capacity(BLOCK_SIZE, out);
    let footer = footer(
        image.size(),
        DISK_TYPE_DYNAMIC,
        FOOTER_SIZE as u64,
        identity,
    );
    out.write_all(&footer).map_err(&write_error)?;
    out.write_all(&dynamic_header(bat_offset, allocated.len() as u32))
        .map_err(&write_error)?;

    let mut bat = vec![0; bat_size];
    let mut next_block = first_block;
    for (entry, &used) in bat.chunks_exact_mut(4).zip(&allocated) {
        let sector = if used {
            // Below MAX_SIZE plus metadata, so well within 32 bits of sectors.
            let sector = (next_block / SECTOR as u64) as u32;
            next_block += (BITMAP_SIZE + BLOCK_SIZE) as u64;
            sector
        } else {
            BAT_UNUSED
        };
        entry.copy_from_slice(&sector.to_be_bytes());
    }
    out.write_all(&bat).map_err(&write_error)?;

    // Every sector of a stored block is marked present.
    let bitmap = [0xFF; BITMAP_SIZE];
    let mut block = vec![0; BLOCK_SIZE];
    for (index, _) in allocated.iter().enumerate().filter(|(_, used)| **used) {
        image.read_chunk(index as u64, &mut block)?;
        out.write_all(&bitmap).map_err(&write_error)?;
        out.write_all(&block).map_err(&write_error)?;
    }
    out.write_all(&footer).map_err(&write_error)?;
    out.into_inner()
        .map_err(|error| write_error(error.into_error()))
}

/// The raw image in `raw`, if `format` can hold its size.
fn checked_image<'a>(raw: &'a File, format: &'static str) -> Result<RawImage<'a>, ConvertError> {
    let image = RawImage::new(raw)?;
    if image.size() > MAX_SIZE {
        return Err(ConvertError::TooLarge {
            format,
            size: image.size(),
            max: MAX_SIZE,
        });
    }
    Ok(image)
}

/// The hard disk footer (big-endian fields).
fn footer(
    size: u64,
    disk_type: u32,
    data_offset: u64,
    identity: &VhdIdentity,
) -> [u8; FOOTER_SIZE] {
    let timestamp = identity.timestamp.saturating_sub(VHD_EPOCH);
    let timestamp = u32::try_from(timestamp).unwrap_or(u32::MAX);
    let (cylinders, heads, sectors_per_track) = geometry(size / SECTOR as u64);
    let mut footer = [0; FOOTER_SIZE];
    footer[0..8].copy_from_slice(COOKIE);
    footer[8..12].copy_from_slice(&FEATURES.to_be_bytes());
    footer[12..16].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    footer[16..24].copy_from_slice(&data_offset.to_be_bytes());
    footer[24..28].copy_from_slice(&timestamp.to_be_bytes());
    footer[28..32].copy_from_slice(CREATOR_APP);
    footer[32..36].copy_from_slice(&CREATOR_VERSION.to_be_bytes());
    footer[36..40].copy_from_slice(CREATOR_HOST_WINDOWS);
    footer[40..48].copy_from_slice(&size.to_be_bytes());
    footer[48..56].copy_from_slice(&size.to_be_bytes());
    footer[56..58].copy_from_slice(&cylinders.to_be_bytes());
    footer[58] = heads;
    footer[59] = sectors_per_track;
    footer[60..64].copy_from_slice(&disk_type.to_be_bytes());
    // 64..68: checksum, over the footer with it zero.
    footer[68..84].copy_from_slice(&identity.unique_id);
    // 84: saved state (none); the rest is reserved.
    let checksum = checksum(&footer);
    footer[64..68].copy_from_slice(&checksum.to_be_bytes());
    footer
}

/// The dynamic disk header for a BAT of `bat_entries` entries at `bat_offset`.
fn dynamic_header(bat_offset: u64, bat_entries: u32) -> [u8; DYNAMIC_HEADER_SIZE] {
    let mut header = [0; DYNAMIC_HEADER_SIZE];
    header[0..8].copy_from_slice(DYNAMIC_COOKIE);
    header[8..16].copy_from_slice(&NO_DATA_OFFSET.to_be_bytes());
    header[16..24].copy_from_slice(&bat_offset.to_be_bytes());
    header[24..28].copy_from_slice(&DYNAMIC_HEADER_VERSION.to_be_bytes());
    header[28..32].copy_from_slice(&bat_entries.to_be_bytes());
    header[32..36].copy_from_slice(&(BLOCK_SIZE as u32).to_be_bytes());
    // 36..40: checksum; 40..: parent fields, unused without a parent.
    let checksum = checksum(&header);
    header[36..40].copy_from_slice(&checksum.to_be_bytes());
    header
}

/// The one's complement of the byte sum, the checksum both headers carry.
fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |sum, &byte| sum.wrapping_add(u32::from(byte)))
}

/// The CHS geometry the spec derives from a size in sectors: cylinders,
/// heads, sectors per track.
fn geometry(total_sectors: u64) -> (u16, u8, u8) {
    let total = total_sectors.min(65_535 * 16 * 255);
    let (sectors_per_track, heads, cylinder_times_heads) = if total >= 65_535 * 16 * 63 {
        (255, 16, total / 255)
    } else {
        let mut sectors_per_track = 17;
        let mut cylinder_times_heads = total / sectors_per_track;
        let mut heads = cylinder_times_heads.div_ceil(1024).max(4);
        if cylinder_times_heads >= heads * 1024 || heads > 16 {
            sectors_per_track = 31;
            heads = 16;
            cylinder_times_heads = total / sectors_per_track;
        }
        if cylinder_times_heads >= heads * 1024 {
            sectors_per_track = 63;
            heads = 16;
            cylinder_times_heads = total / sectors_per_track;
        }
        (sectors_per_track, heads, cylinder_times_heads)
    };
    // Bounded by the clamp above: cylinders <= 65535, heads <= 16, sectors <= 255.
    (
        (cylinder_times_heads / heads) as u16,
        heads as u8,
        sectors_per_track as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn geometry_follows_the_spec_table() {
        // qemu-img, which rounds the size up to whole cylinders, gives one
        // cylinder more for each of these: (1020, 15, 17), (31, 4, 17) and
        // (20561, 16, 255).
        assert_eq!(geometry(127 * 2048), (1019, 15, 17));
        assert_eq!(geometry(2048), (30, 4, 17));
        assert_eq!(geometry(40 << 21), (20560, 16, 255));
        // Past the CHS range the geometry saturates.
        assert_eq!(geometry(u64::MAX), (65_535, 16, 255));
    }

    #[test]
    fn disks_past_2040_gib_are_refused() {
        let raw = tempfile::tempfile().unwrap();
        raw.set_len(MAX_SIZE + 512).unwrap();
        let identity = VhdIdentity {
            unique_id: [0; 16],
            timestamp: 0,
        };
        let error = write_dynamic(&raw, io::sink(), &identity).unwrap_err();
        assert!(matches!(error, ConvertError::TooLarge { size, .. } if size == MAX_SIZE + 512));
        assert!(error.to_string().contains("use qcow2"), "{error}");
    }

    #[test]
    fn footer_records_identity_and_checks_out() {
        let identity = VhdIdentity {
            unique_id: [7; 16],
            timestamp: VHD_EPOCH + 1000,
        };
        let footer = footer(1 << 20, DISK_TYPE_FIXED, NO_DATA_OFFSET, &identity);
        assert_eq!(&footer[0..8], COOKIE);
        assert_eq!(footer[24..28], 1000u32.to_be_bytes());
        assert_eq!(footer[48..56], (1u64 << 20).to_be_bytes());
        assert_eq!(footer[68..84], [7; 16]);
        let mut zeroed = footer;
        zeroed[64..68].fill(0);
        assert_eq!(footer[64..68], checksum(&zeroed).to_be_bytes());
    }
}

//! streamOptimized VMDK images of a raw disk (VMware's "Virtual Disk
//! Format 5.0", the variant clouds and OVF packages import).
//!
//! The format is made for one sequential pass: a sparse extent header
//! whose grain directory is "at the end", the embedded descriptor, then
//! each non-zero 64 KiB grain deflated behind a grain marker, a grain table
//! after every 512 grains (32 MiB), the grain directory, a footer (the
//! header again, now with the directory's offset) and an end-of-stream
//! marker. Memory holds one grain and one grain table.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use flate2::{Compress, Compression, FlushCompress, Status};

use super::raw_image::{ConvertError, RawImage};

const FORMAT: &str = "VMDK";
const SECTOR: u64 = 512;
const MAGIC: &[u8; 4] = b"KDMV";
/// Version 3: compressed grains with markers.
const VERSION: u32 = 3;
/// Header flags: newline-detection test valid (bit 0), compressed grains
/// (bit 16), markers present (bit 17).
const FLAGS: u32 = 1 | 1 << 16 | 1 << 17;
/// Grains are 128 sectors, 64 KiB.
const GRAIN_SECTORS: u64 = 128;
const GRAIN_SIZE: usize = (GRAIN_SECTORS * SECTOR) as usize;
const GRAIN_TABLE_ENTRIES: u64 = 512;
const GRAIN_TABLE_SECTORS: u64 = GRAIN_TABLE_ENTRIES * 4 / SECTOR;
const DESCRIPTOR_OFFSET: u64 = 1;
/// Sectors reserved for the descriptor.
const DESCRIPTOR_SECTORS: u64 = 20;
/// Sectors before the first grain: header and descriptor, rounded up to a grain.
const OVERHEAD_SECTORS: u64 = GRAIN_SECTORS;
/// The header's directory offset meaning "see the footer".
const GD_AT_END: u64 = u64::MAX;
const COMPRESSION_DEFLATE: u16 = 1;
/// The deflate level, gzip's default, as for every other compressed output.
const LEVEL: u32 = 6;
/// Room for a grain that does not compress: deflate adds a few bytes per block.
const COMPRESSED_CAPACITY: usize = GRAIN_SIZE + GRAIN_SIZE / 16;
/// The largest raw image whose stream surely fits the 32-bit sector offsets
/// of grain tables: a grain that does not compress takes up to 137 sectors
/// (marker, deflate overhead, padding) for 128 of disk, and metadata is
/// under one sector more per grain. About 1.8 TiB.
const MAX_SIZE: u64 = u32::MAX as u64 / 138 * GRAIN_SECTORS * SECTOR;
const MARKER_GRAIN_TABLE: u32 = 1;
const MARKER_GRAIN_DIRECTORY: u32 = 2;
const MARKER_FOOTER: u32 = 3;
/// A grain marker's fixed part: the grain's disk sector and its compressed length.
const GRAIN_MARKER_SIZE: usize = 12;

/// Writes the raw disk image in `raw` as a streamOptimized VMDK to `out`
/// and returns `out`. `content_id` is the descriptor's CID, which tools
/// compare between a disk and its snapshots.
pub fn write<W: Write>(raw: &File, out: W, content_id: u32) -> Result<W, ConvertError> {
    let image = RawImage::new(raw)?;
    if image.size() > MAX_SIZE {
        return Err(ConvertError::TooLarge {
            format: FORMAT,
            size: image.size(),
            max: MAX_SIZE,
        });
    }
    let capacity = image.size() / SECTOR;
    let mut stream = Stream {
        out: BufWriter::with_capacity(4 * GRAIN_SIZE, out),
        sector: 0,
    };
    let mut header = [0; SECTOR as usize];
    fill_header(&mut header, capacity, GD_AT_END);
    stream.write(&header)?;
    stream.write_padded(descriptor(capacity, content_id).as_bytes())?;
    stream.write_zeros_to(OVERHEAD_SECTORS)?;

    let mut grain = vec![0; GRAIN_SIZE];
    let mut record = Vec::with_capacity(GRAIN_MARKER_SIZE + COMPRESSED_CAPACITY);
    let mut deflate = Compress::new(Compression::new(LEVEL), true);
    let mut directory = Vec::new();
    let mut table = Vec::with_capacity(GRAIN_TABLE_ENTRIES as usize);
    let grains = image.chunk_count(GRAIN_SIZE);
    for index in 0..grains {
        let entry = if image.read_chunk(index, &mut grain)? {
            grain_record(&mut deflate, index, &grain, &mut record)?;
            let location = stream.sector;
            stream.write_padded(&record)?;
            location
        } else {
            0
        };
        table.push(sector_u32(entry));
        if table.len() as u64 == GRAIN_TABLE_ENTRIES || index + 1 == grains {
            table.resize(GRAIN_TABLE_ENTRIES as usize, 0);
            stream.write(&marker(GRAIN_TABLE_SECTORS, MARKER_GRAIN_TABLE))?;
            directory.push(sector_u32(stream.sector));
            stream.write(&le_words(&table))?;
            table.clear();
        }
    }

    let directory_sectors = (directory.len() as u64 * 4).div_ceil(SECTOR);
    stream.write(&marker(directory_sectors, MARKER_GRAIN_DIRECTORY))?;
    let directory_offset = stream.sector;
    stream.write_padded(&le_words(&directory))?;
    stream.write(&marker(1, MARKER_FOOTER))?;
    fill_header(&mut header, capacity, directory_offset);
    stream.write(&header)?;
    // End of stream: a marker of all zeros.
    stream.write(&[0; SECTOR as usize])?;
    stream
        .out
        .into_inner()
        .map_err(|error| ConvertError::write(FORMAT)(error.into_error()))
}

/// The output and the sector it has reached.
struct Stream<W: Write> {
    out: BufWriter<W>,
    sector: u64,
}

impl<W: Write> Stream<W> {
    /// Writes whole sectors.
    fn write(&mut self, bytes: &[u8]) -> Result<(), ConvertError> {
        debug_assert!((bytes.len() as u64).is_multiple_of(SECTOR));
        self.write_raw(bytes)?;
        self.sector += bytes.len() as u64 / SECTOR;
        Ok(())
    }

    /// Writes `bytes` and zeros up to the next sector boundary.
    fn write_padded(&mut self, bytes: &[u8]) -> Result<(), ConvertError> {
        let len = bytes.len() as u64;
        let padding = (len.next_multiple_of(SECTOR) - len) as usize;
        self.write_raw(bytes)?;
        self.write_raw(&[0; SECTOR as usize][..padding])?;
        self.sector += len.div_ceil(SECTOR);
        Ok(())
    }

    /// Writes zero sectors until sector `target`.
    fn write_zeros_to(&mut self, target: u64) -> Result<(), ConvertError> {
        while self.sector < target {
            self.write(&[0; SECTOR as usize])?;
        }
        Ok(())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ConvertError> {
        self.out
            .write_all(bytes)
            .map_err(ConvertError::write(FORMAT))
    }
}

/// Fills `header` with the sparse extent header (little-endian fields) for
/// a disk of `capacity` sectors whose grain directory is at `directory_offset`.
fn fill_header(header: &mut [u8; SECTOR as usize], capacity: u64, directory_offset: u64) {
    header.fill(0);
    header[0..4].copy_from_slice(MAGIC);
    header[4..8].copy_from_slice(&VERSION.to_le_bytes());
    header[8..12].copy_from_slice(&FLAGS.to_le_bytes());
    header[12..20].copy_from_slice(&capacity.to_le_bytes());
    header[20..28].copy_from_slice(&GRAIN_SECTORS.to_le_bytes());
    header[28..36].copy_from_slice(&DESCRIPTOR_OFFSET.to_le_bytes());
    header[36..44].copy_from_slice(&DESCRIPTOR_SECTORS.to_le_bytes());
    header[44..48].copy_from_slice(&(GRAIN_TABLE_ENTRIES as u32).to_le_bytes());
    // 48..56: redundant grain directory offset (none in a stream).
    header[56..64].copy_from_slice(&directory_offset.to_le_bytes());
    header[64..72].copy_from_slice(&OVERHEAD_SECTORS.to_le_bytes());
    // 72: unclean shutdown (no). 73..77: the newline-detection characters,
    // which reveal a file mangled by a text-mode transfer.
    header[73..77].copy_from_slice(b"\n \r\n");
    header[77..79].copy_from_slice(&COMPRESSION_DEFLATE.to_le_bytes());
}

/// The embedded descriptor for a disk of `capacity` sectors. The extent's
/// file name is fixed: a monolithic stream names itself, and readers do not
/// open it.
fn descriptor(capacity: u64, content_id: u32) -> String {
    // The BIOS geometry VMware reports for SCSI disks: 255 heads, 63 sectors.
    let cylinders = (capacity / (255 * 63)).clamp(1, 65_535);
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         CID={content_id:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity} SPARSE \"disk.vmdk\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.virtualHWVersion = \"4\"\n\
         ddb.adapterType = \"lsilogic\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\n"
    )
}

/// Fills `record` with grain `index`'s marker and its zlib-compressed `grain`.
fn grain_record(
    deflate: &mut Compress,
    index: u64,
    grain: &[u8],
    record: &mut Vec<u8>,
) -> Result<(), ConvertError> {
    record.clear();
    record.extend_from_slice(&(index * GRAIN_SECTORS).to_le_bytes());
    record.extend_from_slice(&[0; 4]);
    deflate.reset();
    let status = deflate
        .compress_vec(grain, record, FlushCompress::Finish)
        .map_err(|error| ConvertError::write(FORMAT)(io::Error::other(error)))?;
    if status != Status::StreamEnd {
        let error = io::Error::other("a grain did not compress into its buffer");
        return Err(ConvertError::write(FORMAT)(error));
    }
    let compressed = (record.len() - GRAIN_MARKER_SIZE) as u32;
    record[8..12].copy_from_slice(&compressed.to_le_bytes());
    Ok(())
}

/// A metadata marker sector: the sectors of metadata that follow and its type.
fn marker(sectors: u64, kind: u32) -> [u8; SECTOR as usize] {
    let mut marker = [0; SECTOR as usize];
    marker[0..8].copy_from_slice(&sectors.to_le_bytes());
    // 8..12: size, zero for metadata.
    marker[12..16].copy_from_slice(&kind.to_le_bytes());
    marker
}

/// `words` as little-endian bytes.
fn le_words(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_le_bytes()).collect()
}

/// A sector offset as the 32-bit value grain tables and directories hold;
/// [`MAX_SIZE`] keeps every offset in range.
fn sector_u32(sector: u64) -> u32 {
    debug_assert!(u32::try_from(sector).is_ok());
    sector as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_descriptor_fits_its_sectors() {
        let longest = descriptor(u64::MAX, u32::MAX);
        assert!(longest.len() as u64 <= DESCRIPTOR_SECTORS * SECTOR);
        assert!(longest.contains("CID=ffffffff\n"));
    }

    #[test]
    fn header_marks_a_compressed_stream_with_its_directory_at_the_end() {
        let mut header = [0; SECTOR as usize];
        fill_header(&mut header, 2048, GD_AT_END);
        assert_eq!(&header[0..4], b"KDMV");
        assert_eq!(header[8..12], 0x0003_0001u32.to_le_bytes());
        assert_eq!(header[56..64], [0xFF; 8]);
        assert_eq!(&header[73..77], b"\n \r\n");
        assert_eq!(header[77..79], [1, 0]);
    }
}

//! Unified Kernel Images: systemd's EFI stub with the kernel, initrd, command
//! line and os-release appended as PE sections, one file UEFI firmware boots.
//!
//! Done the way systemd's `ukify` (v254) does it: the new sections follow the
//! stub's last section at the next SectionAlignment boundary in memory and the
//! next FileAlignment boundary in the file, in the order `.osrel`, `.cmdline`,
//! `.uname`, `.initrd`, `.linux` — the kernel last, so nothing lies after it
//! in memory where it decompresses itself. The headers are patched in place:
//! section count, image size, initialised-data size, and the PE checksum.
//!
//! Bytes after the stub's last section are kept, and the new sections go
//! after them, as ukify places them — with one exception, also ukify's: a
//! COFF symbol table (and its string table) that ends the file is dropped
//! and its header fields zeroed. The PE/COFF spec says an image should have
//! none (it is never loaded), and systemd's stubs carried one until v254, so
//! dropping it keeps the UKI as small as ukify's. A certificate table (a
//! signed stub) is refused, since new sections would invalidate it.

use std::io::{self, Read, Write};

use thiserror::Error;

use super::contents::Contents;

// DOS header.
const PE_OFFSET_FIELD: usize = 0x3C;
const PE_SIGNATURE: &[u8; 4] = b"PE\0\0";
// COFF file header, after the signature.
const COFF_HEADER: usize = 4;
const NUMBER_OF_SECTIONS: usize = 2;
const POINTER_TO_SYMBOL_TABLE: usize = 8;
const NUMBER_OF_SYMBOLS: usize = 12;
const CHARACTERISTICS_FIELD: usize = 18;
const FILE_LOCAL_SYMS_STRIPPED: u16 = 0x0008;
const SYMBOL_LEN: u64 = 18;
const SIZE_OF_OPTIONAL_HEADER: usize = 16;
const COFF_HEADER_LEN: usize = 20;
// Optional header fields, the same in PE32 and PE32+ up to the checksum.
const MAGIC: usize = 0;
const SIZE_OF_INITIALIZED_DATA: usize = 8;
const SECTION_ALIGNMENT: usize = 32;
const FILE_ALIGNMENT: usize = 36;
const SIZE_OF_IMAGE: usize = 56;
const SIZE_OF_HEADERS: usize = 60;
const CHECKSUM: usize = 64;
const MAGIC_PE32: u16 = 0x10B;
const MAGIC_PE32_PLUS: u16 = 0x20B;
/// Where the data directories start, and the certificate table's index.
const DATA_DIRECTORIES_PE32: usize = 96;
const DATA_DIRECTORIES_PE32_PLUS: usize = 112;
const NUMBER_OF_RVA_AND_SIZES_BEFORE_DIRECTORIES: usize = 4;
const CERTIFICATE_TABLE: usize = 4;
const DATA_DIRECTORY_LEN: usize = 8;
// Section header.
const SECTION_HEADER_LEN: usize = 40;
const VIRTUAL_SIZE: usize = 8;
const VIRTUAL_ADDRESS: usize = 12;
const SIZE_OF_RAW_DATA: usize = 16;
const POINTER_TO_RAW_DATA: usize = 20;
const CHARACTERISTICS: usize = 36;
const SCN_CNT_CODE: u32 = 0x0000_0020;
const SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
const SCN_MEM_READ: u32 = 0x4000_0000;

/// Building a UKI failed.
#[derive(Debug, Error)]
pub enum UkiError {
    /// The stub is not a PE image this writer understands.
    #[error("the EFI stub is not a usable PE image: {0}; use systemd-boot's linuxx64.efi.stub")]
    BadStub(&'static str),
    /// The stub carries a signature, which new sections would invalidate.
    #[error(
        "the EFI stub is signed; adding sections would break the signature, use an unsigned stub"
    )]
    SignedStub,
    /// The header area cannot take more section headers.
    #[error(
        "the EFI stub has no room for {needed} more section headers before its first section; use a stub built with a larger SizeOfHeaders"
    )]
    NoHeaderRoom {
        /// Section headers to add.
        needed: usize,
    },
    /// The image would outgrow the 32-bit sizes PE uses.
    #[error("the UKI would be larger than 4 GiB, which PE cannot describe; use a smaller initrd")]
    TooLarge,
    /// Writing the image failed.
    #[error("writing the UKI failed (is the output's disk full?)")]
    Io(#[from] io::Error),
}

/// What goes into a UKI besides the stub.
#[derive(Clone, Copy, Debug)]
pub struct UkiContents<'a> {
    /// os-release contents, shown by boot menus.
    pub osrel: &'a [u8],
    /// The kernel command line.
    pub cmdline: &'a [u8],
    /// The kernel release (`uname -r`), if known.
    pub uname: Option<&'a [u8]>,
    /// The initrd, which can be larger than memory should hold.
    pub initrd: Contents<'a>,
    /// The kernel image (bzImage).
    pub linux: &'a [u8],
}

impl<'a> UkiContents<'a> {
    /// The sections in ukify's order, `.linux` last, with their flags.
    fn sections(&self) -> Vec<(&'static [u8], Contents<'a>, u32)> {
        let data = SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ;
        let mut sections: Vec<(&'static [u8], Contents<'a>, u32)> = vec![
            (b".osrel", self.osrel.into(), data),
            (b".cmdline", self.cmdline.into(), data),
        ];
        if let Some(uname) = self.uname {
            sections.push((b".uname", uname.into(), data));
        }
        sections.push((b".initrd", self.initrd, data));
        // Kernels started through the EFI handover protocol run in place.
        sections.push((b".linux", self.linux.into(), SCN_CNT_CODE | SCN_MEM_READ));
        sections
    }
}

/// A planned UKI: the patched stub and where each section's data goes.
pub struct Uki<'a> {
    /// The stub, headers patched, padded to where the first new section starts.
    head: Vec<u8>,
    /// Each new section's contents and its file size (FileAlignment-padded).
    sections: Vec<(Contents<'a>, u64)>,
}

impl<'a> Uki<'a> {
    /// Lays out `contents` after `stub` and patches the stub's headers.
    pub fn new(stub: &[u8], contents: &UkiContents<'a>) -> Result<Uki<'a>, UkiError> {
        let layout = StubLayout::parse(stub)?;
        let sections = contents.sections();
        let new_table_end =
            layout.section_table + (layout.section_count + sections.len()) * SECTION_HEADER_LEN;
        let headers_end = align(new_table_end as u64, layout.file_alignment);
        if headers_end > layout.first_raw_data {
            return Err(UkiError::NoHeaderRoom {
                needed: sections.len(),
            });
        }
        let mut head = stub[..layout.kept_len].to_vec();
        if layout.kept_len < stub.len() {
            let coff = layout.pe + COFF_HEADER;
            put_u32(&mut head, coff + POINTER_TO_SYMBOL_TABLE, 0);
            put_u32(&mut head, coff + NUMBER_OF_SYMBOLS, 0);
            let characteristics = read_u16(&head, coff + CHARACTERISTICS_FIELD);
            put_u16(
                &mut head,
                coff + CHARACTERISTICS_FIELD,
                characteristics | FILE_LOCAL_SYMS_STRIPPED,
            );
        }
        head.resize(align(head.len() as u64, layout.file_alignment) as usize, 0);
        let mut file_offset = head.len() as u64;
        let mut virtual_end = layout.virtual_end;
        let mut initialized_data =
            u64::from(read_u32(stub, layout.optional + SIZE_OF_INITIALIZED_DATA));
        let mut planned = Vec::with_capacity(sections.len());
        for (index, (name, data, characteristics)) in sections.into_iter().enumerate() {
            let virtual_address = align(virtual_end, layout.section_alignment);
            let raw_size = align(data.len(), layout.file_alignment);
            let header = layout.section_table + (layout.section_count + index) * SECTION_HEADER_LEN;
            let entry = &mut head[header..header + SECTION_HEADER_LEN];
            entry[..name.len()].copy_from_slice(name);
            put_u32(entry, VIRTUAL_SIZE, to_u32(data.len())?);
            put_u32(entry, VIRTUAL_ADDRESS, to_u32(virtual_address)?);
            put_u32(entry, SIZE_OF_RAW_DATA, to_u32(raw_size)?);
            put_u32(entry, POINTER_TO_RAW_DATA, to_u32(file_offset)?);
            put_u32(entry, CHARACTERISTICS, characteristics);
            initialized_data += data.len();
            virtual_end = virtual_address + data.len();
            file_offset += raw_size;
            planned.push((data, raw_size));
        }
        let optional = layout.optional;
        let section_count = layout.section_count + planned.len();
        put_u16(
            &mut head,
            COFF_HEADER + layout.pe + NUMBER_OF_SECTIONS,
            section_count as u16,
        );
        put_u32(
            &mut head,
            optional + SIZE_OF_INITIALIZED_DATA,
            to_u32(initialized_data)?,
        );
        let image_size = align(virtual_end, layout.section_alignment);
        put_u32(&mut head, optional + SIZE_OF_IMAGE, to_u32(image_size)?);
        let headers_size = u64::from(read_u32(stub, optional + SIZE_OF_HEADERS)).max(headers_end);
        put_u32(&mut head, optional + SIZE_OF_HEADERS, to_u32(headers_size)?);
        put_u32(&mut head, optional + CHECKSUM, 0);
        // Section data starts at even offsets and is followed by zeros, so
        // each part's words can be summed on its own.
        let mut sum = word_sum(&head);
        for (data, _) in &planned {
            sum += contents_word_sum(data)?;
        }
        let checksum = fold_carries(sum).wrapping_add(to_u32(file_offset)?);
        put_u32(&mut head, optional + CHECKSUM, checksum);
        Ok(Uki {
            head,
            sections: planned,
        })
    }

    /// Size of the UKI in bytes.
    pub fn size(&self) -> u64 {
        self.head.len() as u64 + self.sections.iter().map(|(_, size)| size).sum::<u64>()
    }

    /// The UKI's bytes as a reader, for placing it in a file system without
    /// a copy in memory.
    pub fn into_reader(self) -> impl Read + 'a {
        let head: Box<dyn Read + 'a> = Box::new(io::Cursor::new(self.head));
        self.sections
            .into_iter()
            .fold(head, |reader, (data, raw_size)| {
                let padding = io::repeat(0).take(raw_size - data.len());
                Box::new(reader.chain(data.reader()).chain(padding))
            })
    }

    /// Writes the UKI to `out` and returns `out`.
    pub fn write<W: Write>(self, mut out: W) -> Result<W, UkiError> {
        io::copy(&mut self.into_reader(), &mut out)?;
        Ok(out)
    }
}

/// What is needed of the stub's headers.
struct StubLayout {
    /// Offset of the PE signature.
    pe: usize,
    optional: usize,
    section_table: usize,
    section_count: usize,
    section_alignment: u64,
    file_alignment: u64,
    /// Where the first section's data begins: the header area ends here.
    first_raw_data: u64,
    /// End of the last section in memory.
    virtual_end: u64,
    /// How much of the stub the UKI keeps: all of it, or up to a trailing
    /// COFF symbol table.
    kept_len: usize,
}

impl StubLayout {
    fn parse(stub: &[u8]) -> Result<StubLayout, UkiError> {
        let bad = UkiError::BadStub;
        let field_u32 = |offset: usize| -> Result<u32, UkiError> {
            stub.get(offset..offset + 4)
                .map(|_| read_u32(stub, offset))
                .ok_or(bad("it is truncated"))
        };
        let field_u16 = |offset: usize| -> Result<u16, UkiError> {
            stub.get(offset..offset + 2)
                .map(|_| read_u16(stub, offset))
                .ok_or(bad("it is truncated"))
        };
        if !stub.starts_with(b"MZ") {
            return Err(bad("no MZ header"));
        }
        let pe = field_u32(PE_OFFSET_FIELD)? as usize;
        if stub.get(pe..pe + 4) != Some(PE_SIGNATURE) {
            return Err(bad("no PE signature"));
        }
        let coff = pe + COFF_HEADER;
        let section_count = usize::from(field_u16(coff + NUMBER_OF_SECTIONS)?);
        let optional = coff + COFF_HEADER_LEN;
        let section_table = optional + usize::from(field_u16(coff + SIZE_OF_OPTIONAL_HEADER)?);
        let directories = match field_u16(optional + MAGIC)? {
            MAGIC_PE32 => optional + DATA_DIRECTORIES_PE32,
            MAGIC_PE32_PLUS => optional + DATA_DIRECTORIES_PE32_PLUS,
            _ => return Err(bad("unknown optional header magic")),
        };
        let directory_count =
            field_u32(directories - NUMBER_OF_RVA_AND_SIZES_BEFORE_DIRECTORIES)? as usize;
        if directory_count > CERTIFICATE_TABLE {
            let certificates = directories + CERTIFICATE_TABLE * DATA_DIRECTORY_LEN;
            if field_u32(certificates)? != 0 || field_u32(certificates + 4)? != 0 {
                return Err(UkiError::SignedStub);
            }
        }
        let section_alignment = u64::from(field_u32(optional + SECTION_ALIGNMENT)?);
        let file_alignment = u64::from(field_u32(optional + FILE_ALIGNMENT)?);
        if !section_alignment.is_power_of_two() || !file_alignment.is_power_of_two() {
            return Err(bad("its alignments are not powers of two"));
        }
        if section_count == 0 {
            return Err(bad("it has no sections"));
        }
        let mut first_raw_data = u64::MAX;
        let mut raw_end = 0;
        let mut virtual_end = 0;
        for index in 0..section_count {
            let header = section_table + index * SECTION_HEADER_LEN;
            let raw_size = field_u32(header + SIZE_OF_RAW_DATA)?;
            let raw_pointer = field_u32(header + POINTER_TO_RAW_DATA)?;
            if raw_size > 0 {
                first_raw_data = first_raw_data.min(u64::from(raw_pointer));
                raw_end = raw_end.max(u64::from(raw_pointer) + u64::from(raw_size));
            }
            let start = u64::from(field_u32(header + VIRTUAL_ADDRESS)?);
            let size = u64::from(field_u32(header + VIRTUAL_SIZE)?);
            virtual_end = virtual_end.max(start + size.max(u64::from(raw_size)));
        }
        // The new section headers go between the table and the first
        // section's data, which must therefore lie inside the stub.
        if first_raw_data > stub.len() as u64 {
            return Err(bad("its sections hold no data inside the file"));
        }
        let kept_len = trailing_symbol_table(stub, coff, raw_end).unwrap_or(stub.len());
        Ok(StubLayout {
            pe,
            optional,
            section_table,
            section_count,
            section_alignment,
            file_alignment,
            first_raw_data,
            virtual_end,
            kept_len,
        })
    }
}

/// Where the stub's COFF symbol table starts, if it and its string table
/// are exactly the bytes from there to the end of the file, after every
/// section's data. Anything else after the sections is not known to be
/// droppable, so it is kept.
fn trailing_symbol_table(stub: &[u8], coff: usize, raw_end: u64) -> Option<usize> {
    let start = u64::from(read_u32(stub, coff + POINTER_TO_SYMBOL_TABLE));
    let symbols = u64::from(read_u32(stub, coff + NUMBER_OF_SYMBOLS));
    if start == 0 || start < raw_end {
        return None;
    }
    let strings_at = usize::try_from(start + symbols * SYMBOL_LEN).ok()?;
    // The string table's first four bytes hold its size, themselves included.
    let strings_len = stub
        .get(strings_at..strings_at.checked_add(4)?)
        .map_or(0, |_| read_u32(stub, strings_at));
    let end = strings_at as u64 + u64::from(strings_len);
    (end == stub.len() as u64).then_some(start as usize)
}

fn align(value: u64, alignment: u64) -> u64 {
    value.next_multiple_of(alignment)
}

fn to_u32(value: u64) -> Result<u32, UkiError> {
    u32::try_from(value).map_err(|_| UkiError::TooLarge)
}

/// Sum of the little-endian 16-bit words of `bytes`, an odd last byte taken
/// as a word with a zero high byte. Carries are folded later.
fn word_sum(bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    let sum: u64 = words
        .by_ref()
        .map(|word| u64::from(u16::from_le_bytes([word[0], word[1]])))
        .sum();
    sum + words.remainder().first().map_or(0, |&byte| u64::from(byte))
}

/// [`word_sum`] of `contents`, taken piece by piece.
fn contents_word_sum(contents: &Contents<'_>) -> io::Result<u64> {
    let mut sum = 0;
    contents.for_each_piece(|piece| sum += word_sum(piece))?;
    Ok(sum)
}

/// Folds a word sum into 16 bits with end-around carry, as the PE checksum
/// (like the IP checksum) adds.
fn fold_carries(mut sum: u64) -> u32 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u32
}

fn read_u16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(field)
}

fn put_u16(bytes: &mut [u8], offset: usize, value: u16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// What follows a synthetic stub's last section.
    #[derive(Clone, Copy)]
    enum Trailer {
        Nothing,
        /// A COFF symbol table of this many symbols and a string table of
        /// this many bytes, ending the file.
        SymbolTable(u32, u32),
        /// Bytes no header accounts for.
        Unknown(usize),
    }

    /// A minimal PE32+ for x86-64 with `count` sections of 0x200 bytes of
    /// data each, starting at `first_raw`, then `trailer`.
    fn synthetic_stub(count: u16, first_raw: u32, trailer: Trailer) -> Vec<u8> {
        let sections_end = first_raw as usize + usize::from(count) * 0x200;
        let mut image: Vec<u8> = (0..sections_end).map(|i| (i % 251) as u8).collect();
        image[..first_raw as usize].fill(0);
        image[..2].copy_from_slice(b"MZ");
        put_u32(&mut image, 0x3C, 0x40);
        image[0x40..0x44].copy_from_slice(b"PE\0\0");
        put_u16(&mut image, 0x44, 0x8664);
        put_u16(&mut image, 0x46, count);
        put_u16(&mut image, 0x54, 240);
        put_u16(&mut image, 0x56, 0x0022);
        let optional = 0x58;
        put_u16(&mut image, optional, MAGIC_PE32_PLUS);
        put_u32(&mut image, optional + 8, 0x200 * u32::from(count));
        put_u32(&mut image, optional + 32, 0x1000);
        put_u32(&mut image, optional + 36, 0x200);
        put_u32(&mut image, optional + 60, first_raw);
        put_u32(&mut image, optional + 108, 16);
        for index in 0..u32::from(count) {
            let header = optional + 240 + 40 * index as usize;
            image[header..header + 5].copy_from_slice(b".data");
            put_u32(&mut image, header + 8, 0x1F0);
            put_u32(&mut image, header + 12, 0x1000 * (index + 1));
            put_u32(&mut image, header + 16, 0x200);
            put_u32(&mut image, header + 20, first_raw + 0x200 * index);
            put_u32(&mut image, header + 36, 0x4000_0040);
        }
        match trailer {
            Trailer::Nothing => {}
            Trailer::SymbolTable(symbols, strings) => {
                put_u32(&mut image, 0x4C, sections_end as u32);
                put_u32(&mut image, 0x50, symbols);
                image.resize(sections_end + 18 * symbols as usize, 0x5A);
                image.extend_from_slice(&strings.to_le_bytes());
                image.resize(image.len() + strings as usize - 4, b's');
            }
            Trailer::Unknown(len) => image.resize(sections_end + len, 0xA5),
        }
        image
    }

    fn contents<'a>(linux: &'a [u8], initrd: &'a [u8]) -> UkiContents<'a> {
        UkiContents {
            osrel: b"ID=ossify\nNAME=Ossify\n",
            cmdline: b"console=ttyS0 panic=-1",
            uname: Some(b"6.1.0-57-amd64"),
            initrd: initrd.into(),
            linux,
        }
    }

    fn le16(bytes: &[u8], offset: usize) -> u64 {
        u64::from(u16::from_le_bytes([bytes[offset], bytes[offset + 1]]))
    }

    fn le32(bytes: &[u8], offset: usize) -> u64 {
        u64::from(u32::from_le_bytes(
            bytes[offset..offset + 4].try_into().unwrap(),
        ))
    }

    /// One section header as read back from an image.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        name: String,
        virtual_size: u64,
        virtual_address: u64,
        raw_size: u64,
        raw_pointer: u64,
        characteristics: u64,
    }

    fn parse_sections(image: &[u8]) -> (usize, Vec<Parsed>) {
        let pe = le32(image, 0x3C) as usize;
        let count = le16(image, pe + 6) as usize;
        let optional = pe + 24;
        let table = optional + le16(image, pe + 20) as usize;
        let sections = (0..count)
            .map(|index| {
                let header = &image[table + 40 * index..table + 40 * (index + 1)];
                Parsed {
                    name: String::from_utf8_lossy(&header[..8])
                        .trim_end_matches('\0')
                        .to_owned(),
                    virtual_size: le32(header, 8),
                    virtual_address: le32(header, 12),
                    raw_size: le32(header, 16),
                    raw_pointer: le32(header, 20),
                    characteristics: le32(header, 36),
                }
            })
            .collect();
        (optional, sections)
    }

    /// The PE checksum as the spec's reference loop computes it: add each
    /// word, folding the carry every step, skipping the checksum field.
    fn reference_checksum(image: &[u8], checksum_field: usize) -> u64 {
        let mut sum = 0u64;
        for offset in (0..image.len()).step_by(2) {
            if offset == checksum_field || offset == checksum_field + 2 {
                continue;
            }
            let high = image.get(offset + 1).copied().unwrap_or(0);
            sum += u64::from(u16::from_le_bytes([image[offset], high]));
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        sum + image.len() as u64
    }

    /// Builds a UKI on `stub` and checks its layout: the stub's sections
    /// unchanged, the new ones in ukify's order, the first at
    /// `first_new_raw` in the file, each aligned and right after the one
    /// before, the headers patched and the checksum the spec's; returns it.
    fn check_layout(stub: &[u8], first_new_raw: u64) -> Vec<u8> {
        let linux: Vec<u8> = (0..300_001u32).map(|i| (i * 7) as u8).collect();
        let initrd: Vec<u8> = (0..70_003u32).map(|i| (i * 13) as u8).collect();
        let contents = contents(&linux, &initrd);
        let uki = Uki::new(stub, &contents).unwrap();
        let size = uki.size();
        let image = uki.write(Vec::new()).unwrap();
        assert_eq!(image.len() as u64, size);

        let (stub_optional, stub_sections) = parse_sections(stub);
        let (optional, sections) = parse_sections(&image);
        let section_alignment = le32(&image, optional + 32);
        let file_alignment = le32(&image, optional + 36);
        assert_eq!(&sections[..stub_sections.len()], &stub_sections[..]);
        let added = &sections[stub_sections.len()..];
        let names: Vec<&str> = added.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [".osrel", ".cmdline", ".uname", ".initrd", ".linux"]);
        let expected: [&[u8]; 5] = [
            contents.osrel,
            contents.cmdline,
            contents.uname.unwrap(),
            &initrd,
            &linux,
        ];
        assert_eq!(added[0].raw_pointer, first_new_raw);
        let mut previous = stub_sections.last().unwrap();
        for (index, (section, data)) in added.iter().zip(expected).enumerate() {
            assert_eq!(section.virtual_size, data.len() as u64, "{}", section.name);
            assert_eq!(section.virtual_address % section_alignment, 0);
            assert_eq!(
                section.virtual_address,
                (previous.virtual_address + previous.virtual_size.max(previous.raw_size))
                    .next_multiple_of(section_alignment)
            );
            assert_eq!(section.raw_pointer % file_alignment, 0);
            assert_eq!(
                section.raw_size,
                (data.len() as u64).next_multiple_of(file_alignment)
            );
            if index > 0 {
                assert_eq!(
                    section.raw_pointer,
                    previous.raw_pointer + previous.raw_size
                );
            }
            let start = section.raw_pointer as usize;
            assert_eq!(&image[start..start + data.len()], data, "{}", section.name);
            previous = section;
        }
        assert_eq!(added[4].characteristics, 0x4000_0020);
        assert_eq!(added[0].characteristics, 0x4000_0040);
        assert_eq!(image.len() as u64, previous.raw_pointer + previous.raw_size);
        assert_eq!(
            le32(&image, optional + 56),
            (previous.virtual_address + previous.virtual_size).next_multiple_of(section_alignment)
        );
        let added_data: u64 = expected.iter().map(|data| data.len() as u64).sum();
        assert_eq!(
            le32(&image, optional + 8),
            le32(stub, stub_optional + 8) + added_data
        );
        let table_end = optional + le16(&image, optional - 4) as usize + 40 * sections.len();
        assert!(le32(&image, optional + 60) >= table_end as u64);
        assert!(le32(&image, optional + 60) <= sections[0].raw_pointer);
        assert_eq!(
            le32(&image, optional + 64),
            reference_checksum(&image, optional + 64)
        );
        // Everything else the UKI keeps of the stub is unchanged.
        let kept = (stub.len() as u64).min(first_new_raw) as usize;
        assert!(image[table_end..kept] == stub[table_end..kept]);
        image
    }

    #[test]
    fn sections_follow_the_last_section_of_a_stub_that_ends_there() {
        let stub = synthetic_stub(3, 0x400, Trailer::Nothing);
        check_layout(&stub, 0x400 + 3 * 0x200);
    }

    #[test]
    fn a_trailing_symbol_table_is_dropped_as_ukify_drops_it() {
        // 12,641 bytes after the last section, as in Debian 12's stub.
        let stub = synthetic_stub(3, 0x400, Trailer::SymbolTable(600, 1841));
        assert_eq!(stub.len() - (0x400 + 3 * 0x200), 12_641);
        let image = check_layout(&stub, 0x400 + 3 * 0x200);
        assert_eq!(le32(&image, 0x4C), 0, "PointerToSymbolTable");
        assert_eq!(le32(&image, 0x50), 0, "NumberOfSymbols");
        assert_eq!(le16(&image, 0x56), 0x0022 | 0x0008, "LOCAL_SYMS_STRIPPED");
    }

    #[test]
    fn other_bytes_after_the_sections_are_kept_before_the_new_ones() {
        let sections_end = 0x400 + 3 * 0x200;
        let unknown = synthetic_stub(3, 0x400, Trailer::Unknown(1000));
        check_layout(&unknown, (sections_end + 1000u64).next_multiple_of(0x200));

        // A symbol table that does not end the file is not known to be
        // the only thing there, so it stays, and so do its header fields.
        let mut followed = synthetic_stub(3, 0x400, Trailer::SymbolTable(10, 4));
        followed.extend_from_slice(b"more");
        let end = followed.len() as u64;
        let image = check_layout(&followed, end.next_multiple_of(0x200));
        assert_eq!(le32(&image, 0x4C), sections_end);
        assert_eq!(le32(&image, 0x50), 10);
    }

    /// The host's stub, whatever its version: only properties that hold for
    /// any stub are checked on it.
    #[test]
    #[ignore = "heavy: needs systemd-boot-efi and binutils (scripts/test.sh)"]
    fn objdump_reads_a_uki_built_on_the_hosts_stub() {
        const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
        let stub = std::fs::read(STUB).unwrap_or_else(|error| {
            panic!("cannot read {STUB} ({error}): install systemd-boot-efi")
        });
        let linux = vec![0xCC; 123_457];
        let initrd = vec![0x1F; 54_321];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ossify.efi");
        let image = Uki::new(&stub, &contents(&linux, &initrd))
            .unwrap()
            .write(Vec::new())
            .unwrap();
        std::fs::write(&path, &image).unwrap();
        let output = Command::new("objdump")
            .arg("-h")
            .arg(&path)
            .output()
            .unwrap_or_else(|error| panic!("cannot run objdump ({error}): install binutils"));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listing = String::from_utf8(output.stdout).unwrap();
        assert!(listing.contains("file format pei-x86-64"), "{listing}");
        // "Idx Name Size VMA LMA File-off Algn" rows.
        let rows: Vec<Vec<&str>> = listing
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| fields.len() == 7 && fields[0].parse::<u32>().is_ok())
            .collect();
        let listed: Vec<(&str, u64)> = rows
            .iter()
            .map(|fields| (fields[1], u64::from_str_radix(fields[2], 16).unwrap()))
            .collect();
        let tail = &listed[listed.len() - 5..];
        assert_eq!(
            tail,
            [
                (".osrel", 22),
                (".cmdline", 22),
                (".uname", 14),
                (".initrd", 54_321),
                (".linux", 123_457),
            ]
        );
        let (_, sections) = parse_sections(&image);
        let linux_row = rows.last().unwrap();
        assert_eq!(
            u64::from_str_radix(linux_row[5], 16).unwrap(),
            sections.last().unwrap().raw_pointer
        );
    }

    /// An initrd read from a file, in many pieces and of odd length, gives
    /// the same image, checksum included, as the same bytes in memory.
    #[test]
    fn an_initrd_in_a_file_gives_the_same_image() {
        use std::io::Write as _;
        let stub = synthetic_stub(3, 0x400, Trailer::Nothing);
        let linux = vec![0xCC; 4097];
        let initrd: Vec<u8> = (0..1_234_567u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&initrd).unwrap();
        let in_memory = Uki::new(&stub, &contents(&linux, &initrd))
            .unwrap()
            .write(Vec::new())
            .unwrap();
        let from_file = UkiContents {
            initrd: Contents::file(&file, initrd.len() as u64),
            ..contents(&linux, b"")
        };
        let uki = Uki::new(&stub, &from_file).unwrap();
        assert_eq!(uki.size(), in_memory.len() as u64);
        assert!(uki.write(Vec::new()).unwrap() == in_memory);
    }

    #[test]
    fn header_room_is_checked() {
        let contents = contents(b"kernel", b"initrd");
        // 0x148 + 40 * (12 + 5) = 0x3F0 fits before 0x400; one more does not.
        assert!(Uki::new(&synthetic_stub(12, 0x400, Trailer::Nothing), &contents).is_ok());
        assert!(matches!(
            Uki::new(&synthetic_stub(13, 0x400, Trailer::Nothing), &contents),
            Err(UkiError::NoHeaderRoom { needed: 5 })
        ));
    }

    #[test]
    fn rejects_signed_and_malformed_stubs() {
        let contents = contents(b"kernel", b"initrd");
        let mut signed = synthetic_stub(2, 0x400, Trailer::Nothing);
        put_u32(&mut signed, 0x58 + 112 + 4 * 8, 0x800);
        assert!(matches!(
            Uki::new(&signed, &contents),
            Err(UkiError::SignedStub)
        ));
        assert!(matches!(
            Uki::new(b"MZ", &contents),
            Err(UkiError::BadStub(_))
        ));
        assert!(matches!(
            Uki::new(b"\x7fELF", &contents),
            Err(UkiError::BadStub(_))
        ));
        let mut truncated = synthetic_stub(2, 0x400, Trailer::Nothing);
        truncated.truncate(0x100);
        assert!(matches!(
            Uki::new(&truncated, &contents),
            Err(UkiError::BadStub(_))
        ));
        // Sections without data (or with data past the end) leave no room
        // the new headers could be known to fit in.
        for first_raw in [0, 0x10_0000] {
            let mut hollow = synthetic_stub(2, 0x400, Trailer::Nothing);
            for index in 0..2 {
                let header = 0x58 + 240 + 40 * index;
                put_u32(
                    &mut hollow,
                    header + 16,
                    if first_raw == 0 { 0 } else { 0x200 },
                );
                put_u32(&mut hollow, header + 20, first_raw);
            }
            assert!(matches!(
                Uki::new(&hollow, &contents),
                Err(UkiError::BadStub(_))
            ));
        }
    }
}

//! GRUB's core image, assembled as `grub-mkimage -O i386-pc` assembles it:
//!
//! ```text
//! diskboot.img | lzma_decompress.img | LZMA(kernel | module area)
//! ```
//!
//! `diskboot.img` (one sector) loads the rest from the sectors after it;
//! `lzma_decompress.img` unpacks the payload to GRUB's link address, 0x9000.
//! The payload is the kernel as loaded in memory and the module area: the
//! modules, the optional embedded configuration and the prefix.

use std::io::Write;

use lzma_rust2::{LzmaOptions, LzmaWriter};

use super::{GrubError, GrubPcFiles, moddep};

pub const SECTOR_SIZE: usize = 512;
/// The sector the core image is written to, right after the MBR.
pub const CORE_IMAGE_LBA: u64 = 1;

/// Where GRUB's kernel is linked and the payload is unpacked to.
const LINK_ADDRESS: usize = 0x9000;
/// The payload must end below this address (`GRUB_MEMORY_I386_PC_UPPER`).
const UPPER_MEMORY: usize = 0x78000;

const KERNEL_IMG: &str = "kernel.img";
const ELF_MAGIC: &[u8] = b"\x7fELF";
const ELF_CLASS: usize = 4;
const ELF_CLASS_32: u8 = 1;
const ELF_DATA: usize = 5;
const ELF_DATA_LITTLE_ENDIAN: u8 = 1;
/// ELF header: section header table offset (u32), entry size and count (u16).
const ELF_SHOFF: usize = 0x20;
const ELF_SHENTSIZE: usize = 0x2E;
const ELF_SHNUM: usize = 0x30;
/// Section header: type, flags, address, file offset, size (all u32).
const SH_TYPE: usize = 0x04;
const SH_FLAGS: usize = 0x08;
const SH_ADDR: usize = 0x0C;
const SH_OFFSET: usize = 0x10;
const SH_SIZE: usize = 0x14;
const SH_MIN_ENTSIZE: usize = 0x28;
const SHT_PROGBITS: u32 = 1;
const SHF_ALLOC: u32 = 2;

/// Module area header `{magic, offset, size}` (`struct grub_module_info32`).
const MODULE_INFO_MAGIC: u32 = 0x676d_696d;
const MODULE_INFO_SIZE: u32 = 12;
/// Module header `{type, size}` (`struct grub_module_header`); size counts
/// the header and the padded contents.
const MODULE_HEADER_SIZE: usize = 8;
const OBJ_TYPE_ELF: u32 = 0;
const OBJ_TYPE_CONFIG: u32 = 2;
const OBJ_TYPE_PREFIX: u32 = 3;
/// Module contents are padded to the target's pointer size.
const MODULE_ALIGN: usize = 4;

/// LZMA parameters the decompressor has hard-coded; the dictionary size is
/// not read (the output is its own dictionary), so GRUB's 64 KiB is used.
const LZMA_LC: u32 = 3;
const LZMA_LP: u32 = 0;
const LZMA_PB: u32 = 2;
const LZMA_DICTIONARY: u32 = 1 << 16;
/// The encoder preset for match finder and effort: xz's default.
const LZMA_PRESET: u32 = 6;

const DECOMPRESSOR_IMG: &str = "lzma_decompress.img";
/// `lzma_decompress.img`: compressed and uncompressed payload sizes (u32).
const COMPRESSED_SIZE: usize = 0x08;
const UNCOMPRESSED_SIZE: usize = 0x0C;

const DISKBOOT_IMG: &str = "diskboot.img";
/// `diskboot.img`'s blocklist `{u64 start, u16 sectors, u16 segment}`: the
/// sectors after it to load, and where.
const BLOCKLIST_START: usize = 0x1F4;
const BLOCKLIST_SECTORS: usize = 0x1FC;
const BLOCKLIST_SEGMENT: usize = 0x1FE;
/// The decompressor runs at 0x8200, right after `diskboot.img` at 0x8000.
const DECOMPRESSOR_SEGMENT: u16 = 0x820;

/// GRUB's core image for a BIOS disk, padded to whole sectors, to be written
/// at [`CORE_IMAGE_LBA`]: the kernel with `modules` and their dependencies
/// (from `moddep.lst`) embedded, `config` as embedded configuration if given,
/// and `prefix`, the directory GRUB reads `grub.cfg` and modules from (e.g.
/// `(,msdos1)/boot/grub`). `gap_sectors` is the number of sectors from
/// [`CORE_IMAGE_LBA`] to the first partition.
pub fn core_image(
    files: &GrubPcFiles,
    modules: &[&str],
    prefix: &str,
    config: Option<&str>,
    gap_sectors: u64,
) -> Result<Vec<u8>, GrubError> {
    let payload = payload(files, modules, prefix, config)?;
    let compressed = compress(&payload)?;

    let mut body = decompressor(files, compressed.len(), payload.len())?;
    body.extend_from_slice(&compressed);
    pad_to(&mut body, SECTOR_SIZE);
    let body_sectors = body.len() / SECTOR_SIZE;

    let mut image = diskboot(files, body_sectors)?;
    image.extend_from_slice(&body);
    let needed = (image.len() / SECTOR_SIZE) as u64;
    if needed > gap_sectors {
        return Err(GrubError::GapTooSmall {
            needed,
            available: gap_sectors,
        });
    }
    Ok(image)
}

/// The uncompressed payload: the kernel as loaded, then the module area.
fn payload(
    files: &GrubPcFiles,
    modules: &[&str],
    prefix: &str,
    config: Option<&str>,
) -> Result<Vec<u8>, GrubError> {
    let mut payload = kernel(files.get(KERNEL_IMG)?)?;
    let moddep = std::str::from_utf8(files.get("moddep.lst")?)
        .map_err(|_| GrubError::malformed("moddep.lst", "it is not UTF-8 text"))?;
    let mut area = ModuleArea::default();
    for module in moddep::load_order(moddep, modules)? {
        area.push(OBJ_TYPE_ELF, files.get(&format!("{module}.mod"))?);
    }
    if let Some(config) = config {
        area.push_string(OBJ_TYPE_CONFIG, config);
    }
    area.push_string(OBJ_TYPE_PREFIX, prefix);
    area.append_to(&mut payload);

    let limit = UPPER_MEMORY - LINK_ADDRESS;
    if payload.len() > limit {
        return Err(GrubError::PayloadTooLarge {
            size: payload.len(),
            limit,
        });
    }
    Ok(payload)
}

/// `kernel.img` (ELF32) as loaded at [`LINK_ADDRESS`]: its allocated
/// sections with contents, each at its address; `.bss` is not stored.
fn kernel(elf: &[u8]) -> Result<Vec<u8>, GrubError> {
    let malformed = |reason: &str| GrubError::malformed(KERNEL_IMG, reason);
    if !elf.starts_with(ELF_MAGIC)
        || elf.get(ELF_CLASS) != Some(&ELF_CLASS_32)
        || elf.get(ELF_DATA) != Some(&ELF_DATA_LITTLE_ENDIAN)
    {
        return Err(malformed("it is not a little-endian ELF32 file"));
    }
    let truncated = || malformed("its section headers are truncated");
    let table = read_u32(elf, ELF_SHOFF).ok_or_else(truncated)? as usize;
    let entry_size = usize::from(read_u16(elf, ELF_SHENTSIZE).ok_or_else(truncated)?);
    let count = usize::from(read_u16(elf, ELF_SHNUM).ok_or_else(truncated)?);
    if entry_size < SH_MIN_ENTSIZE {
        return Err(malformed("its section header size is too small"));
    }

    let mut image = Vec::new();
    for index in 0..count {
        let header = table
            .checked_add(index * entry_size)
            .and_then(|start| elf.get(start..start.checked_add(entry_size)?))
            .ok_or_else(truncated)?;
        let field = |offset| read_u32(header, offset).ok_or_else(truncated);
        if field(SH_TYPE)? != SHT_PROGBITS || field(SH_FLAGS)? & SHF_ALLOC == 0 {
            continue;
        }
        let (address, offset, size) = (
            field(SH_ADDR)? as usize,
            field(SH_OFFSET)? as usize,
            field(SH_SIZE)? as usize,
        );
        let contents = offset
            .checked_add(size)
            .and_then(|end| elf.get(offset..end))
            .ok_or_else(|| malformed("a section lies outside the file"))?;
        let start = address
            .checked_sub(LINK_ADDRESS)
            .filter(|start| start + size <= UPPER_MEMORY - LINK_ADDRESS)
            .ok_or_else(|| malformed("a section lies outside GRUB's memory"))?;
        if image.len() < start + size {
            image.resize(start + size, 0);
        }
        image[start..start + size].copy_from_slice(contents);
    }
    Ok(image)
}

/// The module area that follows the kernel.
#[derive(Default)]
struct ModuleArea {
    /// The module headers and contents, without the area header.
    modules: Vec<u8>,
}

impl ModuleArea {
    fn push(&mut self, kind: u32, contents: &[u8]) {
        let padded = contents.len().next_multiple_of(MODULE_ALIGN);
        push_u32(&mut self.modules, kind);
        push_u32(&mut self.modules, (MODULE_HEADER_SIZE + padded) as u32);
        self.modules.extend_from_slice(contents);
        pad_to(&mut self.modules, MODULE_ALIGN);
    }

    /// A NUL-terminated string module.
    fn push_string(&mut self, kind: u32, text: &str) {
        let mut contents = text.as_bytes().to_vec();
        contents.push(0);
        self.push(kind, &contents);
    }

    fn append_to(self, payload: &mut Vec<u8>) {
        push_u32(payload, MODULE_INFO_MAGIC);
        push_u32(payload, MODULE_INFO_SIZE);
        push_u32(payload, MODULE_INFO_SIZE + self.modules.len() as u32);
        payload.extend_from_slice(&self.modules);
    }
}

/// Raw LZMA1, no header and no end marker, as `lzma_decompress.img` reads it.
fn compress(payload: &[u8]) -> Result<Vec<u8>, GrubError> {
    let mut options = LzmaOptions::with_preset(LZMA_PRESET);
    options.lc = LZMA_LC;
    options.lp = LZMA_LP;
    options.pb = LZMA_PB;
    options.dict_size = LZMA_DICTIONARY;
    let mut writer =
        LzmaWriter::new_no_header(Vec::new(), &options, false).map_err(GrubError::Compress)?;
    writer.write_all(payload).map_err(GrubError::Compress)?;
    writer.finish().map_err(GrubError::Compress)
}

/// `lzma_decompress.img` told the payload's sizes.
fn decompressor(
    files: &GrubPcFiles,
    compressed: usize,
    uncompressed: usize,
) -> Result<Vec<u8>, GrubError> {
    let mut image = files.get(DECOMPRESSOR_IMG)?.to_vec();
    if image.len() < UNCOMPRESSED_SIZE + 4 {
        return Err(GrubError::malformed(DECOMPRESSOR_IMG, "it is too short"));
    }
    // Both fit: the payload is limited to UPPER_MEMORY, compression adds
    // little to incompressible data.
    write_u32(&mut image, COMPRESSED_SIZE, compressed as u32);
    write_u32(&mut image, UNCOMPRESSED_SIZE, uncompressed as u32);
    Ok(image)
}

/// `diskboot.img` told to load the `sectors` after it.
fn diskboot(files: &GrubPcFiles, sectors: usize) -> Result<Vec<u8>, GrubError> {
    let mut image = files.get(DISKBOOT_IMG)?.to_vec();
    if image.len() != SECTOR_SIZE {
        return Err(GrubError::malformed(DISKBOOT_IMG, "it is not one sector"));
    }
    let start = CORE_IMAGE_LBA + 1;
    image[BLOCKLIST_START..BLOCKLIST_START + 8].copy_from_slice(&start.to_le_bytes());
    let sectors = u16::try_from(sectors)
        .map_err(|_| GrubError::malformed(DECOMPRESSOR_IMG, "it is too large"))?;
    image[BLOCKLIST_SECTORS..BLOCKLIST_SECTORS + 2].copy_from_slice(&sectors.to_le_bytes());
    image[BLOCKLIST_SEGMENT..BLOCKLIST_SEGMENT + 2]
        .copy_from_slice(&DECOMPRESSOR_SEGMENT.to_le_bytes());
    Ok(image)
}

fn pad_to(bytes: &mut Vec<u8>, multiple: usize) {
    bytes.resize(bytes.len().next_multiple_of(multiple), 0);
}

fn push_u32(bytes: &mut Vec<u8>, value: u32) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

fn write_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(offset..offset + 2)?.try_into().ok()?,
    ))
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}

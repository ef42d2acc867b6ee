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

/// A disk sector: the unit of `diskboot.img`'s blocklist and of the gap.
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
    let moddep = std::str::from_utf8(files.get(moddep::MODDEP)?)
        .map_err(|_| GrubError::malformed(moddep::MODDEP, "it is not UTF-8 text"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::path::Path;
    use std::process::Command;

    use lzma_rust2::LzmaReader;
    use sha2::Digest;

    use crate::write::grub::{MODULES, PREFIX};

    const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";
    const GAP: u64 = 2047;

    /// A module's made-up contents: distinct bytes of `len`, not a multiple
    /// of the module alignment, so padding shows.
    fn module_bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
            .collect()
    }

    /// Made-up i386-pc files with the stock files' layout: a kernel.img with
    /// two allocated sections, [`MODULES`] with a dependency graph shaped
    /// like GRUB's (shared and nested dependencies) in `moddep.lst`, a
    /// one-sector `diskboot.img` and a decompressor. `large` is the size of
    /// three extra modules nothing depends on.
    fn synthetic_files(large: usize) -> GrubPcFiles {
        let moddep = "\
normal: crypto terminal extcmd boot gettext bufio datetime net gzio
linux: video boot relocator mmap
fat: fshelp
biosdisk:
part_msdos:
serial: terminfo extcmd
terminfo: extcmd
crypto:
terminal:
extcmd:
boot:
gettext:
bufio:
datetime:
net: priority_queue datetime boot
priority_queue:
gzio:
video:
relocator: mmap
mmap:
fshelp:
big1:
big2:
big3:
";
        let mut files = BTreeMap::new();
        for (index, line) in moddep.lines().enumerate() {
            let name = line.split_once(':').unwrap().0;
            let len = if name.starts_with("big") {
                large
            } else {
                301 + 97 * index
            };
            files.insert(format!("{name}.mod"), module_bytes(index as u8, len));
        }
        files.insert(moddep::MODDEP.to_owned(), moddep.as_bytes().to_vec());
        files.insert(
            KERNEL_IMG.to_owned(),
            elf32(&[
                (SHT_PROGBITS, SHF_ALLOC, 0x9000, &module_bytes(0xA0, 5000)),
                (SHT_PROGBITS, SHF_ALLOC, 0xA400, &module_bytes(0xA1, 777)),
            ]),
        );
        files.insert(DISKBOOT_IMG.to_owned(), module_bytes(0xD0, SECTOR_SIZE));
        files.insert(DECOMPRESSOR_IMG.to_owned(), module_bytes(0xDE, 2900));
        GrubPcFiles::new(files)
    }

    /// The machine's stock i386-pc files.
    fn stock_files() -> GrubPcFiles {
        assert!(
            Path::new(GRUB_DIR).join(KERNEL_IMG).is_file(),
            "GRUB's i386-pc files are missing (apt-get install grub-pc-bin)"
        );
        GrubPcFiles::from_dir(Path::new(GRUB_DIR)).unwrap()
    }

    fn u32_at(bytes: &[u8], offset: usize) -> u32 {
        read_u32(bytes, offset).unwrap()
    }

    /// The payload of `image`, unpacked with the sizes its decompressor holds.
    fn unpack(image: &[u8], decompressor_len: usize) -> Vec<u8> {
        let decompressor = &image[SECTOR_SIZE..];
        let compressed = u32_at(decompressor, COMPRESSED_SIZE) as usize;
        let uncompressed = u32_at(decompressor, UNCOMPRESSED_SIZE);
        let data = &decompressor[decompressor_len..decompressor_len + compressed];
        let mut reader = LzmaReader::new(
            data,
            u64::from(uncompressed),
            LZMA_LC,
            LZMA_LP,
            LZMA_PB,
            LZMA_DICTIONARY,
            None,
        )
        .unwrap();
        let mut payload = Vec::new();
        reader.read_to_end(&mut payload).unwrap();
        payload
    }

    /// The (type, contents) of each entry of the module area after `kernel_len`.
    fn module_area(payload: &[u8], kernel_len: usize) -> Vec<(u32, &[u8])> {
        assert_eq!(u32_at(payload, kernel_len), MODULE_INFO_MAGIC);
        assert_eq!(u32_at(payload, kernel_len + 4), MODULE_INFO_SIZE);
        let end = kernel_len + u32_at(payload, kernel_len + 8) as usize;
        assert_eq!(end, payload.len());
        let mut entries = Vec::new();
        let mut at = kernel_len + MODULE_INFO_SIZE as usize;
        while at < end {
            let size = u32_at(payload, at + 4) as usize;
            assert_eq!(size % MODULE_ALIGN, 0);
            entries.push((
                u32_at(payload, at),
                &payload[at + MODULE_HEADER_SIZE..at + size],
            ));
            at += size;
        }
        assert_eq!(at, end);
        entries
    }

    #[test]
    fn compressed_payload_unpacks_and_sizes_are_patched() {
        let files = synthetic_files(0);
        let image = core_image(&files, MODULES, PREFIX, Some("set x=1\n"), GAP).unwrap();
        let payload = payload(&files, MODULES, PREFIX, Some("set x=1\n")).unwrap();
        let decompressor = files.get(DECOMPRESSOR_IMG).unwrap();
        assert_eq!(unpack(&image, decompressor.len()), payload);

        assert_eq!(image.len() % SECTOR_SIZE, 0);
        let patched = &image[SECTOR_SIZE..SECTOR_SIZE + decompressor.len()];
        assert_eq!(u32_at(patched, UNCOMPRESSED_SIZE) as usize, payload.len());
        let compressed = u32_at(patched, COMPRESSED_SIZE) as usize;
        let unpatched = |offset: &usize| !(COMPRESSED_SIZE..UNCOMPRESSED_SIZE + 4).contains(offset);
        assert!(
            (0..decompressor.len())
                .filter(unpatched)
                .all(|i| patched[i] == decompressor[i])
        );

        let diskboot = &image[..SECTOR_SIZE];
        let sectors = (decompressor.len() + compressed).div_ceil(SECTOR_SIZE);
        assert_eq!(image.len() / SECTOR_SIZE, 1 + sectors);
        assert_eq!(
            diskboot[BLOCKLIST_START..BLOCKLIST_START + 8],
            2u64.to_le_bytes()
        );
        assert_eq!(
            diskboot[BLOCKLIST_SECTORS..BLOCKLIST_SECTORS + 2],
            (sectors as u16).to_le_bytes()
        );
        assert_eq!(diskboot[BLOCKLIST_SEGMENT..], [0x20, 0x08]);
        assert_eq!(
            diskboot[..BLOCKLIST_START],
            files.get(DISKBOOT_IMG).unwrap()[..BLOCKLIST_START]
        );
    }

    #[test]
    fn modules_follow_their_dependencies_then_config_and_prefix() {
        let files = synthetic_files(0);
        let kernel_len = kernel(files.get(KERNEL_IMG).unwrap()).unwrap().len();
        let payload = payload(&files, MODULES, PREFIX, Some("set x=1\n")).unwrap();
        let entries = module_area(&payload, kernel_len);

        let by_contents: BTreeMap<&[u8], String> = files
            .files
            .iter()
            .filter_map(|(name, bytes)| {
                Some((bytes.as_slice(), name.strip_suffix(".mod")?.to_owned()))
            })
            .collect();
        let moddep = std::str::from_utf8(files.get(moddep::MODDEP).unwrap()).unwrap();
        let mut placed = Vec::new();
        for (kind, contents) in &entries[..entries.len() - 2] {
            assert_eq!(*kind, OBJ_TYPE_ELF);
            let name = by_contents
                .iter()
                .find(|(bytes, _)| {
                    contents.len() == bytes.len().next_multiple_of(4) && contents.starts_with(bytes)
                })
                .map(|(_, name)| name.clone())
                .expect("an embedded module is a stock .mod file");
            let line = moddep
                .lines()
                .find(|line| line.starts_with(&format!("{name}:")))
                .unwrap();
            for dependency in line.split_once(':').unwrap().1.split_whitespace() {
                assert!(
                    placed.contains(&dependency.to_owned()),
                    "{name} before its dependency {dependency}"
                );
            }
            placed.push(name);
        }
        for module in MODULES {
            assert!(
                placed.contains(&module.to_string()),
                "{module} not embedded"
            );
        }
        assert_eq!(
            entries[entries.len() - 2],
            (OBJ_TYPE_CONFIG, &b"set x=1\n\0\0\0\0"[..])
        );
        assert_eq!(
            entries[entries.len() - 1],
            (OBJ_TYPE_PREFIX, &b"(,msdos1)/boot/grub\0"[..])
        );
    }

    /// grub-mkimage, given the same modules, prefix and configuration, stores
    /// the same payload and the same diskboot.img; only its LZMA encoder
    /// differs.
    #[test]
    #[ignore = "heavy: needs grub-pc-bin and grub-common's grub-mkimage (scripts/test.sh)"]
    fn payload_equals_grub_mkimage() {
        let files = stock_files();
        let dir = tempfile::tempdir().unwrap();
        let (config, output) = (dir.path().join("embedded.cfg"), dir.path().join("core.img"));
        std::fs::write(&config, "set x=1\n").unwrap();
        let status = Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-d", GRUB_DIR, "-p", PREFIX, "-c"])
            .arg(&config)
            .arg("-o")
            .arg(&output)
            .args(MODULES)
            .status()
            .unwrap_or_else(|error| {
                panic!("cannot run grub-mkimage (apt-get install grub-common): {error}")
            });
        assert!(status.success());
        let theirs = std::fs::read(&output).unwrap();

        let ours = core_image(&files, MODULES, PREFIX, Some("set x=1\n"), GAP).unwrap();
        let decompressor_len = files.get(DECOMPRESSOR_IMG).unwrap().len();
        assert_eq!(
            unpack(&ours, decompressor_len),
            unpack(&theirs, decompressor_len)
        );
        assert_eq!(ours[..BLOCKLIST_START], theirs[..BLOCKLIST_START]);
        assert_eq!(
            ours[BLOCKLIST_SEGMENT..SECTOR_SIZE],
            theirs[BLOCKLIST_SEGMENT..SECTOR_SIZE]
        );
    }

    #[test]
    fn missing_module_is_named_with_its_package() {
        let mut files = synthetic_files(0);
        files.files.remove("fshelp.mod");
        let error = core_image(&files, MODULES, PREFIX, None, GAP).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`fshelp.mod` is missing"), "{message}");
        assert!(message.contains("grub-pc-bin"), "{message}");
    }

    #[test]
    fn too_many_modules_exceed_grubs_limit() {
        let files = synthetic_files(160 * 1024);
        let every_module: Vec<&str> = files
            .files
            .keys()
            .filter_map(|name| name.strip_suffix(".mod"))
            .collect();
        let error = core_image(&files, &every_module, PREFIX, None, GAP).unwrap_err();
        assert!(
            matches!(error, GrubError::PayloadTooLarge { size, limit } if size > limit && limit == 0x6F000),
            "{error}"
        );
    }

    #[test]
    fn image_larger_than_the_gap_is_an_error() {
        let files = synthetic_files(0);
        let sectors = core_image(&files, MODULES, PREFIX, None, GAP)
            .unwrap()
            .len()
            / SECTOR_SIZE;
        let error = core_image(&files, MODULES, PREFIX, None, sectors as u64 - 1).unwrap_err();
        assert!(
            matches!(error, GrubError::GapTooSmall { needed, available } if needed == sectors as u64 && available == needed - 1),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("start the first partition later")
        );
    }

    /// An ELF32 file with `sections` of (type, flags, address, contents).
    fn elf32(sections: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
        const HEADER: usize = 0x34;
        let mut elf = vec![0; HEADER];
        elf[..4].copy_from_slice(ELF_MAGIC);
        elf[ELF_CLASS] = ELF_CLASS_32;
        elf[ELF_DATA] = ELF_DATA_LITTLE_ENDIAN;
        let mut headers = vec![0; SH_MIN_ENTSIZE];
        for (kind, flags, address, contents) in sections {
            let mut header = vec![0; SH_MIN_ENTSIZE];
            write_u32(&mut header, SH_TYPE, *kind);
            write_u32(&mut header, SH_FLAGS, *flags);
            write_u32(&mut header, SH_ADDR, *address);
            write_u32(&mut header, SH_OFFSET, elf.len() as u32);
            write_u32(&mut header, SH_SIZE, contents.len() as u32);
            headers.extend_from_slice(&header);
            elf.extend_from_slice(contents);
        }
        let table = elf.len() as u32;
        write_u32(&mut elf, ELF_SHOFF, table);
        elf[ELF_SHENTSIZE..ELF_SHENTSIZE + 2]
            .copy_from_slice(&(SH_MIN_ENTSIZE as u16).to_le_bytes());
        elf[ELF_SHNUM..ELF_SHNUM + 2].copy_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
        elf.extend_from_slice(&headers);
        elf
    }

    const SHT_NOBITS: u32 = 8;
    const SHF_WRITE: u32 = 1;

    #[test]
    fn kernel_is_its_allocated_sections_at_their_addresses() {
        let elf = elf32(&[
            (SHT_PROGBITS, SHF_ALLOC, 0x9000, b"text"),
            (SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 0x9008, b"data"),
            (
                SHT_NOBITS,
                SHF_ALLOC | SHF_WRITE,
                0x9010,
                b"bss-is-not-stored",
            ),
            (SHT_PROGBITS, 0, 0, b"comment"),
        ]);
        assert_eq!(kernel(&elf).unwrap(), b"text\0\0\0\0data");
    }

    #[test]
    fn kernel_that_is_no_usable_elf32_is_an_error() {
        let error = kernel(b"\x7fELF\x02\x01").unwrap_err();
        assert!(
            error.to_string().contains("`kernel.img` is not usable"),
            "{error}"
        );
        let below_link_address = elf32(&[(SHT_PROGBITS, SHF_ALLOC, 0x8000, b"text")]);
        let error = kernel(&below_link_address).unwrap_err();
        assert!(
            error.to_string().contains("outside GRUB's memory"),
            "{error}"
        );
        let mut truncated = elf32(&[(SHT_PROGBITS, SHF_ALLOC, 0x9000, b"text")]);
        truncated.truncate(truncated.len() - 1);
        let error = kernel(&truncated).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
    }

    /// Pins the compressed bytes: a change of encoder or its settings must be
    /// a deliberate decision, since it changes every disk image's digest.
    #[test]
    fn compressed_bytes_are_pinned() {
        let input: Vec<u8> = (0..64 * 1024u32).map(|i| (i * i / 7 % 251) as u8).collect();
        let digest = hex::encode(sha2::Sha256::digest(compress(&input).unwrap()));
        assert_eq!(
            digest,
            "b9477cf54f005953db360e6ad56bc3e52c0128816dcca454c549fa7ca8377cdc"
        );
    }
}

//! Stand-ins for the images examples/hello.yml names and for a boot image,
//! made byte by byte from fixed contents, so that what ossify builds from
//! them depends on ossify alone: no Debian package (kernel, busybox,
//! isolinux, GRUB, systemd's stub) whose bytes change when the distribution
//! updates it. The golden digests in testdata/golden/ are of builds from
//! these images.
//!
//! Each stand-in has the shape ossify reads, not the behaviour: the kernel
//! is a bzImage header and filler, the stub a PE image with one section,
//! GRUB's `kernel.img` an ELF32 file with allocated sections, isolinux's
//! files the right sizes. Nothing built from them boots.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::layer_builder::LayerBuilder;
use super::{LayerBlob, Layout};

/// The boot image's reference: its own name, so it never shadows the real
/// one (`localhost/ossify/boot:debian12`) in a cache.
pub const BOOT_IMAGE: &str = "localhost/ossify-examples/boot:synthetic";

/// The images by the references examples/hello.yml (and [`BOOT_IMAGE`])
/// name, with the repository path a registry serves each under.
pub const IMAGES: [(&str, &str); 4] = [
    (
        "localhost/ossify-examples/kernel:debian12",
        "ossify-examples/kernel:debian12",
    ),
    (
        "localhost/ossify-examples/init:busybox",
        "ossify-examples/init:busybox",
    ),
    (
        "localhost/ossify-examples/hello:busybox",
        "ossify-examples/hello:busybox",
    ),
    (BOOT_IMAGE, "ossify-examples/boot:synthetic"),
];

/// The kernel release the kernel image's modules are under.
const KERNEL_RELEASE: &str = "6.1.0-synthetic-amd64";

/// `len` bytes that look random, the same for the same `seed` on any
/// machine (xorshift64), so compressors have real work to do.
pub fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An OCI layout holding the four images, each named by `name(index)` of
/// its entry in [`IMAGES`]: the full reference for `ossify cache import`,
/// the bare repository path for pushing with skopeo.
pub fn layout(name: impl Fn(usize) -> String) -> Layout {
    let mut layout = Layout::new();
    let images = [
        layout.image("amd64", &[LayerBlob::gzip(kernel_layer())]),
        layout.image_with_config(
            "amd64",
            json!({"Cmd": ["/init"], "Env": ["PATH=/bin:/usr/sbin"]}),
            &[
                LayerBlob::gzip(init_base_layer()),
                LayerBlob::plain(init_layer()),
            ],
        ),
        layout.image_with_config(
            "amd64",
            json!({"Cmd": ["/bin/busybox", "sh"], "Env": ["PATH=/bin"]}),
            &[LayerBlob::zstd(hello_layer())],
        ),
        layout.image("amd64", &[LayerBlob::gzip(boot_layer())]),
    ];
    for (index, descriptor) in images.into_iter().enumerate() {
        layout.name(descriptor, &name(index));
    }
    layout
}

/// A new cache in `dir` holding the four images, imported with
/// `ossify cache import`.
pub fn cache(dir: &Path) -> PathBuf {
    let layout = layout(|index| IMAGES[index].0.to_owned());
    let cache = dir.join("cache");
    super::cache_import(dir, &cache, layout.path());
    cache
}

/// Pushes the four images to `registry`, each under its repository path.
pub fn push(registry: &super::Registry) {
    let layout = layout(|index| format!("image{index}"));
    for (index, (_, repository)) in IMAGES.iter().enumerate() {
        registry.push(&layout, &format!("image{index}"), repository);
    }
}

/// The kernel image: LinuxKit's `/kernel` and `/kernel.tar`, the tar
/// holding the module lists and one module.
fn kernel_layer() -> Vec<u8> {
    let modules = format!("lib/modules/{KERNEL_RELEASE}");
    let module = "kernel/fs/squashfs/squashfs.ko";
    let kernel_tar = LayerBuilder::new()
        .dir("lib", 0o755)
        .dir("lib/modules", 0o755)
        .dir(&modules, 0o755)
        .file(
            &format!("{modules}/modules.order"),
            module.as_bytes(),
            0o644,
        )
        .file(&format!("{modules}/modules.builtin"), b"", 0o644)
        .file(
            &format!("{modules}/modules.dep"),
            format!("{module}:\n").as_bytes(),
            0o644,
        )
        .dir(&format!("{modules}/kernel"), 0o755)
        .dir(&format!("{modules}/kernel/fs"), 0o755)
        .dir(&format!("{modules}/kernel/fs/squashfs"), 0o755)
        .file(&format!("{modules}/{module}"), &filler(3, 20_000), 0o644)
        .finish();
    LayerBuilder::new()
        .file("kernel", &bzimage(&filler(1, 60_000)), 0o644)
        .file("kernel.tar", &kernel_tar, 0o644)
        .finish()
}

/// An x86 bzImage's shape (boot protocol 2.15): the boot sector's
/// signature, `HdrS`, four setup sectors, then `payload`.
fn bzimage(payload: &[u8]) -> Vec<u8> {
    let setup_sects = 4;
    let mut image = vec![0; (setup_sects + 1) * 512];
    image[0x1f1] = setup_sects as u8;
    image[0x1fe..0x200].copy_from_slice(&[0x55, 0xAA]);
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image[0x206..0x208].copy_from_slice(&0x020Fu16.to_le_bytes());
    image[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    image.extend_from_slice(payload);
    image
}

/// The init image's first layer: the base a distribution would give, with
/// a package database for the SBOM to list.
fn init_base_layer() -> Vec<u8> {
    let busybox = filler(2, 40_000);
    LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", &busybox, 0o755)
        .symlink("bin/sh", "busybox")
        .hard_link("bin/ash", "bin/busybox")
        .dir("dev", 0o755)
        .dir("etc", 0o755)
        .file(
            "etc/os-release",
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
            0o644,
        )
        .file("etc/motd", b"removed by the next layer\n", 0o644)
        .dir("tmp", 0o1777)
        .dir("var", 0o755)
        .dir("var/lib", 0o755)
        .dir("var/lib/dpkg", 0o755)
        .file("var/lib/dpkg/status", DPKG_STATUS.as_bytes(), 0o644)
        .finish()
}

const DPKG_STATUS: &str = "\
Package: busybox-static
Status: install ok installed
Architecture: amd64
Version: 1:1.35.0-4+b3
Source: busybox

Package: runc
Status: install ok installed
Architecture: amd64
Version: 1.1.5+ds1-1+deb12u1

";

/// The init image's second layer: `/init`, runc, files of other owners and
/// modes, and a whiteout of a file of the first layer.
fn init_layer() -> Vec<u8> {
    LayerBuilder::new()
        .file(
            "init",
            b"#!/bin/busybox sh\necho synthetic init\n/bin/busybox poweroff -f\n",
            0o755,
        )
        .file("etc/.wh.motd", b"", 0o644)
        .dir("usr", 0o755)
        .dir("usr/sbin", 0o755)
        .file("usr/sbin/runc", &filler(4, 30_000), 0o755)
        .file("usr/sbin/helper", &filler(5, 3_000), 0o4755)
        .dir("home", 0o755)
        .owned_file(
            "home/user.txt",
            b"owned by 1000:1000\n",
            0o600,
            (1000, 1000),
        )
        .dir("run", 0o755)
        .finish()
}

/// The onboot container's image, with an apk database.
fn hello_layer() -> Vec<u8> {
    LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", &filler(2, 40_000), 0o755)
        .dir("etc", 0o755)
        .file(
            "etc/os-release",
            b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
            0o644,
        )
        .dir("lib", 0o755)
        .dir("lib/apk", 0o755)
        .dir("lib/apk/db", 0o755)
        .file(
            "lib/apk/db/installed",
            b"P:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\n",
            0o644,
        )
        .finish()
}

/// The boot image: isolinux's, systemd-boot's and GRUB's files at Debian's
/// paths, with the shapes ossify checks.
fn boot_layer() -> Vec<u8> {
    let mut layer = LayerBuilder::new();
    for dir in [
        "usr",
        "usr/lib",
        "usr/lib/ISOLINUX",
        "usr/lib/syslinux",
        "usr/lib/syslinux/modules",
        "usr/lib/syslinux/modules/bios",
        "usr/lib/systemd",
        "usr/lib/systemd/boot",
        "usr/lib/systemd/boot/efi",
        "usr/lib/grub",
        "usr/lib/grub/i386-pc",
    ] {
        layer = layer.dir(dir, 0o755);
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![
        // Patched with the boot info table (bytes 8..64) when written.
        ("usr/lib/ISOLINUX/isolinux.bin".into(), filler(10, 4 * 2048)),
        // isohybrid's MBR code is 432 bytes.
        ("usr/lib/ISOLINUX/isohdpfx.bin".into(), filler(11, 432)),
        (
            "usr/lib/syslinux/modules/bios/ldlinux.c32".into(),
            filler(12, 12_000),
        ),
        (
            "usr/lib/systemd/boot/efi/linuxx64.efi.stub".into(),
            efi_stub(),
        ),
    ];
    files.extend(
        grub_pc_files()
            .into_iter()
            .map(|(name, bytes)| (format!("usr/lib/grub/i386-pc/{name}"), bytes)),
    );
    for (path, bytes) in &files {
        layer = layer.file(path, bytes, 0o644);
    }
    layer.finish()
}

/// A PE32+ image for x86-64 with one section, the shape of systemd's stub
/// that a UKI is built on: headers in the first 0x400 bytes, room for the
/// UKI's section headers, one `.text` section of 0x200 bytes.
fn efi_stub() -> Vec<u8> {
    let put16 = |image: &mut Vec<u8>, at: usize, value: u16| {
        image[at..at + 2].copy_from_slice(&value.to_le_bytes());
    };
    let put32 = |image: &mut Vec<u8>, at: usize, value: u32| {
        image[at..at + 4].copy_from_slice(&value.to_le_bytes());
    };
    let headers = 0x400;
    let mut image = vec![0; headers];
    image.extend_from_slice(&filler(13, 0x200));
    image[..2].copy_from_slice(b"MZ");
    put32(&mut image, 0x3C, 0x40);
    image[0x40..0x44].copy_from_slice(b"PE\0\0");
    put16(&mut image, 0x44, 0x8664); // Machine: x86-64.
    put16(&mut image, 0x46, 1); // NumberOfSections.
    put16(&mut image, 0x54, 240); // SizeOfOptionalHeader.
    put16(&mut image, 0x56, 0x0022); // Executable, large address aware.
    let optional = 0x58;
    put16(&mut image, optional, 0x20B); // PE32+.
    put32(&mut image, optional + 4, 0x200); // SizeOfCode.
    put32(&mut image, optional + 16, 0x1000); // AddressOfEntryPoint.
    put32(&mut image, optional + 32, 0x1000); // SectionAlignment.
    put32(&mut image, optional + 36, 0x200); // FileAlignment.
    put32(&mut image, optional + 56, 0x2000); // SizeOfImage.
    put32(&mut image, optional + 60, headers as u32); // SizeOfHeaders.
    put16(&mut image, optional + 68, 10); // Subsystem: EFI application.
    put32(&mut image, optional + 108, 16); // NumberOfRvaAndSizes.
    let section = optional + 240;
    image[section..section + 5].copy_from_slice(b".text");
    put32(&mut image, section + 8, 0x200); // VirtualSize.
    put32(&mut image, section + 12, 0x1000); // VirtualAddress.
    put32(&mut image, section + 16, 0x200); // SizeOfRawData.
    put32(&mut image, section + 20, headers as u32); // PointerToRawData.
    put32(&mut image, section + 36, 0x6000_0020); // Code, execute, read.
    image
}

/// GRUB's i386-pc files as ossify reads them: `boot.img` and
/// `diskboot.img` (one sector each), `lzma_decompress.img`, an ELF32
/// `kernel.img`, and `moddep.lst` with a `.mod` for every module it names.
fn grub_pc_files() -> Vec<(String, Vec<u8>)> {
    let moddep = "\
biosdisk:
boot:
bufio:
crypto:
datetime:
extcmd:
fat: fshelp
fshelp:
gettext:
gzio:
linux: video boot relocator mmap
mmap:
normal: crypto terminal extcmd boot gettext bufio datetime gzio
part_msdos:
relocator: mmap
serial: terminfo extcmd
terminal:
terminfo: extcmd
video:
";
    let mut boot_img = filler(20, 512);
    boot_img[510..].copy_from_slice(&[0x55, 0xAA]);
    let mut files = vec![
        ("boot.img".to_owned(), boot_img),
        ("diskboot.img".to_owned(), filler(21, 512)),
        ("lzma_decompress.img".to_owned(), filler(22, 2_900)),
        (
            "kernel.img".to_owned(),
            elf32(&[(0x9000, filler(23, 5_000)), (0xA400, filler(24, 777))]),
        ),
        ("moddep.lst".to_owned(), moddep.as_bytes().to_vec()),
    ];
    for (index, line) in moddep.lines().enumerate() {
        let name = line.split_once(':').unwrap().0;
        files.push((
            format!("{name}.mod"),
            filler(30 + index as u64, 301 + 97 * index),
        ));
    }
    files
}

/// A little-endian ELF32 file whose allocated sections hold `sections`
/// (load address, contents), after the null section.
fn elf32(sections: &[(u32, Vec<u8>)]) -> Vec<u8> {
    const HEADER: usize = 52;
    const SECTION_HEADER: usize = 40;
    let mut elf = vec![0; HEADER];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 1; // ELFCLASS32.
    elf[5] = 1; // Little-endian.
    elf[6] = 1; // Version.
    let mut table = vec![0; SECTION_HEADER];
    for (address, contents) in sections {
        let mut header = [0u8; SECTION_HEADER];
        header[4..8].copy_from_slice(&1u32.to_le_bytes()); // SHT_PROGBITS.
        header[8..12].copy_from_slice(&2u32.to_le_bytes()); // SHF_ALLOC.
        header[12..16].copy_from_slice(&address.to_le_bytes());
        header[16..20].copy_from_slice(&(elf.len() as u32).to_le_bytes());
        header[20..24].copy_from_slice(&(contents.len() as u32).to_le_bytes());
        table.extend_from_slice(&header);
        elf.extend_from_slice(contents);
    }
    let table_offset = elf.len() as u32;
    elf[0x20..0x24].copy_from_slice(&table_offset.to_le_bytes());
    elf[0x2E..0x30].copy_from_slice(&(SECTION_HEADER as u16).to_le_bytes());
    elf[0x30..0x32].copy_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
    elf.extend_from_slice(&table);
    elf
}

/// The build's outputs and their sha256, as `sha256sum` prints them,
/// sorted by file name: every file in `out` but the manifest.
pub fn digests(out: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.ends_with(".manifest.json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| format!("{}  {name}\n", super::sha256_file(&out.join(name))))
        .collect()
}

/// The `outputs` of the manifest `<name>.manifest.json` in `out`.
pub fn manifest_outputs(out: &Path, name: &str) -> Value {
    let path = out.join(format!("{name}.manifest.json"));
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())),
    )
    .unwrap();
    manifest["outputs"].clone()
}

//! `anatomy::first_difference` on real outputs of ossify's writers: one
//! byte is changed at a known place and the breadcrumb must name the
//! structure there, at the exact offset.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ossify::anatomy::{Difference, Layout, first_difference};
use ossify::tree::{Kind, Metadata, Tree};
use ossify::write::fat::{FatBuilder, FatOptions};
use ossify::write::initrd_compression::InitrdCompression;
use ossify::write::iso9660::{self, ElTorito, IsoBuilder};
use ossify::write::partition::gpt::{Gpt, GptPartition, Guid, TYPE_EFI_SYSTEM};
use ossify::write::partition::mbr::{Mbr, MbrPartition};
use ossify::write::{cpio, ext4, qcow2, squashfs, tar, vhd, vmdk};

const EPOCH: u64 = 1_700_000_000;
const SECTOR: u64 = 512;
/// Marks the byte a test changes, inside a file's contents.
const MARK: &[u8] = b"<<ANATOMY-MARK>>";

/// `len` bytes of filler with [`MARK`] at `mark_at`.
fn contents(len: usize, mark_at: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    bytes[mark_at..mark_at + MARK.len()].copy_from_slice(MARK);
    bytes
}

/// Where [`MARK`] (or `needle`) first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the marker is in the image")
}

/// A tree with `etc/issue` (20 KiB, marked), a small file and a path too
/// long for a ustar header.
fn tree(mark: &[u8]) -> Tree {
    let mut tree = Tree::new(EPOCH);
    let meta = |mode| Metadata::new(mode, EPOCH - 60);
    for dir in ["etc", "usr", "usr/share"] {
        tree.insert(dir, Kind::directory(), meta(0o755)).unwrap();
    }
    let mut issue = contents(20_000, 9_000);
    issue[9_000..9_000 + mark.len()].copy_from_slice(mark);
    let long = format!("usr/share/{}", "n".repeat(120));
    for (path, bytes) in [
        ("etc/hostname", b"anatomy\n".to_vec()),
        ("etc/issue", issue),
        (long.as_str(), b"long\n".to_vec()),
    ] {
        let blob = tree.store_bytes(&bytes).unwrap();
        tree.insert(path, Kind::File(blob), meta(0o644)).unwrap();
    }
    tree
}

/// Writes `expected` and `actual` to files and compares them.
fn compare(layout: Layout, expected: &[u8], actual: &[u8]) -> Option<Difference> {
    let dir = tempfile::tempdir().unwrap();
    let (left, right) = (dir.path().join("expected"), dir.path().join("actual"));
    fs::write(&left, expected).unwrap();
    fs::write(&right, actual).unwrap();
    first_difference(layout, &left, &right).unwrap()
}

/// Changes the byte at `at` of `image` and checks the difference is found
/// there, with `structure`.
fn assert_flip(layout: Layout, image: &[u8], at: usize, structure: &[&str]) {
    let mut changed = image.to_vec();
    changed[at] ^= 0x5a;
    let difference = compare(layout, image, &changed).expect("the files differ");
    assert_eq!(difference.offset, at as u64, "{difference}");
    assert_eq!(difference.structure, structure, "{difference}");
}

#[test]
fn identical_files_have_no_difference_and_a_prefix_differs_at_its_end() {
    let image = tar_image(&tree(MARK));
    assert_eq!(compare(Layout::Tar, &image, &image), None);
    let shorter = compare(Layout::Tar, &image, &image[..1000]).unwrap();
    assert_eq!(shorter.offset, 1000);
    let longer = compare(Layout::Tar, &image[..1000], &image).unwrap();
    assert_eq!(longer.offset, 1000);
    assert_eq!(longer.structure, ["past the end of the expected file"]);
}

#[test]
fn display_joins_the_breadcrumb() {
    let difference = Difference {
        offset: 123_456,
        structure: vec!["GPT partition 1".into(), "FAT cluster 37".into()],
    };
    assert_eq!(
        difference.to_string(),
        "byte 123456: GPT partition 1 › FAT cluster 37"
    );
    let opaque = Difference {
        offset: 7,
        structure: Vec::new(),
    };
    assert_eq!(opaque.to_string(), "byte 7");
}

#[test]
fn layouts_follow_format_names_and_file_suffixes() {
    assert_eq!(Layout::of("kernel+initrd", "x-initrd.img"), Layout::Initrd);
    assert_eq!(Layout::of("kernel+initrd", "x-kernel"), Layout::Opaque);
    assert_eq!(Layout::of("kernel+initrd", "x-cmdline"), Layout::Opaque);
    assert_eq!(
        Layout::of("kernel+squashfs", "x-squashfs.img"),
        Layout::Squashfs
    );
    assert_eq!(Layout::of("kernel+iso", "x.iso"), Layout::Iso9660);
    assert_eq!(Layout::of("iso-efi", "x-efi.iso"), Layout::Iso9660);
    assert_eq!(Layout::of("raw-efi", "x-efi.img"), Layout::Disk);
    assert_eq!(Layout::of("aws", "x.raw"), Layout::Disk);
    assert_eq!(Layout::of("dynamic-vhd", "x.vhd"), Layout::Vhd);
    assert_eq!(Layout::of("gcp", "x.img.tar.gz"), Layout::Compressed);
    assert_eq!(Layout::of("docker", "x.docker"), Layout::Tar);
    assert_eq!(Layout::of("uki", "x.efi"), Layout::Pe);
    assert_eq!(Layout::of("ext4", "x.ext4"), Layout::Ext4);
    assert_eq!(Layout::of("no-such-format", "x"), Layout::Opaque);
}

fn tar_image(tree: &Tree) -> Vec<u8> {
    tar::write(tree, Vec::new(), EPOCH, &[]).unwrap()
}

#[test]
fn tar_names_the_entry_header_data_extension_and_end() {
    let image = tar_image(&tree(MARK));
    let mark = find(&image, MARK);
    assert_flip(Layout::Tar, &image, mark, &["tar entry etc/issue", "data"]);
    let header = find(&image, b"etc/issue\0");
    assert_flip(
        Layout::Tar,
        &image,
        header + 110,
        &["tar entry etc/issue", "header"],
    );
    let long = format!("usr/share/{}", "n".repeat(120));
    let record = find(&image, b"path=usr/share/nnn");
    assert_flip(
        Layout::Tar,
        &image,
        record,
        &[format!("tar entry {long}").as_str(), "extended header"],
    );
    // 20,000 bytes of data leave 480 bytes of padding in the last block.
    assert_flip(
        Layout::Tar,
        &image,
        mark - 9_000 + 20_000 + 10,
        &["tar entry etc/issue", "padding after data"],
    );
    assert_flip(
        Layout::Tar,
        &image,
        image.len() - 1,
        &["end-of-archive blocks"],
    );
}

fn initrd(tree: &Tree, compression: InitrdCompression) -> Vec<u8> {
    let cpio = cpio::write(tree, Vec::new(), EPOCH).unwrap();
    let mut out = compression.compressor(Vec::new()).unwrap();
    out.write_all(&cpio).unwrap();
    out.finish().unwrap()
}

#[test]
fn compressed_initrds_name_the_cpio_entry_on_both_sides_decompressed() {
    let (expected, actual) = (tree(MARK), tree(b"<<ANATOMY-MARK!>"));
    for (compression, stream) in [
        (InitrdCompression::Gzip, "gzip stream"),
        (InitrdCompression::Zstd, "zstd stream"),
        (InitrdCompression::Xz, "xz stream"),
        (InitrdCompression::Lz4, "lz4 stream"),
    ] {
        let (left, right) = (initrd(&expected, compression), initrd(&actual, compression));
        let raw = left
            .iter()
            .zip(&right)
            .position(|(a, b)| a != b)
            .unwrap_or(left.len().min(right.len()));
        let difference = compare(Layout::Initrd, &left, &right).unwrap();
        assert_eq!(difference.offset, raw as u64, "{compression}");
        assert_eq!(
            difference.structure,
            [stream, "cpio entry etc/issue", "data"],
            "{compression}"
        );
    }
}

#[test]
fn an_uncompressed_initrd_names_header_name_and_data() {
    let image = initrd(&tree(MARK), InitrdCompression::None);
    assert_flip(
        Layout::Initrd,
        &image,
        find(&image, MARK),
        &["cpio entry etc/issue", "data"],
    );
    let name = find(&image, b"etc/issue\0");
    assert_flip(
        Layout::Initrd,
        &image,
        name,
        &["cpio entry etc/issue", "name"],
    );
    assert_flip(
        Layout::Initrd,
        &image,
        name - 50,
        &["cpio entry etc/issue", "header"],
    );
    assert_flip(
        Layout::Initrd,
        &image,
        find(&image, b"TRAILER!!!"),
        &["cpio trailer", "name"],
    );
}

/// A FAT volume with a marked `EFI/BOOT/BOOTX64.EFI` and a grub.cfg.
fn fat_image(hidden_sectors: u32) -> Vec<u8> {
    let loader = contents(40_000, 30_000);
    let mut fat = FatBuilder::new(FatOptions {
        label: Some("ANATOMY".into()),
        volume_id: 0x1234_5678,
        timestamp: EPOCH,
        hidden_sectors,
        min_size: None,
    });
    fat.add_file("boot/grub/grub.cfg", 12, &b"set timeout\n"[..])
        .unwrap();
    fat.add_file("EFI/BOOT/BOOTX64.EFI", loader.len() as u64, &loader[..])
        .unwrap();
    fat.plan().unwrap().write(Vec::new()).unwrap()
}

#[test]
fn fat_names_boot_sector_fats_and_the_file_owning_a_cluster() {
    let image = fat_image(0);
    assert_flip(Layout::Fat, &image, 3, &["boot sector"]);
    let mark = find(&image, MARK);
    let mut changed = image.clone();
    changed[mark] ^= 1;
    let difference = compare(Layout::Fat, &image, &changed).unwrap();
    assert_eq!(difference.offset, mark as u64);
    assert!(
        difference.structure[0].starts_with("FAT cluster "),
        "{difference}"
    );
    assert_eq!(
        difference.structure[1..],
        ["file EFI/BOOT/BOOTX64.EFI", "data"]
    );
    // The first FAT follows the reserved sectors.
    let reserved = u16::from_le_bytes([image[14], image[15]]) as usize;
    let difference = compare(Layout::Fat, &image, &{
        let mut c = image.clone();
        c[reserved * 512 + 9] ^= 1;
        c
    })
    .unwrap();
    assert_eq!(difference.structure[0], "FAT 1", "{difference}");
}

/// A GPT disk with the FAT volume as its EFI system partition at 1 MiB.
fn gpt_disk(dir: &Path) -> PathBuf {
    let fat = fat_image(2048);
    let sectors = 2048 + fat.len() as u64 / SECTOR + 2048;
    let path = dir.join("gpt.img");
    let file = File::create(&path).unwrap();
    file.set_len(sectors * SECTOR).unwrap();
    let mut gpt = Gpt::new(sectors, Guid::derive(b"anatomy", "disk")).unwrap();
    let start = gpt
        .add(GptPartition {
            type_guid: TYPE_EFI_SYSTEM,
            unique_guid: Guid::derive(b"anatomy", "esp"),
            name: "EFI system".into(),
            sectors: fat.len() as u64 / SECTOR,
            attributes: 0,
        })
        .unwrap()
        .first_lba;
    gpt.write(&file).unwrap();
    file.write_all_at(&fat, start * SECTOR).unwrap();
    path
}

#[test]
fn gpt_disks_name_tables_gaps_and_recurse_into_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let image = fs::read(gpt_disk(dir.path())).unwrap();
    assert_flip(
        Layout::Disk,
        &image,
        446,
        &["protective MBR", "partition entry 1"],
    );
    assert_flip(Layout::Disk, &image, 520, &["GPT header"]);
    assert_flip(
        Layout::Disk,
        &image,
        1024 + 128 + 5,
        &["GPT partition entry array", "entry 2"],
    );
    assert_flip(Layout::Disk, &image, 40 * 512, &["unpartitioned gap"]);
    assert_flip(
        Layout::Disk,
        &image,
        image.len() - 500,
        &["backup GPT header"],
    );
    let partition = "GPT partition 1 \"EFI system\"";
    assert_flip(
        Layout::Disk,
        &image,
        2048 * 512 + 3,
        &[partition, "boot sector"],
    );
    let mark = find(&image, MARK);
    let mut changed = image.clone();
    changed[mark] ^= 1;
    let difference = compare(Layout::Disk, &image, &changed).unwrap();
    assert_eq!(difference.offset, mark as u64);
    assert_eq!(difference.structure[0], partition);
    assert_eq!(
        difference.structure[2..],
        ["file EFI/BOOT/BOOTX64.EFI", "data"]
    );
}

#[test]
fn mbr_disks_name_boot_code_and_partitions() {
    let fat = fat_image(2048);
    let sectors = 2048 + fat.len() as u64 / SECTOR;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbr.img");
    let file = File::create(&path).unwrap();
    file.set_len(sectors * SECTOR).unwrap();
    let mut mbr = Mbr::new(sectors, 0xfeed);
    mbr.add(MbrPartition {
        kind: 0x0c,
        active: true,
        start_lba: 2048,
        sectors: (fat.len() as u64 / SECTOR) as u32,
    })
    .unwrap();
    mbr.write(&file).unwrap();
    file.write_all_at(&fat, 2048 * SECTOR).unwrap();
    let image = fs::read(&path).unwrap();
    assert_flip(Layout::Disk, &image, 100, &["MBR", "boot code"]);
    assert_flip(
        Layout::Disk,
        &image,
        4096,
        &["gap before the first partition (boot loader area)"],
    );
    let mark = find(&image, MARK);
    let mut changed = image.clone();
    changed[mark] ^= 1;
    let difference = compare(Layout::Disk, &image, &changed).unwrap();
    assert_eq!(difference.structure[0], "MBR partition 1 (type 0x0c)");
    assert_eq!(
        difference.structure[2..],
        ["file EFI/BOOT/BOOTX64.EFI", "data"]
    );
}

fn ext4_image(tree: &Tree) -> Vec<u8> {
    let options = ext4::Options {
        source_date_epoch: EPOCH,
        size: None,
        label: "anatomy".into(),
    };
    ext4::write(tree, std::io::Cursor::new(Vec::new()), &options)
        .unwrap()
        .into_inner()
}

#[test]
fn ext4_names_superblock_inodes_and_file_blocks() {
    let image = ext4_image(&tree(MARK));
    assert_flip(Layout::Ext4, &image, 1024 + 40, &["superblock"]);
    assert_flip(
        Layout::Ext4,
        &image,
        find(&image, MARK),
        &["file etc/issue", "data"],
    );
    // Group 0's descriptor: the inode table's block, low 32 bits at 8.
    let descriptor = 4096;
    let table = u32::from_le_bytes(image[descriptor + 8..descriptor + 12].try_into().unwrap());
    let inode_size = u16::from_le_bytes([image[1024 + 88], image[1024 + 89]]) as usize;
    assert_flip(
        Layout::Ext4,
        &image,
        table as usize * 4096 + inode_size + 4,
        &["inode table of group 0", "inode 2 (/)"],
    );
    assert_flip(
        Layout::Ext4,
        &image,
        descriptor + 8,
        &["group descriptors (group 0)", "descriptor of group 0"],
    );
}

fn iso_image(efi: &[u8], issue: &[u8]) -> Vec<u8> {
    let meta = |mode| iso9660::Metadata {
        mode,
        uid: 0,
        gid: 0,
    };
    let mut iso = IsoBuilder::new(meta(0o755));
    for dir in ["boot", "etc"] {
        iso.dir(dir, meta(0o755)).unwrap();
    }
    iso.file("boot/efi.img", meta(0o644), efi.len() as u64, efi)
        .unwrap();
    iso.file("etc/issue", meta(0o644), issue.len() as u64, issue)
        .unwrap();
    let options = iso9660::Options {
        volume_id: "ANATOMY".into(),
        timestamp: EPOCH,
        el_torito: Some(ElTorito {
            catalog: "boot/boot.cat".into(),
            bios: None,
            efi: Some("boot/efi.img".into()),
        }),
        hybrid: None,
    };
    iso.layout(&options).unwrap().write(Vec::new()).unwrap()
}

#[test]
fn iso_names_descriptors_files_and_the_efi_image_inside() {
    let efi = fat_image(0);
    let issue = contents(5_000, 100);
    let image = iso_image(&efi, &issue[..4_000]);
    assert_flip(
        Layout::Iso9660,
        &image,
        16 * 2048 + 40,
        &["primary volume descriptor"],
    );
    assert_flip(Layout::Iso9660, &image, 100, &["system area"]);
    let efi_mark = find(&image, MARK);
    let mut changed = image.clone();
    changed[efi_mark] ^= 1;
    let difference = compare(Layout::Iso9660, &image, &changed).unwrap();
    assert_eq!(difference.offset, efi_mark as u64);
    assert_eq!(difference.structure[..2], ["file /boot/efi.img", "data"]);
    assert_eq!(
        difference.structure[3..],
        ["file EFI/BOOT/BOOTX64.EFI", "data"]
    );
    let issue_mark = find(&image, &issue[..200]);
    assert_flip(
        Layout::Iso9660,
        &image,
        issue_mark + 150,
        &["file /etc/issue", "data"],
    );
}

/// Writes a container of a raw disk.
type Convert<'a> = dyn Fn(&File) -> Vec<u8> + 'a;

/// Both containers of a raw disk, expected and with one byte changed at
/// `at`, converted by `convert`.
fn containers(raw: &Path, at: u64, convert: impl Fn(&File) -> Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let expected = convert(&File::open(raw).unwrap());
    let changed = raw.with_extension("changed");
    fs::copy(raw, &changed).unwrap();
    let file = File::options()
        .read(true)
        .write(true)
        .open(&changed)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 1], at).unwrap();
    (expected, convert(&file))
}

#[test]
fn virtual_disks_name_the_guest_byte_and_describe_the_guest_disk() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gpt_disk(dir.path());
    let mark = find(&fs::read(&raw).unwrap(), MARK) as u64;
    let identity = vhd::VhdIdentity {
        unique_id: [7; 16],
        timestamp: EPOCH,
    };
    let converters: [(Layout, &str, Box<Convert<'_>>); 4] = [
        (
            Layout::Qcow2,
            "qcow2 data cluster",
            Box::new(|raw| qcow2::write(raw, Vec::new()).unwrap()),
        ),
        (
            Layout::Vhd,
            "VHD block 0",
            Box::new(|raw| vhd::write_dynamic(raw, Vec::new(), &identity).unwrap()),
        ),
        (
            Layout::Vmdk,
            "VMDK grain",
            Box::new(|raw| vmdk::write(raw, Vec::new(), 42).unwrap()),
        ),
        (
            Layout::Vhd,
            "",
            Box::new(|raw| vhd::write_fixed(raw, Vec::new(), &identity).unwrap()),
        ),
    ];
    for (layout, container, convert) in converters {
        let (expected, actual) = containers(&raw, mark, convert);
        let difference = compare(layout, &expected, &actual).unwrap();
        let mut structure = difference.structure.clone();
        if !container.is_empty() {
            let crumb = structure.remove(0);
            assert_eq!(
                crumb,
                format!("{container} (guest byte {mark})"),
                "{layout:?}: {difference}"
            );
        }
        assert_eq!(
            structure[0], "GPT partition 1 \"EFI system\"",
            "{difference}"
        );
        assert_eq!(
            structure[2..],
            ["file EFI/BOOT/BOOTX64.EFI", "data"],
            "{layout:?}: {difference}"
        );
    }
}

#[test]
fn squashfs_names_its_superblock_and_tables() {
    let options = squashfs::Options {
        source_date_epoch: EPOCH,
        ..Default::default()
    };
    let image = squashfs::write(&tree(MARK), std::io::Cursor::new(Vec::new()), &options)
        .unwrap()
        .into_inner();
    assert_flip(Layout::Squashfs, &image, 20, &["superblock"]);
    let inode_table = u64::from_le_bytes(image[64..72].try_into().unwrap()) as usize;
    assert_flip(
        Layout::Squashfs,
        &image,
        inode_table + 5,
        &["inode table", "metadata block 0"],
    );
}

#[test]
fn garbage_and_truncated_outputs_give_short_breadcrumbs_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let disk = fs::read(gpt_disk(dir.path())).unwrap();
    let samples = [
        tar_image(&tree(MARK)),
        initrd(&tree(MARK), InitrdCompression::Gzip),
        ext4_image(&tree(MARK)),
        iso_image(&fat_image(0), b"issue"),
        disk.clone(),
        (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    ];
    let layouts = [
        Layout::Tar,
        Layout::Initrd,
        Layout::Compressed,
        Layout::Iso9660,
        Layout::Disk,
        Layout::Fat,
        Layout::Ext4,
        Layout::Squashfs,
        Layout::Erofs,
        Layout::Qcow2,
        Layout::Vhd,
        Layout::Vmdk,
        Layout::Pe,
        Layout::Opaque,
    ];
    // Truncated copies, and copies with a few dozen bytes of their first
    // 64 KiB (the headers and tables) overwritten.
    let mut state = 1u32;
    let mut random = move |below: usize| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 8) as usize % below
    };
    let mut damaged = Vec::new();
    for sample in &samples {
        // The headers and tables are in the first MiB; more only slows the test.
        let sample = &sample[..sample.len().min(1 << 20)];
        damaged.push(sample[..sample.len() / 3].to_vec());
        damaged.push(sample[..sample.len() - 1].to_vec());
        for _ in 0..3 {
            let mut corrupt = sample.to_vec();
            for _ in 0..40 {
                let at = random(corrupt.len().min(65_536));
                corrupt[at] = random(256) as u8;
            }
            damaged.push(corrupt);
        }
    }
    for expected in &damaged {
        let mut changed = expected.clone();
        let at = expected.len() * 2 / 3;
        changed[at] ^= 0xff;
        for layout in layouts {
            let difference = compare(layout, expected, &changed).unwrap();
            assert_eq!(difference.offset, at as u64, "{layout:?}");
        }
    }
}

#[test]
fn a_compressed_initrd_inside_a_tar_is_described_in_turn() {
    let wrap = |initrd: &[u8]| {
        let appended = [tar::Appended {
            path: "initrd.img",
            contents: initrd,
        }];
        tar::write(&Tree::new(EPOCH), Vec::new(), EPOCH, &appended).unwrap()
    };
    let expected = wrap(&initrd(&tree(MARK), InitrdCompression::Gzip));
    let actual = wrap(&initrd(&tree(b"<<ANATOMY-MARK!>"), InitrdCompression::Gzip));
    let difference = compare(Layout::Tar, &expected, &actual).unwrap();
    assert_eq!(
        difference.structure,
        [
            "tar entry initrd.img",
            "data",
            "gzip stream",
            "cpio entry etc/issue",
            "data"
        ],
        "{difference}"
    );
}

//! Disk images: partition tables checked with sgdisk/sfdisk/fdisk, and the
//! qcow2, VHD and VMDK containers checked and compared with qemu-img against
//! the raw image they wrap.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ossify::write::partition::gpt::{Gpt, GptPartition, Guid, PlacedPartition, TYPE_EFI_SYSTEM};
use ossify::write::partition::mbr::{Mbr, MbrPartition};
use ossify::write::{qcow2, vhd, vmdk};

const SEED: &[u8] = b"disk-tests";
/// 24 MiB and 5 sectors: no multiple of any cluster, grain or block size.
const DISK_SECTORS: u64 = 24 * 2048 + 5;
/// The first and last sectors GPT partitions may use on the test disk:
/// after the primary and before the backup 128-entry arrays.
const FIRST_USABLE: u64 = 34;
const LAST_USABLE: u64 = DISK_SECTORS - 34;
/// GPT partition type: Linux filesystem data.
const TYPE_LINUX_FILESYSTEM: Guid = Guid::from_fields(
    0x0FC6_3DAF,
    0x8483,
    0x4772,
    [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4],
);
/// MBR partition types: FAT32 with LBA addressing, and Linux.
const MBR_TYPE_FAT32_LBA: u8 = 0x0C;
const MBR_TYPE_LINUX: u8 = 0x83;

/// Runs an external tool, failing with an install hint if it is missing.
fn run(program: &str, args: &[&str], package: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run `{program}` ({error}); install it: apt-get install {package}")
        })
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Deterministic filler bytes, different per `seed`.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8 | 1
        })
        .collect()
}

/// A GPT with an 8 MiB ESP and a root partition filling the rest, and the
/// two partitions as placed.
fn gpt_layout() -> (Gpt, [PlacedPartition; 2]) {
    let mut gpt = Gpt::new(DISK_SECTORS, Guid::derive(SEED, "disk")).unwrap();
    let esp = gpt
        .add(GptPartition {
            type_guid: TYPE_EFI_SYSTEM,
            unique_guid: Guid::derive(SEED, "esp"),
            name: "EFI system".into(),
            sectors: 8 * 2048,
            attributes: 0,
        })
        .unwrap()
        .clone();
    let root_start = esp.end_lba().next_multiple_of(2048);
    let root = gpt
        .add(GptPartition {
            type_guid: TYPE_LINUX_FILESYSTEM,
            unique_guid: Guid::derive(SEED, "root"),
            name: "root ∂".into(),
            sectors: LAST_USABLE + 1 - root_start,
            attributes: 0,
        })
        .unwrap()
        .clone();
    assert_eq!(root.first_lba, root_start);
    (gpt, [esp, root])
}

/// A raw disk with a GPT and non-zero data scattered over it: at partition
/// starts, across 64 KiB and 2 MiB boundaries, and (the backup GPT header)
/// in the very last sector.
fn test_disk(dir: &Path, name: &str) -> (PathBuf, [PlacedPartition; 2]) {
    let path = dir.join(name);
    let file = File::create(&path).unwrap();
    file.set_len(DISK_SECTORS * 512).unwrap();
    let (gpt, placed) = gpt_layout();
    gpt.write(&file).unwrap();
    let [esp, root] = &placed;
    let writes = [
        (esp.first_lba * 512, 4096),
        (root.first_lba * 512 + 65_536 - 100, 300),
        (6 * 1024 * 1024 - 7 * 512, 3 * 1024 * 1024),
        (root.end_lba() * 512 - 512, 512),
    ];
    for (seed, (offset, len)) in writes.into_iter().enumerate() {
        file.write_all_at(&pattern(seed as u32, len), offset)
            .unwrap();
    }
    (path, placed)
}

/// How many `size`-byte chunks of the file at `path` hold non-zero bytes.
fn nonzero_chunks(path: &Path, size: usize) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let chunks = bytes.chunks(size);
    chunks
        .filter(|chunk| chunk.iter().any(|&byte| byte != 0))
        .count()
}

#[test]
#[ignore = "heavy: needs gdisk and fdisk (scripts/test.sh)"]
fn gpt_is_valid_for_sgdisk_and_listed_by_sfdisk() {
    let dir = tempfile::tempdir().unwrap();
    let (path, placed) = test_disk(dir.path(), "gpt.img");
    let verify = run("sgdisk", &["-v", path_str(&path)], "gdisk");
    assert!(
        stdout(&verify).contains("No problems found"),
        "sgdisk -v: {}",
        stdout(&verify)
    );

    let dump = run("sfdisk", &["--json", path_str(&path)], "fdisk");
    assert!(dump.status.success(), "{dump:?}");
    let table: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    let table = &table["partitiontable"];
    assert_eq!(table["label"], "gpt");
    assert_eq!(table["id"], Guid::derive(SEED, "disk").to_string());
    assert_eq!(table["firstlba"], FIRST_USABLE);
    assert_eq!(table["lastlba"], LAST_USABLE);
    let listed = table["partitions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for (entry, placed) in listed.iter().zip(&placed) {
        let PlacedPartition {
            partition,
            first_lba,
        } = placed;
        assert_eq!(entry["start"], *first_lba);
        assert_eq!(entry["size"], partition.sectors);
        assert_eq!(entry["type"], partition.type_guid.to_string());
        assert_eq!(entry["uuid"], partition.unique_guid.to_string());
        assert_eq!(entry["name"], partition.name.as_str());
    }
    assert_eq!(listed[0]["start"], 2048);
    assert_eq!(listed[1]["start"], 2048 + 8 * 2048);
}

#[test]
fn gpt_starts_with_a_protective_mbr_over_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = test_disk(dir.path(), "protective.img");
    let mut sector = [0; 512];
    File::open(&path)
        .unwrap()
        .read_exact_at(&mut sector, 0)
        .unwrap();
    assert_eq!(sector[..446], [0; 446], "no boot code, disk signature 0");
    // One entry: not active, CHS 0/0/2, type 0xEE, from sector 1 to the end.
    assert_eq!(sector[446..451], [0, 0, 2, 0, 0xEE]);
    assert_eq!(sector[454..458], 1u32.to_le_bytes());
    assert_eq!(sector[458..462], (DISK_SECTORS as u32 - 1).to_le_bytes());
    assert_eq!(sector[462..510], [0; 48]);
    assert_eq!(sector[510..], [0x55, 0xAA]);
}

#[test]
fn gpt_bytes_are_the_same_for_the_same_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = test_disk(dir.path(), "a.img");
    let (second, _) = test_disk(dir.path(), "b.img");
    assert!(std::fs::read(first).unwrap() == std::fs::read(second).unwrap());
}

#[test]
fn gpt_refuses_a_file_of_another_size() {
    let file = tempfile::tempfile().unwrap();
    file.set_len(DISK_SECTORS * 512 - 512).unwrap();
    let error = gpt_layout().0.write(&file).unwrap_err();
    assert!(error.to_string().contains("set_len"), "{error}");
}

#[test]
#[ignore = "heavy: needs gdisk and fdisk (scripts/test.sh)"]
fn mbr_is_listed_by_fdisk_with_boot_code_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbr.img");
    let file = File::create(&path).unwrap();
    let sectors: u32 = 16 * 2048;
    file.set_len(u64::from(sectors) * 512).unwrap();
    let mut mbr = Mbr::new(u64::from(sectors), 0x1234_ABCD);
    let boot_code = pattern(9, 440);
    mbr.set_boot_code(&boot_code).unwrap();
    mbr.add(MbrPartition {
        kind: MBR_TYPE_FAT32_LBA,
        active: true,
        start_lba: 2048,
        sectors: 4096,
    })
    .unwrap();
    mbr.add(MbrPartition {
        kind: MBR_TYPE_LINUX,
        active: false,
        start_lba: 6144,
        sectors: sectors - 6144,
    })
    .unwrap();
    mbr.write(&file).unwrap();

    let listing = stdout(&run("fdisk", &["-l", path_str(&path)], "fdisk"));
    assert!(listing.contains("Disk identifier: 0x1234abcd"), "{listing}");
    let dump = run("sfdisk", &["--json", path_str(&path)], "fdisk");
    let table: serde_json::Value = serde_json::from_slice(&dump.stdout).unwrap();
    let listed = &table["partitiontable"]["partitions"];
    assert_eq!(table["partitiontable"]["label"], "dos");
    assert_eq!(listed[0]["start"], 2048);
    assert_eq!(listed[0]["size"], 4096);
    assert_eq!(listed[0]["type"], "c");
    assert_eq!(listed[0]["bootable"], true);
    assert_eq!(listed[1]["start"], 6144);
    assert_eq!(listed[1]["size"], sectors - 6144);
    assert_eq!(listed[1]["type"], "83");
    assert_eq!(listed[1]["bootable"], serde_json::Value::Null);

    let mut sector = [0; 512];
    File::open(&path)
        .unwrap()
        .read_exact_at(&mut sector, 0)
        .unwrap();
    assert_eq!(sector[..440], boot_code[..]);
    assert_eq!(sector[510..], [0x55, 0xAA]);
}

/// `qemu-img info`'s JSON for `path` read as `format`.
fn qemu_info(path: &Path, format: &str) -> serde_json::Value {
    let info = run(
        "qemu-img",
        &["info", "--output=json", "-f", format, path_str(path)],
        "qemu-utils",
    );
    assert!(info.status.success(), "{info:?}");
    serde_json::from_slice(&info.stdout).unwrap()
}

/// Asserts that qemu reads `container` (as `format`) as exactly the disk in `raw`.
fn assert_same_disk(raw: &Path, container: &Path, format: &str) {
    let compare = run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            format,
            path_str(raw),
            path_str(container),
        ],
        "qemu-utils",
    );
    assert!(
        compare.status.success() && stdout(&compare).contains("Images are identical"),
        "qemu-img compare: {compare:?}"
    );
    let raw_size = std::fs::metadata(raw).unwrap().len();
    assert_eq!(qemu_info(container, format)["virtual-size"], raw_size);
}

/// Asserts that `qemu-img check` finds nothing wrong in `container`.
fn assert_checks_clean(container: &Path, format: &str) {
    let check = run(
        "qemu-img",
        &["check", "-f", format, path_str(container)],
        "qemu-utils",
    );
    assert!(
        check.status.success() && stdout(&check).contains("No errors were found"),
        "qemu-img check: {check:?}"
    );
}

/// Converts the test disk twice with `convert` and returns the first output,
/// asserting that both are byte-identical.
fn convert_twice(dir: &Path, name: &str, convert: impl Fn(&File, &Path)) -> (PathBuf, PathBuf) {
    let (raw, _) = test_disk(dir, "raw.img");
    let source = File::open(&raw).unwrap();
    let first = dir.join(name);
    let second = dir.join(format!("again-{name}"));
    convert(&source, &first);
    convert(&source, &second);
    assert!(
        std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
        "{name}: two conversions differ"
    );
    (raw, first)
}

#[test]
#[ignore = "heavy: needs qemu-img (scripts/test.sh)"]
fn qcow2_is_clean_identical_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, out) = convert_twice(dir.path(), "disk.qcow2", |source, path| {
        qcow2::write(source, File::create(path).unwrap()).unwrap();
    });
    assert_checks_clean(&out, "qcow2");
    assert_same_disk(&raw, &out, "qcow2");
    let info = qemu_info(&out, "qcow2");
    assert_eq!(info["format-specific"]["data"]["compat"], "1.1");
    assert_eq!(info["cluster-size"], 65_536);
    // Only the clusters holding data are allocated: those plus the header,
    // refcount table and block, L1 table and one L2 table.
    let cluster = 65_536;
    let data_clusters = nonzero_chunks(&raw, cluster);
    let size = std::fs::metadata(&out).unwrap().len();
    assert_eq!(size, ((5 + data_clusters) * cluster) as u64);
}

fn vhd_identity() -> vhd::VhdIdentity {
    vhd::VhdIdentity {
        unique_id: *Guid::derive(SEED, "vhd").as_bytes(),
        timestamp: 1_492_533_000,
    }
}

/// Reads the 512-byte footer at the end of a VHD.
fn vhd_footer(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    bytes[bytes.len() - 512..].to_vec()
}

#[test]
#[ignore = "heavy: needs qemu-img (scripts/test.sh)"]
fn fixed_vhd_is_identical_reproducible_and_sized_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, out) = convert_twice(dir.path(), "disk.vhd", |source, path| {
        vhd::write_fixed(source, File::create(path).unwrap(), &vhd_identity()).unwrap();
    });
    assert_same_disk(&raw, &out, "vpc");
    let raw_bytes = std::fs::read(&raw).unwrap();
    let vhd_bytes = std::fs::read(&out).unwrap();
    assert_eq!(vhd_bytes.len(), raw_bytes.len() + 512);
    assert!(vhd_bytes[..raw_bytes.len()] == raw_bytes[..]);
    let footer = vhd_footer(&out);
    assert_eq!(&footer[..8], b"conectix");
    // 2017-04-18 16:30:00 UTC, counted from 2000-01-01.
    assert_eq!(
        footer[24..28],
        (1_492_533_000u32 - 946_684_800).to_be_bytes()
    );
    assert_eq!(footer[68..84], vhd_identity().unique_id);
}

#[test]
#[ignore = "heavy: needs qemu-img (scripts/test.sh)"]
fn dynamic_vhd_is_identical_reproducible_and_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, out) = convert_twice(dir.path(), "dynamic.vhd", |source, path| {
        vhd::write_dynamic(source, File::create(path).unwrap(), &vhd_identity()).unwrap();
    });
    assert_same_disk(&raw, &out, "vpc");
    let bytes = std::fs::read(&out).unwrap();
    // The footer copy at the start equals the footer at the end.
    assert!(bytes[..512] == vhd_footer(&out)[..]);
    assert_eq!(&bytes[512..520], b"cxsparse");
    // Only the 2 MiB blocks holding data are stored, each behind a 512-byte
    // bitmap, after the footer copy, dynamic header and one-sector BAT.
    let block = 2 * 1024 * 1024;
    let raw_blocks = nonzero_chunks(&raw, block);
    assert_eq!(raw_blocks, 6);
    assert_eq!(
        bytes.len(),
        512 + 1024 + 512 + raw_blocks * (512 + block) + 512
    );
}

#[test]
#[ignore = "heavy: needs qemu-img (scripts/test.sh)"]
fn stream_optimized_vmdk_is_clean_identical_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, out) = convert_twice(dir.path(), "disk.vmdk", |source, path| {
        vmdk::write(source, File::create(path).unwrap(), 0x0123_abcd).unwrap();
    });
    assert_checks_clean(&out, "vmdk");
    assert_same_disk(&raw, &out, "vmdk");
    let info = qemu_info(&out, "vmdk");
    let specific = &info["format-specific"]["data"];
    assert_eq!(specific["create-type"], "streamOptimized");
    assert_eq!(specific["cid"], 0x0123_abcd);
    assert_eq!(specific["extents"][0]["compressed"], true);
}

/// Pins every container's bytes for the test disk: a change to any layout,
/// id or compression output must be a deliberate, visible decision, since it
/// changes published digests.
#[test]
fn container_bytes_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, _) = test_disk(dir.path(), "raw.img");
    let source = File::open(&raw).unwrap();
    let out = |name: &str| dir.path().join(name);
    qcow2::write(&source, File::create(out("disk.qcow2")).unwrap()).unwrap();
    vhd::write_fixed(
        &source,
        File::create(out("disk.vhd")).unwrap(),
        &vhd_identity(),
    )
    .unwrap();
    let dynamic = File::create(out("dynamic.vhd")).unwrap();
    vhd::write_dynamic(&source, dynamic, &vhd_identity()).unwrap();
    vmdk::write(&source, File::create(out("disk.vmdk")).unwrap(), 1).unwrap();
    let names = [
        "raw.img",
        "disk.qcow2",
        "disk.vhd",
        "dynamic.vhd",
        "disk.vmdk",
    ];
    let digests: Vec<String> = names
        .iter()
        .map(|name| support::sha256_file(&out(name)))
        .collect();
    assert_eq!(
        digests,
        [
            "12a5cee850c4fc5f6ceff96381ae9762ace63fee7850bc7f6301846485ec703f",
            "66a52e90b639f67e0f498ca21a3ee7cd3cad7b444c818e1547612ae8a595f791",
            "a6aa97a51d544183010616b4c44342ab7dfe50b20db8da7fb8e58856a4d67b2e",
            "1d30c3ee208417e499cc448285d4a7df9508c8fbd9695dba1a46dcbdd3552325",
            "f353d1cf05bc1d401b65410ca0801a0766c32ecdff434ef6f0f6b27f108fced7",
        ]
    );
}

//! Images checked with dosfstools (`fsck.vfat -n`) and read back with mtools.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::Path;
use std::process::Command;

use super::geometry::Geometry;
use super::*;

const MTOOLS_HINT: &str = "install mtools (apt-get install mtools)";
const FSCK_HINT: &str = "install dosfstools (apt-get install dosfstools)";

/// Deterministic non-repeating-looking bytes, generated as read.
struct Pattern {
    seed: u8,
    position: u64,
    remaining: u64,
}

fn pattern(seed: u8, len: u64) -> Pattern {
    Pattern {
        seed,
        position: 0,
        remaining: len,
    }
}

impl Read for Pattern {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = buffer.len().min(self.remaining as usize);
        for byte in &mut buffer[..count] {
            let p = self.position;
            *byte = (p ^ (p >> 9) ^ (p >> 17)).wrapping_mul(u64::from(self.seed) | 1) as u8;
            self.position += 1;
        }
        self.remaining -= count as u64;
        Ok(count)
    }
}

fn pattern_bytes(seed: u8, len: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    pattern(seed, len).read_to_end(&mut bytes).unwrap();
    bytes
}

fn options() -> FatOptions {
    FatOptions {
        label: Some("OSSIFY ESP".to_owned()),
        volume_id: 0x1234_ABCD,
        timestamp: 1_492_533_000,
        hidden_sectors: 2048,
        min_size: None,
    }
}

fn write_image(image: FatImage<'_>, path: &Path) {
    let size = image.size();
    let out = image
        .write(BufWriter::new(File::create(path).unwrap()))
        .unwrap();
    drop(out.into_inner().unwrap());
    assert_eq!(std::fs::metadata(path).unwrap().len(), size);
}

fn run(command: &mut Command, hint: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?} ({error}): {hint}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `fsck.vfat -n` finds nothing to fix.
fn assert_fsck_clean(image: &Path) {
    let report = run(
        Command::new("fsck.vfat").arg("-n").arg("-V").arg(image),
        FSCK_HINT,
    );
    let lines: Vec<&str> = report.lines().collect();
    // Without problems, fsck prints its banner, the pass lines and a summary.
    assert!(
        lines.iter().all(|line| {
            line.starts_with("fsck.fat")
                || line.starts_with("Starting check/repair pass.")
                || line.starts_with("Starting verification pass.")
                || line.starts_with("Checking we can access")
                || line.contains(" files, ")
        }),
        "fsck.vfat reported problems:\n{report}"
    );
}

/// Copies `path` out of the image with mcopy.
fn read_back(image: &Path, path: &str, into: &Path) -> Vec<u8> {
    let target = into.join("copy");
    run(
        Command::new("mcopy")
            .args(["-n", "-o", "-i"])
            .arg(image)
            .arg(format!("::/{path}"))
            .arg(&target),
        MTOOLS_HINT,
    );
    std::fs::read(&target).unwrap()
}

fn mdir(image: &Path, dir: &str) -> String {
    run(
        Command::new("mdir")
            .arg("-i")
            .arg(image)
            .arg(format!("::/{dir}")),
        MTOOLS_HINT,
    )
}

#[test]
#[ignore = "heavy: needs dosfstools and mtools (scripts/test.sh)"]
fn small_volume_is_fat12_with_long_and_short_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esp.img");
    let efi = pattern_bytes(1, 70_000);
    let cfg = b"set timeout=0\n".to_vec();
    // Enough entries with long names to take several directory clusters.
    let many: Vec<(String, Vec<u8>)> = (0..60)
        .map(|i| {
            (
                format!("many/module number {i}.mod"),
                pattern_bytes(i, 100 + u64::from(i)),
            )
        })
        .collect();
    let mut builder = FatBuilder::new(options());
    builder
        .add_file("EFI/BOOT/BOOTX64.EFI", efi.len() as u64, &efi[..])
        .unwrap();
    builder
        .add_file("boot/grub/grub.cfg", cfg.len() as u64, &cfg[..])
        .unwrap();
    builder
        .add_file("boot/Empty File.txt", 0, io::empty())
        .unwrap();
    builder.add_dir("boot/grub/i386-pc").unwrap();
    for (name, bytes) in &many {
        builder
            .add_file(name, bytes.len() as u64, &bytes[..])
            .unwrap();
    }
    let image = builder.plan().unwrap();
    assert_eq!(image.fat_type(), FatType::Fat12);
    assert_eq!(image.fat_type().mbr_partition_type(), 0x01);
    assert_eq!(image.size(), 2 * MIB);
    write_image(image, &path);

    assert_fsck_clean(&path);
    let info = run(
        Command::new("minfo").arg("-i").arg(&path).arg("::"),
        MTOOLS_HINT,
    );
    for field in [
        "hidden sectors: 2048",
        "physical drive id: 0x80",
        "media descriptor byte: 0xf8",
        "serial number: 1234ABCD",
        "disk type=\"FAT12   \"",
    ] {
        assert!(info.contains(field), "minfo lacks {field}:\n{info}");
    }
    let root = mdir(&path, "");
    assert!(root.contains("OSSIFY ESP"), "{root}");
    assert!(root.contains("1234-ABCD"), "{root}");
    let grub = mdir(&path, "boot/grub");
    assert!(grub.contains("grub.cfg"), "{grub}");
    assert!(grub.contains("i386-pc"), "{grub}");
    assert!(grub.contains("2017-04-18"), "{grub}");
    assert_eq!(read_back(&path, "EFI/BOOT/BOOTX64.EFI", dir.path()), efi);
    assert_eq!(read_back(&path, "boot/grub/grub.cfg", dir.path()), cfg);
    assert_eq!(read_back(&path, "boot/Empty File.txt", dir.path()), b"");
    for (name, bytes) in &many {
        assert_eq!(&read_back(&path, name, dir.path()), bytes, "{name}");
    }
}

#[test]
#[ignore = "heavy: needs dosfstools and mtools (scripts/test.sh)"]
fn twenty_mib_volume_is_fat16() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esp.img");
    let len = 20 * MIB + 12_345;
    let mut builder = FatBuilder::new(options());
    builder
        .add_file("EFI/BOOT/BOOTX64.EFI", len, pattern(7, len))
        .unwrap();
    builder
        .add_file("loader/entries/ossify.conf", 5, &b"title"[..])
        .unwrap();
    let image = builder.plan().unwrap();
    assert_eq!(image.fat_type(), FatType::Fat16);
    assert_eq!(image.fat_type().mbr_partition_type(), 0x0E);
    write_image(image, &path);

    assert_fsck_clean(&path);
    let copied = read_back(&path, "EFI/BOOT/BOOTX64.EFI", dir.path());
    assert!(copied == pattern_bytes(7, len), "BOOTX64.EFI differs");
    assert_eq!(
        read_back(&path, "loader/entries/ossify.conf", dir.path()),
        b"title"
    );
}

#[test]
#[ignore = "heavy: needs dosfstools and mtools (scripts/test.sh)"]
fn three_hundred_mib_volume_is_fat32() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esp.img");
    let big = 300 * MIB + 1;
    let mut builder = FatBuilder::new(options());
    builder
        .add_file("EFI/BOOT/BOOTX64.EFI", 4096, pattern(3, 4096))
        .unwrap();
    builder
        .add_file("big/initrd.img", big, io::repeat(0x5A).take(big))
        .unwrap();
    let image = builder.plan().unwrap();
    assert_eq!(image.fat_type(), FatType::Fat32);
    assert_eq!(image.fat_type().mbr_partition_type(), 0x0C);
    write_image(image, &path);

    assert_fsck_clean(&path);
    assert_eq!(
        read_back(&path, "EFI/BOOT/BOOTX64.EFI", dir.path()),
        pattern_bytes(3, 4096)
    );
    let target = dir.path().join("copy");
    run(
        Command::new("mcopy")
            .args(["-n", "-o", "-i"])
            .arg(&path)
            .arg("::/big/initrd.img")
            .arg(&target),
        MTOOLS_HINT,
    );
    let mut copied = File::open(&target).unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let read = copied.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        assert!(
            buffer[..read].iter().all(|&b| b == 0x5A),
            "initrd.img differs"
        );
        total += read as u64;
    }
    assert_eq!(total, big);
}

#[test]
fn same_inputs_give_same_bytes() {
    let build = || {
        let mut builder = FatBuilder::new(options());
        builder
            .add_file("b/vmlinuz", 3000, pattern(9, 3000))
            .unwrap();
        builder
            .add_file("a/initrd.img", 5000, pattern(4, 5000))
            .unwrap();
        builder.plan().unwrap().write(Vec::new()).unwrap()
    };
    let first = build();
    assert_eq!(first, build());
    let mut other = options();
    other.volume_id = 1;
    let mut builder = FatBuilder::new(other);
    builder
        .add_file("b/vmlinuz", 3000, pattern(9, 3000))
        .unwrap();
    builder
        .add_file("a/initrd.img", 5000, pattern(4, 5000))
        .unwrap();
    assert_ne!(first, builder.plan().unwrap().write(Vec::new()).unwrap());
}

#[test]
#[ignore = "heavy: needs dosfstools and mtools (scripts/test.sh)"]
fn minimum_size_is_honoured_and_checked_by_fsck() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esp.img");
    let mut builder = FatBuilder::new(FatOptions {
        min_size: Some(600 * MIB),
        label: None,
        ..options()
    });
    builder.add_file("hello.txt", 2, &b"hi"[..]).unwrap();
    let image = builder.plan().unwrap();
    assert_eq!(image.size(), 600 * MIB);
    assert_eq!(image.fat_type(), FatType::Fat32);
    write_image(image, &path);
    assert_fsck_clean(&path);
    assert_eq!(read_back(&path, "hello.txt", dir.path()), b"hi");
}

#[test]
fn cluster_count_always_matches_the_fat_type() {
    // Sizes around every threshold, in sectors.
    let sizes = (2048..9000)
        .step_by(7)
        .chain((30_000..35_000).step_by(13))
        .chain((520_000..540_000).step_by(101))
        .chain([16_777_216, 16_777_217, 67_108_865, u64::from(u32::MAX)]);
    for total in sizes {
        let geometry = Geometry::choose(total, DEFAULT_ROOT_ENTRIES).unwrap();
        let clusters = geometry.cluster_count;
        let expected = match clusters {
            ..4085 => FatType::Fat12,
            4085..65525 => FatType::Fat16,
            _ => FatType::Fat32,
        };
        assert_eq!(geometry.fat_type, expected, "{total} sectors");
        let fat_entries = geometry.fat_sectors * SECTOR * 8 / geometry.fat_type.entry_bits();
        assert!(
            fat_entries >= clusters + 2,
            "{total} sectors: FAT too small"
        );
        assert!(geometry.data_start() + clusters * geometry.sectors_per_cluster <= total);
    }
    assert!(Geometry::choose(u64::from(u32::MAX) + 1, 512).is_err());
}

#[test]
fn rejects_clashes_bad_names_and_wrong_lengths() {
    let mut builder = FatBuilder::new(options());
    builder.add_file("EFI/BOOT/x", 1, &b"x"[..]).unwrap();
    assert!(matches!(
        builder.add_file("efi/boot/y", 1, &b"y"[..]),
        Err(FatError::Clash { .. })
    ));
    assert!(matches!(
        builder.add_dir("EFI/BOOT/x/sub"),
        Err(FatError::Clash { .. })
    ));
    assert!(matches!(
        builder.add_file("EFI/BOOT/X", 1, &b"x"[..]),
        Err(FatError::Clash { .. })
    ));
    assert!(matches!(
        builder.add_file("a/b?", 1, &b"x"[..]),
        Err(FatError::InvalidPath { .. })
    ));
    assert!(matches!(
        builder.add_file("huge", 1 << 32, io::empty()),
        Err(FatError::FileTooLarge { .. })
    ));
    builder.add_file("short", 10, &b"123"[..]).unwrap();
    let error = builder.plan().unwrap().write(Vec::new()).unwrap_err();
    assert!(
        matches!(
            error,
            FatError::LengthMismatch {
                declared: 10,
                actual: 3,
                ..
            }
        ),
        "{error}"
    );
    let bad_label = FatBuilder::new(FatOptions {
        label: Some("lower".to_owned()),
        ..options()
    });
    assert!(matches!(
        bad_label.plan(),
        Err(FatError::InvalidLabel { .. })
    ));
}

//! Boot tests: every bootable format built from the example config (a
//! Debian kernel, a busybox init with runc, a readonly onboot container)
//! boots under QEMU (TCG), and the init proves the build from inside: it
//! prints its marker only after runc ran the onboot container.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use support::boot::{self, OVMF};

const LIMIT: Duration = Duration::from_secs(300);

/// Every bootable format of the example, built once for all tests here.
fn built() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let dir = boot::repo().join("target/boot-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cache = boot::example_cache(&dir);
        let out = dir.join("out");
        let mut args = vec!["--boot-image", boot::BOOT_IMAGE];
        for format in [
            "kernel+initrd",
            "tar",
            "kernel+squashfs",
            "kernel+erofs",
            "ext4",
            "iso-bios",
            "iso-efi",
            "iso",
            "raw-bios",
            "raw-efi",
            "qcow2-bios",
            "qcow2-efi",
            "aws",
            "gcp",
        ] {
            args.extend(["-f", format]);
        }
        boot::build(&dir, &cache, &out, &args, &[]);
        out
    })
}

fn file(name: &str) -> String {
    built().join(name).to_str().unwrap().to_owned()
}

fn drive(name: &str, format: &str) -> String {
    format!("file={},format={format},snapshot=on", file(name))
}

/// Boots with `args`, asserts the marker and returns the serial log.
fn boots(what: &str, args: &[&str]) -> String {
    let log = boot::qemu(args, LIMIT);
    boot::assert_booted(what, &log);
    assert!(
        log.contains("onboot container said: hello from an ossify image"),
        "{what}: the onboot container did not run"
    );
    log
}

/// Boots the example's kernel with `image` as the root on a virtio disk,
/// mounted as `fstype` by a small initrd of the test's own; returns the
/// serial log.
fn boots_from_disk(image: &Path, fstype: &str, writable: bool) -> String {
    let initrd = built().join(format!("root-disk-{fstype}.cpio"));
    let contents = boot::root_disk_initrd(&built().join("hello.tar"), fstype, writable);
    std::fs::write(&initrd, contents).unwrap();
    let cmdline = std::fs::read_to_string(built().join("hello-cmdline")).unwrap();
    // Writes to a read-write root go to a throw-away overlay.
    let access = if writable {
        "snapshot=on"
    } else {
        "readonly=on"
    };
    let drive = format!("file={},format=raw,if=virtio,{access}", image.display());
    let what = format!("{} as the root ({fstype})", image.display());
    let log = boots(
        &what,
        &[
            "-kernel",
            &file("hello-kernel"),
            "-initrd",
            initrd.to_str().unwrap(),
            "-append",
            &cmdline,
            "-drive",
            &drive,
        ],
    );
    assert!(
        log.contains(&format!("mounted /dev/vda as {fstype}")),
        "{what}: the root-disk initrd did not mount the image"
    );
    log
}

#[test]
#[ignore = "heavy: needs QEMU and Debian packages (scripts/test.sh)"]
fn kernel_and_squashfs_boot_with_the_root_on_a_virtio_disk() {
    boots_from_disk(&built().join("hello-squashfs.img"), "squashfs", false);
}

#[test]
#[ignore = "heavy: needs QEMU and Debian packages (scripts/test.sh)"]
fn kernel_and_erofs_boot_with_the_root_on_a_virtio_disk() {
    boots_from_disk(&built().join("hello-erofs.img"), "erofs", false);
}

#[test]
#[ignore = "heavy: needs QEMU and Debian packages (scripts/test.sh)"]
fn kernel_and_lz4_erofs_boot_with_the_root_on_a_virtio_disk() {
    let dir = built().parent().unwrap();
    let out = dir.join("out-erofs-lz4");
    let args = [
        "--boot-image",
        boot::BOOT_IMAGE,
        "-f",
        "kernel+erofs",
        "--erofs-compression",
        "lz4",
    ];
    boot::build(dir, &dir.join("cache"), &out, &args, &[]);
    let image = out.join("hello-erofs.img");
    let superblock = &std::fs::read(&image).unwrap()[1024..1024 + 128];
    let incompat = u32::from_le_bytes(superblock[80..84].try_into().unwrap());
    assert_eq!(incompat & 1, 1, "files were LZ4-compressed (lz4_0padding)");
    boots_from_disk(&image, "erofs", false);
}

#[test]
#[ignore = "heavy: needs QEMU and Debian packages (scripts/test.sh)"]
fn ext4_boots_as_a_read_write_root_that_keeps_what_is_written() {
    let log = boots_from_disk(&built().join("hello.ext4"), "ext4", true);
    assert!(
        log.contains("read-write root: wrote and read back /root-write-check"),
        "the ext4 root was not writable"
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn kernel_and_initrd_boot_and_run_the_onboot_container_with_runc() {
    let cmdline = std::fs::read_to_string(built().join("hello-cmdline")).unwrap();
    assert_eq!(cmdline, "console=tty0 console=ttyS0 panic=-1");
    boots(
        "kernel+initrd",
        &[
            "-kernel",
            &file("hello-kernel"),
            "-initrd",
            &file("hello-initrd.img"),
            "-append",
            &cmdline,
        ],
    );
}

/// The kernel unpacks every initrd compression ossify writes: each one's
/// initrd starts with its format's magic, and boots.
#[test]
#[ignore = "heavy: needs QEMU and Debian packages (scripts/test.sh)"]
fn kernel_and_initrd_boot_with_every_initrd_compression() {
    let dir = boot::repo().join("target/boot-tests-initrd-compression");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cache = boot::example_cache(&dir);
    let cmdline = "console=tty0 console=ttyS0 panic=-1";
    for (compression, magic) in [
        ("zstd", &b"\x28\xb5\x2f\xfd"[..]),
        ("xz", b"\xfd7zXZ\0"),
        ("lz4", b"\x02\x21\x4c\x18"),
        ("none", b"070701"),
    ] {
        let out = dir.join(compression);
        boot::build(
            &dir,
            &cache,
            &out,
            &["-f", "kernel+initrd", "--initrd-compression", compression],
            &[],
        );
        let initrd = out.join("hello-initrd.img");
        let bytes = std::fs::read(&initrd).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{compression}: {:02x?}",
            &bytes[..8]
        );
        boots(
            &format!("kernel+initrd with a {compression} initrd"),
            &[
                "-kernel",
                out.join("hello-kernel").to_str().unwrap(),
                "-initrd",
                initrd.to_str().unwrap(),
                "-append",
                cmdline,
            ],
        );
    }
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn iso_bios_boots_under_seabios_as_cd() {
    boots("iso-bios as CD", &["-cdrom", &file("hello.iso")]);
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn iso_bios_boots_under_seabios_as_disk() {
    boots("iso-bios as disk", &["-drive", &drive("hello.iso", "raw")]);
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn iso_efi_boots_under_ovmf_as_cd() {
    boots(
        "iso-efi as CD",
        &["-bios", OVMF, "-cdrom", &file("hello-efi.iso")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn hybrid_iso_boots_under_seabios_as_cd() {
    boots(
        "iso under BIOS as CD",
        &["-cdrom", &file("hello-hybrid.iso")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn hybrid_iso_boots_under_seabios_as_disk() {
    boots(
        "iso under BIOS as disk",
        &["-drive", &drive("hello-hybrid.iso", "raw")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn hybrid_iso_boots_under_ovmf_as_cd() {
    boots(
        "iso under UEFI as CD",
        &["-bios", OVMF, "-cdrom", &file("hello-hybrid.iso")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn hybrid_iso_boots_under_ovmf_as_disk() {
    boots(
        "iso under UEFI as disk",
        &["-bios", OVMF, "-drive", &drive("hello-hybrid.iso", "raw")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn raw_efi_boots_under_ovmf() {
    boots(
        "raw-efi",
        &["-bios", OVMF, "-drive", &drive("hello-efi.img", "raw")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn raw_bios_boots_under_seabios() {
    boots("raw-bios", &["-drive", &drive("hello-bios.img", "raw")]);
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn qcow2_efi_boots_under_ovmf_from_the_qcow2_file() {
    boots(
        "qcow2-efi",
        &["-bios", OVMF, "-drive", &drive("hello-efi.qcow2", "qcow2")],
    );
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn qcow2_bios_boots_under_seabios_from_the_qcow2_file() {
    boots("qcow2-bios", &["-drive", &drive("hello.qcow2", "qcow2")]);
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn aws_is_a_one_gib_raw_disk_that_boots_under_seabios() {
    let size = std::fs::metadata(file("hello.raw")).unwrap().len();
    assert_eq!(size, 1 << 30, "LinuxKit's default -size");
    boots("aws", &["-drive", &drive("hello.raw", "raw")]);
}

/// gcp is what Compute Engine imports: a gzip'd GNU tar whose one file is
/// `disk.raw`, a whole number of GiB; that disk boots under SeaBIOS.
#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn gcp_holds_a_disk_raw_that_boots_under_seabios() {
    let listing = std::process::Command::new("tar")
        .args(["-tvzf", &file("hello.img.tar.gz")])
        .output()
        .expect("GNU tar runs");
    assert!(listing.status.success(), "{listing:?}");
    let listing = String::from_utf8(listing.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    assert!(lines[0].ends_with(" disk.raw"), "{listing}");
    let gz = std::fs::File::open(file("hello.img.tar.gz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert!(entry.header().as_gnu().is_some(), "a GNU (oldgnu) header");
    assert_eq!(entry.header().size().unwrap() % (1 << 30), 0, "whole GiB");
    let disk = built().join("gcp-disk.raw");
    let mut out = std::fs::File::create(&disk).unwrap();
    std::io::copy(&mut entry, &mut out).unwrap();
    boots(
        "gcp's disk.raw",
        &[
            "-drive",
            &format!("file={},format=raw,snapshot=on", disk.display()),
        ],
    );
}

/// Bytes no compressor can shrink, from a fixed xorshift sequence, so the
/// initrd really grows by their size.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
#[ignore = "heavy: needs QEMU, OVMF and Debian packages (scripts/test.sh)"]
fn iso_efi_boots_with_an_initrd_over_32_mib() {
    let dir = tempfile::tempdir().unwrap();
    let cache = boot::example_cache(dir.path());
    std::fs::write(dir.path().join("ballast.bin"), incompressible(40 << 20)).unwrap();
    let extra = dir.path().join("ballast.yml");
    std::fs::write(
        &extra,
        "files:\n  - path: var/ballast.bin\n    source: ballast.bin\n    mode: \"0644\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let example = boot::repo().join("examples/hello.yml");
    boot::build(
        dir.path(),
        &cache,
        &out,
        &[
            "--boot-image",
            boot::BOOT_IMAGE,
            "-f",
            "iso-efi",
            "--name",
            "big",
        ],
        &[&example, &extra],
    );
    let iso = out.join("big-efi.iso");
    assert!(std::fs::metadata(&iso).unwrap().len() > 40 << 20);
    // El Torito counts 512-byte sectors in 16 bits: over 32 MiB the count
    // is 0, meaning "to the end of the volume".
    let report = std::process::Command::new("xorriso")
        .args([
            "-indev",
            iso.to_str().unwrap(),
            "-report_el_torito",
            "plain",
        ])
        .output()
        .expect("xorriso is missing: apt-get install xorriso");
    let report = String::from_utf8_lossy(&report.stdout);
    let entry = report
        .lines()
        .find(|l| l.starts_with("El Torito boot img :   1"))
        .unwrap_or_else(|| panic!("no boot image in:\n{report}"));
    assert!(entry.contains("UEFI"), "{entry}");
    let fields: Vec<&str> = entry.split_whitespace().collect();
    assert_eq!(fields[fields.len() - 2], "0", "sector count of {entry}");
    boots(
        "iso-efi with a 40 MiB initrd",
        &["-bios", OVMF, "-cdrom", iso.to_str().unwrap()],
    );
}

//! The bootable formats checked with tools that are not ossify's (xorriso,
//! fsck.vfat, mtools, sgdisk, sfdisk, objdump, qemu-img), built twice to
//! show they are byte-identical, and their failures: missing bootloader
//! files, disks too small, formats that clash.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{boot, tool};

const FORMATS: &[&str] = &[
    "kernel+initrd",
    "uki",
    "iso-bios",
    "iso-efi",
    "iso",
    "raw-bios",
    "raw-efi",
    "qcow2-bios",
    "qcow2-efi",
    "vhd",
    "vmdk",
    "aws",
    "gcp",
];

fn format_args() -> Vec<&'static str> {
    let mut args = vec!["--boot-image", boot::BOOT_IMAGE];
    for format in FORMATS {
        args.extend(["-f", format]);
    }
    args
}

/// A scratch directory with a cache of the example and boot images.
struct Scratch {
    dir: tempfile::TempDir,
    cache: PathBuf,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    let cache = boot::example_cache(dir.path());
    Scratch { dir, cache }
}

impl Scratch {
    /// Builds the example with `args` into `out` here; returns what ossify
    /// did and `out`.
    fn build(&self, args: &[&str]) -> (std::process::Output, PathBuf) {
        let out = self.dir.path().join("out");
        let output = boot::build_output(self.dir.path(), &self.cache, &out, args, &[]);
        (output, out)
    }
}

/// Every format, built once for the checks below.
fn built() -> &'static Path {
    static OUT: OnceLock<(Scratch, PathBuf)> = OnceLock::new();
    &OUT.get_or_init(|| {
        let scratch = scratch();
        let out = scratch.dir.path().join("out");
        boot::build(
            scratch.dir.path(),
            &scratch.cache,
            &out,
            &format_args(),
            &[],
        );
        (scratch, out)
    })
    .1
}

fn path(name: &str) -> String {
    built().join(name).to_str().unwrap().to_owned()
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn every_output_is_byte_identical_in_another_environment() {
    let scratch = scratch();
    let out = scratch.dir.path().join("elsewhere");
    let other_cwd = scratch.dir.path().join("cwd");
    std::fs::create_dir_all(&other_cwd).unwrap();
    let mut args = vec![
        "build".to_owned(),
        "--offline".to_owned(),
        "--cache-dir".to_owned(),
        scratch.cache.to_str().unwrap().to_owned(),
        "--dir".to_owned(),
        out.to_str().unwrap().to_owned(),
    ];
    args.extend(format_args().iter().map(|a| a.to_string()));
    args.push(
        boot::repo()
            .join("examples/hello.yml")
            .to_str()
            .unwrap()
            .to_owned(),
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg("umask 077; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_ossify"))
        .args(&args)
        .current_dir(&other_cwd)
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "de_DE.UTF-8")
        .env_remove("SOURCE_DATE_EPOCH")
        .status()
        .unwrap();
    assert!(status.success());
    let manifest = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("hello.manifest.json")).unwrap()).unwrap()
    };
    let (first, second) = (manifest(built()), manifest(&out));
    assert_eq!(first["outputs"], second["outputs"]);
    let outputs = first["outputs"].as_array().unwrap();
    assert_eq!(
        outputs.len(),
        FORMATS.len() + 2,
        "kernel+initrd writes 3 files"
    );
    for output in outputs {
        let name = output["file"].as_str().unwrap();
        assert_eq!(
            output["sha256"].as_str().unwrap(),
            support::sha256_file(&out.join(name))
        );
    }
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn xorriso_reports_the_expected_boot_catalogs() {
    let catalog = |iso: &str| {
        let report = tool(
            "xorriso",
            &["-indev", &path(iso), "-report_el_torito", "plain"],
        );
        let mut entries: Vec<String> = report
            .lines()
            .filter(|l| l.starts_with("El Torito boot img :"))
            .map(|l| l.split_whitespace().nth(6).unwrap().to_owned())
            .collect();
        entries.sort();
        (entries, report)
    };
    let (bios, report) = catalog("hello.iso");
    assert_eq!(bios, ["BIOS"], "{report}");
    assert!(
        report.contains("El Torito img opts :   1  boot-info-table"),
        "{report}"
    );
    assert_eq!(catalog("hello-efi.iso").0, ["UEFI"]);
    assert_eq!(catalog("hello-hybrid.iso").0, ["BIOS", "UEFI"]);
    let files = tool(
        "xorriso",
        &["-indev", &path("hello.iso"), "-find", "/", "-type", "f"],
    );
    for file in [
        "/boot/kernel",
        "/boot/initrd.img",
        "/isolinux/isolinux.bin",
        "/isolinux/isolinux.cfg",
    ] {
        assert!(files.contains(&format!("'{file}'")), "{file} in:\n{files}");
    }
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn the_uki_has_its_sections() {
    let headers = tool("objdump", &["-h", &path("hello.efi")]);
    for section in [".osrel", ".cmdline", ".initrd", ".linux"] {
        assert!(headers.contains(section), "{section} in:\n{headers}");
    }
}

/// Copies `len` bytes at `offset` of `image` into a file of their own.
fn extract(image: &str, offset: u64, len: u64, to: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(image).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = vec![0; len as usize];
    file.read_exact(&mut bytes).unwrap();
    std::fs::write(to, bytes).unwrap();
}

/// The first partition's start and size in sectors, as sfdisk reads them.
fn first_partition(image: &str) -> (u64, u64, serde_json::Value) {
    let table: serde_json::Value =
        serde_json::from_str(&tool("sfdisk", &["--json", image])).unwrap();
    let partition = table["partitiontable"]["partitions"][0].clone();
    (
        partition["start"].as_u64().unwrap(),
        partition["size"].as_u64().unwrap(),
        partition,
    )
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn raw_efi_has_a_valid_gpt_and_an_esp_that_fsck_accepts() {
    let disk = path("hello-efi.img");
    assert!(tool("sgdisk", &["-v", &disk]).contains("No problems found"));
    let (start, size, partition) = first_partition(&disk);
    assert_eq!(start, 2048);
    assert_eq!(partition["type"], "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    let esp = built().join("esp.img");
    extract(&disk, start * 512, size * 512, &esp);
    let esp = esp.to_str().unwrap();
    tool("fsck.vfat", &["-n", esp]);
    let listing = tool("mdir", &["-i", esp, "-/", "-b", "::"]);
    for file in [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/boot/kernel",
        "::/boot/initrd.img",
        "::/boot/cmdline",
    ] {
        assert!(listing.contains(file), "{file} in:\n{listing}");
    }
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn raw_bios_has_an_active_fat_partition_with_grub_cfg() {
    let disk = path("hello-bios.img");
    let (start, size, partition) = first_partition(&disk);
    assert_eq!(start, 2048);
    assert_eq!(partition["bootable"], true);
    let fat = built().join("bios-part.img");
    extract(&disk, start * 512, size * 512, &fat);
    let fat = fat.to_str().unwrap();
    tool("fsck.vfat", &["-n", fat]);
    let config = tool("mtype", &["-i", fat, "::/boot/grub/grub.cfg"]);
    assert!(config.contains("linux /boot/kernel"), "{config}");
    assert!(config.contains("console=ttyS0"), "{config}");
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn the_efi_isos_esp_image_passes_fsck_and_holds_the_uki() {
    let esp = built().join("iso-esp.img");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            &path("hello-efi.iso"),
            "-extract",
            "/boot/efi.img",
            esp.to_str().unwrap(),
        ],
    );
    let esp = esp.to_str().unwrap();
    tool("fsck.vfat", &["-n", esp]);
    let listing = tool("mdir", &["-i", esp, "-/", "-b", "::"]);
    assert!(listing.contains("::/EFI/BOOT/BOOTX64.EFI"), "{listing}");
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn the_hybrid_iso_has_a_valid_gpt() {
    assert!(tool("sgdisk", &["-v", &path("hello-hybrid.iso")]).contains("No problems found"));
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn qemu_img_finds_the_containers_sound_and_equal_to_the_raw_disks() {
    for (file, format) in [
        ("hello.qcow2", "qcow2"),
        ("hello-efi.qcow2", "qcow2"),
        ("hello.vmdk", "vmdk"),
    ] {
        assert!(
            tool("qemu-img", &["check", "-f", format, &path(file)]).contains("No errors"),
            "{file}"
        );
    }
    for (raw, container, format) in [
        ("hello-bios.img", "hello.qcow2", "qcow2"),
        ("hello-efi.img", "hello-efi.qcow2", "qcow2"),
        ("hello-bios.img", "hello.vmdk", "vmdk"),
        ("hello-bios.img", "hello.vhd", "vpc"),
    ] {
        assert_same_disk(&path(raw), &path(container), format);
    }
}

/// Asserts that qemu reads `container` (as `format`) as exactly `raw`.
fn assert_same_disk(raw: &str, container: &str, format: &str) {
    let compared = tool(
        "qemu-img",
        &["compare", "-f", "raw", "-F", format, raw, container],
    );
    assert!(
        compared.contains("Images are identical"),
        "{container}: {compared}"
    );
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn dynamic_vhd_holds_the_same_disk_as_raw_bios() {
    let scratch = scratch();
    let out = scratch.dir.path().join("out");
    boot::build(
        scratch.dir.path(),
        &scratch.cache,
        &out,
        &["--boot-image", boot::BOOT_IMAGE, "-f", "dynamic-vhd"],
        &[],
    );
    let vhd = out.join("hello.vhd");
    assert_same_disk(&path("hello-bios.img"), vhd.to_str().unwrap(), "vpc");
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn without_a_boot_image_the_hosts_files_are_used_and_recorded() {
    let scratch = scratch();
    let (built, out) = scratch.build(&["-f", "uki"]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(String::from_utf8_lossy(&built.stderr).contains("no boot image named"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("hello.manifest.json")).unwrap()).unwrap();
    let stub = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    assert_eq!(
        manifest["host_files"],
        serde_json::json!([{"path": stub.to_str().unwrap(), "sha256": support::sha256_file(stub)}])
    );
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn a_boot_image_without_isolinux_is_an_error_naming_the_file_and_package() {
    let scratch = scratch();
    let (failed, out) = scratch.build(&[
        "--boot-image",
        "localhost/ossify-examples/hello:busybox",
        "-f",
        "iso-bios",
    ]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("isolinux.bin is not in boot image"),
        "{stderr}"
    );
    assert!(stderr.contains("Debian's isolinux package"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing is left behind: {left:?}");
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn size_sets_the_disk_size_and_a_too_small_one_says_what_is_needed() {
    let scratch = scratch();
    let out = scratch.dir.path().join("out");
    let args = |size| {
        [
            "--boot-image",
            boot::BOOT_IMAGE,
            "-f",
            "raw-efi",
            "--size",
            size,
        ]
    };
    let failed = boot::build_output(scratch.dir.path(), &scratch.cache, &out, &args("1M"), &[]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("--size 1048576 bytes is too small"),
        "{stderr}"
    );
    assert!(stderr.contains("MiB"), "{stderr}");
    // scripts/bench.sh measures 8G builds (its memory rows); 1G shows the same here.
    boot::build(scratch.dir.path(), &scratch.cache, &out, &args("1G"), &[]);
    let disk = out.join("hello-efi.img");
    let metadata = std::fs::metadata(&disk).unwrap();
    assert_eq!(metadata.len(), 1 << 30);
    use std::os::unix::fs::MetadataExt;
    assert!(
        metadata.blocks() * 512 < 256 << 20,
        "the free space is a hole"
    );
    assert!(tool("sgdisk", &["-v", disk.to_str().unwrap()]).contains("No problems found"));
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn vhd_and_dynamic_vhd_in_one_build_is_a_usage_error() {
    let scratch = scratch();
    let (failed, _) = scratch.build(&["-f", "vhd", "-f", "dynamic-vhd"]);
    assert_eq!(failed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("both write <name>.vhd"));
}

#[test]
#[ignore = "heavy: needs Debian packages and xorriso, mtools, gdisk, binutils, qemu-img (scripts/test.sh)"]
fn a_bootable_format_without_a_kernel_is_an_error() {
    let scratch = scratch();
    let config = scratch.dir.path().join("no-kernel.yml");
    std::fs::write(
        &config,
        "init:\n  - localhost/ossify-examples/init:busybox\n",
    )
    .unwrap();
    let out = scratch.dir.path().join("out");
    let failed = boot::build_output(
        scratch.dir.path(),
        &scratch.cache,
        &out,
        &["--boot-image", boot::BOOT_IMAGE, "-f", "uki"],
        &[&config],
    );
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("format uki boots a kernel, and the build has none"),
        "{stderr}"
    );
    assert!(!out.join("no-kernel.efi").exists());
}

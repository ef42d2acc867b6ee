//! The ISO 9660 writer, checked with xorriso (Debian package `xorriso`) and
//! sgdisk (`gdisk`): Rock Ridge and Joliet trees, contents, El Torito
//! catalog, boot info table, hybrid MBR and GPT, reproducibility.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::path::Path;

use ossify::write::iso9660::{ElTorito, Hybrid, IsoBuilder, IsoError, Metadata, Options};
use support::tool;

/// 2017-04-18T16:30:00Z, LinuxKit's SOURCE_DATE_EPOCH.
const EPOCH: u64 = 1_492_533_000;
const LONG_NAME: &str = "a-file-name-far-longer-than-eight-dot-three-characters-which-rock-ridge-keeps-whole-and-continues-past-the-directory-record-because-it-needs-many-bytes-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.txt";
/// A fake BIOS boot image with a recognisable body.
const BIOS_IMAGE_LEN: usize = 5000;
const EFI_IMAGE_LEN: usize = 3 << 20;

fn meta(mode: u32, uid: u32, gid: u32) -> Metadata {
    Metadata { mode, uid, gid }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(seed) % 251) as u8)
        .collect()
}

fn long_target() -> String {
    format!(
        "{}/{}",
        "../".repeat(150).trim_end_matches('/'),
        "x".repeat(300)
    )
}

/// A tree of every kind of entry, with boot images at /isolinux/isolinux.bin
/// and /efi.img.
fn sample(bios: &[u8], efi: &[u8], big: &[u8]) -> IsoBuilder<'static> {
    let (bios, efi, big) = (bios.to_vec(), efi.to_vec(), big.to_vec());
    let mut iso = IsoBuilder::new(meta(0o755, 0, 0));
    iso.dir("isolinux", meta(0o755, 0, 0)).unwrap();
    iso.file(
        "isolinux/isolinux.bin",
        meta(0o644, 0, 0),
        bios.len() as u64,
        std::io::Cursor::new(bios),
    )
    .unwrap();
    iso.file(
        "/efi.img",
        meta(0o600, 0, 0),
        efi.len() as u64,
        std::io::Cursor::new(efi),
    )
    .unwrap();
    iso.dir("boot", meta(0o700, 1000, 100)).unwrap();
    iso.dir("boot/Mixed Case Dir", meta(0o2775, 5, 6)).unwrap();
    iso.file(
        "boot/kernel",
        meta(0o4755, 0, 0),
        big.len() as u64,
        std::io::Cursor::new(big),
    )
    .unwrap();
    iso.file(
        "boot/Mixed Case Dir/empty",
        meta(0o640, 7, 8),
        0,
        std::io::empty(),
    )
    .unwrap();
    iso.file(
        &format!("boot/{LONG_NAME}"),
        meta(0o644, 1, 2),
        5,
        &b"hello"[..],
    )
    .unwrap();
    iso.symlink("boot/vmlinuz", meta(0o777, 0, 0), "kernel")
        .unwrap();
    iso.symlink("boot/far", meta(0o777, 3, 4), &long_target())
        .unwrap();
    iso.symlink("abs", meta(0o777, 0, 0), "/boot/./kernel")
        .unwrap();
    iso
}

fn boot_options() -> Options {
    Options {
        volume_id: "my-image.v1".to_owned(),
        timestamp: EPOCH,
        el_torito: Some(ElTorito {
            catalog: "isolinux/boot.cat".to_owned(),
            bios: Some("/isolinux/isolinux.bin".to_owned()),
            efi: Some("efi.img".to_owned()),
        }),
        hybrid: Some(Hybrid {
            mbr_code: Some(vec![0xEB; 432]),
            seed: b"seed".to_vec(),
        }),
    }
}

struct Images {
    bios: Vec<u8>,
    efi: Vec<u8>,
    big: Vec<u8>,
}

fn images() -> Images {
    Images {
        bios: pattern(BIOS_IMAGE_LEN, 7),
        efi: pattern(EFI_IMAGE_LEN, 13),
        big: pattern(3_000_001, 31),
    }
}

fn write_iso(images: &Images, options: &Options) -> Vec<u8> {
    let image = sample(&images.bios, &images.efi, &images.big)
        .layout(options)
        .unwrap();
    let size = image.size();
    let bytes = image.write(Vec::new()).unwrap();
    assert_eq!(
        bytes.len() as u64,
        size,
        "size() must predict the written length"
    );
    bytes
}

fn save(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("x.iso");
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// xorriso's `lsdl` lines for the sample tree, without sizes of
/// directories, which xorriso does not report from Rock Ridge.
#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn rock_ridge_lists_names_modes_owners_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let iso = save(dir.path(), &write_iso(&images(), &boot_options()));
    let listing = tool("xorriso", &["-indev", &iso, "-find", "/", "-exec", "lsdl"]);
    let far = long_target();
    for expected in [
        "drwxr-xr-x    1 0        0               0 Apr 18  2017 '/'".to_owned(),
        "lrwxrwxrwx    1 0        0               0 Apr 18  2017 '/abs' -> '/boot/./kernel'"
            .to_owned(),
        "drwx------    1 1000     100             0 Apr 18  2017 '/boot'".to_owned(),
        "drwxrwsr-x    1 5        6               0 Apr 18  2017 '/boot/Mixed Case Dir'".to_owned(),
        "-rw-r-----    1 7        8               0 Apr 18  2017 '/boot/Mixed Case Dir/empty'"
            .to_owned(),
        format!("-rw-r--r--    1 1        2               5 Apr 18  2017 '/boot/{LONG_NAME}'"),
        format!("lrwxrwxrwx    1 3        4               0 Apr 18  2017 '/boot/far' -> '{far}'"),
        "-rwsr-xr-x    1 0        0         3000001 Apr 18  2017 '/boot/kernel'".to_owned(),
        "lrwxrwxrwx    1 0        0               0 Apr 18  2017 '/boot/vmlinuz' -> 'kernel'"
            .to_owned(),
        "-rw-------    1 0        0         3145728 Apr 18  2017 '/efi.img'".to_owned(),
        // "e": xorriso marks the El Torito catalog
        "er--r--r--    1 0        0            2048 Apr 18  2017 '/isolinux/boot.cat'".to_owned(),
        "-rw-r--r--    1 0        0            5000 Apr 18  2017 '/isolinux/isolinux.bin'"
            .to_owned(),
    ] {
        assert!(
            listing.contains(&expected),
            "missing {expected:?} in\n{listing}"
        );
    }
}

#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn joliet_tree_has_the_names_without_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let iso = save(dir.path(), &write_iso(&images(), &boot_options()));
    let listing = tool(
        "xorriso",
        &[
            "-read_fs", "norock", "-indev", &iso, "-find", "/", "-exec", "lsdl",
        ],
    );
    println!("{listing}");
    assert!(
        listing.contains("'/boot/Mixed Case Dir/empty'"),
        "{listing}"
    );
    assert!(
        listing
            .contains("'/boot/a-file-name-far-longer-than-eight-dot-three-characters-which-roc'"),
        "{listing}"
    );
    assert!(!listing.contains("vmlinuz"), "{listing}");
}

#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn plain_iso9660_tree_has_8_3_names() {
    let dir = tempfile::tempdir().unwrap();
    let iso = save(dir.path(), &write_iso(&images(), &boot_options()));
    let listing = tool(
        "xorriso",
        &[
            "-read_fs",
            "ecma119",
            "-ecma119_map",
            "unmapped",
            "-indev",
            &iso,
            "-find",
            "/",
            "-exec",
            "lsdl",
        ],
    );
    println!("{listing}");
    for expected in [
        "'/BOOT/MIXED_CA/EMPTY.;1'",
        "'/ISOLINUX/ISOLINUX.BIN;1'",
        "'/EFI.IMG;1'",
        "'/BOOT/A_FILE_N.TXT;1'",
    ] {
        assert!(
            listing.contains(expected),
            "missing {expected} in\n{listing}"
        );
    }
}

#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn extracted_contents_equal_the_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let images = images();
    let iso = save(dir.path(), &write_iso(&images, &boot_options()));
    let out = dir.path().join("out");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            &iso,
            "-extract",
            "/",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(out.join("boot/kernel")).unwrap(), images.big);
    assert_eq!(std::fs::read(out.join("efi.img")).unwrap(), images.efi);
    assert_eq!(
        std::fs::read(out.join("boot").join(LONG_NAME)).unwrap(),
        b"hello"
    );
    assert_eq!(
        std::fs::read_link(out.join("boot/vmlinuz"))
            .unwrap()
            .to_str(),
        Some("kernel")
    );
    let bios = std::fs::read(out.join("isolinux/isolinux.bin")).unwrap();
    // All but the boot info table is the input.
    assert_eq!(bios[..8], images.bios[..8]);
    assert_eq!(bios[64..], images.bios[64..]);
}

/// The value of xorriso's report line starting with `key`, split in words.
fn report_line<'a>(report: &'a str, key: &str) -> Vec<&'a str> {
    let line = report
        .lines()
        .find(|line| line.starts_with(key))
        .unwrap_or_else(|| panic!("no {key:?} in\n{report}"));
    let words: Vec<&str> = line[key.len()..].split_whitespace().collect();
    match words.split_first() {
        Some((&":", rest)) => rest.to_vec(),
        _ => words,
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn el_torito_catalog_has_bios_and_efi_entries_and_boot_info_table() {
    let dir = tempfile::tempdir().unwrap();
    let images = images();
    let bytes = write_iso(&images, &boot_options());
    let iso = save(dir.path(), &bytes);
    let report = tool("xorriso", &["-indev", &iso, "-report_el_torito", "plain"]);
    assert_eq!(
        report_line(&report, "El Torito cat path"),
        ["/isolinux/boot.cat"]
    );
    let bios = report_line(&report, "El Torito boot img :   1");
    assert_eq!(bios[..6], ["BIOS", "y", "none", "0x0000", "0x00", "4"]);
    let efi = report_line(&report, "El Torito boot img :   2");
    assert_eq!(efi[..6], ["UEFI", "y", "none", "0x0000", "0x00", "6144"]);
    assert_eq!(
        report_line(&report, "El Torito img path :   1"),
        ["/isolinux/isolinux.bin"]
    );
    assert_eq!(
        report_line(&report, "El Torito img opts :   1"),
        ["boot-info-table"]
    );
    assert_eq!(
        report_line(&report, "El Torito img path :   2"),
        ["/efi.img"]
    );

    let lba: usize = bios[6].parse().unwrap();
    let image = &bytes[lba * 2048..lba * 2048 + BIOS_IMAGE_LEN];
    let checksum = images.bios[64..]
        .chunks(4)
        .map(|word| {
            let mut padded = [0; 4];
            padded[..word.len()].copy_from_slice(word);
            u32::from_le_bytes(padded)
        })
        .fold(0u32, u32::wrapping_add);
    assert_eq!(u32_at(image, 8), 16, "primary volume descriptor");
    assert_eq!(u32_at(image, 12), lba as u32);
    assert_eq!(u32_at(image, 16), BIOS_IMAGE_LEN as u32);
    assert_eq!(u32_at(image, 20), checksum);
    assert_eq!(image[24..64], [0; 40]);
}

#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn efi_only_catalog_has_one_uefi_entry_and_large_images_count_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut images = images();
    images.efi = pattern(33 << 20, 5);
    let mut options = boot_options();
    options.el_torito.as_mut().unwrap().bios = None;
    options.hybrid.as_mut().unwrap().mbr_code = None;
    let iso = save(dir.path(), &write_iso(&images, &options));
    let report = tool("xorriso", &["-indev", &iso, "-report_el_torito", "plain"]);
    let efi = report_line(&report, "El Torito boot img :   1");
    assert_eq!(efi[..6], ["UEFI", "y", "none", "0x0000", "0x00", "0"]);
    assert!(!report.contains("El Torito boot img :   2"), "{report}");
}

#[test]
#[ignore = "heavy: needs xorriso and gdisk (scripts/test.sh)"]
fn hybrid_gpt_passes_sgdisk_and_maps_the_efi_image() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = write_iso(&images(), &boot_options());
    assert_eq!(
        bytes.len() % (1 << 20),
        0,
        "hybrid images end on a whole MiB"
    );
    assert_eq!(bytes[..432], [0xEB; 432]);
    let iso = save(dir.path(), &bytes);
    let report = tool("sgdisk", &["-v", &iso]);
    assert!(report.contains("No problems found"), "{report}");
    let report = tool("xorriso", &["-indev", &iso, "-report_system_area", "plain"]);
    assert_eq!(
        report_line(&report, "System area summary"),
        ["MBR", "protective-msdos-label", "cyl-align-on", "GPT"]
    );
    assert_eq!(
        report_line(&report, "GPT partition path :   1"),
        ["/efi.img"]
    );
    assert_eq!(
        report_line(&report, "GPT type GUID      :   1"),
        ["28732ac11ff8d211ba4b00a0c93ec93b"]
    );
    let efi_lba: u32 = report_line(&report, "GPT start and size :   1")[0]
        .parse()
        .unwrap();
    let catalog = tool("xorriso", &["-indev", &iso, "-report_el_torito", "plain"]);
    let efi_entry = report_line(&catalog, "El Torito boot img :   2");
    let boot_lba: u32 = report_line(&catalog, "El Torito boot img :   1")[6]
        .parse()
        .unwrap();
    assert_eq!(efi_lba, efi_entry[6].parse::<u32>().unwrap() * 4);
    assert_eq!(
        u32_at(&bytes, 0x1B0),
        boot_lba * 4,
        "isohybrid's boot file sector"
    );
}

#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn bios_only_hybrid_has_one_active_mbr_partition_over_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = boot_options();
    options.el_torito.as_mut().unwrap().efi = None;
    let bytes = write_iso(&images(), &options);
    let iso = save(dir.path(), &bytes);
    let report = tool("xorriso", &["-indev", &iso, "-report_system_area", "plain"]);
    let sectors = (bytes.len() / 512).to_string();
    assert_eq!(
        report_line(&report, "MBR partition      :   1"),
        ["0x80", "0x17", "0", &sectors]
    );
    assert!(!report.contains("GPT"), "{report}");
}

#[test]
fn same_inputs_give_same_bytes_and_the_seed_changes_only_ids() {
    let images = images();
    let first = write_iso(&images, &boot_options());
    assert_eq!(first, write_iso(&images, &boot_options()));
    let mut options = boot_options();
    options.hybrid.as_mut().unwrap().seed = b"other".to_vec();
    let other = write_iso(&images, &options);
    assert_eq!(first.len(), other.len());
    assert_ne!(first[..32768], other[..32768]);
    assert_eq!(
        first[32768..first.len() - 32768],
        other[32768..other.len() - 32768]
    );
}

#[test]
fn plain_image_without_boot_has_no_system_area() {
    let images = images();
    let options = Options {
        volume_id: "plain".to_owned(),
        timestamp: EPOCH,
        el_torito: None,
        hybrid: None,
    };
    let bytes = write_iso(&images, &options);
    assert_eq!(bytes[..32768], [0; 32768]);
    assert_eq!(bytes.len() % 2048, 0);
}

#[test]
fn bad_inputs_are_refused_with_reasons() {
    let mut iso = IsoBuilder::new(meta(0o755, 0, 0));
    assert!(matches!(
        iso.dir("a/b", meta(0o755, 0, 0)),
        Err(IsoError::NoParent { .. })
    ));
    iso.dir("a", meta(0o755, 0, 0)).unwrap();
    assert!(matches!(
        iso.dir("/a/", meta(0o755, 0, 0)),
        Err(IsoError::Duplicate { .. })
    ));
    assert!(matches!(
        iso.dir("a/../b", meta(0o755, 0, 0)),
        Err(IsoError::BadPath { .. })
    ));
    iso.file("a/short", meta(0o644, 0, 0), 10, &b"12345"[..])
        .unwrap();
    let options = Options {
        volume_id: "x".to_owned(),
        timestamp: EPOCH,
        el_torito: Some(ElTorito {
            catalog: "boot.cat".to_owned(),
            bios: Some("missing.bin".to_owned()),
            efi: None,
        }),
        hybrid: None,
    };
    assert!(matches!(
        iso.layout(&options),
        Err(IsoError::NoBootImage { .. })
    ));

    let mut iso = IsoBuilder::new(meta(0o755, 0, 0));
    iso.file("short", meta(0o644, 0, 0), 10, &b"12345"[..])
        .unwrap();
    let options = Options {
        volume_id: "x".to_owned(),
        timestamp: EPOCH,
        el_torito: None,
        hybrid: None,
    };
    let error = iso.layout(&options).unwrap().write(Vec::new()).unwrap_err();
    assert!(
        matches!(
            error,
            IsoError::LengthMismatch {
                declared: 10,
                actual: 5,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn bios_images_too_short_for_the_boot_info_table_are_refused() {
    let mut iso = IsoBuilder::new(meta(0o755, 0, 0));
    iso.file("tiny.bin", meta(0o644, 0, 0), 10, &[0u8; 10][..])
        .unwrap();
    let options = Options {
        volume_id: "x".to_owned(),
        timestamp: EPOCH,
        el_torito: Some(ElTorito {
            catalog: "boot.cat".to_owned(),
            bios: Some("tiny.bin".to_owned()),
            efi: None,
        }),
        hybrid: None,
    };
    let error = iso.layout(&options).err().unwrap();
    assert!(
        matches!(error, IsoError::BootImageTooShort { len: 10, .. }),
        "{error}"
    );
}

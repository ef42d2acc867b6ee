//! The tar and cpio writers, checked by reading their output back with the
//! `tar` crate, GNU tar and GNU cpio (Debian packages `tar` and `cpio`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ossify::tree::{Device, Kind, Metadata, Tree};
use ossify::write;

/// SOURCE_DATE_EPOCH for these tests: 2017-04-18T16:30:00Z, LinuxKit's.
const EPOCH: u64 = 1_492_533_000;
/// An mtime before the epoch, which writers keep.
const OLD: u64 = 1_000_000_000;
/// An mtime after the epoch, which writers clamp to it.
const FUTURE: u64 = EPOCH + 1_000;
const LONG_DIR: &str = "deep/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// Longer than a ustar name, but splits into ustar prefix and name.
const SPLIT_PATH: &str = "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss/split";
const LONG_TARGET: &str = "../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../bin/busybox";

fn metadata(mode: u32, uid: u32, gid: u32, mtime: u64) -> Metadata {
    Metadata {
        mode,
        uid,
        gid,
        mtime,
        xattrs: BTreeMap::new(),
    }
}

fn big_contents() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 253) as u8).collect()
}

/// A tree with every kind of node; devices only when `with_devices`, as
/// extracting them needs privileges.
fn sample_tree(with_devices: bool) -> Tree {
    let mut tree = Tree::new(EPOCH);
    let mut busybox_metadata = metadata(0o4755, 0, 0, FUTURE);
    busybox_metadata
        .xattrs
        .insert("security.capability".into(), b"\x01\x00\x00\x02".to_vec());
    let busybox = tree.store_bytes(b"busybox binary").unwrap();
    let busybox = tree
        .insert("bin/busybox", Kind::File(busybox), busybox_metadata)
        .unwrap();
    tree.hard_link("bin/sh", busybox).unwrap();
    tree.hard_link("bin/ls", busybox).unwrap();
    let motd = tree.store_bytes(b"hello\n").unwrap();
    tree.insert(
        "etc/motd",
        Kind::File(motd),
        metadata(0o640, 1000, 100, OLD),
    )
    .unwrap();
    tree.insert("tmp", Kind::directory(), metadata(0o1777, 0, 0, OLD))
        .unwrap();
    tree.insert(
        "lib",
        Kind::Symlink(b"usr/lib".to_vec()),
        metadata(0o777, 0, 0, OLD),
    )
    .unwrap();
    let big = big_contents();
    let big = tree.store(&big[..], big.len() as u64).unwrap();
    tree.insert("big", Kind::File(big), metadata(0o644, 0, 0, OLD))
        .unwrap();
    let long = tree.store_bytes(b"long").unwrap();
    tree.insert(
        format!("{LONG_DIR}/file"),
        Kind::File(long),
        metadata(0o600, 0, 0, OLD),
    )
    .unwrap();
    let split = tree.store_bytes(b"split").unwrap();
    tree.insert(SPLIT_PATH, Kind::File(split), metadata(0o600, 0, 0, OLD))
        .unwrap();
    tree.insert(
        format!("{LONG_DIR}/link"),
        Kind::Symlink(LONG_TARGET.into()),
        metadata(0o777, 0, 0, OLD),
    )
    .unwrap();
    if with_devices {
        let null = Kind::CharDevice(Device { major: 1, minor: 3 });
        tree.insert("dev/null", null, metadata(0o666, 0, 0, OLD))
            .unwrap();
        let sda = Kind::BlockDevice(Device { major: 8, minor: 1 });
        tree.insert("dev/sda1", sda, metadata(0o660, 0, 6, OLD))
            .unwrap();
        tree.insert("run/initctl", Kind::Fifo, metadata(0o600, 0, 0, OLD))
            .unwrap();
    }
    tree
}

fn tar_bytes(tree: &Tree, epoch: u64) -> Vec<u8> {
    write::tar::write(tree, Vec::new(), epoch, &[]).unwrap()
}

fn cpio_bytes(tree: &Tree, epoch: u64) -> Vec<u8> {
    write::cpio::write(tree, Vec::new(), epoch).unwrap()
}

/// Runs `program` with `stdin`, in `dir`, in UTC; returns stdout lines.
fn run(program: &str, args: &[&str], stdin: &[u8], dir: &Path) -> Vec<String> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} (apt-get install {program}): {error}")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The listed line for `name` (the last field, or what precedes ` -> ` or
/// ` link to `), split into whitespace-separated fields.
fn listed<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    let line = lines
        .iter()
        .find(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let named = match fields.iter().position(|f| *f == "->" || *f == "link") {
                Some(arrow) => fields[arrow - 1],
                None => fields[fields.len() - 1],
            };
            named == name
        })
        .unwrap_or_else(|| panic!("`{name}` is not listed in {lines:#?}"));
    line.split_whitespace().collect()
}

#[test]
fn tar_round_trips_through_the_tar_crate() {
    let tree = sample_tree(true);
    let bytes = tar_bytes(&tree, EPOCH);
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let header = entry.header().clone();
        let link = entry
            .link_name_bytes()
            .map(|link| String::from_utf8(link.into_owned()).unwrap());
        let xattrs: Vec<(String, Vec<u8>)> = entry
            .pax_extensions()
            .unwrap()
            .map(|extensions| {
                extensions
                    .map(Result::unwrap)
                    .filter_map(|e| {
                        let key = e.key().unwrap().strip_prefix("SCHILY.xattr.")?;
                        Some((key.to_owned(), e.value_bytes().to_vec()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        let device = (
            header.device_major().unwrap(),
            header.device_minor().unwrap(),
        );
        let summary = (
            header.entry_type(),
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
            header.mtime().unwrap(),
        );
        match path.as_str() {
            "bin/busybox" => {
                assert_eq!(summary, (tar::EntryType::Regular, 0o4755, 0, 0, EPOCH));
                assert_eq!(contents, b"busybox binary");
                assert_eq!(
                    xattrs,
                    [("security.capability".into(), b"\x01\x00\x00\x02".to_vec())]
                );
            }
            "bin/ls" | "bin/sh" => {
                assert_eq!(header.entry_type(), tar::EntryType::Link);
                assert_eq!(link.as_deref(), Some("bin/busybox"));
                assert!(contents.is_empty());
            }
            "etc/motd" => {
                assert_eq!(summary, (tar::EntryType::Regular, 0o640, 1000, 100, OLD));
                assert_eq!(contents, b"hello\n");
            }
            "tmp/" => assert_eq!(summary, (tar::EntryType::Directory, 0o1777, 0, 0, OLD)),
            "lib" => assert_eq!(link.as_deref(), Some("usr/lib")),
            "big" => assert_eq!(contents, big_contents()),
            "dev/null" => {
                assert_eq!(summary, (tar::EntryType::Char, 0o666, 0, 0, OLD));
                assert_eq!(device, (Some(1), Some(3)));
            }
            "dev/sda1" => {
                assert_eq!(header.entry_type(), tar::EntryType::Block);
                assert_eq!(device, (Some(8), Some(1)));
            }
            "run/initctl" => assert_eq!(header.entry_type(), tar::EntryType::Fifo),
            SPLIT_PATH => {
                assert_eq!(contents, b"split");
                assert!(xattrs.is_empty() && entry.header().as_ustar().unwrap().prefix[0] != 0);
            }
            _ if path == format!("{LONG_DIR}/file") => assert_eq!(contents, b"long"),
            _ if path == format!("{LONG_DIR}/link") => {
                assert_eq!(link.as_deref(), Some(LONG_TARGET))
            }
            _ => {}
        }
        if !matches!(
            header.entry_type(),
            tar::EntryType::Char | tar::EntryType::Block
        ) {
            assert_eq!(device, (Some(0), Some(0)), "device numbers of `{path}`");
        }
        paths.push(path);
    }
    let expected: Vec<String> = tree
        .walk()
        .map(|entry| {
            let mut path = String::from_utf8(entry.path).unwrap();
            if let Kind::Directory(_) = entry.node.kind {
                path.push('/');
            }
            path
        })
        .collect();
    assert_eq!(paths, expected);
}

#[test]
#[ignore = "heavy: needs GNU tar (scripts/test.sh)"]
fn gnu_tar_lists_owners_modes_links_and_devices() {
    let tree = sample_tree(true);
    let dir = tempfile::tempdir().unwrap();
    let lines = run(
        "tar",
        &["-tv", "--numeric-owner", "-f", "-"],
        &tar_bytes(&tree, EPOCH),
        dir.path(),
    );
    let cases: &[(&str, &[&str])] = &[
        (
            "bin/busybox",
            &["-rwsr-xr-x", "0/0", "14", "2017-04-18", "16:30"],
        ),
        ("bin/ls", &["hrwsr-xr-x", "0/0", "0"]),
        ("etc/motd", &["-rw-r-----", "1000/100", "6", "2001-09-09"]),
        ("tmp/", &["drwxrwxrwt", "0/0"]),
        ("lib", &["lrwxrwxrwx", "0/0", "0"]),
        ("dev/null", &["crw-rw-rw-", "0/0", "1,3"]),
        ("dev/sda1", &["brw-rw----", "0/6", "8,1"]),
        ("run/initctl", &["prw-------", "0/0"]),
    ];
    for (name, prefix) in cases {
        let fields = listed(&lines, name);
        assert_eq!(&fields[..prefix.len()], *prefix, "{name}");
    }
    assert!(listed(&lines, "bin/ls").ends_with(&["link", "to", "bin/busybox"]));
    assert!(listed(&lines, "lib").ends_with(&["->", "usr/lib"]));
    assert_eq!(listed(&lines, SPLIT_PATH)[0], "-rw-------");
    let long_link = format!("{LONG_DIR}/link");
    assert_eq!(listed(&lines, &long_link).last(), Some(&LONG_TARGET));
}

#[test]
#[ignore = "heavy: needs GNU cpio (scripts/test.sh)"]
fn gnu_cpio_lists_owners_modes_links_and_devices() {
    let tree = sample_tree(true);
    let dir = tempfile::tempdir().unwrap();
    let lines = run(
        "cpio",
        &["-t", "-v", "-n", "--quiet"],
        &cpio_bytes(&tree, EPOCH),
        dir.path(),
    );
    let cases: &[(&str, &[&str])] = &[
        // newc keeps a hard-linked node's data on its last name only
        (
            "bin/busybox",
            &["-rwsr-xr-x", "3", "0", "0", "0", "Apr", "18", "2017"],
        ),
        ("bin/ls", &["-rwsr-xr-x", "3", "0", "0", "0"]),
        ("bin/sh", &["-rwsr-xr-x", "3", "0", "0", "14"]),
        (
            "etc/motd",
            &["-rw-r-----", "1", "1000", "100", "6", "Sep", "9", "2001"],
        ),
        ("tmp", &["drwxrwxrwt", "2", "0", "0"]),
        ("bin", &["drwxr-xr-x", "2", "0", "0"]),
        ("lib", &["lrwxrwxrwx", "1", "0", "0", "7"]),
        ("dev/null", &["crw-rw-rw-", "1", "0", "0", "1,", "3"]),
        ("dev/sda1", &["brw-rw----", "1", "0", "6", "8,", "1"]),
        ("run/initctl", &["prw-------", "1", "0", "0"]),
        ("big", &["-rw-r--r--", "1", "0", "0", "200000"]),
    ];
    for (name, prefix) in cases {
        let fields = listed(&lines, name);
        assert_eq!(&fields[..prefix.len()], *prefix, "{name}");
    }
    assert_eq!(lines.len(), tree.walk().count());
}

#[test]
#[ignore = "heavy: needs GNU cpio (scripts/test.sh)"]
fn gnu_cpio_extracts_contents_and_hard_links() {
    let tree = sample_tree(false);
    let dir = tempfile::tempdir().unwrap();
    run(
        "cpio",
        &["-i", "-d", "-m", "--no-absolute-filenames", "--quiet"],
        &cpio_bytes(&tree, EPOCH),
        dir.path(),
    );
    let root = dir.path();
    let busybox = std::fs::symlink_metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(busybox.nlink(), 3);
    for link in ["bin/sh", "bin/ls"] {
        assert_eq!(
            std::fs::metadata(root.join(link)).unwrap().ino(),
            busybox.ino(),
            "{link}"
        );
    }
    assert_eq!(
        std::fs::read(root.join("bin/sh")).unwrap(),
        b"busybox binary"
    );
    assert_eq!(std::fs::read(root.join("big")).unwrap(), big_contents());
    assert_eq!(
        std::fs::read(root.join(LONG_DIR).join("file")).unwrap(),
        b"long"
    );
    assert_eq!(
        std::fs::read_link(root.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert_eq!(busybox.mode() & 0o7777, 0o4755);
    assert_eq!(
        std::fs::metadata(root.join("etc/motd")).unwrap().mtime() as u64,
        OLD
    );
}

#[test]
fn writes_are_reproducible_and_follow_the_epoch() {
    let tree = sample_tree(true);
    let gzip_cpio = |epoch| {
        let encoder = write::gzip::encoder(Vec::new());
        write::cpio::write(&tree, encoder, epoch)
            .unwrap()
            .finish()
            .unwrap()
    };
    type Writer<'a> = Box<dyn Fn(u64) -> Vec<u8> + 'a>;
    let writers: [(&str, Writer); 3] = [
        ("tar", Box::new(|epoch| tar_bytes(&tree, epoch))),
        ("cpio", Box::new(|epoch| cpio_bytes(&tree, epoch))),
        ("gzip cpio", Box::new(gzip_cpio)),
    ];
    for (name, write) in &writers {
        let first = write(EPOCH);
        assert_eq!(first, write(EPOCH), "{name}: two writes differ");
        assert_ne!(first, write(EPOCH + 1), "{name}: the epoch changed nothing");
    }
    let rebuilt = sample_tree(true);
    assert_eq!(tar_bytes(&rebuilt, EPOCH), tar_bytes(&tree, EPOCH));
    assert_eq!(cpio_bytes(&rebuilt, EPOCH), cpio_bytes(&tree, EPOCH));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzip_cpio(EPOCH)[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, cpio_bytes(&tree, EPOCH));
}

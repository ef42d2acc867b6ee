//! The EROFS writer, checked with erofs-utils 1.5 (Debian package
//! `erofs-utils`): `fsck.erofs` must accept every corpus image,
//! `dump.erofs` must show every entry as `listing()` has it, and
//! `fsck.erofs --extract` must give back contents, symlink targets and
//! permissions. Nothing here needs root: devices are never extracted.
//! Each check runs on the uncompressed and the LZ4-compressed layout.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::fs;
use std::io::{Cursor, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use ossify::tree::{Kind, Tree};
use ossify::write::erofs::{Compression, Options, write};
use support::trees::{EPOCH, Listed, corpus, listing};

const INSTALL_HINT: &str =
    "install erofs-utils (apt-get install erofs-utils; scripts/test.sh does)";

const COMPRESSIONS: [Compression; 2] = [Compression::None, Compression::Lz4];

fn image(tree: &Tree, epoch: u64) -> Vec<u8> {
    image_with(tree, epoch, Compression::None)
}

fn image_with(tree: &Tree, epoch: u64, compression: Compression) -> Vec<u8> {
    let options = Options {
        source_date_epoch: epoch,
        compression,
    };
    write(tree, Cursor::new(Vec::new()), &options)
        .expect("the tree fits EROFS")
        .into_inner()
}

/// Runs an erofs-utils tool, dates in UTC; its output, or `None` if it failed.
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program} ({error}); {INSTALL_HINT}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn fsck(image: &Path, extra: &[&str]) {
    let image = image.to_str().unwrap();
    let args: Vec<&str> = extra.iter().copied().chain([image]).collect();
    let (ok, text) = run("fsck.erofs", &args);
    assert!(ok, "fsck.erofs {args:?} rejects the image:\n{text}");
}

/// What `dump.erofs --path` shows of one inode.
#[derive(Debug, PartialEq, Eq)]
struct Dumped {
    kind: char,
    /// Permission bits as dump.erofs 1.5 shows them: without suid, sgid
    /// and sticky, which `--extract` checks instead.
    mode: u32,
    uid: u32,
    gid: u32,
    size: Option<u64>,
    nlink: u32,
    mtime: u64,
    has_xattrs: bool,
}

impl Dumped {
    fn expected(listed: &Listed) -> Dumped {
        Dumped {
            kind: listed.kind,
            mode: listed.mode & 0o777,
            uid: listed.uid,
            gid: listed.gid,
            size: (listed.kind != 'd').then_some(listed.size),
            nlink: listed.nlink,
            mtime: listed.mtime,
            has_xattrs: !listed.xattrs.is_empty(),
        }
    }

    fn parse(text: &str) -> Dumped {
        let number = |label: &str| -> u64 {
            let at = text
                .find(label)
                .unwrap_or_else(|| panic!("no {label} in:\n{text}"));
            let digits: String = text[at + label.len()..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().unwrap()
        };
        let line_after = |label: &str| -> &str {
            let at = text
                .find(label)
                .unwrap_or_else(|| panic!("no {label} in:\n{text}"));
            text[at + label.len()..].lines().next().unwrap().trim()
        };
        let on_disk = line_after("On-disk size:");
        let type_name = on_disk.split_once(' ').unwrap().1.trim();
        let kind = match type_name {
            "regular file" => '-',
            "directory" => 'd',
            "symlink file" => 'l',
            "char dev" => 'c',
            "block dev" => 'b',
            "FIFO file" => 'p',
            "SOCK file" => 's',
            other => panic!("unknown type {other:?} in:\n{text}"),
        };
        let access = line_after("Access:");
        let mode = u32::from_str_radix(access.split('/').next().unwrap(), 8).unwrap();
        Dumped {
            kind,
            mode,
            uid: number("Uid:") as u32,
            gid: number("Gid:") as u32,
            size: (kind != 'd').then(|| number("Size:")),
            nlink: number("Links:") as u32,
            mtime: parse_utc(line_after("Timestamp:")),
            has_xattrs: number("Xattr size:") > 0,
        }
    }
}

/// Seconds since the epoch of `YYYY-MM-DD HH:MM:SS[.fraction]` in UTC.
fn parse_utc(text: &str) -> u64 {
    let (date, time) = text.split_once(' ').unwrap();
    let date: Vec<i64> = date.split('-').map(|part| part.parse().unwrap()).collect();
    let time: Vec<i64> = time
        .split('.')
        .next()
        .unwrap()
        .split(':')
        .map(|part| part.parse().unwrap())
        .collect();
    // Days from civil date (proleptic Gregorian), after Howard Hinnant.
    let (year, month, day) = (date[0] - i64::from(date[1] <= 2), date[1], date[2]);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days * 86_400 + time[0] * 3600 + time[1] * 60 + time[2]) as u64
}

/// Every entry of `listing` as dump.erofs shows it.
fn assert_dump_matches(image: &Path, listing: &[Listed], name: &str) {
    let image = image.to_str().unwrap();
    let mismatches: Vec<String> = std::thread::scope(|scope| {
        let halves: Vec<_> = listing
            .chunks(listing.len().div_ceil(2).max(1))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|listed| {
                            let path = format!("--path=/{}", listed.path);
                            let (ok, text) = run("dump.erofs", &[&path, image]);
                            assert!(ok, "dump.erofs {path} failed:\n{text}");
                            let dumped = Dumped::parse(&text);
                            let expected = Dumped::expected(listed);
                            (dumped != expected)
                                .then(|| format!("/{}: {dumped:?} != {expected:?}", listed.path))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves
            .into_iter()
            .flat_map(|half| half.join().unwrap())
            .collect()
    });
    assert!(
        mismatches.is_empty(),
        "{name}: dump.erofs differs from the listing:\n{}",
        mismatches.join("\n")
    );
}

/// Extracts the image as an ordinary user would and compares types,
/// permissions (suid, sgid, sticky included), sizes, mtimes, contents
/// and symlink targets.
fn assert_extract_matches(image: &Path, tree: &Tree, listing: &[Listed], dir: &Path) {
    let out = dir.join("extracted");
    let extract = format!("--extract={}", out.display());
    fsck(
        image,
        &[&extract, "--no-preserve-owner", "--preserve-perms"],
    );
    for listed in listing {
        let path = out.join(&listed.path);
        let shown = format!("/{}", listed.path);
        let metadata = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let file_type = metadata.file_type();
        let kind = match () {
            () if file_type.is_dir() => 'd',
            () if file_type.is_file() => '-',
            () if file_type.is_symlink() => 'l',
            () => {
                use std::os::unix::fs::FileTypeExt;
                if file_type.is_fifo() {
                    'p'
                } else if file_type.is_socket() {
                    's'
                } else {
                    '?'
                }
            }
        };
        assert_eq!(kind, listed.kind, "{shown}: type");
        if kind != 'l' {
            let mode = metadata.permissions().mode() & 0o7777;
            assert_eq!(mode, listed.mode, "{shown}: permissions {mode:o}");
        }
        assert_eq!(metadata.mtime() as u64, listed.mtime, "{shown}: mtime");
        match kind {
            '-' => {
                let Kind::File(blob) = &tree.node(tree.lookup(&listed.path).unwrap()).kind else {
                    panic!("{shown} is a file in the tree");
                };
                let mut expected = Vec::new();
                tree.contents(blob).read_to_end(&mut expected).unwrap();
                // fsck.erofs before erofs-utils 1.8 drops holes when
                // extracting (its fix: "fsck: ... chunk-based files with
                // holes"), so only files without zero blocks compare here;
                // the unit tests read holes back.
                if !expected
                    .chunks(4096)
                    .any(|block| block.iter().all(|&b| b == 0))
                {
                    assert!(fs::read(&path).unwrap() == expected, "{shown}: contents");
                }
            }
            'l' => {
                let target = fs::read_link(&path).unwrap();
                assert_eq!(
                    target.to_str(),
                    listed.target.as_deref(),
                    "{shown}: symlink target"
                );
            }
            _ => {}
        }
    }
}

/// A copy of `tree` without device nodes, which only root may extract.
fn without_devices(mut tree: Tree) -> Tree {
    let devices: Vec<Vec<u8>> = tree
        .walk()
        .filter(|entry| matches!(entry.node.kind, Kind::CharDevice(_) | Kind::BlockDevice(_)))
        .map(|entry| entry.path)
        .collect();
    for path in devices {
        tree.remove(&path);
    }
    tree
}

#[test]
#[ignore = "heavy: needs erofs-utils (fsck.erofs, dump.erofs)"]
fn every_corpus_tree_passes_fsck_and_dumps_as_listed() {
    for (name, tree) in corpus() {
        for compression in COMPRESSIONS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("{name}.erofs"));
            fs::write(&path, image_with(&tree, EPOCH, compression)).unwrap();
            fsck(&path, &[]);
            let shown = format!("{name} ({compression})");
            assert_dump_matches(&path, &listing(&tree, EPOCH), &shown);
        }
    }
}

#[test]
#[ignore = "heavy: needs erofs-utils (fsck.erofs)"]
fn lz4_compresses_the_compressible_files() {
    let (_, tree) = corpus()
        .into_iter()
        .find(|(name, _)| *name == "mixed")
        .expect("the corpus has a mixed tree");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.erofs");
    let compressed = image_with(&tree, EPOCH, Compression::Lz4);
    let plain = image(&tree, EPOCH);
    assert!(
        compressed.len() * 10 < plain.len() * 7,
        "{} bytes compressed, {} not",
        compressed.len(),
        plain.len()
    );
    fs::write(&path, &compressed).unwrap();
    fsck(&path, &[]);
    let (ok, text) = run("dump.erofs", &["-S", path.to_str().unwrap()]);
    assert!(ok, "dump.erofs -S failed:\n{text}");
    // The 50 text files of 128 KiB; the noise and small files stay as
    // they are.
    let compressed_files = text
        .lines()
        .find_map(|line| line.strip_prefix("Filesystem compressed files:"))
        .unwrap_or_else(|| panic!("no compressed file count in:\n{text}"));
    assert_eq!(compressed_files.trim(), "50", "{text}");
}

#[test]
#[ignore = "heavy: needs erofs-utils (fsck.erofs)"]
fn every_corpus_tree_extracts_as_listed() {
    for (name, tree) in corpus() {
        // 5 GiB of zeros, which fsck.erofs 1.5 extracts without holes.
        if name == "sparse" {
            continue;
        }
        let tree = without_devices(tree);
        for compression in COMPRESSIONS {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("{name}.erofs"));
            fs::write(&path, image_with(&tree, EPOCH, compression)).unwrap();
            assert_extract_matches(&path, &tree, &listing(&tree, EPOCH), dir.path());
        }
    }
}

#[test]
#[ignore = "heavy: needs erofs-utils (fsck.erofs)"]
fn the_sparse_file_makes_a_small_image() {
    let (_, tree) = corpus()
        .into_iter()
        .find(|(name, _)| *name == "sparse")
        .expect("the corpus has a sparse tree");
    for compression in COMPRESSIONS {
        let bytes = image_with(&tree, EPOCH, compression);
        assert!(
            bytes.len() < 4 << 20,
            "{compression}: {} bytes for 5 GiB of holes",
            bytes.len()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.erofs");
        fs::write(&path, &bytes).unwrap();
        // fsck.erofs reads every file through its holes.
        fsck(&path, &[]);
    }
}

#[test]
fn the_same_tree_gives_the_same_bytes_and_another_epoch_others() {
    for (name, tree) in corpus() {
        if name == "sparse" {
            continue;
        }
        let first = image(&tree, EPOCH);
        assert!(first == image(&tree, EPOCH), "{name}: same bytes twice");
        assert!(
            first != image(&tree, EPOCH + 1),
            "{name}: the epoch matters"
        );
    }
}

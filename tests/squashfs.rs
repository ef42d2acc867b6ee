//! The squashfs writer checked with unsquashfs (Debian package
//! `squashfs-tools`, 4.5.1): every corpus tree read back through `-pf` (a
//! pseudo file: each path's type, mode, owners, mtime, size, device number,
//! symlink target, hard links, and every file's contents) and `-lln`, the
//! superblock through `-stat`, xattrs by extracting with them; plus
//! reproducibility.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::{Command, Stdio};

use ossify::tree::{Kind, Tree};
use ossify::write::squashfs::{self, BlockSize, Compression, Options};
use support::trees::{EPOCH, Listed, SPARSE_LEN, corpus, listing, sample};

const INSTALL: &str =
    "unsquashfs not found; install squashfs-tools (apt-get install squashfs-tools)";
/// What `-pf` puts between the definitions and the file data.
const DATA_MARK: &[u8] = b"\n#\n# START OF DATA - DO NOT MODIFY\n#\n";

fn options(compression: Compression) -> Options {
    Options {
        source_date_epoch: EPOCH,
        compression,
        ..Options::default()
    }
}

fn image(tree: &Tree, options: &Options) -> Vec<u8> {
    squashfs::write(tree, Cursor::new(Vec::new()), options)
        .expect("write squashfs")
        .into_inner()
}

/// Runs unsquashfs, asserting it succeeds; returns its stdout.
fn unsquashfs(args: &[&str]) -> Vec<u8> {
    let output = Command::new("unsquashfs")
        .args(args)
        .output()
        .expect(INSTALL);
    assert!(
        output.status.success(),
        "unsquashfs {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// How unsquashfs 4.5.1 prints a device number: it splits the stored
/// (Linux `new_encode_dev`) number at bit 8 rather than decoding it, so
/// minors above 255 show in the major. mksquashfs images show the same.
fn shown_rdev((major, minor): (u32, u32)) -> (u32, u32) {
    let stored = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
    (stored >> 8, stored & 0xff)
}

/// An entry as `-pf` defines it, with the contents of files.
#[derive(Debug, PartialEq, Eq)]
struct Defined {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
    target: Option<String>,
    rdev: Option<(u32, u32)>,
    contents: Option<Vec<u8>>,
}

/// Parses a `-pf` pseudo file: each path (`""` for the root) with its
/// definition, and each path's number of names (a hard link is an `L` line
/// naming the path first met).
fn pseudo(pf: &[u8]) -> (Vec<(String, Defined)>, HashMap<String, u32>) {
    let (text, data) = pf
        .windows(DATA_MARK.len())
        .position(|window| window == DATA_MARK)
        .map_or((pf, &[][..]), |at| (&pf[..at], &pf[at + DATA_MARK.len()..]));
    let mut defined: Vec<(String, Defined)> = Vec::new();
    let mut first_names: Vec<(String, String)> = Vec::new();
    for line in std::str::from_utf8(text).unwrap().lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let path = match fields[0] {
            "/" => String::new(),
            path => path.to_owned(),
        };
        if fields[1] == "L" {
            let first = fields[2];
            let (_, twin) = defined.iter().find(|(path, _)| path == first).unwrap();
            let copy = Defined {
                contents: twin.contents.clone(),
                target: twin.target.clone(),
                ..*twin
            };
            first_names.push((path.clone(), first.to_owned()));
            defined.push((path, copy));
            continue;
        }
        first_names.push((path.clone(), path.clone()));
        defined.push((path, definition(&fields, data)));
    }
    let names = first_names
        .iter()
        .map(|(path, first)| {
            let count = first_names
                .iter()
                .filter(|(_, other)| other == first)
                .count();
            (path.clone(), count as u32)
        })
        .collect();
    (defined, names)
}

/// A uid or gid as `-pf` prints it: signed, so 4294967294 shows as -2.
fn id(field: &str) -> u32 {
    field.parse::<i32>().map_or_else(
        |_| field.parse::<u32>().expect("an id"),
        |signed| signed as u32,
    )
}

/// One `-pf` definition line, split at spaces; `data` is the file data.
fn definition(fields: &[&str], data: &[u8]) -> Defined {
    let number = |at: usize| {
        fields[at]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("field {at} of {fields:?} is not a number"))
    };
    let kind = match (fields[1], fields.get(6)) {
        ("D", _) => 'd',
        ("R", _) => '-',
        ("S", _) => 'l',
        ("C", _) => 'c',
        ("B", _) => 'b',
        ("I", Some(&"f")) => 'p',
        ("I", Some(&"s")) => 's',
        _ => panic!("unexpected pseudo definition {fields:?}"),
    };
    let mut entry = Defined {
        kind,
        mode: u32::from_str_radix(fields[3], 8).unwrap(),
        uid: id(fields[4]),
        gid: id(fields[5]),
        mtime: number(2),
        size: 0,
        target: None,
        rdev: None,
        contents: None,
    };
    match kind {
        '-' => {
            let (size, offset) = (number(6), number(7) as usize);
            entry.size = size;
            entry.contents = Some(data[offset..offset + size as usize].to_vec());
        }
        'l' => {
            let target = fields[6..].join(" ");
            entry.size = target.len() as u64;
            entry.target = Some(target);
        }
        'c' | 'b' => entry.rdev = Some((number(6) as u32, number(7) as u32)),
        _ => {}
    }
    entry
}

/// What `-pf` should define for `tree`, from the corpus's listing.
fn expected(tree: &Tree) -> Vec<(String, Defined)> {
    listing(tree, EPOCH)
        .into_iter()
        .map(|listed: Listed| {
            let contents = (listed.kind == '-').then(|| contents(tree, &listed.path));
            (
                listed.path,
                Defined {
                    kind: listed.kind,
                    mode: listed.mode,
                    uid: listed.uid,
                    gid: listed.gid,
                    mtime: listed.mtime,
                    size: listed.size,
                    target: listed.target,
                    rdev: listed.rdev.map(shown_rdev),
                    contents,
                },
            )
        })
        .collect()
}

fn contents(tree: &Tree, path: &str) -> Vec<u8> {
    let Kind::File(blob) = &tree.node(tree.lookup(path).unwrap()).kind else {
        panic!("{path} is not a file");
    };
    let mut bytes = Vec::new();
    tree.contents(blob).read_to_end(&mut bytes).unwrap();
    bytes
}

/// `-lln` lines as (type and permissions, owner, size or device, path,
/// symlink target).
fn long_listing(image: &str) -> Vec<(String, String, String, String, Option<String>)> {
    String::from_utf8(unsquashfs(&["-lln", "-UTC", image]))
        .unwrap()
        .lines()
        .filter(|line| line.contains("squashfs-root"))
        .map(|line| {
            // Device numbers print as `major,  minor`: make them one field.
            let mut fields: Vec<String> = Vec::new();
            for word in line.split_whitespace() {
                match fields.last_mut() {
                    Some(last) if last.ends_with(',') => last.push_str(word),
                    _ => fields.push(word.to_owned()),
                }
            }
            let path = fields[5]
                .strip_prefix("squashfs-root")
                .unwrap_or_else(|| panic!("unexpected -lln line: {line}"))
                .trim_start_matches('/')
                .to_owned();
            let target =
                (fields.get(6).map(String::as_str) == Some("->")).then(|| fields[7..].join(" "));
            (
                fields[0].clone(),
                fields[1].clone(),
                fields[2].clone(),
                path,
                target,
            )
        })
        .collect()
}

/// `ls -l`'s mode string for a listed entry.
fn mode_string(listed: &Listed) -> String {
    let mode = listed.mode;
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: u32, special: u32, set: char, unset: char| match (
        mode & exec != 0,
        mode & special != 0,
    ) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        listed.kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(0o001, 0o1000, 't', 'T'),
    ]
    .into_iter()
    .collect()
}

fn check_long_listing(tree: &Tree, image: &str) {
    let listed = long_listing(image);
    let want: Vec<_> = listing(tree, EPOCH)
        .iter()
        .map(|entry| {
            let size = match (entry.kind, entry.rdev) {
                (_, Some(rdev)) => {
                    let (major, minor) = shown_rdev(rdev);
                    format!("{major},{minor}")
                }
                ('d', _) => String::new(),
                _ => entry.size.to_string(),
            };
            (
                mode_string(entry),
                format!("{}/{}", entry.uid, entry.gid),
                size,
                entry.path.clone(),
                entry.target.clone(),
            )
        })
        .collect();
    // A directory's size is its listing's, which only the format defines.
    let got: Vec<_> = listed
        .into_iter()
        .map(|(mode, owner, size, path, target)| {
            let size = if mode.starts_with('d') {
                String::new()
            } else {
                size
            };
            (mode, owner, size, path, target)
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
#[ignore = "heavy: needs squashfs-tools (unsquashfs)"]
fn unsquashfs_lists_every_corpus_tree() {
    let dir = scratch();
    for (name, tree) in corpus() {
        let bytes = image(&tree, &options(Compression::Gzip));
        let path = save(dir.path(), &format!("{name}.sqfs"), &bytes);
        check_long_listing(&tree, &path);
        if name == "sparse" {
            check_sparse(&path, bytes.len());
            continue;
        }
        let pf = dir.path().join(format!("{name}.pf"));
        unsquashfs(&["-pf", pf.to_str().unwrap(), &path]);
        let (defined, names) = pseudo(&std::fs::read(&pf).unwrap());
        let want = expected(&tree);
        assert_eq!(defined.len(), want.len(), "{name}: entry count");
        for ((path, got), (want_path, want)) in defined.iter().zip(&want) {
            assert_eq!(path, want_path, "{name}");
            assert_eq!(got, want, "{name}: {path}");
        }
        for listed in listing(&tree, EPOCH) {
            if listed.kind != 'd' {
                assert_eq!(names[&listed.path], listed.nlink, "{name}: {}", listed.path);
            }
        }
    }
}

/// The 5 GiB file of 12 KiB of data is a small image whose holes read back
/// as zeros.
fn check_sparse(image: &str, image_len: usize) {
    assert!(
        image_len < 1 << 20,
        "holes are not stored: {image_len} bytes"
    );
    let mut child = Command::new("unsquashfs")
        .args(["-cat", image, "disk.img"])
        .stdout(Stdio::piped())
        .spawn()
        .expect(INSTALL);
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = vec![0; 1 << 20];
    let zeros = vec![0; 1 << 20];
    let mut at = 0u64;
    let tag = |offset: u64| match offset {
        0..4096 => 1,
        o if (2 << 30..(2 << 30) + 4096).contains(&o) => 2,
        o if o >= SPARSE_LEN - 4096 => 3,
        _ => 0,
    };
    loop {
        let read = stdout.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        let end = at + read as u64;
        let tagged = [0, 2 << 30, SPARSE_LEN - 4096]
            .iter()
            .any(|&start| start < end && at < start + 4096);
        if !tagged && buffer[..read] == zeros[..read] {
            at = end;
            continue;
        }
        for (i, &byte) in buffer[..read].iter().enumerate() {
            let offset = at + i as u64;
            if byte != tag(offset) {
                panic!("byte {offset} of disk.img is {byte}");
            }
        }
        at += read as u64;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(at, SPARSE_LEN);
}

#[test]
#[ignore = "heavy: needs squashfs-tools (unsquashfs)"]
fn every_compression_and_block_size_reads_back() {
    let dir = scratch();
    let tree = sample("mixed");
    let want = expected(&tree);
    let cases = [
        (Compression::Gzip, "4K", "gzip"),
        (Compression::Xz, "128K", "xz"),
        (Compression::Zstd, "1M", "zstd"),
        (Compression::Lz4, "64K", "lz4"),
    ];
    for (compression, block_size, shown) in cases {
        let block_size: BlockSize = block_size.parse().unwrap();
        let options = Options {
            block_size,
            ..options(compression)
        };
        let path = save(
            dir.path(),
            &format!("{shown}.sqfs"),
            &image(&tree, &options),
        );
        let stat = String::from_utf8(unsquashfs(&["-s", &path])).unwrap();
        assert!(stat.contains(&format!("Compression {shown}\n")), "{stat}");
        assert!(
            stat.contains(&format!("Block size {}\n", block_size.get())),
            "{stat}"
        );
        assert!(stat.contains("Number of inodes 308\n"), "{stat}");
        assert!(
            stat.contains("Always-use-fragments option is specified"),
            "{stat}"
        );
        let pf = dir.path().join(format!("{shown}.pf"));
        unsquashfs(&["-pf", pf.to_str().unwrap(), &path]);
        let (defined, _) = pseudo(&std::fs::read(&pf).unwrap());
        assert!(defined == want, "{shown}: contents differ");
    }
}

#[test]
#[ignore = "heavy: needs squashfs-tools (unsquashfs)"]
fn xattrs_extract() {
    let dir = scratch();
    let tree = sample("every-kind");
    let path = save(
        dir.path(),
        "xattrs.sqfs",
        &image(&tree, &options(Compression::Gzip)),
    );
    let out = dir.path().join("out");
    unsquashfs(&["-no-progress", "-d", out.to_str().unwrap(), &path, "xattrs"]);
    // Without root, unsquashfs sets only user.* attributes.
    let root = unsafe { libc::geteuid() } == 0;
    for listed in listing(&tree, EPOCH) {
        if !listed.path.starts_with("xattrs") {
            continue;
        }
        let want: Vec<_> = listed
            .xattrs
            .iter()
            .filter(|(name, _)| root || name.starts_with("user."))
            .cloned()
            .collect();
        let got = xattrs(&out.join(&listed.path));
        assert_eq!(got, want, "{}", listed.path);
        assert!(listed.path == "xattrs" || !got.is_empty());
    }
}

/// The xattrs of `path`, sorted by name.
fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    let len = unsafe { libc::llistxattr(c_path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(len >= 0, "llistxattr {}", path.display());
    let mut out: Vec<(String, Vec<u8>)> = names[..len as usize]
        .split(|&byte| byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let c_name = CString::new(name).unwrap();
            let mut value = vec![0u8; 65536];
            let len = unsafe {
                libc::lgetxattr(
                    c_path.as_ptr(),
                    c_name.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                )
            };
            assert!(len >= 0, "lgetxattr");
            value.truncate(len as usize);
            (String::from_utf8(name.to_vec()).unwrap(), value)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn images_are_reproducible() {
    for name in ["every-kind", "mixed"] {
        let tree = sample(name);
        let small_blocks = Options {
            block_size: BlockSize::MIN,
            threads: NonZeroUsize::MIN,
            ..options(Compression::Zstd)
        };
        let first = image(&tree, &small_blocks);
        assert_eq!(first, image(&tree, &small_blocks), "{name}: twice");
        for threads in [2, 5] {
            let threaded = Options {
                threads: NonZeroUsize::new(threads).unwrap(),
                ..small_blocks.clone()
            };
            assert_eq!(first, image(&tree, &threaded), "{name}: {threads} threads");
        }
        let later = Options {
            source_date_epoch: EPOCH + 1,
            ..small_blocks
        };
        assert_ne!(first, image(&tree, &later), "{name}: epoch");
    }
}

//! Heavy tier: ext4 images checked by e2fsprogs. `e2fsck -fn` must pass
//! without a message, and debugfs must list every corpus tree exactly:
//! names, types, modes, owners, sizes, links, mtimes, symlink targets,
//! device numbers, xattrs and file contents.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use ossify::tree::{Kind, Tree};
use ossify::write::ext4::{self, Ext4Error, Options};
use support::trees::{EPOCH, Listed, corpus, listing};

const HINT: &str = "install e2fsprogs (apt-get install e2fsprogs)";
/// Files up to this size are dumped to disk in one debugfs run; larger
/// ones are streamed through `cat` and compared as they come.
const DUMP_LIMIT: u64 = 16 << 20;

fn options(epoch: u64) -> Options {
    Options {
        source_date_epoch: epoch,
        size: None,
        label: "ossify".to_owned(),
    }
}

fn write_image(tree: &Tree, options: &Options, path: &Path) {
    let file = fs::File::create(path).expect("creates the image file");
    ext4::write(tree, file, options).expect("writes the ext4 image");
}

/// Runs `e2fsck -fn` and asserts it found nothing: exit 0 and only its
/// pass headings and summary.
fn assert_fsck_clean(image: &Path) {
    let output = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .expect(HINT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let unexpected: Vec<&str> = stdout
        .lines()
        .filter(|line| !line.starts_with("Pass ") && !line.contains(" files ("))
        .collect();
    assert!(
        output.status.success() && unexpected.is_empty(),
        "e2fsck -fn {}: {}\n{stdout}\n{stderr}",
        image.display(),
        output.status
    );
}

/// Runs debugfs commands in one process; returns each command's output.
fn debugfs(image: &Path, commands: &[String], dir: &Path) -> Vec<String> {
    if commands.is_empty() {
        return Vec::new();
    }
    let script = dir.join("commands");
    fs::write(&script, commands.join("\n") + "\n").unwrap();
    let output = Command::new("debugfs")
        .arg("-f")
        .arg(&script)
        .arg(image)
        .output()
        .expect(HINT);
    assert!(
        output.status.success(),
        "debugfs: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut outputs: Vec<String> = stdout
        .split("debugfs: ")
        .skip(1)
        .map(|chunk| {
            chunk
                .split_once('\n')
                .map_or("", |(_, rest)| rest)
                .to_owned()
        })
        .collect();
    assert_eq!(
        outputs.len(),
        commands.len(),
        "one output per command:\n{stdout}"
    );
    outputs.shrink_to_fit();
    outputs
}

fn quoted(path: &str) -> String {
    format!("\"/{path}\"")
}

/// What `stat` shows of one inode.
#[derive(Debug, PartialEq)]
struct Stat {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    links: u32,
    mtime: u64,
    fast_target: Option<String>,
    rdev: Option<(u32, u32)>,
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    let at = text
        .find(name)
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
        + name.len();
    text[at..].split_whitespace().next().unwrap()
}

fn number<T: std::str::FromStr>(text: &str, name: &str) -> T {
    field(text, name)
        .parse()
        .unwrap_or_else(|_| panic!("`{name}` is not a number in:\n{text}"))
}

fn parse_stat(text: &str) -> Stat {
    let kind = match text
        .split("Type: ")
        .nth(1)
        .unwrap()
        .split("  ")
        .next()
        .unwrap()
        .trim()
    {
        "regular" => '-',
        "directory" => 'd',
        "symlink" => 'l',
        "character special" => 'c',
        "block special" => 'b',
        "FIFO" => 'p',
        "socket" => 's',
        other => panic!("type {other}"),
    };
    let mtime = field(text, " mtime: 0x");
    let (low, extra) = mtime.split_once(":").unwrap();
    let low = u32::from_str_radix(low, 16).unwrap() as i32 as i64;
    let epoch = i64::from(u32::from_str_radix(extra, 16).unwrap() & 3);
    let rdev = text.find("Device major/minor number: ").map(|_| {
        let (major, minor) = field(text, "Device major/minor number: ")
            .split_once(':')
            .unwrap();
        (major.parse().unwrap(), minor.parse().unwrap())
    });
    let fast_target = text
        .split("Fast link dest: \"")
        .nth(1)
        .map(|rest| rest[..rest.rfind('"').unwrap()].to_owned());
    Stat {
        kind,
        mode: u32::from_str_radix(field(text, "Mode: "), 8).unwrap(),
        // debugfs prints ids as signed: 4294967294 shows as -2.
        uid: number::<i64>(text, "User: ") as u32,
        gid: number::<i64>(text, "Group: ") as u32,
        size: number(text, "Size: "),
        links: number(text, "Links: "),
        mtime: (low + (epoch << 32)) as u64,
        fast_target,
        rdev,
    }
}

/// Names and sizes from `ea_list`.
fn parse_ea_list(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .filter_map(|line| {
            let line = line.strip_prefix("  ")?;
            let (name, rest) = line.split_once(" (")?;
            let size = rest.split(')').next()?.parse().ok()?;
            Some((name.to_owned(), size))
        })
        .collect()
}

/// Streams `debugfs cat` of a large file and compares it with `expected`.
fn assert_cat_equals(image: &Path, path: &str, expected: &mut impl Read) {
    let mut child = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {}", quoted(path)))
        .arg(image)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect(HINT);
    let mut actual = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let read = read_full(&mut actual, &mut a);
        let wanted = read_full(expected, &mut b);
        assert_eq!(read, wanted, "{path}: length differs after {offset} bytes");
        assert!(
            a[..read] == b[..read],
            "{path}: contents differ after {offset} bytes"
        );
        if read == 0 {
            break;
        }
        offset += read as u64;
    }
    assert!(child.wait().unwrap().success());
}

fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]).unwrap() {
            0 => break,
            read => filled += read,
        }
    }
    filled
}

/// Checks that debugfs lists `tree` as `listing` says.
fn assert_lists(name: &str, tree: &Tree, image: &Path, dir: &Path) {
    let listed = listing(tree, EPOCH);
    let mut commands = Vec::new();
    for entry in &listed {
        commands.push(format!("stat {}", quoted(&entry.path)));
        commands.push(format!("ea_list {}", quoted(&entry.path)));
    }
    let outputs = debugfs(image, &commands, dir);
    let mut dumps = Vec::new();
    let mut large = Vec::new();
    for (i, entry) in listed.iter().enumerate() {
        let stat = parse_stat(&outputs[2 * i]);
        let context = format!("{name}: `{}`", entry.path);
        assert_eq!(stat.kind, entry.kind, "{context}");
        assert_eq!(stat.mode, entry.mode, "{context}");
        assert_eq!((stat.uid, stat.gid), (entry.uid, entry.gid), "{context}");
        assert_eq!(
            stat.links,
            entry.nlink + u32::from(entry.path.is_empty()),
            "{context} (root also holds lost+found)"
        );
        assert_eq!(stat.mtime, entry.mtime, "{context}");
        assert_eq!(stat.rdev, entry.rdev, "{context}");
        if matches!(entry.kind, '-' | 'l') {
            assert_eq!(stat.size, entry.size, "{context}");
        }
        if entry.kind == 'l' {
            match stat.fast_target {
                Some(target) => assert_eq!(Some(target), entry.target, "{context}"),
                None => dumps.push((entry, dir.join(format!("dump-{i}")))),
            }
        }
        if entry.kind == '-' {
            if entry.size <= DUMP_LIMIT {
                dumps.push((entry, dir.join(format!("dump-{i}"))));
            } else {
                large.push(entry);
            }
        }
        let names = parse_ea_list(&outputs[2 * i + 1]);
        let expected: Vec<(String, usize)> = entry
            .xattrs
            .iter()
            .map(|(n, v)| (n.clone(), v.len()))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{context}: xattrs");
    }
    assert_listed_names(name, &listed, image, dir);
    assert_xattr_values(name, &listed, image, dir);
    let commands: Vec<String> = dumps
        .iter()
        .map(|(entry, out)| format!("dump {} {}", quoted(&entry.path), out.display()))
        .collect();
    debugfs(image, &commands, dir);
    for (entry, out) in &dumps {
        let actual = fs::read(out).unwrap();
        let expected = match entry.kind {
            'l' => entry.target.clone().unwrap().into_bytes(),
            _ => contents(tree, &entry.path),
        };
        assert!(
            actual == expected,
            "{name}: `{}` contents differ",
            entry.path
        );
    }
    for entry in large {
        let Kind::File(blob) = &tree.node(tree.lookup(&entry.path).unwrap()).kind else {
            panic!("{} is a file", entry.path)
        };
        assert_cat_equals(image, &entry.path, &mut tree.contents(blob));
    }
}

fn contents(tree: &Tree, path: &str) -> Vec<u8> {
    let Kind::File(blob) = &tree.node(tree.lookup(path).unwrap()).kind else {
        panic!("{path} is a file")
    };
    let mut bytes = Vec::new();
    tree.contents(blob).read_to_end(&mut bytes).unwrap();
    bytes
}

/// Every directory holds exactly the listed names (and the root
/// `lost+found`).
fn assert_listed_names(name: &str, listed: &[Listed], image: &Path, dir: &Path) {
    let directories: Vec<&Listed> = listed.iter().filter(|entry| entry.kind == 'd').collect();
    let commands: Vec<String> = directories
        .iter()
        .map(|entry| format!("ls -p {}", quoted(&entry.path)))
        .collect();
    let outputs = debugfs(image, &commands, dir);
    let mut found = BTreeSet::new();
    for (entry, output) in directories.iter().zip(&outputs) {
        for line in output.lines().filter(|line| line.starts_with('/')) {
            let child = line.split('/').nth(5).unwrap();
            if child == "." || child == ".." {
                continue;
            }
            found.insert(if entry.path.is_empty() {
                child.to_owned()
            } else {
                format!("{}/{child}", entry.path)
            });
        }
    }
    let mut expected: BTreeSet<String> = listed
        .iter()
        .skip(1)
        .map(|entry| entry.path.clone())
        .collect();
    expected.insert("lost+found".to_owned());
    assert_eq!(found, expected, "{name}: names in the image");
}

/// Every xattr value reads back byte for byte.
fn assert_xattr_values(name: &str, listed: &[Listed], image: &Path, dir: &Path) {
    let mut commands = Vec::new();
    let mut expected = Vec::new();
    for entry in listed {
        for (attr, value) in &entry.xattrs {
            let out = dir.join(format!("xattr-{}", expected.len()));
            commands.push(format!(
                "ea_get -f {} {} {attr}",
                out.display(),
                quoted(&entry.path)
            ));
            expected.push((entry.path.clone(), attr.clone(), value.clone(), out));
        }
    }
    debugfs(image, &commands, dir);
    for (path, attr, value, out) in expected {
        assert_eq!(
            fs::read(&out).unwrap(),
            value,
            "{name}: `{path}` xattr {attr}"
        );
    }
}

#[test]
#[ignore = "heavy: needs e2fsprogs (e2fsck, debugfs)"]
fn corpus_images_are_clean_and_list_every_entry() {
    for (name, tree) in corpus() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join(format!("{name}.ext4"));
        write_image(&tree, &options(EPOCH), &image);
        assert_fsck_clean(&image);
        assert_lists(name, &tree, &image, dir.path());
        if name == "sparse" {
            let blocks = fs::metadata(&image).unwrap().len();
            assert!(
                blocks < 64 << 20,
                "the sparse tree's image is {blocks} bytes"
            );
        }
    }
}

#[test]
#[ignore = "heavy: needs e2fsprogs (e2fsck)"]
fn sized_images_are_clean_and_exactly_that_size() {
    let (_, tree) = corpus()
        .into_iter()
        .find(|(name, _)| *name == "every-kind")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 300 MiB spans three groups; 1 GiB holds superblock copies in 1, 3, 5, 7.
    for size in [300u64 << 20, 1 << 30] {
        let image = dir.path().join(format!("{size}.ext4"));
        let options = Options {
            size: Some(size),
            ..options(EPOCH)
        };
        write_image(&tree, &options, &image);
        assert_eq!(fs::metadata(&image).unwrap().len(), size);
        assert_fsck_clean(&image);
    }
}

#[test]
#[ignore = "heavy: writes every corpus tree twice"]
fn same_tree_same_bytes_and_the_epoch_matters() {
    for (name, tree) in corpus().into_iter().filter(|(name, _)| *name != "sparse") {
        let first = ext4::write(&tree, Cursor::new(Vec::new()), &options(EPOCH))
            .unwrap()
            .into_inner();
        let second = ext4::write(&tree, Cursor::new(Vec::new()), &options(EPOCH))
            .unwrap()
            .into_inner();
        assert!(first == second, "{name}: two writes differ");
        let later = ext4::write(&tree, Cursor::new(Vec::new()), &options(EPOCH + 1))
            .unwrap()
            .into_inner();
        assert!(first != later, "{name}: the epoch changed nothing");
    }
}

#[test]
#[ignore = "heavy: part of the ext4 tool checks"]
fn too_small_a_size_is_refused_clearly() {
    let (_, tree) = corpus()
        .into_iter()
        .find(|(name, _)| *name == "mixed")
        .unwrap();
    let options = Options {
        size: Some(1 << 20),
        ..options(EPOCH)
    };
    let error = ext4::write(&tree, Cursor::new(Vec::new()), &options).unwrap_err();
    assert!(matches!(error, Ext4Error::TooSmall { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("1048576 bytes") && message.contains("larger size"),
        "{message}"
    );
}

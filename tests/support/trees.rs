//! Sample trees for the filesystem writers' tests (squashfs, EROFS, ext4),
//! and what a filesystem tool should list for each, so every writer is
//! checked against the same corpus and the same expectation.

use std::io::Read;

use ossify::tree::{Device, Kind, Metadata, NodeId, Tree};

/// The `source_date_epoch` the corpus is written with: some mtimes lie
/// after it and must come out clamped.
pub const EPOCH: u64 = 1_700_000_000;

/// The sparse sample's length: over 4 GiB, so 32-bit sizes would wrap.
pub const SPARSE_LEN: u64 = 5 << 30;

/// Every sample tree, by name.
pub fn corpus() -> Vec<(&'static str, Tree)> {
    vec![
        ("empty", Tree::new(EPOCH)),
        ("deep", deep()),
        ("wide", wide()),
        ("every-kind", every_kind()),
        ("sparse", sparse()),
        ("mixed", mixed()),
    ]
}

/// One sample by name; panics on a name not in [`corpus`].
pub fn sample(name: &str) -> Tree {
    corpus()
        .into_iter()
        .find(|(sample, _)| *sample == name)
        .unwrap_or_else(|| panic!("no sample tree named {name}"))
        .1
}

fn meta(mode: u32) -> Metadata {
    Metadata::new(mode, EPOCH - 3600)
}

fn file(tree: &mut Tree, path: &str, contents: &[u8], metadata: Metadata) -> NodeId {
    let blob = tree.store_bytes(contents).expect("store contents");
    tree.insert(path, Kind::File(blob), metadata)
        .expect("insert file")
}

fn dir(tree: &mut Tree, path: &str, metadata: Metadata) {
    tree.insert(path, Kind::directory(), metadata)
        .expect("insert directory");
}

/// 120 nested directories with a file at the bottom.
fn deep() -> Tree {
    let mut tree = Tree::new(EPOCH);
    let mut path = String::new();
    for level in 0..120 {
        if level > 0 {
            path.push('/');
        }
        path.push_str(&format!("d{level:03}"));
        dir(&mut tree, &path, meta(0o755));
    }
    file(
        &mut tree,
        &format!("{path}/bottom"),
        b"at the bottom\n",
        meta(0o644),
    );
    tree
}

/// 10,000 small files in one directory.
fn wide() -> Tree {
    let mut tree = Tree::new(EPOCH);
    dir(&mut tree, "many", meta(0o755));
    for index in 0..10_000 {
        file(
            &mut tree,
            &format!("many/file-{index:05}"),
            format!("{index}\n").as_bytes(),
            meta(0o644),
        );
    }
    tree
}

/// Each node kind and each corner of metadata a writer must carry.
fn every_kind() -> Tree {
    let mut tree = Tree::new(EPOCH);
    dir(&mut tree, "dir", meta(0o755));
    dir(&mut tree, "dir/empty", meta(0o700));
    dir(&mut tree, "tmp", meta(0o1777));
    file(&mut tree, "dir/empty-file", b"", meta(0o600));
    file(&mut tree, "dir/small", b"small contents\n", meta(0o644));
    let large: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    file(&mut tree, "dir/large", &large, meta(0o644));
    file(&mut tree, "bin-suid", b"#!/bin/sh\n", meta(0o4755));
    file(&mut tree, "bin-sgid", b"#!/bin/sh\n", meta(0o2755));
    let linked = file(
        &mut tree,
        "links/first",
        b"one inode, three names\n",
        meta(0o644),
    );
    tree.hard_link("links/second", linked).expect("hard link");
    tree.hard_link("dir/third", linked).expect("hard link");
    let owned = Metadata {
        uid: 100_000,
        gid: 100_000,
        ..meta(0o640)
    };
    file(&mut tree, "owned/by-100000", b"owned\n", owned);
    let highest = Metadata {
        uid: 4_294_967_294,
        gid: 4_294_967_294,
        ..meta(0o640)
    };
    file(&mut tree, "owned/by-highest", b"owned\n", highest);
    let future = Metadata {
        mtime: EPOCH + 86_400,
        ..meta(0o644)
    };
    file(&mut tree, "times/future", b"clamped\n", future);
    let old = Metadata {
        mtime: 86_400,
        ..meta(0o644)
    };
    file(&mut tree, "times/1970", b"kept\n", old);
    tree.insert(
        "symlinks/short",
        Kind::Symlink(b"../dir/small".to_vec()),
        meta(0o777),
    )
    .expect("symlink");
    let long_target = format!("/{}", "long-component/".repeat(272));
    tree.insert(
        "symlinks/long",
        Kind::Symlink(long_target.into_bytes()),
        meta(0o777),
    )
    .expect("symlink");
    tree.insert(
        "dev/null",
        Kind::CharDevice(Device { major: 1, minor: 3 }),
        meta(0o666),
    )
    .expect("char device");
    tree.insert(
        "dev/nvme",
        Kind::BlockDevice(Device {
            major: 259,
            minor: 70_000,
        }),
        meta(0o660),
    )
    .expect("block device");
    tree.insert("dev/fifo", Kind::Fifo, meta(0o644))
        .expect("fifo");
    tree.insert("dev/socket", Kind::Socket, meta(0o755))
        .expect("socket");
    let mut xattrs = meta(0o755);
    xattrs.xattrs.insert(
        "security.capability".into(),
        vec![
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    xattrs
        .xattrs
        .insert("user.comment".into(), b"a user attribute".to_vec());
    xattrs
        .xattrs
        .insert("trusted.overlay.opaque".into(), b"y".to_vec());
    file(&mut tree, "xattrs/ping", b"\x7fELF", xattrs);
    let mut dir_xattrs = meta(0o755);
    dir_xattrs
        .xattrs
        .insert("user.on-a-directory".into(), vec![0, 255, 10, 0]);
    dir(&mut tree, "xattrs/dir", dir_xattrs);
    tree
}

/// A file of [`SPARSE_LEN`] bytes, zero but for 4 KiB at its start, at
/// 2 GiB and at its end.
fn sparse() -> Tree {
    let mut tree = Tree::new(EPOCH);
    let block = 4096u64;
    let data = |tag: u8| vec![tag; block as usize];
    let mut contents = Vec::new();
    let mut at = 0;
    for (offset, tag) in [(0, 1u8), (2 << 30, 2), (SPARSE_LEN - block, 3)] {
        contents.push(Box::new(std::io::repeat(0).take(offset - at)) as Box<dyn std::io::Read>);
        contents.push(Box::new(std::io::Cursor::new(data(tag))));
        at = offset + block;
    }
    let reader = contents.into_iter().fold(
        Box::new(std::io::empty()) as Box<dyn std::io::Read>,
        |all, next| Box::new(all.chain(next)),
    );
    let blob = tree.store(reader, SPARSE_LEN).expect("store sparse file");
    assert_eq!(blob.len(), SPARSE_LEN);
    tree.insert("disk.img", Kind::File(blob), meta(0o644))
        .expect("insert sparse file");
    tree
}

/// A few hundred files of varied sizes in a few directories: block
/// boundaries, tails and incompressible data.
fn mixed() -> Tree {
    let mut tree = Tree::new(EPOCH);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for index in 0..300u64 {
        let size = match index % 6 {
            0 => 0,
            1 => index,
            2 => 4096,
            3 => 4097 + index * 13,
            4 => 131_072 + index,
            _ => 70_000 + index * 101,
        };
        let contents: Vec<u8> = (0..size)
            .map(|i| {
                if index % 2 == 0 {
                    // Compressible text.
                    b"ossify mixed sample\n"[(i % 20) as usize]
                } else {
                    // Incompressible: xorshift.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                }
            })
            .collect();
        file(
            &mut tree,
            &format!("dir-{}/file-{index:03}", index % 7),
            &contents,
            meta(0o644),
        );
    }
    tree
}

/// One entry as a filesystem tool should list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// `""` for the root, else the path without a leading `/`.
    pub path: String,
    /// `d`, `-`, `l`, `c`, `b`, `p` or `s`, as `ls -l` shows it.
    pub kind: char,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Files: their length; symlinks: the target's length; else 0.
    pub size: u64,
    /// Names of the inode; for directories 2 plus subdirectories.
    pub nlink: u32,
    pub target: Option<String>,
    pub rdev: Option<(u32, u32)>,
    /// Clamped to the epoch written with.
    pub mtime: u64,
    /// Sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// What a tool should list for `tree` written with `epoch`: the root, then
/// every entry in walk order (hard links once per name).
pub fn listing(tree: &Tree, epoch: u64) -> Vec<Listed> {
    let root = tree.node(tree.root());
    std::iter::once((String::new(), root))
        .chain(tree.walk().map(|entry| {
            (
                String::from_utf8_lossy(&entry.path).into_owned(),
                entry.node,
            )
        }))
        .map(|(path, node)| {
            let (kind, size, target, rdev) = match &node.kind {
                Kind::Directory(_) => ('d', 0, None, None),
                Kind::File(blob) => ('-', blob.len(), None, None),
                Kind::Symlink(target) => (
                    'l',
                    target.len() as u64,
                    Some(String::from_utf8_lossy(target).into_owned()),
                    None,
                ),
                Kind::CharDevice(device) => ('c', 0, None, Some((device.major, device.minor))),
                Kind::BlockDevice(device) => ('b', 0, None, Some((device.major, device.minor))),
                Kind::Fifo => ('p', 0, None, None),
                Kind::Socket => ('s', 0, None, None),
            };
            let nlink = match &node.kind {
                Kind::Directory(entries) => {
                    2 + entries
                        .entries()
                        .filter(|(_, id)| matches!(tree.node(*id).kind, Kind::Directory(_)))
                        .count() as u32
                }
                _ => node.links(),
            };
            Listed {
                path,
                kind,
                mode: node.metadata.mode,
                uid: node.metadata.uid,
                gid: node.metadata.gid,
                size,
                nlink,
                target,
                rdev,
                mtime: node.metadata.mtime.min(epoch),
                xattrs: node
                    .metadata
                    .xattrs
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            }
        })
        .collect()
}

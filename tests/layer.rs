//! Layer application over layers synthesised here: OCI changeset semantics
//! and hostile input.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::io::{Read, Write};

use ossify::tree::layer::{Layer, LayerError};
use ossify::tree::{Compression, Device, Kind, Tree, TreeError};
use sha2::{Digest, Sha256};
use support::chain;

const MTIME: u64 = 1_600_000_000;

/// One tar entry of a synthesised layer. Paths are written verbatim, so
/// hostile names (`../x`, `/x`) reach the tree unmodified.
#[derive(Clone, Copy)]
enum Item {
    Dir(&'static str),
    File(&'static str, &'static [u8]),
    /// A file with mode, uid and gid.
    Owned(&'static str, u32, u32, u32),
    Symlink(&'static str, &'static str),
    HardLink(&'static str, &'static str),
    Char(&'static str, u32, u32),
    Block(&'static str, u32, u32),
    Fifo(&'static str),
    /// A file with one xattr, in a PAX header.
    Xattr(&'static str, &'static str, &'static [u8]),
    /// A file whose header claims `size` bytes but holds only `data`.
    Lying(&'static str, u64, &'static [u8]),
}

fn header(path: &str, entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_size(size);
    header
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let unnumbered = key.len() + value.len() + 3;
    let mut len = unnumbered + unnumbered.to_string().len();
    if len.to_string().len() > unnumbered.to_string().len() {
        len += 1;
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// A tar written entry by entry, with names of any length (a PAX `path`
/// record carries those over 100 bytes).
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn entry(mut self, mut header: tar::Header, data: &[u8]) -> Self {
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(512) * 512, 0);
        self
    }

    /// A PAX extended header holding `records`, for the next entry.
    fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let data: Vec<u8> = records
            .iter()
            .flat_map(|(key, value)| pax_record(key, value))
            .collect();
        let header = header(
            "PaxHeaders/x",
            tar::EntryType::XHeader,
            0o644,
            data.len() as u64,
        );
        self.entry(header, &data)
    }

    /// An entry at `path`, through a PAX record when it is long.
    fn named(self, path: &str, entry_type: tar::EntryType, data: &[u8]) -> Self {
        let size = data.len() as u64;
        if path.len() <= 100 {
            return self.entry(header(path, entry_type, 0o644, size), data);
        }
        self.pax(&[("path", path.as_bytes())])
            .entry(header("long", entry_type, 0o644, size), data)
    }

    fn dir(self, path: &str) -> Self {
        self.named(path, tar::EntryType::Directory, b"")
    }

    fn file(self, path: &str, data: &[u8]) -> Self {
        self.named(path, tar::EntryType::Regular, data)
    }

    fn link(self, entry_type: tar::EntryType, path: &str, target: &str) -> Self {
        let mut link = header(path, entry_type, 0o777, 0);
        link.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.entry(link, b"")
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0
    }
}

/// An uncompressed layer holding `items` in order.
fn layer(items: &[Item]) -> Vec<u8> {
    let mut raw = Raw::default();
    for item in items {
        raw = match *item {
            Item::Dir(path) => raw.dir(path),
            Item::File(path, data) => raw.file(path, data),
            Item::Owned(path, mode, uid, gid) => {
                let mut owned = header(path, tar::EntryType::Regular, mode, 0);
                owned.set_uid(uid.into());
                owned.set_gid(gid.into());
                raw.entry(owned, b"")
            }
            Item::Symlink(path, target) => raw.symlink(path, target),
            Item::HardLink(path, target) => raw.link(tar::EntryType::Link, path, target),
            Item::Char(path, major, minor) | Item::Block(path, major, minor) => {
                let entry_type = match item {
                    Item::Char(..) => tar::EntryType::Char,
                    _ => tar::EntryType::Block,
                };
                let mut device = header(path, entry_type, 0o600, 0);
                device.set_device_major(major).unwrap();
                device.set_device_minor(minor).unwrap();
                raw.entry(device, b"")
            }
            Item::Fifo(path) => raw.named(path, tar::EntryType::Fifo, b""),
            Item::Xattr(path, name, value) => raw
                .pax(&[(&format!("SCHILY.xattr.{name}"), value)])
                .file(path, b""),
            Item::Lying(path, size, data) => {
                raw.entry(header(path, tar::EntryType::Regular, 0o644, size), data)
            }
        };
    }
    raw.finish()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn diff_id(bytes: &[u8]) -> String {
    let digest: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{digest}")
}

fn apply(tree: &mut Tree, stream: &[u8]) -> Result<(), LayerError> {
    let layer = Layer {
        digest: "sha256:test-layer",
        compression: Compression::Detect,
        diff_id: None,
    };
    layer.apply(tree, stream)
}

/// Applies each layer in order (gzip-compressed, as registries serve them).
fn build(layers: &[&[Item]]) -> Result<Tree, LayerError> {
    let mut tree = Tree::new(0);
    for items in layers {
        apply(&mut tree, &gzip(&layer(items)))?;
    }
    Ok(tree)
}

/// What a path must hold after the layers are applied.
enum Expect {
    Absent(&'static str),
    File(&'static str, &'static [u8]),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    SameNode(&'static str, &'static str),
    Device(&'static str, Kind),
    Fifo(&'static str),
    Owner(&'static str, u32, u32, u32),
    Xattr(&'static str, &'static str, &'static [u8]),
}

fn check(tree: &Tree, expect: &Expect, case: &str) {
    let node = |path: &str| {
        let id = tree
            .lookup(path)
            .unwrap_or_else(|| panic!("{case}: `{path}` is missing"));
        (id, tree.node(id))
    };
    match *expect {
        Expect::Absent(path) => assert!(tree.lookup(path).is_none(), "{case}: `{path}` exists"),
        Expect::File(path, expected) => {
            let Kind::File(blob) = &node(path).1.kind else {
                panic!("{case}: `{path}` is not a file");
            };
            let mut contents = Vec::new();
            tree.contents(blob).read_to_end(&mut contents).unwrap();
            assert_eq!(contents, expected, "{case}: contents of `{path}`");
        }
        Expect::Dir(path) => assert!(
            matches!(node(path).1.kind, Kind::Directory(_)),
            "{case}: `{path}` is not a directory"
        ),
        Expect::Symlink(path, target) => assert_eq!(
            node(path).1.kind,
            Kind::Symlink(target.as_bytes().to_vec()),
            "{case}: `{path}`"
        ),
        Expect::SameNode(first, second) => {
            let (first_id, first_node) = node(first);
            assert_eq!(first_id, node(second).0, "{case}: `{first}` and `{second}`");
            assert_eq!(first_node.links(), 2, "{case}: link count of `{first}`");
        }
        Expect::Device(path, ref kind) => assert_eq!(&node(path).1.kind, kind, "{case}: `{path}`"),
        Expect::Fifo(path) => assert_eq!(node(path).1.kind, Kind::Fifo, "{case}: `{path}`"),
        Expect::Owner(path, mode, uid, gid) => {
            let metadata = &node(path).1.metadata;
            assert_eq!(
                (metadata.mode, metadata.uid, metadata.gid),
                (mode, uid, gid),
                "{case}: `{path}`"
            );
        }
        Expect::Xattr(path, name, value) => assert_eq!(
            node(path).1.metadata.xattrs.get(name).map(Vec::as_slice),
            Some(value),
            "{case}: xattr {name} of `{path}`"
        ),
    }
}

/// A named case: layers applied in order, then what the tree must hold.
type SemanticsCase<'a> = (&'a str, &'a [&'a [Item]], &'a [Expect]);

#[test]
fn layer_semantics() {
    use Expect as E;
    use Item::*;
    let cases: &[SemanticsCase] = &[
        (
            "whiteout deletes a lower file",
            &[
                &[Dir("a/"), File("a/x", b"x"), File("a/y", b"y")],
                &[File("a/.wh.x", b"")],
            ],
            &[E::Absent("a/x"), E::File("a/y", b"y")],
        ),
        (
            "whiteout deletes a lower directory with its contents",
            &[&[Dir("d/"), File("d/f", b"f")], &[File(".wh.d", b"")]],
            &[E::Absent("d"), E::Absent("d/f")],
        ),
        (
            "whiteout spares its own layer's entry, in either order",
            &[
                &[File("a/x", b"old"), File("a/y", b"old")],
                &[
                    File("a/x", b"new"),
                    File("a/.wh.x", b""),
                    File("a/.wh.y", b""),
                    File("a/y", b"new"),
                ],
            ],
            &[E::File("a/x", b"new"), E::File("a/y", b"new")],
        ),
        (
            "opaque directory hides lower entries only",
            &[
                &[
                    Dir("d/"),
                    File("d/old", b"o"),
                    Dir("d/sub/"),
                    File("d/sub/deep", b"d"),
                ],
                &[Dir("d/"), File("d/new", b"n"), File("d/.wh..wh..opq", b"")],
            ],
            &[
                E::Absent("d/old"),
                E::Absent("d/sub"),
                E::File("d/new", b"n"),
                E::Dir("d"),
            ],
        ),
        (
            "opaque marker after a merged subdirectory still hides its lower entries",
            &[
                &[
                    Dir("d/"),
                    Dir("d/sub/"),
                    File("d/sub/lower", b"l"),
                    File("d/keep", b"k"),
                ],
                &[
                    Dir("d/sub/"),
                    File("d/sub/upper", b"u"),
                    HardLink("d/kept", "d/keep"),
                    File("d/.wh..wh..opq", b""),
                ],
            ],
            &[
                E::Absent("d/sub/lower"),
                E::File("d/sub/upper", b"u"),
                E::Absent("d/keep"),
                E::File("d/kept", b"k"),
            ],
        ),
        (
            "a directory replaces a file",
            &[&[File("p", b"file")], &[Dir("p/"), File("p/c", b"c")]],
            &[E::Dir("p"), E::File("p/c", b"c")],
        ),
        (
            "a file replaces a directory and everything in it",
            &[&[Dir("p/"), File("p/c", b"c")], &[File("p", b"file")]],
            &[E::File("p", b"file"), E::Absent("p/c")],
        ),
        (
            "later layers win",
            &[&[File("f", b"one")], &[File("f", b"two")]],
            &[E::File("f", b"two")],
        ),
        (
            "hard links within a layer and to a lower layer",
            &[
                &[File("a", b"data"), HardLink("b", "a"), File("c", b"lower")],
                &[HardLink("d", "c")],
            ],
            &[
                E::SameNode("a", "b"),
                E::SameNode("c", "d"),
                E::File("d", b"lower"),
            ],
        ),
        (
            "devices and fifos are kept as metadata",
            &[&[
                Char("dev/null", 1, 3),
                Block("dev/sda", 8, 0),
                Fifo("run/fifo"),
            ]],
            &[
                E::Device("dev/null", Kind::CharDevice(Device { major: 1, minor: 3 })),
                E::Device("dev/sda", Kind::BlockDevice(Device { major: 8, minor: 0 })),
                E::Fifo("run/fifo"),
            ],
        ),
        (
            "setuid, sticky and ownership are kept",
            &[&[
                Owned("bin/su", 0o4755, 0, 0),
                Owned("tmp", 0o1777, 0, 0),
                Owned("home/u/f", 0o600, 1000, 100),
            ]],
            &[
                E::Owner("bin/su", 0o4755, 0, 0),
                E::Owner("tmp", 0o1777, 0, 0),
                E::Owner("home/u/f", 0o600, 1000, 100),
                E::Owner("home/u", 0o755, 0, 0),
            ],
        ),
        (
            "PAX xattrs",
            &[&[Xattr(
                "bin/ping",
                "security.capability",
                b"\x01\x00\x00\x02",
            )]],
            &[E::Xattr(
                "bin/ping",
                "security.capability",
                b"\x01\x00\x00\x02",
            )],
        ),
        (
            "symlinks in parent paths are followed inside the tree",
            &[
                &[Dir("usr/lib/"), Symlink("lib", "usr/lib")],
                &[File("lib/x", b"x")],
            ],
            &[E::File("usr/lib/x", b"x"), E::Symlink("lib", "usr/lib")],
        ),
        (
            "whiteout through a symlinked parent",
            &[
                &[
                    Dir("usr/lib/"),
                    File("usr/lib/x", b"x"),
                    Symlink("lib", "usr/lib"),
                ],
                &[File("lib/.wh.x", b"")],
            ],
            &[E::Absent("usr/lib/x"), E::Symlink("lib", "usr/lib")],
        ),
        (
            "`../` traversal stays inside the root",
            &[&[File("../../etc/evil", b"e"), File("a/../../b", b"b")]],
            &[E::File("etc/evil", b"e"), E::File("b", b"b")],
        ),
        (
            "absolute paths start at the root",
            &[&[File("/etc/abs", b"a"), File("./rel", b"r")]],
            &[E::File("etc/abs", b"a"), E::File("rel", b"r")],
        ),
        (
            "an absolute symlink cannot escape",
            &[
                &[Symlink("tmp/link", "/outside")],
                &[File("tmp/link/f", b"f")],
            ],
            &[
                E::File("outside/f", b"f"),
                E::Symlink("tmp/link", "/outside"),
            ],
        ),
        (
            "a relative symlink cannot escape",
            &[
                &[Symlink("a/up", "../../../../..")],
                &[File("a/up/etc/y", b"y")],
            ],
            &[E::File("etc/y", b"y")],
        ),
        (
            "a hard link climbing out resolves inside",
            &[&[
                File("etc/passwd", b"root"),
                HardLink("x", "../../../etc/passwd"),
            ]],
            &[E::SameNode("etc/passwd", "x")],
        ),
        (
            "a root entry sets the root's metadata",
            &[&[Dir("./"), File("f", b"f")]],
            &[E::File("f", b"f")],
        ),
    ];
    for (case, layers, expectations) in cases {
        let tree = build(layers).unwrap_or_else(|error| panic!("{case}: {error}"));
        for expect in *expectations {
            check(&tree, expect, case);
        }
    }
}

#[test]
fn large_contents_stream_through_the_arena() {
    let big: &'static [u8] = Vec::leak((0..300_000u32).map(|i| (i * 7 % 256) as u8).collect());
    let tree = build(&[&[Item::File("big", big)]]).unwrap();
    check(&tree, &Expect::File("big", big), "large file");
}

#[test]
fn hostile_layers_are_errors_naming_layer_and_entry() {
    use Item::*;
    type Matcher = fn(&LayerError) -> bool;
    let cases: &[(&str, &[u8], Matcher, &str)] = &[
        (
            "hard link to nothing",
            &layer(&[HardLink("link", "missing")]),
            |e| matches!(e, LayerError::HardLinkTargetMissing { .. }),
            "`link` is a hard link to `missing`",
        ),
        (
            "hard link to a directory",
            &layer(&[Dir("d/"), HardLink("link", "d")]),
            |e| {
                matches!(
                    e,
                    LayerError::Placement {
                        source: TreeError::HardLinkToDirectory { .. },
                        ..
                    }
                )
            },
            "entry `link`",
        ),
        (
            "a path through a file",
            &layer(&[File("f", b"f"), File("f/x", b"x")]),
            |e| {
                matches!(
                    e,
                    LayerError::Placement {
                        source: TreeError::NotADirectory { .. },
                        ..
                    }
                )
            },
            "entry `f/x`",
        ),
        (
            "a symlink loop",
            &layer(&[Symlink("a", "b"), Symlink("b", "a"), File("a/x", b"x")]),
            |e| {
                matches!(
                    e,
                    LayerError::Placement {
                        source: TreeError::SymlinkLoop { .. },
                        ..
                    }
                )
            },
            "entry `a/x`",
        ),
        (
            "a header claiming a terabyte",
            &layer(&[Lying("huge", 1 << 40, b"short")]),
            |e| {
                matches!(
                    e,
                    LayerError::Truncated {
                        expected: 1_099_511_627_776,
                        ..
                    }
                )
            },
            "entry `huge` should hold 1099511627776 bytes",
        ),
        (
            "a stream truncated inside contents",
            &layer(&[File("f", &[b'x'; 4000])])[..1500],
            |e| matches!(e, LayerError::Truncated { .. }),
            "entry `f`",
        ),
        (
            "a stream truncated inside a header",
            &layer(&[File("f", b"x"), File("g", b"y")])[..1300],
            |e| matches!(e, LayerError::Stream { .. }),
            "the stream is truncated or corrupt",
        ),
    ];
    for (case, stream, matcher, message) in cases {
        for compressed in [false, true] {
            let stream = if compressed {
                gzip(stream)
            } else {
                stream.to_vec()
            };
            let error = apply(&mut Tree::new(0), &stream).expect_err(case);
            assert!(matcher(&error), "{case}: unexpected error {error:?}");
            let text = error.to_string();
            assert!(
                text.contains("sha256:test-layer"),
                "{case}: `{text}` names no layer"
            );
            assert!(text.contains(message), "{case}: `{text}` lacks `{message}`");
        }
    }
}

#[test]
fn corrupt_and_truncated_gzip_are_stream_errors_with_their_cause() {
    let compressed = gzip(&layer(&[Item::File("f", &[b'z'; 10_000])]));
    let mut corrupt = compressed.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    corrupt[middle + 1] ^= 0xff;
    let truncated = &compressed[..compressed.len() - 10];
    for (case, stream) in [("corrupt", &corrupt[..]), ("truncated", truncated)] {
        let error = apply(&mut Tree::new(0), stream).expect_err(case);
        assert!(
            matches!(
                error,
                LayerError::Stream { .. }
                    | LayerError::ContentsStream { .. }
                    | LayerError::Truncated { .. }
            ),
            "{case}: {error:?}"
        );
        let text = chain(&error);
        assert!(text.contains("sha256:test-layer"), "{case}: {text}");
        assert!(
            !text.contains("TMPDIR"),
            "{case}: a bad stream is not a storage problem: {text}"
        );
    }
    let error = apply(&mut Tree::new(0), truncated).unwrap_err();
    assert!(
        chain(&error).ends_with("pull it again: incomplete deflate stream"),
        "the cause is shown: {}",
        chain(&error)
    );
}

#[test]
fn diff_id_is_checked_on_the_uncompressed_stream() {
    let plain = layer(&[Item::File("f", b"contents")]);
    let compressed = gzip(&plain);
    let right = diff_id(&plain);
    let wrong = diff_id(b"something else");
    let with = |diff_id: Option<&str>, compression| {
        let layer = Layer {
            digest: "sha256:blob",
            compression,
            diff_id,
        };
        layer.apply(&mut Tree::new(0), &compressed[..])
    };
    with(Some(&right), Compression::Gzip).unwrap();
    with(None, Compression::Detect).unwrap();
    let error = with(Some(&wrong), Compression::Detect).unwrap_err();
    assert!(
        matches!(&error, LayerError::DiffIdMismatch { expected, actual, .. } if *expected == wrong && *actual == right),
        "{error:?}"
    );
    assert!(error.to_string().contains("layer sha256:blob"), "{error}");
    assert!(matches!(
        with(Some("sha512:abc"), Compression::Detect).unwrap_err(),
        LayerError::DiffIdAlgorithm { .. }
    ));
}

#[test]
fn plain_and_zstd_layers_apply_like_gzip() {
    let plain = layer(&[Item::File("etc/os-release", b"ID=test\n")]);
    let zstd = zstd::encode_all(&plain[..], 3).unwrap();
    for (name, stream, compression) in [
        ("plain", &plain, Compression::Detect),
        ("zstd detected", &zstd, Compression::Detect),
        ("zstd by media type", &zstd, Compression::Zstd),
    ] {
        let mut tree = Tree::new(0);
        let layer = Layer {
            digest: "sha256:x",
            compression,
            diff_id: Some(&diff_id(&plain)),
        };
        layer
            .apply(&mut tree, &stream[..])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check(&tree, &Expect::File("etc/os-release", b"ID=test\n"), name);
    }
}

/// A layer's error for `tar` (gzip-compressed), with its causes.
fn failure(tar: &[u8]) -> (LayerError, String) {
    let mut tree = Tree::new(0);
    let error = apply(&mut tree, &gzip(tar)).unwrap_err();
    let text = chain(&error);
    assert!(text.contains("sha256:test-layer"), "{text} names no layer");
    assert!(
        text.len() < 1000,
        "a hostile path is shown shortened: {text}"
    );
    (error, text)
}

#[test]
fn paths_beyond_linuxs_limits_are_errors_naming_the_limit() {
    // The defect's layer: one path 100,000 directories deep, a few hundred
    // bytes compressed; applied, it made a 10 GB tar.
    let deep = "d/".repeat(100_000);
    let bomb = Raw::default().dir(&deep).finish();
    let (error, text) = failure(&bomb);
    assert!(
        matches!(
            error,
            LayerError::Placement {
                source: TreeError::PathTooLong {
                    length: 200_000,
                    ..
                },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(text.contains("PATH_MAX"), "{text}");

    let longest = "d/".repeat(2047) + "f";
    assert_eq!(longest.len(), 4095);
    let mut tree = Tree::new(0);
    apply(&mut tree, &Raw::default().file(&longest, b"deep").finish()).unwrap();
    check(
        &tree,
        &Expect::File(Box::leak(longest.into()), b"deep"),
        "longest path",
    );

    let gnu_long_name = {
        let name = "g/".repeat(2048) + "\0";
        let mut long = header("././@LongLink", tar::EntryType::GNULongName, 0o644, 0);
        long.set_size(name.len() as u64);
        Raw::default()
            .entry(long, name.as_bytes())
            .entry(header("short", tar::EntryType::Regular, 0o644, 0), b"")
            .finish()
    };
    let (error, _) = failure(&gnu_long_name);
    assert!(
        matches!(
            error,
            LayerError::Placement {
                source: TreeError::PathTooLong { length: 4096, .. },
                ..
            }
        ),
        "GNU long name: {error:?}"
    );

    let long_component = format!("a/{}/b", "n".repeat(256));
    let (error, text) = failure(&Raw::default().file(&long_component, b"").finish());
    assert!(
        matches!(
            error,
            LayerError::Placement {
                source: TreeError::NameTooLong { length: 256, .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(text.contains("NAME_MAX"), "{text}");

    let long_target = "t/".repeat(2048);
    let symlink = Raw::default()
        .pax(&[("linkpath", long_target.as_bytes())])
        .symlink("link", "x")
        .finish();
    let (error, text) = failure(&symlink);
    assert!(
        matches!(
            error,
            LayerError::LinkTarget {
                source: TreeError::PathTooLong { length: 4096, .. },
                ..
            }
        ),
        "symlink target: {error:?}"
    );
    assert!(text.contains("entry `link`"), "{text}");

    let hard_link = Raw::default()
        .pax(&[("linkpath", format!("x/{}", "n".repeat(300)).as_bytes())])
        .link(tar::EntryType::Link, "link", "x")
        .finish();
    let (error, _) = failure(&hard_link);
    assert!(
        matches!(
            error,
            LayerError::LinkTarget {
                source: TreeError::NameTooLong { length: 300, .. },
                ..
            }
        ),
        "hard link target: {error:?}"
    );
}

#[test]
fn symlinks_cannot_take_an_entry_deeper_than_path_max() {
    let half = "d/".repeat(1500);
    let deeper = Raw::default()
        .dir(&half)
        .symlink("s", "d/d/d/d/d/d/d/d/d/d")
        .pax(&[("linkpath", half.as_bytes())])
        .symlink("s", "x")
        .file(&format!("s/{half}f"), b"")
        .finish();
    let (error, text) = failure(&deeper);
    assert!(
        matches!(
            error,
            LayerError::Placement {
                source: TreeError::TooDeep { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(text.contains("PATH_MAX"), "{text}");
}

#[test]
fn symlink_resolution_follows_40_links_and_no_more() {
    for (hops, resolves) in [(40, true), (41, false)] {
        let mut raw = Raw::default().dir("d");
        for hop in 0..hops {
            let target = if hop + 1 == hops {
                "d".to_owned()
            } else {
                format!("l{}", hop + 1)
            };
            raw = raw.symlink(&format!("l{hop}"), &target);
        }
        let tar = raw.file("l0/f", b"reached").finish();
        let mut tree = Tree::new(0);
        let result = apply(&mut tree, &tar);
        if resolves {
            result.unwrap_or_else(|e| panic!("{hops} hops: {e}"));
            check(&tree, &Expect::File("d/f", b"reached"), "40 hops");
        } else {
            let error = result.unwrap_err();
            assert!(
                matches!(
                    error,
                    LayerError::Placement {
                        source: TreeError::SymlinkLoop { .. },
                        ..
                    }
                ),
                "{hops} hops: {error:?}"
            );
            assert!(chain(&error).contains("more than 40 symbolic links"));
        }
    }
}

/// The contents of the sparse file the sparse tests write: 4096 bytes,
/// `ABCDE` at 1000 and `XYZ` at 2000, zeros before, between and after.
fn sparse_contents() -> Vec<u8> {
    let mut contents = vec![0; 4096];
    contents[1000..1005].copy_from_slice(b"ABCDE");
    contents[2000..2003].copy_from_slice(b"XYZ");
    contents
}

/// GNU tar's format 1.0 map, padded to its 512-byte block.
fn map_block(map: &str) -> Vec<u8> {
    let mut block = map.as_bytes().to_vec();
    block.resize(block.len().div_ceil(512) * 512, 0);
    block
}

/// Sparse files in every format, and the contents each holds.
fn sparse_layers() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let data = b"ABCDEXYZ";
    let format_0_0 = Raw::default()
        .pax(&[
            ("GNU.sparse.size", b"4096"),
            ("GNU.sparse.numblocks", b"3"),
            ("GNU.sparse.offset", b"1000"),
            ("GNU.sparse.numbytes", b"5"),
            ("GNU.sparse.offset", b"2000"),
            ("GNU.sparse.numbytes", b"3"),
            ("GNU.sparse.offset", b"4096"),
            ("GNU.sparse.numbytes", b"0"),
        ])
        .file("sparse", data)
        .finish();
    let format_0_1 = Raw::default()
        .pax(&[
            ("GNU.sparse.major", b"0"),
            ("GNU.sparse.minor", b"1"),
            ("GNU.sparse.size", b"4096"),
            ("GNU.sparse.numblocks", b"3"),
            ("GNU.sparse.map", b"1000,5,2000,3,4096,0"),
        ])
        .file("sparse", data)
        .finish();
    let mut stored = map_block("3\n1000\n5\n2000\n3\n4096\n0\n");
    stored.extend_from_slice(data);
    let format_1_0 = Raw::default()
        .pax(&[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"sparse"),
            ("GNU.sparse.realsize", b"4096"),
        ])
        .file("GNUSparseFile.4242/sparse", &stored)
        .finish();
    // The old GNU header stores every segment but the last in whole
    // 512-byte blocks: 512 bytes at 1024, `XYZ` at 3000.
    let mut old_data = vec![b'a'; 512];
    old_data.extend_from_slice(b"XYZ");
    let mut old_contents = vec![0; 4096];
    old_contents[1024..1536].copy_from_slice(&old_data[..512]);
    old_contents[3000..3003].copy_from_slice(b"XYZ");
    let old_gnu = {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"sparse");
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(MTIME);
        header.set_size(old_data.len() as u64);
        let gnu = header.as_gnu_mut().unwrap();
        for (slot, (offset, length)) in [(1024, 512), (3000, 3), (4096, 0)].into_iter().enumerate()
        {
            gnu.sparse[slot].set_offset(offset);
            gnu.sparse[slot].set_length(length);
        }
        gnu.set_real_size(4096);
        Raw::default().entry(header, &old_data).finish()
    };
    vec![
        ("PAX 0.0", format_0_0, sparse_contents()),
        ("PAX 0.1", format_0_1, sparse_contents()),
        ("PAX 1.0", format_1_0, sparse_contents()),
        ("old GNU", old_gnu, old_contents),
    ]
}

#[test]
fn gnu_sparse_files_apply_with_their_real_name_and_size() {
    for (format, tar, expected) in sparse_layers() {
        let mut tree = Tree::new(0);
        apply(&mut tree, &gzip(&tar)).unwrap_or_else(|e| panic!("{format}: {}", chain(&e)));
        check(&tree, &Expect::File("sparse", Vec::leak(expected)), format);
        check(&tree, &Expect::Owner("sparse", 0o644, 0, 0), format);
        assert_eq!(tree.walk().count(), 1, "{format}: only the file itself");
    }
}

#[test]
fn malformed_sparse_maps_are_errors() {
    let map = |map: &str, stored: &[u8]| {
        Raw::default()
            .pax(&[
                ("GNU.sparse.major", b"0"),
                ("GNU.sparse.minor", b"1"),
                ("GNU.sparse.size", b"4096"),
                (
                    "GNU.sparse.numblocks",
                    (map.split(',').count() / 2).to_string().as_bytes(),
                ),
                ("GNU.sparse.map", map.as_bytes()),
            ])
            .file("sparse", stored)
            .finish()
    };
    let format_1_0 = |map: &[u8]| {
        Raw::default()
            .pax(&[
                ("GNU.sparse.major", b"1"),
                ("GNU.sparse.minor", b"0"),
                ("GNU.sparse.name", b"sparse"),
                ("GNU.sparse.realsize", b"4096"),
            ])
            .file("GNUSparseFile.1/sparse", map)
            .finish()
    };
    let cases = [
        (
            "out of order",
            map("2000,3,1000,5", b"XYZABCDE"),
            "out of order",
        ),
        (
            "overlapping",
            map("1000,5,1002,3", b"ABCDEXYZ"),
            "out of order or overlapping",
        ),
        (
            "beyond the real size",
            map("4000,200", &[1; 200]),
            "beyond the real size 4096",
        ),
        (
            "more data than mapped",
            map("0,3", b"ABCD"),
            "places 3 bytes of data but the entry stores 4",
        ),
        (
            "an offset overflowing",
            map("18446744073709551615,1", b"A"),
            "ends beyond 2^64",
        ),
        (
            "a count that overflows",
            format_1_0(&map_block("18446744073709551615\n")),
            "declares 18446744073709551615 segments",
        ),
        (
            "a count not a number",
            format_1_0(&map_block("-1\n")),
            "is not a decimal number",
        ),
        (
            "a map cut short",
            format_1_0(b"2\n0\n1\n"),
            "ends inside its sparse map",
        ),
        (
            "holes beyond the limit",
            Raw::default()
                .pax(&[
                    ("GNU.sparse.size", b"5368709120"),
                    ("GNU.sparse.numblocks", b"0"),
                    ("GNU.sparse.map", b""),
                ])
                .file("sparse", b"")
                .finish(),
            "more than 4294967296 bytes of holes",
        ),
    ];
    for (case, tar, message) in cases {
        let (error, text) = failure(&tar);
        assert!(
            matches!(error, LayerError::Sparse { .. } | LayerError::Holes { .. }),
            "{case}: {error:?}"
        );
        assert!(text.contains("entry `sparse`"), "{case}: {text}");
        assert!(text.contains(message), "{case}: `{text}` lacks `{message}`");
    }
}

//! Properties over generated inputs (proptest), where a structured generator
//! reaches further than byte mutation: sequences of layer entries, trees
//! round-tripped through tar, gzip streams of any length and thread count.

#[path = "../fuzz/src/invariants.rs"]
mod invariants;

use std::collections::HashMap;
use std::io::{Read, Write};

use flate2::read::MultiGzDecoder;
use ossify::tree::layer::Layer;
use ossify::tree::{Compression, Device, Kind, Metadata, NodeId, Tree};
use ossify::write::gzip;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const MTIME: u64 = 1_700_000_000;

/// A path made of names, `.`, `..`, empty components, whiteout names and
/// a name that lower entries may make a symlink, absolute or not.
fn hostile_path() -> impl Strategy<Value = String> {
    let component = prop::sample::select(vec![
        "a",
        "b",
        "c",
        "..",
        ".",
        "",
        "link",
        ".wh.a",
        ".wh.link",
        ".wh..wh..opq",
    ]);
    (any::<bool>(), prop::collection::vec(component, 1..5)).prop_map(|(absolute, parts)| {
        let path = parts.join("/");
        if absolute { format!("/{path}") } else { path }
    })
}

/// One entry of a layer as a tar header states it.
#[derive(Debug, Clone)]
enum LayerEntry {
    Dir(String),
    File(String, Vec<u8>),
    Symlink(String, String),
    HardLink(String, String),
    Fifo(String),
}

fn layer_entry() -> impl Strategy<Value = LayerEntry> {
    prop_oneof![
        hostile_path().prop_map(LayerEntry::Dir),
        (hostile_path(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(path, data)| LayerEntry::File(path, data)),
        (hostile_path(), hostile_path()).prop_map(|(path, to)| LayerEntry::Symlink(path, to)),
        (hostile_path(), hostile_path()).prop_map(|(path, to)| LayerEntry::HardLink(path, to)),
        hostile_path().prop_map(LayerEntry::Fifo),
    ]
}

/// A plain tar holding `entries`, names written verbatim.
fn layer_tar(entries: &[LayerEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (path, kind, link, data): (&str, _, &str, &[u8]) = match entry {
            LayerEntry::Dir(path) => (path, tar::EntryType::Directory, "", b""),
            LayerEntry::File(path, data) => (path, tar::EntryType::Regular, "", data),
            LayerEntry::Symlink(path, to) => (path, tar::EntryType::Symlink, to, b""),
            LayerEntry::HardLink(path, to) => (path, tar::EntryType::Link, to, b""),
            LayerEntry::Fifo(path) => (path, tar::EntryType::Fifo, "", b""),
        };
        let mut header = tar::Header::new_ustar();
        let old = header.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o755);
        header.set_mtime(MTIME);
        header.set_size(data.len() as u64);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn apply(tree: &mut Tree, compression: Compression, blob: &[u8]) -> Option<()> {
    apply_checked(tree, compression, blob, None)
}

/// [`apply`], checking the uncompressed stream against `diff_id`.
fn apply_checked(
    tree: &mut Tree,
    compression: Compression,
    blob: &[u8],
    diff_id: Option<&str>,
) -> Option<()> {
    let layer = Layer {
        digest: "sha256:generated",
        compression,
        diff_id,
    };
    layer.apply(tree, blob).ok()
}

fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = gzip::encoder(Vec::new());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A node as a comparison sees it: kind with contents, metadata, and which
/// hard-link group it belongs to (the order its node was first met).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: Vec<u8>,
    kind: String,
    contents: Vec<u8>,
    metadata: Metadata,
    group: usize,
}

fn seen(tree: &Tree) -> Vec<Seen> {
    let mut groups: HashMap<NodeId, usize> = HashMap::new();
    tree.walk()
        .map(|entry| {
            let next = groups.len();
            let group = *groups.entry(entry.id).or_insert(next);
            let mut contents = Vec::new();
            let kind = match &entry.node.kind {
                Kind::File(blob) => {
                    tree.contents(blob).read_to_end(&mut contents).unwrap();
                    "file".to_owned()
                }
                Kind::Symlink(target) => {
                    contents = target.clone();
                    "symlink".to_owned()
                }
                Kind::Directory(_) => "directory".to_owned(),
                other => format!("{other:?}"),
            };
            Seen {
                path: entry.path,
                kind,
                contents,
                metadata: entry.node.metadata.clone(),
                group,
            }
        })
        .collect()
}

/// A node to put in a tree at a path of ordinary names.
#[derive(Debug, Clone)]
enum TreeEntry {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Char(u32, u32),
    Fifo,
    /// Another name for the node of an earlier entry (by index, wrapped).
    HardLink(usize),
}

fn tree_entry() -> impl Strategy<Value = TreeEntry> {
    prop_oneof![
        Just(TreeEntry::Dir),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(TreeEntry::File),
        prop::collection::vec(pax_byte(), 1..200).prop_map(TreeEntry::Symlink),
        // Linux's ranges: 12-bit majors, 20-bit minors.
        (0u32..1 << 12, 0u32..1 << 20).prop_map(|(major, minor)| TreeEntry::Char(major, minor)),
        Just(TreeEntry::Fifo),
        any::<usize>().prop_map(TreeEntry::HardLink),
    ]
}

/// A byte of a value that may go into a PAX record: not NUL, and not a
/// newline, which the tar reader splits records at (a layer holding one is
/// refused, `LayerError::UnreadablePax`).
fn pax_byte() -> impl Strategy<Value = u8> {
    (1u8..=254).prop_map(|byte| if byte == b'\n' { 255 } else { byte })
}

fn ordinary_path() -> impl Strategy<Value = String> {
    let long = "l".repeat(120);
    let name = prop::sample::select(vec![
        "a".to_owned(),
        "b".to_owned(),
        "dir".to_owned(),
        "with space".to_owned(),
        "ünïcode".to_owned(),
        long,
    ]);
    prop::collection::vec(name, 1..4).prop_map(|parts| parts.join("/"))
}

fn metadata() -> impl Strategy<Value = Metadata> {
    let xattrs = prop::collection::btree_map(
        prop::sample::select(vec!["user.a".to_owned(), "security.capability".to_owned()]),
        prop::collection::vec(pax_byte(), 0..16),
        0..2,
    );
    (0u32..0o10000, any::<u32>(), any::<u32>(), 0..=MTIME, xattrs).prop_map(
        |(mode, uid, gid, mtime, xattrs)| Metadata {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        },
    )
}

/// A tree of the generated entries; entries that cannot go where they are
/// asked to (under a file, say) are left out.
fn build_tree(entries: &[(String, TreeEntry, Metadata)]) -> Tree {
    let mut tree = Tree::new(MTIME);
    let mut placed = Vec::new();
    for (path, entry, metadata) in entries {
        let kind = match entry {
            TreeEntry::Dir => Kind::directory(),
            TreeEntry::File(data) => Kind::File(tree.store_bytes(data).unwrap()),
            TreeEntry::Symlink(target) => Kind::Symlink(target.clone()),
            TreeEntry::Char(major, minor) => Kind::CharDevice(Device {
                major: *major,
                minor: *minor,
            }),
            TreeEntry::Fifo => Kind::Fifo,
            TreeEntry::HardLink(index) => {
                // Only to nodes still in the tree: later entries may have
                // replaced earlier ones.
                let live: Vec<NodeId> = placed
                    .iter()
                    .copied()
                    .filter(|&id| tree.node(id).links() > 0)
                    .collect();
                if let Some(&target) = live.get(index % live.len().max(1)) {
                    let _ = tree.hard_link(path, target);
                }
                continue;
            }
        };
        let is_directory = matches!(kind, Kind::Directory(_));
        if let Ok(id) = tree.insert(path, kind, metadata.clone())
            && !is_directory
        {
            placed.push(id);
        }
    }
    tree
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any sequence of layers, whatever their entries' paths, link targets
    /// and whiteouts, leaves a tree whose names are all plain names, whose
    /// every path resolves to its node, with exact link counts and no
    /// cycles; the tar written from it stays inside its directory.
    #[test]
    fn layers_keep_the_tree_well_formed(
        layers in prop::collection::vec(prop::collection::vec(layer_entry(), 0..12), 1..4)
    ) {
        let mut tree = Tree::new(MTIME);
        for entries in &layers {
            apply(&mut tree, Compression::None, &layer_tar(entries));
            invariants::check_tree(&tree);
        }
        let archive = ossify::write::tar::write(&tree, Vec::new(), MTIME, &[]).unwrap();
        invariants::check_tar(&archive);
    }

    /// A layer reads the same, and hashes to the digest of its tar, plain,
    /// gzip- or zstd-compressed, with the compression detected.
    #[test]
    fn compression_is_detected_and_transparent(entries in prop::collection::vec(layer_entry(), 0..12)) {
        let tar = layer_tar(&entries);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&tar)));
        let mut plain = Tree::new(MTIME);
        let plain_applied = apply_checked(&mut plain, Compression::Detect, &tar, Some(&digest));
        for blob in [gzip_bytes(&tar), zstd::encode_all(&tar[..], 3).unwrap()] {
            let mut tree = Tree::new(MTIME);
            let applied = apply_checked(&mut tree, Compression::Detect, &blob, Some(&digest));
            prop_assert_eq!(applied, plain_applied);
            prop_assert_eq!(seen(&tree), seen(&plain));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// A tree written as tar and applied as a layer onto an empty tree is
    /// the same tree: paths, kinds, contents, modes, owners, times, xattrs
    /// and hard links.
    #[test]
    fn a_tree_written_as_tar_reads_back_the_same(
        entries in prop::collection::vec((ordinary_path(), tree_entry(), metadata()), 0..16)
    ) {
        let tree = build_tree(&entries);
        let archive = ossify::write::tar::write(&tree, Vec::new(), MTIME, &[]).unwrap();
        let mut read_back = Tree::new(MTIME);
        let applied = Layer {
            digest: "sha256:round-trip",
            compression: Compression::None,
            diff_id: None,
        }
        .apply(&mut read_back, &archive[..]);
        prop_assert!(applied.is_ok(), "{:?}", applied);
        prop_assert_eq!(seen(&read_back), seen(&tree));
    }
}

/// Bytes of `len` with runs and noise, so that deflate finds matches
/// across block boundaries and literals too.
fn compressible(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let run = (state % 64) as usize + 1;
        let byte = (state >> 32) as u8;
        let take = run.min(len - bytes.len());
        if state.is_multiple_of(3) {
            bytes.extend(std::iter::repeat_n(byte, take));
        } else {
            bytes.extend((0..take).map(|i| byte.wrapping_add((i as u8).wrapping_mul(7))));
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The gzip encoder's output decodes to its input for any input length
    /// (across its 1 MiB blocks), any number of threads and any sizes of
    /// writes, and is the same bytes whatever the thread count.
    #[test]
    fn gzip_output_decodes_to_its_input_for_any_thread_count(
        len in prop_oneof![0usize..4096, 0usize..(3 << 20) + 4096],
        seed in any::<u64>(),
        threads in 1usize..9,
        write_size in 1usize..(1 << 20) + 100,
    ) {
        let input = compressible(len, seed);
        let mut encoder = gzip::Encoder::with_threads(Vec::new(), threads);
        for chunk in input.chunks(write_size) {
            encoder.write_all(chunk).unwrap();
        }
        let output = encoder.finish().unwrap();
        let mut decoded = Vec::new();
        MultiGzDecoder::new(&output[..]).read_to_end(&mut decoded).unwrap();
        prop_assert!(decoded == input, "decoded {} bytes of {}", decoded.len(), input.len());
        let mut single = gzip::Encoder::with_threads(Vec::new(), 1);
        single.write_all(&input).unwrap();
        prop_assert!(single.finish().unwrap() == output, "the bytes depend on the thread count");
    }
}

//! The fuzz targets: each hands untrusted bytes to one of ossify's parsers
//! through its public entry point and checks what must hold whatever the
//! bytes are. A target returns normally when the parser accepted or
//! refused the input as it should, and panics (or aborts, past the memory
//! bound) when an invariant breaks. libFuzzer runs them for the soaks
//! (`fuzz/src/bin/fuzz.rs`); `tests/fuzz_corpus.rs` replays the corpus
//! through them in every `cargo test`.
//!
//! Invariants, for every target: no panic; no file written outside the
//! directory the parser was given; termination (libFuzzer's `-timeout`, the
//! replay's watchdog); memory within [`MEMORY_BOUND`] of Rust heap.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use ossify::assemble::ids::IdMap;
use ossify::assemble::runtime_config::{self, BundleLocation, ImageConfig};
use ossify::config::{self, Image, Source};
use ossify::image::{Options, Platform, Policy, Reference, Resolver, Store};
use ossify::tree::layer::Layer;
use ossify::tree::{Compression, Kind, Metadata, Tree};
use ossify::write::contents::Contents;
use ossify::write::grub::{self, GrubPcFiles};
use ossify::write::uki::{Uki, UkiContents};

use crate::invariants::{check_tar, check_tree};
use crate::memory;

/// Rust heap one input may take. Inputs are at most 64 KiB (`-max_len`),
/// and every legitimate use of that is far below this.
pub const MEMORY_BOUND: usize = 512 << 20;

/// A parser under fuzzing.
pub struct Target {
    /// Its name: the corpus is `testdata/fuzz/NAME/`.
    pub name: &'static str,
    /// Runs one input, panicking when an invariant breaks.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "layer_tar",
        run: layer_tar,
    },
    Target {
        name: "layer_stream",
        run: layer_stream,
    },
    Target {
        name: "oci_image",
        run: oci_image,
    },
    Target {
        name: "archive_import",
        run: archive_import,
    },
    Target {
        name: "config",
        run: config,
    },
    Target {
        name: "uki_stub",
        run: uki_stub,
    },
    Target {
        name: "grub_core",
        run: grub_core,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// Runs `input` through `target` within the memory bound.
pub fn run(target: &Target, input: &[u8]) {
    memory::bounded(MEMORY_BOUND, || (target.run)(input));
}

const MTIME: u64 = 1_700_000_000;

/// A plain tar layer applied over a lower layer that has something for
/// every kind of entry to meet: directories to merge with or make opaque,
/// files to white out, symlinks to `/`, `..` and a loop to resolve through,
/// a hard link. The tree must stay well formed, and the tar ossify writes
/// from it must stay inside the directory it is extracted into.
fn layer_tar(input: &[u8]) {
    let mut tree = lower_layer();
    apply(&mut tree, Compression::None, input);
}

/// A layer blob as a registry serves it, compressed or not: the magic
/// number picks the decoder (gzip, possibly several members; zstd).
fn layer_stream(input: &[u8]) {
    let mut tree = Tree::new(MTIME);
    apply(&mut tree, Compression::Detect, input);
}

fn apply(tree: &mut Tree, compression: Compression, input: &[u8]) {
    let layer = Layer {
        digest: "sha256:fuzz",
        compression,
        diff_id: None,
    };
    // A refused layer leaves part of itself applied; the tree must still
    // be well formed (the build drops it, but nothing may break first).
    let _ = layer.apply(tree, input);
    check_tree(tree);
    let archive = ossify::write::tar::write(tree, Vec::new(), MTIME, &[])
        .expect("a well-formed tree without sockets writes as tar");
    check_tar(&archive);
}

fn lower_layer() -> Tree {
    let mut tree = Tree::new(MTIME);
    let dir = |mode| (Kind::directory(), Metadata::new(mode, MTIME));
    for path in ["etc", "usr/lib", "var/empty", "opaque/sub"] {
        let (kind, metadata) = dir(0o755);
        tree.insert(path, kind, metadata).expect("a fresh path");
    }
    for (path, contents) in [
        ("etc/passwd", &b"root:x:0:0::/root:/bin/sh\n"[..]),
        ("usr/lib/libc.so", b"\x7fELF"),
        ("opaque/sub/file", b"lower"),
        ("opaque/file", b"lower"),
    ] {
        let blob = tree.store_bytes(contents).expect("memory for a few bytes");
        tree.insert(path, Kind::File(blob), Metadata::new(0o644, MTIME))
            .expect("a fresh path");
    }
    for (path, target) in [
        ("lib", "usr/lib"),
        ("root", "/"),
        ("up", "../.."),
        ("loop", "loop"),
        ("etc/dangling", "/missing/dir"),
    ] {
        tree.insert(
            path,
            Kind::Symlink(target.as_bytes().to_vec()),
            Metadata::new(0o777, MTIME),
        )
        .expect("a fresh path");
    }
    let passwd = tree.lookup("etc/passwd").expect("just inserted");
    tree.hard_link("etc/passwd-", passwd).expect("a fresh path");
    tree
}

/// OCI JSON: an image config, a manifest and optionally an index, in that
/// order, separated by lines `----`. In the manifest `@config@` and
/// `@layer@`, in the index `@manifest@`, stand for the digests of the
/// config, of an empty layer and of the manifest, which a fuzzer could
/// never compute. The documents go into a cache as blobs and are resolved
/// offline for linux/amd64, as a build resolves them; then the cache lists
/// and exports the image, and the config's label becomes a container's
/// runtime config, as assembly makes it.
fn oci_image(input: &[u8]) {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let parts = split(input, b"\n----\n");
    let config = parts[0];
    let manifest = parts.get(1).copied().unwrap_or_default();
    let index = parts.get(2);
    let write = |bytes: &[u8]| {
        store
            .write_blob(bytes)
            .expect("the sandbox takes a blob")
            .to_string()
    };
    let empty_layer = write(&[0; 1024]);
    let config = write(config);
    let manifest = write(&replace(
        &replace(manifest, b"@config@", config.as_bytes()),
        b"@layer@",
        empty_layer.as_bytes(),
    ));
    let root = match index {
        Some(index) => write(&replace(index, b"@manifest@", manifest.as_bytes())),
        None => manifest,
    };
    let reference: Reference = format!("fuzz.invalid/image@{root}")
        .parse()
        .expect("a pinned reference parses");
    let options = Options {
        policy: Policy::Offline,
        platform: Some(Platform::linux("amd64")),
        ..Options::default()
    };
    let resolved = Resolver::new(store.clone(), options).resolve(std::slice::from_ref(&reference));
    if let Ok(images) = resolved {
        let image = &images.images[0];
        let diff_ids = image.config.rootfs().diff_ids().len();
        assert_eq!(
            image.layers.len(),
            diff_ids,
            "a resolved image has one diff_id per layer"
        );
        container_from_config(image.config.config());
    }
    let _ = store.list();
    export(&store, &reference, &sandbox.path().join("export.tar"));
    sandbox.check(&["export.tar"]);
}

/// Exports `reference` from `store` into the file `path`, whatever comes of
/// it: only what it leaves behind is checked.
fn export(store: &Store, reference: &Reference, path: &Path) {
    if let Ok(mut file) = fs::File::create(path) {
        let _ = store.export(reference, &mut file, path);
    }
}

/// The runtime config of a container run from an image with `config`, as
/// assembly makes it: the image config's `config` object decoded, its
/// `org.mobyproject.config` label parsed and checked.
fn container_from_config<T: serde::Serialize>(config: &T) {
    let Ok(value) = serde_json::to_value(config) else {
        return;
    };
    let Ok(image) = serde_json::from_value::<ImageConfig>(value) else {
        return;
    };
    let container = Image {
        name: "fuzz".to_owned(),
        image: "fuzz.invalid/image".to_owned(),
        settings: Default::default(),
    };
    let location = BundleLocation {
        path: "containers/services/fuzz",
        shared_root: None,
    };
    if let Ok(bundle) =
        runtime_config::runtime_config(&container, &image, &IdMap::default(), location)
    {
        bundle.config_json();
        bundle.runtime_json();
    }
}

/// An image archive for `cache import`: an OCI layout tar or a `docker
/// save` tar. The cache may hold only blobs named by their digest, its
/// index and its locks afterwards, never a partial blob; an imported image
/// lists and exports.
fn archive_import(input: &[u8]) {
    let sandbox = Sandbox::new();
    let archive = sandbox.path().join("archive.tar");
    fs::write(&archive, input).expect("the sandbox takes the archive");
    let store = sandbox.store();
    if let Ok(names) = store.import(&archive) {
        let _ = store.list();
        for name in names {
            export(&store, &name, &sandbox.path().join("export.tar"));
        }
    }
    sandbox.check(&["archive.tar", "export.tar"]);
}

/// LinuxKit YAML: up to four files separated by NUL bytes, loaded and
/// merged as `ossify build` loads them, the first also as an image label.
/// Every problem must point into a given file; a configuration that passes
/// its checks must give each container a runtime config or a clean error.
fn config(input: &[u8]) {
    let sources: Vec<Source> = input
        .split(|&byte| byte == 0)
        .take(4)
        .enumerate()
        .map(|(index, text)| Source {
            path: format!("fuzz-{index}.yml").into(),
            text: String::from_utf8_lossy(text).into_owned(),
        })
        .collect();
    let check_positions = |problems: &config::Problems| {
        for problem in &problems.0 {
            let position = &problem.position;
            assert!(
                position.line >= 1 && position.column >= 1,
                "a problem at line {} column {}: {}",
                position.line,
                position.column,
                problem.message
            );
            assert!(
                sources.iter().any(|source| *position.file == source.path),
                "a problem in a file never given: {}",
                position.file.display()
            );
        }
    };
    if let Err(problems) = config::load_label(&sources[0]) {
        check_positions(&problems);
    }
    match config::load(&sources) {
        Ok(loaded) => {
            let ids = IdMap::allocate(&loaded.config);
            let containers = loaded
                .config
                .onboot
                .iter()
                .chain(&loaded.config.onshutdown)
                .chain(&loaded.config.services);
            for container in containers {
                let location = BundleLocation {
                    path: "containers/services/fuzz",
                    shared_root: None,
                };
                let _ = runtime_config::runtime_config(
                    &container.value,
                    &ImageConfig::default(),
                    &ids,
                    location,
                );
            }
        }
        Err(problems) => check_positions(&problems),
    }
}

/// A systemd EFI stub for a UKI. A stub accepted must give a UKI exactly
/// as long as it says; one refused is refused with an error.
fn uki_stub(input: &[u8]) {
    let contents = UkiContents {
        osrel: b"ID=fuzz\n",
        cmdline: b"console=ttyS0",
        uname: Some(b"6.1.0"),
        initrd: Contents::Bytes(b"initrd"),
        linux: b"MZ kernel",
    };
    if let Ok(uki) = Uki::new(input, &contents) {
        let size = uki.size();
        let mut written = Counter(0);
        uki.write(&mut written).expect("counting cannot fail");
        assert_eq!(written.0, size, "the UKI's size is what it writes");
    }
}

struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// GRUB's `moddep.lst`, a NUL byte, then `kernel.img` (ELF32), with every
/// module `moddep.lst` names present, built into a core image for a
/// 2047-sector gap. An image built fills whole sectors within the gap.
fn grub_core(input: &[u8]) {
    let (moddep, kernel) = match input.iter().position(|&byte| byte == 0) {
        Some(nul) => (&input[..nul], &input[nul + 1..]),
        None => (input, &[][..]),
    };
    let mut files = BTreeMap::from([
        ("kernel.img".to_owned(), kernel.to_vec()),
        ("moddep.lst".to_owned(), moddep.to_vec()),
        ("diskboot.img".to_owned(), vec![0; grub::SECTOR_SIZE]),
        ("lzma_decompress.img".to_owned(), vec![0; 16]),
    ]);
    let named = String::from_utf8_lossy(moddep);
    let modules = named
        .split(|c: char| c == ':' || c.is_whitespace())
        .chain(grub::MODULES.iter().copied())
        .filter(|name| !name.is_empty());
    for module in modules {
        files.insert(format!("{module}.mod"), module.as_bytes().to_vec());
    }
    let gap = 2047;
    let files = GrubPcFiles::new(files);
    if let Ok(image) = grub::core_image(&files, grub::MODULES, grub::PREFIX, Some("fuzz"), gap) {
        assert_eq!(image.len() % grub::SECTOR_SIZE, 0, "whole sectors");
        assert!(
            image.len() as u64 <= gap * grub::SECTOR_SIZE as u64,
            "the core image fits the gap"
        );
    }
}

/// A temporary directory a target may write into, and the check that it
/// wrote nothing else.
struct Sandbox(tempfile::TempDir);

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox(tempfile::tempdir().expect("a temporary directory for the sandbox"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// A cache in `cache/`.
    fn store(&self) -> Store {
        Store::open(self.path().join("cache")).expect("an empty cache opens")
    }

    /// Fails unless the sandbox holds only `cache/` with a cache's files
    /// and the files in `allowed`.
    fn check(&self, allowed: &[&str]) {
        for entry in read_dir(self.path()) {
            let name = entry.to_string_lossy();
            assert!(
                name == "cache" || allowed.contains(&name.as_ref()),
                "`{name}` was written beside the cache"
            );
        }
        let cache = self.path().join("cache");
        for entry in read_dir(&cache) {
            let name = entry.to_string_lossy();
            assert!(
                matches!(
                    name.as_ref(),
                    "blobs" | "oci-layout" | "index.json" | "index.json.lock" | "gc.lock"
                ),
                "`{name}` was written into the cache"
            );
        }
        for entry in read_dir(&cache.join("blobs")) {
            assert_eq!(entry, "sha256", "the cache holds only sha256 blobs");
        }
        for entry in read_dir(&cache.join("blobs/sha256")) {
            let name = entry.to_string_lossy();
            assert!(
                name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
                "`blobs/sha256/{name}` is not a blob named by its digest"
            );
        }
    }
}

fn read_dir(dir: &Path) -> Vec<std::ffi::OsString> {
    fs::read_dir(dir)
        .expect("the sandbox reads")
        .map(|entry| entry.expect("the sandbox reads").file_name())
        .collect()
}

/// The parts of `bytes` between occurrences of `separator`.
fn split<'a>(bytes: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest
        .windows(separator.len())
        .position(|window| window == separator)
    {
        parts.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    parts.push(rest);
    parts
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    split(bytes, from).join(to)
}

//! Rebuilds that reuse work kept in the cache's `reuse/` (issue 13): the
//! uncompressed layers and the initrd's deflated files. Whatever is kept,
//! damaged, missing or impossible to keep, a build makes the same bytes
//! as a cold one; `cache clean --reuse` forgets the work and keeps the
//! images. Built from the stand-in images of tests/support/synthetic.rs.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::synthetic::{self, BOOT_IMAGE};

/// Formats that read every layer and write a gzip initrd.
const FORMATS: [&str; 4] = ["-f", "kernel+initrd", "-f", "iso-efi"];

/// A scratch directory with the stand-in images in its cache.
struct Scratch {
    dir: tempfile::TempDir,
    cache: PathBuf,
    builds: std::cell::Cell<usize>,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let cache = synthetic::cache(dir.path());
        Scratch {
            dir,
            cache,
            builds: std::cell::Cell::new(0),
        }
    }

    fn reuse(&self) -> PathBuf {
        self.cache.join("reuse")
    }

    /// Builds `config` (examples/hello.yml by default) into a new
    /// directory; returns the digests of what it wrote.
    fn build(&self, config: Option<&Path>) -> String {
        self.build_with(config, &[])
    }

    /// [`Scratch::build`] with `extra` options.
    fn build_with(&self, config: Option<&Path>, extra: &[&str]) -> String {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.yml");
        let config = config.unwrap_or(&example);
        self.builds.set(self.builds.get() + 1);
        let out = self.dir.path().join(format!("out{}", self.builds.get()));
        let mut args = vec!["--arch", "amd64", "--boot-image", BOOT_IMAGE];
        args.extend(FORMATS);
        args.extend(extra);
        let output = support::build_offline(self.dir.path(), &self.cache, &out, &args, &[config]);
        assert!(
            output.status.success(),
            "ossify build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        synthetic::digests(&out)
    }

    /// The files kept under `reuse/<kind>`.
    fn kept(&self, kind: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.reuse().join(kind))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        files
    }

    fn cache_command(&self, args: &[&str]) -> String {
        let mut line = vec!["cache"];
        line.extend(args);
        line.extend(["--cache-dir", self.cache.to_str().unwrap()]);
        let output = support::ossify_in(self.dir.path(), &line);
        assert!(
            output.status.success(),
            "ossify {line:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// Every kept layer is named by the sha256 of its bytes (its diff_id),
/// next to their BLAKE3 digest, which rebuilds check.
fn assert_layers_named_by_digest(kept: &[PathBuf]) {
    let layers: Vec<&PathBuf> = kept.iter().filter(|p| p.extension().is_none()).collect();
    assert_eq!(layers.len() * 2, kept.len(), "{kept:?}");
    for layer in layers {
        let name = layer.file_name().unwrap().to_str().unwrap();
        assert_eq!(support::sha256_file(layer), name, "{}", layer.display());
        let digest = fs::read(layer.with_extension("b3")).unwrap();
        let bytes = fs::read(layer).unwrap();
        assert_eq!(digest, blake3::hash(&bytes).as_bytes(), "{name}");
    }
}

#[test]
fn a_rebuild_reuses_kept_work_and_makes_the_same_bytes() {
    let scratch = Scratch::new();
    let cold = scratch.build(None);
    // Five layers: the kernel's, the init's two, hello's and the boot
    // image's, each with its digest.
    let layers = scratch.kept("layers");
    assert_eq!(layers.len(), 10, "{layers:?}");
    assert_layers_named_by_digest(&layers);
    // Packs of segments (busybox, runc, a module…), one per worker that
    // deflated something, each with its index.
    let segments = scratch.kept("gzip");
    let packs: Vec<&PathBuf> = segments
        .iter()
        .filter(|path| path.extension().unwrap() == "pack")
        .collect();
    assert!(
        !packs.is_empty() && packs.len() * 2 == segments.len(),
        "{segments:?}"
    );
    for pack in &packs {
        assert!(pack.with_extension("idx").is_file(), "{}", pack.display());
    }
    let packed: u64 = packs.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert!(packed > 20_000, "{packed} bytes packed");

    assert_eq!(scratch.build(None), cold);
    // Nothing new was kept: the rebuild found all it needed.
    assert_eq!(scratch.kept("layers"), layers);
    assert_eq!(scratch.kept("gzip"), segments);
}

#[test]
fn damaged_kept_work_is_ignored_and_made_again() {
    let scratch = Scratch::new();
    let cold = scratch.build(None);
    let layers = scratch.kept("layers");
    let segments = scratch.kept("gzip");
    // Each tar alternately with a byte changed (its digest then fails)
    // or with its digest cut short, and the pack and its index damaged.
    let tars = layers.iter().filter(|path| path.extension().is_none());
    let damaged = tars.enumerate().map(|(index, tar)| match index % 2 {
        0 => tar.clone(),
        _ => tar.with_extension("b3"),
    });
    let mut written = Vec::new();
    for (index, path) in damaged.chain(segments.iter().cloned()).enumerate() {
        let mut bytes = fs::read(&path).unwrap();
        if index % 2 == 0 {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x20;
        } else {
            bytes.truncate(bytes.len() - 1);
        }
        fs::write(&path, &bytes).unwrap();
        written.push((path, bytes));
    }
    assert_eq!(scratch.build(None), cold);
    // Damaged layers and digests were replaced by good copies, and no
    // damaged pack or index is left: each was removed, or (when a worker
    // deflated the same files in the same order) made again, whole, under
    // the same name.
    assert_eq!(scratch.kept("layers"), layers);
    assert_layers_named_by_digest(&layers);
    for (path, damaged) in &written {
        assert!(
            fs::read(path).map_or(true, |bytes| bytes != *damaged),
            "{} is still damaged",
            path.display()
        );
    }
    assert_eq!(scratch.build(None), cold);
    assert!(!scratch.kept("gzip").is_empty());
}

#[test]
fn no_reuse_neither_keeps_nor_uses_kept_work() {
    let scratch = Scratch::new();
    let afresh = scratch.build_with(None, &["--no-reuse"]);
    assert!(!scratch.reuse().exists());
    assert_eq!(scratch.build(None), afresh);
    // Kept work, every byte of it wrong, is not read.
    for kind in ["layers", "gzip"] {
        for path in scratch.kept(kind) {
            let len = fs::metadata(&path).unwrap().len() as usize;
            fs::write(&path, vec![0x5a; len]).unwrap();
        }
    }
    let damaged = scratch.kept("layers");
    assert_eq!(scratch.build_with(None, &["--no-reuse"]), afresh);
    for path in &damaged {
        assert!(fs::read(path).unwrap().iter().all(|&b| b == 0x5a));
    }
}

#[test]
fn a_cache_that_cannot_keep_work_still_builds_the_same_bytes() {
    let scratch = Scratch::new();
    // A file where the directory would be: nothing can be kept (as in a
    // read-only cache, which root, running the tests, would write to).
    fs::write(scratch.reuse(), b"not a directory").unwrap();
    let without = scratch.build(None);
    assert!(scratch.reuse().is_file());
    fs::remove_file(scratch.reuse()).unwrap();
    assert_eq!(scratch.build(None), without);
    assert!(scratch.reuse().join("layers").is_dir());
}

#[test]
fn a_rebuild_after_a_changed_file_matches_a_cold_build() {
    let scratch = Scratch::new();
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.yml"))
            .unwrap();
    let changed = example.replace("Built by ossify", "Rebuilt by ossify");
    assert_ne!(changed, example);
    let config = scratch.dir.path().join("changed.yml");
    fs::write(&config, changed).unwrap();

    scratch.build(None);
    let warm = scratch.build(Some(&config));
    scratch.cache_command(&["clean", "--reuse"]);
    assert!(!scratch.reuse().exists());
    assert_eq!(scratch.build(Some(&config)), warm);
}

#[test]
fn cache_rm_forgets_the_kept_layers_of_the_images_removed() {
    let scratch = Scratch::new();
    scratch.build(None);
    let tars = || -> Vec<PathBuf> {
        let kept = scratch.kept("layers");
        kept.into_iter()
            .filter(|path| path.extension().is_none())
            .collect()
    };
    let before = tars();
    assert_eq!(before.len(), 5, "{before:?}");
    // The boot image is the only image with a single layer of its own.
    scratch.cache_command(&["rm", BOOT_IMAGE]);
    let after = tars();
    assert_eq!(after.len(), 4, "{after:?}");
    assert_layers_named_by_digest(&scratch.kept("layers"));
    // A file a build left before keeping it goes too.
    let abandoned = scratch.reuse().join("layers").join(".tmpAbandoned");
    fs::write(&abandoned, b"half a layer").unwrap();
    scratch.cache_command(&["rm", "localhost/ossify-examples/hello:busybox"]);
    assert!(!abandoned.exists());
    assert_eq!(tars().len(), 3);
}

#[test]
fn cache_clean_reuse_keeps_the_images_and_clean_removes_all() {
    let scratch = Scratch::new();
    scratch.build(None);
    assert!(scratch.reuse().is_dir());
    scratch.cache_command(&["clean", "--reuse"]);
    assert!(!scratch.reuse().exists());
    let images = scratch.cache_command(&["ls"]);
    assert_eq!(images.matches("localhost/").count(), 4, "{images}");
    scratch.build(None);
    scratch.cache_command(&["clean"]);
    assert!(!scratch.reuse().exists());
    let images = scratch.cache_command(&["ls"]);
    assert!(!images.contains("localhost/"), "{images}");
}

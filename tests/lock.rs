//! Pinned inputs and checked rebuilds: `ossify lock`, `build --locked` and
//! `--frozen`, `verify --rebuild` and `diff`, from images imported into a
//! cache (and, in the heavy tier, from a registry whose tag moves).

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use ossify::image::Store;
use serde_json::{Value, json};
use support::layer_builder::LayerBuilder;
use support::{LayerBlob, Layout, ossify_in};

/// The image the configs name, unless a test serves it from a registry.
const IMAGE: &str = "localhost/test/base:1";

const CONFIG: &str = "\
init:
  - localhost/test/base:1
files:
  - path: etc/issue
    contents: hello
    mode: \"0644\"
";

/// An image named [`IMAGE`] whose /etc/release says `release`.
fn base_image(release: &str) -> Layout {
    let layer = LayerBuilder::new()
        .dir("etc", 0o755)
        .file("etc/release", release.as_bytes(), 0o644)
        .finish();
    let mut layout = Layout::new();
    let image = layout.image_with_config("amd64", json!({}), &[LayerBlob::gzip(layer)]);
    layout.name(image, IMAGE);
    layout
}

/// A directory with a cache holding release 1 of the image, and the config.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let scratch = Scratch::empty(CONFIG);
        scratch.import("one");
        scratch
    }

    /// An empty cache, and `config`.
    fn empty(config: &str) -> Scratch {
        let scratch = Scratch {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(scratch.config(), config).unwrap();
        scratch
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }

    fn config(&self) -> PathBuf {
        self.path().join("base.yml")
    }

    /// Moves the tag in the cache to an image of `release`.
    fn import(&self, release: &str) {
        Store::open(self.cache())
            .unwrap()
            .import(base_image(release).path())
            .unwrap();
    }

    /// Runs ossify with `args`, then the cache and the config.
    fn run(&self, args: &[&str]) -> Output {
        let mut line = args.to_vec();
        let cache = self.cache();
        let config = self.config();
        line.extend([
            "--cache-dir",
            cache.to_str().unwrap(),
            config.to_str().unwrap(),
        ]);
        ossify_in(self.path(), &line)
    }

    /// `ossify verify --rebuild` of `manifest` with this cache, plus `args`.
    fn rebuild(&self, args: &[&str], manifest: &str) -> Output {
        let cache = self.cache();
        let mut line = vec![
            "verify",
            "--rebuild",
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        line.extend(args);
        line.push(manifest);
        ossify_in(self.path(), &line)
    }

    /// `ossify diff` of the manifests in the output directories `a` and
    /// `b`, plus `args`.
    fn diff(&self, args: &[&str], a: &str, b: &str) -> Output {
        let (a, b) = (
            format!("{a}/base.manifest.json"),
            format!("{b}/base.manifest.json"),
        );
        let mut line = vec!["diff"];
        line.extend(args);
        line.extend([a.as_str(), b.as_str()]);
        ossify_in(self.path(), &line)
    }

    /// Builds a tar into `out` with `args`; returns the manifest.
    fn build(&self, out: &str, args: &[&str]) -> Value {
        let mut line = vec!["build", "-f", "tar", "--dir", out];
        line.extend(args);
        let built = self.run(&line);
        assert!(built.status.success(), "{}", stderr(&built));
        manifest(&self.path().join(out))
    }

    fn release_in(&self, out: &str) -> String {
        let tar = std::fs::read(self.path().join(out).join("base.tar")).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entry = archive
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap() == Path::new("etc/release"))
            .expect("the tar holds etc/release");
        let mut release = String::new();
        std::io::Read::read_to_string(&mut entry, &mut release).unwrap();
        release
    }
}

fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("base.manifest.json")).unwrap()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn lock_writes_the_images_and_config_digest_beside_the_config() {
    let scratch = Scratch::new();
    let locked = scratch.run(&["lock", "--offline"]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    let lock: Value =
        serde_json::from_slice(&std::fs::read(scratch.path().join("base.lock.json")).unwrap())
            .unwrap();
    let built = scratch.build("out", &[]);
    assert_eq!(lock["images"], built["images"]);
    assert_eq!(lock["configs"][0]["file"], "base.yml");
    assert_eq!(lock["configs"][0]["sha256"], built["configs"][0]["sha256"]);
    assert!(
        lock["images"][0]["resolved"]
            .as_str()
            .unwrap()
            .starts_with("localhost/test/base:1@sha256:")
    );

    let printed = scratch.run(&["lock", "--offline", "--lockfile", "-"]);
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert_eq!(
        serde_json::from_slice::<Value>(&printed.stdout).unwrap(),
        lock
    );
}

#[test]
fn locked_builds_keep_the_pinned_image_after_the_tag_moves_and_diff_says_why() {
    let scratch = Scratch::new();
    assert!(scratch.run(&["lock", "--offline"]).status.success());
    let before = scratch.build("before", &["--offline"]);
    scratch.import("two");

    let locked = scratch.build("locked", &["--locked", "--offline"]);
    assert_eq!(scratch.release_in("locked"), "one");
    assert_eq!(locked["outputs"], before["outputs"]);
    let frozen = scratch.build("frozen", &["--frozen"]);
    assert_eq!(frozen["outputs"], before["outputs"]);

    scratch.build("moved", &["--offline"]);
    assert_eq!(scratch.release_in("moved"), "two");
    let diff = scratch.diff(&[], "locked", "moved");
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    let text = String::from_utf8_lossy(&diff.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("image       localhost/test/base:1 (linux/amd64): "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("output      base.tar: sha256:"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");

    let same = scratch.diff(&["--json"], "before", "locked");
    assert!(same.status.success(), "{}", stderr(&same));
    let same: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(same["identical"], true);
    assert_eq!(same["changes"], json!([]));
}

#[test]
fn locked_fails_on_an_edited_config_an_unpinned_image_or_a_missing_lock() {
    let scratch = Scratch::new();
    let missing = scratch.run(&["build", "-f", "tar", "--locked", "--offline"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read lock file ")
            && stderr(&missing).contains("base.lock.json"),
        "{}",
        stderr(&missing)
    );

    assert!(scratch.run(&["lock", "--offline"]).status.success());
    std::fs::write(
        scratch.config(),
        format!("{CONFIG}onboot:\n  - name: extra\n    image: localhost/test/other:1\n"),
    )
    .unwrap();
    let edited = scratch.run(&["build", "-f", "tar", "--locked", "--offline"]);
    assert_eq!(edited.status.code(), Some(1));
    let message = stderr(&edited);
    assert!(
        message.contains("config file base.yml changed since it was locked")
            && message.contains("run `ossify lock` again"),
        "{message}"
    );

    // Locked with the edit, then given another lock without the new image.
    let other_lock = scratch.path().join("old.lock.json");
    std::fs::copy(scratch.path().join("base.lock.json"), &other_lock).unwrap();
    let mut lock: Value = serde_json::from_slice(&std::fs::read(&other_lock).unwrap()).unwrap();
    lock["configs"][0]["sha256"] = json!(
        ossify::output::manifest::ConfigRecord::new(
            "base.yml".into(),
            std::fs::read_to_string(scratch.config()).unwrap()
        )
        .sha256
    );
    std::fs::write(&other_lock, serde_json::to_vec(&lock).unwrap()).unwrap();
    let unpinned = scratch.run(&[
        "build",
        "-f",
        "tar",
        "--locked",
        "--offline",
        "--lockfile",
        other_lock.to_str().unwrap(),
    ]);
    assert_eq!(unpinned.status.code(), Some(1));
    let message = stderr(&unpinned);
    assert!(
        message.contains("base.yml:8:")
            && message.contains("image localhost/test/other:1 is not pinned by the lock file"),
        "{message}"
    );
}

#[test]
fn frozen_with_a_missing_blob_names_the_pinned_image() {
    let scratch = Scratch::new();
    assert!(scratch.run(&["lock", "--offline"]).status.success());
    let lock: Value =
        serde_json::from_slice(&std::fs::read(scratch.path().join("base.lock.json")).unwrap())
            .unwrap();
    let pinned = lock["images"][0]["resolved"].as_str().unwrap().to_owned();
    let digest = pinned.split('@').nth(1).unwrap();
    // The pinned manifest is gone: another image now holds the tag.
    scratch.import("two");
    std::fs::remove_file(
        scratch
            .cache()
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap();
    let frozen = scratch.run(&["build", "-f", "tar", "--frozen", "--dir", "out"]);
    assert_eq!(frozen.status.code(), Some(1));
    let message = stderr(&frozen);
    assert!(
        message.contains(&format!("image {pinned} is not in the cache")),
        "{message}"
    );
    assert!(!scratch.path().join("out/base.tar").exists());
}

#[test]
fn verify_rebuild_passes_untouched_and_names_the_changed_byte() {
    let scratch = Scratch::new();
    scratch.build("out", &["--offline", "-f", "squashfs"]);
    let untouched = scratch.rebuild(&[], "out/base.manifest.json");
    assert!(untouched.status.success(), "{}", stderr(&untouched));
    assert!(
        stderr(&untouched).contains("base.tar: identical"),
        "{}",
        stderr(&untouched)
    );

    // One byte of etc/issue's data: the tar's second member after etc/.
    let tar_path = scratch.path().join("out/base.tar");
    let mut tar = std::fs::read(&tar_path).unwrap();
    let offset = tar
        .windows(5)
        .position(|w| w == b"hello")
        .expect("the tar holds etc/issue's contents");
    tar[offset] = b'j';
    std::fs::write(&tar_path, tar).unwrap();
    let changed = scratch.rebuild(&[], "out/base.manifest.json");
    assert_eq!(changed.status.code(), Some(1));
    let message = stderr(&changed);
    assert!(
        message.contains(&format!(
            "base.tar: differs from the rebuild at byte {offset}: "
        )) && message.contains("etc/issue"),
        "{message}"
    );
    assert!(message.contains("base.squashfs: identical"), "{message}");

    let json = scratch.rebuild(&["--json"], "out/base.manifest.json");
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["identical"], false);
    let tar_report = report["report"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["file"] == "base.tar")
        .unwrap();
    assert_eq!(tar_report["verdict"], "different");
    assert_eq!(tar_report["offset"], offset);
}

#[test]
fn verify_rebuild_remakes_a_build_written_with_dash_o() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.path().join("out")).unwrap();
    let built = scratch.run(&["build", "--offline", "-o", "out/root.tar"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let rebuilt = scratch.rebuild(&[], "out/root.tar.manifest.json");
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert!(stderr(&rebuilt).contains("root.tar: identical"));
}

#[test]
#[ignore = "heavy: needs docker-registry and skopeo (scripts/test.sh)"]
fn locked_pull_builds_the_pinned_image_after_the_registry_moved_the_tag() {
    let registry = support::Registry::start();
    let reference = format!("{}/test/base:1", registry.addr);
    let scratch = Scratch::empty(&CONFIG.replace(IMAGE, &reference));
    registry.push(&base_image("one"), IMAGE, "test/base:1");
    let locked = scratch.run(&["lock", "--pull"]);
    assert!(locked.status.success(), "{}", stderr(&locked));
    let before = scratch.build("before", &["--locked", "--pull"]);
    assert_eq!(scratch.release_in("before"), "one");

    registry.push(&base_image("two"), IMAGE, "test/base:1");
    let after = scratch.build("after", &["--locked", "--pull"]);
    assert_eq!(scratch.release_in("after"), "one");
    assert_eq!(after["images"], before["images"]);
    assert_eq!(after["outputs"], before["outputs"]);

    scratch.build("moved", &["--pull"]);
    assert_eq!(scratch.release_in("moved"), "two");
    let diff = scratch.diff(&[], "after", "moved");
    assert_eq!(diff.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&diff.stdout)
            .starts_with(&format!("image       {reference} (linux/amd64): ")),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );

    // An empty cache: --locked --pull fetches the pinned digest itself.
    let fresh = Scratch::empty(&CONFIG.replace(IMAGE, &reference));
    std::fs::copy(
        scratch.path().join("base.lock.json"),
        fresh.path().join("base.lock.json"),
    )
    .unwrap();
    let refetched = fresh.build("out", &["--locked", "--pull"]);
    assert_eq!(fresh.release_in("out"), "one");
    assert_eq!(refetched["outputs"], before["outputs"]);
}

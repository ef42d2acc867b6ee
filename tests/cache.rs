//! The image cache shared by processes and users: the lock that keeps
//! `cache rm`/`clean` from deleting what a build reads, read-only caches,
//! commands that must not create a cache, incomplete images, and imports
//! that must not trust what a layout or archive claims.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ossify::image::{Digest, Platform, Store};
use serde_json::json;
use support::layer_builder::LayerBuilder;
use support::{LayerBlob, Layout, layer_tar};

const IMAGE: &str = "localhost/test/init:1";
const CONFIG: &str = "init:\n  - localhost/test/init:1\n";

/// A layout holding one image named [`IMAGE`] with two layers; returns
/// it with the layers.
fn layout() -> (Layout, Vec<LayerBlob>) {
    layout_with_tool(20_000)
}

/// [`layout`], with a `bin/tool` of `size` bytes in the second layer.
fn layout_with_tool(size: usize) -> (Layout, Vec<LayerBlob>) {
    let mut layout = Layout::new();
    let layers = vec![
        LayerBlob::gzip(
            LayerBuilder::new()
                .file("etc/issue", b"cache test\n", 0o644)
                .finish(),
        ),
        LayerBlob::plain(
            LayerBuilder::new()
                .file("bin/tool", &vec![7u8; size], 0o755)
                .finish(),
        ),
    ];
    let manifest = layout.image(Platform::host().architecture.as_str(), &layers);
    layout.name(manifest, IMAGE);
    (layout, layers)
}

/// A cache under `dir` holding [`IMAGE`], and a config that uses it.
fn cache_with_image(dir: &Path) -> (PathBuf, PathBuf, Vec<LayerBlob>) {
    cache_with(dir, layout())
}

/// A cache under `dir` holding the image of `layout`, and a config.
fn cache_with(
    dir: &Path,
    (layout, layers): (Layout, Vec<LayerBlob>),
) -> (PathBuf, PathBuf, Vec<LayerBlob>) {
    let cache = dir.join("cache");
    Store::open(&cache).unwrap().import(layout.path()).unwrap();
    let config = dir.join("config.yml");
    std::fs::write(&config, CONFIG).unwrap();
    (cache, config, layers)
}

fn ossify() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ossify"));
    command.env_remove("CI").env_remove("SOURCE_DATE_EPOCH");
    command
}

fn build_command(dir: &Path, cache: &Path, config: &Path) -> Command {
    let mut command = ossify();
    command
        .args(["build", "--offline", "-f", "tar", "--cache-dir"])
        .arg(cache)
        .arg("--dir")
        .arg(dir.join("out"))
        .arg(config)
        .current_dir(dir);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A child whose stderr lines arrive on a channel as they are written.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 30 s) for a line of stderr containing `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {needle:?} on stderr: {:?}", self.seen),
            }
        }
    }

    fn assert_running(&mut self) {
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "it finished: {:?}",
            self.seen
        );
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child this test spawned and has
        // not reaped.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) },
            0
        );
    }

    /// Waits for the child to end; returns whether it succeeded, and all
    /// its stderr.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status.success(), self.seen.join("\n"))
    }
}

/// Runs `command`, failing the test if it takes longer than 30 s (an
/// import that reads `/dev/zero` never ends).
fn run_within_deadline(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn cache_clean_waits_until_a_build_has_read_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    // A 32 MiB file: assembly takes long enough to be caught in the act.
    let (cache, config, _) = cache_with(dir.path(), layout_with_tool(32 << 20));
    let held_by_build = || {
        let probe = std::fs::File::open(cache.join("gc.lock")).unwrap();
        matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    };
    // Stop the build as it starts assembling: it must hold the cache lock
    // then. (Should it have finished assembling before the stop, try again.)
    let mut caught = None;
    for _ in 0..5 {
        let mut build = Watched::spawn(&mut build_command(dir.path(), &cache, &config));
        build.wait_for("assembling the root filesystem");
        build.signal(libc::SIGSTOP);
        if held_by_build() {
            caught = Some(build);
            break;
        }
        build.signal(libc::SIGCONT);
        let (built, log) = build.finish();
        assert!(built, "{log}");
    }
    let build = caught.expect("the build never held the cache lock while assembling");

    let mut clean = Watched::spawn(ossify().args(["cache", "clean", "--cache-dir"]).arg(&cache));
    clean.wait_for(&format!(
        "waiting for the builds and pulls using the cache at {} to finish…",
        cache.display()
    ));
    clean.assert_running();

    build.signal(libc::SIGCONT);
    let (built, log) = build.finish();
    assert!(built, "the build failed: {log}");
    let (cleaned, log) = clean.finish();
    assert!(cleaned, "{log}");
    assert!(Store::at(&cache).list().unwrap().is_empty());
}

#[test]
fn a_build_waits_for_cache_clean_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config, _) = cache_with_image(dir.path());
    let held = std::fs::File::open(cache.join("gc.lock")).unwrap();
    held.lock().unwrap();

    let mut build = Watched::spawn(&mut build_command(dir.path(), &cache, &config));
    build.wait_for(&format!(
        "waiting for `ossify cache rm` or `cache clean` to finish with the cache at {}…",
        cache.display()
    ));
    build.assert_running();
    drop(held);
    let (built, log) = build.finish();
    assert!(built, "{log}");
    assert_eq!(
        log.matches("waiting for").count(),
        1,
        "said more than once: {log}"
    );
}

/// Makes `path` and everything under it read-only (`writable` false) or
/// writable again.
fn set_writable(path: &Path, writable: bool) {
    let metadata = std::fs::symlink_metadata(path).unwrap();
    let mode = match (metadata.is_dir(), writable) {
        (true, true) => 0o755,
        (true, false) => 0o555,
        (false, true) => 0o644,
        (false, false) => 0o444,
    };
    if metadata.is_dir() {
        if writable {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        for entry in std::fs::read_dir(path).unwrap() {
            set_writable(&entry.unwrap().path(), writable);
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn an_offline_build_reads_a_read_only_cache() {
    // As root, permissions do not stop writes: the build then runs as
    // nobody (65534), for whom the cache is read-only.
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for has_lock_files in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (cache, config, _) = cache_with_image(dir.path());
        if !has_lock_files {
            // As skopeo or crane would leave a layout.
            std::fs::remove_file(cache.join("gc.lock")).unwrap();
            std::fs::remove_file(cache.join("index.json.lock")).unwrap();
        }
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::set_permissions(
            dir.path().join("out"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        set_writable(&cache, false);
        let mut build = build_command(dir.path(), &cache, &config);
        build.env("HOME", dir.path());
        if root {
            build.uid(65534).gid(65534);
        }
        let output = build.output().unwrap();
        set_writable(&cache, true);
        assert!(
            output.status.success(),
            "lock files present: {has_lock_files}: {}",
            text(&output.stderr)
        );
        assert!(dir.path().join("out/config.tar").exists());
    }
}

#[test]
fn commands_that_only_read_create_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("none");
    let cache_arg = cache.to_str().unwrap();
    let run = |args: &[&str]| support::ossify_in(dir.path(), args);

    let listed = run(&["cache", "ls", "--cache-dir", cache_arg]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout), "");
    let listed = run(&["cache", "ls", "--json", "--cache-dir", cache_arg]);
    assert_eq!(text(&listed.stdout).trim(), "[]");

    let cleaned = run(&["cache", "clean", "--cache-dir", cache_arg]);
    assert!(cleaned.status.success(), "{}", text(&cleaned.stderr));

    let removed = run(&["cache", "rm", "--cache-dir", cache_arg, "busybox"]);
    assert_eq!(removed.status.code(), Some(1));
    assert_eq!(text(&removed.stderr), "error: not in the cache: busybox\n");

    let exported = run(&[
        "cache",
        "export",
        "--cache-dir",
        cache_arg,
        "busybox",
        "-o",
        "x.tar",
    ]);
    assert_eq!(exported.status.code(), Some(1));
    assert_eq!(
        text(&exported.stderr),
        "error: image docker.io/library/busybox:latest is not in the cache \
         (`ossify cache ls` lists what is)\n"
    );

    std::fs::write(dir.path().join("config.yml"), CONFIG).unwrap();
    let built = run(&[
        "build",
        "--offline",
        "-q",
        "--cache-dir",
        cache_arg,
        "config.yml",
    ]);
    assert_eq!(built.status.code(), Some(1));
    assert!(
        text(&built.stderr).contains(
            "image localhost/test/init:1 is not in the cache and --offline (or --frozen) forbids fetching it"
        ),
        "{}",
        text(&built.stderr)
    );

    assert!(!cache.exists(), "a cache was created");
}

#[test]
fn an_incomplete_image_is_neither_listed_nor_exported() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _, layers) = cache_with_image(dir.path());
    let missing: Digest = layers[1].digest().parse().unwrap();
    std::fs::remove_file(cache.join("blobs/sha256").join(missing.hex())).unwrap();
    let cache_arg = cache.to_str().unwrap();

    let listed = support::ossify_in(dir.path(), &["cache", "ls", "--cache-dir", cache_arg]);
    assert!(listed.status.success());
    assert_eq!(text(&listed.stdout), "");
    assert_eq!(
        text(&listed.stderr),
        format!(
            "warning: {IMAGE} is incomplete (blob {missing} is missing) and not listed: \
             `ossify pull {IMAGE}` fetches it, `ossify cache rm {IMAGE}` forgets it\n"
        )
    );

    let exported = support::ossify_in(
        dir.path(),
        &[
            "cache",
            "export",
            "--cache-dir",
            cache_arg,
            IMAGE,
            "-o",
            "image.tar",
        ],
    );
    assert_eq!(exported.status.code(), Some(1));
    assert_eq!(
        text(&exported.stderr),
        format!(
            "error: image {IMAGE} is incomplete in the cache: blob {missing} is missing \
             (`ossify pull {IMAGE}` fetches it, `ossify cache rm {IMAGE}` forgets the image)\n"
        )
    );
    assert!(!dir.path().join("image.tar").exists());
}

#[test]
fn only_the_complete_platforms_of_an_index_are_listed_and_exported() {
    let mut layout = Layout::new();
    let amd64_layer = LayerBlob::plain(layer_tar(&[("arch", b"amd64\n")]));
    let arm64_layer = LayerBlob::plain(layer_tar(&[("arch", b"arm64\n")]));
    let amd64 = layout.image("amd64", std::slice::from_ref(&amd64_layer));
    let arm64 = layout.image("arm64", std::slice::from_ref(&arm64_layer));
    let index = layout.index(vec![amd64, arm64.clone()]);
    layout.name(index, IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    store.import(layout.path()).unwrap();
    let arm64_digest: Digest = arm64_layer.digest().parse().unwrap();
    std::fs::remove_file(store.blob_path(&arm64_digest)).unwrap();

    let listed = store.list().unwrap();
    assert_eq!(listed[0].platforms, ["linux/amd64"]);
    assert_eq!(listed[0].missing, None);

    let archive = dir.path().join("image.tar");
    let mut out = std::fs::File::create(&archive).unwrap();
    store
        .export(&IMAGE.parse().unwrap(), &mut out, &archive)
        .unwrap();
    drop(out);
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    let arm64_manifest = format!(
        "blobs/sha256/{}",
        arm64["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    );
    assert!(!names.contains(&arm64_manifest), "{names:?}");
    assert!(names.contains(&format!(
        "blobs/sha256/{}",
        amd64_layer.digest().trim_start_matches("sha256:")
    )));
}

#[test]
fn a_build_refuses_a_cached_blob_that_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config, layers) = cache_with_image(dir.path());
    let blob = cache
        .join("blobs/sha256")
        .join(layers[1].digest().trim_start_matches("sha256:"));
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blob).unwrap();
    let output = run_within_deadline(&mut build_command(dir.path(), &cache, &config));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).ends_with(&format!(
            "error: {} is a symbolic link, not a regular file; an image layout holds only regular files\n",
            blob.display()
        )),
        "{}",
        text(&output.stderr)
    );
}

/// `ossify cache import PATH` into a fresh cache under `dir`, within 30 s.
fn import(dir: &Path, path: &Path) -> Output {
    run_within_deadline(
        ossify()
            .args(["cache", "import", "--cache-dir"])
            .arg(dir.join("cache"))
            .arg(path),
    )
}

fn assert_import_fails(dir: &Path, path: &Path, reason: &str) {
    let output = import(dir, path);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stderr),
        format!("error: cannot import {}: {reason}\n", path.display())
    );
    assert!(Store::at(dir.join("cache")).list().unwrap().is_empty());
}

/// The file of blob `digest` (`sha256:…`) in `layout`.
fn blob_file(layout: &Layout, digest: &str) -> PathBuf {
    layout
        .path()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn import_refuses_a_layer_that_is_a_symlink_or_a_fifo() {
    let (layout, layers) = layout();
    let blob = blob_file(&layout, &layers[1].digest());
    let symlink: fn(&Path) = |path| std::os::unix::fs::symlink("/dev/zero", path).unwrap();
    let fifo: fn(&Path) = |path| {
        let name = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    };
    for (kind, make) in [("a symbolic link", symlink), ("a FIFO", fifo)] {
        std::fs::remove_file(&blob).unwrap();
        make(&blob);
        let dir = tempfile::tempdir().unwrap();
        assert_import_fails(
            dir.path(),
            layout.path(),
            &format!(
                "{} is {kind}, not a regular file; an image layout holds only regular files",
                blob.display()
            ),
        );
    }
}

#[test]
fn import_reads_no_blob_past_its_descriptor() {
    let (layout, layers) = layout();
    let blob = blob_file(&layout, &layers[1].digest());
    let mut longer = layers[1].blob.clone();
    longer.extend([0u8; 4096]);
    std::fs::write(&blob, longer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_import_fails(
        dir.path(),
        layout.path(),
        &format!(
            "{}: it is longer than the {} bytes its descriptor declares",
            blob.display(),
            layers[1].blob.len()
        ),
    );
}

#[test]
fn import_refuses_an_index_json_over_the_limit() {
    let (layout, _) = layout();
    let index = layout.path().join("index.json");
    let mut bytes = std::fs::read(&index).unwrap();
    bytes.extend(std::iter::repeat_n(b' ', 5 << 20));
    std::fs::write(&index, bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_import_fails(
        dir.path(),
        layout.path(),
        &format!(
            "{}: it is larger than 4 MiB, the limit for manifests, indexes and image configs",
            index.display()
        ),
    );
}

/// A tar archive of `files`, written under `dir`.
fn archive(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, *data).unwrap();
    }
    let path = dir.join("archive.tar");
    std::fs::write(&path, tar.into_inner().unwrap()).unwrap();
    path
}

#[test]
fn import_errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest =
        json!([{"Config": "config.json", "RepoTags": [IMAGE], "Layers": ["0123/layer.tar"]}]);
    let path = archive(
        dir.path(),
        &[
            ("manifest.json", manifest.to_string().as_bytes()),
            ("config.json", b"{}"),
        ],
    );
    assert_import_fails(
        dir.path(),
        &path,
        "0123/layer.tar is named in manifest.json but missing from the archive",
    );

    let huge = vec![b' '; 5 << 20];
    let path = archive(dir.path(), &[("manifest.json", &huge)]);
    assert_import_fails(
        dir.path(),
        &path,
        "manifest.json: it is larger than 4 MiB, the limit for manifests, indexes and image configs",
    );

    let path = archive(dir.path(), &[("index.json", b"{\"manifests\": 7}")]);
    let output = import(dir.path(), &path);
    let message = text(&output.stderr);
    assert!(
        message.starts_with(&format!(
            "error: cannot import {}: index.json is not valid: ",
            path.display()
        )),
        "{message}"
    );
    assert_eq!(message.matches("cannot import").count(), 1, "{message}");
}

#[test]
fn an_import_names_nothing_unless_every_image_is_complete() {
    let mut layout = Layout::new();
    let present = LayerBlob::plain(layer_tar(&[("a", b"a\n")]));
    let absent = LayerBlob::plain(layer_tar(&[("b", b"b\n")]));
    let first = layout.image("amd64", std::slice::from_ref(&present));
    let second = layout.image("amd64", std::slice::from_ref(&absent));
    layout.name(first, "localhost/test/first:1");
    layout.name(second, "localhost/test/second:1");
    std::fs::remove_file(blob_file(&layout, &absent.digest())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("cache")).unwrap();
    let error = store.import(layout.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "image localhost/test/second:1 lacks blob {}, which the layout or archive does not hold",
            absent.digest()
        )
    );
    assert!(
        store.list().unwrap().is_empty(),
        "the first image was named"
    );
}

#[test]
fn import_refuses_docker_save_paths_outside_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("saved");
    std::fs::create_dir(&layout).unwrap();
    let manifest = json!([{"Config": "../../../etc/hostname", "RepoTags": [IMAGE], "Layers": []}]);
    std::fs::write(layout.join("manifest.json"), manifest.to_string()).unwrap();
    assert_import_fails(
        dir.path(),
        &layout,
        "manifest.json names \"../../../etc/hostname\", which is not a path inside the layout",
    );
}

/// LinuxKit's `$LINUXKIT_CACHE` names the cache when no flag does; the
/// flag wins over it.
#[test]
fn linuxkit_cache_names_the_cache_unless_a_flag_does() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config, _) = cache_with_image(dir.path());
    let build = |cache_flag: Option<&Path>, variable: &Path| {
        let mut command = ossify();
        command
            .args(["build", "--offline", "-f", "tar", "--dir"])
            .arg(dir.path().join("out"))
            .env("HOME", dir.path())
            .env_remove("XDG_CACHE_HOME")
            .env("LINUXKIT_CACHE", variable)
            .current_dir(dir.path());
        if let Some(cache) = cache_flag {
            command.arg("--cache").arg(cache);
        }
        command.arg(&config).output().unwrap()
    };
    let from_variable = build(None, &cache);
    assert!(
        from_variable.status.success(),
        "{}",
        text(&from_variable.stderr)
    );
    let elsewhere = dir.path().join("elsewhere");
    let flag_wins = build(Some(&cache), &elsewhere);
    assert!(flag_wins.status.success(), "{}", text(&flag_wins.stderr));
    let missing = build(None, &elsewhere);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains(IMAGE),
        "{}",
        text(&missing.stderr)
    );
}

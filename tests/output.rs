//! Where outputs go and how they get there, end to end: `-o` into FIFOs,
//! devices and links, `--name`, builds ended by signals or failing
//! part-way, stale temporary files, and `verify` of hostile manifests.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ossify::image::Store;
use serde_json::json;
use support::layer_builder::LayerBuilder;
use support::{LayerBlob, Layout};

const CONFIG: &str = "\
kernel:
  image: localhost/test/kernel:1
  cmdline: console=ttyS0
  tar: none
init:
  - localhost/test/init:1
";

/// The same, with an image holding a large file, so that writing its
/// outputs takes a while.
const BIG_CONFIG: &str = "\
kernel:
  image: localhost/test/kernel:1
  cmdline: console=ttyS0
  tar: none
init:
  - localhost/test/init:1
  - localhost/test/big:1
";

/// Bytes that neither compress nor repeat.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A kernel, an init image, a 32 MiB image, and a boot image whose EFI
/// stub is not a PE file (so a UKI fails only once it is being written).
fn images() -> Layout {
    let kernel = LayerBuilder::new()
        .file("kernel", b"KERNEL", 0o644)
        .finish();
    let init = LayerBuilder::new()
        .file("bin/init", b"INIT", 0o755)
        .finish();
    let big = LayerBuilder::new()
        .file("big/noise", &noise(32 << 20), 0o644)
        .finish();
    let boot = LayerBuilder::new()
        .file(
            "usr/lib/systemd/boot/efi/linuxx64.efi.stub",
            b"not a PE file",
            0o644,
        )
        .finish();
    let mut layout = Layout::new();
    for (name, layer) in [
        ("kernel", kernel),
        ("init", init),
        ("big", big),
        ("boot", boot),
    ] {
        let image = layout.image_with_config("amd64", json!({}), &[LayerBlob::plain(layer)]);
        layout.name(image, &format!("localhost/test/{name}:1"));
    }
    layout
}

/// A cache with the test images, and the config files, in `dir`.
struct Setup {
    dir: PathBuf,
    cache: PathBuf,
    config: PathBuf,
    big_config: PathBuf,
}

fn setup(dir: &Path) -> Setup {
    let cache = dir.join("cache");
    Store::open(&cache)
        .unwrap()
        .import(images().path())
        .unwrap();
    let config = dir.join("small.yml");
    fs::write(&config, CONFIG).unwrap();
    let big_config = dir.join("big.yml");
    fs::write(&big_config, BIG_CONFIG).unwrap();
    Setup {
        dir: dir.to_owned(),
        cache,
        config,
        big_config,
    }
}

impl Setup {
    /// The arguments of `ossify build --offline` from the test cache.
    fn build_args<'a>(&'a self, args: &[&'a str], config: &'a Path) -> Vec<&'a str> {
        let mut line = vec![
            "build",
            "--offline",
            "--cache-dir",
            self.cache.to_str().unwrap(),
        ];
        line.extend(args);
        line.push(config.to_str().unwrap());
        line
    }

    fn build(&self, args: &[&str]) -> Output {
        support::ossify_in(&self.dir, &self.build_args(args, &self.config))
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(output.status.success(), "{}", stderr(output));
}

/// Every file in `dir` by name, with its contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

fn temporary_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".ossify-"))
        .collect()
}

fn mkfifo(path: &Path) {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Reads `fifo` to its end in a thread; the receiver gets what was read.
/// The thread is left behind if nothing ever writes the FIFO.
fn read_fifo(fifo: &Path) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    let fifo = fifo.to_owned();
    std::thread::spawn(move || {
        let _ = sender.send(fs::read(fifo).unwrap());
    });
    receiver
}

/// The paths of the entries of a tar.
fn tar_paths(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn dash_o_streams_into_a_fifo_and_leaves_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let fifo = dir.path().join("root.tar");
    mkfifo(&fifo);
    let received = read_fifo(&fifo);
    assert_success(&setup.build(&["-o", fifo.to_str().unwrap()]));
    let tar = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the build wrote into the FIFO");
    assert!(tar_paths(&tar).contains(&"bin/init".to_owned()));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(
        !dir.path().join("root.tar.manifest.json").exists(),
        "no manifest beside a stream"
    );
    assert_eq!(temporary_files(dir.path()), Vec::<String>::new());

    let refused = setup.build(&["-o", fifo.to_str().unwrap(), "-f", "raw-efi"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!(
            "-o {} streams to the FIFO {0}, which format raw-efi cannot do",
            fifo.display()
        )),
        "{}",
        stderr(&refused)
    );
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn dash_o_refuses_links_directories_and_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let target = dir.path().join("precious");
    fs::write(&target, "keep me").unwrap();
    let link = dir.path().join("link.tar");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let directory = dir.path().join("outdir");
    fs::create_dir(&directory).unwrap();
    let socket = dir.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();

    for (path, what) in [
        (&link, "is a symbolic link"),
        (&directory, "is a directory"),
        (&socket, "is a socket"),
    ] {
        let refused = setup.build(&["-o", path.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains(&format!("-o {}: {what}", path.display())),
            "{}",
            stderr(&refused)
        );
    }
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&target).unwrap(), b"keep me");
    assert!(fs::read_dir(&directory).unwrap().next().is_none());
    assert!(
        fs::symlink_metadata(&socket)
            .unwrap()
            .file_type()
            .is_socket()
    );
    assert_eq!(temporary_files(dir.path()), Vec::<String>::new());
}

#[test]
fn dash_o_writes_into_character_devices_and_reports_a_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let null = fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device());

    assert_success(&setup.build(&["-o", "/dev/null"]));
    let after = fs::symlink_metadata("/dev/null").unwrap();
    assert!(after.file_type().is_char_device());
    assert_eq!(
        std::os::unix::fs::MetadataExt::rdev(&after),
        std::os::unix::fs::MetadataExt::rdev(&null)
    );
    assert!(!Path::new("/dev/null.manifest.json").exists());

    let full = setup.build(&["-o", "/dev/full"]);
    assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
    assert!(stderr(&full).contains("/dev/full"), "{}", stderr(&full));
    assert!(
        stderr(&full).contains("No space left on device"),
        "{}",
        stderr(&full)
    );
    assert!(
        fs::symlink_metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn cache_export_follows_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let export = |output: &Path| {
        support::ossify_in(
            dir.path(),
            &[
                "cache",
                "export",
                "--cache-dir",
                setup.cache.to_str().unwrap(),
                "localhost/test/init:1",
                "-o",
                output.to_str().unwrap(),
            ],
        )
    };

    let fifo = dir.path().join("image.tar");
    mkfifo(&fifo);
    let received = read_fifo(&fifo);
    assert_success(&export(&fifo));
    let archive = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the export wrote into the FIFO");
    assert!(tar_paths(&archive).contains(&"index.json".to_owned()));
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    let link = dir.path().join("link.tar");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let refused = export(&link);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("is a symbolic link"),
        "{}",
        stderr(&refused)
    );
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let full = export(Path::new("/dev/full"));
    assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
    assert!(
        stderr(&full).contains("No space left on device"),
        "{}",
        stderr(&full)
    );

    let file = dir.path().join("image-copy.tar");
    assert_success(&export(&file));
    assert!(tar_paths(&fs::read(&file).unwrap()).contains(&"index.json".to_owned()));
    assert_eq!(temporary_files(dir.path()), Vec::<String>::new());
}

#[test]
fn names_that_are_not_plain_file_names_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let out = dir.path().join("a/out");
    for (name, reason) in [
        ("../../escaped", "contains `/`"),
        ("a/b", "contains `/`"),
        ("", "the name is empty"),
        ("..", "names a directory"),
        (".ossify-x", "the prefix of ossify's temporary files"),
    ] {
        let refused = setup.build(&["--dir", out.to_str().unwrap(), "--name", name]);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{name:?}: {}",
            stderr(&refused)
        );
        assert!(
            stderr(&refused).contains(reason),
            "{name:?}: {}",
            stderr(&refused)
        );
    }
    assert!(!out.exists(), "nothing written");
    assert!(!dir.path().join("escaped-kernel").exists());

    let hidden = dir.path().join(".ossify-config.yml");
    fs::write(&hidden, CONFIG).unwrap();
    let args = setup.build_args(&["--dir", out.to_str().unwrap()], &hidden);
    let refused = support::ossify_in(dir.path(), &args);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("give one with --name"),
        "{}",
        stderr(&refused)
    );
    assert!(!out.exists(), "nothing written");
}

/// Builds `setup`'s big config into `out` as `e2e` and sends `signal` as
/// soon as a temporary output file appears; returns the build's exit code.
fn build_until_signalled(setup: &Setup, out: &Path, signal: i32) -> Option<i32> {
    let args = setup.build_args(
        &[
            "--dir",
            out.to_str().unwrap(),
            "--name",
            "e2e",
            "-f",
            "tar",
            "-f",
            "kernel+initrd",
        ],
        &setup.big_config,
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_ossify"));
    command
        .args(&args)
        .current_dir(&setup.dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // A shell runs background jobs with SIGINT ignored, and the child would
    // inherit that; the test is about a build that receives the signal.
    // SAFETY: signal() is async-signal-safe, fit to run between fork and
    // exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(signal, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while temporary_files(out).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the build ended ({status}) before it wrote anything to signal it during");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no temporary output file appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: kill takes any pid and signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    child.wait().unwrap().code()
}

#[test]
fn a_build_ended_by_a_signal_removes_its_temporary_files_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let out = dir.path().join("out");
    let earlier = setup.build(&[
        "--dir",
        out.to_str().unwrap(),
        "--name",
        "e2e",
        "-f",
        "tar",
        "-f",
        "kernel+initrd",
    ]);
    assert_success(&earlier);
    let before = snapshot(&out);
    assert!(before.contains_key("e2e.manifest.json"));

    for (signal, status) in [
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
        (libc::SIGINT, 130),
    ] {
        assert_eq!(
            build_until_signalled(&setup, &out, signal),
            Some(status),
            "signal {signal}"
        );
        assert_eq!(
            temporary_files(&out),
            Vec::<String>::new(),
            "signal {signal}"
        );
        assert!(
            snapshot(&out) == before,
            "signal {signal} changed {}",
            out.display()
        );
    }
}

#[test]
fn a_build_removes_stale_temporary_files_but_not_those_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let stale = out.join(".ossify-AbCdEf");
    fs::write(&stale, "left by a build killed with SIGKILL").unwrap();
    let held = out.join(".ossify-GhIjKl");
    fs::write(&held, "being written by another build").unwrap();
    let lock = fs::File::open(&held).unwrap();
    lock.lock().unwrap();

    assert_success(&setup.build(&["--dir", out.to_str().unwrap()]));
    assert!(!stale.exists(), "the stale file is removed");
    assert!(held.exists(), "the locked file stays");
    assert!(out.join("small.manifest.json").exists());
    drop(lock);
}

#[test]
fn a_build_failing_part_way_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let setup = setup(dir.path());
    let out = dir.path().join("out");
    let out_arg = out.to_str().unwrap();
    let earlier = setup.build(&["--dir", out_arg, "--name", "e2e", "-f", "tar,kernel+initrd"]);
    assert_success(&earlier);
    let before = snapshot(&out);

    // The tar differs from the earlier one (another date); the UKI fails
    // once the tar is written, when the stub turns out not to be a PE file.
    let failed = setup.build(&[
        "--dir",
        out_arg,
        "--name",
        "e2e",
        "--source-date-epoch",
        "1",
        "--boot-image",
        "localhost/test/boot:1",
        "-f",
        "tar,uki",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("EFI stub"), "{}", stderr(&failed));
    assert!(
        snapshot(&out) == before,
        "the failed build changed {}",
        out.display()
    );
}

#[test]
fn verify_checks_only_files_in_the_manifests_directory() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    fs::write(&secret, "outside").unwrap();
    let folder = dir.path().join("a/b");
    fs::create_dir_all(&folder).unwrap();
    // Each entry records the size and digest of `secret`: a verify that
    // reached it would find it matching.
    let digest = {
        use sha2::Digest;
        ossify::output::atomic::hex(&sha2::Sha256::digest(b"outside"))
    };
    let manifest = |outputs: serde_json::Value| {
        json!({
            "version": 1,
            "name": "x",
            "source_date_epoch": 0,
            "images": [],
            "outputs": outputs,
        })
    };
    let entry = |file: &str| json!([{"format": "tar", "file": file, "size": 7, "sha256": digest}]);
    let verify = |contents: &[u8]| {
        let path = folder.join("x.manifest.json");
        fs::write(&path, contents).unwrap();
        support::ossify_in(dir.path(), &["verify", path.to_str().unwrap()])
    };
    let json = |value: serde_json::Value| serde_json::to_vec(&value).unwrap();

    for (file, reason) in [
        ("../../secret", "contains `/`"),
        (secret.to_str().unwrap(), "contains `/`"),
        ("", "the name is empty"),
        ("..", "names a directory"),
    ] {
        let refused = verify(&json(manifest(entry(file))));
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{file:?}: {}",
            stderr(&refused)
        );
        assert!(
            stderr(&refused).contains("is not a build manifest")
                && stderr(&refused).contains(reason),
            "{file:?}: {}",
            stderr(&refused)
        );
    }
    let empty = verify(&json(manifest(json!([]))));
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        stderr(&empty).contains("lists no outputs"),
        "{}",
        stderr(&empty)
    );
    let malformed = verify(b"{\"version\": 1, \"outputs\": [");
    assert_eq!(malformed.status.code(), Some(1));
    assert!(
        stderr(&malformed).contains("is not a build manifest"),
        "{}",
        stderr(&malformed)
    );

    std::os::unix::fs::symlink(&secret, folder.join("linked")).unwrap();
    let linked = verify(&json(manifest(entry("linked"))));
    assert_eq!(linked.status.code(), Some(1));
    assert!(
        stderr(&linked).contains("linked: a symbolic link, not a regular file"),
        "{}",
        stderr(&linked)
    );
    fs::copy(&secret, folder.join("copied")).unwrap();
    assert_success(&verify(&json(manifest(entry("copied")))));

    // A FIFO given as the manifest is refused, not waited on.
    let fifo = folder.join("fifo.manifest.json");
    mkfifo(&fifo);
    let waited = support::ossify_in(dir.path(), &["verify", fifo.to_str().unwrap()]);
    assert_eq!(waited.status.code(), Some(1));
    assert!(
        stderr(&waited).contains("it is a FIFO, not a regular file"),
        "{}",
        stderr(&waited)
    );
}

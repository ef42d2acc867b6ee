//! `ossify build` end to end, offline, from images imported into a cache:
//! outputs, manifest, reproducibility, a build as a non-root user.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ossify::image::Store;
use serde_json::json;
use support::layer_builder::LayerBuilder;
use support::{LayerBlob, Layout};

const CONFIG: &str = "\
kernel:
  image: localhost/test/kernel:1
  cmdline: console=ttyS0
init:
  - localhost/test/init:1
onboot:
  - name: hello
    image: localhost/test/hello:1
    readonly: true
services:
  - name: web
    image: localhost/test/hello:1
files:
  - path: etc/issue
    contents: hello
    mode: \"0644\"
";

/// Kernel, init and container images in an OCI layout.
fn images() -> Layout {
    let modules = LayerBuilder::new()
        .file("lib/modules/6.1.0/modules.order", b"order\n", 0o644)
        .finish();
    let kernel = LayerBuilder::new()
        .file("kernel", b"KERNEL", 0o644)
        .file("kernel.tar", &modules, 0o644)
        .finish();
    let init = LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", b"BUSYBOX", 0o4755)
        .hard_link("bin/sh", "bin/busybox")
        .symlink("init", "/bin/busybox")
        .owned_file("home/user/notes", b"mine", 0o640, (1000, 1000))
        .char_device("dev/null", 1, 3)
        .file("tmp/gone", b"x", 0o644)
        .finish();
    let init_upper = LayerBuilder::new()
        .file("tmp/.wh.gone", b"", 0o644)
        .finish();
    let hello = LayerBuilder::new()
        .file("bin/hello", b"HELLO", 0o755)
        .finish();
    let mut layout = Layout::new();
    let kernel = layout.image_with_config("amd64", json!({}), &[LayerBlob::gzip(kernel)]);
    layout.name(kernel, "localhost/test/kernel:1");
    let init = layout.image_with_config(
        "amd64",
        json!({}),
        &[LayerBlob::gzip(init), LayerBlob::zstd(init_upper)],
    );
    layout.name(init, "localhost/test/init:1");
    let hello = layout.image_with_config(
        "amd64",
        json!({"Cmd": ["/bin/hello"], "Env": ["PATH=/bin"]}),
        &[LayerBlob::plain(hello)],
    );
    layout.name(hello, "localhost/test/hello:1");
    layout
}

/// A cache holding the test images, and a config file, in `dir`.
fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let cache = dir.join("cache");
    let names = Store::open(&cache)
        .unwrap()
        .import(images().path())
        .unwrap();
    assert_eq!(names.len(), 3);
    let config = dir.join("e2e.yml");
    std::fs::write(&config, CONFIG).unwrap();
    (cache, config)
}

/// Builds `config` as tar, kernel+initrd and tar-kernel-initrd, plus `extra`.
fn build(
    dir: &Path,
    cache: &Path,
    config: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "-f",
        "tar",
        "-f",
        "kernel+initrd",
        "-f",
        "tar-kernel-initrd",
    ];
    args.extend(extra);
    support::build_offline(dir, cache, out, &args, &[config])
}

#[test]
fn a_build_writes_linuxkits_files_and_a_manifest_of_their_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    let out = dir.path().join("out");
    let result = build(dir.path(), &cache, &config, &out, &["--json"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("e2e.manifest.json")).unwrap()).unwrap();
    assert_eq!(printed, manifest, "--json prints the manifest");
    assert_eq!(manifest["version"], 2);
    assert_eq!(manifest["source_date_epoch"], 1_492_533_000);
    assert_eq!(
        manifest["options"]["formats"],
        json!(["tar", "kernel+initrd", "tar-kernel-initrd"])
    );
    assert_eq!(manifest["options"]["platform"], "linux/amd64");
    assert_eq!(manifest["configs"][0]["file"], "e2e.yml");
    assert_eq!(manifest["configs"][0]["text"], CONFIG);
    let files: Vec<&str> = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "e2e.tar",
            "e2e-kernel",
            "e2e-initrd.img",
            "e2e-cmdline",
            "e2e-initrd.tar"
        ]
    );
    for output in manifest["outputs"].as_array().unwrap() {
        let path = out.join(output["file"].as_str().unwrap());
        assert_eq!(
            output["sha256"].as_str().unwrap(),
            support::sha256_file(&path)
        );
        assert_eq!(
            output["size"].as_u64().unwrap(),
            std::fs::metadata(&path).unwrap().len()
        );
    }
    let images = manifest["images"].as_array().unwrap();
    assert_eq!(images.len(), 3, "each image once");
    assert!(
        images[0]["resolved"]
            .as_str()
            .unwrap()
            .starts_with("localhost/test/kernel:1@sha256:")
    );
    assert_eq!(std::fs::read(out.join("e2e-kernel")).unwrap(), b"KERNEL");
    assert_eq!(
        std::fs::read_to_string(out.join("e2e-cmdline")).unwrap(),
        "console=ttyS0"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Lists an archive with a tool that is not ossify's.
fn list(command: &str, args: &[&str], input: &Path) -> String {
    let output = Command::new(command)
        .args(args)
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap_or_else(|e| panic!("{command}: {e} (install it: apt-get install {command})"));
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn line_for<'a>(listing: &'a str, path: &str) -> &'a str {
    listing
        .lines()
        .find(|l| {
            l.ends_with(path)
                || l.contains(&format!("{path} -> "))
                || l.contains(&format!("{path} link to"))
        })
        .unwrap_or_else(|| panic!("{path} not in\n{listing}"))
}

/// Run as root (CI), the build drops to uid 65534 with setpriv; run as
/// anyone else, it already is an ordinary user. Either way, the archives
/// hold owners, modes and devices no ordinary user could create on disk.
#[test]
#[ignore = "heavy: needs setpriv, GNU tar, cpio and gzip (scripts/test.sh)"]
fn an_ordinary_user_builds_archives_with_owners_modes_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (cache, config) = setup(dir.path());
    let out = dir.path().join("out");
    let cache_arg = cache.to_str().unwrap().to_owned();
    let status = if unsafe { libc_geteuid() } == 0 {
        Command::new("chmod")
            .args(["-R", "a+rwX", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_ossify"),
            ])
            .args([
                "build",
                "--offline",
                "--cache-dir",
                &cache_arg,
                "--dir",
                out.to_str().unwrap(),
            ])
            .args(["-f", "tar", "-f", "kernel+initrd", config.to_str().unwrap()])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .output()
            .unwrap()
    } else {
        build(dir.path(), &cache, &config, &out, &[])
    };
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let owner = std::fs::metadata(out.join("e2e.tar")).unwrap();
    assert_ne!(
        std::os::unix::fs::MetadataExt::uid(&owner),
        0,
        "built by an ordinary user"
    );

    let tar = list(
        "tar",
        &["-tvf", "-", "--numeric-owner"],
        &out.join("e2e.tar"),
    );
    assert!(
        line_for(&tar, "bin/busybox").starts_with("-rwsr-xr-x 0/0"),
        "{tar}"
    );
    assert!(
        line_for(&tar, "home/user/notes").starts_with("-rw-r----- 1000/1000"),
        "{tar}"
    );
    let null = line_for(&tar, "dev/null");
    assert!(
        null.starts_with("crw-rw-rw- 0/0") && null.contains(" 1,3 "),
        "{tar}"
    );
    assert!(line_for(&tar, "bin/sh").starts_with("hrwsr-xr-x"), "{tar}");
    assert!(
        tar.contains("boot/kernel") && !tar.contains("tmp/gone"),
        "{tar}"
    );
    assert!(
        line_for(&tar, "containers/onboot/000-hello/rootfs/bin/hello")
            .starts_with("-rwxr-xr-x 0/0")
    );
    assert!(line_for(&tar, "etc/issue").starts_with("-rw-r--r-- 0/0"));
    assert!(
        tar.contains("containers/services/web/lower/bin/hello")
            || tar.contains("containers/services/web/runtime.json")
    );

    let initrd = out.join("e2e-initrd.img");
    let cpio_input = dir.path().join("initrd.cpio");
    let gunzip = Command::new("gzip")
        .args(["-dc", initrd.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::write(&cpio_input, gunzip.stdout).unwrap();
    let cpio = list(
        "cpio",
        &["-t", "-v", "--numeric-uid-gid", "--quiet"],
        &cpio_input,
    );
    assert!(
        line_for(&cpio, "bin/busybox").starts_with("-rwsr-xr-x"),
        "{cpio}"
    );
    assert!(
        line_for(&cpio, "home/user/notes").contains(" 1000     1000 "),
        "{cpio}"
    );
    assert!(
        line_for(&cpio, "dev/null").starts_with("crw-rw-rw-"),
        "{cpio}"
    );
    assert!(line_for(&cpio, "dev/null").contains("1,   3"), "{cpio}");
    assert!(
        !cpio.contains("boot/kernel"),
        "the kernel is not in the initrd"
    );
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// Same inputs, different time zone, umask, locale, working directory and
/// cache: same bytes. Another SOURCE_DATE_EPOCH: other bytes.
#[test]
fn builds_are_reproducible_across_environments() {
    let digests = |dir: &Path, env: &[(&str, &str)], umask: &str| -> Vec<(String, String)> {
        let (cache, config) = setup(dir);
        let out = dir.join("out");
        let script = format!(
            "umask {umask}; exec \"$0\" build --offline --cache-dir {} --dir {} -f tar -f docker -f kernel+initrd -f tar-kernel-initrd -f kernel+squashfs -f kernel+erofs -f ext4 --json {}",
            cache.display(),
            out.display(),
            config.display()
        );
        let output = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_ossify")])
            .current_dir(dir)
            .env_remove("SOURCE_DATE_EPOCH")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let manifest: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["file"].as_str().unwrap().to_owned(),
                    o["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let third = tempfile::tempdir().unwrap();
    let a = digests(first.path(), &[("TZ", "UTC"), ("LANG", "C")], "022");
    let b = digests(
        second.path(),
        &[("TZ", "Asia/Kolkata"), ("LANG", "de_DE.UTF-8")],
        "077",
    );
    assert_eq!(a, b);
    let c = digests(third.path(), &[("SOURCE_DATE_EPOCH", "1700000000")], "022");
    for ((file, x), (_, y)) in a.iter().zip(&c) {
        if file != "e2e-kernel" && file != "e2e-cmdline" {
            assert_ne!(x, y, "{file} must depend on SOURCE_DATE_EPOCH");
        }
    }
}

/// The root filesystem images hold the root without `boot/`, beside the
/// kernel and command line, and each format's own tool accepts them.
#[test]
#[ignore = "heavy: needs squashfs-tools, erofs-utils and e2fsprogs (scripts/test.sh)"]
fn root_images_hold_the_root_without_boot_and_pass_their_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    // A file LZ4 compresses, for --erofs-compression.
    let words = "erofs lz4 ".repeat(4000);
    let config_text = format!("{CONFIG}  - path: etc/words\n    contents: {words}\n");
    std::fs::write(&config, config_text).unwrap();
    let out = dir.path().join("out");
    let args = [
        "-f",
        "kernel+squashfs",
        "-f",
        "kernel+erofs",
        "-f",
        "ext4",
        "--squashfs-compression",
        "zstd",
        "--erofs-compression",
        "lz4",
    ];
    let result = support::build_offline(dir.path(), &cache, &out, &args, &[&config]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(std::fs::read(out.join("e2e-kernel")).unwrap(), b"KERNEL");
    assert_eq!(
        std::fs::read(out.join("e2e-cmdline")).unwrap(),
        b"console=ttyS0"
    );
    let squashfs = out.join("e2e-squashfs.img");
    let listing = support::tool("unsquashfs", &["-lln", squashfs.to_str().unwrap()]);
    for path in [
        "squashfs-root/init -> /bin/busybox",
        "squashfs-root/bin/sh",
        "squashfs-root/etc/issue",
        "squashfs-root/lib/modules/6.1.0/modules.order",
        "squashfs-root/containers/onboot/000-hello/config.json",
    ] {
        assert!(listing.contains(path), "{path} not in\n{listing}");
    }
    assert!(!listing.contains("squashfs-root/boot"), "{listing}");
    let stat = support::tool("unsquashfs", &["-s", squashfs.to_str().unwrap()]);
    assert!(stat.contains("Compression zstd"), "{stat}");
    let erofs = out.join("e2e-erofs.img");
    support::tool("fsck.erofs", &[erofs.to_str().unwrap()]);
    let init = support::tool("dump.erofs", &["--path=/init", erofs.to_str().unwrap()]);
    assert!(init.contains("symlink file"), "{init}");
    let statistics = support::tool("dump.erofs", &["-S", erofs.to_str().unwrap()]);
    let compressed: u32 = statistics
        .lines()
        .find_map(|line| line.strip_prefix("Filesystem compressed files:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no compressed file count in:\n{statistics}"));
    assert_eq!(
        compressed, 1,
        "--erofs-compression lz4 compresses etc/words"
    );
    let ext4 = out.join("e2e.ext4");
    support::tool("e2fsck", &["-fn", ext4.to_str().unwrap()]);
    let root = support::tool("debugfs", &["-R", "ls -p /", ext4.to_str().unwrap()]);
    for name in ["/init/", "/etc/", "/containers/", "/lost+found/"] {
        assert!(root.contains(name), "{name} not in\n{root}");
    }
    assert!(!root.contains("/boot/"), "{root}");
}

#[test]
fn kernel_iso_refuses_a_device_node_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    let out = dir.path().join("out");
    let result =
        support::build_offline(dir.path(), &cache, &out, &["-f", "kernel+iso"], &[&config]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr
            .contains("`dev/null` is a character device, which an ISO 9660 root image cannot hold"),
        "{stderr}"
    );
    assert!(!out.join("e2e.iso").exists(), "nothing half-written");
}

/// LinuxKit's `kernel+iso`: the root as a Rock Ridge ISO beside the kernel
/// and command line.
#[test]
#[ignore = "heavy: needs xorriso (scripts/test.sh)"]
fn kernel_iso_is_a_rock_ridge_image_of_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, _) = setup(dir.path());
    // The test's init image holds a device node, which the ISO cannot.
    let config = dir.path().join("no-init.yml");
    std::fs::write(
        &config,
        "kernel:\n  image: localhost/test/kernel:1\n  cmdline: console=ttyS0\n\
         onboot:\n  - name: hello\n    image: localhost/test/hello:1\n\
         files:\n  - path: etc/issue\n    contents: hello\n    mode: \"0600\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let result =
        support::build_offline(dir.path(), &cache, &out, &["-f", "kernel+iso"], &[&config]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("no-init-kernel")).unwrap(),
        b"KERNEL"
    );
    let iso = out.join("no-init.iso");
    let listing = support::tool(
        "xorriso",
        &[
            "-indev",
            iso.to_str().unwrap(),
            "-find",
            "/",
            "-exec",
            "lsdl",
        ],
    );
    for (mode, path) in [
        ("-rw-------", "'/etc/issue'"),
        ("-rw-r--r--", "'/containers/onboot/000-hello/config.json'"),
        ("-rw-r--r--", "'/lib/modules/6.1.0/modules.order'"),
    ] {
        let line = line_for(&listing, path);
        assert!(line.starts_with(mode), "{line}");
    }
    assert!(!listing.contains("'/boot"), "{listing}");
}

#[test]
fn a_missing_image_offline_names_the_config_line_and_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    std::fs::write(
        &config,
        CONFIG.replace(
            "localhost/test/hello:1\n    readonly",
            "localhost/test/absent:1\n    readonly",
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let result = build(dir.path(), &cache, &config, &out, &[]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("localhost/test/absent:1") && stderr.contains("--offline"),
        "{stderr}"
    );
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().count() == 0,
        "nothing written"
    );
}

#[test]
fn dash_o_dash_streams_the_tar_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    let result = support::ossify_in(
        dir.path(),
        &[
            "build",
            "--offline",
            "--cache-dir",
            cache.to_str().unwrap(),
            "-o",
            "-",
            config.to_str().unwrap(),
        ],
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let mut archive = tar::Archive::new(&result.stdout[..]);
    let paths: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(paths.iter().any(|p| p == "boot/kernel"), "{paths:?}");
}

/// Every `--initrd-compression` holds the same cpio: decompressed with its
/// format's own decoder, each initrd is the uncompressed one.
#[test]
fn every_initrd_compression_holds_the_same_cpio() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    let initrd = |compression: &str| {
        let out = dir.path().join(compression);
        let built = support::build_offline(
            dir.path(),
            &cache,
            &out,
            &["-f", "kernel+initrd", "--initrd-compression", compression],
            &[&config],
        );
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        std::fs::read(out.join("e2e-initrd.img")).unwrap()
    };
    let cpio = initrd("none");
    assert!(cpio.starts_with(b"070701"), "a newc cpio");
    let mut gunzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&initrd("gzip")[..]),
        &mut gunzipped,
    )
    .unwrap();
    assert_eq!(gunzipped, cpio);
    assert_eq!(zstd::stream::decode_all(&initrd("zstd")[..]).unwrap(), cpio);
    let mut unxz = Vec::new();
    std::io::Read::read_to_end(
        &mut lzma_rust2::XzReader::new(&initrd("xz")[..], false),
        &mut unxz,
    )
    .unwrap();
    assert_eq!(unxz, cpio);
    let lz4 = initrd("lz4");
    assert_eq!(&lz4[..4], &0x184c_2102u32.to_le_bytes());
    let length = u32::from_le_bytes(lz4[4..8].try_into().unwrap()) as usize;
    assert_eq!(8 + length, lz4.len(), "one block for a small root");
    assert_eq!(
        lz4_flex::block::decompress(&lz4[8..], 8 << 20).unwrap(),
        cpio
    );
}

/// `docker` is the root tar with LinuxKit's Dockerfile after it, written to
/// a file or streamed.
#[test]
fn docker_is_the_root_tar_followed_by_linuxkits_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    let out = dir.path().join("out");
    let built = support::build_offline(
        dir.path(),
        &cache,
        &out,
        &["-f", "tar", "-f", "docker"],
        &[&config],
    );
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let entries = |bytes: &[u8]| -> Vec<(String, Vec<u8>)> {
        tar::Archive::new(bytes)
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mut contents = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut contents).unwrap();
                (path, contents)
            })
            .collect()
    };
    let tar = entries(&std::fs::read(out.join("e2e.tar")).unwrap());
    let docker_bytes = std::fs::read(out.join("e2e.docker")).unwrap();
    let mut docker = entries(&docker_bytes);
    let (path, dockerfile) = docker.pop().unwrap();
    assert_eq!(path, "Dockerfile");
    assert_eq!(
        String::from_utf8(dockerfile).unwrap(),
        "\nFROM scratch\n\nCOPY . ./\n\nENTRYPOINT [\"/bin/rc.init\"]\n"
    );
    assert_eq!(docker, tar, "the root, as the tar format holds it");
    let streamed = support::ossify_in(
        dir.path(),
        &[
            "build",
            "--offline",
            "--cache-dir",
            cache.to_str().unwrap(),
            "-f",
            "docker",
            "-o",
            "-",
            config.to_str().unwrap(),
        ],
    );
    assert!(
        streamed.status.success(),
        "{}",
        String::from_utf8_lossy(&streamed.stderr)
    );
    assert_eq!(streamed.stdout, docker_bytes);
}

#[test]
fn verify_accepts_the_outputs_and_names_every_changed_or_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config) = setup(dir.path());
    let out = dir.path().join("out");
    let built = build(dir.path(), &cache, &config, &out, &[]);
    assert!(built.status.success());
    let manifest = out.join("e2e.manifest.json");
    let verify = || support::ossify_in(dir.path(), &["verify", manifest.to_str().unwrap()]);
    let good = verify();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stderr).contains("5 output(s) match"));

    let mut tar = std::fs::read(out.join("e2e.tar")).unwrap();
    tar[600] ^= 1;
    std::fs::write(out.join("e2e.tar"), tar).unwrap();
    std::fs::write(out.join("e2e-cmdline"), "console=ttyS10").unwrap();
    std::fs::remove_file(out.join("e2e-kernel")).unwrap();
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("e2e.tar: sha256 "), "{stderr}");
    assert!(
        stderr.contains("e2e-cmdline: 14 bytes, the manifest says 13"),
        "{stderr}"
    );
    assert!(stderr.contains("e2e-kernel: missing"), "{stderr}");

    let json = support::ossify_in(
        dir.path(),
        &["verify", "--json", manifest.to_str().unwrap()],
    );
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["identical"], false);
    assert_eq!(report["differences"].as_array().unwrap().len(), 3);
    assert!(
        report["differences"]
            .as_array()
            .unwrap()
            .contains(&json!("e2e-kernel: missing"))
    );
}

//! Reproducibility (issue 12): every format of examples/hello.yml, built
//! from stand-in images (tests/support/synthetic.rs) so the bytes depend on
//! ossify alone, must match the digests pinned in
//! testdata/golden/hello.sha256, and must come out the same in another
//! environment: time zone, locale, umask, working directory, an empty cache
//! filled from a registry, one CPU, another user and another hostname.
//! Only SOURCE_DATE_EPOCH may change the bytes, and only of the formats
//! that record time. docs/reproducibility.md lists what could vary and
//! which test shows it does not.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::synthetic::{self, BOOT_IMAGE};

/// The builds that make every format, each into a directory of its own:
/// `kernel+iso` and `iso-bios` both write `hello.iso`, `vhd` and
/// `dynamic-vhd` both write `hello.vhd`.
const BUILDS: [(&str, &[&str]); 2] = [
    (
        "main",
        &[
            "kernel+initrd",
            "tar-kernel-initrd",
            "tar",
            "docker",
            "kernel+squashfs",
            "kernel+erofs",
            "squashfs",
            "erofs",
            "ext4",
            "uki",
            "iso-bios",
            "iso-efi",
            "iso-efi-initrd",
            "iso",
            "raw-bios",
            "raw-efi",
            "qcow2-bios",
            "qcow2-efi",
            "vhd",
            "vmdk",
            "aws",
            "gcp",
        ],
    ),
    ("second", &["kernel+iso", "dynamic-vhd"]),
];

/// The pinned digests, `sha256sum` format, one line per output file as
/// `<build>/<file>`, sorted.
const GOLDEN: &str = "testdata/golden/hello.sha256";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The arguments of `ossify build` for `formats`, besides where the cache
/// and the outputs are: the platform is fixed so any host builds the same.
fn build_args(formats: &[&str]) -> Vec<String> {
    let mut args = vec!["--arch", "amd64", "--boot-image", BOOT_IMAGE];
    for format in formats {
        args.extend(["-f", format]);
    }
    args.into_iter().map(str::to_owned).collect()
}

/// Runs every build of [`BUILDS`] offline from `cache` into
/// `out/<build>`, in `dir`, with `extra` arguments.
fn build_all(dir: &Path, cache: &Path, out: &Path, extra: &[&str]) {
    let config = repo().join("examples/hello.yml");
    for (build, formats) in BUILDS {
        let mut args: Vec<String> = build_args(formats);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = support::build_offline(dir, cache, &out.join(build), &args, &[&config]);
        assert!(
            output.status.success(),
            "ossify build {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `<build>/<file>` → sha256 of every output under `out`.
fn digests(out: &Path) -> BTreeMap<String, String> {
    let mut digests = BTreeMap::new();
    for (build, _) in BUILDS {
        for line in synthetic::digests(&out.join(build)).lines() {
            let (digest, file) = line.split_once("  ").unwrap();
            digests.insert(format!("{build}/{file}"), digest.to_owned());
        }
    }
    digests
}

fn sha256sum_text(digests: &BTreeMap<String, String>) -> String {
    digests
        .iter()
        .map(|(file, digest)| format!("{digest}  {file}\n"))
        .collect()
}

fn parse_sha256sum(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let (digest, file) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("{GOLDEN}: not a sha256sum line: {line:?}"));
            (file.to_owned(), digest.to_owned())
        })
        .collect()
}

/// Every file whose digest differs between `expected` and `actual`, or
/// that only one of them has, one line each.
fn differences(
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut files: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    files.sort();
    files.dedup();
    files
        .into_iter()
        .filter_map(|file| match (expected.get(file), actual.get(file)) {
            (Some(e), Some(a)) if e == a => None,
            (Some(e), Some(a)) => Some(format!("{file}: expected {e}, built {a}")),
            (Some(_), None) => Some(format!("{file}: pinned but not built")),
            (None, Some(a)) => Some(format!("{file}: built ({a}) but not pinned")),
            (None, None) => unreachable!("{file} comes from one of the maps"),
        })
        .collect()
}

#[test]
fn every_format_of_the_example_matches_the_golden_digests() {
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic::cache(dir.path());
    let out = dir.path().join("out");
    build_all(dir.path(), &cache, &out, &[]);
    let actual = digests(&out);
    let golden = repo().join(GOLDEN);
    if std::env::var_os("OSSIFY_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, sha256sum_text(&actual)).unwrap();
        return;
    }
    let expected = parse_sha256sum(
        &std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("cannot read {GOLDEN} ({e}); OSSIFY_BLESS=1 writes it")),
    );
    let differences = differences(&expected, &actual);
    assert!(
        differences.is_empty(),
        "{} output file(s) differ from {GOLDEN}:\n{}\n\
         If the change is deliberate, rewrite the pins with \
         `OSSIFY_BLESS=1 cargo test --test reproducibility golden` and say why in the commit.",
        differences.len(),
        differences.join("\n")
    );
}

/// The user the second build runs as: `nobody` on Debian.
const OTHER_UID: u32 = 65534;

/// A directory every user can write to, for the build run as [`OTHER_UID`].
fn shared_dir(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    path.to_owned()
}

/// Builds every format in another environment into `elsewhere/out`: one
/// CPU (`taskset -c 0`), a UTS namespace with another hostname, umask 077,
/// another working directory, user 65534 with no groups, another TZ, LANG,
/// HOME and TMPDIR, and an empty cache that pulls the images from
/// `registry` (as the mirror of `localhost`). Needs root for the hostname
/// and the user.
fn build_elsewhere(elsewhere: &Path, registry: &support::Registry) -> PathBuf {
    // The binary and the config are copied where that user can read them:
    // a checkout under /root is not.
    let binary = elsewhere.join("ossify");
    std::fs::copy(env!("CARGO_BIN_EXE_ossify"), &binary).unwrap();
    let config = elsewhere.join("hello.yml");
    std::fs::copy(repo().join("examples/hello.yml"), &config).unwrap();
    let cwd = shared_dir(&elsewhere.join("cwd"));
    let home = shared_dir(&elsewhere.join("home"));
    let tmp = shared_dir(&elsewhere.join("tmp"));
    let cache = elsewhere.join("cache");
    let out = elsewhere.join("out");
    for (build, formats) in BUILDS {
        let mut args: Vec<String> = [
            "build",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--dir",
            out.join(build).to_str().unwrap(),
            "--mirror",
            &format!("localhost=http://{}", registry.addr),
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(build_args(formats));
        args.push(config.to_str().unwrap().to_owned());
        let output = Command::new("taskset")
            .args(["-c", "0", "unshare", "--uts", "sh", "-c"])
            .arg(
                "hostname ossify-elsewhere && umask 077 && cd \"$0\" && uid=$1 && shift && \
                 exec setpriv --reuid=\"$uid\" --regid=\"$uid\" --clear-groups \"$@\"",
            )
            .arg(&cwd)
            .arg(OTHER_UID.to_string())
            .arg(&binary)
            .args(&args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("TZ", "Pacific/Kiritimati")
            .env("LANG", "tr_TR.UTF-8")
            .env("HOME", &home)
            .env("TMPDIR", &tmp)
            .output()
            .expect("taskset runs (apt-get install util-linux)");
        assert!(
            output.status.success(),
            "the build in another environment ({build}: {args:?}) failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(out.join("main/hello.tar")).unwrap(),
    );
    assert_eq!(owner, OTHER_UID, "the second build ran as user {OTHER_UID}");
    out
}

/// The formats whose bytes record SOURCE_DATE_EPOCH (file times, volume
/// and disk creation dates, the SBOM's date in the root): every output
/// except these, which hold only the kernel or the command line.
const TIMELESS: [&str; 4] = [
    "main/hello-kernel",
    "main/hello-cmdline",
    "second/hello-kernel",
    "second/hello-cmdline",
];

#[test]
#[ignore = "heavy: needs root, docker-registry, skopeo and util-linux (taskset, unshare, setpriv)"]
fn every_format_is_byte_identical_in_another_environment() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "this test needs root: it builds again as user {OTHER_UID} under another hostname \
         (setpriv, unshare --uts); run it as root, as CI does"
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = synthetic::cache(dir.path());
    let here = dir.path().join("here");
    build_all(dir.path(), &cache, &here, &[]);

    let registry = support::Registry::start();
    synthetic::push(&registry);
    // The other user must reach the directory it builds in.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let elsewhere = build_elsewhere(&shared_dir(&dir.path().join("elsewhere")), &registry);

    for (build, _) in BUILDS {
        assert_eq!(
            synthetic::manifest_outputs(&here.join(build), "hello"),
            synthetic::manifest_outputs(&elsewhere.join(build), "hello"),
            "the manifests of {build} list other outputs"
        );
    }
    let differences = differences(&digests(&here), &digests(&elsewhere));
    assert!(
        differences.is_empty(),
        "{} output file(s) differ in another environment:\n{}",
        differences.len(),
        differences.join("\n")
    );

    let later = dir.path().join("later");
    build_all(
        dir.path(),
        &cache,
        &later,
        &["--source-date-epoch", "1700000000"],
    );
    let (before, after) = (digests(&here), digests(&later));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let changed: Vec<&str> = before
        .keys()
        .filter(|file| before[*file] != after[*file])
        .map(String::as_str)
        .collect();
    let expected: Vec<&str> = before
        .keys()
        .map(String::as_str)
        .filter(|file| !TIMELESS.contains(file))
        .collect();
    assert_eq!(
        changed, expected,
        "another SOURCE_DATE_EPOCH changes exactly the outputs that record time"
    );
}

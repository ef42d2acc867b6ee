//! Test support: a real registry (Debian's `docker-registry`) on 127.0.0.1,
//! a fake one that injects faults, OCI images built byte by byte (pushed to
//! a registry with skopeo, served by the fake one, or imported into a
//! cache), stand-ins for the example and boot images, sample trees for the
//! filesystem writers, and running the ossify binary.

pub mod boot;
pub mod fake_registry;
pub mod layer_builder;
pub mod layout;
pub mod registry;
pub mod synthetic;
pub mod trees;

pub use fake_registry::{FakeRegistry, Fault};
pub use layout::{LayerBlob, Layout, layer_tar};
pub use registry::Registry;

/// An error with its causes, as `ossify` prints it.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Runs the ossify binary with `args` in `dir`.
pub fn ossify_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ossify"))
        .args(args)
        .current_dir(dir)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("CI")
        .output()
        .expect("ossify runs")
}

/// `ossify cache import LAYOUT` into `cache`, run in `dir`; asserts
/// success.
pub fn cache_import(dir: &std::path::Path, cache: &std::path::Path, layout: &std::path::Path) {
    let imported = ossify_in(
        dir,
        &[
            "cache",
            "import",
            "--cache-dir",
            cache.to_str().unwrap(),
            layout.to_str().unwrap(),
        ],
    );
    assert!(
        imported.status.success(),
        "ossify cache import {} failed:\n{}",
        layout.display(),
        String::from_utf8_lossy(&imported.stderr)
    );
}

/// `ossify build --offline` from `cache` into `out` with `args`, of
/// `configs` in order, run in `dir`.
pub fn build_offline(
    dir: &std::path::Path,
    cache: &std::path::Path,
    out: &std::path::Path,
    args: &[&str],
    configs: &[&std::path::Path],
) -> std::process::Output {
    let mut line = vec![
        "build",
        "--offline",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--dir",
        out.to_str().unwrap(),
    ];
    line.extend(args);
    line.extend(configs.iter().map(|c| c.to_str().unwrap()));
    ossify_in(dir, &line)
}

/// Runs a tool that is not ossify's, asserting that it ran and succeeded;
/// returns its stdout and stderr together. scripts/test.sh installs every
/// tool the tests use.
pub fn tool(program: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); scripts/test.sh installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{text}"
    );
    text
}

/// The sha256 of a file, read in pieces: the cloud disks are 1 GiB.
pub fn sha256_file(path: &std::path::Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = file.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    ossify::output::atomic::hex(&hasher.finalize())
}

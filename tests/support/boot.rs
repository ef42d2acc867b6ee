//! Booting what ossify builds: the example images from Debian packages
//! (`scripts/make-example-images.sh`), a cache holding them, and QEMU under
//! TCG with the serial console captured.
//!
//! The example init prints [`MARKER`] only after it has checked the build
//! and run the onboot container with runc, so the marker is the only proof
//! of a good boot: a panicking kernel makes QEMU exit 0 too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub const MARKER: &str = "OSSIFY-BOOT-OK";

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The boot image `scripts/make-boot-image.sh` makes.
pub const BOOT_IMAGE: &str = "localhost/ossify/boot:debian12";

/// Runs `script` (under `scripts/`) to write an OCI layout at
/// `target/<name>`, once per test binary.
fn layout_from_script(cell: &'static OnceLock<PathBuf>, script: &str, name: &str) -> &'static Path {
    cell.get_or_init(|| {
        let layout = repo().join("target").join(name);
        let made = Command::new("bash")
            .arg(repo().join("scripts").join(script))
            .arg(&layout)
            .output()
            .expect("bash runs");
        assert!(
            made.status.success(),
            "scripts/{script} failed:\n{}",
            String::from_utf8_lossy(&made.stderr)
        );
        layout
    })
}

/// The OCI layout of the example images examples/hello.yml names.
pub fn example_images() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    layout_from_script(&LAYOUT, "make-example-images.sh", "example-images")
}

/// The OCI layout of the boot image [`BOOT_IMAGE`].
pub fn boot_image() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    layout_from_script(&LAYOUT, "make-boot-image.sh", "boot-image")
}

/// A new cache in `dir` holding the example images and the boot image.
pub fn example_cache(dir: &Path) -> PathBuf {
    let cache = dir.join("cache");
    for layout in [example_images(), boot_image()] {
        let imported = super::ossify_in(
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
            "{}",
            String::from_utf8_lossy(&imported.stderr)
        );
    }
    cache
}

/// Builds `configs` (examples/hello.yml when empty) offline from `cache`
/// into `out` with `args` (formats, --boot-image, …), run in `dir`;
/// asserts success.
pub fn build(dir: &Path, cache: &Path, out: &Path, args: &[&str], configs: &[&Path]) {
    let output = build_output(dir, cache, out, args, configs);
    assert!(
        output.status.success(),
        "ossify build {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Like [`build`], returning what ossify did instead of asserting.
pub fn build_output(
    dir: &Path,
    cache: &Path,
    out: &Path,
    args: &[&str],
    configs: &[&Path],
) -> std::process::Output {
    let example = repo().join("examples/hello.yml");
    let configs: &[&Path] = if configs.is_empty() {
        &[&example]
    } else {
        configs
    };
    super::build_offline(dir, cache, out, args, configs)
}

/// OVMF, given with `-bios`: read-only, so no run leaves state for the next.
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

/// Runs `qemu-system-x86_64` with `args` (after the common ones: no
/// display, serial on stdio, 512 MiB, no reboot) and returns what the
/// serial console printed. Gives up after `limit`.
pub fn qemu(args: &[&str], limit: Duration) -> String {
    let output = Command::new("timeout")
        .arg(limit.as_secs().to_string())
        .arg("qemu-system-x86_64")
        .args(["-nographic", "-no-reboot", "-m", "512", "-nodefaults"])
        .args(["-serial", "stdio", "-monitor", "none"])
        .args(args)
        .output()
        .expect(
            "qemu-system-x86_64 is missing: apt-get install qemu-system-x86 (scripts/test.sh does)",
        );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts that a boot's serial log shows the example init's marker.
pub fn assert_booted(what: &str, log: &str) {
    assert!(
        log.contains(MARKER),
        "{what} did not reach the init's marker {MARKER}; serial console:\n{}",
        tail(log, 60)
    );
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

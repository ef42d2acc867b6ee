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
        super::cache_import(dir, &cache, layout);
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

/// The kernel modules a root on a virtio disk needs: the example kernel
/// image's kernel.tar carries them and a modules.dep naming their
/// dependencies.
const ROOT_DISK_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "crc32c_generic",
    "squashfs",
    "erofs",
    "ext4",
];

/// A small initrd, as a distribution's would be, for a root filesystem on
/// the first virtio disk: it loads [`ROOT_DISK_MODULES`] (busybox and the
/// modules taken from `root_tar`, the build's `tar` output), mounts
/// `/dev/vda` as `fstype`, read-write when `writable`, and hands over to
/// that root's `/init` with `switch_root`.
pub fn root_disk_initrd(root_tar: &Path, fstype: &str, writable: bool) -> Vec<u8> {
    use ossify::tree::{Kind, Metadata, Tree};
    use std::collections::BTreeMap;
    use std::io::Read;

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(root_tar).expect("the tar output"));
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path == "bin/busybox" || path.starts_with("lib/modules/") {
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            files.insert(path, contents);
        }
    }
    let (dep_path, modules_dep) = files
        .iter()
        .find(|(path, _)| path.ends_with("/modules.dep"))
        .expect("the kernel image's kernel.tar has a modules.dep (scripts/make-example-images.sh)");
    let modules_dir = dep_path.trim_end_matches("modules.dep").to_owned();
    let dependencies: BTreeMap<String, Vec<String>> = String::from_utf8_lossy(modules_dep)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(module, deps)| {
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            (module.to_owned(), deps)
        })
        .collect();
    /// Appends `module` to `order` after everything it depends on.
    fn load(module: &str, dependencies: &BTreeMap<String, Vec<String>>, order: &mut Vec<String>) {
        if order.iter().any(|loaded| loaded == module) {
            return;
        }
        for dependency in &dependencies[module] {
            load(dependency, dependencies, order);
        }
        order.push(module.to_owned());
    }
    let mut load_order: Vec<String> = Vec::new();
    for name in ROOT_DISK_MODULES {
        let module = dependencies
            .keys()
            .find(|path| path.ends_with(&format!("/{name}.ko")))
            .unwrap_or_else(|| panic!("modules.dep names no {name}.ko"));
        load(module, &dependencies, &mut load_order);
    }
    let options = if writable { "rw" } else { "ro" };
    let insmods: String = load_order
        .iter()
        .map(|path| format!("/bin/busybox insmod /{modules_dir}{path} || fail \"insmod {path}\"\n"))
        .collect();
    let init = format!(
        "#!/bin/busybox sh\n\
         fail() {{ echo \"root-disk initrd: $*\"; /bin/busybox poweroff -f; }}\n\
         /bin/busybox mkdir -p /proc /dev /newroot\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t devtmpfs devtmpfs /dev\n\
         {insmods}\
         /bin/busybox mount -t {fstype} -o {options} /dev/vda /newroot || fail \"cannot mount /dev/vda as {fstype}\"\n\
         echo \"root-disk initrd: mounted /dev/vda as {fstype} ({options})\"\n\
         /bin/busybox umount /dev\n\
         /bin/busybox umount /proc\n\
         exec /bin/busybox switch_root /newroot /init\n"
    );
    let mut tree = Tree::new(0);
    let add = |tree: &mut Tree, path: &str, contents: &[u8], mode: u32| {
        let blob = tree.store_bytes(contents).unwrap();
        tree.insert(path, Kind::File(blob), Metadata::new(mode, 0))
            .unwrap();
    };
    add(&mut tree, "init", init.as_bytes(), 0o755);
    add(&mut tree, "bin/busybox", &files["bin/busybox"], 0o755);
    for path in &load_order {
        let path = format!("{modules_dir}{path}");
        add(&mut tree, &path, &files[&path], 0o644);
    }
    ossify::write::cpio::write(&tree, Vec::new(), 0).expect("a cpio in memory")
}

//! Boot tests: images built from the example config (a Debian kernel, a
//! busybox init with runc, a readonly onboot container) boot under QEMU and
//! the init proves the build from inside.

#[allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses part of the shared support"
)]
mod support;

use std::time::Duration;

use support::boot;

#[test]
fn kernel_and_initrd_boot_and_run_the_onboot_container_with_runc() {
    let dir = tempfile::tempdir().unwrap();
    let cache = boot::example_cache(dir.path());
    let out = dir.path().join("out");
    let built = support::ossify_in(
        dir.path(),
        &[
            "build",
            "--offline",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--dir",
            out.to_str().unwrap(),
            boot::repo().join("examples/hello.yml").to_str().unwrap(),
        ],
    );
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let cmdline = std::fs::read_to_string(out.join("hello-cmdline")).unwrap();
    assert_eq!(cmdline, "console=tty0 console=ttyS0 panic=-1");
    let log = boot::qemu(
        &[
            "-kernel",
            out.join("hello-kernel").to_str().unwrap(),
            "-initrd",
            out.join("hello-initrd.img").to_str().unwrap(),
            "-append",
            &cmdline,
        ],
        Duration::from_secs(180),
    );
    boot::assert_booted("kernel+initrd", &log);
    assert!(log.contains("onboot container said: hello from an ossify image"));
}

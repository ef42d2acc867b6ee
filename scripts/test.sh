#!/usr/bin/env bash
# Runs every test of ossify: unit and integration tests, formatting and lints.
# Installs the Debian packages the tests need first (as root, or with sudo),
# from the archive the machine's APT sources name.
# CI runs this through .ci/run on a clean clone; benchmarks never run here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suites use, one line per reason.
packages=(
  runc busybox-static            # tests/runtime_config.rs runs a generated bundle under runc (as root)
  docker-registry apache2-utils  # tests/image*.rs: a real registry on 127.0.0.1, htpasswd for basic auth
  skopeo                         # tests/image*.rs push the images they make to that registry
  cpio                           # tests/writers.rs and tests/build.rs list archives with GNU cpio
  ovmf                           # tests/boot.rs boots the EFI formats under OVMF
  xorriso                        # tests/iso9660.rs and tests/media.rs read ISOs back
  dosfstools mtools              # fsck.vfat and mtools check and read FAT images
  gdisk fdisk                    # sgdisk -v and sfdisk check partition tables
  squashfs-tools erofs-utils e2fsprogs
                                 # unsquashfs, fsck.erofs/dump.erofs, e2fsck/debugfs check root images
  binutils                       # objdump -h lists a UKI's sections
  isolinux syslinux-common grub-pc-bin systemd-boot-efi
                                 # the host's bootloader files: writer tests, and builds without a boot image
  grub-common                    # grub-mkimage, to compare GRUB core images with
)

# Taken from the release's backports suite, as this machine's qemu-utils
# is: apt will not mix QEMU packages from two suites.
backports_packages=(
  qemu-system-x86                # tests/boot.rs boots what ossify builds, under TCG
  qemu-utils                     # tests/media.rs and tests/disk.rs check images with qemu-img
)

. scripts/lib/apt.sh
install_packages "${packages[@]}" --backports "${backports_packages[@]}"

echo "test.sh: scripts/check-apt-sources.sh"
bash scripts/check-apt-sources.sh
echo "test.sh: cargo fmt --check"
cargo fmt --check
echo "test.sh: cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# The fast tier needs nothing beyond Rust; the heavy tier (#[ignore]d
# tests: QEMU boots, a real registry, runc as root, host tools and files,
# Debian downloads) needs what was installed above.
echo "test.sh: fast tier: cargo test"
cargo test --all-targets --locked
echo "test.sh: heavy tier: cargo test -- --ignored"
cargo test --all-targets --locked -- --ignored

# --- Fuzzing (docs/fuzzing.md) ---------------------------------------------
# A bounded libFuzzer run: every target for 15 s (under 2 minutes in all, plus
# building the instrumented binary), starting from the kept corpus and leaving
# testdata/fuzz as it is. scripts/fuzz.sh without --discard runs the soaks.
echo "test.sh: bounded fuzz run"
scripts/fuzz.sh --discard all 15

echo "test.sh: all tests passed"

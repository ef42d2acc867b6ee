#!/usr/bin/env bash
# Runs every test of ossify: unit and integration tests, formatting and lints.
# Installs the Debian packages the tests need first (as root, or with sudo).
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
  binutils                       # objdump -h lists a UKI's sections
  isolinux syslinux-common grub-pc-bin systemd-boot-efi
                                 # the host's bootloader files: writer tests, and builds without a boot image
  grub-common                    # grub-mkimage, to compare GRUB core images with
)

# Debian 12 machines here carry qemu-utils from bookworm-backports; the QEMU
# system emulator must come from the same suite or apt refuses to mix them.
backports=/etc/apt/sources.list.d/ossify-test-backports.list
backports_packages=(
  qemu-system-x86                # tests/boot.rs boots what ossify builds, under TCG
)

# Prints those of the given packages that are not installed.
missing() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "test.sh: installing packages needs root: run as root or install sudo" >&2
    exit 1
  fi
}

mapfile -t regular < <(missing "${packages[@]}")
mapfile -t newer < <(missing "${backports_packages[@]}")
if [ ${#regular[@]} -gt 0 ] || [ ${#newer[@]} -gt 0 ]; then
  echo "test.sh: installing ${regular[*]} ${newer[*]}"
  if [ ${#newer[@]} -gt 0 ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | as_root tee "$backports" >/dev/null
  fi
  as_root apt-get update -q
  install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
  [ ${#regular[@]} -eq 0 ] || as_root "${install[@]}" "${regular[@]}"
  [ ${#newer[@]} -eq 0 ] || as_root "${install[@]}" -t bookworm-backports "${newer[@]}"
fi

echo "test.sh: cargo fmt --check"
cargo fmt --check
echo "test.sh: cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "test.sh: cargo test"
cargo test --all-targets --locked

# --- Fuzzing (docs/fuzzing.md) ---------------------------------------------
# A bounded libFuzzer run: every target for 15 s (under 2 minutes in all, plus
# building the instrumented binary), starting from the kept corpus and leaving
# testdata/fuzz as it is. scripts/fuzz.sh without --discard runs the soaks.
echo "test.sh: bounded fuzz run"
scripts/fuzz.sh --discard all 15

echo "test.sh: all tests passed"

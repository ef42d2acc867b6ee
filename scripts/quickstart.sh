#!/usr/bin/env bash
# A new user's first run: builds ossify, makes the images examples/hello.yml
# names (and a boot image) from Debian packages, builds the example as
# kernel+initrd and as a hybrid ISO, and boots the ISO under QEMU.
# Needs Rust (rustup.rs) on a Debian machine; installs QEMU for the boot
# (as root, or with sudo) from the archive the machine's APT sources name.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "quickstart: install Rust first: https://rustup.rs" >&2; exit 1; }

. scripts/lib/apt.sh
# From backports, as scripts/test.sh takes it: Debian 12 machines here carry
# qemu-utils from there, and apt will not mix QEMU packages from two suites.
install_packages --backports qemu-system-x86 \
  || { echo "quickstart: cannot install qemu-system-x86, which the boot needs" >&2; exit 1; }

echo "quickstart: building ossify"
cargo build --release --locked
ossify=target/release/ossify

echo "quickstart: making the example's images and a boot image from Debian packages"
scripts/make-example-images.sh target/example-images
scripts/make-boot-image.sh target/boot-image
cache=target/quickstart-cache
"$ossify" cache import --cache-dir "$cache" target/example-images
"$ossify" cache import --cache-dir "$cache" target/boot-image

echo "quickstart: building examples/hello.yml as kernel+initrd and as a hybrid ISO"
out=target/quickstart
"$ossify" build --offline --cache-dir "$cache" --boot-image localhost/ossify/boot:debian12 \
  -f kernel+initrd -f iso --dir "$out" examples/hello.yml

echo "quickstart: booting $out/hello-hybrid.iso under QEMU (about 15 s without KVM)"
status=0
timeout 180 qemu-system-x86_64 -nographic -no-reboot -m 512 -cdrom "$out/hello-hybrid.iso" \
  | tee "$out/serial.log" || status=$?
if ! grep -q OSSIFY-BOOT-OK "$out/serial.log"; then
  [ "$status" -eq 124 ] && echo "quickstart: QEMU timed out after 180 s" >&2
  echo "quickstart: the image did not boot to its marker; the console is in $out/serial.log" >&2
  exit 1
fi
echo "quickstart: booted. The outputs and their manifest are in $out/."

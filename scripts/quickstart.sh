#!/usr/bin/env bash
# A new user's first run: builds ossify, makes the images examples/hello.yml
# names (and a boot image) from Debian packages, builds the example as
# kernel+initrd and as a hybrid ISO, and boots the ISO under QEMU.
# Needs Rust (rustup.rs) on a Debian or Ubuntu machine with apt's package
# lists (apt-get update).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "quickstart: install Rust first: https://rustup.rs" >&2; exit 1; }

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

if command -v qemu-system-x86_64 >/dev/null; then
  echo "quickstart: booting $out/hello-hybrid.iso under QEMU (about 15 s without KVM)"
  timeout 180 qemu-system-x86_64 -nographic -no-reboot -m 512 -cdrom "$out/hello-hybrid.iso" \
    | tee "$out/serial.log" || true
  grep -q OSSIFY-BOOT-OK "$out/serial.log" \
    || { echo "quickstart: the image did not boot to its marker" >&2; exit 1; }
  echo "quickstart: booted. The outputs and their manifest are in $out/."
else
  echo "quickstart: built $out/; install qemu-system-x86 to boot hello-hybrid.iso."
fi

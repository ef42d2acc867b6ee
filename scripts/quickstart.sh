#!/usr/bin/env bash
# A new user's first run: builds ossify, makes the images examples/hello.yml
# names from Debian packages, builds the example and boots it under QEMU.
# Needs Rust (rustup.rs) on a Debian or Ubuntu machine with apt's package
# lists (apt-get update).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "quickstart: install Rust first: https://rustup.rs" >&2; exit 1; }

echo "quickstart: building ossify"
cargo build --release --locked
ossify=target/release/ossify

echo "quickstart: making the example's images from Debian packages"
scripts/make-example-images.sh target/example-images
cache=target/quickstart-cache
"$ossify" cache import --cache-dir "$cache" target/example-images

echo "quickstart: building examples/hello.yml"
"$ossify" build --offline --cache-dir "$cache" --dir target/quickstart examples/hello.yml

if command -v qemu-system-x86_64 >/dev/null; then
  echo "quickstart: booting it under QEMU (about 10 s without KVM)"
  timeout 180 qemu-system-x86_64 -nographic -no-reboot -m 512 \
    -kernel target/quickstart/hello-kernel -initrd target/quickstart/hello-initrd.img \
    -append "$(cat target/quickstart/hello-cmdline)" | tee target/quickstart/serial.log || true
  grep -q OSSIFY-BOOT-OK target/quickstart/serial.log \
    || { echo "quickstart: the image did not boot to its marker" >&2; exit 1; }
  echo "quickstart: booted. The outputs are in target/quickstart/."
else
  echo "quickstart: built target/quickstart/hello-{kernel,initrd.img,cmdline}; install qemu-system-x86 to boot them."
fi

#!/usr/bin/env bash
# A new user's first run: builds ossify and runs it on the embedded example,
# examples/hello.yml. Needs Rust (rustup.rs) on a Debian or Ubuntu machine.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "quickstart: install Rust first: https://rustup.rs" >&2; exit 1; }

echo "quickstart: building ossify"
cargo build --release --locked
ossify=target/release/ossify

echo "quickstart: checking examples/hello.yml"
"$ossify" validate examples/hello.yml
echo "quickstart: done. Next: $ossify --help"

#!/usr/bin/env bash
# Runs every test of ossify: unit and integration tests, formatting and lints.
# Installs the Debian packages the tests need first (as root, or with sudo).
# CI runs this through .ci/run on a clean clone; benchmarks never run here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suites use, one line per reason.
packages=(
  runc busybox-static # tests/runtime_config.rs runs a generated bundle under runc (as root)
)

install_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "test.sh: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if [ ${#packages[@]} -gt 0 ]; then
  install_packages "${packages[@]}"
fi

echo "test.sh: cargo fmt --check"
cargo fmt --check
echo "test.sh: cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "test.sh: cargo test"
cargo test --all-targets --locked
echo "test.sh: all tests passed"

#!/usr/bin/env bash
# Checks that scripts/lib/apt.sh finds the archive a machine's APT sources
# name, in both formats (one-line sources.list and deb822 *.sources), and
# builds the backports entry from it. Needs apt-get only; no root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/apt.sh

codename=$(debian_codename)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/one-line" "$dir/deb822" "$dir/empty"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian $codename main" \
  >"$dir/one-line/mirror.list"
cat >"$dir/deb822/mirror.sources" <<SOURCES
Types: deb
URIs: https://other-mirror.example/deb
Suites: $codename $codename-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: $codename-security
Components: main
SOURCES

failed=0
expect() {
  local what=$1 want=$2 got=$3
  if [ "$got" = "$want" ]; then
    echo "check-apt-sources: $what: ok"
  else
    echo "check-apt-sources: $what: expected '$want', got '$got'" >&2
    failed=1
  fi
}
sources() { echo -o "Dir::Etc::SourceList=$dir/empty/none.list" -o "Dir::Etc::SourceParts=$dir/$1"; }

# shellcheck disable=SC2046
expect "one-line sources.list" http://mirror.example/debian "$(archive_uris "$codename" $(sources one-line))"
# shellcheck disable=SC2046
expect "deb822 .sources" https://other-mirror.example/deb "$(archive_uris "$codename" $(sources deb822))"
# shellcheck disable=SC2046
expect "no source serves backports" "" "$(archive_uris "$codename-backports" $(sources deb822))"
# shellcheck disable=SC2046
expect "backports entry uses the mirror" "URIs: https://other-mirror.example/deb|Suites: $codename-backports" \
  "$(suite_source "$codename-backports" $(sources deb822) | grep -E '^(URIs|Suites):' | paste -sd '|')"
# shellcheck disable=SC2046
if suite_source "$codename-backports" $(sources empty) >/dev/null 2>&1; then
  echo "check-apt-sources: no sources at all: expected a failure" >&2
  failed=1
else
  echo "check-apt-sources: no sources at all: refused"
fi
exit "$failed"

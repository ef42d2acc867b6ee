# shellcheck shell=bash
# Installing Debian packages for ossify's scripts: sourced by test.sh and
# quickstart.sh. Installs need root; as another user, sudo is used when
# present, else the scripts say what to run.

# Runs a command as root, or says why it cannot.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "installing Debian packages needs root, and sudo is not installed: run this script as root" >&2
    return 1
  fi
}

# Prints those of the given packages that are not installed.
missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

# The release's code name (bookworm), from /etc/os-release.
debian_codename() {
  (. /etc/os-release && echo "${VERSION_CODENAME:?/etc/os-release names no VERSION_CODENAME}")
}

# Prints the archive URI of every configured APT source serving SUITE, one
# per line. apt itself reads the sources, so both one-line sources.list
# files and deb822 *.sources files count, and extra apt options (such as
# -o Dir::Etc::SourceParts=DIR) can be passed after SUITE.
archive_uris() {
  local suite=$1
  shift
  apt-get update --print-uris "$@" 2>/dev/null \
    | sed -n "s|^'\(.*\)/dists/$suite/InRelease'.*|\1|p" \
    | sort -u
}

# Prints the sources.list.d entry (deb822) for SUITE from the archive that
# serves the release itself, so a machine behind a mirror keeps its mirror.
# Extra apt options pass through to archive_uris.
suite_source() {
  local suite=$1 codename uri
  shift
  codename=$(debian_codename)
  uri=$(archive_uris "$codename" "$@" | head -n 1)
  if [ -z "$uri" ]; then
    echo "no APT source serves $codename; cannot add $suite" >&2
    return 1
  fi
  echo "Types: deb"
  echo "URIs: $uri"
  echo "Suites: $suite"
  echo "Components: main"
  if [ -e /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  fi
}

# Installs the packages of the first list that are missing, and those of
# the second (after --backports) from the release's backports suite, which
# is added to APT's sources if no source serves it yet. Debian 12 machines
# here carry qemu-utils from backports, and apt will not mix suites for QEMU.
install_packages() {
  local regular=() newer=() arg in_backports=0
  for arg in "$@"; do
    if [ "$arg" = --backports ]; then
      in_backports=1
    elif [ "$in_backports" -eq 1 ]; then
      newer+=("$arg")
    else
      regular+=("$arg")
    fi
  done
  mapfile -t regular < <(missing_packages "${regular[@]}")
  mapfile -t newer < <(missing_packages "${newer[@]}")
  [ ${#regular[@]} -gt 0 ] || [ ${#newer[@]} -gt 0 ] || return 0
  echo "installing Debian packages: ${regular[*]} ${newer[*]}"
  local backports
  backports="$(debian_codename)-backports"
  if [ ${#newer[@]} -gt 0 ] && [ -z "$(archive_uris "$backports")" ]; then
    suite_source "$backports" | as_root tee /etc/apt/sources.list.d/ossify-backports.sources >/dev/null
  fi
  as_root apt-get update -q
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
  [ ${#regular[@]} -eq 0 ] || as_root "${install[@]}" "${regular[@]}"
  [ ${#newer[@]} -eq 0 ] || as_root "${install[@]}" -t "$backports" "${newer[@]}"
}

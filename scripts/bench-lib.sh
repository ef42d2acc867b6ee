# Shell functions shared by the benchmarks (scripts/bench-*.sh): a release
# build of ossify, a scratch directory removed on exit, and runs measured
# with GNU time (wall clock and the peak RSS of the largest process).
# Source it from the repository's top, after scripts/lib/oci-layout.sh; it
# sets `ossify` and `work`. OSSIFY_BIN=PATH measures that binary instead of
# building one (an older build, for a before-and-after comparison).

bench_init() {
  command -v /usr/bin/time >/dev/null || { echo "benchmarks need GNU time: apt-get install time" >&2; exit 1; }
  if [ -n "${OSSIFY_BIN:-}" ]; then
    ossify=$OSSIFY_BIN
  else
    cargo build --release --quiet
    ossify=${CARGO_TARGET_DIR:-target}/release/ossify
  fi
  work=$(mktemp -d)
  bench_cleanups=("rm -rf $work")
  trap bench_cleanup EXIT
  echo "load before: $(bench_load)"
}

# Runs the cleanup commands, newest first (a server before its files).
bench_cleanup() {
  local i
  for ((i = ${#bench_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${bench_cleanups[i]}" || true
  done
}

# The 1, 5 and 15 minute load averages: other jobs share this machine.
bench_load() {
  uptime | sed 's/.*load average: //'
}

# Runs COMMAND once under GNU time; appends "NAME seconds max_rss_kib" to
# the results and prints the run. Stops the benchmark if COMMAND fails.
bench_measure() { # NAME COMMAND...
  local name=$1
  shift
  /usr/bin/time -v -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2
    echo "benchmark: $name failed: $*" >&2
    exit 1
  }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
  echo "$name $wall $rss" >>"$work/results"
  printf '%-8s run: %7.2f s  peak RSS %7.1f MiB  (load %s)\n' "$name" "$wall" "$(bench_mib "$rss")" "$(bench_load)"
}

# The shortest time of NAME's runs, in seconds.
bench_best_time() { # NAME
  awk -v n="$1" '$1 == n && (min == "" || $2 < min) {min = $2} END {print min}' "$work/results"
}

# The largest peak RSS of NAME's runs, in KiB.
bench_worst_rss() { # NAME
  awk -v n="$1" '$1 == n && $3 > max {max = $3} END {print max}' "$work/results"
}

bench_mib() { # KIB
  echo "$1 / 1024" | bc -l
}

bench_ratio() { # A B
  echo "$1 / $2" | bc -l
}

# Prints one table row: NAME's best time and worst peak RSS.
bench_row() { # NAME LABEL
  printf '  %-32s %7.2f s  peak RSS %7.1f MiB\n' "$2" "$(bench_best_time "$1")" "$(bench_mib "$(bench_worst_rss "$1")")"
}

# The ~400 MiB root the root and initrd benchmarks share: one OCI image,
# REF, whose only layer is the unpacked tree of Debian's kernel package
# (vmlinuz and all modules), made by scripts/lib/oci-layout.sh, imported
# with the example images into the cache $work/cache. Sets `layer` (the
# gzip'd layer blob), `kernel_package`, `tree_mib` and `tree_files`.
bench_linux_tree() { # REF
  local ref=$1 debs=target/debian-packages
  # The example images; they download the kernel package into $debs.
  scripts/make-example-images.sh "$work/examples" >/dev/null
  local kernel_deb
  kernel_deb=$(compgen -G "$debs/linux-image-[0-9]*-amd64_*.deb" | sort | tail -n1)
  kernel_package=$(basename "${kernel_deb%%_*}")
  debian_unpack "$debs" "$work/tree" "$kernel_package"
  bench_layout_from_tree "$ref"
  layer=$work/layout/blobs/sha256/$(python3 - "$work/layout" <<'PY'
import json, sys
layout = sys.argv[1]
def blob(digest):
    return json.load(open(f"{layout}/blobs/sha256/{digest.split(':')[1]}"))
manifest = blob(json.load(open(f"{layout}/index.json"))["manifests"][0]["digest"])
print(manifest["layers"][0]["digest"].split(":")[1])
PY
)
  "$ossify" cache import --cache-dir "$work/cache" "$work/examples" >/dev/null
  "$ossify" cache import --cache-dir "$work/cache" "$work/layout" >/dev/null
}

# $work/tree as the one-layer OCI image REF in the layout $work/layout,
# measured first: sets `tree_mib` and `tree_files`; removes the tree.
bench_layout_from_tree() { # REF
  tree_mib=$(du -sm --apparent-size "$work/tree" | cut -f1)
  tree_files=$(find "$work/tree" | wc -l)
  oci_layout_init "$work/layout"
  oci_layout_add "$1" '{}' "$work/tree"
  oci_layout_finish
  rm -rf "$work/tree"
}

# A config booting the example kernel with the image REF as its only
# init, written to FILE: the root every benchmark builds.
bench_root_config() { # FILE REF
  cat >"$1" <<YAML
kernel:
  image: localhost/ossify-examples/kernel:debian12
  cmdline: "console=ttyS0"
init:
  - $2
YAML
}

# A mixed root of MIB MiB (default 1024) for the memory benchmark, as one
# OCI image REF made by scripts/lib/oci-layout.sh: a third incompressible
# (random bytes), a third text (words, as configuration and scripts are),
# a third half and half (random and text in alternate 4 KiB blocks, as
# binaries compress), in 1 MiB files plus a thousand small text files.
# The bytes come from a fixed seed, so every run builds the same root.
# Imports it with the example images and the boot image into the cache
# $work/cache; sets `tree_mib` and `tree_files`.
bench_mixed_tree() { # REF [MIB]
  local ref=$1 mib=${2:-1024}
  scripts/make-example-images.sh "$work/examples" >/dev/null
  scripts/make-boot-image.sh "$work/boot" localhost/ossify/boot:debian12 >/dev/null
  python3 - "$work/tree" "$mib" <<'PY'
import os, random, sys
root, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(13)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(4096)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choices(words, k=12)) + b"\n"
    return bytes(out[:n])
def mixed(n):
    return b"".join(rng.randbytes(2048) + text(2048) for _ in range(n // 4096))
kinds = {"random": rng.randbytes, "text": text, "mixed": mixed}
per_kind = mib // 3
for kind, make in kinds.items():
    for i in range(per_kind):
        path = f"{root}/{kind}/{i // 64:03}/{i:05}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(make(1 << 20))
for i in range(1000):
    path = f"{root}/etc/small/{i // 100:02}/{i:04}.conf"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text(rng.randint(100, 8000)))
PY
  bench_layout_from_tree "$ref"
  local layout
  for layout in "$work/examples" "$work/boot" "$work/layout"; do
    "$ossify" cache import --cache-dir "$work/cache" "$layout" >/dev/null
  done
  rm -rf "$work/layout"
}

# Shell functions shared by the benchmarks (scripts/bench-*.sh): a release
# build of ossify, a scratch directory removed on exit, and runs measured
# with GNU time (wall clock and the peak RSS of the largest process).
# Source it from the repository's top, after scripts/lib/oci-layout.sh; it
# sets `ossify` and `work`.

bench_init() {
  command -v /usr/bin/time >/dev/null || { echo "benchmarks need GNU time: apt-get install time" >&2; exit 1; }
  cargo build --release --quiet
  ossify=${CARGO_TARGET_DIR:-target}/release/ossify
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
  tree_mib=$(du -sm --apparent-size "$work/tree" | cut -f1)
  tree_files=$(find "$work/tree" | wc -l)
  oci_layout_init "$work/layout"
  oci_layout_add "$ref" '{}' "$work/tree"
  oci_layout_finish
  rm -rf "$work/tree"
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

# Shell functions shared by the benchmarks (scripts/bench-*.sh): a release
# build of ossify, a scratch directory removed on exit, and runs measured
# with GNU time (wall clock and the peak RSS of the largest process).
# Source it from the repository's top; it sets `ossify` and `work`.

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

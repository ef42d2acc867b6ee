#!/usr/bin/env bash
# Fuzzes ossify's parsers with libFuzzer, one target at a time, on the stable
# toolchain (coverage instrumentation without sanitizers), and keeps each
# target's minimised corpus in testdata/fuzz/TARGET/corpus. See docs/fuzzing.md.
#
#   scripts/fuzz.sh [--discard] [TARGET|all] [SECONDS]
#
# TARGET defaults to all of them, SECONDS (per target) to 600. --discard
# leaves testdata/fuzz as it is (scripts/test.sh's bounded run). A crash,
# hang or memory blow-up stops the run with exit status 1 and the input in
# target/fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

discard=false
if [ "${1:-}" = "--discard" ]; then
  discard=true
  shift
fi
chosen=${1:-all}
seconds=${2:-600}
targets=(layer_tar layer_stream oci_image archive_import config uki_stub grub_core)
if [ "$chosen" != all ]; then
  printf '%s\n' "${targets[@]}" | grep -qx "$chosen" || {
    echo "fuzz.sh: unknown target $chosen; one of: all ${targets[*]}" >&2
    exit 2
  }
  targets=("$chosen")
fi

# libfuzzer-sys compiles libFuzzer, which is C++.
if ! command -v c++ >/dev/null; then
  echo "fuzz.sh: installing g++ (libFuzzer is C++)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "fuzz.sh: installing g++ needs root: run as root or install sudo" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends g++
fi

# The root's `cargo fmt --check` does not reach the fuzz crate's own files.
cargo fmt --check --manifest-path fuzz/Cargo.toml

# Coverage for libFuzzer as cargo-fuzz's `--sanitizer none` sets it up, with
# overflow checks and debug assertions on. An explicit --target keeps these
# flags off build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
work=target/fuzz
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "fuzz.sh: building the instrumented fuzz binary"
cargo build --manifest-path fuzz/Cargo.toml --locked --release --bin fuzz \
  --target "$host" --target-dir "$work"
binary=$work/$host/release/fuzz

summary=()
status=0
for target in "${targets[@]}"; do
  corpus=testdata/fuzz/$target/corpus
  crashes=testdata/fuzz/$target/crashes
  found=$work/found/$target
  artifacts=$work/artifacts/$target
  log=$work/logs/$target.log
  rm -rf "$found" "$artifacts"
  mkdir -p "$corpus" "$crashes" "$found" "$artifacts" "$(dirname "$log")"
  echo "fuzz.sh: $target for ${seconds}s (log: $log)"
  # New inputs go to $found; the kept corpus and past crashes are read only.
  if ! OSSIFY_FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -max_len=65536 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$found" "$corpus" "$crashes" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    if [ -n "$(ls -A "$artifacts")" ]; then
      echo "fuzz.sh: $target FAILED; the input is in $artifacts/; replay it with" >&2
      echo "  OSSIFY_FUZZ_TARGET=$target $binary $artifacts/<file>" >&2
    else
      echo "fuzz.sh: $target stopped without a failing input (interrupted?)" >&2
    fi
    status=1
  fi
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  executions=$(stat number_of_executed_units)
  if [ "$discard" = false ] && [ $status -eq 0 ]; then
    # Keep a small set of inputs that covers every feature the old corpus
    # and the new finds cover.
    merged=$work/merged/$target
    rm -rf "$merged"
    mkdir -p "$merged"
    OSSIFY_FUZZ_TARGET=$target "$binary" -set_cover_merge=1 -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 "$merged" "$corpus" "$found" >>"$log" 2>&1
    rm -rf "$corpus"
    mv "$merged" "$corpus"
  fi
  kept=$(find "$corpus" -type f | wc -l)
  summary+=("$target: ${seconds}s, ${executions:-?} executions, corpus $kept, peak RSS $(stat peak_rss_mb) MB$([ $status -eq 0 ] || echo ', FAILED')")
  [ $status -eq 0 ] || break
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
exit $status

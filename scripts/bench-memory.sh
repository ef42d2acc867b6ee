#!/usr/bin/env bash
# Benchmark (not a test): peak memory of every format built from a 1 GiB
# mixed root (scripts/bench-lib.sh's bench_mixed_tree: a third random, a
# third text, a third half and half), with the example kernel and the boot
# image. Each format is one `ossify build -f FORMAT` run under GNU time,
# into an empty output directory; the table gives its wall time and peak
# RSS against the target of 128 MiB ("flat memory": every format streams
# through temporary files, whatever the root's size).
#
# Needs: time, python3 (Debian packages). Usage:
#   scripts/bench-memory.sh                    # every format, 1024 MiB root
#   MIB=256 scripts/bench-memory.sh uki tar    # some formats, a smaller root
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh
. scripts/bench-lib.sh

limit_mib=128
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(kernel+initrd tar iso-efi iso-bios raw-efi raw-bios qcow2-efi vhd vmdk uki squashfs erofs ext4)
ref=localhost/ossify-bench/mixed-root:1
bench_init
bench_mixed_tree "$ref" "${MIB:-1024}"

bench_root_config "$work/mixed.yml" "$ref"

for format in "${formats[@]}"; do
  rm -rf "$work/out"
  bench_measure "$format" "$ossify" build --quiet --offline --cache-dir "$work/cache" \
    --boot-image localhost/ossify/boot:debian12 --dir "$work/out" -f "$format" "$work/mixed.yml"
done
rm -rf "$work/out"

printf '\nroot: %s MiB, %s entries; one run each; load after: %s\n' "$tree_mib" "$tree_files" "$(bench_load)"
printf '  %-14s %9s %14s %8s\n' format seconds "peak RSS MiB" "≤ $limit_mib"
within=0
for format in "${formats[@]}"; do
  rss=$(bench_worst_rss "$format")
  verdict=no
  if [ "$rss" -le $((limit_mib * 1024)) ]; then
    verdict=yes
    within=$((within + 1))
  fi
  printf '  %-14s %9.2f %14.1f %8s\n' "$format" "$(bench_best_time "$format")" "$(bench_mib "$rss")" "$verdict"
done
echo "bench-memory: $within of ${#formats[@]} formats within $limit_mib MiB"

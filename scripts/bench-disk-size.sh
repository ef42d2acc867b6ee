#!/usr/bin/env bash
# Benchmark (not a test): memory stays flat as a disk grows. Builds the
# example as raw-efi and qcow2-efi with --size 1G and --size 8G and
# reports wall time, peak RSS and the space the outputs take on disk.
# Fails unless every 8G build peaks under 128 MiB.
#
# Needs: the example and boot images (made here from Debian packages), and
# GNU time (Debian package `time`). Usage: scripts/bench-disk-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
ossify="$PWD/$target_dir/release/ossify"
[ -x /usr/bin/time ] || { echo "bench-disk-size: install GNU time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/make-example-images.sh "$work/example-images" >/dev/null
scripts/make-boot-image.sh "$work/boot-image" >/dev/null
"$ossify" cache import --cache-dir "$work/cache" "$work/example-images" >/dev/null
"$ossify" cache import --cache-dir "$work/cache" "$work/boot-image" >/dev/null

limit_kib=$((128 * 1024))
failed=0
printf '%-10s %-5s %9s %13s %14s\n' format size seconds "peak RSS MiB" "on disk MiB"
for format in raw-efi qcow2-efi; do
  for size in 1G 8G; do
    out="$work/out-$format-$size"
    /usr/bin/time -f '%e %M' -o "$work/time" \
      "$ossify" build -q --offline --cache-dir "$work/cache" --dir "$out" \
      --boot-image localhost/ossify/boot:debian12 -f "$format" --size "$size" examples/hello.yml
    read -r seconds rss_kib <"$work/time"
    used_mib=$(( $(du -sk "$out" | cut -f1) / 1024 ))
    printf '%-10s %-5s %9s %13s %14s\n' "$format" "$size" "$seconds" "$((rss_kib / 1024))" "$used_mib"
    if [ "$size" = 8G ] && [ "$rss_kib" -ge "$limit_kib" ]; then failed=1; fi
  done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$failed" -eq 0 ] || { echo "bench-disk-size: an 8G build peaked over 128 MiB" >&2; exit 1; }

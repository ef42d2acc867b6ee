#!/usr/bin/env bash
# Benchmark (not a test): memory stays flat as a disk grows. Builds the
# example as raw-efi and qcow2-efi with --size 1G and --size 8G and
# reports wall time, peak RSS and the space the outputs take on disk.
# Fails unless every 8G build peaks under 128 MiB.
#
# Needs: time (Debian package); the example and boot images are made here
# from Debian packages. Usage: scripts/bench-disk-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

bench_init
scripts/make-example-images.sh "$work/example-images" >/dev/null
scripts/make-boot-image.sh "$work/boot-image" >/dev/null
"$ossify" cache import --cache-dir "$work/cache" "$work/example-images" >/dev/null
"$ossify" cache import --cache-dir "$work/cache" "$work/boot-image" >/dev/null

for format in raw-efi qcow2-efi; do
  for size in 1G 8G; do
    bench_measure "$format-$size" "$ossify" build -q --offline --cache-dir "$work/cache" \
      --dir "$work/out-$format-$size" --boot-image localhost/ossify/boot:debian12 \
      -f "$format" --size "$size" examples/hello.yml
  done
done

failed=0
echo
for format in raw-efi qcow2-efi; do
  for size in 1G 8G; do
    run=$format-$size
    bench_row "$run" "$run (on disk $(($(du -sk "$work/out-$run" | cut -f1) / 1024)) MiB)"
    if [ "$size" = 8G ] && [ "$(bench_worst_rss "$run")" -ge $((128 * 1024)) ]; then failed=1; fi
  done
done
echo "  load after: $(bench_load)"
[ "$failed" -eq 0 ] || { echo "bench-disk-size: an 8G build peaked over 128 MiB" >&2; exit 1; }
echo PASS

#!/usr/bin/env bash
# Benchmark (not a test): kernel+initrd of a ~400 MiB root filesystem.
# The root is one OCI image whose only layer is the unpacked tree of
# Debian's kernel package (vmlinuz and all modules); the kernel is the
# example kernel image. ossify builds `-f kernel+initrd` from its cache;
# the shell pipeline does what people script by hand on the same layer:
#
#   tar -xzf layer.tar.gz && find . | cpio -o -H newc | gzip -6 >initrd.img
#
# Runs alternate, each into an empty output directory; reports the best
# time and the largest peak RSS of each. Fails unless ossify takes at most
# 0.5x the pipeline's time and stays under 256 MiB.
#
# Needs: cpio time (Debian packages). Usage:
#   scripts/bench-initrd.sh            # RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh
. scripts/bench-lib.sh

runs=${RUNS:-3}
ref=localhost/ossify-bench/linux-tree:1
bench_init
bench_linux_tree "$ref"

bench_root_config "$work/big.yml" "$ref"

cat >"$work/pipeline.sh" <<'SH'
set -euo pipefail
layer=$1 out=$2
mkdir "$out" "$out/root"
cd "$out/root"
tar -xzf "$layer"
find . | cpio -o -H newc --quiet | gzip -6 >"$out/initrd.img"
SH

for _ in $(seq "$runs"); do
  rm -rf "$work/ossify-out" "$work/pipeline-out"
  bench_measure ossify "$ossify" build --quiet --offline --cache-dir "$work/cache" --dir "$work/ossify-out" \
    -f kernel+initrd "$work/big.yml"
  bench_measure pipeline bash "$work/pipeline.sh" "$layer" "$work/pipeline-out"
done
ossify_initrd=$(stat -c %s "$work/ossify-out/big-initrd.img")
pipeline_initrd=$(stat -c %s "$work/pipeline-out/initrd.img")

ossify_time=$(bench_best_time ossify)
ratio=$(bench_ratio "$ossify_time" "$(bench_best_time pipeline)")
ossify_rss=$(bench_worst_rss ossify)
printf '\nroot: %s MiB, %s entries (%s); layer %s MiB gzip; best of %s runs:\n' \
  "$tree_mib" "$tree_files" "$kernel_package" "$(($(stat -c %s "$layer") / 1048576))" "$runs"
bench_row ossify "ossify -f kernel+initrd"
bench_row pipeline "tar -xz + find|cpio|gzip -6"
printf '  initrd: ossify %s MiB, pipeline %s MiB\n' "$((ossify_initrd / 1048576))" "$((pipeline_initrd / 1048576))"
printf '  time ratio %.2f (limit 0.5); RSS limit 256 MiB; load after: %s\n' "$ratio" "$(bench_load)"
status=0
[ "$ossify_rss" -lt $((256 * 1024)) ] || { echo "FAIL: ossify's peak RSS is over 256 MiB" >&2; status=1; }
[ "$(echo "$ratio <= 0.5" | bc)" -eq 1 ] || { echo "FAIL: ossify takes more than 0.5x the pipeline's time" >&2; status=1; }
[ "$status" -eq 0 ] && echo "PASS"
exit "$status"

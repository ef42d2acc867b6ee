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
debs=target/debian-packages
bench_init

# The example images (they download the kernel package into $debs).
scripts/make-example-images.sh "$work/examples" >/dev/null
kernel_deb=$(compgen -G "$debs/linux-image-[0-9]*-amd64_*.deb" | sort | tail -n1)
kernel_package=$(basename "${kernel_deb%%_*}")
debian_unpack "$debs" "$work/tree" "$kernel_package"
tree_mib=$(du -sm --apparent-size "$work/tree" | cut -f1)
tree_files=$(find "$work/tree" | wc -l)

ref=localhost/ossify-bench/linux-tree:1
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

cat >"$work/big.yml" <<YAML
kernel:
  image: localhost/ossify-examples/kernel:debian12
  cmdline: "console=ttyS0"
init:
  - $ref
YAML

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

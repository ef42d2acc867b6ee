#!/usr/bin/env bash
# Benchmark (not a test): root filesystem images of a ~400 MiB root. The
# root is the one of scripts/bench-initrd.sh: an OCI image whose only layer
# is the unpacked tree of Debian's kernel package. ossify builds
# `-f squashfs`, `-f erofs` and `-f ext4` from its cache; each reference
# starts from the same layer blob, so it pays for its unpack too:
#
#   tar -xzf layer.tar.gz --exclude=./boot      # ossify leaves boot/ out
#   mksquashfs root out -comp gzip -Xcompression-level 9 -b 128K \
#     -processors NPROC -noappend -all-root
#   mkfs.erofs --all-root out root              # uncompressed
#   mke2fs -t ext4 -O ^has_journal,^resize_inode -E root_owner=0:0 \
#     -N INODES -d root out SIZE                # ossify's size and inodes
#
# Runs alternate, each into an empty output directory; reports the best
# time and the largest peak RSS of each. Fails unless ossify takes at most
# 0.5x mksquashfs's pipeline for squashfs, at most 1.0x for EROFS and ext4,
# and stays at or under 128 MiB.
#
# Needs: squashfs-tools erofs-utils e2fsprogs time (Debian packages).
# Usage:
#   scripts/bench-rootfs.sh            # RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh
. scripts/bench-lib.sh

for tool in mksquashfs mkfs.erofs mke2fs dumpe2fs; do
  command -v "$tool" >/dev/null || { echo "bench-rootfs needs $tool: apt-get install squashfs-tools erofs-utils e2fsprogs" >&2; exit 1; }
done
runs=${RUNS:-3}
ref=localhost/ossify-bench/linux-tree:1
bench_init
bench_linux_tree "$ref"
processors=$(nproc)

cat >"$work/root.yml" <<YAML
init:
  - $ref
YAML

# The references: unpack the layer as ossify's root has it (no boot/),
# then make the image. ext4 gets the size and inode count ossify chose.
cat >"$work/reference.sh" <<'SH'
set -euo pipefail
filesystem=$1 layer=$2 out=$3 processors=$4 size=${5:-} inodes=${6:-}
mkdir "$out" "$out/root"
tar -xzf "$layer" -C "$out/root" --exclude=./boot
case $filesystem in
  squashfs) mksquashfs "$out/root" "$out/root.squashfs" -comp gzip -Xcompression-level 9 -b 128K \
    -processors "$processors" -noappend -all-root -quiet -no-progress ;;
  erofs) mkfs.erofs --quiet --all-root "$out/root.erofs" "$out/root" ;;
  ext4) mke2fs -q -F -t ext4 -O ^has_journal,^resize_inode -E root_owner=0:0 -N "$inodes" \
    -d "$out/root" "$out/root.ext4" "$((size / 1024))k" ;;
esac
SH

filesystems=(squashfs erofs ext4)
for _ in $(seq "$runs"); do
  for fs in "${filesystems[@]}"; do
    rm -rf "$work/ossify-$fs" "$work/reference-$fs"
    bench_measure "ossify-$fs" "$ossify" build --quiet --offline --cache-dir "$work/cache" \
      --dir "$work/ossify-$fs" -f "$fs" "$work/root.yml"
    ext4_args=()
    if [ "$fs" = ext4 ]; then
      inodes=$(dumpe2fs -h "$work/ossify-ext4/root.ext4" 2>/dev/null | awk -F: '/^Inode count/ {print $2 + 0}')
      ext4_args=("$(stat -c %s "$work/ossify-ext4/root.ext4")" "$inodes")
    fi
    bench_measure "ref-$fs" bash "$work/reference.sh" "$fs" "$layer" "$work/reference-$fs" "$processors" "${ext4_args[@]}"
  done
done

printf '\nlayer tree: %s MiB, %s entries (%s; both sides leave boot/ out); layer %s MiB gzip; %s processors; best of %s runs:\n' \
  "$tree_mib" "$tree_files" "$kernel_package" "$(($(stat -c %s "$layer") / 1048576))" "$processors" "$runs"
status=0
declare -A limit=([squashfs]=0.5 [erofs]=1.0 [ext4]=1.0)
declare -A reference=(
  [squashfs]="tar -xz + mksquashfs (gzip-9, 128K)"
  [erofs]="tar -xz + mkfs.erofs"
  [ext4]="tar -xz + mke2fs -d"
)
for fs in "${filesystems[@]}"; do
  bench_row "ossify-$fs" "ossify -f $fs"
  bench_row "ref-$fs" "${reference[$fs]}"
  ratio=$(bench_ratio "$(bench_best_time "ossify-$fs")" "$(bench_best_time "ref-$fs")")
  printf '  %s: image ossify %s KiB, reference %s KiB; time ratio %.2f (limit %s)\n' "$fs" \
    "$(($(stat -c %s "$work/ossify-$fs/root.$fs") / 1024))" \
    "$(($(stat -c %s "$work/reference-$fs/root.$fs") / 1024))" "$ratio" "${limit[$fs]}"
  [ "$(echo "$ratio <= ${limit[$fs]}" | bc)" -eq 1 ] || { echo "FAIL: ossify -f $fs takes more than ${limit[$fs]}x the reference's time" >&2; status=1; }
  [ "$(bench_worst_rss "ossify-$fs")" -le $((128 * 1024)) ] || { echo "FAIL: ossify -f $fs's peak RSS is over 128 MiB" >&2; status=1; }
done
printf '  RSS limit 128 MiB; load after: %s\n' "$(bench_load)"
[ "$status" -eq 0 ] && echo "PASS"
exit "$status"

#!/usr/bin/env bash
# Benchmarks (not tests): ossify against the tools people use instead, and
# against its own memory and rebuild targets, as one table. docs/benchmarks.md
# says what each row measures and keeps the latest full table.
#
# Each row runs a warm-up pair, then BENCH_PAIRS (default 5) pairs, each the
# reference then ossify, into empty output directories; it reports the
# median time of each side, the median of the per-pair ratios and each
# side's largest peak RSS (GNU time). The workloads are trees of Debian
# packages of about 50 MiB, 400 MiB and 1 GiB as one-layer OCI images,
# made once and cached in target/bench/workloads/; `example` is
# examples/hello.yml; `pull` is a 512 MiB layer in a local registry.
#
# Writes target/bench/results.json (machine, load, every run's time); the
# last line says how many targets were met; exits 0 only if all were.
#
#   scripts/bench.sh                                  # everything
#   BENCH_WORKLOADS=example,50 BENCH_PAIRS=1 scripts/bench.sh
#   BENCH_ONLY=rebuild BENCH_WORKLOADS=400 scripts/bench.sh
#   OSSIFY_BIN=PATH scripts/bench.sh                  # that binary, unbuilt
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/oci-layout.sh
. scripts/bench-lib.sh

bench_prerequisites
bench_init
IFS=, read -ra workloads <<<"${BENCH_WORKLOADS:-example,50,400,1024,pull}"
boot="--boot-image localhost/ossify/boot:debian12"
hello=$PWD/examples/hello.yml

# Every config boots the example kernel; the ISO and disk formats take
# their bootloader files from the boot image.
scripts/make-example-images.sh "$work/examples" >/dev/null
scripts/make-boot-image.sh "$work/boot" >/dev/null
"$ossify" cache import --cache-dir "$cache" "$work/examples" >/dev/null
"$ossify" cache import --cache-dir "$cache" "$work/boot" >/dev/null

# The rows of examples/hello.yml: its initrd against umoci and cpio, its
# ISO against the UKI, ESP and ISO made by hand, and the memory of disks
# made 8G large (laid out sparse, so memory stays flat).
bench_example() {
  workload=example
  if bench_wanted "kernel+initrd vs umoci+cpio+gzip"; then
    # umoci names images by a plain tag: the same blobs, renamed.
    mkdir -p "$work/umoci"
    cp -al "$work/examples/blobs" "$work/examples/oci-layout" "$work/umoci/"
    python3 - "$work/examples/index.json" "$work/umoci/index.json" <<'PY'
import json, sys
index = json.load(open(sys.argv[1]))
for m in index["manifests"]:
    ref = m["annotations"]["org.opencontainers.image.ref.name"]
    m["annotations"]["org.opencontainers.image.ref.name"] = ref.rsplit("/", 1)[1].split(":")[0]
json.dump(index, open(sys.argv[2], "w"))
PY
  fi
  bench_row "kernel+initrd vs umoci+cpio+gzip" 0.5 - "side_ossify kernel+initrd $hello" side_umoci
  if bench_wanted "iso-efi"; then
    # The pipeline is handed ossify's kernel, initrd and cmdline for the
    # same config and the stub the boot image holds.
    "$ossify" build --quiet --offline --cache-dir "$cache" --dir "$work/parts" -f kernel+initrd "$hello"
    debian_unpack "$debs" "$work/stub" systemd-boot-efi
    printf 'ID=ossify\nNAME="hello"\nPRETTY_NAME="hello (built by ossify)"\n' >"$work/parts/os-release"
  fi
  bench_row "iso-efi beyond kernel+initrd vs objcopy+mkfs.vfat+mcopy+xorriso" 0.5 - \
    "side_ossify iso-efi $hello $boot" side_iso "side_ossify kernel+initrd $hello $boot"
  local format
  for format in raw-efi qcow2-efi; do
    bench_row "memory: $format --size 8G" - 128 "side_ossify $format $hello $boot --size 8G" -
  done
}

# The rows of the tree of about MIB MiB.
bench_tree() { # MIB
  local mib=$1 ref=localhost/ossify-bench/tree-$1:1
  bench_workload "$mib" "$ref"
  workload="$mib MiB"
  printf '%s\t%s\t%s\t%s\n' "$workload" "$tree_mib" "$tree_files" "$(bench_workload_packages "$mib")" >>"$work/workloads.tsv"
  local config=$work/tree-$mib.yml root=$work/root-$mib.yml
  bench_root_config "$config" "$ref"
  printf 'init:\n  - %s\n' "$ref" >"$root"
  # Memory is flat: at 1 GiB every format stays within 128 MiB.
  local rss=- gzip_target=- pigz_target=-
  [ "$mib" -lt 1024 ] || rss=128
  [ "$mib" -lt 400 ] || { gzip_target=0.25 pigz_target=0.35; }
  bench_row "kernel+initrd vs tar+cpio+gzip" "$gzip_target" "$rss" "side_ossify kernel+initrd $config" "side_cpio gzip $layer"
  [ "$mib" -lt 400 ] || bench_row "kernel+initrd vs tar+cpio+pigz" "$pigz_target" "$rss" \
    "side_ossify kernel+initrd $config" "side_cpio pigz $layer"
  case $mib in
    50)
      # mksquashfs at gzip level 9 takes minutes at 400 MiB; the ratio
      # does not depend on the size.
      bench_row "squashfs vs tar+mksquashfs" 0.5 128 "side_ossify squashfs $root" "side_mkfs squashfs $layer" ;;
    400)
      bench_row "tar vs tar -x + tar -c" 0.5 128 "side_ossify tar $root" "side_tar $layer"
      bench_row "erofs vs tar+mkfs.erofs" 1.0 128 "side_ossify erofs $root" "side_mkfs erofs $layer"
      if bench_wanted "ext4 vs tar+mke2fs -d"; then
        rm -rf "$work/ext4-size"
        "$ossify" build --quiet --offline --cache-dir "$cache" --dir "$work/ext4-size" -f ext4 "$root"
      fi
      bench_row "ext4 vs tar+mke2fs -d" 1.0 128 "side_ossify ext4 $root" "side_mkfs ext4 $layer" ;;
  esac
  if [ "$mib" -ge 400 ]; then
    rebuild_ref=$ref
    bench_row "rebuild, nothing changed, vs cold" 0.2 "$rss" \
      "side_rebuild a kernel+initrd $ref" "side_cold a kernel+initrd $ref" - bench_check_warm
    bench_row "rebuild, one files: entry changed, vs cold" 0.35 "$rss" \
      "side_rebuild b kernel+initrd $ref" "side_cold a kernel+initrd $ref" - bench_check_one_change
  fi
  if [ "$mib" -ge 1024 ]; then
    local format
    for format in tar iso-efi iso-bios raw-efi raw-bios qcow2-efi vhd vmdk uki squashfs erofs ext4; do
      bench_row "memory: $format" - 128 "side_ossify $format $config $boot" -
    done
  fi
}

# A rebuild with nothing changed gives the bytes of the cold build before it.
bench_check_warm() {
  [ "$(bench_sums "$work/out-ossify")" = "$(bench_sums "$work/out-reference")" ]
}

# A rebuild after a change gives the bytes of a cold build of the changed config.
bench_check_one_change() {
  export out=$work/out-check
  rm -rf "$out"
  mkdir -p "$out"
  side_cold_setup
  side_cold b kernel+initrd "$rebuild_ref"
  [ "$(bench_sums "$work/out-ossify")" = "$(bench_sums "$out")" ]
}

# Pulling one image whose only layer is an uncompressed tar of 512 MiB of
# random bytes from Debian's docker-registry on 127.0.0.1, into an empty
# cache: ossify pull against skopeo copy to an OCI layout.
bench_pull() {
  workload="pull 512 MiB"
  bench_wanted "pull vs skopeo copy" || return 0
  local port layout=$work/pull-layout
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry" "$port" >"$work/registry.yml"
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  bench_cleanups+=("kill $!")
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # The layer is a plain tar, stored and pushed with its digests intact.
  mkdir -p "$layout/blobs/sha256" "$work/pull-root"
  head -c $((512 << 20)) /dev/urandom >"$work/pull-root/random"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$work/pull-root" -cf "$work/layer.tar" random
  rm -rf "$work/pull-root"
  oci_layout=$layout
  local diff_id layer config manifest
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer=$(oci_layout_blob "$work/layer.tar")
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" >"$work/config.json"
  config=$(oci_layout_blob "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json",%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",%s}]}' \
    "$config" "$layer" >"$work/manifest.json"
  manifest=$(oci_layout_blob "$work/manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",%s,"annotations":{"org.opencontainers.image.ref.name":"big"}}]}' \
    "$manifest" >"$layout/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  local image=127.0.0.1:$port/bench/big:1
  skopeo copy --quiet --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$layout:big" "docker://$image"
  rm -rf "$layout"
  bench_row "pull vs skopeo copy" 1.5 64 "side_pull $image" "side_skopeo $image"
}

for workload in "${workloads[@]}"; do
  case $workload in
    example) bench_example ;;
    pull) bench_pull ;;
    *) bench_tree "$workload" ;;
  esac
done
bench_report

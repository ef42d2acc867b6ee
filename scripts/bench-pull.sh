#!/usr/bin/env bash
# Benchmark (not a test): pull one image with a 512 MiB layer from Debian's
# docker-registry on 127.0.0.1, with `ossify pull` and with `skopeo copy`
# into an OCI layout, alternately, each into an empty cache. Reports peak
# RSS and wall time of each; fails unless ossify stays under 64 MiB and
# within 1.5x of skopeo's time (best of RUNS).
#
# Needs: docker-registry skopeo time (Debian packages). Usage:
#   scripts/bench-pull.sh            # RUNS=3 LAYER_MIB=512
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

runs=${RUNS:-3}
layer_mib=${LAYER_MIB:-512}
bench_init

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
bench_cleanups+=("kill $!")
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done

# An OCI layout holding one image whose only layer is a plain tar of
# incompressible bytes, pushed with its digests intact.
layout=$work/layout
mkdir -p "$layout/blobs/sha256" "$work/rootfs"
head -c "$((layer_mib * 1024 * 1024))" /dev/urandom >"$work/rootfs/random"
tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$work/rootfs" -cf "$work/layer.tar" random
blob() { # FILE MEDIA_TYPE -> prints a descriptor, stores the blob
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$layout/blobs/sha256/$digest"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$digest" "$size"
}
layer=$(blob "$work/layer.tar" application/vnd.oci.image.layer.v1.tar)
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$diff_id" >"$work/config.json"
config=$(blob "$work/config.json" application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
  "$config" "$layer" >"$work/manifest.json"
manifest=$(blob "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
printf '{"schemaVersion":2,"manifests":[%s]}' \
  "${manifest%\}},\"annotations\":{\"org.opencontainers.image.ref.name\":\"big\"}}" >"$layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
rm -rf "$work/rootfs" "$work/layer.tar"
image=127.0.0.1:$port/bench/big:1
skopeo copy --quiet --insecure-policy --preserve-digests --dest-tls-verify=false "oci:$layout:big" "docker://$image"
rm -rf "$layout"

for _ in $(seq "$runs"); do
  rm -rf "$work/cache" "$work/skopeo"
  bench_measure ossify "$ossify" pull --quiet --cache-dir "$work/cache" "$image"
  bench_measure skopeo skopeo copy --quiet --insecure-policy --src-tls-verify=false --preserve-digests \
    "docker://$image" "oci:$work/skopeo:big"
done
rm -rf "$work/cache" "$work/skopeo"

ratio=$(bench_ratio "$(bench_best_time ossify)" "$(bench_best_time skopeo)")
ossify_rss=$(bench_worst_rss ossify)
printf '\n%s MiB layer, best of %s runs:\n' "$layer_mib" "$runs"
bench_row ossify "ossify pull"
bench_row skopeo "skopeo copy"
printf '  time ratio %.2f (limit 1.5); RSS limit 64 MiB; load after: %s\n' "$ratio" "$(bench_load)"
status=0
[ "$ossify_rss" -lt $((64 * 1024)) ] || { echo "FAIL: ossify's peak RSS is over 64 MiB" >&2; status=1; }
[ "$(echo "$ratio <= 1.5" | bc)" -eq 1 ] || { echo "FAIL: ossify takes more than 1.5x skopeo's time" >&2; status=1; }
[ "$status" -eq 0 ] && echo "PASS"
exit "$status"

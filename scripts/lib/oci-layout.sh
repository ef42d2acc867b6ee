# shellcheck shell=bash
# Shell functions that write OCI image layouts from plain directories, with
# no container tool and no root: one gzip'd layer per image, owned by 0:0,
# entries sorted, dated 0 and with modes free of the umask, so the same
# directory gives the same digest.
# Source this file, call oci_layout_init once, oci_layout_add per image,
# oci_layout_finish once.

oci_layout_init() { # LAYOUT
  oci_layout=$1
  oci_manifests=()
  rm -rf "$oci_layout"
  mkdir -p "$oci_layout/blobs/sha256"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$oci_layout/oci-layout"
}

# Moves FILE into the layout's blobs; prints its descriptor fields.
oci_layout_blob() { # FILE
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$oci_layout/blobs/sha256/$digest"
  printf '"digest":"sha256:%s","size":%s' "$digest" "$size"
}

oci_layout_add() { # REF CONFIG_JSON ROOTFS_DIR
  local ref=$1 config=$2 rootfs=$3 tmp diff_id layer config_blob manifest
  tmp=$(mktemp -d)
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=go-w,a+rX --format=pax \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$rootfs" -cf "$tmp/layer.tar" .
  diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
  gzip -n "$tmp/layer.tar"
  layer=$(oci_layout_blob "$tmp/layer.tar.gz")
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$config" "$diff_id" >"$tmp/config.json"
  config_blob=$(oci_layout_blob "$tmp/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json",%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip",%s}]}' \
    "$config_blob" "$layer" >"$tmp/manifest.json"
  manifest=$(oci_layout_blob "$tmp/manifest.json")
  oci_manifests+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",$manifest,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":{\"org.opencontainers.image.ref.name\":\"$ref\"}}")
  rm -rf "$tmp"
}

oci_layout_finish() {
  local IFS=,
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' \
    "${oci_manifests[*]}" >"$oci_layout/index.json"
}

# Downloads Debian packages (the newest candidate of each) into CACHE, once.
debian_download() { # CACHE PACKAGE...
  local cache=$1
  shift
  mkdir -p "$cache"
  local pkg
  for pkg in "$@"; do
    compgen -G "$cache/${pkg}_*.deb" >/dev/null || (cd "$cache" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg") \
      || { echo "cannot download Debian package $pkg (is apt's package list current? run apt-get update)" >&2; return 1; }
  done
}

# Unpacks the downloaded PACKAGEs from CACHE into DIR.
debian_unpack() { # CACHE DIR PACKAGE...
  local cache=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  local pkg
  for pkg in "$@"; do
    dpkg-deb -x "$(compgen -G "$cache/${pkg}_*.deb" | head -n1)" "$dir"
  done
}
